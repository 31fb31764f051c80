//! `jetdir object`: an object-store bucket read from disk as the clients see it. Bucket `B` is
//! stream `OBJ_B`; an object's metadata (JSON `ObjectInfo`: name, nuid, size, chunks, digest
//! `SHA-256=<base64url>`, deleted, …) is the latest message on `$O.B.M.<base64url(name)>`, its
//! bytes are the messages on `$O.B.C.<nuid>` in sequence order.
use super::{base64_decode, Event, Filter, StreamWalker};
use crate::base::problem::{Problem, Severity};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// An object's metadata as stored, with where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    /// Object name.
    pub name: String,
    /// The chunks' subject token.
    pub nuid: String,
    /// Size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// `SHA-256=<base64url>`.
    pub digest: String,
    /// Deleted (a tombstone metadata message).
    pub deleted: bool,
    /// Description, when set.
    pub description: Option<String>,
    /// A link to another object or bucket (`options.link`), when set.
    pub link: Option<serde_json::Value>,
    /// Time of the metadata message (ns).
    pub mtime_ns: i64,
    /// Sequence of the metadata message.
    pub meta_seq: u64,
    /// The metadata as stored.
    pub json: serde_json::Value,
}

impl ObjectInfo {
    fn parse(payload: &[u8], ts: i64, seq: u64) -> Option<ObjectInfo> {
        let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let link = v
            .get("options")
            .and_then(|o| o.get("link"))
            .filter(|l| !l.is_null())
            .cloned();
        Some(ObjectInfo {
            name: s("name"),
            nuid: s("nuid"),
            size: n("size"),
            chunks: n("chunks"),
            digest: s("digest"),
            deleted: v.get("deleted").and_then(|x| x.as_bool()).unwrap_or(false),
            description: v
                .get("description")
                .and_then(|x| x.as_str())
                .map(str::to_string),
            link,
            mtime_ns: ts,
            meta_seq: seq,
            json: v,
        })
    }

    /// The SHA-256 the metadata records, when it has a readable one.
    pub fn sha256(&self) -> Option<Vec<u8>> {
        let d = self
            .digest
            .strip_prefix("SHA-256=")
            .or_else(|| self.digest.strip_prefix("sha-256="))?;
        base64_decode(d).filter(|b| b.len() == 32)
    }
}

/// An object-store bucket on disk.
pub struct Bucket {
    /// Bucket name.
    pub name: String,
    walker: StreamWalker,
}

/// Open bucket `bucket` (stream `OBJ_<bucket>`) under `path`, in `account` when given.
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
        walker: super::open_bucket_stream(path, "OBJ_", bucket, account, target, keys)?,
    })
}

/// The result of [`Bucket::get`].
#[derive(Debug, Clone)]
pub struct GetResult {
    /// The object's metadata.
    pub info: ObjectInfo,
    /// Bytes reassembled from the chunks.
    pub bytes: u64,
    /// Chunks read.
    pub chunks: u64,
    /// SHA-256 of the bytes, base64url as the metadata spells it.
    pub digest: String,
    /// Size, chunk count and digest all match the metadata: the file was written.
    pub ok: bool,
    /// What does not match, for people.
    pub mismatch: Vec<String>,
    /// Where the file was written (only when `ok`).
    pub out: Option<PathBuf>,
    /// Findings about the bucket's stream.
    pub problems: Vec<Problem>,
}

impl Bucket {
    /// The stream's walker.
    pub fn walker(&self) -> &StreamWalker {
        &self.walker
    }

    /// Every object's latest metadata (deleted ones included, flagged), by name, with the
    /// findings of the walk.
    pub fn list(&self) -> anyhow::Result<(Vec<ObjectInfo>, Vec<Problem>)> {
        let filter = Filter {
            subject: Some(format!("$O.{}.M.>", self.name).into_bytes()),
            ..Default::default()
        };
        let mut latest: BTreeMap<Vec<u8>, ObjectInfo> = BTreeMap::new();
        let mut problems = Vec::new();
        self.walker.walk(&filter, &mut |ev| {
            match ev {
                Event::Finding(p) => problems.push(p.clone()),
                Event::Rendered(..) => {}
                Event::Msg(m) => match ObjectInfo::parse(m.payload, m.ts, m.seq) {
                    Some(i) => {
                        latest.insert(m.subject.to_vec(), i);
                    }
                    None => {
                        latest.remove(m.subject);
                    }
                },
            }
            ControlFlow::Continue(())
        })?;
        let mut v: Vec<ObjectInfo> = latest.into_values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((v, problems))
    }

    /// The latest metadata of `name` (deleted or not), or `None`.
    pub fn info(&self, name: &str) -> anyhow::Result<(Option<ObjectInfo>, Vec<Problem>)> {
        let (all, p) = self.list()?;
        Ok((all.into_iter().find(|i| i.name == name), p))
    }

    /// Reassemble object `name` into `out`: written to a staging file beside it, fsynced, and
    /// renamed into place only when size, chunk count and SHA-256 match the metadata
    /// (otherwise removed). Errors mean "could not run" (`out` exists, its dir is missing,
    /// I/O); `Ok(None)` means there is no such object (or it is deleted: the metadata comes
    /// back in the second element).
    pub fn get(
        &self,
        name: &str,
        out: &Path,
    ) -> anyhow::Result<(Option<GetResult>, Option<ObjectInfo>, Vec<Problem>)> {
        if out.exists() || out.symlink_metadata().is_ok() {
            anyhow::bail!(
                "{}: already exists (jetdir does not overwrite)",
                out.display()
            );
        }
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            anyhow::bail!("{}: no such directory", dir.display());
        }
        let (info, mut problems) = self.info(name)?;
        let Some(info) = info else {
            return Ok((None, None, problems));
        };
        if info.deleted {
            return Ok((None, Some(info), problems));
        }
        if let Some(l) = &info.link {
            anyhow::bail!("object {name:?} is a link ({l}): read the object it links to");
        }
        let file_name = out
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{}: not a file name", out.display()))?
            .to_string_lossy()
            .into_owned();
        let staging = dir.join(format!(".{file_name}.jetdir-object-{}", std::process::id()));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", staging.display()))?;
        let filter = Filter {
            subject: Some(format!("$O.{}.C.{}", self.name, info.nuid).into_bytes()),
            ..Default::default()
        };
        let mut h = Sha256::new();
        let (mut bytes, mut chunks) = (0u64, 0u64);
        let mut werr: Option<std::io::Error> = None;
        let walked = self.walker.walk(&filter, &mut |ev| {
            match ev {
                Event::Finding(p) => problems.push(p.clone()),
                Event::Rendered(..) => {}
                Event::Msg(m) => {
                    h.update(m.payload);
                    bytes += m.payload.len() as u64;
                    chunks += 1;
                    if let Err(e) = f.write_all(m.payload) {
                        werr = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        });
        let fin = match (walked, werr) {
            (Err(e), _) => Err(e),
            (_, Some(e)) => Err(anyhow::anyhow!("{}: cannot write: {e}", staging.display())),
            _ => f
                .sync_all()
                .map_err(|e| anyhow::anyhow!("{}: cannot fsync: {e}", staging.display())),
        };
        drop(f);
        if let Err(e) = fin {
            let _ = fs::remove_file(&staging);
            return Err(e);
        }
        let sha = h.finalize();
        let digest = format!("SHA-256={}", super::base64(&sha, true));
        let mut mismatch = Vec::new();
        if bytes != info.size {
            mismatch.push(format!(
                "size: the chunks hold {bytes} bytes, the metadata says {}",
                info.size
            ));
        }
        if chunks != info.chunks {
            mismatch.push(format!(
                "chunks: {chunks} found, the metadata says {}",
                info.chunks
            ));
        }
        match info.sha256() {
            Some(want) if want[..] == sha[..] => {}
            Some(_) => mismatch.push(format!(
                "digest: the bytes hash to {digest}, the metadata says {}",
                info.digest
            )),
            None => mismatch.push(format!(
                "digest: the metadata's digest {:?} is not a SHA-256",
                info.digest
            )),
        }
        let ok = mismatch.is_empty();
        let mut written = None;
        if ok {
            fs::rename(&staging, out).map_err(|e| {
                let _ = fs::remove_file(&staging);
                anyhow::anyhow!("{}: cannot rename into place: {e}", out.display())
            })?;
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            written = Some(out.to_path_buf());
        } else {
            let _ = fs::remove_file(&staging);
        }
        Ok((
            Some(GetResult {
                info: info.clone(),
                bytes,
                chunks,
                digest,
                ok,
                mismatch,
                out: written,
                problems: problems.clone(),
            }),
            Some(info),
            problems,
        ))
    }
}

/// Any error among `problems`.
pub fn has_errors(problems: &[Problem]) -> bool {
    problems.iter().any(|p| p.severity == Severity::Error)
}
