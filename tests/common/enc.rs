//! Helpers of the encryption tests (`encrypted_e2e.rs`, `encrypted_tgz_e2e.rs`): the sample
//! key, `tests/support/enc_check.py`, jetdir without a key in its environment, JSON output.
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

pub const KEY: &str = "jetdir-sample-key-0123456789abcdef";

pub fn enc_check(args: &[&str]) {
    let o = Command::new(super::python_with_nats())
        .arg(super::repo().join("tests/support/enc_check.py"))
        .args(args)
        .output()
        .expect("run enc_check.py");
    if o.status.code() == Some(4) {
        super::missing(&String::from_utf8_lossy(&o.stderr));
    }
    assert!(
        o.status.success(),
        "enc_check.py {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `enc_check.py load`: `server` (chacha, the fixtures' key; `extra` adds or overrides
/// arguments, e.g. `["--key", ""]`) loads `store`; what it recorded, from `out`.
pub fn enc_load(server: &str, store: &Path, out: &Path, extra: &[&str]) -> Value {
    let (s, o) = (store.display().to_string(), out.display().to_string());
    let mut args = vec![
        "load", "--server", server, "--cipher", "chacha", "--store", &s, "--out", &o,
    ];
    args.extend_from_slice(extra);
    enc_check(&args);
    read_json(out)
}

pub fn jetdir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .env_remove("JETDIR_KEY")
        .env_remove("JETDIR_PREV_KEY")
        .output()
        .expect("run jetdir")
}

pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}
