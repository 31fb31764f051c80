//! Walk a tar stream of a stream directory (V1 backup payload, `.tar`, `.tgz`) without unpacking,
//! refusing everything that is not a plain file of the stream layout.
//!
//! The tar crate is used in raw mode so PAX / GNU long-name headers are handled here with size
//! limits (the crate would read them whole into memory). Each accepted member's bytes are handed
//! to a callback as they stream by; nothing is buffered beyond one 32 KiB copy buffer.
//!
//! Locations in problems: `file` = `<label>:<member path as written in the archive>` and
//! `offset` = the member's header offset in the decoded tar stream (for S2 decoding errors:
//! `file` = `<label>` and the offset in the compressed file).
use crate::base::problem::{Kind, Location, Problem};
use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Read};
use std::rc::Rc;

const BLOCK: u64 = 512;
/// Limit for PAX extended headers and GNU long names (real ones are < 200 bytes).
const MAX_EXT_HEADER: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct TarOptions {
    /// Name of the archive in problem locations, e.g. `stream.tar.s2` or `ORDERS.tgz`.
    pub label: String,
    pub account: Option<String>,
    pub stream: Option<String>,
    /// Largest member accepted (decompression-bomb guard); larger ones are hostile.
    pub max_member_size: u64,
    /// Most members accepted; the walk stops after that many.
    pub max_members: u64,
    /// Strip one top-level directory shared by every member (`ORDERS/meta.inf` → `meta.inf`).
    pub strip_top_dir: bool,
}

impl Default for TarOptions {
    fn default() -> Self {
        TarOptions {
            label: "stream.tar.s2".into(),
            account: None,
            stream: None,
            max_member_size: 1 << 30,
            max_members: 1_000_000,
            strip_top_dir: true,
        }
    }
}

/// What a member is in the stream directory layout.
use crate::filestore::layout::StreamFile;

/// An accepted regular-file member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    /// Normalised path relative to the stream directory (`/` separators, top dir stripped).
    pub path: String,
    pub size: u64,
    /// Offset of the member's data in the decoded tar stream.
    pub offset: u64,
    /// Offset of the member's (ustar) header in the decoded tar stream.
    pub header_offset: u64,
    pub layout: StreamFile,
}

/// Result of a walk.
#[derive(Debug, Clone, Default)]
pub struct TarSummary {
    /// Accepted members, in archive order.
    pub members: Vec<TarMember>,
    /// The stripped top-level directory, if any (the stream dir's name: for a deeper path,
    /// `…/<ACC>/streams/<STREAM>/`, its last component).
    pub top_dir: Option<String>,
    /// The account dir when the members sit under `…/<ACC>/streams/<STREAM>/` (a tarball made
    /// of a stream dir named by its path in the store, e.g. `tar czf S.tgz
    /// jetstream/ACC/streams/S`): the account an encrypted stream's keys are derived with.
    pub account_dir: Option<String>,
    /// Directory entries seen (ignored).
    pub directories: u64,
    /// An end-of-archive zero block was read.
    pub end_marker: bool,
    /// Bytes after the end-of-archive block (zero padding included).
    pub trailing_bytes: u64,
    /// Decoded tar bytes read in total.
    pub tar_bytes: u64,
    /// The walk stopped early (corruption, truncation, callback error, limits).
    pub aborted: bool,
    pub problems: Vec<Problem>,
}

impl TarSummary {
    pub fn member(&self, path: &str) -> Option<&TarMember> {
        self.members.iter().find(|m| m.path == path)
    }

    /// Members the server's V1 restore needs: `meta.inf` (restore fails without it) and
    /// `meta.sum` (the server drops the stream at the next start without a valid one).
    /// Only meaningful for a walk that was not aborted.
    pub fn missing_required(&self, opts: &TarOptions) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.aborted {
            return out;
        }
        for (name, why) in [
            ("meta.inf", "the server's restore fails without it"),
            (
                "meta.sum",
                "the server skips the stream at start-up without it",
            ),
        ] {
            if self.member(name).is_none() {
                let loc = Location {
                    account: opts.account.clone(),
                    stream: opts.stream.clone(),
                    file: Some(format!("{}:{name}", opts.label)),
                    ..Default::default()
                };
                out.push(Problem::new(
                    Kind::ArchiveMissingMember,
                    loc,
                    format!("no {name} in the archive: {why}"),
                ));
            }
        }
        out
    }
}

/// The stream layout, less the key files a backup never holds.
/// The stream layout. Key files included: a server's backup never holds them, but a tarball
/// of an encrypted stream dir (`tar czf ORDERS.tgz ORDERS/`) does, and is read through them.
fn classify(comps: &[&str]) -> Option<StreamFile> {
    crate::filestore::layout::classify(comps)
}

/// Split a member path into safe components: no absolute path, no `..`, no empty component,
/// `.` components dropped, one trailing `/` allowed (directories).
fn split_path(raw: &[u8]) -> Result<Vec<&str>, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "path is not UTF-8".to_string())?;
    if s.is_empty() {
        return Err("empty path".into());
    }
    if s.contains('\0') {
        return Err("path contains NUL".into());
    }
    if s.starts_with('/') {
        return Err("absolute path".into());
    }
    if s.contains('\\') {
        return Err("path contains a backslash".into());
    }
    let body = s.strip_suffix('/').unwrap_or(s);
    let mut out = Vec::new();
    for c in body.split('/') {
        match c {
            "" => return Err("empty path component".into()),
            ".." => return Err("`..` component".into()),
            "." => {}
            c => out.push(c),
        }
    }
    Ok(out)
}

fn type_name(t: u8) -> &'static str {
    match t {
        b'1' => "hard link",
        b'2' => "symbolic link",
        b'3' => "character device",
        b'4' => "block device",
        b'6' => "fifo",
        b'7' => "contiguous file",
        b'S' => "sparse file",
        b'V' => "volume header",
        b'M' => "multi-volume continuation",
        _ => "unknown entry type",
    }
}

/// What the walk saw of its input: bytes read, whether it ended, whether reading it failed.
/// Shared between the reader the tar parser pulls from and the walker that classifies errors,
/// so that an error is classified by where it came from, not by its text.
#[derive(Clone, Default)]
struct Input(Rc<InputState>);

#[derive(Default)]
struct InputState {
    bytes: Cell<u64>,
    eof: Cell<bool>,
    failed: Cell<bool>,
}

impl Input {
    fn bytes(&self) -> u64 {
        self.0.bytes.get()
    }
}

struct CountingReader<R> {
    inner: R,
    n: Input,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.n.0.eof.set(true);
                Ok(0)
            }
            Ok(k) => {
                self.n.0.bytes.set(self.n.0.bytes.get() + k as u64);
                Ok(k)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.n.0.failed.set(true);
                }
                Err(e)
            }
        }
    }
}

/// Hands a member's data to the callback, noticing a short stream.
struct MemberReader<'a, R: Read> {
    inner: &'a mut R,
    left: u64,
    short: bool,
    failed: Option<io::ErrorKind>,
}

impl<R: Read> Read for MemberReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let slice = buf.get_mut(..want).unwrap_or_default();
        match self.inner.read(slice) {
            Ok(0) => {
                self.short = true;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tar member truncated",
                ))
            }
            Ok(k) => {
                self.left -= k as u64;
                Ok(k)
            }
            Err(e) => {
                self.failed = Some(e.kind());
                Err(e)
            }
        }
    }
}

fn drain<R: Read>(r: &mut R) -> io::Result<u64> {
    io::copy(r, &mut io::sink())
}

/// Read a small extension header body (PAX / GNU long name), refusing large ones.
fn read_small<R: Read>(r: &mut R, size: u64) -> io::Result<Option<Vec<u8>>> {
    if size > MAX_EXT_HEADER {
        drain(r)?;
        return Ok(None);
    }
    let mut v = Vec::with_capacity(size as usize);
    r.take(size).read_to_end(&mut v)?;
    if (v.len() as u64) < size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "tar extension header truncated",
        ));
    }
    Ok(Some(v))
}

/// PAX records `"<len> <key>=<value>\n"`; returns the value of `key`.
fn pax_value<'a>(pax: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut rest = pax;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(rest.get(..sp)?).ok()?.parse().ok()?;
        let rec = rest.get(..len)?;
        rest = rest.get(len..)?;
        let kv = rec.get(sp + 1..)?.strip_suffix(b"\n")?;
        let eq = kv.iter().position(|b| *b == b'=')?;
        if kv.get(..eq)? == key.as_bytes() {
            return kv.get(eq + 1..);
        }
    }
    None
}

fn strip_nuls(v: &[u8]) -> &[u8] {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    v.get(..end).unwrap_or(v)
}

struct Walker<'o> {
    opts: &'o TarOptions,
    sum: TarSummary,
    seen: HashSet<String>,
    /// `None` = not decided yet; `Some(None)` = no top dir; `Some(Some(d))` = strip the
    /// components `d` (one top dir, or a store path ending in `<ACC>/streams/<STREAM>`).
    prefix: Option<Option<Vec<String>>>,
    /// What the tar parser's input did, to classify errors.
    input: Input,
    /// The member just refused is larger than its kind of file can be: stop the walk.
    bomb: bool,
}

/// A file kind in words, for refusals.
fn what_file(f: &StreamFile) -> &'static str {
    match f {
        StreamFile::Block(_) => "message block",
        StreamFile::BlockIdx(_) | StreamFile::BlockFss(_) => "block index file",
        StreamFile::MetaInf | StreamFile::ConsumerMetaInf(_) => "meta.inf",
        StreamFile::MetaSum | StreamFile::ConsumerMetaSum(_) => "meta.sum",
        StreamFile::MetaKey | StreamFile::BlockKey(_) | StreamFile::ConsumerKey(_) => "key file",
        StreamFile::IndexDb => "index.db",
        StreamFile::ThwDb | StreamFile::SchedDb | StreamFile::SourcesDb => "state file",
        StreamFile::ConsumerState(_) => "consumer state file (o.dat)",
        StreamFile::ErrorsTxt => "errors.txt",
    }
}

impl Walker<'_> {
    /// Whether a member is accepted: `Ok(Some((path, layout)))` for a file of the stream
    /// layout, `Ok(None)` for a directory, `Err(why)` for anything refused.
    fn verdict(
        &mut self,
        tflag: u8,
        raw_path: &[u8],
        link: Option<&str>,
        size: u64,
    ) -> Result<Option<(String, StreamFile)>, String> {
        let comps = split_path(raw_path)?;
        let is_dir = tflag == b'5' || (matches!(tflag, b'0' | 0) && raw_path.ends_with(b"/"));
        if is_dir {
            return Ok(None);
        }
        if !matches!(tflag, b'0' | 0) {
            let mut why = type_name(tflag).to_string();
            if let Some(l) = link {
                if matches!(tflag, b'1' | b'2') {
                    why = format!("{why} to {l:?}");
                }
            }
            return Err(why);
        }
        if comps.is_empty() {
            return Err("empty path".into());
        }
        let placed = self.place(&comps)?;
        let cap = self.opts.max_member_size.min(placed.1.max_size());
        if size > cap {
            // Larger than any such file a server writes: a decompression bomb. Skipping it
            // would mean decompressing all of it, so the walk stops here.
            self.bomb = true;
            return Err(format!(
                "{size} bytes, more than the {cap} bytes a {} can be (the walk stops here)",
                what_file(&placed.1)
            ));
        }
        if self.seen.contains(&placed.0) {
            return Err(format!("duplicate of an earlier member {:?}", placed.0));
        }
        Ok(Some(placed))
    }

    fn loc(&self, raw: &str, off: u64) -> Location {
        Location {
            account: self.opts.account.clone(),
            stream: self.opts.stream.clone(),
            file: Some(if raw.is_empty() {
                self.opts.label.clone()
            } else {
                format!("{}:{}", self.opts.label, raw)
            }),
            offset: Some(off),
            ..Default::default()
        }
    }

    fn hostile(&mut self, raw: &str, off: u64, why: &str) {
        let loc = self.loc(raw, off);
        self.sum.problems.push(Problem::new(
            Kind::ArchiveHostileMember,
            loc,
            format!("member {raw:?} refused: {why}"),
        ));
    }

    fn stream_error(&mut self, e: &io::Error, tar_off: u64, raw: &str) {
        self.sum.aborted = true;
        if let Some(c) = crate::s2::compressed_offset_of(e) {
            let loc = self.loc("", c);
            self.sum
                .problems
                .push(Problem::new(super::io_error_kind(e), loc, e.to_string()));
            return;
        }
        let text = e.to_string();
        let kind = if e.kind() == io::ErrorKind::UnexpectedEof || self.input.0.eof.get() {
            // the input ended inside a header or a member
            Kind::ArchiveTruncated
        } else if self.input.0.failed.get() {
            // reading the input failed (gzip / S2 decoding, I/O)
            super::io_error_kind(e)
        } else if e.kind() == io::ErrorKind::Other {
            // the tar parser refused bytes it read (header checksum, numeric field, …)
            Kind::ArchiveCorrupt
        } else {
            super::io_error_kind(e)
        };
        let loc = self.loc(raw, tar_off);
        self.sum
            .problems
            .push(Problem::new(kind, loc, format!("tar stream: {text}")));
    }

    /// Map a file member's components to (normalised path, layout), deciding the top dir on the
    /// first file.
    fn place(&mut self, comps: &[&str]) -> Result<(String, StreamFile), String> {
        if self.prefix.is_none() {
            if classify(comps).is_some() || !self.opts.strip_top_dir {
                self.prefix = Some(None);
            } else if let [top, rest @ ..] = comps {
                if classify(rest).is_some() {
                    self.prefix = Some(Some(vec![top.to_string()]));
                } else if let Some(n) = store_path_prefix(comps) {
                    self.prefix = Some(Some(comps[..n].iter().map(|c| c.to_string()).collect()));
                }
            }
        }
        let rel: &[&str] = match &self.prefix {
            Some(Some(p)) => match comps.get(..p.len()) {
                Some(head) if head.iter().zip(p).all(|(a, b)| a == b) => &comps[p.len()..],
                _ => {
                    return Err(format!(
                        "outside the archive's top-level directory {:?}",
                        p.join("/")
                    ))
                }
            },
            _ => comps,
        };
        match classify(rel) {
            Some(l) => Ok((rel.join("/"), l)),
            None => Err("not a file of the stream directory layout".into()),
        }
    }
}

/// The length of the leading components of `comps` that name a stream dir by its path in a
/// store, `…/<ACC>/streams/<STREAM>`, when the rest is a file of the stream dir layout.
fn store_path_prefix(comps: &[&str]) -> Option<usize> {
    (1..comps.len().saturating_sub(2))
        .rev()
        .find(|&i| comps[i] == "streams" && classify(&comps[i + 2..]).is_some())
        .map(|i| i + 2)
}

/// The bytes of the first accepted member of kind `want` (at most its kind's largest size),
/// reading the tar stream `r` only up to the end of that member. Used for a first pass over
/// an archive whose `meta.inf` may come after the blocks (GNU tar and friends store members
/// in directory order): the stream name keys every record checksum.
pub fn read_member<R: Read>(r: R, opts: &TarOptions, want: &StreamFile) -> Option<Vec<u8>> {
    let mut found: Option<Vec<u8>> = None;
    walk_tar(r, opts, |m, rd| {
        if &m.layout == want {
            let mut v = Vec::new();
            rd.take(want.max_size()).read_to_end(&mut v)?;
            found = Some(v);
            return Err(io::Error::other("found"));
        }
        Ok(())
    });
    found
}

/// The members of a tar stream of a stream dir: the bytes of every small one (all but blocks
/// and `errors.txt`, each at most its kind's largest size) and the size of every one. The
/// first pass over an archive of an encrypted stream dir, whose key files may come after the
/// blocks: blocks are skipped as they stream by, never held.
pub fn small_members<R: Read>(r: R, opts: &TarOptions) -> SmallMembers {
    let mut files = std::collections::BTreeMap::new();
    let mut sizes = std::collections::BTreeMap::new();
    let summary = walk_tar(r, opts, |m, rd| {
        sizes.insert(m.path.clone(), m.size);
        if !matches!(m.layout, StreamFile::Block(_) | StreamFile::ErrorsTxt) {
            let mut v = Vec::with_capacity(m.size.min(m.layout.max_size()) as usize);
            rd.take(m.layout.max_size()).read_to_end(&mut v)?;
            files.insert(m.path.clone(), v);
        }
        Ok(())
    });
    SmallMembers {
        files,
        sizes,
        summary,
    }
}

/// What [`small_members`] read.
#[derive(Debug, Default)]
pub struct SmallMembers {
    /// Path → bytes of every small member.
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
    /// Path → size of every member.
    pub sizes: std::collections::BTreeMap<String, u64>,
    /// The walk.
    pub summary: TarSummary,
}

/// Walk every member of the tar stream `r` (already decompressed). `f` gets each accepted
/// regular file with a reader over exactly its bytes; it may read all, some or none of them
/// (the rest is skipped). Return `Err` from `f` only to abort the walk; content problems are the
/// caller's to record. Hostile members are reported and skipped, never given to `f`.
pub fn walk_tar<R: Read>(
    r: R,
    opts: &TarOptions,
    mut f: impl FnMut(&TarMember, &mut dyn Read) -> io::Result<()>,
) -> TarSummary {
    let counter = Input::default();
    let mut archive = tar::Archive::new(CountingReader {
        inner: r,
        n: counter.clone(),
    });
    let mut w = Walker {
        opts,
        sum: TarSummary::default(),
        seen: HashSet::new(),
        prefix: None,
        input: counter.clone(),
        bomb: false,
    };
    let mut next_header: u64 = 0;
    let mut ext = Extensions::default();
    let mut count: u64 = 0;

    match archive.entries() {
        Err(e) => w.stream_error(&e, 0, ""),
        Ok(entries) => {
            let mut entries = entries.raw(true);
            loop {
                let mut entry = match entries.next() {
                    None => break,
                    Some(Ok(e)) => e,
                    Some(Err(e)) => {
                        w.stream_error(&e, next_header, "");
                        break;
                    }
                };
                let size = entry.size();
                next_header = entry
                    .raw_file_position()
                    .saturating_add(size.div_ceil(BLOCK).saturating_mul(BLOCK));
                match ext.absorb(&mut w, &mut entry) {
                    Flow::Next => continue,
                    Flow::Stop => break,
                    Flow::Member => {}
                }
                count += 1;
                if !member(&mut w, &mut ext, &mut entry, count, &mut f) {
                    break;
                }
            }
        }
    }

    if !w.sum.aborted {
        check_end(&mut w, &ext, counter.bytes(), next_header);
    }
    let prefix = w.prefix.clone().flatten().unwrap_or_default();
    w.sum.top_dir = prefix.last().cloned();
    w.sum.account_dir = (prefix.len() >= 3).then(|| prefix[prefix.len() - 3].clone());
    let tar_end = counter.bytes();
    w.sum.tar_bytes = tar_end;
    if !w.sum.aborted {
        trailing(&mut w, archive.into_inner(), tar_end);
    }
    w.sum
}

/// What the walk does after a header.
enum Flow {
    /// It was an extension header: go on to the member it describes.
    Next,
    /// The archive cannot be read on.
    Stop,
    /// A member to judge.
    Member,
}

/// PAX and GNU long-name/long-link headers waiting for the member they describe.
#[derive(Default)]
struct Extensions {
    pax: Option<Vec<u8>>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    /// An extension header was refused: the next member's real name is unknown.
    poisoned: bool,
}

impl Extensions {
    /// Keep an extension header's body for the next member.
    fn absorb<R: Read>(&mut self, w: &mut Walker, entry: &mut tar::Entry<R>) -> Flow {
        let tflag = entry.header().entry_type().as_byte();
        if !matches!(tflag, b'x' | b'g' | b'L' | b'K') {
            return Flow::Member;
        }
        let hpos = entry.raw_header_position();
        let size = entry.size();
        let header_name = String::from_utf8_lossy(&entry.header().path_bytes()).into_owned();
        let body = match read_small(entry, size) {
            Ok(b) => b,
            Err(e) => {
                w.stream_error(&e, hpos, &header_name);
                return Flow::Stop;
            }
        };
        let Some(body) = body else {
            w.hostile(
                &header_name,
                hpos,
                &format!("extension header of {size} bytes"),
            );
            self.poisoned = true;
            return Flow::Next;
        };
        let slot = match tflag {
            b'x' => &mut self.pax,
            b'L' => &mut self.long_name,
            b'K' => &mut self.long_link,
            _ => return Flow::Next, // global PAX headers carry nothing we use
        };
        if slot.is_some() {
            w.hostile(
                &header_name,
                hpos,
                "two extension headers of the same kind for one member",
            );
            self.poisoned = true;
        }
        *slot = Some(body);
        Flow::Next
    }

    fn pending(&self) -> bool {
        self.pax.is_some() || self.long_name.is_some() || self.long_link.is_some()
    }
}

/// Judge one member, hand it to `f` when it is accepted, and skip what `f` left. False when
/// the walk must stop.
fn member<R: Read>(
    w: &mut Walker,
    ext: &mut Extensions,
    entry: &mut tar::Entry<R>,
    count: u64,
    f: &mut impl FnMut(&TarMember, &mut dyn Read) -> io::Result<()>,
) -> bool {
    let hpos = entry.raw_header_position();
    let fpos = entry.raw_file_position();
    let size = entry.size();
    let tflag = entry.header().entry_type().as_byte();
    let this_pax = ext.pax.take();
    let this_long = ext.long_name.take();
    let this_link = ext.long_link.take();
    let raw_path: Vec<u8> = if let Some(l) = &this_long {
        strip_nuls(l).to_vec()
    } else if let Some(p) = this_pax.as_deref().and_then(|p| pax_value(p, "path")) {
        p.to_vec()
    } else {
        entry.header().path_bytes().into_owned()
    };
    let raw = String::from_utf8_lossy(&raw_path).into_owned();
    if let Some(ps) = this_pax.as_deref().and_then(|p| pax_value(p, "size")) {
        if std::str::from_utf8(ps)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            != Some(size)
        {
            let loc = w.loc(&raw, hpos);
            w.sum.problems.push(Problem::new(
                Kind::ArchiveCorrupt,
                loc,
                format!(
                    "PAX size {:?} disagrees with the header size {size}",
                    String::from_utf8_lossy(ps)
                ),
            ));
            w.sum.aborted = true;
            return false;
        }
    }
    let was_poisoned = std::mem::replace(&mut ext.poisoned, false);
    if count > w.opts.max_members {
        w.hostile(
            &raw,
            hpos,
            &format!("more than {} members", w.opts.max_members),
        );
        w.sum.aborted = true;
        return false;
    }
    let link = this_link
        .as_deref()
        .map(strip_nuls)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .or_else(|| {
            entry
                .header()
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        });
    let verdict = if was_poisoned {
        Err("preceded by a refused extension header".into())
    } else {
        w.verdict(tflag, &raw_path, link.as_deref(), size)
    };
    let mut member_reader = MemberReader {
        inner: entry,
        left: size,
        short: false,
        failed: None,
    };
    match verdict {
        Err(why) if w.bomb => {
            w.hostile(&raw, hpos, &why);
            w.sum.aborted = true;
            return false;
        }
        Err(why) => w.hostile(&raw, hpos, &why),
        Ok(None) => w.sum.directories += 1,
        Ok(Some((path, layout))) => {
            w.seen.insert(path.clone());
            let m = TarMember {
                path,
                size,
                offset: fpos,
                header_offset: hpos,
                layout,
            };
            let res = f(&m, &mut member_reader);
            w.sum.members.push(m);
            if let Err(e) = res {
                if member_reader.short {
                    w.stream_error(
                        &io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()),
                        hpos,
                        &raw,
                    );
                } else {
                    w.stream_error(&e, hpos, &raw);
                }
                return false;
            }
        }
    }
    // Skip what the callback left, noticing truncation.
    let early = |r: &MemberReader<'_, _>| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("member data ends {} bytes early", r.left),
        )
    };
    match drain(&mut member_reader) {
        Ok(_) if member_reader.short || member_reader.left > 0 => {
            let e = early(&member_reader);
            w.stream_error(&e, hpos, &raw);
            false
        }
        Ok(_) => true,
        Err(e) => {
            let e = if member_reader.short {
                early(&member_reader)
            } else {
                e
            };
            w.stream_error(&e, hpos, &raw);
            false
        }
    }
}

/// The archive must end with its end-of-archive blocks, not inside an extension header.
fn check_end(w: &mut Walker, ext: &Extensions, consumed: u64, next_header: u64) {
    if ext.pending() {
        let loc = w.loc("", next_header);
        w.sum.problems.push(Problem::new(
            Kind::ArchiveTruncated,
            loc,
            "tar ends after an extension header".to_string(),
        ));
    }
    if consumed >= next_header.saturating_add(BLOCK) {
        w.sum.end_marker = true;
    } else {
        let loc = w.loc("", next_header);
        w.sum.problems.push(Problem::new(
            Kind::ArchiveTruncated,
            loc,
            format!("tar stream ends at offset {consumed} without the end-of-archive blocks"),
        ));
    }
}

/// Everything after the first zero block: zeros are padding, anything else is garbage.
fn trailing<R: Read>(w: &mut Walker, mut inner: R, tar_end: u64) {
    let mut buf = vec![0u8; 32 << 10];
    let mut first_nonzero: Option<u64> = None;
    let mut total: u64 = 0;
    loop {
        match inner.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                if first_nonzero.is_none() {
                    if let Some(i) = buf.get(..k).and_then(|b| b.iter().position(|x| *x != 0)) {
                        first_nonzero = Some(tar_end + total + i as u64);
                    }
                }
                total += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let off = tar_end + total;
                w.stream_error(&e, off, "");
                break;
            }
        }
    }
    w.sum.trailing_bytes = total;
    if let Some(off) = first_nonzero {
        let loc = w.loc("", off);
        w.sum.problems.push(Problem::new(
            Kind::ArchiveTrailingData,
            loc,
            format!("non-zero data after the tar end-of-archive block (offset {off}, {total} trailing bytes)"),
        ));
    }
    w.sum.tar_bytes = tar_end + total;
}
