//! Consumer state `obs/<consumer>/o.dat` (spec §6; `encodeConsumerState`/`decodeConsumerState`).
//!
//! Plaintext only here (encrypted files are `nonce ‖ AEAD` and must be opened first).
use crate::base::bytes::{put_uvarint, put_varint, Cursor, ParseError};

/// File-store magic.
pub const MAGIC: u8 = 22;
const HBIT: u64 = 1 << 63;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqPair {
    pub consumer_seq: u64,
    pub stream_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub stream_seq: u64,
    /// Delivery (consumer) sequence; 0 in version-1 files, which do not store it.
    pub consumer_seq: u64,
    /// Delivery time, whole seconds since the epoch.
    pub ts_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerState {
    pub version: u8,
    pub ack_floor: SeqPair,
    /// For v1 files this is already converted from "next to deliver" to "last delivered".
    pub delivered: SeqPair,
    /// In file order (Go map order; unsorted).
    pub pending: Vec<Pending>,
    /// (stream seq, delivery count), in file order. Entries the server would skip (zero
    /// sequence delta or zero count) are dropped, as the server drops them.
    pub redelivered: Vec<(u64, u64)>,
    /// The base timestamp (seconds) the pending entries are relative to; 0 without pending.
    /// Kept so that [`encode`] reproduces the file byte for byte.
    pub base_ts_secs: i64,
}

impl ConsumerState {
    #[cfg(test)]
    /// Server-side invariants (not enforced by the decoder): ack floor ≤ delivered for both
    /// sequences and every pending stream seq in (ack_floor.stream, delivered.stream].
    pub fn invariants_hold(&self) -> bool {
        self.ack_floor.stream_seq <= self.delivered.stream_seq
            && self.ack_floor.consumer_seq <= self.delivered.consumer_seq
            && self.pending.iter().all(|p| {
                p.stream_seq > self.ack_floor.stream_seq
                    && p.stream_seq <= self.delivered.stream_seq
            })
    }
}

fn count(c: &mut Cursor, min_entry: u64, what: &str) -> Result<u64, ParseError> {
    c.count(min_entry, &format!("o.dat {what}"))
}

/// Parse `o.dat`. An empty file means "no state" (`Ok(None)`). Versions 1 and 2. Rejects what
/// the server rejects (bad magic/version, unreadable varints, stream floors with bit 63, a zero
/// pending stream seq) and also a file that ends before the redelivered count (the server
/// reads that as "no redelivered").
pub fn parse(buf: &[u8]) -> Result<Option<ConsumerState>, ParseError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut c = Cursor::new(buf);
    let version = c.header(MAGIC, 1..=2, "o.dat", "; encrypted?")?;
    let ack_floor = SeqPair {
        consumer_seq: c.uvarint()?,
        stream_seq: c.uvarint()?,
    };
    let dpos = c.pos();
    let mut delivered = SeqPair {
        consumer_seq: c.uvarint()?,
        stream_seq: c.uvarint()?,
    };
    if version == 1 {
        // v1 stored "next to deliver"; adjust as the server does.
        if ack_floor.consumer_seq > 1 {
            delivered.consumer_seq = delivered
                .consumer_seq
                .wrapping_add(ack_floor.consumer_seq - 1);
        }
        if ack_floor.stream_seq > 1 {
            delivered.stream_seq = delivered.stream_seq.wrapping_add(ack_floor.stream_seq - 1);
        }
    }
    if ack_floor.stream_seq & HBIT != 0 || delivered.stream_seq & HBIT != 0 {
        return Err(ParseError::invalid(
            dpos,
            "o.dat: stream floor with bit 63 set (rolled backwards)",
        ));
    }
    let asflr = ack_floor.stream_seq;
    let adflr = ack_floor.consumer_seq;

    // Pending entries take ≥ 2 (v1) / 3 (v2) bytes each.
    let num_pending = count(&mut c, if version == 2 { 3 } else { 2 }, "pending")?;
    let mut pending = Vec::with_capacity(num_pending as usize);
    let mut base_ts_secs = 0i64;
    if num_pending > 0 {
        base_ts_secs = c.varint()?;
        for _ in 0..num_pending {
            let at = c.pos();
            let sdelta = c.uvarint()?;
            let ddelta = if version == 2 { c.uvarint()? } else { 0 };
            let tdelta = c.varint()?;
            let stream_seq = sdelta.wrapping_add(asflr);
            if stream_seq == 0 {
                return Err(ParseError::invalid(
                    at,
                    "o.dat: pending entry with stream seq 0",
                ));
            }
            let consumer_seq = if version == 2 {
                ddelta.wrapping_add(adflr)
            } else {
                0
            };
            let ts_secs = if version == 1 {
                tdelta.wrapping_add(base_ts_secs)
            } else {
                base_ts_secs.wrapping_sub(tdelta)
            };
            pending.push(Pending {
                stream_seq,
                consumer_seq,
                ts_secs,
            });
        }
    }

    let num_redelivered = count(&mut c, 2, "redelivered")?;
    let mut redelivered = Vec::with_capacity(num_redelivered as usize);
    for _ in 0..num_redelivered {
        let sdelta = c.uvarint()?;
        let n = c.uvarint()?;
        if sdelta > 0 && n > 0 {
            redelivered.push((sdelta.wrapping_add(asflr), n));
        }
    }
    Ok(Some(ConsumerState {
        version,
        ack_floor,
        delivered,
        pending,
        redelivered,
        base_ts_secs,
    }))
}

/// Encode as version 2 (what current servers write). Pending/redelivered are written in the
/// given order; pending timestamps are relative to `base_ts_secs`.
pub fn encode(st: &ConsumerState) -> Vec<u8> {
    let mut b = vec![MAGIC, 2];
    put_uvarint(&mut b, st.ack_floor.consumer_seq);
    put_uvarint(&mut b, st.ack_floor.stream_seq);
    put_uvarint(&mut b, st.delivered.consumer_seq);
    put_uvarint(&mut b, st.delivered.stream_seq);
    put_uvarint(&mut b, st.pending.len() as u64);
    if !st.pending.is_empty() {
        put_varint(&mut b, st.base_ts_secs);
        for p in &st.pending {
            put_uvarint(&mut b, p.stream_seq.wrapping_sub(st.ack_floor.stream_seq));
            put_uvarint(
                &mut b,
                p.consumer_seq.wrapping_sub(st.ack_floor.consumer_seq),
            );
            put_varint(&mut b, st.base_ts_secs.wrapping_sub(p.ts_secs));
        }
    }
    put_uvarint(&mut b, st.redelivered.len() as u64);
    for &(seq, n) in &st.redelivered {
        put_uvarint(&mut b, seq.wrapping_sub(st.ack_floor.stream_seq));
        put_uvarint(&mut b, n);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    fn odat(sample: &str, stream: &str, c: &str) -> Vec<u8> {
        let d = testdata::sample(sample);
        testdata::read(
            &d,
            sample,
            &format!("store/jetstream/$G/streams/{stream}/obs/{c}/o.dat"),
        )
    }

    fn sp(c: u64, s: u64) -> SeqPair {
        SeqPair {
            consumer_seq: c,
            stream_seq: s,
        }
    }

    #[test]
    fn orders_c1_c2_both_versions() {
        // (sample, C1 pending delivery seq, base ts, pending ts)
        for (sample, dseq) in [("v2.15.1-plain", 3u64), ("v2.9.10-legacy", 5)] {
            let raw = odat(sample, "ORDERS", "C1");
            let st = parse(&raw).unwrap().unwrap();
            assert_eq!(st.version, 2);
            assert_eq!(st.ack_floor, sp(2, 3), "{sample}");
            assert_eq!(st.delivered, sp(5, 5));
            assert_eq!(st.pending.len(), 1);
            assert_eq!(
                (st.pending[0].stream_seq, st.pending[0].consumer_seq),
                (4, dseq),
                "{sample}"
            );
            assert_eq!(st.redelivered, vec![(4, 1)]);
            assert!(st.invariants_hold());
            assert_eq!(encode(&st), raw);

            let raw = odat(sample, "ORDERS", "C2");
            let st = parse(&raw).unwrap().unwrap();
            assert_eq!((st.ack_floor, st.delivered), (sp(3, 4), sp(3, 4)));
            assert!(st.pending.is_empty() && st.redelivered.is_empty());
            assert_eq!(encode(&st), raw);
        }
        // Pending timestamps: base = write time rounded to the second; entry = delivery time / 1 s.
        let st = parse(&odat("v2.15.1-plain", "ORDERS", "C1"))
            .unwrap()
            .unwrap();
        assert_eq!(st.base_ts_secs, 1795483017);
        assert_eq!(st.pending[0].ts_secs, 1795483016);
        let st = parse(&odat("v2.9.10-legacy", "ORDERS", "C1"))
            .unwrap()
            .unwrap();
        assert_eq!(st.base_ts_secs, 1795483023);
        assert_eq!(st.pending[0].ts_secs, 1795483022);
    }

    #[test]
    fn cluster_consumer_all_zero() {
        let d = testdata::sample("v2.15.1-cluster-n1");
        let raw = testdata::read(
            &d,
            "v2.15.1-cluster-n1",
            "store/jetstream/$G/streams/CL/obs/D/o.dat",
        );
        let st = parse(&raw).unwrap().unwrap();
        assert_eq!((st.ack_floor, st.delivered), (sp(0, 0), sp(0, 0)));
        assert_eq!(encode(&st), raw);
    }

    #[test]
    fn empty_v1_and_rejections() {
        assert_eq!(parse(&[]).unwrap(), None);
        // v1: delivered stored as next-to-deliver, pending ts = base + delta, no dseq.
        let mut b = vec![22u8, 1, 2, 3, 3, 3, 1];
        put_varint(&mut b, 1000);
        put_uvarint(&mut b, 1);
        put_varint(&mut b, -5);
        put_uvarint(&mut b, 0);
        let st = parse(&b).unwrap().unwrap();
        assert_eq!(st.delivered, sp(4, 5));
        assert_eq!(
            st.pending,
            vec![Pending {
                stream_seq: 4,
                consumer_seq: 0,
                ts_secs: 995
            }]
        );
        // Re-encoded as v2 and parsed back: same pending/redelivered/floors.
        let back = parse(&encode(&st)).unwrap().unwrap();
        assert_eq!(back, ConsumerState { version: 2, ..st });

        assert!(parse(&[22]).is_err());
        assert!(parse(&[22, 3, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(parse(&[11, 2, 0, 0, 0, 0, 0, 0]).is_err());
        // Bit 63 in the stream floor.
        let mut b = vec![22u8, 2, 0];
        put_uvarint(&mut b, HBIT | 1);
        b.extend_from_slice(&[0, 0, 0, 0]);
        assert!(parse(&b).is_err());
        // Zero pending stream seq (floor 0, delta 0).
        let b = vec![22u8, 2, 0, 0, 1, 1, 1, 2, 0, 1, 0, 0];
        assert!(parse(&b).is_err());
        // Huge counts are rejected before allocating.
        let mut b = vec![22u8, 2, 0, 0, 1, 1];
        put_uvarint(&mut b, u64::MAX);
        assert!(parse(&b).is_err());
        let mut b = vec![22u8, 2, 0, 0, 1, 1, 0];
        put_uvarint(&mut b, 1 << 62);
        assert!(parse(&b).is_err());
    }

    #[test]
    fn roundtrip_synthetic() {
        let st = ConsumerState {
            version: 2,
            ack_floor: sp(100, 1000),
            delivered: sp(250, 5000),
            pending: (1..50)
                .map(|i| Pending {
                    stream_seq: 1000 + i * 7,
                    consumer_seq: 100 + i,
                    ts_secs: 1_700_000_000 - i as i64,
                })
                .collect(),
            redelivered: vec![(1007, 3), (1014, 2)],
            base_ts_secs: 1_700_000_100,
        };
        let enc = encode(&st);
        assert_eq!(parse(&enc).unwrap().unwrap(), st);
    }

    #[test]
    fn truncation_never_panics() {
        for (s, c) in [
            ("v2.15.1-plain", "C1"),
            ("v2.15.1-plain", "C2"),
            ("v2.9.10-legacy", "C1"),
        ] {
            let raw = odat(s, "ORDERS", c);
            assert_eq!(parse(&raw[..0]).unwrap(), None);
            for cut in 1..raw.len() {
                assert!(parse(&raw[..cut]).is_err(), "{s} {c} cut {cut}");
            }
        }
    }
}
