//! Backup archive formats: detection by content, the V2 `NATSARC1` archive, `backup.json`, and a
//! hostile-input-safe tar walker for V1 / tarball backups. Nothing here writes to disk.
pub mod backup_json;
pub mod detect;
pub mod manifest;
pub mod natsarc;
pub mod tar_walk;
pub mod tar_write;

use std::io;

/// The S2 decoding error inside an `io::Error` from [`crate::s2::FrameReader`], if that is what it is.
pub fn s2_error_of(e: &io::Error) -> Option<&crate::s2::S2Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::s2::S2Error>())
}

/// Offset in the *compressed* file where an S2 decoding error was found.
pub fn compressed_offset_of(e: &io::Error) -> Option<u64> {
    s2_error_of(e).map(|s| s.offset())
}

/// Problem kind for an I/O error met while reading an archive: `s2_truncated` when the S2 file
/// ends inside a chunk, `s2_corrupt` for other framing/CRC errors of the S2 layer,
/// `archive_corrupt` for other invalid data (e.g. gzip), `archive_truncated`, `io_error`.
pub fn io_error_kind(e: &io::Error) -> &'static str {
    if let Some(s) = s2_error_of(e) {
        if s.to_string().to_ascii_lowercase().contains("truncated") {
            "s2_truncated"
        } else {
            "s2_corrupt"
        }
    } else if e.kind() == io::ErrorKind::InvalidInput || e.kind() == io::ErrorKind::InvalidData {
        "archive_corrupt"
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        "archive_truncated"
    } else {
        "io_error"
    }
}

#[cfg(test)]
mod tests;
