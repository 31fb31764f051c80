//! Report types shared by every command: a stream's state as found, its consumers and blocks,
//! the archive it came from, and the exit code derived from the findings.
use crate::base::problem::{Problem, Severity};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Default)]
pub struct ConsumerReport {
    pub name: String,
    pub delivered_stream_seq: Option<u64>,
    pub ack_floor_stream_seq: Option<u64>,
    /// Messages delivered and not yet acknowledged (`num_ack_pending`).
    pub pending: Option<u64>,
    pub delivered_consumer_seq: Option<u64>,
    pub ack_floor_consumer_seq: Option<u64>,
    pub redelivered: Option<u64>,
    pub durable: Option<String>,
    pub ack_policy: Option<String>,
    pub filter_subject: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockReport {
    pub index: u32,
    pub file: String,
    pub file_bytes: u64,
    pub compressed: bool,
    pub records: u64,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub tombstones: usize,
    pub erased: usize,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StreamReport {
    pub account: String,
    pub name: String,
    pub messages: Option<u64>,
    pub bytes: Option<u64>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub deleted: Option<u64>,
    pub subjects: Option<u64>,
    pub blocks: usize,
    pub consumers: Vec<ConsumerReport>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub encrypted: bool,
    /// Which index the stream has ("index.db v4", "legacy .idx/.fss", "none", …).
    pub index: IndexKind,
    pub compressed_blocks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    pub block_list: Vec<BlockReport>,
    /// Deleted sequences (interior gaps), capped at 1000 entries for output.
    pub deleted_seqs: Vec<u64>,
    pub subject_counts: BTreeMap<String, u64>,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub ok: bool,
    /// Set when the input was a backup rather than a store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<crate::base::report::ArchiveInfo>,
    pub streams: Vec<StreamReport>,
    pub problems: Vec<Problem>,
    /// Facts about the store that are not problems (clustered node, leftovers explained).
    pub notes: Vec<String>,
}

impl Report {
    pub fn finish(&mut self) {
        sort_problems(&mut self.problems);
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
