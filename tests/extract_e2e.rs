//! `jetdir extract` end to end: extract real backups into fresh store dirs, start the real
//! nats-server 2.15.1 on each and compare what it loaded (STREAM.INFO, CONSUMER.INFO, every
//! message via STREAM.MSG.GET) with the server's own numbers from when the backup was taken,
//! and with the same backup restored through the server's restore API.
//!
//! Server: env `NATS_SERVER_215`, else `$REPO/.venv/bin/nats-server`; Python with nats-py:
//! `$REPO/.venv/bin/python`. Missing → the server tests are reported as ignored (build.rs sets
//! `cfg(jetdir_no_server)`); under `CI=true` they run and fail.
mod common;

use common::*;
use jetdir::backup::NatsArcWriter;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    repo().join("fixtures")
}
fn samples() -> PathBuf {
    repo().join("fixtures/samples/backups")
}

/// Run `jetdir extract --json ARCHIVE --store-dir STORE extra...` → (exit code, JSON report).
fn extract(archive: &Path, store: &Path, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["--json", "-q", "extract"])
        .arg(archive)
        .arg("--store-dir")
        .arg(store)
        .arg("--create")
        .args(extra)
        .output()
        .expect("run jetdir");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// Start the server on `store` (and, with `restore`, restore that backup into a fresh one).
fn check(server: &Path, store: &Path, stream: &str, restore: Option<&Path>) -> Value {
    let out = store.with_extension("check.json");
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/support/extract_check.py"))
        .arg("--server")
        .arg(server)
        .arg("--store")
        .arg(store)
        .args(["--stream", stream, "--out"])
        .arg(&out);
    if let Some(r) = restore {
        cmd.arg("--restore").arg(r);
    }
    let o = cmd.output().expect("run extract_check.py");
    assert!(
        o.status.success(),
        "extract_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The numbers a loaded stream must show, from a `record_stream` "expected" block.
fn state_of(expected: &Value) -> Value {
    let mut cons = serde_json::Map::new();
    if let Some(m) = expected["consumers"].as_object() {
        for (k, c) in m {
            cons.insert(k.clone(), consumer_of(c));
        }
    }
    json!({
        "messages": expected["messages"], "bytes": expected["bytes"],
        "first_seq": expected["first_seq"], "last_seq": expected["last_seq"],
        "first_ts": expected["first_ts"], "last_ts": expected["last_ts"],
        "num_deleted": expected["num_deleted"], "num_subjects": expected["num_subjects"],
        "consumers": cons,
    })
}

fn consumer_of(c: &Value) -> Value {
    json!({
        "delivered": [c["delivered"]["consumer_seq"], c["delivered"]["stream_seq"]],
        "ack_floor": [c["ack_floor"]["consumer_seq"], c["ack_floor"]["stream_seq"]],
        "num_ack_pending": c["num_ack_pending"],
        "num_redelivered": c["num_redelivered"],
    })
}

/// server-truth.json of fixtures/samples/backups/<v>/ in the same shape.
fn sample_truth(t: &Value) -> Value {
    let st = &t["stream_info_state"];
    let mut cons = serde_json::Map::new();
    if let Some(m) = t["consumers"].as_object() {
        for (k, c) in m {
            cons.insert(k.clone(), consumer_of(c));
        }
    }
    json!({
        "messages": st["messages"], "bytes": st["bytes"],
        "first_seq": st["first_seq"], "last_seq": st["last_seq"],
        "first_ts": st["first_ts"], "last_ts": st["last_ts"],
        "num_deleted": st.get("num_deleted").cloned().unwrap_or(json!(0)),
        "num_subjects": st.get("num_subjects").cloned().unwrap_or(json!(0)),
        "consumers": cons,
    })
}

/// Messages of a V2 archive in the `get_messages` shape.
fn archive_messages(stream_tar_s2: &Path) -> Vec<Value> {
    let f = std::fs::File::open(stream_tar_s2).unwrap();
    let mut out = Vec::new();
    jetdir::backup::scan_v2(
        jetdir::s2::FrameReader::new(f),
        jetdir::backup::V2Options::new("stream.tar.s2"),
        |e, role| {
            if role == jetdir::backup::EntryRole::Message {
                out.push(json!({
                    "seq": e.seq,
                    "subject": e.name_lossy(),
                    "time": jetdir::base::time::go_time(e.timestamp),
                    "hdrs": if e.header.is_empty() { Value::Null } else { json!(String::from_utf8_lossy(&e.header)) },
                    "data": String::from_utf8_lossy(&e.payload),
                }));
            }
        },
    );
    out
}

fn stream_log_problems(log: &Value, stream: &str) -> Vec<String> {
    log.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|l| (l.contains("[WRN]") || l.contains("[ERR]")) && l.contains(stream))
        .map(str::to_string)
        .collect()
}

struct Case {
    archive: PathBuf,
    /// Backup dir to restore through the API (not for tgz: the API refuses gzip).
    restore: Option<PathBuf>,
    truth: Value,
    messages: Option<Vec<Value>>,
    format: &'static str,
    files_before_start: &'static [&'static str],
}

fn run_case(server: &Path, c: &Case) {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let (code, rep) = extract(&c.archive, &store, &[]);
    assert_eq!(code, 0, "{rep:#}");
    assert_eq!(rep["status"], "written");
    assert_eq!(rep["archive"]["format"], c.format);
    let sdir = store.join("jetstream/$G/streams/ORDERS");
    for f in c.files_before_start {
        assert!(sdir.join(f).is_file(), "{f} missing: {rep:#}");
    }
    if c.format == "v2" {
        // No index.db is written for V2: the server rebuilds the state from the blocks...
        assert!(!sdir.join("msgs/index.db").exists());
    }
    let r = check(server, &store, "ORDERS", c.restore.as_deref());
    let ext = &r["extracted"];
    // ...and writes index.db itself at shutdown.
    assert!(
        ext["files_after_stop"]
            .as_array()
            .unwrap()
            .contains(&json!("ORDERS/msgs/index.db")),
        "{:#}",
        ext["files_after_stop"]
    );
    assert_eq!(ext["names"], json!(["ORDERS"]), "{:#}", ext["log"]);
    let got = state_of(&ext["record"]["expected"]);
    assert_eq!(
        got,
        c.truth,
        "{}: loaded state differs from the server's",
        c.archive.display()
    );
    assert_eq!(
        stream_log_problems(&ext["log"], "ORDERS"),
        Vec::<String>::new(),
        "server complained"
    );
    let msgs = ext["record"]["messages"].as_array().unwrap();
    assert_eq!(msgs.len() as u64, c.truth["messages"].as_u64().unwrap());
    if let Some(want) = &c.messages {
        assert_eq!(msgs, want, "{}: messages differ", c.archive.display());
    }
    if c.restore.is_some() {
        let res = &r["restored"];
        assert_eq!(
            ext["record"]["expected"], res["record"]["expected"],
            "extracted and API-restored streams differ"
        );
        assert_eq!(ext["record"]["messages"], res["record"]["messages"]);
    }
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn extract_real_backups_and_start_the_server() {
    let server = server_215();
    python_with_nats();
    let fx = fixtures().join("backups");
    let t215 = read_json(&fx.join("v2.15.1/server-truth.json"));
    let t29 = read_json(&fx.join("v2.9.10/server-truth.json"));
    let plain = read_json(&fixtures().join("v2.15.1-plain/facts.json"));
    let mut cases = vec![
        Case {
            archive: fx.join("v2.15.1/ORDERS"),
            restore: Some(fx.join("v2.15.1/ORDERS")),
            truth: state_of(&t215["stream"]["expected"]),
            messages: Some(t215["stream"]["messages"].as_array().unwrap().clone()),
            format: "v2",
            // No index.db: the server rebuilds it from the blocks (checked in the log/state).
            files_before_start: &["meta.inf", "meta.sum", "msgs/1.blk", "obs/C1/o.dat"],
        },
        Case {
            archive: fx.join("v2.9.10/ORDERS"),
            restore: Some(fx.join("v2.9.10/ORDERS")),
            truth: state_of(&t29["stream"]["expected"]),
            messages: Some(t29["stream"]["messages"].as_array().unwrap().clone()),
            format: "v1",
            files_before_start: &["msgs/1.idx", "msgs/1.fss", "msgs/1.blk"],
        },
        Case {
            archive: fx.join("ORDERS.tgz"),
            restore: None,
            truth: state_of(&plain["streams"]["ORDERS"]["expected"]),
            messages: Some(
                plain["streams"]["ORDERS"]["messages"]
                    .as_array()
                    .unwrap()
                    .clone(),
            ),
            format: "tgz",
            files_before_start: &["msgs/index.db", "obs/C2/o.dat"],
        },
    ];
    for v in ["v2.14", "v2.15.1", "v2.9"] {
        let dir = samples().join(v).join("ORDERS");
        let v2 = v == "v2.15.1";
        cases.push(Case {
            archive: dir.clone(),
            restore: Some(dir.clone()),
            truth: sample_truth(&read_json(&samples().join(v).join("server-truth.json"))),
            messages: if v2 {
                Some(archive_messages(&dir.join("stream.tar.s2")))
            } else {
                None
            },
            format: if v2 { "v2" } else { "v1" },
            files_before_start: &["meta.inf", "obs/SHIP/o.dat", "obs/AUDIT/meta.sum"],
        });
    }
    for c in &cases {
        run_case(&server, c);
    }
    // Shared sample truth, spelled out: 298 msgs, 100 and 101 deleted, SHIP (61,60)/(50,50).
    assert_eq!(cases[4].truth["messages"], 298);
    assert_eq!(
        cases[4].truth["consumers"]["SHIP"]["delivered"],
        json!([61, 60])
    );
}

/// A V2 archive written here: `msgs` = (seq, subject, payload), state from them.
fn build_v2(dir: &Path, config: Value, msgs: &[(u64, String, Vec<u8>)], first: u64, last: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let ts0: i64 = 1_790_000_000_000_000_000;
    let bytes: u64 = msgs
        .iter()
        .map(|(_, s, p)| jetdir::backup::filestore_msg_size(s.len() as u64, 0, p.len() as u64))
        .sum();
    let ts_of = |seq: u64| ts0 + seq as i64 * 1_000_000;
    let fmt = jetdir::base::time::go_time;
    let mut state = json!({
        "messages": msgs.len(), "bytes": bytes, "first_seq": first,
        "first_ts": msgs.first().map(|m| fmt(ts_of(m.0))).unwrap_or("0001-01-01T00:00:00Z".into()),
        "last_seq": last,
        "last_ts": msgs.last().map(|m| fmt(ts_of(m.0))).unwrap_or("0001-01-01T00:00:00Z".into()),
        "consumer_count": 1
    });
    let nd = (last + 1)
        .saturating_sub(first)
        .saturating_sub(msgs.len() as u64);
    if nd > 0 && !msgs.is_empty() {
        state["num_deleted"] = json!(nd);
    }
    let f = std::fs::File::create(dir.join("stream.tar.s2")).unwrap();
    let mut w = NatsArcWriter::new(jetdir::s2::encode::ParFrameWriter::new(f)).unwrap();
    w.write_entry(b"state.json", ts0, 0, b"", state.to_string().as_bytes())
        .unwrap();
    let cons = json!({"config": {"durable_name": "D", "name": "D", "deliver_policy": "all",
        "ack_policy": "explicit", "ack_wait": 30000000000u64, "max_deliver": -1,
        "replay_policy": "instant", "max_waiting": 512, "max_ack_pending": 1000, "num_replicas": 0},
        "state": {"delivered": {"consumer_seq": 2, "stream_seq": msgs.get(1).map(|m| m.0).unwrap_or(0)},
                  "ack_floor": {"consumer_seq": 1, "stream_seq": msgs.first().map(|m| m.0).unwrap_or(0)}}});
    // A consumer made on a stream whose first seq is F starts at stream seq F-1 (as a server
    // would have recorded it).
    let floor = first.saturating_sub(1);
    let cons = if msgs.len() < 2 {
        json!({"config": cons["config"], "state": {"delivered": {"consumer_seq": 0, "stream_seq": floor}, "ack_floor": {"consumer_seq": 0, "stream_seq": floor}}})
    } else {
        cons
    };
    w.write_entry(b"consumers/D", ts0, 0, b"", cons.to_string().as_bytes())
        .unwrap();
    for (seq, subj, p) in msgs {
        w.write_entry(subj.as_bytes(), ts_of(*seq), *seq, b"", p)
            .unwrap();
    }
    w.finish().unwrap().finish().unwrap();
    let bj = json!({"config": config, "state": state});
    std::fs::write(
        dir.join("backup.json"),
        serde_json::to_vec_pretty(&bj).unwrap(),
    )
    .unwrap();
}

/// Sequence gaps inside and between blocks, first_seq > 1, trailing deletes, empty streams:
/// the extracted store and the API-restored one must load identically.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn v2_gaps_first_seq_and_trailing_deletes_match_the_restore_api() {
    let server = server_215();
    python_with_nats();
    let tmp = tempfile::TempDir::new().unwrap();
    let cfg = |name: &str, max_bytes: i64| {
        json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())], "retention": "limits",
               "max_consumers": -1, "max_msgs": -1, "max_bytes": max_bytes, "max_age": 0,
               "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old", "storage": "file",
               "num_replicas": 1, "duplicate_window": 120000000000u64, "compression": "none",
               "allow_direct": false, "mirror_direct": false, "sealed": false, "deny_delete": false,
               "deny_purge": false, "allow_rollup_hdrs": false, "consumer_limits": {}})
    };
    // GAPS: seqs 5..=200; 636-byte records, 50 per 32000-byte block (max_bytes 127000 gives
    // 32000 and keeps all 188 messages): blocks 5..54, 58..109, 112..163, 164..200 — gaps
    // 55..=57 and 110..=111 fall between blocks, 61, 62 and 120 inside one; last_seq 210
    // (201..=210 deleted).
    let keep = |s: u64| ![55, 56, 57, 61, 62, 110, 111, 120].contains(&s);
    let msgs: Vec<(u64, String, Vec<u8>)> = (5..=200u64)
        .filter(|s| keep(*s))
        .map(|s| {
            (
                s,
                format!("gaps.{}", s % 7),
                vec![b'a' + (s % 26) as u8; 600],
            )
        })
        .collect();
    let gaps = tmp.path().join("GAPS");
    build_v2(&gaps, cfg("GAPS", 127_000), &msgs, 5, 210);
    // EMPTYLAST: everything deleted: 0 messages, first 11, last 10.
    let emptylast = tmp.path().join("EMPTYLAST");
    build_v2(&emptylast, cfg("EMPTYLAST", -1), &[], 11, 10);
    // NEVER: never used: 0 / 0 / 0.
    let never = tmp.path().join("NEVER");
    build_v2(&never, cfg("NEVER", -1), &[], 0, 0);

    for (dir, name, blocks) in [
        (&gaps, "GAPS", 4u64),
        (&emptylast, "EMPTYLAST", 1),
        (&never, "NEVER", 1),
    ] {
        let store = tmp.path().join(format!("store-{name}"));
        let (code, rep) = extract(dir, &store, &[]);
        assert_eq!(code, 0, "{rep:#}");
        assert_eq!(rep["blocks"], blocks, "{name}: {rep:#}");
        let r = check(&server, &store, name, Some(dir));
        let ext = &r["extracted"]["record"];
        let res = &r["restored"]["record"];
        if name == "NEVER" {
            // A never-used stream: the original server reports first 0, last 0, deleted [0]
            // (fixtures EMPTY); the extracted store loads exactly so, while the restore API
            // makes first 1, last 0 (its Compact(first_seq) on an empty store).
            assert_eq!(
                (
                    &ext["expected"]["first_seq"],
                    &ext["expected"]["num_deleted"],
                    &ext["expected"]["deleted"]
                ),
                (&json!(0), &json!(1), &json!([0]))
            );
            assert_eq!(res["expected"]["first_seq"], 1);
        } else {
            assert_eq!(
                ext["expected"], res["expected"],
                "{name}: extracted vs restored"
            );
        }
        assert_eq!(ext["messages"], res["messages"], "{name}");
        assert_eq!(
            stream_log_problems(&r["extracted"]["log"], name),
            Vec::<String>::new()
        );
        let e = &ext["expected"];
        match name {
            "GAPS" => {
                assert_eq!(rep["block_size"], 32000);
                assert_eq!(rep["skip_record"], 210);
                assert_eq!(e["first_seq"], 5);
                assert_eq!(e["last_seq"], 210);
                assert_eq!(e["messages"], msgs.len());
                let mut del: Vec<u64> = (5..=210u64).filter(|s| *s > 200 || !keep(*s)).collect();
                del.sort();
                assert_eq!(e["deleted"], json!(del));
                assert_eq!(e["consumers"]["D"]["delivered"]["stream_seq"], 6);
            }
            "EMPTYLAST" => {
                assert_eq!(
                    (
                        e["messages"].as_u64(),
                        e["first_seq"].as_u64(),
                        e["last_seq"].as_u64()
                    ),
                    (Some(0), Some(11), Some(10))
                );
            }
            _ => {
                assert_eq!(
                    (
                        e["messages"].as_u64(),
                        e["first_seq"].as_u64(),
                        e["last_seq"].as_u64()
                    ),
                    (Some(0), Some(0), Some(0))
                );
            }
        }
    }
}

/// Every file under `root` with its content hash (to prove nothing changed).
fn tree(root: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            let h = if e.file_type().is_file() {
                let b = std::fs::read(e.path()).unwrap();
                jetdir::base::hash::hh64(&jetdir::base::hash::key_for("t"), &[&b])
            } else {
                0
            };
            (
                e.path().strip_prefix(root).unwrap().display().to_string(),
                h,
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn second_extract_is_refused_and_changes_nothing() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let b = fixtures().join("backups/v2.15.1/ORDERS");
    let (code, rep) = extract(&b, &store, &[]);
    assert_eq!(code, 0, "{rep:#}");
    let before = tree(tmp.path());
    let (code, rep) = extract(&b, &store, &[]);
    assert_eq!(code, 2);
    assert_eq!(rep["status"], "refused");
    assert_eq!(
        rep["refused"],
        "stream \"ORDERS\" already exists in account $G"
    );
    assert_eq!(before, tree(tmp.path()));
    // Same for a V1 backup of the same stream and with --force.
    let (code, rep) = extract(&fixtures().join("backups/ORDERS.tgz"), &store, &["--force"]);
    assert_eq!(
        (code, rep["refused"].as_str()),
        (2, Some("stream \"ORDERS\" already exists in account $G"))
    );
    assert_eq!(before, tree(tmp.path()));
}

#[test]
fn clustered_store_is_refused_unless_forced() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir_all(store.join("jetstream/$SYS/_js_/_meta_")).unwrap();
    let before = tree(tmp.path());
    let b = fixtures().join("backups/v2.15.1/ORDERS");
    let (code, rep) = extract(&b, &store, &[]);
    assert_eq!(code, 2, "{rep:#}");
    let why = rep["refused"].as_str().unwrap();
    assert!(
        why.contains("clustered") && why.contains("orphan") && why.contains("30 s"),
        "{why}"
    );
    assert_eq!(before, tree(tmp.path()));
    let (code, rep) = extract(&b, &store, &["--force"]);
    assert_eq!(code, 0, "{rep:#}");
    assert!(
        rep["warnings"][0].as_str().unwrap().contains("--force"),
        "{rep:#}"
    );
    assert!(store.join("jetstream/$G/streams/ORDERS/meta.sum").is_file());
}

#[test]
fn running_server_is_refused() {
    // A process with its cwd in the store stands in for a server.
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir_all(store.join("jetstream")).unwrap();
    let mut child = Command::new("sleep")
        .arg("20")
        .current_dir(store.join("jetstream"))
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let b = fixtures().join("backups/v2.15.1/ORDERS");
    let (code, rep) = extract(&b, &store, &[]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 2, "{rep:#}");
    let why = rep["refused"].as_str().unwrap();
    assert!(why.contains(&format!("pid {}", child.id())), "{why}");
    assert!(!store.join("jetstream/$G").exists());
}

#[test]
fn dry_run_lists_files_and_writes_nothing() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let (code, rep) = extract(&samples().join("v2.15.1/ORDERS"), &store, &["--dry-run"]);
    assert_eq!(code, 0, "{rep:#}");
    assert_eq!(rep["status"], "dry_run");
    assert!(!store.exists());
    let files: Vec<&str> = rep["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "meta.inf",
            "meta.sum",
            "obs/SHIP/meta.inf",
            "obs/SHIP/meta.sum",
            "obs/SHIP/o.dat",
            "obs/AUDIT/meta.inf",
            "obs/AUDIT/meta.sum",
            "obs/AUDIT/o.dat",
            "msgs/1.blk"
        ]
    );
    assert_eq!(rep["messages"], 298);
    // 298 records of 31313 bytes + one 30-byte skip record? No: last_seq 300 is a message.
    assert_eq!(rep["files"][8]["bytes"], 31313);
}

/// Run `jetdir extract` of the 2.15.1 ORDERS sample backup into `store`, aborting (SIGABRT)
/// after `files` files; returns the names left in the account's `streams/` dir. The env var is
/// read only by builds with debug assertions (`src/ops/staging.rs`): `cargo test` builds
/// `CARGO_BIN_EXE_jetdir` in its (debug) test profile; `cargo test --release` would not abort.
fn interrupted_extract(store: &Path, files: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["-q", "extract"])
        .arg(samples().join("v2.15.1/ORDERS"))
        .arg("--store-dir")
        .arg(store)
        .arg("--create")
        .env("JETDIR_TEST_ABORT_AFTER_FILES", files)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(out.status.code(), None, "killed by SIGABRT");
    stream_dir_names(store)
}

/// Sorted names in `store/jetstream/$G/streams`.
fn stream_dir_names(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("jetstream/$G/streams"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn interrupted_extract_leaves_no_stream_and_is_cleaned_up() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let b = samples().join("v2.15.1/ORDERS");
    let left = interrupted_extract(&store, "4");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(".jetdir-staging-ORDERS-"), "{left:?}");
    assert!(!store.join("jetstream/$G/streams/ORDERS").exists());

    // Interrupt again: a second staging dir beside the first; then the next run removes
    // exactly the leftovers of this test's runs and succeeds.
    let left = interrupted_extract(&store, "8");
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter()
            .all(|n| n.starts_with(".jetdir-staging-ORDERS-")),
        "{left:?}"
    );
    let (code, rep) = extract(&b, &store, &[]);
    assert_eq!(code, 0, "{rep:#}");
    let mut removed: Vec<String> = rep["removed_staging"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = Path::new(p.as_str().unwrap());
            p.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    removed.sort();
    assert_eq!(removed, left, "{rep:#}");
    assert_eq!(stream_dir_names(&store), ["ORDERS"]);
}

/// A server started on a store with an interrupted extract's staging dir does not load a
/// half stream; jetdir's next run then finds nothing of that run left over and succeeds.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn server_ignores_an_interrupted_extract() {
    let server = server_215();
    python_with_nats();
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let left = interrupted_extract(&store, "4");
    assert_eq!(left.len(), 1, "{left:?}");
    let r = check(&server, &store, "ORDERS", None);
    assert_eq!(r["extracted"]["names"], json!([]));
    assert_eq!(r["extracted"]["files_after_stop"], json!([]));
    // the server removed the staging dir (a stream dir it could not load)
    assert_eq!(stream_dir_names(&store), Vec::<String>::new());
    let (code, rep) = extract(&samples().join("v2.15.1/ORDERS"), &store, &[]);
    assert_eq!(code, 0, "{rep:#}");
    assert_eq!(rep["removed_staging"], json!([]), "{rep:#}");
    assert_eq!(stream_dir_names(&store), ["ORDERS"]);
}

/// A raw tar member: (name, type flag, link name, data).
type RawMember<'a> = (&'a [u8], u8, &'a [u8], &'a [u8]);

/// A plain tar with a valid ORDERS meta.inf/meta.sum and then `bad` (raw header fields).
fn hostile_tar(path: &Path, bad: &[RawMember]) {
    let mi = br#"{"Created":"2026-11-24T00:00:00Z","name":"ORDERS","subjects":["orders.>"],"storage":"file"}"#;
    let sum = jetdir::filestore::expected_sum("ORDERS", mi);
    let mut bld = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &[u8], kind: u8, link: &[u8], data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        {
            let raw = h.as_mut_bytes();
            raw[..name.len()].copy_from_slice(name);
            raw[157..157 + link.len()].copy_from_slice(link);
        }
        h.set_mode(0o600);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        bld.append(&h, data).unwrap();
    };
    add(b"meta.inf", b'0', b"", mi);
    add(b"meta.sum", b'0', b"", sum.as_bytes());
    for (name, kind, link, data) in bad {
        add(name, *kind, link, data);
    }
    add(b"msgs/1.blk", b'0', b"", b"");
    bld.finish().unwrap();
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written() {
    let tmp = tempfile::TempDir::new().unwrap();
    let cases: Vec<(&str, Vec<RawMember>)> = vec![
        ("dotdot", vec![(b"../evil", b'0', b"", b"x")]),
        ("dotdot-deep", vec![(b"msgs/../../evil", b'0', b"", b"x")]),
        ("absolute", vec![(b"/tmp/jetdir-evil", b'0', b"", b"x")]),
        ("symlink", vec![(b"msgs/2.blk", b'2', b"/etc/passwd", b"")]),
        ("hardlink", vec![(b"msgs/2.blk", b'1', b"meta.inf", b"")]),
        ("fifo", vec![(b"msgs/2.blk", b'6', b"", b"")]),
        ("device", vec![(b"msgs/2.blk", b'3', b"", b"")]),
        (
            "duplicate",
            vec![(b"meta.sum", b'0', b"", b"0000000000000000")],
        ),
        (
            "outside-layout",
            vec![(b"evil.sh", b'0', b"", b"#!/bin/sh")],
        ),
    ];
    for (name, bad) in &cases {
        let t = tmp.path().join(format!("{name}.tar"));
        hostile_tar(&t, bad);
        let root = tmp.path().join(format!("root-{name}"));
        let store = root.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let before = tree(tmp.path());
        for extra in [&[][..], &["--allow-damaged"][..]] {
            let (code, rep) = extract(&t, &store, extra);
            assert_eq!(code, 1, "{name} {extra:?}: {rep:#}");
            assert_eq!(rep["status"], "damaged", "{name}: {rep:#}");
            assert!(
                rep["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["kind"] == "archive_hostile_member"),
                "{name}: {rep:#}"
            );
            assert_eq!(before, tree(tmp.path()), "{name} {extra:?}: files changed");
        }
        assert!(!Path::new("/tmp/jetdir-evil").exists());
    }
    // The same tar without the bad member is fine (the builder is not the problem).
    let ok = tmp.path().join("ok.tar");
    hostile_tar(&ok, &[]);
    let (code, rep) = extract(&ok, &tmp.path().join("okstore"), &[]);
    assert_eq!(code, 0, "{rep:#}");
}

/// A V2 backup whose last message entry is missing (state.json says 298, 297 present).
fn drop_last_message(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    std::fs::copy(src.join("backup.json"), dst.join("backup.json")).unwrap();
    let f = std::fs::File::open(src.join("stream.tar.s2")).unwrap();
    let mut entries = Vec::new();
    jetdir::backup::scan_v2(
        jetdir::s2::FrameReader::new(f),
        jetdir::backup::V2Options::new("x"),
        |e, _| entries.push(e.clone()),
    );
    // Drop seq 299 (an interior message: the last one, 300, keeps last_seq).
    entries.retain(|e| e.seq != 299);
    let out = std::fs::File::create(dst.join("stream.tar.s2")).unwrap();
    let mut w = NatsArcWriter::new(jetdir::s2::encode::ParFrameWriter::new(out)).unwrap();
    for e in &entries {
        w.write_entry(&e.name, e.timestamp, e.seq, &e.header, &e.payload)
            .unwrap();
    }
    w.finish().unwrap().finish().unwrap();
}

#[test]
fn damaged_archive_is_refused_unless_allowed() {
    let tmp = tempfile::TempDir::new().unwrap();
    damaged_extract(tmp.path());
}

/// The 2.15.1 ORDERS sample without its last message: refused, then written with
/// `--allow-damaged`; returns the store it was written to.
fn damaged_extract(tmp: &Path) -> PathBuf {
    let bad = tmp.join("bad/ORDERS");
    drop_last_message(&samples().join("v2.15.1/ORDERS"), &bad);
    let store = tmp.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let before = tree(tmp);
    let (code, rep) = extract(&bad, &store, &[]);
    assert_eq!(code, 1, "{rep:#}");
    assert_eq!(rep["status"], "damaged");
    assert!(
        rep["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "v2_message_count"),
        "{rep:#}"
    );
    assert_eq!(before, tree(tmp));

    let (code, rep) = extract(&bad, &store, &["--allow-damaged"]);
    assert_eq!(code, 1, "{rep:#}");
    assert_eq!(rep["status"], "written_damaged");
    assert_eq!(rep["messages"], 297);
    assert!(store
        .join("jetstream/$G/streams/ORDERS/msgs/1.blk")
        .is_file());
    store
}

/// What `--allow-damaged` wrote loads into the server with the missing message deleted.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn damaged_archive_written_anyway_loads_into_the_server() {
    let server = server_215();
    python_with_nats();
    let tmp = tempfile::TempDir::new().unwrap();
    let store = damaged_extract(tmp.path());
    let r = check(&server, &store, "ORDERS", None);
    let e = &r["extracted"]["record"]["expected"];
    assert_eq!(
        (e["messages"].as_u64(), e["last_seq"].as_u64()),
        (Some(297), Some(300))
    );
    assert_eq!(e["deleted"], json!([100, 101, 299]));
}

#[test]
fn store_dirs_are_not_extracted_account_backups_are() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    let run = |p: &Path| {
        Command::new(env!("CARGO_BIN_EXE_jetdir"))
            .args(["--json", "-q", "extract"])
            .arg(p)
            .arg("--store-dir")
            .arg(&store)
            .arg("--create")
            .output()
            .unwrap()
    };
    let out = run(&fixtures().join("v2.15.1-plain/store"));
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("not a backup"), "{v}");
    assert!(!store.exists());
    // an account backup: each stream extracted
    let out = run(&samples().join("v2.15.1"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["streams"][0]["name"], "ORDERS");
    assert!(store.join("jetstream/$G/streams/ORDERS/meta.inf").is_file());
}
