//! Materialise a file store from a V2 (`NATSARC1`) backup.
//!
//! What is written, and why (checked against nats-server 2.15.1, see tests/extract_e2e.rs):
//! - `meta.inf` = `{"Created": <now>, …config}` and `meta.sum` keyed by SHA-256(stream name);
//! - `msgs/<N>.blk` from 1 up, records encoded as the server does, a new block when the next
//!   record would make a non-empty block exceed the block size the server would choose;
//! - deleted messages need nothing: when the server rebuilds a block it marks every sequence
//!   missing between two records as deleted, and gaps between blocks are deleted by definition
//!   of the stream state (last - first + 1 - msgs);
//! - a `last_seq` beyond the last message (trailing deletes, or an empty stream that had
//!   messages) is kept with one skip record (`seq | 1<<63`, empty, 30 bytes) — what the server's
//!   own `SkipMsgs` writes;
//! - no `index.db`: the server rebuilds it from the blocks at first start (and writes it at
//!   shutdown);
//! - consumers: `obs/<c>/meta.inf` (`{"Created", "Name", …config}`), `meta.sum` (key
//!   `"<stream>/<c>"`), `o.dat` from the archived state.
use crate::backup::backup_json::BackupJson;
use crate::backup::backup_json::StreamStateJson;
use crate::backup::natsarc::{
    ArcEntry, ConsumerStateJson, EntryRole, ScanEnd, V2Options, V2Scan, V2Summary,
};
use crate::base::problem::{Kind, Location, Problem, Severity};
use crate::filestore::block::{self, EBIT};
use crate::filestore::consumer_state::{self, ConsumerState, Pending, SeqPair};
use crate::filestore::meta;
use crate::ops::staging::{AlignedBuf, FileJob, FileWriter, Stage};
use serde_json::{Map, Value};

pub(crate) const MIN_BLOCK: u64 = 32_000;
pub(crate) const MEDIUM_BLOCK: u64 = 4 << 20;
pub(crate) const LARGE_BLOCK: u64 = 8 << 20;
/// A record longer than the block size and than this is written as its own block file
/// straight from the archive entry, without being copied into the block buffer.
const BIG_RECORD: u64 = 1 << 20;

fn cfg_i64(cfg: &Map<String, Value>, k: &str) -> i64 {
    cfg.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn tune(est: u64) -> u64 {
    let mut b = est / 4 + 1;
    if !b.is_multiple_of(100) {
        b += 100 - b % 100;
    }
    if b <= MIN_BLOCK {
        MIN_BLOCK
    } else if b >= LARGE_BLOCK {
        LARGE_BLOCK
    } else {
        MEDIUM_BLOCK
    }
}

/// The block size nats-server picks for a new file stream with this config and no explicit
/// store config (`autoTuneFileStorageBlockSize`, else `dynBlkSize`; unencrypted store).
pub(crate) fn block_size_for(cfg: &Map<String, Value>) -> u64 {
    let max_bytes = cfg_i64(cfg, "max_bytes");
    let max_msgs = cfg_i64(cfg, "max_msgs");
    let per_subject = cfg_i64(cfg, "max_msgs_per_subject");
    if max_bytes > 0 {
        return tune(max_bytes as u64);
    }
    if max_msgs > 0 {
        // Server: fileStoreMsgSizeEstimate(longest literal subject or 256, max msg size or
        // the account's max payload, default 1 MiB) = 30 + subject + 4 + payload.
        let mut payload = cfg_i64(cfg, "max_msg_size");
        if payload <= 0 {
            payload = 1 << 20;
        }
        let subj = cfg
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.split('.').any(|t| t == "*" || t == ">"))
                    .map(str::len)
                    .max()
                    .unwrap_or(256)
            })
            .unwrap_or(256) as u64;
        let per_msg = 30 + subj + 4 + payload as u64;
        return tune((max_msgs as u64).saturating_mul(per_msg));
    }
    if per_subject > 0 {
        return MEDIUM_BLOCK;
    }
    match cfg.get("retention").and_then(Value::as_str) {
        None | Some("limits") => LARGE_BLOCK,
        _ => MEDIUM_BLOCK,
    }
}

/// Block writer: accumulates records of the current block (in an aligned buffer) and hands
/// full blocks to a [`FileWriter`], which writes and fsyncs them on its own thread while the
/// next block fills. In a dry run nothing is encoded; only sizes are counted.
pub(crate) struct BlockWriter<'a> {
    stream: String,
    block_size: u64,
    index: u32,
    key: highway::Key,
    buf: AlignedBuf,
    /// Bytes of the current block.
    len: u64,
    writer: Option<FileWriter>,
    pub(crate) blocks: u64,
    pub(crate) last_seq: u64,
    pub(crate) last_ts: i64,
    sink: &'a mut Stage,
}

impl<'a> BlockWriter<'a> {
    pub(crate) fn new(stream: &str, block_size: u64, sink: &'a mut Stage) -> Self {
        let dry = sink.is_dry();
        BlockWriter {
            stream: stream.to_string(),
            block_size,
            index: 1,
            key: block::block_key(stream, 1),
            buf: AlignedBuf::with_capacity(if dry { 0 } else { Self::cap(block_size) }),
            len: 0,
            writer: (!dry).then(FileWriter::new),
            blocks: 0,
            last_seq: 0,
            last_ts: 0,
            sink,
        }
    }

    fn cap(block_size: u64) -> usize {
        usize::try_from(block_size)
            .unwrap_or(usize::MAX)
            .min(64 << 20)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let rel = format!("msgs/{}.blk", self.index);
        let path = self.sink.prepare(&rel)?;
        if let (Some(path), Some(w)) = (path, self.writer.as_mut()) {
            let data = std::mem::replace(&mut self.buf, AlignedBuf::with_capacity(0));
            // Waits for the previous block's write, whose buffer then comes back.
            w.write(FileJob { path, data })?;
            self.buf = w
                .reuse()
                .unwrap_or_else(|| AlignedBuf::with_capacity(Self::cap(self.block_size)));
            self.buf.reset();
        }
        self.sink.planned(&rel, self.len);
        self.blocks += 1;
        self.len = 0;
        Ok(())
    }

    fn room_for(&mut self, rl: u64) -> std::io::Result<()> {
        if self.len > 0 && self.len + rl > self.block_size {
            self.flush()?;
            self.index += 1;
            self.key = block::block_key(&self.stream, self.index);
        }
        Ok(())
    }

    pub(crate) fn message(
        &mut self,
        seq: u64,
        ts: i64,
        subject: &[u8],
        hdr: &[u8],
        body: &[u8],
    ) -> std::io::Result<()> {
        let h = if hdr.is_empty() { None } else { Some(hdr) };
        let rl = crate::backup::natsarc::filestore_msg_size(
            subject.len() as u64,
            hdr.len() as u64,
            body.len() as u64,
        );
        self.room_for(rl)?;
        if self.writer.is_some() && self.len == 0 && rl > self.block_size && rl > BIG_RECORD {
            // a block of its own, written straight from the entry: no copy of a record of
            // up to 32 MiB in the block buffer (and none kept for reuse)
            let (head, sum) = block::record_parts(&self.key, seq, ts, subject, h, body);
            let rel = format!("msgs/{}.blk", self.index);
            self.sink
                .write_file_parts(&rel, &[&head, hdr, body, &sum])?;
            self.blocks += 1;
            self.index += 1;
            self.key = block::block_key(&self.stream, self.index);
            self.last_seq = seq;
            self.last_ts = ts;
            return Ok(());
        }
        if self.writer.is_some() {
            block::encode_record(&mut self.buf.buf, &self.key, seq, ts, subject, h, body);
        }
        self.len += rl;
        self.last_seq = seq;
        self.last_ts = ts;
        Ok(())
    }

    /// A skip marker: sequence `seq` deleted, and every sequence since the last record too.
    pub(crate) fn skip(&mut self, seq: u64, ts: i64) -> std::io::Result<()> {
        self.room_for(block::EMPTY_RECORD_LEN as u64)?;
        if self.writer.is_some() {
            block::encode_record(&mut self.buf.buf, &self.key, seq | EBIT, ts, b"", None, b"");
        }
        self.len += block::EMPTY_RECORD_LEN as u64;
        self.last_seq = seq;
        Ok(())
    }

    /// Write the last block (an empty `1.blk` when nothing was written, as the server has)
    /// and wait until every block is written and fsynced.
    pub(crate) fn close(mut self) -> std::io::Result<u64> {
        if self.len > 0 || self.blocks == 0 {
            self.flush()?;
        }
        if let Some(w) = self.writer.take() {
            w.finish()?;
        }
        Ok(self.blocks)
    }
}

/// `meta.inf` bytes: `{"Created": created, …fields}` (a `Created` in `fields` is replaced).
pub(crate) fn meta_inf(
    created: &str,
    extra_first: &[(&str, Value)],
    fields: &Map<String, Value>,
) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("Created".into(), Value::String(created.into()));
    for (k, v) in extra_first {
        m.insert((*k).into(), v.clone());
    }
    for (k, v) in fields {
        if k != "Created" && !extra_first.iter().any(|(e, _)| e == k) {
            m.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// o.dat for an archived consumer state. `now_secs` = the write time (the server's base).
pub(crate) fn consumer_odat(st: &ConsumerStateJson, now_secs: i64) -> Vec<u8> {
    let pending: Vec<Pending> = st
        .pending
        .iter()
        .flatten()
        .map(|(sseq, p)| Pending {
            stream_seq: *sseq,
            consumer_seq: p.sequence,
            ts_secs: p.timestamp / 1_000_000_000,
        })
        .collect();
    let redelivered: Vec<(u64, u64)> = st
        .redelivered
        .iter()
        .flatten()
        .map(|(s, n)| (*s, *n))
        .collect();
    consumer_state::encode(&ConsumerState {
        version: 2,
        ack_floor: SeqPair {
            consumer_seq: st.ack_floor.consumer_seq,
            stream_seq: st.ack_floor.stream_seq,
        },
        delivered: SeqPair {
            consumer_seq: st.delivered.consumer_seq,
            stream_seq: st.delivered.stream_seq,
        },
        pending,
        redelivered,
        base_ts_secs: now_secs,
    })
}

pub(crate) struct V2Input<'a> {
    /// The stream's name in the backup (what its checks compare).
    pub(crate) stream: &'a str,
    /// The name the files are written for (`--as`; else `stream`): record checksums, meta.sum.
    pub(crate) write_as: &'a str,
    pub(crate) account: &'a str,
    pub(crate) label: &'a str,
    /// Stream config (backup.json's), in its key order.
    pub(crate) config: &'a Map<String, Value>,
    /// backup.json, for limits when state.json is unusable and for the checks `jetdir verify`
    /// makes of it against the archive.
    pub(crate) backup: Option<&'a BackupJson>,
    pub(crate) created: &'a str,
    pub(crate) now_secs: i64,
    /// Stop writing at the first problem (false with --allow-damaged); the archive is still
    /// read to its end so that every problem is reported.
    pub(crate) strict: bool,
}

#[derive(Debug, Default)]
pub(crate) struct V2Result {
    pub(crate) messages: u64,
    pub(crate) blocks: u64,
    pub(crate) consumers: Vec<String>,
    pub(crate) skip_record: Option<u64>,
    pub(crate) block_size: u64,
    /// What verifying the archive found: the same checks, and problem kinds, as
    /// `jetdir verify` of the archive (structure, state.json and backup.json agreement,
    /// consumer invariants), sorted like its report.
    pub(crate) verification: Vec<Problem>,
    pub(crate) summary: V2Summary,
    /// Problems found while writing (not the checker's), e.g. limits exceeded.
    pub(crate) problems: Vec<Problem>,
    /// A limit was exceeded or an entry could not be written: the result must not be used.
    pub(crate) fatal: bool,
    /// Writing stopped early (strict mode and a problem, or `fatal`): the staged files are
    /// incomplete and must be discarded.
    pub(crate) stopped: bool,
    /// thw.db / sched.db / sources.db written (rebuilt from the messages).
    pub(crate) aux_files: Vec<String>,
    /// Why one of them was left out.
    pub(crate) aux_notes: Vec<String>,
}

/// Read the decoded archive `r`, verify it and write the stream into `sink`, in one pass.
///
/// Every entry goes through the checker of `jetdir verify` ([`V2Scan`]) before it is written;
/// the caller decides from [`V2Result::verification`] whether the staged files may be used.
/// In strict mode writing stops at the first error, but reading goes on to the end of the
/// archive so that the problems reported are those `jetdir verify` reports.
pub(crate) fn extract_v2<R: std::io::BufRead>(
    r: R,
    inp: &V2Input,
    sink: &mut Stage,
) -> std::io::Result<V2Result> {
    let block_size = block_size_for(inp.config);
    sink.dir("msgs")?;
    sink.dir("obs")?;
    let mi = meta_inf(inp.created, &[], inp.config);
    sink.write_file("meta.inf", &mi)?;
    sink.write_file("meta.sum", meta::expected_sum(inp.write_as, &mi).as_bytes())?;

    let mut scan = V2Scan::new(r, scan_options(inp));
    let mut w = V2Writer {
        inp,
        res: V2Result {
            block_size,
            ..Default::default()
        },
        bw: Some(BlockWriter::new(inp.write_as, block_size, sink)),
        state: None,
        stored_bytes: 0,
        aux: super::aux::AuxBuilder::for_config(inp.config),
    };
    if scan.ended() == Some(ScanEnd::BadHeader) {
        let mut res = w.res;
        res.summary = scan.finish();
        res.verification = archive_checks(&res.summary, inp);
        res.fatal = true;
        res.stopped = true;
        return Ok(res);
    }
    let mut seen_problems = 0usize;
    while let Some(role) = scan.advance() {
        if inp.strict && scan.problems().len() > seen_problems {
            let new = scan.problems().get(seen_problems..).unwrap_or_default();
            if new.iter().any(|p| p.severity == Severity::Error) {
                w.bw = None; // damaged: the result will be refused, only verify from here on
            }
            seen_problems = scan.problems().len();
        }
        let e = scan.entry();
        match role {
            EntryRole::State => w.state_entry(e),
            EntryRole::Consumer => w.consumer(e)?,
            EntryRole::Message => w.message(e)?,
            EntryRole::Unexpected => {
                if inp.strict {
                    w.bw = None;
                }
            }
        }
    }
    match scan.ended() {
        Some(ScanEnd::Oversized) => w.res.fatal = true,
        Some(_) if inp.strict => w.res.fatal = true,
        _ => {}
    }
    let mut res = w.close()?;
    res.summary = scan.finish();
    res.verification = archive_checks(&res.summary, inp);
    Ok(res)
}

/// The checker's options: names for problem locations, and the stricter of the config's
/// `max_msg_size` and backup.json's (which `jetdir verify` checks).
fn scan_options(inp: &V2Input) -> V2Options {
    let mut opts = V2Options::new(inp.label);
    opts.account = Some(inp.account.to_string());
    opts.stream = Some(inp.stream.to_string());
    opts.max_msg_size = [
        inp.config.get("max_msg_size").and_then(Value::as_i64),
        inp.backup.and_then(|b| b.max_msg_size()),
    ]
    .into_iter()
    .flatten()
    .filter(|v| *v > 0)
    .map(|v| v as u64)
    .min();
    opts
}

/// Where in the archive: `<label>:<file>` at `off`.
fn loc(inp: &V2Input, file: &str, off: u64) -> Location {
    Location {
        account: Some(inp.account.to_string()),
        stream: Some(inp.stream.to_string()),
        file: Some(format!("{}:{file}", inp.label)),
        offset: Some(off),
        ..Default::default()
    }
}

/// The writing side of [`extract_v2`], one method per entry role.
struct V2Writer<'i, 's> {
    inp: &'i V2Input<'i>,
    res: V2Result,
    /// `None` once writing stopped.
    bw: Option<BlockWriter<'s>>,
    /// The archive's state.json, once read.
    state: Option<StreamStateJson>,
    /// File-store bytes of the messages so far.
    stored_bytes: u64,
    /// TTLs, schedules and source positions of the messages written.
    aux: super::aux::AuxBuilder,
}

impl V2Writer<'_, '_> {
    fn state_entry(&mut self, e: &ArcEntry) {
        let mut body = e.header.clone();
        body.extend_from_slice(&e.payload);
        self.state = serde_json::from_slice(&body).ok();
    }

    /// `obs/<c>/{meta.inf,meta.sum,o.dat}` from a consumer entry (skipped, with a problem,
    /// when unusable or its name is not a plain directory name or repeats).
    fn consumer(&mut self, e: &ArcEntry) -> std::io::Result<()> {
        let inp = self.inp;
        let Some(w) = self.bw.as_mut() else {
            return Ok(());
        };
        let cname = e.name_lossy();
        let cname = cname
            .strip_prefix("consumers/")
            .unwrap_or(&cname)
            .to_string();
        let mut body = e.header.clone();
        body.extend_from_slice(&e.payload);
        let parsed: Option<Map<String, Value>> = serde_json::from_slice(&body).ok();
        let cfg = parsed
            .as_ref()
            .and_then(|m| m.get("config"))
            .and_then(Value::as_object);
        let st = parsed
            .as_ref()
            .and_then(|m| m.get("state"))
            .and_then(|v| serde_json::from_value::<ConsumerStateJson>(v.clone()).ok());
        let (Some(cfg), Some(st)) = (cfg, st) else {
            self.res.problems.push(Problem::new(
                Kind::ExtractConsumerSkipped,
                loc(inp, &format!("consumers/{cname}"), e.offset).consumer(&cname),
                "consumer entry without a usable config and state: not written".to_string(),
            ));
            return Ok(());
        };
        if crate::ops::staging::checked_components(&cname)
            .map(|c| c.len())
            .ok()
            != Some(1)
            || self.res.consumers.contains(&cname)
        {
            self.res.problems.push(Problem::new(
                Kind::ExtractConsumerSkipped,
                loc(inp, &format!("consumers/{cname}"), e.offset),
                format!(
                    "consumer name {cname:?} cannot be a directory name (or repeats): not written"
                ),
            ));
            return Ok(());
        }
        let cmi = meta_inf(inp.created, &[("Name", Value::String(cname.clone()))], cfg);
        let dir = format!("obs/{cname}");
        w.sink.write_file(&format!("{dir}/meta.inf"), &cmi)?;
        w.sink.write_file(
            &format!("{dir}/meta.sum"),
            meta::expected_sum(&format!("{}/{cname}", inp.write_as), &cmi).as_bytes(),
        )?;
        w.sink
            .write_file(&format!("{dir}/o.dat"), &consumer_odat(&st, inp.now_secs))?;
        self.res.consumers.push(cname);
        Ok(())
    }

    /// One message record, within the limits of the declared state (decompression bomb,
    /// damage) and of a file-store record; beyond them writing stops (`fatal`).
    fn message(&mut self, e: &ArcEntry) -> std::io::Result<()> {
        let inp = self.inp;
        let Some(w) = self.bw.as_mut() else {
            return Ok(());
        };
        if e.seq == 0 || e.seq <= w.last_seq || e.seq & (EBIT | block::TBIT) != 0 {
            // Reported by the checker.
            if inp.strict {
                self.bw = None;
            }
            return Ok(());
        }
        let limit_state = self.state.as_ref().or(inp.backup.map(|b| &b.state));
        let size = crate::backup::natsarc::filestore_msg_size(
            e.name.len() as u64,
            e.header.len() as u64,
            e.payload.len() as u64,
        );
        self.stored_bytes = self.stored_bytes.saturating_add(size);
        if let Some(st) = limit_state {
            if self.res.messages + 1 > st.messages
                || self.stored_bytes > st.bytes
                || e.seq > st.last_seq
            {
                self.res.problems.push(Problem::new(
                    Kind::ExtractLimit,
                    loc(inp, &e.name_lossy(), e.offset).seq(e.seq),
                    format!(
                        "the archive holds more than its state declares ({} messages, {} bytes, last seq {}): refusing to write more",
                        st.messages, st.bytes, st.last_seq
                    ),
                ));
                self.res.fatal = true;
                self.bw = None;
                return Ok(());
            }
        }
        if e.name.len() > u16::MAX as usize || size > u64::from(block::MAX_RECORD_LEN) {
            self.res.problems.push(Problem::new(
                Kind::ExtractLimit,
                loc(inp, &e.name_lossy(), e.offset).seq(e.seq),
                "message too large for a file-store record".to_string(),
            ));
            self.res.fatal = true;
            self.bw = None;
            return Ok(());
        }
        w.message(e.seq, e.timestamp, &e.name, &e.header, &e.payload)?;
        self.aux.message(e.seq, e.timestamp, &e.name, &e.header);
        self.res.messages += 1;
        Ok(())
    }

    /// Finish the blocks (unless writing stopped): a skip record keeps a `last_seq` beyond the
    /// last message (trailing deletes), then every block is written and fsynced.
    fn close(mut self) -> std::io::Result<V2Result> {
        if self.res.fatal {
            self.bw = None;
        }
        let Some(mut w) = self.bw else {
            self.res.stopped = true;
            return Ok(self.res);
        };
        let inp = self.inp;
        if let Some(st) = self.state.as_ref().or(inp.backup.map(|b| &b.state)) {
            if st.last_seq > w.last_seq {
                let ts = st
                    .last_ts
                    .as_deref()
                    .and_then(crate::base::time::parse_rfc3339)
                    .filter(|t| *t > 0)
                    .unwrap_or(w.last_ts);
                w.skip(st.last_seq, ts)?;
                self.res.skip_record = Some(st.last_seq);
            }
        }
        let aux = self.aux.finish(w.last_seq);
        for (rel, data) in &aux.files {
            w.sink.write_file(rel, data)?;
            self.res.aux_files.push(rel.to_string());
        }
        self.res.aux_notes = aux.notes;
        self.res.blocks = w.close()?;
        Ok(self.res)
    }
}

/// The problems `jetdir verify` reports for a V2 archive, from the checker's summary: the
/// checker's own, consumer invariants against the stream's last sequence, and backup.json's
/// state against the archive's content (sorted as in verify's report).
fn archive_checks(sum: &V2Summary, inp: &V2Input) -> Vec<Problem> {
    let mut problems = sum.problems.clone();
    let totals = crate::check::archive::v2_totals(sum, 0);
    let (msgs, first, last) = (totals.messages, totals.first_seq, totals.last_seq);
    crate::check::archive::check_v2_consumers(
        sum,
        inp.account,
        inp.stream,
        inp.label,
        last,
        &mut problems,
    );
    if let Some(b) = inp.backup {
        // the same backup.json checks as `jetdir verify`
        let seen = crate::base::report::StreamReport {
            account: inp.account.to_string(),
            name: inp.stream.to_string(),
            messages: Some(msgs),
            first_seq: Some(first),
            last_seq: Some(last),
            consumers: sum
                .consumers
                .iter()
                .map(|c| crate::base::report::ConsumerReport {
                    name: c.name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        crate::check::archive::compare_backup_json(&seen, b, &mut problems);
    }
    sort_problems(&mut problems);
    problems
}

/// The order of `jetdir verify`'s report.
pub(crate) use crate::base::report::sort_problems;

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(j: &str) -> Map<String, Value> {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn block_sizes_follow_the_server() {
        assert_eq!(block_size_for(&cfg(r#"{"retention":"limits"}"#)), 8 << 20);
        assert_eq!(
            block_size_for(&cfg(r#"{"retention":"workqueue"}"#)),
            4 << 20
        );
        assert_eq!(
            block_size_for(&cfg(r#"{"retention":"interest","max_bytes":-1}"#)),
            4 << 20
        );
        // MULTI sample: max_bytes 120000 -> 32000 (its blocks are 31191 bytes).
        assert_eq!(block_size_for(&cfg(r#"{"max_bytes":120000}"#)), 32_000);
        assert_eq!(block_size_for(&cfg(r#"{"max_bytes":1000000}"#)), 4 << 20);
        assert_eq!(block_size_for(&cfg(r#"{"max_bytes":40000000}"#)), 8 << 20);
        assert_eq!(
            block_size_for(&cfg(r#"{"max_msgs_per_subject":3}"#)),
            4 << 20
        );
        // 10 msgs x (30 + 256 + 4 + 1 MiB) / 4 -> between -> 4 MiB
        assert_eq!(block_size_for(&cfg(r#"{"max_msgs":10}"#)), 4 << 20);
        assert_eq!(
            block_size_for(&cfg(r#"{"max_msgs":10,"max_msg_size":100}"#)),
            32_000
        );
    }

    #[test]
    fn odat_matches_the_real_c1_file() {
        // ORDERS/C1 (2.15.1): ack floor (2,3), delivered (5,5), pending {4: dseq 3}, redelivered {4:1}
        let real = crate::testdata::sample("v2.15.1-plain");
        let raw = crate::testdata::read(
            &real,
            "v2.15.1-plain",
            "store/jetstream/$G/streams/ORDERS/obs/C1/o.dat",
        );
        let parsed = consumer_state::parse(&raw).unwrap().unwrap();
        let p = parsed.pending.first().unwrap();
        let st: ConsumerStateJson = serde_json::from_value(serde_json::json!({
            "delivered": {"consumer_seq": 5, "stream_seq": 5},
            "ack_floor": {"consumer_seq": 2, "stream_seq": 3},
            "pending": {"4": {"Sequence": 3, "Timestamp": p.ts_secs * 1_000_000_000 + 123}},
            "redelivered": {"4": 1}
        }))
        .unwrap();
        assert_eq!(consumer_odat(&st, parsed.base_ts_secs), raw);
    }
}
