//! `jetdir extract`: write a backup into a stopped server's store dir.
//!
//! The stream lands in `STORE/jetstream/<ACC>/streams/<name>/` and a nats-server started on
//! STORE loads it with every message and consumer. Steps:
//! 1. detect the archive by content; find the stream name (backup.json config for V2, the
//!    tar's `meta.inf` for V1 / tarballs);
//! 2. refuse (exit 2, nothing written) when the stream dir exists, a process holds STORE, or
//!    STORE belongs to a clustered node (`--force` overrides the last two with a warning);
//! 3. verify the archive; refuse a damaged one (exit 1) unless `--allow-damaged`;
//! 4. remove leftover staging dirs of earlier interrupted runs;
//! 5. write into `streams/.jetdir-staging-<name>-<pid>/` (fsync every file and dir), rename
//!    it to `streams/<name>`, fsync `streams/`. The server removes "."-prefixed dirs in
//!    `streams/` at start, so an interrupted run never leaves a stream a server would load.
//!
//! A V2 archive is verified and staged in one pass (steps 3 and 5 fused, S2 decoded in
//! parallel): every entry is checked as `jetdir verify` checks it before it is written, blocks
//! are written and fsynced on a second thread (direct I/O where possible), and the staging dir
//! is renamed into place only when verification found no error (or `--allow-damaged`);
//! otherwise it is removed: exit 1, nothing written. Leftover staging dirs of other runs are
//! removed only once the archive verified.
//!
//! `--dry-run` runs steps 1–3 and the writer without touching the disk, listing the files.
mod aux;
mod v1;
mod v2;

use crate::backup::backup_json::{self, BackupJson};
use crate::backup::detect::{self, ArchiveKind};
use crate::backup::tar_walk::TarOptions;
use crate::base::problem::{Kind, Problem, Severity};
use crate::base::progress::Progress;
use crate::base::report::Outcome;
pub use crate::ops::staging::PlannedFile;
use crate::ops::staging::{self, CommitError, CreatedDirs, Perms, Stage};
use crate::ops::target_dir::{self, Owner};
use serde::Serialize;
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// What `jetdir extract` was asked to do.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// The stopped server's store dir (the parent of `jetstream/`).
    pub store_dir: PathBuf,
    /// The account the stream goes into (`$G` by default).
    pub account: String,
    /// `--dry-run`: verify and list the files, write nothing.
    pub dry_run: bool,
    /// `--allow-damaged`: write a damaged archive anyway (exit 1).
    pub allow_damaged: bool,
    /// `--force`: go on despite a running server or a clustered store (with a warning).
    pub force: bool,
    /// `--create`: create the store dir when it does not exist (otherwise refused: a
    /// mistyped path would give a store no server looks at).
    pub create: bool,
    /// `--server-version`: the release that will load the extracted stream (configs and the
    /// load verdict are judged for it); `None`: the release the backup records, else the newest.
    pub server_version: Option<crate::base::release::Release>,
    /// `--as NEW [--subjects S,...]`: write the stream under another name (every file keyed by
    /// the name rewritten, see [`crate::ops::rename`]); the output is verified under its new
    /// name before it is renamed into place.
    pub rename: Option<crate::ops::rename::Rewrite>,
    /// `--key-file` / `JETDIR_KEY` (and the previous key, the cipher): a `.tgz` / `.tar` of an
    /// encrypted stream dir is read through them and written in plaintext (a server with a
    /// key encrypts it at start); without them such an archive is refused (key needed).
    pub keys: crate::filestore::keys::KeyRing,
}

/// The report's `archive`: what was read.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ArchiveRef {
    /// `v1`, `v2`, `tgz`, `tar`, or `account` (an account backup of several streams).
    pub format: Option<String>,
    /// The path given.
    pub path: String,
}

/// The result of `jetdir extract` (its JSON report).
#[derive(Debug, Clone, Serialize, Default)]
pub struct ExtractReport {
    /// True when the stream was written (or, with --dry-run, would be) from an undamaged archive.
    pub ok: bool,
    /// What happened.
    pub status: ExtractStatus,
    /// What was read.
    pub archive: ArchiveRef,
    /// The account written into.
    pub account: String,
    /// The stream's name, once known (`name`, as everywhere a stream appears).
    #[serde(rename = "name")]
    pub stream: Option<String>,
    /// The stream dir written (or that would be).
    pub target: Option<String>,
    /// Why nothing was written.
    pub refused: Option<String>,
    /// `--dry-run` was given.
    pub dry_run: bool,
    /// Files written, relative to the stream dir.
    pub files: Vec<PlannedFile>,
    /// Bytes of the files written.
    #[serde(rename = "file_bytes")]
    pub bytes: u64,
    /// Messages in the stream written, as verification counted them.
    pub messages: Option<u64>,
    /// Their stored bytes (as `STREAM.INFO` counts them), when known.
    #[serde(rename = "bytes")]
    pub msg_bytes: Option<u64>,
    /// First sequence, when known.
    pub first_seq: Option<u64>,
    /// Last sequence, when known.
    pub last_seq: Option<u64>,
    /// Deleted sequences between first and last, when known.
    pub deleted: Option<u64>,
    /// Time of the first message, ns since the epoch; JSON also `first_time` (RFC 3339).
    #[serde(flatten, serialize_with = "first_time")]
    pub first_ts: Option<i64>,
    /// Time of the last message, ns since the epoch; JSON also `last_time` (RFC 3339).
    #[serde(flatten, serialize_with = "last_time")]
    pub last_ts: Option<i64>,
    /// Message blocks written.
    pub blocks: u64,
    /// Consumers written (names; the JSON lists `consumer_reports` as `consumers`).
    #[serde(skip)]
    pub consumers: Vec<String>,
    /// Consumers written, as verification found them (at least their names).
    #[serde(rename = "consumers")]
    pub consumer_reports: Vec<crate::base::report::ConsumerReport>,
    /// V2: block size used (the server's choice for this config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u64>,
    /// V2: sequence of the skip record written to keep last_seq after trailing deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_record: Option<u64>,
    /// Things to know that did not stop the extraction.
    pub warnings: Vec<String>,
    /// Staging dirs of earlier interrupted runs that were removed (or would be, dry run).
    pub removed_staging: Vec<String>,
    /// Verification and extraction problems: at most 100 of each kind.
    pub problems: Vec<Problem>,
    /// Problems not listed, per kind (as in `verify`).
    pub suppressed: std::collections::BTreeMap<String, u64>,
    /// Wall-clock time of the run.
    pub elapsed_ms: u64,
    /// An account backup: one report per stream (each extracted on its own; one failing does
    /// not stop the others).
    /// (Empty for a single stream, whose report is the document itself.)
    pub streams: Vec<ExtractReport>,
    /// `--as`: what the rename rewrote (`from`, `to`, `records`, `blocks`, `changes`,
    /// `damaged`: damage carried over without re-keying it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed: Option<crate::ops::rename::RewriteReport>,
    #[serde(skip)]
    outcome: Outcome,
}

fn first_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("first", *ns, s)
}

fn last_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("last", *ns, s)
}

/// What `jetdir extract` did: the report's `status`, serialised as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractStatus {
    /// The stream was written (exit 0).
    Written,
    /// A damaged archive written anyway with --allow-damaged (exit 1).
    WrittenDamaged,
    /// --dry-run: nothing written, the files listed (exit 0, or 1 for a damaged archive).
    DryRun,
    /// Refused because the archive is damaged (exit 1).
    Damaged,
    /// Refused, or could not run (exit 2). Also the placeholder until a run decides.
    #[default]
    Refused,
    /// An account backup of which not every stream was written.
    Partial,
}

impl ExtractStatus {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtractStatus::Written => "written",
            ExtractStatus::WrittenDamaged => "written_damaged",
            ExtractStatus::DryRun => "dry_run",
            ExtractStatus::Damaged => "damaged",
            ExtractStatus::Refused => "refused",
            ExtractStatus::Partial => "partial",
        }
    }
}

impl std::fmt::Display for ExtractStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ExtractReport {
    /// The stream's numbers and consumers from verification's report of it.
    fn take_state(&mut self, s: &crate::base::report::StreamReport) {
        self.messages = s.messages;
        self.msg_bytes = s.bytes;
        self.first_seq = s.first_seq;
        self.last_seq = s.last_seq;
        self.deleted = s.deleted;
        self.first_ts = s.first_ts;
        self.last_ts = s.last_ts;
        self.consumer_reports = s.consumers.clone();
    }

    /// Consumer reports for the names written, keeping what verification knew of them.
    fn settle_consumers(&mut self) {
        let known = std::mem::take(&mut self.consumer_reports);
        self.consumer_reports = self
            .consumers
            .iter()
            .map(|n| {
                known
                    .iter()
                    .find(|c| &c.name == n)
                    .cloned()
                    .unwrap_or_else(|| crate::base::report::ConsumerReport {
                        name: n.clone(),
                        ..Default::default()
                    })
            })
            .collect();
    }

    /// 0 written / dry run fine; 1 damaged archive (refused, or written with --allow-damaged);
    /// 2 refused or could not run.
    pub fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }

    fn refuse(mut self, outcome: Outcome, why: impl Into<String>) -> Self {
        self.refused = Some(why.into());
        self.status = if outcome == Outcome::Damaged {
            ExtractStatus::Damaged
        } else {
            ExtractStatus::Refused
        };
        self.outcome = outcome;
        self.ok = false;
        self.files.clear();
        self.bytes = 0;
        self
    }
}

/// Counts compressed bytes read for the progress bar.
struct ProgressReader<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    what: String,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.progress.advance(n as u64, &self.what);
        }
        Ok(n)
    }
}

/// The decoded archive bytes of `payload` for `kind`.
fn open_decoded<'p>(
    kind: ArchiveKind,
    payload: &Path,
    progress: Option<&'p dyn Progress>,
) -> io::Result<Box<dyn Read + 'p>> {
    let f = BufReader::with_capacity(256 << 10, target_dir::open(payload)?);
    let raw: Box<dyn Read + 'p> = match progress {
        Some(p) => Box::new(ProgressReader {
            inner: f,
            progress: p,
            what: crate::check::archive::payload_name(payload),
        }),
        None => Box::new(f),
    };
    Ok(match kind {
        ArchiveKind::Tgz => Box::new(flate2::read::GzDecoder::new(raw)),
        ArchiveKind::Tar => raw,
        _ => Box::new(crate::s2::FrameReader::new(raw)),
    })
}

/// Stream and account names that are safe as one directory name.
fn valid_dir_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && !n.starts_with('.')
        && !n
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '*' | '>'))
}

/// Staging dirs in `streams/` are `.jetdir-staging-<name>-<pid>`.
fn staging_stem(name: &str) -> String {
    format!("jetdir-staging-{name}-")
}

/// Write `archive` into `opts.store_dir`. `Err` = could not run (exit 2).
pub fn extract(
    archive: &Path,
    opts: &ExtractOptions,
    progress: &dyn Progress,
) -> anyhow::Result<ExtractReport> {
    let started = std::time::Instant::now();
    // an encrypted tarball that does not name its account: the target account and the
    // accounts of the target store are tried too (exact: a key file opens under one only)
    let mut opts = opts.clone();
    if opts.keys.account.is_none() {
        let mut more = vec![opts.account.clone()];
        if let Ok(rd) = std::fs::read_dir(opts.store_dir.join("jetstream")) {
            let mut names: Vec<String> = rd
                .flatten()
                .filter(|e| e.path().join("streams").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            more.extend(names);
        }
        opts.keys.try_accounts.extend(more);
    }
    let opts = &opts;
    let mut rep = run(archive, opts, progress)?;
    rep.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(rep)
}

/// Why nothing was written: the report's outcome and its `refused` text.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) outcome: Outcome,
    pub(crate) why: String,
}

impl Refusal {
    fn could_not_run(why: impl Into<String>) -> Self {
        Refusal {
            outcome: Outcome::CouldNotRun,
            why: why.into(),
        }
    }

    fn damaged(why: impl Into<String>) -> Self {
        Refusal {
            outcome: Outcome::Damaged,
            why: why.into(),
        }
    }
}

/// A step that may refuse (`Ok(Err(_))`, a report saying why) or fail (`Err`, exit 2).
type Step<T> = anyhow::Result<Result<T, Refusal>>;

/// `?` for the refusal of a `Result<T, Refusal>` inside a [`Step`].
macro_rules! or_refuse {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Ok(Err(r)),
        }
    };
}

/// What an extraction of one stream archive will do, once every check before writing passed.
struct Plan<'a> {
    opts: &'a ExtractOptions,
    archive: &'a Path,
    kind: ArchiveKind,
    /// The archive file itself (`stream.tar.s2`, a tarball, ...).
    payload: PathBuf,
    /// The payload's file name, for problem locations.
    label: String,
    backup_json: Option<BackupJson>,
    /// The stream name in the archive.
    name: String,
    /// The name (and directory name) it is written under: `--as`, else `name`.
    out_name: String,
    /// V2: the stream config (the archive holds none).
    v2_config: Option<serde_json::Map<String, serde_json::Value>>,
    /// `STORE/jetstream/<ACC>/streams`.
    streams: PathBuf,
    /// `streams/<name>`.
    target: PathBuf,
    /// Verification before writing (V1 / tarballs) found errors (and --allow-damaged).
    damaged: bool,
    /// Leftover staging dirs of other runs, removed once the archive verified (V2).
    later: Vec<PathBuf>,
    /// Running as root into a store owned by someone else: what is created goes to them.
    owner: Option<Owner>,
    /// A tarball of an encrypted stream dir, opened with the keys: written in plaintext.
    enc: Option<crate::filestore::encrypted::EncryptedDir>,
}

/// The stream written into its staging dir (not yet in place).
struct Staged {
    stage: Stage,
    created: CreatedDirs,
    damaged: bool,
}

impl Staged {
    /// Remove what was staged, and the parent dirs made for it.
    fn discard(&self) {
        self.stage.discard();
        self.created.remove();
    }
}

fn run(
    archive: &Path,
    opts: &ExtractOptions,
    progress: &dyn Progress,
) -> anyhow::Result<ExtractReport> {
    let det = detect::detect(archive)?;
    let mut rep = ExtractReport {
        archive: ArchiveRef {
            format: det.kind.format().map(str::to_string),
            path: archive.display().to_string(),
        },
        account: opts.account.clone(),
        dry_run: opts.dry_run,
        ..Default::default()
    };
    match det.kind {
        ArchiveKind::AccountBackupDir if opts.rename.is_some() => anyhow::bail!(
            "{}: --as renames one stream; give the backup dir of that stream (inside this account backup)",
            archive.display()
        ),
        ArchiveKind::AccountBackupDir => return Ok(run_account(&det, opts, progress, rep)),
        k if k.is_store() => anyhow::bail!(
            "{} is a store/stream directory, not a backup; copy it with the server stopped, or `jetdir pack` it first",
            archive.display()
        ),
        ArchiveKind::BackupDirUnknown | ArchiveKind::BareUnknown => {
            // A backup whose payload does not decode (an S2 CRC error in its only chunk, an
            // empty stream.tar.s2) is a damaged backup, as verify says: exit 1 with its
            // problems. Only what verify cannot call damaged is "not a backup" (exit 2).
            let vopts = crate::check::Options::default();
            if let Ok(v) = crate::check::verify_archive(archive, &vopts, progress) {
                if Outcome::of(&v.problems) == Outcome::Damaged {
                    rep.problems = v.problems;
                    return Ok(rep.refuse(
                        Outcome::Damaged,
                        format!(
                            "the archive is damaged ({}); even with --allow-damaged there is nothing to write",
                            det.reason.as_deref().unwrap_or("unreadable payload")
                        ),
                    ));
                }
            }
            anyhow::bail!(
                "{}: not a backup jetdir can extract ({})",
                archive.display(),
                det.reason.as_deref().unwrap_or("unrecognised payload")
            )
        }
        _ => {}
    }
    let plan = match plan(archive, &det, opts, progress, &mut rep)? {
        Ok(p) => p,
        Err(r) => return Ok(rep.refuse(r.outcome, r.why)),
    };
    let staged = match stage(&plan, progress, &mut rep)? {
        Ok(s) => s,
        Err(r) => return Ok(rep.refuse(r.outcome, r.why)),
    };
    rep.files = staged.stage.files.clone();
    rep.bytes = staged.stage.total_bytes();
    let damaged = staged.damaged;
    if let Err(r) = commit(staged, &plan)? {
        return Ok(rep.refuse(r.outcome, r.why));
    }
    let (status, outcome) = match (opts.dry_run, damaged) {
        (true, false) => (ExtractStatus::DryRun, Outcome::Clean),
        (true, true) => (ExtractStatus::DryRun, Outcome::Damaged),
        (false, false) => (ExtractStatus::Written, Outcome::Clean),
        (false, true) => (ExtractStatus::WrittenDamaged, Outcome::Damaged),
    };
    rep.status = status;
    rep.outcome = outcome;
    rep.ok = outcome == Outcome::Clean;
    Ok(rep)
}

/// `nats account backup`: every stream dir in turn, each verified and staged alone.
fn run_account(
    det: &detect::Detected,
    opts: &ExtractOptions,
    progress: &dyn Progress,
    mut rep: ExtractReport,
) -> ExtractReport {
    for sd in &det.streams {
        let r = match run(&sd.path, opts, progress) {
            Ok(r) => r,
            Err(e) => ExtractReport {
                status: ExtractStatus::Refused,
                archive: ArchiveRef {
                    format: sd.kind.format().map(str::to_string),
                    path: sd.path.display().to_string(),
                },
                account: opts.account.clone(),
                refused: Some(format!("{e:#}")),
                dry_run: opts.dry_run,
                outcome: Outcome::CouldNotRun,
                ..Default::default()
            },
        };
        rep.streams.push(r);
    }
    rep.archive.format = Some("account".into());
    rep.outcome = rep
        .streams
        .iter()
        .map(|r| r.outcome)
        .max()
        .unwrap_or(Outcome::CouldNotRun);
    rep.ok = !rep.streams.is_empty() && rep.streams.iter().all(|r| r.ok);
    rep.status = match (rep.ok, opts.dry_run) {
        (true, true) => ExtractStatus::DryRun,
        (true, false) => ExtractStatus::Written,
        (false, _) => ExtractStatus::Partial,
    };
    rep
}

/// Steps 1–4: what to write and where, every refusal that comes before writing, verification
/// of a V1 archive / tarball, and leftover staging dirs.
fn plan<'a>(
    archive: &'a Path,
    det: &detect::Detected,
    opts: &'a ExtractOptions,
    progress: &dyn Progress,
    rep: &mut ExtractReport,
) -> Step<Plan<'a>> {
    let payload = det
        .payload
        .clone()
        .ok_or_else(|| anyhow::anyhow!("{}: no archive payload", archive.display()))?;
    let is_v2 = matches!(det.kind, ArchiveKind::BackupDirV2 | ArchiveKind::BareV2);
    if !valid_dir_name(&opts.account) {
        anyhow::bail!("account name {:?} cannot be a directory name", opts.account);
    }
    let owner = or_refuse!(store_checks(opts, rep));
    let label = payload
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let mut enc = None;
    let named = read_backup_json(det, is_v2, rep).and_then(|backup_json| {
        if is_v2 {
            let (n, cfg) = v2_name_and_config(backup_json.as_ref(), &payload)?;
            Ok((backup_json, n, Some(cfg)))
        } else {
            match v1_name(det.kind, &payload, &label, backup_json.as_ref(), rep) {
                Ok(n) => Ok((backup_json, n, None)),
                // meta.inf is not JSON: a tarball of an encrypted stream dir?
                Err(e) => match encrypted_tarball(det, &label, opts) {
                    Some(x) => {
                        let n = x.cfg_name.clone();
                        enc = Some(x);
                        Ok((backup_json, n, None))
                    }
                    None => Err(e),
                },
            }
        }
    });
    let (backup_json, name, v2_config) = match named {
        Ok(v) => v,
        Err(e) => return damaged_or_not(archive, e, progress, rep).map(Err),
    };
    if let Some(e) = &enc {
        if let Some(why) = encrypted_refusal(e, opts) {
            return Ok(Err(Refusal::could_not_run(why)));
        }
        rep.warnings.push(format!(
            "the archive is an encrypted stream dir (cipher {}): written in plaintext, without its key files; a server with a JetStream key encrypts it at start",
            e.cipher.map_or("unknown", |c| c.name())
        ));
    }
    if !valid_dir_name(&name) {
        anyhow::bail!("stream name {name:?} cannot be a directory name");
    }
    let out_name = match opts.rename.as_ref().and_then(|r| r.name.clone()) {
        Some(n) => {
            if !crate::ops::rename::valid_stream_name(&n) {
                anyhow::bail!(
                    "--as {n:?}: not a valid stream name (no whitespace, '.', '*', '>', '/')"
                );
            }
            n
        }
        None => name.clone(),
    };
    rep.stream = Some(out_name.clone());
    let streams = opts
        .store_dir
        .join("jetstream")
        .join(&opts.account)
        .join("streams");
    let target = streams.join(&out_name);
    rep.target = Some(target.display().to_string());
    or_refuse!(refusals_before_reading(&out_name, &target, opts, rep));
    if !opts.dry_run {
        // Room for what is known to be written: the live bytes backup.json declares (blocks
        // hold them plus per-record overhead; the archive's own size for a tarball without one).
        let needed = backup_json
            .as_ref()
            .map(|b| {
                b.state
                    .bytes
                    .saturating_add(b.state.messages.saturating_mul(32))
            })
            .unwrap_or_else(|| fs::metadata(&payload).map(|m| m.len()).unwrap_or(0));
        if let Err(why) = target_dir::writable_with_room(&streams, Some(needed), "the stream") {
            return Ok(Err(Refusal::could_not_run(why)));
        }
    }
    let damaged = or_refuse!(verify_first(archive, is_v2, opts, progress, rep)?);
    let later = or_refuse!(clear_leftovers(&streams, &out_name, is_v2, opts, rep)?);
    Ok(Ok(Plan {
        opts,
        archive,
        kind: det.kind,
        payload,
        label,
        backup_json,
        name,
        out_name,
        v2_config,
        streams,
        target,
        damaged,
        later,
        owner,
        enc,
    }))
}

/// A `.tgz` / `.tar` whose members include key files: opened with the keys (a first pass over
/// its small members). `None` for anything else.
fn encrypted_tarball(
    det: &detect::Detected,
    label: &str,
    opts: &ExtractOptions,
) -> Option<crate::filestore::encrypted::EncryptedDir> {
    if !matches!(det.kind, ArchiveKind::Tgz | ArchiveKind::Tar) {
        return None;
    }
    crate::check::archive::open_encrypted_archive(det, label, &opts.keys)
}

/// Why an encrypted tarball cannot be extracted with the keys given (exit 2), if it cannot.
fn encrypted_refusal(
    e: &crate::filestore::encrypted::EncryptedDir,
    opts: &ExtractOptions,
) -> Option<String> {
    if !opts.keys.has_key() {
        return Some(format!(
            "the archive is a stream dir encrypted at rest (cipher {}): key needed (--key-file FILE or JETDIR_KEY with the server's JetStream key)",
            crate::filestore::encrypted::cipher_from_sizes(e.sizes()).map_or("unknown", |c| c.name())
        ));
    }
    if e.wrong_key {
        let why = e
            .problems
            .iter()
            .find(|p| p.kind == crate::base::problem::Kind::EncryptedWrongKey)
            .map_or("nothing decrypts with it", |p| p.message.as_str());
        return Some(format!("the key does not open the archive's stream: {why}"));
    }
    None
}

/// The store dir itself: the right level (not `jetstream/`, an account or a streams dir),
/// existing unless `--create`, no symlink out of it on the way to `streams/`, and owned by
/// someone whose files we can make (the owner to give them to, as root).
fn store_checks(opts: &ExtractOptions, rep: &mut ExtractReport) -> Result<Option<Owner>, Refusal> {
    let store = &opts.store_dir;
    target_dir::store_dir_shape(store, opts.create, opts.dry_run)
        .map_err(Refusal::could_not_run)?;
    target_dir::no_symlink_out(store, &opts.account).map_err(Refusal::could_not_run)?;
    match Owner::for_dir(store) {
        Ok(o) => {
            if let Some(o) = o {
                rep.warnings.push(format!(
                    "running as root: what is created is given to the store dir's owner, uid {} gid {}",
                    o.uid, o.gid
                ));
            }
            Ok(o)
        }
        Err(why) if opts.force => {
            rep.warnings.push(format!("--force: {why}"));
            Ok(None)
        }
        Err(why) => Err(Refusal::could_not_run(format!("{why} (--force overrides)"))),
    }
}

/// The stream's name or config could not be read: when verification calls the archive
/// damaged (a hostile or corrupt `meta.inf`, a V2 backup.json missing from its dir, ...),
/// the refusal is "damaged" (exit 1) with verify's problems, as `jetdir verify` answers;
/// otherwise the error stands (exit 2).
fn damaged_or_not(
    archive: &Path,
    e: anyhow::Error,
    progress: &dyn Progress,
    rep: &mut ExtractReport,
) -> anyhow::Result<Refusal> {
    let vopts = crate::check::Options::default();
    if let Ok(v) = crate::check::verify_archive(archive, &vopts, progress) {
        if Outcome::of(&v.problems) == Outcome::Damaged {
            rep.problems = v.problems;
            return Ok(Refusal::damaged(format!(
                "{e:#}; verification found damage (see problems)"
            )));
        }
    }
    Err(e)
}

/// backup.json (required for V2: the archive has no stream config).
fn read_backup_json(
    det: &detect::Detected,
    is_v2: bool,
    rep: &mut ExtractReport,
) -> anyhow::Result<Option<BackupJson>> {
    let Some(p) = &det.backup_json else {
        return Ok(None);
    };
    match backup_json::read_backup_json(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if is_v2 => anyhow::bail!(
            "{}: {e}; a V2 backup holds no stream config, backup.json is needed",
            p.display()
        ),
        Err(e) => {
            rep.warnings.push(format!(
                "backup.json unusable ({e}); using the archive's meta.inf"
            ));
            Ok(None)
        }
    }
}

/// A V2 archive's stream name and config, from its backup.json.
fn v2_name_and_config(
    bj: Option<&BackupJson>,
    payload: &Path,
) -> anyhow::Result<(String, serde_json::Map<String, serde_json::Value>)> {
    let Some(b) = bj else {
        anyhow::bail!(
            "{}: a V2 (NATSARC1) backup holds no stream config; put its backup.json beside it",
            payload.display()
        );
    };
    let cfg = b
        .state
        .extra
        .get("config")
        .and_then(|v| v.as_object())
        .cloned()
        .unwrap_or_else(|| b.config.clone());
    let n = cfg
        .get("name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("backup.json config has no name"))?
        .to_string();
    if cfg.get("storage").and_then(|v| v.as_str()) == Some("memory") {
        anyhow::bail!("stream {n:?} has memory storage: it cannot be extracted into a file store (restore it through the server)");
    }
    Ok((n, cfg))
}

/// A V1 archive's / tarball's stream name, from the archive's `meta.inf`.
fn v1_name(
    kind: ArchiveKind,
    payload: &Path,
    label: &str,
    bj: Option<&BackupJson>,
    rep: &mut ExtractReport,
) -> anyhow::Result<String> {
    let topts = TarOptions {
        label: label.to_string(),
        ..Default::default()
    };
    let rd = open_decoded(kind, payload, None)?;
    let (mi, _) = v1::peek_meta_inf(rd, &topts);
    let mi =
        mi.ok_or_else(|| anyhow::anyhow!("{}: no meta.inf in the archive", payload.display()))?;
    let m = crate::filestore::meta::MetaInf::parse(&mi)
        .map_err(|e| anyhow::anyhow!("{}: meta.inf: {e}", payload.display()))?;
    let n = m
        .name()
        .ok_or_else(|| anyhow::anyhow!("{}: meta.inf has no name", payload.display()))?
        .to_string();
    if let Some(bn) = bj.and_then(|b| b.stream_name()) {
        if bn != n {
            rep.warnings.push(format!(
                "backup.json names the stream {bn:?} but the archive's meta.inf says {n:?}; using {n:?}"
            ));
        }
    }
    Ok(n)
}

/// Refusals that need no reading: the stream exists, a clustered node, a running server
/// (`--force` overrides the last two, with a warning).
fn refusals_before_reading(
    name: &str,
    target: &Path,
    opts: &ExtractOptions,
    rep: &mut ExtractReport,
) -> Result<(), Refusal> {
    let store = &opts.store_dir;
    if fs::symlink_metadata(target).is_ok() {
        return Err(Refusal::could_not_run(format!(
            "stream \"{name}\" already exists in account {}",
            opts.account
        )));
    }
    let meta_group = store
        .join("jetstream")
        .join("$SYS")
        .join("_js_")
        .join("_meta_");
    if meta_group.exists() {
        let why = format!(
            "{} belongs to a clustered node ({} exists): the meta group does not know stream {name:?}, and a clustered server deletes such a stream as an orphan about 30 s after start; restore it through the cluster instead (`nats stream restore`)",
            store.display(),
            meta_group.display()
        );
        if !opts.force {
            return Err(Refusal::could_not_run(format!("{why}; --force overrides")));
        }
        rep.warnings.push(format!("--force: {why}"));
    }
    if let Some(p) = crate::filestore::running::server_holding(store) {
        let why = format!(
            "a server seems to be running on {}: {p}; the server only reads streams at start-up and may overwrite the files",
            store.display()
        );
        if !opts.force {
            return Err(Refusal::could_not_run(format!(
                "{why}; stop it first (--force overrides)"
            )));
        }
        rep.warnings.push(format!("--force: {why}"));
    }
    Ok(())
}

/// Verify first (V1 / tarballs); returns whether the archive is damaged (and allowed). A V2
/// archive is verified while it is staged, in the same pass (the staging dir is "."-prefixed:
/// the server never loads it), and the staged files are renamed into place only when
/// verification found nothing (or --allow-damaged).
fn verify_first(
    archive: &Path,
    is_v2: bool,
    opts: &ExtractOptions,
    progress: &dyn Progress,
    rep: &mut ExtractReport,
) -> Step<bool> {
    if is_v2 {
        return Ok(Ok(false));
    }
    let vopts = crate::check::Options {
        target: crate::check::Target {
            release: opts.server_version.clone(),
            ..Default::default()
        },
        keys: opts.keys.clone(),
        ..Default::default()
    };
    progress.phase("verify");
    let vrep = crate::check::verify_archive(archive, &vopts, progress)?;
    if let Some(s) = vrep.streams.first() {
        rep.take_state(s);
    }
    rep.suppressed = vrep.suppressed;
    let damaged = match accept_verification(vrep.problems, opts, rep) {
        Ok(damaged) => damaged,
        Err(r) => return Ok(Err(r)),
    };
    Ok(Ok(damaged))
}

/// Remove a leftover staging dir (not in a dry run).
fn remove_leftover(p: &Path, opts: &ExtractOptions) -> io::Result<()> {
    if opts.dry_run {
        return Ok(());
    }
    staging::remove_leftover(p)
}

/// Leftover staging dirs: refuse when a live jetdir is writing one, else remove them. For V2,
/// only one of this very pid (stale: it must go before this run's own staging dir can be made)
/// is removed now; the others are returned, to go once the archive verified.
fn clear_leftovers(
    streams: &Path,
    name: &str,
    is_v2: bool,
    opts: &ExtractOptions,
    rep: &mut ExtractReport,
) -> Step<Vec<PathBuf>> {
    let own_pid = std::process::id();
    let leftovers = staging::leftovers(streams, &staging_stem(name));
    for (p, pid) in &leftovers {
        if let Some(pid) = *pid {
            if pid != own_pid && staging::pid_is_jetdir(pid) {
                return Ok(Err(Refusal::could_not_run(format!(
                    "another jetdir (pid {pid}) is extracting stream {name:?} into {}",
                    p.display()
                ))));
            }
        }
    }
    let mut later = Vec::new();
    for (p, pid) in leftovers {
        if is_v2 && pid != Some(own_pid) {
            later.push(p);
            continue;
        }
        remove_leftover(&p, opts)?;
        rep.removed_staging.push(p.display().to_string());
    }
    Ok(Ok(later))
}

/// Step 5, first half: write the stream into its staging dir (a dry-run stage in a dry run),
/// then remove the leftovers the plan kept for later. On a refusal or an error, what was
/// staged is removed again.
fn stage(plan: &Plan, progress: &dyn Progress, rep: &mut ExtractReport) -> Step<Staged> {
    let staging = staging::staging_path(&plan.target, &staging_stem(&plan.out_name));
    let (stage, created) = if plan.opts.dry_run {
        (Stage::dry(), CreatedDirs::default())
    } else {
        let created = CreatedDirs::create(&plan.streams)?;
        match Stage::create(&staging, Perms::Private) {
            Ok(s) => (s, created),
            Err(e) => {
                created.remove();
                return Err(anyhow::anyhow!("creating {}: {e}", staging.display()));
            }
        }
    };
    let mut staged = Staged {
        stage,
        created,
        damaged: plan.damaged,
    };
    let total = fs::metadata(&plan.payload).map(|m| m.len()).unwrap_or(0);
    progress.phase(match (plan.opts.dry_run, plan.kind.format()) {
        (true, Some("v2")) => "verify",
        (true, _) => "check",
        (false, Some("v2")) => "verify and write",
        (false, _) => "write",
    });
    progress.start(total);
    let written = write_stream(plan, &mut staged.stage, rep, progress);
    progress.finish();
    match written {
        Err(e) => {
            staged.discard();
            return Err(e);
        }
        Ok(Err(r)) => {
            staged.discard();
            return Ok(Err(r));
        }
        Ok(Ok(damaged)) => staged.damaged |= damaged,
    }
    match rename_staged(plan, &mut staged, rep, progress) {
        Err(e) => {
            staged.discard();
            return Err(e);
        }
        Ok(Err(r)) => {
            staged.discard();
            return Ok(Err(r));
        }
        Ok(Ok(())) => {}
    }
    for p in &plan.later {
        if let Err(e) = remove_leftover(p, plan.opts) {
            staged.discard();
            return Err(anyhow::anyhow!("removing {}: {e}", p.display()));
        }
        rep.removed_staging.push(p.display().to_string());
    }
    Ok(Ok(staged))
}

/// Step 5, second half: fsync the staged files' dirs, rename the staging dir to the stream
/// dir, fsync `streams/` and any parent dir made (nothing in a dry run). On failure the
/// staging dir is removed.
fn commit(staged: Staged, plan: &Plan) -> Step<()> {
    if let (Some(o), Some(root)) = (plan.owner, staged.stage.root()) {
        let given = o
            .chown_tree(root)
            .and_then(|()| staged.created.dirs().iter().try_for_each(|d| o.chown(d)));
        if let Err(e) = given {
            staged.discard();
            return Ok(Err(Refusal::could_not_run(format!(
                "{e} (a server running as uid {} could not use files owned by root)",
                o.uid
            ))));
        }
    }
    let done = staged
        .stage
        .commit(&plan.target)
        .and_then(|()| staged.created.fsync().map_err(CommitError::Sync));
    match done {
        Ok(()) => Ok(Ok(())),
        Err(CommitError::TargetExists) => {
            staged.discard();
            Ok(Err(Refusal::could_not_run(format!(
                "stream \"{}\" already exists in account {}",
                plan.out_name, plan.opts.account
            ))))
        }
        Err(CommitError::Sync(e) | CommitError::Rename(e) | CommitError::Link(_, e)) => {
            staged.discard();
            Err(anyhow::anyhow!("finishing {}: {e}", plan.target.display()))
        }
    }
}

/// Run the format's writer; returns whether the archive turned out damaged (V2: verified in
/// the same pass). A refusal leaves the staging to the caller to remove.
fn write_stream(
    plan: &Plan,
    stage: &mut Stage,
    rep: &mut ExtractReport,
    progress: &dyn Progress,
) -> Step<bool> {
    match &plan.v2_config {
        Some(cfg) => write_v2(plan, cfg, stage, rep, progress),
        None => {
            or_refuse!(write_v1(plan, stage, rep, progress)?);
            Ok(Ok(false))
        }
    }
}

/// V2: verify and write in one pass (the manifest of a `jetdir pack` output checked
/// alongside); refuse what verification or writing found, unless --allow-damaged.
fn write_v2(
    plan: &Plan,
    cfg: &serde_json::Map<String, serde_json::Value>,
    stage: &mut Stage,
    rep: &mut ExtractReport,
    progress: &dyn Progress,
) -> Step<bool> {
    let opts = plan.opts;
    let now = crate::base::time::now_ns();
    let created = crate::base::time::go_time(now);
    // --as: a V2 archive holds no checksums, so the stream is written for its new name
    // directly (config and every checksum); nothing to rewrite afterwards
    let mut renamed_cfg = cfg.clone();
    if let Some(rw) = &opts.rename {
        let changes = crate::ops::rename::edit_stream_cfg(&mut renamed_cfg, rw);
        rep.renamed = Some(crate::ops::rename::RewriteReport {
            from: plan.name.clone(),
            to: plan.out_name.clone(),
            changes,
            ..Default::default()
        });
    }
    let cfg = &renamed_cfg;
    let inp = v2::V2Input {
        stream: &plan.name,
        write_as: &plan.out_name,
        account: &opts.account,
        label: &plan.label,
        config: cfg,
        backup: plan.backup_json.as_ref(),
        created: &created,
        now_secs: (now + 500_000_000).div_euclid(1_000_000_000),
        strict: !opts.allow_damaged,
    };
    let f = target_dir::open(&plan.payload)?;
    let rd = crate::check::archive::ParCounted::open(
        f,
        progress,
        format!(
            "{} > {} {}",
            opts.account,
            plan.name,
            crate::check::archive::payload_name(&plan.payload)
        ),
    );
    // A `jetdir pack` output's manifest (checksums of every file) is checked alongside.
    let (res, manifest) = crate::backup::manifest::check_manifest_beside(plan.archive, || {
        v2::extract_v2(rd, &inp, stage)
    });
    let res = res?;
    rep.suppressed = res.summary.suppressed.clone();
    let mut verification = res.verification;
    if let Some(m) = manifest {
        verification.extend(m);
        v2::sort_problems(&mut verification);
    }
    let damaged = match accept_verification(verification, opts, rep) {
        Ok(damaged) => damaged,
        Err(r) => return Ok(Err(r)),
    };
    let totals = crate::check::archive::v2_totals(&res.summary, res.summary.stored_bytes);
    rep.messages = Some(res.messages);
    rep.msg_bytes = Some(totals.bytes);
    rep.first_seq = Some(totals.first_seq);
    rep.last_seq = Some(totals.last_seq);
    rep.deleted = Some(totals.deleted);
    rep.consumer_reports = crate::check::archive::v2_consumer_reports(&res.summary);
    rep.blocks = res.blocks;
    rep.consumers = res.consumers;
    rep.settle_consumers();
    if let Some(r) = rep.renamed.as_mut() {
        r.records = res.messages;
        r.blocks = res.blocks;
    }
    rep.block_size = Some(res.block_size);
    rep.skip_record = res.skip_record;
    rep.warnings.extend(res.aux_notes);
    rep.problems.extend(res.problems);
    if res.fatal || res.stopped {
        return Ok(Err(Refusal::damaged(if damaged || opts.allow_damaged {
            "the archive exceeds the limits of its own state or cannot be written (see problems)"
        } else {
            "the archive turned out damaged while extracting (see problems)"
        })));
    }
    Ok(Ok(damaged))
}

/// V1 / tarballs (verified before): write the members, and refuse what only writing found.
fn write_v1(
    plan: &Plan,
    stage: &mut Stage,
    rep: &mut ExtractReport,
    progress: &dyn Progress,
) -> Step<()> {
    let opts = plan.opts;
    let rd = open_decoded(plan.kind, &plan.payload, Some(progress))?;
    let topts = TarOptions {
        label: plan.label.clone(),
        account: Some(opts.account.clone()),
        stream: Some(plan.name.clone()),
        max_member_size: 512 << 20,
        ..Default::default()
    };
    // Budget for all members: blocks may hold deleted records, tombstones and index files
    // besides the live bytes, so allow a generous factor over the declared state.
    let total_limit = plan
        .backup_json
        .as_ref()
        .map(|b| {
            b.state
                .bytes
                .saturating_mul(4)
                .saturating_add(b.state.messages.saturating_mul(64))
                .saturating_add(256 << 20)
        })
        .unwrap_or(u64::MAX);
    let inp = v1::V1Input {
        opts: &topts,
        total_limit,
        enc: plan.enc.as_ref(),
    };
    let res = v1::extract_v1(rd, &inp, stage)?;
    rep.blocks = res.blocks;
    rep.consumers = res.consumers.clone();
    rep.settle_consumers();
    let walk_errors: Vec<Problem> = res
        .summary
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .filter(|p| {
            !rep.problems
                .iter()
                .any(|q| q.kind == p.kind && q.loc.offset == p.loc.offset)
        })
        .cloned()
        .collect();
    let hostile = res.fatal
        || res
            .summary
            .problems
            .iter()
            .any(|p| p.kind == Kind::ArchiveHostileMember);
    let has_walk_errors = res
        .summary
        .problems
        .iter()
        .any(|p| p.severity == Severity::Error);
    rep.problems.extend(walk_errors);
    rep.problems.extend(res.problems.clone());
    for s in &res.skipped {
        rep.warnings.push(format!("{s} not written"));
    }
    if hostile {
        return Ok(Err(Refusal::damaged(
            "the archive has hostile members or exceeds its limits (see problems)",
        )));
    }
    if has_walk_errors && !opts.allow_damaged {
        return Ok(Err(Refusal::damaged(
            "the archive turned out damaged while extracting (see problems)",
        )));
    }
    Ok(check_meta(&plan.name, &res, rep))
}

/// The written `meta.inf` must name the stream; a `meta.sum` that does not match it is a
/// warning (the server skips such a stream at start-up).
fn check_meta(name: &str, res: &v1::V1Result, rep: &mut ExtractReport) -> Result<(), Refusal> {
    let Some(mi) = &res.meta_inf else {
        return Err(Refusal::damaged("no meta.inf in the archive"));
    };
    let parsed = crate::filestore::meta::MetaInf::parse(mi).ok();
    if parsed.as_ref().and_then(|m| m.name()) != Some(name) {
        return Err(Refusal::damaged(format!(
            "the archive's meta.inf does not name stream {name:?} (it changed between reads?)"
        )));
    }
    let want = crate::filestore::meta::expected_sum(name, mi);
    match &res.meta_sum {
        Some(s) if s.as_slice() == want.as_bytes() => {}
        Some(s) => rep.warnings.push(format!(
            "meta.sum {:?} does not match meta.inf (expected {want}): the server will skip this stream at start-up",
            String::from_utf8_lossy(s)
        )),
        None => rep.warnings.push(
            "no meta.sum in the archive: the server will skip this stream at start-up".into(),
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// `--as`: rewrite the staged stream for its new name, refuse subjects that overlap another
/// stream of the account, and verify the staged output under the new name (the staging dir
/// is renamed into place only when that finds no error, or --allow-damaged). A dry run
/// rewrites nothing (there are no files) and says so.
fn rename_staged(
    plan: &Plan,
    staged: &mut Staged,
    rep: &mut ExtractReport,
    progress: &dyn Progress,
) -> Step<()> {
    use crate::ops::rename;
    let Some(rw) = &plan.opts.rename else {
        // not renamed: an overlap with another stream of the account is said, not refused
        if let Some((s, theirs, ours)) = staged
            .stage
            .root()
            .and_then(|root| staged_overlap(root, &plan.streams))
        {
            rep.warnings.push(format!(
                "the subjects of {:?} overlap those of stream {s:?} in account {} ({ours} and {theirs}): the server may not load both (\"subjects overlap with an existing stream\"; `jetdir verify` says which, for the release); `--as NEW --subjects S,...` extracts it under other subjects",
                plan.out_name, plan.opts.account
            ));
        }
        return Ok(Ok(()));
    };
    let Some(root) = staged.stage.root().map(Path::to_path_buf) else {
        rep.warnings.push(format!(
            "dry run: the files are listed as in the archive; they would be rewritten for {:?}",
            plan.out_name
        ));
        return Ok(Ok(()));
    };
    let r = match (&plan.v2_config, rep.renamed.take()) {
        // V2: written for the new name in the first place (see write_v2)
        (Some(_), Some(r)) => r,
        _ => {
            progress.phase("rename");
            rename::rewrite_dir(&root, &root, &plan.name, rw, true)?
        }
    };
    if let Some((s, theirs, ours)) = staged_overlap(&root, &plan.streams) {
        return Ok(Err(Refusal::could_not_run(format!(
            "the subjects of {:?} overlap those of stream {s:?} in account {} ({ours} and {theirs}): the server may not load both; give others with --subjects",
            plan.out_name, plan.opts.account
        ))));
    }
    for c in &r.damaged {
        rep.warnings
            .push(format!("not re-keyed: {}: {}", c.file, c.what));
    }
    let carried = r.damaged.len();
    rep.renamed = Some(r);
    if carried > 0 && !plan.opts.allow_damaged {
        return Ok(Err(Refusal::damaged(format!(
            "{carried} damaged item(s) do not verify under {:?} and would be carried over to {:?} (see warnings); --allow-damaged writes them as they are",
            plan.name, plan.out_name
        ))));
    }
    // the output, verified under its new name
    let sd = crate::filestore::discover::StreamDir {
        account: plan.opts.account.clone(),
        name: plan.out_name.clone(),
        dir: root.clone(),
    };
    let vopts = crate::check::Options {
        target: crate::check::Target {
            release: plan.opts.server_version.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    progress.phase("verify output");
    progress.start(
        staged_files(&root)
            .iter()
            .filter(|f| f.path.ends_with(".blk"))
            .map(|f| f.bytes)
            .sum(),
    );
    let (srep, problems) = crate::check::store::verify_stream_dir(&sd, &vopts, progress);
    progress.finish();
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    if !staged.damaged {
        rep.problems.extend(problems);
    }
    if errors > 0 && !plan.opts.allow_damaged {
        return Ok(Err(Refusal::damaged(format!(
            "the renamed output has {errors} error(s) under {:?} (see problems)",
            plan.out_name
        ))));
    }
    staged.damaged |= errors > 0;
    rep.take_state(&srep);
    rep.settle_consumers();
    staged.stage.files = staged_files(&root);
    Ok(Ok(()))
}

/// The first subject of the staged stream that overlaps another stream in `streams`:
/// `(stream, its subject, ours)`.
fn staged_overlap(root: &Path, streams: &Path) -> Option<(String, String, String)> {
    let cfg = fs::read(root.join("meta.inf"))
        .ok()
        .and_then(|m| crate::filestore::meta::MetaInf::parse(&m).ok())
        .map(|m| m.json)
        .unwrap_or_default();
    let subjects = crate::ops::rename::stream_subjects(&cfg);
    crate::ops::rename::overlapping_streams(streams, &subjects, None)
        .into_iter()
        .next()
}

/// Every file under a staged stream dir with its size (after a rewrite changed them).
fn staged_files(root: &Path) -> Vec<PlannedFile> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<PlannedFile>) {
        let Ok(rd) = fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                n
            } else {
                format!("{rel}/{n}")
            };
            match e.metadata() {
                Ok(m) if m.is_dir() => walk(root, &r, out),
                Ok(m) => out.push(PlannedFile {
                    path: r,
                    bytes: m.len(),
                }),
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Take the archive's verification into the report: refuse when it could not be verified, or
/// when it is damaged and `--allow-damaged` was not given. `Ok(true)`: damaged, allowed.
fn accept_verification(
    verification: Vec<Problem>,
    opts: &ExtractOptions,
    rep: &mut ExtractReport,
) -> Result<bool, Refusal> {
    let outcome = Outcome::of(&verification);
    rep.problems = verification;
    crate::base::problem::cap_per_kind(&mut rep.problems, &mut rep.suppressed);
    match outcome {
        Outcome::CouldNotRun => Err(Refusal::could_not_run("the archive could not be verified")),
        Outcome::Damaged if !opts.allow_damaged => Err(Refusal::damaged(
            "verification found damage (see problems); --allow-damaged writes it anyway",
        )),
        Outcome::Damaged => {
            rep.warnings
                .push("--allow-damaged: writing a damaged archive".into());
            Ok(true)
        }
        Outcome::Clean => Ok(false),
    }
}
