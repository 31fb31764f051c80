//! Golden files for what people read: the text output of `jetdir verify` and `jetdir inspect`
//! (and `verify --json`) on the real-server fixtures, compared with `tests/golden/<name>.txt`.
//!
//! Each case runs the built binary with `--no-progress` on a private copy of the fixture (a
//! process holding the shared fixture open would be reported as `store_in_use`), twice: the
//! two runs must agree (the output is deterministic), and the normalised stdout must equal the
//! golden file. stderr (progress lines, whose order depends on the thread pool) is not compared.
//! Normalised: the copy's temp path → `<tmp>`, the repository path → relative paths,
//! durations (`1.23s`, `45ms`) → `<duration>`.
//!
//! After an intended change of the output: `JETDIR_BLESS=1 cargo test --test golden`, then
//! review `git diff tests/golden`.
mod common;
use common::copy_dir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Replace every `d.dd s`/`ms`/`µs` number (a duration) with `<duration>`.
fn mask_durations(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        if word_start && b[i].is_ascii_digit() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
                j += 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
            let rest = &s[j..];
            let unit = ["ms", "µs", "s"].into_iter().find(|u| {
                rest.starts_with(u)
                    && !rest[u.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphanumeric())
            });
            if let Some(u) = unit {
                out.push_str("<duration>");
                i = j + u.len();
            } else {
                out.push_str(&s[i..j]);
                i = j;
            }
            continue;
        }
        let c = s[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn normalise(s: &str, tmp: &Path) -> String {
    let s = s.replace(&tmp.display().to_string(), "<tmp>");
    let s = s.replace(&format!("{}/", repo().display()), "");
    let s = s.replace(&repo().display().to_string(), ".");
    mask_durations(&s)
}

/// Line diff (longest common subsequence), `-` golden / `+` actual, with 2 lines of context
/// around each change; at most `max` lines.
fn diff(expected: &str, actual: &str, max: usize) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (tag, golden line number, text)
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', i + 1, b[j]));
            j += 1;
        }
    }
    let near = |k: usize| {
        ops[k.saturating_sub(2)..(k + 3).min(ops.len())]
            .iter()
            .any(|o| o.0 != ' ')
    };
    let mut out = Vec::new();
    let mut gap = false;
    for (k, (tag, line, text)) in ops.iter().enumerate() {
        if near(k) {
            if gap || out.is_empty() {
                out.push(format!("@@ golden line {line} @@"));
            }
            out.push(format!("{tag}{text}"));
            gap = false;
        } else {
            gap = true;
        }
        if out.len() >= max {
            out.push("... (diff cut)".into());
            break;
        }
    }
    out.join("\n")
}

/// The time every verify/inspect golden is rendered at (ages are measured against it).
const AT: &str = "2026-12-01T00:00:00Z";

/// Run `jetdir --no-progress ARGS... <copy of fixture>` and compare with `tests/golden/<name>.txt`.
fn golden(name: &str, args: &[&str], fixture: &str) {
    golden_full(name, args, fixture, &|_| {}, &[]);
}

/// [`golden`] with the copy edited by `edit` first (damage), and `tail` arguments after the
/// path, where `<tmp>` stands for the scratch dir.
fn golden_full(name: &str, args: &[&str], fixture: &str, edit: &dyn Fn(&Path), tail: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = Path::new(fixture).file_name().unwrap();
    let target = tmp.path().join(leaf);
    let src = repo().join("fixtures").join(fixture);
    if src.is_file() {
        std::fs::copy(&src, &target).unwrap();
    } else {
        copy_dir(&src, &target);
    }
    edit(&target);
    let tail: Vec<String> = tail
        .iter()
        .map(|a| a.replace("<tmp>", &tmp.path().display().to_string()))
        .collect();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
            .env_remove("JETDIR_KEY")
            .env_remove("JETDIR_PREV_KEY")
            .arg("--no-progress")
            .args(args)
            .arg(&target)
            .args(&tail)
            .output()
            .expect("run jetdir");
        let mut text = format!(
            "$ jetdir --no-progress {} {}{}\nexit code: {}\n--- stdout\n",
            args.join(" "),
            target.display(),
            tail.iter().map(|a| format!(" {a}")).collect::<String>(),
            out.status
                .code()
                .map_or("killed by a signal".into(), |c| c.to_string())
        );
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        if !text.ends_with('\n') {
            text.push('\n');
        }
        normalise(&text, tmp.path())
    };
    let actual = run();
    let again = run();
    assert!(
        actual == again,
        "{name}: two runs differ (output is not deterministic):\n{}",
        diff(&actual, &again, 60)
    );
    let path = repo().join("tests/golden").join(format!("{name}.txt"));
    if std::env::var("JETDIR_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with JETDIR_BLESS=1 cargo test --test golden",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name}: output differs from {} (- golden, + actual); if the change is intended: \
         JETDIR_BLESS=1 cargo test --test golden\n{}",
        path.display(),
        diff(&expected, &actual, 80)
    );
}

#[test]
fn verify_v2_15_plain() {
    golden(
        "verify-v2.15.1-plain",
        &["verify", "--at", AT],
        "v2.15.1-plain/store",
    );
}

#[test]
fn inspect_v2_15_plain() {
    golden(
        "inspect-v2.15.1-plain",
        &["inspect", "--at", AT],
        "v2.15.1-plain/store",
    );
}

#[test]
fn verify_v2_9_legacy() {
    golden(
        "verify-v2.9.10-legacy",
        &["verify", "--at", AT],
        "v2.9.10-legacy/store",
    );
}

#[test]
fn inspect_v2_9_legacy() {
    golden(
        "inspect-v2.9.10-legacy",
        &["inspect", "--at", AT],
        "v2.9.10-legacy/store",
    );
}

#[test]
fn verify_v2_15_s2() {
    golden(
        "verify-v2.15.1-s2",
        &["verify", "--at", AT],
        "v2.15.1-s2/store",
    );
}

#[test]
fn inspect_v2_15_s2() {
    golden(
        "inspect-v2.15.1-s2",
        &["inspect", "--at", AT],
        "v2.15.1-s2/store",
    );
}

#[test]
fn verify_backup_v2_15() {
    golden(
        "verify-backup-v2.15.1",
        &["verify", "--at", AT],
        "backups/v2.15.1/ORDERS",
    );
}

#[test]
fn inspect_backup_v2_15() {
    golden(
        "inspect-backup-v2.15.1",
        &["inspect", "--at", AT],
        "backups/v2.15.1/ORDERS",
    );
}

#[test]
fn verify_json_v2_15_plain() {
    golden(
        "verify-json-v2.15.1-plain",
        &["--json", "verify", "--at", "2026-12-01T00:00:00Z"],
        "v2.15.1-plain/store",
    );
}

/// One flipped payload byte in MULTI/msgs/2.blk (seq 35).
fn flip_multi(store: &Path) {
    let blk = store.join("jetstream/$G/streams/MULTI/msgs/2.blk");
    let mut b = std::fs::read(&blk).unwrap();
    b[4200] ^= 0x20;
    std::fs::write(&blk, b).unwrap();
}

/// The same, and index.db gone: the server rebuilds and truncates the block.
fn flip_multi_no_index(store: &Path) {
    flip_multi(store);
    std::fs::remove_file(store.join("jetstream/$G/streams/MULTI/msgs/index.db")).unwrap();
}

#[test]
fn verify_damaged_unreadable() {
    golden_full(
        "verify-damaged-unreadable",
        &["verify", "--at", AT],
        "v2.15.1-plain/store",
        &flip_multi,
        &[],
    );
}

#[test]
fn verify_damaged_loses() {
    golden_full(
        "verify-damaged-loses",
        &["verify", "--at", AT],
        "v2.15.1-plain/store",
        &flip_multi_no_index,
        &[],
    );
}

#[test]
fn inspect_damaged_loses() {
    golden_full(
        "inspect-damaged-loses",
        &["inspect", "--at", AT],
        "v2.15.1-plain/store",
        &flip_multi_no_index,
        &[],
    );
}

#[test]
fn verify_backup_v1_2_9() {
    golden(
        "verify-backup-v2.9.10",
        &["verify", "--at", AT],
        "backups/v2.9.10/ORDERS",
    );
}

#[test]
fn verify_backup_tgz() {
    golden(
        "verify-backup-tgz",
        &["verify", "--at", AT],
        "backups/ORDERS.tgz",
    );
}

/// A V1 backup: its files are written as they are, so the sizes are fixed (a V2 extract writes
/// meta.inf with the time of the run: its size varies with the trailing zeros of the fraction).
#[test]
fn extract_dry_run_v1() {
    golden_full(
        "extract-dry-run-v2.9.10",
        &["extract"],
        "backups/v2.9.10/ORDERS",
        &|_| {},
        &["--store-dir", "<tmp>", "--dry-run"],
    );
}

#[test]
fn normalising_masks_durations_and_paths_only() {
    assert_eq!(
        mask_durations("done, 102.9 KiB in 0.01s; 45ms; 3µs; v2.15.1 1.blk 12s2"),
        "done, 102.9 KiB in <duration>; <duration>; <duration>; v2.15.1 1.blk 12s2"
    );
    let tmp = Path::new("/tmp/x1");
    let repo = repo().display().to_string();
    assert_eq!(
        normalise(&format!("/tmp/x1/store {repo}/fixtures/a {repo}"), tmp),
        "<tmp>/store fixtures/a ."
    );
}

#[test]
fn diff_shows_the_changed_lines() {
    let d = diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nX\ne\nf\ng\n", 80);
    assert_eq!(d, "@@ golden line 2 @@\n b\n c\n-d\n+X\n e\n f");
}

/// Write the fixtures' JetStream key beside the copy (`<tmp>/key`).
fn write_key(store: &Path) {
    std::fs::write(
        store.parent().unwrap().join("key"),
        "jetdir-sample-key-0123456789abcdef\n",
    )
    .unwrap();
}

#[test]
fn inspect_encrypted_without_key() {
    golden(
        "inspect-v2.15.1-enc-aes-no-key",
        &["inspect", "--at", AT],
        "v2.15.1-enc-aes/store",
    );
}

#[test]
fn inspect_encrypted_with_key() {
    golden_full(
        "inspect-v2.9.10-enc-chacha",
        &["inspect", "--at", AT],
        "v2.9.10-enc-chacha/store",
        &write_key,
        &["--key-file", "<tmp>/key"],
    );
}
