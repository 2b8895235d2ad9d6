//! BGP-4 (RFC 4271) for the EVPN control plane, sans-IO: messages on the wire
//! ([`message`], through the `netgauze-bgp-pkt` codec) and the session state machine
//! ([`session`]) that takes received bytes and `now` and hands back bytes to send and events.
//! The daemon's thin shell (`daemon/evpn.rs`) owns the TCP connections and the clock.
//!
//! What vxtund's sessions do:
//! * OPEN: multiprotocol L2VPN EVPN (AFI 25, SAFI 70), 4-octet AS, route refresh. Every other
//!   capability a peer sends (graceful restart, long-lived GR, AddPath, FQDN, extended message,
//!   extended next hop, ...) is accepted and ignored.
//! * Graceful restart: vxtund is **not** a helper. It advertises the capability with no
//!   address family (RFC 4724 section 3), which says only that it sends and understands
//!   End-of-RIB (FRR sends End-of-RIB only to peers with the capability). When a session
//!   drops, the routes learnt over it are removed at once, and the peers remove vxtund's at
//!   once too: a data plane that keeps forwarding to stale VTEPs for 120 s after a peer
//!   restarted would be worse than a short flood.
//! * Errors follow RFC 7606: a malformed attribute makes the UPDATE's routes withdrawn
//!   (treat-as-withdraw); a malformed MP_REACH/MP_UNREACH, a message header error or an FSM
//!   error resets the session with a NOTIFICATION.

pub mod message;
pub mod session;

pub use message::Notification;
pub use session::{CloseReason, Event, Session, SessionConfig, State};
