use super::*;
use crate::filestore::block::{compress_cmp_block, decompress_cmp_block, is_cmp_block};
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
    crate::base::bytes::put_uvarint(&mut b, len);
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
        let key = crate::base::hash::key_for(&format!("CMP-{i}"));
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
            let h = crate::base::hash::hh64(&key, &[&r[4..12], &r[12..20], subj, hdr, msg]);
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
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), vec![7], b"hello hello hello hello".to_vec()];
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
            tags.extend_from_slice(&[2 | (((len - 1) as u8) << 2), off as u8, (off >> 8) as u8]);
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
    crate::base::bytes::put_uvarint(&mut block, want.len() as u64);
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
    // The size field is advisory (the server never reads it; 2.11.7 to 2.12.4 store the
    // compressed length there): any value decodes to the same block.
    let hl = {
        let mut h = b"cmp\x01".to_vec();
        crate::base::bytes::put_uvarint(&mut h, plain.len() as u64);
        h.len()
    };
    for declared in [
        plain.len() as u64 - 1,
        plain.len() as u64 + 1,
        (good.len() - hl) as u64,
        0,
    ] {
        let mut m = b"cmp\x01".to_vec();
        crate::base::bytes::put_uvarint(&mut m, declared);
        m.extend_from_slice(&good[hl..]);
        assert_eq!(
            decompress_cmp_block(&m).unwrap(),
            plain,
            "declared {declared}"
        );
    }
    // Too short for header + tail; incomplete size varint; an empty stream is just the tail.
    assert!(matches!(
        decompress_cmp_block(&good[..hl + 7]),
        Err(S2Error::Truncated { .. })
    ));
    assert!(matches!(
        decompress_cmp_block(b"cmp\x01\x80"),
        Err(S2Error::BadCmpHeader { offset: 4, .. })
    ));
    assert_eq!(
        decompress_cmp_block(b"cmp\x01\x07abcdefgh").unwrap(),
        b"abcdefgh"
    );
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

/// A compressed block is read as nats-server reads it (klauspost's S2 reader over a Go
/// bytes.Reader, which it seeks past a skippable chunk): trailing bytes that form a skippable
/// chunk running past the end end the stream; a backup's stream (read strictly) is truncated
/// there. A reserved chunk type, a data chunk or a header cut short fail either way. The
/// buffer decoder and the streaming one (`decompress_cmp_reader`) agree.
#[test]
fn cmp_block_trailing_skippable_chunk_past_the_end() {
    let plain: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
    let good = compress_cmp_block(&plain);
    let (body, tail) = good.split_at(good.len() - 8);
    let with = |extra: &[u8]| {
        let mut m = body.to_vec();
        m.extend_from_slice(extra);
        m.extend_from_slice(tail);
        m
    };
    use crate::filestore::block::{decompress_cmp_block_into, CmpReader};
    let streamed_as = |m: &[u8], rd| {
        let mut out = Vec::new();
        crate::filestore::block::decompress_cmp_reader(m, m.len() as u64, &mut out, rd)
            .unwrap()
            .map(|()| out)
    };
    let streamed = |m: &[u8]| streamed_as(m, CmpReader::SeeksPastEnd);
    let whole_as = |m: &[u8], rd| {
        let mut out = Vec::new();
        decompress_cmp_block_into(m, &mut out, rd).map(|()| out)
    };
    // skippable types (0x80-0xfd) and padding (0xfe), body declared past the end
    for kind in [0x80u8, 0xe7, 0xfd, 0xfe] {
        let m = with(&[kind, 0x59, 0xe5, 0xd9, 0, 0, 0]);
        assert_eq!(decompress_cmp_block(&m).unwrap(), plain, "{kind:#x}");
        assert_eq!(streamed(&m).unwrap(), plain, "{kind:#x}");
        // the reader of 2.14.5 and later checks the end first: "corrupt input"
        assert!(whole_as(&m, CmpReader::ChecksEnd).is_err(), "{kind:#x}");
        assert!(streamed_as(&m, CmpReader::ChecksEnd).is_err(), "{kind:#x}");
        // a skippable chunk that ends within the bytes is skipped by both readers
        let inside = with(&[kind, 0x03, 0x00, 0x00, 7, 7, 7]);
        for rd in [CmpReader::SeeksPastEnd, CmpReader::ChecksEnd] {
            assert_eq!(whole_as(&inside, rd).unwrap(), plain, "{kind:#x} {rd:?}");
            assert_eq!(streamed_as(&inside, rd).unwrap(), plain, "{kind:#x} {rd:?}");
        }
        // the same bytes in a backup's stream: truncated
        let mut strict = body.to_vec();
        strict.extend_from_slice(&[kind, 0x59, 0xe5, 0xd9, 0, 0, 0]);
        let stream = &strict[hl_of(&good)..];
        assert!(matches!(
            decode_stream(stream),
            Err(S2Error::Truncated { what: "chunk", .. })
        ));
        assert!(read_all(FrameReader::new(stream), 7).is_err());
    }
    // a reserved unskippable type, a data chunk past the end, a header cut short: errors
    for extra in [
        &[0x3cu8, 0x0d, 0x00, 0x0c, 1, 2][..],
        &[0x00, 0x40, 0x00, 0x00, 1, 2, 3, 4],
        &[0x01, 0x40, 0x00, 0x00, 1, 2, 3, 4],
        &[0xe7, 0x01],
    ] {
        let m = with(extra);
        assert!(decompress_cmp_block(&m).is_err(), "{extra:x?}");
        assert!(streamed(&m).is_err(), "{extra:x?}");
    }
}

/// Length of a cmp block's header (magic, algorithm, size varint).
fn hl_of(block: &[u8]) -> usize {
    let mut c = crate::base::bytes::Cursor::new(&block[4..]);
    c.uvarint().unwrap();
    4 + c.pos()
}

#[test]
fn cmp_blocks_decoded_into_one_reused_buffer() {
    // verify decodes every compressed block of a thread into the same buffer: whatever the
    // previous block left there (a longer block, a damaged one cut midway), each result is
    // exactly what a fresh decode gives, error included
    use crate::filestore::block::{decompress_cmp_block_into, plain_block, plain_block_in};
    let big: Vec<u8> = (0..400_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let small: Vec<u8> = (0..3000u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
    let mut damaged = compress_cmp_block(&big);
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x5a;
    let blocks = [
        compress_cmp_block(&big),
        damaged,
        compress_cmp_block(&small),
        big.clone(), // a plain block: borrowed as it is
        compress_cmp_block(b"12345678"),
        b"cmp\x01\x80".to_vec(),
        compress_cmp_block(&small),
    ];
    let mut dec = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let fresh = plain_block(b).map(|(p, c)| (p.into_owned(), c));
        let reused =
            plain_block_in(b, &mut dec, Default::default()).map(|(p, c)| (p.into_owned(), c));
        assert_eq!(reused, fresh, "block {i}");
    }
    assert!(
        plain_block(&blocks[1]).is_err(),
        "the damaged block is damaged"
    );
    let mut out = vec![1u8; 10];
    decompress_cmp_block_into(&blocks[2], &mut out, Default::default()).unwrap();
    assert_eq!(out, small);
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
    let cmp = tarball("v2.15.1-s2.tar.gz")["v2.15.1-s2/store/jetstream/$G/streams/CMP/msgs/2.blk"]
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
#[ignore = "a throughput report, not a check: cargo test --release -- --ignored --nocapture s2_throughput"]
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
        recs.extend_from_slice(
            &b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. "
                .repeat(13)[..n],
        );
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
