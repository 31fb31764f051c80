//! `jetdir dump`, `jetdir kv`, `jetdir object` against what a real nats-server 2.15 served.
//!
//! tests/support/forensics_scenario.py starts the server, writes a plain stream (headers, a
//! binary payload, a delete and an erase), a KV bucket (history, deletes, a purge, a binary
//! value) and an object store (a 3-chunk object, a deleted one, one put twice), records what
//! the clients read (STREAM.MSG.GET, kv get / keys / history, object list / get) and stops the
//! server. jetdir must read exactly that from the stopped server's files, and from every
//! backup form `jetdir pack` writes. A flipped byte is then checked against what a server
//! started on the damaged copy serves.
mod common;

use common::{copy_dir, find_server, python_with_nats, repo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn scenario(out: &Path, extra: &[&str]) {
    let server = find_server("NATS_SERVER_215", &repo().join(".venv/bin/nats-server"));
    let r = Command::new(python_with_nats())
        .arg(repo().join("tests/support/forensics_scenario.py"))
        .arg("--server")
        .arg(&server)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run forensics_scenario.py");
    assert!(
        r.status.success(),
        "forensics_scenario.py failed: {}\n{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
}

fn facts(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("facts.json")).unwrap()).unwrap()
}

fn jetdir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .expect("run jetdir")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// NDJSON lines of `jetdir dump --json`.
fn ndjson(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn messages(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l.get("seq").is_some()).collect()
}

fn findings(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter_map(|l| l.get("finding")).collect()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// jetdir's messages equal the server's, field by field (subject, headers, payload, time).
fn assert_same_messages(label: &str, got: &[&Value], want: &[&Value]) {
    let gs: Vec<u64> = got.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    let ws: Vec<u64> = want.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(gs, ws, "{label}: sequences");
    for (g, w) in got.iter().zip(want) {
        let seq = &w["seq"];
        assert_eq!(g["subject"], w["subject"], "{label} seq {seq}");
        assert_eq!(g["headers"], w["headers"], "{label} seq {seq}");
        assert_eq!(g["payload"], w["data_b64"], "{label} seq {seq}");
        assert_eq!(g["payload_encoding"], "base64");
        let t = jetdir::base::time::parse_rfc3339(w["time"].as_str().unwrap()).unwrap();
        assert_eq!(g["ts"].as_i64(), Some(t), "{label} seq {seq}: time");
        assert!(g["file"]
            .as_str()
            .is_some_and(|f| f.contains("1.blk") || f.ends_with("s2")));
        assert!(g["offset"].as_u64().is_some());
    }
}

fn dump_ev(path: &Path, extra: &[&str]) -> (Vec<Value>, i32) {
    let mut args = vec![
        "dump",
        "--json",
        p(path),
        "--stream",
        "EV",
        "--payload",
        "base64",
    ];
    args.extend_from_slice(extra);
    let o = jetdir(&args);
    assert!(
        o.stderr.is_empty(),
        "dump wrote to stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (ndjson(&o), code(&o))
}

fn check_kv(path: &Path, f: &Value) {
    let where_ = path.display();
    let o = jetdir(&["kv", "--json", p(path), "--bucket", "cfg", "keys"]);
    assert_eq!(code(&o), 0, "{where_}: kv keys");
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys: Vec<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = f["kv_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, want, "{where_}: keys");
    for (key, w) in f["kv_get"].as_object().unwrap() {
        let o = jetdir(&["kv", "--json", p(path), "--bucket", "cfg", "get", key]);
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        if w.is_null() {
            assert_eq!(code(&o), 1, "{where_}: get {key} must fail");
            assert_eq!(doc["found"], false);
        } else {
            assert_eq!(code(&o), 0, "{where_}: get {key}");
            assert_eq!(doc["revision"], w["revision"], "{where_}: {key}");
            let raw = jetdir(&["kv", p(path), "--bucket", "cfg", "get", key, "--raw"]);
            let b64 = jetdir::forensics::base64(&raw.stdout, false);
            assert_eq!(
                b64,
                w["value_b64"].as_str().unwrap(),
                "{where_}: {key} value"
            );
        }
    }
    for key in ["a", "e"] {
        let o = jetdir(&["kv", "--json", p(path), "--bucket", "cfg", "history", key]);
        assert_eq!(code(&o), 0);
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        let got: Vec<(u64, String, String)> = doc["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let v = match e["value_encoding"].as_str() {
                    Some("text") => {
                        jetdir::forensics::base64(e["value"].as_str().unwrap().as_bytes(), false)
                    }
                    Some(_) => e["value"].as_str().unwrap().to_string(),
                    None => String::new(),
                };
                (
                    e["revision"].as_u64().unwrap(),
                    e["operation"].as_str().unwrap().to_string(),
                    v,
                )
            })
            .collect();
        let want: Vec<(u64, String, String)> = f[format!("kv_history_{key}")]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["revision"].as_u64().unwrap(),
                    e["op"].as_str().unwrap().to_string(),
                    e["value_b64"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "{where_}: history {key}");
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn check_objects(path: &Path, f: &Value, scratch: &Path) {
    let where_ = path.display();
    let o = jetdir(&["object", "--json", p(path), "--bucket", "files", "ls"]);
    assert_eq!(code(&o), 0, "{where_}: object ls");
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<Value> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["deleted"] == false)
        .map(|i| {
            serde_json::json!({"name": i["name"], "size": i["size"], "chunks": i["chunks"],
                               "digest": i["digest"]})
        })
        .collect();
    assert_eq!(Value::from(got), f["obj_list"], "{where_}: object list");
    std::fs::create_dir_all(scratch).unwrap();
    // never overwrites: exit 2, the file is left alone
    let keep = scratch.join("exists");
    std::fs::write(&keep, b"keep").unwrap();
    let o = jetdir(&[
        "object",
        p(path),
        "--bucket",
        "files",
        "get",
        "big.bin",
        "-o",
        p(&keep),
    ]);
    assert_eq!(code(&o), 2, "{where_}: overwrite");
    assert_eq!(std::fs::read(&keep).unwrap(), b"keep");
    std::fs::remove_file(&keep).unwrap();
    for (name, w) in f["obj_get"].as_object().unwrap() {
        let out = scratch.join(name);
        let _ = std::fs::remove_file(&out);
        let o = jetdir(&[
            "object",
            p(path),
            "--bucket",
            "files",
            "get",
            name,
            "-o",
            p(&out),
        ]);
        if w.is_null() {
            assert_eq!(code(&o), 1, "{where_}: get {name} must fail");
            assert!(!out.exists());
        } else {
            assert_eq!(
                code(&o),
                0,
                "{where_}: get {name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(
                sha256_hex(&std::fs::read(&out).unwrap()),
                w.as_str().unwrap(),
                "{where_}: {name} bytes"
            );
        }
        // nothing staged is left behind
        let left: Vec<_> = std::fs::read_dir(scratch)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("jetdir-object"))
            .collect();
        assert!(left.is_empty(), "staging files left: {left:?}");
    }
}

fn pack(store: &Path, out: &Path, stream: Option<&str>, format: &str) -> PathBuf {
    let mut args = vec!["pack", p(store), "-o", p(out), "--format", format];
    match stream {
        Some(s) => args.extend(["--stream", s]),
        None => args.push("--all"),
    }
    let o = jetdir(&args);
    assert_eq!(code(&o), 0, "pack: {}", String::from_utf8_lossy(&o.stderr));
    out.to_path_buf()
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py (scripts/install-deps.sh)"
)]
fn dump_kv_object_equal_what_the_server_served() {
    let tmp = tempfile::TempDir::new().unwrap();
    let run = tmp.path().join("run");
    scenario(&run, &[]);
    let f = facts(&run);
    let store = run.join("store");
    let want_all: Vec<&Value> = f["ev"].as_array().unwrap().iter().collect();
    assert_eq!(want_all.len(), 39); // 41 published, one deleted, one erased

    // the whole stream
    let (lines, rc) = dump_ev(&store, &[]);
    assert_eq!(rc, 0);
    assert!(findings(&lines).is_empty(), "{:?}", findings(&lines));
    assert_same_messages("store", &messages(&lines), &want_all);

    // filters
    let subj: Vec<&Value> = want_all
        .iter()
        .copied()
        .filter(|m| {
            jetdir::base::subject::matches(b"ev.a.*", m["subject"].as_str().unwrap().as_bytes())
        })
        .collect();
    let (lines, _) = dump_ev(&store, &["--subject", "ev.a.*"]);
    assert_same_messages("--subject ev.a.*", &messages(&lines), &subj);
    let range: Vec<&Value> = want_all
        .iter()
        .copied()
        .filter(|m| (10..=20).contains(&m["seq"].as_u64().unwrap()))
        .collect();
    let (lines, _) = dump_ev(&store, &["--seq", "10..20"]);
    assert_same_messages("--seq 10..20", &messages(&lines), &range);
    let last5 = &want_all[want_all.len() - 5..];
    let (lines, _) = dump_ev(&store, &["--last", "5"]);
    assert_same_messages("--last 5", &messages(&lines), last5);
    let t20 = want_all.iter().find(|m| m["seq"] == 20).unwrap()["time"]
        .as_str()
        .unwrap();
    let t30 = want_all.iter().find(|m| m["seq"] == 30).unwrap()["time"]
        .as_str()
        .unwrap();
    let window: Vec<&Value> = want_all
        .iter()
        .copied()
        .filter(|m| (20..=30).contains(&m["seq"].as_u64().unwrap()))
        .collect();
    let (lines, _) = dump_ev(&store, &["--since", t20, "--until", t30]);
    assert_same_messages("--since/--until", &messages(&lines), &window);
    let (lines, _) = dump_ev(
        &store,
        &["--subject", "ev.b.>", "--last", "3", "--seq", "..30"],
    );
    let want: Vec<&Value> = want_all
        .iter()
        .copied()
        .filter(|m| {
            m["subject"].as_str().unwrap().starts_with("ev.b.") && m["seq"].as_u64().unwrap() <= 30
        })
        .collect();
    assert_same_messages("combined", &messages(&lines), &want[want.len() - 3..]);
    // a relative --since far back gives everything; one in the future nothing
    let (lines, _) = dump_ev(&store, &["--since", "1000h"]);
    assert_eq!(messages(&lines).len(), want_all.len());
    let (lines, _) = dump_ev(&store, &["--since", "2h", "--at", "2000-01-01T00:00:00Z"]);
    assert_eq!(messages(&lines).len(), want_all.len());
    let (lines, _) = dump_ev(&store, &["--until", "2h", "--at", "2000-01-01T00:00:00Z"]);
    assert!(messages(&lines).is_empty());
    // --include-deleted shows the deleted and the erased sequence, marked
    let (lines, _) = dump_ev(&store, &["--include-deleted", "--seq", "4..9"]);
    let shown: Vec<(u64, Option<&str>)> = messages(&lines)
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m["deleted"].as_str()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (4, None),
            (5, Some("deleted")),
            (6, None),
            (7, None),
            (8, Some("erased")),
            (9, None)
        ]
    );
    // --headers-only leaves payloads out
    let (lines, _) = dump_ev(&store, &["--headers-only", "--seq", "1"]);
    assert!(messages(&lines)[0].get("payload").is_none());

    // max_age: what a server started now serves, and one started 2 h later (--at)
    let o = jetdir(&[
        "dump",
        "--json",
        p(&store),
        "--stream",
        "AGE",
        "--payload",
        "base64",
    ]);
    assert_eq!(code(&o), 0);
    let lines = ndjson(&o);
    let age: Vec<&Value> = f["age"].as_array().unwrap().iter().collect();
    assert_same_messages("AGE", &messages(&lines), &age);
    let last_ts = messages(&lines)[2]["ts"].as_i64().unwrap();
    let later = jetdir::base::time::rfc3339_full(last_ts + 2 * 3600 * 1_000_000_000);
    let o = jetdir(&[
        "dump",
        "--json",
        p(&store),
        "--stream",
        "AGE",
        "--at",
        &later,
    ]);
    let lines = ndjson(&o);
    assert!(messages(&lines).is_empty(), "max_age at --at");
    assert!(findings(&lines)
        .iter()
        .any(|p| p["kind"] == "limits_at_load"));
    let o = jetdir(&[
        "dump",
        "--json",
        p(&store),
        "--stream",
        "AGE",
        "--at",
        &later,
        "--include-deleted",
    ]);
    let lines = ndjson(&o);
    let why: Vec<&str> = messages(&lines)
        .iter()
        .map(|m| m["deleted"].as_str().unwrap())
        .collect();
    assert_eq!(why, vec!["max_age"; 3]);

    check_kv(&store, &f);
    check_objects(&store, &f, &tmp.path().join("objects"));

    // every backup form gives the same messages, keys and objects
    let b = tmp.path().join("backups");
    std::fs::create_dir_all(&b).unwrap();
    let forms = [
        ("v1", pack(&store, &b.join("ev-v1"), Some("EV"), "v1")),
        ("v2", pack(&store, &b.join("ev-v2"), Some("EV"), "v2")),
        ("tgz", pack(&store, &b.join("ev.tgz"), Some("EV"), "tgz")),
        ("account v2", pack(&store, &b.join("all-v2"), None, "v2")),
        ("account v1", pack(&store, &b.join("all-v1"), None, "v1")),
    ];
    for (label, path) in &forms {
        let (lines, rc) = dump_ev(path, &[]);
        assert_eq!(rc, 0, "{label}");
        assert!(
            findings(&lines).is_empty(),
            "{label}: {:?}",
            findings(&lines)
        );
        assert_same_messages(label, &messages(&lines), &want_all);
        let (lines, _) = dump_ev(path, &["--last", "5", "--subject", ">"]);
        assert_same_messages(label, &messages(&lines), last5);
    }
    for fmt in ["v1", "v2", "tgz"] {
        let kvb = pack(&store, &b.join(format!("kv-{fmt}")), Some("KV_cfg"), fmt);
        check_kv(&kvb, &f);
        let obb = pack(
            &store,
            &b.join(format!("obj-{fmt}")),
            Some("OBJ_files"),
            fmt,
        );
        check_objects(&obb, &f, &tmp.path().join(format!("objects-{fmt}")));
    }
    check_kv(&b.join("all-v1"), &f);
    check_objects(&b.join("all-v2"), &f, &tmp.path().join("objects-acct"));
}

/// Flip one payload byte of seq 20 in a copy of the store: `dump` reports the damaged record as
/// a finding at its place and hands out what a server started on the copy serves, with and
/// without index.db (trusted index: only seq 20 is unreadable; rebuilt: the block is cut at
/// seq 20).
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py (scripts/install-deps.sh)"
)]
fn flipped_byte_is_a_finding_and_the_rest_is_what_the_server_serves() {
    let tmp = tempfile::TempDir::new().unwrap();
    let run = tmp.path().join("run");
    scenario(&run, &[]);
    let store = run.join("store");
    let (lines, _) = dump_ev(&store, &["--seq", "20"]);
    let m20 = messages(&lines)[0].clone();
    let stream_dir = store.join("jetstream/$G/streams/EV");
    let blk = stream_dir.join(m20["file"].as_str().unwrap());
    // the last payload byte: just before the 8-byte checksum
    let at = (m20["offset"].as_u64().unwrap() + m20["size"].as_u64().unwrap() - 9) as usize;

    for (label, drop_index) in [("index.db trusted", false), ("rebuilt", true)] {
        let copy = tmp.path().join(format!("copy-{drop_index}"));
        copy_dir(&store, &copy);
        let cblk = copy.join(blk.strip_prefix(&store).unwrap());
        let mut b = std::fs::read(&cblk).unwrap();
        b[at] ^= 0x55;
        std::fs::write(&cblk, b).unwrap();
        if drop_index {
            std::fs::remove_file(copy.join("jetstream/$G/streams/EV/msgs/index.db")).unwrap();
        }
        let (lines, rc) = dump_ev(&copy, &[]);
        assert_eq!(rc, 1, "{label}: damage exits 1");
        let fnd = findings(&lines);
        assert!(
            fnd.iter()
                .any(|p| p["kind"] == "record_checksum" && p["seq"] == 20),
            "{label}: {fnd:?}"
        );
        // the finding comes in sequence order: after seq 19, before anything later
        let pos_f = lines
            .iter()
            .position(|l| {
                l.get("finding")
                    .is_some_and(|p| p["kind"] == "record_checksum")
            })
            .unwrap();
        assert!(lines[..pos_f]
            .iter()
            .all(|l| l["seq"].as_u64().is_none_or(|s| s < 20)));
        // what a server started on the same files serves
        let served_dir = tmp.path().join(format!("served-{drop_index}"));
        let probe = tmp.path().join(format!("probe-{drop_index}"));
        copy_dir(&copy, &probe);
        scenario(&served_dir, &["--read", p(&probe), "--stream", "EV"]);
        let served: Value =
            serde_json::from_slice(&std::fs::read(served_dir.join("served.json")).unwrap())
                .unwrap();
        let want: Vec<&Value> = served.as_array().unwrap().iter().collect();
        assert!(
            !want.iter().any(|m| m["seq"] == 20),
            "{label}: server serves seq 20?"
        );
        assert_same_messages(label, &messages(&lines), &want);
        // --include-deleted shows seq 20 and says why it is not served
        let (lines, _) = dump_ev(&copy, &["--include-deleted", "--seq", "20..21"]);
        let m = messages(&lines);
        let why = if drop_index { "lost" } else { "unreadable" };
        assert_eq!(m[0]["seq"], 20);
        assert_eq!(m[0]["deleted"], why, "{label}");
    }
}

/// A damaged chunk of a 3-chunk object: `object get` writes nothing and exits 1 (the server
/// cannot serve that chunk: the reassembled bytes do not match the metadata).
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py (scripts/install-deps.sh)"
)]
fn damaged_object_chunk_writes_nothing() {
    let tmp = tempfile::TempDir::new().unwrap();
    let run = tmp.path().join("run");
    scenario(&run, &[]);
    let store = run.join("store");
    let o = jetdir(&[
        "dump",
        "--json",
        p(&store),
        "--stream",
        "OBJ_files",
        "--subject",
        "$O.files.C.*",
        "--headers-only",
        "--seq",
        "2",
    ]);
    let lines = ndjson(&o);
    let m = messages(&lines)[0];
    let blk = store
        .join("jetstream/$G/streams/OBJ_files")
        .join(m["file"].as_str().unwrap());
    let at = (m["offset"].as_u64().unwrap() + m["size"].as_u64().unwrap() / 2) as usize;
    let mut b = std::fs::read(&blk).unwrap();
    b[at] ^= 0x01;
    std::fs::write(&blk, b).unwrap();
    let out = tmp.path().join("big.out");
    let o = jetdir(&[
        "object",
        p(&store),
        "--bucket",
        "files",
        "get",
        "big.bin",
        "-o",
        p(&out),
    ]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.exists());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("record_checksum") && err.contains("not written"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("jetdir-object"))
        .collect();
    assert!(left.is_empty());
    // the small object elsewhere in the stream still comes out (exit 0: its digest matches)
    let out = tmp.path().join("small.out");
    let o = jetdir(&[
        "object",
        p(&store),
        "--bucket",
        "files",
        "get",
        "small.txt",
        "-o",
        p(&out),
    ]);
    assert_eq!(code(&o), 0);
    assert_eq!(std::fs::read(&out).unwrap(), b"hello objects\n");
}

/// `jetdir dump … | head -1`: the output ends quietly with the command's exit code.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py (scripts/install-deps.sh)"
)]
fn closed_output_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::TempDir::new().unwrap();
    let run = tmp.path().join("run");
    scenario(&run, &[]);
    for json in [false, true] {
        let mut args = vec!["dump".to_string(), p(&run.join("store")).to_string()];
        if json {
            args.push("--json".into());
        }
        args.extend(["--payload".into(), "hex".into()]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_jetdir"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(!line.is_empty());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "json={json}");
        assert!(
            o.stderr.is_empty(),
            "stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
