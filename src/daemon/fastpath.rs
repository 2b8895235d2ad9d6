//! The kernel fast path in the daemon: setting it up (or saying why not), installing the
//! decisions the data path makes as cache entries, and the sweeper thread that folds the
//! kernel's counters into the switch's, refreshes MAC learning, and evicts entries.
//!
//! Correctness rests on the generation ([`crate::switch::Generation`]): every change that may
//! alter a decision bumps it and writes it into the programs' map before the change returns,
//! and an entry of an older generation is a miss. An entry installed from a decision made
//! before a bump carries the older number and never takes effect.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::datapath::{encapsulation_of, route_of};
use super::plumbing::{Egress, Plumbing};
use super::{lock, DaemonError, Shared};
use crate::config::{Config, FastPathMode};
use crate::fastpath::{self, Key, Stat, Value, Via};
use crate::flow::PortNo;
use crate::io::bpf::Programs;
use crate::io::netdev;
use crate::switch::{CacheHint, Generation, PortKind, Tunnel};
use crate::wire::ip::IpView;
use crate::wire::tunnel;

/// How often the sweeper reads the kernel's counters.
const SWEEP: Duration = Duration::from_millis(100);
/// An entry no frame used for this long is evicted (Open vSwitch's `max-idle` is 10 s).
const MAX_IDLE: Duration = Duration::from_secs(10);
/// Above this share of the capacity, entries idle for [`MAX_IDLE_FULL`] go too.
const FULL: f64 = 0.9;
const MAX_IDLE_FULL: Duration = Duration::from_secs(1);
/// Installs one data-path thread makes per [`INSTALL_WINDOW`] at most: a flood of new flows
/// costs vxtund a bounded number of system calls and goes on at the userspace path's speed.
const INSTALLS_PER_WINDOW: u32 = 256;
const INSTALL_WINDOW: Duration = Duration::from_millis(10);
/// A pending entry is made active when its thread finds its queue empty (every frame it held
/// of the flow is sent) and the last frame of the flow vxtund sent has had [`MIN_PENDING`] to
/// reach its host (what vxtund wrote or sent goes through another CPU's backlog, perhaps
/// deferred to ksoftirqd, than what the kernel path forwards: without the wait, a frame it
/// forwards can overtake one vxtund sent just before); a flow that never pauses that long is
/// handed over after [`MAX_PENDING`] (TCP, for one, takes the rare reordering then). A UDP
/// or ICMP entry is active from the start (see [`pends`]).
const MIN_PENDING: Duration = Duration::from_millis(5);
const MAX_PENDING: Duration = Duration::from_millis(50);

/// Whether an entry for `key` is installed pending, to keep its flow in order while vxtund
/// still holds frames of it. Not UDP nor ICMP, which promise no order: a pending entry sends
/// a flow that never pauses through the userspace path for as long as it waits. A full-speed
/// iperf3 UDP test lost 0.6 % with a 5 ms wait, 1.5 % with 50 ms (the kernel's vxlan 0.01 %),
/// and a ping every millisecond beside a TCP stream had its 50 first answers take the
/// userspace path, a p99 of 1 ms against the kernel's 0.04 (benches/RESULTS.md).
fn pends(key: &Key) -> bool {
    !matches!(key.proto, 1 | 17 | 58)
}

/// The fast path in force.
pub(super) struct FastPath {
    programs: Programs,
    /// The switch's generation, which the programs' map mirrors.
    generation: Arc<Generation>,
    tap_ifindex: u32,
    /// The underlay devices that hold the local addresses.
    devices: Vec<Device>,
    /// CLOCK_MONOTONIC at `base`, to turn an `Instant` into the programs' clock.
    base: Instant,
    base_ns: u64,
    /// What the sweeper last read of each entry, and its buffer. Held by whoever makes a
    /// pending entry active (see [`Installer::activate`]).
    sweeper: std::sync::Mutex<Sweeper>,
    /// What `show` and the metrics say about it.
    pub(super) description: String,
    pub(super) counters: Counters,
}

/// An underlay device, as the fast path sees it.
struct Device {
    /// The local address it holds.
    local: IpAddr,
    ifindex: u32,
    /// Whether the decapsulation program is attached there (Ethernet devices only: see
    /// [`try_setup`]).
    ethernet: bool,
    /// The TTL or hop limit of `ttl = "default"` tunnels from `local`: `net.ipv4.ip_default_ttl`,
    /// or the device's `net.ipv6.conf.DEV.hop_limit`.
    default_ttl: u8,
}

/// The fast path's own counters (the programs' are read from their map).
#[derive(Default)]
pub(super) struct Counters {
    /// Entries installed.
    pub(super) installs: AtomicU64,
    /// Installs the kernel refused (the cache full, say).
    pub(super) install_failures: AtomicU64,
    /// Installs skipped by the per-thread rate limit.
    pub(super) installs_limited: AtomicU64,
    /// Entries evicted because no frame used them.
    pub(super) evictions: AtomicU64,
    /// Entries removed because a change made them stale.
    pub(super) invalidations: AtomicU64,
    /// Link, address and route changes heard of (each stales every entry).
    pub(super) underlay_changes: AtomicU64,
    /// Entries in the cache at the last sweep.
    pub(super) entries: AtomicU64,
    /// The programs' counters at the last sweep, in [`Stat::ALL`] order.
    pub(super) kernel: [AtomicU64; Stat::ALL.len()],
}

/// The fast path's lines of `vxtunctl show`: which path is in force, and its counters.
pub(super) fn status(sh: &Shared) -> String {
    let Some(fp) = &sh.fast_path else {
        return format!("fast path: {}\n", sh.fast_path_off);
    };
    let m = metrics(sh);
    format!(
        "fast path: {}\n  cache: {} entries; hits {} (encap {}, decap {}); upcalls {} (encap \
         {}, decap {}); passed up {} (uncacheable {}, too big {}, ecn {}, errors {}); installs {} \
         (refused {}, rate-limited {}); evictions {} idle, {} stale\n",
        fp.description,
        m.entries,
        m.hits[0] + m.hits[1],
        m.hits[0],
        m.hits[1],
        m.upcalls[0] + m.upcalls[1],
        m.upcalls[0],
        m.upcalls[1],
        m.passed.iter().sum::<u64>(),
        m.passed[0],
        m.passed[1],
        m.passed[2],
        m.passed[3],
        m.installs[0],
        m.installs[1],
        m.installs[2],
        m.evictions[0],
        m.evictions[1],
    )
}

/// The fast path's counters for the metrics (all zero while it is not in force).
pub(super) fn metrics(sh: &Shared) -> crate::metrics::FastPathStats {
    let Some(fp) = &sh.fast_path else {
        return Default::default();
    };
    let c = &fp.counters;
    let k = |s: Stat| c.kernel[s as usize].load(Ordering::Relaxed);
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    crate::metrics::FastPathStats {
        active: true,
        entries: n(&c.entries),
        hits: [k(Stat::EncapHit), k(Stat::DecapHit)],
        upcalls: [k(Stat::EncapMiss), k(Stat::DecapMiss)],
        passed: [
            k(Stat::Uncacheable),
            k(Stat::TooBig),
            k(Stat::EcnDrop),
            k(Stat::Error),
        ],
        installs: [
            n(&c.installs),
            n(&c.install_failures),
            n(&c.installs_limited),
        ],
        evictions: [n(&c.evictions), n(&c.invalidations)],
        stale: k(Stat::Stale),
    }
}

/// Sets the fast path up as `config` asks: `Ok(Ok(fp))` when it is in force, `Ok(Err(why))`
/// when it is not (off, or `auto` and the kernel would not have it: logged once), and an error
/// when it is `on` and cannot be.
pub(super) fn setup(
    config: &Config,
    tap: &str,
    generation: &Arc<Generation>,
) -> Result<Result<FastPath, String>, DaemonError> {
    let mode = config.device.fast_path;
    if mode == FastPathMode::Off {
        return Ok(Err("userspace (fast_path = \"off\")".into()));
    }
    match try_setup(config, tap, generation) {
        Ok(fp) => {
            info!("fast path: {}", fp.description);
            Ok(Ok(fp))
        }
        Err(why) if mode == FastPathMode::On => Err(DaemonError::FastPath(why)),
        Err(why) => {
            warn!("fast path off, frames take the userspace path: {why}");
            Ok(Err(format!("userspace (fast_path = \"auto\": {why})")))
        }
    }
}

fn try_setup(config: &Config, tap: &str, generation: &Arc<Generation>) -> Result<FastPath, String> {
    // The encapsulation program hands its packets to the neighbour layer, past the IP output
    // path where IPsec's policies apply: over IPsec they could leave in clear. With any xfrm
    // policy in this namespace, the tunnels take the userspace path, whose sockets the
    // policies cover.
    match netdev::xfrm_policies() {
        Ok(0) => {}
        Ok(n) => {
            return Err(format!(
                "{n} IPsec (xfrm) polic{} in force here, which the fast path's packets \
                 would bypass",
                if n == 1 { "y is" } else { "ies are" }
            ))
        }
        Err(e) => return Err(format!("cannot read the IPsec (xfrm) policies: {e}")),
    }
    let mut devices = Vec::new();
    let mut names = Vec::new();
    // Devices without Ethernet headers (WireGuard's, kernel or wireguard-go's TUN): the
    // decapsulation program reads an Ethernet header first, so it is not attached there and no
    // decapsulation entry is made for them; what arrives there takes the userspace path.
    // Encapsulation to them works (the redirect strips the Ethernet header it is given).
    let mut l3 = Vec::new();
    for local in &config.underlay.local {
        let name = netdev::device_with_address(*local)
            .map_err(|e| format!("finding the device of {local}: {e}"))?
            .ok_or_else(|| format!("no device holds the underlay address {local}"))?;
        let index = netdev::ifindex(&name).map_err(|e| format!("device `{name}`: {e}"))?;
        let ethernet = netdev::is_ethernet(&name).map_err(|e| format!("device `{name}`: {e}"))?;
        let default_ttl = match local {
            IpAddr::V4(_) => sysctl_u8("/proc/sys/net/ipv4/ip_default_ttl"),
            IpAddr::V6(_) => sysctl_u8(&format!("/proc/sys/net/ipv6/conf/{name}/hop_limit")),
        };
        devices.push(Device {
            local: *local,
            ifindex: index,
            ethernet,
            default_ttl,
        });
        let list = if ethernet { &mut names } else { &mut l3 };
        if !list.contains(&name) {
            list.push(name);
        }
    }
    let mut ports: Vec<u16> = config
        .ports
        .iter()
        .filter_map(|p| match &p.kind {
            PortKind::Vxlan(t) => Some(t.dst_port),
            _ => None,
        })
        .collect();
    // The VTEPs BGP EVPN brings are VXLAN ports too.
    ports.extend(config.evpn.as_ref().map(|e| e.dst_port));
    ports.sort_unstable();
    ports.dedup();
    let programs = Programs::load(tap, &names, &ports, config.device.fast_path_entries)
        .map_err(|e| e.to_string())?;
    let publish = programs
        .generation_publisher()
        .map_err(|e| format!("the generation map: {e}"))?;
    generation.set_publisher(publish);
    let tap_ifindex = netdev::ifindex(tap).map_err(|e| format!("device `{tap}`: {e}"))?;
    let decap = match (names.is_empty(), l3.is_empty()) {
        (false, true) => format!("decapsulation on {} ingress", names.join(", ")),
        (false, false) => format!(
            "decapsulation on {} ingress, not on {} (no Ethernet header: userspace)",
            names.join(", "),
            l3.join(", ")
        ),
        (true, _) => format!(
            "no decapsulation: {} has no Ethernet header (userspace)",
            l3.join(", ")
        ),
    };
    let description = format!(
        "kernel (BPF: {} entries at most; encapsulation on {tap} egress, {decap})",
        config.device.fast_path_entries,
    );
    Ok(FastPath {
        programs,
        generation: Arc::clone(generation),
        tap_ifindex,
        devices,
        base: Instant::now(),
        base_ns: crate::io::bpf::monotonic_ns(),
        description,
        counters: Counters::default(),
        sweeper: Default::default(),
    })
}

/// A small number from a sysctl file (a TTL or hop limit); 64, the kernel's default for both,
/// when it cannot be read.
fn sysctl_u8(path: &str) -> u8 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(64)
}

/// A data-path thread's install budget and what it installed last.
pub(super) struct Installer {
    /// The time of the batch being installed.
    pub(super) now: Instant,
    window: Instant,
    used: u32,
    /// Hashes of keys installed in this generation, direct-mapped: a superframe's and a
    /// batch's frames of one flow are installed once.
    recent: [u64; 256],
    /// Entries installed pending, to make active (see [`Installer::activate`]), with when
    /// vxtund last sent a frame of their flow, and when they were installed.
    pending: Vec<(Key, Value, Instant, Instant)>,
}

impl Installer {
    pub(super) fn new() -> Installer {
        Installer {
            now: Instant::now(),
            window: Instant::now(),
            used: 0,
            recent: [0; 256],
            pending: Vec::new(),
        }
    }

    /// Makes the pending entries active: all of them when the thread's queue (TAP queue or
    /// sockets) was just found empty, so that no frame of their flows is left behind in
    /// vxtund to be overtaken; otherwise those pending for [`MAX_PENDING`].
    pub(super) fn activate(&mut self, fp: &FastPath, queue_empty: bool) {
        if self.pending.is_empty() {
            return;
        }
        let now = Instant::now();
        let due = |(_, _, last, installed): &(Key, Value, Instant, Instant)| {
            let quiet = now.saturating_duration_since(*last) >= MIN_PENDING;
            (queue_empty && quiet) || now.saturating_duration_since(*installed) >= MAX_PENDING
        };
        if !self.pending.iter().any(due) {
            return;
        }
        // The sweeper activates entries too (those whose thread never comes back); whoever
        // activates holds its lock, so that an entry already active, and counting in the
        // kernel, is never written over with the counters it had when pending. Never waited
        // for: when the sweeper holds it, the entries wait for this thread's next batch.
        let Ok(_sweeper) = fp.sweeper.try_lock() else {
            return;
        };
        self.pending.retain(|entry| {
            if !due(entry) {
                return true;
            }
            let (key, value, _, _) = entry;
            // Still pending and of this generation: nothing counted it yet. Otherwise it was
            // made active already, or a newer entry replaced it.
            if let Some(current) = fp
                .programs
                .entry(key)
                .filter(|v| v.gen == value.gen && v.pending != 0)
            {
                let active = Value {
                    pending: 0,
                    ..current
                };
                let _ = fp.programs.install(key, &active);
            }
            false
        });
    }

    /// Whether one more install fits the budget, and `key` was not just installed in
    /// `generation`.
    fn admit(&mut self, fp: &FastPath, key: &Key, generation: u64, now: Instant) -> bool {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
        key.hash(&mut h);
        generation.hash(&mut h);
        let tag = h.finish() | 1;
        let slot = (tag as usize) % self.recent.len();
        if self.recent[slot] == tag {
            return false;
        }
        if now.duration_since(self.window) >= INSTALL_WINDOW {
            self.window = now;
            self.used = 0;
        }
        if self.used >= INSTALLS_PER_WINDOW {
            fp.counters.installs_limited.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.used += 1;
        self.recent[slot] = tag;
        true
    }
}

/// Where a frame decided on the underlay side came from: what its key needs beyond the frame.
#[derive(Clone, Copy)]
pub(super) struct Outer {
    pub(super) remote: IpAddr,
    pub(super) local: IpAddr,
    pub(super) via: Via,
}

impl FastPath {
    /// Installs the decision `hint` for `frame`, which came from the TAP (`outer: None`) or
    /// from a tunnel, when the kernel can carry it: TAP to a VXLAN tunnel or to a GRE tunnel
    /// without checksums and sequence numbers, or the reverse, over IPv4 or IPv6 (TCP to VXLAN
    /// over IPv6 excepted, see [`FastPath::encap_entry`]). Anything else stays with the
    /// userspace path, and so does a flow whose send just failed (the caller does not ask):
    /// its failures are counted there.
    pub(super) fn install(
        &self,
        sh: &Shared,
        plumbing: &Plumbing,
        installer: &mut Installer,
        frame: &[u8],
        hint: &CacheHint,
        outer: Option<Outer>,
    ) {
        let now = installer.now;
        let entry = match outer {
            None => self.encap_entry(sh, plumbing, frame, hint, now),
            Some(o) => self.decap_entry(frame, hint, o, now),
        };
        let Some((key, value)) = entry else { return };
        // A frame of a flow this thread made pending: vxtund still carries it, so the
        // hand-over waits for the flow to pause (see `Installer::activate`).
        if let Some(p) = installer
            .pending
            .iter_mut()
            .find(|(k, v, ..)| *k == key && v.gen == value.gen)
        {
            p.2 = now;
            return;
        }
        if !installer.admit(self, &key, hint.generation, now) {
            return;
        }
        // An entry of this generation is there already (pending, or active and this frame
        // was queued before it was): it will do, and installing it again would make it
        // pending again, handing the flow back and forth. One of an older generation, or past
        // its deadline, stopped counting: carry its counters, so that the sweeper misses
        // nothing.
        let value = match self.programs.entry(&key) {
            Some(old)
                if old.gen == value.gen
                    && (old.deadline_ns == 0 || old.deadline_ns >= value.deadline_ns) =>
            {
                return
            }
            Some(old) => Value {
                packets: old.packets,
                bytes: old.bytes,
                ..value
            },
            None => value,
        };
        let pending = pends(&key);
        let value = Value {
            pending: u8::from(pending),
            ..value
        };
        match self.programs.install(&key, &value) {
            Ok(()) => {
                self.counters.installs.fetch_add(1, Ordering::Relaxed);
                if pending {
                    installer.pending.push((key, value, now, now));
                }
            }
            Err(_) => {
                self.counters
                    .install_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn encap_entry(
        &self,
        sh: &Shared,
        plumbing: &Plumbing,
        frame: &[u8],
        hint: &CacheHint,
        now: Instant,
    ) -> Option<(Key, Value)> {
        let key = fastpath::tap_key(frame)?;
        let egress @ Egress::Tunnel {
            per_packet: None, ..
        } = plumbing.egress(hint.egress)?
        else {
            return None;
        };
        // The entry holds what the data path sends this frame with: its encapsulation, and
        // (below) the socket, so the source port, its route takes.
        let ip = IpView::parse(frame);
        let encap = encapsulation_of(egress, frame, ip.as_ref())?;
        let remote = encap.remote;
        let (tunnel, vni, dport) = match encap.tunnel {
            Tunnel::Vxlan { vni, dst_port } => (fastpath::TUN_VXLAN, vni, dst_port),
            // With a checksum or sequence numbers the header changes with every packet
            // (`per_packet` above): vxtund builds those.
            Tunnel::Gre {
                key,
                csum: false,
                seq: false,
            } => (
                fastpath::TUN_GRE,
                key.unwrap_or(0),
                if key.is_some() {
                    fastpath::GRE_KEYED
                } else {
                    0
                },
            ),
            Tunnel::Gre { .. } => return None,
        };
        // Over IPv6 the outer UDP checksum is required, and the kernel's segmentation cannot
        // be asked for it from a BPF program: the program computes it for single frames and
        // leaves superframes to vxtund. A TCP flow would take both paths and be reordered, so
        // TCP to VXLAN over IPv6 is left to vxtund whole.
        if tunnel == fastpath::TUN_VXLAN && remote.is_ipv6() && key.proto == 6 {
            return None;
        }
        let route = route_of(sh, egress, &encap, frame, ip.as_ref(), &mut None);
        let socket = plumbing.sockets.get(route.socket)?;
        let local = socket.local();
        let device = self.device(local)?;
        let (outer_l3, saddr, daddr) = match (local, remote) {
            (IpAddr::V4(l), IpAddr::V4(r)) => (4, fastpath::padded(l), fastpath::padded(r)),
            (IpAddr::V6(l), IpAddr::V6(r)) => (6, l.octets(), r.octets()),
            _ => return None,
        };
        // The program works out per packet what follows the inner packet (ECN always, the
        // DSCP, TTL and DF where they are inherited) as the encapsulation does; the rest is
        // this frame's, the same for every packet of the flow.
        let (tos_inherit, tos) = match encap.inherit.dscp {
            true => (1, 0),
            false => (0, encap.tos & !tunnel::ECN_MASK),
        };
        let (ttl_inherit, ttl) = match (encap.inherit.ttl, encap.ttl) {
            (true, _) => (1, 0),
            (false, Some(t)) => (0, t),
            (false, None) => (0, device.default_ttl),
        };
        let df = match (encap.inherit.df, encap.df) {
            (true, _) => fastpath::DF_INHERIT,
            (false, true) => fastpath::DF_SET,
            (false, false) => fastpath::DF_UNSET,
        };
        let value = Value {
            gen: hint.generation,
            deadline_ns: self.deadline(hint, now),
            action: fastpath::ACT_ENCAP,
            ifindex: device.ifindex,
            mtu: hint.mtu.map_or(0, u32::from),
            vni,
            saddr,
            daddr,
            // VXLAN's sockets send label 0 (see `io::socket`); GRE's own IPv6 headers carry
            // the inner flow's hash (RFC 6438).
            flow_label: match tunnel {
                fastpath::TUN_VXLAN => 0,
                _ => super::plumbing::flow_label(encap.flow_hash),
            },
            sport: if tunnel == fastpath::TUN_VXLAN {
                socket.local_port()
            } else {
                0
            },
            dport,
            tos_inherit,
            tos,
            ttl_inherit,
            ttl,
            df,
            tunnel,
            outer_l3,
            ..Value::default()
        };
        Some((key, value))
    }

    fn decap_entry(
        &self,
        inner: &[u8],
        hint: &CacheHint,
        outer: Outer,
        now: Instant,
    ) -> Option<(Key, Value)> {
        if hint.egress != PortNo::LOCAL {
            return None;
        }
        if !self.device(outer.local).is_some_and(|d| d.ethernet) {
            return None;
        }
        let key = fastpath::tunnel_key(outer.remote, outer.local, outer.via, inner)?;
        let value = Value {
            gen: hint.generation,
            deadline_ns: self.deadline(hint, now),
            action: fastpath::ACT_DECAP,
            ifindex: self.tap_ifindex,
            ..Value::default()
        };
        Some((key, value))
    }

    /// The underlay device holding `local`.
    fn device(&self, local: IpAddr) -> Option<&Device> {
        self.devices.iter().find(|d| d.local == local)
    }

    /// The programs' clock at the hint's expiry, or 0 for none.
    fn deadline(&self, hint: &CacheHint, now: Instant) -> u64 {
        match hint.expires {
            None => 0,
            Some(t) => {
                let at = t.max(now);
                self.base_ns + at.saturating_duration_since(self.base).as_nanos() as u64
            }
        }
    }
}

/// The sweeper: every [`SWEEP`], reads every entry's counters and adds what is new to the
/// switch's counters (ports, flows, MAC learning); evicts idle entries and removes stale ones.
pub(super) fn sweep_loop(sh: &Shared) -> Result<(), ()> {
    let Some(fp) = &sh.fast_path else {
        return Ok(());
    };
    // A link, address or route that changes may take a tunnel's traffic elsewhere, or
    // nowhere: entries decided before then are stale, and frames go to vxtund, which sends
    // (or counts the failure) and caches again once a send works.
    let monitor = match netdev::RouteMonitor::open() {
        Ok(m) => Some(m),
        Err(e) => {
            warn!("fast path: no netlink notifications ({e}); underlay changes are seen late");
            None
        }
    };
    let mut fds = vec![sh.stop.fd()];
    fds.extend(monitor.as_ref().map(|m| m.fd()));
    let mut poller = crate::io::Poller::new(&fds);
    let mut next = Instant::now() + SWEEP;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match poller.wait_timeout(Some(wait)) {
            Err(e) => {
                tracing::error!("fast path sweeper: waiting: {e}");
                return Err(());
            }
            Ok(()) if poller.ready(0) => return Ok(()),
            Ok(()) => {}
        }
        if let Some(m) = monitor.as_ref().filter(|_| poller.ready(1)) {
            if m.changed() {
                fp.generation.bump();
                fp.counters.underlay_changes.fetch_add(1, Ordering::Relaxed);
            }
        }
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + SWEEP;
        sh.lives.of(super::notify::Role::FastPath).beat();
        fp.sync(sh);
    }
}

/// The sweeper's state: what it last read of each entry, and its read buffer.
#[derive(Default)]
struct Sweeper {
    seen: HashMap<Key, Seen>,
    entries: Vec<(Key, Value)>,
}

impl FastPath {
    /// Folds what the kernel forwarded since the last time into the switch's counters (and
    /// evicts what is idle or stale): every [`SWEEP`], and before every read of the counters
    /// (`show`, dump-flows, a scrape, SIGUSR1), so that those read exact numbers.
    pub(super) fn sync(&self, sh: &Shared) {
        let mut state = self.sweeper.lock().unwrap_or_else(|p| p.into_inner());
        let Sweeper { seen, entries } = &mut *state;
        sweep(sh, self, seen, entries);
    }
}

/// What the sweeper last read of an entry.
struct Seen {
    /// When the sweeper first saw it.
    since: Instant,
    packets: u64,
    bytes: u64,
    active: Instant,
}

fn sweep(
    sh: &Shared,
    fp: &FastPath,
    seen: &mut HashMap<Key, Seen>,
    entries: &mut Vec<(Key, Value)>,
) {
    for (slot, value) in fp.counters.kernel.iter().zip(fp.programs.stats()) {
        slot.store(value, Ordering::Relaxed);
    }
    if let Err(e) = fp.programs.entries(entries) {
        tracing::debug!("fast path sweeper: reading the cache: {e}");
        return;
    }
    let now = Instant::now();
    let full = entries.len() as f64 >= FULL * f64::from(fp.programs.capacity);
    let mut used = Vec::new();
    let mut gone = Vec::new();
    let generation = fp.generation.current();
    for (key, value) in entries.iter() {
        let last = seen.entry(*key).or_insert(Seen {
            packets: 0,
            bytes: 0,
            active: now,
            since: now,
        });
        // A pending entry whose thread never came back to it (its flow's frames went to
        // another queue's thread, or stopped): made active here, a sweep later. Read again
        // first: a thread may have installed a newer one since the batch was read.
        if value.pending != 0 && value.gen == generation {
            if now.saturating_duration_since(last.since) >= SWEEP {
                if let Some(current) = fp
                    .programs
                    .entry(key)
                    .filter(|v| v.gen == value.gen && v.pending != 0)
                {
                    let active = Value {
                        pending: 0,
                        ..current
                    };
                    let _ = fp.programs.install(key, &active);
                }
            }
            continue;
        }
        // A reinstalled entry carries its counters over; one that starts lower was replaced
        // after a removal.
        if value.packets < last.packets {
            last.packets = 0;
            last.bytes = 0;
        }
        if value.packets > last.packets {
            used.push((
                *key,
                *value,
                value.packets - last.packets,
                value.bytes.saturating_sub(last.bytes),
            ));
            last.packets = value.packets;
            last.bytes = value.bytes;
            last.active = now;
        }
        let idle = now.saturating_duration_since(last.active);
        if value.gen != generation {
            gone.push((*key, true));
        } else if idle >= MAX_IDLE || (full && idle >= MAX_IDLE_FULL) {
            gone.push((*key, false));
        }
    }
    if !used.is_empty() {
        let mut core = lock(sh, sh.control_core());
        let sw = &mut core.switch;
        for (key, value, packets, bytes) in used {
            let (ingress, egress) = match value.action {
                fastpath::ACT_ENCAP => {
                    let remote = fastpath::address(value.outer_l3, value.daddr);
                    let port = match value.tunnel {
                        fastpath::TUN_GRE => sw.gre_port(
                            remote,
                            (value.dport == fastpath::GRE_KEYED).then_some(value.vni),
                        ),
                        _ => sw.vxlan_port(remote, value.dport, value.vni),
                    };
                    (Some(PortNo::LOCAL), port)
                }
                _ => {
                    let port = match (key.remote(), key.via()) {
                        (Some(r), Some(Via::Vxlan { port, vni })) => sw.vxlan_port(r, port, vni),
                        (Some(r), Some(Via::Gre { key })) => sw.gre_port(r, key),
                        _ => None,
                    };
                    (port, Some(PortNo::LOCAL))
                }
            };
            if let (Some(i), Some(e)) = (ingress, egress) {
                sw.record_cached(i, e, &key.frame_key(), packets, bytes, now);
            }
        }
    }
    for (key, stale) in gone {
        if fp.programs.remove(&key).is_ok() {
            seen.remove(&key);
            let counter = match stale {
                true => &fp.counters.invalidations,
                false => &fp.counters.evictions,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
    let present: std::collections::HashSet<Key> = entries.iter().map(|(k, _)| *k).collect();
    seen.retain(|k, _| present.contains(k));
    fp.counters
        .entries
        .store(present.len() as u64, Ordering::Relaxed);
}
