//! The exit-code contract, for every command (README "Exit codes"):
//! 0 clean; 1 the input is damaged or inconsistent (also in extract, also with --dry-run and
//! --allow-damaged, also in pack --allow-damaged); 2 could not run (usage, unreadable path,
//! not a store or backup, refused because of the target). A closed stdout ends quietly.
mod common;

use common::copy_dir;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Exit code and stdout of `jetdir ARGS`; panics on a crash (no exit code) or exit 101.
fn run(args: &[String]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .expect("run jetdir");
    let code = out.status.code().expect("killed by a signal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        code != 101 && !stderr.contains("panicked"),
        "{args:?}: panic\n{stderr}"
    );
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `jetdir --json -q ARGS` → (exit code, JSON document: always exactly one).
fn run_json(args: &[String]) -> (i32, Value) {
    let mut all: Vec<String> = vec!["--json".into(), "-q".into()];
    all.extend_from_slice(args);
    let (code, stdout) = run(&all);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{all:?}: not one JSON document ({e}): {stdout}"));
    (code, v)
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { Vec::<String>::from([$(String::from($a)),*]) };
}

/// Inputs of every kind, in a temp dir.
struct Inputs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    store: PathBuf,
    damaged_store: PathBuf,
    backup: PathBuf,
    tgz: PathBuf,
    bad_tgz: PathBuf,
    bad_s2: PathBuf,
    meta_symlink_tar: PathBuf,
    text_file: PathBuf,
}

fn flip(p: &Path, off: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, off).unwrap();
    b[0] ^= 0x55;
    f.write_all_at(&b, off).unwrap();
}

/// A tar whose `meta.inf` is a symlink (a hostile member) followed by a real block.
fn meta_symlink_tar(p: &Path) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_path("ORDERS/meta.inf").unwrap();
    h.set_link_name("/etc/passwd").unwrap();
    h.set_size(0);
    h.set_mode(0o777);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let blk = std::fs::read(fixture(
        "v2.15.1-plain/store/jetstream/$G/streams/ORDERS/msgs/1.blk",
    ))
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("ORDERS/msgs/1.blk").unwrap();
    h.set_size(blk.len() as u64);
    h.set_mode(0o600);
    h.set_cksum();
    b.append(&h, blk.as_slice()).unwrap();
    std::fs::write(p, b.into_inner().unwrap()).unwrap();
}

fn inputs() -> Inputs {
    let tmp = tempfile::TempDir::new().unwrap();
    let root = tmp.path().to_path_buf();
    let store = root.join("store");
    copy_dir(&fixture("v2.15.1-plain/store"), &store);
    let damaged_store = root.join("damaged");
    copy_dir(&fixture("v2.15.1-plain/store"), &damaged_store);
    // a payload byte of MULTI's 2.blk (README's example): record_checksum
    flip(
        &damaged_store.join("jetstream/$G/streams/MULTI/msgs/2.blk"),
        4200,
    );
    let backup = fixture("backups/v2.15.1/ORDERS");
    let tgz = fixture("backups/ORDERS.tgz");
    let bad_tgz = root.join("bad.tgz");
    std::fs::copy(&tgz, &bad_tgz).unwrap();
    flip(&bad_tgz, 40); // inside the deflate stream: does not decompress
    let bad_s2 = root.join("bad-s2");
    copy_dir(&backup, &bad_s2);
    flip(&bad_s2.join("stream.tar.s2"), 600); // CRC-32C of the only chunk
    let meta = root.join("meta-symlink.tar");
    meta_symlink_tar(&meta);
    let text_file = root.join("notes.txt");
    std::fs::write(&text_file, "not a backup\n").unwrap();
    Inputs {
        _tmp: tmp,
        root,
        store,
        damaged_store,
        backup,
        tgz,
        bad_tgz,
        bad_s2,
        meta_symlink_tar: meta,
        text_file,
    }
}

#[test]
fn verify_and_inspect() {
    let i = inputs();
    for cmd in ["verify", "inspect"] {
        for (path, want) in [
            (&i.store, 0),
            (&i.backup, 0),
            (&i.tgz, 0),
            (&i.damaged_store, 1),
            (&i.bad_tgz, 1),
            (&i.bad_s2, 1),
            (&i.meta_symlink_tar, 1),
            (&i.text_file, 2),
            (&i.root.join("missing"), 2),
        ] {
            let (code, v) = run_json(&args![cmd, s(path)]);
            assert_eq!(code, want, "{cmd} {}: {v:#}", path.display());
            assert_eq!(v["ok"], want == 0, "{cmd} {}", path.display());
        }
        // usage
        assert_eq!(run(&args![cmd]).0, 2);
        assert_eq!(run(&args![cmd, s(&i.store), "--at", "yesterday"]).0, 2);
    }
}

#[test]
fn extract() {
    let i = inputs();
    let n = std::cell::Cell::new(0);
    let fresh = || {
        n.set(n.get() + 1);
        i.root.join(format!("t{}", n.get()))
    };
    for (archive, want) in [
        (&i.backup, 0),
        (&i.tgz, 0),
        (&i.bad_tgz, 1),
        (&i.bad_s2, 1),
        (&i.meta_symlink_tar, 1),
        (&i.text_file, 2),
        (&i.store, 2),
        (&i.root.join("missing"), 2),
    ] {
        for extra in [&[][..], &["--dry-run"][..], &["--allow-damaged"][..]] {
            let target = fresh();
            let mut a = args!["extract", s(archive), "--store-dir", s(&target), "--create"];
            a.extend(extra.iter().map(|x| x.to_string()));
            let (code, v) = run_json(&a);
            assert_eq!(code, want, "{a:?}: {v:#}");
            if want != 0 {
                let written = target.join("jetstream/$G/streams/ORDERS");
                assert!(!written.exists(), "{a:?} wrote {}", written.display());
            }
        }
    }
    // refused because of the target: the stream exists, a missing store without --create,
    // a store dir at the wrong level
    let t = fresh();
    let base = args!["extract", s(&i.backup), "--store-dir", s(&t)];
    assert_eq!(run_json(&base).0, 2, "missing store dir without --create");
    let mut a = base.clone();
    a.push("--create".into());
    assert_eq!(run_json(&a).0, 0);
    assert_eq!(run_json(&a).0, 2, "exists");
    assert_eq!(
        run_json(&args![
            "extract",
            s(&i.backup),
            "--store-dir",
            s(&t.join("jetstream"))
        ])
        .0,
        2
    );
    // usage
    assert_eq!(run(&args!["extract", s(&i.backup)]).0, 2);
}

#[test]
fn pack() {
    let i = inputs();
    for fmt in ["v1", "v2", "tgz"] {
        let out = i.root.join(format!("p-{fmt}"));
        let a = args![
            "pack",
            s(&i.store),
            "--stream",
            "ORDERS",
            "--format",
            fmt,
            "-o",
            s(&out)
        ];
        assert_eq!(run_json(&a).0, 0, "{a:?}");
        assert_eq!(run_json(&a).0, 2, "{a:?}: OUT exists");
        // damaged source: refused (1); --allow-damaged writes it, still 1 (as extract)
        let out = i.root.join(format!("d-{fmt}"));
        let a = args![
            "pack",
            s(&i.damaged_store),
            "--stream",
            "MULTI",
            "--format",
            fmt,
            "-o",
            s(&out)
        ];
        let (code, v) = run_json(&a);
        assert_eq!(code, 1, "{v:#}");
        assert!(!out.exists());
        let mut a = a.clone();
        a.push("--allow-damaged".into());
        let (code, v) = run_json(&a);
        assert_eq!(code, 1, "{v:#}");
        assert_eq!(v["ok"], false);
        assert!(out.exists());
    }
    let out = i.root.join("x");
    for bad in [
        args!["pack", s(&i.root.join("missing")), "-o", s(&out)],
        args!["pack", s(&i.store), "--stream", "NOPE", "-o", s(&out)],
        args!["pack", s(&i.backup), "-o", s(&out)],
        args![
            "pack",
            s(&i.store),
            "--stream",
            "ORDERS",
            "-o",
            s(&i.root.join("no/such/dir/out"))
        ],
    ] {
        let (code, v) = run_json(&bad);
        assert_eq!(code, 2, "{bad:?}: {v:#}");
    }
    assert!(!out.exists());
    // usage
    assert_eq!(run(&args!["pack", s(&i.store)]).0, 2);
    assert_eq!(
        run(&args![
            "pack",
            s(&i.store),
            "-o",
            s(&out),
            "--format",
            "zip"
        ])
        .0,
        2
    );
}

#[test]
fn other_invocations() {
    assert_eq!(run(&args!["--help"]).0, 0);
    assert_eq!(run(&args!["--version"]).0, 0);
    assert_eq!(run(&args![]).0, 2);
    assert_eq!(run(&args!["frobnicate"]).0, 2);
    for cmd in [
        "verify",
        "inspect",
        "extract",
        "pack",
        "check",
        "completions",
        "man",
    ] {
        assert_eq!(run(&args![cmd, "--help"]).0, 0);
        assert_eq!(run(&args![cmd, "--no-such-flag"]).0, 2);
    }
}

/// `jetdir ... | head -c 1`: stdout closes early; jetdir ends with its own exit code, no panic.
#[test]
fn closed_stdout_ends_quietly() {
    let i = inputs();
    let t = i.root.join("ex");
    let cases: Vec<(Vec<String>, i32)> = vec![
        (args!["verify", s(&i.store)], 0),
        (args!["--json", "verify", s(&i.store)], 0),
        (args!["inspect", s(&i.store)], 0),
        (args!["--json", "inspect", s(&i.store)], 0),
        (args!["verify", s(&i.damaged_store)], 1),
        (args!["--json", "verify", s(&i.text_file)], 2),
        (
            args![
                "extract",
                s(&i.tgz),
                "--store-dir",
                s(&t),
                "--create",
                "--dry-run"
            ],
            0,
        ),
        (
            args![
                "--json",
                "extract",
                s(&i.bad_tgz),
                "--store-dir",
                s(&t),
                "--create"
            ],
            1,
        ),
        (
            args![
                "pack",
                s(&i.store),
                "--stream",
                "MULTI",
                "-o",
                s(&i.root.join("pk1"))
            ],
            0,
        ),
        (
            args![
                "--json",
                "pack",
                s(&i.store),
                "--stream",
                "MULTI",
                "-o",
                s(&i.root.join("pk2"))
            ],
            0,
        ),
        (args!["--help"], 0),
        (args!["--version"], 0),
        (args!["check", s(&i.store)], 0),
        (
            args!["check", s(&i.damaged_store), "--format", "prometheus"],
            1,
        ),
        (args!["--json", "check", s(&i.text_file)], 2),
        (args!["completions", "bash"], 0),
        (args!["completions", "zsh"], 0),
        (args!["completions", "fish"], 0),
        (args!["man"], 0),
    ];
    for (a, want) in cases {
        for _ in 0..3 {
            // stdout is a pipe whose reader is closed before jetdir writes
            let mut child = Command::new(env!("CARGO_BIN_EXE_jetdir"))
                .args(&a)
                .arg("-q")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            drop(child.stdout.take());
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            let st = child.wait().unwrap();
            let code = st.code().expect("killed by a signal");
            assert!(
                !stderr.contains("panicked") && code != 101,
                "{a:?}: {stderr}"
            );
            if a.iter().any(|x| x == "--help" || x == "--version") {
                continue;
            }
            assert_eq!(code, want, "{a:?}: {stderr}");
            if a.first().is_some_and(|x| x == "pack") || a.get(1).is_some_and(|x| x == "pack") {
                break; // OUT exists now
            }
        }
    }
}
