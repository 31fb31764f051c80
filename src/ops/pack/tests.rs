use super::*;
use crate::backup::natsarc::{check_v2_structure, V2Options};
use crate::base::progress::NoProgress;
use crate::s2::FrameReader;
use crate::testdata;
use std::collections::BTreeMap;
use std::io::Read;

thread_local! {
    /// Set: pack takes today's path (verify, plan, write) even where the one pass applies.
    pub(super) static TODAYS_PATH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// What the one pass did in the last pack on this thread: "one pass", "not tried",
    /// "not kept: <why>" (`None`: not asked).
    pub(super) static PATH_TAKEN: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Packs `d` as v1 into `out` on the one pass (when it applies) and into `out2` on today's
/// path; asserts the same backup (stream.tar.s2, backup.json, the report but its time) and
/// returns what the one pass did.
fn one_pass_and_todays(d: &Path, o: &PackOptions, out2: &Path) -> String {
    PATH_TAKEN.with(|c| *c.borrow_mut() = None);
    let r1 = pack(d, o, &NoProgress).unwrap();
    let taken = PATH_TAKEN
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    TODAYS_PATH.with(|c| c.set(true));
    let o2 = PackOptions {
        out: out2.to_path_buf(),
        ..o.clone()
    };
    let r2 = pack(d, &o2, &NoProgress).unwrap();
    TODAYS_PATH.with(|c| c.set(false));
    assert_eq!(r1.exit_code(), r2.exit_code(), "{}: {taken}", d.display());
    let strip = |r: &PackReport| {
        let mut v = serde_json::to_value(r).unwrap();
        v["out"] = Value::Null;
        v["manifests"] = Value::Null;
        if let Some(fs) = v["files"].as_array_mut() {
            fs.retain(|f| f["path"] != "manifest.json");
        }
        v
    };
    assert_eq!(strip(&r1), strip(&r2), "{}: {taken}", d.display());
    for f in ["stream.tar.s2", "backup.json"] {
        let (a, b) = (o.out.join(f), out2.join(f));
        assert_eq!(a.exists(), b.exists(), "{f}");
        if a.exists() {
            assert!(
                fs::read(&a).unwrap() == fs::read(&b).unwrap(),
                "{}: {f} differs ({taken})",
                d.display()
            );
        }
    }
    taken
}

#[test]
fn one_pass_writes_the_bytes_of_todays_path() {
    let mut seen = Vec::new();
    for sample in ["v2.15.1-plain", "v2.15.1-s2", "v2.9.10-legacy"] {
        let t = testdata::sample(sample);
        let streams = t.path().join(sample).join("store/jetstream/$G/streams");
        let mut names: Vec<String> = fs::read_dir(&streams)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for (k, name) in names.iter().enumerate() {
            let d = streams.join(name);
            for variant in ["as is", "without index.db"] {
                if variant == "without index.db" {
                    let _ = fs::remove_file(d.join("msgs/index.db"));
                }
                let out = t.path().join(format!("o{k}-{}", variant.len()));
                let out2 = t.path().join(format!("t{k}-{}", variant.len()));
                let taken = one_pass_and_todays(&d, &opts(&out, PackFormat::V1), &out2);
                seen.push(format!("{sample} {name} {variant}: {taken}"));
            }
        }
    }
    let seen = seen.join("\n");
    // clean 2.10+ streams take the one pass; 2.9 layouts do not try it
    for s in [
        "v2.15.1-plain MULTI as is: one pass",
        "v2.15.1-plain ORDERS as is: one pass",
        "v2.15.1-plain ORDERS without index.db: one pass",
        "v2.15.1-s2 CMP as is: one pass",
        "v2.9.10-legacy ORDERS as is: not tried",
        // rebuilt without index.db, MULTI's deletes are tombstones in later blocks: the blocks
        // written before them are not kept, today's path writes the backup
        "v2.15.1-plain MULTI without index.db: not kept: a block written does not have the stream's plan",
    ] {
        assert!(seen.contains(s), "{s}\n{seen}");
    }
}

#[test]
fn one_pass_of_a_damaged_stream_is_not_kept() {
    let t = testdata::sample("v2.15.1-plain");
    let d = testdata::stream_dir(&t, "v2.15.1-plain", "MULTI");
    // one payload byte of seq 35 (msgs/2.blk @4148) flipped
    let p = d.join("msgs/2.blk");
    let mut b = fs::read(&p).unwrap();
    b[4148 + 60] ^= 0x20;
    fs::write(&p, &b).unwrap();
    let out = t.path().join("refused");
    PATH_TAKEN.with(|c| *c.borrow_mut() = None);
    let r = pack(&d, &opts(&out, PackFormat::V1), &NoProgress).unwrap();
    assert_eq!(r.exit_code(), 1);
    assert!(r.refused.is_some());
    let taken = PATH_TAKEN.with(|c| c.borrow_mut().take()).unwrap();
    assert_eq!(taken, "not kept: msgs/2.blk has an error");
    // nothing written, no staging left
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("refused"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // --allow-damaged: written by today's path, the same bytes as without the one pass
    let mut o = opts(&t.path().join("damaged"), PackFormat::V1);
    o.allow_damaged = true;
    let taken = one_pass_and_todays(&d, &o, &t.path().join("damaged-todays"));
    assert_eq!(taken, "not kept: msgs/2.blk has an error");
}

fn opts(out: &Path, format: PackFormat) -> PackOptions {
    PackOptions {
        out: out.to_path_buf(),
        stream: None,
        account: None,
        format,
        all: false,
        allow_damaged: false,
        no_consumers: false,
        force: false,
        server_version: None,
        keys: Default::default(),
        rename: None,
    }
}

fn facts(t: &tempfile::TempDir, sample: &str) -> Value {
    serde_json::from_slice(&fs::read(t.path().join(sample).join("facts.json")).unwrap()).unwrap()
}

/// Members of the tar inside a stream.tar.s2, in order.
fn v1_members(p: &Path) -> Vec<(String, Vec<u8>, tar::Header)> {
    let mut ar = tar::Archive::new(FrameReader::new(fs::File::open(p).unwrap()));
    let mut v = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let h = e.header().clone();
        let mut d = Vec::new();
        e.read_to_end(&mut d).unwrap();
        v.push((name, d, h));
    }
    v
}

fn names(m: &[(String, Vec<u8>, tar::Header)]) -> Vec<&str> {
    m.iter().map(|x| x.0.as_str()).collect()
}

#[test]
fn go_time_matches_the_servers_json() {
    assert_eq!(go_time(0), "0001-01-01T00:00:00Z");
    assert_eq!(
        go_time(1_795_556_915_152_765_510),
        "2026-11-24T21:48:35.15276551Z"
    );
    assert_eq!(go_time(1_795_556_915_000_000_000), "2026-11-24T21:48:35Z");
}

#[test]
fn v1_of_a_2_15_stream_is_the_servers_layout() {
    let t = testdata::sample("v2.15.1-plain");
    let d = testdata::stream_dir(&t, "v2.15.1-plain", "ORDERS");
    let out = t.path().join("bk");
    let r = pack(&d, &opts(&out, PackFormat::V1), &NoProgress).unwrap();
    assert_eq!(
        r.exit_code(),
        0,
        "{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    let m = v1_members(&out.join("stream.tar.s2"));
    assert_eq!(
        names(&m),
        vec![
            "meta.inf",
            "meta.sum",
            "msgs/1.idx",
            "msgs/1.blk",
            "msgs/index.db",
            "obs/C1/meta.inf",
            "obs/C1/meta.sum",
            "obs/C1/o.dat",
            "obs/C2/meta.inf",
            "obs/C2/meta.sum",
            "obs/C2/o.dat"
        ]
    );
    let src_blk = fs::read(d.join("msgs/1.blk")).unwrap();
    let blk = &m[3].1;
    check_compat_block(blk, &src_blk, &[3, 6], "ORDERS", 1);
    // 12 records on disk (10 sequences + tombstones for 3 and 6); in the tar 10, seq 3 as a
    // 30-byte placeholder instead of its 59-byte record: 760 - 2*30 - 29
    assert_eq!((src_blk.len(), blk.len()), (760, 671));
    let idx = crate::filestore::legacy::parse_idx(&m[2].1).unwrap();
    assert_eq!(
        (
            idx.msgs,
            idx.bytes,
            idx.first_seq,
            idx.last_seq,
            idx.num_deleted
        ),
        (8, 582, 1, 10, 2)
    );
    assert_eq!(idx.deleted, vec![3, 6]);
    assert_eq!(idx.last_checksum, compat::tail(blk));
    assert!(idx.consistent());
    // index.db: the server's, but with the last checksum of the block as written
    let src_db = fs::read(d.join("msgs/index.db")).unwrap();
    let parse_db = |b: &[u8]| {
        assert!(crate::filestore::index_db::trailer_ok(b, "ORDERS"));
        crate::filestore::index_db::parse(crate::filestore::index_db::split_trailer(b).unwrap().0)
            .unwrap()
    };
    let (a, mut b) = (parse_db(&m[4].1), parse_db(&src_db));
    assert_ne!(b.last_checksum, compat::tail(blk));
    b.last_checksum = compat::tail(blk);
    b.version = a.version;
    for e in &mut b.blocks {
        e.offset = 0;
    }
    let mut a = a;
    for e in &mut a.blocks {
        e.offset = 0;
    }
    assert_eq!(a, b);
    assert_eq!(idx.first_ts, a.blocks[0].first_ts);
    assert_eq!(idx.last_ts, a.last_ts);
    for (n, data, h) in &m {
        if !n.starts_with("msgs/") {
            // plain copies of the server's files
            assert_eq!(data, &fs::read(d.join(n)).unwrap(), "{n}");
        }
        assert_eq!(h.mode().unwrap(), 0o600);
        assert_eq!(h.username().unwrap(), Some("nats"));
        assert_eq!(h.uid().unwrap(), 0);
    }
    let bj: Value = serde_json::from_slice(&fs::read(out.join("backup.json")).unwrap()).unwrap();
    let f = facts(&t, "v2.15.1-plain");
    let info = &f["streams"]["ORDERS"]["info"];
    // config: the stream config as the server keeps it (meta.inf without Created)
    let mut want_cfg = info["config"].clone();
    want_cfg["metadata"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "_nats.req.level");
    assert_eq!(bj["config"], want_cfg);
    assert!(bj["config"].get("Created").is_none());
    let st = &info["state"];
    for k in [
        "messages",
        "bytes",
        "first_seq",
        "last_seq",
        "first_ts",
        "last_ts",
        "num_subjects",
        "num_deleted",
        "consumer_count",
    ] {
        assert_eq!(bj["state"][k], st[k], "state.{k}");
    }
    // two-space indent, no trailing newline, like jsm.go
    let raw = fs::read_to_string(out.join("backup.json")).unwrap();
    assert!(raw.starts_with("{\n  \"config\": {\n    \"name\": \"ORDERS\""));
    assert!(raw.ends_with('}'));
    assert_eq!(crate::backup::manifest::check_manifest(&out), Some(vec![]));
}

#[test]
fn v1_blocks_are_decompressed_and_2_9_gets_idx_fss() {
    let t = testdata::sample("v2.15.1-s2");
    let d = testdata::stream_dir(&t, "v2.15.1-s2", "CMP");
    let out = t.path().join("bk");
    let r = pack(&d, &opts(&out, PackFormat::V1), &NoProgress).unwrap();
    assert_eq!(
        r.exit_code(),
        0,
        "{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    let m = v1_members(&out.join("stream.tar.s2"));
    let blocks: Vec<_> = m.iter().filter(|x| x.0.ends_with(".blk")).collect();
    assert_eq!(blocks.len(), 4);
    let mut compressed = 0;
    for (n, data, _) in blocks {
        let raw = fs::read(d.join(n)).unwrap();
        assert!(
            !crate::filestore::block::is_cmp_block(data),
            "{n} must be plain in the tar"
        );
        let index: u32 = n[5..n.len() - 4].parse().unwrap();
        if crate::filestore::block::is_cmp_block(&raw) {
            compressed += 1;
            let plain = crate::filestore::block::decompress_cmp_block(&raw).unwrap();
            check_compat_block(data, &plain, &[10, 40], "CMP", index);
        } else {
            check_compat_block(data, &raw, &[10, 40], "CMP", index);
        }
    }
    // the last (active) block is not compressed yet; the three sealed ones are
    assert_eq!(compressed, 3);
    let idx: Vec<_> = m
        .iter()
        .filter(|x| x.0.ends_with(".idx"))
        .map(|x| crate::filestore::legacy::parse_idx(&x.1).unwrap())
        .collect();
    let nums: Vec<_> = idx
        .iter()
        .map(|x| (x.msgs, x.first_seq, x.last_seq, x.deleted.clone()))
        .collect();
    assert_eq!(
        nums,
        vec![
            (29, 1, 30, vec![10]),
            (29, 31, 60, vec![40]),
            (30, 61, 90, vec![]),
            (10, 91, 100, vec![])
        ]
    );
    assert_eq!(idx.iter().map(|x| x.bytes).sum::<u64>(), 101647);
    let t = testdata::sample("v2.9.10-legacy");
    let d = testdata::stream_dir(&t, "v2.9.10-legacy", "ORDERS");
    let out = t.path().join("bk");
    pack(&d, &opts(&out, PackFormat::V1), &NoProgress).unwrap();
    let m = v1_members(&out.join("stream.tar.s2"));
    assert_eq!(
        &names(&m)[..5],
        &[
            "meta.inf",
            "meta.sum",
            "msgs/1.idx",
            "msgs/1.fss",
            "msgs/1.blk"
        ]
    );
    assert!(!names(&m).contains(&"msgs/index.db"));
}

#[test]
fn v2_archive_matches_the_servers_shape() {
    let t = testdata::sample("v2.15.1-plain");
    let d = testdata::stream_dir(&t, "v2.15.1-plain", "MULTI");
    let out = t.path().join("bk");
    let r = pack(&d, &opts(&out, PackFormat::V2), &NoProgress).unwrap();
    assert_eq!(
        r.exit_code(),
        0,
        "{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    let f = fs::File::open(out.join("stream.tar.s2")).unwrap();
    let mut decoded = Vec::new();
    FrameReader::new(f).read_to_end(&mut decoded).unwrap();
    let sum = check_v2_structure(decoded.as_slice(), V2Options::new("stream.tar.s2"));
    assert!(sum.problems.is_empty(), "{:#?}", sum.problems);
    assert!(sum.sentinel);
    let fa = facts(&t, "v2.15.1-plain");
    let st = &fa["streams"]["MULTI"]["info"]["state"];
    assert_eq!(sum.messages, st["messages"].as_u64().unwrap());
    assert_eq!(sum.stored_bytes, st["bytes"].as_u64().unwrap());
    assert_eq!(sum.first_msg_seq, Some(1));
    assert_eq!(sum.last_msg_seq, Some(100));
    // consumer entries: ORDERS's C1 has a pending ack and a redelivery
    let d = testdata::stream_dir(&t, "v2.15.1-plain", "ORDERS");
    let out = t.path().join("bk2");
    pack(&d, &opts(&out, PackFormat::V2), &NoProgress).unwrap();
    let mut decoded = Vec::new();
    FrameReader::new(fs::File::open(out.join("stream.tar.s2")).unwrap())
        .read_to_end(&mut decoded)
        .unwrap();
    let sum = check_v2_structure(decoded.as_slice(), V2Options::new("stream.tar.s2"));
    assert!(sum.problems.is_empty(), "{:#?}", sum.problems);
    let c1 = sum.consumers.iter().find(|c| c.name == "C1").unwrap();
    let e = c1.entry.as_ref().unwrap();
    let s = e.state.as_ref().unwrap();
    assert_eq!((s.delivered.consumer_seq, s.delivered.stream_seq), (5, 5));
    assert_eq!((s.ack_floor.consumer_seq, s.ack_floor.stream_seq), (2, 3));
    let p = s.pending.as_ref().unwrap();
    assert_eq!(p.keys().copied().collect::<Vec<_>>(), vec![4]);
    assert_eq!(p[&4].sequence, 3);
    assert_eq!(s.redelivered.as_ref().unwrap()[&4], 1);
    let cfg = e.config.as_ref().unwrap();
    assert_eq!(cfg.durable_name.as_deref(), Some("C1"));
    assert!(!cfg.extra.contains_key("Created") && !cfg.extra.contains_key("Name"));
}

fn tree(p: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(p)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(p).unwrap().display().to_string(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn same_input_same_bytes() {
    let t = testdata::sample("v2.15.1-s2");
    let store = t.path().join("v2.15.1-s2/store");
    for fmt in [PackFormat::V1, PackFormat::V2, PackFormat::Tgz] {
        let a = t.path().join(format!("a-{}", fmt.as_str()));
        let b = t.path().join(format!("b-{}", fmt.as_str()));
        for o in [&a, &b] {
            let mut op = opts(o, fmt);
            op.stream = Some("CMP".into());
            let r = pack(&store, &op, &NoProgress).unwrap();
            assert_eq!(
                r.exit_code(),
                0,
                "{}",
                serde_json::to_string_pretty(&r).unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if fmt == PackFormat::Tgz {
            assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
            let ma: Manifest =
                serde_json::from_slice(&fs::read(side_manifest_path(&a)).unwrap()).unwrap();
            let mb: Manifest =
                serde_json::from_slice(&fs::read(side_manifest_path(&b)).unwrap()).unwrap();
            assert_eq!(ma.files[0].sha256, mb.files[0].sha256);
            assert_eq!(crate::backup::manifest::check_manifest(&a), Some(vec![]));
            continue;
        }
        let (ta, tb) = (tree(&a), tree(&b));
        assert_eq!(
            ta.keys().collect::<Vec<_>>(),
            vec!["backup.json", "manifest.json", "stream.tar.s2"]
        );
        assert_eq!(ta["backup.json"], tb["backup.json"]);
        assert_eq!(ta["stream.tar.s2"], tb["stream.tar.s2"], "{fmt:?}");
        let mut ma: Manifest = serde_json::from_slice(&ta["manifest.json"]).unwrap();
        let mut mb: Manifest = serde_json::from_slice(&tb["manifest.json"]).unwrap();
        assert_ne!(ma.created, mb.created);
        ma.created.clear();
        mb.created.clear();
        ma.manifest_sha256.clear();
        mb.manifest_sha256.clear();
        assert_eq!(ma, mb, "only the creation time differs");
    }
}

#[test]
fn refusals_write_nothing() {
    // existing OUT
    let t = testdata::sample("v2.15.1-plain");
    let d = testdata::stream_dir(&t, "v2.15.1-plain", "ORDERS");
    let out = t.path().join("exists");
    fs::create_dir(&out).unwrap();
    let r = pack(&d, &opts(&out, PackFormat::V1), &NoProgress).unwrap();
    assert_eq!(r.exit_code(), 2);
    assert!(r.refused.as_deref().unwrap().contains("exists"));
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
    let f = t.path().join("x.tgz");
    fs::write(&f, b"keep").unwrap();
    let r = pack(&d, &opts(&f, PackFormat::Tgz), &NoProgress).unwrap();
    assert_eq!(r.exit_code(), 2);
    assert_eq!(fs::read(&f).unwrap(), b"keep");
    // damaged: a flipped payload byte
    let blk = d.join("msgs/1.blk");
    let mut b = fs::read(&blk).unwrap();
    b[40] ^= 1;
    fs::write(&blk, &b).unwrap();
    let before: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    for fmt in [PackFormat::V1, PackFormat::V2, PackFormat::Tgz] {
        let out = t.path().join(format!("dmg-{}", fmt.as_str()));
        let r = pack(&d, &opts(&out, fmt), &NoProgress).unwrap();
        assert_eq!(
            r.exit_code(),
            1,
            "{}",
            serde_json::to_string_pretty(&r).unwrap()
        );
        assert!(!r.ok);
        assert!(r.problems.iter().any(|p| p.kind == "record_checksum"));
        assert!(!out.exists());
    }
    let after: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "no staging leftovers");
    // --allow-damaged packs it anyway
    let out = t.path().join("dmg-ok");
    let mut op = opts(&out, PackFormat::V1);
    op.allow_damaged = true;
    let r = pack(&d, &op, &NoProgress).unwrap();
    assert_eq!(
        r.exit_code(),
        1,
        "written, and damaged: as extract --allow-damaged"
    );
    assert!(!r.ok);
    assert!(out.join("stream.tar.s2").is_file());
    // encrypted
    let t = testdata::sample("v2.15.1-enc-chacha");
    let d = testdata::stream_dir(&t, "v2.15.1-enc-chacha", "SECRET");
    let out = t.path().join("enc");
    let mut op = opts(&out, PackFormat::V1);
    op.allow_damaged = true;
    let r = pack(&d, &op, &NoProgress).unwrap();
    assert_eq!(r.exit_code(), 2);
    assert!(r.refused.as_deref().unwrap().contains("encrypted"));
    assert!(!out.exists());
}

/// A block as the v1 pack writes it for a 2.10+ store: no tombstones, one record per sequence
/// from the first on, live records byte-identical to the source's, `dead` ones erased
/// (`seq | 1<<63`), every checksum valid.
fn check_compat_block(tar_blk: &[u8], src: &[u8], dead: &[u64], stream: &str, index: u32) {
    use crate::filestore::block::{RecordKind, Records};
    let key = crate::filestore::block::block_key(stream, index);
    let mut by_seq = BTreeMap::new();
    for r in Records::new(src) {
        let r = r.unwrap();
        if r.kind() != RecordKind::Tombstone {
            by_seq.insert(r.seq, src[r.offset..r.offset + r.len as usize].to_vec());
        }
    }
    let mut prev: Option<u64> = None;
    for r in Records::new(tar_blk) {
        let r = r.unwrap();
        assert!(r.checksum_ok(&key), "{stream} {index} seq {}", r.seq);
        assert_ne!(r.kind(), RecordKind::Tombstone, "{stream} {index}");
        if let Some(p) = prev {
            assert_eq!(r.seq, p + 1, "{stream} {index}: one record per sequence");
        }
        prev = Some(r.seq);
        let bytes = &tar_blk[r.offset..r.offset + r.len as usize];
        if dead.contains(&r.seq) {
            assert_eq!(r.kind(), RecordKind::Erased, "{stream} seq {}", r.seq);
        } else {
            assert_eq!(
                Some(&bytes.to_vec()),
                by_seq.get(&r.seq),
                "{stream} seq {}",
                r.seq
            );
        }
    }
    let live_src = by_seq.keys().filter(|s| !dead.contains(s)).count();
    let live_tar = Records::new(tar_blk)
        .map(|r| r.unwrap())
        .filter(|r| r.kind() == RecordKind::Message)
        .count();
    assert_eq!(live_src, live_tar, "{stream} {index}");
}

#[test]
fn inconsistent_index_db_is_left_out() {
    // one more valid record in the last block: index.db is stale (a warning, not damage)
    let t = testdata::sample("v2.15.1-plain");
    let d = testdata::stream_dir(&t, "v2.15.1-plain", "MULTI");
    let blk = d.join("msgs/4.blk");
    let mut b = fs::read(&blk).unwrap();
    crate::filestore::block::encode_record(
        &mut b,
        &crate::filestore::block::block_key("MULTI", 4),
        101,
        1_764_000_000_000_000_000,
        b"multi.1",
        None,
        b"late",
    );
    fs::write(&blk, b).unwrap();
    let out = t.path().join("bk");
    let r = pack(&d, &opts(&out, PackFormat::V1), &NoProgress).unwrap();
    assert_eq!(
        r.exit_code(),
        0,
        "{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    assert!(
        r.streams[0].index_db.starts_with("omitted"),
        "{}",
        r.streams[0].index_db
    );
    assert_eq!(r.streams[0].messages, 99);
    assert_eq!(r.streams[0].last_seq, 101);
    let m = v1_members(&out.join("stream.tar.s2"));
    assert!(!names(&m).contains(&"msgs/index.db"));
    // the V2 archive carries the late message too
    let out = t.path().join("bk2");
    pack(&d, &opts(&out, PackFormat::V2), &NoProgress).unwrap();
    let mut decoded = Vec::new();
    FrameReader::new(fs::File::open(out.join("stream.tar.s2")).unwrap())
        .read_to_end(&mut decoded)
        .unwrap();
    let sum = check_v2_structure(decoded.as_slice(), V2Options::new("stream.tar.s2"));
    assert!(sum.problems.is_empty(), "{:#?}", sum.problems);
    assert_eq!((sum.messages, sum.last_msg_seq), (99, Some(101)));
}

#[test]
fn all_streams_and_selection() {
    let t = testdata::sample("v2.15.1-plain");
    let store = t.path().join("v2.15.1-plain/store");
    // a store with several streams needs --stream or --all
    let e = pack(
        &store,
        &opts(&t.path().join("x"), PackFormat::V1),
        &NoProgress,
    )
    .unwrap_err();
    assert!(e.to_string().contains("--stream"), "{e}");
    let mut op = opts(&t.path().join("x"), PackFormat::V1);
    op.stream = Some("NOPE".into());
    assert!(pack(&store, &op, &NoProgress).is_err());
    let out = t.path().join("acct");
    let mut op = opts(&out, PackFormat::V2);
    op.all = true;
    op.no_consumers = true;
    let r = pack(&store, &op, &NoProgress).unwrap();
    assert_eq!(
        r.exit_code(),
        0,
        "{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    let mut dirs: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["EMPTY", "KV_config", "MULTI", "ORDERS", "PURGED"]);
    for s in &dirs {
        assert!(out.join(s).join("backup.json").is_file());
        assert_eq!(
            crate::backup::manifest::check_manifest(&out.join(s)),
            Some(vec![])
        );
        let bj: Value =
            serde_json::from_slice(&fs::read(out.join(s).join("backup.json")).unwrap()).unwrap();
        assert_eq!(bj["state"]["consumer_count"], 0, "--no-consumers");
    }
    assert_eq!(
        crate::backup::manifest::check_manifest(&out).map(|p| p.len()),
        Some(0)
    );
}

#[test]
fn the_source_is_checked_for_the_target_release() {
    // allow_msg_counter is 2.12+: a 2.11.11 server marks the stream offline, so packing for it
    // is refused as damaged; for the writer's own release it packs
    let t = testdata::sample("v2.15.1-plain");
    let d = testdata::stream_dir(&t, "v2.15.1-plain", "ORDERS");
    let raw = fs::read_to_string(d.join("meta.inf")).unwrap();
    let raw = raw.replacen('{', "{\"allow_msg_counter\":false,", 1);
    fs::write(d.join("meta.inf"), &raw).unwrap();
    let sum = crate::filestore::meta::expected_sum("ORDERS", raw.as_bytes());
    fs::write(d.join("meta.sum"), sum).unwrap();
    let mut o = opts(&t.path().join("old"), PackFormat::V1);
    o.server_version = Some(ServerVersion {
        major: 2,
        minor: 11,
        patch: 11,
    });
    let r = pack(&d, &o, &NoProgress).unwrap();
    assert!(!r.ok, "{:?}", r.refused);
    assert!(r
        .problems
        .iter()
        .any(|p| p.kind == crate::base::problem::Kind::ConfigUnknownField));
    let r = pack(
        &d,
        &opts(&t.path().join("new"), PackFormat::V1),
        &NoProgress,
    )
    .unwrap();
    assert!(r.ok, "{:?}", r.refused);
}

/// pack's own walk of the live messages (v2) writes exactly what `state::messages::walk_live`
/// hands out: the same sequences, times, subjects, headers and payloads, in order, for every
/// stream of the 2.15 samples (plain and S2-compressed, with deletes, tombstones and purges).
#[test]
fn v2_entries_are_the_reference_walks() {
    use crate::backup::natsarc::NatsArcReader;
    use crate::state::messages::walk_live;
    for sample in ["v2.15.1-plain", "v2.15.1-s2"] {
        let t = testdata::sample(sample);
        let f = facts(&t, sample);
        for name in f["streams"].as_object().unwrap().keys() {
            let d = testdata::stream_dir(&t, sample, name);
            let out = t.path().join(format!("bk-{name}"));
            let r = pack(&d, &opts(&out, PackFormat::V2), &NoProgress).unwrap();
            assert_eq!(r.exit_code(), 0, "{sample} {name}");
            let mut want = Vec::new();
            walk_live(&d, &NoProgress, |m| {
                want.push((
                    m.seq,
                    m.ts,
                    m.subject.to_vec(),
                    m.headers.to_vec(),
                    m.payload.to_vec(),
                ));
                Ok(())
            })
            .unwrap();
            let mut decoded = Vec::new();
            FrameReader::new(fs::File::open(out.join("stream.tar.s2")).unwrap())
                .read_to_end(&mut decoded)
                .unwrap();
            let mut rd = NatsArcReader::new(decoded.as_slice()).unwrap();
            let mut got = Vec::new();
            while let Some(e) = rd.next_entry().unwrap() {
                if e.seq > 0 {
                    got.push((e.seq, e.timestamp, e.name, e.header, e.payload));
                }
            }
            assert_eq!(got, want, "{sample} {name}");
        }
    }
}
