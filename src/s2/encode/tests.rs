use super::*;
use crate::s2::{decode_block, decode_stream, FrameReader};
use std::io::Read;

use crate::testdata::Rng;

/// Message-block-like data: records with a binary header, a subject, NATS headers, half random
/// and half JSON-ish payload, and an 8-byte hash (like bench/run.py's stream).
fn records(seed: u64, size: usize) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let words = [
        "order",
        "customer",
        "shipped",
        "paid",
        "pending",
        "warehouse",
        "sku",
        "quantity",
        "price",
        "currency",
        "EUR",
        "USD",
        "region",
        "eu-west",
        "us-east",
        "priority",
    ];
    let mut out = Vec::with_capacity(size + 2048);
    let mut seq = 1u64;
    while out.len() < size {
        let subj = format!("bench.s{:02}.evt", seq % 16);
        let hdr = format!(
            "NATS/1.0\r\nX-Bench-Seq: {seq:07}\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        let k = 100 + r.below(400);
        let mut payload = r.bytes(k);
        while payload.len() < 1000 {
            let w = format!(
                "{{\"{}\":\"{}-{}\",\"{}\":{}}},",
                words[r.below(16)],
                words[r.below(16)],
                r.below(100_000),
                words[r.below(16)],
                r.below(1000)
            );
            payload.extend_from_slice(w.as_bytes());
        }
        let len = 22 + subj.len() + 4 + hdr.len() + payload.len() + 8;
        out.extend_from_slice(&(len as u32 | 1 << 31).to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(1_700_000_000_000_000_000u64 + seq * 1000).to_le_bytes());
        out.extend_from_slice(&(subj.len() as u16).to_le_bytes());
        out.extend_from_slice(subj.as_bytes());
        out.extend_from_slice(&(hdr.len() as u32).to_le_bytes());
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&r.next().to_le_bytes());
        seq += 1;
    }
    out.truncate(size);
    out
}

fn roundtrip(src: &[u8]) -> usize {
    let enc = encode_block(src);
    let mut dec = Vec::new();
    decode_block(&enc, &mut dec).unwrap_or_else(|e| panic!("len {}: {e}", src.len()));
    assert!(dec == src, "roundtrip mismatch for {} bytes", src.len());
    enc.len()
}

#[test]
fn small_inputs_of_every_length() {
    let mut r = Rng(7);
    for n in 0..300 {
        roundtrip(&r.bytes(n));
        roundtrip(&vec![b'a'; n]);
        let pat: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        roundtrip(&pat);
    }
    assert_eq!(encode_block(b""), vec![0]);
    assert_eq!(encode_block(b"abc"), vec![3, 2 << 2, b'a', b'b', b'c']);
}

#[test]
fn random_data_is_stored_as_one_literal() {
    let src = Rng(99).bytes(100_000);
    let enc = encode_block(&src);
    // uvarint(100000) = 3 bytes, literal tag 62<<2 with 3 length bytes, then the data.
    assert_eq!(enc.len(), 3 + 4 + 100_000);
    assert_eq!(enc[3], 62 << 2);
    roundtrip(&src);
}

#[test]
fn repetitive_data_compresses_hard() {
    // Runs: one byte, short periods, long periods.
    for period in [1usize, 2, 3, 4, 5, 7, 8, 13, 64, 100, 1000] {
        let unit: Vec<u8> = (0..period).map(|i| (i * 31 + 7) as u8).collect();
        let src: Vec<u8> = unit.iter().cycle().take(300_000).copied().collect();
        let k = roundtrip(&src);
        assert!(k < 3000, "period {period}: {k} bytes");
    }
    // A long run after a literal: one copy plus a 5-byte repeat code (length > 65 795).
    let mut src = b"0123456789".to_vec();
    src.extend(std::iter::repeat_n(b'z', 200_000));
    let k = roundtrip(&src);
    assert!(k < 30, "{k}");
}

#[test]
fn far_offsets_use_4_byte_copies() {
    // 200 KiB of records twice: the second half is copies from 200 KiB back.
    let half = records(8, 200 << 10);
    let alone = roundtrip(&half);
    let mut src = half.clone();
    src.extend_from_slice(&half);
    let k = roundtrip(&src);
    assert!(k < alone + alone / 5, "{k} vs {alone}");
    // Mixed near/far repeats with mutations.
    let mut r = Rng(11);
    for _ in 0..20 {
        let k = 1 + r.below(3000);
        let mut v = r.bytes(k);
        while v.len() < 300_000 {
            let from = r.below(v.len());
            let len = 1 + r.below(200.min(v.len() - from));
            let piece = v[from..from + len].to_vec();
            v.extend_from_slice(&piece);
            if r.below(3) == 0 {
                let k = r.below(20);
                let extra = r.bytes(k);
                v.extend_from_slice(&extra);
            }
        }
        roundtrip(&v);
    }
}

#[test]
fn random_structured_inputs_roundtrip() {
    let mut r = Rng(0x5eed);
    for round in 0..300 {
        let n = r.below(if round % 10 == 0 { 200_000 } else { 5000 });
        let alphabet = 1 + r.below(8);
        let src: Vec<u8> = (0..n).map(|_| (r.below(alphabet) * 37) as u8).collect();
        roundtrip(&src);
    }
}

#[test]
fn message_records_roundtrip_and_beat_snappy() {
    let src = records(3, 4 << 20);
    let ours = compress_stream(&src);
    assert_eq!(decode_stream(&ours).unwrap(), src);
    let mut snap = snap::write::FrameEncoder::new(Vec::new());
    snap.write_all(&src).unwrap();
    let snap = snap.into_inner().unwrap();
    // The random half of each payload does not compress; the text half does.
    assert!(
        ours.len() < src.len() * 3 / 4,
        "{} of {}",
        ours.len(),
        src.len()
    );
    assert!(
        ours.len() <= snap.len(),
        "ours {} vs snap {}",
        ours.len(),
        snap.len()
    );
}

#[test]
fn real_blocks_roundtrip() {
    let mut blocks = 0;
    for name in ["v2.15.1-plain", "v2.15.1-s2", "v2.9.10-legacy"] {
        let d = crate::testdata::sample(name);
        for e in walkdir::WalkDir::new(d.path()) {
            let e = e.unwrap();
            let p = e.path();
            if p.extension().is_some_and(|x| x == "blk") {
                let raw = std::fs::read(p).unwrap();
                let plain = crate::filestore::block::plain_block(&raw)
                    .unwrap()
                    .0
                    .into_owned();
                roundtrip(&plain);
                assert_eq!(decode_stream(&compress_stream(&plain)).unwrap(), plain);
                blocks += 1;
            }
        }
    }
    assert!(blocks >= 10, "{blocks} blocks");
}

#[test]
fn stream_layout() {
    let s = compress_stream(b"");
    assert_eq!(s, STREAM_IDENTIFIER.to_vec());
    let s = compress_stream(b"hello");
    // identifier, then an uncompressed chunk: 01, length 9, CRC, data.
    assert_eq!(&s[10..14], &[1, 9, 0, 0]);
    assert_eq!(&s[14..18], &masked_crc(b"hello").to_le_bytes());
    assert_eq!(&s[18..], b"hello");
    // 2.5 chunks of text: 3 compressed chunks, identifier S2sTwO.
    let src = records(1, CHUNK * 5 / 2);
    let s = compress_stream(&src);
    let mut fr = FrameReader::new(s.as_slice());
    let mut v = Vec::new();
    fr.read_to_end(&mut v).unwrap();
    assert_eq!(v, src);
    assert_eq!(fr.identifier_seen(), Some("S2sTwO"));
    assert_eq!(fr.chunks(), 4);
}

/// Writes `src` in pseudo-random pieces.
fn write_pieces<W: Write>(w: &mut W, src: &[u8], seed: u64) {
    let mut r = Rng(seed | 1);
    let mut p = 0;
    while p < src.len() {
        let n = (1 + r.below(3 * CHUNK / 2)).min(src.len() - p);
        w.write_all(&src[p..p + n]).unwrap();
        p += n;
    }
}

#[test]
fn parallel_writer_is_deterministic() {
    let mut src = records(9, 5 * CHUNK + 12345);
    src.extend_from_slice(&Rng(4).bytes(CHUNK)); // an incompressible chunk too
    let want = compress_stream(&src);
    for threads in [1, 2, 3, 8] {
        for seed in [1u64, 2, 3] {
            let mut w = ParFrameWriter::with_threads(Vec::new(), threads);
            write_pieces(&mut w, &src, seed);
            let got = w.finish().unwrap();
            assert!(got == want, "threads {threads} seed {seed}");
        }
    }
    // Below one chunk no pool starts; same bytes.
    let small = records(2, 1000);
    let mut w = ParFrameWriter::new(Vec::new());
    w.write_all(&small).unwrap();
    assert_eq!(w.finish().unwrap(), compress_stream(&small));
    // Exactly one chunk, and empty.
    let one = records(2, CHUNK);
    let mut w = ParFrameWriter::new(Vec::new());
    w.write_all(&one).unwrap();
    assert_eq!(w.finish().unwrap(), compress_stream(&one));
    assert_eq!(
        ParFrameWriter::new(Vec::new()).finish().unwrap(),
        STREAM_IDENTIFIER.to_vec()
    );
}

/// Fails every write after `budget` bytes.
struct Failing {
    budget: usize,
}
impl Write for Failing {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.len() > self.budget {
            return Err(io::Error::other("disk full"));
        }
        self.budget -= b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn parallel_writer_reports_write_errors() {
    let src = records(5, 12 * CHUNK);
    for budget in [0usize, 5, 100, CHUNK, 3 * CHUNK] {
        let mut w = ParFrameWriter::with_threads(Failing { budget }, 2);
        let r = w.write_all(&src).and_then(|()| w.finish().map(|_| ()));
        let e = r.unwrap_err();
        assert!(e.to_string().contains("disk full"), "{budget}: {e}");
    }
    // Dropping a writer mid-stream does not hang.
    let mut w = ParFrameWriter::with_threads(Vec::new(), 2);
    w.write_all(&src).unwrap();
    drop(w);
}

#[test]
fn read_from_matches_write() {
    let src = records(12, 3 * CHUNK + 777);
    let want = compress_stream(&src);
    for threads in [1, 2] {
        let mut w = ParFrameWriter::with_threads(Vec::new(), threads);
        // Mixed: some bytes written, some read straight from a reader.
        w.write_all(&src[..1000]).unwrap();
        let mut r = &src[1000..2 * CHUNK + 5];
        w.read_from(&mut r, (2 * CHUNK + 5 - 1000) as u64).unwrap();
        assert!(r.is_empty());
        w.write_all(&src[2 * CHUNK + 5..]).unwrap();
        assert!(w.finish().unwrap() == want, "threads {threads}");
    }
    // A reader that ends early is an error, not a short stream.
    let mut w = ParFrameWriter::with_threads(Vec::new(), 2);
    let mut r = &src[..100];
    let e = w.read_from(&mut r, 101).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
}
