//! V1 payload: a tar of the stream dir as the server's V1 snapshot writes it, in S2 framing
//! (compressed on all cores by [`ParFrameWriter`]). Blocks of 2.10+ stores are laid out so
//! that 2.9 restores them as well ([`compat`]).
use super::blockio;
use super::compat::{self, Layout};
use super::StreamSrc;
use crate::backup::tar_write::{self, Style};
use crate::base::progress::Progress;
use crate::filestore::meta::expected_sum;
use crate::s2::encode::ParFrameWriter;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

/// Member order: meta.inf, meta.sum, per block the `.idx` (`.fss` too for 2.9 stores) and
/// the plain `.blk`, `msgs/index.db` when the source's is consistent, then
/// `obs/<c>/{meta.inf,meta.sum,o.dat}`. Returns notes on blocks 2.9 will not be able to read.
pub(super) fn write<W: Write + Send + 'static>(
    w: W,
    src: &StreamSrc,
    progress: &dyn Progress,
) -> anyhow::Result<(W, Vec<String>)> {
    if !src.legacy {
        return write_compat(w, src, progress);
    }
    let st = style(src);
    let mut b = tar::Builder::new(ParFrameWriter::new(w));
    let dir = &src.sd.dir;
    head(&mut b, src, &st)?;
    let mut raw = Vec::new();
    for i in &src.blocks {
        if src.legacy {
            for ext in ["idx", "fss"] {
                let rel = format!("msgs/{i}.{ext}");
                if let Ok(d) = fs::read(dir.join(&rel)) {
                    tar_write::file(&mut b, &rel, &d, &st)?;
                }
            }
        }
        let rel = format!("msgs/{i}.blk");
        let path = dir.join(&rel);
        let len = block(&mut b, &path, &rel, &st, &mut raw)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        progress.advance(len, &format!("{} > {} {rel}", src.sd.account, src.sd.name));
    }
    if src.index_db_ok {
        if let Some(d) = super::index_db_for_target(src)? {
            tar_write::file(&mut b, "msgs/index.db", &d, &st)?;
        }
    }
    aux(&mut b, src, &st)?;
    consumers(&mut b, src, &st)?;
    let frame = b.into_inner()?;
    Ok((frame.finish()?, Vec::new()))
}

/// A 2.10+ stream: tombstone-free blocks with placeholders and a `.idx` each, then the
/// index.db that matches them.
fn write_compat<W: Write + Send + 'static>(
    w: W,
    src: &StreamSrc,
    progress: &dyn Progress,
) -> anyhow::Result<(W, Vec<String>)> {
    let st = style(src);
    let plan = compat::plan(src)?;
    let mut b = tar::Builder::new(ParFrameWriter::new(w));
    head(&mut b, src, &st)?;
    let dir = &src.sd.dir;
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    let mut last_tail = [0u8; 8];
    // A never-used stream: no block at all. 2.9 would turn an empty block into first_ts 1970
    // (a rebuilt block has timestamp 0); without one both servers start it afresh, as the
    // source is (first 0, last 0).
    let blocks = if plan.never_used() {
        &[][..]
    } else {
        &plan.blocks[..]
    };
    for bp in blocks {
        let rel = format!("msgs/{}.blk", bp.index);
        let path = dir.join(&rel);
        let mut blk = blockio::open(&path, &mut buf)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        last_tail = compat_block(
            &mut b,
            &plan,
            bp,
            &src.cfg_name,
            &mut blk,
            &st,
            &mut scratch,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        progress.advance(
            blk.size,
            &format!("{} > {} {rel}", src.sd.account, src.sd.name),
        );
        blockio::release(&mut buf);
    }
    let frame = tail_members(b, src, &plan, last_tail, !blocks.is_empty(), &st)?;
    Ok((frame.finish()?, plan.notes))
}

/// One block of a 2.10+ stream as `bp` plans it: its `.idx` and the rewritten block (or the
/// block as it is); returns the last 8 bytes written (the block's last checksum).
pub(super) fn compat_block<W: Write>(
    b: &mut tar::Builder<W>,
    plan: &compat::Plan,
    bp: &compat::BlockPlan,
    cfg_name: &str,
    blk: &mut blockio::Block<'_>,
    st: &Style,
    scratch: &mut Vec<u8>,
) -> io::Result<[u8; 8]> {
    let rel = format!("msgs/{}.blk", bp.index);
    // A compressed block that cannot be decoded (only with --allow-damaged) goes in as it is.
    let layout = if blk.undecodable().is_none() {
        compat::rewrite(plan, bp, cfg_name, blk.records())
    } else {
        Layout::Keep
    };
    match &layout {
        Layout::Keep => {
            let n = blk.len();
            tar_write::file_header(b, &rel, n, st)?;
            let w = b.get_mut();
            blk.copy_all(w, scratch)?;
            tar_write::pad(w, n)?;
            blk.tail()
        }
        Layout::Rewritten {
            idx,
            pieces,
            len,
            tail,
        } => {
            if let Some(x) = idx {
                tar_write::file(b, &format!("msgs/{}.idx", bp.index), x, st)?;
            }
            tar_write::file_header(b, &rel, *len, st)?;
            let key = crate::filestore::block::block_key(cfg_name, bp.index);
            let w = b.get_mut();
            compat::write_pieces(pieces, &key, blk, w, scratch)?;
            tar_write::pad(w, *len)?;
            Ok(*tail)
        }
    }
}

/// What follows the blocks of a 2.10+ stream: the index.db that matches them (when the source
/// has a usable one, the target reads one and a block was written), the auxiliary files and
/// the consumers; returns the S2 writer, to finish.
pub(super) fn tail_members<W: Write>(
    mut b: tar::Builder<W>,
    src: &StreamSrc,
    plan: &compat::Plan,
    last_tail: [u8; 8],
    any_block: bool,
    st: &Style,
) -> anyhow::Result<W> {
    let version = src.index_db_version();
    if let Some(db) = version
        .and_then(|v| compat::index_db(plan, &src.cfg_name, last_tail, v))
        .filter(|_| any_block)
    {
        tar_write::file(&mut b, "msgs/index.db", &db, st)?;
    }
    aux(&mut b, src, st)?;
    consumers(&mut b, src, st)?;
    Ok(b.into_inner()?)
}

fn style(src: &StreamSrc) -> Style {
    style_at(src.mtime)
}

/// The tar headers' style: mode 0600 (dirs 0700), owner `nats`, `mtime` (seconds).
pub(super) fn style_at(mtime: u64) -> Style {
    Style {
        mtime,
        file_mode: 0o600,
        dir_mode: 0o700,
        owner: "nats",
    }
}

/// meta.inf and meta.sum.
fn head<W: Write>(b: &mut tar::Builder<W>, src: &StreamSrc, st: &Style) -> io::Result<()> {
    head_of(b, &src.meta.raw, &src.cfg_name, st)
}

/// meta.inf (`meta_raw`) and its meta.sum for the stream named `cfg_name`.
pub(super) fn head_of<W: Write>(
    b: &mut tar::Builder<W>,
    meta_raw: &[u8],
    cfg_name: &str,
    st: &Style,
) -> io::Result<()> {
    tar_write::file(b, "meta.inf", meta_raw, st)?;
    let sum = expected_sum(cfg_name, meta_raw);
    tar_write::file(b, "meta.sum", sum.as_bytes(), st)
}

/// `msgs/thw.db`, `msgs/sched.db`, `sources.db` as the source holds them. The blocks written
/// keep every sequence and the last sequence, so the positions these files record (up to the
/// source's last sequence + 1) stay true for the restored stream.
fn aux<W: Write>(b: &mut tar::Builder<W>, src: &StreamSrc, st: &Style) -> anyhow::Result<()> {
    for rel in &src.aux {
        let p = src.sd.dir.join(rel);
        let d = fs::read(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        tar_write::file(b, rel, &d, st)?;
    }
    Ok(())
}

/// `obs/<c>/{meta.inf,meta.sum,o.dat}` of every consumer packed.
fn consumers<W: Write>(b: &mut tar::Builder<W>, src: &StreamSrc, st: &Style) -> io::Result<()> {
    for c in &src.consumers {
        let base = format!("obs/{}", c.name);
        tar_write::file(b, &format!("{base}/meta.inf"), &c.meta.raw, st)?;
        let sum = expected_sum(&format!("{}/{}", src.cfg_name, c.name), &c.meta.raw);
        tar_write::file(b, &format!("{base}/meta.sum"), sum.as_bytes(), st)?;
        if let Some(o) = &c.o_dat {
            tar_write::file(b, &format!("{base}/o.dat"), o, st)?;
        }
    }
    Ok(())
}

/// Appends one block file as a tar member; returns its size on disk. A plain block is read
/// straight into the compressor's buffers; a compressed one is decompressed, as the server
/// snapshots it (an undecodable one, only with --allow-damaged, goes in as it is).
fn block<W: Write + Send + 'static>(
    b: &mut tar::Builder<ParFrameWriter<W>>,
    path: &Path,
    rel: &str,
    st: &Style,
    raw: &mut Vec<u8>,
) -> io::Result<u64> {
    let mut f = crate::ops::target_dir::open(path)?;
    let len = f.metadata()?.len();
    let mut head = [0u8; 8];
    let got = read_up_to(&mut f, &mut head)?;
    let head = head.get(..got).unwrap_or(&[]);
    if !crate::filestore::block::is_cmp_block(head) {
        tar_write::file_header(b, rel, len, st)?;
        let w = b.get_mut();
        w.write_all(head)?;
        w.read_from(&mut f, len - got as u64)?;
        tar_write::pad(w, len)?;
        return Ok(len);
    }
    // One buffer for every compressed block: no fresh allocation (and page faults) per block.
    crate::filestore::block::reserve_for_block(
        raw,
        len.min(crate::filestore::block::MAX_BLOCK_FILE),
    );
    raw.extend_from_slice(head);
    f.read_to_end(raw)?;
    match crate::filestore::block::plain_block(raw) {
        Ok((plain, _)) => tar_write::file(b, rel, &plain, st)?,
        Err(_) => tar_write::file(b, rel, raw, st)?,
    }
    Ok(raw.len() as u64)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_up_to(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match f.read(rest) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
