//! Encrypted stores (issue #13), on the fixtures written by real servers (2.15.1 chacha and
//! aes, 2.9.10 chacha; key `jetdir-sample-key-0123456789abcdef`): verify through the key
//! agrees with the server's numbers, and each asset's outcome is told apart: the key, the
//! previous key, the other cipher, the wrong key, a corrupt asset. No server needed.
mod common;
use common::copy_dir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "jetdir-sample-key-0123456789abcdef";
const SAMPLES: [&str; 3] = [
    "v2.15.1-enc-chacha",
    "v2.9.10-enc-chacha",
    "v2.15.1-enc-aes",
];

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Run jetdir with `env` set (JETDIR_KEY / JETDIR_PREV_KEY cleared unless given).
fn jetdir_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jetdir"));
    c.args(args)
        .env_remove("JETDIR_KEY")
        .env_remove("JETDIR_PREV_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run jetdir")
}

fn key_file(dir: &Path, name: &str, key: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{key}\n")).unwrap();
    p.display().to_string()
}

/// A private copy of a fixture's store.
fn store_copy(sample: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&fixture(&format!("{sample}/store")), t.path());
    t
}

fn json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains(KEY) && !String::from_utf8_lossy(&out.stderr).contains(KEY),
        "the key is printed"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn kinds(v: &Value) -> Vec<(String, String)> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_string(),
                p["file"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn stream<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stream {name}"))
}

/// Numbers and consumers equal to what the server reported (facts.json).
fn assert_matches_server(v: &Value, sample: &str) {
    let facts: Value =
        serde_json::from_slice(&std::fs::read(fixture(&format!("{sample}/facts.json"))).unwrap())
            .unwrap();
    let fs = facts["streams"].as_object().unwrap();
    assert_eq!(v["streams"].as_array().unwrap().len(), fs.len(), "{sample}");
    for (name, f) in fs {
        let s = stream(v, name);
        let st = &f["info"]["state"];
        for (ours, theirs) in [
            ("messages", "messages"),
            ("bytes", "bytes"),
            ("first_seq", "first_seq"),
            ("last_seq", "last_seq"),
            ("deleted", "num_deleted"),
            ("subjects", "num_subjects"),
        ] {
            assert_eq!(s[ours], st[theirs], "{sample} {name} {ours}");
        }
        let cons = f["consumers"].as_object().cloned().unwrap_or_default();
        assert_eq!(s["consumers"].as_array().unwrap().len(), cons.len());
        for c in s["consumers"].as_array().unwrap() {
            let ci = &cons[c["name"].as_str().unwrap()];
            assert_eq!(c["delivered_stream_seq"], ci["delivered"]["stream_seq"]);
            assert_eq!(c["ack_floor_stream_seq"], ci["ack_floor"]["stream_seq"]);
            assert_eq!(
                c["num_ack_pending"], ci["num_ack_pending"],
                "{sample} {name}"
            );
        }
        assert_eq!(s["encrypted"], true);
    }
}

#[test]
fn encrypted_fixtures_verify_through_the_key_as_the_server_counts() {
    let k = tempfile::tempdir().unwrap();
    let kf = key_file(k.path(), "key", KEY);
    for sample in SAMPLES {
        let t = store_copy(sample);
        let p = t.path().display().to_string();
        let out = jetdir_env(&["verify", "-q", "--json", "--key-file", &kf, &p], &[]);
        let v = json(&out);
        assert_eq!(out.status.code(), Some(0), "{sample}: {:?}", kinds(&v));
        assert!(kinds(&v).is_empty(), "{sample}: {:?}", kinds(&v));
        assert_matches_server(&v, sample);
        let cipher = if sample.contains("aes") {
            "aes"
        } else {
            "chacha"
        };
        for s in v["streams"].as_array().unwrap() {
            let e = &s["encryption"];
            assert_eq!(e["cipher"], cipher);
            assert_eq!(e["key"], "given");
            let assets = e["assets"].as_array().unwrap();
            assert!(assets.iter().any(|a| a["file"] == "msgs/1.blk"));
            for a in assets {
                assert_eq!(a["outcome"], "key", "{sample} {a}");
            }
        }
        // the same with the key from the environment, and with the cipher named
        let out = jetdir_env(
            &["verify", "-q", "--json", "--cipher", cipher, &p],
            &[("JETDIR_KEY", KEY)],
        );
        assert_eq!(out.status.code(), Some(0), "{sample} JETDIR_KEY");
        assert_matches_server(&json(&out), sample);
    }
}

#[test]
fn without_a_key_verify_exits_2_and_inspect_shows_what_is_readable() {
    for sample in SAMPLES {
        let t = store_copy(sample);
        let p = t.path().display().to_string();
        let out = jetdir_env(&["verify", "-q", "--json", &p], &[]);
        assert_eq!(out.status.code(), Some(2), "{sample}");
        let v = json(&out);
        assert!(kinds(&v).iter().all(|(k, _)| k == "encrypted_key_needed"));
        let out = jetdir_env(&["inspect", "-q", "--json", &p], &[]);
        assert_eq!(out.status.code(), Some(2));
        let v = json(&out);
        let s = stream(&v, "SECRET");
        let e = &s["encryption"];
        assert_eq!(e["key"], "none");
        let want = if sample.contains("aes") {
            "aes"
        } else {
            "chacha"
        };
        assert_eq!(e["cipher"], want, "told from the key file sizes");
        let files: Vec<&str> = e["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["file"].as_str().unwrap())
            .collect();
        for f in [
            "meta.inf",
            "meta.key",
            "msgs/1.blk",
            "msgs/1.key",
            "obs/D1/o.dat",
        ] {
            assert!(files.contains(&f), "{sample}: {f} in {files:?}");
        }
        assert!(!files.contains(&"meta.sum"), "meta.sum is plaintext");
        let blk = e["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["file"] == "msgs/1.blk")
            .unwrap();
        assert!(blk["bytes"].as_u64().unwrap() > 500);
        // text: the verdict says what is missing
        let out = jetdir_env(&["inspect", "-q", &p], &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("KEY NEEDED"), "{text}");
        assert!(
            text.contains(&format!("Encryption: cipher {want}")),
            "{text}"
        );
    }
}

#[test]
fn wrong_key_exits_2_and_nothing_decrypts() {
    let k = tempfile::tempdir().unwrap();
    let kf = key_file(k.path(), "wrong", "not-the-key");
    for sample in SAMPLES {
        let t = store_copy(sample);
        let p = t.path().display().to_string();
        let out = jetdir_env(&["verify", "-q", "--json", "--key-file", &kf, &p], &[]);
        assert_eq!(out.status.code(), Some(2), "{sample}");
        let v = json(&out);
        for s in v["streams"].as_array().unwrap() {
            assert_eq!(s["encryption"]["key"], "wrong");
            for a in s["encryption"]["assets"].as_array().unwrap() {
                assert_eq!(a["outcome"], "wrong_key");
            }
        }
        let ks = kinds(&v);
        assert_eq!(ks.len(), v["streams"].as_array().unwrap().len());
        assert!(ks.iter().all(|(k, _)| k == "encrypted_wrong_key"), "{ks:?}");
        // pack refuses, writes nothing
        let o = tempfile::tempdir().unwrap();
        let dest = o.path().join("b");
        let out = jetdir_env(
            &[
                "pack",
                "-q",
                "--stream",
                "SECRET",
                "--key-file",
                &kf,
                &p,
                "-o",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "usage: -o needs a value");
        let out = jetdir_env(
            &[
                "pack",
                "-q",
                "--stream",
                "SECRET",
                "--key-file",
                &kf,
                &p,
                "-o",
                &dest.display().to_string(),
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stdout).contains("wrong key"));
        assert!(!dest.exists());
    }
}

#[test]
fn previous_key_and_other_cipher_are_warnings() {
    let k = tempfile::tempdir().unwrap();
    let right = key_file(k.path(), "right", KEY);
    let new = key_file(k.path(), "new", "the-new-key-after-rotation");
    let t = store_copy("v2.15.1-enc-chacha");
    let p = t.path().display().to_string();
    // rotated: the store is still under the previous key. The server converts the stream
    // (index.db, sealed with the old stream key, is rebuilt) but not the consumer.
    let out = jetdir_env(
        &[
            "verify",
            "-q",
            "--json",
            "--key-file",
            &new,
            "--prev-key-file",
            &right,
            &p,
        ],
        &[],
    );
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{:?}", kinds(&v));
    assert_matches_server(&v, "v2.15.1-enc-chacha");
    assert_eq!(
        kinds(&v),
        vec![
            ("encrypted_previous_key".to_string(), "meta.key".to_string()),
            (
                "encrypted_consumer_previous_key".to_string(),
                "obs/D1/meta.key".to_string()
            )
        ]
    );
    for a in stream(&v, "SECRET")["encryption"]["assets"]
        .as_array()
        .unwrap()
    {
        assert_eq!(a["outcome"], "previous_key");
    }
    assert_eq!(stream(&v, "SECRET")["load"]["recovery"], "rebuild");
    // a chacha store read by a server configured with aes: the server converts it
    let out = jetdir_env(
        &[
            "verify",
            "-q",
            "--json",
            "--key-file",
            &right,
            "--cipher",
            "aes",
            &p,
        ],
        &[],
    );
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0));
    assert_matches_server(&v, "v2.15.1-enc-chacha");
    assert!(kinds(&v).iter().all(|(k, _)| k == "encrypted_other_cipher"));
    assert!(kinds(&v).iter().any(|(_, f)| f == "meta.key"));
}

fn flip(p: &Path, off_from_end: usize) {
    let mut b = std::fs::read(p).unwrap();
    let i = b.len() - off_from_end;
    b[i] ^= 0x20;
    std::fs::write(p, b).unwrap();
}

/// One damaged asset of a stream whose key fits the rest: `encrypted_corrupt` (or what the
/// server does with it), never `encrypted_wrong_key`.
#[test]
fn a_corrupt_asset_is_told_apart_from_a_wrong_key() {
    let k = tempfile::tempdir().unwrap();
    let kf = key_file(k.path(), "key", KEY);
    let sdir = |t: &tempfile::TempDir| t.path().join("jetstream/$G/streams/SECRET");
    let run = |t: &tempfile::TempDir| {
        let out = jetdir_env(
            &[
                "verify",
                "-q",
                "--json",
                "--key-file",
                &kf,
                &t.path().display().to_string(),
            ],
            &[],
        );
        let v = json(&out);
        (out.status.code(), v)
    };
    let outcome = |v: &Value, f: &str| {
        stream(v, "SECRET")["encryption"]["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["file"] == f)
            .map(|a| a["outcome"].as_str().unwrap().to_string())
    };
    // a block's key file: the block cannot be decrypted, its messages are lost
    let t = store_copy("v2.15.1-enc-chacha");
    flip(&sdir(&t).join("msgs/1.key"), 3);
    let (code, v) = run(&t);
    assert_eq!(code, Some(1));
    assert!(
        kinds(&v).contains(&("encrypted_corrupt".into(), "msgs/1.key".into())),
        "{:?}",
        kinds(&v)
    );
    assert_eq!(outcome(&v, "msgs/1.key").as_deref(), Some("corrupt"));
    assert_eq!(outcome(&v, "meta.key").as_deref(), Some("key"));
    assert_eq!(outcome(&v, "obs/D1/o.dat").as_deref(), Some("key"));
    // the consumer state
    let t = store_copy("v2.15.1-enc-chacha");
    flip(&sdir(&t).join("obs/D1/o.dat"), 1);
    let (code, v) = run(&t);
    assert_eq!(code, Some(1));
    assert!(kinds(&v).contains(&("encrypted_corrupt".into(), "obs/D1/o.dat".into())));
    assert_eq!(outcome(&v, "obs/D1/o.dat").as_deref(), Some("corrupt"));
    assert_eq!(outcome(&v, "msgs/1.blk").as_deref(), Some("key"));
    // meta.inf: the sum over its ciphertext no longer matches, and it does not open
    let t = store_copy("v2.15.1-enc-chacha");
    flip(&sdir(&t).join("meta.inf"), 1);
    let (code, v) = run(&t);
    assert_eq!(code, Some(1));
    let ks = kinds(&v);
    assert!(
        ks.contains(&("encrypted_corrupt".into(), "meta.inf".into())),
        "{ks:?}"
    );
    assert!(ks.iter().any(|(k, _)| k == "meta_sum_mismatch"), "{ks:?}");
    assert_eq!(stream(&v, "SECRET")["load"]["verdict"], "skipped");
    // a block's bytes: blocks are not authenticated; the record checksum finds it
    let t = store_copy("v2.15.1-enc-chacha");
    flip(&sdir(&t).join("msgs/1.blk"), 300); // in the payload of seq 6
    let (code, v) = run(&t);
    assert_eq!(code, Some(1));
    let ks = kinds(&v);
    assert!(ks.iter().any(|(k, _)| k == "record_checksum"), "{ks:?}");
    assert!(
        !ks.iter().any(|(k, _)| k.starts_with("encrypted_")),
        "{ks:?}"
    );
    // the 2.9 legacy index: rebuilt by the server from the block
    let t = store_copy("v2.9.10-enc-chacha");
    flip(&sdir(&t).join("msgs/1.idx"), 5);
    let (_, v) = run(&t);
    assert!(
        kinds(&v).contains(&("idx_corrupt".into(), "msgs/1.idx".into())),
        "{:?}",
        kinds(&v)
    );
    assert_eq!(outcome(&v, "msgs/1.idx").as_deref(), Some("corrupt"));
    // as 2.9.10 loads it (the differential matrix, `idx_damaged`): rebuilt without loss, a
    // warning, and not also reported missing
    let p = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "idx_corrupt")
        .unwrap();
    assert_eq!(p["severity"], "warning");
    assert!(!kinds(&v).iter().any(|(k, _)| k == "idx_missing"), "{v}");
    assert_eq!(stream(&v, "SECRET")["load"]["verdict"], "repaired");
}

#[test]
fn pack_with_the_key_writes_a_plaintext_backup() {
    let k = tempfile::tempdir().unwrap();
    let kf = key_file(k.path(), "key", KEY);
    for (sample, stream_name) in [
        ("v2.15.1-enc-aes", "ENCCMP"),
        ("v2.15.1-enc-chacha", "SECRET"),
        ("v2.9.10-enc-chacha", "SECRET"),
    ] {
        let t = store_copy(sample);
        let o = tempfile::tempdir().unwrap();
        for format in ["v1", "tgz"] {
            let dest = o.path().join(format!("b-{format}"));
            let out = jetdir_env(
                &[
                    "pack",
                    "-q",
                    "--json",
                    "--key-file",
                    &kf,
                    "--stream",
                    stream_name,
                    "--format",
                    format,
                    "-o",
                    &dest.display().to_string(),
                    &t.path().display().to_string(),
                ],
                &[],
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{sample} {format}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            // the backup is plaintext: it verifies without a key, with the server's numbers
            let out = jetdir_env(
                &["verify", "-q", "--json", &dest.display().to_string()],
                &[],
            );
            let v = json(&out);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{sample} {format}: {:?}",
                kinds(&v)
            );
            let s = &v["streams"][0];
            assert_eq!(s["encrypted"], false);
            let facts: Value = serde_json::from_slice(
                &std::fs::read(fixture(&format!("{sample}/facts.json"))).unwrap(),
            )
            .unwrap();
            let st = &facts["streams"][stream_name]["info"]["state"];
            assert_eq!(s["messages"], st["messages"], "{sample} {format}");
            assert_eq!(s["bytes"], st["bytes"]);
            assert!(s["files"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| !f.as_str().unwrap().ends_with(".key")));
        }
        // no plaintext left beside the output
        let left: Vec<_> = std::fs::read_dir(o.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".plain"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn key_files_that_cannot_be_read_are_named() {
    let out = jetdir_env(
        &[
            "verify",
            "-q",
            "--key-file",
            "/nonexistent/jetdir-key",
            &fixture("v2.15.1-enc-chacha/store").display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/jetdir-key")
            || String::from_utf8_lossy(&out.stdout).contains("/nonexistent/jetdir-key")
    );
    let k = tempfile::tempdir().unwrap();
    let empty = k.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let out = jetdir_env(
        &[
            "verify",
            "-q",
            "--key-file",
            &empty.display().to_string(),
            &fixture("v2.15.1-enc-chacha/store").display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// dump and kv read an encrypted store through the key: the messages verify counts, every
/// payload readable; without the key, or with a wrong one, they cannot run (exit 2).
#[test]
fn dump_reads_encrypted_stores_through_the_key() {
    for sample in SAMPLES {
        let store = fixture(&format!("{sample}/store"));
        let s = store.display().to_string();
        let v = json(&jetdir_env(
            &["-j", "-q", "verify", &s],
            &[("JETDIR_KEY", KEY)],
        ));
        let want: u64 = v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| st["messages"].as_u64().unwrap())
            .sum();
        let out = jetdir_env(&["-j", "-q", "dump", &s], &[("JETDIR_KEY", KEY)]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{sample}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains(KEY));
        let msgs: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|m: &Value| m.get("seq").is_some())
            .collect();
        assert_eq!(msgs.len() as u64, want, "{sample}");
        assert!(
            msgs.iter()
                .all(|m| m["payload_encoding"] == "text" || m["payload_encoding"] == "base64"),
            "{sample}"
        );
        let d = tempfile::tempdir().unwrap();
        let kf = key_file(d.path(), "key", KEY);
        let out = jetdir_env(&["-q", "dump", "--key-file", &kf, &s], &[]);
        assert_eq!(out.status.code(), Some(0), "{sample}");
        let none = jetdir_env(&["-q", "dump", &s], &[]);
        assert_eq!(none.status.code(), Some(2), "{sample}: no key");
        assert!(String::from_utf8_lossy(&none.stderr).contains("give its key"));
        let wrong = jetdir_env(&["-q", "dump", &s], &[("JETDIR_KEY", "not-the-key")]);
        assert_eq!(wrong.status.code(), Some(2), "{sample}: wrong key");
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("does not open"));
    }
}

/// diff compares encrypted copies through the key (identical: exit 0); without it, exit 2.
#[test]
fn diff_reads_encrypted_copies_through_the_key() {
    let (a, b) = (store_copy("v2.15.1-enc-aes"), store_copy("v2.15.1-enc-aes"));
    let (a, b) = (
        a.path().display().to_string(),
        b.path().display().to_string(),
    );
    let out = jetdir_env(&["-q", "diff", &a, &b], &[("JETDIR_KEY", KEY)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("IDENTICAL"));
    let none = jetdir_env(&["-q", "diff", &a, &b], &[]);
    assert_eq!(none.status.code(), Some(2));
}

/// salvage of an encrypted stream with its key writes a plaintext stream dir that verifies
/// without a key, with the numbers verify gives through the key; without it, exit 2.
#[test]
fn salvage_writes_plaintext_from_an_encrypted_stream() {
    for (sample, stream) in [
        ("v2.15.1-enc-aes", "ENCCMP"),
        ("v2.15.1-enc-chacha", "SECRET"),
        ("v2.9.10-enc-chacha", "SECRET"),
    ] {
        let src = fixture(&format!("{sample}/store/jetstream/$G/streams/{stream}"));
        let s = src.display().to_string();
        let want = json(&jetdir_env(
            &["-j", "-q", "verify", &s],
            &[("JETDIR_KEY", KEY)],
        ));
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join(stream);
        let o = out.display().to_string();
        let none = jetdir_env(&["-q", "salvage", &s, "-o", &o], &[]);
        assert_eq!(none.status.code(), Some(2), "{sample}: no key");
        assert!(!out.exists());
        let r = jetdir_env(&["-q", "salvage", &s, "-o", &o], &[("JETDIR_KEY", KEY)]);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{sample}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(!String::from_utf8_lossy(&r.stdout).contains(KEY));
        let got = json(&jetdir_env(&["-j", "-q", "verify", &o], &[]));
        assert_eq!(got["exit_code"], 0, "{sample}: {got:#}");
        let (a, b) = (&want["streams"][0], &got["streams"][0]);
        for f in ["messages", "first_seq", "last_seq", "deleted"] {
            assert_eq!(a[f], b[f], "{sample} {f}");
        }
        assert_eq!(b["encrypted"], false);
        assert!(std::fs::read_dir(out.join("msgs")).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".key")));
    }
}

/// What each release does with an encrypted file that does not open, as the differential
/// matrix on encrypted stores measured it on the real servers (`matrix.py --cipher chacha`,
/// rows `meta_key_flip`, `key_missing_last`, `key_flip_last`, `odat_flip`,
/// `consumer_key_flip`; 2.9.10-2.15.1; `tests/matrix-findings.md` M17), on the 2.15.1
/// fixture's SECRET (one block, consumer D1): jetdir's verdict and consumer as each release.
#[test]
fn undecryptable_files_as_each_release_loads_them() {
    let k = tempfile::tempdir().unwrap();
    let kf = key_file(k.path(), "key", KEY);
    let sdir = |t: &tempfile::TempDir| t.path().join("jetstream/$G/streams/SECRET");
    let verify = |t: &tempfile::TempDir, release: &str| {
        let out = jetdir_env(
            &[
                "verify",
                "--json",
                "--no-progress",
                "--key-file",
                &kf,
                "--server-version",
                release,
                &t.path().display().to_string(),
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{release}");
        stream(&json(&out), "SECRET").clone()
    };
    // meta.key: every release skips the stream
    let t = store_copy("v2.15.1-enc-chacha");
    flip(&sdir(&t).join("meta.key"), 20);
    for r in ["2.9.10", "2.10.26", "2.12.8", "2.15.1"] {
        assert_eq!(verify(&t, r)["load"]["verdict"], "skipped", "{r}");
    }
    // dump tells it too (the messages still come out: forensics), and exits 1
    let out = jetdir_env(
        &[
            "dump",
            "--json",
            "--key-file",
            &kf,
            &t.path().display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("\"kind\":\"encrypted_corrupt\"") && l.contains("meta.key")),
        "{text}"
    );
    // the (last) block's key file missing: 2.9 skips the stream; 2.10+ rebuild without the
    // block, its messages lost
    let t = store_copy("v2.15.1-enc-chacha");
    std::fs::remove_file(sdir(&t).join("msgs/1.key")).unwrap();
    assert_eq!(verify(&t, "2.9.10")["load"]["verdict"], "skipped");
    for r in ["2.10.26", "2.12.8", "2.15.1"] {
        let s = verify(&t, r);
        assert_eq!(s["load"]["verdict"], "loses_data", "{r}");
        assert_eq!(s["load"]["recovery"], "rebuild", "{r}: {s:#}");
        assert_eq!(s["messages"], 0, "{r}");
    }
    // ... and without index.db: 2.14+ make a new key for it in the rebuild, cannot read the
    // block with it and do not load the stream; 2.10-2.12 drop the block
    std::fs::remove_file(sdir(&t).join("msgs/index.db")).unwrap();
    for (r, verdict) in [
        ("2.9.10", "skipped"),
        ("2.12.8", "loses_data"),
        ("2.14.6", "skipped"),
        ("2.15.1", "skipped"),
    ] {
        assert_eq!(verify(&t, r)["load"]["verdict"], verdict, "{r}");
    }
    // the block's key file damaged (index.db no longer matches: a rebuild): 2.14.0-2.14.3
    // cannot recover the stream ("unable to recover keys"); the others drop the block
    let t = store_copy("v2.15.1-enc-chacha");
    flip(&sdir(&t).join("msgs/1.key"), 20);
    for (r, verdict) in [
        ("2.9.10", "skipped"),
        ("2.12.8", "loses_data"),
        ("2.14.0", "skipped"),
        ("2.14.3", "skipped"),
        ("2.14.4", "loses_data"),
        ("2.15.1", "loses_data"),
    ] {
        assert_eq!(verify(&t, r)["load"]["verdict"], verdict, "{r}");
    }
    // o.dat: 2.11.3+ do not load the consumer; before, it loads without its state
    let t = store_copy("v2.15.1-enc-chacha");
    flip(&sdir(&t).join("obs/D1/o.dat"), 1);
    for (r, loads) in [
        ("2.9.10", true),
        ("2.11.2", true),
        ("2.11.3", false),
        ("2.15.1", false),
    ] {
        let s = verify(&t, r);
        let c = &s["consumers"][0];
        assert_eq!(c["name"], "D1");
        assert_eq!(c["loads"], loads, "{r}: {c:#}");
        if loads {
            assert_eq!(c["delivered_stream_seq"], u64::MAX, "{r}: {c:#}");
            assert_eq!(c["ack_floor_stream_seq"], 0, "{r}: {c:#}");
            assert_eq!(c["num_pending"], s["messages"], "{r}: {c:#}");
        }
    }
    // the consumer's meta.key: no release loads it
    let t = store_copy("v2.15.1-enc-chacha");
    flip(&sdir(&t).join("obs/D1/meta.key"), 20);
    for r in ["2.9.10", "2.11.2", "2.15.1"] {
        assert_eq!(verify(&t, r)["consumers"][0]["loads"], false, "{r}");
    }
}

/// A block of an encrypted stream written in plaintext, as nats-server 2.10.0-2.11.5 leave
/// one on disk (2.15.1's SECRET with `msgs/1.blk` replaced by its own plaintext, its key file
/// kept): verify names it (`block_plaintext`) and says the server loses its messages, `dump
/// --include-deleted` shows them as lost, `salvage` writes every one of them out; with the
/// key file moved aside (what the finding advises) the server converts the block and the
/// stream verifies with the server's numbers of the intact stream.
#[test]
fn a_block_written_in_plaintext_is_reported_and_salvaged() {
    use jetdir::filestore::{encrypted::EncryptedDir, keys};
    let t = store_copy("v2.15.1-enc-chacha");
    let sd = t.path().join("jetstream/$G/streams/SECRET");
    let ring = keys::KeyRing {
        key: Some(keys::ServerKey::new(KEY)),
        ..Default::default()
    };
    let plain = EncryptedDir::open(&sd, "$G", "SECRET", &ring)
        .read_file("msgs/1.blk")
        .unwrap()
        .unwrap();
    std::fs::write(sd.join("msgs/1.blk"), plain).unwrap();
    let store = t.path().display().to_string();
    let env = [("JETDIR_KEY", KEY)];
    let out = jetdir_env(&["-j", "-q", "verify", &store], &env);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let p = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "block_plaintext")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(p["file"], "msgs/1.blk");
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.contains("10 message record(s), seqs 1..10") && msg.contains("move msgs/1.key out"),
        "{msg}"
    );
    let s = stream(&v, "SECRET");
    assert_eq!(s["load"]["verdict"], "loses_data");
    assert_eq!(s["messages"], 0);
    // explain tells the fix first
    let e = json(&jetdir_env(&["-j", "-q", "explain", &store], &env));
    let next = e["streams"][0]["next_step"].as_str().unwrap();
    assert!(
        next.starts_with("before starting the server, move msgs/1.key out"),
        "{next}"
    );
    // every message record of the block, as lost (deleted seq 4 as deleted: by index.db's
    // delete map, and without index.db by its tombstone in the same block, which the server
    // never reads either)
    let dumped = |store: &str| -> Vec<(u64, String)> {
        let d = jetdir_env(
            &[
                "dump",
                "--json",
                "--include-deleted",
                "--payload",
                "none",
                store,
            ],
            &env,
        );
        String::from_utf8_lossy(&d.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m.get("seq").is_some())
            .map(|m| {
                let why = m["deleted"].as_str().unwrap_or("served").to_string();
                (m["seq"].as_u64().unwrap(), why)
            })
            .collect()
    };
    let want: Vec<(u64, String)> = (1..=10)
        .map(|q| (q, if q == 4 { "deleted" } else { "lost" }.to_string()))
        .collect();
    assert_eq!(dumped(&store), want);
    let noidx = tempfile::tempdir().unwrap();
    copy_dir(t.path(), noidx.path());
    std::fs::remove_file(
        noidx
            .path()
            .join("jetstream/$G/streams/SECRET/msgs/index.db"),
    )
    .unwrap();
    assert_eq!(dumped(&noidx.path().display().to_string()), want);
    // salvage: all 9 messages, out of the block the server cannot read
    let o = tempfile::tempdir().unwrap();
    let dest = o.path().join("SECRET");
    let r = jetdir_env(
        &[
            "-j",
            "-q",
            "salvage",
            &sd.display().to_string(),
            "-o",
            &dest.display().to_string(),
        ],
        &env,
    );
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let got = json(&jetdir_env(
        &["-j", "-q", "verify", &dest.display().to_string()],
        &[],
    ));
    assert_eq!(got["exit_code"], 0, "{got:#}");
    assert_eq!(got["streams"][0]["messages"], 9);
    // the advice taken: with no key file the server converts the block
    std::fs::rename(sd.join("msgs/1.key"), o.path().join("1.key")).unwrap();
    let out = jetdir_env(&["-j", "-q", "verify", &store], &env);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert!(kinds(&v).contains(&("block_plaintext_converted".into(), "msgs/1.blk".into())));
    assert_matches_server(&v, "v2.15.1-enc-chacha");
}

/// Zeros at the end of an encrypted block (a power loss) decrypt to the keystream, so the
/// block's plain view shows garbage, not zeros: jetdir looks at the bytes as stored and
/// reports `zeroed_tail` (data the disk never got: an error), not a torn write.
#[test]
fn zeros_in_an_encrypted_block_are_a_power_loss_not_a_torn_write() {
    // verify of the fixture with 4096 bytes of `fill` stored after its block's end
    let with_tail = |fill: u8| {
        let t = store_copy("v2.15.1-enc-chacha");
        let blk = t.path().join("jetstream/$G/streams/SECRET/msgs/1.blk");
        let mut b = std::fs::read(&blk).unwrap();
        b.extend(std::iter::repeat_n(fill, 4096));
        std::fs::write(&blk, &b).unwrap();
        let store = t.path().display().to_string();
        jetdir_env(&["-j", "-q", "verify", &store], &[("JETDIR_KEY", KEY)])
    };
    let out = with_tail(0);
    let v = json(&out);
    let kinds: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["stream"] == "SECRET")
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"zeroed_tail"), "{v:#}");
    assert!(!kinds.contains(&"torn_tail"), "{v:#}");
    assert_eq!(out.status.code(), Some(1));
    // the same 4096 bytes, not zeros, stored: a torn write (the key's garbage after it)
    let v = json(&with_tail(0x5a));
    assert!(
        !v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "zeroed_tail"),
        "{v:#}"
    );
}
