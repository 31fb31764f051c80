//! `jetdir explain`: the load model's story, stream by stream, in plain sentences.
//!
//! Rendered from verify's [`Report`] (each stream's [`LoadReport`], consumers and findings):
//! nothing is decided here, every sentence restates a field of the report. What the server
//! reads and trusts, what it rebuilds, truncates, removes and resets, what it serves after the
//! load, and the next step.
use crate::base::problem::{Kind, Problem, Severity};
use crate::base::report::{ranges_text, LoadReport, Report, StreamReport, Verdict};
use serde::Serialize;

/// The story of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStory {
    /// Account.
    pub account: String,
    /// Stream name.
    pub name: String,
    /// The load model's verdict (`loads`, `repaired`, `loses_data`, `skipped`); `null` for a
    /// backup read without a load model (a V2 archive).
    pub verdict: Option<Verdict>,
    /// The release the story is for, as the report names it.
    pub release: Option<String>,
    /// The story, in order: what the server reads, what it does, what it serves after.
    pub sentences: Vec<String>,
    /// What to do next.
    pub next_step: String,
    /// Encrypted at rest and no key given: nothing could be read.
    pub encrypted: bool,
    /// Messages served after the load.
    pub messages: Option<u64>,
    /// Their stored bytes.
    pub bytes: Option<u64>,
    /// First sequence after the load.
    pub first_seq: Option<u64>,
    /// Last sequence after the load.
    pub last_seq: Option<u64>,
    /// Deleted sequences after the load.
    pub deleted: Option<u64>,
    /// Time of the first message; JSON also `first_time`.
    #[serde(flatten, serialize_with = "first_time")]
    pub first_ts: Option<i64>,
    /// Time of the last message; JSON also `last_time`.
    #[serde(flatten, serialize_with = "last_time")]
    pub last_ts: Option<i64>,
    /// Consumers after the load.
    pub consumers: Vec<crate::base::report::ConsumerReport>,
}

fn first_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("first", *ns, s)
}

fn last_time<S: serde::Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    crate::base::report::serialize_time("last", *ns, s)
}

impl StreamStory {
    fn of(s: &StreamReport, verdict: Option<Verdict>, release: Option<String>) -> Self {
        StreamStory {
            account: s.account.clone(),
            name: s.name.clone(),
            verdict,
            release,
            sentences: Vec::new(),
            next_step: String::new(),
            encrypted: s.encrypted,
            messages: s.messages,
            bytes: s.bytes,
            first_seq: s.first_seq,
            last_seq: s.last_seq,
            deleted: s.deleted,
            first_ts: s.first_ts,
            last_ts: s.last_ts,
            consumers: s.consumers.clone(),
        }
    }
}

/// The result of `jetdir explain`.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainReport {
    /// No finding of severity error.
    pub ok: bool,
    /// One story per stream.
    pub streams: Vec<StreamStory>,
    /// The findings the stories rest on (verify's, capped as verify caps them).
    pub problems: Vec<Problem>,
    /// Facts about the store (clustered node, leftovers).
    pub notes: Vec<String>,
    #[serde(skip)]
    exit: i32,
}

impl ExplainReport {
    /// The exit code of the report it explains: 0 clean, 1 damaged, 2 could not run.
    pub fn exit_code(&self) -> i32 {
        self.exit
    }
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Bytes in binary units, as the human output writes them ("11.5 MiB").
fn ibytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn seqs(r: &[(u64, u64)]) -> String {
    let n: u64 = r.iter().map(|(a, b)| b - a + 1).sum();
    let word = if n == 1 { "sequence" } else { "sequences" };
    format!("{word} {}", ranges_text(r, 20))
}

/// Tell every stream's story.
pub fn explain(rep: &Report, path: &str) -> ExplainReport {
    let streams = rep.streams.iter().map(|s| story(rep, s, path)).collect();
    ExplainReport {
        ok: rep.ok,
        streams,
        problems: rep.problems.clone(),
        notes: rep.notes.clone(),
        exit: rep.exit_code(),
    }
}

fn of_stream<'a>(rep: &'a Report, s: &'a StreamReport) -> impl Iterator<Item = &'a Problem> {
    rep.problems.iter().filter(move |p| {
        p.loc.stream.as_deref() == Some(s.name.as_str())
            && p.loc.account.as_deref().is_none_or(|a| a == s.account)
    })
}

fn reads(s: &StreamReport, l: &LoadReport, o: &mut Vec<String>) {
    let who = match (&l.release, &l.release_from) {
        (Some(_), Some(f)) if f.starts_with("index.db") || f.starts_with("legacy") => {
            format!("The nats-server release that wrote it ({f})")
        }
        (Some(r), Some(f)) => format!("nats-server {r} ({f})"),
        (Some(r), None) => format!("nats-server {r}"),
        (None, _) => "A nats-server 2.10 or later (no release recorded in the files)".to_string(),
    };
    let blocks = plural(s.blocks as u64, "message block");
    let c = plural(s.consumers.len() as u64, "consumer");
    o.push(match l.recovery.as_str() {
        "index.db" => format!(
            "{who} reads meta.inf, {blocks} and {c}, and trusts msgs/index.db ({}): the stream's \
             state comes from the index, the blocks are read when messages are served.",
            s.index
        ),
        "legacy" => format!(
            "{who} reads meta.inf, {blocks} with their per-block .idx/.fss files (2.9 layout) and {c}."
        ),
        "restore" => format!(
            "A nats-server 2.15 or later restores this V2 (NATSARC1) backup: it writes its {} and {c} into a new stream, then its expiry removes what max_age and message TTLs have made too old.",
            plural(
                s.messages.unwrap_or(0)
                    + l.removed.iter().map(|r| r.messages).sum::<u64>()
                    - l.markers.len() as u64,
                "message"
            ),
        ),
        _ => format!(
            "{who} reads meta.inf, {blocks} and {c}, and rebuilds the stream's state from the \
             blocks, record by record{}.",
            l.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
    });
}

fn story(rep: &Report, s: &StreamReport, path: &str) -> StreamStory {
    let mut o = Vec::new();
    let errors: Vec<&Problem> = of_stream(rep, s)
        .filter(|p| p.severity == Severity::Error)
        .collect();
    let warnings = of_stream(rep, s)
        .filter(|p| p.severity == Severity::Warning)
        .count();
    let Some(l) = &s.load else {
        if s.encrypted {
            o.push("The stream is encrypted at rest: jetdir cannot read it without the key, so it cannot tell what the server does with it.".to_string());
        } else {
            let what = if s.index == crate::base::report::IndexKind::V2Archive {
                "a V2 (NATSARC1) backup"
            } else {
                "a backup"
            };
            o.push(format!(
                "This is {what}: the server's restore writes its {} into a new stream; there \
                 is no load of existing files to model.",
                plural(s.messages.unwrap_or(0), "message")
            ));
        }
        for p in errors.iter().filter(|_| !s.encrypted) {
            o.push(format!("Damage: {}", p.message));
        }
        let next = if s.encrypted {
            "give the server's JetStream key (--key-file FILE, or JETDIR_KEY) to read it"
                .to_string()
        } else if errors.is_empty() {
            "nothing to do: restore it with `nats stream restore` or `jetdir extract`".to_string()
        } else {
            format!(
                "salvage the good records: `jetdir salvage {path} --stream {} -o OUT`",
                s.name
            )
        };
        let mut st = StreamStory::of(s, None, None);
        st.sentences = o;
        st.next_step = next;
        return st;
    };
    let overlap = errors.iter().any(|p| p.kind == Kind::SubjectsOverlap);
    // a config the release does not support, as an error: it lists the stream offline
    // (config_fields::ConfigCheck::offline; check::store gives the verdict and next step)
    let offline_by = |of_consumer: bool| {
        l.verdict == Verdict::Skipped
            && errors.iter().any(|p| {
                matches!(p.kind, Kind::ConfigUnknownField | Kind::ConfigApiLevel)
                    && p.loc.consumer.is_some() == of_consumer
            })
    };
    // a consumer's config it does not support: the release stops the stream
    let (offline, stopped) = (offline_by(false), offline_by(true));
    // a file of some stream of the store the release does not get past at start (check::store::check_aux)
    let crash = rep
        .problems
        .iter()
        .find(|p| p.kind == Kind::AuxFileStopsServer)
        .filter(|_| l.verdict == Verdict::Skipped);
    let meta_damaged = errors.iter().any(|p| {
        matches!(
            p.kind,
            Kind::MetaSumMismatch | Kind::MetaCorrupt | Kind::MetaMissing
        )
    });
    if overlap {
        // told by the finding itself: which stream it collides with and what the release does
        for p in errors.iter().filter(|p| p.kind == Kind::SubjectsOverlap) {
            o.push(p.message.clone());
        }
        if l.verdict != Verdict::Skipped {
            reads(s, l, &mut o);
        }
    } else if l.verdict == Verdict::Skipped {
        // an encrypted stream's key files that do not open (see check::store::sealed_skips_stream)
        let sealed = errors.iter().any(|p| {
            p.kind == Kind::EncryptedCorrupt
                && p.loc.file.as_deref().is_some_and(|f| {
                    f.ends_with("meta.key") && !f.contains("obs/")
                        || f.ends_with("meta.inf") && !f.contains("obs/")
                        || (f.contains("msgs/") && f.ends_with(".key"))
                })
        });
        o.push(if let Some(c) = crash {
            format!(
                "The server does not start on this store: it does not get past {} > {}'s {} at start (a panic, or a walk of minutes or longer: see that stream's finding); no stream loads until that file is moved out of its stream dir.",
                c.loc.account.as_deref().unwrap_or("?"),
                c.loc.stream.as_deref().unwrap_or("?"),
                c.loc.file.as_deref().unwrap_or("?")
            )
        } else if meta_damaged {
            "The server does not load this stream: its meta.inf (the stream's config) is missing, damaged or does not match meta.sum.".to_string()
        } else if offline {
            "The server lists this stream as offline and does not load it: its config asks for what this release does not support (it logs \"Detected unsupported stream\" and leaves the files as they are).".to_string()
        } else if stopped {
            "A single server stops this stream and lists it as offline (\"stopped - unsupported consumer\"): a consumer's config asks for what this release does not support (it logs \"Stopping unsupported stream\"); no message is served, no consumer runs, and the files are left as they are.".to_string()
        } else if sealed {
            "The server does not load this stream: a key file of it does not open with the key that opens the rest (it logs \"Error decrypting our stream metafile\", or on 2.9 \"Error recreating stream\" for a block's key).".to_string()
        } else {
            "The server does not load this stream: recovering it fails (it logs \"Error recreating stream\" and leaves the files on disk).".to_string()
        });
        for p in &errors {
            o.push(format!("Why: {}", p.message));
        }
    } else {
        reads(s, l, &mut o);
    }
    let undecodable = errors.iter().any(|p| p.kind == Kind::BlockDecompress);
    // blocks written unencrypted (filestore::encrypted::PlainBlock): their key files go
    let plain_blocks: Vec<&str> = errors
        .iter()
        .filter(|p| p.kind == Kind::BlockPlaintext)
        .filter_map(|p| p.loc.file.as_deref())
        .collect();
    let plain_keys: Vec<String> = plain_blocks
        .iter()
        .map(|f| f.trim_end_matches(".blk").to_string() + ".key")
        .collect();
    let plaintext = !plain_blocks.is_empty() && l.verdict != Verdict::Skipped;
    if plaintext {
        o.push(format!(
            "{} written unencrypted (nats-server 2.10.0-2.11.5 do so when the stream was empty at their start): the server decrypts it with its key file and reads garbage, while the messages are intact on disk.",
            match plain_blocks.as_slice() {
                [one] => format!("{one} was"),
                more => format!("{} were", more.join(", ")),
            }
        ));
    }
    if l.lost_messages > 0 && l.verdict != Verdict::Skipped {
        let how = if undecodable && l.recovery == "rebuild" {
            "It drops the block(s) it cannot decode and truncates damaged ones at the first bad record: it loses"
        } else {
            "It truncates the damaged block(s) at the first bad record and loses"
        };
        o.push(format!(
            "{how} {}: {}.",
            plural(l.lost_messages, "message"),
            seqs(&l.lost)
        ));
    }
    if !l.unreadable.is_empty() && l.verdict != Verdict::Skipped {
        let why = if l.recovery == "index.db" {
            "from index.db but their records are damaged"
        } else {
            "but cannot read their records (damaged, or in a block it does not load)"
        };
        o.push(format!(
            "It counts {} {why}: a direct get answers \"no message found\" and consumers skip them.",
            seqs(&l.unreadable)
        ));
    }
    if !l.revived.is_empty() {
        let r: Vec<(u64, u64)> = l.revived.iter().map(|&q| (q, q)).collect();
        o.push(format!(
            "Deleted messages come back, because the record of their delete is lost: {}.",
            seqs(&r)
        ));
    }
    for r in &l.removed {
        o.push(format!(
            "The stream's {} limit removes {} at load: {}.",
            r.limit,
            plural(r.messages, "message"),
            seqs(&r.ranges)
        ));
    }
    for m in &l.markers {
        o.push(format!(
            "It writes a subject delete marker for {} as sequence {} (max_age emptied the subject; it replaces {}).",
            m.subject, m.seq, m.replaces
        ));
    }
    // the other damage: findings not already told by the ranges above
    let told = l.lost_messages > 0 || !l.unreadable.is_empty();
    if !told && l.verdict != Verdict::Skipped {
        let errors: Vec<_> = errors
            .iter()
            .filter(|p| p.kind != Kind::SubjectsOverlap)
            .collect();
        for p in errors.iter().take(5) {
            o.push(format!("Damage: {}", p.message));
        }
        if errors.len() > 5 {
            o.push(format!(
                "… and {} more errors (see problems).",
                errors.len() - 5
            ));
        }
    }
    for c in &s.consumers {
        if let Some(d) = &c.on_disk {
            o.push(format!(
                "Consumer {}: o.dat says delivered {} and ack floor {}; the server resets it to delivered {} and ack floor {}.",
                c.name,
                d.delivered_stream_seq,
                d.ack_floor_stream_seq,
                c.delivered_stream_seq.map_or("-".into(), |v| v.to_string()),
                c.ack_floor_stream_seq.map_or("-".into(), |v| v.to_string()),
            ));
        } else if c.state_from.as_deref() == Some("deliver_policy") {
            o.push(format!(
                "Consumer {} has no o.dat: the server starts it from its deliver policy.",
                c.name
            ));
        }
    }
    if l.verdict != Verdict::Skipped {
        let msgs = s.messages.unwrap_or(0);
        o.push(if msgs == 0 {
            format!(
                "After the load it serves no message (last sequence {}).",
                s.last_seq.unwrap_or(0)
            )
        } else {
            format!(
                "After the load it serves {} ({}), sequences {}..{} with {} deleted.",
                plural(msgs, "message"),
                ibytes(s.bytes.unwrap_or(0)),
                s.first_seq.unwrap_or(0),
                s.last_seq.unwrap_or(0),
                s.deleted.unwrap_or(0)
            )
        });
    }
    if warnings > 0 {
        o.push(format!(
            "{} the server repairs without losing data (see problems).",
            if warnings == 1 {
                "1 warning:".to_string()
            } else {
                format!("{warnings} warnings:")
            }
        ));
    }
    let next = match l.verdict {
        _ if plaintext => format!(
            "before starting the server, move {} out of stream {}'s directory (keep a copy): with no key file the server encrypts such a block with a new key and loses nothing (`jetdir verify` then says `block_plaintext_converted`); or keep every good record with `jetdir salvage {path} --stream {} -o OUT`",
            plain_keys.join(", "),
            s.name,
            s.name
        ),
        Verdict::Loads => "nothing to do: it loads as it is".to_string(),
        Verdict::Repaired => l
            .next_step
            .clone()
            .unwrap_or_else(|| "nothing to do: the server repairs this at start".into()),
        Verdict::LosesData => format!(
            "do not start the server on these files yet: compare the replicas and backups (`jetdir diff`) and restore the most complete one, or keep every good record with `jetdir salvage {path} --stream {} -o OUT`",
            s.name
        ),
        Verdict::MayNotLoad => l.next_step.clone().unwrap_or_default(),
        Verdict::Skipped if overlap || offline || stopped || crash.is_some() => {
            l.next_step.clone().unwrap_or_default()
        }
        Verdict::Skipped if undecodable || !meta_damaged => format!(
            "restore this stream from a backup or a healthy replica (`jetdir diff` to pick one), or write every good record as a stream the server loads: `jetdir salvage {path} --stream {} -o OUT`",
            s.name
        ),
        Verdict::Skipped => format!(
            "restore this stream from a backup or a healthy replica (`jetdir diff` to pick one), or, when meta.inf still reads as a config, write the stream again with a fresh meta.sum: `jetdir salvage {path} --stream {} -o OUT`",
            s.name
        ),
    };
    let mut st = StreamStory::of(s, Some(l.verdict), l.release.clone());
    st.sentences = o;
    st.next_step = next;
    st
}
