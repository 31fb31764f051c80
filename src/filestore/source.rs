//! Where a stream's files come from: a directory on disk, or members of an archive in memory.
use std::fs;
use std::path::{Path, PathBuf};

/// Source of a stream's files: the directory on disk, or members of an archive.
pub trait StreamSource: Sync {
    /// Whole content of a small file (meta.inf, index.db, o.dat…), relative to the stream dir.
    fn read(&self, rel: &str) -> Option<Vec<u8>>;
    /// All files, relative to the stream dir, sorted.
    fn files(&self) -> Vec<String>;
}

pub struct DirSource {
    pub dir: PathBuf,
}

impl StreamSource for DirSource {
    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        fs::read(self.dir.join(rel)).ok()
    }
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = walkdir::WalkDir::new(&self.dir)
            .min_depth(1)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_type().is_dir())
            .filter_map(|e| {
                e.path()
                    .strip_prefix(&self.dir)
                    .ok()
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
            })
            .collect();
        v.sort();
        v
    }
}

/// Read a whole file (opened read-only) into this thread's buffer and run `f` on it.
/// (Memory-mapping was measured too: no faster on a warm page cache, and a file truncated
/// under a mapping raises SIGBUS.)
pub(crate) fn read_reusing<T>(
    path: &Path,
    f: impl FnOnce(&[u8]) -> T,
) -> std::io::Result<(T, u64)> {
    use std::io::Read;
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.clear();
        let mut file = fs::File::open(path)?;
        file.read_to_end(&mut buf)?;
        let n = buf.len() as u64;
        let out = f(&buf);
        if buf.capacity() > 64 << 20 {
            *buf = Vec::new(); // do not keep an outsized buffer from a damaged or huge file
        }
        Ok((out, n))
    })
}

thread_local! {
    /// One read buffer per worker thread, reused across blocks: no fresh allocation (and page
    /// faults) per 8 MiB block.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
