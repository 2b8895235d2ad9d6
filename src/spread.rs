//! Balanced outer source ports for VXLAN (`[underlay] flow_spread = "balance"`).
//!
//! By default a flow's outer source port comes from its hash (RFC 7348 section 5), and so does
//! the worker that receives it at the far end: a few flows land on the workers as dice fall
//! (four over two split two and two only three times in eight). With `balance`, each new TCP
//! connection (a segment with SYN) takes the next *turn*, 0 to 15, in order, and keeps it for
//! as long as it is active; a turn names a source port of the pool whose residue modulo 16 is
//! the turn's (as nearly as the pool has one), and a receiving vxtund picks its worker by the
//! outer source port modulo its workers, so consecutive connections go to consecutive workers
//! at the far end. Everything else (UDP, a connection whose SYN found no room) keeps the hash.
//!
//! The table is shared by every data-path thread without a lock: a connection's SYN may leave
//! from one worker and its data from another. An entry is one word: the flow's hash, its turn
//! and when it was last used. A SYN takes an empty or idle slot; an active flow's slot is
//! never taken, so a flow's port (and with it its receiving worker) never changes while its
//! frames may be on the way, and frames of one flow are never reordered by this.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::wire::ip::IpView;

/// Slots in the table; a SYN whose slot holds another active flow keeps the hash.
pub const SLOTS: usize = 4096;
/// Turns: the residues modulo 16 of the source ports.
pub const TURNS: usize = 16;
/// Seconds a slot stays its flow's after the flow's last frame.
pub const IDLE_SECS: u32 = 60;

/// The shared table of connections and their turns. The turns themselves are counted per
/// pool of source ports ([`Turns`]): connections to different peers, or alternating between
/// them, would otherwise leave each peer every other turn, and with two workers all on one.
pub struct Balancer {
    slots: Box<[AtomicU64]>,
}

/// The next turn of one pool of source ports (one tunnel's, for one DF setting).
#[derive(Debug, Default)]
pub struct Turns(AtomicU32);

impl Turns {
    fn take(&self) -> u8 {
        (self.0.fetch_add(1, Ordering::Relaxed) % TURNS as u32) as u8
    }
}

impl Default for Balancer {
    fn default() -> Self {
        Balancer::new()
    }
}

/// A slot's word: the flow's hash, a bit that says the slot is held (so that no flow looks
/// like an empty slot), its turn, and the clock when it was last used.
fn pack(hash: u32, turn: u8, secs: u32) -> u64 {
    (u64::from(hash) << 32) | HELD | (u64::from(turn & 0x7f) << 24) | u64::from(secs & 0x00ff_ffff)
}

/// The held bit of a slot's word.
const HELD: u64 = 1 << 31;

/// Whether a slot's word is free at `secs`: never held, or last used over [`IDLE_SECS`] ago
/// (on the 24-bit clock, which wraps).
fn free(word: u64, secs: u32) -> bool {
    let (_, _, last) = unpack(word);
    word & HELD == 0 || secs.wrapping_sub(last) & 0x00ff_ffff > IDLE_SECS
}

fn unpack(word: u64) -> (u32, u8, u32) {
    (
        (word >> 32) as u32,
        ((word >> 24) & 0x7f) as u8,
        (word & 0x00ff_ffff) as u32,
    )
}

impl Balancer {
    /// An empty table.
    pub fn new() -> Balancer {
        Balancer {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// How many connections hold a turn at `secs` (used within [`IDLE_SECS`]): for
    /// `vxtunctl show`, read on the control thread.
    pub fn active(&self, secs: u32) -> usize {
        self.slots
            .iter()
            .filter(|slot| !free(slot.load(Ordering::Relaxed), secs))
            .count()
    }

    /// The turn of the flow with `hash`, if it has one: a `syn` segment gives a new flow the
    /// next of `turns` where its slot is free. `secs` is a coarse clock (seconds, any origin,
    /// 24 bits are used). `None`: the flow keeps its hash.
    pub fn turn(&self, hash: u32, syn: bool, secs: u32, turns: &Turns) -> Option<u8> {
        let secs = secs & 0x00ff_ffff;
        let slot = &self.slots[(hash as usize) % SLOTS];
        let word = slot.load(Ordering::Relaxed);
        let (held, turn, last) = unpack(word);
        if word & HELD != 0 && held == hash {
            if last != secs {
                // Refreshed once a second at most: the slot's cache line stays shared.
                let _ = slot.compare_exchange(
                    word,
                    pack(hash, turn, secs),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            return Some(turn);
        }
        if !syn {
            return None;
        }
        if !free(word, secs) {
            return None;
        }
        let turn = turns.take();
        match slot.compare_exchange(
            word,
            pack(hash, turn, secs),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => Some(turn),
            // Another thread took the slot first: for this flow (a SYN sent twice at once)
            // its turn, for another one the hash.
            Err(now) => {
                let (held, turn, _) = unpack(now);
                (held == hash).then_some(turn)
            }
        }
    }
}

/// For each turn, which of a pool's source ports serves it: the port whose residue modulo 16
/// equals the turn, or failing that modulo 8, 4, 2, so that consecutive turns alternate over
/// any receiver's worker count that divides 16 as far as the ports allow. Ports bound by the
/// kernel fall where they fall; each turn gets the best there is, the lowest index on ties.
pub fn turn_table(ports: &[u16]) -> [u8; TURNS] {
    let mut table = [0u8; TURNS];
    for (turn, entry) in table.iter_mut().enumerate() {
        let score = |p: u16| {
            (1..=4)
                .take_while(|&bits| usize::from(p) % (1 << bits) == turn % (1 << bits))
                .count()
        };
        let best = (0..ports.len()).max_by_key(|&i| (score(ports[i]), std::cmp::Reverse(i)));
        *entry = best.map_or(0, |i| u8::try_from(i).unwrap_or(0));
    }
    table
}

/// For a TCP segment (not a fragment of one), whether it has SYN set: a connection starting,
/// at either end. `None` for anything else, which keeps the hash.
pub fn tcp_syn(frame: &[u8], ip: &IpView) -> Option<bool> {
    const IPPROTO_TCP: u8 = 6;
    const IPV4_MF_OR_OFFSET: u16 = 0x3fff;
    if ip.proto != IPPROTO_TCP || ip.frag & IPV4_MF_OR_OFFSET != 0 {
        return None;
    }
    let flags = frame.get(ip.l3 + ip.header_len + 13)?;
    Some(flags & 0x02 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_take_turns_and_keep_them() {
        let (b, pool) = (Balancer::new(), Turns::default());
        let turns: Vec<Option<u8>> = (1..=5)
            .map(|h| b.turn(h * 7919, true, 100, &pool))
            .collect();
        assert_eq!(turns, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
        // Later segments of each, and a SYN again (retransmitted): the same turn.
        for h in 1..=5u32 {
            assert_eq!(b.turn(h * 7919, false, 130, &pool), turns[h as usize - 1]);
            assert_eq!(b.turn(h * 7919, true, 131, &pool), turns[h as usize - 1]);
        }
        // Not a connection start and unknown: the hash.
        assert_eq!(b.turn(424_242, false, 131, &pool), None);
        // A flow whose word would be all zeros but for the held bit is no empty slot.
        assert_eq!(b.turn(0, true, 0, &Turns::default()), Some(0));
        assert_eq!(b.turn(0, false, 1, &pool), Some(0));
        assert_eq!(b.turn(SLOTS as u32, true, 1, &pool), None, "slot 0 is held");
        assert_eq!(
            b.active(131),
            5,
            "the five flows; flow 0 idle since second 1"
        );
        assert_eq!(b.active(131 + IDLE_SECS + 1), 0, "all idle by then");
    }

    #[test]
    fn each_pool_counts_its_own_turns() {
        // Connections alternating between two peers still take consecutive turns with each.
        let (b, x, y) = (Balancer::new(), Turns::default(), Turns::default());
        let got: Vec<Option<u8>> = (1..=6u32)
            .map(|h| b.turn(h, true, 5, if h % 2 == 0 { &x } else { &y }))
            .collect();
        assert_eq!(got, [Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)]);
    }

    #[test]
    fn an_active_flow_keeps_its_slot_and_an_idle_one_gives_it_up() {
        let (b, t) = (Balancer::new(), Turns::default());
        let a = 5;
        let other = 5 + SLOTS as u32; // the same slot
        assert_eq!(b.turn(a, true, 1_000, &t), Some(0));
        assert_eq!(
            b.turn(other, true, 1_000 + IDLE_SECS, &t),
            None,
            "a is active"
        );
        assert_eq!(
            b.turn(a, false, 1_000 + IDLE_SECS, &t),
            Some(0),
            "a refreshed"
        );
        let later = 1_000 + 2 * IDLE_SECS + 1;
        assert_eq!(
            b.turn(other, true, later, &t),
            Some(1),
            "a idle: other takes it"
        );
        assert_eq!(
            b.turn(a, false, later, &t),
            None,
            "a keeps the hash from now on"
        );
        // The clock wraps at 24 bits without making an active flow idle.
        let wrap = 0x00ff_ffff;
        let c = 77;
        assert_eq!(b.turn(c, true, wrap, &t), Some(2));
        assert_eq!(b.turn(c + SLOTS as u32, true, wrap + 5, &t), None);
    }

    #[test]
    fn turns_map_to_ports_of_their_residue() {
        let ports: Vec<u16> = (50_000..50_016).rev().collect();
        let table = turn_table(&ports);
        for (turn, &i) in table.iter().enumerate() {
            assert_eq!(usize::from(ports[usize::from(i)]) % 16, turn);
        }
        // Ports the kernel picked: consecutive turns still alternate in parity where they can.
        let ports = [40_001, 40_003, 40_010, 40_100, 40_007];
        let table = turn_table(&ports);
        for (turn, &i) in table.iter().enumerate() {
            assert_eq!(
                usize::from(ports[usize::from(i)]) % 2,
                turn % 2,
                "turn {turn}"
            );
        }
        assert_eq!(turn_table(&[]), [0; TURNS]);
        assert_eq!(turn_table(&[7]), [0; TURNS]);
    }

    #[test]
    fn syn_is_read_from_tcp_segments_only() {
        // Ethernet, IPv4 (20 bytes, TCP), a TCP header.
        let mut seg = vec![0u8; 54];
        seg[12..14].copy_from_slice(&[0x08, 0x00]);
        seg[14] = 0x45;
        seg[16..18].copy_from_slice(&40u16.to_be_bytes());
        seg[23] = 6;
        let ip = IpView::parse(&seg).unwrap();
        assert_eq!(tcp_syn(&seg, &ip), Some(false));
        seg[34 + 13] = 0x12; // SYN+ACK
        assert_eq!(tcp_syn(&seg, &ip), Some(true));
        assert_eq!(tcp_syn(&seg[..40], &ip), None, "short");
        seg[20] = 0x20; // MF: a fragment
        let ip = IpView::parse(&seg).unwrap();
        assert_eq!(tcp_syn(&seg, &ip), None);
        seg[20] = 0;
        seg[23] = 17; // UDP
        let ip = IpView::parse(&seg).unwrap();
        assert_eq!(tcp_syn(&seg, &ip), None);
    }
}
