//! Issue #9 part 4: what jetdir writes is what each release reads. For every release pack
//! serves, `tests/support/compat_check.py` builds one store with a real server (PLAIN with
//! deletes and a consumer; TTL on 2.11+; SCHED with pending `@at` schedules on 2.12+, and
//! `@every` and cron ones on 2.14+ (jetdir's sched.db holds the source server's entries); SRC
//! sourcing PLAIN), packs it with this jetdir (v1 and tgz; v2 on 2.15+), restores it into the
//! same release, and on 2.15+ also extracts the server's own (V2) backup. Each restored store
//! must equal the source (stream state, messages, consumers; after a restart too) and the
//! server log must hold no "mismatch", "corrupt state file", "outdated" (or other recovery)
//! line.
mod common;

use serde_json::Value;
use std::process::Command;

const RELEASES: &[&str] = &["2.9.10", "2.10.26", "2.11.11", "2.12.8", "2.14.6", "2.15.1"];

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server releases; run scripts/install-deps.sh"
)]
fn pack_and_extract_are_read_by_each_release_without_warnings() {
    let py = common::python_with_nats();
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(py)
        .arg(common::repo().join("tests/support/compat_check.py"))
        .arg(env!("CARGO_BIN_EXE_jetdir"))
        .arg(tmp.path())
        .args(RELEASES)
        .output()
        .expect("run compat_check.py");
    assert!(
        o.status.success(),
        "compat_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("results.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    for v in RELEASES {
        let x = &r[*v];
        if x["missing"] == Value::Bool(true) {
            common::missing(&format!("nats-server {v} (find_release in natsbox.py)"));
        }
        if let Some(e) = x["error"].as_str() {
            failures.push(format!("{v}: {e}"));
            continue;
        }
        let want_cases: &[&str] = if *v == "2.15.1" {
            &["pack-v1", "pack-tgz", "pack-v2", "extract-server-v2"]
        } else {
            &["pack-v1", "pack-tgz"]
        };
        let streams: Vec<&str> = x["streams"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let minor: u32 = v.split('.').nth(1).unwrap().parse().unwrap();
        let mut want_streams = vec!["PLAIN"];
        if minor >= 11 {
            want_streams.push("TTL");
        }
        if minor >= 12 {
            want_streams.push("SCHED");
        }
        want_streams.push("SRC");
        assert_eq!(streams, want_streams, "{v}: streams built");
        if let Some(bad) = x["source_bad_log"].as_array().filter(|a| !a.is_empty()) {
            failures.push(format!("{v}: the source server itself logged {bad:?}"));
        }
        for c in want_cases {
            let y = &x["cases"][*c];
            if y["ok"] != Value::Bool(true) {
                failures.push(format!(
                    "{v} {c}: mismatches {} bad log {} error {}",
                    y["mismatches"], y["bad_log"], y["error"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
