use super::*;
use crate::verify::NoProgress;

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/spec/samples/backups"
);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

fn opts(store: &Path) -> ExtractOptions {
    ExtractOptions {
        store_dir: store.to_path_buf(),
        account: "$G".into(),
        dry_run: false,
        allow_damaged: false,
        force: false,
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
    assert_eq!(rep.exit_code(), 0, "{}", rep.render());
    assert_eq!(rep.messages, Some(298));
    assert_eq!(rep.blocks, 1);
    assert_eq!(rep.block_size, Some(8 << 20));
    assert_eq!(rep.skip_record, None);
    assert_eq!(rep.consumers, ["SHIP", "AUDIT"]);
    let v = crate::verify::verify_store(&store, &crate::verify::Options::default(), &NoProgress)
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
    assert_eq!(rep.exit_code(), 0, "{}", rep.render());
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
    assert_eq!(rep.status, "dry_run");
    assert!(rep
        .target
        .as_deref()
        .unwrap()
        .ends_with("jetstream/ACC/streams/ORDERS"));
    assert!(!store.exists());
    assert!(rep.render().contains("msgs/1.blk"));
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
    assert_eq!(rep.exit_code(), 0, "{}", rep.render());
    assert_eq!(rep.streams.len(), 1);
    assert_eq!(rep.status, "written");
    let v = crate::verify::verify_store(&store, &crate::verify::Options::default(), &NoProgress)
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
    assert_eq!(rep.status, "partial");
    assert_eq!(rep.exit_code(), 2);
    assert_eq!(rep.streams[0].status, "written");
    assert!(rep.streams[1]
        .refused
        .as_deref()
        .unwrap()
        .contains("already exists in account $G"));
    let v = crate::verify::verify_store(&store2, &crate::verify::Options::default(), &NoProgress)
        .unwrap();
    assert_eq!(v.streams[0].messages, Some(8));
}
