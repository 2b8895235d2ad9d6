//! TCP MSS clamping on SYN and SYN-ACK segments, with the checksum patched incrementally
//! (RFC 1624), as iptables' TCPMSS target and tinc's ClampMSS do.

use super::ip::IpView;

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// The SYN bit of the TCP flags byte (byte 13 of the header).
pub const FLAG_SYN: u8 = 0x02;
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_MSS: u8 = 2;

/// Lowers the MSS option of a TCP SYN (or SYN-ACK) in `frame` to `max_mss`. Returns the old
/// MSS when it changed it; never raises an MSS, never adds an option.
pub fn clamp_mss(frame: &mut [u8], ip: &IpView, max_mss: u16) -> Option<u16> {
    let (tcp, i) = mss_option(frame, ip)?;
    let at = tcp + i + 2;
    let old = u16::from_be_bytes([frame[at], frame[at + 1]]);
    if old <= max_mss {
        return None;
    }
    frame[at..at + 2].copy_from_slice(&max_mss.to_be_bytes());
    let sum_at = tcp + 16;
    let sum = u16::from_be_bytes([frame[sum_at], frame[sum_at + 1]]);
    // The checksum sums 16-bit words from the header's start: a value at an odd offset (after
    // a single NOP) straddles two words, byte-swapped.
    let patched = if (i + 2) % 2 == 0 {
        checksum_update(sum, old, max_mss)
    } else {
        checksum_update(sum, old.swap_bytes(), max_mss.swap_bytes())
    };
    frame[sum_at..sum_at + 2].copy_from_slice(&patched.to_be_bytes());
    Some(old)
}

/// The MSS a TCP SYN (or SYN-ACK) in `frame` advertises, if it has the option.
pub fn syn_mss(frame: &[u8], ip: &IpView) -> Option<u16> {
    let (tcp, i) = mss_option(frame, ip)?;
    let at = tcp + i + 2;
    Some(u16::from_be_bytes([frame[at], frame[at + 1]]))
}

/// Where the MSS option of a TCP SYN in `frame` is: the TCP header's offset in the frame and
/// the option's within the header (its 4 bytes are there, inside the header).
fn mss_option(frame: &[u8], ip: &IpView) -> Option<(usize, usize)> {
    if ip.proto != PROTO_TCP || !ip.has_transport_header() {
        return None;
    }
    let tcp = ip.l3 + ip.header_len;
    let end = ip.l3 + ip.total_len;
    let header = frame.get(tcp..end)?;
    if header.len() < 20 || header[13] & FLAG_SYN == 0 {
        return None;
    }
    let data_offset = usize::from(header[12] >> 4) * 4;
    if data_offset < 20 || data_offset > header.len() {
        return None;
    }
    let mut i = 20;
    while i < data_offset {
        match header[i] {
            OPTION_END => return None,
            OPTION_NOP => i += 1,
            kind => {
                let len = usize::from(*header.get(i + 1)?);
                if len < 2 || i + len > data_offset {
                    return None;
                }
                if kind == OPTION_MSS && len == 4 {
                    return Some((tcp, i));
                }
                i += len;
            }
        }
    }
    None
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit word changed from `old` to `new`.
pub fn checksum_update(sum: u16, old: u16, new: u16) -> u16 {
    let mut acc = u32::from(!sum) + u32::from(!old) + u32::from(new);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}
