//! The underlay sockets and how a frame leaves by each port (its egress): built for a config
//! and rebuilt on reload, reusing the sockets that still fit.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use socket2::SockAddr;

use crate::config::Config;
use crate::flow::PortNo;
use crate::io::socket::{SocketError, SocketKind, SourcePorts, UnderlaySocket};
use crate::spread;
use crate::switch::{DfMode, Port, PortKind};
use crate::wire::{gre, vxlan, IPV4_HEADER_LEN, IPV6_HEADER_LEN};

/// Sending VXLAN sockets per (local address, DF setting, source-port range), each bound to its
/// own source port: inner flows are spread over them by their hash (RFC 7348 section 5), so
/// that many flows use up to this many outer source ports.
pub(super) const SOURCE_PORTS: usize = 16;

/// Where the encapsulation header starts in an [`Encap`]: after room for an outer IPv6 header.
const ENCAP_AT: usize = IPV6_HEADER_LEN;
/// Where an outer IPv4 header starts in an [`Encap`].
const V4_AT: usize = ENCAP_AT - IPV4_HEADER_LEN;
/// Offset of the TOS byte in an outer IPv4 header.
const V4_TOS: usize = 1;
/// Offset of the TTL in an outer IPv4 header.
const V4_TTL: usize = 8;
/// Offset of the payload length in an outer IPv6 header.
const V6_PAYLOAD_LEN: usize = 4;
/// Offset of the hop limit in an outer IPv6 header.
const V6_HOP_LIMIT: usize = 7;
/// The flow label's 20 bits.
const FLOW_LABEL: u32 = 0xf_ffff;

/// How a frame leaves by a port.
// One per port, looked up per frame: keeping tunnels inline (no Box) saves a pointer chase.
#[allow(clippy::large_enum_variant)]
pub(super) enum Egress {
    Local,
    Tunnel {
        /// The sockets sending with DF set and with DF clear (the same one unless `df` is
        /// `inherit`; over IPv6 both are the one socket): the first of a pool of `spread`
        /// sockets (VXLAN, one source port each) or the one GRE socket (`spread` 1).
        sockets: [usize; 2],
        spread: [usize; 2],
        /// Per pool, which of its sockets serves each turn of `flow_spread = "balance"`, and
        /// the pool's next turn.
        turns: [[u8; spread::TURNS]; 2],
        next_turn: [spread::Turns; 2],
        /// The switch's port this egress sends for (the same config's, swapped in with it):
        /// every send's encapsulation is its [`Port::encapsulation`].
        port: Port,
        dst: SockAddr,
        /// The encapsulation header, when it is the same for every packet, with the outer
        /// IPv4 header in front for sockets that take it.
        header: Encap,
        /// For GRE with a checksum or sequence numbers: the header is built per packet.
        per_packet: Option<PerPacketGre>,
    },
}

/// An encapsulation header (VXLAN or GRE) with room in front for the outer IP header, which
/// the sockets of GRE with DF take from the sender (see [`UnderlaySocket::outer_header`] and
/// [`UnderlaySocket::outer_header_v6`]).
#[derive(Clone, Copy)]
pub(super) struct Encap {
    bytes: [u8; ENCAP_AT + gre::MAX_LEN],
    /// Length of the encapsulation header, which starts at `ENCAP_AT`.
    len: usize,
}

impl Encap {
    pub(super) const EMPTY: Encap = Encap {
        bytes: [0; ENCAP_AT + gre::MAX_LEN],
        len: 0,
    };

    /// Room for the encapsulation header.
    pub(super) fn room(&mut self) -> &mut [u8; gre::MAX_LEN] {
        let tail = &mut self.bytes[ENCAP_AT..];
        tail.try_into().expect("sized to the maximum header")
    }

    /// What to send in front of the frame: the encapsulation header, after the outer IP
    /// header when `socket` takes one.
    pub(super) fn for_socket(&self, socket: &UnderlaySocket) -> &[u8] {
        let start = match (socket.writes_ip_header(), socket.local().is_ipv4()) {
            (false, _) => ENCAP_AT,
            (true, true) => V4_AT,
            (true, false) => 0,
        };
        &self.bytes[start..ENCAP_AT + self.len]
    }

    /// Fills in the per-packet fields of the outer header in front, for a socket that takes
    /// it from the sender: the TOS / traffic class, the TTL / hop limit (unless 0: the
    /// socket's), and over IPv6 the flow label (from the inner flow's hash, RFC 6438) and the
    /// payload length (this header and `payload` bytes).
    pub(super) fn set_outer(&mut self, v6: bool, tos: u8, ttl: u8, hash: u32, payload: usize) {
        if !v6 {
            self.bytes[V4_AT + V4_TOS] = tos;
            if ttl != 0 {
                self.bytes[V4_AT + V4_TTL] = ttl;
            }
            return;
        }
        let flow = flow_label(hash);
        let first = (6 << 28) | (u32::from(tos) << 20) | flow;
        self.bytes[..4].copy_from_slice(&first.to_be_bytes());
        let len = u16::try_from(self.len + payload).unwrap_or(0);
        self.bytes[V6_PAYLOAD_LEN..V6_PAYLOAD_LEN + 2].copy_from_slice(&len.to_be_bytes());
        if ttl != 0 {
            self.bytes[V6_HOP_LIMIT] = ttl;
        }
    }
}

/// The outer IPv6 flow label of an inner flow with `hash` (RFC 6438).
pub(super) fn flow_label(hash: u32) -> u32 {
    hash & FLOW_LABEL
}

/// A GRE header that changes with every packet.
pub(super) struct PerPacketGre {
    template: gre::Header,
    /// The next sequence number, when sequence numbers are sent; shared with the plumbing a
    /// reload replaces, so numbers never go back. Numbers are drawn and their packets sent
    /// under this lock, so they leave in order whichever thread sends.
    pub(super) next_seq: Option<Arc<Mutex<u32>>>,
}

impl PerPacketGre {
    /// Writes the GRE header for `payload` with sequence number `seq` (if the tunnel sends
    /// them) into `out`.
    pub(super) fn encode(&self, payload: &[u8], seq: Option<u32>, out: &mut Encap) {
        out.len = gre::Header {
            seq: seq.filter(|_| self.next_seq.is_some()),
            ..self.template
        }
        .encode(payload, out.room());
    }
}

/// The underlay sockets and how frames leave by each port. Built for a config, and rebuilt on
/// reload; it is swapped together with the switch so that every frame is decided and sent
/// under one configuration.
pub(super) struct Plumbing {
    pub(super) sockets: Vec<Arc<UnderlaySocket>>,
    /// Sorted by port.
    pub(super) egress: Vec<(PortNo, Egress)>,
}

/// The receiving group of a VXLAN port ([`UnderlaySocket::udp_group`]). On a reload (`old`)
/// a group of the same port that an earlier reload retired may still be open for a moment,
/// until every worker has read it a last time, and the kernel refuses a new group beside it:
/// wait for it a little (this runs on the control thread, never on the data path).
fn receiving_group(
    local: std::net::IpAddr,
    port: u16,
    workers: usize,
    offload: bool,
    old: Option<&Plumbing>,
) -> Result<Vec<UnderlaySocket>, SocketError> {
    let mut tries = if old.is_some() { 20 } else { 1 };
    loop {
        match UnderlaySocket::udp_group(local, port, workers, offload) {
            Err(SocketError::Bind { source, .. })
                if tries > 1 && source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                tries -= 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

impl Plumbing {
    /// Opens the sockets `config` needs, taking over those of `old` (the plumbing in force) that
    /// fit, and works out every port's egress: `workers` receiving VXLAN sockets per address
    /// and port. GRE sequence numbers continue where `old` was.
    pub(super) fn build(
        config: &Config,
        old: Option<&Plumbing>,
        workers: usize,
    ) -> Result<Plumbing, SocketError> {
        let mut sockets: Vec<Arc<UnderlaySocket>> = Vec::new();
        let mut egress = vec![(PortNo::LOCAL, Egress::Local)];
        for (port, remote) in config.tunnels() {
            let Some(local) = config.underlay.local_for(remote) else {
                continue; // refused by config validation
            };
            let (kind, dst_port) = match &port.kind {
                PortKind::Vxlan(t) => (SocketKind::Udp(t.dst_port), t.dst_port),
                _ => (SocketKind::Gre, 0),
            };
            let df = port.options.df;
            // Each kind has its receiving sockets per address: for VXLAN on the tunnel's port,
            // for GRE one raw socket that never sends. Senders receive nothing: a pool of UDP
            // sockets on source ports of their own, or a raw GRE socket per DF setting; so a
            // reload never has two receiving copies of one packet.
            let same = |s: &UnderlaySocket| s.kind() == kind && s.local() == local;
            let receiver = |s: &UnderlaySocket| same(s) && s.receives();
            if !sockets.iter().any(|s| receiver(s)) {
                // VXLAN: a group of sockets on the tunnel's port (SO_REUSEPORT), one or two
                // per worker, steered by the outer source address and port and by whether
                // the datagram had an outer checksum (see `UnderlaySocket::udp_group`).
                // GRE: one (every raw socket would get a copy of every packet). A reload
                // takes the group over whole, in order: the kernel indexes it by that order.
                let start = sockets.len();
                let reused = old.map(|o| o.sockets.iter().filter(|s| receiver(s)));
                sockets.extend(reused.into_iter().flatten().cloned());
                if sockets.len() == start {
                    match kind {
                        SocketKind::Udp(p) => sockets.extend(
                            receiving_group(local, p, workers, config.underlay.offload, old)?
                                .into_iter()
                                .map(Arc::new),
                        ),
                        SocketKind::Gre => {
                            sockets.push(Arc::new(UnderlaySocket::gre(local, true, true)?))
                        }
                    }
                }
            }
            let source_ports = match port.options.src_port_range {
                Some((min, max)) => SourcePorts::Range(min, max),
                None => SourcePorts::Kernel,
            };
            let mut socket_for = |want_df: bool| -> Result<(usize, usize), SocketError> {
                // DF means nothing over IPv6: one socket serves both.
                let want_df = want_df || local.is_ipv6();
                let fits = |s: &UnderlaySocket| {
                    same(s)
                        && !s.receives()
                        && s.df() == want_df
                        && s.pool().map(|p| p.0)
                            == (kind != SocketKind::Gre).then_some(source_ports)
                };
                if let Some(i) = sockets.iter().position(|s| fits(s)) {
                    let n = sockets[i..].iter().take_while(|s| fits(s)).count();
                    return Ok((i, n));
                }
                let start = sockets.len();
                let reused = old.map(|o| o.sockets.iter().filter(|s| fits(s)));
                sockets.extend(reused.into_iter().flatten().cloned());
                if sockets.len() == start {
                    match kind {
                        SocketKind::Udp(p) => sockets.extend(
                            UnderlaySocket::udp_pool(
                                local,
                                p,
                                source_ports,
                                SOURCE_PORTS,
                                want_df,
                                config.underlay.offload,
                            )?
                            .into_iter()
                            .map(Arc::new),
                        ),
                        SocketKind::Gre => {
                            sockets.push(Arc::new(UnderlaySocket::gre(local, want_df, false)?))
                        }
                    }
                }
                Ok((start, sockets.len() - start))
            };
            let socket_df = if df == DfMode::Unset {
                None
            } else {
                Some(socket_for(true)?)
            };
            let socket_nodf = if df == DfMode::Set {
                None
            } else {
                Some(socket_for(false)?)
            };
            let pair = [
                socket_df.or(socket_nodf).unwrap_or((0, 1)),
                socket_nodf.or(socket_df).unwrap_or((0, 1)),
            ];
            let sockets_pair = [pair[0].0, pair[1].0];
            let spread = [pair[0].1, pair[1].1];
            let turns = pair.map(|(first, n)| {
                let ports: Vec<u16> = sockets
                    .get(first..first + n)
                    .unwrap_or_default()
                    .iter()
                    .map(|s| s.local_port())
                    .collect();
                spread::turn_table(&ports)
            });
            let mut header = Encap::EMPTY;
            for &i in &sockets_pair {
                if let Some(outer) = sockets[i].outer_header(remote) {
                    header.bytes[V4_AT..ENCAP_AT].copy_from_slice(&outer);
                }
                if let Some(outer) = sockets[i].outer_header_v6(remote) {
                    header.bytes[..ENCAP_AT].copy_from_slice(&outer);
                }
            }
            let (header_len, per_packet) = match &port.kind {
                PortKind::Vxlan(t) => {
                    header.room()[..vxlan::HEADER_LEN]
                        .copy_from_slice(&vxlan::Header { vni: t.vni }.encode());
                    (vxlan::HEADER_LEN, None)
                }
                PortKind::Gre(t) if !t.csum && !t.seq => {
                    let h = gre::Header {
                        csum: false,
                        key: t.key,
                        seq: None,
                    };
                    (h.encode(&[], header.room()), None)
                }
                PortKind::Gre(t) => {
                    let template = gre::Header {
                        csum: t.csum,
                        key: t.key,
                        seq: None,
                    };
                    let next_seq = t
                        .seq
                        .then(|| old.and_then(|o| o.seq_counter(port.no)).unwrap_or_default());
                    (0, Some(PerPacketGre { template, next_seq }))
                }
                PortKind::Local => continue,
            };
            header.len = header_len;
            let dst = SockAddr::from(SocketAddr::new(remote, dst_port));
            egress.push((
                port.no,
                Egress::Tunnel {
                    sockets: sockets_pair,
                    spread,
                    turns,
                    next_turn: Default::default(),
                    port: port.clone(),
                    dst,
                    header,
                    per_packet,
                },
            ));
        }
        egress.sort_by_key(|e| e.0);
        Ok(Plumbing { sockets, egress })
    }

    /// The receiving sockets worker `worker` of `workers` reads: the n-th receiving socket of
    /// each (kind, address) goes to worker n modulo `workers`, so that every socket is read
    /// whatever the number of workers.
    pub(super) fn receivers(
        &self,
        worker: usize,
        workers: usize,
    ) -> impl Iterator<Item = &Arc<UnderlaySocket>> {
        self.sockets
            .iter()
            .enumerate()
            .filter(move |&(i, s)| {
                let rank = self.sockets[..i]
                    .iter()
                    .filter(|t| t.receives() && t.kind() == s.kind() && t.local() == s.local())
                    .count();
                s.receives() && rank % workers.max(1) == worker
            })
            .map(|(_, s)| s)
    }

    pub(super) fn egress(&self, port: PortNo) -> Option<&Egress> {
        self.egress
            .binary_search_by_key(&port, |e| e.0)
            .ok()
            .map(|i| &self.egress[i].1)
    }

    /// The GRE sequence counter of `port`, if it sends sequence numbers.
    fn seq_counter(&self, port: PortNo) -> Option<Arc<Mutex<u32>>> {
        match self.egress(port)? {
            Egress::Tunnel {
                per_packet: Some(g),
                ..
            } => g.next_seq.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_keeps_the_sockets_that_still_fit_and_opens_only_new_ones() {
        // Unprivileged: UDP on loopback, on a port of this test's own.
        let port = crate::testing::free_udp_port();
        let config = |tunnels: &str| {
            let text =
                format!("[device]\nqueues = 2\n[underlay]\nlocal = \"127.0.0.1\"\n{tunnels}");
            Config::parse(std::path::Path::new("t.toml"), &text).unwrap()
        };
        let tunnel = |name: &str, last: u8, extra: &str| {
            format!(
                "[[tunnel]]\nname = \"{name}\"\ntype = \"vxlan\"\nremote = \"127.0.0.{last}\"\n\
                 dst_port = {port}\n{extra}"
            )
        };
        let first = config(&(tunnel("a", 2, "") + &tunnel("b", 3, "df = \"inherit\"\n")));
        let old = Plumbing::build(&first, None, first.device.queue_count()).unwrap();
        assert_eq!(
            old.sockets.len(),
            4 + 2 * SOURCE_PORTS,
            "two receiving per worker (outer checksum zero, present), a pool with DF set and \
             one with DF clear"
        );
        let receivers: Vec<_> = old.sockets.iter().filter(|s| s.receives()).collect();
        assert_eq!(receivers.len(), 4);
        assert!(receivers.iter().all(|s| s.local_port() == port));
        let verified: Vec<bool> = receivers
            .iter()
            .map(|s| s.outer_checksum_verified())
            .collect();
        assert_eq!(
            verified,
            [false, false, true, true],
            "the order the program indexes"
        );
        // Worker w reads sockets w and 2 + w; with one worker, it reads all four.
        for w in 0..2 {
            let mine: Vec<_> = old.receivers(w, 2).collect();
            assert_eq!(mine.len(), 2);
            assert!(Arc::ptr_eq(mine[0], receivers[w]));
            assert!(Arc::ptr_eq(mine[1], receivers[2 + w]));
        }
        assert_eq!(old.receivers(0, 1).count(), 4);
        let receiving = receivers[0];
        let source_ports: std::collections::HashSet<u16> =
            old.sockets[4..].iter().map(|s| s.local_port()).collect();
        assert_eq!(source_ports.len(), 2 * SOURCE_PORTS, "a source port each");
        let df_set = old
            .sockets
            .iter()
            .find(|s| s.df() && !s.receives())
            .unwrap();

        let second = config(&(tunnel("a", 2, "") + &tunnel("c", 4, "vni = 5\n")));
        let new = Plumbing::build(&second, Some(&old), 2).unwrap();
        assert_eq!(
            new.sockets.len(),
            4 + SOURCE_PORTS,
            "only the DF set pool is still needed"
        );
        assert!(
            Arc::ptr_eq(&new.sockets[0], receiving),
            "the same receivers, in the same order"
        );
        for (new, old) in new.sockets.iter().zip(&receivers).skip(1) {
            assert!(Arc::ptr_eq(new, old));
        }
        assert!(Arc::ptr_eq(&new.sockets[4], df_set), "and the same senders");
        assert!(new.egress(PortNo(3)).is_some() && new.egress(PortNo(4)).is_none());
    }

    #[test]
    fn a_port_given_back_by_one_reload_and_taken_again_by_the_next_waits_for_the_old_group() {
        // Unprivileged: loopback, ports of this test's own.
        let (port, other) = (
            crate::testing::free_udp_port(),
            crate::testing::free_udp_port(),
        );
        let config = |dst: u16| {
            let text = format!(
                "[device]\nqueues = 2\n[underlay]\nlocal = \"127.0.0.1\"\n[[tunnel]]\n\
                 name = \"a\"\ntype = \"vxlan\"\nremote = \"127.0.0.2\"\ndst_port = {dst}\n"
            );
            Config::parse(std::path::Path::new("t.toml"), &text).unwrap()
        };
        let p = Plumbing::build(&config(port), None, 2).unwrap();
        let q = Plumbing::build(&config(other), Some(&p), 2).unwrap();
        // The workers still hold P's group for a moment after the reload to Q.
        let retired = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(p);
        });
        let again = Plumbing::build(&config(port), Some(&q), 2).unwrap();
        retired.join().unwrap();
        assert_eq!(again.sockets.iter().filter(|s| s.receives()).count(), 4);
        // At start (no reload) a port in use fails at once.
        let started = std::time::Instant::now();
        assert!(Plumbing::build(&config(port), None, 2).is_err());
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }
}
