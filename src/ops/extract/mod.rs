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
use serde::Serialize;
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub store_dir: PathBuf,
    pub account: String,
    pub dry_run: bool,
    pub allow_damaged: bool,
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ArchiveRef {
    /// `v1`, `v2`, `tgz` or `tar`.
    pub format: Option<String>,
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ExtractReport {
    /// True when the stream was written (or, with --dry-run, would be) from an undamaged archive.
    pub ok: bool,
    /// What happened.
    pub status: ExtractStatus,
    pub archive: ArchiveRef,
    pub account: String,
    pub stream: Option<String>,
    /// The stream dir written (or that would be).
    pub target: Option<String>,
    /// Why nothing was written.
    pub refused: Option<String>,
    pub dry_run: bool,
    /// Files written, relative to the stream dir.
    pub files: Vec<PlannedFile>,
    pub bytes: u64,
    pub messages: Option<u64>,
    pub blocks: u64,
    pub consumers: Vec<String>,
    /// V2: block size used (the server's choice for this config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u64>,
    /// V2: sequence of the skip record written to keep last_seq after trailing deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_record: Option<u64>,
    pub warnings: Vec<String>,
    /// Staging dirs of earlier interrupted runs that were removed (or would be, dry run).
    pub removed_staging: Vec<String>,
    /// Verification and extraction problems.
    pub problems: Vec<Problem>,
    pub elapsed_ms: u64,
    /// An account backup: one report per stream (each extracted on its own; one failing does
    /// not stop the others).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<ExtractReport>,
    #[serde(skip)]
    outcome: Outcome,
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
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.progress.advance(n as u64, "extract");
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
    let f = BufReader::with_capacity(256 << 10, fs::File::open(payload)?);
    let raw: Box<dyn Read + 'p> = match progress {
        Some(p) => Box::new(ProgressReader {
            inner: f,
            progress: p,
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
    let mut rep = run(archive, opts, progress)?;
    rep.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(rep)
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
        ArchiveKind::AccountBackupDir => {
            // `nats account backup`: every stream dir in turn, each verified and staged alone.
            for sd in &det.streams {
                let r = match run(&sd.path, opts, progress) {
                    Ok(r) => r,
                    Err(e) => ExtractReport {
                        status: ExtractStatus::Refused,
                        archive: ArchiveRef { format: sd.kind.format().map(str::to_string), path: sd.path.display().to_string() },
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
            return Ok(rep);
        }
        k if k.is_store() => anyhow::bail!(
            "{} is a store/stream directory, not a backup; copy it with the server stopped, or `jetdir pack` it first",
            archive.display()
        ),
        ArchiveKind::BackupDirUnknown | ArchiveKind::BareUnknown => anyhow::bail!(
            "{}: not a backup jetdir can extract ({})",
            archive.display(),
            det.reason.as_deref().unwrap_or("unrecognised payload")
        ),
        _ => {}
    }
    let payload = det
        .payload
        .clone()
        .ok_or_else(|| anyhow::anyhow!("{}: no archive payload", archive.display()))?;
    let is_v2 = matches!(det.kind, ArchiveKind::BackupDirV2 | ArchiveKind::BareV2);
    if !valid_dir_name(&opts.account) {
        anyhow::bail!("account name {:?} cannot be a directory name", opts.account);
    }

    // backup.json (required for V2: the archive has no stream config).
    let bj: Option<BackupJson> = match &det.backup_json {
        None => None,
        Some(p) => match backup_json::read_backup_json(p) {
            Ok(b) => Some(b),
            Err(e) if is_v2 => anyhow::bail!(
                "{}: {e}; a V2 backup holds no stream config, backup.json is needed",
                p.display()
            ),
            Err(e) => {
                rep.warnings.push(format!(
                    "backup.json unusable ({e}); using the archive's meta.inf"
                ));
                None
            }
        },
    };
    let label = payload
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());

    // The stream name, and for V2 the config.
    let (name, v2_config) = if is_v2 {
        let Some(b) = &bj else {
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
        (n, Some(cfg))
    } else {
        let topts = TarOptions {
            label: label.clone(),
            ..Default::default()
        };
        let rd = open_decoded(det.kind, &payload, None)?;
        let (mi, _) = v1::peek_meta_inf(rd, &topts);
        let mi =
            mi.ok_or_else(|| anyhow::anyhow!("{}: no meta.inf in the archive", payload.display()))?;
        let m = crate::filestore::meta::MetaInf::parse(&mi)
            .map_err(|e| anyhow::anyhow!("{}: meta.inf: {e}", payload.display()))?;
        let n = m
            .name()
            .ok_or_else(|| anyhow::anyhow!("{}: meta.inf has no name", payload.display()))?
            .to_string();
        if let Some(bn) = bj.as_ref().and_then(|b| b.stream_name()) {
            if bn != n {
                rep.warnings.push(format!(
                    "backup.json names the stream {bn:?} but the archive's meta.inf says {n:?}; using {n:?}"
                ));
            }
        }
        (n, None)
    };
    if !valid_dir_name(&name) {
        anyhow::bail!("stream name {name:?} cannot be a directory name");
    }
    rep.stream = Some(name.clone());
    let store = &opts.store_dir;
    let streams = store.join("jetstream").join(&opts.account).join("streams");
    let target = streams.join(&name);
    rep.target = Some(target.display().to_string());

    // Refusals that need no reading.
    if fs::symlink_metadata(&target).is_ok() {
        return Ok(rep.refuse(
            Outcome::CouldNotRun,
            format!(
                "stream \"{name}\" already exists in account {}",
                opts.account
            ),
        ));
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
            return Ok(rep.refuse(Outcome::CouldNotRun, format!("{why}; --force overrides")));
        }
        rep.warnings.push(format!("--force: {why}"));
    }
    if let Some(p) = crate::filestore::running::server_holding(store) {
        let why = format!(
            "a server seems to be running on {}: {p}; the server only reads streams at start-up and may overwrite the files",
            store.display()
        );
        if !opts.force {
            return Ok(rep.refuse(
                Outcome::CouldNotRun,
                format!("{why}; stop it first (--force overrides)"),
            ));
        }
        rep.warnings.push(format!("--force: {why}"));
    }

    // Verify first (V1 / tarballs). A V2 archive is verified while it is staged, in the same
    // pass (the staging dir is "."-prefixed: the server never loads it), and the staged files
    // are renamed into place only when verification found nothing (or --allow-damaged).
    let mut damaged = false;
    if !is_v2 {
        let vrep =
            crate::check::verify_archive(archive, &crate::check::Options::default(), progress)?;
        let fatal_verify = vrep.outcome() == Outcome::CouldNotRun;
        damaged = vrep.problems.iter().any(|p| p.severity == Severity::Error);
        rep.problems = vrep.problems;
        if fatal_verify {
            return Ok(rep.refuse(Outcome::CouldNotRun, "the archive could not be verified"));
        }
        if damaged && !opts.allow_damaged {
            return Ok(rep.refuse(
                Outcome::Damaged,
                "verification found damage (see problems); --allow-damaged writes it anyway",
            ));
        }
        if damaged {
            rep.warnings
                .push("--allow-damaged: writing a damaged archive".into());
        }
    }

    // Leftover staging dirs. For V2, only one of this very pid (stale: it must go before this
    // run's own staging dir can be made) is removed now, the others once the archive verified.
    let own_pid = std::process::id();
    let leftovers = staging::leftovers(&streams, &staging_stem(&name));
    for (p, pid) in &leftovers {
        if let Some(pid) = *pid {
            if pid != own_pid && staging::pid_is_jetdir(pid) {
                return Ok(rep.refuse(
                    Outcome::CouldNotRun,
                    format!(
                        "another jetdir (pid {pid}) is extracting stream {name:?} into {}",
                        p.display()
                    ),
                ));
            }
        }
    }
    let remove_leftover = |p: &Path| -> io::Result<()> {
        if opts.dry_run {
            return Ok(());
        }
        staging::remove_leftover(p)
    };
    let mut later = Vec::new();
    for (p, pid) in leftovers {
        if is_v2 && pid != Some(own_pid) {
            later.push(p);
            continue;
        }
        remove_leftover(&p)?;
        rep.removed_staging.push(p.display().to_string());
    }

    // Write.
    let staging = staging::staging_path(&target, &staging_stem(&name));
    let created_parents = if opts.dry_run {
        CreatedDirs::default()
    } else {
        CreatedDirs::create(&streams)?
    };
    let mut sink = if opts.dry_run {
        Stage::dry()
    } else {
        match Stage::create(&staging, Perms::Private) {
            Ok(s) => s,
            Err(e) => {
                created_parents.remove();
                return Err(anyhow::anyhow!("creating {}: {e}", staging.display()));
            }
        }
    };
    let total = fs::metadata(&payload).map(|m| m.len()).unwrap_or(0);
    progress.start(total);
    let outcome = write_stream(
        archive,
        &det.kind,
        &payload,
        &label,
        &name,
        opts,
        bj.as_ref(),
        v2_config.as_ref(),
        &mut sink,
        &mut rep,
        progress,
        &mut damaged,
    );
    progress.finish();
    let cleanup = |sink: &Stage| {
        sink.discard();
        created_parents.remove();
    };
    match outcome {
        Err(e) => {
            cleanup(&sink);
            return Err(e);
        }
        Ok(Some((outcome, why))) => {
            cleanup(&sink);
            return Ok(rep.refuse(outcome, why));
        }
        Ok(None) => {}
    }
    for p in later {
        if let Err(e) = remove_leftover(&p) {
            cleanup(&sink);
            return Err(anyhow::anyhow!("removing {}: {e}", p.display()));
        }
        rep.removed_staging.push(p.display().to_string());
    }
    rep.files = sink.files.clone();
    rep.bytes = sink.total_bytes();
    let done = sink
        .commit(&target)
        .and_then(|()| created_parents.fsync().map_err(CommitError::Sync));
    match done {
        Ok(()) => {}
        Err(CommitError::TargetExists) => {
            cleanup(&sink);
            return Ok(rep.refuse(
                Outcome::CouldNotRun,
                format!(
                    "stream \"{name}\" already exists in account {}",
                    opts.account
                ),
            ));
        }
        Err(CommitError::Sync(e) | CommitError::Rename(e) | CommitError::Link(_, e)) => {
            cleanup(&sink);
            return Err(anyhow::anyhow!("finishing {}: {e}", target.display()));
        }
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

/// Run the format's writer. `Ok(Some((outcome, why)))` = refuse (the caller removes the staging).
/// For V2 this also verifies the archive (one pass) and sets `damaged`.
#[allow(clippy::too_many_arguments)]
fn write_stream(
    archive: &Path,
    kind: &ArchiveKind,
    payload: &Path,
    label: &str,
    name: &str,
    opts: &ExtractOptions,
    bj: Option<&BackupJson>,
    v2_config: Option<&serde_json::Map<String, serde_json::Value>>,
    sink: &mut Stage,
    rep: &mut ExtractReport,
    progress: &dyn Progress,
    damaged: &mut bool,
) -> anyhow::Result<Option<(Outcome, String)>> {
    let now = crate::base::time::now_ns();
    if let Some(cfg) = v2_config {
        let created = crate::base::time::go_time(now);
        let inp = v2::V2Input {
            stream: name,
            account: &opts.account,
            label,
            config: cfg,
            backup: bj,
            created: &created,
            now_secs: (now + 500_000_000).div_euclid(1_000_000_000),
            strict: !opts.allow_damaged,
        };
        let f = fs::File::open(payload)?;
        let rd = crate::check::archive::ParCounted::open(f, progress, "extract");
        // A `jetdir pack` output's manifest (checksums of every file) is checked alongside.
        let (res, manifest) = std::thread::scope(|s| {
            let m = s.spawn(|| crate::backup::manifest::check_manifest(archive));
            let res = v2::extract_v2(rd, &inp, sink);
            (res, m.join().ok().flatten())
        });
        let res = res?;
        let mut verification = res.verification;
        if let Some(m) = manifest {
            verification.extend(m);
            v2::sort_problems(&mut verification);
        }
        let fatal_verify = verification.iter().any(|p| p.kind.is_fatal());
        *damaged = verification.iter().any(|p| p.severity == Severity::Error);
        rep.problems = verification;
        if fatal_verify {
            return Ok(Some((
                Outcome::CouldNotRun,
                "the archive could not be verified".into(),
            )));
        }
        if *damaged && !opts.allow_damaged {
            return Ok(Some((
                Outcome::Damaged,
                "verification found damage (see problems); --allow-damaged writes it anyway".into(),
            )));
        }
        if *damaged {
            rep.warnings
                .push("--allow-damaged: writing a damaged archive".into());
        }
        rep.messages = Some(res.messages);
        rep.blocks = res.blocks;
        rep.consumers = res.consumers;
        rep.block_size = Some(res.block_size);
        rep.skip_record = res.skip_record;
        rep.problems.extend(res.problems);
        if res.fatal || res.stopped {
            return Ok(Some((
                Outcome::Damaged,
                if *damaged || opts.allow_damaged {
                    "the archive exceeds the limits of its own state or cannot be written (see problems)".into()
                } else {
                    "the archive turned out damaged while extracting (see problems)".into()
                },
            )));
        }
        return Ok(None);
    }
    let rd = open_decoded(*kind, payload, Some(progress))?;
    let topts = TarOptions {
        label: label.to_string(),
        account: Some(opts.account.clone()),
        stream: Some(name.to_string()),
        max_member_size: 512 << 20,
        ..Default::default()
    };
    // Budget for all members: blocks may hold deleted records, tombstones and index files
    // besides the live bytes, so allow a generous factor over the declared state.
    let total_limit = bj
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
    };
    let res = v1::extract_v1(rd, &inp, sink)?;
    rep.blocks = res.blocks;
    rep.consumers = res.consumers.clone();
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
        return Ok(Some((
            Outcome::Damaged,
            "the archive has hostile members or exceeds its limits (see problems)".into(),
        )));
    }
    if has_walk_errors && !opts.allow_damaged {
        return Ok(Some((
            Outcome::Damaged,
            "the archive turned out damaged while extracting (see problems)".into(),
        )));
    }
    match &res.meta_inf {
        None => {
            return Ok(Some((
                Outcome::Damaged,
                "no meta.inf in the archive".into(),
            )));
        }
        Some(mi) => {
            let parsed = crate::filestore::meta::MetaInf::parse(mi).ok();
            if parsed.as_ref().and_then(|m| m.name()) != Some(name) {
                return Ok(Some((
                    Outcome::Damaged,
                    format!("the archive's meta.inf does not name stream {name:?} (it changed between reads?)"),
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
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
