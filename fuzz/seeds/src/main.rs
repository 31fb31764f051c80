//! `jetdir-fuzz-seeds FIXTURES OUT`: one directory of seed inputs per fuzz target under OUT,
//! taken from the real-server fixtures (stores, backups) plus a few hand-built files for formats
//! the fixtures lack (sched.db, sources.db, a pack manifest).
use jetdir::fuzzing::pack_files;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, fixtures, out] = args.as_slice() else {
        eprintln!("usage: jetdir-fuzz-seeds FIXTURES OUT");
        std::process::exit(2);
    };
    let mut s = Seeds::default();
    gather(Path::new(fixtures), &mut s);
    let mut total = 0;
    for (target, files) in &s.0 {
        let dir = Path::new(out).join(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        for (i, data) in files.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i:03}")), data).expect("write seed");
        }
        total += files.len();
        println!("{target}: {} seeds", files.len());
    }
    println!("{total} seeds in {out}");
}

#[derive(Default)]
struct Seeds(BTreeMap<&'static str, Vec<Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, data: Vec<u8>) {
        let v = self.0.entry(target).or_default();
        if !v.contains(&data) {
            v.push(data);
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn gather(fx: &Path, s: &mut Seeds) {
    // --- store files, by name, and one verify_store seed per stream dir
    let mut files = Vec::new();
    for set in [
        "v2.15.1-plain",
        "v2.15.1-s2",
        "v2.11.11-s2",
        "v2.9.10-legacy",
        "v2.15.1-enc-chacha",
    ] {
        walk(&fx.join(set).join("store"), &mut files);
    }
    let mut streams: BTreeMap<PathBuf, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for f in &files {
        let data = fs::read(f).expect("read fixture");
        let n = name(f);
        if n.ends_with(".blk") {
            let t = if data.starts_with(b"cmp") {
                "block_cmp"
            } else {
                "block_plain"
            };
            if data.len() <= 64 << 10 {
                s.add(t, data.clone());
            }
            if t == "block_cmp" {
                s2_chunks(&data[5..data.len().saturating_sub(8)], s);
            }
        } else if n == "index.db" {
            s.add("index_db", data.clone());
        } else if n.ends_with(".idx") || n.ends_with(".fss") {
            s.add("legacy", data.clone());
        } else if n == "o.dat" {
            s.add("consumer_state", data.clone());
        } else if n == "meta.inf" {
            s.add("meta", data.clone());
        } else if n == "thw.db" || n == "sched.db" || n == "sources.db" {
            s.add("aux_state", data.clone());
        }
        // <set>/store/jetstream/$G/streams/<stream>/...
        let comps: Vec<String> = f
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if let Some(i) = comps.iter().position(|c| c == "jetstream") {
            let stream_dir: PathBuf = comps[..i + 4].iter().collect();
            let rel = comps[i..].join("/");
            streams.entry(stream_dir).or_default().push((rel, data));
        }
    }
    for (dir, fs_) in &streams {
        let size: usize = fs_.iter().map(|(_, d)| d.len()).sum();
        if size > 40 << 10 {
            eprintln!(
                "seeds: {} is {size} bytes: not a verify_store seed",
                dir.display()
            );
            continue;
        }
        let mut v = vec![0u8];
        v.extend(pack_files(
            fs_.iter().map(|(n, d)| (n.as_str(), d.as_slice())),
        ));
        s.add("verify_store", v);
    }
    // hand-built aux files: sched.db (one schedule) and sources.db (one source)
    let mut sched = vec![1u8];
    sched.extend(1u64.to_le_bytes());
    sched.extend(5u64.to_le_bytes());
    sched.extend(5u16.to_le_bytes());
    sched.extend(b"a.b.c");
    sched.extend([0x80, 0x94, 0xeb, 0xdc, 0x03, 4]);
    s.add("aux_state", sched);
    let mut sources = vec![1u8];
    sources.extend(1u64.to_le_bytes());
    sources.extend(9u64.to_le_bytes());
    sources.push(3);
    sources.extend(b"SRC");
    sources.push(8);
    sources.push(6);
    sources.extend(b"SRC $G");
    s.add("aux_state", sources);

    // raft group files, hand-built (no clustered store among the fixtures): first byte picks
    // the parser (0 peers.idx, 1 tav.idx, 2 commit index, 3 snapshot, 4 snapshot name)
    let mut peers = vec![0u8];
    peers.extend(3u32.to_le_bytes());
    peers.extend(2u32.to_le_bytes());
    peers.extend(b"abcdefghijklmnop");
    peers.extend(7u16.to_le_bytes());
    s.add("raft", peers.clone());
    let mut tav = vec![1u8];
    tav.extend(5u64.to_le_bytes());
    tav.extend(b"abcdefgh");
    s.add("raft", tav);
    let mut commit = vec![2u8];
    commit.extend(42u64.to_le_bytes());
    commit.extend([0u8; 8]);
    s.add("raft", commit);
    let mut snap = vec![3u8];
    snap.extend(5u64.to_le_bytes());
    snap.extend(42u64.to_le_bytes());
    snap.extend(((peers.len() - 1) as u32).to_le_bytes());
    snap.extend(&peers[1..]);
    snap.extend(b"snapshot data");
    snap.extend([0u8; 8]);
    s.add("raft", snap);
    s.add("raft", b"\x04snap.5.42".to_vec());
    // message schedules: message time and clock (i64 LE), the pattern, NUL, the time zone
    let t0: i64 = 1_790_000_000_123_456_789;
    for (pat, zone) in [
        ("@at 2026-11-30T12:00:00Z", None),
        ("@every 1h30m", None),
        ("@every 500ms", None),
        ("*/5 * * * * *", None),
        ("0 30 9 * jan-mar mon-fri", None),
        ("0 0 0 29 2 ?", Some("UTC")),
        ("@weekly", Some("Europe/Amsterdam")),
        ("0 0 0 31 4 *", None),
    ] {
        let mut v = t0.to_le_bytes().to_vec();
        v.extend((t0 + 7_200_000_000_000).to_le_bytes());
        v.extend(pat.as_bytes());
        if let Some(z) = zone {
            v.push(0);
            v.extend(z.as_bytes());
        }
        s.add("schedule", v);
    }
    // stream group entries (8: streamMsgOp, purge; 9: binary and JSON stream snapshots) and
    // consumer group entries (10: length-prefixed delivered/ack ops; 11: an o.dat-encoded
    // snapshot), as nats-server encodes them
    let mut msg = vec![8u8, 4];
    msg.extend(41u64.to_le_bytes());
    msg.extend(1_700_000_000_000_000_000u64.to_le_bytes());
    msg.extend(3u16.to_le_bytes());
    msg.extend(b"a.b");
    msg.extend(0u16.to_le_bytes());
    msg.extend(0u16.to_le_bytes());
    msg.extend(2u32.to_le_bytes());
    msg.extend(b"hi");
    msg.push(1);
    s.add("raft", msg);
    s.add("raft", b"\x08\x05{\"stream\":\"S\",\"last_seq\":10}".to_vec());
    s.add("raft", b"\x08\x0f{\"First\":5,\"Num\":3}".to_vec());
    s.add("raft", vec![9, 42, 1, 5, 100, 1, 10, 0, 5, 33, 2, 3]);
    s.add("raft", b"\x09{\"messages\":2,\"last_seq\":6,\"deleted\":[5]}".to_vec());
    s.add("raft", vec![10, 5, 7, 1, 11, 1, 0, 3, 8, 1, 11, 9, 10, 7, 0, 0, 0, 0, 0, 0, 0]);
    s.add("raft", vec![11, 22, 2, 1, 1, 3, 3, 1, 0, 4, 1, 0, 0]);

    // --- backups
    let mut bfiles = Vec::new();
    walk(&fx.join("backups"), &mut bfiles);
    walk(&fx.join("samples/backups"), &mut bfiles);
    for f in &bfiles {
        let data = fs::read(f).expect("read fixture");
        match name(f).as_str() {
            "backup.json" => {
                s.add("backup_json", data.clone());
                let tar = fs::read(f.with_file_name("stream.tar.s2")).unwrap_or_default();
                if tar.len() <= 16 << 10 {
                    let mut v = vec![1u8];
                    v.extend(pack_files([
                        ("backup.json", &data[..]),
                        ("stream.tar.s2", &tar[..]),
                    ]));
                    s.add("verify_archive", v);
                }
            }
            "stream.tar.s2" => {
                s.add("s2_frame", data.clone());
                s2_chunks(&data, s);
                if data.len() <= 16 << 10 {
                    let mut v = vec![0u8];
                    v.extend(&data);
                    s.add("verify_archive", v);
                }
                match jetdir::s2::decode_stream(&data) {
                    Ok(plain) if plain.starts_with(b"NATSARC1") => s.add("natsarc", plain),
                    Ok(plain) => s.add("tar_walk", plain),
                    Err(e) => eprintln!("seeds: {}: {e}", f.display()),
                }
            }
            n if n.ends_with(".tgz") => {
                let mut v = vec![0u8];
                v.extend(&data);
                s.add("verify_archive", v);
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&data[..])
                    .read_to_end(&mut plain)
                    .expect("gunzip fixture");
                s.add("tar_walk", plain);
            }
            _ => {}
        }
    }
    // --- a pack manifest covering the files the manifest target writes beside it
    let entry = |p: &str, b: &[u8]| {
        format!(
            "{{\n      \"path\": \"{p}\",\n      \"bytes\": {},\n      \"sha256\": \"{}\"\n    }}",
            b.len(),
            hex(&Sha256::digest(b))
        )
    };
    let m = format!(
        "{{\n  \"manifest\": \"jetdir-pack/1\",\n  \"tool\": \"jetdir\",\n  \"tool_version\": \"0.1.0\",\n  \"created\": \"2026-11-24T21:48:34Z\",\n  \"format\": \"v1\",\n  \"source\": {{\n    \"path\": \"/data\",\n    \"host\": null,\n    \"account\": \"$G\",\n    \"stream\": \"ORDERS\"\n  }},\n  \"server_version\": \"2.15.1\",\n  \"server_api_level\": null,\n  \"stream\": {{}},\n  \"consumers\": [],\n  \"files\": [\n    {},\n    {}\n  ],\n  \"manifest_sha256\": \"{}\"\n}}\n",
        entry("backup.json", b"{}\n"),
        entry("stream.tar.s2", b""),
        "0".repeat(64)
    );
    let h = hex(&Sha256::digest(m.as_bytes()));
    s.add("manifest", m.replace(&"0".repeat(64), &h).into_bytes());

    // --- S2 blocks and frames from plain data: jetdir's encoder
    let sample: Vec<u8> =
        s.0.get("block_plain")
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default();
    s.add("s2_block", jetdir::s2::encode::encode_block(&sample));
    s.add("s2_frame", jetdir::s2::encode::compress_stream(&sample));
}

/// The block inside every compressed-data chunk (type 0) of a framed stream.
fn s2_chunks(stream: &[u8], s: &mut Seeds) {
    let mut pos = 0usize;
    while let Some(h) = stream.get(pos..pos + 4) {
        let len = usize::from(h[1]) | usize::from(h[2]) << 8 | usize::from(h[3]) << 16;
        let Some(body) = stream.get(pos + 4..pos + 4 + len) else {
            break;
        };
        if h[0] == 0 && body.len() > 4 && body.len() <= 16 << 10 {
            s.add("s2_block", body[4..].to_vec());
        }
        pos += 4 + len;
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
