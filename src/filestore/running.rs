//! Is some process using a directory? nats-server takes no lock on its store dir, so the only way
//! to tell that a server is running on it is to look for processes whose open files or current
//! directory lie under it (Linux `/proc/<pid>/{cwd,fd/*}`).
//!
//! Processes we may not inspect (other users without privileges) are skipped silently: the answer
//! is a best effort, never a guarantee.
use std::path::{Path, PathBuf};

/// A description of one process whose cwd or an open file is under `dir`, e.g.
/// `nats-server pid 1234 has /data/jetstream/$G/streams/ORDERS/msgs/1.blk open`.
/// `None` when no such process was found (or `/proc` is unavailable). Our own process and other
/// `jetdir` processes are ignored.
pub fn server_holding(dir: &Path) -> Option<String> {
    let root = canonical(dir)?;
    server_holding_in(Path::new("/proc"), &root, std::process::id())
}

fn canonical(dir: &Path) -> Option<PathBuf> {
    match std::fs::canonicalize(dir) {
        Ok(p) => Some(p),
        Err(_) if dir.is_absolute() => Some(dir.to_path_buf()),
        Err(_) => std::env::current_dir().ok().map(|cwd| cwd.join(dir)),
    }
}

fn server_holding_in(proc_root: &Path, root: &Path, own_pid: u32) -> Option<String> {
    let entries = std::fs::read_dir(proc_root).ok()?;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| pid != own_pid)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let pdir = proc_root.join(pid.to_string());
        let name = std::fs::read_to_string(pdir.join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "process".to_string());
        // Another jetdir reading the store (verify, inspect, pack) is not a server; jetdir
        // writes only into staging dirs of its own, which extract checks for separately.
        if name == "jetdir" {
            continue;
        }
        if let Some(hit) = process_hit(&pdir, root) {
            return Some(match hit {
                Hit::Cwd(p) => format!(
                    "{name} pid {pid} has its working directory in {}",
                    p.display()
                ),
                Hit::Fd(p) => format!("{name} pid {pid} has {} open", p.display()),
            });
        }
    }
    None
}

enum Hit {
    Cwd(PathBuf),
    Fd(PathBuf),
}

fn under(link: &Path, root: &Path) -> bool {
    // A deleted file shows as "<path> (deleted)"; the prefix test still works component-wise
    // except for the last component, which only matters when `root` itself was deleted.
    link.starts_with(root)
}

fn process_hit(pdir: &Path, root: &Path) -> Option<Hit> {
    if let Ok(cwd) = std::fs::read_link(pdir.join("cwd")) {
        if under(&cwd, root) {
            return Some(Hit::Cwd(cwd));
        }
    }
    let fds = std::fs::read_dir(pdir.join("fd")).ok()?;
    for fd in fds.filter_map(|e| e.ok()) {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            if under(&target, root) {
                return Some(Hit::Fd(target));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// What `server_holding` says about `dir` once the child is seen (it polls for 1 s).
    #[cfg(target_os = "linux")]
    fn seen(dir: &Path, mut child: std::process::Child) -> (u32, String) {
        let mut found = None;
        for _ in 0..50 {
            found = server_holding(dir);
            if found.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        (child.id(), found.expect("child not found"))
    }

    // /proc is Linux's: on other systems the test is not compiled, never passed without running.
    #[cfg(target_os = "linux")]
    #[test]
    fn finds_a_child_with_cwd_and_open_file_under_dir() {
        let tmp = tempfile::TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        std::fs::create_dir_all(dir.join("jetstream")).unwrap();
        assert_eq!(server_holding(&dir), None);

        // A child whose cwd is under dir.
        let child = Command::new("sleep")
            .arg("30")
            .current_dir(dir.join("jetstream"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let (pid, found) = seen(&dir, child);
        assert!(found.contains(&format!("pid {pid}")), "{found}");
        assert!(found.contains("working directory"), "{found}");

        // A child holding a file open (stdin redirected from a file under dir), cwd elsewhere.
        let file = dir.join("jetstream").join("x.blk");
        std::fs::write(&file, b"x").unwrap();
        let child = Command::new("sleep")
            .arg("30")
            .current_dir(tmp.path())
            .stdin(std::fs::File::open(&file).unwrap())
            .spawn()
            .unwrap();
        let (_, found) = seen(&dir, child);
        assert!(found.contains("x.blk open"), "{found}");
        assert_eq!(server_holding(&dir), None);
    }

    #[test]
    fn own_process_is_ignored() {
        let tmp = tempfile::TempDir::new().unwrap();
        let f = tmp.path().join("held");
        let _held = std::fs::File::create(&f).unwrap();
        assert_eq!(server_holding(tmp.path()), None);
    }
}
