//! One finding type shared by every checker: human output, JSON and exit codes all come from here.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// Where a problem is. Every field is optional; absent ones print as JSON null.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    pub account: Option<String>,
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Path relative to the stream dir (e.g. `msgs/12.blk`), or `archive:member` inside archives.
    pub file: Option<String>,
    pub offset: Option<u64>,
    /// First (or only) sequence concerned.
    pub seq: Option<u64>,
    /// Last sequence of a range, when the problem covers one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_end: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Stable machine-readable kind, e.g. `record_checksum`, `meta_sum_mismatch`.
    pub kind: String,
    #[serde(flatten)]
    pub loc: Location,
    pub message: String,
}

impl Problem {
    pub fn error(kind: impl Into<String>, loc: Location, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            kind: kind.into(),
            loc,
            message: message.into(),
        }
    }
    pub fn warning(kind: impl Into<String>, loc: Location, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            kind: kind.into(),
            loc,
            message: message.into(),
        }
    }
}

impl Location {
    pub fn stream(account: &str, stream: &str) -> Self {
        Location {
            account: Some(account.into()),
            stream: Some(stream.into()),
            ..Default::default()
        }
    }
    pub fn file(mut self, f: impl Into<String>) -> Self {
        self.file = Some(f.into());
        self
    }
    pub fn at(mut self, off: u64) -> Self {
        self.offset = Some(off);
        self
    }
    pub fn seq(mut self, s: u64) -> Self {
        self.seq = Some(s);
        self
    }
    pub fn seqs(mut self, first: u64, last: u64) -> Self {
        self.seq = Some(first);
        if last != first {
            self.seq_end = Some(last);
        }
        self
    }
    pub fn consumer(mut self, c: impl Into<String>) -> Self {
        self.consumer = Some(c.into());
        self
    }
}
