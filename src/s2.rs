//! S2 (klauspost/compress `s2`) decoding, strict and safe, plus thin Snappy-framed writers.
//!
//! * [`decode_block`]: the S2 block format (Snappy block format plus repeat offsets and blocks
//!   larger than 64 KiB).
//! * [`FrameReader`] / [`decode_stream`]: the framing format (`S2sTwO` or `sNaPpY` identifier,
//!   compressed / uncompressed / padding / skippable chunks, masked CRC-32C on every data chunk).
//!   The reader is strict: the first chunk must be an identifier, reserved chunk types are errors,
//!   and end of input is only clean at a chunk boundary.
//! * [`decompress_cmp_block`] / [`compress_cmp_block`]: the on-disk compressed message block
//!   (`"cmp"` ‖ alg ‖ uvarint size ‖ S2 stream ‖ raw last 8 bytes).
//! * [`FrameWriter`]: a framed writer for backups. It writes Snappy framing (`sNaPpY`) through
//!   the `snap` crate, which the server's S2 reader accepts.
//!
//! Every error carries the byte offset in the compressed input where decoding failed.
use std::io::{self, Read, Write};

use thiserror::Error;

use crate::bytes::{Cursor, ParseError};

/// Largest decoded chunk accepted inside an S2-framed stream (`S2sTwO`), as in the Go reader.
pub const MAX_BLOCK: usize = 4 << 20;
/// Largest decoded chunk accepted inside a Snappy-framed stream (`sNaPpY`).
pub const MAX_SNAPPY_BLOCK: usize = 64 << 10;
/// Largest decoded length [`decode_block`] accepts for a standalone block.
pub const MAX_RAW_BLOCK: usize = 64 << 20;
/// Largest body (checksum included) of a compressed-data chunk. The Go reader refuses chunks
/// bigger than `MaxEncodedLen(4 MiB) + 4`; this bound is a few bytes more lenient than that.
const MAX_COMPRESSED_CHUNK: usize = MAX_BLOCK + 64;

const ID_S2: &[u8; 6] = b"S2sTwO";
const ID_SNAPPY: &[u8; 6] = b"sNaPpY";
pub(crate) const CHUNK_HEADER: usize = 4;
const CRC_SIZE: usize = 4;
const CMP_MAGIC: &[u8; 3] = b"cmp";
/// Length of the raw tail (last record checksum) of an on-disk compressed block.
const CMP_TAIL: usize = 8;
/// Algorithm byte for S2 in a `cmp` block header.
const CMP_ALG_S2: u8 = 1;

/// An S2 decoding failure. `offset` is always a byte offset in the compressed input that was
/// given to the failing function (for [`FrameReader`], in the whole stream read so far).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum S2Error {
    /// The input ended inside a chunk. `offset` is where the chunk starts.
    #[error("S2 input is truncated: {what} at offset {offset} is incomplete (input ends at offset {end})")]
    Truncated {
        offset: u64,
        end: u64,
        what: &'static str,
    },
    /// Invalid S2 block data (bad tag, bad copy offset, overrun, ...).
    #[error("corrupt S2 data at offset {offset}: {what}")]
    Corrupt { offset: u64, what: &'static str },
    /// A block or chunk declares more decoded bytes than allowed.
    #[error("S2 data at offset {offset} declares {declared} decoded bytes, more than the allowed {limit}")]
    TooLarge {
        offset: u64,
        declared: u64,
        limit: u64,
    },
    /// The masked CRC-32C of a data chunk does not match its decoded bytes. `offset` is the chunk start.
    #[error("S2 chunk at offset {offset} fails its CRC-32C check (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        offset: u64,
        stored: u32,
        computed: u32,
    },
    /// Chunk types 0x02..=0x7f are reserved and must not be skipped.
    #[error("S2 chunk at offset {offset} has the reserved unskippable type {kind:#04x}")]
    ReservedChunk { offset: u64, kind: u8 },
    /// The first chunk of a stream is not a stream identifier.
    #[error("S2 stream does not start with a stream identifier: chunk type {kind:#04x} at offset {offset}")]
    MissingIdentifier { offset: u64, kind: u8 },
    /// A stream identifier chunk with the wrong length or body.
    #[error("S2 stream identifier chunk at offset {offset} is invalid (expected \"S2sTwO\" or \"sNaPpY\")")]
    BadIdentifier { offset: u64 },
    /// The decoded size differs from the declared size.
    #[error(
        "S2 decoded size mismatch at offset {offset}: {expected} bytes declared, {actual} produced"
    )]
    SizeMismatch {
        offset: u64,
        expected: u64,
        actual: u64,
    },
    /// A `cmp` block names an algorithm other than 1 (S2).
    #[error(
        "compressed block at offset {offset} uses unknown algorithm {alg} (only 1 = S2 is defined)"
    )]
    UnsupportedAlgorithm { offset: u64, alg: u8 },
    /// The buffer is not a `cmp` compressed block or its header is malformed.
    #[error("invalid compressed block header at offset {offset}: {what}")]
    BadCmpHeader { offset: u64, what: &'static str },
}

impl S2Error {
    /// Byte offset in the compressed input where decoding failed.
    pub fn offset(&self) -> u64 {
        match *self {
            S2Error::Truncated { offset, .. }
            | S2Error::Corrupt { offset, .. }
            | S2Error::TooLarge { offset, .. }
            | S2Error::Checksum { offset, .. }
            | S2Error::ReservedChunk { offset, .. }
            | S2Error::MissingIdentifier { offset, .. }
            | S2Error::BadIdentifier { offset }
            | S2Error::SizeMismatch { offset, .. }
            | S2Error::UnsupportedAlgorithm { offset, .. }
            | S2Error::BadCmpHeader { offset, .. } => offset,
        }
    }

    fn shifted(self, by: u64) -> Self {
        let mut e = self;
        match &mut e {
            S2Error::Truncated { offset, end, .. } => {
                *offset += by;
                *end += by;
            }
            S2Error::Corrupt { offset, .. }
            | S2Error::TooLarge { offset, .. }
            | S2Error::Checksum { offset, .. }
            | S2Error::ReservedChunk { offset, .. }
            | S2Error::MissingIdentifier { offset, .. }
            | S2Error::BadIdentifier { offset }
            | S2Error::SizeMismatch { offset, .. }
            | S2Error::UnsupportedAlgorithm { offset, .. }
            | S2Error::BadCmpHeader { offset, .. } => *offset += by,
        }
        e
    }
}

impl From<S2Error> for io::Error {
    fn from(e: S2Error) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Masked CRC-32C as used by the Snappy/S2 framing format.
pub(crate) fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn corrupt(offset: usize, base: u64, what: &'static str) -> S2Error {
    S2Error::Corrupt {
        offset: base + offset as u64,
        what,
    }
}

// ------------------------------------------------------------------------------------------------
// Block format
// ------------------------------------------------------------------------------------------------

/// Reads the block's decoded-length varint: `(length, header bytes)`.
fn block_len(src: &[u8], base: u64) -> Result<(u64, usize), S2Error> {
    let mut c = Cursor::new(src);
    let v = c.uvarint().map_err(|e| match e {
        ParseError::Eof { .. } => corrupt(0, base, "block length varint is incomplete"),
        _ => corrupt(0, base, "block length varint is malformed"),
    })?;
    if v > u64::from(u32::MAX) {
        return Err(corrupt(0, base, "block length does not fit in 32 bits"));
    }
    Ok((v, c.pos()))
}

/// Decodes one S2 (or Snappy) block and appends the result to `dst`.
///
/// The block's declared decoded length may be at most [`MAX_RAW_BLOCK`]; exactly that many bytes
/// are reserved, and the block must produce exactly that many. On error `dst` is left unchanged.
pub fn decode_block(src: &[u8], dst: &mut Vec<u8>) -> Result<(), S2Error> {
    decode_block_at(src, 0, dst, MAX_RAW_BLOCK)
}

/// Block decoding with error offsets shifted by `base` and a decoded-length `limit`.
fn decode_block_at(src: &[u8], base: u64, dst: &mut Vec<u8>, limit: usize) -> Result<(), S2Error> {
    let (declared, hdr) = block_len(src, base)?;
    if declared > limit as u64 {
        return Err(S2Error::TooLarge {
            offset: base,
            declared,
            limit: limit as u64,
        });
    }
    let dlen = declared as usize; // <= limit, so it fits
    let body = src.get(hdr..).unwrap_or(&[]);
    let start = dst.len();
    dst.resize(start + dlen, 0);
    let res = match dst.get_mut(start..) {
        Some(out) => decode_body(body, base + hdr as u64, out),
        None => Err(corrupt(0, base, "internal: output window")),
    };
    if res.is_err() {
        dst.truncate(start);
    }
    res
}

/// Little-endian value of up to 4 bytes.
#[inline(always)]
fn le(b: &[u8]) -> usize {
    let mut v = 0usize;
    for (i, &x) in b.iter().enumerate() {
        v |= usize::from(x) << (8 * i);
    }
    v
}

/// Decodes the tag stream `src` into exactly `out.len()` bytes. `base` is the offset of `src[0]`.
///
/// Each tag is parsed from an 8-byte little-endian window (zero-padded near the end of `src`),
/// so the common case needs one bounds check per tag. Short literals and copies are done as
/// fixed 16-byte moves when there is room; the extra bytes land in not-yet-written output and
/// are overwritten later (the output must end exactly at `out.len()` anyway).
fn decode_body(src: &[u8], base: u64, out: &mut [u8]) -> Result<(), S2Error> {
    let n = out.len();
    let mut s = 0usize; // read position in src
    let mut d = 0usize; // write position in out
    let mut last_off = 0usize; // repeat offset; 0 = none yet
    while let Some(rest) = src.get(s..) {
        let Some(&tag) = rest.first() else { break };
        let w = match rest.first_chunk::<8>() {
            Some(a) => u64::from_le_bytes(*a),
            None => {
                let mut a = [0u8; 8];
                if let Some(dst) = a.get_mut(..rest.len()) {
                    dst.copy_from_slice(rest);
                }
                u64::from_le_bytes(a)
            }
        };
        let at = s;
        let (len, off, hdr) = match tag & 3 {
            0 => {
                let x = usize::from(tag >> 2);
                let (len, hdr) = if x < 60 {
                    (x + 1, 1)
                } else {
                    let extra = x - 59; // 1..=4 length bytes
                    (((w >> 8) & mask(extra)) as usize + 1, 1 + extra)
                };
                if hdr > rest.len() {
                    return Err(corrupt(
                        at,
                        base,
                        "literal length runs past the end of the block",
                    ));
                }
                s += hdr;
                // Fast path: up to 64 bytes as 16-byte moves when both sides have slack.
                if len <= 64 && d + len + 16 <= n && s + len + 16 <= src.len() {
                    if let (Some(o), Some(i)) = (
                        out.get_mut(d..).and_then(|r| r.first_chunk_mut::<16>()),
                        src.get(s..).and_then(|r| r.first_chunk::<16>()),
                    ) {
                        *o = *i;
                    }
                    let mut k = 16;
                    while k < len {
                        if let (Some(o), Some(i)) = (
                            out.get_mut(d + k..).and_then(|r| r.first_chunk_mut::<16>()),
                            src.get(s + k..).and_then(|r| r.first_chunk::<16>()),
                        ) {
                            *o = *i;
                        }
                        k += 16;
                    }
                    d += len;
                    s += len;
                    continue;
                }
                if len > n - d {
                    return Err(corrupt(
                        at,
                        base,
                        "literal is longer than the remaining declared output",
                    ));
                }
                let (Some(o), Some(i)) =
                    (out.get_mut(d..d + len), src.get(s..s.saturating_add(len)))
                else {
                    return Err(corrupt(at, base, "literal runs past the end of the block"));
                };
                o.copy_from_slice(i);
                d += len;
                s += len;
                continue;
            }
            1 => {
                // Copy with 11-bit offset, or (offset 0) S2 repeat of the last offset.
                let l = usize::from((tag >> 2) & 7);
                let o = (usize::from(tag & 0xe0) << 3) | ((w >> 8) & 0xff) as usize;
                if o != 0 {
                    (l + 4, o, 2)
                } else if l < 5 {
                    (l + 4, last_off, 2)
                } else {
                    let extra = l - 4; // 1..=3 length bytes
                    let add = match extra {
                        1 => 8,
                        2 => 260,
                        _ => 65540,
                    };
                    (
                        ((w >> 16) & mask(extra)) as usize + add,
                        last_off,
                        2 + extra,
                    )
                }
            }
            2 => (usize::from(tag >> 2) + 1, ((w >> 8) & 0xffff) as usize, 3),
            _ => (
                usize::from(tag >> 2) + 1,
                ((w >> 8) & 0xffff_ffff) as usize,
                5,
            ),
        };
        if hdr > rest.len() {
            return Err(corrupt(at, base, "copy tag runs past the end of the block"));
        }
        s += hdr;
        if off == 0 {
            return Err(if tag & 3 == 1 {
                corrupt(at, base, "repeat code before any copy")
            } else {
                corrupt(at, base, "copy with offset 0")
            });
        }
        if off > d {
            return Err(corrupt(
                at,
                base,
                "copy offset points before the start of the block",
            ));
        }
        if len > n - d {
            return Err(corrupt(
                at,
                base,
                "copy is longer than the remaining declared output",
            ));
        }
        last_off = off;
        let from = d - off;
        if off >= 16 && len <= 64 && d + len + 16 <= n {
            // 16-byte moves; each reads only bytes before its own destination (off >= 16),
            // which are final even if an earlier move of this copy wrote them.
            move_within::<16>(out, from, d);
            let mut k = 16;
            while k < len {
                move_within::<16>(out, from + k, d + k);
                k += 16;
            }
        } else if off >= 8 && len <= 16 && d + 16 <= n {
            move_within::<8>(out, from, d);
            move_within::<8>(out, from + 8, d + 8);
        } else if off >= len {
            out.copy_within(from..from + len, d);
        } else if off == 1 {
            let b = out.get(from).copied().unwrap_or(0);
            if let Some(o) = out.get_mut(d..d + len) {
                o.fill(b);
            }
        } else {
            // Overlapping: the output repeats the `off`-byte pattern. Copy the periodic run
            // `from..d+done` (whose length is a multiple of `off`) forward, doubling it each step.
            let mut done = 0usize;
            while done < len {
                let step = (off + done).min(len - done);
                out.copy_within(from..from + step, d + done);
                done += step;
            }
        }
        d += len;
    }
    if d != n {
        return Err(S2Error::SizeMismatch {
            offset: base + s as u64,
            expected: n as u64,
            actual: d as u64,
        });
    }
    Ok(())
}

/// Copies `N` bytes of `out` from `from` to `to` through a register-sized temporary.
/// Callers guarantee both ranges are inside `out`.
#[inline(always)]
fn move_within<const N: usize>(out: &mut [u8], from: usize, to: usize) {
    let Some(&t) = out.get(from..).and_then(|r| r.first_chunk::<N>()) else {
        return;
    };
    if let Some(o) = out.get_mut(to..).and_then(|r| r.first_chunk_mut::<N>()) {
        *o = t;
    }
}

/// Mask of the low `bytes` bytes (1..=4).
#[inline(always)]
fn mask(bytes: usize) -> u64 {
    (1u64 << (8 * bytes)) - 1
}

// ------------------------------------------------------------------------------------------------
// Framing format
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    S2,
    Snappy,
}

impl Mode {
    fn limit(self) -> usize {
        match self {
            Mode::S2 => MAX_BLOCK,
            Mode::Snappy => MAX_SNAPPY_BLOCK,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Mode::S2 => "S2sTwO",
            Mode::Snappy => "sNaPpY",
        }
    }
}

/// What to do with a chunk, decided from its 4-byte header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Identifier,
    Compressed,
    Uncompressed,
    Skip,
}

/// Validates a chunk header (`at` = chunk start) before any of its body is read.
pub(crate) fn classify(mode: Option<Mode>, kind: u8, len: usize, at: u64) -> Result<Kind, S2Error> {
    if mode.is_none() && kind != 0xff {
        return Err(S2Error::MissingIdentifier { offset: at, kind });
    }
    match kind {
        0xff => {
            if len != ID_S2.len() {
                return Err(S2Error::BadIdentifier { offset: at });
            }
            Ok(Kind::Identifier)
        }
        0x00 | 0x01 => {
            if len < CRC_SIZE {
                return Err(S2Error::Corrupt {
                    offset: at,
                    what: "data chunk is shorter than its 4-byte checksum",
                });
            }
            let limit = mode.map_or(MAX_BLOCK, Mode::limit);
            if kind == 0x00 && len > MAX_COMPRESSED_CHUNK {
                return Err(S2Error::TooLarge {
                    offset: at,
                    declared: len as u64,
                    limit: MAX_COMPRESSED_CHUNK as u64,
                });
            }
            if kind == 0x01 && len - CRC_SIZE > limit {
                return Err(S2Error::TooLarge {
                    offset: at,
                    declared: (len - CRC_SIZE) as u64,
                    limit: limit as u64,
                });
            }
            Ok(if kind == 0 {
                Kind::Compressed
            } else {
                Kind::Uncompressed
            })
        }
        0x02..=0x7f => Err(S2Error::ReservedChunk { offset: at, kind }),
        _ => Ok(Kind::Skip), // 0x80..=0xfd skippable (0x99 = index), 0xfe padding
    }
}

pub(crate) fn identifier(body: &[u8], at: u64) -> Result<Mode, S2Error> {
    if body == ID_S2 {
        Ok(Mode::S2)
    } else if body == ID_SNAPPY {
        Ok(Mode::Snappy)
    } else {
        Err(S2Error::BadIdentifier { offset: at })
    }
}

/// Decodes a data chunk body (checksum ‖ payload) starting at stream offset `at` (the chunk
/// header) and appends the bytes to `out`. At most `budget` bytes may be appended.
/// On error `out` is left unchanged.
pub(crate) fn data_chunk(
    mode: Mode,
    kind: Kind,
    body: &[u8],
    at: u64,
    out: &mut Vec<u8>,
    budget: u64,
) -> Result<(), S2Error> {
    let (Some(crc), Some(payload)) = (body.get(..CRC_SIZE), body.get(CRC_SIZE..)) else {
        return Err(S2Error::Corrupt {
            offset: at,
            what: "data chunk is shorter than its 4-byte checksum",
        });
    };
    let stored = le(crc) as u32;
    let payload_at = at + (CHUNK_HEADER + CRC_SIZE) as u64;
    let start = out.len();
    if kind == Kind::Compressed {
        let limit = (mode.limit() as u64).min(budget) as usize;
        decode_block_at(payload, payload_at, out, limit)?;
    } else {
        if payload.len() as u64 > budget {
            return Err(S2Error::TooLarge {
                offset: at,
                declared: payload.len() as u64,
                limit: budget,
            });
        }
        out.extend_from_slice(payload);
    }
    let computed = masked_crc(out.get(start..).unwrap_or(&[]));
    if computed != stored {
        out.truncate(start);
        return Err(S2Error::Checksum {
            offset: at,
            stored,
            computed,
        });
    }
    Ok(())
}

/// Returns true if `prefix` starts with a framed-stream identifier chunk
/// (`ff 06 00 00` followed by `S2sTwO` or `sNaPpY`).
pub fn is_framed(prefix: &[u8]) -> bool {
    match (prefix.get(..4), prefix.get(4..10)) {
        (Some(h), Some(id)) => h == [0xff, 6, 0, 0] && (id == ID_S2 || id == ID_SNAPPY),
        _ => false,
    }
}

/// Decodes a whole framed stream held in memory. Same rules as [`FrameReader`].
pub fn decode_stream(src: &[u8]) -> Result<Vec<u8>, S2Error> {
    let mut out = Vec::new();
    decode_stream_into(src, &mut out, u64::MAX)?;
    Ok(out)
}

/// Like [`decode_stream`], but fails with [`S2Error::TooLarge`] as soon as the output would
/// exceed `max_out` bytes (a guard against decompression bombs).
pub fn decode_stream_limited(src: &[u8], max_out: u64) -> Result<Vec<u8>, S2Error> {
    let mut out = Vec::new();
    decode_stream_into(src, &mut out, max_out)?;
    Ok(out)
}

/// Appends the decoded stream to `out`; the stream's output may be at most `max_out` bytes.
fn decode_stream_into(src: &[u8], out: &mut Vec<u8>, max_out: u64) -> Result<(), S2Error> {
    let start_len = out.len();
    // Reserve the declared output once (bounded, so a hostile header cannot force a huge
    // allocation); growth beyond that still works.
    let cap = (src.len() as u64)
        .saturating_mul(32)
        .saturating_add(MAX_BLOCK as u64);
    out.reserve(declared_output(src).min(max_out).min(cap) as usize);
    let end = src.len() as u64;
    let mut mode: Option<Mode> = None;
    let mut pos = 0usize;
    while pos < src.len() {
        let at = pos as u64;
        let Some(h) = src.get(pos..pos + CHUNK_HEADER) else {
            return Err(S2Error::Truncated {
                offset: at,
                end,
                what: "chunk header",
            });
        };
        let kind_byte = h.first().copied().unwrap_or(0);
        let len = le(h.get(1..4).unwrap_or(&[]));
        let kind = classify(mode, kind_byte, len, at)?;
        let body_start = pos + CHUNK_HEADER;
        let Some(body) = src.get(body_start..body_start + len) else {
            return Err(S2Error::Truncated {
                offset: at,
                end,
                what: "chunk",
            });
        };
        match kind {
            Kind::Identifier => mode = Some(identifier(body, at)?),
            Kind::Skip => {}
            Kind::Compressed | Kind::Uncompressed => {
                let m = mode.unwrap_or(Mode::S2);
                let used = (out.len() - start_len) as u64;
                data_chunk(m, kind, body, at, out, max_out.saturating_sub(used))?;
            }
        }
        pos = body_start + len;
    }
    Ok(())
}

/// Sum of the decoded sizes the data chunks of a framed stream declare (a hint only; nothing
/// is validated here).
fn declared_output(src: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut pos = 0usize;
    while let Some(&[kind, l0, l1, l2]) = src.get(pos..).and_then(|r| r.first_chunk::<4>()) {
        let len = le(&[l0, l1, l2]);
        match kind {
            0x00 => {
                let body = src.get(pos + CHUNK_HEADER + CRC_SIZE..).unwrap_or(&[]);
                if let Ok((v, _)) = block_len(body, 0) {
                    total = total.saturating_add(v.min(MAX_BLOCK as u64));
                }
            }
            0x01 => total = total.saturating_add(len.saturating_sub(CRC_SIZE) as u64),
            _ => {}
        }
        pos += CHUNK_HEADER + len;
    }
    total
}

/// Streaming decoder of the S2/Snappy framing format. It never recurses and holds at most one
/// decoded chunk (≤ 4 MiB) plus one compressed chunk in memory.
///
/// Format errors are returned from `read` as `io::Error` of kind `InvalidData` wrapping an
/// [`S2Error`] (get it back with `err.get_ref()` + `downcast_ref::<S2Error>()`). Errors are
/// sticky: once a read failed, every later read fails the same way.
pub struct FrameReader<R: Read> {
    inner: R,
    /// Decoded bytes of the current chunk; `pos` = how many were handed out.
    out: Vec<u8>,
    pos: usize,
    /// Compressed body of the current chunk.
    scratch: Vec<u8>,
    offset: u64,
    chunks: u64,
    mode: Option<Mode>,
    failed: Option<Failure>,
    eof: bool,
}

/// Error from reading one chunk: a format error, or an error of the underlying reader.
#[derive(Debug)]
enum ChunkErr {
    Format(S2Error),
    Io(io::Error),
}

/// A remembered (sticky) failure.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    Format(S2Error),
    Io(io::ErrorKind, String),
}

impl Failure {
    pub(crate) fn to_io(&self) -> io::Error {
        match self {
            Failure::Format(e) => io::Error::new(io::ErrorKind::InvalidData, e.clone()),
            Failure::Io(kind, msg) => io::Error::new(*kind, msg.clone()),
        }
    }
}

impl<R: Read> FrameReader<R> {
    pub fn new(r: R) -> Self {
        FrameReader {
            inner: r,
            out: Vec::new(),
            pos: 0,
            scratch: Vec::new(),
            offset: 0,
            chunks: 0,
            mode: None,
            failed: None,
            eof: false,
        }
    }

    /// Bytes consumed from the underlying reader so far.
    pub fn compressed_offset(&self) -> u64 {
        self.offset
    }

    /// Number of complete chunks (of any type) consumed so far.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// The most recent stream identifier: `"S2sTwO"` or `"sNaPpY"`, or `None` before the first.
    pub fn identifier_seen(&self) -> Option<&'static str> {
        self.mode.map(Mode::name)
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads into `buf` until it is full or the input ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            let Some(rest) = buf.get_mut(got..) else {
                break;
            };
            match self.inner.read(rest) {
                Ok(0) => break,
                Ok(k) => {
                    got += k;
                    self.offset += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Loads the next data chunk into `out`. Returns `Ok(false)` at a clean end of stream.
    fn next_chunk(&mut self) -> Result<bool, ChunkErr> {
        let io_fail = ChunkErr::Io;
        loop {
            let at = self.offset;
            let mut h = [0u8; CHUNK_HEADER];
            let got = self.fill(&mut h).map_err(io_fail)?;
            if got == 0 {
                return Ok(false);
            }
            if got < CHUNK_HEADER {
                return Err(ChunkErr::Format(S2Error::Truncated {
                    offset: at,
                    end: self.offset,
                    what: "chunk header",
                }));
            }
            let [kind_byte, l0, l1, l2] = h;
            let len = le(&[l0, l1, l2]);
            let kind = classify(self.mode, kind_byte, len, at).map_err(ChunkErr::Format)?;
            if kind == Kind::Skip {
                let want = len as u64;
                let mut limited = (&mut self.inner).take(want);
                let skipped = io::copy(&mut limited, &mut io::sink()).map_err(io_fail)?;
                self.offset += skipped;
                if skipped < want {
                    return Err(ChunkErr::Format(S2Error::Truncated {
                        offset: at,
                        end: self.offset,
                        what: "chunk",
                    }));
                }
                self.chunks += 1;
                continue;
            }
            let mut body = std::mem::take(&mut self.scratch);
            body.clear();
            body.resize(len, 0);
            let got = self.fill(&mut body);
            let result = match got {
                Err(e) => Err(io_fail(e)),
                Ok(g) if g < len => Err(ChunkErr::Format(S2Error::Truncated {
                    offset: at,
                    end: self.offset,
                    what: "chunk",
                })),
                Ok(_) => match kind {
                    Kind::Identifier => identifier(&body, at)
                        .map(|m| self.mode = Some(m))
                        .map_err(ChunkErr::Format),
                    _ => {
                        self.out.clear();
                        self.pos = 0;
                        let m = self.mode.unwrap_or(Mode::S2);
                        data_chunk(m, kind, &body, at, &mut self.out, u64::MAX)
                            .map_err(ChunkErr::Format)
                    }
                },
            };
            self.scratch = body;
            result?;
            self.chunks += 1;
            if kind != Kind::Identifier && !self.out.is_empty() {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for FrameReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(avail) = self.out.get(self.pos..) {
                if !avail.is_empty() {
                    let n = avail.len().min(buf.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    self.pos += n;
                    return Ok(n);
                }
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if let Some(f) = &self.failed {
                return Err(f.to_io());
            }
            if self.eof {
                return Ok(0);
            }
            match self.next_chunk() {
                Ok(true) => {}
                Ok(false) => {
                    self.eof = true;
                    return Ok(0);
                }
                Err(ChunkErr::Format(e)) => {
                    self.failed = Some(Failure::Format(e.clone()));
                    return Err(e.into());
                }
                Err(ChunkErr::Io(e)) => {
                    self.failed = Some(Failure::Io(e.kind(), e.to_string()));
                    return Err(e);
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// On-disk compressed message blocks
// ------------------------------------------------------------------------------------------------

/// True if `buf` starts like an on-disk compressed block: `"cmp"` and at least 5 bytes
/// (the server treats anything else as a plain block).
pub fn is_cmp_block(buf: &[u8]) -> bool {
    buf.len() >= 5 && buf.starts_with(CMP_MAGIC)
}

/// Decompresses an on-disk `cmp` block: `"cmp"` ‖ alg (1 = S2) ‖ uvarint original size ‖
/// S2 stream of `original[..len-8]` ‖ raw last 8 bytes. Checks the algorithm and that the
/// result has exactly the declared original size. Error offsets are offsets in `buf`.
pub fn decompress_cmp_block(buf: &[u8]) -> Result<Vec<u8>, S2Error> {
    if !is_cmp_block(buf) {
        return Err(S2Error::BadCmpHeader {
            offset: 0,
            what: "missing \"cmp\" prefix",
        });
    }
    let mut c = Cursor::new(buf);
    let _ = c.take(3);
    let alg = c.u8().map_err(|_| S2Error::BadCmpHeader {
        offset: 3,
        what: "missing algorithm byte",
    })?;
    if alg != CMP_ALG_S2 {
        return Err(S2Error::UnsupportedAlgorithm { offset: 3, alg });
    }
    let orig = c.uvarint().map_err(|e| match e {
        ParseError::Eof { .. } => S2Error::BadCmpHeader {
            offset: 4,
            what: "original size varint is incomplete",
        },
        _ => S2Error::BadCmpHeader {
            offset: 4,
            what: "original size varint is malformed",
        },
    })?;
    let hdr = c.pos();
    if orig < CMP_TAIL as u64 {
        return Err(S2Error::BadCmpHeader {
            offset: 4,
            what: "original size is smaller than the 8-byte checksum tail",
        });
    }
    let Some(stream_end) = buf.len().checked_sub(CMP_TAIL).filter(|&e| e >= hdr) else {
        return Err(S2Error::Truncated {
            offset: hdr as u64,
            end: buf.len() as u64,
            what: "compressed block (header plus 8-byte checksum tail)",
        });
    };
    let (Some(stream), Some(tail)) = (buf.get(hdr..stream_end), buf.get(stream_end..)) else {
        return Err(S2Error::BadCmpHeader {
            offset: hdr as u64,
            what: "internal: block split",
        });
    };
    let mut out = Vec::with_capacity(orig.min(MAX_RAW_BLOCK as u64) as usize);
    decode_stream_into(stream, &mut out, orig - CMP_TAIL as u64)
        .map_err(|e| e.shifted(hdr as u64))?;
    out.extend_from_slice(tail);
    if out.len() as u64 != orig {
        return Err(S2Error::SizeMismatch {
            offset: stream_end as u64,
            expected: orig,
            actual: out.len() as u64,
        });
    }
    Ok(out)
}

/// Builds an on-disk `cmp` block from a plain block (inverse of [`decompress_cmp_block`]).
/// The body is Snappy-framed (the server's S2 reader accepts it). A block shorter than its
/// 8-byte checksum tail cannot be represented and is returned unchanged (i.e. stored plain).
pub fn compress_cmp_block(plain: &[u8]) -> Vec<u8> {
    let Some(split) = plain.len().checked_sub(CMP_TAIL) else {
        return plain.to_vec();
    };
    let (body, tail) = plain.split_at(split);
    let mut out = Vec::with_capacity(16 + body.len() / 2);
    out.extend_from_slice(CMP_MAGIC);
    out.push(CMP_ALG_S2);
    crate::bytes::put_uvarint(&mut out, plain.len() as u64);
    let mut enc = snap::write::FrameEncoder::new(out);
    let written = enc
        .write_all(body)
        .and_then(|()| enc.into_inner().map_err(|e| e.into_error()));
    match written {
        Ok(mut out) => {
            out.extend_from_slice(tail);
            out
        }
        // Writing into a Vec cannot fail; should it ever, a plain block is still valid on disk.
        Err(_) => plain.to_vec(),
    }
}

/// Framed writer for backups (`stream.tar.s2` payloads). Writes Snappy framing (`sNaPpY`
/// identifier, ≤ 64 KiB chunks, masked CRC-32C), which nats-server's S2 reader accepts.
pub struct FrameWriter<W: Write> {
    enc: snap::write::FrameEncoder<W>,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(w: W) -> Self {
        FrameWriter {
            enc: snap::write::FrameEncoder::new(w),
        }
    }

    /// Flushes all pending data and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        self.enc.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enc.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/samples/");

    /// All regular files of a sample tarball, by path.
    fn tarball(name: &str) -> BTreeMap<String, Vec<u8>> {
        let f = std::fs::File::open(format!("{SAMPLES}{name}")).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut m = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.header().entry_type().is_file() {
                let p = e.path().unwrap().to_string_lossy().into_owned();
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                m.insert(p, v);
            }
        }
        m
    }

    fn snapshots() -> BTreeMap<String, Vec<u8>> {
        tarball("snapshots.tar.gz")
    }

    use crate::testdata::Rng;

    /// Text-like data: words from a small vocabulary, so it compresses but not trivially.
    fn wordy(rng: &mut Rng, n: usize) -> Vec<u8> {
        const W: [&str; 12] = [
            "orders",
            "payload",
            "NATS",
            "stream",
            "message ",
            "lorem",
            "ipsum",
            "dolor",
            "\n",
            "{\"seq\":",
            "}",
            " ",
        ];
        let mut v = Vec::with_capacity(n + 16);
        while v.len() < n {
            v.extend_from_slice(W[rng.below(W.len())].as_bytes());
            if rng.below(8) == 0 {
                v.extend_from_slice(&(rng.next() as u16).to_string().into_bytes());
            }
        }
        v.truncate(n);
        v
    }

    fn read_all<R: Read>(r: R, piece: usize) -> Result<Vec<u8>, S2Error> {
        let mut fr = FrameReader::new(r);
        let mut out = Vec::new();
        let mut buf = vec![0u8; piece];
        loop {
            match fr.read(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                    let inner = e
                        .get_ref()
                        .and_then(|x| x.downcast_ref::<S2Error>())
                        .expect("S2Error inside");
                    return Err(inner.clone());
                }
            }
        }
    }

    /// Chunk start offsets of a well-formed stream, plus its end.
    fn boundaries(s: &[u8]) -> Vec<usize> {
        let mut b = vec![0];
        let mut p = 0;
        while p < s.len() {
            p += 4 + le(&s[p + 1..p + 4]);
            b.push(p);
        }
        assert_eq!(p, s.len());
        b
    }

    fn snap_frame(data: &[u8]) -> Vec<u8> {
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(data).unwrap();
        w.into_inner().unwrap()
    }

    fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
        let l = body.len() as u32;
        let mut v = vec![kind, l as u8, (l >> 8) as u8, (l >> 16) as u8];
        v.extend_from_slice(body);
        v
    }

    fn data_chunk_bytes(kind: u8, plain: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut b = masked_crc(plain).to_le_bytes().to_vec();
        b.extend_from_slice(payload);
        chunk(kind, &b)
    }

    fn s2_stream(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut v = chunk(0xff, ID_S2);
        for p in parts {
            v.extend_from_slice(p);
        }
        v
    }

    fn block_with(len: u64, tags: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        crate::bytes::put_uvarint(&mut b, len);
        b.extend_from_slice(tags);
        b
    }

    // --------------------------------------------------------------------------------------------
    // Real server output
    // --------------------------------------------------------------------------------------------

    #[test]
    fn real_snapshots_decode() {
        let snaps = snapshots();
        let v2 = &snaps["snapshots/ORDERS-v2.15.1-V2.natsarc.s2"];
        assert!(is_framed(v2));
        let out = decode_stream(v2).unwrap();
        assert!(out.starts_with(b"NATSARC1"));
        // First archive entry: state.json with the ORDERS numbers (8 msgs, 582 bytes, first 1, last 10).
        let mut c = Cursor::new(&out[8..]);
        let name_len = c.uvarint().unwrap() as usize;
        let _ts = c.varint().unwrap();
        let _seq = c.uvarint().unwrap();
        let hdr = c.uvarint().unwrap() as usize;
        let payload = c.uvarint().unwrap() as usize;
        assert_eq!(c.take(name_len).unwrap(), b"state.json");
        let body = c.take(payload).unwrap();
        assert_eq!(hdr, 0);
        let st: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(st["messages"], 8);
        assert_eq!(st["bytes"], 582);
        assert_eq!(st["first_seq"], 1);
        assert_eq!(st["last_seq"], 10);
        // The archive ends with the all-zero sentinel entry.
        assert!(out.ends_with(&[0, 0, 0, 0, 0]));

        // The streaming reader agrees, whatever the read size.
        for piece in [1, 7, 4096] {
            assert_eq!(read_all(&v2[..], piece).unwrap(), out);
        }
        let mut fr = FrameReader::new(&v2[..]);
        assert_eq!(fr.identifier_seen(), None);
        let mut all = Vec::new();
        fr.read_to_end(&mut all).unwrap();
        assert_eq!(fr.identifier_seen(), Some("S2sTwO"));
        assert_eq!(fr.compressed_offset(), v2.len() as u64);
        assert_eq!(fr.chunks(), boundaries(v2).len() as u64 - 1);

        for (name, want) in [
            (
                "snapshots/ORDERS-v2.14.5-V1.tar.s2",
                &[
                    "meta.inf",
                    "meta.sum",
                    "msgs/1.blk",
                    "msgs/index.db",
                    "obs/C1/meta.inf",
                    "obs/C1/meta.sum",
                    "obs/C1/o.dat",
                    "obs/C2/meta.inf",
                    "obs/C2/meta.sum",
                    "obs/C2/o.dat",
                ][..],
            ),
            (
                "snapshots/ORDERS-v2.9.10-V1.tar.s2",
                &[
                    "meta.inf",
                    "meta.sum",
                    "msgs/1.blk",
                    "msgs/1.idx",
                    "msgs/1.fss",
                    "obs/C1/meta.inf",
                    "obs/C1/meta.sum",
                    "obs/C1/o.dat",
                    "obs/C2/meta.inf",
                    "obs/C2/meta.sum",
                    "obs/C2/o.dat",
                ][..],
            ),
        ] {
            let s = &snaps[name];
            assert!(is_framed(s), "{name}");
            let tar_bytes = decode_stream(s).unwrap();
            assert_eq!(read_all(&s[..], 100).unwrap(), tar_bytes);
            let mut names = Vec::new();
            let mut ar = tar::Archive::new(&tar_bytes[..]);
            for e in ar.entries().unwrap() {
                let e = e.unwrap();
                names.push(e.path().unwrap().to_string_lossy().into_owned());
            }
            eprintln!("{name}: {} bytes, {names:?}", tar_bytes.len());
            let mut sorted = names.clone();
            sorted.sort();
            let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            want_sorted.sort();
            assert_eq!(sorted, want_sorted, "{name}");
            assert_eq!(&names[..2], &["meta.inf", "meta.sum"], "{name}");
        }
    }

    #[test]
    fn real_cmp_blocks() {
        let files = tarball("v2.15.1-s2.tar.gz");
        let dir = "v2.15.1-s2/store/jetstream/$G/streams/CMP/msgs/";
        for i in 1..=3u64 {
            let raw = &files[&format!("{dir}{i}.blk")];
            assert!(is_cmp_block(raw));
            let plain = decompress_cmp_block(raw).unwrap();
            assert_eq!(plain.len(), 31131);
            assert_eq!(plain[plain.len() - 8..], raw[raw.len() - 8..]);
            // Walk the records and check every HighwayHash: 30 records, seqs 30(i-1)+1 ..= 30 i.
            let key = crate::hash::key_for(&format!("CMP-{i}"));
            let mut p = 0usize;
            let mut seqs = Vec::new();
            while p < plain.len() {
                let rl = u32::from_le_bytes(plain[p..p + 4].try_into().unwrap());
                let has_hdr = rl & 0x8000_0000 != 0;
                let rl = (rl & 0x7fff_ffff) as usize;
                assert!(
                    (22 + 8..=1100).contains(&rl),
                    "plausible record length {rl}"
                );
                let r = &plain[p..p + rl];
                let seq = u64::from_le_bytes(r[4..12].try_into().unwrap());
                let slen = u16::from_le_bytes(r[20..22].try_into().unwrap()) as usize;
                let subj = &r[22..22 + slen];
                let mut q = 22 + slen;
                let hdr: &[u8] = if has_hdr {
                    let hl = u32::from_le_bytes(r[q..q + 4].try_into().unwrap()) as usize;
                    q += 4;
                    q += hl;
                    &r[q - hl..q]
                } else {
                    &[]
                };
                let msg = &r[q..rl - 8];
                let h = crate::hash::hh64(&key, &[&r[4..12], &r[12..20], subj, hdr, msg]);
                assert_eq!(h.to_le_bytes(), r[rl - 8..], "record hash of seq {seq}");
                seqs.push(seq);
                p += rl;
            }
            assert_eq!(seqs, ((i - 1) * 30 + 1..=i * 30).collect::<Vec<_>>());
            // Round trip through our own writer.
            let re = compress_cmp_block(&plain);
            assert!(is_cmp_block(&re));
            assert_eq!(decompress_cmp_block(&re).unwrap(), plain);
        }
        // Block 4 is the active block and is stored plain.
        assert!(!is_cmp_block(&files[&format!("{dir}4.blk")]));
    }

    // --------------------------------------------------------------------------------------------
    // Round trips
    // --------------------------------------------------------------------------------------------

    #[test]
    fn round_trips_with_snap_and_own_writers() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut inputs: Vec<Vec<u8>> =
            vec![Vec::new(), vec![7], b"hello hello hello hello".to_vec()];
        for n in [100, 65_535, 65_536, 65_537, 300_000, 5 << 20] {
            inputs.push(rng.bytes(n));
            inputs.push(wordy(&mut rng, n));
            inputs.push(vec![b'a'; n]);
        }
        for data in &inputs {
            let framed = snap_frame(data);
            assert_eq!(&decode_stream(&framed).unwrap(), data);
            assert_eq!(&read_all(&framed[..], 65_536).unwrap(), data);

            let mut w = FrameWriter::new(Vec::new());
            w.write_all(data).unwrap();
            let ours = w.finish().unwrap();
            assert_eq!(&decode_stream(&ours).unwrap(), data);

            let block = snap::raw::Encoder::new().compress_vec(data).unwrap();
            let mut out = vec![1, 2, 3];
            decode_block(&block, &mut out).unwrap();
            assert_eq!(&out[3..], &data[..]);

            if data.len() >= 8 {
                let cmp = compress_cmp_block(data);
                assert!(is_cmp_block(&cmp));
                assert_eq!(&decompress_cmp_block(&cmp).unwrap(), data);
            } else {
                assert_eq!(&compress_cmp_block(data), data);
            }
        }
    }

    /// Builds a random valid S2 block using every tag form, and the expected output.
    fn random_s2_block(rng: &mut Rng, target: usize) -> (Vec<u8>, Vec<u8>) {
        let mut want: Vec<u8> = Vec::new();
        let mut tags = Vec::new();
        let mut last = 0usize;
        while want.len() < target {
            let choice = if want.is_empty() { 0 } else { rng.below(6) };
            if choice == 0 {
                let len = match rng.below(4) {
                    0 => 1 + rng.below(60),
                    1 => 61 + rng.below(195),
                    2 => 257 + rng.below(3000),
                    _ => 1 + rng.below(20),
                };
                let lit = if rng.below(2) == 0 {
                    rng.bytes(len)
                } else {
                    wordy(rng, len)
                };
                let x = len - 1;
                if x < 60 {
                    tags.push((x as u8) << 2);
                } else if x < 256 {
                    tags.extend_from_slice(&[60 << 2, x as u8]);
                } else if x < 65536 {
                    tags.extend_from_slice(&[61 << 2, x as u8, (x >> 8) as u8]);
                } else {
                    tags.extend_from_slice(&[62 << 2, x as u8, (x >> 8) as u8, (x >> 16) as u8]);
                }
                tags.extend_from_slice(&lit);
                want.extend_from_slice(&lit);
                continue;
            }
            let repeat = choice == 5 && last != 0;
            let (off, len) = if repeat {
                let len = match rng.below(4) {
                    0 => 4 + rng.below(5),
                    1 => 8 + rng.below(256),
                    2 => 260 + rng.below(5000),
                    _ => 65540 + rng.below(70000),
                };
                (last, len)
            } else {
                let max_off = want.len().min(if choice == 1 {
                    2047
                } else if choice == 2 {
                    65535
                } else {
                    usize::MAX
                });
                let off = 1 + if rng.below(3) == 0 {
                    rng.below(max_off.min(16))
                } else {
                    rng.below(max_off)
                };
                let len = if choice == 1 {
                    4 + rng.below(8)
                } else {
                    1 + rng.below(64)
                };
                (off, len)
            };
            if repeat {
                let l = len - 4;
                if l <= 4 {
                    tags.extend_from_slice(&[1 | ((l as u8) << 2), 0]);
                } else if len - 8 < 256 {
                    tags.extend_from_slice(&[1 | (5 << 2), 0, (len - 8) as u8]);
                } else if len - 260 < 65536 {
                    let v = len - 260;
                    tags.extend_from_slice(&[1 | (6 << 2), 0, v as u8, (v >> 8) as u8]);
                } else {
                    let v = len - 65540;
                    tags.extend_from_slice(&[
                        1 | (7 << 2),
                        0,
                        v as u8,
                        (v >> 8) as u8,
                        (v >> 16) as u8,
                    ]);
                }
            } else if choice == 1 {
                tags.extend_from_slice(&[
                    1 | (((len - 4) as u8) << 2) | (((off >> 8) as u8) << 5),
                    off as u8,
                ]);
            } else if choice == 2 {
                tags.extend_from_slice(&[
                    2 | (((len - 1) as u8) << 2),
                    off as u8,
                    (off >> 8) as u8,
                ]);
            } else {
                let o = (off as u32).to_le_bytes();
                tags.extend_from_slice(&[3 | (((len - 1) as u8) << 2), o[0], o[1], o[2], o[3]]);
            }
            for _ in 0..len {
                let b = want[want.len() - off];
                want.push(b);
            }
            last = off;
        }
        let mut block = Vec::new();
        crate::bytes::put_uvarint(&mut block, want.len() as u64);
        block.extend_from_slice(&tags);
        (block, want)
    }

    #[test]
    fn s2_only_features_against_naive_reference() {
        let mut rng = Rng(12345);
        for round in 0..300 {
            let target = if round % 50 == 0 {
                3 << 20
            } else {
                1 + rng.below(20_000)
            };
            let (block, want) = random_s2_block(&mut rng, target);
            let mut out = Vec::new();
            decode_block(&block, &mut out).unwrap();
            assert!(out == want, "round {round}");
            // The same block inside an S2 stream, and refused inside a Snappy stream if > 64 KiB.
            let s = s2_stream(&[data_chunk_bytes(0, &want, &block)]);
            assert!(decode_stream(&s).unwrap() == want);
            if want.len() <= MAX_BLOCK {
                let mut sn = chunk(0xff, ID_SNAPPY);
                sn.extend_from_slice(&data_chunk_bytes(0, &want, &block));
                let r = decode_stream(&sn);
                if want.len() > MAX_SNAPPY_BLOCK {
                    assert!(
                        matches!(r, Err(S2Error::TooLarge { offset: 18, .. })),
                        "{r:?}"
                    );
                } else {
                    assert!(r.unwrap() == want);
                }
            }
        }
    }

    #[test]
    fn concatenated_streams_switch_mode() {
        let a = snap_frame(&[1u8; 70_000]);
        let big = vec![9u8; 100_000];
        let b = s2_stream(&[data_chunk_bytes(1, &big, &big)]);
        let mut both = b.clone();
        both.extend_from_slice(&a);
        let mut want = big.clone();
        want.extend_from_slice(&[1u8; 70_000]);
        assert_eq!(decode_stream(&both).unwrap(), want);
        let mut fr = FrameReader::new(&both[..]);
        let mut v = Vec::new();
        fr.read_to_end(&mut v).unwrap();
        assert_eq!(v, want);
        assert_eq!(fr.identifier_seen(), Some("sNaPpY"));
        // After switching to sNaPpY, a 100 000-byte chunk is refused.
        let mut bad = a.clone();
        let at = bad.len() as u64;
        bad.extend_from_slice(&data_chunk_bytes(1, &big, &big));
        assert_eq!(
            decode_stream(&bad),
            Err(S2Error::TooLarge {
                offset: at,
                declared: 100_000,
                limit: 65_536
            })
        );
    }

    // --------------------------------------------------------------------------------------------
    // Hostile inputs
    // --------------------------------------------------------------------------------------------

    #[test]
    fn truncation_at_every_position() {
        let snaps = snapshots();
        let mut rng = Rng(7);
        let mut big = snap_frame(&wordy(&mut rng, 200_000));
        // Add padding, a skippable index-like chunk and an uncompressed chunk to the mix.
        big.extend_from_slice(&chunk(0xfe, &[0; 5]));
        big.extend_from_slice(&chunk(0x99, b"s2idx\0...\0xdi2s"));
        big.extend_from_slice(&data_chunk_bytes(1, b"tail", b"tail"));
        let streams = [snaps["snapshots/ORDERS-v2.15.1-V2.natsarc.s2"].clone(), big];
        for s in &streams {
            let full = decode_stream(s).unwrap();
            let bounds = boundaries(s);
            // Every position of the real stream; near every boundary and a sample elsewhere
            // for the big one (a full scan is quadratic).
            let cuts: Vec<usize> = if s.len() < 4096 {
                (0..s.len()).collect()
            } else {
                (0..s.len())
                    .filter(|c| c % 61 == 0 || bounds.iter().any(|b| b.abs_diff(*c) < 24))
                    .collect()
            };
            for cut in cuts {
                let r = decode_stream(&s[..cut]);
                let streamed = read_all(&s[..cut], 1000);
                if bounds.contains(&cut) {
                    let out = r.unwrap();
                    assert!(full.starts_with(&out));
                    assert_eq!(streamed.unwrap(), out);
                } else {
                    let e = r.unwrap_err();
                    assert!(matches!(e, S2Error::Truncated { .. }), "cut {cut}: {e}");
                    assert_eq!(
                        e.offset(),
                        *bounds.iter().filter(|&&b| b < cut).max().unwrap() as u64
                    );
                    assert_eq!(streamed.unwrap_err(), e);
                }
            }
        }
    }

    #[test]
    fn flipped_bytes_are_detected_with_offsets() {
        let snaps = snapshots();
        let s = &snaps["snapshots/ORDERS-v2.15.1-V2.natsarc.s2"];
        let full = decode_stream(s).unwrap();
        let bounds = boundaries(s);
        let mut checksum_errors = 0;
        for w in bounds.windows(2) {
            let (start, end) = (w[0], w[1]);
            if s[start] > 0x01 {
                continue; // identifier / skippable
            }
            for pos in start + 4..end {
                for bit in 0..8 {
                    let mut m = s.clone();
                    m[pos] ^= 1 << bit;
                    match decode_stream(&m) {
                        Ok(out) => assert_eq!(out, full, "silent change at {pos}"),
                        Err(e) => {
                            let off = e.offset() as usize;
                            assert!((start..=end).contains(&off), "pos {pos}: {e}");
                            if pos < start + 8 {
                                assert_eq!(
                                    e,
                                    S2Error::Checksum {
                                        offset: start as u64,
                                        stored: le(&m[start + 4..start + 8]) as u32,
                                        computed: masked_crc(&full),
                                    }
                                );
                            }
                            if matches!(e, S2Error::Checksum { .. }) {
                                checksum_errors += 1;
                                assert_eq!(off, start);
                            }
                            assert_eq!(read_all(&m[..], 333).unwrap_err(), e);
                        }
                    }
                }
            }
        }
        assert!(checksum_errors > 32);
        assert!(decode_stream(&{
            let mut m = s.clone();
            m[22] ^= 0x40;
            m
        })
        .unwrap_err()
        .to_string()
        .contains("CRC-32C"));
    }

    #[test]
    fn huge_declared_lengths() {
        // Standalone block: 4 GiB - 1 declared, nothing allocated.
        let b = block_with(u32::MAX as u64, &[0]);
        let mut out = vec![5];
        assert_eq!(
            decode_block(&b, &mut out),
            Err(S2Error::TooLarge {
                offset: 0,
                declared: u32::MAX as u64,
                limit: MAX_RAW_BLOCK as u64
            })
        );
        assert_eq!(out, vec![5]);
        // More than 32 bits, malformed and incomplete varints.
        let b = block_with(1 << 32, &[]);
        assert!(matches!(
            decode_block(&b, &mut out),
            Err(S2Error::Corrupt { offset: 0, .. })
        ));
        assert!(matches!(
            decode_block(&[0x80, 0x80], &mut out),
            Err(S2Error::Corrupt { offset: 0, .. })
        ));
        assert!(matches!(
            decode_block(&[0xff; 11], &mut out),
            Err(S2Error::Corrupt { offset: 0, .. })
        ));
        assert!(matches!(
            decode_block(&[], &mut out),
            Err(S2Error::Corrupt { offset: 0, .. })
        ));
        // Empty block.
        decode_block(&[0], &mut out).unwrap();
        assert_eq!(out, vec![5]);

        // In a stream: a compressed chunk declaring 4 MiB + 1.
        let blk = block_with(MAX_BLOCK as u64 + 1, &[0, 0]);
        let s = s2_stream(&[data_chunk_bytes(0, &[], &blk)]);
        assert_eq!(
            decode_stream(&s),
            Err(S2Error::TooLarge {
                offset: 18,
                declared: MAX_BLOCK as u64 + 1,
                limit: MAX_BLOCK as u64
            })
        );
        // An uncompressed chunk header announcing 16 MiB is refused before its body is read.
        let mut s = s2_stream(&[]);
        s.extend_from_slice(&[0x01, 0xff, 0xff, 0xff]);
        assert_eq!(
            decode_stream(&s),
            Err(S2Error::TooLarge {
                offset: 10,
                declared: 0xff_ffff - 4,
                limit: MAX_BLOCK as u64
            })
        );
        assert_eq!(read_all(&s[..], 10), decode_stream(&s));
        let mut s = s2_stream(&[]);
        s.extend_from_slice(&[0x00, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decode_stream(&s),
            Err(S2Error::TooLarge { offset: 10, .. })
        ));
        // Exactly 4 MiB uncompressed is fine.
        let big = vec![3u8; MAX_BLOCK];
        let s = s2_stream(&[data_chunk_bytes(1, &big, &big)]);
        assert_eq!(decode_stream(&s).unwrap().len(), MAX_BLOCK);
        // Data chunks shorter than their checksum.
        let s = s2_stream(&[chunk(0, &[1, 2, 3])]);
        assert!(matches!(
            decode_stream(&s),
            Err(S2Error::Corrupt { offset: 10, .. })
        ));
        // A limited decode stops decompression bombs.
        let v = (MAX_BLOCK - 5 - 65540) as u32;
        let bomb = block_with(
            MAX_BLOCK as u64,
            &[
                0,
                0,
                1,
                1,
                1 | (7 << 2),
                0,
                v as u8,
                (v >> 8) as u8,
                (v >> 16) as u8,
            ],
        );
        let want = vec![0u8; MAX_BLOCK];
        let s = s2_stream(&[
            data_chunk_bytes(0, &want, &bomb),
            data_chunk_bytes(0, &want, &bomb),
        ]);
        assert_eq!(decode_stream(&s).unwrap().len(), 2 * MAX_BLOCK);
        assert!(matches!(
            decode_stream_limited(&s, MAX_BLOCK as u64 + 10),
            Err(S2Error::TooLarge { .. })
        ));
    }

    #[test]
    fn block_level_corruption() {
        let mut out = Vec::new();
        // Repeat before any copy: literal "abcd" then a repeat tag at offset 6.
        let b = block_with(12, &[3 << 2, b'a', b'b', b'c', b'd', 1 | (4 << 2), 0]);
        assert_eq!(
            decode_block(&b, &mut out),
            Err(S2Error::Corrupt {
                offset: 6,
                what: "repeat code before any copy"
            })
        );
        assert!(out.is_empty());
        // Copy offsets beyond the output so far (copy-1, copy-2, copy-4).
        for tags in [
            vec![3 << 2, b'a', b'b', b'c', b'd', 1, 5],
            vec![3 << 2, b'a', b'b', b'c', b'd', 2 | (3 << 2), 5, 0],
            vec![3 << 2, b'a', b'b', b'c', b'd', 3 | (3 << 2), 0, 0, 1, 0],
        ] {
            let b = block_with(8, &tags);
            assert_eq!(
                decode_block(&b, &mut out),
                Err(S2Error::Corrupt {
                    offset: 6,
                    what: "copy offset points before the start of the block"
                })
            );
        }
        // Copy-2 with offset 0.
        let b = block_with(8, &[3 << 2, b'a', b'b', b'c', b'd', 2 | (3 << 2), 0, 0]);
        assert_eq!(
            decode_block(&b, &mut out),
            Err(S2Error::Corrupt {
                offset: 6,
                what: "copy with offset 0"
            })
        );
        // Output longer than declared, by a literal and by a copy.
        let b = block_with(3, &[3 << 2, b'a', b'b', b'c', b'd']);
        assert!(matches!(
            decode_block(&b, &mut out),
            Err(S2Error::Corrupt { offset: 1, .. })
        ));
        let b = block_with(7, &[3 << 2, b'a', b'b', b'c', b'd', 1, 4]);
        assert!(matches!(
            decode_block(&b, &mut out),
            Err(S2Error::Corrupt { offset: 6, .. })
        ));
        // Output shorter than declared.
        let b = block_with(9, &[3 << 2, b'a', b'b', b'c', b'd', 1, 4]);
        assert_eq!(
            decode_block(&b, &mut out),
            Err(S2Error::SizeMismatch {
                offset: 8,
                expected: 9,
                actual: 8
            })
        );
        // Literal running past the end of the input; incomplete tags.
        let b = block_with(10, &[9 << 2, b'a']);
        assert!(matches!(
            decode_block(&b, &mut out),
            Err(S2Error::Corrupt { offset: 1, .. })
        ));
        for tags in [&[61 << 2, 1][..], &[1][..], &[2, 1][..], &[3, 1, 2, 3][..]] {
            let b = block_with(10, tags);
            assert!(
                matches!(
                    decode_block(&b, &mut out),
                    Err(S2Error::Corrupt { offset: 1, .. })
                ),
                "{tags:?}"
            );
        }
        // Repeat with each extended length form after a valid copy.
        let b = block_with(
            4 + 4 + 8 + 300,
            &[
                3 << 2,
                b'a',
                b'b',
                b'c',
                b'd',
                1,
                4,
                1 | (5 << 2),
                0,
                0,
                1 | (6 << 2),
                0,
                40,
                0,
            ],
        );
        decode_block(&b, &mut out).unwrap();
        assert_eq!(out.len(), 316);
        assert!(out.chunks(4).all(|c| c == b"abcd"));
        assert!(out.iter().all(|&c| c != 0));
        // Errors do not leave partial output behind.
        let before = out.clone();
        let b = block_with(9, &[3 << 2, b'a', b'b', b'c', b'd', 1, 4]);
        assert!(decode_block(&b, &mut out).is_err());
        assert_eq!(out, before);
        // Offsets inside a stream point into the stream.
        let bad = block_with(12, &[3 << 2, b'a', b'b', b'c', b'd', 1 | (4 << 2), 0]);
        let s = s2_stream(&[data_chunk_bytes(0, b"x", &bad)]);
        assert_eq!(
            decode_stream(&s),
            Err(S2Error::Corrupt {
                offset: 18 + 6,
                what: "repeat code before any copy"
            })
        );
    }

    #[test]
    fn many_padding_chunks_do_not_recurse() {
        let mut s = s2_stream(&[]);
        for i in 0..200_000u32 {
            if i % 2 == 0 {
                s.extend_from_slice(&[0xfe, 0, 0, 0]);
            } else {
                s.extend_from_slice(&[0x80 + (i % 0x7e) as u8, 1, 0, 0, 0]);
            }
        }
        s.extend_from_slice(&data_chunk_bytes(1, b"end", b"end"));
        // Run on a small stack to prove the reader is iterative.
        let handle = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                assert_eq!(decode_stream(&s).unwrap(), b"end");
                let mut fr = FrameReader::new(&s[..]);
                let mut v = Vec::new();
                fr.read_to_end(&mut v).unwrap();
                assert_eq!(v, b"end");
                assert_eq!(fr.chunks(), 200_002);
                // Empty data chunks in a row are also iterated, not recursed.
                let mut e = s2_stream(&[]);
                for _ in 0..200_000 {
                    e.extend_from_slice(&data_chunk_bytes(1, b"", b""));
                }
                assert_eq!(read_all(&e[..], 10).unwrap(), b"");
            })
            .unwrap();
        handle.join().unwrap();
    }

    #[test]
    fn chunk_types_and_identifiers() {
        for kind in 0x02..=0x7fu8 {
            let s = s2_stream(&[chunk(kind, &[])]);
            assert_eq!(
                decode_stream(&s),
                Err(S2Error::ReservedChunk { offset: 10, kind })
            );
            assert_eq!(
                read_all(&s[..], 4),
                Err(S2Error::ReservedChunk { offset: 10, kind })
            );
        }
        for kind in 0x80..=0xfeu8 {
            let s = s2_stream(&[chunk(kind, &[1, 2, 3]), data_chunk_bytes(1, b"ok", b"ok")]);
            assert_eq!(decode_stream(&s).unwrap(), b"ok");
        }
        // Missing identifier: a data chunk, padding, or garbage first.
        let d = data_chunk_bytes(1, b"ok", b"ok");
        assert_eq!(
            decode_stream(&d),
            Err(S2Error::MissingIdentifier { offset: 0, kind: 1 })
        );
        assert_eq!(
            read_all(&d[..], 8),
            Err(S2Error::MissingIdentifier { offset: 0, kind: 1 })
        );
        assert_eq!(
            decode_stream(&chunk(0xfe, &[])),
            Err(S2Error::MissingIdentifier {
                offset: 0,
                kind: 0xfe
            })
        );
        assert!(!is_framed(&d));
        assert!(!is_framed(b"\xff\x06\x00\x00S2sTw"));
        assert!(is_framed(b"\xff\x06\x00\x00sNaPpY"));
        // Bad identifiers: wrong length, wrong body, also mid-stream.
        assert_eq!(
            decode_stream(&chunk(0xff, b"S2sTwOx")),
            Err(S2Error::BadIdentifier { offset: 0 })
        );
        assert_eq!(
            decode_stream(&chunk(0xff, b"S2sTwo")),
            Err(S2Error::BadIdentifier { offset: 0 })
        );
        let s = s2_stream(&[d.clone(), chunk(0xff, b"garbag")]);
        assert_eq!(
            decode_stream(&s),
            Err(S2Error::BadIdentifier {
                offset: 10 + d.len() as u64
            })
        );
        assert_eq!(
            read_all(&s[..], 1),
            Err(S2Error::BadIdentifier {
                offset: 10 + d.len() as u64
            })
        );
        // Empty input is a clean, empty stream; an identifier alone too.
        assert_eq!(decode_stream(&[]).unwrap(), b"");
        assert_eq!(read_all(&[][..], 1).unwrap(), b"");
        assert_eq!(decode_stream(&s2_stream(&[])).unwrap(), b"");
        // Partial chunk headers at the end are errors.
        for tail in 1..4 {
            let mut s = s2_stream(std::slice::from_ref(&d));
            s.extend_from_slice(&[0xfe, 0, 0][..tail]);
            let want = S2Error::Truncated {
                offset: 10 + d.len() as u64,
                end: s.len() as u64,
                what: "chunk header",
            };
            assert_eq!(decode_stream(&s), Err(want.clone()));
            assert_eq!(read_all(&s[..], 1), Err(want));
        }
        // Errors are sticky and Display is a sentence with the offset.
        let mut fr = FrameReader::new(&d[..]);
        let mut b = [0u8; 4];
        let e1 = fr.read(&mut b).unwrap_err();
        let e2 = fr.read(&mut b).unwrap_err();
        assert_eq!(e1.to_string(), e2.to_string());
        assert_eq!(
            e1.to_string(),
            "S2 stream does not start with a stream identifier: chunk type 0x01 at offset 0"
        );
        let inner = e2.get_ref().unwrap().downcast_ref::<S2Error>().unwrap();
        assert_eq!(inner.offset(), 0);
        // Underlying I/O errors pass through with their kind.
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "boom"))
            }
        }
        let mut fr = FrameReader::new(Broken);
        assert_eq!(
            fr.read(&mut b).unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(
            fr.read(&mut b).unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        let _inner: Broken = fr.into_inner();
    }

    #[test]
    fn cmp_block_errors() {
        let plain: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let good = compress_cmp_block(&plain);
        assert_eq!(decompress_cmp_block(&good).unwrap(), plain);
        assert!(!is_cmp_block(b"cmp\x01"));
        assert!(!is_cmp_block(b"xmp\x01\x05abc"));
        assert!(matches!(
            decompress_cmp_block(b"hello world"),
            Err(S2Error::BadCmpHeader { offset: 0, .. })
        ));
        for alg in [0u8, 2, 255] {
            let mut m = good.clone();
            m[3] = alg;
            assert_eq!(
                decompress_cmp_block(&m),
                Err(S2Error::UnsupportedAlgorithm { offset: 3, alg })
            );
        }
        // Declared size off by one in either direction.
        let mut hdr = b"cmp\x01".to_vec();
        crate::bytes::put_uvarint(&mut hdr, plain.len() as u64);
        let hl = hdr.len();
        for delta in [-1i64, 1] {
            let mut m = b"cmp\x01".to_vec();
            crate::bytes::put_uvarint(&mut m, (plain.len() as i64 + delta) as u64);
            assert_eq!(m.len(), hl);
            m.extend_from_slice(&good[hl..]);
            let e = decompress_cmp_block(&m).unwrap_err();
            if delta > 0 {
                assert_eq!(
                    e,
                    S2Error::SizeMismatch {
                        offset: (good.len() - 8) as u64,
                        expected: plain.len() as u64 + 1,
                        actual: plain.len() as u64
                    }
                );
            } else {
                assert!(matches!(e, S2Error::TooLarge { .. }), "{e}");
                assert!(e.offset() > hl as u64);
            }
        }
        // Too short for header + tail; incomplete size varint; size below 8.
        assert!(matches!(
            decompress_cmp_block(&good[..hl + 7]),
            Err(S2Error::Truncated { .. })
        ));
        assert!(matches!(
            decompress_cmp_block(b"cmp\x01\x80"),
            Err(S2Error::BadCmpHeader { offset: 4, .. })
        ));
        assert!(matches!(
            decompress_cmp_block(b"cmp\x01\x07abcdefgh"),
            Err(S2Error::BadCmpHeader { offset: 4, .. })
        ));
        // A flipped byte inside the stream part reports an offset inside buf.
        let mut m = good.clone();
        let p = hl + 20;
        m[p] ^= 0x10;
        let e = decompress_cmp_block(&m).unwrap_err();
        assert!(
            e.offset() >= hl as u64 && e.offset() < (good.len() - 8) as u64,
            "{e}"
        );
        // Smallest block: exactly the 8-byte tail, empty stream.
        let tiny = compress_cmp_block(b"12345678");
        assert_eq!(decompress_cmp_block(&tiny).unwrap(), b"12345678");
    }

    #[test]
    fn fuzz_mutations_never_panic() {
        let snaps = snapshots();
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let mut seeds = vec![
            snaps["snapshots/ORDERS-v2.15.1-V2.natsarc.s2"].clone(),
            snaps["snapshots/ORDERS-v2.14.5-V1.tar.s2"].clone(),
        ];
        let (blk, _) = random_s2_block(&mut rng, 3000);
        seeds.push(blk);
        let cmp = tarball("v2.15.1-s2.tar.gz")
            ["v2.15.1-s2/store/jetstream/$G/streams/CMP/msgs/2.blk"]
            .clone();
        seeds.push(cmp);
        let mut ok = 0;
        for i in 0..20_000 {
            let mut m = seeds[i % seeds.len()].clone();
            for _ in 0..1 + rng.below(4) {
                if m.is_empty() {
                    break;
                }
                let p = rng.below(m.len());
                match rng.below(7) {
                    0 => m[p] ^= 1 << rng.below(8),
                    1 => m[p] = rng.next() as u8,
                    2 => m.truncate(p),
                    3 => {
                        m.remove(p);
                    }
                    4 => m.insert(p, rng.next() as u8),
                    5 => {
                        let q = (p + 1 + rng.below(64)).min(m.len());
                        let dup = m[p..q].to_vec();
                        m.splice(p..p, dup);
                    }
                    _ => m[p] = [0x00, 0x01, 0xff, 0xfe, 0x80, 0x7f][rng.below(6)],
                }
            }
            let a = decode_stream(&m);
            let b = read_all(&m[..], 1 + rng.below(5000));
            assert_eq!(a, b, "mutation {i}");
            let mut out = Vec::new();
            let _ = decode_block(&m, &mut out);
            let _ = decompress_cmp_block(&m);
            if let Err(e) = &a {
                assert!(e.offset() <= m.len() as u64, "{e}");
                assert!(!e.to_string().is_empty());
            } else {
                ok += 1;
            }
        }
        eprintln!("fuzz: {ok} of 20000 mutations still decoded");
    }

    /// Throughput report; run with `cargo test --release -- --ignored --nocapture s2_throughput`.
    #[test]
    #[ignore]
    fn s2_throughput() {
        use std::time::Instant;
        let mut rng = Rng(42);
        let mb = |bytes: usize, secs: f64| bytes as f64 / secs / 1e6;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "text-like (snap block)",
                snap::raw::Encoder::new()
                    .compress_vec(&wordy(&mut rng, 4 << 20))
                    .unwrap(),
            ),
            (
                "random (literals)",
                snap::raw::Encoder::new()
                    .compress_vec(&rng.bytes(4 << 20))
                    .unwrap(),
            ),
            ("s2 mix incl. repeats", random_s2_block(&mut rng, 4 << 20).0),
        ];
        // JetStream-like: records of a small header, a subject and a 200..1000-byte JSON/lorem payload.
        let mut recs = Vec::new();
        let mut seq = 0u64;
        while recs.len() < 4 << 20 {
            seq += 1;
            recs.extend_from_slice(&(seq * 977).to_le_bytes());
            recs.extend_from_slice(&rng.next().to_le_bytes());
            recs.extend_from_slice(format!("orders.{}.new", seq % 17).as_bytes());
            recs.extend_from_slice(
                format!(
                    "{{\"id\":{seq},\"customer\":\"c{}\",\"amount\":{},\"note\":\"",
                    rng.below(5000),
                    rng.below(100000)
                )
                .as_bytes(),
            );
            let n = 200 + rng.below(800);
            recs.extend_from_slice(&b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. ".repeat(13)[..n]);
            recs.extend_from_slice(b"\"}");
            recs.extend_from_slice(&rng.next().to_le_bytes());
        }
        let cases: Vec<(&str, Vec<u8>)> = cases
            .into_iter()
            .chain([(
                "jetstream-like records (snap block)",
                snap::raw::Encoder::new().compress_vec(&recs).unwrap(),
            )])
            .collect();
        for (name, block) in &cases {
            let t = Instant::now();
            let mut total = 0;
            for _ in 0..50 {
                total += snap::raw::Decoder::new()
                    .decompress_vec(block)
                    .map(|v| v.len())
                    .unwrap_or(0);
            }
            eprintln!(
                "  (snap::raw::Decoder on {name}: {:.0} MB/s)",
                mb(total, t.elapsed().as_secs_f64())
            );
            let mut out = Vec::with_capacity(4 << 20);
            let mut total = 0;
            let t = Instant::now();
            for _ in 0..50 {
                out.clear();
                decode_block(block, &mut out).unwrap();
                total += out.len();
            }
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "decode_block {name}: {} -> {} bytes, {:.0} MB/s",
                block.len(),
                out.len(),
                mb(total, secs)
            );
        }
        // Real-world path: framed stream of 1 MiB chunks with CRC, via decode_stream and FrameReader.
        let data = wordy(&mut rng, 64 << 20);
        let mut framed = s2_stream(&[]);
        for c in data.chunks(1 << 20) {
            let blk = snap::raw::Encoder::new().compress_vec(c).unwrap();
            framed.extend_from_slice(&data_chunk_bytes(0, c, &blk));
        }
        let t = Instant::now();
        let out = decode_stream(&framed).unwrap();
        eprintln!(
            "decode_stream 64 MiB text-like: {:.0} MB/s",
            mb(out.len(), t.elapsed().as_secs_f64())
        );
        let t = Instant::now();
        let mut fr = FrameReader::new(&framed[..]);
        let n = io::copy(&mut fr, &mut io::sink()).unwrap();
        eprintln!(
            "FrameReader 64 MiB text-like: {:.0} MB/s",
            mb(n as usize, t.elapsed().as_secs_f64())
        );
        assert_eq!(n as usize, data.len());
    }
}
