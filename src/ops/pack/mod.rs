//! `jetdir pack`: turn a stream on disk into a backup that the server's restore accepts.
//!
//! - `v1` (default): a `nats stream backup` directory — `backup.json` + `stream.tar.s2`, a tar
//!   of the stream dir as the server's V1 snapshot writes it (meta.inf, meta.sum, per block
//!   `.idx` (+ `.fss` for 2.9 stores) then the **decompressed** `.blk`, `msgs/index.db`, then
//!   `obs/<c>/{meta.inf,meta.sum,o.dat}`) inside S2 framing. Blocks of 2.10+ stores go in
//!   without tombstones, one record per sequence, with a legacy `.idx` each, so that 2.9
//!   restores them as well as 2.10+ (see `pack/compat.rs`).
//! - `v2`: the same directory with a NATSARC1 archive (state.json, consumers/<name>, one entry
//!   per live message, end sentinel), for 2.15+ servers.
//! - `tgz`: one gzip tarball of the stream dir(s), entries `<stream>/...`, to extract into a
//!   stopped server's `jetstream/<ACC>/streams/`.
//!
//! The source is verified first; damaged data is refused unless `--allow-damaged`, encrypted
//! streams always. Memory stays bounded with records up to the 32 MiB limit: a block above a
//! normal block's size is written from its file in pieces (`pack/blockio.rs`). Output is staged beside OUT, fsynced and renamed into place; the same input
//! gives byte-identical archives (only `manifest.json`'s `created` differs).
mod blockio;
mod compat;
mod onepass;
pub mod target;
mod tgz;
mod v1;
mod v2;

use crate::backup::manifest::{self, FileEntry, Manifest};
use crate::base::problem::{Problem, Severity};
use crate::base::progress::Progress;
use crate::base::report::{Outcome, StreamReport};
use crate::base::time::go_time;
use crate::check::store;
use crate::filestore::discover::{self, StreamDir};
use crate::filestore::meta::MetaInf;
use crate::ops::staging::{self, CommitError, HashedFile, Perms, Stage};
use crate::ops::target_dir::{self, Owner};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use target::{ServerVersion, TargetSource};

/// The backup form `jetdir pack` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackFormat {
    /// A `nats stream backup` directory with a V1 snapshot (tar in S2); every server version.
    V1,
    /// A `nats stream backup` directory with a V2 (NATSARC1) archive, for 2.15+ servers.
    V2,
    /// One gzip tarball of the stream dir(s), to extract into a stopped server's store.
    Tgz,
}

impl PackFormat {
    /// The name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PackFormat::V1 => "v1",
            PackFormat::V2 => "v2",
            PackFormat::Tgz => "tgz",
        }
    }
}

/// What `jetdir pack` was asked to do.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// OUT: the backup to create (never overwritten).
    pub out: PathBuf,
    /// `--stream`: the stream to pack when PATH holds several.
    pub stream: Option<String>,
    /// `--account` (default `$G`).
    pub account: Option<String>,
    /// The backup form to write.
    pub format: PackFormat,
    /// `--all`: every stream of the account.
    pub all: bool,
    /// `--allow-damaged`: pack a source that verification found damaged.
    pub allow_damaged: bool,
    /// `--no-consumers`: leave the consumers out.
    pub no_consumers: bool,
    /// `--force`: pack although a server seems to hold the store.
    pub force: bool,
    /// `--server-version`: the release that will restore the backup (default: the release
    /// that wrote each stream, from meta.inf's `_nats.ver` or the layout).
    pub server_version: Option<ServerVersion>,
    /// Keys of an encrypted store: its streams are packed as plaintext (as server snapshots are).
    pub keys: crate::filestore::keys::KeyRing,
    /// `--as NEW [--subjects S,...]`: pack the stream under another name (see
    /// [`crate::ops::rename`]): a renamed plaintext copy beside OUT is verified under the new
    /// name and packed.
    pub rename: Option<crate::ops::rename::Rewrite>,
}

/// One file written, relative to OUT (for tgz: the tarball and its manifest, by name).
#[derive(Debug, Clone, Serialize)]
pub struct PackedFile {
    /// Relative to OUT.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// One stream packed, with the state the backup declares.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PackedStream {
    /// Its account.
    pub account: String,
    /// Its name.
    pub name: String,
    /// The stream dir read.
    pub source: String,
    /// Messages in the backup.
    pub messages: u64,
    /// Their bytes (as the server counts them).
    pub bytes: u64,
    /// First sequence.
    pub first_seq: u64,
    /// Last sequence.
    pub last_seq: u64,
    /// Deleted sequences between first and last (the server's `num_deleted`).
    pub deleted: u64,
    /// Time of the first message, ns since the epoch; JSON also `first_time` (RFC 3339).
    #[serde(flatten, serialize_with = "first_time")]
    pub first_ts: Option<i64>,
    /// Time of the last message, ns since the epoch; JSON also `last_time` (RFC 3339).
    #[serde(flatten, serialize_with = "last_time")]
    pub last_ts: Option<i64>,
    /// Consumers packed, as verification found them.
    pub consumers: Vec<crate::base::report::ConsumerReport>,
    /// What happened to `msgs/index.db`: `copied`, `omitted (...)`, `legacy .idx/.fss`, `none`.
    pub index_db: String,
    /// The release the backup is laid out for and why (`2.12.8 (--server-version)`), or
    /// `unknown` (no `_nats.ver`, no index.db and not a 2.9 layout: files are kept as they are).
    pub server_version: String,
    /// Auxiliary state files carried (`msgs/thw.db`, `msgs/sched.db`, `sources.db`).
    pub aux_files: Vec<String>,
}

fn first_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("first", *ns, s)
}

fn last_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("last", *ns, s)
}

/// The result of `jetdir pack` (its JSON report).
#[derive(Debug, Clone, Serialize, Default)]
pub struct PackReport {
    /// True when the backup was written.
    pub ok: bool,
    /// The backup form.
    pub format: Option<PackFormat>,
    /// OUT.
    pub out: String,
    /// The manifest written (OUT/manifest.json, OUT/<stream>/manifest.json, or OUT.manifest.json).
    pub manifests: Vec<String>,
    /// Why nothing was written.
    pub refused: Option<String>,
    /// The streams packed.
    pub streams: Vec<PackedStream>,
    /// The files written.
    pub files: Vec<PackedFile>,
    /// Everything verification found (errors only when --allow-damaged or refused).
    pub problems: Vec<Problem>,
    /// Things to know that did not stop the packing.
    pub notes: Vec<String>,
    /// Staging leftovers of earlier interrupted packs to the same OUT that were removed.
    pub removed_staging: Vec<String>,
    #[serde(skip)]
    outcome: Outcome,
}

impl PackReport {
    /// 0 written; 1 the source is damaged (refused, or written anyway with --allow-damaged);
    /// 2 could not run (encrypted source, a server holds the store, OUT exists or its dir
    /// is unusable, bad arguments).
    pub fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }

    fn refuse(mut self, outcome: Outcome, why: String) -> Self {
        self.ok = false;
        self.outcome = outcome;
        self.refused = Some(why);
        self
    }
}

/// Stream numbers as backup.json / state.json carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StateNums {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    pub(crate) first_seq: u64,
    pub(crate) first_ts: Option<i64>,
    pub(crate) last_seq: u64,
    pub(crate) last_ts: Option<i64>,
    pub(crate) num_subjects: u64,
    pub(crate) num_deleted: u64,
}

impl StateNums {
    fn from_report(r: &StreamReport) -> Self {
        StateNums {
            messages: r.messages.unwrap_or(0),
            bytes: r.bytes.unwrap_or(0),
            first_seq: r.first_seq.unwrap_or(0),
            first_ts: r.first_ts.filter(|_| r.messages.unwrap_or(0) > 0),
            last_seq: r.last_seq.unwrap_or(0),
            last_ts: r.last_ts.filter(|_| r.messages.unwrap_or(0) > 0),
            num_subjects: r.subjects.unwrap_or(0),
            num_deleted: r.deleted.unwrap_or(0),
        }
    }

    /// The StreamState JSON object (Go field order, omitempty fields dropped).
    pub(crate) fn to_json(&self, consumers: usize) -> Value {
        let mut m = Map::new();
        m.insert("messages".into(), self.messages.into());
        m.insert("bytes".into(), self.bytes.into());
        m.insert("first_seq".into(), self.first_seq.into());
        m.insert(
            "first_ts".into(),
            go_time(self.first_ts.unwrap_or(0)).into(),
        );
        m.insert("last_seq".into(), self.last_seq.into());
        m.insert("last_ts".into(), go_time(self.last_ts.unwrap_or(0)).into());
        if self.num_subjects > 0 {
            m.insert("num_subjects".into(), self.num_subjects.into());
        }
        if self.num_deleted > 0 {
            m.insert("num_deleted".into(), self.num_deleted.into());
        }
        m.insert("consumer_count".into(), (consumers as u64).into());
        Value::Object(m)
    }
}

/// One consumer to pack.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSrc {
    pub(crate) name: String,
    /// The consumer as verification found it (for the report).
    pub(crate) report: crate::base::report::ConsumerReport,
    pub(crate) meta: MetaInf,
    pub(crate) o_dat: Option<Vec<u8>>,
}

/// Everything known about one source stream once it verified.
#[derive(Debug, Clone)]
pub(crate) struct StreamSrc {
    pub(crate) sd: StreamDir,
    pub(crate) cfg_name: String,
    pub(crate) meta: MetaInf,
    pub(crate) blocks: Vec<u32>,
    pub(crate) legacy: bool,
    /// Copy msgs/index.db (it exists and verification found it consistent with the blocks).
    pub(crate) index_db_ok: bool,
    pub(crate) index_db_note: String,
    pub(crate) consumers: Vec<ConsumerSrc>,
    pub(crate) state: StateNums,
    /// Seconds used as every tar member's mtime (the last message's time; deterministic).
    pub(crate) mtime: u64,
    /// Nanoseconds used as the V2 snapshot time.
    pub(crate) snap_ts: i64,
    /// Verification found errors (packing anyway with --allow-damaged).
    pub(crate) damaged: bool,
    /// The release the backup is for (`None`: unknown, keep files as they are).
    pub(crate) target: Option<(ServerVersion, TargetSource)>,
    /// thw.db / sched.db / sources.db to carry (relative paths; present, readable and
    /// read by the target).
    pub(crate) aux: Vec<&'static str>,
}

impl StreamSrc {
    fn build(
        sd: &StreamDir,
        rep: &StreamReport,
        problems: &[Problem],
        opts: &PackOptions,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<StreamSrc> {
        let raw = fs::read(sd.dir.join("meta.inf"))
            .map_err(|e| anyhow::anyhow!("{}: cannot read meta.inf: {e}", sd.dir.display()))?;
        let meta = MetaInf::parse(&raw)
            .map_err(|e| anyhow::anyhow!("{}: meta.inf: {e}", sd.dir.display()))?;
        let cfg_name = meta.name().unwrap_or(&sd.name).to_string();
        let legacy = rep.index == crate::base::report::IndexKind::Legacy;
        let on_disk = sd.dir.join("msgs/index.db").is_file();
        let idx_problem = problems
            .iter()
            .find(|p| p.kind.is_index_db())
            .map(|p| p.kind);
        let (index_db_ok, index_db_note) = match (on_disk, idx_problem) {
            (false, _) if legacy => (false, "legacy .idx/.fss".to_string()),
            (false, _) => (
                false,
                "none (the server rebuilds it from the blocks)".to_string(),
            ),
            (true, None) => (true, "copied".to_string()),
            (true, Some(k)) => (
                false,
                format!("omitted ({k}: the server rebuilds it from the blocks)"),
            ),
        };
        let mut consumers = Vec::new();
        if !opts.no_consumers {
            for c in &rep.consumers {
                let cdir = sd.dir.join("obs").join(&c.name);
                let m = fs::read(cdir.join("meta.inf"))
                    .ok()
                    .and_then(|b| MetaInf::parse(&b).ok());
                match m {
                    Some(meta) => consumers.push(ConsumerSrc {
                        name: c.name.clone(),
                        report: c.clone(),
                        meta,
                        o_dat: fs::read(cdir.join("o.dat")).ok(),
                    }),
                    None => notes.push(format!(
                        "{} > {}: consumer {} left out: its meta.inf is missing or unreadable",
                        sd.account, sd.name, c.name
                    )),
                }
            }
        }
        let state = StateNums::from_report(rep);
        let target = target_of(sd, &meta, legacy, opts, notes);
        let aux = aux_files(sd, rep, problems, target.map(|t| t.0), notes);
        let index_db_note = match target.map(|t| t.0.index_db_version()) {
            Some(None) if index_db_ok => {
                "omitted (nats-server 2.9 reads the .idx files)".to_string()
            }
            Some(Some(v)) if index_db_ok && on_disk_version(sd) > Some(v) => {
                format!("copied as version {v}, the newest the target reads")
            }
            _ => index_db_note,
        };
        let last_ns = state.last_ts.unwrap_or(0).max(0);
        let mut blocks: Vec<u32> = rep.block_list.iter().map(|b| b.index).collect();
        blocks.sort_unstable();
        Ok(StreamSrc {
            sd: sd.clone(),
            cfg_name,
            meta,
            blocks,
            legacy,
            index_db_ok,
            index_db_note,
            consumers,
            state,
            mtime: (last_ns / 1_000_000_000) as u64,
            snap_ts: last_ns,
            damaged: problems.iter().any(|p| p.severity == Severity::Error),
            target,
            aux,
        })
    }

    /// The index.db version to write: `None` for a 2.9 target (no index.db), the newest
    /// when the target is unknown.
    pub(crate) fn index_db_version(&self) -> Option<u8> {
        match self.target {
            Some((t, _)) => t.index_db_version(),
            None => Some(crate::filestore::index_db::MAX_VERSION),
        }
    }

    /// For the report: `2.12.8 (--server-version)`.
    fn target_text(&self) -> String {
        match self.target {
            None => "unknown".into(),
            Some((v, how)) => format!(
                "{v} ({})",
                match how {
                    TargetSource::Option => "--server-version",
                    TargetSource::Metadata => "meta.inf _nats.ver",
                    TargetSource::Layout => "from the layout",
                }
            ),
        }
    }

    /// backup.json's `config`: meta.inf without the file-store-only `Created`.
    pub(crate) fn config(&self) -> Map<String, Value> {
        let mut c = self.meta.json.clone();
        c.shift_remove("Created");
        c
    }

    fn metadata(&self, k: &str) -> Option<String> {
        self.meta
            .json
            .get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// The release a stream is packed for: `--server-version`, else meta.inf's `_nats.ver`, else
/// the layout (2.9 `.idx` files, or the version of its index.db).
fn target_of(
    sd: &StreamDir,
    meta: &MetaInf,
    legacy: bool,
    opts: &PackOptions,
    notes: &mut Vec<String>,
) -> Option<(ServerVersion, TargetSource)> {
    if let Some(v) = opts.server_version {
        return Some((v, TargetSource::Option));
    }
    let ver = meta
        .json
        .get("metadata")
        .and_then(|m| m.get("_nats.ver"))
        .and_then(Value::as_str);
    if let Some(s) = ver {
        match s.parse::<ServerVersion>() {
            Ok(v) => return Some((v, TargetSource::Metadata)),
            Err(e) => notes.push(format!(
                "{} > {}: meta.inf _nats.ver ignored: {e}",
                sd.account, sd.name
            )),
        }
    }
    if legacy {
        return Some((
            ServerVersion {
                major: 2,
                minor: 9,
                patch: 0,
            },
            TargetSource::Layout,
        ));
    }
    match on_disk_version(sd) {
        // sources.db is written from 2.15 on, with index.db version 4
        Some(crate::filestore::index_db::MAX_VERSION) if sd.dir.join("sources.db").is_file() => {
            Some((
                ServerVersion {
                    major: 2,
                    minor: 15,
                    patch: 0,
                },
                TargetSource::Layout,
            ))
        }
        Some(v @ 1..=crate::filestore::index_db::MAX_VERSION) => {
            Some((ServerVersion::writer_of_index_db(v), TargetSource::Layout))
        }
        _ => None,
    }
}

/// The source's msgs/index.db as the target reads it: as it is when the target reads its
/// version, re-encoded at the target's version when it is newer, `None` for a 2.9 target.
pub(crate) fn index_db_for_target(src: &StreamSrc) -> anyhow::Result<Option<Vec<u8>>> {
    use crate::filestore::index_db;
    let Some(want) = src.index_db_version() else {
        return Ok(None);
    };
    let p = src.sd.dir.join("msgs/index.db");
    let raw = fs::read(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    if raw.get(1).is_some_and(|&v| v <= want) {
        return Ok(Some(raw));
    }
    let (body, _) =
        index_db::split_trailer(&raw).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    let db = index_db::parse(body).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    Ok(Some(index_db::encode_version(&db, &src.cfg_name, want)))
}

/// The version byte of a plaintext msgs/index.db.
fn on_disk_version(sd: &StreamDir) -> Option<u8> {
    let mut head = [0u8; 2];
    let mut f = fs::File::open(sd.dir.join("msgs/index.db")).ok()?;
    io::Read::read_exact(&mut f, &mut head).ok()?;
    (head[0] == crate::filestore::index_db::MAGIC).then_some(head[1])
}

/// The auxiliary state files to carry: present, not found damaged by verification, and read
/// by the target release.
fn aux_files(
    sd: &StreamDir,
    rep: &StreamReport,
    problems: &[Problem],
    target: Option<ServerVersion>,
    notes: &mut Vec<String>,
) -> Vec<&'static str> {
    use crate::base::problem::Kind;
    let mut out = Vec::new();
    for rel in ["msgs/thw.db", "msgs/sched.db", "sources.db"] {
        if !rep.files.iter().any(|f| f == rel) {
            continue;
        }
        let read = target.is_none_or(|t| match rel {
            "msgs/thw.db" => t.reads_thw(),
            "msgs/sched.db" => t.reads_sched(),
            _ => t.reads_sources(),
        });
        if !read {
            continue;
        }
        let bad = problems.iter().any(|p| {
            matches!(p.kind, Kind::AuxFileCorrupt | Kind::AuxFileAhead)
                && p.loc.file.as_deref().is_some_and(|f| f.ends_with(rel))
        });
        if bad {
            notes.push(format!(
                "{} > {}: {rel} left out (verification found it damaged or ahead of the stream; \
                 the server rebuilds it by scanning the messages)",
                sd.account, sd.name
            ));
            continue;
        }
        out.push(rel);
    }
    out
}

/// Write a small file into the stage: (bytes, sha256 hex).
fn write_small(stage: &mut Stage, rel: &str, data: &[u8]) -> io::Result<(u64, String)> {
    let mut f = stage.hashed_file(rel)?;
    f.write_all(data)?;
    let (n, h) = f.done()?;
    stage.planned(rel, n);
    Ok((n, h))
}

/// Staging names of pack beside OUT: `.<OUT name>.jetdir-pack-<pid>`.
fn staging_for(out: &Path) -> anyhow::Result<PathBuf> {
    let name = out
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{}: OUT needs a file name", out.display()))?
        .to_string_lossy()
        .into_owned();
    Ok(staging::staging_path(out, &format!("{name}.jetdir-pack-")))
}

/// What a failed commit of OUT means, as an error.
fn commit_error(stage: &Path, out: &Path, e: CommitError) -> anyhow::Error {
    match e {
        CommitError::TargetExists => {
            anyhow::anyhow!("{} appeared while packing; not overwriting", out.display())
        }
        CommitError::Rename(e) => anyhow::anyhow!(
            "cannot rename {} to {}: {e}",
            stage.display(),
            out.display()
        ),
        CommitError::Link(p, e) => anyhow::anyhow!("cannot create {}: {e}", p.display()),
        CommitError::Sync(e) => anyhow::anyhow!("cannot fsync {}: {e}", out.display()),
    }
}

fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

fn now_rfc3339() -> String {
    go_time(crate::base::time::now_ns())
}

/// The directory a running server would hold files under: the store dir (parent of
/// `jetstream/`) when the path is inside one, else the path itself.
fn store_root(p: &Path) -> PathBuf {
    let abs = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    for a in abs.ancestors() {
        if a.file_name().is_some_and(|n| n == "jetstream") {
            if let Some(parent) = a.parent() {
                return parent.to_path_buf();
            }
        }
    }
    if abs.join("jetstream").is_dir() {
        return abs;
    }
    abs
}

/// Which streams PATH + options name.
fn select_streams(path: &Path, opts: &PackOptions) -> anyhow::Result<Vec<StreamDir>> {
    let lay = discover::discover(path)?;
    let account = opts.account.as_deref().unwrap_or("$G");
    let is_stream_dir = lay.streams.len() == 1
        && lay.streams.first().is_some_and(|s| s.dir == path)
        && discover::looks_like_stream_dir(path);
    if is_stream_dir {
        if opts.all {
            anyhow::bail!(
                "{} is a stream dir: --all needs a store or account dir",
                path.display()
            );
        }
        if let (Some(want), Some(s)) = (&opts.stream, lay.streams.first()) {
            if want != &s.name {
                anyhow::bail!(
                    "{} is the stream dir of {:?}, not {want:?}",
                    path.display(),
                    s.name
                );
            }
        }
        return Ok(lay.streams);
    }
    let in_acct: Vec<StreamDir> = lay
        .streams
        .iter()
        .filter(|s| s.account == account)
        .cloned()
        .collect();
    let names = || {
        in_acct
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if opts.all {
        if opts.stream.is_some() {
            anyhow::bail!("--all and --stream exclude each other");
        }
        if in_acct.is_empty() {
            anyhow::bail!("no streams of account {account:?} under {}", path.display());
        }
        return Ok(in_acct);
    }
    match &opts.stream {
        Some(n) => match in_acct.iter().find(|s| &s.name == n) {
            Some(s) => Ok(vec![s.clone()]),
            None => anyhow::bail!(
                "no stream {n:?} in account {account:?} under {} (streams: {})",
                path.display(),
                names()
            ),
        },
        None if in_acct.len() == 1 => Ok(in_acct),
        None => anyhow::bail!(
            "{} holds {} streams in account {account:?} ({}): name one with --stream, or use --all",
            path.display(),
            in_acct.len(),
            names()
        ),
    }
}

/// Pack the stream(s) PATH names into OUT.
pub fn pack(
    path: &Path,
    opts: &PackOptions,
    progress: &dyn Progress,
) -> anyhow::Result<PackReport> {
    let mut report = PackReport {
        format: Some(opts.format),
        out: opts.out.display().to_string(),
        ..Default::default()
    };
    let streams = select_streams(path, opts)?;
    let out = &opts.out;
    let side_manifest = side_manifest_path(out);
    // OUT's dir: it must exist and be writable before the long verify starts.
    let out_dir = staging::parent_dir(out);
    if !out_dir.is_dir() {
        return Ok(report.refuse(
            Outcome::CouldNotRun,
            format!(
                "{} does not exist (or is not a directory): create it first, pack writes {} into it",
                out_dir.display(),
                out.display()
            ),
        ));
    }
    if let Err(why) = target_dir::writable_with_room(&out_dir, None, "the backup") {
        return Ok(report.refuse(Outcome::CouldNotRun, why));
    }
    if let Err(why) = clear_pack_leftovers(out, &mut report) {
        return Ok(report.refuse(Outcome::CouldNotRun, why));
    }
    if out.exists() || fs::symlink_metadata(out).is_ok() {
        return Ok(report.refuse(
            Outcome::CouldNotRun,
            format!("{} exists; pack never overwrites", out.display()),
        ));
    }
    if opts.format == PackFormat::Tgz && side_manifest.exists() {
        return Ok(report.refuse(
            Outcome::CouldNotRun,
            format!("{} exists; pack never overwrites", side_manifest.display()),
        ));
    }
    if let Some(v) = opts.server_version {
        if opts.format == PackFormat::V2 && !v.restores_v2() {
            return Ok(report.refuse(
                Outcome::CouldNotRun,
                format!("--server-version {v}: V2 backups restore on nats-server 2.15+ only; use --format v1"),
            ));
        }
    }
    // A running server rewrites files while we read them.
    let mut roots: Vec<PathBuf> = streams.iter().map(|s| store_root(&s.dir)).collect();
    roots.sort();
    roots.dedup();
    for r in &roots {
        if let Some(who) = crate::filestore::running::server_holding(r) {
            if opts.force {
                report
                    .notes
                    .push(format!("--force: {who}; the backup may not be consistent"));
            } else {
                return Ok(report.refuse(
                    Outcome::CouldNotRun,
                    format!(
                        "{who}: a running server may be writing this store; stop it first (or --force)"
                    ),
                ));
            }
        }
    }
    // Verify every stream first.
    let block_bytes = store::total_block_bytes(&streams);
    // Room for the output, before the long work: how well the data compresses is not known
    // before it is written (text can shrink 25 times), so less room than the stream's bytes
    // is said, not refused; a full disk on the way is an error naming the file.
    if let Some(free) = target_dir::free_bytes(&target_dir::nearest_existing(&out_dir)) {
        if free < block_bytes {
            report.notes.push(format!(
                "{} has {free} bytes free, less than the {block_bytes} bytes of the stream(s): the backup fits only if it compresses well",
                out_dir.display()
            ));
        }
    }
    let mut checked = Vec::new();
    // the source is checked for the release the output is made for, when one is named
    let mut vopts = crate::check::Options {
        keys: opts.keys.clone(),
        ..Default::default()
    };
    vopts.target.release = opts
        .server_version
        .map(|v| crate::base::release::Release::new(v.major, v.minor, v.patch));
    // one stream as v1: verified and written in one read of each block when it can be
    // (`pack/onepass.rs`); otherwise, or when what it wrote is not kept, today's path
    let mut prewritten: Option<Box<onepass::Written>> = None;
    #[cfg(test)]
    let try_one_pass = !tests::TODAYS_PATH.with(|c| c.get());
    #[cfg(not(test))]
    let try_one_pass = true;
    if let [sd] = &streams[..] {
        if opts.format == PackFormat::V1 && !opts.all && opts.rename.is_none() && try_one_pass {
            let taken = match onepass::run(sd, opts, &vopts, progress, block_bytes)? {
                onepass::OnePass::NotTried => "not tried".to_string(),
                onepass::OnePass::Verified(rep, problems, why) => {
                    checked.push((sd.clone(), rep, problems));
                    format!("not kept: {why}")
                }
                onepass::OnePass::Written(rep, problems, w) => {
                    checked.push((sd.clone(), rep, problems));
                    prewritten = Some(w);
                    "one pass".to_string()
                }
            };
            #[cfg(test)]
            tests::PATH_TAKEN.with(|c| *c.borrow_mut() = Some(taken));
            #[cfg(not(test))]
            let _ = taken;
        }
    }
    if checked.is_empty() {
        // two phases, each over the stream's blocks: verify them, then write the backup
        progress.phase("verify");
        progress.start(block_bytes);
        for sd in &streams {
            let (rep, problems) = store::verify_stream_dir(sd, &vopts, progress);
            checked.push((sd.clone(), rep, problems));
        }
    }
    for (_, _, p) in &checked {
        report.problems.extend(p.iter().cloned());
    }
    if let Some(p) = report.problems.iter().find(|p| p.kind.is_fatal()) {
        progress.finish();
        let who = p.loc.stream.clone().unwrap_or_default();
        let why = if p.kind == crate::base::problem::Kind::EncryptedWrongKey {
            "no key file of it opens with the key given (wrong key?)"
        } else {
            "give the server's key with --key-file FILE or JETDIR_KEY"
        };
        return Ok(report.refuse(
            Outcome::CouldNotRun,
            format!("stream {who} is encrypted at rest: {why}; nothing packed"),
        ));
    }
    let errors = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    if errors > 0 && !opts.allow_damaged {
        progress.finish();
        return Ok(report.refuse(
            Outcome::Damaged,
            format!("verification found {errors} error(s) in the source; fix them or pack anyway with --allow-damaged"),
        ));
    }
    if errors > 0 {
        report.notes.push(format!(
            "--allow-damaged: packing despite {errors} verification error(s)"
        ));
    }
    // Encrypted streams are packed from their plaintext (as server snapshots are): decrypted
    // into a private dir beside OUT (where the plaintext backup goes anyway), removed after.
    let mut plain = PlainCopies::new(&out_dir, out);
    for (sd, rep, _) in checked.iter_mut() {
        if rep.encryption.is_some() {
            let dir = plain
                .copy(sd, &opts.keys)
                .map_err(|e| anyhow::anyhow!("{}: decrypting for pack: {e}", sd.dir.display()))?;
            report.notes.push(format!(
                "{} > {}: encrypted at rest; packed as plaintext (the server encrypts it again when a server with a key loads it)",
                sd.account, sd.name
            ));
            sd.dir = dir;
        }
    }
    // --as: the stream rewritten for its new name into the same private dir, verified under
    // it, and packed from there.
    if let Some(rw) = &opts.rename {
        if let Err(why) = rename_for_pack(
            &mut checked,
            rw,
            &mut plain,
            opts,
            &vopts,
            progress,
            &mut report,
        ) {
            progress.finish();
            return Ok(report.refuse(why.0, why.1));
        }
    }
    let mut srcs = Vec::new();
    if let Some(w) = prewritten.as_mut() {
        report.notes.append(&mut w.build_notes);
        srcs.push(w.src.clone());
    } else {
        for (sd, rep, problems) in &checked {
            srcs.push(StreamSrc::build(
                sd,
                rep,
                problems,
                opts,
                &mut report.notes,
            )?);
        }
    }
    if opts.format == PackFormat::Tgz {
        if let Some(s) = srcs
            .iter()
            .find(|s| !s.legacy && s.target.is_some_and(|t| t.0.is_legacy()))
        {
            progress.finish();
            return Ok(report.refuse(
                Outcome::CouldNotRun,
                format!(
                    "stream {}: tgz copies the blocks as they are and nats-server 2.9 cannot read \
                     2.10+ blocks; use --format v1 for a 2.9 target",
                    s.sd.name
                ),
            ));
        }
    }
    progress.finish();
    let res = match (opts.format, prewritten) {
        (_, Some(w)) => write_dir_out(path, &srcs, opts, progress, &mut report, Some(*w)),
        (PackFormat::Tgz, None) => {
            progress.phase("write");
            progress.start(block_bytes);
            write_tgz_out(path, &srcs, opts, progress, &mut report)
        }
        (_, None) => {
            progress.phase("write");
            progress.start(block_bytes);
            write_dir_out(path, &srcs, opts, progress, &mut report, None)
        }
    };
    progress.finish();
    res?;
    // --allow-damaged writes a damaged source, and says so with exit 1 (as extract does)
    report.ok = errors == 0;
    report.outcome = if errors == 0 {
        Outcome::Clean
    } else {
        Outcome::Damaged
    };
    Ok(report)
}

/// `pack --as`: rewrite the (plaintext) stream for its new name into `plain`, verify it under
/// that name and pack it instead. Refusals: `(outcome, why)`.
fn rename_for_pack(
    checked: &mut [(StreamDir, StreamReport, Vec<crate::base::problem::Problem>)],
    rw: &crate::ops::rename::Rewrite,
    plain: &mut PlainCopies,
    opts: &PackOptions,
    vopts: &crate::check::Options,
    progress: &dyn Progress,
    report: &mut PackReport,
) -> Result<(), (Outcome, String)> {
    let could_not = |why: String| (Outcome::CouldNotRun, why);
    if checked.len() != 1 || opts.all {
        return Err(could_not(
            "--as renames one stream: name it with --stream (not with --all)".into(),
        ));
    }
    let vopts = crate::check::Options {
        keys: Default::default(),
        ..vopts.clone()
    };
    for (sd, rep, problems) in checked.iter_mut() {
        let new = rw.name.clone().unwrap_or_else(|| sd.name.clone());
        let dst = plain
            .dir_for(&sd.account, &new)
            .map_err(|e| could_not(format!("{}: {e}", plain.root.display())))?;
        // the name the files are keyed with: meta.inf's (the dir name for the server's check)
        let old = sd.name.clone();
        let r = crate::ops::rename::rewrite_dir(&sd.dir, &dst, &old, rw, false)
            .map_err(|e| could_not(format!("{e:#}")))?;
        for c in &r.damaged {
            report
                .notes
                .push(format!("not re-keyed: {}: {}", c.file, c.what));
        }
        if !r.damaged.is_empty() && !opts.allow_damaged {
            return Err((
                Outcome::Damaged,
                format!(
                    "{} damaged item(s) do not verify under {old:?} and would be carried over to {new:?}; --allow-damaged packs them as they are",
                    r.damaged.len()
                ),
            ));
        }
        report.notes.push(format!(
            "{} > {old}: packed as {new} ({} records re-keyed in {} block(s){})",
            sd.account,
            r.records,
            r.blocks,
            if r.changes.is_empty() {
                String::new()
            } else {
                format!("; {}", r.changes.join("; "))
            }
        ));
        let nsd = StreamDir {
            account: sd.account.clone(),
            name: new.clone(),
            dir: dst,
        };
        let (nrep, nprob) = store::verify_stream_dir(&nsd, &vopts, progress);
        let errors = nprob
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        let before = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        if errors > before || (errors > 0 && !opts.allow_damaged) {
            report.problems.extend(nprob);
            return Err((
                Outcome::Damaged,
                format!("the renamed copy has {errors} error(s) under {new:?} (see problems); nothing packed"),
            ));
        }
        *sd = nsd;
        *rep = nrep;
        *problems = nprob;
    }
    Ok(())
}

/// Plaintext copies of encrypted streams for pack, in `.<OUT>.jetdir-pack-<pid>.plain/`
/// (mode 0700) beside OUT; removed when dropped.
struct PlainCopies {
    root: PathBuf,
    made: bool,
}

impl PlainCopies {
    fn new(out_dir: &Path, out: &Path) -> PlainCopies {
        let name = out
            .file_name()
            .map_or("out".into(), |n| n.to_string_lossy().into_owned());
        PlainCopies {
            root: out_dir.join(format!(".{name}.jetdir-pack-{}.plain", std::process::id())),
            made: false,
        }
    }

    /// `<root>/renamed/<account>/<name>` (not created; its parent is), for a renamed copy.
    fn dir_for(&mut self, account: &str, name: &str) -> io::Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        if !self.made {
            fs::DirBuilder::new().mode(0o700).create(&self.root)?;
            self.made = true;
        }
        // beside the decrypted copies (`<root>/<account>/<name>`), named as the stream: the
        // server and the readers key meta.sum with the dir name
        let acct = self.root.join("renamed").join(account);
        fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&acct)?;
        let d = acct.join(name);
        let _ = fs::remove_dir_all(&d);
        Ok(d)
    }

    /// Decrypt the stream `sd` through its keys into a stream dir of plaintext files.
    fn copy(
        &mut self,
        sd: &StreamDir,
        keys: &crate::filestore::keys::KeyRing,
    ) -> io::Result<PathBuf> {
        use crate::filestore::source::StreamSource;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if !self.made {
            fs::DirBuilder::new().mode(0o700).create(&self.root)?;
            self.made = true;
        }
        let enc =
            crate::filestore::encrypted::EncryptedDir::open(&sd.dir, &sd.account, &sd.name, keys);
        let dir = self.root.join(&sd.account).join(&sd.name);
        fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)?;
        for rel in enc.files() {
            // a file that does not decrypt was reported by verification: left out
            let Ok(Some(data)) = enc.read(&rel) else {
                continue;
            };
            let p = dir.join(&rel);
            if let Some(parent) = p.parent() {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .recursive(true)
                    .create(parent)?;
            }
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)?;
            io::Write::write_all(&mut f, &data)?;
        }
        Ok(dir)
    }
}

impl Drop for PlainCopies {
    fn drop(&mut self) {
        if self.made {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// Staging leftovers of interrupted packs to OUT (`.<OUT>.jetdir-pack-<pid>`, and for tgz
/// `.<OUT>.manifest.json.jetdir-pack-<pid>`): refused while the jetdir that made them runs,
/// else removed and reported.
fn clear_pack_leftovers(out: &Path, report: &mut PackReport) -> Result<(), String> {
    let dir = staging::parent_dir(out);
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(());
    };
    let own = std::process::id();
    let mut found = staging::leftovers(&dir, &format!("{name}.jetdir-pack-"));
    found.extend(staging::leftovers(
        &dir,
        &format!("{name}.manifest.json.jetdir-pack-"),
    ));
    for (p, pid) in &found {
        if let Some(pid) = *pid {
            if pid != own && staging::pid_is_jetdir(pid) {
                return Err(format!(
                    "another jetdir (pid {pid}) is packing to {} ({} exists)",
                    out.display(),
                    p.display()
                ));
            }
        }
    }
    for (p, _) in found {
        staging::remove_leftover(&p)
            .map_err(|e| format!("cannot remove the leftover {}: {e}", p.display()))?;
        report.notes.push(format!(
            "removed {}: staging left by an interrupted pack",
            p.display()
        ));
        report.removed_staging.push(p.display().to_string());
    }
    Ok(())
}

/// As root into a dir owned by someone else: the backup goes to that dir's owner.
fn out_owner(out: &Path) -> Option<Owner> {
    Owner::for_dir(&staging::parent_dir(out)).ok().flatten()
}

fn side_manifest_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{name}.manifest.json"))
}

fn build_manifest(
    path: &Path,
    src: &StreamSrc,
    format: PackFormat,
    consumers: &[String],
    stream: Value,
    files: Vec<FileEntry>,
) -> Manifest {
    let abs = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let spath = if abs.is_dir() && abs != src.sd.dir && discover::looks_like_stream_dir(&src.sd.dir)
    {
        fs::canonicalize(&src.sd.dir).unwrap_or_else(|_| src.sd.dir.clone())
    } else {
        abs
    };
    Manifest {
        manifest: manifest::MANIFEST_VERSION.into(),
        tool: "jetdir".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created: now_rfc3339(),
        format: format.as_str().into(),
        source: manifest::Source {
            path: spath.display().to_string(),
            host: hostname(),
            account: src.sd.account.clone(),
            stream: src.sd.name.clone(),
        },
        server_version: src.metadata("_nats.ver"),
        server_api_level: src.metadata("_nats.level"),
        stream,
        consumers: consumers.to_vec(),
        files,
        manifest_sha256: String::new(),
    }
}

fn packed_stream(src: &StreamSrc, st: &StateNums) -> PackedStream {
    PackedStream {
        account: src.sd.account.clone(),
        name: src.sd.name.clone(),
        source: src.sd.dir.display().to_string(),
        messages: st.messages,
        bytes: st.bytes,
        first_seq: st.first_seq,
        last_seq: st.last_seq,
        deleted: st.num_deleted,
        first_ts: st.first_ts,
        last_ts: st.last_ts,
        consumers: src.consumers.iter().map(|c| c.report.clone()).collect(),
        index_db: src.index_db_note.clone(),
        server_version: src.target_text(),
        aux_files: src.aux.iter().map(|s| s.to_string()).collect(),
    }
}

/// v1 / v2: a backup directory (or, with several streams, one per stream under OUT).
fn write_dir_out(
    path: &Path,
    srcs: &[StreamSrc],
    opts: &PackOptions,
    progress: &dyn Progress,
    report: &mut PackReport,
    prewritten: Option<onepass::Written>,
) -> anyhow::Result<()> {
    let out = &opts.out;
    let (stage_path, mut stage, mut tar) = match prewritten {
        Some(w) => (w.stage_path, w.stage, Some((w.tar, w.plan_notes))),
        None => {
            let stage_path = staging_for(out)?;
            // a stale one of this very pid
            let _ = staging::remove_leftover(&stage_path);
            let stage = Stage::create(&stage_path, Perms::Umask)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", stage_path.display()))?;
            (stage_path, stage, None)
        }
    };
    let nested = opts.all;
    let result = (|| -> anyhow::Result<()> {
        for src in srcs {
            let prefix = if nested {
                stage.dir(&src.sd.name)?;
                format!("{}/", src.sd.name)
            } else {
                String::new()
            };
            let (st, notes, files) = match tar.take() {
                // one stream, its stream.tar.s2 written by the one pass
                Some(((tn, th), notes)) => {
                    let (st, files) =
                        finish_backup_dir(&mut stage, &prefix, src, src.state.clone(), (tn, th))?;
                    (st, notes, files)
                }
                None => write_backup_dir(&mut stage, &prefix, src, opts.format, progress)?,
            };
            report.notes.extend(notes);
            let state_json = st.to_json(src.consumers.len());
            let names: Vec<String> = src.consumers.iter().map(|c| c.name.clone()).collect();
            let m = build_manifest(path, src, opts.format, &names, state_json, files.clone());
            let mb = m.to_bytes();
            let (n, h) = write_small(
                &mut stage,
                &format!("{prefix}{}", manifest::MANIFEST_NAME),
                &mb,
            )?;
            for f in files {
                report.files.push(PackedFile {
                    path: format!("{prefix}{}", f.path),
                    bytes: f.bytes,
                    sha256: f.sha256,
                });
            }
            report.files.push(PackedFile {
                path: format!("{prefix}{}", manifest::MANIFEST_NAME),
                bytes: n,
                sha256: h,
            });
            report.manifests.push(
                out.join(format!("{prefix}{}", manifest::MANIFEST_NAME))
                    .display()
                    .to_string(),
            );
            report.streams.push(packed_stream(src, &st));
        }
        if let Some(o) = out_owner(out) {
            o.chown_tree(&stage_path)?;
        }
        stage
            .commit(out)
            .map_err(|e| commit_error(&stage_path, out, e))
    })();
    if result.is_err() {
        stage.discard();
    }
    result
}

/// Write backup.json + stream.tar.s2 of one stream into the stage (names prefixed with
/// `prefix`); also returns notes (v1: blocks nats-server 2.9 will not be able to read).
fn write_backup_dir(
    stage: &mut Stage,
    prefix: &str,
    src: &StreamSrc,
    format: PackFormat,
    progress: &dyn Progress,
) -> anyhow::Result<(StateNums, Vec<String>, Vec<FileEntry>)> {
    let tar_rel = format!("{prefix}stream.tar.s2");
    let sink = stage.hashed_file(&tar_rel)?;
    let (sink, st, notes) = match format {
        PackFormat::V2 => {
            let (sink, st) = v2::write(sink, src, progress)?;
            (sink, st, Vec::new())
        }
        _ => {
            let (sink, notes) = v1::write(sink, src, progress)?;
            (sink, src.state.clone(), notes)
        }
    };
    let (tn, th) = sink.done()?;
    stage.planned(&tar_rel, tn);
    let (st, files) = finish_backup_dir(stage, prefix, src, st, (tn, th))?;
    Ok((st, notes, files))
}

/// backup.json beside a `stream.tar.s2` of `tar` = (bytes, SHA-256) declaring the state `st`;
/// returns it and both files.
fn finish_backup_dir(
    stage: &mut Stage,
    prefix: &str,
    src: &StreamSrc,
    st: StateNums,
    (tn, th): (u64, String),
) -> anyhow::Result<(StateNums, Vec<FileEntry>)> {
    let mut bj = Map::new();
    bj.insert("config".into(), Value::Object(src.config()));
    bj.insert("state".into(), st.to_json(src.consumers.len()));
    let bjb = serde_json::to_vec_pretty(&Value::Object(bj))?;
    let (bn, bh) = write_small(stage, &format!("{prefix}backup.json"), &bjb)?;
    Ok((
        st,
        vec![
            FileEntry {
                path: "backup.json".into(),
                bytes: bn,
                sha256: bh,
            },
            FileEntry {
                path: "stream.tar.s2".into(),
                bytes: tn,
                sha256: th,
            },
        ],
    ))
}

/// tgz: one tarball (+ `<OUT>.manifest.json` beside it).
fn write_tgz_out(
    path: &Path,
    srcs: &[StreamSrc],
    opts: &PackOptions,
    progress: &dyn Progress,
    report: &mut PackReport,
) -> anyhow::Result<()> {
    let out = &opts.out;
    let side = side_manifest_path(out);
    let stage = staging_for(out)?;
    let mstage = staging_for(&side)?;
    // stale ones of this very pid
    let _ = staging::remove_leftover(&stage);
    let _ = staging::remove_leftover(&mstage);
    let result = (|| -> anyhow::Result<()> {
        let sink = HashedFile::create(&stage, 0o666)?;
        let sink = tgz::write(sink, srcs, progress)?;
        let (n, h) = sink.done()?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let files = vec![FileEntry {
            path: name.clone(),
            bytes: n,
            sha256: h.clone(),
        }];
        let first = srcs
            .first()
            .ok_or_else(|| anyhow::anyhow!("no stream to pack"))?;
        let m = if srcs.len() == 1 {
            let names: Vec<String> = first.consumers.iter().map(|c| c.name.clone()).collect();
            build_manifest(
                path,
                first,
                PackFormat::Tgz,
                &names,
                first.state.to_json(first.consumers.len()),
                files,
            )
        } else {
            let mut states = Map::new();
            let mut names = Vec::new();
            for s in srcs {
                states.insert(s.sd.name.clone(), s.state.to_json(s.consumers.len()));
                names.extend(
                    s.consumers
                        .iter()
                        .map(|c| format!("{}/{}", s.sd.name, c.name)),
                );
            }
            let mut m = build_manifest(
                path,
                first,
                PackFormat::Tgz,
                &names,
                Value::Object(states),
                files,
            );
            m.source.stream = "*".into();
            m.source.path = fs::canonicalize(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
                .to_string();
            m
        };
        let mut mf = HashedFile::create(&mstage, 0o666)?;
        mf.write_all(&m.to_bytes())?;
        let (mn, mh) = mf.done()?;
        if let Some(o) = out_owner(out) {
            o.chown(&stage)?;
            o.chown(&mstage)?;
        }
        staging::commit_files(&[(&stage, out), (&mstage, &side)])
            .map_err(|e| commit_error(&stage, out, e))?;
        report.files.push(PackedFile {
            path: name,
            bytes: n,
            sha256: h,
        });
        report.files.push(PackedFile {
            path: side
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes: mn,
            sha256: mh,
        });
        report.manifests.push(side.display().to_string());
        for s in srcs {
            report.streams.push(packed_stream(s, &s.state));
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&stage);
        let _ = fs::remove_file(&mstage);
    }
    result
}

#[cfg(test)]
mod tests;
