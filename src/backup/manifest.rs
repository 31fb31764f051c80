//! `manifest.json`: what `jetdir pack` wrote, so a backup can be checked later without the
//! source.
//!
//! Shape (pretty JSON, 2-space indent, trailing newline):
//! `{"manifest": "jetdir-pack/1", "tool", "tool_version", "created", "format", "source":
//! {"path", "host", "account", "stream"}, "server_version", "server_api_level", "stream":
//! {state}, "consumers": [...], "files": [{"path", "bytes", "sha256"}], "manifest_sha256"}`.
//!
//! `files[].path` is relative to the directory holding the manifest. `manifest_sha256` is the
//! SHA-256 of the manifest file's bytes with the 64 hex digits of that value replaced by 64
//! ASCII `0`s (so `sed 's/"manifest_sha256": "[0-9a-f]*"/"manifest_sha256": "000…"/' | sha256sum`
//! reproduces it).
use crate::base::problem::{Kind, Location, Problem};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const MANIFEST_NAME: &str = "manifest.json";
pub const MANIFEST_VERSION: &str = "jetdir-pack/1";
const SUM_KEY: &str = "\"manifest_sha256\": \"";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Source {
    pub path: String,
    pub host: Option<String>,
    pub account: String,
    pub stream: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub manifest: String,
    pub tool: String,
    pub tool_version: String,
    /// RFC 3339 UTC time the pack was made (the only field that differs between two packs of
    /// the same input).
    pub created: String,
    /// `v1`, `v2` or `tgz`.
    pub format: String,
    pub source: Source,
    /// `_nats.ver` / `_nats.level` from meta.inf's metadata, when the server recorded them.
    pub server_version: Option<String>,
    pub server_api_level: Option<String>,
    /// The stream state as packed (backup.json's `state` shape).
    pub stream: serde_json::Value,
    pub consumers: Vec<String>,
    pub files: Vec<FileEntry>,
    pub manifest_sha256: String,
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hash of a file, streaming.
pub fn sha256_file(p: &Path) -> std::io::Result<(u64, String)> {
    let mut f = fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(buf.get(..k).unwrap_or(&[]));
        n += k as u64;
    }
    Ok((n, hex(&h.finalize())))
}

/// Where the self-hash's 64 hex digits sit in the file, if present.
fn sum_span(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let at = bytes
        .windows(SUM_KEY.len())
        .rposition(|w| w == SUM_KEY.as_bytes())?;
    let start = at + SUM_KEY.len();
    let end = start + 64;
    (bytes.len() >= end).then_some(start..end)
}

/// SHA-256 of the manifest bytes with the self-hash zeroed.
pub fn self_hash(bytes: &[u8]) -> Option<String> {
    let span = sum_span(bytes)?;
    let mut b = bytes.to_vec();
    for c in b.get_mut(span)?.iter_mut() {
        *c = b'0';
    }
    Some(sha256_hex(&b))
}

impl Manifest {
    /// Serialize with the self-hash filled in.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = self.clone();
        m.manifest_sha256 = "0".repeat(64);
        let mut b = serde_json::to_vec_pretty(&m).unwrap_or_default();
        b.push(b'\n');
        if let (Some(span), Some(h)) = (sum_span(&b), self_hash(&b)) {
            if let Some(dst) = b.get_mut(span) {
                dst.copy_from_slice(h.as_bytes());
            }
        }
        b
    }
}

/// Find and check the manifest(s) of a pack output: a backup dir holding `manifest.json`, an
/// account-backup dir whose stream dirs hold one, a `.tgz` with `<file>.manifest.json` beside
/// it, or a manifest file itself. `None` when there is no manifest to check.
pub fn check_manifest(dir_or_file: &Path) -> Option<Vec<Problem>> {
    let mut found: Vec<PathBuf> = Vec::new();
    let p = dir_or_file;
    if p.is_dir() {
        if p.join(MANIFEST_NAME).is_file() {
            found.push(p.join(MANIFEST_NAME));
        } else {
            let mut subs: Vec<PathBuf> = fs::read_dir(p)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|s| s.is_dir() && s.join(MANIFEST_NAME).is_file())
                .collect();
            subs.sort();
            found.extend(subs.into_iter().map(|s| s.join(MANIFEST_NAME)));
        }
    } else if p.is_file() {
        let name = p.file_name()?.to_string_lossy().into_owned();
        if name == MANIFEST_NAME || name.ends_with(".manifest.json") {
            found.push(p.to_path_buf());
        } else {
            let side = p.with_file_name(format!("{name}.manifest.json"));
            if side.is_file() {
                found.push(side);
            }
        }
    }
    if found.is_empty() {
        return None;
    }
    let mut problems = Vec::new();
    for m in found {
        check_one(&m, &mut problems);
    }
    Some(problems)
}

/// `work` on this thread and [`check_manifest`] of `dir_or_file` beside it, on a thread of
/// its own: the check reads and hashes every file the manifest lists, which the work (a
/// verify or an extract of the same backup) leaves cores idle for. The manifest's findings
/// come back as the check's; a check that did not finish is a finding too.
pub fn check_manifest_beside<T>(
    dir_or_file: &Path,
    work: impl FnOnce() -> T,
) -> (T, Option<Vec<Problem>>) {
    std::thread::scope(|s| {
        let m = s.spawn(|| check_manifest(dir_or_file));
        let out = work();
        let m = m.join().unwrap_or_else(|_| {
            Some(vec![Problem::new(
                Kind::ManifestUnreadable,
                Location::default(),
                format!(
                    "{}: the manifest check did not finish",
                    dir_or_file.display()
                ),
            )])
        });
        (out, m)
    })
}

fn check_one(path: &Path, problems: &mut Vec<Problem>) {
    let mname = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = path.parent().unwrap_or(Path::new("."));
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            problems.push(Problem::new(
                Kind::ManifestUnreadable,
                Location {
                    file: Some(mname),
                    ..Default::default()
                },
                format!("cannot read {}: {e}", path.display()),
            ));
            return;
        }
    };
    let m: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            problems.push(Problem::new(
                Kind::ManifestUnreadable,
                Location {
                    file: Some(mname),
                    offset: Some(e.column() as u64),
                    ..Default::default()
                },
                format!("{} is not a jetdir pack manifest: {e}", path.display()),
            ));
            return;
        }
    };
    let loc = |file: &str| Location {
        account: Some(m.source.account.clone()),
        stream: Some(m.source.stream.clone()),
        file: Some(file.to_string()),
        ..Default::default()
    };
    match self_hash(&bytes) {
        Some(h) if h == m.manifest_sha256 => {}
        other => problems.push(Problem::new(
            Kind::ManifestChecksum,
            loc(&mname),
            format!(
                "manifest_sha256 {} does not match the manifest's content (computed {}): the manifest was edited or damaged",
                m.manifest_sha256,
                other.unwrap_or_else(|| "nothing: field missing".into())
            ),
        )),
    }
    let mut listed = std::collections::BTreeSet::new();
    for f in &m.files {
        listed.insert(f.path.clone());
        let rel = Path::new(&f.path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            problems.push(Problem::new(
                Kind::ManifestBadPath,
                loc(&f.path),
                "file path in the manifest leaves the backup directory",
            ));
            continue;
        }
        match sha256_file(&base.join(rel)) {
            Err(e) => problems.push(Problem::new(
                Kind::ManifestFileMissing,
                loc(&f.path),
                format!("listed in {mname} but cannot be read: {e}"),
            )),
            Ok((n, h)) => {
                if n != f.bytes || h != f.sha256 {
                    problems.push(Problem::new(
                        Kind::ManifestFileMismatch,
                        loc(&f.path),
                        format!(
                            "content differs from {mname}: {n} bytes sha256 {h}, the manifest says {} bytes sha256 {}",
                            f.bytes, f.sha256
                        ),
                    ));
                }
            }
        }
    }
    // A directory manifest covers every file of its directory.
    if mname == MANIFEST_NAME {
        let mut extra: Vec<String> = walkdir::WalkDir::new(base)
            .min_depth(1)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| {
                e.path()
                    .strip_prefix(base)
                    .ok()
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
            })
            .filter(|p| p != MANIFEST_NAME && !listed.contains(p))
            .collect();
        extra.sort();
        for x in extra {
            problems.push(Problem::new(
                Kind::ManifestExtraFile,
                loc(&x),
                format!("not listed in {mname} (added after the pack?)"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Manifest {
        fs::write(dir.join("a.bin"), b"hello").unwrap();
        let (n, h) = sha256_file(&dir.join("a.bin")).unwrap();
        Manifest {
            manifest: MANIFEST_VERSION.into(),
            tool: "jetdir".into(),
            tool_version: "0.1.0".into(),
            created: "2026-11-24T00:00:00Z".into(),
            format: "v1".into(),
            source: Source {
                path: "/x".into(),
                host: None,
                account: "$G".into(),
                stream: "S".into(),
            },
            server_version: None,
            server_api_level: None,
            stream: serde_json::json!({"messages": 1}),
            consumers: vec![],
            files: vec![FileEntry {
                path: "a.bin".into(),
                bytes: n,
                sha256: h,
            }],
            manifest_sha256: String::new(),
        }
    }

    #[test]
    fn self_hash_roundtrip_and_tamper() {
        let t = tempfile::tempdir().unwrap();
        let m = sample(t.path());
        assert_eq!(
            m.files[0].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let b = m.to_bytes();
        fs::write(t.path().join(MANIFEST_NAME), &b).unwrap();
        assert_eq!(check_manifest(t.path()), Some(vec![]));
        // the self-hash is over the bytes with the field zeroed
        let text = String::from_utf8(b.clone()).unwrap();
        let parsed: Manifest = serde_json::from_str(&text).unwrap();
        let zeroed = text.replace(&parsed.manifest_sha256, &"0".repeat(64));
        assert_eq!(sha256_hex(zeroed.as_bytes()), parsed.manifest_sha256);
        // an edited manifest
        fs::write(
            t.path().join(MANIFEST_NAME),
            text.replace("\"messages\": 1", "\"messages\": 2"),
        )
        .unwrap();
        let p = check_manifest(t.path()).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, "manifest_checksum");
        // a changed file and an extra one
        fs::write(t.path().join(MANIFEST_NAME), &b).unwrap();
        fs::write(t.path().join("a.bin"), b"hellO").unwrap();
        fs::write(t.path().join("b.bin"), b"x").unwrap();
        let p = check_manifest(t.path()).unwrap();
        let kinds: Vec<&str> = p.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds, vec!["manifest_file_mismatch", "manifest_extra_file"]);
        assert_eq!(p[0].loc.file.as_deref(), Some("a.bin"));
        fs::remove_file(t.path().join("a.bin")).unwrap();
        let p = check_manifest(t.path()).unwrap();
        assert_eq!(p[0].kind, "manifest_file_missing");
        // nothing to check
        let e = tempfile::tempdir().unwrap();
        assert_eq!(check_manifest(e.path()), None);
    }

    #[test]
    fn side_manifest_of_a_file() {
        let t = tempfile::tempdir().unwrap();
        let mut m = sample(t.path());
        fs::rename(t.path().join("a.bin"), t.path().join("S.tgz")).unwrap();
        m.files[0].path = "S.tgz".into();
        fs::write(t.path().join("S.tgz.manifest.json"), m.to_bytes()).unwrap();
        assert_eq!(check_manifest(&t.path().join("S.tgz")), Some(vec![]));
        fs::write(t.path().join("S.tgz"), b"other").unwrap();
        let p = check_manifest(&t.path().join("S.tgz")).unwrap();
        assert_eq!(p[0].kind, "manifest_file_mismatch");
    }
}
