//! tgz: a gzip tarball of the stream dir(s), entries `<stream>/...`, for GNU tar to extract into
//! a stopped server's `jetstream/<ACC>/streams/`. Files are copied as they are (compressed
//! blocks stay compressed: 2.10+ reads them), except that meta.sum files are recomputed, an
//! index.db that disagrees with the blocks is left out (the server rebuilds it), one newer than
//! the target release reads is re-encoded at its version, and thw.db / sched.db / sources.db
//! go in only when the target reads them and verification found them sound.
use super::StreamSrc;
use crate::backup::tar_write::{self, Style};
use crate::base::progress::Progress;
use crate::filestore::meta::expected_sum;
use flate2::{Compression, GzBuilder};
use std::fs;
use std::io::Write;

pub(super) fn write<W: Write>(
    w: W,
    srcs: &[StreamSrc],
    progress: &dyn Progress,
) -> anyhow::Result<W> {
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(w, Compression::default());
    let mut b = tar::Builder::new(gz);
    for src in srcs {
        let st = Style {
            mtime: src.mtime,
            file_mode: 0o640,
            dir_mode: 0o750,
            owner: "",
        };
        let dir = &src.sd.dir;
        // The server keys meta.sum by the directory name: it must be the stream's name.
        let n = src.cfg_name.as_str();
        tar_write::dir(&mut b, n, &st)?;
        tar_write::file(&mut b, &format!("{n}/meta.inf"), &src.meta.raw, &st)?;
        let sum = expected_sum(n, &src.meta.raw);
        tar_write::file(&mut b, &format!("{n}/meta.sum"), sum.as_bytes(), &st)?;
        if src.aux.contains(&"sources.db") {
            tar_write::file(
                &mut b,
                &format!("{n}/sources.db"),
                &crate::ops::target_dir::read(&dir.join("sources.db"))?,
                &st,
            )?;
        }
        tar_write::dir(&mut b, &format!("{n}/msgs"), &st)?;
        for i in &src.blocks {
            for ext in ["idx", "fss", "blk"] {
                let rel = format!("msgs/{i}.{ext}");
                if ext != "blk" && !src.legacy {
                    continue;
                }
                // read whole, as always (gzip's bytes depend on how its input is fed), into
                // a buffer malloc maps on its own when it is a huge record's block
                match read_whole(&dir.join(&rel)) {
                    Ok(d) => {
                        tar_write::file(&mut b, &format!("{n}/{rel}"), &d, &st)?;
                        if ext == "blk" {
                            progress.advance(
                                d.len() as u64,
                                &format!("{} > {} {rel}", src.sd.account, src.sd.name),
                            );
                        }
                    }
                    Err(e) if ext == "blk" => {
                        anyhow::bail!("{}: {e}", dir.join(&rel).display())
                    }
                    Err(_) => {}
                }
            }
        }
        if src.index_db_ok {
            if let Some(d) = super::index_db_for_target(src)? {
                tar_write::file(&mut b, &format!("{n}/msgs/index.db"), &d, &st)?;
            }
        }
        for rel in src.aux.iter().filter(|r| r.starts_with("msgs/")) {
            tar_write::file(
                &mut b,
                &format!("{n}/{rel}"),
                &crate::ops::target_dir::read(&dir.join(rel))?,
                &st,
            )?;
        }
        tar_write::dir(&mut b, &format!("{n}/obs"), &st)?;
        for c in &src.consumers {
            let base = format!("{n}/obs/{}", c.name);
            tar_write::dir(&mut b, &base, &st)?;
            tar_write::file(&mut b, &format!("{base}/meta.inf"), &c.meta.raw, &st)?;
            let sum = expected_sum(&format!("{n}/{}", c.name), &c.meta.raw);
            tar_write::file(&mut b, &format!("{base}/meta.sum"), sum.as_bytes(), &st)?;
            if let Some(o) = &c.o_dat {
                tar_write::file(&mut b, &format!("{base}/o.dat"), o, &st)?;
            }
        }
    }
    let gz = b.into_inner()?;
    Ok(gz.finish()?)
}

/// The file's bytes; a buffer above a normal block's size is reserved past glibc's mmap
/// threshold, so that it is given back when freed
/// ([`big_reservation`](crate::filestore::source::big_reservation)).
fn read_whole(p: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = fs::File::open(p)?;
    let len = f.metadata()?.len();
    let mut v = Vec::with_capacity(crate::filestore::source::big_reservation(len) as usize);
    f.read_to_end(&mut v)?;
    Ok(v)
}
