//! Stream configs with keys a server release does not know, and required API levels above the
//! release's, against real nats-server binaries: what the server does when it loads the store,
//! and what `jetdir verify` says about the same store.
//!
//! Each test builds a store with the server (`tests/support/config_load.py build`), edits
//! ORDERS' meta.inf in a copy and recomputes meta.sum (so the server's checksum check passes and
//! only the config matters), restarts the server on the copy (`config_load.py load`), and
//! compares with `jetdir verify --json`.
//!
//! Servers: 2.15.1 from env `NATS_SERVER_215` or `$REPO/.venv/bin/nats-server`; 2.9.10 (an
//! older release, which drops unknown keys) from env `NATS_SERVER_29` or `/usr/sbin/nats-server`.
mod common;

use common::{python_with_nats, repo, server_215, server_29};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const STREAM_DIR: &str = "jetstream/$G/streams/ORDERS";

fn config_load(what: &str, server: &Path, store: &Path) -> Value {
    let out = Command::new(python_with_nats())
        .arg(repo().join("tests/support/config_load.py"))
        .arg(what)
        .arg("--server")
        .arg(server)
        .arg("--store")
        .arg(store)
        .output()
        .expect("run config_load.py");
    assert!(
        out.status.success(),
        "config_load.py {what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if what == "build" {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).expect("config_load.py load prints JSON")
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        let dst = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A copy of `base` with ORDERS' meta.inf passed through `edit` and meta.sum recomputed.
fn edited_copy(base: &Path, into: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let store = into.join("store");
    copy_dir(base, &store);
    let dir = store.join(STREAM_DIR);
    let old = std::fs::read_to_string(dir.join("meta.inf")).unwrap();
    let new = edit(&old);
    assert_ne!(old, new, "the edit changed nothing");
    std::fs::write(dir.join("meta.inf"), &new).unwrap();
    std::fs::write(
        dir.join("meta.sum"),
        jetdir::filestore::expected_sum("ORDERS", new.as_bytes()),
    )
    .unwrap();
    store
}

/// `jetdir verify --json [extra] store`: exit code and the report.
fn verify(store: &Path, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["--json", "--no-progress", "verify"])
        .args(extra)
        .arg(store)
        .output()
        .expect("run jetdir");
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "jetdir --json output: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), rep)
}

fn problems_of<'a>(rep: &'a Value, kind: &str) -> Vec<&'a Value> {
    rep["problems"]
        .as_array()
        .map(|a| a.iter().filter(|p| p["kind"] == kind).collect())
        .unwrap_or_default()
}

fn build(server: &Path, tmp: &Path) -> PathBuf {
    let base = tmp.join("base");
    config_load("build", server, &base);
    assert!(base.join(STREAM_DIR).join("meta.inf").is_file());
    // The untouched store loads, and jetdir has nothing to say about its config.
    let (code, rep) = verify(&base, &[]);
    assert_eq!(code, 0, "{rep:#}");
    base
}

fn rename_subjects(s: &str) -> String {
    s.replacen("\"subjects\":", "\"rubjects\":", 1)
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn nats_server_2_15_marks_a_stream_with_an_unknown_key_offline_and_jetdir_says_so() {
    let server = server_215();
    let tmp = tempfile::TempDir::new().unwrap();
    let base = build(&server, tmp.path());

    // Unknown key.
    let store = edited_copy(&base, &tmp.path().join("unknown"), rename_subjects);
    let (code, rep) = verify(&store, &[]);
    let seen = config_load("load", &server, &store);
    assert!(
        seen["version"].as_str().unwrap().starts_with("2.15."),
        "{}",
        seen["version"]
    );
    let log = seen["log"].as_str().unwrap();
    assert!(
        log.contains("unknown field \"rubjects\""),
        "server log:\n{log}"
    );
    // The stream is registered offline: listed as offline, no info, no consumer answers.
    let offline = seen["list_offline"]["ORDERS"].as_str().unwrap_or_default();
    assert!(offline.contains("rubjects"), "{seen:#}");
    assert!(seen["info"].is_null(), "{seen:#}");
    assert_eq!(code, 1, "{rep:#}");
    let p = problems_of(&rep, "config_unknown_field");
    assert_eq!(p.len(), 1, "{rep:#}");
    let msg = p[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "nats-server 2.15.1 marks this stream offline: unknown field \"rubjects\" in meta.inf"
        ),
        "{msg}"
    );
    assert_eq!(p[0]["severity"], "error");
    assert_eq!(p[0]["stream"], "ORDERS");
    assert_eq!(p[0]["file"], "meta.inf");

    // Required API level above 2.15.1's.
    let store = edited_copy(&base, &tmp.path().join("level"), |s| {
        s.replacen("\"_nats.req.level\":\"0\"", "\"_nats.req.level\":\"6\"", 1)
    });
    let (code, rep) = verify(&store, &[]);
    let seen = config_load("load", &server, &store);
    let log = seen["log"].as_str().unwrap();
    assert!(log.contains("required API level: 6"), "server log:\n{log}");
    assert!(seen["info"].is_null(), "{seen:#}");
    assert_eq!(code, 1, "{rep:#}");
    assert_eq!(problems_of(&rep, "config_api_level").len(), 1, "{rep:#}");

    // A level it supports loads normally, and jetdir agrees.
    let store = edited_copy(&base, &tmp.path().join("level5"), |s| {
        s.replacen("\"_nats.req.level\":\"0\"", "\"_nats.req.level\":\"5\"", 1)
    });
    let (code, rep) = verify(&store, &[]);
    let seen = config_load("load", &server, &store);
    assert_eq!(seen["info"]["state"]["messages"], 5, "{seen:#}");
    assert_eq!(seen["consumers"], serde_json::json!(["C1"]), "{seen:#}");
    assert_eq!(code, 0, "{rep:#}");
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn nats_server_2_9_drops_an_unknown_key_and_jetdir_warns_for_that_release() {
    let server = server_29();
    let tmp = tempfile::TempDir::new().unwrap();
    let base = build(&server, tmp.path());
    let store = edited_copy(&base, &tmp.path().join("unknown"), rename_subjects);
    let seen = config_load("load", &server, &store);
    assert!(
        seen["version"].as_str().unwrap().starts_with("2.9."),
        "{}",
        seen["version"]
    );
    // 2.9.10 loads the stream with its messages and consumer; "rubjects" is gone, and so are
    // the subjects it held: without subjects the server defaults them to the stream's name.
    assert!(seen["info_error"].is_null(), "{seen:#}");
    assert_eq!(seen["info"]["state"]["messages"], 5, "{seen:#}");
    assert_eq!(seen["consumers"], serde_json::json!(["C1"]), "{seen:#}");
    let cfg = &seen["info"]["config"];
    assert!(cfg.get("rubjects").is_none(), "{cfg:#}");
    assert_eq!(cfg["subjects"], serde_json::json!(["ORDERS"]), "{cfg:#}");
    assert!(!seen["log"].as_str().unwrap().contains("rubjects"));

    // jetdir, told the release, warns (exit 0); told nothing, it judges as the newest release.
    let (code, rep) = verify(&store, &["--server-version", "2.9.10"]);
    assert_eq!(code, 0, "{rep:#}");
    assert!(
        problems_of(&rep, "config_unknown_field").is_empty(),
        "{rep:#}"
    );
    let w = problems_of(&rep, "config_unknown_field_ignored");
    assert_eq!(w.len(), 1, "{rep:#}");
    assert!(
        w[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("nats-server 2.9.10 ignores unknown field \"rubjects\" in meta.inf"),
        "{}",
        w[0]["message"]
    );
    assert_eq!(w[0]["severity"], "warning");
    let (code, rep) = verify(&store, &[]);
    assert_eq!(code, 1, "{rep:#}");
    assert_eq!(
        problems_of(&rep, "config_unknown_field").len(),
        1,
        "{rep:#}"
    );
    // The same store judged for 2.11.11, the first of the sampled releases that is strict.
    let (code, rep) = verify(&store, &["--server-version", "2.11.11"]);
    assert_eq!(code, 1, "{rep:#}");
    assert_eq!(
        problems_of(&rep, "config_unknown_field").len(),
        1,
        "{rep:#}"
    );
}
