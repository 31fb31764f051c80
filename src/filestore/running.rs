//! Is some process using a directory? nats-server takes no lock on its store dir, so the only way
//! to tell that a server is running on it is to look at the processes (Linux `/proc`):
//!
//! - every `nats-server` process: the store dir it uses, from its command line (`-sd` /
//!   `--store_dir`, `-js` / `--jetstream`, `-c` / `--config`) and the config file it was
//!   started with (`store_dir` at the top level or in the `jetstream` block, NATS conf syntax);
//!   without one, the server's default (`$TMPDIR/nats` as `os.TempDir()` gives it, the dynamic
//!   JetStream config of `dynJetStreamConfig`). An idle server holds no file open under its
//!   store, so this is the check that finds it.
//! - any process whose open files or current directory lie under the dir
//!   (`/proc/<pid>/{cwd,fd/*}`).
//!
//! Processes we may not inspect (other users without privileges) are skipped silently: the answer
//! is a best effort, never a guarantee.
use std::path::{Component, Path, PathBuf};

/// A description of one process using `dir`, naming its pid and how it was matched, e.g.
/// `nats-server pid 1234 serves the store dir /data (command line -sd /data)` or
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
        Err(_) if dir.is_absolute() => Some(lexical(dir)),
        Err(_) => std::env::current_dir()
            .ok()
            .map(|cwd| lexical(&cwd.join(dir))),
    }
}

/// `.` and `..` removed without touching the disk (for paths that do not exist).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn server_holding_in(proc_root: &Path, root: &Path, own_pid: u32) -> Option<String> {
    let entries = std::fs::read_dir(proc_root).ok()?;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| pid != own_pid)
        .collect();
    pids.sort_unstable();
    // nats-server processes by their store dir first: an idle server holds nothing open.
    for &pid in &pids {
        let pdir = proc_root.join(pid.to_string());
        if let Some(s) = nats_server_store(&pdir) {
            let js = s.dir.join("jetstream");
            if js.starts_with(root) || root.starts_with(&js) || root == s.dir {
                return Some(format!(
                    "nats-server pid {pid} serves the store dir {} ({})",
                    s.dir.display(),
                    s.how
                ));
            }
        }
    }
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

/// The store dir a nats-server process uses and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerStore {
    /// The store dir (the parent of `jetstream/`), absolute.
    dir: PathBuf,
    /// `command line -sd /x`, `store_dir in config /etc/nats.conf`, ...
    how: String,
}

/// The process's arguments (`/proc/<pid>/cmdline`, NUL-separated).
fn cmdline(pdir: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read(pdir.join("cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// An environment variable of the process (`/proc/<pid>/environ`; only readable for our own
/// user or as root).
fn environ_var(pdir: &Path, var: &str) -> Option<String> {
    let raw = std::fs::read(pdir.join("environ")).ok()?;
    let prefix = format!("{var}=");
    raw.split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&prefix).map(str::to_string))
}

/// Is this process a nats-server (by `comm` or by the name of its executable)?
fn is_nats_server(pdir: &Path, args: &[String]) -> bool {
    let comm = std::fs::read_to_string(pdir.join("comm")).unwrap_or_default();
    let argv0 = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    comm.trim().starts_with("nats-server") || argv0.starts_with("nats-server")
}

/// The flags of a nats-server command line that decide its store dir.
#[derive(Debug, Default, PartialEq, Eq)]
struct ServerFlags {
    store_dir: Option<String>,
    config: Option<String>,
    jetstream: bool,
}

/// Go `flag` syntax: `-name value`, `-name=value`, `--name value`, `--name=value`; boolean
/// flags take no value (`-js`, `-js=false`). Parsing stops at `--`.
fn parse_flags(args: &[String]) -> ServerFlags {
    let mut f = ServerFlags::default();
    let mut i = 1;
    while let Some(a) = args.get(i) {
        i += 1;
        if a == "--" {
            break;
        }
        let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let mut value = || match &inline {
            Some(v) => Some(v.clone()),
            None => {
                let v = args.get(i).cloned();
                i += 1;
                v
            }
        };
        match name {
            "sd" | "store_dir" => f.store_dir = value(),
            "c" | "config" => f.config = value(),
            "js" | "jetstream" => {
                f.jetstream = inline
                    .as_deref()
                    .is_none_or(|v| matches!(v, "true" | "1" | "t" | "T" | "TRUE" | "True"))
            }
            _ => {}
        }
    }
    f
}

/// What a config file says about JetStream's store.
#[derive(Debug, Default, PartialEq, Eq)]
struct ConfStore {
    store_dir: Option<String>,
    jetstream: bool,
    /// Both a memory and a file limit are set: the server then uses `$TMPDIR/jetstream`
    /// instead of the dynamic `$TMPDIR/nats/jetstream` when no store dir is given.
    limits: bool,
}

/// One `key value` pair of a NATS conf file, with the keys of the blocks it is in (lowercase).
#[derive(Debug, PartialEq, Eq)]
struct ConfEntry {
    path: Vec<String>,
    value: Option<String>,
}

/// The key/value pairs of NATS conf text (`key: v`, `key = v`, `key v`, `key { ... }`, quoted
/// or bare values, `#` and `//` comments, arrays skipped). Enough to find `store_dir`; not a
/// full parser.
fn conf_entries(text: &str) -> Vec<ConfEntry> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut i = 0;
    let at = |i: usize| b.get(i).copied();
    while i < b.len() {
        let Some(c) = at(i) else { break };
        if c.is_ascii_whitespace() || c == b',' || c == b';' {
            i += 1;
            continue;
        }
        if c == b'#' || (c == b'/' && at(i + 1) == Some(b'/')) {
            while at(i).is_some_and(|c| c != b'\n') {
                i += 1;
            }
            continue;
        }
        if c == b'}' {
            stack.pop();
            i += 1;
            continue;
        }
        // key
        let key = if c == b'"' || c == b'\'' {
            let end = (i + 1..b.len())
                .find(|&j| at(j) == Some(c))
                .unwrap_or(b.len());
            let k = text.get(i + 1..end).unwrap_or_default().to_string();
            i = end + 1;
            k
        } else {
            let start = i;
            while at(i).is_some_and(|c| {
                !c.is_ascii_whitespace() && !matches!(c, b':' | b'=' | b'{' | b'}' | b',' | b';')
            }) {
                i += 1;
            }
            text.get(start..i).unwrap_or_default().to_string()
        };
        if key.is_empty() {
            i += 1;
            continue;
        }
        // separator
        while at(i).is_some_and(|c| c == b' ' || c == b'\t') {
            i += 1;
        }
        if matches!(at(i), Some(b':' | b'=')) {
            i += 1;
        }
        while at(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        let mut path = stack.clone();
        path.push(key.to_ascii_lowercase());
        match at(i) {
            Some(b'{') => {
                i += 1;
                out.push(ConfEntry {
                    path: path.clone(),
                    value: None,
                });
                stack.push(key.to_ascii_lowercase());
            }
            Some(b'[') => {
                let mut depth = 0usize;
                while let Some(c) = at(i) {
                    i += 1;
                    match c {
                        b'[' => depth += 1,
                        b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some(q @ (b'"' | b'\'')) => {
                let end = (i + 1..b.len())
                    .find(|&j| at(j) == Some(q))
                    .unwrap_or(b.len());
                let v = text.get(i + 1..end).unwrap_or_default().to_string();
                i = end + 1;
                out.push(ConfEntry {
                    path,
                    value: Some(v),
                });
            }
            _ => {
                let start = i;
                while at(i).is_some_and(|c| !matches!(c, b'\n' | b',' | b';' | b'}' | b'#')) {
                    i += 1;
                }
                let v = text.get(start..i).unwrap_or_default().trim().to_string();
                out.push(ConfEntry {
                    path,
                    value: Some(v),
                });
            }
        }
    }
    out
}

/// The store settings of a config file (following `include`s relative to its dir, at most a
/// few levels deep); `$VAR` values are looked up in the process's environment.
fn conf_store(file: &Path, env: &dyn Fn(&str) -> Option<String>, depth: usize) -> ConfStore {
    let mut cs = ConfStore::default();
    let Ok(text) = std::fs::read_to_string(file) else {
        return cs;
    };
    let (mut mem, mut disk) = (false, false);
    for e in conf_entries(&text) {
        let keys: Vec<&str> = e.path.iter().map(String::as_str).collect();
        let value = e.value.as_deref().map(|v| match v.strip_prefix('$') {
            Some(var) => env(var.trim_matches(|c| c == '{' || c == '}')).unwrap_or_default(),
            None => v.to_string(),
        });
        match (keys.as_slice(), value) {
            (["include"], Some(inc)) | (_, Some(inc))
                if keys.last() == Some(&"include") && depth < 4 =>
            {
                let p = file.parent().unwrap_or(Path::new("/")).join(inc.trim());
                let sub = conf_store(&p, env, depth + 1);
                cs.store_dir = cs.store_dir.or(sub.store_dir);
                cs.jetstream |= sub.jetstream;
                cs.limits |= sub.limits;
            }
            (["store_dir" | "storedir"], Some(v)) => cs.store_dir = Some(v),
            (["jetstream"], None) => cs.jetstream = true,
            (["jetstream"], Some(v)) => {
                cs.jetstream = matches!(
                    v.to_ascii_lowercase().as_str(),
                    "true" | "yes" | "on" | "enabled" | "enable"
                )
            }
            (["jetstream", "store" | "store_dir" | "storedir"], Some(v)) => cs.store_dir = Some(v),
            (["jetstream", "enabled"], Some(v)) => {
                cs.jetstream = matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on")
            }
            (["jetstream", "max_memory_store" | "max_mem_store" | "max_mem"], Some(_)) => {
                mem = true
            }
            (["jetstream", "max_file_store" | "max_file"], Some(_)) => disk = true,
            _ => {}
        }
    }
    cs.limits |= mem && disk;
    cs
}

/// The store dir of a nats-server process (`None`: not a nats-server, or one without
/// JetStream and without a store dir).
fn nats_server_store(pdir: &Path) -> Option<ServerStore> {
    let args = cmdline(pdir)?;
    if !is_nats_server(pdir, &args) {
        return None;
    }
    let flags = parse_flags(&args);
    let cwd = std::fs::read_link(pdir.join("cwd")).ok();
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        let abs = match (&cwd, p.is_absolute()) {
            (Some(c), false) => c.join(p),
            _ => p.to_path_buf(),
        };
        std::fs::canonicalize(&abs).unwrap_or_else(|_| lexical(&abs))
    };
    if let Some(sd) = flags.store_dir.as_deref().filter(|s| !s.is_empty()) {
        return Some(ServerStore {
            dir: resolve(sd),
            how: format!("command line -sd {sd}"),
        });
    }
    let env = |v: &str| environ_var(pdir, v);
    let conf = flags
        .config
        .as_deref()
        .map(|c| (c, conf_store(&resolve(c), &env, 0)));
    if let Some((c, cs)) = &conf {
        if let Some(sd) = cs.store_dir.as_deref().filter(|s| !s.is_empty()) {
            return Some(ServerStore {
                dir: resolve(sd),
                how: format!("store_dir {sd} in config {c}"),
            });
        }
    }
    let js = flags.jetstream || conf.as_ref().is_some_and(|(_, cs)| cs.jetstream);
    if !js {
        return None;
    }
    // os.TempDir(): $TMPDIR, else /tmp.
    let tmp = env("TMPDIR")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "/tmp".into());
    let limits = conf.as_ref().is_some_and(|(_, cs)| cs.limits);
    let (dir, what) = if limits {
        (Path::new(&tmp).to_path_buf(), "$TMPDIR")
    } else {
        (Path::new(&tmp).join("nats"), "$TMPDIR/nats")
    };
    Some(ServerStore {
        dir: resolve(&dir.to_string_lossy()),
        how: format!("JetStream enabled without a store dir: the server's default {what}"),
    })
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

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_in_every_go_form() {
        let f = parse_flags(&args(&["nats-server", "-p", "4222", "-js", "-sd", "/x"]));
        assert_eq!(f.store_dir.as_deref(), Some("/x"));
        assert!(f.jetstream);
        let f = parse_flags(&args(&[
            "nats-server",
            "--store_dir=/y",
            "--config",
            "a.conf",
        ]));
        assert_eq!(f.store_dir.as_deref(), Some("/y"));
        assert_eq!(f.config.as_deref(), Some("a.conf"));
        assert!(!f.jetstream);
        let f = parse_flags(&args(&["nats-server", "-c=b.conf", "--jetstream=false"]));
        assert_eq!(f.config.as_deref(), Some("b.conf"));
        assert!(!f.jetstream);
        let f = parse_flags(&args(&["nats-server", "--", "-sd", "/z"]));
        assert_eq!(f, ServerFlags::default());
    }

    #[test]
    fn conf_store_dir_in_every_syntax() {
        let tmp = tempfile::TempDir::new().unwrap();
        let none = |_: &str| None;
        for (text, want) in [
            ("jetstream {\n  store_dir: \"/a b\"\n}\n", "/a b"),
            ("jetstream {\n  store_dir = /x\n}\n", "/x"),
            ("jetstream {\n  store_dir /x # comment\n}\n", "/x"),
            ("jetstream { store: '/q', max_mem: 1G }", "/q"),
            ("port: 4222\n// c\nstore_dir: /top\njetstream: enabled\n", "/top"),
            ("JetStream {\n  StoreDir: /case\n}\n", "/case"),
            ("accounts { A { users: [ {user: a, password: b} ] } }\njetstream { storedir=/after }", "/after"),
        ] {
            let p = tmp.path().join("n.conf");
            std::fs::write(&p, text).unwrap();
            let cs = conf_store(&p, &none, 0);
            assert_eq!(cs.store_dir.as_deref(), Some(want), "{text}");
            assert!(cs.jetstream, "{text}");
        }
        // include, relative to the config file; $VAR from the process's environment
        std::fs::write(tmp.path().join("js.conf"), "jetstream { store_dir: $SD }").unwrap();
        let p = tmp.path().join("main.conf");
        std::fs::write(&p, "port 4222\ninclude ./js.conf\n").unwrap();
        let env = |v: &str| (v == "SD").then(|| "/from/env".to_string());
        assert_eq!(
            conf_store(&p, &env, 0).store_dir.as_deref(),
            Some("/from/env")
        );
        // no JetStream at all
        std::fs::write(&p, "port: 4222\n").unwrap();
        assert_eq!(conf_store(&p, &none, 0), ConfStore::default());
        std::fs::write(&p, "jetstream: disabled\n").unwrap();
        assert!(!conf_store(&p, &none, 0).jetstream);
        std::fs::write(&p, "jetstream { max_mem: 1G, max_file: 10G }\n").unwrap();
        let cs = conf_store(&p, &none, 0);
        assert!(cs.jetstream && cs.limits && cs.store_dir.is_none());
    }
}
