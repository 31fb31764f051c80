//! Thin CLI over the jetdir library: parse arguments, call the library, print, exit.
use clap::{CommandFactory, Parser, Subcommand};
mod cli;

use cli::{progress_bar as progress, render as output};
use jetdir::check as verify;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "jetdir",
    version,
    long_version = cli::about::LONG_VERSION,
    about = "Offline reader, verifier and backup tool for NATS JetStream file stores (stopped servers only)",
    after_help = cli::about::AFTER_HELP
)]
struct Cli {
    /// Print one JSON document on stdout instead of text.
    #[arg(short = 'j', long, global = true)]
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
    /// `nats stream backup` dir: backup.json + stream.tar.s2 (tar in S2)
    V1,
    /// `nats stream backup` dir with a NATSARC1 archive (2.15+)
    V2,
    /// one gzip tarball of the stream dir, for a stopped server
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
    #[command(after_help = cli::about::VERIFY_AFTER)]
    Verify {
        /// A store dir (holding jetstream/), the jetstream/ dir, an account dir, a stream dir,
        /// or a backup (nats stream/account backup dir, stream.tar.s2, .tgz, .tar).
        path: PathBuf,
        /// Skip record checksums (structure and state only).
        #[arg(long)]
        quick: bool,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Report what is in a store: config, state, blocks, consumers, warnings.
    #[command(after_help = cli::about::INSPECT_AFTER)]
    Inspect {
        /// A store, account or stream dir, or a backup (as for verify).
        path: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Write a backup (backup dir, stream.tar.s2, .tgz, .tar) into a stopped server's store dir.
    #[command(after_help = cli::about::EXTRACT_AFTER)]
    Extract {
        /// The backup: a nats stream backup dir (V1 or V2), a bare stream.tar.s2 (V2 with its
        /// backup.json beside it), a .tgz/.tar.gz or .tar of a stream dir, or a nats account
        /// backup dir.
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
        /// Override the running-server, owner and clustered-node refusals (with a warning).
        #[arg(short, long)]
        force: bool,
        /// Create the store dir when it does not exist (otherwise refused).
        #[arg(long)]
        create: bool,
        /// The nats-server release that will load the stream (configs are judged for it).
        #[arg(long, value_name = "X.Y.Z")]
        server_version: Option<String>,
        #[command(flatten)]
        rename: RenameArgs,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Pack a stream on disk into a backup that `nats stream restore` accepts.
    #[command(after_help = cli::about::PACK_AFTER)]
    Pack {
        /// A stream dir, or a store/account dir with --stream (or --all).
        path: PathBuf,
        /// Output: a backup directory (v1, v2, --all) or a .tgz file (tgz).
        #[arg(short, long)]
        out: PathBuf,
        /// The stream to pack when PATH is a store or account dir.
        #[arg(long, value_name = "NAME")]
        stream: Option<String>,
        /// The account of --stream / --all when PATH is a store dir (default $G).
        #[arg(long, value_name = "ACC")]
        account: Option<String>,
        /// v1: backup dir as `nats stream backup` writes it (tar in S2); v2: the same with a
        /// NATSARC1 archive (restores into 2.15+); tgz: one gzip tarball of the stream dir.
        #[arg(long, value_enum, default_value = "v1")]
        format: Format,
        /// Pack every stream of the account (`nats account backup` layout).
        #[arg(long)]
        all: bool,
        /// Pack even when verification finds damage (still exits 1).
        #[arg(long)]
        allow_damaged: bool,
        /// Leave the consumers out of the backup (stream data only).
        #[arg(long)]
        no_consumers: bool,
        /// Read a store even when a running server seems to hold it.
        #[arg(short, long)]
        force: bool,
        /// The nats-server release that will restore the backup (e.g. 2.12.8): index.db is
        /// written in the version it reads (none for 2.9) and thw.db / sched.db / sources.db
        /// only when it reads them. Default: the release that wrote each stream.
        #[arg(long, value_name = "X.Y.Z")]
        server_version: Option<jetdir::ops::pack::target::ServerVersion>,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        rename: RenameArgs,
    },
    // ---- cli branch (issue #11): check, completions, man ----
    /// Verify for monitoring: a Nagios status line or Prometheus metrics (like `nats server check`).
    #[command(after_help = cli::about::CHECK_AFTER)]
    Check {
        /// A store, account or stream dir, or a backup (as for verify).
        path: PathBuf,
        /// What to print on stdout (-j/--json means --format json).
        #[arg(long, value_enum, default_value = "nagios")]
        format: CheckFormat,
        /// Also write the Prometheus metrics to this file (for node_exporter's textfile
        /// collector: name it *.prom), staged, fsynced and renamed over the old one.
        #[arg(long, value_name = "FILE")]
        textfile: Option<PathBuf>,
        /// Skip record checksums (structure and state only).
        #[arg(long)]
        quick: bool,
        /// Exit with the Nagios plugin codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) instead
        /// of jetdir's (0 clean, 1 damaged, 2 could not run).
        #[arg(long)]
        nagios_exit_codes: bool,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Print shell completions (bash, zsh, fish) generated from the command definitions.
    #[command(after_help = cli::about::COMPLETIONS_AFTER)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff, section 1) generated from the command definitions.
    #[command(after_help = cli::about::MAN_AFTER)]
    Man,
    // ---- end cli branch ----
    // ---- forensics (issue #12): dump, kv, object; arguments and rendering in src/cli/dump.rs
    /// Print a stream's messages in sequence order, as the server would serve them (NDJSON with --json).
    Dump(cli::dump::DumpArgs),
    /// Read a KV bucket from disk: keys, get KEY, history KEY.
    Kv(cli::dump::KvArgs),
    /// Read an object-store bucket from disk: ls, get NAME -o FILE.
    Object(cli::dump::ObjectArgs),
    // ---- end forensics
    // ---- forensics2 (issue #12): diff, salvage, explain; arguments and rendering in
    // src/cli/forensics2.rs
    /// Compare two or more copies of a stream (nodes' store dirs, stream dirs, backups).
    Diff(cli::forensics2::DiffArgs),
    /// Write every good record of a stream, also past damage, as a clean stream dir or backup.
    Salvage(cli::forensics2::SalvageArgs),
    /// Tell what the server will do with each stream on start, in plain sentences.
    Explain(cli::forensics2::ExplainArgs),
    // ---- end forensics2
    // ---- rename (issue #13): rehome; --as/--subjects of extract and pack are RenameArgs
    /// Make a clustered node's stream dir ready for a standalone server (replicas 1, placement removed).
    #[command(after_help = REHOME_AFTER)]
    Rehome {
        /// The stream dir (`jetstream/<account>/streams/<stream>` of a stopped clustered node).
        stream_dir: PathBuf,
        /// Output: a stream dir (default) or a backup with --format.
        #[arg(short, long)]
        out: PathBuf,
        /// Write a backup instead of a stream dir (as pack: v1, v2, tgz).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Rehome even when verification finds damage (still exits 1).
        #[arg(long)]
        allow_damaged: bool,
        /// Read the stream even when a running server seems to hold its store.
        #[arg(short, long)]
        force: bool,
    },
    // ---- end rename
    // ---- cluster (issue #12, clustered nodes): arguments and rendering in src/cli/cluster.rs
    /// A clustered node's raft groups ($SYS/_js_) and the stream/consumer dirs a clustered
    /// server would delete at start as orphans.
    #[command(after_help = cli::cluster::CLUSTER_AFTER)]
    Cluster(cli::cluster::ClusterArgs),
    // ---- end cluster
}

// ---- cli branch (issue #11): value enums of check and completions ----
/// `--format` of `jetdir check`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CheckFormat {
    /// one Nagios plugin line: STATUS, summary, perfdata
    Nagios,
    /// Prometheus text exposition format
    Prometheus,
    /// the check result as one JSON document
    Json,
}

/// The shells of `jetdir completions`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Shell {
    /// bash (bash-completion)
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}
// ---- end cli branch ----

/// The keys of an encrypted store. Never a plain argument: a key on a command line is seen by
/// every user of the machine (ps, /proc) and kept in shell history.
#[derive(clap::Args)]
pub(crate) struct KeyArgs {
    /// Read an encrypted store with the server's JetStream `key`, read from FILE (one trailing
    /// line break is ignored); else from the JETDIR_KEY environment variable.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The server's `prev_key` (after a key rotation), read from FILE; else JETDIR_PREV_KEY.
    #[arg(long, value_name = "FILE")]
    prev_key_file: Option<PathBuf>,
    /// The server's `cipher` (default: try chacha, then aes, as the server does).
    #[arg(long, value_enum)]
    cipher: Option<CipherArg>,
    /// The account the stream of an encrypted tarball was written in: its keys are derived
    /// from the account and the stream name (default: the account in the tarball's paths,
    /// else $G, else the names of the dirs holding the tarball). Not a target: extract's and
    /// pack's --account say where a stream goes.
    #[arg(long, value_name = "ACC")]
    source_account: Option<String>,
}

/// `--cipher`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CipherArg {
    /// XChaCha20-Poly1305 (the server's default)
    Chacha,
    /// AES-256-GCM
    Aes,
}

impl KeyArgs {
    /// [`KeyArgs::ring`] for a command whose `--account` picks source streams (dump, kv,
    /// object, diff, salvage): that account is also tried for an encrypted tarball that does
    /// not name its own (`--source-account` still decides when given).
    pub(crate) fn ring_for(
        &self,
        account: Option<&str>,
    ) -> Result<jetdir::filestore::keys::KeyRing, String> {
        let mut r = self.ring()?;
        r.try_accounts.extend(account.map(str::to_string));
        Ok(r)
    }

    /// The key ring; an unreadable key file is an error naming the file (never its content).
    pub(crate) fn ring(&self) -> Result<jetdir::filestore::keys::KeyRing, String> {
        use jetdir::filestore::keys::{Cipher, KeyRing, ServerKey};
        let load =
            |file: &Option<PathBuf>, var: &str, flag: &str| -> Result<Option<ServerKey>, String> {
                let k = match file {
                    Some(f) => ServerKey::from_file_content(
                        &std::fs::read(f).map_err(|e| format!("{flag} {}: {e}", f.display()))?,
                    ),
                    None => match std::env::var_os(var) {
                        Some(v) => ServerKey::new(v.into_encoded_bytes()),
                        None => return Ok(None),
                    },
                };
                if k.is_empty() {
                    let from = file
                        .as_ref()
                        .map_or(var.to_string(), |f| f.display().to_string());
                    return Err(format!("{flag}: the key in {from} is empty"));
                }
                Ok(Some(k))
            };
        Ok(KeyRing {
            key: load(&self.key_file, "JETDIR_KEY", "--key-file")?,
            prev: load(&self.prev_key_file, "JETDIR_PREV_KEY", "--prev-key-file")?,
            cipher: self.cipher.map(|c| match c {
                CipherArg::Chacha => Cipher::ChaCha,
                CipherArg::Aes => Cipher::Aes,
            }),
            account: self.source_account.clone(),
            try_accounts: Vec::new(),
        })
    }
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
        model_target(self.at.as_deref(), self.server_version.as_deref())
    }
}

/// The load to model from `--at` (default now) and `--server-version` (default: the release
/// that wrote the files).
fn model_target(
    at: Option<&str>,
    server_version: Option<&str>,
) -> Result<jetdir::check::Target, String> {
    let mut t = jetdir::check::Target::default();
    if let Some(v) = server_version {
        t.release = Some(jetdir::base::release::Release::parse(v).map_err(|e| e.to_string())?);
    }
    if let Some(at) = at {
        t.at_ns = jetdir::base::time::parse_rfc3339(at).ok_or_else(|| {
            format!("--at {at:?}: not an RFC 3339 time (e.g. 2026-11-30T10:00:00Z)")
        })?;
    }
    Ok(t)
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

/// What ran, for the JSON document: the command and the options that change the result.
struct Run {
    json: bool,
    command: &'static str,
    options: jetdir::base::report::RunOptions,
}

fn fail(run: &Run, msg: &str) -> ExitCode {
    if run.json {
        let body = jetdir::base::report::ErrorReport::new(msg);
        let doc = jetdir::base::report::Document {
            schema_version: jetdir::base::report::SCHEMA_VERSION,
            command: run.command,
            options: &run.options,
            exit_code: 2,
            body: &body,
        };
        if let Ok(s) = serde_json::to_string_pretty(&doc) {
            out(&format!("{s}\n"));
        }
    }
    err(&format!("jetdir: {msg}"));
    ExitCode::from(2)
}

/// glibc's malloc raises its mmap threshold to the size of any mmapped chunk that is freed
/// (up to 32 MiB): once the first buffer of a big record (up to 32 MiB, a block, a rendered
/// or compared copy) is freed, the next ones come from the heap, whose freed pages stay
/// resident, so peak RSS grows by one big buffer per thread that ever held one (a 31 MiB
/// record: `dump` 77 MiB, `diff` 165 MiB). A fixed threshold keeps buffers of a real block's
/// size (8 MiB, plus up to 1 MiB) on the heap and gives those above 16 MiB back to the system
/// when freed. (The hot paths reuse their buffers, so the trim threshold, left at glibc's
/// default, costs no page faults per block.) With [`trim_heap`], the program's only `unsafe`: one libc call before any
/// thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: mallopt only sets a malloc parameter; called once, single-threaded, at start.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 16 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}

/// glibc's `malloc_trim(0)`: every arena's free pages go back to the system (the top of each
/// heap is cut, the free pages inside it are given up with `MADV_DONTNEED`). Registered with
/// the library ([`jetdir::base::heap`]), which calls it between the phases of a command.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim takes the arenas' locks itself and only releases free memory;
    // it is safe to call from any thread at any time.
    unsafe {
        malloc_trim(0);
    }
}

fn main() -> ExitCode {
    fixed_mmap_threshold();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    jetdir::base::heap::set_release(trim_heap);
    let cli = Cli::parse();
    let mode = progress::Mode::choose(cli.no_progress, cli.quiet);
    match &cli.cmd {
        Cmd::Verify {
            path,
            quick,
            model,
            keys,
        } => run_report(&cli, path, *quick, model, keys, false, mode),
        Cmd::Inspect { path, model, keys } => {
            run_report(&cli, path, false, model, keys, true, mode)
        }
        Cmd::Extract {
            archive,
            store_dir,
            account,
            dry_run,
            allow_damaged,
            force,
            create,
            server_version,
            rename,
            keys,
        } => {
            let reporter = progress::Reporter::new(mode, "extract");
            let run = Run {
                json: cli.json,
                command: "extract",
                options: jetdir::base::report::RunOptions {
                    server_version: server_version.clone(),
                    dry_run: Some(*dry_run),
                    allow_damaged: Some(*allow_damaged),
                    force: Some(*force),
                    ..Default::default()
                },
            };
            let server_version = match server_version
                .as_deref()
                .map(jetdir::base::release::Release::parse)
                .transpose()
            {
                Ok(v) => v,
                Err(e) => return fail(&run, &e.to_string()),
            };
            let opts = jetdir::ops::extract::ExtractOptions {
                store_dir: store_dir.clone(),
                account: account.clone(),
                dry_run: *dry_run,
                allow_damaged: *allow_damaged,
                force: *force,
                create: *create,
                server_version,
                rename: rename.rewrite(),
                keys: match keys.ring() {
                    Ok(k) => k,
                    Err(e) => return fail(&run, &e),
                },
            };
            match jetdir::ops::extract::extract(archive, &opts, &reporter) {
                Ok(r) => emit(&run, &r, || output::render_extract(&r), r.exit_code()),
                Err(e) => fail(&run, &format!("{e:#}")),
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
            keys,
            rename,
        } => {
            let reporter = progress::Reporter::new(mode, "pack");
            let run = Run {
                json: cli.json,
                command: "pack",
                options: jetdir::base::report::RunOptions {
                    server_version: server_version.map(|v| v.to_string()),
                    allow_damaged: Some(*allow_damaged),
                    force: Some(*force),
                    ..Default::default()
                },
            };
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
                keys: match keys.ring() {
                    Ok(k) => k,
                    Err(e) => return fail(&run, &e),
                },
                rename: rename.rewrite(),
            };
            match jetdir::ops::pack::pack(path, &opts, &reporter) {
                Ok(r) => emit(&run, &r, || output::render_pack(&r), r.exit_code()),
                Err(e) => fail(&run, &format!("{e:#}")),
            }
        }
        // ---- cli branch (issue #11) ----
        Cmd::Check {
            path,
            format,
            textfile,
            quick,
            nagios_exit_codes,
            model,
            keys,
        } => {
            let format = if cli.json { CheckFormat::Json } else { *format };
            // a monitoring run (cron, NRPE) prints its result only: no log lines on a
            // non-terminal stderr unless --no-progress asks for them
            let mode = if cli.no_progress || std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                mode
            } else {
                progress::Mode::Quiet
            };
            let opts = CheckOpts {
                format,
                textfile: textfile.as_deref(),
                quick: *quick,
                nagios_exit_codes: *nagios_exit_codes,
            };
            run_check(path, &opts, model, keys, mode)
        }
        Cmd::Completions { shell } => {
            out(&completions(*shell));
            ExitCode::SUCCESS
        }
        Cmd::Man => match man_page() {
            Ok(page) => {
                out(&page);
                ExitCode::SUCCESS
            }
            Err(e) => fail(
                &Run {
                    json: cli.json,
                    command: "man",
                    options: Default::default(),
                },
                &format!("cannot render the man page: {e}"),
            ),
        },
        // ---- end cli branch ----
        // ---- forensics (issue #12)
        // ---- rename (issue #13)
        Cmd::Rehome {
            stream_dir,
            out,
            format,
            allow_damaged,
            force,
        } => run_rehome(
            &cli,
            mode,
            stream_dir,
            out,
            format.as_ref(),
            *allow_damaged,
            *force,
        ),
        // ---- end rename
        Cmd::Dump(a) => cli::dump::run_dump(a, cli.json),
        Cmd::Kv(a) => cli::dump::run_kv(a, cli.json),
        Cmd::Object(a) => cli::dump::run_object(a, cli.json),
        // ---- end forensics
        // ---- forensics2 (issue #12)
        Cmd::Diff(a) => cli::forensics2::run_diff(a, cli.json),
        Cmd::Salvage(a) => cli::forensics2::run_salvage(a, cli.json, mode),
        Cmd::Explain(a) => cli::forensics2::run_explain(a, cli.json, mode),
        // ---- end forensics2
        // ---- cluster (issue #12)
        Cmd::Cluster(a) => cli::cluster::run_cluster(a, cli.json),
        // ---- end cluster
    }
}

/// Print a report as JSON or text and turn its exit code into the process's.
// ---- rename (issue #13): --as/--subjects, rehome ----
/// `--as NEW [--subjects S,...]` of extract and pack.
#[derive(clap::Args)]
struct RenameArgs {
    /// Write the stream under this name: every record checksum, meta.inf, meta.sum, index.db
    /// and consumer file rewritten for it (damage under the old name is not re-keyed).
    #[arg(long = "as", value_name = "NEW")]
    as_name: Option<String>,
    /// With --as: the new stream's subjects, comma-separated (when the old ones would clash
    /// with the original in the same account).
    #[arg(
        long,
        value_name = "S,...",
        value_delimiter = ',',
        requires = "as_name"
    )]
    subjects: Option<Vec<String>>,
}

impl RenameArgs {
    fn rewrite(&self) -> Option<jetdir::ops::rename::Rewrite> {
        self.as_name.as_ref().map(|n| jetdir::ops::rename::Rewrite {
            name: Some(n.clone()),
            subjects: self.subjects.clone(),
            rehome: false,
        })
    }
}

const REHOME_AFTER: &str = "\
Examples (the clustered node stopped):
  jetdir rehome '/data/n1/jetstream/$G/streams/ORDERS' -o /tmp/ORDERS
      then copy /tmp/ORDERS into the standalone server's jetstream/$G/streams/ and start it
  jetdir rehome '/data/n1/jetstream/$G/streams/ORDERS' --format tgz -o ORDERS.tgz
      then: jetdir extract ORDERS.tgz --store-dir <store_dir>

What changes: the stream's num_replicas becomes 1 and placement is removed (a standalone
server refuses a stream with more replicas), consumers' num_replicas above 1 become 0 (as the
stream); meta.sum is recomputed, everything else is copied as it is. The output is verified
before it is renamed into place.

Exit codes: 0 written; 1 the source is damaged (refused, or written with --allow-damaged);
2 could not run (not a stream dir, encrypted, OUT exists, a server holds the store).";

fn run_rehome(
    cli: &Cli,
    mode: progress::Mode,
    stream_dir: &std::path::Path,
    out: &std::path::Path,
    format: Option<&Format>,
    allow_damaged: bool,
    force: bool,
) -> ExitCode {
    let reporter = progress::Reporter::new(mode, "rehome");
    let run = Run {
        json: cli.json,
        command: "rehome",
        options: jetdir::base::report::RunOptions {
            allow_damaged: Some(allow_damaged),
            force: Some(force),
            ..Default::default()
        },
    };
    let opts = jetdir::ops::rehome::RehomeOptions {
        out: out.to_path_buf(),
        format: format.map(Into::into),
        allow_damaged,
        force,
    };
    match jetdir::ops::rehome::rehome(stream_dir, &opts, &reporter) {
        Ok(r) => emit(&run, &r, || render_rehome(&r), r.exit_code()),
        Err(e) => fail(&run, &format!("{e:#}")),
    }
}

fn render_rehome(r: &jetdir::ops::rehome::RehomeReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for p in &r.problems {
        let _ = writeln!(s, "{}", output::problem_line(p));
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if let Some(why) = &r.refused {
        let _ = writeln!(s, "refused: {why}\nnothing written");
        return s;
    }
    for st in &r.streams {
        let _ = writeln!(
            s,
            "rehomed {} > {} for a standalone server: {} messages, seqs {}..{}, {} consumer(s)",
            st.account,
            st.name,
            st.messages.unwrap_or(0),
            st.first_seq.unwrap_or(0),
            st.last_seq.unwrap_or(0),
            st.consumers.len()
        );
        for c in &st.changes {
            let _ = writeln!(s, "  {c}");
        }
    }
    let _ = writeln!(s, "wrote {} ({})", r.out, r.format);
    s
}
// ---- end rename ----

fn emit<T: serde::Serialize>(
    run: &Run,
    r: &T,
    text: impl FnOnce() -> String,
    code: i32,
) -> ExitCode {
    if run.json {
        let doc = jetdir::base::report::Document {
            schema_version: jetdir::base::report::SCHEMA_VERSION,
            command: run.command,
            options: &run.options,
            exit_code: code,
            body: r,
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => out(&format!("{s}\n")),
            Err(e) => return fail(run, &e.to_string()),
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
    keys: &KeyArgs,
    inspect: bool,
    mode: progress::Mode,
) -> ExitCode {
    let command = if inspect { "inspect" } else { "verify" };
    let reporter = progress::Reporter::new(mode, command);
    let mut run = Run {
        json: cli.json,
        command,
        options: jetdir::base::report::RunOptions {
            quick,
            server_version: model.server_version.clone(),
            ..Default::default()
        },
    };
    let target = match model.target() {
        Ok(t) => t,
        Err(e) => return fail(&run, &e),
    };
    run.options.at = Some(jetdir::base::time::rfc3339_full(target.at_ns));
    let at_ns = target.at_ns;
    let keys = match keys.ring() {
        Ok(k) => k,
        Err(e) => return fail(&run, &e),
    };
    let opts = verify::Options {
        quick,
        target,
        keys,
    };
    match jetdir::check::verify_path(path, &opts, &reporter) {
        Ok(r) => emit(
            &run,
            &r,
            || {
                if inspect {
                    output::render_inspect(&r, at_ns)
                } else {
                    output::render_verify(&r, at_ns)
                }
            },
            r.exit_code(),
        ),
        Err(e) => fail(&run, &format!("{e:#}")),
    }
}

// ---- cli branch (issue #11): check, completions, man ----

/// The options of `jetdir check` that shape its output.
struct CheckOpts<'a> {
    format: CheckFormat,
    textfile: Option<&'a std::path::Path>,
    quick: bool,
    nagios_exit_codes: bool,
}

/// `jetdir check`: verify, print the status in the chosen format, write the textfile.
fn run_check(
    path: &std::path::Path,
    opts: &CheckOpts,
    model: &ModelArgs,
    keys: &KeyArgs,
    mode: progress::Mode,
) -> ExitCode {
    use jetdir::ops::monitor;
    let reporter = progress::Reporter::new(mode, "check");
    let target = model.target().and_then(|t| keys.ring().map(|k| (t, k)));
    let at = target
        .as_ref()
        .ok()
        .map(|(t, _)| jetdir::base::time::rfc3339_full(t.at_ns));
    let result = match target {
        Ok((target, keys)) => {
            let vopts = verify::Options {
                quick: opts.quick,
                target,
                keys,
            };
            monitor::check(path, &vopts, &reporter)
        }
        Err(e) => monitor::could_not_run(
            path,
            opts.quick,
            &e,
            std::time::Duration::ZERO,
            jetdir::base::time::now_ns() / 1_000_000_000,
        ),
    };
    let mut code = if opts.nagios_exit_codes {
        result.status.nagios_exit_code()
    } else {
        result.exit_code
    };
    if let Some(file) = opts.textfile {
        if let Err(e) = monitor::write_textfile(file, &result.prometheus()) {
            err(&format!("jetdir: cannot write the textfile: {e}"));
            code = if opts.nagios_exit_codes { 3 } else { 2 };
        }
    }
    match opts.format {
        CheckFormat::Nagios => out(&result.nagios()),
        CheckFormat::Prometheus => out(&result.prometheus()),
        CheckFormat::Json => match serde_json::to_string_pretty(&jetdir::base::report::Document {
            schema_version: jetdir::base::report::SCHEMA_VERSION,
            command: "check",
            options: &jetdir::base::report::RunOptions {
                quick: opts.quick,
                at,
                server_version: model.server_version.clone(),
                ..Default::default()
            },
            exit_code: result.exit_code,
            body: &result,
        }) {
            Ok(s) => out(&format!("{s}\n")),
            Err(e) => {
                return fail(
                    &Run {
                        json: true,
                        command: "check",
                        options: Default::default(),
                    },
                    &e.to_string(),
                )
            }
        },
    }
    if let Some(e) = &result.error {
        err(&format!("jetdir: {e}"));
    }
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// `jetdir completions SHELL`: the completion script, generated from the clap definitions.
fn completions(shell: Shell) -> String {
    use clap_complete::{generate, shells};
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    match shell {
        Shell::Bash => generate(shells::Bash, &mut cmd, "jetdir", &mut buf),
        Shell::Zsh => generate(shells::Zsh, &mut cmd, "jetdir", &mut buf),
        Shell::Fish => generate(shells::Fish, &mut cmd, "jetdir", &mut buf),
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// `jetdir man`: one roff page, section 1, with every subcommand's usage, options and
/// examples (clap_mangen renders each command; the subcommands become sections of one page).
fn man_page() -> std::io::Result<String> {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title("JETDIR")
        .manual("jetdir manual")
        .render(&mut buf)?;
    // the subcommands are sections of this page, not pages of their own
    let mut main = String::from_utf8_lossy(&buf).into_owned();
    for sub in cmd.get_subcommands() {
        let n = sub.get_name();
        main = main.replace(&format!("jetdir\\-{n}(1)"), &format!("\\fBjetdir {n}\\fR"));
    }
    main = main.replace("jetdir\\-help(1)", "\\fBjetdir help\\fR");
    let mut buf = main.into_bytes();
    for sub in cmd.get_subcommands() {
        let name = format!("jetdir {}", sub.get_name());
        let mut page = Vec::new();
        // a subcommand's own page, without its title header, as a section of the main page
        clap_mangen::Man::new(
            sub.clone()
                .bin_name(name.clone())
                .display_name(name.clone()),
        )
        .render(&mut page)?;
        let page = String::from_utf8_lossy(&page);
        buf.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        for line in page.lines() {
            if line.starts_with(".TH ") || line.starts_with(".ie ") || line.starts_with(".el ") {
                continue;
            }
            // demote the sub-page's sections to subsections
            let line = match line.strip_prefix(".SH ") {
                Some(rest) => format!(".SS {rest}"),
                None => line.to_string(),
            };
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument and flag of every subcommand has help text (positional ones too).
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && !path.is_empty() {
                missing.push(format!("{path}: no about"));
            }
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in cmd.get_subcommands() {
                if s.get_name() == "help" {
                    continue;
                }
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        walk(&cmd, "", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
        // the walk sees what it should
        let verify = cmd.find_subcommand("verify").unwrap();
        assert!(verify.get_arguments().any(|a| a.get_id() == "path"));
    }

    /// natscli's short flags: -j/--json (global), -f/--force.
    #[test]
    fn natscli_short_flags() {
        let c = Cli::try_parse_from(["jetdir", "verify", "-j", "x"]).unwrap();
        assert!(c.json);
        for cmd in ["extract", "pack"] {
            let sub = Cli::command();
            let sub = sub.find_subcommand(cmd).unwrap();
            let f = sub.get_arguments().find(|a| a.get_id() == "force").unwrap();
            assert_eq!(f.get_short(), Some('f'), "{cmd}");
        }
    }

    /// The facts in `--version` are the library's.
    #[test]
    fn version_names_what_the_library_knows() {
        let v = cli::about::LONG_VERSION;
        let newest = jetdir::filestore::config_fields::newest_known();
        let newest = format!("{}.{}.{}", newest.major, newest.minor, newest.patch);
        assert!(v.contains(&newest), "{v}");
        assert!(
            v.contains(&format!(
                "index.db versions 1-{}",
                jetdir::filestore::INDEX_DB_MAX_VERSION
            )),
            "{v}"
        );
        assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
    }
}
// ---- end cli branch ----
