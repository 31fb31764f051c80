//! A tarball of an encrypted stream dir (what an operator makes with `tar czf ORDERS.tgz
//! ORDERS/` on an encrypted store), against the real servers (issue #13): stores written with
//! `jetstream { key, cipher }` by 2.15.1 (chacha, aes, S2 under encryption) and 2.9.10, each
//! stream dir tarred by GNU tar (`.tgz`) and by Python's tarfile (`.tar`, and a `.tgz` with
//! the blocks first and the key files last). With the key, verify gives the server's numbers
//! and every asset opens with the key, dump gives the messages it served and explain says it
//! loads; without the key exit 2 and inspect lists what is there; a
//! wrong key exit 2 (`encrypted_wrong_key`); a damaged block key file is `corrupt`. `extract`
//! with the key writes plaintext, which the server configured with the key loads with every
//! message and encrypts at start (2.9.10 too), as a server without a key loads it in
//! plaintext; without the key it refuses (exit 2), nothing written. The server side is `tests/support/enc_check.py`.
mod common;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::enc::{enc_check, jetdir, json, read_json, KEY};

fn kinds(rep: &Value) -> Vec<String> {
    rep["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The stream's numbers equal the server's STREAM.INFO / CONSUMER.INFO.
fn assert_same(label: &str, s: &Value, server: &Value) {
    let st = &server["info"]["state"];
    for (ours, theirs) in [
        ("messages", "messages"),
        ("bytes", "bytes"),
        ("first_seq", "first_seq"),
        ("last_seq", "last_seq"),
        ("deleted", "num_deleted"),
        ("subjects", "num_subjects"),
    ] {
        assert_eq!(s[ours], st[theirs], "{label} {ours}");
    }
    let cons = server["consumers"].as_object().unwrap();
    assert_eq!(
        s["consumers"].as_array().unwrap().len(),
        cons.len(),
        "{label}"
    );
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

/// The stream dir `dir` tarred three ways: GNU tar czf (directory order), Python tarfile
/// `.tar` (sorted), Python `.tgz` with the blocks first and the key files last.
fn tarballs(dir: &Path, out: &Path) -> Vec<PathBuf> {
    let name = dir.file_name().unwrap().to_str().unwrap();
    let gnu = out.join(format!("{name}.tgz"));
    let o = Command::new("tar")
        .arg("czf")
        .arg(&gnu)
        .arg("-C")
        .arg(dir.parent().unwrap())
        .arg(name)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let py_tar = out.join(format!("{name}-py.tar"));
    let py_tgz = out.join(format!("{name}-keys-last.tar.gz"));
    let script = r#"
import os, sys, tarfile
d, name, t, g = sys.argv[1:5]
files = sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(os.path.join(d, name)) for f in fs)
with tarfile.open(t, "w") as tf:
    for f in files:
        tf.add(os.path.join(d, f), arcname=f)
last = lambda f: (f.endswith(".key"), not f.endswith(".blk"), f)
with tarfile.open(g, "w:gz") as tf:
    for f in sorted(files, key=last):
        tf.add(os.path.join(d, f), arcname=f)
"#;
    let o = Command::new(common::python())
        .arg("-c")
        .arg(script)
        .arg(dir.parent().unwrap())
        .arg(name)
        .arg(&py_tar)
        .arg(&py_tgz)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    vec![gnu, py_tar, py_tgz]
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15, 2.9 and nats-py: bash scripts/install-deps.sh"
)]
fn tarballs_of_encrypted_stream_dirs_verify_and_extract_through_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let kf = tmp.path().join("key");
    std::fs::write(&kf, format!("{KEY}\n")).unwrap();
    let kf = kf.display().to_string();
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "not-the-key").unwrap();
    let wrong = wrong.display().to_string();
    let s215 = common::server_215().display().to_string();
    let s29 = common::server_29().display().to_string();
    for (server, release, cipher, streams) in [
        (&s215, "2.15.1", "chacha", "SECRET,ENCCMP"),
        (&s215, "2.15.1", "aes", "SECRET,ENCCMP"),
        (&s29, "2.9.10", "chacha", "SECRET"),
    ] {
        let label = format!("{release} {cipher}");
        let src = tmp.path().join(format!("{release}-{cipher}"));
        enc_check(&[
            "build",
            "--server",
            server,
            "--cipher",
            cipher,
            "--streams",
            streams,
            "--out",
            &src.display().to_string(),
        ]);
        let facts = read_json(&src.join("facts.json"));
        let balls = src.join("balls");
        std::fs::create_dir_all(&balls).unwrap();
        let fresh = src.join("fresh");
        for name in streams.split(',') {
            let dir = src.join("store/jetstream/$G/streams").join(name);
            let want = &facts["streams"][name];
            for (i, ball) in tarballs(&dir, &balls).iter().enumerate() {
                let b = ball.display().to_string();
                let what = format!("{label} {}", ball.file_name().unwrap().to_string_lossy());
                // with the key: the server's numbers, every asset opened with the key
                let r = jetdir(&["verify", "-q", "--json", "--key-file", &kf, &b]);
                let rep = json(&r);
                assert_eq!(r.status.code(), Some(0), "{what}: {}", rep["problems"]);
                assert_eq!(kinds(&rep), Vec::<String>::new(), "{what}");
                let s = &rep["streams"][0];
                assert_eq!(s["name"], name, "{what}");
                assert_same(&what, s, want);
                assert_eq!(s["encryption"]["cipher"], cipher, "{what}");
                let assets = s["encryption"]["assets"].as_array().unwrap();
                assert!(
                    assets.iter().any(|a| a["file"] == "msgs/1.blk"),
                    "{what}: {assets:?}"
                );
                assert!(
                    assets.iter().all(|a| a["outcome"] == "key"),
                    "{what}: {assets:?}"
                );
                // dump with the key: the messages the server served
                let r = jetdir(&["dump", "-q", "--json", "--key-file", &kf, &b]);
                assert_eq!(r.status.code(), Some(0), "{what}");
                let got: Vec<(u64, String, Option<String>)> = String::from_utf8_lossy(&r.stdout)
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .filter(|v| v.get("seq").is_some() && v.get("subject").is_some())
                    .map(|v| {
                        let text = (v["payload_encoding"] == "text")
                            .then(|| v["payload"].as_str().unwrap().to_string());
                        (
                            v["seq"].as_u64().unwrap(),
                            v["subject"].as_str().unwrap().to_string(),
                            text,
                        )
                    })
                    .collect();
                let served: Vec<(u64, String, Option<String>)> = want["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        (
                            m["seq"].as_u64().unwrap(),
                            m["subject"].as_str().unwrap().to_string(),
                            m["data"].as_str().map(String::from),
                        )
                    })
                    .collect();
                assert_eq!(got.len(), served.len(), "{what}: dump");
                for (g, w) in got.iter().zip(&served) {
                    assert_eq!((g.0, &g.1), (w.0, &w.1), "{what}: dump");
                    if let (Some(a), Some(b)) = (&g.2, &w.2) {
                        assert_eq!(a, b, "{what}: dump seq {}", g.0);
                    }
                }
                // explain with the key: loads; without: exit 2
                let r = jetdir(&["explain", "-q", "--key-file", &kf, &b]);
                assert_eq!(r.status.code(), Some(0), "{what}");
                assert!(String::from_utf8_lossy(&r.stdout).contains(": loads"));
                assert_eq!(jetdir(&["explain", "-q", &b]).status.code(), Some(2));
                assert_eq!(jetdir(&["dump", "-q", &b]).status.code(), Some(2));
                // without the key: exit 2, what is there listed
                let r = jetdir(&["inspect", "-q", "--json", &b]);
                let rep = json(&r);
                assert_eq!(r.status.code(), Some(2), "{what}");
                assert_eq!(kinds(&rep), vec!["encrypted_key_needed"], "{what}");
                let s = &rep["streams"][0];
                assert_eq!(s["encrypted"], true, "{what}");
                assert_eq!(s["encryption"]["cipher"], cipher, "{what}");
                let assets = s["encryption"]["assets"].as_array().unwrap();
                assert!(assets
                    .iter()
                    .any(|a| a["file"] == "meta.key" && a["bytes"].as_u64() > Some(0)));
                assert!(assets.iter().all(|a| a["outcome"] == "key_needed"));
                let r = jetdir(&["inspect", "-q", &b]);
                let text = String::from_utf8_lossy(&r.stdout);
                assert!(text.starts_with("KEY NEEDED"), "{what}: {text}");
                assert!(text.contains("encrypted (key needed)"), "{what}: {text}");
                // the wrong key: exit 2
                let r = jetdir(&["verify", "-q", "--json", "--key-file", &wrong, &b]);
                let rep = json(&r);
                assert_eq!(r.status.code(), Some(2), "{what}");
                assert!(
                    kinds(&rep).contains(&"encrypted_wrong_key".to_string()),
                    "{what}: {:?}",
                    kinds(&rep)
                );
                // extract without the key: refused, nothing written
                let none = src.join("none");
                let r = jetdir(&[
                    "extract",
                    "-q",
                    "--json",
                    "--create",
                    "--store-dir",
                    &none.display().to_string(),
                    &b,
                ]);
                assert_eq!(r.status.code(), Some(2), "{what}");
                let rep = json(&r);
                assert!(
                    rep["refused"].as_str().unwrap().contains("key needed"),
                    "{what}: {}",
                    rep["refused"]
                );
                assert!(!none.join("jetstream/$G/streams").join(name).exists());
                // extract with the key (the GNU tar one): plaintext
                if i == 0 {
                    let r = jetdir(&[
                        "extract",
                        "-q",
                        "--json",
                        "--create",
                        "--key-file",
                        &kf,
                        "--store-dir",
                        &fresh.display().to_string(),
                        &b,
                    ]);
                    let rep = json(&r);
                    assert_eq!(r.status.code(), Some(0), "{what}: {rep}");
                    assert_eq!(rep["messages"], want["info"]["state"]["messages"]);
                    let sd = fresh.join("jetstream/$G/streams").join(name);
                    let files: Vec<String> = walkdir(&sd);
                    assert!(!files.iter().any(|f| f.ends_with(".key")), "{files:?}");
                    let m: Value =
                        serde_json::from_slice(&std::fs::read(sd.join("meta.inf")).unwrap())
                            .expect("plaintext meta.inf");
                    assert_eq!(m["name"], name);
                }
            }
            // a damaged block key file: that file is corrupt, the rest opens
            let bad = src.join("bad").join(name);
            common::copy_dir(&dir, &bad);
            let kp = bad.join("msgs/1.key");
            let mut k = std::fs::read(&kp).unwrap();
            let at = k.len() - 3;
            k[at] ^= 0x40;
            std::fs::write(&kp, k).unwrap();
            let bb = tarballs(&bad, &src.join("bad"));
            let r = jetdir(&[
                "verify",
                "-q",
                "--json",
                "--key-file",
                &kf,
                &bb[0].display().to_string(),
            ]);
            let rep = json(&r);
            assert_eq!(r.status.code(), Some(1), "{label}: {}", rep["problems"]);
            assert!(kinds(&rep).contains(&"encrypted_corrupt".to_string()));
            let assets = rep["streams"][0]["encryption"]["assets"]
                .as_array()
                .unwrap()
                .clone();
            let outcome = |f: &str| {
                assets
                    .iter()
                    .find(|a| a["file"] == f)
                    .map(|a| a["outcome"].as_str().unwrap().to_string())
            };
            assert_eq!(outcome("msgs/1.key").as_deref(), Some("corrupt"), "{label}");
            assert_eq!(outcome("meta.key").as_deref(), Some("key"), "{label}");
        }
        // a server without a key loads the plaintext extract wrote, with every message
        let plain_copy = src.join("fresh-plain");
        common::copy_dir(&fresh, &plain_copy);
        let res = src.join("loaded-plain.json");
        enc_check(&[
            "load",
            "--server",
            server,
            "--cipher",
            cipher,
            "--key",
            "",
            "--store",
            &plain_copy.display().to_string(),
            "--out",
            &res.display().to_string(),
        ]);
        let loaded = read_json(&res);
        for name in streams.split(',') {
            let got = &loaded["streams"][name];
            assert_eq!(
                got["messages"], facts["streams"][name]["messages"],
                "{label} {name}: no key"
            );
        }
        // the server configured with the key loads what extract wrote, with every message,
        // and encrypts it at start
        let res = src.join("loaded.json");
        enc_check(&[
            "load",
            "--server",
            server,
            "--cipher",
            cipher,
            "--store",
            &fresh.display().to_string(),
            "--out",
            &res.display().to_string(),
        ]);
        let loaded = read_json(&res);
        let after: Vec<&str> = loaded["files_after_stop"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for name in streams.split(',') {
            let want = &facts["streams"][name];
            let got = &loaded["streams"][name];
            assert_eq!(got["messages"], want["messages"], "{label} {name}");
            assert_eq!(
                got["expected"]["consumers"], want["expected"]["consumers"],
                "{label} {name}"
            );
            let mk = format!("jetstream/$G/streams/{name}/meta.key");
            assert!(after.contains(&mk.as_str()), "{label}: {after:?}");
        }
        // and jetdir reads the store it encrypted, with the server's numbers
        let r = jetdir(&[
            "verify",
            "-q",
            "--json",
            "--key-file",
            &kf,
            &fresh.display().to_string(),
        ]);
        let rep = json(&r);
        assert_eq!(r.status.code(), Some(0), "{label}: {}", rep["problems"]);
        for s in rep["streams"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            assert_same(&label, s, &loaded["streams"][name]);
        }
    }
}

fn walkdir(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// Run jetdir under GNU time: (exit code, stdout, peak RSS KiB).
fn timed(args: &[&str]) -> (Option<i32>, String, u64) {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        common::missing("GNU time at /usr/bin/time");
    }
    let tf = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(tf.path())
        .arg(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .env_remove("JETDIR_KEY")
        .env_remove("JETDIR_PREV_KEY")
        .output()
        .unwrap();
    let kib = std::fs::read_to_string(tf.path())
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .expect("GNU time wrote the peak RSS");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        kib,
    )
}

/// A tarball of an encrypted stream larger than the memory bound (69 MiB of incompressible
/// payloads written by 2.15.1 with a key) is verified and extracted (`.tar`), verified and
/// inspected without the key (`.tgz`) in less than 64 MiB: it is never held, nor extracted to
/// disk to be read. (Not dump: on a tarball whose blocks are out of order it reads the archive
/// once per block. A few seconds in the `ci` test profile, a minute or two in `dev`.)
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py: bash scripts/install-deps.sh"
)]
fn a_big_encrypted_tarball_is_read_in_bounded_memory() {
    const MSGS: usize = 1100; // x 64 KiB = 68.75 MiB
    let tmp = tempfile::tempdir().unwrap();
    let kf = tmp.path().join("key");
    std::fs::write(&kf, KEY).unwrap();
    let kf = kf.display().to_string();
    let store = tmp.path().join("store");
    let script = r#"
import asyncio, os, sys
sys.path.insert(0, sys.argv[1])
import natsbox as nb
async def main(url, n):
    nc = await nb.connect(url)
    await nb.wait_jetstream(nc)
    await nb.create_stream(nc, {"name": "BIGENC", "subjects": ["big.>"]})
    for i in range(n):
        await nb.publish(nc, f"big.{i % 7}", os.urandom(64 * 1024))
    await nc.close()
srv = nb.NatsServer(sys.argv[2], sys.argv[3], jetstream_extra={"key": sys.argv[4], "cipher": "chacha"})
srv.start()
try:
    asyncio.run(main(srv.url, int(sys.argv[5])))
finally:
    srv.stop()
"#;
    let o = Command::new(common::python_with_nats())
        .arg("-c")
        .arg(script)
        .arg(common::repo().join("tests/support"))
        .arg(common::server_215())
        .arg(&store)
        .arg(KEY)
        .arg(MSGS.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = store.join("jetstream/$G/streams/BIGENC");
    let mut balls = Vec::new();
    for (flag, name) in [("cf", "BIGENC.tar"), ("czf", "BIGENC.tgz")] {
        let b = tmp.path().join(name);
        let o = Command::new("tar")
            .arg(flag)
            .arg(&b)
            .arg("-C")
            .arg(dir.parent().unwrap())
            .arg("BIGENC")
            .output()
            .unwrap();
        assert!(o.status.success());
        assert!(std::fs::metadata(&b).unwrap().len() > 68 << 20);
        balls.push(b.display().to_string());
    }
    const LIMIT: u64 = 64 << 10; // KiB
    for b in &balls {
        let (code, out, kib) = timed(&["verify", "-q", "--json", "--key-file", &kf, b]);
        assert_eq!(code, Some(0), "{b}: {out}");
        let rep: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(rep["streams"][0]["messages"], MSGS as u64, "{b}");
        assert!(kib < LIMIT, "{b}: verify peak RSS {kib} KiB");
        if b.ends_with(".tgz") {
            let (code, _, kib) = timed(&["inspect", "-q", b]);
            assert_eq!(code, Some(2), "{b}");
            assert!(kib < LIMIT, "{b}: inspect peak RSS {kib} KiB");
            continue;
        }
        let out_store = tmp.path().join(format!("x-{}", b.len()));
        let o = out_store.display().to_string();
        let (code, out, kib) = timed(&[
            "extract",
            "-q",
            "--create",
            "--key-file",
            &kf,
            "--store-dir",
            &o,
            b,
        ]);
        assert_eq!(code, Some(0), "{b}: {out}");
        assert!(kib < LIMIT, "{b}: extract peak RSS {kib} KiB");
        std::fs::remove_dir_all(&out_store).unwrap();
        eprintln!("{b}: verify, extract under 64 MiB");
    }
}
