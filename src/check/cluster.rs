//! `jetdir cluster`: the raft groups of a clustered node's store (`$SYS/_js_/<group>/`) and
//! the orphan prediction: which stream and consumer dirs a clustered server deletes at start
//! because its meta group (latest snapshot + the meta WAL after it) does not assign them, or
//! assigns them to other peers.
use crate::base::problem::{Kind, Location, Problem};
use crate::base::release::Release;
use crate::base::report::Outcome;
use crate::filestore::block::{block_key, plain_block, RecordKind, Records};
use crate::filestore::config_fields;
use crate::filestore::discover;
use crate::filestore::meta_assign::{self, Assignments, MetaOp};
use crate::filestore::raft::{self, EntryType};
use crate::filestore::source::DirSource;
use crate::filestore::{consumer_group, consumer_state, stream_group};
use crate::state::load;
use crate::state::prelude::prelude_for;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
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
    /// Entries of a stream or consumer group that do not decode as the server encodes them.
    pub bad_entries: u64,
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
    /// A stream group's log against its stream dir (stream groups mapped to a stream).
    pub stream_log: Option<StreamLog>,
    /// A consumer group's log against its o.dat (consumer groups mapped to a consumer).
    pub consumer_log: Option<ConsumerLog>,
}

/// A stream group's snapshot (the replicated stream state).
#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshotState {
    /// `binary v1`, `binary v2` or `json`.
    pub encoding: &'static str,
    /// Messages.
    pub msgs: u64,
    /// Bytes.
    pub bytes: u64,
    /// First sequence.
    pub first_seq: u64,
    /// Last sequence.
    pub last_seq: u64,
    /// Failed proposals (`clfs`): a logged message's sequence is its `lseq + 1 - failed`.
    pub failed: u64,
    /// Deleted sequences.
    pub deleted: u64,
}

/// What a stream group's raft log holds beyond its snapshot, and what a restart re-applies.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamLog {
    /// The latest snapshot's stream state (null without a readable snapshot).
    pub snapshot: Option<StreamSnapshotState>,
    /// The highest raft index known committed on disk (the snapshot's index, the commit
    /// carried by the log's append entries, commit.idx): a restart applies entries up to it.
    pub commit: u64,
    /// Messages in the log after the snapshot (atomic batches only when their commit is there).
    pub msgs: u64,
    /// Sequence range of those messages (`lseq + 1 - clfs`).
    pub first_seq: Option<u64>,
    /// Last sequence of those messages.
    pub last_seq: Option<u64>,
    /// Last sequence of a committed message of the log.
    pub last_committed_seq: Option<u64>,
    /// Messages past the commit index (a restart waits for the leader: applied if committed,
    /// else dropped).
    pub uncommitted_msgs: u64,
    /// Purges, message deletes and delete ranges in the log after the snapshot (skips are
    /// messages without content: counted in `msgs`).
    pub other_ops: u64,
    /// The stream dir's last sequence (after its load); null when the dir is missing or unreadable.
    pub stream_last_seq: Option<u64>,
    /// First sequence a restart re-applies from the log onto the stream dir (committed
    /// messages past `stream_last_seq`).
    pub reapply_first_seq: Option<u64>,
    /// Last sequence a restart re-applies.
    pub reapply_last_seq: Option<u64>,
}

/// A consumer's sequences (as o.dat stores them).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ConsumerSeqs {
    /// Stream sequence of the last delivered message.
    pub delivered_stream_seq: u64,
    /// Consumer sequence of the last delivery.
    pub delivered_consumer_seq: u64,
    /// Stream sequence of the ack floor.
    pub ack_floor_stream_seq: u64,
    /// Consumer sequence of the ack floor.
    pub ack_floor_consumer_seq: u64,
    /// Delivered, not acknowledged.
    pub num_ack_pending: u64,
}

impl ConsumerSeqs {
    fn of(r: &consumer_group::Replay) -> ConsumerSeqs {
        ConsumerSeqs {
            delivered_stream_seq: r.delivered.stream_seq,
            delivered_consumer_seq: r.delivered.consumer_seq,
            ack_floor_stream_seq: r.ack_floor.stream_seq,
            ack_floor_consumer_seq: r.ack_floor.consumer_seq,
            num_ack_pending: r.pending.len() as u64,
        }
    }
}

/// What a consumer group's raft log holds beyond its snapshot, and what a restart makes of
/// the consumer's o.dat.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumerLog {
    /// The latest snapshot's consumer state.
    pub snapshot: Option<ConsumerSeqs>,
    /// The highest raft index known committed on disk.
    pub commit: u64,
    /// Delivery updates in the log after the snapshot.
    pub deliveries: u64,
    /// Ack updates in the log after the snapshot.
    pub acks: u64,
    /// Other ops (skips, resets, pull-request bookkeeping) after the snapshot.
    pub other_ops: u64,
    /// Of `other_ops`: skips (`updateSkipOp`, a filtered consumer moved past messages it
    /// does not take, or a new leader's starting position).
    pub skips: u64,
    /// The highest stream sequence a skip moves to (the next to deliver).
    pub last_skip_stream_seq: Option<u64>,
    /// Of `other_ops`: resets (`resetSeqOp`, 2.14+ `$JS.API.CONSUMER.RESET`).
    pub resets: u64,
    /// The stream sequence of the last reset (the next to deliver after it).
    pub last_reset_stream_seq: Option<u64>,
    /// Ops past the commit index (not applied at restart without the leader).
    pub uncommitted_ops: u64,
    /// Highest stream sequence a delivery of the log names.
    pub last_delivered_stream_seq: Option<u64>,
    /// Highest stream sequence an ack of the log names.
    pub last_acked_stream_seq: Option<u64>,
    /// The consumer's o.dat (null when missing, empty, encrypted or unreadable).
    pub on_disk: Option<ConsumerSeqs>,
    /// o.dat after a restart replays the snapshot and the committed ops onto it, as the
    /// consumer store does (null without o.dat).
    pub after_restart: Option<ConsumerSeqs>,
    /// The release whose replay `after_restart` is (releases differ on skips: 2.11+ move
    /// o.dat, 2.9 and 2.10 do not).
    pub release: String,
    /// Where `release` comes from: `--server-version`, the stream dir (`meta.inf _nats.ver`,
    /// its index format) or `newest known release`.
    pub release_from: String,
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
    /// (index, entry type, data) of every entry in the WAL, in index order (meta group).
    entries: Vec<(u64, EntryType, Vec<u8>)>,
    /// The stream or consumer ops of a stream or consumer group's WAL after its latest
    /// snapshot, in index order, in compact form (at most [`MAX_LOG_OPS`]).
    ops: Vec<(u64, GroupOp)>,
    /// More ops than [`MAX_LOG_OPS`] after the snapshot: the log is not compared.
    ops_over: bool,
    /// The highest commit index an append entry of the WAL carries.
    max_commit: u64,
}

/// Most ops of one stream or consumer group kept for the comparison with its dir (each at
/// most 48 bytes: 24 MiB). The server snapshots and compacts a group's log long before
/// (stream groups: every 2 minutes or past 64 Ki entries and 8 MiB).
const MAX_LOG_OPS: usize = 512 << 10;

/// One decoded entry of a stream or consumer group's WAL, with what the comparison needs.
#[derive(Debug)]
enum GroupOp {
    /// A stream message: its `lseq`.
    Msg(u64),
    /// A message of an atomic batch.
    BatchMsg {
        id: Box<str>,
        seq: u64,
        commit: bool,
        lseq: u64,
    },
    /// A purge, delete or delete range.
    StreamOther,
    /// A snapshot entry of a stream group: its failed count.
    StreamSnapshot {
        failed: u64,
    },
    Consumer(consumer_group::ConsumerOp),
    ConsumerSnapshot(Box<consumer_state::ConsumerState>),
}

fn read_group(dir: &Path, name: &str, problems: &mut Vec<Problem>) -> GroupRead {
    let keep_entries = name == "_meta_";
    let mut ops = Vec::new();
    let mut ops_over = false;
    let mut max_commit = 0u64;
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
        stream_log: None,
        consumer_log: None,
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
    let after = match &latest_snapshot {
        Some(Ok((_, i, _))) => *i,
        _ => 0,
    };
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
                    max_commit = max_commit.max(ae.commit);
                    if keep_entries {
                        for e in ae.entries {
                            entries.push((r.seq, e.kind, e.data.to_vec()));
                        }
                    } else {
                        for e in ae.entries {
                            match decode_group_entry(rep.kind, e.kind, e.data) {
                                // only what follows the snapshot matters
                                Ok(Some(_)) if r.seq <= after => {}
                                Ok(Some(_)) if ops.len() >= MAX_LOG_OPS => ops_over = true,
                                Ok(Some(op)) => ops.push((r.seq, op)),
                                Ok(None) => {}
                                Err(why) => {
                                    rep.wal.bad_entries += 1;
                                    problems.push(Problem::new(
                                        Kind::RaftWalDamaged,
                                        loc(name, &rel).at(r.offset as u64).seq(r.seq),
                                        format!(
                                            "$SYS/_js_/{name}/{rel}: raft index {}: {why}",
                                            r.seq
                                        ),
                                    ));
                                }
                            }
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
        ops,
        ops_over,
        max_commit,
    }
}

/// Decode one entry of a stream or consumer group: its op (normal entries) or the state a
/// snapshot entry carries; None for entries that change no stream or consumer state (peer
/// changes, leader transfers).
fn decode_group_entry(kind: &str, et: EntryType, data: &[u8]) -> Result<Option<GroupOp>, String> {
    let snapshot = matches!(et, EntryType::Snapshot | EntryType::OldSnapshot);
    match (kind, et) {
        ("stream", EntryType::Normal) => stream_group::decode_op(data)
            .map(|o| {
                Some(match o {
                    stream_group::StreamOp::Msg(m) => GroupOp::Msg(m.lseq),
                    stream_group::StreamOp::Batch {
                        id,
                        seq,
                        commit,
                        msg,
                    } => GroupOp::BatchMsg {
                        id: id.into(),
                        seq,
                        commit,
                        lseq: msg.lseq,
                    },
                    _ => GroupOp::StreamOther,
                })
            })
            .map_err(|e| format!("not a stream entry as the server encodes them: {e}")),
        ("stream", _) if snapshot => stream_group::decode_snapshot(data)
            .map(|s| Some(GroupOp::StreamSnapshot { failed: s.failed }))
            .map_err(|e| format!("snapshot entry: {e}")),
        ("consumer", EntryType::Normal) => consumer_group::decode_op(data)
            .map(|o| Some(GroupOp::Consumer(o)))
            .map_err(|e| format!("not a consumer entry as the server encodes them: {e}")),
        ("consumer", _) if snapshot => match consumer_state::parse(data) {
            Ok(Some(st)) => Ok(Some(GroupOp::ConsumerSnapshot(Box::new(st)))),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("consumer snapshot entry: {e}")),
        },
        _ => Ok(None),
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

/// The highest raft index a restart knows committed: the snapshot's, the commit the log's
/// append entries carry, commit.idx.
fn known_commit(g: &GroupRead) -> u64 {
    g.max_commit
        .max(g.rep.commit.unwrap_or(0))
        .max(g.rep.snapshot_index.unwrap_or(0))
}

/// The latest snapshot's data, when it is readable.
fn snapshot_data(g: &GroupRead) -> Option<(&str, u64, &[u8])> {
    match &g.latest_snapshot {
        Some(Ok((f, i, d))) => Some((f.as_str(), *i, d.as_slice())),
        _ => None,
    }
}

/// An atomic batch being read: its id and its messages' (raft index, stream seq).
type PendingBatch = (Box<str>, Vec<(u64, u64)>);

/// A stream group's log against its stream dir (`sd`: null when the dir is not on disk).
fn stream_log(
    g: &GroupRead,
    sd: Option<&discover::StreamDir>,
    problems: &mut Vec<Problem>,
) -> StreamLog {
    let name = &g.rep.name;
    let mut log = StreamLog {
        commit: known_commit(g),
        ..Default::default()
    };
    let mut from = 0;
    let mut clfs = 0;
    if let Some((file, index, data)) = snapshot_data(g) {
        from = index;
        match stream_group::decode_snapshot(data) {
            Ok(s) => {
                clfs = s.failed;
                log.snapshot = Some(StreamSnapshotState {
                    encoding: s.encoding,
                    msgs: s.msgs,
                    bytes: s.bytes,
                    first_seq: s.first_seq,
                    last_seq: s.last_seq,
                    failed: s.failed,
                    deleted: s.deleted,
                });
            }
            Err(e) => problems.push(Problem::new(
                Kind::RaftFileCorrupt,
                loc(name, file),
                format!("$SYS/_js_/{name}/{file}: the snapshot data is not a stream state as the server encodes it: {e}"),
            )),
        }
    }
    if let Some(sd) = sd {
        let opts = crate::check::Options {
            quick: true,
            ..Default::default()
        };
        let (rep, _) =
            crate::check::store::verify_stream_dir(sd, &opts, &crate::base::progress::NoProgress);
        log.stream_last_seq = if rep.encrypted { None } else { rep.last_seq };
    }
    let stream_last = log.stream_last_seq;
    let commit = log.commit;
    let take = |log: &mut StreamLog, idx: u64, seq: u64| {
        log.msgs += 1;
        log.first_seq.get_or_insert(seq);
        log.last_seq = Some(log.last_seq.map_or(seq, |l| l.max(seq)));
        if idx <= commit {
            log.last_committed_seq = Some(log.last_committed_seq.map_or(seq, |l| l.max(seq)));
            if stream_last.is_some_and(|l| seq > l) {
                log.reapply_first_seq.get_or_insert(seq);
                log.reapply_last_seq = Some(seq);
            }
        } else {
            log.uncommitted_msgs += 1;
        }
    };
    // an atomic batch is applied only when its commit entry is reached
    let mut batch: Option<PendingBatch> = None;
    for (idx, op) in &g.ops {
        if *idx <= from {
            continue;
        }
        match op {
            GroupOp::Msg(lseq) => {
                batch = None;
                take(&mut log, *idx, lseq.wrapping_add(1).wrapping_sub(clfs));
            }
            GroupOp::BatchMsg {
                id,
                seq,
                commit: done,
                lseq,
            } => {
                if *seq == 1 || batch.as_ref().is_none_or(|(b, _)| **b != **id) {
                    batch = Some((id.clone(), Vec::new()));
                }
                if let Some((_, v)) = &mut batch {
                    v.push((*idx, lseq.wrapping_add(1).wrapping_sub(clfs)));
                }
                if *done {
                    for (i, s) in batch.take().map(|b| b.1).unwrap_or_default() {
                        take(&mut log, i, s);
                    }
                }
            }
            GroupOp::StreamOther => {
                batch = None;
                log.other_ops += 1;
            }
            GroupOp::StreamSnapshot { failed } => clfs = *failed,
            _ => {}
        }
    }
    log
}

/// The release a consumer group's replay follows: `given` (`--server-version`), else the
/// release that wrote the stream dir (meta.inf `_nats.ver`, else its index format), else the
/// newest jetdir knows.
fn replay_release(given: Option<&Release>, sd: Option<&discover::StreamDir>) -> (Release, String) {
    if let Some(r) = given {
        return (r.clone(), "--server-version".into());
    }
    if let Some(sd) = sd {
        let src = DirSource::new(sd.dir.clone());
        let pre = prelude_for(&src, &sd.account, &sd.name, "", None);
        if let Some(found) = load::writer_release_from(&pre) {
            return found;
        }
    }
    (config_fields::newest_known(), "newest known release".into())
}

/// A consumer group's log against its consumer's o.dat (`dir`: `obs/<name>`), replayed as
/// `release` does.
fn consumer_log(
    g: &GroupRead,
    dir: Option<&Path>,
    ack_policy: Option<&str>,
    release: (Release, String),
    problems: &mut Vec<Problem>,
) -> ConsumerLog {
    let name = &g.rep.name;
    let rules = consumer_group::ApplyRules::of(Some(&release.0));
    let mut log = ConsumerLog {
        commit: known_commit(g),
        release: release.0.to_string(),
        release_from: release.1,
        ..Default::default()
    };
    let mut from = 0;
    let mut snap = None;
    if let Some((file, index, data)) = snapshot_data(g) {
        from = index;
        match consumer_state::parse(data) {
            Ok(st) => {
                if let Some(st) = &st {
                    log.snapshot = Some(ConsumerSeqs::of(&consumer_group::Replay::from_state(
                        Some(st),
                    )));
                }
                snap = st;
            }
            Err(e) => problems.push(Problem::new(
                Kind::RaftFileCorrupt,
                loc(name, file),
                format!("$SYS/_js_/{name}/{file}: the snapshot data is not a consumer state as the server encodes it: {e}"),
            )),
        }
    }
    let policy = consumer_group::AckPolicy::of(ack_policy);
    let mut max_deliver = -1i64;
    let mut replay = None;
    if let Some(dir) = dir.filter(|d| !d.join("meta.key").exists()) {
        if let Ok(b) = fs::read(dir.join("meta.inf")) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) {
                max_deliver = v
                    .get("config")
                    .unwrap_or(&v)
                    .get("max_deliver")
                    .and_then(|x| x.as_i64())
                    .unwrap_or(-1);
            }
        }
        if let Ok(b) = fs::read(dir.join("o.dat")) {
            if let Ok(st) = consumer_state::parse(&b) {
                let r = consumer_group::Replay::from_state(st.as_ref());
                log.on_disk = Some(ConsumerSeqs::of(&r));
                replay = Some(r);
            }
        }
    }
    // at restart the snapshot is applied first (the node is not leader yet), then every
    // committed entry after it
    if let (Some(r), Some(st)) = (&mut replay, &snap) {
        r.apply_snapshot(st);
    }
    for (idx, op) in &g.ops {
        if *idx <= from {
            continue;
        }
        let committed = *idx <= log.commit;
        match op {
            GroupOp::Consumer(op) => {
                match op {
                    consumer_group::ConsumerOp::Delivered { sseq, .. } => {
                        log.deliveries += 1;
                        log.last_delivered_stream_seq =
                            Some(log.last_delivered_stream_seq.unwrap_or(0).max(*sseq));
                    }
                    consumer_group::ConsumerOp::Ack { sseq, .. } => {
                        log.acks += 1;
                        log.last_acked_stream_seq =
                            Some(log.last_acked_stream_seq.unwrap_or(0).max(*sseq));
                    }
                    consumer_group::ConsumerOp::Skip { sseq } => {
                        log.other_ops += 1;
                        log.skips += 1;
                        log.last_skip_stream_seq =
                            Some(log.last_skip_stream_seq.unwrap_or(0).max(*sseq));
                    }
                    consumer_group::ConsumerOp::Reset { sseq } => {
                        log.other_ops += 1;
                        log.resets += 1;
                        log.last_reset_stream_seq = Some(*sseq);
                    }
                    _ => log.other_ops += 1,
                }
                if !committed {
                    log.uncommitted_ops += 1;
                } else if let Some(r) = &mut replay {
                    r.apply(op, policy, max_deliver, rules);
                }
            }
            GroupOp::ConsumerSnapshot(st) if committed => {
                if let Some(r) = &mut replay {
                    r.apply_snapshot(st);
                }
            }
            _ => {}
        }
    }
    log.after_restart = replay.as_ref().map(ConsumerSeqs::of);
    log
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
/// `release` (`--server-version`) is the release whose restart the consumer logs are replayed
/// for; without it, the release that wrote each stream dir, else the newest known.
pub fn cluster_report(
    path: &Path,
    server_name: Option<&str>,
    release: Option<&Release>,
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
        groups.push(read_group(&raft_root.join(n), n, &mut problems));
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
    // the stream and consumer groups' logs against the dirs they replicate
    let mut release_cache: HashMap<(String, String), (Release, String)> = HashMap::new();
    for g in &mut groups {
        let (Some(acc), Some(st)) = (g.rep.account.clone(), g.rep.stream.clone()) else {
            continue;
        };
        let sd = lay
            .streams
            .iter()
            .find(|s| s.account == acc && s.name == st);
        let sloc = Location::stream(&acc, &st);
        if g.ops_over {
            notes.push(format!(
                "raft group {}: more than {MAX_LOG_OPS} log entries after its snapshot: not compared with its dir",
                g.rep.name
            ));
            continue;
        }
        match (g.rep.kind, g.rep.consumer.clone()) {
            ("stream", None) => {
                let log = stream_log(g, sd, &mut problems);
                if let (Some(a), Some(b), Some(l)) = (
                    log.reapply_first_seq,
                    log.reapply_last_seq,
                    log.stream_last_seq,
                ) {
                    problems.push(Problem::new(
                        Kind::ClusterStreamLogAhead,
                        sloc,
                        format!(
                            "the stream dir ends at seq {l}; its raft group {} holds committed messages past it: a restart re-applies seqs {a}..{b} from the log into the stream",
                            g.rep.name
                        ),
                    ));
                }
                g.rep.stream_log = Some(log);
            }
            ("consumer", Some(c)) => {
                let dir = sd.map(|s| s.dir.join("obs").join(&c));
                let dir = dir.filter(|d| d.is_dir());
                let policy = dir.as_ref().and_then(|d| {
                    let b = fs::read(d.join("meta.inf")).ok()?;
                    let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
                    let p = v.get("config").unwrap_or(&v).get("ack_policy")?;
                    p.as_str().map(str::to_string)
                });
                let rel = release_cache
                    .entry((acc.clone(), st.clone()))
                    .or_insert_with(|| replay_release(release, sd))
                    .clone();
                let log = consumer_log(g, dir.as_deref(), policy.as_deref(), rel, &mut problems);
                if let (Some(d), Some(a)) = (&log.on_disk, &log.after_restart) {
                    if d != a {
                        problems.push(Problem::new(
                            Kind::ClusterConsumerLogAhead,
                            sloc.consumer(c.clone()),
                            format!(
                                "o.dat says delivered {} / ack floor {} (stream seqs); its raft group {} holds committed updates past them: a restart moves the consumer to delivered {} / ack floor {} ({} ack pending)",
                                d.delivered_stream_seq,
                                d.ack_floor_stream_seq,
                                g.rep.name,
                                a.delivered_stream_seq,
                                a.ack_floor_stream_seq,
                                a.num_ack_pending
                            ),
                        ));
                    }
                }
                g.rep.consumer_log = Some(log);
            }
            _ => {}
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
        notes.push(
            "not decoded: meta WAL ops other than stream/consumer assign/update/remove".into(),
        );
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
    use std::collections::BTreeMap;

    const CL: &str = "v2.15.1-cluster-n1";

    #[test]
    fn the_sample_node_lists_three_groups_mapped_to_cl_and_d() {
        let d = testdata::sample(CL);
        let store = d.path().join(CL).join("store");
        let r = cluster_report(&store, None, None).unwrap();
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
        let r0 = cluster_report(&plain.path().join("v2.15.1-plain/store"), None, None).unwrap();
        assert!(!r0.clustered && r0.ok && r0.groups.is_empty() && r0.streams.is_empty());

        // with the server name: n1's id, still a member of everything
        let r = cluster_report(&store, Some("n1"), None).unwrap();
        assert_eq!(
            r.self_peer.as_deref(),
            Some(raft::server_peer_id("n1").as_str())
        );
        assert!(r.streams.iter().all(|p| p.fate == "kept"));
        // a server name that is no peer: the stream and its consumer are not this node's
        let r = cluster_report(&store, Some("elsewhere"), None).unwrap();
        assert!(
            r.streams.iter().all(|p| p.fate == "not_member"),
            "{:?}",
            r.streams
        );
        assert_eq!(r.exit_code(), 1);
    }

    const LOG: &str = "v2.15.1-cluster-log-n1";

    /// Every entry of every stream and consumer group WAL of both real samples decodes.
    #[test]
    fn the_samples_stream_and_consumer_logs_decode_entirely() {
        for sample in [
            CL,
            LOG,
            "v2.15.1-cluster-batch-n1",
            "v2.15.1-cluster-ops-n1",
            "v2.10.26-cluster-ops-n1",
        ] {
            let d = testdata::sample(sample);
            let r = cluster_report(&d.path().join(sample).join("store"), Some("n1"), None).unwrap();
            for g in &r.groups {
                assert_eq!((g.wal.bad_records, g.wal.bad_entries), (0, 0), "{g:#?}");
                match g.kind {
                    "stream" => assert!(g.stream_log.is_some(), "{g:#?}"),
                    "consumer" => assert!(g.consumer_log.is_some(), "{g:#?}"),
                    _ => {}
                }
            }
        }
        // the clean sample: nothing past the dirs
        let d = testdata::sample(CL);
        let r = cluster_report(&d.path().join(CL).join("store"), None, None).unwrap();
        let s = r.groups.iter().find(|g| g.kind == "stream").unwrap();
        let sl = s.stream_log.as_ref().unwrap();
        assert_eq!((sl.stream_last_seq, sl.reapply_first_seq), (Some(5), None));
        assert_eq!(sl.snapshot.as_ref().unwrap().last_seq, 5);
        let c = r.groups.iter().find(|g| g.kind == "consumer").unwrap();
        let cl = c.consumer_log.as_ref().unwrap();
        assert_eq!(cl.on_disk, cl.after_restart);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    /// The crash sample: n1's dirs are behind its raft logs. jetdir's prediction equals what
    /// n1 did when it was started without quorum (fixtures/samples/README.md, `n1_alone_after`).
    #[test]
    fn a_stream_dir_and_o_dat_behind_their_logs_get_what_the_server_re_applied() {
        let d = testdata::sample(LOG);
        let facts: serde_json::Value =
            serde_json::from_slice(&testdata::read(&d, LOG, "facts.json")).unwrap();
        let after = &facts["n1_alone_after"];
        let r = cluster_report(&d.path().join(LOG).join("store"), Some("n1"), None).unwrap();
        assert!(r.ok, "warnings only: {:?}", r.problems);
        let s = r.groups.iter().find(|g| g.kind == "stream").unwrap();
        let sl = s.stream_log.as_ref().unwrap();
        assert_eq!(sl.stream_last_seq, Some(5));
        assert_eq!((sl.first_seq, sl.last_seq), (Some(6), Some(10)));
        assert_eq!((sl.msgs, sl.uncommitted_msgs), (5, 1));
        assert_eq!(sl.reapply_first_seq, Some(6));
        assert_eq!(sl.reapply_last_seq, after["stream_last_seq"].as_u64());
        let c = r.groups.iter().find(|g| g.kind == "consumer").unwrap();
        let cl = c.consumer_log.as_ref().unwrap();
        let want = &after["consumer"];
        let got = cl.after_restart.as_ref().unwrap();
        assert_eq!(serde_json::to_value(got).unwrap(), *want, "{cl:#?}");
        assert_eq!(cl.on_disk.as_ref().unwrap().delivered_stream_seq, 3);
        let kinds: Vec<Kind> = r.problems.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [Kind::ClusterConsumerLogAhead, Kind::ClusterStreamLogAhead]
        );
        assert!(r.problems[1].message.contains("re-applies seqs 6..9"));
        // without the stream dir nothing is claimed about it; the log is still read
        std::fs::remove_dir_all(d.path().join(LOG).join("store/jetstream/$G/streams/LOG")).unwrap();
        let r = cluster_report(&d.path().join(LOG).join("store"), Some("n1"), None).unwrap();
        let s = r.groups.iter().find(|g| g.kind == "stream").unwrap();
        let sl = s.stream_log.as_ref().unwrap();
        assert_eq!(
            (sl.stream_last_seq, sl.reapply_first_seq, sl.last_seq),
            (None, None, Some(10))
        );
        assert!(!r.problems.iter().any(|p| matches!(
            p.kind,
            Kind::ClusterStreamLogAhead | Kind::ClusterConsumerLogAhead
        )));
    }

    /// Two crash samples with every consumer op (tests/support/cluster_log.py): LC explicit,
    /// LA ack all, LN ack none, LS skipped ahead (a filter no message has), on 2.15.1 LR reset
    /// to seq 4. The prediction of every consumer's o.dat equals what n1 made of it, started
    /// without quorum (`n1_alone_after`); 2.10.26 leaves o.dat alone on a skip, 2.11+ moves it.
    #[test]
    fn skips_resets_and_ack_none_replay_as_the_servers_did() {
        for (sample, skip_moves) in [
            ("v2.15.1-cluster-ops-n1", true),
            ("v2.10.26-cluster-ops-n1", false),
        ] {
            let d = testdata::sample(sample);
            let facts: serde_json::Value =
                serde_json::from_slice(&testdata::read(&d, sample, "facts.json")).unwrap();
            let after = &facts["n1_alone_after"];
            let store = d.path().join(sample).join("store");
            let r = cluster_report(&store, Some("n1"), None).unwrap();
            let logs: BTreeMap<&str, &ConsumerLog> = r
                .groups
                .iter()
                .filter_map(|g| Some((g.consumer.as_deref()?, g.consumer_log.as_ref()?)))
                .collect();
            let names: Vec<&str> = logs.keys().copied().collect();
            let want: &[&str] = if skip_moves {
                &["LA", "LC", "LN", "LR", "LS"]
            } else {
                &["LA", "LC", "LN", "LS"]
            };
            assert_eq!(names, want, "{sample}");
            for (name, log) in &logs {
                assert_eq!(
                    serde_json::to_value(log.after_restart.as_ref().unwrap()).unwrap(),
                    after["consumers"][name],
                    "{sample} {name}: {log:#?}"
                );
            }
            let s = r.groups.iter().find(|g| g.kind == "stream").unwrap();
            let sl = s.stream_log.as_ref().unwrap();
            assert_eq!(sl.reapply_last_seq, after["stream_last_seq"].as_u64());
            // LN: ack floor with delivered
            let ln = logs["LN"].after_restart.as_ref().unwrap();
            assert_eq!(
                (ln.ack_floor_stream_seq, ln.num_ack_pending),
                (ln.delivered_stream_seq, 0)
            );
            // LS: a committed skip to 11 in the log; o.dat follows it from 2.11 only
            let ls = logs["LS"];
            assert_eq!((ls.last_skip_stream_seq, ls.deliveries), (Some(11), 0));
            let moved = ls.after_restart.as_ref().unwrap().delivered_stream_seq;
            assert_eq!(moved == 10, skip_moves, "{ls:#?}");
            assert_eq!(ls.on_disk != ls.after_restart, skip_moves, "{ls:#?}");
            let newest = cluster_report(&store, Some("n1"), Some(&Release::new(2, 15, 1))).unwrap();
            let ls_newest = newest
                .groups
                .iter()
                .find(|g| g.consumer.as_deref() == Some("LS"))
                .and_then(|g| g.consumer_log.as_ref())
                .unwrap();
            assert_eq!(ls_newest.release_from, "--server-version");
            assert_eq!(
                ls_newest
                    .after_restart
                    .as_ref()
                    .unwrap()
                    .delivered_stream_seq,
                10
            );
            if skip_moves {
                let lr = logs["LR"];
                assert_eq!((lr.resets, lr.last_reset_stream_seq), (1, Some(4)));
                let a = lr.after_restart.as_ref().unwrap();
                assert_eq!((a.ack_floor_stream_seq, a.ack_floor_consumer_seq), (3, 0));
            }
            assert!(logs["LS"].release_from.contains("index.db"), "{ls:#?}");
        }
    }

    /// Atomic batches count only once their commit entry is in the log; a batch cut off by
    /// another op is dropped, as the server rejects it; messages past the commit index are
    /// not re-applied.
    #[test]
    fn batches_and_the_commit_index_in_the_stream_log() {
        let d = testdata::sample(LOG);
        let store = d.path().join(LOG).join("store");
        let mut problems = Vec::new();
        let mut g = read_group(
            &store.join("jetstream/$SYS/_js_/S-R3F-XIaMAxph"),
            "S-R3F-XIaMAxph",
            &mut problems,
        );
        let b = |id: &str, seq, commit, lseq| GroupOp::BatchMsg {
            id: id.into(),
            seq,
            commit,
            lseq,
        };
        // snapshot at index 6 (last seq 5); commit known: 12
        g.max_commit = 12;
        g.ops = vec![
            (7, GroupOp::Msg(5)),
            (8, b("x", 1, false, 6)),
            (8, b("x", 2, true, 7)),
            (9, b("y", 1, false, 8)),
            (10, GroupOp::StreamOther),
            (11, b("z", 1, false, 8)),
            (11, b("z", 2, true, 9)),
            (13, GroupOp::Msg(10)),
        ];
        let lay = discover::discover(&store).unwrap();
        let sd = lay.streams.iter().find(|s| s.name == "LOG");
        let log = stream_log(&g, sd, &mut problems);
        assert_eq!(log.commit, 12);
        assert_eq!((log.msgs, log.uncommitted_msgs, log.other_ops), (6, 1, 1));
        assert_eq!((log.first_seq, log.last_seq), (Some(6), Some(11)));
        assert_eq!(log.last_committed_seq, Some(10));
        assert_eq!(
            (
                log.stream_last_seq,
                log.reapply_first_seq,
                log.reapply_last_seq
            ),
            (Some(5), Some(6), Some(10))
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    /// A stream entry that does not decode is damage of the log (raft_wal_damaged), not a panic.
    #[test]
    fn an_undecodable_stream_entry_is_a_finding() {
        let d = testdata::sample(LOG);
        let store = d.path().join(LOG).join("store");
        let g = store.join("jetstream/$SYS/_js_/S-R3F-XIaMAxph/msgs/3.blk");
        let raw = fs::read(&g).unwrap();
        // rewrite the block with the first stream message entry's op byte changed
        // (after the 42-byte append-entry header, the entry's 4-byte length and type byte),
        // every record checksum valid
        let key = block_key("S-R3F-XIaMAxph", 3);
        let mut b = Vec::new();
        let mut seq = None;
        for r in Records::new(&raw) {
            let r = r.unwrap();
            let mut payload = r.payload.to_vec();
            let first_is_msg = r.kind() == RecordKind::Message
                && raft::parse_append_entry(r.payload)
                    .unwrap()
                    .entries
                    .first()
                    .is_some_and(|e| e.kind == EntryType::Normal && e.data.first() == Some(&4));
            if seq.is_none() && first_is_msg {
                payload[42 + 4 + 1] = 99;
                seq = Some(r.seq);
            }
            crate::filestore::block::encode_record(
                &mut b, &key, r.raw_seq, r.ts, r.subject, r.headers, &payload,
            );
        }
        fs::write(&g, &b).unwrap();
        let r = cluster_report(&store, Some("n1"), None).unwrap();
        let p = r
            .problems
            .iter()
            .find(|p| p.kind == Kind::RaftWalDamaged)
            .unwrap_or_else(|| panic!("{:?}", r.problems));
        assert_eq!(p.loc.seq, seq);
        assert!(
            p.message.contains("unknown stream entry op type 99"),
            "{}",
            p.message
        );
        let s = r.groups.iter().find(|g| g.kind == "stream").unwrap();
        assert_eq!((s.wal.bad_records, s.wal.bad_entries), (0, 1));
    }

    #[test]
    fn a_dropped_in_stream_and_consumer_are_orphans() {
        let d = testdata::sample(CL);
        let store = d.path().join(CL).join("store");
        let streams = store.join("jetstream/$G/streams");
        crate::testdata::copy_tree(&streams.join("CL"), &streams.join("X"));
        crate::testdata::copy_tree(&streams.join("CL/obs/D"), &streams.join("CL/obs/E"));
        let r = cluster_report(&store, None, None).unwrap();
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
        let r = cluster_report(&store, None, None).unwrap();
        assert!(r.ok, "{r:#?}");
        let s = r.groups.iter().find(|g| g.kind == "stream").unwrap();
        assert_eq!((s.wal.blocks, s.wal.encrypted, s.wal.entries), (1, 1, 0));
        assert!(r.notes.iter().any(|n| n.contains("encrypted")));
        // without the key file the same bytes are damage
        fs::remove_file(g.join("1.key")).unwrap();
        let r = cluster_report(&store, None, None).unwrap();
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
        let r = cluster_report(&store, None, None).unwrap();
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
