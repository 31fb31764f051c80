//! Human-readable rendering of reports (JSON is serde of the same structs).
use jetdir::base::problem::{Problem, Severity};
use jetdir::base::report::Report;
use jetdir::base::report::{StreamReport, Verdict};

use jetdir::ops::extract::{ExtractReport, ExtractStatus};
use jetdir::ops::pack::{PackFormat, PackReport};
use std::fmt::Write;

use super::human::{self, paint, Colour};

fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |x| x.to_string())
}

pub fn problem_line(p: &Problem) -> String {
    let sev = match p.severity {
        Severity::Error => "ERROR",
        Severity::Warning => "warning",
    };
    let mut where_ = String::new();
    if let (Some(a), Some(s)) = (&p.loc.account, &p.loc.stream) {
        let _ = write!(where_, "{a} > {s}");
    }
    if let Some(c) = &p.loc.consumer {
        let _ = write!(where_, " > {c}");
    }
    if let Some(f) = &p.loc.file {
        let _ = write!(where_, " {f}");
    }
    if let Some(o) = p.loc.offset {
        let _ = write!(where_, " @{o}");
    }
    match (p.loc.seq, p.loc.seq_end) {
        (Some(a), Some(b)) if a != b => {
            let _ = write!(where_, " seqs {a}..{b}");
        }
        (Some(a), _) => {
            let _ = write!(where_, " seq {a}");
        }
        _ => {}
    }
    format!("{sev} [{}] {}: {}", p.kind, where_.trim(), p.message)
}

fn ranges(r: &[(u64, u64)]) -> String {
    jetdir::base::report::ranges_text(r, 8)
}

/// "seq 35" or "seqs 35..60, 77": ranges written one way everywhere (inclusive `a..b`).
fn seqs(r: &[(u64, u64)]) -> String {
    match r {
        [(a, b)] if a == b => format!("seq {a}"),
        _ => format!("seqs {}", ranges(r)),
    }
}

/// "1 message" / "26 messages".
fn n_of(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Whether a stream is damaged: the load loses or skips it, or an error names it.
fn damaged(r: &Report, s: &StreamReport) -> bool {
    if encrypted_unread(s).is_some() {
        return false; // not read: could not run for it, not damaged
    }
    if let Some(l) = &s.load {
        if matches!(
            l.verdict,
            Verdict::LosesData | Verdict::Skipped | Verdict::MayNotLoad
        ) {
            return true;
        }
    }
    r.problems.iter().any(|p| {
        p.severity == Severity::Error
            && p.loc.account.as_deref() == Some(s.account.as_str())
            && p.loc.stream.as_deref() == Some(s.name.as_str())
    })
}

/// Why an encrypted stream was not read (`None` when it was read, or is not encrypted).
fn encrypted_unread(s: &StreamReport) -> Option<&'static str> {
    if !s.encrypted || s.load.is_some() {
        return None;
    }
    Some(match s.encryption.as_ref().map(|e| e.key.as_str()) {
        Some("wrong") => "encrypted: wrong key",
        _ => "encrypted: key needed",
    })
}

/// inspect's Encryption section: the cipher and every encrypted file with its outcome.
fn encryption_lines(s: &StreamReport, o: &mut String) {
    let Some(e) = &s.encryption else { return };
    let key = match e.key.as_str() {
        "given" => "the key given opens it",
        "wrong" => "the key given opens nothing (wrong key?)",
        _ => "no key given (--key-file or JETDIR_KEY)",
    };
    let cipher = e.cipher.as_deref().unwrap_or("unknown");
    let _ = writeln!(o, "Encryption: cipher {cipher}; {key}\n");
    let w = e
        .assets
        .iter()
        .map(|a| a.file.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(o, "  {:<w$}  {:>10}  Outcome", "File", "Size");
    for a in &e.assets {
        let what = match a.outcome.as_str() {
            "key" => "opens with the key",
            "previous_key" => "opens with the previous key only",
            "other_cipher" => "opens with the other cipher only",
            "corrupt" => "DOES NOT OPEN (damaged)",
            "wrong_key" => "does not open",
            "key_file_failed" => "not tried: its key file did not open",
            _ => "encrypted (key needed)",
        };
        let _ = writeln!(
            o,
            "  {:<w$}  {:>10}  {what}",
            a.file,
            human::ibytes(a.bytes)
        );
    }
    o.push('\n');
}

/// A stream's verdict in a few words, coloured: fine, repaired by the server, loses N
/// messages (ranges), not loaded.
fn verdict_short(r: &Report, s: &StreamReport) -> String {
    if let Some(why) = encrypted_unread(s) {
        return paint(why, Colour::Yellow);
    }
    let Some(l) = &s.load else {
        return if damaged(r, s) {
            paint("damaged", Colour::Red)
        } else {
            paint("fine", Colour::Green)
        };
    };
    match l.verdict {
        Verdict::Loads if damaged(r, s) => paint("damaged", Colour::Red),
        Verdict::Loads => paint("fine", Colour::Green),
        Verdict::Repaired => paint("repaired by the server", Colour::Yellow),
        Verdict::Skipped => paint("not loaded by the server", Colour::Red),
        Verdict::MayNotLoad => paint("may not be loaded by the server", Colour::Red),
        Verdict::LosesData => {
            let mut parts = Vec::new();
            if l.lost_messages > 0 {
                parts.push(format!(
                    "loses {}: {}",
                    n_of(l.lost_messages, "message"),
                    seqs(&l.lost)
                ));
            }
            if !l.unreadable.is_empty() {
                let n: u64 = l.unreadable.iter().map(|&(a, b)| b - a + 1).sum();
                parts.push(format!(
                    "{} unreadable: {}",
                    n_of(n, "message"),
                    seqs(&l.unreadable)
                ));
            }
            if parts.is_empty() {
                parts.push("loses data".into());
            }
            paint(&parts.join("; "), Colour::Red)
        }
    }
}

/// A stream's name, or what stands for it when the input does not say (a V2 archive
/// without backup.json).
fn name_of(s: &StreamReport) -> &str {
    if s.name.is_empty() {
        "(name unknown)"
    } else {
        &s.name
    }
}

/// "ORDERS" when every stream is in one account, else "ACC > ORDERS".
fn stream_label(r: &Report, s: &StreamReport) -> String {
    let one_account = r.streams.iter().all(|x| x.account == s.account);
    if one_account {
        name_of(s).to_string()
    } else {
        format!("{} > {}", s.account, name_of(s))
    }
}

/// The first line: what matters, counted by damaged streams.
fn summary_line(r: &Report, errs: usize, warns: usize) -> String {
    let bad: Vec<&StreamReport> = r.streams.iter().filter(|s| damaged(r, s)).collect();
    let checked = n_of(r.streams.len() as u64, "stream");
    let tail = format!(
        "{}, {}",
        n_of(errs as u64, "error"),
        n_of(warns as u64, "warning")
    );
    if errs == 0 {
        return format!(
            "{}: {checked} checked, none damaged ({tail})",
            paint("OK", Colour::Green)
        );
    }
    let what: Vec<String> = bad
        .iter()
        .map(|s| {
            let l = s.load.as_ref();
            let unreadable: u64 =
                l.map_or(0, |l| l.unreadable.iter().map(|&(a, b)| b - a + 1).sum());
            match l.map(|l| (l.verdict, l.lost_messages)) {
                Some((Verdict::LosesData, n)) if n > 0 => {
                    format!("{} loses {}", name_of(s), n_of(n, "message"))
                }
                Some((Verdict::LosesData, _)) if unreadable > 0 => {
                    format!(
                        "{} has {} unreadable",
                        name_of(s),
                        n_of(unreadable, "message")
                    )
                }
                Some((Verdict::Skipped, _)) => format!("{} is not loaded", name_of(s)),
                Some((Verdict::MayNotLoad, _)) => format!("{} may not be loaded", name_of(s)),
                _ => format!("{} is damaged", name_of(s)),
            }
        })
        .collect();
    let unread: Vec<&StreamReport> = r
        .streams
        .iter()
        .filter(|s| encrypted_unread(s).is_some())
        .collect();
    if !unread.is_empty() {
        let wrong = unread
            .iter()
            .any(|s| encrypted_unread(s) == Some("encrypted: wrong key"));
        let names: Vec<&str> = unread.iter().map(|s| name_of(s)).collect();
        let (head, why) = if wrong {
            ("WRONG KEY", "no key file opens with the key given: the wrong key, or another account's stream; a tarball's account: --source-account ACC")
        } else {
            (
                "KEY NEEDED",
                "give the server's key: --key-file FILE or JETDIR_KEY",
            )
        };
        let also = if bad.is_empty() {
            String::new()
        } else {
            format!("; {} damaged: {}", bad.len(), what.join(", "))
        };
        return format!(
            "{}: {checked} checked, {} encrypted and not read: {} ({why}){also} ({tail})",
            paint(head, Colour::Yellow),
            unread.len(),
            names.join(", ")
        );
    }
    let damaged_txt = if bad.is_empty() && r.archive.is_some() {
        "the backup is damaged".to_string()
    } else if bad.is_empty() {
        "errors outside the streams".to_string()
    } else {
        format!("{} damaged: {}", bad.len(), what.join(", "))
    };
    format!(
        "{}: {checked} checked, {damaged_txt} ({tail})",
        paint("PROBLEMS FOUND", Colour::Red)
    )
}

/// What a backup is, what is inside and what was checked.
fn archive_lines(r: &Report, o: &mut String) {
    let Some(a) = &r.archive else { return };
    let (what, checks) = match a.format.as_str() {
        "v1" => (
            "a `nats stream backup` directory, V1: a tar of the stream dir in S2 framing (stream.tar.s2)",
            "S2 framing and CRC-32C of every chunk, tar headers and member names, then every file as on disk (meta.inf, record checksums, index, consumers), against backup.json",
        ),
        "v2" => (
            "a `nats stream backup` directory, V2: a NATSARC1 archive in S2 framing (stream.tar.s2)",
            "S2 framing and CRC-32C of every chunk, the entry order the server's restore enforces (state.json, consumers, messages, end sentinel), every message's sequence, counts and ranges against state.json and backup.json",
        ),
        "tgz" => (
            "a gzip tarball of a stream dir",
            "gzip and tar framing, member names, then every file as on disk (meta.inf, record checksums, index, consumers)",
        ),
        "tar" => (
            "a tar of a stream dir",
            "tar framing, member names, then every file as on disk (meta.inf, record checksums, index, consumers)",
        ),
        "account" => (
            "a `nats account backup` directory: one stream backup per stream",
            "each stream backup as its own format says",
        ),
        _ => ("a backup", "its framing and content"),
    };
    // a bare stream.tar.s2 (no backup dir around it)
    let bare = std::path::Path::new(&a.path).is_file() && matches!(a.format.as_str(), "v1" | "v2");
    let what = match (bare, a.format.as_str()) {
        (true, "v1") => "a bare stream.tar.s2, V1: a tar of the stream dir in S2 framing",
        (true, _) => "a bare stream.tar.s2, V2: a NATSARC1 archive in S2 framing",
        _ => what,
    };
    let _ = writeln!(o, "Backup {}: {what}", a.path);
    let msgs: u64 = r.streams.iter().filter_map(|s| s.messages).sum();
    let cons: usize = r.streams.iter().map(|s| s.consumers.len()).sum();
    let blocks: usize = r.streams.iter().map(|s| s.blocks).sum();
    let inside = if a.format == "v2" {
        format!(
            "{} holding {}, {} (a V2 archive holds messages, not blocks: extract writes the blocks)",
            n_of(r.streams.len() as u64, "stream"),
            n_of(msgs, "message"),
            n_of(cons as u64, "consumer")
        )
    } else if r.streams.iter().any(|s| encrypted_unread(s).is_some()) {
        // an encrypted stream dir not read: its blocks are there, its content unknown
        format!(
            "{} in {} (encrypted: messages and consumers not read)",
            n_of(r.streams.len() as u64, "stream"),
            n_of(blocks as u64, "block"),
        )
    } else {
        format!(
            "{} holding {} in {}, {}",
            n_of(r.streams.len() as u64, "stream"),
            n_of(msgs, "message"),
            n_of(blocks as u64, "block"),
            n_of(cons as u64, "consumer")
        )
    };
    let _ = writeln!(o, "  inside: {inside}");
    let _ = writeln!(o, "  checked: {checks}");
    if bare && a.format == "v2" {
        let _ = writeln!(
            o,
            "  note: a V2 archive holds no stream config: `jetdir extract` and `nats stream restore` need its backup.json beside it"
        );
    }
}

/// The load model's verdict for a stream, then what the load does and the next step.
fn load_lines(s: &StreamReport, o: &mut String) {
    let Some(l) = &s.load else { return };
    let who = match (&l.release, &l.release_from) {
        (Some(_), Some(f)) if f.starts_with("index.db") || f.starts_with("legacy") => {
            format!("nats-server of the release that wrote it, from {f}")
        }
        (Some(r), _) => format!("nats-server {r}"),
        (None, _) if l.recovery == "restore" => {
            "nats-server 2.15 or later, restoring the V2 archive".to_string()
        }
        (None, _) => "nats-server 2.10 or later".to_string(),
    };
    let _ = writeln!(o, "  verdict: {} ({who})", l.verdict);
    match &l.reason {
        Some(why) if l.recovery == "restore" => {
            let _ = writeln!(o, "  load: {why}");
        }
        Some(why) => {
            let _ = writeln!(o, "  load: state rebuilt from the blocks: {why}");
        }
        None => {}
    }
    if l.lost_messages > 0 {
        let _ = writeln!(
            o,
            "  loses: {}, {}",
            n_of(l.lost_messages, "message"),
            seqs(&l.lost)
        );
    }
    if !l.unreadable.is_empty() {
        let _ = writeln!(
            o,
            "  unreadable: {} (counted from index.db; MSG.GET answers \"no message found\")",
            seqs(&l.unreadable)
        );
    }
    if !l.revived.is_empty() {
        let rv: Vec<(u64, u64)> = l.revived.iter().map(|&q| (q, q)).collect();
        let _ = writeln!(o, "  deleted messages that come back: {}", seqs(&rv));
    }
    for r in &l.removed {
        let _ = writeln!(
            o,
            "  {} removes {} at load: {}",
            r.limit,
            n_of(r.messages, "message"),
            seqs(&r.ranges)
        );
    }
    if let Some(n) = &l.next_step {
        let _ = writeln!(o, "  next: {n}");
    }
}

/// `nats stream report`'s look: one row per stream.
fn stream_table(r: &Report, now: i64) -> String {
    let rows: Vec<Vec<String>> = r
        .streams
        .iter()
        .map(|s| {
            vec![
                stream_label(r, s),
                opt(s.messages),
                s.bytes.map_or("-".into(), human::ibytes),
                opt(s.first_seq),
                opt(s.last_seq),
                if s.messages.unwrap_or(0) > 0 {
                    human::ago(s.last_ts.unwrap_or(0), now)
                } else {
                    "-".into()
                },
                opt(s.deleted),
                s.consumers.len().to_string(),
                verdict_short(r, s),
            ]
        })
        .collect();
    human::table(
        &[
            "Stream",
            "Messages",
            "Size",
            "First Seq",
            "Last Seq",
            "Last Message",
            "Deleted",
            "Consumers",
            "Verdict",
        ],
        &rows,
        &[1, 2, 3, 4, 6, 7],
    )
}

/// natscli's consumer numbers: one row per consumer of every stream.
fn consumer_table(r: &Report) -> String {
    let rows: Vec<Vec<String>> = r
        .streams
        .iter()
        .flat_map(|s| {
            s.consumers.iter().map(move |c| {
                let not = if c.loads { "" } else { " (not loaded)" };
                vec![
                    format!("{} > {}{not}", stream_label(r, s), c.name),
                    opt(c.pending),
                    opt(c.num_pending),
                    opt(c.redelivered),
                    opt(c.delivered_stream_seq),
                    opt(c.ack_floor_stream_seq),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    human::table(
        &[
            "Consumer",
            "Outstanding Acks",
            "Unprocessed",
            "Redelivered",
            "Last Delivered Seq",
            "Ack Floor Seq",
        ],
        &rows,
        &[1, 2, 3, 4, 5],
    )
}

/// Errors and warnings counted with the suppressed ones, and the "… N more" lines.
fn counts(r: &Report, o: &mut String) -> (usize, usize) {
    let mut errs = r
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let mut warns = r.problems.len() - errs;
    for (kind, n) in &r.suppressed {
        let _ = writeln!(
            o,
            "… {n} more [{kind}] finding(s) not listed (100 per kind are)"
        );
        match jetdir::base::problem::Kind::from_id(kind).map(|k| k.severity()) {
            Some(Severity::Error) => errs += *n as usize,
            _ => warns += *n as usize,
        }
    }
    (errs, warns)
}

/// `verify`'s text; ages are measured against `now` (the `--at` time, default now).
pub fn render_verify(r: &Report, now: i64) -> String {
    let mut more = String::new();
    let (errs, warns) = counts(r, &mut more);
    let mut o = String::new();
    let _ = writeln!(o, "{}", summary_line(r, errs, warns));
    o.push('\n');
    archive_lines(r, &mut o);
    if r.archive.is_some() {
        o.push('\n');
    }
    if !r.streams.is_empty() {
        o.push_str(&stream_table(r, now));
    }
    let cons = consumer_table(r);
    if !cons.is_empty() {
        o.push('\n');
        o.push_str(&cons);
    }
    // details: what the load does to each stream that is not fine
    let mut details = String::new();
    for s in &r.streams {
        if s.load.as_ref().is_some_and(|l| l.verdict != Verdict::Loads) {
            let _ = writeln!(details, "{} > {}:", s.account, name_of(s));
            load_lines(s, &mut details);
        }
    }
    if !details.is_empty() {
        let _ = write!(o, "\n{details}");
    }
    if !r.problems.is_empty() || !more.is_empty() || !r.notes.is_empty() {
        o.push('\n');
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for p in &r.problems {
        let _ = writeln!(o, "{}", problem_line(p));
    }
    o.push_str(&more);
    o
}

/// The block picture: one cell per sequence (or per run of sequences) of the block's range:
/// `#` live, `.` deleted, `!` damaged or unreadable, `x` lost at load.
const BAR: usize = 40;

fn block_bar(
    s: &StreamReport,
    r: &Report,
    b: &jetdir::base::report::BlockReport,
    (first, last): (u64, u64),
) -> String {
    let span = last - first + 1;
    let cells = (span as usize).min(BAR);
    let load = s.load.as_ref();
    let in_ranges = |rs: &[(u64, u64)], a: u64, z: u64| rs.iter().any(|&(x, y)| x <= z && a <= y);
    let damaged_here = |a: u64, z: u64| {
        r.problems.iter().any(|p| {
            p.severity == Severity::Error
                && p.loc.stream.as_deref() == Some(s.name.as_str())
                && p.loc.account.as_deref() == Some(s.account.as_str())
                && p.loc.file.as_deref().is_some_and(|f| f.ends_with(&b.file))
                && p.loc
                    .seq
                    .is_some_and(|q| q <= z && a <= p.loc.seq_end.unwrap_or(q))
        })
    };
    let exact = s.deleted.unwrap_or(0) as usize <= s.deleted_seqs.len();
    let mut bar = String::new();
    for i in 0..cells {
        let a = first + span * i as u64 / cells as u64;
        let z = first + span * (i as u64 + 1) / cells as u64 - 1;
        let (ch, c) = if load.is_some_and(|l| in_ranges(&l.lost, a, z)) {
            ("x", Colour::Red)
        } else if match load {
            // the load model says which messages are unreadable; without it, the findings
            Some(l) => in_ranges(&l.unreadable, a, z),
            None => damaged_here(a, z),
        } {
            ("!", Colour::Yellow)
        } else if exact && (a..=z).all(|q| s.deleted_seqs.binary_search(&q).is_ok()) {
            (".", Colour::Dim)
        } else {
            ("#", Colour::Green)
        };
        bar.push_str(&paint(ch, c));
    }
    format!("[{bar}]")
}

/// The sequences a block covers: its live range, extended over the sequences the load loses
/// after it (a truncated block's lost tail lies between its last live message and the next
/// block's first).
fn block_span(s: &StreamReport, i: usize) -> Option<(u64, u64)> {
    let b = &s.block_list[i];
    let (first, mut last) = (b.first_seq?, b.last_seq?);
    let next = s.block_list[i + 1..]
        .iter()
        .find_map(|n| n.first_seq)
        .unwrap_or(u64::MAX);
    if let Some(l) = &s.load {
        for &(a, z) in &l.lost {
            if a > last && a < next {
                last = last.max(z.min(next - 1));
            }
        }
    }
    Some((first, last))
}

fn config_lines(c: &serde_json::Map<String, serde_json::Value>, now: i64, o: &mut String) {
    use human::Limit;
    let row = |o: &mut String, k: &str, v: String| {
        let _ = writeln!(o, "  {k:>22}: {v}");
    };
    let _ = writeln!(o, "Configuration:\n");
    let get = |k: &str| c.get(k).cloned().unwrap_or(serde_json::Value::Null);
    if c.contains_key("subjects") {
        row(o, "Subjects", human::plain(&get("subjects")));
    }
    for (k, label) in [
        ("retention", "Retention"),
        ("storage", "Storage"),
        ("num_replicas", "Replicas"),
    ] {
        if c.contains_key(k) {
            row(o, label, human::plain(&get(k)));
        }
    }
    for (k, label, kind) in [
        ("max_msgs", "Maximum Messages", Limit::Count),
        ("max_bytes", "Maximum Bytes", Limit::Bytes),
        ("max_age", "Maximum Age", Limit::Duration),
        ("max_msgs_per_subject", "Maximum Per Subject", Limit::Count),
        ("max_msg_size", "Maximum Message Size", Limit::Bytes),
    ] {
        if c.contains_key(k) {
            row(o, label, human::limit(&get(k), kind));
        }
    }
    for (k, label) in [
        ("discard", "Discard Policy"),
        ("compression", "Compression"),
        ("allow_msg_ttl", "Allows Per-Message TTL"),
    ] {
        if c.contains_key(k) {
            row(o, label, human::plain(&get(k)));
        }
    }
    if let Some(d) = c.get("duplicate_window").and_then(|v| v.as_i64()) {
        row(o, "Duplicate Window", human::duration(d));
    }
    if let Some(t) = c
        .get("Created")
        .and_then(|v| v.as_str())
        .and_then(jetdir::base::time::parse_rfc3339)
    {
        row(o, "Created", human::time_ago(Some(t), now));
    }
    let _ = writeln!(o);
}

/// `inspect`'s text; ages are measured against `now` (the `--at` time, default now).
pub fn render_inspect(r: &Report, now: i64) -> String {
    let mut more = String::new();
    let (errs, warns) = counts(r, &mut more);
    let mut o = String::new();
    let _ = writeln!(o, "{}", summary_line(r, errs, warns));
    o.push('\n');
    archive_lines(r, &mut o);
    if r.archive.is_some() {
        o.push('\n');
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    let v2 = r.archive.as_ref().is_some_and(|a| a.format == "v2");
    for s in &r.streams {
        let _ = writeln!(
            o,
            "Stream {} (account {}): {}\n",
            name_of(s),
            s.account,
            verdict_short(r, s)
        );
        if encrypted_unread(s).is_some() {
            encryption_lines(s, &mut o);
            continue;
        }
        if s.load.is_some() {
            load_lines(s, &mut o);
            o.push('\n');
        }
        if let Some(c) = &s.config {
            config_lines(c, now, &mut o);
        }
        let row = |o: &mut String, k: &str, v: String| {
            let _ = writeln!(o, "  {k:>22}: {v}");
        };
        let _ = writeln!(o, "State:\n");
        row(&mut o, "Messages", opt(s.messages));
        row(&mut o, "Bytes", s.bytes.map_or("-".into(), human::ibytes));
        row(
            &mut o,
            "First Sequence",
            format!(
                "{} @ {}",
                opt(s.first_seq),
                human::time_ago(s.first_ts, now)
            ),
        );
        row(
            &mut o,
            "Last Sequence",
            format!("{} @ {}", opt(s.last_seq), human::time_ago(s.last_ts, now)),
        );
        row(&mut o, "Deleted Messages", opt(s.deleted));
        row(&mut o, "Number of Subjects", opt(s.subjects));
        row(&mut o, "Index", s.index.to_string());
        if s.block_list.is_empty() {
            let why = if v2 {
                "none: a V2 archive holds messages, not blocks (extract writes the blocks)"
            } else {
                "none"
            };
            let _ = writeln!(o, "\nBlocks: {why}");
        } else {
            let _ = writeln!(
                o,
                "\nBlocks: # live  . deleted  ! damaged or unreadable  x lost at load\n"
            );
            let rows: Vec<Vec<String>> = s
                .block_list
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let span = block_span(s, i);
                    let seqs = match span {
                        Some((a, z)) if a == z => a.to_string(),
                        Some((a, z)) => format!("{a}..{z}"),
                        None => "no messages".into(),
                    };
                    let mut notes = Vec::new();
                    if b.compressed {
                        notes.push("s2".to_string());
                    }
                    if b.tombstones > 0 {
                        notes.push(n_of(b.tombstones as u64, "tombstone"));
                    }
                    if b.erased > 0 {
                        notes.push(format!("{} erased", b.erased));
                    }
                    vec![
                        b.file.clone(),
                        seqs,
                        span.map_or_else(String::new, |sp| block_bar(s, r, b, sp)),
                        b.messages.to_string(),
                        human::ibytes(b.bytes),
                        human::ibytes(b.file_bytes),
                        notes.join(", "),
                    ]
                })
                .collect();
            o.push_str(
                &human::table(
                    &["Block", "Seqs", "", "Messages", "Msg Size", "File Size", ""],
                    &rows,
                    &[3, 4, 5],
                )
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>(),
            );
        }
        if s.encryption.is_some() {
            o.push('\n');
            encryption_lines(s, &mut o);
            o.pop();
        }
        let _ = writeln!(o, "\nConsumers:\n");
        if s.consumers.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for c in &s.consumers {
            let _ = writeln!(
                o,
                "  {}: ack {}{}; Outstanding Acks {}, Unprocessed {}, Redelivered {}; last delivered stream seq {} (consumer seq {}), ack floor stream seq {} (consumer seq {})",
                c.name,
                c.ack_policy.as_deref().unwrap_or("?"),
                c.filter_subject
                    .as_deref()
                    .map(|f| format!(", filter {f}"))
                    .unwrap_or_default(),
                opt(c.pending),
                opt(c.num_pending),
                opt(c.redelivered),
                opt(c.delivered_stream_seq),
                opt(c.delivered_consumer_seq),
                opt(c.ack_floor_stream_seq),
                opt(c.ack_floor_consumer_seq),
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "Warnings and problems:\n");
    if r.problems.is_empty() && more.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for p in &r.problems {
        let _ = writeln!(o, "  {}", problem_line(p));
    }
    o.push_str(&more);
    o
}

/// A backup format in words.
fn format_words(fmt: &str) -> &'static str {
    match fmt {
        "v1" => "V1 backup: tar in stream.tar.s2",
        "v2" => "V2 backup: NATSARC1 in stream.tar.s2",
        "tgz" => "gzip tarball of a stream dir",
        "tar" => "tar of a stream dir",
        "account" => "nats account backup",
        _ => "backup",
    }
}

/// "8 messages, 582 B, seqs 1..10 (2 deleted)", from whatever is known.
fn state_words(
    messages: Option<u64>,
    bytes: Option<u64>,
    first: Option<u64>,
    last: Option<u64>,
    deleted: Option<u64>,
) -> String {
    let mut parts = Vec::new();
    if let Some(m) = messages {
        parts.push(n_of(m, "message"));
    }
    if let Some(b) = bytes {
        parts.push(human::ibytes(b));
    }
    if let (Some(a), Some(z)) = (first, last) {
        let d = deleted
            .filter(|&d| d > 0)
            .map(|d| format!(" ({d} deleted)"))
            .unwrap_or_default();
        parts.push(format!("seqs {a}..{z}{d}"));
    }
    parts.join(", ")
}

fn consumer_words<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "no consumers".into()
    } else {
        format!("{}: {}", n_of(v.len() as u64, "consumer"), v.join(", "))
    }
}

/// Human report of `jetdir extract`.
pub fn render_extract(rep: &ExtractReport) -> String {
    let mut s = String::new();
    if !rep.streams.is_empty() {
        for r in &rep.streams {
            s.push_str(&render_extract(r));
        }
        let _ = writeln!(
            s,
            "account backup: {}, status {}",
            n_of(rep.streams.len() as u64, "stream"),
            rep.status
        );
        return s;
    }
    let fmt = rep.archive.format.as_deref().unwrap_or("?");
    let name = rep.stream.as_deref().unwrap_or("?");
    for p in &rep.problems {
        let _ = writeln!(s, "{}", problem_line(p));
    }
    for r in &rep.removed_staging {
        let verb = if rep.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let _ = writeln!(s, "{verb} leftover staging dir {r}");
    }
    for w in &rep.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    if let Some(r) = &rep.refused {
        let _ = writeln!(s, "{}: {r}", paint("refused", Colour::Red));
        let _ = writeln!(s, "nothing was written");
        return s;
    }
    let target = rep.target.as_deref().unwrap_or("?");
    let what = format!("{} > {name} ({})", rep.account, format_words(fmt));
    if rep.dry_run {
        let _ = writeln!(s, "dry run: would write {what} to {target}:");
        for f in &rep.files {
            let _ = writeln!(s, "  {:>10}  {}", human::ibytes(f.bytes), f.path);
        }
    } else {
        let _ = writeln!(s, "extracted {what} to {target}");
    }
    let _ = writeln!(
        s,
        "  {}; {}",
        state_words(
            rep.messages,
            rep.msg_bytes,
            rep.first_seq,
            rep.last_seq,
            rep.deleted
        ),
        consumer_words(rep.consumers.iter().map(String::as_str))
    );
    let _ = writeln!(
        s,
        "  {}, {}, {}",
        n_of(rep.files.len() as u64, "file"),
        human::ibytes(rep.bytes),
        n_of(rep.blocks, "message block")
    );
    if rep.status == ExtractStatus::WrittenDamaged {
        let _ = writeln!(
            s,
            "{}",
            paint(
                "the archive is damaged: written anyway (--allow-damaged)",
                Colour::Red
            )
        );
    }
    s
}

/// Human report of `jetdir pack`.
pub fn render_pack(rep: &PackReport) -> String {
    let mut s = String::new();
    for p in &rep.problems {
        let _ = writeln!(s, "{}", problem_line(p));
    }
    for n in &rep.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if let Some(r) = &rep.refused {
        let _ = writeln!(s, "{}: {r}", paint("refused", Colour::Red));
        let _ = writeln!(s, "nothing written");
        return s;
    }
    let fmt = rep.format.map_or("?", |f| f.as_str());
    for st in &rep.streams {
        let _ = writeln!(
            s,
            "packed {} > {} as {fmt} ({}): {}; {}; index.db {}",
            st.account,
            st.name,
            format_words(fmt),
            state_words(
                Some(st.messages),
                Some(st.bytes),
                Some(st.first_seq),
                Some(st.last_seq),
                Some(st.deleted)
            ),
            consumer_words(st.consumers.iter().map(|c| c.name.as_str())),
            st.index_db
        );
    }
    let w = rep.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
    for f in &rep.files {
        let _ = writeln!(
            s,
            "  {:<w$}  {:>10}  sha256 {}",
            f.path,
            human::ibytes(f.bytes),
            f.sha256
        );
    }
    let _ = writeln!(s, "wrote {}", rep.out);
    match rep.format {
        Some(PackFormat::Tgz) => {
            let acc = rep
                .streams
                .first()
                .map(|st| st.account.as_str())
                .filter(|a| *a != "$G")
                .map(|a| format!(" --account {a}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "restore with: stop the server; jetdir extract {} --store-dir <store_dir>{acc}; start the server",
                rep.out
            );
        }
        Some(_) if rep.streams.len() > 1 => {
            let _ = writeln!(s, "restore with: nats account restore {}", rep.out);
        }
        Some(_) => {
            let _ = writeln!(s, "restore with: nats stream restore {}", rep.out);
        }
        None => {}
    }
    s
}
