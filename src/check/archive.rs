//! `jetdir verify ARCHIVE`: verify a backup without extracting it, with the same report as
//! for stores. Entry point for both: [`verify_path`].
//!
//! V1 payloads (tar inside S2, `.tgz`, `.tar`) are walked once: small files are kept in
//! memory, each block is checked as it streams by (on a second thread, while the first one
//! keeps decoding), and the stream is then judged exactly as on disk. V2 payloads (NATSARC1)
//! are checked entry by entry and the state is computed from the messages.
use crate::backup::backup_json::{self, BackupJson};
use crate::backup::detect::{ArchiveKind, Detected};
use crate::backup::natsarc::{self, EntryRole, V2Options};
use crate::backup::tar_walk::{self, TarOptions};
use crate::base::problem::{Kind, Location, Problem};
use crate::base::progress::Progress;
use crate::base::report::ArchiveInfo;
use crate::base::report::ConsumerReport;
use crate::base::report::Report;
use crate::base::report::StreamReport;
use crate::check::store;
use crate::check::Options;
use crate::filestore::config_fields::{self, ConfigDoc};
use crate::filestore::layout::StreamFile;
use crate::filestore::source::StreamSource;
use crate::s2::par::ParFrameReader;
use crate::state::scan::{self, BlockScan, DeadSet, ScanCtx};
use crate::state::stream::{DeletedList, StreamTotals};
use anyhow::Context;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;

/// The payload as progress names it: its dir and file (`ORDERS/stream.tar.s2`), the backup
/// dir being named after the stream by `nats stream backup`.
pub(crate) fn payload_name(p: &Path) -> String {
    let file = p.file_name().map(|f| f.to_string_lossy().into_owned());
    let dir = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().into_owned());
    match (dir, file) {
        (Some(d), Some(f)) => format!("{d}/{f}"),
        (None, Some(f)) => f,
        _ => p.display().to_string(),
    }
}

/// Counts bytes read from the payload file for progress.
struct Counted<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    pending: u64,
    what: String,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= 1 << 20 || n == 0 {
            self.progress.advance(self.pending, &self.what);
            self.pending = 0;
        }
        Ok(n)
    }
}

/// Progress for the parallel S2 reader, whose input is read on its own thread: report the
/// compressed position as the decoded bytes are consumed.
pub(crate) struct ParCounted<'a> {
    inner: ParFrameReader,
    progress: &'a dyn Progress,
    reported: u64,
    what: String,
}

impl<'a> ParCounted<'a> {
    /// Decode `f` on all cores, reporting progress as `what`. The file is read unbuffered:
    /// the decoder reads each chunk's 4-byte header, then its whole body in one call.
    pub(crate) fn open(f: File, progress: &'a dyn Progress, what: String) -> Self {
        ParCounted {
            inner: ParFrameReader::new(f, s2_workers()),
            progress,
            reported: 0,
            what,
        }
    }
}

impl Read for ParCounted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let at = self.inner.compressed_offset();
        if at >= self.reported + (1 << 20) || n == 0 {
            self.progress
                .advance(at.saturating_sub(self.reported), &self.what);
            self.reported = at;
        }
        Ok(n)
    }
}

impl ParCounted<'_> {
    fn report(&mut self, end: bool) {
        let at = self.inner.compressed_offset();
        if at >= self.reported + (1 << 20) || end {
            self.progress
                .advance(at.saturating_sub(self.reported), &self.what);
            self.reported = at;
        }
    }
}

impl io::BufRead for ParCounted<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let empty = self.inner.fill_buf()?.is_empty();
        if empty {
            self.report(true);
        }
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.report(false);
    }
}

pub(crate) fn s2_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
}

pub(crate) fn label_of(d: &Detected) -> String {
    d.payload
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stream.tar.s2".into())
}

pub(crate) fn verify_one(
    d: &Detected,
    opts: &Options,
    progress: &dyn Progress,
) -> anyhow::Result<Report> {
    let label = label_of(d);
    let mut rep = Report {
        archive: Some(ArchiveInfo {
            format: d.kind.format().unwrap_or("unknown").to_string(),
            path: d.path.display().to_string(),
        }),
        ..Default::default()
    };
    // backup.json
    let in_dir = matches!(
        d.kind,
        ArchiveKind::BackupDirV1 | ArchiveKind::BackupDirV2 | ArchiveKind::BackupDirUnknown
    );
    let bj: Option<BackupJson> = match &d.backup_json {
        Some(p) => match backup_json::read_backup_json(p) {
            Ok(b) => Some(b),
            Err(e) => {
                rep.problems.push(Problem::new(
                    e.kind(),
                    Location {
                        file: Some("backup.json".into()),
                        offset: e.offset(),
                        ..Default::default()
                    },
                    format!("{e}; `nats stream restore` cannot use this backup"),
                ));
                None
            }
        },
        None if in_dir => {
            rep.problems.push(Problem::new(
                Kind::BackupJsonMissing,
                Location {
                    file: Some("backup.json".into()),
                    ..Default::default()
                },
                "backup.json is missing: `nats stream restore` needs it",
            ));
            None
        }
        None => None,
    };
    if let Some(b) = &bj {
        let c = config_fields::check_config(
            &b.config,
            ConfigDoc::StreamConfig,
            opts.target.release.as_ref(),
        );
        let loc = Location {
            account: Some("$G".into()),
            stream: b.stream_name().map(str::to_string),
            file: Some("backup.json".into()),
            ..Default::default()
        };
        rep.problems
            .extend(config_fields::problems(&c, "backup.json", &loc));
    }
    let Some(payload) = &d.payload else {
        rep.problems.push(Problem::new(
            Kind::ArchiveMissing,
            Location {
                file: Some(label),
                ..Default::default()
            },
            format!(
                "no archive payload: {}",
                d.reason.clone().unwrap_or_default()
            ),
        ));
        rep.finish();
        return Ok(rep);
    };
    let f = File::open(payload).with_context(|| format!("{}: cannot open", payload.display()))?;
    let what = payload_name(payload);
    let counted = Counted {
        inner: BufReader::with_capacity(1 << 20, f),
        progress,
        pending: 0,
        what: what.clone(),
    };
    // S2 chunks decode in parallel (each is independent); the payload file is read on the
    // decoder's own thread, so it is opened again there.
    let par = |f: File| ParCounted::open(f, progress, what.clone());
    // the tar stream again, from its start, for a second pass over the blocks
    let kind = d.kind;
    let payload_again = payload.clone();
    let reopen = move || -> io::Result<Box<dyn Read + Send>> {
        let f = BufReader::with_capacity(1 << 20, File::open(&payload_again)?);
        Ok(match kind {
            ArchiveKind::Tgz => Box::new(flate2::read::MultiGzDecoder::new(f)),
            ArchiveKind::Tar => Box::new(f),
            _ => Box::new(crate::s2::FrameReader::new(f)),
        })
    };
    let (stream, mut problems) = match d.kind {
        ArchiveKind::BackupDirV2 | ArchiveKind::BareV2 => verify_v2(
            par(File::open(payload)
                .with_context(|| format!("{}: cannot open", payload.display()))?),
            &label,
            bj.as_ref(),
            opts.target.at_ns,
            &mut rep.suppressed,
        ),
        ArchiveKind::BackupDirV1 | ArchiveKind::BareV1 => verify_v1(
            par(File::open(payload)
                .with_context(|| format!("{}: cannot open", payload.display()))?),
            &label,
            bj.as_ref(),
            opts,
            stream_name_first(d, payload, &label, bj.as_ref()),
            V1Access {
                enc: None,
                reader_decrypts: false,
                reopen: Some(&reopen),
            },
        ),
        ArchiveKind::Tgz | ArchiveKind::Tar => {
            // A tarball of an encrypted stream dir: with a key, a first pass reads its small
            // members (key files, sealed meta.inf, index.db, consumers) and the blocks are
            // decrypted as they stream by in the second.
            let first = stream_name_first(d, payload, &label, bj.as_ref());
            // encrypted and no key: what can be told from the small members, no block scanned
            let unread = match first {
                None if !opts.keys.has_key() => key_needed_v1(d, &label),
                _ => None,
            };
            let enc = match first {
                _ if unread.is_some() => None,
                None if opts.keys.has_key() => open_encrypted_archive(d, &label, &opts.keys),
                _ => None,
            };
            let name = enc.as_ref().map(|e| e.cfg_name.clone()).or(first);
            let res = match unread {
                Some(r) => r,
                None => verify_v1(
                    tar_payload(d.kind, counted),
                    &label,
                    bj.as_ref(),
                    opts,
                    name,
                    V1Access {
                        enc: enc.as_ref(),
                        reader_decrypts: d.kind == ArchiveKind::Tar,
                        reopen: Some(&reopen),
                    },
                ),
            };
            // key files although meta.inf parsed: read it again through the keys
            let retry = enc.is_none()
                && opts.keys.has_key()
                && res
                    .0
                    .as_ref()
                    .is_some_and(|s| s.encrypted && s.load.is_none());
            match retry
                .then(|| open_encrypted_archive(d, &label, &opts.keys))
                .flatten()
            {
                Some(e) => {
                    let f = File::open(payload)
                        .with_context(|| format!("{}: cannot open", payload.display()))?;
                    let counted = Counted {
                        inner: BufReader::with_capacity(1 << 20, f),
                        progress,
                        pending: 0,
                        what: what.clone(),
                    };
                    let name = Some(e.cfg_name.clone());
                    verify_v1(
                        tar_payload(d.kind, counted),
                        &label,
                        bj.as_ref(),
                        opts,
                        name,
                        V1Access {
                            enc: Some(&e),
                            reader_decrypts: d.kind == ArchiveKind::Tar,
                            reopen: Some(&reopen),
                        },
                    )
                }
                None => res,
            }
        }
        _ if s2_framed(payload) => {
            // S2 framing whose first chunk does not decode: say exactly where and why.
            let mut fr = crate::s2::FrameReader::new(counted);
            let err = io::copy(&mut fr, &mut io::sink()).err();
            let (kind, off, what) = match &err {
                Some(e) => (
                    crate::backup::io_error_kind(e),
                    crate::s2::compressed_offset_of(e),
                    e.to_string(),
                ),
                None => (
                    Kind::ArchiveUnrecognised,
                    Some(0),
                    "decodes, but to neither a tar nor a NATSARC1 archive".to_string(),
                ),
            };
            rep.problems.push(Problem::new(
                kind,
                Location {
                    file: Some(label.clone()),
                    offset: off,
                    ..Default::default()
                },
                format!("{label}: {what}"),
            ));
            (None, Vec::new())
        }
        _ => {
            rep.problems.push(Problem::new(
                Kind::ArchiveUnrecognised,
                Location {
                    file: Some(label.clone()),
                    offset: Some(0),
                    ..Default::default()
                },
                format!(
                    "{label}: {}",
                    d.reason
                        .clone()
                        .unwrap_or_else(|| "not a tar or NATSARC1 payload".into())
                ),
            ));
            (None, Vec::new())
        }
    };
    rep.problems.append(&mut problems);
    if let (Some(s), Some(b)) = (&stream, &bj) {
        compare_backup_json(s, b, &mut rep.problems);
    }
    if let Some(s) = stream {
        rep.streams.push(s);
    }
    rep.finish();
    Ok(rep)
}

/// The stream name that keys the record checksums, before the blocks stream by: backup.json's,
/// else the `meta.inf` of the archive, found by a first pass that reads the archive only up to
/// that member (the first member in server-made archives; after the blocks in archives made
/// by GNU tar, bsdtar or Python from a stream dir). Nothing is kept but meta.inf.
pub(crate) fn stream_name_first(
    d: &Detected,
    payload: &Path,
    label: &str,
    bj: Option<&BackupJson>,
) -> Option<String> {
    if let Some(n) = bj.and_then(|b| b.stream_name()) {
        return Some(n.to_string());
    }
    let f = File::open(payload).ok()?;
    let topts = TarOptions {
        label: label.to_string(),
        ..Default::default()
    };
    let want = StreamFile::MetaInf;
    let raw = match d.kind {
        ArchiveKind::Tgz => tar_walk::read_member(
            flate2::read::MultiGzDecoder::new(BufReader::new(f)),
            &topts,
            &want,
        ),
        ArchiveKind::Tar => tar_walk::read_member(BufReader::new(f), &topts, &want),
        _ => tar_walk::read_member(
            crate::s2::FrameReader::new(BufReader::new(f)),
            &topts,
            &want,
        ),
    }?;
    crate::filestore::meta::MetaInf::parse(&raw)
        .ok()
        .and_then(|m| m.name().map(str::to_string))
}

/// The decoded tar stream of a `.tgz` (gzip) or `.tar` payload.
fn tar_payload<'r, R: Read + 'r>(kind: ArchiveKind, r: R) -> Box<dyn Read + 'r> {
    match kind {
        ArchiveKind::Tgz => Box::new(flate2::read::MultiGzDecoder::new(r)),
        _ => Box::new(r),
    }
}

/// The stream dir name of a tarball (the key files' HMAC context): its top dir
/// (`tar czf ORDERS.tgz ORDERS/`), else the file name without `.tgz`, `.tar.gz`, `.tar`.
fn archive_dir_name(top_dir: Option<&str>, file_name: &str) -> String {
    if let Some(t) = top_dir.filter(|t| !t.is_empty()) {
        return t.to_string();
    }
    [".tar.gz", ".tgz", ".tar"]
        .iter()
        .find_map(|x| file_name.strip_suffix(x))
        .unwrap_or(file_name)
        .to_string()
}

/// The accounts a tarball's encrypted stream may have been written in, in the order tried:
/// `--source-account` alone when given; else the account of the members' paths
/// (`…/<ACC>/streams/<STREAM>/`), `$G`, the ring's [`KeyRing::try_accounts`] and the names of
/// the dirs holding the tarball (`/backups/ACC/ORDERS.tgz`), nearest first.
///
/// [`KeyRing::try_accounts`]: crate::filestore::keys::KeyRing::try_accounts
pub(crate) fn source_accounts(
    keys: &crate::filestore::keys::KeyRing,
    in_paths: Option<&str>,
    payload: &Path,
) -> Vec<String> {
    if let Some(a) = &keys.account {
        return vec![a.clone()];
    }
    let parents = std::path::absolute(payload)
        .ok()
        .map(|p| {
            p.ancestors()
                .skip(1)
                .take(4)
                .filter_map(|a| a.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut v: Vec<String> = Vec::new();
    for a in in_paths
        .map(str::to_string)
        .into_iter()
        .chain(["$G".to_string()])
        .chain(keys.try_accounts.iter().cloned())
        .chain(parents)
    {
        if !a.is_empty() && a != "streams" && !v.contains(&a) {
            v.push(a);
        }
    }
    v
}

/// A tarball of an encrypted stream dir (`tar czf ORDERS.tgz ORDERS/` of an encrypted store)
/// opened with `keys`: a first pass holds its small members (key files, meta.inf, index.db,
/// consumer files; never the blocks) and opens them as in a stream dir of the account
/// [`source_accounts`] finds (`e.account`). `None` when it holds no key files (or cannot be
/// read).
pub(crate) fn open_encrypted_archive(
    d: &Detected,
    label: &str,
    keys: &crate::filestore::keys::KeyRing,
) -> Option<crate::filestore::encrypted::EncryptedDir> {
    use crate::filestore::encrypted::{has_key_files, EncryptedDir};
    let payload = d.payload.as_ref()?;
    let f = BufReader::with_capacity(1 << 20, File::open(payload).ok()?);
    let topts = TarOptions {
        label: label.to_string(),
        ..Default::default()
    };
    let small = match d.kind {
        ArchiveKind::Tgz | ArchiveKind::Tar => {
            tar_walk::small_members(tar_payload(d.kind, f), &topts)
        }
        _ => tar_walk::small_members(crate::s2::FrameReader::new(f), &topts),
    };
    let names: Vec<String> = small.sizes.keys().cloned().collect();
    if !has_key_files(&names) {
        return None;
    }
    let file_name = payload
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir_name = archive_dir_name(small.summary.top_dir.as_deref(), &file_name);
    let accounts = source_accounts(keys, small.summary.account_dir.as_deref(), payload);
    let mut e = EncryptedDir::open_members_in(
        small.files,
        small.sizes,
        &accounts,
        keys.account.is_some(),
        &dir_name,
        keys,
    );
    let prefix = format!("{label}:");
    for p in &mut e.problems {
        if let Some(f) = p.loc.file.as_mut() {
            f.insert_str(0, &prefix);
        }
    }
    Some(e)
}

fn s2_framed(p: &Path) -> bool {
    let mut b = [0u8; 10];
    File::open(p).and_then(|mut f| f.read_exact(&mut b)).is_ok() && crate::s2::is_framed(&b)
}

/// Small files of a V1 archive, kept in memory for the shared stream checks.
#[derive(Default)]
struct MemSource {
    files: BTreeMap<String, Vec<u8>>,
    /// Every member path (blocks included, whose bytes are not kept).
    names: Vec<String>,
}

impl StreamSource for MemSource {
    fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.get(rel).cloned())
    }
    fn files(&self) -> Vec<String> {
        let mut v = self.names.clone();
        v.sort();
        v.dedup();
        v
    }
}

/// Reads a tar member of `size` bytes (capped by the walker: a block's largest size) into
/// `buf`, which comes back from the checker with its previous block: only the part of `buf`
/// beyond the previous block's length is zero-filled (`read_to_end` would zero-fill the whole
/// spare capacity again for every block).
fn read_member_into(mut rd: impl Read, size: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    let want = usize::try_from(size).unwrap_or(usize::MAX);
    if buf.capacity() < want {
        // room for any real block at once (no doubling past a reusable size)
        crate::filestore::block::reserve_for_block(buf, size);
    }
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut filled = 0;
    while let Some(dst) = buf.get_mut(filled..want).filter(|d| !d.is_empty()) {
        match rd.read(dst) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    if filled == want {
        rd.read_to_end(buf)?; // bytes past the declared size, if the reader gives any
    }
    Ok(())
}

/// How the blocks of a V1 payload are read: `enc`, the archive of an encrypted stream dir
/// opened with the keys; `reader_decrypts`, see [`verify_v1`]; `reopen`, the tar stream again
/// from its start for the limits pass ([`crate::check::archive_blocks`]).
#[derive(Clone, Copy)]
struct V1Access<'a> {
    enc: Option<&'a crate::filestore::encrypted::EncryptedDir>,
    reader_decrypts: bool,
    reopen: Option<&'a crate::check::archive_blocks::Reopen>,
}

/// Verify a V1 payload (the decoded tar of a stream dir). `enc`: the archive of an encrypted
/// stream dir opened with the keys ([`open_encrypted_archive`]): its small files are read
/// through it, and each block is decrypted in place in its buffer: by the reader when
/// `reader_decrypts` (a `.tar`: reading costs little, so the two threads share the work), else
/// by the checker (a `.tgz`: the reader is busy inflating).
fn verify_v1<R: Read>(
    r: R,
    label: &str,
    bj: Option<&BackupJson>,
    opts: &Options,
    name_first: Option<String>,
    how: V1Access<'_>,
) -> (Option<StreamReport>, Vec<Problem>) {
    let V1Access {
        enc,
        reader_decrypts,
        reopen,
    } = how;
    let mut mem = MemSource::default();
    let mut problems = Vec::new();
    let account = enc.map_or("$G".to_string(), |e| e.account.clone());
    let mut name: Option<String> = bj
        .and_then(|b| b.stream_name().map(str::to_string))
        .or(name_first);
    let topts = TarOptions {
        label: label.to_string(),
        stream: name.clone(),
        ..Default::default()
    };
    let prefix = format!("{label}:");
    let empty_dead = DeadSet::default();
    // (block index, bytes, already decrypted, a big block)
    let (tx, rx) = mpsc::sync_channel::<(u32, Vec<u8>, bool, bool)>(0);
    let mut tx = Some(tx);
    let mut rx = Some(rx);
    // Block buffers go back to the reader for reuse: at most two exist (one being filled, one
    // being checked), whatever the number of blocks.
    let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
    let mut back_tx = Some(back_tx);
    // A big block (above BIG_BLOCK: one record above 8 MiB, or a hostile member) is read
    // under the big-block lock, handed over with the lock released (holding it across the
    // hand-over deadlocked with the checker, which takes the lock to scan), and the next big
    // one is read only once the checker says it is done with this one: one big block in
    // memory at a time.
    let (big_done_tx, big_done_rx) = mpsc::channel::<()>();
    let mut big_done_tx = Some(big_done_tx);
    let mut big_in_flight = false;
    let mut errors_txt: Vec<(String, String)> = Vec::new();
    // how the blocks were decoded (set when the first one reaches the checker): the second
    // reads of the archive decode them the same way
    let mut scan_cmp: Option<crate::filestore::block::CmpReader> = None;
    let (summary, scans) = std::thread::scope(|scope| {
        let mut worker: Option<std::thread::ScopedJoinHandle<'_, Vec<BlockScan>>> = None;
        let summary = tar_walk::walk_tar(r, &topts, |m, rd| {
            mem.names.push(m.path.clone());
            match &m.layout {
                StreamFile::Block(n) => {
                    let Ok(n) = u32::try_from(*n) else {
                        return Ok(()); // absurd block index: listed, never scanned
                    };
                    // A member above a real block's size waits until no other big block is
                    // in memory (the checker takes the same lock while it scans one).
                    let is_big = m.size > crate::filestore::block::BIG_BLOCK;
                    if is_big && big_in_flight {
                        let _ = big_done_rx.recv();
                        big_in_flight = false;
                    }
                    let mut buf = {
                        let _big = crate::filestore::block::big_block_guard(m.size);
                        let mut buf = back_rx.try_recv().unwrap_or_default();
                        read_member_into(rd, m.size, &mut buf)?;
                        buf
                    };
                    if worker.is_none() {
                        let stream = name
                            .clone()
                            .or_else(|| {
                                mem.files
                                    .get("meta.inf")
                                    .and_then(|b| crate::filestore::meta::MetaInf::parse(b).ok())
                                    .and_then(|m| m.name().map(str::to_string))
                            })
                            .unwrap_or_default();
                        let rx = rx.take().expect("one worker");
                        let back = back_tx.take().expect("one worker");
                        let big_done = big_done_tx.take().expect("one worker");
                        let (account, prefix, dead) =
                            (account.clone(), prefix.clone(), &empty_dead);
                        let quick = opts.quick;
                        // blocks are decoded as the modelled release reads them:
                        // `--server-version`, else the writer's (meta.inf, before the blocks)
                        let cmp = crate::state::load::archive_cmp_reader(
                            opts.target.release.as_ref(),
                            mem.files.get("meta.inf").map(Vec::as_slice),
                        );
                        scan_cmp = Some(cmp);
                        worker = Some(scope.spawn(move || {
                            let ctx = ScanCtx {
                                account: &account,
                                stream: &stream,
                                dead,
                                quick,
                                file_prefix: &prefix,
                                keep_live: true,
                                stop_at_damage: false,
                                cmp,
                            };
                            rx.iter()
                                .map(|(i, mut b, plain, is_big)| {
                                    let big = b.len() as u64;
                                    let sc = {
                                        let _big = crate::filestore::block::big_block_guard(big);
                                        let key = enc.filter(|_| !plain).map(|e| e.block_key(i));
                                        match key {
                                            None => scan::scan_kept(&ctx, i, &b),
                                            Some(Ok(k)) => {
                                                xor_on_all_cores(k, &mut b);
                                                scan::scan_kept(&ctx, i, &b)
                                            }
                                            Some(Err(why)) => undecryptable(&ctx, i, why),
                                        }
                                    };
                                    if b.capacity() as u64 <= crate::filestore::block::BIG_BLOCK {
                                        let _ = back.send(b); // reuse; big ones are freed
                                    } else {
                                        drop(b);
                                    }
                                    if is_big {
                                        let _ = big_done.send(());
                                    }
                                    sc
                                })
                                .collect()
                        }));
                    }
                    let mut plain = false;
                    if let Some(k) = enc
                        .filter(|_| reader_decrypts)
                        .and_then(|e| e.block_key(n).ok())
                    {
                        xor_on_all_cores(k, &mut buf);
                        plain = true;
                    }
                    if let Some(t) = &tx {
                        if t.send((n, buf, plain, is_big)).is_err() {
                            return Err(io::Error::other("block checker stopped"));
                        }
                        big_in_flight |= is_big;
                    }
                }
                StreamFile::ErrorsTxt => {
                    let mut s = String::new();
                    let _ = rd.take(1 << 20).read_to_string(&mut s);
                    errors_txt.push((m.path.clone(), s));
                }
                _ => {
                    let mut buf = Vec::with_capacity(m.size as usize);
                    rd.read_to_end(&mut buf)?;
                    if m.path == "meta.inf" && name.is_none() {
                        name = crate::filestore::meta::MetaInf::parse(&buf)
                            .ok()
                            .and_then(|x| x.name().map(str::to_string));
                    }
                    mem.files.insert(m.path.clone(), buf);
                }
            }
            Ok(())
        });
        tx = None; // close the channel: the worker finishes
        let scans = worker
            .map(|w| w.join().unwrap_or_default())
            .unwrap_or_default();
        (summary, scans)
    });
    drop(tx);
    problems.extend(summary.problems.iter().cloned());
    problems.extend(summary.missing_required(&topts));
    for (p, text) in errors_txt {
        problems.push(Problem::new(
            Kind::BackupErrorsTxt,
            Location {
                file: Some(format!("{prefix}{p}")),
                ..Default::default()
            },
            format!(
                "the server reported an error while making this backup: {}",
                text.trim()
            ),
        ));
    }
    if !mem.files.contains_key("meta.inf") && scans.is_empty() {
        return (None, problems);
    }
    let dir_name = match enc {
        Some(e) => e.dir_name.clone(),
        // encrypted, no key: meta.inf names nothing; the dir name is the tarball's
        None if name.is_none() && crate::filestore::encrypted::has_key_files(&mem.names) => {
            archive_dir_name(summary.top_dir.as_deref(), label)
        }
        None => name
            .clone()
            .unwrap_or_else(|| summary.top_dir.clone().unwrap_or_default()),
    };
    let src: &dyn StreamSource = match enc {
        Some(e) => e,
        None => &mem,
    };
    let pre = crate::state::prelude::prelude_for(
        src,
        &account,
        &dir_name,
        &prefix,
        opts.target.release.as_ref(),
    );
    if pre.encrypted || enc.is_some_and(|e| e.wrong_key) {
        // without the key (or with the wrong one): what can be told, no state
        // (the key files' findings are the prelude's: `StreamSource::open_findings`)
        problems.extend(pre.problems);
        let sizes = summary
            .members
            .iter()
            .map(|m| (m.path.clone(), m.size))
            .collect();
        let encryption = match enc {
            Some(e) => e.report(),
            None => crate::filestore::encrypted::report_without_key_sized(&sizes),
        };
        let rep = unread_encrypted(account, name.unwrap_or(dir_name), encryption, &mem);
        return (Some(rep), problems);
    }
    // The load model decides from the index files; damaged blocks were cut as they streamed
    // by. The limits the server enforces at load read the blocks again: the archive is
    // walked once more when they remove anything (`reopen`).
    let release = store::model_release(opts, &pre);
    let recovery = crate::state::load::decide(&pre, release.0.as_ref(), src);
    let dead = pre.dead.clone();
    let again = reopen.map(|r| {
        let mut o = topts.clone();
        o.stream = Some(pre.cfg_name.clone());
        crate::check::archive_blocks::ArchiveBlocks::new(src, enc, r, o)
            .with_cmp(scan_cmp.unwrap_or_default())
    });
    let mut input = store::LoadInput::new(opts, recovery, release, &dead);
    input.blocks_again = again.as_ref().map(|a| a as &dyn StreamSource);
    let (mut rep, mut p) = store::finish_stream(pre, scans, src, &prefix, &input);
    rep.account = account;
    if let Some(e) = enc {
        rep.encrypted = true;
        rep.encryption = Some(e.report());
        rep.files = mem.files();
    }
    problems.append(&mut p);
    (Some(rep), problems)
}

/// A tarball of an encrypted stream dir read without a key: a first pass over its small members
/// (blocks skipped, never scanned: their bytes are ciphertext) gives the report (every encrypted
/// member with its size, the cipher) and its findings (`encrypted_key_needed`, and the tar
/// walk's). `None` when the archive holds no key files.
fn key_needed_v1(d: &Detected, label: &str) -> Option<(Option<StreamReport>, Vec<Problem>)> {
    let payload = d.payload.as_ref()?;
    let f = BufReader::with_capacity(1 << 20, File::open(payload).ok()?);
    let topts = TarOptions {
        label: label.to_string(),
        ..Default::default()
    };
    let small = tar_walk::small_members(tar_payload(d.kind, f), &topts);
    let names: Vec<String> = small.sizes.keys().cloned().collect();
    if !crate::filestore::encrypted::has_key_files(&names) {
        return None;
    }
    let dir_name = archive_dir_name(small.summary.top_dir.as_deref(), label);
    let mem = MemSource {
        files: small.files,
        names,
    };
    let prefix = format!("{label}:");
    // the account the members' paths name, else $G (without a key, nothing can tell)
    let account = small
        .summary
        .account_dir
        .clone()
        .unwrap_or_else(|| "$G".to_string());
    let pre = crate::state::prelude::prelude_for(&mem, &account, &dir_name, &prefix, None);
    let mut problems = small.summary.problems.clone();
    problems.extend(small.summary.missing_required(&topts));
    problems.extend(pre.problems);
    let encryption = crate::filestore::encrypted::report_without_key_sized(&small.sizes);
    let rep = unread_encrypted(account, dir_name, encryption, &mem);
    Some((Some(rep), problems))
}

/// The report of an encrypted stream read without its key (or with the wrong one): what the
/// archive lists (its blocks, files, the encryption), no state.
fn unread_encrypted(
    account: String,
    name: String,
    encryption: crate::base::report::EncryptionReport,
    mem: &MemSource,
) -> StreamReport {
    StreamReport {
        account,
        name,
        encrypted: true,
        encryption: Some(encryption),
        blocks: mem
            .names
            .iter()
            .filter(|n| {
                matches!(
                    crate::filestore::layout::classify_path(n),
                    Some(StreamFile::Block(_))
                )
            })
            .count(),
        index: crate::base::report::IndexKind::Encrypted,
        files: mem.files(),
        ..Default::default()
    }
}

/// Decrypt a whole block in place, its halves on two threads (the keystream is seekable):
/// the keystream is most of an encrypted archive's CPU time, and the thread that reads the
/// archive or checks the blocks alone would leave a core idle.
fn xor_on_all_cores(k: &crate::filestore::keys::AssetKey, b: &mut [u8]) {
    const MIN_SPLIT: usize = 256 << 10;
    if b.len() < 2 * MIN_SPLIT {
        k.xor_block(0, b);
        return;
    }
    let mid = (b.len() / 2) & !63; // on a keystream block boundary
    let (lo, hi) = b.split_at_mut(mid);
    rayon::join(|| k.xor_block(0, lo), || k.xor_block(mid as u64, hi));
}

/// The scan of a block whose key file did not open (reported by the key's finding): the
/// block cannot be decrypted.
fn undecryptable(ctx: &ScanCtx, i: u32, why: &str) -> BlockScan {
    let rel = format!("msgs/{i}.blk");
    BlockScan::unreadable_file(ctx, i, &rel, format!("cannot be decrypted: {why}"))
}

fn verify_v2<R: io::BufRead>(
    r: R,
    label: &str,
    bj: Option<&BackupJson>,
    at_ns: i64,
    suppressed: &mut std::collections::BTreeMap<String, u64>,
) -> (Option<StreamReport>, Vec<Problem>) {
    let name = bj.and_then(|b| b.stream_name().map(str::to_string));
    let vopts = V2Options {
        label: label.to_string(),
        account: Some("$G".into()),
        stream: name.clone(),
        max_msg_size: bj
            .and_then(|b| b.max_msg_size())
            .and_then(|m| u64::try_from(m).ok())
            .filter(|m| *m > 0),
        skip_message_payloads: true,
    };
    let mut subjects: HashMap<Vec<u8>, u64, crate::state::scan::FxBuild> = HashMap::default();
    let mut bytes = 0u64;
    let mut first_ts: Option<i64> = None;
    let mut last_ts: Option<i64> = None;
    let mut gaps = DeletedList::new();
    // the limits that expire messages after the restore (the snapshot obeyed the others)
    let mut expiry = bj.and_then(|b| {
        crate::state::load::ExpiryAsRestored::new(&crate::state::load::Limits::of(&b.config), at_ns)
    });
    let mut first_kept: Option<u64> = None;
    let sum = natsarc::scan_v2(r, vopts, |e, role| {
        if role != EntryRole::Message {
            return;
        }
        let size =
            natsarc::filestore_msg_size(e.name.len() as u64, e.header.len() as u64, e.payload_len);
        if let Some(x) = expiry.as_mut() {
            if x.removes(e.seq, e.timestamp, size, &e.name, &e.header)
                .is_some()
            {
                return;
            }
        }
        match subjects.get_mut(&e.name) {
            Some(c) => *c += 1,
            None => {
                subjects.insert(e.name.clone(), 1);
            }
        }
        bytes += size;
        if first_ts.is_none() {
            first_ts = Some(e.timestamp);
        }
        last_ts = Some(e.timestamp);
        first_kept.get_or_insert(e.seq);
        gaps.live(e.seq);
    });
    let mut problems = sum.problems.clone();
    for (k, n) in &sum.suppressed {
        *suppressed.entry(k.clone()).or_insert(0) += n;
    }
    let enforced = expiry
        .map(|x| x.finish(|subj| subjects.contains_key(subj)))
        .unwrap_or_default();
    let removed_msgs: u64 = enforced.removed.iter().map(|r| r.messages).sum();
    let mut totals = v2_totals(&sum, bytes);
    if removed_msgs > 0 {
        // what the restore keeps: the messages the limits left
        let kept = sum.messages.saturating_sub(removed_msgs);
        totals = StreamTotals::new(kept, bytes, first_kept, totals.last_seq);
    }
    let (msgs, first, last, deleted) = (
        totals.messages,
        totals.first_seq,
        totals.last_seq,
        totals.deleted,
    );
    let stream_name = name.clone().unwrap_or_default();
    check_v2_consumers(&sum, "$G", &stream_name, label, last, &mut problems);
    let consumers = v2_consumer_reports(&sum);
    let mut rep = StreamReport {
        account: "$G".into(),
        name: stream_name,
        messages: Some(msgs),
        bytes: Some(bytes),
        first_seq: Some(first),
        last_seq: Some(last),
        deleted: Some(deleted),
        subjects: Some(subjects.len() as u64),
        blocks: 0,
        consumers,
        first_ts,
        last_ts,
        index: crate::base::report::IndexKind::V2Archive,
        config: bj.map(|b| b.config.clone()),
        deleted_seqs: gaps.finish(last),
        subject_counts: subjects
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), *v))
            .collect(),
        ..Default::default()
    };
    if removed_msgs > 0 {
        expired_after_restore(&mut rep, &enforced, at_ns, &mut problems);
    }
    (Some(rep), problems)
}

/// A V2 archive's stream after the limits expired messages right after its restore: the
/// findings, the subject delete markers, and the load report saying so.
fn expired_after_restore(
    rep: &mut StreamReport,
    enforced: &crate::state::load::Enforced,
    at_ns: i64,
    problems: &mut Vec<Problem>,
) {
    let last = rep.last_seq.unwrap_or(0);
    if rep.messages == Some(0) {
        // emptied: the server keeps the last message's time
        rep.last_ts = enforced.removed.iter().map(|r| r.last_ts).max();
        rep.first_ts = None;
    }
    let loc = Location::stream(&rep.account, &rep.name);
    problems.extend(crate::state::load::limit_findings(&loc, enforced, last));
    store::add_markers(rep, &enforced.markers, last, at_ns);
    rep.load = Some(crate::base::report::LoadReport {
        verdict: crate::base::report::Verdict::Repaired,
        at: crate::base::time::rfc3339_full(at_ns),
        recovery: "restore".into(),
        reason: Some(
            "a V2 archive is restored message by message; the limits then expire what is too old"
                .into(),
        ),
        removed: store::removal_reports(&enforced.removed),
        markers: store::marker_reports(&enforced.markers, last),
        next_step: Some("nothing to do: the server removes them after the restore".into()),
        ..Default::default()
    });
}

/// Each consumer's state in a V2 archive against the stream's last sequence (the same checks as
/// for o.dat on disk).
pub(crate) fn check_v2_consumers(
    sum: &natsarc::V2Summary,
    account: &str,
    stream: &str,
    label: &str,
    last: u64,
    problems: &mut Vec<Problem>,
) {
    for c in &sum.consumers {
        let Some(st) = c.entry.as_ref().and_then(|e| e.state.as_ref()) else {
            continue;
        };
        let loc = Location::stream(account, stream)
            .consumer(&c.name)
            .file(format!("{label}:consumers/{}", c.name))
            .at(c.offset);
        let pending: Vec<u64> = st.pending.iter().flat_map(|p| p.keys().copied()).collect();
        store::check_consumer_invariants(
            &loc,
            (st.delivered.consumer_seq, st.delivered.stream_seq),
            (st.ack_floor.consumer_seq, st.ack_floor.stream_seq),
            &pending,
            last,
            problems,
        );
    }
}

/// The stream state the server restores from a V2 archive: its messages, and the last
/// sequence of state.json (deletes at the end of the stream).
pub(crate) fn v2_totals(sum: &natsarc::V2Summary, bytes: u64) -> StreamTotals {
    let last = sum
        .last_msg_seq
        .unwrap_or(0)
        .max(sum.state.as_ref().map_or(0, |s| s.last_seq));
    StreamTotals::new(sum.messages, bytes, sum.first_msg_seq, last)
}

/// The consumers of a V2 archive as reports: config and state as the archive holds them.
pub(crate) fn v2_consumer_reports(sum: &natsarc::V2Summary) -> Vec<ConsumerReport> {
    let mut consumers = Vec::new();
    for c in &sum.consumers {
        let mut cr = ConsumerReport {
            name: c.name.clone(),
            ..Default::default()
        };
        if let Some(e) = &c.entry {
            if let Some(cfg) = &e.config {
                cr.durable = cfg.durable_name.clone();
                cr.ack_policy = cfg.ack_policy.clone();
                cr.filter_subject = cfg.filter_subject.clone();
            }
            if let Some(st) = &e.state {
                cr.delivered_stream_seq = Some(st.delivered.stream_seq);
                cr.delivered_consumer_seq = Some(st.delivered.consumer_seq);
                cr.ack_floor_stream_seq = Some(st.ack_floor.stream_seq);
                cr.ack_floor_consumer_seq = Some(st.ack_floor.consumer_seq);
                cr.pending = Some(st.pending.as_ref().map_or(0, |p| p.len() as u64));
                cr.redelivered = Some(st.redelivered.as_ref().map_or(0, |p| p.len() as u64));
            }
        }
        consumers.push(cr);
    }
    consumers
}

/// backup.json against the archive's content: name, first/last seq, message count, consumers.
pub(crate) fn compare_backup_json(s: &StreamReport, b: &BackupJson, problems: &mut Vec<Problem>) {
    let loc = || Location {
        account: Some(s.account.clone()),
        stream: Some(s.name.clone()),
        file: Some("backup.json".into()),
        ..Default::default()
    };
    if let Some(n) = b.stream_name() {
        if n != s.name {
            problems.push(Problem::new(
                Kind::BackupJsonMismatch,
                loc(),
                format!(
                    "backup.json names stream {n:?}, the archive holds {:?}",
                    s.name
                ),
            ));
        }
    }
    let st = &b.state;
    // what the archive holds: the state before the limits the server enforces at load
    // (they remove the oldest messages; subject delete markers come after the last)
    let (mut held, mut first, mut last) = (
        s.messages.unwrap_or(0),
        s.first_seq.unwrap_or(0),
        s.last_seq.unwrap_or(0),
    );
    if let Some(l) = &s.load {
        for r in &l.removed {
            held += r.messages;
            if let Some(&(a, _)) = r.ranges.first() {
                first = first.min(a);
            }
        }
        last -= (l.markers.len() as u64).min(last);
    }
    let got = (held, first, last);
    // A V1 snapshot is not a point-in-time copy: blocks may have grown while it was taken.
    // Content holding everything backup.json promises (and more) is a warning, less is an error.
    for (what, want, have) in [
        ("messages", st.messages, got.0),
        ("first_seq", st.first_seq, got.1),
        ("last_seq", st.last_seq, got.2),
    ] {
        if want != have {
            let grew = got.2 > st.last_seq && got.0 >= st.messages;
            let msg = format!("backup.json state says {what} {want}, the archive holds {have}");
            problems.push(if grew {
                Problem::new(Kind::BackupJsonStateGrew, loc(), msg)
            } else {
                Problem::new(Kind::BackupJsonMismatch, loc(), msg)
            });
        }
    }
    if let Some(cc) = st.consumer_count {
        if cc != s.consumers.len() as u64 {
            problems.push(Problem::new(
                Kind::BackupJsonMismatch,
                loc(),
                format!(
                    "backup.json state counts {cc} consumers, the archive holds {} ({})",
                    s.consumers.len(),
                    s.consumers
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    if let Some(cfg) = &s.config {
        // fields that must agree for the restored stream to be the one backed up
        for k in [
            "name",
            "subjects",
            "retention",
            "storage",
            "max_msgs",
            "max_bytes",
            "max_age",
            "max_msgs_per_subject",
            "discard",
            "num_replicas",
        ] {
            if let (Some(a), Some(bv)) = (cfg.get(k), b.config.get(k)) {
                if a != bv {
                    problems.push(Problem::new(
                        Kind::BackupJsonConfigDiffers,
                        loc(),
                        format!("config {k}: backup.json has {bv}, the archive's meta.inf has {a} (restore applies backup.json's config)"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::progress::NoProgress;
    use std::fs;
    use std::path::PathBuf;

    /// A tarball's blocks are read once, yet a framing error in one is truncated as on disk:
    /// the stream numbers, verdict and lost ranges of a `.tgz` of a damaged stream dir equal
    /// those of the dir (the part kept was scanned as the block streamed by; the deletes
    /// index.db lists, learned after the block, are not "lost").
    #[test]
    fn a_tgz_of_a_damaged_dir_loses_what_the_dir_loses() {
        let t = crate::testdata::sample("v2.15.1-plain");
        let d = crate::testdata::stream_dir(&t, "v2.15.1-plain", "MULTI");
        let blk = d.join("msgs/2.blk");
        let mut b = fs::read(&blk).unwrap();
        // the fifth record's length, one bit off
        let mut off = 0usize;
        for _ in 0..4 {
            off += (u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) & 0x7fff_ffff) as usize;
        }
        b[off] ^= 1;
        fs::write(&blk, &b).unwrap();
        let tgz = tgz_of(&d, t.path());
        let opts = crate::check::Options::default();
        let on_disk = crate::check::verify_path(&d, &opts, &NoProgress).unwrap();
        let packed = crate::check::verify_path(&tgz, &opts, &NoProgress).unwrap();
        let view = |r: &Report| {
            let s = &r.streams[0];
            let l = s.load.as_ref().unwrap();
            (
                (s.messages, s.first_seq, s.last_seq, s.deleted),
                (l.verdict, l.lost.clone(), l.lost_messages),
            )
        };
        let want = view(&on_disk);
        assert!(want.1 .2 > 0, "{:#?}", on_disk.problems);
        assert_eq!(view(&packed), want, "{:#?}", packed.problems);
    }

    /// A tarball of a stream dir with an erase-damaged compressed block
    /// (fixtures/m3-erased-cmp/v2.10.25), read as each release reads it (`--server-version`):
    /// its blocks decode as that release's S2 reader decodes them and every rule of the load
    /// model applies as on disk, so the numbers, verdict, lost and unreadable sequences and the
    /// subject counts of the `.tgz` equal those of the dir, with index.db and without it (the
    /// dir's are checked against the real releases in `releases.json`).
    #[test]
    fn a_tgz_of_an_erase_damaged_dir_loads_as_the_dir_on_every_release() {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/m3-erased-cmp/v2.10.25/CMP");
        for index in [true, false] {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().join("CMP");
            crate::testdata::copy_tree(&fixture, &d);
            if !index {
                fs::remove_file(d.join("msgs/index.db")).unwrap();
            }
            let tgz = tgz_of(&d, t.path());
            for rel in ["2.10.25", "2.12.2", "2.12.3", "2.14.4", "2.14.5", "2.15.1"] {
                let opts = Options {
                    target: crate::check::Target {
                        release: Some(crate::base::release::Release::parse(rel).unwrap()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let view = |r: &Report| {
                    let s = &r.streams[0];
                    let l = s.load.as_ref().unwrap();
                    (
                        (s.messages, s.first_seq, s.last_seq, s.deleted),
                        (l.verdict, l.lost.clone(), l.unreadable.clone()),
                        s.subject_counts.clone(),
                    )
                };
                let on_disk = view(&crate::check::verify_path(&d, &opts, &NoProgress).unwrap());
                let packed = view(&crate::check::verify_path(&tgz, &opts, &NoProgress).unwrap());
                assert_eq!(packed, on_disk, "{rel}, index.db {index}");
            }
        }
    }

    fn samples() -> PathBuf {
        crate::testdata::samples_dir().join("backups")
    }

    /// `<out>/<NAME>.tgz` of the stream dir `d` (named NAME), as `tar czf` makes it.
    fn tgz_of(d: &Path, out: &Path) -> PathBuf {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        let tgz = out.join(format!("{name}.tgz"));
        let mut ar = tar::Builder::new(flate2::write::GzEncoder::new(
            fs::File::create(&tgz).unwrap(),
            flate2::Compression::fast(),
        ));
        ar.append_dir_all(&name, d).unwrap();
        ar.into_inner().unwrap().finish().unwrap();
        tgz
    }

    fn run(p: &Path) -> Report {
        crate::check::verify_path(p, &Options::default(), &NoProgress).unwrap()
    }

    fn kinds(r: &Report) -> Vec<&str> {
        r.problems.iter().map(|p| p.kind.as_str()).collect()
    }

    /// Every real backup: clean, and the same numbers the server reported before the snapshot.
    #[test]
    fn real_backups_match_server_truth() {
        for (v, fmt) in [("v2.15.1", "v2"), ("v2.14", "v1"), ("v2.9", "v1")] {
            let dir = samples().join(v);
            let truth: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.join("server-truth.json")).unwrap()).unwrap();
            let t = &truth["summary"];
            for p in [
                dir.join("ORDERS"),
                dir.join("ORDERS/stream.tar.s2"),
                dir.clone(),
            ] {
                let r = run(&p);
                assert!(
                    r.ok && r.exit_code() == 0,
                    "{}: {:#?}",
                    p.display(),
                    r.problems
                );
                let a = r.archive.as_ref().unwrap();
                assert_eq!(
                    a.format,
                    if p == dir { "account" } else { fmt },
                    "{}",
                    p.display()
                );
                let s = &r.streams[0];
                assert_eq!(s.messages, t["messages"].as_u64(), "{v}");
                assert_eq!(s.bytes, t["bytes"].as_u64(), "{v}");
                assert_eq!(s.first_seq, t["first_seq"].as_u64());
                assert_eq!(s.last_seq, t["last_seq"].as_u64());
                assert_eq!(s.deleted, t["num_deleted"].as_u64());
                assert_eq!(s.subjects, t["num_subjects"].as_u64());
                assert_eq!(s.deleted_seqs, vec![100, 101]);
                for c in &s.consumers {
                    let tc = &t["consumers"][&c.name];
                    assert_eq!(
                        c.delivered_stream_seq,
                        tc["delivered"][1].as_u64(),
                        "{v} {}",
                        c.name
                    );
                    assert_eq!(c.ack_floor_stream_seq, tc["ack_floor"][1].as_u64());
                    assert_eq!(c.pending, tc["num_ack_pending"].as_u64());
                    assert_eq!(c.redelivered, tc["num_redelivered"].as_u64());
                }
            }
        }
    }

    fn copy_backup(v: &str) -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("ORDERS");
        fs::create_dir(&d).unwrap();
        for f in ["backup.json", "stream.tar.s2"] {
            fs::copy(samples().join(v).join("ORDERS").join(f), d.join(f)).unwrap();
        }
        (t, d)
    }

    /// Rewrite the tar inside a V1 backup: `edit` gets (path, bytes) and may change, drop or add members.
    fn rewrite_v1(d: &Path, edit: impl Fn(&mut Vec<(String, Vec<u8>)>)) {
        let raw = fs::read(d.join("stream.tar.s2")).unwrap();
        let tar_bytes = crate::s2::decode_stream(&raw).unwrap();
        let mut ar = tar::Archive::new(&tar_bytes[..]);
        let mut members: Vec<(String, Vec<u8>)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let p = e.path().unwrap().to_string_lossy().into_owned();
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                (p, b)
            })
            .collect();
        edit(&mut members);
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in &members {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            b.append_data(&mut h, p, &data[..]).unwrap();
        }
        let tar_out = b.into_inner().unwrap();
        let mut w = crate::s2::FrameWriter::new(Vec::new());
        std::io::Write::write_all(&mut w, &tar_out).unwrap();
        fs::write(d.join("stream.tar.s2"), w.finish().unwrap()).unwrap();
    }

    #[test]
    fn unknown_keys_in_the_metas_inside_a_v1_backup() {
        let (_t, d) = copy_backup("v2.14");
        // meta.inf with a renamed key and its meta.sum recomputed; a consumer meta.inf with a
        // misspelt key.
        rewrite_v1(&d, |m| {
            let name = {
                let inf = &m.iter().find(|(p, _)| p == "meta.inf").unwrap().1;
                crate::filestore::meta::MetaInf::parse(inf)
                    .unwrap()
                    .name()
                    .unwrap()
                    .to_string()
            };
            let inf = m.iter_mut().find(|(p, _)| p == "meta.inf").unwrap();
            let new = String::from_utf8(inf.1.clone()).unwrap().replacen(
                "\"subjects\":",
                "\"rubjects\":",
                1,
            );
            inf.1 = new.clone().into_bytes();
            let sum = m.iter_mut().find(|(p, _)| p == "meta.sum").unwrap();
            sum.1 = crate::filestore::meta::expected_sum(&name, new.as_bytes()).into_bytes();
            let c = m
                .iter_mut()
                .find(|(p, _)| p.starts_with("obs/") && p.ends_with("/meta.inf"))
                .unwrap();
            c.1 = String::from_utf8(c.1.clone())
                .unwrap()
                .replacen("\"ack_policy\":", "\"ack_polcy\":", 1)
                .into_bytes();
        });
        let r = run(&d);
        assert!(
            !r.problems.iter().any(|p| p.kind == "meta_sum_mismatch"),
            "{:#?}",
            r.problems
        );
        let p: Vec<_> = r
            .problems
            .iter()
            .filter(|p| p.kind == "config_unknown_field")
            .collect();
        assert_eq!(p.len(), 2, "{:#?}", r.problems);
        assert_eq!(p[0].loc.file.as_deref(), Some("stream.tar.s2:meta.inf"));
        assert!(
            p[0].message
                .contains("unknown field \"rubjects\" in meta.inf"),
            "{}",
            p[0].message
        );
        assert!(p[1].loc.consumer.is_some());
        assert!(
            p[1].message.contains("marks this consumer offline"),
            "{}",
            p[1].message
        );
        assert!(
            p[1].message.contains("unknown field \"ack_polcy\""),
            "{}",
            p[1].message
        );
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn record_damage_inside_a_v1_backup_names_the_member() {
        let (_t, d) = copy_backup("v2.14");
        rewrite_v1(&d, |m| {
            let blk = m.iter_mut().find(|(p, _)| p == "msgs/1.blk").unwrap();
            let n = blk.1.len();
            blk.1[n / 2] ^= 0x20;
        });
        let r = run(&d);
        assert_eq!(r.exit_code(), 1);
        let p = r
            .problems
            .iter()
            .find(|p| p.kind == "record_checksum" || p.kind == "record_content")
            .unwrap_or_else(|| panic!("{:#?}", r.problems));
        assert_eq!(p.loc.file.as_deref(), Some("stream.tar.s2:msgs/1.blk"));
        assert!(
            p.loc.offset.unwrap() <= 31628 / 2 && p.loc.seq.is_some(),
            "{p:?}"
        );
    }

    #[test]
    fn missing_block_errors_txt_and_missing_consumer_files() {
        let (_t, d) = copy_backup("v2.14");
        rewrite_v1(&d, |m| {
            m.retain(|(p, _)| p != "msgs/1.blk" && p != "obs/SHIP/meta.sum");
            m.push(("errors.txt".into(), b"snapshot failed: disk full".to_vec()));
        });
        let r = run(&d);
        let k = kinds(&r);
        assert!(k.contains(&"index_db_missing_block"), "{k:?}");
        assert!(k.contains(&"backup_errors_txt"), "{k:?}");
        assert!(k.contains(&"consumer_meta_sum_missing"), "{k:?}");
        let p = r
            .problems
            .iter()
            .find(|p| p.kind == "index_db_missing_block")
            .unwrap();
        assert_eq!(p.loc.file.as_deref(), Some("stream.tar.s2:msgs/1.blk"));
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn s2_damage_truncation_and_trailing_garbage() {
        for v in ["v2.14", "v2.15.1"] {
            let (_t, d) = copy_backup(v);
            let p = d.join("stream.tar.s2");
            let orig = fs::read(&p).unwrap();
            let mut b = orig.clone();
            b[orig.len() / 2] ^= 1;
            fs::write(&p, &b).unwrap();
            let r = run(&d);
            let pr = r
                .problems
                .iter()
                .find(|p| p.kind == "s2_corrupt")
                .unwrap_or_else(|| panic!("{v}: {:#?}", r.problems));
            assert_eq!(pr.loc.file.as_deref(), Some("stream.tar.s2"), "{v}");
            assert_eq!(r.exit_code(), 1);

            fs::write(&p, &orig[..orig.len() - 100]).unwrap();
            let r = run(&d);
            assert!(
                kinds(&r).iter().any(|k| k.contains("truncated")),
                "{v}: {:?}",
                kinds(&r)
            );
            assert_eq!(r.exit_code(), 1);

            let mut b = orig.clone();
            b.extend_from_slice(b"garbage after the end");
            fs::write(&p, &b).unwrap();
            let r = run(&d);
            assert!(!r.problems.is_empty(), "{v}: trailing garbage unnoticed");
        }
    }

    #[test]
    fn unknown_key_in_backup_json_is_judged_for_the_release() {
        for v in ["v2.15.1", "v2.14", "v2.9"] {
            let (_t, d) = copy_backup(v);
            let bj = fs::read_to_string(d.join("backup.json")).unwrap();
            assert!(run(&d)
                .problems
                .iter()
                .all(|p| !p.kind.as_str().starts_with("config_")));
            let bad = bj.replacen("\"subjects\":", "\"rubjects\":", 1);
            assert_ne!(bad, bj);
            fs::write(d.join("backup.json"), bad).unwrap();
            let r = run(&d);
            let p: Vec<_> = r
                .problems
                .iter()
                .filter(|p| p.kind == "config_unknown_field")
                .collect();
            assert_eq!(p.len(), 1, "{v}: {:#?}", r.problems);
            assert_eq!(p[0].loc.file.as_deref(), Some("backup.json"));
            assert!(
                p[0].message.starts_with(
                    "nats-server 2.15.1 marks this stream offline: unknown field \"rubjects\" in backup.json"
                ),
                "{}",
                p[0].message
            );
            assert_eq!(r.exit_code(), 1);
            let opts = Options {
                target: crate::check::Target {
                    release: Some(crate::base::release::Release::new(2, 10, 26)),
                    ..Default::default()
                },
                ..Default::default()
            };
            let r = crate::check::verify_path(&d, &opts, &NoProgress).unwrap();
            let kinds: Vec<&str> = r.problems.iter().map(|p| p.kind.as_str()).collect();
            assert!(
                kinds.contains(&"config_unknown_field_ignored"),
                "{v}: {kinds:?}"
            );
            assert!(!kinds.contains(&"config_unknown_field"), "{v}: {kinds:?}");
        }
    }

    #[test]
    fn backup_json_missing_empty_partial_and_disagreeing() {
        let (_t, d) = copy_backup("v2.15.1");
        let bj = fs::read(d.join("backup.json")).unwrap();
        fs::remove_file(d.join("backup.json")).unwrap();
        assert!(kinds(&run(&d)).contains(&"backup_json_missing"));
        fs::write(d.join("backup.json"), b"").unwrap();
        assert!(kinds(&run(&d))
            .iter()
            .any(|k| k.starts_with("backup_json_")));
        fs::write(d.join("backup.json"), &bj[..bj.len() / 2]).unwrap();
        let r = run(&d);
        assert!(
            kinds(&r).iter().any(|k| k.starts_with("backup_json_")),
            "{:?}",
            kinds(&r)
        );
        assert_eq!(r.exit_code(), 1);
        let mut v: serde_json::Value = serde_json::from_slice(&bj).unwrap();
        v["state"]["messages"] = 9999.into();
        v["state"]["consumer_count"] = 5.into();
        fs::write(d.join("backup.json"), serde_json::to_vec(&v).unwrap()).unwrap();
        let r = run(&d);
        let n = r
            .problems
            .iter()
            .filter(|p| p.kind == "backup_json_mismatch")
            .count();
        assert_eq!(n, 2, "{:#?}", r.problems);
    }

    #[test]
    fn tgz_and_bare_files_are_recognised_by_content() {
        let t = tempfile::tempdir().unwrap();
        let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/backups");
        // misleading names on purpose
        let a = t.path().join("backup.zip");
        fs::copy(fx.join("ORDERS.tgz"), &a).unwrap();
        let r = run(&a);
        assert_eq!(r.archive.as_ref().unwrap().format, "tgz");
        assert_eq!(r.streams[0].messages, Some(8));
        assert!(r.ok, "{:#?}", r.problems);
        let b = t.path().join("x.tgz");
        fs::copy(samples().join("v2.9/ORDERS/stream.tar.s2"), &b).unwrap();
        let r = run(&b);
        assert_eq!(r.archive.as_ref().unwrap().format, "v1");
        assert_eq!(r.streams[0].messages, Some(298));
    }

    #[test]
    fn json_report_carries_the_archive() {
        let r = run(&samples().join("v2.15.1/ORDERS"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["archive"]["format"], "v2");
        assert_eq!(v["streams"][0]["messages"], 298);
        assert!(v["problems"].as_array().unwrap().is_empty());
    }
}
