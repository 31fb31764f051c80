//! Report types shared by every command: a stream's state as found, its consumers and blocks,
//! the archive it came from, and the exit code derived from the findings.
use crate::base::problem::{Problem, Severity};
use serde::Serialize;
use std::collections::BTreeMap;

/// A consumer as the server will load it (`CONSUMER.INFO`).
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerReport {
    /// Durable name (the `obs/<name>` directory).
    pub name: String,
    /// Whether the server loads this consumer at start (false: it logs an error and the
    /// stream has no such consumer; the numbers below are then what the files hold).
    pub loads: bool,
    /// Stream sequence of the last delivered message.
    pub delivered_stream_seq: Option<u64>,
    /// Stream sequence below which every message is acknowledged.
    pub ack_floor_stream_seq: Option<u64>,
    /// Messages delivered and not yet acknowledged: natscli's "Outstanding Acks"
    /// (`num_ack_pending`).
    #[serde(rename = "num_ack_pending")]
    pub pending: Option<u64>,
    /// Messages of the stream after the consumer's next sequence that match its filter:
    /// natscli's "Unprocessed" (`num_pending`, counted as the server's `NumPending`).
    pub num_pending: Option<u64>,
    /// Consumer sequence of the last delivery.
    pub delivered_consumer_seq: Option<u64>,
    /// Consumer sequence of the ack floor.
    pub ack_floor_consumer_seq: Option<u64>,
    /// Messages delivered more than once and still pending.
    pub redelivered: Option<u64>,
    /// `durable_name` of the consumer config.
    pub durable: Option<String>,
    /// `ack_policy` of the consumer config.
    pub ack_policy: Option<String>,
    /// `filter_subject` of the consumer config.
    pub filter_subject: Option<String>,
    /// Where the numbers come from: `o.dat`, or `deliver_policy` when there is no o.dat
    /// (the server starts the consumer from its deliver policy).
    pub state_from: Option<String>,
    /// o.dat's numbers when the load changes them (the numbers above are the server's after
    /// the load); absent when the server keeps o.dat as it is.
    pub on_disk: Option<ConsumerNumbers>,
}

impl Default for ConsumerReport {
    fn default() -> Self {
        ConsumerReport {
            name: String::new(),
            loads: true,
            delivered_stream_seq: None,
            ack_floor_stream_seq: None,
            pending: None,
            num_pending: None,
            delivered_consumer_seq: None,
            ack_floor_consumer_seq: None,
            redelivered: None,
            durable: None,
            ack_policy: None,
            filter_subject: None,
            state_from: None,
            on_disk: None,
        }
    }
}

/// A consumer's sequences as o.dat stores them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ConsumerNumbers {
    /// Stream sequence of the last delivered message.
    pub delivered_stream_seq: u64,
    /// Consumer sequence of the last delivery.
    pub delivered_consumer_seq: u64,
    /// Stream sequence below which every message is acknowledged.
    pub ack_floor_stream_seq: u64,
    /// Consumer sequence of the ack floor.
    pub ack_floor_consumer_seq: u64,
    /// Messages delivered and not yet acknowledged (`num_ack_pending`).
    #[serde(rename = "num_ack_pending")]
    pub pending: u64,
    /// Messages delivered more than once and still pending.
    pub redelivered: u64,
}

/// One message block (`msgs/<index>.blk`) as scanned.
#[derive(Debug, Clone, Serialize)]
pub struct BlockReport {
    /// Block number.
    pub index: u32,
    /// Path relative to the stream dir.
    pub file: String,
    /// Size of the file on disk.
    pub file_bytes: u64,
    /// Stored as an S2 `cmp` block.
    pub compressed: bool,
    /// Records of every kind.
    pub records: u64,
    /// Live messages.
    pub messages: u64,
    /// Stored bytes of the live messages.
    pub bytes: u64,
    /// First live sequence.
    pub first_seq: Option<u64>,
    /// Last live sequence.
    pub last_seq: Option<u64>,
    /// Tombstone records (deletes of messages in other blocks).
    pub tombstones: usize,
    /// Erased (overwritten) records.
    pub erased: usize,
}

/// How an encrypted stream was read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EncryptionReport {
    /// `chacha` or `aes`: the cipher its key files opened with; without a key, the one their
    /// sizes tell (72 bytes: chacha, 64: aes); `None` when unknown.
    pub cipher: Option<String>,
    /// `given` (a key opened the stream), `wrong` (nothing opened), `none` (no key given).
    pub key: String,
    /// Every encrypted file of the stream and its outcome.
    pub assets: Vec<EncryptedAsset>,
}

/// One encrypted file of a stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EncryptedAsset {
    /// Path relative to the stream dir.
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// `key`, `previous_key`, `other_cipher`, `corrupt`, `wrong_key`, `key_file_failed`,
    /// `key_needed`.
    pub outcome: String,
    /// The cipher that opened it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
}

/// A stream as the server will load it: its state (`STREAM.INFO`), consumers and files.
#[derive(Debug, Clone, Serialize, Default)]
pub struct StreamReport {
    /// Findings of this stream not listed, per kind; moved into [`Report::suppressed`] by
    /// [`Report::finish`].
    #[serde(skip)]
    pub suppressed: std::collections::BTreeMap<String, u64>,
    /// Account directory (`$G` without accounts).
    pub account: String,
    /// Stream directory name.
    pub name: String,
    /// Live messages.
    pub messages: Option<u64>,
    /// Stored bytes of the live messages.
    pub bytes: Option<u64>,
    /// First live sequence (last + 1 when empty).
    pub first_seq: Option<u64>,
    /// Highest sequence used.
    pub last_seq: Option<u64>,
    /// Sequences between first and last that are not live.
    pub deleted: Option<u64>,
    /// Distinct subjects of the live messages.
    pub subjects: Option<u64>,
    /// Message blocks.
    pub blocks: usize,
    /// Consumers, by name.
    pub consumers: Vec<ConsumerReport>,
    /// Time of the first live message, ns since the epoch; JSON also `first_time` (RFC 3339).
    #[serde(flatten, serialize_with = "first_time")]
    pub first_ts: Option<i64>,
    /// Time of the last live message, ns since the epoch; JSON also `last_time` (RFC 3339).
    #[serde(flatten, serialize_with = "last_time")]
    pub last_ts: Option<i64>,
    /// Encrypted at rest (read only with a key).
    pub encrypted: bool,
    /// Encrypted streams: the cipher, the key's fit and every encrypted file's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionReport>,
    /// Which index the stream has ("index.db v4", "legacy .idx/.fss", "none", …).
    pub index: IndexKind,
    /// Blocks stored as S2 `cmp` blocks.
    pub compressed_blocks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The stream config from `meta.inf` (or backup.json).
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    /// Every block, in order.
    pub block_list: Vec<BlockReport>,
    /// Deleted sequences (interior gaps), capped at 1000 entries for output.
    pub deleted_seqs: Vec<u64>,
    /// Live messages per subject.
    pub subject_counts: BTreeMap<String, u64>,
    /// Every file of the stream dir, relative to it.
    pub files: Vec<String>,
    /// What the server does with these files at load (the numbers above are its result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadReport>,
}

/// A time in ns since the epoch as two JSON fields: `<name>_ts` (the integer, exact) and
/// `<name>_time` (RFC 3339 with nanoseconds, for jq and people; `null` when unset or 0).
pub fn serialize_time<S: serde::Serializer>(
    name: &str,
    ns: Option<i64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry(&format!("{name}_ts"), &ns)?;
    let t = ns.filter(|&n| n != 0).map(crate::base::time::rfc3339_full);
    m.serialize_entry(&format!("{name}_time"), &t)?;
    m.end()
}

fn first_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    serialize_time("first", *ns, s)
}

fn last_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    serialize_time("last", *ns, s)
}

/// The load model's answer for one stream: how the server recovers it and what that costs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LoadReport {
    /// The verdict, first thing an operator reads.
    pub verdict: Verdict,
    /// The release modelled (`2.15.1`); `null` when neither given nor recorded in the files.
    pub release: Option<String>,
    /// Where `release` comes from: `--server-version`, `meta.inf _nats.ver`, or the index
    /// format (`index.db version 4: 2.14 or later`).
    pub release_from: Option<String>,
    /// The time of the load assumed for max_age, RFC 3339.
    pub at: String,
    /// `index.db` (read and trusted), `rebuild` (from the blocks) or `legacy` (2.9 files).
    pub recovery: String,
    /// Why the state is rebuilt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Sequences lost to damage (the server truncates a block), as inclusive ranges.
    pub lost: Vec<(u64, u64)>,
    /// How many messages `lost` covers.
    pub lost_messages: u64,
    /// Deleted sequences that come back (their delete markers were in a truncated part, or
    /// only the index knew them).
    pub revived: Vec<u64>,
    /// Messages the trusted index.db counts but whose records are damaged: the server answers
    /// "no message found" for them (inclusive ranges).
    pub unreadable: Vec<(u64, u64)>,
    /// Messages the stream's limits remove at load, per limit.
    pub removed: Vec<Removal>,
    /// The next step for the operator.
    pub next_step: Option<String>,
    /// Subject delete markers the server writes right after the load
    /// (`subject_delete_marker_ttl`: max_age emptied their subjects).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<MarkerReport>,
}

/// A subject delete marker the server appends after the load.
#[derive(Debug, Clone, Serialize)]
pub struct MarkerReport {
    /// Its sequence.
    pub seq: u64,
    /// The subject max_age emptied.
    pub subject: String,
    /// The expired message it replaces.
    pub replaces: u64,
}

/// Messages one limit removes at load.
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    /// The config field (`max_msgs`, `max_bytes`, `max_age`, `max_msgs_per_subject`).
    pub limit: String,
    /// Messages removed.
    pub messages: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// Removed sequences as inclusive ranges (at most 1000 ranges).
    pub ranges: Vec<(u64, u64)>,
}

/// What happens to a stream's data when the server loads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Loads as it is.
    #[default]
    Loads,
    /// The server repairs or rebuilds something without losing acknowledged data.
    Repaired,
    /// Acknowledged messages are lost.
    LosesData,
    /// The server does not load the stream.
    Skipped,
    /// Whether the server loads the stream depends on timing (streams of one account whose
    /// subjects overlap, recovered in parallel).
    MayNotLoad,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Loads => "loads",
            Verdict::Repaired => "repaired at load",
            Verdict::LosesData => "loses data",
            Verdict::Skipped => "not loaded",
            Verdict::MayNotLoad => "may not be loaded",
        })
    }
}

/// The result of `verify` or `inspect`: streams, findings and notes.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// No finding of severity error.
    pub ok: bool,
    /// Set when the input was a backup rather than a store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<crate::base::report::ArchiveInfo>,
    /// Every stream found.
    pub streams: Vec<StreamReport>,
    /// Every finding, in report order: at most
    /// [`MAX_PER_KIND`](crate::base::problem::MAX_PER_KIND) of each kind.
    pub problems: Vec<Problem>,
    /// Findings not listed, per kind: those beyond the first 100 of their kind.
    pub suppressed: std::collections::BTreeMap<String, u64>,
    /// Facts about the store that are not problems (clustered node, leftovers explained).
    pub notes: Vec<String>,
}

impl Report {
    /// Sort the findings into report order, keep the first 100 of each kind (counting the
    /// others in `suppressed`) and set `ok`.
    pub fn finish(&mut self) {
        for s in &mut self.streams {
            for (k, n) in std::mem::take(&mut s.suppressed) {
                *self.suppressed.entry(k).or_insert(0) += n;
            }
        }
        sort_problems(&mut self.problems);
        crate::base::problem::cap_per_kind(&mut self.problems, &mut self.suppressed);
        self.ok = !self.problems.iter().any(|p| p.severity == Severity::Error);
    }
    /// What the findings add up to.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(&self.problems)
    }
    /// 0 clean (warnings allowed), 1 problems found, 2 could not run.
    pub fn exit_code(&self) -> i32 {
        self.outcome().exit_code()
    }
}

/// The order of every report: account, stream, file, offset.
pub fn sort_problems(p: &mut [Problem]) {
    p.sort_by(|a, b| {
        (&a.loc.account, &a.loc.stream, &a.loc.file, a.loc.offset).cmp(&(
            &b.loc.account,
            &b.loc.stream,
            &b.loc.file,
            b.loc.offset,
        ))
    });
}

/// `archive` field of the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveInfo {
    /// "v1" | "v2" | "tgz" | "tar" | "account" (an account backup of several streams).
    pub format: String,
    /// The backup as given on the command line.
    pub path: String,
}

/// The index files a stream has; serialised as the text of today's JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexKind {
    /// `msgs/index.db` of this version (2.10+).
    IndexDb(u8),
    /// Per-block `.idx`/`.fss` files (2.9 and older).
    Legacy,
    /// No index file: the server rebuilds the state from the blocks.
    #[default]
    None,
    /// Encrypted and not read.
    Encrypted,
    /// A V2 (NATSARC1) archive: messages, no index.
    V2Archive,
}

impl std::fmt::Display for IndexKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexKind::IndexDb(v) => write!(f, "index.db v{v}"),
            IndexKind::Legacy => f.write_str("legacy .idx/.fss"),
            IndexKind::None => f.write_str("none"),
            IndexKind::Encrypted => f.write_str("encrypted"),
            IndexKind::V2Archive => f.write_str("none (V2 archive)"),
        }
    }
}

impl Serialize for IndexKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The result of any command, and so its exit code: the same three in every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing wrong (warnings allowed): exit code 0.
    #[default]
    Clean,
    /// The input is damaged or inconsistent: exit code 1.
    Damaged,
    /// The command could not run (bad arguments, encrypted without a key, a server holds the
    /// store, I/O failure): exit code 2.
    CouldNotRun,
}

impl Outcome {
    /// The outcome of a list of findings: the worst of them.
    pub fn of(problems: &[Problem]) -> Outcome {
        if problems.iter().any(|p| p.kind.is_fatal()) {
            Outcome::CouldNotRun
        } else if problems.iter().any(|p| p.severity == Severity::Error) {
            Outcome::Damaged
        } else {
            Outcome::Clean
        }
    }
    /// The process exit code: 0, 1 or 2.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Clean => 0,
            Outcome::Damaged => 1,
            Outcome::CouldNotRun => 2,
        }
    }
}

/// Inclusive sequence ranges as text, "46..60, 77", at most `max` ranges spelled out.
pub fn ranges_text(r: &[(u64, u64)], max: usize) -> String {
    let mut parts: Vec<String> = r
        .iter()
        .take(max)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..{b}")
            }
        })
        .collect();
    if r.len() > max {
        parts.push(format!("… ({} ranges)", r.len()));
    }
    parts.join(", ")
}

/// The version of the JSON document's schema (`schema/jetdir.schema.json`).
pub const SCHEMA_VERSION: u32 = 1;

/// The options of a run that change the meaning of its result, recorded in every JSON
/// document (`options`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunOptions {
    /// `--quick`: record checksums were not verified.
    pub quick: bool,
    /// The time of the load the verdicts are for (`--at`, default now), RFC 3339; `null` for
    /// commands without a load model (extract, pack).
    pub at: Option<String>,
    /// `--server-version`: the release the verdicts (or the output) are for; `null` when the
    /// release is taken from the files.
    pub server_version: Option<String>,
    /// extract `--dry-run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// extract / pack `--allow-damaged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_damaged: Option<bool>,
    /// extract / pack `--force`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// One JSON document of any command: what ran and with which options, its exit code, then
/// the command's own report (flattened) or, when it could not run, `error`.
#[derive(Debug, Serialize)]
pub struct Document<'a, T: Serialize> {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `verify`, `inspect`, `extract` or `pack`.
    pub command: &'a str,
    /// See [`RunOptions`].
    pub options: &'a RunOptions,
    /// The process exit code: 0 clean, 1 damaged input, 2 could not run.
    pub exit_code: i32,
    /// The command's report.
    #[serde(flatten)]
    pub body: &'a T,
}

/// The report of a run that could not start or failed (exit code 2).
#[derive(Debug, Serialize)]
pub struct ErrorReport {
    /// Always false.
    pub ok: bool,
    /// What went wrong, naming the file.
    pub error: String,
    /// Always empty.
    pub streams: Vec<StreamReport>,
    /// Always empty.
    pub problems: Vec<Problem>,
}

impl ErrorReport {
    /// The report of an error.
    pub fn new(error: impl Into<String>) -> Self {
        ErrorReport {
            ok: false,
            error: error.into(),
            streams: vec![],
            problems: vec![],
        }
    }
}
