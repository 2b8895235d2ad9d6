//! The Internet checksum (RFC 1071): one's complement sum of 16-bit words.

/// Adds `data` to a running one's complement sum (not yet folded).
///
/// The one's complement sum does not depend on byte order (RFC 1071, 2.(B)): `data` is summed
/// as native-endian 32-bit words into four 64-bit accumulators, which cannot overflow below
/// 64 GiB of data, need no carry handling and let the compiler use vector adds.
/// The total is folded to 16 bits and brought to network order only at the end.
pub fn add(sum: u64, data: &[u8]) -> u64 {
    let word = |c: &[u8]| u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
    let mut acc = [0u64; 4];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        for (i, a) in acc.iter_mut().enumerate() {
            *a += word(&b[i * 4..]) + word(&b[16 + i * 4..]);
        }
    }
    let mut native = acc.iter().fold(0u128, |t, &a| t + u128::from(a));
    let mut words = blocks.remainder().chunks_exact(2);
    for w in &mut words {
        native += u128::from(u16::from_ne_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        native += u128::from(u16::from_ne_bytes([*last, 0]));
    }
    while native > 0xffff {
        native = (native & 0xffff) + (native >> 16);
    }
    let (s, carry) = sum.overflowing_add(u64::from(u16::from_be(native as u16)));
    s + u64::from(carry)
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

        #[test]
        fn long_buffers_and_running_sums_agree_too(
            data in proptest::collection::vec(any::<u8>(), 0..70_000),
            start in any::<u64>(),
        ) {
            let start = start >> 1;
            prop_assert_eq!(finish(add(start, &data)), finish(add(start, &[]) + u64::from(!reference(&data))));
        }
    }
}
