//! `msgs/index.db`: the full stream state written by 2.10+ servers (spec §5.1).
//!
//! File = `body ‖ HH64(SHA-256(stream name), body)`; the body is plaintext (parsed here) or
//! `nonce ‖ AEAD(plaintext)` when the store is encrypted (decrypt elsewhere, then call [`parse`]).
use crate::base::bytes::{put_uvarint, put_varint, Cursor, ParseError};
use crate::base::hash;
use crate::filestore::seqset;

/// `fullStateMagic`.
pub const MAGIC: u8 = 11;
/// Highest body version understood (2.14+ writes 4).
pub const MAX_VERSION: u8 = 4;
/// Shortest file the server accepts.
pub const MIN_FILE_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectEntry {
    pub subject: Vec<u8>,
    pub total: u64,
    pub first_blk: u32,
    pub last_blk: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    pub index: u32,
    pub bytes: u64,
    pub first_seq: u64,
    /// Absolute (the file stores it relative to the stream's first_ts).
    pub first_ts: i64,
    pub last_seq: u64,
    /// Absolute (the file stores it relative to the stream's first_ts).
    pub last_ts: i64,
    /// As stored in the entry header (the server trusts this number, not the dmap's size).
    pub num_deleted: u64,
    /// Messages with a TTL header (v2+; 0 before).
    pub ttls: u64,
    /// Messages with a schedule header (v3+; 0 before).
    pub schedules: u64,
    /// Decoded AVL delete map, sorted (empty when num_deleted == 0).
    pub deleted: Vec<u64>,
    /// Byte offset in the body (== in the file: the body starts at 0) where this entry starts.
    pub offset: usize,
}

impl BlockEntry {
    /// `last - first + 1 - num_deleted`, saturating (an empty block has first = last + 1).
    pub fn msgs(&self) -> u64 {
        self.last_seq
            .saturating_add(1)
            .saturating_sub(self.first_seq)
            .saturating_sub(self.num_deleted)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDb {
    pub version: u8,
    pub msgs: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: i64,
    pub last_seq: u64,
    pub last_ts: i64,
    /// In file order (the server's subject-tree order, not sorted).
    pub subjects: Vec<SubjectEntry>,
    pub blocks: Vec<BlockEntry>,
    /// Index of the last block (lmb) when written.
    pub last_block: u32,
    /// Checksum of the last record of that block (zeros if it was empty).
    pub last_checksum: [u8; 8],
}

/// Split a whole file into body and the stored 8-byte trailer hash.
pub fn split_trailer(file: &[u8]) -> Result<(&[u8], [u8; 8]), ParseError> {
    if file.len() < MIN_FILE_LEN {
        return Err(ParseError::invalid(
            0,
            format!(
                "index.db too short: {} bytes (minimum {MIN_FILE_LEN})",
                file.len()
            ),
        ));
    }
    let (body, tail) = file.split_at(file.len() - 8);
    let mut h = [0u8; 8];
    h.copy_from_slice(tail);
    Ok((body, h))
}

/// HH64 of `body` keyed by SHA-256(stream name), as stored little-endian.
pub fn body_hash(body: &[u8], stream_name: &str) -> [u8; 8] {
    hash::hh64(&hash::key_for(stream_name), &[body]).to_le_bytes()
}

/// True when the file is long enough and its trailer equals the HH64 of the body.
pub fn trailer_ok(file: &[u8], stream_name: &str) -> bool {
    match split_trailer(file) {
        Ok((body, h)) => body_hash(body, stream_name) == h,
        Err(_) => false,
    }
}

#[cfg(test)]
/// True when the body does not start with magic 11 and a version 1..=4, i.e. it is presumably
/// `nonce ‖ AEAD` (a random nonce looks like a plaintext header with probability 1/64 K).
pub fn looks_encrypted(file: &[u8]) -> bool {
    !matches!(file, [MAGIC, 1..=MAX_VERSION, ..])
}

/// NATS subject validity as the server checks it on load (`isValidSubject(s, true)`).
pub fn valid_subject(subj: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(subj) else {
        return false;
    };
    if s.is_empty() || s.contains('\0') || s.contains('\u{FFFD}') {
        return false;
    }
    let mut saw_fwc = false;
    for tok in s.split('.') {
        if tok.is_empty() || saw_fwc {
            return false;
        }
        if tok.len() > 1 {
            if tok
                .bytes()
                .any(|b| matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' '))
            {
                return false;
            }
            continue;
        }
        match tok.as_bytes()[0] {
            b'>' => saw_fwc = true,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => return false,
            _ => {}
        }
    }
    true
}

fn u32_field(c: &mut Cursor, what: &str) -> Result<u32, ParseError> {
    let at = c.pos();
    let v = c.uvarint()?;
    u32::try_from(v).map_err(|_| ParseError::invalid(at, format!("{what} {v} does not fit in u32")))
}

/// Parse a plaintext body (file without its 8-byte trailer). Extra bytes after the last
/// checksum are ignored as the server does; use [`parse_with_len`] to see how many were used.
pub fn parse(body: &[u8]) -> Result<IndexDb, ParseError> {
    parse_with_len(body).map(|(db, _)| db)
}

/// Like [`parse`], also returning the number of body bytes consumed.
pub fn parse_with_len(body: &[u8]) -> Result<(IndexDb, usize), ParseError> {
    let mut c = Cursor::new(body);
    let version = c.header(MAGIC, 1..=MAX_VERSION, "index.db", "; encrypted?")?;
    let msgs = c.uvarint()?;
    let bytes = c.uvarint()?;
    let first_seq = c.uvarint()?;
    let first_ts = c.varint()?;
    let last_seq = c.uvarint()?;
    let last_ts = c.varint()?;

    // Each entry takes at least one byte.
    let num_subjects = c.count(1, "index.db subjects")?;
    let mut subjects = Vec::with_capacity(num_subjects as usize);
    for _ in 0..num_subjects {
        let at = c.pos();
        let len = c.uvarint()?;
        if len == 0 {
            // The server skips a zero-length entry entirely (no further fields).
            continue;
        }
        if len > c.remaining() as u64 {
            return Err(ParseError::invalid(
                at,
                format!("index.db: bad subject length {len}"),
            ));
        }
        let subj_at = c.pos();
        let subject = c.take(len as usize)?;
        if !valid_subject(subject) {
            return Err(ParseError::invalid(subj_at, "index.db: invalid subject"));
        }
        let total = c.uvarint()?;
        let first_blk = u32_field(&mut c, "subject first block")?;
        let last_blk = if version >= 4 || total > 1 {
            u32_field(&mut c, "subject last block")?
        } else {
            first_blk
        };
        subjects.push(SubjectEntry {
            subject: subject.to_vec(),
            total,
            first_blk,
            last_blk,
        });
    }

    let min_entry = 7 + u64::from(version >= 2) + u64::from(version >= 3);
    let num_blocks = c.count(min_entry, "index.db blocks")?;
    let mut blocks = Vec::with_capacity(num_blocks as usize);
    for _ in 0..num_blocks {
        let offset = c.pos();
        let index = u32_field(&mut c, "block index")?;
        let nbytes = c.uvarint()?;
        let bfirst = c.uvarint()?;
        let fts = c.varint()?;
        let blast = c.uvarint()?;
        let lts = c.varint()?;
        let num_deleted = c.uvarint()?;
        let ttls = if version >= 2 { c.uvarint()? } else { 0 };
        let schedules = if version >= 3 { c.uvarint()? } else { 0 };
        let deleted = if num_deleted > 0 {
            let at = c.pos();
            let (seqs, n) = seqset::decode_seqset(c.rest()).map_err(|e| e.shifted(at))?;
            c.take(n)?;
            seqs
        } else {
            Vec::new()
        };
        blocks.push(BlockEntry {
            index,
            bytes: nbytes,
            first_seq: bfirst,
            first_ts: fts.wrapping_add(first_ts),
            last_seq: blast,
            last_ts: lts.wrapping_add(first_ts),
            num_deleted,
            ttls,
            schedules,
            deleted,
            offset,
        });
    }
    let last_block = u32_field(&mut c, "last block index")?;
    let mut last_checksum = [0u8; 8];
    last_checksum.copy_from_slice(c.take(8)?);
    let used = c.pos();
    Ok((
        IndexDb {
            version,
            msgs,
            bytes,
            first_seq,
            first_ts,
            last_seq,
            last_ts,
            subjects,
            blocks,
            last_block,
            last_checksum,
        },
        used,
    ))
}

/// Encode as a version-4 plaintext body followed by the HH64 trailer (key SHA-256(stream name)).
/// `db.version` is ignored; see [`encode_version`].
#[cfg(test)]
pub fn encode(db: &IndexDb, stream_name: &str) -> Vec<u8> {
    encode_version(db, stream_name, MAX_VERSION)
}

/// Encode as a plaintext body of `version` (clamped to 1..=4) followed by the HH64 trailer.
/// What each version adds (nats-server `writeFullState`): 2 (2.11) a per-block TTL count,
/// 3 (2.12) a per-block schedule count, 4 (2.14) a subject's last block even when it holds one
/// message. Fields a version lacks are dropped. `db.version` is ignored; each block's delete
/// count is written as `deleted.len()` (the field `num_deleted` is not used), with the delete
/// map encoded by [`seqset::encode_seqset`].
pub fn encode_version(db: &IndexDb, stream_name: &str, version: u8) -> Vec<u8> {
    let version = version.clamp(1, MAX_VERSION);
    let mut b = vec![MAGIC, version];
    put_uvarint(&mut b, db.msgs);
    put_uvarint(&mut b, db.bytes);
    put_uvarint(&mut b, db.first_seq);
    put_varint(&mut b, db.first_ts);
    put_uvarint(&mut b, db.last_seq);
    put_varint(&mut b, db.last_ts);
    put_uvarint(&mut b, db.subjects.len() as u64);
    for s in &db.subjects {
        put_uvarint(&mut b, s.subject.len() as u64);
        b.extend_from_slice(&s.subject);
        put_uvarint(&mut b, s.total);
        put_uvarint(&mut b, u64::from(s.first_blk));
        if version >= 4 || s.total > 1 {
            put_uvarint(&mut b, u64::from(s.last_blk));
        }
    }
    put_uvarint(&mut b, db.blocks.len() as u64);
    for blk in &db.blocks {
        put_uvarint(&mut b, u64::from(blk.index));
        put_uvarint(&mut b, blk.bytes);
        put_uvarint(&mut b, blk.first_seq);
        put_varint(&mut b, blk.first_ts.wrapping_sub(db.first_ts));
        put_uvarint(&mut b, blk.last_seq);
        put_varint(&mut b, blk.last_ts.wrapping_sub(db.first_ts));
        put_uvarint(&mut b, blk.deleted.len() as u64);
        if version >= 2 {
            put_uvarint(&mut b, blk.ttls);
        }
        if version >= 3 {
            put_uvarint(&mut b, blk.schedules);
        }
        if !blk.deleted.is_empty() {
            b.extend_from_slice(&seqset::encode_seqset(&blk.deleted));
        }
    }
    put_uvarint(&mut b, u64::from(db.last_block));
    b.extend_from_slice(&db.last_checksum);
    let h = body_hash(&b, stream_name);
    b.extend_from_slice(&h);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    fn file(sample: &str, stream: &str) -> Vec<u8> {
        let d = testdata::sample(sample);
        testdata::read(
            &d,
            sample,
            &format!("store/jetstream/$G/streams/{stream}/msgs/index.db"),
        )
    }

    fn load(sample: &str, stream: &str) -> (Vec<u8>, IndexDb) {
        let f = file(sample, stream);
        assert!(!looks_encrypted(&f));
        assert!(trailer_ok(&f, stream), "{sample}/{stream} trailer");
        assert!(!trailer_ok(&f, "OTHER"));
        let (body, _) = split_trailer(&f).unwrap();
        let (db, used) = parse_with_len(body).unwrap();
        assert_eq!(used, body.len());
        (f, db)
    }

    fn subj(db: &IndexDb) -> Vec<(String, u64)> {
        db.subjects
            .iter()
            .map(|s| (String::from_utf8(s.subject.clone()).unwrap(), s.total))
            .collect()
    }

    #[test]
    fn orders_v2_15_1() {
        let (f, db) = load("v2.15.1-plain", "ORDERS");
        assert_eq!(db.version, 4);
        assert_eq!(
            (db.msgs, db.bytes, db.first_seq, db.last_seq),
            (8, 582, 1, 10)
        );
        assert_eq!(
            subj(&db),
            vec![
                ("orders.paid".into(), 3),
                ("orders.new".into(), 4),
                ("orders.shipped".into(), 1)
            ]
        );
        assert!(db
            .subjects
            .iter()
            .all(|s| s.first_blk == 1 && s.last_blk == 1));
        assert_eq!(db.blocks.len(), 1);
        let b = &db.blocks[0];
        assert_eq!(
            (b.index, b.bytes, b.first_seq, b.last_seq, b.num_deleted),
            (1, 582, 1, 10, 2)
        );
        assert_eq!(b.deleted, vec![3, 6]);
        assert_eq!(b.msgs(), 8);
        assert_eq!((b.ttls, b.schedules), (0, 0));
        assert_eq!(b.first_ts, db.first_ts);
        assert_eq!(b.last_ts, db.last_ts);
        assert_eq!(b.offset, 0x4a);
        assert_eq!(db.last_block, 1);
        assert_eq!(
            db.last_checksum,
            [0x42, 0x8b, 0x7d, 0x20, 0x8a, 0x9d, 0x63, 0xfb]
        );
        assert_eq!(encode(&db, "ORDERS"), f);
    }

    #[test]
    fn multi_v2_15_1() {
        let (f, db) = load("v2.15.1-plain", "MULTI");
        assert_eq!(
            (db.msgs, db.bytes, db.first_seq, db.last_seq),
            (98, 101843, 1, 100)
        );
        assert_eq!(db.blocks.len(), 4);
        let ranges: Vec<_> = db
            .blocks
            .iter()
            .map(|b| (b.index, b.first_seq, b.last_seq, b.bytes))
            .collect();
        assert_eq!(
            ranges[..3],
            [(1, 1, 30, 30127), (2, 31, 60, 30127), (3, 61, 90, 31191)]
        );
        let del: Vec<u64> = db.blocks.iter().flat_map(|b| b.deleted.clone()).collect();
        assert_eq!(del, vec![10, 40]);
        assert_eq!(db.blocks.iter().map(|b| b.msgs()).sum::<u64>(), 98);
        assert_eq!(db.blocks.iter().map(|b| b.bytes).sum::<u64>(), 101843);
        let mut s = subj(&db);
        s.sort();
        assert_eq!(s[0], ("multi.0".into(), 18));
        assert!(s[1..].iter().all(|(_, t)| *t == 20));
        assert_eq!(db.last_block, 4);
        assert_eq!(encode(&db, "MULTI"), f);
    }

    #[test]
    fn empty_purged_kv_cmp() {
        let (f, db) = load("v2.15.1-plain", "EMPTY");
        assert_eq!(f.len(), 36);
        assert_eq!(
            (db.msgs, db.bytes, db.first_seq, db.last_seq, db.first_ts),
            (0, 0, 0, 0, 0)
        );
        assert!(db.subjects.is_empty());
        assert_eq!(db.blocks.len(), 1);
        let b = &db.blocks[0];
        assert_eq!((b.index, b.first_seq, b.last_seq, b.msgs()), (1, 1, 0, 0));
        assert_eq!((db.last_block, db.last_checksum), (1, [0; 8]));
        assert_eq!(encode(&db, "EMPTY"), f);

        let (f, db) = load("v2.15.1-plain", "PURGED");
        assert_eq!(
            (db.msgs, db.bytes, db.first_seq, db.last_seq),
            (2, 102, 6, 7)
        );
        assert_eq!(
            db.blocks.iter().map(|b| b.index).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(encode(&db, "PURGED"), f);

        let (f, db) = load("v2.15.1-plain", "KV_config");
        assert_eq!(
            (db.msgs, db.bytes, db.first_seq, db.last_seq),
            (5, 303, 1, 7)
        );
        assert_eq!(db.blocks[0].deleted, vec![4, 5]);
        assert_eq!(encode(&db, "KV_config"), f);

        let (f, db) = load("v2.15.1-s2", "CMP");
        assert_eq!(
            (db.msgs, db.bytes, db.first_seq, db.last_seq),
            (98, 101647, 1, 100)
        );
        assert_eq!(db.blocks.len(), 4);
        let del: Vec<u64> = db.blocks.iter().flat_map(|b| b.deleted.clone()).collect();
        assert_eq!(del, vec![10, 40]);
        assert_eq!(encode(&db, "CMP"), f);
    }

    #[test]
    fn encrypted_is_detected() {
        for (s, st) in [
            ("v2.15.1-enc-chacha", "SECRET"),
            ("v2.15.1-enc-aes", "ENCCMP"),
        ] {
            let f = file(s, st);
            assert!(looks_encrypted(&f), "{s}");
            assert!(trailer_ok(&f, st), "{s}: trailer covers the sealed body");
            assert!(parse(split_trailer(&f).unwrap().0).is_err());
        }
    }

    /// Build a body for an older version by hand and check the conditional last_blk.
    #[test]
    fn versions_1_to_3() {
        for version in 1u8..=3 {
            let mut b = vec![MAGIC, version];
            for v in [3u64, 300, 5] {
                put_uvarint(&mut b, v);
            }
            put_varint(&mut b, 1_000);
            put_uvarint(&mut b, 8);
            put_varint(&mut b, 2_000);
            put_uvarint(&mut b, 2);
            for (s, total, fb, lb) in [("a.b", 1u64, 7u64, None), ("c", 2, 7, Some(9u64))] {
                put_uvarint(&mut b, s.len() as u64);
                b.extend_from_slice(s.as_bytes());
                put_uvarint(&mut b, total);
                put_uvarint(&mut b, fb);
                if let Some(lb) = lb {
                    put_uvarint(&mut b, lb);
                }
            }
            put_uvarint(&mut b, 1);
            for v in [9u64, 300, 5] {
                put_uvarint(&mut b, v);
            }
            put_varint(&mut b, 0);
            put_uvarint(&mut b, 8);
            put_varint(&mut b, 1_000);
            put_uvarint(&mut b, 1);
            if version >= 2 {
                put_uvarint(&mut b, 4);
            }
            if version >= 3 {
                put_uvarint(&mut b, 6);
            }
            b.extend_from_slice(&seqset::encode_seqset(&[6]));
            put_uvarint(&mut b, 9);
            b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
            let db = parse(&b).unwrap();
            assert_eq!(db.version, version);
            assert_eq!((db.subjects[0].first_blk, db.subjects[0].last_blk), (7, 7));
            assert_eq!((db.subjects[1].first_blk, db.subjects[1].last_blk), (7, 9));
            let blk = &db.blocks[0];
            assert_eq!(
                (blk.first_ts, blk.last_ts, blk.msgs(), blk.deleted.clone()),
                (1_000, 2_000, 3, vec![6])
            );
            assert_eq!(blk.ttls, if version >= 2 { 4 } else { 0 });
            assert_eq!(blk.schedules, if version >= 3 { 6 } else { 0 });
            assert_eq!(
                (db.last_block, db.last_checksum),
                (9, [1, 2, 3, 4, 5, 6, 7, 8])
            );
            // Encoding at the same version gives the same bytes.
            assert_eq!(&encode_version(&db, "X", version)[..b.len()], &b[..]);
            // Re-encoding upgrades to v4 and parses back to the same content.
            let enc = encode(&db, "X");
            assert!(trailer_ok(&enc, "X"));
            let back = parse(split_trailer(&enc).unwrap().0).unwrap();
            let mut want = IndexDb { version: 4, ..db };
            for (w, g) in want.blocks.iter_mut().zip(&back.blocks) {
                w.offset = g.offset;
            }
            assert_eq!(back, want);
        }
    }

    /// Every version re-encodes a hand-built v1..v3 body byte for byte, and a v4 file parses
    /// back from each lower version with the fields that version carries.
    #[test]
    fn encode_each_version() {
        let (_, db) = load("v2.15.1-plain", "MULTI");
        for version in 1u8..=4 {
            let enc = encode_version(&db, "MULTI", version);
            assert!(trailer_ok(&enc, "MULTI"));
            let back = parse(split_trailer(&enc).unwrap().0).unwrap();
            assert_eq!(back.version, version);
            assert_eq!(
                encode_version(&back, "MULTI", version),
                enc,
                "v{version} is stable"
            );
            assert_eq!((back.msgs, back.bytes, back.last_seq), (98, 101843, 100));
            let del: Vec<u64> = back.blocks.iter().flat_map(|b| b.deleted.clone()).collect();
            assert_eq!(del, vec![10, 40]);
            assert_eq!(back.subjects.len(), db.subjects.len());
        }
        assert_eq!(encode_version(&db, "MULTI", 9)[1], MAX_VERSION);
    }

    #[test]
    fn truncation_never_panics_and_fails() {
        for (s, st) in [
            ("v2.15.1-plain", "ORDERS"),
            ("v2.15.1-plain", "MULTI"),
            ("v2.15.1-plain", "EMPTY"),
            ("v2.15.1-plain", "PURGED"),
            ("v2.15.1-plain", "KV_config"),
            ("v2.15.1-s2", "CMP"),
        ] {
            let f = file(s, st);
            let body = split_trailer(&f).unwrap().0;
            for cut in 0..body.len() {
                assert!(parse(&body[..cut]).is_err(), "{st} cut {cut}");
            }
            for cut in 0..f.len() {
                let _ = split_trailer(&f[..cut]);
                assert!(!trailer_ok(&f[..cut], st) || cut == f.len());
            }
        }
    }

    #[test]
    fn hostile_counts_and_subjects() {
        // Huge subject count.
        let mut b = vec![MAGIC, 4, 0, 0, 0, 0, 0, 0];
        put_uvarint(&mut b, u64::MAX);
        assert!(parse(&b).is_err());
        // Huge block count.
        let mut b = vec![MAGIC, 4, 0, 0, 0, 0, 0, 0, 0];
        put_uvarint(&mut b, 1 << 60);
        assert!(parse(&b).is_err());
        // Invalid subjects.
        for s in [&b"a..b"[..], b"a b", b"a.>.c", b"\xff", b"a\0"] {
            let mut b = vec![MAGIC, 4, 0, 0, 0, 0, 0, 0, 1];
            put_uvarint(&mut b, s.len() as u64);
            b.extend_from_slice(s);
            b.extend_from_slice(&[1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            assert!(parse(&b).is_err(), "{s:?}");
        }
        assert!(valid_subject(b"a.*.>"));
        assert!(valid_subject(b"$KV.config.a"));
        // Bad magic / version.
        assert!(parse(&[MAGIC, 5]).is_err());
        assert!(parse(&[22, 4]).is_err());
        assert!(looks_encrypted(&[MAGIC, 0]));
        assert!(!looks_encrypted(&[MAGIC, 1]));
    }
}
