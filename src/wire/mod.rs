//! Packet views and builders: the bytes on the wire, with no I/O.
//!
//! Every decoder here takes untrusted bytes and returns either a view or an error; none of them
//! panics on any input (property tests in each module hold them to that).

pub mod checksum;
pub mod ethernet;
pub mod gre;
pub mod icmp;
pub mod ip;
pub mod offload;
pub mod tcp;
pub mod tunnel;
pub mod vxlan;

#[cfg(test)]
mod mtu_tests;
#[cfg(test)]
pub(crate) mod vectors;

/// Bytes of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Bytes of an IPv6 fixed header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Bytes of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;

/// What a VXLAN tunnel adds to an inner Ethernet frame's IP MTU over an IPv4 underlay:
/// outer IPv4 + UDP + VXLAN + the inner Ethernet header itself (RFC 7348 section 5).
pub const VXLAN_OVERHEAD_V4: usize =
    IPV4_HEADER_LEN + UDP_HEADER_LEN + vxlan::HEADER_LEN + ethernet::HEADER_LEN;
/// The same over an IPv6 underlay (a 40-byte outer header instead of 20).
pub const VXLAN_OVERHEAD_V6: usize =
    IPV6_HEADER_LEN + UDP_HEADER_LEN + vxlan::HEADER_LEN + ethernet::HEADER_LEN;
/// What Ethernet over GRE adds over an IPv4 underlay without options: outer IPv4 + the GRE base
/// header + the inner Ethernet header. Each of key, checksum and sequence number adds 4 more.
pub const GRE_OVERHEAD_V4: usize = IPV4_HEADER_LEN + gre::BASE_LEN + ethernet::HEADER_LEN;
/// The same over an IPv6 underlay.
pub const GRE_OVERHEAD_V6: usize = IPV6_HEADER_LEN + gre::BASE_LEN + ethernet::HEADER_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overheads_match_the_scenario_arithmetic() {
        assert_eq!(VXLAN_OVERHEAD_V4, 50);
        assert_eq!(VXLAN_OVERHEAD_V6, 70);
        assert_eq!(GRE_OVERHEAD_V4, 38);
        assert_eq!(GRE_OVERHEAD_V4 + 4, 42, "with key");
        assert_eq!(GRE_OVERHEAD_V6, 58);
    }
}
