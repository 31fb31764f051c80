//! Helpers shared by the real-server tests: finding the servers and Python, and the
//! SKIP-unless-CI rule.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("true") | Ok("1")
    )
}

/// Fail under CI, otherwise say SKIP. Returns `None` so callers can `?`-style bail.
pub fn missing(what: &str) -> Option<()> {
    let msg = format!("{what} (install with `bash scripts/install-deps.sh`)");
    if in_ci() {
        panic!("CI=true and a real-server test prerequisite is missing: {msg}");
    }
    println!("SKIP: {msg}");
    None
}

pub fn python() -> PathBuf {
    let venv = repo().join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

pub fn find_server(env: &str, default: &Path) -> Option<PathBuf> {
    let path = match std::env::var_os(env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default.to_path_buf(),
    };
    if path.is_file() {
        Some(path)
    } else {
        missing(&format!(
            "nats-server not found at {} (set {env})",
            path.display()
        ))?;
        None
    }
}

/// nats-server 2.15.x: env `NATS_SERVER_215`, else `$REPO/.venv/bin/nats-server`.
pub fn server_215() -> Option<PathBuf> {
    find_server("NATS_SERVER_215", &repo().join(".venv/bin/nats-server"))
}

pub fn have_nats_py(py: &Path) -> bool {
    Command::new(py)
        .args(["-c", "import nats"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// nats-server 2.9.x: env `NATS_SERVER_29`, else `/usr/sbin/nats-server` (Debian).
pub fn server_29() -> Option<PathBuf> {
    find_server("NATS_SERVER_29", Path::new("/usr/sbin/nats-server"))
}

/// Python with nats-py, or `None` after [`missing`].
pub fn python_with_nats() -> Option<PathBuf> {
    let py = python();
    if have_nats_py(&py) {
        Some(py)
    } else {
        missing(&format!("python with nats-py ({})", py.display()))?;
        None
    }
}
