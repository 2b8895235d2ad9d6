//! One BGP session's finite state machine (RFC 4271 section 8), sans-IO: the shell tells it
//! that the TCP connection is up ([`Session::connected`]), feeds it received bytes
//! ([`Session::receive`]) and the time ([`Session::tick`]), takes what it must send
//! ([`Session::take_transmit`]) and what happened ([`Session::poll_event`]), and sleeps until
//! [`Session::deadline`]. States: Idle, Connect (TCP under way), OpenSent, OpenConfirm,
//! Established. Hold timer and keepalives as negotiated (a hold time of 0 means neither);
//! every error ends the session with the NOTIFICATION it calls for.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, GracefulRestartCapability,
    MultiProtocolExtensionsCapability,
};
use netgauze_bgp_pkt::iana::AS_TRANS;
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::update::BgpUpdateMessage;
use netgauze_bgp_pkt::wire::deserializer::path_attribute::PathAttributeParsingError;
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::AddressType;

use super::message::{self, code, Decoder, Notification};

/// The hold time while waiting for the peer's OPEN (RFC 4271 suggests 4 minutes).
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// Buffered received bytes beyond which a peer that never completes a message is cut off.
const MAX_BUFFERED: usize = 4 * message::MAX_LEN;

/// What a session is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our AS.
    pub local_as: u32,
    /// The peer's AS that we expect (the same for iBGP).
    pub peer_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The hold time we propose, in seconds (0, or at least 3).
    pub hold_time: u16,
}

/// RFC 4271's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not connected.
    Idle,
    /// The TCP connection is being set up.
    Connect,
    /// Our OPEN is sent; waiting for the peer's.
    OpenSent,
    /// OPENs exchanged; waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// Routes flow.
    Established,
}

impl State {
    /// The state's name, as FRR prints it.
    pub fn word(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The TCP connection closed or failed.
    ConnectionLost,
    /// We stopped the session (shutdown).
    Stopped,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Sent(n) => write!(f, "sent NOTIFICATION {n}"),
            CloseReason::Received(n) => write!(f, "received NOTIFICATION {n}"),
            CloseReason::ConnectionLost => f.write_str("connection lost"),
            CloseReason::Stopped => f.write_str("stopped"),
        }
    }
}

/// What a session reports to the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The session reached Established.
    Established {
        /// The peer's BGP identifier.
        peer_id: Ipv4Addr,
        /// The negotiated hold time in seconds.
        hold_time: u16,
    },
    /// An UPDATE (not an End-of-RIB). `malformed` lists attributes that were malformed and
    /// skipped: by RFC 7606 the UPDATE's routes are then to be treated as withdrawn.
    Update {
        /// The message.
        update: Box<BgpUpdateMessage>,
        /// The malformed attributes, described.
        malformed: Vec<String>,
    },
    /// The peer's End-of-RIB for L2VPN EVPN: its initial table is complete.
    EndOfRib,
    /// The peer asks for our routes again (ROUTE-REFRESH).
    RouteRefresh,
    /// The session ended (back to Idle); the peer's routes are gone.
    Closed(CloseReason),
}

/// One session.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    decoder: Decoder,
    rx: Vec<u8>,
    tx: Vec<u8>,
    events: VecDeque<Event>,
    /// The negotiated hold time (zero: no hold timer, no keepalives).
    hold: Duration,
    hold_deadline: Option<Instant>,
    keepalive_due: Option<Instant>,
    peer_id: Option<Ipv4Addr>,
    established_at: Option<Instant>,
}

impl Session {
    /// A session in Idle.
    pub fn new(config: SessionConfig) -> Session {
        Session {
            config,
            state: State::Idle,
            decoder: Decoder::new(true),
            rx: Vec::new(),
            tx: Vec::new(),
            events: VecDeque::new(),
            hold: Duration::ZERO,
            hold_deadline: None,
            keepalive_due: None,
            peer_id: None,
            established_at: None,
        }
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The peer's identifier once its OPEN arrived.
    pub fn peer_id(&self) -> Option<Ipv4Addr> {
        self.peer_id
    }

    /// When the session reached Established, while it is.
    pub fn established_at(&self) -> Option<Instant> {
        self.established_at
    }

    /// The TCP connection is being set up.
    pub fn connecting(&mut self) {
        self.reset();
        self.state = State::Connect;
    }

    /// The TCP connection is up: sends our OPEN.
    pub fn connected(&mut self, now: Instant) {
        self.reset();
        match message::encode(&BgpMessage::Open(self.open())) {
            Ok(bytes) => self.tx.extend_from_slice(&bytes),
            Err(_) => {
                // Our own OPEN always encodes; if it did not, there is no session to have.
                self.close(CloseReason::Stopped);
                return;
            }
        }
        self.state = State::OpenSent;
        self.hold_deadline = Some(now + OPEN_HOLD);
    }

    /// Bytes received on the connection.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.state, State::Idle | State::Connect) {
            return;
        }
        self.rx.extend_from_slice(bytes);
        let mut at = 0;
        while matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            match message::frame(&self.rx[at..]) {
                Ok(None) => break,
                Ok(Some(len)) => {
                    let whole = self.rx[at..at + len].to_vec();
                    at += len;
                    self.handle(&whole, now);
                }
                Err(notification) => {
                    self.fail(notification);
                    break;
                }
            }
        }
        if self.state == State::Idle {
            self.rx.clear();
            return;
        }
        self.rx.drain(..at);
        if self.rx.len() > MAX_BUFFERED {
            self.fail(Notification::new(code::HEADER, code::HEADER_BAD_LENGTH));
        }
    }

    /// The connection closed or failed.
    pub fn connection_lost(&mut self) {
        if self.state != State::Idle {
            self.close(CloseReason::ConnectionLost);
        }
    }

    /// Ends the session as an administrative shutdown (Cease), e.g. when the daemon stops.
    pub fn stop(&mut self) {
        if matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            let n = Notification::new(code::CEASE, code::CEASE_SHUTDOWN);
            self.tx.extend_from_slice(&n.encode());
        }
        if self.state != State::Idle {
            self.close(CloseReason::Stopped);
        }
    }

    /// Ends the session with `notification` (e.g. a route limit: Cease, maximum prefixes).
    pub fn fail(&mut self, notification: Notification) {
        self.tx.extend_from_slice(&notification.encode());
        self.close(CloseReason::Sent(notification));
    }

    /// Sends an UPDATE (Established only; otherwise it is dropped and `false` returned).
    pub fn send_update(&mut self, update: BgpUpdateMessage, now: Instant) -> bool {
        if self.state != State::Established {
            return false;
        }
        match message::encode(&BgpMessage::Update(update)) {
            Ok(bytes) => {
                self.tx.extend_from_slice(&bytes);
                self.sent(now);
                true
            }
            Err(_) => false,
        }
    }

    /// Runs the timers: sends a due KEEPALIVE, ends the session when the hold timer expired.
    pub fn tick(&mut self, now: Instant) {
        if self.hold_deadline.is_some_and(|d| now >= d) {
            self.fail(Notification::new(code::HOLD_TIMER, 0));
            return;
        }
        if self.keepalive_due.is_some_and(|d| now >= d) {
            self.tx.extend_from_slice(&message::keepalive());
            self.sent(now);
        }
    }

    /// When [`Session::tick`] must run next.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.hold_deadline, self.keepalive_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the bytes to send.
    pub fn take_transmit(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tx)
    }

    /// Whether there are bytes to send.
    pub fn has_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn open(&self) -> BgpOpenMessage {
        let my_as = u16::try_from(self.config.local_as).unwrap_or(AS_TRANS);
        BgpOpenMessage::new(
            my_as,
            self.config.hold_time,
            self.config.router_id,
            vec![BgpOpenMessageParameter::Capabilities(
                vec![
                    BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(
                        AddressType::L2VpnBgpEvpn,
                    )),
                    BgpCapability::RouteRefresh,
                    BgpCapability::FourOctetAs(FourOctetAsCapability::new(self.config.local_as)),
                    // Graceful restart with no address family (RFC 4724 section 3): we send
                    // and want End-of-RIB markers (FRR sends them only to such peers), and
                    // neither side keeps the other's routes when a session drops.
                    BgpCapability::GracefulRestartCapability(GracefulRestartCapability::new(
                        false,
                        false,
                        0,
                        Vec::new(),
                    )),
                ]
                .into(),
            )],
        )
    }

    fn reset(&mut self) {
        self.rx.clear();
        self.hold = Duration::ZERO;
        self.hold_deadline = None;
        self.keepalive_due = None;
        self.peer_id = None;
        self.established_at = None;
        self.decoder = Decoder::new(true);
    }

    fn close(&mut self, reason: CloseReason) {
        self.state = State::Idle;
        self.hold_deadline = None;
        self.keepalive_due = None;
        self.established_at = None;
        self.events.push_back(Event::Closed(reason));
    }

    /// Something was sent: the next keepalive is due a third of the hold time later.
    fn sent(&mut self, now: Instant) {
        if !self.hold.is_zero() && matches!(self.state, State::OpenConfirm | State::Established) {
            self.keepalive_due = Some(now + self.hold / 3);
        }
    }

    fn received(&mut self, now: Instant) {
        self.hold_deadline = (!self.hold.is_zero()).then(|| now + self.hold);
    }

    fn handle(&mut self, whole: &[u8], now: Instant) {
        let kind = whole[message::HEADER_LEN - 1];
        if kind == message::NOTIFICATION {
            let n = Notification::decode_body(&whole[message::HEADER_LEN..])
                .unwrap_or_else(|| Notification::new(0, 0));
            self.close(CloseReason::Received(n));
            return;
        }
        let (msg, ignored) = match self.decoder.decode(whole) {
            Ok(decoded) => decoded,
            Err(_) => {
                let subcode = match kind {
                    message::OPEN => 0,
                    message::UPDATE => code::UPDATE_MALFORMED,
                    _ => 0,
                };
                let c = match kind {
                    message::OPEN => code::OPEN,
                    message::UPDATE => code::UPDATE,
                    message::ROUTE_REFRESH => code::ROUTE_REFRESH,
                    _ => code::HEADER,
                };
                self.fail(Notification::new(c, subcode));
                return;
            }
        };
        match (self.state, msg) {
            (State::OpenSent, BgpMessage::Open(open)) => self.handle_open(&open, now),
            (State::OpenConfirm, BgpMessage::KeepAlive) => {
                self.state = State::Established;
                self.established_at = Some(now);
                self.received(now);
                self.events.push_back(Event::Established {
                    peer_id: self.peer_id.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    hold_time: u16::try_from(self.hold.as_secs()).unwrap_or(u16::MAX),
                });
            }
            (State::Established, BgpMessage::KeepAlive) => self.received(now),
            (State::Established, BgpMessage::Update(update)) => {
                self.received(now);
                // RFC 7606 section 5.3: MP_REACH/MP_UNREACH that cannot be parsed leave no
                // routes to withdraw: the session is reset.
                let fatal = ignored.path_attr_errors().iter().any(|e| {
                    matches!(
                        e,
                        PathAttributeParsingError::MpReachErrorError(_)
                            | PathAttributeParsingError::MpUnreachErrorError(_)
                    )
                });
                if fatal {
                    self.fail(Notification::new(code::UPDATE, code::UPDATE_OPTIONAL));
                    return;
                }
                if update.end_of_rib() == Some(AddressType::L2VpnBgpEvpn) {
                    self.events.push_back(Event::EndOfRib);
                    return;
                }
                let malformed = ignored
                    .path_attr_errors()
                    .iter()
                    .map(|e| e.to_string())
                    .collect();
                self.events.push_back(Event::Update {
                    update: Box::new(update),
                    malformed,
                });
            }
            (State::Established, BgpMessage::RouteRefresh(_)) => {
                self.received(now);
                self.events.push_back(Event::RouteRefresh);
            }
            (_, _) => {
                // A message the state does not expect (RFC 6608 subcodes by state).
                let subcode = match self.state {
                    State::OpenSent => 1,
                    State::OpenConfirm => 2,
                    State::Established => 3,
                    State::Idle | State::Connect => 0,
                };
                self.fail(Notification::new(code::FSM, subcode));
            }
        }
    }

    fn handle_open(&mut self, open: &BgpOpenMessage, now: Instant) {
        if open.version() != 4 {
            self.fail(Notification {
                code: code::OPEN,
                subcode: code::OPEN_VERSION,
                data: vec![0, 4],
            });
            return;
        }
        let caps = open.capabilities();
        let asn4 = caps
            .iter()
            .any(|c| matches!(c, BgpCapability::FourOctetAs(_)));
        if open.my_asn4() != self.config.peer_as {
            let data = u16::try_from(open.my_asn4()).unwrap_or(AS_TRANS);
            self.fail(Notification {
                code: code::OPEN,
                subcode: code::OPEN_BAD_AS,
                data: data.to_be_bytes().to_vec(),
            });
            return;
        }
        let id = open.bgp_id();
        if id.is_unspecified() || id == self.config.router_id {
            self.fail(Notification::new(code::OPEN, code::OPEN_BAD_ID));
            return;
        }
        let theirs = open.hold_time();
        if theirs == 1 || theirs == 2 {
            self.fail(Notification::new(code::OPEN, code::OPEN_HOLD_TIME));
            return;
        }
        let evpn = caps.iter().any(|c| {
            matches!(c, BgpCapability::MultiProtocolExtensions(mp)
                if mp.address_type() == AddressType::L2VpnBgpEvpn)
        });
        if !evpn {
            // Capability 1 (multiprotocol), AFI 25, SAFI 70: what we need and it lacks.
            self.fail(Notification {
                code: code::OPEN,
                subcode: code::OPEN_CAPABILITY,
                data: vec![1, 4, 0, 25, 0, 70],
            });
            return;
        }
        self.decoder.set_asn4(asn4);
        self.peer_id = Some(id);
        self.hold = Duration::from_secs(u64::from(theirs.min(self.config.hold_time)));
        self.state = State::OpenConfirm;
        self.tx.extend_from_slice(&message::keepalive());
        self.sent(now);
        self.received(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRR_OPEN: &[u8] = include_bytes!("../evpn/vectors/frr_open_rr.bin");
    const GOBGP_OPEN: &[u8] = include_bytes!("../evpn/vectors/gobgp_open.bin");
    const FRR_TYPE2: &[u8] = include_bytes!("../evpn/vectors/frr_type2.bin");
    const FRR_EOR: &[u8] = include_bytes!("../evpn/vectors/frr_eor.bin");

    fn config() -> SessionConfig {
        SessionConfig {
            local_as: 65000,
            peer_as: 65000,
            router_id: Ipv4Addr::new(192, 168, 77, 12),
            hold_time: 90,
        }
    }

    fn established(peer_open: &[u8], t0: Instant) -> Session {
        let mut s = Session::new(config());
        s.connecting();
        assert_eq!(s.state(), State::Connect);
        s.connected(t0);
        let open = s.take_transmit();
        assert_eq!(open[18], message::OPEN);
        assert_eq!(s.state(), State::OpenSent);
        s.receive(peer_open, t0);
        assert_eq!(s.state(), State::OpenConfirm, "{:?}", s.poll_event());
        assert_eq!(s.take_transmit(), message::keepalive());
        s.receive(&message::keepalive(), t0);
        assert_eq!(s.state(), State::Established);
        s
    }

    fn drain(s: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn our_open_offers_evpn_4_octet_as_and_route_refresh() {
        let mut s = Session::new(config());
        s.connected(Instant::now());
        let open = s.take_transmit();
        let mut d = Decoder::new(true);
        let Ok((BgpMessage::Open(o), _)) = d.decode(&open) else {
            panic!("our OPEN does not decode");
        };
        assert_eq!(o.my_asn4(), 65000);
        assert_eq!(o.hold_time(), 90);
        let caps = o.capabilities();
        assert!(caps
            .iter()
            .any(|c| matches!(c, BgpCapability::RouteRefresh)));
        assert!(caps.iter().any(|c| matches!(c,
            BgpCapability::MultiProtocolExtensions(m) if m.address_type() == AddressType::L2VpnBgpEvpn)));
        // A 4-byte AS goes as AS_TRANS in the 2-byte field.
        let mut big = Session::new(SessionConfig {
            local_as: 4_200_000_000,
            ..config()
        });
        big.connected(Instant::now());
        let bytes = big.take_transmit();
        assert_eq!(&bytes[20..22], &AS_TRANS.to_be_bytes());
    }

    #[test]
    fn establishes_with_frr_and_gobgp_opens_and_negotiates_hold_time() {
        let t0 = Instant::now();
        for (open, hold) in [(FRR_OPEN, 90), (GOBGP_OPEN, 90)] {
            let mut s = established(open, t0);
            let events = drain(&mut s);
            assert!(
                matches!(events.as_slice(), [Event::Established { hold_time, .. }] if *hold_time == hold),
                "{events:?}"
            );
            // Keepalive every hold/3, hold timer from the last message received.
            assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(30)));
            s.tick(t0 + Duration::from_secs(30));
            assert_eq!(s.take_transmit(), message::keepalive());
            s.receive(&message::keepalive(), t0 + Duration::from_secs(60));
            s.tick(t0 + Duration::from_secs(149));
            assert_eq!(s.state(), State::Established);
            s.tick(t0 + Duration::from_secs(150));
            assert_eq!(s.state(), State::Idle);
            let last = s.take_transmit();
            assert_eq!(&last[last.len() - 2..], &[code::HOLD_TIMER, 0]);
        }
    }

    #[test]
    fn updates_and_end_of_rib_arrive_as_events_even_split_across_reads() {
        let t0 = Instant::now();
        let mut s = established(FRR_OPEN, t0);
        drain(&mut s);
        let mut stream = FRR_TYPE2.to_vec();
        stream.extend_from_slice(FRR_EOR);
        for chunk in stream.chunks(7) {
            s.receive(chunk, t0);
        }
        let events = drain(&mut s);
        assert!(matches!(&events[0], Event::Update { malformed, .. } if malformed.is_empty()));
        assert_eq!(events[1], Event::EndOfRib);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn errors_end_the_session_with_the_right_notification() {
        let t0 = Instant::now();
        // Wrong peer AS.
        let mut s = Session::new(SessionConfig {
            peer_as: 65001,
            ..config()
        });
        s.connected(t0);
        s.take_transmit();
        s.receive(FRR_OPEN, t0);
        assert_eq!(s.state(), State::Idle);
        let sent = s.take_transmit();
        assert_eq!(&sent[19..23], &[code::OPEN, code::OPEN_BAD_AS, 0xfd, 0xe8]);
        // Our own router id.
        let mut s = Session::new(SessionConfig {
            router_id: Ipv4Addr::new(192, 168, 77, 1),
            ..config()
        });
        s.connected(t0);
        s.take_transmit();
        s.receive(FRR_OPEN, t0);
        assert_eq!(s.take_transmit()[19..21], [code::OPEN, code::OPEN_BAD_ID]);
        // An UPDATE before the session is established.
        let mut s = Session::new(config());
        s.connected(t0);
        s.take_transmit();
        s.receive(FRR_TYPE2, t0);
        assert_eq!(s.take_transmit()[19..21], [code::FSM, 1]);
        // Garbage after establishment: connection not synchronised.
        let mut s = established(FRR_OPEN, t0);
        s.receive(&[0u8; 40], t0);
        assert_eq!(s.state(), State::Idle);
        assert_eq!(
            s.take_transmit()[19..21],
            [code::HEADER, code::HEADER_NOT_SYNCHRONIZED]
        );
        // A peer's NOTIFICATION.
        let mut s = established(FRR_OPEN, t0);
        drain(&mut s);
        s.receive(&Notification::new(6, 2).encode(), t0);
        assert_eq!(
            drain(&mut s),
            vec![Event::Closed(CloseReason::Received(Notification::new(
                6, 2
            )))]
        );
    }

    #[test]
    fn an_open_without_evpn_is_refused_as_unsupported_capability() {
        // GoBGP's OPEN with the multiprotocol capability's SAFI changed to 1 (unicast).
        let mut open = GOBGP_OPEN.to_vec();
        let at = open
            .windows(6)
            .position(|w| w == [1, 4, 0, 25, 0, 70])
            .expect("MP capability in GoBGP's OPEN");
        open[at + 5] = 1;
        let t0 = Instant::now();
        let mut s = Session::new(config());
        s.connected(t0);
        s.take_transmit();
        s.receive(&open, t0);
        assert_eq!(
            s.take_transmit()[19..21],
            [code::OPEN, code::OPEN_CAPABILITY]
        );
    }

    #[test]
    fn route_refresh_and_rfc7606_errors() {
        let t0 = Instant::now();
        let mut s = established(FRR_OPEN, t0);
        drain(&mut s);
        // ROUTE-REFRESH for L2VPN EVPN.
        let mut rr = message::header(23, message::ROUTE_REFRESH);
        rr.extend_from_slice(&[0, 25, 0, 70]);
        s.receive(&rr, t0);
        assert_eq!(drain(&mut s), vec![Event::RouteRefresh]);
        // An invalid ORIGIN (7): the UPDATE arrives with the attribute reported malformed, for
        // treat-as-withdraw; the session stays up.
        let mut bad_origin = FRR_TYPE2.to_vec();
        let at = bad_origin
            .windows(4)
            .position(|w| w == [0x40, 0x01, 0x01, 0x00])
            .expect("ORIGIN in FRR's UPDATE");
        bad_origin[at + 3] = 7;
        s.receive(&bad_origin, t0);
        let events = drain(&mut s);
        assert!(
            matches!(&events[..], [Event::Update { malformed, .. }] if !malformed.is_empty()),
            "{events:?}"
        );
        assert_eq!(s.state(), State::Established);
        // An MP_REACH whose NLRI runs past its end: nothing to withdraw, the session resets.
        let mut bad_reach = FRR_TYPE2.to_vec();
        let at = bad_reach
            .windows(3)
            .position(|w| w == [0x02, 0x21, 0x00])
            .expect("the type-2 NLRI");
        bad_reach[at + 1] = 0x60;
        s.receive(&bad_reach, t0);
        assert_eq!(s.state(), State::Idle, "{:?}", drain(&mut s));
        assert_eq!(s.take_transmit()[19], code::UPDATE);
    }

    #[test]
    fn stop_sends_cease_and_closes() {
        let t0 = Instant::now();
        let mut s = established(FRR_OPEN, t0);
        drain(&mut s);
        s.stop();
        assert_eq!(s.take_transmit(), Notification::new(6, 2).encode());
        assert_eq!(drain(&mut s), vec![Event::Closed(CloseReason::Stopped)]);
        assert!(!s.send_update(BgpUpdateMessage::new(vec![], vec![], vec![]), t0));
    }
}
