//! Where a stream's files come from: a directory on disk, or members of an archive in memory.
use crate::base::problem::{Kind, Location, Problem};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[cfg(doc)]
use crate::filestore::{block::MAX_BLOCK_FILE, layout::StreamFile};

/// A small file of a stream read for a check: its bytes, or why there are none.
#[derive(Debug)]
pub enum FileRead {
    /// The whole file.
    Bytes(Vec<u8>),
    /// There is no such file.
    Absent,
    /// The file exists but could not be read; an `io_error` finding says why.
    Unreadable,
}

/// Source of a stream's files: the directory on disk, or members of an archive.
pub trait StreamSource: Sync {
    /// Whole content of a small file (meta.inf, index.db, o.dat…), relative to the stream dir:
    /// `Ok(None)` when there is no such file, `Err` when it exists but cannot be read.
    fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>>;
    /// All files, relative to the stream dir, sorted.
    fn files(&self) -> Vec<String>;
    /// Whether `rel` can be read again for a second pass (an archive's blocks cannot: they
    /// are read once, as they stream by). Sources that can tell without reading do so.
    fn can_refetch(&self, rel: &str) -> bool {
        matches!(self.read(rel), Ok(Some(_)))
    }
    /// The last `n` bytes of a file (all of it when shorter), like [`StreamSource::read`].
    /// Sources that can seek read only those bytes.
    fn tail(&self, rel: &str, n: usize) -> io::Result<Option<Vec<u8>>> {
        Ok(self
            .read(rel)?
            .map(|b| b[b.len().saturating_sub(n)..].to_vec()))
    }
    /// The last `n` bytes of a file as it is stored: an encrypted stream's blocks not
    /// decrypted (what the disk holds), like [`StreamSource::tail`] otherwise.
    fn stored_tail(&self, rel: &str, n: usize) -> io::Result<Option<Vec<u8>>> {
        self.tail(rel, n)
    }
    /// The first `n` bytes of a file (all of it when shorter), like [`StreamSource::read`].
    /// Sources that can read part of a file read only those bytes.
    fn head(&self, rel: &str, n: usize) -> io::Result<Option<Vec<u8>>> {
        Ok(self.read(rel)?.map(|mut b| {
            b.truncate(n);
            b
        }))
    }
    /// [`StreamSource::read`] for a check: a file that exists but cannot be read is reported
    /// at `loc` as `io_error` (never as missing, never silently skipped).
    fn fetch(&self, rel: &str, loc: Location, problems: &mut Vec<Problem>) -> FileRead {
        match self.read(rel) {
            Ok(Some(b)) => FileRead::Bytes(b),
            Ok(None) => FileRead::Absent,
            Err(e) => {
                problems.push(Problem::new(
                    Kind::IoError,
                    loc,
                    format!("{rel} exists but cannot be read: {e}"),
                ));
                FileRead::Unreadable
            }
        }
    }
    /// A block file for a second pass: its plain records (or why its `cmp` form does not
    /// decode), whether it was compressed, and the file's length; `None` when it is absent or
    /// unreadable (reported as [`StreamSource::fetch`] does). Never holds a big `cmp` block's
    /// compressed and decoded bytes at once where the source can stream it.
    fn fetch_block(
        &self,
        rel: &str,
        loc: Location,
        problems: &mut Vec<Problem>,
    ) -> Option<(OwnedDecoded, u64)> {
        match self.fetch(rel, loc, problems) {
            FileRead::Bytes(raw) => Some(decoded_block(raw, self.cmp_reader())),
            FileRead::Absent | FileRead::Unreadable => None,
        }
    }
    /// How [`StreamSource::fetch_block`] decodes `cmp` blocks: as the S2 reader of the release
    /// whose load is modelled ([`StreamSource::set_cmp_reader`]).
    fn cmp_reader(&self) -> CmpReader {
        CmpReader::default()
    }
    /// Decode `cmp` blocks as `rd` from now on (set once the release to model is known).
    /// Sources that decode no blocks ignore it.
    fn set_cmp_reader(&self, _rd: CmpReader) {}
    /// The parts of an encrypted stream that do not open with its key (`None`: a plaintext
    /// source, or one that does not tell).
    fn unopened(&self) -> Option<&crate::filestore::encrypted::Unopened> {
        None
    }
    /// Findings the source made when it was opened (an encrypted stream's key and sealed
    /// files): part of every stream read through it.
    fn open_findings(&self) -> &[Problem] {
        &[]
    }
    /// Blocks whose records can be read as written (in the source's underlying files)
    /// although the server, reading them through this source, cannot: an encrypted
    /// stream's blocks written in plaintext that have a key file
    /// ([`crate::filestore::encrypted::PlainBlock`]). Forensics reads them as written.
    fn rescued_blocks(&self) -> Vec<u32> {
        Vec::new()
    }
}

pub use crate::filestore::block::CmpReader;

/// A [`CmpReader`] kept by a source, settable through `&self`.
#[derive(Debug, Default)]
pub struct CmpReaderCell(std::sync::atomic::AtomicBool);

impl CmpReaderCell {
    /// The reader set last (the default before).
    pub fn get(&self) -> CmpReader {
        if self.0.load(std::sync::atomic::Ordering::Relaxed) {
            CmpReader::ChecksEnd
        } else {
            CmpReader::SeeksPastEnd
        }
    }
    /// Sets the reader.
    pub fn set(&self, rd: CmpReader) {
        self.0.store(
            rd == CmpReader::ChecksEnd,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// An owned plain block and whether it was compressed, or why it does not decode.
pub type OwnedDecoded = Result<(Vec<u8>, bool), crate::s2::S2Error>;

/// A whole block file's bytes as [`StreamSource::fetch_block`] gives them: decoded (as `rd`
/// reads it) when it is a `cmp` block, with the file's length.
pub fn decoded_block(raw: Vec<u8>, rd: CmpReader) -> (OwnedDecoded, u64) {
    let n = raw.len() as u64;
    if crate::filestore::block::is_cmp_block(&raw) {
        let d = crate::filestore::block::decompress_cmp_block_as(&raw, rd).map(|p| (p, true));
        (d, n)
    } else {
        (Ok((raw, false)), n)
    }
}

/// A stream dir on disk. Its files are listed once, on first use: the dir is a stopped
/// server's, which does not change while it is read (a listing per question cost a walk of
/// the dir each time, and a `stat` per block for [`StreamSource::can_refetch`]).
pub struct DirSource {
    pub dir: PathBuf,
    listing: std::sync::OnceLock<Listing>,
    cmp: CmpReaderCell,
}

/// The files under a stream dir (relative paths, sorted) and, for each, whether it is a
/// regular file once symbolic links are followed (what `Path::is_file` says).
struct Listing {
    names: Vec<String>,
    regular: Vec<bool>,
}

impl DirSource {
    pub fn new(dir: impl Into<PathBuf>) -> DirSource {
        DirSource {
            dir: dir.into(),
            listing: std::sync::OnceLock::new(),
            cmp: CmpReaderCell::default(),
        }
    }

    fn listing(&self) -> &Listing {
        self.listing.get_or_init(|| {
            let mut v: Vec<(String, bool)> = walkdir::WalkDir::new(&self.dir)
                .min_depth(1)
                .into_iter()
                .filter_map(|e| e.ok())
                .filter(|e| !e.file_type().is_dir())
                .filter_map(|e| {
                    let ft = e.file_type();
                    // only a link needs a stat to say what it points at
                    let regular = ft.is_file()
                        || (ft.is_symlink() && fs::metadata(e.path()).is_ok_and(|m| m.is_file()));
                    e.path()
                        .strip_prefix(&self.dir)
                        .ok()
                        .map(|p| (p.to_string_lossy().replace('\\', "/"), regular))
                })
                .collect();
            v.sort();
            let (names, regular) = v.into_iter().unzip();
            Listing { names, regular }
        })
    }
}

/// The most bytes read of a file at `rel` (a path relative to a stream dir): the layout's
/// [`StreamFile::max_size`](crate::filestore::layout::StreamFile::max_size), or the state-file
/// limit for a file outside the layout.
pub fn read_cap(rel: &str) -> u64 {
    crate::filestore::layout::classify_path(rel)
        .map_or(crate::filestore::layout::MAX_STATE_FILE, |f| f.max_size())
}

/// Read at most `cap` bytes of the file at `path` (opened read-only) into `buf` (cleared first).
/// Returns the file's full length, so the caller can tell a longer file.
pub fn read_capped_into(path: &Path, cap: u64, buf: &mut Vec<u8>) -> io::Result<u64> {
    use std::io::Read;
    buf.clear();
    let f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    crate::filestore::block::reserve_for_block(buf, len.min(cap));
    f.take(cap).read_to_end(buf)?;
    Ok(len.max(buf.len() as u64))
}

/// Bytes to reserve for a buffer of `n` bytes: above a normal block
/// ([`BIG_BLOCK`](crate::filestore::block::BIG_BLOCK)), at least [`MMAP_ALWAYS`]. glibc's
/// malloc maps an allocation that large on its own and unmaps it when it is freed; a smaller
/// one (a 31 MiB block, once a freed one raised malloc's dynamic threshold) comes from the
/// calling thread's arena and stays in the process after it is freed, once per thread that
/// read a big block: three threads holding a freed 31 MiB each is 93 MiB of peak RSS for
/// nothing. The pages of the reservation that are never written cost no memory.
pub fn big_reservation(n: u64) -> u64 {
    if n > crate::filestore::block::BIG_BLOCK {
        n.max(MMAP_ALWAYS)
    } else {
        n
    }
}

/// glibc's largest dynamic mmap threshold (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB on 64-bit)
/// plus a page: an allocation of this size is always mapped on its own.
pub const MMAP_ALWAYS: u64 = (32 << 20) + 4096;

/// [`read_capped_into`] into a new buffer, capped by the layout ([`read_cap`] of `rel`).
pub fn read_file_capped(dir: &Path, rel: &str) -> io::Result<Vec<u8>> {
    let mut b = Vec::new();
    read_capped_into(&dir.join(rel), read_cap(rel), &mut b)?;
    Ok(b)
}

impl StreamSource for DirSource {
    fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        match read_file_capped(&self.dir, rel) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn tail(&self, rel: &str, n: usize) -> io::Result<Option<Vec<u8>>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = match fs::File::open(self.dir.join(rel)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(n as u64)))?;
        let mut b = Vec::with_capacity(n);
        f.take(n as u64).read_to_end(&mut b)?;
        Ok(Some(b))
    }
    fn head(&self, rel: &str, n: usize) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let f = match fs::File::open(self.dir.join(rel)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut b = Vec::with_capacity(n.min(1 << 20));
        f.take(n as u64).read_to_end(&mut b)?;
        Ok(Some(b))
    }
    fn fetch_block(
        &self,
        rel: &str,
        loc: Location,
        problems: &mut Vec<Problem>,
    ) -> Option<(OwnedDecoded, u64)> {
        use crate::filestore::block::{
            big_block_guard, decompress_cmp_reader, is_cmp_block, BIG_BLOCK, MAX_BLOCK_FILE,
        };
        use std::io::Read;
        let path = self.dir.join(rel);
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let _big = big_block_guard(size.min(MAX_BLOCK_FILE));
        let mut head = [0u8; 5];
        let n = fs::File::open(&path)
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        if size <= BIG_BLOCK || !is_cmp_block(head.get(..n).unwrap_or(&[])) {
            let mut scratch = Vec::new();
            let r = match self.fetch(rel, loc, &mut scratch) {
                FileRead::Bytes(raw) => Some(decoded_block(raw, self.cmp.get())),
                FileRead::Absent | FileRead::Unreadable => None,
            };
            problems.append(&mut scratch);
            return r;
        }
        let mut out = Vec::new();
        let res = fs::File::open(&path).and_then(|f| {
            decompress_cmp_reader(
                std::io::BufReader::with_capacity(1 << 20, f),
                size,
                &mut out,
                self.cmp.get(),
            )
        });
        match res {
            Ok(d) => Some((d.map(|()| (out, true)), size)),
            Err(e) => {
                problems.push(Problem::new(
                    Kind::IoError,
                    loc,
                    format!("{rel} exists but cannot be read: {e}"),
                ));
                None
            }
        }
    }
    fn can_refetch(&self, rel: &str) -> bool {
        let l = self.listing();
        match l.names.binary_search_by(|n| n.as_str().cmp(rel)) {
            Ok(k) => l.regular.get(k).copied().unwrap_or(false),
            // a path the listing does not spell that way ("./x", "a/../x")
            Err(_) => self.dir.join(rel).is_file(),
        }
    }
    fn files(&self) -> Vec<String> {
        self.listing().names.clone()
    }
    fn cmp_reader(&self) -> CmpReader {
        self.cmp.get()
    }
    fn set_cmp_reader(&self, rd: CmpReader) {
        self.cmp.set(rd);
    }
}

/// A block file as read for a scan: its plain records (or why a `cmp` block does not
/// decode), whether it was compressed, and the file's full length.
pub(crate) type Decoded<'a> = Result<(std::borrow::Cow<'a, [u8]>, bool), crate::s2::S2Error>;

/// Read a block file (opened read-only, at most [`MAX_BLOCK_FILE`] bytes) into this thread's
/// buffer, decode it when it is a `cmp` block, and run `f` on the plain block and the file's
/// full length. A `cmp` file above [`BIG_BLOCK`](crate::filestore::block::BIG_BLOCK) is
/// decoded as it is read (its compressed bytes are never all in memory), and such files are
/// handled one at a time across threads. (Memory-mapping was measured too: no faster on a
/// warm page cache, and a file truncated under a mapping raises SIGBUS.) `rd`: how a `cmp`
/// block is decoded.
pub(crate) fn read_reusing<T>(
    path: &Path,
    rd: CmpReader,
    f: impl FnOnce(Decoded<'_>, u64) -> T,
) -> std::io::Result<(T, u64)> {
    use crate::filestore::block::{big_block_guard, is_cmp_block, BIG_BLOCK, MAX_BLOCK_FILE};
    use std::io::Read;
    let size = fs::metadata(path)?.len();
    let _big = big_block_guard(size.min(MAX_BLOCK_FILE));
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let streamed = if size > BIG_BLOCK {
            let mut file = fs::File::open(path)?;
            let mut head = [0u8; 5];
            let n = file.read(&mut head)?;
            if is_cmp_block(head.get(..n).unwrap_or(&[])) {
                let file = fs::File::open(path)?;
                let r = std::io::BufReader::with_capacity(1 << 20, file);
                Some(crate::filestore::block::decompress_cmp_reader(
                    r, size, &mut buf, rd,
                )?)
            } else {
                None
            }
        } else {
            None
        };
        let out = match streamed {
            Some(res) => f(
                res.map(|()| (std::borrow::Cow::Borrowed(&buf[..]), true)),
                size,
            ),
            None => {
                let n = read_capped_into(path, MAX_BLOCK_FILE, &mut buf)?;
                DECODE_BUF.with(|dec| {
                    let mut dec = dec.borrow_mut();
                    let out = f(
                        crate::filestore::block::plain_block_in(&buf, &mut dec, rd),
                        n,
                    );
                    drop_outsized(&mut dec);
                    out
                })
            }
        };
        drop_outsized(&mut buf); // do not keep an outsized buffer from a damaged or huge file
        Ok((out, size))
    })
}

/// Frees a reused buffer that grew past a normal block (a damaged or huge file), so that no
/// thread keeps one.
fn drop_outsized(buf: &mut Vec<u8>) {
    if buf.capacity() as u64 > crate::filestore::block::BIG_BLOCK {
        *buf = Vec::new();
    }
}

/// [`read_reusing`] for a block that must first be transformed as a whole (an encrypted block:
/// `xform` XORs its keystream over the file's bytes), then decoded.
pub(crate) fn read_reusing_with<T>(
    path: &Path,
    rd: CmpReader,
    xform: impl FnOnce(&mut [u8]),
    f: impl FnOnce(Decoded<'_>, u64) -> T,
) -> std::io::Result<(T, u64)> {
    use crate::filestore::block::{big_block_guard, MAX_BLOCK_FILE};
    let size = fs::metadata(path)?.len();
    let _big = big_block_guard(size.min(MAX_BLOCK_FILE));
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let n = read_capped_into(path, MAX_BLOCK_FILE, &mut buf)?;
        xform(&mut buf[..]);
        let out = DECODE_BUF.with(|dec| {
            let mut dec = dec.borrow_mut();
            let out = f(
                crate::filestore::block::plain_block_in(&buf, &mut dec, rd),
                n,
            );
            drop_outsized(&mut dec);
            out
        });
        drop_outsized(&mut buf);
        Ok((out, size))
    })
}

/// Frees the reused block buffers ([`read_reusing`]) of every rayon worker thread and of this
/// one. A command that walks the blocks again after the verify pass (dump, diff, salvage)
/// would otherwise keep the pass's buffers, a read and a decoded block per worker (16 MiB
/// each), beside its own.
pub fn release_block_buffers() {
    let clear = || {
        READ_BUF.with(|b| *b.borrow_mut() = Vec::new());
        DECODE_BUF.with(|b| *b.borrow_mut() = Vec::new());
    };
    rayon::broadcast(|_| clear());
    clear();
}

thread_local! {
    /// One read buffer per worker thread, reused across blocks: no fresh allocation (and page
    /// faults) per 8 MiB block.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// One buffer per worker thread for the decoded form of a `cmp` block, reused the same way
    /// (with glibc's mmap threshold fixed in main, malloc gave each freed 8 MiB back to the
    /// kernel: a fresh 2048 page faults per compressed block).
    static DECODE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listing taken once answers `can_refetch` as `Path::is_file` does for every kind of
    /// entry: a file, a link to a file, a dangling link, a link to a dir, a dir, a fifo, a
    /// missing file, and paths the listing does not spell that way.
    #[test]
    fn can_refetch_from_the_listing_is_what_is_file_says() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir_all(d.join("msgs")).unwrap();
        fs::create_dir_all(d.join("obs/C")).unwrap();
        fs::write(d.join("msgs/1.blk"), b"x").unwrap();
        fs::write(d.join("meta.inf"), b"{}").unwrap();
        std::os::unix::fs::symlink(d.join("msgs/1.blk"), d.join("msgs/2.blk")).unwrap();
        std::os::unix::fs::symlink(d.join("msgs/none"), d.join("msgs/3.blk")).unwrap();
        std::os::unix::fs::symlink(d.join("obs"), d.join("msgs/4.blk")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(d.join("msgs/5.blk"))
            .status()
            .is_ok_and(|s| s.success());
        let src = DirSource::new(d);
        let mut asked = vec![
            "msgs/1.blk",
            "msgs/2.blk",
            "msgs/3.blk",
            "msgs/4.blk",
            "msgs/5.blk",
            "msgs/6.blk",
            "meta.inf",
            "./meta.inf",
            "msgs/../meta.inf",
            "obs",
            "obs/C",
            "msgs",
        ];
        let listed = src.files();
        asked.extend(listed.iter().map(String::as_str));
        for rel in asked {
            assert_eq!(src.can_refetch(rel), d.join(rel).is_file(), "{rel}");
        }
        assert!(listed.contains(&"msgs/2.blk".to_string()), "{listed:?}");
        assert!(
            !listed.iter().any(|n| n == "obs/C" || n == "msgs"),
            "{listed:?}"
        );
        assert_eq!(listed.contains(&"msgs/5.blk".to_string()), fifo);
        assert!(src.can_refetch("msgs/2.blk") && !src.can_refetch("msgs/3.blk"));
    }

    /// Block files a few bytes apart (each block ends with the record that crossed 8 MiB)
    /// are read into one buffer per thread that never moves: before, the reused buffer grew by
    /// doubling past the reusable size, was freed after each block and allocated anew (a
    /// copy, 16 MiB and thousands of page faults per block).
    #[test]
    fn blocks_of_near_sizes_reuse_one_buffer() {
        let t = tempfile::tempdir().unwrap();
        let sizes = [8_389_564usize, 8_389_594, 8_256_165, 8_389_594];
        let paths: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let p = t.path().join(format!("{i}.blk"));
                fs::write(&p, vec![0u8; n]).unwrap();
                p
            })
            .collect();
        let mut seen = Vec::new();
        for _ in 0..2 {
            for (p, &n) in paths.iter().zip(&sizes) {
                let (len, _) = read_reusing(p, CmpReader::default(), |d, _| {
                    d.map(|(b, _)| b.len()).unwrap()
                })
                .unwrap();
                assert_eq!(len, n);
                seen.push(READ_BUF.with(|b| {
                    let b = b.borrow();
                    (b.as_ptr() as usize, b.capacity())
                }));
            }
        }
        assert!(
            seen.iter().all(|&s| s == seen[0]),
            "the block buffer moved or changed size: {seen:?}"
        );
        assert!(seen[0].1 as u64 <= crate::filestore::block::BIG_BLOCK);
        release_block_buffers();
    }
}
