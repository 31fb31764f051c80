//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz; see README "Fuzzing"): one per
//! parser, each over `&[u8]`, running the parser as jetdir's checks do and asserting what must
//! hold on any input (never a panic; error offsets inside the input; the streaming and in-memory
//! S2 readers agree). Not part of jetdir's API: the functions exist so the fuzz crate can reach
//! crate-private parsers without making them public.
use crate::backup::{backup_json, manifest, natsarc, tar_walk};
use crate::base::progress::NoProgress;
use crate::filestore::{
    aux_state, block, config_fields, consumer_state, index_db, legacy, meta, raft,
};
use crate::s2;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Stream name used for record / index keys of the single-file targets.
const STREAM: &str = "FUZZ";
/// Decoded output a fuzz input may produce before the S2 targets stop comparing.
const MAX_DECODED: u64 = 64 << 20;

/// Records of a plain block, as `verify` scans them (checksums, content checks, resync after
/// damage, and the scan of `state::scan`).
pub fn block_plain(data: &[u8]) {
    records(data);
    scan(data);
}

/// An on-disk `cmp` (S2-compressed) block: decompressed, then its records as in [`block_plain`].
pub fn block_cmp(data: &[u8]) {
    match block::plain_block(data) {
        Ok((plain, compressed)) => {
            assert_eq!(compressed, block::is_cmp_block(data));
            assert!(plain.len() as u64 <= block::MAX_PLAIN_BLOCK);
            records(&plain);
        }
        Err(e) => assert!(e.offset() <= data.len() as u64, "{e}"),
    }
    scan(data);
}

fn records(plain: &[u8]) {
    let key = block::block_key(STREAM, 1);
    for r in block::Records::new(plain) {
        match r {
            Ok(r) => {
                assert!(r.offset + r.len as usize <= plain.len());
                let _ = (r.kind(), r.checksum_ok(&key), r.content_issue());
                let _ = block::is_utf8(r.subject);
            }
            Err(e) => {
                assert!(e.offset <= plain.len(), "{e}");
                if let Some(at) = block::resync(plain, e.offset + 1, &key, (0, u64::MAX)) {
                    assert!(at > e.offset && at < plain.len());
                }
            }
        }
    }
}

fn scan(raw: &[u8]) {
    let dead = crate::state::scan::DeadSet::default();
    for (quick, stop_at_damage) in [(false, false), (true, true)] {
        let ctx = crate::state::scan::ScanCtx {
            account: "$G",
            stream: STREAM,
            dead: &dead,
            quick,
            file_prefix: "",
            keep_live: true,
            stop_at_damage,
            cmp: Default::default(),
        };
        let sc = crate::state::scan::scan_block(&ctx, 1, raw);
        let _ = serde_json::to_vec(&sc.problems);
    }
}

/// One S2 block (`decode_block`): on error the output is unchanged; a block the Snappy reference
/// (`snap`, in the fuzz crate) accepts must decode to the same bytes; what decodes re-encodes
/// with jetdir's encoder and decodes back to the same bytes. `snappy` is the reference
/// decoder's output, when it accepted the block.
pub fn s2_block(data: &[u8], snappy: Option<&[u8]>) {
    let mut dst = b"prefix".to_vec();
    match s2::decode_block(data, &mut dst) {
        Ok(()) => {
            let out = &dst[6..];
            if let Some(r) = snappy {
                assert_eq!(out, r, "snappy and S2 decoders disagree");
            }
            let enc = s2::encode::encode_block(out);
            let mut back = Vec::new();
            s2::decode_block(&enc, &mut back).expect("re-encoded block decodes");
            assert_eq!(back, out, "encode/decode round trip");
        }
        Err(e) => {
            assert_eq!(dst, b"prefix", "output changed on error");
            assert!(e.offset() <= data.len() as u64, "{e}");
            if let Some(r) = snappy {
                assert!(
                    r.len() > s2::MAX_RAW_BLOCK,
                    "snappy accepts a block S2 rejects: {e}"
                );
            }
        }
    }
}

/// A framed S2 / Snappy stream: the in-memory decoder, the streaming [`s2::FrameReader`] and the
/// parallel reader archives use must produce the same bytes and the same first error.
pub fn s2_frame(data: &[u8]) {
    let mem = s2::decode_stream_limited(data, MAX_DECODED);
    if let Err(e) = &mem {
        assert!(e.offset() <= data.len() as u64, "{e}");
    }
    let seq = read_limited(s2::FrameReader::new(data), "FrameReader");
    compare(&mem, &seq, "FrameReader");
    let par = read_limited(
        s2::par::ParFrameReader::new(std::io::Cursor::new(data.to_vec()), 2),
        "ParFrameReader",
    );
    compare(&mem, &par, "ParFrameReader");
}

/// Reads up to [`MAX_DECODED`] bytes: `(output, first error)`.
fn read_limited(r: impl Read, _what: &str) -> (Vec<u8>, Option<s2::S2Error>, bool) {
    let mut out = Vec::new();
    let mut lim = r.take(MAX_DECODED + 1);
    let err = match lim.read_to_end(&mut out) {
        Ok(_) => None,
        Err(e) => Some(
            s2::s2_error_of(&e)
                .cloned()
                .unwrap_or_else(|| panic!("non-S2 error from an in-memory reader: {e}")),
        ),
    };
    let over = out.len() as u64 > MAX_DECODED;
    (out, err, over)
}

fn compare(
    mem: &Result<Vec<u8>, s2::S2Error>,
    (out, err, over): &(Vec<u8>, Option<s2::S2Error>, bool),
    what: &str,
) {
    match (mem, err) {
        (Ok(v), None) => assert!(v == out, "{what}: output differs"),
        (Err(s2::S2Error::TooLarge { .. }), _) if *over => {}
        (Err(a), Some(b)) => {
            assert_eq!(a, b, "{what}: first error differs");
            assert!(
                out.len() as u64 <= MAX_DECODED,
                "{what}: output past the limit"
            );
        }
        (Ok(_), Some(b)) => panic!("{what} fails ({b}) where decode_stream succeeds"),
        (Err(a), None) => panic!("{what} succeeds where decode_stream fails ({a})"),
    }
}

/// `msgs/index.db`: the trailer, the body of every version, the stream-name checksum.
pub fn index_db(data: &[u8]) {
    let _ = index_db::trailer_ok(data, STREAM);
    if let Ok((body, _)) = index_db::split_trailer(data) {
        check_index_body(body);
    }
    check_index_body(data);
}

fn check_index_body(body: &[u8]) {
    match index_db::parse_with_len(body) {
        Ok((_, used)) => {
            assert!(used <= body.len());
        }
        Err(e) => assert!(e.offset() <= body.len(), "{e}"),
    }
}

/// Legacy (2.9) `N.idx` and `N.fss`.
pub fn legacy(data: &[u8]) {
    match legacy::parse_idx(data) {
        Ok(x) => {
            let _ = x.consistent();
        }
        Err(e) => assert!(e.offset() <= data.len(), "{e}"),
    }
    if let Err(e) = legacy::parse_fss(data, STREAM, 1) {
        assert!(e.offset() <= data.len(), "{e}");
    }
}

/// A consumer's `o.dat`.
pub fn consumer_state(data: &[u8]) {
    match consumer_state::parse(data) {
        Ok(Some(_)) => {}
        Ok(None) => assert!(data.is_empty()),
        Err(e) => assert!(e.offset() <= data.len(), "{e}"),
    }
}

/// Raft group files of a clustered node (`peers.idx`, `tav.idx`, the commit index, a snapshot
/// and its name): the first byte picks the parser, the rest is its input.
pub fn raft(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let within = |e: crate::base::bytes::ParseError| assert!(e.offset() <= rest.len(), "{e}");
    match which % 12 {
        0 => match raft::parse_peers(rest) {
            Ok(p) => assert!(p.peers.len() * raft::PEER_ID_LEN <= rest.len()),
            Err(e) => within(e),
        },
        1 => {
            if let Err(e) = raft::parse_tav(rest) {
                within(e);
            }
        }
        2 => match raft::parse_commit_idx(rest, "S-R1F-abcdefgh") {
            Ok(c) => assert_eq!(rest.len(), 16, "{c:?}"),
            Err(e) => within(e),
        },
        3 => match raft::parse_snapshot(rest, "S-R1F-abcdefgh") {
            Ok(s) => {
                assert!(s.data_offset + s.data.len() + 8 == rest.len());
                let _ = s.peers();
            }
            Err(e) => within(e),
        },
        5 => match raft::parse_append_entry(rest) {
            Ok(ae) => {
                let used: usize = ae.entries.iter().map(|e| 5 + e.data.len()).sum();
                assert!(42 + used <= rest.len());
            }
            Err(e) => within(e),
        },
        // the meta group's assignments: snapshot data and WAL ops, then applied
        6 => {
            if let Ok(mut a) = crate::filestore::meta_assign::decode_snapshot(rest) {
                if let Ok(op) = crate::filestore::meta_assign::decode_op(rest) {
                    crate::filestore::meta_assign::apply(&mut a, op);
                }
            }
        }
        7 => {
            if let Ok(op) = crate::filestore::meta_assign::decode_op(rest) {
                crate::filestore::meta_assign::apply(&mut Default::default(), op);
            }
        }
        // stream groups: a WAL entry's op, a snapshot's stream state
        8 => match crate::filestore::stream_group::decode_op(rest) {
            Ok(crate::filestore::stream_group::StreamOp::Msg(m)) => {
                assert!(m.compressed || m.hdr_len + m.msg_len + 27 <= rest.len());
                let _ = m.seq(u64::MAX);
            }
            Ok(_) => {}
            Err(e) => within(e),
        },
        9 => {
            if let Err(e) = crate::filestore::stream_group::decode_snapshot(rest) {
                within(e);
            }
        }
        // consumer groups: ops replayed onto a state, a snapshot (o.dat encoding) applied
        10 => {
            use crate::filestore::consumer_group::{decode_op, AckPolicy, ApplyRules, Replay};
            let mut r = Replay::default();
            let mut at = 0;
            // consecutive ops, each prefixed by its length byte
            while at < rest.len() {
                let n = usize::from(rest[at]);
                let Some(op) = rest.get(at + 1..at + 1 + n) else {
                    break;
                };
                match decode_op(op) {
                    Ok(op) => {
                        let old =
                            ApplyRules::of(Some(&crate::base::release::Release::new(2, 10, 0)));
                        for p in [AckPolicy::Explicit, AckPolicy::All, AckPolicy::None] {
                            r.clone().apply(&op, p, 3, ApplyRules::of(None));
                            r.clone().apply(&op, p, 3, old);
                        }
                        r.apply(&op, AckPolicy::Explicit, -1, ApplyRules::of(None));
                    }
                    Err(e) => assert!(e.offset() <= op.len(), "{e}"),
                }
                at += 1 + n;
            }
            // from an empty state, explicit acks never lift the floor past delivered, and
            // every pending message lies at or below delivered
            assert!(r.ack_floor.stream_seq <= r.delivered.stream_seq, "{r:?}");
            assert!(
                r.pending.keys().all(|&s| s <= r.delivered.stream_seq),
                "{r:?}"
            );
        }
        11 => {
            if let Ok(Some(st)) = crate::filestore::consumer_state::parse(rest) {
                let mut r = crate::filestore::consumer_group::Replay::default();
                if r.apply_snapshot(&st) {
                    assert_eq!(r.delivered, st.delivered);
                }
            }
        }
        _ => {
            if let Ok(n) = std::str::from_utf8(rest) {
                let _ = raft::parse_snapshot_name(n);
            }
        }
    }
}

/// `meta.inf` (stream and consumer) with its `meta.sum`, and the config judged per release.
pub fn meta(data: &[u8]) {
    if let Ok(m) = meta::MetaInf::parse(data) {
        let _ = (m.name(), m.i64_field("max_msgs"), m.str_field("storage"));
    }
    let sum = meta::expected_sum(STREAM, data);
    assert_eq!(sum.len(), 16);
    let r29 = crate::base::release::Release::parse("2.9.10").ok();
    for doc in [
        config_fields::ConfigDoc::StreamMeta,
        config_fields::ConfigDoc::StreamConfig,
        config_fields::ConfigDoc::ConsumerMeta,
    ] {
        for rel in [None, r29.as_ref()] {
            if let Ok(c) = config_fields::check_bytes(data, doc, rel) {
                let loc = crate::base::problem::Location::default();
                let _ = (c.offline(), config_fields::problems(&c, "meta.inf", &loc));
            }
        }
    }
}

/// `msgs/thw.db`, `msgs/sched.db` and `sources.db`.
pub fn aux_state(data: &[u8]) {
    if let Err(e) = aux_state::parse_thw(data) {
        assert!(e.offset() <= data.len(), "{e}");
    }
    if let Err(e) = aux_state::parse_sched(data) {
        assert!(e.offset() <= data.len(), "{e}");
    }
    if let Err(e) = aux_state::parse_sources(data) {
        assert!(e.offset() <= data.len(), "{e}");
    }
    // the walks of the old releases' decoders (does the server get past this file at start?)
    let _ = aux_state::sched_panics_unchecked_decoder(data);
    if let Some(steps) = aux_state::thw_steps_unchecked_decoder(data) {
        assert!(steps > 0, "a walk of no step is no walk past the end");
    }
}

/// A message schedule (`Nats-Schedule`, with `Nats-Schedule-Time-Zone`: header values read
/// from stored records, so hostile): 16 bytes of message time and clock (i64 LE each), then
/// the pattern, then after a NUL the zone. Never a panic or a hang (the cron search is bounded
/// to five years); a fire time is never before the message's second.
pub fn schedule(data: &[u8]) {
    use crate::state::schedule::{next_fire, Fire};
    if data.len() < 16 {
        return;
    }
    let ts = i64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    let now = i64::from_le_bytes(data[8..16].try_into().unwrap_or_default());
    let rest = String::from_utf8_lossy(&data[16..]);
    let (pattern, zone) = match rest.split_once('\0') {
        Some((p, z)) => (p, Some(z)),
        None => (rest.as_ref(), None),
    };
    if let Fire::At(t) = next_fire(pattern, zone, ts, now) {
        if !pattern.starts_with("@at ") && ts < i64::MAX - 1_000_000_000 {
            let second = i128::from(ts.div_euclid(1_000_000_000)) * 1_000_000_000;
            assert!(i128::from(t) >= second, "{pattern:?} at {ts}: fires at {t}");
        }
    }
}

/// The tar walker (V1 payloads, `.tar`, decompressed `.tgz`): every member it accepts has a
/// safe relative path of the stream layout and yields at most its declared size.
pub fn tar_walk(data: &[u8]) {
    for strip in [true, false] {
        let opts = tar_walk::TarOptions {
            max_member_size: 1 << 20,
            max_members: 10_000,
            strip_top_dir: strip,
            ..Default::default()
        };
        let sum = tar_walk::walk_tar(data, &opts, |m, r| {
            assert!(!m.path.is_empty() && !m.path.starts_with('/'));
            assert!(
                m.path
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != ".."),
                "unsafe member path {:?}",
                m.path
            );
            assert!(m.size <= opts.max_member_size);
            let n = std::io::copy(r, &mut std::io::sink())?;
            assert!(
                n <= m.size,
                "member {} gave {n} of {} bytes",
                m.path,
                m.size
            );
            Ok(())
        });
        assert!(sum.members.len() as u64 <= opts.max_members);
        let _ = sum.missing_required(&opts);
    }
}

/// A decoded V2 (`NATSARC1`) archive: the reader and the restore-order checks.
pub fn natsarc(data: &[u8]) {
    let mut opts = natsarc::V2Options::new("stream.tar.s2");
    opts.max_msg_size = Some(1 << 20);
    let mut n = 0u64;
    let sum = natsarc::scan_v2(data, opts, |e, _role| {
        n += 1;
        assert!(e.offset < data.len() as u64);
        assert!(e.encoded_len() <= data.len() as u64);
    });
    assert_eq!(sum.entries, n);
    assert!(sum.messages <= sum.entries);
    assert!(sum.archive_bytes <= data.len() as u64);
}

/// `backup.json`.
pub fn backup_json(data: &[u8]) {
    match backup_json::parse_backup_json(data) {
        Ok(b) => {
            let _ = (b.stream_name(), b.max_msg_size());
        }
        Err(e) => {
            let _ = e.kind();
            if let Some(o) = e.offset() {
                assert!(o <= data.len() as u64, "{e}");
            }
        }
    }
}

/// `manifest.json` of a pack output, checked against two files beside it.
pub fn manifest(data: &[u8]) {
    let dir = scratch("manifest");
    let _ = std::fs::write(dir.join("backup.json"), b"{}\n");
    let _ = std::fs::write(dir.join("stream.tar.s2"), b"");
    let _ = std::fs::write(dir.join(manifest::MANIFEST_NAME), data);
    let _ = manifest::self_hash(data);
    let problems = manifest::check_manifest(&dir).expect("a manifest is there");
    let _ = serde_json::to_vec(&problems);
}

/// The whole `verify` of a store: `data` is a [`files`] container of paths under the store dir
/// (`jetstream/<account>/streams/<stream>/...`), written to a scratch dir. The first byte's low
/// bit chooses `--quick`.
pub fn verify_store(data: &[u8]) {
    let (flags, rest) = data.split_first().unwrap_or((&0, &[]));
    let dir = scratch("store");
    write_files(&dir, rest);
    let opts = crate::check::Options {
        quick: flags & 1 == 1,
        ..Default::default()
    };
    if let Ok(rep) = crate::check::verify_path(&dir, &opts, &NoProgress) {
        let _ = serde_json::to_vec(&rep);
    }
}

/// The whole `verify` of a backup. First byte even: the rest is one file (a `.tgz`, `.tar` or
/// bare `stream.tar.s2`); odd: a [`files`] container making a backup directory
/// (`backup.json`, `stream.tar.s2`, `manifest.json`, or stream dirs of an account backup).
pub fn verify_archive(data: &[u8]) {
    let (flags, rest) = data.split_first().unwrap_or((&0, &[]));
    let dir = scratch("archive");
    let target = if flags & 1 == 0 {
        let f = dir.join("backup");
        let _ = std::fs::write(&f, rest);
        f
    } else {
        write_files(&dir, rest);
        dir
    };
    let opts = crate::check::Options::default();
    if let Ok(rep) = crate::check::verify_path(&target, &opts, &NoProgress) {
        let _ = serde_json::to_vec(&rep);
    }
}

/// A fresh, empty scratch directory `<tmp>/jetdir-fuzz-<pid>/<name>` (the same one on every
/// call of a process: the fuzz targets run one input at a time).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("jetdir-fuzz-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Files of a directory tree in one byte string: repeated `name_len: u8, name, data_len: u32 LE,
/// data` (the last data may be short: it takes what is left). Names are relative paths with `/`
/// separators; entries whose name is not a safe relative path are skipped.
pub fn files(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((&nl, r)) = rest.split_first() {
        let nl = usize::from(nl).min(r.len());
        let (name, r) = r.split_at(nl);
        let (len, r) = match r.split_first_chunk::<4>() {
            Some((l, r)) => (u32::from_le_bytes(*l) as usize, r),
            None => (r.len(), &r[r.len()..]),
        };
        let (body, r) = r.split_at(len.min(r.len()));
        rest = r;
        if let Some(name) = safe_name(name) {
            out.push((name, body));
        }
    }
    out
}

/// The inverse of [`files`] (seed corpora, tests).
pub fn pack_files<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, body) in entries {
        let n = name.as_bytes();
        out.push(n.len().min(255) as u8);
        out.extend_from_slice(&n[..n.len().min(255)]);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

fn safe_name(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    let ok = !s.is_empty()
        && s.split('/').count() <= 8
        && s.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    ok.then(|| s.to_string())
}

fn write_files(root: &Path, data: &[u8]) {
    for (name, body) in files(data) {
        let p = root.join(&name);
        if let Some(parent) = p.parent() {
            if std::fs::create_dir_all(parent).is_err() {
                continue;
            }
        }
        let _ = std::fs::write(&p, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_refuse_unsafe_names() {
        let packed = pack_files([
            ("meta.inf", &b"{}"[..]),
            ("../x", b"no"),
            ("/abs", b"no"),
            ("a//b", b"no"),
            ("msgs/1.blk", b"blk"),
        ]);
        let got = files(&packed);
        assert_eq!(
            got,
            vec![
                ("meta.inf".to_string(), &b"{}"[..]),
                ("msgs/1.blk".to_string(), &b"blk"[..])
            ]
        );
        // a short last entry takes what is left
        let mut short = pack_files([("a", &b"0123456789"[..])]);
        short.truncate(short.len() - 4);
        assert_eq!(files(&short), vec![("a".to_string(), &b"012345"[..])]);
    }

    #[test]
    fn every_entry_point_runs_on_empty_and_small_input() {
        for d in [
            &b""[..],
            b"\0",
            b"cmp\x01\x05",
            b"\xff\x06\0\0sNaPpY",
            b"NATSARC1",
        ] {
            block_plain(d);
            block_cmp(d);
            s2_block(d, None);
            s2_frame(d);
            index_db(d);
            legacy(d);
            consumer_state(d);
            meta(d);
            aux_state(d);
            tar_walk(d);
            natsarc(d);
            backup_json(d);
            manifest(d);
            verify_store(d);
            verify_archive(d);
        }
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("jetdir-fuzz-{}", std::process::id())),
        );
    }
}
