//! `jetdir pack` against real servers: pack fixture streams written by nats-server 2.15.1 and
//! 2.9.10, load every backup into a fresh server (the chunked restore protocol `nats stream
//! restore` uses, or GNU tar into a stopped server's store for tgz), restart it, and compare
//! stream info, consumers and every message (MSG.GET) with the source's facts.json.
//! `tests/support/pack_check.py` does the server side. Without servers/nats-py the server tests
//! are reported as ignored (build.rs sets `cfg(jetdir_no_server)`); under `CI=true` they fail.
mod common;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(sample: &str) -> PathBuf {
    common::repo().join("fixtures").join(sample)
}

/// Copy a tree (skipping files named `skip`). Every test packs its own copy: a concurrent
/// jetdir reading the same dir would look like a server holding it.
fn copy_tree(src: &Path, dst: &Path, skip: &str) {
    for e in walkdir::WalkDir::new(src)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        let to = dst.join(e.path().strip_prefix(src).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else if e.file_name() != skip {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn store_copy(sample: &str, tmp: &Path) -> PathBuf {
    let d = tmp.join(format!("src-{sample}"));
    if !d.exists() {
        copy_tree(&fixture(sample).join("store"), &d, "");
    }
    d
}

fn facts(sample: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(sample).join("facts.json")).unwrap()).unwrap()
}

/// Run `jetdir pack`; returns the exit code.
fn pack(src: &Path, out: &Path, args: &[&str]) -> i32 {
    let o = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["-q", "pack"])
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .expect("run jetdir");
    if !o.status.success() {
        println!(
            "jetdir pack {} -> {}: {}\n{}",
            src.display(),
            out.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    o.status.code().unwrap_or(-1)
}

struct Case {
    id: String,
    server: &'static str,
    mode: &'static str,
    path: PathBuf,
    all: bool,
    streams: Value,
    consumers: bool,
}

/// Run the cases; returns id -> result.
fn check(cases: &[Case], tmp: &Path) -> serde_json::Map<String, Value> {
    common::server_215();
    if cases.iter().any(|c| c.server == "2.9") {
        common::server_29();
    }
    let py = common::python_with_nats();
    let spec: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({"id": c.id, "server": c.server, "mode": c.mode, "path": c.path,
                   "all": c.all, "streams": c.streams, "consumers": c.consumers})
        })
        .collect();
    let cf = tmp.join("cases.json");
    let rf = tmp.join("results.json");
    std::fs::write(&cf, serde_json::to_vec(&spec).unwrap()).unwrap();
    let o = Command::new(py)
        .arg(common::repo().join("tests/support/pack_check.py"))
        .arg(&cf)
        .arg(&rf)
        .output()
        .expect("run pack_check.py");
    assert!(
        o.status.success(),
        "pack_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&rf).unwrap()).unwrap();
    r.as_object().cloned().expect("results.json is an object")
}

fn assert_all_ok(res: &serde_json::Map<String, Value>) {
    let bad: Vec<String> = res
        .iter()
        .filter(|(_, v)| v["ok"] != Value::Bool(true))
        .map(|(k, v)| {
            format!(
                "{k}: error {}\n  mismatches {}\n  log:\n{}",
                v["error"],
                v["mismatches"],
                v["log"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Pack each (stream, format) of a fixture and build the load cases for `server`.
fn single_cases(
    sample: &str,
    streams: &[&str],
    formats: &[(&'static str, &'static str)],
    tmp: &Path,
) -> Vec<Case> {
    let f = facts(sample);
    let store = store_copy(sample, tmp);
    let mut cases = Vec::new();
    for s in streams {
        for (fmt, server) in formats {
            let out = if *fmt == "tgz" {
                tmp.join(format!("{sample}-{s}-{server}.tgz"))
            } else {
                tmp.join(format!("{sample}-{s}-{fmt}-{server}"))
            };
            assert_eq!(
                pack(&store, &out, &["--stream", s, "--format", fmt]),
                0,
                "{sample} {s} {fmt}"
            );
            cases.push(Case {
                id: format!("{sample} {s} {fmt} -> {server}"),
                server,
                mode: if *fmt == "tgz" { "tgz" } else { "restore" },
                path: out,
                all: false,
                streams: json!({ *s: f["streams"][*s] }),
                consumers: true,
            });
        }
    }
    cases
}

const TO_215: &[(&str, &str)] = &[("v1", "2.15"), ("v2", "2.15"), ("tgz", "2.15")];

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn pack_of_2_15_plain_loads_into_2_15() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = single_cases("v2.15.1-plain", &["ORDERS", "MULTI"], TO_215, tmp.path());
    // without msgs/index.db the restoring server rebuilds the state from the blocks
    let copy = tmp.path().join("MULTI");
    let src = fixture("v2.15.1-plain").join("store/jetstream/$G/streams/MULTI");
    copy_tree(&src, &copy, "index.db");
    let out = tmp.path().join("multi-no-index");
    assert_eq!(pack(&copy, &out, &[]), 0);
    cases.push(Case {
        id: "MULTI without index.db v1 -> 2.15".into(),
        server: "2.15",
        mode: "restore",
        path: out,
        all: false,
        streams: json!({"MULTI": facts("v2.15.1-plain")["streams"]["MULTI"]}),
        consumers: true,
    });
    let res = check(&cases, tmp.path());
    assert_eq!(res.len(), 7);
    assert_all_ok(&res);
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn pack_of_2_15_s2_loads_into_2_15() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = single_cases("v2.15.1-s2", &["CMP"], TO_215, tmp.path());
    let res = check(&cases, tmp.path());
    assert_eq!(res.len(), 3);
    assert_all_ok(&res);
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn pack_of_2_9_loads_into_2_15_and_2_9() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = single_cases(
        "v2.9.10-legacy",
        &["ORDERS", "MULTI"],
        &[
            ("v1", "2.15"),
            ("v2", "2.15"),
            ("tgz", "2.15"),
            ("v1", "2.9"),
            ("tgz", "2.9"),
        ],
        tmp.path(),
    );
    let res = check(&cases, tmp.path());
    assert_eq!(res.len(), 10);
    assert_all_ok(&res);
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn pack_all_restores_every_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let f = facts("v2.15.1-plain");
    let store = store_copy("v2.15.1-plain", tmp.path());
    let mut cases = Vec::new();
    for fmt in ["v1", "v2"] {
        let out = tmp.path().join(format!("all-{fmt}"));
        assert_eq!(pack(&store, &out, &["--all", "--format", fmt]), 0);
        cases.push(Case {
            id: format!("--all {fmt} -> 2.15"),
            server: "2.15",
            mode: "restore",
            path: out,
            all: true,
            streams: f["streams"].clone(),
            consumers: true,
        });
    }
    let out = tmp.path().join("all.tgz");
    assert_eq!(pack(&store, &out, &["--all", "--format", "tgz"]), 0);
    cases.push(Case {
        id: "--all tgz -> 2.15".into(),
        server: "2.15",
        mode: "tgz",
        path: out,
        all: true,
        streams: f["streams"].clone(),
        consumers: true,
    });
    let mut res = check(&cases, tmp.path());
    assert_eq!(res.len(), 3);
    // A never-written stream reports first_seq 0 and num_deleted 1; the server's own V2
    // restore starts it at first_seq 1 (Compact(first_seq)), as it does for the server's
    // own V2 backups. Everything else must be identical.
    let v2 = res.get_mut("--all v2 -> 2.15").unwrap();
    let known = [
        "EMPTY: state.first_seq = 1, source 0",
        "EMPTY: state.num_deleted = None, source 1",
    ];
    let m = v2["mismatches"].as_array_mut().unwrap();
    let before = m.len();
    m.retain(|x| !known.iter().any(|k| x.as_str().unwrap_or("").ends_with(k)));
    assert_eq!(
        before - m.len(),
        4,
        "the known EMPTY difference, loaded and restarted"
    );
    if m.is_empty() && v2["error"].is_null() {
        v2["ok"] = Value::Bool(true);
    }
    assert_all_ok(&res);
}

/// Drop the mismatches `known` lists from the result `id` (each must occur exactly once) and
/// mark it ok when nothing else is left.
fn expect_known(res: &mut serde_json::Map<String, Value>, id: &str, known: &[&str]) {
    let r = res.get_mut(id).unwrap_or_else(|| panic!("no result {id}"));
    let m = r["mismatches"].as_array_mut().unwrap();
    for k in known {
        let n = m.iter().filter(|x| x.as_str() == Some(k)).count();
        assert_eq!(n, 1, "{id}: expected mismatch {k:?} once in {m:#?}");
    }
    m.retain(|x| !known.contains(&x.as_str().unwrap_or("")));
    if m.is_empty() && r["error"].is_null() {
        r["ok"] = Value::Bool(true);
    }
}

/// What nats-server 2.9.10 cannot represent of a never-used stream as 2.15 reports it:
/// 2.15 says num_deleted 1 (last - first + 1 - msgs with first = last = 0), 2.9 reports none;
/// after a restart 2.9 shows first_seq 1 and first_ts 1970 for every empty stream, its own
/// included (its rebuilt empty block has first seq 1 and timestamp 0).
const EMPTY_IN_2_9: &[&str] = &[
    "loaded EMPTY: state.num_deleted = None, source 1",
    "restarted EMPTY: state.num_deleted = None, source 1",
    "restarted EMPTY: state.first_seq = 1, source 0",
    "restarted EMPTY: state.first_ts = '1970-01-01T00:00:00Z', source '0001-01-01T00:00:00Z'",
];

/// A v1 pack of every 2.15.1 fixture stream restores into nats-server 2.9.10 (the chunked
/// restore API) with the source's state: numbers, deleted list, subjects, every message,
/// consumers, also after a restart. The blocks carry no tombstones (2.9 reads them as
/// messages) and a `.idx` each. MULTI is also packed without its index.db.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn v1_of_2_15_streams_restores_into_2_9() {
    let tmp = tempfile::tempdir().unwrap();
    let streams = ["ORDERS", "MULTI", "KV_config", "PURGED", "EMPTY"];
    let mut cases = single_cases("v2.15.1-plain", &streams, &[("v1", "2.9")], tmp.path());
    cases.extend(single_cases(
        "v2.15.1-s2",
        &["CMP"],
        &[("v1", "2.9")],
        tmp.path(),
    ));
    let copy = tmp.path().join("MULTI");
    let src = fixture("v2.15.1-plain").join("store/jetstream/$G/streams/MULTI");
    copy_tree(&src, &copy, "index.db");
    let out = tmp.path().join("multi-no-index-29");
    assert_eq!(pack(&copy, &out, &[]), 0);
    cases.push(Case {
        id: "MULTI without index.db v1 -> 2.9".into(),
        server: "2.9",
        mode: "restore",
        path: out,
        all: false,
        streams: json!({"MULTI": facts("v2.15.1-plain")["streams"]["MULTI"]}),
        consumers: true,
    });
    for c in &cases {
        assert_eq!(verify_json(&c.path)["ok"], true, "{}", c.id);
    }
    let mut res = check(&cases, tmp.path());
    assert_eq!(res.len(), 7);
    expect_known(&mut res, "v2.15.1-plain EMPTY v1 -> 2.9", EMPTY_IN_2_9);
    assert_all_ok(&res);
}

/// Layouts the fixtures do not have, made by a real 2.15.1 (`pack_check.py make-edges`, with
/// `sync_interval: 1s` so that it compacts blocks): the last sequences deleted (one erased),
/// a purge that left a block holding only a tombstone, and compacted blocks (records gone
/// from inside a block and from its head, a whole block removed). Each v1 pack (and, for
/// two, one without index.db) restores into 2.9.10 and into 2.15.1 with the source's state.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn v1_of_compacted_and_purged_2_15_streams_restores_into_2_9_and_2_15() {
    let tmp = tempfile::tempdir().unwrap();
    common::server_215();
    common::server_29();
    let py = common::python_with_nats();
    let made = tmp.path().join("edges");
    let o = Command::new(py)
        .arg(common::repo().join("tests/support/pack_check.py"))
        .arg("make-edges")
        .arg(&made)
        .output()
        .expect("run pack_check.py make-edges");
    assert!(
        o.status.success(),
        "make-edges: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let f: Value =
        serde_json::from_slice(&std::fs::read(made.join("facts.json")).unwrap()).unwrap();
    let streams = made.join("store/jetstream/$G/streams");
    // the server did compact: COMPACT's block 3 is gone, blocks 1 and 2 lost records
    assert!(!streams.join("COMPACT/msgs/3.blk").exists());
    assert_eq!(f["streams"]["COMPACT"]["info"]["state"]["messages"], 30);
    let mut cases = Vec::new();
    for (s, no_index) in [
        ("LASTDEL", false),
        ("PURGEONLY", false),
        ("COMPACT", false),
        ("LASTDEL", true),
        ("COMPACT", true),
    ] {
        let src = if no_index {
            let c = tmp.path().join(format!("noidx/{s}"));
            copy_tree(&streams.join(s), &c, "index.db");
            c
        } else {
            streams.join(s)
        };
        let tag = if no_index { " without index.db" } else { "" };
        let out = tmp
            .path()
            .join(format!("{s}{}", if no_index { "-noidx" } else { "" }));
        assert_eq!(pack(&src, &out, &[]), 0, "{s}{tag}");
        assert_eq!(verify_json(&out)["ok"], true, "{s}{tag}");
        for server in ["2.9", "2.15"] {
            cases.push(Case {
                id: format!("{s}{tag} v1 -> {server}"),
                server,
                mode: "restore",
                path: out.clone(),
                all: false,
                streams: json!({ s: f["streams"][s] }),
                consumers: true,
            });
        }
    }
    // V2 (2.15+ only) of the stream whose newest message was deleted: the archive holds
    // no message at the last seq; state.json carries last seq and time
    for s in ["LASTDEL", "COMPACT"] {
        let out = tmp.path().join(format!("{s}-v2"));
        assert_eq!(
            pack(&streams.join(s), &out, &["--format", "v2"]),
            0,
            "{s} v2"
        );
        cases.push(Case {
            id: format!("{s} v2 -> 2.15"),
            server: "2.15",
            mode: "restore",
            path: out,
            all: false,
            streams: json!({ s: f["streams"][s] }),
            consumers: true,
        });
    }
    let mut res = check(&cases, tmp.path());
    assert_eq!(res.len(), 12);
    // a V2 restore fills the deleted tail with SkipMsgs, which keep the time of the last
    // restored message (filestore.go `SkipMsgs`): last_ts is that message's time, whoever
    // wrote the archive (the format has no field the restore takes it from)
    for s in ["LASTDEL", "COMPACT"] {
        let src = f["streams"][s]["info"]["state"]["last_ts"]
            .as_str()
            .unwrap()
            .to_string();
        let got = res[&format!("{s} v2 -> 2.15")]["mismatches"]
            .as_array()
            .and_then(|m| m.first())
            .and_then(|m| m.as_str())
            .and_then(|m| m.split('\'').nth(1))
            .unwrap_or_default()
            .to_string();
        let t = |x: &str| jetdir::base::time::parse_rfc3339(x).unwrap_or(i64::MAX);
        assert!(
            t(&got) < t(&src),
            "{s}: restored last_ts {got} should be an earlier message's, source {src}"
        );
        let lines: Vec<String> = ["loaded", "restarted"]
            .iter()
            .map(|w| format!("{w} {s}: state.last_ts = '{got}', source '{src}'"))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        expect_known(&mut res, &format!("{s} v2 -> 2.15"), &refs);
    }
    // every message purged: 2.15 reports Go's zero time as first_ts, 2.9 the Unix epoch
    // (it keeps nanoseconds; year 1 does not fit)
    expect_known(
        &mut res,
        "PURGEONLY v1 -> 2.9",
        &[
            "loaded PURGEONLY: state.first_ts = '1970-01-01T00:00:00Z', source '0001-01-01T00:00:00Z'",
            "restarted PURGEONLY: state.first_ts = '1970-01-01T00:00:00Z', source '0001-01-01T00:00:00Z'",
        ],
    );
    assert_all_ok(&res);
}

fn verify_json(p: &Path) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(["-q", "verify", "--json"])
        .arg(p)
        .output()
        .expect("run jetdir verify");
    assert!(
        o.status.success(),
        "verify {}: {}",
        p.display(),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The stream numbers and consumer positions of a verify report.
fn summary(v: &Value) -> Vec<Value> {
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let cons: Vec<Value> = s["consumers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    json!([
                        c["name"],
                        c["delivered_stream_seq"],
                        c["delivered_consumer_seq"],
                        c["ack_floor_stream_seq"],
                        c["ack_floor_consumer_seq"],
                        c["num_ack_pending"]
                    ])
                })
                .collect();
            json!([
                s["name"],
                s["messages"],
                s["bytes"],
                s["first_seq"],
                s["last_seq"],
                s["deleted"],
                s["deleted_seqs"],
                s["subject_counts"],
                cons
            ])
        })
        .collect()
}

/// pack -> jetdir verify (the backup) -> jetdir extract -> the same state, for each format
/// and for a 2.15 and a 2.9 source. No server needed.
#[test]
fn pack_verify_extract_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    for sample in ["v2.15.1-plain", "v2.9.10-legacy"] {
        let store = store_copy(sample, tmp.path());
        let src = store.join("jetstream/$G/streams/ORDERS");
        let want = summary(&verify_json(&src));
        assert_eq!(want[0][1], 8);
        for fmt in ["v1", "v2", "tgz"] {
            let out = tmp.path().join(format!(
                "{sample}-{fmt}{}",
                if fmt == "tgz" { ".tgz" } else { "" }
            ));
            assert_eq!(pack(&src, &out, &["--format", fmt]), 0);
            let v = verify_json(&out);
            assert_eq!(v["ok"], true, "{sample} {fmt}: {v}");
            let dst = tmp.path().join(format!("x-{sample}-{fmt}"));
            let o = Command::new(env!("CARGO_BIN_EXE_jetdir"))
                .args(["-q", "extract"])
                .arg(&out)
                .arg("--store-dir")
                .arg(&dst)
                .arg("--create")
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "extract {sample} {fmt}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
            assert_eq!(summary(&verify_json(&dst)), want, "{sample} {fmt}");
        }
    }
}

/// A V2 archive whose consumer config carries keys no release knows (written with
/// `--allow-damaged` from a stream dir whose consumer meta.inf has them): 2.15.1's restore
/// decodes the archive's consumer configs leniently, so the consumers come back, with their
/// state, and again after a restart (the meta.inf the server writes has no unknown key). The
/// same keys in a store's meta.inf are `config_unknown_field` (offline since 2.11.9), but
/// jetdir's verify of the archive rightly says nothing about them.
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn v2_consumer_configs_with_unknown_keys_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ORDERS");
    copy_tree(
        &fixture("v2.15.1-plain").join("store/jetstream/$G/streams/ORDERS"),
        &dir,
        "",
    );
    let meta = dir.join("obs/C1/meta.inf");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    cfg["ack_polcy2"] = json!("x");
    cfg["zzz_future"] = json!({"a": 1});
    std::fs::write(&meta, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let out = tmp.path().join("v2");
    // the store's own consumer would be offline: packed only with --allow-damaged
    assert_eq!(pack(&dir, &out, &["--format", "v2"]), 1);
    assert_eq!(
        pack(&dir, &out, &["--format", "v2", "--allow-damaged", "-f"]),
        1
    );
    let v = verify_json(&out);
    assert_eq!(v["problems"], json!([]), "{v:#}");
    let res = check(
        &[Case {
            id: "ORDERS v2 with unknown consumer keys -> 2.15".into(),
            server: "2.15",
            mode: "restore",
            path: out,
            all: false,
            streams: json!({"ORDERS": facts("v2.15.1-plain")["streams"]["ORDERS"]}),
            consumers: true,
        }],
        tmp.path(),
    );
    assert_all_ok(&res);
}
