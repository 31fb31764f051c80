//! Fast S2 compression: a greedy LZ77 block encoder and framed writers.
//!
//! * [`Encoder`] / [`encode_block`]: the S2 block format (Snappy tags plus S2 repeat codes and
//!   offsets beyond 64 KiB). One hash table of 2^13 positions over 6-byte windows, three
//!   candidate positions per probe, a repeat-offset probe, and a probe stride that grows with
//!   the length of the current literal run, so incompressible input costs little.
//! * [`compress_stream`]: a whole S2 stream (`S2sTwO` identifier, 1 MiB chunks) on this thread.
//! * [`ParFrameWriter`]: the same stream as an `io::Write`, with chunks compressed on worker
//!   threads and written in order by a writer thread. The bytes depend only on the input (chunk
//!   boundaries are every [`CHUNK`] bytes of input), never on thread timing.
//!
//! The output decodes with [`crate::s2::decode_block`] / [`crate::s2::FrameReader`] and with
//! the Go S2 reader nats-server uses (the restore API and the block loader).
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::base::bytes::put_uvarint;
use crate::s2::masked_crc;

/// Uncompressed bytes per framed chunk (the S2 format allows up to 4 MiB).
pub const CHUNK: usize = 1 << 20;

/// 2^13 positions (32 KiB): the table stays in L1, which pays more than a bigger table's
/// extra matches on message data.
const TABLE_BITS: u32 = 13;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
/// No match search starts in the last `MARGIN` bytes (8-byte loads stay inside the input).
const MARGIN: usize = 16;
/// The probe stride is `4 + literal run / 2^SKIP_SHIFT`. 4 (was 5): on the bench data (half
/// random payloads) the match search costs 17% fewer cycles, for 1.4% more output.
const SKIP_SHIFT: u32 = 4;
/// Inputs shorter than this are stored as one literal.
const MIN_INPUT: usize = 32;
/// Output room past the size cap, so that fixed-size stores never need a second check.
const SLACK: usize = 80;
/// Odd 64-bit multiplier for the window hash.
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

const STREAM_IDENTIFIER: &[u8; 10] = b"\xff\x06\x00\x00S2sTwO";
const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;

/// Hash of the low 6 bytes of `x`, in `0..TABLE_SIZE`.
#[inline(always)]
fn hash6(x: u64) -> usize {
    ((x << 16).wrapping_mul(HASH_MUL) >> (64 - TABLE_BITS)) as usize
}

#[inline(always)]
fn load64(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..)
        .and_then(|r| r.first_chunk::<8>())
        .map(|a| u64::from_le_bytes(*a))
}

#[inline(always)]
fn load32(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..)
        .and_then(|r| r.first_chunk::<4>())
        .map(|a| u32::from_le_bytes(*a))
}

/// Length of the common run of `src[a..]` and `src[b..]` (`b < a`), up to the end of `src`.
#[inline(always)]
fn common_len(src: &[u8], a: usize, b: usize) -> usize {
    let mut l = 0usize;
    while let (Some(x), Some(y)) = (load64(src, a + l), load64(src, b + l)) {
        let diff = x ^ y;
        if diff != 0 {
            return l + (diff.trailing_zeros() / 8) as usize;
        }
        l += 8;
    }
    while let (Some(x), Some(y)) = (src.get(a + l), src.get(b + l)) {
        if x != y {
            break;
        }
        l += 1;
    }
    l
}

/// Stores the low `k` (<= 8) bytes of `v` at `out[d..]`; returns the new position.
#[inline(always)]
fn put(out: &mut [u8], d: usize, v: u64, k: usize) -> Option<usize> {
    if let Some(o) = out.get_mut(d..).and_then(|r| r.first_chunk_mut::<8>()) {
        *o = v.to_le_bytes();
    } else {
        let bytes = v.to_le_bytes();
        out.get_mut(d..d + k)?.copy_from_slice(bytes.get(..k)?);
    }
    Some(d + k)
}

/// Emits `src[start..end]` (non-empty) as one literal.
#[inline(always)]
fn emit_literal(out: &mut [u8], d: usize, src: &[u8], start: usize, end: usize) -> Option<usize> {
    let n = end - start;
    let m = n - 1;
    if n <= 16 {
        // One tag byte and a fixed 16-byte move; the extra bytes are overwritten later.
        if let (Some(o), Some(i)) = (
            out.get_mut(d..).and_then(|r| r.first_chunk_mut::<17>()),
            src.get(start..).and_then(|r| r.first_chunk::<16>()),
        ) {
            let (tag, rest) = o.split_at_mut(1);
            if let Some(t) = tag.first_mut() {
                *t = (m << 2) as u8;
            }
            rest.copy_from_slice(i);
            return Some(d + 1 + n);
        }
    }
    if n <= 64 {
        // One tag byte and 16-byte moves (the last one may run past the literal).
        if let (Some(o), Some(i)) = (out.get_mut(d..d + 2 + 64), src.get(start..start + 64)) {
            let hdr = if m < 60 {
                if let Some(t) = o.first_mut() {
                    *t = (m << 2) as u8;
                }
                1
            } else {
                if let Some(t) = o.get_mut(..2) {
                    t.copy_from_slice(&[60 << 2, m as u8]);
                }
                2
            };
            let mut k = 0;
            while k < n {
                if let (Some(a), Some(b)) = (o.get_mut(hdr + k..hdr + k + 16), i.get(k..k + 16)) {
                    a.copy_from_slice(b);
                }
                k += 16;
            }
            return Some(d + hdr + n);
        }
    }
    let d = if m < 60 {
        put(out, d, (m << 2) as u64, 1)?
    } else if m < 1 << 8 {
        put(out, d, (60 << 2) | ((m as u64) << 8), 2)?
    } else if m < 1 << 16 {
        put(out, d, (61 << 2) | ((m as u64) << 8), 3)?
    } else if m < 1 << 24 {
        put(out, d, (62 << 2) | ((m as u64) << 8), 4)?
    } else {
        put(out, d, (63 << 2) | ((m as u64) << 8), 5)?
    };
    out.get_mut(d..d + n)?.copy_from_slice(src.get(start..end)?);
    Some(d + n)
}

/// An S2 repeat code (copy with the previous offset) for `len >= 4` bytes.
#[inline(always)]
fn emit_repeat(out: &mut [u8], d: usize, len: usize) -> Option<usize> {
    let l = len as u64;
    if len <= 8 {
        put(out, d, 1 | ((l - 4) << 2), 2)
    } else if len < 264 {
        put(out, d, 1 | (5 << 2) | ((l - 8) << 16), 3)
    } else if len < 65796 {
        put(out, d, 1 | (6 << 2) | ((l - 260) << 16), 4)
    } else {
        put(out, d, 1 | (7 << 2) | ((l - 65540) << 16), 5)
    }
}

/// A copy of `len >= 4` bytes from `off` back; a repeat code when `off == rep`.
#[inline(always)]
fn emit_copy(out: &mut [u8], d: usize, off: usize, len: usize, rep: usize) -> Option<usize> {
    if off == rep {
        return emit_repeat(out, d, len);
    }
    let o = off as u64;
    if len <= 64 && off < 1 << 16 {
        // Copy-1 or copy-2, chosen without a branch (the choice is hard to predict).
        let short = (len <= 11) & (off < 2048);
        let c1 = 1 | ((len.wrapping_sub(4) as u64 & 7) << 2) | ((o >> 8) << 5) | ((o & 0xff) << 8);
        let c2 = 2 | (((len - 1) as u64) << 2) | (o << 8);
        let pick = 0u64.wrapping_sub(u64::from(short));
        let v = c2 ^ ((c1 ^ c2) & pick);
        return put(out, d, v, 3 - usize::from(short));
    }
    // The first up to 64 bytes with an explicit offset; the rest (>= 4) as a repeat.
    let first = if len <= 64 {
        len
    } else if len >= 68 {
        64
    } else {
        len - 4
    };
    let f = (first - 1) as u64;
    let d = if off < 1 << 16 {
        put(out, d, 2 | (f << 2) | (o << 8), 3)?
    } else {
        put(out, d, 3 | (f << 2) | (o << 8), 5)?
    };
    if len > first {
        emit_repeat(out, d, len - first)
    } else {
        Some(d)
    }
}

/// S2 block encoder; keeps its hash table between calls.
pub struct Encoder {
    table: Box<[u32; TABLE_SIZE]>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder with an empty hash table.
    pub fn new() -> Encoder {
        Encoder {
            table: Box::new([0u32; TABLE_SIZE]),
        }
    }

    /// Appends one S2 block (uvarint length ‖ tags) for `src` to `dst`. Input that does not
    /// compress is stored as a single literal. `src` may be at most 4 GiB - 1 bytes.
    pub fn encode_block(&mut self, src: &[u8], dst: &mut Vec<u8>) {
        put_uvarint(dst, src.len() as u64);
        if src.is_empty() {
            return;
        }
        let start = dst.len();
        let cap = src.len() - src.len() / 32;
        dst.resize(start + cap + SLACK, 0);
        let used = dst
            .get_mut(start..)
            .and_then(|out| self.body(src, out, cap));
        match used {
            Some(k) => dst.truncate(start + k),
            None => {
                dst.truncate(start);
                dst.resize(start + src.len() + 5 + SLACK, 0);
                let k = dst
                    .get_mut(start..)
                    .and_then(|out| emit_literal(out, 0, src, 0, src.len()))
                    .unwrap_or(0);
                dst.truncate(start + k);
            }
        }
    }

    /// Writes one framed data chunk for `src` (at most [`crate::s2::MAX_BLOCK`] bytes) into
    /// `frame[..k]` and returns `k`. `frame` is grown when needed but never shrunk, so a
    /// reused buffer is not cleared again. A chunk that does not compress by at least 1/32 is
    /// stored uncompressed.
    pub fn frame_chunk(&mut self, src: &[u8], frame: &mut Vec<u8>) -> usize {
        let n = src.len();
        let mut hdr = Vec::with_capacity(5);
        put_uvarint(&mut hdr, n as u64);
        let cap = n - n / 32;
        let need = 8 + hdr.len().max(5) + n + SLACK;
        if frame.len() < need {
            frame.resize(need, 0);
        }
        let crc = masked_crc(src).to_le_bytes();
        let body_at = 8 + hdr.len();
        let used = frame.get_mut(body_at..).and_then(|out| {
            if n < MIN_INPUT {
                None
            } else {
                self.body(src, out, cap)
            }
        });
        let (kind, len) = match used {
            Some(k) => (CHUNK_COMPRESSED, 4 + hdr.len() + k),
            None => {
                if let Some(o) = frame.get_mut(8..8 + n) {
                    o.copy_from_slice(src);
                }
                (CHUNK_UNCOMPRESSED, 4 + n)
            }
        };
        if let Some(h) = frame.get_mut(..8) {
            h.copy_from_slice(&[
                kind,
                len as u8,
                (len >> 8) as u8,
                (len >> 16) as u8,
                crc[0],
                crc[1],
                crc[2],
                crc[3],
            ]);
        }
        if kind == CHUNK_COMPRESSED {
            if let Some(o) = frame.get_mut(8..body_at) {
                o.copy_from_slice(&hdr);
            }
        }
        4 + len
    }

    /// Encodes the tags for `src` into `out`. Returns the number of bytes written, or `None`
    /// when the result would exceed `cap` bytes (`out` must have `cap + SLACK` bytes).
    fn body(&mut self, src: &[u8], out: &mut [u8], cap: usize) -> Option<usize> {
        let n = src.len();
        if n < MIN_INPUT {
            let d = emit_literal(out, 0, src, 0, n)?;
            return (d <= cap).then_some(d);
        }
        let table = &mut *self.table;
        table.fill(0);
        let s_limit = n - MARGIN;
        let mut d = 0usize;
        let mut next_emit = 0usize;
        let mut s = 1usize;
        // The previous copy's offset (0 = none yet: the first copy cannot be a repeat).
        let mut rep = 0usize;
        'outer: loop {
            // Search: probe s, s+1, s+2 (and the repeat offset at s+1), then stride ahead.
            let mut cand;
            loop {
                if s > s_limit {
                    break 'outer;
                }
                let cv = load64(src, s)?;
                let h0 = hash6(cv);
                let h1 = hash6(cv >> 8);
                let c0 = table[h0] as usize;
                let c1 = table[h1] as usize;
                table[h0] = s as u32;
                table[h1] = (s + 1) as u32;
                if rep != 0 && s + 1 > rep && load32(src, s + 1 - rep)? == (cv >> 8) as u32 {
                    // Repeat match at s+1: extend it backwards over the pending literal.
                    let mut base = s + 1;
                    while base > next_emit
                        && base > rep
                        && src.get(base - 1 - rep) == src.get(base - 1)
                    {
                        base -= 1;
                    }
                    if d + (base - next_emit) > cap {
                        return None;
                    }
                    if base > next_emit {
                        d = emit_literal(out, d, src, next_emit, base)?;
                    }
                    let len = (s + 1 - base) + 4 + common_len(src, s + 5, s + 5 - rep);
                    d = emit_repeat(out, d, len)?;
                    s = base + len;
                    next_emit = s;
                    if d > cap {
                        return None;
                    }
                    continue;
                }
                if load32(src, c0)? == cv as u32 {
                    cand = c0;
                    break;
                }
                let h2 = hash6(cv >> 16);
                let c2 = table[h2] as usize;
                table[h2] = (s + 2) as u32;
                if load32(src, c1)? == (cv >> 8) as u32 {
                    cand = c1;
                    s += 1;
                    break;
                }
                if load32(src, c2)? == (cv >> 16) as u32 {
                    cand = c2;
                    s += 2;
                    break;
                }
                s += 4 + ((s - next_emit) >> SKIP_SHIFT);
            }
            // A 4-byte match at s from cand (< s). Extend it backwards over the literal.
            while cand > 0 && s > next_emit && src.get(cand - 1) == src.get(s - 1) {
                cand -= 1;
                s -= 1;
            }
            if d + (s - next_emit) > cap {
                return None;
            }
            if s > next_emit {
                d = emit_literal(out, d, src, next_emit, s)?;
            }
            // Copies, as long as the bytes right after one start another match.
            loop {
                let off = s - cand;
                let len = 4 + common_len(src, s + 4, cand + 4);
                d = emit_copy(out, d, off, len, rep)?;
                rep = off;
                s += len;
                next_emit = s;
                if s >= s_limit {
                    break 'outer;
                }
                if d > cap {
                    return None;
                }
                let x = load64(src, s - 2)?;
                let hm = hash6(x);
                let hc = hash6(x >> 16);
                table[hm] = (s - 2) as u32;
                cand = table[hc] as usize;
                table[hc] = s as u32;
                if load32(src, cand)? != (x >> 16) as u32 {
                    s += 1;
                    break;
                }
            }
        }
        if next_emit < n {
            if d + (n - next_emit) > cap {
                return None;
            }
            d = emit_literal(out, d, src, next_emit, n)?;
        }
        (d <= cap).then_some(d)
    }
}

/// One S2 block for `src` (see [`Encoder::encode_block`]).
pub fn encode_block(src: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(src.len() / 2 + 16);
    Encoder::new().encode_block(src, &mut v);
    v
}

/// A whole S2 stream for `src` on this thread: the identifier, then one chunk per
/// [`CHUNK`] bytes. The same bytes as [`ParFrameWriter`] writes for the same input.
pub fn compress_stream(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 2 + 64);
    out.extend_from_slice(STREAM_IDENTIFIER);
    let mut enc = Encoder::new();
    let mut frame = Vec::new();
    for c in src.chunks(CHUNK) {
        let k = enc.frame_chunk(c, &mut frame);
        out.extend_from_slice(frame.get(..k).unwrap_or(&[]));
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Parallel framed writer
// ------------------------------------------------------------------------------------------------

/// A chunk to compress: (sequence number, input buffer, bytes used).
type Job = (u64, Vec<u8>, usize);
/// A compressed chunk: (sequence number, input buffer to recycle, frame buffer, frame length).
type Done = (u64, Vec<u8>, Vec<u8>, usize);

struct Pool<W> {
    jobs: Option<Sender<Job>>,
    /// Input buffers handed back by the writer thread after their chunk was written.
    free: Receiver<Vec<u8>>,
    /// Input buffers allocated so far (at most `max_bufs`).
    allocated: usize,
    max_bufs: usize,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<W>>>,
    failed: Arc<AtomicBool>,
}

/// S2 framed writer (`S2sTwO`, [`CHUNK`]-byte chunks) compressing on worker threads.
///
/// Memory is bounded: at most `threads + 2` chunks are in flight. Small streams (less than
/// one chunk) are compressed on the calling thread and start no threads. Call
/// [`ParFrameWriter::finish`] to write the last chunk and get the inner writer back; dropping
/// the writer without it discards the unwritten tail.
pub struct ParFrameWriter<W: Write + Send + 'static> {
    /// The inner writer while no pool is running.
    w: Option<W>,
    pool: Option<Pool<W>>,
    /// The chunk being filled: always [`CHUNK`] bytes long, `fill` of them used (buffers are
    /// zeroed once and recycled, so reading into them costs no clearing).
    cur: Vec<u8>,
    fill: usize,
    seq: u64,
    threads: usize,
}

impl<W: Write + Send + 'static> ParFrameWriter<W> {
    /// A writer using as many compression threads as the machine has cores.
    pub fn new(w: W) -> Self {
        let t = std::thread::available_parallelism().map_or(1, |n| n.get());
        ParFrameWriter::with_threads(w, t)
    }

    /// A writer with `threads` compression threads (at least 1).
    pub fn with_threads(w: W, threads: usize) -> Self {
        ParFrameWriter {
            w: Some(w),
            pool: None,
            cur: vec![0; CHUNK],
            fill: 0,
            seq: 0,
            threads: threads.max(1),
        }
    }

    fn start_pool(&mut self) -> io::Result<()> {
        let Some(w) = self.w.take() else {
            return Err(io::Error::other("S2 writer already finished"));
        };
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let (frame_tx, frame_rx) = mpsc::channel::<Vec<u8>>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let frame_rx = Arc::new(Mutex::new(frame_rx));
        let failed = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(self.threads);
        for _ in 0..self.threads {
            let job_rx = Arc::clone(&job_rx);
            let frame_rx = Arc::clone(&frame_rx);
            let done_tx = done_tx.clone();
            workers.push(std::thread::spawn(move || {
                let mut enc = Encoder::new();
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, input, used)) = job else { return };
                    let mut frame = frame_rx
                        .lock()
                        .ok()
                        .and_then(|rx| rx.try_recv().ok())
                        .unwrap_or_default();
                    let k = enc.frame_chunk(input.get(..used).unwrap_or(&[]), &mut frame);
                    if done_tx.send((seq, input, frame, k)).is_err() {
                        return;
                    }
                }
            }));
        }
        drop(done_tx);
        let fail = Arc::clone(&failed);
        let writer =
            std::thread::spawn(move || write_in_order(w, done_rx, free_tx, frame_tx, &fail));
        self.pool = Some(Pool {
            jobs: Some(job_tx),
            free: free_rx,
            allocated: 1, // `cur`
            max_bufs: self.threads + 2,
            workers,
            writer: Some(writer),
            failed,
        });
        Ok(())
    }

    /// Hands the full `cur` chunk to the pool and replaces it with an empty buffer.
    fn submit(&mut self) -> io::Result<()> {
        if self.pool.is_none() {
            self.start_pool()?;
        }
        let handed = match self.pool.as_mut() {
            Some(pool) => hand_over(pool, &mut self.cur, self.fill, self.seq),
            None => false,
        };
        if !handed {
            return Err(self.shutdown().err().unwrap_or_else(dead_writer));
        }
        self.seq += 1;
        self.fill = 0;
        Ok(())
    }

    /// Stops the pool and returns the inner writer (or the first write error).
    fn shutdown(&mut self) -> io::Result<W> {
        let Some(mut pool) = self.pool.take() else {
            return self
                .w
                .take()
                .ok_or_else(|| io::Error::other("S2 writer already finished"));
        };
        pool.jobs = None;
        for h in pool.workers.drain(..) {
            let _ = h.join();
        }
        match pool.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("S2 writer thread panicked")),
        }
    }

    /// Writes the last chunk, waits for all chunks to be written, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.pool.is_none() {
            let Some(mut w) = self.w.take() else {
                return Err(io::Error::other("S2 writer already finished"));
            };
            w.write_all(STREAM_IDENTIFIER)?;
            if self.fill > 0 {
                let mut frame = Vec::new();
                let k = Encoder::new()
                    .frame_chunk(self.cur.get(..self.fill).unwrap_or(&[]), &mut frame);
                w.write_all(frame.get(..k).unwrap_or(&[]))?;
            }
            return Ok(w);
        }
        if self.fill > 0 {
            self.submit()?;
        }
        self.shutdown()
    }

    /// Appends exactly `n` bytes read from `r`, reading straight into the chunk buffers (no
    /// intermediate copy). Fails with `UnexpectedEof` if `r` ends first.
    pub fn read_from<R: Read>(&mut self, r: &mut R, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let Some(room) = self.cur.get_mut(self.fill..) else {
                return Err(io::Error::other("S2 writer chunk overrun"));
            };
            let want = (room.len() as u64).min(n) as usize;
            let Some(dst) = room.get_mut(..want) else {
                return Err(io::Error::other("S2 writer chunk overrun"));
            };
            let k = match r.read(dst) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("input ended {n} bytes early"),
                    ))
                }
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.fill += k;
            n -= k as u64;
            if self.fill == CHUNK {
                self.submit()?;
            }
        }
        Ok(())
    }
}

/// Sends `cur[..used]` as job `seq` and puts a free buffer in its place; false if the pool
/// failed.
fn hand_over<W>(pool: &mut Pool<W>, cur: &mut Vec<u8>, used: usize, seq: u64) -> bool {
    if pool.failed.load(Ordering::Relaxed) {
        return false;
    }
    let next = if pool.allocated < pool.max_bufs {
        pool.allocated += 1;
        Some(vec![0; CHUNK])
    } else {
        pool.free.recv().ok()
    };
    let Some(next) = next else {
        return false;
    };
    let full = std::mem::replace(cur, next);
    pool.jobs
        .as_ref()
        .is_some_and(|j| j.send((seq, full, used)).is_ok())
}

fn dead_writer() -> io::Error {
    io::Error::other("S2 writer thread stopped")
}

/// The writer thread: writes finished chunks in sequence order, recycling their buffers.
fn write_in_order<W: Write>(
    mut w: W,
    done: Receiver<Done>,
    free: Sender<Vec<u8>>,
    frames: Sender<Vec<u8>>,
    failed: &AtomicBool,
) -> io::Result<W> {
    let mut pending: BTreeMap<u64, (Vec<u8>, Vec<u8>, usize)> = BTreeMap::new();
    let mut next = 0u64;
    let mut err: Option<io::Error> = None;
    if let Err(e) = w.write_all(STREAM_IDENTIFIER) {
        failed.store(true, Ordering::Relaxed);
        err = Some(e);
    }
    for (seq, input, frame, k) in done {
        pending.insert(seq, (input, frame, k));
        while let Some((input, frame, k)) = pending.remove(&next) {
            if err.is_none() {
                if let Err(e) = w.write_all(frame.get(..k).unwrap_or(&[])) {
                    failed.store(true, Ordering::Relaxed);
                    err = Some(e);
                }
            }
            // The submitter may be waiting for a free buffer even after a failure.
            let _ = free.send(input);
            let _ = frames.send(frame);
            next += 1;
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok(w),
    }
}

impl<W: Write + Send + 'static> Write for ParFrameWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            let Some(room) = self.cur.get_mut(self.fill..) else {
                return Err(io::Error::other("S2 writer chunk overrun"));
            };
            let k = room.len().min(buf.len());
            let (now, rest) = buf.split_at(k);
            if let Some(dst) = room.get_mut(..k) {
                dst.copy_from_slice(now);
            }
            self.fill += k;
            buf = rest;
            if self.fill == CHUNK {
                self.submit()?;
            }
        }
        Ok(total)
    }

    /// Chunks are only cut at [`CHUNK`] boundaries, so that the output depends on the input
    /// alone; `flush` therefore writes nothing.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for ParFrameWriter<W> {
    fn drop(&mut self) {
        if self.pool.is_some() {
            let _ = self.shutdown();
        }
    }
}

#[cfg(test)]
mod tests;
