//! Human-readable rendering of reports (JSON is serde of the same structs).
use jetdir::base::problem::{Problem, Severity};
use jetdir::base::report::Report;
use jetdir::base::report::{StreamReport, Verdict};

use jetdir::ops::extract::{ExtractReport, ExtractStatus};
use jetdir::ops::pack::{PackFormat, PackReport};
use std::fmt::Write;

fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |x| x.to_string())
}

/// A timestamp for people: RFC 3339 with nanoseconds, or "-" for none.
pub fn ts(ns: Option<i64>) -> String {
    match ns {
        None | Some(0) => "-".into(),
        Some(n) => jetdir::base::time::rfc3339_full(n),
    }
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
        (Some(a), Some(b)) => {
            let _ = write!(where_, " seq {a}..={b}");
        }
        (Some(a), None) => {
            let _ = write!(where_, " seq {a}");
        }
        _ => {}
    }
    format!("{sev} [{}] {}: {}", p.kind, where_.trim(), p.message)
}

fn stream_line(s: &StreamReport) -> String {
    if s.encrypted {
        return format!("{} > {}: encrypted at rest, key needed", s.account, s.name);
    }
    format!(
        "{} > {}: {} messages, {} bytes, seqs {}..{}, {} deleted, {} subjects, {} blocks, {} consumers",
        s.account,
        s.name,
        opt(s.messages),
        opt(s.bytes),
        opt(s.first_seq),
        opt(s.last_seq),
        opt(s.deleted),
        opt(s.subjects),
        s.blocks,
        s.consumers.len()
    )
}

fn ranges(r: &[(u64, u64)]) -> String {
    jetdir::base::report::ranges_text(r, 8)
}

/// The load model's verdict for a stream, then what the load does and the next step.
fn load_lines(s: &StreamReport, o: &mut String) {
    let Some(l) = &s.load else { return };
    let who = match (&l.release, &l.release_from) {
        (Some(_), Some(f)) if f.starts_with("index.db") || f.starts_with("legacy") => {
            format!("nats-server of the release that wrote it, from {f}")
        }
        (Some(r), _) => format!("nats-server {r}"),
        (None, _) => "nats-server 2.10 or later".to_string(),
    };
    let _ = writeln!(o, "  verdict: {} ({who})", l.verdict);
    if let Some(why) = &l.reason {
        let _ = writeln!(o, "  load: state rebuilt from the blocks: {why}");
    }
    if l.lost_messages > 0 {
        let _ = writeln!(
            o,
            "  loses: {} message(s), seqs {}",
            l.lost_messages,
            ranges(&l.lost)
        );
    }
    if !l.unreadable.is_empty() {
        let _ = writeln!(
            o,
            "  unreadable: seqs {} (counted from index.db; MSG.GET answers \"no message found\")",
            ranges(&l.unreadable)
        );
    }
    if !l.revived.is_empty() {
        let rv: Vec<(u64, u64)> = l.revived.iter().map(|&q| (q, q)).collect();
        let _ = writeln!(o, "  deleted messages that come back: seqs {}", ranges(&rv));
    }
    for r in &l.removed {
        let _ = writeln!(
            o,
            "  {} removes {} message(s) at load: seqs {}",
            r.limit,
            r.messages,
            ranges(&r.ranges)
        );
    }
    if let Some(n) = &l.next_step {
        let _ = writeln!(o, "  next: {n}");
    }
}

pub fn render_verify(r: &Report) -> String {
    let mut o = String::new();
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for s in &r.streams {
        let _ = writeln!(o, "{}", stream_line(s));
        if s.load.as_ref().is_some_and(|l| l.verdict != Verdict::Loads) {
            load_lines(s, &mut o);
        }
        for c in &s.consumers {
            let _ = writeln!(
                o,
                "  consumer {}: delivered stream seq {}, ack floor stream seq {}, {} pending, {} redelivered",
                c.name,
                opt(c.delivered_stream_seq),
                opt(c.ack_floor_stream_seq),
                opt(c.pending),
                opt(c.redelivered)
            );
        }
    }
    for p in &r.problems {
        let _ = writeln!(o, "{}", problem_line(p));
    }
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
    let losing: Vec<String> = r
        .streams
        .iter()
        .filter_map(|s| {
            let l = s.load.as_ref()?;
            match l.verdict {
                Verdict::LosesData if l.lost_messages > 0 => {
                    Some(format!("{} loses {} message(s)", s.name, l.lost_messages))
                }
                Verdict::LosesData => Some(format!("{} loses data", s.name)),
                Verdict::Skipped => Some(format!("{} is not loaded", s.name)),
                _ => None,
            }
        })
        .collect();
    let _ = writeln!(
        o,
        "{}: {} stream(s), {} error(s), {} warning(s){}",
        if errs == 0 { "OK" } else { "PROBLEMS FOUND" },
        r.streams.len(),
        errs,
        warns,
        if losing.is_empty() {
            String::new()
        } else {
            format!("; {}", losing.join(", "))
        }
    );
    o
}

pub fn render_inspect(r: &Report) -> String {
    let mut o = String::new();
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for s in &r.streams {
        let _ = writeln!(o, "Stream {} (account {})\n", s.name, s.account);
        if s.encrypted {
            let _ = writeln!(o, "  encrypted at rest: key needed\n");
            continue;
        }
        if s.load.is_some() {
            load_lines(s, &mut o);
            o.push('\n');
        }
        if let Some(c) = &s.config {
            let _ = writeln!(o, "Configuration:\n");
            for k in [
                "subjects",
                "retention",
                "storage",
                "num_replicas",
                "max_msgs",
                "max_bytes",
                "max_age",
                "max_msgs_per_subject",
                "max_msg_size",
                "discard",
                "compression",
                "allow_msg_ttl",
            ] {
                if let Some(v) = c.get(k) {
                    let _ = writeln!(o, "  {:>22}: {}", k, v);
                }
            }
            if let Some(v) = c.get("Created").and_then(|v| v.as_str()) {
                let _ = writeln!(o, "  {:>22}: {}", "created", v);
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(o, "State:\n");
        let _ = writeln!(o, "  {:>22}: {}", "messages", opt(s.messages));
        let _ = writeln!(o, "  {:>22}: {}", "bytes", opt(s.bytes));
        let _ = writeln!(
            o,
            "  {:>22}: {} @ {}",
            "first sequence",
            opt(s.first_seq),
            ts(s.first_ts)
        );
        let _ = writeln!(
            o,
            "  {:>22}: {} @ {}",
            "last sequence",
            opt(s.last_seq),
            ts(s.last_ts)
        );
        let _ = writeln!(o, "  {:>22}: {}", "deleted messages", opt(s.deleted));
        let _ = writeln!(o, "  {:>22}: {}", "subjects", opt(s.subjects));
        let _ = writeln!(o, "  {:>22}: {}", "index", s.index);
        let _ = writeln!(o, "\nBlocks:\n");
        for b in &s.block_list {
            let _ = writeln!(
                o,
                "  {:<14} {:>10} bytes{} {:>7} records {:>7} msgs  seqs {}..{}  {} tombstones {} erased",
                b.file,
                b.file_bytes,
                if b.compressed { " (s2)" } else { "     " },
                b.records,
                b.messages,
                opt(b.first_seq),
                opt(b.last_seq),
                b.tombstones,
                b.erased
            );
        }
        let _ = writeln!(o, "\nConsumers:\n");
        if s.consumers.is_empty() {
            let _ = writeln!(o, "  (none)");
        }
        for c in &s.consumers {
            let _ = writeln!(
                o,
                "  {}: ack {} {}delivered (consumer {}, stream {}), ack floor (consumer {}, stream {}), {} pending, {} redelivered",
                c.name,
                c.ack_policy.as_deref().unwrap_or("?"),
                c.filter_subject.as_deref().map(|f| format!("filter {f}, ")).unwrap_or_default(),
                opt(c.delivered_consumer_seq),
                opt(c.delivered_stream_seq),
                opt(c.ack_floor_consumer_seq),
                opt(c.ack_floor_stream_seq),
                opt(c.pending),
                opt(c.redelivered)
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "Warnings and problems:\n");
    if r.problems.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for p in &r.problems {
        let _ = writeln!(o, "  {}", problem_line(p));
    }
    o
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
            "account backup: {} stream(s), status {}",
            rep.streams.len(),
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
        let _ = writeln!(s, "refused: {r}");
        let _ = writeln!(s, "nothing was written");
        return s;
    }
    let target = rep.target.as_deref().unwrap_or("?");
    if rep.dry_run {
        let _ = writeln!(
            s,
            "dry run: would write {account} > {name} ({fmt} backup) to {target}:",
            account = rep.account
        );
        for f in &rep.files {
            let _ = writeln!(s, "  {:>12}  {}", f.bytes, f.path);
        }
    } else {
        let _ = writeln!(
            s,
            "extracted {} > {name} ({fmt} backup) to {target}",
            rep.account
        );
    }
    let msgs = rep
        .messages
        .map(|m| format!("{m} messages in "))
        .unwrap_or_default();
    let cons = if rep.consumers.is_empty() {
        "no consumers".to_string()
    } else {
        format!("consumers {}", rep.consumers.join(", "))
    };
    let _ = writeln!(
        s,
        "{} files, {} bytes: {msgs}{} blocks, {cons}",
        rep.files.len(),
        rep.bytes,
        rep.blocks
    );
    if rep.status == ExtractStatus::WrittenDamaged {
        let _ = writeln!(
            s,
            "the archive is damaged: written anyway (--allow-damaged)"
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
        let _ = writeln!(s, "refused: {r}");
        let _ = writeln!(s, "nothing written");
        return s;
    }
    let fmt = rep.format.map_or("?", |f| f.as_str());
    for st in &rep.streams {
        let _ = writeln!(
            s,
            "packed {} > {} as {fmt}: {} messages, {} bytes, seqs {}..={} ({} deleted), {} consumer(s){}; index.db {}",
            st.account,
            st.name,
            st.messages,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.deleted,
            st.consumers.len(),
            if st.consumers.is_empty() {
                String::new()
            } else {
                format!(" [{}]", st.consumers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "))
            },
            st.index_db
        );
    }
    for f in &rep.files {
        let _ = writeln!(s, "  {}  {} bytes  sha256 {}", f.path, f.bytes, f.sha256);
    }
    let _ = writeln!(s, "wrote {}", rep.out);
    match rep.format {
        Some(PackFormat::Tgz) => {
            let _ = writeln!(s, "load with: stop the server; tar -xzf {} -C <store_dir>/jetstream/<ACCOUNT>/streams/; start the server", rep.out);
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

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_render() {
        assert_eq!(super::ts(Some(0)), "-");
        assert_eq!(
            super::ts(Some(1_764_000_000_123_456_789)),
            "2025-11-24T16:00:00.123456789Z"
        );
    }
}
