//! Big-endian field access for the OpenFlow codec: a cursor whose short reads become the
//! OpenFlow error its context calls for, and `put_*` helpers that append to a message being
//! encoded. Nothing here panics on any input.

use super::DecodeError;

/// A cursor over a structure's bytes. Running past the end yields a [`DecodeError`] with the
/// (type, code) given at construction, since which error is right depends on what is read.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    err_type: u16,
    code: u16,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`, a `what` (for the log), that reports truncation as (`err_type`, `code`).
    pub(crate) fn new(bytes: &'a [u8], err_type: u16, code: u16, what: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            err_type,
            code,
            what,
        }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    /// Consumes and returns the unread bytes.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        rest
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "{} bytes needed at offset {}, {} left",
                n,
                self.pos,
                self.remaining()
            )));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes (padding).
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A fixed-width NUL-padded string field of `width` bytes.
    pub(crate) fn string(&mut self, width: usize) -> Result<String, DecodeError> {
        let raw = self.bytes(width)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
    }

    /// An error of this reader's (type, code) about its structure.
    pub(crate) fn error(&self, detail: String) -> DecodeError {
        DecodeError::new(
            self.err_type,
            self.code,
            format!("{}: {}", self.what, detail),
        )
    }
}

/// Appending big-endian fields to a message being encoded.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    /// `n` zero bytes (padding).
    fn put_zeros(&mut self, n: usize);
    /// `s` as a fixed-width field of `width` bytes: cut at a character boundary to at most
    /// `width - 1` bytes, so that a NUL always ends it, and NUL-padded.
    fn put_string(&mut self, s: &str, width: usize);
    /// Zero bytes up to the next multiple of 8 counted from `start`.
    fn pad_to_8(&mut self, start: usize);
    /// Writes the length of everything from `start` on into the 16-bit field at `start + at`.
    fn patch_len(&mut self, start: usize, at: usize);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }

    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }

    fn put_string(&mut self, s: &str, width: usize) {
        let mut end = s.len().min(width.saturating_sub(1));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.extend_from_slice(&s.as_bytes()[..end]);
        self.put_zeros(width - end);
    }

    fn pad_to_8(&mut self, start: usize) {
        let len = self.len() - start;
        self.put_zeros(padded8(len) - len);
    }

    fn patch_len(&mut self, start: usize, at: usize) {
        let len = len_u16(self.len() - start);
        if let Some(field) = self.get_mut(start + at..start + at + 2) {
            field.copy_from_slice(&len.to_be_bytes());
        }
    }
}

/// `n` rounded up to a multiple of 8 (OpenFlow's alignment).
pub(crate) fn padded8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// A length for a 16-bit length field. Lengths that do not fit saturate: such a structure
/// cannot be represented on the wire, and callers keep messages within 65535 bytes.
pub(crate) fn len_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// The big-endian u16 at `at`, if there.
pub(crate) fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}
