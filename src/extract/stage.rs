//! Where extracted files go: a staging directory (real run) or nowhere (dry run, sizes only).
//!
//! Every path is relative to the stream directory and checked component by component, so no
//! file can be created outside the staging dir whatever the archive says. Files are created
//! with `O_EXCL` (mode 0600, dirs 0700 as the server uses), written, and fsynced; directories
//! are fsynced in [`Sink::finish`] before the staging dir is renamed into place.
use serde::Serialize;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Env var for crash tests: abort() the process after this many files were written.
pub const ABORT_ENV: &str = "JETDIR_TEST_ABORT_AFTER_FILES";

/// One file written (or, in a dry run, that would be written).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlannedFile {
    /// Relative to the stream dir, `/`-separated.
    pub path: String,
    pub bytes: u64,
}

pub struct Sink {
    /// `None` = dry run.
    root: Option<PathBuf>,
    dirs: BTreeSet<String>,
    pub files: Vec<PlannedFile>,
    abort_after: Option<usize>,
}

/// Check a relative path and return its components.
pub fn checked_components(rel: &str) -> io::Result<Vec<&str>> {
    let comps: Vec<&str> = rel.split('/').collect();
    let bad = comps
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == ".." || c.contains('\\') || c.contains('\0'));
    if bad || comps.is_empty() || rel.starts_with('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to write {rel:?}: not a plain relative path"),
        ));
    }
    Ok(comps)
}

impl Sink {
    /// A sink that writes into `root`, which must not exist yet (it is created here).
    pub fn staging(root: &Path) -> io::Result<Sink> {
        fs::DirBuilder::new().mode(0o700).create(root)?;
        let abort_after = std::env::var(ABORT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok());
        Ok(Sink {
            root: Some(root.to_path_buf()),
            dirs: BTreeSet::new(),
            files: Vec::new(),
            abort_after,
        })
    }

    /// A sink that only records what would be written.
    pub fn dry() -> Sink {
        Sink {
            root: None,
            dirs: BTreeSet::new(),
            files: Vec::new(),
            abort_after: None,
        }
    }

    pub fn is_dry(&self) -> bool {
        self.root.is_none()
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Create a directory (and its parents) under the root.
    pub fn dir(&mut self, rel: &str) -> io::Result<()> {
        let comps = checked_components(rel)?;
        let mut cur = String::new();
        for c in comps {
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(c);
            if self.dirs.contains(&cur) {
                continue;
            }
            if let Some(root) = &self.root {
                let p = root.join(&cur);
                match fs::DirBuilder::new().mode(0o700).create(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        // Only a directory we made ourselves can be there.
                        if !fs::symlink_metadata(&p)?.is_dir() {
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            self.dirs.insert(cur.clone());
        }
        Ok(())
    }

    fn open_new(&mut self, rel: &str) -> io::Result<Option<File>> {
        let comps = checked_components(rel)?;
        if let Some((_, parents)) = comps.split_last() {
            if !parents.is_empty() {
                self.dir(&parents.join("/"))?;
            }
        }
        match &self.root {
            None => Ok(None),
            Some(root) => OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(root.join(rel))
                .map(Some),
        }
    }

    fn done(&mut self, rel: &str, bytes: u64) {
        self.files.push(PlannedFile {
            path: rel.to_string(),
            bytes,
        });
        if let Some(n) = self.abort_after {
            if self.files.len() >= n && self.root.is_some() {
                eprintln!("jetdir: {ABORT_ENV}={n} reached, aborting");
                std::process::abort();
            }
        }
    }

    /// Write a whole file.
    pub fn write_file(&mut self, rel: &str, data: &[u8]) -> io::Result<()> {
        if let Some(mut f) = self.open_new(rel)? {
            f.write_all(data)?;
            f.sync_all()?;
        }
        self.done(rel, data.len() as u64);
        Ok(())
    }

    /// Copy a file from `r` (at most `limit` bytes are accepted; more is an error).
    pub fn copy_file(&mut self, rel: &str, r: &mut dyn Read, limit: u64) -> io::Result<u64> {
        let mut f = self.open_new(rel)?;
        let mut buf = vec![0u8; 64 << 10];
        let mut n: u64 = 0;
        loop {
            let k = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Keep the partial file listed: with --allow-damaged it stays.
                    if let Some(f) = f.as_mut() {
                        f.sync_all()?;
                    }
                    self.files.push(PlannedFile {
                        path: rel.to_string(),
                        bytes: n,
                    });
                    return Err(e);
                }
            };
            n += k as u64;
            if n > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{rel}: more than {limit} bytes"),
                ));
            }
            if let (Some(f), Some(chunk)) = (f.as_mut(), buf.get(..k)) {
                f.write_all(chunk)?;
            }
        }
        if let Some(f) = f.as_mut() {
            f.sync_all()?;
        }
        self.done(rel, n);
        Ok(n)
    }

    /// fsync every directory written (deepest first) and the root.
    pub fn finish(&self) -> io::Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        for d in self.dirs.iter().rev() {
            fsync_dir(&root.join(d))?;
        }
        fsync_dir(root)
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }
}

pub fn fsync_dir(p: &Path) -> io::Result<()> {
    File::open(p)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escaping_paths() {
        for bad in [
            "../x", "/abs", "a/../b", "a//b", "", ".", "a/./b", "a\\b", "x/",
        ] {
            assert!(checked_components(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            checked_components("obs/C1/o.dat").unwrap(),
            vec!["obs", "C1", "o.dat"]
        );
    }

    #[test]
    fn writes_files_and_dirs_inside_root_only() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("stage");
        let mut s = Sink::staging(&root).unwrap();
        s.write_file("meta.inf", b"{}").unwrap();
        s.write_file("obs/C1/o.dat", b"\x16\x02").unwrap();
        let mut r: &[u8] = b"abc";
        assert_eq!(s.copy_file("msgs/1.blk", &mut r, 10).unwrap(), 3);
        let mut r: &[u8] = b"abcdef";
        assert!(s.copy_file("msgs/2.blk", &mut r, 5).is_err());
        assert!(s.write_file("../evil", b"x").is_err());
        assert!(s.write_file("meta.inf", b"again").is_err(), "O_EXCL");
        s.finish().unwrap();
        assert_eq!(fs::read(root.join("obs/C1/o.dat")).unwrap(), b"\x16\x02");
        assert!(!tmp.path().join("evil").exists());
        assert_eq!(s.total_bytes(), 2 + 2 + 3);

        let mut d = Sink::dry();
        d.write_file("meta.inf", b"12345").unwrap();
        assert!(d.is_dry());
        assert_eq!(
            d.files,
            vec![PlannedFile {
                path: "meta.inf".into(),
                bytes: 5
            }]
        );
    }
}
