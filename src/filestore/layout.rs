//! The stream directory layout: which relative paths are files of a stream, and what each is.
//! The one answer used by the store verifier (unknown files, block lists), the backup tar
//! walker (which members are accepted) and extract.
//!
//! ```text
//! <stream>/meta.inf  meta.sum  [meta.key]  [sources.db]
//! <stream>/msgs/<N>.blk  [<N>.key]  [<N>.idx  <N>.fss  (2.9)]  index.db  [thw.db]  [sched.db]
//! <stream>/obs/<consumer>/meta.inf  meta.sum  o.dat  [meta.key]
//! ```
//! plus `errors.txt`, which only a backup holds (the snapshot's list of read errors).

use crate::filestore::block::MAX_BLOCK_FILE;

/// The largest state file (`index.db`, `o.dat`, `thw.db`, `sched.db`, `sources.db`) jetdir reads.
pub const MAX_STATE_FILE: u64 = 64 << 20;

/// What a file of a stream directory is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamFile {
    /// `meta.inf`: the stream config.
    MetaInf,
    /// `meta.sum`: HighwayHash of meta.inf.
    MetaSum,
    /// `meta.key`: the stream's encryption key (encrypted stores).
    MetaKey,
    /// `msgs/<N>.blk`: a message block.
    Block(u64),
    /// `msgs/<N>.idx`: a block's index (2.9 and older).
    BlockIdx(u64),
    /// `msgs/<N>.fss`: a block's per-subject state (2.9 and older).
    BlockFss(u64),
    /// `msgs/<N>.key`: a block's encryption key.
    BlockKey(u64),
    /// `msgs/index.db`: the stream state (2.10+).
    IndexDb,
    /// `msgs/thw.db`: the TTL hash wheel (2.11+).
    ThwDb,
    /// `msgs/sched.db`: message schedules (2.12+).
    SchedDb,
    /// `sources.db`: source positions.
    SourcesDb,
    /// `errors.txt`: read errors listed by the server's snapshot (backups only).
    ErrorsTxt,
    /// `obs/<name>/meta.inf`
    ConsumerMetaInf(String),
    /// `obs/<name>/meta.sum`
    ConsumerMetaSum(String),
    /// `obs/<name>/o.dat`: the consumer's delivery and ack state.
    ConsumerState(String),
    /// `obs/<name>/meta.key`
    ConsumerKey(String),
}

impl StreamFile {
    /// The block number of a block, index, per-subject or key file of `msgs/`, if the server
    /// can address it (block numbers are 32-bit).
    pub fn block(&self) -> Option<u32> {
        match self {
            StreamFile::Block(n)
            | StreamFile::BlockIdx(n)
            | StreamFile::BlockFss(n)
            | StreamFile::BlockKey(n) => u32::try_from(*n).ok(),
            _ => None,
        }
    }

    /// Part of a stream directory on disk: everything but a backup's `errors.txt`, with block
    /// numbers the server can address.
    pub fn on_disk(&self) -> bool {
        match self {
            StreamFile::ErrorsTxt => false,
            StreamFile::Block(_)
            | StreamFile::BlockIdx(_)
            | StreamFile::BlockFss(_)
            | StreamFile::BlockKey(_) => self.block().is_some(),
            _ => true,
        }
    }

    /// The largest file of this kind jetdir reads, from what servers write (every release 2.9
    /// to 2.15). A longer file is damaged or hostile: an archive member above it is refused
    /// (`archive_hostile_member`) and a file on disk is read only up to it.
    ///
    /// - blocks: [`MAX_BLOCK_FILE`] (8 MiB `maxBlockSize` + one 32 MiB record + framing);
    /// - `.idx` / `.fss` (2.9): they describe one block, so no more than its size;
    /// - `meta.inf` (stream and consumer configs): 8 MiB, the largest `max_payload` the server
    ///   accepts without a warning (`MAX_PAYLOAD_MAX_SIZE`), which bounds the API request that
    ///   created the config;
    /// - `meta.sum`, key files: 4 KiB (16 hex digits; a key is under 100 bytes);
    /// - `index.db`, `o.dat`, `thw.db`, `sched.db`, `sources.db`: 64 MiB. The format does not
    ///   bound them (they grow with subjects, deletes, pending acks, timers), so this is a
    ///   generous practical limit: several million entries;
    /// - `errors.txt`: 16 MiB.
    pub fn max_size(&self) -> u64 {
        match self {
            StreamFile::Block(_) | StreamFile::BlockIdx(_) | StreamFile::BlockFss(_) => {
                MAX_BLOCK_FILE
            }
            StreamFile::MetaInf | StreamFile::ConsumerMetaInf(_) => 8 << 20,
            StreamFile::MetaSum
            | StreamFile::ConsumerMetaSum(_)
            | StreamFile::MetaKey
            | StreamFile::BlockKey(_)
            | StreamFile::ConsumerKey(_) => 4 << 10,
            StreamFile::IndexDb
            | StreamFile::ThwDb
            | StreamFile::SchedDb
            | StreamFile::SourcesDb
            | StreamFile::ConsumerState(_) => MAX_STATE_FILE,
            StreamFile::ErrorsTxt => 16 << 20,
        }
    }

    /// An encryption key file (a store holds them; a backup never does).
    pub fn is_key(&self) -> bool {
        matches!(
            self,
            StreamFile::MetaKey | StreamFile::BlockKey(_) | StreamFile::ConsumerKey(_)
        )
    }
}

/// Consumer (durable) names as the server allows them in a path.
pub fn valid_consumer_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n != "."
        && n != ".."
        && !n.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '.' | '*' | '>')
        })
}

/// The block number of `name` if it is `<digits><ext>` (e.g. `12.blk`).
pub fn block_number(name: &str, ext: &str) -> Option<u64> {
    let digits = name.strip_suffix(ext)?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Classify a normalised relative path, given as its components.
pub fn classify(comps: &[&str]) -> Option<StreamFile> {
    match comps {
        ["meta.inf"] => Some(StreamFile::MetaInf),
        ["meta.sum"] => Some(StreamFile::MetaSum),
        ["meta.key"] => Some(StreamFile::MetaKey),
        ["sources.db"] => Some(StreamFile::SourcesDb),
        ["errors.txt"] => Some(StreamFile::ErrorsTxt),
        ["msgs", "index.db"] => Some(StreamFile::IndexDb),
        ["msgs", "thw.db"] => Some(StreamFile::ThwDb),
        ["msgs", "sched.db"] => Some(StreamFile::SchedDb),
        ["msgs", f] => block_number(f, ".blk")
            .map(StreamFile::Block)
            .or_else(|| block_number(f, ".idx").map(StreamFile::BlockIdx))
            .or_else(|| block_number(f, ".fss").map(StreamFile::BlockFss))
            .or_else(|| block_number(f, ".key").map(StreamFile::BlockKey)),
        ["obs", c, f] if valid_consumer_name(c) => match *f {
            "meta.inf" => Some(StreamFile::ConsumerMetaInf(c.to_string())),
            "meta.sum" => Some(StreamFile::ConsumerMetaSum(c.to_string())),
            "o.dat" => Some(StreamFile::ConsumerState(c.to_string())),
            "meta.key" => Some(StreamFile::ConsumerKey(c.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// [`classify`] for a `/`-separated relative path.
pub fn classify_path(rel: &str) -> Option<StreamFile> {
    let comps: Vec<&str> = rel.split('/').collect();
    classify(&comps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout() {
        assert_eq!(classify_path("msgs/12.blk"), Some(StreamFile::Block(12)));
        assert_eq!(classify_path("msgs/3.idx"), Some(StreamFile::BlockIdx(3)));
        assert_eq!(classify_path("msgs/3.key"), Some(StreamFile::BlockKey(3)));
        assert_eq!(
            classify_path("obs/C1/o.dat"),
            Some(StreamFile::ConsumerState("C1".into()))
        );
        assert!(classify_path("msgs/3.key").unwrap().is_key());
        for bad in [
            "msgs/.blk",
            "msgs/1x.blk",
            "msgs/1.blk.tmp",
            "obs/a.b/o.dat",
            "obs/C1/x",
            "msgs/sub/1.blk",
            "__msgs__/1.blk",
            "meta.inf.new",
        ] {
            assert_eq!(classify_path(bad), None, "{bad}");
        }
    }
}
