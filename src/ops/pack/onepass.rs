//! pack's one pass (issue #14): a v1 pack of a plaintext 2.10+ stream reads each block once.
//! Worker threads read the blocks in order and run the verify's scan of each
//! ([`PlainVerify::scan`]: every check and record checksum of `jetdir verify`); this thread
//! lays each block out for the backup ([`compat`]) and appends it to the tar, whose S2 chunks
//! are compressed on all cores and hashed by the writer ([`ParFrameWriter`], `HashedFile`).
//!
//! A block's layout needs what only later blocks say: how far it reaches (up to the next
//! block's first record: known once that block is scanned, so a block is written when the
//! next block holding a record has been scanned), and which of its messages are dead (the
//! index's delete maps are applied by the scan; tombstones further on are known only at the
//! end). The tar headers' time is the stream's last message time: taken from a scan of the
//! last block before the pass (that block is read twice). So the pass writes on these
//! assumptions and, once every block is scanned and the verify is finished, the plan of
//! today's path is made from the same scans ([`compat::plan_from`]) and compared: the output
//! is kept only when every block already written has exactly that plan, the time is the
//! stream's, the verify found no error and the stream is what was assumed (not a 2.9 layout,
//! the same blocks, meta.inf, name). The blocks held back (the last ones) are then written with
//! that plan. Otherwise the staged output is discarded and the caller writes the backup on
//! today's path (plan, then write: two more reads of each block) from the same verify. Either
//! way the bytes are those of today's path.
//!
//! Not tried at all (today's path from the start): encrypted streams, `--as`, `--all`, v2 and
//! tgz, 2.9 layouts, a block file above [`BIG_BLOCK`], and a stream whose index the server
//! rebuilds while pack's plan would apply its delete maps (the verify's scans would not).
use super::blockio::{Block, BlockData};
use super::compat::{self, BlockPlan, First, Plan};
use super::{staging_for, v1, PackOptions, StreamSrc};
use crate::base::problem::{Problem, Severity};
use crate::base::progress::Progress;
use crate::base::report::StreamReport;
use crate::check::store::PlainVerify;
use crate::filestore::block::{self, BIG_BLOCK, MAX_BLOCK_FILE};
use crate::filestore::discover::StreamDir;
use crate::filestore::meta::MetaInf;
use crate::ops::staging::{self, Perms, Stage};
use crate::s2::encode::ParFrameWriter;
use crate::state::scan::BlockScan;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{mpsc, Condvar, Mutex};

/// The staged `stream.tar.s2` of a one-pass pack.
pub(super) struct Written {
    pub(super) stage: Stage,
    pub(super) stage_path: PathBuf,
    /// Its bytes and SHA-256.
    pub(super) tar: (u64, String),
    /// The stream as the verify found it.
    pub(super) src: StreamSrc,
    /// Notes of building `src` ([`StreamSrc::build`]), then of the plan.
    pub(super) build_notes: Vec<String>,
    pub(super) plan_notes: Vec<String>,
}

/// What the one pass did.
pub(super) enum OnePass {
    /// Not tried: the stream takes today's path (verify, plan, write).
    NotTried,
    /// Verified; the output was not kept (why): today's write path writes it.
    Verified(StreamReport, Vec<Problem>, String),
    /// Verified, and `stream.tar.s2` written.
    Written(StreamReport, Vec<Problem>, Box<Written>),
}

/// Verify `sd` and write its v1 `stream.tar.s2` into OUT's stage in one read of each block,
/// or say why not (see the module doc).
pub(super) fn run(
    sd: &StreamDir,
    opts: &PackOptions,
    vopts: &crate::check::Options,
    progress: &dyn Progress,
    block_bytes: u64,
) -> anyhow::Result<OnePass> {
    let Some(pv) = PlainVerify::start(sd, vopts) else {
        return Ok(OnePass::NotTried);
    };
    if !pv.pre.idx.is_empty() || pv.pre.blocks.is_empty() {
        return Ok(OnePass::NotTried);
    }
    // pack's plan applies the prelude's delete set; the verify's scans apply it unless the
    // server rebuilds
    let d = &pv.pre.dead;
    if pv.rebuilds() && (!d.seqs.is_empty() || !d.block_floor.is_empty() || d.stream_floor > 0) {
        return Ok(OnePass::NotTried);
    }
    let mut blocks = pv.pre.blocks.clone();
    blocks.sort_unstable();
    blocks.dedup();
    let path_of = |i: u32| sd.dir.join(format!("msgs/{i}.blk"));
    for &i in &blocks {
        match fs::metadata(path_of(i)) {
            Ok(m) if m.len() <= BIG_BLOCK => {}
            _ => return Ok(OnePass::NotTried),
        }
    }
    let Ok(meta_raw) = fs::read(sd.dir.join("meta.inf")) else {
        return Ok(OnePass::NotTried);
    };
    let Ok(meta) = MetaInf::parse(&meta_raw) else {
        return Ok(OnePass::NotTried);
    };
    let cfg_name = meta.name().unwrap_or(&sd.name).to_string();
    // the tar headers' time: the last message's, from the last block (checked at the end)
    let Some(&last_block) = blocks.last() else {
        return Ok(OnePass::NotTried);
    };
    let mtime = {
        let mut raw = Vec::new();
        let read = crate::filestore::source::read_capped_into(
            &path_of(last_block),
            MAX_BLOCK_FILE,
            &mut raw,
        )
        .map(|n| (block::plain_block_as(&raw, pv.cmp_reader()), n));
        let s = pv.scan(last_block, read);
        let ns = if s.last_live.is_some() { s.last_ts } else { 0 };
        (ns.max(0) / 1_000_000_000) as u64
    };

    let stage_path = staging_for(&opts.out)?;
    let _ = staging::remove_leftover(&stage_path);
    let mut stage = Stage::create(&stage_path, Perms::Umask)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", stage_path.display()))?;
    let sink = match stage.hashed_file("stream.tar.s2") {
        Ok(f) => f,
        Err(e) => {
            stage.discard();
            return Err(e.into());
        }
    };
    let mut tb = tar::Builder::new(ParFrameWriter::new(sink));
    let st = v1::style_at(mtime);
    if let Err(e) = v1::head_of(&mut tb, &meta_raw, &cfg_name, &st) {
        discard(tb, &stage);
        return Err(e.into());
    }

    progress.phase("verify and write");
    progress.start(block_bytes);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = blocks.len();
    let gate = Gate {
        state: Mutex::new(GateState {
            next: 0,
            // a block per reading thread and the one this thread holds (at least 2: the block
            // written next and the one after it): 3 x 8 MiB on 2 cores
            free: threads + 1,
            bufs: Vec::new(),
        }),
        cv: Condvar::new(),
    };
    let (tx, rx) = mpsc::channel::<Got>();
    let mut seq = Sequencer {
        blocks: &blocks,
        firsts: vec![None; n],
        held: BTreeMap::new(),
        tombs: HashSet::new(),
        next_write: 0,
        covered: 0,
        written: Vec::new(),
        last_tail: [0; 8],
        aborted: None,
        cfg_name: &cfg_name,
        st: &st,
        scratch: Vec::new(),
        provisional: Plan {
            last_seq: u64::MAX,
            ..Default::default()
        },
    };
    let mut scans: Vec<BlockScan> = Vec::with_capacity(n);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (gate, pv, blocks, path_of) = (&gate, &pv, &blocks, &path_of);
            s.spawn(move || {
                while let Some((p, mut buf)) = gate.take(n) {
                    let Some(&i) = blocks.get(p) else { break };
                    let path = path_of(i);
                    let read =
                        crate::filestore::source::read_capped_into(&path, MAX_BLOCK_FILE, &mut buf);
                    let (scan, plain) = match read {
                        Ok(len) if block::is_cmp_block(&buf) => {
                            match block::decompress_cmp_block_as(&buf, pv.cmp_reader()) {
                                Ok(plain) => {
                                    let s = pv
                                        .scan(i, Ok((Ok((Cow::Borrowed(&plain[..]), true)), len)));
                                    (s, Some(plain))
                                }
                                Err(e) => (pv.scan(i, Ok((Err(e), len))), None),
                            }
                        }
                        Ok(len) => (
                            pv.scan(i, Ok((Ok((Cow::Borrowed(&buf[..]), false)), len))),
                            None,
                        ),
                        Err(e) => (pv.scan(i, Err(e)), None),
                    };
                    progress.advance(
                        scan.file_len,
                        &format!("{} > {} msgs/{i}.blk", sd.account, sd.name),
                    );
                    if tx
                        .send(Got {
                            pos: p,
                            scan,
                            buf,
                            plain,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for got in rx {
            let Got {
                pos,
                scan,
                buf,
                plain,
            } = got;
            let f = First::of_ref(&scan);
            if seq.aborted.is_none() {
                if f.unreadable {
                    seq.abort(format!("msgs/{}.blk is damaged", scan.index));
                } else if scan.problems.iter().any(|p| p.severity == Severity::Error) {
                    seq.abort(format!("msgs/{}.blk has an error", scan.index));
                }
            }
            seq.tombs.extend(f.tombs.iter().copied());
            let keep = seq.aborted.is_none() && f.records > 0;
            if let Some(slot) = seq.firsts.get_mut(pos) {
                *slot = Some(f);
            }
            scans.push(scan);
            if keep {
                seq.held.insert(pos, (buf, plain));
            } else {
                gate.give(buf);
            }
            if seq.aborted.is_none() {
                seq.write_ready(&mut tb, &gate);
            }
            if seq.aborted.is_some() {
                for (_, (b, _)) in std::mem::take(&mut seq.held) {
                    gate.give(b);
                }
            }
        }
    });
    // (the caller finishes the progress phase: it refuses, or writes the rest)
    let (rep, problems) = pv.finish(vopts, scans);

    if let Some(why) = seq.aborted.take() {
        discard(tb, &stage);
        return Ok(OnePass::Verified(rep, problems, why));
    }
    if problems
        .iter()
        .any(|p| p.severity == Severity::Error || p.kind.is_fatal())
    {
        discard(tb, &stage);
        return Ok(OnePass::Verified(
            rep,
            problems,
            "the verify found errors".into(),
        ));
    }
    let mut build_notes = Vec::new();
    let src = match StreamSrc::build(sd, &rep, &problems, opts, &mut build_notes) {
        Ok(s) => s,
        Err(e) => {
            discard(tb, &stage);
            return Ok(OnePass::Verified(rep, problems, format!("{e:#}")));
        }
    };
    let why = if src.legacy {
        Some("a 2.9 layout")
    } else if src.blocks != blocks {
        Some("other blocks")
    } else if src.cfg_name != cfg_name || src.meta.raw != meta_raw {
        Some("meta.inf changed")
    } else if src.mtime != mtime {
        Some("the last message is not in the last block")
    } else {
        None
    };
    if let Some(why) = why {
        discard(tb, &stage);
        return Ok(OnePass::Verified(rep, problems, why.into()));
    }
    let firsts: Vec<First> = seq
        .firsts
        .iter()
        .map(|f| f.clone().unwrap_or_else(First::unusable))
        .collect();
    let plan = match compat::plan_from(&src, firsts) {
        Ok(p) => p,
        Err(e) => {
            discard(tb, &stage);
            return Err(e);
        }
    };
    let agrees = !plan.never_used() || seq.written.is_empty();
    let agrees = agrees
        && seq
            .written
            .iter()
            .zip(&plan.blocks)
            .all(|(w, e)| w.same(e) && plan.last_seq > w.covers());
    if !agrees {
        discard(tb, &stage);
        return Ok(OnePass::Verified(
            rep,
            problems,
            "a block written does not have the stream's plan".into(),
        ));
    }
    if (seq.next_write..n).any(|k| {
        !seq.held.contains_key(&k)
            && seq
                .firsts
                .get(k)
                .is_some_and(|f| f.as_ref().is_some_and(|f| f.records > 0))
    }) {
        discard(tb, &stage);
        return Ok(OnePass::Verified(
            rep,
            problems,
            "a block was not held".into(),
        ));
    }
    // the blocks held back, with the stream's plan, then what follows them
    let any_block = !plan.never_used();
    let rest = (|| -> anyhow::Result<(u64, String)> {
        if any_block {
            for k in seq.next_write..n {
                let Some(bp) = plan.blocks.get(k) else {
                    continue;
                };
                let (buf, plain) = seq.held.remove(&k).unwrap_or_default();
                let bytes: &[u8] = plain.as_deref().unwrap_or(&buf);
                let mut blk = Block {
                    data: BlockData::Mem { undecodable: None },
                    buf: bytes,
                    size: bytes.len() as u64,
                };
                seq.last_tail = v1::compat_block(
                    &mut tb,
                    &plan,
                    bp,
                    &cfg_name,
                    &mut blk,
                    &st,
                    &mut seq.scratch,
                )
                .map_err(|e| anyhow::anyhow!("{}: {e}", path_of(bp.index).display()))?;
            }
        }
        let frame = v1::tail_members(tb, &src, &plan, seq.last_tail, any_block, &st)?;
        let sink = frame.finish()?;
        Ok(sink.done()?)
    })();
    let (tn, th) = match rest {
        Ok(t) => t,
        Err(e) => {
            stage.discard();
            return Err(e);
        }
    };
    stage.planned("stream.tar.s2", tn);
    Ok(OnePass::Written(
        rep,
        problems,
        Box::new(Written {
            stage,
            stage_path,
            tar: (tn, th),
            src,
            build_notes,
            plan_notes: plan.notes,
        }),
    ))
}

/// A block scanned: its position in the block list, its scan, the buffer read, and its
/// decoded form when it is a `cmp` block.
struct Got {
    pos: usize,
    scan: BlockScan,
    buf: Vec<u8>,
    plain: Option<Vec<u8>>,
}

struct GateState {
    /// The next position to hand out.
    next: usize,
    /// Buffers that may be taken.
    free: usize,
    /// Buffers given back (their capacity reused).
    bufs: Vec<Vec<u8>>,
}

/// Hands out block positions in order, each with a buffer, at most `free` at a time: a block
/// is read only when one of the bounded buffers is free, and buffers go to positions in order,
/// so the block this thread writes next is always read before later ones take the buffers.
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

impl Gate {
    /// The next position below `n` and a buffer, waiting for one; `None` when all are out.
    fn take(&self, n: usize) -> Option<(usize, Vec<u8>)> {
        let mut g = self.state.lock().ok()?;
        loop {
            if g.next >= n {
                return None;
            }
            if g.free > 0 {
                break;
            }
            g = self.cv.wait(g).ok()?;
        }
        let p = g.next;
        g.next += 1;
        g.free -= 1;
        Some((p, g.bufs.pop().unwrap_or_default()))
    }

    /// Gives a buffer back.
    fn give(&self, buf: Vec<u8>) {
        if let Ok(mut g) = self.state.lock() {
            g.free += 1;
            // an outsized buffer (a damaged file) is not kept
            if (buf.capacity() as u64) <= BIG_BLOCK {
                g.bufs.push(buf);
            }
        }
        self.cv.notify_one();
    }
}

/// This thread's side: the blocks received, and those written so far.
struct Sequencer<'a> {
    blocks: &'a [u32],
    firsts: Vec<Option<First>>,
    /// Blocks holding records, not written yet: (buffer, decoded form).
    held: BTreeMap<usize, (Vec<u8>, Option<Vec<u8>>)>,
    tombs: HashSet<u64>,
    next_write: usize,
    covered: u64,
    written: Vec<BlockPlan>,
    last_tail: [u8; 8],
    aborted: Option<String>,
    cfg_name: &'a str,
    st: &'a crate::backup::tar_write::Style,
    scratch: Vec<u8>,
    /// The plan-wide values a block before the last one does not use (last seq unknown).
    provisional: Plan,
}

impl Sequencer<'_> {
    fn abort(&mut self, why: String) {
        self.aborted.get_or_insert(why);
    }

    /// Writes every block whose reach is known: the next one to write, once the blocks after
    /// it up to one holding a record have been scanned.
    fn write_ready<W: Write>(&mut self, tb: &mut tar::Builder<W>, gate: &Gate) {
        loop {
            let k = self.next_write;
            let Some(Some(f)) = self.firsts.get(k) else {
                return;
            };
            // the first record of the next block holding one
            let mut next_min = None;
            for j in k + 1..self.firsts.len() {
                match self.firsts.get(j) {
                    Some(Some(g)) => {
                        if let Some(m) = g.first_record() {
                            next_min = Some(m);
                            break;
                        }
                    }
                    _ => return,
                }
            }
            let Some(next_min) = next_min else {
                return; // the last block holding records: written at the end
            };
            let Some(&index) = self.blocks.get(k) else {
                return;
            };
            let Some(bp) = compat::early_block(index, f, &self.tombs, next_min, self.covered)
            else {
                self.abort(format!("msgs/{index}.blk is kept as it is"));
                return;
            };
            let held = self.held.remove(&k);
            let res = {
                let bytes: &[u8] = match &held {
                    Some((_, Some(plain))) => plain,
                    Some((buf, None)) => buf,
                    None => &[],
                };
                let mut blk = Block {
                    data: BlockData::Mem { undecodable: None },
                    buf: bytes,
                    size: bytes.len() as u64,
                };
                v1::compat_block(
                    tb,
                    &self.provisional,
                    &bp,
                    self.cfg_name,
                    &mut blk,
                    self.st,
                    &mut self.scratch,
                )
            };
            if let Some((buf, _)) = held {
                gate.give(buf);
            }
            match res {
                Ok(t) => self.last_tail = t,
                Err(e) => {
                    // today's path writes it again and reports the error where it happens
                    self.abort(format!("writing: {e}"));
                    return;
                }
            }
            if let Some(e) = bp.end {
                self.covered = self.covered.max(e);
            }
            self.written.push(bp);
            self.next_write += 1;
        }
    }
}

/// Drops the unfinished output and removes the stage.
fn discard<W: Write>(tb: tar::Builder<W>, stage: &Stage) {
    drop(tb);
    stage.discard();
}
