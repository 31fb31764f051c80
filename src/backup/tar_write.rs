//! Deterministic tar members: fixed mtime, uid/gid 0, fixed mode and owner names, ustar
//! headers (a PAX `path` record first when a path does not fit ustar's 100+155 bytes).
use std::io::{self, Write};

/// Header fields that are the same for every member of one archive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub mtime: u64,
    pub file_mode: u32,
    pub dir_mode: u32,
    /// uname/gname ("nats" like the server's snapshot; "" for tarballs meant for GNU tar).
    pub owner: &'static str,
}

fn header(
    b: &mut tar::Builder<impl Write>,
    path: &str,
    kind: tar::EntryType,
    size: u64,
    mode: u32,
    st: &Style,
) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    if h.set_path(path).is_err() {
        // Too long for ustar: a PAX extended header carries the real path.
        b.append_pax_extensions([("path", path.as_bytes())])?;
        let short: String = path
            .rsplit('/')
            .next()
            .unwrap_or("long")
            .chars()
            .take(90)
            .collect();
        h.set_path(if short.is_empty() { "long" } else { &short })?;
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(st.mtime);
    h.set_username(st.owner)?;
    h.set_groupname(st.owner)?;
    h.set_cksum();
    Ok(h)
}

/// Append a regular file.
pub(crate) fn file(
    b: &mut tar::Builder<impl Write>,
    path: &str,
    data: &[u8],
    st: &Style,
) -> io::Result<()> {
    let h = header(
        b,
        path,
        tar::EntryType::Regular,
        data.len() as u64,
        st.file_mode,
        st,
    )?;
    // The same bytes as `Builder::append`, without its copy through an 8 KiB buffer.
    let w = b.get_mut();
    w.write_all(h.as_bytes())?;
    w.write_all(data)?;
    pad(w, data.len() as u64)
}

/// Writes the header of a regular file of `size` bytes; the caller writes the data and then
/// [`pad`]s it.
pub(crate) fn file_header<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    st: &Style,
) -> io::Result<()> {
    let h = header(b, path, tar::EntryType::Regular, size, st.file_mode, st)?;
    b.get_mut().write_all(h.as_bytes())
}

/// Zeros after `size` bytes of member data, up to the next 512-byte boundary.
pub(crate) fn pad(w: &mut impl Write, size: u64) -> io::Result<()> {
    let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
    w.write_all(ZEROS.get(..pad).unwrap_or(&[]))
}

const BLOCK: usize = 512;
const ZEROS: [u8; BLOCK] = [0; BLOCK];

/// Append a directory entry (`path` without the trailing slash).
pub(crate) fn dir(b: &mut tar::Builder<impl Write>, path: &str, st: &Style) -> io::Result<()> {
    let h = header(
        b,
        &format!("{path}/"),
        tar::EntryType::Directory,
        0,
        st.dir_mode,
        st,
    )?;
    b.append(&h, io::empty())
}
