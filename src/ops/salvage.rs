//! `jetdir salvage`: every good record of a stream, also past damage, written as a clean
//! stream dir (or, through `pack`, as a backup).
//!
//! The records come from the forensics walker ([`crate::forensics::StreamWalker`]), which
//! resynchronises past a damaged record on the next record whose framing and checksum are
//! valid. Kept: every message the server serves, and every valid record the server's load
//! would cut (truncated after damage) or cannot serve (counted by a trusted index.db). Not
//! kept: deleted and erased messages, and messages the stream's limits remove at load.
//!
//! The stream dir written: the source's `meta.inf` (with a fresh `meta.sum`), plain blocks of
//! at most 8 MiB holding the kept records (checksums recomputed for their new block), a 30-byte
//! erased placeholder (`seq | 1<<63`, what the server's own compaction writes) for every
//! sequence in between and up to the stream's last sequence, so first/last sequence and the
//! deleted set survive for every release (2.9 included); no index (the server rebuilds the
//! state from the blocks); consumers with their `meta.inf` and an `o.dat` clamped to the
//! surviving range. The stream dir is staged beside OUT (`.`-prefixed, pid-tagged), verified
//! by jetdir's own verifier, fsynced and renamed; for `v1`, `v2` and `tgz` it is handed to
//! `pack`, which verifies it again and stages its own output. The input is only read.
use crate::base::problem::{Problem, Severity};
use crate::base::progress::Progress;
use crate::base::report::Outcome;
use crate::filestore::block::{self, EBIT};
use crate::filestore::consumer_state;
use crate::filestore::discover::StreamDir;
use crate::filestore::meta::{self, MetaInf};
use crate::forensics::{self, Event, Filter, Gone};
use crate::ops::pack::{self, PackFormat, PackOptions, PackedFile};
use crate::ops::staging::{self, AlignedBuf, FileJob, FileWriter, Perms, Stage};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The form `jetdir salvage` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SalvageFormat {
    /// A stream dir, to put into a stopped server's `jetstream/<ACC>/streams/`.
    Dir,
    /// A backup as `jetdir pack` writes it.
    Pack(PackFormat),
}

impl SalvageFormat {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SalvageFormat::Dir => "dir",
            SalvageFormat::Pack(p) => p.as_str(),
        }
    }
}

/// What `jetdir salvage` was asked to do.
#[derive(Debug, Clone)]
pub struct SalvageOptions {
    /// OUT (never overwritten).
    pub out: PathBuf,
    /// The form written.
    pub format: SalvageFormat,
    /// `--stream`, when PATH holds several.
    pub stream: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// The load is modelled at this time (ns): which records the server would serve.
    pub at_ns: i64,
    /// `--server-version`: the release that will load the output (pack formats lay the
    /// backup out for it, e.g. 2.9 blocks and `.idx` files for a 2.9 target).
    pub server_version: Option<pack::target::ServerVersion>,
    /// The keys of an encrypted source (the output is plaintext, as pack writes it).
    pub keys: crate::filestore::keys::KeyRing,
}

/// A consumer written.
#[derive(Debug, Clone, Serialize)]
pub struct SalvagedConsumer {
    /// Its name.
    pub name: String,
    /// Always true: a consumer written into the output is one the server loads from it.
    pub loads: bool,
    /// Last delivered stream sequence written.
    pub delivered_stream_seq: u64,
    /// Ack floor stream sequence written.
    pub ack_floor_stream_seq: u64,
    /// Delivered and not acknowledged, as written.
    pub num_ack_pending: Option<u64>,
    /// Not computed by salvage (`null`): verify the output for it.
    pub num_pending: Option<u64>,
    /// True when o.dat's numbers were lowered to the surviving range.
    pub clamped: bool,
    /// o.dat could not be read: written without one (the server starts the consumer from its
    /// deliver policy).
    pub no_state: bool,
}

/// The stream salvaged.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SalvagedStream {
    /// Account.
    pub account: String,
    /// Stream name.
    pub name: String,
    /// What was read.
    pub source: String,
    /// Messages written.
    pub messages: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// First sequence written (0 when none).
    pub first_seq: u64,
    /// Last sequence of the written stream.
    pub last_seq: u64,
    /// Sequences between first and last without a message (written as erased placeholders).
    pub deleted: u64,
    /// Time of the first message written; JSON also `first_time`.
    #[serde(flatten, serialize_with = "first_time")]
    pub first_ts: Option<i64>,
    /// Time of the last message written; JSON also `last_time`.
    #[serde(flatten, serialize_with = "last_time")]
    pub last_ts: Option<i64>,
    /// Messages a server started on the input would serve after its load.
    pub served_by_input: u64,
    /// Messages written that the server's load of the input would lose or not serve.
    pub recovered: u64,
    /// Those sequences, as inclusive ranges (at most 1000).
    pub recovered_ranges: Vec<(u64, u64)>,
    /// Messages lost for good: damaged records (no valid copy on disk).
    pub lost: u64,
    /// Those sequences, as inclusive ranges (at most 1000).
    pub lost_ranges: Vec<(u64, u64)>,
    /// Deleted messages written again: their delete was known only to an index the load
    /// does not trust, or to a damaged part (the server's load serves them too).
    pub revived: Vec<u64>,
    /// Messages not written because the stream's limits remove them at load.
    pub removed_by_limits: u64,
    /// Consumers written.
    pub consumers: Vec<SalvagedConsumer>,
}

fn first_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("first", *ns, s)
}

fn last_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("last", *ns, s)
}

/// The result of `jetdir salvage` (its JSON report).
#[derive(Debug, Clone, Serialize, Default)]
pub struct SalvageReport {
    /// True when OUT was written from an undamaged input (exit 0).
    pub ok: bool,
    /// True when OUT was written.
    pub written: bool,
    /// `dir`, `v1`, `v2` or `tgz`.
    pub format: String,
    /// OUT.
    pub out: String,
    /// Why nothing was written.
    pub refused: Option<String>,
    /// The stream salvaged (one).
    pub streams: Vec<SalvagedStream>,
    /// Files written (pack formats: the backup's files).
    pub files: Vec<PackedFile>,
    /// The input's findings (at most 100), in stream order.
    pub problems: Vec<Problem>,
    /// Things to know.
    pub notes: Vec<String>,
    #[serde(skip)]
    outcome: Outcome,
}

impl SalvageReport {
    /// 0 written from a healthy input; 1 written from a damaged input (what was lost is
    /// listed); 2 could not run (nothing written).
    pub fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }
    fn refuse(mut self, why: String) -> Self {
        self.ok = false;
        self.written = false;
        self.outcome = Outcome::CouldNotRun;
        self.refused = Some(why);
        self
    }
}

/// Blocks written roll over past this size (the server's largest block size).
const BLOCK_SIZE: usize = 8 << 20;
/// Room of a block buffer: a block ends with the record that crosses [`BLOCK_SIZE`].
const BLOCK_CAP: usize = BLOCK_SIZE + (1 << 16);
/// Most placeholders written for one gap (30 bytes each: 30 MiB); a larger gap is left as a
/// gap (2.10+ count it as deleted).
const FILL_CAP: u64 = 1 << 20;
const MAX_RANGES: usize = 1000;
const MAX_FINDINGS: usize = 100;

fn push_range(v: &mut Vec<(u64, u64)>, seq: u64) -> bool {
    if let Some(last) = v.last_mut() {
        if last.1 + 1 == seq {
            last.1 = seq;
            return true;
        }
    }
    if v.len() < MAX_RANGES {
        v.push((seq, seq));
    }
    true
}

/// Writes the blocks of the salvaged stream into the stage: each full block is written and
/// fsynced by a [`FileWriter`] on its own thread while the walk fills the next one (the
/// walking thread had spent about a third of a clean salvage waiting for writes and fsyncs).
struct BlockWriter<'s> {
    stage: &'s mut Stage,
    /// Where the stream dir is in the stage (`""` or `NAME/`).
    prefix: String,
    name: String,
    index: u32,
    key: highway::Key,
    buf: AlignedBuf,
    writer: FileWriter,
    /// Last sequence written (message or placeholder).
    last: Option<u64>,
    last_ts: i64,
}

impl BlockWriter<'_> {
    fn flush(&mut self) -> std::io::Result<()> {
        let len = self.buf.data().len();
        if len == 0 {
            return Ok(());
        }
        let rel = format!("{}msgs/{}.blk", self.prefix, self.index);
        if let Some(path) = self.stage.prepare(&rel)? {
            let data = std::mem::replace(&mut self.buf, AlignedBuf::with_capacity(0));
            // waits for the previous block's write, whose buffer then comes back
            self.writer.write(FileJob { path, data })?;
            self.buf = if len > BLOCK_SIZE + (1 << 20) {
                // a block of a big record: written before the next fills (two of them at
                // once would pass the memory bound), and its buffer not kept
                self.writer.wait_written()?;
                AlignedBuf::with_capacity(BLOCK_CAP)
            } else {
                self.writer
                    .reuse()
                    .unwrap_or_else(|| AlignedBuf::with_capacity(BLOCK_CAP))
            };
        }
        self.buf.reset();
        self.stage.planned(&rel, len as u64);
        self.index += 1;
        self.key = block::block_key(&self.name, self.index);
        Ok(())
    }
    fn room(&mut self) -> std::io::Result<()> {
        if self.buf.data().len() >= BLOCK_SIZE {
            self.flush()?;
        }
        Ok(())
    }
    /// Placeholders for every sequence after the last written up to `upto` (exclusive).
    fn fill(&mut self, upto: u64, ts: i64) -> std::io::Result<u64> {
        let Some(last) = self.last else { return Ok(0) };
        if upto <= last + 1 || upto - last - 1 > FILL_CAP {
            return Ok(0);
        }
        for s in last + 1..upto {
            self.room()?;
            block::encode_record(&mut self.buf.buf, &self.key, s | EBIT, ts, b"", None, b"");
        }
        self.last = Some(upto - 1);
        Ok(upto - last - 1)
    }
    fn message(&mut self, m: &forensics::Msg) -> std::io::Result<()> {
        self.fill(m.seq, self.last_ts)?;
        self.room()?;
        let h = (!m.headers.is_empty()).then_some(m.headers);
        block::encode_record(
            &mut self.buf.buf,
            &self.key,
            m.seq,
            m.ts,
            m.subject,
            h,
            m.payload,
        );
        self.last = Some(m.seq);
        self.last_ts = m.ts;
        Ok(())
    }
}

/// Salvage the one stream PATH names (or `--stream`) into OUT.
pub fn salvage(
    path: &Path,
    opts: &SalvageOptions,
    progress: &dyn Progress,
) -> anyhow::Result<SalvageReport> {
    let mut report = SalvageReport {
        format: opts.format.as_str().to_string(),
        out: opts.out.display().to_string(),
        ..Default::default()
    };
    let all = forensics::streams_with_keys(path, &opts.keys)?;
    let mut sel = forensics::select(all, path, opts.stream.as_deref(), opts.account.as_deref())?;
    if sel.len() > 1 {
        let names: Vec<String> = sel
            .iter()
            .map(|s| format!("{} > {}", s.account, s.name))
            .collect();
        anyhow::bail!(
            "{} holds {} streams ({}): name one with --stream",
            path.display(),
            sel.len(),
            names.join(", ")
        );
    }
    let sref = sel.remove(0);
    let out = &opts.out;
    let out_dir = staging::parent_dir(out);
    if !out_dir.is_dir() {
        return Ok(report.refuse(format!(
            "{} does not exist (or is not a directory): create it first",
            out_dir.display()
        )));
    }
    if fs::symlink_metadata(out).is_ok() {
        return Ok(report.refuse(format!(
            "{} exists; salvage never overwrites",
            out.display()
        )));
    }
    if opts.format == SalvageFormat::Dir
        && out
            .file_name()
            .is_some_and(|n| n.to_string_lossy() != sref.name)
    {
        return Ok(report.refuse(format!(
            "OUT must be a stream dir named after the stream ({}): the server keys meta.sum and the \
             block checksums with the directory name; e.g. {}",
            sref.name,
            out_dir.join(&sref.name).display()
        )));
    }
    // the input is read as the release that wrote it serves it (`server_version` is the
    // release that will restore the output)
    let target = crate::check::Target {
        release: None,
        at_ns: opts.at_ns,
    };
    let w = forensics::open_with_keys(&sref, &target, &opts.keys)?;
    if w.is_v2() {
        return salvage_v2(&sref, opts, progress, report);
    }
    let rep = w.report.clone().unwrap_or_default();
    let meta_raw = match w.read_file("meta.inf") {
        Ok(Some(b)) if MetaInf::parse(&b).is_ok() => b,
        _ => match &rep.config {
            Some(c) => serde_json::to_vec(c)?,
            None => {
                return Ok(report.refuse(format!(
                    "{}: meta.inf (the stream's config) is missing or unreadable, and no backup \
                     metadata holds the config: nothing to build a stream from",
                    sref.path().display()
                )))
            }
        },
    };
    let cfg = MetaInf::parse(&meta_raw)?;
    let cfg_name = cfg.name().unwrap_or(&sref.name).to_string();
    if cfg_name != sref.name {
        report.notes.push(format!(
            "meta.inf names the stream {cfg_name:?}; the stream dir written is named after it"
        ));
    }
    // where OUT is staged: the stream dir itself (dir), or a stream dir inside a staging dir
    // that pack reads (v1, v2, tgz)
    let stage_root = staging::staging_path(out, "jetdir-salvage-");
    let (stage_dir, stream_dir) = match opts.format {
        SalvageFormat::Dir => (stage_root.clone(), stage_root.clone()),
        SalvageFormat::Pack(_) => (stage_root.clone(), stage_root.join(&cfg_name)),
    };
    if fs::symlink_metadata(&stage_root).is_ok() {
        let _ = staging::remove_leftover(&stage_root);
    }
    let res = write_stream(
        &w,
        &rep,
        &meta_raw,
        &cfg_name,
        &stage_dir,
        &stream_dir,
        &mut report,
        progress,
    );
    let st = match res {
        Ok(st) => st,
        Err(e) => {
            let _ = fs::remove_dir_all(&stage_dir);
            return Err(e);
        }
    };
    // the stream dir written must verify clean (the walk's buffers and freed heap go back
    // first: the verify's threads would not reuse them)
    crate::filestore::source::release_block_buffers();
    crate::base::heap::release();
    progress.phase("verify");
    progress.start(crate::check::store::total_block_bytes(
        std::slice::from_ref(&StreamDir {
            account: sref.account.clone(),
            name: cfg_name.clone(),
            dir: stream_dir.clone(),
        }),
    ));
    let sd = StreamDir {
        account: sref.account.clone(),
        name: cfg_name.clone(),
        dir: stream_dir.clone(),
    };
    let (_, vprobs) =
        crate::check::store::verify_stream_dir(&sd, &crate::check::Options::default(), progress);
    progress.finish();
    if let Some(p) = vprobs.iter().find(|p| p.severity == Severity::Error) {
        let _ = fs::remove_dir_all(&stage_dir);
        anyhow::bail!(
            "the salvaged stream does not verify ({}: {}); nothing written",
            p.kind.as_str(),
            p.message
        );
    }
    match opts.format {
        SalvageFormat::Dir => {
            if let Err(e) = staging::fsync_dir(&stage_dir)
                .and_then(|()| staging::fsync_dir(&stage_dir.join("msgs")))
            {
                let _ = fs::remove_dir_all(&stage_dir);
                anyhow::bail!("{}: cannot sync: {e}", stage_dir.display());
            }
            if fs::symlink_metadata(out).is_ok() {
                let _ = fs::remove_dir_all(&stage_dir);
                return Ok(report.refuse(format!(
                    "{} appeared meanwhile; nothing replaced",
                    out.display()
                )));
            }
            if let Err(e) = fs::rename(&stage_dir, out) {
                let _ = fs::remove_dir_all(&stage_dir);
                anyhow::bail!(
                    "cannot rename {} to {}: {e}",
                    stage_dir.display(),
                    out.display()
                );
            }
            staging::fsync_dir(&out_dir)
                .map_err(|e| anyhow::anyhow!("{}: cannot sync: {e}", out_dir.display()))?;
            report.files = dir_files(out);
        }
        SalvageFormat::Pack(f) => {
            let popts = PackOptions {
                out: out.clone(),
                stream: None,
                account: None,
                format: f,
                all: false,
                allow_damaged: false,
                no_consumers: false,
                force: false,
                server_version: opts.server_version,
                // the salvaged stream is plaintext
                keys: Default::default(),
                rename: None,
            };
            // the walk's and the verify's threads are done: their block buffers and freed
            // heap go back before pack's threads allocate theirs (else the peaks add up)
            crate::filestore::source::release_block_buffers();
            crate::base::heap::release();
            let pr = pack::pack(&stream_dir, &popts, progress);
            let _ = fs::remove_dir_all(&stage_dir);
            let pr = pr?;
            if let Some(why) = &pr.refused {
                return Ok(report.refuse(format!("pack refused the salvaged stream: {why}")));
            }
            report.files = pr.files.clone();
            report.notes.extend(pr.notes.iter().cloned());
        }
    }
    let damaged = report
        .problems
        .iter()
        .any(|p| p.severity == Severity::Error)
        || st.lost > 0;
    report.written = true;
    report.ok = !damaged;
    report.outcome = if damaged {
        Outcome::Damaged
    } else {
        Outcome::Clean
    };
    report.streams.push(st);
    Ok(report)
}

/// A V2 (NATSARC1) backup holds messages, not blocks: it is extracted (as `jetdir extract
/// --allow-damaged` does: everything readable up to damage) into a private store beside OUT,
/// whose stream is then salvaged; the private store is removed.
fn salvage_v2(
    sref: &forensics::StreamRef,
    opts: &SalvageOptions,
    progress: &dyn Progress,
    mut report: SalvageReport,
) -> anyhow::Result<SalvageReport> {
    let tmp = staging::staging_path(&opts.out, "jetdir-salvage-v2-");
    if fs::symlink_metadata(&tmp).is_ok() {
        let _ = staging::remove_leftover(&tmp);
    }
    let eopts = crate::ops::extract::ExtractOptions {
        store_dir: tmp.clone(),
        account: "$G".to_string(),
        dry_run: false,
        allow_damaged: true,
        force: true,
        create: true,
        server_version: None,
        rename: None,
        keys: Default::default(),
    };
    let res = crate::ops::extract::extract(&sref.path(), &eopts, progress);
    let ex = match res {
        Ok(ex) => ex,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if let Some(why) = &ex.refused {
        let _ = fs::remove_dir_all(&tmp);
        return Ok(report.refuse(format!(
            "{}: the V2 backup could not be read into a stream: {why}",
            sref.path().display()
        )));
    }
    let dir = tmp.join("jetstream/$G/streams").join(&sref.name);
    let inner = SalvageOptions {
        stream: None,
        account: None,
        ..opts.clone()
    };
    let r = salvage(&dir, &inner, progress);
    let _ = fs::remove_dir_all(&tmp);
    let mut r = r?;
    // what the archive held: its findings, and where it was read from
    let damaged = ex.problems.iter().any(|p| p.severity == Severity::Error);
    let mut probs = ex.problems.clone();
    probs.truncate(MAX_FINDINGS);
    probs.append(&mut r.problems);
    r.problems = probs;
    for st in &mut r.streams {
        st.source = sref.path().display().to_string();
        st.account = sref.account.clone();
    }
    r.notes.insert(
        0,
        "a V2 backup holds only the messages it was made with: read up to its first damage \
         (extract --allow-damaged), then salvaged"
            .to_string(),
    );
    if damaged && r.written {
        r.ok = false;
        r.outcome = Outcome::Damaged;
    }
    report.notes.clear();
    Ok(r)
}

/// Every file of the stream dir written, with its SHA-256 (hashed on all cores).
fn dir_files(root: &Path) -> Vec<PackedFile> {
    use rayon::prelude::*;
    let entries: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .collect();
    let mut v: Vec<PackedFile> = crate::base::par::one_per_job(&entries)
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap_or(e.path())
                .to_string_lossy()
                .into_owned();
            let data = fs::read(e.path()).unwrap_or_default();
            PackedFile {
                path: rel,
                bytes: data.len() as u64,
                sha256: crate::backup::manifest::sha256_hex(&data),
            }
        })
        .collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

/// Sequences the input's damage touches: what the load loses or cannot serve, and every
/// error finding's sequences.
fn damage_candidates(
    rep: &crate::base::report::StreamReport,
    probs: &[Problem],
) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = Vec::new();
    if let Some(l) = &rep.load {
        v.extend(l.lost.iter().copied());
        v.extend(l.unreadable.iter().copied());
    }
    for p in probs {
        if p.severity == Severity::Error {
            // the record named (seq_end is what a rebuild would cut, told by the load above)
            if let Some(s) = p.loc.seq {
                v.push((s, s));
            }
        }
    }
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn write_stream(
    w: &forensics::StreamWalker,
    rep: &crate::base::report::StreamReport,
    meta_raw: &[u8],
    cfg_name: &str,
    stage_dir: &Path,
    stream_dir: &Path,
    report: &mut SalvageReport,
    progress: &dyn Progress,
) -> anyhow::Result<SalvagedStream> {
    let mut stage = Stage::create(stage_dir, Perms::Private)?;
    let prefix = if stream_dir == stage_dir {
        String::new()
    } else {
        stage.dir(cfg_name)?;
        format!("{cfg_name}/")
    };
    let sref = w.stream();
    // a stream the server does not load (meta.inf / meta.sum): it serves none of it
    let skipped = rep
        .load
        .as_ref()
        .is_some_and(|l| l.verdict == crate::base::report::Verdict::Skipped);
    let mut st = SalvagedStream {
        account: sref.account.clone(),
        name: cfg_name.to_string(),
        source: sref.path().display().to_string(),
        served_by_input: if skipped {
            0
        } else {
            rep.messages.unwrap_or(0)
        }
        .saturating_sub(
            rep.load
                .as_ref()
                .map_or(0, |l| l.unreadable.iter().map(|(a, b)| b - a + 1).sum()),
        ),
        ..Default::default()
    };
    let revived: BTreeSet<u64> = rep
        .load
        .as_ref()
        .map(|l| l.revived.iter().copied().collect())
        .unwrap_or_default();
    stage.write_file(&format!("{prefix}meta.inf"), meta_raw)?;
    stage.write_file(
        &format!("{prefix}meta.sum"),
        meta::expected_sum(cfg_name, meta_raw).as_bytes(),
    )?;
    stage.dir(&format!("{prefix}msgs"))?;
    let candidates = damage_candidates(rep, w.problems());
    let in_candidates = |s: u64| candidates.iter().any(|&(a, b)| a <= s && s <= b);
    // sequences of the damaged ranges that a valid record (kept or deleted) accounts for
    let mut accounted: BTreeSet<u64> = BTreeSet::new();
    let mut first: Option<u64> = None;
    let mut err: Option<std::io::Error> = None;
    let mut filled = 0u64;
    {
        let mut bw = BlockWriter {
            stage: &mut stage,
            prefix: prefix.clone(),
            name: cfg_name.to_string(),
            index: 1,
            key: block::block_key(cfg_name, 1),
            buf: AlignedBuf::with_capacity(BLOCK_CAP),
            writer: FileWriter::new(),
            last: None,
            last_ts: 0,
        };
        let filter = Filter {
            include_deleted: true,
            verified_only: true,
            ..Default::default()
        };
        progress.phase("write");
        progress.start(rep.bytes.unwrap_or(0));
        let mut pending = 0u64;
        w.walk(&filter, &mut |ev| {
            match ev {
                Event::Finding(p) => {
                    if report.problems.len() < MAX_FINDINGS {
                        report.problems.push(p.clone());
                    }
                }
                Event::Msg(m) => {
                    pending += m.size;
                    if pending >= 1 << 20 {
                        let what = format!("{} > {} {}", m.account, m.stream, m.file);
                        progress.advance(std::mem::take(&mut pending), &what);
                    }
                    let keep = match m.gone {
                        None if skipped => {
                            st.recovered += 1;
                            push_range(&mut st.recovered_ranges, m.seq);
                            true
                        }
                        None => true,
                        Some(Gone::Lost) | Some(Gone::Unreadable) => {
                            st.recovered += 1;
                            push_range(&mut st.recovered_ranges, m.seq);
                            true
                        }
                        Some(Gone::Removed(_)) => {
                            st.removed_by_limits += 1;
                            false
                        }
                        Some(Gone::Deleted) | Some(Gone::Erased) => false,
                    };
                    if in_candidates(m.seq) {
                        accounted.insert(m.seq);
                    }
                    if !keep {
                        return ControlFlow::Continue(());
                    }
                    if first.is_none() {
                        first = Some(m.seq);
                        st.first_ts = Some(m.ts);
                    }
                    st.last_ts = Some(m.ts);
                    if revived.contains(&m.seq) && st.revived.len() < MAX_RANGES {
                        st.revived.push(m.seq);
                    }
                    let before = bw.last;
                    if let Err(e) = bw.message(&m) {
                        err = Some(e);
                        return ControlFlow::Break(());
                    }
                    if let Some(b) = before {
                        filled += m.seq.saturating_sub(b + 1).min(FILL_CAP);
                    }
                    st.messages += 1;
                    st.bytes += m.size;
                }
                Event::Rendered(..) => {}
            }
            ControlFlow::Continue(())
        })?;
        progress.finish();
        if let Some(e) = err {
            return Err(e.into());
        }
        // up to the stream's last sequence (deleted tail), at least one placeholder when the
        // stream has sequences and no message left
        let last_seq = rep.last_seq.unwrap_or(0).max(bw.last.unwrap_or(0));
        if bw.last.is_none() && last_seq > 0 {
            bw.last = Some(last_seq - 1);
            bw.fill(last_seq + 1, rep.last_ts.unwrap_or(0))?;
        } else if let Some(l) = bw.last {
            if last_seq > l {
                let ts = bw.last_ts;
                filled += bw.fill(last_seq + 1, ts)?;
            }
        }
        bw.flush()?;
        bw.writer.finish()?;
        st.first_seq = first.unwrap_or(0);
        st.last_seq = last_seq;
    }
    st.deleted = if st.messages == 0 { 0 } else { filled };
    // lost for good: damaged sequences no valid record accounts for
    for &(a, b) in &candidates {
        for s in a..=b.min(a.saturating_add(10_000_000)) {
            if !accounted.contains(&s) && s <= st.last_seq.max(b) {
                st.lost += 1;
                push_range(&mut st.lost_ranges, s);
            }
        }
    }
    // consumers
    let names: BTreeSet<String> = w
        .file_names()
        .iter()
        .filter_map(|f| {
            let rest = f.strip_prefix("obs/")?;
            let (c, file) = rest.split_once('/')?;
            (file == "meta.inf").then(|| c.to_string())
        })
        .collect();
    for c in names {
        let Ok(Some(cmeta)) = w.read_file(&format!("obs/{c}/meta.inf")) else {
            continue;
        };
        if MetaInf::parse(&cmeta).is_err() {
            report
                .notes
                .push(format!("consumer {c}: meta.inf unreadable; left out"));
            continue;
        }
        let base = format!("{prefix}obs/{c}");
        stage.dir(&base)?;
        stage.write_file(&format!("{base}/meta.inf"), &cmeta)?;
        stage.write_file(
            &format!("{base}/meta.sum"),
            meta::expected_sum(&format!("{cfg_name}/{c}"), &cmeta).as_bytes(),
        )?;
        let state = w
            .read_file(&format!("obs/{c}/o.dat"))
            .ok()
            .flatten()
            .and_then(|b| consumer_state::parse(&b).ok().flatten());
        let Some(mut cs) = state else {
            report.notes.push(format!(
                "consumer {c}: no readable o.dat; written without one (the server starts it from its deliver policy)"
            ));
            st.consumers.push(SalvagedConsumer {
                name: c,
                loads: true,
                delivered_stream_seq: 0,
                ack_floor_stream_seq: 0,
                num_ack_pending: None,
                num_pending: None,
                clamped: false,
                no_state: true,
            });
            continue;
        };
        let last = st.last_seq;
        let mut clamped = false;
        if cs.delivered.stream_seq > last {
            cs.delivered.stream_seq = last;
            clamped = true;
        }
        if cs.ack_floor.stream_seq > cs.delivered.stream_seq {
            cs.ack_floor.stream_seq = cs.delivered.stream_seq;
            clamped = true;
        }
        if cs.ack_floor.consumer_seq > cs.delivered.consumer_seq {
            cs.ack_floor.consumer_seq = cs.delivered.consumer_seq;
            clamped = true;
        }
        let (af, dl) = (cs.ack_floor.stream_seq, cs.delivered.stream_seq);
        let n = cs.pending.len() + cs.redelivered.len();
        cs.pending
            .retain(|p| p.stream_seq > af && p.stream_seq <= dl);
        cs.redelivered.retain(|&(s, _)| s > af && s <= dl);
        clamped |= n != cs.pending.len() + cs.redelivered.len();
        if cs.pending.is_empty() {
            cs.base_ts_secs = 0;
        }
        stage.write_file(&format!("{base}/o.dat"), &consumer_state::encode(&cs))?;
        st.consumers.push(SalvagedConsumer {
            name: c,
            loads: true,
            delivered_stream_seq: cs.delivered.stream_seq,
            ack_floor_stream_seq: cs.ack_floor.stream_seq,
            num_ack_pending: Some(cs.pending.len() as u64),
            num_pending: None,
            clamped,
            no_state: false,
        });
    }
    stage.finish()?;
    Ok(st)
}
