//! The raft files of a clustered node (`_js_` meta group and stream groups): `peers.idx`,
//! `tav.idx`, `commit.idx`, `snapshots/snap.<term>.<index>` and the append entries that are
//! the payloads of the group's WAL records (`msgs/<N>.blk`, a file store keyed by the group
//! name, one record per raft index). The parsers are pure, bounds-checked and tested against
//! a real 2.15.1 cluster node; `check::cluster` uses them.
use crate::base::bytes::{Cursor, ParseError};
use crate::base::hash;

/// Length of a raft peer / server id.
pub const PEER_ID_LEN: usize = 8;
/// Shortest raft snapshot file: term, index, peer-state length, hash.
pub const MIN_SNAPSHOT_LEN: usize = 28;

/// Raft peer state (`peers.idx`, and embedded in snapshots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    pub cluster_size: u32,
    /// 8-byte peer ids, in file order.
    pub peers: Vec<[u8; PEER_ID_LEN]>,
    /// Domain-extension state; None when the 2 bytes are absent (the server accepts that).
    pub domain_ext: Option<u16>,
    /// Bytes after the domain-extension field (ignored by the server).
    pub trailing: usize,
}

/// Parse `peers.idx`: `u32 cluster size, u32 count, count × 8-byte id, [u16 domain ext]`.
pub fn parse_peers(buf: &[u8]) -> Result<PeerState, ParseError> {
    let mut c = Cursor::new(buf);
    let cluster_size = c.u32le()?;
    let n = c.u32le()?;
    if u64::from(n) * PEER_ID_LEN as u64 > c.remaining() as u64 {
        return Err(ParseError::invalid(
            4,
            format!(
                "peers: {n} peers need {} bytes, only {} left",
                u64::from(n) * 8,
                c.remaining()
            ),
        ));
    }
    let mut peers = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut id = [0u8; PEER_ID_LEN];
        id.copy_from_slice(c.take(PEER_ID_LEN)?);
        peers.push(id);
    }
    let domain_ext = if c.remaining() >= 2 {
        Some(c.u16le()?)
    } else {
        None
    };
    Ok(PeerState {
        cluster_size,
        peers,
        domain_ext,
        trailing: c.remaining(),
    })
}

/// Raft `tav.idx`: current term and the id voted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermVote {
    pub term: u64,
    /// The vote (the server takes every byte after the term; normally 8); None when fewer than
    /// 8 bytes follow the term (the server reads that as "no vote").
    pub vote: Option<Vec<u8>>,
}

/// Parse `tav.idx`. Shorter than 8 bytes is an error here (the server would read term 0).
pub fn parse_tav(buf: &[u8]) -> Result<TermVote, ParseError> {
    let mut c = Cursor::new(buf);
    let term = c.u64le()?;
    let vote = if c.remaining() >= PEER_ID_LEN {
        Some(c.rest().to_vec())
    } else {
        None
    };
    Ok(TermVote { term, vote })
}

/// Raft `commit.idx` (seen in 2.15.1 meta groups): u64 commit index + HH64 of those 8 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitIdx {
    pub commit: u64,
    pub hash: [u8; 8],
    /// Stored hash equals HH64(SHA-256(group name), first 8 bytes).
    pub hash_ok: bool,
}

/// Parse `commit.idx` (exactly 16 bytes) and check its hash with key SHA-256(`group`).
pub fn parse_commit_idx(buf: &[u8], group: &str) -> Result<CommitIdx, ParseError> {
    if buf.len() != 16 {
        return Err(ParseError::invalid(
            0,
            format!("commit.idx: {} bytes, expected 16", buf.len()),
        ));
    }
    let mut c = Cursor::new(buf);
    let commit = c.u64le()?;
    let mut hash = [0u8; 8];
    hash.copy_from_slice(c.take(8)?);
    let hash_ok = hash::hh64(&hash::key_for(group), &[&buf[..8]]).to_le_bytes() == hash;
    Ok(CommitIdx {
        commit,
        hash,
        hash_ok,
    })
}

/// Raft snapshot file `snapshots/snap.<term>.<index>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftSnapshot {
    pub term: u64,
    pub index: u64,
    /// Raw peer-state bytes (see [`RaftSnapshot::peers`]).
    pub peer_state: Vec<u8>,
    /// Offset of the snapshot data in the file.
    pub data_offset: usize,
    /// Upper-layer snapshot data (stream state, consumer state, meta JSON (S2) …), uninterpreted.
    pub data: Vec<u8>,
    pub hash: [u8; 8],
    /// Stored hash equals HH64(SHA-256(group name), everything before it).
    pub hash_ok: bool,
}

impl RaftSnapshot {
    /// Decode the embedded peer state.
    pub fn peers(&self) -> Result<PeerState, ParseError> {
        parse_peers(&self.peer_state).map_err(|e| e.shifted(20))
    }
}

/// Parse a raft snapshot: `u64 term, u64 index, u32 peer-state len, peer state, data, HH64`.
/// `group` is the raft group name (its directory name, e.g. `_meta_`, `S-R3F-W7suG6Iu`).
pub fn parse_snapshot(buf: &[u8], group: &str) -> Result<RaftSnapshot, ParseError> {
    if buf.len() < MIN_SNAPSHOT_LEN {
        return Err(ParseError::invalid(
            0,
            format!("snapshot: {} bytes, minimum {MIN_SNAPSHOT_LEN}", buf.len()),
        ));
    }
    let hoff = buf.len() - 8;
    let (body, tail) = buf.split_at(hoff);
    let mut hash = [0u8; 8];
    hash.copy_from_slice(tail);
    let hash_ok = hash::hh64(&hash::key_for(group), &[body]).to_le_bytes() == hash;
    let mut c = Cursor::new(body);
    let term = c.u64le()?;
    let index = c.u64le()?;
    let lps = c.u32le()?;
    if lps as usize > c.remaining() {
        return Err(ParseError::invalid(
            16,
            format!("snapshot: peer state length {lps} past the hash at {hoff}"),
        ));
    }
    let peer_state = c.take(lps as usize)?.to_vec();
    let data_offset = c.pos();
    let data = c.rest().to_vec();
    Ok(RaftSnapshot {
        term,
        index,
        peer_state,
        data_offset,
        data,
        hash,
        hash_ok,
    })
}

/// Parse a snapshot file name `snap.<term>.<index>` into (term, index).
pub fn parse_snapshot_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("snap.")?;
    let (t, i) = rest.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(t) || !digits(i) {
        return None;
    }
    Some((t.parse().ok()?, i.parse().ok()?))
}

/// The raft peer id of a server: the first 8 characters of its name's SHA-256 in base 62
/// (`getHash`, events.go: each of the first 8 digest bytes picks `digits[b % 62]`).
pub fn server_peer_id(server_name: &str) -> String {
    use sha2::{Digest, Sha256};
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let d = Sha256::digest(server_name.as_bytes());
    d[..PEER_ID_LEN]
        .iter()
        .map(|b| DIGITS[(*b % 62) as usize] as char)
        .collect()
}

/// Raft entry types (`EntryType`, raft.go), in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Normal,
    OldSnapshot,
    PeerState,
    AddPeer,
    RemovePeer,
    LeaderTransfer,
    Snapshot,
    /// A type byte this reader does not know.
    Other(u8),
}

impl EntryType {
    fn of(b: u8) -> EntryType {
        match b {
            0 => EntryType::Normal,
            1 => EntryType::OldSnapshot,
            2 => EntryType::PeerState,
            3 => EntryType::AddPeer,
            4 => EntryType::RemovePeer,
            5 => EntryType::LeaderTransfer,
            6 => EntryType::Snapshot,
            b => EntryType::Other(b),
        }
    }
}

/// One entry of an append entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub kind: EntryType,
    pub data: &'a [u8],
}

/// A raft append entry as stored in the WAL (`appendEntry.encode`, raft.go): leader id (8),
/// u64 term, commit, previous term, previous index, u16 entry count, then per entry u32 length
/// (type byte + data), the type byte and the data; an optional uvarint leader term follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEntry<'a> {
    pub leader: [u8; PEER_ID_LEN],
    pub term: u64,
    pub commit: u64,
    pub pterm: u64,
    pub pindex: u64,
    pub entries: Vec<Entry<'a>>,
}

/// Decode an append entry (the payload of a raft WAL record), with the server's checks.
pub fn parse_append_entry(buf: &[u8]) -> Result<AppendEntry<'_>, ParseError> {
    let mut c = Cursor::new(buf);
    let mut leader = [0u8; PEER_ID_LEN];
    leader.copy_from_slice(c.take(PEER_ID_LEN)?);
    let term = c.u64le()?;
    let commit = c.u64le()?;
    let pterm = c.u64le()?;
    let pindex = c.u64le()?;
    let n = c.u16le()?;
    let mut entries = Vec::with_capacity(usize::from(n).min(c.remaining() / 5));
    for i in 0..n {
        let at = c.pos();
        let ml = c.u32le()? as usize;
        if ml == 0 || ml > c.remaining() {
            return Err(ParseError::invalid(
                at,
                format!(
                    "append entry: entry {i} of {n} has length {ml}, {} bytes left",
                    c.remaining()
                ),
            ));
        }
        let e = c.take(ml)?;
        entries.push(Entry {
            kind: EntryType::of(e[0]),
            data: &e[1..],
        });
    }
    Ok(AppendEntry {
        leader,
        term,
        commit,
        pterm,
        pindex,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    const CL: &str = "v2.15.1-cluster-n1";
    const RAFT: &str = "store/jetstream/$SYS/_js_";

    #[test]
    fn cluster_peers_tav_commit() {
        let d = testdata::sample(CL);
        let ids = [*b"44jzkV9D", *b"fjFyEjc1", *b"BXScrY9i"];
        for g in ["_meta_", "S-R3F-W7suG6Iu", "C-R3F-nuxqBIEP"] {
            let raw = testdata::read(&d, CL, &format!("{RAFT}/{g}/peers.idx"));
            assert_eq!(raw.len(), 34);
            let p = parse_peers(&raw).unwrap();
            assert_eq!((p.cluster_size, p.domain_ext, p.trailing), (3, Some(0), 0));
            let mut got = p.peers.clone();
            got.sort();
            let mut want = ids.to_vec();
            want.sort();
            assert_eq!(got, want, "{g}");
            for cut in 0..raw.len() {
                match parse_peers(&raw[..cut]) {
                    Ok(p) => assert!(cut >= 32 && p.domain_ext.is_none(), "cut {cut}"),
                    Err(_) => assert!(cut < 32),
                }
            }
            let tav = parse_tav(&testdata::read(&d, CL, &format!("{RAFT}/{g}/tav.idx"))).unwrap();
            assert_eq!(tav.term, 3);
            assert!(ids.iter().any(|id| Some(id.to_vec()) == tav.vote), "{g}");
        }
        assert_eq!(
            parse_tav(&testdata::read(
                &d,
                CL,
                &format!("{RAFT}/S-R3F-W7suG6Iu/tav.idx")
            ))
            .unwrap()
            .vote,
            Some(b"BXScrY9i".to_vec())
        );
        assert!(parse_tav(&[1, 2, 3]).is_err());
        assert_eq!(
            parse_tav(&[5, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap(),
            TermVote {
                term: 5,
                vote: None
            }
        );

        let raw = testdata::read(&d, CL, &format!("{RAFT}/_meta_/commit.idx"));
        let ci = parse_commit_idx(&raw, "_meta_").unwrap();
        assert_eq!(ci.commit, 9);
        assert!(ci.hash_ok);
        assert!(!parse_commit_idx(&raw, "_meta").unwrap().hash_ok);
        for cut in 0..raw.len() {
            assert!(parse_commit_idx(&raw[..cut], "_meta_").is_err());
        }
        // A huge peer count must not allocate.
        let mut b = 3u32.to_le_bytes().to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_peers(&b).is_err());
    }

    #[test]
    fn cluster_snapshots() {
        let d = testdata::sample(CL);
        for (g, name, len) in [
            ("_meta_", "snap.3.9", 804usize),
            ("S-R3F-W7suG6Iu", "snap.3.10", 71),
            ("C-R3F-nuxqBIEP", "snap.1.2", 70),
        ] {
            let raw = testdata::read(&d, CL, &format!("{RAFT}/{g}/snapshots/{name}"));
            assert_eq!(raw.len(), len);
            let s = parse_snapshot(&raw, g).unwrap();
            assert!(s.hash_ok, "{g}");
            assert!(!parse_snapshot(&raw, "other").unwrap().hash_ok);
            assert_eq!(Some((s.term, s.index)), parse_snapshot_name(name));
            let p = s.peers().unwrap();
            assert_eq!(
                (p.cluster_size, p.peers.len(), p.domain_ext),
                (3, 3, Some(0))
            );
            assert_eq!(s.data_offset, 54);
            assert_eq!(s.data.len(), len - 54 - 8);
            for cut in 0..raw.len() {
                if let Ok(t) = parse_snapshot(&raw[..cut], g) {
                    assert!(!t.hash_ok, "{g} cut {cut}");
                }
            }
        }
        // The consumer group's snapshot data is an o.dat-encoded consumer state (all zero: D never fetched).
        let raw = testdata::read(&d, CL, &format!("{RAFT}/C-R3F-nuxqBIEP/snapshots/snap.1.2"));
        let s = parse_snapshot(&raw, "C-R3F-nuxqBIEP").unwrap();
        let st = crate::filestore::consumer_state::parse(&s.data)
            .unwrap()
            .unwrap();
        assert_eq!((st.delivered.stream_seq, st.ack_floor.stream_seq), (0, 0));
        assert_eq!(parse_snapshot_name("snap.1"), None);
        assert_eq!(parse_snapshot_name("snap.1.x"), None);
        assert_eq!(parse_snapshot_name("snap.+1.2"), None);
        // Peer-state length past the end.
        let mut bad = raw.clone();
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_snapshot(&bad, "C-R3F-nuxqBIEP").is_err());
    }
}

#[cfg(test)]
mod wal_tests {
    use super::*;
    use crate::filestore::block::{block_key, Records};
    use crate::testdata;

    #[test]
    fn server_ids_of_the_sample_cluster() {
        // n1, n2, n3 are the server names of the sample cluster (server.conf inside the sample);
        // their ids are the three peers of every group.
        let mut ids: Vec<String> = ["n1", "n2", "n3"]
            .iter()
            .map(|n| server_peer_id(n))
            .collect();
        ids.sort();
        let mut want = vec!["44jzkV9D", "fjFyEjc1", "BXScrY9i"];
        want.sort();
        assert_eq!(ids, want);
    }

    #[test]
    fn meta_wal_records_are_append_entries_at_their_index() {
        let d = testdata::sample("v2.15.1-cluster-n1");
        let raw = testdata::read(
            &d,
            "v2.15.1-cluster-n1",
            "store/jetstream/$SYS/_js_/_meta_/msgs/3.blk",
        );
        let key = block_key("_meta_", 3);
        let mut n = 0;
        for r in Records::new(&raw) {
            let r = r.unwrap();
            assert!(r.checksum_ok(&key));
            if r.kind() != crate::filestore::block::RecordKind::Message {
                continue; // a tombstone for a compacted index
            }
            let ae = parse_append_entry(r.payload).unwrap();
            // the WAL sequence is the raft index: the previous index + 1
            assert_eq!(ae.pindex + 1, r.seq, "{ae:?}");
            for cut in 0..r.payload.len() {
                if let Ok(t) = parse_append_entry(&r.payload[..cut]) {
                    assert!(t.entries.len() == ae.entries.len(), "cut {cut}");
                }
            }
            n += 1;
        }
        assert!(n > 0);
        assert!(parse_append_entry(&[0; 41]).is_err());
        let mut b = vec![0u8; 42];
        b[40] = 1; // one entry, no bytes for it
        assert!(parse_append_entry(&b).is_err());
    }
}
