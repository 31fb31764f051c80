//! `jetdir diff`: two or more copies of a stream (store dirs, stream dirs, backups of any
//! form) compared message by message, as the server would serve each of them after its load.
//!
//! Every copy is walked by its own [`StreamWalker`](super::StreamWalker) on its own thread,
//! in sequence order; the walks send small digests (sequence, time and a hash of subject,
//! headers and payload) in batches through bounded channels and are merged in lockstep by
//! sequence, so memory stays a few batches per copy whatever the size of the streams. The
//! result: each copy's numbers, the first sequence whose content differs (and in which field),
//! the sequences some copy has and another does not (as ranges), the consumers' states, and
//! which copy holds the most.
use super::{Event, Filter, StreamRef};
use crate::base::hash;
use crate::base::problem::{Problem, Severity};
use crate::base::report::ConsumerReport;
use serde::Serialize;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::mpsc;

/// Ranges kept per list in the report (counts stay exact).
pub const MAX_RANGES: usize = 1000;
/// Findings kept per copy in the report (counts stay exact).
const MAX_FINDINGS: usize = 100;
const BATCH: usize = 4096;

/// What `jetdir diff` compares.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Only this stream (default: every stream any copy holds).
    pub stream: Option<String>,
    /// Only streams of this account (store dirs).
    pub account: Option<String>,
    /// The load modelled: when, by which release (`None`: each copy's writer).
    pub target: crate::check::Target,
    /// The keys of encrypted copies (empty: none given).
    pub keys: crate::filestore::keys::KeyRing,
}

/// One copy of one stream, as the server would serve it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CopyState {
    /// The copy as given on the command line.
    pub path: String,
    /// The stream's name in this copy (`null` when it has no such stream).
    pub name: Option<String>,
    /// `false` when this copy has no such stream.
    pub present: bool,
    /// Served messages.
    pub messages: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// First served sequence (0 when none).
    pub first_seq: u64,
    /// Last sequence: the stream's (after the load) when known, else the last served.
    pub last_seq: u64,
    /// Sequences between first and last that are not served.
    pub deleted: u64,
    /// Time of the first served message; JSON also `first_time`.
    #[serde(flatten, serialize_with = "first_time")]
    pub first_ts: Option<i64>,
    /// Time of the last served message; JSON also `last_time`.
    #[serde(flatten, serialize_with = "last_time")]
    pub last_ts: Option<i64>,
    /// False when this copy's consumers are not known (a V2 backup is read without them, or
    /// the copy has no such stream): left out of the consumer comparison.
    pub consumers_known: bool,
    /// Consumers as the server loads them (none for V2 archives' and missing streams).
    pub consumers: Vec<ConsumerReport>,
    /// Error findings of this copy (damage).
    pub errors: u64,
    /// Warning findings of this copy.
    pub warnings: u64,
    /// This copy's findings (at most 100).
    pub problems: Vec<Problem>,
    /// Sequences served by another copy and not by this one.
    pub missing: u64,
    /// Those sequences, as inclusive ranges (at most 1000 ranges).
    pub missing_ranges: Vec<(u64, u64)>,
}

fn first_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("first", *ns, s)
}

fn last_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("last", *ns, s)
}

/// The first sequence whose content differs between the copies serving it.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The sequence.
    pub seq: u64,
    /// The fields that differ: `subject`, `headers`, `payload`, `time`.
    pub fields: Vec<String>,
    /// Each serving copy's version of the message (index into `copies`).
    pub versions: Vec<Version>,
}

/// One copy's version of a differing message.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    /// Index of the copy.
    pub copy: usize,
    /// Subject (lossy UTF-8).
    pub subject: String,
    /// Time, ns since the epoch.
    pub ts: i64,
    /// Header bytes.
    pub header_bytes: u64,
    /// Payload bytes.
    pub payload_bytes: u64,
}

/// A consumer's state in every copy.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerDiff {
    /// Its name.
    pub name: String,
    /// True when every copy has it with the same delivered and ack floor.
    pub same: bool,
    /// Per copy: `null` when the copy has no such consumer.
    pub copies: Vec<Option<ConsumerSeqs>>,
}

/// The numbers compared.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConsumerSeqs {
    /// Last delivered stream sequence.
    pub delivered_stream_seq: Option<u64>,
    /// Ack floor stream sequence.
    pub ack_floor_stream_seq: Option<u64>,
    /// Delivered, not acknowledged.
    pub num_ack_pending: Option<u64>,
}

/// One stream compared across the copies.
#[derive(Debug, Clone, Serialize, Default)]
pub struct StreamDiff {
    /// Account (of the first copy holding it).
    pub account: String,
    /// Stream name.
    pub name: String,
    /// True when every copy serves the same messages and has the same consumer states.
    pub identical: bool,
    /// Each copy, in command-line order.
    pub copies: Vec<CopyState>,
    /// Sequences every copy holding them serves, compared.
    pub compared: u64,
    /// Sequences served by several copies with different content.
    pub differing: u64,
    /// The first of them.
    pub first_difference: Option<Difference>,
    /// Consumers by name.
    pub consumers: Vec<ConsumerDiff>,
    /// The copy holding the most (index into `copies`): every message another copy serves,
    /// else the fewest missing, then the highest last sequence and ack floors.
    pub most_complete: Option<usize>,
    /// Why, in a sentence.
    pub most_complete_why: String,
    /// Findings of the copies (at most 100 per copy).
    pub problems: Vec<Problem>,
}

/// The result of `jetdir diff`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DiffReport {
    /// True when every stream is identical in every copy and no copy is damaged.
    pub ok: bool,
    /// The copies, as given.
    pub paths: Vec<String>,
    /// Every stream compared.
    pub streams: Vec<StreamDiff>,
    /// Every finding of every copy (at most 100 per copy and stream).
    pub problems: Vec<Problem>,
}

impl DiffReport {
    /// 0 identical; 1 the copies differ or one is damaged.
    pub fn exit_code(&self) -> i32 {
        if self.ok {
            0
        } else {
            1
        }
    }
}

/// One message as compared.
#[derive(Debug, Clone, Copy)]
struct Digest {
    seq: u64,
    ts: i64,
    /// One hash over subject, headers and payload ([`content_sum`]): which of them differs is
    /// found for the first difference only, by reading it again.
    content: u64,
    size: u64,
}

enum Item {
    Batch(Vec<Digest>),
    Done(Box<WalkEnd>),
    Failed(String),
}

#[derive(Default)]
struct WalkEnd {
    report: Option<crate::base::report::StreamReport>,
    problems: Vec<Problem>,
    errors: u64,
    warnings: u64,
}

fn hkey() -> &'static highway::Key {
    static K: std::sync::OnceLock<highway::Key> = std::sync::OnceLock::new();
    K.get_or_init(|| hash::key_for("jetdir-diff"))
}

fn digest(m: &super::Msg) -> Digest {
    Digest {
        seq: m.seq,
        ts: m.ts,
        content: content_sum(m.subject, m.headers, m.payload),
        size: m.size,
    }
}

/// The digest of a message's content: XXH3-64 of each field in turn, each seeded with the
/// digest of the fields before it (so where one field ends and the next begins counts).
fn content_sum(subject: &[u8], headers: &[u8], payload: &[u8]) -> u64 {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};
    xxh3_64_with_seed(payload, xxh3_64_with_seed(headers, xxh3_64(subject)))
}

/// Compare the copies at `paths` (two or more). Errors mean "could not run" (a path that is
/// not a store or backup, an unreadable stream).
pub fn diff(paths: &[PathBuf], opts: &DiffOptions) -> anyhow::Result<DiffReport> {
    if paths.len() < 2 {
        anyhow::bail!("diff needs two or more copies");
    }
    let mut per_copy: Vec<Vec<StreamRef>> = Vec::new();
    for p in paths {
        let all = super::streams_with_keys(p, &opts.keys)?;
        let v: Vec<StreamRef> = all
            .into_iter()
            .filter(|s| opts.account.as_deref().is_none_or(|a| s.account == a))
            .filter(|s| opts.stream.as_deref().is_none_or(|n| s.name == n))
            .collect();
        per_copy.push(v);
    }
    // every stream name any copy holds, in order of first appearance
    let mut names: Vec<String> = Vec::new();
    for v in &per_copy {
        for s in v {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
    }
    if names.is_empty() {
        let what = match &opts.stream {
            Some(s) => format!("no stream {s:?} in any copy"),
            None => "no stream in any copy".to_string(),
        };
        anyhow::bail!("{what}");
    }
    let mut rep = DiffReport {
        ok: true,
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        ..Default::default()
    };
    for name in names {
        let refs: Vec<Option<StreamRef>> = per_copy
            .iter()
            .map(|v| v.iter().find(|s| s.name == name).cloned())
            .collect();
        let sd = diff_stream(&rep.paths, &name, &refs, opts)?;
        rep.ok &= sd.identical && sd.copies.iter().all(|c| c.errors == 0);
        rep.problems.extend(sd.problems.iter().cloned());
        rep.streams.push(sd);
    }
    Ok(rep)
}

/// Walk one copy on this thread, sending digests to `tx`.
fn walk_copy(
    sref: StreamRef,
    target: &crate::check::Target,
    keys: &crate::filestore::keys::KeyRing,
    tx: mpsc::SyncSender<Item>,
) {
    let mut w = match super::open_with_keys(&sref, target, keys) {
        Ok(w) => w,
        Err(e) => {
            let _ = tx.send(Item::Failed(format!("{e:#}")));
            return;
        }
    };
    // the copies walk at once: no decoding ahead of each (a V2 archive's window of 16 MiB
    // per copy, beside a record of up to 32 MiB, would pass the memory bound)
    w.decode_in_step();
    let mut end = WalkEnd {
        report: w.report.clone(),
        ..Default::default()
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut gone = false;
    // Full batches not yet sent. A walk holding the big-block lock (one copy's big block in
    // memory at a time) never waits on the channel: the merge may be waiting for another
    // copy, which waits for the lock. Its batches wait here until the lock is released.
    let mut queued: std::collections::VecDeque<Vec<Digest>> = Default::default();
    let r = w.walk(&Filter::default(), &mut |ev| {
        if !queued.is_empty() && send_queued(&tx, &mut queued).is_err() {
            gone = true;
            return ControlFlow::Break(());
        }
        match ev {
            Event::Msg(m) => {
                batch.push(digest(&m));
                if batch.len() == BATCH {
                    queued.push_back(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                    if send_queued(&tx, &mut queued).is_err() {
                        gone = true;
                        return ControlFlow::Break(());
                    }
                }
            }
            Event::Finding(p) => {
                match p.severity {
                    Severity::Error => end.errors += 1,
                    Severity::Warning => end.warnings += 1,
                }
                if end.problems.len() < MAX_FINDINGS {
                    end.problems.push(p.clone());
                }
            }
            Event::Rendered(..) => {}
        }
        ControlFlow::Continue(())
    });
    if gone {
        return;
    }
    if let Err(e) = r {
        let _ = tx.send(Item::Failed(format!("{e:#}")));
        return;
    }
    if !batch.is_empty() {
        queued.push_back(batch);
    }
    if send_queued(&tx, &mut queued).is_err() {
        return;
    }
    let _ = tx.send(Item::Done(Box::new(end)));
}

/// Send the queued batches: waiting for room, unless this thread holds the big-block lock
/// (then only what fits now). `Err` when the receiver is gone.
fn send_queued(
    tx: &mpsc::SyncSender<Item>,
    queued: &mut std::collections::VecDeque<Vec<Digest>>,
) -> Result<(), ()> {
    while let Some(b) = queued.pop_front() {
        if !crate::filestore::block::holds_big_block() {
            tx.send(Item::Batch(b)).map_err(|_| ())?;
            continue;
        }
        match tx.try_send(Item::Batch(b)) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(Item::Batch(b))) => {
                queued.push_front(b);
                return Ok(());
            }
            Err(_) => return Err(()),
        }
    }
    Ok(())
}

/// The receiving side of one copy: its current head and what is left of its batch.
struct Feed {
    rx: Option<mpsc::Receiver<Item>>,
    batch: std::vec::IntoIter<Digest>,
    head: Option<Digest>,
    end: Option<WalkEnd>,
}

impl Feed {
    fn advance(&mut self) -> anyhow::Result<()> {
        loop {
            if let Some(d) = self.batch.next() {
                self.head = Some(d);
                return Ok(());
            }
            self.head = None;
            let Some(rx) = &self.rx else { return Ok(()) };
            match rx.recv() {
                Ok(Item::Batch(b)) => self.batch = b.into_iter(),
                Ok(Item::Done(e)) => {
                    self.end = Some(*e);
                    self.rx = None;
                }
                Ok(Item::Failed(e)) => anyhow::bail!("{e}"),
                Err(_) => anyhow::bail!("a copy's reader stopped"),
            }
        }
    }
}

fn push_range(v: &mut Vec<(u64, u64)>, seq: u64) {
    if let Some(last) = v.last_mut() {
        if last.1 + 1 == seq {
            last.1 = seq;
            return;
        }
    }
    if v.len() < MAX_RANGES {
        v.push((seq, seq));
    }
}

fn diff_stream(
    paths: &[String],
    name: &str,
    refs: &[Option<StreamRef>],
    opts: &DiffOptions,
) -> anyhow::Result<StreamDiff> {
    let n = refs.len();
    let mut sd = StreamDiff {
        name: name.to_string(),
        account: refs
            .iter()
            .flatten()
            .next()
            .map(|s| s.account.clone())
            .unwrap_or_default(),
        copies: paths
            .iter()
            .zip(refs)
            .map(|(p, r)| CopyState {
                path: p.clone(),
                name: r.as_ref().map(|s| s.name.clone()),
                present: r.is_some(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let feeds: anyhow::Result<Vec<Feed>> = std::thread::scope(|scope| {
        let mut feeds = Vec::with_capacity(n);
        for r in refs {
            match r {
                Some(s) => {
                    let (tx, rx) = mpsc::sync_channel(4);
                    let s2 = s.clone();
                    scope.spawn(move || walk_copy(s2, &opts.target, &opts.keys, tx));
                    feeds.push(Feed {
                        rx: Some(rx),
                        batch: Vec::new().into_iter(),
                        head: None,
                        end: None,
                    });
                }
                None => feeds.push(Feed {
                    rx: None,
                    batch: Vec::new().into_iter(),
                    head: None,
                    end: None,
                }),
            }
        }
        for f in &mut feeds {
            f.advance()?;
        }
        merge(&mut sd, &mut feeds, refs, opts)?;
        Ok(feeds)
    });
    let feeds = feeds?;
    for (i, f) in feeds.into_iter().enumerate() {
        let c = &mut sd.copies[i];
        if let Some(e) = f.end {
            c.errors = e.errors;
            c.warnings = e.warnings;
            c.problems = e.problems.clone();
            sd.problems.extend(e.problems);
            if let Some(r) = &e.report {
                c.consumers_known = true;
                c.consumers = r.consumers.clone();
                if let Some(l) = r.last_seq {
                    c.last_seq = c.last_seq.max(l);
                }
            }
        }
        if c.messages > 0 || c.last_seq > 0 {
            let span = c.last_seq.saturating_sub(c.first_seq) + 1;
            c.deleted = if c.messages == 0 {
                0
            } else {
                span.saturating_sub(c.messages)
            };
        }
    }
    consumers(&mut sd);
    let msgs_same = sd.differing == 0 && sd.copies.iter().all(|c| c.missing == 0 && c.present);
    let last_same = sd.copies.windows(2).all(|w| w[0].last_seq == w[1].last_seq);
    sd.identical = msgs_same && last_same && sd.consumers.iter().all(|c| c.same);
    most_complete(&mut sd);
    Ok(sd)
}

/// Lockstep by sequence: the lowest head is compared among the copies holding it.
fn merge(
    sd: &mut StreamDiff,
    feeds: &mut [Feed],
    refs: &[Option<StreamRef>],
    opts: &DiffOptions,
) -> anyhow::Result<()> {
    let n = feeds.len();
    let mut holding: Vec<usize> = Vec::with_capacity(n);
    while let Some(seq) = feeds.iter().filter_map(|f| f.head.map(|d| d.seq)).min() {
        holding.clear();
        for (i, f) in feeds.iter().enumerate() {
            if f.head.is_some_and(|d| d.seq == seq) {
                holding.push(i);
            }
        }
        // a copy missing `seq`: present copies only (a copy without the stream misses all)
        if holding.len() < n {
            for (i, c) in sd.copies.iter_mut().enumerate() {
                if !holding.contains(&i) {
                    c.missing += 1;
                    push_range(&mut c.missing_ranges, seq);
                }
            }
        }
        if holding.len() > 1 {
            sd.compared += 1;
            let first = feeds[holding[0]].head.unwrap_or(empty_digest());
            let differs = holding[1..].iter().any(|&i| {
                let d = feeds[i].head.unwrap_or(empty_digest());
                d.content != first.content || d.ts != first.ts
            });
            if differs {
                sd.differing += 1;
                if sd.first_difference.is_none() {
                    let (fields, versions) = versions(seq, &holding, refs, &opts.target)?;
                    sd.first_difference = Some(Difference {
                        seq,
                        fields,
                        versions,
                    });
                }
            }
        }
        for &i in &holding {
            let d = feeds[i].head.unwrap_or(empty_digest());
            let c = &mut sd.copies[i];
            if c.messages == 0 {
                c.first_seq = d.seq;
                c.first_ts = Some(d.ts);
            }
            c.last_ts = Some(d.ts);
            c.messages += 1;
            c.bytes += d.size;
            c.last_seq = d.seq;
            feeds[i].advance()?;
        }
    }
    Ok(())
}

fn empty_digest() -> Digest {
    Digest {
        seq: 0,
        ts: 0,
        content: 0,
        size: 0,
    }
}

/// Each holding copy's version of message `seq` (read again: only for the first
/// difference), and the fields in which they differ.
fn versions(
    seq: u64,
    holding: &[usize],
    refs: &[Option<StreamRef>],
    target: &crate::check::Target,
) -> anyhow::Result<(Vec<String>, Vec<Version>)> {
    let mut out = Vec::new();
    let mut sums: Vec<[u64; 3]> = Vec::new();
    for &i in holding {
        let Some(s) = &refs[i] else { continue };
        let w = super::open(s, target)?;
        let filter = Filter {
            seq: (seq, seq),
            ..Default::default()
        };
        w.walk(&filter, &mut |ev| {
            if let Event::Msg(m) = ev {
                let k = hkey();
                sums.push([
                    hash::hh64(k, &[m.subject]),
                    hash::hh64(k, &[m.headers]),
                    hash::hh64(k, &[m.payload]),
                ]);
                out.push(Version {
                    copy: i,
                    subject: String::from_utf8_lossy(m.subject).into_owned(),
                    ts: m.ts,
                    header_bytes: m.headers.len() as u64,
                    payload_bytes: m.payload.len() as u64,
                });
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
    }
    let mut fields = Vec::new();
    if let (Some(f0), Some(v0)) = (sums.first(), out.first()) {
        for (k, name) in ["subject", "headers", "payload"].iter().enumerate() {
            if sums.iter().any(|s| s[k] != f0[k]) {
                fields.push(name.to_string());
            }
        }
        if out.iter().any(|v| v.ts != v0.ts) {
            fields.push("time".to_string());
        }
    }
    Ok((fields, out))
}

fn consumers(sd: &mut StreamDiff) {
    let mut names: Vec<String> = Vec::new();
    for c in &sd.copies {
        for k in &c.consumers {
            if !names.contains(&k.name) {
                names.push(k.name.clone());
            }
        }
    }
    names.sort();
    for name in names {
        let copies: Vec<Option<ConsumerSeqs>> = sd
            .copies
            .iter()
            .map(|c| {
                c.consumers
                    .iter()
                    .find(|k| k.name == name)
                    .map(|k| ConsumerSeqs {
                        delivered_stream_seq: k.delivered_stream_seq,
                        ack_floor_stream_seq: k.ack_floor_stream_seq,
                        num_ack_pending: k.pending,
                    })
            })
            .collect();
        // copies whose consumers are not known (V2 backups are read without them) are left
        // out of the comparison
        let known: Vec<&Option<ConsumerSeqs>> = copies
            .iter()
            .zip(&sd.copies)
            .filter(|(_, c)| c.consumers_known)
            .map(|(k, _)| k)
            .collect();
        let same = known.iter().all(|c| c.is_some() && **c == *known[0]);
        sd.consumers.push(ConsumerDiff { name, same, copies });
    }
}

fn most_complete(sd: &mut StreamDiff) {
    let ack = |c: &CopyState| -> u64 {
        c.consumers
            .iter()
            .filter_map(|k| k.ack_floor_stream_seq)
            .sum()
    };
    let best = sd
        .copies
        .iter()
        .enumerate()
        .filter(|(_, c)| c.present)
        .min_by_key(|(_, c)| {
            (
                c.missing,
                std::cmp::Reverse(c.last_seq),
                std::cmp::Reverse(ack(c)),
                c.errors,
            )
        })
        .map(|(i, _)| i);
    sd.most_complete = best;
    sd.most_complete_why = match best {
        None => "no copy holds the stream".to_string(),
        Some(i) => {
            let c = &sd.copies[i];
            let others_missing: u64 = sd
                .copies
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, o)| o.missing)
                .max()
                .unwrap_or(0);
            if sd.identical {
                "every copy serves the same messages and consumer states".to_string()
            } else if c.missing == 0 && sd.differing == 0 {
                format!(
                    "it serves every message any other copy serves (others miss up to {others_missing}), last sequence {}",
                    c.last_seq
                )
            } else if c.missing == 0 {
                format!(
                    "it serves every sequence any other copy serves, but {} sequence(s) differ in content between copies",
                    sd.differing
                )
            } else {
                format!(
                    "no copy serves everything: this one misses the fewest ({}), last sequence {}",
                    c.missing, c.last_seq
                )
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::content_sum;

    /// The same bytes split differently between subject, headers and payload are different
    /// content, and a change in any field changes the digest.
    #[test]
    fn content_sum_tells_fields_apart() {
        let (subject, headers, payload) = (
            &b"a.b"[..],
            &b"NATS/1.0\r\nK: v\r\n\r\n"[..],
            &b"payload"[..],
        );
        let base = content_sum(subject, headers, payload);
        for (s, h, p) in [
            (
                &b"a."[..],
                &b"bNATS/1.0\r\nK: v\r\n\r\n"[..],
                &b"payload"[..],
            ),
            (b"a.b", b"NATS/1.0\r\nK: v\r\n\r\np", b"ayload"),
            (b"a.b", b"", b"NATS/1.0\r\nK: v\r\n\r\npayload"),
            (b"a.c", headers, payload),
            (b"a.b", b"NATS/1.0\r\nK: w\r\n\r\n", payload),
            (b"a.b", headers, b"payloaD"),
        ] {
            assert_ne!(base, content_sum(s, h, p), "{s:?} {h:?} {p:?}");
        }
        assert_eq!(base, content_sum(subject, headers, payload));
    }
}
