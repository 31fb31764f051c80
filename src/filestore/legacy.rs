//! Legacy (≤ 2.9) per-block index files: `msgs/<N>.idx` and `msgs/<N>.fss` (spec §5.3, §5.4).
//!
//! `.idx` has no checksum of its own and is AEAD-sealed in encrypted stores (decrypt first);
//! `.fss` is always plaintext and carries an HH64 keyed SHA-256(`"<stream>-<N>"`).
use crate::base::bytes::{put_uvarint, put_varint, Cursor, ParseError};
use crate::base::hash;

/// File-store magic.
pub const MAGIC: u8 = 22;
/// The erase bit the 2.9 reader strips from every number in `.idx`.
pub const EBIT: u64 = 1 << 63;
/// Shortest `.fss` the server accepts.
pub const FSS_MIN_LEN: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyIdx {
    pub version: u8,
    pub msgs: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: i64,
    pub last_seq: u64,
    pub last_ts: i64,
    /// Checksum of the block's last record.
    pub last_checksum: [u8; 8],
    /// Delete count from the header (the server's accounting uses this number).
    pub num_deleted: u64,
    /// Absolute deleted sequences, sorted and deduplicated.
    pub deleted: Vec<u64>,
    /// False when the delete map held fewer entries than `num_deleted` (ended early, or a zero
    /// entry stopped it as it stops the 2.9 reader). 2.9 writes the header count before dropping
    /// stale entries ≤ first_seq, so a short map is possible on real files.
    pub dmap_complete: bool,
}

impl LegacyIdx {
    /// The 2.9 reader's accounting rule: `msgs == last - first + 1 - num_deleted` (wrapping, as
    /// in Go). A false result means the server would delete the file and rebuild the block.
    pub fn consistent(&self) -> bool {
        self.msgs
            == self
                .last_seq
                .wrapping_sub(self.first_seq)
                .wrapping_add(1)
                .wrapping_sub(self.num_deleted)
    }
}

fn seq(c: &mut Cursor) -> Result<u64, ParseError> {
    Ok(c.uvarint()? & !EBIT)
}

/// Parse a plaintext `.idx` (`u8 22, u8 1`, header varints, 8-byte last checksum, delete map).
pub fn parse_idx(buf: &[u8]) -> Result<LegacyIdx, ParseError> {
    let mut c = Cursor::new(buf);
    let version = c.header(MAGIC, 1..=1, ".idx", "; encrypted?")?;
    let msgs = seq(&mut c)?;
    let bytes = seq(&mut c)?;
    let first_seq = seq(&mut c)?;
    let first_ts = c.varint()?;
    let last_seq = seq(&mut c)?;
    let last_ts = c.varint()?;
    let num_deleted = seq(&mut c)?;
    let mut last_checksum = [0u8; 8];
    last_checksum.copy_from_slice(c.take(8)?);
    // Each entry is at least one byte; never reserve more than what is left.
    let mut deleted = Vec::with_capacity((num_deleted as usize).min(c.remaining()));
    let mut read = 0u64;
    while read < num_deleted && !c.is_empty() {
        let d = seq(&mut c)?;
        if d == 0 {
            break;
        }
        let Some(abs) = d.checked_add(first_seq) else {
            return Err(ParseError::invalid(
                c.pos(),
                format!(".idx: delete offset {d} overflows"),
            ));
        };
        deleted.push(abs);
        read += 1;
    }
    let dmap_complete = read == num_deleted;
    deleted.sort_unstable();
    deleted.dedup();
    Ok(LegacyIdx {
        version,
        msgs,
        bytes,
        first_seq,
        first_ts,
        last_seq,
        last_ts,
        last_checksum,
        num_deleted,
        deleted,
        dmap_complete,
    })
}

/// Encode a plaintext `.idx` the way 2.9's `writeIndexInfoLocked` lays it out: magic 22,
/// version 1, uvarints msgs, bytes, first_seq, varint first_ts, uvarint last_seq, varint
/// last_ts, uvarint `num_deleted`, the 8-byte last checksum, then one uvarint `seq - first_seq`
/// per entry of `deleted` above `first_seq` (2.9's `genDeleteMap` drops the others), ascending
/// (2.9 writes Go map order). `version` and `dmap_complete` are not used. For a file the
/// server accepts, `num_deleted` must equal the number of entries written and
/// `msgs == last_seq - first_seq + 1 - num_deleted` ([`LegacyIdx::consistent`]).
pub fn encode_idx(x: &LegacyIdx) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + x.deleted.len() * 3);
    b.push(MAGIC);
    b.push(1);
    put_uvarint(&mut b, x.msgs);
    put_uvarint(&mut b, x.bytes);
    put_uvarint(&mut b, x.first_seq);
    put_varint(&mut b, x.first_ts);
    put_uvarint(&mut b, x.last_seq);
    put_varint(&mut b, x.last_ts);
    put_uvarint(&mut b, x.num_deleted);
    b.extend_from_slice(&x.last_checksum);
    let mut prev = None;
    for &d in &x.deleted {
        if d > x.first_seq && prev.is_none_or(|p| d > p) {
            put_uvarint(&mut b, d - x.first_seq);
            prev = Some(d);
        }
    }
    b
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FssEntry {
    pub subject: Vec<u8>,
    pub msgs: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyFss {
    /// In file order (Go map order).
    pub subjects: Vec<FssEntry>,
    /// Stored HH64 of everything before the 16-byte tail.
    pub hash: [u8; 8],
    /// Checksum of the block's last record when written (stale if it differs from the block).
    pub last_checksum: [u8; 8],
    /// Stored hash equals HH64(SHA-256("<stream>-<N>"), body).
    pub hash_ok: bool,
}

/// Key used for block `<N>` of stream `<stream>` (record checksums and `.fss`).
pub fn block_key(stream_name: &str, block_index: u32) -> highway::Key {
    hash::key_for(&format!("{stream_name}-{block_index}"))
}

/// Parse `<N>.fss`. Entries must end exactly where the 16-byte tail starts.
pub fn parse_fss(buf: &[u8], stream_name: &str, block_index: u32) -> Result<LegacyFss, ParseError> {
    if buf.len() < FSS_MIN_LEN {
        return Err(ParseError::invalid(
            0,
            format!(
                ".fss too short: {} bytes (minimum {FSS_MIN_LEN})",
                buf.len()
            ),
        ));
    }
    let body_len = buf.len() - 16;
    let (body, tail) = buf.split_at(body_len);
    let mut hash = [0u8; 8];
    hash.copy_from_slice(&tail[..8]);
    let mut last_checksum = [0u8; 8];
    last_checksum.copy_from_slice(&tail[8..]);
    let hash_ok = crate::base::hash::hh64(&block_key(stream_name, block_index), &[body])
        .to_le_bytes()
        == hash;

    let mut c = Cursor::new(body);
    let _version = c.header(MAGIC, 1..=1, ".fss", "")?;
    // Each entry is at least 4 bytes (len, msgs, first, last).
    let count = c.count(4, ".fss")?;
    let mut subjects = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = c.pos();
        let len = c.uvarint()?;
        if len > c.remaining() as u64 {
            return Err(ParseError::invalid(
                at,
                format!(".fss: bad subject length {len}"),
            ));
        }
        let subject = c.take(len as usize)?.to_vec();
        let msgs = c.uvarint()?;
        let first_seq = c.uvarint()?;
        let last_seq = c.uvarint()?;
        subjects.push(FssEntry {
            subject,
            msgs,
            first_seq,
            last_seq,
        });
    }
    if !c.is_empty() {
        return Err(ParseError::invalid(
            c.pos(),
            format!(".fss: {} unexpected bytes before the hash", c.remaining()),
        ));
    }
    Ok(LegacyFss {
        subjects,
        hash,
        last_checksum,
        hash_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    const S: &str = "v2.9.10-legacy";

    fn msgs_file(d: &tempfile::TempDir, stream: &str, name: &str) -> Vec<u8> {
        testdata::read(
            d,
            S,
            &format!("store/jetstream/$G/streams/{stream}/msgs/{name}"),
        )
    }

    /// Last 8 bytes of the block = checksum of its last record.
    fn block_lchk(d: &tempfile::TempDir, stream: &str, n: u32) -> [u8; 8] {
        let b = msgs_file(d, stream, &format!("{n}.blk"));
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[b.len() - 8..]);
        a
    }

    /// Every `.idx` 2.9.10 wrote in the sample re-encodes to the same bytes (their delete maps
    /// happen to be in ascending order), and parses back to the same value.
    #[test]
    fn encode_idx_round_trips_the_servers_files() {
        let d = testdata::sample(S);
        let mut n = 0;
        for (stream, blocks) in [("ORDERS", 1), ("MULTI", 4), ("KV_config", 1), ("PURGED", 1)] {
            for i in 1..=blocks {
                let raw = msgs_file(&d, stream, &format!("{i}.idx"));
                let x = parse_idx(&raw).unwrap();
                assert!(x.consistent() && x.dmap_complete, "{stream} {i}");
                assert_eq!(encode_idx(&x), raw, "{stream} {i}.idx");
                assert_eq!(parse_idx(&encode_idx(&x)).unwrap(), x);
                n += 1;
            }
        }
        assert_eq!(n, 7);
        // ORDERS: deletes 3 and 6 as offsets 2 and 5 from first_seq 1, after the checksum.
        let raw = msgs_file(&d, "ORDERS", "1.idx");
        assert_eq!(&raw[raw.len() - 2..], &[2, 5]);
    }

    #[test]
    fn encode_idx_orders_and_filters_the_delete_map() {
        let x = LegacyIdx {
            version: 1,
            msgs: 3,
            bytes: 300,
            first_seq: 1000,
            first_ts: -5,
            last_seq: 1004,
            last_ts: 7,
            last_checksum: [1, 2, 3, 4, 5, 6, 7, 8],
            num_deleted: 2,
            deleted: vec![999, 1000, 1001, 1003, 1003],
            dmap_complete: true,
        };
        let b = encode_idx(&x);
        let mut want = vec![
            22, 1, 3, 0xac, 2, 0xe8, 7, 9, 0xec, 7, 14, 2, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        want.extend_from_slice(&[1, 3]);
        assert_eq!(b, want);
        let back = parse_idx(&b).unwrap();
        assert_eq!(back.deleted, vec![1001, 1003]);
        assert!(back.consistent());
    }

    #[test]
    fn orders_idx_and_fss() {
        let d = testdata::sample(S);
        let idx = parse_idx(&msgs_file(&d, "ORDERS", "1.idx")).unwrap();
        assert_eq!(idx.version, 1);
        assert_eq!(
            (idx.msgs, idx.bytes, idx.first_seq, idx.last_seq),
            (8, 582, 1, 10)
        );
        assert_eq!(
            (idx.first_ts, idx.last_ts),
            (1795483022971420422, 1795483022973848361)
        );
        assert_eq!(
            (idx.num_deleted, idx.deleted.clone(), idx.dmap_complete),
            (2, vec![3, 6], true)
        );
        assert!(idx.consistent());
        assert_eq!(idx.last_checksum, block_lchk(&d, "ORDERS", 1));

        let fss = parse_fss(&msgs_file(&d, "ORDERS", "1.fss"), "ORDERS", 1).unwrap();
        assert!(fss.hash_ok);
        assert_eq!(fss.last_checksum, idx.last_checksum);
        let mut got: Vec<(String, u64, u64, u64)> = fss
            .subjects
            .iter()
            .map(|e| {
                (
                    String::from_utf8(e.subject.clone()).unwrap(),
                    e.msgs,
                    e.first_seq,
                    e.last_seq,
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("orders.new".into(), 4, 1, 10),
                ("orders.paid".into(), 3, 2, 8),
                ("orders.shipped".into(), 1, 9, 9)
            ]
        );
        // Wrong stream name or block number → hash mismatch (but still parses).
        assert!(
            !parse_fss(&msgs_file(&d, "ORDERS", "1.fss"), "ORDERS", 2)
                .unwrap()
                .hash_ok
        );
        assert!(
            !parse_fss(&msgs_file(&d, "ORDERS", "1.fss"), "MULTI", 1)
                .unwrap()
                .hash_ok
        );
    }

    #[test]
    fn multi_every_block() {
        let d = testdata::sample(S);
        let want = [
            (1u32, 1u64, 30u64, vec![10u64]),
            (2, 31, 60, vec![40]),
            (3, 61, 90, vec![]),
            (4, 91, 100, vec![]),
        ];
        let (mut msgs, mut subj_total) = (0, 0);
        for (n, first, last, del) in want {
            let idx = parse_idx(&msgs_file(&d, "MULTI", &format!("{n}.idx"))).unwrap();
            assert_eq!(
                (idx.first_seq, idx.last_seq, idx.deleted.clone()),
                (first, last, del),
                "block {n}"
            );
            assert!(idx.consistent());
            assert_eq!(idx.last_checksum, block_lchk(&d, "MULTI", n));
            msgs += idx.msgs;
            let fss = parse_fss(&msgs_file(&d, "MULTI", &format!("{n}.fss")), "MULTI", n).unwrap();
            assert!(fss.hash_ok, "block {n}");
            assert_eq!(fss.last_checksum, idx.last_checksum);
            assert_eq!(fss.subjects.len(), 5);
            subj_total += fss.subjects.iter().map(|e| e.msgs).sum::<u64>();
        }
        assert_eq!((msgs, subj_total), (98, 98));
    }

    #[test]
    fn kv_and_purged() {
        let d = testdata::sample(S);
        let idx = parse_idx(&msgs_file(&d, "KV_config", "1.idx")).unwrap();
        assert_eq!(
            (
                idx.msgs,
                idx.bytes,
                idx.first_seq,
                idx.last_seq,
                idx.deleted.clone()
            ),
            (5, 303, 1, 7, vec![4, 5])
        );
        assert!(
            parse_fss(&msgs_file(&d, "KV_config", "1.fss"), "KV_config", 1)
                .unwrap()
                .hash_ok
        );
        let idx = parse_idx(&msgs_file(&d, "PURGED", "1.idx")).unwrap();
        assert_eq!(
            (idx.msgs, idx.bytes, idx.first_seq, idx.last_seq),
            (2, 102, 6, 7)
        );
        assert!(idx.consistent());
        assert!(
            parse_fss(&msgs_file(&d, "PURGED", "1.fss"), "PURGED", 1)
                .unwrap()
                .hash_ok
        );
    }

    #[test]
    fn encrypted_idx_rejected_plain_fss_ok() {
        let d = testdata::sample("v2.9.10-enc-chacha");
        let p = "store/jetstream/$G/streams/SECRET/msgs/";
        assert!(parse_idx(&testdata::read(
            &d,
            "v2.9.10-enc-chacha",
            &format!("{p}1.idx")
        ))
        .is_err());
        let fss = parse_fss(
            &testdata::read(&d, "v2.9.10-enc-chacha", &format!("{p}1.fss")),
            "SECRET",
            1,
        )
        .unwrap();
        assert!(fss.hash_ok);
        assert_eq!(fss.subjects.iter().map(|e| e.msgs).sum::<u64>(), 9);
    }

    #[test]
    fn ebit_inconsistency_and_short_dmap() {
        let mut b = vec![22u8, 1];
        for v in [5u64 | EBIT, 100, 1 | EBIT] {
            crate::base::bytes::put_uvarint(&mut b, v);
        }
        crate::base::bytes::put_varint(&mut b, 7);
        crate::base::bytes::put_uvarint(&mut b, 10);
        crate::base::bytes::put_varint(&mut b, 9);
        crate::base::bytes::put_uvarint(&mut b, 3);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&[4, 2]);
        let idx = parse_idx(&b).unwrap();
        assert_eq!((idx.msgs, idx.first_seq), (5, 1));
        assert_eq!(idx.deleted, vec![3, 5]);
        assert!(!idx.dmap_complete);
        assert!(!idx.consistent());
    }

    #[test]
    fn truncation_never_panics() {
        let d = testdata::sample(S);
        let idx = msgs_file(&d, "ORDERS", "1.idx");
        // Header + checksum required; the delete map may legally come up short.
        for cut in 0..idx.len() {
            match parse_idx(&idx[..cut]) {
                Ok(p) => assert!(cut >= idx.len() - 2 && !p.dmap_complete, "cut {cut}"),
                Err(_) => assert!(cut < idx.len() - 2, "cut {cut}"),
            }
        }
        for f in ["1.fss"] {
            let fss = msgs_file(&d, "ORDERS", f);
            for cut in 0..fss.len() {
                if let Ok(p) = parse_fss(&fss[..cut], "ORDERS", 1) {
                    assert!(!p.hash_ok, "cut {cut}");
                }
            }
        }
        // Huge counts.
        let mut b = vec![22u8, 1];
        crate::base::bytes::put_uvarint(&mut b, u64::MAX >> 1);
        b.extend_from_slice(&[0; 30]);
        assert!(parse_fss(&b, "X", 1).is_err());
        let mut b = vec![22u8, 1, 0, 0, 1, 0, 2, 0];
        crate::base::bytes::put_uvarint(&mut b, u64::MAX >> 1);
        b.extend_from_slice(&[0; 8]);
        b.push(1);
        let p = parse_idx(&b).unwrap();
        assert!(!p.dmap_complete && p.deleted == vec![2]);
    }
}
