//! V2 payload: a NATSARC1 archive (state.json, consumers/<name>, every live message, end
//! sentinel) in S2 framing, as 2.15+ servers snapshot and restore it.
use super::{ConsumerSrc, StateNums, StreamSrc};
use crate::backup::natsarc::NatsArcWriter;
use crate::base::progress::Progress;
use crate::filestore::consumer_state;
use crate::s2::encode::ParFrameWriter;
use crate::state::messages;
use serde_json::{Map, Value};
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
    let written = messages::walk_live(&src.sd.dir, progress, |m| {
        a.write_entry(m.subject, m.ts, m.seq, m.headers, m.payload)
    })?;
    if written.messages != st.messages {
        anyhow::bail!(
            "{}: wrote {} messages but state.json says {} (the store changed while packing?)",
            src.sd.dir.display(),
            written.messages,
            st.messages
        );
    }
    let frame = a.finish()?;
    Ok((frame.finish()?, st))
}

fn damaged_state(src: &StreamSrc) -> anyhow::Result<StateNums> {
    let ls = messages::live_stats(&src.sd.dir)?;
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
