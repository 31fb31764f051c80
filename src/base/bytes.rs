//! A bounds-checked cursor over `&[u8]` with Go-compatible varints. Every read returns a typed
//! error carrying the offset where it failed; nothing here can panic on input.
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("unexpected end of data at offset {offset} (needed {needed} more bytes)")]
    Eof { offset: usize, needed: usize },
    #[error("malformed varint at offset {offset}")]
    Varint { offset: usize },
    #[error("{what} at offset {offset}")]
    Invalid { offset: usize, what: String },
}

impl ParseError {
    pub fn offset(&self) -> usize {
        match self {
            ParseError::Eof { offset, .. }
            | ParseError::Varint { offset }
            | ParseError::Invalid { offset, .. } => *offset,
        }
    }
    pub fn invalid(offset: usize, what: impl Into<String>) -> Self {
        ParseError::Invalid {
            offset,
            what: what.into(),
        }
    }
    /// The same error `by` bytes further on: for parsers run over a sub-slice.
    pub fn shifted(self, by: usize) -> Self {
        match self {
            ParseError::Eof { offset, needed } => ParseError::Eof {
                offset: offset + by,
                needed,
            },
            ParseError::Varint { offset } => ParseError::Varint {
                offset: offset + by,
            },
            ParseError::Invalid { offset, what } => ParseError::Invalid {
                offset: offset + by,
                what,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if n > self.remaining() {
            return Err(ParseError::Eof {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16le(&mut self) -> Result<u16, ParseError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32le(&mut self) -> Result<u32, ParseError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64le(&mut self) -> Result<u64, ParseError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// Go `binary.Uvarint`: at most 10 bytes, the 10th may only be 0 or 1.
    pub fn uvarint(&mut self) -> Result<u64, ParseError> {
        let start = self.pos;
        let mut x: u64 = 0;
        let mut s: u32 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(ParseError::Eof {
                    offset: self.pos,
                    needed: 1,
                });
            };
            self.pos += 1;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(ParseError::Varint { offset: start });
                }
                return Ok(x | (u64::from(b) << s));
            }
            x |= u64::from(b & 0x7f) << s;
            s += 7;
        }
        Err(ParseError::Varint { offset: start })
    }
    /// Refuse a count of entries that each take at least `min_entry` bytes when the rest of
    /// the buffer cannot hold them, so a hostile count never drives an allocation. `what`
    /// names the entries in the error, e.g. "index.db: 7 blocks".
    pub fn check_count(
        &self,
        at: usize,
        count: u64,
        min_entry: u64,
        what: &str,
    ) -> Result<u64, ParseError> {
        if count.saturating_mul(min_entry) > self.remaining() as u64 {
            return Err(ParseError::invalid(
                at,
                format!(
                    "{what}: {count} entries but only {} bytes left",
                    self.remaining()
                ),
            ));
        }
        Ok(count)
    }

    /// The two-byte file header every store file starts with: `magic`, then a version in
    /// `versions`. `what` names the file in errors; `hint` is appended to a bad-magic error.
    pub fn header(
        &mut self,
        magic: u8,
        versions: std::ops::RangeInclusive<u8>,
        what: &str,
        hint: &str,
    ) -> Result<u8, ParseError> {
        let m = self.u8()?;
        if m != magic {
            return Err(ParseError::invalid(
                0,
                format!("{what}: bad magic {m} (want {magic}){hint}"),
            ));
        }
        let v = self.u8()?;
        if !versions.contains(&v) {
            return Err(ParseError::invalid(
                1,
                format!("{what}: unsupported version {v}"),
            ));
        }
        Ok(v)
    }

    /// A uvarint count checked with [`Cursor::check_count`].
    pub fn count(&mut self, min_entry: u64, what: &str) -> Result<u64, ParseError> {
        let at = self.pos;
        let n = self.uvarint()?;
        self.check_count(at, n, min_entry, what)
    }

    /// Go `binary.Varint` (zig-zag).
    pub fn varint(&mut self) -> Result<i64, ParseError> {
        let ux = self.uvarint()?;
        let x = (ux >> 1) as i64;
        Ok(if ux & 1 != 0 { !x } else { x })
    }
}

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let ux = ((v as u64) << 1) ^ ((v >> 63) as u64);
    put_uvarint(out, ux);
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn varint_roundtrip_and_errors() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(Cursor::new(&b).uvarint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -12345] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Cursor::new(&b).varint().unwrap(), v);
        }
        assert!(matches!(
            Cursor::new(&[0x80]).uvarint(),
            Err(ParseError::Eof { .. })
        ));
        assert!(matches!(
            Cursor::new(&[0xff; 11]).uvarint(),
            Err(ParseError::Varint { .. })
        ));
        assert!(Cursor::new(&[1, 2]).u32le().is_err());
    }
}

/// `b` for a human: printable ASCII as it is, everything else escaped (`\x07`), cut to
/// `max` characters with `…` (binary garbage is never printed as a subject).
pub fn printable(b: &[u8], max: usize) -> String {
    let s: String = b.escape_ascii().to_string();
    if s.chars().count() <= max {
        return s;
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod printable_tests {
    #[test]
    fn escapes_and_cuts() {
        assert_eq!(super::printable(b"orders.new", 64), "orders.new");
        assert_eq!(super::printable(b"a\x07b", 64), "a\\x07b");
        assert_eq!(super::printable(b"abcdef", 3), "abc…");
    }
}
