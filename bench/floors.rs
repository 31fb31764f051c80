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
//!   checked, nothing else (no bookkeeping, no other check): the floor of a deep verify
//!   (`read_hash_cpu`: the CPU seconds of every run);
//! * `hash`: one thread, the records of blocks already in memory (at most 256 MiB) framed and
//!   hashed: the hash's own cost per byte, CPU-bound;
//! * `s2_par` (with `--s2-stream FILE`, a backup's `stream.tar.s2`): that file decoded on
//!   `--threads` decoding threads by the parallel reader verify uses, the output consumed in
//!   place and nothing else done with it: the floor of verifying that backup (`s2_par_cpu`:
//!   the CPU seconds of every run).
//! * `pack` (with `--pack`): the block files, in order, read straight into the chunks of the
//!   S2 framed writer pack uses (`ParFrameWriter`: `--threads` compressing threads, CRC-32C of
//!   every chunk), its output SHA-256-hashed on the writer thread and dropped: what pack v1
//!   cannot go below, the compression and hash of its output (pack's tar adds headers, and for
//!   2.10+ streams a `.idx` per block and drops tombstones, so its output is not these exact
//!   bytes). Also gives CPU seconds (`pack_cpu`, user + system of the process) and the output's
//!   size (`pack_out`).
//!   `pack_verified` (also with `--pack`): the same output with the verify pack makes of its
//!   source: the blocks read on `--threads` threads, every record's HighwayHash-64 checked, then
//!   written in order into that writer (see [`pack_verified_run`]); `pack_verified_cpu` its CPU
//!   seconds, `pack_verified_bad` the checksums that did not match. What pack v1 of a plain
//!   stream cannot go below: it reads, checks, compresses and hashes every block once.
//!
//! * `enc` (with `--key-file K`: the block files are those of an encrypted stream, written by
//!   the server with the JetStream key in K): on `--threads` threads taking the files in turn,
//!   each block's key file (`msgs/N.key`) opened with the key (as verify opens it: HMAC of the
//!   account and `STREAM:N`, the AEAD of the key file; chacha tried first), the block read as
//!   verify reads it, decrypted whole in its buffer by the keystream code verify uses
//!   (`AssetKey::xor_block`), then every record framed and its HighwayHash-64 checked, nothing
//!   else: the floor of an encrypted stream's deep verify. `enc_xor`: the same without the hash
//!   (read + key file + keystream); `read` is then the read of the encrypted files alone. Only
//!   these three run with `--key-file`.
//! * `v1` (with `--v1 FILE --stream NAME`, a V1 backup's `stream.tar.s2` of stream NAME): FILE
//!   S2-decoded on `--threads` decoding threads by the parallel reader verify uses, the decoded
//!   tar walked (the `tar` crate, which verify's walker wraps), each `msgs/N.blk` member read
//!   into a recycled buffer (verify does the same copy) and handed to `--threads` hashing
//!   threads that frame every record and check its HighwayHash-64, nothing else: the floor of
//!   verifying a V1 backup, on all cores. `v1_s2`: the decode alone (output consumed in place).
//!   Only these two run with `--v1`.
//!
//! The block files must be plain (not `cmp`) and belong to one stream: the stream's name (for the
//! checksum key) is taken from the path (`…/streams/NAME/msgs/N.blk`). A record whose checksum
//! does not match is counted and reported (`bad`), so a damaged input is not mistaken for fast.
//!
//! Prints one JSON object: per mode the wall seconds of every run, the bytes of block files
//! each run covered (for `v1`, `v1_bytes`: the decoded tar's bytes; `v1_blocks`: its block
//! members' bytes), the records hashed and the CPU seconds of every run of the `enc` and `v1`
//! modes (`enc_cpu`, `v1_cpu`); bench/run.py turns it into rows with min/median/max.
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[path = "common.rs"]
mod common;
use common::{cpu_secs, secs};

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

/// One block's work in a run: (records hashed, checksums wrong).
type BlockWork<'a> =
    dyn Fn(&(PathBuf, String, u32), &mut Vec<u8>) -> io::Result<(u64, u64)> + Sync + 'a;

/// One run over every file on `threads` threads; returns (seconds, records, bad).
fn par_run(
    files: &[(PathBuf, String, u32)],
    threads: usize,
    hash: bool,
) -> io::Result<(f64, u64, u64)> {
    par_each(files, threads, &|(p, stream, index), buf| {
        read_block(p, buf)?;
        Ok(if hash {
            hash_block(stream, *index, buf)
        } else {
            (0, 0)
        })
    })
}

/// One run of `work` over every file on `threads` threads, each thread taking the next file
/// and reusing one buffer; returns (seconds, records, bad).
fn par_each(
    files: &[(PathBuf, String, u32)],
    threads: usize,
    work: &BlockWork<'_>,
) -> io::Result<(f64, u64, u64)> {
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    let res = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = Vec::new();
                    let (mut n, mut bad) = (0, 0);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else {
                            return Ok((n, bad));
                        };
                        let (a, b) = work(f, &mut buf)?;
                        n += a;
                        bad += b;
                    }
                })
            })
            .collect();
        common::join_sum(hs)
    });
    let (n, bad) = res?;
    Ok((t.elapsed().as_secs_f64(), n, bad))
}

/// The account of a block file, from `…/ACC/streams/NAME/msgs/N.blk`.
fn account_of(p: &Path) -> io::Result<String> {
    p.ancestors()
        .nth(4)
        .and_then(|a| a.file_name())
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .ok_or_else(|| io::Error::other(format!("{}: no account dir", p.display())))
}

/// The encrypted floor's work on one block: its key file opened with `ring`, the block read
/// and decrypted whole in its buffer (`AssetKey::xor_block`, as verify does), then, with
/// `hash`, its records framed and hashed.
fn enc_block(
    ring: &jetdir::filestore::keys::KeyRing,
    account: &str,
    (p, stream, index): &(PathBuf, String, u32),
    buf: &mut Vec<u8>,
    hash: bool,
) -> io::Result<(u64, u64)> {
    let kp = p.with_extension("key");
    let kf = std::fs::read(&kp)?;
    let ctx = jetdir::filestore::keys::block_context(stream, *index);
    let k = ring
        .open_key_file(account, &ctx, &kf)
        .map_err(|e| io::Error::other(format!("{}: {e}", kp.display())))?;
    read_block(p, buf)?;
    k.xor_block(0, buf);
    Ok(if hash {
        hash_block(stream, *index, buf)
    } else {
        (0, 0)
    })
}

/// The block index of a tar member `msgs/N.blk` (any leading dirs).
fn v1_block_index(path: &Path) -> Option<u32> {
    let parent = path.parent()?.file_name()?;
    if parent != "msgs" || path.extension()? != "blk" {
        return None;
    }
    path.file_stem()?.to_str()?.parse().ok()
}

/// Reads exactly `size` bytes of `rd` into `buf`, zero-filling only beyond its previous length
/// (as verify's `read_member_into` does; `read_to_end` would zero-fill every block again).
fn read_member(rd: &mut impl Read, size: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.len() < size {
        buf.resize(size, 0);
    }
    buf.truncate(size);
    rd.read_exact(buf)
}

/// One run of the V1 floor: `file` (a V1 `stream.tar.s2` of stream `stream`) decoded on
/// `threads` threads, its tar walked, each block member copied into a recycled buffer and
/// hashed on `threads` hashing threads. Returns (wall, CPU, records, bad, block bytes).
fn v1_run(file: &Path, stream: &str, threads: usize) -> io::Result<(f64, f64, u64, u64, u64)> {
    use std::sync::{mpsc, Mutex};
    let c0 = cpu_secs();
    let t = Instant::now();
    let rd = jetdir::s2::decode_parallel(std::fs::File::open(file)?, threads);
    let (tx, rx) = mpsc::sync_channel::<(u32, Vec<u8>)>(threads);
    let rx = Mutex::new(rx);
    let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
    let (walked, hashed) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let back = back_tx.clone();
                let rx = &rx;
                s.spawn(move || {
                    let (mut n, mut bad) = (0u64, 0u64);
                    loop {
                        let got = rx
                            .lock()
                            .map_err(|_| ())
                            .and_then(|r| r.recv().map_err(|_| ()));
                        let Ok((i, b)) = got else {
                            return (n, bad);
                        };
                        let (a, c) = hash_block(stream, i, &b);
                        n += a;
                        bad += c;
                        let _ = back.send(b);
                    }
                })
            })
            .collect();
        let walk = (|| -> io::Result<u64> {
            let mut blocks = 0u64;
            let mut ar = tar::Archive::new(rd);
            for e in ar.entries()? {
                let mut e = e?;
                let size = e.size();
                match v1_block_index(&e.path()?) {
                    Some(i) => {
                        let mut b = back_rx.try_recv().unwrap_or_default();
                        read_member(&mut e, size as usize, &mut b)?;
                        blocks += size;
                        tx.send((i, b))
                            .map_err(|_| io::Error::other("hashers stopped"))?;
                    }
                    None => {
                        io::copy(&mut e, &mut io::sink())?;
                    }
                }
            }
            Ok(blocks)
        })();
        drop(tx);
        let hashed: Vec<(u64, u64)> = hs.into_iter().map(|h| h.join().unwrap_or((0, 0))).collect();
        (walk, hashed)
    });
    let blocks = walked?;
    let (n, bad) = hashed.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
    Ok((t.elapsed().as_secs_f64(), cpu_secs() - c0, n, bad, blocks))
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

/// One run of the pack floor with the verify of its source (`pack_verified`): `threads`
/// threads take the block files in turn, read each into a recycled buffer and check every
/// record's HighwayHash-64 (pack's one pass does the same read and check); this thread takes
/// the blocks back in order and writes them into the S2 framed writer (a copy into its
/// chunks, as pack's tar writer does), whose output is SHA-256-hashed and dropped. At most
/// `threads + 2` block buffers exist. Returns (wall seconds, CPU seconds, output bytes, bad).
fn pack_verified_run(
    files: &[(PathBuf, String, u32)],
    threads: usize,
) -> io::Result<(f64, f64, u64, u64)> {
    use sha2::Digest;
    use std::collections::BTreeMap;
    use std::sync::{mpsc, Mutex};
    let c0 = cpu_secs();
    let t = Instant::now();
    let next = AtomicUsize::new(0);
    let (done_tx, done_rx) = mpsc::sync_channel::<io::Result<(usize, Vec<u8>, u64)>>(threads);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..threads + 2 {
        let _ = free_tx.send(Vec::new());
    }
    let free_rx = Mutex::new(free_rx);
    let sink = ShaSink {
        h: sha2::Sha256::new(),
        n: 0,
    };
    let mut w = jetdir::s2::encode::ParFrameWriter::with_threads(sink, threads);
    let bad = std::thread::scope(|s| -> io::Result<u64> {
        for _ in 0..threads {
            let (done_tx, next, free_rx) = (done_tx.clone(), &next, &free_rx);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((p, stream, index)) = files.get(i) else {
                    return;
                };
                let got = free_rx.lock().ok().and_then(|r| r.recv().ok());
                let Some(mut buf) = got else { return };
                let res = read_block(p, &mut buf).map(|()| {
                    let bad = hash_block(stream, *index, &buf).1;
                    (i, buf, bad)
                });
                if done_tx.send(res).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let (mut want, mut bad) = (0usize, 0u64);
        let mut held: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        for r in done_rx.iter() {
            let (i, buf, b) = r?;
            bad += b;
            held.insert(i, buf);
            while let Some(buf) = held.remove(&want) {
                w.write_all(&buf)?;
                let _ = free_tx.send(buf);
                want += 1;
            }
        }
        Ok(bad)
    })?;
    let sink = w.finish()?;
    std::hint::black_box(sink.h.finalize());
    Ok((t.elapsed().as_secs_f64(), cpu_secs() - c0, sink.n, bad))
}

fn main() -> io::Result<()> {
    let mut repeats = 5usize;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut paths = Vec::new();
    let mut s2_stream: Option<PathBuf> = None;
    let mut pack = false;
    let mut key_file: Option<PathBuf> = None;
    let mut v1: Option<PathBuf> = None;
    let mut v1_stream = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeats" => repeats = args.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--s2-stream" => s2_stream = args.next().map(PathBuf::from),
            "--pack" => pack = true,
            "--key-file" => key_file = args.next().map(PathBuf::from),
            "--v1" => v1 = args.next().map(PathBuf::from),
            "--stream" => v1_stream = args.next().unwrap_or_default(),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    let threads = threads.max(1);
    if let Some(f) = &v1 {
        return v1_main(f, &v1_stream, threads, repeats);
    }
    if paths.is_empty() {
        eprintln!(
            "usage: floors [--repeats N] [--threads T] [--s2-stream FILE] [--pack] DIR/msgs/N.blk...\n\
             \x20      floors [--repeats N] [--threads T] --key-file K DIR/msgs/N.blk...\n\
             \x20      floors [--repeats N] [--threads T] --v1 stream.tar.s2 --stream NAME"
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
    if let Some(k) = &key_file {
        return enc_main(&files, bytes, k, threads, repeats);
    }
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

    let s2_par_once = |p: &Path| -> io::Result<(f64, f64, u64)> {
        let f = std::fs::File::open(p)?;
        let c0 = cpu_secs();
        let t = Instant::now();
        let n = jetdir::s2::decode_parallel_discarding(f, threads)?;
        Ok((t.elapsed().as_secs_f64(), cpu_secs() - c0, n))
    };
    let mut s2_bytes = 0;
    if let Some(p) = &s2_stream {
        s2_bytes = s2_par_once(p)?.2; // untimed: page cache warm
    }
    let (mut read, mut read_hash, mut hash, mut s2_par, mut s2_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut read_hash_cpu = Vec::new();
    let (mut pack_wall, mut pack_cpu, mut pack_out) = (Vec::new(), Vec::new(), 0u64);
    let (mut pv_wall, mut pv_cpu, mut pv_bad) = (Vec::new(), Vec::new(), 0u64);
    if pack {
        pack_run(&files, threads)?; // untimed: the encoder's buffers and threads warm
        pack_verified_run(&files, threads)?;
    }
    for _ in 0..repeats {
        read.push(par_run(&files, threads, false)?.0);
        let c0 = cpu_secs();
        read_hash.push(par_run(&files, threads, true)?.0);
        read_hash_cpu.push(cpu_secs() - c0);
        let t = Instant::now();
        let mut n = 0;
        for (stream, index, b) in &held {
            n += hash_block(stream, *index, b).0;
        }
        hash.push(t.elapsed().as_secs_f64());
        std::hint::black_box(n);
        if let Some(p) = &s2_stream {
            let (w, c, _) = s2_par_once(p)?;
            s2_par.push(w);
            s2_cpu.push(c);
        }
        if pack {
            let (w, c, n) = pack_run(&files, threads)?;
            pack_wall.push(w);
            pack_cpu.push(c);
            pack_out = n;
            let (w, c, _, b) = pack_verified_run(&files, threads)?;
            pv_wall.push(w);
            pv_cpu.push(c);
            pv_bad = b;
        }
    }
    println!(
        "{{\"threads\": {threads}, \"bytes\": {bytes}, \"records\": {records}, \"bad\": {bad}, \
         \"read\": {}, \"read_hash\": {}, \"read_hash_cpu\": {}, \"hash\": {}, \
         \"hash_bytes\": {held_bytes}, \
         \"s2_par\": {}, \"s2_par_cpu\": {}, \"s2_bytes\": {s2_bytes}, \"pack\": {}, \
         \"pack_cpu\": {}, \"pack_out\": {pack_out}, \"pack_verified\": {}, \
         \"pack_verified_cpu\": {}, \"pack_verified_bad\": {pv_bad}}}",
        secs(&read),
        secs(&read_hash),
        secs(&read_hash_cpu),
        secs(&hash),
        secs(&s2_par),
        secs(&s2_cpu),
        secs(&pack_wall),
        secs(&pack_cpu),
        secs(&pv_wall),
        secs(&pv_cpu)
    );
    Ok(())
}

/// `--key-file`: the encrypted floor (`enc`), the same without the hash (`enc_xor`) and the
/// read of the encrypted files alone (`read`).
fn enc_main(
    files: &[(PathBuf, String, u32)],
    bytes: u64,
    key_file: &Path,
    threads: usize,
    repeats: usize,
) -> io::Result<()> {
    let ring = jetdir::filestore::keys::KeyRing {
        key: Some(jetdir::filestore::keys::ServerKey::from_file_content(
            &std::fs::read(key_file)?,
        )),
        ..Default::default()
    };
    let account = match files.first() {
        Some((p, _, _)) => account_of(p)?,
        None => String::new(),
    };
    let enc = |hash: bool| {
        let c0 = cpu_secs();
        let r = par_each(files, threads, &|f, buf| {
            enc_block(&ring, &account, f, buf, hash)
        });
        r.map(|(w, n, bad)| (w, cpu_secs() - c0, n, bad))
    };
    // untimed: page cache warm, and a check that the records verify
    let (_, _, records, bad) = enc(true)?;
    enc(false)?;
    par_run(files, threads, false)?;
    let (mut read, mut x, mut x_cpu, mut e, mut e_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats {
        read.push(par_run(files, threads, false)?.0);
        let (w, c, _, _) = enc(false)?;
        x.push(w);
        x_cpu.push(c);
        let (w, c, _, _) = enc(true)?;
        e.push(w);
        e_cpu.push(c);
    }
    println!(
        "{{\"threads\": {threads}, \"bytes\": {bytes}, \"records\": {records}, \"bad\": {bad}, \
         \"read\": {}, \"enc_xor\": {}, \"enc_xor_cpu\": {}, \"enc\": {}, \"enc_cpu\": {}}}",
        secs(&read),
        secs(&x),
        secs(&x_cpu),
        secs(&e),
        secs(&e_cpu)
    );
    Ok(())
}

/// `--v1`: the V1 backup's floor (`v1`: decode, tar walk, blocks hashed on all cores) and its
/// decode alone (`v1_s2`).
fn v1_main(file: &Path, stream: &str, threads: usize, repeats: usize) -> io::Result<()> {
    let s2_once = || -> io::Result<(f64, u64)> {
        let f = std::fs::File::open(file)?;
        let t = Instant::now();
        let n = jetdir::s2::decode_parallel_discarding(f, threads)?;
        Ok((t.elapsed().as_secs_f64(), n))
    };
    // untimed: page cache warm, and a check that the records verify
    let (_, _, records, bad, blocks) = v1_run(file, stream, threads)?;
    let (_, tar_bytes) = s2_once()?;
    let (mut v, mut v_cpu, mut s2) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats {
        let (w, c, ..) = v1_run(file, stream, threads)?;
        v.push(w);
        v_cpu.push(c);
        s2.push(s2_once()?.0);
    }
    println!(
        "{{\"threads\": {threads}, \"v1_bytes\": {tar_bytes}, \"v1_blocks\": {blocks}, \
         \"records\": {records}, \"bad\": {bad}, \"v1\": {}, \"v1_cpu\": {}, \"v1_s2\": {}}}",
        secs(&v),
        secs(&v_cpu),
        secs(&s2)
    );
    Ok(())
}
