//! `jetdir diff`, `jetdir salvage`, `jetdir explain` (issue #12): arguments and rendering.
//! The work is the library's (`jetdir::forensics::diff`, `jetdir::ops::salvage`,
//! `jetdir::forensics::explain`).
use super::human::{self, paint, Colour};
use super::render::problem_line;
use crate::{emit, fail, progress, KeyArgs, ModelArgs, Run};
use jetdir::base::report::{ranges_text, RunOptions};
use jetdir::forensics::diff::{self, DiffReport, StreamDiff};
use jetdir::forensics::explain::{self, ExplainReport};
use jetdir::ops::pack::PackFormat;
use jetdir::ops::salvage::{self, SalvageFormat, SalvageReport};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// `jetdir diff`.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// Two or more copies of the stream(s): store dirs, stream dirs or backups of any form.
    #[arg(num_args = 2.., required = true)]
    paths: Vec<PathBuf>,
    /// Only this stream (default: every stream any copy holds).
    #[arg(long)]
    stream: Option<String>,
    /// Only streams of this account (store dirs with accounts).
    #[arg(long)]
    account: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    keys: KeyArgs,
}

/// `--format` of `jetdir salvage`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SalvageFmt {
    /// a stream dir, to put into a stopped server's jetstream/<ACC>/streams/ (OUT named after
    /// the stream)
    Dir,
    /// `nats stream backup` dir: backup.json + stream.tar.s2 (tar in S2)
    V1,
    /// `nats stream backup` dir with a NATSARC1 archive (2.15+)
    V2,
    /// one gzip tarball of the stream dir, for `jetdir extract`
    Tgz,
}

/// `jetdir salvage`.
#[derive(clap::Args)]
pub struct SalvageArgs {
    /// A store, account or stream dir, or a V1 / .tgz / .tar backup.
    path: PathBuf,
    /// Output: a stream dir (dir), a backup dir (v1, v2) or a .tgz file (tgz); never
    /// overwritten.
    #[arg(short, long)]
    out: PathBuf,
    /// The form written.
    #[arg(long, value_enum, default_value = "dir")]
    format: SalvageFmt,
    /// The stream, when PATH holds several.
    #[arg(long)]
    stream: Option<String>,
    /// The account of --stream (store dirs with accounts).
    #[arg(long)]
    account: Option<String>,
    /// Model the input's load at this time, RFC 3339 (which records it serves; default now).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The nats-server release that will restore the backup (v1, v2, tgz; as for pack).
    #[arg(long, value_name = "X.Y.Z")]
    server_version: Option<String>,
    #[command(flatten)]
    keys: KeyArgs,
}

/// `jetdir explain`.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// A store, account or stream dir, or a backup.
    path: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    keys: KeyArgs,
}

fn at_ns(at: &Option<String>) -> Result<i64, String> {
    match at {
        None => Ok(jetdir::base::time::now_ns()),
        Some(a) => jetdir::base::time::parse_rfc3339(a)
            .ok_or_else(|| format!("--at {a:?}: not an RFC 3339 time (e.g. 2026-11-30T10:00:00Z)")),
    }
}

fn run_of(json: bool, command: &'static str, at: Option<i64>) -> Run {
    Run {
        json,
        command,
        options: RunOptions {
            at: at.map(jetdir::base::time::rfc3339_full),
            ..Default::default()
        },
    }
}

// ---- diff ----

/// `jetdir diff A B [C…]`.
pub fn run_diff(a: &DiffArgs, json: bool) -> ExitCode {
    let mut run = run_of(json, "diff", None);
    run.options.server_version = a.model.server_version.clone();
    let target = match a.model.target() {
        Ok(t) => t,
        Err(e) => return fail(&run, &e),
    };
    run.options.at = Some(jetdir::base::time::rfc3339_full(target.at_ns));
    let keys = match a.keys.ring_for(a.account.as_deref()) {
        Ok(k) => k,
        Err(e) => return fail(&run, &e),
    };
    let opts = diff::DiffOptions {
        stream: a.stream.clone(),
        account: a.account.clone(),
        target,
        keys,
    };
    match diff::diff(&a.paths, &opts) {
        Ok(r) => emit(&run, &r, || render_diff(&r), r.exit_code()),
        Err(e) => fail(&run, &format!("{e:#}")),
    }
}

fn opt_seq(v: u64) -> String {
    if v == 0 {
        "-".into()
    } else {
        v.to_string()
    }
}

fn diff_headline(s: &StreamDiff) -> String {
    let n = s.copies.len();
    if s.identical {
        let c = &s.copies[0];
        if c.messages == 0 {
            return format!(
                "stream {}: the {n} copies serve no message (last sequence {}) and the same consumer states",
                s.name, c.last_seq
            );
        }
        return format!(
            "stream {}: the {n} copies serve the same {} messages ({}..{}) and consumer states",
            s.name,
            c.messages,
            opt_seq(c.first_seq),
            opt_seq(c.last_seq)
        );
    }
    let mut parts = Vec::new();
    for (i, c) in s.copies.iter().enumerate() {
        if !c.present {
            parts.push(format!("copy {} has no such stream", i + 1));
        } else if c.missing > 0 {
            parts.push(format!(
                "copy {} misses {} ({})",
                i + 1,
                ranges_text(&c.missing_ranges, 4),
                if c.missing == 1 {
                    "1 message".to_string()
                } else {
                    format!("{} messages", c.missing)
                }
            ));
        }
    }
    if let Some(d) = &s.first_difference {
        parts.push(format!(
            "first difference at seq {} ({}), {} differing",
            d.seq,
            d.fields.join(", "),
            s.differing
        ));
    }
    let lasts: Vec<u64> = s.copies.iter().map(|c| c.last_seq).collect();
    if lasts.windows(2).any(|w| w[0] != w[1]) && parts.is_empty() {
        parts.push("last sequences differ".into());
    }
    if s.consumers.iter().any(|c| !c.same) {
        let names: Vec<&str> = s
            .consumers
            .iter()
            .filter(|c| !c.same)
            .map(|c| c.name.as_str())
            .collect();
        parts.push(format!("consumer state differs: {}", names.join(", ")));
    }
    format!("stream {}: {}", s.name, parts.join("; "))
}

fn render_diff(r: &DiffReport) -> String {
    let mut o = String::new();
    let differ = r.streams.iter().filter(|s| !s.identical).count();
    let damaged: u64 = r
        .streams
        .iter()
        .flat_map(|s| s.copies.iter())
        .map(|c| c.errors)
        .sum();
    let verdict = if r.ok {
        paint("IDENTICAL", Colour::Green)
    } else {
        paint("DIFFERENT", Colour::Red)
    };
    let _ = writeln!(
        o,
        "{verdict}: {} copies, {} stream(s) compared, {differ} differ{}",
        r.paths.len(),
        r.streams.len(),
        if damaged > 0 {
            format!(", {damaged} damage finding(s) in the copies")
        } else {
            String::new()
        }
    );
    for s in &r.streams {
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", diff_headline(s));
        let _ = writeln!(o);
        let rows: Vec<Vec<String>> = s
            .copies
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if !c.present {
                    return vec![
                        (i + 1).to_string(),
                        c.path.clone(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "no such stream".into(),
                    ];
                }
                vec![
                    (i + 1).to_string(),
                    c.path.clone(),
                    c.messages.to_string(),
                    human::ibytes(c.bytes),
                    opt_seq(c.first_seq),
                    opt_seq(c.last_seq),
                    c.deleted.to_string(),
                    c.errors.to_string(),
                    if c.missing == 0 {
                        "-".into()
                    } else {
                        ranges_text(&c.missing_ranges, 4)
                    },
                ]
            })
            .collect();
        o.push_str(&human::table(
            &[
                "Copy",
                "Path",
                "Messages",
                "Size",
                "First Seq",
                "Last Seq",
                "Deleted",
                "Errors",
                "Missing",
            ],
            &rows,
            &[0, 2, 3, 4, 5, 6, 7],
        ));
        if let Some(d) = &s.first_difference {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "First difference: seq {} ({})",
                d.seq,
                d.fields.join(", ")
            );
            for v in &d.versions {
                let _ = writeln!(
                    o,
                    "  copy {}: {}  {}  headers {}  payload {}",
                    v.copy + 1,
                    v.subject,
                    jetdir::base::time::rfc3339_full(v.ts),
                    human::ibytes(v.header_bytes),
                    human::ibytes(v.payload_bytes)
                );
            }
        }
        if !s.consumers.is_empty() {
            let _ = writeln!(o);
            let mut header: Vec<String> = vec!["Consumer".into()];
            for i in 0..s.copies.len() {
                header.push(format!("Copy {} (Delivered / Ack Floor)", i + 1));
            }
            header.push("Same".into());
            let rows: Vec<Vec<String>> = s
                .consumers
                .iter()
                .map(|c| {
                    let mut row = vec![c.name.clone()];
                    for (k, copy) in c.copies.iter().zip(&s.copies) {
                        row.push(match k {
                            None if !copy.consumers_known => "unknown".into(),
                            None => "-".into(),
                            Some(k) => format!(
                                "{} / {}",
                                k.delivered_stream_seq.map_or("-".into(), |v| v.to_string()),
                                k.ack_floor_stream_seq.map_or("-".into(), |v| v.to_string())
                            ),
                        });
                    }
                    row.push(if c.same { "yes".into() } else { "no".into() });
                    row
                })
                .collect();
            let h: Vec<&str> = header.iter().map(|s| s.as_str()).collect();
            o.push_str(&human::table(&h, &rows, &[]));
        }
        if let Some(b) = s.most_complete {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "Most complete: copy {} ({}): {}",
                b + 1,
                s.copies[b].path,
                s.most_complete_why
            );
        }
    }
    let mut first = true;
    for s in &r.streams {
        for (i, c) in s.copies.iter().enumerate() {
            for p in &c.problems {
                if first {
                    let _ = writeln!(o);
                    first = false;
                }
                let _ = writeln!(o, "copy {} ({}): {}", i + 1, c.path, problem_line(p));
            }
        }
    }
    o
}

// ---- salvage ----

/// `jetdir salvage PATH -o OUT`.
pub fn run_salvage(a: &SalvageArgs, json: bool, mode: progress::Mode) -> ExitCode {
    let mut run = run_of(json, "salvage", None);
    let at = match at_ns(&a.at) {
        Ok(t) => t,
        Err(e) => return fail(&run, &e),
    };
    run.options.at = Some(jetdir::base::time::rfc3339_full(at));
    let format = match a.format {
        SalvageFmt::Dir => SalvageFormat::Dir,
        SalvageFmt::V1 => SalvageFormat::Pack(PackFormat::V1),
        SalvageFmt::V2 => SalvageFormat::Pack(PackFormat::V2),
        SalvageFmt::Tgz => SalvageFormat::Pack(PackFormat::Tgz),
    };
    run.options.server_version = a.server_version.clone();
    let server_version = match a.server_version.as_deref().map(str::parse) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => return fail(&run, &format!("--server-version: {e}")),
    };
    if server_version.is_some() && matches!(format, SalvageFormat::Dir) {
        return fail(
            &run,
            "--server-version applies to the backup forms (v1, v2, tgz); a salvaged dir has no index and loads in every release",
        );
    }
    let keys = match a.keys.ring_for(a.account.as_deref()) {
        Ok(k) => k,
        Err(e) => return fail(&run, &e),
    };
    let opts = salvage::SalvageOptions {
        out: a.out.clone(),
        format,
        stream: a.stream.clone(),
        account: a.account.clone(),
        at_ns: at,
        server_version,
        keys,
    };
    let reporter = progress::Reporter::new(mode, "salvage");
    match salvage::salvage(&a.path, &opts, &reporter) {
        Ok(r) => emit(&run, &r, || render_salvage(&r), r.exit_code()),
        Err(e) => fail(&run, &format!("{e:#}")),
    }
}

fn render_salvage(r: &SalvageReport) -> String {
    let mut o = String::new();
    if let Some(why) = &r.refused {
        let _ = writeln!(o, "{}: {why}", paint("refused", Colour::Red));
        let _ = writeln!(o, "nothing written");
        return o;
    }
    for s in &r.streams {
        let head = if s.lost > 0 {
            paint("SALVAGED WITH LOSSES", Colour::Yellow)
        } else if r.ok {
            paint("SALVAGED", Colour::Green)
        } else {
            paint("SALVAGED (damaged input, nothing lost)", Colour::Yellow)
        };
        let _ = writeln!(
            o,
            "{head}: {} > {}: {} messages ({}) written, sequences {}..{}, {} deleted",
            s.account,
            s.name,
            s.messages,
            human::ibytes(s.bytes),
            opt_seq(s.first_seq),
            opt_seq(s.last_seq),
            s.deleted
        );
        let _ = writeln!(
            o,
            "  a server started on the input would serve {} messages",
            s.served_by_input
        );
        if s.recovered > 0 {
            let _ = writeln!(
                o,
                "  recovered: {} the server's load would lose or not serve: {}",
                if s.recovered == 1 {
                    "1 message".to_string()
                } else {
                    format!("{} messages", s.recovered)
                },
                ranges_text(&s.recovered_ranges, 8)
            );
        }
        if s.lost > 0 {
            let _ = writeln!(
                o,
                "  lost: {} (damaged records, no valid copy on disk): {}",
                if s.lost == 1 {
                    "1 sequence".to_string()
                } else {
                    format!("{} sequences", s.lost)
                },
                ranges_text(&s.lost_ranges, 8)
            );
        } else {
            let _ = writeln!(o, "  lost: nothing");
        }
        if !s.revived.is_empty() {
            let r: Vec<(u64, u64)> = s.revived.iter().map(|&q| (q, q)).collect();
            let _ = writeln!(
                o,
                "  deleted messages written again (only a lost or untrusted index knew the delete): {}",
                ranges_text(&r, 8)
            );
        }
        if s.removed_by_limits > 0 {
            let _ = writeln!(
                o,
                "  left out: {} message(s) the stream's limits remove at load",
                s.removed_by_limits
            );
        }
        for c in &s.consumers {
            if c.no_state {
                let _ = writeln!(
                    o,
                    "  consumer {}: no o.dat (starts from its deliver policy)",
                    c.name
                );
            } else {
                let _ = writeln!(
                    o,
                    "  consumer {}: delivered {}, ack floor {}{}",
                    c.name,
                    c.delivered_stream_seq,
                    c.ack_floor_stream_seq,
                    if c.clamped {
                        " (clamped to the surviving range)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    for p in &r.problems {
        let _ = writeln!(o, "{}", problem_line(p));
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    let w = r.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
    for f in &r.files {
        let _ = writeln!(
            o,
            "  {:<w$}  {:>10}  sha256 {}",
            f.path,
            human::ibytes(f.bytes),
            f.sha256
        );
    }
    let _ = writeln!(o, "wrote {} ({})", r.out, r.format);
    o
}

// ---- explain ----

/// `jetdir explain PATH`.
pub fn run_explain(a: &ExplainArgs, json: bool, mode: progress::Mode) -> ExitCode {
    let mut run = Run {
        json,
        command: "explain",
        options: RunOptions {
            server_version: a.model.server_version.clone(),
            ..Default::default()
        },
    };
    let target = match a.model.target() {
        Ok(t) => t,
        Err(e) => return fail(&run, &e),
    };
    run.options.at = Some(jetdir::base::time::rfc3339_full(target.at_ns));
    let keys = match a.keys.ring() {
        Ok(k) => k,
        Err(e) => return fail(&run, &e),
    };
    let opts = jetdir::check::Options {
        quick: false,
        target,
        keys,
    };
    let reporter = progress::Reporter::new(mode, "explain");
    match jetdir::check::verify_path(&a.path, &opts, &reporter) {
        Ok(rep) => {
            let e = explain::explain(&rep, &a.path.display().to_string());
            emit(&run, &e, || render_explain(&e), e.exit_code())
        }
        Err(e) => fail(&run, &format!("{e:#}")),
    }
}

fn render_explain(e: &ExplainReport) -> String {
    let mut o = String::new();
    for (i, s) in e.streams.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(o);
        }
        let verdict = match s.verdict {
            Some(v) => v.to_string(),
            None if s.encrypted => "encrypted (key needed)".to_string(),
            None => "backup".to_string(),
        };
        let colour = match s.verdict {
            None if s.encrypted => Colour::Red,
            Some(jetdir::base::report::Verdict::Loads) | None => Colour::Green,
            Some(jetdir::base::report::Verdict::Repaired) => Colour::Yellow,
            _ => Colour::Red,
        };
        let _ = writeln!(o, "{} > {}: {}", s.account, s.name, paint(&verdict, colour));
        for line in &s.sentences {
            let _ = writeln!(o, "  {line}");
        }
        let _ = writeln!(o, "  Next: {}", s.next_step);
    }
    for n in &e.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}
