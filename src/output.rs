//! Human-readable rendering of reports (JSON is serde of the same structs).
use crate::problem::{Problem, Severity};
use crate::verify::{Report, StreamReport};
use std::fmt::Write;

fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |x| x.to_string())
}

pub fn ts(ns: Option<i64>) -> String {
    match ns {
        None | Some(0) => "-".into(),
        Some(n) => {
            let secs = n.div_euclid(1_000_000_000);
            let nanos = n.rem_euclid(1_000_000_000);
            let days = secs.div_euclid(86_400);
            let rem = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60,
                nanos
            )
        }
    }
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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

pub fn render_verify(r: &Report) -> String {
    let mut o = String::new();
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for s in &r.streams {
        let _ = writeln!(o, "{}", stream_line(s));
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
    let errs = r
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warns = r.problems.len() - errs;
    let _ = writeln!(
        o,
        "{}: {} stream(s), {} error(s), {} warning(s)",
        if errs == 0 { "OK" } else { "PROBLEMS FOUND" },
        r.streams.len(),
        errs,
        warns
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
