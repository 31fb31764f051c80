//! Staged output, shared by `extract` and `pack`: nothing appears at its final name until it
//! is complete and durable.
//!
//! - Output is written under a "."-prefixed name next to the target, tagged with this
//!   process's pid ([`staging_path`]); the server ignores (and removes) "."-prefixed dirs in
//!   `streams/`, and a leftover names the run that made it ([`leftovers`], [`pid_is_jetdir`]:
//!   the pid liveness check before a leftover is removed).
//! - [`Stage`] writes a directory tree: every path is relative to the staging dir and checked
//!   component by component, so no file can be created outside it whatever an archive says.
//!   Files are created with `O_EXCL`, written and fsynced; [`Stage::commit`] fsyncs every
//!   directory, renames the staging dir to the target (never over an existing one) and
//!   fsyncs the target's parent. A dry-run `Stage` only lists what would be written.
//! - [`HashedFile`] is one big file written through a buffer, hashed as it goes and fsynced
//!   (in the background while it grows); [`commit_files`] links staged files to their final
//!   names (never replacing one) and fsyncs the parent.
//! - [`FileWriter`] writes whole files on a second thread, with direct I/O where possible.
//!
//! Every fsync, rename and link error is returned to the caller.
//!
//! Crash tests: in debug builds (which `cargo test` builds, the binary included), the env var
//! [`ABORT_ENV`] makes a real [`Stage`] abort the process after that many files. Release
//! builds never read it (`#[cfg(debug_assertions)]`).
use crate::backup::manifest;
use crate::ops::target_dir::{io_at, io_at_after};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Env var for crash tests (debug builds only): abort() the process after this many files
/// were written into a [`Stage`].
pub(crate) const ABORT_ENV: &str = "JETDIR_TEST_ABORT_AFTER_FILES";

/// The crash-test limit from [`ABORT_ENV`]; always `None` in release builds.
fn abort_after_from_env() -> Option<usize> {
    #[cfg(debug_assertions)]
    {
        std::env::var(ABORT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
    }
    #[cfg(not(debug_assertions))]
    {
        None
    }
}

/// Permissions of what a [`Stage`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Perms {
    /// Dirs 0700, files 0600: what the server uses for its store.
    Private,
    /// Dirs 0777, files 0666, less the umask: ordinary output (backups).
    Umask,
}

impl Perms {
    fn dir(self) -> u32 {
        match self {
            Perms::Private => 0o700,
            Perms::Umask => 0o777,
        }
    }
    fn file(self) -> u32 {
        match self {
            Perms::Private => 0o600,
            Perms::Umask => 0o666,
        }
    }
}

/// Where this process stages `target`: `.<stem><pid>` in the same directory.
pub(crate) fn staging_path(target: &Path, stem: &str) -> PathBuf {
    target.with_file_name(format!(".{stem}{}", std::process::id()))
}

/// Staging entries `.<stem><pid>` in `dir`, sorted: (path, pid of the run that made it).
pub(crate) fn leftovers(dir: &Path, stem: &str) -> Vec<(PathBuf, Option<u32>)> {
    let prefix = format!(".{stem}");
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let fname = e.file_name();
            let Some(f) = fname.to_str() else { continue };
            if let Some(pid) = f.strip_prefix(&prefix) {
                if pid.bytes().all(|b| b.is_ascii_digit()) {
                    out.push((e.path(), pid.parse().ok()));
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether `pid` is a live jetdir process (its leftovers are still being written).
pub(crate) fn pid_is_jetdir(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().starts_with("jetdir"))
        .unwrap_or(false)
}

/// Remove a leftover staging entry (a dir with everything in it, or a file).
pub(crate) fn remove_leftover(p: &Path) -> io::Result<()> {
    let is_dir = fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false);
    if is_dir {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}

/// The directory `p` is in (`.` for a bare relative name).
pub(crate) fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync a directory (its entries are durable afterwards).
pub(crate) fn fsync_dir(p: &Path) -> io::Result<()> {
    File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_at(p, None, e))
}

/// Directories created for the output (the parents of a staging dir that did not exist),
/// outermost first: fsynced into their parents on commit, removed again on failure.
#[derive(Debug, Default)]
pub(crate) struct CreatedDirs(Vec<PathBuf>);

impl CreatedDirs {
    /// Create `path` and its missing parents (mode 0700); remembers which were missing.
    pub(crate) fn create(path: &Path) -> io::Result<CreatedDirs> {
        let mut missing = Vec::new();
        let mut cur = Some(path);
        while let Some(p) = cur {
            if p.as_os_str().is_empty() || fs::symlink_metadata(p).is_ok() {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        missing.reverse();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| io_at(path, None, e))?;
        Ok(CreatedDirs(missing))
    }

    /// The dirs created, outermost first.
    pub(crate) fn dirs(&self) -> &[PathBuf] {
        &self.0
    }

    /// fsync the parent of every created dir, so the new dirs are durable.
    pub(crate) fn fsync(&self) -> io::Result<()> {
        for d in &self.0 {
            if let Some(p) = d.parent() {
                // a relative path's first component has the parent "" (= ".")
                fsync_dir(if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                })?;
            }
        }
        Ok(())
    }

    /// Remove the created dirs again (innermost first; only empty ones go).
    pub(crate) fn remove(&self) {
        for d in self.0.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

/// One file written into a [`Stage`] (or, in a dry run, that would be written).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlannedFile {
    /// Relative to the stream dir, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Why [`Stage::commit`] failed.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// The target appeared meanwhile; nothing was replaced.
    TargetExists,
    /// fsync of a staged dir or of the target's parent failed.
    Sync(io::Error),
    /// Renaming the staging dir to the target failed.
    Rename(io::Error),
    /// Linking a staged file to this target failed (the links made before were removed).
    Link(PathBuf, io::Error),
}

/// A staging directory being filled (or, `root == None`, a dry run that only lists files).
pub(crate) struct Stage {
    /// `None` = dry run.
    root: Option<PathBuf>,
    perms: Perms,
    dirs: BTreeSet<String>,
    pub(crate) files: Vec<PlannedFile>,
    abort_after: Option<usize>,
}

/// Check a relative path and return its components.
pub(crate) fn checked_components(rel: &str) -> io::Result<Vec<&str>> {
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

impl Stage {
    /// A stage that writes into `root`, which must not exist yet (it is created here).
    pub(crate) fn create(root: &Path, perms: Perms) -> io::Result<Stage> {
        fs::DirBuilder::new()
            .mode(perms.dir())
            .create(root)
            .map_err(|e| io_at(root, None, e))?;
        Ok(Stage {
            root: Some(root.to_path_buf()),
            perms,
            dirs: BTreeSet::new(),
            files: Vec::new(),
            abort_after: abort_after_from_env(),
        })
    }

    /// A stage that only records what would be written.
    pub(crate) fn dry() -> Stage {
        Stage {
            root: None,
            perms: Perms::Private,
            dirs: BTreeSet::new(),
            files: Vec::new(),
            abort_after: None,
        }
    }

    /// The staging dir (`None` in a dry run).
    pub(crate) fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    pub(crate) fn is_dry(&self) -> bool {
        self.root.is_none()
    }

    pub(crate) fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Create a directory (and its parents) under the root.
    pub(crate) fn dir(&mut self, rel: &str) -> io::Result<()> {
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
                match fs::DirBuilder::new().mode(self.perms.dir()).create(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        // Only a directory we made ourselves can be there.
                        if !fs::symlink_metadata(&p)
                            .map_err(|e| io_at(&p, None, e))?
                            .is_dir()
                        {
                            return Err(io_at(&p, None, e));
                        }
                    }
                    Err(e) => return Err(io_at(&p, None, e)),
                }
            }
            self.dirs.insert(cur.clone());
        }
        Ok(())
    }

    fn open_new(&mut self, rel: &str) -> io::Result<Option<File>> {
        let mode = self.perms.file();
        match self.prepare(rel)? {
            None => Ok(None),
            Some(path) => OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .map(Some)
                .map_err(|e| io_at(&path, None, e)),
        }
    }

    /// Check `rel`, create its parent dirs, and return where the file goes (`None` in a dry
    /// run). For a file written elsewhere (by a [`FileWriter`] or as a [`HashedFile`]); list
    /// it with [`Stage::planned`].
    pub(crate) fn prepare(&mut self, rel: &str) -> io::Result<Option<PathBuf>> {
        let comps = checked_components(rel)?;
        if let Some((_, parents)) = comps.split_last() {
            if !parents.is_empty() {
                self.dir(&parents.join("/"))?;
            }
        }
        Ok(self.root.as_ref().map(|root| root.join(rel)))
    }

    /// Create `rel` as a [`HashedFile`] (not in a dry run: that is an error).
    pub(crate) fn hashed_file(&mut self, rel: &str) -> io::Result<HashedFile> {
        let mode = self.perms.file();
        let path = self
            .prepare(rel)?
            .ok_or_else(|| io::Error::other(format!("{rel}: no file in a dry run")))?;
        HashedFile::create(&path, mode)
    }

    /// List a file of `bytes` bytes prepared with [`Stage::prepare`] (and written, or about to
    /// be, by a [`FileWriter`] or a [`HashedFile`]).
    pub(crate) fn planned(&mut self, rel: &str, bytes: u64) {
        self.done(rel, bytes);
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

    /// An I/O error on `rel`, naming its path in the stage.
    fn io_err(
        &self,
        rel: &str,
        needed: Option<u64>,
        written: Option<u64>,
        e: io::Error,
    ) -> io::Error {
        let p = match &self.root {
            Some(r) => r.join(rel),
            None => PathBuf::from(rel),
        };
        io_at_after(&p, needed, written, e)
    }

    /// Write a whole file.
    pub(crate) fn write_file(&mut self, rel: &str, data: &[u8]) -> io::Result<()> {
        if let Some(mut f) = self.open_new(rel)? {
            f.write_all(data)
                .and_then(|()| f.sync_all())
                .map_err(|e| self.io_err(rel, Some(data.len() as u64), None, e))?;
        }
        self.done(rel, data.len() as u64);
        Ok(())
    }

    /// Write a whole file given in parts (written one after the other, never joined).
    pub(crate) fn write_file_parts(&mut self, rel: &str, parts: &[&[u8]]) -> io::Result<()> {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if let Some(mut f) = self.open_new(rel)? {
            parts
                .iter()
                .try_for_each(|p| f.write_all(p))
                .and_then(|()| f.sync_all())
                .map_err(|e| self.io_err(rel, Some(len), None, e))?;
        }
        self.done(rel, len);
        Ok(())
    }

    /// Copy a file from `r` (at most `limit` bytes are accepted; more is an error).
    pub(crate) fn copy_file(&mut self, rel: &str, r: &mut dyn Read, limit: u64) -> io::Result<u64> {
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
                        f.sync_all()
                            .map_err(|e| self.io_err(rel, None, Some(n), e))?;
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
                f.write_all(chunk).map_err(|e| {
                    self.io_err(
                        rel,
                        (limit < u64::MAX).then_some(limit),
                        Some(n - k as u64),
                        e,
                    )
                })?;
            }
        }
        if let Some(f) = f.as_mut() {
            f.sync_all()
                .map_err(|e| self.io_err(rel, None, Some(n), e))?;
        }
        self.done(rel, n);
        Ok(n)
    }

    /// fsync every directory written (deepest first) and the root.
    pub(crate) fn finish(&self) -> io::Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        for d in self.dirs.iter().rev() {
            fsync_dir(&root.join(d))?;
        }
        fsync_dir(root)
    }

    /// Make the staged tree durable and move it to `target`: fsync every dir, refuse when
    /// `target` exists (a rename would replace an empty dir), rename, fsync the parent of
    /// `target`. Nothing to do in a dry run.
    pub(crate) fn commit(&self, target: &Path) -> Result<(), CommitError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        self.finish().map_err(CommitError::Sync)?;
        if fs::symlink_metadata(target).is_ok() {
            return Err(CommitError::TargetExists);
        }
        fs::rename(root, target).map_err(CommitError::Rename)?;
        fsync_dir(&parent_dir(target)).map_err(CommitError::Sync)
    }

    /// Remove the staging dir and everything in it (after a failure).
    pub(crate) fn discard(&self) {
        if let Some(root) = &self.root {
            let _ = fs::remove_dir_all(root);
        }
    }
}

/// A file being written: hashed as it goes, fsynced at the end. Written with `O_DIRECT` in
/// aligned 1 MiB pieces where the file system allows it (straight to the device: on this kind
/// of VM, copying a backup into the page cache and writing it back costs more CPU than
/// compressing it, and its fsync ran at a tenth of the disk's speed); otherwise buffered, and
/// a background thread flushes it to disk every [`SYNC_EVERY`] bytes, so the final fsync only
/// waits for the tail.
///
/// A direct write waits for the device. The pieces are written by a thread of their own
/// (started with the first full piece), [`DIRECT_IN_FLIGHT`] pieces at most, each at its
/// offset: the writing thread hashes and fills the next piece meanwhile, instead of hashing
/// and waiting for the disk in turn (pack's writer thread spent about as long waiting for
/// its 1 MiB direct writes as hashing them, on the path every byte of a backup takes).
pub(crate) struct HashedFile {
    path: PathBuf,
    out: Out,
    h: Sha256,
    n: u64,
    synced_at: u64,
    syncer: Option<std::thread::JoinHandle<io::Result<()>>>,
}

enum Out {
    Buffered(BufWriter<File>),
    Direct(Direct),
}

/// `O_DIRECT` output: `buf` holds what follows the `at` bytes handed to the writer.
struct Direct {
    buf: AlignedBuf,
    at: u64,
    /// The file and its fallback while no writer thread runs (see [`PieceWriter`]).
    files: Option<PieceWriter>,
    io: Option<DirectIo>,
}

/// The thread that writes full pieces, and the pieces it gives back once written.
struct DirectIo {
    tx: std::sync::mpsc::SyncSender<(AlignedBuf, u64)>,
    free: std::sync::mpsc::Receiver<AlignedBuf>,
    /// Pieces allocated for this file (at most [`DIRECT_IN_FLIGHT`] + 1).
    pieces: usize,
    handle: std::thread::JoinHandle<io::Result<PieceWriter>>,
}

/// Writes pieces at their offsets: with `O_DIRECT` while the device takes them whole; after
/// anything direct I/O does not take (an unusual error or short write), through the page
/// cache (`buffered`, the same file opened without `O_DIRECT`) from there on.
struct PieceWriter {
    path: PathBuf,
    direct: File,
    buffered: Option<File>,
}

impl PieceWriter {
    /// Write `data` at `off`. Only the `last` piece may have a length that is not a multiple
    /// of [`DIRECT_ALIGN`]: its unaligned end goes through the page cache.
    fn write(&mut self, data: &[u8], off: u64, last: bool) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut done = 0;
        if self.buffered.is_none() {
            let aligned = if last {
                data.len() / DIRECT_ALIGN * DIRECT_ALIGN
            } else {
                data.len()
            };
            done = write_direct_at(&self.direct, data.get(..aligned).unwrap_or_default(), off);
            if done == data.len() {
                return Ok(());
            }
            self.buffered = Some(OpenOptions::new().write(true).open(&self.path)?);
        }
        let g = self
            .buffered
            .as_ref()
            .ok_or_else(|| io::Error::other("no file"))?;
        g.write_all_at(data.get(done..).unwrap_or_default(), off + done as u64)
    }

    /// The file to fsync: the one the last bytes went through (one inode either way).
    fn into_file(self) -> File {
        self.buffered.unwrap_or(self.direct)
    }
}

/// Bytes written between background `fdatasync` calls.
const SYNC_EVERY: u64 = 64 << 20;

/// Bytes per direct write of a [`HashedFile`].
const DIRECT_PIECE: usize = 1 << 20;

/// Direct pieces handed to the writer thread and not yet written, at most.
const DIRECT_IN_FLIGHT: usize = 3;

impl HashedFile {
    /// Create `p` (it must not exist) with `mode` (less the umask).
    pub(crate) fn create(p: &Path, mode: u32) -> io::Result<HashedFile> {
        let open = |flags: i32| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(flags)
                .open(p)
        };
        let direct = match O_DIRECT {
            Some(flag) => match open(flag) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(io_at(p, None, e))
                }
                Err(_) => None, // no direct I/O on this file system
            },
            None => None,
        };
        let out = match direct {
            Some(f) => Out::Direct(Direct {
                buf: AlignedBuf::with_capacity(DIRECT_PIECE),
                at: 0,
                files: Some(PieceWriter {
                    path: p.to_path_buf(),
                    direct: f,
                    buffered: None,
                }),
                io: None,
            }),
            // Compressed frames are bigger than this and go straight to the file.
            None => Out::Buffered(BufWriter::with_capacity(
                64 << 10,
                open(0).map_err(|e| io_at(p, None, e))?,
            )),
        };
        Ok(HashedFile {
            path: p.to_path_buf(),
            out,
            h: Sha256::new(),
            n: 0,
            synced_at: 0,
            syncer: None,
        })
    }

    /// Starts a background `fdatasync` when enough was written and none is running.
    fn sync_in_background(&mut self) -> io::Result<()> {
        if self.n - self.synced_at < SYNC_EVERY {
            return Ok(());
        }
        let Out::Buffered(w) = &self.out else {
            return Ok(());
        };
        if let Some(h) = &self.syncer {
            if !h.is_finished() {
                return Ok(());
            }
        }
        let f = w.get_ref().try_clone()?;
        if let Some(h) = self.syncer.take() {
            join_sync(h)?;
        }
        self.syncer = Some(std::thread::spawn(move || f.sync_data()));
        self.synced_at = self.n;
        Ok(())
    }

    /// Flush, fsync, and return (bytes, sha256 hex).
    pub(crate) fn done(mut self) -> io::Result<(u64, String)> {
        let (path, n) = (self.path.clone(), self.n);
        let err = |e| io_at_after(&path, None, Some(n), e);
        if let Some(h) = self.syncer.take() {
            join_sync(h).map_err(err)?;
        }
        let f = match self.out {
            Out::Buffered(w) => w.into_inner().map_err(|e| err(e.into_error()))?,
            Out::Direct(d) => d.finish().map_err(err)?,
        };
        f.sync_all().map_err(err)?;
        Ok((self.n, manifest::hex(&self.h.finalize())))
    }
}

impl Direct {
    /// Hand the full piece to the writer thread (started on the first), and take an empty
    /// one: a written piece given back, a new one while fewer than [`DIRECT_IN_FLIGHT`] are
    /// out, else wait for the writer.
    fn hand_off(&mut self) -> io::Result<()> {
        if self.io.is_none() {
            let Some(mut files) = self.files.take() else {
                return Err(io::Error::other("direct writer already finished"));
            };
            let (tx, rx) = std::sync::mpsc::sync_channel::<(AlignedBuf, u64)>(DIRECT_IN_FLIGHT);
            let (back, free) = std::sync::mpsc::channel::<AlignedBuf>();
            let handle = std::thread::Builder::new()
                .name("jetdir-write".into())
                .spawn(move || {
                    for (piece, off) in rx {
                        files.write(piece.data(), off, false)?;
                        let _ = back.send(piece);
                    }
                    Ok(files)
                })?;
            self.io = Some(DirectIo {
                tx,
                free,
                pieces: 1,
                handle,
            });
        }
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| io::Error::other("no writer"))?;
        let next = match io.free.try_recv() {
            Ok(b) => b,
            Err(_) if io.pieces <= DIRECT_IN_FLIGHT => {
                io.pieces += 1;
                AlignedBuf::with_capacity(DIRECT_PIECE)
            }
            Err(_) => match io.free.recv() {
                Ok(b) => b,
                Err(_) => return Err(self.writer_failed()),
            },
        };
        let full = std::mem::replace(&mut self.buf, next);
        self.buf.reset();
        let len = full.data().len() as u64;
        let at = self.at;
        if io.tx.send((full, at)).is_err() {
            return Err(self.writer_failed());
        }
        self.at += len;
        Ok(())
    }

    /// The writer thread stopped early: its error.
    fn writer_failed(&mut self) -> io::Error {
        match self.io.take() {
            Some(io) => {
                drop(io.tx);
                match io.handle.join() {
                    Ok(Err(e)) => e,
                    Ok(Ok(_)) => io::Error::other("the writer thread stopped"),
                    Err(_) => io::Error::other("the writer thread panicked"),
                }
            }
            None => io::Error::other("no writer thread"),
        }
    }

    /// Write what is left (the last piece, its unaligned end through the page cache) after
    /// every piece handed off, and return the file to fsync.
    fn finish(mut self) -> io::Result<File> {
        let mut files = match self.io.take() {
            Some(io) => {
                drop(io.tx);
                match io.handle.join() {
                    Ok(r) => r?,
                    Err(_) => return Err(io::Error::other("the writer thread panicked")),
                }
            }
            None => self
                .files
                .take()
                .ok_or_else(|| io::Error::other("direct writer already finished"))?,
        };
        if !self.buf.data().is_empty() {
            files.write(self.buf.data(), self.at, true)?;
        }
        Ok(files.into_file())
    }
}

fn join_sync(h: std::thread::JoinHandle<io::Result<()>>) -> io::Result<()> {
    h.join()
        .unwrap_or_else(|_| Err(io::Error::other("fsync thread panicked")))
}

impl Write for HashedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = match &mut self.out {
            Out::Buffered(w) => w
                .write(buf)
                .map_err(|e| io_at_after(&self.path, None, Some(self.n), e))?,
            Out::Direct(d) => {
                let room = DIRECT_PIECE.saturating_sub(d.buf.data().len());
                let k = room.min(buf.len());
                d.buf
                    .buf
                    .extend_from_slice(buf.get(..k).unwrap_or_default());
                k
            }
        };
        self.h.update(buf.get(..k).unwrap_or(&[]));
        self.n += k as u64;
        if let Out::Direct(d) = &mut self.out {
            if d.buf.data().len() >= DIRECT_PIECE {
                d.hand_off()
                    .map_err(|e| io_at_after(&self.path, None, Some(self.n), e))?;
            }
        }
        self.sync_in_background()
            .map_err(|e| io_at_after(&self.path, None, Some(self.n), e))?;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Out::Buffered(w) => w
                .flush()
                .map_err(|e| io_at_after(&self.path, None, Some(self.n), e)),
            // direct pieces go out whole (aligned); `done` writes the tail
            Out::Direct(_) => Ok(()),
        }
    }
}

/// Give staged files (each `(staged, target)`, all in one directory) their final names:
/// hard links never replace an existing name; on an error the links made are removed again.
/// Then the staged names go and the directory is fsynced.
pub(crate) fn commit_files(pairs: &[(&Path, &Path)]) -> Result<(), CommitError> {
    for (i, (staged, target)) in pairs.iter().enumerate() {
        if let Err(e) = fs::hard_link(staged, target) {
            for (_, t) in pairs.iter().take(i) {
                let _ = fs::remove_file(t);
            }
            return Err(CommitError::Link(target.to_path_buf(), e));
        }
    }
    for (staged, _) in pairs {
        // Both names are the complete file now; a staged name left behind is only clutter.
        let _ = fs::remove_file(staged);
    }
    if let Some((_, t)) = pairs.first() {
        fsync_dir(&parent_dir(t)).map_err(CommitError::Sync)?;
    }
    Ok(())
}

/// Alignment of buffer address, file offset and length for direct I/O (covers 512-byte and
/// 4 KiB sectors).
pub(crate) const DIRECT_ALIGN: usize = 4096;

// `O_DIRECT` (no libc dependency for one constant): its value differs between architectures.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const O_DIRECT: Option<i32> = Some(0o40000);
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
const O_DIRECT: Option<i32> = Some(0o200000);
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
const O_DIRECT: Option<i32> = None;

/// Create `path` (it must not exist; mode 0600), write `data` and fsync it.
///
/// When `data` starts at a [`DIRECT_ALIGN`]-aligned address, its aligned part is written with
/// `O_DIRECT`: straight from the buffer to the device, without copying it into the page cache
/// (on a VM that copy, and the page allocation behind it, costs more than the disk write).
/// The unaligned tail, and everything when the file system refuses direct I/O, goes through
/// the page cache. Either way the file is complete and fsynced when this returns `Ok`.
pub(crate) fn write_new_file(path: &Path, data: &[u8]) -> io::Result<()> {
    write_new_file_inner(path, data).map_err(|e| io_at(path, Some(data.len() as u64), e))
}

fn write_new_file_inner(path: &Path, data: &[u8]) -> io::Result<()> {
    let aligned = data.len() / DIRECT_ALIGN * DIRECT_ALIGN;
    let direct_ok = aligned > 0 && (data.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN);
    if let (Some(flag), true) = (O_DIRECT, direct_ok) {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(flag)
            .open(path)
        {
            Ok(f) => {
                // the aligned part direct, the tail (or all of it, if direct writes
                // failed) through the page cache
                let mut w = PieceWriter {
                    path: path.to_path_buf(),
                    direct: f,
                    buffered: None,
                };
                w.write(data, 0, true)?;
                return w.into_file().sync_all();
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
            Err(_) => {} // no direct I/O on this file system: the ordinary way
        }
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Write `data` at the file offset `off` (`pwrite`) through an `O_DIRECT` handle: how much the
/// device took (it stops at an error or at a write that ends off the alignment).
fn write_direct_at(f: &File, data: &[u8], off: u64) -> usize {
    use std::os::unix::fs::FileExt;
    let mut done = 0usize;
    while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
        match f.write_at(rest, off + done as u64) {
            Ok(0) => break,
            Ok(k) => {
                done += k;
                if !done.is_multiple_of(DIRECT_ALIGN) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    done
}

/// A buffer whose bytes from `start` on begin at a [`DIRECT_ALIGN`]-aligned address (when the
/// allocation allows), so [`write_new_file`] can write it directly.
pub(crate) struct AlignedBuf {
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
}

impl AlignedBuf {
    /// Room for `cap` bytes after the alignment padding.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        let mut b = AlignedBuf {
            buf: Vec::with_capacity(cap + DIRECT_ALIGN),
            start: 0,
        };
        b.reset();
        b
    }

    /// Empty it (keeping the allocation) and realign.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        let misalign = (self.buf.as_ptr() as usize) % DIRECT_ALIGN;
        self.start = (DIRECT_ALIGN - misalign) % DIRECT_ALIGN;
        self.buf.resize(self.start, 0);
    }

    /// The bytes after the padding.
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

/// A file for [`FileWriter`]: where it goes and its bytes.
pub(crate) struct FileJob {
    pub(crate) path: PathBuf,
    pub(crate) data: AlignedBuf,
}

/// Writes files on a second thread (each created, written and fsynced by [`write_new_file`]),
/// so the caller can fill the next buffer meanwhile; written buffers come back for reuse.
/// Handing over a file waits until the previous one is written (double buffering: with
/// [`FileWriter::reuse`] right after [`FileWriter::write`], two buffers are enough).
pub(crate) struct FileWriter {
    jobs: Option<std::sync::mpsc::SyncSender<FileJob>>,
    back: std::sync::mpsc::Receiver<AlignedBuf>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    /// Files queued whose buffer has not come back yet.
    out: usize,
}

impl FileWriter {
    pub(crate) fn new() -> Self {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<FileJob>(0);
        let (tx_back, back) = std::sync::mpsc::channel::<AlignedBuf>();
        let thread = std::thread::spawn(move || -> io::Result<()> {
            for job in rx {
                write_new_file(&job.path, job.data.data())?;
                let _ = tx_back.send(job.data);
            }
            Ok(())
        });
        FileWriter {
            jobs: Some(jobs),
            back,
            thread: Some(thread),
            out: 0,
        }
    }

    /// Queue a file. An error here is the writer's first error (it stopped).
    pub(crate) fn write(&mut self, job: FileJob) -> io::Result<()> {
        let sent = self.jobs.as_ref().map(|j| j.send(job).is_ok());
        if sent == Some(true) {
            self.out += 1;
            return Ok(());
        }
        Err(self
            .stop()
            .err()
            .unwrap_or_else(|| io::Error::other("file writer stopped")))
    }

    /// A written buffer, if one came back.
    pub(crate) fn reuse(&mut self) -> Option<AlignedBuf> {
        let b = self.back.try_recv().ok()?;
        self.out = self.out.saturating_sub(1);
        Some(b)
    }

    /// Wait until every file queued is written (their buffers are dropped); the writer's
    /// first error, if it stopped.
    pub(crate) fn wait_written(&mut self) -> io::Result<()> {
        while self.out > 0 {
            if self.back.recv().is_err() {
                return Err(self
                    .stop()
                    .err()
                    .unwrap_or_else(|| io::Error::other("file writer stopped")));
            }
            self.out -= 1;
        }
        Ok(())
    }

    /// Wait until every queued file is written and fsynced; its first error, if any.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        self.jobs = None;
        match self.thread.take() {
            None => Ok(()),
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("file writer thread panicked"))),
        }
    }
}

impl Default for FileWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A HashedFile written in odd-sized pieces across several direct pieces (and on a file
    /// system without direct I/O, buffered) holds exactly the bytes given, and its hash is
    /// theirs.
    #[test]
    fn hashed_file_keeps_every_byte() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..(3 << 20) + 12345)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if Path::new("/dev/shm").is_dir() {
            dirs.push(tempfile::tempdir_in("/dev/shm").unwrap());
        }
        for d in &dirs {
            let p = d.path().join("f");
            let mut f = HashedFile::create(&p, 0o600).unwrap();
            let mut at = 0;
            for (k, n) in [1usize, 4095, 1 << 20, 7, (1 << 20) + 3, 100_000]
                .iter()
                .cycle()
                .enumerate()
            {
                if at >= data.len() || k > 1000 {
                    break;
                }
                let e = (at + n).min(data.len());
                f.write_all(&data[at..e]).unwrap();
                at = e;
            }
            f.write_all(&data[at..]).unwrap();
            f.flush().unwrap();
            let (n, h) = f.done().unwrap();
            assert_eq!(n, data.len() as u64);
            assert_eq!(h, manifest::hex(&Sha256::digest(&data)));
            assert!(fs::read(&p).unwrap() == data, "{}", p.display());
        }
    }

    /// The direct writer's pieces land at their offsets in any order, and what direct I/O
    /// does not take goes through the page cache from then on: here the "direct" handle is
    /// read-only, so every write through it fails and the file is still complete.
    #[test]
    fn direct_pieces_fall_back_to_the_page_cache() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let data: Vec<u8> = (0..(2 * DIRECT_PIECE + 5000))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        fs::write(&p, b"").unwrap();
        let mut w = PieceWriter {
            path: p.clone(),
            direct: File::open(&p).unwrap(),
            buffered: None,
        };
        let (a, b) = (DIRECT_PIECE, 2 * DIRECT_PIECE);
        w.write(&data[a..b], a as u64, false).unwrap();
        assert!(
            w.buffered.is_some(),
            "a refused direct write switches to the page cache"
        );
        w.write(&data[..a], 0, false).unwrap();
        w.write(&data[b..], b as u64, true).unwrap();
        w.into_file().sync_all().unwrap();
        assert!(fs::read(&p).unwrap() == data);
    }

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
        let mut s = Stage::create(&root, Perms::Private).unwrap();
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

        // a prepared file written by the FileWriter
        let p = s.prepare("msgs/3.blk").unwrap().unwrap();
        let mut buf = AlignedBuf::with_capacity(10_000);
        buf.buf.extend_from_slice(&[7u8; 9000]);
        let mut w = FileWriter::new();
        w.write(FileJob { path: p, data: buf }).unwrap();
        w.finish().unwrap();
        s.planned("msgs/3.blk", 9000);
        assert_eq!(fs::read(root.join("msgs/3.blk")).unwrap(), vec![7u8; 9000]);
        assert!(s.prepare("../x").is_err());
        assert_eq!(s.total_bytes(), 2 + 2 + 3 + 9000);

        let mut d = Stage::dry();
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

    /// A staged tree lands at its target only when the target does not exist.
    #[test]
    fn commit_renames_and_never_replaces() {
        let tmp = tempfile::TempDir::new().unwrap();
        let target = tmp.path().join("OUT");
        let root = staging_path(&target, "OUT.jetdir-pack-");
        assert!(root
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".OUT.jetdir-pack-"));
        let mut s = Stage::create(&root, Perms::Umask).unwrap();
        s.dir("A").unwrap();
        let mut f = s.hashed_file("A/x").unwrap();
        f.write_all(b"hello").unwrap();
        let (n, h) = f.done().unwrap();
        assert_eq!(n, 5);
        assert_eq!(h, manifest::hex(&Sha256::digest(b"hello")));
        s.planned("A/x", n);
        assert_eq!(
            leftovers(tmp.path(), "OUT.jetdir-pack-"),
            vec![(root.clone(), Some(std::process::id()))]
        );
        fs::create_dir(&target).unwrap();
        assert!(matches!(s.commit(&target), Err(CommitError::TargetExists)));
        fs::remove_dir(&target).unwrap();
        s.commit(&target).unwrap();
        assert_eq!(fs::read(target.join("A/x")).unwrap(), b"hello");
        assert!(!root.exists());
        assert!(Stage::dry().hashed_file("x").is_err());
        assert!(Stage::dry().commit(&target).is_ok());
    }

    /// Staged files get their names by links (never replacing one), all or none.
    #[test]
    fn commit_files_links_all_or_none() {
        let tmp = tempfile::TempDir::new().unwrap();
        let (a, b) = (tmp.path().join(".a-1"), tmp.path().join(".b-1"));
        let (ta, tb) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::write(&a, b"A").unwrap();
        fs::write(&b, b"B").unwrap();
        fs::write(&tb, b"taken").unwrap();
        let e = commit_files(&[(&a, &ta), (&b, &tb)]).unwrap_err();
        assert!(matches!(e, CommitError::Link(ref p, _) if p == &tb));
        assert!(!ta.exists(), "the first link is undone");
        fs::remove_file(&tb).unwrap();
        commit_files(&[(&a, &ta), (&b, &tb)]).unwrap();
        assert_eq!(fs::read(&ta).unwrap(), b"A");
        assert_eq!(fs::read(&tb).unwrap(), b"B");
        assert!(!a.exists() && !b.exists());
    }

    /// fsync errors are returned, not ignored.
    #[test]
    fn fsync_dir_reports_errors() {
        let tmp = tempfile::TempDir::new().unwrap();
        assert!(fsync_dir(&tmp.path().join("missing")).is_err());
        let c = CreatedDirs::create(&tmp.path().join("x/y/z")).unwrap();
        assert_eq!(c.0.len(), 3);
        c.fsync().unwrap();
        c.remove();
        assert!(!tmp.path().join("x").exists());
    }

    /// Every size and alignment: the file holds exactly the bytes, and is never overwritten.
    #[test]
    fn write_new_file_direct_and_buffered() {
        let tmp = tempfile::TempDir::new().unwrap();
        let pattern = |n: usize| -> Vec<u8> { (0..n).map(|i| (i * 7 + i / 4096) as u8).collect() };
        let sizes = [
            0,
            1,
            DIRECT_ALIGN - 1,
            DIRECT_ALIGN,
            DIRECT_ALIGN + 1,
            3 * DIRECT_ALIGN + 17,
            (1 << 20) + 5,
        ];
        for (i, n) in sizes.into_iter().enumerate() {
            for shift in [0usize, 1] {
                // aligned (direct I/O where the file system has it) and not (page cache)
                let mut b = AlignedBuf::with_capacity(n + 1);
                b.buf.extend_from_slice(&vec![0u8; shift]);
                b.buf.extend_from_slice(&pattern(n));
                let data = &b.data()[shift..];
                let p = tmp.path().join(format!("f{i}-{shift}"));
                write_new_file(&p, data).unwrap();
                assert_eq!(fs::read(&p).unwrap(), pattern(n), "size {n} shift {shift}");
                let e = write_new_file(&p, b"again").unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
                assert_eq!(fs::read(&p).unwrap().len(), n);
            }
        }
        let b = AlignedBuf::with_capacity(100);
        assert!(b.data().is_empty());
        assert_eq!(b.buf.len(), b.start);
    }

    /// `wait_written` returns once every file queued is on disk, whether or not their
    /// buffers were taken back for reuse in between.
    #[test]
    fn file_writer_waits_for_every_file() {
        let d = tempfile::tempdir().unwrap();
        let mut w = FileWriter::new();
        for i in 0..5u8 {
            let mut data = AlignedBuf::with_capacity(3 << 20);
            data.buf
                .extend(std::iter::repeat_n(i, (3 << 20) + usize::from(i)));
            w.write(FileJob {
                path: d.path().join(format!("f{i}")),
                data,
            })
            .unwrap();
            if i == 2 {
                let _ = w.reuse();
            }
        }
        w.wait_written().unwrap();
        for i in 0..5u8 {
            let b = fs::read(d.path().join(format!("f{i}"))).unwrap();
            assert_eq!(b.len(), (3 << 20) + usize::from(i));
            assert!(b.iter().all(|&x| x == i));
        }
        assert_eq!(w.out, 0);
        w.finish().unwrap();
    }

    /// The writer's first error comes back to the caller; nothing after it is written.
    #[test]
    fn file_writer_reports_errors() {
        let tmp = tempfile::TempDir::new().unwrap();
        let taken = tmp.path().join("taken");
        fs::write(&taken, b"x").unwrap();
        let mut w = FileWriter::new();
        let job = |p: PathBuf| {
            let mut b = AlignedBuf::with_capacity(8192);
            b.buf.extend_from_slice(&[1u8; 8192]);
            FileJob { path: p, data: b }
        };
        w.write(job(tmp.path().join("a"))).unwrap();
        let r = w.write(job(taken.clone()));
        let r = match r {
            Ok(()) => {
                // the failure shows on the next hand-over or at the end
                let next = w.write(job(tmp.path().join("b")));
                next.and_then(|_| w.finish())
            }
            Err(e) => Err(e),
        };
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(tmp.path().join("a")).unwrap(), vec![1u8; 8192]);
        assert_eq!(fs::read(&taken).unwrap(), b"x");
    }
}
