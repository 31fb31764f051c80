//! One source block as the write phase reads it, in bounded memory.
//!
//! A block of at most [`BIG_BLOCK`] bytes (every block a server writes for records below
//! 8 MiB) is read whole into a reused buffer and its records are written straight from it.
//! A larger plain block holds one huge record (up to 32 MiB, `rlBadThresh`): its records are
//! framed by reading their headers only ([`FileRecords`]), and their bytes are streamed from
//! the file into the output in 1 MiB pieces, so no copy of the record is ever held. A larger
//! `cmp` block is decoded as it is read (its compressed bytes are never all in memory).
use crate::filestore::block::{
    self, FrameError, RecordKind, BIG_BLOCK, CHECKSUM_LEN, EBIT, EMPTY_RECORD_LEN, HBIT, HDR_LEN,
    MAX_BLOCK_FILE, MAX_RECORD_LEN, TBIT,
};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The bytes of one block: in memory, or a big plain block left in its file.
pub(super) enum BlockData {
    /// The plain block (or, with `undecodable`, the raw bytes of a `cmp` block that does not
    /// decode: only with --allow-damaged; it goes in as it is).
    Mem {
        undecodable: Option<crate::s2::S2Error>,
    },
    /// A plain block above [`BIG_BLOCK`], `len` bytes, read piece by piece.
    File { file: File, len: u64 },
    /// A `cmp` block above [`BIG_BLOCK`] that does not decode: copied as it is from the file.
    RawFile {
        file: File,
        len: u64,
        err: crate::s2::S2Error,
    },
}

/// One block opened for writing: `data` says where its bytes are; `buf` holds them for
/// [`BlockData::Mem`]. `size` is the file's size (for progress).
pub(super) struct Block<'b> {
    pub(super) data: BlockData,
    pub(super) buf: &'b [u8],
    pub(super) size: u64,
}

/// Reads block `path` for writing, into `buf` (reused across blocks; an outsized buffer is
/// given back by [`release`]).
pub(super) fn open<'b>(path: &Path, buf: &'b mut Vec<u8>) -> io::Result<Block<'b>> {
    let mut f = crate::ops::target_dir::open(path)?;
    let size = f.metadata()?.len();
    let mut head = [0u8; 8];
    let got = read_up_to(&mut f, &mut head)?;
    let is_cmp = block::is_cmp_block(head.get(..got).unwrap_or(&[]));
    if size > BIG_BLOCK && !is_cmp {
        return Ok(Block {
            data: BlockData::File { file: f, len: size },
            buf: &buf[..0],
            size,
        });
    }
    if size > BIG_BLOCK {
        // decoded as it is read: only the plain block is in memory
        let r = io::BufReader::with_capacity(1 << 20, crate::ops::target_dir::open(path)?);
        buf.clear();
        buf.reserve(crate::filestore::source::MMAP_ALWAYS as usize);
        return Ok(
            match block::decompress_cmp_reader(r, size, buf, block::CmpReader::default())? {
                Ok(()) => Block {
                    data: BlockData::Mem { undecodable: None },
                    buf: &buf[..],
                    size,
                },
                Err(err) => {
                    buf.clear();
                    f.seek(SeekFrom::Start(0))?;
                    Block {
                        data: BlockData::RawFile {
                            file: f,
                            len: size,
                            err,
                        },
                        buf: &buf[..0],
                        size,
                    }
                }
            },
        );
    }
    block::reserve_for_block(buf, size.min(MAX_BLOCK_FILE));
    buf.extend_from_slice(head.get(..got).unwrap_or(&[]));
    f.take(MAX_BLOCK_FILE).read_to_end(buf)?;
    if !is_cmp {
        return Ok(Block {
            data: BlockData::Mem { undecodable: None },
            buf: &buf[..],
            size,
        });
    }
    match block::decompress_cmp_block(buf) {
        Ok(plain) => {
            *buf = plain;
            Ok(Block {
                data: BlockData::Mem { undecodable: None },
                buf: &buf[..],
                size,
            })
        }
        Err(e) => Ok(Block {
            data: BlockData::Mem {
                undecodable: Some(e),
            },
            buf: &buf[..],
            size,
        }),
    }
}

/// Frees a buffer that grew past a normal block (one huge `cmp` block).
pub(super) fn release(buf: &mut Vec<u8>) {
    if buf.capacity() as u64 > BIG_BLOCK {
        *buf = Vec::new();
    }
}

impl Block<'_> {
    /// Why a `cmp` block does not decode (it is copied as it is), or `None`.
    pub(super) fn undecodable(&self) -> Option<&crate::s2::S2Error> {
        match &self.data {
            BlockData::Mem { undecodable } => undecodable.as_ref(),
            BlockData::RawFile { err, .. } => Some(err),
            BlockData::File { .. } => None,
        }
    }

    /// The plain block when it is in memory (`None` for a big plain block read from its file).
    pub(super) fn in_memory(&self) -> Option<&[u8]> {
        match &self.data {
            BlockData::Mem { undecodable: None } => Some(self.buf),
            _ => None,
        }
    }

    /// Length of the bytes [`Block::copy_all`] writes.
    pub(super) fn len(&self) -> u64 {
        match &self.data {
            BlockData::Mem { .. } => self.buf.len() as u64,
            BlockData::File { len, .. } | BlockData::RawFile { len, .. } => *len,
        }
    }

    /// The record heads of the plain block, in order; after a framing error, that error once.
    pub(super) fn records(&mut self) -> Heads<'_> {
        match &mut self.data {
            BlockData::File { file, len } => Heads::File(FileRecords {
                file,
                len: *len,
                pos: 0,
                done: false,
            }),
            _ => Heads::Mem(block::Records::new(self.buf)),
        }
    }

    /// Writes `len` bytes at `offset` of the block to `w`.
    pub(super) fn copy_range<W: Write>(
        &mut self,
        offset: u64,
        len: u64,
        w: &mut W,
        piece: &mut Vec<u8>,
    ) -> io::Result<()> {
        match &mut self.data {
            BlockData::Mem { .. } => {
                let s = usize::try_from(offset).unwrap_or(usize::MAX);
                let e = s.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
                let d = self
                    .buf
                    .get(s..e)
                    .ok_or_else(|| io::Error::other("block range out of bounds"))?;
                w.write_all(d)
            }
            BlockData::File { file, .. } | BlockData::RawFile { file, .. } => {
                file.seek(SeekFrom::Start(offset))?;
                copy_n(file, len, w, piece)
            }
        }
    }

    /// Writes the whole block (plain, or raw when it does not decode) to `w`.
    pub(super) fn copy_all<W: Write>(&mut self, w: &mut W, piece: &mut Vec<u8>) -> io::Result<()> {
        let n = self.len();
        self.copy_range(0, n, w, piece)
    }

    /// The last 8 bytes of what [`Block::copy_all`] writes (zeros when shorter).
    pub(super) fn tail(&mut self) -> io::Result<[u8; 8]> {
        let mut t = [0u8; 8];
        match &mut self.data {
            BlockData::Mem { .. } => {
                if let Some(s) = self
                    .buf
                    .len()
                    .checked_sub(8)
                    .and_then(|at| self.buf.get(at..))
                {
                    t.copy_from_slice(s);
                }
            }
            BlockData::File { file, len } | BlockData::RawFile { file, len, .. } => {
                if *len >= 8 {
                    file.seek(SeekFrom::Start(*len - 8))?;
                    file.read_exact(&mut t)?;
                }
            }
        }
        Ok(t)
    }
}

/// Copies exactly `n` bytes from `r` to `w` through `piece` (at most 1 MiB).
fn copy_n<R: Read, W: Write>(
    r: &mut R,
    mut n: u64,
    w: &mut W,
    piece: &mut Vec<u8>,
) -> io::Result<()> {
    const PIECE: usize = 1 << 20;
    if piece.len() < PIECE {
        piece.resize(PIECE, 0);
    }
    while n > 0 {
        let want = n.min(PIECE as u64) as usize;
        let dst = piece
            .get_mut(..want)
            .ok_or_else(|| io::Error::other("piece buffer"))?;
        r.read_exact(dst)?;
        w.write_all(dst)?;
        n -= want as u64;
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(super) fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match f.read(rest) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// What the write phase needs of one record: where it is, its sequence and time, its subject,
/// and where its headers and payload lie (back to back).
#[derive(Debug, Clone)]
pub(super) struct Head<'a> {
    pub(super) offset: u64,
    /// Full record length.
    pub(super) len: u32,
    pub(super) raw_seq: u64,
    pub(super) seq: u64,
    pub(super) ts: i64,
    pub(super) subject: Cow<'a, [u8]>,
    /// Header block length (0 without headers).
    pub(super) hdr_len: u64,
    /// Offset of the header block (or of the payload without headers).
    pub(super) body: u64,
    /// Header block + payload length.
    pub(super) body_len: u64,
    pub(super) checksum: [u8; 8],
}

impl Head<'_> {
    /// The same head, owning its subject.
    pub(super) fn into_owned(self) -> Head<'static> {
        Head {
            subject: Cow::Owned(self.subject.into_owned()),
            ..self
        }
    }

    pub(super) fn kind(&self) -> RecordKind {
        if self.raw_seq & TBIT != 0 {
            RecordKind::Tombstone
        } else if self.raw_seq & EBIT != 0 {
            RecordKind::Erased
        } else {
            RecordKind::Message
        }
    }
}

/// Record heads of a block in memory or in a file.
pub(super) enum Heads<'a> {
    Mem(block::Records<'a>),
    File(FileRecords<'a>),
}

impl<'a> Iterator for Heads<'a> {
    type Item = Result<Head<'a>, FrameError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Heads::Mem(rs) => rs.next().map(|r| {
                r.map(|r| {
                    let body_len = r.headers.map_or(0, |h| h.len()) + r.payload.len();
                    let body = r.len as usize - CHECKSUM_LEN - body_len;
                    Head {
                        offset: r.offset as u64,
                        len: r.len,
                        raw_seq: r.raw_seq,
                        seq: r.seq,
                        ts: r.ts,
                        subject: Cow::Borrowed(r.subject),
                        hdr_len: r.headers.map_or(0, |h| h.len() as u64),
                        body: (r.offset + body) as u64,
                        body_len: body_len as u64,
                        checksum: r.checksum,
                    }
                })
            }),
            Heads::File(f) => f.next(),
        }
    }
}

/// Frames the records of a plain block file by reading their headers, subjects and checksums
/// only, with the checks of [`block::parse_record`] (the same errors at the same offsets).
pub(super) struct FileRecords<'a> {
    file: &'a mut File,
    len: u64,
    pos: u64,
    done: bool,
}

impl FileRecords<'_> {
    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(at))?;
        self.file.read_exact(buf)
    }

    fn frame(&mut self) -> Result<Head<'static>, FrameError> {
        let off = self.pos;
        let err = |what: String| FrameError {
            offset: usize::try_from(off).unwrap_or(usize::MAX),
            what,
        };
        let io_err = |e: io::Error| FrameError {
            offset: usize::try_from(off).unwrap_or(usize::MAX),
            what: format!("read error: {e}"),
        };
        let rem = self.len.saturating_sub(off);
        if rem < HDR_LEN as u64 {
            return Err(err(format!(
                "truncated record header ({rem} of {HDR_LEN} bytes)"
            )));
        }
        let mut h = [0u8; HDR_LEN + 4];
        let want = if rem >= (HDR_LEN + 4) as u64 {
            HDR_LEN + 4
        } else {
            HDR_LEN
        };
        self.read_at(off, &mut h[..want]).map_err(io_err)?;
        let rl_raw = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let has_hdr = rl_raw & HBIT != 0;
        let rl = rl_raw & !HBIT;
        if rl > MAX_RECORD_LEN {
            return Err(err(format!("record length {rl} exceeds the 32 MiB limit")));
        }
        let rlu = u64::from(rl);
        if rlu < EMPTY_RECORD_LEN as u64 {
            return Err(err(format!(
                "record length {rl} is below the minimum of {EMPTY_RECORD_LEN}"
            )));
        }
        if rlu > rem {
            return Err(err(format!(
                "record length {rl} runs past the end of the block ({rem} bytes left)"
            )));
        }
        let mut q = [0u8; 8];
        q.copy_from_slice(&h[4..12]);
        let raw_seq = u64::from_le_bytes(q);
        q.copy_from_slice(&h[12..20]);
        let ts = u64::from_le_bytes(q) as i64;
        let slen = u16::from_le_bytes([h[20], h[21]]) as u64;
        let dlen = rlu - HDR_LEN as u64;
        let shlen = slen + if has_hdr { 4 } else { 0 };
        if shlen > dlen - CHECKSUM_LEN as u64 {
            return Err(err(format!(
                "subject length {slen} does not fit in record of length {rl}"
            )));
        }
        let data = off + HDR_LEN as u64;
        let mut subject = vec![0u8; slen as usize];
        self.read_at(data, &mut subject).map_err(io_err)?;
        let (hdr_len, body) = if has_hdr {
            let mut l = [0u8; 4];
            self.read_at(data + slen, &mut l).map_err(io_err)?;
            let hlen = u64::from(u32::from_le_bytes(l));
            if hlen > dlen - CHECKSUM_LEN as u64 - shlen {
                return Err(err(format!(
                    "header length {hlen} does not fit in record of length {rl}"
                )));
            }
            (hlen, data + shlen)
        } else {
            (0, data + shlen)
        };
        let end = off + rlu - CHECKSUM_LEN as u64;
        let mut checksum = [0u8; 8];
        self.read_at(end, &mut checksum).map_err(io_err)?;
        Ok(Head {
            offset: off,
            len: rl,
            raw_seq,
            seq: raw_seq & !(EBIT | TBIT),
            ts,
            subject: Cow::Owned(subject),
            hdr_len,
            body,
            body_len: end - body,
            checksum,
        })
    }
}

impl<'a> Iterator for FileRecords<'a> {
    type Item = Result<Head<'a>, FrameError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.len {
            return None;
        }
        match self.frame() {
            Ok(r) => {
                self.pos += u64::from(r.len);
                Some(Ok(r))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file framing gives the same heads (and the same first error) as the in-memory one.
    #[test]
    fn file_records_match_memory_records() {
        let k = block::block_key("T", 1);
        let mut b = Vec::new();
        block::encode_record(&mut b, &k, 1, 100, b"a.b", None, b"hello");
        block::encode_record(
            &mut b,
            &k,
            2,
            101,
            b"a.c",
            Some(b"NATS/1.0\r\nX: y\r\n\r\n"),
            b"p",
        );
        block::encode_record(&mut b, &k, 3 | TBIT, 102, b"", None, b"");
        block::encode_record(&mut b, &k, 4 | EBIT, 103, b"", None, b"");
        let mut damaged = b.clone();
        damaged.extend_from_slice(&[0xff, 0xff, 0, 0, 1, 2, 3]);
        for data in [b, damaged] {
            let t = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(t.path(), &data).unwrap();
            let mut f = File::open(t.path()).unwrap();
            let fr: Vec<_> = FileRecords {
                file: &mut f,
                len: data.len() as u64,
                pos: 0,
                done: false,
            }
            .collect();
            let mr: Vec<_> = Heads::Mem(block::Records::new(&data)).collect();
            assert_eq!(fr.len(), mr.len());
            for (a, b) in fr.iter().zip(&mr) {
                match (a, b) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(
                            (a.offset, a.len, a.raw_seq, a.ts, &a.subject[..], a.hdr_len),
                            (b.offset, b.len, b.raw_seq, b.ts, &b.subject[..], b.hdr_len)
                        );
                        assert_eq!(
                            (a.body, a.body_len, a.checksum),
                            (b.body, b.body_len, b.checksum)
                        );
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    _ => panic!("{a:?} vs {b:?}"),
                }
            }
        }
    }
}
