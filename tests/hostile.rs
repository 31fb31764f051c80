//! Hostile and oversized input: every case is built at test time (nothing large is stored),
//! the jetdir binary runs as a child under GNU time, and each run must stay under 64 MiB of
//! peak RSS, finish in bounded time and exit 1 (damaged) or 0 (harmless), never 2 or a panic.
mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RSS_LIMIT_KIB: u64 = 64 * 1024;
const TIME_LIMIT: Duration = Duration::from_secs(60);

struct Run {
    code: i32,
    stdout: String,
    rss_kib: u64,
    took: Duration,
}

/// Run jetdir under GNU time (`%M` = peak RSS of the child, exact).
fn run(args: &[&str]) -> Run {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        common::missing("GNU time at /usr/bin/time");
    }
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let t0 = Instant::now();
    // a hang is a failure, not a stuck suite: coreutils' timeout ends it (exit 124)
    let out = Command::new("timeout")
        .args(["-k", "10", "600"])
        .arg(time)
        .args(["-f", "%M", "-o"])
        .arg(tmp.path())
        .arg(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .unwrap();
    let took = t0.elapsed();
    assert_ne!(
        out.status.code(),
        Some(124),
        "jetdir {args:?} did not finish in 600 s"
    );
    let rss_kib = peak_rss_kib(tmp.path());
    let code = out.status.code().unwrap_or(-1);
    Run {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        rss_kib,
        took,
    }
}

/// The bound every hostile run must respect, and its exit code.
fn bounded(what: &str, r: &Run, codes: &[i32]) {
    bounded_within(what, r, codes, TIME_LIMIT)
}

/// [`bounded`] with another time limit (real data of the largest legal size, decrypted and
/// compressed by the debug build, takes longer than garbage).
fn bounded_within(what: &str, r: &Run, codes: &[i32], limit: Duration) {
    assert!(
        codes.contains(&r.code),
        "{what}: exit {} (want {codes:?})\n{}",
        r.code,
        r.stdout
    );
    assert!(
        r.rss_kib < RSS_LIMIT_KIB,
        "{what}: peak RSS {} KiB >= 64 MiB",
        r.rss_kib
    );
    assert!(r.took < limit, "{what}: took {:?}", r.took);
    eprintln!(
        "{what}: exit {}, peak RSS {:.1} MiB, {:.2} s",
        r.code,
        r.rss_kib as f64 / 1024.0,
        r.took.as_secs_f64()
    );
}

fn fixture(rel: &str) -> PathBuf {
    common::repo().join("fixtures").join(rel)
}

fn copy_dir(from: &Path, to: &Path) {
    common::copy_dir(from, to)
}

/// One S2 data chunk that decodes to 4 MiB of zeros (a few hundred bytes).
fn zero_chunk() -> Vec<u8> {
    let mut frame = Vec::new();
    let k = jetdir::s2::encode::Encoder::new().frame_chunk(&vec![0u8; 4 << 20], &mut frame);
    frame.truncate(k);
    frame
}

fn append_zero_chunks(file: &Path, n: usize) {
    let c = zero_chunk();
    let mut f = fs::OpenOptions::new().append(true).open(file).unwrap();
    for _ in 0..n {
        f.write_all(&c).unwrap();
    }
}

/// S2 chunks decoding to 1 GiB appended to the real V1 and V2 backups: decoding must not run
/// ahead of the reader (D4).
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn s2_bombs_after_the_archive() {
    for (v, codes) in [("v2.9.10", [0, 1]), ("v2.15.1", [0, 1])] {
        let t = tempfile::tempdir().unwrap();
        let bk = t.path().join("ORDERS");
        copy_dir(&fixture(&format!("backups/{v}/ORDERS")), &bk);
        let payload = bk.join("stream.tar.s2");
        let before = fs::metadata(&payload).unwrap().len();
        append_zero_chunks(&payload, 256);
        assert!(fs::metadata(&payload).unwrap().len() < before + 200_000);
        let r = run(&["verify", bk.to_str().unwrap(), "-q"]);
        bounded(&format!("{v} backup + 1 GiB S2 bomb: verify"), &r, &codes);
        if v == "v2.15.1" {
            assert!(r.stdout.contains("[v2_trailing_data]"), "{}", r.stdout);
        }
        let store = t.path().join("store");
        fs::create_dir_all(&store).unwrap();
        let r = run(&[
            "extract",
            bk.to_str().unwrap(),
            "--store-dir",
            store.to_str().unwrap(),
            "--dry-run",
            "-q",
        ]);
        bounded(&format!("{v} backup + 1 GiB S2 bomb: extract"), &r, &[0, 1]);
    }
}

fn store_copy(t: &Path, fixture_store: &str) -> (PathBuf, PathBuf) {
    let s = t.join("store");
    copy_dir(&fixture(fixture_store), &s);
    let stream = s.join("jetstream/$G/streams");
    (s, stream)
}

/// A `cmp` block whose S2 stream decodes to 1 GiB of zeros, its header declaring 2 GiB (D5).
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn cmp_block_declaring_gigabytes() {
    let t = tempfile::tempdir().unwrap();
    let (s, streams) = store_copy(t.path(), "v2.11.11-s2/store");
    let blk = streams.join("CMP/msgs/1.blk");
    let mut b = b"cmp\x01".to_vec();
    let mut v = 2u64 << 30;
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
    b.extend_from_slice(b"\xff\x06\x00\x00S2sTwO");
    let c = zero_chunk();
    for _ in 0..256 {
        b.extend_from_slice(&c);
    }
    b.extend_from_slice(&[0u8; 8]);
    fs::write(&blk, &b).unwrap();
    let r = run(&["verify", s.to_str().unwrap(), "-q"]);
    bounded("cmp block of 1 GiB zeros: verify", &r, &[1]);
    assert!(r.stdout.contains("[block_decompress]"), "{}", r.stdout);
    let r = run(&["inspect", s.to_str().unwrap(), "-q"]);
    bounded("cmp block of 1 GiB zeros: inspect", &r, &[1]);
}

/// A 1 GiB block file of zeros (sparse) is read only up to the largest real block and the
/// zeros are passed over at memory speed (D6).
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn huge_zero_block_file() {
    let t = tempfile::tempdir().unwrap();
    let (s, streams) = store_copy(t.path(), "v2.15.1-plain/store");
    let blk = streams.join("ORDERS/msgs/1.blk");
    fs::OpenOptions::new()
        .write(true)
        .open(&blk)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let r = run(&["verify", s.to_str().unwrap(), "-q"]);
    bounded("1 GiB zero block: verify", &r, &[1]);
    assert!(r.stdout.contains("[block_too_large]"), "{}", r.stdout);
    assert!(r.took < Duration::from_secs(20), "{:?}", r.took);
    // the same block, all zeros from the start (no record at all)
    fs::write(&blk, b"").unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&blk)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    // (exit 0 today: the load model calls a block that is all zeros a torn write the server
    // repairs, D2 of the load-model issue; the bound is what this test is about)
    let r = run(&["verify", s.to_str().unwrap(), "-q"]);
    bounded("40 MiB zero block: verify", &r, &[0, 1]);
    let out = t.path().join("pack");
    let r = run(&[
        "pack",
        streams.join("ORDERS").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--allow-damaged",
        "-q",
    ]);
    bounded("40 MiB zero block: pack --allow-damaged", &r, &[0, 1]);
    // the V1 backup holding that block as a 40 MiB tar member inside S2
    let r = run(&["verify", out.to_str().unwrap(), "-q"]);
    bounded("V1 backup with a 40 MiB zero block: verify", &r, &[0, 1]);
    let store2 = t.path().join("store2");
    fs::create_dir_all(&store2).unwrap();
    let r = run(&[
        "extract",
        out.to_str().unwrap(),
        "--store-dir",
        store2.to_str().unwrap(),
        "--allow-damaged",
        "-q",
    ]);
    bounded("V1 backup with a 40 MiB zero block: extract", &r, &[0, 1]);
}

/// A tarball whose block member is 100 MiB of zeros (a real block is at most 41 MiB): refused
/// at its header, without decompressing it (D7).
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn tgz_member_far_above_any_real_block() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("ORDERS");
    copy_dir(
        &fixture("v2.15.1-plain/store/jetstream/$G/streams/ORDERS"),
        &src,
    );
    fs::OpenOptions::new()
        .write(true)
        .open(src.join("msgs/1.blk"))
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let tgz = t.path().join("ORDERS.tgz");
    let st = Command::new("tar")
        .arg("-C")
        .arg(t.path())
        .arg("-czf")
        .arg(&tgz)
        .arg("ORDERS")
        .status()
        .unwrap();
    assert!(st.success());
    let r = run(&["verify", tgz.to_str().unwrap(), "-q"]);
    bounded("tgz with a 100 MiB block member: verify", &r, &[1]);
    assert!(
        r.stdout.contains("[archive_hostile_member]"),
        "{}",
        r.stdout
    );
    let store = t.path().join("store");
    fs::create_dir_all(&store).unwrap();
    for extra in [&["--dry-run"][..], &["--allow-damaged"][..]] {
        let mut a = vec![
            "extract",
            tgz.to_str().unwrap(),
            "--store-dir",
            store.to_str().unwrap(),
            "-q",
        ];
        a.extend_from_slice(extra);
        let r = run(&a);
        bounded(
            &format!("tgz with a 100 MiB block member: extract {extra:?}"),
            &r,
            &[1],
        );
    }
    assert!(!store.join("jetstream/$G/streams/ORDERS").exists());
}

/// Archives made by GNU tar (name order, `./` prefixes, no top dir) and Python's tarfile (PAX,
/// meta.inf last) verify and extract like the server's own files.
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn tarballs_from_any_tar_in_any_member_order() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("ORDERS");
    copy_dir(
        &fixture("v2.15.1-plain/store/jetstream/$G/streams/ORDERS"),
        &src,
    );
    let mut made = Vec::new();
    // GNU tar with `./` prefixes and no top dir, meta.inf last
    let dot = t.path().join("gnu-dot.tgz");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-czf")
        .arg(&dot)
        .args(["./msgs", "./obs", "./meta.sum", "./meta.inf"])
        .status()
        .unwrap();
    assert!(st.success());
    made.push(dot);
    let pax = t.path().join("gnu-pax.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(t.path())
        .args(["--format=pax", "-cf"])
        .arg(&pax)
        .args([
            "ORDERS/obs",
            "ORDERS/msgs",
            "ORDERS/meta.sum",
            "ORDERS/meta.inf",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    made.push(pax);
    let py = t.path().join("python.tgz");
    let script = format!(
        "import tarfile, os\n\
         src = {src:?}\n\
         files = sorted(os.path.join(r, f) for r, _, fs in os.walk(src) for f in fs)\n\
         files.sort(key=lambda p: os.path.relpath(p, src) == 'meta.inf')\n\
         with tarfile.open({out:?}, 'w:gz', format=tarfile.PAX_FORMAT) as t:\n\
         \x20   for p in files: t.add(p, arcname='ORDERS/' + os.path.relpath(p, src))\n",
        src = src.to_str().unwrap(),
        out = py.to_str().unwrap()
    );
    let st = Command::new("python3").args(["-c", &script]).status();
    if let Ok(st) = st {
        assert!(st.success());
        made.push(py);
    } else {
        common::missing("python3");
    }
    // bsdtar (libarchive), PAX, top dir, meta.inf last
    let bsd = t.path().join("bsdtar.tgz");
    match Command::new("bsdtar")
        .arg("-C")
        .arg(t.path())
        .args(["--format=pax", "-czf"])
        .arg(&bsd)
        .args([
            "ORDERS/msgs",
            "ORDERS/obs",
            "ORDERS/meta.sum",
            "ORDERS/meta.inf",
        ])
        .status()
    {
        Ok(st) => {
            assert!(st.success());
            made.push(bsd);
        }
        Err(_) => common::missing("bsdtar (apt-get install libarchive-tools)"),
    }
    for a in &made {
        let list = Command::new("tar").arg("-tf").arg(a).output().unwrap();
        let names = String::from_utf8_lossy(&list.stdout).into_owned();
        let last = names.lines().last().unwrap_or_default();
        assert!(
            ["meta.inf", "./meta.inf", "ORDERS/meta.inf"].contains(&last),
            "{}: the stream's meta.inf must come last here:\n{names}",
            a.display()
        );
        let r = run(&["verify", a.to_str().unwrap()]);
        bounded(&format!("{}: verify", a.display()), &r, &[0]);
        assert!(r.stdout.contains("8 messages"), "{}", r.stdout);
        let store = t.path().join(format!(
            "store-{}",
            made.iter().position(|x| x == a).unwrap()
        ));
        fs::create_dir_all(&store).unwrap();
        let r = run(&[
            "extract",
            a.to_str().unwrap(),
            "--store-dir",
            store.to_str().unwrap(),
            "-q",
        ]);
        bounded(&format!("{}: extract", a.display()), &r, &[0]);
        let r = run(&["verify", store.to_str().unwrap(), "-q"]);
        bounded(
            &format!("{}: verify the extracted store", a.display()),
            &r,
            &[0],
        );
    }
}

/// A real-sized compressible stream (about 150 MB of block bytes, made of records written the
/// way the server writes them) packed by jetdir as a V1 backup: pack, verify and extract each
/// stay under 64 MiB.
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn compressible_150_mb_backup() {
    let t = tempfile::tempdir().unwrap();
    let s = t.path().join("store");
    let dir = s.join("jetstream/$G/streams/ORDERS");
    fs::create_dir_all(dir.join("msgs")).unwrap();
    let orig = fixture("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
    for f in ["meta.inf", "meta.sum"] {
        fs::copy(orig.join(f), dir.join(f)).unwrap();
    }
    let mut seq = 1u64;
    let mut total = 0u64;
    let payload: Vec<u8> = (0..1000u32)
        .flat_map(|i| format!("{{\"order\":{i},\"state\":\"new\"}}").into_bytes())
        .take(1000)
        .collect();
    for blk in 1..=18u32 {
        // the server's record: len ‖ seq ‖ ts ‖ subject len ‖ subject ‖ payload ‖
        // HighwayHash-64 (key SHA-256("<stream>-<block>")) of seq ‖ ts ‖ subject ‖ payload
        let key = jetdir::base::hash::key_for(&format!("ORDERS-{blk}"));
        let subject = b"orders.new";
        let mut b = Vec::with_capacity(8 << 20);
        while b.len() + 1100 < 8 << 20 {
            let rl = (22 + subject.len() + payload.len() + 8) as u32;
            let start = b.len();
            b.extend_from_slice(&rl.to_le_bytes());
            b.extend_from_slice(&seq.to_le_bytes());
            b.extend_from_slice(&(1_795_482_016_000_000_000 + seq as i64).to_le_bytes());
            b.extend_from_slice(&(subject.len() as u16).to_le_bytes());
            b.extend_from_slice(subject);
            b.extend_from_slice(&payload);
            let sum =
                jetdir::base::hash::hh64(&key, &[&b[start + 4..start + 20], subject, &payload]);
            b.extend_from_slice(&sum.to_le_bytes());
            seq += 1;
        }
        total += b.len() as u64;
        fs::write(dir.join(format!("msgs/{blk}.blk")), &b).unwrap();
    }
    assert!(total > 140_000_000, "{total}");
    let r = run(&["verify", s.to_str().unwrap(), "-q"]);
    bounded("150 MB store: verify", &r, &[0]);
    let bk = t.path().join("bk");
    let r = run(&[
        "pack",
        dir.to_str().unwrap(),
        "-o",
        bk.to_str().unwrap(),
        "-q",
    ]);
    bounded("150 MB store: pack v1", &r, &[0]);
    let r = run(&["verify", bk.to_str().unwrap(), "-q"]);
    bounded("150 MB V1 backup: verify", &r, &[0]);
    let store2 = t.path().join("store2");
    fs::create_dir_all(&store2).unwrap();
    let r = run(&[
        "extract",
        bk.to_str().unwrap(),
        "--store-dir",
        store2.to_str().unwrap(),
        "-q",
    ]);
    bounded("150 MB V1 backup: extract", &r, &[0]);
}

fn uvarint(b: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut s) = (0u64, 0);
    loop {
        let x = b[*at];
        *at += 1;
        v |= u64::from(x & 0x7f) << s;
        if x < 0x80 {
            return v;
        }
        s += 7;
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A V2 (NATSARC1) backup with a million messages where its state.json says 9: one finding per
/// message, of which 100 are listed and the rest counted; memory stays bounded (D8).
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn v2_archive_with_a_million_problems() {
    let t = tempfile::tempdir().unwrap();
    let bk = t.path().join("ORDERS");
    copy_dir(&fixture("backups/v2.15.1/ORDERS"), &bk);
    let raw = fs::read(bk.join("stream.tar.s2")).unwrap();
    let arc = jetdir::s2::decode_stream(&raw).unwrap();
    assert_eq!(&arc[..8], b"NATSARC1");
    // keep state.json and the consumer entries, replace the messages
    let mut at = 8;
    let msgs_at = loop {
        let start = at;
        let nl = uvarint(&arc, &mut at) as usize;
        let _ts = uvarint(&arc, &mut at);
        let _seq = uvarint(&arc, &mut at);
        let hl = uvarint(&arc, &mut at) as usize;
        let pl = uvarint(&arc, &mut at) as usize;
        let name = &arc[at..at + nl];
        if name != b"state.json" && !name.starts_with(b"consumers/") {
            break start;
        }
        at += nl + hl + pl;
    };
    let mut out = arc[..msgs_at].to_vec();
    let n = 1_000_000u64;
    for seq in 1..=n {
        let subject = b"orders.new";
        put_uvarint(&mut out, subject.len() as u64);
        put_uvarint(&mut out, (1_795_482_016_000_000_000u64 + seq) << 1); // zigzag
        put_uvarint(&mut out, seq);
        put_uvarint(&mut out, 0);
        put_uvarint(&mut out, 4);
        out.extend_from_slice(subject);
        out.extend_from_slice(b"{}\r\n");
    }
    out.extend_from_slice(&[0u8; 5]);
    fs::write(
        bk.join("stream.tar.s2"),
        jetdir::s2::encode::compress_stream(&out),
    )
    .unwrap();
    let r = run(&["verify", bk.to_str().unwrap(), "--json", "-q"]);
    bounded(
        "V2 archive, 1M messages, state says 9: verify --json",
        &r,
        &[1],
    );
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let problems = j["problems"].as_array().unwrap();
    assert!(problems.len() <= 100 * 20, "{}", problems.len());
    let suppressed: u64 = j["suppressed"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(
        suppressed >= n - 1000,
        "suppressed {suppressed}: {}",
        j["suppressed"]
    );
    let r = run(&["verify", bk.to_str().unwrap(), "-q"]);
    bounded("V2 archive, 1M messages, state says 9: verify", &r, &[1]);
    assert!(
        r.stdout.contains("more ["),
        "{}",
        &r.stdout[r.stdout.len() - 500..]
    );
    assert!(r.stdout.lines().count() < 2000);
    let store = t.path().join("store");
    fs::create_dir_all(&store).unwrap();
    let r = run(&[
        "extract",
        bk.to_str().unwrap(),
        "--store-dir",
        store.to_str().unwrap(),
        "--dry-run",
        "--json",
        "-q",
    ]);
    bounded(
        "V2 archive, 1M messages, state says 9: extract --dry-run",
        &r,
        &[1],
    );
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let suppressed: u64 = j["suppressed"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(suppressed >= n - 1000, "extract: {}", j["suppressed"]);
}

/// A `cmp` block file of 41 MiB that does not compress (S2 chunks stored as they are), the
/// largest block file jetdir reads: decoded as it is read, so its compressed and decoded
/// bytes are never both in memory.
#[test]
fn incompressible_cmp_block_at_the_limit() {
    let t = tempfile::tempdir().unwrap();
    let (s, streams) = store_copy(t.path(), "v2.11.11-s2/store");
    let blk = streams.join("CMP/msgs/1.blk");
    let mut b = b"cmp\x01\x80\x80\x80\x14".to_vec(); // size field 40 MiB
    b.extend_from_slice(b"\xff\x06\x00\x00S2sTwO");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut enc = jetdir::s2::encode::Encoder::new();
    let mut frame = Vec::new();
    for _ in 0..10 {
        let chunk: Vec<u8> = (0..(4 << 20) / 8)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .collect();
        let k = enc.frame_chunk(&chunk, &mut frame);
        b.extend_from_slice(&frame[..k]);
    }
    b.extend_from_slice(&[0u8; 8]);
    assert!(b.len() > 40 << 20, "{}", b.len());
    fs::write(&blk, &b).unwrap();
    let r = run(&["verify", s.to_str().unwrap(), "-q"]);
    bounded("incompressible 40 MiB cmp block: verify", &r, &[1]);
    assert!(r.stdout.contains("CMP"), "{}", r.stdout);
}

/// A V2 archive whose last message carries `payload_mib` MiB of zeros (a few KB compressed).
fn v2_with_big_message(dir: &Path, payload_mib: usize) -> PathBuf {
    let bk = dir.join("ORDERS");
    copy_dir(&fixture("backups/v2.15.1/ORDERS"), &bk);
    let raw = fs::read(bk.join("stream.tar.s2")).unwrap();
    let arc = jetdir::s2::decode_stream(&raw).unwrap();
    let mut out = arc[..arc.len() - 5].to_vec(); // without the sentinel
    let subject = b"orders.new";
    put_uvarint(&mut out, subject.len() as u64);
    put_uvarint(&mut out, 1_795_482_017_000_000_000u64 << 1);
    put_uvarint(&mut out, 11);
    put_uvarint(&mut out, 0);
    put_uvarint(&mut out, (payload_mib << 20) as u64);
    out.extend_from_slice(subject);
    out.resize(out.len() + (payload_mib << 20), 0);
    out.extend_from_slice(&[0u8; 5]);
    fs::write(
        bk.join("stream.tar.s2"),
        jetdir::s2::encode::compress_stream(&out),
    )
    .unwrap();
    bk
}

/// A V2 message larger than any record a file store holds (32 MiB, `rlBadThresh`) is refused
/// without being read into memory; one just under it is checked within the bound.
#[test]
fn v2_messages_up_to_the_record_limit() {
    for (mib, codes) in [(60usize, [1, 1]), (31, [0, 1])] {
        let t = tempfile::tempdir().unwrap();
        let bk = v2_with_big_message(t.path(), mib);
        let r = run(&["verify", bk.to_str().unwrap(), "-q"]);
        bounded(&format!("V2 with a {mib} MiB message: verify"), &r, &codes);
        let store = t.path().join("store");
        fs::create_dir_all(&store).unwrap();
        let r = run(&[
            "extract",
            bk.to_str().unwrap(),
            "--store-dir",
            store.to_str().unwrap(),
            "--allow-damaged",
            "-q",
        ]);
        bounded(&format!("V2 with a {mib} MiB message: extract"), &r, &codes);
    }
}

/// A real nats-server 2.15.1 stream of two 31 MiB messages (`max_payload` raised to 32 MiB;
/// a record is at most `rlBadThresh` = 32 MiB, each lands in a block of its own), and its V2
/// backup, made by tests/support/bigrec.py: every command reading them stays under 64 MiB,
/// since records are handed out, written and compared from the block, one big block at a
/// time, without a second copy.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py (bash scripts/install-deps.sh)"
)]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn real_31_mib_records() {
    let t = tempfile::tempdir().unwrap();
    let out = Command::new(common::python_with_nats())
        .arg(common::repo().join("tests/support/bigrec.py"))
        .arg("--server")
        .arg(common::server_215())
        .arg("--out")
        .arg(t.path())
        .args(["--backups", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bigrec.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(facts["messages"], 2, "{facts}");
    let store = t.path().join("store");
    let store2 = t.path().join("store2");
    copy_dir(&store, &store2);
    let backup = t.path().join("backup");
    let backup2 = t.path().join("backup2");
    let (s, s2, b, b2) = (
        store.to_str().unwrap(),
        store2.to_str().unwrap(),
        backup.to_str().unwrap(),
        backup2.to_str().unwrap(),
    );
    let mib31 = (31u64 << 20).to_string();
    for (what, args) in [
        ("verify (store)", vec!["verify", s, "-q"]),
        ("verify (V2 backup)", vec!["verify", b, "-q"]),
        ("dump (text)", vec!["dump", s]),
        ("dump --json", vec!["dump", s, "--json"]),
        ("dump --json (V2 backup)", vec!["dump", b, "--json"]),
        ("dump --payload hex", vec!["dump", s, "--payload", "hex"]),
        ("diff of two copies", vec!["diff", s, s2, "-q"]),
        ("diff of two V2 backups", vec!["diff", b, b2, "-q"]),
        ("diff of a store and a V2 backup", vec!["diff", s, b2, "-q"]),
        ("dump (text, V2 backup)", vec!["dump", b2]),
    ] {
        let r = run(&args);
        bounded(&format!("two 31 MiB messages: {what}"), &r, &[0]);
        if what.starts_with("dump --json") {
            let sizes: Vec<String> = r
                .stdout
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .map(|v| v["payload_size"].to_string())
                .collect();
            assert_eq!(sizes, [mib31.clone(), mib31.clone()], "{what}");
        } else if what.starts_with("dump") {
            assert_eq!(r.stdout.matches("Subject: big.").count(), 2, "{what}");
            assert!(r.stdout.len() > 2 * (31 << 20), "{what}");
        }
    }
    let target = t.path().join("extracted");
    fs::create_dir_all(&target).unwrap();
    let r = run(&["extract", b, "--store-dir", target.to_str().unwrap(), "-q"]);
    bounded("two 31 MiB messages: extract (V2 backup)", &r, &[0]);
    // the extracted blocks hold the server's records, byte for byte
    let msgs = |root: &Path| root.join("jetstream/$G/streams/BIG/msgs");
    for n in [1, 2] {
        let f = format!("{n}.blk");
        assert!(
            fs::read(msgs(&target).join(&f)).unwrap() == fs::read(msgs(&store).join(&f)).unwrap(),
            "{f} differs from the server's"
        );
    }
}

/// Compressed blocks of the server's full size (8 MiB decoded): dump reads plain blocks ahead
/// of the one it prints, and a compressed one decodes to 8 MiB beside its file; with that
/// read-ahead dump of such a stream peaked at 66 MiB. dump (text and JSON) and diff of two
/// copies stay under the bound.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py (bash scripts/install-deps.sh)"
)]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn s2_blocks_of_full_size() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let o = Command::new(common::python_with_nats())
        .arg(common::repo().join("tests/support/s2_stream.py"))
        .arg("--server")
        .arg(common::server_215())
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "s2_stream.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let msgs = store.join("jetstream/$G/streams/S2S/msgs");
    let cmp = fs::read_dir(&msgs)
        .unwrap()
        .filter(|e| {
            let b = fs::read(e.as_ref().unwrap().path()).unwrap_or_default();
            b.starts_with(b"cmp")
        })
        .count();
    assert!(cmp >= 8, "{cmp} compressed blocks");
    let store2 = t.path().join("store2");
    copy_dir(&store, &store2);
    let (s, s2) = (store.to_str().unwrap(), store2.to_str().unwrap());
    for (what, args) in [
        ("verify", vec!["verify", s, "-q"]),
        ("dump (text)", vec!["dump", s]),
        ("dump --json", vec!["dump", s, "--json"]),
        ("diff of two copies", vec!["diff", s, s2, "-q"]),
    ] {
        let r = run(&args);
        bounded_within(
            &format!("S2 blocks of 8 MiB: {what}"),
            &r,
            &[0],
            Duration::from_secs(300),
        );
    }
    // salvage walks, writes and verifies, then packs: the phases' buffers must not add up
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    for format in ["dir", "v1", "tgz"] {
        let o = out.join(if format == "dir" {
            "S2S".into()
        } else {
            format!("s.{format}")
        });
        let r = run(&["salvage", s, "-o", o.to_str().unwrap(), "--format", format]);
        bounded_within(
            &format!("S2 blocks of 8 MiB: salvage --format {format}"),
            &r,
            &[0],
            Duration::from_secs(300),
        );
        assert!(o.exists(), "{}", o.display());
        let _ = fs::remove_dir_all(&o).or_else(|_| fs::remove_file(&o));
    }
}

/// The peak RSS that GNU time (`-f %M -o FILE`) wrote into `file`.
fn peak_rss_kib(file: &Path) -> u64 {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .expect("GNU time wrote the peak RSS")
}

/// [`run`] with the output read only after `delay`, then to its end (a reader that is slow to
/// start, like `| less`): jetdir blocks on the full pipe meanwhile.
fn run_reading_late(args: &[&str], delay: Duration) -> Run {
    use std::io::Read;
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let t0 = Instant::now();
    let mut child = Command::new("timeout")
        .args(["-k", "10", "600"])
        .arg("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(tmp.path())
        .arg(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let status = child.wait().unwrap();
    let took = t0.elapsed();
    assert_ne!(
        status.code(),
        Some(124),
        "jetdir {args:?} did not finish in 600 s"
    );
    let rss_kib = peak_rss_kib(tmp.path());
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out).into_owned(),
        rss_kib,
        took,
    }
}

/// `dump --json` of payloads whose every byte is a 6-byte JSON escape (0x01 is valid UTF-8,
/// so it is written as text: `\u0001`), in records of 4 KiB and of 1 MB, read at once and by
/// a reader that waits a second: what waits to be written stays bounded (a render task takes
/// at most 256 KiB of records, workers start none while 8 MiB wait, and a record above
/// 256 KiB is written from the block in pieces), so peak RSS stays under 64 MiB. Before,
/// every run of a block was rendered while the first one was written: 80 MiB (4 KiB records)
/// and 78 MiB (1 MB records); then 1 MB records were still rendered whole, 6 MiB each: 68 MiB
/// in CI.
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn dump_json_of_escape_heavy_payloads() {
    let enc = jetdir::filestore::encode_message;
    for (size, per_block) in [(4096usize, 2000u64), (1_000_000, 8)] {
        let t = tempfile::tempdir().unwrap();
        let (_, streams) = store_copy(t.path(), "v2.15.1-plain/store");
        let dir = streams.join("ORDERS");
        for e in fs::read_dir(dir.join("msgs")).unwrap() {
            fs::remove_file(e.unwrap().path()).unwrap();
        }
        let payload = vec![1u8; size];
        let mut seq = 1u64;
        for index in 1..=3u32 {
            let mut blk = Vec::new();
            for _ in 0..per_block {
                enc(
                    &mut blk,
                    "ORDERS",
                    index,
                    seq,
                    seq as i64,
                    b"orders.new",
                    None,
                    &payload,
                );
                seq += 1;
            }
            fs::write(dir.join(format!("msgs/{index}.blk")), &blk).unwrap();
        }
        for delay in [0, 1] {
            let what = format!("dump --json of {size}-byte escaped payloads, read after {delay} s");
            let r = run_reading_late(
                &["dump", "--json", dir.to_str().unwrap(), "-q"],
                Duration::from_secs(delay),
            );
            bounded(&what, &r, &[0, 1]);
            let messages = r
                .stdout
                .lines()
                .filter(|l| l.contains("\"payload\":\"\\u0001"))
                .count();
            assert_eq!(messages as u64, 3 * per_block, "{what}");
        }
    }
}

/// A stream of two 31 MiB messages (records at the limit, `rlBadThresh` = 32 MiB, with
/// `max_payload` raised), written by the real nats-server 2.15.1 under `dir` (encrypted at rest
/// with `key`). Returns the store dir.
fn big_record_store(dir: &Path, key: Option<&str>) -> PathBuf {
    let store = dir.join(if key.is_some() { "enc" } else { "store" });
    let mut c = Command::new(common::python_with_nats());
    c.arg(common::repo().join("tests/support/big_records.py"))
        .arg("--server")
        .arg(common::server_215())
        .arg("--store")
        .arg(&store);
    if let Some(k) = key {
        c.args(["--key", k]);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "big_records.py: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let blk = store.join("jetstream/$G/streams/BIG/msgs/2.blk");
    assert!(
        fs::metadata(&blk).unwrap().len() > 31 << 20,
        "{}",
        blk.display()
    );
    store
}

/// `pack` of records at the limit stays under 64 MiB in every form: v1, v2 and tgz, with
/// `--as` (rename) and `--account`, and from an encrypted store with its key. The v1 blocks
/// are the source's bytes (streamed, not rewritten), and the v2 and tgz backups verify.
#[test]
#[cfg_attr(
    any(jetdir_no_server, jetdir_no_gnu_time),
    ignore = "needs nats-server, nats-py and GNU time: bash scripts/install-deps.sh"
)]
fn pack_records_at_the_limit() {
    let t = tempfile::tempdir().unwrap();
    let key = "jetdir-sample-key-0123456789abcdef";
    let plain = big_record_store(t.path(), None);
    let enc = big_record_store(t.path(), Some(key));
    let kf = t.path().join("key");
    fs::write(&kf, key).unwrap();
    let kf = kf.to_str().unwrap().to_string();
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let o = |n: &str| out.join(n).to_str().unwrap().to_string();
    let (p, e) = (plain.to_str().unwrap(), enc.to_str().unwrap());
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("v1", vec![p.into(), "-o".into(), o("v1")]),
        (
            "v2",
            vec![
                p.into(),
                "--format".into(),
                "v2".into(),
                "-o".into(),
                o("v2"),
            ],
        ),
        (
            "tgz",
            vec![
                p.into(),
                "--format".into(),
                "tgz".into(),
                "-o".into(),
                o("b.tgz"),
            ],
        ),
        (
            "v1 --as",
            vec![
                p.into(),
                "--as".into(),
                "BIG2".into(),
                "-o".into(),
                o("v1as"),
            ],
        ),
        (
            "v2 --as",
            vec![
                p.into(),
                "--as".into(),
                "BIG2".into(),
                "--format".into(),
                "v2".into(),
                "-o".into(),
                o("v2as"),
            ],
        ),
        (
            "tgz --as",
            vec![
                p.into(),
                "--as".into(),
                "BIG2".into(),
                "--format".into(),
                "tgz".into(),
                "-o".into(),
                o("as.tgz"),
            ],
        ),
        (
            "v1 --account",
            vec![
                p.into(),
                "--account".into(),
                "$G".into(),
                "-o".into(),
                o("v1acc"),
            ],
        ),
        (
            "v1 encrypted",
            vec![
                e.into(),
                "--key-file".into(),
                kf.clone(),
                "-o".into(),
                o("v1enc"),
            ],
        ),
        (
            "v2 encrypted",
            vec![
                e.into(),
                "--key-file".into(),
                kf.clone(),
                "--format".into(),
                "v2".into(),
                "-o".into(),
                o("v2enc"),
            ],
        ),
        (
            "tgz encrypted",
            vec![
                e.into(),
                "--key-file".into(),
                kf.clone(),
                "--format".into(),
                "tgz".into(),
                "-o".into(),
                o("enc.tgz"),
            ],
        ),
    ];
    for (what, args) in &cases {
        let mut a = vec!["pack", "--stream", "BIG", "-q"];
        a.extend(args.iter().map(String::as_str));
        let r = run(&a);
        bounded_within(
            &format!("two 31 MiB records: pack {what}"),
            &r,
            &[0],
            Duration::from_secs(180),
        );
    }
    // v1: the blocks in the tar are the source's, byte for byte
    let arc = jetdir::s2::decode_stream(&fs::read(out.join("v1/stream.tar.s2")).unwrap()).unwrap();
    let mut blocks = 0;
    for en in tar::Archive::new(&arc[..]).entries().unwrap() {
        let mut en = en.unwrap();
        let path = en.path().unwrap().to_string_lossy().into_owned();
        if path.ends_with(".blk") {
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut en, &mut got).unwrap();
            let want = fs::read(plain.join("jetstream/$G/streams/BIG").join(&path)).unwrap();
            assert!(got == want, "{path}: differs from the source block");
            blocks += 1;
        }
    }
    assert_eq!(blocks, 2);
    // v1 backups with blocks above 9 MiB: the checker and the reader hand big blocks over
    // without a deadlock (verify of a v1 backup hung in 2 of about 4 runs before)
    for b in ["v1", "v1", "v1as", "v2", "v2as", "v2enc", "b.tgz"] {
        let r = run(&["verify", "-q", &o(b)]);
        bounded(
            &format!("two 31 MiB records: verify of pack's {b}"),
            &r,
            &[0],
        );
        assert!(
            r.stdout.contains("2 messages") || r.stdout.contains("2 msgs"),
            "{b}: {}",
            r.stdout
        );
    }
}

/// A block whose second record is 31 MiB of random bytes cut short (a crash in the middle
/// of a big write, or damage): looking for the next intact record past it tests candidate
/// lengths and sequences first, and random bytes pass that one time in 2^30, so the 31 MiB
/// are not hashed over and over (before: one candidate in 64, each hashed over up to 31 MiB,
/// minutes). Every command reading the block stays within the bounds.
#[test]
#[cfg_attr(
    jetdir_no_gnu_time,
    ignore = "GNU time (/usr/bin/time) is missing: bash scripts/install-deps.sh installs it"
)]
fn random_big_record_cut_short() {
    let t = tempfile::tempdir().unwrap();
    let (s, streams) = store_copy(t.path(), "v2.15.1-plain/store");
    let dir = streams.join("ORDERS");
    let mut blk = Vec::new();
    let enc = jetdir::filestore::encode_message;
    enc(&mut blk, "ORDERS", 1, 1, 1, b"orders.new", None, b"x");
    // xorshift bytes: incompressible, no pattern a candidate could lock onto
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let payload: Vec<u8> = (0..31 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    enc(&mut blk, "ORDERS", 1, 2, 2, b"orders.new", None, &payload);
    blk.truncate(blk.len() - 1000);
    fs::write(dir.join("msgs/1.blk"), &blk).unwrap();
    let _ = fs::remove_file(dir.join("msgs/index.db"));
    let r = run(&["verify", s.to_str().unwrap(), "-q"]);
    bounded("a 31 MiB random record cut short: verify", &r, &[0, 1]);
    let r = run(&["dump", dir.to_str().unwrap(), "-q", "--payload", "none"]);
    bounded("a 31 MiB random record cut short: dump", &r, &[0, 1]);
    fs::create_dir_all(t.path().join("salvaged")).unwrap();
    let out = t.path().join("salvaged/ORDERS");
    let r = run(&[
        "salvage",
        dir.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    bounded("a 31 MiB random record cut short: salvage", &r, &[0, 1]);
}
