//! Texts of `--help` and `--version`: examples, the exit-code table, what jetdir knows.
//! Static, so clap can take them as `&'static str`; `src/main.rs`'s tests pin the facts in
//! them (newest release, index.db versions) against the library.

/// `jetdir --version`: the version, the commit and the formats jetdir reads and writes.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("JETDIR_GIT_COMMIT"),
    ")\n",
    "file stores: nats-server 2.9 (legacy .idx/.fss) to 2.15 (index.db versions 1-4), \
     S2-compressed blocks, consumers (o.dat); encrypted stores (chacha, aes) read with the key\n",
    "backups: nats stream backup V1 (tar in S2) and V2 (NATSARC1), bare stream.tar.s2, \
     .tgz/.tar.gz, .tar, nats account backup dirs; pack writes v1, v2 and tgz\n",
    "releases tested: nats-server 2.9.10 and every PyPI release 2.10.25 to 2.15.1 (load model, \
     encrypted stores, pack and extract, clusters; the test suite runs a sample of them); configs \
     judged up to 2.15.1"
);

/// After the top-level `--help`.
pub const AFTER_HELP: &str = concat!(
    "\
Examples:
  jetdir verify /var/lib/nats/store            every account, stream and consumer
  jetdir -j verify /backups/ORDERS             a nats stream backup, one JSON document
  jetdir inspect '/var/lib/nats/store/jetstream/$G/streams/ORDERS'
  jetdir extract /backups/ORDERS --store-dir /var/lib/nats   (server stopped)
  jetdir pack /var/lib/nats --stream ORDERS -o /backups/ORDERS
  jetdir check /backups/ORDERS --textfile /var/lib/node_exporter/jetdir.prom

",
    "\
Exit codes:
  0  clean: nothing wrong (warnings alone exit 0); extract/pack: written
  1  the input is damaged or inconsistent (any error finding); extract/pack: also when
     written with --allow-damaged
  2  could not run: usage, unreadable path, not a store or backup, encryption key needed,
     target refused (stream exists, a server holds the store, no room)"
);

/// After `jetdir verify --help`.
pub const VERIFY_AFTER: &str = "\
Examples:
  jetdir verify /var/lib/nats/store
  jetdir verify '/var/lib/nats/store/jetstream/$G/streams/ORDERS'
  jetdir verify --quick /var/lib/nats/store         structure and state, no record checksums
  jetdir verify /backups/ORDERS                     nats stream backup dir (V1 or V2)
  jetdir -j verify /backups/ORDERS.tgz
  jetdir verify --server-version 2.12.8 /var/lib/nats/store   what would 2.12 do with it?
  jetdir verify --key-file /etc/nats/js.key /var/lib/nats/store   an encrypted store
  JETDIR_KEY=\"$(cat /etc/nats/js.key)\" jetdir verify /var/lib/nats/store

Exit codes: 0 clean (warnings allowed), 1 damaged or inconsistent, 2 could not run.";

/// After `jetdir inspect --help`.
pub const INSPECT_AFTER: &str = "\
Examples:
  jetdir inspect '/var/lib/nats/store/jetstream/$G/streams/ORDERS'
  jetdir inspect /backups/ORDERS
  jetdir -j inspect /var/lib/nats/store | jq '.streams[].name'
  jetdir inspect --key-file /etc/nats/js.key /var/lib/nats/store   an encrypted store

Exit codes: 0 clean (warnings allowed), 1 damaged or inconsistent, 2 could not run.";

/// After `jetdir extract --help`.
pub const EXTRACT_AFTER: &str = "\
Examples (stop the server first):
  jetdir extract /backups/ORDERS --store-dir /var/lib/nats
  jetdir extract ORDERS.tgz --store-dir /var/lib/nats --account ACC --dry-run
  jetdir extract /backups/all --store-dir /var/lib/nats       a nats account backup
  jetdir extract /backups/ORDERS --store-dir /var/lib/nats --as ORDERS_COPY --subjects 'copy.>'
                                  under another name (every checksum rewritten), beside the original

Exit codes: 0 written (or --dry-run: would be); 1 the archive is damaged (refused, or written
with --allow-damaged); 2 refused or could not run (stream exists, store dir missing or at the
wrong level, a server serves it, owner, no room).";

/// After `jetdir pack --help`.
pub const PACK_AFTER: &str = "\
Examples:
  jetdir pack /var/lib/nats --stream ORDERS -o /backups/ORDERS     then: nats stream restore
  jetdir pack /var/lib/nats --all -o /backups/all                  then: nats account restore
  jetdir pack '/var/lib/nats/jetstream/$G/streams/ORDERS' --format tgz -o ORDERS.tgz
  jetdir pack /var/lib/nats --stream ORDERS --server-version 2.9.10 -o /backups/ORDERS-29
  jetdir pack /var/lib/nats --stream ORDERS --as ORDERS_COPY -o /backups/ORDERS_COPY
                                  restores as ORDERS_COPY (every checksum rewritten for the name)
  jetdir pack /var/lib/nats --stream ORDERS --key-file /etc/nats/js.key -o /backups/ORDERS
                                  an encrypted store: the backup is plaintext, as snapshots are

Exit codes: 0 written; 1 the source is damaged (refused, or written with --allow-damaged);
2 could not run (encrypted source without its key, a server serves the store, OUT exists or its dir is
missing or not writable).";

/// After `jetdir check --help`.
pub const CHECK_AFTER: &str = "\
Output (--format):
  nagios      one line: STATUS jetdir PATH: summary | perfdata (default)
  prometheus  text exposition format, as node_exporter's textfile collector reads it
  json        the check result as one JSON document (also with -j)
--textfile FILE also writes the Prometheus text to FILE (staged, fsynced, renamed over
the old file), whatever --format prints.

Status and exit codes (jetdir's own contract, not the Nagios plugin codes):
  OK        exit 0  clean, no warnings
  WARNING   exit 0  clean with warnings (or a stream the server repairs at load)
  CRITICAL  exit 1  damaged: a stream loses data, is not loaded, or another error
  UNKNOWN   exit 2  could not run (missing path, not a store or backup, key needed)
Nagios and Icinga take the state from the exit code (0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN); with --nagios-exit-codes jetdir exits with those instead.

Examples:
  jetdir check /backups/ORDERS
  jetdir check /var/lib/nats/store --quick --nagios-exit-codes     an NRPE command
  jetdir check /backups/ORDERS --format prometheus
  jetdir -q check /backups/ORDERS --textfile /var/lib/node_exporter/textfile/jetdir.prom";

/// After `jetdir completions --help`.
pub const COMPLETIONS_AFTER: &str = "\
Install:
  bash  jetdir completions bash > ~/.local/share/bash-completion/completions/jetdir
  zsh   jetdir completions zsh > ~/.zfunc/_jetdir   (with fpath+=~/.zfunc before compinit)
  fish  jetdir completions fish > ~/.config/fish/completions/jetdir.fish";

/// After `jetdir man --help`.
pub const MAN_AFTER: &str = "\
Install:
  jetdir man > ~/.local/share/man/man1/jetdir.1      then: man jetdir
  jetdir man | man -l -                              read it without installing";
