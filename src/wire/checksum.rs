//! The Internet checksum (RFC 1071): one's complement sum of 16-bit words.

/// Adds `data` to a running one's complement sum (not yet folded).
pub fn add(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = sum.overflowing_add(word);
        sum = s + u64::from(carry);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        let (s, carry) = sum.overflowing_add(u64::from(u16::from_be_bytes([c[0], c[1]])));
        sum = s + u64::from(carry);
    }
    if let [last] = rest.remainder() {
        let (s, carry) = sum.overflowing_add(u64::from(*last) << 8);
        sum = s + u64::from(carry);
    }
    sum
}

/// Folds a running sum to 16 bits and complements it: the value to put in a checksum field.
pub fn finish(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The checksum of `pieces` taken as one byte string. Every piece but the last must have an
/// even length.
pub fn of(pieces: &[&[u8]]) -> u16 {
    finish(pieces.iter().fold(0, |sum, p| add(sum, p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for c in data.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            of(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            !0xddf2
        );
    }

    proptest! {
        #[test]
        fn matches_a_plain_word_by_word_sum(data in proptest::collection::vec(any::<u8>(), 0..300), split in 0usize..150) {
            let split = (split.min(data.len())) & !1;
            prop_assert_eq!(of(&[&data[..split], &data[split..]]), reference(&data));
        }
    }
}
