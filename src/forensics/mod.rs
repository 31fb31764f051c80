//! Forensics: read the messages of a stream (store dir, stream dir or any backup form) the way
//! the server would serve them after loading these files, without starting a server.
//!
//! One walker ([`StreamWalker`]) hands out the records of one stream in sequence order with
//! where they lie (file, offset) and, between them, the findings about damaged records, so
//! nothing is skipped silently. It uses the load model ([`crate::check::store::finish_stream`])
//! to know which records the server serves: a first pass scans every block (checksums
//! included) and decides deaths, truncations, unreadable records and limits; a second pass
//! reads one block at a time and hands out the records. Memory is bounded by one block plus
//! per-block live bitmaps and the stream's tombstones. V2 (NATSARC1) archives hold only live
//! messages and are read in one pass.
//!
//! [`dump`], [`kv`] and [`object`] build on it.
pub mod diff;
pub mod dump;
pub mod explain;
pub mod kv;
pub mod object;

use crate::backup::backup_json;
use crate::backup::detect::{self, ArchiveKind, Detected};
use crate::backup::natsarc::{EntryRole, V2Options, V2Scan};
use crate::backup::tar_walk::{self, TarOptions};
use crate::base::problem::{Problem, Severity};
use crate::check::store::{self, LoadInput};
use crate::check::Options;
use crate::filestore::block::{self, RecordKind};
use crate::filestore::discover::{self, StreamDir};
use crate::filestore::layout::StreamFile;
use crate::filestore::source::{read_reusing, DirSource, StreamSource};
use crate::state::scan::{self, BlockScan, DeadSet, FxBuild, ScanCtx, SeqBits};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

/// Why a record found on disk is not served (shown only with `include_deleted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Deleted: in a delete map, below a first sequence, or named by a tombstone.
    Deleted,
    /// An erased ("secure delete") record: its bytes are overwritten.
    Erased,
    /// Cut by the server's truncation of a damaged block at load.
    Lost,
    /// Counted by a trusted index.db but its checksum fails: the server cannot serve it.
    Unreadable,
    /// Removed at load by a limit (`max_msgs`, `max_age`, …; the name is in [`Gone::as_str`]).
    Removed(&'static str),
}

impl Gone {
    /// The identifier in the output (`deleted`, `erased`, `lost`, `unreadable`, `max_age`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Gone::Deleted => "deleted",
            Gone::Erased => "erased",
            Gone::Lost => "lost",
            Gone::Unreadable => "unreadable",
            Gone::Removed(l) => l,
        }
    }
}

/// One record handed out by the walker.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// Account of the stream.
    pub account: &'a str,
    /// Stream name.
    pub stream: &'a str,
    /// Stream sequence.
    pub seq: u64,
    /// Time, ns since the epoch.
    pub ts: i64,
    /// Subject.
    pub subject: &'a [u8],
    /// Raw NATS header block (empty when none).
    pub headers: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
    /// File holding it (relative to the stream dir; `archive:member` inside archives).
    pub file: &'a str,
    /// Offset of the record in that file (in the plain block for compressed blocks; in the
    /// decoded archive for V2 entries).
    pub offset: u64,
    /// Stored size as the server counts it (file-store record length).
    pub size: u64,
    /// `None` when the server serves it; else why not (only with `include_deleted`).
    pub gone: Option<Gone>,
}

impl<'a> Msg<'a> {
    /// The message a block's record holds (`file` is the block's name).
    pub(crate) fn of_record(
        r: &block::Record<'a>,
        account: &'a str,
        stream: &'a str,
        file: &'a str,
        gone: Option<Gone>,
    ) -> Self {
        Msg {
            account,
            stream,
            seq: r.seq,
            ts: r.ts,
            subject: r.subject,
            headers: r.headers.unwrap_or(&[]),
            payload: r.payload,
            file,
            offset: r.offset as u64,
            size: u64::from(r.len),
            gone,
        }
    }
}

/// What the walker hands out: a message, or a finding at its place in the stream.
#[derive(Debug)]
pub enum Event<'a> {
    /// A record.
    Msg(Msg<'a>),
    /// A finding (damage, a load decision) about the stream.
    Finding(&'a Problem),
    /// Messages already rendered by the walk's renderer ([`StreamWalker::walk_rendered`]):
    /// one, or several in a row (no finding between them), the last with this sequence.
    Rendered(u64, &'a [u8]),
}

/// Renders one message into bytes (called on worker threads, so blocks render in parallel).
pub type Render<'r> = &'r (dyn Fn(&Msg, &mut Vec<u8>) + Sync);

/// Messages whose headers and payload together pass this many bytes are not rendered by a
/// [`StreamWalker::walk_rendered`] walk but handed out as [`Event::Msg`], for the caller to
/// write straight from the block in bounded pieces: a record of up to 32 MiB then costs no
/// second copy (or a larger encoded one) of itself. As large as [`RUN_BYTES`]: a run then
/// renders at most 2 x 256 KiB of records, 3 MiB where every byte becomes a 6-byte JSON
/// escape (with 1 MiB, runs of one 1 MB record rendered 6 MiB each, two at once beside the
/// 8 MiB waiting: 68 MiB peak RSS of the debug build in CI).
pub const RENDER_INLINE_MAX: usize = RUN_BYTES;
/// Render buffers up to this capacity are kept for the next records.
const POOLED_MAX: usize = 4 << 20;
/// Bytes of a plain block read at a time by a rendered walk (`emit_streamed`): with what
/// they render to, they stay in the CPU's cache until they are rendered.
const PIECE: usize = 256 << 10;
/// Records rendered by one task of a [`StreamWalker::walk_rendered`] walk, at most.
const RENDER_CHUNK: usize = 256;
/// Header and payload bytes of the records of one such task, at most (one record may pass
/// it, up to [`RENDER_INLINE_MAX`]): what one task renders stays a few MiB even where every
/// byte becomes six (JSON escapes).
const RUN_BYTES: usize = 256 << 10;
/// Runs framed ahead of the records being handed out (the records of a block are in its
/// buffer already: this bounds the small record lists, not bytes; with 8 the walking thread
/// rendered most runs itself and the other core idled).
const RENDER_AHEAD: usize = 64;
/// Rendered bytes waiting to be handed out above which workers start no new run (they wait
/// behind a slow reader of the output; JSON escaping can make 6 bytes of one).
const RENDERED_MAX: usize = 8 << 20;

/// True when [`StreamWalker::walk_rendered`] hands `m` out unrendered ([`RENDER_INLINE_MAX`]).
pub fn render_streamed(m: &Msg) -> bool {
    m.headers.len() + m.payload.len() > RENDER_INLINE_MAX
}

/// Which records to hand out.
#[derive(Debug, Clone)]
pub struct Filter {
    /// NATS subject filter (`*`, `>`); `None` = every subject.
    pub subject: Option<Vec<u8>>,
    /// Inclusive sequence range.
    pub seq: (u64, u64),
    /// Only records at or after this time (ns).
    pub since: Option<i64>,
    /// Only records at or before this time (ns).
    pub until: Option<i64>,
    /// Only the last N matching records.
    pub last: Option<u64>,
    /// Also records the server does not serve (deleted, erased, lost, …).
    pub include_deleted: bool,
    /// Only records whose checksum is valid and whose content is plausible (salvage: what
    /// may be written again under a new checksum). V2 entries carry no checksum.
    pub verified_only: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            subject: None,
            seq: (0, u64::MAX),
            since: None,
            until: None,
            last: None,
            include_deleted: false,
            verified_only: false,
        }
    }
}

impl Filter {
    fn matches(&self, seq: u64, ts: i64, subject: &[u8]) -> bool {
        seq >= self.seq.0
            && seq <= self.seq.1
            && self.since.is_none_or(|t| ts >= t)
            && self.until.is_none_or(|t| ts <= t)
            && self
                .subject
                .as_deref()
                .is_none_or(|f| crate::base::subject::matches(f, subject))
    }
    fn seq_overlaps(&self, lo: Option<u64>, hi: Option<u64>) -> bool {
        match (lo, hi) {
            (Some(lo), Some(hi)) => hi >= self.seq.0 && lo <= self.seq.1,
            _ => true,
        }
    }
}

/// Totals of one walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkSummary {
    /// Records handed out.
    pub messages: u64,
    /// Error findings handed out.
    pub errors: u64,
    /// Warning findings handed out.
    pub warnings: u64,
    /// The callback stopped the walk.
    pub stopped: bool,
}

/// Where a stream's files are.
#[derive(Debug, Clone)]
enum Origin {
    Dir(StreamDir),
    Archive(Detected),
}

/// One stream found under a path given to a forensics command.
#[derive(Debug, Clone)]
pub struct StreamRef {
    /// Account (`$G` for backups).
    pub account: String,
    /// Stream name (the directory name; for backups backup.json's or meta.inf's).
    pub name: String,
    origin: Origin,
    /// A tarball of an encrypted stream dir, opened with the keys when it was listed (its
    /// name and account come from it): the walk reuses it, no second first pass.
    enc: Option<OpenedEnc>,
}

/// An opened encrypted tarball shared by the clones of a [`StreamRef`].
#[derive(Clone)]
struct OpenedEnc(std::sync::Arc<crate::filestore::encrypted::EncryptedDir>);

impl std::fmt::Debug for OpenedEnc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedDir({} > {})", self.0.account, self.0.cfg_name)
    }
}

impl StreamRef {
    /// Where it is, for messages.
    pub fn path(&self) -> PathBuf {
        match &self.origin {
            Origin::Dir(sd) => sd.dir.clone(),
            Origin::Archive(d) => d.path.clone(),
        }
    }
}

/// Every stream under `path`: a store / jetstream / account / stream dir, a backup dir (V1 or
/// V2), a bare `stream.tar.s2`, a `.tgz` / `.tar`, or an account backup dir. Errors mean
/// "could not run".
pub fn streams(path: &Path) -> anyhow::Result<Vec<StreamRef>> {
    streams_with_keys(path, &crate::filestore::keys::KeyRing::default())
}

/// [`streams`] when the copies may be encrypted at rest: a tarball of an encrypted stream
/// dir is opened with `keys` to learn its stream's name (its meta.inf is sealed) and the
/// account its keys are derived with (see [`crate::check::archive::source_accounts`]).
pub fn streams_with_keys(
    path: &Path,
    keys: &crate::filestore::keys::KeyRing,
) -> anyhow::Result<Vec<StreamRef>> {
    let det = match detect::detect(path) {
        Ok(d) if d.kind.is_store() => None,
        Ok(d) => Some(d),
        Err(detect::DetectError::Unrecognised { .. }) if path.is_dir() => None,
        Err(e) => return Err(e.into()),
    };
    let Some(d) = det else {
        let lay = discover::discover(path)?;
        return Ok(lay
            .streams
            .into_iter()
            .map(|sd| StreamRef {
                account: sd.account.clone(),
                name: sd.name.clone(),
                origin: Origin::Dir(sd),
                enc: None,
            })
            .collect());
    };
    let list = if d.kind == ArchiveKind::AccountBackupDir {
        d.streams.clone()
    } else {
        vec![d]
    };
    let mut out = Vec::new();
    for d in list {
        let enc = match d.kind {
            ArchiveKind::Tgz | ArchiveKind::Tar if keys.has_key() => {
                let label = crate::check::archive::label_of(&d);
                crate::check::archive::open_encrypted_archive(&d, &label, keys)
                    .map(|e| OpenedEnc(std::sync::Arc::new(e)))
            }
            _ => None,
        };
        let (account, name) = match &enc {
            Some(e) if !e.0.wrong_key => (e.0.account.clone(), e.0.cfg_name.clone()),
            _ => ("$G".to_string(), archive_stream_name(&d)),
        };
        out.push(StreamRef {
            account,
            name,
            origin: Origin::Archive(d),
            enc,
        });
    }
    Ok(out)
}

/// The stream name of a backup: backup.json's, else meta.inf's, else the file or dir name.
fn archive_stream_name(d: &Detected) -> String {
    let bj = d
        .backup_json
        .as_ref()
        .and_then(|p| backup_json::read_backup_json(p).ok());
    if let Some(n) = bj.as_ref().and_then(|b| b.stream_name()) {
        return n.to_string();
    }
    if let Some(p) = &d.payload {
        if is_tar_kind(d.kind) {
            let label = crate::check::archive::label_of(d);
            if let Some(n) = crate::check::archive::stream_name_first(d, p, &label, None) {
                return n;
            }
        }
    }
    let base = if d.kind == ArchiveKind::BackupDirV1 || d.kind == ArchiveKind::BackupDirV2 {
        d.path.clone()
    } else {
        d.payload.clone().unwrap_or_else(|| d.path.clone())
    };
    let n = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    n.split('.').next().unwrap_or(&n).to_string()
}

fn is_tar_kind(k: ArchiveKind) -> bool {
    matches!(
        k,
        ArchiveKind::BackupDirV1 | ArchiveKind::BareV1 | ArchiveKind::Tgz | ArchiveKind::Tar
    )
}

/// Pick the streams a command reads: `stream` (and `account`) narrow the list; an empty
/// result is an error naming what exists.
pub fn select(
    all: Vec<StreamRef>,
    path: &Path,
    stream: Option<&str>,
    account: Option<&str>,
) -> anyhow::Result<Vec<StreamRef>> {
    let names: Vec<String> = all
        .iter()
        .map(|s| format!("{} > {}", s.account, s.name))
        .collect();
    let v: Vec<StreamRef> = all
        .into_iter()
        .filter(|s| stream.is_none_or(|n| s.name == n))
        .filter(|s| account.is_none_or(|a| s.account == a))
        .collect();
    if v.is_empty() {
        let what = match (stream, account) {
            (Some(s), Some(a)) => format!("no stream {s:?} in account {a:?}"),
            (Some(s), None) => format!("no stream {s:?}"),
            (None, Some(a)) => format!("no stream in account {a:?}"),
            (None, None) => "no stream".to_string(),
        };
        anyhow::bail!(
            "{}: {what} (found: {})",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    Ok(v)
}

/// The threads that render a walk's runs beside the walking thread (which frames, hands out
/// and renders too): one fewer than the cores, so that the walker keeps a core and idle
/// renderers do not take it from it.
fn render_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.saturating_sub(1).max(1))
            .thread_name(|i| format!("jetdir-render-{i}"))
            .build()
            .unwrap_or_else(|_| {
                rayon::ThreadPoolBuilder::new()
                    .build()
                    .expect("rayon's default pool")
            })
    })
}

/// Per block: what the first pass learnt.
#[derive(Debug, Clone)]
struct BlockPlan {
    index: u32,
    live: SeqBits,
    min: Option<u64>,
    max: Option<u64>,
    unreadable: bool,
    /// Read as written, although the server cannot read it
    /// ([`StreamSource::rescued_blocks`]): its messages are gone for the server.
    rescued: bool,
}

impl BlockPlan {
    fn of(s: &BlockScan) -> Self {
        BlockPlan {
            index: s.index,
            live: s.live_bits.clone(),
            min: s.min_seq,
            max: s.max_seq,
            unreadable: s.unreadable,
            rescued: false,
        }
    }
}

/// One run of records rendered by a worker: (seq, start, end, index in the run) of each into
/// its bytes, the bytes, and the run's records.
type Rendered<'a> = (
    Vec<(u64, usize, usize, usize)>,
    Vec<u8>,
    Vec<block::Record<'a>>,
);

/// The records of one run of a rendered walk, until a worker (or the walking thread) takes
/// them to render.
type Run<'a> = std::sync::Arc<std::sync::Mutex<Option<Vec<block::Record<'a>>>>>;

/// What [`StreamWalker::classify`] needs of one block, looked up once per block.
struct BlockView<'p> {
    plan: &'p Plan,
    b: &'p BlockPlan,
    /// Sequences below this are dead ([`DeadSet::floor`]).
    floor: u64,
}

/// What the first pass decided for a stream read from blocks (a dir, or a V1 tar).
struct Plan {
    cfg_name: String,
    blocks: Vec<BlockPlan>,
    tombs: HashSet<u64, FxBuild>,
    /// Tombstones in blocks read as written that the server cannot read
    /// ([`BlockPlan::rescued`]): they delete only records of such blocks (the server never
    /// sees them).
    rescued_tombs: HashSet<u64, FxBuild>,
    dead: DeadSet,
    /// Sequences the load takes away, with why.
    gone: Vec<(u64, u64, Gone)>,
    /// Deletes the load forgets (a rebuild drops index-only deletes; a truncation cuts the
    /// tombstones): these messages are served again.
    revived: HashSet<u64, FxBuild>,
    /// Block indexes in archive order (tar members), for archives.
    tar_order: Vec<u32>,
    /// The archive's small files (meta.inf, obs/…), for archives (in plaintext).
    mem: MemFiles,
    /// A tarball of an encrypted stream dir opened with the keys: its blocks' keys.
    enc: Option<std::sync::Arc<crate::filestore::encrypted::EncryptedDir>>,
    /// How the modelled release decodes `cmp` blocks (the walk reads them as the scan did).
    cmp: block::CmpReader,
}

/// How a stream is read: from blocks (with the first pass's plan) or from V2 entries.
enum Shape {
    Blocks(Box<Plan>),
    V2,
}

/// A stream ready to be walked: its findings and the load model's decisions.
pub struct StreamWalker {
    sref: StreamRef,
    /// The keys of an encrypted store (empty: none given).
    keys: crate::filestore::keys::KeyRing,
    kind: Shape,
    /// Every finding of the stream, by sequence (findings without one first).
    problems: Vec<Problem>,
    /// The stream's report as verify computes it (state after the load).
    pub report: Option<crate::base::report::StreamReport>,
    /// The time of the load (a V2 archive's expiry after the restore is decided against it).
    at_ns: i64,
    /// A V2 archive is decoded on the walking thread, with no decoding ahead
    /// ([`StreamWalker::decode_in_step`]).
    in_step: bool,
}

/// The stream `<prefix><bucket>` of a KV or object-store bucket under `path`, in `account`
/// when given, opened for reading (through `keys` when encrypted).
pub(crate) fn open_bucket_stream(
    path: &Path,
    prefix: &str,
    bucket: &str,
    account: Option<&str>,
    target: &crate::check::Target,
    keys: &crate::filestore::keys::KeyRing,
) -> anyhow::Result<StreamWalker> {
    if !kv::valid_bucket(bucket) {
        anyhow::bail!("{bucket:?}: not a valid bucket name (letters, digits, '_' and '-')");
    }
    let stream = format!("{prefix}{bucket}");
    let sel = select(streams_with_keys(path, keys)?, path, Some(&stream), account)?;
    if sel.len() > 1 {
        anyhow::bail!(
            "{}: stream {stream} is in {} accounts ({}): name one with --account",
            path.display(),
            sel.len(),
            sel.iter()
                .map(|s| s.account.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    open_with_keys(&sel[0], target, keys)
}

/// The load is modelled as `target` says: at its time (max_age, TTLs), by its release (`None`:
/// the release that wrote the files).
pub fn open(sref: &StreamRef, target: &crate::check::Target) -> anyhow::Result<StreamWalker> {
    open_with_keys(sref, target, &crate::filestore::keys::KeyRing::default())
}

/// [`open`] for a store that may be encrypted at rest: its files are read through `keys`.
pub fn open_with_keys(
    sref: &StreamRef,
    target: &crate::check::Target,
    keys: &crate::filestore::keys::KeyRing,
) -> anyhow::Result<StreamWalker> {
    let at_ns = target.at_ns;
    let opts = Options {
        quick: false,
        target: target.clone(),
        keys: keys.clone(),
    };
    let (kind, mut problems, report) = match &sref.origin {
        Origin::Dir(sd) => {
            let (p, probs, rep) = plan_dir(sd, &opts)?;
            // the verify pass is over: its per-thread block buffers are not kept for the walk
            crate::filestore::source::release_block_buffers();
            (Shape::Blocks(Box::new(p)), probs, Some(rep))
        }
        Origin::Archive(d) if is_tar_kind(d.kind) => {
            let enc = sref.enc.as_ref().map(|e| e.0.clone());
            let (p, probs, rep) = plan_tar(d, &sref.name, &opts, enc)?;
            (Shape::Blocks(Box::new(p)), probs, rep)
        }
        Origin::Archive(d) if matches!(d.kind, ArchiveKind::BackupDirV2 | ArchiveKind::BareV2) => {
            (Shape::V2, Vec::new(), None)
        }
        Origin::Archive(d) => anyhow::bail!(
            "{}: not a readable backup ({})",
            d.path.display(),
            d.reason
                .clone()
                .unwrap_or_else(|| "unrecognised payload".into())
        ),
    };
    problems.sort_by_key(|p| p.loc.seq.map_or((0, 0), |s| (1, s)));
    Ok(StreamWalker {
        sref: sref.clone(),
        keys: keys.clone(),
        kind,
        problems,
        report,
        at_ns,
        in_step: false,
    })
}

fn gone_ranges(rep: &crate::base::report::StreamReport) -> Vec<(u64, u64, Gone)> {
    let mut v = Vec::new();
    if let Some(l) = &rep.load {
        v.extend(l.lost.iter().map(|&(a, b)| (a, b, Gone::Lost)));
        v.extend(l.unreadable.iter().map(|&(a, b)| (a, b, Gone::Unreadable)));
        for r in &l.removed {
            let name: &'static str = match r.limit.as_str() {
                "max_msgs" => "max_msgs",
                "max_bytes" => "max_bytes",
                "max_age" => "max_age",
                "max_msgs_per_subject" => "max_msgs_per_subject",
                "msg_ttl" => "msg_ttl",
                _ => "limit",
            };
            v.extend(r.ranges.iter().map(|&(a, b)| (a, b, Gone::Removed(name))));
        }
    }
    v.sort_unstable_by_key(|r| (r.0, r.1));
    v
}

fn revived_of(rep: &crate::base::report::StreamReport) -> HashSet<u64, FxBuild> {
    rep.load
        .as_ref()
        .map(|l| l.revived.iter().copied().collect())
        .unwrap_or_default()
}

type Planned = (Plan, Vec<Problem>, crate::base::report::StreamReport);

/// The stream dir's files as the server reads them: through the keys when it is encrypted.
fn dir_source(
    sd: &StreamDir,
    keys: &crate::filestore::keys::KeyRing,
) -> anyhow::Result<Box<dyn StreamSource>> {
    let plain = DirSource::new(sd.dir.clone());
    if !crate::filestore::encrypted::has_key_files(&plain.files()) {
        return Ok(Box::new(plain));
    }
    if !keys.has_key() {
        anyhow::bail!(
            "{}: stream is encrypted at rest: give its key (--key-file or JETDIR_KEY)",
            sd.dir.display()
        );
    }
    let e = crate::filestore::encrypted::EncryptedDir::open(&sd.dir, &sd.account, &sd.name, keys);
    if e.wrong_key {
        anyhow::bail!(
            "{}: the key does not open this stream (nothing decrypts with it)",
            sd.dir.display()
        );
    }
    Ok(Box::new(e))
}

fn plan_dir(sd: &StreamDir, opts: &Options) -> anyhow::Result<Planned> {
    let boxed = dir_source(sd, &opts.keys)?;
    let src: &dyn StreamSource = boxed.as_ref();
    let pre = crate::state::prelude::prelude_for(src, &sd.account, &sd.name, "", None);
    if pre.encrypted {
        anyhow::bail!(
            "{}: stream is encrypted at rest: give its key (--key-file or JETDIR_KEY)",
            sd.dir.display()
        );
    }
    let (release, release_from) = store::model_release(opts, &pre);
    let rd = crate::state::load::cmp_reader(release.as_ref());
    src.set_cmp_reader(rd);
    let recovery = crate::state::load::decide(&pre, release.as_ref(), src);
    let dead = crate::state::load::dead_set_for(&pre, &recovery);
    let ctx = ScanCtx {
        account: &sd.account,
        stream: &pre.cfg_name,
        dead: &dead,
        quick: false,
        file_prefix: "",
        keep_live: false,
        stop_at_damage: false,
        cmp: rd,
    };
    let encrypted =
        crate::filestore::encrypted::has_key_files(&DirSource::new(sd.dir.clone()).files());
    let scans: Vec<BlockScan> = crate::base::par::one_per_job(&pre.blocks)
        .map(|&i| {
            let rel = format!("msgs/{i}.blk");
            let read = if encrypted {
                let mut scratch = Vec::new();
                match src.fetch_block(&rel, Default::default(), &mut scratch) {
                    Some((d, n)) => Ok((
                        scan::scan_decoded(
                            &ctx,
                            i,
                            n,
                            d.map(|(p, c)| (std::borrow::Cow::Owned(p), c)),
                        ),
                        n,
                    )),
                    None => Err(io::Error::other("cannot be read or decrypted")),
                }
            } else {
                read_reusing(&sd.dir.join(&rel), rd, |d, n| {
                    scan::scan_decoded(&ctx, i, n, d)
                })
            };
            match read {
                Ok((mut s, n)) => {
                    store::too_large(&ctx, &mut s, n);
                    s
                }
                Err(e) => BlockScan::unreadable_file(&ctx, i, &rel, format!("cannot read: {e}")),
            }
        })
        .collect();
    let mut blocks: Vec<BlockPlan> = scans.iter().map(BlockPlan::of).collect();
    blocks.sort_by_key(|b| b.index);
    let tombs: HashSet<u64, FxBuild> = scans
        .iter()
        .flat_map(|s| s.tombstones.iter().copied())
        .collect();
    let mut rescued_tombs: HashSet<u64, FxBuild> = HashSet::default();
    // blocks the server cannot read, read as written (an encrypted stream's blocks written in
    // plaintext): the walk hands out their records, as gone
    for i in src.rescued_blocks() {
        let rel = format!("msgs/{i}.blk");
        let Ok((s, _)) = read_reusing(&sd.dir.join(&rel), rd, |d, n| {
            scan::scan_decoded(&ctx, i, n, d)
        }) else {
            continue;
        };
        if let Some(b) = blocks.iter_mut().find(|b| b.index == i) {
            *b = BlockPlan {
                rescued: true,
                ..BlockPlan::of(&s)
            };
            rescued_tombs.extend(s.tombstones.iter().copied());
        }
    }
    let cfg_name = pre.cfg_name.clone();
    let input = LoadInput::new(opts, recovery, (release, release_from), &dead);
    let (rep, problems) = store::finish_stream(pre, scans, src, "", &input);
    let plan = Plan {
        cfg_name,
        blocks,
        tombs,
        rescued_tombs,
        gone: gone_ranges(&rep),
        revived: revived_of(&rep),
        dead: dead.clone(),
        tar_order: Vec::new(),
        mem: MemFiles::default(),
        enc: None,
        cmp: rd,
    };
    Ok((plan, problems, rep))
}

/// Small files of an archive kept in memory (blocks are scanned as they stream by).
#[derive(Default)]
struct MemFiles {
    files: BTreeMap<String, Vec<u8>>,
    names: Vec<String>,
}

impl StreamSource for MemFiles {
    fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.get(rel).cloned())
    }
    fn files(&self) -> Vec<String> {
        let mut v = self.names.clone();
        v.sort();
        v.dedup();
        v
    }
}

/// True when the file at `path` starts as a `cmp` (compressed) block.
fn starts_cmp(path: &Path) -> bool {
    let mut head = [0u8; 5];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| block::is_cmp_block(&head))
}

/// The decoded tar stream of a V1 backup, `.tgz` or `.tar`.
fn tar_stream(d: &Detected) -> anyhow::Result<Box<dyn Read + Send>> {
    let p = d
        .payload
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{}: no archive payload", d.path.display()))?;
    let f = File::open(p).map_err(|e| anyhow::anyhow!("{}: cannot open: {e}", p.display()))?;
    Ok(match d.kind {
        ArchiveKind::Tgz => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 20,
            f,
        ))),
        ArchiveKind::Tar => Box::new(BufReader::with_capacity(1 << 20, f)),
        _ => Box::new(crate::s2::par::ParFrameReader::new(
            BufReader::with_capacity(1 << 20, f),
            crate::check::archive::s2_workers(),
        )),
    })
}

fn plan_tar(
    d: &Detected,
    name: &str,
    opts: &Options,
    opened: Option<std::sync::Arc<crate::filestore::encrypted::EncryptedDir>>,
) -> anyhow::Result<(
    Plan,
    Vec<Problem>,
    Option<crate::base::report::StreamReport>,
)> {
    let label = crate::check::archive::label_of(d);
    let prefix = format!("{label}:");
    let topts = TarOptions {
        label: label.clone(),
        stream: Some(name.to_string()),
        ..Default::default()
    };
    // a tarball of an encrypted stream dir: read through the keys (a first pass holds its
    // small members, unless listing it did), blocks decrypted as they stream by
    let enc = match opened {
        Some(e) => Some(e),
        None => encrypted_tarball(d, &label, &opts.keys)?.map(std::sync::Arc::new),
    };
    if let Some(e) = &enc {
        refuse_encrypted(d, e, &opts.keys)?;
    }
    let account = enc.as_ref().map_or("$G".to_string(), |e| e.account.clone());
    let dir_name = enc.as_ref().map_or(name, |e| e.dir_name.as_str());
    let name = enc.as_ref().map_or(name, |e| e.cfg_name.as_str());
    let empty = DeadSet::default();
    let ctx = ScanCtx {
        account: &account,
        stream: name,
        dead: &empty,
        quick: false,
        file_prefix: &prefix,
        keep_live: true,
        stop_at_damage: false,
        cmp: Default::default(),
    };
    let mut mem = MemFiles::default();
    let mut scans = Vec::new();
    let mut order = Vec::new();
    let mut buf = Vec::new();
    // how the blocks are decoded, settled at the first one: the walk and the second reads
    // decode them the same way
    let mut scan_cmp: Option<block::CmpReader> = None;
    let summary = tar_walk::walk_tar(tar_stream(d)?, &topts, |m, rd| {
        mem.names.push(m.path.clone());
        match &m.layout {
            StreamFile::Block(n) => {
                let Ok(n) = u32::try_from(*n) else {
                    return Ok(());
                };
                let _big = block::big_block_guard(m.size);
                block::reserve_for_block(&mut buf, m.size.min(block::MAX_BLOCK_FILE));
                rd.read_to_end(&mut buf)?;
                if let Some(e) = &enc {
                    match e.block_key(n) {
                        Ok(k) => k.xor_block(0, &mut buf),
                        Err(_) => return Ok(()), // reported by the key file's finding
                    }
                }
                // as the release modelled reads the block: `--server-version`, else the writer's
                // (meta.inf, before the blocks in a backup)
                let cmp = *scan_cmp.get_or_insert_with(|| {
                    crate::state::load::archive_cmp_reader(
                        opts.target.release.as_ref(),
                        mem.files.get("meta.inf").map(Vec::as_slice),
                    )
                });
                scans.push(scan::scan_block(&ScanCtx { cmp, ..ctx }, n, &buf));
                order.push(n);
                if buf.capacity() as u64 > block::BIG_BLOCK {
                    buf = Vec::new();
                }
            }
            StreamFile::ErrorsTxt => {}
            _ => {
                let mut b = Vec::new();
                rd.read_to_end(&mut b)?;
                mem.files.insert(m.path.clone(), b);
            }
        }
        Ok(())
    });
    let mut problems: Vec<Problem> = summary.problems.clone();
    problems.extend(summary.missing_required(&topts));
    if let Some(e) = &enc {
        mem = plaintext_members(e);
        problems.extend(e.problems.iter().cloned());
    }
    if !mem.files.contains_key("meta.inf") && scans.is_empty() {
        let plan = Plan {
            cfg_name: name.to_string(),
            blocks: Vec::new(),
            tombs: HashSet::default(),
            rescued_tombs: HashSet::default(),
            dead: DeadSet::default(),
            gone: Vec::new(),
            revived: HashSet::default(),
            tar_order: Vec::new(),
            cmp: Default::default(), // no block to read
            mem,
            enc,
        };
        return Ok((plan, problems, None));
    }
    let mut pre = crate::state::prelude::prelude_for(&mem, &account, dir_name, &prefix, None);
    if let Some(e) = &enc {
        pre.unopened = e.unopened.clone();
    }
    if pre.encrypted {
        anyhow::bail!(
            "{}: stream is encrypted at rest (key needed; decryption is not implemented)",
            d.path.display()
        );
    }
    let mut blocks: Vec<BlockPlan> = scans.iter().map(BlockPlan::of).collect();
    blocks.sort_by_key(|b| b.index);
    let tombs: HashSet<u64, FxBuild> = scans
        .iter()
        .flat_map(|s| s.tombstones.iter().copied())
        .collect();
    let release = store::model_release(opts, &pre);
    let recovery = crate::state::load::decide(&pre, release.0.as_ref(), &mem);
    let dead = pre.dead.clone();
    let cfg_name = pre.cfg_name.clone();
    // the limits at load read the blocks again: the archive is walked once more
    let again_of = d.clone();
    let reopen = move || tar_stream(&again_of).map_err(io::Error::other);
    let mut again_opts = topts.clone();
    again_opts.stream = Some(cfg_name.clone());
    let again =
        crate::check::archive_blocks::ArchiveBlocks::new(&mem, enc.as_deref(), &reopen, again_opts)
            .with_cmp(scan_cmp.unwrap_or_default());
    let mut input = LoadInput::new(opts, recovery, release, &dead);
    input.blocks_again = Some(&again);
    let (rep, mut p) = store::finish_stream(pre, scans, &mem, &prefix, &input);
    drop(input);
    drop(again);
    problems.append(&mut p);
    let plan = Plan {
        cfg_name,
        blocks,
        tombs,
        rescued_tombs: HashSet::default(),
        gone: gone_ranges(&rep),
        revived: revived_of(&rep),
        dead,
        tar_order: order,
        cmp: scan_cmp.unwrap_or_default(),
        mem,
        enc,
    };
    Ok((plan, problems, Some(rep)))
}

/// A tarball of an encrypted stream dir opened with `keys`: `None` for any other archive;
/// an error (could not run) without a key or with the wrong one.
fn encrypted_tarball(
    d: &Detected,
    label: &str,
    keys: &crate::filestore::keys::KeyRing,
) -> anyhow::Result<Option<crate::filestore::encrypted::EncryptedDir>> {
    if !matches!(d.kind, ArchiveKind::Tgz | ArchiveKind::Tar) {
        return Ok(None);
    }
    let Some(e) = crate::check::archive::open_encrypted_archive(d, label, keys) else {
        return Ok(None);
    };
    refuse_encrypted(d, &e, keys)?;
    Ok(Some(e))
}

/// An encrypted tarball that cannot be read with `keys` (could not run): no key, or none
/// that opens it under the accounts tried.
fn refuse_encrypted(
    d: &Detected,
    e: &crate::filestore::encrypted::EncryptedDir,
    keys: &crate::filestore::keys::KeyRing,
) -> anyhow::Result<()> {
    if !keys.has_key() {
        anyhow::bail!(
            "{}: a stream dir encrypted at rest: key needed (--key-file FILE or JETDIR_KEY with the server's JetStream key)",
            d.path.display()
        );
    }
    if e.wrong_key {
        let why = e
            .problems
            .iter()
            .find(|p| p.kind == crate::base::problem::Kind::EncryptedWrongKey)
            .map_or("nothing decrypts with it", |p| p.message.as_str());
        anyhow::bail!(
            "{}: the key does not open this stream: {why}",
            d.path.display()
        );
    }
    Ok(())
}

/// The plaintext view of an encrypted tarball's small members.
fn plaintext_members(e: &crate::filestore::encrypted::EncryptedDir) -> MemFiles {
    let names = e.files();
    let files = names
        .iter()
        .filter_map(|f| Some((f.clone(), e.read(f).ok().flatten()?)))
        .collect();
    MemFiles { files, names }
}

/// The walk's moving parts: the callback, findings not yet handed out, the last sequence out.
struct Cursor<'f, 'p> {
    f: &'f mut dyn FnMut(Event) -> ControlFlow<()>,
    problems: &'p [Problem],
    next_problem: usize,
    /// Hand out nothing (the counting pass of `--last`), only record sequences.
    counting: Option<(u64, VecDeque<u64>)>,
    filter: &'f Filter,
    last_out: Option<u64>,
    sum: WalkSummary,
    render: Option<Render<'f>>,
    buf: Vec<u8>,
    /// Render buffers kept from one group of records to the next (no allocation, and page
    /// faults, per group).
    pool: Vec<Vec<u8>>,
}

impl Filter {
    /// The checks that need only the record (no walk state): served or shown, and matching.
    fn wants(&self, m: &Msg) -> bool {
        (m.gone.is_none() || self.include_deleted) && self.matches(m.seq, m.ts, m.subject)
    }
}

impl Cursor<'_, '_> {
    /// A message rendered on a worker (or, too big to render, handed out as it is): the
    /// walk-state checks, then out it goes.
    fn rendered(&mut self, seq: u64, ev: Event) -> ControlFlow<()> {
        if self.last_out.is_some_and(|l| seq <= l) {
            return ControlFlow::Continue(());
        }
        self.last_out = Some(seq);
        self.findings_upto(Some(seq))?;
        self.sum.messages += 1;
        if (self.f)(ev).is_break() {
            self.sum.stopped = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Messages `first..=last` (`n` of them, ascending, rendered back to back), with no
    /// finding to hand out between them: one event.
    fn rendered_run(&mut self, first: u64, last: u64, n: u64, bytes: &[u8]) -> ControlFlow<()> {
        if n == 1 {
            return self.rendered(first, Event::Rendered(first, bytes));
        }
        self.last_out = Some(last);
        self.sum.messages += n;
        if (self.f)(Event::Rendered(last, bytes)).is_break() {
            self.sum.stopped = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// The sequence of the next finding to hand out (`u64::MAX` when none has one).
    fn next_finding_seq(&self) -> u64 {
        match self.problems.get(self.next_problem) {
            Some(p) => p.loc.seq.unwrap_or(0),
            None => u64::MAX,
        }
    }

    /// Hand out the findings located at or before `seq` (all of them for `None`).
    fn findings_upto(&mut self, seq: Option<u64>) -> ControlFlow<()> {
        while let Some(p) = self.problems.get(self.next_problem) {
            if let (Some(s), Some(ps)) = (seq, p.loc.seq) {
                if ps > s {
                    break;
                }
            }
            self.next_problem += 1;
            if self.counting.is_some() {
                continue;
            }
            if let Some(ps) = p.loc.seq {
                let end = p.loc.seq_end.unwrap_or(ps);
                if end < self.filter.seq.0 || ps > self.filter.seq.1 {
                    continue;
                }
            }
            match p.severity {
                Severity::Error => self.sum.errors += 1,
                Severity::Warning => self.sum.warnings += 1,
            }
            if (self.f)(Event::Finding(p)).is_break() {
                self.sum.stopped = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn message(&mut self, m: Msg) -> ControlFlow<()> {
        if self.last_out.is_some_and(|l| m.seq <= l) {
            return ControlFlow::Continue(());
        }
        if !self.filter.wants(&m) {
            return ControlFlow::Continue(());
        }
        self.last_out = Some(m.seq);
        if let Some((n, ring)) = &mut self.counting {
            if ring.len() as u64 == *n {
                ring.pop_front();
            }
            ring.push_back(m.seq);
            return ControlFlow::Continue(());
        }
        self.findings_upto(Some(m.seq))?;
        self.sum.messages += 1;
        let ev = match self.render {
            Some(r) if !render_streamed(&m) => {
                self.buf.clear();
                r(&m, &mut self.buf);
                Event::Rendered(m.seq, &self.buf)
            }
            _ => Event::Msg(m),
        };
        if (self.f)(ev).is_break() {
            self.sum.stopped = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

impl StreamWalker {
    /// The stream walked.
    pub fn stream(&self) -> &StreamRef {
        &self.sref
    }

    /// A small file of the stream (`meta.inf`, `obs/C/o.dat`…), relative to the stream dir:
    /// `Ok(None)` when there is none (and always for V2 archives, which hold no files).
    pub fn read_file(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        match (&self.kind, &self.sref.origin) {
            (Shape::Blocks(_), Origin::Dir(sd)) => dir_source(sd, &self.keys)
                .map_err(|e| io::Error::other(format!("{e:#}")))?
                .read(rel),
            (Shape::Blocks(plan), Origin::Archive(_)) => plan.mem.read(rel),
            _ => Ok(None),
        }
    }

    /// Every file of the stream (relative to the stream dir), sorted; empty for V2 archives.
    pub fn file_names(&self) -> Vec<String> {
        match (&self.kind, &self.sref.origin) {
            (Shape::Blocks(_), Origin::Dir(sd)) => DirSource::new(sd.dir.clone()).files(),
            (Shape::Blocks(plan), Origin::Archive(_)) => plan.mem.files(),
            _ => Vec::new(),
        }
    }

    /// Decode a V2 archive on the walking thread, one S2 chunk (at most 4 MiB) at a time,
    /// instead of on worker threads running up to 16 MiB ahead: for several walks at once
    /// (`diff`), where the copies' windows and a record of up to 32 MiB would add up past the
    /// memory bound.
    pub fn decode_in_step(&mut self) {
        self.in_step = true;
    }

    /// True when the stream is read from a V2 (NATSARC1) archive: live messages only.
    pub fn is_v2(&self) -> bool {
        matches!(self.kind, Shape::V2)
    }

    /// Every finding of the stream (all of them, whatever the filter).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Hand out the records matching `filter` in sequence order, with the findings at their
    /// place. `f` returns `Break` to stop (a closed output). Errors mean "could not run".
    pub fn walk(
        &self,
        filter: &Filter,
        f: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> anyhow::Result<WalkSummary> {
        self.walk_impl(filter, None, f)
    }

    /// [`StreamWalker::walk`], with every message rendered by `render` and handed out as
    /// [`Event::Rendered`]: the records of a block render in parallel (in order on output),
    /// while memory stays one block plus its rendering. A message above
    /// [`RENDER_INLINE_MAX`] is handed out as [`Event::Msg`] instead, for the caller to
    /// write in pieces ([`render_streamed`]).
    pub fn walk_rendered(
        &self,
        filter: &Filter,
        render: Render,
        f: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> anyhow::Result<WalkSummary> {
        self.walk_impl(filter, Some(render), f)
    }

    fn walk_impl(
        &self,
        filter: &Filter,
        render: Option<Render>,
        f: &mut dyn FnMut(Event) -> ControlFlow<()>,
    ) -> anyhow::Result<WalkSummary> {
        let mut filter = filter.clone();
        if let Some(n) = filter.last {
            if n == 0 {
                filter.seq = (1, 0);
            } else {
                let mut nothing = |_: Event| ControlFlow::Continue(());
                let mut c = Cursor {
                    f: &mut nothing,
                    problems: &self.problems,
                    next_problem: 0,
                    counting: Some((n, VecDeque::new())),
                    filter: &filter,
                    last_out: None,
                    sum: WalkSummary::default(),
                    render: None,
                    buf: Vec::new(),
                    pool: Vec::new(),
                };
                let _ = self.run(&mut c)?;
                let first = c.counting.and_then(|(_, r)| r.front().copied());
                match first {
                    Some(s) => filter.seq.0 = filter.seq.0.max(s),
                    None => filter.seq = (1, 0),
                }
            }
            filter.last = None;
        }
        let mut c = Cursor {
            f,
            problems: &self.problems,
            next_problem: 0,
            counting: None,
            filter: &filter,
            last_out: None,
            sum: WalkSummary::default(),
            render,
            buf: Vec::new(),
            pool: Vec::new(),
        };
        if c.findings_upto(Some(0)).is_break() {
            return Ok(c.sum);
        }
        let r = self.run(&mut c)?;
        if r.is_continue() {
            let _ = c.findings_upto(None);
        }
        Ok(c.sum)
    }

    fn run(&self, c: &mut Cursor) -> anyhow::Result<ControlFlow<()>> {
        match (&self.kind, &self.sref.origin) {
            (Shape::Blocks(plan), Origin::Dir(sd)) => Ok(self.run_dir(plan, sd, c)),
            (Shape::Blocks(plan), Origin::Archive(d)) => self.run_tar(plan, d, c),
            (Shape::V2, Origin::Archive(d)) => self.run_v2(d, c),
            (Shape::V2, Origin::Dir(_)) => Ok(ControlFlow::Continue(())),
        }
    }

    fn run_dir(&self, plan: &Plan, sd: &StreamDir, c: &mut Cursor) -> ControlFlow<()> {
        let Ok(src) = dir_source(sd, &self.keys) else {
            return ControlFlow::Continue(());
        };
        src.set_cmp_reader(plan.cmp);
        // (an opened encrypted dir does not list its key files: ask the dir itself)
        let encrypted =
            crate::filestore::encrypted::has_key_files(&DirSource::new(sd.dir.clone()).files());
        // the blocks to hand out, and which are read ahead (plain files of a real size) while
        // the one before is handed out: encrypted and big blocks go through the source
        // (decrypted, or decoded as they are read), one at a time
        let todo: Vec<(&BlockPlan, String, u64, bool)> = plan
            .blocks
            .iter()
            .filter(|b| !b.unreadable && c.filter.seq_overlaps(b.min, b.max))
            .map(|b| {
                let rel = format!("msgs/{}.blk", b.index);
                let size = std::fs::metadata(sd.dir.join(&rel)).map_or(0, |m| m.len());
                // (a rendered walk only: `diff` walks copies at once and `salvage` holds a
                // block of its own, so theirs read in step, within the memory bound; plain
                // blocks only: a compressed one decodes to up to 8 MiB more than its file,
                // and two decoded blocks beside the rendering went over the bound, 66 MiB)
                let ahead = !encrypted
                    && size <= block::BIG_BLOCK
                    && c.render.is_some()
                    && !starts_cmp(&sd.dir.join(&rel));
                (b, rel, size, ahead)
            })
            .collect();
        let mut buf = Vec::new();
        let mut dec = Vec::new();
        for (b, rel, size, ahead) in &todo {
            if *ahead {
                // read in pieces, each framed and rendered as it arrives (see
                // `emit_streamed`); a block that does not frame cleanly is walked whole
                let path = sd.dir.join(rel);
                match self.emit_streamed(plan, b, &path, rel, c, &mut buf) {
                    Streamed::Done(flow) => {
                        flow?;
                        continue;
                    }
                    Streamed::Whole => {}
                }
            }
            // a big block (one record above 8 MiB) is held, read and handed out, by one
            // thread at a time (the copies of `diff` walk on threads of their own)
            let _big = block::big_block_guard((*size).min(block::MAX_BLOCK_FILE));
            if !encrypted && *size <= block::BIG_BLOCK {
                // one read buffer for the blocks of a real size: no allocation (and page
                // faults) per block
                let path = sd.dir.join(rel);
                let read = crate::filestore::source::read_capped_into(
                    &path,
                    block::MAX_BLOCK_FILE,
                    &mut buf,
                );
                if read.is_err() {
                    continue;
                }
                // a compressed block decodes into one reused buffer (a fresh 8 MiB per
                // block stays in this thread's malloc arena: diff of two S2 copies 66 MiB)
                let Ok((plain, _)) = block::plain_block_in(&buf, &mut dec, plan.cmp) else {
                    continue;
                };
                self.emit_block(plan, b, &plain, rel, c)?;
                continue;
            }
            let mut scratch = Vec::new();
            let fetched = if b.rescued {
                // as written: the server's view of it (through its key) is garbage
                DirSource::new(sd.dir.clone()).fetch_block(rel, Default::default(), &mut scratch)
            } else {
                src.fetch_block(rel, Default::default(), &mut scratch)
            };
            let Some((decoded, _)) = fetched else {
                continue;
            };
            let Ok((plain, _)) = decoded else { continue };
            self.emit_block(plan, b, &plain, rel, c)?;
        }
        ControlFlow::Continue(())
    }

    /// A plain block file of a rendered walk, read into `buf` in pieces of [`PIECE`] bytes,
    /// each piece's complete records framed and handed to the renderers as soon as it is
    /// read: the bytes are rendered while they are still in the CPU's cache, and the
    /// kernel copies the file into a buffer that is (a reading into a whole-block buffer
    /// that the rendering of the block before has pushed out of the cache cost ~1.7x the
    /// CPU). The records are those [`crate::state::messages::walk_records`] frames when the
    /// block frames cleanly to its end; anything else (a record that does not frame, bytes
    /// left at the end, a compressed block, a file that changed size, a read error) is
    /// `Streamed::Whole`: the block is then walked whole, as before, and the records
    /// already handed out are not handed out again (the cursor hands out ascending
    /// sequences only, and what it did not hand out it leaves out again).
    fn emit_streamed(
        &self,
        plan: &Plan,
        b: &BlockPlan,
        path: &Path,
        file: &str,
        c: &mut Cursor,
        buf: &mut Vec<u8>,
    ) -> Streamed {
        let Some(render) = c.render.filter(|_| c.counting.is_none()) else {
            return Streamed::Whole;
        };
        let Ok(mut f) = File::open(path) else {
            return Streamed::Whole;
        };
        let size = match f.metadata() {
            Ok(m) if m.len() <= block::BIG_BLOCK => m.len() as usize,
            _ => return Streamed::Whole,
        };
        // one byte more than the file: a file that grew is noticed. The buffer keeps its
        // length from block to block (every byte used is read before it is looked at), so
        // it is zeroed once, not for every block
        if buf.len() <= size {
            block::reserve_for_block(buf, size as u64 + 1);
            buf.resize(size + 1, 0);
        }
        let buf = &mut buf[..size + 1];
        let key = block::block_key(&plan.cfg_name, b.index);
        let v = BlockView {
            plan,
            b,
            floor: plan.dead.floor(b.index),
        };
        let mut whole = false;
        let flow = self.emit_rendered(&v, file, &key, render, c, |out| {
            whole = !frame_pieces(&mut f, &mut buf[..], out);
        });
        if whole && flow.is_continue() {
            return Streamed::Whole;
        }
        Streamed::Done(flow)
    }

    fn run_tar(
        &self,
        plan: &Plan,
        d: &Detected,
        c: &mut Cursor,
    ) -> anyhow::Result<ControlFlow<()>> {
        let label = crate::check::archive::label_of(d);
        let topts = TarOptions {
            label: label.clone(),
            stream: Some(self.sref.name.clone()),
            ..Default::default()
        };
        let sorted = plan.tar_order.windows(2).all(|w| w[0] < w[1]);
        // One pass when the members are in order (server-made archives); otherwise one pass
        // per block (tar tools store members in directory order).
        let passes: Vec<Option<u32>> = if sorted {
            vec![None]
        } else {
            let mut v = plan.tar_order.clone();
            v.sort_unstable();
            v.dedup();
            v.into_iter().map(Some).collect()
        };
        let mut flow = ControlFlow::Continue(());
        let mut dec = Vec::new();
        for want in passes {
            if let Some(w) = want {
                let Some(b) = plan.blocks.iter().find(|b| b.index == w) else {
                    continue;
                };
                if !c.filter.seq_overlaps(b.min, b.max) {
                    continue;
                }
            }
            let mut buf = Vec::new();
            tar_walk::walk_tar(tar_stream(d)?, &topts, |m, rd| {
                let StreamFile::Block(n) = &m.layout else {
                    return Ok(());
                };
                let Ok(n) = u32::try_from(*n) else {
                    return Ok(());
                };
                if want.is_some_and(|w| w != n) {
                    return Ok(());
                }
                let Some(b) = plan.blocks.iter().find(|b| b.index == n) else {
                    return Ok(());
                };
                if b.unreadable || !c.filter.seq_overlaps(b.min, b.max) {
                    return Ok(());
                }
                let _big = block::big_block_guard(m.size);
                block::reserve_for_block(&mut buf, m.size.min(block::MAX_BLOCK_FILE));
                rd.read_to_end(&mut buf)?;
                if let Some(e) = &plan.enc {
                    match e.block_key(n) {
                        Ok(k) => k.xor_block(0, &mut buf),
                        Err(_) => return Ok(()),
                    }
                }
                let Ok((plain, _)) = block::plain_block_in(&buf, &mut dec, plan.cmp) else {
                    return Ok(());
                };
                let file = format!("{label}:{}", m.path);
                if self.emit_block(plan, b, &plain, &file, c).is_break() {
                    flow = ControlFlow::Break(());
                    return Err(io::Error::other("stopped"));
                }
                if want.is_some() {
                    return Err(io::Error::other("done")); // this pass's block is out
                }
                Ok(())
            });
            if flow.is_break() {
                break;
            }
        }
        Ok(flow)
    }

    /// What a record is to the reader: `None` for tombstones (markers, never shown), else the
    /// message with why the server does not serve it, if it does not.
    fn classify<'a>(
        &'a self,
        v: &BlockView,
        r: &block::Record<'a>,
        file: &'a str,
        key: &highway::Key,
        verify: bool,
    ) -> Option<Msg<'a>> {
        let kind = r.kind();
        if kind == RecordKind::Tombstone {
            return None;
        }
        if verify && (!r.checksum_ok(key) || r.content_issue().is_some()) {
            return None;
        }
        let plan = v.plan;
        let gone = if kind == RecordKind::Erased {
            Some(Gone::Erased)
        } else if (!v.b.live.get(r.seq)
            || r.seq < v.floor
            || (!plan.dead.seqs.is_empty() && plan.dead.seqs.contains(&r.seq))
            || (!plan.tombs.is_empty() && plan.tombs.contains(&r.seq)))
            && (plan.revived.is_empty() || !plan.revived.contains(&r.seq))
        {
            Some(Gone::Deleted)
        } else if plan.gone.is_empty() {
            None
        } else {
            plan.gone
                .iter()
                .find(|g| g.0 <= r.seq && r.seq <= g.1)
                .map(|g| g.2)
        };
        // a block the server cannot read serves nothing, whatever else the model says; what
        // such blocks delete stays deleted
        let gone = if v.b.rescued && plan.rescued_tombs.contains(&r.seq) {
            Some(Gone::Deleted)
        } else {
            gone.or(v.b.rescued.then_some(Gone::Lost))
        };
        Some(Msg::of_record(
            r,
            &self.sref.account,
            &self.sref.name,
            file,
            gone,
        ))
    }

    fn emit_block(
        &self,
        plan: &Plan,
        b: &BlockPlan,
        plain: &[u8],
        file: &str,
        c: &mut Cursor,
    ) -> ControlFlow<()> {
        let key = block::block_key(&plan.cfg_name, b.index);
        let v = BlockView {
            plan,
            b,
            floor: plan.dead.floor(b.index),
        };
        if let (Some(render), None) = (c.render, &c.counting) {
            return self.emit_rendered(&v, file, &key, render, c, |out| {
                crate::state::messages::walk_records(plain, &key, out);
            });
        }
        let mut flow = ControlFlow::Continue(());
        let verify = c.filter.verified_only;
        crate::state::messages::walk_records(plain, &key, |r| {
            let Some(m) = self.classify(&v, r, file, &key, verify) else {
                return true;
            };
            flow = c.message(m);
            flow.is_continue()
        });
        flow
    }

    /// [`StreamWalker::emit_block`] of a rendered walk: the records are framed once, as the
    /// scanner does (resyncing past damage), in runs of [`RENDER_CHUNK`] that are rendered
    /// on all cores as soon as they are framed, while the runs before are handed out, in
    /// order as soon as they are rendered ([`RENDER_AHEAD`] runs in flight at most; workers
    /// take no new run while [`RENDERED_MAX`] bytes wait to be handed out, e.g. behind a slow
    /// reader of the output).
    fn emit_rendered<'a>(
        &self,
        v: &BlockView,
        file: &str,
        key: &highway::Key,
        render: Render,
        c: &mut Cursor,
        frame: impl FnOnce(&mut dyn FnMut(&block::Record<'a>) -> bool),
    ) -> ControlFlow<()> {
        let filter = c.filter;
        let pool = std::sync::Mutex::new(std::mem::take(&mut c.pool));
        let pool = &pool;
        let mut flow = ControlFlow::Continue(());
        // bytes rendered and not yet handed out
        let pending = std::sync::atomic::AtomicUsize::new(0);
        let pending = &pending;
        render_pool().in_place_scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel::<(usize, Rendered<'a>)>();
            let mut spawned = 0usize;
            let mut handed = 0usize;
            // the runs in flight, oldest first: the records of each until someone takes
            // them to render (a worker, or this thread rather than wait), and its rendering
            let mut inflight: VecDeque<(Run<'a>, Option<Rendered<'a>>)> = VecDeque::new();
            let take = |run: &Run<'a>| run.lock().unwrap_or_else(|p| p.into_inner()).take();
            let buf_of = || {
                pool.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop()
                    .unwrap_or_default()
            };
            // hand out the oldest run in flight (or, once stopped, drop it); while it is not
            // rendered, render the oldest run no worker has started, else wait
            let next_out = |flow: &mut ControlFlow<()>,
                            c: &mut Cursor,
                            inflight: &mut VecDeque<(Run<'a>, Option<Rendered<'a>>)>,
                            handed: &mut usize| {
                while inflight.front().is_some_and(|f| f.1.is_none()) {
                    // (past RENDERED_MAX waiting bytes only the run to hand out next)
                    let room = pending.load(Relaxed) < RENDERED_MAX;
                    let mine = inflight
                        .iter_mut()
                        .take(if room { usize::MAX } else { 1 })
                        .filter(|f| f.1.is_none())
                        .find_map(|f| take(&f.0).map(|recs| (f, recs)));
                    if let Some((f, recs)) = mine {
                        let part = self.render_chunk(v, file, key, recs, render, filter, buf_of());
                        pending.fetch_add(part.1.len(), Relaxed);
                        f.1 = Some(part);
                        continue;
                    }
                    match rx.recv() {
                        Ok((j, part)) => {
                            if let Some(f) = inflight.get_mut(j - *handed) {
                                f.1 = Some(part);
                            }
                        }
                        Err(_) => return,
                    }
                }
                let Some((_, Some((ents, mut buf, recs)))) = inflight.pop_front() else {
                    return;
                };
                *handed += 1;
                pending.fetch_sub(buf.len(), Relaxed);
                if flow.is_continue() {
                    *flow = self.hand_out(v, file, key, c, &ents, &buf, &recs);
                }
                if buf.capacity() <= POOLED_MAX {
                    buf.clear();
                    pool.lock().unwrap_or_else(|p| p.into_inner()).push(buf);
                }
            };
            let spawn = |i: usize, run: Run<'a>| {
                let tx = tx.clone();
                s.spawn(move |_| {
                    if pending.load(Relaxed) >= RENDERED_MAX {
                        return; // the walking thread renders it when it hands it out
                    }
                    let Some(recs) = take(&run) else {
                        return; // rendered by the walking thread
                    };
                    let part = self.render_chunk(v, file, key, recs, render, filter, buf_of());
                    pending.fetch_add(part.1.len(), Relaxed);
                    let _ = tx.send((i, part));
                });
            };
            let mut run: Vec<block::Record<'a>> = Vec::with_capacity(RENDER_CHUNK);
            let mut run_bytes = 0usize;
            frame(&mut |r| {
                run.push(*r);
                run_bytes += r.headers.map_or(0, <[u8]>::len) + r.payload.len();
                if run.len() < RENDER_CHUNK && run_bytes < RUN_BYTES {
                    return true;
                }
                run_bytes = 0;
                let recs = std::mem::replace(&mut run, Vec::with_capacity(RENDER_CHUNK));
                let shared = std::sync::Arc::new(std::sync::Mutex::new(Some(recs)));
                inflight.push_back((shared.clone(), None));
                spawn(spawned, shared);
                spawned += 1;
                // hand out what is rendered already, without waiting
                while let Ok((j, part)) = rx.try_recv() {
                    if let Some(f) = inflight.get_mut(j - handed) {
                        f.1 = Some(part);
                    }
                }
                while flow.is_continue() && inflight.front().is_some_and(|f| f.1.is_some()) {
                    next_out(&mut flow, c, &mut inflight, &mut handed);
                }
                while spawned - handed >= RENDER_AHEAD && flow.is_continue() {
                    next_out(&mut flow, c, &mut inflight, &mut handed);
                }
                flow.is_continue()
            });
            if !run.is_empty() && flow.is_continue() {
                let shared = std::sync::Arc::new(std::sync::Mutex::new(Some(run)));
                inflight.push_back((shared.clone(), None));
                spawn(spawned, shared);
                spawned += 1;
            }
            while handed < spawned {
                next_out(&mut flow, c, &mut inflight, &mut handed);
            }
        });
        c.pool = std::mem::take(&mut *pool.lock().unwrap_or_else(|p| p.into_inner()));
        flow
    }

    /// The records of one run of a block that the filter wants, rendered into `buf` back to
    /// back (on a worker): (seq, start, end, index in `recs`) of each; a record handed out
    /// unrendered ([`render_streamed`]) has `usize::MAX` as its end.
    #[allow(clippy::too_many_arguments)]
    fn render_chunk<'a>(
        &self,
        v: &BlockView,
        file: &str,
        key: &highway::Key,
        recs: Vec<block::Record<'a>>,
        render: Render,
        filter: &Filter,
        mut buf: Vec<u8>,
    ) -> Rendered<'a> {
        let mut ents = Vec::with_capacity(recs.len());
        for (k, r) in recs.iter().enumerate() {
            let Some(m) = self.classify(v, r, file, key, filter.verified_only) else {
                continue;
            };
            if !filter.wants(&m) {
                continue;
            }
            if render_streamed(&m) {
                // handed out from the block as it is
                ents.push((m.seq, 0, usize::MAX, k));
                continue;
            }
            let s = buf.len();
            render(&m, &mut buf);
            ents.push((m.seq, s, buf.len(), k));
        }
        (ents, buf, recs)
    }

    /// Hand out the records of one rendered run of a block, in order, with the findings at
    /// their place: the messages that no finding comes between as one run of bytes.
    #[allow(clippy::too_many_arguments)]
    fn hand_out(
        &self,
        v: &BlockView,
        file: &str,
        key: &highway::Key,
        c: &mut Cursor,
        ents: &[(u64, usize, usize, usize)],
        buf: &[u8],
        recs: &[block::Record],
    ) -> ControlFlow<()> {
        let mut i = 0;
        while let Some(&(seq, s, e, k)) = ents.get(i) {
            i += 1;
            if e == usize::MAX {
                if let Some(m) = self.classify(v, &recs[k], file, key, c.filter.verified_only) {
                    c.rendered(seq, Event::Msg(m))?;
                }
                continue;
            }
            let (mut last, mut end, mut n) = (seq, e, 1u64);
            if c.last_out.is_none_or(|l| seq > l) {
                c.findings_upto(Some(seq))?;
                let limit = c.next_finding_seq();
                while let Some(&(s2, b2, e2, _)) = ents.get(i) {
                    if e2 == usize::MAX || b2 != end || s2 <= last || s2 >= limit {
                        break;
                    }
                    (last, end, n) = (s2, e2, n + 1);
                    i += 1;
                }
            }
            c.rendered_run(seq, last, n, &buf[s..end])?;
        }
        ControlFlow::Continue(())
    }

    fn run_v2(&self, d: &Detected, c: &mut Cursor) -> anyhow::Result<ControlFlow<()>> {
        let label = crate::check::archive::label_of(d);
        let p = d
            .payload
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{}: no archive payload", d.path.display()))?;
        let f = File::open(p).map_err(|e| anyhow::anyhow!("{}: cannot open: {e}", p.display()))?;
        let r: Box<dyn io::BufRead + Send> = if self.in_step {
            Box::new(BufReader::with_capacity(
                1 << 16,
                crate::s2::FrameReader::new(BufReader::with_capacity(1 << 20, f)),
            ))
        } else {
            Box::new(crate::s2::par::ParFrameReader::new(
                BufReader::with_capacity(1 << 20, f),
                crate::check::archive::s2_workers(),
            ))
        };
        let vopts = V2Options {
            label: label.clone(),
            account: Some(self.sref.account.clone()),
            stream: Some(self.sref.name.clone()),
            max_msg_size: None,
            skip_message_payloads: false,
        };
        let mut scan = V2Scan::new(r, vopts);
        // what expires right after the restore (as verify says: max_age, message TTLs)
        let mut expiry = d
            .backup_json
            .as_ref()
            .and_then(|p| crate::backup::backup_json::read_backup_json(p).ok())
            .and_then(|b| {
                crate::state::load::ExpiryAsRestored::new(
                    &crate::state::load::Limits::of(&b.config),
                    self.at_ns,
                )
            });
        let mut seen = 0usize;
        // findings of a V2 archive are handed out as the scan finds them
        let mut hand = |c: &mut Cursor, probs: &[Problem]| -> ControlFlow<()> {
            for p in &probs[seen..] {
                seen += 1;
                if c.counting.is_some() {
                    continue;
                }
                match p.severity {
                    Severity::Error => c.sum.errors += 1,
                    Severity::Warning => c.sum.warnings += 1,
                }
                if (c.f)(Event::Finding(p)).is_break() {
                    c.sum.stopped = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        };
        let file = label.clone();
        loop {
            let role = scan.advance();
            if hand(c, scan.problems()).is_break() {
                return Ok(ControlFlow::Break(()));
            }
            let Some(role) = role else { break };
            if role != EntryRole::Message {
                continue;
            }
            let e = scan.entry();
            let size = crate::backup::natsarc::filestore_msg_size(
                e.name.len() as u64,
                e.header.len() as u64,
                e.payload.len() as u64,
            );
            let gone = expiry
                .as_mut()
                .and_then(|x| x.removes(e.seq, e.timestamp, size, &e.name, &e.header))
                .map(Gone::Removed);
            let m = Msg {
                account: &self.sref.account,
                stream: &self.sref.name,
                seq: e.seq,
                ts: e.timestamp,
                subject: &e.name,
                headers: &e.header,
                payload: &e.payload,
                file: &file,
                offset: e.offset,
                size,
                gone,
            };
            if m.seq > c.filter.seq.1 && c.counting.is_none() {
                // past the range: the rest of the archive is not needed
                return Ok(ControlFlow::Continue(()));
            }
            if c.message(m).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        let sum = scan.finish();
        Ok(hand(c, &sum.problems))
    }
}

/// What `emit_streamed` did with a block.
enum Streamed {
    /// Every record of the block was framed and handed out (or the walk stopped).
    Done(ControlFlow<()>),
    /// The block must be walked whole (some of its records may be out already).
    Whole,
}

/// Read the plain block file `f` into `buf` (one byte longer than the file) [`PIECE`]
/// bytes at a time, handing `out` every record as soon as it is complete, with its offset
/// in the block. False when the block does not frame cleanly to its end (it is then
/// walked whole): a record that does not parse, bytes left at the end, a compressed
/// block, a file longer than `buf` or a read error. True when every record went out, or
/// `out` stopped.
fn frame_pieces<'a>(
    f: &mut File,
    buf: &'a mut [u8],
    out: &mut dyn FnMut(&block::Record<'a>) -> bool,
) -> bool {
    let mut rem: &'a mut [u8] = buf;
    let mut base = 0usize; // offset in the block of rem[0]
    let mut filled = 0usize; // bytes of rem read
    let mut eof = false;
    while !eof {
        let want = (filled + PIECE).min(rem.len());
        if want == filled {
            return false; // the file is longer than it was
        }
        while filled < want {
            match f.read(&mut rem[filled..want]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if base == 0 && block::is_cmp_block(&rem[..filled]) {
            return false;
        }
        // the complete records read so far (by their lengths; parsed below)
        let mut k = 0usize;
        while filled - k >= block::HDR_LEN {
            let raw = u32::from_le_bytes([rem[k], rem[k + 1], rem[k + 2], rem[k + 3]]);
            let rl = (raw & !block::HBIT) as usize;
            if rl < block::EMPTY_RECORD_LEN || rl > block::MAX_RECORD_LEN as usize {
                return false; // does not frame
            }
            if rl > filled - k {
                break; // the rest comes with the next piece
            }
            k += rl;
        }
        if k > 0 {
            let (done, rest) = std::mem::take(&mut rem).split_at_mut(k);
            rem = rest;
            let done: &'a [u8] = done;
            for r in block::Records::new(done) {
                let Ok(mut r) = r else {
                    return false;
                };
                r.offset += base;
                if !out(&r) {
                    return true;
                }
            }
            base += k;
            filled -= k;
        }
    }
    filled == 0
}

/// A NATS header block parsed: the status line's code and description (after `NATS/1.0`),
/// and every header with all its values, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// Status code and description (`100 Idle Heartbeat`), when the first line has one.
    pub status: Option<String>,
    /// Headers in order of first appearance, each with every value.
    pub values: Vec<(String, Vec<String>)>,
}

impl Headers {
    /// Parse a raw header block (`NATS/1.0\r\nKey: value\r\n…\r\n`); lines without a colon
    /// are ignored. Invalid UTF-8 is replaced.
    pub fn parse(raw: &[u8]) -> Headers {
        let mut h = Headers::default();
        if raw.is_empty() {
            return h;
        }
        let text = String::from_utf8_lossy(raw);
        let mut lines = text.split('\n');
        if let Some(first) = lines.next() {
            let first = first.trim_end_matches('\r');
            let rest = first.strip_prefix("NATS/1.0").unwrap_or("").trim();
            if !rest.is_empty() {
                h.status = Some(rest.to_string());
            }
        }
        for line in lines {
            let line = line.trim_end_matches('\r');
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            match h.values.iter_mut().find(|(n, _)| *n == k) {
                Some((_, vs)) => vs.push(v),
                None => h.values.push((k, vec![v])),
            }
        }
        h
    }

    /// The first value of `key` (exact case first, then case-insensitive, as NATS clients do).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .or_else(|| {
                self.values
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
            })
            .and_then(|(_, v)| v.first().map(String::as_str))
    }
}

/// Base64 (`std`: `+/`, or URL-safe: `-_`), padded.
pub fn base64(data: &[u8], url: bool) -> String {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    base64_into(data, url, &mut out);
    String::from_utf8(out).unwrap_or_default() // ASCII only
}

#[cfg(test)]
const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
#[cfg(test)]
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// [`base64`] appended to `out` (SIMD where the CPU has it: `dump --payload base64` and the
/// binary payloads of `dump` encode a few GB/s per core).
pub fn base64_into(data: &[u8], url: bool, out: &mut Vec<u8>) {
    let b = if url {
        &base64_simd::URL_SAFE
    } else {
        &base64_simd::STANDARD
    };
    b.encode_append(data, out);
}

/// Decode base64 in either alphabet, padded or not; `None` when it is not base64.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Lower-case hex.
pub fn hex(data: &[u8]) -> String {
    let mut out = Vec::with_capacity(data.len() * 2);
    hex_into(data, &mut out);
    String::from_utf8(out).unwrap_or_default() // ASCII only
}

/// [`hex`] appended to `out`.
pub fn hex_into(data: &[u8], out: &mut Vec<u8>) {
    /// Both digits of every byte.
    static PAIRS: [[u8; 2]; 256] = {
        const D: &[u8; 16] = b"0123456789abcdef";
        let mut t = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = [D[i >> 4], D[i & 15]];
            i += 1;
        }
        t
    };
    let start = out.len();
    out.resize(start + data.len() * 2, 0);
    for (&b, d) in data.iter().zip(out[start..].chunks_exact_mut(2)) {
        d.copy_from_slice(&PAIRS[usize::from(b)]);
    }
}

/// A time given to `--since` / `--until`: RFC 3339, or a duration (`2h`, `90m`, `1h30m`, a Go
/// duration; also `3d`) before `now_ns`.
pub fn parse_time_arg(s: &str, now_ns: i64) -> Option<i64> {
    if let Some(t) = crate::base::time::parse_rfc3339(s) {
        return Some(t);
    }
    let d = if let Some(days) = s.strip_suffix('d') {
        days.parse::<i64>().ok()?.checked_mul(86_400_000_000_000)?
    } else {
        crate::base::time::parse_go_duration(s)?
    };
    (d >= 0).then(|| now_ns.saturating_sub(d))
}

/// An inclusive sequence range `A..B`, `A..`, `..B` or a single `N`.
pub fn parse_seq_range(s: &str) -> Option<(u64, u64)> {
    let num = |t: &str, dflt: u64| -> Option<u64> {
        if t.is_empty() {
            Some(dflt)
        } else {
            t.parse().ok()
        }
    };
    match s.split_once("..") {
        Some((a, b)) => {
            let b = b.strip_prefix('=').unwrap_or(b);
            let r = (num(a, 0)?, num(b, u64::MAX)?);
            (r.0 <= r.1).then_some(r)
        }
        None => {
            let n = s.parse().ok()?;
            Some((n, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (raw, std, url) in [
            (&b""[..], "", ""),
            (b"f", "Zg==", "Zg=="),
            (b"fo", "Zm8=", "Zm8="),
            (b"foo", "Zm9v", "Zm9v"),
            (b"\xfb\xff\xbf", "+/+/", "-_-_"),
        ] {
            assert_eq!(base64(raw, false), std);
            assert_eq!(base64(raw, true), url);
            assert_eq!(base64_decode(std).unwrap(), raw);
            assert_eq!(base64_decode(url.trim_end_matches('=')).unwrap(), raw);
        }
        assert!(base64_decode("a b").is_none());
        // every length around the 6-byte steps, against a bit-by-bit encoder
        // (past the SIMD encoder's widths too)
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for n in 0..data.len() {
            for (url, table) in [(false, STD), (true, URL)] {
                let mut want = String::new();
                let bits: Vec<bool> = data[..n]
                    .iter()
                    .flat_map(|b| (0..8).rev().map(move |k| b >> k & 1 == 1))
                    .collect();
                for six in bits.chunks(6) {
                    let v = (0..6).fold(0usize, |a, k| {
                        a << 1 | usize::from(six.get(k) == Some(&true))
                    });
                    want.push(table[v] as char);
                }
                while !want.len().is_multiple_of(4) {
                    want.push('=');
                }
                assert_eq!(base64(&data[..n], url), want, "{n} bytes");
                assert_eq!(base64_decode(&want).unwrap(), &data[..n]);
            }
        }
    }

    #[test]
    fn hex_is_lower_case_pairs() {
        let all: Vec<u8> = (0..=255u8).collect();
        let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), want);
        let mut out = b"x".to_vec();
        hex_into(b"\x00\xff", &mut out);
        assert_eq!(out, b"x00ff");
    }

    #[test]
    fn headers_are_multi_valued() {
        let h = Headers::parse(b"NATS/1.0\r\nA: 1\r\nB: x\r\nA: 2\r\n\r\n");
        assert_eq!(h.status, None);
        assert_eq!(
            h.values,
            vec![
                ("A".to_string(), vec!["1".to_string(), "2".to_string()]),
                ("B".to_string(), vec!["x".to_string()])
            ]
        );
        assert_eq!(h.get("a"), Some("1"));
        let s = Headers::parse(b"NATS/1.0 100 Idle Heartbeat\r\n\r\n");
        assert_eq!(s.status.as_deref(), Some("100 Idle Heartbeat"));
    }

    #[test]
    fn time_and_seq_arguments() {
        let now = 10_000_000_000_000;
        assert_eq!(parse_time_arg("2h", now), Some(now - 7_200_000_000_000));
        assert_eq!(parse_time_arg("1d", now), Some(now - 86_400_000_000_000));
        assert_eq!(
            parse_time_arg("2026-11-30T10:00:00Z", now),
            crate::base::time::parse_rfc3339("2026-11-30T10:00:00Z")
        );
        assert_eq!(parse_time_arg("soon", now), None);
        assert_eq!(parse_seq_range("5..9"), Some((5, 9)));
        assert_eq!(parse_seq_range("5..=9"), Some((5, 9)));
        assert_eq!(parse_seq_range("5.."), Some((5, u64::MAX)));
        assert_eq!(parse_seq_range("..9"), Some((0, 9)));
        assert_eq!(parse_seq_range("7"), Some((7, 7)));
        assert_eq!(parse_seq_range("9..5"), None);
        assert_eq!(parse_seq_range("x"), None);
    }

    /// seq, subject, headers, payload
    type Got = (u64, String, Vec<u8>, Vec<u8>);

    fn collect(
        path: &Path,
        stream: &str,
        filter: &Filter,
    ) -> (Vec<Got>, Vec<Problem>, WalkSummary) {
        let all = streams(path).unwrap();
        let s = select(all, path, Some(stream), None).unwrap();
        let w = open(&s[0], &Default::default()).unwrap();
        let mut msgs = Vec::new();
        let mut probs = Vec::new();
        let sum = w
            .walk(filter, &mut |ev| {
                match ev {
                    Event::Msg(m) => msgs.push((
                        m.seq,
                        String::from_utf8_lossy(m.subject).into_owned(),
                        m.headers.to_vec(),
                        m.payload.to_vec(),
                    )),
                    Event::Finding(p) => probs.push(p.clone()),
                    Event::Rendered(..) => unreachable!("no renderer given"),
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        (msgs, probs, sum)
    }

    /// A dump as a given release serves the stream (`--server-version`): the erase-damaged
    /// compressed blocks of fixtures/m3-erased-cmp, with and without index.db, started by
    /// ten releases each (`releases.json`): the sequences dumped are exactly those MSG.GET
    /// served, on every release that loads the stream.
    #[test]
    fn dump_as_a_release_serves_what_that_release_served() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/m3-erased-cmp");
        let mut checked = 0;
        for writer in ["v2.10.25", "v2.11.0"] {
            let facts: serde_json::Value = serde_json::from_slice(
                &std::fs::read(root.join(writer).join("releases.json")).unwrap(),
            )
            .unwrap();
            for run in facts["runs"].as_array().unwrap() {
                if run["loaded"] != true {
                    continue;
                }
                let rel = run["release"].as_str().unwrap();
                let t = tempfile::tempdir().unwrap();
                let d = t.path().join("CMP");
                crate::testdata::copy_tree(&root.join(writer).join("CMP"), &d);
                if run["index.db"] == "removed" {
                    std::fs::remove_file(d.join("msgs/index.db")).unwrap();
                }
                let all = streams(&d).unwrap();
                let target = crate::check::Target {
                    release: Some(crate::base::release::Release::parse(rel).unwrap()),
                    ..Default::default()
                };
                let w = open(&all[0], &target).unwrap();
                let mut got = Vec::new();
                w.walk(&Filter::default(), &mut |ev| {
                    if let Event::Msg(m) = ev {
                        got.push(m.seq);
                    }
                    ControlFlow::Continue(())
                })
                .unwrap();
                let want: Vec<u64> = run["served"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect();
                assert_eq!(got, want, "{writer} by {rel}, index.db {}", run["index.db"]);
                checked += 1;
            }
        }
        assert!(checked >= 30, "{checked}");
    }

    /// Every stream of the real-server samples (2.15 plain and S2-compressed, 2.11 S2, 2.9
    /// legacy) dumps exactly the messages the server returned for MSG.GET.
    #[test]
    fn dump_equals_the_servers_messages() {
        for sample in ["v2.15.1-plain", "v2.15.1-s2", "v2.9.10-legacy"] {
            let t = crate::testdata::sample(sample);
            let f: serde_json::Value = serde_json::from_slice(
                &std::fs::read(t.path().join(sample).join("facts.json")).unwrap(),
            )
            .unwrap();
            let store = t.path().join(sample).join("store");
            for (name, s) in f["streams"].as_object().unwrap() {
                let (got, probs, sum) = collect(&store, name, &Filter::default());
                assert!(probs.is_empty(), "{sample} {name}: {probs:?}");
                assert_eq!(sum.errors, 0);
                let want = s["messages"].as_array().unwrap();
                assert_eq!(got.len(), want.len(), "{sample} {name}");
                for (g, w) in got.iter().zip(want) {
                    assert_eq!(g.0, w["seq"].as_u64().unwrap(), "{sample} {name}");
                    assert_eq!(g.1, w["subject"].as_str().unwrap());
                    assert_eq!(
                        String::from_utf8_lossy(&g.2),
                        w["hdrs"].as_str().unwrap_or("")
                    );
                    if let Some(d) = w["data"].as_str() {
                        assert_eq!(g.3, d.as_bytes(), "{sample} {name} seq {}", g.0);
                    }
                }
            }
        }
    }

    /// The bundled backups (V2 from 2.15.1, V1 from 2.9.10, a tgz) give the server's messages.
    #[test]
    fn backups_dump_the_servers_messages() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/backups");
        for b in ["v2.15.1/ORDERS", "v2.9.10/ORDERS", "ORDERS.tgz"] {
            let (got, probs, _) = collect(&root.join(b), "ORDERS", &Filter::default());
            assert!(probs.is_empty(), "{b}: {probs:?}");
            let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
            assert_eq!(seqs, vec![1, 2, 4, 5, 7, 8, 9, 10], "{b}");
            let f = Filter {
                subject: Some(b"orders.new".to_vec()),
                ..Default::default()
            };
            let (got, _, _) = collect(&root.join(b), "ORDERS", &f);
            assert_eq!(got.len(), 4, "{b}");
            let f = Filter {
                last: Some(2),
                ..Default::default()
            };
            let (got, _, _) = collect(&root.join(b), "ORDERS", &f);
            assert_eq!(
                got.iter().map(|g| g.0).collect::<Vec<_>>(),
                vec![9, 10],
                "{b}"
            );
        }
    }

    /// A payload flip: the finding comes at its place, between seq 34 and 36, and the stream
    /// goes on (index.db trusted: only seq 35 is unreadable); a missing path is an error.
    #[test]
    fn damage_is_a_finding_in_sequence_order() {
        let t = crate::testdata::sample("v2.15.1-plain");
        let d = crate::testdata::stream_dir(&t, "v2.15.1-plain", "MULTI");
        let blk = d.join("msgs/2.blk");
        let mut b = std::fs::read(&blk).unwrap();
        let at = b.len() / 2; // inside some record of block 2
        b[at] ^= 0xff;
        std::fs::write(&blk, b).unwrap();
        let all = streams(&d).unwrap();
        let w = open(&all[0], &Default::default()).unwrap();
        let mut order = Vec::new();
        let sum = w
            .walk(&Filter::default(), &mut |ev| {
                order.push(match ev {
                    Event::Msg(m) => (m.seq, false),
                    Event::Finding(p) => (p.loc.seq.unwrap_or(0), true),
                    Event::Rendered(..) => unreachable!("no renderer given"),
                });
                ControlFlow::Continue(())
            })
            .unwrap();
        assert!(sum.errors >= 1);
        let (fi, &(bad, _)) = order.iter().enumerate().find(|(_, o)| o.1).unwrap();
        assert!(order[..fi].iter().all(|o| o.0 < bad));
        assert!(order[fi + 1..].iter().all(|o| o.0 > bad));
        assert!(order.iter().any(|o| !o.1 && o.0 == 100));
        assert!(!order.iter().any(|o| !o.1 && o.0 == bad));
        assert!(streams(Path::new("/nonexistent/jetdir")).is_err());
    }

    /// The parallel renderer hands out exactly what the sequential walk gives, in order, for
    /// plain and S2 blocks, with and without filters, damage included.
    #[test]
    fn rendered_walk_equals_the_plain_walk() {
        let t = crate::testdata::sample("v2.15.1-s2");
        let store = t.path().join("v2.15.1-s2/store");
        let damaged = crate::testdata::sample("v2.15.1-plain");
        let d = crate::testdata::stream_dir(&damaged, "v2.15.1-plain", "MULTI");
        let blk = d.join("msgs/3.blk");
        let mut b = std::fs::read(&blk).unwrap();
        b[100] ^= 0x01;
        std::fs::write(&blk, b).unwrap();
        let plain_store = damaged.path().join("v2.15.1-plain/store");
        let render = |m: &Msg, out: &mut Vec<u8>| {
            dump::write_message_json(m, dump::PayloadMode::Base64, false, out);
            out.push(b'\n');
        };
        for path in [&store, &plain_store] {
            for s in streams(path).unwrap() {
                let w = open(&s, &Default::default()).unwrap();
                for filter in [
                    Filter::default(),
                    Filter {
                        include_deleted: true,
                        ..Default::default()
                    },
                    Filter {
                        seq: (5, 40),
                        subject: Some(b"*.>".to_vec()),
                        ..Default::default()
                    },
                    Filter {
                        last: Some(3),
                        ..Default::default()
                    },
                ] {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    w.walk(&filter, &mut |ev| {
                        match ev {
                            Event::Msg(m) => render(&m, &mut a),
                            Event::Finding(p) => a.extend(format!("{p:?}\n").bytes()),
                            Event::Rendered(..) => unreachable!(),
                        }
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                    w.walk_rendered(&filter, &render, &mut |ev| {
                        match ev {
                            Event::Rendered(_, bytes) => b.extend_from_slice(bytes),
                            Event::Finding(p) => b.extend(format!("{p:?}\n").bytes()),
                            Event::Msg(_) => unreachable!(),
                        }
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                    assert_eq!(a, b, "{} {filter:?}", s.name);
                }
            }
        }
    }

    /// Everything a walk hands out, rendered: the messages (JSON), the findings (debug form).
    fn both_walks(w: &StreamWalker, filter: &Filter) -> (Vec<u8>, Vec<u8>) {
        let render = |m: &Msg, out: &mut Vec<u8>| {
            dump::write_message_json(m, dump::PayloadMode::Base64, false, out);
            out.push(b'\n');
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        w.walk(filter, &mut |ev| {
            match ev {
                Event::Msg(m) => render(&m, &mut a),
                Event::Finding(p) => a.extend(format!("{p:?}\n").bytes()),
                Event::Rendered(..) => unreachable!(),
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        w.walk_rendered(filter, &render, &mut |ev| {
            match ev {
                Event::Rendered(_, bytes) => b.extend_from_slice(bytes),
                Event::Msg(m) => {
                    let mut one = Vec::new();
                    dump::stream_message_json(&m, dump::PayloadMode::Base64, false, &mut one)
                        .unwrap();
                    b.extend_from_slice(&one);
                    b.push(b'\n');
                }
                Event::Finding(p) => b.extend(format!("{p:?}\n").bytes()),
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        (a, b)
    }

    /// A block of a few MiB read in pieces by the rendered walk (records across the pieces'
    /// edges, one record longer than a piece) hands out exactly what the whole-block walk
    /// does: clean, and with each kind of damage that makes it walk the block whole (a bad
    /// length, a record whose subject does not fit, a torn last record, bytes after the
    /// last record) or that it reads through (a bad checksum), under every filter.
    #[test]
    fn pieces_walk_equals_the_whole_block_walk() {
        // (MULTI has max_bytes 120000: the load removes all but its last ~120 KB, which
        // `include_deleted` shows)
        let t = crate::testdata::sample("v2.15.1-plain");
        let d = crate::testdata::stream_dir(&t, "v2.15.1-plain", "MULTI");
        for f in std::fs::read_dir(d.join("msgs")).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        let key = block::block_key("MULTI", 1);
        let mut rng = crate::testdata::Rng(0x0b10_c4ed);
        let mut blk = Vec::new();
        let mut starts = Vec::new();
        for seq in 1..=3000u64 {
            starts.push(blk.len());
            let n = if seq == 1500 {
                600 << 10
            } else {
                rng.below(2000)
            };
            let payload = rng.bytes(n);
            let hdr = format!("NATS/1.0\r\nX-Seq: {seq}\r\n\r\n");
            let subject = format!("multi.s{}", seq % 7);
            let raw_seq = if seq % 500 == 0 { seq | (1 << 62) } else { seq };
            block::encode_record(
                &mut blk,
                &key,
                raw_seq,
                1_764_496_800_000_000_000 + seq as i64,
                subject.as_bytes(),
                (seq % 3 != 0).then_some(hdr.as_bytes()),
                &payload,
            );
        }
        assert!(blk.len() > 4 * PIECE, "{}", blk.len());
        let mut cases: Vec<(&str, Vec<u8>)> = vec![("clean", blk.clone())];
        let mut c = blk.clone();
        c[starts[2100] + 40] ^= 0x10; // a payload byte: a bad checksum, read through
        cases.push(("checksum", c));
        let mut c = blk.clone();
        c[starts[1800]..starts[1800] + 4].copy_from_slice(&7u32.to_le_bytes());
        cases.push(("length", c));
        let mut c = blk.clone();
        c[starts[900] + 20..starts[900] + 22].copy_from_slice(&u16::MAX.to_le_bytes());
        cases.push(("subject", c));
        let mut c = blk.clone();
        c.truncate(c.len() - 100);
        cases.push(("torn", c));
        let mut c = blk.clone();
        c.extend_from_slice(&[0u8; 9]);
        cases.push(("trailing", c));
        for (what, bytes) in cases {
            std::fs::write(d.join("msgs/1.blk"), &bytes).unwrap();
            let all = streams(&d).unwrap();
            let w = open(&all[0], &Default::default()).unwrap();
            for filter in [
                Filter::default(),
                Filter {
                    include_deleted: true,
                    ..Default::default()
                },
                Filter {
                    seq: (1000, 2500),
                    subject: Some(b"multi.s3".to_vec()),
                    include_deleted: true,
                    ..Default::default()
                },
                Filter {
                    last: Some(700),
                    include_deleted: true,
                    ..Default::default()
                },
            ] {
                let (a, b) = both_walks(&w, &filter);
                assert!(a.len() > 1000, "{what} {filter:?}");
                assert!(a == b, "{what} {filter:?}");
            }
        }
    }

    /// Random damage to the blocks, index.db and meta of a stream never panics the walk, and
    /// what comes out is strictly ascending, with or without `--include-deleted`.
    #[test]
    fn random_damage_never_panics() {
        let mut rng = crate::testdata::Rng(0x5eed_f00d);
        for round in 0..12 {
            let t = crate::testdata::sample("v2.15.1-plain");
            let d = crate::testdata::stream_dir(&t, "v2.15.1-plain", "MULTI");
            for rel in ["msgs/1.blk", "msgs/2.blk", "msgs/4.blk", "msgs/index.db"] {
                let p = d.join(rel);
                let mut b = std::fs::read(&p).unwrap();
                for _ in 0..(1 + round % 4) {
                    let at = rng.below(b.len());
                    b[at] ^= 1 << rng.below(8);
                }
                if round % 5 == 4 {
                    b.truncate(rng.below(b.len()));
                }
                std::fs::write(&p, b).unwrap();
            }
            let all = streams(&d).unwrap();
            let Ok(w) = open(&all[0], &Default::default()) else {
                continue;
            };
            for include_deleted in [false, true] {
                let f = Filter {
                    include_deleted,
                    ..Default::default()
                };
                let mut seqs = Vec::new();
                w.walk(&f, &mut |ev| {
                    if let Event::Msg(m) = ev {
                        seqs.push(m.seq);
                    }
                    ControlFlow::Continue(())
                })
                .unwrap();
                assert!(seqs.windows(2).all(|x| x[0] < x[1]), "round {round}");
            }
        }
    }

    /// A tarball whose members are in reverse order (blocks 4..1, meta.inf last, as tar tools
    /// store a directory): the messages still come out in sequence order, equal to the dir's.
    #[test]
    fn out_of_order_tarball_dumps_in_sequence_order() {
        let t = crate::testdata::sample("v2.15.1-plain");
        let d = crate::testdata::stream_dir(&t, "v2.15.1-plain", "MULTI");
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&d)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf())
            .collect();
        files.sort();
        files.reverse();
        let tgz = t.path().join("multi.tgz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&tgz).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tb = tar::Builder::new(gz);
        for f in &files {
            let rel = f.strip_prefix(&d).unwrap();
            tb.append_path_with_name(f, Path::new("MULTI").join(rel))
                .unwrap();
        }
        tb.into_inner().unwrap().finish().unwrap();
        let (a, pa, _) = collect(&d, "MULTI", &Filter::default());
        let (b, pb, _) = collect(&tgz, "MULTI", &Filter::default());
        assert!(pa.is_empty() && pb.is_empty(), "{pa:?} {pb:?}");
        assert_eq!(a, b);
        assert_eq!(a.len(), 98);
        let f = Filter {
            last: Some(2),
            ..Default::default()
        };
        let (b, _, _) = collect(&tgz, "MULTI", &f);
        assert_eq!(b.iter().map(|g| g.0).collect::<Vec<_>>(), vec![99, 100]);
    }
}
