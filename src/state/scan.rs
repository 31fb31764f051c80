//! Scanning one message block: the per-block half of stream verification. It works on the bytes
//! of a `.blk` file wherever they came from (disk, a tar member), so the store verifier and the
//! archive verifier share it.
use crate::base::problem::{Kind, Location, Problem};
use crate::filestore::block::{self, RecordKind, Records};
use std::collections::{HashMap, HashSet};

/// Sequences known to be dead before any block is read (index.db / .idx delete maps and floors).
#[derive(Debug, Default, Clone)]
pub struct DeadSet {
    pub seqs: HashSet<u64, FxBuild>,
    /// Per block index: sequences below this first_seq are dead (moved first seq).
    pub block_floor: HashMap<u32, u64>,
    /// Stream-wide floor (index.db first_seq): sequences below are dead.
    pub stream_floor: u64,
}

impl DeadSet {
    /// Sequences of `block` below this are dead.
    pub fn floor(&self, block: u32) -> u64 {
        self.block_floor
            .get(&block)
            .map_or(self.stream_floor, |f| (*f).max(self.stream_floor))
    }
    pub fn is_dead(&self, block: u32, seq: u64) -> bool {
        seq < self.stream_floor
            || self.block_floor.get(&block).is_some_and(|f| seq < *f)
            || self.seqs.contains(&seq)
    }
}

/// What the scan of one block needs to know.
#[derive(Clone, Copy)]
pub struct ScanCtx<'a> {
    pub account: &'a str,
    /// `cfg.Name`: the record hash key is SHA-256("<name>-<index>").
    pub stream: &'a str,
    pub dead: &'a DeadSet,
    /// Skip record checksums (structure and state only).
    pub quick: bool,
    /// Prefix for problem file names (e.g. `stream.tar.s2:` inside archives).
    pub file_prefix: &'a str,
    /// Keep a compact entry per live message (16 bytes each) so deaths learned later can
    /// be subtracted without reading the block again. Archives need it (their index.db
    /// comes after the blocks); on disk a block is simply re-read instead.
    pub keep_live: bool,
    /// Stop at the first record a rebuilding server rejects (bad framing or checksum), as
    /// the server's truncation does: the scan then describes what the server keeps.
    pub stop_at_damage: bool,
    /// How [`scan_block`] decodes a `cmp` block: as the modelled release's S2 reader
    /// ([`crate::state::load::cmp_reader`]).
    pub cmp: crate::filestore::block::CmpReader,
}

/// The first record of a block that a rebuilding server rejects: it truncates the block here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Offset in the plain block.
    pub offset: usize,
    /// The record's framing is broken (length or header), not only its checksum.
    pub framing: bool,
    /// No intact record follows in the block (what a torn write leaves).
    pub nothing_after: bool,
    /// Nothing follows but zeros, at least a record header's worth: what a power loss leaves
    /// where the file system logged the block's new size before its data (not a torn write).
    pub zero_tail: bool,
}

/// A message record counted live by the scan, kept so later deaths can be subtracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveMsg {
    pub seq: u64,
    pub len: u32,
    /// Index into [`BlockScan::subject_names`].
    pub subject: u32,
}

/// One bit per sequence: which sequences of a block were counted live. Sparse (sorted
/// 64-bit words keyed by `seq / 64`), so damaged or far-apart sequences cost no more than dense
/// ones; appending ascending sequences (the normal case) is O(1).
#[derive(Debug, Clone, Default)]
pub struct SeqBits {
    words: Vec<(u64, u64)>,
}

impl SeqBits {
    fn find(&self, k: u64) -> Result<usize, usize> {
        match self.words.last() {
            Some(&(lk, _)) if lk == k => Ok(self.words.len() - 1),
            Some(&(lk, _)) if lk < k => Err(self.words.len()),
            _ => {
                // a block's sequences are usually dense: word k is then at k - the first key
                // (a lookup per record of a dump or diff walk, not a binary search)
                let at = self.words.first().map(|w| k.wrapping_sub(w.0));
                match at.and_then(|i| usize::try_from(i).ok()) {
                    Some(i) if self.words.get(i).is_some_and(|w| w.0 == k) => Ok(i),
                    _ => self.words.binary_search_by_key(&k, |w| w.0),
                }
            }
        }
    }
    pub fn set(&mut self, seq: u64) {
        let k = seq / 64;
        match self.find(k) {
            Ok(i) => self.words[i].1 |= 1 << (seq % 64),
            Err(i) => self.words.insert(i, (k, 1 << (seq % 64))),
        }
    }
    pub fn clear(&mut self, seq: u64) {
        if let Ok(i) = self.find(seq / 64) {
            self.words[i].1 &= !(1 << (seq % 64));
            if self.words[i].1 == 0 {
                self.words.remove(i);
            }
        }
    }
    pub fn get(&self, seq: u64) -> bool {
        self.find(seq / 64)
            .is_ok_and(|i| self.words[i].1 & (1 << (seq % 64)) != 0)
    }
    pub fn first(&self) -> Option<u64> {
        self.words
            .first()
            .map(|&(i, w)| i * 64 + u64::from(w.trailing_zeros()))
    }
    pub fn last(&self) -> Option<u64> {
        self.words
            .last()
            .map(|&(i, w)| i * 64 + 63 - u64::from(w.leading_zeros()))
    }
    /// How many sequences at or above `from` are set.
    pub fn count_from(&self, from: u64) -> u64 {
        let k = from / 64;
        let i = self.words.partition_point(|w| w.0 < k);
        self.words
            .get(i..)
            .unwrap_or(&[])
            .iter()
            .fold(0, |n, &(wk, w)| {
                let w = if wk == k {
                    w & (!0u64 << (from % 64))
                } else {
                    w
                };
                n + u64::from(w.count_ones())
            })
    }
    /// How many sequences in `lo..=hi` are set (a popcount per word).
    pub fn count_in(&self, lo: u64, hi: u64) -> u64 {
        if lo > hi {
            return 0;
        }
        let (kl, kh) = (lo / 64, hi / 64);
        let i = self.words.partition_point(|w| w.0 < kl);
        let mut n = 0u64;
        for &(k, w) in self.words.get(i..).unwrap_or(&[]) {
            if k > kh {
                break;
            }
            let mut w = w;
            if k == kl {
                w &= !0u64 << (lo % 64);
            }
            if k == kh {
                w &= !0u64 >> (63 - hi % 64);
            }
            n += u64::from(w.count_ones());
        }
        n
    }
    /// Sets every sequence `other` has set.
    pub fn union_with(&mut self, other: &SeqBits) {
        for &(k, w) in &other.words {
            match self.find(k) {
                Ok(i) => self.words[i].1 |= w,
                Err(i) => self.words.insert(i, (k, w)),
            }
        }
    }
    /// The set words in ascending order: (`seq / 64`, one bit per `seq % 64`), none zero.
    pub fn words(&self) -> &[(u64, u64)] {
        &self.words
    }
    /// The set sequences, ascending (one step per set bit, not per bit of a word).
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().flat_map(|&(i, w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = u64::from(w.trailing_zeros());
                w &= w - 1;
                Some(i * 64 + b)
            })
        })
    }
}

/// A small, fast hasher for subject lookups (FxHash's multiply-rotate; keys are not
/// attacker-chosen in a way that matters for a one-shot offline scan).
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(a))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

#[derive(Debug, Clone, Default)]
pub struct BlockScan {
    pub index: u32,
    pub file: String,
    pub file_len: u64,
    pub plain_len: u64,
    pub compressed: bool,
    /// The block could not be decoded at all (e.g. corrupt S2 data).
    pub unreadable: bool,
    pub records: u64,
    pub tombstones: Vec<u64>,
    pub erased: Vec<u64>,
    /// Lowest and highest non-tombstone sequence present (messages and erased records).
    pub min_seq: Option<u64>,
    pub max_seq: Option<u64>,
    /// Live messages after the pre-known dead set and erasures.
    pub msgs: u64,
    pub bytes: u64,
    pub first_live: Option<u64>,
    pub last_live: Option<u64>,
    pub first_ts: i64,
    pub last_ts: i64,
    /// Live message count per subject (index into `subject_names`).
    pub subject_counts: Vec<u64>,
    pub subject_names: Vec<Vec<u8>>,
    /// subject → index into `subject_names`.
    pub subject_index: HashMap<Vec<u8>, u32, FxBuild>,
    /// Which sequences were counted live.
    pub live_bits: SeqBits,
    /// Live messages in order, only with [`ScanCtx::keep_live`].
    pub live: Vec<LiveMsg>,
    /// Last 8 bytes of the plain block (the last record's checksum).
    pub last_checksum: Option<[u8; 8]>,
    pub bad_checksums: u64,
    /// The block's last record is an erased one (2.9 does not update `.idx`/`.fss` last
    /// checksums when it erases, so their mismatch is expected then).
    pub last_record_erased: bool,
    /// 2.9 gives up indexing this damaged block when it loads it and rebuilds it
    /// ([`block::legacy_cache_index_fails`]); never set on a block without damage.
    pub legacy_cache_fails: bool,
    /// first_ts/last_ts no longer belong to first_live/last_live (set by [`BlockScan::kill`]).
    pub ts_stale: bool,
    /// The first record a rebuilding server rejects, if any (checksums only when not quick).
    pub damage: Option<Damage>,
    /// Findings: at most [`MAX_PER_KIND`](crate::base::problem::MAX_PER_KIND) of each kind.
    pub problems: Vec<Problem>,
    /// Findings not kept, per kind identifier.
    pub suppressed: std::collections::BTreeMap<String, u64>,
    /// For a block read once (inside an archive) with damage: its scan up to the first record
    /// a rebuilding server rejects, for the load model's truncation ([`scan_kept`]).
    pub kept: Option<Box<BlockScan>>,
}

impl BlockScan {
    /// Record a finding, keeping at most [`MAX_PER_KIND`](crate::base::problem::MAX_PER_KIND)
    /// of each kind (a damaged block can hold a bad record per message).
    pub fn problem(&mut self, p: Problem) {
        let n = self.problems.iter().filter(|q| q.kind == p.kind).count() as u64;
        if n >= crate::base::problem::MAX_PER_KIND {
            *self
                .suppressed
                .entry(p.kind.as_str().to_string())
                .or_insert(0) += 1;
        } else {
            self.problems.push(p);
        }
    }
    pub fn loc(ctx: &ScanCtx, file: &str) -> Location {
        Location::stream(ctx.account, ctx.stream).file(format!("{}{}", ctx.file_prefix, file))
    }

    /// The scan of block `index` (file `rel`) that could not be read or decrypted: unreadable,
    /// with an `io_error` finding saying why (`cannot read: …`).
    pub fn unreadable_file(ctx: &ScanCtx, index: u32, rel: &str, why: String) -> BlockScan {
        let mut s = BlockScan {
            index,
            file: rel.to_string(),
            unreadable: true,
            ..Default::default()
        };
        s.problems
            .push(Problem::new(Kind::IoError, BlockScan::loc(ctx, rel), why));
        s
    }
}

/// [`scan_block`] of a block that cannot be read again (inside an archive): when it has
/// damage, the part a truncating server keeps is scanned too and kept in
/// [`BlockScan::kept`].
pub fn scan_kept(ctx: &ScanCtx, index: u32, raw: &[u8]) -> BlockScan {
    let mut s = scan_block(ctx, index, raw);
    if s.damage.is_some() {
        let stop = ScanCtx {
            stop_at_damage: true,
            ..*ctx
        };
        s.kept = Some(Box::new(scan_block(&stop, index, raw)));
    }
    s
}

/// Scan one block. Never panics on input; every problem carries file and offset.
pub fn scan_block(ctx: &ScanCtx, index: u32, raw: &[u8]) -> BlockScan {
    scan_decoded(
        ctx,
        index,
        raw.len() as u64,
        crate::filestore::block::plain_block_as(raw, ctx.cmp),
    )
}

/// [`scan_block`] of a block already decoded (`Ok((plain, compressed))`) or not decodable, its
/// file being `file_len` bytes long.
pub fn scan_decoded(
    ctx: &ScanCtx,
    index: u32,
    file_len: u64,
    decoded: Result<(std::borrow::Cow<'_, [u8]>, bool), crate::s2::S2Error>,
) -> BlockScan {
    let file = format!("msgs/{index}.blk");
    let mut sc = BlockScan {
        index,
        file: file.clone(),
        file_len,
        ..Default::default()
    };
    let (plain, compressed) = match decoded {
        Ok(p) => p,
        Err(e) => {
            sc.unreadable = true;
            sc.problem(Problem::new(
                Kind::BlockDecompress,
                BlockScan::loc(ctx, &file).at(e.offset()),
                format!("compressed block cannot be decoded: {e}"),
            ));
            return sc;
        }
    };
    sc.compressed = compressed;
    sc.plain_len = plain.len() as u64;
    if plain.len() >= 8 {
        let mut l = [0u8; 8];
        l.copy_from_slice(&plain[plain.len() - 8..]);
        sc.last_checksum = Some(l);
    }
    let key = block::block_key(ctx.stream, index);
    let mut prev_seq: Option<u64> = None;
    let mut prev_ts: i64 = 0;
    let mut pos = 0usize;
    let floor = ctx.dead.floor(index);
    let no_dead_seqs = ctx.dead.seqs.is_empty();
    loop {
        let mut framing_failed = None;
        for rec in Records::starting_at(&plain, pos) {
            let r = match rec {
                Ok(r) => r,
                Err(e) => {
                    framing_failed = Some(e);
                    break;
                }
            };
            if !check_record(ctx, &mut sc, &file, &r, &key, compressed) && sc.damage.is_none() {
                sc.damage = Some(Damage {
                    offset: r.offset,
                    framing: false,
                    nothing_after: false,
                    zero_tail: false,
                });
                if ctx.stop_at_damage {
                    break;
                }
            }
            sc.records += 1;
            sc.last_record_erased = r.kind() == RecordKind::Erased;
            match r.kind() {
                RecordKind::Tombstone => {
                    sc.tombstones.push(r.seq);
                    continue;
                }
                RecordKind::Erased => {
                    sc.erased.push(r.seq);
                }
                RecordKind::Message => {}
            }
            if let Some(p) = prev_seq {
                if r.seq <= p {
                    sc.problem(Problem::new(
                        Kind::SeqOrder,
                        BlockScan::loc(ctx, &file).at(r.offset as u64).seq(r.seq),
                        format!(
                            "sequence {} follows {} in the same block (must strictly increase)",
                            r.seq, p
                        ),
                    ));
                }
            }
            prev_seq = Some(prev_seq.map_or(r.seq, |p| p.max(r.seq)));
            sc.min_seq = Some(sc.min_seq.map_or(r.seq, |m| m.min(r.seq)));
            sc.max_seq = Some(sc.max_seq.map_or(r.seq, |m| m.max(r.seq)));
            if r.kind() == RecordKind::Erased
                || r.seq < floor
                || (!no_dead_seqs && ctx.dead.seqs.contains(&r.seq))
            {
                continue;
            }
            check_time(ctx, &mut sc, &file, &r, prev_ts);
            prev_ts = prev_ts.max(r.ts);
            sc.count_live(ctx, &r);
        }
        let Some(fe) = framing_failed else { break };
        if sc.damage.is_none() {
            sc.damage = Some(Damage {
                offset: fe.offset,
                framing: true,
                nothing_after: false,
                zero_tail: false,
            });
        }
        if ctx.stop_at_damage {
            break;
        }
        // Damage in the framing: report, then look for the next intact record.
        let here = Here {
            ctx,
            file: &file,
            key: &key,
            compressed,
        };
        match framing_damage(&here, &mut sc, &plain, &fe, prev_seq) {
            Some(n) => pos = n,
            None => {
                if let Some(d) = sc.damage.as_mut().filter(|d| d.offset == fe.offset) {
                    d.nothing_after = true;
                    let rest = plain.get(fe.offset..).unwrap_or_default();
                    d.zero_tail = rest.len() >= block::HDR_LEN && rest.iter().all(|&b| b == 0);
                }
                break;
            }
        }
    }
    annotate_losses(&mut sc);
    sc.legacy_cache_fails = sc.damage.is_some() && block::legacy_cache_index_fails(&plain);
    sc
}

/// " (offset in the decompressed block)" for compressed blocks.
fn where_note(compressed: bool) -> &'static str {
    if compressed {
        " (offset in the decompressed block)"
    } else {
        ""
    }
}

/// The checks of one record that need no neighbour: checksum, subject, content.
#[inline]
fn check_record(
    ctx: &ScanCtx,
    sc: &mut BlockScan,
    file: &str,
    r: &block::Record,
    key: &highway::Key,
    compressed: bool,
) -> bool {
    let loc = || BlockScan::loc(ctx, file).at(r.offset as u64).seq(r.seq);
    let mut intact = true;
    if !ctx.quick && !r.checksum_ok(key) {
        intact = false;
        sc.bad_checksums += 1;
        sc.problem(Problem::new(
            Kind::RecordChecksum,
            loc(),
            format!(
                "record checksum mismatch for seq {}{}: stored {}, computed {}",
                r.seq,
                where_note(compressed),
                hex(&r.checksum),
                hex(&r.computed_checksum(key)),
            ),
        ));
    }
    if r.kind() == RecordKind::Message && !crate::filestore::block::is_utf8(r.subject) {
        sc.problem(Problem::new(
            Kind::SubjectNotUtf8,
            loc(),
            format!(
                "seq {}: subject {:?} is not valid UTF-8 (clients may not be able to address it)",
                r.seq,
                String::from_utf8_lossy(r.subject)
            ),
        ));
    }
    if let Some(issue) = r.content_issue() {
        sc.problem(Problem::new(
            Kind::RecordContent,
            loc(),
            format!("seq {}: {issue} (a damaged length field shifts subject/header/payload without changing the checksum)", r.seq),
        ));
    }
    intact
}

/// A live message's time: positive, and not before the message before it.
#[inline]
fn check_time(ctx: &ScanCtx, sc: &mut BlockScan, file: &str, r: &block::Record, prev_ts: i64) {
    let loc = || BlockScan::loc(ctx, file).at(r.offset as u64).seq(r.seq);
    if r.ts <= 0 {
        sc.problem(Problem::new(
            Kind::RecordTimestamp,
            loc(),
            format!("message seq {} has timestamp {}", r.seq, r.ts),
        ));
    } else if r.ts < prev_ts {
        sc.problem(Problem::new(
            Kind::TimestampBackwards,
            loc(),
            format!(
                "message seq {} is {} ns older than the message before it (clock change?)",
                r.seq,
                prev_ts - r.ts
            ),
        ));
    }
}

/// The block being scanned: where findings go and how records are keyed.
struct Here<'a> {
    ctx: &'a ScanCtx<'a>,
    file: &'a str,
    key: &'a highway::Key,
    compressed: bool,
}

/// Report damage in the record framing at `fe` and find the next intact record, if any.
fn framing_damage(
    here: &Here,
    sc: &mut BlockScan,
    plain: &[u8],
    fe: &block::FrameError,
    prev_seq: Option<u64>,
) -> Option<usize> {
    let Here {
        ctx,
        file,
        key,
        compressed,
    } = *here;
    let lo = prev_seq.map_or(0, |p| p + 1);
    let next = block::resync(plain, fe.offset + 1, key, block::resync_window(lo));
    let next_seq = next
        .and_then(|o| block::parse_record(plain, o).ok())
        .map(|r| r.seq);
    let skipped = match next {
        Some(n) => format!(
            "bytes {}..{} are unreadable{}",
            fe.offset,
            n,
            skipped_seqs(prev_seq, next_seq)
        ),
        None => format!(
            "the rest of the block from offset {} ({} bytes) is unreadable",
            fe.offset,
            plain.len() - fe.offset
        ),
    };
    let mut loc = BlockScan::loc(ctx, file).at(fe.offset as u64);
    if let Some(p) = prev_seq {
        loc = loc.seq(p + 1);
    }
    sc.problem(Problem::new(
        Kind::RecordFraming,
        loc,
        format!("{}{}; {}", fe.what, where_note(compressed), skipped),
    ));
    next
}

/// Say which sequences a truncating server would lose: from the damaged record to the end.
fn annotate_losses(sc: &mut BlockScan) {
    let Some(maxs) = sc.max_seq else { return };
    for p in sc.problems.iter_mut() {
        if p.kind == Kind::RecordChecksum || p.kind == Kind::RecordFraming {
            if let Some(s) = p.loc.seq {
                if maxs > s {
                    p.loc.seq_end = Some(maxs);
                }
            }
        }
    }
}

impl BlockScan {
    /// Count a live message: totals, first/last, its subject, its bit.
    #[inline]
    fn count_live(&mut self, ctx: &ScanCtx, r: &block::Record) {
        self.msgs += 1;
        self.bytes += u64::from(r.len);
        if self.first_live.is_none() {
            self.first_live = Some(r.seq);
            self.first_ts = r.ts;
        }
        self.last_live = Some(r.seq);
        self.last_ts = r.ts;
        let sid = match self.subject_index.get(r.subject) {
            Some(&i) => i,
            None => {
                let i = self.subject_names.len() as u32;
                self.subject_names.push(r.subject.to_vec());
                self.subject_counts.push(0);
                self.subject_index.insert(r.subject.to_vec(), i);
                i
            }
        };
        self.subject_counts[sid as usize] += 1;
        self.live_bits.set(r.seq);
        if ctx.keep_live {
            self.live.push(LiveMsg {
                seq: r.seq,
                len: r.len,
                subject: sid,
            });
        }
    }
}

fn skipped_seqs(prev: Option<u64>, next: Option<u64>) -> String {
    match (prev, next) {
        (Some(p), Some(n)) if n > p + 1 => {
            format!(" (sequences {}..{} may be in them)", p + 1, n - 1)
        }
        (None, Some(n)) if n > 1 => format!(" (sequences before {n} may be in them)"),
        _ => String::new(),
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl BlockScan {
    pub fn subject_id(&self, subject: &[u8]) -> Option<usize> {
        self.subject_index.get(subject).map(|&i| i as usize)
    }
    /// Subtract one live message that turned out dead.
    pub fn kill(&mut self, seq: u64, len: u32, subject: &[u8]) {
        if !self.live_bits.get(seq) {
            return;
        }
        self.live_bits.clear(seq);
        self.msgs = self.msgs.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(u64::from(len));
        if let Some(i) = self.subject_id(subject) {
            self.subject_counts[i] = self.subject_counts[i].saturating_sub(1);
        }
        if let Ok(i) = self.live.binary_search_by_key(&seq, |m| m.seq) {
            self.live.remove(i);
        }
        if self.first_live == Some(seq) || self.last_live == Some(seq) {
            self.first_live = self.live_bits.first();
            self.last_live = self.live_bits.last();
            self.ts_stale = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SeqBits;
    #[test]
    fn seqbits_count_from_agrees_with_iter() {
        let mut rng = crate::testdata::Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50 {
            let mut b = SeqBits::default();
            let base = rng.next() % 1000;
            for _ in 0..rng.below(300) {
                b.set(base + rng.next() % 700);
            }
            for from in [
                0,
                base,
                base + 1,
                base + 63,
                base + 64,
                base + 350,
                base + 699,
                base + 700,
                u64::MAX,
            ] {
                let naive = b.iter().filter(|&q| q >= from).count() as u64;
                assert_eq!(b.count_from(from), naive, "from {from}");
            }
        }
    }
    /// A random set (dense runs, gaps, far-apart words) and the same set as a sorted Vec.
    fn random_bits(rng: &mut crate::testdata::Rng) -> (SeqBits, Vec<u64>) {
        let mut b = SeqBits::default();
        let mut v = Vec::new();
        let base = rng.next() % 1000;
        for _ in 0..rng.below(6) {
            let start = base + rng.next() % 2000;
            let dense = rng.below(2) == 0;
            for q in start..start + rng.below(400) as u64 {
                if dense || rng.below(3) == 0 {
                    b.set(q);
                    v.push(q);
                }
            }
        }
        v.sort_unstable();
        v.dedup();
        (b, v)
    }
    #[test]
    fn seqbits_count_in_union_and_iter_agree_with_a_naive_set() {
        let mut rng = crate::testdata::Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..200 {
            let (mut a, av) = random_bits(&mut rng);
            let (b, bv) = random_bits(&mut rng);
            assert_eq!(a.iter().collect::<Vec<_>>(), av);
            for _ in 0..20 {
                let lo = rng.next() % 3500;
                let hi = lo + rng.next() % 800;
                for (lo, hi) in [(lo, hi), (hi, lo), (lo, lo), (0, u64::MAX), (lo, u64::MAX)] {
                    let naive = av.iter().filter(|&&q| q >= lo && q <= hi).count() as u64;
                    assert_eq!(a.count_in(lo, hi), naive, "{lo}..={hi}");
                }
            }
            a.union_with(&b);
            let mut u = [av, bv].concat();
            u.sort_unstable();
            u.dedup();
            assert_eq!(a.iter().collect::<Vec<_>>(), u);
            assert!(a.words().windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
    #[test]
    fn deleted_list_from_words_is_the_list_from_each_seq() {
        use crate::state::stream::DeletedList;
        let mut rng = crate::testdata::Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200 {
            let parts: Vec<(SeqBits, Vec<u64>)> =
                (0..rng.below(4)).map(|_| random_bits(&mut rng)).collect();
            let (mut fast, mut slow) = (DeletedList::new(), DeletedList::new());
            let mut last = 0;
            for (b, v) in &parts {
                fast.live_bits(b);
                for &q in v {
                    slow.live(q);
                    last = last.max(q);
                }
            }
            let last = last + rng.below(100) as u64;
            assert_eq!(fast.finish(last), slow.finish(last));
        }
    }
    /// `get`, `set` and `clear` against a naive set, on dense runs, gaps and far-apart words
    /// (the direct lookup of a dense word and the binary search of the rest).
    #[test]
    fn seqbits_get_set_clear_agree_with_a_naive_set() {
        let mut rng = crate::testdata::Rng(0x5851_f42d_4c95_7f2d);
        for _ in 0..200 {
            let (mut b, v) = random_bits(&mut rng);
            let mut naive: std::collections::BTreeSet<u64> = v.into_iter().collect();
            for _ in 0..300 {
                let q = rng.next() % 3500;
                match rng.below(3) {
                    0 => {
                        b.set(q);
                        naive.insert(q);
                    }
                    1 => {
                        b.clear(q);
                        naive.remove(&q);
                    }
                    _ => {}
                }
                let probe = rng.next() % 3600;
                assert_eq!(b.get(probe), naive.contains(&probe), "seq {probe}");
            }
            assert!((0..3600).all(|q| b.get(q) == naive.contains(&q)));
            assert_eq!(
                b.iter().collect::<Vec<_>>(),
                naive.iter().copied().collect::<Vec<_>>()
            );
        }
    }
    #[test]
    fn seqbits_sparse_and_ordered() {
        let mut b = SeqBits::default();
        for s in [5u64, 1, 64, 63, u64::MAX >> 2, 1_000_000_000] {
            b.set(s);
        }
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            vec![1, 5, 63, 64, 1_000_000_000, u64::MAX >> 2]
        );
        assert_eq!((b.first(), b.last()), (Some(1), Some(u64::MAX >> 2)));
        b.clear(1);
        b.clear(u64::MAX >> 2);
        assert!(!b.get(1) && b.get(5));
        assert_eq!((b.first(), b.last()), (Some(5), Some(1_000_000_000)));
    }
}
