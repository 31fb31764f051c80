//! Tarballs of encrypted stream dirs (issue #13) made from the fixtures written by real servers
//! (2.15.1 aes with S2 under encryption, 2.9.10 chacha): the key ring works as on the dir
//! (`--prev-key-file` after a rotation, `--cipher`), a tarball without a top dir is named by its
//! file, every outcome matches the dir's, and damaged tarballs never panic. No server needed.
mod common;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "jetdir-sample-key-0123456789abcdef";

fn stream_dir(sample: &str, stream: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(sample)
        .join("store/jetstream/$G/streams")
        .join(stream)
}

fn jetdir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .env_remove("JETDIR_KEY")
        .env_remove("JETDIR_PREV_KEY")
        .output()
        .expect("run jetdir")
}

fn json(o: &Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains(KEY), "the key is printed");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// `dir` as a gzip tarball at `out`, members under `top/` (none when empty).
fn tgz(dir: &Path, top: &str, out: &Path) {
    let f = std::fs::File::create(out).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut files: Vec<PathBuf> = walk(dir);
    files.sort();
    files.reverse(); // blocks and key files before meta.inf
    for p in files {
        let rel = p.strip_prefix(dir).unwrap();
        let name = if top.is_empty() {
            rel.to_path_buf()
        } else {
            Path::new(top).join(rel)
        };
        b.append_path_with_name(&p, name).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

fn outcomes(rep: &Value) -> Vec<(String, String)> {
    rep["streams"][0]["encryption"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["file"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn kinds(rep: &Value) -> Vec<String> {
    let mut k: Vec<String> = rep["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

/// The tarball reads as the dir does, whatever the key ring: the same numbers, outcomes and
/// kinds of finding, and exit code.
#[test]
fn a_tarball_reads_as_its_stream_dir_with_every_key_ring() {
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("key");
    std::fs::write(&key, KEY).unwrap();
    let wrong = t.path().join("wrong");
    std::fs::write(&wrong, "some-other-key").unwrap();
    let (key, wrong) = (key.display().to_string(), wrong.display().to_string());
    for (sample, stream, cipher) in [
        ("v2.15.1-enc-aes", "ENCCMP", "aes"),
        ("v2.15.1-enc-aes", "SECRET", "aes"),
        ("v2.9.10-enc-chacha", "SECRET", "chacha"),
    ] {
        let dir = stream_dir(sample, stream);
        let other = if cipher == "aes" { "chacha" } else { "aes" };
        let rings: Vec<Vec<&str>> = vec![
            vec!["--key-file", &key],
            vec!["--key-file", &wrong, "--prev-key-file", &key],
            vec!["--key-file", &key, "--cipher", other],
            vec!["--key-file", &wrong],
            vec![],
        ];
        for (top, ball) in [
            (stream, format!("{stream}.tgz")),
            ("", format!("{stream}.tar.gz")),
        ] {
            let b = t.path().join(format!("{sample}-{ball}"));
            // a file name without a top dir must still be the stream's dir name
            let b = if top.is_empty() {
                t.path().join(sample).join(&ball)
            } else {
                b
            };
            std::fs::create_dir_all(b.parent().unwrap()).unwrap();
            tgz(&dir, top, &b);
            for ring in &rings {
                let what = format!("{sample} {ball} {ring:?}");
                let mut a = vec!["verify", "-q", "--json", "--at", "2026-12-01T00:00:00Z"];
                a.extend(ring.iter().copied());
                let mut on_dir = a.clone();
                let d = dir.display().to_string();
                on_dir.push(&d);
                let bs = b.display().to_string();
                a.push(&bs);
                let (rd, rb) = (jetdir(&on_dir), jetdir(&a));
                let (jd, jb) = (json(&rd), json(&rb));
                assert_eq!(
                    rb.status.code(),
                    rd.status.code(),
                    "{what}: {}",
                    jb["problems"]
                );
                assert_eq!(kinds(&jb), kinds(&jd), "{what}");
                assert_eq!(outcomes(&jb), outcomes(&jd), "{what}");
                let (sd, sb) = (&jd["streams"][0], &jb["streams"][0]);
                for f in [
                    "messages",
                    "bytes",
                    "first_seq",
                    "last_seq",
                    "deleted",
                    "subjects",
                ] {
                    assert_eq!(sb[f], sd[f], "{what}: {f}");
                }
                assert_eq!(sb["encryption"]["cipher"], sd["encryption"]["cipher"]);
                assert_eq!(sb["encryption"]["key"], sd["encryption"]["key"], "{what}");
            }
        }
    }
}

/// Truncated, garbled and re-ordered tarballs of an encrypted dir: findings, never a panic,
/// and with the key never a clean exit for a damaged one.
#[test]
fn damaged_encrypted_tarballs_never_panic() {
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("key");
    std::fs::write(&key, KEY).unwrap();
    let key = key.display().to_string();
    let dir = stream_dir("v2.15.1-enc-aes", "ENCCMP");
    let tar_path = t.path().join("ENCCMP.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        b.append_dir_all("ENCCMP", &dir).unwrap();
        b.finish().unwrap();
    }
    let orig = std::fs::read(&tar_path).unwrap();
    let n = orig.len();
    let mut variants: Vec<Vec<u8>> = [512, 1024, n / 3, n / 2, n - 1536]
        .iter()
        .map(|&k| orig[..k].to_vec())
        .collect();
    for at in (600..n).step_by(n / 23) {
        let mut v = orig.clone();
        v[at] ^= 0x5a;
        variants.push(v);
    }
    for (i, v) in variants.iter().enumerate() {
        let p = t.path().join("ENCCMP.tar");
        std::fs::write(&p, v).unwrap();
        let ps = p.display().to_string();
        for args in [
            vec!["verify", "-q", "--json", "--key-file", &key, &ps],
            vec!["inspect", "-q", "--json", &ps],
            vec!["dump", "-q", "--key-file", &key, &ps],
            vec!["explain", "-q", "--key-file", &key, &ps],
        ] {
            let r = jetdir(&args);
            let code = r.status.code();
            assert!(
                matches!(code, Some(0..=2)),
                "variant {i} {args:?}: {code:?} {}",
                String::from_utf8_lossy(&r.stderr)
            );
            assert!(
                !String::from_utf8_lossy(&r.stderr).contains("panicked"),
                "variant {i} {args:?}"
            );
        }
    }
    let _ = common::repo();
}

/// A tarball of an encrypted stream dir whose key files or consumer state do not open reads as
/// the dir: the same verdict, numbers and consumers (`loads`), release by release (what the
/// releases do is `tests/encrypted.rs`'s `undecryptable_files_as_each_release_loads_them`).
#[test]
fn undecryptable_files_in_a_tarball_read_as_in_the_dir() {
    let t = tempfile::tempdir().unwrap();
    let kf = t.path().join("key");
    std::fs::write(&kf, KEY).unwrap();
    let kf = kf.display().to_string();
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 4] = [
        ("meta.key", |d| {
            let p = d.join("meta.key");
            let mut b = std::fs::read(&p).unwrap();
            b[20] ^= 1;
            std::fs::write(p, b).unwrap();
        }),
        ("no 1.key", |d| {
            std::fs::remove_file(d.join("msgs/1.key")).unwrap()
        }),
        ("no 1.key, no index.db", |d| {
            std::fs::remove_file(d.join("msgs/1.key")).unwrap();
            std::fs::remove_file(d.join("msgs/index.db")).unwrap();
        }),
        ("o.dat", |d| {
            let p = d.join("obs/D1/o.dat");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            b[n - 1] ^= 1;
            std::fs::write(p, b).unwrap();
        }),
    ];
    for (what, damage) in cases {
        let w = tempfile::tempdir().unwrap();
        let dir = w.path().join("SECRET");
        common::copy_dir(&stream_dir("v2.15.1-enc-chacha", "SECRET"), &dir);
        damage(&dir);
        let tar = w.path().join("SECRET.tgz");
        tgz(&dir, "SECRET", &tar);
        for release in ["2.9.10", "2.11.2", "2.15.1"] {
            let run = |p: &Path| {
                let o = jetdir(&[
                    "verify",
                    "--json",
                    "--no-progress",
                    "--key-file",
                    &kf,
                    "--server-version",
                    release,
                    &p.display().to_string(),
                ]);
                let v = json(&o);
                let s = v["streams"][0].clone();
                (
                    o.status.code(),
                    s["load"]["verdict"].clone(),
                    s["messages"].clone(),
                    s["consumers"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|c| (c["loads"].clone(), c["delivered_stream_seq"].clone()))
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                )
            };
            let (d, a) = (run(&dir), run(&tar));
            assert_eq!(d, a, "{what}, as {release}: the dir, then the tarball");
            assert_eq!(d.0, Some(1), "{what}, as {release}");
        }
    }
}
