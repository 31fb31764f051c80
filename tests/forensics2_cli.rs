//! `jetdir diff`, `jetdir salvage`, `jetdir explain` on the bundled fixtures (no server):
//! exit codes, refusals, the first differing sequence of a silently changed copy, salvage of
//! a healthy stream giving the same messages, consumers clamped to the surviving range, the
//! input never modified, and explain's story of a damaged stream.
use jetdir::base::hash;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn jetdir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .expect("run jetdir")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
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

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        let dst = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
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

fn store_copy(tmp: &Path, name: &str) -> PathBuf {
    let d = tmp.join(name);
    copy_dir(&fixture("v2.15.1-plain/store"), &d);
    d
}

/// `dump --json --payload base64` as (seq, subject, headers, payload, ts) rows.
fn messages(path: &Path, stream: &str) -> Vec<(u64, Value, Value, Value, Value)> {
    let o = jetdir(&[
        "dump",
        "--json",
        p(path),
        "--stream",
        stream,
        "--payload",
        "base64",
    ]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("seq").is_some())
        .map(|v| {
            (
                v["seq"].as_u64().unwrap(),
                v["subject"].clone(),
                v["headers"].clone(),
                v["payload"].clone(),
                v["ts"].clone(),
            )
        })
        .collect()
}

/// Change one payload byte of seq `seq` of MULTI and write a valid checksum: a copy that
/// differs silently (nothing in it is damaged).
fn silent_change(store: &Path, seq: u64) {
    let o = jetdir(&[
        "dump",
        "--json",
        p(store),
        "--stream",
        "MULTI",
        "--seq",
        &seq.to_string(),
    ]);
    let m: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let rel = m["file"].as_str().unwrap();
    let blk = store.join("jetstream/$G/streams/MULTI").join(rel);
    let index: u32 = rel
        .trim_start_matches("msgs/")
        .trim_end_matches(".blk")
        .parse()
        .unwrap();
    let off = m["offset"].as_u64().unwrap() as usize;
    let size = m["size"].as_u64().unwrap() as usize;
    let mut b = std::fs::read(&blk).unwrap();
    let rec = &mut b[off..off + size];
    // record: u32 length (bit 31: headers), u64 seq, i64 ts, u16 subject length, subject,
    // payload, u64 checksum = HH64(key, seq ‖ ts ‖ subject ‖ payload); MULTI has no headers
    assert_eq!(u32::from_le_bytes(rec[..4].try_into().unwrap()) >> 31, 0);
    let slen = u16::from_le_bytes(rec[20..22].try_into().unwrap()) as usize;
    rec[22 + slen] ^= 0x20;
    let key = hash::key_for(&format!("MULTI-{index}"));
    let sum = hash::hh64(
        &key,
        &[&rec[4..20], &rec[22..22 + slen], &rec[22 + slen..size - 8]],
    );
    rec[size - 8..].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&blk, b).unwrap();
}

#[test]
fn diff_exit_codes_and_the_first_difference() {
    let tmp = tempfile::TempDir::new().unwrap();
    let a = store_copy(tmp.path(), "a");
    let b = store_copy(tmp.path(), "b");
    let a_before = snapshot(&a);
    // identical copies, also against the tgz backup of one stream: exit 0
    let o = jetdir(&["diff", "--json", p(&a), p(&b)]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let d = doc(&o);
    assert_eq!(d["ok"], true);
    assert_eq!(d["streams"].as_array().unwrap().len(), 5);
    let o = jetdir(&[
        "diff",
        p(&a),
        p(&fixture("backups/ORDERS.tgz")),
        "--stream",
        "ORDERS",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("IDENTICAL"));

    // a silent change at seq 35: named, with the field
    silent_change(&b, 35);
    let o = jetdir(&["verify", p(&b)]);
    assert_eq!(code(&o), 0, "the changed copy is not damaged");
    let o = jetdir(&["diff", "--json", p(&a), p(&b), "--stream", "MULTI"]);
    assert_eq!(code(&o), 1);
    let s = &doc(&o)["streams"][0];
    assert_eq!(s["first_difference"]["seq"], 35);
    assert_eq!(
        s["first_difference"]["fields"],
        serde_json::json!(["payload"])
    );
    assert_eq!(s["differing"], 1);
    assert_eq!(s["compared"], 98);
    assert_eq!(s["copies"][0]["missing"], 0);
    assert_eq!(s["copies"][1]["missing"], 0);
    let text =
        String::from_utf8_lossy(&jetdir(&["diff", p(&a), p(&b), "--stream", "MULTI"]).stdout)
            .into_owned();
    assert!(
        text.contains("first difference at seq 35 (payload)"),
        "{text}"
    );

    // a stream only one copy has
    let c = store_copy(tmp.path(), "c");
    std::fs::remove_dir_all(c.join("jetstream/$G/streams/PURGED")).unwrap();
    let o = jetdir(&["diff", "--json", p(&a), p(&c), "--stream", "PURGED"]);
    assert_eq!(code(&o), 1);
    let s = &doc(&o)["streams"][0];
    assert_eq!(s["copies"][1]["present"], false);
    assert_eq!(s["copies"][1]["missing"], 2);
    assert_eq!(s["most_complete"], 0);

    // could not run: one path, a path that is nothing, a stream nobody has
    assert_eq!(code(&jetdir(&["diff", p(&a)])), 2);
    let o = jetdir(&["diff", "--json", p(&a), p(&tmp.path().join("nope"))]);
    assert_eq!(code(&o), 2);
    assert_eq!(doc(&o)["exit_code"], 2);
    assert_eq!(
        code(&jetdir(&["diff", p(&a), p(&b), "--stream", "NOPE"])),
        2
    );
    assert!(snapshot(&a) == a_before, "diff changed its input");
}

#[test]
fn salvage_of_healthy_streams_gives_the_same_messages() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = store_copy(tmp.path(), "store");
    let before = snapshot(&store);
    for stream in ["MULTI", "ORDERS", "KV_config", "PURGED"] {
        let out = tmp.path().join(format!("out-{stream}"));
        std::fs::create_dir_all(&out).unwrap();
        let o = jetdir(&[
            "salvage",
            "--json",
            p(&store),
            "--stream",
            stream,
            "-o",
            p(&out.join(stream)),
        ]);
        assert_eq!(
            code(&o),
            0,
            "{stream}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let d = doc(&o);
        assert_eq!(d["written"], true);
        assert_eq!(d["streams"][0]["lost"], 0);
        assert_eq!(
            messages(&out.join(stream), stream),
            messages(&store, stream),
            "{stream}"
        );
        // the same numbers as the input's
        let vi = doc(&jetdir(&[
            "verify",
            "--json",
            p(&store.join("jetstream/$G/streams").join(stream)),
        ]));
        let vo = doc(&jetdir(&["verify", "--json", p(&out.join(stream))]));
        assert_eq!(vo["ok"], true);
        for f in ["messages", "bytes", "first_seq", "last_seq", "deleted"] {
            assert_eq!(vo["streams"][0][f], vi["streams"][0][f], "{stream} {f}");
        }
        let names = |v: &Value| -> Vec<Value> {
            v["streams"][0]["consumers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    serde_json::json!([
                        c["name"],
                        c["delivered_stream_seq"],
                        c["ack_floor_stream_seq"]
                    ])
                })
                .collect()
        };
        assert_eq!(names(&vo), names(&vi), "{stream} consumers");
    }
    // from a tgz backup, and into every backup form
    for fmt in ["v1", "v2", "tgz"] {
        let out = tmp.path().join(format!(
            "ORDERS-{fmt}{}",
            if fmt == "tgz" { ".tgz" } else { "" }
        ));
        let o = jetdir(&[
            "salvage",
            p(&fixture("backups/ORDERS.tgz")),
            "-o",
            p(&out),
            "--format",
            fmt,
        ]);
        assert_eq!(code(&o), 0, "{fmt}: {}", String::from_utf8_lossy(&o.stdout));
        assert_eq!(
            messages(&out, "ORDERS"),
            messages(&store, "ORDERS"),
            "{fmt}"
        );
        assert_eq!(code(&jetdir(&["verify", p(&out)])), 0, "{fmt}");
    }
    // a V2 backup: read as extract reads it, then salvaged; consumers come along
    let v2 = fixture("backups/v2.15.1/ORDERS");
    let out = tmp.path().join("v2");
    std::fs::create_dir(&out).unwrap();
    let o = jetdir(&["salvage", "--json", p(&v2), "-o", p(&out.join("ORDERS"))]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let st = &doc(&o)["streams"][0];
    assert_eq!(st["source"], p(&v2));
    assert_eq!(st["consumers"].as_array().unwrap().len(), 2);
    assert_eq!(
        messages(&out.join("ORDERS"), "ORDERS"),
        messages(&v2, "ORDERS")
    );
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(left.len(), 1, "the private store is removed");
    assert!(snapshot(&store) == before, "salvage changed its input");
}

#[test]
fn salvage_past_damage_clamps_consumers_and_names_the_lost() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = store_copy(tmp.path(), "store");
    let sdir = store.join("jetstream/$G/streams/ORDERS");
    // cut the block after seq 3 (a torn write); no index.db: the server rebuilds
    let m: Value = serde_json::from_str(
        String::from_utf8_lossy(
            &jetdir(&[
                "dump",
                "--json",
                p(&store),
                "--stream",
                "ORDERS",
                "--seq",
                "4",
            ])
            .stdout,
        )
        .lines()
        .next()
        .unwrap(),
    )
    .unwrap();
    let blk = sdir.join(m["file"].as_str().unwrap());
    let b = std::fs::read(&blk).unwrap();
    std::fs::write(&blk, &b[..m["offset"].as_u64().unwrap() as usize + 10]).unwrap();
    std::fs::remove_file(sdir.join("msgs/index.db")).unwrap();
    let before = snapshot(&store);
    let out = tmp.path().join("ORDERS");
    let o = jetdir(&[
        "salvage",
        "--json",
        p(&store),
        "--stream",
        "ORDERS",
        "-o",
        p(&out),
    ]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stdout));
    let st = &doc(&o)["streams"][0];
    assert_eq!(st["last_seq"], 3);
    assert_eq!(st["messages"], 3);
    // C1 had delivered 5 (ack floor 3): clamped to the last surviving sequence
    let c1 = st["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "C1")
        .unwrap();
    assert_eq!(c1["delivered_stream_seq"], 3);
    assert_eq!(c1["ack_floor_stream_seq"], 3);
    assert_eq!(c1["clamped"], true);
    let v = doc(&jetdir(&["verify", "--json", p(&out)]));
    assert_eq!(v["ok"], true, "{v}");
    assert!(snapshot(&store) == before, "salvage changed its input");

    // a flipped byte (rebuild): the record is lost, everything after it is recovered
    let store2 = store_copy(tmp.path(), "store2");
    let o = jetdir(&[
        "dump",
        "--json",
        p(&store2),
        "--stream",
        "MULTI",
        "--seq",
        "35",
    ]);
    let m: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let mdir = store2.join("jetstream/$G/streams/MULTI");
    let blk = mdir.join(m["file"].as_str().unwrap());
    let mut b = std::fs::read(&blk).unwrap();
    let at = (m["offset"].as_u64().unwrap() + m["size"].as_u64().unwrap() - 9) as usize;
    b[at] ^= 0x55;
    std::fs::write(&blk, b).unwrap();
    std::fs::remove_file(mdir.join("msgs/index.db")).unwrap();
    let out = tmp.path().join("MULTI");
    let o = jetdir(&[
        "salvage",
        "--json",
        p(&store2),
        "--stream",
        "MULTI",
        "-o",
        p(&out),
    ]);
    assert_eq!(code(&o), 1);
    let st = &doc(&o)["streams"][0];
    assert_eq!(st["lost_ranges"], serde_json::json!([[35, 35]]));
    assert_eq!(st["served_by_input"], 73);
    assert_eq!(st["messages"], 97);
    assert_eq!(st["last_seq"], 100);
    let want: Vec<_> = messages(&fixture("v2.15.1-plain/store"), "MULTI")
        .into_iter()
        .filter(|m| m.0 != 35)
        .collect();
    assert_eq!(messages(&out, "MULTI"), want);
}

/// A stream the server skips (meta.inf changed, meta.sum no longer matches) is written again
/// with a fresh meta.sum: every message recovered, nothing lost.
#[test]
fn salvage_rewrites_a_stream_the_server_skips() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = store_copy(tmp.path(), "store");
    let meta = store.join("jetstream/$G/streams/ORDERS/meta.inf");
    let text = std::fs::read_to_string(&meta).unwrap();
    assert!(text.contains("\"max_consumers\":-1"));
    std::fs::write(
        &meta,
        text.replace("\"max_consumers\":-1", "\"max_consumers\":-2"),
    )
    .unwrap();
    let e = doc(&jetdir(&["explain", "--json", p(&store)]));
    let s = e["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ORDERS")
        .unwrap();
    assert_eq!(s["verdict"], "skipped");
    let out = tmp.path().join("ORDERS");
    let o = jetdir(&[
        "salvage",
        "--json",
        p(&store),
        "--stream",
        "ORDERS",
        "-o",
        p(&out),
    ]);
    assert_eq!(code(&o), 1);
    let st = &doc(&o)["streams"][0];
    assert_eq!(st["served_by_input"], 0);
    assert_eq!(st["recovered"], 8);
    assert_eq!(st["lost"], 0);
    assert_eq!(doc(&jetdir(&["verify", "--json", p(&out)]))["ok"], true);
    assert_eq!(
        messages(&out, "ORDERS"),
        messages(&fixture("v2.15.1-plain/store"), "ORDERS")
    );
}

#[test]
fn salvage_refusals_write_nothing() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = store_copy(tmp.path(), "store");
    // several streams, none named
    let o = jetdir(&[
        "salvage",
        "--json",
        p(&store),
        "-o",
        p(&tmp.path().join("X")),
    ]);
    assert_eq!(code(&o), 2);
    assert!(doc(&o)["error"].as_str().unwrap().contains("MULTI"));
    // OUT exists
    let exists = tmp.path().join("MULTI");
    std::fs::create_dir(&exists).unwrap();
    let o = jetdir(&["salvage", p(&store), "--stream", "MULTI", "-o", p(&exists)]);
    assert_eq!(code(&o), 2);
    assert_eq!(std::fs::read_dir(&exists).unwrap().count(), 0);
    // a dir not named after the stream
    let o = jetdir(&[
        "salvage",
        "--json",
        p(&store),
        "--stream",
        "MULTI",
        "-o",
        p(&tmp.path().join("other")),
    ]);
    assert_eq!(code(&o), 2);
    assert!(doc(&o)["refused"]
        .as_str()
        .unwrap()
        .contains("named after the stream"));
    // OUT's parent does not exist
    let o = jetdir(&[
        "salvage",
        p(&store),
        "--stream",
        "ORDERS",
        "-o",
        p(&tmp.path().join("no/ORDERS")),
    ]);
    assert_eq!(code(&o), 2);
    // nothing left behind: no OUT, no staging dir
    let left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, vec!["MULTI", "store"]);
}

#[test]
fn explain_tells_the_load_models_story() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = store_copy(tmp.path(), "store");
    let o = jetdir(&["explain", "--json", p(&store)]);
    assert_eq!(code(&o), 0);
    let d = doc(&o);
    assert_eq!(d["command"], "explain");
    for s in d["streams"].as_array().unwrap() {
        assert_eq!(s["verdict"], "loads");
        assert!(s["sentences"][0]
            .as_str()
            .unwrap()
            .contains("trusts msgs/index.db"));
        assert!(s["next_step"]
            .as_str()
            .unwrap()
            .starts_with("nothing to do"));
    }
    // one flipped byte at seq 35 of MULTI: trusted index.db (unreadable), then rebuilt (lost)
    let o = jetdir(&[
        "dump",
        "--json",
        p(&store),
        "--stream",
        "MULTI",
        "--seq",
        "35",
    ]);
    let m: Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let mdir = store.join("jetstream/$G/streams/MULTI");
    let blk = mdir.join(m["file"].as_str().unwrap());
    let mut b = std::fs::read(&blk).unwrap();
    let at = (m["offset"].as_u64().unwrap() + m["size"].as_u64().unwrap() - 9) as usize;
    b[at] ^= 0x55;
    std::fs::write(&blk, b).unwrap();
    let story = |path: &Path, sv: Option<&str>| -> (i32, Value) {
        let mut args = vec!["explain", "--json", p(path)];
        if let Some(v) = sv {
            args.extend(["--server-version", v]);
        }
        let o = jetdir(&args);
        let d = doc(&o);
        let s = d["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "MULTI")
            .unwrap()
            .clone();
        (code(&o), s)
    };
    let (rc, s) = story(&store, None);
    assert_eq!(rc, 1);
    assert_eq!(s["verdict"], "loses_data");
    let text = s["sentences"].to_string();
    assert!(
        text.contains("sequence 35") && text.contains("no message found"),
        "{text}"
    );
    assert!(s["next_step"].as_str().unwrap().contains("jetdir salvage"));
    let (_, s) = story(&store, Some("2.12.8"));
    assert_eq!(s["release"], "2.12.8");
    std::fs::remove_file(mdir.join("msgs/index.db")).unwrap();
    let (rc, s) = story(&store, None);
    assert_eq!(rc, 1);
    let text = s["sentences"].to_string();
    assert!(
        text.contains("rebuilds") && text.contains("loses 26 messages: sequences 35..60"),
        "{text}"
    );
    // the human form: one block per stream, the verdict first, the next step last
    let o = jetdir(&["explain", p(&mdir)]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.starts_with("$G > MULTI: loses data\n"), "{t}");
    assert!(
        t.trim_end()
            .lines()
            .last()
            .unwrap()
            .trim_start()
            .starts_with("Next: "),
        "{t}"
    );
    // could not run
    let o = jetdir(&["explain", "--json", p(&tmp.path().join("nope"))]);
    assert_eq!(code(&o), 2);
    assert_eq!(doc(&o)["exit_code"], 2);
}

/// `explain` of the erase-damaged compressed blocks of fixtures/m3-erased-cmp without
/// index.db tells each release's own story (what the real releases did is in the fixture's
/// releases.json): 2.15.1 does not load the stream because recovering it fails (not because
/// of meta.inf), 2.12.3 counts the block's messages but cannot serve them (no index.db is
/// involved), 2.12.2 drops the undecodable block of 2.11.0 and loses its sequences.
#[test]
fn explain_tells_why_an_erase_damaged_compressed_stream_loads_or_not() {
    let tmp = tempfile::TempDir::new().unwrap();
    let story = |writer: &str, release: &str| -> Value {
        let d = tmp.path().join(format!("{writer}-{release}")).join("CMP");
        copy_dir(&fixture(&format!("m3-erased-cmp/{writer}/CMP")), &d);
        std::fs::remove_file(d.join("msgs/index.db")).unwrap();
        let o = jetdir(&["explain", "--json", p(&d), "--server-version", release]);
        assert_eq!(code(&o), 1);
        doc(&o)["streams"][0].clone()
    };
    let s = story("v2.10.25", "2.15.1");
    assert_eq!(s["verdict"], "skipped");
    let text = s["sentences"].to_string();
    assert!(text.contains("recovering it fails"), "{text}");
    assert!(!text.contains("meta.sum"), "{text}");
    assert!(!s["next_step"].as_str().unwrap().contains("meta.sum"));
    let s = story("v2.10.25", "2.12.3");
    assert_eq!(s["verdict"], "loses_data");
    let text = s["sentences"].to_string();
    assert!(
        text.contains("It counts sequences 31..59 but cannot read their records"),
        "{text}"
    );
    assert!(!text.contains("from index.db"), "{text}");
    let s = story("v2.11.0", "2.12.2");
    assert_eq!(s["verdict"], "loses_data");
    let text = s["sentences"].to_string();
    assert!(
        text.contains("drops the block(s) it cannot decode") && text.contains("sequences 31..60"),
        "{text}"
    );
}

/// A stream whose config the modelled release does not support (a field of a later one) is
/// listed offline by 2.11.9+ (matrix `from_2.15.1` on 2.11.11): explain says so, and its next
/// step is a release that supports the config, not a restore.
#[test]
fn explain_tells_an_offline_stream_apart() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = store_copy(tmp.path(), "store");
    let d = store.join("jetstream/$G/streams/ORDERS");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("meta.inf")).unwrap()).unwrap();
    m["allow_msg_counter"] = serde_json::Value::Bool(true);
    let raw = serde_json::to_vec(&m).unwrap();
    std::fs::write(d.join("meta.inf"), &raw).unwrap();
    // meta.sum: HighwayHash-64 of meta.inf keyed by SHA-256 of the stream name, as hex
    let sum = jetdir::base::hash::hh64(&jetdir::base::hash::key_for("ORDERS"), &[&raw]);
    let hex: String = sum
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(d.join("meta.sum"), hex).unwrap();
    let o = jetdir(&[
        "explain",
        "--json",
        p(&store),
        "--server-version",
        "2.11.11",
    ]);
    assert_eq!(code(&o), 1);
    let d = doc(&o);
    let s = d["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ORDERS")
        .unwrap();
    assert_eq!(s["verdict"], "skipped", "{s:#}");
    assert!(
        s["sentences"][0].as_str().unwrap().contains("offline"),
        "{s:#}"
    );
    assert!(
        s["next_step"]
            .as_str()
            .unwrap()
            .contains("start a release that supports its config"),
        "{s:#}"
    );
}
