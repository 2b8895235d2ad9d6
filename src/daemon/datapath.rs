//! The data path: per worker, the TAP side (its TAP queue -> switch -> tunnels) and the
//! underlay side (its sockets -> switch -> its TAP queue or other tunnels), each a
//! run-to-completion loop over batches on a thread of its own, or both in one loop on one
//! thread (`[device] worker_threads = 1`); each side decides with a switch shard of its own.

use std::io;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tracing::{error, info, warn};

use super::fastpath::{Installer, Outer};
use super::plumbing::{Egress, Encap, Plumbing};
use super::{lock, net_core, tap_core, wait_turning, Shared};
use crate::fastpath::Via;
use crate::flow::{self, PortNo};
use crate::incident::{ErrorReason, Incidents, Report};
use crate::io::socket::{RecvBatch, SendItem, SocketKind, UnderlaySocket, BATCH, MAX_DATAGRAM};
use crate::io::Poller;
use crate::openflow::agent::AsyncEvent;
use crate::spread;
use crate::switch::{Action, CacheHint, DropReason, Encapsulation, Switch};
use crate::wire::ip::IpView;
use crate::wire::offload::{self, VnetHdr, VNET_HDR_LEN};
use crate::wire::tunnel;
use crate::wire::{gre, vxlan, IPV4_HEADER_LEN};

/// A TAP read: the virtio-net header, then a superframe of up to 64 KiB of IP behind an
/// Ethernet header and one VLAN tag.
const TAP_BUFFER: usize = VNET_HDR_LEN + 18 + MAX_DATAGRAM;

/// Bytes read from the TAP before the batch is decided and sent. A batch is read, split and
/// handed to the kernel in turn; bounding its size keeps that working set in the CPU's cache
/// (32 superframes would be 2 MiB, twice over once split) while small frames still come in
/// batches of up to [`BATCH`].
const TAP_READ_BUDGET: usize = 192 * 1024;

/// Per-thread scratch space for sending, reused batch after batch: per send, the header built
/// for it (GRE with checksum or sequence number, an outer IPv4 header with its TOS and TTL)
/// and where it goes; and the tunnel sends in socket order.
#[derive(Default)]
struct HeaderScratch {
    headers: Vec<Encap>,
    routes: Vec<Route>,
    order: Vec<(usize, usize)>,
}

/// How one send to a tunnel leaves: socket, outer TOS and TTL (0: the socket's), whether its
/// header is in the scratch space, and whether it carries a GRE sequence number.
#[derive(Clone, Copy, Default)]
pub(super) struct Route {
    pub(super) socket: usize,
    tos: u8,
    ttl: u8,
    own_header: bool,
    seq: bool,
    /// The inner flow's hash: picks the VXLAN source port, makes the IPv6 flow label.
    pub(super) hash: u32,
}

/// Where a frame to send lies: frame `i` of the batch just read, or a range of the thread's
/// extra buffer (answers and fragments the switch made).
#[derive(Clone, Copy)]
enum FrameRef {
    Batch(usize),
    Extra(usize, usize),
    /// A segment of a superframe read from the TAP, in the thread's segment buffer.
    Segment(usize, usize),
    /// A later segment of such a superframe, right after the one before it in the buffer: its
    /// headers are that segment's but for lengths, IDs, sequence numbers, the FIN, PSH and CWR
    /// flags and checksums, none of which [`deliver`] reads to route it to a tunnel, so its
    /// route is that segment's too.
    More(usize, usize),
}

/// What one thread sends after deciding a batch: (frame, egress port) pairs, the extra frames
/// they may refer to, and scratch space for per-packet GRE headers. Reused batch after batch.
struct Plan {
    sends: Vec<(FrameRef, PortNo)>,
    extra: Vec<u8>,
    headers: HeaderScratch,
    /// Frames for the controllers, queued once the switch is unlocked.
    packet_ins: Vec<AsyncEvent>,
    /// Decisions the kernel fast path may cache, installed once the batch is sent.
    hints: Vec<(FrameRef, CacheHint, Option<Outer>)>,
    installer: Installer,
}

impl Plan {
    fn new() -> Plan {
        Plan {
            sends: Vec::with_capacity(BATCH * 4),
            extra: Vec::new(),
            headers: HeaderScratch {
                headers: Vec::with_capacity(BATCH * 4),
                routes: Vec::with_capacity(BATCH * 4),
                order: Vec::with_capacity(BATCH * 4),
            },
            packet_ins: Vec::new(),
            hints: Vec::new(),
            installer: Installer::new(),
        }
    }

    fn clear(&mut self) {
        self.sends.clear();
        self.extra.clear();
        self.hints.clear();
    }

    /// Keeps the switch's cache hint for `frame`, if the fast path is on and there is one.
    fn capture_hint(
        &mut self,
        sh: &Shared,
        sw: &mut Switch,
        frame: FrameRef,
        outer: Option<Outer>,
    ) {
        if let (Some(_), Some(hint)) = (&sh.fast_path, sw.take_cache_hint()) {
            self.hints.push((frame, hint, outer));
        }
    }
}

/// Installs the kept `hints` in the kernel fast path.
fn install<'a>(
    sh: &Shared,
    plumbing: &Plumbing,
    hints: &mut Vec<(FrameRef, CacheHint, Option<Outer>)>,
    installer: &mut Installer,
    failed: &[PortNo],
    queue_empty: bool,
    frame: impl Fn(FrameRef) -> &'a [u8],
) {
    let Some(fp) = &sh.fast_path else { return };
    if !hints.is_empty() {
        installer.now = Instant::now();
        for (f, hint, outer) in hints.drain(..) {
            if !failed.contains(&hint.egress) {
                fp.install(sh, plumbing, installer, frame(f), &hint, outer);
            }
        }
    }
    installer.activate(fp, queue_empty);
}

impl Plan {
    /// Keeps a copy of `frame` for the controllers if the switch's last decision asked for one.
    fn capture_packet_in(&mut self, sw: &mut Switch, frame: &[u8]) {
        if let Some(meta) = sw.take_packet_in() {
            self.packet_ins.push(AsyncEvent::PacketIn {
                meta,
                frame: frame.to_vec(),
            });
        }
    }

    /// Hands the captured frames to the OpenFlow thread, never waiting for it.
    fn flush_packet_ins(&mut self, sh: &Shared) {
        for event in self.packet_ins.drain(..) {
            sh.publish(event);
        }
    }

    /// Records what the switch decided for `frame`.
    fn add(&mut self, frame: FrameRef, action: Action<'_>) {
        match action {
            Action::Forward(ports) => self.sends.extend(ports.iter().map(|&p| (frame, p))),
            Action::Fragments {
                ports,
                frames,
                ranges,
            } => {
                for r in ranges {
                    let start = self.extra.len();
                    self.extra.extend_from_slice(&frames[r.clone()]);
                    let end = self.extra.len();
                    self.sends
                        .extend(ports.iter().map(|&p| (FrameRef::Extra(start, end), p)));
                }
            }
            Action::Reply { port, frame } => {
                let start = self.extra.len();
                self.extra.extend_from_slice(frame);
                self.sends
                    .push((FrameRef::Extra(start, self.extra.len()), port));
            }
            Action::Drop(_) => {}
        }
    }
}

/// Where a thread decides and writes: its core (switch shard) and the TAP queue it writes to;
/// and whether frames it coalesces for the TAP need their checksums verified.
#[derive(Clone, Copy)]
struct At {
    core: usize,
    queue: usize,
    verify: bool,
}

/// Waits after a wake-up, when `batch_wait` is on and the last batch was not full, so that the
/// next read finds more: fewer wake-ups and system calls per byte (see
/// [`crate::config::DeviceConfig::batch_wait_us`]).
fn batch_wait(sh: &Shared, last_batch: usize) {
    if let Some(wait) = sh.batch_wait {
        if last_batch < BATCH {
            std::thread::sleep(wait);
        }
    }
}

/// TAP queue `worker` -> switch -> tunnels. Returns on stop (Ok) or on an I/O error, logged
/// (Err).
///
/// With offloads on, each read starts with a virtio-net header: a frame whose checksum was left
/// to us is finished in place, and a TCP/UDP superframe is split (before taking the lock) into
/// complete frames, each decided on its own.
pub(super) fn tap_loop(sh: &Shared, worker: usize) -> Result<(), ()> {
    let mut side = TapSide::new(sh, worker);
    let mut poller = Poller::new(&[sh.tap.fd(worker), sh.stop.fd()]);
    loop {
        if let Some(end) = wait_turning(sh, side.at.core, &mut poller, 1, "the TAP device") {
            return end;
        }
        batch_wait(sh, side.last_batch);
        side.batch(sh)?;
    }
}

/// A worker's TAP side: its buffers and plan, reused batch after batch, by its own thread
/// ([`tap_loop`]) or by the worker's one thread ([`worker_loop`]).
struct TapSide {
    at: At,
    bufs: Vec<Box<[u8]>>,
    lens: [usize; BATCH],
    /// Per buffer: whether it was split, into which of `seg_ranges` (or refused).
    shapes: Vec<Result<Range<usize>, ()>>,
    segs: Vec<u8>,
    seg_ranges: Vec<Range<usize>>,
    skip: usize,
    plan: Plan,
    last_batch: usize,
}

impl TapSide {
    fn new(sh: &Shared, worker: usize) -> TapSide {
        TapSide {
            at: At {
                core: tap_core(worker),
                queue: worker,
                verify: true,
            },
            bufs: (0..BATCH)
                .map(|_| vec![0u8; TAP_BUFFER].into_boxed_slice())
                .collect(),
            lens: [0usize; BATCH],
            shapes: Vec::with_capacity(BATCH),
            segs: Vec::new(),
            seg_ranges: Vec::new(),
            skip: if sh.tap.vnet() { VNET_HDR_LEN } else { 0 },
            plan: Plan::new(),
            last_batch: BATCH,
        }
    }

    /// Reads one batch from the TAP queue, decides it and sends it; `last_batch` then says how
    /// full it was, for [`batch_wait`].
    fn batch(&mut self, sh: &Shared) -> Result<(), ()> {
        let TapSide {
            at,
            bufs,
            lens,
            shapes,
            segs,
            seg_ranges,
            skip,
            plan,
            last_batch,
        } = self;
        let (at, skip) = (*at, *skip);
        let (mut n, mut bytes) = (0, 0);
        // Whether the read found the queue empty: nothing of any flow is left behind.
        let mut drained = false;
        while n < BATCH && bytes < TAP_READ_BUDGET {
            match sh.tap.recv(at.queue, &mut bufs[n]) {
                Ok(len) if len >= skip => {
                    lens[n] = len;
                    bytes += len;
                    n += 1;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error!("reading from the TAP device: {e}");
                    return Err(());
                }
            }
        }
        // A batch cut short by the byte budget (a few TSO superframes) was full: more waits.
        *last_batch = if bytes >= TAP_READ_BUDGET { BATCH } else { n };
        shapes.clear();
        segs.clear();
        seg_ranges.clear();
        for (buf, &len) in bufs.iter_mut().zip(lens.iter()).take(n) {
            let first = seg_ranges.len();
            let shape = match (skip, VnetHdr::decode(buf)) {
                (0, _) => Ok(first..first),
                (_, Some(hdr)) => offload::segment(&hdr, &mut buf[skip..len], segs, seg_ranges)
                    .map(|_| first..seg_ranges.len())
                    .map_err(drop),
                (_, None) => Err(()),
            };
            shapes.push(shape);
        }
        plan.clear();
        let plumbing = {
            let mut core = lock(sh, at.core);
            let core = &mut *core;
            let now = Instant::now();
            for (i, shape) in shapes.iter().enumerate() {
                match shape {
                    Err(()) => core.switch.record_drop(DropReason::BadOffload),
                    Ok(split) if split.is_empty() => {
                        let frame = &mut bufs[i][skip..lens[i]];
                        plan.add(
                            FrameRef::Batch(i),
                            core.switch.handle_frame(PortNo::LOCAL, frame, now),
                        );
                        plan.capture_packet_in(&mut core.switch, &bufs[i][skip..lens[i]]);
                        plan.capture_hint(sh, &mut core.switch, FrameRef::Batch(i), None);
                    }
                    Ok(split) => {
                        core.switch.record_split(split.len());
                        let mut first = true;
                        for r in &seg_ranges[split.clone()] {
                            let frame = match first {
                                true => FrameRef::Segment(r.start, r.end),
                                false => FrameRef::More(r.start, r.end),
                            };
                            // The segments share their headers: the first one's decision
                            // holds for the rest.
                            let action = if !first && core.switch.can_repeat(PortNo::LOCAL, r.len())
                            {
                                core.switch.repeat(r.len())
                            } else {
                                core.switch
                                    .handle_frame(PortNo::LOCAL, &mut segs[r.clone()], now)
                            };
                            first = false;
                            plan.add(frame, action);
                            plan.capture_packet_in(&mut core.switch, &segs[r.clone()]);
                            plan.capture_hint(sh, &mut core.switch, frame, None);
                        }
                    }
                }
            }
            Arc::clone(&core.plumbing)
        };
        plan.flush_packet_ins(sh);
        let Plan {
            sends,
            extra,
            headers,
            hints,
            installer,
            ..
        } = plan;
        let (bufs, lens, segs) = (&*bufs, &*lens, &*segs);
        let frame = |r| match r {
            FrameRef::Batch(i) => &bufs[i][skip..lens[i]],
            FrameRef::Extra(a, b) => &extra[a..b],
            FrameRef::Segment(a, b) | FrameRef::More(a, b) => &segs[a..b],
        };
        let failed = deliver(sh, at, &plumbing, sends, headers, frame);
        install(sh, &plumbing, hints, installer, &failed, drained, frame);
        Ok(())
    }
}

/// Worker `worker`'s receiving sockets -> switch -> its TAP queue or other tunnels. Returns
/// like [`tap_loop`]. After a reload it polls the new set of sockets.
pub(super) fn net_loop(sh: &Shared, worker: usize) -> Result<(), ()> {
    underlay_loop(sh, worker, None)
}

/// Worker `worker` as one thread: its TAP queue and its receiving sockets polled together,
/// each ready one served a batch per pass. A flow's ACKs then find the thread that sends its
/// data awake more often, and nobody needs waking for them.
pub(super) fn worker_loop(sh: &Shared, worker: usize) -> Result<(), ()> {
    underlay_loop(sh, worker, Some(TapSide::new(sh, worker)))
}

fn underlay_loop(sh: &Shared, worker: usize, mut tap: Option<TapSide>) -> Result<(), ()> {
    let at = At {
        core: net_core(worker),
        queue: worker,
        verify: true,
    };
    let mut batch = RecvBatch::default();
    batch.segments = Some(Arc::clone(&sh.segments));
    let mut inner: Vec<Range<usize>> = Vec::new();
    let mut plan = Plan::new();
    let mut retired: Option<Arc<Plumbing>> = None;
    loop {
        sh.sockets_changed[worker].clear();
        let (generation, plumbing) = {
            let core = lock(sh, at.core);
            (core.generation, Arc::clone(&core.plumbing))
        };
        // What a reload retired may still hold datagrams: read them once before letting go.
        if let Some(old) = retired.take() {
            for socket in old.receivers(worker, sh.workers) {
                if !plumbing.sockets.iter().any(|n| Arc::ptr_eq(n, socket)) {
                    for _ in 0..BATCH {
                        if receive(sh, at, socket, &mut batch, &mut inner, &mut plan)? == 0 {
                            break;
                        }
                    }
                }
            }
        }
        let receiving: Vec<&UnderlaySocket> = plumbing
            .receivers(worker, sh.workers)
            .map(|s| &**s)
            .collect();
        let mut fds: Vec<i32> = receiving.iter().map(|s| s.fd()).collect();
        let tap_fd = fds.len();
        if tap.is_some() {
            fds.push(sh.tap.fd(worker));
        }
        fds.extend([sh.sockets_changed[worker].fd(), sh.stop.fd()]);
        let (changed, stop) = (fds.len() - 2, fds.len() - 1);
        let mut poller = Poller::new(&fds);
        let mut last_batch = BATCH;
        loop {
            if let Some(end) = wait_turning(sh, at.core, &mut poller, stop, "the underlay sockets")
            {
                return end;
            }
            batch_wait(sh, last_batch);
            last_batch = 0;
            if let Some(side) = &mut tap {
                // This thread turns for the TAP side too.
                sh.beats[side.at.core].beat();
                if poller.ready(tap_fd) {
                    side.batch(sh)?;
                    // A batch cut short by the byte budget counts as full (see `batch`).
                    last_batch += side.last_batch;
                }
            }
            let reloaded = poller.ready(changed) && {
                sh.sockets_changed[worker].clear();
                sh.generation.load(Ordering::Acquire) != generation
            };
            // One batch per ready socket per wake-up: a busy socket cannot starve the others
            // or the stop signal (poll is level-triggered, so the rest is read next pass).
            for (s, socket) in receiving.iter().enumerate() {
                if poller.ready(s) {
                    last_batch += receive(sh, at, socket, &mut batch, &mut inner, &mut plan)?;
                }
            }
            if reloaded {
                break;
            }
        }
        drop(receiving);
        retired = Some(plumbing);
    }
}

/// Reads one batch from `socket`, decides it with core `at.core`, and sends what the switch
/// says. Returns how many datagrams it read.
fn receive(
    sh: &Shared,
    at: At,
    socket: &UnderlaySocket,
    batch: &mut RecvBatch,
    inner: &mut Vec<Range<usize>>,
    plan: &mut Plan,
) -> Result<usize, ()> {
    let incidents = &sh.faults;
    let key = Fault::Receive(socket.kind(), socket.local());
    batch.split_mtu = sh.device_mtu.load(Ordering::Relaxed);
    let n = match socket.recv_batch(batch) {
        Ok(n) => {
            if n > 0 && incidents.any_open() {
                if let Some(report) = incidents.success(key, Instant::now()) {
                    log_fault(report);
                }
            }
            n
        }
        Err(e) if is_fatal(&e) => {
            error!(local = %socket.local(), "receiving from the underlay: {e}");
            return Err(());
        }
        Err(e) => {
            // An ICMP error reported on the socket (the peer gone, say): counted, and logged
            // once per incident.
            let reason = ErrorReason::of(&e);
            lock(sh, at.core).switch.record_rx_error(reason);
            if let Some(report) = incidents.error(key, reason, Instant::now()) {
                log_fault(report);
            }
            0
        }
    };
    plan.clear();
    let at = At {
        // Raw GRE sockets: no outer checksum vouches for the frame.
        verify: socket.kind() == SocketKind::Gre
            || sh.inner_checksum.verify(socket.outer_checksum_verified()),
        ..at
    };
    let plumbing = {
        let mut core = lock(sh, at.core);
        let core = &mut *core;
        let now = Instant::now();
        inner.clear();
        inner.resize(n, 0..0);
        for (i, range) in inner.iter_mut().enumerate() {
            let ecn = batch.outer_tos(i) & tunnel::ECN_MASK;
            let Some((src, packet)) = batch.get_mut(i) else {
                continue;
            };
            let len = packet.len();
            let sw = &mut core.switch;
            let outer;
            let (action, start) = match socket.kind() {
                SocketKind::Udp(port) => {
                    if let Some(inner) = packet.get_mut(vxlan::HEADER_LEN..) {
                        offload::finish_partial_checksum(inner);
                    }
                    outer = vxlan::Header::decode(packet).ok().map(|h| Outer {
                        remote: src,
                        local: socket.local(),
                        via: Via::Vxlan { port, vni: h.vni },
                    });
                    (
                        sw.handle_vxlan_ecn(port, src, ecn, packet, now),
                        vxlan::HEADER_LEN,
                    )
                }
                SocketKind::Gre => {
                    // Raw IPv4 sockets deliver the IP header too (and so its TOS); IPv6 ones
                    // do not.
                    let (skip, ecn) = if src.is_ipv4() {
                        (ipv4_header_len(packet), packet.get(1).copied().unwrap_or(0))
                    } else {
                        (0, ecn)
                    };
                    // Without a GRE checksum (which vxtund verifies, over the whole packet,
                    // in the switch), the inner checksum may be a sender's partial one, as
                    // over VXLAN. Only GRE without checksum and sequence numbers is cached
                    // (the kernel path neither verifies nor numbers).
                    // Decoded once, here: the switch is handed the result.
                    let decoded = gre::Header::decode(&packet[skip.min(len)..]);
                    let plain = decoded.as_ref().ok().filter(|(h, _)| !h.csum);
                    if let Some(inner) = plain.and_then(|&(_, at)| packet.get_mut(skip + at..)) {
                        offload::finish_partial_checksum(inner);
                    }
                    outer = plain.filter(|(h, _)| h.seq.is_none()).map(|(h, _)| Outer {
                        remote: src,
                        local: socket.local(),
                        via: Via::Gre { key: h.key },
                    });
                    let (action, offset) =
                        sw.handle_gre_decoded(src, ecn, decoded, &mut packet[skip.min(len)..], now);
                    (action, skip.saturating_add(offset))
                }
            };
            *range = start..len;
            plan.add(FrameRef::Batch(i), action);
            plan.capture_packet_in(&mut core.switch, packet.get(start..len).unwrap_or(&[]));
            if outer.is_some() {
                plan.capture_hint(sh, &mut core.switch, FrameRef::Batch(i), outer);
            } else {
                core.switch.take_cache_hint();
            }
        }
        Arc::clone(&core.plumbing)
    };
    plan.flush_packet_ins(sh);
    let Plan {
        sends,
        extra,
        headers,
        hints,
        installer,
        ..
    } = plan;
    let batch = &*batch;
    let frame = |r| match r {
        FrameRef::Batch(i) => batch
            .get(i)
            .and_then(|(_, p)| p.get(inner[i].clone()))
            .unwrap_or(&[]),
        FrameRef::Extra(a, b) => &extra[a..b],
        FrameRef::Segment(..) | FrameRef::More(..) => &[],
    };
    let failed = deliver(sh, at, &plumbing, sends, headers, frame);
    install(sh, &plumbing, hints, installer, &failed, n < BATCH, frame);
    Ok(n)
}

/// Sends a frame a controller gave (PACKET_OUT), from the calling (OpenFlow) thread: decided
/// by the switch as `actions` say (or through the table), then sent like any frame.
pub(super) fn packet_out(
    sh: &Shared,
    in_port: PortNo,
    mut frame: Vec<u8>,
    actions: Option<Vec<flow::Action>>,
) {
    let mut plan = Plan::new();
    let at = At {
        core: sh.control_core(),
        queue: 0,
        verify: true,
    };
    let plumbing = {
        let mut core = lock(sh, at.core);
        let core = &mut *core;
        let action = core
            .switch
            .packet_out(in_port, &mut frame, actions, Instant::now());
        plan.add(FrameRef::Batch(0), action);
        plan.capture_packet_in(&mut core.switch, &frame);
        Arc::clone(&core.plumbing)
    };
    plan.flush_packet_ins(sh);
    let Plan {
        sends,
        extra,
        headers,
        ..
    } = &mut plan;
    deliver(sh, at, &plumbing, sends, headers, |r| match r {
        FrameRef::Batch(_) => &frame,
        FrameRef::Extra(a, b) => &extra[a..b],
        FrameRef::Segment(..) | FrameRef::More(..) => &[],
    });
}

/// Where an underlay fault shows: sends out of a port, or receives on a socket (its kind and
/// local address).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Send(PortNo),
    Receive(SocketKind, std::net::IpAddr),
}

/// Open incidents.
type Faults = Incidents<Fault>;

/// The open incidents of every data-path thread (and of PACKET_OUTs) together: a fault every
/// thread runs into (a route gone, say) is one incident, logged once. Looked at without a lock
/// while none is open.
#[derive(Default)]
pub(super) struct SharedFaults {
    open: std::sync::atomic::AtomicBool,
    faults: std::sync::Mutex<Faults>,
}

impl SharedFaults {
    fn any_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Faults) -> R) -> R {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut faults);
        self.open.store(faults.any_open(), Ordering::Relaxed);
        r
    }

    fn error(&self, key: Fault, reason: ErrorReason, now: Instant) -> Option<Report<Fault>> {
        self.with(|f| f.error(key, reason, now))
    }

    fn success(&self, key: Fault, now: Instant) -> Option<Report<Fault>> {
        self.with(|f| f.success(key, now))
    }
}

/// Logs the beginning or the end of an incident (each once; see [`crate::incident`]).
fn log_fault(report: Report<Fault>) {
    match report {
        Report::Began {
            key: Fault::Send(port),
            reason,
        } => warn!(
            port = %port,
            "sends failing ({}); counting the errors until it works again",
            reason.name()
        ),
        Report::Began {
            key: Fault::Receive(_, local),
            reason,
        } => warn!(
            local = %local,
            "receive errors ({}: an ICMP error from the underlay); counting them until it \
             works again",
            reason.name()
        ),
        Report::Recovered {
            key: Fault::Send(port),
            reason,
            errors,
        } => info!(
            port = %port,
            "sends recovered after {errors} errors (first: {})",
            reason.name()
        ),
        Report::Recovered {
            key: Fault::Receive(_, local),
            reason,
            errors,
        } => info!(
            local = %local,
            "receives recovered after {errors} errors (first: {})",
            reason.name()
        ),
    }
}

/// Sends `order` ((socket, send) pairs grouped by socket) one run per socket, each datagram
/// from `item`, so that the datagrams of one flow stay together for GSO.
fn send_in_runs<'a>(
    plumbing: &Plumbing,
    order: &[(usize, usize)],
    note: &mut impl FnMut(PortNo, io::Error),
    item: impl Fn(usize) -> Option<SendItem<'a>>,
) {
    let mut i = 0;
    while i < order.len() {
        let socket = order[i].0;
        let n = order[i..].iter().take_while(|o| o.0 == socket).count();
        plumbing.sockets[socket].send_batch(
            order[i..i + n].iter().filter_map(|&(_, j)| item(j)),
            |tag, e| note(PortNo(tag), e),
        );
        i += n;
    }
}

/// Whether a receive error means the descriptor itself is broken (rather than one packet).
fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EINVAL | libc::EFAULT)
    )
}

/// Length of the IPv4 header at the start of `packet`; past the end when it is malformed, so
/// that what follows is empty and counted as a truncated GRE packet.
fn ipv4_header_len(packet: &[u8]) -> usize {
    match packet.first() {
        Some(&b) if usize::from(b & 0x0f) * 4 >= IPV4_HEADER_LEN => usize::from(b & 0x0f) * 4,
        _ => usize::MAX,
    }
}

/// How `payload` (`ip`, its IP header, if it is IP) leaves by tunnel `egress`: the port's
/// [`Port::encapsulation`](crate::switch::Port::encapsulation) (outer TOS, TTL, DF and the
/// inner flow's hash). `None` for an egress that is no tunnel.
pub(super) fn encapsulation_of(
    egress: &Egress,
    payload: &[u8],
    ip: Option<&IpView>,
) -> Option<Encapsulation> {
    match egress {
        Egress::Tunnel { port, .. } => port.encapsulation(payload, ip),
        Egress::Local => None,
    }
}

/// The route of a send of `payload` (`ip`, its IP header) to tunnel `egress` with `encap`
/// (see [`encapsulation_of`]): the sending socket, by the DF it needs, then the flow's
/// `flow_spread = "balance"` turn or its hash; the outer TOS and TTL. `secs`: the coarse
/// clock, read once per batch if at all.
pub(super) fn route_of(
    sh: &Shared,
    egress: &Egress,
    encap: &Encapsulation,
    payload: &[u8],
    ip: Option<&IpView>,
    secs: &mut Option<u32>,
) -> Route {
    let Egress::Tunnel {
        sockets,
        spread,
        turns,
        next_turn,
        ..
    } = egress
    else {
        return Route::default();
    };
    let which = usize::from(sockets[0] != sockets[1] && !encap.df);
    let hash = encap.flow_hash;
    // `flow_spread = "balance"`: a TCP segment to a pool takes its flow's turn.
    let turn = match (&sh.balancer, ip) {
        (Some(b), Some(ip)) if spread[which] > 1 => spread::tcp_syn(payload, ip).and_then(|syn| {
            let now = *secs.get_or_insert_with(|| sh.uptime_secs());
            b.turn(hash, syn, now, &next_turn[which])
        }),
        _ => None,
    };
    Route {
        socket: sockets[which]
            + match turn {
                Some(t) => usize::from(turns[which][usize::from(t)]),
                None => tunnel::pick(hash, spread[which].max(1)),
            },
        tos: encap.tos,
        ttl: encap.ttl.unwrap_or(0),
        hash,
        ..Route::default()
    }
}

/// Sends frame `f` out of port `p` for every `(f, p)` in `sends`.
///
/// A send to a VXLAN tunnel picks the sender of its pool by the inner flow's hash (one outer
/// source port per flow); every tunnel send gets its outer TOS (ECN per RFC 6040) and TTL. The
/// sends of a GRE tunnel with sequence numbers are numbered and sent under that tunnel's lock,
/// so that every thread's packets leave in order. Returns the ports a send failed on.
fn deliver<'a>(
    sh: &Shared,
    at: At,
    plumbing: &Plumbing,
    sends: &[(FrameRef, PortNo)],
    scratch: &mut HeaderScratch,
    frame: impl Fn(FrameRef) -> &'a [u8] + Copy,
) -> Vec<PortNo> {
    let incidents = &sh.faults;
    // Vec::new() does not allocate: only a batch with failed sends pays for this list.
    let mut failed: Vec<(PortNo, ErrorReason)> = Vec::new();
    let mut too_big = false;
    let mut note = |port: PortNo, e: io::Error| {
        too_big |= e.raw_os_error() == Some(libc::EMSGSIZE);
        failed.push((port, ErrorReason::of(&e)));
        tracing::trace!(port = %port, "send failed: {e}");
    };
    let HeaderScratch {
        headers,
        routes,
        order,
    } = scratch;
    headers.clear();
    headers.resize(sends.len(), Encap::EMPTY);
    routes.clear();
    routes.resize(sends.len(), Route::default());
    order.clear();
    // Frames for the TAP: with offloads, consecutive TCP segments (and UDP datagrams, where the
    // TAP takes UDP superframes) of a flow go as one write.
    let mut local: Vec<&[u8]> = Vec::new();
    let mut seq_ports: Vec<PortNo> = Vec::new();
    // The coarse clock of `flow_spread = "balance"`, read once per batch if at all.
    let mut secs: Option<u32> = None;
    // The last send to a tunnel: (its port, its index in `sends`).
    let mut last_tunnel: Option<(PortNo, usize)> = None;
    for (j, &(f, port)) in sends.iter().enumerate() {
        match plumbing.egress(port) {
            Some(Egress::Local) if sh.tap.vnet() => local.push(frame(f)),
            Some(Egress::Local) => {
                if let Err(e) = sh.tap.send(at.queue, frame(f)) {
                    note(port, e);
                }
            }
            Some(
                egress @ Egress::Tunnel {
                    header, per_packet, ..
                },
            ) => {
                let payload = frame(f);
                // A later segment of the superframe whose previous segment was the last send
                // to this port takes that send's route: it has the same headers.
                let shared = match (f, last_tunnel) {
                    (FrameRef::More(start, _), Some((p, k))) if p == port => match sends[k].0 {
                        FrameRef::Segment(_, end) | FrameRef::More(_, end) => end == start,
                        _ => false,
                    }
                    .then_some(k),
                    _ => None,
                };
                last_tunnel = Some((port, j));
                routes[j] = match shared {
                    Some(k) => routes[k],
                    None => {
                        let ip = IpView::parse(payload);
                        encapsulation_of(egress, payload, ip.as_ref())
                            .map_or_else(Route::default, |encap| {
                                route_of(sh, egress, &encap, payload, ip.as_ref(), &mut secs)
                            })
                    }
                };
                let route = &mut routes[j];
                let hash = route.hash;
                let writes_header = plumbing.sockets[route.socket].writes_ip_header();
                route.seq = per_packet.as_ref().is_some_and(|g| g.next_seq.is_some());
                if route.seq {
                    if !seq_ports.contains(&port) {
                        seq_ports.push(port);
                    }
                    continue;
                }
                if per_packet.is_some() || writes_header {
                    route.own_header = true;
                    // The outer IPv4 header, if any, is the tunnel's.
                    headers[j] = *header;
                    if let Some(g) = per_packet {
                        g.encode(payload, None, &mut headers[j]);
                    }
                    let v6 = !plumbing.sockets[route.socket].local().is_ipv4();
                    headers[j].set_outer(v6, route.tos, route.ttl, hash, payload.len());
                }
                order.push((route.socket, j));
            }
            _ => {}
        }
    }
    let mut coalesced: Vec<usize> = Vec::new();
    if !local.is_empty() {
        let mut runs = Vec::new();
        offload::plan_runs_checked(&local, sh.tap.offloads().udp, at.verify, &mut runs);
        for run in &runs {
            let frames = &local[run.first..run.first + run.count];
            let sent = if run.count == 1 {
                sh.tap.send(at.queue, frames[0])
            } else {
                sh.tap.send_superframe(
                    at.queue,
                    &run.hdr,
                    &run.headers[..run.headers_len],
                    frames.iter().map(|f| offload::run_payload(run, f)),
                )
            };
            match sent {
                Ok(_) if run.count > 1 => coalesced.push(run.count),
                Ok(_) => {}
                // A superframe the kernel refuses still goes out, frame by frame.
                Err(_) if run.count > 1 => {
                    for f in frames {
                        if let Err(e) = sh.tap.send(at.queue, f) {
                            note(PortNo::LOCAL, e);
                        }
                    }
                }
                Err(e) => note(PortNo::LOCAL, e),
            }
        }
    }
    // Tunnel sends by socket, in batch order within each (the sort is stable), so that the
    // datagrams of one flow stay together for GSO.
    order.sort_by_key(|&(socket, _)| socket);
    send_in_runs(plumbing, order, &mut note, |j| {
        let (f, port) = sends[j];
        tunnel_item(plumbing, port, frame(f), routes[j], &headers[j])
    });
    // GRE with sequence numbers: numbered and sent under the tunnel's lock, in runs of one
    // socket (DF inherit may alternate), so numbers leave in order.
    for port in seq_ports {
        let Some(Egress::Tunnel {
            header,
            per_packet: Some(g),
            ..
        }) = plumbing.egress(port)
        else {
            continue;
        };
        let Some(next) = &g.next_seq else { continue };
        let mut next = next.lock().unwrap_or_else(|p| p.into_inner());
        order.clear();
        for (j, &(f, p)) in sends.iter().enumerate() {
            if p != port {
                continue;
            }
            headers[j] = *header;
            g.encode(frame(f), Some(*next), &mut headers[j]);
            *next = next.wrapping_add(1);
            let r = routes[j];
            let v6 = !plumbing.sockets[r.socket].local().is_ipv4();
            headers[j].set_outer(v6, r.tos, r.ttl, r.hash, frame(f).len());
            routes[j].own_header = true;
            order.push((routes[j].socket, j));
        }
        send_in_runs(plumbing, order, &mut note, |j| {
            let (f, port) = sends[j];
            tunnel_item(plumbing, port, frame(f), routes[j], &headers[j])
        });
    }
    if too_big {
        // The path MTU to a remote fell: have the MTU watcher read it now.
        sh.pmtu_check.raise();
    }
    // Incidents: the first failure on a port is logged, the repeats only counted; a port of
    // an open incident that took a send in this batch without failing has recovered.
    if !failed.is_empty() || incidents.any_open() {
        let now = Instant::now();
        let mut worked: Vec<PortNo> = Vec::new();
        for &(_, port) in sends.iter() {
            if !failed.iter().any(|&(p, _)| p == port) && !worked.contains(&port) {
                worked.push(port);
            }
        }
        // One lock of the shared incidents per batch, not per send.
        let reports = incidents.with(|faults| {
            let mut reports = Vec::new();
            for &(port, reason) in &failed {
                reports.extend(faults.error(Fault::Send(port), reason, now));
            }
            for &port in &worked {
                if !faults.any_open() {
                    break;
                }
                reports.extend(faults.success(Fault::Send(port), now));
            }
            reports
        });
        reports.into_iter().for_each(log_fault);
    }
    let failed_ports: Vec<PortNo> = failed.iter().map(|&(p, _)| p).collect();
    if !failed.is_empty() || !coalesced.is_empty() {
        let mut core = lock(sh, at.core);
        for (port, reason) in failed {
            core.switch.record_send_error(port, reason);
        }
        for segments in coalesced {
            core.switch.record_coalesced(segments);
        }
    }
    failed_ports
}

/// The datagram for a send of `payload` to tunnel `port` along `route` (`header` holds its
/// own header, if it has one).
fn tunnel_item<'b>(
    plumbing: &'b Plumbing,
    port: PortNo,
    payload: &'b [u8],
    route: Route,
    header: &'b Encap,
) -> Option<SendItem<'b>> {
    let socket = plumbing.sockets.get(route.socket)?;
    let Some(Egress::Tunnel {
        dst,
        header: shared,
        ..
    }) = plumbing.egress(port)
    else {
        return None;
    };
    let header = match route.own_header {
        true => header.for_socket(socket),
        false => shared.for_socket(socket),
    };
    Some(SendItem {
        dst,
        header,
        payload,
        tag: port.0,
        tos: route.tos,
        ttl: route.ttl,
    })
}
