//! Blocks of a 2.10+ stream laid out so that nats-server 2.9 restores them too.
//!
//! 2.9 knows no tombstones (`seq | 1<<62`): it reads them as messages. Its block cache is
//! positional (slot = seq - first record's seq), so every block needs one record per sequence
//! from its first record on, and it learns deletes only from `msgs/<N>.idx`. 2.10+ blocks break
//! all three: tombstones, and records removed by compaction leave gaps. So each block goes into
//! the tar as:
//! - tombstones dropped;
//! - live message records and erased records copied byte for byte (their checksums stay valid:
//!   the key depends only on stream name and block index);
//! - every other sequence the block covers (dead message records, sequences compacted away,
//!   and up to the next block's first record or the stream's last sequence) as a 30-byte
//!   erased placeholder `seq | 1<<63` (what 2.9's own compaction writes), so the block itself
//!   says which sequences are dead, for 2.9 and for 2.10+ rebuilds alike;
//! - a legacy `.idx` before it (msgs, bytes, first/last, the dead sequences after the first
//!   live one, the block's last 8 bytes as written).
//!
//! The index.db written next to them is the source's, with the last checksum of the last block
//! as written and the block ranges the placeholders extended.
use super::blockio::{Block, Head};
use super::StreamSrc;
use crate::base::problem::Kind;
use crate::filestore::block::{self, FrameError, RecordKind, EBIT, EMPTY_RECORD_LEN};
use crate::filestore::index_db::{self, IndexDb};
use crate::filestore::legacy::{self, LegacyIdx};
use crate::filestore::source::DirSource;
use crate::state::scan::{self, ScanCtx, SeqBits};
use rayon::prelude::*;
use std::collections::HashSet;
use std::io::{self, Write};

/// Most placeholders written for one block (30 bytes each: 30 MiB).
pub(super) const FILL_CAP: u64 = 1 << 20;

#[derive(Debug, Default)]
pub(super) struct BlockPlan {
    pub(crate) index: u32,
    /// Sequences whose message records are live.
    pub(crate) live: SeqBits,
    /// Last sequence the rewritten block covers; `None` when no record is left.
    pub(crate) end: Option<u64>,
    /// Highest sequence covered by an earlier block (`.idx` of an empty block).
    pub(crate) before: u64,
    /// Copy the block unchanged and write no `.idx` (unreadable, or a gap too big to fill).
    pub(crate) keep: bool,
    /// The block could not be read or decoded at all (v2 leaves it out, as the walk of live
    /// messages does).
    pub(crate) unreadable: bool,
    pub(crate) is_last: bool,
}

#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(crate) blocks: Vec<BlockPlan>,
    pub(crate) last_seq: u64,
    /// Time of the last sequence as the source server keeps it (index.db's last_ts: the
    /// publish time of the last sequence even when that message is gone).
    pub(crate) last_ts: Option<i64>,
    /// The last live message's time (used without an index.db).
    pub(crate) live_last_ts: i64,
    /// The source index.db, parsed (only when the verifier found it consistent).
    pub(crate) index_db: Option<(Vec<u8>, IndexDb)>,
    pub(crate) notes: Vec<String>,
}

impl Plan {
    /// Nothing was ever stored: last seq 0 and no record in any block.
    pub(crate) fn never_used(&self) -> bool {
        self.last_seq == 0 && self.blocks.iter().all(|b| b.end.is_none() && !b.keep)
    }
}

/// First pass: which records are live (index.db / .idx delete maps, floors, erasures and
/// tombstones from every block) and how far each rewritten block reaches.
pub(super) fn plan(src: &StreamSrc) -> anyhow::Result<Plan> {
    let dir = &src.sd.dir;
    let pre = crate::state::prelude::prelude(
        &DirSource::new(dir.clone()),
        &src.sd.account,
        &src.sd.name,
        "",
    );
    let ctx = ScanCtx {
        account: &src.sd.account,
        stream: &pre.cfg_name,
        dead: &pre.dead,
        quick: true,
        file_prefix: "",
        keep_live: false,
        stop_at_damage: false,
        cmp: Default::default(),
    };
    let firsts: Vec<First> = crate::base::par::one_per_job(&src.blocks)
        .map(|&i| {
            // the same per-thread buffers verify used: no new 8 MiB allocation per block
            match crate::filestore::source::read_reusing(
                &dir.join(format!("msgs/{i}.blk")),
                crate::filestore::block::CmpReader::default(),
                |d, n| scan::scan_decoded(&ctx, i, n, d),
            ) {
                Ok((s, _)) => First::of(s),
                Err(_) => First::unusable(),
            }
        })
        .collect();
    plan_from(src, firsts)
}

/// What the plan needs of one block's scan.
#[derive(Debug, Clone)]
pub(super) struct First {
    pub(super) live: SeqBits,
    pub(super) tombs: Vec<u64>,
    pub(super) min: Option<u64>,
    pub(super) max: Option<u64>,
    /// Non-tombstone records.
    pub(super) records: u64,
    pub(super) unreadable: bool,
    /// Not even framing: the read or the decoding failed.
    pub(super) unusable: bool,
}

impl First {
    /// From the block's scan (made with the plan's delete set: the prelude's).
    pub(super) fn of(s: scan::BlockScan) -> First {
        let framing = s.problems.iter().any(|p| p.kind == Kind::RecordFraming);
        First {
            records: s.records.saturating_sub(s.tombstones.len() as u64),
            live: s.live_bits,
            tombs: s.tombstones,
            min: s.min_seq,
            max: s.max_seq,
            unreadable: s.unreadable || framing,
            unusable: s.unreadable,
        }
    }

    /// [`First::of`] keeping the scan (for the verify it also belongs to).
    pub(super) fn of_ref(s: &scan::BlockScan) -> First {
        let framing = s.problems.iter().any(|p| p.kind == Kind::RecordFraming);
        First {
            records: s.records.saturating_sub(s.tombstones.len() as u64),
            live: s.live_bits.clone(),
            tombs: s.tombstones.clone(),
            min: s.min_seq,
            max: s.max_seq,
            unreadable: s.unreadable || framing,
            unusable: s.unreadable,
        }
    }

    /// The first record (message or erased) when the block holds one: the reach of the block
    /// before it ends below it.
    pub(super) fn first_record(&self) -> Option<u64> {
        self.min.filter(|_| self.records > 0)
    }

    /// A block that could not be read.
    pub(super) fn unusable() -> First {
        First {
            live: SeqBits::default(),
            tombs: Vec::new(),
            min: None,
            max: None,
            records: 0,
            unreadable: true,
            unusable: true,
        }
    }
}

/// The plan from every block's [`First`] (in `src.blocks` order) and the source's index.db.
pub(super) fn plan_from(src: &StreamSrc, firsts: Vec<First>) -> anyhow::Result<Plan> {
    let dir = &src.sd.dir;
    let tombs: HashSet<u64> = firsts
        .iter()
        .flat_map(|f| f.tombs.iter().copied())
        .collect();
    let mut plan = Plan {
        last_seq: src.state.last_seq,
        live_last_ts: src.state.last_ts.unwrap_or(0),
        ..Default::default()
    };
    let n = firsts.len();
    let mut blocks: Vec<BlockPlan> = Vec::with_capacity(n);
    // (first record, interior sequences without a record) per block
    let mut shape: Vec<(Option<u64>, u64)> = Vec::with_capacity(n);
    for (k, (f, &index)) in firsts.into_iter().zip(&src.blocks).enumerate() {
        let mut live = f.live;
        if !tombs.is_empty() {
            let dead: Vec<u64> = live.iter().filter(|s| tombs.contains(s)).collect();
            for s in dead {
                live.clear(s);
            }
        }
        let mut keep = f.unreadable;
        let (first_rec, interior) = match (f.min, f.max) {
            (Some(min), Some(max)) if f.records > 0 => {
                (Some(min), (max - min + 1).saturating_sub(f.records))
            }
            _ => (None, 0),
        };
        if interior > FILL_CAP && !keep {
            keep = true;
            plan.notes.push(format!(
                "{} > {}: msgs/{index}.blk lacks records for {interior} of its sequences; nats-server 2.9 \
                 cannot read it (2.10+ restores it)",
                src.sd.account, src.sd.name
            ));
        }
        blocks.push(BlockPlan {
            index,
            live,
            end: f.max.filter(|_| f.records > 0),
            keep,
            unreadable: f.unusable,
            is_last: k + 1 == n,
            before: 0,
        });
        shape.push((first_rec, interior));
    }
    // Reach of each block: up to the next block's first record, or the stream's last seq. The
    // last block always reaches it (2.9 appends the next sequence to it); another block only
    // when it holds a live message (2.9 lists only deletes after a block's first live one).
    let mut next_min: Option<u64> = None;
    for (b, &(first_rec, interior)) in blocks.iter_mut().zip(&shape).rev() {
        let Some(max) = b.end else { continue };
        let upper = next_min
            .map_or(plan.last_seq, |m| m.saturating_sub(1))
            .max(max);
        let has_live = b.live.first().is_some();
        if !b.keep && (b.is_last || has_live) && upper > max {
            if (upper - max).saturating_add(interior) <= FILL_CAP {
                b.end = Some(upper);
            } else if b.is_last {
                plan.notes.push(format!(
                    "{} > {}: sequences {}..{upper} have no record after msgs/{}.blk; nats-server 2.9 would \
                     append after a gap it cannot read (2.10+ restores it)",
                    src.sd.account,
                    src.sd.name,
                    max + 1,
                    b.index
                ));
            }
        }
        next_min = first_rec.or(next_min);
    }
    let mut covered = 0u64;
    for b in blocks.iter_mut() {
        b.before = covered;
        if let Some(e) = b.end {
            covered = covered.max(e);
        }
        if b.is_last && b.end.is_none() {
            b.before = plan.last_seq.max(covered);
        }
    }
    plan.blocks = blocks;
    if src.index_db_ok {
        let raw = crate::ops::target_dir::read(&dir.join("msgs/index.db"))?;
        let (body, _) = index_db::split_trailer(&raw)
            .map_err(|e| anyhow::anyhow!("{}: index.db: {e}", dir.display()))?;
        let db = index_db::parse(body)
            .map_err(|e| anyhow::anyhow!("{}: index.db: {e}", dir.display()))?;
        plan.last_ts = Some(db.last_ts);
        plan.index_db = Some((raw, db));
    }
    Ok(plan)
}

/// The plan of one block that is not the stream's last, from its [`First`], the tombstones
/// seen so far, the first record of the next block that holds one (`next_min`) and the highest
/// sequence covered by the blocks before it: what [`plan_from`] gives for it when no later
/// block holds a tombstone for one of its messages (pack's one pass checks that at the end).
/// `None` when the block is kept as it is (unreadable, or too many sequences to fill).
pub(super) fn early_block(
    index: u32,
    f: &First,
    tombs: &HashSet<u64>,
    next_min: u64,
    before: u64,
) -> Option<BlockPlan> {
    if f.unreadable {
        return None;
    }
    let mut live = f.live.clone();
    if !tombs.is_empty() {
        let dead: Vec<u64> = live.iter().filter(|s| tombs.contains(s)).collect();
        for s in dead {
            live.clear(s);
        }
    }
    let interior = match (f.min, f.max) {
        (Some(min), Some(max)) if f.records > 0 => (max - min + 1).saturating_sub(f.records),
        _ => 0,
    };
    if interior > FILL_CAP {
        return None;
    }
    let mut end = f.max.filter(|_| f.records > 0);
    if let Some(max) = end {
        let upper = next_min.saturating_sub(1).max(max);
        if live.first().is_some()
            && upper > max
            && (upper - max).saturating_add(interior) <= FILL_CAP
        {
            end = Some(upper);
        }
    }
    Some(BlockPlan {
        index,
        live,
        end,
        before,
        keep: false,
        unreadable: f.unusable,
        is_last: false,
    })
}

impl BlockPlan {
    /// The same plan (live sequences compared as sets).
    pub(super) fn same(&self, o: &BlockPlan) -> bool {
        (
            self.index,
            self.end,
            self.before,
            self.keep,
            self.unreadable,
            self.is_last,
        ) == (o.index, o.end, o.before, o.keep, o.unreadable, o.is_last)
            && self.live.iter().eq(o.live.iter())
    }

    /// The highest sequence this block's layout covers.
    pub(super) fn covers(&self) -> u64 {
        self.end.unwrap_or(0).max(self.before)
    }
}

/// How one block goes into the tar.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// Unchanged (the plain bytes as read), no `.idx`.
    Keep,
    /// The rewritten block: `pieces` (`len` bytes in all, ending in `tail`), and the `.idx` to
    /// write before it (none for the block of a never-used stream: 2.9 rebuilds that one as
    /// first 0 / last 0).
    Rewritten {
        idx: Option<Vec<u8>>,
        pieces: Vec<Piece>,
        len: u64,
        tail: [u8; 8],
    },
}

/// A stretch of a rewritten block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Piece {
    /// Source bytes, copied as they are (whole records).
    Copy { offset: u64, len: u64 },
    /// The placeholder of one dead sequence, with the record's time.
    Place { seq: u64, ts: i64 },
    /// Placeholders (time 0) for the sequences `from..to`.
    Fill { from: u64, to: u64 },
}

impl Piece {
    fn len(&self) -> u64 {
        let p = EMPTY_RECORD_LEN as u64;
        match *self {
            Piece::Copy { len, .. } => len,
            Piece::Place { .. } => p,
            Piece::Fill { from, to } => to.saturating_sub(from).saturating_mul(p),
        }
    }
}

/// Writes the pieces of a rewritten block: source bytes from `blk`, placeholders encoded in
/// batches (bounded memory whatever the number of sequences filled).
pub(super) fn write_pieces<W: Write>(
    pieces: &[Piece],
    key: &highway::Key,
    blk: &mut Block<'_>,
    w: &mut W,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    for p in pieces {
        match *p {
            Piece::Copy { offset, len } => blk.copy_range(offset, len, w, scratch)?,
            Piece::Place { seq, ts } => {
                scratch.clear();
                placeholder(scratch, key, seq, ts);
                w.write_all(scratch)?;
            }
            Piece::Fill { from, to } => {
                let mut s = from;
                while s < to {
                    let e = to.min(s.saturating_add(4096));
                    scratch.clear();
                    for q in s..e {
                        placeholder(scratch, key, q, 0);
                    }
                    w.write_all(scratch)?;
                    s = e;
                }
            }
        }
    }
    Ok(())
}

/// Second pass, one block: the pieces of the rewritten plain block, from the records `heads`
/// (see the module doc).
pub(super) fn rewrite<'a>(
    plan: &Plan,
    bp: &BlockPlan,
    cfg_name: &str,
    heads: impl Iterator<Item = Result<Head<'a>, FrameError>>,
) -> Layout {
    if bp.keep {
        return Layout::Keep;
    }
    let key = block::block_key(cfg_name, bp.index);
    let mut pieces: Vec<Piece> = Vec::new();
    let mut out_len = 0u64;
    let mut out_tail = [0u8; 8];
    let mut dead: Vec<u64> = Vec::new();
    let mut msgs = 0u64;
    let mut bytes = 0u64;
    let mut first_live: Option<(u64, i64)> = None;
    let mut last: Option<(u64, i64)> = None;
    let mut filled = 0u64;
    let mut tomb_last_ts: Option<i64> = None;
    let mut push = |pieces: &mut Vec<Piece>, p: Piece| {
        out_len += p.len();
        if let (Piece::Copy { offset, len }, Some(Piece::Copy { offset: o, len: l })) =
            (p, pieces.last_mut())
        {
            if *o + *l == offset {
                *l += len;
                return;
            }
        }
        pieces.push(p);
    };
    let mut fill = |pieces: &mut Vec<Piece>,
                    push: &mut dyn FnMut(&mut Vec<Piece>, Piece),
                    from: u64,
                    to: u64,
                    dead: &mut Vec<u64>|
     -> bool {
        filled = filled.saturating_add(to.saturating_sub(from));
        if filled > FILL_CAP.saturating_mul(2) {
            return false;
        }
        if to > from {
            push(pieces, Piece::Fill { from, to });
            dead.extend(from..to);
        }
        true
    };
    let tail_of_fill = |seq: u64, ts: i64| -> [u8; 8] {
        let mut b = Vec::with_capacity(EMPTY_RECORD_LEN);
        placeholder(&mut b, &key, seq, ts);
        tail(&b)
    };
    for rec in heads {
        let Ok(r) = rec else {
            return Layout::Keep;
        };
        let kind = r.kind();
        if kind == RecordKind::Tombstone {
            // A tombstone carries the deleted message's time.
            if r.seq == plan.last_seq && r.ts != 0 {
                tomb_last_ts = Some(r.ts);
            }
            continue;
        }
        if let Some((p, _)) = last {
            // (the record below always writes the new tail)
            if r.seq <= p || !fill(&mut pieces, &mut push, p + 1, r.seq, &mut dead) {
                return Layout::Keep;
            }
        }
        match kind {
            RecordKind::Message if bp.live.get(r.seq) => {
                push(
                    &mut pieces,
                    Piece::Copy {
                        offset: r.offset,
                        len: u64::from(r.len),
                    },
                );
                out_tail = r.checksum;
                msgs += 1;
                bytes += u64::from(r.len);
                first_live.get_or_insert((r.seq, r.ts));
            }
            RecordKind::Message => {
                push(
                    &mut pieces,
                    Piece::Place {
                        seq: r.seq,
                        ts: r.ts,
                    },
                );
                out_tail = tail_of_fill(r.seq, r.ts);
                dead.push(r.seq);
            }
            _ => {
                push(
                    &mut pieces,
                    Piece::Copy {
                        offset: r.offset,
                        len: u64::from(r.len),
                    },
                );
                out_tail = r.checksum;
                dead.push(r.seq);
            }
        }
        last = Some((r.seq, r.ts));
    }
    if let (Some((p, _)), Some(end)) = (last, bp.end) {
        if end > p {
            if !fill(&mut pieces, &mut push, p + 1, end + 1, &mut dead) {
                return Layout::Keep;
            }
            out_tail = tail_of_fill(end, 0);
            last = Some((end, 0));
        }
    }
    let Some((last_seq, last_ts)) = last else {
        if plan.last_seq == 0 && bp.before == 0 {
            return Layout::Rewritten {
                idx: None,
                pieces,
                len: out_len,
                tail: out_tail,
            };
        }
        let x = LegacyIdx {
            version: 1,
            msgs: 0,
            bytes: 0,
            first_seq: bp.before + 1,
            first_ts: 0,
            last_seq: bp.before,
            last_ts: if bp.before == plan.last_seq {
                plan.last_ts.unwrap_or(plan.live_last_ts)
            } else {
                0
            },
            last_checksum: [0; 8],
            num_deleted: 0,
            deleted: Vec::new(),
            dmap_complete: true,
        };
        return Layout::Rewritten {
            idx: Some(legacy::encode_idx(&x)),
            pieces,
            len: out_len,
            tail: out_tail,
        };
    };
    let last_ts = match plan.last_ts {
        Some(t) if last_seq == plan.last_seq => t,
        None if last_seq == plan.last_seq && last_ts == 0 => {
            tomb_last_ts.unwrap_or(plan.live_last_ts)
        }
        _ => last_ts,
    };
    let (first_seq, first_ts) = first_live.unwrap_or((last_seq + 1, 0));
    dead.retain(|&d| d > first_seq);
    let x = LegacyIdx {
        version: 1,
        msgs,
        bytes,
        first_seq,
        first_ts,
        last_seq,
        last_ts,
        last_checksum: out_tail,
        num_deleted: dead.len() as u64,
        deleted: dead,
        dmap_complete: true,
    };
    Layout::Rewritten {
        idx: Some(legacy::encode_idx(&x)),
        pieces,
        len: out_len,
        tail: out_tail,
    }
}

/// An erased record for `seq` (`seq | 1<<63`, no subject, no payload): dead for every reader.
fn placeholder(out: &mut Vec<u8>, key: &highway::Key, seq: u64, ts: i64) {
    block::encode_record(out, key, seq | EBIT, ts, b"", None, b"");
}

/// The last 8 bytes of a plain block (the last record's checksum), zeros when shorter.
pub(super) fn tail(b: &[u8]) -> [u8; 8] {
    let mut t = [0u8; 8];
    if let Some(s) = b.len().checked_sub(8).and_then(|at| b.get(at..)) {
        t.copy_from_slice(s);
    }
    t
}

/// The index.db to write after the blocks: the source's when nothing it says changed, else
/// the source's with the ranges the placeholders extended and `last_tail` (the last 8 bytes of
/// the last block as written) as its last checksum, re-encoded. `None` without a usable source
/// index.db (the restoring server then rebuilds from the blocks and the `.idx` files).
/// Re-encoded also when the source's version is newer than `version` (the target's).
pub(super) fn index_db(
    plan: &Plan,
    cfg_name: &str,
    last_tail: [u8; 8],
    version: u8,
) -> Option<Vec<u8>> {
    let (raw, db) = plan.index_db.as_ref()?;
    let mut db = db.clone();
    let mut changed = false;
    for bp in plan.blocks.iter().filter(|b| !b.keep) {
        let (Some(end), Some(e)) = (bp.end, db.blocks.iter_mut().find(|e| e.index == bp.index))
        else {
            continue;
        };
        if end <= e.last_seq {
            continue;
        }
        if e.msgs() == 0 {
            e.first_seq = end + 1;
            e.deleted.clear();
        } else {
            e.deleted.extend(e.last_seq + 1..=end);
        }
        e.last_seq = end;
        e.num_deleted = e.deleted.len() as u64;
        changed = true;
    }
    if db.last_checksum != last_tail {
        db.last_checksum = last_tail;
        changed = true;
    }
    Some(if changed || db.version > version {
        index_db::encode_version(&db, cfg_name, version.min(db.version))
    } else {
        raw.clone()
    })
}
