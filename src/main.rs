//! Thin CLI over the jetdir library: parse arguments, call the library, print, exit.
use clap::{Parser, Subcommand};
use jetdir::{output, progress, verify};
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

#[derive(Subcommand)]
enum Cmd {
    /// Check every checksum and invariant of a store, account, stream dir or backup.
    Verify {
        path: PathBuf,
        /// Skip record checksums (structure and state only).
        #[arg(long)]
        quick: bool,
    },
    /// Report what is in a store: config, state, blocks, consumers, warnings.
    Inspect { path: PathBuf },
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
        Cmd::Verify { path, quick } => run_report(&cli, path, *quick, false, mode),
        Cmd::Inspect { path } => run_report(&cli, path, false, true, mode),
    }
}

fn run_report(
    cli: &Cli,
    path: &std::path::Path,
    quick: bool,
    inspect: bool,
    mode: progress::Mode,
) -> ExitCode {
    let reporter = progress::Reporter::new(mode, if inspect { "inspect" } else { "verify" });
    let opts = verify::Options { quick };
    let report = match verify::verify_store(path, &opts, &reporter) {
        Ok(r) => r,
        Err(e) => return fail(cli.json, &e.to_string()),
    };
    if cli.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(true, &e.to_string()),
        }
    } else if inspect {
        print!("{}", output::render_inspect(&report));
    } else {
        print!("{}", output::render_verify(&report));
    }
    ExitCode::from(report.exit_code() as u8)
}
