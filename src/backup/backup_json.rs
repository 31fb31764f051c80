//! `backup.json` as `nats stream backup` writes it: `{"config": StreamConfig, "state": StreamState}`.
//!
//! The CLI creates the file empty before the transfer and fills it only on success, so an empty
//! file means an interrupted backup. There is no version, checksum or format marker in it.
//! Unknown fields are kept (`extra`), so nothing a newer server writes is lost.
use crate::base::problem::Kind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;
use thiserror::Error;

/// Largest backup.json we are willing to read (real ones are about 1 KiB; the state's optional
/// `deleted`/`subjects` lists can make it larger, but never near this).
pub const MAX_BACKUP_JSON: u64 = 64 << 20;

/// The server's `StreamState` JSON (also the payload of a V2 archive's `state.json`).
/// Required: `messages`, `bytes`, `first_seq`, `last_seq`; everything else is optional, as the
/// server omits zero values of some fields (`num_deleted`, `num_subjects`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStateJson {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ts: Option<String>,
    pub last_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_subjects: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_deleted: Option<u64>,
    /// Absent means 0 for the server (Go zero value); kept as an Option so a reader can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_count: Option<u64>,
    /// Everything else (`deleted`, `subjects`, `lost`, future fields), in file order.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StreamStateJson {
    pub fn consumers(&self) -> u64 {
        self.consumer_count.unwrap_or(0)
    }
}

/// The parsed backup.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupJson {
    /// The stream config exactly as written (field order preserved).
    pub config: Map<String, Value>,
    pub state: StreamStateJson,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl BackupJson {
    /// `config.name`, when present and a string.
    pub fn stream_name(&self) -> Option<&str> {
        self.config.get("name").and_then(Value::as_str)
    }
    /// `config.max_msg_size` (-1 or absent = unlimited).
    pub fn max_msg_size(&self) -> Option<i64> {
        self.config
            .get("max_msg_size")
            .and_then(Value::as_i64)
            .filter(|v| *v >= 0)
    }
    #[cfg(test)]
    /// `config.storage`, when present.
    pub fn storage(&self) -> Option<&str> {
        self.config.get("storage").and_then(Value::as_str)
    }
}

#[derive(Debug, Error)]
pub enum BackupJsonError {
    #[error("backup.json is missing")]
    Missing,
    #[error("cannot read backup.json: {0}")]
    Io(#[from] std::io::Error),
    #[error("backup.json is empty (an interrupted `nats stream backup` leaves it empty)")]
    Empty,
    #[error("backup.json is {size} bytes, more than the {max} accepted")]
    TooLarge { size: u64, max: u64 },
    #[error(
        "backup.json is truncated (JSON ends early at line {line}, column {column}, byte {offset})"
    )]
    Truncated {
        line: usize,
        column: usize,
        offset: u64,
    },
    #[error(
        "backup.json is not valid JSON at line {line}, column {column} (byte {offset}): {msg}"
    )]
    Syntax {
        line: usize,
        column: usize,
        offset: u64,
        msg: String,
    },
    #[error("backup.json has an unexpected shape: {msg} (line {line}, column {column})")]
    Shape {
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("backup.json config has no stream name")]
    NoName,
}

impl BackupJsonError {
    /// Stable problem kind for reports.
    pub fn kind(&self) -> Kind {
        match self {
            BackupJsonError::Missing => Kind::BackupJsonMissing,
            BackupJsonError::Io(_) => Kind::BackupJsonUnreadable,
            BackupJsonError::Empty => Kind::BackupJsonEmpty,
            BackupJsonError::TooLarge { .. } => Kind::BackupJsonTooLarge,
            BackupJsonError::Truncated { .. } => Kind::BackupJsonTruncated,
            BackupJsonError::Syntax { .. } => Kind::BackupJsonInvalid,
            BackupJsonError::Shape { .. } | BackupJsonError::NoName => Kind::BackupJsonInvalid,
        }
    }
    /// Byte offset of a syntax problem, when known.
    pub fn offset(&self) -> Option<u64> {
        match self {
            BackupJsonError::Truncated { offset, .. } | BackupJsonError::Syntax { offset, .. } => {
                Some(*offset)
            }
            _ => None,
        }
    }
}

/// Byte offset of (line, column) in `src` (both 1-based as serde_json reports them).
fn offset_of(src: &[u8], line: usize, column: usize) -> u64 {
    let mut cur_line = 1usize;
    let mut line_start = 0usize;
    if line > 1 {
        for (i, b) in src.iter().enumerate() {
            if *b == b'\n' {
                cur_line += 1;
                if cur_line == line {
                    line_start = i + 1;
                    break;
                }
            }
        }
    }
    let off = line_start.saturating_add(column.saturating_sub(1));
    off.min(src.len()) as u64
}

/// Parse backup.json bytes. Whitespace-only counts as empty.
pub fn parse_backup_json(src: &[u8]) -> Result<BackupJson, BackupJsonError> {
    if src.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(BackupJsonError::Empty);
    }
    match serde_json::from_slice::<BackupJson>(src) {
        Ok(b) => {
            if b.stream_name().is_none_or(str::is_empty) {
                return Err(BackupJsonError::NoName);
            }
            Ok(b)
        }
        Err(e) => {
            let (line, column) = (e.line(), e.column());
            let offset = offset_of(src, line, column);
            Err(match e.classify() {
                serde_json::error::Category::Eof => BackupJsonError::Truncated {
                    line,
                    column,
                    offset,
                },
                serde_json::error::Category::Syntax => BackupJsonError::Syntax {
                    line,
                    column,
                    offset,
                    msg: e.to_string(),
                },
                serde_json::error::Category::Data => BackupJsonError::Shape {
                    line,
                    column,
                    msg: e.to_string(),
                },
                serde_json::error::Category::Io => BackupJsonError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                )),
            })
        }
    }
}

/// Read and parse `path` (normally `<dir>/backup.json`).
pub fn read_backup_json(path: &Path) -> Result<BackupJson, BackupJsonError> {
    let md = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupJsonError::Missing),
        Err(e) => return Err(e.into()),
    };
    if md.len() > MAX_BACKUP_JSON {
        return Err(BackupJsonError::TooLarge {
            size: md.len(),
            max: MAX_BACKUP_JSON,
        });
    }
    let src = std::fs::read(path)?;
    parse_backup_json(&src)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/samples/backups");

    #[test]
    fn real_backup_json_files() {
        for v in ["v2.15.1", "v2.14", "v2.9"] {
            let b =
                read_backup_json(Path::new(&format!("{SAMPLES}/{v}/ORDERS/backup.json"))).unwrap();
            assert_eq!(b.stream_name(), Some("ORDERS"));
            assert_eq!(b.storage(), Some("file"));
            assert_eq!(b.max_msg_size(), None);
            let s = &b.state;
            assert_eq!(
                (s.messages, s.bytes, s.first_seq, s.last_seq),
                (298, 31313, 1, 300)
            );
            assert_eq!(
                (s.num_deleted, s.num_subjects, s.consumer_count),
                (Some(2), Some(30), Some(2))
            );
            assert!(s
                .first_ts
                .as_deref()
                .unwrap()
                .starts_with("2026-11-24T01:24:"));
            assert!(s.extra.is_empty());
            assert!(b.extra.is_empty());
        }
        let b =
            read_backup_json(Path::new(&format!("{SAMPLES}/v2.15.1/ORDERS/backup.json"))).unwrap();
        assert_eq!(b.config.len(), 23);
        assert_eq!(b.config.keys().next().map(String::as_str), Some("name"));
        assert_eq!(b.config.get("metadata").unwrap()["_nats.req.level"], "0");
        let b9 =
            read_backup_json(Path::new(&format!("{SAMPLES}/v2.9/ORDERS/backup.json"))).unwrap();
        assert!(!b9.config.contains_key("compression"));
    }

    #[test]
    fn damaged_backup_json() {
        let real = std::fs::read(format!("{SAMPLES}/v2.14/ORDERS/backup.json")).unwrap();
        assert_eq!(real.len(), 921);
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_backup_json(&d.path().join("backup.json")),
            Err(BackupJsonError::Missing)
        ));
        assert!(matches!(
            parse_backup_json(b""),
            Err(BackupJsonError::Empty)
        ));
        assert!(matches!(
            parse_backup_json(b" \n"),
            Err(BackupJsonError::Empty)
        ));
        let e = parse_backup_json(&real[..500]).unwrap_err();
        assert_eq!(e.kind(), "backup_json_truncated");
        assert!(matches!(e, BackupJsonError::Truncated { .. }));
        let mut bad = real.clone();
        let colon = bad.iter().position(|b| *b == b':').unwrap();
        bad[colon] = b';';
        assert_eq!(
            parse_backup_json(&bad).unwrap_err().kind(),
            "backup_json_invalid"
        );
        // Missing the state's required fields.
        let e =
            parse_backup_json(br#"{"config":{"name":"X"},"state":{"messages":1}}"#).unwrap_err();
        assert!(matches!(e, BackupJsonError::Shape { .. }), "{e}");
        assert!(matches!(
            parse_backup_json(
                br#"{"config":{},"state":{"messages":0,"bytes":0,"first_seq":0,"last_seq":0}}"#
            ),
            Err(BackupJsonError::NoName)
        ));
        // Unknown fields are kept.
        let b = parse_backup_json(br#"{"config":{"name":"X","zz":1},"state":{"messages":0,"bytes":0,"first_seq":0,"last_seq":0,"lost":{"msgs":[1]}},"v":2}"#).unwrap();
        assert_eq!(b.config["zz"], 1);
        assert_eq!(b.state.extra["lost"]["msgs"][0], 1);
        assert_eq!(b.extra["v"], 2);
        assert_eq!(b.state.consumers(), 0);
        // Offset of a syntax error points into the text.
        let e = parse_backup_json(b"{\n  \"config\": x}").unwrap_err();
        assert_eq!(e.offset(), Some(14));
    }
}
