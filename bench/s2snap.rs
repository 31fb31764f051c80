//! S2 (jetdir) against Snappy (the `snap` crate) on the same data, one core.
//!
//!     cargo run --profile profiling --example s2snap -- [--repeats N] [--max-mib M] FILE...
//!
//! Reads the FILEs (concatenated, at most `--max-mib` MiB) into memory, then times on this one
//! thread, `--repeats` times each, interleaved (so a busy moment hits every codec alike):
//!
//! * encoding: jetdir's S2 framed stream (`compress_stream`: `S2sTwO`, 1 MiB chunks, masked
//!   CRC-32C) against `snap::write::FrameEncoder` (`sNaPpY`, 64 KiB chunks, masked CRC-32C);
//! * decoding: `jetdir::s2::FrameReader` against `snap::read::FrameDecoder`, each streaming its
//!   own encoding of the data into the same 64 KiB buffer (CRCs checked by both); the decoded
//!   bytes are compared with the input once, before timing.
//!
//! `--decode-only` skips the encoding timings (for profiling the decoders).
//! `--s2-stream FILE` also times jetdir decoding a framed stream written by someone else (the
//! server's `stream.tar.s2`); snap cannot read S2.
//!
//! For `perf stat` of one decoder alone: `--decode FILE` (jetdir's `FrameReader`) or
//! `--snap-decode FILE` (`snap::read::FrameDecoder`) decodes that framed stream `--repeats`
//! times and does nothing else; `--write-s2 FILE` / `--write-snap FILE` write the two
//! encodings of the input FILEs for them.
//!
//! Prints one JSON object: per codec and operation the wall seconds of every run and the bytes
//! (uncompressed) they processed; bench/run.py turns it into rows with min/median/max.
use std::io::{self, Read, Write};
use std::time::Instant;

use jetdir::s2::{encode::compress_stream, FrameReader};

fn read_input(files: &[String], max: usize) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    for f in files {
        if data.len() >= max {
            break;
        }
        let mut h = std::fs::File::open(f)?;
        let room = (max - data.len()) as u64;
        (&mut h).take(room).read_to_end(&mut data)?;
    }
    Ok(data)
}

/// Streams `r` into a 64 KiB buffer until the end; returns the bytes read.
fn drain(mut r: impl Read, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        match r.read(buf)? {
            0 => return Ok(n),
            k => n += k as u64,
        }
    }
}

fn snap_encode(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut w = snap::write::FrameEncoder::new(Vec::with_capacity(data.len() / 2));
    w.write_all(data)?;
    w.into_inner().map_err(|e| io::Error::other(e.to_string()))
}

fn time<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<(f64, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

fn secs(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|s| format!("{s:.6}")).collect();
    format!("[{}]", parts.join(", "))
}

fn main() -> io::Result<()> {
    let mut repeats = 5usize;
    let mut max_mib = 256usize;
    let mut s2_stream: Option<String> = None;
    let mut decode_only = false;
    let mut files = Vec::new();
    let mut only: Option<(bool, String)> = None;
    let (mut write_s2, mut write_snap) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeats" => repeats = args.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            "--max-mib" => max_mib = args.next().and_then(|v| v.parse().ok()).unwrap_or(256),
            "--s2-stream" => s2_stream = args.next(),
            "--decode-only" => decode_only = true,
            "--decode" => only = args.next().map(|f| (true, f)),
            "--snap-decode" => only = args.next().map(|f| (false, f)),
            "--write-s2" => write_s2 = args.next(),
            "--write-snap" => write_snap = args.next(),
            _ => files.push(a),
        }
    }
    if let Some((ours, f)) = only {
        let data = std::fs::read(f)?;
        let mut buf = vec![0u8; 64 << 10];
        let mut n = 0;
        for _ in 0..repeats {
            n += if ours {
                drain(FrameReader::new(&data[..]), &mut buf)?
            } else {
                drain(snap::read::FrameDecoder::new(&data[..]), &mut buf)?
            };
        }
        println!("{{\"decoded\": {n}}}");
        return Ok(());
    }
    if files.is_empty() {
        eprintln!("usage: s2snap [--repeats N] [--max-mib M] [--s2-stream FILE] FILE...");
        std::process::exit(2);
    }
    let data = read_input(&files, max_mib << 20)?;
    let mut buf = vec![0u8; 64 << 10];

    // One untimed round that also checks both round trips.
    let s2 = compress_stream(&data);
    let sn = snap_encode(&data)?;
    let mut back = Vec::with_capacity(data.len());
    FrameReader::new(&s2[..]).read_to_end(&mut back)?;
    if back != data {
        return Err(io::Error::other("jetdir S2 round trip differs"));
    }
    back.clear();
    snap::read::FrameDecoder::new(&sn[..]).read_to_end(&mut back)?;
    if back != data {
        return Err(io::Error::other("snap round trip differs"));
    }
    drop(back);
    if let Some(f) = write_s2 {
        std::fs::write(f, &s2)?;
    }
    if let Some(f) = write_snap {
        std::fs::write(f, &sn)?;
    }
    let other = match &s2_stream {
        Some(p) => Some(std::fs::read(p)?),
        None => None,
    };
    let other_len = match &other {
        Some(o) => drain(FrameReader::new(&o[..]), &mut buf)?,
        None => 0,
    };

    let (mut s2_enc, mut sn_enc, mut s2_dec, mut sn_dec, mut ot_dec) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..repeats {
        if !decode_only {
            s2_enc.push(time(|| Ok(compress_stream(&data)))?.0);
            sn_enc.push(time(|| snap_encode(&data))?.0);
        }
        let (t, n) = time(|| drain(FrameReader::new(&s2[..]), &mut buf))?;
        s2_dec.push(t);
        let (u, m) = time(|| drain(snap::read::FrameDecoder::new(&sn[..]), &mut buf))?;
        sn_dec.push(u);
        if n != data.len() as u64 || m != data.len() as u64 {
            return Err(io::Error::other("decoded length differs"));
        }
        if let Some(o) = &other {
            ot_dec.push(time(|| drain(FrameReader::new(&o[..]), &mut buf))?.0);
        }
    }
    println!(
        "{{\"bytes\": {}, \"s2_size\": {}, \"snap_size\": {}, \"s2_encode\": {}, \"snap_encode\": {}, \
         \"s2_decode\": {}, \"snap_decode\": {}, \"other_bytes\": {}, \"other_size\": {}, \"other_decode\": {}}}",
        data.len(),
        s2.len(),
        sn.len(),
        secs(&s2_enc),
        secs(&sn_enc),
        secs(&s2_dec),
        secs(&sn_dec),
        other_len,
        other.as_ref().map_or(0, Vec::len),
        secs(&ot_dec),
    );
    Ok(())
}
