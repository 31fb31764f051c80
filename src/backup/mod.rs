//! Backup archive formats: detection by content, the V2 `NATSARC1` archive, `backup.json`, and a
//! hostile-input-safe tar walker for V1 / tarball backups. Nothing here writes to disk.
pub(crate) mod backup_json;
pub(crate) mod detect;
pub(crate) mod manifest;
pub(crate) mod natsarc;
pub(crate) mod tar_walk;
pub(crate) mod tar_write;

use crate::base::problem::Kind;
use std::io;

/// Problem kind for an I/O error met while reading an archive: `s2_truncated` when the S2 file
/// ends inside a chunk, `s2_corrupt` for other framing/CRC errors of the S2 layer,
/// `archive_corrupt` for other invalid data (e.g. gzip), `archive_truncated`, `io_error`.
pub fn io_error_kind(e: &io::Error) -> Kind {
    if let Some(s) = crate::s2::s2_error_of(e) {
        if matches!(s, crate::s2::S2Error::Truncated { .. }) {
            Kind::S2Truncated
        } else {
            Kind::S2Corrupt
        }
    } else if e.kind() == io::ErrorKind::InvalidInput || e.kind() == io::ErrorKind::InvalidData {
        Kind::ArchiveCorrupt
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        Kind::ArchiveTruncated
    } else {
        Kind::IoError
    }
}

#[cfg(test)]
mod tests;

pub use natsarc::{
    filestore_msg_size, scan_v2, ArcEntry, EntryRole, NatsArcWriter, V2Options, V2Summary,
};
