//! The on-disk file store: one parser (and encoder) per artefact of a stream directory.
pub(crate) mod aux_state;
pub(crate) mod block;
pub mod config_fields;
pub(crate) mod consumer_group;
pub(crate) mod consumer_state;
pub(crate) mod discover;
pub mod encrypted;
pub(crate) mod index_db;
pub mod keys;
pub(crate) mod layout;
pub(crate) mod legacy;
pub(crate) mod meta;
pub(crate) mod meta_assign;
pub(crate) mod raft;
pub(crate) mod running;
pub(crate) mod seqset;
pub(crate) mod source;
pub(crate) mod stream_group;

/// The newest index.db version jetdir reads (`jetdir --version` names it).
pub use index_db::MAX_VERSION as INDEX_DB_MAX_VERSION;
/// `meta.sum` for a stream or consumer's `meta.inf` (see [`meta`]).
pub use meta::expected_sum;

/// Frames the records of plain block `index` of stream `stream` and checks each one's
/// checksum, nothing else: (records framed, checksums that do not match). The floor of a deep
/// verify's per-record work, for the benchmark (`bench/floors.rs`); stops at the first record
/// that does not frame.
pub fn hash_block_records(stream: &str, index: u32, plain: &[u8]) -> (u64, u64) {
    let key = block::block_key(stream, index);
    let (mut n, mut bad) = (0u64, 0u64);
    for r in block::Records::new(plain) {
        let Ok(r) = r else { break };
        n += 1;
        bad += u64::from(!r.checksum_ok(&key));
    }
    (n, bad)
}

/// One message record as the server writes it into block `index` of stream `stream` (its
/// checksum keyed by the block): for building blocks in tests and tools.
#[allow(clippy::too_many_arguments)]
pub fn encode_message(
    out: &mut Vec<u8>,
    stream: &str,
    index: u32,
    seq: u64,
    ts: i64,
    subject: &[u8],
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let key = block::block_key(stream, index);
    block::encode_record(out, &key, seq, ts, subject, headers, payload)
}
