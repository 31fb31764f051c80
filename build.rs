//! Decides whether the real-server tests can run on this machine.
//!
//! The tests that start a real nats-server (tests/e2e_server.rs, tests/e2e_pack.rs,
//! tests/extract_e2e.rs) carry
//! `#[cfg_attr(jetdir_no_server, ignore = "...")]`. This script sets `jetdir_no_server`
//! when a prerequisite is missing, so the test runner reports those tests as *ignored*
//! (with the reason) instead of letting them pass without testing anything:
//!
//! - nats-server 2.15: env `NATS_SERVER_215`, else `<repo>/.venv/bin/nats-server`;
//! - nats-server 2.9: env `NATS_SERVER_29`, else `/usr/sbin/nats-server`;
//! - Python with nats-py: `<repo>/.venv/bin/python` (else `python3`) must `import nats`.
//!
//! Likewise `jetdir_no_gnu_time` when `/usr/bin/time` (GNU time, which tests/hostile.rs uses to
//! measure peak RSS) is missing.
//!
//! It also sets `JETDIR_GIT_COMMIT` for `jetdir --version`: the commit the binary is built
//! from (12 hex digits, `-dirty` is not tracked), or `unknown` when built outside a git
//! checkout of this repository (a crate tarball, `cargo install` from a copy). The script
//! re-runs when HEAD or the branch it points to moves.
//!
//! The same lookups are in tests/common/mod.rs. Under `CI=true` (or `CI=1`) the cfg is never
//! set: the tests run, and a missing prerequisite makes them fail.
//!
//! Re-running: the script runs again when `CI`, `NATS_SERVER_215` or `NATS_SERVER_29` change,
//! when this file changes, and when a watched path that existed at the last run changes or
//! disappears (`.venv/`, `/usr/sbin/nats-server`, the env-given server paths). Paths that do
//! not exist are deliberately not watched: Cargo treats a missing watched path as always
//! stale, which would rebuild the crate on every `cargo test`. So after installing the
//! prerequisites by hand, `touch build.rs`; `scripts/install-deps.sh` does that itself.
use std::path::{Path, PathBuf};
use std::process::Command;

fn env_path(var: &str, default: PathBuf) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default,
    }
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo::rerun-if-changed={}", path.display());
    }
}

fn in_ci() -> bool {
    matches!(
        std::env::var("CI")
            .map(|v| v.to_ascii_lowercase())
            .as_deref(),
        Ok("true") | Ok("1")
    )
}

/// `git ARGS` in `dir`: its trimmed stdout, or `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let s = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (o.status.success() && !s.is_empty()).then_some(s)
}

/// The commit this repository's checkout is at, for `--version`, and the git files to watch.
fn git_commit(repo: &Path) -> String {
    // only our own checkout: a crate unpacked inside some other repository is "unknown"
    let top = git(repo, &["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    let ours = match (top.and_then(|t| t.canonicalize().ok()), repo.canonicalize()) {
        (Some(t), Ok(r)) => t == r,
        _ => false,
    };
    if !ours {
        return "unknown".into();
    }
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(r) = git(repo, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(r);
    }
    for w in watched {
        if let Some(p) = git(repo, &["rev-parse", "--git-path", &w]) {
            watch(&repo.join(p));
        }
    }
    git(repo, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
}

fn main() {
    {
        let repo =
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
        println!("cargo::rustc-env=JETDIR_GIT_COMMIT={}", git_commit(&repo));
    }
    println!("cargo::rustc-check-cfg=cfg(jetdir_no_server)");
    println!("cargo::rustc-check-cfg=cfg(jetdir_no_gnu_time)");
    // tests/hostile.rs measures peak RSS with GNU time
    let gnu_time = Path::new("/usr/bin/time");
    watch(gnu_time);
    if !gnu_time.is_file() && !in_ci() {
        println!("cargo::rustc-cfg=jetdir_no_gnu_time");
        println!(
            "cargo::warning=hostile-input tests will be reported as ignored: /usr/bin/time is missing \
             (bash scripts/install-deps.sh installs it)"
        );
    }
    println!("cargo::rerun-if-changed=build.rs");
    for var in ["CI", "NATS_SERVER_215", "NATS_SERVER_29"] {
        println!("cargo::rerun-if-env-changed={var}");
    }

    let repo = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let venv = repo.join(".venv");
    let s215 = env_path("NATS_SERVER_215", venv.join("bin/nats-server"));
    let s29 = env_path("NATS_SERVER_29", PathBuf::from("/usr/sbin/nats-server"));
    let venv_py = venv.join("bin/python");
    let py = if venv_py.is_file() {
        venv_py
    } else {
        PathBuf::from("python3")
    };
    watch(&venv);
    watch(&s215);
    watch(&s29);

    let mut missing = Vec::new();
    for (name, p) in [("nats-server 2.15", &s215), ("nats-server 2.9", &s29)] {
        if !p.is_file() {
            missing.push(format!("{name} at {}", p.display()));
        }
    }
    let nats_py = Command::new(&py)
        .args(["-c", "import nats"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !nats_py {
        missing.push(format!("nats-py for {}", py.display()));
    }

    if missing.is_empty() || in_ci() {
        return;
    }
    println!("cargo::rustc-cfg=jetdir_no_server");
    println!(
        "cargo::warning=real-server tests will be reported as ignored; missing: {} \
         (bash scripts/install-deps.sh; after installing by hand: touch build.rs)",
        missing.join(", ")
    );
}
