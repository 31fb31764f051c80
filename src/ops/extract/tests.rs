use super::*;
use crate::base::progress::NoProgress;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/samples/backups");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

fn opts(store: &Path) -> ExtractOptions {
    ExtractOptions {
        store_dir: store.to_path_buf(),
        account: "$G".into(),
        dry_run: false,
        allow_damaged: false,
        force: false,
        create: true,
        server_version: None,
        rename: None,
        keys: Default::default(),
    }
}

/// Extract, then verify the written store offline: every checksum valid, the state equal to
/// the server's numbers when the backup was taken.
#[test]
fn v2_materialised_store_verifies_clean_with_the_servers_numbers() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let rep = extract(
        Path::new(&format!("{SAMPLES}/v2.15.1/ORDERS")),
        &opts(&store),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        rep.exit_code(),
        0,
        "{}",
        serde_json::to_string_pretty(&rep).unwrap()
    );
    assert_eq!(rep.messages, Some(298));
    assert_eq!(rep.blocks, 1);
    assert_eq!(rep.block_size, Some(8 << 20));
    assert_eq!(rep.skip_record, None);
    assert_eq!(rep.consumers, ["SHIP", "AUDIT"]);
    let v =
        crate::check::store::verify_store(&store, &crate::check::Options::default(), &NoProgress)
            .unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let s = &v.streams[0];
    assert_eq!(
        (
            s.messages,
            s.bytes,
            s.first_seq,
            s.last_seq,
            s.deleted,
            s.subjects
        ),
        (
            Some(298),
            Some(31313),
            Some(1),
            Some(300),
            Some(2),
            Some(30)
        )
    );
    assert_eq!(s.deleted_seqs, [100, 101]);
    let ship = s.consumers.iter().find(|c| c.name == "SHIP").unwrap();
    assert_eq!(
        (
            ship.delivered_consumer_seq,
            ship.delivered_stream_seq,
            ship.ack_floor_stream_seq,
            ship.pending,
            ship.redelivered
        ),
        (Some(61), Some(60), Some(50), Some(4), Some(1))
    );
    // meta.inf: Created first, then backup.json's config in its order.
    let mi = std::fs::read_to_string(store.join("jetstream/$G/streams/ORDERS/meta.inf")).unwrap();
    assert!(mi.starts_with("{\"Created\":\""), "{mi}");
    assert!(
        mi.contains("\"name\":\"ORDERS\",\"subjects\":[\"ORDERS.>\"],\"retention\":\"limits\""),
        "{mi}"
    );
    let cmi = std::fs::read_to_string(store.join("jetstream/$G/streams/ORDERS/obs/SHIP/meta.inf"))
        .unwrap();
    assert!(
        cmi.contains("\",\"Name\":\"SHIP\",\"durable_name\":\"SHIP\""),
        "{cmi}"
    );
    // No staging dir left.
    let left: Vec<_> = std::fs::read_dir(store.join("jetstream/$G/streams"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["ORDERS"]);
}

#[test]
fn v1_members_are_written_byte_for_byte() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let rep = extract(
        Path::new(&format!("{FIXTURES}/backups/ORDERS.tgz")),
        &opts(&store),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        rep.exit_code(),
        0,
        "{}",
        serde_json::to_string_pretty(&rep).unwrap()
    );
    let sdir = store.join("jetstream/$G/streams/ORDERS");
    let src = Path::new(FIXTURES).join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
    for f in [
        "meta.inf",
        "meta.sum",
        "msgs/1.blk",
        "msgs/index.db",
        "obs/C1/o.dat",
        "obs/C2/meta.inf",
    ] {
        assert_eq!(
            std::fs::read(sdir.join(f)).unwrap(),
            std::fs::read(src.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(rep.files.len(), 10);
    assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
}

#[test]
fn dry_run_writes_nothing_and_other_account() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let mut o = opts(&store);
    o.dry_run = true;
    o.account = "ACC".into();
    let rep = extract(
        Path::new(&format!("{SAMPLES}/v2.9/ORDERS")),
        &o,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(rep.exit_code(), 0);
    assert_eq!(rep.status, ExtractStatus::DryRun);
    assert!(rep
        .target
        .as_deref()
        .unwrap()
        .ends_with("jetstream/ACC/streams/ORDERS"));
    assert!(!store.exists());
    assert!(serde_json::to_string_pretty(&rep)
        .unwrap()
        .contains("msgs/1.blk"));
    let paths: Vec<&str> = rep.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        &paths[..5],
        [
            "meta.inf",
            "meta.sum",
            "msgs/1.idx",
            "msgs/1.fss",
            "msgs/1.blk"
        ]
    );
    o.account = "../x".into();
    assert!(extract(
        Path::new(&format!("{SAMPLES}/v2.9/ORDERS")),
        &o,
        &NoProgress
    )
    .is_err());
}

/// `nats account backup` dirs: every stream extracted on its own; a refusal of one (here a
/// second backup of a stream that now exists) does not undo the others, and the exit code says so.
#[test]
fn account_backup_extracts_each_stream() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let rep = extract(
        Path::new(&format!("{SAMPLES}/v2.14")),
        &opts(&store),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        rep.exit_code(),
        0,
        "{}",
        serde_json::to_string_pretty(&rep).unwrap()
    );
    assert_eq!(rep.streams.len(), 1);
    assert_eq!(rep.status, ExtractStatus::Written);
    let v =
        crate::check::store::verify_store(&store, &crate::check::Options::default(), &NoProgress)
            .unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.streams[0].messages, Some(298));

    // two backups of ORDERS in one account dir: the first lands, the second is refused
    let acct = tmp.path().join("acct");
    for (dir, src) in [
        ("A", format!("{FIXTURES}/backups/v2.15.1/ORDERS")),
        ("B", format!("{SAMPLES}/v2.9/ORDERS")),
    ] {
        fs::create_dir_all(acct.join(dir)).unwrap();
        for f in ["backup.json", "stream.tar.s2"] {
            fs::copy(Path::new(&src).join(f), acct.join(dir).join(f)).unwrap();
        }
    }
    let store2 = tmp.path().join("store2");
    let rep = extract(&acct, &opts(&store2), &NoProgress).unwrap();
    assert_eq!(rep.streams.len(), 2);
    assert_eq!(rep.status, ExtractStatus::Partial);
    assert_eq!(rep.exit_code(), 2);
    assert_eq!(rep.streams[0].status, ExtractStatus::Written);
    assert!(rep.streams[1]
        .refused
        .as_deref()
        .unwrap()
        .contains("already exists in account $G"));
    let v =
        crate::check::store::verify_store(&store2, &crate::check::Options::default(), &NoProgress)
            .unwrap();
    assert_eq!(v.streams[0].messages, Some(8));
}

// ---------------------------------------------------------------------------------------------
// One-pass V2 extraction: it must refuse exactly what `jetdir verify` finds damaged.

use crate::backup::natsarc::{self, ArcEntry, NatsArcReader, NatsArcWriter};
use crate::base::problem::Severity;
use std::collections::BTreeSet;
use std::io::Write as _;

fn orders_v2() -> PathBuf {
    PathBuf::from(format!("{SAMPLES}/v2.15.1/ORDERS"))
}

fn v2_entries(dir: &Path) -> Vec<ArcEntry> {
    let f = fs::File::open(dir.join("stream.tar.s2")).unwrap();
    let mut r = NatsArcReader::new(crate::s2::FrameReader::new(f)).unwrap();
    let mut v = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        v.push(e);
    }
    v
}

/// A backup dir `dst` with backup.json `bj` and an archive of `entries` (+ `tail` raw bytes
/// appended to the S2 file).
fn write_v2(dst: &Path, bj: &[u8], entries: &[ArcEntry], tail: &[u8]) {
    fs::create_dir_all(dst).unwrap();
    fs::write(dst.join("backup.json"), bj).unwrap();
    let mut w = NatsArcWriter::new(Vec::new()).unwrap();
    for e in entries {
        w.write_entry(&e.name, e.timestamp, e.seq, &e.header, &e.payload)
            .unwrap();
    }
    let arc = w.finish().unwrap();
    // two S2 chunks (damage to the second one is not seen by content detection)
    let (a, b) = arc.split_at(arc.len() / 2);
    let mut fw = crate::s2::FrameWriter::new(Vec::new());
    fw.write_all(a).unwrap();
    fw.flush().unwrap();
    fw.write_all(b).unwrap();
    let mut s2 = fw.finish().unwrap();
    s2.extend_from_slice(tail);
    fs::write(dst.join("stream.tar.s2"), s2).unwrap();
}

fn error_kinds(p: &[Problem]) -> BTreeSet<String> {
    p.iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.kind.to_string())
        .collect()
}

#[test]
fn v2_damage_is_refused_with_the_problems_verify_reports() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = orders_v2();
    let bj = fs::read(src.join("backup.json")).unwrap();
    let entries = v2_entries(&src);
    assert_eq!(entries.len(), 1 + 2 + 298);
    let mut cases: Vec<(&str, PathBuf, &str)> = Vec::new();
    let mut case = |name: &'static str, kind: &'static str| {
        let d = tmp.path().join("cases").join(name).join("ORDERS");
        cases.push((name, d.clone(), kind));
        d
    };
    // an interior message missing
    let mut e = entries.clone();
    e.retain(|x| x.seq != 299);
    write_v2(&case("dropped", "v2_message_count"), &bj, &e, b"");
    // backup.json promises another message count
    let bj2 = String::from_utf8(bj.clone()).unwrap().replacen(
        "\"messages\": 298",
        "\"messages\": 297",
        1,
    );
    assert!(bj2.contains("\"messages\": 297"));
    write_v2(
        &case("backup-json", "backup_json_mismatch"),
        bj2.as_bytes(),
        &entries,
        b"",
    );
    // a consumer delivered past the stream's end
    let mut e = entries.clone();
    let c = e.iter_mut().find(|x| x.name == b"consumers/SHIP").unwrap();
    let mut j: serde_json::Value =
        serde_json::from_slice(&[c.header.clone(), c.payload.clone()].concat()).unwrap();
    j["state"]["delivered"]["stream_seq"] = 5000.into();
    c.header.clear();
    c.payload = serde_json::to_vec(&j).unwrap();
    write_v2(&case("consumer", "consumer_past_stream"), &bj, &e, b"");
    // a chunk with a bad CRC after the end sentinel (verify reads the file to its end)
    write_v2(
        &case("trailing", "s2_corrupt"),
        &bj,
        &entries,
        &[
            0x01, 0x09, 0, 0, 0xde, 0xad, 0xbe, 0xef, b'x', b'y', b'z', b'!', b'?',
        ],
    );
    // a flipped byte in the middle, and a cut-off file
    write_v2(&case("corrupt", "s2_corrupt"), &bj, &entries, b"");
    write_v2(&case("truncated", "s2_truncated"), &bj, &entries, b"");
    for (name, dir, _) in &cases {
        let p = dir.join("stream.tar.s2");
        let mut raw = fs::read(&p).unwrap();
        match *name {
            "corrupt" => {
                let at = raw.len() - 300;
                raw[at] ^= 0x55;
            }
            "truncated" => raw.truncate(raw.len() - 100),
            _ => continue,
        }
        fs::write(&p, raw).unwrap();
    }

    for (name, dir, kind) in &cases {
        let v = crate::check::verify_archive(dir, &crate::check::Options::default(), &NoProgress)
            .unwrap();
        let want = error_kinds(&v.problems);
        assert!(want.contains(*kind), "{name}: verify found {want:?}");
        for dry in [false, true] {
            let store = tmp.path().join(format!("store-{name}-{dry}"));
            let mut o = opts(&store);
            o.dry_run = dry;
            let rep = extract(dir, &o, &NoProgress).unwrap();
            assert_eq!(
                rep.exit_code(),
                1,
                "{name}: {}",
                serde_json::to_string_pretty(&rep).unwrap()
            );
            assert_eq!(rep.status, ExtractStatus::Damaged, "{name}");
            let got = error_kinds(&rep.problems);
            assert!(
                want.is_subset(&got),
                "{name}: verify {want:?}, extract {got:?}"
            );
            assert!(rep.files.is_empty() && rep.bytes == 0, "{name}");
            assert!(!store.exists(), "{name} dry={dry}: something was written");
        }
    }

    // --allow-damaged writes what there is (and says it is damaged)
    let (_, dropped, _) = &cases[0];
    let store = tmp.path().join("store-allowed");
    let mut o = opts(&store);
    o.allow_damaged = true;
    let rep = extract(dropped, &o, &NoProgress).unwrap();
    assert_eq!(
        rep.exit_code(),
        1,
        "{}",
        serde_json::to_string_pretty(&rep).unwrap()
    );
    assert_eq!(rep.status, ExtractStatus::WrittenDamaged);
    assert_eq!(rep.messages, Some(297));
    assert!(error_kinds(&rep.problems).contains("v2_message_count"));
    let v =
        crate::check::store::verify_store(&store, &crate::check::Options::default(), &NoProgress)
            .unwrap();
    assert_eq!(v.streams[0].messages, Some(297));
    assert_eq!(v.streams[0].deleted_seqs, [100, 101, 299]);
}

/// A leftover staging dir of a dead run is removed only when the archive turned out fine.
#[test]
fn leftover_staging_is_kept_when_the_archive_is_damaged() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = orders_v2();
    let mut e = v2_entries(&src);
    e.retain(|x| x.seq != 5);
    let bad = tmp.path().join("bad/ORDERS");
    write_v2(&bad, &fs::read(src.join("backup.json")).unwrap(), &e, b"");
    let store = tmp.path().join("store");
    let streams = store.join("jetstream/$G/streams");
    // pid 1 is never a jetdir
    let old = streams.join(".jetdir-staging-ORDERS-1");
    fs::create_dir_all(old.join("msgs")).unwrap();
    let rep = extract(&bad, &opts(&store), &NoProgress).unwrap();
    assert_eq!(
        rep.status,
        ExtractStatus::Damaged,
        "{}",
        serde_json::to_string_pretty(&rep).unwrap()
    );
    assert!(rep.removed_staging.is_empty());
    assert!(old.is_dir());
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&streams), [".jetdir-staging-ORDERS-1"]);
    let rep = extract(&src, &opts(&store), &NoProgress).unwrap();
    assert_eq!(
        rep.status,
        ExtractStatus::Written,
        "{}",
        serde_json::to_string_pretty(&rep).unwrap()
    );
    assert_eq!(rep.removed_staging, [old.display().to_string()]);
    assert_eq!(names(&streams), ["ORDERS"]);
}

#[test]
fn next_entry_into_reads_what_next_entry_reads() {
    let raw =
        crate::s2::decode_stream(&fs::read(orders_v2().join("stream.tar.s2")).unwrap()).unwrap();
    let all = {
        let mut r = NatsArcReader::new(raw.as_slice()).unwrap();
        let mut v = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            v.push(e);
        }
        (v, r.position())
    };
    let mut r = NatsArcReader::new(raw.as_slice()).unwrap();
    let mut e = ArcEntry::empty();
    let mut got = Vec::new();
    while r.next_entry_into(&mut e).unwrap() {
        got.push(e.clone());
    }
    assert_eq!(got.len(), 301);
    assert_eq!(got, all.0);
    assert_eq!(r.position(), all.1);
    assert!(!r.next_entry_into(&mut e).unwrap(), "stays at the end");
    // Cut anywhere: the same error (kind and offsets) as next_entry, and it sticks.
    for cut in [9usize, 20, 400, raw.len() / 2, raw.len() - 3] {
        let part = &raw[..cut];
        let mut a = NatsArcReader::new(part).unwrap();
        let ea = loop {
            match a.next_entry() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("cut {cut}: no error"),
                Err(x) => break x,
            }
        };
        let mut b = NatsArcReader::new(part).unwrap();
        let eb = loop {
            match b.next_entry_into(&mut e) {
                Ok(true) => {}
                Ok(false) => panic!("cut {cut}: no error"),
                Err(x) => break x,
            }
        };
        assert_eq!(ea.to_string(), eb.to_string(), "cut {cut}");
        assert_eq!(a.position(), b.position(), "cut {cut}");
        assert!(b.next_entry_into(&mut e).is_err());
    }
    // A huge declared payload is refused before anything is allocated for it.
    let mut huge = natsarc::MAGIC.to_vec();
    for v in [4u8, 2, 2, 0] {
        huge.push(v);
    }
    huge.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x01]); // 256 MiB payload
    huge.extend_from_slice(b"a.b.");
    let mut r = NatsArcReader::new(huge.as_slice()).unwrap();
    assert!(matches!(
        r.next_entry_into(&mut e),
        Err(natsarc::ArcError::EntryTooLarge { .. })
    ));
}

/// The `status` contract: the JSON text of every value (the same as its `Display`).
#[test]
fn status_serialises_as_before() {
    for (st, text) in [
        (ExtractStatus::Written, "written"),
        (ExtractStatus::WrittenDamaged, "written_damaged"),
        (ExtractStatus::DryRun, "dry_run"),
        (ExtractStatus::Damaged, "damaged"),
        (ExtractStatus::Refused, "refused"),
        (ExtractStatus::Partial, "partial"),
    ] {
        assert_eq!(serde_json::to_value(st).unwrap(), text);
        assert_eq!(st.to_string(), text);
    }
    let j = serde_json::to_value(ExtractReport::default()).unwrap();
    assert!(j.get("outcome").is_none() && j.get("code").is_none());
}
