//! The `NATSARC1` archive (backup format V2, nats-server 2.15+), read and written as a stream.
//!
//! Layout (after S2 decoding): magic `NATSARC1`, then entries `uvarint nameLen | varint ts |
//! uvarint seq | uvarint headerSize | uvarint payloadSize | name | header bytes | body bytes`,
//! ended by an all-zero entry (5 zero bytes). No checksums, no padding.
//! A backup holds `state.json`, `consumer_count` entries `consumers/<name>`, then one entry per
//! message in ascending sequence, then the sentinel. [`V2Checker`] enforces what the server's
//! restore enforces plus the counts a verifier can check against `state.json`.
use super::backup_json::StreamStateJson;
use crate::base::problem::{Kind, Location, Problem};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, Read, Write};
use thiserror::Error;

pub const MAGIC: &[u8; 8] = b"NATSARC1";
/// Default limit on an entry name (the server accepts up to 1 MiB; subjects are far shorter).
pub const DEFAULT_MAX_NAME: u64 = 64 << 10;
/// Default limit on header + payload of one entry: a message a file store can hold, whose
/// whole record (header, subject, headers, payload, checksum) is at most `rlBadThresh` = 32 MiB
/// in every release (a longer record is corrupt when the server reads the block back). The
/// entry is held in memory while it is checked, so this also bounds memory.
pub const DEFAULT_MAX_ENTRY: u64 = crate::filestore::block::MAX_RECORD_LEN as u64;

#[derive(Debug, Error)]
pub enum ArcError {
    #[error("read error at archive offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("not a NATSARC1 archive: starts with {found:02x?}")]
    BadMagic { found: Vec<u8> },
    #[error("archive truncated: {what} of the entry at offset {offset} ends at offset {at}")]
    Truncated {
        offset: u64,
        at: u64,
        what: &'static str,
    },
    #[error("archive ends at offset {offset} without the end-of-backup sentinel")]
    MissingSentinel { offset: u64 },
    #[error("malformed varint in the entry header at offset {offset}")]
    Varint { offset: u64 },
    #[error("entry at offset {offset}: name of {len} bytes is longer than the {max} accepted")]
    NameTooLong { offset: u64, len: u64, max: u64 },
    #[error("entry at offset {offset}: header {header} + payload {payload} bytes exceed the {max} accepted")]
    EntryTooLarge {
        offset: u64,
        header: u64,
        payload: u64,
        max: u64,
    },
}

impl ArcError {
    /// Offset in the decoded archive (entry start, or where reading failed).
    pub fn offset(&self) -> u64 {
        match self {
            ArcError::Io { offset, .. }
            | ArcError::Truncated { offset, .. }
            | ArcError::MissingSentinel { offset }
            | ArcError::Varint { offset }
            | ArcError::NameTooLong { offset, .. }
            | ArcError::EntryTooLarge { offset, .. } => *offset,
            ArcError::BadMagic { .. } => 0,
        }
    }
    /// Stable problem kind.
    pub fn kind(&self) -> Kind {
        match self {
            ArcError::Io { source, .. } => super::io_error_kind(source),
            ArcError::BadMagic { .. } => Kind::V2BadMagic,
            ArcError::Truncated { .. } => Kind::V2Truncated,
            ArcError::MissingSentinel { .. } => Kind::V2MissingSentinel,
            ArcError::Varint { .. } => Kind::V2Corrupt,
            ArcError::NameTooLong { .. } | ArcError::EntryTooLarge { .. } => Kind::V2EntryTooLarge,
        }
    }
}

/// One archive entry with its bytes. `header` is the message header block (`headerSize` bytes),
/// `payload` the rest (`payloadSize` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcEntry {
    /// Entry name: the message subject, or `state.json` / `consumers/<name>`.
    pub name: Vec<u8>,
    /// Message time, ns since the epoch.
    pub timestamp: i64,
    /// Stream sequence (0 for non-message entries).
    pub seq: u64,
    /// NATS header block.
    pub header: Vec<u8>,
    /// Message payload (or the JSON document). Empty for a message entry read by a reader told
    /// to skip message payloads ([`V2Options::skip_message_payloads`]).
    pub payload: Vec<u8>,
    /// The payload's length (`payloadSize`), also when its bytes were skipped.
    pub payload_len: u64,
    /// Offset of the entry's first byte in the decoded archive (the magic is at 0).
    pub offset: u64,
}

impl ArcEntry {
    /// An entry with no name and no bytes (a buffer for [`NatsArcReader::next_entry_into`]).
    pub fn empty() -> Self {
        ArcEntry {
            name: Vec::new(),
            timestamp: 0,
            seq: 0,
            header: Vec::new(),
            payload: Vec::new(),
            payload_len: 0,
            offset: 0,
        }
    }
    /// The name as text (invalid UTF-8 replaced).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
    /// Bytes this entry occupies in the archive (as held: with its payload).
    pub fn encoded_len(&self) -> u64 {
        let mut v = Vec::with_capacity(40);
        put_entry_header(
            &mut v,
            self.name.len() as u64,
            self.timestamp,
            self.seq,
            self.header.len() as u64,
            self.payload.len() as u64,
        );
        v.len() as u64
            + self.name.len() as u64
            + self.header.len() as u64
            + self.payload.len() as u64
    }
}

fn put_entry_header(v: &mut Vec<u8>, name_len: u64, ts: i64, seq: u64, hlen: u64, plen: u64) {
    crate::base::bytes::put_uvarint(v, name_len);
    crate::base::bytes::put_varint(v, ts);
    crate::base::bytes::put_uvarint(v, seq);
    crate::base::bytes::put_uvarint(v, hlen);
    crate::base::bytes::put_uvarint(v, plen);
}

/// Go `binary.Uvarint` at the start of `b`: the value and the bytes it took, `None` when the
/// varint is cut short by the end of `b` or overflows 64 bits.
fn uvarint_in(b: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    let mut s: u32 = 0;
    for (i, &c) in b.iter().take(10).enumerate() {
        if c < 0x80 {
            if i == 9 && c > 1 {
                return None;
            }
            return Some((x | (u64::from(c) << s), i + 1));
        }
        x |= u64::from(c & 0x7f) << s;
        s += 7;
    }
    None
}

/// Streaming reader. Memory per entry is bounded by the limits (name, header + payload).
pub struct NatsArcReader<R: BufRead> {
    r: R,
    pos: u64,
    ended: bool,
    failed: bool,
    max_name: u64,
    max_entry: u64,
    /// Message payloads are consumed, not copied ([`V2Options::skip_message_payloads`]).
    skip_payloads: bool,
    /// Held while an entry above [`BIG_BLOCK`](crate::filestore::block::BIG_BLOCK) is in
    /// memory (until the next entry is read): one big record at a time across threads, as
    /// for big blocks (a `diff` of a store and a V2 backup walks both at once).
    big: crate::filestore::block::BigBlockGuard,
}

enum ByteRead {
    Byte(u8),
    Eof,
}

impl<R: BufRead> NatsArcReader<R> {
    /// Reads and checks the magic.
    pub fn new(r: R) -> Result<Self, ArcError> {
        Self::with_limits(r, DEFAULT_MAX_NAME, DEFAULT_MAX_ENTRY)
    }

    pub fn with_limits(r: R, max_name: u64, max_entry: u64) -> Result<Self, ArcError> {
        let mut me = NatsArcReader {
            r,
            pos: 0,
            ended: false,
            failed: false,
            max_name,
            max_entry,
            skip_payloads: false,
            big: crate::filestore::block::big_block_guard(0),
        };
        let mut magic = Vec::with_capacity(8);
        let n = me.read_up_to(&mut magic, 8)?;
        if n < 8 {
            if magic.as_slice() == &MAGIC[..magic.len()] {
                return Err(ArcError::Truncated {
                    offset: 0,
                    at: n,
                    what: "magic",
                });
            }
            return Err(ArcError::BadMagic { found: magic });
        }
        if magic.as_slice() != MAGIC {
            return Err(ArcError::BadMagic { found: magic });
        }
        Ok(me)
    }

    /// From now on, the payload of a message entry (a sequence, a name that is neither
    /// `state.json` nor `consumers/…`) is consumed without being copied: its entry has an
    /// empty `payload` and its `payload_len`. The same errors and offsets as when it is read.
    pub fn skip_message_payloads(&mut self) {
        self.skip_payloads = true;
    }

    /// Consumes up to `n` bytes without copying them; returns how many (fewer only at EOF).
    fn skip_up_to(&mut self, n: u64) -> Result<u64, ArcError> {
        let start = self.pos;
        let mut got: u64 = 0;
        while got < n {
            let avail = match self.r.fill_buf() {
                Ok(b) => b.len(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ArcError::Io {
                        offset: start,
                        source: e,
                    })
                }
            };
            if avail == 0 {
                break;
            }
            let k = (avail as u64).min(n - got) as usize;
            self.r.consume(k);
            got += k as u64;
        }
        self.pos += got;
        Ok(got)
    }

    /// Position in the decoded archive (bytes consumed so far).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// True once the end sentinel was read.
    #[cfg(test)]
    pub fn at_end(&self) -> bool {
        self.ended
    }

    fn read_byte(&mut self) -> Result<ByteRead, ArcError> {
        loop {
            match self.r.fill_buf() {
                Ok(b) => {
                    let Some(&x) = b.first() else {
                        return Ok(ByteRead::Eof);
                    };
                    self.r.consume(1);
                    self.pos += 1;
                    return Ok(ByteRead::Byte(x));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ArcError::Io {
                        offset: self.pos,
                        source: e,
                    })
                }
            }
        }
    }

    /// Appends up to `n` bytes to `out`; returns how many were read (less only at EOF).
    fn read_up_to(&mut self, out: &mut Vec<u8>, n: u64) -> Result<u64, ArcError> {
        let start = self.pos;
        let got = (&mut self.r).take(n).read_to_end(out);
        match got {
            Ok(k) => {
                self.pos += k as u64;
                Ok(k as u64)
            }
            Err(e) => Err(ArcError::Io {
                offset: start,
                source: e,
            }),
        }
    }

    /// Go `binary.ReadUvarint`. `Ok(None)` = clean EOF before the first byte.
    fn uvarint(&mut self, entry: u64, what: &'static str) -> Result<Option<u64>, ArcError> {
        let start = self.pos;
        // Fast path: the whole varint (at most 10 bytes) is in the reader's buffer.
        if let Ok(Some(w)) = self.r.fill_buf().map(|b| b.first_chunk::<10>().copied()) {
            let mut x: u64 = 0;
            let mut s: u32 = 0;
            for (i, &b) in w.iter().enumerate() {
                if b < 0x80 {
                    if i == 9 && b > 1 {
                        return Err(ArcError::Varint { offset: start });
                    }
                    self.r.consume(i + 1);
                    self.pos += i as u64 + 1;
                    return Ok(Some(x | (u64::from(b) << s)));
                }
                x |= u64::from(b & 0x7f) << s;
                s += 7;
            }
            return Err(ArcError::Varint { offset: start });
        }
        let mut x: u64 = 0;
        let mut s: u32 = 0;
        for i in 0..10 {
            let b = match self.read_byte()? {
                ByteRead::Byte(b) => b,
                ByteRead::Eof if i == 0 => return Ok(None),
                ByteRead::Eof => {
                    return Err(ArcError::Truncated {
                        offset: entry,
                        at: self.pos,
                        what,
                    })
                }
            };
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(ArcError::Varint { offset: start });
                }
                return Ok(Some(x | (u64::from(b) << s)));
            }
            x |= u64::from(b & 0x7f) << s;
            s += 7;
        }
        Err(ArcError::Varint { offset: start })
    }

    /// The five varints that start an entry (name length, zigzag time, sequence, header size,
    /// payload size), taken in one step when the reader's buffer holds at least 50 bytes and
    /// every varint in them is well-formed: `None` (nothing consumed) otherwise, and the
    /// field-by-field path reads them with its errors and offsets.
    fn head_in_buffer(&mut self) -> Option<(u64, u64, u64, u64, u64)> {
        let b = self.r.fill_buf().ok()?.first_chunk::<50>()?;
        let mut at = 0usize;
        let mut v = [0u64; 5];
        for x in &mut v {
            let (val, used) = uvarint_in(b.get(at..)?)?;
            *x = val;
            at += used;
        }
        self.r.consume(at);
        self.pos += at as u64;
        Some((v[0], v[1], v[2], v[3], v[4]))
    }

    fn field(&mut self, entry: u64, what: &'static str) -> Result<u64, ArcError> {
        match self.uvarint(entry, what)? {
            Some(v) => Ok(v),
            None => Err(ArcError::Truncated {
                offset: entry,
                at: self.pos,
                what,
            }),
        }
    }

    #[cfg(test)]
    /// Next entry, or `None` after the end sentinel (an all-zero entry with an empty name).
    /// EOF on an entry boundary is [`ArcError::MissingSentinel`]; EOF inside an entry is
    /// [`ArcError::Truncated`].
    /// After an error every further call fails again (at the same offset).
    pub fn next_entry(&mut self) -> Result<Option<ArcEntry>, ArcError> {
        if self.ended {
            return Ok(None);
        }
        if self.failed {
            return Err(ArcError::Io {
                offset: self.pos,
                source: io::Error::other("archive reader stopped at an earlier error"),
            });
        }
        let res = self.read_entry();
        if res.is_err() {
            self.failed = true;
        }
        res
    }

    #[cfg(test)]
    fn read_entry(&mut self) -> Result<Option<ArcEntry>, ArcError> {
        let mut e = ArcEntry::empty();
        Ok(self.read_entry_into(&mut e)?.then_some(e))
    }

    /// [`Self::next_entry`] into a reused entry, for reading many entries without allocating
    /// for each: `Ok(true)` = `e` holds the next entry (its buffers are cleared and refilled,
    /// keeping their capacity), `Ok(false)` = the end sentinel was read (`e` is then
    /// unspecified). Same limits, errors and offsets as [`Self::next_entry`].
    pub fn next_entry_into(&mut self, e: &mut ArcEntry) -> Result<bool, ArcError> {
        if self.ended {
            return Ok(false);
        }
        if self.failed {
            return Err(ArcError::Io {
                offset: self.pos,
                source: io::Error::other("archive reader stopped at an earlier error"),
            });
        }
        let res = self.read_entry_into(e);
        if res.is_err() {
            self.failed = true;
        }
        res
    }

    /// Replaces `out` with up to `n` bytes (fewer only at EOF); returns how many. The bytes
    /// are copied straight from the reader's buffer; memory grows with the bytes actually
    /// read, not with the claimed `n`.
    fn read_into(&mut self, out: &mut Vec<u8>, n: u64) -> Result<u64, ArcError> {
        out.clear();
        let start = self.pos;
        let mut got: u64 = 0;
        while got < n {
            let b = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ArcError::Io {
                        offset: start,
                        source: e,
                    })
                }
            };
            if b.is_empty() {
                break;
            }
            let k = (b.len() as u64).min(n - got) as usize;
            out.extend_from_slice(b.get(..k).unwrap_or(&[]));
            self.r.consume(k);
            got += k as u64;
        }
        self.pos += got;
        Ok(got)
    }

    fn read_entry_into(&mut self, e: &mut ArcEntry) -> Result<bool, ArcError> {
        use crate::filestore::block::{big_block_guard, BIG_BLOCK};
        // the previous entry is done with: a big one's buffers go, then its lock
        if e.payload.capacity() as u64 > BIG_BLOCK {
            e.payload = Vec::new();
        }
        if e.header.capacity() as u64 > BIG_BLOCK {
            e.header = Vec::new();
        }
        self.big = big_block_guard(0);
        let offset = self.pos;
        let (name_len, ts_raw, seq, hlen, plen) = match self.head_in_buffer() {
            Some(h) => h,
            None => {
                let Some(name_len) = self.uvarint(offset, "name length")? else {
                    return Err(ArcError::MissingSentinel { offset });
                };
                let ts_raw = self.field(offset, "timestamp")?;
                let seq = self.field(offset, "sequence")?;
                let hlen = self.field(offset, "header size")?;
                let plen = self.field(offset, "payload size")?;
                (name_len, ts_raw, seq, hlen, plen)
            }
        };
        let timestamp = ((ts_raw >> 1) as i64) ^ -((ts_raw & 1) as i64);
        if name_len > self.max_name {
            return Err(ArcError::NameTooLong {
                offset,
                len: name_len,
                max: self.max_name,
            });
        }
        let total = hlen.checked_add(plen);
        if hlen > i64::MAX as u64
            || plen > i64::MAX as u64
            || total.is_none_or(|t| t > self.max_entry)
        {
            return Err(ArcError::EntryTooLarge {
                offset,
                header: hlen,
                payload: plen,
                max: self.max_entry,
            });
        }
        if let Some(t) = total.filter(|&t| t > BIG_BLOCK) {
            self.big = big_block_guard(t);
        }
        e.offset = offset;
        e.timestamp = timestamp;
        e.seq = seq;
        e.header.clear();
        e.payload.clear();
        if self.read_into(&mut e.name, name_len)? < name_len {
            return Err(ArcError::Truncated {
                offset,
                at: self.pos,
                what: "name",
            });
        }
        if name_len == 0 && timestamp == 0 && seq == 0 && hlen == 0 && plen == 0 {
            self.ended = true;
            return Ok(false);
        }
        if self.read_into(&mut e.header, hlen)? < hlen {
            return Err(ArcError::Truncated {
                offset,
                at: self.pos,
                what: "header",
            });
        }
        e.payload_len = plen;
        let skip = self.skip_payloads
            && seq != 0
            && e.name != b"state.json"
            && !e.name.starts_with(b"consumers/");
        let got = if skip {
            self.skip_up_to(plen)?
        } else {
            self.read_into(&mut e.payload, plen)?
        };
        if got < plen {
            return Err(ArcError::Truncated {
                offset,
                at: self.pos,
                what: "payload",
            });
        }
        Ok(true)
    }

    /// After the sentinel: counts (and discards) every remaining byte. 0 = a clean end.
    pub fn trailing_bytes(&mut self) -> io::Result<u64> {
        let n = io::copy(&mut self.r, &mut io::sink())?;
        self.pos += n;
        Ok(n)
    }
}

/// Writes a NATSARC1 archive byte-for-byte as the server does.
pub struct NatsArcWriter<W: Write> {
    w: W,
    scratch: Vec<u8>,
}

impl<W: Write> NatsArcWriter<W> {
    /// Writes the magic.
    pub fn new(mut w: W) -> io::Result<Self> {
        w.write_all(MAGIC)?;
        Ok(NatsArcWriter {
            w,
            scratch: Vec::with_capacity(64),
        })
    }

    /// One entry: name, time (ns), sequence, header block and payload.
    pub fn write_entry(
        &mut self,
        name: &[u8],
        ts: i64,
        seq: u64,
        header: &[u8],
        payload: &[u8],
    ) -> io::Result<()> {
        self.scratch.clear();
        put_entry_header(
            &mut self.scratch,
            name.len() as u64,
            ts,
            seq,
            header.len() as u64,
            payload.len() as u64,
        );
        self.w.write_all(&self.scratch)?;
        self.w.write_all(name)?;
        self.w.write_all(header)?;
        self.w.write_all(payload)
    }

    /// The head of an entry whose header block and payload (`body_len` bytes together, the
    /// header block `hdr_len` of them) the caller writes next through [`NatsArcWriter::get_mut`]:
    /// the bytes of [`NatsArcWriter::write_entry`] without holding the payload.
    pub fn write_entry_head(
        &mut self,
        name: &[u8],
        ts: i64,
        seq: u64,
        hdr_len: u64,
        body_len: u64,
    ) -> io::Result<()> {
        self.scratch.clear();
        put_entry_header(
            &mut self.scratch,
            name.len() as u64,
            ts,
            seq,
            hdr_len,
            body_len.saturating_sub(hdr_len),
        );
        self.w.write_all(&self.scratch)?;
        self.w.write_all(name)
    }

    /// The inner writer (for the body of [`NatsArcWriter::write_entry_head`]).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Writes the end sentinel and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; 5])?;
        self.w.flush()?;
        Ok(self.w)
    }
}

// ---------------------------------------------------------------------------------------------
// Typed entry models.

/// A `(consumer_seq, stream_seq)` pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeqPairJson {
    #[serde(default)]
    pub consumer_seq: u64,
    #[serde(default)]
    pub stream_seq: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One pending ack (Go struct without JSON tags, hence the capitalised keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingJson {
    #[serde(rename = "Sequence", default)]
    pub sequence: u64,
    #[serde(rename = "Timestamp", default)]
    pub timestamp: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Consumer state as the V2 archive stores it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumerStateJson {
    #[serde(default)]
    pub delivered: SeqPairJson,
    #[serde(default)]
    pub ack_floor: SeqPairJson,
    /// Keyed by stream sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<BTreeMap<u64, PendingJson>>,
    /// Stream sequence -> delivery count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redelivered: Option<BTreeMap<u64, u64>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The consumer config fields jetdir looks at; everything else stays in `extra`, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumerConfigJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_subjects: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Payload of a `consumers/<name>` entry. The server refuses a restore when `config` or `state`
/// is missing; both are Options here so the checker can say which.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumerEntryJson {
    #[serde(default)]
    pub config: Option<ConsumerConfigJson>,
    #[serde(default)]
    pub state: Option<ConsumerStateJson>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------------------------------------
// Structure checker.

/// What role an entry played in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRole {
    /// `state.json`: the stream state at snapshot time.
    State,
    /// `consumers/<name>`: a consumer's config and state.
    Consumer,
    /// A message.
    Message,
    /// Out of place (already reported as a problem).
    Unexpected,
}

/// How a V2 archive is checked and where its findings are located.
#[derive(Debug, Clone, Default)]
pub struct V2Options {
    /// Archive member label used in problem locations, e.g. `stream.tar.s2`.
    pub label: String,
    /// Account of the findings.
    pub account: Option<String>,
    /// Stream of the findings.
    pub stream: Option<String>,
    /// The stream's `max_msg_size` (from backup.json), when limited.
    pub max_msg_size: Option<u64>,
    /// Message payloads are consumed without being copied (verify checks only their length).
    pub skip_message_payloads: bool,
}

impl V2Options {
    /// Options with the given location label (normally `stream.tar.s2`).
    pub fn new(label: impl Into<String>) -> Self {
        V2Options {
            label: label.into(),
            ..Default::default()
        }
    }
}

/// A consumer entry as found in the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct V2Consumer {
    /// Consumer name (after `consumers/`).
    pub name: String,
    /// Offset of its entry in the decoded archive.
    pub offset: u64,
    /// `None` when the JSON could not be parsed (reported).
    pub entry: Option<ConsumerEntryJson>,
}

/// What a full pass over a V2 archive found.
#[derive(Debug, Clone, Default)]
pub struct V2Summary {
    /// `state.json`, when present and valid.
    pub state: Option<StreamStateJson>,
    /// The snapshot time (state.json's timestamp, ns).
    pub snapshot_ts: Option<i64>,
    /// Consumer entries, in archive order.
    pub consumers: Vec<V2Consumer>,
    /// Entries read, sentinel not included.
    pub entries: u64,
    /// Message entries.
    pub messages: u64,
    /// Message entries with a header block.
    pub messages_with_headers: u64,
    /// Sequence of the first message entry.
    pub first_msg_seq: Option<u64>,
    /// Sequence of the last message entry.
    pub last_msg_seq: Option<u64>,
    /// Sum of the file-store record sizes of the messages (what state.bytes counts).
    pub stored_bytes: u64,
    /// The end-of-backup sentinel was found.
    pub sentinel: bool,
    /// Decoded bytes after the sentinel.
    pub trailing_bytes: u64,
    /// Decoded archive size up to where reading stopped.
    pub archive_bytes: u64,
    /// Findings: at most [`MAX_PER_KIND`](crate::base::problem::MAX_PER_KIND) of each kind
    /// from the per-entry checks.
    pub problems: Vec<Problem>,
    /// Per-entry findings not kept, per kind identifier.
    pub suppressed: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    State,
    /// Consumer entries still expected (`None` = unknown because state.json was bad).
    Consumers(Option<u64>),
    Messages,
}

/// File-store record size of a message (`fileStoreMsgSizeRaw`): 22-byte header, subject,
/// 4-byte header length + headers when present, body, 8-byte checksum.
pub fn filestore_msg_size(subject_len: u64, header_len: u64, body_len: u64) -> u64 {
    let h = if header_len > 0 { 4 + header_len } else { 0 };
    22u64
        .saturating_add(subject_len)
        .saturating_add(h)
        .saturating_add(body_len)
        .saturating_add(8)
}

/// Incremental checker: feed it every entry in order, then the end (sentinel, error, trailing).
pub struct V2Checker {
    opts: V2Options,
    phase: Phase,
    declared_consumers: Option<u64>,
    consumer_names: HashSet<String>,
    sum: V2Summary,
    complete: bool,
    /// Findings per kind so far (for the per-kind cap).
    counts: std::collections::HashMap<Kind, u64>,
}

impl V2Checker {
    pub fn new(opts: V2Options) -> Self {
        V2Checker {
            opts,
            phase: Phase::State,
            declared_consumers: None,
            consumer_names: HashSet::new(),
            sum: V2Summary::default(),
            complete: false,
            counts: std::collections::HashMap::new(),
        }
    }

    fn loc(&self, name: &str, offset: u64) -> Location {
        Location {
            account: self.opts.account.clone(),
            stream: self.opts.stream.clone(),
            file: Some(if name.is_empty() {
                self.opts.label.clone()
            } else {
                format!("{}:{}", self.opts.label, name)
            }),
            offset: Some(offset),
            ..Default::default()
        }
    }

    /// Problems found so far (for a caller that wants to stop early at the first error).
    pub fn problems(&self) -> &[Problem] {
        &self.sum.problems
    }

    /// Record a finding; beyond [`MAX_PER_KIND`](crate::base::problem::MAX_PER_KIND) of a
    /// kind only the count is kept (an archive can hold millions of bad entries).
    fn err(&mut self, kind: Kind, loc: Location, msg: String) {
        let n = self.counts.entry(kind).or_insert(0);
        *n += 1;
        if *n > crate::base::problem::MAX_PER_KIND {
            *self
                .sum
                .suppressed
                .entry(kind.as_str().to_string())
                .or_insert(0) += 1;
        } else {
            self.sum.problems.push(Problem::new(kind, loc, msg));
        }
    }

    /// Classify and check one entry.
    pub fn entry(&mut self, e: &ArcEntry) -> EntryRole {
        self.sum.entries += 1;
        if matches!(self.phase, Phase::Messages) {
            // once per message: the name as text only when a finding needs it
            return self.message_entry(e);
        }
        let name = String::from_utf8_lossy(&e.name);
        loop {
            match self.phase {
                Phase::State => {
                    if e.name == b"state.json" {
                        self.state_entry(e);
                        return EntryRole::State;
                    }
                    self.err(
                        Kind::V2Order,
                        self.loc(&name, e.offset),
                        format!("expected state.json first, found {name:?}"),
                    );
                    self.phase = Phase::Consumers(None);
                }
                Phase::Consumers(remaining) => {
                    if remaining == Some(0) {
                        self.phase = Phase::Messages;
                        continue;
                    }
                    if let Some(cname) = name.strip_prefix("consumers/") {
                        self.consumer_entry(e, cname);
                        self.phase = Phase::Consumers(remaining.map(|r| r.saturating_sub(1)));
                        return EntryRole::Consumer;
                    }
                    if e.name == b"state.json" {
                        self.err(
                            Kind::V2Order,
                            self.loc(&name, e.offset),
                            "a second state.json entry".into(),
                        );
                        return EntryRole::Unexpected;
                    }
                    if let (Some(r), Some(d)) = (remaining, self.declared_consumers) {
                        let found = d.saturating_sub(r);
                        self.err(
                            Kind::V2ConsumerCount,
                            self.loc(&name, e.offset),
                            format!("state.json declares {d} consumers but only {found} consumer entries precede {name:?} (the server's restore fails: expected consumer)"),
                        );
                    }
                    self.phase = Phase::Messages;
                }
                Phase::Messages => return self.message_entry(e),
            }
        }
    }

    fn state_entry(&mut self, e: &ArcEntry) {
        self.sum.snapshot_ts = Some(e.timestamp);
        let mut body = e.header.clone();
        body.extend_from_slice(&e.payload);
        match serde_json::from_slice::<StreamStateJson>(&body) {
            Ok(st) => {
                if st.messages > 0 && (st.first_seq == 0 || st.last_seq < st.first_seq) {
                    self.err(
                        Kind::V2StateJson,
                        self.loc("state.json", e.offset),
                        format!(
                            "state.json has {} messages but first_seq {} / last_seq {}",
                            st.messages, st.first_seq, st.last_seq
                        ),
                    );
                }
                let n = st.consumers();
                self.declared_consumers = Some(n);
                self.phase = Phase::Consumers(Some(n));
                self.sum.state = Some(st);
            }
            Err(err) => {
                self.err(
                    Kind::V2StateJson,
                    self.loc("state.json", e.offset),
                    format!("error in state.json: {err}"),
                );
                self.phase = Phase::Consumers(None);
            }
        }
    }

    fn consumer_entry(&mut self, e: &ArcEntry, cname: &str) {
        let full = format!("consumers/{cname}");
        if !self.consumer_names.insert(cname.to_string()) {
            let loc = self.loc(&full, e.offset).consumer(cname);
            self.err(
                Kind::V2ConsumerDuplicate,
                loc,
                format!("consumer {cname:?} appears twice"),
            );
        }
        if cname.is_empty() || cname.contains(['/', '\\', '.', '*', '>', ' ', '\t', '\r', '\n']) {
            let loc = self.loc(&full, e.offset).consumer(cname);
            self.err(
                Kind::V2ConsumerJson,
                loc,
                format!("invalid consumer name {cname:?}"),
            );
        }
        let mut body = e.header.clone();
        body.extend_from_slice(&e.payload);
        let parsed = match serde_json::from_slice::<ConsumerEntryJson>(&body) {
            Ok(c) => {
                let missing = match (&c.config, &c.state) {
                    (None, _) => Some("config"),
                    (_, None) => Some("state"),
                    _ => None,
                };
                if let Some(m) = missing {
                    let loc = self.loc(&full, e.offset).consumer(cname);
                    self.err(
                        Kind::V2ConsumerJson,
                        loc,
                        format!("consumer {cname:?} is missing {m}"),
                    );
                }
                if let (Some(st), Some(state)) = (&c.state, &self.sum.state) {
                    if st.delivered.stream_seq > state.last_seq
                        || st.ack_floor.stream_seq > st.delivered.stream_seq
                    {
                        let loc = self.loc(&full, e.offset).consumer(cname);
                        self.err(
                            Kind::V2ConsumerState,
                            loc,
                            format!(
                                "consumer {cname:?}: delivered stream seq {} / ack floor {} inconsistent with the stream's last_seq {}",
                                st.delivered.stream_seq, st.ack_floor.stream_seq, state.last_seq
                            ),
                        );
                    }
                }
                Some(c)
            }
            Err(err) => {
                let loc = self.loc(&full, e.offset).consumer(cname);
                self.err(
                    Kind::V2ConsumerJson,
                    loc,
                    format!("failed to decode consumer {cname:?} state: {err}"),
                );
                None
            }
        };
        self.sum.consumers.push(V2Consumer {
            name: cname.to_string(),
            offset: e.offset,
            entry: parsed,
        });
    }

    fn message_entry(&mut self, e: &ArcEntry) -> EntryRole {
        if e.seq == 0 {
            let name = String::from_utf8_lossy(&e.name);
            let name = name.as_ref();
            if name.starts_with("consumers/") {
                let kind = if self.sum.messages == 0 {
                    Kind::V2ConsumerCount
                } else {
                    Kind::V2Order
                };
                let d = self
                    .declared_consumers
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "?".into());
                self.err(
                    kind,
                    self.loc(name, e.offset),
                    format!("consumer entry {name:?} after the {d} consumers state.json declares"),
                );
            } else if e.name == b"state.json" {
                self.err(
                    Kind::V2Order,
                    self.loc(name, e.offset),
                    "a second state.json entry".into(),
                );
            } else if e.timestamp == 0 && e.header.is_empty() && e.payload_len == 0 {
                self.err(
                    Kind::V2BadSentinel,
                    self.loc(name, e.offset),
                    format!("end-of-backup sentinel with a name ({name:?}); the server stops reading here"),
                );
            } else {
                self.err(
                    Kind::V2SeqMissing,
                    self.loc(name, e.offset),
                    format!("entry {name:?} has no message sequence"),
                );
            }
            return EntryRole::Unexpected;
        }
        let seq = e.seq;
        // built only when a problem needs it (this runs once per message)
        let mk = |c: &V2Checker| c.loc(&String::from_utf8_lossy(&e.name), e.offset).seq(seq);
        if let Some(prev) = self.sum.last_msg_seq {
            if seq <= prev {
                self.err(
                    Kind::V2SeqNotAscending,
                    mk(self),
                    format!("message sequence {seq} out of order (after {prev})"),
                );
            }
        }
        if let Some(st) = &self.sum.state {
            if seq < st.first_seq || seq > st.last_seq {
                let msg = format!(
                    "message sequence {seq} outside state.json's range {}..{}",
                    st.first_seq, st.last_seq
                );
                let l = mk(self);
                self.err(Kind::V2SeqOutOfRange, l, msg);
            }
        }
        if e.name.is_empty() {
            self.err(
                Kind::V2BadSubject,
                mk(self),
                format!("message {seq} has an empty subject"),
            );
        }
        let (hl, pl) = (e.header.len() as u64, e.payload_len);
        if let Some(mms) = self.opts.max_msg_size {
            if hl.saturating_add(pl) > mms {
                self.err(
                    Kind::V2MsgTooLarge,
                    mk(self),
                    format!(
                        "message {seq} is {} bytes, above the stream's max_msg_size {mms}",
                        hl + pl
                    ),
                );
            }
        }
        if hl > 0 && !e.header.starts_with(b"NATS/1.0") {
            self.err(
                Kind::V2BadHeader,
                mk(self),
                format!("message {seq}: header block does not start with NATS/1.0"),
            );
        }
        if hl > 0 {
            self.sum.messages_with_headers += 1;
        }
        self.sum.messages += 1;
        self.sum.stored_bytes =
            self.sum
                .stored_bytes
                .saturating_add(filestore_msg_size(e.name.len() as u64, hl, pl));
        if self.sum.first_msg_seq.is_none() {
            self.sum.first_msg_seq = Some(seq);
        }
        self.sum.last_msg_seq = Some(self.sum.last_msg_seq.map_or(seq, |p| p.max(seq)));
        EntryRole::Message
    }

    /// The sentinel was read at `offset`.
    pub fn sentinel(&mut self, offset: u64) {
        match self.phase {
            Phase::State => {
                self.err(
                    Kind::V2Order,
                    self.loc("", offset),
                    "archive ends before state.json".into(),
                );
            }
            Phase::Consumers(Some(r)) if r > 0 => {
                let d = self.declared_consumers.unwrap_or(0);
                self.err(
                    Kind::V2ConsumerCount,
                    self.loc("", offset),
                    format!(
                        "state.json declares {d} consumers but the archive ends after {}",
                        d.saturating_sub(r)
                    ),
                );
            }
            _ => {}
        }
        self.sum.sentinel = true;
        self.complete = true;
    }

    /// Reading stopped with `e` (truncation, corrupt framing, limits).
    pub fn error(&mut self, e: &ArcError) {
        let off = e.offset();
        let mut loc = self.loc("", off);
        if let ArcError::Io { source, .. } = e {
            if let Some(c) = crate::s2::compressed_offset_of(source) {
                loc = self.loc("", c);
            }
        }
        self.err(e.kind(), loc, e.to_string());
    }

    /// `n` decoded bytes follow the sentinel at `offset`.
    pub fn trailing(&mut self, offset: u64, n: u64) {
        self.sum.trailing_bytes = n;
        if n > 0 {
            let loc = self.loc("", offset);
            self.sum.problems.push(Problem::new(
                Kind::V2TrailingData,
                loc,
                format!("{n} bytes after the end-of-backup sentinel (the server ignores them)"),
            ));
        }
    }

    /// Final cross-checks against state.json (only for a complete archive).
    pub fn finish(mut self, archive_bytes: u64) -> V2Summary {
        self.sum.archive_bytes = archive_bytes;
        if self.complete {
            if let Some(st) = self.sum.state.clone() {
                let loc = self.loc("state.json", 8);
                if self.sum.messages != st.messages {
                    self.err(
                        Kind::V2MessageCount,
                        loc.clone(),
                        format!(
                            "state.json says {} messages, the archive holds {}",
                            st.messages, self.sum.messages
                        ),
                    );
                }
                if let Some(f) = self.sum.first_msg_seq {
                    if f != st.first_seq {
                        self.err(
                            Kind::V2FirstSeq,
                            loc.clone(),
                            format!(
                                "state.json first_seq {} but the first message is {f}",
                                st.first_seq
                            ),
                        );
                    }
                }
                if self.sum.stored_bytes != st.bytes && self.sum.messages == st.messages {
                    self.err(
                        Kind::V2Bytes,
                        loc,
                        format!(
                            "state.json says {} bytes, the messages add up to {}",
                            st.bytes, self.sum.stored_bytes
                        ),
                    );
                }
            }
        }
        self.sum
    }
}

/// How a V2 scan ended early, when it did not reach the sentinel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// The archive does not start with a readable NATSARC1 header.
    BadHeader,
    /// An entry declares a name or size beyond the limits: nothing after it can be trusted.
    Oversized,
    /// Truncated, corrupt or unreadable at some entry.
    Damaged,
}

/// The one NATSARC1 read loop: entries are read into one reused [`ArcEntry`] (no allocation per
/// message) and each is checked by the [`V2Checker`] before the caller sees it; the sentinel,
/// trailing bytes and read errors are handled here. `jetdir verify` and `jetdir extract` both
/// drive it.
pub struct V2Scan<R: BufRead> {
    ck: V2Checker,
    rd: Option<NatsArcReader<R>>,
    e: ArcEntry,
    done: bool,
    ended: Option<ScanEnd>,
}

impl<R: BufRead> V2Scan<R> {
    /// Read the archive header; a bad header ends the scan at once (see [`V2Scan::ended`]).
    pub fn new(r: R, opts: V2Options) -> Self {
        let skip = opts.skip_message_payloads;
        let mut ck = V2Checker::new(opts);
        let (rd, ended) = match NatsArcReader::new(r) {
            Ok(mut rd) => {
                if skip {
                    rd.skip_message_payloads();
                }
                (Some(rd), None)
            }
            Err(e) => {
                ck.error(&e);
                (None, Some(ScanEnd::BadHeader))
            }
        };
        V2Scan {
            ck,
            rd,
            e: ArcEntry::empty(),
            done: ended.is_some(),
            ended,
        }
    }

    /// The next entry, checked: its role, with the entry itself in [`V2Scan::entry`]. `None` at
    /// the sentinel or at the first read error.
    pub fn advance(&mut self) -> Option<EntryRole> {
        if self.done {
            return None;
        }
        let rd = self.rd.as_mut()?;
        match rd.next_entry_into(&mut self.e) {
            Ok(true) => Some(self.ck.entry(&self.e)),
            Ok(false) => {
                self.done = true;
                let at = rd.position();
                self.ck.sentinel(at.saturating_sub(5));
                match rd.trailing_bytes() {
                    Ok(n) => self.ck.trailing(at, n),
                    Err(source) => {
                        let offset = rd.position();
                        // reported; the entries before the sentinel are complete
                        self.ck.error(&ArcError::Io { offset, source });
                    }
                }
                None
            }
            Err(err) => {
                self.done = true;
                self.ended = Some(match err {
                    ArcError::EntryTooLarge { .. } | ArcError::NameTooLong { .. } => {
                        ScanEnd::Oversized
                    }
                    _ => ScanEnd::Damaged,
                });
                self.ck.error(&err);
                None
            }
        }
    }

    /// The entry [`V2Scan::advance`] returned last.
    pub fn entry(&self) -> &ArcEntry {
        &self.e
    }

    /// Problems found so far.
    pub fn problems(&self) -> &[Problem] {
        self.ck.problems()
    }

    /// Why the scan stopped before the sentinel, if it did.
    pub fn ended(&self) -> Option<ScanEnd> {
        self.ended
    }

    /// Finish the checks (state.json against the entries seen) and return the summary.
    pub fn finish(self) -> V2Summary {
        let pos = self.rd.as_ref().map_or(0, |rd| rd.position());
        self.ck.finish(pos)
    }
}

/// Check a whole archive, calling `on_entry` for every entry with its role.
pub fn scan_v2<R: BufRead>(
    r: R,
    opts: V2Options,
    mut on_entry: impl FnMut(&ArcEntry, EntryRole),
) -> V2Summary {
    let mut scan = V2Scan::new(r, opts);
    while let Some(role) = scan.advance() {
        on_entry(scan.entry(), role);
    }
    scan.finish()
}

#[cfg(test)]
/// [`scan_v2`] without a callback.
pub fn check_v2_structure<R: BufRead>(r: R, opts: V2Options) -> V2Summary {
    scan_v2(r, opts, |_, _| {})
}
