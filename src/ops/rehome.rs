//! `jetdir rehome STREAM_DIR -o OUT`: a stream dir from a clustered node made ready for a
//! standalone server.
//!
//! A standalone nats-server refuses a stream whose config asks for more than one replica
//! (`singleServerMode && cfg.Replicas > 1` in `addStream`: "replicas > 1 not supported in
//! non-clustered mode"), so a clustered node's stream dir copied into a standalone store is
//! not loaded. rehome writes a copy with `num_replicas` 1, `placement` removed, and each
//! consumer's `num_replicas` above 1 set to 0 ("as the stream"); meta.sum is recomputed for the
//! new meta.inf, everything else is copied byte for byte (the stream keeps its name, so record
//! checksums and index.db stay valid). The raft group (`$SYS/_js_/S-R*`) is not part of a
//! stream dir and is not needed by a standalone server.
//!
//! The source is verified first (damage refused unless `--allow-damaged`), the output is
//! written into a staging dir beside OUT (`.<OUT>.jetdir-rehome-<pid>/<stream>`), verified
//! under its name, fsynced and renamed to OUT; `--format v1|v2|tgz` packs the staged stream
//! instead (through `pack`, which stages and verifies again).
use crate::base::problem::{Problem, Severity};
use crate::base::progress::Progress;
use crate::base::report::{ConsumerReport, Outcome};
use crate::filestore::discover::{self, StreamDir};
use crate::ops::pack::{self, PackFormat};
use crate::ops::rename::{self, Rewrite, RewriteReport};
use crate::ops::staging;
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// What `jetdir rehome` was asked to do.
#[derive(Debug, Clone)]
pub struct RehomeOptions {
    /// OUT: a stream dir to create (never overwritten), or a backup with `format`.
    pub out: PathBuf,
    /// `--format`: write a backup (as `pack`) instead of a stream dir.
    pub format: Option<PackFormat>,
    /// `--allow-damaged`: rehome a source that verification found damaged (exit 1).
    pub allow_damaged: bool,
    /// `--force`: read the stream although a running server seems to hold its store.
    pub force: bool,
}

/// The result of `jetdir rehome` (its JSON report).
#[derive(Debug, Clone, Serialize, Default)]
pub struct RehomeReport {
    /// True when OUT was written from an undamaged source.
    pub ok: bool,
    /// What was written.
    pub out: String,
    /// `dir`, or the backup format.
    pub format: String,
    /// Why nothing was written.
    pub refused: Option<String>,
    /// The stream rehomed (one entry, once it is known).
    pub streams: Vec<RehomedStream>,
    /// Things to know.
    pub notes: Vec<String>,
    /// Problems of the source (and of the output, if any).
    pub problems: Vec<Problem>,
    #[serde(skip)]
    outcome: Outcome,
}

/// The stream rehomed: the output's state as verification found it, and what changed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RehomedStream {
    /// The stream's account (from the source path; `$G` when it does not say).
    pub account: String,
    /// The stream's name.
    pub name: String,
    /// The stream dir read.
    pub source: String,
    /// Messages in the output, as verification counted them.
    pub messages: Option<u64>,
    /// Their bytes.
    pub bytes: Option<u64>,
    /// First sequence.
    pub first_seq: Option<u64>,
    /// Last sequence.
    pub last_seq: Option<u64>,
    /// Deleted sequences between first and last.
    pub deleted: Option<u64>,
    /// Time of the first message, ns since the epoch; JSON also `first_time` (RFC 3339).
    #[serde(flatten, serialize_with = "first_time")]
    pub first_ts: Option<i64>,
    /// Time of the last message, ns since the epoch; JSON also `last_time` (RFC 3339).
    #[serde(flatten, serialize_with = "last_time")]
    pub last_ts: Option<i64>,
    /// Consumers written.
    pub consumers: Vec<ConsumerReport>,
    /// Config changes made (`stream num_replicas 3 -> 1`, ...); empty: it was standalone already.
    pub changes: Vec<String>,
}

fn first_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("first", *ns, s)
}

fn last_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("last", *ns, s)
}

impl RehomeReport {
    /// 0 written; 1 damaged source (refused, or written with --allow-damaged); 2 could not run.
    pub fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }

    fn refuse(mut self, outcome: Outcome, why: impl Into<String>) -> Self {
        self.refused = Some(why.into());
        self.outcome = outcome;
        self.ok = false;
        self
    }
}

fn errors(p: &[Problem]) -> usize {
    p.iter().filter(|p| p.severity == Severity::Error).count()
}

/// Rehome the stream dir `src` into `opts.out`. `Err` = could not run (exit 2).
pub fn rehome(
    src: &Path,
    opts: &RehomeOptions,
    progress: &dyn Progress,
) -> anyhow::Result<RehomeReport> {
    let mut rep = RehomeReport {
        out: opts.out.display().to_string(),
        format: opts.format.map_or("dir", |f| f.as_str()).to_string(),
        ..Default::default()
    };
    if !discover::looks_like_stream_dir(src) {
        anyhow::bail!(
            "{}: not a stream dir (no meta.inf): rehome takes one stream dir, `jetstream/<account>/streams/<stream>`",
            src.display()
        );
    }
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("{}: no directory name", src.display()))?;
    let parent = src.parent();
    let account = parent
        .filter(|p| p.file_name().is_some_and(|n| n == "streams"))
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map_or("$G".to_string(), |n| n.to_string_lossy().into_owned());
    rep.streams.push(RehomedStream {
        account: account.clone(),
        name: name.clone(),
        source: src.display().to_string(),
        ..Default::default()
    });
    let out = &opts.out;
    let out_dir = staging::parent_dir(out);
    if !out_dir.is_dir() {
        return Ok(rep.refuse(
            Outcome::CouldNotRun,
            format!(
                "{} does not exist (or is not a directory)",
                out_dir.display()
            ),
        ));
    }
    if fs::symlink_metadata(out).is_ok() {
        return Ok(rep.refuse(
            Outcome::CouldNotRun,
            format!("{} exists; rehome never overwrites", out.display()),
        ));
    }
    let store_root = src
        .ancestors()
        .find(|a| a.join("jetstream").is_dir())
        .unwrap_or(src);
    if let Some(who) = crate::filestore::running::server_holding(store_root) {
        if !opts.force {
            return Ok(rep.refuse(
                Outcome::CouldNotRun,
                format!("{who}: a running server may be writing this stream; stop it first (or --force)"),
            ));
        }
        rep.notes
            .push(format!("--force: {who}; the copy may not be consistent"));
    }
    if src
        .read_dir()
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name() == "meta.key")
    {
        return Ok(rep.refuse(
            Outcome::CouldNotRun,
            "the stream is encrypted at rest: pack it with its key first (pack writes plaintext), then extract it, and rehome that",
        ));
    }
    // the source, verified
    let sd = StreamDir {
        account: account.clone(),
        name: name.clone(),
        dir: src.to_path_buf(),
    };
    let vopts = crate::check::Options::default();
    progress.phase("verify");
    let (_, problems) = crate::check::store::verify_stream_dir(&sd, &vopts, progress);
    let src_errors = errors(&problems);
    rep.problems = problems;
    if src_errors > 0 && !opts.allow_damaged {
        return Ok(rep.refuse(
            Outcome::Damaged,
            format!("verification found {src_errors} error(s) in the source; --allow-damaged rehomes it anyway"),
        ));
    }
    // staged beside OUT
    let out_name = out
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let stage_root = out_dir.join(format!(".{out_name}.jetdir-rehome-{}", std::process::id()));
    for (p, pid) in staging::leftovers(&out_dir, &format!("{out_name}.jetdir-rehome-")) {
        if pid.is_some_and(|pid| pid != std::process::id() && staging::pid_is_jetdir(pid)) {
            return Ok(rep.refuse(
                Outcome::CouldNotRun,
                format!("another jetdir is writing {}", p.display()),
            ));
        }
        staging::remove_leftover(&p)?;
        rep.notes
            .push(format!("removed {} (an interrupted rehome)", p.display()));
    }
    let res = stage_and_write(src, &name, &account, &stage_root, opts, progress, &mut rep);
    let _ = fs::remove_dir_all(&stage_root);
    let (rw, outcome) = match res? {
        Ok(v) => v,
        Err((o, why)) => return Ok(rep.refuse(o, why)),
    };
    let changed = !rw.changes.is_empty();
    if let Some(st) = rep.streams.first_mut() {
        st.changes = rw.changes;
    }
    if !changed {
        rep.notes.push(
            "the stream asked for one replica and no placement already: copied as it is".into(),
        );
    }
    rep.outcome = if src_errors > 0 {
        Outcome::Damaged
    } else {
        outcome
    };
    rep.ok = rep.outcome == Outcome::Clean;
    Ok(rep)
}

type Refused = (Outcome, String);

/// Write the rehomed stream into `stage_root/<name>`, verify it, and move it (or pack it) to OUT.
fn stage_and_write(
    src: &Path,
    name: &str,
    account: &str,
    stage_root: &Path,
    opts: &RehomeOptions,
    progress: &dyn Progress,
    rep: &mut RehomeReport,
) -> anyhow::Result<Result<(RewriteReport, Outcome), Refused>> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(stage_root)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", stage_root.display()))?;
    let staged = stage_root.join(name);
    progress.phase("rehome");
    let rw = rename::rewrite_dir(
        src,
        &staged,
        name,
        &Rewrite {
            rehome: true,
            ..Default::default()
        },
        true,
    )?;
    let sd = StreamDir {
        account: account.to_string(),
        name: name.to_string(),
        dir: staged.clone(),
    };
    progress.phase("verify output");
    let (srep, problems) =
        crate::check::store::verify_stream_dir(&sd, &crate::check::Options::default(), progress);
    let before = errors(&rep.problems);
    let after = errors(&problems);
    if after > before {
        rep.problems.extend(problems);
        return Ok(Err((
            Outcome::Damaged,
            format!("the rehomed copy has {after} error(s) (see problems); nothing written"),
        )));
    }
    if let Some(st) = rep.streams.first_mut() {
        st.messages = srep.messages;
        st.bytes = srep.bytes;
        st.first_seq = srep.first_seq;
        st.last_seq = srep.last_seq;
        st.deleted = srep.deleted;
        st.first_ts = srep.first_ts;
        st.last_ts = srep.last_ts;
        st.consumers = srep.consumers.clone();
    }
    match opts.format {
        None => {
            fs::rename(&staged, &opts.out).map_err(|e| {
                anyhow::anyhow!(
                    "renaming {} to {}: {e}",
                    staged.display(),
                    opts.out.display()
                )
            })?;
            staging::fsync_dir(&staging::parent_dir(&opts.out))?;
            Ok(Ok((rw, Outcome::Clean)))
        }
        Some(format) => {
            let popts = pack::PackOptions {
                out: opts.out.clone(),
                stream: None,
                account: None,
                format,
                all: false,
                allow_damaged: opts.allow_damaged,
                no_consumers: false,
                force: false,
                server_version: None,
                keys: Default::default(),
                rename: None,
            };
            let p = pack::pack(&staged, &popts, progress)?;
            rep.notes.extend(p.notes.iter().cloned());
            if let Some(why) = &p.refused {
                return Ok(Err((
                    outcome_of_code(p.exit_code()),
                    format!("pack: {why}"),
                )));
            }
            Ok(Ok((rw, outcome_of_code(p.exit_code()))))
        }
    }
}

fn outcome_of_code(c: i32) -> Outcome {
    match c {
        0 => Outcome::Clean,
        1 => Outcome::Damaged,
        _ => Outcome::CouldNotRun,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clustered node's R3 stream: replicas 1 afterwards, same messages and consumer, and
    /// the output verifies.
    #[test]
    fn rehomes_the_clustered_sample() {
        let t = crate::testdata::sample("v2.15.1-cluster-n1");
        let src = crate::testdata::stream_dir(&t, "v2.15.1-cluster-n1", "CL");
        let out = tempfile::tempdir().unwrap();
        let dst = out.path().join("CL");
        let opts = RehomeOptions {
            out: dst.clone(),
            format: None,
            allow_damaged: false,
            force: false,
        };
        let rep = rehome(&src, &opts, &crate::base::progress::NoProgress).unwrap();
        assert!(rep.ok, "{rep:#?}");
        assert_eq!(rep.exit_code(), 0);
        let st = &rep.streams[0];
        assert!(
            st.changes.iter().any(|c| c == "stream num_replicas 3 -> 1"),
            "{:?}",
            st.changes
        );
        let m = crate::filestore::meta::MetaInf::parse(&fs::read(dst.join("meta.inf")).unwrap())
            .unwrap();
        assert_eq!(m.i64_field("num_replicas"), Some(1));
        assert_eq!(st.consumers.len(), 1);
        assert_eq!(st.messages, Some(5));
        // nothing staged is left beside OUT
        let left: Vec<_> = fs::read_dir(out.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1);
        // a second run refuses: OUT exists
        let again = rehome(&src, &opts, &crate::base::progress::NoProgress).unwrap();
        assert_eq!(again.exit_code(), 2);
    }
}
