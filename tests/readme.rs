//! README.md's example outputs are what jetdir prints.
//!
//! Every fenced block of README.md holding a `$ jetdir …` line is an example: its `$ ` lines
//! are commands, the lines after each one (up to the next `$ ` line) the output it claims.
//! Each checked block runs in a fresh temp dir (removed at the end), with the built binary
//! (`CARGO_BIN_EXE_jetdir`), its commands one after the other in that dir (a later command
//! sees what an earlier one wrote), and the output is compared with the block line by line.
//! Every block must be listed in [`EXAMPLES`] by its first command: checked (with the setup
//! that makes its input) or not checked (with the reason), so a new README example fails
//! this test until it is classified.
//!
//! How a command runs: the words after `$ jetdir` (single and double quotes as the shell
//! reads them; ` # …` is a comment; `> FILE` sends stdout to FILE in the temp dir), with `-q`
//! put first (no progress lines: on a terminal the progress bar is erased, what stays is
//! what the README shows) and `JETDIR_KEY`/`JETDIR_PREV_KEY` removed from the environment.
//! stdout and stderr go to one file, in the order written, as a terminal shows them.
//! `$ echo $?` checks the previous command's exit code.
//!
//! Comparison: line by line, exactly. A README line that is only `…` or `...` stands for any
//! number of lines (an elision the block marks); nothing else is skipped. Normalised, in the
//! actual output and in the README alike, and only this:
//! - paths: an absolute path the README shows (`/var/lib/nats`, `/tmp/packdemo`, `/tmp/rd`)
//!   is given to jetdir as the same path inside the temp dir, and printed back as the README's;
//!   relative paths (`store`, `fixtures/…`) are the temp dir's own (fixtures are copied in: a
//!   process holding a shared fixture open would be reported as `store_in_use`);
//! - `jetdir --version`: the commit (`(commit 3e62a7e66d1d)`) is the build's;
//! - `check`: `duration=0.018s` is the run's wall time;
//! - `pack`/`salvage` listings: the size and SHA-256 of `manifest.json` (it records the time
//!   of the pack, the host and the output's path); the other files' sizes and digests are
//!   compared;
//! - the account examples' working dir `/tmp/balls` is `/tmp/balls<random>`: its name, in
//!   the accounts a finding says were tried, is printed as `balls`;
//! - examples built by a real nats-server in the test (the account tarballs, dump, kv,
//!   object and diff examples): the message times (`2026-11-30T13:08:38.162803301Z` and 19-digit
//!   nanosecond `ts` values), the record checksums a finding quotes (`stored …, computed …`:
//!   the checksum covers the time) and the digest of `big.bin` (random bytes) are that
//!   server run's own.
//!
//! Not checked (see [`EXAMPLES`]): the second `cluster --server-name n1 n1/store` (a stopped
//! 3-node cluster whose raft group names are random and whose terms, votes and WAL sizes
//! depend on the elections of the run: tests/cluster_e2e.rs checks its claims).
//! Blocks without a `$ jetdir` line are not examples of a command run here: the commands to
//! type (```sh blocks without output), the keystream benchmark's output, and the shortened
//! `cluster --json` excerpts (reindented parts of a document, not its lines).
//!
//! The check can fail: `a_changed_readme_line_fails_naming_it` changes one character of one
//! output line and expects the failure to name the README line and both versions.
mod common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A README line: its number (1-based) and text.
#[derive(Clone, Debug)]
struct Line {
    no: usize,
    text: String,
}

/// One command of a block and the output the README claims for it.
#[derive(Clone, Debug)]
struct Cmd {
    line: Line,
    expected: Vec<Line>,
}

/// A fenced block holding `$ jetdir` lines.
#[derive(Clone, Debug)]
struct Block {
    cmds: Vec<Cmd>,
}

impl Block {
    fn first(&self) -> &str {
        self.cmds[0].line.text.as_str()
    }
    fn start(&self) -> usize {
        self.cmds[0].line.no
    }
}

fn parse_readme(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut in_block = false;
    let mut cur: Vec<Line> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.starts_with("```") {
            if in_block {
                if cur.iter().any(|l| l.text.starts_with("$ jetdir")) {
                    let mut cmds: Vec<Cmd> = Vec::new();
                    for l in cur.drain(..) {
                        if l.text.starts_with("$ ") {
                            cmds.push(Cmd {
                                line: l,
                                expected: Vec::new(),
                            });
                        } else if let Some(c) = cmds.last_mut() {
                            c.expected.push(l);
                        }
                    }
                    blocks.push(Block { cmds });
                }
                cur.clear();
            }
            in_block = !in_block;
            continue;
        }
        if in_block {
            cur.push(Line {
                no: i + 1,
                text: l.to_string(),
            });
        }
    }
    blocks
}

/// A `$ ` line as the shell reads it: words (quotes removed), without a trailing comment, and
/// a `> FILE` redirection.
fn shell_words(line: &str) -> (Vec<String>, Option<String>) {
    let s = line.strip_prefix("$ ").unwrap_or(line);
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '"' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    let mut redirect = None;
    if let Some(i) = words.iter().position(|w| w == ">") {
        redirect = words.get(i + 1).cloned();
        words.truncate(i);
    }
    (words, redirect)
}

/// A line that is only `…` or `...` (indentation aside).
fn is_elision(l: &str) -> bool {
    matches!(l.trim(), "…" | "...")
}

/// Does `actual` match `expected`, where an elision line matches any number of lines?
fn matches(expected: &[&str], actual: &[&str]) -> bool {
    // dp[i][j]: expected[i..] matches actual[j..]
    let (n, m) = (expected.len(), actual.len());
    let mut dp = vec![vec![false; m + 1]; n + 1];
    dp[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            dp[i][j] = if is_elision(expected[i]) {
                dp[i + 1][j] || (j < m && dp[i][j + 1])
            } else {
                j < m && expected[i] == actual[j] && dp[i + 1][j + 1]
            };
        }
    }
    dp[0][0]
}

/// Why `actual` does not match `expected`: the first README line that has no counterpart,
/// with the actual line at that place.
fn mismatch(cmd: &Line, expected: &[Line], actual: &[&str]) -> String {
    if expected.is_empty() {
        return format!(
            "README.md:{}: the README shows no output for this command; jetdir printed `{}`",
            cmd.no,
            actual.first().copied().unwrap_or("")
        );
    }
    // walk the segments between elisions, each placed at its first full match
    let mut j = 0;
    let mut free = false; // an elision before this segment: it may start later
    let mut i = 0;
    while i < expected.len() {
        if is_elision(&expected[i].text) {
            free = true;
            i += 1;
            continue;
        }
        let end = (i..expected.len())
            .find(|&k| is_elision(&expected[k].text))
            .unwrap_or(expected.len());
        let seg: Vec<&str> = expected[i..end].iter().map(|l| l.text.as_str()).collect();
        let last = end == expected.len();
        let fits = |at: usize| {
            at + seg.len() <= actual.len()
                && actual[at..at + seg.len()] == seg[..]
                && (!last || at + seg.len() == actual.len())
        };
        let starts: Vec<usize> = if free {
            (j..=actual.len()).collect()
        } else {
            vec![j]
        };
        if let Some(&at) = starts.iter().find(|&&at| fits(at)) {
            j = at + seg.len();
            free = false;
            i = end;
            continue;
        }
        // the start with the longest matching prefix names the first differing line
        let prefix = |at: usize| {
            seg.iter()
                .zip(actual.get(at..).unwrap_or(&[]))
                .take_while(|(a, b)| a == b)
                .count()
        };
        let best = starts
            .iter()
            .copied()
            .max_by_key(|&at| (prefix(at), usize::MAX - at));
        let at = best.unwrap_or(j);
        let k = prefix(at);
        if k < seg.len() {
            let got = shown(actual.get(at + k).copied());
            return format!(
                "README.md:{}: expected `{}`\n{:>width$} got      {got}",
                expected[i + k].no,
                seg[k],
                "",
                width = format!("README.md:{}:", expected[i + k].no).len()
            );
        }
        // the whole segment matched but output follows the block's last line
        return format!(
            "README.md:{}: the output goes on after this line: {}",
            expected[end - 1].no,
            shown(actual.get(at + k).copied())
        );
    }
    format!(
        "README.md:{}: the output goes on after this line: {}",
        expected[expected.len() - 1].no,
        shown(actual.get(j).copied())
    )
}

/// An output line in a message: quoted, or what stands in its place.
fn shown(l: Option<&str>) -> String {
    match l {
        Some("") => "an empty line".into(),
        Some(l) => format!("`{l}`"),
        None => "end of output".into(),
    }
}

/// An example's input, made in the temp dir, and the README's absolute paths mapped into it.
struct Ctx {
    tmp: PathBuf,
    /// (README's path, the temp dir's path): given to jetdir as the second, printed as the first
    paths: Vec<(String, String)>,
    /// the data was written by a real server in this run: its times and checksums are its own
    server_data: bool,
    /// literal strings that are the run's own (or the README author's run's own), and the mark
    /// that replaces them in both
    masks: Vec<(String, &'static str)>,
    /// temp dirs a setup made besides the block's own (removed at the end with it)
    keep: Vec<tempfile::TempDir>,
}

impl Ctx {
    fn at(&self, p: &str) -> PathBuf {
        self.tmp.join(p)
    }
    /// The README's absolute path `p` is `<tmp>/<p>` here (created as a dir when `mkdir`).
    fn map(&mut self, p: &str, mkdir: bool) {
        let real = self.tmp.join(p.trim_start_matches('/'));
        if mkdir {
            std::fs::create_dir_all(&real).unwrap();
        }
        self.paths
            .push((p.to_string(), real.to_str().unwrap().to_string()));
    }
    /// Copy a fixture dir (relative to the repository) to the same relative path here, or to
    /// `to`.
    fn fixture(&self, from: &str, to: &str) {
        let dst = self.at(to);
        let src = repo().join(from);
        if src.is_dir() {
            common::copy_dir(&src, &dst);
        } else {
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(&src, &dst).unwrap();
        }
    }
    fn untar(&self, tgz: &str) {
        let f = std::fs::File::open(repo().join(tgz)).unwrap();
        tar::Archive::new(flate2::read::GzDecoder::new(f))
            .unpack(&self.tmp)
            .unwrap();
    }
}

/// One flipped payload byte in MULTI/msgs/2.blk (seq 35) of the 2.15.1 plain store, as in
/// tests/golden.rs (README: "one flipped payload byte in `MULTI/msgs/2.blk` (seq 35)").
fn flip_multi(store: &Path) {
    let blk = store.join("jetstream/$G/streams/MULTI/msgs/2.blk");
    let mut b = std::fs::read(&blk).unwrap();
    b[4200] ^= 0x20;
    std::fs::write(&blk, b).unwrap();
}

/// `store` = the 2.15.1 plain fixture with MULTI's seq 35 flipped and, when `no_index`, its
/// index.db removed.
fn damaged_store(c: &Ctx, name: &str, no_index: bool) {
    c.fixture("fixtures/v2.15.1-plain/store", name);
    let store = c.at(name);
    flip_multi(&store);
    if no_index {
        std::fs::remove_file(store.join("jetstream/$G/streams/MULTI/msgs/index.db")).unwrap();
    }
}

type Setup = fn(&mut Ctx);

enum How {
    /// runs on the bundled fixtures after this setup
    Fixtures(Setup),
    /// its data is made by a real nats-server (tests/support/*.py) in [`server_examples`]
    Server(Setup),
    /// not checked, and why
    No(&'static str),
}

/// Every README block with a `$ jetdir` line, by its first command.
const EXAMPLES: &[(&str, How)] = &[
    ("$ jetdir --version", How::Fixtures(|_| {})),
    (
        "$ jetdir verify --at 2026-12-01T00:00:00Z store",
        How::Fixtures(|c| damaged_store(c, "store", false)),
    ),
    (
        "$ jetdir verify --at 2026-12-01T00:00:00Z store-dmg",
        How::Fixtures(|c| damaged_store(c, "store-dmg", true)),
    ),
    (
        "$ jetdir inspect fixtures/v2.15.1-enc-aes/store",
        How::Fixtures(|c| {
            c.fixture(
                "fixtures/v2.15.1-enc-aes/store",
                "fixtures/v2.15.1-enc-aes/store",
            )
        }),
    ),
    (
        "$ jetdir verify --key-file js.key EV.tgz",
        How::Server(account_tarballs),
    ),
    ("$ jetdir verify SECRET.tgz", How::Fixtures(secret_tgz)),
    (
        "$ jetdir inspect --at 2026-12-01T00:00:00Z 'store/jetstream/$G/streams/ORDERS'",
        How::Fixtures(|c| c.fixture("fixtures/v2.15.1-plain/store", "store")),
    ),
    (
        "$ jetdir extract fixtures/backups/ORDERS.tgz --store-dir /var/lib/nats --dry-run     # verify, list files, write nothing",
        How::Fixtures(|c| {
            c.fixture("fixtures/backups/ORDERS.tgz", "fixtures/backups/ORDERS.tgz");
            c.fixture(
                "fixtures/backups/v2.15.1/ORDERS",
                "fixtures/backups/v2.15.1/ORDERS",
            );
            c.map("/var/lib/nats", true);
        }),
    ),
    (
        "$ jetdir pack fixtures/v2.15.1-plain/store --stream ORDERS -o /tmp/packdemo/ORDERS",
        How::Fixtures(|c| {
            c.fixture(
                "fixtures/v2.15.1-plain/store",
                "fixtures/v2.15.1-plain/store",
            );
            c.map("/tmp/packdemo", true);
        }),
    ),
    (
        "$ jetdir extract fixtures/backups/v2.15.1/ORDERS --store-dir store --as ORDERS_COPY",
        How::Fixtures(|c| {
            c.fixture("fixtures/v2.15.1-plain/store", "store");
            c.fixture(
                "fixtures/backups/v2.15.1/ORDERS",
                "fixtures/backups/v2.15.1/ORDERS",
            );
            c.map("/tmp/rd", true);
        }),
    ),
    (
        "$ jetdir rehome 'v2.15.1-cluster-n1/store/jetstream/$G/streams/CL' -o /tmp/rd/CL",
        How::Fixtures(|c| {
            c.untar("fixtures/samples/v2.15.1-cluster-n1.tar.gz");
            c.map("/tmp/rd", true);
        }),
    ),
    (
        "$ jetdir check fixtures/v2.15.1-plain/store",
        How::Fixtures(|c| {
            c.fixture(
                "fixtures/v2.15.1-plain/store",
                "fixtures/v2.15.1-plain/store",
            );
            c.fixture(
                "fixtures/backups/v2.15.1/ORDERS",
                "fixtures/backups/v2.15.1/ORDERS",
            );
            damaged_store(c, "store-dmg", true);
            c.map("/var/lib/nats", false);
        }),
    ),
    (
        "$ jetdir check store-dmg --format prometheus",
        How::Fixtures(|c| damaged_store(c, "store-dmg", true)),
    ),
    (
        "$ jetdir dump /var/lib/nats/store --stream EV --seq 19..21",
        How::Server(ev_store),
    ),
    (
        "$ jetdir dump /var/lib/nats/store --stream EV --seq 19..21 --json --headers-only",
        How::Server(ev_store),
    ),
    (
        "$ jetdir kv /var/lib/nats/store --bucket cfg keys",
        How::Server(ev_store),
    ),
    (
        "$ jetdir object /var/lib/nats/store --bucket files",
        How::Server(ev_store),
    ),
    ("$ jetdir diff node1 node2 node3", How::Server(replicas)),
    (
        "$ jetdir salvage store --stream MULTI -o MULTI",
        How::Fixtures(|c| damaged_store(c, "store", true)),
    ),
    (
        "$ jetdir explain store --at 2026-12-01T00:00:00Z",
        How::Fixtures(|c| damaged_store(c, "store", true)),
    ),
    (
        "$ jetdir cluster --server-name n1 n1/store",
        How::Fixtures(|c| {
            c.untar("fixtures/samples/v2.15.1-cluster-log-n1.tar.gz");
            std::fs::rename(c.at("v2.15.1-cluster-log-n1"), c.at("n1")).unwrap();
        }),
    ),
    (
        "$ jetdir cluster --server-name n1 store",
        How::Fixtures(|c| {
            c.untar("fixtures/samples/v2.10.26-cluster-ops-n1.tar.gz");
            c.tmp = c.at("v2.10.26-cluster-ops-n1");
        }),
    ),
];

/// The second block starting `$ jetdir cluster --server-name n1 n1/store` (README's first
/// is the 2.15.1 cluster-log sample's).
const CLUSTER_E2E_WHY: &str = "a stopped 3-node 2.15.1 cluster (tests/cluster_e2e.rs): its raft \
     group names are random and its terms, votes and WAL sizes depend on the run's elections";

/// `tar czf OUT/NAME.tgz NAME` in `dir`.
fn tar_stream(out: &Path, dir: &Path, name: &str) {
    let f = std::fs::File::create(out.join(format!("{name}.tgz"))).unwrap();
    let mut t = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::default(),
    ));
    t.append_dir_all(name, dir.join(name)).unwrap();
    t.into_inner().unwrap().finish().unwrap();
}

/// The account examples: `tar czf` of streams EV and KV_cfg (tests/support/forensics_scenario.py
/// in account ACC of nats-server 2.15.1 with the key and cipher chacha) in `/tmp/balls`, the
/// commands' working dir, with `js.key`. jetdir tries the names of the dirs holding a tarball
/// as accounts, so the dir is `/tmp/balls<random>` here, printed as `balls`.
fn account_tarballs(c: &mut Ctx) {
    let run = server_run(
        "forensics_scenario.py",
        &[
            "--key",
            "jetdir-sample-key-0123456789abcdef",
            "--cipher",
            "chacha",
            "--account",
            "ACC",
        ],
    );
    let balls = tempfile::Builder::new()
        .prefix("balls")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = balls.path().to_path_buf();
    std::fs::write(dir.join("js.key"), "jetdir-sample-key-0123456789abcdef\n").unwrap();
    let streams = run.join("store/jetstream/ACC/streams");
    tar_stream(&dir, &streams, "EV");
    tar_stream(&dir, &streams, "KV_cfg");
    let name = dir.file_name().unwrap().to_str().unwrap().to_string();
    c.masks.push((format!(", {name},"), ", balls,"));
    c.tmp = dir;
    c.keep.push(balls);
    c.server_data = true;
}

/// `SECRET.tgz`: `tar czf SECRET.tgz SECRET` of the bundled chacha store's stream, `js.key`
/// its key (fixtures/README.md), and an empty store dir for extract.
fn secret_tgz(c: &mut Ctx) {
    std::fs::write(c.at("js.key"), "jetdir-sample-key-0123456789abcdef\n").unwrap();
    tar_stream(
        &c.tmp,
        &repo().join("fixtures/v2.15.1-enc-chacha/store/jetstream/$G/streams"),
        "SECRET",
    );
    c.map("/var/lib/nats", true);
}

/// The made-by-a-server input of the dump/kv/object examples: tests/support/forensics_scenario.py's
/// store (streams EV, KV_cfg, OBJ_files) at `/var/lib/nats/store`, seq 20 of EV with its last
/// payload byte flipped (README: "a flipped payload byte in seq 20 … index.db trusted").
fn ev_store(c: &mut Ctx) {
    let run = server_run("forensics_scenario.py", &[]);
    c.map("/var/lib/nats", true);
    let store = c.at("var/lib/nats/store");
    common::copy_dir(&run.join("store"), &store);
    let ev = store.join("jetstream/$G/streams/EV");
    flip_last_payload_byte(c, &ev, "EV", 20);
    // big.bin is 300000 random bytes: its digest is the run's own
    let out = jetdir(
        &c.tmp,
        &[
            "--json",
            "object",
            store.to_str().unwrap(),
            "--bucket",
            "files",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.0).unwrap();
    let digest = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "big.bin")
        .map(|o| {
            let d = o["digest"].as_str().unwrap();
            d.trim_start_matches("SHA-256=").to_string()
        })
        .expect("big.bin in the bucket");
    c.masks.push((digest, "<big.bin digest>"));
    c.server_data = true;
}

/// The diff example's three replicas of stream R (tests/support/salvage_scenario.py `lag`):
/// node1 the up-to-date store, node2 the copy that stopped early, node3 node1 with seq 7's
/// last payload byte flipped.
fn replicas(c: &mut Ctx) {
    let run = server_run("salvage_scenario.py", &["lag"]);
    common::copy_dir(&run.join("store"), &c.at("node1"));
    common::copy_dir(&run.join("lag"), &c.at("node2"));
    common::copy_dir(&run.join("store"), &c.at("node3"));
    let r = c.at("node3/jetstream/$G/streams/R");
    flip_last_payload_byte(c, &r, "R", 7);
    c.server_data = true;
}

/// Flip the last payload byte of `seq` (just before its 8-byte checksum), found by dump.
fn flip_last_payload_byte(c: &Ctx, stream_dir: &Path, stream: &str, seq: u64) {
    let store = stream_dir.ancestors().nth(4).unwrap();
    let out = jetdir(
        &c.tmp,
        &[
            "dump",
            "--json",
            store.to_str().unwrap(),
            "--stream",
            stream,
            "--seq",
            &seq.to_string(),
        ],
    );
    let first = String::from_utf8(out.0).unwrap();
    let m: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    let blk = stream_dir.join(m["file"].as_str().unwrap());
    let at = (m["offset"].as_u64().unwrap() + m["size"].as_u64().unwrap() - 9) as usize;
    let mut b = std::fs::read(&blk).unwrap();
    b[at] ^= 0x55;
    std::fs::write(&blk, b).unwrap();
}

/// The scenario runs of [`server_run`]: each once per test, in one temp dir that
/// [`RunsGuard`] removes when the test ends.
static RUNS: std::sync::Mutex<Option<(tempfile::TempDir, BTreeMap<String, PathBuf>)>> =
    std::sync::Mutex::new(None);

struct RunsGuard;

impl Drop for RunsGuard {
    fn drop(&mut self) {
        RUNS.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Run a tests/support scenario against nats-server 2.15.1 into a fresh dir (once per
/// scenario and arguments; the examples copy what they change).
fn server_run(script: &str, args: &[&str]) -> PathBuf {
    let key = format!("{script} {args:?}");
    let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let (root, done) =
        runs.get_or_insert_with(|| (tempfile::TempDir::new().unwrap(), BTreeMap::new()));
    if let Some(p) = done.get(&key) {
        return p.clone();
    }
    let out = root.path().join(format!("run{}", done.len()));
    let o = Command::new(common::python_with_nats())
        .arg(repo().join("tests/support").join(script))
        .arg("--server")
        .arg(common::server_215())
        .arg("--out")
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    done.insert(key, out.clone());
    out
}

/// Run jetdir in `dir`: (stdout and stderr as written, one after the other, exit code).
fn jetdir(dir: &Path, args: &[&str]) -> (Vec<u8>, i32) {
    let o = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .arg("-q")
        .args(args)
        .current_dir(dir)
        .env_remove("JETDIR_KEY")
        .env_remove("JETDIR_PREV_KEY")
        .output()
        .unwrap();
    (o.stdout, o.status.code().unwrap_or(-1))
}

/// Run one README command as a terminal would show it: stdout and stderr into one file.
fn run_cmd(c: &Ctx, words: &[String], redirect: Option<&str>) -> (String, i32) {
    let log_path = c.tmp.join(".readme-test-output");
    let log = std::fs::File::create(&log_path).unwrap();
    let stdout: Stdio = match redirect {
        Some(f) => std::fs::File::create(c.tmp.join(f)).unwrap().into(),
        None => log.try_clone().unwrap().into(),
    };
    let args: Vec<String> = words[1..]
        .iter()
        .map(|w| {
            let mut w = w.clone();
            for (readme, real) in &c.paths {
                if w == *readme || w.starts_with(&format!("{readme}/")) {
                    w = format!("{real}{}", &w[readme.len()..]);
                }
            }
            w
        })
        .collect();
    let status = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .arg("-q")
        .args(&args)
        .current_dir(&c.tmp)
        .env_remove("JETDIR_KEY")
        .env_remove("JETDIR_PREV_KEY")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log)
        .status()
        .unwrap();
    let out = std::fs::read(&log_path).unwrap();
    std::fs::remove_file(&log_path).unwrap();
    (
        String::from_utf8_lossy(&out).into_owned(),
        status.code().unwrap_or(-1),
    )
}

/// Replace every `prefix` + run of characters in `class` by `prefix` + `mark`.
fn mask_after(s: &str, prefix: &str, class: fn(char) -> bool, mark: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i + prefix.len()]);
        rest = &rest[i + prefix.len()..];
        let n = rest.find(|ch: char| !class(ch)).unwrap_or(rest.len());
        if n > 0 {
            out.push_str(mark);
        }
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}

/// Replace every `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` time and every run of exactly 19 digits.
fn mask_server_times(s: &str) -> String {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let time_at = |i: usize| -> Option<usize> {
        let pat = "dddd-dd-ddTdd:dd:dd.";
        let mut j = i;
        for p in pat.chars() {
            let c = *b.get(j)?;
            let ok = if p == 'd' { c.is_ascii_digit() } else { c == p };
            if !ok {
                return None;
            }
            j += 1;
        }
        let k = j;
        while b.get(j).is_some_and(|c| c.is_ascii_digit()) {
            j += 1;
        }
        (j > k && b.get(j) == Some(&'Z')).then_some(j + 1)
    };
    while i < b.len() {
        let boundary = i == 0 || !b[i - 1].is_ascii_digit();
        if boundary && b[i].is_ascii_digit() {
            if let Some(end) = time_at(i) {
                out.push_str("<time>");
                i = end;
                continue;
            }
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j - i == 19 {
                out.push_str("<ns>");
            } else {
                out.extend(&b[i..j]);
            }
            i = j;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The normalisations the file's top comment lists, applied to an output or README line.
fn normalise(c: &Ctx, line: &str) -> String {
    let hex = |ch: char| ch.is_ascii_hexdigit();
    let mut s = line.to_string();
    // the temp dir's paths printed as the README's (longest first: nested mappings)
    let mut paths = c.paths.clone();
    paths.sort_by_key(|(_, real)| std::cmp::Reverse(real.len()));
    for (readme, real) in &paths {
        s = s.replace(real.as_str(), readme);
    }
    if s.starts_with("jetdir ") && s.contains("(commit ") {
        s = mask_after(&s, "(commit ", |ch| ch.is_ascii_alphanumeric(), "<commit>");
    }
    if s.contains(" | streams=") {
        s = mask_after(
            &s,
            " duration=",
            |ch| ch.is_ascii_digit() || ch == '.',
            "<d>",
        );
    }
    if let Some(i) = s.find("manifest.json ") {
        if s[..i].trim().is_empty() {
            s = format!(
                "{}manifest.json <size and sha256 of this run's manifest>",
                &s[..i]
            );
        }
    }
    if c.server_data {
        s = mask_after(&s, "stored ", hex, "<checksum>");
        s = mask_after(&s, "computed ", hex, "<checksum>");
        s = mask_server_times(&s);
    }
    for (literal, mark) in &c.masks {
        s = s.replace(literal.as_str(), mark);
    }
    s
}

/// Run a block and compare; `Err` names every README line that differs.
fn check_block(b: &Block, setup: Setup) -> Result<(), String> {
    let tmp = tempfile::TempDir::new().unwrap();
    let mut c = Ctx {
        tmp: tmp.path().canonicalize().unwrap(),
        paths: Vec::new(),
        server_data: false,
        masks: Vec::new(),
        keep: Vec::new(),
    };
    setup(&mut c);
    if c.masks.iter().any(|(_, m)| *m == "<big.bin digest>") {
        // the README's big.bin digest is its author's run's own, as ours is ours
        if let Some(readme_digest) = b
            .cmds
            .iter()
            .flat_map(|cmd| &cmd.expected)
            .find(|l| l.text.starts_with("big.bin "))
            .and_then(|l| l.text.split("SHA-256=").nth(1))
            .and_then(|d| d.split_whitespace().next())
        {
            c.masks
                .push((readme_digest.to_string(), "<big.bin digest>"));
        }
    }
    let mut errors = Vec::new();
    let mut last_rc = None;
    for cmd in &b.cmds {
        let (words, redirect) = shell_words(&cmd.line.text);
        let (out, rc) = match words.first().map(String::as_str) {
            Some("jetdir") => {
                let (out, rc) = run_cmd(&c, &words, redirect.as_deref());
                last_rc = Some(rc);
                (out, rc)
            }
            Some("echo") if words.get(1).map(String::as_str) == Some("$?") => {
                let rc = last_rc.expect("`echo $?` after a command");
                (format!("{rc}\n"), 0)
            }
            _ => panic!(
                "README.md:{}: not a jetdir command the test runs: {}",
                cmd.line.no, cmd.line.text
            ),
        };
        let _ = rc;
        let actual: Vec<String> = out.lines().map(|l| normalise(&c, l)).collect();
        let expected: Vec<Line> = cmd
            .expected
            .iter()
            .map(|l| Line {
                no: l.no,
                text: normalise(&c, &l.text),
            })
            .collect();
        let e: Vec<&str> = expected.iter().map(|l| l.text.as_str()).collect();
        let a: Vec<&str> = actual.iter().map(String::as_str).collect();
        if !matches(&e, &a) {
            errors.push(format!(
                "{}\n  command (README.md:{}): {}\n  its whole output (normalised):\n{}",
                mismatch(&cmd.line, &expected, &a),
                cmd.line.no,
                cmd.line.text,
                a.iter()
                    .map(|l| format!("    | {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    drop(tmp);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n\n"))
    }
}

fn readme_blocks() -> Vec<Block> {
    parse_readme(&std::fs::read_to_string(repo().join("README.md")).unwrap())
}

/// The blocks and how each is checked; the second `cluster` block is the cluster_e2e one.
fn classified() -> Vec<(Block, &'static How)> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    static CLUSTER_E2E: How = How::No(CLUSTER_E2E_WHY);
    for b in readme_blocks() {
        let n = seen.entry(leak(b.first())).or_default();
        *n += 1;
        let how = if b.first() == "$ jetdir cluster --server-name n1 n1/store" && *n == 2 {
            &CLUSTER_E2E
        } else {
            match EXAMPLES.iter().find(|(first, _)| *first == b.first()) {
                Some((_, how)) => how,
                None => panic!(
                    "README.md:{}: an example the test does not know: add `{}` to EXAMPLES in \
                     tests/readme.rs (checked, with its setup, or not checked and why)",
                    b.start(),
                    b.first()
                ),
            }
        };
        out.push((b, how));
    }
    out
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn run_all(server: bool) {
    // only the server test makes scenario runs (the two tests run at the same time)
    let _runs = server.then_some(RunsGuard);
    let mut failures = Vec::new();
    let mut ran = 0;
    for (b, how) in classified() {
        let setup = match (how, server) {
            (How::Fixtures(s), false) | (How::Server(s), true) => *s,
            _ => continue,
        };
        ran += 1;
        if let Err(e) = check_block(&b, setup) {
            failures.push(e);
        }
    }
    assert!(ran > 0, "no README example ran");
    assert!(
        failures.is_empty(),
        "{} README example(s) differ from what jetdir prints:\n\n{}",
        failures.len(),
        failures.join("\n\n----\n\n")
    );
}

/// Every example that runs on the bundled fixtures (and what jetdir alone makes of them).
#[test]
fn readme_examples_on_fixtures() {
    run_all(false);
}

/// The examples whose input a real nats-server 2.15.1 writes (dump, kv, object, diff).
#[test]
#[cfg_attr(
    jetdir_no_server,
    ignore = "needs nats-server 2.15 and nats-py (scripts/install-deps.sh)"
)]
fn readme_examples_on_server_data() {
    run_all(true);
}

/// Every README example is in [`EXAMPLES`], every entry of it is in the README, and the
/// unchecked ones are few.
#[test]
fn every_readme_example_is_classified() {
    let blocks = classified();
    for (first, _) in EXAMPLES {
        assert!(
            blocks.iter().any(|(b, _)| b.first() == *first),
            "EXAMPLES lists `{first}`, which no README block starts with"
        );
    }
    let not_checked = blocks
        .iter()
        .filter(|(b, h)| match h {
            How::No(why) => {
                assert!(why.len() > 20, "README.md:{}: say why", b.start());
                true
            }
            _ => false,
        })
        .count();
    assert_eq!(not_checked, 1, "README examples not checked");
    let commands: usize = blocks
        .iter()
        .map(|(b, _)| {
            b.cmds
                .iter()
                .filter(|c| c.line.text.starts_with("$ jetdir"))
                .count()
        })
        .sum();
    assert!(commands >= 40, "{commands} `$ jetdir` lines found");
}

/// One changed character in one output line of a README block fails the check, naming that
/// README line, what it says and what jetdir printed.
#[test]
fn a_changed_readme_line_fails_naming_it() {
    let (b, how) = classified()
        .into_iter()
        .find(|(b, _)| b.first() == "$ jetdir check fixtures/v2.15.1-plain/store")
        .unwrap();
    let How::Fixtures(setup) = how else {
        unreachable!()
    };
    check_block(&b, *setup).expect("the README block as it is");
    let mut changed = b.clone();
    // `... streams=5 damaged=0 messages=113 ...` -> `messages=114`
    let l = &mut changed.cmds[0].expected[0];
    assert!(l.text.contains("messages=113"), "{}", l.text);
    l.text = l.text.replace("messages=113", "messages=114");
    let no = l.no;
    let err = check_block(&changed, *setup).expect_err("a changed line must fail");
    assert!(
        err.contains(&format!("README.md:{no}: expected `")) && err.contains("messages=114"),
        "{err}"
    );
    assert!(
        err.contains("got      `OK jetdir") && err.contains("messages=113"),
        "{err}"
    );
}

/// The matcher: an elision line is any number of lines, nothing else is.
#[test]
fn elision_matches_any_lines_and_only_there() {
    assert!(matches(&["a", "…", "d"], &["a", "b", "c", "d"]));
    assert!(matches(&["a", "...", "d"], &["a", "d"]));
    assert!(matches(&["a", "…"], &["a", "b"]));
    assert!(!matches(&["a", "d"], &["a", "b", "d"]));
    assert!(!matches(&["a", "…", "d"], &["a", "b", "c"]));
    assert!(!matches(&["a"], &["a", "b"]));
    assert!(!matches(&["a b"], &["a  b"]));
    let lines = |v: &[&str]| {
        v.iter()
            .enumerate()
            .map(|(i, t)| Line {
                no: 10 + i,
                text: t.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let cmd = Line {
        no: 9,
        text: "$ jetdir x".into(),
    };
    let m = mismatch(&cmd, &lines(&["a", "…", "x", "y"]), &["a", "b", "x", "z"]);
    assert!(m.starts_with("README.md:13: expected `y`"), "{m}");
    assert!(m.contains("got      `z`"), "{m}");
    let m = mismatch(&cmd, &lines(&["a"]), &["a", "b"]);
    assert!(m.contains("README.md:10: the output goes on"), "{m}");
    let m = mismatch(&cmd, &[], &["a"]);
    assert!(
        m.starts_with("README.md:9: the README shows no output"),
        "{m}"
    );
}

#[test]
fn shell_words_as_the_shell_reads_them() {
    let (w, r) = shell_words("$ jetdir inspect 'store/jetstream/$G/streams/ORDERS'  # why");
    assert_eq!(
        w,
        ["jetdir", "inspect", "store/jetstream/$G/streams/ORDERS"]
    );
    assert_eq!(r, None);
    let (w, r) = shell_words("$ jetdir kv s --bucket cfg get a --raw > a.value     # bytes");
    assert_eq!(
        w,
        ["jetdir", "kv", "s", "--bucket", "cfg", "get", "a", "--raw"]
    );
    assert_eq!(r.as_deref(), Some("a.value"));
    assert_eq!(
        mask_server_times(
            r#""time":"2026-11-30T13:08:38.162803301Z","ts":1796044118162803301,"x":12"#
        ),
        r#""time":"<time>","ts":<ns>,"x":12"#
    );
}
