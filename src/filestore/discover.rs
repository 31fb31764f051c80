//! Finding accounts, streams, consumers and everything else in a store directory.
use std::fs;
use std::path::{Path, PathBuf};

/// One stream directory found in a store.
#[derive(Debug, Clone)]
pub struct StreamDir {
    pub account: String,
    /// Directory name; the server keys meta.sum with it.
    pub name: String,
    pub dir: PathBuf,
}

/// What `PATH` turned out to be, and what was found under it.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub streams: Vec<StreamDir>,
    /// Clustered-mode raft group dirs under `$SYS/_js_/` (the node was clustered).
    pub raft_groups: Vec<PathBuf>,
    /// Things that are not streams but deserve a word: (path relative to PATH, explanation).
    pub notes: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    #[error("{0}: not a directory")]
    NotDir(PathBuf),
    #[error("{0}: not a JetStream store, jetstream/ dir, account dir or stream dir (no jetstream/, streams/ or meta.inf found)")]
    NotAStore(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

fn is_dir(p: &Path) -> bool {
    p.is_dir()
}

pub fn looks_like_stream_dir(p: &Path) -> bool {
    p.join("meta.inf").is_file() || p.join("msgs").is_dir()
}

fn sorted_subdirs(p: &Path) -> Result<Vec<(String, PathBuf)>, LayoutError> {
    let rd = fs::read_dir(p).map_err(|e| LayoutError::Io(p.to_path_buf(), e))?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| LayoutError::Io(p.to_path_buf(), e))?;
        let path = e.path();
        if path.is_dir() {
            v.push((e.file_name().to_string_lossy().into_owned(), path));
        }
    }
    v.sort();
    Ok(v)
}

/// Discover streams under `path`, which may be a store dir (holding `jetstream/`), the
/// `jetstream/` dir, an account dir (holding `streams/`) or one stream dir.
pub fn discover(path: &Path) -> Result<Layout, LayoutError> {
    if !path.exists() {
        return Err(LayoutError::Missing(path.to_path_buf()));
    }
    if !path.is_dir() {
        return Err(LayoutError::NotDir(path.to_path_buf()));
    }
    let mut lay = Layout::default();
    if is_dir(&path.join("jetstream")) {
        scan_js_dir(&path.join("jetstream"), "jetstream/", &mut lay)?;
    } else if is_dir(&path.join("streams")) {
        let acct = dir_name(path);
        scan_account(path, &acct, "", &mut lay)?;
    } else if looks_like_stream_dir(path) {
        let account = path
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == "streams"))
            .and_then(|p| p.parent())
            .map(dir_name)
            .unwrap_or_else(|| "$G".to_string());
        lay.streams.push(StreamDir {
            account,
            name: dir_name(path),
            dir: path.to_path_buf(),
        });
    } else {
        // maybe the jetstream/ dir itself: some subdir holds streams/
        let subs = sorted_subdirs(path)?;
        if subs
            .iter()
            .any(|(_, p)| is_dir(&p.join("streams")) || p.join("_js_").is_dir())
        {
            scan_js_dir(path, "", &mut lay)?;
        } else {
            return Err(LayoutError::NotAStore(path.to_path_buf()));
        }
    }
    Ok(lay)
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn scan_js_dir(js: &Path, rel: &str, lay: &mut Layout) -> Result<(), LayoutError> {
    for (name, p) in sorted_subdirs(js)? {
        if name == ".snap-staging" {
            lay.notes.push((
                format!("{rel}{name}"),
                "orphan snapshot staging dir; the server removes it at start".into(),
            ));
            continue;
        }
        if p.join("_js_").is_dir() {
            for (g, gp) in sorted_subdirs(&p.join("_js_"))? {
                let role = if g == "_meta_" {
                    "meta group (stream and consumer assignments)"
                } else if g.starts_with("S-") {
                    "stream raft group"
                } else if g.starts_with("C-") {
                    "consumer raft group"
                } else {
                    "raft group"
                };
                lay.notes
                    .push((format!("{rel}{name}/_js_/{g}"), role.to_string()));
                lay.raft_groups.push(gp);
            }
            lay.notes.push((
                format!("{rel}{name}/_js_"),
                "clustered-mode raft groups: this node was part of a cluster (on start it deletes streams the meta group does not know)".into(),
            ));
        }
        if is_dir(&p.join("streams")) {
            scan_account(&p, &name, &format!("{rel}{name}/"), lay)?;
        }
    }
    Ok(())
}

fn scan_account(
    acct_dir: &Path,
    account: &str,
    rel: &str,
    lay: &mut Layout,
) -> Result<(), LayoutError> {
    if acct_dir.join("__snapshots__").is_dir() {
        lay.notes.push((
            format!("{rel}__snapshots__"),
            "leftover restore staging; the server removes it when the account starts".into(),
        ));
    }
    for (name, p) in sorted_subdirs(&acct_dir.join("streams"))? {
        if name.starts_with('.') {
            lay.notes.push((
                format!("{rel}streams/{name}"),
                "stream being deleted (dot-prefixed); the server removes it at start".into(),
            ));
            continue;
        }
        lay.streams.push(StreamDir {
            account: account.to_string(),
            name,
            dir: p,
        });
    }
    Ok(())
}
