//! `jetdir kv`: a KV bucket read from disk as the clients see it. Bucket `B` is stream `KV_B`;
//! key `K` is subject `$KV.B.K`; the revision is the stream sequence. The latest message of a
//! key decides: a `KV-Operation: DEL` or `PURGE` header (or, from 2.11, a server-placed marker's
//! `Nats-Marker-Reason`: `MaxAge` / `Purge` = purge, `Remove` = delete) means the key has no
//! value.
use super::{Event, Filter, Headers, StreamWalker};
use crate::base::problem::{Problem, Severity};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;

/// What a revision of a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    /// A value.
    Put,
    /// Deleted (history kept).
    Del,
    /// Purged (history removed).
    Purge,
}

impl KvOp {
    /// `PUT`, `DEL`, `PURGE` (as `nats kv` prints them).
    pub fn as_str(self) -> &'static str {
        match self {
            KvOp::Put => "PUT",
            KvOp::Del => "DEL",
            KvOp::Purge => "PURGE",
        }
    }

    /// The operation a message's headers say.
    pub fn of_headers(raw: &[u8]) -> KvOp {
        if raw.is_empty() {
            return KvOp::Put;
        }
        let h = Headers::parse(raw);
        match h.get("KV-Operation") {
            Some("DEL") => return KvOp::Del,
            Some("PURGE") => return KvOp::Purge,
            _ => {}
        }
        match h.get("Nats-Marker-Reason") {
            Some("MaxAge") | Some("Purge") => KvOp::Purge,
            Some("Remove") => KvOp::Del,
            _ => KvOp::Put,
        }
    }
}

/// One revision of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The key.
    pub key: String,
    /// Revision (stream sequence).
    pub revision: u64,
    /// Time of the revision, ns since the epoch.
    pub created_ns: i64,
    /// What it is.
    pub op: KvOp,
    /// The value (empty for DEL/PURGE, and in key listings).
    pub value: Vec<u8>,
    /// Where it lies.
    pub file: String,
    /// Offset in that file.
    pub offset: u64,
}

/// A KV bucket on disk.
pub struct Bucket {
    /// The bucket name.
    pub name: String,
    walker: StreamWalker,
}

/// What a read found besides the entries: the findings about the bucket's stream.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// Findings handed out by the walk (damage, load decisions).
    pub problems: Vec<Problem>,
}

impl Findings {
    /// Any error finding.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

/// A key as the clients accept it: `[-/_=.a-zA-Z0-9]+`, not starting or ending with `.`.
pub fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with('.')
        && !k.ends_with('.')
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-/_=.".contains(&c))
}

/// A bucket name as the clients accept it: `[a-zA-Z0-9_-]+`.
pub fn valid_bucket(b: &str) -> bool {
    !b.is_empty()
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Open bucket `bucket` (stream `KV_<bucket>`) under `path` (any form jetdir reads), in
/// `account` when given. The load is modelled at `at_ns`.
pub fn open(
    path: &Path,
    bucket: &str,
    account: Option<&str>,
    target: &crate::check::Target,
) -> anyhow::Result<Bucket> {
    open_with_keys(
        path,
        bucket,
        account,
        target,
        &crate::filestore::keys::KeyRing::default(),
    )
}

/// [`open`] for a store that may be encrypted at rest: read through `keys`.
pub fn open_with_keys(
    path: &Path,
    bucket: &str,
    account: Option<&str>,
    target: &crate::check::Target,
    keys: &crate::filestore::keys::KeyRing,
) -> anyhow::Result<Bucket> {
    Ok(Bucket {
        name: bucket.to_string(),
        walker: super::open_bucket_stream(path, "KV_", bucket, account, target, keys)?,
    })
}

impl Bucket {
    fn prefix(&self) -> String {
        format!("$KV.{}.", self.name)
    }

    /// The stream's walker (its findings, its report).
    pub fn walker(&self) -> &StreamWalker {
        &self.walker
    }

    /// Every revision on `subject_filter`, oldest first; `keep_values` keeps the values.
    fn revisions(
        &self,
        subject_filter: &str,
        mut each: impl FnMut(KvEntry),
        keep_values: bool,
    ) -> anyhow::Result<Findings> {
        let filter = Filter {
            subject: Some(subject_filter.as_bytes().to_vec()),
            ..Default::default()
        };
        let prefix = self.prefix();
        let mut fnd = Findings::default();
        self.walker.walk(&filter, &mut |ev| {
            match ev {
                Event::Finding(p) => fnd.problems.push(p.clone()),
                Event::Rendered(..) => {}
                Event::Msg(m) => {
                    let subj = String::from_utf8_lossy(m.subject);
                    let key = subj.strip_prefix(&prefix).unwrap_or(&subj).to_string();
                    let op = KvOp::of_headers(m.headers);
                    each(KvEntry {
                        key,
                        revision: m.seq,
                        created_ns: m.ts,
                        op,
                        value: if keep_values && op == KvOp::Put {
                            m.payload.to_vec()
                        } else {
                            Vec::new()
                        },
                        file: m.file.to_string(),
                        offset: m.offset,
                    });
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(fnd)
    }

    fn key_subject(&self, key: &str) -> anyhow::Result<String> {
        if !valid_key(key) {
            anyhow::bail!("{key:?}: not a valid key (letters, digits and -/_=.)");
        }
        Ok(format!("{}{key}", self.prefix()))
    }

    /// The latest revision of `key`, as `nats kv get` shows it: `None` when the key never
    /// existed, or its latest revision is a delete or purge (`Some` with that op is returned
    /// as the second element for the message).
    pub fn get(&self, key: &str) -> anyhow::Result<(Option<KvEntry>, Findings)> {
        let subj = self.key_subject(key)?;
        let mut last: Option<KvEntry> = None;
        let f = self.revisions(&subj, |e| last = Some(e), true)?;
        Ok((last, f))
    }

    /// Every key with a value (latest revision a PUT), sorted, without values.
    pub fn keys(&self) -> anyhow::Result<(Vec<KvEntry>, Findings)> {
        let mut latest: BTreeMap<String, KvEntry> = BTreeMap::new();
        let f = self.revisions(
            &format!("{}>", self.prefix()),
            |e| {
                latest.insert(e.key.clone(), e);
            },
            false,
        )?;
        Ok((
            latest.into_values().filter(|e| e.op == KvOp::Put).collect(),
            f,
        ))
    }

    /// Every revision of `key` on disk, oldest first, with values.
    pub fn history(&self, key: &str) -> anyhow::Result<(Vec<KvEntry>, Findings)> {
        let subj = self.key_subject(key)?;
        let mut v = Vec::new();
        let f = self.revisions(&subj, |e| v.push(e), true)?;
        Ok((v, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_from_headers() {
        assert_eq!(KvOp::of_headers(b""), KvOp::Put);
        assert_eq!(
            KvOp::of_headers(b"NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"),
            KvOp::Del
        );
        assert_eq!(
            KvOp::of_headers(b"NATS/1.0\r\nKV-Operation: PURGE\r\nNats-Rollup: sub\r\n\r\n"),
            KvOp::Purge
        );
        assert_eq!(
            KvOp::of_headers(b"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\n\r\n"),
            KvOp::Purge
        );
        assert_eq!(
            KvOp::of_headers(b"NATS/1.0\r\nNats-Marker-Reason: Remove\r\n\r\n"),
            KvOp::Del
        );
        assert!(valid_key("a/b.c=d_e-f"));
        assert!(!valid_key("a.*"));
        assert!(!valid_key(".a"));
        assert!(valid_bucket("cfg_1-x"));
        assert!(!valid_bucket("a.b"));
    }
}
