//! Test helper: unpack one of the real server-written sample tarballs into a temporary directory.
//!
//! `sample("v2.15.1-plain")` unpacks `fixtures/samples/v2.15.1-plain.tar.gz` (relative to the
//! crate root) and returns the `TempDir`; the data is under `<dir>/v2.15.1-plain/store/jetstream/...`.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

/// Directory holding the sample tarballs.
pub fn samples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/samples"))
}

/// Unpack `<name>.tar.gz` into a fresh temporary directory (panics if it is missing: tests only).
pub fn sample(name: &str) -> tempfile::TempDir {
    let tgz = samples_dir().join(format!("{name}.tar.gz"));
    let f = std::fs::File::open(&tgz).unwrap_or_else(|e| panic!("open {}: {e}", tgz.display()));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.unpack(dir.path())
        .unwrap_or_else(|e| panic!("unpack {}: {e}", tgz.display()));
    dir
}

/// Read a file inside an unpacked sample: `read(&dir, "v2.15.1-plain", "store/jetstream/$G/streams/ORDERS/msgs/index.db")`.
pub fn read(dir: &tempfile::TempDir, name: &str, rel: &str) -> Vec<u8> {
    let p: PathBuf = dir.path().join(name).join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Path of a stream directory inside an unpacked sample (account `$G`).
pub fn stream_dir(dir: &tempfile::TempDir, name: &str, stream: &str) -> PathBuf {
    dir.path()
        .join(name)
        .join("store/jetstream/$G/streams")
        .join(stream)
}

/// Convenience: `Path` join that reads the file.
pub fn read_path(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Copy a directory tree (tests only: panics on error).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// A small deterministic xorshift generator for tests (no dependency, same stream every run).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unpacks_plain_sample() {
        let d = super::sample("v2.15.1-plain");
        let b = super::read(
            &d,
            "v2.15.1-plain",
            "store/jetstream/$G/streams/ORDERS/msgs/index.db",
        );
        assert!(b.len() > 32);
        assert!(super::stream_dir(&d, "v2.15.1-plain", "ORDERS")
            .join("msgs/1.blk")
            .is_file());
    }
}
