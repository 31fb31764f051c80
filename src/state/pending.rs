//! A consumer's pending count ("Unprocessed", `num_pending`) as the server computes it when the
//! stream's state comes from a trusted index.db and some of the records it counts cannot be
//! read back (a damaged payload, header, timestamp, subject or checksum; a damaged sequence).
//!
//! Facts (nats-server `server/filestore.go` `NumPending`, the same steps in v2.10.26 to
//! v2.15.1; `server/consumer.go` `checkNumPending`; checked against the differential matrix
//! rows `flip_payload`, `flip_cksum`, `flip_seq` and their kin, `tests/matrix-findings.md`):
//! - The count is made when the consumer is set up, from `start` = delivered + 1 (at least
//!   the first seq); `seqStart` is the first block whose last seq is at or after `start`.
//! - No deletes and no filter: `last − start + 1`.
//! - `seqStart` in the second half of the blocks: from `seqStart` on, a block that starts at
//!   or after `start` counts its message count (no filter) or, per matching subject, the
//!   block's own subject counts (built from its records, damaged ones included); a block with
//!   a matching subject whose first is before `start` and last at or after it is counted by
//!   reading its messages from `start` on: only those that read back count.
//! - Otherwise: the index's per-subject totals, less what lies before `start`: the message
//!   counts (no filter) or subject counts of the blocks before `seqStart`, and in `seqStart`
//!   the messages before `start` that *read back* (a damaged one is not subtracted, so it
//!   stays counted).
//! - From 2.12.4, CONSUMER.INFO reports `min(count, messages, last − start + 1)`.
use crate::base::release::Release;
use crate::base::subject;
use crate::filestore::block::{self, RecordKind};
use crate::filestore::index_db::IndexDb;
use crate::filestore::source::StreamSource;
use crate::state::load::SlotRule;
use std::collections::{HashMap, HashSet};

/// What loading a block the index lists does, beyond reading its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCond {
    /// Its records read as they are.
    Intact,
    /// A framing error at `offset`: the first load cuts the block there (`rebuildStateLocked`)
    /// and its numbers become `last`/`msgs`; 2.12+ then read the part kept, 2.10/2.11 read
    /// nothing that time (and the kept part after).
    CutOnLoad { offset: usize, last: u64, msgs: u64 },
    /// Shorter than the index says, found so at load (2.12.3+): these numbers from the start.
    Short { last: u64, msgs: u64 },
    /// Cannot be read (an undecodable compressed block): 2.12.3+ fail the count (it reports 0).
    Unreadable,
    /// An encrypted block whose key file is missing: at load the server makes a new key for
    /// it and rebuilds its state from what that key decrypts, nothing; the block then holds no
    /// message and ends before it starts (a count from a sequence inside it begins at the
    /// next block), while the stream's subject totals still count its messages (matrix
    /// `--cipher`, `key_missing_mid`, 2.12.0-2.15.1; 2.10 and 2.11 empty it only when a count
    /// first reads it, not modelled). Also a block cut at its first record on 2.12+
    /// ([`crate::state::load::reads_after_cut`]).
    Keyless,
}

/// One block as a trusted-index load sees it, read on demand.
#[derive(Clone)]
struct BlockModel {
    index: u32,
    file: String,
    first: u64,
    last: u64,
    msgs: u64,
    deleted: HashSet<u64>,
    cond: BlockCond,
    /// Records at or past this offset are not read (a cut block).
    end: Option<usize>,
    read: Option<std::rc::Rc<BlockRead>>,
}

impl BlockModel {
    /// Apply a pending cut (`rebuildStateLocked` on the first load): the block's numbers
    /// become the kept part's and records past the cut are not read. True if it was pending.
    fn cut(&mut self) -> bool {
        let BlockCond::CutOnLoad { offset, last, msgs } = self.cond else {
            return false;
        };
        self.last = last;
        self.msgs = msgs;
        self.end = Some(offset);
        self.cond = BlockCond::Intact;
        true
    }
}

/// What reading a block's records gives the server: its per-subject state and which
/// sequences read back (with their subjects). Compact: 4 bytes per sequence of the block.
#[derive(Default)]
struct BlockRead {
    /// The block's distinct subjects; below, a subject is its index here.
    subjects: Vec<Vec<u8>>,
    /// Per subject: (messages, first seq, last seq), for subjects with messages.
    fss: Vec<(u32, u64, u64, u64)>,
    /// Sequence `base + i` reads back with subject `served[i]` (`NONE`: it does not).
    base: u64,
    served: Vec<u32>,
}

const NONE: u32 = u32::MAX;

/// Blocks whose reads are kept at once; past it the kept reads are dropped (memory stays
/// bounded on streams of many blocks; a block dropped is read again when needed).
const KEPT_READS: usize = 16;

/// The most sequences kept across those reads (4 bytes each): 16 MiB, whatever sequence
/// ranges a damaged index.db claims for its blocks.
const KEPT_SLOTS: usize = 1 << 22;

/// The widest sequence range of one block that is read slot by slot: a block holds at most
/// the records written into it (about 280,000 of the smallest, 30 bytes, in an 8 MiB block),
/// and compaction only removes records, so a range past this is damage, not a real block.
const MAX_BLOCK_SPAN: u64 = 1 << 20;

impl BlockRead {
    /// The subject `q` reads back with, if it does.
    fn served(&self, q: u64) -> Option<&[u8]> {
        let i = q.checked_sub(self.base)?;
        let k = *self.served.get(usize::try_from(i).ok()?)?;
        (k != NONE).then(|| self.subjects[k as usize].as_slice())
    }
}

/// The stream as a trusted index.db describes it, for [`ServerPending::count`].
pub struct ServerPending<'a> {
    msgs: u64,
    first: u64,
    last: u64,
    /// Messages and last seq once the load is done (what STREAM.INFO then says).
    after: (u64, u64),
    /// 2.12.3+: a block that fails to load fails the count
    /// ([`crate::state::load::checks_blocks_against_index`]).
    fails: bool,
    /// 2.12+: a block cut by its first load is read (its kept part) in that same count.
    reads_after_cut: bool,
    totals: Vec<(Vec<u8>, u64)>,
    blocks: std::cell::RefCell<Vec<BlockModel>>,
    src: &'a dyn StreamSource,
    stream: String,
    rule: SlotRule,
    clamps: bool,
}

impl<'a> ServerPending<'a> {
    /// The model of a stream whose state the server takes from `db` (trusted), released as
    /// `release` (`None`: the newest), reading blocks from `src` as needed.
    /// `conds[i]` is what loading `db.blocks[i]` (at file `files[i]`) does; `after` the
    /// stream's messages and last seq once loaded.
    pub fn new(
        db: &IndexDb,
        (files, conds): (&[String], &[BlockCond]),
        src: &'a dyn StreamSource,
        stream: &str,
        release: Option<&Release>,
        after: (u64, u64),
    ) -> Self {
        let blocks = db
            .blocks
            .iter()
            .zip(files.iter().zip(conds))
            .map(|(b, (file, &cond))| {
                let (last, msgs) = match cond {
                    BlockCond::Short { last, msgs } => (last, msgs),
                    BlockCond::Keyless => (b.first_seq.saturating_sub(1), 0),
                    _ => (b.last_seq, b.msgs()),
                };
                BlockModel {
                    index: b.index,
                    file: file.clone(),
                    first: b.first_seq,
                    last,
                    msgs,
                    deleted: b.deleted.iter().copied().collect(),
                    cond,
                    end: None,
                    read: None,
                }
            })
            .collect();
        ServerPending {
            msgs: db.msgs,
            first: db.first_seq,
            last: db.last_seq,
            after,
            fails: crate::state::load::checks_blocks_against_index(release),
            reads_after_cut: crate::state::load::reads_after_cut(release),
            totals: db
                .subjects
                .iter()
                .map(|s| (s.subject.clone(), s.total))
                .collect(),
            blocks: std::cell::RefCell::new(blocks),
            src,
            stream: stream.to_string(),
            rule: crate::state::load::slot_rule(release),
            clamps: release.is_none_or(|r| r.base() >= Release::new(2, 12, 4)),
        }
    }

    /// The pending count CONSUMER.INFO reports for a consumer whose next sequence is `start`
    /// and whose filters are `filters` (none: every subject; several: `NumPendingMulti`, the
    /// same steps with a message matching any of them).
    pub fn count(&self, start: u64, filters: &[String]) -> u64 {
        // a count that fails (a block that does not load, 2.12.3+) leaves it at 0
        let n = self.num_pending(start, filters).unwrap_or(0);
        let (msgs, last) = self.after;
        let start = start.max(self.first);
        if self.clamps {
            // CONSUMER.INFO: never more than the stream holds past the start
            if start > last {
                return 0;
            }
            return n.min(msgs).min(last - start + 1);
        }
        // before 2.12.4: counted again when it exceeds the stream, at CONSUMER.INFO, on the
        // state then (every cut block cut by then); the consumers still to be set up count on
        // the state as it is now
        if n > msgs || (start > last && n > 0) {
            let now = self.blocks.borrow().clone();
            self.cut_all();
            let again = self.num_pending(start, filters).unwrap_or(0);
            *self.blocks.borrow_mut() = now;
            return again;
        }
        n
    }

    /// Apply every cut still pending (the blocks have all been loaded by then).
    fn cut_all(&self) {
        for b in self.blocks.borrow_mut().iter_mut() {
            if b.cut() {
                b.read = None;
            }
        }
    }

    fn matches(filters: &[String], subj: &[u8]) -> bool {
        filters.is_empty()
            || filters
                .iter()
                .any(|f| f == ">" || subject::matches(f.as_bytes(), subj))
    }

    /// Load block `i` as the server does and give what it reads; `Err` when the load fails
    /// and the release fails the count with it.
    fn read(&self, i: usize) -> Result<std::rc::Rc<BlockRead>, ()> {
        let mut blocks = self.blocks.borrow_mut();
        if let Some(r) = &blocks[i].read {
            return Ok(r.clone());
        }
        // at most KEPT_READS blocks' reads, and at most KEPT_SLOTS sequences among them
        let kept = blocks.iter().filter_map(|b| b.read.as_ref());
        let slots: usize = kept.clone().map(|r| r.served.len()).sum();
        if kept.count() >= KEPT_READS || slots >= KEPT_SLOTS {
            for b in blocks.iter_mut() {
                b.read = None;
            }
        }
        let b = &mut blocks[i];
        match b.cond {
            BlockCond::Unreadable if self.fails => return Err(()),
            BlockCond::Unreadable | BlockCond::Keyless => return Ok(Default::default()),
            BlockCond::CutOnLoad { .. } => {
                b.cut();
                if !self.reads_after_cut {
                    // 2.10/2.11 cut the block and return the error: nothing read this time
                    return Ok(Default::default());
                }
            }
            _ => {}
        }
        let mut out = BlockRead::default();
        let mut scratch = Vec::new();
        if let Some((Ok((plain, _)), _)) =
            self.src
                .fetch_block(&b.file, Default::default(), &mut scratch)
        {
            let key = block::block_key(&self.stream, b.index);
            // slots as the release's cache index lays them out (see load::SlotRule): the
            // record a slot holds, as (its sequence, subject, reads back)
            let mut slots: Vec<Option<(u64, u32, bool)>> = Vec::new();
            let mut ids: HashMap<&[u8], u32> = HashMap::new();
            let mut fss: HashMap<u32, (u64, u64, u64)> = HashMap::new();
            let mut highest = 0u64;
            let end = b.end.unwrap_or(usize::MAX);
            for r in block::Records::new(&plain)
                .map_while(|r| r.ok())
                .take_while(|r| r.offset < end)
            {
                if r.kind() == RecordKind::Tombstone {
                    continue;
                }
                if self.rule == SlotRule::MoveUpOnly {
                    if r.seq <= highest {
                        continue;
                    }
                    highest = r.seq;
                }
                if r.seq < b.first {
                    continue;
                }
                let want = (r.seq - b.first) as usize;
                if want > slots.len() && ((want - slots.len()) as u64) < MAX_BLOCK_SPAN {
                    slots.resize(want, None);
                }
                let next = ids.len() as u32;
                let id = *ids.entry(r.subject).or_insert(next);
                if id == next {
                    out.subjects.push(r.subject.to_vec());
                }
                let erased = r.kind() == RecordKind::Erased;
                if !erased && !b.deleted.contains(&r.seq) && !r.subject.is_empty() {
                    let e = fss.entry(id).or_insert((0, r.seq, r.seq));
                    e.0 += 1;
                    e.1 = e.1.min(r.seq);
                    e.2 = e.2.max(r.seq);
                }
                slots.push(Some((r.seq, id, !erased && r.checksum_ok(&key))));
            }
            out.fss = fss
                .into_iter()
                .map(|(id, (n, f, l))| (id, n, f, l))
                .collect();
            out.base = b.first;
            let last = b.last.min(b.first.saturating_add(MAX_BLOCK_SPAN));
            out.served = (b.first..=last.max(b.first))
                .map(|q| match slots.get((q - b.first) as usize) {
                    Some(Some((seq, id, true))) if *seq == q && !b.deleted.contains(&q) => *id,
                    _ => NONE,
                })
                .collect();
        }
        let out = std::rc::Rc::new(out);
        b.read = Some(out.clone());
        Ok(out)
    }

    fn num_pending(&self, start: u64, filter: &[String]) -> Result<u64, ()> {
        if self.msgs == 0 || start > self.last {
            return Ok(0);
        }
        let sseq = start.max(self.first);
        let nblocks = self.blocks.borrow().len();
        let seq_start = if sseq > self.first {
            self.blocks
                .borrow()
                .iter()
                .position(|b| sseq <= b.last)
                .unwrap_or(0)
        } else {
            0
        };
        let mut is_all = filter.is_empty() || (filter.len() == 1 && filter[0] == ">");
        // a filter that takes in the stream's only subject is no filter (a literal one, or
        // any of several)
        let literal = filter.len() > 1 || !filter.iter().any(|f| f.contains(['*', '>']));
        if !is_all && literal && self.totals.len() == 1 {
            is_all = Self::matches(filter, &self.totals[0].0);
        }
        if is_all && self.last - self.first + 1 == self.msgs {
            return Ok(self.last - sseq + 1);
        }
        if seq_start >= nblocks / 2 {
            let mut total = 0u64;
            for i in seq_start..nblocks {
                let (first, msgs) = {
                    let b = &self.blocks.borrow()[i];
                    (b.first, b.msgs)
                };
                if is_all && sseq <= first {
                    total += msgs;
                    continue;
                }
                let r = self.read(i)?;
                let blocks = self.blocks.borrow();
                let b = &blocks[i];
                let mut t = 0u64;
                let mut partial = false;
                for &(id, n, f, l) in &r.fss {
                    if !Self::matches(filter, &r.subjects[id as usize]) {
                        continue;
                    }
                    if sseq <= f {
                        t += n;
                    } else if sseq <= l {
                        partial = true;
                        break;
                    }
                }
                if partial {
                    // no sequence past the read's span is served (damage can claim any range)
                    t = (sseq.max(b.first)..=b.last.min(b.first.saturating_add(MAX_BLOCK_SPAN)))
                        .filter(|&q| r.served(q).is_some_and(|s| Self::matches(filter, s)))
                        .count() as u64;
                }
                total += t;
            }
            return Ok(total);
        }
        let total: u64 = self
            .totals
            .iter()
            .filter(|(s, _)| Self::matches(filter, s))
            .map(|(_, n)| n)
            .sum();
        if sseq <= self.first {
            return Ok(total);
        }
        let mut adjust = 0u64;
        for i in 0..=seq_start.min(nblocks.saturating_sub(1)) {
            let (last, msgs) = {
                let b = &self.blocks.borrow()[i];
                (b.last, b.msgs)
            };
            if sseq > last {
                if is_all {
                    adjust += msgs;
                } else {
                    let r = self.read(i)?;
                    adjust += r
                        .fss
                        .iter()
                        .filter(|(id, ..)| Self::matches(filter, &r.subjects[*id as usize]))
                        .map(|(_, n, ..)| n)
                        .sum::<u64>();
                }
            } else {
                let r = self.read(i)?;
                let blocks = self.blocks.borrow();
                let b = &blocks[i];
                let end = sseq.min(b.last);
                adjust += (b.first..end.min(b.first.saturating_add(MAX_BLOCK_SPAN + 1)))
                    .filter(|&q| r.served(q).is_some_and(|s| Self::matches(filter, s)))
                    .count() as u64;
            }
        }
        Ok(total.saturating_sub(adjust))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filestore::index_db::{BlockEntry, SubjectEntry};
    use crate::filestore::source::DirSource;

    /// Four blocks of 10 messages (1..40, subjects a/b alternating), seq 15 deleted; `damage`
    /// flips a payload byte of that sequence (its checksum then fails).
    fn stream(damage: &[u64]) -> (tempfile::TempDir, IndexDb) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("msgs")).unwrap();
        let mut blocks = Vec::new();
        for i in 0..4u64 {
            let key = block::block_key("S", i as u32 + 1);
            let mut buf = Vec::new();
            for q in i * 10 + 1..=i * 10 + 10 {
                let subj: &[u8] = if q % 2 == 0 { b"a" } else { b"b" };
                block::encode_record(&mut buf, &key, q, q as i64, subj, None, b"payload");
                if damage.contains(&q) {
                    let end = buf.len();
                    buf[end - 10] ^= 1;
                }
            }
            std::fs::write(t.path().join(format!("msgs/{}.blk", i + 1)), &buf).unwrap();
            let deleted = if i == 1 { vec![15] } else { vec![] };
            blocks.push(BlockEntry {
                index: i as u32 + 1,
                bytes: 0,
                first_seq: i * 10 + 1,
                first_ts: 0,
                last_seq: i * 10 + 10,
                last_ts: 0,
                num_deleted: deleted.len() as u64,
                ttls: 0,
                schedules: 0,
                deleted,
                offset: 0,
            });
        }
        let db = IndexDb {
            version: 4,
            msgs: 39,
            bytes: 0,
            first_seq: 1,
            first_ts: 0,
            last_seq: 40,
            last_ts: 0,
            subjects: vec![
                SubjectEntry {
                    subject: b"a".to_vec(),
                    total: 20,
                    first_blk: 1,
                    last_blk: 4,
                },
                SubjectEntry {
                    subject: b"b".to_vec(),
                    total: 19,
                    first_blk: 1,
                    last_blk: 4,
                },
            ],
            blocks,
            last_block: 4,
            last_checksum: [0; 8],
        };
        (t, db)
    }

    fn counts(damage: &[u64], start: u64, filters: &[&str]) -> u64 {
        let (t, db) = stream(damage);
        let src = DirSource::new(t.path().to_path_buf());
        let f: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
        let files: Vec<String> = (1..=4).map(|i| format!("msgs/{i}.blk")).collect();
        let conds = [BlockCond::Intact; 4];
        ServerPending::new(
            &db,
            (&files, &conds),
            &src,
            "S",
            Some(&"2.15.1".parse().unwrap()),
            (39, 40),
        )
        .count(start, &f)
    }

    /// Intact blocks: the count is the messages at or after the start, by every path.
    #[test]
    fn intact_blocks_count_what_is_there() {
        // start in block 1 (first half: index totals less what lies before)
        assert_eq!(counts(&[], 5, &[]), 35);
        assert_eq!(counts(&[], 5, &["a"]), 18);
        // start in block 3 (second half: block by block)
        assert_eq!(counts(&[], 25, &[]), 16);
        assert_eq!(counts(&[], 25, &["b"]), 8);
        assert_eq!(counts(&[], 25, &["a", "b"]), 16);
        assert_eq!(counts(&[], 1, &[]), 39);
        assert_eq!(counts(&[], 41, &[]), 0);
    }

    /// A damaged record before the start in the start's block is not subtracted (it does not
    /// read back): counted one too many, as the server does (matrix `flip_payload` C_START);
    /// after the start, in the second half, it is not counted (the block's messages are read).
    #[test]
    fn damaged_records_count_as_the_server_counts_them() {
        assert_eq!(counts(&[3], 5, &[]), 36);
        assert_eq!(counts(&[4], 5, &["a"]), 19);
        assert_eq!(counts(&[3], 5, &["a"]), 18);
        // second half, a partial block: only what reads back
        assert_eq!(counts(&[27], 25, &["b"]), 7);
        // a block wholly after the start counts its index count, damaged or not
        assert_eq!(counts(&[37], 25, &[]), 16);
    }

    /// Block 2 (11..20, 15 deleted) cut at seq 16 by a framing error on its first load:
    /// consumers count in turn; 2.15.1 reads the kept part in the count that cuts it and
    /// clamps to the stream left (34 messages), 2.11.6 reads nothing that time; an
    /// undecodable block fails 2.15.1's count (0) and reads as nothing on 2.11.6.
    #[test]
    fn cut_and_undecodable_blocks_count_as_the_server_counts_them() {
        let run = |release: &str, cond: BlockCond, starts: &[u64]| -> Vec<u64> {
            let (t, db) = stream(&[]);
            let src = DirSource::new(t.path().to_path_buf());
            let files: Vec<String> = (1..=4).map(|i| format!("msgs/{i}.blk")).collect();
            let mut conds = [BlockCond::Intact; 4];
            conds[1] = cond;
            let rel: Release = release.parse().unwrap();
            let sp = ServerPending::new(&db, (&files, &conds), &src, "S", Some(&rel), (34, 40));
            starts.iter().map(|&q| sp.count(q, &[])).collect()
        };
        // every record is 38 bytes: seq 16 is the sixth of block 2
        let cut = BlockCond::CutOnLoad {
            offset: 5 * 38,
            last: 15,
            msgs: 4,
        };
        // start 5 reads block 1 only (39 - 4 = 35, clamped to 34 on 2.15.1); start 12 loads
        // and cuts block 2: 39 - 10 - (11 read back on 2.15.1) ; a later start 13 reads the
        // kept part on both
        assert_eq!(run("2.15.1", cut, &[5, 12, 13]), [34, 28, 27]);
        assert_eq!(run("2.11.6", cut, &[5, 12, 13]), [35, 29, 27]);
        assert_eq!(run("2.15.1", BlockCond::Unreadable, &[5, 12]), [34, 0]);
        assert_eq!(run("2.11.6", BlockCond::Unreadable, &[5, 12]), [35, 29]);
    }
}
