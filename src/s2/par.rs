//! A parallel S2/Snappy frame decoder: the same strict rules as [`crate::s2::FrameReader`],
//! but data chunks (each independently compressed and checksummed) are decoded on worker
//! threads while the caller consumes earlier ones. Output order is the input order.
//!
//! Threads: one reads chunk headers and bodies from the input and deals data chunks out to the
//! workers in turn (chunk k goes to worker k mod N); worker i decodes and checks its chunks in
//! order; the reader side of this type takes results from worker 0, 1, …, N-1, 0, … so the
//! output is in stream order. Channels are bounded: at most two chunks wait per worker.
use crate::s2::{self, Failure, Kind, Mode, S2Error, CHUNK_HEADER};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Data chunks are dealt out in batches of about [`BATCH`] compressed bytes, so small chunks
/// (Snappy framing uses 64 KiB) do not cost a channel round trip each.
enum Job {
    Data(Vec<Chunk>),
    Fail(Failure),
}

struct Chunk {
    mode: Mode,
    kind: Kind,
    body: Vec<u8>,
    at: u64,
}

const BATCH: usize = 512 << 10;

pub struct ParFrameReader {
    results: Vec<Receiver<Result<Vec<u8>, Failure>>>,
    next: usize,
    out: Vec<u8>,
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
        self.batch_bytes = 0;
        let b = std::mem::take(&mut self.batch);
        self.send(Job::Data(b))
    }
    fn data(&mut self, c: Chunk) -> bool {
        self.batch_bytes += c.body.len();
        self.batch.push(c);
        self.batch_bytes < BATCH || self.flush()
    }
    /// Everything decoded so far, then the failure.
    fn fail(&mut self, f: Failure) {
        if self.flush() {
            self.send(Job::Fail(f));
        }
    }
}

/// The reader thread: frame the input and deal data chunks to the workers.
fn deal<R: Read>(mut r: R, jobs: Vec<SyncSender<Job>>, offset: Arc<AtomicU64>) {
    let mut dl = Dealer {
        jobs,
        k: 0,
        batch: Vec::new(),
        batch_bytes: 0,
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
        let mut body = vec![0u8; len];
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
            Kind::Skip => {}
            Kind::Identifier => match s2::identifier(&body, at) {
                Ok(m) => mode = Some(m),
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
        for _ in 0..n {
            let (jt, jr) = sync_channel::<Job>(1);
            let (rt, rr) = sync_channel::<Result<Vec<u8>, Failure>>(1);
            jobs.push(jt);
            results.push(rr);
            threads.push(std::thread::spawn(move || {
                for j in jr {
                    let res = match j {
                        Job::Fail(f) => Err(f),
                        Job::Data(chunks) => {
                            let mut out = Vec::new();
                            chunks
                                .iter()
                                .try_for_each(|c| {
                                    s2::data_chunk(
                                        c.mode,
                                        c.kind,
                                        &c.body,
                                        c.at,
                                        &mut out,
                                        u64::MAX,
                                    )
                                })
                                .map(|_| out)
                                .map_err(Failure::Format)
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
        threads.push(std::thread::spawn(move || deal(r, jobs, off)));
        ParFrameReader {
            results,
            next: 0,
            out: Vec::new(),
            pos: 0,
            failed: None,
            eof: false,
            offset,
            threads,
        }
    }

    /// Bytes consumed from the input so far (the reader thread runs a little ahead).
    pub fn compressed_offset(&self) -> u64 {
        self.offset.load(Ordering::Relaxed)
    }
}

impl Read for ParFrameReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.out.len() {
                let n = (self.out.len() - self.pos).min(buf.len());
                buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
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
            let i = self.next % self.results.len();
            match self.results[i].recv() {
                Ok(Ok(v)) => {
                    self.next += 1;
                    self.out = v;
                    self.pos = 0;
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

impl Drop for ParFrameReader {
    fn drop(&mut self) {
        // Closing the result channels stops the workers, which stops the dealer.
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

    #[test]
    fn dropping_early_does_not_hang() {
        let data = vec![7u8; 20 << 20];
        let mut r = ParFrameReader::new(io::Cursor::new(framed(&data)), 2);
        let mut buf = [0u8; 10];
        r.read_exact(&mut buf).unwrap();
        drop(r);
    }
}
