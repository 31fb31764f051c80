//! Decide what a path holds, by content (file names are only used to find `backup.json` /
//! `stream.tar.s2` inside a backup directory, which is how `nats stream backup` names them).
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Decoded bytes needed to tell a tar (ustar magic at 257) from NATSARC1.
const SNIFF: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    /// `backup.json` + `stream.tar.s2` holding S2( tar ) — servers 2.2 – 2.14.
    BackupDirV1,
    /// `backup.json` + `stream.tar.s2` holding S2( NATSARC1 ) — servers 2.15+.
    BackupDirV2,
    /// A backup directory whose payload could not be classified (missing, empty, not S2, or its
    /// first chunk does not decode); `Detected::reason` says why.
    BackupDirUnknown,
    /// A bare S2-framed tar file.
    BareV1,
    /// A bare S2-framed NATSARC1 file.
    BareV2,
    /// A bare S2-framed file whose first bytes do not decode to a tar or NATSARC1.
    BareUnknown,
    /// gzip-compressed tar of a stream directory.
    Tgz,
    /// Plain tar of a stream directory.
    Tar,
    /// `nats account backup`: sub-directories that are backup directories.
    AccountBackupDir,
    /// Not archives: a server store dir (`jetstream/` inside), an account dir (`streams/`), or a
    /// stream dir (`meta.inf` / `msgs/`). Route these to the store verifier.
    StoreDir,
    StoreAccountDir,
    StreamDir,
}

impl ArchiveKind {
    pub fn is_store(self) -> bool {
        matches!(
            self,
            ArchiveKind::StoreDir | ArchiveKind::StoreAccountDir | ArchiveKind::StreamDir
        )
    }
    /// The `archive.format` of the JSON report.
    pub fn format(self) -> Option<&'static str> {
        match self {
            ArchiveKind::BackupDirV1 | ArchiveKind::BareV1 => Some("v1"),
            ArchiveKind::BackupDirV2 | ArchiveKind::BareV2 => Some("v2"),
            ArchiveKind::Tgz => Some("tgz"),
            ArchiveKind::Tar => Some("tar"),
            _ => None,
        }
    }
}

/// What the payload's first decoded bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Tar,
    NatsArc,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub kind: ArchiveKind,
    /// The path given.
    pub path: PathBuf,
    /// The file holding the archive bytes (`stream.tar.s2`, the bare file, the tarball).
    pub payload: Option<PathBuf>,
    /// `backup.json` when present (in the backup dir, or beside a bare file).
    pub backup_json: Option<PathBuf>,
    /// Streams of an account backup (each a backup dir), sorted by path.
    pub streams: Vec<Detected>,
    /// Why a kind is `*Unknown`, or notes (e.g. skipped sub-directories).
    pub reason: Option<String>,
}

impl Detected {
    fn new(kind: ArchiveKind, path: &Path) -> Self {
        Detected {
            kind,
            path: path.to_path_buf(),
            payload: None,
            backup_json: None,
            streams: Vec::new(),
            reason: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum DetectError {
    #[error("{0}: no such file or directory")]
    NotFound(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a backup, archive or store ({why})")]
    Unrecognised { path: PathBuf, why: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DetectError + '_ {
    move |source| DetectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read up to `n` bytes.
fn read_prefix<R: Read>(mut r: R, n: usize) -> io::Result<Vec<u8>> {
    let mut v = Vec::with_capacity(n);
    (&mut r).take(n as u64).read_to_end(&mut v)?;
    Ok(v)
}

/// A tar header: `ustar` at 257 (POSIX `ustar\0` or GNU `ustar  `) and a valid checksum.
pub fn looks_like_tar(block: &[u8]) -> bool {
    let Some(h) = block.get(..512) else {
        return false;
    };
    if h.get(257..262) != Some(b"ustar") {
        return false;
    }
    let stored = h.get(148..156).and_then(|f| {
        let s = std::str::from_utf8(f).ok()?;
        u32::from_str_radix(s.trim_matches(|c: char| c == ' ' || c == '\0'), 8).ok()
    });
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == Some(sum)
}

/// The `ustar` magic of a tar header at 257 (whatever its checksum says).
fn has_ustar_magic(block: &[u8]) -> bool {
    block.len() >= 512 && block.get(257..262) == Some(b"ustar")
}

/// Classify decoded payload bytes.
pub fn classify_payload(decoded: &[u8]) -> Payload {
    if decoded.starts_with(super::natsarc::MAGIC) {
        Payload::NatsArc
    } else if looks_like_tar(decoded) {
        Payload::Tar
    } else {
        Payload::Unknown
    }
}

/// Decode the first bytes of an S2/Snappy-framed file and classify them.
fn sniff_framed(path: &Path) -> Result<(Payload, Option<String>), DetectError> {
    let f = File::open(path).map_err(io_err(path))?;
    let mut rd = crate::s2::FrameReader::new(io::BufReader::new(f));
    let mut v = Vec::with_capacity(SNIFF);
    match (&mut rd).take(SNIFF as u64).read_to_end(&mut v) {
        Ok(_) => {}
        Err(e) => {
            if crate::s2::s2_error_of(&e).is_some() || e.kind() == io::ErrorKind::InvalidData {
                // Partial output may still tell the format (the error can be in a later chunk).
                let p = classify_payload(&v);
                if p == Payload::NatsArc || (p == Payload::Tar && v.len() >= 512) {
                    return Ok((p, None));
                }
                return Ok((
                    Payload::Unknown,
                    Some(format!("S2 stream does not decode: {e}")),
                ));
            }
            return Err(DetectError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    }
    let p = classify_payload(&v);
    let why = match p {
        Payload::Unknown if v.is_empty() => Some("S2 stream decodes to nothing".to_string()),
        Payload::Unknown => {
            Some("decoded bytes are neither a tar nor a NATSARC1 archive".to_string())
        }
        _ => None,
    };
    Ok((p, why))
}

fn is_file(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
}
fn is_dir(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.is_dir()).unwrap_or(false)
}

/// Classify a single file by its first bytes.
fn detect_file(path: &Path) -> Result<Detected, DetectError> {
    let f = File::open(path).map_err(io_err(path))?;
    let head = read_prefix(f, SNIFF).map_err(io_err(path))?;
    let mut d = Detected::new(ArchiveKind::BareUnknown, path);
    d.payload = Some(path.to_path_buf());
    if crate::s2::is_framed(&head) {
        let (p, why) = sniff_framed(path)?;
        d.kind = match p {
            Payload::Tar => ArchiveKind::BareV1,
            Payload::NatsArc => ArchiveKind::BareV2,
            Payload::Unknown => ArchiveKind::BareUnknown,
        };
        d.reason = why;
        if let Some(parent) = path.parent() {
            let bj = parent.join("backup.json");
            if is_file(&bj) {
                d.backup_json = Some(bj);
            }
        }
        return Ok(d);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let f = File::open(path).map_err(io_err(path))?;
        let inner = read_prefix(flate2::read::GzDecoder::new(io::BufReader::new(f)), SNIFF);
        // A gzip file that does not decompress, or whose tar header is damaged (the ustar
        // magic is there, the checksum is not), is a damaged tarball: verification says
        // where (exit 1), not "not a backup" (exit 2).
        return match inner {
            Ok(b) if looks_like_tar(&b) || has_ustar_magic(&b) => {
                d.kind = ArchiveKind::Tgz;
                Ok(d)
            }
            Ok(_) => Err(DetectError::Unrecognised {
                path: path.to_path_buf(),
                why: "gzip file that does not hold a tar".into(),
            }),
            Err(e) => {
                d.kind = ArchiveKind::Tgz;
                d.reason = Some(format!("gzip file that does not decompress: {e}"));
                Ok(d)
            }
        };
    }
    if looks_like_tar(&head) || has_ustar_magic(&head) {
        d.kind = ArchiveKind::Tar;
        return Ok(d);
    }
    let why = if head.is_empty() {
        "empty file".to_string()
    } else if head.starts_with(super::natsarc::MAGIC) {
        "a raw NATSARC1 archive without S2 framing (nats-server refuses it; frame it first)"
            .to_string()
    } else {
        "unknown content".to_string()
    };
    Err(DetectError::Unrecognised {
        path: path.to_path_buf(),
        why,
    })
}

/// A directory written by `nats stream backup`?
fn detect_backup_dir(path: &Path) -> Result<Option<Detected>, DetectError> {
    let bj = path.join("backup.json");
    let payload = path.join("stream.tar.s2");
    let (has_bj, has_payload) = (is_file(&bj), is_file(&payload));
    if !has_bj && !has_payload {
        return Ok(None);
    }
    let mut d = Detected::new(ArchiveKind::BackupDirUnknown, path);
    if has_bj {
        d.backup_json = Some(bj);
    }
    if !has_payload {
        d.reason = Some("stream.tar.s2 is missing".into());
        return Ok(Some(d));
    }
    d.payload = Some(payload.clone());
    let head = read_prefix(File::open(&payload).map_err(io_err(&payload))?, 16)
        .map_err(io_err(&payload))?;
    if head.is_empty() {
        d.reason = Some(
            "stream.tar.s2 is empty (an interrupted `nats stream backup` leaves it empty)".into(),
        );
        return Ok(Some(d));
    }
    if !crate::s2::is_framed(&head) {
        d.reason = Some("stream.tar.s2 does not start with an S2/Snappy stream identifier".into());
        return Ok(Some(d));
    }
    let (p, why) = sniff_framed(&payload)?;
    d.kind = match p {
        Payload::Tar => ArchiveKind::BackupDirV1,
        Payload::NatsArc => ArchiveKind::BackupDirV2,
        Payload::Unknown => ArchiveKind::BackupDirUnknown,
    };
    d.reason = why;
    Ok(Some(d))
}

fn detect_dir(path: &Path) -> Result<Detected, DetectError> {
    if let Some(d) = detect_backup_dir(path)? {
        return Ok(d);
    }
    if is_file(&path.join("meta.inf")) || is_dir(&path.join("msgs")) {
        return Ok(Detected::new(ArchiveKind::StreamDir, path));
    }
    if is_dir(&path.join("jetstream")) {
        return Ok(Detected::new(ArchiveKind::StoreDir, path));
    }
    if is_dir(&path.join("streams")) {
        return Ok(Detected::new(ArchiveKind::StoreAccountDir, path));
    }
    let mut subdirs: Vec<PathBuf> = Vec::new();
    for ent in std::fs::read_dir(path).map_err(io_err(path))? {
        let ent = ent.map_err(io_err(path))?;
        let p = ent.path();
        if is_dir(&p) {
            subdirs.push(p);
        }
    }
    subdirs.sort();
    let mut streams = Vec::new();
    let mut skipped = Vec::new();
    for p in subdirs {
        match detect_backup_dir(&p)? {
            Some(d) => streams.push(d),
            None => skipped.push(
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
        }
    }
    if streams.is_empty() {
        return Err(DetectError::Unrecognised {
            path: path.to_path_buf(),
            why: "a directory with no backup.json, stream.tar.s2, meta.inf, msgs/, jetstream/ or backup sub-directories".into(),
        });
    }
    let mut d = Detected::new(ArchiveKind::AccountBackupDir, path);
    d.streams = streams;
    if !skipped.is_empty() {
        d.reason = Some(format!(
            "sub-directories that are not backups: {}",
            skipped.join(", ")
        ));
    }
    Ok(d)
}

/// Decide what `path` is, by content.
pub fn detect(path: &Path) -> Result<Detected, DetectError> {
    let md = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DetectError::NotFound(path.to_path_buf()))
        }
        Err(e) => {
            return Err(DetectError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    if md.is_dir() {
        detect_dir(path)
    } else if md.is_file() {
        detect_file(path)
    } else {
        Err(DetectError::Unrecognised {
            path: path.to_path_buf(),
            why: "not a regular file or directory".into(),
        })
    }
}
