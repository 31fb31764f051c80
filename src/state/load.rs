//! The load model: what a nats-server release does with a stream's files when it starts.
//!
//! Facts (nats-server `server/filestore.go`, `newFileStoreWithCreated` and
//! `recoverFullState`, tags v2.10.26 to v2.14.5; each confirmed by the differential matrix,
//! `tests/matrix-findings.md`):
//! - 2.10+ read `msgs/index.db` and trust it unless it is missing, damaged (checksum, magic,
//!   a version the release does not know: 2.10 reads 1, 2.11 up to 2, 2.12 up to 3, 2.14+ up
//!   to 4), or outdated: its last block is missing ("could not locate msg block"), the last
//!   8 bytes of that block differ from the checksum it recorded ("last block has additional
//!   entries"), a block after it exists ("found extra blocks"), or a block it lists is gone.
//!   Then the state is rebuilt from the blocks: delete maps and limit removals that only the
//!   index knew are forgotten; tombstones and erased records still count. When the index was
//!   readable but outdated ("prior state"), its last sequence is kept if the blocks end
//!   earlier (the server writes a tombstone for it).
//! - A rebuilt block is truncated at its first record with a bad framing or checksum: the
//!   rest of the block is lost, including tombstones there (the messages they deleted come
//!   back, M7). With a trusted index a framing error still truncates the block when it is
//!   loaded (M8); a checksum error only makes that one message unreadable (M6).
//! - Then, always: max_msgs and max_bytes (discard old only) drop the oldest messages,
//!   max_age drops messages at least that old at start (not with subject delete markers),
//!   max_msgs_per_subject drops the oldest of each subject over the limit (M1, M2).
use crate::base::problem::{Kind, Location, Problem};
use crate::base::release::Release;
use crate::filestore::block::{self, RecordKind};
use crate::filestore::source::StreamSource;
use crate::state::prelude::Prelude;
use crate::state::scan::{self, BlockScan, DeadSet, ScanCtx};
use std::collections::HashMap;

/// What to model: the server release that loads the files, and when.
#[derive(Debug, Clone)]
pub struct Target {
    /// The release that loads the store; `None`: the release that wrote it.
    pub release: Option<Release>,
    /// The time of the load, ns since the epoch (for max_age).
    pub at_ns: i64,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            release: None,
            at_ns: crate::base::time::now_ns(),
        }
    }
}

/// How the server recovers the stream's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// index.db is read and trusted.
    Index,
    /// Rebuilt from the blocks.
    Rebuild {
        /// Why, in the server's words where it logs them.
        why: String,
        /// Last sequence and time of an outdated index, kept when the blocks end earlier.
        prior_last: Option<(u64, i64)>,
    },
    /// 2.9 per-block `.idx`/`.fss` files.
    Legacy,
}

impl Recovery {
    /// True when the state is rebuilt from the blocks.
    pub fn rebuilds(&self) -> bool {
        matches!(self, Recovery::Rebuild { .. })
    }
}

/// The release that wrote the stream, and where that comes from: meta.inf's `_nats.ver` when
/// present, else the oldest release that writes its index format (index.db version 1: 2.10;
/// legacy files: 2.9).
pub fn writer_release_from(pre: &Prelude) -> Option<(Release, String)> {
    let from_meta = pre
        .meta
        .as_ref()
        .and_then(|m| m.json.get("metadata"))
        .and_then(|m| m.get("_nats.ver"))
        .and_then(|v| v.as_str())
        .and_then(|v| Release::parse(v).ok());
    if let Some(r) = from_meta {
        return Some((r, "meta.inf _nats.ver".into()));
    }
    let (r, what) = match pre.index_db.as_ref().map(|d| d.version) {
        Some(1) => (Release::new(2, 10, 0), "index.db version 1: 2.10"),
        Some(2) => (Release::new(2, 11, 0), "index.db version 2: 2.11"),
        Some(3) => (Release::new(2, 12, 0), "index.db version 3: 2.12"),
        Some(_) => (Release::new(2, 14, 0), "index.db version 4: 2.14 or later"),
        None if !pre.idx.is_empty() => (Release::new(2, 9, 0), "legacy .idx files: 2.9"),
        None => return None,
    };
    Some((r, what.into()))
}

/// Highest index.db version a release reads.
pub fn index_db_version_read_by(r: &Release) -> u8 {
    match (r.major, r.minor) {
        (2, ..=10) => 1,
        (2, 11) => 2,
        (2, 12..=13) => 3,
        _ => 4,
    }
}

/// Whether `r` recovers an account's streams in parallel (2.11.11 and later 2.11 releases,
/// 2.12.2 and later): then which of two streams with colliding subjects it loads depends on
/// timing. Earlier releases recover them one by one in directory-name order.
pub fn recovers_streams_in_parallel(r: &Release) -> bool {
    let b = r.base();
    b >= Release::new(2, 12, 2) || (b.minor == 11 && b >= Release::new(2, 11, 11))
}

/// True for releases before 2.10 (legacy per-block index files, no index.db).
pub fn is_legacy(r: &Release) -> bool {
    r.major == 2 && r.minor < 10
}

/// Decide how `release` recovers the stream (before its blocks are scanned).
pub fn decide(pre: &Prelude, release: Option<&Release>, src: &dyn StreamSource) -> Recovery {
    let has_db_file = pre.files.iter().any(|f| f == "msgs/index.db");
    if release.is_some_and(is_legacy) || (!has_db_file && !pre.idx.is_empty()) {
        return Recovery::Legacy;
    }
    let rebuild = |why: &str, prior: bool| Recovery::Rebuild {
        why: why.to_string(),
        prior_last: pre
            .index_db
            .as_ref()
            .filter(|_| prior)
            .map(|d| (d.last_seq, d.last_ts)),
    };
    if !has_db_file {
        return rebuild("there is no index.db", false);
    }
    let Some(db) = &pre.index_db else {
        return rebuild("index.db is damaged", false);
    };
    if let Some(r) = release {
        let max = index_db_version_read_by(r);
        if db.version > max {
            return rebuild(
                &format!(
                    "index.db version {} is newer than {r} reads (up to {max}): \"Stream state magic and version mismatch\"",
                    db.version
                ),
                false,
            );
        }
    }
    // The block that was last when the index was written must still end with its checksum;
    // one the server cannot decrypt (its key file missing or damaged) ends with garbage to
    // it (matrix `--cipher`, `key_missing_last`, `key_flip_last`: 2.10-2.15 rebuild).
    if pre.unopened.block(db.last_block) {
        return rebuild(
            "index.db is outdated: \"last block has additional entries\" (the last block does not decrypt)",
            true,
        );
    }
    let last_rel = format!("msgs/{}.blk", db.last_block);
    match src.tail(&last_rel, 8) {
        Ok(Some(t)) => {
            // an empty block ends with no checksum: the index records zeros then
            let tail: [u8; 8] = t.as_slice().try_into().unwrap_or([0; 8]);
            if tail != db.last_checksum {
                return rebuild(
                    "index.db is outdated: \"last block has additional entries\"",
                    true,
                );
            }
        }
        // an archive's blocks are not at hand a second time: trust the listing
        Ok(None) if pre.blocks.contains(&db.last_block) => {}
        // unreadable blocks are reported by the scan
        Err(_) if pre.blocks.contains(&db.last_block) => {}
        Ok(None) | Err(_) => {
            return rebuild(
                &format!(
                    "index.db is outdated: \"could not locate msg block {}\"",
                    db.last_block
                ),
                true,
            );
        }
    }
    if pre.blocks.iter().any(|&b| b > db.last_block) {
        return rebuild("index.db is outdated: \"found extra blocks\"", true);
    }
    // 2.10.26 and 2.11.6 keep trusting the index when a block before the last is gone: its
    // messages are missing from the counts, the index's deletes and subject counts stay
    // (matrix `blk_missing_mid`); 2.11.11+ rebuild.
    let keeps_index = release.is_some_and(|r| *r < Release::new(2, 11, 7));
    if let Some(b) = db
        .blocks
        .iter()
        .find(|b| b.msgs() > 0 && !pre.blocks.contains(&b.index))
        .filter(|_| !keeps_index)
    {
        return rebuild(
            &format!(
                "index.db lists a block that is gone: \"could not locate msg block {}\"",
                b.index
            ),
            true,
        );
    }
    Recovery::Index
}

/// The dead set the scan applies: the index's delete maps only when the index is used.
pub fn dead_set_for(pre: &Prelude, recovery: &Recovery) -> DeadSet {
    if recovery.rebuilds() {
        DeadSet::default()
    } else {
        pre.dead.clone()
    }
}

/// A block the server truncates, and what that costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Block file, relative to the stream dir.
    pub file: String,
    /// Offset of the first rejected record (in the plain block).
    pub offset: usize,
    /// Sequences that were live and are lost, as inclusive ranges.
    pub lost: Vec<(u64, u64)>,
    /// Deleted sequences whose tombstones are cut away (they come back unless deleted again).
    pub revived: Vec<u64>,
    /// A torn last record after a crash: nothing acknowledged is lost.
    pub torn: bool,
}

/// Inclusive ranges of an ascending sequence list.
pub fn ranges(seqs: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for q in seqs {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == q => *b = q,
            _ => out.push((q, q)),
        }
    }
    out
}

/// "46..60 (15 messages)" style text for ranges, at most a few ranges spelled out.
pub fn ranges_text(r: &[(u64, u64)]) -> String {
    let n: u64 = r.iter().map(|(a, b)| b - a + 1).sum();
    format!(
        "{} ({n} message{})",
        crate::base::report::ranges_text(r, 5),
        if n == 1 { "" } else { "s" }
    )
}

/// Truncate every block the server truncates: the scan of such a block is replaced by a scan
/// of the part the server keeps (its problems are kept). Returns what each truncation costs.
pub fn truncate_blocks(
    recovery: &Recovery,
    release: Option<&Release>,
    (legacy_indexed, index): (&[u32], Option<&crate::filestore::index_db::IndexDb>),
    scans: &mut [BlockScan],
    ctx: &ScanCtx,
    src: &dyn StreamSource,
) -> Vec<Truncation> {
    let mut out = Vec::new();
    let last_index = scans.iter().map(|s| s.index).max();
    for s in scans.iter_mut() {
        let Some(d) = s.damage else { continue };
        let truncates = match recovery {
            Recovery::Rebuild { .. } => true,
            // a trusted index does not protect against framing errors (2.10+, M8): loading
            // the block fails on one anywhere in it, and the rebuild that follows truncates
            // at the first bad record (a checksum error before it included)
            Recovery::Index => {
                (d.framing
                    || s.problems.iter().any(|p| p.kind == Kind::RecordFraming)
                    || s.suppressed.contains_key(Kind::RecordFraming.as_str()))
                    && !release.is_some_and(is_legacy)
            }
            // 2.9 rebuilds a block whose .idx is missing, and truncates it as 2.10+ do; and
            // one its cache indexing gives up on, when it first loads it
            Recovery::Legacy => !legacy_indexed.contains(&s.index) || s.legacy_cache_fails,
        };
        if !truncates {
            continue;
        }
        let mut scratch = Vec::new();
        let mut kept = match src.fetch_block(&s.file, Location::default(), &mut scratch) {
            Some((decoded, file_len)) => {
                let stop = ScanCtx {
                    stop_at_damage: true,
                    ..*ctx
                };
                let decoded = decoded.map(|(p, c)| (std::borrow::Cow::Owned(p), c));
                scan::scan_decoded(&stop, s.index, file_len, decoded)
            }
            // an archive's block, read once: the part kept was scanned as it streamed by
            None => match s.kept.take() {
                Some(k) => *k,
                None => continue,
            },
        };
        // (an archive's block was scanned before the dead set was known: leave it out here)
        let lost = ranges(
            s.live_bits
                .iter()
                .filter(|&q| !kept.live_bits.get(q) && !ctx.dead.is_dead(s.index, q)),
        );
        let kept_tombs: std::collections::HashSet<u64> = kept.tombstones.iter().copied().collect();
        // under a trusted index the deletes stay in its delete maps: nothing comes back
        let revived: Vec<u64> = s
            .tombstones
            .iter()
            .copied()
            .filter(|q| !kept_tombs.contains(q))
            .filter(|_| !matches!(recovery, Recovery::Index))
            .collect();
        // Nothing of the block reads, yet index.db (written after its records, at a clean
        // stop) lists messages in it: not a torn write but a block that does not read (an
        // encrypted block the server wrote undecryptable, matrix `--cipher` AGE on 2.10.26 to
        // 2.11.5): the index's messages are lost.
        let index_knew = index
            .and_then(|db| db.blocks.iter().find(|b| b.index == s.index))
            .filter(|b| {
                d.offset == 0
                    && b.msgs() > 0
                    && b.last_seq
                        .checked_sub(b.first_seq)
                        .is_some_and(|w| w < 1 << 22)
            });
        let lost = match index_knew {
            Some(b) if lost.is_empty() && kept.live_bits.first().is_none() => {
                let gone: std::collections::HashSet<u64> = b.deleted.iter().copied().collect();
                ranges((b.first_seq..=b.last_seq).filter(|q| !gone.contains(q)))
            }
            _ => lost,
        };
        let torn = d.framing
            && d.nothing_after
            && Some(s.index) == last_index
            && lost.is_empty()
            && index_knew.is_none();
        kept.problems = std::mem::take(&mut s.problems);
        kept.damage = s.damage;
        out.push(Truncation {
            file: s.file.clone(),
            offset: d.offset,
            lost,
            revived,
            torn,
        });
        *s = kept;
    }
    out
}

/// Releases whose `MsgScheduling.decode` reads a sched.db without checking that its entries
/// are there (2.12.0-2.12.11, 2.14.0-2.14.2; fixed in 2.12.12 and 2.14.3): see
/// [`crate::filestore::aux_state::sched_panics_unchecked_decoder`].
pub fn sched_decoder_unchecked(r: &Release) -> bool {
    let b = r.base();
    (b >= Release::new(2, 12, 0) && b < Release::new(2, 12, 12))
        || (b >= Release::new(2, 14, 0) && b < Release::new(2, 14, 3))
}

/// Releases whose `HashWheel.Decode` walks a thw.db's whole count even past the file's end
/// (every 2.11.x, 2.12.0-2.12.11, 2.14.0-2.14.2): see
/// [`crate::filestore::aux_state::thw_steps_unchecked_decoder`].
pub fn ttl_decoder_unchecked(r: &Release) -> bool {
    let b = r.base();
    (b >= Release::new(2, 11, 0) && b < Release::new(2, 12, 12))
        || (b >= Release::new(2, 14, 0) && b < Release::new(2, 14, 3))
}

/// The limits of a stream config that the server enforces at load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `max_msgs` (discard old only).
    pub max_msgs: Option<u64>,
    /// `max_bytes` (discard old only).
    pub max_bytes: Option<u64>,
    /// `max_age` in ns.
    pub max_age_ns: Option<i64>,
    /// `subject_delete_marker_ttl` in whole seconds: max_age then expires messages after the
    /// load (not during it), skips `Nats-TTL: never` ones, and writes a delete marker for
    /// each subject it empties.
    pub sdm_ttl_s: Option<u64>,
    /// 2.11.0 and 2.11.1 with `subject_delete_marker_ttl`: the server's recovery
    /// (`expireMsgsOnRecover`) expires the old messages of the first block before the load is
    /// over, `Nats-TTL: never` ones included, and the delete markers it asks for are never
    /// written (the callback it gets back is dropped); it stops after that one block, and the
    /// expiry after the load does the rest as 2.11.2+ do (nats-server 5dad5aa, "Don't expire
    /// MaxAge on recover when SDM enabled", in 2.11.2). Set by [`Limits::for_release`].
    pub sdm_recovery_block: bool,
    /// `max_msgs_per_subject`.
    pub max_per_subject: Option<u64>,
    /// `allow_msg_ttl` without subject delete markers: messages expire at their `Nats-TTL`.
    pub msg_ttl: bool,
    /// Interest retention: every consumer has acknowledged the messages up to
    /// this sequence (the lowest ack floor), so the server removes them when the consumers
    /// start (2.9 after a rebuild forgot its removals, M1; a no-op where tombstones kept them).
    pub acked_floor: Option<u64>,
}

impl Limits {
    /// From a stream config (meta.inf / backup.json `config`).
    pub fn of(cfg: &serde_json::Map<String, serde_json::Value>) -> Limits {
        let pos = |k: &str| {
            cfg.get(k)
                .and_then(|v| v.as_i64())
                .filter(|&v| v > 0)
                .map(|v| v as u64)
        };
        let discard_old = cfg.get("discard").and_then(|v| v.as_str()) != Some("new");
        let sdm = pos("subject_delete_marker_ttl").is_some();
        Limits {
            max_msgs: pos("max_msgs").filter(|_| discard_old),
            max_bytes: pos("max_bytes").filter(|_| discard_old),
            max_age_ns: pos("max_age").map(|v| v as i64),
            sdm_ttl_s: pos("subject_delete_marker_ttl")
                .map(|ns| ns / 1_000_000_000)
                .filter(|&s| s > 0),
            sdm_recovery_block: false,
            max_per_subject: pos("max_msgs_per_subject"),
            msg_ttl: cfg.get("allow_msg_ttl").and_then(|v| v.as_bool()) == Some(true) && !sdm,
            acked_floor: None,
        }
    }

    /// [`Limits::of`] as `release` enforces them at load (`None`: the newest behaviour).
    pub fn for_release(
        cfg: &serde_json::Map<String, serde_json::Value>,
        release: Option<&Release>,
    ) -> Limits {
        let mut l = Limits::of(cfg);
        l.sdm_recovery_block = l.sdm_ttl_s.is_some()
            && release.is_some_and(|r| {
                r.base() >= Release::new(2, 11, 0) && r.base() < Release::new(2, 11, 2)
            });
        l
    }
}

/// Messages one limit removes at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRemoval {
    /// The config field: `max_msgs`, `max_bytes`, `max_age`, `max_msgs_per_subject`.
    pub limit: &'static str,
    /// Messages removed.
    pub messages: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// Removed sequences as inclusive ranges (at most [`MAX_RANGES`] kept).
    pub ranges: Vec<(u64, u64)>,
    /// Time of the newest message removed (the stream keeps it as its last time when the
    /// limits empty it).
    pub last_ts: i64,
}

/// A subject delete marker the server writes after the load (`subject_delete_marker_ttl`):
/// max_age removed the last message of `subject`. It gets the next sequence, in the order of
/// the messages it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The emptied subject.
    pub subject: Vec<u8>,
    /// The expired message it replaces (the marker's `Nats-Rollup: sub` purges it).
    pub replaces: u64,
    /// The headers the server writes.
    pub headers: Vec<u8>,
}

impl Marker {
    /// The marker's stored size (`fileStoreMsgSize`: 22 + subject + 4 + headers + 8).
    pub fn bytes(&self) -> u64 {
        (22 + self.subject.len() + 4 + self.headers.len() + 8) as u64
    }
}

/// The headers of a max_age subject delete marker (`handleRemovalOrSdm`).
pub fn marker_headers(ttl_s: u64) -> Vec<u8> {
    format!(
        "NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: {}\r\nNats-Rollup: sub\r\n\r\n",
        crate::base::time::go_duration_secs(ttl_s)
    )
    .into_bytes()
}

/// True for a message that is itself a delete marker (`isSubjectDeleteMarker`): it has a
/// `Nats-Marker-Reason`, or is a KV purge; its expiry writes no new marker.
pub fn is_delete_marker(hdr: Option<&[u8]>) -> bool {
    hdr.is_some_and(|h| {
        header_value(h, b"Nats-Marker-Reason").is_some_and(|v| !v.is_empty())
            || header_value(h, b"KV-Operation") == Some(b"PURGE")
    })
}

/// What the limits do at load: the messages each removes, and the delete markers written.
#[derive(Debug, Clone, Default)]
pub struct Enforced {
    /// Per limit, the messages removed.
    pub removed: Vec<LimitRemoval>,
    /// Subject delete markers appended after the last sequence.
    pub markers: Vec<Marker>,
}

/// Ranges kept per limit removal (the count is always exact).
pub const MAX_RANGES: usize = 1000;

/// Apply the limits the server enforces at load, oldest first, by killing messages in the
/// scans. Needs the blocks again (`src`); returns what each limit removed and the subject
/// delete markers written.
pub fn enforce_limits(
    limits: &Limits,
    at_ns: i64,
    scans: &mut [BlockScan],
    src: &dyn StreamSource,
) -> Enforced {
    let mut markers = Vec::new();
    if *limits == Limits::default() {
        return Enforced::default();
    }
    let mut n: u64 = scans.iter().map(|s| s.msgs).sum();
    let mut b: u64 = scans.iter().map(|s| s.bytes).sum();
    let mut per_subject: HashMap<Vec<u8>, u64> = HashMap::new();
    let count_subjects = limits.max_per_subject.is_some() || limits.sdm_ttl_s.is_some();
    for s in scans.iter().filter(|_| count_subjects) {
        for (i, name) in s.subject_names.iter().enumerate() {
            let c = s.subject_counts.get(i).copied().unwrap_or(0);
            if c > 0 {
                *per_subject.entry(name.clone()).or_insert(0) += c;
            }
        }
    }
    let cutoff = limits.max_age_ns.map(|a| at_ns.saturating_sub(a));
    let first_ts = scans.iter().find(|s| s.msgs > 0).map(|s| s.first_ts);
    let front_needed = limits.max_msgs.is_some_and(|m| n > m)
        || limits.max_bytes.is_some_and(|m| b > m)
        || matches!((limits.acked_floor, scans.iter().find_map(|s| s.first_live)), (Some(f), Some(q)) if q <= f)
        || matches!((cutoff, first_ts), (Some(c), Some(t)) if t <= c);
    let subj_needed = limits
        .max_per_subject
        .is_some_and(|m| per_subject.values().any(|&c| c > m));
    if !front_needed && !subj_needed && !limits.msg_ttl {
        return Enforced::default();
    }
    let mut removed: Vec<LimitRemoval> = [
        "max_msgs",
        "max_bytes",
        "max_age",
        "max_msgs_per_subject",
        "msg_ttl",
        "acked",
    ]
    .iter()
    .map(|&l| LimitRemoval {
        limit: l,
        messages: 0,
        bytes: 0,
        ranges: Vec::new(),
        last_ts: 0,
    })
    .collect();
    let mut front_done = !front_needed;
    // the block 2.11.0/2.11.1's recovery expires (the first one, even when it holds nothing)
    let recovery_block = scans
        .iter()
        .map(|s| s.index)
        .min()
        .filter(|_| limits.sdm_recovery_block);
    for s in scans.iter_mut() {
        if s.msgs == 0 {
            continue;
        }
        let in_recovery = recovery_block == Some(s.index);
        let mut scratch = Vec::new();
        let Some((Ok((plain, _)), _)) = src.fetch_block(&s.file, Location::default(), &mut scratch)
        else {
            continue;
        };
        let mut kills: Vec<(u64, u32, Vec<u8>)> = Vec::new();
        // a block holding a sequence twice (hostile or damaged input; the scan counted it once)
        // must not have it removed twice: the sequences removed so far, built on the first
        // record that does not come after all those before it
        let mut last = 0u64;
        let mut killed: Option<std::collections::HashSet<u64>> = None;
        for r in block::Records::new(&plain).map_while(|r| r.ok()) {
            if r.kind() != RecordKind::Message || !s.live_bits.get(r.seq) {
                continue;
            }
            if r.seq <= last {
                let k = killed.get_or_insert_with(|| kills.iter().map(|k| k.0).collect());
                if k.contains(&r.seq) {
                    continue;
                }
            }
            last = last.max(r.seq);
            let mut why = None;
            if !front_done {
                if limits.acked_floor.is_some_and(|f| r.seq <= f) {
                    why = Some(5);
                } else if limits.max_msgs.is_some_and(|m| n > m) {
                    why = Some(0);
                } else if limits.max_bytes.is_some_and(|m| b > m) {
                    why = Some(1);
                } else if cutoff.is_some_and(|c| r.ts <= c) {
                    if in_recovery {
                        // expireMsgsOnRecover: removed, whatever its TTL, and no marker
                        why = Some(2);
                    } else if let Some(ttl_s) = limits.sdm_ttl_s {
                        // expireMsgs: `Nats-TTL: never` is skipped; the last message of a
                        // subject is replaced by a marker (unless it is a marker itself)
                        let ttl = r
                            .headers
                            .and_then(|h| header_value(h, b"Nats-TTL"))
                            .map_or(0, message_ttl);
                        if ttl >= 0 {
                            why = Some(2);
                            if per_subject.get(r.subject) == Some(&1)
                                && !is_delete_marker(r.headers)
                            {
                                markers.push(Marker {
                                    subject: r.subject.to_vec(),
                                    replaces: r.seq,
                                    headers: marker_headers(ttl_s),
                                });
                            }
                        }
                    } else {
                        why = Some(2);
                    }
                } else {
                    front_done = true;
                }
            }
            if why.is_none() && front_done {
                if let (Some(m), Some(c)) = (limits.max_per_subject, per_subject.get_mut(r.subject))
                {
                    if *c > m {
                        why = Some(3);
                    }
                }
            }
            // per-message TTLs expire after the load, on what the limits left
            if why.is_none() && front_done && limits.msg_ttl {
                let ttl = r
                    .headers
                    .and_then(|h| header_value(h, b"Nats-TTL"))
                    .map(message_ttl);
                if ttl.is_some_and(|t| {
                    t > 0 && r.ts.saturating_add(t.saturating_mul(1_000_000_000)) <= at_ns
                }) {
                    why = Some(4);
                }
            }
            let Some(w) = why else { continue };
            if let Some(k) = killed.as_mut() {
                k.insert(r.seq);
            }
            n = n.saturating_sub(1);
            b = b.saturating_sub(u64::from(r.len));
            if w != 4 {
                if let Some(c) = per_subject.get_mut(r.subject) {
                    *c = c.saturating_sub(1);
                }
            }
            let rm = &mut removed[w];
            rm.messages += 1;
            rm.bytes += u64::from(r.len);
            rm.last_ts = rm.last_ts.max(r.ts);
            let full = rm.ranges.len() >= MAX_RANGES;
            match rm.ranges.last_mut() {
                Some((_, e)) if *e + 1 == r.seq => *e = r.seq,
                _ if !full => rm.ranges.push((r.seq, r.seq)),
                _ => {}
            }
            kills.push((r.seq, r.len, r.subject.to_vec()));
        }
        for (q, len, subj) in kills {
            s.kill(q, len, &subj);
        }
        if front_done && !subj_needed && !limits.msg_ttl {
            break;
        }
    }
    removed.retain(|r| r.messages > 0);
    Enforced { removed, markers }
}

/// The limits the server applies to a stream it restores message by message (a V2 archive,
/// 2.15+: its expiry timer runs right after the restore, seen with 2.15.1), decided as the
/// messages stream by in sequence order: max_age removes the oldest messages while they are at
/// least that old (with subject delete markers, `Nats-TTL: never` ones are passed over and
/// each subject it empties gets a marker), per-message TTLs remove the expired ones after
/// that. max_msgs, max_bytes and max_msgs_per_subject are not re-applied: the snapshot was
/// taken under them. The same decisions as [`enforce_limits`], without reading anything twice.
pub struct ExpiryAsRestored {
    cutoff: Option<i64>,
    sdm_ttl_s: Option<u64>,
    msg_ttl: bool,
    at_ns: i64,
    front_open: bool,
    /// [max_age, msg_ttl]
    removed: [LimitRemoval; 2],
    /// Per subject max_age removed from: the last removed sequence, and whether that message
    /// was a delete marker itself (it gets none).
    emptied: HashMap<Vec<u8>, (u64, bool)>,
}

impl ExpiryAsRestored {
    /// For `limits` at the time `at_ns`; `None` when nothing can expire.
    pub fn new(limits: &Limits, at_ns: i64) -> Option<Self> {
        if limits.max_age_ns.is_none() && !limits.msg_ttl {
            return None;
        }
        let rm = |limit| LimitRemoval {
            limit,
            messages: 0,
            bytes: 0,
            ranges: Vec::new(),
            last_ts: 0,
        };
        Some(ExpiryAsRestored {
            cutoff: limits.max_age_ns.map(|a| at_ns.saturating_sub(a)),
            sdm_ttl_s: limits.sdm_ttl_s,
            msg_ttl: limits.msg_ttl,
            at_ns,
            front_open: true,
            removed: [rm("max_age"), rm("msg_ttl")],
            emptied: HashMap::new(),
        })
    }

    /// The next message in sequence order (its stored size `len`): the limit that removes
    /// it (`max_age`, `msg_ttl`), `None` when the server keeps it.
    pub fn removes(
        &mut self,
        seq: u64,
        ts: i64,
        len: u64,
        subject: &[u8],
        hdr: &[u8],
    ) -> Option<&'static str> {
        let hdr = (!hdr.is_empty()).then_some(hdr);
        let ttl = || {
            hdr.and_then(|h| header_value(h, b"Nats-TTL"))
                .map(message_ttl)
        };
        let mut why = None;
        if self.front_open {
            match self.cutoff {
                Some(c) if ts <= c => {
                    if self.sdm_ttl_s.is_none() || ttl().unwrap_or(0) >= 0 {
                        why = Some(0);
                    }
                }
                _ => self.front_open = false,
            }
        }
        if why.is_none()
            && !self.front_open
            && self.msg_ttl
            && ttl().is_some_and(|t| {
                t > 0 && ts.saturating_add(t.saturating_mul(1_000_000_000)) <= self.at_ns
            })
        {
            why = Some(1);
        }
        let w = why?;
        if w == 0 && self.sdm_ttl_s.is_some() {
            self.emptied
                .insert(subject.to_vec(), (seq, is_delete_marker(hdr)));
        }
        let rm = &mut self.removed[w];
        rm.messages += 1;
        rm.bytes += len;
        rm.last_ts = rm.last_ts.max(ts);
        let full = rm.ranges.len() >= MAX_RANGES;
        match rm.ranges.last_mut() {
            Some((_, e)) if *e + 1 == seq => *e = seq,
            _ if !full => rm.ranges.push((seq, seq)),
            _ => {}
        }
        Some(rm.limit)
    }

    /// What was removed, and the subject delete markers written for the subjects max_age
    /// emptied (`kept` tells whether a subject still has a message), in the order of the
    /// messages they replace.
    pub fn finish(self, kept: impl Fn(&[u8]) -> bool) -> Enforced {
        let mut markers: Vec<Marker> = match self.sdm_ttl_s {
            Some(ttl_s) => self
                .emptied
                .into_iter()
                .filter(|(subj, (_, marker))| !marker && !kept(subj))
                .map(|(subject, (replaces, _))| Marker {
                    subject,
                    replaces,
                    headers: marker_headers(ttl_s),
                })
                .collect(),
            None => Vec::new(),
        };
        markers.sort_by_key(|m| m.replaces);
        let removed = self
            .removed
            .into_iter()
            .filter(|r| r.messages > 0)
            .collect();
        Enforced { removed, markers }
    }
}

/// The value of header `key` in a NATS header block (`NATS/1.0\r\nKey: value\r\n…`),
/// trimmed; the first one when there are several.
pub fn header_value<'a>(hdr: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    hdr.split(|&c| c == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (k, v) = line.split_at(line.iter().position(|&c| c == b':')?);
        (k == key).then(|| v[1..].trim_ascii())
    })
}

/// A `Nats-TTL` value in seconds as the server reads it (`parseMessageTTL`): `never` is −1,
/// a Go duration of at least 1 s or a whole number of seconds; anything else is 0 (no TTL).
pub fn message_ttl(v: &[u8]) -> i64 {
    let Ok(t) = std::str::from_utf8(v) else {
        return 0;
    };
    if t.eq_ignore_ascii_case("never") {
        return -1;
    }
    if let Some(ns) = crate::base::time::parse_go_duration(t) {
        return if ns < 1_000_000_000 {
            0
        } else {
            ns / 1_000_000_000
        };
    }
    t.parse::<i64>().ok().filter(|&n| n >= 0).unwrap_or(0)
}

/// Messages the limits' ranges cover, spelled for a finding.
pub fn removal_text(r: &LimitRemoval, sdm: bool) -> String {
    let what = match r.limit {
        "acked" => "are acknowledged by every consumer of this interest-retention stream (up to the lowest ack floor)",
        "max_age" if sdm => {
            return format!(
                "{} message(s) are older than max_age at the time of the load; with subject delete markers the server removes them right after it starts: seqs {}",
                r.messages,
                ranges_text(&r.ranges)
            )
        }
        "max_age" => "are older than max_age at the time of the load",
        "max_msgs_per_subject" => "exceed max_msgs_per_subject",
        "max_bytes" => "exceed max_bytes",
        "msg_ttl" => {
            return format!(
                "{} message(s) carry a Nats-TTL that has run out at the time of the load; the server removes them right after it starts: seqs {}",
                r.messages,
                ranges_text(&r.ranges)
            )
        }
        _ => "exceed max_msgs",
    };
    format!(
        "{} message(s) {what}; the server removes them at load: seqs {}",
        r.messages,
        ranges_text(&r.ranges)
    )
}

/// Findings for what the load does to the stream (truncations are reported on the damaged
/// record's own finding by the caller; these are the limit removals).
pub fn limit_findings(loc: &Location, done: &Enforced, last_seq: u64) -> Vec<Problem> {
    let sdm = !done.markers.is_empty();
    let mut out: Vec<Problem> = done
        .removed
        .iter()
        .map(|r| {
            let (a, z) = (
                r.ranges.first().map_or(0, |x| x.0),
                r.ranges.last().map_or(0, |x| x.1),
            );
            Problem::new(
                Kind::LimitsAtLoad,
                loc.clone().seqs(a, z),
                removal_text(r, sdm),
            )
        })
        .collect();
    if sdm {
        let n = done.markers.len() as u64;
        let names: Vec<String> = done
            .markers
            .iter()
            .take(5)
            .map(|m| crate::base::bytes::printable(&m.subject, 64))
            .collect();
        let more = if n > 5 { ", …" } else { "" };
        out.push(Problem::new(
            Kind::LimitsAtLoad,
            loc.clone().seqs(last_seq + 1, last_seq + n),
            format!(
                "the server writes {n} subject delete marker(s) (subject_delete_marker_ttl) for the subjects max_age empties, as seqs {} ({}{more})",
                ranges_text(&[(last_seq + 1, last_seq + n)]),
                names.join(", ")
            ),
        ));
    }
    out
}

/// How a release's block cache maps a sequence to a record when a direct get (or a consumer)
/// reads a block the index vouches for (`indexCacheBuf`, then `cacheLookup`, which checks that
/// the record found carries the sequence asked for and verifies its checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRule {
    /// 2.9: the n-th record of the block holds sequence first + n, whatever it says.
    Positional,
    /// 2.10 - 2.11.9: tombstones are skipped; a record whose sequence jumps ahead leaves
    /// empty slots for the sequences it skipped; one that does not move forward still takes
    /// the next slot, so every record after it sits one slot off.
    FillHoles,
    /// 2.11.10+: as `FillHoles`, but a record whose sequence does not move forward is
    /// passed over ("the sequence needs to only ever move up").
    MoveUpOnly,
}

/// True when `r` (`None`: the newest) checks each block it loads under a trusted index.db
/// against the index and reports what the block really holds: 2.12.3 and later (nats-server
/// 8e732b2, "Filestore idx mismatch & 'no idx present' errors": holes in a block are always
/// put in its delete map, a block whose records do not start where the index says is
/// rebuilt; 72d9edd, "Surface filestore errors from `loadMsgsWithLock` correctly": a block
/// that does not load fails the count that loads it). 2.10 to 2.12.2 keep the index's
/// numbers (differential matrix on every release: `flip_seq`, `trunc_mid_at_rec`,
/// `cmp_flip`, `cmp_trunc` split between 2.12.2 and 2.12.3).
pub fn checks_blocks_against_index(r: Option<&Release>) -> bool {
    r.is_none_or(|r| r.base() >= Release::new(2, 12, 3))
}

/// True when `r` (`None`: the newest) reads on in a block it has just rebuilt under a trusted
/// index.db, so a block that is emptied (its key file missing, or cut at its first record)
/// holds nothing for every pending count, which then begins at the next block: 2.12.0 and
/// later. 2.10 and 2.11 return the error to the count that found it (matrix `key_missing_mid`,
/// `flip_second_first_len`, split between 2.11.11 and 2.12.0).
pub fn reads_after_cut(r: Option<&Release>) -> bool {
    r.is_none_or(|r| r.base() >= Release::new(2, 12, 0))
}

/// How `r`'s S2 reader decodes a `cmp` block whose stream ends in a skippable chunk running
/// past the end (`None`: the newest). klauspost/compress 1.19.1 ("add defensive checks")
/// seeks past a skippable chunk only when it ends within the bytes, so a block that an erase
/// by 2.10 to 2.11.6 left that way (M3) decodes with earlier versions and fails with later
/// ones (a rebuild on 2.14+ then does not load the stream: "error reading compression
/// reader: s2: corrupt input"). The releases' go.mod: 2.14.5 took 1.19.2 (2.14.4: 1.19.0),
/// and so did 2.12.15 (2.12.14: 1.19.0); every 2.10 and 2.11 release up to 2.11.17 has 1.18.x.
/// Run against the real 2.14.4, 2.14.5 and 2.15.1 (`fixtures/m3-erased-cmp`,
/// `tests/support/m3_check.py`); 2.12.15 is not on PyPI and was not run.
pub fn cmp_reader(r: Option<&Release>) -> crate::filestore::block::CmpReader {
    use crate::filestore::block::CmpReader;
    let Some(b) = r.map(Release::base) else {
        return CmpReader::ChecksEnd;
    };
    let checks = b >= Release::new(2, 14, 5) || (b.minor == 12 && b >= Release::new(2, 12, 15));
    if checks {
        CmpReader::ChecksEnd
    } else {
        CmpReader::SeeksPastEnd
    }
}

/// [`cmp_reader`] for a backup's blocks, decoded as they stream by, before the stream's
/// model is settled: of `given` (`--server-version`), else of the release meta.inf records
/// (`_nats.ver`), else the reader of the releases that record none (before 2.11), which seeks.
pub fn archive_cmp_reader(
    given: Option<&Release>,
    meta: Option<&[u8]>,
) -> crate::filestore::block::CmpReader {
    if let Some(r) = given {
        return cmp_reader(Some(r));
    }
    let written = meta
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|m| {
            m.get("metadata")
                .and_then(|v| v.get("_nats.ver"))
                .and_then(|v| v.as_str())
                .and_then(|v| Release::parse(v).ok())
        });
    match written {
        Some(r) => cmp_reader(Some(&r)),
        None => crate::filestore::block::CmpReader::SeeksPastEnd,
    }
}

/// The slot rule of `r` (`None`: the newest).
pub fn slot_rule(r: Option<&Release>) -> SlotRule {
    match r.map(Release::base) {
        Some(b) if is_legacy(&b) => SlotRule::Positional,
        Some(b) if b < Release::new(2, 11, 10) => SlotRule::FillHoles,
        _ => SlotRule::MoveUpOnly,
    }
}

/// The sequences in `first..=last` of a block (its decoded bytes `plain`, record key `key`)
/// that a trusted-index load cannot serve by direct get under `rule`, leaving out `deleted`
/// (its delete map). Used for blocks whose records are out of sequence order (a damaged
/// sequence field): the slots then decide which sequences read back. Records are read up to
/// the first framing error.
pub fn unserved_by_slots(
    plain: &[u8],
    key: &highway::Key,
    first: u64,
    last: u64,
    deleted: &std::collections::HashSet<u64>,
    rule: SlotRule,
) -> Vec<u64> {
    // slot -> (sequence the record carries, readable), or None for an empty slot
    let mut slots: Vec<Option<(u64, bool)>> = Vec::new();
    let mut base = first;
    let mut highest = 0u64;
    for r in block::Records::new(plain) {
        let Ok(r) = r else { break };
        let kind = r.kind();
        if kind == RecordKind::Tombstone && rule != SlotRule::Positional {
            continue;
        }
        let seq = r.seq;
        let readable = kind == RecordKind::Message && r.checksum_ok(key);
        match rule {
            SlotRule::Positional => {
                if seq != 0 && seq < base {
                    base = seq;
                }
                slots.push(Some((seq, readable)));
            }
            SlotRule::FillHoles | SlotRule::MoveUpOnly => {
                if rule == SlotRule::MoveUpOnly {
                    if seq <= highest {
                        continue;
                    }
                    highest = seq;
                }
                if seq < first {
                    continue;
                }
                let want = (seq - first) as usize;
                if want > slots.len() && want - slots.len() < 1 << 24 {
                    slots.resize(want, None);
                }
                slots.push(Some((seq, readable)));
            }
        }
    }
    if last < base || last - base >= 1 << 24 {
        return Vec::new();
    }
    (first.max(base)..=last)
        .filter(|q| !deleted.contains(q))
        .filter(|&q| !matches!(slots.get((q - base) as usize), Some(Some((s, true))) if *s == q))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The S2 reader's end check by release: 1.19.1+ of klauspost/compress in 2.12.15 and
    /// 2.14.5 on (go.mod), none in 2.10, 2.11, 2.12.0-2.12.14 and 2.14.0-2.14.4.
    #[test]
    fn s2_end_check_by_release() {
        use crate::filestore::block::CmpReader::{ChecksEnd, SeeksPastEnd};
        for (v, want) in [
            ("2.10.0", SeeksPastEnd),
            ("2.10.29", SeeksPastEnd),
            ("2.11.17", SeeksPastEnd),
            ("2.12.14", SeeksPastEnd),
            ("2.12.15", ChecksEnd),
            ("2.14.4", SeeksPastEnd),
            ("2.14.5", ChecksEnd),
            ("2.15.1", ChecksEnd),
        ] {
            assert_eq!(cmp_reader(Some(&Release::parse(v).unwrap())), want, "{v}");
        }
        assert_eq!(cmp_reader(None), ChecksEnd);
    }

    /// Fuzz regression (`verify_archive`): a tarball whose block holds sequence 1 twice, past
    /// max_age. The scan counts the sequence once; the limits removed it twice and the count of
    /// messages left went below zero (a panic in a debug build; in a release build a count that
    /// wrapped to 2^64 - 1, so max_msgs would have removed everything after it).
    #[test]
    fn a_sequence_held_twice_is_removed_once() {
        let input = include_bytes!("../../fixtures/fuzz/verify_archive-duplicate-seq.bin");
        let t = tempfile::tempdir().unwrap();
        let tgz = t.path().join("ORDERS.tgz");
        std::fs::write(&tgz, &input[1..]).unwrap();
        let rep = crate::check::verify_path(
            &tgz,
            &crate::check::Options::default(),
            &crate::base::progress::NoProgress,
        )
        .unwrap();
        let load = rep.streams[0].load.as_ref().unwrap();
        let age: Vec<_> = load
            .removed
            .iter()
            .filter(|r| r.limit == "max_age")
            .collect();
        assert_eq!(age.len(), 1, "{:?}", load.removed);
        assert_eq!((age[0].messages, &age[0].ranges), (1, &vec![(1, 1)]));
        // the whole fuzz entry point too
        crate::fuzzing::verify_archive(input);
    }

    /// Block 31..40 with seq 36's sequence field flipped to 37 (its checksum then fails), a
    /// delete map holding 33: 2.9 reads slot by slot (36 unserved, 37 served), 2.10-2.11.9
    /// shift every later slot (36..40 unserved), 2.11.10+ pass over the second 37 (36, 37
    /// unserved).
    #[test]
    fn slot_rules_decide_what_reads_back() {
        let key = block::block_key("S", 1);
        let mut plain = Vec::new();
        for q in 31..=40u64 {
            let start = plain.len();
            block::encode_record(&mut plain, &key, q, q as i64, b"s.a", None, b"x");
            if q == 36 {
                // flip the stored sequence after the checksum was made
                plain[start + 4] = 37;
            }
        }
        let dmap: std::collections::HashSet<u64> = [33].into_iter().collect();
        let run = |r: &str| {
            let rel = r.parse::<Release>().unwrap();
            unserved_by_slots(&plain, &key, 31, 40, &dmap, slot_rule(Some(&rel)))
        };
        assert_eq!(run("2.9.10"), [36]);
        assert_eq!(run("2.10.26"), [36, 37, 38, 39, 40]);
        assert_eq!(run("2.11.9"), [36, 37, 38, 39, 40]);
        assert_eq!(run("2.11.10"), [36, 37]);
        assert_eq!(run("2.15.1"), [36, 37]);
        assert_eq!(slot_rule(None), SlotRule::MoveUpOnly);
        // an intact block serves everything its delete map does not hold
        let mut ok = Vec::new();
        for q in 31..=40u64 {
            block::encode_record(&mut ok, &key, q, q as i64, b"s.a", None, b"x");
        }
        for r in ["2.9.10", "2.10.26", "2.15.1"] {
            let rel = r.parse::<Release>().unwrap();
            let u = unserved_by_slots(&ok, &key, 31, 40, &dmap, slot_rule(Some(&rel)));
            assert!(u.is_empty(), "{r}: {u:?}");
        }
    }

    #[test]
    fn ranges_merge_runs() {
        assert_eq!(ranges([1, 2, 3, 5, 7, 8]), vec![(1, 3), (5, 5), (7, 8)]);
        assert_eq!(ranges_text(&[(46, 60)]), "46..60 (15 messages)");
        assert_eq!(ranges_text(&[(9, 9)]), "9 (1 message)");
    }

    #[test]
    fn limits_from_config() {
        let cfg: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"max_msgs":50,"max_bytes":-1,"max_age":6000000000,"max_msgs_per_subject":0,"discard":"old"}"#,
        )
        .unwrap();
        let l = Limits::of(&cfg);
        assert_eq!(l.max_msgs, Some(50));
        assert_eq!(l.max_bytes, None);
        assert_eq!(l.max_age_ns, Some(6_000_000_000));
        assert_eq!(l.max_per_subject, None);
        let cfg: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"max_msgs":50,"discard":"new","max_age":6,"subject_delete_marker_ttl":60}"#,
        )
        .unwrap();
        let l = Limits::of(&cfg);
        assert_eq!(
            (l.max_msgs, l.max_age_ns, l.sdm_ttl_s),
            (None, Some(6), None)
        );
        let cfg: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"max_age":6000000000,"subject_delete_marker_ttl":60000000000}"#,
        )
        .unwrap();
        assert_eq!(Limits::of(&cfg).sdm_ttl_s, Some(60));
        assert_eq!(
            marker_headers(60),
            b"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: 1m0s\r\nNats-Rollup: sub\r\n\r\n"
        );
        assert!(is_delete_marker(Some(&marker_headers(60))));
        assert!(is_delete_marker(Some(
            b"NATS/1.0\r\nKV-Operation: PURGE\r\n\r\n"
        )));
        assert!(!is_delete_marker(Some(
            b"NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"
        )));
    }

    #[test]
    fn ttl_headers() {
        let h = b"NATS/1.0\r\nNats-TTL: 6s\r\nX: y\r\n\r\n";
        assert_eq!(header_value(h, b"Nats-TTL"), Some(&b"6s"[..]));
        assert_eq!(header_value(h, b"X"), Some(&b"y"[..]));
        assert_eq!(header_value(h, b"Nats"), None);
        assert_eq!(message_ttl(b"6s"), 6);
        assert_eq!(message_ttl(b"90"), 90);
        assert_eq!(message_ttl(b"never"), -1);
        assert_eq!(message_ttl(b"500ms"), 0);
        assert_eq!(message_ttl(b"-5"), 0);
    }

    #[test]
    fn index_versions_per_release() {
        let v = |s: &str| index_db_version_read_by(&Release::parse(s).unwrap());
        assert_eq!(
            [
                v("2.10.26"),
                v("2.11.11"),
                v("2.12.8"),
                v("2.14.6"),
                v("2.15.1")
            ],
            [1, 2, 3, 4, 4]
        );
    }
}
