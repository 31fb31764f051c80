//! Report types shared by every command: a stream's state as found, its consumers and blocks,
//! the archive it came from, and the exit code derived from the findings.
use crate::base::problem::{Problem, Severity};
use serde::Serialize;
use std::collections::BTreeMap;

/// Kinds that mean "could not run" (exit code 2) rather than "damaged".
pub const FATAL_KINDS: &[&str] = &["encrypted_key_needed"];

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
    /// "index.db v4", "legacy .idx/.fss", or "none".
    pub index: String,
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
    /// 0 clean (warnings allowed), 1 problems found, 2 could not run.
    pub fn exit_code(&self) -> i32 {
        if self
            .problems
            .iter()
            .any(|p| FATAL_KINDS.contains(&p.kind.as_str()))
        {
            2
        } else if self.problems.iter().any(|p| p.severity == Severity::Error) {
            1
        } else {
            0
        }
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
