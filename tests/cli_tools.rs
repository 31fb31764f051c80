//! The operator's side of the CLI (issue #11): `jetdir check` for monitoring (Nagios line,
//! Prometheus textfile, JSON), `completions`, `man`, `--version`, help texts.
mod common;
use common::copy_dir;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn jetdir(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_jetdir"))
        .args(args)
        .output()
        .expect("run jetdir");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c != 101) && !stderr.contains("panicked"),
        "{args:?}: {stderr}"
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A private copy of the 2.15.1 store (other tests copy it at the same time; a process with
/// store files open gives a `store_in_use` warning).
fn store_copy() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    copy_dir(&fixture("v2.15.1-plain/store"), &store);
    (t, store)
}

/// The same copy with one payload byte of MULTI's seq 35 flipped and index.db removed: the
/// server rebuilds, truncates msgs/2.blk and loses seqs 35..60 (26 messages; README's example).
fn damaged_copy() -> (tempfile::TempDir, PathBuf) {
    let (t, store) = store_copy();
    let msgs = store.join("jetstream/$G/streams/MULTI/msgs");
    let blk = msgs.join("2.blk");
    let mut b = std::fs::read(&blk).unwrap();
    b[4148 + 60] ^= 1;
    std::fs::write(&blk, b).unwrap();
    std::fs::remove_file(msgs.join("index.db")).unwrap();
    (t, store)
}

/// One parsed sample line of the exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A small checker of the Prometheus text exposition format (0.0.4): every sample belongs to
/// a family announced by `# HELP` and `# TYPE` before it, names and label names are valid,
/// label values are quoted with escapes, the value is a float. Panics on anything else.
fn parse_exposition(text: &str) -> Vec<Sample> {
    fn valid_name(n: &str) -> bool {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    }
    assert!(text.ends_with('\n'), "ends with a newline");
    let mut helped = Vec::new();
    let mut typed = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("# HELP name text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            helped.push(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("# TYPE name type");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty),
                "{line}"
            );
            assert!(
                helped.last().is_some_and(|h| h == name),
                "TYPE after HELP: {line}"
            );
            assert!(
                typed.insert(name.to_string(), ty).is_none(),
                "one TYPE: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        // name{l="v",...} value
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i..]),
            None => line.split_at(line.find(' ').expect("name value")),
        };
        assert!(valid_name(name), "{line}");
        assert!(typed.contains_key(name), "sample before its TYPE: {line}");
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end;
            loop {
                let start = chars.peek().expect("unterminated labels").0;
                if r[start..].starts_with('}') {
                    end = start + 1;
                    break;
                }
                let eq = r[start..].find("=\"").expect("label=\"value\"") + start;
                let lname = &r[start..eq];
                assert!(valid_name(lname), "label name {lname:?} in {line}");
                while chars.peek().is_some_and(|(i, _)| *i <= eq + 1) {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    let (_, c) = chars.next().expect("unterminated label value");
                    match c {
                        '\\' => match chars.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            e => panic!("bad escape \\{e} in {line}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw newline in {line}"),
                        c => value.push(c),
                    }
                }
                labels.insert(lname.to_string(), value);
                match chars.next().expect("labels go on") {
                    (_, ',') => {}
                    (i, '}') => {
                        end = i + 1;
                        break;
                    }
                    (_, c) => panic!("unexpected {c:?} in {line}"),
                }
            }
            rest = &r[end..];
        }
        let value = rest.strip_prefix(' ').expect("one space before the value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    assert!(!out.is_empty(), "no samples");
    out
}

fn sample<'a>(v: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> &'a Sample {
    v.iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, want)| s.labels.get(*k).is_some_and(|x| x == want))
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

#[test]
fn the_exposition_checker_rejects_what_is_wrong() {
    let ok = "# HELP a_b help\n# TYPE a_b gauge\na_b{x=\"1\\\"2\",y=\"\"} 3\n";
    let v = parse_exposition(ok);
    assert_eq!(v[0].labels["x"], "1\"2");
    for bad in [
        "a_b 1\n",                                      // no HELP / TYPE
        "# HELP a_b h\n# TYPE a_b gauge\na_b{x=1} 3\n", // unquoted
        "# HELP a_b h\n# TYPE a_b gauge\na_b{x=\"1\"}  three\n",
        "# HELP a_b h\n# TYPE a_b gauge\n9ab 1\n",
        "# HELP a_b h\n# TYPE a_b gauge\na_b 1", // no final newline
    ] {
        let r = std::panic::catch_unwind(|| parse_exposition(bad));
        assert!(r.is_err(), "accepted {bad:?}");
    }
}

#[test]
fn check_clean_store_is_ok_and_exits_0() {
    let (t, store) = store_copy();
    let prom = t.path().join("jetdir.prom");
    let o = jetdir(&["-q", "check", &s(&store), "--textfile", &s(&prom)]);
    let line = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{line}");
    assert!(
        line.starts_with(&format!(
            "OK jetdir {}: 5 streams verified, no problems | ",
            s(&store)
        )),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
    assert!(
        line.contains(" lost=0 ") && line.contains(" errors=0 "),
        "{line}"
    );
    let text = std::fs::read_to_string(&prom).unwrap();
    let v = parse_exposition(&text);
    let path = s(&store);
    assert_eq!(
        sample(&v, "jetdir_check_status", &[("path", &path)]).value,
        0.0
    );
    assert_eq!(sample(&v, "jetdir_check_success", &[]).value, 1.0);
    let orders = [("account", "$G"), ("stream", "ORDERS")];
    assert_eq!(sample(&v, "jetdir_stream_messages", &orders).value, 8.0);
    assert_eq!(sample(&v, "jetdir_stream_bytes", &orders).value, 582.0);
    assert_eq!(
        sample(&v, "jetdir_stream_lost_messages", &orders).value,
        0.0
    );
    let mut loads = orders.to_vec();
    loads.push(("verdict", "loads"));
    assert_eq!(sample(&v, "jetdir_stream_verdict", &loads).value, 1.0);
    let ts = sample(&v, "jetdir_check_last_run_timestamp_seconds", &[]).value;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert!((now - ts).abs() < 600.0, "timestamp {ts} vs now {now}");
    assert!(sample(&v, "jetdir_check_duration_seconds", &[]).value > 0.0);
    // only the textfile is left in the dir: no staging file
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn check_damaged_store_is_critical_exits_1_and_counts_the_lost() {
    let (t, store) = damaged_copy();
    let prom = t.path().join("jetdir.prom");
    std::fs::write(&prom, "old content\n").unwrap();
    let o = jetdir(&["-q", "check", &s(&store), "--textfile", &s(&prom)]);
    let line = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{line}");
    assert!(line.starts_with("CRITICAL jetdir "), "{line}");
    assert!(
        line.contains("1 damaged: $G > MULTI loses 26 messages |"),
        "{line}"
    );
    assert!(
        line.contains(" lost=26 ") && line.contains(" damaged=1 "),
        "{line}"
    );
    // the textfile was replaced
    let v = parse_exposition(&std::fs::read_to_string(&prom).unwrap());
    assert_eq!(sample(&v, "jetdir_check_status", &[]).value, 2.0);
    assert_eq!(sample(&v, "jetdir_check_exit_code", &[]).value, 1.0);
    let multi = [("account", "$G"), ("stream", "MULTI")];
    assert_eq!(
        sample(&v, "jetdir_stream_lost_messages", &multi).value,
        26.0
    );
    let mut lose = multi.to_vec();
    lose.push(("verdict", "loses_data"));
    assert_eq!(sample(&v, "jetdir_stream_verdict", &lose).value, 1.0);
    // Nagios plugin codes on request
    let o = jetdir(&["-q", "check", &s(&store), "--nagios-exit-codes"]);
    assert_eq!(o.status.code(), Some(2));
    // JSON: -j is --format json
    let o = jetdir(&["-q", "-j", "check", &s(&store)]);
    assert_eq!(o.status.code(), Some(1));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["status"], "CRITICAL");
    assert_eq!(j["exit_code"], 1);
    let m = j["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "MULTI")
        .unwrap();
    assert_eq!(m["lost_messages"], 26);
    assert_eq!(m["verdict"], "loses_data");
    // --format prometheus on stdout is the same text as the textfile (up to duration/time)
    let o = jetdir(&["-q", "check", &s(&store), "--format", "prometheus"]);
    assert_eq!(o.status.code(), Some(1));
    let v = parse_exposition(&stdout(&o));
    assert_eq!(
        sample(&v, "jetdir_stream_lost_messages", &multi).value,
        26.0
    );
}

#[test]
fn check_backup_with_quick() {
    let o = jetdir(&[
        "-q",
        "check",
        &s(&fixture("backups/v2.15.1/ORDERS")),
        "--quick",
        "--format",
        "prometheus",
    ]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let v = parse_exposition(&text);
    assert_eq!(sample(&v, "jetdir_check_quick", &[]).value, 1.0);
    assert_eq!(sample(&v, "jetdir_check_streams", &[]).value, 1.0);
}

#[test]
fn check_missing_path_is_unknown_exits_2_and_still_writes_the_textfile() {
    let t = tempfile::tempdir().unwrap();
    let prom = t.path().join("jetdir.prom");
    let missing = t.path().join("no-such-store");
    let o = jetdir(&["-q", "check", &s(&missing), "--textfile", &s(&prom)]);
    let line = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{line}");
    assert!(
        line.starts_with(&format!("UNKNOWN jetdir {}: could not run: ", s(&missing))),
        "{line}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-store"));
    let v = parse_exposition(&std::fs::read_to_string(&prom).unwrap());
    assert_eq!(sample(&v, "jetdir_check_success", &[]).value, 0.0);
    assert_eq!(sample(&v, "jetdir_check_status", &[]).value, 3.0);
    assert_eq!(
        jetdir(&["-q", "check", &s(&missing), "--nagios-exit-codes"])
            .status
            .code(),
        Some(3)
    );
    // a bad --at is "could not run" too
    let (_t, store) = store_copy();
    let o = jetdir(&["-q", "check", &s(&store), "--at", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).starts_with("UNKNOWN "), "{}", stdout(&o));
    // a textfile that cannot be written: exit 2, the file named
    let o = jetdir(&[
        "-q",
        "check",
        &s(&store),
        "--textfile",
        &s(&t.path().join("no/dir/x.prom")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no/dir/x.prom"));
}

#[test]
fn check_encrypted_store_is_unknown_not_damaged() {
    let o = jetdir(&["-q", "check", &s(&fixture("v2.15.1-enc-chacha/store"))]);
    let line = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{line}");
    assert!(
        line.contains(": could not run: encrypted_key_needed ($G > "),
        "{line}"
    );
    assert!(line.contains(" damaged=0 "), "{line}");
}

const SUBCOMMANDS: &[&str] = &[
    "verify",
    "inspect",
    "extract",
    "pack",
    "check",
    "completions",
    "man",
];

#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let o = jetdir(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let text = stdout(&o);
        assert!(text.len() > 1000, "{shell}: {} bytes", text.len());
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
        for flag in [
            "json",
            "store-dir",
            "allow-damaged",
            "textfile",
            "nagios-exit-codes",
        ] {
            // fish spells them `-l store-dir`
            let spelled = if shell == "fish" {
                format!("-l {flag}")
            } else {
                format!("--{flag}")
            };
            assert!(
                text.contains(&spelled),
                "{shell} completion lacks {spelled}"
            );
        }
    }
    assert!(stdout(&jetdir(&["completions", "bash"])).contains("complete -F _jetdir"));
    assert!(stdout(&jetdir(&["completions", "zsh"])).starts_with("#compdef jetdir"));
    assert!(stdout(&jetdir(&["completions", "fish"])).contains("complete -c jetdir"));
    assert_eq!(jetdir(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_page_is_roff_with_every_subcommand() {
    let o = jetdir(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let page = stdout(&o);
    assert!(page.contains("\n.TH JETDIR 1 "), "{}", &page[..200]);
    assert!(page.contains("\n.SH NAME\n") && page.contains("\n.SH SYNOPSIS\n"));
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!(".SH \"JETDIR {}\"", sub.to_uppercase())),
            "no section for {sub}"
        );
    }
    // the options of a subcommand, and the exit codes
    assert!(page.contains("allow\\-damaged") && page.contains("Exit codes"));
    // exactly one title header: the subcommands are sections, not pages
    assert_eq!(page.matches("\n.TH ").count(), 1);
}

#[test]
fn version_names_commit_releases_and_formats() {
    let o = jetdir(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let v = stdout(&o);
    let first = v.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("jetdir {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    // the commit: this checkout's HEAD when built in one, else "unknown"
    let commit = first
        .split("(commit ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) => assert_eq!(commit, h, "{v}"),
        None => assert_eq!(commit, "unknown", "{v}"),
    }
    for fact in [
        "2.9",
        "2.15",
        "index.db versions 1-4",
        "V1",
        "V2",
        "NATSARC1",
        "tgz",
        "2.15.1",
    ] {
        assert!(v.contains(fact), "--version lacks {fact}: {v}");
    }
    // -V is the short form
    assert_eq!(
        stdout(&jetdir(&["-V"])).trim(),
        format!("jetdir {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_has_examples_and_exit_codes() {
    let top = stdout(&jetdir(&["--help"]));
    assert!(
        top.contains("Examples:") && top.contains("Exit codes:"),
        "{top}"
    );
    assert!(top.contains("-j, --json"), "{top}");
    for sub in ["verify", "inspect", "extract", "pack", "check"] {
        let h = stdout(&jetdir(&[sub, "--help"]));
        assert!(h.contains("Examples"), "{sub}: {h}");
        assert!(
            h.contains("Exit codes") || h.contains("exit codes"),
            "{sub}: {h}"
        );
    }
    for sub in ["extract", "pack"] {
        let h = stdout(&jetdir(&[sub, "--help"]));
        assert!(h.contains("-f, --force"), "{sub}: {h}");
    }
    // every argument of every subcommand's --help has a description: in the long layout an
    // item line ("  <PATH>", "  -f, --force") is followed by its text, indented 10 spaces
    for sub in SUBCOMMANDS {
        let h = stdout(&jetdir(&[sub, "--help"]));
        let lines: Vec<&str> = h.lines().collect();
        let mut section = false;
        let mut items = 0;
        for (i, line) in lines.iter().enumerate() {
            if *line == "Arguments:" || *line == "Options:" {
                section = true;
                continue;
            }
            if !line.starts_with(' ') && !line.is_empty() {
                section = false;
            }
            let item = line.starts_with("  ") && !line.starts_with("          ");
            if section && item {
                items += 1;
                let body = line.trim_start();
                let next = lines.get(i + 1).copied().unwrap_or("");
                assert!(
                    body.contains("  ")
                        || (next.starts_with("          ") && next.trim().len() > 3),
                    "{sub}: no help for {body:?}"
                );
            }
        }
        assert!(items >= 3, "{sub}: parsed {items} items of\n{h}");
    }
}
