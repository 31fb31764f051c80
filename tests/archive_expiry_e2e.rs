//! The limits the server enforces at load, for backups (issue #9): max_age expires messages
//! between the backup and the restore. Real 2.15.1 (V2 backup, restore API) and 2.9.10 (V1
//! backup, restore API), and a tarball of each stream dir extracted into a store and started:
//! jetdir's verify of the backup and of the tarball, at the time the server was observed
//! (`--at`), gives the server's state after the restore or start, and names what max_age
//! removed. Both before: the archive walk kept no block, so the limits were never applied to
//! an archive (every message reported, the tarball disagreeing with the dir it holds). The
//! server side is `tests/support/expiry_check.py`.
mod common;
use serde_json::Value;
use std::process::Command;

/// The sequences `jetdir dump` gives for the archive at `at`.
fn dumped_seqs(path: &str, at: &str) -> Vec<u64> {
    let o = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["dump", "--json", "--no-progress", "--at", at, path])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{path}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| v["seq"].as_u64())
        .collect()
}

fn verify_json(path: &str, at: &str) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["verify", "--json", "--no-progress", "--at", at, path])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{path}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15, 2.9 and nats-py: bash scripts/install-deps.sh"
)]
fn max_age_between_backup_and_restore() {
    let t = tempfile::tempdir().unwrap();
    let o = Command::new(common::python_with_nats())
        .arg(common::repo().join("tests/support/expiry_check.py"))
        .arg("--server215")
        .arg(common::server_215())
        .arg("--server29")
        .arg(common::server_29())
        .arg("--out")
        .arg(t.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "expiry_check.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let facts: Value = serde_json::from_slice(&o.stdout).unwrap();
    for rel in ["2.15.1", "2.9.10"] {
        for (form, path) in [("v", "bk"), ("tgz", "AGE.tgz")] {
            let f = &facts[rel][form];
            let st = &f["state"];
            // the premise: the server removed batch A (10 messages), kept batch B
            assert_eq!(st["messages"], 5, "{rel} {form}: {f}");
            let p = t.path().join(rel).join(path);
            let rep = verify_json(p.to_str().unwrap(), f["at"].as_str().unwrap());
            let s = &rep["streams"][0];
            let label = format!("{rel} {form} ({path})");
            for (ours, theirs) in [
                ("messages", "messages"),
                ("bytes", "bytes"),
                ("first_seq", "first_seq"),
                ("last_seq", "last_seq"),
                ("subjects", "num_subjects"),
            ] {
                assert_eq!(s[ours], st[theirs], "{label} {ours}: {s}");
            }
            assert_eq!(s["deleted"].as_u64().unwrap_or(0), 0, "{label}");
            let removed = &s["load"]["removed"][0];
            assert_eq!(removed["limit"], "max_age", "{label}: {s}");
            assert_eq!(removed["messages"], 10, "{label}");
            assert_eq!(removed["ranges"], serde_json::json!([[1, 10]]), "{label}");
            let kinds: Vec<&str> = rep["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["kind"].as_str().unwrap())
                .collect();
            assert!(kinds.contains(&"limits_at_load"), "{label}: {kinds:?}");
            // explain tells the same story
            let o = Command::new(env!("CARGO_BIN_EXE_jetdir"))
                .args([
                    "explain",
                    "--no-progress",
                    "--at",
                    f["at"].as_str().unwrap(),
                ])
                .arg(&p)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                text.contains("max_age limit removes 10 messages at load: sequences 1..10"),
                "{label}: {text}"
            );
            if form == "v" && rel == "2.15.1" {
                assert!(
                    text.contains("restores this V2 (NATSARC1) backup"),
                    "{text}"
                );
            }
            // dump serves what the server serves: batch B only
            let want: Vec<u64> = (11..=15).collect();
            assert_eq!(
                dumped_seqs(p.to_str().unwrap(), f["at"].as_str().unwrap()),
                want,
                "{label}"
            );
            // backup.json describes the archive, not the state after the limits: no mismatch
            assert!(
                !kinds.iter().any(|k| k.starts_with("backup_json")),
                "{label}: {kinds:?}"
            );
            // at the time of the backup nothing had expired
            let before = verify_json(p.to_str().unwrap(), "2000-01-01T00:00:00Z");
            assert_eq!(before["streams"][0]["messages"], 15, "{label}");
            assert!(before["streams"][0]["load"]["removed"]
                .as_array()
                .is_none_or(|r| r.is_empty()));
        }
    }
    // 2.15.1, per-message TTLs (`Nats-TTL: 3s` on seqs 1, 3, 5) run out before the restore
    for (form, path) in [("v", "bk"), ("tgz", "TTL.tgz")] {
        let f = &facts["2.15.1"]["ttl"][form];
        let st = &f["state"];
        assert_eq!(st["deleted"], serde_json::json!([3, 5]), "ttl {form}: {f}");
        let p = t.path().join("2.15.1/ttl").join(path);
        let rep = verify_json(p.to_str().unwrap(), f["at"].as_str().unwrap());
        let s = &rep["streams"][0];
        for (ours, theirs) in [
            ("messages", "messages"),
            ("bytes", "bytes"),
            ("first_seq", "first_seq"),
            ("last_seq", "last_seq"),
            ("subjects", "num_subjects"),
            ("deleted", "num_deleted"),
        ] {
            assert_eq!(s[ours], st[theirs], "ttl {form} {ours}: {s}");
        }
        assert_eq!(s["deleted_seqs"], st["deleted"], "ttl {form}: {s}");
        assert_eq!(s["load"]["removed"][0]["limit"], "msg_ttl", "ttl {form}");
        assert_eq!(
            dumped_seqs(p.to_str().unwrap(), f["at"].as_str().unwrap()),
            [2, 4, 6],
            "ttl {form}"
        );
    }
}
