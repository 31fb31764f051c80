//! Rewrite a plaintext stream dir for another name (`extract --as`, `pack --as`) or for a
//! standalone server (`rehome`).
//!
//! The stream name keys every record checksum (SHA-256("<stream>-<N>")), meta.sum
//! (SHA-256(name)), index.db's trailer (SHA-256(name)), 2.9's `.fss` hash and the consumers'
//! meta.sum (SHA-256("<stream>/<consumer>")); index.db, `.idx` and `.fss` also hold the last
//! record checksum of a block. [`rewrite_dir`] rewrites each of them for the new name and
//! copies everything else byte for byte (record framing, offsets and sequences do not move, so
//! index.db's per-block entries and delete maps stay valid as they are). Compressed (`cmp`)
//! blocks are written decompressed: the server reads both.
//!
//! **No laundering**: a record whose checksum does not verify under the old name keeps its
//! stored checksum (so it still fails under the new one), bytes after a framing error are
//! copied as they are, and an index.db, `.fss` or meta.sum that did not verify under the old
//! name keeps its stored hash. Each is listed in [`RewriteReport::damaged`]; callers refuse
//! unless `--allow-damaged`. Encrypted stream dirs are refused: decrypt first (pack does).
use crate::base::bytes::Cursor;
use crate::base::hash;
use crate::filestore::block::{self, Records};
use crate::filestore::{index_db, legacy, meta};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// What to change.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    /// The new stream name (`--as`); `None` keeps the name.
    pub name: Option<String>,
    /// New subjects (`--subjects`); `None` keeps them.
    pub subjects: Option<Vec<String>>,
    /// `rehome`: replicas 1, placement and cluster-only fields removed (stream and consumers).
    pub rehome: bool,
}

/// Something that did not verify under the old name and was carried over, not re-keyed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Carried {
    /// File, relative to the stream dir.
    pub file: String,
    /// Byte offset in the (plain) file, when it is a record.
    pub offset: Option<u64>,
    /// The record's sequence, when known.
    pub seq: Option<u64>,
    /// What is wrong.
    pub what: String,
}

/// What [`rewrite_dir`] did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RewriteReport {
    /// The name the files were written for.
    pub from: String,
    /// The name they are written for now.
    pub to: String,
    /// Records re-keyed for the new name.
    pub records: u64,
    /// Block files rewritten.
    pub blocks: u64,
    /// Compressed blocks written decompressed.
    pub decompressed: u64,
    /// Config changes (`num_replicas 3 -> 1`, `placement removed`, `consumer D: ...`).
    pub changes: Vec<String>,
    /// Damage carried over as it was (not re-keyed): callers refuse unless --allow-damaged.
    pub damaged: Vec<Carried>,
}

/// NATS stream names: no whitespace, `.`, `*`, `>`, path separators, at most 255 bytes.
pub fn valid_stream_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && !n.starts_with('.')
        && !n.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '*' | '>' | '.')
        })
}

/// Go's `encoding/json` escapes `<`, `>` and `&` inside strings (meta.inf as the server writes
/// it); outside strings JSON never holds them, so replacing them everywhere is exact.
pub(crate) fn go_json(v: &Map<String, Value>) -> Vec<u8> {
    let s = serde_json::to_string(v).unwrap_or_default();
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .into_bytes()
}

pub use crate::base::subject::subjects_overlap;

/// Subjects of the streams in `streams_dir` (one account's `streams/`) that overlap
/// `subjects`: `(stream, its subject, ours)`. Streams without a readable plain meta.inf are
/// passed over; `skip` (the stream being replaced or renamed from) too.
pub fn overlapping_streams(
    streams_dir: &Path,
    subjects: &[String],
    skip: Option<&str>,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(streams_dir) else {
        return out;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && Some(n.as_str()) != skip)
        .collect();
    names.sort();
    for n in names {
        let Ok(raw) = fs::read(streams_dir.join(&n).join("meta.inf")) else {
            continue;
        };
        let Ok(m) = meta::MetaInf::parse(&raw) else {
            continue;
        };
        for theirs in stream_subjects(&m.json) {
            for ours in subjects {
                if subjects_overlap(&theirs, ours) {
                    out.push((n.clone(), theirs.clone(), ours.clone()));
                }
            }
        }
    }
    out
}

/// A stream config's subjects (a stream without any listens on its name).
pub fn stream_subjects(cfg: &Map<String, Value>) -> Vec<String> {
    let subs: Vec<String> = cfg
        .get("subjects")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mirrored = cfg.get("mirror").is_some_and(|v| !v.is_null())
        || cfg
            .get("sources")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    if subs.is_empty() && !mirrored {
        if let Some(n) = cfg.get("name").and_then(Value::as_str) {
            return vec![n.to_string()];
        }
    }
    subs
}

/// Every regular file under `dir`, relative, sorted; a symlink or special file is an error.
fn files_under(dir: &Path) -> anyhow::Result<Vec<String>> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> anyhow::Result<()> {
        let here = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let rd = fs::read_dir(&here)
            .map_err(|e| anyhow::anyhow!("{}: cannot list: {e}", here.display()))?;
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if ft.is_dir() {
                walk(root, &r, out)?;
            } else if ft.is_file() {
                out.push(r);
            } else {
                anyhow::bail!(
                    "{}: not a regular file (a link or special file); nothing written",
                    root.join(&r).display()
                );
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// Block index of `msgs/<N>.<ext>`.
fn block_index(rel: &str, ext: &str) -> Option<u32> {
    rel.strip_prefix("msgs/")?
        .strip_suffix(ext)?
        .strip_suffix('.')?
        .parse()
        .ok()
}

/// One block re-keyed: the new bytes, the last record's checksum before and after.
struct BlockOut {
    data: Vec<u8>,
    last: Option<([u8; 8], [u8; 8])>,
    records: u64,
    decompressed: bool,
    damaged: Vec<Carried>,
}

/// Re-key the records of one block file (its bytes, taken: a plain block is rewritten in
/// place, a compressed one decompressed), so a block is in memory once.
fn rekey_block(raw: Vec<u8>, rel: &str, idx: u32, old: &str, new: &str) -> BlockOut {
    let mut out = BlockOut {
        data: Vec::new(),
        last: None,
        records: 0,
        decompressed: false,
        damaged: Vec::new(),
    };
    let mut buf = if block::is_cmp_block(&raw) {
        match block::decompress_cmp_block(&raw) {
            Ok(p) => {
                out.decompressed = true;
                p
            }
            Err(e) => {
                out.damaged.push(Carried {
                    file: rel.into(),
                    offset: None,
                    seq: None,
                    what: format!("compressed block does not decode ({e}); copied as it is"),
                });
                out.data = raw;
                return out;
            }
        }
    } else {
        raw
    };
    let (ko, kn) = (block::block_key(old, idx), block::block_key(new, idx));
    // (end of record, new checksum) for every record that verified under the old name
    let mut sums: Vec<(usize, [u8; 8])> = Vec::new();
    for r in Records::new(&buf) {
        match r {
            Ok(r) => {
                let end = r.offset + r.len as usize;
                if r.checksum_ok(&ko) {
                    let sum = r.computed_checksum(&kn);
                    sums.push((end, sum));
                    out.last = Some((r.checksum, sum));
                    out.records += 1;
                } else {
                    out.damaged.push(Carried {
                        file: rel.into(),
                        offset: Some(r.offset as u64),
                        seq: Some(r.seq),
                        what: format!(
                            "record checksum of seq {} does not verify under {old:?}; kept as stored (it does not verify under {new:?} either)",
                            r.seq
                        ),
                    });
                    out.last = Some((r.checksum, r.checksum));
                }
            }
            Err(e) => {
                out.damaged.push(Carried {
                    file: rel.into(),
                    offset: Some(e.offset as u64),
                    seq: None,
                    what: format!("{e}; the rest of the block is copied as it is"),
                });
                break;
            }
        }
    }
    for (end, sum) in sums {
        buf[end - block::CHECKSUM_LEN..end].copy_from_slice(&sum);
    }
    out.data = buf;
    out
}

/// Offset of the last-checksum field of a plaintext `.idx`.
fn idx_lchk_at(buf: &[u8]) -> Option<usize> {
    let mut c = Cursor::new(buf);
    c.header(legacy::MAGIC, 1..=1, ".idx", "").ok()?;
    for _ in 0..3 {
        c.uvarint().ok()?;
    }
    c.varint().ok()?;
    c.uvarint().ok()?;
    c.varint().ok()?;
    c.uvarint().ok()?;
    let at = c.pos();
    (buf.len() >= at + 8).then_some(at)
}

/// Map a stored last checksum: the block's last record re-keyed, anything else (a stale
/// index) unchanged.
fn map_lchk(stored: &[u8], last: Option<&([u8; 8], [u8; 8])>) -> Option<[u8; 8]> {
    let (o, n) = last?;
    (stored == o).then_some(*n)
}

/// Change a stream config for `rw`; returns what changed.
pub(crate) fn edit_stream_cfg(cfg: &mut Map<String, Value>, rw: &Rewrite) -> Vec<String> {
    let mut ch = Vec::new();
    if let Some(n) = &rw.name {
        let was = cfg.get("name").and_then(Value::as_str).unwrap_or("");
        if was != n {
            ch.push(format!("name {was} -> {n}"));
            cfg.insert("name".into(), Value::String(n.clone()));
        }
    }
    if let Some(s) = &rw.subjects {
        ch.push(format!("subjects -> {}", s.join(",")));
        cfg.insert(
            "subjects".into(),
            Value::Array(s.iter().cloned().map(Value::String).collect()),
        );
    }
    if rw.rehome {
        ch.extend(standalone(cfg, "stream", 1));
    }
    ch
}

/// Cluster-only fields off, replicas to `replicas` (consumers: 0, "as the stream").
fn standalone(cfg: &mut Map<String, Value>, what: &str, replicas: i64) -> Vec<String> {
    let mut ch = Vec::new();
    let r = cfg.get("num_replicas").and_then(Value::as_i64).unwrap_or(0);
    if r > 1 {
        ch.push(format!("{what} num_replicas {r} -> {replicas}"));
        cfg.insert("num_replicas".into(), Value::from(replicas));
    }
    // placement (cluster, tags): a standalone server has no cluster to place it in;
    // mem_storage on a consumer is kept (it is not cluster-only).
    for k in ["placement"] {
        if let Some(v) = cfg.remove(k) {
            if !v.is_null() {
                ch.push(format!("{what} {k} removed ({v})"));
            }
        }
    }
    ch
}

/// Write the files of the stream dir `src`, whose files are keyed by `old`, into `dst`
/// rewritten for `rw` (`dst` == `src`: in place, each changed file replaced by a rename;
/// otherwise `dst` must not exist and is created 0700 with every file). `durable`: every file
/// written is fsynced, then every dir (not for a private copy that is read once and removed).
/// Blocks are rewritten in parallel, one block in memory per thread.
pub fn rewrite_dir(
    src: &Path,
    dst: &Path,
    old: &str,
    rw: &Rewrite,
    durable: bool,
) -> anyhow::Result<RewriteReport> {
    let new = rw.name.clone().unwrap_or_else(|| old.to_string());
    if !valid_stream_name(&new) {
        anyhow::bail!("{new:?} is not a valid stream name (no whitespace, '.', '*', '>', '/')");
    }
    let files = files_under(src)?;
    if let Some(k) = files.iter().find(|f| f.ends_with(".key")) {
        anyhow::bail!(
            "{}: the stream is encrypted at rest ({k}); rename and rehome work on plaintext: pack it with the key first (pack writes plaintext), then extract --as / rehome the backup",
            src.display()
        );
    }
    let in_place = src == dst;
    if !in_place {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dst)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", dst.display()))?;
    }
    let mut rep = RewriteReport {
        from: old.to_string(),
        to: new.clone(),
        ..Default::default()
    };
    let renamed = new != old;
    let read = |rel: &str| -> anyhow::Result<Vec<u8>> {
        fs::read(src.join(rel)).map_err(|e| anyhow::anyhow!("{}: {e}", src.join(rel).display()))
    };
    let write = |rel: &str, data: &[u8]| write_file(dst, rel, data, durable);
    // an unchanged file: nothing to do in place, else copied
    let keep = |rel: &str| -> anyhow::Result<()> {
        if in_place {
            return Ok(());
        }
        copy_file(&src.join(rel), dst, rel, durable)
    };
    // blocks first: the last checksums feed index.db, .idx and .fss
    let blocks: Vec<(String, u32)> = files
        .iter()
        .filter_map(|f| block_index(f, "blk").map(|i| (f.clone(), i)))
        .collect();
    let mut lasts: BTreeMap<u32, ([u8; 8], [u8; 8])> = BTreeMap::new();
    if renamed {
        type Done = (u32, Option<([u8; 8], [u8; 8])>, u64, bool, Vec<Carried>);
        let outs: Vec<anyhow::Result<Done>> = crate::base::par::one_per_job(&blocks)
            .map(|(rel, i)| {
                // a block above a normal one's size (one huge record) is re-keyed while no
                // other is in memory, in a buffer malloc gives back when it is freed
                let p = src.join(rel);
                let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                let _big = block::big_block_guard(size.min(block::MAX_BLOCK_FILE));
                let mut raw =
                    Vec::with_capacity(crate::filestore::source::big_reservation(size) as usize);
                fs::File::open(&p)
                    .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut raw))
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                let b = rekey_block(raw, rel, *i, old, &new);
                write(rel, &b.data)?;
                Ok((*i, b.last, b.records, b.decompressed, b.damaged))
            })
            .collect();
        for o in outs {
            let (i, last, records, decompressed, damaged) = o?;
            if let Some(l) = last {
                lasts.insert(i, l);
            }
            rep.records += records;
            rep.blocks += 1;
            rep.decompressed += u64::from(decompressed);
            rep.damaged.extend(damaged);
        }
    }
    // meta.inf files as read and as written (stream and consumers), for their meta.sum (in
    // place the file read is gone once written)
    let mut metas: BTreeMap<String, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
    for rel in &files {
        let is_block = block_index(rel, "blk").is_some();
        if is_block && renamed {
            continue; // written above
        }
        if rel == "meta.inf" {
            let raw = read(rel)?;
            let mut m = meta::MetaInf::parse(&raw)
                .map_err(|e| anyhow::anyhow!("{}: meta.inf: {e}", src.display()))?;
            let ch = edit_stream_cfg(&mut m.json, rw);
            rep.changes.extend(ch.iter().cloned());
            let bytes = if ch.is_empty() {
                raw.clone()
            } else {
                go_json(&m.json)
            };
            write(rel, &bytes)?;
            metas.insert(rel.clone(), (raw, bytes));
        } else if rel == "meta.sum" || consumer_of(rel, "meta.sum").is_some() {
            // after the meta.inf files, below
        } else if rel == "msgs/index.db" && renamed {
            let raw = read(rel)?;
            write(rel, &rekey_index_db(raw, old, &new, &lasts, &mut rep))?;
        } else if let (Some(i), true) = (block_index(rel, "idx"), renamed) {
            let mut raw = read(rel)?;
            if let Some(at) = idx_lchk_at(&raw) {
                if let Some(n) = map_lchk(&raw[at..at + 8], lasts.get(&i)) {
                    raw[at..at + 8].copy_from_slice(&n);
                }
            }
            write(rel, &raw)?;
        } else if let (Some(i), true) = (block_index(rel, "fss"), renamed) {
            let raw = read(rel)?;
            write(rel, &rekey_fss(raw, rel, i, old, &new, &lasts, &mut rep))?;
        } else if let Some(c) = consumer_of(rel, "meta.inf") {
            let raw = read(rel)?;
            let bytes = match meta::MetaInf::parse(&raw) {
                Ok(mut m) if rw.rehome => {
                    let ch = standalone(&mut m.json, &format!("consumer {c}"), 0);
                    rep.changes.extend(ch.iter().cloned());
                    if ch.is_empty() {
                        raw.clone()
                    } else {
                        go_json(&m.json)
                    }
                }
                _ => raw.clone(),
            };
            write(rel, &bytes)?;
            metas.insert(rel.clone(), (raw, bytes));
        } else {
            keep(rel)?;
        }
    }
    // meta.sum files, over the meta.inf written, keyed by the new name
    for rel in &files {
        let (key_old, key_new, inf) = if rel == "meta.sum" {
            (old.to_string(), new.clone(), "meta.inf".to_string())
        } else if let Some(c) = consumer_of(rel, "meta.sum") {
            (
                format!("{old}/{c}"),
                format!("{new}/{c}"),
                format!("obs/{c}/meta.inf"),
            )
        } else {
            continue;
        };
        let stored = read(rel)?;
        let (old_inf, new_inf) = metas.get(&inf).cloned().unwrap_or_default();
        let ok_before = stored == meta::expected_sum(&key_old, &old_inf).as_bytes();
        if ok_before {
            write(rel, meta::expected_sum(&key_new, &new_inf).as_bytes())?;
        } else {
            // a consumer's meta.sum is not checked by the server: only the stream's is damage
            if rel == "meta.sum" {
                rep.damaged.push(Carried {
                    file: rel.clone(),
                    offset: None,
                    seq: None,
                    what: format!("meta.sum does not match meta.inf under {old:?}; kept as stored (the server skips the stream)"),
                });
            }
            write(rel, &stored)?;
        }
    }
    if durable {
        fsync_tree(dst)?;
    }
    Ok(rep)
}

/// Write `dst/rel` (through a temporary name, fsynced, renamed over what was there).
fn write_file(dst: &Path, rel: &str, data: &[u8], durable: bool) -> anyhow::Result<()> {
    let target = dst.join(rel);
    if let Some(parent) = target.parent() {
        fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(parent)?;
    }
    let tmp = tmp_name(&target);
    let _ = fs::remove_file(&tmp);
    if durable {
        crate::ops::staging::write_new_file(&tmp, data)?;
    } else {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| anyhow::anyhow!("{}: {e}", tmp.display()))?;
        io::Write::write_all(&mut f, data)
            .map_err(|e| anyhow::anyhow!("{}: {e}", tmp.display()))?;
    }
    fs::rename(&tmp, &target)
        .map_err(|e| anyhow::anyhow!("renaming {} into place: {e}", tmp.display()))?;
    Ok(())
}

/// Copy `from` to `dst/rel` (new file, 0600, fsynced), streaming.
fn copy_file(from: &Path, dst: &Path, rel: &str, durable: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let target = dst.join(rel);
    if let Some(parent) = target.parent() {
        fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(parent)?;
    }
    let mut r = fs::File::open(from).map_err(|e| anyhow::anyhow!("{}: {e}", from.display()))?;
    let mut w = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
        .map_err(|e| anyhow::anyhow!("{}: {e}", target.display()))?;
    io::copy(&mut r, &mut w).map_err(|e| anyhow::anyhow!("{}: {e}", target.display()))?;
    if durable {
        w.sync_all()
            .map_err(|e| anyhow::anyhow!("{}: {e}", target.display()))?;
    }
    Ok(())
}

fn tmp_name(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".jetdir-rename.tmp");
    PathBuf::from(s)
}

/// fsync every dir under `dir` (files are fsynced when written).
fn fsync_tree(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            fsync_tree(&e.path())?;
        }
    }
    crate::ops::staging::fsync_dir(dir)
}

/// `obs/<c>/<file>` → `c`.
fn consumer_of<'a>(rel: &'a str, file: &str) -> Option<&'a str> {
    let rest = rel.strip_prefix("obs/")?;
    let (c, f) = rest.split_once('/')?;
    (f == file).then_some(c)
}

fn rekey_index_db(
    mut raw: Vec<u8>,
    old: &str,
    new: &str,
    lasts: &BTreeMap<u32, ([u8; 8], [u8; 8])>,
    rep: &mut RewriteReport,
) -> Vec<u8> {
    if !index_db::trailer_ok(&raw, old) {
        rep.damaged.push(Carried {
            file: "msgs/index.db".into(),
            offset: None,
            seq: None,
            what: format!("index.db's checksum does not verify under {old:?}; kept as stored (the server rebuilds it from the blocks)"),
        });
        return raw;
    }
    let body_len = raw.len() - 8;
    if let Ok((db, used)) = index_db::parse_with_len(&raw[..body_len]) {
        if used >= 8 {
            if let Some(n) = map_lchk(&raw[used - 8..used], lasts.get(&db.last_block)) {
                raw[used - 8..used].copy_from_slice(&n);
            }
        }
    }
    let h = index_db::body_hash(&raw[..body_len], new);
    raw[body_len..].copy_from_slice(&h);
    raw
}

fn rekey_fss(
    mut raw: Vec<u8>,
    rel: &str,
    i: u32,
    old: &str,
    new: &str,
    lasts: &BTreeMap<u32, ([u8; 8], [u8; 8])>,
    rep: &mut RewriteReport,
) -> Vec<u8> {
    if raw.len() < legacy::FSS_MIN_LEN {
        return raw;
    }
    let body_len = raw.len() - 16;
    let ok = hash::hh64(&legacy::block_key(old, i), &[&raw[..body_len]]).to_le_bytes()
        == raw[body_len..body_len + 8];
    if !ok {
        rep.damaged.push(Carried {
            file: rel.into(),
            offset: None,
            seq: None,
            what: format!("hash does not verify under {old:?}; kept as stored"),
        });
        return raw;
    }
    if let Some(n) = map_lchk(&raw[body_len + 8..], lasts.get(&i)) {
        raw[body_len + 8..].copy_from_slice(&n);
    }
    let h = hash::hh64(&legacy::block_key(new, i), &[&raw[..body_len]]).to_le_bytes();
    raw[body_len..body_len + 8].copy_from_slice(&h);
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_rules() {
        assert!(subjects_overlap("orders.>", "orders.new"));
        assert!(subjects_overlap("orders.*", "orders.new"));
        assert!(subjects_overlap("*.new", "orders.*"));
        assert!(!subjects_overlap("orders.>", "orders"));
        assert!(!subjects_overlap("orders.*", "orders.a.b"));
        assert!(!subjects_overlap("a.b", "a.c"));
        assert!(subjects_overlap(">", "x"));
    }

    #[test]
    fn stream_names() {
        assert!(valid_stream_name("ORDERS2"));
        for bad in ["", "A.B", "A B", "A/B", "A*", ".A"] {
            assert!(!valid_stream_name(bad), "{bad}");
        }
    }

    #[test]
    fn go_json_escapes_like_go() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"subjects":["a.\u003e"],"x":"<&>"}"#).unwrap();
        assert_eq!(
            go_json(&m),
            br#"{"subjects":["a.\u003e"],"x":"\u003c\u0026\u003e"}"#.to_vec()
        );
    }

    /// Every stream of a real sample, renamed into a fresh dir: verify finds nothing under the
    /// new name and the same state; the original name no longer verifies the copy.
    fn renamed_sample_verifies(sample: &str) {
        use crate::check::store::verify_stream_dir;
        use crate::filestore::discover::StreamDir;
        let t = crate::testdata::sample(sample);
        let streams = t.path().join(sample).join("store/jetstream/$G/streams");
        let out = tempfile::tempdir().unwrap();
        let mut n = 0;
        for e in fs::read_dir(&streams).unwrap().flatten() {
            let old = e.file_name().to_string_lossy().into_owned();
            let new = format!("{old}_R");
            let dst = out.path().join(&new);
            let rw = Rewrite {
                name: Some(new.clone()),
                ..Default::default()
            };
            // half the streams in place (as extract does in its staging dir), half copied
            let rep = if n % 2 == 0 {
                rewrite_dir(&e.path(), &dst, &old, &rw, true).unwrap()
            } else {
                copy_tree(&e.path(), &dst);
                rewrite_dir(&dst, &dst, &old, &rw, true).unwrap()
            };
            assert!(rep.damaged.is_empty(), "{sample} {old}: {:?}", rep.damaged);
            let opts = crate::check::Options::default();
            let sd = |name: &str, dir: &Path| StreamDir {
                account: "$G".into(),
                name: name.into(),
                dir: dir.to_path_buf(),
            };
            let (a, pa) = verify_stream_dir(
                &sd(&old, &e.path()),
                &opts,
                &crate::base::progress::NoProgress,
            );
            let (b, pb) =
                verify_stream_dir(&sd(&new, &dst), &opts, &crate::base::progress::NoProgress);
            assert_eq!(pa.len(), pb.len(), "{sample} {old} -> {new}: {pb:#?}");
            assert!(
                pb.iter()
                    .all(|p| p.severity != crate::base::problem::Severity::Error),
                "{pb:#?}"
            );
            assert_eq!(
                (
                    a.messages,
                    a.bytes,
                    a.first_seq,
                    a.last_seq,
                    a.deleted,
                    a.subjects
                ),
                (
                    b.messages,
                    b.bytes,
                    b.first_seq,
                    b.last_seq,
                    b.deleted,
                    b.subjects
                ),
                "{sample} {old}"
            );
            assert_eq!(a.consumers.len(), b.consumers.len());
            if rep.records > 0 {
                // the copy is really re-keyed: under the old name it no longer verifies
                let (_, po) =
                    verify_stream_dir(&sd(&old, &dst), &opts, &crate::base::progress::NoProgress);
                assert!(po
                    .iter()
                    .any(|p| p.severity == crate::base::problem::Severity::Error));
            }
            n += 1;
        }
        assert!(n > 0);
    }

    fn copy_tree(src: &Path, dst: &Path) {
        fs::create_dir_all(dst).unwrap();
        for e in fs::read_dir(src).unwrap().flatten() {
            let d = dst.join(e.file_name());
            if e.path().is_dir() {
                copy_tree(&e.path(), &d);
            } else {
                fs::copy(e.path(), &d).unwrap();
            }
        }
    }

    #[test]
    fn renamed_samples_verify() {
        for s in ["v2.15.1-plain", "v2.15.1-s2", "v2.9.10-legacy"] {
            renamed_sample_verifies(s);
        }
    }

    #[test]
    fn damaged_record_is_not_laundered() {
        let t = crate::testdata::sample("v2.15.1-plain");
        let src = crate::testdata::stream_dir(&t, "v2.15.1-plain", "ORDERS");
        let blk = src.join("msgs/1.blk");
        let mut b = fs::read(&blk).unwrap();
        b[40] ^= 0xff; // inside the first record's subject/payload
        fs::write(&blk, b).unwrap();
        let out = tempfile::tempdir().unwrap();
        let dst = out.path().join("NEW");
        let rw = Rewrite {
            name: Some("NEW".into()),
            ..Default::default()
        };
        let rep = rewrite_dir(&src, &dst, "ORDERS", &rw, false).unwrap();
        assert_eq!(rep.damaged.len(), 1, "{:?}", rep.damaged);
        assert_eq!(rep.damaged[0].offset, Some(0));
        let sd = crate::filestore::discover::StreamDir {
            account: "$G".into(),
            name: "NEW".into(),
            dir: dst,
        };
        let (_, p) = crate::check::store::verify_stream_dir(
            &sd,
            &crate::check::Options::default(),
            &crate::base::progress::NoProgress,
        );
        assert!(
            p.iter()
                .any(|p| p.kind == crate::base::problem::Kind::RecordChecksum),
            "{p:#?}"
        );
    }

    #[test]
    fn standalone_drops_replicas_and_placement() {
        let mut m: Map<String, Value> = serde_json::from_str(
            r#"{"name":"S","num_replicas":3,"placement":{"cluster":"C1","tags":["az:1"]}}"#,
        )
        .unwrap();
        let ch = edit_stream_cfg(
            &mut m,
            &Rewrite {
                rehome: true,
                ..Default::default()
            },
        );
        assert_eq!(m.get("num_replicas"), Some(&Value::from(1)));
        assert!(!m.contains_key("placement"));
        assert_eq!(ch.len(), 2, "{ch:?}");
        let mut c: Map<String, Value> =
            serde_json::from_str(r#"{"name":"D","num_replicas":3}"#).unwrap();
        assert_eq!(standalone(&mut c, "consumer D", 0).len(), 1);
        assert_eq!(c.get("num_replicas"), Some(&Value::from(0)));
        // R1 without placement: nothing to change
        let mut r1: Map<String, Value> = serde_json::from_str(r#"{"num_replicas":1}"#).unwrap();
        assert!(standalone(&mut r1, "stream", 1).is_empty());
    }
}
