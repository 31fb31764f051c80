//! `jetdir salvage`, `jetdir diff` and `jetdir explain` against real nats-servers.
//!
//! Salvage: the stream EV of tests/support/forensics_scenario.py (written by nats-server
//! 2.15.1) gets one flipped payload byte at seq 20 and loses its index.db, so a server started
//! on it truncates the block there and loses 20..41. jetdir salvage must keep every other
//! message; a server started on the salvaged stream dir, and servers restoring the salvaged
//! V1 (2.15.1 and 2.9.10) and V2 backups through the JetStream API, must serve exactly what
//! the healthy server served, less the sequences jetdir reported lost.
//!
//! Diff: a replica that fell behind (tests/support/salvage_scenario.py `lag`: the store copied
//! while the server was stopped, then 10 more messages and acks) is named with the range it
//! misses and its consumer state; a copy with a flipped record is named with that sequence.
mod common;

use common::{copy_dir, find_server, python_with_nats, repo, server_29};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn server() -> PathBuf {
    find_server("NATS_SERVER_215", &repo().join(".venv/bin/nats-server"))
}

fn py(script: &str, server: &Path, out: &Path, extra: &[&str]) {
    let r = Command::new(python_with_nats())
        .arg(repo().join("tests/support").join(script))
        .arg("--server")
        .arg(server)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run the scenario");
    assert!(
        r.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
}

fn jetdir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .expect("run jetdir")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
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

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

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

fn ranges(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect()
}

fn in_ranges(r: &[(u64, u64)], s: u64) -> bool {
    r.iter().any(|&(a, b)| a <= s && s <= b)
}

/// What a server serves equals what the healthy server served, less `lost`, plus the
/// `revived` deletes: sequence by sequence, subject, headers, payload and time.
fn assert_served(
    label: &str,
    served: &Value,
    healthy: &Value,
    lost: &[(u64, u64)],
    revived: &[u64],
) {
    let got: Vec<&Value> = served
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !revived.contains(&m["seq"].as_u64().unwrap()))
        .collect();
    let n_revived = served.as_array().unwrap().len() - got.len();
    assert_eq!(n_revived, revived.len(), "{label}: revived deletes served");
    let want: Vec<&Value> = healthy
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !in_ranges(lost, m["seq"].as_u64().unwrap()))
        .collect();
    let gs: Vec<u64> = got.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    let ws: Vec<u64> = want.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(gs, ws, "{label}: sequences served");
    for (g, w) in got.iter().zip(&want) {
        for f in ["subject", "headers", "data_b64", "time"] {
            assert_eq!(g[f], w[f], "{label}: seq {} {f}", w["seq"]);
        }
    }
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15, 2.9 and nats-py (scripts/install-deps.sh)"
)]
fn salvaged_stream_serves_exactly_what_jetdir_said_survived() {
    let tmp = tempfile::TempDir::new().unwrap();
    let run = tmp.path().join("run");
    py("forensics_scenario.py", &server(), &run, &[]);
    let facts = read_json(&run.join("facts.json"));
    let healthy = &facts["ev"];
    let store = run.join("store");
    // where seq 20 is
    let o = jetdir(&["dump", "--json", p(&store), "--stream", "EV", "--seq", "20"]);
    let m20: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let copy = tmp.path().join("damaged");
    copy_dir(&store, &copy);
    let sdir = copy.join("jetstream/$G/streams/EV");
    let blk = sdir.join(m20["file"].as_str().unwrap());
    let at = (m20["offset"].as_u64().unwrap() + m20["size"].as_u64().unwrap() - 9) as usize;
    let mut b = std::fs::read(&blk).unwrap();
    b[at] ^= 0x55;
    std::fs::write(&blk, b).unwrap();
    std::fs::remove_file(sdir.join("msgs/index.db")).unwrap();
    let before = snapshot(&copy);

    // explain tells the load model's story: the server truncates and loses 20..41
    let o = jetdir(&["explain", "--json", p(&copy)]);
    assert_eq!(code(&o), 1);
    let e = doc(&o);
    let ev = e["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "EV")
        .unwrap();
    assert_eq!(ev["verdict"], "loses_data");
    let story = ev["sentences"].to_string();
    assert!(
        story.contains("rebuilds") && story.contains("20..41"),
        "{story}"
    );
    assert!(ev["next_step"].as_str().unwrap().contains("salvage"));

    // salvage as a stream dir, into a fresh store
    let new_store = tmp.path().join("new");
    let streams = new_store.join("jetstream/$G/streams");
    std::fs::create_dir_all(&streams).unwrap();
    let o = jetdir(&[
        "salvage",
        "--json",
        p(&copy),
        "--stream",
        "EV",
        "-o",
        p(&streams.join("EV")),
    ]);
    assert_eq!(
        code(&o),
        1,
        "damaged input: exit 1 ({})",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = doc(&o);
    let st = &s["streams"][0];
    let lost = ranges(&st["lost_ranges"]);
    assert_eq!(lost, vec![(20, 20)], "{st}");
    assert_eq!(st["lost"], 1);
    // recovered: what the server's load would have cut, past the damage (21..41 less the
    // erased and deleted ones, which are before 20)
    assert_eq!(ranges(&st["recovered_ranges"]), vec![(21, 41)]);
    // seq 5 was deleted (not erased) in the last block: only index.db knew it, and a rebuild
    // serves it again (the load model's `revived`); salvage writes what the load serves
    let revived: Vec<u64> = st["revived"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(revived, vec![5]);
    assert_eq!(
        st["messages"].as_u64(),
        Some(healthy.as_array().unwrap().len() as u64 - 1 + 1)
    );
    assert!(snapshot(&copy) == before, "salvage changed its input");

    let served_dir = tmp.path().join("served-dir");
    py(
        "forensics_scenario.py",
        &server(),
        &served_dir,
        &["--read", p(&new_store), "--stream", "EV"],
    );
    assert_served(
        "dir on 2.15.1",
        &read_json(&served_dir.join("served.json")),
        healthy,
        &lost,
        &revived,
    );

    // the backup forms, restored through the JetStream API
    for (fmt, version, srv) in [
        ("v1", None, server()),
        ("v2", None, server()),
        ("v1", Some("2.9.10"), server_29()),
    ] {
        let label = format!("{fmt} for {}", version.unwrap_or("2.15.1"));
        let out = tmp
            .path()
            .join(format!("bk-{fmt}-{}", version.unwrap_or("x")));
        let mut args = vec![
            "salvage",
            "--json",
            p(&copy),
            "--stream",
            "EV",
            "-o",
            p(&out),
            "--format",
            fmt,
        ];
        if let Some(v) = version {
            args.extend(["--server-version", v]);
        }
        let o = jetdir(&args);
        assert_eq!(
            code(&o),
            1,
            "{label}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            ranges(&doc(&o)["streams"][0]["lost_ranges"]),
            lost,
            "{label}"
        );
        let rr = tmp
            .path()
            .join(format!("restored-{fmt}-{}", version.unwrap_or("x")));
        py("salvage_scenario.py", &srv, &rr, &["restore", p(&out)]);
        assert_served(
            &label,
            &read_json(&rr.join("served.json")),
            healthy,
            &lost,
            &revived,
        );
    }
    assert!(snapshot(&copy) == before, "salvage changed its input");

    // two hours later AGE's max_age (1 h) removes its 3 messages at load: explain says so,
    // salvage leaves them out and counts them
    let later =
        jetdir::base::time::rfc3339_full(jetdir::base::time::now_ns() + 2 * 3600 * 1_000_000_000);
    let e = doc(&jetdir(&["explain", "--json", p(&store), "--at", &later]));
    let age = e["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "AGE")
        .unwrap();
    let story = age["sentences"].to_string();
    assert!(
        story.contains("max_age limit removes 3 messages at load"),
        "{story}"
    );
    assert_eq!(age["messages"], 0);
    let age_out = tmp.path().join("age");
    std::fs::create_dir(&age_out).unwrap();
    let o = jetdir(&[
        "salvage",
        "--json",
        p(&store),
        "--stream",
        "AGE",
        "--at",
        &later,
        "-o",
        p(&age_out.join("AGE")),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let st = &doc(&o)["streams"][0];
    assert_eq!(st["removed_by_limits"], 3);
    assert_eq!(st["messages"], 0);
    assert_eq!(st["last_seq"], 3);

    // salvage of the healthy stream: the same messages, nothing lost, exit 0
    let ok_out = tmp.path().join("ok");
    std::fs::create_dir_all(ok_out.join("jetstream/$G/streams")).unwrap();
    let o = jetdir(&[
        "salvage",
        "--json",
        p(&store),
        "--stream",
        "EV",
        "-o",
        p(&ok_out.join("jetstream/$G/streams/EV")),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(doc(&o)["streams"][0]["lost"], 0);
    let served_ok = tmp.path().join("served-ok");
    py(
        "forensics_scenario.py",
        &server(),
        &served_ok,
        &["--read", p(&ok_out), "--stream", "EV"],
    );
    assert_served(
        "healthy",
        &read_json(&served_ok.join("served.json")),
        healthy,
        &[],
        &[],
    );
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py (scripts/install-deps.sh)"
)]
fn diff_names_the_lagging_range_and_the_flipped_record() {
    let tmp = tempfile::TempDir::new().unwrap();
    let run = tmp.path().join("run");
    py("salvage_scenario.py", &server(), &run, &["lag"]);
    let facts = read_json(&run.join("facts.json"));
    let (lag, ahead) = (run.join("lag"), run.join("store"));

    let o = jetdir(&["diff", "--json", p(&lag), p(&ahead)]);
    assert_eq!(code(&o), 1);
    let d = doc(&o);
    assert_eq!(d["ok"], false);
    let r = &d["streams"][0];
    assert_eq!(r["name"], "R");
    assert_eq!(ranges(&r["copies"][0]["missing_ranges"]), vec![(31, 40)]);
    assert_eq!(r["copies"][0]["missing"], 10);
    assert_eq!(r["copies"][1]["missing"], 0);
    assert_eq!(r["copies"][0]["last_seq"], 30);
    assert_eq!(r["copies"][1]["last_seq"], 40);
    assert_eq!(r["differing"], 0);
    assert_eq!(r["compared"], 30);
    assert_eq!(r["most_complete"], 1);
    // the consumer, as each server left it
    let c = &r["consumers"][0];
    assert_eq!(c["name"], "D");
    assert_eq!(c["same"], false);
    for (i, k) in ["lag", "ahead"].iter().enumerate() {
        assert_eq!(
            c["copies"][i]["delivered_stream_seq"], facts[k]["delivered"],
            "{k}"
        );
        assert_eq!(
            c["copies"][i]["ack_floor_stream_seq"], facts[k]["ack_floor"],
            "{k}"
        );
    }
    // a copy compared with itself: identical, exit 0
    let o = jetdir(&["diff", "--json", p(&ahead), p(&ahead)]);
    assert_eq!(code(&o), 0);
    assert_eq!(doc(&o)["streams"][0]["identical"], true);

    // three copies, one with a flipped record (index.db trusted: seq 7 unreadable)
    let flipped = tmp.path().join("flipped");
    copy_dir(&ahead, &flipped);
    let o = jetdir(&["dump", "--json", p(&ahead), "--stream", "R", "--seq", "7"]);
    let m: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let blk = flipped
        .join("jetstream/$G/streams/R")
        .join(m["file"].as_str().unwrap());
    let at = (m["offset"].as_u64().unwrap() + m["size"].as_u64().unwrap() - 9) as usize;
    let mut b = std::fs::read(&blk).unwrap();
    b[at] ^= 0x55;
    std::fs::write(&blk, b).unwrap();
    let o = jetdir(&["diff", "--json", p(&lag), p(&ahead), p(&flipped)]);
    assert_eq!(code(&o), 1);
    let r = &doc(&o)["streams"][0];
    assert_eq!(ranges(&r["copies"][2]["missing_ranges"]), vec![(7, 7)]);
    assert_eq!(r["copies"][2]["errors"], 1);
    assert_eq!(r["most_complete"], 1, "{r}");
    assert!(r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["kind"] == "record_checksum" && p["seq"] == 7));
}

/// A stream written by 2.9.10 (legacy .idx/.fss files) salvaged as a stream dir: nats-server
/// 2.9.10 started on it serves the same messages as jetdir reads from the source (subject,
/// headers, payload, time).
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.9 and nats-py (scripts/install-deps.sh)"
)]
fn salvaged_dir_of_a_2_9_stream_loads_in_2_9() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = repo().join("fixtures/v2.9.10-legacy/store");
    let store = tmp.path().join("new");
    let streams = store.join("jetstream/$G/streams");
    std::fs::create_dir_all(&streams).unwrap();
    let o = jetdir(&[
        "salvage",
        p(&src),
        "--stream",
        "ORDERS",
        "-o",
        p(&streams.join("ORDERS")),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let r = tmp.path().join("read");
    py(
        "forensics_scenario.py",
        &server_29(),
        &r,
        &["--read", p(&store), "--stream", "ORDERS"],
    );
    let served = read_json(&r.join("served.json"));
    let o = jetdir(&[
        "dump",
        "--json",
        p(&src),
        "--stream",
        "ORDERS",
        "--payload",
        "base64",
    ]);
    let want: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("seq").is_some())
        .collect();
    let got = served.as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["seq"], w["seq"]);
        assert_eq!(g["subject"], w["subject"]);
        assert_eq!(g["headers"], w["headers"]);
        assert_eq!(g["data_b64"], w["payload"]);
        let t = jetdir::base::time::parse_rfc3339(g["time"].as_str().unwrap()).unwrap();
        assert_eq!(Some(t), w["ts"].as_i64(), "seq {}", w["seq"]);
    }
}
