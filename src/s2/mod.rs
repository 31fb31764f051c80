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
pub mod encode;
pub(crate) mod par;

#[cfg(test)]
use std::io::Write;
use std::io::{self, Read};

use thiserror::Error;

use crate::base::bytes::{Cursor, ParseError};

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

/// An S2 decoding failure. `offset` is always a byte offset in the compressed input that was
/// given to the failing function (for [`FrameReader`], in the whole stream read so far).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
// The variant fields (offsets in the input, sizes, what was expected) are named in each
// variant's doc and error message.
#[allow(missing_docs)]
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

    pub(crate) fn shifted(self, by: u64) -> Self {
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
pub(crate) fn block_len(src: &[u8], base: u64) -> Result<(u64, usize), S2Error> {
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
/// The block's declared decoded length may be at most [`MAX_RAW_BLOCK`]; that many bytes are
/// reserved, and the block must produce exactly that many. On error `dst` is left unchanged.
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
    // The slack only when it fits in what is already reserved: growing `dst` for it would
    // reallocate (and copy) a buffer its caller sized exactly. Without it the fast loop stops
    // 64 bytes before the end and the careful loop does the rest.
    let slack = if dst.capacity() - start >= dlen + SLACK {
        SLACK
    } else {
        0
    };
    dst.resize(start + dlen + slack, 0);
    let res = match dst.get_mut(start..) {
        Some(out) => decode_body(body, base + hdr as u64, out, dlen),
        None => Err(corrupt(0, base, "internal: output window")),
    };
    dst.truncate(if res.is_err() { start } else { start + dlen });
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

/// Bytes past the declared output that [`decode_body`] may overwrite: its fast loop writes
/// whole 16-byte moves (at most 64 bytes from the write position) without checking how much
/// of them the tag needs.
pub(crate) const SLACK: usize = 64;

/// Bytes of input the fast loop needs in front of it: the longest tag it decodes in place
/// (a 1-byte literal tag and 60 literal bytes, read as four 16-byte moves).
const IN_WIN: usize = 65;

/// Decodes the tag stream `src` into exactly `n` bytes at the start of `out`, which may be
/// longer: bytes `n..` are scratch (the fast loop writes whole 16-byte moves up to [`SLACK`]
/// bytes past its position and relies on later tags, or the caller, to ignore them).
/// `base` is the offset of `src[0]`.
///
/// Two loops: while at least [`IN_WIN`] input bytes and 64 output bytes are left, a fast loop
/// that takes each tag from a fixed window (one bounds check for the input, one for the
/// output) and does literals of up to 60 bytes and copies of up to 64 bytes at offsets of at
/// least 16 as fixed 16-byte moves; anything else, and the tail, go through the careful loop,
/// which checks every access.
fn decode_body(src: &[u8], base: u64, out: &mut [u8], n: usize) -> Result<(), S2Error> {
    let n = n.min(out.len());
    let mut at = Pos {
        s: 0,
        d: 0,
        last_off: 0,
    };
    loop {
        at = fast_loop(src, base, out, n, at)?;
        // A tag the fast loop does not take, or the last bytes: one careful step.
        match decode_careful(src, base, out.get_mut(..n).unwrap_or(&mut []), at, true)? {
            Some(next) => at = next,
            None => return Ok(()),
        }
    }
}

/// Per tag byte, what the fast loop needs without looking at the tag's type: bits 0..8 the
/// length (a literal's up to 60; longer ones are [`T_SLOW`]), bits 8..16 how far the tag
/// moves the input (a literal's bytes included), bits 16..19 the high offset bits of a
/// copy-1 (already `<< 8` when used), and two flags.
const TAGS: [u32; 256] = tag_table();
/// The tag always goes to the careful loop (a literal of more than 60 bytes).
const T_SLOW: u32 = 1 << 20;
/// A copy-1 whose length field is 5..7: if its offset byte is 0 it is a repeat with extra
/// length bytes, which the careful loop decodes.
const T_LONG_REPEAT: u32 = 1 << 21;
/// Offset bits after the tag byte, per tag type (literal: none).
const OFF_MASK: [u64; 4] = [0, 0xff, 0xffff, 0xffff_ffff];

const fn tag_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let tag = i as u32;
        t[i] = match tag & 3 {
            0 => {
                let len = (tag >> 2) + 1;
                if len > 60 {
                    T_SLOW
                } else {
                    len | ((1 + len) << 8)
                }
            }
            1 => {
                let l = (tag >> 2) & 7;
                let long = if l >= 5 { T_LONG_REPEAT } else { 0 };
                (l + 4) | (2 << 8) | ((tag >> 5) << 16) | long
            }
            2 => ((tag >> 2) + 1) | (3 << 8),
            _ => ((tag >> 2) + 1) | (5 << 8),
        };
        i += 1;
    }
    t
}

/// Moves 16 bytes from `src[from..]` to `out[to..]` (nothing if either is out of range; the
/// callers' window checks make that impossible).
#[inline(always)]
fn put16(out: &mut [u8], to: usize, src: &[u8], from: usize) {
    if let (Some(o), Some(i)) = (
        out.get_mut(to..).and_then(|r| r.first_chunk_mut::<16>()),
        src.get(from..).and_then(|r| r.first_chunk::<16>()),
    ) {
        *o = *i;
    }
}

/// The fast loop of [`decode_body`]: returns where it stopped (at a tag it does not take, or
/// too close to the end of the input or output).
///
/// No branch on the tag's type: every tag first moves 32 bytes of the input after the tag
/// to the output (the literal, if it is one), then 32 bytes of the output from `d - off` to
/// `d` (a copy; for a literal `off` is 0, which moves the literal onto itself). A copy at an
/// offset of at least 16 reads only output before its own 16-byte move, so the literal bytes
/// the first move wrote there are overwritten with the right ones. Lengths above 32 take a
/// second round of both moves; offsets below 16, long literals, long repeats and anything
/// invalid go to the careful loop.
#[inline(always)]
fn fast_loop(src: &[u8], base: u64, out: &mut [u8], n: usize, at: Pos) -> Result<Pos, S2Error> {
    let _ = base;
    let Pos {
        mut s,
        mut d,
        mut last_off,
    } = at;
    while let Some(win) = src.get(s..).and_then(|r| r.first_chunk::<IN_WIN>()) {
        // Room for the widest move of this loop (64 bytes). The moves go through `o`, which
        // ends 64 bytes past `d`: the compiler drops some of their bounds checks (a one-core
        // decode of BENCH's blocks took 7 % less time with this and the 32-bit load below).
        let Some(o) = d.checked_add(64).and_then(|e| out.get_mut(..e)) else {
            break;
        };
        let tag = win[0];
        // the offset bytes after the tag (at most four): one 32-bit load
        let w = u64::from(u32::from_le_bytes([win[1], win[2], win[3], win[4]]));
        let e = TAGS[usize::from(tag)];
        let kind = usize::from(tag & 3);
        let len = (e & 0xff) as usize;
        let adv = ((e >> 8) & 0xff) as usize;
        let raw = ((w & OFF_MASK[kind]) as usize) | (((e >> 16) & 7) as usize) << 8;
        // All of this is computed without branches (bit operations on bools, selects).
        let copy = kind != 0;
        let repeat = (kind == 1) & (raw == 0);
        let off = if repeat { last_off } else { raw }; // 0 for a literal
                                                       // Careful loop: a long literal or repeat, an offset below 16 or beyond the output
                                                       // written so far (0 included), more output than declared.
        let bad_copy = copy & (off.wrapping_sub(16) > d.wrapping_sub(16));
        let bad = (e & T_SLOW != 0)
            | (repeat & (e & T_LONG_REPEAT != 0))
            | bad_copy
            | (d < 16)
            | (len > n - d);
        if bad {
            break;
        }
        last_off = if copy { off } else { last_off };
        // off <= d (checked above); 0 for a literal. The `min` changes nothing but tells the
        // compiler so, which drops more bounds checks (1 % of the decode).
        let from = d.wrapping_sub(off).min(d);
        put16(o, d, win, 1);
        put16(o, d + 16, win, 17);
        move_within::<16>(o, from, d);
        move_within::<16>(o, from + 16, d + 16);
        if len > 32 {
            put16(o, d + 32, win, 33);
            put16(o, d + 48, win, 49);
            move_within::<16>(o, from + 32, d + 32);
            move_within::<16>(o, from + 48, d + 48);
        }
        s += adv;
        d += len;
    }
    Ok(Pos { s, d, last_off })
}

/// Where decoding stands: read position in the input, write position in the output, the
/// repeat offset (0 = none yet).
#[derive(Clone, Copy)]
struct Pos {
    s: usize,
    d: usize,
    last_off: usize,
}

/// The careful loop of [`decode_body`]: decodes the tags of `src` from `at.s` on into
/// `out[at.d..]`, exactly up to `out.len()`, checking every access. With `one`, it returns
/// after one tag with the new position (`None`: the input ended, and the output is complete).
///
/// Each tag is parsed from an 8-byte little-endian window (zero-padded near the end of `src`),
/// so the common case needs one bounds check per tag. Short literals and copies are done as
/// fixed 16-byte moves when there is room; the extra bytes land in not-yet-written output and
/// are overwritten later (the output must end exactly at `out.len()` anyway).
fn decode_careful(
    src: &[u8],
    base: u64,
    out: &mut [u8],
    at: Pos,
    one: bool,
) -> Result<Option<Pos>, S2Error> {
    let Pos {
        mut s,
        mut d,
        mut last_off,
    } = at;
    let n = out.len();
    let mut first = true;
    while let Some(rest) = src.get(s..) {
        let Some(&tag) = rest.first() else { break };
        if one && !first {
            return Ok(Some(Pos { s, d, last_off }));
        }
        first = false;
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
    Ok(None)
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

/// An output buffer whose bytes past `end` are kept initialized between uses, so decoding
/// into it again zero-fills nothing (`Vec::resize` would, for every chunk): `buf[..end]` is
/// the content, the rest is scratch.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) buf: Vec<u8>,
    pub(crate) end: usize,
}

impl Scratch {
    /// The content.
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(..self.end).unwrap_or(&[])
    }
    /// `n` writable bytes right after the content (grown, zero-filled, only when too short).
    fn room(&mut self, n: usize) -> &mut [u8] {
        let want = self.end + n;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        self.buf.get_mut(self.end..want).unwrap_or(&mut [])
    }
}

/// [`data_chunk`] appending to a [`Scratch`]. On error the content is left unchanged.
pub(crate) fn data_chunk_into(
    mode: Mode,
    kind: Kind,
    body: &[u8],
    at: u64,
    out: &mut Scratch,
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
    let n = if kind == Kind::Compressed {
        let limit = (mode.limit() as u64).min(budget) as usize;
        let (declared, hdr) = block_len(payload, payload_at)?;
        if declared > limit as u64 {
            return Err(S2Error::TooLarge {
                offset: payload_at,
                declared,
                limit: limit as u64,
            });
        }
        let dlen = declared as usize;
        let tags = payload.get(hdr..).unwrap_or(&[]);
        decode_body(tags, payload_at + hdr as u64, out.room(dlen + SLACK), dlen)?;
        dlen
    } else {
        if payload.len() as u64 > budget {
            return Err(S2Error::TooLarge {
                offset: at,
                declared: payload.len() as u64,
                limit: budget,
            });
        }
        out.room(payload.len()).copy_from_slice(payload);
        payload.len()
    };
    let computed = masked_crc(out.buf.get(out.end..out.end + n).unwrap_or(&[]));
    if computed != stored {
        return Err(S2Error::Checksum {
            offset: at,
            stored,
            computed,
        });
    }
    out.end += n;
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

/// Decodes the framed stream `r` on `workers` threads, as verify reads a backup's
/// `stream.tar.s2`, and consumes the output as it comes (through the reader's own buffers,
/// copying nothing out): the decoded length. The floor of a backup's verify, for the
/// benchmark (`bench/floors.rs`).
pub fn decode_parallel_discarding<R: Read + Send + 'static>(
    r: R,
    workers: usize,
) -> io::Result<u64> {
    use std::io::BufRead as _;
    let mut pr = par::ParFrameReader::new(r, workers);
    let mut n = 0u64;
    loop {
        let k = pr.fill_buf()?.len();
        if k == 0 {
            return Ok(n);
        }
        pr.consume(k);
        n += k as u64;
    }
}

/// Decodes the framed stream `r` on `workers` threads with the parallel reader verify reads a
/// backup's `stream.tar.s2` through: a reader of the decoded bytes. For the benchmark's floors
/// (`bench/floors.rs`: a V1 backup's tar walked and its blocks hashed).
pub fn decode_parallel<R: Read + Send + 'static>(r: R, workers: usize) -> impl io::BufRead {
    par::ParFrameReader::new(r, workers)
}

/// Decodes a whole framed stream held in memory. Same rules as [`FrameReader`].
pub fn decode_stream(src: &[u8]) -> Result<Vec<u8>, S2Error> {
    let mut out = Vec::new();
    decode_stream_into(src, &mut out, u64::MAX, false)?;
    Ok(out)
}

/// Like [`decode_stream`], but fails with [`S2Error::TooLarge`] as soon as the output would
/// exceed `max_out` bytes (a guard against decompression bombs).
pub fn decode_stream_limited(src: &[u8], max_out: u64) -> Result<Vec<u8>, S2Error> {
    let mut out = Vec::new();
    decode_stream_into(src, &mut out, max_out, false)?;
    Ok(out)
}

/// Appends the decoded stream to `out`; the stream's output may be at most `max_out` bytes.
/// With `seekable`, a skippable chunk whose body runs past the end of `src` ends the stream
/// cleanly, as for nats-server reading a compressed block (see [`FrameReader::as_seekable`]).
pub(crate) fn decode_stream_into(
    src: &[u8],
    out: &mut Vec<u8>,
    max_out: u64,
    seekable: bool,
) -> Result<(), S2Error> {
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
            if seekable && kind == Kind::Skip {
                return Ok(());
            }
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
    out: Scratch,
    pos: usize,
    /// Compressed body of the current chunk.
    scratch: Vec<u8>,
    offset: u64,
    chunks: u64,
    mode: Option<Mode>,
    failed: Option<Failure>,
    eof: bool,
    /// See [`FrameReader::as_seekable`].
    seekable: bool,
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
    /// A strict reader of the framed stream `r`.
    pub fn new(r: R) -> Self {
        FrameReader {
            inner: r,
            out: Scratch::default(),
            pos: 0,
            scratch: Vec::new(),
            offset: 0,
            chunks: 0,
            mode: None,
            failed: None,
            eof: false,
            seekable: false,
        }
    }

    /// Reads the stream as nats-server reads a compressed block's bytes: through a Go
    /// `bytes.Reader`, on which the S2 reader (klauspost/compress `Reader.skippable`) skips a
    /// skippable chunk (0x80-0xfe) by seeking past it. Seeking past the end of the bytes
    /// succeeds, and the next chunk header then meets a clean end of input: a skippable chunk
    /// whose body runs past the end ends the stream without an error (a strict reader calls
    /// it truncated). Every other rule is the same.
    pub fn as_seekable(mut self) -> Self {
        self.seekable = true;
        self
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

    /// The underlying reader.
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
                if skipped < want && self.seekable {
                    // seeked past the end: the next header read finds none
                    return Ok(false);
                }
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
            // The body buffer keeps its bytes between chunks: zero-filling it for every chunk
            // (`clear` then `resize`) was 3% of a decode. Only `body[..len]` is this chunk's.
            let mut whole = std::mem::take(&mut self.scratch);
            if whole.len() < len {
                whole.resize(len, 0);
            }
            let body = whole.get_mut(..len).unwrap_or(&mut []);
            let got = self.fill(body);
            let result = match got {
                Err(e) => Err(io_fail(e)),
                Ok(g) if g < len => Err(ChunkErr::Format(S2Error::Truncated {
                    offset: at,
                    end: self.offset,
                    what: "chunk",
                })),
                Ok(_) => match kind {
                    Kind::Identifier => identifier(body, at)
                        .map(|m| self.mode = Some(m))
                        .map_err(ChunkErr::Format),
                    _ => {
                        self.out.end = 0;
                        self.pos = 0;
                        let m = self.mode.unwrap_or(Mode::S2);
                        data_chunk_into(m, kind, body, at, &mut self.out, u64::MAX)
                            .map_err(ChunkErr::Format)
                    }
                },
            };
            self.scratch = whole;
            result?;
            self.chunks += 1;
            if kind != Kind::Identifier && self.out.end > 0 {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for FrameReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(avail) = self.out.data().get(self.pos..) {
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

/// The decoded bytes of the current chunk are read in place.
impl<R: Read> io::BufRead for FrameReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.out.end {
            if let Some(f) = &self.failed {
                return Err(f.to_io());
            }
            if !self.eof {
                match self.next_chunk() {
                    Ok(true) => {}
                    Ok(false) => self.eof = true,
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
        Ok(self.out.data().get(self.pos..).unwrap_or(&[]))
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.out.end);
    }
}

#[cfg(test)]
/// Test helper: a framed writer for backups (`stream.tar.s2` payloads). Writes Snappy framing (`sNaPpY`
/// identifier, ≤ 64 KiB chunks, masked CRC-32C), which nats-server's S2 reader accepts.
pub struct FrameWriter<W: Write> {
    enc: snap::write::FrameEncoder<W>,
}

#[cfg(test)]
impl<W: Write> FrameWriter<W> {
    /// A Snappy-framed writer into `w` (the `snap` crate's encoder).
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

#[cfg(test)]
impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enc.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

/// The S2 decoding error inside an `io::Error` from [`FrameReader`], if that is what it is.
pub fn s2_error_of(e: &io::Error) -> Option<&S2Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<S2Error>())
}

/// Offset in the *compressed* file where an S2 decoding error was found.
pub fn compressed_offset_of(e: &io::Error) -> Option<u64> {
    s2_error_of(e).map(|s| s.offset())
}

#[cfg(test)]
mod tests;
