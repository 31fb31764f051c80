//! `jetdir cluster`: the raft groups of a clustered node's store (`$SYS/_js_/<group>/`) and
//! the orphan prediction: which stream and consumer dirs a clustered server deletes at start
//! because its meta group (latest snapshot + the meta WAL after it) does not assign them, or
//! assigns them to other peers.
use crate::base::problem::{Kind, Location, Problem};
use crate::base::report::Outcome;
use crate::filestore::block::{block_key, plain_block, RecordKind, Records};
use crate::filestore::discover;
use crate::filestore::meta_assign::{self, Assignments, MetaOp};
use crate::filestore::raft::{self, EntryType};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// One raft snapshot file.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    /// Path in the group dir.
    pub file: String,
    /// Raft term.
    pub term: Option<u64>,
    /// Raft index.
    pub index: Option<u64>,
    /// File size in bytes.
    pub size: u64,
    /// HH64 keyed by SHA-256(group name) matches (null when the file could not be parsed).
    pub checksum_ok: Option<bool>,
}

/// The group's WAL (`msgs/<N>.blk`, one record per raft index).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WalInfo {
    /// Block files.
    pub blocks: u64,
    /// Bytes of all blocks.
    pub bytes: u64,
    /// Append entries (message records) found.
    pub entries: u64,
    /// First raft index in the WAL.
    pub first_index: Option<u64>,
    /// Last raft index in the WAL.
    pub last_index: Option<u64>,
    /// Records whose framing, checksum or append-entry encoding is bad.
    pub bad_records: u64,
    /// Blocks encrypted at rest (with a `<N>.key`): counted, not read.
    pub encrypted: u64,
}

/// Largest raft WAL block read: the server's 8 MiB block maximum plus one 32 MiB record.
const MAX_WAL_BLOCK: u64 = 40 << 20;

/// One raft group dir.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// Group name (its dir name).
    pub name: String,
    /// `meta`, `stream`, `consumer` or `unknown` (from the name: `_meta_`, `S-…`, `C-…`).
    pub kind: &'static str,
    /// Cluster size from `peers.idx`.
    pub cluster_size: Option<u32>,
    /// Peer ids from `peers.idx`.
    pub peers: Vec<String>,
    /// Raft term.
    pub term: Option<u64>,
    /// Peer voted for in `term` (`tav.idx`).
    pub vote: Option<String>,
    /// `commit.idx` (2.15.1 meta group), when present.
    pub commit: Option<u64>,
    /// The index the latest snapshot covers (applied when it was taken).
    pub snapshot_index: Option<u64>,
    /// Snapshot files.
    pub snapshots: Vec<SnapshotInfo>,
    /// The WAL.
    pub wal: WalInfo,
    /// The stream (and consumer) the meta assignments give this group, when they do.
    pub account: Option<String>,
    /// Stream name.
    pub stream: Option<String>,
    /// Consumer name.
    pub consumer: Option<String>,
}

/// A stream or consumer dir on disk and what the meta layer says about it.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedDir {
    /// Account.
    pub account: String,
    /// Stream name.
    pub stream: String,
    /// Consumer name (null for the stream dir itself).
    pub consumer: Option<String>,
    /// Raft group the meta layer assigns (null when not assigned).
    pub group: Option<String>,
    /// Peers of that group.
    pub peers: Vec<String>,
    /// `kept`, `orphan` (not assigned: deleted by the orphan check) or `not_member`
    /// (assigned to other peers: removed when the assignment is applied), `unknown` (the meta
    /// state could not be read).
    pub fate: &'static str,
}

/// What the meta replay used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetaReplay {
    /// The snapshot the assignments start from.
    pub snapshot: Option<String>,
    /// The index the latest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// WAL entries after the snapshot that were applied, and those not decoded.
    pub wal_ops_applied: u64,
    /// WAL entries after the snapshot that are not stream/consumer assignments (peer changes, …).
    pub wal_entries_skipped: u64,
    /// Entries above `commit.idx` (applied here; the server applies them once committed).
    pub past_commit: u64,
    /// Streams the rebuilt meta state assigns.
    pub streams_assigned: u64,
    /// Consumers the rebuilt meta state assigns.
    pub consumers_assigned: u64,
    /// The meta state could be rebuilt (else no orphan prediction is made).
    pub complete: bool,
}

/// The `jetdir cluster` report.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// No errors.
    pub ok: bool,
    /// `$SYS/_js_` exists.
    pub clustered: bool,
    /// This node's raft peer id, and how it was found.
    pub self_peer: Option<String>,
    /// How the peer id was found.
    pub self_peer_from: String,
    /// The raft groups.
    pub groups: Vec<GroupReport>,
    /// The meta replay.
    pub meta: MetaReplay,
    /// Stream and consumer dirs on disk with their fate at the next clustered start.
    pub streams: Vec<PlacedDir>,
    /// Remarks that are not findings.
    pub notes: Vec<String>,
    /// Findings.
    pub problems: Vec<Problem>,
}

impl ClusterReport {
    /// 0 clean, 1 findings of severity error.
    pub fn exit_code(&self) -> i32 {
        Outcome::of(&self.problems).exit_code()
    }
}

fn id_text(b: &[u8]) -> String {
    crate::base::bytes::printable(b, 16)
}

fn loc(group: &str, file: &str) -> Location {
    Location::stream("$SYS", group).file(file.to_string())
}

fn group_kind(name: &str) -> &'static str {
    if name == "_meta_" {
        "meta"
    } else if name.starts_with("S-") {
        "stream"
    } else if name.starts_with("C-") {
        "consumer"
    } else {
        "unknown"
    }
}

/// A valid snapshot: its file (relative to the group dir), index and data.
type SnapshotData = (String, u64, Vec<u8>);

/// Read a group dir: peers, term/vote, commit, snapshots, WAL. Returns the report, the latest
/// valid snapshot's data (for the meta group) and the WAL's normal entries after it.
struct GroupRead {
    rep: GroupReport,
    /// Latest snapshot (by term, index): its data when its checksum is good, or Err(why).
    latest_snapshot: Option<Result<SnapshotData, String>>,
    /// (index, entry type, data) of every entry in the WAL, in index order.
    entries: Vec<(u64, EntryType, Vec<u8>)>,
}

fn read_group(
    dir: &Path,
    name: &str,
    keep_entries: bool,
    problems: &mut Vec<Problem>,
) -> GroupRead {
    let mut rep = GroupReport {
        name: name.to_string(),
        kind: group_kind(name),
        cluster_size: None,
        peers: vec![],
        term: None,
        vote: None,
        commit: None,
        snapshot_index: None,
        snapshots: vec![],
        wal: WalInfo::default(),
        account: None,
        stream: None,
        consumer: None,
    };
    let io = |file: &str, e: std::io::Error, problems: &mut Vec<Problem>| {
        problems.push(Problem::new(
            Kind::IoError,
            loc(name, file),
            format!("$SYS/_js_/{name}/{file}: {e}"),
        ))
    };
    let bad = |file: &str, what: String, problems: &mut Vec<Problem>| {
        problems.push(Problem::new(
            Kind::RaftFileCorrupt,
            loc(name, file),
            format!("$SYS/_js_/{name}/{file}: {what}; the server cannot restore this raft group's state from it"),
        ))
    };
    match fs::read(dir.join("peers.idx")) {
        Ok(b) => match raft::parse_peers(&b) {
            Ok(p) => {
                rep.cluster_size = Some(p.cluster_size);
                rep.peers = p.peers.iter().map(|i| id_text(i)).collect();
            }
            Err(e) => bad("peers.idx", e.to_string(), problems),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => io("peers.idx", e, problems),
    }
    match fs::read(dir.join("tav.idx")) {
        Ok(b) => match raft::parse_tav(&b) {
            Ok(t) => {
                rep.term = Some(t.term);
                rep.vote = t.vote.as_deref().map(id_text);
            }
            Err(e) => bad("tav.idx", e.to_string(), problems),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => io("tav.idx", e, problems),
    }
    match fs::read(dir.join("commit.idx")) {
        Ok(b) => match raft::parse_commit_idx(&b, name) {
            Ok(c) if c.hash_ok => rep.commit = Some(c.commit),
            Ok(c) => problems.push(Problem::new(
                Kind::RaftChecksum,
                loc(name, "commit.idx"),
                format!(
                    "$SYS/_js_/{name}/commit.idx: checksum does not match (commit index {} unverified)",
                    c.commit
                ),
            )),
            Err(e) => bad("commit.idx", e.to_string(), problems),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => io("commit.idx", e, problems),
    }
    // snapshots: the server uses the one with the highest (term, index)
    let mut latest: Option<(u64, u64, String)> = None;
    if let Ok(rd) = fs::read_dir(dir.join("snapshots")) {
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            let rel = format!("snapshots/{n}");
            let Some((t, i)) = raft::parse_snapshot_name(&n) else {
                rep.snapshots.push(SnapshotInfo {
                    file: rel,
                    term: None,
                    index: None,
                    size: fs::metadata(dir.join("snapshots").join(&n))
                        .map(|m| m.len())
                        .unwrap_or(0),
                    checksum_ok: None,
                });
                continue;
            };
            if latest
                .as_ref()
                .is_none_or(|(lt, li, _)| (t, i) > (*lt, *li))
            {
                latest = Some((t, i, n.clone()));
            }
            let (size, ok) = match fs::read(dir.join("snapshots").join(&n)) {
                Ok(b) => match raft::parse_snapshot(&b, name) {
                    Ok(s) => {
                        if !s.hash_ok {
                            problems.push(Problem::new(
                                Kind::RaftChecksum,
                                loc(name, &rel),
                                format!("$SYS/_js_/{name}/{rel}: checksum does not match; the server logs 'Snapshot corrupt' and cannot use it"),
                            ));
                        } else if (s.term, s.index) != (t, i) {
                            bad(
                                &rel,
                                format!(
                                    "holds term {} index {}, its name says term {t} index {i}",
                                    s.term, s.index
                                ),
                                problems,
                            );
                        }
                        (b.len() as u64, Some(s.hash_ok))
                    }
                    Err(e) => {
                        bad(&rel, e.to_string(), problems);
                        (b.len() as u64, None)
                    }
                },
                Err(e) => {
                    io(&rel, e, problems);
                    (0, None)
                }
            };
            rep.snapshots.push(SnapshotInfo {
                file: rel,
                term: Some(t),
                index: Some(i),
                size,
                checksum_ok: ok,
            });
        }
    }
    let latest_snapshot = latest.map(|(_, i, n)| {
        rep.snapshot_index = Some(i);
        let b = fs::read(dir.join("snapshots").join(&n)).map_err(|e| e.to_string())?;
        match raft::parse_snapshot(&b, name) {
            Ok(s) if s.hash_ok => Ok((format!("snapshots/{n}"), s.index, s.data)),
            Ok(_) => Err(format!("snapshots/{n}: checksum does not match")),
            Err(e) => Err(format!("snapshots/{n}: {e}")),
        }
    });
    // the WAL: a file store keyed by the group name
    let mut entries = Vec::new();
    let mut blocks: Vec<(u32, PathBuf)> = fs::read_dir(dir.join("msgs"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let i = crate::filestore::layout::block_number(&n, ".blk")?;
                    Some((u32::try_from(i).ok()?, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    blocks.sort();
    for (bi, p) in blocks {
        let rel = format!("msgs/{bi}.blk");
        let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        if p.with_extension("key").exists() {
            // an encrypted store: the WAL block is encrypted (context: the group name)
            rep.wal.blocks += 1;
            rep.wal.bytes += size;
            rep.wal.encrypted += 1;
            continue;
        }
        if size > MAX_WAL_BLOCK {
            rep.wal.blocks += 1;
            rep.wal.bytes += size;
            rep.wal.bad_records += 1;
            problems.push(Problem::new(
                Kind::RaftWalDamaged,
                loc(name, &rel),
                format!("$SYS/_js_/{name}/{rel}: {size} bytes, more than a raft WAL block can hold ({MAX_WAL_BLOCK}); not read"),
            ));
            continue;
        }
        let raw = match fs::read(&p) {
            Ok(b) => b,
            Err(e) => {
                io(&rel, e, problems);
                continue;
            }
        };
        rep.wal.blocks += 1;
        rep.wal.bytes += raw.len() as u64;
        let plain = match plain_block(&raw) {
            Ok((b, _)) => b,
            Err(e) => {
                rep.wal.bad_records += 1;
                problems.push(Problem::new(
                    Kind::RaftWalDamaged,
                    loc(name, &rel),
                    format!("$SYS/_js_/{name}/{rel}: cannot decompress: {e}"),
                ));
                continue;
            }
        };
        let key = block_key(name, bi);
        for r in Records::new(&plain) {
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    rep.wal.bad_records += 1;
                    problems.push(Problem::new(
                        Kind::RaftWalDamaged,
                        loc(name, &rel).at(e.offset as u64),
                        format!("$SYS/_js_/{name}/{rel}: {e}; the server truncates the raft log there and the group catches up from its leader"),
                    ));
                    break;
                }
            };
            if !r.checksum_ok(&key) {
                rep.wal.bad_records += 1;
                problems.push(Problem::new(
                    Kind::RaftWalDamaged,
                    loc(name, &rel).at(r.offset as u64).seq(r.seq),
                    format!("$SYS/_js_/{name}/{rel}: record checksum of raft index {} does not match; the server truncates the raft log there and the group catches up from its leader", r.seq),
                ));
                break;
            }
            if r.kind() != RecordKind::Message {
                continue;
            }
            match raft::parse_append_entry(r.payload) {
                Ok(ae) if ae.pindex.checked_add(1) == Some(r.seq) => {
                    rep.wal.entries += 1;
                    rep.wal.first_index.get_or_insert(r.seq);
                    rep.wal.last_index = Some(r.seq);
                    if keep_entries {
                        for e in ae.entries {
                            entries.push((r.seq, e.kind, e.data.to_vec()));
                        }
                    }
                }
                Ok(ae) => {
                    rep.wal.bad_records += 1;
                    problems.push(Problem::new(
                        Kind::RaftWalDamaged,
                        loc(name, &rel).at(r.offset as u64).seq(r.seq),
                        format!("$SYS/_js_/{name}/{rel}: the append entry at raft index {} says previous index {} (expected {})", r.seq, ae.pindex, r.seq - 1),
                    ));
                }
                Err(e) => {
                    rep.wal.bad_records += 1;
                    problems.push(Problem::new(
                        Kind::RaftWalDamaged,
                        loc(name, &rel).at(r.offset as u64).seq(r.seq),
                        format!(
                            "$SYS/_js_/{name}/{rel}: raft index {} is not an append entry: {e}",
                            r.seq
                        ),
                    ));
                }
            }
        }
    }
    GroupRead {
        rep,
        latest_snapshot,
        entries,
    }
}

/// Rebuild the meta assignments from the `_meta_` group: latest snapshot, then the WAL
/// entries after it. None when they cannot be rebuilt (the reason is a finding).
fn replay_meta(
    g: &GroupRead,
    meta: &mut MetaReplay,
    problems: &mut Vec<Problem>,
) -> Option<Assignments> {
    let undecodable = |what: String, problems: &mut Vec<Problem>| {
        problems.push(Problem::new(
            Kind::RaftMetaUndecodable,
            loc("_meta_", ""),
            format!("$SYS/_js_/_meta_: {what}; the streams and consumers this node's meta layer knows cannot be told, so no orphan prediction is made"),
        ))
    };
    let (mut a, from) = match &g.latest_snapshot {
        None => (Assignments::new(), 0),
        Some(Err(e)) => {
            undecodable(e.clone(), problems);
            return None;
        }
        Some(Ok((file, index, data))) => match meta_assign::decode_snapshot(data) {
            Ok(a) => {
                meta.snapshot = Some(file.clone());
                meta.snapshot_index = Some(*index);
                (a, *index)
            }
            Err(e) => {
                undecodable(format!("{file}: {e}"), problems);
                return None;
            }
        },
    };
    for (idx, kind, data) in &g.entries {
        if *idx <= from {
            continue;
        }
        if g.rep.commit.is_some_and(|c| *idx > c) {
            meta.past_commit += 1;
        }
        match kind {
            EntryType::Normal => match meta_assign::decode_op(data) {
                Ok(MetaOp::Other(_)) => meta.wal_entries_skipped += 1,
                Ok(op) => {
                    meta_assign::apply(&mut a, op);
                    meta.wal_ops_applied += 1;
                }
                Err(e) => {
                    undecodable(format!("WAL raft index {idx}: {e}"), problems);
                    return None;
                }
            },
            EntryType::Snapshot | EntryType::OldSnapshot => {
                match meta_assign::decode_snapshot(data) {
                    Ok(n) => {
                        a = n;
                        meta.wal_ops_applied += 1;
                    }
                    Err(e) => {
                        undecodable(format!("WAL raft index {idx}: {e}"), problems);
                        return None;
                    }
                }
            }
            _ => meta.wal_entries_skipped += 1,
        }
    }
    meta.streams_assigned = a.values().map(|m| m.len() as u64).sum();
    meta.consumers_assigned = a
        .values()
        .flat_map(|m| m.values())
        .map(|s| s.consumers.len() as u64)
        .sum();
    meta.complete = true;
    Some(a)
}

/// The `jetstream` dir of a store dir (or the dir itself when it holds `$SYS`).
fn jetstream_dir(path: &Path) -> PathBuf {
    if path.join("jetstream").is_dir() {
        path.join("jetstream")
    } else {
        path.to_path_buf()
    }
}

/// Build the cluster report of the store at `path`. `server_name` (the node's `server_name`)
/// fixes this node's peer id; without it the id is inferred when the raft dirs allow.
pub fn cluster_report(
    path: &Path,
    server_name: Option<&str>,
) -> Result<ClusterReport, discover::LayoutError> {
    let lay = discover::discover(path)?;
    let js = jetstream_dir(path);
    let raft_root = js.join("$SYS").join("_js_");
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let clustered = raft_root.is_dir();
    let mut groups: Vec<GroupRead> = Vec::new();
    let mut names: Vec<String> = fs::read_dir(&raft_root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n| (group_kind(n) != "meta", n.clone()));
    for n in &names {
        groups.push(read_group(
            &raft_root.join(n),
            n,
            n == "_meta_",
            &mut problems,
        ));
    }
    let mut meta = MetaReplay::default();
    let assignments = match groups.iter().find(|g| g.rep.name == "_meta_") {
        Some(g) => replay_meta(g, &mut meta, &mut problems),
        None => {
            if clustered {
                notes.push("$SYS/_js_ has no _meta_ group: the meta assignments are unknown, no orphan prediction".into());
            }
            None
        }
    };
    // map groups to streams and consumers
    if let Some(a) = &assignments {
        for g in &mut groups {
            for (acc, m) in a {
                for (sn, sa) in m {
                    if sa.group.as_ref().is_some_and(|x| x.name == g.rep.name) {
                        g.rep.account = Some(acc.clone());
                        g.rep.stream = Some(sn.clone());
                    }
                    for (cn, ca) in &sa.consumers {
                        if ca.group.as_ref().is_some_and(|x| x.name == g.rep.name) {
                            g.rep.account = Some(acc.clone());
                            g.rep.stream = Some(sn.clone());
                            g.rep.consumer = Some(cn.clone());
                        }
                    }
                }
            }
            if g.rep.kind != "meta" && g.rep.stream.is_none() {
                notes.push(format!(
                    "raft group {}: no stream or consumer of the meta assignments uses it",
                    g.rep.name
                ));
            }
        }
    }
    // this node's peer id
    let (self_peer, self_peer_from) = match server_name {
        Some(n) => (Some(raft::server_peer_id(n)), format!("--server-name {n}")),
        None => {
            let mut cand: Option<BTreeSet<String>> = None;
            for g in &groups {
                if g.rep.peers.is_empty() {
                    continue;
                }
                let s: BTreeSet<String> = g.rep.peers.iter().cloned().collect();
                cand = Some(match cand {
                    None => s,
                    Some(c) => c.intersection(&s).cloned().collect(),
                });
            }
            match cand {
                Some(c) if c.len() == 1 => (
                    c.into_iter().next(),
                    "the only peer of every raft group on this disk".to_string(),
                ),
                Some(c) if c.len() > 1 => (
                    None,
                    format!(
                        "unknown: {} peers are in every raft group on this disk ({}); give --server-name",
                        c.len(),
                        c.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ),
                _ => (None, "unknown".to_string()),
            }
        }
    };
    if let Some(me) = &self_peer {
        if let Some(m) = groups.iter().find(|g| g.rep.name == "_meta_") {
            if !m.rep.peers.is_empty() && !m.rep.peers.contains(me) {
                notes.push(format!(
                    "peer id {me} is not a peer of the meta group ({}): is this the right server name?",
                    m.rep.peers.join(", ")
                ));
            }
        }
    }
    // stream and consumer dirs on disk and their fate
    let mut streams = Vec::new();
    // a standalone server deletes nothing for want of assignments: no fates to tell
    let on_disk: &[discover::StreamDir] = if clustered { &lay.streams } else { &[] };
    for sd in on_disk {
        let sa = assignments
            .as_ref()
            .and_then(|a| a.get(&sd.account))
            .and_then(|m| m.get(&sd.name));
        let fate_of = |group: Option<&meta_assign::GroupRef>, known: bool| -> &'static str {
            if assignments.is_none() {
                "unknown"
            } else if !known {
                "orphan"
            } else {
                match (group, &self_peer) {
                    (Some(g), Some(me)) if !g.peers.contains(me) => "not_member",
                    _ => "kept",
                }
            }
        };
        let group = sa.and_then(|s| s.group.as_ref());
        let fate = fate_of(group, sa.is_some());
        streams.push(PlacedDir {
            account: sd.account.clone(),
            stream: sd.name.clone(),
            consumer: None,
            group: group.map(|g| g.name.clone()),
            peers: group.map(|g| g.peers.clone()).unwrap_or_default(),
            fate,
        });
        let sloc = Location::stream(&sd.account, &sd.name);
        match fate {
            "orphan" => problems.push(Problem::new(
                Kind::ClusterOrphanStream,
                sloc.clone(),
                format!(
                    "the meta group does not assign this stream; a clustered server deletes its dir once it has a meta leader: silently when the leader catches it up with a meta snapshot, else 30 s after meta recovery (log: Detected orphaned stream '{} > {}', will cleanup)",
                    sd.account, sd.name
                ),
            )),
            "not_member" => problems.push(Problem::new(
                Kind::ClusterOrphanStream,
                sloc.clone(),
                format!(
                    "the meta group assigns this stream to peers {} (not this node, {}); the server removes its dir when it applies the assignment",
                    group.map(|g| g.peers.join(", ")).unwrap_or_default(),
                    self_peer.as_deref().unwrap_or("")
                ),
            )),
            _ => {}
        }
        let mut cons: Vec<String> = fs::read_dir(sd.dir.join("obs"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        cons.sort();
        for c in cons {
            let ca = sa.and_then(|s| s.consumers.get(&c));
            let cgroup = ca.and_then(|c| c.group.as_ref());
            // a consumer of a stream that goes goes with it
            let cfate = if fate == "kept" {
                fate_of(cgroup, ca.is_some())
            } else {
                fate
            };
            streams.push(PlacedDir {
                account: sd.account.clone(),
                stream: sd.name.clone(),
                consumer: Some(c.clone()),
                group: cgroup.map(|g| g.name.clone()),
                peers: cgroup.map(|g| g.peers.clone()).unwrap_or_default(),
                fate: cfate,
            });
            if fate != "kept" {
                continue;
            }
            let cl = sloc.clone().consumer(c.clone());
            match cfate {
                "orphan" => problems.push(Problem::new(
                    Kind::ClusterOrphanConsumer,
                    cl,
                    format!(
                        "the meta group does not assign this consumer; a clustered server deletes its dir once it has a meta leader: silently when the leader catches it up with a meta snapshot, else 30 s after meta recovery (log: Detected orphaned durable consumer '{} > {} > {c}', will cleanup)",
                        sd.account, sd.name
                    ),
                )),
                "not_member" => problems.push(Problem::new(
                    Kind::ClusterOrphanConsumer,
                    cl,
                    format!(
                        "the meta group assigns this consumer to other peers ({}); the server removes its dir when it applies the assignment",
                        cgroup.map(|g| g.peers.join(", ")).unwrap_or_default()
                    ),
                )),
                _ => {}
            }
        }
    }
    for g in &groups {
        if g.rep.wal.encrypted > 0 {
            notes.push(format!(
                "raft group {}: {} WAL block(s) encrypted at rest: not read (the WAL extent counts only the others)",
                g.rep.name, g.rep.wal.encrypted
            ));
        }
    }
    if !clustered {
        notes.push(format!(
            "{}: no $SYS/_js_ dir: not a clustered node's store",
            js.display()
        ));
    } else {
        notes.push("not decoded: the stream and consumer groups' WAL entries (messages, acks) beyond their framing and checksums; meta WAL ops other than stream/consumer assign/update/remove".into());
    }
    crate::base::report::sort_problems(&mut problems);
    let ok = Outcome::of(&problems).exit_code() == 0;
    Ok(ClusterReport {
        ok,
        clustered,
        self_peer,
        self_peer_from,
        groups: groups.into_iter().map(|g| g.rep).collect(),
        meta,
        streams,
        notes,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    const CL: &str = "v2.15.1-cluster-n1";

    #[test]
    fn the_sample_node_lists_three_groups_mapped_to_cl_and_d() {
        let d = testdata::sample(CL);
        let store = d.path().join(CL).join("store");
        let r = cluster_report(&store, None).unwrap();
        assert!(r.clustered && r.ok, "{r:#?}");
        assert_eq!(r.groups.len(), 3);
        let m = &r.groups[0];
        assert_eq!(
            (m.name.as_str(), m.kind, m.term, m.commit),
            ("_meta_", "meta", Some(3), Some(9))
        );
        assert_eq!(m.snapshot_index, Some(9));
        let s = r.groups.iter().find(|g| g.kind == "stream").unwrap();
        assert_eq!(
            (s.stream.as_deref(), s.consumer.as_deref()),
            (Some("CL"), None)
        );
        assert_eq!(s.snapshot_index, Some(10));
        let c = r.groups.iter().find(|g| g.kind == "consumer").unwrap();
        assert_eq!(
            (c.stream.as_deref(), c.consumer.as_deref()),
            (Some("CL"), Some("D"))
        );
        for g in &r.groups {
            assert_eq!(g.peers.len(), 3);
            assert!(g.wal.entries > 0 && g.wal.bad_records == 0, "{g:?}");
            assert!(g.snapshots.iter().all(|s| s.checksum_ok == Some(true)));
        }
        assert!(r.meta.complete);
        assert_eq!(r.meta.streams_assigned, 1);
        assert_eq!(r.meta.consumers_assigned, 1);
        // every peer is in every group: the own id cannot be inferred
        assert_eq!(r.self_peer, None);
        assert!(
            r.streams.iter().all(|p| p.fate == "kept"),
            "{:?}",
            r.streams
        );
        assert_eq!(r.streams.len(), 2);

        // a standalone store: nothing clustered, no fates
        let plain = testdata::sample("v2.15.1-plain");
        let r0 = cluster_report(&plain.path().join("v2.15.1-plain/store"), None).unwrap();
        assert!(!r0.clustered && r0.ok && r0.groups.is_empty() && r0.streams.is_empty());

        // with the server name: n1's id, still a member of everything
        let r = cluster_report(&store, Some("n1")).unwrap();
        assert_eq!(
            r.self_peer.as_deref(),
            Some(raft::server_peer_id("n1").as_str())
        );
        assert!(r.streams.iter().all(|p| p.fate == "kept"));
        // a server name that is no peer: the stream and its consumer are not this node's
        let r = cluster_report(&store, Some("elsewhere")).unwrap();
        assert!(
            r.streams.iter().all(|p| p.fate == "not_member"),
            "{:?}",
            r.streams
        );
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn a_dropped_in_stream_and_consumer_are_orphans() {
        let d = testdata::sample(CL);
        let store = d.path().join(CL).join("store");
        let streams = store.join("jetstream/$G/streams");
        crate::testdata::copy_tree(&streams.join("CL"), &streams.join("X"));
        crate::testdata::copy_tree(&streams.join("CL/obs/D"), &streams.join("CL/obs/E"));
        let r = cluster_report(&store, None).unwrap();
        let kinds: Vec<(Kind, Option<&str>, Option<&str>)> = r
            .problems
            .iter()
            .map(|p| (p.kind, p.loc.stream.as_deref(), p.loc.consumer.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::ClusterOrphanConsumer, Some("CL"), Some("E")),
                (Kind::ClusterOrphanStream, Some("X"), None)
            ],
            "{r:#?}"
        );
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn encrypted_wal_blocks_are_counted_not_judged() {
        let d = testdata::sample(CL);
        let store = d.path().join(CL).join("store");
        let g = store.join("jetstream/$SYS/_js_/S-R3F-W7suG6Iu/msgs");
        let mut b = fs::read(g.join("1.blk")).unwrap();
        for x in b.iter_mut() {
            *x ^= 0x5a; // "ciphertext"
        }
        fs::write(g.join("1.blk"), b).unwrap();
        fs::write(g.join("1.key"), [7u8; 72]).unwrap();
        let r = cluster_report(&store, None).unwrap();
        assert!(r.ok, "{r:#?}");
        let s = r.groups.iter().find(|g| g.kind == "stream").unwrap();
        assert_eq!((s.wal.blocks, s.wal.encrypted, s.wal.entries), (1, 1, 0));
        assert!(r.notes.iter().any(|n| n.contains("encrypted")));
        // without the key file the same bytes are damage
        fs::remove_file(g.join("1.key")).unwrap();
        let r = cluster_report(&store, None).unwrap();
        assert!(r.problems.iter().any(|p| p.kind == Kind::RaftWalDamaged));
    }

    #[test]
    fn damaged_raft_files_are_findings_not_panics() {
        let d = testdata::sample(CL);
        let store = d.path().join(CL).join("store");
        let g = store.join("jetstream/$SYS/_js_/S-R3F-W7suG6Iu");
        let mut b = fs::read(g.join("snapshots/snap.3.10")).unwrap();
        b[30] ^= 1;
        fs::write(g.join("snapshots/snap.3.10"), b).unwrap();
        let mut b = fs::read(g.join("msgs/1.blk")).unwrap();
        let n = b.len();
        b[n - 20] ^= 1;
        fs::write(g.join("msgs/1.blk"), b).unwrap();
        fs::write(g.join("peers.idx"), [1, 2, 3]).unwrap();
        let m = store.join("jetstream/$SYS/_js_/_meta_/snapshots/snap.3.9");
        let mut b = fs::read(&m).unwrap();
        b[100] ^= 1;
        fs::write(&m, b).unwrap();
        let r = cluster_report(&store, None).unwrap();
        let kinds: BTreeSet<Kind> = r.problems.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::RaftChecksum,
                Kind::RaftFileCorrupt,
                Kind::RaftMetaUndecodable,
                Kind::RaftWalDamaged
            ]
            .into_iter()
            .collect(),
            "{r:#?}"
        );
        assert!(!r.meta.complete);
        assert!(r.streams.iter().all(|p| p.fate == "unknown"));
    }
}
