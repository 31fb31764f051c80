//! pack → verify → extract → verify gives the same state, for every format; the manifest
//! catches any change to a packed file.
use jetdir::base::progress::NoProgress;
use jetdir::base::report::Report;
use jetdir::base::report::StreamReport;
use jetdir::check::store::verify_store;
use jetdir::check::verify_path;
use jetdir::check::Options;
use jetdir::ops::extract::{extract, ExtractOptions};
use jetdir::ops::pack::{pack, PackFormat, PackOptions};
use std::fs;
use std::path::PathBuf;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

type Consumers = Vec<(String, Option<u64>, Option<u64>, Option<u64>)>;

/// messages, bytes, first, last, deleted, subjects, and per consumer (delivered, ack floor, pending).
fn state(s: &StreamReport) -> ([Option<u64>; 6], Consumers) {
    let mut c: Consumers = s
        .consumers
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.delivered_stream_seq,
                c.ack_floor_stream_seq,
                c.pending,
            )
        })
        .collect();
    c.sort();
    (
        [
            s.messages,
            s.bytes,
            s.first_seq,
            s.last_seq,
            s.deleted,
            s.subjects,
        ],
        c,
    )
}

fn only(r: &Report, name: &str) -> StreamReport {
    r.streams
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} missing: {:#?}", r.streams))
}

#[test]
fn pack_verify_extract_same_state_every_format() {
    for (sample, stream) in [
        ("v2.15.1-plain", "ORDERS"),
        ("v2.15.1-plain", "MULTI"),
        ("v2.15.1-s2", "CMP"),
        ("v2.9.10-legacy", "ORDERS"),
        ("v2.9.10-legacy", "KV_config"),
    ] {
        let store = fixture(&format!("{sample}/store"));
        let src = verify_store(&store, &Options::default(), &NoProgress).unwrap();
        let want = state(&only(&src, stream));
        for format in [PackFormat::V1, PackFormat::V2, PackFormat::Tgz] {
            let t = tempfile::tempdir().unwrap();
            let out = t.path().join(if format == PackFormat::Tgz {
                "out.tgz"
            } else {
                "out"
            });
            let opts = PackOptions {
                out: out.clone(),
                stream: Some(stream.into()),
                account: None,
                format,
                all: false,
                allow_damaged: false,
                no_consumers: false,
                force: false,
                server_version: None,
                keys: Default::default(),
                rename: None,
            };
            let pr = pack(&store, &opts, &NoProgress).unwrap();
            assert_eq!(
                pr.exit_code(),
                0,
                "{sample}/{stream} {format:?}: {}",
                serde_json::to_string_pretty(&pr).unwrap()
            );
            let v = verify_path(&out, &Options::default(), &NoProgress).unwrap();
            assert!(
                v.ok && v.problems.is_empty(),
                "{sample}/{stream} {format:?}: {:#?}",
                v.problems
            );
            assert!(
                v.notes.iter().any(|n| n.contains("manifest checked")),
                "{:?}",
                v.notes
            );
            assert_eq!(
                state(&only(&v, stream)),
                want,
                "{sample}/{stream} {format:?}: verify of the pack"
            );
            let dst = t.path().join("store");
            let er = extract(
                &out,
                &ExtractOptions {
                    store_dir: dst.clone(),
                    account: "$G".into(),
                    dry_run: false,
                    allow_damaged: false,
                    force: false,
                    create: true,
                    server_version: None,
                    rename: None,
                    keys: Default::default(),
                },
                &NoProgress,
            )
            .unwrap();
            assert_eq!(
                er.exit_code(),
                0,
                "{sample}/{stream} {format:?}: {}",
                serde_json::to_string_pretty(&er).unwrap()
            );
            let back = verify_store(&dst, &Options::default(), &NoProgress).unwrap();
            assert!(
                back.problems.is_empty(),
                "{sample}/{stream} {format:?}: {:#?}",
                back.problems
            );
            assert_eq!(
                state(&only(&back, stream)),
                want,
                "{sample}/{stream} {format:?}: after extract"
            );
        }
    }
}

#[test]
fn manifest_catches_a_changed_file() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let opts = PackOptions {
        out: out.clone(),
        stream: Some("ORDERS".into()),
        account: None,
        format: PackFormat::V1,
        all: false,
        allow_damaged: false,
        no_consumers: false,
        force: false,
        server_version: None,
        keys: Default::default(),
        rename: None,
    };
    pack(&fixture("v2.15.1-plain/store"), &opts, &NoProgress).unwrap();
    // a still-valid backup.json that is not the one packed
    let bj = out.join("backup.json");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&bj).unwrap()).unwrap();
    v["config"]["description"] = "edited".into();
    fs::write(&bj, serde_json::to_vec(&v).unwrap()).unwrap();
    let r = verify_path(&out, &Options::default(), &NoProgress).unwrap();
    let p = r
        .problems
        .iter()
        .find(|p| p.kind.as_str().starts_with("manifest_"))
        .unwrap_or_else(|| panic!("{:#?}", r.problems));
    assert_eq!(p.kind, "manifest_file_mismatch");
    assert!(
        p.loc
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("backup.json")),
        "{p:?}"
    );
    assert_eq!(r.exit_code(), 1);
}
