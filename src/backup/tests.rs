//! Tests over the real server-written backups in `fixtures/samples/` plus damaged and
//! hostile copies made here.
use super::detect::{detect, ArchiveKind, DetectError};
use super::natsarc::*;
use super::tar_walk::*;
use crate::base::problem::{Problem, Severity};
use crate::filestore::layout::StreamFile;
use std::io::Write;
use std::path::{Path, PathBuf};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/samples");

fn backup_dir(v: &str) -> PathBuf {
    PathBuf::from(format!("{SAMPLES}/backups/{v}/ORDERS"))
}

fn decoded(v: &str) -> Vec<u8> {
    let raw = std::fs::read(backup_dir(v).join("stream.tar.s2")).unwrap();
    crate::s2::decode_stream(&raw).unwrap()
}

fn frame(data: &[u8]) -> Vec<u8> {
    let mut w = crate::s2::FrameWriter::new(Vec::new());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn kinds(p: &[Problem]) -> Vec<&str> {
    p.iter().map(|p| p.kind.as_str()).collect()
}

fn opts() -> V2Options {
    V2Options {
        label: "stream.tar.s2".into(),
        stream: Some("ORDERS".into()),
        ..Default::default()
    }
}

/// All entries of a (well-formed) archive.
fn entries_of(arc: &[u8]) -> Vec<ArcEntry> {
    let mut r = NatsArcReader::new(arc).unwrap();
    let mut v = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        v.push(e);
    }
    v
}

fn write_arc(entries: &[ArcEntry], sentinel: bool) -> Vec<u8> {
    let mut w = NatsArcWriter::new(Vec::new()).unwrap();
    for e in entries {
        w.write_entry(&e.name, e.timestamp, e.seq, &e.header, &e.payload)
            .unwrap();
    }
    if sentinel {
        w.finish().unwrap()
    } else {
        // Reach into the writer's output without the sentinel.
        let mut out = w.finish().unwrap();
        out.truncate(out.len() - 5);
        out
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
    let mut v = src.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
        }
        1 => v.truncate(rng.below(v.len())),
        2 => {
            let i = rng.below(v.len());
            let n = rng.below(64);
            v.splice(i..i, (0..n).map(|_| rng.next() as u8));
        }
        _ => {
            let i = rng.below(v.len());
            let j = (i + rng.below(600)).min(v.len());
            v.drain(i..j);
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// V2 / NATSARC1

#[test]
fn v2_sample_entries_exact() {
    let arc = decoded("v2.15.1");
    assert_eq!(arc.len(), 27422);
    let mut r = NatsArcReader::new(arc.as_slice()).unwrap();
    let mut names = Vec::new();
    let mut seqs = Vec::new();
    let mut with_hdr = 0;
    let mut first_offsets = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        if e.seq > 0 {
            seqs.push(e.seq);
            if !e.header.is_empty() {
                with_hdr += 1;
                assert!(e.header.starts_with(b"NATS/1.0\r\n") && e.header.ends_with(b"\r\n\r\n"));
            }
        }
        if first_offsets.len() < 3 {
            first_offsets.push(e.offset);
        }
        names.push(e.name_lossy());
    }
    assert!(r.at_end());
    assert_eq!(r.position(), 27422);
    assert_eq!(r.trailing_bytes().unwrap(), 0);
    // 302 entries = state.json + 2 consumers + 298 messages + sentinel.
    assert_eq!(names.len() + 1, 302);
    assert_eq!(
        &names[..3],
        ["state.json", "consumers/SHIP", "consumers/AUDIT"]
    );
    assert_eq!(first_offsets[0], 8);
    assert_eq!(first_offsets[1], 8 + 14 + 10 + 199);
    assert_eq!(seqs.len(), 298);
    assert_eq!(with_hdr, 74);
    let want: Vec<u64> = (1..=300).filter(|s| *s != 100 && *s != 101).collect();
    assert_eq!(seqs, want);
    assert_eq!(names[3], "ORDERS.paid.1");
    assert_eq!(names[300], "ORDERS.new.0");
}

#[test]
fn v2_sample_structure_and_models() {
    // Stream straight from the file through the frame reader.
    let f = std::fs::File::open(backup_dir("v2.15.1").join("stream.tar.s2")).unwrap();
    let mut roles = [0u32; 4];
    let s = scan_v2(crate::s2::FrameReader::new(f), opts(), |_, role| {
        roles[role as usize] += 1;
    });
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(roles, [1, 2, 298, 0]);
    assert_eq!(s.entries, 301);
    assert!(s.sentinel);
    assert_eq!(s.trailing_bytes, 0);
    assert_eq!(s.archive_bytes, 27422);
    assert_eq!((s.messages, s.messages_with_headers), (298, 74));
    assert_eq!((s.first_msg_seq, s.last_msg_seq), (Some(1), Some(300)));
    // The file-store size formula reproduces the server's byte count.
    assert_eq!(s.stored_bytes, 31313);
    let st = s.state.as_ref().unwrap();
    assert_eq!(
        (st.messages, st.bytes, st.first_seq, st.last_seq),
        (298, 31313, 1, 300)
    );
    assert_eq!(
        (st.num_subjects, st.num_deleted, st.consumer_count),
        (Some(30), Some(2), Some(2))
    );
    assert_eq!(
        st.first_ts.as_deref(),
        Some("2026-11-24T01:24:42.570753125Z")
    );
    assert!(s.snapshot_ts.unwrap() > 1_795_000_000_000_000_000);

    let names: Vec<&str> = s.consumers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["SHIP", "AUDIT"]);
    let ship = s.consumers[0].entry.as_ref().unwrap();
    let cfg = ship.config.as_ref().unwrap();
    assert_eq!(cfg.durable_name.as_deref(), Some("SHIP"));
    assert_eq!(cfg.ack_policy.as_deref(), Some("explicit"));
    assert_eq!(cfg.filter_subject, None);
    assert_eq!(cfg.extra["ack_wait"], 3_600_000_000_000u64);
    assert_eq!(cfg.extra["metadata"]["_nats.req.level"], "0");
    let st = ship.state.as_ref().unwrap();
    assert_eq!(
        (st.delivered.consumer_seq, st.delivered.stream_seq),
        (61, 60)
    );
    assert_eq!(
        (st.ack_floor.consumer_seq, st.ack_floor.stream_seq),
        (50, 50)
    );
    let pending = st.pending.as_ref().unwrap();
    assert_eq!(
        pending.keys().copied().collect::<Vec<_>>(),
        [51, 52, 53, 54]
    );
    assert_eq!(pending[&51].sequence, 51);
    assert_eq!(pending[&51].timestamp, 1_795_483_482_585_806_991);
    assert_eq!(st.redelivered.as_ref().unwrap().get(&51), Some(&1));
    let audit = s.consumers[1].entry.as_ref().unwrap();
    assert_eq!(
        audit.config.as_ref().unwrap().filter_subject.as_deref(),
        Some("ORDERS.paid.>")
    );
    let ast = audit.state.as_ref().unwrap();
    assert_eq!((ast.delivered.stream_seq, ast.ack_floor.stream_seq), (0, 0));
    assert!(ast.pending.is_none() && ast.redelivered.is_none());
    // Unknown fields survive a round trip through the model.
    let back = serde_json::to_value(ship).unwrap();
    assert_eq!(back["config"]["max_ack_pending"], 1000);
    assert_eq!(
        back["state"]["pending"]["51"]["Timestamp"],
        1_795_483_482_585_806_991i64
    );
}

#[test]
fn v2_round_trip_byte_identical() {
    let arc = decoded("v2.15.1");
    let entries = entries_of(&arc);
    assert_eq!(write_arc(&entries, true), arc);
    let total: u64 = 8 + entries.iter().map(ArcEntry::encoded_len).sum::<u64>() + 5;
    assert_eq!(total, arc.len() as u64);
    // And through S2 framing.
    let framed = frame(&arc);
    assert_eq!(crate::s2::decode_stream(&framed).unwrap(), arc);
    // The small snapshot (chunk size 4096) in snapshots.tar.gz is V2 too; check it is sound.
    let dir = unpack_tgz(&format!("{SAMPLES}/snapshots.tar.gz"));
    let raw = std::fs::read(dir.path().join("snapshots/ORDERS-v2.15.1-V2.natsarc.s2")).unwrap();
    let s = check_v2_structure(crate::s2::decode_stream(&raw).unwrap().as_slice(), opts());
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(
        (
            s.messages,
            s.consumers.len(),
            s.first_msg_seq,
            s.last_msg_seq
        ),
        (8, 2, Some(1), Some(10))
    );
    assert_eq!(s.stored_bytes, 582);
}

fn check(arc: &[u8]) -> V2Summary {
    check_v2_structure(arc, opts())
}

#[test]
fn v2_damaged_copies() {
    let arc = decoded("v2.15.1");
    let entries = entries_of(&arc);
    assert_eq!(entries.len(), 301);

    // Truncated mid-entry (inside message 146's payload).
    let e146 = entries.iter().find(|e| e.seq == 146).unwrap();
    let cut = &arc[..e146.offset as usize + 20];
    let s = check(cut);
    assert_eq!(kinds(&s.problems), ["v2_truncated"]);
    assert_eq!(s.messages, 143);
    assert_eq!(s.problems[0].loc.offset, Some(e146.offset));
    assert!(!s.sentinel);
    // Truncated inside an entry header and inside the magic.
    assert_eq!(
        kinds(&check(&arc[..e146.offset as usize + 2]).problems),
        ["v2_truncated"]
    );
    assert_eq!(kinds(&check(&arc[..5]).problems), ["v2_truncated"]);
    assert_eq!(kinds(&check(b"").problems), ["v2_truncated"]);

    // Missing sentinel: cut exactly at an entry boundary.
    let s = check(&arc[..arc.len() - 5]);
    assert_eq!(kinds(&s.problems), ["v2_missing_sentinel"]);
    assert_eq!(s.problems[0].loc.offset, Some(arc.len() as u64 - 5));
    assert_eq!(s.messages, 298);

    // Trailing garbage after the sentinel: a warning only.
    let mut t = arc.clone();
    t.extend_from_slice(b"garbage!");
    let s = check(&t);
    assert_eq!(kinds(&s.problems), ["v2_trailing_data"]);
    assert_eq!(s.problems[0].severity, Severity::Warning);
    assert_eq!(s.trailing_bytes, 8);
    assert_eq!(s.problems[0].loc.offset, Some(arc.len() as u64));

    // state.json not first.
    let mut v = entries.clone();
    v.swap(0, 1);
    let s = check(&write_arc(&v, true));
    assert_eq!(kinds(&s.problems)[0], "v2_order");
    assert_eq!(
        s.problems[0].loc.file.as_deref(),
        Some("stream.tar.s2:consumers/SHIP")
    );

    // Duplicate consumer entry: one more consumer than state.json declares.
    let mut v = entries.clone();
    v.insert(2, entries[1].clone());
    let s = check(&write_arc(&v, true));
    assert_eq!(
        kinds(&s.problems),
        ["v2_consumer_duplicate", "v2_consumer_count"]
    );

    // Fewer consumer entries than declared.
    let mut v = entries.clone();
    v.remove(2);
    let s = check(&write_arc(&v, true));
    assert_eq!(kinds(&s.problems), ["v2_consumer_count"]);
    assert_eq!(
        s.problems[0].loc.file.as_deref(),
        Some("stream.tar.s2:ORDERS.paid.1")
    );

    // Duplicate message entry.
    let mut v = entries.clone();
    v.insert(10, entries[9].clone());
    let s = check(&write_arc(&v, true));
    assert_eq!(
        kinds(&s.problems),
        ["v2_seq_not_ascending", "v2_message_count"]
    );
    assert_eq!(s.problems[0].loc.seq, Some(entries[9].seq));

    // Descending sequences (two messages swapped).
    let mut v = entries.clone();
    v.swap(20, 21);
    let s = check(&write_arc(&v, true));
    assert_eq!(kinds(&s.problems), ["v2_seq_not_ascending"]);
    assert_eq!(s.problems[0].loc.seq, Some(entries[20].seq));

    // A message dropped (what 2.15.1 does with a corrupt record): count and bytes disagree.
    let mut v = entries.clone();
    v.remove(154);
    let s = check(&write_arc(&v, true));
    assert_eq!(kinds(&s.problems), ["v2_message_count"]);
    // The first message dropped.
    let mut v = entries.clone();
    v.remove(3);
    assert_eq!(
        kinds(&check(&write_arc(&v, true)).problems),
        ["v2_message_count", "v2_first_seq"]
    );

    // Sequence above state.json's last_seq, and a message without sequence.
    let mut v = entries.clone();
    v[300].seq = 301;
    assert_eq!(
        kinds(&check(&write_arc(&v, true)).problems),
        ["v2_seq_out_of_range"]
    );
    let mut v = entries.clone();
    v[50].seq = 0;
    assert_eq!(
        kinds(&check(&write_arc(&v, true)).problems),
        ["v2_seq_missing", "v2_message_count"]
    );

    // Broken JSON in state.json and in a consumer.
    let mut v = entries.clone();
    v[0].payload.truncate(30);
    assert_eq!(
        kinds(&check(&write_arc(&v, true)).problems),
        ["v2_state_json"]
    );
    let mut v = entries.clone();
    v[2].payload = br#"{"config":{"durable_name":"AUDIT"}}"#.to_vec();
    let s = check(&write_arc(&v, true));
    assert_eq!(kinds(&s.problems), ["v2_consumer_json"]);
    assert_eq!(s.problems[0].loc.consumer.as_deref(), Some("AUDIT"));

    // Message size over the stream's max_msg_size.
    let s = check_v2_structure(
        arc.as_slice(),
        V2Options {
            max_msg_size: Some(60),
            ..opts()
        },
    );
    assert!(!s.problems.is_empty() && s.problems.iter().all(|p| p.kind == "v2_msg_too_large"));

    // Bad magic; absurd sizes; absurd name length.
    let mut b = arc.clone();
    b[0] = b'X';
    assert_eq!(kinds(&check(&b).problems), ["v2_bad_magic"]);
    let mut huge = b"NATSARC1".to_vec();
    crate::base::bytes::put_uvarint(&mut huge, 3);
    huge.extend_from_slice(&[0, 1]);
    crate::base::bytes::put_uvarint(&mut huge, 0);
    crate::base::bytes::put_uvarint(&mut huge, 1 << 40);
    assert_eq!(kinds(&check(&huge).problems), ["v2_entry_too_large"]);
    let mut long = b"NATSARC1".to_vec();
    crate::base::bytes::put_uvarint(&mut long, 1 << 30);
    long.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(kinds(&check(&long).problems), ["v2_entry_too_large"]);

    // A flipped byte in the compressed file: S2 CRC error, located in the compressed file.
    let mut raw = std::fs::read(backup_dir("v2.15.1").join("stream.tar.s2")).unwrap();
    raw[5000] ^= 0x40;
    let s = check_v2_structure(crate::s2::FrameReader::new(raw.as_slice()), opts());
    assert_eq!(kinds(&s.problems), ["s2_corrupt"]);
    assert_eq!(s.problems[0].loc.file.as_deref(), Some("stream.tar.s2"));
    // The compressed file cut short (interrupted transfer).
    let raw = std::fs::read(backup_dir("v2.15.1").join("stream.tar.s2")).unwrap();
    let s = check_v2_structure(crate::s2::FrameReader::new(&raw[..4000]), opts());
    assert_eq!(kinds(&s.problems), ["s2_truncated"]);
    // A reader that failed keeps failing.
    let mut r = NatsArcReader::new(&arc[..300]).unwrap();
    assert!(r.next_entry().unwrap().is_some());
    assert!(r.next_entry().is_err());
    assert!(r.next_entry().is_err());
}

#[test]
fn v2_random_mutations_never_panic() {
    let arc = decoded("v2.15.1");
    let raw = std::fs::read(backup_dir("v2.15.1").join("stream.tar.s2")).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut clean = 0;
    for i in 0..600 {
        let m = mutate(&mut rng, &arc);
        let s = check(&m);
        if s.problems.is_empty() {
            clean += 1;
        }
        if i % 4 == 0 {
            let m = mutate(&mut rng, &raw);
            let _ = check_v2_structure(crate::s2::FrameReader::new(m.as_slice()), opts());
        }
    }
    // Almost every mutation must be noticed (a flipped byte inside a JSON body or a message body
    // can go unnoticed: NATSARC1 has no checksums).
    assert!(clean < 300, "{clean} mutations went unnoticed");
}

// ---------------------------------------------------------------------------------------------
// tar

fn walk_all(tar: &[u8], o: &TarOptions) -> (TarSummary, Vec<(String, Vec<u8>)>) {
    let mut got = Vec::new();
    let s = walk_tar(tar, o, |m, r| {
        let mut b = Vec::new();
        r.read_to_end(&mut b)?;
        got.push((m.path.clone(), b));
        Ok(())
    });
    (s, got)
}

fn listing(s: &TarSummary) -> Vec<(String, u64)> {
    s.members.iter().map(|m| (m.path.clone(), m.size)).collect()
}

fn owned(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(p, s)| (p.to_string(), *s)).collect()
}

const V214: &[(&str, u64)] = &[
    ("meta.inf", 518),
    ("meta.sum", 16),
    ("msgs/1.blk", 31628),
    ("msgs/index.db", 868),
    ("obs/SHIP/meta.inf", 302),
    ("obs/SHIP/meta.sum", 16),
    ("obs/SHIP/o.dat", 27),
    ("obs/AUDIT/meta.inf", 341),
    ("obs/AUDIT/meta.sum", 16),
    ("obs/AUDIT/o.dat", 8),
];
const V29: &[(&str, u64)] = &[
    ("meta.inf", 419),
    ("meta.sum", 16),
    ("msgs/1.idx", 39),
    ("msgs/1.fss", 579),
    ("msgs/1.blk", 31568),
    ("obs/SHIP/meta.inf", 267),
    ("obs/SHIP/meta.sum", 16),
    ("obs/SHIP/o.dat", 27),
    ("obs/AUDIT/meta.inf", 306),
    ("obs/AUDIT/meta.sum", 16),
    ("obs/AUDIT/o.dat", 8),
];

#[test]
fn v1_samples_members_exact() {
    for (v, want, len) in [("v2.14", V214, 53760u64), ("v2.9", V29, 55296)] {
        let tar = decoded(v);
        assert_eq!(tar.len() as u64, len);
        let (s, got) = walk_all(&tar, &TarOptions::default());
        assert!(s.problems.is_empty(), "{v}: {:?}", s.problems);
        assert_eq!(listing(&s), owned(want), "{v}");
        assert!(s.end_marker && !s.aborted);
        assert_eq!(s.top_dir, None);
        assert_eq!(s.tar_bytes, len);
        assert_eq!(s.trailing_bytes, 512);
        for (path, bytes) in &got {
            let m = s.member(path).unwrap();
            assert_eq!(bytes.len() as u64, m.size);
            // Offsets point at the member's bytes in the tar.
            assert_eq!(
                &tar[m.offset as usize..m.offset as usize + bytes.len()],
                bytes.as_slice()
            );
        }
        let (_, sum) = got.iter().find(|(p, _)| p == "meta.sum").unwrap();
        assert!(sum.iter().all(u8::is_ascii_hexdigit));
        assert!(got[0].1.starts_with(b"{\"Created\":"));
        assert_eq!(
            s.members[2].layout,
            if v == "v2.14" {
                StreamFile::Block(1)
            } else {
                StreamFile::BlockIdx(1)
            }
        );
        assert_eq!(
            s.member("obs/SHIP/o.dat").unwrap().layout,
            StreamFile::ConsumerState("SHIP".into())
        );
        assert!(s.missing_required(&TarOptions::default()).is_empty());
    }
    // Without meta.inf.
    let tar = decoded("v2.14");
    let (full, _) = walk_all(&tar, &TarOptions::default());
    let ms = full.member("meta.sum").unwrap();
    let (s, _) = walk_all(
        &tar[ms.header_offset as usize - 1024..],
        &TarOptions::default(),
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(
        kinds(&s.missing_required(&TarOptions::default())),
        ["archive_missing_member"]
    );
    // Streaming from the compressed file, reading nothing in the callback.
    let f = std::fs::File::open(backup_dir("v2.14").join("stream.tar.s2")).unwrap();
    let s = walk_tar(
        crate::s2::FrameReader::new(f),
        &TarOptions::default(),
        |_, _| Ok(()),
    );
    assert!(s.problems.is_empty());
    assert_eq!(listing(&s), owned(V214));
}

/// Rebuild the V1 sample's members as a new tar (optionally under a top dir).
fn rebuild(v: &str, prefix: &str, extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let tar = decoded(v);
    let (_, got) = walk_all(&tar, &TarOptions::default());
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in &got {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("{prefix}{p}"), data.as_slice())
            .unwrap();
    }
    extra(&mut b);
    b.into_inner().unwrap()
}

/// Append a member whose name bytes are written raw (bypassing the builder's path checks).
fn raw_member(
    b: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
    data: &[u8],
    link: Option<&str>,
) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
    }
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// A stream dir tarred by its path in a store (`tar czf S.tgz jetstream/ACC/streams/ORDERS`,
/// or an absolute path, which tar stores without its `/`): the members are the stream dir's,
/// the top dir is the stream's name and the account is known (the key context of an
/// encrypted stream); a member outside that dir is refused.
#[test]
fn tarball_of_a_store_path_names_its_account() {
    for prefix in [
        "jetstream/ACC/streams/ORDERS/",
        "var/lib/nats/jetstream/ACC/streams/ORDERS/",
    ] {
        let tar = rebuild("v2.14", prefix, |b| {
            let mut h = tar::Header::new_ustar();
            h.set_size(1);
            h.set_mode(0o600);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, "jetstream/ACC/streams/OTHER/meta.inf", &b"x"[..])
                .unwrap();
        });
        let (s, _) = walk_all(&tar, &TarOptions::default());
        assert_eq!(listing(&s), owned(V214), "{prefix}");
        assert_eq!(s.top_dir.as_deref(), Some("ORDERS"), "{prefix}");
        assert_eq!(s.account_dir.as_deref(), Some("ACC"), "{prefix}");
        assert_eq!(s.problems.len(), 1, "{prefix}: {:?}", s.problems);
        assert!(s.problems[0].message.contains("outside"), "{prefix}");
    }
    // one top dir: no account
    let tar = rebuild("v2.14", "ORDERS/", |_| {});
    let (s, _) = walk_all(&tar, &TarOptions::default());
    assert_eq!(s.account_dir, None);
    // "streams" without an account before it is not a store path
    let tar = rebuild("v2.14", "streams/ORDERS/", |_| {});
    let (s, _) = walk_all(&tar, &TarOptions::default());
    assert!(s.members.is_empty(), "{:?}", listing(&s));
}

#[test]
fn tarball_with_top_dir_and_gzip() {
    let tar = rebuild("v2.14", "ORDERS/", |b| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, "ORDERS/msgs/", std::io::empty())
            .unwrap();
    });
    let (s, _) = walk_all(&tar, &TarOptions::default());
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(listing(&s), owned(V214));
    assert_eq!(s.top_dir.as_deref(), Some("ORDERS"));
    assert_eq!(s.directories, 1);
    // Without stripping every member is outside the layout.
    let (s, _) = walk_all(
        &tar,
        &TarOptions {
            strip_top_dir: false,
            ..Default::default()
        },
    );
    assert_eq!(s.members.len(), 0);
    assert_eq!(s.problems.len(), 10);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let tgz = gz.finish().unwrap();
    let s = walk_tar(
        flate2::read::GzDecoder::new(tgz.as_slice()),
        &TarOptions::default(),
        |_, _| Ok(()),
    );
    assert!(s.problems.is_empty());
    assert_eq!(listing(&s), owned(V214));
    // A corrupt gzip trailer is reported, not ignored.
    let mut bad = tgz.clone();
    let n = bad.len();
    bad[n - 6] ^= 1;
    let s = walk_tar(
        flate2::read::GzDecoder::new(bad.as_slice()),
        &TarOptions::default(),
        |_, _| Ok(()),
    );
    assert_eq!(kinds(&s.problems), ["archive_corrupt"]);
}

#[test]
fn hostile_members_refused() {
    type Add = Box<dyn Fn(&mut tar::Builder<Vec<u8>>)>;
    let cases: Vec<(&str, Add)> = vec![
        (
            "../evil",
            Box::new(|b| raw_member(b, b"../evil", tar::EntryType::Regular, b"x", None)),
        ),
        (
            "msgs/../../evil",
            Box::new(|b| raw_member(b, b"msgs/../../evil", tar::EntryType::Regular, b"x", None)),
        ),
        (
            "/etc/passwd",
            Box::new(|b| raw_member(b, b"/etc/passwd", tar::EntryType::Regular, b"x", None)),
        ),
        (
            "msgs//2.blk",
            Box::new(|b| raw_member(b, b"msgs//2.blk", tar::EntryType::Regular, b"x", None)),
        ),
        (
            "msgs/2.blk symlink",
            Box::new(|b| {
                raw_member(
                    b,
                    b"msgs/2.blk",
                    tar::EntryType::Symlink,
                    b"",
                    Some("/etc/passwd"),
                )
            }),
        ),
        (
            "msgs/2.blk hardlink",
            Box::new(|b| {
                raw_member(
                    b,
                    b"msgs/2.blk",
                    tar::EntryType::Link,
                    b"",
                    Some("meta.inf"),
                )
            }),
        ),
        (
            "fifo",
            Box::new(|b| raw_member(b, b"msgs/2.blk", tar::EntryType::Fifo, b"", None)),
        ),
        (
            "chardev",
            Box::new(|b| raw_member(b, b"msgs/2.blk", tar::EntryType::Char, b"", None)),
        ),
        (
            "blockdev",
            Box::new(|b| raw_member(b, b"msgs/2.blk", tar::EntryType::Block, b"", None)),
        ),
        (
            "duplicate",
            Box::new(|b| {
                raw_member(
                    b,
                    b"meta.sum",
                    tar::EntryType::Regular,
                    b"0123456789abcdef",
                    None,
                )
            }),
        ),
        (
            "outside layout",
            Box::new(|b| raw_member(b, b"run.sh", tar::EntryType::Regular, b"#!/bin/sh", None)),
        ),
        (
            "bad block name",
            Box::new(|b| raw_member(b, b"msgs/x.blk", tar::EntryType::Regular, b"x", None)),
        ),
        (
            "bad consumer name",
            Box::new(|b| raw_member(b, b"obs/a.b/o.dat", tar::EntryType::Regular, b"x", None)),
        ),
        (
            "non-utf8",
            Box::new(|b| raw_member(b, b"msgs/\xff.blk", tar::EntryType::Regular, b"x", None)),
        ),
        (
            "too large",
            Box::new(|b| {
                raw_member(
                    b,
                    b"msgs/9.blk",
                    tar::EntryType::Regular,
                    &[7u8; 5000],
                    None,
                )
            }),
        ),
    ];
    for (what, add) in cases {
        let tar = rebuild("v2.14", "", |b| add(b));
        let o = TarOptions {
            max_member_size: 4096 * 10,
            ..Default::default()
        };
        let o = if what == "too large" {
            TarOptions {
                max_member_size: 4096,
                ..Default::default()
            }
        } else {
            o
        };
        let mut seen = Vec::new();
        let s = walk_tar(tar.as_slice(), &o, |m, r| {
            seen.push(m.path.clone());
            std::io::copy(r, &mut std::io::sink())?;
            Ok(())
        });
        if what == "too large" {
            // msgs/1.blk (31628) is over the cap too, and comes first: an oversized member
            // stops the walk (skipping it would mean decompressing all of it).
            assert_eq!(kinds(&s.problems), ["archive_hostile_member"], "{what}");
            assert!(s.aborted, "{what}");
            assert!(s.problems[0].message.contains("the walk stops here"));
            continue;
        }
        assert_eq!(
            kinds(&s.problems),
            ["archive_hostile_member"],
            "{what}: {:?}",
            s.problems
        );
        assert_eq!(
            seen,
            V214.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>(),
            "{what}"
        );
        assert!(s.end_marker && !s.aborted, "{what}");
        let p = &s.problems[0];
        assert!(
            p.loc.file.as_deref().unwrap().starts_with("stream.tar.s2:"),
            "{what}"
        );
        let last = s.members.last().unwrap();
        assert_eq!(
            p.loc.offset,
            Some((last.offset + last.size).div_ceil(512) * 512),
            "{what}"
        );
    }
    // Symlink message names the target.
    let tar = rebuild("v2.14", "", |b| {
        raw_member(
            b,
            b"meta.key",
            tar::EntryType::Symlink,
            b"",
            Some("/etc/shadow"),
        )
    });
    let (s, _) = walk_all(&tar, &TarOptions::default());
    assert!(
        s.problems[0]
            .message
            .contains("symbolic link to \"/etc/shadow\""),
        "{}",
        s.problems[0].message
    );
}

#[test]
fn pax_and_gnu_long_names() {
    // GNU long name (> 100 bytes) for a legitimate path under a long top dir; PAX path override.
    let top = "A".repeat(120);
    let tar = rebuild("v2.9", &format!("{top}/"), |_| {});
    let (s, _) = walk_all(&tar, &TarOptions::default());
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(listing(&s), owned(V29));
    assert_eq!(s.top_dir.as_deref(), Some(top.as_str()));

    // PAX header whose path escapes.
    let mut b = tar::Builder::new(Vec::new());
    let rec = "path=../../etc/cron.d/x\n";
    let line = format!("{} {rec}", rec.len() + 3);
    raw_member(
        &mut b,
        b"PaxHeaders.0/meta.inf",
        tar::EntryType::XHeader,
        line.as_bytes(),
        None,
    );
    raw_member(&mut b, b"meta.inf", tar::EntryType::Regular, b"{}", None);
    let tar = b.into_inner().unwrap();
    let (s, got) = walk_all(&tar, &TarOptions::default());
    assert_eq!(kinds(&s.problems), ["archive_hostile_member"]);
    assert!(got.is_empty());
    assert_eq!(
        s.problems[0].loc.file.as_deref(),
        Some("stream.tar.s2:../../etc/cron.d/x")
    );

    // Oversized PAX header: refused, and the member it describes too.
    let mut b = tar::Builder::new(Vec::new());
    raw_member(
        &mut b,
        b"PaxHeaders.0/meta.inf",
        tar::EntryType::XHeader,
        &vec![b'a'; (1 << 20) + 1],
        None,
    );
    raw_member(&mut b, b"meta.inf", tar::EntryType::Regular, b"{}", None);
    let (s, got) = walk_all(&b.into_inner().unwrap(), &TarOptions::default());
    assert_eq!(
        kinds(&s.problems),
        ["archive_hostile_member", "archive_hostile_member"]
    );
    assert!(got.is_empty());
}

#[test]
fn tar_truncated_and_trailing() {
    let tar = decoded("v2.14");
    let (full, _) = walk_all(&tar, &TarOptions::default());
    let blk = full.member("msgs/1.blk").unwrap().clone();
    // Cut in the middle of msgs/1.blk.
    let (s, got) = walk_all(&tar[..blk.offset as usize + 1000], &TarOptions::default());
    assert_eq!(kinds(&s.problems), ["archive_truncated"]);
    assert!(s.aborted);
    assert_eq!(
        s.problems[0].loc.file.as_deref(),
        Some("stream.tar.s2:msgs/1.blk")
    );
    assert_eq!(got.len(), 2);
    // Cut inside a header.
    let (s, _) = walk_all(
        &tar[..blk.header_offset as usize + 100],
        &TarOptions::default(),
    );
    assert_eq!(kinds(&s.problems), ["archive_truncated"]);
    // Cut on a member boundary: no end-of-archive marker.
    let idx = full.member("msgs/index.db").unwrap();
    let end = (idx.offset + idx.size).div_ceil(512) * 512;
    let (s, _) = walk_all(&tar[..end as usize], &TarOptions::default());
    assert_eq!(kinds(&s.problems), ["archive_truncated"]);
    assert_eq!(listing(&s).len(), 4);
    // Trailing garbage after the end blocks; zero padding is fine.
    let mut t = tar.clone();
    t.extend_from_slice(&[0u8; 10240]);
    assert!(walk_all(&t, &TarOptions::default()).0.problems.is_empty());
    t.extend_from_slice(b"garbage");
    let (s, _) = walk_all(&t, &TarOptions::default());
    assert_eq!(kinds(&s.problems), ["archive_trailing_data"]);
    assert_eq!(s.problems[0].loc.offset, Some(53760 + 10240));
    // Header checksum broken.
    let mut c = tar.clone();
    c[blk.header_offset as usize] ^= 1;
    let (s, _) = walk_all(&c, &TarOptions::default());
    assert_eq!(kinds(&s.problems), ["archive_corrupt"]);
    assert_eq!(s.problems[0].loc.offset, Some(blk.header_offset));
    // S2 corruption underneath.
    let mut raw = std::fs::read(backup_dir("v2.14").join("stream.tar.s2")).unwrap();
    raw[7000] ^= 0x10;
    let s = walk_tar(
        crate::s2::FrameReader::new(raw.as_slice()),
        &TarOptions::default(),
        |_, _| Ok(()),
    );
    assert_eq!(kinds(&s.problems), ["s2_corrupt"]);
    // A callback error aborts the walk.
    let s = walk_tar(tar.as_slice(), &TarOptions::default(), |m, _| {
        if m.path == "msgs/1.blk" {
            Err(std::io::Error::other("stop"))
        } else {
            Ok(())
        }
    });
    assert!(s.aborted);
    assert_eq!(s.members.len(), 3);
}

#[test]
fn tar_random_mutations_never_panic() {
    let tar = decoded("v2.9");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..400 {
        let m = mutate(&mut rng, &tar);
        let _ = walk_all(&m, &TarOptions::default());
    }
}

// ---------------------------------------------------------------------------------------------
// detection

fn unpack_tgz(path: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let f = std::fs::File::open(path).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(d.path())
        .unwrap();
    d
}

fn kind(p: &Path) -> ArchiveKind {
    detect(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .kind
}

#[test]
fn detect_real_samples() {
    let d = detect(&backup_dir("v2.15.1")).unwrap();
    assert_eq!(d.kind, ArchiveKind::BackupDirV2);
    assert_eq!(d.kind.format(), Some("v2"));
    assert_eq!(
        d.payload.as_deref(),
        Some(backup_dir("v2.15.1").join("stream.tar.s2").as_path())
    );
    assert_eq!(
        d.backup_json.as_deref(),
        Some(backup_dir("v2.15.1").join("backup.json").as_path())
    );
    assert_eq!(kind(&backup_dir("v2.14")), ArchiveKind::BackupDirV1);
    assert_eq!(kind(&backup_dir("v2.9")), ArchiveKind::BackupDirV1);
    let bare = detect(&backup_dir("v2.15.1").join("stream.tar.s2")).unwrap();
    assert_eq!(bare.kind, ArchiveKind::BareV2);
    assert!(bare.backup_json.is_some());
    assert_eq!(
        kind(&backup_dir("v2.9").join("stream.tar.s2")),
        ArchiveKind::BareV1
    );
    // Each <server>/ is an account backup with one stream.
    let acc = detect(Path::new(&format!("{SAMPLES}/backups/v2.14"))).unwrap();
    assert_eq!(acc.kind, ArchiveKind::AccountBackupDir);
    assert_eq!(acc.streams.len(), 1);
    assert_eq!(acc.streams[0].kind, ArchiveKind::BackupDirV1);
    assert!(matches!(
        detect(Path::new(&format!("{SAMPLES}/backups"))),
        Err(DetectError::Unrecognised { .. })
    ));

    let snaps = unpack_tgz(&format!("{SAMPLES}/snapshots.tar.gz"));
    let sd = snaps.path().join("snapshots");
    assert_eq!(
        kind(&sd.join("ORDERS-v2.15.1-V2.natsarc.s2")),
        ArchiveKind::BareV2
    );
    assert_eq!(
        kind(&sd.join("ORDERS-v2.14.5-V1.tar.s2")),
        ArchiveKind::BareV1
    );
    assert_eq!(
        kind(&sd.join("ORDERS-v2.9.10-V1.tar.s2")),
        ArchiveKind::BareV1
    );
    assert!(detect(&sd.join("ORDERS-v2.9.10-V1.tar.s2"))
        .unwrap()
        .backup_json
        .is_none());

    // Stores are not archives.
    let st = unpack_tgz(&format!("{SAMPLES}/v2.15.1-plain.tar.gz"));
    let store = st.path().join("v2.15.1-plain/store");
    assert_eq!(kind(&store), ArchiveKind::StoreDir);
    assert!(kind(&store).is_store());
    assert_eq!(
        kind(&store.join("jetstream/$G")),
        ArchiveKind::StoreAccountDir
    );
    assert_eq!(
        kind(&store.join("jetstream/$G/streams/ORDERS")),
        ArchiveKind::StreamDir
    );
    // The sample tarball itself is a tgz (of a store, not a stream: the walker says so).
    assert_eq!(
        kind(Path::new(&format!("{SAMPLES}/v2.15.1-plain.tar.gz"))),
        ArchiveKind::Tgz
    );
}

#[test]
fn detect_made_up_inputs() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let tar = rebuild("v2.14", "ORDERS/", |_| {});
    std::fs::write(p.join("ORDERS.tar"), &tar).unwrap();
    assert_eq!(kind(&p.join("ORDERS.tar")), ArchiveKind::Tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    // Named misleadingly on purpose: content decides.
    std::fs::write(p.join("backup.tar"), gz.finish().unwrap()).unwrap();
    assert_eq!(kind(&p.join("backup.tar")), ArchiveKind::Tgz);
    std::fs::write(p.join("x.tgz"), &tar).unwrap();
    assert_eq!(kind(&p.join("x.tgz")), ArchiveKind::Tar);
    // Raw NATSARC1 and gzip of non-tar are refused with a reason.
    std::fs::write(p.join("raw"), decoded("v2.15.1")).unwrap();
    match detect(&p.join("raw")) {
        Err(DetectError::Unrecognised { why, .. }) => assert!(why.contains("NATSARC1")),
        other => panic!("{other:?}"),
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"hello").unwrap();
    std::fs::write(p.join("h.gz"), gz.finish().unwrap()).unwrap();
    assert!(matches!(
        detect(&p.join("h.gz")),
        Err(DetectError::Unrecognised { .. })
    ));
    assert!(matches!(
        detect(&p.join("nope")),
        Err(DetectError::NotFound(_))
    ));
    // Interrupted backup: both files empty.
    let ib = p.join("interrupted");
    std::fs::create_dir(&ib).unwrap();
    std::fs::write(ib.join("backup.json"), b"").unwrap();
    std::fs::write(ib.join("stream.tar.s2"), b"").unwrap();
    let det = detect(&ib).unwrap();
    assert_eq!(det.kind, ArchiveKind::BackupDirUnknown);
    assert!(det.reason.unwrap().contains("empty"));
    // backup.json without payload.
    let nb = p.join("nopayload");
    std::fs::create_dir(&nb).unwrap();
    std::fs::copy(
        backup_dir("v2.14").join("backup.json"),
        nb.join("backup.json"),
    )
    .unwrap();
    let det = detect(&nb).unwrap();
    assert_eq!(
        (det.kind, det.payload),
        (ArchiveKind::BackupDirUnknown, None)
    );
    // Payload whose only chunk fails its CRC: still a backup dir, format unknown.
    let cb = p.join("crc");
    std::fs::create_dir(&cb).unwrap();
    let mut raw = std::fs::read(backup_dir("v2.15.1").join("stream.tar.s2")).unwrap();
    raw[100] ^= 1;
    std::fs::write(cb.join("stream.tar.s2"), raw).unwrap();
    let det = detect(&cb).unwrap();
    assert_eq!(det.kind, ArchiveKind::BackupDirUnknown);
    assert!(det.backup_json.is_none());
    // Snappy-framed NATSARC1 (what a packer may write) is V2.
    std::fs::write(p.join("framed"), frame(&decoded("v2.15.1"))).unwrap();
    assert_eq!(kind(&p.join("framed")), ArchiveKind::BareV2);
    // Account backup: the three sample backups side by side, plus a stray dir.
    let acc = p.join("acc");
    for v in ["v2.15.1", "v2.14", "v2.9"] {
        let sd = acc.join(v.replace('.', "_"));
        std::fs::create_dir_all(&sd).unwrap();
        for f in ["backup.json", "stream.tar.s2"] {
            std::fs::copy(backup_dir(v).join(f), sd.join(f)).unwrap();
        }
    }
    std::fs::create_dir(acc.join("zz-notes")).unwrap();
    let det = detect(&acc).unwrap();
    assert_eq!(det.kind, ArchiveKind::AccountBackupDir);
    let ks: Vec<ArchiveKind> = det.streams.iter().map(|s| s.kind).collect();
    assert_eq!(
        ks,
        [
            ArchiveKind::BackupDirV1,
            ArchiveKind::BackupDirV2,
            ArchiveKind::BackupDirV1
        ]
    );
    assert!(det.reason.unwrap().contains("zz-notes"));
}

/// Every problem and every entry a V2 scan hands out, as text (for comparing two scans).
fn scan_trace<R: std::io::BufRead>(r: R, skip: bool) -> (Vec<String>, Vec<String>) {
    let o = V2Options {
        skip_message_payloads: skip,
        ..opts()
    };
    let mut seen = Vec::new();
    let s = scan_v2(r, o, |e, role| {
        seen.push(format!(
            "{role:?} {:?} {} {} {} {:?} {} @{}",
            e.name,
            e.timestamp,
            e.seq,
            e.header.len(),
            e.header.get(..8),
            e.payload_len,
            e.offset
        ));
    });
    let mut p: Vec<String> = s.problems.iter().map(|p| format!("{p:?}")).collect();
    p.push(format!(
        "{} {} {:?} {:?} {}",
        s.entries, s.messages, s.first_msg_seq, s.last_msg_seq, s.stored_bytes
    ));
    (p, seen)
}

#[test]
fn v2_scan_same_with_skipped_payloads_and_with_a_tiny_buffer() {
    // the entry head taken from the buffer in one step (a slice holds everything), field by
    // field (a 7-byte buffer), and message payloads consumed without a copy: the same entries,
    // lengths, offsets, problems and totals on the sample and on damaged copies of it
    let arc = decoded("v2.15.1");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut inputs = vec![arc.clone()];
    for _ in 0..400 {
        inputs.push(mutate(&mut rng, &arc));
    }
    for (i, m) in inputs.iter().enumerate() {
        let whole = scan_trace(m.as_slice(), false);
        let tiny = scan_trace(std::io::BufReader::with_capacity(7, m.as_slice()), false);
        let skipped = scan_trace(m.as_slice(), true);
        let skipped_tiny = scan_trace(std::io::BufReader::with_capacity(7, m.as_slice()), true);
        assert_eq!(whole, tiny, "input {i}: 7-byte buffer");
        assert_eq!(whole, skipped, "input {i}: payloads skipped");
        assert_eq!(whole, skipped_tiny, "input {i}: both");
        if i == 0 {
            assert!(
                whole.0.len() == 1 && whole.1.len() > 10,
                "the sample is clean"
            );
        }
    }
}
