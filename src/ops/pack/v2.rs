//! V2 payload: a NATSARC1 archive (state.json, consumers/<name>, every live message, end
//! sentinel) in S2 framing, as 2.15+ servers snapshot and restore it.
use super::{blockio, compat, ConsumerSrc, StateNums, StreamSrc};
use crate::backup::natsarc::NatsArcWriter;
use crate::base::progress::NoProgress;
use crate::base::progress::Progress;
use crate::filestore::consumer_state;
use crate::s2::encode::ParFrameWriter;
use crate::state::messages::{self, LiveStats};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::io::Write;

pub(super) fn write<W: Write + Send + 'static>(
    w: W,
    src: &StreamSrc,
    progress: &dyn Progress,
) -> anyhow::Result<(W, StateNums)> {
    // state.json comes first, so its numbers must be known before the messages are read.
    // For a clean stream the verifier's numbers are exactly what the walk hands out; for a
    // damaged one (--allow-damaged) count what will actually be written.
    let st = if src.damaged {
        damaged_state(src)?
    } else {
        src.state.clone()
    };
    let mut a = NatsArcWriter::new(ParFrameWriter::new(w))?;
    let sj = serde_json::to_vec(&st.to_json(src.consumers.len()))?;
    a.write_entry(b"state.json", src.snap_ts, 0, &[], &sj)?;
    for c in &src.consumers {
        let body = consumer_entry(c, st.last_seq)?;
        a.write_entry(
            format!("consumers/{}", c.name).as_bytes(),
            src.snap_ts,
            0,
            &[],
            &body,
        )?;
    }
    let written = write_live(Some(&mut a), src, progress)?.messages;
    if written != st.messages {
        anyhow::bail!(
            "{}: wrote {} messages but state.json says {} (the store changed while packing?)",
            src.sd.dir.display(),
            written,
            st.messages
        );
    }
    let frame = a.finish()?;
    Ok((frame.finish()?, st))
}

/// Every live message into `a`, in sequence order, as [`messages::walk_live`] hands them
/// out (the records it takes, after damage too), but in bounded memory: live sequences come
/// from the plan's first pass (one big block at a time), and a block above 9 MiB (one huge
/// record) is framed from its file and its records streamed into the archive. Without `a`,
/// only counts. Returns the totals over the messages.
fn write_live<W: Write>(
    mut a: Option<&mut NatsArcWriter<W>>,
    src: &StreamSrc,
    progress: &dyn Progress,
) -> anyhow::Result<LiveStats> {
    use crate::filestore::block::RecordKind;
    let plan = compat::plan(src)?;
    let dir = &src.sd.dir;
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    let mut last_out: Option<u64> = None;
    let mut stats = LiveStats::default();
    let mut subjects: HashSet<Vec<u8>> = HashSet::new();
    let mut count = |seq: u64, ts: i64, len: u32, subject: &[u8]| {
        stats.messages += 1;
        stats.bytes += u64::from(len);
        if stats.first_seq.is_none() {
            stats.first_seq = Some(seq);
            stats.first_ts = Some(ts);
        }
        stats.last_seq = Some(seq);
        stats.last_ts = Some(ts);
        if !subjects.contains(subject) {
            subjects.insert(subject.to_vec());
        }
    };
    for bp in plan.blocks.iter().filter(|b| !b.unreadable) {
        let rel = format!("msgs/{}.blk", bp.index);
        let path = dir.join(&rel);
        let mut blk = blockio::open(&path, &mut buf)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        if let Some(e) = blk.undecodable() {
            anyhow::bail!(
                "{}: compressed block cannot be decoded: {e}",
                path.display()
            );
        }
        let wanted = |kind: RecordKind, seq: u64, last: Option<u64>| {
            kind == RecordKind::Message && bp.live.get(seq) && last.is_none_or(|l| seq > l)
        };
        let io = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
        let key = crate::filestore::block::block_key(&src.cfg_name, bp.index);
        let mut whole: Option<Vec<u8>> = None;
        if blk.in_memory().is_none() {
            // a big plain block: stream its records; damaged framing (only with
            // --allow-damaged) is walked in memory, as every other block is
            let heads: Result<Vec<_>, _> =
                blk.records().map(|h| h.map(|h| h.into_owned())).collect();
            match heads {
                Ok(heads) => {
                    for h in heads {
                        if !wanted(h.kind(), h.seq, last_out) {
                            continue;
                        }
                        if let Some(a) = a.as_deref_mut() {
                            a.write_entry_head(&h.subject, h.ts, h.seq, h.hdr_len, h.body_len)
                                .map_err(io)?;
                            blk.copy_range(h.body, h.body_len, a.get_mut(), &mut scratch)
                                .map_err(io)?;
                        }
                        last_out = Some(h.seq);
                        count(h.seq, h.ts, h.len, &h.subject);
                    }
                    progress.advance(
                        blk.size,
                        &format!("{} > {} {rel}", src.sd.account, src.sd.name),
                    );
                    drop(blk);
                    blockio::release(&mut buf);
                    continue;
                }
                Err(_) => {
                    let mut w = Vec::new();
                    crate::filestore::source::read_capped_into(
                        &path,
                        crate::filestore::block::MAX_BLOCK_FILE,
                        &mut w,
                    )
                    .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
                    whole = Some(w);
                }
            }
        }
        let plain: &[u8] = match &whole {
            Some(w) => w,
            None => blk.in_memory().unwrap_or(&[]),
        };
        let mut cb_err: Option<std::io::Error> = None;
        messages::walk_records(plain, &key, |r| {
            if !wanted(r.kind(), r.seq, last_out) {
                return true;
            }
            if let Some(a) = a.as_deref_mut() {
                if let Err(e) =
                    a.write_entry(r.subject, r.ts, r.seq, r.headers.unwrap_or(&[]), r.payload)
                {
                    cb_err = Some(e);
                    return false;
                }
            }
            last_out = Some(r.seq);
            count(r.seq, r.ts, r.len, r.subject);
            true
        });
        if let Some(e) = cb_err {
            return Err(io(e));
        }
        progress.advance(
            blk.size,
            &format!("{} > {} {rel}", src.sd.account, src.sd.name),
        );
        drop(whole);
        blockio::release(&mut buf);
    }
    stats.subjects = subjects.len() as u64;
    Ok(stats)
}

fn damaged_state(src: &StreamSrc) -> anyhow::Result<StateNums> {
    let ls = write_live(None::<&mut NatsArcWriter<std::io::Sink>>, src, &NoProgress)?;
    let last = src.state.last_seq.max(ls.last_seq.unwrap_or(0));
    let first = match ls.first_seq {
        Some(f) => f,
        None if last == 0 => 0,
        None => last + 1,
    };
    Ok(StateNums {
        messages: ls.messages,
        bytes: ls.bytes,
        first_seq: first,
        first_ts: ls.first_ts,
        last_seq: last,
        last_ts: ls.last_ts,
        num_subjects: ls.subjects,
        num_deleted: (last + 1).saturating_sub(first).saturating_sub(ls.messages),
    })
}

/// Go encodes map keys sorted as strings.
fn go_map<V: Into<Value>>(mut kv: Vec<(String, V)>) -> Map<String, Value> {
    kv.sort_by(|a, b| a.0.cmp(&b.0));
    kv.into_iter().map(|(k, v)| (k, v.into())).collect()
}

fn pair(c: u64, s: u64) -> Value {
    let mut m = Map::new();
    m.insert("consumer_seq".into(), c.into());
    m.insert("stream_seq".into(), s.into());
    Value::Object(m)
}

/// `{"config": <ConsumerConfig>, "state": <ConsumerState>}` as the server writes it: config =
/// meta.inf without `Created`/`Name`; stream sequences clamped to the stream's last seq.
fn consumer_entry(c: &ConsumerSrc, last: u64) -> anyhow::Result<Vec<u8>> {
    let mut cfg = c.meta.json.clone();
    cfg.shift_remove("Created");
    cfg.shift_remove("Name");
    let st = c
        .o_dat
        .as_deref()
        .and_then(|b| consumer_state::parse(b).ok().flatten());
    let mut state = Map::new();
    let (d, af) = st
        .as_ref()
        .map(|s| (s.delivered, s.ack_floor))
        .unwrap_or_default();
    state.insert(
        "delivered".into(),
        pair(d.consumer_seq, d.stream_seq.min(last)),
    );
    state.insert(
        "ack_floor".into(),
        pair(af.consumer_seq, af.stream_seq.min(last)),
    );
    if let Some(s) = &st {
        let pending: Vec<(String, Value)> = s
            .pending
            .iter()
            .filter(|p| p.stream_seq <= last)
            .map(|p| {
                let mut m = Map::new();
                m.insert("Sequence".into(), p.consumer_seq.into());
                m.insert(
                    "Timestamp".into(),
                    p.ts_secs.saturating_mul(1_000_000_000).into(),
                );
                (p.stream_seq.to_string(), Value::Object(m))
            })
            .collect();
        if !pending.is_empty() {
            state.insert("pending".into(), Value::Object(go_map(pending)));
        }
        let red: Vec<(String, u64)> = s
            .redelivered
            .iter()
            .filter(|(q, _)| *q <= last)
            .map(|(q, n)| (q.to_string(), *n))
            .collect();
        if !red.is_empty() {
            state.insert("redelivered".into(), Value::Object(go_map(red)));
        }
    }
    let mut e = Map::new();
    e.insert("config".into(), Value::Object(cfg));
    e.insert("state".into(), Value::Object(state));
    Ok(serde_json::to_vec(&Value::Object(e))?)
}
