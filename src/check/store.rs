//! Stream verification: combine block scans, index files and consumer state into the stream
//! state the server would compute, and report every disagreement with its location.
//!
//! The pieces that only need bytes (`StreamInputs` → `StreamReport`) are shared by the store
//! verifier ([`verify_store`]) and the archive verifier.
use crate::base::problem::{Kind, Location, Problem};
use crate::base::progress::Progress;
use crate::base::release::Release;
use crate::base::report::{
    BlockReport, ConsumerNumbers, ConsumerReport, IndexKind, Report, StreamReport,
};
use crate::base::report::{LoadReport, Removal, Verdict};
use crate::check::Options;
use crate::filestore::config_fields::{self, ConfigDoc};
use crate::filestore::consumer_state::{self, ConsumerState};
use crate::filestore::discover::{self, StreamDir};
use crate::filestore::encrypted;
use crate::filestore::layout;
use crate::filestore::meta::{self, MetaInf};
use crate::filestore::source::{
    read_reusing, read_reusing_with, DirSource, FileRead, StreamSource,
};
use crate::state::consumers::{self, ConsumerCfg, ConsumerChanges, StreamView};
use crate::state::load::{self, LimitRemoval, Recovery, Truncation};
use crate::state::prelude::{prelude_for, Prelude};
use crate::state::scan::{self, BlockScan, DeadSet, ScanCtx};
use crate::state::stream::{DeletedList, StreamTotals};
use rayon::prelude::*;
use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// What the load model needs besides the files: how the server recovers the stream, the
/// release modelled, the time of the load, and the dead set the scans applied.
pub struct LoadInput<'a> {
    /// How the server recovers the stream's state.
    pub recovery: Recovery,
    /// The release modelled.
    pub release: Option<Release>,
    /// Where the release comes from (`--server-version`, meta.inf, the index format).
    pub release_from: Option<String>,
    /// The time of the load, ns since the epoch.
    pub at_ns: i64,
    /// The delete set the block scans applied.
    pub dead: &'a DeadSet,
    /// Checksums were skipped.
    pub quick: bool,
    /// Where the limits pass reads the blocks again when the scans' source cannot (the
    /// blocks of an archive, walked again); `None`: the scans' source.
    pub blocks_again: Option<&'a dyn StreamSource>,
}

impl<'a> LoadInput<'a> {
    /// The input for `opts`, a recovery decision, the release modelled (and where it comes
    /// from) and the dead set the scans applied.
    pub fn new(
        opts: &Options,
        recovery: Recovery,
        (release, release_from): (Option<Release>, Option<String>),
        dead: &'a DeadSet,
    ) -> Self {
        LoadInput {
            recovery,
            release,
            release_from,
            at_ns: opts.target.at_ns,
            dead,
            quick: opts.quick,
            blocks_again: None,
        }
    }
}

/// Combine the prelude, block scans and consumers into the stream report: the state the
/// server has after it loads these files (truncations, late deaths, limits applied).
/// `src` re-reads blocks for deaths discovered late (tombstones in later blocks) and for the
/// load model; sources that cannot re-read rely on `BlockScan::live`.
pub fn finish_stream(
    pre: Prelude,
    mut scans: Vec<BlockScan>,
    src: &dyn StreamSource,
    prefix: &str,
    load: &LoadInput,
) -> (StreamReport, Vec<Problem>) {
    let mut problems = pre.problems.clone();
    sealed_block_findings(&pre, load.release.as_ref(), &mut problems);
    let loc = pre.loc();
    scans.sort_by_key(|s| s.index);
    // 2.9's cache indexing (a 2.10+ release reading a 2.9 store indexes its own way)
    if !load.release.as_ref().is_some_and(load::is_legacy) {
        for s in &mut scans {
            s.legacy_cache_fails = false;
        }
    }
    let ctx = ScanCtx {
        account: &pre.account,
        stream: &pre.cfg_name,
        dead: load.dead,
        quick: load.quick,
        file_prefix: prefix,
        keep_live: false,
        stop_at_damage: false,
        cmp: src.cmp_reader(),
    };
    let indexed: Vec<u32> = pre.idx.keys().copied().collect();
    let truncs = load::truncate_blocks(
        &load.recovery,
        load.release.as_ref(),
        (&indexed, pre.index_db.as_ref()),
        &mut scans,
        &ctx,
        src,
    );
    let mut index_counted = count_undecodable_from_index(&pre, load, &mut scans, prefix);
    index_counted.extend(count_short_blocks_from_index(
        &pre, load, &mut scans, prefix,
    ));
    let index_counted_seqs = index_counted.clone();
    let vanished = missing_on_rebuild(&pre, load, &scans, &truncs, prefix);
    let has_vanished = !vanished.is_empty();
    let mut suppressed = std::collections::BTreeMap::new();
    for s in &mut scans {
        problems.append(&mut s.problems);
        for (k, n) in std::mem::take(&mut s.suppressed) {
            *suppressed.entry(k).or_insert(0) += n;
        }
    }
    let mut unreadable = describe_damage(
        &scans,
        &truncs,
        &load.recovery,
        (src, prefix),
        &mut problems,
    );
    let vanished_seqs: Vec<u64> = vanished
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    problems.extend(vanished.into_iter().map(|(p, _)| p));
    let not_loaded = undecodable_on_rebuild(&pre, &scans, load, prefix, &mut problems);
    let cut_cmp = cut_compressed_kept(&scans, load);
    // 2.12.3-2.13: the cache refuses such a block (see cut_compressed_kept)
    let refused: Vec<u32> = if load::checks_blocks_against_index(load.release.as_ref()) {
        cut_cmp.clone()
    } else {
        Vec::new()
    };
    unreadable.extend(index_counted);
    unreadable.sort_unstable();
    check_block_order(&scans, &loc, prefix, &mut problems);
    let late = settle_late_deaths(
        &pre,
        load.dead,
        (&mut scans, &refused),
        src,
        prefix,
        &mut problems,
    );
    let limits = pre
        .meta
        .as_ref()
        .map(|m| load::Limits::for_release(&m.json, load.release.as_ref()))
        .unwrap_or_default();
    // .idx/.fss describe the blocks as written: compare before the limits remove anything
    check_legacy(&pre, &scans, &mut problems, prefix);
    too_new_for_2_9(&pre, &scans, load.release.as_ref(), &mut problems);
    let mut limits = limits;
    limits.acked_floor = acked_floor(&pre, src);
    // 2.9 removes what is over max_msgs / max_bytes from its first sequence on; when its
    // recovery left that at 0 (the last block listed, rebuilt to nothing, resets it) the first
    // removal fails and it stops (`enforceBytesLimit`: `deleteFirstMsg` of seq 0), then
    // rebuilds its first block and takes the stream's first from it (`rebuildFirst`): the
    // stream loads over its limits (matrix `kill_mid`, 2.9.10: an empty last block with an
    // empty .idx after the kill, 120 messages and 124440 bytes kept under max_bytes 120000,
    // first seq 16351; without that block it removes 5)
    let over = |lim: Option<u64>, n: u64| lim.is_some_and(|m| n > m);
    let first_rebuilt = load.release.as_ref().is_some_and(load::is_legacy)
        && (over(limits.max_msgs, scans.iter().map(|s| s.msgs).sum())
            || over(limits.max_bytes, scans.iter().map(|s| s.bytes).sum()))
        && legacy_recovered_first(
            &pre,
            &scans,
            &problems,
            load.blocks_again.unwrap_or(src),
            prefix,
        ) == Some(0);
    if first_rebuilt {
        limits.max_msgs = None;
        limits.max_bytes = None;
    }
    let before_limits = subject_totals(&scans);
    let enforced = load::enforce_limits(
        &limits,
        load.at_ns,
        &mut scans,
        load.blocks_again.unwrap_or(src),
    );
    let removed = &enforced.removed;
    settle_timestamps(&pre, &mut scans, src, prefix, &mut problems);
    let shape = IndexShape {
        cut_last: scans
            .last()
            .is_some_and(|l| truncs.iter().any(|t| t.file == l.file)),
        gaps_counted: load::checks_blocks_against_index(load.release.as_ref()),
    };
    let (mut rep, mut subjects, mut last) =
        stream_report(&pre, &scans, &late, &load.recovery, shape);
    apply_keyless(&pre, load, &mut rep);
    state_after_cuts_under_index(&pre, load, &scans, &truncs, &mut rep);
    empty_rebuild_on_210(load, removed.is_empty(), &mut rep);
    let psim_extra = cut_compressed_subjects(
        &scans,
        &cut_cmp,
        &refused,
        load.blocks_again.unwrap_or(src),
        &mut unreadable,
    );
    if !psim_extra.is_empty() {
        for (subj, d) in &psim_extra {
            let e = subjects.entry(subj.clone()).or_insert(0);
            *e = e.saturating_add_signed(*d);
            let k = String::from_utf8_lossy(subj).into_owned();
            let c = rep.subject_counts.entry(k.clone()).or_insert(0);
            *c = c.saturating_add_signed(*d);
            if *c == 0 {
                rep.subject_counts.remove(&k);
            }
        }
        subjects.retain(|_, n| *n > 0);
        rep.subjects = Some(rep.subject_counts.len() as u64);
    }
    let mut legacy_gaps: Vec<u64> = Vec::new();
    if matches!(load.recovery, Recovery::Legacy) && removed.is_empty() {
        let (l, more, gaps, cut) = legacy_numbers(&pre, src, &scans, &problems, &mut rep, prefix);
        problems.extend(cut);
        // `rebuildFirst` after a failed removal: the first block's first record (its deletes
        // known only to its .idx come back with the rebuild: not modelled)
        if let Some(s) = scans
            .iter()
            .filter(|_| first_rebuilt)
            .min_by_key(|s| s.index)
        {
            let f = match s.first_live {
                Some(q) => (q, s.first_ts),
                None => rebuilt_first(&pre, s, &problems, src, &format!("{prefix}{}", s.file)),
            };
            rep.first_seq = Some(f.0);
            rep.first_ts = Some(f.1).filter(|&t| t != 0);
        }
        last = l;
        legacy_gaps = gaps;
        unreadable.extend(more);
        unreadable.sort_unstable();
        unreadable.dedup();
    }
    for (lo, hi, unserved) in slot_unserved(&pre, src, &scans, &problems, load, &truncs, prefix) {
        // 2.10/2.11 list only what the delete maps hold: a sequence missing from the block's
        // records is not listed (the hole it leaves is filled into the map only when the map
        // was empty), but it is not served either
        if !shape.gaps_counted && !matches!(load.recovery, Recovery::Legacy) {
            let not_listed: std::collections::HashSet<u64> = unserved.iter().copied().collect();
            rep.deleted_seqs.retain(|q| !not_listed.contains(q));
        }
        let listed: std::collections::HashSet<u64> = rep.deleted_seqs.iter().copied().collect();
        unreadable.retain(|q| *q < lo || *q > hi);
        unreadable.extend(unserved.into_iter().filter(|q| !listed.contains(q)));
        unreadable.sort_unstable();
        unreadable.dedup();
    }
    problems.extend(load::limit_findings(&loc, &enforced, last));
    rep.suppressed = suppressed;
    check_subjects_in_config(&pre, &rep, &mut problems);
    if let (Recovery::Index, Some(db)) = (&load.recovery, pre.index_db.as_ref()) {
        subjects_from_index(&mut rep, db, &before_limits, &subjects);
    }
    if rep.messages == Some(0) && !removed.is_empty() {
        // emptied by its limits: the server keeps the last message's time
        rep.last_ts = removed.iter().map(|r| r.last_ts).max();
        if matches!(load.recovery, Recovery::Legacy) {
            // 2.9 reports the epoch as the first time of an emptied stream (2.10+: none)
            rep.first_ts = Some(0);
        }
    }
    let state = Loaded {
        rep: &rep,
        subjects: &subjects,
        recovery: &load.recovery,
        // the index was written before the limits ran or a block was cut: it cannot agree
        limits_applied: !removed.is_empty()
            || (!truncs.is_empty() && matches!(load.recovery, Recovery::Index))
            || has_vanished,
        cut_short: has_vanished,
    };
    check_index_db(&pre, &scans, &state, &mut problems, prefix);
    check_leftovers(&pre, &mut problems, prefix);
    check_aux(
        &pre,
        src,
        (last, load.release.as_ref()),
        &mut problems,
        prefix,
    );
    // consumers are set up before a cut block is loaded: under a trusted index they see the
    // index's last sequence (M10b with index.db: 2.14+ do not reset them, 2.10 starts a
    // consumer without o.dat from it)
    let consumers_last = match (&load.recovery, pre.index_db.as_ref()) {
        (Recovery::Index, Some(db)) if shape.cut_last => last.max(db.last_seq),
        _ => last,
    };
    let view = consumers::ScannedStream {
        first: rep.first_seq.unwrap_or(last + 1),
        last: consumers_last,
        max_per_subject: pre
            .meta
            .as_ref()
            .and_then(|m| m.i64_field("max_msgs_per_subject"))
            .unwrap_or(0),
        scans: &scans,
        src,
        index_totals: index_totals_for_pending(&pre, &load.recovery, &scans, &index_counted_seqs),
        server: if cut_cmp.is_empty() {
            server_pending_model(
                &pre,
                src,
                load,
                &scans,
                &problems,
                prefix,
                &truncs,
                (rep.messages.unwrap_or(0), last),
                removed.is_empty() && enforced.markers.is_empty() && !has_vanished,
            )
        } else {
            rebuilt_pending_model(
                &pre,
                src,
                load,
                (&scans, &refused),
                &subjects,
                (rep.messages.unwrap_or(0), last),
            )
        },
        legacy_deleted: (load.release.as_ref().is_some_and(load::is_legacy)
            && rep.deleted.unwrap_or(0) == rep.deleted_seqs.len() as u64)
            .then(|| {
                let mut d = rep.deleted_seqs.clone();
                d.sort_unstable();
                d
            }),
        legacy_blocks: (load.release.as_ref().is_some_and(load::is_legacy)
            && matches!(load.recovery, Recovery::Legacy)
            && removed.is_empty())
        .then(|| legacy_blocks(&pre, &scans, &problems, src, prefix)),
    };
    let (consumers, stopped_by) = check_consumers(
        &pre,
        src,
        (&view, load.release.as_ref()),
        &mut problems,
        prefix,
    );
    rep.consumers = consumers;
    // deletes only the index knew are forgotten by a rebuild: those messages come back
    let revived: Vec<u64> = if load.recovery.rebuilds() {
        let mut v: Vec<u64> = pre
            .dead
            .seqs
            .iter()
            .copied()
            .filter(|&q| scans.iter().any(|s| s.live_bits.get(q)))
            .collect();
        v.sort_unstable();
        v
    } else {
        Vec::new()
    };
    add_markers(&mut rep, &enforced.markers, last, load.at_ns);
    let mut lr = load_report(
        &pre,
        (load, stopped_by.as_deref()),
        (&truncs, removed),
        &revived,
        &problems,
    );
    lr.markers = marker_reports(&enforced.markers, last);
    lr.unreadable = load::ranges(unreadable);
    legacy_gaps.extend(vanished_seqs);
    if !legacy_gaps.is_empty() {
        // 2.9 neither counts nor serves these (nor a rebuild what it cannot see): lost, though
        // not listed as deleted
        let mut all: Vec<u64> = lr.lost.iter().flat_map(|&(a, b)| a..=b).collect();
        all.extend(legacy_gaps);
        all.sort_unstable();
        all.dedup();
        lr.lost_messages = all.len() as u64;
        lr.lost = load::ranges(all);
        if lr.verdict != crate::base::report::Verdict::Skipped {
            lr.verdict = crate::base::report::Verdict::LosesData;
        }
    }
    let dropped = dropped_on_rebuild(&pre, &scans, load);
    if !dropped.is_empty() {
        // the blocks a rebuild cannot decode and drops: lost (the server lists them deleted)
        lr.lost = union_ranges(&lr.lost, &dropped);
        lr.lost_messages = lr
            .lost
            .iter()
            .map(|&(a, b)| (b - a).saturating_add(1))
            .fold(0u64, u64::saturating_add);
        if lr.verdict != crate::base::report::Verdict::Skipped {
            lr.verdict = crate::base::report::Verdict::LosesData;
        }
    }
    if not_loaded {
        lr.verdict = crate::base::report::Verdict::Skipped;
    }
    rep.load = Some(lr);
    (rep, problems)
}

/// The subject delete markers of the load report: the sequences they take after `last`.
pub(crate) fn marker_reports(
    markers: &[load::Marker],
    last: u64,
) -> Vec<crate::base::report::MarkerReport> {
    markers
        .iter()
        .zip(last + 1..)
        .map(|(m, seq)| crate::base::report::MarkerReport {
            seq,
            subject: String::from_utf8_lossy(&m.subject).into_owned(),
            replaces: m.replaces,
        })
        .collect()
}

/// What each limit removed, for the load report.
pub(crate) fn removal_reports(removed: &[LimitRemoval]) -> Vec<Removal> {
    removed
        .iter()
        .map(|r| Removal {
            limit: r.limit.to_string(),
            messages: r.messages,
            bytes: r.bytes,
            ranges: r.ranges.clone(),
        })
        .collect()
}

/// The subject delete markers the server appends after the load: the stream grows by one
/// message per marker, stamped with the time of the load.
pub(crate) fn add_markers(rep: &mut StreamReport, markers: &[load::Marker], last: u64, at_ns: i64) {
    if markers.is_empty() {
        return;
    }
    let n = markers.len() as u64;
    if rep.messages == Some(0) {
        rep.first_seq = Some(last + 1);
        rep.first_ts = Some(at_ns);
        rep.deleted = Some(0);
        rep.deleted_seqs.clear();
    }
    rep.messages = rep.messages.map(|m| m + n);
    rep.bytes = rep
        .bytes
        .map(|b| b + markers.iter().map(|m| m.bytes()).sum::<u64>());
    rep.last_seq = Some(last + n);
    rep.last_ts = Some(at_ns);
    for m in markers {
        *rep.subject_counts
            .entry(String::from_utf8_lossy(&m.subject).into_owned())
            .or_insert(0) += 1;
    }
    rep.subjects = Some(rep.subject_counts.len() as u64);
}

/// A block that cannot be decoded when the server rebuilds the stream from its blocks:
/// 2.10 to 2.12 drop the block (its messages are lost: the stream numbers
/// already leave it out); 2.14+ fail the stream's recovery and do not load it ("Error
/// recreating stream …: error reading compression reader: s2: corrupt input"; the files stay).
/// Both seen in the differential matrix (`cmp_flip+noidx`, `cmp_trunc+noidx`). Returns true
/// when the modelled release does not load the stream.
fn undecodable_on_rebuild(
    pre: &Prelude,
    scans: &[BlockScan],
    load: &LoadInput,
    prefix: &str,
    problems: &mut [Problem],
) -> bool {
    if !load.recovery.rebuilds() {
        return false;
    }
    let fails = load.release.as_ref().map(|r| *r >= Release::new(2, 14, 0));
    let mut any = false;
    // A block whose key file is damaged fails only its own recovery: the server goes on
    // without it (matrix `--cipher`, `key_flip_mid+noidx`). One whose key file is missing
    // gets a new key and fails as an undecodable block ("Error recreating stream: malformed or
    // corrupt message in 2.blk", `key_missing_mid+noidx`, 2.14.6 and 2.15.1; 2.10-2.12 drop
    // it), unless it is index.db's last block: checking the index against it made that key
    // already, and the rebuild reads the block with it (`key_missing_last`: loads).
    // A damaged one fails the stream on 2.14.0-2.14.3 ("Error recreating stream: unable to
    // recover keys"; the sweep of every PyPI release, `key_flip_mid+noidx`, `key_flip_last`).
    let index_last = pre.index_db.as_ref().map(|d| d.last_block);
    let keyless = |i: u32| pre.unopened.block_key_missing.contains(&i) && index_last != Some(i);
    let bad_key_fails = load
        .release
        .as_ref()
        .is_some_and(|r| r.base() >= Release::new(2, 14, 0) && r.base() < Release::new(2, 14, 4));
    let bad_key = |i: u32| pre.unopened.block_key_corrupt.contains(&i) && bad_key_fails;
    for s in scans.iter().filter(|s| {
        s.unreadable && (!pre.unopened.block(s.index) || keyless(s.index) || bad_key(s.index))
    }) {
        any = true;
        if keyless(s.index) || bad_key(s.index) {
            let key = format!("{prefix}msgs/{}.key", s.index);
            let what = if keyless(s.index) {
                "the server rebuilds this stream, makes a new key for the block, cannot read the block with it and does not load the stream (\"Error recreating stream: malformed or corrupt message\"; 2.14 and later)"
            } else {
                "the server rebuilds this stream, cannot open the block's key and does not load the stream (\"Error recreating stream: unable to recover keys\"; 2.14.0 to 2.14.3)"
            };
            if let (Some(true), Some(p)) = (
                fails,
                problems.iter_mut().find(|p| {
                    p.kind == Kind::EncryptedCorrupt && p.loc.file.as_deref() == Some(key.as_str())
                }),
            ) {
                retell(p, "the server (", what);
            }
            continue;
        }
        let file = format!("{prefix}{}", s.file);
        let Some(p) = problems.iter_mut().find(|p| {
            p.kind == Kind::BlockDecompress && p.loc.file.as_deref() == Some(file.as_str())
        }) else {
            continue;
        };
        let drop = "the server rebuilds this stream, cannot decode the block, drops it and loses its messages (2.10 to 2.12)";
        let fail = "the server rebuilds this stream, cannot decode the block and does not load the stream at all: it logs \"Error recreating stream: error reading compression reader: s2: corrupt input\" and leaves the files on disk (2.14 and later)";
        let what = match fails {
            Some(true) => fail.to_string(),
            Some(false) => drop.to_string(),
            None => format!("{drop}; {fail}"),
        };
        p.message = format!("{}; {what}", p.message);
    }
    any && fails == Some(true) || cut_compressed_on_rebuild(scans, load, prefix, problems)
}

/// A compressed block that decodes but holds a record a rebuilding server rejects (only the
/// erase of 2.10 to 2.11.6 leaves such a block, M3, and only releases before 2.14.5 decode it:
/// [`load::cmp_reader`]). The rebuild cuts the block's state at that record, but the file
/// cannot be cut (it is compressed), so the decoded block still holds the records from there
/// on; from 2.12.3 the block's cache checks its records against the state and refuses the
/// block ("indexCacheBuf": the last record is not the block's last sequence), and 2.14.0 to
/// 2.14.4 then do not load the stream ("Error recreating stream: no message cache"; real
/// 2.14.4 on fixtures/m3-erased-cmp without index.db, `tests/support/m3_check.py`). Returns
/// true when the modelled release does not load the stream.
fn cut_compressed_on_rebuild(
    scans: &[BlockScan],
    load: &LoadInput,
    prefix: &str,
    problems: &mut [Problem],
) -> bool {
    let fails = load
        .release
        .as_ref()
        .is_none_or(|r| r.base() >= Release::new(2, 14, 0));
    if !load.recovery.rebuilds() || !fails {
        return false;
    }
    let mut any = false;
    for s in scans.iter().filter(|s| decodes_but_is_cut(s)) {
        any = true;
        let file = format!("{prefix}{}", s.file);
        if let Some(p) = problems.iter_mut().find(|p| {
            p.severity == crate::base::problem::Severity::Error
                && p.loc.file.as_deref() == Some(file.as_str())
        }) {
            p.message = format!(
                "{}; the server rebuilds this stream and cuts the block's state here, but a \
                 compressed block file is not cut: its cache then refuses the block and the \
                 stream is not loaded at all (\"Error recreating stream: no message cache\", \
                 2.14.0 to 2.14.4; later releases cannot decode such a block)",
                p.message
            );
        }
    }
    any
}

/// A compressed block that decodes but holds a record a rebuilding server rejects: the
/// rebuild cuts its state there, but cannot cut the compressed file.
fn decodes_but_is_cut(s: &BlockScan) -> bool {
    s.compressed && !s.unreadable && s.damage.is_some()
}

/// Whether the modelled release, rebuilding a stream with a compressed block it cannot use
/// (undecodable, or refused by its cache), still loads the stream: 2.10 to 2.13 (they drop
/// or refuse the block); 2.14+ do not load it ([`undecodable_on_rebuild`]).
fn rebuild_keeps_stream_past_bad_cmp_block(load: &LoadInput) -> bool {
    load.release
        .as_ref()
        .is_some_and(|r| r.base() >= Release::new(2, 10, 0) && r.base() < Release::new(2, 14, 0))
}

/// The sequences of the blocks that do not decode when the server rebuilds the stream and
/// drops them (2.10 to 2.13, [`undecodable_on_rebuild`]; 2.14+ do not load the stream): from
/// an (outdated) index.db's entry for the block, its range less its delete map; without one,
/// the sequences between the readable blocks around it (those among them deleted before
/// cannot be told apart: the server lists them all as deleted). None when the block has no
/// readable neighbour on a side and no index entry.
fn dropped_on_rebuild(pre: &Prelude, scans: &[BlockScan], load: &LoadInput) -> Vec<(u64, u64)> {
    if !load.recovery.rebuilds() {
        return Vec::new();
    }
    // an undecodable block: 2.10-2.13 drop it; one whose key file does not open: every release
    // that goes on with the stream (see undecodable_on_rebuild)
    let cmp_dropped = rebuild_keeps_stream_past_bad_cmp_block(load);
    let mut out = Vec::new();
    for (k, s) in scans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.unreadable && (cmp_dropped || pre.unopened.block(s.index)))
    {
        let entry = pre
            .index_db
            .as_ref()
            .and_then(|db| db.blocks.iter().find(|b| b.index == s.index));
        if let Some(e) = entry {
            // the range less the delete map, as ranges (never one entry per sequence)
            let mut next = e.first_seq;
            for &d in e
                .deleted
                .iter()
                .filter(|&&d| d >= e.first_seq && d <= e.last_seq)
            {
                if d > next {
                    out.push((next, d - 1));
                }
                next = next.max(d.saturating_add(1));
            }
            if next <= e.last_seq {
                out.push((next, e.last_seq));
            }
            continue;
        }
        let before = scans[..k]
            .iter()
            .rev()
            .find(|o| !o.unreadable)
            .and_then(|o| o.max_seq);
        let after = scans[k + 1..]
            .iter()
            .find(|o| !o.unreadable)
            .and_then(|o| o.min_seq);
        if let (Some(b), Some(a)) = (before, after) {
            if a > b.saturating_add(1) {
                out.push((b + 1, a - 1));
            }
        }
    }
    out
}

/// `a` and `b` (sorted or not) as sorted, disjoint, coalesced ranges.
fn union_ranges(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut all: Vec<(u64, u64)> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(all.len());
    for (lo, hi) in all {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Compressed blocks that decode but hold a record a rebuilding server rejects, when the
/// modelled release rebuilds the stream and still loads it (2.10.0 to 2.13; 2.14+ do not load
/// it: [`cut_compressed_on_rebuild`]). The rebuild cuts the block's state at that record but
/// cannot cut the compressed file, so the block's decoded records run past its last sequence
/// (fixtures/m3-erased-cmp/v2.10.25/releases.json, recorded with `tests/support/m3_check.py`):
/// - 2.10.0 to 2.12.2: the block's cache index takes every record of the decoded block into
///   the per-subject state, with no bound at the block's last sequence: the records past the
///   cut count in the subject counts and in the pending counts built on them.
/// - 2.12.3 to 2.13: the cache checks the block's records against its state and refuses the
///   block. None of its messages is served (they are still counted), a tombstone in another
///   block does not remove a message of it (the removal loads the block), its messages are
///   not in the subject counts, and a pending count that reads it fails (0).
fn cut_compressed_kept(scans: &[BlockScan], load: &LoadInput) -> Vec<u32> {
    if !load.recovery.rebuilds() || !rebuild_keeps_stream_past_bad_cmp_block(load) {
        return Vec::new();
    }
    scans
        .iter()
        .filter(|s| decodes_but_is_cut(s))
        .map(|s| s.index)
        .collect()
}

/// The per-subject changes [`cut_compressed_kept`] makes to the counts from the records kept:
/// a refused block's messages leave them (and are unreadable: added to `unreadable`), and
/// before 2.12.3 the records past a block's cut join them. A record past the cut that does not
/// frame makes the cache fail instead: not modelled, nothing changed for that block.
fn cut_compressed_subjects(
    scans: &[BlockScan],
    cut: &[u32],
    refused: &[u32],
    src: &dyn StreamSource,
    unreadable: &mut Vec<u64>,
) -> Vec<(Vec<u8>, i64)> {
    let mut out = Vec::new();
    for s in scans.iter().filter(|s| cut.contains(&s.index)) {
        if refused.contains(&s.index) {
            unreadable.extend(s.live_bits.iter());
            for (i, n) in s.subject_names.iter().enumerate() {
                let c = s.subject_counts.get(i).copied().unwrap_or(0);
                if c > 0 {
                    out.push((n.clone(), -(c as i64)));
                }
            }
            continue;
        }
        let (Some(d), Some(first)) = (s.damage, s.min_seq) else {
            continue;
        };
        let mut scratch = Vec::new();
        let Some((Ok((plain, _)), _)) = src.fetch_block(&s.file, Location::default(), &mut scratch)
        else {
            continue;
        };
        let mut past = Vec::new();
        let mut clean = true;
        for r in crate::filestore::block::Records::starting_at(&plain, d.offset) {
            let Ok(r) = r else {
                clean = false;
                break;
            };
            if r.kind() == crate::filestore::block::RecordKind::Message
                && r.seq >= first
                && !r.subject.is_empty()
            {
                past.push((r.subject.to_vec(), 1));
            }
        }
        if clean {
            out.extend(past);
        }
    }
    unreadable.sort_unstable();
    unreadable.dedup();
    out
}

/// The pending counts of a stream with a block of [`cut_compressed_kept`]: the server's
/// `NumPending` over the rebuilt state (the per-subject totals built from the blocks' caches,
/// `subjects`), read as [`crate::state::pending::ServerPending`] reads a trusted index's:
/// before 2.12.3 the cut block's records past its last sequence are in its per-subject
/// state, from 2.12.3 the block does not load and a count that reads it fails.
fn rebuilt_pending_model<'a>(
    pre: &Prelude,
    src: &'a dyn StreamSource,
    load: &LoadInput,
    (scans, refused): (&[BlockScan], &[u32]),
    subjects: &HashMap<Vec<u8>, u64>,
    after: (u64, u64),
) -> Option<crate::state::pending::ServerPending<'a>> {
    use crate::filestore::index_db::{BlockEntry, IndexDb, SubjectEntry};
    use crate::state::pending::BlockCond;
    let mut blocks = Vec::new();
    let (mut files, mut conds) = (Vec::new(), Vec::new());
    // deleted sequences kept in the model, at most (8 MiB)
    let mut budget: u64 = 1 << 20;
    for s in scans {
        if s.unreadable {
            continue; // a block that does not decode: the rebuild drops it (2.10 to 2.13)
        }
        if !src.can_refetch(&s.file) {
            return None;
        }
        let (Some(first), Some(last)) = (s.min_seq, s.max_seq) else {
            continue; // no message: the rebuild keeps no such block
        };
        // a block's sequences are at most its records (a few hundred thousand); damage can
        // claim any range: not modelled past a budget (memory stays bounded)
        if last - first >= 1 << 22 {
            return None;
        }
        let dead = (last - first + 1).saturating_sub(s.msgs);
        budget = budget.checked_sub(dead)?;
        let deleted: Vec<u64> = (first..=last).filter(|&q| !s.live_bits.get(q)).collect();
        blocks.push(BlockEntry {
            index: s.index,
            bytes: s.bytes,
            first_seq: first,
            first_ts: s.first_ts,
            last_seq: last,
            last_ts: s.last_ts,
            num_deleted: deleted.len() as u64,
            ttls: 0,
            schedules: 0,
            deleted,
            offset: 0,
        });
        files.push(s.file.clone());
        conds.push(if refused.contains(&s.index) {
            BlockCond::Unreadable
        } else {
            BlockCond::Intact
        });
    }
    let (msgs, last) = after;
    let db = IndexDb {
        version: 0,
        msgs,
        bytes: 0,
        first_seq: scans.iter().filter_map(|s| s.first_live).min().unwrap_or(0),
        first_ts: 0,
        last_seq: last,
        last_ts: 0,
        subjects: subjects
            .iter()
            .map(|(k, &n)| SubjectEntry {
                subject: k.clone(),
                total: n,
                first_blk: 0,
                last_blk: 0,
            })
            .collect(),
        blocks,
        last_block: 0,
        last_checksum: [0; 8],
    };
    Some(crate::state::pending::ServerPending::new(
        &db,
        (&files, &conds),
        src,
        &pre.cfg_name,
        load.release.as_ref(),
        after,
    ))
}

/// Messages index.db lists as live that no block holds any more, neither as a record nor
/// deleted by a tombstone or an erase, when the server rebuilds the state: a block cut at a
/// record boundary (the file just ends early), whose missing records the rebuild cannot see
/// and loses (fidelity F7: `truncate -s 55 ORDERS/msgs/1.blk` with index.db, the server
/// serves 1 of 8). One finding per block, with the lost sequences.
fn missing_on_rebuild(
    pre: &Prelude,
    load: &LoadInput,
    scans: &[BlockScan],
    truncs: &[Truncation],
    prefix: &str,
) -> Vec<(Problem, Vec<u64>)> {
    let (true, Some(db)) = (load.recovery.rebuilds(), pre.index_db.as_ref()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for be in &db.blocks {
        let Some(s) = scans.iter().find(|s| s.index == be.index) else {
            continue; // a missing block is its own finding
        };
        if s.unreadable
            || truncs.iter().any(|t| t.file == s.file)
            || be.last_seq.saturating_sub(be.first_seq) > 1 << 24
        {
            continue;
        }
        let dead: std::collections::HashSet<u64> = be
            .deleted
            .iter()
            .chain(&s.tombstones)
            .chain(&s.erased)
            .copied()
            .collect();
        let after = s.max_seq.map_or(be.first_seq, |m| m + 1).max(be.first_seq);
        let gone: Vec<u64> = (after..=be.last_seq)
            .filter(|q| !dead.contains(q) && !pre.dead.seqs.contains(q))
            .filter(|q| {
                !scans
                    .iter()
                    .any(|o| o.live_bits.get(*q) || o.tombstones.contains(q))
            })
            .collect();
        if gone.is_empty() {
            continue;
        }
        let p = Problem::new(
            Kind::BlockShort,
            pre.loc()
                .file(format!("{prefix}{}", s.file))
                .at(s.plain_len)
                .seqs(gone[0], *gone.last().unwrap_or(&gone[0])),
            format!(
                "{} ends at offset {} after seq {}, but index.db lists seqs up to {} in it: the server rebuilds the state from the blocks and loses seqs {}",
                s.file,
                s.plain_len,
                after.saturating_sub(1),
                be.last_seq,
                load::ranges_text(&load::ranges(gone.iter().copied()))
            ),
        );
        out.push((p, gone));
    }
    out
}

/// A block cut cleanly at a record boundary (no damaged record: the file just ends early)
/// under a trusted index.db: 2.10 to 2.12.2 keep the index's numbers for it without a word
/// and cannot serve the missing messages; 2.12.3+ notice and count only what is there (matrix
/// `trunc_mid_at_rec`). Returns the sequences counted from the index.
fn count_short_blocks_from_index(
    pre: &Prelude,
    load: &LoadInput,
    scans: &mut [BlockScan],
    prefix: &str,
) -> Vec<u64> {
    let (Recovery::Index, Some(db), Some(r)) =
        (&load.recovery, pre.index_db.as_ref(), load.release.as_ref())
    else {
        return Vec::new();
    };
    if load::checks_blocks_against_index(Some(r)) || load::is_legacy(r) {
        return Vec::new();
    }
    let mut counted = Vec::new();
    for s in scans
        .iter_mut()
        .filter(|s| !s.unreadable && s.damage.is_none())
    {
        let Some(be) = db.blocks.iter().find(|b| b.index == s.index) else {
            continue;
        };
        let from = s.max_seq.map_or(be.first_seq, |m| m + 1);
        if from > be.last_seq || be.last_seq - from > 1 << 24 {
            continue;
        }
        let dead: std::collections::HashSet<u64> = be.deleted.iter().copied().collect();
        let missing: Vec<u64> = (from..=be.last_seq)
            .filter(|q| !dead.contains(q) && !pre.dead.seqs.contains(q))
            .collect();
        if missing.is_empty() {
            continue;
        }
        for &q in &missing {
            s.live_bits.set(q);
        }
        // a block with nothing left takes its first time from the index too (matrix
        // `trunc_first_zero`, 2.10.26-2.12.2: the stream's first time is seq 1's)
        if s.first_live.is_none() {
            s.first_ts = be.first_ts;
            s.min_seq = s.min_seq.or(Some(be.first_seq));
        }
        s.msgs += missing.len() as u64;
        s.bytes = be.bytes;
        s.first_live = s.live_bits.first();
        s.last_live = s.live_bits.last();
        s.max_seq = Some(be.last_seq);
        s.last_ts = be.last_ts;
        s.problem(Problem::new(
            Kind::BlockShort,
            pre.loc().file(format!("{prefix}{}", s.file))
                .at(s.plain_len)
                .seqs(from, be.last_seq),
            format!(
                "the block ends at offset {} after seq {}, but index.db says it holds seqs up to {}: release {r} trusts index.db, counts seqs {} and cannot serve them (MSG.GET answers \"no message found\"); 2.12.3+ and a rebuild lose them",
                s.plain_len,
                from - 1,
                be.last_seq,
                load::ranges_text(&load::ranges(missing.iter().copied()))
            ),
        ));
        counted.extend(missing);
    }
    counted
}

/// The consumer dirs of a stream (`obs/<name>/…`), in file order.
fn consumer_names(pre: &Prelude) -> Vec<String> {
    let mut names: Vec<String> = pre
        .files
        .iter()
        .filter_map(|n| n.strip_prefix("obs/"))
        .filter_map(|r| r.split_once('/').map(|(c, _)| c.to_string()))
        .collect();
    names.dedup();
    names
}

/// The lowest ack floor over the consumers of an interest-retention stream, when every
/// consumer takes the whole stream (no filter): the messages up to it are acknowledged by
/// all and the server removes them as the consumers start (seen on 2.9.10 after a rebuild:
/// INTEREST, two consumers at floors 30 and 12, loads from seq 13). `None` otherwise.
fn acked_floor(pre: &Prelude, src: &dyn StreamSource) -> Option<u64> {
    let retention = pre.meta.as_ref()?.json.get("retention")?.as_str()?;
    // work queues are not re-derived (2.9.10 kept 59 and 60 of WQ's 60 messages although its
    // consumer had acknowledged 30)
    if retention != "interest" {
        return None;
    }
    let mut floor: Option<u64> = None;
    let mut ignored = Vec::new();
    for c in consumer_names(pre) {
        let FileRead::Bytes(raw) = src.fetch(
            &format!("obs/{c}/meta.inf"),
            Location::default(),
            &mut ignored,
        ) else {
            return None;
        };
        let cfg: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        let filtered = cfg
            .get("filter_subject")
            .and_then(|v| v.as_str())
            .is_some_and(|f| !f.is_empty())
            || cfg
                .get("filter_subjects")
                .and_then(|v| v.as_array())
                .is_some_and(|a| !a.is_empty());
        if filtered {
            return None;
        }
        let FileRead::Bytes(b) =
            src.fetch(&format!("obs/{c}/o.dat"), Location::default(), &mut ignored)
        else {
            return None;
        };
        let st = consumer_state::parse(&b).ok()??;
        floor = Some(floor.map_or(st.ack_floor.stream_seq, |f| f.min(st.ack_floor.stream_seq)));
    }
    floor.filter(|&f| f > 0)
}

/// Subjects of live messages that none of the stream's `subjects` filters match (streams that
/// take messages only through their own subjects: no mirror, sources or subject transform).
/// The server serves them without a word; the subject length is outside the record checksum,
/// so a damaged length shows up only like this (fidelity F7), as does a message stored before
/// the stream's subjects were changed: a warning, per distinct subject.
fn check_subjects_in_config(pre: &Prelude, rep: &StreamReport, problems: &mut Vec<Problem>) {
    let Some(cfg) = pre.meta.as_ref().map(|m| &m.json) else {
        return;
    };
    let takes_others = ["mirror", "sources", "subject_transform"].iter().any(|k| {
        cfg.get(*k)
            .is_some_and(|v| !v.is_null() && v != &serde_json::json!([]))
    });
    let Some(filters) = cfg.get("subjects").and_then(|v| v.as_array()) else {
        return;
    };
    let filters: Vec<&[u8]> = filters
        .iter()
        .filter_map(|f| f.as_str())
        .map(str::as_bytes)
        .collect();
    if takes_others || filters.is_empty() {
        return;
    }
    let mut n = 0u64;
    for (subj, count) in &rep.subject_counts {
        if filters
            .iter()
            .any(|f| crate::base::subject::matches(f, subj.as_bytes()))
        {
            continue;
        }
        n += 1;
        if n > crate::base::problem::MAX_PER_KIND {
            break;
        }
        problems.push(Problem::new(
            Kind::SubjectOutsideStream,
            pre.loc(),
            format!(
                "{count} message(s) on subject \"{}\", which none of the stream's subjects ({}) matches: the server serves them as they are; a damaged subject length (outside the record checksum) or messages stored before the subjects were changed",
                crate::base::bytes::printable(subj.as_bytes(), 80),
                filters
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
}

/// A store written by 2.10 or later, loaded by 2.9 (a downgrade across the file store's
/// format change; matrix `from_next_release`, `from_2.15.1` on 2.9.10): 2.9 knows no
/// tombstones and reads each as a message whose sequence is the deleted one plus 2^62 (its
/// checksum verifies), so the stream's last sequence jumps past 4.6e18 and new messages follow
/// it; it cannot read compressed blocks, and ignores index.db. (2.9.10 on PLAIN, 96 messages
/// and 7 tombstones: 103 messages, last 4611686018427388003.) jetdir's numbers stay the
/// store's; this finding says what 2.9 would make of it.
fn too_new_for_2_9(
    pre: &Prelude,
    scans: &[BlockScan],
    release: Option<&Release>,
    problems: &mut Vec<Problem>,
) {
    if !release.is_some_and(load::is_legacy) {
        return;
    }
    let tombs: u64 = scans.iter().map(|s| s.tombstones.len() as u64).sum();
    let top = scans
        .iter()
        .flat_map(|s| s.tombstones.iter())
        .max()
        .copied();
    let cmp = scans.iter().filter(|s| s.compressed).count();
    // (index.db alone it ignores: it rebuilds, as jetdir's numbers for it say)
    if tombs == 0 && cmp == 0 {
        return;
    }
    let r = release.map_or(String::new(), |r| r.to_string());
    let mut what = Vec::new();
    if let (true, Some(t)) = (tombs > 0, top) {
        what.push(format!(
            "reads its {tombs} delete marker(s) (tombstones) as messages with sequences past 2^62 (up to {}), which the stream's sequences then take (new messages follow them)",
            t | crate::filestore::block::TBIT
        ));
    }
    if cmp > 0 {
        what.push(format!(
            "cannot read its {cmp} compressed block(s): their messages are lost to it"
        ));
    }
    problems.push(Problem::new(
        Kind::FormatTooNew,
        pre.loc(),
        format!(
            "this stream was written by nats-server 2.10 or later, whose file store {r} does not know: it {}; do not start {r} on these files (run 2.10 or later, or restore a backup made for {r})",
            what.join("; it ")
        ),
    ));
}

/// A legacy `.idx` that describes its block as it is (2.9 trusts it: its last checksum is the
/// block's, or the block is empty as the index says, or its last record was erased after).
fn idx_trusted(x: &crate::filestore::legacy::LegacyIdx, s: &BlockScan) -> bool {
    (s.plain_len == 0 && x.msgs == 0)
        || s.last_checksum == Some(x.last_checksum)
        || s.last_record_erased
}

/// The stream's first sequence and time as 2.9 recovers them (`recoverMsgs`, v2.9.10): blocks
/// in the order the directory lists them (by file name: `10.blk` before `2.blk`), each taking
/// the stream's first when there is none yet (0) or its own is lower. A block rebuilt to
/// nothing without an `.idx` has first 0 and so resets it: the next block listed sets it again
/// (matrix `zero_mid_all+noidx`, 2.9.10: block 2 zeroed, first 61 with 1..30 still counted;
/// `zero_last_all+noidx`: the last block zeroed, first 0 at time 0).
fn legacy_first(mut firsts: Vec<(String, (u64, i64))>) -> Option<(u64, i64)> {
    firsts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut first: Option<(u64, i64)> = None;
    for (_, f) in firsts {
        if first.is_none_or(|(q, _)| q == 0 || f.0 < q) {
            first = Some(f);
        }
    }
    first
}

/// The `.fss` 2.9 takes a block's subject counts from, when the block's `.idx` is trusted
/// (`x`): 2.9 regenerates them from the block when the `.fss`'s total is not the `.idx`'s
/// message count (`populateGlobalPerSubjectInfo`; matrix `kill_idle` WQ: an acknowledged
/// message removed after the .fss was written)
fn trusted_fss<'p>(
    pre: &'p Prelude,
    s: &BlockScan,
    x: &crate::filestore::legacy::LegacyIdx,
) -> Option<&'p crate::filestore::legacy::LegacyFss> {
    pre.fss.get(&s.index).filter(|f| {
        f.hash_ok
            && Some(f.last_checksum) == s.last_checksum
            && f.subjects
                .iter()
                .filter(|e| !e.subject.is_empty())
                .map(|e| e.msgs)
                .sum::<u64>()
                == x.msgs
    })
}

/// The blocks as 2.9's filtered pending count sees them ([`consumers::LegacyBlocks`]): first
/// and last from a trusted `.idx` (with its trusted `.fss`), else from the rebuild.
fn legacy_blocks<'p>(
    pre: &'p Prelude,
    scans: &[BlockScan],
    problems: &[Problem],
    src: &dyn StreamSource,
    prefix: &str,
) -> consumers::LegacyBlocks<'p> {
    let blocks = scans
        .iter()
        .map(|s| {
            let (first, last, idx) = legacy_block(pre, s, (problems, src, prefix), true);
            (first.0, last, idx.and_then(|x| trusted_fss(pre, s, x)))
        })
        .collect();
    consumers::LegacyBlocks { blocks }
}

/// The `.idx` 2.9 takes a block's numbers from: one that describes the block as it is
/// ([`idx_trusted`]) and reads consistently; `after_reads`: not one whose block 2.9's cache
/// indexing gives up on when it first reads it (the block is then rebuilt).
fn used_idx<'p>(
    pre: &'p Prelude,
    s: &BlockScan,
    after_reads: bool,
) -> Option<&'p crate::filestore::legacy::LegacyIdx> {
    pre.idx
        .get(&s.index)
        .filter(|x| idx_trusted(x, s) && x.consistent() && !(after_reads && s.legacy_cache_fails))
}

/// A block's first (seq, time) and last seq as 2.9 has them, and the `.idx` they come from:
/// a used one ([`used_idx`]), else the rebuild's ([`rebuilt_first`], its last record).
fn legacy_block<'p>(
    pre: &'p Prelude,
    s: &BlockScan,
    (problems, src, prefix): (&[Problem], &dyn StreamSource, &str),
    after_reads: bool,
) -> (
    (u64, i64),
    u64,
    Option<&'p crate::filestore::legacy::LegacyIdx>,
) {
    match used_idx(pre, s, after_reads) {
        Some(x) => ((x.first_seq, x.first_ts), x.last_seq, Some(x)),
        None => {
            let f = rebuilt_first(pre, s, problems, src, &format!("{prefix}{}", s.file));
            (f, s.max_seq.unwrap_or(0).max(f.0), None)
        }
    }
}

/// The first sequence and time of a block 2.9 rebuilds from its records: the first record it
/// keeps, else the .idx's first when it reads one (stale or not), else 0.
fn rebuilt_first(
    pre: &Prelude,
    s: &BlockScan,
    problems: &[Problem],
    src: &dyn StreamSource,
    file: &str,
) -> (u64, i64) {
    let readable_idx = pre.idx.get(&s.index).filter(|x| x.consistent());
    let mut bfirst = readable_idx.map_or((0, 0), |x| (x.first_seq, x.first_ts));
    if let Some(f) = s.first_live {
        bfirst = (f, s.first_ts);
    }
    // a rebuilt block cut at its first record, whose head frames but whose checksum fails,
    // takes that record's sequence and time as its first (2.9 sets them before it checks the
    // checksum), and the stream starts there (matrix `flip_first_len+noidx`, 2.9.10: first
    // seq 1 and its time, nothing of the block left). A first block with nothing left whose
    // .idx is there but stale keeps the .idx's first sequence and time: 2.9's rebuild resets
    // neither (matrix `trunc_first_zero`, 2.9.10: first 1, at seq 1's time)
    if let (None, Some(d)) = (s.first_live, s.damage) {
        if let Some(q) = problems
            .iter()
            .filter(|p| p.kind == Kind::RecordChecksum && p.loc.file.as_deref() == Some(file))
            .find(|p| p.loc.offset == Some(d.offset as u64))
            .and_then(|p| p.loc.seq)
            .filter(|&q| q > bfirst.0 && s.min_seq.is_none_or(|m| q <= m))
        {
            if let Some(ts) = record_ts(src, &s.file, d.offset) {
                bfirst = (q, ts);
            }
        }
    }
    bfirst
}

/// The stream's first sequence as 2.9 has it right after it recovered its blocks (before the
/// limits: `recoverMsgs`): each block's from a trusted `.idx`, else from its rebuild
/// ([`rebuilt_first`]), in file-name order ([`legacy_first`]).
fn legacy_recovered_first(
    pre: &Prelude,
    scans: &[BlockScan],
    problems: &[Problem],
    src: &dyn StreamSource,
    prefix: &str,
) -> Option<u64> {
    let firsts = scans
        .iter()
        .map(|s| {
            let (first, _, _) = legacy_block(pre, s, (problems, src, prefix), false);
            (s.file.clone(), first)
        })
        .collect();
    legacy_first(firsts).map(|f| f.0)
}

/// 2.9's stream numbers (M13 of the matrix findings): a block with a trusted `.idx` counts
/// what the `.idx` says (messages, bytes, first/last, its delete map; subjects from a trusted
/// `.fss`), even when records in it are damaged, which it then cannot serve; a rebuilt block
/// counts its records, and a rebuilt last block that ends in a damaged record keeps that
/// record's sequence and time as the stream's last. `deleted` is the sum of the blocks' delete
/// maps (deletes inside each block's range): sequences lost between blocks or cut from a
/// block's end are not counted as deleted, as 2.9 reports it. Returns the stream's last
/// sequence and the sequences it counts but cannot serve.
fn legacy_numbers(
    pre: &Prelude,
    src: &dyn StreamSource,
    scans: &[BlockScan],
    problems: &[Problem],
    rep: &mut StreamReport,
    prefix: &str,
) -> (u64, Vec<u64>, Vec<u64>, Vec<Problem>) {
    let mut cut = Vec::new();
    let mut cut_seqs: Vec<u64> = Vec::new();
    let mut msgs = 0u64;
    let mut served = scan::SeqBits::default();
    let mut bytes = 0u64;
    // each block's first sequence and time as 2.9 recovers it, by file name
    let mut firsts: Vec<(String, (u64, i64))> = Vec::new();
    let mut last: (u64, i64) = (0, 0);
    let mut deleted: Vec<u64> = Vec::new();
    let mut unreadable = Vec::new();
    let mut subjects: std::collections::BTreeMap<String, u64> = Default::default();
    fn bad_in<'a>(
        problems: &'a [Problem],
        file: &'a str,
        kind: Kind,
    ) -> impl Iterator<Item = &'a Problem> + 'a {
        problems
            .iter()
            .filter(move |p| p.kind == kind && p.loc.file.as_deref() == Some(file))
    }
    for s in scans {
        let file = format!("{prefix}{}", s.file);
        if let Some(x) = used_idx(pre, s, true) {
            msgs += x.msgs;
            bytes += x.bytes;
            firsts.push((s.file.clone(), (x.first_seq, x.first_ts)));
            if x.last_seq >= last.0 {
                last = (x.last_seq, x.last_ts);
            }
            deleted.extend(x.deleted.iter().copied());
            if x.last_seq.saturating_sub(x.first_seq) < 1 << 24 {
                for q in x.first_seq..=x.last_seq {
                    served.set(q);
                }
            }
            // damaged records it counts: a framing error hides the rest of the block
            let dead: std::collections::HashSet<u64> = x.deleted.iter().copied().collect();
            let framing_from = bad_in(problems, &file, Kind::RecordFraming)
                .chain(bad_in(problems, &file, Kind::RecordChecksum))
                .filter_map(|p| p.loc.seq)
                .min()
                .filter(|_| {
                    bad_in(problems, &file, Kind::RecordFraming)
                        .next()
                        .is_some()
                });
            if let Some(from) = framing_from {
                unreadable.extend((from..=x.last_seq).filter(|q| !dead.contains(q)));
            } else {
                unreadable.extend(
                    bad_in(problems, &file, Kind::RecordChecksum).filter_map(|p| p.loc.seq),
                );
                // counted by the .idx, but no intact record holds them: erased after the
                // .idx was written (a crash), or their record carries another sequence
                if x.last_seq.saturating_sub(x.first_seq) < 1 << 24 {
                    unreadable.extend(
                        (x.first_seq..=x.last_seq)
                            .filter(|q| !dead.contains(q) && !s.live_bits.get(*q)),
                    );
                }
            }
            // 2.9 regenerates the subject counts from the block when the .fss's total is not
            // the .idx's message count (`populateGlobalPerSubjectInfo`; matrix `kill_idle` WQ:
            // an acknowledged message removed after the .fss was written)
            if let Some(f) = trusted_fss(pre, s, x) {
                for e in f.subjects.iter().filter(|e| e.msgs > 0) {
                    *subjects
                        .entry(String::from_utf8_lossy(&e.subject).into_owned())
                        .or_insert(0) += e.msgs;
                }
                continue;
            }
        } else {
            msgs += s.msgs;
            bytes += s.bytes;
            served.union_with(&s.live_bits);
            // the rebuild starts from the .idx's first when it reads one (stale or not), else
            // from 0, and takes the first record it keeps
            let readable_idx = pre.idx.get(&s.index).filter(|x| x.consistent());
            let (lo, hi) = (s.min_seq.unwrap_or(0), s.max_seq.unwrap_or(0));
            if hi >= last.0 && s.max_seq.is_some() {
                last = (hi, s.last_ts);
            }
            deleted.extend(
                (lo..=hi)
                    .filter(|&q| lo > 0 && !s.live_bits.get(q))
                    .take(100_000),
            );
            // a stale .idx's delete map stays (2.9.10 listed 99 as deleted after cutting its
            // block at 98: `trunc_last_at_rec`)
            if let Some(x) = readable_idx {
                deleted.extend(x.deleted.iter().copied().filter(|&q| q >= lo));
                // messages the stale .idx lists past the block's end are gone (F7: ORDERS'
                // 1.blk cut at 139, 2.9.10 loads 2 messages, last seq 2)
                let after = hi.max(x.first_seq.saturating_sub(1)) + 1;
                if x.last_seq >= after && x.last_seq - after < 1 << 24 {
                    let gone: Vec<u64> = (after..=x.last_seq)
                        // the dead set holds this (consistent) .idx's deletes
                        .filter(|q| !pre.dead.seqs.contains(q))
                        .collect();
                    if let (Some(&a), Some(&z)) = (gone.first(), gone.last()) {
                        let lost = load::ranges_text(&load::ranges(gone.iter().copied()));
                        let (at, why) = match s.damage.filter(|_| s.legacy_cache_fails) {
                            // (matrix `zero_mid_page`, 2.9.10: 77 messages where its .idx said 96)
                            Some(d) => (d.offset as u64, format!(
                                "{} does not read past offset {} (2.9 gives up indexing it when it first loads it: at start for a consumer whose position lies in it, else on the first read of one of its messages): the server then rebuilds the block from its .idx's first, cuts it there and loses seqs {lost}, which its .idx lists up to {}",
                                s.file, d.offset, x.last_seq
                            )),
                            None => (s.plain_len, format!(
                                "{} ends at offset {} after seq {}, but its .idx lists seqs up to {}: the server rebuilds the block and loses seqs {lost}",
                                s.file,
                                s.plain_len,
                                after - 1,
                                x.last_seq,
                            )),
                        };
                        cut.push(Problem::new(
                            Kind::BlockShort,
                            pre.loc().file(&file).at(at).seqs(a, z),
                            why,
                        ));
                        cut_seqs.extend(gone);
                    }
                }
            }
            firsts.push((s.file.clone(), rebuilt_first(pre, s, problems, src, &file)));
            // a rebuilt block cut at a damaged record keeps that record's sequence as its last
            if let Some(d) = s.damage {
                if let Some(p) = problems.iter().find(|p| {
                    // a whole record with a bad checksum (not one cut short or misframed)
                    p.kind == Kind::RecordChecksum
                        && p.loc.file.as_deref() == Some(file.as_str())
                        && p.loc.offset == Some(d.offset as u64)
                }) {
                    if let Some(q) = p
                        .loc
                        .seq
                        .filter(|&q| q > last.0 && q < hi.max(last.0) + 1_000_000)
                    {
                        last = (q, record_ts(src, &s.file, d.offset).unwrap_or(last.1));
                    }
                }
            }
        }
        for (i, n) in s.subject_names.iter().enumerate() {
            let c = s.subject_counts.get(i).copied().unwrap_or(0);
            if c > 0 {
                *subjects
                    .entry(String::from_utf8_lossy(n).into_owned())
                    .or_insert(0) += c;
            }
        }
    }
    let last_seq = last.0;
    deleted.sort_unstable();
    deleted.dedup();
    rep.messages = Some(msgs);
    rep.bytes = Some(bytes);
    // where the blocks' sequences start, whatever 2.9 reports as first: the gaps below are
    // looked for from there
    let lowest = firsts.iter().map(|f| f.1 .0).filter(|&q| q > 0).min();
    match legacy_first(firsts) {
        Some((f, ts)) if msgs > 0 => {
            rep.first_seq = Some(f);
            rep.first_ts = Some(ts);
        }
        // no message: the blocks' first as well (an emptied block's 0: the real 2.9.10 on
        // 2.15.1's EMPTY, one empty block without .idx, first 0 and last 0)
        Some((f, _)) if f <= last_seq + 1 => rep.first_seq = Some(f),
        _ => rep.first_seq = Some(last_seq + 1),
    }
    rep.last_seq = Some(last_seq);
    if last.0 == last_seq && last.1 != 0 && msgs > 0 {
        rep.last_ts = Some(last.1);
    }
    rep.deleted = Some(deleted.len() as u64);
    deleted.truncate(crate::state::stream::MAX_LISTED_DELETES);
    rep.deleted_seqs = deleted;
    rep.subjects = Some(subjects.len() as u64);
    rep.subject_counts = subjects;
    // sequences between first and last that no block holds and no delete map lists
    let mut gaps = Vec::new();
    let lo = lowest.unwrap_or(last_seq + 1);
    if msgs > 0 && last_seq.saturating_sub(lo) < 1 << 24 {
        let listed: std::collections::HashSet<u64> = rep.deleted_seqs.iter().copied().collect();
        gaps.extend((lo..=last_seq).filter(|q| !served.get(*q) && !listed.contains(q)));
    }
    gaps.extend(cut_seqs);
    (last_seq, unreadable, gaps, cut)
}

/// The server's own pending counts ([`crate::state::pending`]) for a stream whose state comes
/// from a trusted index.db, every block it lists readable and nothing cut or removed at load
/// (`plain`), with records the server counts but may not read back, or reads back otherwise
/// (a checksum, sequence or subject damaged; the index disagreeing with the blocks): then the
/// count is the index's totals less what reads back before the start.
#[allow(clippy::too_many_arguments)]
fn server_pending_model<'a>(
    pre: &Prelude,
    src: &'a dyn StreamSource,
    load: &LoadInput,
    scans: &[BlockScan],
    problems: &[Problem],
    prefix: &str,
    truncs: &[Truncation],
    after: (u64, u64),
    plain: bool,
) -> Option<crate::state::pending::ServerPending<'a>> {
    use crate::state::pending::BlockCond;
    let (Recovery::Index, Some(db), true) = (&load.recovery, pre.index_db.as_ref(), plain) else {
        return None;
    };
    let newer = load::checks_blocks_against_index(load.release.as_ref());
    // 2.12+ empty such a block as the stream loads, before any consumer counts; 2.10 and 2.11
    // when a count first reads it, which depends on the consumers' order (not modelled: the
    // block counts as unreadable)
    let empties = load::reads_after_cut(load.release.as_ref());
    let keyless: Vec<u32> = if empties {
        keyless_blocks(pre, load).iter().map(|k| k.0).collect()
    } else {
        Vec::new()
    };
    let (mut files, mut conds) = (Vec::new(), Vec::new());
    for b in &db.blocks {
        // a block gone: the index-totals count (index_totals_for_pending) models it
        let s = scans.iter().find(|s| s.index == b.index)?;
        // an unreadable block is never read by the model (a block without its key included)
        if !s.unreadable && !src.can_refetch(&s.file) {
            return None;
        }
        let cut = truncs.iter().find(|t| t.file == s.file);
        // a block cut at its first record empties as a keyless one does (2.12+): whichever
        // count reads it first empties it (matrix `flip_second_first_len`: C_EXPL 38)
        let emptied = empties && cut.is_some_and(|t| t.offset == 0 && s.msgs == 0);
        let cond = if (s.unreadable && keyless.contains(&b.index)) || emptied {
            BlockCond::Keyless
        } else if s.unreadable {
            BlockCond::Unreadable
        } else if let Some(t) = cut {
            BlockCond::CutOnLoad {
                offset: t.offset,
                last: s.max_seq.unwrap_or(b.first_seq.saturating_sub(1)),
                msgs: s.msgs,
            }
        } else if newer && s.max_seq.is_some_and(|m| m < b.last_seq) && s.damage.is_none() {
            BlockCond::Short {
                last: s.max_seq.unwrap_or(0),
                msgs: s.msgs,
            }
        } else {
            BlockCond::Intact
        };
        files.push(s.file.clone());
        conds.push(cond);
    }
    let damaged = problems.iter().any(|p| {
        matches!(
            p.kind,
            Kind::RecordChecksum
                | Kind::SeqOrder
                | Kind::RecordContent
                | Kind::SubjectNotUtf8
                | Kind::SubjectOutsideStream
                | Kind::IndexDbMismatch
        ) && p.loc.file.as_deref().is_some_and(|f| f.starts_with(prefix))
    });
    let off = conds.iter().any(|c| *c != BlockCond::Intact);

    (damaged || off).then(|| {
        crate::state::pending::ServerPending::new(
            db,
            (&files, &conds),
            src,
            &pre.cfg_name,
            load.release.as_ref(),
            after,
        )
    })
}

/// Blocks whose records are out of sequence order (`seq_order`: a damaged sequence field)
/// under a trusted index (index.db, or 2.9's `.idx`), not cut at load: which of the index's
/// sequences read back is decided by the release's cache slots ([`load::slot_rule`]). Per
/// block: the index's sequence range and the sequences in it that are not served.
fn slot_unserved(
    pre: &Prelude,
    src: &dyn StreamSource,
    scans: &[BlockScan],
    problems: &[Problem],
    load: &LoadInput,
    truncs: &[Truncation],
    prefix: &str,
) -> Vec<(u64, u64, Vec<u64>)> {
    let rule = load::slot_rule(load.release.as_ref());
    let mut out = Vec::new();
    for s in scans {
        let file = format!("{prefix}{}", s.file);
        let disordered = problems
            .iter()
            .any(|p| p.kind == Kind::SeqOrder && p.loc.file.as_deref() == Some(file.as_str()));
        if !disordered || truncs.iter().any(|t| t.file == s.file) {
            continue;
        }
        let (first, last, deleted) = match (&load.recovery, pre.index_db.as_ref()) {
            (Recovery::Index, Some(db)) => {
                let Some(b) = db.blocks.iter().find(|b| b.index == s.index) else {
                    continue;
                };
                (b.first_seq, b.last_seq, b.deleted.clone())
            }
            (Recovery::Legacy, _) => {
                let Some(x) = used_idx(pre, s, false) else {
                    continue;
                };
                (x.first_seq, x.last_seq, x.deleted.clone())
            }
            _ => continue,
        };
        let mut scratch = Vec::new();
        let Some((Ok((plain, _)), _)) = src.fetch_block(&s.file, Location::default(), &mut scratch)
        else {
            continue;
        };
        let key = crate::filestore::block::block_key(&pre.cfg_name, s.index);
        let deleted: std::collections::HashSet<u64> = deleted.into_iter().collect();
        let unserved = load::unserved_by_slots(&plain, &key, first, last, &deleted, rule);
        out.push((first, last, unserved));
    }
    out
}

/// The timestamp in the header of the record at `offset` of block `file`, if readable.
fn record_ts(src: &dyn StreamSource, file: &str, offset: usize) -> Option<i64> {
    let mut scratch = Vec::new();
    let (Ok((plain, _)), _) = src.fetch_block(file, Location::default(), &mut scratch)? else {
        return None;
    };
    let b = plain.get(offset + 12..offset + 20)?;
    Some(i64::from_le_bytes(b.try_into().ok()?))
}

/// The index's per-subject totals, when a trusted index.db counts messages that no readable
/// block shows (a listed block gone, or undecodable): the server's pending counts use them.
fn index_totals_for_pending(
    pre: &Prelude,
    recovery: &Recovery,
    scans: &[BlockScan],
    counted: &[u64],
) -> Option<consumers::IndexTotals> {
    let (Recovery::Index, Some(db)) = (recovery, pre.index_db.as_ref()) else {
        return None;
    };
    let mut blind = Vec::new();
    for b in db.blocks.iter().filter(|b| b.msgs() > 0) {
        let n = match scans.iter().find(|s| s.index == b.index) {
            None => b.msgs(),
            Some(s) if s.unreadable => b.msgs(),
            Some(_) => counted
                .iter()
                .filter(|&&q| q >= b.first_seq && q <= b.last_seq)
                .count() as u64,
        };
        if n > 0 {
            blind.push((b.first_seq, b.last_seq, n));
        }
    }
    if blind.is_empty() || db.subjects.is_empty() {
        return None;
    }
    Some(consumers::IndexTotals {
        subjects: db
            .subjects
            .iter()
            .map(|e| (e.subject.clone(), e.total))
            .collect(),
        blind,
    })
}

/// Live messages per subject over all scans.
fn subject_totals(scans: &[BlockScan]) -> HashMap<Vec<u8>, u64> {
    let mut m: HashMap<Vec<u8>, u64> = HashMap::new();
    for s in scans {
        for (i, n) in s.subject_names.iter().enumerate() {
            let c = s.subject_counts.get(i).copied().unwrap_or(0);
            if c > 0 {
                *m.entry(n.clone()).or_insert(0) += c;
            }
        }
    }
    m
}

/// Under a trusted index.db the server's per-subject counts are the index's (it does not
/// recount them from the blocks, also when a block is truncated or damaged: M6, M10, M11),
/// less what the limits remove at load.
fn subjects_from_index(
    rep: &mut StreamReport,
    db: &crate::filestore::index_db::IndexDb,
    before: &HashMap<Vec<u8>, u64>,
    after: &HashMap<Vec<u8>, u64>,
) {
    if db.subjects.is_empty() {
        return;
    }
    let mut counts = std::collections::BTreeMap::new();
    for se in &db.subjects {
        let removed = before
            .get(&se.subject)
            .copied()
            .unwrap_or(0)
            .saturating_sub(after.get(&se.subject).copied().unwrap_or(0));
        let n = se.total.saturating_sub(removed);
        if n > 0 {
            counts.insert(String::from_utf8_lossy(&se.subject).into_owned(), n);
        }
    }
    rep.subjects = Some(counts.len() as u64);
    rep.subject_counts = counts;
}

/// A block that cannot be decoded under a trusted index.db: the server counts the block's
/// messages from the index and cannot serve them (2.10 and 2.11 log "Cache lookup detected
/// no cache" when asked; M3/M5 of the matrix findings). The scan takes the index's
/// numbers (subjects stay unknown); returns the live sequences counted that way.
fn count_undecodable_from_index(
    pre: &Prelude,
    load: &LoadInput,
    scans: &mut [BlockScan],
    prefix: &str,
) -> Vec<u64> {
    let (Recovery::Index, Some(db)) = (&load.recovery, pre.index_db.as_ref()) else {
        return Vec::new();
    };
    let mut counted = Vec::new();
    for s in scans.iter_mut().filter(|s| s.unreadable) {
        let Some(be) = db.blocks.iter().find(|b| b.index == s.index) else {
            continue;
        };
        if be.msgs() == 0 || be.msgs() > 1 << 24 {
            continue;
        }
        let dead: std::collections::HashSet<u64> = be.deleted.iter().copied().collect();
        for q in be.first_seq..=be.last_seq {
            if !dead.contains(&q) && !pre.dead.seqs.contains(&q) {
                s.live_bits.set(q);
                counted.push(q);
            }
        }
        s.msgs = s.live_bits.iter().count() as u64;
        s.bytes = be.bytes;
        s.first_live = s.live_bits.first();
        s.last_live = s.live_bits.last();
        s.min_seq = Some(be.first_seq);
        s.max_seq = Some(be.last_seq);
        s.first_ts = be.first_ts;
        s.last_ts = be.last_ts;
        let file = format!("{prefix}{}", s.file);
        if let Some(p) = s.problems.iter_mut().find(|p| {
            p.kind == Kind::BlockDecompress && p.loc.file.as_deref() == Some(file.as_str())
        }) {
            p.message = format!(
                "{}; the server trusts index.db: it counts the block's {} message(s) (seqs {}..{}) but cannot serve them (MSG.GET answers \"no message found\"; 2.10 and 2.11 log \"Cache lookup detected no cache\")",
                p.message, s.msgs, be.first_seq, be.last_seq
            );
        }
    }
    counted
}

/// The first damaged record of each block gets the load's outcome: what the server keeps,
/// loses and brings back. A torn last record (crash mid-write) becomes a warning.
fn describe_damage(
    scans: &[BlockScan],
    truncs: &[Truncation],
    recovery: &Recovery,
    (src, prefix): (&dyn StreamSource, &str),
    problems: &mut Vec<Problem>,
) -> Vec<u64> {
    let mut unreadable = Vec::new();
    if matches!(recovery, Recovery::Index) {
        // a trusted index counts damaged messages the server cannot read back
        // (damage in a truncated block is lost, not unreadable)
        let cut: std::collections::HashSet<String> = truncs
            .iter()
            .map(|t| format!("{prefix}{}", t.file))
            .collect();
        unreadable.extend(
            problems
                .iter()
                .filter(|p| p.kind == Kind::RecordChecksum)
                .filter(|p| p.loc.file.as_ref().is_some_and(|f| !cut.contains(f)))
                .filter_map(|p| p.loc.seq),
        );
        unreadable.sort_unstable();
        unreadable.dedup();
    }
    for s in scans {
        let Some(d) = s.damage else { continue };
        let file = format!("{prefix}{}", s.file);
        // one finding per root cause: damage after the cut is in the part the server drops
        let mut after_cut = 0usize;
        if truncs.iter().any(|t| t.file == s.file) {
            problems.retain(|p| {
                let later = matches!(
                    p.kind,
                    Kind::RecordChecksum
                        | Kind::RecordFraming
                        | Kind::RecordContent
                        | Kind::RecordTimestamp
                        | Kind::SeqOrder
                        | Kind::SubjectNotUtf8
                        | Kind::TimestampBackwards
                ) && p.loc.file.as_deref() == Some(file.as_str())
                    && p.loc.offset.is_some_and(|o| o >= d.offset as u64)
                    && !(matches!(p.kind, Kind::RecordChecksum | Kind::RecordFraming)
                        && p.loc.offset == Some(d.offset as u64));
                after_cut += usize::from(later);
                !later
            });
        }
        let Some(p) = problems.iter_mut().find(|p| {
            matches!(p.kind, Kind::RecordChecksum | Kind::RecordFraming)
                && p.loc.file.as_deref() == Some(file.as_str())
                && p.loc.offset == Some(d.offset as u64)
        }) else {
            continue;
        };
        let t = truncs.iter().find(|t| t.file == s.file);
        let how = match recovery {
            Recovery::Rebuild { why, .. } => format!("the server rebuilds this stream ({why})"),
            Recovery::Index => "the server loads this block".to_string(),
            Recovery::Legacy => String::new(),
        };
        let note = match t {
            Some(t) if t.torn && (d.zero_tail || stored_zeros(src, s, t.offset)) => {
                *p = Problem::new(
                    Kind::ZeroedTail,
                    p.loc.clone(),
                    format!(
                        "{} holds only zeros from offset {} to its end ({} bytes): not a write cut short but data the disk never got, what a power loss leaves on a file system that logged the file's new size before its data; {how}{}truncates it there: the messages written there are gone from this node (acknowledged ones too, unless the server ran with sync_always), and which sequences they were cannot be read from this block",
                        s.file,
                        t.offset,
                        s.plain_len.saturating_sub(t.offset as u64),
                        if how.is_empty() { "the server " } else { " and " },
                    ),
                );
                continue;
            }
            Some(t) if t.torn => {
                *p = Problem::new(
                    Kind::TornTail,
                    p.loc.clone(),
                    format!(
                        "{}; a torn last write (crash): {how} and truncates {} at offset {}, losing no acknowledged message",
                        p.message, s.file, t.offset
                    ),
                );
                continue;
            }
            Some(t) => {
                let mut n = format!(
                    "{how} and truncates {} at offset {}: ",
                    s.file, t.offset
                );
                if t.lost.is_empty() {
                    n.push_str("no live message is lost");
                } else {
                    n.push_str(&format!("loses seqs {}", load::ranges_text(&t.lost)));
                }
                if after_cut > 0 {
                    n.push_str(&format!(
                        " ({after_cut} more damaged record(s) lie in the cut part)"
                    ));
                }
                if !t.revived.is_empty() {
                    n.push_str(&format!(
                        "; deleted seqs {} come back (their delete markers are in the cut part)",
                        load::ranges_text(&load::ranges(t.revived.iter().copied()))
                            .split(" (")
                            .next()
                            .unwrap_or_default()
                    ));
                }
                n
            }
            None if matches!(recovery, Recovery::Index) && !d.framing => {
                "the server trusts index.db: it counts this message but cannot serve it (MSG.GET answers \"no message found\"); a server that rebuilds the state (index.db removed or outdated) truncates the block here and loses every record after it".to_string()
            }
            None => continue,
        };
        p.message = format!("{}; {note}", p.message);
    }
    unreadable
}

/// Whether block `s` is stored as zeros from `offset` to its end, at least a record header's
/// worth: an encrypted block's zeros decrypt to its keystream, so its plain view does not show
/// them ([`scan::Damage::zero_tail`] does for plain blocks). Not for `cmp` blocks, whose
/// offsets are not the file's.
fn stored_zeros(src: &dyn StreamSource, s: &BlockScan, offset: usize) -> bool {
    let n = s.file_len.saturating_sub(offset as u64);
    !s.compressed
        && s.file_len == s.plain_len
        && n >= crate::filestore::block::HDR_LEN as u64
        && n <= crate::filestore::block::MAX_BLOCK_FILE
        && src
            .stored_tail(&s.file, n as usize)
            .ok()
            .flatten()
            .is_some_and(|b| b.len() as u64 == n && b.iter().all(|&x| x == 0))
}

/// Blocks must hold ascending, non-overlapping sequence ranges.
fn check_block_order(
    scans: &[BlockScan],
    loc: &Location,
    prefix: &str,
    problems: &mut Vec<Problem>,
) {
    let f = |n: &str| format!("{prefix}{n}");
    let mut prev: Option<(u32, u64)> = None;
    for s in scans {
        if let (Some((pi, pmax)), Some(min)) = (prev, s.min_seq) {
            if min <= pmax {
                problems.push(Problem::new(
                    Kind::SeqOrderAcrossBlocks,
                    loc.clone().file(f(&s.file)).seq(min),
                    format!(
                        "block {} starts at seq {min}, not after block {pi}'s last seq {pmax}",
                        s.index
                    ),
                ));
            }
        }
        if let Some(m) = s.max_seq {
            prev = Some((s.index, prev.map_or(m, |p| p.1.max(m))));
        }
    }
}

/// Deaths the block scans could not know (tombstones in later blocks, delete maps that arrive
/// after the blocks) applied to the scans; returns the tombstoned sequences.
fn settle_late_deaths(
    pre: &Prelude,
    dead: &DeadSet,
    (scans, refused): (&mut [BlockScan], &[u32]),
    src: &dyn StreamSource,
    prefix: &str,
    problems: &mut Vec<Problem>,
) -> Vec<u64> {
    let loc = pre.loc();
    let f = |n: &str| format!("{prefix}{n}");
    // Deaths the scans could not know: tombstones (often in later blocks) and, for archives,
    // index.db delete maps that arrive after the blocks.
    let mut tombs: Vec<u64> = scans
        .iter()
        .flat_map(|s| s.tombstones.iter().copied())
        .collect();
    tombs.sort_unstable();
    tombs.dedup();
    let mut dead_sorted: Vec<u64> = dead.seqs.iter().copied().collect();
    dead_sorted.sort_unstable();
    for s in scans.iter_mut() {
        // Look the (few) dead sequences up in the live bits rather than every live sequence
        // up in the dead sets.
        let (Some(lo), Some(hi)) = (s.live_bits.first(), s.live_bits.last()) else {
            continue;
        };
        let floor = dead.floor(s.index);
        let mut dying: Vec<u64> = s.live_bits.iter().take_while(|&q| q < floor).collect();
        let (from, to) = (lo.max(floor), hi);
        // a block whose cache the server refuses (cut_compressed_kept) takes only its own
        // tombstones: removing a message through a tombstone elsewhere loads the block
        let own: Vec<u64>;
        let tombs = if refused.contains(&s.index) {
            let mut v = s.tombstones.clone();
            v.sort_unstable();
            v.dedup();
            own = v;
            &own
        } else {
            &tombs
        };
        for sorted in [tombs, &dead_sorted] {
            let a = sorted.partition_point(|&q| q < from);
            let b = sorted.partition_point(|&q| q <= to);
            dying.extend(
                sorted[a..b.max(a)]
                    .iter()
                    .copied()
                    .filter(|&q| s.live_bits.get(q)),
            );
        }
        dying.sort_unstable();
        dying.dedup();
        if dying.is_empty() {
            continue;
        }
        if s.live.len() as u64 == s.msgs {
            for q in dying {
                if let Ok(i) = s.live.binary_search_by_key(&q, |m| m.seq) {
                    let m = s.live[i];
                    let subj = s
                        .subject_names
                        .get(m.subject as usize)
                        .cloned()
                        .unwrap_or_default();
                    s.kill(q, m.len, &subj);
                }
            }
        } else {
            // re-read the block for the sizes and subjects of the dying records
            let decoded = src
                .fetch_block(&s.file, loc.clone().file(f(&s.file)), problems)
                .and_then(|(d, _)| d.ok())
                .map(|(p, _)| p);
            let plain: &[u8] = decoded.as_deref().unwrap_or(&[]);
            let dying: std::collections::HashSet<u64> = dying.into_iter().collect();
            let found: Vec<(u64, u32, Vec<u8>)> = crate::filestore::block::Records::new(plain)
                .map_while(|r| r.ok())
                .filter(|r| {
                    r.kind() == crate::filestore::block::RecordKind::Message
                        && dying.contains(&r.seq)
                })
                .map(|r| (r.seq, r.len, r.subject.to_vec()))
                .collect();
            for (q, len, subj) in found {
                s.kill(q, len, &subj);
            }
        }
    }
    tombs
}

/// First and last timestamps of blocks whose first or last live message died late.
fn settle_timestamps(
    pre: &Prelude,
    scans: &mut [BlockScan],
    src: &dyn StreamSource,
    prefix: &str,
    problems: &mut Vec<Problem>,
) {
    let loc = pre.loc();
    let f = |n: &str| format!("{prefix}{n}");
    // timestamps of blocks whose first/last live message died
    for s in scans.iter_mut().filter(|s| s.ts_stale) {
        let (fl, ll) = (s.first_live, s.last_live);
        if s.msgs == 0 {
            s.first_ts = 0;
            s.last_ts = 0;
        } else if let Some((decoded, _)) =
            src.fetch_block(&s.file, loc.clone().file(f(&s.file)), problems)
        {
            if let Ok((plain, _)) = decoded {
                for r in crate::filestore::block::Records::new(&plain).map_while(|r| r.ok()) {
                    if r.kind() == crate::filestore::block::RecordKind::Message && Some(r.seq) == fl
                    {
                        s.first_ts = r.ts;
                    }
                    if r.kind() == crate::filestore::block::RecordKind::Message && Some(r.seq) == ll
                    {
                        s.last_ts = r.ts;
                    }
                }
            }
        } else {
            // An archive's blocks cannot be read again: take the times the index files give
            // for the same first/last sequence (what the server reports too).
            let idx_times = pre
                .index_db
                .as_ref()
                .and_then(|db| db.blocks.iter().find(|b| b.index == s.index))
                .map(|b| (b.first_seq, b.first_ts, b.last_seq, b.last_ts))
                .or_else(|| {
                    pre.idx
                        .get(&s.index)
                        .map(|x| (x.first_seq, x.first_ts, x.last_seq, x.last_ts))
                });
            if let Some((f, fts, l, lts)) = idx_times {
                if fl == Some(f) {
                    s.first_ts = fts;
                }
                if ll == Some(l) {
                    s.last_ts = lts;
                }
            }
        }
    }
}

/// The stream's report from the settled scans, with the per-subject counts and the last
/// sequence the checks need.
/// How a trusted index.db shapes the stream's numbers beyond the blocks (see `stream_report`).
#[derive(Clone, Copy, Default)]
struct IndexShape {
    /// The last block was truncated at load: the stream ends where the kept part ends (M10b).
    cut_last: bool,
    /// 2.12.3+ count every sequence missing between first and last as deleted, also one whose
    /// record carries another (damaged) sequence (M9; [`load::checks_blocks_against_index`]).
    gaps_counted: bool,
}

fn stream_report(
    pre: &Prelude,
    scans: &[BlockScan],
    late: &[u64],
    recovery: &Recovery,
    shape: IndexShape,
) -> (StreamReport, HashMap<Vec<u8>, u64>, u64) {
    let subjects = subject_totals(scans);
    // stream state
    let msgs: u64 = scans.iter().map(|s| s.msgs).sum();
    let bytes: u64 = scans.iter().map(|s| s.bytes).sum();
    let mut last = scans.iter().filter_map(|s| s.max_seq).max().unwrap_or(0);
    last = last.max(late.last().copied().unwrap_or(0));
    match recovery {
        Recovery::Index if !shape.cut_last => {
            last = last.max(pre.index_db.as_ref().map_or(0, |d| d.last_seq))
        }
        Recovery::Index => {}
        Recovery::Rebuild { prior_last, .. } => last = last.max(prior_last.map_or(0, |p| p.0)),
        Recovery::Legacy => {}
    }
    for x in pre.idx.values() {
        last = last.max(x.last_seq);
    }
    let totals = StreamTotals::new(
        msgs,
        bytes,
        scans.iter().filter_map(|s| s.first_live).min(),
        last,
    );
    let (first, mut deleted) = (totals.first_seq, totals.deleted);
    if matches!(recovery, Recovery::Index) && shape.gaps_counted {
        let live: u64 = scans
            .iter()
            .map(|s| s.live_bits.count_in(first, last))
            .sum();
        deleted = (last + 1).saturating_sub(first).saturating_sub(live);
    }
    let first_ts = scans
        .iter()
        .filter(|s| s.first_live.is_some())
        .map(|s| s.first_ts)
        .next();
    let mut last_ts = scans
        .iter()
        .rev()
        .filter(|s| s.last_live.is_some())
        .map(|s| s.last_ts)
        .next();
    // a rebuild that keeps an outdated index's last seq keeps its time too (matrix
    // `blk_missing_last`: the last block gone, last_ts is the index's; `--cipher` on 2.10.26
    // to 2.11.5: an AGE stream whose only block the server wrote undecryptable, nothing read)
    if let Recovery::Rebuild {
        prior_last: Some((pl, pts)),
        ..
    } = recovery
    {
        let blocks_last = scans.iter().filter_map(|s| s.max_seq).max().unwrap_or(0);
        if *pl == last && *pl > blocks_last && (msgs > 0 || blocks_last == 0) {
            last_ts = Some(*pts);
        }
    }
    // deleted seqs list (bounded)
    let mut deleted_seqs = DeletedList::new();
    if msgs > 0 && deleted > 0 {
        for s in scans {
            if deleted_seqs.is_full() {
                break;
            }
            deleted_seqs.live_bits(&s.live_bits);
        }
    }
    let mut deleted_seqs = if deleted > 0 {
        deleted_seqs.finish(last)
    } else {
        Vec::new()
    };
    if msgs == 0 && first == 0 && last == 0 && deleted == 1 {
        // an empty stream that never had a message (or lost them all, none known): the
        // server counts sequence 0 deleted and lists it (matrix `--cipher` kill rows)
        deleted_seqs = vec![0];
    }
    if let (Recovery::Index, Some(db)) = (recovery, pre.index_db.as_ref()) {
        // a cut last block leaves the index's deletes past the new end in the list (and
        // the count), as the server reports them (M10b)
        let beyond: std::collections::BTreeSet<u64> = db
            .blocks
            .iter()
            .flat_map(|b| b.deleted.iter().copied())
            .filter(|&q| q > last && q <= db.last_seq)
            .collect();
        if deleted_seqs.len() + beyond.len() <= crate::state::stream::MAX_LISTED_DELETES {
            deleted += beyond.len() as u64;
            deleted_seqs.extend(beyond);
        }
    }
    let rep = StreamReport {
        suppressed: Default::default(),
        account: pre.account.clone(),
        name: pre.dir_name.clone(),
        messages: Some(msgs),
        bytes: Some(bytes),
        first_seq: Some(first),
        last_seq: Some(last),
        deleted: Some(deleted),
        subjects: Some(subjects.len() as u64),
        blocks: scans.len(),
        first_ts,
        last_ts,
        encrypted: false,
        encryption: None,
        index: if let Some(db) = &pre.index_db {
            IndexKind::IndexDb(db.version)
        } else if !pre.idx.is_empty() {
            IndexKind::Legacy
        } else {
            IndexKind::None
        },
        compressed_blocks: scans.iter().filter(|s| s.compressed).count(),
        config: pre.meta.as_ref().map(|m| m.json.clone()),
        block_list: scans
            .iter()
            .map(|s| BlockReport {
                index: s.index,
                file: s.file.clone(),
                file_bytes: s.file_len,
                compressed: s.compressed,
                records: s.records,
                messages: s.msgs,
                bytes: s.bytes,
                first_seq: s.first_live,
                last_seq: s.max_seq,
                tombstones: s.tombstones.len(),
                erased: s.erased.len(),
            })
            .collect(),
        deleted_seqs,
        subject_counts: subjects
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), *v))
            .collect(),
        files: pre.files.clone(),
        consumers: Vec::new(),
        load: None,
    };
    (rep, subjects, last)
}

/// The stream as loaded, for the index check: its report and subject counts, how it was
/// recovered, and whether limits removed messages after the blocks were read.
struct Loaded<'a> {
    rep: &'a StreamReport,
    subjects: &'a HashMap<Vec<u8>, u64>,
    recovery: &'a Recovery,
    limits_applied: bool,
    /// A block ends before records index.db lists in it (`block_short`).
    cut_short: bool,
}

fn check_index_db(
    pre: &Prelude,
    scans: &[BlockScan],
    state: &Loaded,
    problems: &mut Vec<Problem>,
    prefix: &str,
) {
    let Some(db) = &pre.index_db else {
        return;
    };
    // 2.9 does not read index.db (a store a later release wrote: `format_too_new`)
    if pre.release.as_ref().is_some_and(load::is_legacy) {
        return;
    }
    let Loaded {
        rep,
        subjects,
        recovery,
        limits_applied,
        cut_short,
    } = *state;
    let file = format!("{prefix}msgs/index.db");
    let loc = pre.loc().file(&file);
    let last_scan = scans.last();
    // Is index.db simply behind the blocks (unclean stop)? Then the server rebuilds, and
    // disagreements are warnings, not damage.
    let mut stale_reasons = Vec::new();
    if let Some(ls) = last_scan {
        if db.last_block != ls.index && ls.index > db.last_block {
            stale_reasons.push(format!(
                "blocks after the last block it lists ({} > {})",
                ls.index, db.last_block
            ));
        }
        if db.last_block == ls.index
            && ls.last_checksum.is_some_and(|c| c != db.last_checksum)
            && !(ls.plain_len == 0 && db.last_checksum == [0; 8])
        {
            stale_reasons
                .push("its last checksum differs from the last block's last record".into());
        }
    }
    if db.last_seq < rep.last_seq.unwrap_or(0) {
        stale_reasons.push(format!(
            "its last seq {} is below the blocks' last seq {}",
            db.last_seq,
            rep.last_seq.unwrap_or(0)
        ));
    }
    if let Recovery::Rebuild { why, .. } = recovery {
        if stale_reasons.is_empty() {
            stale_reasons.push(why.clone());
        }
    }
    let stale = !stale_reasons.is_empty() || recovery.rebuilds();
    if stale {
        problems.push(Problem::new(
            Kind::IndexDbStale,
            loc.clone(),
            format!(
                "index.db is older than the blocks ({}): the server rebuilds the state from the blocks on start ({})",
                stale_reasons.join("; "),
                if cut_short {
                    "a block was cut short: see block_short"
                } else {
                    "an unclean shutdown, or a server still running"
                }
            ),
        ));
    }
    let mut mism: Vec<(String, Location)> = Vec::new();
    let cmp = [
        ("messages", db.msgs, rep.messages.unwrap_or(0)),
        ("bytes", db.bytes, rep.bytes.unwrap_or(0)),
        ("first_seq", db.first_seq, rep.first_seq.unwrap_or(0)),
        ("last_seq", db.last_seq, rep.last_seq.unwrap_or(0)),
    ];
    for (what, a, b) in cmp {
        // after the limits removed messages, the index (written before) cannot agree
        if a != b && !limits_applied {
            mism_push(
                &mut mism,
                format!("index.db says stream {what} {a}, the blocks give {b}"),
                loc.clone(),
            );
        }
    }
    let by_index: HashMap<u32, &BlockScan> = scans.iter().map(|s| (s.index, s)).collect();
    let front_limited = pre.meta.as_ref().is_some_and(|m| {
        let l = load::Limits::of(&m.json);
        l.max_msgs.is_some() || l.max_bytes.is_some() || l.max_age_ns.is_some()
    });
    for be in &db.blocks {
        let bl = loc.clone().at(be.offset as u64);
        let first_on_disk = scans.first().map_or(u32::MAX, |s| s.index);
        match by_index.get(&be.index) {
            None if recovery.rebuilds() && be.index < first_on_disk && front_limited => {
                problems.push(Problem::new(
                    Kind::IndexDbStale,
                    pre.loc().file(format!("{prefix}msgs/{}.blk", be.index)).seqs(be.first_seq, be.last_seq),
                    format!(
                        "index.db lists block {} (seqs {}..{}), which is gone: it lay before every block on disk, so the stream's limits removed it after index.db was written (the server logs \"could not locate msg block {}\" and counts it as lost)",
                        be.index, be.first_seq, be.last_seq, be.index
                    ),
                ))
            }
            None => problems.push(Problem::new(
                Kind::IndexDbMissingBlock,
                pre.loc().file(format!("{prefix}msgs/{}.blk", be.index)).seqs(be.first_seq, be.last_seq),
                format!(
                    "index.db lists block {} (seqs {}..{}, {} messages) but msgs/{}.blk is missing: those messages are lost",
                    be.index, be.first_seq, be.last_seq, be.msgs(), be.index
                ),
            )),
            Some(s) => {
                if s.unreadable {
                    continue;
                }
                if (be.msgs() != s.msgs || be.bytes != s.bytes) && !limits_applied {
                    mism_push(&mut mism,
                        format!(
                            "index.db says block {} holds {} messages / {} bytes, the block holds {} / {}",
                            be.index,
                            be.msgs(),
                            be.bytes,
                            s.msgs,
                            s.bytes
                        ),
                        bl.clone().seqs(be.first_seq, be.last_seq),
                    );
                }
            }
        }
    }
    for s in scans {
        if !db.blocks.iter().any(|b| b.index == s.index) && s.index < db.last_block {
            mism_push(
                &mut mism,
                format!("block {} is on disk but not listed in index.db", s.index),
                pre.loc().file(format!("{prefix}{}", s.file)),
            );
        }
    }
    // subjects
    let mut listed: HashMap<&[u8], u64> = HashMap::new();
    for se in &db.subjects {
        listed.insert(&se.subject, se.total);
    }
    // an undecodable block's subjects are unknown (its counts come from the index)
    if !listed.is_empty() && !limits_applied && !scans.iter().any(|s| s.unreadable) {
        for (k, v) in subjects {
            let l = listed.get(k.as_slice()).copied().unwrap_or(0);
            if l != *v {
                mism_push(
                    &mut mism,
                    format!(
                        "index.db counts {} messages on subject {:?}, the blocks hold {}",
                        l,
                        String::from_utf8_lossy(k),
                        v
                    ),
                    loc.clone(),
                );
            }
        }
        for (k, l) in &listed {
            if !subjects.contains_key(*k) {
                mism_push(
                    &mut mism,
                    format!(
                        "index.db counts {} messages on subject {:?}, the blocks hold none",
                        l,
                        String::from_utf8_lossy(k)
                    ),
                    loc.clone(),
                );
            }
        }
    }
    for (what, l) in mism {
        problems.push(if stale {
            Problem::new(Kind::IndexDbStale, l, what)
        } else {
            Problem::new(Kind::IndexDbMismatch, l, what)
        });
    }
}

fn mism_push(v: &mut Vec<(String, Location)>, what: String, loc: Location) {
    v.push((what, loc));
}

fn check_legacy(pre: &Prelude, scans: &[BlockScan], problems: &mut Vec<Problem>, prefix: &str) {
    for s in scans {
        if let Some(x) = pre.idx.get(&s.index) {
            let file = format!("{prefix}msgs/{}.idx", s.index);
            let loc = pre.loc().file(&file);
            let trusted = (s.plain_len == 0 && x.msgs == 0)
                || s.last_checksum == Some(x.last_checksum)
                || s.last_record_erased;
            if !x.consistent() {
                let back: Vec<u64> = x
                    .deleted
                    .iter()
                    .copied()
                    .filter(|&q| s.live_bits.get(q))
                    .collect();
                let back = if back.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; the deletes it lists are forgotten: seqs {} come back",
                        load::ranges_text(&load::ranges(back.into_iter()))
                    )
                };
                problems.push(Problem::new(Kind::IdxInconsistent, loc.clone(), format!("legacy index counts do not add up (msgs {}, first {}, last {}, deleted {}); the server rebuilds the block from its records{back}", x.msgs, x.first_seq, x.last_seq, x.deleted.len())));
                // its numbers and the .fss beside it are not used: nothing more to compare
                continue;
            }
            if !trusted {
                problems.push(Problem::new(Kind::IdxStale, loc.clone(), "legacy index's last checksum does not match the block: the server rebuilds it from the block"));
            } else if !s.unreadable && (x.msgs != s.msgs || x.bytes != s.bytes) {
                problems.push(Problem::new(
                    Kind::IdxMismatch,
                    loc.seqs(x.first_seq, x.last_seq),
                    format!(
                        "legacy index says {} messages / {} bytes, the block holds {} / {}",
                        x.msgs, x.bytes, s.msgs, s.bytes
                    ),
                ));
            }
        } else if !pre.idx.is_empty() {
            let file = format!("{prefix}msgs/{}.idx", s.index);
            // an .idx that does not parse or decrypt is there: `idx_corrupt` says so
            if !problems
                .iter()
                .any(|p| p.kind == Kind::IdxCorrupt && p.loc.file.as_deref() == Some(&file))
            {
                problems.push(Problem::new(
                    Kind::IdxMissing,
                    pre.loc().file(file),
                    "legacy layout but this block has no .idx: the server rebuilds it (deletes recorded only there are forgotten and those messages come back)",
                ));
            }
        }
        if let Some(fs) = pre.fss.get(&s.index) {
            let file = format!("{prefix}msgs/{}.fss", s.index);
            if s.last_checksum != Some(fs.last_checksum) && !s.last_record_erased {
                problems.push(Problem::new(
                    Kind::FssStale,
                    pre.loc().file(&file),
                    "per-subject state is older than the block; the server regenerates it",
                ));
                continue;
            }
            for e in &fs.subjects {
                let have = s
                    .subject_id(&e.subject)
                    .and_then(|i| s.subject_counts.get(i))
                    .copied()
                    .unwrap_or(0);
                if have != e.msgs {
                    problems.push(Problem::new(
                        Kind::FssMismatch,
                        pre.loc().file(&file),
                        format!(
                            "per-subject state counts {} messages on {:?}, the block holds {}",
                            e.msgs,
                            String::from_utf8_lossy(&e.subject),
                            have
                        ),
                    ));
                }
            }
        }
    }
}

/// thw.db, sched.db, sources.db: no checksum of their own; a damaged one is rebuilt by the
/// server (warning), one claiming sequences past the stream is stale. A sched.db whose entries
/// stop before its count panics 2.12.0-2.12.11 and 2.14.0-2.14.2 at start (an error: the
/// server does not start; [`aux_state::sched_panics_unchecked_decoder`]).
fn check_aux(
    pre: &Prelude,
    src: &dyn StreamSource,
    (last_seq, release): (u64, Option<&Release>),
    problems: &mut Vec<Problem>,
    prefix: &str,
) {
    use crate::filestore::aux_state;
    for (rel, what) in [
        ("msgs/thw.db", "TTL hash wheel"),
        ("msgs/sched.db", "message schedules"),
        ("sources.db", "source positions"),
    ] {
        let FileRead::Bytes(b) = src.fetch(rel, pre.loc().file(format!("{prefix}{rel}")), problems)
        else {
            continue;
        };
        let high = match rel {
            "msgs/thw.db" => aux_state::parse_thw(&b).map(|x| x.high_seq),
            "msgs/sched.db" => aux_state::parse_sched(&b).map(|x| x.high_seq),
            _ => aux_state::parse_sources(&b).map(|x| x.high_seq),
        };
        let loc = pre.loc().file(format!("{prefix}{rel}"));
        if let Some(why) = aux_stops_server(pre, rel, &b, release) {
            problems.push(Problem::new(
                Kind::AuxFileStopsServer,
                loc,
                format!("{what} ({rel}): {why}: the server does not start, no stream loads. Move {rel} out of the stream dir before starting it (the server rebuilds it by scanning the stream's messages), or start 2.12.12+ / 2.14.3+, which discard it"),
            ));
            continue;
        }
        match high {
            Err(e) => problems.push(Problem::new(
                Kind::AuxFileCorrupt,
                loc.at(e.offset() as u64),
                format!("{what} ({rel}): {e}; the server discards it and rebuilds it by scanning the messages"),
            )),
            Ok(h) if rel != "sources.db" && h > last_seq.saturating_add(1) => problems.push(Problem::new(
                Kind::AuxFileAhead,
                loc,
                format!("{what} ({rel}) was written at sequence {h}, past the stream's last sequence {last_seq}"),
            )),
            Ok(_) => {}
        }
    }
}

/// Why `release` does not get past the auxiliary file `rel` (bytes `b`) at start, if it does
/// not: a sched.db its decoder panics on, or a thw.db whose count it walks for a minute or
/// more (2^32 steps at the 13 ns a step took the real 2.12.8). Only a stream whose config
/// asks for schedules / message TTLs has the file read.
fn aux_stops_server(
    pre: &Prelude,
    rel: &str,
    b: &[u8],
    release: Option<&Release>,
) -> Option<String> {
    const STUCK_STEPS: u64 = 1 << 32;
    let r = release?;
    let allows = |key: &str| {
        pre.meta.as_ref().and_then(|m| m.json.get(key)) == Some(&serde_json::Value::Bool(true))
    };
    match rel {
        "msgs/sched.db"
            if allows("allow_msg_schedules")
                && load::sched_decoder_unchecked(r)
                && crate::filestore::aux_state::sched_panics_unchecked_decoder(b) =>
        {
            Some(format!("its entries stop before the count in its header, and nats-server {r} reads past the end of the file at start and panics (\"index out of range\" in MsgScheduling.decode)"))
        }
        "msgs/thw.db" if allows("allow_msg_ttl") && load::ttl_decoder_unchecked(r) => {
            let n = crate::filestore::aux_state::thw_steps_unchecked_decoder(b).filter(|&n| n >= STUCK_STEPS)?;
            let took = match n as f64 * 13e-9 {
                s if s < 3600.0 => format!("{:.0} minutes", s / 60.0),
                s if s < 86400.0 * 2.0 => format!("{:.0} hours", s / 3600.0),
                s if s < 86400.0 * 730.0 => format!("{:.0} days", s / 86400.0),
                s => format!("{:.0} years", s / (86400.0 * 365.0)),
            };
            Some(format!("its header counts {n} entries, far more than the file holds, and nats-server {r} walks every one at start, past the file's end (about 13 ns each where measured: some {took})"))
        }
        _ => None,
    }
}

fn check_leftovers(pre: &Prelude, problems: &mut Vec<Problem>, prefix: &str) {
    let mut seen_dirs = std::collections::BTreeSet::new();
    for n in &pre.files {
        let top = n.split('/').next().unwrap_or("");
        let msg: Option<(Kind, String)> = if top == "__msgs__" || top == "__new_msgs__" {
            if seen_dirs.insert(top.to_string()) {
                Some((Kind::LeftoverPurge, format!("{top}/ is left from an interrupted purge; the server completes or undoes the purge at start")))
            } else {
                None
            }
        } else if top == "batches" {
            if seen_dirs.insert(top.to_string()) {
                Some((
                    Kind::LeftoverBatch,
                    "batches/ holds atomic-batch staging; the server recovers and removes it"
                        .into(),
                ))
            } else {
                None
            }
        } else if n.ends_with(".tmp") || n.ends_with(".new") {
            Some((
                Kind::LeftoverTmp,
                format!("{n} is left from an interrupted rewrite; the server never reads it"),
            ))
        } else if n.starts_with("_test_") {
            Some((
                Kind::LeftoverProbe,
                format!(
                    "{n} is the server's writability probe: a server may be running on this store"
                ),
            ))
        } else if n.starts_with("obs/") || layout::classify_path(n).is_some_and(|f| f.on_disk()) {
            None
        } else {
            Some((
                Kind::UnknownFile,
                format!("{n} is not part of the stream layout"),
            ))
        };
        if let Some((kind, m)) = msg {
            problems.push(Problem::new(
                kind,
                pre.loc().file(format!("{prefix}{n}")),
                m,
            ));
        }
    }
}

/// The consumers' reports, and the first consumer (in the server's order, by name) whose
/// config the release does not support: 2.11.9+ register it offline and, on a single server,
/// stop its stream ("Stopping unsupported stream", STREAM.INFO "stream is offline: stopped -
/// unsupported consumer"; checked on 2.11.11 and 2.15.1).
fn check_consumers(
    pre: &Prelude,
    src: &dyn StreamSource,
    (view, model): (&dyn StreamView, Option<&Release>),
    problems: &mut Vec<Problem>,
    prefix: &str,
) -> (Vec<ConsumerReport>, Option<String>) {
    let (first_seq, last_seq) = view.first_last();
    let names = consumer_names(pre);
    // Consumers are checked against the stream's release: the caller's, else the one its
    // meta.inf records (else each consumer's own, else the newest known).
    let release = pre.release.clone().or_else(|| {
        let m = pre.meta.as_ref()?;
        match config_fields::target_release(None, &m.json) {
            (r, config_fields::ReleaseFrom::Metadata) => Some(r),
            _ => None,
        }
    });
    let mut out = Vec::new();
    let mut stopped_by = None;
    for c in names {
        let loc = pre.loc().consumer(&c);
        let rel = |n: &str| format!("obs/{c}/{n}");
        let mut rep = ConsumerReport {
            name: c.clone(),
            ..Default::default()
        };
        let file = |n: &str| loc.clone().file(format!("{prefix}{}", rel(n)));
        let mut cfg = None;
        // meta.inf / o.dat there but not readable as the server reads them
        let (mut meta_corrupt, mut state_corrupt) = (false, false);
        match src.fetch(&rel("meta.inf"), file("meta.inf"), problems) {
            FileRead::Unreadable => {}
            FileRead::Absent => problems.push(Problem::new(
                Kind::ConsumerMetaMissing,
                loc.clone().file(format!("{prefix}{}", rel("meta.inf"))),
                "consumer meta.inf is missing: the server does not load this consumer",
            )),
            FileRead::Bytes(raw) => {
                match src.fetch(&rel("meta.sum"), file("meta.sum"), problems) {
                    FileRead::Unreadable => {}
                    FileRead::Absent => problems.push(Problem::new(
                        Kind::ConsumerMetaSumMissing,
                        loc.clone().file(format!("{prefix}{}", rel("meta.sum"))),
                        "consumer meta.sum is missing: the server does not load this consumer",
                    )),
                    FileRead::Bytes(sum) => {
                        let want = meta::expected_sum(&format!("{}/{c}", pre.cfg_name), &raw);
                        if sum != want.as_bytes() {
                            problems.push(Problem::new(
                                Kind::ConsumerMetaSumMismatch,
                                loc.clone().file(format!("{prefix}{}", rel("meta.sum"))),
                                format!("consumer meta.sum does not match meta.inf (computed {want}); the server does not check it, but meta.inf may be damaged"),
                            ));
                        }
                    }
                }
                match MetaInf::parse(&raw) {
                    Ok(m) => {
                        let cc = config_fields::check_config(
                            &m.json,
                            ConfigDoc::ConsumerMeta,
                            release.as_ref(),
                        );
                        let floc = loc.clone().file(format!("{prefix}{}", rel("meta.inf")));
                        problems.extend(config_fields::problems(&cc, "meta.inf", &floc));
                        if cc.offline() && stopped_by.is_none() {
                            stopped_by = Some(c.clone());
                        }
                        // a value the release cannot decode: the whole meta.inf does not
                        // decode, and the consumer is not loaded (the stream is)
                        if let Some(why) = config_fields::undecodable_value(
                            &m.json,
                            ConfigDoc::ConsumerMeta,
                            release.as_ref(),
                        ) {
                            meta_corrupt = true;
                            problems.push(Problem::new(
                                Kind::ConsumerMetaCorrupt,
                                loc.clone().file(format!("{prefix}{}", rel("meta.inf"))),
                                format!("consumer meta.inf: {why}"),
                            ));
                        }
                        rep.durable = m.str_field("durable_name").map(str::to_string);
                        rep.ack_policy = m.str_field("ack_policy").map(str::to_string);
                        rep.filter_subject = m.str_field("filter_subject").map(str::to_string);
                        cfg = Some(ConsumerCfg::of(&m.json, pre.meta.as_ref().map(|s| &s.json)));
                    }
                    Err(e) => {
                        meta_corrupt = true;
                        problems.push(Problem::new(
                            Kind::ConsumerMetaCorrupt,
                            loc.clone().file(format!("{prefix}{}", rel("meta.inf"))),
                            format!("consumer meta.inf: {e}"),
                        ))
                    }
                }
            }
        }
        // the server's view of o.dat: absent (start from the deliver policy), a state, or
        // one jetdir does not model (unreadable, empty or corrupt)
        let mut modelled = true;
        let mut absent = false;
        let st: Option<ConsumerState> = match src.fetch(&rel("o.dat"), file("o.dat"), problems) {
            FileRead::Absent => {
                absent = true;
                None
            }
            FileRead::Unreadable => {
                modelled = false;
                None
            }
            // an empty o.dat is a state of zeros (the server's `HasState` sees the file,
            // `stateWithCopyLocked` reads nothing): delivered 0, not the deliver policy's
            // start (matrix `clean` 2.10.26: INTEREST's and WQ's consumers that had
            // delivered nothing report delivered 0 with the stream's first seq at 13 and 31)
            FileRead::Bytes(b) if b.is_empty() => Some(ConsumerState {
                version: 2,
                ack_floor: Default::default(),
                delivered: Default::default(),
                pending: vec![],
                redelivered: vec![],
                base_ts_secs: 0,
            }),
            FileRead::Bytes(b) => match consumer_state::parse(&b) {
                Ok(s) => {
                    modelled = s.is_some();
                    s
                }
                Err(e) => {
                    state_corrupt = true;
                    problems.push(Problem::new(
                        Kind::ConsumerStateCorrupt,
                        loc.clone()
                            .file(format!("{prefix}{}", rel("o.dat")))
                            .at(e.offset() as u64),
                        format!("consumer state: {e}"),
                    ));
                    modelled = false;
                    None
                }
            },
        };
        let on_disk = st.clone();
        let st = st.unwrap_or_else(|| ConsumerState {
            version: 2,
            ack_floor: Default::default(),
            delivered: Default::default(),
            pending: vec![],
            redelivered: vec![],
            base_ts_secs: 0,
        });
        let floc = loc.clone().file(format!("{prefix}{}", rel("o.dat")));
        let pending: Vec<u64> = st.pending.iter().map(|p| p.stream_seq).collect();
        check_consumer_invariants(
            &floc,
            (st.delivered.consumer_seq, st.delivered.stream_seq),
            (st.ack_floor.consumer_seq, st.ack_floor.stream_seq),
            &pending,
            last_seq,
            problems,
        );
        let st = match (&cfg, modelled) {
            (Some(cfg), true) => {
                let (after, ch) = consumers::at_load(cfg, on_disk.as_ref(), view, model);
                rep.state_from = Some(if absent { "deliver_policy" } else { "o.dat" }.into());
                // with no release known, what a 2.14+ reset would give, for the finding
                let reset = (model.is_none() && ch.kept_past_stream).then(|| {
                    let r = Release::new(2, 14, 0);
                    consumers::at_load(cfg, on_disk.as_ref(), view, Some(&r)).0
                });
                consumer_load_findings(
                    &floc,
                    (&st, &after, reset.as_ref()),
                    &ch,
                    (first_seq, last_seq),
                    model,
                    problems,
                );
                if !absent && after != st {
                    rep.on_disk = Some(numbers(&st));
                }
                after
            }
            _ => st,
        };
        rep.delivered_stream_seq = Some(st.delivered.stream_seq);
        rep.delivered_consumer_seq = Some(st.delivered.consumer_seq);
        rep.ack_floor_stream_seq = Some(st.ack_floor.stream_seq);
        rep.ack_floor_consumer_seq = Some(st.ack_floor.consumer_seq);
        rep.pending = Some(st.pending.len() as u64);
        rep.redelivered = Some(st.redelivered.len() as u64);
        if let (Some(cfg), true) = (&cfg, modelled) {
            rep.num_pending = consumers::num_pending(cfg, st.delivered.stream_seq, view);
        }
        sealed_consumer(
            pre,
            (&c, meta_corrupt, state_corrupt),
            &cfg,
            view,
            model,
            &mut rep,
            problems,
        );
        out.push(rep);
    }
    (out, stopped_by)
}

/// An encrypted consumer whose files do not open with the key that opens its stream (matrix
/// `--cipher`, `consumer_key_flip`, `consumer_meta_flip`, `odat_flip`): without its meta.key
/// or meta.inf no release loads it ("error creating store for consumer"); without its o.dat,
/// 2.11.3+ do not load it either ("Error adding consumer ... message authentication failed"),
/// and 2.9-2.11.2 load it with no state: delivered stream and consumer seq 0 - 1 (2^64 - 1, as
/// CONSUMER.INFO shows it), ack floor 0, nothing pending, every message of the stream
/// unprocessed ("Error restoring consumer state").
///
/// The same for a plain consumer whose meta.inf does not parse (`meta_corrupt`: no release
/// loads it, "Error unmarshalling consumer metafile") or whose o.dat does not decode
/// (`state_corrupt`: 2.9-2.11.2 load it without state, "Error restoring consumer state:
/// corrupt state file"; 2.11.3+ do not load it): matrix `zero_cmeta_file`, `zero_odat_file`,
/// every release.
fn sealed_consumer(
    pre: &Prelude,
    (name, meta_corrupt, state_corrupt): (&str, bool, bool),
    cfg: &Option<ConsumerCfg>,
    view: &dyn StreamView,
    release: Option<&Release>,
    rep: &mut ConsumerReport,
    problems: &mut [Problem],
) {
    let sealed_config = pre.unopened.consumer_config.contains(name);
    let config = sealed_config || meta_corrupt;
    let state = pre.unopened.consumer_state.contains(name) || state_corrupt;
    if !config && !state {
        return;
    }
    let loads_stateless = !config && release.is_some_and(|r| r.base() < Release::new(2, 11, 3));
    let rel = release.map_or("the newest release".to_string(), |r| r.to_string());
    let what = if loads_stateless {
        rep.delivered_stream_seq = Some(u64::MAX);
        rep.delivered_consumer_seq = Some(u64::MAX);
        rep.ack_floor_stream_seq = Some(0);
        rep.ack_floor_consumer_seq = Some(0);
        rep.pending = Some(0);
        rep.redelivered = Some(0);
        // counted from its start sequence, 0 (the deliver policy is not applied)
        rep.num_pending = cfg
            .as_ref()
            .and_then(|c| consumers::num_pending(c, 0, view));
        format!("the server ({rel}) loads it without its state (\"Error restoring consumer state\"): it delivers the stream again from its start")
    } else {
        rep.loads = false;
        let log = if sealed_config {
            "error creating store for consumer"
        } else if config {
            "Error unmarshalling consumer metafile"
        } else {
            "Error restoring consumer state"
        };
        format!("the server ({rel}) does not load this consumer (\"{log}\"); recreate it, or restore it from a backup")
    };
    let file = if config { "meta.key" } else { "o.dat" };
    for p in problems.iter_mut().filter(|p| {
        p.kind == Kind::EncryptedCorrupt
            && p.loc.file.as_deref().is_some_and(|f| {
                f.ends_with(&format!("obs/{name}/{file}"))
                    || (config && f.ends_with(&format!("obs/{name}/meta.inf")))
            })
    }) {
        retell(p, "the server cannot load this consumer", &what);
    }
    // a plain file the server cannot read: said after the finding's own words
    let plain = if meta_corrupt {
        Some((Kind::ConsumerMetaCorrupt, "meta.inf"))
    } else {
        Some((Kind::ConsumerStateCorrupt, "o.dat")).filter(|_| state_corrupt && !config)
    };
    if let Some((kind, file)) = plain {
        for p in problems.iter_mut().filter(|p| {
            p.kind == kind
                && p.loc
                    .file
                    .as_deref()
                    .is_some_and(|f| f.ends_with(&format!("obs/{name}/{file}")))
        }) {
            p.message = format!("{}: {what}", p.message);
        }
    }
}

fn numbers(st: &ConsumerState) -> ConsumerNumbers {
    ConsumerNumbers {
        delivered_stream_seq: st.delivered.stream_seq,
        delivered_consumer_seq: st.delivered.consumer_seq,
        ack_floor_stream_seq: st.ack_floor.stream_seq,
        ack_floor_consumer_seq: st.ack_floor.consumer_seq,
        pending: st.pending.len() as u64,
        redelivered: st.redelivered.len() as u64,
    }
}

/// What the load does to a consumer, said in the findings: a consumer delivered past the
/// stream (reset from 2.14, kept before) and pending acks dropped with the floor moved.
fn consumer_load_findings(
    loc: &Location,
    (before, after, reset): (&ConsumerState, &ConsumerState, Option<&ConsumerState>),
    ch: &ConsumerChanges,
    (first, last): (u64, u64),
    release: Option<&Release>,
    problems: &mut Vec<Problem>,
) {
    let rel = release.map_or("the newest release".to_string(), |r| r.to_string());
    if ch.reconciled || ch.kept_past_stream {
        if let Some(p) = problems.iter_mut().find(|p| {
            p.kind == Kind::ConsumerPastStream
                && p.loc == loc.clone().seq(before.delivered.stream_seq)
        }) {
            if release.is_none() {
                p.message.push_str(&format!(
                    "; a 2.14+ server resets it at load (to delivered stream seq {}, logging \"delivered sequence {} past last stream sequence of {last}\"), earlier releases keep it and skip new messages up to stream seq {} (pass --server-version to choose)",
                    reset.map_or(last, |r| r.delivered.stream_seq), before.delivered.stream_seq, before.delivered.stream_seq
                ));
            } else if ch.reconciled {
                p.message.push_str(&format!(
                    "; the server ({rel}) resets it at load to delivered stream seq {}, ack floor {} (logged: \"delivered sequence {} past last stream sequence of {last}\"): messages acknowledged above {last} will be delivered again when new ones take their seqs",
                    after.delivered.stream_seq, after.ack_floor.stream_seq, before.delivered.stream_seq
                ));
            } else {
                p.message.push_str(&format!(
                    "; the server ({rel}) keeps this state: the consumer skips new messages up to stream seq {}",
                    before.delivered.stream_seq
                ));
            }
        }
    }
    if !ch.terminated.is_empty() || ch.floor_raised {
        let mut m = format!("the stream now starts at seq {first}");
        if !ch.terminated.is_empty() {
            m.push_str(&format!(
                ": the server ({rel}) drops {} pending ack(s) for messages that are gone (seqs {})",
                ch.terminated.len(),
                load::ranges_text(&load::ranges(ch.terminated.iter().copied()))
            ));
        } else {
            m.push_str(&format!(": the server ({rel})"));
        }
        if ch.floor_raised {
            m.push_str(&format!(
                "{} moves the ack floor from stream seq {} to {}",
                if ch.terminated.is_empty() { "" } else { " and" },
                before.ack_floor.stream_seq,
                after.ack_floor.stream_seq
            ));
        }
        problems.push(Problem::new(Kind::ConsumerFloorMoved, loc.clone(), m));
    }
}

/// What the server enforces on consumer state, checked against the stream's last sequence.
/// `delivered` and `ack_floor` are (consumer seq, stream seq); `loc` names the state's file.
pub fn check_consumer_invariants(
    loc: &Location,
    delivered: (u64, u64),
    ack_floor: (u64, u64),
    pending: &[u64],
    last_seq: u64,
    problems: &mut Vec<Problem>,
) {
    if delivered.1 > last_seq {
        problems.push(Problem::new(
            Kind::ConsumerPastStream,
            loc.clone().seq(delivered.1),
            format!(
                "consumer delivered up to stream seq {} but the stream ends at {last_seq}",
                delivered.1
            ),
        ));
    }
    if ack_floor.1 > delivered.1 || ack_floor.0 > delivered.0 {
        problems.push(Problem::new(
            Kind::ConsumerAckFloor,
            loc.clone().seq(ack_floor.1),
            format!(
                "ack floor ({}, stream {}) is past delivered ({}, stream {})",
                ack_floor.0, ack_floor.1, delivered.0, delivered.1
            ),
        ));
    }
    for &q in pending {
        if q <= ack_floor.1 || q > delivered.1 {
            problems.push(Problem::new(
                Kind::ConsumerPendingRange,
                loc.clone().seq(q),
                format!(
                    "pending stream seq {q} is outside (ack floor {}, delivered {}]",
                    ack_floor.1, delivered.1
                ),
            ));
        }
    }
}

/// Verify one stream directory.
pub fn verify_stream_dir(
    sd: &StreamDir,
    opts: &Options,
    progress: &dyn Progress,
) -> (StreamReport, Vec<Problem>) {
    let plain = DirSource::new(sd.dir.clone());
    // An encrypted stream is read through its keys (a plaintext view of the dir).
    let enc = (opts.keys.has_key() && encrypted::has_key_files(&plain.files()))
        .then(|| encrypted::EncryptedDir::open(&sd.dir, &sd.account, &sd.name, &opts.keys));
    let src: &dyn StreamSource = match &enc {
        Some(e) => e,
        None => &plain,
    };
    let pre = prelude_for(src, &sd.account, &sd.name, "", opts.target.release.as_ref());
    if pre.encrypted || enc.as_ref().is_some_and(|e| e.wrong_key) {
        // (the key files' findings are the prelude's: `StreamSource::open_findings`)
        let problems = pre.problems.clone();
        let rep = StreamReport {
            account: sd.account.clone(),
            name: sd.name.clone(),
            encrypted: true,
            encryption: Some(match &enc {
                Some(e) => e.report(),
                None => encrypted::report_without_key(&sd.dir, &plain.files()),
            }),
            blocks: pre.blocks.len(),
            index: IndexKind::Encrypted,
            files: plain.files(),
            ..Default::default()
        };
        return (rep, problems);
    }
    let (release, release_from) = model_release(opts, &pre);
    let rd = load::cmp_reader(release.as_ref());
    src.set_cmp_reader(rd);
    let recovery = load::decide(&pre, release.as_ref(), src);
    let dead = load::dead_set_for(&pre, &recovery);
    let ctx = ScanCtx {
        account: &sd.account,
        stream: &pre.cfg_name,
        dead: &dead,
        quick: opts.quick,
        file_prefix: "",
        keep_live: false,
        stop_at_damage: false,
        cmp: rd,
    };
    let scans: Vec<BlockScan> = crate::base::par::one_per_job(&pre.blocks)
        .map(|&i| {
            let rel = format!("msgs/{i}.blk");
            let path = sd.dir.join(&rel);
            let read = match &enc {
                Some(e) => e
                    .block_view(i)
                    .map_err(|why| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
                    })
                    .and_then(|k| {
                        read_reusing_with(
                            &path,
                            rd,
                            |b| {
                                if let Some(k) = k {
                                    k.xor_block(0, b)
                                }
                            },
                            |d, n| scan::scan_decoded(&ctx, i, n, d),
                        )
                    }),
                None => read_reusing(&path, rd, |d, n| scan::scan_decoded(&ctx, i, n, d)),
            };
            match read {
                Ok((mut s, n)) => {
                    progress.advance(n, &format!("{} > {} {rel}", sd.account, sd.name));
                    too_large(&ctx, &mut s, n);
                    s
                }
                Err(e) => BlockScan::unreadable_file(&ctx, i, &rel, format!("cannot read: {e}")),
            }
        })
        .collect();
    let input = LoadInput::new(opts, recovery, (release, release_from), &dead);
    let (mut rep, problems) = finish_stream(pre, scans, src, "", &input);
    if let Some(e) = &enc {
        rep.encrypted = true;
        rep.encryption = Some(e.report());
        rep.files = plain.files();
    }
    (rep, problems)
}

/// The verify of a plaintext stream dir, split for a caller that reads each block once and
/// does more with it (pack's one pass, `ops/pack/onepass.rs`): [`PlainVerify::start`] is what
/// [`verify_stream_dir`] does before its block scans, [`PlainVerify::scan`] its scan of one block
/// (the caller reads it, on its own threads, in its own order), [`PlainVerify::finish`] the rest.
/// The report is the one [`verify_stream_dir`] gives for the same dir.
pub struct PlainVerify {
    sd: StreamDir,
    src: DirSource,
    /// The prelude (meta.inf, index files, the blocks present).
    pub pre: Prelude,
    recovery: Recovery,
    release: (Option<Release>, Option<String>),
    /// The delete set the scans apply.
    pub dead: scan::DeadSet,
    quick: bool,
}

impl PlainVerify {
    /// `None` for a stream whose files are encrypted (read it with [`verify_stream_dir`]).
    pub fn start(sd: &StreamDir, opts: &Options) -> Option<PlainVerify> {
        let src = DirSource::new(sd.dir.clone());
        if encrypted::has_key_files(&src.files()) {
            return None;
        }
        let pre = prelude_for(
            &src,
            &sd.account,
            &sd.name,
            "",
            opts.target.release.as_ref(),
        );
        if pre.encrypted {
            return None;
        }
        let release = model_release(opts, &pre);
        src.set_cmp_reader(load::cmp_reader(release.0.as_ref()));
        let recovery = load::decide(&pre, release.0.as_ref(), &src);
        let dead = load::dead_set_for(&pre, &recovery);
        Some(PlainVerify {
            sd: sd.clone(),
            src,
            pre,
            recovery,
            release,
            dead,
            quick: opts.quick,
        })
    }

    /// How the modelled release's S2 reader decodes a `cmp` block ([`load::cmp_reader`]).
    pub fn cmp_reader(&self) -> crate::filestore::block::CmpReader {
        self.src.cmp_reader()
    }

    /// The server rebuilds the stream's state from the blocks (the scans apply no delete set).
    pub fn rebuilds(&self) -> bool {
        self.recovery.rebuilds()
    }

    fn ctx(&self) -> ScanCtx<'_> {
        ScanCtx {
            account: &self.sd.account,
            stream: &self.pre.cfg_name,
            dead: &self.dead,
            quick: self.quick,
            file_prefix: "",
            keep_live: false,
            stop_at_damage: false,
            cmp: self.src.cmp_reader(),
        }
    }

    /// The scan of block `i`, from what reading it gave: its plain bytes (or why a `cmp` block
    /// does not decode) and the file's length, or the read error.
    pub(crate) fn scan(
        &self,
        i: u32,
        read: std::io::Result<(crate::filestore::source::Decoded<'_>, u64)>,
    ) -> BlockScan {
        let ctx = self.ctx();
        match read {
            Ok((d, n)) => {
                let mut s = scan::scan_decoded(&ctx, i, n, d);
                too_large(&ctx, &mut s, n);
                s
            }
            Err(e) => {
                let rel = format!("msgs/{i}.blk");
                BlockScan::unreadable_file(&ctx, i, &rel, format!("cannot read: {e}"))
            }
        }
    }

    /// The stream's report and findings from the scans of all its blocks (`pre.blocks`).
    pub fn finish(self, opts: &Options, scans: Vec<BlockScan>) -> (StreamReport, Vec<Problem>) {
        let input = LoadInput::new(opts, self.recovery, self.release, &self.dead);
        finish_stream(self.pre, scans, &self.src, "", &input)
    }
}

/// A block file longer than any block a server writes: only its first
/// [`MAX_BLOCK_FILE`](crate::filestore::block::MAX_BLOCK_FILE) bytes were read and checked.
pub(crate) fn too_large(ctx: &ScanCtx, s: &mut BlockScan, file_len: u64) {
    use crate::filestore::block::{MAX_BLOCK_FILE, MAX_BLOCK_SIZE, MAX_RECORD_LEN};
    if file_len <= MAX_BLOCK_FILE {
        return;
    }
    s.file_len = file_len;
    s.problems.push(Problem::new(
        Kind::BlockTooLarge,
        BlockScan::loc(ctx, &s.file).at(MAX_BLOCK_FILE),
        format!(
            "block file is {file_len} bytes, more than the {MAX_BLOCK_FILE} bytes any nats-server \
             block can hold ({MAX_BLOCK_SIZE}-byte maximum block size plus one record of at most \
             {MAX_RECORD_LEN} bytes, and framing): damaged or not written by a server; only the \
             first {MAX_BLOCK_FILE} bytes were checked"
        ),
    ));
}

/// The release modelled for the stream and where it comes from.
pub(crate) fn model_release(opts: &Options, pre: &Prelude) -> (Option<Release>, Option<String>) {
    match &opts.target.release {
        Some(r) => (Some(r.clone()), Some("--server-version".into())),
        None => match load::writer_release_from(pre) {
            Some((r, from)) => (Some(r), Some(from)),
            None => (None, None),
        },
    }
}

/// Encrypted blocks whose key file is missing, under a trusted index.db (2.10+; the last
/// block's makes the server rebuild, see `load::decide`), as (index, first, last, messages,
/// bytes) from the index. At load the server makes a new key for such a block, writes it to
/// `msgs/N.key` and rebuilds the block's state from what it decrypts: nothing (matrix
/// `--cipher`, `key_missing_mid`, 2.10.26-2.15.1, "indexCacheBuf corrupt record state").
fn keyless_blocks(pre: &Prelude, load: &LoadInput) -> Vec<(u32, u64, u64, u64, u64)> {
    let (Recovery::Index, Some(db)) = (&load.recovery, pre.index_db.as_ref()) else {
        return Vec::new();
    };
    if load.release.as_ref().is_some_and(load::is_legacy) {
        return Vec::new();
    }
    db.blocks
        .iter()
        .filter(|b| pre.unopened.block_key_missing.contains(&b.index) && b.msgs() > 0)
        .filter(|b| {
            b.last_seq
                .checked_sub(b.first_seq)
                .is_some_and(|w| w < 1 << 22)
        })
        .map(|b| (b.index, b.first_seq, b.last_seq, b.msgs(), b.bytes))
        .collect()
}

/// 2.10 rebuilding a stream from an outdated index.db in which no block yields a message
/// (nothing removed by limits) reports first seq 0 and every sequence from 0 to the last as deleted (matrix `--cipher`,
/// 2.10.26: AGE, whose only block 2.10.26-2.11.5 wrote undecryptable, rebuilt with the
/// outdated index's last seq 40: first 0, 41 deleted, `[0..40]`; 2.11+ report first 41 and
/// none deleted).
fn empty_rebuild_on_210(load: &LoadInput, nothing_removed: bool, rep: &mut StreamReport) {
    let on_210 = load
        .release
        .as_ref()
        .is_some_and(|r| r.base() >= Release::new(2, 10, 0) && r.base() < Release::new(2, 11, 0));
    // with an outdated index.db ("prior state file"); without one the stream reads as 2.11's
    let from_prior = matches!(
        load.recovery,
        Recovery::Rebuild {
            prior_last: Some(_),
            ..
        }
    );
    if !on_210 || !from_prior || !nothing_removed || rep.messages != Some(0) {
        return;
    }
    let last = rep.last_seq.unwrap_or(0);
    rep.first_seq = Some(0);
    rep.deleted = Some(last.saturating_add(1));
    rep.deleted_seqs = (0..=last)
        .take(crate::state::stream::MAX_LISTED_DELETES)
        .collect();
}

/// STREAM.INFO after cuts at load under a trusted index.db (2.10+): the server rebuilds a cut
/// block keeping its delete map, so the deletes past the block's new end are counted twice
/// (STREAM.INFO lists the range missing before the next block, then every block's delete
/// map). A cut that leaves the stream's first block without a message keeps the block with
/// the first sequence and time index.db gave it (the rebuild sets them only from a message it
/// reads), and the stream takes its first sequence from its first block: it still starts
/// there, the cut range is listed deleted, and the consumers' floors stay (matrix
/// `flip_first_len`, 2.10.26-2.15.1: first 1, 1..30 deleted, 34 counted with seq 10 twice).
fn state_after_cuts_under_index(
    pre: &Prelude,
    load: &LoadInput,
    scans: &[BlockScan],
    truncs: &[load::Truncation],
    rep: &mut StreamReport,
) {
    let (Recovery::Index, Some(db)) = (&load.recovery, pre.index_db.as_ref()) else {
        return;
    };
    if load.release.as_ref().is_some_and(load::is_legacy) {
        return;
    }
    if rep.messages.is_none_or(|m| m == 0) {
        return;
    }
    // the stream's first block, as scanned and as index.db lists it
    let first = scans
        .first()
        .and_then(|s| Some((s, db.blocks.iter().find(|b| b.index == s.index)?)));
    // The first block's file empty (2.12.3+ count what is there): the server reads no data,
    // drops the block's messages and moves its first sequence past them, but keeps its first
    // time, which the stream then reports (matrix `trunc_first_zero`: first 31 at seq 1's time)
    if let Some((s, b)) = first {
        if s.plain_len == 0
            && s.file_len == 0
            && b.msgs() > 0
            && rep.first_seq == Some(b.last_seq.saturating_add(1))
            && load::checks_blocks_against_index(load.release.as_ref())
        {
            rep.first_ts = Some(b.first_ts);
        }
    }
    // Every block cut at load keeps its delete map, also the deletes past its new end, which
    // STREAM.INFO then lists twice: in the range missing before the next block, and in the
    // map (matrix `flip_second_first_len`, 2.15.1: 40 twice, 32 counted). (A block file that
    // is empty reads as no data, and the server clears its map: `trunc_mid_zero`. The last
    // block has no next block: what its map holds past the cut is listed once, M10b.)
    let cut: Vec<&BlockScan> = scans
        .iter()
        .filter(|s| truncs.iter().any(|t| t.file == s.file) && s.plain_len > 0)
        .collect();
    let last_block = scans.iter().map(|s| s.index).max();
    let twice: u64 = cut
        .iter()
        .filter(|s| Some(s.index) != last_block)
        .filter_map(|s| {
            let b = db.blocks.iter().find(|b| b.index == s.index)?;
            let end = s.max_seq.unwrap_or(0);
            Some(b.deleted.iter().filter(|&&q| q > end).count() as u64)
        })
        .sum();
    rep.deleted = rep.deleted.map(|d| d + twice);
    let Some((s, b)) = first else { return };
    if s.first_live.is_some() || !cut.iter().any(|c| c.file == s.file) {
        return;
    }
    let Some(now) = rep.first_seq else { return };
    // (a block's range is bounded by what it can hold: see MAX_BLOCK_SPAN)
    if b.first_seq == 0 || b.first_seq >= now || now - b.first_seq > 1 << 24 {
        return;
    }
    rep.first_seq = Some(b.first_seq);
    rep.first_ts = Some(b.first_ts);
    rep.deleted = rep.deleted.map(|d| d + (now - b.first_seq));
    // (the range lies below every delete listed so far: its first ones are what the bounded
    // list keeps, whatever range a damaged index.db claims)
    let max = crate::state::stream::MAX_LISTED_DELETES;
    let mut listed: std::collections::BTreeSet<u64> = rep.deleted_seqs.iter().copied().collect();
    listed.extend((b.first_seq..now).take(max));
    rep.deleted_seqs = listed.into_iter().take(max).collect();
}

/// STREAM.INFO after the server emptied the [`keyless_blocks`]: every sequence of such a
/// block is listed deleted (the count adds the block's whole range, deletes it already had
/// included, as the server's list repeats them), and before 2.12.3 its messages and bytes
/// leave the totals (2.12.3+ keep counting them).
fn apply_keyless(pre: &Prelude, load: &LoadInput, rep: &mut StreamReport) {
    let keyless = keyless_blocks(pre, load);
    if keyless.is_empty() {
        return;
    }
    let max = crate::state::stream::MAX_LISTED_DELETES;
    let counts_them = load::checks_blocks_against_index(load.release.as_ref());
    // the stream's first block is read at start, and emptied for good: 2.12.3+ too drop its
    // messages (matrix `--cipher` `key_missing_first`: 67 of 96 on 2.12.8-2.15.1)
    let first_block = pre
        .index_db
        .as_ref()
        .and_then(|db| db.blocks.iter().map(|b| b.index).min());
    let mut listed: std::collections::BTreeSet<u64> = rep.deleted_seqs.iter().copied().collect();
    for &(index, first, last, msgs, bytes) in &keyless {
        rep.deleted = rep.deleted.map(|d| d.saturating_add(last - first + 1));
        if !counts_them || Some(index) == first_block {
            // the scan counted the index's messages (see count_undecodable_from_index)
            rep.messages = rep.messages.map(|m| m.saturating_sub(msgs));
            rep.bytes = rep.bytes.map(|b| b.saturating_sub(bytes));
        }
        // (the list keeps its first `max`: no more of a range can be among them)
        listed.extend((first..=last).take(max));
    }
    rep.deleted_seqs = listed
        .into_iter()
        .take(crate::state::stream::MAX_LISTED_DELETES)
        .collect();
}

/// True when the server does not load an encrypted stream for what does not open with its
/// key (matrix `--cipher`): meta.key or meta.inf, on every release ("Error decrypting our
/// stream metafile"); a block's key file, missing or damaged, on 2.9, which opens every
/// block's key as it recovers the stream ("Error recreating stream: corrupt state file" or
/// "cipher: message authentication failed"; 2.10+ lose the block instead).
fn sealed_skips_stream(pre: &Prelude, release: Option<&Release>) -> bool {
    pre.unopened.stream || (release.is_some_and(load::is_legacy) && pre.unopened.any_block())
}

/// What the server does, in a finding made before the release was known (an encrypted
/// asset's, `filestore::encrypted`): its text from `from` on becomes `what`.
fn retell(p: &mut Problem, from: &str, what: &str) {
    if let Some(i) = p.message.find(from) {
        p.message.truncate(i);
        p.message.push_str(what);
    }
}

/// The findings on block key files that do not open, in the modelled release's words: 2.9
/// skips the stream; 2.10+ cannot read the block, and write a new key file for one whose
/// key file is missing when they first read it (the block's own key is then lost for good).
fn sealed_block_findings(pre: &Prelude, release: Option<&Release>, problems: &mut [Problem]) {
    let u = &pre.unopened;
    if !u.any_block() {
        return;
    }
    let rel = release.map_or("the newest release".to_string(), |r| r.to_string());
    let on_29 = release.is_some_and(load::is_legacy);
    for p in problems
        .iter_mut()
        .filter(|p| p.kind == Kind::EncryptedCorrupt)
    {
        let Some(i) = p
            .loc
            .file
            .as_deref()
            .and_then(|f| f.rsplit_once("msgs/"))
            .and_then(|(_, n)| n.strip_suffix(".key"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let what = if on_29 {
            format!("the server ({rel}) opens every block's key as it recovers the stream and does not load this stream (\"Error recreating stream\")")
        } else if u.block_key_missing.contains(&i) {
            format!("the server ({rel}) cannot decrypt this block and loses its messages; when it first reads the block it writes a new msgs/{i}.key (a new random key: keep a copy of these files before starting it)")
        } else {
            format!("the server ({rel}) cannot decrypt this block and loses its messages")
        };
        retell(p, "the server cannot decrypt this block", &what);
    }
}

/// The file of a stream the release does not get past at start (`aux_file_stops_server`).
fn crashing_file(problems: &[Problem]) -> Option<&str> {
    problems
        .iter()
        .find(|p| p.kind == Kind::AuxFileStopsServer)
        .and_then(|p| p.loc.file.as_deref())
}

/// The release does not get past a file of one stream at start ([`check_aux`]): the server does not start
/// and no stream of the store loads, so every other stream is skipped too, pointing at it.
fn server_does_not_start(rep: &mut Report) {
    let Some(p) = rep
        .problems
        .iter()
        .find(|p| p.kind == Kind::AuxFileStopsServer)
    else {
        return;
    };
    let culprit = format!(
        "{} > {}'s {}",
        p.loc.account.as_deref().unwrap_or("?"),
        p.loc.stream.as_deref().unwrap_or("?"),
        p.loc.file.as_deref().unwrap_or("?")
    );
    for s in &mut rep.streams {
        if let Some(l) = s.load.as_mut().filter(|l| l.verdict != Verdict::Skipped) {
            l.verdict = Verdict::Skipped;
            l.next_step = Some(format!(
                "the server does not start on this store: it does not get past {culprit}; move that file out of its stream dir first (this stream then loads as the findings say)"
            ));
        }
    }
    rep.notes.push(format!(
        "the server does not start on this store: it does not get past {culprit} (see its finding)"
    ));
}

/// The load model's report for the stream, from what the load does and the findings;
/// `stopped_by`: the consumer whose config makes the release stop the stream
/// ([`check_consumers`]).
fn load_report(
    pre: &Prelude,
    (load, stopped_by): (&LoadInput, Option<&str>),
    (truncs, removed): (&[Truncation], &[LimitRemoval]),
    forgotten: &[u64],
    problems: &[Problem],
) -> LoadReport {
    let mut lost: Vec<(u64, u64)> = truncs.iter().flat_map(|t| t.lost.iter().copied()).collect();
    lost.sort_unstable();
    let lost_messages = lost.iter().map(|(a, b)| b - a + 1).sum();
    let mut revived: Vec<u64> = truncs
        .iter()
        .flat_map(|t| t.revived.iter().copied())
        .chain(forgotten.iter().copied())
        .collect();
    revived.sort_unstable();
    revived.dedup();
    let crashing = crashing_file(problems);
    let skipped = pre.problems.iter().any(|p| {
        matches!(
            p.kind,
            Kind::MetaSumMismatch | Kind::MetaCorrupt | Kind::MetaMissing
        )
    }) || sealed_skips_stream(pre, load.release.as_ref())
        || pre.offline
        || stopped_by.is_some()
        || crashing.is_some();
    let errors = problems
        .iter()
        .any(|p| p.severity == crate::base::problem::Severity::Error);
    let verdict = if skipped {
        Verdict::Skipped
    } else if lost_messages > 0 || errors {
        Verdict::LosesData
    } else if load.recovery.rebuilds()
        || !truncs.is_empty()
        || !removed.is_empty()
        || problems.iter().any(|p| {
            // 2.9 rebuilds a block whose .idx/.fss it cannot use
            matches!(
                p.kind,
                Kind::IdxStale
                    | Kind::IdxInconsistent
                    | Kind::IdxMissing
                    | Kind::IdxCorrupt
                    | Kind::FssStale
            )
        })
    {
        Verdict::Repaired
    } else {
        Verdict::Loads
    };
    let next_step = match verdict {
        Verdict::Loads => None,
        Verdict::Repaired => Some("nothing to do: the server repairs this at start".to_string()),
        Verdict::MayNotLoad => Some(
            "give one of the overlapping streams other subjects (`jetdir extract --as NEW --subjects S,...` from a backup) or move it to another account before starting the server"
                .to_string(),
        ),
        // (matrix `from_2.15.1`, 2.11.11: "stream is offline: unsupported - config error")
        Verdict::Skipped if crashing.is_some() => Some(format!(
            "do not start this release on these files: it does not get past {} at start (see its finding) and no stream loads; move that file out of the stream dir first (the server rebuilds it), or start a release that discards it",
            crashing.unwrap_or_default()
        )),
        Verdict::Skipped if pre.offline => Some(
            "the server lists the stream as offline and leaves its files as they are: start a release that supports its config (the findings say what it needs), or restore it from a backup into a release that does"
                .to_string(),
        ),
        // (2.11.11 and 2.15.1 with a consumer's meta.inf they do not support: "stream is
        // offline: stopped - unsupported consumer \"C1\"", no message served)
        Verdict::Skipped if stopped_by.is_some() => Some(format!(
            "a single server stops this stream (it lists it offline: stopped - unsupported consumer {:?}) and leaves its files as they are: start a release that supports that consumer's config (the findings say what it needs), or move obs/{} out of the stream dir to load the stream without that consumer",
            stopped_by.unwrap_or_default(),
            stopped_by.unwrap_or_default()
        )),
        Verdict::LosesData | Verdict::Skipped => Some(
            "restore this stream from a backup or a healthy replica before starting the server on these files"
                .to_string(),
        ),
    };
    let (recovery, reason) = match &load.recovery {
        Recovery::Index => ("index.db", None),
        Recovery::Rebuild { why, .. } => ("rebuild", Some(why.clone())),
        Recovery::Legacy => ("legacy", None),
    };
    LoadReport {
        verdict,
        release: load.release.as_ref().map(|r| r.to_string()),
        release_from: load.release_from.clone(),
        at: crate::base::time::rfc3339_full(load.at_ns),
        recovery: recovery.to_string(),
        reason,
        lost,
        lost_messages,
        revived,
        unreadable: Vec::new(),
        removed: removal_reports(removed),
        next_step,
        markers: Vec::new(),
    }
}

/// Total bytes of all block files (for progress).
pub fn total_block_bytes(streams: &[StreamDir]) -> u64 {
    streams
        .iter()
        .map(|s| {
            fs::read_dir(s.dir.join("msgs"))
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".blk"))
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum::<u64>()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// Verify everything under `path` (store, jetstream dir, account dir or stream dir).
pub fn verify_store(
    path: &Path,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Report, discover::LayoutError> {
    // Looking for a server that holds the path walks /proc (every process's open files: a few
    // ms on a busy machine); it runs beside the discovery and the scans, not before them.
    std::thread::scope(|sc| {
        let holder = sc.spawn(|| crate::filestore::running::server_holding(path));
        verify_store_with(path, opts, progress, || holder.join().ok().flatten())
    })
}

fn verify_store_with(
    path: &Path,
    opts: &Options,
    progress: &dyn Progress,
    holder: impl FnOnce() -> Option<String>,
) -> Result<Report, discover::LayoutError> {
    let lay = discover::discover(path)?;
    let mut rep = Report::default();
    for (p, n) in &lay.notes {
        rep.notes.push(format!("{p}: {n}"));
    }
    if !lay.raft_groups.is_empty() {
        rep.notes.push(format!(
            "clustered node: {} raft group dir(s) under $SYS/_js_/ (`jetdir cluster PATH` lists them and the stream/consumer dirs a clustered server would delete)",
            lay.raft_groups.len()
        ));
    }
    progress.start(total_block_bytes(&lay.streams));
    // streams in parallel too (many small streams), each with its blocks in parallel
    let results: Vec<(StreamReport, Vec<Problem>)> = crate::base::par::one_per_job(&lay.streams)
        .map(|sd| verify_stream_dir(sd, opts, progress))
        .collect();
    // A running server may change files while they are read: say so.
    if let Some(h) = holder() {
        rep.problems.push(Problem::new(
            Kind::StoreInUse,
            Location::default(),
            format!("{h}: a running server may be changing these files; verify a stopped server's store for exact results"),
        ));
    }
    for (s, mut p) in results {
        rep.streams.push(s);
        rep.problems.append(&mut p);
    }
    server_does_not_start(&mut rep);
    if lay.raft_groups.is_empty() {
        super::account::check_overlaps(
            &lay.streams,
            &mut rep.streams,
            &mut rep.problems,
            opts.target.release.as_ref(),
        );
    }
    progress.finish();
    rep.finish();
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::problem::Severity;
    use crate::base::progress::NoProgress;
    use crate::testdata;
    use std::path::{Path, PathBuf};

    /// A file that exists but cannot be read (here: a directory in its place, EISDIR) is an
    /// `io_error` naming it, never "missing" and never silently skipped.
    #[test]
    fn unreadable_files_are_io_errors() {
        for (rel, not) in [
            ("meta.inf", Some("meta_missing")),
            ("msgs/index.db", None),
            ("obs/C1/o.dat", None),
            ("obs/C1/meta.inf", Some("consumer_meta_missing")),
        ] {
            let t = testdata::sample("v2.15.1-plain");
            let d = testdata::stream_dir(&t, "v2.15.1-plain", "ORDERS");
            std::fs::remove_file(d.join(rel)).unwrap();
            std::fs::create_dir(d.join(rel)).unwrap();
            let r = verify_store(&d, &Options::default(), &NoProgress).unwrap();
            let io: Vec<_> = r.problems.iter().filter(|p| p.kind == "io_error").collect();
            assert_eq!(io.len(), 1, "{rel}: {:#?}", r.problems);
            assert_eq!(io[0].loc.file.as_deref(), Some(rel), "{rel}");
            assert!(io[0].message.contains("cannot be read"), "{rel}");
            assert_eq!(r.exit_code(), 1, "{rel}");
            if let Some(k) = not {
                assert!(!r.problems.iter().any(|p| p.kind == k), "{rel}: also {k}");
            }
        }
    }

    fn facts(dir: &Path, sample: &str) -> serde_json::Value {
        serde_json::from_slice(&fs::read(dir.join(sample).join("facts.json")).unwrap()).unwrap()
    }

    fn run(p: &Path, quick: bool) -> Report {
        verify_store(
            p,
            &Options {
                quick,
                ..Default::default()
            },
            &NoProgress,
        )
        .unwrap()
    }

    /// Sets `key` of stream dir `d`'s config (meta.inf) to `value`, with a matching meta.sum.
    fn set_config(d: &Path, name: &str, key: &str, value: impl Into<serde_json::Value>) {
        let mut m: serde_json::Value =
            serde_json::from_slice(&fs::read(d.join("meta.inf")).unwrap()).unwrap();
        m[key] = value.into();
        let raw = serde_json::to_vec(&m).unwrap();
        fs::write(d.join("meta.inf"), &raw).unwrap();
        fs::write(
            d.join("meta.sum"),
            crate::filestore::meta::expected_sum(name, &raw),
        )
        .unwrap();
    }

    /// Deep verify of `p` modelling `release` (`None`: the writer's) loading at `at_ns`.
    fn run_as(p: &Path, release: Option<&str>, at_ns: i64) -> Report {
        let opts = Options {
            target: crate::check::Target {
                release: release.map(|v| Release::parse(v).unwrap()),
                at_ns,
            },
            ..Default::default()
        };
        verify_store(p, &opts, &NoProgress).unwrap()
    }

    /// Gives stream `name` in `d` max_age 1 h, message TTLs and subject delete markers
    /// (90 s), with a matching meta.sum.
    fn with_delete_markers(d: &Path, name: &str) {
        let meta = d.join("meta.inf");
        let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
        cfg["max_age"] = 3_600_000_000_000i64.into();
        cfg["allow_msg_ttl"] = true.into();
        cfg["subject_delete_marker_ttl"] = 90_000_000_000i64.into();
        let raw = serde_json::to_vec(&cfg).unwrap();
        fs::write(&meta, &raw).unwrap();
        fs::write(d.join("meta.sum"), meta::expected_sum(name, &raw)).unwrap();
    }

    /// Every stream in the sample: our state equals what the server reported before it stopped.
    fn check_sample_against_server(sample: &str) {
        let t = testdata::sample(sample);
        check_against_server(t.path(), sample);
    }

    /// `dir/sample/store` verified; its state equals `dir/sample/facts.json`.
    fn check_against_server(dir: &Path, sample: &str) {
        let f = facts(dir, sample);
        let rep = run(&dir.join(sample).join("store"), false);
        assert!(rep.ok, "{sample}: {:#?}", rep.problems);
        assert_eq!(rep.exit_code(), 0);
        let fs_streams = f["streams"].as_object().unwrap();
        assert_eq!(
            rep.streams.len(),
            fs_streams.len(),
            "{sample}: stream count"
        );
        for s in &rep.streams {
            let st = &fs_streams[&s.name]["info"]["state"];
            let n = |k: &str| st[k].as_u64().unwrap_or(0);
            assert_eq!(
                s.messages,
                Some(n("messages")),
                "{sample} {} messages",
                s.name
            );
            assert_eq!(s.bytes, Some(n("bytes")), "{sample} {} bytes", s.name);
            assert_eq!(
                s.first_seq,
                Some(n("first_seq")),
                "{sample} {} first",
                s.name
            );
            assert_eq!(s.last_seq, Some(n("last_seq")), "{sample} {} last", s.name);
            assert_eq!(
                s.deleted,
                Some(n("num_deleted")),
                "{sample} {} deleted",
                s.name
            );
            assert_eq!(
                s.subjects,
                Some(n("num_subjects")),
                "{sample} {} subjects",
                s.name
            );
            if let Some(d) = st["deleted"].as_array() {
                let want: Vec<u64> = d
                    .iter()
                    .filter_map(|x| x.as_u64())
                    .filter(|x| *x > 0)
                    .collect();
                if s.messages != Some(0) {
                    assert_eq!(s.deleted_seqs, want, "{sample} {} deleted list", s.name);
                }
            }
            let cons = fs_streams[&s.name]["consumers"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                s.consumers.len(),
                cons.len(),
                "{sample} {} consumers",
                s.name
            );
            for c in &s.consumers {
                let ci = &cons[&c.name];
                assert_eq!(
                    c.delivered_stream_seq,
                    ci["delivered"]["stream_seq"].as_u64(),
                    "{} delivered",
                    c.name
                );
                assert_eq!(
                    c.delivered_consumer_seq,
                    ci["delivered"]["consumer_seq"].as_u64()
                );
                assert_eq!(
                    c.ack_floor_stream_seq,
                    ci["ack_floor"]["stream_seq"].as_u64(),
                    "{} ack floor",
                    c.name
                );
                assert_eq!(
                    c.ack_floor_consumer_seq,
                    ci["ack_floor"]["consumer_seq"].as_u64()
                );
                assert_eq!(
                    c.pending,
                    ci["num_ack_pending"].as_u64(),
                    "{} pending",
                    c.name
                );
                assert_eq!(
                    c.redelivered,
                    ci["num_redelivered"].as_u64(),
                    "{} redelivered",
                    c.name
                );
            }
        }
    }

    #[test]
    fn plain_2_15_matches_server() {
        check_sample_against_server("v2.15.1-plain");
    }
    #[test]
    fn s2_2_15_matches_server() {
        check_sample_against_server("v2.15.1-s2");
    }
    /// 2.11.7 to 2.12.4 write the compressed length into a rewritten block's size field.
    #[test]
    fn s2_2_11_11_matches_server() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let blk = fs::read(fixtures.join("v2.11.11-s2/store/jetstream/$G/streams/CMP/msgs/1.blk"))
            .unwrap();
        let mut c = crate::base::bytes::Cursor::new(&blk[4..]);
        let size = c.uvarint().unwrap();
        assert_eq!(
            size as usize,
            blk.len() - 4 - c.pos(),
            "a 2.11.11 size field"
        );
        check_against_server(&fixtures, "v2.11.11-s2");
    }
    #[test]
    fn legacy_2_9_matches_server() {
        check_sample_against_server("v2.9.10-legacy");
    }

    #[test]
    fn encrypted_stores_need_a_key() {
        for s in [
            "v2.15.1-enc-chacha",
            "v2.15.1-enc-aes",
            "v2.9.10-enc-chacha",
        ] {
            let t = testdata::sample(s);
            let rep = run(&t.path().join(s).join("store"), false);
            assert_eq!(rep.exit_code(), 2, "{s}");
            assert!(rep.streams.iter().all(|x| x.encrypted), "{s}");
            assert!(rep
                .problems
                .iter()
                .any(|p| p.kind == "encrypted_key_needed"));
        }
    }

    #[test]
    fn clustered_node_is_recognised() {
        let t = testdata::sample("v2.15.1-cluster-n1");
        let rep = run(&t.path().join("v2.15.1-cluster-n1/store"), false);
        assert!(
            rep.notes.iter().any(|n| n.contains("clustered")),
            "{:?}",
            rep.notes
        );
        assert_eq!(rep.streams.len(), 1);
        assert_eq!(rep.streams[0].messages, Some(5));
        assert_eq!(rep.exit_code(), 0, "{:#?}", rep.problems);
    }

    fn multi(t: &tempfile::TempDir) -> std::path::PathBuf {
        t.path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/MULTI")
    }

    fn flip(p: &Path, off: usize) {
        let mut b = fs::read(p).unwrap();
        b[off] ^= 0x01;
        fs::write(p, b).unwrap();
    }

    fn kinds(r: &Report) -> Vec<&str> {
        r.problems.iter().map(|p| p.kind.as_str()).collect()
    }

    /// Offset of the record holding `seq` in a plain block.
    fn rec_off(p: &Path, seq: u64) -> (usize, crate::filestore::block::Record<'static>) {
        let b: &'static [u8] = Box::leak(fs::read(p).unwrap().into_boxed_slice());
        let r = crate::filestore::block::Records::new(b)
            .map(|r| r.unwrap())
            .find(|r| r.seq == seq)
            .unwrap();
        (r.offset, r)
    }

    /// A damaged index.db that claims a block of 2^40 sequences (and a consumer past all of
    /// them): the model's pending counts read at most `MAX_BLOCK_SPAN` sequences of it and walk
    /// no more, so verify finishes (it walked the claimed range, 2^40 steps, before).
    #[test]
    fn an_index_claiming_a_huge_block_range_is_counted_in_bounded_steps() {
        use crate::filestore::index_db;
        let t = testdata::sample("v2.15.1-plain");
        let d = testdata::stream_dir(&t, "v2.15.1-plain", "ORDERS");
        let raw = fs::read(d.join("msgs/index.db")).unwrap();
        let (body, _) = index_db::split_trailer(&raw).unwrap();
        let mut db = index_db::parse(body).unwrap();
        let huge = 1u64 << 40;
        db.last_seq = huge;
        db.blocks[0].last_seq = huge;
        // each release with the index.db version it writes (and reads)
        for (release, version) in [(None, db.version), (Some("2.11.6"), 2), (Some("2.12.8"), 3)] {
            fs::write(
                d.join("msgs/index.db"),
                index_db::encode_version(&db, "ORDERS", version),
            )
            .unwrap();
            // on a thread: a guard against the walk (2^40 steps take hours), not a speed test
            let (tx, rx) = std::sync::mpsc::channel();
            let dir = d.clone();
            std::thread::spawn(move || {
                let opts = Options {
                    target: crate::check::Target {
                        release: release.map(|r: &str| r.parse().unwrap()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let _ = tx.send(verify_store(&dir, &opts, &NoProgress).unwrap());
            });
            let r = rx
                .recv_timeout(std::time::Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("{release:?}: verify walks the claimed range"));
            let s = &r.streams[0];
            assert_eq!(s.last_seq, Some(huge), "{release:?}");
            assert!(
                s.consumers.iter().all(|c| c.num_pending.is_some()),
                "{release:?}"
            );
        }
    }

    #[test]
    fn payload_flip_is_located_with_the_sequences_a_server_would_lose() {
        let t = testdata::sample("v2.15.1-plain");
        let blk = multi(&t).join("msgs/2.blk");
        let (off, r) = rec_off(&blk, 35);
        assert_eq!(off, 4148, "spec E1 offset");
        let payload_at = off + r.len as usize - 8 - 10;
        flip(&blk, payload_at);
        let rep = run(&multi(&t), false);
        assert_eq!(rep.exit_code(), 1);
        let p = rep
            .problems
            .iter()
            .find(|p| p.kind == "record_checksum")
            .expect("record_checksum");
        assert_eq!(p.loc.file.as_deref(), Some("msgs/2.blk"));
        assert_eq!(p.loc.offset, Some(4148));
        assert_eq!(p.loc.seq, Some(35));
        assert_eq!(p.loc.seq_end, Some(60));
        assert_eq!(p.loc.stream.as_deref(), Some("MULTI"));
        assert_eq!(
            rep.problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count(),
            1,
            "{:#?}",
            rep.problems
        );
        // --quick skips record checksums
        assert_eq!(run(&multi(&t), true).exit_code(), 0);
    }

    #[test]
    fn header_subject_and_checksum_flips_are_caught() {
        for (what, seq) in [
            ("header", 50u64),
            ("subject", 51),
            ("checksum", 52),
            ("seq", 53),
            ("ts", 54),
        ] {
            let t = testdata::sample("v2.15.1-plain");
            let blk = multi(&t).join("msgs/2.blk");
            let (off, r) = rec_off(&blk, seq);
            let at = match what {
                "header" => {
                    assert!(r.headers.is_some());
                    off + 22 + r.subject.len() + 4 + 12
                }
                "subject" => off + 22 + 1,
                "checksum" => off + r.len as usize - 3,
                "seq" => off + 5,
                _ => off + 13,
            };
            flip(&blk, at);
            let rep = run(&multi(&t), false);
            let p = rep
                .problems
                .iter()
                .find(|p| p.kind == "record_checksum")
                .unwrap_or_else(|| panic!("{what}: {:#?}", rep.problems));
            assert_eq!(p.loc.offset, Some(off as u64), "{what}");
            assert_eq!(rep.exit_code(), 1);
        }
    }

    #[test]
    fn truncation_mid_record() {
        let t = testdata::sample("v2.15.1-plain");
        let blk = multi(&t).join("msgs/1.blk");
        let (off, _) = rec_off(&blk, 20);
        let b = fs::read(&blk).unwrap();
        fs::write(&blk, &b[..off + 100]).unwrap();
        let rep = run(&multi(&t), false);
        let p = rep
            .problems
            .iter()
            .find(|p| p.kind == "record_framing")
            .unwrap_or_else(|| panic!("{:#?}", rep.problems));
        assert_eq!(p.loc.file.as_deref(), Some("msgs/1.blk"));
        assert_eq!(p.loc.offset, Some(off as u64));
        assert_eq!(p.loc.seq, Some(20));
        // one finding per root cause: the cut block explains why index.db disagrees
        assert!(
            !kinds(&rep).contains(&"index_db_mismatch"),
            "{:?}",
            kinds(&rep)
        );
        assert_eq!(
            rep.streams[0].messages,
            Some(98 - 11),
            "seqs 20..=30 are gone"
        );
        assert_eq!(rep.exit_code(), 1);
    }

    fn stream_dir(t: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
        t.path()
            .join("v2.15.1-plain/store/jetstream/$G/streams")
            .join(name)
    }

    fn truncate_to(p: &Path, len: usize) {
        let b = fs::read(p).unwrap();
        fs::write(p, &b[..len]).unwrap();
    }

    /// Numbers nats-server 2.15.1 reported after a restart on the same damage (findings F7,
    /// matrix M7): the truncated last block loses its tombstones, so deleted seqs come back.
    #[test]
    fn cut_tombstones_bring_deleted_messages_back() {
        let t = testdata::sample("v2.15.1-plain");
        let d = stream_dir(&t, "ORDERS");
        truncate_to(&d.join("msgs/1.blk"), 700);
        let rep = run(&d, false);
        let s = &rep.streams[0];
        assert_eq!((s.messages, s.deleted_seqs.clone()), (Some(9), vec![6]));
        let l = s.load.as_ref().unwrap();
        assert_eq!(l.recovery, "rebuild", "{l:?}");
        assert_eq!(l.revived, vec![3]);
        // the cut is at a record boundary: nothing acknowledged is lost, the server repairs
        assert_eq!(l.lost_messages, 0);

        let t = testdata::sample("v2.15.1-plain");
        let d = multi(&t);
        truncate_to(&d.join("msgs/4.blk"), 7259);
        let rep = run(&d, false);
        let s = &rep.streams[0];
        assert_eq!(s.messages, Some(97));
        assert_eq!(s.deleted_seqs, vec![98, 99, 100]);
    }

    /// A record cut in the middle of a block without index.db (the server truncates there and
    /// loses the rest of the block; the tombstone of seq 10 in the cut part is lost too).
    #[test]
    fn truncation_without_index_loses_exactly_the_cut_part() {
        let t = testdata::sample("v2.15.1-plain");
        let d = multi(&t);
        let blk = d.join("msgs/1.blk");
        let (off, _) = rec_off(&blk, 20);
        let mut b = fs::read(&blk).unwrap();
        b[off + 40] ^= 0x55; // payload byte: checksum mismatch
        fs::write(&blk, &b).unwrap();
        fs::remove_file(d.join("msgs/index.db")).unwrap();
        let rep = run(&d, false);
        let s = &rep.streams[0];
        let l = s.load.as_ref().unwrap();
        assert_eq!(l.verdict, crate::base::report::Verdict::LosesData);
        assert_eq!(l.reason.as_deref(), Some("there is no index.db"));
        assert_eq!(l.lost, vec![(20, 30)], "1.blk holds 1..30");
        assert_eq!(l.lost_messages, 11);
        assert_eq!(s.block_list[0].last_seq, Some(19));
        let errs: Vec<_> = rep
            .problems
            .iter()
            .filter(|p| p.severity == crate::base::problem::Severity::Error)
            .collect();
        assert_eq!(errs.len(), 1, "one finding per root cause: {errs:#?}");
        assert!(
            errs[0].message.contains("loses seqs 20.."),
            "{}",
            errs[0].message
        );
        // with index.db the server trusts it: the numbers stay, the one message is unreadable
        let t = testdata::sample("v2.15.1-plain");
        let d = multi(&t);
        let blk = d.join("msgs/1.blk");
        fs::write(&blk, &b).unwrap();
        let rep = run(&d, false);
        assert_eq!(rep.streams[0].messages, Some(98));
        assert_eq!(rep.streams[0].load.as_ref().unwrap().lost_messages, 0);
        assert!(rep.problems[0].message.contains("cannot serve it"));
    }

    /// A torn last record (crash mid-write) is a warning: the server truncates it silently.
    #[test]
    fn torn_tail_is_a_warning() {
        let t = testdata::sample("v2.15.1-plain");
        let d = multi(&t);
        let blk = d.join("msgs/4.blk");
        let len = fs::metadata(&blk).unwrap().len() as usize;
        truncate_to(&blk, len - 15);
        fs::remove_file(d.join("msgs/index.db")).unwrap();
        let rep = run(&d, false);
        assert!(kinds(&rep).contains(&"torn_tail"), "{:#?}", rep.problems);
        assert_eq!(rep.exit_code(), 0, "{:#?}", rep.problems);
        assert_eq!(
            rep.streams[0].load.as_ref().unwrap().verdict,
            crate::base::report::Verdict::Repaired
        );
    }

    /// A last block ending in zeros is not a torn write but data the disk never got (a power
    /// loss): an error, the stream losing data on this node, however many bytes; the server
    /// truncates the zeros as it truncates a torn tail (matrix `zero_last_tail`: 2.10.26 to
    /// 2.15.1 and 2.9.10 count what jetdir counts). A tail shorter than a record header, or
    /// not all zeros, stays a torn tail.
    #[test]
    fn a_tail_of_zeros_is_lost_data_not_a_torn_write() {
        for (zeros, kind, code) in [
            (4096, "zeroed_tail", 1),
            (22, "zeroed_tail", 1),
            (21, "torn_tail", 0),
        ] {
            let t = testdata::sample("v2.15.1-plain");
            let d = multi(&t);
            let blk = d.join("msgs/4.blk");
            let mut b = fs::read(&blk).unwrap();
            b.extend(std::iter::repeat_n(0u8, zeros));
            fs::write(&blk, &b).unwrap();
            let rep = run(&d, false);
            let s = &rep.streams[0];
            assert!(kinds(&rep).contains(&kind), "{zeros}: {:#?}", rep.problems);
            assert_eq!(rep.exit_code(), code, "{zeros}: {:#?}", rep.problems);
            assert_eq!(s.messages, Some(98), "{zeros}");
            let want = if code == 1 {
                Verdict::LosesData
            } else {
                Verdict::Repaired
            };
            assert_eq!(s.load.as_ref().unwrap().verdict, want, "{zeros}");
        }
        // a torn record followed by zeros is a torn write, not a power loss
        let t = testdata::sample("v2.15.1-plain");
        let d = multi(&t);
        let blk = d.join("msgs/4.blk");
        let mut b = fs::read(&blk).unwrap();
        let head = b[..40].to_vec();
        b.extend_from_slice(&head);
        b.extend(std::iter::repeat_n(0u8, 200));
        fs::write(&blk, &b).unwrap();
        let rep = run(&d, false);
        assert!(kinds(&rep).contains(&"torn_tail"), "{:#?}", rep.problems);
    }

    /// Limits are enforced at load: the oldest messages go first, per-subject history too,
    /// and max_age counts from `--at`.
    #[test]
    fn limits_are_enforced_at_load() {
        let t = testdata::sample("v2.15.1-plain");
        let d = multi(&t);
        let meta = d.join("meta.inf");
        let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
        cfg["max_msgs"] = 50.into();
        let raw = serde_json::to_vec(&cfg).unwrap();
        fs::write(&meta, &raw).unwrap();
        fs::write(d.join("meta.sum"), meta::expected_sum("MULTI", &raw)).unwrap();
        fs::remove_file(d.join("msgs/index.db")).unwrap();
        let rep = run(&d, false);
        let s = &rep.streams[0];
        assert_eq!(s.messages, Some(50));
        assert_eq!((s.first_seq, s.last_seq), (Some(51), Some(100)));
        let l = s.load.as_ref().unwrap();
        assert_eq!(l.removed[0].limit, "max_msgs");
        assert_eq!(l.removed[0].messages, 48, "98 live, 50 kept");
        assert_eq!(rep.exit_code(), 0, "{:#?}", rep.problems);

        cfg["max_msgs"] = (-1).into();
        cfg["max_msgs_per_subject"] = 2.into();
        cfg["max_age"] = 3_600_000_000_000i64.into();
        let raw = serde_json::to_vec(&cfg).unwrap();
        fs::write(&meta, &raw).unwrap();
        fs::write(d.join("meta.sum"), meta::expected_sum("MULTI", &raw)).unwrap();
        let last_ts = rep.streams[0].last_ts.unwrap();
        let at = |ns: i64| Options {
            target: crate::check::Target {
                release: None,
                at_ns: ns,
            },
            ..Default::default()
        };
        let r = verify_store(&d, &at(last_ts + 1), &NoProgress).unwrap();
        let s = &r.streams[0];
        assert_eq!(s.messages, Some(2 * s.subjects.unwrap()), "2 per subject");
        let r = verify_store(&d, &at(last_ts + 3_600_000_000_001), &NoProgress).unwrap();
        assert_eq!(r.streams[0].messages, Some(0), "all older than max_age");
        assert_eq!(r.streams[0].first_seq, Some(101));
    }

    /// With subject_delete_marker_ttl, max_age leaves one delete marker per emptied subject,
    /// appended after the last sequence in the order of the subjects' last messages
    /// (agrees with 2.11.11, 2.12.8 and 2.15.1 in the sampled matrix's `expired` row).
    #[test]
    fn subject_delete_markers_replace_expired_subjects() {
        let t = testdata::sample("v2.15.1-plain");
        let d = multi(&t);
        let before = run(&d, false);
        let b = &before.streams[0];
        with_delete_markers(&d, "MULTI");
        let at = b.last_ts.unwrap() + 3_600_000_000_001;
        let r = run_as(&d, None, at);
        let s = &r.streams[0];
        let n = b.subjects.unwrap();
        let last = b.last_seq.unwrap();
        assert_eq!(s.messages, Some(n), "one marker per subject");
        assert_eq!((s.first_seq, s.last_seq), (Some(last + 1), Some(last + n)));
        assert_eq!((s.first_ts, s.last_ts), (Some(at), Some(at)));
        assert_eq!(s.deleted, Some(0));
        let hdr = load::marker_headers(90);
        assert!(hdr.ends_with(b"Nats-TTL: 1m30s\r\nNats-Rollup: sub\r\n\r\n"));
        let want_bytes: u64 = s
            .subject_counts
            .keys()
            .map(|k| (22 + k.len() + 4 + hdr.len() + 8) as u64)
            .sum();
        assert_eq!(s.bytes, Some(want_bytes));
        assert_eq!(
            s.subject_counts.keys().collect::<Vec<_>>(),
            b.subject_counts.keys().collect::<Vec<_>>()
        );
        let l = s.load.as_ref().unwrap();
        assert_eq!(l.markers.len() as u64, n);
        assert!(l
            .markers
            .windows(2)
            .all(|w| w[0].replaces < w[1].replaces && w[0].seq + 1 == w[1].seq));
        assert_eq!(l.removed[0].limit, "max_age");
        assert_eq!(l.removed[0].messages, b.messages.unwrap());
        assert_eq!(r.exit_code(), 0, "{:#?}", r.problems);
        // before max_age: nothing expires, no marker
        let r = run_as(&d, None, b.last_ts.unwrap() + 1);
        assert_eq!(r.streams[0].messages, b.messages);
        assert!(r.streams[0].load.as_ref().unwrap().markers.is_empty());

        // 2.11.0 and 2.11.1 expire the first block while recovering and write no marker for
        // the subjects emptied there (their recovery drops the markers it asks for); the
        // expiry after the load does the later blocks as 2.11.2+ do. Every subject of MULTI
        // has its last message past block 1: one marker each, whatever the release.
        for rel in ["2.11.1", "2.11.2"] {
            let r = run_as(&d, Some(rel), at);
            let l = r.streams[0].load.as_ref().unwrap();
            assert_eq!(l.markers.len() as u64, n, "{rel}");
            assert_eq!(l.removed[0].messages, b.messages.unwrap(), "{rel}");
        }
    }

    /// A stream of one block with subject delete markers, all of it older than max_age:
    /// 2.11.0 and 2.11.1 expire it while recovering and write no marker (matrix `expired`,
    /// SDM: no message left, last seq kept); 2.11.2+ write one marker per subject.
    #[test]
    fn sdm_recovery_of_2_11_0_and_2_11_1_writes_no_marker() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        let before = run(&d, false);
        let b = &before.streams[0];
        with_delete_markers(&d, "ORDERS");
        let at = b.last_ts.unwrap() + 3_600_000_000_001;
        let last = b.last_seq.unwrap();
        let subjects = b.subjects.unwrap();
        assert!(subjects > 0);
        for (rel, markers) in [
            ("2.11.0", 0),
            ("2.11.1", 0),
            ("2.11.2", subjects),
            ("2.15.1", subjects),
        ] {
            let r = run_as(&d, Some(rel), at);
            let s = &r.streams[0];
            let l = s.load.as_ref().unwrap();
            assert_eq!(l.markers.len() as u64, markers, "{rel}");
            assert_eq!(s.messages, Some(markers), "{rel}");
            assert_eq!(s.last_seq, Some(last + markers), "{rel}");
            assert_eq!(s.first_seq, Some(last + 1), "{rel}");
            assert_eq!(l.removed[0].messages, b.messages.unwrap(), "{rel}");
        }
    }

    /// An undecodable compressed block when the server rebuilds: 2.10–2.12 drop the block,
    /// 2.14+ do not load the stream (differential matrix, `cmp_flip+noidx`).
    #[test]
    fn undecodable_block_on_rebuild_depends_on_the_release() {
        let t = testdata::sample("v2.15.1-s2");
        let d = t.path().join("v2.15.1-s2/store/jetstream/$G/streams/CMP");
        let clean = run(&d, false);
        let blk = d.join("msgs/1.blk");
        let len = fs::metadata(&blk).unwrap().len() as usize;
        truncate_to(&blk, len / 2);
        fs::remove_file(d.join("msgs/index.db")).unwrap();
        let for_release = |v: &str| run_as(&d, Some(v), crate::base::time::now_ns());
        let old = for_release("2.12.8");
        let s = &old.streams[0];
        assert_eq!(s.load.as_ref().unwrap().verdict, Verdict::LosesData);
        assert!(
            s.messages < clean.streams[0].messages,
            "block 1's messages are gone"
        );
        let p = old
            .problems
            .iter()
            .find(|p| p.kind == "block_decompress")
            .unwrap();
        assert!(p.message.contains("drops it"), "{}", p.message);
        let new = for_release("2.15.1");
        assert_eq!(
            new.streams[0].load.as_ref().unwrap().verdict,
            Verdict::Skipped
        );
        let p = new
            .problems
            .iter()
            .find(|p| p.kind == "block_decompress")
            .unwrap();
        assert!(
            p.message.contains("does not load the stream"),
            "{}",
            p.message
        );
        assert_eq!(new.exit_code(), 1);
    }

    #[test]
    fn plain_2_12_8_matches_server() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        check_against_server(&fixtures, "v2.12.8-plain");
    }

    /// M3: a compressed block the server's own erase damaged (2.10.25 and 2.11.0 wrote these,
    /// fixtures/m3-erased-cmp). The server reads the block through klauspost's S2 reader on
    /// a bytes.Reader: trailing bytes that form a skippable chunk running past the end are
    /// skipped and the block decodes (2.10.25 served all but the erased 40 and the last 60);
    /// a reserved chunk type fails the block (2.11.0 served none of 31..60). jetdir must
    /// leave exactly the sequences the server did not serve unreadable.
    #[test]
    fn erase_damaged_compressed_blocks_serve_what_the_server_served() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/m3-erased-cmp");
        for rel in ["2.10.25", "2.11.0"] {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().join("CMP");
            testdata::copy_tree(&root.join(format!("v{rel}/CMP")), &d);
            let server: serde_json::Value = serde_json::from_slice(
                &fs::read(root.join(format!("v{rel}/server.json"))).unwrap(),
            )
            .unwrap();
            let served: std::collections::BTreeSet<u64> = server["served"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let deleted: std::collections::BTreeSet<u64> = server["state"]["deleted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let (first, last) = (
                server["state"]["first_seq"].as_u64().unwrap(),
                server["state"]["last_seq"].as_u64().unwrap(),
            );
            let r = run_as(&d, Some(rel), crate::base::time::now_ns());
            let st = &r.streams[0];
            assert_eq!(st.messages, server["state"]["messages"].as_u64(), "{rel}");
            assert_eq!(st.deleted, server["state"]["num_deleted"].as_u64(), "{rel}");
            let unread: std::collections::BTreeSet<u64> = st
                .load
                .as_ref()
                .unwrap()
                .unreadable
                .iter()
                .flat_map(|&(a, b)| a..=b)
                .collect();
            let not_served: std::collections::BTreeSet<u64> = (first..=last)
                .filter(|q| !served.contains(q) && !deleted.contains(q))
                .collect();
            assert_eq!(unread, not_served, "{rel}");
        }
    }

    /// The erase-damaged blocks of fixtures/m3-erased-cmp started by the releases in their
    /// `releases.json` (recorded with `tests/support/m3_check.py`), with their index.db and
    /// without it: whether the stream loads, its numbers, the sequences served, the subject
    /// counts and every consumer's pending count. 2.10.25's block (its trailing bytes form a
    /// skippable chunk running past the end): 2.14.5+ cannot decode it (klauspost/compress's
    /// "defensive checks": `load::cmp_reader`), so with the index 31..60 are unreadable and
    /// without it the stream does not load; without the index, 2.14.0-2.14.4 do not load it
    /// either ("no message cache"), 2.12.3-2.13 refuse the block's cache (none of it served,
    /// the tombstone of 40 in a later block not applied, its messages out of the subject
    /// counts, pending counts that read it 0), and 2.10-2.12.2 count the cut record 60 in the
    /// subject and pending counts (`cut_compressed_kept`). 2.11.0's block (a reserved chunk
    /// type) decodes nowhere.
    #[test]
    fn erase_damaged_compressed_block_as_later_releases_load_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/m3-erased-cmp");
        let seqs = |v: &serde_json::Value| -> std::collections::BTreeSet<u64> {
            v.as_array()
                .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                .unwrap_or_default()
        };
        let mut checked = 0;
        for writer in ["v2.10.25", "v2.11.0"] {
            let dir = root.join(writer);
            let facts: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.join("releases.json")).unwrap()).unwrap();
            let runs = facts["runs"].as_array().unwrap();
            assert!(runs.len() >= 20, "{writer}: {}", runs.len());
            for run in runs {
                let rel = run["release"].as_str().unwrap();
                let removed = run["index.db"] == "removed";
                let t = tempfile::tempdir().unwrap();
                let d = t.path().join("CMP");
                testdata::copy_tree(&dir.join("CMP"), &d);
                if removed {
                    fs::remove_file(d.join("msgs/index.db")).unwrap();
                }
                let rep = run_as(&d, Some(rel), crate::base::time::now_ns());
                let st = &rep.streams[0];
                let load = st.load.as_ref().unwrap();
                let what = format!("{writer} started by {rel}, index.db {}", run["index.db"]);
                let loaded = run["loaded"].as_bool().unwrap();
                assert_eq!(
                    load.verdict != crate::base::report::Verdict::Skipped,
                    loaded,
                    "{what}: {:?}",
                    load.verdict
                );
                checked += 1;
                if !loaded {
                    continue;
                }
                let state = &run["state"];
                assert_eq!(st.messages, state["messages"].as_u64(), "{what}");
                assert_eq!(st.deleted, state["num_deleted"].as_u64(), "{what}");
                assert_eq!(st.first_seq, state["first_seq"].as_u64(), "{what}");
                assert_eq!(st.last_seq, state["last_seq"].as_u64(), "{what}");
                let (served, deleted) = (seqs(&run["served"]), seqs(&state["deleted"]));
                assert_eq!(
                    st.deleted_seqs
                        .iter()
                        .copied()
                        .collect::<std::collections::BTreeSet<_>>(),
                    deleted,
                    "{what}"
                );
                let not_served: std::collections::BTreeSet<u64> = (1..=st.last_seq.unwrap())
                    .filter(|q| !served.contains(q) && !deleted.contains(q))
                    .collect();
                let gone: std::collections::BTreeSet<u64> = load
                    .unreadable
                    .iter()
                    .chain(&load.lost)
                    .flat_map(|&(a, b)| a..=b)
                    .filter(|q| !deleted.contains(q))
                    .collect();
                assert_eq!(gone, not_served, "{what}");
                let want: std::collections::BTreeMap<String, u64> =
                    serde_json::from_value(state["subjects"].clone()).unwrap();
                assert_eq!(st.subject_counts, want, "{what}");
                let pending = run["num_pending"].as_object().unwrap();
                assert!(pending.len() >= 6, "{what}");
                for c in &st.consumers {
                    if let Some(n) = pending.get(&c.name).and_then(|v| v.as_u64()) {
                        assert_eq!(c.num_pending, Some(n), "{what}: {}", c.name);
                    }
                }
            }
        }
        assert_eq!(checked, 40);
    }

    /// A middle block cut at a record boundary under a trusted index.db (matrix
    /// `trunc_mid_at_rec`, every release): 2.10 to 2.12.2 keep the index's numbers for it
    /// (the missing messages counted, not served); 2.12.3+ count only what the block holds.
    /// MULTI as 2.12.8 wrote it (index.db version 3, which every 2.12 reads).
    #[test]
    fn short_middle_block_is_counted_from_the_index_before_2_12_3() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/v2.12.8-plain/store/jetstream/$G/streams/MULTI");
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("MULTI");
        testdata::copy_tree(&src, &d);
        let blk = d.join("msgs/2.blk");
        let raw = fs::read(&blk).unwrap();
        let offs: Vec<usize> = crate::filestore::block::Records::new(&raw)
            .map_while(|r| r.ok())
            .map(|r| r.offset)
            .collect();
        assert!(offs.len() > 2);
        truncate_to(&blk, offs[offs.len() / 2]);
        let verify = |v: &str| run_as(&d, Some(v), crate::base::time::now_ns());
        for v in ["2.12.0", "2.12.2"] {
            let r = verify(v);
            assert_eq!(r.streams[0].messages, Some(98), "{v}: the index's numbers");
            assert!(
                r.problems
                    .iter()
                    .any(|p| p.message.contains("trusts index.db, counts seqs")),
                "{v}"
            );
        }
        for v in ["2.12.3", "2.12.8", "2.15.1"] {
            let r = verify(v);
            assert!(
                r.streams[0].messages < Some(98),
                "{v}: what the blocks hold"
            );
        }
    }

    /// A block cut at a record boundary under an index.db that lists more: the server
    /// rebuilds and serves what is left (2.15.1 served 1 of ORDERS' 8 after `truncate -s 55`):
    /// one error with the lost sequences, not a list of stale-index warnings.
    #[test]
    fn block_cut_at_a_record_boundary_loses_what_the_index_listed() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        truncate_to(&d.join("msgs/1.blk"), 55);
        let rep = run(&d, false);
        let s = &rep.streams[0];
        assert_eq!(s.messages, Some(1));
        let l = s.load.as_ref().unwrap();
        assert_eq!(l.verdict, Verdict::LosesData);
        assert_eq!(l.lost, vec![(2, 2), (4, 5), (7, 10)]);
        assert_eq!(l.lost_messages, 7);
        let k = kinds(&rep);
        assert_eq!(
            k.iter().filter(|k| **k == "block_short").count(),
            1,
            "{k:?}"
        );
        assert_eq!(
            k.iter().filter(|k| **k == "index_db_stale").count(),
            1,
            "{k:?}"
        );
        assert_eq!(rep.exit_code(), 1);
    }

    /// 2.9 (fidelity F7, checked against 2.9.10): an .idx whose counts do not add up is not
    /// read (the block is rebuilt, its deletes forgotten: 9 messages, not 8); a block cut
    /// short under a stale .idx loses what the .idx listed past the cut, and the consumers
    /// keep their state (2 messages, last seq 2, C1 delivered 5).
    #[test]
    fn legacy_idx_damage_and_a_short_block_as_2_9_loads_them() {
        let for_29 = |d: &Path| run_as(d, Some("2.9.10"), crate::base::time::now_ns());
        let t = testdata::sample("v2.9.10-legacy");
        let d = t
            .path()
            .join("v2.9.10-legacy/store/jetstream/$G/streams/ORDERS");
        flip(&d.join("msgs/1.idx"), 15);
        let r = for_29(&d);
        let s = &r.streams[0];
        assert_eq!(
            (s.messages, s.last_seq),
            (Some(9), Some(10)),
            "{:#?}",
            r.problems
        );
        assert_eq!(s.load.as_ref().unwrap().verdict, Verdict::Repaired);
        assert_eq!(kinds(&r), vec!["idx_inconsistent"]);
        assert_eq!(r.exit_code(), 0);

        let t = testdata::sample("v2.9.10-legacy");
        let d = t
            .path()
            .join("v2.9.10-legacy/store/jetstream/$G/streams/ORDERS");
        truncate_to(&d.join("msgs/1.blk"), 139);
        let r = for_29(&d);
        let s = &r.streams[0];
        assert_eq!(
            (s.messages, s.first_seq, s.last_seq, s.deleted),
            (Some(2), Some(1), Some(2), Some(2))
        );
        let l = s.load.as_ref().unwrap();
        assert_eq!(l.lost, vec![(4, 5), (7, 10)]);
        assert_eq!(l.verdict, Verdict::LosesData);
        let c1 = s.consumers.iter().find(|c| c.name == "C1").unwrap();
        assert_eq!(c1.delivered_stream_seq, Some(5));
        assert!(kinds(&r).contains(&"block_short"));

        // an .idx that does not parse: 2.9.10 rebuilds the block from its records
        // (`recoverMsgBlock`: readIndexInfo fails), and deletes recorded only in that .idx
        // come back. The real 2.9.10 on this copy, each stream's msgs/1.idx cut to 3 bytes:
        // MULTI 99 messages, 102907 bytes, deleted [40]; ORDERS 9, 641, deleted [6].
        let t = testdata::sample("v2.9.10-legacy");
        let streams = t.path().join("v2.9.10-legacy/store/jetstream/$G/streams");
        for s in ["MULTI", "ORDERS"] {
            truncate_to(&streams.join(s).join("msgs/1.idx"), 3);
        }
        let r = run_as(
            &t.path().join("v2.9.10-legacy/store"),
            Some("2.9.10"),
            crate::base::time::now_ns(),
        );
        for (name, msgs, bytes, deleted) in [("MULTI", 99, 102907, 40), ("ORDERS", 9, 641, 6)] {
            let s = r.streams.iter().find(|s| s.name == name).unwrap();
            assert_eq!(
                (s.messages, s.bytes, &s.deleted_seqs[..]),
                (Some(msgs), Some(bytes), &[deleted][..]),
                "{name}"
            );
            assert_eq!(
                s.load.as_ref().unwrap().verdict,
                Verdict::Repaired,
                "{name}"
            );
        }
        let idx: Vec<_> = r
            .problems
            .iter()
            .filter(|p| p.kind.as_str().starts_with("idx_"))
            .map(|p| (p.kind.as_str(), p.severity, p.loc.file.as_deref()))
            .collect();
        assert_eq!(
            idx,
            vec![
                ("idx_corrupt", Severity::Warning, Some("msgs/1.idx")),
                ("idx_corrupt", Severity::Warning, Some("msgs/1.idx"))
            ],
            "no idx_missing beside an .idx that is there"
        );
        assert_eq!(r.exit_code(), 0);
    }

    /// 2.9 enforces max_msgs / max_bytes at load from its first sequence, which its recovery
    /// leaves at 0 when the last block listed is rebuilt to nothing (an empty block with an
    /// empty .idx, as a kill leaves it: matrix `kill_mid`): the removal of seq 0 fails, it
    /// stops and takes the first from its first block. The real 2.9.10 on copies of the
    /// fixture's MULTI (98 messages, 1..100) with max_msgs 90: with an empty 5.blk and 5.idx
    /// 98 messages, 101843 bytes, first 1; without them 90 messages, 93547 bytes, first 9.
    #[test]
    fn limits_are_not_enforced_by_2_9_when_its_recovered_first_is_0() {
        let t = testdata::sample("v2.9.10-legacy");
        let d = t
            .path()
            .join("v2.9.10-legacy/store/jetstream/$G/streams/MULTI");
        set_config(&d, "MULTI", "max_msgs", 90);
        let numbers = |r: &crate::base::report::Report| {
            let s = &r.streams[0];
            (s.messages, s.bytes, s.first_seq, s.last_seq)
        };
        let r = run_as(&d, Some("2.9.10"), crate::base::time::now_ns());
        assert_eq!(
            numbers(&r),
            (Some(90), Some(93547), Some(9), Some(100)),
            "{:#?}",
            r.problems
        );
        fs::write(d.join("msgs/5.blk"), b"").unwrap();
        fs::write(d.join("msgs/5.idx"), b"").unwrap();
        let r = run_as(&d, Some("2.9.10"), crate::base::time::now_ns());
        assert_eq!(
            numbers(&r),
            (Some(98), Some(101843), Some(1), Some(100)),
            "{:#?}",
            r.problems
        );
        assert!(r.streams[0].load.as_ref().unwrap().removed.is_empty());
        // a 2.10+ release enforces them (it rebuilds the empty block to its own first)
        let r = run_as(&d, Some("2.15.1"), crate::base::time::now_ns());
        assert_eq!(r.streams[0].messages, Some(90), "{:#?}", r.problems);
    }

    /// What a power loss leaves (zeros where data had not reached the disk), as 2.9 loads it
    /// (matrix `zero_*`, M20). The real 2.9.10 on copies of the fixture's MULTI (4 blocks of
    /// 30, 10 and 40 deleted in their .idx): a 4 KiB page of 2.blk zeroed, after a read of
    /// every message, 79 messages, 82086 bytes, first 1, deleted [10, 40], lost 43..60 (seq 42,
    /// whose checksum the zeros cut, goes too); 2.blk all zeros, .idx and .fss gone: 70
    /// messages, first 61 at seq 61's time; 4.blk all zeros, the same: 90 messages, first 0,
    /// last 90.
    #[test]
    fn zeroed_blocks_as_2_9_loads_them() {
        let zero = |p: &Path, lo: usize, hi: usize| {
            let mut b = fs::read(p).unwrap();
            let hi = hi.min(b.len());
            b[lo..hi].fill(0);
            fs::write(p, b).unwrap();
        };
        let multi = |t: &tempfile::TempDir| {
            t.path()
                .join("v2.9.10-legacy/store/jetstream/$G/streams/MULTI")
        };
        let no_index = |d: &Path| {
            for e in fs::read_dir(d.join("msgs")).unwrap() {
                let p = e.unwrap().path();
                if matches!(p.extension().and_then(|x| x.to_str()), Some("idx" | "fss")) {
                    fs::remove_file(p).unwrap();
                }
            }
        };
        let for_29 = |d: &Path| run_as(d, Some("2.9.10"), crate::base::time::now_ns());

        let t = testdata::sample("v2.9.10-legacy");
        let d = multi(&t);
        zero(&d.join("msgs/2.blk"), 12288, 16384);
        let r = for_29(&d);
        let s = &r.streams[0];
        assert_eq!(
            (
                s.messages,
                s.bytes,
                s.first_seq,
                s.last_seq,
                &s.deleted_seqs[..]
            ),
            (Some(79), Some(82086), Some(1), Some(100), &[10, 40][..]),
            "{:#?}",
            r.problems
        );
        let l = s.load.as_ref().unwrap();
        assert_eq!(
            (l.verdict, &l.lost[..]),
            (Verdict::LosesData, &[(42, 60)][..])
        );
        assert!(kinds(&r).contains(&"block_short"), "{:#?}", r.problems);

        let t = testdata::sample("v2.9.10-legacy");
        let d = multi(&t);
        let first_of_3 = first_ts_of(&d.join("msgs/3.blk"));
        zero(&d.join("msgs/2.blk"), 0, usize::MAX);
        no_index(&d);
        let r = for_29(&d);
        let s = &r.streams[0];
        assert_eq!(
            (s.messages, s.bytes, s.first_seq, s.first_ts, s.last_seq),
            (Some(70), Some(72780), Some(61), Some(first_of_3), Some(100))
        );
        assert_eq!(s.load.as_ref().unwrap().lost, vec![(31, 60)]);

        let t = testdata::sample("v2.9.10-legacy");
        let d = multi(&t);
        zero(&d.join("msgs/4.blk"), 0, usize::MAX);
        no_index(&d);
        let r = for_29(&d);
        let s = &r.streams[0];
        assert_eq!(
            (s.messages, s.bytes, s.first_seq, s.last_seq),
            (Some(90), Some(93573), Some(0), Some(90))
        );
    }

    /// A consumer's o.dat or meta.inf zeroed (a power loss; matrix `zero_odat_file`,
    /// `zero_cmeta_file`, every release): meta.inf that does not parse, no release loads the
    /// consumer; o.dat that does not decode, 2.9-2.11.2 load it without state (delivered
    /// 2^64-1, ack floor 0, every message unprocessed) and 2.11.3+ do not load it. The real
    /// servers on this copy (ORDERS's C1, 8 messages): 2.11.2 delivered 2^64-1, ack floor 0,
    /// 8 unprocessed; 2.11.6 "consumer not found"; meta.inf zeroed, 2.10.26 and 2.15.1 "consumer
    /// not found".
    #[test]
    fn a_zeroed_consumer_file_is_loaded_as_each_release_does() {
        let c1 = |r: &Report| {
            r.streams[0]
                .consumers
                .iter()
                .find(|c| c.name == "C1")
                .cloned()
                .unwrap()
        };
        let zeroed = |file: &str| {
            let t = testdata::sample("v2.15.1-plain");
            let p = t
                .path()
                .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS/obs/C1")
                .join(file);
            let n = fs::metadata(&p).unwrap().len() as usize;
            fs::write(&p, vec![0u8; n]).unwrap();
            t
        };
        let orders = |t: &tempfile::TempDir| {
            t.path()
                .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS")
        };
        let t = zeroed("o.dat");
        let old = c1(&run_as(
            &orders(&t),
            Some("2.11.2"),
            crate::base::time::now_ns(),
        ));
        assert!(old.loads, "{old:?}");
        assert_eq!(
            (
                old.delivered_stream_seq,
                old.ack_floor_stream_seq,
                old.num_pending
            ),
            (Some(u64::MAX), Some(0), Some(8))
        );
        let new = c1(&run_as(
            &orders(&t),
            Some("2.11.6"),
            crate::base::time::now_ns(),
        ));
        assert!(!new.loads, "{new:?}");
        let t = zeroed("meta.inf");
        for rel in ["2.10.26", "2.15.1"] {
            let r = run_as(&orders(&t), Some(rel), crate::base::time::now_ns());
            assert!(!c1(&r).loads, "{rel}");
            let p = r
                .problems
                .iter()
                .find(|p| p.kind == Kind::ConsumerMetaCorrupt)
                .unwrap();
            assert!(
                p.message.contains("does not load this consumer"),
                "{}",
                p.message
            );
        }
    }

    /// A 2.15.1 store loaded by 2.9.10 (a downgrade across the format change): the real 2.9.10
    /// on the fixture read the tombstones as messages past 2^62 (KV_config last seq
    /// 4611686018427387909, MULTI ...944, ORDERS ...910) and EMPTY's empty block as first 0.
    /// jetdir says so in `format_too_new` (an error), stream by stream, and leaves the
    /// index.db it does not read alone.
    #[test]
    fn a_store_of_2_10_or_later_is_misread_by_2_9() {
        let t = testdata::sample("v2.15.1-plain");
        let r = run_as(
            &t.path().join("v2.15.1-plain/store"),
            Some("2.9.10"),
            crate::base::time::now_ns(),
        );
        for (name, top) in [
            ("KV_config", 4611686018427387909u64),
            ("MULTI", 4611686018427387944),
            ("ORDERS", 4611686018427387910),
        ] {
            let p = r
                .problems
                .iter()
                .find(|p| p.kind == Kind::FormatTooNew && p.loc.stream.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{name}: {:#?}", r.problems));
            assert!(p.message.contains(&format!("up to {top}")), "{}", p.message);
        }
        let empty = r.streams.iter().find(|s| s.name == "EMPTY").unwrap();
        assert_eq!((empty.first_seq, empty.last_seq), (Some(0), Some(0)));
        assert!(
            !kinds(&r).contains(&"index_db_mismatch"),
            "{:#?}",
            r.problems
        );
        assert_eq!(r.exit_code(), 1);
    }

    /// A stream whose config a release does not support (a field of a later one) is listed
    /// offline by 2.11.9+, not loaded, its files left alone (matrix `from_2.15.1` on 2.11.11:
    /// COUNTER, BATCH, SCHED answer "stream is offline: unsupported - config error: unknown
    /// field"); 2.11.6 loads it without the field.
    #[test]
    fn an_unsupported_config_leaves_the_stream_offline_from_2_11_9() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        set_config(&d, "ORDERS", "allow_msg_counter", true);
        let r = run_as(&d, Some("2.11.11"), crate::base::time::now_ns());
        let l = r.streams[0].load.clone().unwrap();
        assert_eq!(l.verdict, Verdict::Skipped, "{:#?}", r.problems);
        assert!(l.next_step.unwrap().contains("offline"));
        // (repaired: it rebuilds, as it cannot read index.db version 4)
        let r = run_as(&d, Some("2.11.6"), crate::base::time::now_ns());
        assert_eq!(
            r.streams[0].load.as_ref().unwrap().verdict,
            Verdict::Repaired,
            "{:#?}",
            r.problems
        );
    }

    /// A thw.db whose header counts far more entries than it holds is walked to the count by
    /// 2.11.x, 2.12.0-2.12.11 and 2.14.0-2.14.2 at start: the real 2.12.8 with the fixture's
    /// KV_config thw.db (no entries) given a count of 2^36 was not ready after 25 s (with 2^28
    /// on another store it took 3.6 s); 2.14.6 discards the file and starts at once.
    #[test]
    fn a_thw_db_counting_billions_of_entries_stops_the_old_releases() {
        let t = testdata::sample("v2.15.1-plain");
        let store = t.path().join("v2.15.1-plain/store");
        let thw = store.join("jetstream/$G/streams/KV_config/msgs/thw.db");
        let mut b = fs::read(&thw).unwrap();
        b[1..9].copy_from_slice(&(1u64 << 36).to_le_bytes());
        fs::write(&thw, &b).unwrap();
        let stops = |v: &str| {
            let r = run_as(&store, Some(v), crate::base::time::now_ns());
            let hit = r
                .problems
                .iter()
                .any(|p| p.kind == "aux_file_stops_server" && p.message.contains("68719476736"));
            let skipped = r
                .streams
                .iter()
                .all(|s| s.load.as_ref().unwrap().verdict == Verdict::Skipped);
            assert_eq!(hit, skipped, "{v}: {:#?}", r.problems);
            hit
        };
        assert!(stops("2.12.8"));
        assert!(stops("2.11.6"));
        assert!(!stops("2.14.6"));
        assert!(!stops("2.15.1"));
        // a count the decoder walks in seconds: the warning of a damaged file only
        b[1..9].copy_from_slice(&(1u64 << 28).to_le_bytes());
        fs::write(&thw, &b).unwrap();
        assert!(!stops("2.12.8"));
    }

    /// A sched.db whose entries stop before its count (here a header that claims one entry
    /// and nothing after it) panics 2.12.0-2.12.11 and 2.14.0-2.14.2 at start: the real 2.12.8
    /// on this copy of the fixture exits with status 2 before any stream loads (and 2.12.2 and
    /// 2.12.8 on the matrix's `aux_sched_cut`); 2.14.6 logs "Error decoding message scheduling
    /// state: unexpected EOF", rebuilds it and loads ORDERS with its 8 messages.
    #[test]
    fn a_sched_db_that_panics_the_release_stops_the_whole_server() {
        let t = testdata::sample("v2.15.1-plain");
        let store = t.path().join("v2.15.1-plain/store");
        let d = store.join("jetstream/$G/streams/ORDERS");
        set_config(&d, "ORDERS", "allow_msg_schedules", true);
        let mut sched = vec![1u8];
        sched.extend_from_slice(&1u64.to_le_bytes());
        sched.extend_from_slice(&10u64.to_le_bytes());
        fs::write(d.join("msgs/sched.db"), &sched).unwrap();
        let r = run_as(&store, Some("2.12.8"), crate::base::time::now_ns());
        let kinds =
            |r: &Report| -> Vec<&str> { r.problems.iter().map(|p| p.kind.as_str()).collect() };
        assert!(
            kinds(&r).contains(&"aux_file_stops_server"),
            "{:#?}",
            r.problems
        );
        assert_eq!(r.exit_code(), 1);
        for s in &r.streams {
            let l = s.load.as_ref().unwrap();
            assert_eq!(l.verdict, Verdict::Skipped, "{}", s.name);
            assert!(
                l.next_step.as_deref().unwrap().contains("msgs/sched.db"),
                "{}: {:?}",
                s.name,
                l.next_step
            );
        }
        for fixed in ["2.12.12", "2.14.6"] {
            let r = run_as(&store, Some(fixed), crate::base::time::now_ns());
            assert!(!kinds(&r).contains(&"aux_file_stops_server"), "{fixed}");
            assert!(kinds(&r).contains(&"aux_file_corrupt"), "{fixed}");
            let orders = r.streams.iter().find(|s| s.name == "ORDERS").unwrap();
            assert_ne!(orders.load.as_ref().unwrap().verdict, Verdict::Skipped);
            assert_eq!(orders.messages, Some(8));
        }
    }

    /// A consumer whose config a release does not support (an unknown field, a required API
    /// level above its own) makes 2.11.9+ stop its stream on a single server: 2.11.11 and
    /// 2.15.1 on this copy of the fixture answer STREAM.INFO ORDERS with "stream is offline:
    /// stopped - unsupported consumer \"C1\"", serve no message and list the stream offline
    /// (matrix `cmeta_unknown_field`, `cmeta_req_level`). 2.11.6 loads it (it drops the
    /// field and does not check the level). The consumer's meta.sum no release checks.
    #[test]
    fn an_unsupported_consumer_config_stops_its_stream_from_2_11_9() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        let meta = d.join("obs/C1/meta.inf");
        let orig: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
        let edits = [
            ("unknown field", "x_jetdir_unknown", serde_json::json!(true)),
            (
                "API level",
                "metadata",
                serde_json::json!({"_nats.req.level": "99"}),
            ),
        ];
        for (what, key, value) in edits {
            let mut m = orig.clone();
            m[key] = value;
            fs::write(&meta, serde_json::to_vec(&m).unwrap()).unwrap();
            let r = run_as(&d, Some("2.11.11"), crate::base::time::now_ns());
            let l = r.streams[0].load.clone().unwrap();
            assert_eq!(l.verdict, Verdict::Skipped, "{what}: {:#?}", r.problems);
            let next = l.next_step.unwrap();
            assert!(
                next.contains("unsupported consumer \"C1\"") && next.contains("obs/C1"),
                "{what}: {next}"
            );
            let r = run_as(&d, Some("2.11.6"), crate::base::time::now_ns());
            assert_eq!(
                r.streams[0].load.as_ref().unwrap().verdict,
                Verdict::Repaired,
                "{what}: {:#?}",
                r.problems
            );
        }
    }

    /// The time of the first record of a plain block file.
    fn first_ts_of(p: &Path) -> i64 {
        let b = fs::read(p).unwrap();
        i64::from_le_bytes(b[12..20].try_into().unwrap())
    }

    /// The first record of a stream's first block misframed (its length one less; matrix
    /// `flip_first_len`). Under a trusted index.db (2.10+) the server, once it reads the
    /// block, cuts it at offset 0 but keeps the block with index.db's first sequence and
    /// time, so the stream still starts at seq 1, the cut range listed deleted with the
    /// block's own delete (10) twice. The real servers on this copy of the 2.15.1 fixture's
    /// MULTI, after a MSG.GET of every sequence: 2.15.1 and 2.14.6 69 messages, 71716 bytes,
    /// first 1 (seq 1's time), 32 deleted, 1..30 and 40 (right after start they
    /// still report 98: nothing has read the block yet); 2.12.8 cannot read 2.15.1's index.db
    /// and rebuilds: first 31, only 40 deleted. The same of the second block's first record,
    /// and of the second block emptied to 0 bytes, on 2.15.1 after the reads: see below.
    /// 2.9.10 rebuilding the 2.9 fixture's MULTI
    /// without its .idx/.fss takes the damaged record's sequence and time as the first (it
    /// sets them before it checks the checksum): 70 messages, 72780 bytes, first 1 (seq 1's
    /// time), none deleted.
    #[test]
    fn a_misframed_first_record_keeps_the_streams_first_sequence() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t.path().join("v2.15.1-plain/store");
        let state = |r: &Report| {
            let s = r.streams.iter().find(|s| s.name == "MULTI").unwrap();
            (
                s.messages,
                s.bytes,
                s.first_seq,
                s.first_ts,
                s.deleted,
                s.deleted_seqs.clone(),
            )
        };
        // the stream's first time before the damage (the sample's own)
        let ts_2_15 = state(&run_as(&d, Some("2.15.1"), crate::base::time::now_ns())).3;
        flip(&d.join("jetstream/$G/streams/MULTI/msgs/1.blk"), 0);
        let mut listed: Vec<u64> = (1..=30).collect();
        listed.push(40);
        for v in ["2.15.1", "2.14.6"] {
            let r = run_as(&d, Some(v), crate::base::time::now_ns());
            assert_eq!(
                state(&r),
                (
                    Some(69),
                    Some(71716),
                    Some(1),
                    ts_2_15,
                    Some(32),
                    listed.clone()
                ),
                "{v}"
            );
            // the consumers' floors stay where they were: the stream still starts at 1
            assert!(!kinds(&r).contains(&"consumer_floor_moved"), "{v}");
        }
        let r = run_as(&d, Some("2.12.8"), crate::base::time::now_ns());
        assert_eq!(
            (state(&r).0, state(&r).2, state(&r).4, state(&r).5),
            (Some(69), Some(31), Some(1), vec![40])
        );
        // the first block emptied to 0 bytes: no data, so the server drops its messages and
        // moves its first sequence past them, keeping its first time (2.15.1: first 31 at
        // seq 1's time, 40 deleted)
        let t = testdata::sample("v2.15.1-plain");
        let d = t.path().join("v2.15.1-plain/store");
        fs::write(d.join("jetstream/$G/streams/MULTI/msgs/1.blk"), b"").unwrap();
        let s = state(&run_as(&d, Some("2.15.1"), crate::base::time::now_ns()));
        assert_eq!(
            (s.0, s.2, s.3, s.4, s.5),
            (Some(69), Some(31), ts_2_15, Some(1), vec![40])
        );
        // the second block's first record instead: the block's delete (40) counted twice
        // (2.15.1: 32 deleted, 10 and 31..60); the second block emptied to 0 bytes: the
        // server clears its delete map (31)
        let mut listed: Vec<u64> = vec![10];
        listed.extend(31..=60);
        for (how, deleted) in [("flip", 32), ("empty", 31)] {
            let t = testdata::sample("v2.15.1-plain");
            let d = t.path().join("v2.15.1-plain/store");
            let blk = d.join("jetstream/$G/streams/MULTI/msgs/2.blk");
            if how == "flip" {
                flip(&blk, 0);
            } else {
                fs::write(&blk, b"").unwrap();
            }
            let s = state(&run_as(&d, Some("2.15.1"), crate::base::time::now_ns()));
            assert_eq!(
                (s.0, s.2, s.4, s.5),
                (Some(69), Some(1), Some(deleted), listed.clone()),
                "{how}"
            );
        }

        let t = testdata::sample("v2.9.10-legacy");
        let d = t.path().join("v2.9.10-legacy/store");
        let ts_2_9 = state(&run_as(&d, Some("2.9.10"), crate::base::time::now_ns())).3;
        let m = d.join("jetstream/$G/streams/MULTI/msgs");
        for e in std::fs::read_dir(&m).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "idx" || x == "fss") {
                std::fs::remove_file(p).unwrap();
            }
        }
        flip(&m.join("1.blk"), 0);
        let r = run_as(&d, Some("2.9.10"), crate::base::time::now_ns());
        let s = state(&r);
        assert_eq!(
            (s.0, s.1, s.2, s.3, s.4),
            (Some(70), Some(72780), Some(1), ts_2_9, Some(0))
        );
        // its first block emptied, .idx kept: 2.9's rebuild keeps the stale .idx's first
        // sequence and time (2.9.10: 69 messages, first 1 at seq 1's time, 10 and 40 deleted)
        let t = testdata::sample("v2.9.10-legacy");
        let d = t.path().join("v2.9.10-legacy/store");
        fs::write(d.join("jetstream/$G/streams/MULTI/msgs/1.blk"), b"").unwrap();
        let s = state(&run_as(&d, Some("2.9.10"), crate::base::time::now_ns()));
        assert_eq!(
            (s.0, s.2, s.3, s.4, s.5),
            (Some(69), Some(1), ts_2_9, Some(2), vec![10, 40])
        );
    }

    /// An empty o.dat is a state of zeros (the server sees the file and reads nothing):
    /// delivered 0 and ack floor 0, every message of the stream unprocessed; never "not
    /// modelled" (matrix `clean` 2.10.26, INTEREST and WQ).
    #[test]
    fn an_empty_o_dat_is_a_state_of_zeros() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        fs::write(d.join("obs/C1/o.dat"), b"").unwrap();
        let r = run(&d, false);
        let s = &r.streams[0];
        let c1 = s.consumers.iter().find(|c| c.name == "C1").unwrap();
        assert_eq!(
            (
                c1.delivered_stream_seq,
                c1.ack_floor_stream_seq,
                c1.num_pending,
                c1.state_from.as_deref()
            ),
            (Some(0), Some(0), s.messages, Some("o.dat")),
            "{c1:#?}"
        );
    }

    /// 2.9 regenerates a block's subject counts when its .fss's total is not the .idx's
    /// message count (matrix `kill_idle` WQ: seq 1 acknowledged and removed after the .fss
    /// was written): the counts come from the block's live records then, not the .fss.
    #[test]
    fn fss_total_off_the_idx_count_is_regenerated_29() {
        let t = testdata::sample("v2.9.10-legacy");
        let d = t
            .path()
            .join("v2.9.10-legacy/store/jetstream/$G/streams/ORDERS");
        let opts = Options {
            target: crate::state::load::Target {
                release: Some("2.9.10".parse().unwrap()),
                at_ns: crate::base::time::now_ns(),
            },
            ..Default::default()
        };
        let before = verify_store(&d, &opts, &NoProgress).unwrap();
        let counts = before.streams[0].subject_counts.clone();
        assert_eq!(counts.values().sum::<u64>(), 8, "{counts:?}");
        // seq 1 removed from the .idx (first seq moves up), the .fss left as it was
        let idx = d.join("msgs/1.idx");
        let mut x = crate::filestore::legacy::parse_idx(&fs::read(&idx).unwrap()).unwrap();
        assert_eq!((x.first_seq, x.msgs), (1, 8));
        x.first_seq = 2;
        x.msgs = 7;
        assert!(x.consistent());
        fs::write(&idx, crate::filestore::legacy::encode_idx(&x)).unwrap();
        let r = verify_store(&d, &opts, &NoProgress).unwrap();
        let s = &r.streams[0];
        assert_eq!(
            (s.messages, s.first_seq),
            (Some(7), Some(2)),
            "{:#?}",
            r.problems
        );
        // seq 1's subject counts one fewer; the .fss disagreeing is the warning
        let first_subject =
            crate::filestore::block::Records::new(&fs::read(d.join("msgs/1.blk")).unwrap())
                .next()
                .unwrap()
                .unwrap()
                .subject
                .to_vec();
        let mut want = counts.clone();
        *want
            .get_mut(&String::from_utf8(first_subject).unwrap())
            .unwrap() -= 1;
        want.retain(|_, n| *n > 0);
        assert_eq!(s.subject_counts, want);
        assert!(kinds(&r).contains(&"fss_mismatch"), "{:?}", kinds(&r));
    }

    /// The subject length is outside the record checksum: a damaged one gives a subject the
    /// stream's filters do not match, which the server serves silently (fidelity F7).
    #[test]
    fn a_subject_outside_the_streams_subjects_is_a_warning() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        let blk = d.join("msgs/1.blk");
        let mut b = fs::read(&blk).unwrap();
        assert_eq!(&b[22..32], b"orders.new");
        b[20] = 2; // subject length 10 -> 2: "or"
        fs::write(&blk, b).unwrap();
        fs::remove_file(d.join("msgs/index.db")).unwrap();
        let r = run(&d, false);
        let p = r
            .problems
            .iter()
            .find(|p| p.kind == "subject_outside_stream")
            .unwrap_or_else(|| panic!("{:#?}", r.problems));
        assert!(p.message.contains("\"or\""), "{}", p.message);
        assert_eq!(r.streams[0].subject_counts.get("or"), Some(&1));
    }

    #[test]
    fn missing_block_is_reported_with_its_sequences() {
        let t = testdata::sample("v2.15.1-plain");
        fs::remove_file(multi(&t).join("msgs/2.blk")).unwrap();
        let rep = run(&multi(&t), false);
        let p = rep
            .problems
            .iter()
            .find(|p| p.kind == "index_db_missing_block")
            .unwrap_or_else(|| panic!("{:#?}", rep.problems));
        assert_eq!(p.loc.file.as_deref(), Some("msgs/2.blk"));
        assert_eq!((p.loc.seq, p.loc.seq_end), (Some(31), Some(60)));
        assert_eq!(rep.exit_code(), 1);
    }

    #[test]
    fn stale_index_db_is_a_warning() {
        // Append one more valid record to the last block, as a server that died before
        // flushing index.db leaves it.
        let t = testdata::sample("v2.15.1-plain");
        let blk = multi(&t).join("msgs/4.blk");
        let mut b = fs::read(&blk).unwrap();
        crate::filestore::block::encode_record(
            &mut b,
            &crate::filestore::block::block_key("MULTI", 4),
            101,
            1_764_000_000_000_000_000,
            b"multi.1",
            None,
            b"late",
        );
        fs::write(&blk, b).unwrap();
        let rep = run(&multi(&t), false);
        assert!(
            kinds(&rep).contains(&"index_db_stale"),
            "{:#?}",
            rep.problems
        );
        assert_eq!(rep.exit_code(), 0, "{:#?}", rep.problems);
        assert_eq!(rep.streams[0].messages, Some(99));
        assert_eq!(rep.streams[0].last_seq, Some(101));
    }

    #[test]
    fn damaged_index_db_and_meta_sum() {
        let t = testdata::sample("v2.15.1-plain");
        let d = multi(&t);
        let len = fs::metadata(d.join("msgs/index.db")).unwrap().len() as usize;
        flip(&d.join("msgs/index.db"), len / 2);
        fs::write(d.join("meta.sum"), b"0000000000000000").unwrap();
        let rep = run(&d, false);
        let k = kinds(&rep);
        assert!(k.contains(&"index_db_checksum"), "{k:?}");
        let p = rep
            .problems
            .iter()
            .find(|p| p.kind == "meta_sum_mismatch")
            .unwrap();
        assert_eq!(p.loc.file.as_deref(), Some("meta.sum"));
        // the state still comes from the blocks (tombstones for 10 and 40 are in 4.blk)
        assert_eq!(rep.streams[0].messages, Some(98));
        assert_eq!(rep.exit_code(), 1);
    }

    #[test]
    fn consumer_past_the_stream() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        let mut st = consumer_state::parse(&fs::read(d.join("obs/C2/o.dat")).unwrap())
            .unwrap()
            .unwrap();
        st.delivered.stream_seq = 50;
        st.delivered.consumer_seq = 50;
        fs::write(d.join("obs/C2/o.dat"), consumer_state::encode(&st)).unwrap();
        fs::write(d.join("obs/C1/o.dat"), b"\x16\x02\xff").unwrap();
        let rep = run(&d, false);
        let p = rep
            .problems
            .iter()
            .find(|p| p.kind == "consumer_past_stream")
            .unwrap();
        assert_eq!(p.loc.consumer.as_deref(), Some("C2"));
        assert_eq!(p.loc.file.as_deref(), Some("obs/C2/o.dat"));
        let p = rep
            .problems
            .iter()
            .find(|p| p.kind == "consumer_state_corrupt")
            .unwrap();
        assert_eq!(p.loc.consumer.as_deref(), Some("C1"));
        assert_eq!(rep.exit_code(), 1);
    }

    #[test]
    fn garbage_and_empty_files_never_panic() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        let blk = fs::read(d.join("msgs/1.blk")).unwrap();
        let mut rng = 0x9e3779b97f4a7c15u64;
        for i in 0..300 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut b = blk.clone();
            match i % 3 {
                0 => {
                    let at = (rng as usize) % b.len();
                    b[at] = (rng >> 32) as u8;
                }
                1 => b.truncate((rng as usize) % b.len()),
                _ => {
                    let at = (rng as usize) % (b.len() - 4);
                    b[at..at + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
                }
            }
            fs::write(d.join("msgs/1.blk"), &b).unwrap();
            let _ = run(&d, false);
        }
        for f in [
            "meta.inf",
            "msgs/index.db",
            "obs/C1/o.dat",
            "obs/C1/meta.inf",
            "msgs/1.blk",
        ] {
            fs::write(d.join(f), b"").unwrap();
            let _ = run(&d, false);
        }
    }

    #[test]
    fn damaged_ttl_wheel_is_a_warning() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/KV_config");
        assert!(run(&d, false).problems.is_empty());
        fs::write(d.join("msgs/thw.db"), b"\x01\x05").unwrap();
        let rep = run(&d, false);
        let p = rep
            .problems
            .iter()
            .find(|p| p.kind == "aux_file_corrupt")
            .unwrap();
        assert_eq!(p.loc.file.as_deref(), Some("msgs/thw.db"));
        assert_eq!(rep.exit_code(), 0);
    }

    /// Random damage to every kind of file of both layouts: problems or a clean run, never a panic.
    #[test]
    fn random_damage_to_every_file_kind_never_panics() {
        for (sample, stream) in [
            ("v2.15.1-plain", "ORDERS"),
            ("v2.9.10-legacy", "ORDERS"),
            ("v2.15.1-s2", "CMP"),
        ] {
            let t = testdata::sample(sample);
            let d = t
                .path()
                .join(sample)
                .join("store/jetstream/$G/streams")
                .join(stream);
            let files: Vec<PathBuf> = walkdir::WalkDir::new(&d)
                .into_iter()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .collect();
            let mut rng = 0x2545f4914f6cdd1du64;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            for f in &files {
                let orig = fs::read(f).unwrap();
                let mut reported = 0;
                for _ in 0..40 {
                    let mut b = orig.clone();
                    match next() % 4 {
                        0 if !b.is_empty() => {
                            let i = next() as usize % b.len();
                            b[i] ^= 1 << (next() % 8);
                        }
                        1 => b.truncate(next() as usize % (b.len() + 1)),
                        2 if b.len() > 8 => {
                            let i = next() as usize % (b.len() - 8);
                            b[i..i + 8].copy_from_slice(&u64::MAX.to_le_bytes());
                        }
                        _ => b.extend_from_slice(&next().to_le_bytes()),
                    }
                    fs::write(f, &b).unwrap();
                    // Not panicking is the point; the report must still be consistent.
                    let rep = run(&d, false);
                    assert_eq!(rep.ok, rep.exit_code() == 0, "{}: {rep:?}", f.display());
                    reported += usize::from(!rep.problems.is_empty());
                }
                assert!(reported > 0, "no damage to {} was reported", f.display());
                fs::write(f, &orig).unwrap();
            }
            assert_eq!(run(&d, false).exit_code(), 0, "{sample} restored");
        }
    }

    #[test]
    fn not_a_store_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(
            verify_store(t.path(), &Options::default(), &NoProgress),
            Err(discover::LayoutError::NotAStore(_))
        ));
        assert!(matches!(
            verify_store(&t.path().join("x"), &Options::default(), &NoProgress),
            Err(discover::LayoutError::Missing(_))
        ));
    }

    #[test]
    fn verify_changes_nothing() {
        let t = testdata::sample("v2.15.1-plain");
        let snap = |p: &Path| -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
            let mut v: Vec<_> = walkdir::WalkDir::new(p)
                .into_iter()
                .filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().unwrap();
                    (
                        e.path().display().to_string(),
                        if m.is_file() {
                            fs::read(e.path()).unwrap()
                        } else {
                            vec![]
                        },
                        m.modified().unwrap(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let before = snap(t.path());
        let _ = run(t.path().join("v2.15.1-plain/store").as_path(), false);
        assert!(before == snap(t.path()), "verify modified the store");
    }
}
