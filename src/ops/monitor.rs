//! `jetdir check`: a verify run turned into what monitoring systems read, like natscli's
//! `nats server check`.
//!
//! - [`CheckResult::nagios`]: one Nagios plugin status line, `OK|WARNING|CRITICAL|UNKNOWN`, a
//!   summary naming the streams that lose data, and performance data after `|`.
//! - [`CheckResult::prometheus`]: the text exposition format (version 0.0.4) that
//!   node_exporter's textfile collector reads: per stream messages, bytes, lost and unreadable
//!   messages and the verdict; per run the status, findings, duration and the time it ran.
//! - [`write_textfile`]: the `.prom` file written staged, fsynced and renamed over the old one,
//!   so the collector never reads a half-written file.
//!
//! The status follows jetdir's outcome: a clean run is OK (WARNING when it has warnings or a
//! stream the server repairs at load), damaged input is CRITICAL, a run that could not run is
//! UNKNOWN. The exit code stays jetdir's own (0, 1, 2); [`Status::nagios_exit_code`] gives the
//! plugin convention (0, 1, 2, 3) for callers that ask for it.
use crate::base::problem::Severity;
use crate::base::progress::Progress;
use crate::base::report::{Outcome, Report, Verdict};
use crate::check::{self, Options};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

/// The monitoring state of one check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Clean, no warnings.
    Ok,
    /// Clean (exit 0) but with warnings, or a stream the server repairs at load.
    Warning,
    /// Damaged or inconsistent input (exit 1).
    Critical,
    /// The check could not run (exit 2).
    Unknown,
}

impl Status {
    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
    /// The Nagios plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub fn nagios_exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }
}

/// One stream's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StreamMetrics {
    /// Account name.
    pub account: String,
    /// Stream name.
    pub name: String,
    /// Messages after the load (0 when unknown, e.g. encrypted).
    pub messages: u64,
    /// Message bytes after the load.
    pub bytes: u64,
    /// Messages the load loses (truncated blocks).
    pub lost_messages: u64,
    /// Messages counted but unreadable (checksum errors under a trusted index.db).
    pub unreadable_messages: u64,
    /// What the server does with the stream.
    pub verdict: Verdict,
    /// Error findings in this stream (not counting the could-not-run kinds such as
    /// `encrypted_key_needed`: such a stream is not damaged, it was not read).
    pub errors: u64,
    /// Warning findings in this stream.
    pub warnings: u64,
}

/// The result of `jetdir check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The monitoring state.
    pub status: Status,
    /// jetdir's exit code: 0 clean, 1 damaged, 2 could not run (in the JSON document's
    /// envelope, `exit_code`).
    #[serde(skip)]
    pub exit_code: i32,
    /// True when the exit code is 0.
    pub ok: bool,
    /// The path checked, as given.
    pub path: String,
    /// One line for people: what is wrong, or that nothing is.
    pub summary: String,
    /// `--quick`: record checksums were not verified (in the envelope's `options`).
    #[serde(skip)]
    pub quick: bool,
    /// Every stream found (empty when the check could not run).
    pub streams: Vec<StreamMetrics>,
    /// Error findings, listed and suppressed.
    pub errors: u64,
    /// Warning findings, listed and suppressed.
    pub warnings: u64,
    /// Wall time of the verify, seconds.
    pub duration_seconds: f64,
    /// When the check ran, seconds since the epoch.
    pub timestamp: i64,
    /// Why the check could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The findings listed (as verify lists them).
    pub problems: Vec<crate::base::problem::Problem>,
}

/// Run verify on `path` and turn the report into a [`CheckResult`]. Never fails: a verify
/// that could not run gives status UNKNOWN with the reason.
pub fn check(path: &Path, opts: &Options, progress: &dyn Progress) -> CheckResult {
    let started = Instant::now();
    let timestamp = unix_now();
    match check::verify_path(path, opts, progress) {
        Ok(r) => from_report(&r, path, opts.quick, started.elapsed(), timestamp),
        Err(e) => could_not_run(
            path,
            opts.quick,
            &format!("{e:#}"),
            started.elapsed(),
            timestamp,
        ),
    }
}

fn unix_now() -> i64 {
    crate::base::time::now_ns().div_euclid(1_000_000_000)
}

fn ranges_len(r: &[(u64, u64)]) -> u64 {
    r.iter().map(|(a, b)| b.saturating_sub(*a) + 1).sum()
}

/// The [`CheckResult`] of a finished verify.
pub fn from_report(
    r: &Report,
    path: &Path,
    quick: bool,
    elapsed: Duration,
    timestamp: i64,
) -> CheckResult {
    let suppressed_of = |sev: Severity| -> u64 {
        r.suppressed
            .iter()
            .filter(|(k, _)| {
                crate::base::problem::Kind::from_id(k).is_some_and(|k| k.severity() == sev)
            })
            .map(|(_, n)| *n)
            .sum()
    };
    let count = |sev: Severity| {
        r.problems.iter().filter(|p| p.severity == sev).count() as u64 + suppressed_of(sev)
    };
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let streams: Vec<StreamMetrics> = r
        .streams
        .iter()
        .map(|s| {
            let mine = |sev: Severity| {
                r.problems
                    .iter()
                    .filter(|p| {
                        p.severity == sev
                            && !p.kind.is_fatal()
                            && p.loc.account.as_deref() == Some(s.account.as_str())
                            && p.loc.stream.as_deref() == Some(s.name.as_str())
                    })
                    .count() as u64
            };
            let load = s.load.as_ref();
            StreamMetrics {
                account: s.account.clone(),
                name: s.name.clone(),
                messages: s.messages.unwrap_or(0),
                bytes: s.bytes.unwrap_or(0),
                lost_messages: load.map_or(0, |l| l.lost_messages),
                unreadable_messages: load.map_or(0, |l| ranges_len(&l.unreadable)),
                verdict: load.map_or(Verdict::Loads, |l| l.verdict),
                errors: mine(Severity::Error),
                warnings: mine(Severity::Warning),
            }
        })
        .collect();
    let outcome = r.outcome();
    let repaired = streams.iter().any(|s| s.verdict == Verdict::Repaired);
    let status = match outcome {
        Outcome::CouldNotRun => Status::Unknown,
        Outcome::Damaged => Status::Critical,
        Outcome::Clean if warnings > 0 || repaired => Status::Warning,
        Outcome::Clean => Status::Ok,
    };
    let summary = summarise(r, &streams, status, errors, warnings);
    CheckResult {
        status,
        ok: outcome.exit_code() == 0,
        problems: r.problems.clone(),
        exit_code: outcome.exit_code(),
        path: path.display().to_string(),
        summary,
        quick,
        streams,
        errors,
        warnings,
        duration_seconds: elapsed.as_secs_f64(),
        timestamp,
        error: None,
    }
}

/// The [`CheckResult`] of a verify that could not run (`error` says why).
pub fn could_not_run(
    path: &Path,
    quick: bool,
    error: &str,
    elapsed: Duration,
    timestamp: i64,
) -> CheckResult {
    CheckResult {
        status: Status::Unknown,
        ok: false,
        problems: Vec::new(),
        exit_code: 2,
        path: path.display().to_string(),
        summary: format!("could not run: {error}"),
        quick,
        streams: Vec::new(),
        errors: 0,
        warnings: 0,
        duration_seconds: elapsed.as_secs_f64(),
        timestamp,
        error: Some(error.to_string()),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summarise(
    r: &Report,
    streams: &[StreamMetrics],
    status: Status,
    errors: u64,
    warnings: u64,
) -> String {
    let n = streams.len() as u64;
    let what = match &r.archive {
        Some(a) => format!("{} backup, {}", a.format, plural(n, "stream", "streams")),
        None => plural(n, "stream", "streams"),
    };
    let damaged: Vec<String> = streams
        .iter()
        .filter(|s| {
            s.errors > 0
                || matches!(
                    s.verdict,
                    Verdict::LosesData | Verdict::Skipped | Verdict::MayNotLoad
                )
        })
        .map(|s| {
            let mut d = format!("{} > {}", s.account, s.name);
            match s.verdict {
                Verdict::Skipped => d.push_str(" not loaded"),
                Verdict::MayNotLoad => d.push_str(" may not be loaded"),
                _ if s.lost_messages > 0 => {
                    let _ = write!(
                        d,
                        " loses {}",
                        plural(s.lost_messages, "message", "messages")
                    );
                }
                _ if s.unreadable_messages > 0 => {
                    let _ = write!(
                        d,
                        " has {} unreadable",
                        plural(s.unreadable_messages, "message", "messages")
                    );
                }
                _ => {
                    let _ = write!(d, " {}", plural(s.errors, "error", "errors"));
                }
            }
            d
        })
        .collect();
    match status {
        Status::Ok => format!("{what} verified, no problems"),
        Status::Warning => format!(
            "{what} verified, {}, no data lost",
            plural(warnings, "warning", "warnings")
        ),
        Status::Critical if damaged.is_empty() => {
            format!("{what} verified, {}", plural(errors, "error", "errors"))
        }
        Status::Critical => format!(
            "{what} verified, {} damaged: {}",
            damaged.len(),
            damaged.join(", ")
        ),
        Status::Unknown => {
            let fatal: Vec<String> = r
                .problems
                .iter()
                .filter(|p| p.kind.is_fatal())
                .map(|p| match (&p.loc.account, &p.loc.stream) {
                    (Some(a), Some(st)) => format!("{} ({a} > {st})", p.kind.as_str()),
                    _ => p.kind.as_str().to_string(),
                })
                .collect();
            format!("could not run: {}", fatal.join(", "))
        }
    }
}

impl CheckResult {
    /// Messages lost by every stream together.
    pub fn lost_messages(&self) -> u64 {
        self.streams.iter().map(|s| s.lost_messages).sum()
    }

    /// The Nagios plugin output: `STATUS jetdir PATH: summary | perfdata`, one line with a
    /// trailing newline. Perfdata: streams, damaged, messages, bytes (B), lost, unreadable,
    /// errors, warnings, duration (s).
    pub fn nagios(&self) -> String {
        let summary = self.summary.replace(['\n', '|'], " ");
        let mut line = format!("{} jetdir {}: {summary}", self.status.as_str(), self.path);
        let damaged = self
            .streams
            .iter()
            .filter(|s| {
                s.errors > 0
                    || matches!(
                        s.verdict,
                        Verdict::LosesData | Verdict::Skipped | Verdict::MayNotLoad
                    )
            })
            .count();
        let sum = |f: fn(&StreamMetrics) -> u64| self.streams.iter().map(f).sum::<u64>();
        let _ = write!(
            line,
            " | streams={} damaged={damaged} messages={} bytes={}B lost={} unreadable={} errors={} warnings={} duration={:.3}s",
            self.streams.len(),
            sum(|s| s.messages),
            sum(|s| s.bytes),
            sum(|s| s.lost_messages),
            sum(|s| s.unreadable_messages),
            self.errors,
            self.warnings,
            self.duration_seconds,
        );
        line.push('\n');
        line
    }

    /// The Prometheus text exposition (format 0.0.4): every metric with `# HELP` and
    /// `# TYPE`, each series labelled with `path` (and `account`, `stream` per stream).
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let path = format!("path=\"{}\"", escape_label(&self.path));
        let mut family = |name: &str, help: &str, series: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, value) in series {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        let one = |v: String| vec![(path.clone(), v)];
        family(
            "jetdir_check_status",
            "Result of the last check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            one(self.status.nagios_exit_code().to_string()),
        );
        family(
            "jetdir_check_exit_code",
            "jetdir's exit code of the last check: 0 clean, 1 damaged, 2 could not run.",
            one(self.exit_code.to_string()),
        );
        family(
            "jetdir_check_success",
            "1 when the last check ran to the end (clean or damaged), 0 when it could not run.",
            one(u8::from(self.status != Status::Unknown).to_string()),
        );
        family(
            "jetdir_check_quick",
            "1 when the last check skipped record checksums (--quick).",
            one(u8::from(self.quick).to_string()),
        );
        family(
            "jetdir_check_errors",
            "Error findings of the last check.",
            one(self.errors.to_string()),
        );
        family(
            "jetdir_check_warnings",
            "Warning findings of the last check.",
            one(self.warnings.to_string()),
        );
        family(
            "jetdir_check_streams",
            "Streams found by the last check.",
            one(self.streams.len().to_string()),
        );
        family(
            "jetdir_check_duration_seconds",
            "Wall time of the last check.",
            one(format!("{:.6}", self.duration_seconds)),
        );
        family(
            "jetdir_check_last_run_timestamp_seconds",
            "When the last check ran, seconds since the epoch.",
            one(self.timestamp.to_string()),
        );
        let per_stream = |f: &dyn Fn(&StreamMetrics) -> u64| -> Vec<(String, String)> {
            self.streams
                .iter()
                .map(|s| (stream_labels(&path, s), f(s).to_string()))
                .collect()
        };
        family(
            "jetdir_stream_messages",
            "Messages the stream has after the server loads these files.",
            per_stream(&|s| s.messages),
        );
        family(
            "jetdir_stream_bytes",
            "Message bytes the stream has after the server loads these files.",
            per_stream(&|s| s.bytes),
        );
        family(
            "jetdir_stream_lost_messages",
            "Messages the server loses when it loads these files.",
            per_stream(&|s| s.lost_messages),
        );
        family(
            "jetdir_stream_unreadable_messages",
            "Messages the server counts but cannot read (checksum errors under a trusted index.db).",
            per_stream(&|s| s.unreadable_messages),
        );
        family(
            "jetdir_stream_errors",
            "Error findings in the stream.",
            per_stream(&|s| s.errors),
        );
        let verdicts = [
            Verdict::Loads,
            Verdict::Repaired,
            Verdict::LosesData,
            Verdict::Skipped,
            Verdict::MayNotLoad,
        ];
        let mut series = Vec::new();
        for s in &self.streams {
            for v in verdicts {
                series.push((
                    format!("{},verdict=\"{}\"", stream_labels(&path, s), verdict_id(v)),
                    u8::from(s.verdict == v).to_string(),
                ));
            }
        }
        family(
            "jetdir_stream_verdict",
            "What the server does with the stream at load: 1 for the verdict that holds (loads, repaired, loses_data, skipped, may_not_load).",
            series,
        );
        out
    }
}

fn verdict_id(v: Verdict) -> &'static str {
    match v {
        Verdict::Loads => "loads",
        Verdict::Repaired => "repaired",
        Verdict::LosesData => "loses_data",
        Verdict::Skipped => "skipped",
        Verdict::MayNotLoad => "may_not_load",
    }
}

fn stream_labels(path: &str, s: &StreamMetrics) -> String {
    format!(
        "{path},account=\"{}\",stream=\"{}\"",
        escape_label(&s.account),
        escape_label(&s.name)
    )
}

/// A label value as the exposition format wants it: `\`, `"` and newline escaped.
fn escape_label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// Write `text` to `target` so that a reader sees the old file or the new one, never a part:
/// a staging file `.<name>.jetdir-<pid>` beside it (not `*.prom`, so the textfile collector
/// skips it), fsynced, renamed over `target`, and the directory fsynced. Errors name the file.
pub fn write_textfile(target: &Path, text: &str) -> io::Result<()> {
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", target.display()),
        )
    })?;
    let dir = crate::ops::staging::parent_dir(target);
    let stage = dir.join(format!(
        ".{}.jetdir-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let named = |p: &Path, e: io::Error| {
        let what = if p == target {
            format!("{}: {e}", target.display())
        } else {
            format!("{}: {e} (staging file {})", target.display(), p.display())
        };
        io::Error::new(e.kind(), what)
    };
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&stage)
            .map_err(|e| named(&stage, e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| named(&stage, e))?;
        drop(f);
        std::fs::rename(&stage, target).map_err(|e| named(target, e))?;
        crate::ops::staging::fsync_dir(&dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&stage);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn could_not_run_is_unknown_with_exit_2() {
        let r = could_not_run(
            Path::new("/nope"),
            false,
            "/nope: no such file",
            Duration::from_millis(5),
            1,
        );
        assert_eq!(r.status, Status::Unknown);
        assert_eq!(r.exit_code, 2);
        assert!(r
            .nagios()
            .starts_with("UNKNOWN jetdir /nope: could not run"));
        assert!(r
            .prometheus()
            .contains("jetdir_check_success{path=\"/nope\"} 0\n"));
    }

    #[test]
    fn textfile_replaces_the_old_one_and_leaves_no_staging_file() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("jetdir.prom");
        std::fs::write(&t, "old").unwrap();
        write_textfile(&t, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&t).unwrap(), "new\n");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let e = write_textfile(&d.path().join("no/such/dir.prom"), "x").unwrap_err();
        assert!(e.to_string().contains("no/such/dir.prom"), "{e}");
    }
}
