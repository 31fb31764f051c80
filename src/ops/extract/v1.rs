//! V1 backups and tarballs: the members are the stream directory's files; write them as they
//! are (regular files of the stream layout only, as [`walk_tar`] accepts them).
use crate::backup::tar_walk::{walk_tar, TarMember, TarOptions, TarSummary};
use crate::base::problem::{Kind, Location, Problem};
use crate::filestore::encrypted::EncryptedDir;
use crate::filestore::keys::AssetKey;
use crate::filestore::layout::StreamFile;
use crate::filestore::source::StreamSource;
use crate::ops::staging::Stage;
use std::io::{self, Read};

/// Largest member of each kind accepted (decompression-bomb guard): the largest such file a
/// server writes ([`StreamFile::max_size`]).
pub(crate) fn member_limit(l: &StreamFile) -> u64 {
    l.max_size()
}

/// Read the first `meta.inf` of a tar stream (stops reading right after it).
pub(crate) fn peek_meta_inf<R: Read>(r: R, opts: &TarOptions) -> (Option<Vec<u8>>, TarSummary) {
    let mut found: Option<Vec<u8>> = None;
    let sum = walk_tar(r, opts, |m, rd| {
        if m.layout == StreamFile::MetaInf {
            let mut v = Vec::new();
            rd.take(member_limit(&StreamFile::MetaInf))
                .read_to_end(&mut v)?;
            found = Some(v);
            return Err(io::Error::other("found meta.inf"));
        }
        Ok(())
    });
    (found, sum)
}

#[derive(Debug, Default)]
pub(crate) struct V1Result {
    pub(crate) summary: TarSummary,
    pub(crate) meta_inf: Option<Vec<u8>>,
    pub(crate) meta_sum: Option<Vec<u8>>,
    pub(crate) blocks: u64,
    pub(crate) consumers: Vec<String>,
    pub(crate) skipped: Vec<String>,
    pub(crate) problems: Vec<Problem>,
    /// A limit was exceeded, a member was hostile or could not be written: do not use.
    pub(crate) fatal: bool,
}

pub(crate) struct V1Input<'a> {
    pub(crate) opts: &'a TarOptions,
    /// Total bytes of all members accepted (from backup.json's state when known).
    pub(crate) total_limit: u64,
    /// A tarball of an encrypted stream dir opened with its keys: every file is written in
    /// plaintext (blocks decrypted as they stream by, the small files from its plaintext
    /// view), the key files are left out.
    pub(crate) enc: Option<&'a EncryptedDir>,
}

/// A block member decrypted as it is read: its keystream XORed in at the member's offset.
struct Decrypting<'k, R> {
    inner: R,
    key: &'k AssetKey,
    offset: u64,
}

impl<R: Read> Read for Decrypting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.key.xor_block(self.offset, &mut buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

/// Walk the decoded tar `r` and write every accepted member into `sink`.
pub(crate) fn extract_v1<R: Read>(r: R, inp: &V1Input, sink: &mut Stage) -> io::Result<V1Result> {
    let mut res = V1Result::default();
    let mut total: u64 = 0;
    let mut write_err: Option<io::Error> = None;
    sink.dir("msgs")?;
    sink.dir("obs")?;
    let loc = |m: &TarMember| Location {
        account: inp.opts.account.clone(),
        stream: inp.opts.stream.clone(),
        file: Some(format!("{}:{}", inp.opts.label, m.path)),
        offset: Some(m.header_offset),
        ..Default::default()
    };
    let mut problems = Vec::new();
    let mut fatal = false;
    let summary = walk_tar(r, inp.opts, |m, rd| {
        if m.layout == StreamFile::ErrorsTxt {
            let mut v = Vec::new();
            rd.take(4096).read_to_end(&mut v)?;
            problems.push(Problem::new(
                Kind::ExtractErrorsTxt,
                loc(m),
                format!(
                    "the backup holds errors.txt (not written): {}",
                    String::from_utf8_lossy(&v).trim()
                ),
            ));
            res.skipped.push(m.path.clone());
            return Ok(());
        }
        let limit = member_limit(&m.layout);
        total = total.saturating_add(m.size);
        if m.size > limit || total > inp.total_limit {
            problems.push(Problem::new(
                Kind::ExtractLimit,
                loc(m),
                if m.size > limit {
                    format!(
                        "member of {} bytes is larger than the {limit} accepted for it",
                        m.size
                    )
                } else {
                    format!(
                        "members add up to more than the {} bytes the backup's state allows",
                        inp.total_limit
                    )
                },
            ));
            fatal = true;
            return Err(io::Error::other("limit exceeded"));
        }
        if let Some(e) = inp.enc {
            // plaintext: no key files; blocks decrypted; small files from the plaintext view
            if m.layout.is_key() {
                return Ok(());
            }
            let plain = match &m.layout {
                StreamFile::Block(n) => {
                    let key = u32::try_from(*n)
                        .map_err(|_| "block number".to_string())
                        .and_then(|n| e.block_key(n).map_err(str::to_string));
                    let k = match key {
                        Ok(k) => k,
                        Err(why) => {
                            res.skipped
                                .push(format!("{} (cannot be decrypted: {why})", m.path));
                            return Ok(());
                        }
                    };
                    let mut rd = Decrypting {
                        inner: rd,
                        key: k,
                        offset: 0,
                    };
                    return match sink.copy_file(&m.path, &mut rd, m.size) {
                        Ok(_) => {
                            res.blocks += 1;
                            Ok(())
                        }
                        Err(err)
                            if err.kind() == io::ErrorKind::InvalidData
                                || err.kind() == io::ErrorKind::UnexpectedEof =>
                        {
                            Err(err)
                        }
                        Err(err) => {
                            write_err = Some(err);
                            Err(io::Error::other("write failed"))
                        }
                    };
                }
                _ => e.read(&m.path),
            };
            let v = match plain {
                Ok(Some(v)) => v,
                Ok(None) => return Ok(()),
                Err(why) => {
                    res.skipped.push(format!("{} ({why})", m.path));
                    return Ok(());
                }
            };
            if let Err(err) = sink.write_file(&m.path, &v) {
                write_err = Some(err);
                return Err(io::Error::other("write failed"));
            }
            match &m.layout {
                StreamFile::MetaInf => res.meta_inf = Some(v),
                StreamFile::MetaSum => res.meta_sum = Some(v),
                StreamFile::ConsumerMetaInf(c) => res.consumers.push(c.clone()),
                _ => {}
            }
            return Ok(());
        }
        let keep_small = matches!(m.layout, StreamFile::MetaInf | StreamFile::MetaSum);
        if keep_small {
            let mut v = Vec::new();
            rd.take(limit).read_to_end(&mut v)?;
            if let Err(e) = sink.write_file(&m.path, &v) {
                write_err = Some(e);
                return Err(io::Error::other("write failed"));
            }
            if m.layout == StreamFile::MetaInf {
                res.meta_inf = Some(v);
            } else {
                res.meta_sum = Some(v);
            }
            return Ok(());
        }
        match sink.copy_file(&m.path, rd, m.size) {
            Ok(_) => {}
            Err(e) => {
                // A read error of the archive is the walker's to report; a write error is ours.
                if e.kind() == io::ErrorKind::InvalidData
                    || e.kind() == io::ErrorKind::UnexpectedEof
                {
                    return Err(e);
                }
                write_err = Some(e);
                return Err(io::Error::other("write failed"));
            }
        }
        match &m.layout {
            StreamFile::Block(_) => res.blocks += 1,
            StreamFile::ConsumerMetaInf(c) => res.consumers.push(c.clone()),
            _ => {}
        }
        Ok(())
    });
    if let Some(e) = write_err {
        return Err(e);
    }
    if summary
        .problems
        .iter()
        .any(|p| p.kind == Kind::ArchiveHostileMember)
    {
        fatal = true;
    }
    res.problems = problems;
    res.fatal = fatal;
    res.summary = summary;
    Ok(res)
}
