//! Thin CLI over the jetdir library: parse arguments, call the library, print, exit.
use clap::{Parser, Subcommand};
mod cli;

use cli::{progress_bar as progress, render as output};
use jetdir::check as verify;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "jetdir",
    version,
    about = "Offline reader, verifier and backup tool for NATS JetStream file stores (stopped servers only)"
)]
struct Cli {
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log lines on stderr instead of a progress bar.
    #[arg(long, global = true)]
    no_progress: bool,
    /// No progress output at all.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--format` of `jetdir pack`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    V1,
    V2,
    Tgz,
}

impl From<&Format> for jetdir::ops::pack::PackFormat {
    fn from(f: &Format) -> Self {
        match f {
            Format::V1 => Self::V1,
            Format::V2 => Self::V2,
            Format::Tgz => Self::Tgz,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Check every checksum and invariant of a store, account, stream dir or backup.
    Verify {
        path: PathBuf,
        /// Skip record checksums (structure and state only).
        #[arg(long)]
        quick: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Report what is in a store: config, state, blocks, consumers, warnings.
    Inspect {
        path: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Write a backup (backup dir, stream.tar.s2, .tgz, .tar) into a stopped server's store dir.
    Extract {
        archive: PathBuf,
        /// The server's store dir (the one holding, or to hold, `jetstream/`).
        #[arg(long)]
        store_dir: PathBuf,
        /// Account to restore into.
        #[arg(long, default_value = "$G")]
        account: String,
        /// Verify and print what would be written; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Extract even when verification finds damage.
        #[arg(long)]
        allow_damaged: bool,
        /// Override the running-server and clustered-node refusals (with a warning).
        #[arg(long)]
        force: bool,
        /// Create the store dir when it does not exist (otherwise refused).
        #[arg(long)]
        create: bool,
        /// The nats-server release that will load the stream (configs are judged for it).
        #[arg(long, value_name = "X.Y.Z")]
        server_version: Option<String>,
    },
    /// Pack a stream on disk into a backup that `nats stream restore` accepts.
    Pack {
        /// A stream dir, or a store/account dir with --stream (or --all).
        path: PathBuf,
        /// Output: a backup directory (v1, v2, --all) or a .tgz file (tgz).
        #[arg(short, long)]
        out: PathBuf,
        #[arg(long)]
        stream: Option<String>,
        #[arg(long)]
        account: Option<String>,
        #[arg(long, value_enum, default_value = "v1")]
        format: Format,
        /// Pack every stream of the account (`nats account backup` layout).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        allow_damaged: bool,
        #[arg(long)]
        no_consumers: bool,
        /// Read a store even when a running server seems to hold it.
        #[arg(long)]
        force: bool,
        /// The nats-server release that will restore the backup (e.g. 2.12.8): index.db is
        /// written in the version it reads (none for 2.9) and thw.db / sched.db / sources.db
        /// only when it reads them. Default: the release that wrote each stream.
        #[arg(long, value_name = "X.Y.Z")]
        server_version: Option<jetdir::ops::pack::target::ServerVersion>,
    },
    // ---- forensics (issue #12): dump, kv, object; arguments and rendering in src/cli/dump.rs
    /// Print a stream's messages in sequence order, as the server would serve them (NDJSON with --json).
    Dump(cli::dump::DumpArgs),
    /// Read a KV bucket from disk: keys, get KEY, history KEY.
    Kv(cli::dump::KvArgs),
    /// Read an object-store bucket from disk: ls, get NAME -o FILE.
    Object(cli::dump::ObjectArgs),
    // ---- end forensics
}

/// Which server load the verdict is for.
#[derive(clap::Args)]
struct ModelArgs {
    /// Predict the load by this nats-server release (default: the release that wrote the
    /// files, from their metadata and formats).
    #[arg(long, value_name = "X.Y.Z")]
    server_version: Option<String>,
    /// Predict the load at this time, RFC 3339 (max_age is measured against it; default now).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

impl ModelArgs {
    fn target(&self) -> Result<jetdir::check::Target, String> {
        let mut t = jetdir::check::Target::default();
        if let Some(v) = &self.server_version {
            t.release = Some(jetdir::base::release::Release::parse(v).map_err(|e| e.to_string())?);
        }
        if let Some(at) = &self.at {
            t.at_ns = jetdir::base::time::parse_rfc3339(at).ok_or_else(|| {
                format!("--at {at:?}: not an RFC 3339 time (e.g. 2026-11-30T10:00:00Z)")
            })?;
        }
        Ok(t)
    }
}

/// Write to stdout; a reader that went away (`jetdir ... | head -1`: EPIPE) ends the output
/// quietly, never with a panic. Other write errors are reported on stderr.
fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            err(&format!("jetdir: cannot write the output: {e}"));
        }
    }
}

/// A line on stderr (ignoring a closed stderr).
fn err(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn fail(json: bool, msg: &str) -> ExitCode {
    if json {
        out(&format!(
            "{}\n",
            serde_json::json!({"ok": false, "error": msg, "streams": [], "problems": []})
        ));
    }
    err(&format!("jetdir: {msg}"));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = progress::Mode::choose(cli.no_progress, cli.quiet);
    match &cli.cmd {
        Cmd::Verify { path, quick, model } => run_report(&cli, path, *quick, model, false, mode),
        Cmd::Inspect { path, model } => run_report(&cli, path, false, model, true, mode),
        Cmd::Extract {
            archive,
            store_dir,
            account,
            dry_run,
            allow_damaged,
            force,
            create,
            server_version,
        } => {
            let reporter = progress::Reporter::new(mode, "extract");
            let server_version = match server_version
                .as_deref()
                .map(jetdir::base::release::Release::parse)
                .transpose()
            {
                Ok(v) => v,
                Err(e) => return fail(cli.json, &e.to_string()),
            };
            let opts = jetdir::ops::extract::ExtractOptions {
                store_dir: store_dir.clone(),
                account: account.clone(),
                dry_run: *dry_run,
                allow_damaged: *allow_damaged,
                force: *force,
                create: *create,
                server_version,
            };
            match jetdir::ops::extract::extract(archive, &opts, &reporter) {
                Ok(r) => emit(cli.json, &r, || output::render_extract(&r), r.exit_code()),
                Err(e) => fail(cli.json, &format!("{e:#}")),
            }
        }
        Cmd::Pack {
            path,
            out,
            stream,
            account,
            format,
            all,
            allow_damaged,
            no_consumers,
            force,
            server_version,
        } => {
            let reporter = progress::Reporter::new(mode, "pack");
            let opts = jetdir::ops::pack::PackOptions {
                out: out.clone(),
                stream: stream.clone(),
                account: account.clone(),
                format: format.into(),
                all: *all,
                allow_damaged: *allow_damaged,
                no_consumers: *no_consumers,
                force: *force,
                server_version: *server_version,
            };
            match jetdir::ops::pack::pack(path, &opts, &reporter) {
                Ok(r) => emit(cli.json, &r, || output::render_pack(&r), r.exit_code()),
                Err(e) => fail(cli.json, &format!("{e:#}")),
            }
        }
        // ---- forensics (issue #12)
        Cmd::Dump(a) => cli::dump::run_dump(a, cli.json),
        Cmd::Kv(a) => cli::dump::run_kv(a, cli.json),
        Cmd::Object(a) => cli::dump::run_object(a, cli.json),
        // ---- end forensics
    }
}

/// Print a report as JSON or text and turn its exit code into the process's.
fn emit<T: serde::Serialize>(
    json: bool,
    r: &T,
    text: impl FnOnce() -> String,
    code: i32,
) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(r) {
            Ok(s) => out(&format!("{s}\n")),
            Err(e) => return fail(true, &e.to_string()),
        }
    } else {
        out(&text());
    }
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn run_report(
    cli: &Cli,
    path: &std::path::Path,
    quick: bool,
    model: &ModelArgs,
    inspect: bool,
    mode: progress::Mode,
) -> ExitCode {
    let reporter = progress::Reporter::new(mode, if inspect { "inspect" } else { "verify" });
    let target = match model.target() {
        Ok(t) => t,
        Err(e) => return fail(cli.json, &e),
    };
    let opts = verify::Options { quick, target };
    match jetdir::check::verify_path(path, &opts, &reporter) {
        Ok(r) => emit(
            cli.json,
            &r,
            || {
                if inspect {
                    output::render_inspect(&r)
                } else {
                    output::render_verify(&r)
                }
            },
            r.exit_code(),
        ),
        Err(e) => fail(cli.json, &format!("{e:#}")),
    }
}
