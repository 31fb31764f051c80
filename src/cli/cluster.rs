//! `jetdir cluster` (issue #12, clustered nodes): arguments and rendering. The work is the
//! library's (`jetdir::check::cluster`).
use super::human::{paint, Colour};
use super::render::problem_line;
use crate::{emit, fail, Run};
use jetdir::base::release::Release;
use jetdir::base::report::RunOptions;
use jetdir::check::cluster::{self, ClusterReport};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Examples and exit codes of `jetdir cluster --help`.
pub const CLUSTER_AFTER: &str = "\
Examples:
  jetdir cluster /data/nats/store                    raft groups, meta assignments, orphans, logs
  jetdir cluster --server-name n1 /data/nats/store   also streams assigned to other peers
  jetdir --json cluster /data/nats/store             one JSON document
  jetdir cluster --server-version 2.10.26 /data/nats/store   replay the logs as 2.10.26 restarts

Per stream and consumer group it also compares the raft log with the dir: the messages a
restart re-applies into the stream dir, and where it moves the consumer's o.dat (warnings).

Exit codes: 0 nothing would be deleted and the raft files are intact (warnings only), 1 the
server would delete stream/consumer dirs or raft files are damaged, 2 could not run.";

/// `jetdir cluster`.
#[derive(clap::Args)]
pub struct ClusterArgs {
    /// A stopped clustered node's store dir (the one with jetstream/$SYS/_js_/).
    path: PathBuf,
    /// The node's `server_name`: fixes its raft peer id (else inferred when the raft dirs allow),
    /// needed to tell streams the meta group assigns to other peers.
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// The nats-server release that restarts the node: consumer logs are replayed as it does
    /// (default: the release that wrote each stream dir, from its metadata and formats).
    #[arg(long, value_name = "X.Y.Z")]
    server_version: Option<String>,
}

/// Run `jetdir cluster`.
pub fn run_cluster(a: &ClusterArgs, json: bool) -> ExitCode {
    let run = Run {
        json,
        command: "cluster",
        options: RunOptions {
            server_version: a.server_version.clone(),
            ..Default::default()
        },
    };
    let release = match a.server_version.as_deref().map(Release::parse).transpose() {
        Ok(r) => r,
        Err(e) => return fail(&run, &e.to_string()),
    };
    match cluster::cluster_report(&a.path, a.server_name.as_deref(), release.as_ref()) {
        Ok(r) => emit(&run, &r, || render_cluster(&r), r.exit_code()),
        Err(e) => fail(&run, &e.to_string()),
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".to_string(), |x| x.to_string())
}

fn range(a: Option<u64>, b: Option<u64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "none".to_string(),
    }
}

fn render_stream_log(o: &mut String, s: &cluster::StreamLog) {
    if let Some(sn) = &s.snapshot {
        let _ = writeln!(
            o,
            "    snapshot state: {} msgs, seqs {}..{}, {} deleted, failed {} ({})",
            sn.msgs, sn.first_seq, sn.last_seq, sn.deleted, sn.failed, sn.encoding
        );
    }
    let msgs = match (s.first_seq, s.last_seq) {
        (Some(_), Some(_)) => format!("msgs {}", range(s.first_seq, s.last_seq)),
        _ => "no msgs".to_string(),
    };
    let _ = writeln!(
        o,
        "    log: {msgs} after the snapshot ({} msg(s), {} uncommitted, {} other op(s)), commit index {}",
        s.msgs, s.uncommitted_msgs, s.other_ops, s.commit
    );
    let dir = match s.stream_last_seq {
        Some(l) => format!("stream dir last seq {l}"),
        None => "stream dir not read".to_string(),
    };
    let what = match (s.reapply_first_seq, s.reapply_last_seq) {
        (Some(a), Some(b)) => paint(&format!("a restart re-applies {a}..{b}"), Colour::Yellow),
        _ => "nothing to re-apply".to_string(),
    };
    let _ = writeln!(o, "    {dir}: {what}");
}

fn seqs_text(c: &cluster::ConsumerSeqs) -> String {
    format!(
        "delivered {} / ack floor {} ({} ack pending)",
        c.delivered_stream_seq, c.ack_floor_stream_seq, c.num_ack_pending
    )
}

fn render_consumer_log(o: &mut String, c: &cluster::ConsumerLog) {
    if let Some(sn) = &c.snapshot {
        let _ = writeln!(o, "    snapshot state: {}", seqs_text(sn));
    }
    let upto = |v: Option<u64>| v.map_or(String::new(), |s| format!(" (to stream seq {s})"));
    let mut of_other = Vec::new();
    if c.skips > 0 {
        of_other.push(format!(
            "{} skip(s){}",
            c.skips,
            upto(c.last_skip_stream_seq)
        ));
    }
    if c.resets > 0 {
        of_other.push(format!(
            "{} reset(s){}",
            c.resets,
            upto(c.last_reset_stream_seq)
        ));
    }
    let of_other = if of_other.is_empty() {
        String::new()
    } else {
        format!(": {}", of_other.join(", "))
    };
    let _ = writeln!(
        o,
        "    log: {} deliveries{}, {} acks{}, {} other op(s){}, {} uncommitted, commit index {}",
        c.deliveries,
        upto(c.last_delivered_stream_seq),
        c.acks,
        upto(c.last_acked_stream_seq),
        c.other_ops,
        of_other,
        c.uncommitted_ops,
        c.commit
    );
    if c.skips > 0 {
        // releases differ on skips (2.11+ move o.dat, 2.9/2.10 do not): say whose replay it is
        let _ = writeln!(o, "    replayed as {} ({})", c.release, c.release_from);
    }
    match (&c.on_disk, &c.after_restart) {
        (Some(d), Some(a)) if d != a => {
            let _ = writeln!(
                o,
                "    o.dat: {}; {}",
                seqs_text(d),
                paint(
                    &format!("after a restart: {}", seqs_text(a)),
                    Colour::Yellow
                )
            );
        }
        (Some(d), _) => {
            let _ = writeln!(o, "    o.dat: {}; a restart keeps it", seqs_text(d));
        }
        _ => {
            let _ = writeln!(o, "    o.dat: not read");
        }
    }
}

fn render_cluster(r: &ClusterReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "this node: {} ({})",
        r.self_peer.as_deref().unwrap_or("?"),
        r.self_peer_from
    );
    if !r.groups.is_empty() {
        let _ = writeln!(o, "raft groups ($SYS/_js_):");
    }
    for g in &r.groups {
        let what = match (&g.stream, &g.consumer) {
            (Some(s), Some(c)) => format!(" = {} > {s} > {c}", g.account.as_deref().unwrap_or("?")),
            (Some(s), None) => format!(" = {} > {s}", g.account.as_deref().unwrap_or("?")),
            _ => String::new(),
        };
        let _ = writeln!(o, "  {} ({}){what}", g.name, g.kind);
        let _ = writeln!(
            o,
            "    peers {} (cluster size {}), term {}, vote {}, commit {}",
            g.peers.join(" "),
            opt(&g.cluster_size),
            opt(&g.term),
            opt(&g.vote),
            opt(&g.commit)
        );
        for s in &g.snapshots {
            let ck = match s.checksum_ok {
                Some(true) => "checksum ok",
                Some(false) => "CHECKSUM BAD",
                None => "unreadable",
            };
            let _ = writeln!(
                o,
                "    snapshot {}: term {}, index {}, {} bytes, {ck}",
                s.file,
                opt(&s.term),
                opt(&s.index),
                s.size
            );
        }
        let _ = writeln!(
            o,
            "    WAL: {} block(s), {} bytes, {} entries, index {}..{}, {} bad record(s)",
            g.wal.blocks,
            g.wal.bytes,
            g.wal.entries,
            opt(&g.wal.first_index),
            opt(&g.wal.last_index),
            g.wal.bad_records
        );
        if let Some(s) = &g.stream_log {
            render_stream_log(&mut o, s);
        }
        if let Some(c) = &g.consumer_log {
            render_consumer_log(&mut o, c);
        }
    }
    let m = &r.meta;
    if m.complete {
        let _ = writeln!(
            o,
            "meta assignments: {} stream(s), {} consumer(s) (snapshot {}, then {} WAL op(s); {} other entr(ies) skipped; {} past commit.idx)",
            m.streams_assigned,
            m.consumers_assigned,
            m.snapshot.as_deref().unwrap_or("none"),
            m.wal_ops_applied,
            m.wal_entries_skipped,
            m.past_commit
        );
    } else if r.clustered {
        let _ = writeln!(
            o,
            "meta assignments: could not be rebuilt (see the findings)"
        );
    }
    if !r.streams.is_empty() {
        let _ = writeln!(o, "on disk, at the next clustered start:");
    }
    for p in &r.streams {
        let name = match &p.consumer {
            Some(c) => format!("{} > {} > {c}", p.account, p.stream),
            None => format!("{} > {}", p.account, p.stream),
        };
        let fate = match p.fate {
            "kept" => paint("kept", Colour::Green),
            "orphan" => paint("DELETED (orphan: not in the meta assignments)", Colour::Red),
            "not_member" => paint("REMOVED (assigned to other peers)", Colour::Red),
            f => paint(f, Colour::Yellow),
        };
        let g = p
            .group
            .as_deref()
            .map(|g| format!(" [{g}]"))
            .unwrap_or_default();
        let _ = writeln!(o, "  {name}{g}: {fate}");
    }
    for p in &r.problems {
        let _ = writeln!(o, "{}", problem_line(p));
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}
