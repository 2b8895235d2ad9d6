//! The GRE header for Ethernet over GRE (RFC 2784, with the key and sequence number of RFC 2890;
//! protocol type 0x6558, Transparent Ethernet Bridging).
//!
//! ```text
//! |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//! |      Checksum (optional)      |       Reserved1 (optional)    |
//! |                         Key (optional)                        |
//! |                 Sequence Number (optional)                    |
//! ```

use super::checksum;

/// Protocol type of Transparent Ethernet Bridging: the payload is an Ethernet frame.
pub const PROTO_TEB: u16 = 0x6558;
/// Length of the fixed part of the header.
pub const BASE_LEN: usize = 4;
/// Longest header: base, checksum, key and sequence number.
pub const MAX_LEN: usize = 16;

const FLAG_CSUM: u16 = 0x8000;
const FLAG_ROUTING: u16 = 0x4000;
const FLAG_KEY: u16 = 0x2000;
const FLAG_SEQ: u16 = 0x1000;
/// Bits 4 and 5 (strict source route and the first recursion-control bit of RFC 1701): with
/// the routing bit, the bits 1-5 that RFC 2784 receivers discard on (K and S are RFC 2890's).
/// Bits 6-12 are reserved and ignored on receipt.
const OBSOLETE_BITS: u16 = 0x0c00;
const VERSION_MASK: u16 = 0x0007;

/// Why a packet is not a GRE packet we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header plus an Ethernet header.
    Truncated,
    /// Version not 0, or routing / RFC 1701 bits set.
    BadHeader,
    /// Not Transparent Ethernet Bridging.
    NotEthernet,
    /// The checksum is present and wrong.
    BadChecksum,
}

/// A GRE header as sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Whether a checksum is present.
    pub csum: bool,
    /// The key, if present.
    pub key: Option<u32>,
    /// The sequence number, if present.
    pub seq: Option<u32>,
}

impl Header {
    /// Header length with these options.
    pub fn len(&self) -> usize {
        BASE_LEN
            + 4 * (usize::from(self.csum)
                + usize::from(self.key.is_some())
                + usize::from(self.seq.is_some()))
    }

    /// Always false: a GRE header has at least its base.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Decodes the header at the start of `packet` (the IP payload), verifies the checksum if
    /// there is one, and returns the header and its length (where the Ethernet frame starts).
    pub fn decode(packet: &[u8]) -> Result<(Header, usize), DecodeError> {
        if packet.len() < BASE_LEN {
            return Err(DecodeError::Truncated);
        }
        let flags = u16::from_be_bytes([packet[0], packet[1]]);
        if flags & (FLAG_ROUTING | OBSOLETE_BITS | VERSION_MASK) != 0 {
            return Err(DecodeError::BadHeader);
        }
        let mut header = Header {
            csum: flags & FLAG_CSUM != 0,
            key: None,
            seq: None,
        };
        let mut offset = BASE_LEN + if header.csum { 4 } else { 0 };
        let word = |at: usize| {
            packet
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        if flags & FLAG_KEY != 0 {
            header.key = Some(word(offset).ok_or(DecodeError::Truncated)?);
            offset += 4;
        }
        if flags & FLAG_SEQ != 0 {
            header.seq = Some(word(offset).ok_or(DecodeError::Truncated)?);
            offset += 4;
        }
        if packet.len() < offset + super::ethernet::HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        if u16::from_be_bytes([packet[2], packet[3]]) != PROTO_TEB {
            return Err(DecodeError::NotEthernet);
        }
        if header.csum && checksum::of(&[packet]) != 0 {
            return Err(DecodeError::BadChecksum);
        }
        Ok((header, offset))
    }

    /// Writes the header for `payload` into `out` and returns its length. The checksum, if
    /// present, covers the header and `payload`.
    pub fn encode(&self, payload: &[u8], out: &mut [u8; MAX_LEN]) -> usize {
        let mut flags = 0u16;
        let mut offset = BASE_LEN;
        if self.csum {
            flags |= FLAG_CSUM;
            out[4..8].fill(0);
            offset += 4;
        }
        if let Some(key) = self.key {
            flags |= FLAG_KEY;
            out[offset..offset + 4].copy_from_slice(&key.to_be_bytes());
            offset += 4;
        }
        if let Some(seq) = self.seq {
            flags |= FLAG_SEQ;
            out[offset..offset + 4].copy_from_slice(&seq.to_be_bytes());
            offset += 4;
        }
        out[0..2].copy_from_slice(&flags.to_be_bytes());
        out[2..4].copy_from_slice(&PROTO_TEB.to_be_bytes());
        if self.csum {
            let sum = checksum::of(&[&out[..offset], payload]);
            out[4..6].copy_from_slice(&sum.to_be_bytes());
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The inner frame of every vector: a broadcast ARP request.
    const INNER: &str =
        "ffffffffffff020000000001080600010800060400010200000000010a4d00090000000000000a4d0001";

    /// Headers scapy (`GRE(proto=0x6558, ...) / inner`) built for INNER.
    const SCAPY: [(&str, Header); 5] = [
        (
            "00006558",
            Header {
                csum: false,
                key: None,
                seq: None,
            },
        ),
        (
            "2000655812345678",
            Header {
                csum: false,
                key: Some(0x12345678),
                seq: None,
            },
        ),
        (
            "80006558ebf40000",
            Header {
                csum: true,
                key: None,
                seq: None,
            },
        ),
        (
            "1000655800000007",
            Header {
                csum: false,
                key: None,
                seq: Some(7),
            },
        ),
        (
            "b00065581a510000deadbeef01020304",
            Header {
                csum: true,
                key: Some(0xdeadbeef),
                seq: Some(0x01020304),
            },
        ),
    ];

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn encodes_byte_exact_like_scapy() {
        let inner = hex(INNER);
        for (expected, header) in SCAPY {
            let mut out = [0u8; MAX_LEN];
            let len = header.encode(&inner, &mut out);
            assert_eq!(out[..len], hex(expected)[..], "{header:?}");
            assert_eq!(len, header.len());
        }
    }

    #[test]
    fn decodes_scapy_packets() {
        for (h, header) in SCAPY {
            let mut packet = hex(h);
            packet.extend_from_slice(&hex(INNER));
            assert_eq!(Header::decode(&packet), Ok((header, h.len() / 2)), "{h}");
        }
    }

    #[test]
    fn rejects_what_rfc_2784_receivers_discard() {
        let packet = |h: &str| [hex(h), hex(INNER)].concat();
        assert_eq!(
            Header::decode(&packet("00016558")),
            Err(DecodeError::BadHeader),
            "version 1"
        );
        assert_eq!(
            Header::decode(&packet("40006558")),
            Err(DecodeError::BadHeader),
            "routing"
        );
        assert_eq!(
            Header::decode(&packet("08006558")),
            Err(DecodeError::BadHeader),
            "strict source route"
        );
        assert_eq!(
            Header::decode(&packet("04006558")),
            Err(DecodeError::BadHeader),
            "bit 5 (recursion)"
        );
        assert_eq!(
            Header::decode(&packet("00000800")),
            Err(DecodeError::NotEthernet),
            "IPv4 payload"
        );
        assert_eq!(
            Header::decode(&packet("80006558ebf50000")),
            Err(DecodeError::BadChecksum)
        );
        assert_eq!(
            Header::decode(&hex("2000655812")),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Header::decode(&hex("00006558ffff")),
            Err(DecodeError::Truncated)
        );
        assert_eq!(Header::decode(&[]), Err(DecodeError::Truncated));
    }

    #[test]
    fn reserved_bits_6_to_12_are_ignored() {
        let packet = [hex("03f86558"), hex(INNER)].concat();
        assert_eq!(Header::decode(&packet), Ok((Header::default(), 4)));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Header::decode(&bytes);
        }

        #[test]
        fn round_trip(csum: bool, key: Option<u32>, seq: Option<u32>, payload in proptest::collection::vec(any::<u8>(), 14..80)) {
            let header = Header { csum, key, seq };
            let mut out = [0u8; MAX_LEN];
            let len = header.encode(&payload, &mut out);
            let packet = [&out[..len], &payload[..]].concat();
            prop_assert_eq!(Header::decode(&packet), Ok((header, len)));
        }
    }
}
