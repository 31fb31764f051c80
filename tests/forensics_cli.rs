//! `jetdir dump`, `kv`, `object` on the bundled fixtures (no server needed): exit codes,
//! the JSON failure document, a closed stdout, and that nothing is written to the input.
mod common;

use common::copy_dir;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn jetdir(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .expect("run jetdir");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code().is_some_and(|c| c != 101) && !stderr.contains("panicked"),
        "{args:?}: crash\n{stderr}"
    );
    o
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

/// Every file under `dir` with its bytes (to show that nothing changed).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn exit_codes_and_failure_documents() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    copy_dir(&fixture("v2.15.1-plain/store"), &store);
    let before = snapshot(&store);

    // clean: 0, one JSON object per line
    let o = jetdir(&["dump", "--json", p(&store), "--stream", "ORDERS"]);
    assert_eq!(code(&o), 0);
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(lines
        .iter()
        .all(|l| l["seq"].is_u64() && l["stream"] == "ORDERS"));
    // every stream, text
    assert_eq!(code(&jetdir(&["dump", p(&store)])), 0);

    // could not run: 2, with one JSON failure document under --json
    for args in [
        vec!["dump", p(&store), "--seq", "9..3"],
        vec!["dump", p(&store), "--since", "yesterday"],
        vec!["dump", p(&store), "--stream", "NOPE"],
        vec!["dump", "/nonexistent/jetdir-store"],
        vec!["kv", p(&store), "--bucket", "nope", "keys"],
        vec!["kv", p(&store), "--bucket", "config", "get", "a.*"],
        vec!["kv", p(&store), "--bucket", "bad.name"],
        vec!["object", p(&store), "--bucket", "files", "ls"],
    ] {
        let o = jetdir(&args);
        assert_eq!(code(&o), 2, "{args:?}");
        let mut j = vec!["--json"];
        j.extend(&args);
        let o = jetdir(&j);
        assert_eq!(code(&o), 2, "{j:?}");
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["ok"], false, "{j:?}");
        assert!(doc["error"].is_string());
    }

    // KV: found 0, missing 1
    let o = jetdir(&["kv", p(&store), "--bucket", "config", "get", "a", "--raw"]);
    assert_eq!(code(&o), 0);
    assert_eq!(o.stdout, b"3");
    assert_eq!(
        code(&jetdir(&[
            "kv",
            p(&store),
            "--bucket",
            "config",
            "get",
            "zz"
        ])),
        1
    );
    let o = jetdir(&["kv", "--json", p(&store), "--bucket", "config"]);
    assert_eq!(code(&o), 0);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert!(doc["keys"].as_array().is_some_and(|k| !k.is_empty()));

    // nothing was written to the input
    assert!(
        snapshot(&store) == before,
        "a read-only command changed the store"
    );

    // damage: 1
    let blk = store.join("jetstream/$G/streams/MULTI/msgs/2.blk");
    let mut b = std::fs::read(&blk).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x5a;
    std::fs::write(&blk, b).unwrap();
    let o = jetdir(&["dump", "--json", p(&store), "--stream", "MULTI"]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"finding\""));
    // a range away from the damage holds no error: 0
    let o = jetdir(&["dump", p(&store), "--stream", "MULTI", "--seq", "1..5"]);
    assert_eq!(code(&o), 0);
}

/// An encrypted stream cannot be read (key needed): 2, naming it, without a panic.
#[test]
fn encrypted_streams_cannot_run() {
    let tmp = tempfile::TempDir::new().unwrap();
    let f = std::fs::File::open(fixture("samples/v2.15.1-enc-chacha.tar.gz")).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(tmp.path())
        .unwrap();
    let store = tmp.path().join("v2.15.1-enc-chacha/store");
    let o = jetdir(&["dump", p(&store)]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("encrypted"));
    let o = jetdir(&["dump", p(&store), "--stream", "SECRET"]);
    assert_eq!(code(&o), 2);
}

/// `jetdir dump … | head -1` ends quietly (no panic, no message) with the command's own code.
#[test]
fn closed_stdout_is_quiet() {
    for json in [false, true] {
        let mut args = vec!["dump".to_string()];
        if json {
            args.push("--json".into());
        }
        args.push(fixture("v2.15.1-plain/store").display().to_string());
        args.extend([
            "--stream".into(),
            "MULTI".into(),
            "--payload".into(),
            "hex".into(),
        ]);
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
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
