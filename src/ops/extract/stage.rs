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
        match self.prepare(rel)? {
            None => Ok(None),
            Some(path) => OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map(Some),
        }
    }

    /// Check `rel`, create its parent dirs, and return where the file goes (`None` in a dry
    /// run). For a file written elsewhere (e.g. by [`FileWriter`]), with [`write_new_file`];
    /// list it with [`Sink::planned`].
    pub fn prepare(&mut self, rel: &str) -> io::Result<Option<PathBuf>> {
        let comps = checked_components(rel)?;
        if let Some((_, parents)) = comps.split_last() {
            if !parents.is_empty() {
                self.dir(&parents.join("/"))?;
            }
        }
        Ok(self.root.as_ref().map(|root| root.join(rel)))
    }

    /// List a file of `bytes` bytes prepared with [`Sink::prepare`] (and written, or about to
    /// be, by a [`FileWriter`]).
    pub fn planned(&mut self, rel: &str, bytes: u64) {
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

/// Alignment of buffer address, file offset and length for direct I/O (covers 512-byte and
/// 4 KiB sectors).
pub const DIRECT_ALIGN: usize = 4096;

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
pub fn write_new_file(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
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
            Ok(mut f) => {
                let done = write_direct(&mut f, data.get(..aligned).unwrap_or_default());
                let rest = data.get(done..).unwrap_or_default();
                if rest.is_empty() {
                    return f.sync_all();
                }
                drop(f);
                // The tail (or all of it, if direct writes failed) through the page cache.
                let g = OpenOptions::new().write(true).open(path)?;
                g.write_all_at(rest, done as u64)?;
                return g.sync_all();
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

/// Write `data` (aligned) to a new `O_DIRECT` file; returns how many bytes were written before
/// anything unusual (an error such as `EINVAL`, or a short write that breaks the alignment).
fn write_direct(f: &mut File, data: &[u8]) -> usize {
    let mut done = 0usize;
    while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
        match f.write(rest) {
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
pub struct AlignedBuf {
    pub buf: Vec<u8>,
    pub start: usize,
}

impl AlignedBuf {
    /// Room for `cap` bytes after the alignment padding.
    pub fn with_capacity(cap: usize) -> Self {
        let mut b = AlignedBuf {
            buf: Vec::with_capacity(cap + DIRECT_ALIGN),
            start: 0,
        };
        b.reset();
        b
    }

    /// Empty it (keeping the allocation) and realign.
    pub fn reset(&mut self) {
        self.buf.clear();
        let misalign = (self.buf.as_ptr() as usize) % DIRECT_ALIGN;
        self.start = (DIRECT_ALIGN - misalign) % DIRECT_ALIGN;
        self.buf.resize(self.start, 0);
    }

    /// The bytes after the padding.
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file for [`FileWriter`]: where it goes and its bytes.
pub struct FileJob {
    pub path: PathBuf,
    pub data: AlignedBuf,
}

/// Writes files on a second thread (each created, written and fsynced by [`write_new_file`]),
/// so the caller can fill the next buffer meanwhile; written buffers come back for reuse.
/// Handing over a file waits until the previous one is written (double buffering: with
/// [`FileWriter::reuse`] right after [`FileWriter::write`], two buffers are enough).
pub struct FileWriter {
    jobs: Option<std::sync::mpsc::SyncSender<FileJob>>,
    back: std::sync::mpsc::Receiver<AlignedBuf>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl FileWriter {
    pub fn new() -> Self {
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
        }
    }

    /// Queue a file. An error here is the writer's first error (it stopped).
    pub fn write(&mut self, job: FileJob) -> io::Result<()> {
        let sent = self.jobs.as_ref().map(|j| j.send(job).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        Err(self
            .stop()
            .err()
            .unwrap_or_else(|| io::Error::other("file writer stopped")))
    }

    /// A written buffer, if one came back.
    pub fn reuse(&mut self) -> Option<AlignedBuf> {
        self.back.try_recv().ok()
    }

    /// Wait until every queued file is written and fsynced; its first error, if any.
    pub fn finish(mut self) -> io::Result<()> {
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
        assert!(b.is_empty());
        assert_eq!(b.buf.len(), b.start);
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
