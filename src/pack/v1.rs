//! V1 payload: a tar of the stream dir as the server's V1 snapshot writes it, in S2 framing
//! (compressed on all cores by [`ParFrameWriter`]).
use super::tarw::{self, Style};
use super::StreamSrc;
use crate::meta::expected_sum;
use crate::s2enc::ParFrameWriter;
use crate::scan;
use crate::verify::Progress;
use std::fs;
use std::io::{Read, Write};

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
        // One buffer for every block: no fresh 8 MiB allocation (and page faults) per block.
        raw.clear();
        fs::File::open(dir.join(&rel))
            .and_then(|mut f| f.read_to_end(&mut raw))
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(&rel).display()))?;
        // Decompressed, as the server snapshots it; an undecodable block (only with
        // --allow-damaged) goes in as it is.
        match scan::plain_block(&raw) {
            Ok((plain, _)) => tarw::file(&mut b, &rel, &plain, &st)?,
            Err(_) => tarw::file(&mut b, &rel, &raw, &st)?,
        }
        progress.advance(raw.len() as u64, &rel);
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
