//! The nats-server release a backup is meant for, and what its file store reads.
//!
//! From the nats-server source at each release tag (`server/filestore.go`):
//! - 2.9 keeps per-block `.idx`/`.fss` files and knows no `index.db`;
//! - `index.db` (`fullStateMagic` 11) is written as version 1 by 2.10, 2 by 2.11 (a per-block
//!   TTL count), 3 by 2.12 (a per-block schedule count), 4 by 2.14 (every subject's last
//!   block). 2.10 accepts only version 1; 2.11+ accept 1 up to their own version and log
//!   "Stream state magic and version mismatch" (then rebuild) for anything newer;
//! - `msgs/thw.db` (TTLs) exists from 2.11, `msgs/sched.db` (schedules) from 2.12,
//!   `sources.db` (source positions) from 2.15.
use crate::filestore::index_db;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A release `MAJOR.MINOR[.PATCH]` (a leading `v` and a `-suffix` are accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// 2.
    pub major: u32,
    /// The minor release (9 for 2.9).
    pub minor: u32,
    /// The patch release.
    pub patch: u32,
}

/// Why a `--server-version` value was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VersionError {
    /// Not MAJOR.MINOR[.PATCH].
    #[error("{0:?} is not a version MAJOR.MINOR[.PATCH] (e.g. 2.12.8)")]
    Malformed(String),
    /// Before 2.9, or not 2.x.
    #[error("nats-server {0} is not supported: pack writes for 2.9 and later 2.x releases")]
    Unsupported(String),
}

impl FromStr for ServerVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VersionError::Malformed(s.to_string());
        let core = s.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next().unwrap_or_default();
        let parts: Vec<&str> = core.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let num = |p: Option<&&str>| -> Result<u32, VersionError> {
            match p {
                None => Ok(0),
                Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                    t.parse().map_err(|_| bad())
                }
                Some(_) => Err(bad()),
            }
        };
        let v = ServerVersion {
            major: num(parts.first())?,
            minor: num(parts.get(1))?,
            patch: num(parts.get(2))?,
        };
        if v.major != 2 || v.minor < 9 {
            return Err(VersionError::Unsupported(s.to_string()));
        }
        Ok(v)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl ServerVersion {
    const fn new(major: u32, minor: u32) -> Self {
        ServerVersion {
            major,
            minor,
            patch: 0,
        }
    }

    /// The `index.db` version this release writes (and the newest it reads); `None` for 2.9,
    /// which has no `index.db`.
    pub fn index_db_version(self) -> Option<u8> {
        match self.minor {
            0..=9 if self.major == 2 => None,
            10 if self.major == 2 => Some(1),
            11 if self.major == 2 => Some(2),
            12 | 13 if self.major == 2 => Some(3),
            _ => Some(index_db::MAX_VERSION),
        }
    }

    /// The oldest release that writes `index.db` version `v`.
    pub fn writer_of_index_db(v: u8) -> Self {
        match v {
            0 | 1 => Self::new(2, 10),
            2 => Self::new(2, 11),
            3 => Self::new(2, 12),
            _ => Self::new(2, 14),
        }
    }

    /// 2.9: blocks with one record per sequence and `.idx` files.
    pub fn is_legacy(self) -> bool {
        self.index_db_version().is_none()
    }

    /// Reads `msgs/thw.db` (2.11+).
    pub fn reads_thw(self) -> bool {
        self >= Self::new(2, 11)
    }

    /// Reads `msgs/sched.db` (2.12+).
    pub fn reads_sched(self) -> bool {
        self >= Self::new(2, 12)
    }

    /// Reads `sources.db` (2.15+).
    pub fn reads_sources(self) -> bool {
        self >= Self::new(2, 15)
    }

    /// Restores a V2 (NATSARC1) backup (2.15+).
    pub fn restores_v2(self) -> bool {
        self >= Self::new(2, 15)
    }
}

/// Where the target of a stream came from (for the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    /// `--server-version`.
    Option,
    /// meta.inf's metadata `_nats.ver`.
    Metadata,
    /// The layout: legacy `.idx` files (2.9) or the index.db version.
    Layout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_map() {
        let v: ServerVersion = "2.12.8".parse().unwrap();
        assert_eq!((v.major, v.minor, v.patch), (2, 12, 8));
        assert_eq!(
            "v2.11".parse::<ServerVersion>().unwrap().to_string(),
            "2.11.0"
        );
        assert_eq!("2.15.1-beta.2".parse::<ServerVersion>().unwrap().minor, 15);
        for bad in ["", "2", "2.x.1", "2.10.1.4", "abc", "2..1"] {
            assert!(
                matches!(
                    bad.parse::<ServerVersion>(),
                    Err(VersionError::Malformed(_))
                ),
                "{bad}"
            );
        }
        for old in ["2.8.4", "1.4.0", "3.0.0"] {
            assert!(
                matches!(
                    old.parse::<ServerVersion>(),
                    Err(VersionError::Unsupported(_))
                ),
                "{old}"
            );
        }
        let idx = |s: &str| s.parse::<ServerVersion>().unwrap().index_db_version();
        assert_eq!(idx("2.9.10"), None);
        assert_eq!(idx("2.10.26"), Some(1));
        assert_eq!(idx("2.11.11"), Some(2));
        assert_eq!(idx("2.12.8"), Some(3));
        assert_eq!(idx("2.13.0"), Some(3));
        assert_eq!(idx("2.14.6"), Some(4));
        assert_eq!(idx("2.15.1"), Some(4));
        for v in 1..=4u8 {
            assert_eq!(
                ServerVersion::writer_of_index_db(v).index_db_version(),
                Some(v)
            );
        }
    }
}
