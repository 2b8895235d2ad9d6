//! The VXLAN header (RFC 7348 section 5): 8 bytes in front of the inner Ethernet frame.
//!
//! ```text
//!  0                   1                   2                   3
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = 8;
/// The I flag: the VNI field is valid. The only flag RFC 7348 defines.
pub const FLAG_VNI: u8 = 0x08;
/// The largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// Why a datagram is not a VXLAN packet we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the header plus an Ethernet header.
    Truncated,
    /// The I flag is clear, or a reserved flag bit is set.
    BadFlags,
}

/// A decoded VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The 24-bit VXLAN Network Identifier.
    pub vni: u32,
}

impl Header {
    /// Decodes the header at the start of `datagram` and checks that an inner Ethernet header
    /// follows. Reserved fields other than the flags are ignored, as RFC 7348 asks of receivers.
    pub fn decode(datagram: &[u8]) -> Result<Header, DecodeError> {
        if datagram.len() < HEADER_LEN + super::ethernet::HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        if datagram[0] != FLAG_VNI {
            return Err(DecodeError::BadFlags);
        }
        let vni = u32::from_be_bytes([0, datagram[4], datagram[5], datagram[6]]);
        Ok(Header { vni })
    }

    /// The 8 header bytes for this VNI (only the low 24 bits are used).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let v = (self.vni & VNI_MAX).to_be_bytes();
        [FLAG_VNI, 0, 0, 0, v[1], v[2], v[3], 0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::wire::vectors::KERNEL_ARP;

    #[test]
    fn decodes_kernel_datagram() {
        assert_eq!(Header::decode(&KERNEL_ARP), Ok(Header { vni: 0x123456 }));
    }

    #[test]
    fn encodes_byte_exact_like_the_kernel() {
        assert_eq!(Header { vni: 0x123456 }.encode(), KERNEL_ARP[..8]);
        assert_eq!(Header { vni: 0 }.encode(), [8, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn rejects_truncated_and_bad_flags() {
        assert_eq!(
            Header::decode(&KERNEL_ARP[..21]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(Header::decode(&[]), Err(DecodeError::Truncated));
        let mut no_i = KERNEL_ARP;
        no_i[0] = 0;
        assert_eq!(Header::decode(&no_i), Err(DecodeError::BadFlags));
        let mut gbp = KERNEL_ARP;
        gbp[0] = 0x88;
        assert_eq!(Header::decode(&gbp), Err(DecodeError::BadFlags));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Header::decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(vni in 0..=VNI_MAX) {
            let mut datagram = Header { vni }.encode().to_vec();
            datagram.extend_from_slice(&[0u8; 14]);
            prop_assert_eq!(Header::decode(&datagram), Ok(Header { vni }));
        }
    }
}
