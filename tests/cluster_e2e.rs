//! `jetdir cluster` against a real 3-node nats-server 2.15 cluster on 127.0.0.1
//! (tests/support/cluster.py): R3 stream R3A with durable DUR, R1 stream ONE on n2, and an
//! orphan case (stream GONE and durable R3A > GC deleted through the API, their dirs put back
//! into stopped n1's store; a copy of ONE put there too, assigned to n2 only). jetdir's raft listing of n1 must be consistent with the cluster, its
//! prediction must name exactly GONE, GC and ONE, and restarting the cluster must delete exactly
//! those dirs from n1 (after which jetdir predicts nothing).
mod common;
#[path = "common/schema.rs"]
mod schema;

use common::{python_with_nats, repo, server_215};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn cluster_py(server: &Path, out: &Path, args: &[&str]) {
    let o = Command::new(python_with_nats())
        .arg(repo().join("tests/support/cluster.py"))
        .arg("--server")
        .arg(server)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("run cluster.py");
    assert!(
        o.status.success(),
        "cluster.py {args:?} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn jetdir_cluster(store: &Path, name: Option<&str>, code: i32) -> Value {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jetdir"));
    c.args(["--json", "cluster"]).arg(store);
    if let Some(n) = name {
        c.args(["--server-name", n]);
    }
    let o = c.output().expect("run jetdir");
    let doc: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(o.status.code(), Some(code), "{doc:#}");
    let raw = std::fs::read(repo().join("schema/jetdir.schema.json")).unwrap();
    let sc: Value = serde_json::from_slice(&raw).unwrap();
    let mut errs = Vec::new();
    schema::validate(&sc, &sc, &doc, "", &mut errs);
    assert!(errs.is_empty(), "{errs:#?}\n{doc:#}");
    doc
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn strs(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// `account > stream[/consumer]` of a placed dir, as cluster.py names dirs.
fn dir_name(p: &Value) -> String {
    match p["consumer"].as_str() {
        Some(c) => format!("{}/{c}", p["stream"].as_str().unwrap()),
        None => p["stream"].as_str().unwrap().to_string(),
    }
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn a_stopped_3_node_cluster_gives_the_raft_listing_and_the_orphans_the_server_deletes() {
    let server = server_215();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    cluster_py(&server, out, &["--phase", "setup"]);
    let facts = read_json(&out.join("facts.json"));
    let store = Path::new(facts["store"].as_str().unwrap()).to_path_buf();
    let peers: BTreeSet<String> = facts["peers"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();

    let d = jetdir_cluster(&store, Some("n1"), 1);
    assert_eq!(d["command"], "cluster");
    assert_eq!(d["self_peer"], facts["peers"]["n1"]);
    // the listing: the meta group, R3A's group and DUR's group, each with the three peers
    let groups = d["groups"].as_array().unwrap();
    let by_kind = |k: &str| -> Vec<&Value> { groups.iter().filter(|g| g["kind"] == k).collect() };
    assert_eq!(
        (
            by_kind("meta").len(),
            by_kind("stream").len(),
            by_kind("consumer").len()
        ),
        (1, 1, 1),
        "{d:#}"
    );
    assert_eq!(by_kind("stream")[0]["stream"], "R3A");
    assert_eq!(by_kind("consumer")[0]["stream"], "R3A");
    assert_eq!(by_kind("consumer")[0]["consumer"], "DUR");
    for g in groups {
        assert_eq!(strs(&g["peers"]), peers, "{g:#}");
        assert_eq!(g["cluster_size"], 3);
        let term = g["term"].as_u64().unwrap();
        assert!(term >= 1, "{g:#}");
        // the vote of the group's current term: one of the peers, or none when this node
        // did not vote in that term (tav.idx then holds the term alone: seen, run to run, for
        // the stream group on 2.11 and 2.12 releases, whose election n1 took no part in)
        if let Some(v) = g["vote"].as_str() {
            assert!(peers.contains(v), "{g:#}");
        } else {
            assert!(g["vote"].is_null(), "{g:#}");
        }
        assert_eq!(g["wal"]["bad_records"], 0, "{g:#}");
        for s in g["snapshots"].as_array().unwrap() {
            assert_eq!(s["checksum_ok"], true, "{g:#}");
            assert!(s["term"].as_u64().unwrap() <= term, "{g:#}");
        }
        // the WAL continues the latest snapshot: no gap between them
        let last = g["wal"]["last_index"].as_u64();
        let first = g["wal"]["first_index"].as_u64();
        match (g["snapshot_index"].as_u64(), first, last) {
            (Some(si), Some(f), Some(l)) => assert!(f <= si + 1 && l >= si, "{g:#}"),
            (None, Some(f), Some(_)) => assert_eq!(f, 1, "{g:#}"),
            (Some(_), None, None) => {}
            other => panic!("{other:?}: {g:#}"),
        }
    }
    // the mapping equals the server's own (monitoring /jsz?raft=true before the stop)
    let mut mapped = serde_json::Map::new();
    for g in groups.iter().filter(|g| g["kind"] != "meta") {
        let key = match g["consumer"].as_str() {
            Some(c) => format!("{}/{c}", g["stream"].as_str().unwrap()),
            None => g["stream"].as_str().unwrap().to_string(),
        };
        mapped.insert(key, g["name"].clone());
    }
    assert_eq!(Value::Object(mapped), facts["jsz"]["groups"], "{d:#}");
    let meta = by_kind("meta")[0];
    assert_eq!(meta["cluster_size"], facts["jsz"]["meta_cluster_size"]);
    if let (Some(c), Some(l)) = (meta["commit"].as_u64(), meta["wal"]["last_index"].as_u64()) {
        assert!(c <= l, "{meta:#}");
    }
    assert_eq!(d["meta"]["complete"], true);
    assert_eq!(d["meta"]["streams_assigned"], 2, "R3A and ONE: {d:#}");
    assert_eq!(d["meta"]["consumers_assigned"], 1, "DUR: {d:#}");

    // the prediction: exactly GONE, R3A > GC (not assigned) and ONE (assigned to n2)
    let placed = d["streams"].as_array().unwrap();
    let on_disk: BTreeSet<String> = placed.iter().map(dir_name).collect();
    assert_eq!(on_disk, strs(&facts["dirs"]));
    let doomed: BTreeSet<String> = placed
        .iter()
        .filter(|p| p["fate"] != "kept")
        .map(dir_name)
        .collect();
    assert_eq!(
        doomed,
        ["GONE", "ONE", "R3A/GC"]
            .into_iter()
            .map(String::from)
            .collect(),
        "{d:#}"
    );
    let fate = |n: &str| placed.iter().find(|p| dir_name(p) == n).unwrap()["fate"].clone();
    assert_eq!(
        (fate("GONE"), fate("R3A/GC"), fate("ONE")),
        ("orphan".into(), "orphan".into(), "not_member".into())
    );
    let mut kinds: Vec<&str> = d["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "cluster_orphan_consumer",
            "cluster_orphan_stream",
            "cluster_orphan_stream"
        ],
        "{d:#}"
    );
    // without the server name the id cannot be told (every group has all three peers):
    // the orphans (not assigned at all) are the same, ONE (assigned elsewhere) is not told
    let d2 = jetdir_cluster(&store, None, 1);
    assert_eq!(d2["self_peer"], Value::Null);
    assert_eq!(d2["problems"].as_array().unwrap().len(), 2, "{d2:#}");

    // the real server: start the cluster on these stores, see what n1 deleted
    let mut args = vec!["--phase", "restart", "--expect-gone"];
    let doomed_v: Vec<String> = doomed.iter().cloned().collect();
    args.extend(doomed_v.iter().map(String::as_str));
    cluster_py(&server, out, &args);
    let after = read_json(&out.join("after.json"));
    let left = strs(&after["dirs"]);
    let want: BTreeSet<String> = on_disk.difference(&doomed).cloned().collect();
    assert_eq!(
        left, want,
        "the server deleted other dirs than predicted: {after:#}"
    );
    // and now nothing is predicted
    let d3 = jetdir_cluster(&store, Some("n1"), 0);
    assert!(d3["problems"].as_array().unwrap().is_empty(), "{d3:#}");
}
