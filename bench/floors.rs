//! The floors under deep verify: what reading and hashing a stream's blocks cost with nothing
//! else around them, measured on the same files in the same run as `jetdir verify`.
//!
//!     cargo run --profile profiling --example floors -- [--repeats N] [--threads T] DIR/msgs/*.blk
//!
//! `read` and `read_hash` read each block file as verify does (opened read-only, its whole length read
//! into one buffer per thread that is reused from block to block) on `--threads` threads (the
//! machine's cores by default) taking the files in turn:
//!
//! * `read`: the read alone (what `cat` does, with verify's access pattern: whole 8 MiB blocks);
//! * `read_hash`: the read, then every record framed (`parse_record`) and its HighwayHash-64
//!   checked, nothing else (no bookkeeping, no other check): the floor of a deep verify;
//! * `hash`: one thread, the records of blocks already in memory (at most 256 MiB) framed and
//!   hashed: the hash's own cost per byte, CPU-bound;
//! * `s2_par` (with `--s2-stream FILE`, a backup's `stream.tar.s2`): that file decoded on
//!   `--threads` decoding threads by the parallel reader verify uses, the output consumed in
//!   place and nothing else done with it: the floor of verifying that backup.
//! * `pack` (with `--pack`): the block files, in order, read straight into the chunks of the
//!   S2 framed writer pack uses (`ParFrameWriter`: `--threads` compressing threads, CRC-32C of
//!   every chunk), its output SHA-256-hashed on the writer thread and dropped: what pack v1
//!   cannot go below, the compression and hash of its output (pack's tar adds headers, and for
//!   2.10+ streams a `.idx` per block and drops tombstones, so its output is not these exact
//!   bytes). Also gives CPU seconds (`pack_cpu`, user + system of the process) and the output's
//!   size (`pack_out`).
//!
//! The block files must be plain (not `cmp`) and belong to one stream: the stream's name (for the
//! checksum key) is taken from the path (`…/streams/NAME/msgs/N.blk`). A record whose checksum
//! does not match is counted and reported (`bad`), so a damaged input is not mistaken for fast.
//!
//! Prints one JSON object: per mode the wall seconds of every run, the bytes of block files
//! each run covered, and the records hashed; bench/run.py turns it into rows with min/median/max.
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use jetdir::filestore::hash_block_records as hash_block;

/// The block's index and its stream's name from `…/NAME/msgs/N.blk`.
fn block_of(p: &Path) -> io::Result<(String, u32)> {
    let index = p
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("{}: not N.blk", p.display())))?;
    let stream = p
        .parent()
        .and_then(|m| m.parent())
        .and_then(|s| s.file_name())
        .and_then(|s| s.to_str())
        .ok_or_else(|| io::Error::other(format!("{}: no stream dir", p.display())))?;
    Ok((stream.to_string(), index))
}

/// Reads the whole file into `buf` (cleared, reserved to the file's length first) the way
/// verify reads a block.
fn read_block(p: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let f = std::fs::File::open(p)?;
    let len = f.metadata()?.len();
    buf.reserve(len as usize);
    f.take(len).read_to_end(buf)?;
    Ok(())
}

/// One run over every file on `threads` threads; returns (seconds, records, bad).
fn par_run(
    files: &[(PathBuf, String, u32)],
    threads: usize,
    hash: bool,
) -> io::Result<(f64, u64, u64)> {
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    let res: Vec<io::Result<(u64, u64)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = Vec::new();
                    let (mut n, mut bad) = (0, 0);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((p, stream, index)) = files.get(i) else {
                            return Ok((n, bad));
                        };
                        read_block(p, &mut buf)?;
                        if hash {
                            let (a, b) = hash_block(stream, *index, &buf);
                            n += a;
                            bad += b;
                        }
                    }
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("thread panicked")))
            })
            .collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let (mut n, mut bad) = (0, 0);
    for r in res {
        let (a, b) = r?;
        n += a;
        bad += b;
    }
    Ok((secs, n, bad))
}

/// CPU seconds (user + system, every thread) of this process so far, from `/proc/self/stat`.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // after the command: state is field 3, utime 14, stime 15 (clock ticks, 100 per second)
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// SHA-256 of what is written, and its length.
struct ShaSink {
    h: sha2::Sha256,
    n: u64,
}

impl Write for ShaSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        use sha2::Digest;
        self.h.update(b);
        self.n += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One run of the pack floor: (wall seconds, CPU seconds, output bytes).
fn pack_run(files: &[(PathBuf, String, u32)], threads: usize) -> io::Result<(f64, f64, u64)> {
    use sha2::Digest;
    let c0 = cpu_secs();
    let t = Instant::now();
    let sink = ShaSink {
        h: sha2::Sha256::new(),
        n: 0,
    };
    let mut w = jetdir::s2::encode::ParFrameWriter::with_threads(sink, threads);
    for (p, _, _) in files {
        let mut f = std::fs::File::open(p)?;
        let len = f.metadata()?.len();
        w.read_from(&mut f, len)?;
    }
    let sink = w.finish()?;
    std::hint::black_box(sink.h.finalize());
    Ok((t.elapsed().as_secs_f64(), cpu_secs() - c0, sink.n))
}

fn secs(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|s| format!("{s:.6}")).collect();
    format!("[{}]", parts.join(", "))
}

fn main() -> io::Result<()> {
    let mut repeats = 5usize;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut paths = Vec::new();
    let mut s2_stream: Option<PathBuf> = None;
    let mut pack = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeats" => repeats = args.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--s2-stream" => s2_stream = args.next().map(PathBuf::from),
            "--pack" => pack = true,
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        eprintln!(
            "usage: floors [--repeats N] [--threads T] [--s2-stream FILE] [--pack] DIR/msgs/N.blk..."
        );
        std::process::exit(2);
    }
    let mut files = Vec::new();
    let mut bytes = 0u64;
    for p in paths {
        let (stream, index) = block_of(&p)?;
        bytes += std::fs::metadata(&p)?.len();
        files.push((p, stream, index));
    }
    let threads = threads.max(1);
    // one untimed run of each: page cache warm, and a check that the records verify
    let (_, records, bad) = par_run(&files, threads, true)?;
    par_run(&files, threads, false)?;

    // blocks in memory for the one-thread hash: at most 256 MiB of them
    let mut held = Vec::new();
    let mut held_bytes = 0u64;
    for (p, stream, index) in &files {
        if held_bytes >= 256 << 20 {
            break;
        }
        let mut b = Vec::new();
        read_block(p, &mut b)?;
        held_bytes += b.len() as u64;
        held.push((stream.as_str(), *index, b));
    }

    let s2_par_once = |p: &Path| -> io::Result<(f64, u64)> {
        let f = std::fs::File::open(p)?;
        let t = Instant::now();
        let n = jetdir::s2::decode_parallel_discarding(f, threads)?;
        Ok((t.elapsed().as_secs_f64(), n))
    };
    let mut s2_bytes = 0;
    if let Some(p) = &s2_stream {
        s2_bytes = s2_par_once(p)?.1; // untimed: page cache warm
    }
    let (mut read, mut read_hash, mut hash, mut s2_par) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut pack_wall, mut pack_cpu, mut pack_out) = (Vec::new(), Vec::new(), 0u64);
    if pack {
        pack_run(&files, threads)?; // untimed: the encoder's buffers and threads warm
    }
    for _ in 0..repeats {
        read.push(par_run(&files, threads, false)?.0);
        read_hash.push(par_run(&files, threads, true)?.0);
        let t = Instant::now();
        let mut n = 0;
        for (stream, index, b) in &held {
            n += hash_block(stream, *index, b).0;
        }
        hash.push(t.elapsed().as_secs_f64());
        std::hint::black_box(n);
        if let Some(p) = &s2_stream {
            s2_par.push(s2_par_once(p)?.0);
        }
        if pack {
            let (w, c, n) = pack_run(&files, threads)?;
            pack_wall.push(w);
            pack_cpu.push(c);
            pack_out = n;
        }
    }
    println!(
        "{{\"threads\": {threads}, \"bytes\": {bytes}, \"records\": {records}, \"bad\": {bad}, \
         \"read\": {}, \"read_hash\": {}, \"hash\": {}, \"hash_bytes\": {held_bytes}, \
         \"s2_par\": {}, \"s2_bytes\": {s2_bytes}, \"pack\": {}, \"pack_cpu\": {}, \
         \"pack_out\": {pack_out}}}",
        secs(&read),
        secs(&read_hash),
        secs(&hash),
        secs(&s2_par),
        secs(&pack_wall),
        secs(&pack_cpu)
    );
    Ok(())
}
