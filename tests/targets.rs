//! Safe targets: where extract and pack write, and what they refuse.
//!
//! - a running nats-server that holds nothing open is still found (its command line or config
//!   names the store dir): extract and pack refuse (exit 2, naming the pid and how it was
//!   matched), verify and inspect warn;
//! - no symlink out of the store is written through;
//! - a `--store-dir` that is really `jetstream/`, an account or a streams dir is refused with
//!   the path to use; a missing one is created only with `--create`;
//! - what extract creates takes the store dir's owner and the server's modes.
mod common;

use common::*;
use serde_json::Value;
#[allow(unused_imports)]
use std::os::unix::fs::symlink;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

fn orders_backup() -> PathBuf {
    fixtures().join("backups/v2.15.1/ORDERS")
}

fn jetdir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .expect("run jetdir")
}

/// Run jetdir with `--json -q` → (exit code, JSON document, stderr).
fn jetdir_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["--json", "-q"];
    all.extend_from_slice(args);
    let out = jetdir(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {stdout}\nstderr: {stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A real nats-server 2.15, started in `cwd` (outside the store) with `args`, killed by pid on
/// drop.
struct Server(Child);

impl Server {
    fn start(cwd: &Path, args: &[&str], ready: &Path) -> Server {
        let bin = server_215();
        let port = free_port().to_string();
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port])
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let srv = Server(child);
        // JetStream is up once its dir exists and the port answers.
        for _ in 0..200 {
            if ready.is_dir() && std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok() {
                std::thread::sleep(std::time::Duration::from_millis(200));
                return srv;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("nats-server did not come up ({})", ready.display());
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pids of processes that have something under `dir` open or as their cwd.
fn holders(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = e.path();
        if let Ok(cwd) = std::fs::read_link(p.join("cwd")) {
            if cwd.starts_with(dir) {
                out.push(format!("{} cwd", p.display()));
            }
        }
        if let Ok(fds) = std::fs::read_dir(p.join("fd")) {
            for fd in fds.flatten() {
                if std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(dir)) {
                    out.push(format!("{} fd", p.display()));
                }
            }
        }
    }
    out
}

/// Extract ORDERS into `store` (no server running) so the server has a stream to serve.
fn store_with_orders(store: &Path) {
    let (code, rep, _) = jetdir_json(&[
        "extract",
        &s(&orders_backup()),
        "--store-dir",
        &s(store),
        "--create",
    ]);
    assert_eq!(code, 0, "{rep:#}");
}

/// Every command against an idle server's store: extract and pack refuse naming the pid and
/// how it was matched, verify and inspect warn; `--force` goes on with a warning.
fn check_running(store: &Path, pid: u32, how: &str, tmp: &Path) {
    // The idle server holds nothing open under the store and its cwd is elsewhere: only its
    // command line / config can tell.
    let held = holders(store);
    assert!(
        held.iter().all(|h| !h.contains(&format!("/{pid} "))),
        "the server holds files under the store: {held:?}"
    );
    let (code, rep, _) = jetdir_json(&[
        "extract",
        &s(&orders_backup()),
        "--store-dir",
        &s(store),
        "--account",
        "ACC3",
    ]);
    assert_eq!(code, 2, "{rep:#}");
    let why = rep["refused"].as_str().unwrap();
    assert!(why.contains(&format!("pid {pid}")), "{why}");
    assert!(why.contains(how), "{why}");
    assert!(!store.join("jetstream/ACC3").exists());

    let out = tmp.join("packed");
    let (code, rep, _) = jetdir_json(&["pack", &s(store), "--stream", "ORDERS", "-o", &s(&out)]);
    assert_eq!(code, 2, "{rep:#}");
    let why = rep["refused"].as_str().unwrap();
    assert!(
        why.contains(&format!("pid {pid}")) && why.contains(how),
        "{why}"
    );
    assert!(!out.exists());

    for cmd in ["verify", "inspect"] {
        let (code, rep, _) = jetdir_json(&[cmd, &s(store)]);
        assert_eq!(code, 0, "{cmd}: {rep:#}");
        let warned = rep["problems"].as_array().unwrap().iter().any(|p| {
            p["kind"] == "store_in_use"
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("pid {pid}")) && m.contains(how))
        });
        assert!(warned, "{cmd}: {rep:#}");
    }

    let (code, rep, _) = jetdir_json(&[
        "extract",
        &s(&orders_backup()),
        "--store-dir",
        &s(store),
        "--account",
        "ACC3",
        "--force",
    ]);
    assert_eq!(code, 0, "{rep:#}");
    assert!(
        rep["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(&format!("pid {pid}"))),
        "{rep:#}"
    );
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn idle_server_started_with_sd_is_found() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    store_with_orders(&store);
    let elsewhere = tmp.path().join("cwd");
    std::fs::create_dir(&elsewhere).unwrap();
    // a relative -sd, resolved against the server's cwd
    let srv = Server::start(
        &elsewhere,
        &["-js", "-sd", "../store"],
        &store.join("jetstream"),
    );
    check_running(&store, srv.pid(), "command line -sd ../store", tmp.path());
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn idle_server_started_with_a_config_file_is_found() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store = tmp.path().join("store");
    store_with_orders(&store);
    let conf_dir = tmp.path().join("etc");
    std::fs::create_dir(&conf_dir).unwrap();
    let conf = conf_dir.join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "# a server config\nserver_name: t1\njetstream {{\n  max_mem: 64M\n  store_dir = \"{}\"\n}}\n",
            store.display()
        ),
    )
    .unwrap();
    let srv = Server::start(&conf_dir, &["-c", "nats.conf"], &store.join("jetstream"));
    check_running(&store, srv.pid(), "in config nats.conf", tmp.path());
}

#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server and nats-py: bash scripts/install-deps.sh"
)]
fn idle_server_with_the_default_store_dir_is_found() {
    // -js without a store dir: the server uses $TMPDIR/nats/jetstream.
    let tmp = tempfile::TempDir::new().unwrap();
    let bin = server_215();
    let port = free_port().to_string();
    let store = tmp.path().join("nats");
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port, "-js"])
        .env("TMPDIR", tmp.path())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let srv = Server(child);
    for _ in 0..200 {
        if store.join("jetstream").is_dir() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (code, rep, _) = jetdir_json(&["extract", &s(&orders_backup()), "--store-dir", &s(&store)]);
    assert_eq!(code, 2, "{rep:#}");
    let why = rep["refused"].as_str().unwrap();
    assert!(
        why.contains(&format!("pid {}", srv.pid())) && why.contains("default $TMPDIR/nats"),
        "{why}"
    );
}
