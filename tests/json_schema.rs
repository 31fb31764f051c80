//! Every command's `--json` document against the published schema, `schema/jetdir.schema.json`:
//! verify and inspect (stores of each layout, backups of each format, damaged inputs, an
//! encrypted store), extract (written, dry run, refused, account backup), pack (v1, v2, tgz,
//! --all, refused) and the error document of a run that could not start (exit 2).
mod common;
#[path = "common/schema.rs"]
mod schema;

use common::copy_dir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn the_schema() -> Value {
    let raw = std::fs::read(repo().join("schema/jetdir.schema.json")).expect("schema file");
    serde_json::from_slice(&raw).expect("the schema is JSON")
}

fn errors(doc: &Value) -> Vec<String> {
    let s = the_schema();
    let mut errs = Vec::new();
    schema::validate(&s, &s, doc, "", &mut errs);
    errs
}

/// Run jetdir with `--json -q`, check the exit code, validate the document, return it.
fn run(args: &[&str], code: i32) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["--json", "-q"])
        .args(args)
        .output()
        .expect("run jetdir");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {doc:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(doc["exit_code"], code, "{args:?}");
    let errs = errors(&doc);
    assert!(
        errs.is_empty(),
        "{args:?}: the document does not match schema/jetdir.schema.json:\n  {}\n{doc:#}",
        errs.join("\n  ")
    );
    doc
}

fn fixture(rel: &str) -> String {
    repo().join("fixtures").join(rel).display().to_string()
}

fn private_copy(rel: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(Path::new(&fixture(rel)), t.path());
    t
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn the_schema_uses_only_what_the_test_validator_implements() {
    let sc = the_schema();
    let mut bad = Vec::new();
    schema::check_keywords(&sc, "#", &mut bad);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(
        sc["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn verify_and_inspect_documents_match_the_schema() {
    for store in [
        "v2.15.1-plain/store",
        "v2.15.1-s2/store",
        "v2.11.11-s2/store",
        "v2.9.10-legacy/store",
    ] {
        let t = private_copy(store);
        let v = run(&["verify", &s(t.path())], 0);
        assert_eq!(v["command"], "verify");
        assert_eq!(v["options"]["quick"], false);
        let i = run(&["inspect", &s(t.path())], 0);
        assert_eq!(i["command"], "inspect");
    }
    // backups of every format
    for b in [
        "backups/v2.15.1/ORDERS",
        "backups/v2.9.10/ORDERS",
        "backups/ORDERS.tgz",
    ] {
        let v = run(&["verify", &fixture(b)], 0);
        assert!(v["archive"]["format"].is_string(), "{b}: {v:#}");
        run(&["inspect", &fixture(b)], 0);
    }
    // an encrypted store: could not run (exit 2), as a report with its problem
    let t = private_copy("v2.15.1-enc-chacha/store");
    let v = run(&["verify", &s(t.path())], 2);
    assert!(v.get("error").is_none(), "{v:#}");
    assert_eq!(v["streams"][0]["encryption"]["key"], "none");
    // read with the key (and with the wrong one): the encryption section validates too
    let k = tempfile::tempdir().unwrap();
    let (good, bad) = (k.path().join("good"), k.path().join("bad"));
    std::fs::write(&good, "jetdir-sample-key-0123456789abcdef").unwrap();
    std::fs::write(&bad, "wrong").unwrap();
    let t = private_copy("v2.15.1-enc-aes/store");
    let v = run(&["inspect", "--key-file", &s(&good), &s(t.path())], 0);
    assert_eq!(v["streams"][0]["encryption"]["key"], "given");
    let v = run(&["verify", "--key-file", &s(&bad), &s(t.path())], 2);
    assert_eq!(v["streams"][0]["encryption"]["key"], "wrong");
}

#[test]
fn the_options_that_change_the_result_are_recorded() {
    let t = private_copy("v2.15.1-plain/store");
    let v = run(
        &[
            "verify",
            "--quick",
            "--at",
            "2030-01-02T03:04:05Z",
            "--server-version",
            "2.12.8",
            &s(t.path()),
        ],
        0,
    );
    assert_eq!(v["options"]["quick"], true, "{v:#}");
    assert_eq!(v["options"]["at"], "2030-01-02T03:04:05.000000000Z");
    assert_eq!(v["options"]["server_version"], "2.12.8");
    // and the times are there as integers and as RFC 3339 strings
    let orders = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ORDERS")
        .unwrap();
    assert!(orders["first_ts"].is_i64());
    assert!(orders["first_time"]
        .as_str()
        .is_some_and(|t| t.starts_with("2026-11-24T")));
    let c1 = &orders["consumers"][0];
    assert_eq!(c1["name"], "C1");
    assert_eq!(c1["num_ack_pending"], 1);
    // C1 delivered up to seq 5 of 1..=10 with 6 and 9 deleted... the loaded stream decides
    assert!(c1["num_pending"].is_u64(), "{c1:#}");
}

#[test]
fn damaged_inputs_match_the_schema() {
    // one flipped payload byte in MULTI/msgs/2.blk: record_checksum, loses_data
    let t = private_copy("v2.15.1-plain/store");
    let blk = t.path().join("jetstream/$G/streams/MULTI/msgs/2.blk");
    let mut b = std::fs::read(&blk).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x20;
    std::fs::write(&blk, b).unwrap();
    let v = run(&["verify", &s(t.path())], 1);
    assert_eq!(v["ok"], false);
    assert!(!v["problems"].as_array().unwrap().is_empty());
    run(&["inspect", &s(t.path())], 1);
    // the same without index.db: the server truncates, `load.lost` has ranges
    std::fs::remove_file(t.path().join("jetstream/$G/streams/MULTI/msgs/index.db")).unwrap();
    let v = run(&["verify", &s(t.path())], 1);
    let multi = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "MULTI")
        .unwrap();
    assert!(
        multi["load"]["lost_messages"].as_u64().unwrap() > 0,
        "{multi:#}"
    );
    // a truncated tarball
    let d = tempfile::tempdir().unwrap();
    let tgz = d.path().join("ORDERS.tgz");
    let raw = std::fs::read(fixture("backups/ORDERS.tgz")).unwrap();
    std::fs::write(&tgz, &raw[..raw.len() / 2]).unwrap();
    run(&["verify", &s(&tgz)], 1);
    run(
        &[
            "extract",
            &s(&tgz),
            "--store-dir",
            &s(d.path()),
            "--dry-run",
        ],
        1,
    );
    // two streams of one account whose subjects collide: `skipped` (name order) and
    // `may_not_load` (parallel recovery) verdicts
    let store = d.path().join("overlap");
    let bk = fixture("backups/v2.15.1/ORDERS");
    let st = s(&store);
    run(&["extract", &bk, "--store-dir", &st, "--create"], 0);
    run(
        &[
            "extract",
            &bk,
            "--store-dir",
            &st,
            "--account",
            "X",
            "--as",
            "ORDERS2",
        ],
        0,
    );
    std::fs::rename(
        store.join("jetstream/X/streams/ORDERS2"),
        store.join("jetstream/$G/streams/ORDERS2"),
    )
    .unwrap();
    for (release, verdict) in [("2.10.26", "skipped"), ("2.15.1", "may_not_load")] {
        let v = run(&["verify", &st, "--server-version", release], 1);
        let o2 = v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "ORDERS2")
            .unwrap();
        assert_eq!(o2["load"]["verdict"], verdict, "{release}");
        run(&["explain", &st, "--server-version", release], 1);
        run(&["check", &st, "--server-version", release], 1);
    }
}

/// `jetdir check --format json` (and `-j`) is a document of the same schema: clean, damaged,
/// could not run; subject delete markers in `load.markers` validate too.
#[test]
fn check_documents_match_the_schema() {
    // a private copy: another test's jetdir reading the fixture is a store_in_use warning
    let clean = private_copy("v2.15.1-plain/store");
    let v = run(&["check", &s(clean.path())], 0);
    assert_eq!(
        (v["command"].as_str(), v["status"].as_str()),
        (Some("check"), Some("OK"))
    );
    let t = private_copy("v2.15.1-plain/store");
    let blk = t.path().join("jetstream/$G/streams/MULTI/msgs/2.blk");
    let mut b = std::fs::read(&blk).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x20;
    std::fs::write(&blk, b).unwrap();
    let v = run(&["check", "--format", "json", &s(t.path())], 1);
    assert_eq!(v["status"], "CRITICAL");
    assert!(!v["problems"].as_array().unwrap().is_empty());
    let v = run(&["check", "/nonexistent/jetdir-schema-test"], 2);
    assert_eq!(v["status"], "UNKNOWN");
    assert!(v["error"].is_string());
    // a stream whose subjects max_age empties gets delete markers
    let t = private_copy("v2.15.1-plain/store");
    let d = t.path().join("jetstream/$G/streams/MULTI");
    let meta = d.join("meta.inf");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    cfg["max_age"] = 1_000_000_000i64.into();
    cfg["allow_msg_ttl"] = true.into();
    cfg["subject_delete_marker_ttl"] = 60_000_000_000i64.into();
    let raw = serde_json::to_vec(&cfg).unwrap();
    std::fs::write(&meta, &raw).unwrap();
    std::fs::write(
        d.join("meta.sum"),
        jetdir::filestore::expected_sum("MULTI", &raw),
    )
    .unwrap();
    let v = run(&["verify", &s(&d)], 0);
    let markers = v["streams"][0]["load"]["markers"].as_array().unwrap();
    assert!(!markers.is_empty(), "{v:#}");
}

/// `dump --json` is NDJSON: every line (message or finding) matches `$defs/dump_line`; `kv`
/// and `object` print one document of the common schema, also when they fail.
#[test]
fn dump_kv_and_object_documents_match_the_schema() {
    let sc = the_schema();
    let line_schema = serde_json::json!({"$ref": "#/$defs/dump_line"});
    let t = private_copy("v2.15.1-plain/store");
    // one flipped payload byte: the dump carries a finding in its place
    let blk = t.path().join("jetstream/$G/streams/MULTI/msgs/2.blk");
    let mut b = std::fs::read(&blk).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x20;
    std::fs::write(&blk, b).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["--json", "-q", "dump", "--include-deleted"])
        .arg(t.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut msgs, mut findings) = (0, 0);
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let mut errs = Vec::new();
        schema::validate(&sc, &line_schema, &v, "", &mut errs);
        assert!(errs.is_empty(), "{line}\n{}", errs.join("\n"));
        if v.get("finding").is_some() {
            findings += 1;
        } else {
            msgs += 1;
        }
    }
    assert!(
        msgs > 100 && findings > 0,
        "{msgs} messages, {findings} findings"
    );
    let store = fixture("v2.15.1-plain/store");
    let v = run(&["kv", &store, "--bucket", "config", "keys"], 0);
    assert_eq!(v["command"], "kv");
    assert!(!v["keys"].as_array().unwrap().is_empty());
    run(&["kv", &store, "--bucket", "config", "history", "a"], 0);
    let v = run(&["kv", &store, "--bucket", "config", "get", "nope"], 1);
    assert_eq!(v["found"], false);
    run(
        &[
            "kv",
            "/nonexistent/jetdir-schema-test",
            "--bucket",
            "config",
            "keys",
        ],
        2,
    );
    // no object bucket among the fixtures (tests/forensics_e2e.rs reads a real one): the
    // could-not-run document
    let v = run(&["object", &store, "--bucket", "files", "ls"], 2);
    assert_eq!(v["command"], "object");
}

#[test]
fn error_documents_match_the_schema() {
    let v = run(&["verify", "/nonexistent/jetdir-schema-test"], 2);
    assert!(v["error"].is_string());
    assert_eq!(v["command"], "verify");
    let v = run(
        &[
            "inspect",
            "--at",
            "yesterday",
            &fixture("v2.15.1-plain/store"),
        ],
        2,
    );
    assert!(v["error"].as_str().unwrap().contains("--at"));
    let d = tempfile::tempdir().unwrap();
    let v = run(
        &[
            "extract",
            &fixture("backups/ORDERS.tgz"),
            "--store-dir",
            &s(&d.path().join("missing")),
        ],
        2,
    );
    assert_eq!(v["command"], "extract");
}

#[test]
fn extract_and_pack_documents_match_the_schema() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    std::fs::create_dir(&store).unwrap();
    // a tarball (V1-like files), written
    let v = run(
        &[
            "extract",
            &fixture("backups/ORDERS.tgz"),
            "--store-dir",
            &s(&store),
        ],
        0,
    );
    assert_eq!(v["name"], "ORDERS");
    assert_eq!(v["bytes"], 582, "message bytes, as verify says: {v:#}");
    assert!(v["file_bytes"].as_u64().unwrap() > 582);
    assert_eq!(v["consumers"][0]["name"], "C1");
    // again: refused, the stream exists (exit 2, a report, not an error document)
    let v = run(
        &[
            "extract",
            &fixture("backups/ORDERS.tgz"),
            "--store-dir",
            &s(&store),
        ],
        2,
    );
    assert_eq!(v["status"], "refused");
    // a V2 backup, dry run
    let v = run(
        &[
            "extract",
            &fixture("backups/v2.15.1/ORDERS"),
            "--store-dir",
            &s(&store),
            "--account",
            "ACC",
            "--dry-run",
        ],
        0,
    );
    assert_eq!(v["status"], "dry_run");
    assert!(v["messages"].is_u64() && v["bytes"].is_u64(), "{v:#}");
    // pack every format from the store just written
    let src = private_copy("v2.15.1-plain/store");
    for fmt in ["v1", "v2", "tgz"] {
        let out = d.path().join(format!("pack-{fmt}"));
        let v = run(
            &[
                "pack",
                &s(src.path()),
                "--stream",
                "ORDERS",
                "--format",
                fmt,
                "-o",
                &s(&out),
            ],
            0,
        );
        assert_eq!(v["streams"][0]["deleted"], 2, "{v:#}");
        assert_eq!(v["streams"][0]["consumers"][0]["name"], "C1");
    }
    // OUT exists: refused
    run(
        &[
            "pack",
            &s(src.path()),
            "--stream",
            "ORDERS",
            "-o",
            &s(&d.path().join("pack-v1")),
        ],
        2,
    );
    // an account backup, packed then extracted stream by stream
    let all = d.path().join("all");
    run(&["pack", &s(src.path()), "--all", "-o", &s(&all)], 0);
    run(&["verify", &s(&all)], 0);
    let store2 = d.path().join("store2");
    std::fs::create_dir(&store2).unwrap();
    let v = run(&["extract", &s(&all), "--store-dir", &s(&store2)], 0);
    let names: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"ORDERS") && names.len() == 5, "{names:?}");
}

#[test]
fn the_schema_rejects_the_old_names() {
    let t = private_copy("v2.15.1-plain/store");
    let good = run(&["verify", &s(t.path())], 0);
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut d = good.clone();
        f(&mut d);
        assert!(!errors(&d).is_empty(), "accepted: {d:#}");
    };
    // consumers' ack pending was `pending`
    bad(&|d| {
        let c = &mut d["streams"][3]["consumers"][0];
        let p = c
            .as_object_mut()
            .unwrap()
            .remove("num_ack_pending")
            .unwrap();
        c["pending"] = p;
    });
    // a stream without its name, or with a string count
    bad(&|d| {
        d["streams"][0].as_object_mut().unwrap().remove("name");
    });
    bad(&|d| d["streams"][0]["messages"] = "8".into());
    // a time that is not RFC 3339, an unknown command, options not recorded
    bad(&|d| d["streams"][1]["first_time"] = "yesterday".into());
    bad(&|d| d["command"] = "frobnicate".into());
    bad(&|d| {
        d.as_object_mut().unwrap().remove("options");
    });
    bad(&|d| d["options"]["quick"] = Value::Null);
    bad(&|d| d["problems"] = serde_json::json!([{"severity": "fatal"}]));
}

/// `diff`, `salvage` and `explain` (issue #12): identical and differing copies, a written
/// salvage (dir and backup forms, healthy and damaged input), a refused one, the stories of a
/// healthy and a damaged store, and their error documents.
#[test]
fn diff_salvage_explain_documents_match_the_schema() {
    let a = private_copy("v2.15.1-plain/store");
    let b = private_copy("v2.15.1-plain/store");
    let d = run(&["diff", &s(a.path()), &s(b.path())], 0);
    assert_eq!(d["command"], "diff");
    assert_eq!(d["streams"].as_array().unwrap().len(), 5);
    // one flipped payload byte at seq 35 of MULTI (msgs/2.blk): differ, damaged
    let blk = b.path().join("jetstream/$G/streams/MULTI/msgs/2.blk");
    let mut bytes = std::fs::read(&blk).unwrap();
    bytes[4148 + 1037 - 9] ^= 0x55;
    std::fs::write(&blk, bytes).unwrap();
    let d = run(
        &["diff", &s(a.path()), &s(b.path()), "--stream", "MULTI"],
        1,
    );
    assert_eq!(d["streams"][0]["copies"][1]["missing_ranges"][0][0], 35);
    run(&["diff", &s(a.path()), "/nonexistent/jetdir"], 2);
    let v2 = fixture("backups/v2.15.1/ORDERS");
    run(&["diff", &v2, &fixture("backups/ORDERS.tgz")], 1);

    let out = tempfile::tempdir().unwrap();
    let d = run(
        &[
            "salvage",
            &s(a.path()),
            "--stream",
            "ORDERS",
            "-o",
            &s(&out.path().join("ORDERS")),
        ],
        0,
    );
    assert_eq!(d["command"], "salvage");
    assert_eq!(d["format"], "dir");
    let d = run(
        &[
            "salvage",
            &s(b.path()),
            "--stream",
            "MULTI",
            "-o",
            &s(&out.path().join("multi-v1")),
            "--format",
            "v1",
        ],
        1,
    );
    assert_eq!(d["streams"][0]["lost"], 1);
    let d = run(
        &[
            "salvage",
            &s(a.path()),
            "--stream",
            "ORDERS",
            "-o",
            &s(&out.path().join("ORDERS")),
        ],
        2,
    );
    assert!(d["refused"].is_string());
    run(
        &["salvage", &s(a.path()), "-o", &s(&out.path().join("X"))],
        2,
    );
    run(
        &[
            "salvage",
            &v2,
            "-o",
            &s(&out.path().join("v2-as-tgz.tgz")),
            "--format",
            "tgz",
        ],
        0,
    );

    let d = run(&["explain", &s(a.path())], 0);
    assert_eq!(d["command"], "explain");
    let d = run(&["explain", &s(b.path())], 1);
    assert!(d["streams"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["verdict"] == "loses_data"));
    run(&["explain", "/nonexistent/jetdir"], 2);
}

/// `extract --as` (its `renamed`), `pack --as` and `rehome` (written, refused) match the schema.
#[test]
fn rename_and_rehome_documents_match_the_schema() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let v = run(
        &[
            "extract",
            &fixture("backups/ORDERS.tgz"),
            "--store-dir",
            &s(&store),
            "--as",
            "ORDERS_COPY",
            "--subjects",
            "copy.>",
        ],
        0,
    );
    assert_eq!(v["name"], "ORDERS_COPY");
    assert_eq!(v["renamed"]["from"], "ORDERS");
    assert_eq!(v["renamed"]["records"], 12, "{v:#}");
    // another copy whose subjects overlap ORDERS_COPY's (copy.x within copy.>): refused
    let v = run(
        &[
            "extract",
            &fixture("backups/ORDERS.tgz"),
            "--store-dir",
            &s(&store),
            "--as",
            "THIRD",
            "--subjects",
            "copy.x",
        ],
        2,
    );
    assert!(v["refused"].as_str().unwrap().contains("overlap"), "{v:#}");
    let src = private_copy("v2.15.1-plain/store");
    let v = run(
        &[
            "pack",
            &s(src.path()),
            "--stream",
            "ORDERS",
            "--as",
            "O2",
            "-o",
            &s(&d.path().join("o2")),
        ],
        0,
    );
    assert_eq!(v["streams"][0]["name"], "O2");
    // rehome: the clustered sample
    let t = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(fixture("samples/v2.15.1-cluster-n1.tar.gz"))
        .arg("-C")
        .arg(t.path())
        .status()
        .unwrap();
    assert!(st.success());
    let cl = t
        .path()
        .join("v2.15.1-cluster-n1/store/jetstream/$G/streams/CL");
    let out = d.path().join("CL");
    let v = run(&["rehome", &s(&cl), "-o", &s(&out)], 0);
    assert_eq!(v["streams"][0]["changes"][0], "stream num_replicas 3 -> 1");
    assert_eq!(v["format"], "dir");
    let v = run(&["rehome", &s(&cl), "-o", &s(&out)], 2);
    assert!(v["refused"].as_str().unwrap().contains("exists"));
    // not a stream dir: an error document
    run(&["rehome", &s(d.path()), "-o", &s(&d.path().join("x"))], 2);
}

/// `jetdir cluster` on the sample clustered node (clean, exit 0), on a copy with an orphan
/// stream dir and a damaged raft snapshot (exit 1), and on a missing path (exit 2).
#[test]
fn cluster_documents_match_the_schema() {
    let t = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(repo().join("fixtures/samples/v2.15.1-cluster-n1.tar.gz"))
        .arg("-C")
        .arg(t.path())
        .status()
        .unwrap();
    assert!(st.success());
    let store = t.path().join("v2.15.1-cluster-n1/store");
    let d = run(&["cluster", &s(&store)], 0);
    assert_eq!(d["command"], "cluster");
    assert_eq!(d["groups"].as_array().unwrap().len(), 3);
    let d = run(&["cluster", "--server-name", "n1", &s(&store)], 0);
    assert!(d["self_peer"].is_string());

    let streams = store.join("jetstream/$G/streams");
    copy_dir(&streams.join("CL"), &streams.join("X"));
    let snap = store.join("jetstream/$SYS/_js_/S-R3F-W7suG6Iu/snapshots/snap.3.10");
    let mut b = std::fs::read(&snap).unwrap();
    b[40] ^= 0x10;
    std::fs::write(&snap, b).unwrap();
    let d = run(&["cluster", &s(&store)], 1);
    let kinds: Vec<&str> = d["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"cluster_orphan_stream"), "{d:#}");
    assert!(kinds.contains(&"raft_checksum"), "{d:#}");

    let d = run(&["cluster", &s(&t.path().join("nothing"))], 2);
    assert!(d["error"].as_str().unwrap().contains("nothing"));

    // the crash sample: stream and consumer logs past their dirs (warnings, exit 0), with
    // every field of stream_log and consumer_log set
    let st = Command::new("tar")
        .arg("xzf")
        .arg(repo().join("fixtures/samples/v2.15.1-cluster-log-n1.tar.gz"))
        .arg("-C")
        .arg(t.path())
        .status()
        .unwrap();
    assert!(st.success());
    let store = t.path().join("v2.15.1-cluster-log-n1/store");
    let d = run(&["cluster", "--server-name", "n1", &s(&store)], 0);
    let groups = d["groups"].as_array().unwrap();
    let sl = groups.iter().find(|g| g["kind"] == "stream").unwrap();
    assert_eq!(sl["stream_log"]["reapply_last_seq"], 9, "{d:#}");
    let cl = groups.iter().find(|g| g["kind"] == "consumer").unwrap();
    assert!(cl["consumer_log"]["after_restart"].is_object(), "{d:#}");
    assert!(cl["consumer_log"]["snapshot"].is_object(), "{d:#}");
    assert_eq!(d["problems"].as_array().unwrap().len(), 2, "{d:#}");
}
