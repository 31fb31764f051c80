//! A parallel S2/Snappy frame decoder: the same strict rules as [`crate::s2::FrameReader`],
//! but data chunks (each independently compressed and checksummed) are decoded on worker
//! threads while the caller consumes earlier ones. Output order is the input order.
//!
//! Threads: one reads chunk headers and bodies from the input and deals data chunks out to the
//! workers in turn (chunk k goes to worker k mod N); worker i decodes and checks its chunks in
//! order; the reader side of this type takes results from worker 0, 1, …, N-1, 0, … so the
//! output is in stream order.
//!
//! Memory: decoding never runs more than [`WINDOW`] bytes ahead of the consumer. Every batch is
//! charged its compressed bytes plus the decoded size its chunks declare (each S2 chunk decodes
//! to at most 4 MiB, a Snappy chunk to 64 KiB; a chunk that decodes to more than it declares is
//! an error) before it is dealt, and the charge is returned when the consumer moves past the
//! batch's output. A stream of tiny chunks that each decode to 4 MiB of zeros therefore costs
//! the same memory as any other stream.
use crate::s2::{self, Failure, Kind, Mode, S2Error, Scratch, CHUNK_HEADER};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Bytes (compressed plus declared decoded) in flight between the input and the consumer.
pub const WINDOW: u64 = 16 << 20;
/// A batch is dealt once its chunks declare this many decoded bytes.
const DECODED_BATCH: u64 = 1 << 20;

/// The shared byte budget: the dealer takes, the consumer gives back.
struct Budget {
    used: Mutex<(u64, bool, u64)>, // (bytes in flight, closed, peak in flight)
    cv: Condvar,
}

impl Budget {
    /// Waits until `n` bytes fit in [`WINDOW`] (a single batch above it waits for an empty
    /// window). False when the consumer has gone away.
    fn take(&self, n: u64) -> bool {
        let Ok(mut g) = self.used.lock() else {
            return false;
        };
        while !g.1 && g.0 > 0 && g.0 + n > WINDOW {
            g = match self.cv.wait(g) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
        if g.1 {
            return false;
        }
        g.0 += n;
        g.2 = g.2.max(g.0);
        true
    }
    fn give(&self, n: u64) {
        if let Ok(mut g) = self.used.lock() {
            g.0 = g.0.saturating_sub(n);
        }
        self.cv.notify_all();
    }
    fn close(&self) {
        if let Ok(mut g) = self.used.lock() {
            g.1 = true;
        }
        self.cv.notify_all();
    }
}

/// Upper bound of what a data chunk decodes to, from its header and the block's length varint
/// (decoding refuses a block that produces anything else, or more than the mode allows).
fn declared_len(c: &Chunk) -> u64 {
    let limit = match c.mode {
        Mode::S2 => s2::MAX_BLOCK as u64,
        Mode::Snappy => s2::MAX_SNAPPY_BLOCK as u64,
    };
    match c.kind {
        Kind::Uncompressed => c.body.len().saturating_sub(4) as u64,
        _ => c
            .body
            .get(4..)
            .and_then(|b| s2::block_len(b, 0).ok())
            .map_or(0, |(v, _)| v)
            .min(limit),
    }
}

/// Data chunks are dealt out in batches of about [`BATCH`] compressed bytes, so small chunks
/// (Snappy framing uses 64 KiB) do not cost a channel round trip each.
enum Job {
    /// Chunks and the bytes charged to the budget for them.
    Data(Vec<Chunk>, u64),
    Fail(Failure),
}

struct Chunk {
    mode: Mode,
    kind: Kind,
    body: Vec<u8>,
    at: u64,
}

const BATCH: usize = 512 << 10;

type Decoded = Result<(Scratch, u64), Failure>;

/// Compressed-chunk bodies handed back by the workers once decoded, for the dealer to read
/// the next chunks into: no allocation, page faults and zero-filling per chunk. At most
/// [`BODIES_MAX`] bodies of at most [`POOL_BUF_MAX`] bytes are kept.
#[derive(Default)]
struct Bodies(Mutex<Vec<Vec<u8>>>);

const BODIES_MAX: usize = 8;

impl Bodies {
    /// A buffer of exactly `len` bytes (contents unspecified: the caller overwrites them).
    fn take(&self, len: usize) -> Vec<u8> {
        let mut b = self
            .0
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default();
        if b.len() < len {
            b.resize(len, 0);
        }
        b.truncate(len);
        b
    }
    fn give(&self, b: Vec<u8>) {
        if b.capacity() > POOL_BUF_MAX {
            return;
        }
        if let Ok(mut v) = self.0.lock() {
            if v.len() < BODIES_MAX {
                v.push(b);
            }
        }
    }
}

/// Output buffers handed back by the consumer for the workers to decode into again: no fresh
/// allocation, page faults and zero-filling per batch. At most [`POOL_MAX`] buffers of at most
/// [`POOL_BUF_MAX`] bytes are kept (a few MiB beyond the window at worst).
#[derive(Default)]
struct Pool(Mutex<Vec<Scratch>>);

const POOL_MAX: usize = 4;
const POOL_BUF_MAX: usize = 2 << 20;

impl Pool {
    fn take(&self) -> Scratch {
        self.0
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default()
    }
    fn give(&self, mut b: Scratch) {
        if b.buf.len() > POOL_BUF_MAX {
            return;
        }
        b.end = 0;
        if let Ok(mut v) = self.0.lock() {
            if v.len() < POOL_MAX {
                v.push(b);
            }
        }
    }
}

pub struct ParFrameReader {
    results: Vec<Receiver<Decoded>>,
    next: usize,
    out: Scratch,
    pool: Arc<Pool>,
    /// Budget charge of the batch in `out`, given back when the consumer moves past it.
    charged: u64,
    budget: Arc<Budget>,
    pos: usize,
    failed: Option<Failure>,
    eof: bool,
    offset: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

fn fill<R: Read>(r: &mut R, buf: &mut [u8], offset: &AtomicU64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => {
                got += k;
                offset.fetch_add(k as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Deals jobs to the workers in turn, batching data chunks (order = stream order).
struct Dealer {
    jobs: Vec<SyncSender<Job>>,
    k: usize,
    batch: Vec<Chunk>,
    batch_bytes: usize,
    batch_decoded: u64,
    budget: Arc<Budget>,
}

impl Dealer {
    fn send(&mut self, j: Job) -> bool {
        let ok = self.jobs[self.k % self.jobs.len()].send(j).is_ok();
        self.k += 1;
        ok
    }
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let charge = self.batch_bytes as u64 + self.batch_decoded;
        self.batch_bytes = 0;
        self.batch_decoded = 0;
        if !self.budget.take(charge) {
            return false;
        }
        let b = std::mem::take(&mut self.batch);
        self.send(Job::Data(b, charge))
    }
    fn data(&mut self, c: Chunk) -> bool {
        let d = declared_len(&c);
        if !self.batch.is_empty() && self.batch_decoded + d > DECODED_BATCH && !self.flush() {
            return false;
        }
        self.batch_bytes += c.body.len();
        self.batch_decoded += d;
        self.batch.push(c);
        (self.batch_bytes < BATCH && self.batch_decoded < DECODED_BATCH) || self.flush()
    }
    /// Everything decoded so far, then the failure.
    fn fail(&mut self, f: Failure) {
        if self.flush() {
            self.send(Job::Fail(f));
        }
    }
}

/// The reader thread: frame the input and deal data chunks to the workers.
fn deal<R: Read>(
    mut r: R,
    jobs: Vec<SyncSender<Job>>,
    offset: Arc<AtomicU64>,
    budget: Arc<Budget>,
    bodies: Arc<Bodies>,
) {
    let mut dl = Dealer {
        jobs,
        k: 0,
        batch: Vec::new(),
        batch_bytes: 0,
        batch_decoded: 0,
        budget,
    };
    let mut mode: Option<Mode> = None;
    loop {
        let at = offset.load(Ordering::Relaxed);
        let mut h = [0u8; CHUNK_HEADER];
        let got = match fill(&mut r, &mut h, &offset) {
            Ok(g) => g,
            Err(e) => return dl.fail(Failure::Io(e.kind(), e.to_string())),
        };
        if got == 0 {
            dl.flush();
            return; // clean end at a chunk boundary
        }
        let end = offset.load(Ordering::Relaxed);
        if got < CHUNK_HEADER {
            return dl.fail(Failure::Format(S2Error::Truncated {
                offset: at,
                end,
                what: "chunk header",
            }));
        }
        let len = usize::from(h[1]) | usize::from(h[2]) << 8 | usize::from(h[3]) << 16;
        let kind = match s2::classify(mode, h[0], len, at) {
            Ok(k) => k,
            Err(e) => return dl.fail(Failure::Format(e)),
        };
        let mut body = bodies.take(len);
        match fill(&mut r, &mut body, &offset) {
            Err(e) => return dl.fail(Failure::Io(e.kind(), e.to_string())),
            Ok(g) if g < len => {
                let end = offset.load(Ordering::Relaxed);
                return dl.fail(Failure::Format(S2Error::Truncated {
                    offset: at,
                    end,
                    what: "chunk",
                }));
            }
            Ok(_) => {}
        }
        match kind {
            Kind::Skip => bodies.give(body),
            Kind::Identifier => match s2::identifier(&body, at) {
                Ok(m) => {
                    mode = Some(m);
                    bodies.give(body);
                }
                Err(e) => return dl.fail(Failure::Format(e)),
            },
            Kind::Compressed | Kind::Uncompressed => {
                let c = Chunk {
                    mode: mode.unwrap_or(Mode::S2),
                    kind,
                    body,
                    at,
                };
                if !dl.data(c) {
                    return; // the consumer went away
                }
            }
        }
    }
}

impl ParFrameReader {
    /// Decode `r` with `workers` decoding threads (at least 1).
    pub fn new<R: Read + Send + 'static>(r: R, workers: usize) -> Self {
        let n = workers.max(1);
        let offset = Arc::new(AtomicU64::new(0));
        let mut jobs = Vec::with_capacity(n);
        let mut results = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n + 1);
        let pool = Arc::new(Pool::default());
        let bodies = Arc::new(Bodies::default());
        for _ in 0..n {
            let (jt, jr) = sync_channel::<Job>(1);
            let (rt, rr) = sync_channel::<Decoded>(1);
            jobs.push(jt);
            results.push(rr);
            let pool = pool.clone();
            let bodies = bodies.clone();
            threads.push(std::thread::spawn(move || {
                for j in jr {
                    let res = match j {
                        Job::Fail(f) => Err(f),
                        Job::Data(chunks, charge) => {
                            let mut out = pool.take();
                            let res = chunks.iter().try_for_each(|c| {
                                s2::data_chunk_into(
                                    c.mode,
                                    c.kind,
                                    &c.body,
                                    c.at,
                                    &mut out,
                                    u64::MAX,
                                )
                            });
                            for c in chunks {
                                bodies.give(c.body);
                            }
                            res.map(|_| (out, charge)).map_err(Failure::Format)
                        }
                    };
                    let stop = res.is_err();
                    if rt.send(res).is_err() || stop {
                        return;
                    }
                }
            }));
        }
        let off = offset.clone();
        let budget = Arc::new(Budget {
            used: Mutex::new((0, false, 0)),
            cv: Condvar::new(),
        });
        let b = budget.clone();
        threads.push(std::thread::spawn(move || deal(r, jobs, off, b, bodies)));
        ParFrameReader {
            results,
            next: 0,
            out: Scratch::default(),
            pool,
            charged: 0,
            budget,
            pos: 0,
            failed: None,
            eof: false,
            offset,
            threads,
        }
    }

    /// The most bytes that were ever in flight (charged to the window) at once.
    #[cfg(test)]
    pub fn peak_in_flight(&self) -> u64 {
        self.budget.used.lock().map_or(0, |g| g.2)
    }

    /// Bytes consumed from the input so far (the reader thread runs a little ahead).
    pub fn compressed_offset(&self) -> u64 {
        self.offset.load(Ordering::Relaxed)
    }
}

impl ParFrameReader {
    /// Makes decoded bytes available (`pos < out.end`); false at the end of the stream.
    fn refill(&mut self) -> io::Result<bool> {
        loop {
            if self.pos < self.out.end {
                return Ok(true);
            }
            if let Some(f) = &self.failed {
                return Err(f.to_io());
            }
            if self.eof {
                return Ok(false);
            }
            // The consumer is past the previous batch: give its charge and its buffer back.
            self.pool.give(std::mem::take(&mut self.out));
            self.budget.give(std::mem::take(&mut self.charged));
            self.pos = 0;
            let i = self.next % self.results.len();
            match self.results[i].recv() {
                Ok(Ok((v, charge))) => {
                    self.next += 1;
                    self.out = v;
                    self.charged = charge;
                }
                Ok(Err(f)) => {
                    self.failed = Some(f.clone());
                    return Err(f.to_io());
                }
                Err(_) => self.eof = true, // every chunk so far was delivered in order: the end
            }
        }
    }
}

impl Read for ParFrameReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() && self.pos >= self.out.end {
            return Ok(0);
        }
        if !self.refill()? {
            return Ok(0);
        }
        let avail = self.out.data().get(self.pos..).unwrap_or(&[]);
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }
}

/// The decoded bytes are read in place (no copy into the caller's buffer).
impl io::BufRead for ParFrameReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.refill()? {
            return Ok(&[]);
        }
        Ok(self.out.data().get(self.pos..).unwrap_or(&[]))
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.out.end);
    }
}

impl Drop for ParFrameReader {
    fn drop(&mut self) {
        // Closing the result channels stops the workers, which stops the dealer (also when it
        // waits for budget).
        self.budget.close();
        self.results.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn framed(data: &[u8]) -> Vec<u8> {
        let mut w = s2::FrameWriter::new(Vec::new());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn par_decode(src: Vec<u8>, n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        ParFrameReader::new(io::Cursor::new(src), n).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn same_output_and_errors_as_the_sequential_reader() {
        let mut data = Vec::new();
        let mut x = 1u64;
        for i in 0..400_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 3 == 0 {
                data.extend_from_slice(&x.to_le_bytes()[..3]);
            } else {
                data.extend_from_slice(b"orders.new.");
            }
        }
        let src = framed(&data);
        for n in [1, 2, 3] {
            assert_eq!(par_decode(src.clone(), n).unwrap(), data, "{n} workers");
        }
        // real server output
        let real = std::fs::read(
            crate::testdata::samples_dir().join("backups/v2.15.1/ORDERS/stream.tar.s2"),
        )
        .unwrap();
        assert_eq!(
            par_decode(real.clone(), 2).unwrap(),
            s2::decode_stream(&real).unwrap()
        );
        // every truncation and a flip: an error exactly when the sequential reader errs
        let step = (src.len() / 97).max(1);
        for cut in (0..src.len()).step_by(step) {
            let par = par_decode(src[..cut].to_vec(), 2);
            let seq = s2::decode_stream(&src[..cut]);
            assert_eq!(par.is_ok(), seq.is_ok(), "cut {cut}");
        }
        let mut bad = src.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x10;
        let e = par_decode(bad.clone(), 2).unwrap_err();
        let pe = crate::s2::s2_error_of(&e).expect("S2 error inside").clone();
        assert_eq!(pe, s2::decode_stream(&bad).unwrap_err());
        assert!(par_decode(b"garbage!".to_vec(), 2).is_err());
        assert_eq!(par_decode(Vec::new(), 2).unwrap(), Vec::<u8>::new());
    }

    /// Chunks of 4 MiB of zeros compress to a few hundred bytes each: 256 MiB in a few KB.
    /// Decoding stays within the window however slowly the consumer reads.
    #[test]
    fn bombs_decode_within_the_window() {
        let mut frame = Vec::new();
        let k = crate::s2::encode::Encoder::new().frame_chunk(&vec![0u8; 4 << 20], &mut frame);
        let mut src = b"\xff\x06\x00\x00S2sTwO".to_vec();
        for _ in 0..64 {
            src.extend_from_slice(&frame[..k]);
        }
        assert!(src.len() < 50_000, "{}", src.len());
        for n in [1, 3] {
            let mut r = ParFrameReader::new(io::Cursor::new(src.clone()), n);
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let k = r.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                total += k as u64;
                if total.is_multiple_of(64 << 20) {
                    std::thread::sleep(std::time::Duration::from_millis(5)); // a slow consumer
                }
            }
            assert_eq!(total, 64 * (4 << 20));
            let peak = r.peak_in_flight();
            assert!(
                peak <= WINDOW + (4 << 20),
                "{n} workers: {peak} bytes in flight"
            );
            assert!(peak > 0);
        }
    }

    #[test]
    fn dropping_early_does_not_hang() {
        let data = vec![7u8; 20 << 20];
        let mut r = ParFrameReader::new(io::Cursor::new(framed(&data)), 2);
        let mut buf = [0u8; 10];
        r.read_exact(&mut buf).unwrap();
        drop(r);
    }
}
