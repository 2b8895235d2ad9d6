//! BGP messages on the wire: framing a TCP byte stream into messages (RFC 4271 section 4.1),
//! decoding OPEN, UPDATE, KEEPALIVE and ROUTE-REFRESH with `netgauze-bgp-pkt` (malformed
//! attributes collected rather than fatal, so that RFC 7606 can be applied above), and
//! NOTIFICATIONs, which are simple enough to read and write here. No I/O.

use std::collections::HashMap;
use std::fmt;

use netgauze_bgp_pkt::wire::deserializer::{BgpParsingContext, BgpParsingIgnoredErrors};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use netgauze_parse_utils::WritablePdu;

/// Marker, length and type.
pub const HEADER_LEN: usize = 19;
/// The longest message without the extended message capability (RFC 8654), which vxtund does
/// not advertise.
pub const MAX_LEN: usize = 4096;
/// Offset of the length field.
const LENGTH_AT: usize = 16;
/// Offset of the type field.
const TYPE_AT: usize = 18;

/// Message type codes (RFC 4271, RFC 2918).
pub const OPEN: u8 = 1;
/// UPDATE.
pub const UPDATE: u8 = 2;
/// NOTIFICATION.
pub const NOTIFICATION: u8 = 3;
/// KEEPALIVE.
pub const KEEPALIVE: u8 = 4;
/// ROUTE-REFRESH.
pub const ROUTE_REFRESH: u8 = 5;

/// A NOTIFICATION: error code, subcode and data (RFC 4271 section 4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data, as the error's definition says.
    pub data: Vec<u8>,
}

/// NOTIFICATION error codes and subcodes used here.
pub mod code {
    /// Message Header Error.
    pub const HEADER: u8 = 1;
    /// Connection Not Synchronized.
    pub const HEADER_NOT_SYNCHRONIZED: u8 = 1;
    /// Bad Message Length.
    pub const HEADER_BAD_LENGTH: u8 = 2;
    /// Bad Message Type.
    pub const HEADER_BAD_TYPE: u8 = 3;
    /// OPEN Message Error.
    pub const OPEN: u8 = 2;
    /// Unsupported Version Number.
    pub const OPEN_VERSION: u8 = 1;
    /// Bad Peer AS.
    pub const OPEN_BAD_AS: u8 = 2;
    /// Bad BGP Identifier.
    pub const OPEN_BAD_ID: u8 = 3;
    /// Unacceptable Hold Time.
    pub const OPEN_HOLD_TIME: u8 = 6;
    /// Unsupported Capability (RFC 5492).
    pub const OPEN_CAPABILITY: u8 = 7;
    /// UPDATE Message Error.
    pub const UPDATE: u8 = 3;
    /// Malformed Attribute List.
    pub const UPDATE_MALFORMED: u8 = 1;
    /// Optional Attribute Error.
    pub const UPDATE_OPTIONAL: u8 = 9;
    /// Hold Timer Expired.
    pub const HOLD_TIMER: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease (RFC 4486 subcodes).
    pub const CEASE: u8 = 6;
    /// Maximum Number of Prefixes Reached.
    pub const CEASE_MAX_PREFIXES: u8 = 1;
    /// Administrative Shutdown.
    pub const CEASE_SHUTDOWN: u8 = 2;
    /// Connection Collision Resolution.
    pub const CEASE_COLLISION: u8 = 7;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH: u8 = 7;
}

impl Notification {
    /// A notification without data.
    pub fn new(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    /// The whole message.
    pub fn encode(&self) -> Vec<u8> {
        let len = HEADER_LEN + 2 + self.data.len();
        let mut out = header(len, NOTIFICATION);
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
        out
    }

    /// Reads a NOTIFICATION's body (the bytes after the header).
    pub fn decode_body(body: &[u8]) -> Option<Notification> {
        match body {
            [code, subcode, data @ ..] => Some(Notification {
                code: *code,
                subcode: *subcode,
                data: data.to_vec(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.code, self.subcode) {
            (code::HEADER, _) => "message header error",
            (code::OPEN, code::OPEN_BAD_AS) => "OPEN error: bad peer AS",
            (code::OPEN, code::OPEN_BAD_ID) => "OPEN error: bad BGP identifier",
            (code::OPEN, code::OPEN_HOLD_TIME) => "OPEN error: unacceptable hold time",
            (code::OPEN, code::OPEN_CAPABILITY) => "OPEN error: unsupported capability",
            (code::OPEN, _) => "OPEN error",
            (code::UPDATE, _) => "UPDATE error",
            (code::HOLD_TIMER, _) => "hold timer expired",
            (code::FSM, _) => "finite state machine error",
            (code::CEASE, code::CEASE_SHUTDOWN) => "cease: administrative shutdown",
            (code::CEASE, code::CEASE_MAX_PREFIXES) => "cease: maximum number of prefixes",
            (code::CEASE, _) => "cease",
            (code::ROUTE_REFRESH, _) => "ROUTE-REFRESH error",
            _ => "unknown error",
        };
        write!(f, "{what} ({}/{})", self.code, self.subcode)
    }
}

/// A 19-byte header for a message of `len` bytes in all, in a buffer with room for the body.
pub fn header(len: usize, kind: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    out.push(kind);
    out
}

/// KEEPALIVE, the header alone.
pub fn keepalive() -> Vec<u8> {
    header(HEADER_LEN, KEEPALIVE)
}

/// The length of the next whole message at the start of `buf`, `Ok(None)` while it is
/// incomplete, or the NOTIFICATION its header deserves (RFC 4271 section 6.1).
pub fn frame(buf: &[u8]) -> Result<Option<usize>, Notification> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..LENGTH_AT].iter().any(|&b| b != 0xff) {
        return Err(Notification::new(
            code::HEADER,
            code::HEADER_NOT_SYNCHRONIZED,
        ));
    }
    let len_bytes = [buf[LENGTH_AT], buf[LENGTH_AT + 1]];
    let len = usize::from(u16::from_be_bytes(len_bytes));
    let kind = buf[TYPE_AT];
    let min = match kind {
        OPEN => 29,
        UPDATE => 23,
        NOTIFICATION => 21,
        KEEPALIVE => HEADER_LEN,
        ROUTE_REFRESH => 23,
        other => {
            return Err(Notification {
                code: code::HEADER,
                subcode: code::HEADER_BAD_TYPE,
                data: vec![other],
            })
        }
    };
    if len < min || len > MAX_LEN || (kind == KEEPALIVE && len != HEADER_LEN) {
        return Err(Notification {
            code: code::HEADER,
            subcode: code::HEADER_BAD_LENGTH,
            data: len_bytes.to_vec(),
        });
    }
    Ok((buf.len() >= len).then_some(len))
}

/// Decodes whole messages (as [`frame`] cut them) with the session's options.
#[derive(Debug, Clone)]
pub struct Decoder {
    ctx: BgpParsingContext,
}

/// A message that `netgauze-bgp-pkt` could not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Decoder {
    /// A decoder for a session that does (`asn4`) or does not use 4-octet AS numbers.
    /// Malformed path attributes and capabilities are collected, not fatal.
    pub fn new(asn4: bool) -> Decoder {
        Decoder {
            ctx: BgpParsingContext::new(
                asn4,
                HashMap::new(),
                HashMap::new(),
                false,
                false,
                false,
                false,
            ),
        }
    }

    /// Whether AS numbers are 4 octets in AS_PATH.
    pub fn set_asn4(&mut self, asn4: bool) {
        self.ctx.set_asn4(asn4);
    }

    /// Decodes one whole message, with the errors that were skipped in it.
    pub fn decode(
        &mut self,
        message: &[u8],
    ) -> Result<(BgpMessage, BgpParsingIgnoredErrors), DecodeError> {
        let mut reader = SliceReader::new(message);
        let parsed = BgpMessage::parse(&mut reader, &mut self.ctx);
        let ignored = self.ctx.reset_parsing_errors();
        parsed
            .map(|m| (m, ignored))
            .map_err(|e| DecodeError(e.to_string()))
    }
}

/// Encodes a message built here (OPEN, UPDATE, ROUTE-REFRESH).
pub fn encode(message: &BgpMessage) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(message.len());
    message
        .write(&mut out)
        .map_err(|e| DecodeError(format!("encoding a BGP message: {e}")))?;
    if out.len() > MAX_LEN {
        return Err(DecodeError(format!(
            "encoding a BGP message: {} bytes, more than {MAX_LEN}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_whole_messages_and_refuses_bad_headers() {
        let ka = keepalive();
        assert_eq!(frame(&ka[..18]), Ok(None));
        assert_eq!(frame(&ka), Ok(Some(19)));
        let mut two = ka.clone();
        two.extend_from_slice(&ka[..5]);
        assert_eq!(frame(&two), Ok(Some(19)));
        let mut bad = ka.clone();
        bad[3] = 0;
        assert_eq!(
            frame(&bad).unwrap_err().subcode,
            code::HEADER_NOT_SYNCHRONIZED
        );
        let mut bad = ka.clone();
        bad[18] = 9;
        assert_eq!(
            frame(&bad),
            Err(Notification {
                code: 1,
                subcode: 3,
                data: vec![9]
            })
        );
        let mut long = ka.clone();
        long[16..18].copy_from_slice(&4097u16.to_be_bytes());
        assert_eq!(frame(&long).unwrap_err().data, vec![0x10, 0x01]);
        let mut ka20 = ka.clone();
        ka20[17] = 20;
        assert_eq!(frame(&ka20).unwrap_err().subcode, code::HEADER_BAD_LENGTH);
    }

    #[test]
    fn notifications_round_trip() {
        let n = Notification {
            code: 6,
            subcode: 2,
            data: b"bye".to_vec(),
        };
        let bytes = n.encode();
        assert_eq!(frame(&bytes), Ok(Some(24)));
        assert_eq!(Notification::decode_body(&bytes[HEADER_LEN..]), Some(n));
        assert_eq!(Notification::decode_body(&[6]), None);
    }
}
