//! Every live message of a stream directory, in sequence order.
//!
//! "Live" means what the verifier counts: not erased, not in the delete maps of index.db /
//! `.idx`, below no floor, and not named by a tombstone anywhere in the stream (2.10+ writes
//! tombstones into later blocks). Two passes over the blocks: the first collects the live
//! sequences and every tombstone (block scans with checksums skipped, in parallel), the second
//! walks the records again and hands out the live ones. Damaged framing is skipped the way the
//! scanner skips it (resync to the next intact record); a sequence that does not increase is
//! never handed out twice, so the output is always strictly ascending.
//!
//! `jetdir pack` (ops/pack/v2.rs) does this walk itself, in bounded memory, with
//! [`walk_records`] for the blocks it holds in memory; the whole-stream walk here
//! (`reference::walk_live`) is kept for the tests, which compare the two.
use crate::filestore::block::{self, RecordKind, Records};

/// Totals over the messages handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: Option<u64>,
    pub first_ts: Option<i64>,
    pub last_seq: Option<u64>,
    pub last_ts: Option<i64>,
    pub subjects: u64,
}

/// The whole-stream walk, kept as the reference that `jetdir pack`'s own walk
/// (`ops/pack/v2.rs`, the same records in bounded memory) is compared with in the tests.
#[cfg(test)]
pub(crate) mod reference {
    use super::*;
    use crate::base::progress::NoProgress;
    use crate::base::progress::Progress;
    use crate::filestore::source::DirSource;
    use crate::state::scan::{self, ScanCtx, SeqBits};
    use rayon::prelude::*;
    use std::collections::HashSet;
    use std::path::Path;

    /// One live message. `headers` is the raw NATS header block (empty when the record has none).
    #[derive(Debug, Clone, Copy)]
    pub struct Msg<'a> {
        pub seq: u64,
        pub ts: i64,
        pub subject: &'a [u8],
        pub headers: &'a [u8],
        pub payload: &'a [u8],
    }

    #[derive(Debug, thiserror::Error)]
    pub enum MessagesError {
        #[error("{0}: stream is encrypted at rest (key needed)")]
        Encrypted(String),
        #[error("{0}: cannot read: {1}")]
        Io(String, std::io::Error),
        #[error("{0}: compressed block cannot be decoded: {1}")]
        Decompress(String, crate::s2::S2Error),
        /// The callback failed (e.g. the output could not be written).
        #[error("{0}")]
        Callback(std::io::Error),
    }

    struct BlockLive {
        index: u32,
        live: SeqBits,
        /// The block could not be read in the first pass; the second pass skips it too.
        unreadable: bool,
    }

    fn dir_name(p: &Path) -> String {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Totals of the live messages without doing anything with them.
    pub fn live_stats(stream_dir: &Path) -> Result<LiveStats, MessagesError> {
        walk_live(stream_dir, &NoProgress, |_| Ok(()))
    }

    /// Calls `f` for every live message of `stream_dir`, in ascending sequence order, reporting
    /// progress (bytes of block files of the second pass).
    pub fn walk_live<F>(
        stream_dir: &Path,
        progress: &dyn Progress,
        mut f: F,
    ) -> Result<LiveStats, MessagesError>
    where
        F: FnMut(&Msg) -> std::io::Result<()>,
    {
        let account = stream_dir
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == "streams"))
            .and_then(|p| p.parent())
            .map(dir_name)
            .unwrap_or_else(|| "$G".to_string());
        let name = dir_name(stream_dir);
        let src = DirSource::new(stream_dir.to_path_buf());
        let pre = crate::state::prelude::prelude(&src, &account, &name, "");
        if pre.encrypted {
            return Err(MessagesError::Encrypted(stream_dir.display().to_string()));
        }
        let ctx = ScanCtx {
            account: &account,
            stream: &pre.cfg_name,
            dead: &pre.dead,
            quick: true,
            file_prefix: "",
            keep_live: false,
            stop_at_damage: false,
            cmp: Default::default(),
        };
        // Pass 1: live sequences per block and every tombstone.
        let firsts: Vec<(BlockLive, Vec<u64>)> = crate::base::par::one_per_job(&pre.blocks)
            .map(|&i| {
                match crate::filestore::source::read_file_capped(
                    stream_dir,
                    &format!("msgs/{i}.blk"),
                ) {
                    Ok(raw) => {
                        let s = scan::scan_block(&ctx, i, &raw);
                        (
                            BlockLive {
                                index: i,
                                live: s.live_bits,
                                unreadable: s.unreadable,
                            },
                            s.tombstones,
                        )
                    }
                    Err(_) => (
                        BlockLive {
                            index: i,
                            live: SeqBits::default(),
                            unreadable: true,
                        },
                        Vec::new(),
                    ),
                }
            })
            .collect();
        let mut tombs: HashSet<u64> = HashSet::new();
        let mut blocks = Vec::with_capacity(firsts.len());
        for (b, t) in firsts {
            tombs.extend(t);
            blocks.push(b);
        }
        blocks.sort_by_key(|b| b.index);
        // Pass 2: hand out the live records.
        let mut stats = LiveStats::default();
        let mut subjects: HashSet<Vec<u8>> = HashSet::new();
        let mut last_out: Option<u64> = None;
        for b in &blocks {
            if b.unreadable {
                continue;
            }
            let rel = format!("msgs/{}.blk", b.index);
            let raw = crate::filestore::source::read_file_capped(stream_dir, &rel)
                .map_err(|e| MessagesError::Io(rel.clone(), e))?;
            let (plain, _) = crate::filestore::block::plain_block(&raw)
                .map_err(|e| MessagesError::Decompress(rel.clone(), e))?;
            let key = block::block_key(&pre.cfg_name, b.index);
            let mut cb_err: Option<std::io::Error> = None;
            walk_records(&plain, &key, |r| {
                if r.kind() != RecordKind::Message
                    || !b.live.get(r.seq)
                    || tombs.contains(&r.seq)
                    || last_out.is_some_and(|l| r.seq <= l)
                {
                    return true;
                }
                let m = Msg {
                    seq: r.seq,
                    ts: r.ts,
                    subject: r.subject,
                    headers: r.headers.unwrap_or(&[]),
                    payload: r.payload,
                };
                if let Err(e) = f(&m) {
                    cb_err = Some(e);
                    return false;
                }
                last_out = Some(r.seq);
                stats.messages += 1;
                stats.bytes += u64::from(r.len);
                if stats.first_seq.is_none() {
                    stats.first_seq = Some(r.seq);
                    stats.first_ts = Some(r.ts);
                }
                stats.last_seq = Some(r.seq);
                stats.last_ts = Some(r.ts);
                if !subjects.contains(r.subject) {
                    subjects.insert(r.subject.to_vec());
                }
                true
            });
            if let Some(e) = cb_err {
                return Err(MessagesError::Callback(e));
            }
            progress.advance(raw.len() as u64, &format!("{account} > {name} {rel}"));
        }
        stats.subjects = subjects.len() as u64;
        Ok(stats)
    }
}
#[cfg(test)]
pub(crate) use reference::*;

/// Walks the records of a plain block like the scanner does: after damaged framing, continue
/// at the next record that frames and verifies with a higher sequence. `f` returns false to
/// stop.
pub(crate) fn walk_records<'a>(
    plain: &'a [u8],
    key: &highway::Key,
    mut f: impl FnMut(&block::Record<'a>) -> bool,
) {
    let mut pos = 0usize;
    let mut prev_seq: Option<u64> = None;
    loop {
        let mut failed = None;
        for rec in Records::starting_at(plain, pos) {
            match rec {
                Ok(r) => {
                    if r.kind() != RecordKind::Tombstone {
                        prev_seq = Some(prev_seq.map_or(r.seq, |p| p.max(r.seq)));
                    }
                    if !f(&r) {
                        return;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let Some(fe) = failed else { return };
        let lo = prev_seq.map_or(0, |p| p + 1);
        match block::resync(plain, fe.offset + 1, key, block::resync_window(lo)) {
            Some(n) => pos = n,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::progress::NoProgress;
    use crate::testdata;
    use std::fs;

    fn facts(t: &tempfile::TempDir, sample: &str) -> serde_json::Value {
        serde_json::from_slice(&fs::read(t.path().join(sample).join("facts.json")).unwrap())
            .unwrap()
    }

    /// Every live message equals what the server returned for MSG.GET, for every stream of
    /// the 2.15 plain/s2 and the 2.9 samples.
    #[test]
    fn live_messages_equal_the_servers() {
        for sample in ["v2.15.1-plain", "v2.15.1-s2", "v2.9.10-legacy"] {
            let t = testdata::sample(sample);
            let f = facts(&t, sample);
            for (name, s) in f["streams"].as_object().unwrap() {
                let dir = t
                    .path()
                    .join(sample)
                    .join("store/jetstream/$G/streams")
                    .join(name);
                let mut got = Vec::new();
                let st = walk_live(&dir, &NoProgress, |m| {
                    got.push((
                        m.seq,
                        String::from_utf8_lossy(m.subject).into_owned(),
                        String::from_utf8_lossy(m.headers).into_owned(),
                        m.payload.to_vec(),
                    ));
                    Ok(())
                })
                .unwrap();
                let want = s["messages"].as_array().unwrap();
                assert_eq!(got.len(), want.len(), "{sample} {name}");
                for (g, w) in got.iter().zip(want) {
                    assert_eq!(g.0, w["seq"].as_u64().unwrap(), "{sample} {name}");
                    assert_eq!(g.1, w["subject"].as_str().unwrap());
                    assert_eq!(g.2, w["hdrs"].as_str().unwrap_or(""));
                    if let Some(d) = w["data"].as_str() {
                        assert_eq!(g.3, d.as_bytes(), "{sample} {name} seq {}", g.0);
                    }
                }
                let info = &s["info"]["state"];
                assert_eq!(st.messages, info["messages"].as_u64().unwrap());
                assert_eq!(st.bytes, info["bytes"].as_u64().unwrap(), "{sample} {name}");
                assert_eq!(st.subjects, info["num_subjects"].as_u64().unwrap_or(0));
            }
        }
    }

    #[test]
    fn encrypted_is_refused() {
        let t = testdata::sample("v2.15.1-enc-chacha");
        let d = t
            .path()
            .join("v2.15.1-enc-chacha/store/jetstream/$G/streams/SECRET");
        assert!(matches!(live_stats(&d), Err(MessagesError::Encrypted(_))));
    }

    #[test]
    fn damaged_framing_still_ascending() {
        let t = testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/MULTI");
        let blk = d.join("msgs/2.blk");
        let mut b = fs::read(&blk).unwrap();
        // break the length of the first record of block 2 (seq 31)
        b[0] = 0xff;
        b[1] = 0xff;
        b[2] = 0xff;
        fs::write(&blk, b).unwrap();
        let mut seqs = Vec::new();
        let st = walk_live(&d, &NoProgress, |m| {
            seqs.push(m.seq);
            Ok(())
        })
        .unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(!seqs.contains(&31));
        assert!(seqs.contains(&32) && seqs.contains(&100));
        assert_eq!(st.messages, 97);
    }
}
