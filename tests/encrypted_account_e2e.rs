//! Tarballs of encrypted stream dirs of a named account (not `$G`), against a real
//! nats-server 2.15.1 (issue #13). The server derives every key file's key from the account
//! and the stream name (HMAC-SHA256(key, account ‖ context)); a tarball of a stream dir does
//! not say which account it came from unless its paths do.
//!
//! `tests/support/forensics_scenario.py --key --cipher --account ACC` makes, in account ACC of
//! a server with `jetstream { key, cipher }`, the stream EV, the KV bucket `cfg` and the object
//! bucket `files`, and records what the clients read. Each stream dir is tarred (`tar czf
//! EV.tgz EV`, and `tar czf deep.tgz jetstream/ACC/streams/EV`). Then, with the key:
//! - the account comes from the members' paths, from `--source-account`, or from the dir
//!   holding the tarball (`…/ACC/EV.tgz`); when none fits, exit 2 `encrypted_wrong_key`, the
//!   finding naming `--source-account` (never a silent wrong key), and a given wrong account
//!   is not overridden;
//! - verify gives the server's numbers under ACC, dump its messages, kv its keys, values and
//!   histories (also with kv's own `--account ACC`), object its objects' bytes (SHA-256);
//! - diff of the tarball against the plaintext store dir of the same stream (written by
//!   extract, started by a real server without a key) is identical (exit 0);
//! - salvage writes plaintext that 2.15.1 configured with the key loads in ACC and serves
//!   every message from;
//! - without the key kv, object, diff and salvage exit 2 ("key needed"), nothing written.
mod common;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = "jetdir-sample-key-0123456789abcdef";
const ACC: &str = "ACC";

fn scenario(out: &Path, extra: &[&str]) {
    let r = Command::new(common::python_with_nats())
        .arg(common::repo().join("tests/support/forensics_scenario.py"))
        .arg("--server")
        .arg(common::server_215())
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

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn jetdir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .env_remove("JETDIR_KEY")
        .env_remove("JETDIR_PREV_KEY")
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn doc(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn kinds(rep: &Value) -> Vec<String> {
    rep["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

fn tar(out: &Path, dir: &Path, member: &str) {
    let o = Command::new("tar")
        .arg("czf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(member)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// (seq, subject, payload base64) of what the server served.
fn served(v: &Value) -> Vec<(u64, String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["subject"].as_str().unwrap().to_string(),
                m["data_b64"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// (seq, subject, payload base64) of dump's NDJSON (`--payload base64`).
fn dumped(o: &Output) -> Vec<(u64, String, String)> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("seq").is_some() && v.get("subject").is_some())
        .map(|v| {
            (
                v["seq"].as_u64().unwrap(),
                v["subject"].as_str().unwrap().to_string(),
                v["payload"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn check_kv(ball: &str, with: &[&str], f: &Value) {
    let mut args = vec!["kv", "-q", "--json", ball, "--bucket", "cfg"];
    args.extend_from_slice(with);
    let o = jetdir(&[&args[..], &["keys"]].concat());
    assert_eq!(
        code(&o),
        0,
        "{ball}: kv keys {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let keys: Vec<String> = doc(&o)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = f["kv_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, want, "{ball}: kv keys");
    for (key, w) in f["kv_get"].as_object().unwrap() {
        let o = jetdir(&[&args[..], &["get", key]].concat());
        if w.is_null() {
            assert_eq!(code(&o), 1, "{ball}: kv get {key} must fail");
            continue;
        }
        assert_eq!(code(&o), 0, "{ball}: kv get {key}");
        assert_eq!(doc(&o)["revision"], w["revision"], "{ball}: {key}");
        let mut raw = vec!["kv", "-q", ball, "--bucket", "cfg"];
        raw.extend_from_slice(with);
        let o = jetdir(&[&raw[..], &["get", key, "--raw"]].concat());
        assert_eq!(
            jetdir::forensics::base64(&o.stdout, false),
            w["value_b64"].as_str().unwrap(),
            "{ball}: kv get {key} value"
        );
    }
    let o = jetdir(&[&args[..], &["history", "a"]].concat());
    assert_eq!(code(&o), 0, "{ball}: kv history");
    let revs: Vec<u64> = doc(&o)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["revision"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = f["kv_history_a"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revs, want, "{ball}: kv history a");
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn check_objects(ball: &str, with: &[&str], f: &Value, scratch: &Path) {
    let mut args = vec!["object", "-q", ball, "--bucket", "files"];
    args.extend_from_slice(with);
    let o = jetdir(&[&args[..], &["--json", "ls"]].concat());
    assert_eq!(code(&o), 0, "{ball}: object ls");
    let got: Vec<Value> = doc(&o)["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["deleted"] == false)
        .map(|i| {
            serde_json::json!({"name": i["name"], "size": i["size"], "chunks": i["chunks"],
                               "digest": i["digest"]})
        })
        .collect();
    assert_eq!(Value::from(got), f["obj_list"], "{ball}: object list");
    std::fs::create_dir_all(scratch).unwrap();
    for (name, w) in f["obj_get"].as_object().unwrap() {
        let out = scratch.join(name);
        let o = jetdir(&[&args[..], &["get", name, "-o", out.to_str().unwrap()]].concat());
        if w.is_null() {
            assert_eq!(code(&o), 1, "{ball}: object get {name} must fail");
            assert!(!out.exists());
            continue;
        }
        assert_eq!(
            code(&o),
            0,
            "{ball}: object get {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            sha256_hex(&std::fs::read(&out).unwrap()),
            w.as_str().unwrap(),
            "{ball}: object {name} bytes"
        );
    }
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py: bash scripts/install-deps.sh"
)]
fn encrypted_tarballs_of_a_named_account_read_in_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let kf = tmp.path().join("key");
    std::fs::write(&kf, format!("{KEY}\n")).unwrap();
    let kf = kf.to_str().unwrap().to_string();
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "not-the-key").unwrap();
    let wrong = wrong.to_str().unwrap().to_string();
    let key = ["--key-file", kf.as_str()];
    let key_acc = ["--key-file", kf.as_str(), "--source-account", ACC];
    for cipher in ["chacha", "aes"] {
        let run = tmp.path().join(cipher);
        scenario(&run, &["--key", KEY, "--cipher", cipher, "--account", ACC]);
        let f = read_json(&run.join("facts.json"));
        let store = run.join("store");
        let streams = store.join("jetstream").join(ACC).join("streams");
        assert!(streams.join("EV/meta.key").is_file(), "{cipher}: encrypted");
        let balls = run.join("balls");
        std::fs::create_dir_all(balls.join(ACC)).unwrap();
        for s in ["EV", "KV_cfg", "OBJ_files"] {
            tar(&balls.join(format!("{s}.tgz")), &streams, s);
        }
        tar(
            &balls.join("deep.tgz"),
            &store,
            &format!("jetstream/{ACC}/streams/EV"),
        );
        std::fs::copy(balls.join("EV.tgz"), balls.join(ACC).join("EV.tgz")).unwrap();
        let p = |n: &str| balls.join(n).to_str().unwrap().to_string();
        let ev = p("EV.tgz");
        let want = served(&f["ev"]);

        // the account is not in the tarball: $G and the dirs holding it are tried, none
        // fits: exit 2, the finding says "another account" and names the flag
        let o = jetdir(&["verify", "-q", "--json", "--key-file", &kf, &ev]);
        assert_eq!(code(&o), 2, "{cipher}: no account");
        let rep = doc(&o);
        assert_eq!(kinds(&rep), vec!["encrypted_wrong_key"], "{cipher}");
        let msg = rep["problems"][0]["message"].as_str().unwrap();
        assert!(
            msg.contains("another account") && msg.contains("--source-account"),
            "{cipher}: {msg}"
        );
        let o = jetdir(&["verify", "-q", "--key-file", &kf, &ev]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("--source-account ACC"),
            "{cipher}: {}",
            String::from_utf8_lossy(&o.stdout)
        );

        // with the account: from the flag, from the members' paths, from the dir holding it
        let acc_ev = balls.join(ACC).join("EV.tgz");
        for (what, args) in [
            (
                "--source-account",
                vec!["--key-file", &kf, "--source-account", ACC, &ev],
            ),
            ("path in the tar", vec!["--key-file", &kf, &p("deep.tgz")]),
            (
                "dir holding the tarball",
                vec!["--key-file", &kf, acc_ev.to_str().unwrap()],
            ),
        ] {
            let o = jetdir(&[&["verify", "-q", "--json"], &args[..]].concat());
            let rep = doc(&o);
            assert_eq!(code(&o), 0, "{cipher} {what}: {}", rep["problems"]);
            let s = &rep["streams"][0];
            assert_eq!(s["account"], ACC, "{cipher} {what}");
            assert_eq!(s["name"], "EV", "{cipher} {what}");
            assert_eq!(s["messages"], want.len() as u64, "{cipher} {what}");
            assert_eq!(s["last_seq"], want.last().unwrap().0, "{cipher} {what}");
            assert_eq!(s["encryption"]["cipher"], cipher, "{cipher} {what}");
            let assets = s["encryption"]["assets"].as_array().unwrap();
            assert!(
                !assets.is_empty() && assets.iter().all(|a| a["outcome"] == "key"),
                "{cipher} {what}: {assets:?}"
            );
        }
        // a given account is taken as given (the path's is not tried instead); the wrong key
        // under the right account is still the wrong key
        for args in [
            vec!["--key-file", &kf, "--source-account", "$G", &p("deep.tgz")],
            vec!["--key-file", &wrong, "--source-account", ACC, &ev],
        ] {
            let o = jetdir(&[&["verify", "-q", "--json"], &args[..]].concat());
            assert_eq!(code(&o), 2, "{cipher}: {args:?}");
            assert_eq!(kinds(&doc(&o)), vec!["encrypted_wrong_key"], "{cipher}");
        }

        // dump: the messages the server served
        let o = jetdir(
            &[
                &["dump", "-q", "--json", "--payload", "base64"],
                &key_acc[..],
                &[&ev],
            ]
            .concat(),
        );
        assert_eq!(code(&o), 0, "{cipher}: dump");
        assert_eq!(dumped(&o), want, "{cipher}: dump");

        // kv and object: what the clients read
        let kv = p("KV_cfg.tgz");
        check_kv(&kv, &key_acc, &f);
        // the command's own --account (which streams to read) is tried as the source account
        check_kv(&kv, &["--key-file", &kf, "--account", ACC], &f);
        let obj = p("OBJ_files.tgz");
        check_objects(&obj, &key_acc, &f, &run.join("objects"));
        // named by its path in the store: no flag needed
        tar(
            &balls.join("kv-deep.tgz"),
            &store,
            &format!("jetstream/{ACC}/streams/KV_cfg"),
        );
        check_kv(&p("kv-deep.tgz"), &key, &f);
        // without the key: exit 2 (key needed)
        for args in [
            vec!["kv", "-q", &kv, "--bucket", "cfg", "keys"],
            vec!["object", "-q", &obj, "--bucket", "files", "ls"],
        ] {
            let o = jetdir(&args);
            assert_eq!(code(&o), 2, "{cipher}: {args:?}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("key needed"),
                "{cipher}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }

        // diff against the plaintext store dir of the same stream: extract writes plaintext,
        // a real server without a key serves every message from it, and the copies are equal
        let plain = run.join("plain");
        let o = jetdir(
            &[
                &["extract", "-q"],
                &key_acc[..],
                &[
                    &ev,
                    "--store-dir",
                    plain.to_str().unwrap(),
                    "--account",
                    ACC,
                    "--create",
                ],
            ]
            .concat(),
        );
        assert_eq!(
            code(&o),
            0,
            "{cipher}: extract {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let plain_ev = plain.join("jetstream").join(ACC).join("streams/EV");
        assert!(!plain_ev.join("meta.key").exists(), "{cipher}: plaintext");
        let read = run.join("read-plain");
        scenario(
            &read,
            &[
                "--read",
                plain.to_str().unwrap(),
                "--stream",
                "EV",
                "--account",
                ACC,
            ],
        );
        assert_eq!(
            served(&read_json(&read.join("served.json"))),
            want,
            "{cipher}"
        );
        let o = jetdir(
            &[
                &["diff", "-q", "--json"],
                &key_acc[..],
                &[&ev, plain.to_str().unwrap()],
            ]
            .concat(),
        );
        let d = doc(&o);
        assert_eq!(code(&o), 0, "{cipher}: diff {d}");
        assert_eq!(d["streams"].as_array().unwrap().len(), 1, "{cipher}: {d}");
        assert_eq!(d["streams"][0]["identical"], true, "{cipher}: {d}");
        // and against the encrypted store dir itself (the same key)
        let o = jetdir(
            &[
                &["diff", "-q"],
                &key_acc[..],
                &[&ev, store.to_str().unwrap()],
                &["--stream", "EV"],
            ]
            .concat(),
        );
        assert_eq!(code(&o), 0, "{cipher}: diff with the store");
        // a copy that differs is told (exit 1): the KV bucket's tarball named as EV's
        let o = jetdir(
            &[
                &["diff", "-q"],
                &key_acc[..],
                &[&kv, plain.to_str().unwrap()],
            ]
            .concat(),
        );
        assert_eq!(code(&o), 1, "{cipher}: diff of two streams");
        let o = jetdir(&["diff", "-q", &ev, plain.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{cipher}: diff without the key");

        // salvage: plaintext that 2.15.1 configured with the key loads in ACC
        let salv = run.join("salvaged");
        let dst = salv.join("jetstream").join(ACC).join("streams");
        std::fs::create_dir_all(&dst).unwrap();
        let out = dst.join("EV");
        let o = jetdir(&[
            "salvage",
            "-q",
            &ev,
            "-o",
            out.to_str().unwrap(),
            "--format",
            "dir",
        ]);
        assert_eq!(code(&o), 2, "{cipher}: salvage without the key");
        assert!(!out.exists(), "{cipher}: nothing written");
        let o = jetdir(
            &[
                &["salvage", "-q"],
                &key_acc[..],
                &[&ev, "-o", out.to_str().unwrap(), "--format", "dir"],
            ]
            .concat(),
        );
        assert_eq!(
            code(&o),
            0,
            "{cipher}: salvage {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            !out.join("meta.key").exists(),
            "{cipher}: salvage writes plaintext"
        );
        let read = run.join("read-salvaged");
        scenario(
            &read,
            &[
                "--read",
                salv.to_str().unwrap(),
                "--stream",
                "EV",
                "--account",
                ACC,
                "--key",
                KEY,
                "--cipher",
                cipher,
            ],
        );
        assert_eq!(
            served(&read_json(&read.join("served.json"))),
            want,
            "{cipher}"
        );
        assert!(
            out.join("meta.key").is_file(),
            "{cipher}: the keyed server encrypted the salvaged stream at start"
        );
    }
}
