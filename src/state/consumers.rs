//! Consumers at load: the state a nats-server release gives each consumer of a stream once it
//! has loaded the stream's files.
//!
//! Facts (nats-server `server/consumer.go`: `selectStartingSeqNo`, `readStoredState`,
//! `applyState`, `checkRedelivered`, `checkAckFloor`, `processAckMsg`/`moveAckFloor`,
//! `reconcileStateWithStream`; tags v2.10.26 to v2.14.5; seen by the differential matrix,
//! `tests/matrix-findings.md` M12):
//! - Without `o.dat` (2.10 writes none for a consumer that never delivered) the server picks
//!   the start from the deliver policy against the loaded stream (all → first seq, last → last
//!   seq or the last matching the filter, new → last + 1, by_start_sequence, by_start_time,
//!   last_per_subject), clamped into [first, last + 1]; delivered is (0, start − 1), the ack
//!   floor (0, 0).
//! - 2.14+: a consumer with one replica whose delivered stream seq is past the stream's last
//!   seq is reconciled ("delivered sequence N past last stream sequence of M"): an ack floor
//!   past the stream drops to the last seq with every pending ack; pending acks past the
//!   stream are dropped; delivered goes back to the highest pending (or to the ack floor).
//!   Earlier releases keep the state: the consumer skips new messages up to its old delivered.
//! - Redelivery counts at or below the ack floor or past the stream are dropped.
//! - `checkPending` (2.10+ when the consumer starts, 2.9 when its pending timer first fires,
//!   0.5 to 1.5 s later): pending acks below the stream's first seq (2.10+: or at or below the
//!   ack floor) are dropped; 2.10+ raise the ack floor to the highest dropped, and to delivered
//!   when none is left.
//! - 2.10.0 to 2.11.2 (`checkAckFloor`, right after): when the stream's first seq is past ack
//!   floor + 1, pending acks below it are terminated as if acked (explicit: floor moves to just
//!   below the next pending; all: floor moves to the acked one), and when the floor is still 50
//!   or more behind the first seq it is set to just below the lowest pending (or to delivered,
//!   at least first − 1). Later releases run the same code, but it moves only the consumer's
//!   in-memory floors, not its stored state, and from 2.11.3 (commit 237b8a7, "Consistent
//!   filtered consumer state reporting") CONSUMER.INFO reports delivered and ack floor from the
//!   stored state for every consumer, not only replicated ones: the floors are seen kept
//!   (matrix `kill_mid`, every release 2.11.3 to 2.15.1: floors kept at 16 with first seq
//!   36286; 2.11.0 to 2.11.2 and 2.10.x: raised to first − 1), also after their periodic check
//!   (every 1 to 2 minutes): kept for 190 s after the start on 2.11.11 and 2.12.8, 150 s on
//!   2.15.1 (`tests/support/ackfloor_watch.py`).
//! - When the release is not known, 2.10+'s `checkPending` is modelled and neither the 2.14
//!   reset nor `checkAckFloor`.
use crate::base::release::Release;
use crate::base::subject;
use crate::filestore::block::{self, RecordKind};
use crate::filestore::consumer_state::{ConsumerState, SeqPair};
use crate::filestore::source::StreamSource;
use crate::state::scan::BlockScan;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

/// `deliver_policy` of a consumer config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverPolicy {
    All,
    Last,
    New,
    ByStartSequence,
    ByStartTime,
    LastPerSubject,
}

/// `ack_policy` of a consumer config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPolicy {
    None,
    All,
    Explicit,
}

/// What the load needs of a consumer's config (meta.inf).
#[derive(Debug, Clone)]
pub struct ConsumerCfg {
    pub deliver: DeliverPolicy,
    pub opt_start_seq: u64,
    pub opt_start_time_ns: Option<i64>,
    /// `filter_subject` and `filter_subjects`; empty: every subject.
    pub filters: Vec<String>,
    pub ack: AckPolicy,
    /// Replicas: the consumer's `num_replicas`, else the stream's, else 1.
    pub replicas: i64,
}

impl ConsumerCfg {
    /// From a consumer's meta.inf and its stream's config.
    pub fn of(
        cfg: &serde_json::Map<String, serde_json::Value>,
        stream_cfg: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> ConsumerCfg {
        let s = |k: &str| cfg.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let deliver = match s("deliver_policy") {
            "last" => DeliverPolicy::Last,
            "new" => DeliverPolicy::New,
            "by_start_sequence" => DeliverPolicy::ByStartSequence,
            "by_start_time" => DeliverPolicy::ByStartTime,
            "last_per_subject" => DeliverPolicy::LastPerSubject,
            _ => DeliverPolicy::All,
        };
        let ack = match s("ack_policy") {
            "none" => AckPolicy::None,
            "all" => AckPolicy::All,
            _ => AckPolicy::Explicit,
        };
        let mut filters: Vec<String> = Vec::new();
        if !s("filter_subject").is_empty() {
            filters.push(s("filter_subject").to_string());
        }
        if let Some(fs) = cfg.get("filter_subjects").and_then(|v| v.as_array()) {
            filters.extend(fs.iter().filter_map(|v| v.as_str()).map(str::to_string));
        }
        let own = cfg
            .get("num_replicas")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let stream = stream_cfg
            .and_then(|c| c.get("num_replicas"))
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let replicas = if own > 0 { own } else { stream.max(1) };
        ConsumerCfg {
            deliver,
            opt_start_seq: cfg
                .get("opt_start_seq")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            opt_start_time_ns: cfg
                .get("opt_start_time")
                .and_then(|v| v.as_str())
                .and_then(crate::base::time::parse_rfc3339),
            filters,
            ack,
            replicas,
        }
    }
}

/// A visitor of live messages: (seq, subject, timestamp); `Break` stops the walk.
pub type Visit<'a> = dyn FnMut(u64, &[u8], i64) -> ControlFlow<()> + 'a;

/// The loaded stream, as the consumers see it.
pub trait StreamView {
    /// First and last sequence after the load (first = last + 1 when empty).
    fn first_last(&self) -> (u64, u64);
    /// `max_msgs_per_subject` of the stream (0: none).
    fn max_per_subject(&self) -> i64;
    /// Every live message in sequence order: (seq, subject, timestamp) until `f` breaks.
    fn walk(&self, f: &mut Visit);
    /// `(live messages, live messages at or above from)` without a walk, when the view
    /// knows them and a walk would visit exactly those messages; `None`: walk instead.
    fn count_live_from(&self, _from: u64) -> Option<(u64, u64)> {
        None
    }
    /// Like [`StreamView::walk`], but the view may leave out messages below `from` (whole
    /// blocks of them, where it knows where they are).
    fn walk_from(&self, _from: u64, f: &mut Visit) {
        self.walk(f)
    }
    /// The server's own count ([`crate::state::pending::ServerPending`]) for a consumer whose
    /// next sequence is `start` and whose filters are `filters`, when the view models it
    /// (a trusted index with damaged records); `None`: count the messages.
    fn server_pending(&self, _start: u64, _filters: &[String]) -> Option<u64> {
        None
    }
    /// Messages per subject as a trusted index.db counts them, and the blocks holding
    /// messages it counts that no readable record shows (a block gone, undecodable or cut
    /// short) as (first seq, last seq, such messages): the server's pending counts include
    /// them.
    fn index_subject_totals(&self) -> Option<&IndexTotals> {
        None
    }
}

/// See [`StreamView::index_subject_totals`].
#[derive(Debug, Clone, Default)]
pub struct IndexTotals {
    /// Messages per subject as index.db counts them.
    pub subjects: HashMap<Vec<u8>, u64>,
    /// Blocks with messages no readable record shows: (first seq, last seq, such messages).
    pub blind: Vec<(u64, u64, u64)>,
}

/// A stream view over block scans, re-reading the blocks on demand.
pub struct ScannedStream<'a> {
    pub first: u64,
    pub last: u64,
    pub max_per_subject: i64,
    pub scans: &'a [BlockScan],
    pub src: &'a dyn StreamSource,
    /// See [`StreamView::index_subject_totals`].
    pub index_totals: Option<IndexTotals>,
    /// See [`StreamView::server_pending`].
    pub server: Option<crate::state::pending::ServerPending<'a>>,
    /// 2.9's count for a consumer without a filter (`fileStore.FilteredState`, v2.9.10): by
    /// sequence arithmetic, last − start + 1 less the sequences its delete maps hold in that
    /// range (these, sorted). Sequences a block lost or that lie between blocks stay counted
    /// (matrix `blk_missing_mid`, 2.9.10: C_ALL 85 with a block of 30 gone).
    pub legacy_deleted: Option<Vec<u64>>,
    /// 2.9's count for a consumer with one filter without wildcards: see [`LegacyBlocks`].
    pub legacy_blocks: Option<LegacyBlocks<'a>>,
}

/// 2.9's count for a consumer with one filter subject without wildcards (`FilteredState` and
/// `filteredPendingLocked`, v2.9.10): block by block (by index) from the first whose last seq
/// is at or after the start, the block's per-subject state for the subject, from its `.fss`
/// when 2.9 trusts that (which counts records that no longer read back: matrix
/// `flip_last_len`, C_FILT 9 where 8 messages read back), else from the records that read
/// back: nothing when the subject's last is before the start; its messages when the start is
/// at or before its first; its messages less those before the start when its sequences are
/// contiguous; otherwise the block is read, and either the matching records that read back
/// from the start to the subject's last are counted, or (when fewer sequences lie before the
/// start than after it, from the block's first) the subject's messages less the matching
/// records that read back before the start.
pub struct LegacyBlocks<'a> {
    /// Per block in index order: its first and last seq as 2.9 has them, and its `.fss` when
    /// 2.9 takes its counts from it.
    pub blocks: Vec<(u64, u64, Option<&'a crate::filestore::legacy::LegacyFss>)>,
}

impl ScannedStream<'_> {
    /// See [`LegacyBlocks`]. `None` when the blocks cannot be read again (a stream inside an
    /// archive, read once): the count is then left to [`num_pending`].
    fn legacy_filtered(&self, lb: &LegacyBlocks, start: u64, subj: &[u8]) -> Option<u64> {
        if !self.scans.iter().all(|s| self.src.can_refetch(&s.file)) {
            return None;
        }
        let sseq = start.max(self.first);
        if sseq > self.last {
            return Some(0);
        }
        let blocks: Vec<_> = lb.blocks.iter().filter(|b| b.1 >= sseq).collect();
        // the matching records that read back, per block: (before the start, from it on)
        let mut read = vec![(0u64, 0u64); blocks.len()];
        let from = blocks.iter().map(|b| b.0).min().unwrap_or(sseq).min(sseq);
        let mut cur = 0usize; // the walk goes block by block: the last block matched first
        self.walk_from(from, &mut |q, s, _| {
            if s == subj {
                let holds = |b: &&(u64, u64, _)| b.0 <= q && q <= b.1;
                let at = if blocks.get(cur).is_some_and(holds) {
                    Some(cur)
                } else {
                    blocks.iter().position(holds)
                };
                if let Some(i) = at {
                    cur = i;
                    if q < sseq {
                        read[i].0 += 1;
                    } else {
                        read[i].1 += 1;
                    }
                }
            }
            ControlFlow::Continue(())
        });
        let mut total = 0u64;
        for (i, &&(bfirst, _, fss)) in blocks.iter().enumerate() {
            let Some(e) = fss.and_then(|f| f.subjects.iter().find(|e| e.subject == subj)) else {
                // its state built from the records that read back: exactly those from the start
                total += read[i].1;
                continue;
            };
            let (msgs, first, last) = (e.msgs, e.first_seq, e.last_seq);
            if msgs == 0 || sseq > last {
                continue;
            }
            if sseq <= first {
                total += msgs;
            } else if msgs == last - first + 1 {
                total += msgs - (sseq - first);
            } else if last - sseq < sseq.saturating_sub(bfirst) {
                total += read[i].1;
            } else {
                total += msgs.saturating_sub(read[i].0);
            }
        }
        Some(total)
    }
}

impl StreamView for ScannedStream<'_> {
    fn first_last(&self) -> (u64, u64) {
        (self.first, self.last)
    }
    fn index_subject_totals(&self) -> Option<&IndexTotals> {
        self.index_totals.as_ref()
    }
    fn server_pending(&self, start: u64, filters: &[String]) -> Option<u64> {
        if let (Some(deleted), true) = (&self.legacy_deleted, filters.is_empty()) {
            let s = start.max(self.first);
            if s > self.last {
                return Some(0);
            }
            let lo = deleted.partition_point(|&d| d < s);
            let hi = deleted.partition_point(|&d| d <= self.last);
            return Some((self.last - s + 1).saturating_sub((hi - lo) as u64));
        }
        if let (Some(lb), [f]) = (&self.legacy_blocks, filters) {
            if !crate::base::subject::has_wildcard(f.as_bytes()) {
                if let Some(n) = self.legacy_filtered(lb, start, f.as_bytes()) {
                    return Some(n);
                }
            }
        }
        Some(self.server.as_ref()?.count(start, filters))
    }
    fn max_per_subject(&self) -> i64 {
        self.max_per_subject
    }
    /// From the scans' live bits, without reading the blocks again, when every block with
    /// live messages would be walked whole: the source can read it again (an archive's
    /// blocks it cannot: no count then, as without this), it decoded, and its framing is
    /// intact (a walk stops at a framing error).
    fn count_live_from(&self, from: u64) -> Option<(u64, u64)> {
        let live: Vec<&BlockScan> = self.scans.iter().filter(|s| s.msgs > 0).collect();
        if live
            .iter()
            .any(|s| s.unreadable || s.damage.is_some_and(|d| d.framing))
        {
            return None;
        }
        if !live.iter().all(|s| self.src.can_refetch(&s.file)) {
            return None;
        }
        Some(live.iter().fold((0, 0), |(a, b), s| {
            (
                a + s.live_bits.count_from(0),
                b + s.live_bits.count_from(from),
            )
        }))
    }
    fn walk(&self, f: &mut Visit) {
        self.walk_from(0, f)
    }
    /// Skips the blocks whose live messages all lie below `from`, without reading them.
    fn walk_from(&self, from: u64, f: &mut Visit) {
        let wanted = |s: &&BlockScan| s.msgs > 0 && s.live_bits.last().is_some_and(|l| l >= from);
        for s in self.scans.iter().filter(wanted) {
            let mut scratch = Vec::new();
            let Some((Ok((plain, _)), _)) =
                self.src
                    .fetch_block(&s.file, Default::default(), &mut scratch)
            else {
                continue;
            };
            for r in block::Records::new(&plain).map_while(|r| r.ok()) {
                if r.kind() != RecordKind::Message || !s.live_bits.get(r.seq) {
                    continue;
                }
                if f(r.seq, r.subject, r.ts).is_break() {
                    return;
                }
            }
        }
    }
}

fn matches_any(filters: &[String], subj: &[u8]) -> bool {
    filters.is_empty() || filters.iter().any(|f| subject::matches(f.as_bytes(), subj))
}

/// The next sequence to deliver of a consumer without stored state (`selectStartingSeqNo`).
pub fn starting_seq(cfg: &ConsumerCfg, stream: &dyn StreamView) -> u64 {
    let (first, last) = stream.first_last();
    let mut sseq = if cfg.opt_start_seq > 0 {
        cfg.opt_start_seq
    } else {
        match cfg.deliver {
            DeliverPolicy::All => first,
            DeliverPolicy::Last if cfg.filters.is_empty() => last,
            DeliverPolicy::Last => {
                let mut m = 0;
                stream.walk(&mut |seq, subj, _| {
                    if matches_any(&cfg.filters, subj) {
                        m = seq;
                    }
                    ControlFlow::Continue(())
                });
                m
            }
            DeliverPolicy::LastPerSubject if stream.max_per_subject() == 1 => first,
            DeliverPolicy::LastPerSubject => {
                let mut lasts: HashMap<Vec<u8>, u64> = HashMap::new();
                stream.walk(&mut |seq, subj, _| {
                    if matches_any(&cfg.filters, subj) {
                        lasts.insert(subj.to_vec(), seq);
                    }
                    ControlFlow::Continue(())
                });
                lasts.values().copied().min().unwrap_or(last)
            }
            _ if cfg.opt_start_time_ns.is_some() => {
                let t = cfg.opt_start_time_ns.unwrap_or(0);
                let mut found = last + 1;
                stream.walk(&mut |seq, _, ts| {
                    if ts >= t {
                        found = seq;
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                });
                found
            }
            _ => last + 1,
        }
    };
    if first == 0 {
        sseq = 1;
    } else if sseq < first {
        sseq = first;
    } else if sseq > last {
        sseq = last + 1;
    }
    sseq
}

/// The consumer's unprocessed messages (`num_pending`, natscli's "Unprocessed"), as the
/// server's `fileStore.NumPending(sseq, filter, lastPerSubject)` counts them
/// (`consumer.go` `calculateNumPending`): live messages at or after the next sequence to
/// deliver (`delivered_stream_seq + 1`, raised to the first seq) that match the consumer's
/// filters; for `deliver_policy: last_per_subject`, the subjects whose last message is there.
/// `None` when the messages cannot be read again (a stream inside an archive, read once).
pub fn num_pending(
    cfg: &ConsumerCfg,
    delivered_stream_seq: u64,
    stream: &dyn StreamView,
) -> Option<u64> {
    let (first, last) = stream.first_last();
    let sseq = delivered_stream_seq.saturating_add(1).max(first);
    if sseq > last || last == 0 {
        return Some(0);
    }
    let per_subject = cfg.deliver == DeliverPolicy::LastPerSubject;
    if !per_subject {
        let start = delivered_stream_seq.saturating_add(1);
        if let Some(n) = stream.server_pending(start, &cfg.filters) {
            return Some(n);
        }
    }
    if let (
        Some(IndexTotals {
            subjects: totals,
            blind,
        }),
        false,
    ) = (stream.index_subject_totals(), per_subject)
    {
        // the readable messages at or after the start, plus the index's messages no record
        // shows, in the share of them at or after the start (2.10.26 and 2.11.6 with a block
        // gone, undecodable or cut short: matrix `blk_missing_mid`, `clean` CMP)
        let total: u64 = totals
            .iter()
            .filter(|(s, _)| matches_any(&cfg.filters, s))
            .map(|(_, n)| n)
            .sum();
        let (mut known, mut after) = (0u64, 0u64);
        stream.walk(&mut |seq, subj, _| {
            if matches_any(&cfg.filters, subj) {
                known += 1;
                after += u64::from(seq >= sseq);
            }
            ControlFlow::Continue(())
        });
        // a block the server cannot read counts whole once it ends at or after the start (it
        // falls back to the block's totals: C_EXPL delivered 31 counts all of 31..60)
        let unknown = total.saturating_sub(known);
        let all: u64 = blind.iter().map(|b| b.2).sum();
        let counted: u64 = blind.iter().filter(|b| b.1 >= sseq).map(|b| b.2).sum();
        let share = if all == 0 {
            0
        } else {
            ((u128::from(unknown) * u128::from(counted) + u128::from(all) / 2) / u128::from(all))
                as u64
        };
        return Some(after + share);
    }
    // No filter: every live message at or above sseq counts, which the view may know
    // without reading the blocks again (verify would otherwise read every block twice).
    if cfg.filters.is_empty() && !per_subject {
        if let Some((all, from)) = stream.count_live_from(sseq) {
            if all == 0 && first > 0 && first <= last {
                return None;
            }
            return Some(from);
        }
    }
    // Only messages at or above sseq count: a caught-up consumer needs the last blocks only.
    // A walk from sseq that sees nothing leaves the verdict (none there, or unreadable) to
    // the whole walk below.
    if !per_subject {
        let (mut n, mut seen) = (0u64, false);
        stream.walk_from(sseq, &mut |seq, subj, _| {
            seen = true;
            if seq >= sseq && matches_any(&cfg.filters, subj) {
                n += 1;
            }
            ControlFlow::Continue(())
        });
        if seen {
            return Some(n);
        }
    }
    let mut n = 0u64;
    let mut seen = false;
    let mut lasts: HashMap<Vec<u8>, u64> = HashMap::new();
    stream.walk(&mut |seq, subj, _| {
        seen = true;
        if matches_any(&cfg.filters, subj) {
            if per_subject {
                lasts.insert(subj.to_vec(), seq);
            } else if seq >= sseq {
                n += 1;
            }
        }
        ControlFlow::Continue(())
    });
    // the first seq is a live message: a walk that sees none could not read the blocks
    if !seen && first > 0 && first <= last {
        return None;
    }
    if per_subject {
        n = lasts.values().filter(|&&q| q >= sseq).count() as u64;
    }
    Some(n)
}

/// What the load changed in one consumer's state, for the findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerChanges {
    /// No o.dat: the start was derived from the deliver policy.
    pub derived_start: bool,
    /// 2.14+ reconciled a consumer delivered past the stream.
    pub reconciled: bool,
    /// The release keeps a delivered seq past the stream (before 2.14).
    pub kept_past_stream: bool,
    /// Pending acks below the stream's first seq, terminated at start.
    pub terminated: Vec<u64>,
    /// The ack floor was raised towards the stream's first seq.
    pub floor_raised: bool,
    /// Redelivery counts dropped.
    pub redelivered_dropped: u64,
}

/// The server's consumer state after the load. `state` is o.dat's (`None`: no o.dat);
/// `release` the release modelled (`None`: the newest behaviour).
pub fn at_load(
    cfg: &ConsumerCfg,
    state: Option<&ConsumerState>,
    stream: &dyn StreamView,
    release: Option<&Release>,
) -> (ConsumerState, ConsumerChanges) {
    let mut ch = ConsumerChanges::default();
    let (first, last) = stream.first_last();
    let since = |maj, min| release.is_none_or(|r| r.base() >= Release::new(2, maj, min));
    let mut st = match state {
        Some(s) => s.clone(),
        None => {
            ch.derived_start = true;
            let sseq = starting_seq(cfg, stream);
            // without a stored state the server stores its start (`SetStarting`): 2.14+ as
            // both delivered and ack floor, earlier releases as delivered only (matrix
            // `from_2.10.26+noidx`: C_PUSH, deliver last, no o.dat, ack floor 99 on 2.14.6
            // and 2.15.1)
            let floor = if since(14, 0) {
                sseq.saturating_sub(1)
            } else {
                0
            };
            ConsumerState {
                version: 2,
                ack_floor: SeqPair {
                    consumer_seq: 0,
                    stream_seq: floor,
                },
                delivered: SeqPair {
                    consumer_seq: 0,
                    stream_seq: sseq.saturating_sub(1),
                },
                pending: vec![],
                redelivered: vec![],
                base_ts_secs: 0,
            }
        }
    };
    // pending by stream seq → delivery seq
    let mut pending: BTreeMap<u64, u64> = st
        .pending
        .iter()
        .map(|p| (p.stream_seq, p.consumer_seq))
        .collect();
    let mut rdc: BTreeMap<u64, u64> = st.redelivered.iter().copied().collect();
    let (mut dseq, mut sseq) = (
        st.delivered.consumer_seq.saturating_add(1),
        st.delivered.stream_seq.saturating_add(1),
    );
    let (mut adflr, mut asflr) = (st.ack_floor.consumer_seq, st.ack_floor.stream_seq);

    if state.is_some() && sseq - 1 > last {
        if release.is_some() && since(14, 0) && cfg.replicas == 1 {
            ch.reconciled = true;
            if asflr > last {
                asflr = last;
                adflr = dseq.saturating_sub(1);
                pending.clear();
                rdc.clear();
            }
            pending.retain(|&q, _| q <= last);
            rdc.retain(|&q, _| q <= last);
            if pending.is_empty() {
                sseq = asflr + 1;
                dseq = adflr + 1;
            } else {
                sseq = pending.keys().max().copied().unwrap_or(0) + 1;
                dseq = pending.values().max().copied().unwrap_or(0) + 1;
            }
        } else {
            ch.kept_past_stream = true;
        }
    }
    let before = rdc.len();
    rdc.retain(|&q, _| q > asflr && q <= last);
    ch.redelivered_dropped = (before - rdc.len()) as u64;

    // checkPending: at start (2.10+, in setLeader) or when the pending timer first fires
    // (2.9, 0.5 to 1.5 s after start), pending acks for messages below the first seq (2.10+:
    // or at or below the ack floor) are dropped; 2.10+ move the floor up to the highest one
    // dropped, and to delivered when none is left.
    if !pending.is_empty() {
        let gone: Vec<(u64, u64)> = pending
            .iter()
            .filter(|(&q, _)| q < first || (since(10, 0) && q <= asflr))
            .map(|(&q, &d)| (q, d))
            .collect();
        for &(q, d) in &gone {
            pending.remove(&q);
            rdc.remove(&q);
            ch.terminated.push(q);
            if since(10, 0) {
                asflr = asflr.max(q);
                adflr = adflr.max(d);
            }
        }
        if since(10, 0) && pending.is_empty() {
            adflr = dseq - 1;
            asflr = sseq - 1;
        }
    }

    // checkAckFloor's floors, as CONSUMER.INFO reports them (2.10.0 to 2.11.2; see above)
    let floor_check = release
        .is_some_and(|r| r.base() >= Release::new(2, 10, 0) && r.base() < Release::new(2, 11, 3));
    if floor_check && asflr != 0 && first != 0 && asflr < first - 1 {
        let mut term: Vec<(u64, u64)> = if first - asflr - 1 < pending.len() as u64 {
            pending
                .range(asflr + 1..first)
                .map(|(&q, &d)| (q, d))
                .collect()
        } else {
            pending.range(..first).map(|(&q, &d)| (q, d)).collect()
        };
        term.sort_unstable();
        for (q, d) in term {
            if q >= sseq {
                continue;
            }
            match cfg.ack {
                AckPolicy::Explicit => {
                    if let Some(d) = pending.remove(&q) {
                        ch.terminated.push(q);
                        if pending.is_empty() {
                            adflr = dseq - 1;
                            asflr = sseq - 1;
                        } else if d == adflr + 1 {
                            adflr = d;
                            asflr = q;
                            if let Some((&nq, &nd)) = pending.range(q + 1..sseq).next() {
                                if nd > 0 {
                                    adflr = nd - 1;
                                    asflr = nq - 1;
                                }
                            }
                        }
                    }
                    rdc.remove(&q);
                }
                AckPolicy::All => {
                    if d <= adflr || q <= asflr {
                        continue;
                    }
                    adflr = d;
                    asflr = q;
                    let gone: Vec<u64> = pending.range(..=q).map(|(&k, _)| k).collect();
                    for k in gone {
                        pending.remove(&k);
                        rdc.remove(&k);
                        ch.terminated.push(k);
                    }
                }
                AckPolicy::None => {}
            }
        }
        const MIN_OFF: u64 = 50;
        if first >= MIN_OFF && asflr < first - MIN_OFF {
            match pending.iter().next() {
                Some((&q, &d)) => {
                    asflr = q - 1;
                    adflr = d.saturating_sub(1);
                }
                None => {
                    asflr = (sseq - 1).max(first - 1);
                    adflr = dseq - 1;
                }
            }
        }
    }
    ch.floor_raised = asflr > st.ack_floor.stream_seq && state.is_some();
    ch.terminated.sort_unstable();
    ch.terminated.dedup();

    st.delivered = SeqPair {
        consumer_seq: dseq - 1,
        stream_seq: sseq - 1,
    };
    st.ack_floor = SeqPair {
        consumer_seq: adflr,
        stream_seq: asflr,
    };
    st.pending.retain(|p| pending.contains_key(&p.stream_seq));
    st.redelivered.retain(|(q, _)| rdc.contains_key(q));
    (st, ch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filestore::consumer_state::Pending;

    struct View {
        first: u64,
        last: u64,
        msgs: Vec<(u64, &'static str, i64)>,
        mmp: i64,
    }
    impl StreamView for View {
        fn first_last(&self) -> (u64, u64) {
            (self.first, self.last)
        }
        fn max_per_subject(&self) -> i64 {
            self.mmp
        }
        fn walk(&self, f: &mut Visit) {
            for &(q, s, t) in &self.msgs {
                if f(q, s.as_bytes(), t).is_break() {
                    return;
                }
            }
        }
    }

    /// The count without a walk (from the scans' live bits) is what the walk counts, on every
    /// stream of a real store and from every starting sequence; a block that is gone makes it
    /// fall back to the walk.
    #[test]
    fn scanned_stream_counts_what_its_walk_visits() {
        use crate::filestore::block::plain_block;
        use crate::filestore::source::DirSource;
        use crate::state::scan::{scan_block, DeadSet, ScanCtx};
        let tmp = crate::testdata::sample("v2.15.1-plain");
        let streams = tmp.path().join("v2.15.1-plain/store/jetstream/$G/streams");
        let mut checked = 0;
        for e in std::fs::read_dir(&streams).unwrap() {
            let dir = e.unwrap().path();
            let dead = DeadSet::default();
            let ctx = ScanCtx {
                account: "$G",
                stream: "x",
                dead: &dead,
                quick: true,
                file_prefix: "",
                keep_live: false,
                stop_at_damage: false,
                cmp: Default::default(),
            };
            let mut scans = Vec::new();
            for b in std::fs::read_dir(dir.join("msgs")).unwrap() {
                let p = b.unwrap().path();
                let Some(i) = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".blk"))
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let raw = std::fs::read(&p).unwrap();
                assert!(plain_block(&raw).is_ok());
                scans.push(scan_block(&ctx, i, &raw));
            }
            scans.sort_by_key(|s| s.index);
            let src = DirSource::new(dir.clone());
            let last = scans.iter().filter_map(|s| s.max_seq).max().unwrap_or(0);
            let v = ScannedStream {
                server: None,
                legacy_deleted: None,
                legacy_blocks: None,
                first: 1,
                last,
                max_per_subject: 0,
                scans: &scans,
                src: &src,
                index_totals: None,
            };
            for from in 0..=last + 1 {
                let mut walked = (0u64, 0u64);
                v.walk(&mut |q, _, _| {
                    walked.0 += 1;
                    walked.1 += u64::from(q >= from);
                    ControlFlow::Continue(())
                });
                assert_eq!(
                    v.count_live_from(from),
                    Some(walked),
                    "{} from {from}",
                    dir.display()
                );
                // with a filter: num_pending (walking from `from`) = the whole walk's count
                let mut subjects: Vec<Vec<u8>> = Vec::new();
                v.walk(&mut |_, s, _| {
                    if !subjects.iter().any(|x| x == s) {
                        subjects.push(s.to_vec());
                    }
                    ControlFlow::Continue(())
                });
                subjects.truncate(3);
                subjects.push(b">".to_vec()); // a filter, but every message matches
                for subj in &subjects {
                    let mut want = 0u64;
                    v.walk(&mut |q, s, _| {
                        let hit = s == subj.as_slice() || subj.as_slice() == b">";
                        want += u64::from(q >= from.max(1) && hit);
                        ControlFlow::Continue(())
                    });
                    let mut c = cfg(DeliverPolicy::All, AckPolicy::Explicit);
                    c.filters = vec![String::from_utf8_lossy(subj).into_owned()];
                    let want = if from > last { 0 } else { want };
                    assert_eq!(
                        num_pending(&c, from.saturating_sub(1), &v),
                        Some(want),
                        "{} filter {subj:?} from {from}",
                        dir.display()
                    );
                }
                checked += 1;
            }
            if let Some(s) = scans.iter().find(|s| s.msgs > 0) {
                std::fs::remove_file(dir.join(&s.file)).unwrap();
                // a source lists the dir once: the dir as it is now, read anew
                let src = DirSource::new(dir.clone());
                let v = ScannedStream { src: &src, ..v };
                assert_eq!(v.count_live_from(1), None, "a block is gone: walk instead");
            }
        }
        assert!(checked > 10, "{checked}");
    }

    fn view(first: u64, last: u64) -> View {
        let subj = ["a.1", "a.2", "b.1"];
        View {
            first,
            last,
            msgs: (first..=last)
                .map(|q| (q, subj[(q % 3) as usize], q as i64 * 10))
                .collect(),
            mmp: 0,
        }
    }

    fn cfg(deliver: DeliverPolicy, ack: AckPolicy) -> ConsumerCfg {
        ConsumerCfg {
            deliver,
            opt_start_seq: 0,
            opt_start_time_ns: None,
            filters: vec![],
            ack,
            replicas: 1,
        }
    }

    fn state(delivered: (u64, u64), floor: (u64, u64), pending: &[(u64, u64)]) -> ConsumerState {
        ConsumerState {
            version: 2,
            ack_floor: SeqPair {
                consumer_seq: floor.0,
                stream_seq: floor.1,
            },
            delivered: SeqPair {
                consumer_seq: delivered.0,
                stream_seq: delivered.1,
            },
            pending: pending
                .iter()
                .map(|&(s, c)| Pending {
                    stream_seq: s,
                    consumer_seq: c,
                    ts_secs: 0,
                })
                .collect(),
            redelivered: vec![],
            base_ts_secs: 0,
        }
    }

    /// A 2.9 stream of seqs 1..100 without blocks to read, counted by its delete maps or its
    /// blocks' subject state.
    fn legacy_view<'a>(
        src: &'a dyn StreamSource,
        legacy_deleted: Option<Vec<u64>>,
        legacy_blocks: Option<LegacyBlocks<'a>>,
    ) -> ScannedStream<'a> {
        ScannedStream {
            server: None,
            legacy_deleted,
            legacy_blocks,
            first: 1,
            last: 100,
            max_per_subject: 0,
            scans: &[],
            src,
            index_totals: None,
        }
    }

    /// 2.9 counts a consumer with one filter from the blocks' subject state (their `.fss`
    /// when trusted), block by block: the steps of `filteredPendingLocked` (v2.9.10). Here no
    /// record reads back (no block to walk), which isolates what comes from the `.fss`: a
    /// block whose subject starts at or after the start counts it whole (the real 2.9.10 in
    /// the matrix's `flip_last_len`: C_FILT 9, one of them a record past the damage), a
    /// contiguous one by arithmetic, and a partial one either by reading from the start (0
    /// here) or, when fewer sequences lie before the start, as its count less what reads
    /// back before it (all of it here).
    #[test]
    fn legacy_filtered_pending_follows_the_blocks_subject_state() {
        use crate::filestore::legacy::{FssEntry, LegacyFss};
        let fss = |msgs, first_seq, last_seq| LegacyFss {
            subjects: vec![
                FssEntry {
                    subject: b"other".to_vec(),
                    msgs: 1,
                    first_seq,
                    last_seq: first_seq,
                },
                FssEntry {
                    subject: b"plain.2".to_vec(),
                    msgs,
                    first_seq,
                    last_seq,
                },
            ],
            hash: [0; 8],
            last_checksum: [0; 8],
            hash_ok: true,
        };
        let (a, c) = (fss(5, 10, 14), fss(2, 92, 97));
        let t = tempfile::tempdir().unwrap();
        let src = crate::filestore::source::DirSource::new(t.path().to_path_buf());
        let v = legacy_view(
            &src,
            None,
            Some(LegacyBlocks {
                blocks: vec![(1, 30, Some(&a)), (31, 60, None), (91, 100, Some(&c))],
            }),
        );
        let mut c = cfg(DeliverPolicy::All, AckPolicy::Explicit);
        c.filters = vec!["plain.2".into()];
        for (delivered, want) in [(0, 7), (11, 5), (47, 2), (94, 0), (92, 2), (97, 0)] {
            assert_eq!(num_pending(&c, delivered, &v), Some(want), "{delivered}");
        }
        // a wildcard filter is not counted this way (2.9's order of subjects is Go's map's)
        c.filters = vec!["plain.*".into()];
        assert_eq!(v.server_pending(1, &c.filters), None);
    }

    /// 2.9 counts an unfiltered consumer's pending by sequence arithmetic less its delete
    /// maps: the real 2.9.10 in the matrix's `blk_missing_mid` (block 2, seqs 31..60 with 40
    /// deleted in its .idx, removed; deletes 10, 77, 99 left): C_ALL delivered 13 -> 85,
    /// C_EXPL delivered 31 -> 67, C_START delivered 54 -> 44, where 30 messages are gone.
    #[test]
    fn legacy_pending_is_sequence_arithmetic_less_the_delete_maps() {
        let t = tempfile::tempdir().unwrap();
        let src = crate::filestore::source::DirSource::new(t.path().to_path_buf());
        let v = legacy_view(&src, Some(vec![10, 77, 99]), None);
        let c = cfg(DeliverPolicy::All, AckPolicy::Explicit);
        for (delivered, want) in [(13, 85), (31, 67), (54, 44), (100, 0), (0, 97)] {
            assert_eq!(num_pending(&c, delivered, &v), Some(want), "{delivered}");
        }
        // a filter is not counted this way
        assert_eq!(v.server_pending(14, &["plain.2".to_string()]), None);
    }

    #[test]
    fn num_pending_counts_after_delivered_matching_the_filter() {
        let v = view(5, 14);
        let mut c = cfg(DeliverPolicy::All, AckPolicy::Explicit);
        // every message after delivered 9: seqs 10..=14
        assert_eq!(num_pending(&c, 9, &v), Some(5));
        // delivered below the first seq: counted from the first
        assert_eq!(num_pending(&c, 0, &v), Some(10));
        assert_eq!(num_pending(&c, 14, &v), Some(0));
        assert_eq!(num_pending(&c, 20, &v), Some(0));
        // subjects cycle a.1 (q%3==0), a.2, b.1: 10..=14 has a.1 at 12 only; a.* at 12, 13
        c.filters = vec!["a.1".into()];
        assert_eq!(num_pending(&c, 9, &v), Some(1));
        c.filters = vec!["a.*".into()];
        assert_eq!(num_pending(&c, 9, &v), Some(3));
        // last per subject: a.1's last is 12, a.2's 13, b.1's 14; after delivered 12: 2
        let mut l = cfg(DeliverPolicy::LastPerSubject, AckPolicy::Explicit);
        assert_eq!(num_pending(&l, 12, &v), Some(2));
        l.filters = vec!["b.>".into()];
        assert_eq!(num_pending(&l, 12, &v), Some(1));
        // blocks that cannot be read again (an archive): not known, rather than 0
        let unread = View {
            msgs: vec![],
            ..view(5, 14)
        };
        assert_eq!(num_pending(&c, 9, &unread), None);
    }

    #[test]
    fn no_state_starts_from_the_deliver_policy() {
        let v = view(11, 100);
        let r = Release::new(2, 10, 26);
        let d = |c: &ConsumerCfg| at_load(c, None, &v, Some(&r)).0;
        // seen: C_PUSH (deliver last, 2.10.26) delivered 99 = last - 1, floor 0
        let s = d(&cfg(DeliverPolicy::Last, AckPolicy::Explicit));
        assert_eq!((s.delivered.stream_seq, s.ack_floor.stream_seq), (99, 0));
        assert_eq!(
            d(&cfg(DeliverPolicy::All, AckPolicy::None))
                .delivered
                .stream_seq,
            10
        );
        assert_eq!(
            d(&cfg(DeliverPolicy::New, AckPolicy::None))
                .delivered
                .stream_seq,
            100
        );
        let mut c = cfg(DeliverPolicy::Last, AckPolicy::None);
        c.filters = vec!["a.*".into()];
        // 100 % 3 == 1 → a.2; the last a.* is 100
        assert_eq!(d(&c).delivered.stream_seq, 99);
        c.filters = vec!["b.1".into()];
        assert_eq!(d(&c).delivered.stream_seq, 97); // the last b.1 is 98
        let mut c = cfg(DeliverPolicy::ByStartSequence, AckPolicy::None);
        c.opt_start_seq = 5; // below first: clamped
        assert_eq!(d(&c).delivered.stream_seq, 10);
        let mut c = cfg(DeliverPolicy::ByStartTime, AckPolicy::None);
        c.opt_start_time_ns = Some(505);
        assert_eq!(d(&c).delivered.stream_seq, 50);
        let c = cfg(DeliverPolicy::LastPerSubject, AckPolicy::None);
        assert_eq!(d(&c).delivered.stream_seq, 97);
    }

    #[test]
    fn floor_follows_the_first_seq() {
        // seen (2.15.1, first_seq 31): C_ALL 13/12 floor 9/9 pending 3 → floor 13/12
        let v = view(31, 100);
        let r = Release::new(2, 15, 1);
        let c = cfg(DeliverPolicy::All, AckPolicy::All);
        let (s, ch) = at_load(
            &c,
            Some(&state((12, 13), (9, 9), &[(11, 10), (12, 11), (13, 12)])),
            &v,
            Some(&r),
        );
        assert_eq!((s.ack_floor.consumer_seq, s.ack_floor.stream_seq), (12, 13));
        assert!(s.pending.is_empty() && ch.floor_raised);
        // C_FILT 47/10 floor 21/4, pending 22/5 27/6 32/7 .. → floor 27/6, 4 pending
        let c = cfg(DeliverPolicy::All, AckPolicy::Explicit);
        let p = [(22, 5), (27, 6), (32, 7), (37, 8), (42, 9), (47, 10)];
        let (s, _) = at_load(&c, Some(&state((10, 47), (4, 21), &p)), &v, Some(&r));
        assert_eq!((s.ack_floor.consumer_seq, s.ack_floor.stream_seq), (6, 27));
        assert_eq!(s.pending.len(), 4);
        // C_EXPL 31/30 floor 3/3, pending 4/4 and 22/21..31/30 → floor 30/29, 1 pending
        let mut p = vec![(4, 4)];
        p.extend((22..=31).map(|q| (q, q - 1)));
        let (s, _) = at_load(&c, Some(&state((30, 31), (3, 3), &p)), &v, Some(&r));
        assert_eq!((s.ack_floor.consumer_seq, s.ack_floor.stream_seq), (29, 30));
        assert_eq!(s.pending.len(), 1);
        // 2.9 drops the pending acks below the first seq and moves no floor
        let p = [(22, 5), (27, 6), (32, 7), (37, 8), (42, 9), (47, 10)];
        let old = Release::new(2, 9, 10);
        let (s, ch) = at_load(&c, Some(&state((10, 47), (4, 21), &p)), &v, Some(&old));
        assert_eq!(s.ack_floor.stream_seq, 21);
        assert_eq!((s.pending.len(), ch.terminated.clone()), (4, vec![22, 27]));
        assert!(!ch.floor_raised);
    }

    #[test]
    fn floors_far_behind_are_kept_from_2_11_3() {
        // seen (every release 2.11.3 to 2.15.1, kill_mid): floors kept with first seq 36286
        let v = view(36286, 36400);
        let c = cfg(DeliverPolicy::All, AckPolicy::None);
        for r in [
            Release::new(2, 11, 3),
            Release::new(2, 11, 11),
            Release::new(2, 15, 1),
        ] {
            let (s, ch) = at_load(&c, Some(&state((15, 16), (15, 16), &[])), &v, Some(&r));
            assert_eq!(s.ack_floor.stream_seq, 16);
            assert_eq!(ch, ConsumerChanges::default());
        }
    }

    #[test]
    fn far_behind_floor_of_ack_none_jumps_to_first() {
        // seen (2.10.25, 2.10.26, 2.11.0, 2.11.1, 2.11.2 kill_mid): every consumer's ack floor
        // became first - 1 = 43535
        let v = view(43536, 43650);
        let c = cfg(DeliverPolicy::All, AckPolicy::None);
        for r in [
            Release::new(2, 10, 26),
            Release::new(2, 11, 0),
            Release::new(2, 11, 2),
        ] {
            let (s, _) = at_load(&c, Some(&state((16, 16), (16, 16), &[])), &v, Some(&r));
            assert_eq!(s.ack_floor.stream_seq, 43535);
            assert_eq!(s.ack_floor.consumer_seq, 16);
            assert_eq!(s.delivered.stream_seq, 16);
        }
    }

    #[test]
    fn delivered_past_the_stream_is_reconciled_from_2_14() {
        // seen: C_NEW delivered 100, stream ends at 60 → 2.14.6/2.15.1 reset to 60
        let v = view(1, 60);
        let c = cfg(DeliverPolicy::New, AckPolicy::None);
        let st = state((100, 100), (100, 100), &[]);
        let (s, ch) = at_load(&c, Some(&st), &v, Some(&Release::new(2, 15, 1)));
        assert_eq!((s.delivered.stream_seq, s.ack_floor.stream_seq), (60, 60));
        assert!(ch.reconciled);
        let (s, ch) = at_load(&c, Some(&st), &v, Some(&Release::new(2, 12, 8)));
        assert_eq!(s.delivered.stream_seq, 100);
        assert!(ch.kept_past_stream);
        // unknown release: kept (the finding names both outcomes)
        let (s, ch) = at_load(&c, Some(&st), &v, None);
        assert_eq!(s.delivered.stream_seq, 100);
        assert!(ch.kept_past_stream);
    }
}
