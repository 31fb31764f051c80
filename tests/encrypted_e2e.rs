//! Encrypted stores against the real servers (issue #13): stores written with
//! `jetstream { key, cipher }` by 2.9.10, 2.10.26, 2.11.11, 2.12.8, 2.14.6 and 2.15.1 (both ciphers, S2
//! compression under encryption) verify through the key with the server's numbers; `pack`
//! with the key writes a plaintext backup, `extract` writes it in plaintext into a store whose
//! server has a key, and that server loads it with the same messages and encrypts it at start.
//! The server side is `tests/support/enc_check.py`.
mod common;
use serde_json::Value;

use common::enc::{enc_check, enc_load, jetdir, json, read_json, KEY};

/// jetdir's report of every stream equals the server's STREAM.INFO / CONSUMER.INFO.
fn assert_same(label: &str, rep: &Value, server: &Value) {
    let server = server.as_object().unwrap();
    let streams = rep["streams"].as_array().unwrap();
    assert_eq!(streams.len(), server.len(), "{label}: streams");
    for s in streams {
        let name = s["name"].as_str().unwrap();
        let st = &server[name]["info"]["state"];
        for (ours, theirs) in [
            ("messages", "messages"),
            ("bytes", "bytes"),
            ("first_seq", "first_seq"),
            ("last_seq", "last_seq"),
            ("deleted", "num_deleted"),
            ("subjects", "num_subjects"),
        ] {
            assert_eq!(s[ours], st[theirs], "{label} {name} {ours}");
        }
        let cons = server[name]["consumers"].as_object().unwrap();
        assert_eq!(s["consumers"].as_array().unwrap().len(), cons.len());
        for c in s["consumers"].as_array().unwrap() {
            let ci = &cons[c["name"].as_str().unwrap()];
            assert_eq!(
                c["delivered_stream_seq"], ci["delivered"]["stream_seq"],
                "{label}"
            );
            assert_eq!(
                c["ack_floor_stream_seq"], ci["ack_floor"]["stream_seq"],
                "{label}"
            );
            assert_eq!(c["num_ack_pending"], ci["num_ack_pending"], "{label}");
        }
    }
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server releases and nats-py: bash scripts/install-deps.sh"
)]
fn encrypted_stores_of_every_release_verify_through_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let kf = tmp.path().join("key");
    std::fs::write(&kf, KEY).unwrap();
    let kf = kf.display().to_string();
    for (release, cipher, streams) in [
        ("2.9.10", "chacha", "SECRET"),
        ("2.10.26", "aes", "SECRET,ENCCMP"),
        ("2.11.11", "chacha", "SECRET,ENCCMP"),
        ("2.12.8", "chacha", "SECRET,ENCCMP"),
        ("2.14.6", "aes", "SECRET,ENCCMP"),
        ("2.15.1", "aes", "SECRET,ENCCMP"),
    ] {
        let out = tmp.path().join(release);
        let o = out.display().to_string();
        enc_check(&[
            "build",
            "--server",
            release,
            "--cipher",
            cipher,
            "--streams",
            streams,
            "--out",
            &o,
        ]);
        let facts = read_json(&out.join("facts.json"));
        let store = out.join("store").display().to_string();
        let r = jetdir(&["verify", "-q", "--json", "--key-file", &kf, &store]);
        let rep = json(&r);
        assert_eq!(r.status.code(), Some(0), "{release}: {}", rep["problems"]);
        assert_eq!(rep["problems"].as_array().unwrap().len(), 0, "{release}");
        assert_same(release, &rep, &facts["streams"]);
        for s in rep["streams"].as_array().unwrap() {
            assert_eq!(s["encryption"]["cipher"], cipher, "{release}");
            assert!(s["encryption"]["assets"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["outcome"] == "key"));
        }
        // without the key: exit 2, never 0 or 1
        let r = jetdir(&["verify", "-q", "--json", &store]);
        assert_eq!(r.status.code(), Some(2), "{release}");
    }
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py: bash scripts/install-deps.sh"
)]
fn pack_writes_plaintext_and_a_keyed_server_encrypts_what_extract_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let kf = tmp.path().join("key");
    std::fs::write(&kf, format!("{KEY}\n")).unwrap();
    let kf = kf.display().to_string();
    let server = common::server_215().display().to_string();
    let src = tmp.path().join("src");
    enc_check(&[
        "build",
        "--server",
        &server,
        "--cipher",
        "chacha",
        "--streams",
        "SECRET,ENCCMP",
        "--out",
        &src.display().to_string(),
    ]);
    let facts = read_json(&src.join("facts.json"));
    let store = src.join("store").display().to_string();
    let fresh = tmp.path().join("fresh");
    for name in ["SECRET", "ENCCMP"] {
        let b = tmp.path().join(format!("backup-{name}"));
        let r = jetdir(&[
            "pack",
            "-q",
            "--json",
            "--key-file",
            &kf,
            "--stream",
            name,
            "-o",
            &b.display().to_string(),
            &store,
        ]);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stdout)
        );
        // plaintext: no key files in the tar, meta.inf is JSON
        let r = jetdir(&["inspect", "-q", "--json", &b.display().to_string()]);
        let rep = json(&r);
        assert_eq!(r.status.code(), Some(0));
        let s = &rep["streams"][0];
        assert_eq!(s["encrypted"], false);
        assert_eq!(s["config"]["name"], name);
        // extract: plaintext files into a store dir
        let r = jetdir(&[
            "extract",
            "-q",
            "--json",
            "--create",
            "--store-dir",
            &fresh.display().to_string(),
            &b.display().to_string(),
        ]);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stdout)
        );
        let sd = fresh.join("jetstream/$G/streams").join(name);
        assert!(!sd.join("meta.key").exists());
        let m: Value = serde_json::from_slice(&std::fs::read(sd.join("meta.inf")).unwrap())
            .expect("extract writes a plaintext meta.inf");
        assert_eq!(m["name"], name);
    }
    // a server with the key loads them, with the same messages, and encrypts them at start
    let loaded = enc_load(&server, &fresh, &tmp.path().join("loaded.json"), &[]);
    for name in ["SECRET", "ENCCMP"] {
        let want = &facts["streams"][name];
        let got = &loaded["streams"][name];
        assert_eq!(
            got["expected"]["messages"], want["expected"]["messages"],
            "{name}"
        );
        assert_eq!(got["messages"], want["messages"], "{name}: every message");
        assert_eq!(
            got["expected"]["consumers"], want["expected"]["consumers"],
            "{name}"
        );
    }
    let files: Vec<&str> = loaded["files_after_stop"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in [
        "jetstream/$G/streams/SECRET/meta.key",
        "jetstream/$G/streams/SECRET/msgs/1.key",
        "jetstream/$G/streams/SECRET/obs/D1/meta.key",
        "jetstream/$G/streams/ENCCMP/msgs/1.key",
    ] {
        assert!(
            files.contains(&f),
            "the server encrypted at start: {f} in {files:?}"
        );
    }
    let inf = std::fs::read(fresh.join("jetstream/$G/streams/SECRET/meta.inf")).unwrap();
    assert!(
        serde_json::from_slice::<Value>(&inf).is_err(),
        "meta.inf is encrypted now"
    );
    // and jetdir reads the re-encrypted store with the key, with the server's numbers
    let r = jetdir(&[
        "verify",
        "-q",
        "--json",
        "--key-file",
        &kf,
        &fresh.display().to_string(),
    ]);
    let rep = json(&r);
    assert_eq!(r.status.code(), Some(0), "{}", rep["problems"]);
    assert_same("re-encrypted", &rep, &loaded["streams"]);
    let r = jetdir(&["verify", "-q", "--json", &fresh.display().to_string()]);
    assert_eq!(r.status.code(), Some(2));
}

/// Key rotation: a store under the old key reads with `--prev-key-file`; a real 2.15.1
/// started with `key: NEW, prev_key: OLD` loads every message and rewrites the streams under
/// the new key, but does not load the consumer (it never converts consumers to a new key), as
/// jetdir predicted (`encrypted_consumer_previous_key`).
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py: bash scripts/install-deps.sh"
)]
fn a_rotated_key_reads_with_the_previous_key_and_the_unloaded_consumer_is_predicted() {
    const NEW: &str = "jetdir-rotated-key-fedcba9876543210";
    let tmp = tempfile::tempdir().unwrap();
    let (old_f, new_f) = (tmp.path().join("old"), tmp.path().join("new"));
    std::fs::write(&old_f, KEY).unwrap();
    std::fs::write(&new_f, NEW).unwrap();
    let (old_f, new_f) = (old_f.display().to_string(), new_f.display().to_string());
    let server = common::server_215().display().to_string();
    let src = tmp.path().join("src");
    enc_check(&[
        "build",
        "--server",
        &server,
        "--cipher",
        "chacha",
        "--streams",
        "SECRET,ENCCMP",
        "--out",
        &src.display().to_string(),
    ]);
    let facts = read_json(&src.join("facts.json"));
    let store = src.join("store").display().to_string();
    // the new key alone: nothing opens (exit 2)
    let r = jetdir(&["verify", "-q", "--json", "--key-file", &new_f, &store]);
    assert_eq!(r.status.code(), Some(2));
    // with the old key as the previous one: read, every asset "previous_key"; the stream is
    // converted by the server, the consumer is not (jetdir says so: an error)
    let r = jetdir(&[
        "verify",
        "-q",
        "--json",
        "--key-file",
        &new_f,
        "--prev-key-file",
        &old_f,
        &store,
    ]);
    let rep = json(&r);
    assert_eq!(r.status.code(), Some(1), "{}", rep["problems"]);
    assert_same("prev key", &rep, &facts["streams"]);
    let kinds: Vec<(&str, &str)> = rep["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["stream"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("encrypted_consumer_previous_key", "SECRET")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("encrypted_previous_key", "ENCCMP")),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().all(|(k, _)| k.ends_with("previous_key")),
        "{kinds:?}"
    );
    // the server with key NEW and prev_key OLD converts the streams at start, and does not
    // load the consumer (as predicted)
    let res = tmp.path().join("rotated.json");
    enc_check(&[
        "load",
        "--server",
        &server,
        "--cipher",
        "chacha",
        "--key",
        NEW,
        "--prev-key",
        KEY,
        "--store",
        &store,
        "--out",
        &res.display().to_string(),
    ]);
    let loaded = read_json(&res);
    for name in ["SECRET", "ENCCMP"] {
        assert_eq!(
            loaded["streams"][name]["messages"], facts["streams"][name]["messages"],
            "{name}: every message after the rotation"
        );
    }
    assert_eq!(
        loaded["streams"]["SECRET"]["consumers"],
        serde_json::json!({}),
        "2.15.1 does not load a consumer under the previous key"
    );
    assert!(loaded["log"].as_array().unwrap().iter().any(|l| l
        .as_str()
        .unwrap()
        .contains("error creating store for consumer")));
    // now the new key opens every file of the streams; the consumer still needs the old one
    let r = jetdir(&[
        "verify",
        "-q",
        "--json",
        "--key-file",
        &new_f,
        "--prev-key-file",
        &old_f,
        &store,
    ]);
    let rep = json(&r);
    let kinds: Vec<&str> = rep["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["encrypted_consumer_previous_key"],
        "{}",
        rep["problems"]
    );
    for s in rep["streams"].as_array().unwrap() {
        for a in s["encryption"]["assets"].as_array().unwrap() {
            let f = a["file"].as_str().unwrap();
            let want = if f.starts_with("obs/") {
                "previous_key"
            } else {
                "key"
            };
            assert_eq!(a["outcome"], want, "{f}");
        }
        let name = s["name"].as_str().unwrap();
        let st = &loaded["streams"][name]["info"]["state"];
        assert_eq!(s["messages"], st["messages"], "{name}");
        assert_eq!(s["last_seq"], st["last_seq"], "{name}");
    }
}

/// nats-server 2.10.0-2.11.5 write an encrypted stream's first block unencrypted when the
/// stream was empty at their start (`filestore::encrypted::PlainBlock`). A store 2.10.26
/// wrote so: jetdir names the block (`block_plaintext`) and, as 2.15.1 loads the store, gives
/// 2.15.1's numbers (the block's messages lost). With `msgs/1.key` moved aside (the finding's
/// advice) jetdir says the server converts the block (`block_plaintext_converted`), and 2.15.1
/// serves all 99 messages. `salvage` of the damaged copy writes all 99, and a server without
/// a key loads them.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.10.26 and 2.15 and nats-py: bash scripts/install-deps.sh"
)]
fn a_plaintext_block_is_lost_by_the_server_unless_its_key_file_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let kf = tmp.path().join("key");
    std::fs::write(&kf, KEY).unwrap();
    let kf = kf.display().to_string();
    let server = common::server_215().display().to_string();
    let built = tmp.path().join("built");
    enc_check(&[
        "plainblock",
        "--server",
        "2.10.26",
        "--cipher",
        "chacha",
        "--out",
        &built.display().to_string(),
    ]);
    let store = built.join("store");
    let stream_dir = store.join("jetstream/$G/streams/E");
    // what 2.15.1 makes of a copy, and what jetdir says it makes of it
    let load = |label: &str, copy: &std::path::Path| -> (Value, Value) {
        let c = copy.display().to_string();
        let rep = json(&jetdir(&[
            "verify",
            "-q",
            "--json",
            "--key-file",
            &kf,
            "--server-version",
            "2.15.1",
            &c,
        ]));
        let got = enc_load(
            &server,
            copy,
            &tmp.path().join(format!("{label}.json")),
            &[],
        );
        (rep, got["streams"]["E"].clone())
    };
    let same = |label: &str, rep: &Value, got: &Value| {
        let s = &rep["streams"][0];
        let st = &got["info"]["state"];
        for (ours, theirs) in [
            ("messages", "messages"),
            ("bytes", "bytes"),
            ("first_seq", "first_seq"),
            ("last_seq", "last_seq"),
            ("deleted", "num_deleted"),
        ] {
            assert_eq!(s[ours], st[theirs], "{label} {ours}");
        }
        let c = &s["consumers"][0];
        assert_eq!(
            c["num_pending"], got["consumers"]["C"]["num_pending"],
            "{label} C"
        );
    };
    let kinds = |rep: &Value| -> Vec<String> {
        rep["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["kind"].as_str().unwrap().to_string())
            .collect()
    };

    let as_is = tmp.path().join("as-is");
    common::copy_dir(&store, &as_is);
    let (rep, got) = load("as-is", &as_is);
    assert!(
        kinds(&rep).contains(&"block_plaintext".to_string()),
        "{rep:#}"
    );
    assert_eq!(rep["streams"][0]["load"]["verdict"], "loses_data");
    same("as is", &rep, &got);
    assert!(got["info"]["state"]["messages"].as_u64().unwrap() < 99);

    let nokey = tmp.path().join("nokey");
    common::copy_dir(&store, &nokey);
    std::fs::remove_file(nokey.join("jetstream/$G/streams/E/msgs/1.key")).unwrap();
    let (rep, got) = load("nokey", &nokey);
    assert!(
        kinds(&rep).contains(&"block_plaintext_converted".to_string()),
        "{rep:#}"
    );
    assert_eq!(rep["exit_code"], 0, "{rep:#}");
    same("key file moved aside", &rep, &got);
    assert_eq!(got["info"]["state"]["messages"], 99);
    assert_eq!(got["messages"].as_array().unwrap().len(), 99, "all served");

    // salvage, loaded by a server without a key
    let fresh = tmp.path().join("fresh");
    let out = fresh.join("jetstream/$G/streams/E");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let r = jetdir(&[
        "salvage",
        "-q",
        "--key-file",
        &kf,
        &stream_dir.display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let salvaged = enc_load(
        &server,
        &fresh,
        &tmp.path().join("salvaged.json"),
        &["--key", ""],
    );
    let got = &salvaged["streams"]["E"];
    assert_eq!(got["info"]["state"]["messages"], 99);
    assert_eq!(got["messages"].as_array().unwrap().len(), 99);
}
