//! The floor under `jetdir dump --json`'s walk: what reading a stream's blocks and rendering
//! every message as dump's JSON costs with nothing else around it, measured on the same files
//! in the same run as `jetdir dump`.
//!
//!     cargo run --profile profiling --example dumpfloor -- [--repeats N] [--threads T] DIR/msgs/*.blk
//!
//! Each of `--threads` threads (the machine's cores by default) takes the block files in turn,
//! reads one whole into a reused buffer (as verify reads a block), frames its records and
//! renders each message with dump's JSON renderer ([`jetdir::forensics::dump::render_block_json`]:
//! the same bytes `dump --json` writes for it) into a buffer that is dropped every 4 MiB (the
//! write to /dev/null). Nothing is checked, classified or put in order: the walk pass of a dump
//! cannot cost less. A dump reads the stream twice (the deep verify that decides what the
//! server serves, then this walk), so its floor is the deep verify plus this.
//!
//! Prints one JSON object: the wall seconds of every run, CPU seconds, bytes of block files and
//! messages rendered per run; bench/run.py turns it into rows.
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[path = "common.rs"]
mod common;
use common::{cpu_secs, secs};

/// The stream's name from `…/NAME/msgs/N.blk`.
fn stream_of(p: &Path) -> io::Result<String> {
    p.parent()
        .and_then(|m| m.parent())
        .and_then(|s| s.file_name())
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .ok_or_else(|| io::Error::other(format!("{}: no stream dir", p.display())))
}

/// One run over every file: (wall seconds, CPU seconds, messages, bytes rendered).
fn run(files: &[(PathBuf, String, String)], threads: usize) -> io::Result<(f64, f64, u64, u64)> {
    let next = AtomicUsize::new(0);
    let c0 = cpu_secs();
    let t = Instant::now();
    let res = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut buf, mut out) = (Vec::new(), Vec::with_capacity(5 << 20));
                    let (mut n, mut bytes) = (0u64, 0u64);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((p, stream, file)) = files.get(i) else {
                            return Ok((n, bytes));
                        };
                        buf.clear();
                        let mut f = std::fs::File::open(p)?;
                        let len = f.metadata()?.len();
                        buf.reserve(len as usize);
                        (&mut f).take(len).read_to_end(&mut buf)?;
                        let mut at = 0;
                        while at < buf.len() {
                            // render a piece of ~4 MiB of output at a time
                            let end = piece_end(&buf, at);
                            n += jetdir::forensics::dump::render_block_json(
                                stream,
                                file,
                                &buf[at..end],
                                &mut out,
                            );
                            bytes += out.len() as u64;
                            std::hint::black_box(&out);
                            out.clear();
                            if end == at {
                                break;
                            }
                            at = end;
                        }
                    }
                })
            })
            .collect();
        common::join_sum(hs)
    });
    let (n, bytes) = res?;
    Ok((t.elapsed().as_secs_f64(), cpu_secs() - c0, n, bytes))
}

/// The end of the records that start at `at` and fill about 3 MiB of block (by the records'
/// lengths; the whole rest when a length does not frame).
fn piece_end(b: &[u8], at: usize) -> usize {
    let mut k = at;
    while k + 4 <= b.len() && k - at < 3 << 20 {
        let rl = (u32::from_le_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]]) & 0x7fff_ffff) as usize;
        if rl == 0 || k + rl > b.len() {
            return b.len();
        }
        k += rl;
    }
    if k == at {
        b.len()
    } else {
        k
    }
}

fn main() -> io::Result<()> {
    let mut repeats = 5usize;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeats" => repeats = args.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        eprintln!("usage: dumpfloor [--repeats N] [--threads T] DIR/msgs/N.blk...");
        std::process::exit(2);
    }
    let mut files = Vec::new();
    let mut bytes = 0u64;
    for p in paths {
        let stream = stream_of(&p)?;
        let file = format!(
            "msgs/{}",
            p.file_name().and_then(|n| n.to_str()).unwrap_or("?")
        );
        bytes += std::fs::metadata(&p)?.len();
        files.push((p, stream, file));
    }
    let threads = threads.max(1);
    let (_, _, messages, out_bytes) = run(&files, threads)?; // untimed: page cache warm
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let (w, c, _, _) = run(&files, threads)?;
        wall.push(w);
        cpu.push(c);
    }
    println!(
        "{{\"threads\": {threads}, \"bytes\": {bytes}, \"messages\": {messages}, \"out_bytes\": {out_bytes}, \"wall\": {}, \"cpu\": {}}}",
        secs(&wall),
        secs(&cpu)
    );
    Ok(())
}
