//! The CLI contract: exit codes, one JSON document on stdout, progress on stderr.
mod common;
use common::copy_dir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn jetdir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .expect("run jetdir")
}

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn clean_store_exits_0_with_one_json_document() {
    // a private copy: other tests of this binary copy the fixture at the same time, and a
    // process with store files open is reported (store_in_use)
    let t = tempfile::tempdir().unwrap();
    copy_dir(Path::new(&fixture("v2.15.1-plain/store")), t.path());
    let out = jetdir(&["verify", "--json", "-q", &t.path().display().to_string()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["ok"], true);
    assert!(v["problems"].as_array().unwrap().is_empty());
    let orders = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ORDERS")
        .unwrap();
    for k in [
        "account",
        "name",
        "messages",
        "bytes",
        "first_seq",
        "last_seq",
        "deleted",
        "subjects",
        "blocks",
        "consumers",
    ] {
        assert!(orders.get(k).is_some(), "missing {k}");
    }
    assert_eq!(orders["messages"], 8);
    assert_eq!(orders["account"], "$G");
    let c1 = orders["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "C1")
        .unwrap();
    assert_eq!(c1["delivered_stream_seq"], 5);
    assert_eq!(c1["ack_floor_stream_seq"], 3);
    assert_eq!(c1["num_ack_pending"], 1);
    assert!(out.stderr.is_empty(), "-q must silence progress");
}

#[test]
fn damage_exits_1_and_locates_the_problem() {
    let t = tempfile::tempdir().unwrap();
    copy_dir(Path::new(&fixture("v2.15.1-plain/store")), t.path());
    let blk = t.path().join("jetstream/$G/streams/ORDERS/msgs/1.blk");
    let mut b = std::fs::read(&blk).unwrap();
    b[40] ^= 0x04; // inside the first record's subject or payload
    std::fs::write(&blk, b).unwrap();
    let out = jetdir(&["verify", "--json", "-q", &t.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let p = &v["problems"][0];
    assert_eq!(p["severity"], "error");
    assert_eq!(p["stream"], "ORDERS");
    assert_eq!(p["file"], "msgs/1.blk");
    assert_eq!(p["offset"], 0);
    assert_eq!(p["seq"], 1);
    assert!(p.get("consumer").is_none() || p["consumer"].is_null());
    // human output names the same place
    let out = jetdir(&["verify", "-q", &t.path().display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("msgs/1.blk @0 seqs 1..10"), "{text}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn cannot_run_exits_2() {
    let t = tempfile::tempdir().unwrap();
    let out = jetdir(&["verify", &t.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = jetdir(&["verify", "--json", "/nonexistent/store"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("/nonexistent/store"));
    assert_eq!(jetdir(&["verify"]).status.code(), Some(2), "usage error");
    assert_eq!(jetdir(&["frobnicate"]).status.code(), Some(2));
    // encrypted store: key needed
    let out = jetdir(&[
        "verify",
        "-q",
        "--json",
        &fixture("v2.15.1-enc-chacha/store"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["kind"] == "encrypted_key_needed"));
}

#[test]
fn no_progress_gives_log_lines_on_stderr_only() {
    let out = jetdir(&["verify", "--no-progress", &fixture("v2.15.1-plain/store")]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("verify:") && err.contains("done"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("OK: 5 streams checked, none damaged"),
        "{text}"
    );
    assert!(!text.contains("verify:"), "progress must not go to stdout");
    // log lines name the stream and the file
    assert!(err.contains("$G > MULTI msgs/"), "{err}");
}

#[test]
fn pack_progress_names_each_phase_and_its_total_is_the_stream_size() {
    let t = tempfile::tempdir().unwrap();
    // a copy: pack refuses a store another process holds a file of open, and the tests
    // beside this one copy the fixture (their process reads its files) while it runs
    let store = t.path().join("store");
    copy_dir(Path::new(&fixture("v2.15.1-plain/store")), &store);
    let out = jetdir(&[
        "pack",
        "--no-progress",
        &store.display().to_string(),
        "--stream",
        "MULTI",
        "-o",
        &t.path().join("m").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    // MULTI's blocks are 104,031 bytes (101.6 KiB): a clean 2.15 stream packed as v1 is
    // verified and written in one pass over them (ops/pack/onepass.rs)
    assert!(
        err.contains("pack (verify and write): 101.6 KiB to read"),
        "{err}"
    );
    assert!(!err.contains("pack (write)"), "{err}");
    assert!(!err.contains("203.2 KiB"), "{err}");
    assert!(err.contains("$G > MULTI msgs/4.blk"), "{err}");
    // the restore hint of a tgz names jetdir extract
    let o = t.path().join("m.tgz").display().to_string();
    let out = jetdir(&[
        "pack",
        "-q",
        &store.display().to_string(),
        "--stream",
        "MULTI",
        "--format",
        "tgz",
        "-o",
        &o,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("jetdir extract {o} --store-dir")),
        "{text}"
    );
    assert!(!text.contains("tar -xzf"), "{text}");
}

#[test]
fn inspect_reports_sections_and_json() {
    let out = jetdir(&["inspect", "-q", &fixture("v2.15.1-s2/store")]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for s in [
        "Stream CMP",
        "Configuration:",
        "State:",
        "Blocks:",
        "Consumers:",
        "Warnings and problems:",
        " s2",
    ] {
        assert!(text.contains(s), "missing {s:?} in\n{text}");
    }
    let out = jetdir(&["inspect", "--json", "-q", &fixture("v2.15.1-s2/store")]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["streams"][0]["compressed_blocks"], 3);
    assert_eq!(v["streams"][0]["block_list"].as_array().unwrap().len(), 4);
}

#[test]
fn leftovers_are_warnings_not_errors() {
    let t = tempfile::tempdir().unwrap();
    copy_dir(Path::new(&fixture("v2.15.1-plain/store")), t.path());
    let s = t.path().join("jetstream/$G/streams/MULTI");
    std::fs::create_dir_all(s.join("__msgs__")).unwrap();
    std::fs::write(s.join("__msgs__/1.blk"), b"").unwrap();
    std::fs::write(s.join("msgs/3.blk.tmp"), b"x").unwrap();
    std::fs::create_dir_all(t.path().join("jetstream/$G/streams/.OLD")).unwrap();
    let out = jetdir(&["verify", "--json", "-q", &t.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"leftover_purge") && kinds.contains(&"leftover_tmp"),
        "{kinds:?}"
    );
    assert!(v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains(".OLD")));
}

#[test]
fn a_process_in_the_store_gives_a_warning() {
    let t = tempfile::tempdir().unwrap();
    copy_dir(Path::new(&fixture("v2.15.1-plain/store")), t.path());
    let mut child = Command::new("sleep")
        .arg("30")
        .current_dir(t.path().join("jetstream"))
        .spawn()
        .unwrap();
    // Between fork and exec the child still carries this thread's name; wait until it is `sleep`.
    let comm = format!("/proc/{}/comm", child.id());
    for _ in 0..500 {
        if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = jetdir(&["verify", "--json", "-q", &t.path().display().to_string()]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(0), "a warning only");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "store_in_use")
        .expect("store_in_use");
    assert_eq!(p["severity"], "warning");
    assert!(p["message"].as_str().unwrap().contains("sleep pid"), "{p}");
}
