//! The blocks of a V1 archive (tar in S2, `.tgz`, `.tar`) read a second time, for the load
//! model's passes that need records again (the limits the server enforces at load: max_msgs,
//! max_bytes, max_age, max_msgs_per_subject, message TTLs). The first pass scans each block as
//! it streams by and keeps none; this source walks the archive again from its start, on its
//! own thread, and hands over only the block asked for: one block in memory at a time. Blocks
//! asked for in tar order cost one more pass over the archive; a block the walk has already
//! passed starts a new walk.
use crate::backup::tar_walk::{self, TarOptions};
use crate::base::problem::{Location, Problem};
use crate::filestore::encrypted::EncryptedDir;
use crate::filestore::layout::StreamFile;
use crate::filestore::source::{OwnedDecoded, StreamSource};
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;

/// Opens the archive's tar stream again (decompressed), from its start.
pub(crate) type Reopen = dyn Fn() -> io::Result<Box<dyn Read + Send>> + Sync;

/// What the walking thread says.
enum Said {
    /// A block member is next: its path in the stream dir.
    Member(String),
    /// The bytes of the member just named (asked for).
    Bytes(Vec<u8>),
}

/// One walk over the archive, paused at each block member until told to read or skip it.
struct Walk {
    said: Receiver<Said>,
    /// `true`: read the member just named; `false`: skip it.
    answer: SyncSender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Walk {
    fn start(reopen: &Reopen, opts: &TarOptions) -> io::Result<Walk> {
        let r = reopen()?;
        let opts = opts.clone();
        let (said_tx, said) = sync_channel::<Said>(0);
        let (answer, answer_rx) = sync_channel::<bool>(0);
        let thread = std::thread::spawn(move || {
            tar_walk::walk_tar(r, &opts, |m, rd| {
                if !matches!(m.layout, StreamFile::Block(_)) {
                    return Ok(());
                }
                let stop = || io::Error::other("no longer needed");
                said_tx
                    .send(Said::Member(m.path.clone()))
                    .map_err(|_| stop())?;
                if !answer_rx.recv().map_err(|_| stop())? {
                    return Ok(()); // skipped: the walker passes over its bytes
                }
                // read under the big-block lock, handed over without it (the reader takes it)
                let buf = {
                    let _big = crate::filestore::block::big_block_guard(m.size);
                    let mut buf = Vec::with_capacity(crate::filestore::source::big_reservation(
                        m.size,
                    ) as usize);
                    rd.read_to_end(&mut buf)?;
                    buf
                };
                said_tx.send(Said::Bytes(buf)).map_err(|_| stop())
            });
        });
        Ok(Walk {
            said,
            answer,
            thread: Some(thread),
        })
    }

    /// The bytes of member `rel` when it comes later in this walk; `None` when the walk ends
    /// first.
    fn find(&mut self, rel: &str) -> Option<Vec<u8>> {
        loop {
            match self.said.recv().ok()? {
                Said::Member(p) if p == rel => {
                    self.answer.send(true).ok()?;
                    return match self.said.recv().ok()? {
                        Said::Bytes(b) => Some(b),
                        Said::Member(_) => None,
                    };
                }
                Said::Member(_) => self.answer.send(false).ok()?,
                Said::Bytes(_) => {}
            }
        }
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        // closing both channels ends the walking thread at its next member
        let (_, dead_rx) = sync_channel::<Said>(0);
        drop(std::mem::replace(&mut self.said, dead_rx));
        let (dead_tx, _) = sync_channel::<bool>(0);
        drop(std::mem::replace(&mut self.answer, dead_tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The small files of an archive (from the first pass) and its blocks read again on demand.
pub(crate) struct ArchiveBlocks<'a> {
    /// Small files (and, for an encrypted archive, their decryption).
    pub small: &'a dyn StreamSource,
    /// The block keys of an encrypted archive.
    pub enc: Option<&'a EncryptedDir>,
    pub reopen: &'a Reopen,
    pub opts: TarOptions,
    walk: Mutex<Option<Walk>>,
    /// How a `cmp` block is decoded (as the first pass's scans decoded it).
    cmp: crate::filestore::block::CmpReader,
}

impl<'a> ArchiveBlocks<'a> {
    pub fn new(
        small: &'a dyn StreamSource,
        enc: Option<&'a EncryptedDir>,
        reopen: &'a Reopen,
        opts: TarOptions,
    ) -> Self {
        ArchiveBlocks {
            small,
            enc,
            reopen,
            opts,
            walk: Mutex::new(None),
            cmp: Default::default(),
        }
    }

    /// Decode `cmp` blocks as `rd` ([`crate::state::load::archive_cmp_reader`]).
    pub fn with_cmp(mut self, rd: crate::filestore::block::CmpReader) -> Self {
        self.cmp = rd;
        self
    }

    /// The raw bytes of block member `rel`: from the current walk when it lies ahead, else
    /// from a new walk (at most one more pass).
    fn raw_block(&self, rel: &str) -> Option<Vec<u8>> {
        let mut w = self.walk.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = w.as_mut().and_then(|w| w.find(rel)) {
            return Some(b);
        }
        *w = None; // ended (or passed it): start again
        *w = Walk::start(self.reopen, &self.opts).ok();
        w.as_mut().and_then(|w| w.find(rel))
    }
}

impl StreamSource for ArchiveBlocks<'_> {
    fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        self.small.read(rel)
    }
    fn files(&self) -> Vec<String> {
        self.small.files()
    }
    fn can_refetch(&self, rel: &str) -> bool {
        matches!(
            crate::filestore::layout::classify_path(rel),
            Some(StreamFile::Block(_))
        ) && self.small.files().iter().any(|f| f == rel)
            || self.small.can_refetch(rel)
    }
    fn fetch_block(
        &self,
        rel: &str,
        _loc: Location,
        _problems: &mut Vec<Problem>,
    ) -> Option<(OwnedDecoded, u64)> {
        let Some(StreamFile::Block(i)) = crate::filestore::layout::classify_path(rel) else {
            return None;
        };
        let mut raw = self.raw_block(rel)?;
        if let Some(e) = self.enc {
            let k = e.block_key(u32::try_from(i).ok()?).ok()?;
            k.xor_block(0, &mut raw);
        }
        let _big = crate::filestore::block::big_block_guard(raw.len() as u64);
        Some(crate::filestore::source::decoded_block(raw, self.cmp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    struct Small(BTreeMap<String, Vec<u8>>);
    impl StreamSource for Small {
        fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
            Ok(self.0.get(rel).cloned())
        }
        fn files(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
    }

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_cksum();
            b.append_data(&mut h, p, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn blocks_in_any_tar_order_are_found_one_walk_at_a_time() {
        let tar = Arc::new(tar_of(&[
            ("ORDERS/msgs/3.blk", b"three"),
            ("ORDERS/msgs/1.blk", b"one"),
            ("ORDERS/meta.inf", b"{}"),
            ("ORDERS/msgs/2.blk", b"two"),
        ]));
        let walks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (t2, w2) = (tar.clone(), walks.clone());
        let reopen = move || -> io::Result<Box<dyn Read + Send>> {
            w2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Box::new(io::Cursor::new(t2.as_ref().clone())))
        };
        let small = Small(BTreeMap::new());
        let src = ArchiveBlocks::new(&small, None, &reopen, TarOptions::default());
        let get = |rel: &str| {
            src.fetch_block(rel, Location::default(), &mut Vec::new())
                .map(|(d, n)| (d.unwrap().0, n))
        };
        // in index order: 1 and 2 in the first walk, 3 lies behind them: one more walk
        assert_eq!(get("msgs/1.blk"), Some((b"one".to_vec(), 3)));
        assert_eq!(get("msgs/2.blk"), Some((b"two".to_vec(), 3)));
        assert_eq!(walks.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(get("msgs/3.blk"), Some((b"three".to_vec(), 5)));
        assert_eq!(walks.load(std::sync::atomic::Ordering::SeqCst), 2);
        // absent: one full walk more, then none
        assert_eq!(get("msgs/9.blk"), None);
        assert_eq!(walks.load(std::sync::atomic::Ordering::SeqCst), 3);
        // not a block
        assert_eq!(get("meta.inf"), None);
    }
}
