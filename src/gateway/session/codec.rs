//! A tiny length-prefixed binary encoding for cookie payloads. It is
//! compact (cookies are small) and decodes without copying: strings are
//! borrowed straight out of the decrypted buffer.

/// Appends fields to a buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity) }
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    /// An unsigned integer as LEB128.
    pub fn varint(&mut self, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    /// Raw bytes of a length both sides know.
    pub fn raw(&mut self, value: &[u8]) {
        self.buf.extend_from_slice(value);
    }

    /// A length-prefixed string.
    pub fn str(&mut self, value: &str) {
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value.as_bytes());
    }

    /// An optional string: a presence byte, then the string.
    pub fn opt_str(&mut self, value: Option<&str>) {
        match value {
            Some(v) => {
                self.u8(1);
                self.str(v);
            }
            None => self.u8(0),
        }
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Why a payload did not decode. Deliberately detail-free: a payload that
/// decrypted but does not decode is treated like a missing cookie.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// Reads fields back, borrowing from the buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Malformed> {
        let (&first, rest) = self.buf.split_first().ok_or(Malformed)?;
        self.buf = rest;
        Ok(first)
    }

    /// A LEB128 unsigned integer.
    pub fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    /// `len` raw bytes.
    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        if len > self.buf.len() {
            return Err(Malformed);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    /// A length-prefixed string.
    pub fn str(&mut self) -> Result<&'a str, Malformed> {
        let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
        std::str::from_utf8(self.bytes(len)?).map_err(|_| Malformed)
    }

    /// An optional string.
    pub fn opt_str(&mut self) -> Result<Option<&'a str>, Malformed> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            _ => Err(Malformed),
        }
    }

    /// The unread rest.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Succeeds only when everything was read.
    pub fn end(&self) -> Result<(), Malformed> {
        if self.buf.is_empty() { Ok(()) } else { Err(Malformed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = Writer::default();
        w.u8(7);
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            w.varint(v);
        }
        w.str("héllo");
        w.opt_str(None);
        w.opt_str(Some(""));
        let buf = w.finish();
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(7));
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(r.varint(), Ok(v));
        }
        assert_eq!(r.str(), Ok("héllo"));
        assert_eq!(r.opt_str(), Ok(None));
        assert_eq!(r.opt_str(), Ok(Some("")));
        assert_eq!(r.end(), Ok(()));
    }

    #[test]
    fn truncation_and_garbage_fail() {
        let mut w = Writer::default();
        w.str("abcdef");
        let buf = w.finish();
        assert_eq!(Reader::new(&buf[..4]).str(), Err(Malformed));
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(Malformed));
        assert_eq!(Reader::new(&[2, 0xff, 0xfe]).str(), Err(Malformed), "invalid UTF-8");
        assert_eq!(Reader::new(&[9]).opt_str(), Err(Malformed));
    }
}
