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
        /// Judge stream and consumer configs as this nats-server release loads them (e.g.
        /// 2.10.26); default: the release a config records, else the newest jetdir knows.
        #[arg(long, value_name = "VERSION", value_parser = parse_release)]
        server_version: Option<jetdir::base::release::Release>,
    },
    /// Report what is in a store: config, state, blocks, consumers, warnings.
    Inspect { path: PathBuf },
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
    },
}

fn fail(json: bool, msg: &str) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": false, "error": msg, "streams": [], "problems": []})
        );
    }
    eprintln!("jetdir: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = progress::Mode::choose(cli.no_progress, cli.quiet);
    match &cli.cmd {
        Cmd::Verify {
            path,
            quick,
            server_version,
        } => {
            let opts = verify::Options {
                quick: *quick,
                server_version: server_version.clone(),
            };
            run_report(&cli, path, &opts, false, mode)
        }
        Cmd::Inspect { path } => run_report(&cli, path, &Default::default(), true, mode),
        Cmd::Extract {
            archive,
            store_dir,
            account,
            dry_run,
            allow_damaged,
            force,
        } => {
            let reporter = progress::Reporter::new(mode, "extract");
            let opts = jetdir::ops::extract::ExtractOptions {
                store_dir: store_dir.clone(),
                account: account.clone(),
                dry_run: *dry_run,
                allow_damaged: *allow_damaged,
                force: *force,
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
            };
            match jetdir::ops::pack::pack(path, &opts, &reporter) {
                Ok(r) => emit(cli.json, &r, || output::render_pack(&r), r.exit_code()),
                Err(e) => fail(cli.json, &format!("{e:#}")),
            }
        }
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
            Ok(s) => println!("{s}"),
            Err(e) => return fail(true, &e.to_string()),
        }
    } else {
        print!("{}", text());
    }
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn parse_release(s: &str) -> Result<jetdir::base::release::Release, String> {
    jetdir::base::release::Release::parse(s).map_err(|e| e.to_string())
}

fn run_report(
    cli: &Cli,
    path: &std::path::Path,
    opts: &verify::Options,
    inspect: bool,
    mode: progress::Mode,
) -> ExitCode {
    let reporter = progress::Reporter::new(mode, if inspect { "inspect" } else { "verify" });
    match jetdir::check::verify_path(path, opts, &reporter) {
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
