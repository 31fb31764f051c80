//! The server's rule for a stream's numbers, written once: from the live messages and the
//! highest sequence known to have existed, the state `STREAM.INFO` reports after load.
//!
//! - `last_seq` is the highest sequence the stream has used: the last live message, a
//!   tombstone or skip record after it, or the last sequence an index file remembers;
//! - `first_seq` is the lowest live sequence, or `last_seq + 1` when no message is live
//!   (0 for a stream that never held one);
//! - `num_deleted` counts the sequences between them that are not live: `last + 1 - first -
//!   messages` (which is 1 for a stream that never held a message, as the server reports).

/// Most deleted sequences listed in a report (the count is always exact).
pub const MAX_LISTED_DELETES: usize = 1000;

/// A stream's state as the server computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamTotals {
    /// Live messages.
    pub messages: u64,
    /// Their stored size (the file store's record size, as `STREAM.INFO` counts bytes).
    pub bytes: u64,
    /// First live sequence, or `last_seq + 1` when empty.
    pub first_seq: u64,
    /// Highest sequence used.
    pub last_seq: u64,
    /// Interior sequences that are not live.
    pub deleted: u64,
}

impl StreamTotals {
    /// The state of a stream with `messages` live messages of `bytes`, the lowest of them
    /// `first_live`, and `last_seq` the highest sequence the stream is known to have used
    /// (live or not).
    pub fn new(messages: u64, bytes: u64, first_live: Option<u64>, last_seq: u64) -> Self {
        let first_seq = first_live.unwrap_or(if last_seq == 0 { 0 } else { last_seq + 1 });
        let deleted = (last_seq + 1)
            .saturating_sub(first_seq)
            .saturating_sub(messages);
        StreamTotals {
            messages,
            bytes,
            first_seq,
            last_seq,
            deleted,
        }
    }
}

/// Lists the deleted (not live) sequences of a stream from its live sequences in ascending
/// order, up to [`MAX_LISTED_DELETES`].
#[derive(Debug, Default)]
pub struct DeletedList {
    next: Option<u64>,
    seqs: Vec<u64>,
}

impl DeletedList {
    /// A list that starts at the first live sequence it is given.
    pub fn new() -> Self {
        DeletedList::default()
    }

    /// `seq` is live; every sequence since the previous live one is deleted.
    pub fn live(&mut self, seq: u64) {
        if let Some(mut q) = self.next {
            while q < seq && self.seqs.len() < MAX_LISTED_DELETES {
                self.seqs.push(q);
                q += 1;
            }
        }
        self.next = Some(seq.saturating_add(1));
    }

    /// [`DeletedList::live`] for every sequence set in `bits` (ascending): a word whose 64
    /// sequences are all live and follow the previous live one adds nothing and is passed in
    /// one step.
    pub fn live_bits(&mut self, bits: &crate::state::scan::SeqBits) {
        for &(k, w) in bits.words() {
            if self.is_full() {
                return;
            }
            if w == !0 && self.next == Some(k * 64) {
                self.next = Some(k * 64 + 64);
                continue;
            }
            let mut w = w;
            while w != 0 {
                self.live(k * 64 + u64::from(w.trailing_zeros()));
                w &= w - 1;
            }
        }
    }

    /// True once the list holds [`MAX_LISTED_DELETES`] sequences: later calls add nothing.
    pub fn is_full(&self) -> bool {
        self.seqs.len() >= MAX_LISTED_DELETES
    }

    /// The list, with the sequences after the last live one up to `last_seq`; empty when no
    /// message is live (the server lists no deletes for an empty stream).
    pub fn finish(mut self, last_seq: u64) -> Vec<u64> {
        let Some(mut q) = self.next else {
            return Vec::new();
        };
        while q <= last_seq && self.seqs.len() < MAX_LISTED_DELETES {
            self.seqs.push(q);
            q += 1;
        }
        self.seqs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_purged_streams() {
        // never held a message: 2.15.1 reports first 0, last 0 and num_deleted 1 (the EMPTY
        // stream of fixtures/v2.15.1-plain/facts.json)
        let t = StreamTotals::new(0, 0, None, 0);
        assert_eq!((t.first_seq, t.last_seq, t.deleted), (0, 0, 1));
        // purged at 7: first is last + 1, nothing deleted
        let t = StreamTotals::new(0, 0, None, 7);
        assert_eq!((t.first_seq, t.last_seq, t.deleted), (8, 7, 0));
    }

    #[test]
    fn interior_and_trailing_deletes() {
        // live 1, 2, 4, 5, 7..=8 of 10 (3 and 6 deleted, 9 and 10 removed at the tail)
        let live = [1u64, 2, 4, 5, 7, 8];
        let t = StreamTotals::new(live.len() as u64, 60, Some(1), 10);
        assert_eq!((t.first_seq, t.last_seq, t.deleted), (1, 10, 4));
        let mut d = DeletedList::new();
        for s in live {
            d.live(s);
        }
        assert_eq!(d.finish(10), vec![3, 6, 9, 10]);
        assert!(DeletedList::new().finish(10).is_empty());
    }

    #[test]
    fn the_list_is_capped_and_the_count_is_not() {
        let t = StreamTotals::new(2, 0, Some(1), 5000);
        assert_eq!(t.deleted, 4998);
        let mut d = DeletedList::new();
        d.live(1);
        d.live(5000);
        assert_eq!(d.finish(5000).len(), MAX_LISTED_DELETES);
    }
}
