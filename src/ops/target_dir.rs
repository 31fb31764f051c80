//! Where `extract` and `pack` write: checks on the target before the long work starts, and
//! the owner of what they create.
//!
//! - [`store_dir_shape`]: a `--store-dir` that is really a `jetstream/` dir, an account dir,
//!   a streams dir or a stream dir is refused with the path to use; a missing one only with
//!   `--create`.
//! - [`no_symlink_out`]: `jetstream/`, the account dir and `streams/` must be real dirs (a
//!   symlink there would make jetdir write somewhere the report does not name).
//! - [`Owner`]: the uid/gid of the dir the output goes into; as root, everything created is
//!   given to it (the server's modes are kept: dirs 0700, files 0600, as nats-server's
//!   `defaultDirPerms` / `defaultFilePerms`); as another user, a store owned by someone else
//!   is refused (the server could not read 0600 files of ours).
//! - [`writable_with_room`]: the nearest existing dir is a writable dir with room for what
//!   is known to be needed.
//! - [`io_at`]: every I/O error names its path (and, when the disk is full, how much was
//!   needed and how much is free).
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A store dir that cannot be used as given: why, and the path to use instead where known.
pub(crate) fn store_dir_shape(dir: &Path, create: bool, dry_run: bool) -> Result<(), String> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if create || dry_run {
                return wrong_name(dir);
            }
            return Err(format!(
                "store dir {} does not exist; --create creates it (check the path: it must be the server's store_dir, the parent of jetstream/)",
                dir.display()
            ));
        }
        Err(e) => return Err(format!("store dir {}: {e}", dir.display())),
    };
    if !meta.is_dir() {
        return Err(format!("store dir {} is not a directory", dir.display()));
    }
    if dir.join("jetstream").is_dir() {
        return Ok(());
    }
    if crate::filestore::discover::looks_like_stream_dir(dir) || dir.join("meta.inf").is_file() {
        return Err(format!(
            "{} is a stream dir, not a store dir; use --store-dir {}{}",
            dir.display(),
            up(dir, 4),
            acc_hint(name_up(dir, 2))
        ));
    }
    if dir.join("streams").is_dir() {
        return Err(format!(
            "{} is an account dir (it holds streams/), not a store dir; use --store-dir {}{}",
            dir.display(),
            up(dir, 2),
            acc_hint(name_up(dir, 0))
        ));
    }
    let children_are_streams = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .any(|e| crate::filestore::discover::looks_like_stream_dir(&e.path()))
        })
        .unwrap_or(false);
    if children_are_streams {
        return Err(format!(
            "{} is a streams dir, not a store dir; use --store-dir {}{}",
            dir.display(),
            up(dir, 3),
            acc_hint(name_up(dir, 1))
        ));
    }
    let children_are_accounts = fs::read_dir(dir)
        .map(|rd| rd.flatten().any(|e| e.path().join("streams").is_dir()))
        .unwrap_or(false);
    if children_are_accounts {
        return Err(format!(
            "{} is a jetstream/ dir (its subdirs are accounts), not a store dir; use --store-dir {}",
            dir.display(),
            up(dir, 1)
        ));
    }
    wrong_name(dir)
}

/// A dir named like a level below the store dir, without `jetstream/` inside.
fn wrong_name(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    match name.as_deref() {
        Some("jetstream") => Err(format!(
            "{} is named jetstream/ and holds no jetstream/: the store dir is its parent; use --store-dir {}",
            dir.display(),
            up(dir, 1)
        )),
        Some("streams") => Err(format!(
            "{} is named streams/ and holds no jetstream/: it looks like an account's streams dir; use --store-dir {}{}",
            dir.display(),
            up(dir, 3),
            acc_hint(name_up(dir, 1))
        )),
        _ => Ok(()),
    }
}

fn acc_hint(acc: Option<String>) -> String {
    match acc {
        Some(a) if a != "$G" => format!(" --account '{a}'"),
        _ => String::new(),
    }
}

/// `dir` `n` levels up (absolute where possible).
fn up(dir: &Path, n: usize) -> String {
    let mut cur = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for _ in 0..n {
        if !cur.pop() {
            break;
        }
    }
    cur.display().to_string()
}

/// The name of the dir `n` levels above `dir` (0: its own name).
fn name_up(dir: &Path, n: usize) -> Option<String> {
    let mut cur = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for _ in 0..n {
        cur.pop();
    }
    cur.file_name().map(|x| x.to_string_lossy().into_owned())
}

/// `jetstream/`, `jetstream/<ACC>/` and `jetstream/<ACC>/streams/` under `store` must be real
/// directories (or not exist yet): never write through a symlink out of the store.
pub(crate) fn no_symlink_out(store: &Path, account: &str) -> Result<(), String> {
    let levels = [
        store.join("jetstream"),
        store.join("jetstream").join(account),
        store.join("jetstream").join(account).join("streams"),
    ];
    for p in &levels {
        match fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(p)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|e| format!("? ({e})"));
                return Err(format!(
                    "{} is a symlink to {to}: jetdir writes only inside the store dir; make it a real directory, or point --store-dir at the store that holds it",
                    p.display()
                ));
            }
            Ok(m) if !m.is_dir() => {
                return Err(format!("{} is not a directory", p.display()));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Who owns what jetdir creates in a dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn egid() -> u32 {
    rustix::process::getegid().as_raw()
}

impl Owner {
    /// The owner to give what is created under `dir` (its nearest existing ancestor decides):
    /// `Ok(Some(_))` as root when that differs from root's own; `Ok(None)` when files
    /// created as this user are right; `Err` when this user cannot make them the dir
    /// owner's (not root, dir owned by another uid).
    pub(crate) fn for_dir(dir: &Path) -> Result<Option<Owner>, String> {
        let existing = nearest_existing(dir);
        let m = fs::metadata(&existing).map_err(|e| format!("{}: {e}", existing.display()))?;
        let want = Owner {
            uid: m.uid(),
            gid: m.gid(),
        };
        let me = Owner {
            uid: euid(),
            gid: egid(),
        };
        if want == me {
            return Ok(None);
        }
        if me.uid == 0 {
            return Ok(Some(want));
        }
        if want.uid == me.uid {
            // same user, another group: the group of the dir is what a setgid dir would give
            return Ok(None);
        }
        Err(format!(
            "{} belongs to uid {} and jetdir runs as uid {}: the files would be ours with mode 0600 and a server running as uid {} could not read them; run jetdir as root or as that user",
            existing.display(),
            want.uid,
            me.uid,
            want.uid
        ))
    }

    /// Give `p` (not following a symlink) to this owner.
    pub(crate) fn chown(&self, p: &Path) -> io::Result<()> {
        std::os::unix::fs::lchown(p, Some(self.uid), Some(self.gid)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot give {} to uid {} gid {}: {e}",
                    p.display(),
                    self.uid,
                    self.gid
                ),
            )
        })
    }

    /// Give `root` and everything under it to this owner.
    pub(crate) fn chown_tree(&self, root: &Path) -> io::Result<()> {
        for e in walkdir::WalkDir::new(root).follow_links(false) {
            let e = e.map_err(|e| io::Error::other(format!("{}: {e}", root.display())))?;
            self.chown(e.path())?;
            if e.file_type().is_file() {
                // the new owner is durable with the file (its data was fsynced before)
                fs::File::open(e.path())
                    .and_then(|f| f.sync_all())
                    .map_err(|err| io_at(e.path(), None, err))?;
            }
        }
        Ok(())
    }
}

/// `dir` or its nearest ancestor that exists.
pub(crate) fn nearest_existing(dir: &Path) -> PathBuf {
    let mut cur = dir.to_path_buf();
    loop {
        if fs::symlink_metadata(&cur).is_ok() || cur.as_os_str().is_empty() {
            break;
        }
        if !cur.pop() {
            break;
        }
    }
    if cur.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cur
    }
}

/// Free bytes for an unprivileged writer on the file system of `p`.
pub(crate) fn free_bytes(p: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(p).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

fn access_w(p: &Path) -> bool {
    use rustix::fs::Access;
    rustix::fs::access(p, Access::WRITE_OK | Access::EXEC_OK).is_ok()
}

/// The output will be created at or under `dir`: its nearest existing ancestor must be a
/// writable directory with at least `needed` bytes free (when known). `what` names the
/// output in the message.
pub(crate) fn writable_with_room(
    dir: &Path,
    needed: Option<u64>,
    what: &str,
) -> Result<(), String> {
    let existing = nearest_existing(dir);
    let m = fs::metadata(&existing).map_err(|e| format!("{}: {e}", existing.display()))?;
    if !m.is_dir() {
        return Err(format!(
            "{} is not a directory: cannot create {what} {}",
            existing.display(),
            dir.display()
        ));
    }
    if !access_w(&existing) {
        return Err(format!(
            "{} is not writable: cannot create {what} under it",
            existing.display()
        ));
    }
    if let (Some(need), Some(free)) = (needed, free_bytes(&existing)) {
        if free < need {
            return Err(format!(
                "not enough space for {what} in {}: about {need} bytes needed, {free} bytes free",
                existing.display()
            ));
        }
    }
    Ok(())
}

/// `e` with `path` in its message; a full disk also says how much was needed (when known)
/// and how much is free there.
pub(crate) fn io_at(path: &Path, needed: Option<u64>, e: io::Error) -> io::Error {
    io_at_after(path, needed, None, e)
}

/// [`io_at`] for a file written as a stream: `written` bytes of it were written before the
/// error.
pub(crate) fn io_at_after(
    path: &Path,
    needed: Option<u64>,
    written: Option<u64>,
    e: io::Error,
) -> io::Error {
    let msg = e.to_string();
    if msg.contains(&path.display().to_string()) {
        return e;
    }
    let full = e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(28);
    let mut text = format!("{}: {msg}", path.display());
    if full {
        // the file's dir ("." for a bare name); staging's writers import this module, not
        // the other way round
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let free = free_bytes(dir);
        text.push_str(" (disk full");
        if let Some(n) = needed {
            text.push_str(&format!(": {n} bytes needed for this file"));
        }
        if let Some(w) = written {
            text.push_str(&format!(
                "{}{w} bytes of it written",
                if needed.is_some() { ", " } else { ": " }
            ));
        }
        if let Some(f) = free {
            text.push_str(&format!(", {f} bytes free"));
        }
        text.push(')');
    }
    io::Error::new(e.kind(), text)
}

/// `fs::read` whose error names the path.
pub(crate) fn read(p: &Path) -> io::Result<Vec<u8>> {
    fs::read(p).map_err(|e| io_at(p, None, e))
}

/// `File::open` whose error names the path.
pub(crate) fn open(p: &Path) -> io::Result<fs::File> {
    fs::File::open(p).map_err(|e| io_at(p, None, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_dir_levels_are_refused_with_the_path_to_use() {
        let tmp = tempfile::TempDir::new().unwrap();
        let store = tmp.path().join("store");
        let sdir = store.join("jetstream/ACC9/streams/ORDERS");
        fs::create_dir_all(sdir.join("msgs")).unwrap();
        fs::write(sdir.join("meta.inf"), b"{}").unwrap();
        let canon = fs::canonicalize(&store).unwrap().display().to_string();
        assert_eq!(store_dir_shape(&store, false, false), Ok(()));
        let e = store_dir_shape(&store.join("jetstream"), false, false).unwrap_err();
        assert!(e.contains("jetstream/ dir") && e.ends_with(&canon), "{e}");
        let e = store_dir_shape(&store.join("jetstream/ACC9"), false, false).unwrap_err();
        assert!(
            e.contains("account dir") && e.ends_with(&format!("{canon} --account 'ACC9'")),
            "{e}"
        );
        let e = store_dir_shape(&store.join("jetstream/ACC9/streams"), false, false).unwrap_err();
        assert!(
            e.contains("streams dir") && e.ends_with(&format!("{canon} --account 'ACC9'")),
            "{e}"
        );
        let e = store_dir_shape(&sdir, false, false).unwrap_err();
        assert!(
            e.contains("stream dir") && e.ends_with(&format!("{canon} --account 'ACC9'")),
            "{e}"
        );
        // missing: only with --create
        let new = tmp.path().join("new");
        let e = store_dir_shape(&new, false, false).unwrap_err();
        assert!(e.contains("--create"), "{e}");
        assert_eq!(store_dir_shape(&new, true, false), Ok(()));
        assert!(store_dir_shape(&tmp.path().join("x/jetstream"), true, false).is_err());
        // an empty dir is a new store
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert_eq!(store_dir_shape(&empty, false, false), Ok(()));
    }

    #[test]
    fn symlinks_in_the_store_levels_are_refused() {
        let tmp = tempfile::TempDir::new().unwrap();
        let store = tmp.path().join("store");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::create_dir_all(&store).unwrap();
        assert_eq!(no_symlink_out(&store, "$G"), Ok(()));
        std::os::unix::fs::symlink(&elsewhere, store.join("jetstream")).unwrap();
        let e = no_symlink_out(&store, "$G").unwrap_err();
        assert!(
            e.contains("symlink") && e.contains(&elsewhere.display().to_string()),
            "{e}"
        );
        fs::remove_file(store.join("jetstream")).unwrap();
        fs::create_dir_all(store.join("jetstream/$G")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, store.join("jetstream/$G/streams")).unwrap();
        let e = no_symlink_out(&store, "$G").unwrap_err();
        assert!(e.contains("streams is a symlink"), "{e}");
        assert_eq!(no_symlink_out(&store, "OTHER"), Ok(()));
    }

    #[test]
    fn io_errors_name_the_path() {
        let p = Path::new("/x/y.blk");
        let e = io_at(p, Some(10), io::Error::from_raw_os_error(28));
        let m = e.to_string();
        assert!(
            m.starts_with("/x/y.blk: ") && m.contains("10 bytes needed"),
            "{m}"
        );
        // not named twice
        assert_eq!(io_at(p, None, e).to_string(), m);
    }
}
