//! Rename, move and re-home against the real servers (issue #13): `extract --as`, `pack --as`,
//! `--account`, `rehome`. Each output is loaded by a real nats-server (2.15.1, and 2.9.10 for
//! the renames) and compared with the original as the same server loads it: STREAM.INFO
//! numbers, every consumer's CONSUMER.INFO numbers and every message (STREAM.MSG.GET).
//!
//! Servers: env `NATS_SERVER_215` (else `$REPO/.venv/bin/nats-server`) and `NATS_SERVER_29`
//! (else `/usr/sbin/nats-server`); Python with nats-py. Missing → reported as ignored (build.rs
//! sets `cfg(jetdir_no_server)`); under `CI=true` they run and fail.
mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `jetdir --json -q ARGS` → (exit code, JSON report).
fn jetdir(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["--json", "-q"])
        .args(args)
        .output()
        .expect("run jetdir");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}) from {args:?}: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// Copy a directory tree (fixtures are read-only inputs).
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let p = e.path();
        let d = dst.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &d);
        } else {
            std::fs::copy(&p, &d).unwrap();
        }
    }
}

/// A fixture store copied into `tmp/name`.
fn store_copy(tmp: &Path, fixture: &str, name: &str) -> PathBuf {
    let dst = tmp.join(name);
    copy_tree(&fixtures().join(fixture).join("store"), &dst);
    dst
}

/// Start `server` on `store`, optionally restore backups, record `ACC/STREAM`s.
fn load(
    server: &Path,
    store: &Path,
    accounts: &[&str],
    restores: &[&Path],
    record: &[&str],
) -> Value {
    let out = store.with_extension("rename-check.json");
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/support/rename_check.py"))
        .arg("--server")
        .arg(server)
        .arg("--store")
        .arg(store)
        .arg("--out")
        .arg(&out)
        .arg("--accounts")
        .arg(accounts.join(","));
    for r in restores {
        cmd.arg("--restore").arg(r);
    }
    for r in record {
        cmd.arg("--record").arg(r);
    }
    let o = cmd.output().expect("run rename_check.py");
    assert!(
        o.status.success(),
        "rename_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// What must be equal between the original and its renamed / moved copy: the stream's
/// numbers, per-subject counts, consumers' numbers, and every message.
fn comparable(rec: &Value) -> Value {
    let mut e = rec["expected"].clone();
    // the first/last timestamps are those of the messages, compared with them below
    json!({"expected": e.take(), "messages": rec["messages"].clone()})
}

fn record<'a>(v: &'a Value, key: &str) -> &'a Value {
    let r = &v["records"][key];
    assert!(
        !r.is_null(),
        "{key} not loaded; names {:#}; log:\n{}",
        v["names"],
        log_text(v)
    );
    r
}

fn log_text(v: &Value) -> String {
    v["log"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Server log lines that warn or err about `stream`.
fn complaints(v: &Value, stream: &str) -> Vec<String> {
    v["log"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|l| (l.contains("[WRN]") || l.contains("[ERR]")) && l.contains(stream))
        .map(str::to_string)
        .collect()
}

/// `extract --as` of a real backup beside its original (the same backup extracted under its
/// own name into the same store and account): refused without --subjects (the subjects
/// clash), then loaded by the server under both names with identical numbers, consumers and
/// messages.
fn renamed_extract_beside_original(server: &Path, backup: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let bk = fixtures().join(backup);
    let (code, rep) = jetdir(&["extract", &s(&bk), "--store-dir", &s(&store), "--create"]);
    assert_eq!(code, 0, "{rep:#}");
    let (code, rep) = jetdir(&[
        "extract",
        &s(&bk),
        "--store-dir",
        &s(&store),
        "--as",
        "ORDERS2",
    ]);
    assert_eq!(code, 2, "{rep:#}");
    assert!(
        rep["refused"].as_str().unwrap().contains("overlap"),
        "{rep:#}"
    );
    assert!(!store.join("jetstream/$G/streams/ORDERS2").exists());
    let (code, rep) = jetdir(&[
        "extract",
        &s(&bk),
        "--store-dir",
        &s(&store),
        "--as",
        "ORDERS2",
        "--subjects",
        "orders2.>",
    ]);
    assert_eq!(code, 0, "{rep:#}");
    assert_eq!(rep["name"], "ORDERS2");
    assert_eq!(rep["renamed"]["from"], "ORDERS");
    assert_eq!(rep["renamed"]["to"], "ORDERS2");
    assert!(rep["renamed"]["damaged"].as_array().unwrap().is_empty());
    let v = load(server, &store, &[], &[], &["$G/ORDERS", "$G/ORDERS2"]);
    let (a, b) = (record(&v, "$G/ORDERS"), record(&v, "$G/ORDERS2"));
    assert_eq!(
        comparable(a),
        comparable(b),
        "{backup}: renamed copy differs"
    );
    assert_eq!(b["info"]["config"]["name"], "ORDERS2");
    assert_eq!(b["info"]["config"]["subjects"], json!(["orders2.>"]));
    assert_eq!(b["consumers"].as_object().unwrap().len(), 2);
    assert_eq!(complaints(&v, "ORDERS2"), Vec::<String>::new());
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn renamed_extract_loads_beside_the_original_215() {
    renamed_extract_beside_original(&server_215(), "backups/v2.15.1/ORDERS");
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn renamed_extract_loads_beside_the_original_29() {
    renamed_extract_beside_original(&server_29(), "backups/v2.9.10/ORDERS");
}

/// `pack --as` (every format the release restores), restored into a fresh server (v1/v2
/// through the restore API, tgz with extract), equals the original as the same server loads it.
fn renamed_pack_restores(server: &Path, fixture: &str, formats: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_copy(tmp.path(), fixture, "store");
    let orig = load(server, &store, &[], &[], &["$G/ORDERS"]);
    let want = comparable(record(&orig, "$G/ORDERS"));
    for f in formats {
        let out = tmp.path().join(format!("bk-{f}"));
        let (code, rep) = jetdir(&[
            "pack",
            &s(&store),
            "--stream",
            "ORDERS",
            "--as",
            "COPY",
            "--format",
            f,
            "-o",
            &s(&out),
        ]);
        assert_eq!(code, 0, "{rep:#}");
        assert_eq!(rep["streams"][0]["name"], "COPY");
        // jetdir's own verify of the output
        let (code, v) = jetdir(&["verify", &s(&out)]);
        assert_eq!(code, 0, "{v:#}");
        let fresh = tmp.path().join(format!("fresh-{f}"));
        let got = if *f == "tgz" {
            let (code, rep) = jetdir(&["extract", &s(&out), "--store-dir", &s(&fresh), "--create"]);
            assert_eq!(code, 0, "{rep:#}");
            load(server, &fresh, &[], &[], &["$G/COPY"])
        } else {
            load(server, &fresh, &[], &[&out], &["$G/COPY"])
        };
        let r = record(&got, "$G/COPY");
        assert_eq!(comparable(r), want, "{fixture} {f}: restored copy differs");
        assert_eq!(r["info"]["config"]["name"], "COPY");
        assert_eq!(complaints(&got, "COPY"), Vec::<String>::new(), "{f}");
    }
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn renamed_pack_restores_215() {
    renamed_pack_restores(&server_215(), "v2.15.1-plain", &["v1", "v2", "tgz"]);
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn renamed_pack_restores_29() {
    renamed_pack_restores(&server_29(), "v2.9.10-legacy", &["v1", "tgz"]);
}

/// A stream moved between accounts: extracted into account A, packed from A, extracted into
/// B of the same store; a server with accounts A and B (JetStream enabled) loads it in both,
/// identical.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn moved_stream_loads_in_the_other_account() {
    let server = server_215();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let bk = fixtures().join("backups/v2.15.1/ORDERS");
    let (code, rep) = jetdir(&[
        "extract",
        &s(&bk),
        "--store-dir",
        &s(&store),
        "--create",
        "--account",
        "A",
    ]);
    assert_eq!(code, 0, "{rep:#}");
    // A only: B has nothing yet (the test can tell the accounts apart)
    let before = load(&server, &store, &["A", "B"], &[], &["A/ORDERS", "B/ORDERS"]);
    assert_eq!(before["names"]["B"], json!([]), "{:#}", before["names"]);
    let want = comparable(record(&before, "A/ORDERS"));
    let moved = tmp.path().join("moved.tgz");
    let (code, rep) = jetdir(&[
        "pack",
        &s(&store),
        "--account",
        "A",
        "--stream",
        "ORDERS",
        "--format",
        "tgz",
        "-o",
        &s(&moved),
    ]);
    assert_eq!(code, 0, "{rep:#}");
    let (code, rep) = jetdir(&[
        "extract",
        &s(&moved),
        "--store-dir",
        &s(&store),
        "--account",
        "B",
    ]);
    assert_eq!(code, 0, "{rep:#}");
    let after = load(&server, &store, &["A", "B"], &[], &["A/ORDERS", "B/ORDERS"]);
    assert_eq!(comparable(record(&after, "B/ORDERS")), want);
    assert_eq!(comparable(record(&after, "A/ORDERS")), want);
    assert_eq!(complaints(&after, "ORDERS"), Vec::<String>::new());
}

/// The clustered node's R3 stream (a real 2.15.1 cluster node, fixtures/samples): copied as it
/// is, a standalone server does not load it (replicas > 1); rehomed, it loads with every
/// message and its consumer, as a dir and through a tgz + extract.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn rehomed_cluster_stream_loads_on_a_standalone_server() {
    let server = server_215();
    let tmp = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(fixtures().join("samples/v2.15.1-cluster-n1.tar.gz"))
        .arg("-C")
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(st.success());
    let src = tmp
        .path()
        .join("v2.15.1-cluster-n1/store/jetstream/$G/streams/CL");
    // as it is: not loaded
    let raw = tmp.path().join("raw");
    copy_tree(&src, &raw.join("jetstream/$G/streams/CL"));
    let v = load(&server, &raw, &[], &[], &["$G/CL"]);
    assert_eq!(v["names"]["$G"], json!([]), "{}", log_text(&v));
    // rehomed into a stream dir
    let out = tmp.path().join("CL");
    let (code, rep) = jetdir(&["rehome", &s(&src), "-o", &s(&out)]);
    assert_eq!(code, 0, "{rep:#}");
    assert!(rep["streams"][0]["changes"]
        .as_array()
        .unwrap()
        .contains(&json!("stream num_replicas 3 -> 1")));
    let (code, v) = jetdir(&["verify", &s(&out)]);
    assert_eq!(code, 0, "{v:#}");
    let store = tmp.path().join("standalone");
    std::fs::create_dir_all(store.join("jetstream/$G/streams")).unwrap();
    std::fs::rename(&out, store.join("jetstream/$G/streams/CL")).unwrap();
    let v = load(&server, &store, &[], &[], &["$G/CL"]);
    let r = record(&v, "$G/CL");
    assert_eq!(r["expected"]["messages"], rep["streams"][0]["messages"]);
    assert_eq!(r["expected"]["messages"], 5);
    assert_eq!(r["messages"].as_array().unwrap().len(), 5);
    assert_eq!(r["info"]["config"]["num_replicas"], 1);
    assert_eq!(
        r["consumers"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["D"]
    );
    assert_eq!(
        r["expected"]["consumers"]["D"]["num_pending"],
        rep["streams"][0]["consumers"][0]["num_pending"]
    );
    let want = comparable(r);
    // rehomed as a tgz, extracted with jetdir: the same
    let tgz = tmp.path().join("CL.tgz");
    let (code, rep) = jetdir(&["rehome", &s(&src), "--format", "tgz", "-o", &s(&tgz)]);
    assert_eq!(code, 0, "{rep:#}");
    let store2 = tmp.path().join("standalone2");
    let (code, rep) = jetdir(&["extract", &s(&tgz), "--store-dir", &s(&store2), "--create"]);
    assert_eq!(code, 0, "{rep:#}");
    let v = load(&server, &store2, &[], &[], &["$G/CL"]);
    assert_eq!(comparable(record(&v, "$G/CL")), want);
}

/// Damage is never laundered by a rename: a record whose checksum fails under the old name is
/// refused (exit 1) by `pack --as` and `extract --as`; with --allow-damaged it is written as it
/// was (exit 1), listed in `renamed.damaged`, and jetdir's verify of the output still finds it.
#[test]
fn a_damaged_record_is_not_re_keyed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_copy(tmp.path(), "v2.15.1-plain", "store");
    let blk = store.join("jetstream/$G/streams/ORDERS/msgs/1.blk");
    let mut b = std::fs::read(&blk).unwrap();
    b[40] ^= 0x20; // inside seq 1's payload
    std::fs::write(&blk, b).unwrap();
    let packed = tmp.path().join("p");
    let (code, rep) = jetdir(&[
        "pack",
        &s(&store),
        "--stream",
        "ORDERS",
        "--as",
        "O2",
        "-o",
        &s(&packed),
    ]);
    assert_eq!(code, 1, "{rep:#}");
    assert!(!packed.exists());
    let (code, rep) = jetdir(&[
        "pack",
        &s(&store),
        "--stream",
        "ORDERS",
        "--as",
        "O2",
        "--allow-damaged",
        "-o",
        &s(&packed),
    ]);
    assert_eq!(code, 1, "{rep:#}");
    assert!(
        rep["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("not re-keyed: msgs/1.blk")),
        "{rep:#}"
    );
    let (code, v) = jetdir(&["verify", &s(&packed)]);
    assert_eq!(code, 1, "{v:#}");
    assert!(v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["kind"] == "record_checksum"));
    // a damaged tarball of the original, extracted under a new name
    let tgz = tmp.path().join("damaged.tgz");
    let (code, _) = jetdir(&[
        "pack",
        &s(&store),
        "--stream",
        "ORDERS",
        "--format",
        "tgz",
        "--allow-damaged",
        "-o",
        &s(&tgz),
    ]);
    assert_eq!(code, 1);
    let target = tmp.path().join("target");
    let (code, rep) = jetdir(&[
        "extract",
        &s(&tgz),
        "--store-dir",
        &s(&target),
        "--create",
        "--as",
        "O3",
    ]);
    assert_eq!(code, 1, "{rep:#}");
    assert!(!target.join("jetstream/$G/streams/O3").exists());
    let (code, rep) = jetdir(&[
        "extract",
        &s(&tgz),
        "--store-dir",
        &s(&target),
        "--create",
        "--as",
        "O3",
        "--allow-damaged",
    ]);
    assert_eq!(code, 1, "{rep:#}");
    assert_eq!(rep["status"], "written_damaged");
    let d = &rep["renamed"]["damaged"];
    assert_eq!(d.as_array().unwrap().len(), 1, "{rep:#}");
    assert_eq!(d[0]["seq"], 1);
    assert_eq!(d[0]["file"], "msgs/1.blk");
    let (code, v) = jetdir(&["verify", &s(&target.join("jetstream/$G/streams/O3"))]);
    assert_eq!(code, 1, "{v:#}");
    let p: Vec<&Value> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "record_checksum")
        .collect();
    assert_eq!(p.len(), 1, "{v:#}");
}

/// An encrypted 2.15.1 store (chacha) packed under a new name with its key: the plaintext
/// backup restores into a fresh 2.15.1 as the new name with the numbers, consumer and messages
/// the server reported for the original before it was stopped (the fixture's facts.json).
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn renamed_pack_of_an_encrypted_store_restores() {
    let server = server_215();
    let tmp = tempfile::tempdir().unwrap();
    let facts: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("v2.15.1-enc-chacha/facts.json")).unwrap(),
    )
    .unwrap();
    let key = tmp.path().join("key");
    std::fs::write(&key, facts["encryption_key"].as_str().unwrap()).unwrap();
    let store = fixtures().join("v2.15.1-enc-chacha/store");
    let out = tmp.path().join("bk");
    let (code, rep) = jetdir(&[
        "pack",
        &s(&store),
        "--stream",
        "SECRET",
        "--key-file",
        &s(&key),
        "--as",
        "SECRET_COPY",
        "-o",
        &s(&out),
    ]);
    assert_eq!(code, 0, "{rep:#}");
    let fresh = tmp.path().join("fresh");
    let v = load(&server, &fresh, &[], &[&out], &["$G/SECRET_COPY"]);
    let r = record(&v, "$G/SECRET_COPY");
    let want = &facts["streams"]["SECRET"];
    // facts.json records no num_pending (the rest of CONSUMER.INFO's numbers it has)
    let mut got = r["expected"].clone();
    for c in got["consumers"].as_object_mut().unwrap().values_mut() {
        c.as_object_mut().unwrap().remove("num_pending");
    }
    assert_eq!(got, want["expected"]);
    assert_eq!(r["messages"], want["messages"]);
}

/// nats-server of exactly `version`: `$JETDIR_SERVERS` ("VER=PATH,..."), else where
/// scripts/install-deps.sh puts it (`$REPO/.servers/<ver>/bin/nats-server`), as natsbox.py's
/// find_release; missing: the test fails (see common::missing).
fn release(version: &str) -> PathBuf {
    let env = std::env::var("JETDIR_SERVERS").unwrap_or_default();
    let from_env = env
        .split([',', ';'])
        .filter_map(|i| i.split_once('='))
        .find(|(v, _)| *v == version)
        .map(|(_, p)| PathBuf::from(p));
    let p = from_env.unwrap_or_else(|| {
        repo()
            .join(".servers")
            .join(version)
            .join("bin/nats-server")
    });
    if !p.is_file() {
        missing(&format!(
            "nats-server {version} at {} (JETDIR_SERVERS)",
            p.display()
        ));
    }
    p
}

/// The test: a stopped 3-node loopback cluster with an R3 stream (placement cluster
/// C1, a deleted message, headers) and an R3 durable consumer with acks and pending
/// deliveries. The stream dir of every node, rehomed, loads on a standalone server of the same
/// release with the numbers, consumer state and messages the cluster reported before it was
/// stopped.
fn rehome_from_a_cluster(server: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cluster.json");
    let o = Command::new(python())
        .arg(repo().join("tests/support/cluster_rehome.py"))
        .arg("--server")
        .arg(server)
        .arg("--dir")
        .arg(tmp.path())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run cluster_rehome.py");
    assert!(
        o.status.success(),
        "cluster_rehome.py failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let cluster: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let want = comparable(&cluster["record"]);
    assert_eq!(cluster["record"]["info"]["config"]["num_replicas"], 3);
    for n in ["n1", "n2", "n3"] {
        let src = tmp.path().join(n).join("store/jetstream/$G/streams/CL");
        let dst = tmp.path().join(format!("{n}-CL"));
        let (code, rep) = jetdir(&["rehome", &s(&src), "-o", &s(&dst)]);
        assert_eq!(code, 0, "{n}: {rep:#}");
        let ch = rep["streams"][0]["changes"].as_array().unwrap();
        assert!(ch.contains(&json!("stream num_replicas 3 -> 1")), "{ch:?}");
        assert!(ch
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("stream placement removed")));
        assert!(
            ch.contains(&json!("consumer D num_replicas 3 -> 0")),
            "{ch:?}"
        );
        let store = tmp.path().join(format!("{n}-standalone"));
        std::fs::create_dir_all(store.join("jetstream/$G/streams")).unwrap();
        std::fs::rename(&dst, store.join("jetstream/$G/streams/CL")).unwrap();
        let v = load(server, &store, &[], &[], &["$G/CL"]);
        let r = record(&v, "$G/CL");
        assert_eq!(
            comparable(r),
            want,
            "{n}: the rehomed stream differs from the cluster's"
        );
        assert_eq!(r["info"]["config"]["num_replicas"], 1);
        assert!(r["info"]["config"]
            .get("placement")
            .is_none_or(Value::is_null));
        assert_eq!(complaints(&v, "CL"), Vec::<String>::new(), "{n}");
    }
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn stream_rehomed_from_a_stopped_3_node_cluster_loads_standalone_215() {
    rehome_from_a_cluster(&server_215());
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server releases: bash scripts/install-deps.sh"
)]
fn stream_rehomed_from_a_stopped_3_node_cluster_loads_standalone_212() {
    rehome_from_a_cluster(&release("2.12.8"));
}

/// Why `extract --as` refuses overlapping subjects, and what `verify` predicts for two streams
/// of one account whose subjects collide. A server refuses a stream whose subjects collide
/// with one it has already recovered ("Error recreating stream ...: subjects overlap with an
/// existing stream"): 2.10.26 and 2.11.6 recover streams one by one in name order (ORDERS
/// loads, ORDERS2 is refused, every time); 2.15.1 recovers them in parallel, so it loads one,
/// the other or both, by timing (all three seen here), and jetdir says `may_not_load` for both.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server releases and nats-py: bash scripts/install-deps.sh"
)]
fn overlapping_subjects_lose_a_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let bk = fixtures().join("backups/v2.15.1/ORDERS");
    let (code, rep) = jetdir(&["extract", &s(&bk), "--store-dir", &s(&store), "--create"]);
    assert_eq!(code, 0, "{rep:#}");
    // the same stream under another name but the same subjects, moved in by hand
    let (code, rep) = jetdir(&[
        "extract",
        &s(&bk),
        "--store-dir",
        &s(&store),
        "--account",
        "X",
        "--as",
        "ORDERS2",
    ]);
    assert_eq!(code, 0, "{rep:#}");
    std::fs::rename(
        store.join("jetstream/X/streams/ORDERS2"),
        store.join("jetstream/$G/streams/ORDERS2"),
    )
    .unwrap();
    std::fs::remove_dir_all(store.join("jetstream/X")).unwrap();
    let verdicts = |version: &str| {
        let (code, rep) = jetdir(&["verify", &s(&store), "--server-version", version]);
        assert_eq!(code, 1, "{version}: {rep:#}");
        let overlaps: Vec<String> = rep["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "subjects_overlap")
            .map(|p| p["stream"].as_str().unwrap_or_default().to_string())
            .collect();
        let v: Vec<(String, String)> = rep["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| {
                (
                    st["name"].as_str().unwrap().to_string(),
                    st["load"]["verdict"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (v, overlaps)
    };
    // one by one in name order: the same outcome on every start
    for version in ["2.10.26", "2.11.6"] {
        let (v, overlaps) = verdicts(version);
        assert_eq!(
            v,
            [
                ("ORDERS".to_string(), "repaired".to_string()),
                ("ORDERS2".to_string(), "skipped".to_string())
            ],
            "{version}"
        );
        assert_eq!(overlaps, ["ORDERS2"], "{version}");
        for _ in 0..2 {
            let copy = tmp.path().join(format!("copy-{version}"));
            let _ = std::fs::remove_dir_all(&copy);
            copy_dir(&store, &copy);
            let r = load(&release(version), &copy, &[], &[], &["$G/ORDERS"]);
            assert_eq!(
                r["names"]["$G"],
                json!(["ORDERS"]),
                "{version}: {:#}",
                r["names"]
            );
            assert!(
                log_text(&r).contains("Error recreating stream \"ORDERS2\": subjects overlap"),
                "{version}: {}",
                log_text(&r)
            );
        }
    }
    // in parallel: either may be refused, or neither; jetdir cannot say which
    let (v, overlaps) = verdicts("2.15.1");
    assert!(
        v.iter().all(|(_, verdict)| verdict == "may_not_load"),
        "{v:?}"
    );
    assert_eq!(overlaps, ["ORDERS", "ORDERS2"]);
    for i in 0..3 {
        let copy = tmp.path().join(format!("copy-215-{i}"));
        copy_dir(&store, &copy);
        let r = load(&server_215(), &copy, &[], &[], &[]);
        let names: Vec<&str> = r["names"]["$G"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(!names.is_empty(), "neither loaded: {}", log_text(&r));
        for refused in ["ORDERS", "ORDERS2"].iter().filter(|n| !names.contains(n)) {
            assert!(
                log_text(&r).contains(&format!(
                    "Error recreating stream \"{refused}\": subjects overlap"
                )),
                "{}",
                log_text(&r)
            );
        }
    }
    // a plain extract of a stream whose subjects overlap one in the account: written, with a
    // warning (account Z holds OTHER on orders.>)
    let (code, rep) = jetdir(&[
        "extract",
        &s(&fixtures().join("backups/ORDERS.tgz")),
        "--store-dir",
        &s(&store),
        "--account",
        "Z",
        "--as",
        "OTHER",
    ]);
    assert_eq!(code, 0, "{rep:#}");
    let (code, rep) = jetdir(&[
        "extract",
        &s(&bk),
        "--store-dir",
        &s(&store),
        "--account",
        "Z",
    ]);
    assert_eq!(code, 0, "{rep:#}");
    assert!(
        rep["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("overlap those of stream \"OTHER\"")),
        "{rep:#}"
    );
}
