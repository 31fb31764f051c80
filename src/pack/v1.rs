//! V1 payload: a tar of the stream dir as the server's V1 snapshot writes it, in S2 framing
//! (compressed on all cores by [`ParFrameWriter`]).
use super::tarw::{self, Style};
use super::StreamSrc;
use crate::meta::expected_sum;
use crate::s2enc::ParFrameWriter;
use crate::scan;
use crate::verify::Progress;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

/// Member order: meta.inf, meta.sum, per block (`.idx`, `.fss` for 2.9 stores) the plain
/// `.blk`, `msgs/index.db` when consistent, then `obs/<c>/{meta.inf,meta.sum,o.dat}`.
pub(super) fn write<W: Write + Send + 'static>(
    w: W,
    src: &StreamSrc,
    progress: &dyn Progress,
) -> anyhow::Result<W> {
    let st = Style {
        mtime: src.mtime,
        file_mode: 0o600,
        dir_mode: 0o700,
        owner: "nats",
    };
    let mut b = tar::Builder::new(ParFrameWriter::new(w));
    let dir = &src.sd.dir;
    tarw::file(&mut b, "meta.inf", &src.meta.raw, &st)?;
    let sum = expected_sum(&src.cfg_name, &src.meta.raw);
    tarw::file(&mut b, "meta.sum", sum.as_bytes(), &st)?;
    let mut raw = Vec::new();
    for i in &src.blocks {
        if src.legacy {
            for ext in ["idx", "fss"] {
                let rel = format!("msgs/{i}.{ext}");
                if let Ok(d) = fs::read(dir.join(&rel)) {
                    tarw::file(&mut b, &rel, &d, &st)?;
                }
            }
        }
        let rel = format!("msgs/{i}.blk");
        let path = dir.join(&rel);
        let len = block(&mut b, &path, &rel, &st, &mut raw)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        progress.advance(len, &rel);
    }
    if src.index_db_ok {
        let d = fs::read(dir.join("msgs/index.db"))?;
        tarw::file(&mut b, "msgs/index.db", &d, &st)?;
    }
    for c in &src.consumers {
        let base = format!("obs/{}", c.name);
        tarw::file(&mut b, &format!("{base}/meta.inf"), &c.meta.raw, &st)?;
        let sum = expected_sum(&format!("{}/{}", src.cfg_name, c.name), &c.meta.raw);
        tarw::file(&mut b, &format!("{base}/meta.sum"), sum.as_bytes(), &st)?;
        if let Some(o) = &c.o_dat {
            tarw::file(&mut b, &format!("{base}/o.dat"), o, &st)?;
        }
    }
    let frame = b.into_inner()?;
    Ok(frame.finish()?)
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
    let mut f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = [0u8; 8];
    let got = read_up_to(&mut f, &mut head)?;
    let head = head.get(..got).unwrap_or(&[]);
    if !crate::s2::is_cmp_block(head) {
        tarw::file_header(b, rel, len, st)?;
        let w = b.get_mut();
        w.write_all(head)?;
        w.read_from(&mut f, len - got as u64)?;
        tarw::pad(w, len)?;
        return Ok(len);
    }
    // One buffer for every compressed block: no fresh allocation (and page faults) per block.
    raw.clear();
    raw.extend_from_slice(head);
    f.read_to_end(raw)?;
    match scan::plain_block(raw) {
        Ok((plain, _)) => tarw::file(b, rel, &plain, st)?,
        Err(_) => tarw::file(b, rel, raw, st)?,
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
