//! The raft group of a clustered consumer (`$SYS/_js_/C-R<n><F|M>-<id>/`): the operations its
//! normal WAL entries carry (`applyConsumerEntries`, jetstream_cluster.go, 2.9–2.15) and the
//! replay of them onto a consumer's stored state as the consumer file store does it
//! (`consumerFileStore.UpdateDelivered` / `UpdateAcks` / `Update`, filestore.go).
//!
//! Entries: one op byte, then
//! - `updateDeliveredOp` (7): uvarint delivery seq, uvarint stream seq, uvarint delivery count,
//!   varint timestamp (ns);
//! - `updateAcksOp` (8): uvarint delivery seq, uvarint stream seq;
//! - `updateSkipOp` (10): u64 LE stream seq (a filtered consumer skipping ahead);
//! - `addPendingRequest` (12) / `removePendingRequest` (13): a pull request's reply subject;
//! - `resetSeqOp` (18, 2.14+): u64 LE stream seq, then the reply subject.
//!
//! A consumer group's snapshot data is the consumer state encoded as in `o.dat`
//! ([`crate::filestore::consumer_state`]).
//!
//! Where releases apply an op differently, [`ApplyRules`] says what the release does. Each op's
//! replay is proven against real servers (tests/cluster_log_e2e.rs: explicit, ack-all and
//! ack-none deliveries and acks, a filtered consumer's skip, a 2.14+ reset).
use crate::base::bytes::{Cursor, ParseError};
use crate::base::release::Release;
use crate::filestore::consumer_state::{ConsumerState, SeqPair};
use std::collections::BTreeMap;

pub const UPDATE_DELIVERED_OP: u8 = 7;
pub const UPDATE_ACKS_OP: u8 = 8;
pub const UPDATE_SKIP_OP: u8 = 10;
pub const ADD_PENDING_REQUEST: u8 = 12;
pub const REMOVE_PENDING_REQUEST: u8 = 13;
pub const RESET_SEQ_OP: u8 = 18;

/// One consumer-group operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerOp {
    /// A delivery: consumer (delivery) seq, stream seq, delivery count, time (ns).
    Delivered {
        dseq: u64,
        sseq: u64,
        dc: u64,
        ts: i64,
    },
    /// An acknowledgement.
    Ack {
        dseq: u64,
        sseq: u64,
    },
    /// Skip to a stream sequence (filtered consumers).
    Skip {
        sseq: u64,
    },
    /// Reset to a stream sequence (2.14+ consumer reset).
    Reset {
        sseq: u64,
    },
    AddPendingRequest,
    RemovePendingRequest,
}

/// Decode the data of a normal entry of a consumer group. An op the server does not know in
/// a consumer group is an error ("unknown consumer entry op type").
pub fn decode_op(data: &[u8]) -> Result<ConsumerOp, ParseError> {
    let Some((&op, body)) = data.split_first() else {
        return Err(ParseError::invalid(0, "consumer entry: empty"));
    };
    let mut c = Cursor::new(body);
    let sh = |e: ParseError| e.shifted(1);
    let u64le = |c: &mut Cursor, what: &str| {
        c.u64le().map_err(|_| {
            ParseError::invalid(
                1,
                format!("consumer {what}: {} bytes, 8 needed", body.len()),
            )
        })
    };
    Ok(match op {
        UPDATE_DELIVERED_OP => ConsumerOp::Delivered {
            dseq: c.uvarint().map_err(sh)?,
            sseq: c.uvarint().map_err(sh)?,
            dc: c.uvarint().map_err(sh)?,
            ts: c.varint().map_err(sh)?,
        },
        UPDATE_ACKS_OP => ConsumerOp::Ack {
            dseq: c.uvarint().map_err(sh)?,
            sseq: c.uvarint().map_err(sh)?,
        },
        UPDATE_SKIP_OP => ConsumerOp::Skip {
            sseq: u64le(&mut c, "skip update")?,
        },
        RESET_SEQ_OP => ConsumerOp::Reset {
            sseq: u64le(&mut c, "reset update")?,
        },
        ADD_PENDING_REQUEST => ConsumerOp::AddPendingRequest,
        REMOVE_PENDING_REQUEST => ConsumerOp::RemovePendingRequest,
        o => {
            return Err(ParseError::invalid(
                0,
                format!("unknown consumer entry op type {o}"),
            ))
        }
    })
}

/// Encode an op (tests).
#[cfg(test)]
pub fn encode_op(op: &ConsumerOp) -> Vec<u8> {
    use crate::base::bytes::{put_uvarint, put_varint};
    match *op {
        ConsumerOp::Delivered { dseq, sseq, dc, ts } => {
            let mut b = vec![UPDATE_DELIVERED_OP];
            put_uvarint(&mut b, dseq);
            put_uvarint(&mut b, sseq);
            put_uvarint(&mut b, dc);
            put_varint(&mut b, ts);
            b
        }
        ConsumerOp::Ack { dseq, sseq } => {
            let mut b = vec![UPDATE_ACKS_OP];
            put_uvarint(&mut b, dseq);
            put_uvarint(&mut b, sseq);
            b
        }
        ConsumerOp::Skip { sseq } => {
            let mut b = vec![UPDATE_SKIP_OP];
            b.extend_from_slice(&sseq.to_le_bytes());
            b
        }
        ConsumerOp::Reset { sseq } => {
            let mut b = vec![RESET_SEQ_OP];
            b.extend_from_slice(&sseq.to_le_bytes());
            b
        }
        ConsumerOp::AddPendingRequest => vec![ADD_PENDING_REQUEST],
        ConsumerOp::RemovePendingRequest => vec![REMOVE_PENDING_REQUEST],
    }
}

/// The ack policy as far as the store's replay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPolicy {
    None,
    All,
    Explicit,
}

impl AckPolicy {
    /// From the config's `ack_policy` (`none`, `all`, `explicit`, 2.14+ `flow_control`, which
    /// the store treats as `all`); unknown or absent: explicit (the default).
    pub fn of(s: Option<&str>) -> AckPolicy {
        match s {
            Some("none") => AckPolicy::None,
            Some("all") | Some("flow_control") => AckPolicy::All,
            _ => AckPolicy::Explicit,
        }
    }
}

/// How a release applies a consumer group's ops to the consumer's store, where releases
/// differ (`applyConsumerEntries`, jetstream_cluster.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyRules {
    /// `updateSkipOp` moves the stored state (`o.store.UpdateStarting(sseq - 1)`, 2.11.0 and
    /// later). 2.9 and 2.10 move only a follower's in-memory position (`o.sseq = sseq`): o.dat
    /// keeps what it had (seen on 2.10.26).
    pub skip_moves_store: bool,
}

impl ApplyRules {
    /// The rules of `release`; None: the newest release jetdir knows.
    pub fn of(release: Option<&Release>) -> ApplyRules {
        ApplyRules {
            skip_moves_store: release.is_none_or(|r| r.base() >= Release::new(2, 11, 0)),
        }
    }
}

/// A consumer's stored state as the consumer file store holds it during a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    pub delivered: SeqPair,
    pub ack_floor: SeqPair,
    /// stream seq → delivery seq of the messages delivered and not acknowledged.
    pub pending: BTreeMap<u64, u64>,
    /// stream seq → redelivery count.
    pub redelivered: BTreeMap<u64, u64>,
}

impl Replay {
    /// Start from a decoded `o.dat` (None: an empty state).
    pub fn from_state(st: Option<&ConsumerState>) -> Replay {
        let Some(st) = st else {
            return Replay::default();
        };
        Replay {
            delivered: st.delivered,
            ack_floor: st.ack_floor,
            pending: st
                .pending
                .iter()
                .map(|p| (p.stream_seq, p.consumer_seq))
                .collect(),
            redelivered: st.redelivered.iter().copied().collect(),
        }
    }

    /// A snapshot entry (`Update`): replaces the state unless it is older (delivered consumer
    /// seq or ack floor stream seq below the current: `ErrStoreOldUpdate`) or inconsistent.
    /// Returns whether it was taken.
    pub fn apply_snapshot(&mut self, st: &ConsumerState) -> bool {
        if st.ack_floor.consumer_seq > st.delivered.consumer_seq
            || st.ack_floor.stream_seq > st.delivered.stream_seq
            || st.pending.iter().any(|p| {
                p.stream_seq <= st.ack_floor.stream_seq || p.stream_seq > st.delivered.stream_seq
            })
        {
            return false;
        }
        if st.delivered.consumer_seq < self.delivered.consumer_seq
            || st.ack_floor.stream_seq < self.ack_floor.stream_seq
        {
            return false;
        }
        *self = Replay::from_state(Some(st));
        true
    }

    /// Apply one op as the store does (`UpdateDelivered`, `UpdateAcks`, `UpdateStarting`,
    /// `Reset`) under `rules` (the release's).
    pub fn apply(
        &mut self,
        op: &ConsumerOp,
        policy: AckPolicy,
        max_deliver: i64,
        rules: ApplyRules,
    ) {
        match *op {
            ConsumerOp::Delivered { dseq, sseq, dc, .. } => {
                self.delivered_update(dseq, sseq, dc, policy, max_deliver)
            }
            ConsumerOp::Ack { dseq, sseq } => self.ack_update(dseq, sseq, policy),
            ConsumerOp::Skip { .. } if !rules.skip_moves_store => {}
            ConsumerOp::Skip { sseq } => {
                // UpdateStarting(sseq-1): delivered moves up, the ack floor with it under
                // AckNone; the consumer seqs and pending stay.
                let s = sseq.saturating_sub(1);
                if s > self.delivered.stream_seq {
                    self.delivered.stream_seq = s;
                    if policy == AckPolicy::None {
                        self.ack_floor.stream_seq = s;
                    }
                }
            }
            ConsumerOp::Reset { sseq } => {
                // Reset(sseq-1) (2.14+, the only releases that write it): an empty state,
                // then delivered and ack floor at sseq-1 (consumer seqs 0: the next delivery
                // is consumer seq 1).
                let s = sseq.saturating_sub(1);
                *self = Replay::default();
                self.delivered.stream_seq = s;
                self.ack_floor.stream_seq = s;
            }
            ConsumerOp::AddPendingRequest | ConsumerOp::RemovePendingRequest => {}
        }
    }

    fn delivered_update(&mut self, dseq: u64, sseq: u64, dc: u64, p: AckPolicy, max_dc: i64) {
        if dc != 1 && p == AckPolicy::None {
            return;
        }
        if dseq <= self.ack_floor.consumer_seq {
            return;
        }
        if p != AckPolicy::None {
            if sseq > self.delivered.stream_seq {
                self.pending.insert(sseq, dseq);
            }
            self.delivered.consumer_seq = self.delivered.consumer_seq.max(dseq);
            self.delivered.stream_seq = self.delivered.stream_seq.max(sseq);
            if dc > 1 {
                if max_dc > 0 && dc > max_dc as u64 {
                    self.pending.remove(&sseq);
                }
                let r = self.redelivered.entry(sseq).or_insert(0);
                *r = (*r).max(dc - 1);
            }
        } else {
            if dseq > self.delivered.consumer_seq {
                self.delivered.consumer_seq = dseq;
                self.ack_floor.consumer_seq = dseq;
            }
            if sseq > self.delivered.stream_seq {
                self.delivered.stream_seq = sseq;
                self.ack_floor.stream_seq = sseq;
            }
        }
    }

    fn ack_update(&mut self, dseq: u64, sseq: u64, p: AckPolicy) {
        if p == AckPolicy::None {
            return;
        }
        self.redelivered.remove(&sseq);
        if dseq <= self.ack_floor.consumer_seq {
            return;
        }
        if !self.pending.contains_key(&sseq) {
            return;
        }
        if p == AckPolicy::All {
            self.ack_floor = SeqPair {
                consumer_seq: dseq,
                stream_seq: sseq,
            };
            let gone: Vec<u64> = self.pending.range(..=sseq).map(|(s, _)| *s).collect();
            for s in gone {
                self.pending.remove(&s);
                self.redelivered.remove(&s);
            }
            return;
        }
        let mut dseq = dseq;
        if let Some(orig) = self.pending.remove(&sseq) {
            if dseq > orig && orig > 0 {
                dseq = orig;
            }
        }
        if self.pending.is_empty() {
            self.ack_floor = self.delivered;
        } else if dseq == self.ack_floor.consumer_seq + 1 {
            self.ack_floor = SeqPair {
                consumer_seq: dseq,
                stream_seq: sseq,
            };
            if self.delivered.consumer_seq > dseq {
                if let Some((&ss, &pd)) = self.pending.range(sseq + 1..).next() {
                    if ss <= self.delivered.stream_seq && pd > 0 {
                        self.ack_floor = SeqPair {
                            consumer_seq: pd - 1,
                            stream_seq: ss - 1,
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: ApplyRules = ApplyRules {
        skip_moves_store: true,
    };

    #[test]
    fn ops_round_trip_and_cuts_are_errors() {
        let ops = [
            ConsumerOp::Delivered {
                dseq: 3,
                sseq: 300,
                dc: 2,
                ts: 1_700_000_000_000_000_000,
            },
            ConsumerOp::Ack { dseq: 3, sseq: 300 },
            ConsumerOp::Skip { sseq: 42 },
            ConsumerOp::Reset { sseq: 7 },
            ConsumerOp::AddPendingRequest,
            ConsumerOp::RemovePendingRequest,
        ];
        for op in &ops {
            let b = encode_op(op);
            assert_eq!(&decode_op(&b).unwrap(), op);
            if b.len() > 1 {
                for cut in 0..b.len() {
                    assert!(decode_op(&b[..cut]).is_err(), "{op:?} cut {cut}");
                }
            }
        }
        assert!(decode_op(&[4, 0]).is_err());
        assert!(decode_op(&[]).is_err());
    }

    fn del(dseq: u64, sseq: u64) -> ConsumerOp {
        ConsumerOp::Delivered {
            dseq,
            sseq,
            dc: 1,
            ts: 0,
        }
    }

    #[test]
    fn explicit_acks_move_the_floor_as_the_store_does() {
        let mut r = Replay::default();
        for i in 1..=5 {
            r.apply(&del(i, i + 10), AckPolicy::Explicit, -1, NEW);
        }
        assert_eq!(r.delivered.stream_seq, 15);
        assert_eq!(r.pending.len(), 5);
        // ack 2 first: floor stays, then ack 1: floor to 12 (the next pending is 13)
        r.apply(
            &ConsumerOp::Ack { dseq: 2, sseq: 12 },
            AckPolicy::Explicit,
            -1,
            NEW,
        );
        assert_eq!(r.ack_floor.stream_seq, 0);
        r.apply(
            &ConsumerOp::Ack { dseq: 1, sseq: 11 },
            AckPolicy::Explicit,
            -1,
            NEW,
        );
        assert_eq!((r.ack_floor.consumer_seq, r.ack_floor.stream_seq), (2, 12));
        for (d, s) in [(3, 13), (4, 14), (5, 15)] {
            r.apply(
                &ConsumerOp::Ack { dseq: d, sseq: s },
                AckPolicy::Explicit,
                -1,
                NEW,
            );
        }
        assert_eq!(r.ack_floor, r.delivered);
        // a replayed old delivery below the floor changes nothing
        let before = r.clone();
        r.apply(&del(2, 12), AckPolicy::Explicit, -1, NEW);
        assert_eq!(r, before);
        // ack all
        let mut a = Replay::default();
        for i in 1..=4 {
            a.apply(&del(i, i), AckPolicy::All, -1, NEW);
        }
        a.apply(
            &ConsumerOp::Ack { dseq: 3, sseq: 3 },
            AckPolicy::All,
            -1,
            NEW,
        );
        assert_eq!((a.ack_floor.stream_seq, a.pending.len()), (3, 1));
        // ack none: delivered and floor together
        let mut n = Replay::default();
        n.apply(&del(1, 9), AckPolicy::None, -1, NEW);
        assert_eq!((n.delivered.stream_seq, n.ack_floor.stream_seq), (9, 9));
        // an older snapshot is refused, a newer one taken
        let mut st = crate::filestore::consumer_state::ConsumerState {
            version: 2,
            ack_floor: SeqPair::default(),
            delivered: SeqPair {
                consumer_seq: 1,
                stream_seq: 1,
            },
            pending: vec![],
            redelivered: vec![],
            base_ts_secs: 0,
        };
        assert!(!r.apply_snapshot(&st));
        st.delivered = SeqPair {
            consumer_seq: 9,
            stream_seq: 19,
        };
        st.ack_floor = st.delivered;
        assert!(r.apply_snapshot(&st));
        assert_eq!(r.delivered.stream_seq, 19);
    }

    /// A filtered consumer's skip, as 2.12.8, 2.14.6 and 2.15.1 applied it at a restart
    /// (tests/cluster_log_e2e.rs, consumer LS): delivered moves, the floor only under AckNone;
    /// 2.10.26 left o.dat as it was.
    #[test]
    fn skips_move_delivered_from_2_11_only() {
        let mut r = Replay::default();
        r.delivered.stream_seq = 5;
        let skip = ConsumerOp::Skip { sseq: 11 };
        let old = ApplyRules::of(Some(&Release::new(2, 10, 26)));
        assert!(!old.skip_moves_store);
        assert!(ApplyRules::of(Some(&Release::new(2, 11, 0))).skip_moves_store);
        assert!(ApplyRules::of(Some(&Release::parse("2.11.0-RC.1").unwrap())).skip_moves_store);
        let mut o = r.clone();
        o.apply(&skip, AckPolicy::Explicit, -1, old);
        assert_eq!(o, r);
        let mut e = r.clone();
        e.apply(&skip, AckPolicy::Explicit, -1, NEW);
        assert_eq!((e.delivered.stream_seq, e.ack_floor.stream_seq), (10, 0));
        assert_eq!(e.delivered.consumer_seq, 0);
        // a skip below delivered changes nothing
        let before = e.clone();
        e.apply(&ConsumerOp::Skip { sseq: 6 }, AckPolicy::Explicit, -1, NEW);
        assert_eq!(e, before);
        let mut n = r.clone();
        n.apply(&skip, AckPolicy::None, -1, NEW);
        assert_eq!((n.delivered.stream_seq, n.ack_floor.stream_seq), (10, 10));
    }

    /// Consumer LR of tests/cluster_log_e2e.rs as 2.14.6 and 2.15.1 replayed it: o.dat at
    /// delivered 3 / ack floor 2 (3 pending), then 4..10 delivered and acked, a reset to seq 4,
    /// 4 and 5 delivered again as consumer seqs 1 and 2.
    #[test]
    fn a_reset_empties_the_state_and_deliveries_start_again() {
        let mut r = Replay::default();
        for i in 1..=3 {
            r.apply(&del(i, i), AckPolicy::Explicit, -1, NEW);
        }
        for i in 1..=2 {
            r.apply(
                &ConsumerOp::Ack { dseq: i, sseq: i },
                AckPolicy::Explicit,
                -1,
                NEW,
            );
        }
        for i in 4..=10 {
            r.apply(&del(i, i), AckPolicy::Explicit, -1, NEW);
            r.apply(
                &ConsumerOp::Ack { dseq: i, sseq: i },
                AckPolicy::Explicit,
                -1,
                NEW,
            );
        }
        assert_eq!(r.pending.keys().copied().collect::<Vec<_>>(), [3]);
        r.apply(&ConsumerOp::Reset { sseq: 4 }, AckPolicy::Explicit, -1, NEW);
        assert_eq!(r.pending.len(), 0);
        assert_eq!((r.delivered.stream_seq, r.ack_floor.stream_seq), (3, 3));
        assert_eq!((r.delivered.consumer_seq, r.ack_floor.consumer_seq), (0, 0));
        r.apply(&del(1, 4), AckPolicy::Explicit, -1, NEW);
        r.apply(&del(2, 5), AckPolicy::Explicit, -1, NEW);
        assert_eq!(
            (
                r.delivered.stream_seq,
                r.delivered.consumer_seq,
                r.ack_floor.stream_seq,
                r.ack_floor.consumer_seq,
                r.pending.len()
            ),
            (5, 2, 3, 0, 2)
        );
        r.apply(
            &ConsumerOp::Ack { dseq: 1, sseq: 4 },
            AckPolicy::Explicit,
            -1,
            NEW,
        );
        assert_eq!((r.ack_floor.consumer_seq, r.ack_floor.stream_seq), (1, 4));
    }
}
