//! The per-message state files a server keeps next to the blocks, rebuilt from the messages of
//! a V2 archive (which carries no files): `msgs/thw.db` (TTL expiries, streams with
//! `allow_msg_ttl`), `msgs/sched.db` (pending schedules, `allow_msg_schedules`) and
//! `sources.db` (the last sequence taken from each source). Without them a 2.11+/2.12+/2.15+
//! server logs "... state is outdated" and rescans the stream at start.
//!
//! Facts from nats-server's source: a TTL is `Nats-TTL` as `never`, a Go duration of at least
//! 1s, or whole seconds; it expires at the message time + the TTL in whole seconds. A
//! schedule fires when [`schedule::next_fire`] says, keyed by the message subject (a later
//! message of the subject replaces it), with the time of the extract as the clock where the
//! server uses its clock at the restore (a passed `@every` or cron fire); a cron schedule in a
//! named time zone leaves sched.db out (the server rebuilds it, with its warning). `Nats-Stream-Source` is
//! `<stream> <seq> <filter> <transform> <...> <ident>`; its index name is stream, filter and
//! transform joined by spaces. Every file is stamped `last_seq + 1`.
use crate::state::load;
use crate::state::schedule::{self, Fire};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Collects what the files need while messages are written.
#[derive(Debug, Default)]
pub(crate) struct AuxBuilder {
    ttl: Option<Vec<(i64, u64)>>,
    sched: Option<BTreeMap<Vec<u8>, (i64, u64)>>,
    sched_unsupported: bool,
    sources: Option<BTreeMap<String, (u64, String)>>,
    /// The clock for schedules whose next fire has passed (the time of the extract).
    now: i64,
}

/// The files to write (relative path, bytes) and notes on those left out.
#[derive(Debug, Default)]
pub(crate) struct AuxFiles {
    pub(crate) files: Vec<(&'static str, Vec<u8>)>,
    pub(crate) notes: Vec<String>,
}

impl AuxBuilder {
    /// From the stream config: which files the stream has.
    pub(crate) fn for_config(cfg: &Map<String, Value>) -> Self {
        let on = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
        let has_sources = cfg
            .get("sources")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        AuxBuilder {
            ttl: on("allow_msg_ttl").then(Vec::new),
            sched: on("allow_msg_schedules").then(BTreeMap::new),
            sched_unsupported: false,
            sources: has_sources.then(BTreeMap::new),
            now: crate::base::time::now_ns(),
        }
    }

    /// One message written (`hdr`: the NATS header block, maybe empty).
    pub(crate) fn message(&mut self, seq: u64, ts: i64, subject: &[u8], hdr: &[u8]) {
        if hdr.is_empty() {
            return;
        }
        if let Some(t) = self.ttl.as_mut() {
            if let Some(secs) = header(hdr, "Nats-TTL").and_then(ttl_secs) {
                t.push((ts.saturating_add(secs.saturating_mul(1_000_000_000)), seq));
            }
        }
        if let Some(s) = self.sched.as_mut() {
            if let Some(p) = header(hdr, "Nats-Schedule").filter(|p| !p.is_empty()) {
                let zone = header(hdr, "Nats-Schedule-Time-Zone");
                match schedule::next_fire(p, zone, ts, self.now) {
                    Fire::At(at) => {
                        s.insert(subject.to_vec(), (at, seq));
                    }
                    Fire::Invalid => {} // the server keeps no schedule for it either
                    Fire::NeedsZone => self.sched_unsupported = true,
                }
            }
        }
        if let Some(src) = self.sources.as_mut() {
            if let Some(v) = header(hdr, "Nats-Stream-Source") {
                let f: Vec<&str> = v.split(' ').collect();
                if f.len() >= 4 {
                    let iname = format!("{} {} {}", f[0], f[2], f[3]);
                    let sseq = f[1].parse::<u64>().unwrap_or(0);
                    let ident = f.get(5).copied().unwrap_or_default().to_string();
                    src.insert(iname, (sseq, ident));
                }
            }
        }
    }

    /// The files for a stream whose last sequence is `last_seq`.
    pub(crate) fn finish(self, last_seq: u64) -> AuxFiles {
        let high = last_seq.saturating_add(1);
        let mut out = AuxFiles::default();
        if let Some(t) = self.ttl {
            let mut b = head(t.len() as u64, high);
            for (exp, seq) in t {
                crate::base::bytes::put_varint(&mut b, exp);
                crate::base::bytes::put_uvarint(&mut b, seq);
            }
            out.files.push(("msgs/thw.db", b));
        }
        if let Some(s) = self.sched {
            if self.sched_unsupported {
                out.notes.push(
                    "msgs/sched.db not written: a cron schedule in a named time zone \
                     (Nats-Schedule-Time-Zone) needs the server's tz database; the server \
                     rebuilds the file at start"
                        .into(),
                );
            } else {
                let mut b = head(s.len() as u64, high);
                for (subj, (ts, seq)) in s {
                    let n = subj.len().min(u16::MAX as usize);
                    b.extend_from_slice(&(n as u16).to_le_bytes());
                    b.extend_from_slice(subj.get(..n).unwrap_or_default());
                    crate::base::bytes::put_varint(&mut b, ts);
                    crate::base::bytes::put_uvarint(&mut b, seq);
                }
                out.files.push(("msgs/sched.db", b));
            }
        }
        if let Some(src) = self.sources {
            let live: Vec<_> = src.into_iter().filter(|(_, (s, _))| *s > 0).collect();
            if !live.is_empty() {
                let mut b = head(live.len() as u64, high);
                for (name, (seq, ident)) in live {
                    crate::base::bytes::put_uvarint(&mut b, name.len() as u64);
                    b.extend_from_slice(name.as_bytes());
                    crate::base::bytes::put_uvarint(&mut b, seq);
                    crate::base::bytes::put_uvarint(&mut b, ident.len() as u64);
                    b.extend_from_slice(ident.as_bytes());
                }
                out.files.push(("sources.db", b));
            }
        }
        out
    }
}

/// `u8 1 | u64 LE count | u64 LE high_seq`.
fn head(count: u64, high: u64) -> Vec<u8> {
    let mut b = vec![1u8];
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&high.to_le_bytes());
    b
}

/// The value of the first header `name` (case-sensitive, as the server's lookup) in a NATS
/// header block, as text.
fn header<'a>(hdr: &'a [u8], name: &str) -> Option<&'a str> {
    load::header_value(hdr, name.as_bytes()).and_then(|v| std::str::from_utf8(v).ok())
}

/// Whole seconds of a `Nats-TTL` value; `None` for `never`, invalid or zero.
fn ttl_secs(v: &str) -> Option<i64> {
    Some(load::message_ttl(v.as_bytes())).filter(|&t| t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filestore::aux_state;

    #[test]
    fn ttl_values() {
        assert_eq!(ttl_secs("1h"), Some(3600));
        assert_eq!(ttl_secs("90"), Some(90));
        assert_eq!(ttl_secs("1.5s"), Some(1));
        assert_eq!(ttl_secs("500ms"), None);
        assert_eq!(ttl_secs("never"), None);
        assert_eq!(ttl_secs("-5"), None);
        assert_eq!(ttl_secs("x"), None);
    }

    #[test]
    fn files_parse_back() {
        let mut cfg = Map::new();
        cfg.insert("allow_msg_ttl".into(), true.into());
        cfg.insert("allow_msg_schedules".into(), true.into());
        cfg.insert("sources".into(), serde_json::json!([{"name": "A"}]));
        let mut b = AuxBuilder::for_config(&cfg);
        b.message(1, 1_000, b"t.a", b"NATS/1.0\r\nNats-TTL: 2s\r\n\r\n");
        b.message(
            2,
            2_000,
            b"s.a",
            b"NATS/1.0\r\nNats-Schedule: @at 2030-01-01T00:00:00Z\r\n\r\n",
        );
        b.message(
            3,
            3_000,
            b"x",
            b"NATS/1.0\r\nNats-Stream-Source: A 7 > > x abc\r\n\r\n",
        );
        let out = b.finish(5);
        let get = |n: &str| out.files.iter().find(|f| f.0 == n).unwrap().1.clone();
        let t = aux_state::parse_thw(&get("msgs/thw.db")).unwrap();
        assert_eq!((t.high_seq, t.entries.len()), (6, 1));
        assert_eq!((t.entries[0].seq, t.entries[0].expires), (1, 2_000_001_000));
        let s = aux_state::parse_sched(&get("msgs/sched.db")).unwrap();
        assert_eq!(
            (s.entries[0].seq, s.entries[0].subject.as_slice()),
            (2, &b"s.a"[..])
        );
        let src = aux_state::parse_sources(&get("sources.db")).unwrap();
        assert_eq!(src.high_seq, 6);
        assert_eq!(src.entries.len(), 1);
    }
}
