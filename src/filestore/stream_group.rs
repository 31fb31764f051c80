//! The raft group of a clustered stream (`$SYS/_js_/S-R<n><F|M>-<id>/`): the operations its
//! normal WAL entries carry and the stream state its snapshots hold.
//!
//! Entries (`applyStreamEntries`, jetstream_cluster.go, 2.9–2.15): one op byte, then
//! - `streamMsgOp` (4): `u64 lseq, i64 ts, u16 subject len, subject, u16 reply len, reply,
//!   u16 header len, header, u32 payload len, payload` and (2.11+) a uvarint of flags (bit 0:
//!   sourced or mirrored). The message becomes stream sequence `lseq + 1 - clfs`;
//! - `compressedStreamMsgOp` (14): the same body as one S2 block;
//! - `purgeStreamOp` (5), `deleteMsgOp` (6), `deleteRangeOp` (15, 2.10+): JSON;
//! - `batchMsgOp` (16) / `batchCommitMsgOp` (17) (2.12+): `u16 id len, id, uvarint batch seq`,
//!   then an inner op byte (4 or 14) and its body.
//!
//! Snapshots (`stateSnapshot`): the binary stream state (`EncodedStreamState`, filestore.go:
//! magic 42, version 1 or 2 (with sources), uvarint msgs, bytes, first, last, failed (clfs),
//! [sources], number of deleted, then delete blocks: AVL sequence sets (22) or run lengths
//! (33)), or before 2.10 JSON (`{"messages","bytes","first_seq","last_seq","clfs","deleted"}`).
use crate::base::bytes::{Cursor, ParseError};
use serde::Deserialize;

/// `entryOp` values of a stream group (jetstream_cluster.go; the same in 2.9–2.15).
pub const STREAM_MSG_OP: u8 = 4;
pub const PURGE_STREAM_OP: u8 = 5;
pub const DELETE_MSG_OP: u8 = 6;
pub const COMPRESSED_STREAM_MSG_OP: u8 = 14;
pub const DELETE_RANGE_OP: u8 = 15;
pub const BATCH_MSG_OP: u8 = 16;
pub const BATCH_COMMIT_MSG_OP: u8 = 17;

/// Largest decoded compressed message accepted (the server's 64 MiB raw block limit bounds it
/// long before: a message is at most the max payload, 64 MiB).
pub const MAX_DECODED_MSG: usize = 64 << 20;

/// A replicated message (the payload bytes are not kept, only their sizes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMsg {
    /// The stream's last sequence when the leader proposed it (plus the failed count).
    pub lseq: u64,
    /// Nanoseconds since the epoch (0 with an empty subject: a skip).
    pub ts: i64,
    pub subject: String,
    pub reply: String,
    pub hdr_len: usize,
    pub msg_len: usize,
    /// The flags uvarint's bit 0 (2.11+).
    pub sourced: bool,
    /// Carried in an S2 block (`compressedStreamMsgOp`).
    pub compressed: bool,
}

impl StreamMsg {
    /// A skip (no subject, time, header or payload): the server stores a deleted sequence.
    #[cfg(test)]
    pub fn is_skip(&self) -> bool {
        self.subject.is_empty() && self.ts == 0 && self.hdr_len == 0 && self.msg_len == 0
    }
    /// The stream sequence the server stores it at, given the stream's failed count.
    pub fn seq(&self, clfs: u64) -> u64 {
        self.lseq.wrapping_add(1).wrapping_sub(clfs)
    }
}

/// `JSApiStreamPurgeRequest` inside a purge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PurgeRequest {
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub keep: u64,
}

/// `streamPurge`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Purge {
    #[serde(default)]
    pub stream: String,
    /// The leader's last sequence when it proposed the purge.
    #[serde(default)]
    pub last_seq: u64,
    #[serde(default)]
    pub request: Option<PurgeRequest>,
}

/// `streamMsgDelete`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MsgDelete {
    #[serde(default)]
    pub stream: String,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub no_erase: bool,
}

/// `DeleteRange` (catchup gaps): `num` sequences from `first` skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct DeleteRange {
    #[serde(rename = "First", default)]
    pub first: u64,
    #[serde(rename = "Num", default)]
    pub num: u64,
}

/// One stream-group operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOp {
    Msg(StreamMsg),
    Purge(Purge),
    Delete(MsgDelete),
    DeleteRange(DeleteRange),
    /// A message of an atomic batch (2.12+); `commit` on the batch's last entry.
    Batch {
        id: String,
        seq: u64,
        commit: bool,
        msg: StreamMsg,
    },
}

/// Decode a stream message body (after the op byte), as `decodeStreamMsg` reads it.
pub fn decode_msg(buf: &[u8], compressed: bool) -> Result<StreamMsg, ParseError> {
    if compressed {
        let mut plain = Vec::new();
        crate::s2::decode_block(buf, &mut plain)
            .map_err(|e| ParseError::invalid(0, format!("compressed stream msg: S2: {e}")))?;
        if plain.len() > MAX_DECODED_MSG {
            return Err(ParseError::invalid(0, "compressed stream msg: over 64 MiB"));
        }
        let mut m = decode_msg(&plain, false)
            .map_err(|e| ParseError::invalid(0, format!("compressed stream msg: {e}")))?;
        m.compressed = true;
        return Ok(m);
    }
    if buf.len() < 26 {
        return Err(ParseError::invalid(
            0,
            format!("stream msg: {} bytes, at least 26 needed", buf.len()),
        ));
    }
    let mut c = Cursor::new(buf);
    let lseq = c.u64le()?;
    let ts = c.u64le()? as i64;
    let sl = usize::from(c.u16le()?);
    let subject = String::from_utf8_lossy(c.take(sl)?).into_owned();
    let rl = usize::from(c.u16le()?);
    let reply = String::from_utf8_lossy(c.take(rl)?).into_owned();
    let hl = usize::from(c.u16le()?);
    c.take(hl)?;
    let ml = c.u32le()? as usize;
    c.take(ml)?;
    // 2.11+ append a uvarint of flags; the server ignores a bad one (reads 0)
    let sourced = !c.is_empty() && c.uvarint().map(|f| f & 1 != 0).unwrap_or(false);
    Ok(StreamMsg {
        lseq,
        ts,
        subject,
        reply,
        hdr_len: hl,
        msg_len: ml,
        sourced,
        compressed: false,
    })
}

fn json<'a, T: Deserialize<'a>>(op: u8, body: &'a [u8]) -> Result<T, ParseError> {
    serde_json::from_slice(body)
        .map_err(|e| ParseError::invalid(1, format!("stream entry op {op}: JSON: {e}")))
}

/// Decode the data of a normal entry of a stream group. An op the server does not know in a
/// stream group is an error, as for the server ("unknown stream entry op type").
pub fn decode_op(data: &[u8]) -> Result<StreamOp, ParseError> {
    let Some((&op, body)) = data.split_first() else {
        return Err(ParseError::invalid(0, "stream entry: empty"));
    };
    let shift = |e: ParseError| e.shifted(1);
    Ok(match op {
        STREAM_MSG_OP => StreamOp::Msg(decode_msg(body, false).map_err(shift)?),
        COMPRESSED_STREAM_MSG_OP => StreamOp::Msg(decode_msg(body, true).map_err(shift)?),
        PURGE_STREAM_OP => StreamOp::Purge(json(op, body)?),
        DELETE_MSG_OP => StreamOp::Delete(json(op, body)?),
        DELETE_RANGE_OP => StreamOp::DeleteRange(json(op, body)?),
        BATCH_MSG_OP | BATCH_COMMIT_MSG_OP => {
            let mut c = Cursor::new(body);
            let bl = usize::from(c.u16le().map_err(shift)?);
            let id = String::from_utf8_lossy(c.take(bl).map_err(shift)?).into_owned();
            let seq = c.uvarint().map_err(shift)?;
            let at = c.pos() + 1;
            let inner = c.u8().map_err(shift)?;
            let msg = match inner {
                STREAM_MSG_OP | COMPRESSED_STREAM_MSG_OP => {
                    decode_msg(c.rest(), inner == COMPRESSED_STREAM_MSG_OP)
                        .map_err(|e| e.shifted(at + 1))?
                }
                o => {
                    return Err(ParseError::invalid(
                        at,
                        format!("batch entry: inner op {o} is not a stream message"),
                    ))
                }
            };
            StreamOp::Batch {
                id,
                seq,
                commit: op == BATCH_COMMIT_MSG_OP,
                msg,
            }
        }
        o => {
            return Err(ParseError::invalid(
                0,
                format!("unknown stream entry op type {o}"),
            ))
        }
    })
}

/// A stream group's snapshot: the replicated stream state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// `binary v1`, `binary v2` (with sources) or `json` (before 2.10).
    pub encoding: &'static str,
    pub msgs: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// `clfs`: proposals that failed; a message's sequence is `lseq + 1 - failed`.
    pub failed: u64,
    /// Deleted sequences the snapshot lists (the server's count field for binary).
    pub deleted: u64,
    /// Delete blocks (AVL sets and run lengths) in a binary snapshot.
    pub delete_blocks: u64,
    /// Sourced streams whose position the snapshot carries (version 2).
    pub sources: u64,
}

#[derive(Deserialize)]
struct JsonSnapshot {
    #[serde(default)]
    messages: u64,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    first_seq: u64,
    #[serde(default)]
    last_seq: u64,
    #[serde(default)]
    clfs: u64,
    #[serde(default)]
    deleted: Option<Vec<u64>>,
}

/// Stream-state magic, run-length and AVL-set block magics.
const STATE_MAGIC: u8 = 42;
const RUN_LENGTH_MAGIC: u8 = 33;
const SEQSET_MAGIC: u8 = 22;

/// Decode a stream group's snapshot data (`decodeStreamSnapshot`).
pub fn decode_snapshot(data: &[u8]) -> Result<StreamSnapshot, ParseError> {
    if data.len() >= 2 && data[0] == STATE_MAGIC && (data[1] == 1 || data[1] == 2) {
        return decode_binary(data);
    }
    let j: JsonSnapshot = serde_json::from_slice(data).map_err(|e| {
        ParseError::invalid(
            0,
            format!("stream snapshot: neither the binary state (magic 42) nor JSON: {e}"),
        )
    })?;
    Ok(StreamSnapshot {
        encoding: "json",
        msgs: j.messages,
        bytes: j.bytes,
        first_seq: j.first_seq,
        last_seq: j.last_seq,
        failed: j.clfs,
        deleted: j.deleted.map_or(0, |d| d.len() as u64),
        delete_blocks: 0,
        sources: 0,
    })
}

fn decode_binary(data: &[u8]) -> Result<StreamSnapshot, ParseError> {
    let mut c = Cursor::new(data);
    c.take(2)?;
    let with_sources = data[1] == 2;
    let mut s = StreamSnapshot {
        encoding: if with_sources {
            "binary v2"
        } else {
            "binary v1"
        },
        msgs: c.uvarint()?,
        bytes: c.uvarint()?,
        first_seq: c.uvarint()?,
        last_seq: c.uvarint()?,
        failed: c.uvarint()?,
        ..Default::default()
    };
    if with_sources {
        // each source takes at least 3 bytes (two lengths and a sequence)
        let n = c.count(3, "stream snapshot sources")?;
        for _ in 0..n {
            let l = c.uvarint()?;
            c.take(usize::try_from(l).unwrap_or(usize::MAX))?;
            c.uvarint()?;
            let l = c.uvarint()?;
            c.take(usize::try_from(l).unwrap_or(usize::MAX))?;
        }
        s.sources = n;
    }
    s.deleted = c.uvarint()?;
    if s.deleted > 0 {
        while !c.is_empty() {
            let at = c.pos();
            match c.rest()[0] {
                SEQSET_MAGIC => {
                    let (_, n) = crate::filestore::seqset::decode_seqset(c.rest())
                        .map_err(|e| e.shifted(at))?;
                    c.take(n)?;
                }
                RUN_LENGTH_MAGIC => {
                    c.u8()?;
                    c.uvarint()?;
                    c.uvarint()?;
                }
                m => {
                    return Err(ParseError::invalid(
                        at,
                        format!("stream snapshot: delete block with unknown magic {m}"),
                    ))
                }
            }
            s.delete_blocks += 1;
        }
    }
    Ok(s)
}

/// Encode a binary (version 1) stream snapshot without delete blocks (tests).
#[cfg(test)]
pub fn encode_snapshot(s: &StreamSnapshot) -> Vec<u8> {
    use crate::base::bytes::put_uvarint;
    let mut b = vec![STATE_MAGIC, 1];
    for v in [s.msgs, s.bytes, s.first_seq, s.last_seq, s.failed, 0] {
        put_uvarint(&mut b, v);
    }
    b
}

/// Encode a stream message entry (`encodeStreamMsg`, uncompressed) (tests).
#[cfg(test)]
pub fn encode_msg(lseq: u64, ts: i64, subject: &str, hdr: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut b = vec![STREAM_MSG_OP];
    b.extend_from_slice(&lseq.to_le_bytes());
    b.extend_from_slice(&ts.to_le_bytes());
    b.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    b.extend_from_slice(subject.as_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(hdr.len() as u16).to_le_bytes());
    b.extend_from_slice(hdr);
    b.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    b.extend_from_slice(msg);
    b.push(0);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_entry_round_trips_and_cuts_are_errors() {
        let e = encode_msg(
            41,
            1_700_000_000_000_000_000,
            "orders.1",
            b"NATS/1.0\r\n\r\n",
            b"hello",
        );
        let StreamOp::Msg(m) = decode_op(&e).unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                m.lseq,
                m.seq(0),
                m.seq(1),
                m.subject.as_str(),
                m.hdr_len,
                m.msg_len
            ),
            (41, 42, 41, "orders.1", 12, 5)
        );
        assert!(!m.is_skip() && !m.sourced && !m.compressed);
        // the flags byte is optional (2.9, 2.10 write none)
        assert!(decode_op(&e[..e.len() - 1]).is_ok());
        for cut in 1..e.len() - 1 {
            assert!(decode_op(&e[..cut]).is_err(), "cut {cut}");
        }
        let mut s = e.clone();
        *s.last_mut().unwrap() = 1;
        let StreamOp::Msg(m) = decode_op(&s).unwrap() else {
            panic!()
        };
        assert!(m.sourced);
        assert!(decode_op(&[]).is_err());
        assert!(decode_op(&[99]).is_err());
        // a skip
        let sk = encode_msg(7, 0, "", b"", b"");
        let StreamOp::Msg(m) = decode_op(&sk).unwrap() else {
            panic!()
        };
        assert!(m.is_skip());
    }

    #[test]
    fn compressed_and_batched_messages() {
        let e = encode_msg(9, 5, "a.b", b"", &[b'x'; 9000]);
        let mut z = vec![COMPRESSED_STREAM_MSG_OP];
        z.extend_from_slice(&crate::s2::encode::encode_block(&e[1..]));
        assert!(z.len() < e.len());
        let StreamOp::Msg(m) = decode_op(&z).unwrap() else {
            panic!()
        };
        assert_eq!((m.lseq, m.msg_len, m.compressed), (9, 9000, true));
        // a batch entry: id "b1", seq 2, inner stream msg
        let mut b = vec![BATCH_COMMIT_MSG_OP, 2, 0, b'b', b'1', 2];
        b.extend_from_slice(&e);
        match decode_op(&b).unwrap() {
            StreamOp::Batch {
                id,
                seq,
                commit,
                msg,
            } => assert_eq!((id.as_str(), seq, commit, msg.lseq), ("b1", 2, true, 9)),
            o => panic!("{o:?}"),
        }
        b[6] = DELETE_MSG_OP;
        assert!(decode_op(&b).is_err());
    }

    #[test]
    fn json_ops() {
        let p = br#"{"client":{"acc":"$G"},"stream":"S","last_seq":10,"subject":"x","reply":"y","request":{"filter":"a.>","keep":2}}"#;
        let mut d = vec![PURGE_STREAM_OP];
        d.extend_from_slice(p);
        match decode_op(&d).unwrap() {
            StreamOp::Purge(p) => {
                assert_eq!((p.stream.as_str(), p.last_seq), ("S", 10));
                assert_eq!(p.request.unwrap().keep, 2);
            }
            o => panic!("{o:?}"),
        }
        let mut d = vec![DELETE_MSG_OP];
        d.extend_from_slice(br#"{"stream":"S","seq":3,"no_erase":true,"subject":"","reply":""}"#);
        assert_eq!(
            decode_op(&d).unwrap(),
            StreamOp::Delete(MsgDelete {
                stream: "S".into(),
                seq: 3,
                no_erase: true
            })
        );
        let mut d = vec![DELETE_RANGE_OP];
        d.extend_from_slice(br#"{"First":5,"Num":3}"#);
        assert_eq!(
            decode_op(&d).unwrap(),
            StreamOp::DeleteRange(DeleteRange { first: 5, num: 3 })
        );
        assert!(decode_op(&[DELETE_RANGE_OP, b'{']).is_err());
    }

    #[test]
    fn snapshots_binary_and_json() {
        let s = StreamSnapshot {
            encoding: "binary v1",
            msgs: 5,
            bytes: 300,
            first_seq: 1,
            last_seq: 5,
            failed: 1,
            ..Default::default()
        };
        let b = encode_snapshot(&s);
        assert_eq!(decode_snapshot(&b).unwrap(), s);
        for cut in 0..b.len() {
            assert!(decode_snapshot(&b[..cut]).is_err(), "cut {cut}");
        }
        // with a run-length delete block and an AVL set
        let mut d = vec![STATE_MAGIC, 1, 5, 100, 1, 10, 0, 5, RUN_LENGTH_MAGIC, 2, 3];
        d.extend_from_slice(&crate::filestore::seqset::encode_seqset(&[7, 8]));
        let s = decode_snapshot(&d).unwrap();
        assert_eq!((s.deleted, s.delete_blocks, s.last_seq), (5, 2, 10));
        d.push(99);
        assert!(decode_snapshot(&d).is_err());
        // version 2 with one source
        let mut v2 = vec![
            STATE_MAGIC,
            2,
            1,
            10,
            3,
            3,
            0,
            1,
            1,
            b'A',
            4,
            2,
            b'i',
            b'd',
            0,
        ];
        let s = decode_snapshot(&v2).unwrap();
        assert_eq!((s.encoding, s.sources, s.last_seq), ("binary v2", 1, 3));
        v2[7] = 200; // more sources than bytes
        assert!(decode_snapshot(&v2).is_err());
        let j = br#"{"messages":2,"bytes":20,"first_seq":4,"last_seq":6,"clfs":0,"deleted":[5]}"#;
        let s = decode_snapshot(j).unwrap();
        assert_eq!(
            (s.encoding, s.msgs, s.last_seq, s.deleted),
            ("json", 2, 6, 1)
        );
        assert!(decode_snapshot(b"nope").is_err());
    }
}

#[cfg(test)]
mod real {
    use super::*;
    use crate::filestore::block::{block_key, RecordKind, Records};
    use crate::filestore::raft::{parse_append_entry, EntryType};
    use crate::testdata;

    /// A 2.15.1 stream group's log with a 20000-byte message (sent S2-compressed) and an
    /// atomic batch of three (`batchMsgOp`, `batchMsgOp`, `batchCommitMsgOp` in one append
    /// entry): every entry decodes to what was published (fixtures/samples/README.md).
    #[test]
    fn compressed_and_batched_entries_of_a_real_log() {
        const S: &str = "v2.15.1-cluster-batch-n1";
        let d = testdata::sample(S);
        let g = "S-R3F-5USYTR3p";
        let wal = testdata::read(&d, S, &format!("store/jetstream/$SYS/_js_/{g}/msgs/1.blk"));
        let key = block_key(g, 1);
        let mut ops = Vec::new();
        for r in Records::new(&wal) {
            let r = r.unwrap();
            assert!(r.checksum_ok(&key));
            if r.kind() != RecordKind::Message {
                continue;
            }
            for e in parse_append_entry(r.payload).unwrap().entries {
                if e.kind == EntryType::Normal {
                    ops.push(decode_op(e.data).unwrap());
                }
            }
        }
        assert_eq!(ops.len(), 4, "{ops:?}");
        match &ops[0] {
            StreamOp::Msg(m) => assert_eq!(
                (m.lseq, m.subject.as_str(), m.msg_len, m.compressed),
                (0, "b.big", 20000, true)
            ),
            o => panic!("{o:?}"),
        }
        for (i, op) in ops[1..].iter().enumerate() {
            match op {
                StreamOp::Batch {
                    id,
                    seq,
                    commit,
                    msg,
                } => {
                    let n = i as u64 + 1;
                    assert_eq!(
                        (id.as_str(), *seq, *commit, msg.lseq, msg.subject.clone()),
                        ("batch1", n, n == 3, n, format!("b.{n}"))
                    );
                    assert!(msg.hdr_len > 0 && msg.msg_len == 2 && !msg.compressed);
                }
                o => panic!("{o:?}"),
            }
        }
    }
}

#[cfg(test)]
mod hostile {
    use crate::filestore::block::{RecordKind, Records};
    use crate::filestore::raft::{parse_append_entry, parse_snapshot, EntryType};
    use crate::testdata::{self, Rng};

    /// The fuzz entries for stream and consumer groups (8-11) on the real entries and
    /// snapshots of the crash sample's groups, cut and bit-flipped: no panic, errors within
    /// their input.
    #[test]
    fn real_group_entries_cut_and_flipped_never_panic() {
        const S: &str = "v2.15.1-cluster-log-n1";
        let d = testdata::sample(S);
        let js = "store/jetstream/$SYS/_js_";
        let mut inputs: Vec<(u8, Vec<u8>)> = Vec::new();
        for (g, blk, sel, snap, ssel) in [
            ("S-R3F-XIaMAxph", "3.blk", 8u8, "snap.1.6", 9u8),
            ("C-R3F-wOSTYZ77", "2.blk", 10, "snap.2.8", 11),
        ] {
            let wal = testdata::read(&d, S, &format!("{js}/{g}/msgs/{blk}"));
            for r in Records::new(&wal).filter_map(|r| r.ok()) {
                if r.kind() != RecordKind::Message {
                    continue;
                }
                for e in parse_append_entry(r.payload).unwrap().entries {
                    if e.kind == EntryType::Normal {
                        let data = if sel == 10 {
                            let mut v = vec![e.data.len() as u8];
                            v.extend_from_slice(e.data);
                            v
                        } else {
                            e.data.to_vec()
                        };
                        inputs.push((sel, data));
                    }
                }
            }
            let raw = testdata::read(&d, S, &format!("{js}/{g}/snapshots/{snap}"));
            inputs.push((ssel, parse_snapshot(&raw, g).unwrap().data));
        }
        assert!(inputs.iter().filter(|(s, _)| *s == 8).count() >= 5);
        assert!(inputs.iter().filter(|(s, _)| *s == 10).count() >= 9);
        let mut rng = Rng(0x10c);
        for (sel, inp) in &inputs {
            let mut x = vec![*sel];
            x.extend_from_slice(inp);
            crate::fuzzing::raft(&x);
            for _ in 0..300 {
                let mut b = inp.clone();
                if rng.below(2) == 0 {
                    let cut = rng.below(b.len() + 1);
                    b.truncate(cut);
                } else if !b.is_empty() {
                    let at = rng.below(b.len());
                    b[at] ^= 1 << rng.below(8);
                }
                let mut x = vec![*sel];
                x.extend_from_slice(&b);
                crate::fuzzing::raft(&x);
            }
        }
    }
}
