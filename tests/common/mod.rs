//! Helpers shared by the real-server tests: finding the servers and Python.
//!
//! Whether those tests run is decided at build time: build.rs sets `cfg(jetdir_no_server)`
//! when a server or nats-py is missing (and `CI` is not true), and every real-server test has
//! `#[cfg_attr(jetdir_no_server, ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh")]`,
//! so the runner reports it as ignored. A real-server test that runs without its server
//! fails (see [`missing`]); nothing here skips silently.
#![allow(dead_code)]
pub mod enc;
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

/// Fail the running test: a real-server prerequisite is missing. Outside CI build.rs marks
/// the real-server tests ignored when it cannot find a prerequisite, so a test that runs at
/// all must have it; under CI a missing prerequisite is a failure by definition.
pub fn missing(what: &str) -> ! {
    let why = if in_ci() {
        "CI=true and a real-server test prerequisite is missing"
    } else {
        "a real-server test prerequisite is missing although build.rs found it \
         (installed or removed since the last build? `touch build.rs`)"
    };
    panic!("{why}: {what} (install with `bash scripts/install-deps.sh`)");
}

pub fn python() -> PathBuf {
    let venv = repo().join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// The server binary from env `env`, else `default`; panics (via [`missing`]) if absent.
pub fn find_server(env: &str, default: &Path) -> PathBuf {
    let path = match std::env::var_os(env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default.to_path_buf(),
    };
    if !path.is_file() {
        missing(&format!(
            "nats-server not found at {} (set {env})",
            path.display()
        ));
    }
    path
}

/// nats-server 2.15.x: env `NATS_SERVER_215`, else `$REPO/.venv/bin/nats-server`.
pub fn server_215() -> PathBuf {
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
pub fn server_29() -> PathBuf {
    find_server("NATS_SERVER_29", Path::new("/usr/sbin/nats-server"))
}

/// Python with nats-py; panics (via [`missing`]) without it.
pub fn python_with_nats() -> PathBuf {
    let py = python();
    if !have_nats_py(&py) {
        missing(&format!("python with nats-py ({})", py.display()));
    }
    py
}

/// Copy a directory tree (tests verify a private copy, never the shared fixture).
pub fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dst = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}
