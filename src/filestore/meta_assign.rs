//! The meta group's stream and consumer assignments: the data of a `_meta_` raft snapshot
//! (S2 block-compressed JSON array of `writeableStreamAssignment`, `encodeMetaSnapshot`,
//! jetstream_cluster.go) and the meta operations carried by the normal entries of the
//! `_meta_` WAL (one op byte then JSON: assign/update/remove stream, assign/remove consumer,
//! or an S2 stream-compressed consumer assignment).
use crate::base::bytes::ParseError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A raft group as the meta layer names it (`raftGroup`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct GroupRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub peers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
struct ClientRef {
    #[serde(default)]
    acc: String,
    #[serde(default)]
    svc: String,
}

impl ClientRef {
    /// `serviceAccount()`: the service account if set, else the account.
    fn account(c: &Option<ClientRef>) -> String {
        match c {
            Some(c) if !c.svc.is_empty() => c.svc.clone(),
            Some(c) => c.acc.clone(),
            None => String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct RawConsumer {
    #[serde(default)]
    client: Option<ClientRef>,
    #[serde(default)]
    created: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    group: Option<GroupRef>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawStream {
    #[serde(default)]
    client: Option<ClientRef>,
    #[serde(default)]
    created: String,
    stream: NameOnly,
    #[serde(default)]
    group: Option<GroupRef>,
    #[serde(default, rename = "Consumers")]
    consumers: Option<Vec<RawConsumer>>,
}

/// One consumer assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerAssignment {
    pub account: String,
    pub stream: String,
    pub name: String,
    pub created: String,
    pub group: Option<GroupRef>,
}

/// One stream assignment with its consumers (by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAssignment {
    pub account: String,
    pub name: String,
    pub created: String,
    pub group: Option<GroupRef>,
    pub consumers: BTreeMap<String, ConsumerAssignment>,
}

/// What the meta layer knows: account → stream name → assignment (`cc.streams`).
pub type Assignments = BTreeMap<String, BTreeMap<String, StreamAssignment>>;

fn consumer_of(c: RawConsumer, stream_default: &str) -> ConsumerAssignment {
    ConsumerAssignment {
        account: ClientRef::account(&c.client),
        stream: if c.stream.is_empty() {
            stream_default.to_string()
        } else {
            c.stream
        },
        name: c.name,
        created: c.created,
        group: c.group,
    }
}

fn stream_of(s: RawStream) -> StreamAssignment {
    let name = s.stream.name;
    let consumers = s
        .consumers
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let c = consumer_of(c, &name);
            (c.name.clone(), c)
        })
        .collect();
    StreamAssignment {
        account: ClientRef::account(&s.client),
        name,
        created: s.created,
        group: s.group,
        consumers,
    }
}

/// Largest decoded meta snapshot accepted (the JSON of every assignment of the cluster).
pub const MAX_SNAPSHOT_JSON: usize = 256 << 20;

/// Decode the data of a `_meta_` snapshot into the assignments. Empty data = no assignments
/// (the server writes an empty snapshot when nothing is assigned).
pub fn decode_snapshot(data: &[u8]) -> Result<Assignments, ParseError> {
    let mut out = Assignments::new();
    if data.is_empty() {
        return Ok(out);
    }
    let mut json = Vec::new();
    crate::s2::decode_block(data, &mut json)
        .map_err(|e| ParseError::invalid(0, format!("meta snapshot: S2 block: {e}")))?;
    if json.len() > MAX_SNAPSHOT_JSON {
        return Err(ParseError::invalid(0, "meta snapshot: JSON over 256 MiB"));
    }
    let list: Vec<RawStream> = serde_json::from_slice(&json)
        .map_err(|e| ParseError::invalid(0, format!("meta snapshot: JSON: {e}")))?;
    for s in list {
        let sa = stream_of(s);
        out.entry(sa.account.clone())
            .or_default()
            .insert(sa.name.clone(), sa);
    }
    Ok(out)
}

/// A meta operation (the data of a normal entry of the `_meta_` WAL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaOp {
    AssignStream(StreamAssignment),
    UpdateStream(StreamAssignment),
    RemoveStream(StreamAssignment),
    AssignConsumer(ConsumerAssignment),
    RemoveConsumer(ConsumerAssignment),
    /// An op byte that is not a meta op (this reader leaves it aside).
    Other(u8),
}

/// `entryOp` values (jetstream_cluster.go) of the meta layer.
const ASSIGN_STREAM: u8 = 0;
const ASSIGN_CONSUMER: u8 = 1;
const REMOVE_STREAM: u8 = 2;
const REMOVE_CONSUMER: u8 = 3;
const ASSIGN_COMPRESSED_CONSUMER: u8 = 9;
const UPDATE_STREAM: u8 = 11;

/// Decode one meta operation.
pub fn decode_op(data: &[u8]) -> Result<MetaOp, ParseError> {
    let Some((&op, body)) = data.split_first() else {
        return Err(ParseError::invalid(0, "meta entry: empty"));
    };
    let js = |e: serde_json::Error| ParseError::invalid(1, format!("meta entry op {op}: {e}"));
    let stream = || -> Result<StreamAssignment, ParseError> {
        Ok(stream_of(
            serde_json::from_slice::<RawStream>(body).map_err(js)?,
        ))
    };
    let consumer = |b: &[u8]| -> Result<ConsumerAssignment, ParseError> {
        Ok(consumer_of(
            serde_json::from_slice::<RawConsumer>(b).map_err(js)?,
            "",
        ))
    };
    Ok(match op {
        ASSIGN_STREAM => MetaOp::AssignStream(stream()?),
        UPDATE_STREAM => MetaOp::UpdateStream(stream()?),
        REMOVE_STREAM => MetaOp::RemoveStream(stream()?),
        ASSIGN_CONSUMER => MetaOp::AssignConsumer(consumer(body)?),
        REMOVE_CONSUMER => MetaOp::RemoveConsumer(consumer(body)?),
        ASSIGN_COMPRESSED_CONSUMER => {
            let plain = crate::s2::decode_stream_limited(body, MAX_SNAPSHOT_JSON as u64)
                .map_err(|e| ParseError::invalid(1, format!("meta entry op {op}: S2: {e}")))?;
            MetaOp::AssignConsumer(consumer(&plain)?)
        }
        o => MetaOp::Other(o),
    })
}

/// Apply an op to the assignments as the meta layer does (`applyMetaEntries`).
pub fn apply(a: &mut Assignments, op: MetaOp) {
    match op {
        MetaOp::AssignStream(sa) => {
            let acc = a.entry(sa.account.clone()).or_default();
            // a re-assignment keeps the consumers the meta layer already has
            let consumers = acc
                .get(&sa.name)
                .map(|o| o.consumers.clone())
                .unwrap_or_default();
            acc.insert(sa.name.clone(), StreamAssignment { consumers, ..sa });
        }
        MetaOp::UpdateStream(sa) => {
            if let Some(o) = a.get_mut(&sa.account).and_then(|m| m.get_mut(&sa.name)) {
                o.group = sa.group;
            }
        }
        MetaOp::RemoveStream(sa) => {
            if let Some(m) = a.get_mut(&sa.account) {
                m.remove(&sa.name);
            }
        }
        MetaOp::AssignConsumer(ca) => {
            if let Some(s) = a.get_mut(&ca.account).and_then(|m| m.get_mut(&ca.stream)) {
                s.consumers.insert(ca.name.clone(), ca);
            }
        }
        MetaOp::RemoveConsumer(ca) => {
            if let Some(s) = a.get_mut(&ca.account).and_then(|m| m.get_mut(&ca.stream)) {
                s.consumers.remove(&ca.name);
            }
        }
        MetaOp::Other(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filestore::block::{block_key, RecordKind, Records};
    use crate::filestore::raft::{parse_append_entry, parse_snapshot, EntryType};
    use crate::testdata;

    const CL: &str = "v2.15.1-cluster-n1";
    const META: &str = "store/jetstream/$SYS/_js_/_meta_";

    #[test]
    fn the_sample_meta_snapshot_assigns_cl_and_d_to_their_groups() {
        let d = testdata::sample(CL);
        let raw = testdata::read(&d, CL, &format!("{META}/snapshots/snap.3.9"));
        let snap = parse_snapshot(&raw, "_meta_").unwrap();
        let a = decode_snapshot(&snap.data).unwrap();
        let cl = &a["$G"]["CL"];
        let g = cl.group.as_ref().unwrap();
        assert_eq!(g.name, "S-R3F-W7suG6Iu");
        assert_eq!(g.peers.len(), 3);
        let dc = &cl.consumers["D"];
        assert_eq!(dc.stream, "CL");
        assert_eq!(dc.group.as_ref().unwrap().name, "C-R3F-nuxqBIEP");
        assert_eq!(decode_snapshot(&[]).unwrap().len(), 0);
        for cut in 0..snap.data.len() {
            assert!(decode_snapshot(&snap.data[..cut]).is_err() || cut == 0);
        }
    }

    #[test]
    fn the_sample_meta_wal_decodes_into_ops() {
        let d = testdata::sample(CL);
        let raw = testdata::read(&d, CL, &format!("{META}/msgs/3.blk"));
        let key = block_key("_meta_", 3);
        let mut a = Assignments::new();
        let mut ops = 0;
        for r in Records::new(&raw) {
            let r = r.unwrap();
            assert!(r.checksum_ok(&key));
            if r.kind() != RecordKind::Message {
                continue;
            }
            for e in parse_append_entry(r.payload).unwrap().entries {
                if e.kind == EntryType::Normal {
                    apply(&mut a, decode_op(e.data).unwrap());
                    ops += 1;
                }
            }
        }
        assert!(ops > 0);
        // the WAL after compaction still holds the CL and D assignments
        assert!(a.get("$G").is_some_and(|m| m.contains_key("CL")), "{a:?}");
        assert!(decode_op(&[]).is_err());
        assert!(decode_op(&[0, b'{']).is_err());
        assert_eq!(decode_op(&[4, 1, 2]).unwrap(), MetaOp::Other(4));
    }
}

#[cfg(test)]
mod hostile {
    use crate::filestore::block::{RecordKind, Records};
    use crate::testdata::{self, Rng};

    /// The fuzz entry for raft inputs (append entries, meta snapshot data, meta ops) on the
    /// sample's real bytes with cuts and bit flips: no panic, no unbounded allocation.
    #[test]
    fn real_raft_inputs_cut_and_flipped_never_panic() {
        const CL: &str = "v2.15.1-cluster-n1";
        let d = testdata::sample(CL);
        let wal = testdata::read(&d, CL, "store/jetstream/$SYS/_js_/_meta_/msgs/3.blk");
        let snap = testdata::read(
            &d,
            CL,
            "store/jetstream/$SYS/_js_/_meta_/snapshots/snap.3.9",
        );
        let mut inputs: Vec<Vec<u8>> = Records::new(&wal)
            .filter_map(|r| r.ok())
            .filter(|r| r.kind() == RecordKind::Message)
            .map(|r| r.payload.to_vec())
            .collect();
        let s = crate::filestore::raft::parse_snapshot(&snap, "_meta_").unwrap();
        inputs.push(s.data.clone());
        let mut rng = Rng(0x5eed);
        for inp in &inputs {
            for sel in [5u8, 6, 7] {
                for _ in 0..200 {
                    let mut b = inp.clone();
                    if rng.below(2) == 0 {
                        let cut = rng.below(b.len() + 1);
                        b.truncate(cut);
                    } else if !b.is_empty() {
                        let at = rng.below(b.len());
                        b[at] ^= 1 << rng.below(8);
                    }
                    // ops start after the entry header: try both the whole payload and the
                    // first entry's data
                    let mut x = vec![sel];
                    x.extend_from_slice(&b);
                    crate::fuzzing::raft(&x);
                    if b.len() > 47 {
                        let mut y = vec![sel];
                        y.extend_from_slice(&b[47..]);
                        crate::fuzzing::raft(&y);
                    }
                }
            }
        }
    }
}
