//! The auxiliary state files of a stream: `msgs/thw.db` (TTL hash wheel), `msgs/sched.db`
//! (message schedules) and `sources.db` (source positions). All parsers are pure and
//! bounds-checked; errors carry byte offsets.
use crate::base::bytes::{Cursor, ParseError};

struct Header {
    count: u64,
    high_seq: u64,
}

fn state_header(c: &mut Cursor, what: &str, min_entry: u64) -> Result<Header, ParseError> {
    let v = c.u8()?;
    if v != 1 {
        return Err(ParseError::invalid(
            0,
            format!("{what}: unknown version {v}"),
        ));
    }
    let count = c.u64le()?;
    let high_seq = c.u64le()?;
    c.check_count(1, count, min_entry, what)?;
    Ok(Header { count, high_seq })
}

/// One TTL entry of `thw.db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlEntry {
    /// Expiry time, ns since the epoch.
    pub expires: i64,
    pub seq: u64,
}

/// `msgs/thw.db` (TTL hash wheel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThwDb {
    pub count: u64,
    /// Stream last_seq + 1 when written: messages at or above it were not covered.
    pub high_seq: u64,
    pub entries: Vec<TtlEntry>,
    /// Bytes after the last entry (ignored by the server).
    pub trailing: usize,
}

/// Parse `thw.db`: `u8 1, u64 count, u64 high_seq, count × {varint expires, uvarint seq}`.
pub fn parse_thw(buf: &[u8]) -> Result<ThwDb, ParseError> {
    let mut c = Cursor::new(buf);
    let h = state_header(&mut c, "thw.db", 2)?;
    let mut entries = Vec::with_capacity(h.count as usize);
    for _ in 0..h.count {
        let expires = c.varint()?;
        let seq = c.uvarint()?;
        entries.push(TtlEntry { expires, seq });
    }
    Ok(ThwDb {
        count: h.count,
        high_seq: h.high_seq,
        entries,
        trailing: c.remaining(),
    })
}

/// One entry of `sched.db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    pub subject: Vec<u8>,
    /// Next fire time, ns since the epoch.
    pub ts: i64,
    pub seq: u64,
}

/// `msgs/sched.db` (message schedules, 2.12+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedDb {
    pub count: u64,
    pub high_seq: u64,
    pub entries: Vec<ScheduleEntry>,
    pub trailing: usize,
}

/// Whether `sched.db` makes the decoder of nats-server 2.12.0-2.12.11 and 2.14.0-2.14.2
/// (`MsgScheduling.decode`) index past the end of the file: it reads each entry's 2-byte
/// subject length without checking that 2 bytes are left, and takes a varint cut short as
/// 0 bytes long, so a file whose entries stop before its header's count says (cut short, or
/// a count raised by damage) panics the whole server at start ("index out of range",
/// seen on 2.12.2 and 2.12.8: matrix `aux_sched_cut`). Fixed in 2.12.12 and 2.14.3
/// (nats-server 4fb527a0, "Reject malformed TTL and schedule state on decode"). A file those
/// releases reject with an error (too short a header, another version, a subject cut short,
/// a varint past 10 bytes) does not panic.
pub fn sched_panics_unchecked_decoder(buf: &[u8]) -> bool {
    let (Some(&1), Some(count)) = (buf.first(), buf.get(1..9)) else {
        return false;
    };
    let Some(mut b) = buf.get(17..) else {
        return false;
    };
    let count = u64::from_le_bytes(count.try_into().unwrap_or([0; 8]));
    // every entry takes at least its 2-byte length, so the loop ends within len / 2 entries
    for _ in 0..count {
        let [l0, l1, rest @ ..] = b else {
            return true;
        };
        let sl = usize::from(u16::from_le_bytes([*l0, *l1]));
        let Some(after) = rest.get(sl..) else {
            return false;
        };
        let tn = go_uvarint_len(after);
        if tn < 0 {
            return false;
        }
        let vn = go_uvarint_len(&after[tn as usize..]);
        if vn < 0 {
            return false;
        }
        b = &after[(tn + vn) as usize..];
    }
    false
}

/// How many entries the TTL decoder of nats-server 2.11.x, 2.12.0-2.12.11 and 2.14.0-2.14.2
/// (`HashWheel.Decode`) walks at start when `thw.db`'s header counts more entries than the
/// file holds, `None` when it holds them all (or the decoder rejects the file first). That
/// decoder takes a varint cut short as 0 bytes long, so past the file's end it adds an empty
/// entry for each one the count has left: `count` steps (the real 2.12.8 with a count of 2^28
/// started in 3.6 s, with 2^36 not within 20 s). Fixed with the sched.db decoder.
pub fn thw_steps_unchecked_decoder(buf: &[u8]) -> Option<u64> {
    let (Some(&1), Some(count)) = (buf.first(), buf.get(1..9)) else {
        return None;
    };
    let mut b = buf.get(17..)?;
    let count = u64::from_le_bytes(count.try_into().ok()?);
    let mut entries = 0u64;
    while entries < count {
        let tn = go_uvarint_len(b);
        if tn < 0 {
            return None;
        }
        let vn = go_uvarint_len(&b[tn as usize..]);
        if vn < 0 {
            return None;
        }
        if tn == 0 || vn == 0 {
            // the file ends before this entry: the rest of the count is walked as empty ones
            return Some(count);
        }
        b = &b[(tn + vn) as usize..];
        entries += 1;
    }
    None
}

/// Go's `binary.Uvarint` (and `Varint`) length: the bytes taken, 0 when the buffer ends first,
/// negative on overflow.
fn go_uvarint_len(b: &[u8]) -> isize {
    for (i, &x) in b.iter().enumerate() {
        if i == 10 {
            return -(i as isize + 1);
        }
        if x < 0x80 {
            if i == 9 && x > 1 {
                return -(i as isize + 1);
            }
            return i as isize + 1;
        }
    }
    0
}

/// Parse `sched.db`: header, `count × {u16 LE len, subject, varint ts, uvarint seq}`.
pub fn parse_sched(buf: &[u8]) -> Result<SchedDb, ParseError> {
    let mut c = Cursor::new(buf);
    let h = state_header(&mut c, "sched.db", 4)?;
    let mut entries = Vec::with_capacity(h.count as usize);
    for _ in 0..h.count {
        let len = c.u16le()? as usize;
        let subject = c.take(len)?.to_vec();
        let ts = c.varint()?;
        let seq = c.uvarint()?;
        entries.push(ScheduleEntry { subject, ts, seq });
    }
    Ok(SchedDb {
        count: h.count,
        high_seq: h.high_seq,
        entries,
        trailing: c.remaining(),
    })
}

/// One entry of `sources.db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// The source's index name (key of the stream's source map).
    pub name: Vec<u8>,
    pub seq: u64,
    pub ident: Vec<u8>,
}

/// `<stream>/sources.db` (2.15+ / HEAD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesDb {
    pub count: u64,
    pub high_seq: u64,
    pub entries: Vec<SourceEntry>,
    pub trailing: usize,
}

fn len_prefixed(c: &mut Cursor, what: &str) -> Result<Vec<u8>, ParseError> {
    let at = c.pos();
    let n = c.uvarint()?;
    if n > c.remaining() as u64 {
        return Err(ParseError::invalid(
            at,
            format!("{what}: length {n} past end of file"),
        ));
    }
    Ok(c.take(n as usize)?.to_vec())
}

/// Parse `sources.db`: header, `count × {uvarint len, name, uvarint seq, uvarint len, ident}`.
pub fn parse_sources(buf: &[u8]) -> Result<SourcesDb, ParseError> {
    let mut c = Cursor::new(buf);
    let h = state_header(&mut c, "sources.db", 3)?;
    let mut entries = Vec::with_capacity(h.count as usize);
    for _ in 0..h.count {
        let name = len_prefixed(&mut c, "sources.db name")?;
        let seq = c.uvarint()?;
        let ident = len_prefixed(&mut c, "sources.db ident")?;
        entries.push(SourceEntry { name, seq, ident });
    }
    Ok(SourcesDb {
        count: h.count,
        high_seq: h.high_seq,
        entries,
        trailing: c.remaining(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::bytes::{put_uvarint, put_varint};
    use crate::testdata;

    #[test]
    fn kv_thw_db() {
        let d = testdata::sample("v2.15.1-plain");
        let raw = testdata::read(
            &d,
            "v2.15.1-plain",
            "store/jetstream/$G/streams/KV_config/msgs/thw.db",
        );
        assert_eq!(raw.len(), 17);
        let t = parse_thw(&raw).unwrap();
        assert_eq!(
            (t.count, t.high_seq, t.entries.len(), t.trailing),
            (0, 8, 0, 0)
        );
        for cut in 0..raw.len() {
            assert!(parse_thw(&raw[..cut]).is_err());
        }
    }

    #[test]
    fn synthetic_thw_sched_sources() {
        let mut b = vec![1u8];
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&50u64.to_le_bytes());
        for (ts, seq) in [(1_700_000_000_000_000_000i64, 7u64), (-3, 9)] {
            put_varint(&mut b, ts);
            put_uvarint(&mut b, seq);
        }
        // the TTL decoder of 2.11.x / 2.12.0-2.12.11 / 2.14.0-2.14.2 walks a count the file
        // does not hold to its end
        assert_eq!(thw_steps_unchecked_decoder(&b), None);
        assert_eq!(thw_steps_unchecked_decoder(&b[..17]), Some(2));
        assert_eq!(thw_steps_unchecked_decoder(&b[..b.len() - 1]), Some(2));
        let mut more = b.clone();
        more[1..9].copy_from_slice(&(1u64 << 36).to_le_bytes());
        assert_eq!(thw_steps_unchecked_decoder(&more), Some(1 << 36));
        more[0] = 0;
        assert_eq!(thw_steps_unchecked_decoder(&more), None);
        let t = parse_thw(&b).unwrap();
        assert_eq!(
            t.entries,
            vec![
                TtlEntry {
                    expires: 1_700_000_000_000_000_000,
                    seq: 7
                },
                TtlEntry {
                    expires: -3,
                    seq: 9
                }
            ]
        );
        for cut in 0..b.len() {
            assert!(parse_thw(&b[..cut]).is_err(), "cut {cut}");
        }

        let mut b = vec![1u8];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&12u64.to_le_bytes());
        b.extend_from_slice(&5u16.to_le_bytes());
        b.extend_from_slice(b"a.b.c");
        put_varint(&mut b, 99);
        put_uvarint(&mut b, 11);
        // the decoder of 2.12.0-2.12.11 / 2.14.0-2.14.2 indexes past the end when the entries
        // stop before the count: at a length field with fewer than 2 bytes left
        let panics: Vec<usize> = (0..=b.len())
            .filter(|&cut| sched_panics_unchecked_decoder(&b[..cut]))
            .collect();
        assert_eq!(panics, vec![17, 18], "{} bytes", b.len());
        let mut more = b.clone();
        more[1] = 2; // a count past the entries there
        assert!(sched_panics_unchecked_decoder(&more));
        more[0] = 2; // another version: rejected before the entries
        assert!(!sched_panics_unchecked_decoder(&more));
        let s = parse_sched(&b).unwrap();
        assert_eq!(
            (
                s.high_seq,
                s.entries[0].subject.as_slice(),
                s.entries[0].ts,
                s.entries[0].seq
            ),
            (12, &b"a.b.c"[..], 99, 11)
        );
        for cut in 0..b.len() {
            assert!(parse_sched(&b[..cut]).is_err(), "cut {cut}");
        }

        let mut b = vec![1u8];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&3u64.to_le_bytes());
        put_uvarint(&mut b, 3);
        b.extend_from_slice(b"SRC");
        put_uvarint(&mut b, 42);
        put_uvarint(&mut b, 2);
        b.extend_from_slice(b"id");
        let s = parse_sources(&b).unwrap();
        assert_eq!(
            s.entries,
            vec![SourceEntry {
                name: b"SRC".to_vec(),
                seq: 42,
                ident: b"id".to_vec()
            }]
        );
        for cut in 0..b.len() {
            assert!(parse_sources(&b[..cut]).is_err(), "cut {cut}");
        }
        // Huge counts / versions.
        let mut b = vec![1u8];
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&[0; 16]);
        assert!(parse_thw(&b).is_err() && parse_sched(&b).is_err() && parse_sources(&b).is_err());
        b[0] = 2;
        assert!(parse_thw(&b).is_err());
    }
}
