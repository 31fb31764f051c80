//! `jetdir dump`, `jetdir kv`, `jetdir object` (issue #12): arguments and rendering. The
//! reading is the library's (`jetdir::forensics`).
use jetdir::base::problem::Problem;
use jetdir::forensics::dump::{self, PayloadMode};
use jetdir::forensics::kv::{self, KvEntry, KvOp};
use jetdir::forensics::{self, Event, Filter};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where and when: shared by the three commands.
#[derive(clap::Args)]
pub struct Common {
    /// Only streams of this account (store dirs with accounts).
    #[arg(long)]
    account: Option<String>,
    /// Model the server's load at this time, RFC 3339 (max_age, TTLs; default now). Also the
    /// "now" of `--since 2h`.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Serve the messages as this nats-server release would after loading the files
    /// (default: the release that wrote them, from their metadata and formats).
    #[arg(long, value_name = "X.Y.Z")]
    server_version: Option<String>,
    #[command(flatten)]
    keys: crate::KeyArgs,
}

impl Common {
    /// The load to model: `--at` (default now) by `--server-version`.
    fn target(&self) -> Result<jetdir::check::Target, String> {
        crate::model_target(self.at.as_deref(), self.server_version.as_deref())
    }
}

/// `jetdir dump`.
#[derive(clap::Args)]
pub struct DumpArgs {
    /// A store, account or stream dir, or any backup form.
    path: PathBuf,
    /// Only this stream (default: every stream under PATH, one after the other).
    #[arg(long)]
    stream: Option<String>,
    /// NATS subject filter (`*` one token, `>` the rest).
    #[arg(long, value_name = "FILTER")]
    subject: Option<String>,
    /// Sequence range: `A..B`, `A..`, `..B` or `N` (inclusive).
    #[arg(long, value_name = "A..B")]
    seq: Option<String>,
    /// Messages at or after this time: RFC 3339, or a duration before now (`2h`, `30m`, `1d`).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Messages at or before this time: RFC 3339, or a duration before now.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only the last N matching messages.
    #[arg(long, value_name = "N")]
    last: Option<u64>,
    /// Leave payloads out.
    #[arg(long)]
    headers_only: bool,
    /// How payloads are written.
    #[arg(long, value_enum, default_value = "text")]
    payload: Payload,
    /// Also records found on disk that the server does not serve (deleted, erased, lost at
    /// load, unreadable, removed by limits), marked with why.
    #[arg(long)]
    include_deleted: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Payload {
    Text,
    Base64,
    Hex,
    None,
}

impl From<Payload> for PayloadMode {
    fn from(p: Payload) -> Self {
        match p {
            Payload::Text => PayloadMode::Text,
            Payload::Base64 => PayloadMode::Base64,
            Payload::Hex => PayloadMode::Hex,
            Payload::None => PayloadMode::None,
        }
    }
}

/// `jetdir kv`.
#[derive(clap::Args)]
pub struct KvArgs {
    /// A store, account or stream dir, or any backup form.
    path: PathBuf,
    /// The bucket (stream `KV_<bucket>`).
    #[arg(long)]
    bucket: String,
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    op: Option<KvOpArg>,
}

#[derive(clap::Subcommand)]
enum KvOpArg {
    /// The latest value of a key (exit 1 when it has none: never set, deleted or purged).
    Get {
        /// The key.
        key: String,
        /// Print only the value's bytes.
        #[arg(long)]
        raw: bool,
    },
    /// Every key that has a value (the default).
    Keys,
    /// Every revision of a key on disk, oldest first.
    History {
        /// The key.
        key: String,
    },
}

/// `jetdir object`.
#[derive(clap::Args)]
pub struct ObjectArgs {
    /// A store, account or stream dir, or any backup form.
    path: PathBuf,
    /// The bucket (stream `OBJ_<bucket>`).
    #[arg(long)]
    bucket: String,
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    op: Option<ObjOpArg>,
}

#[derive(clap::Subcommand)]
enum ObjOpArg {
    /// The objects (the default).
    Ls,
    /// Reassemble an object into a file, checked against its SHA-256 before it is renamed into
    /// place.
    Get {
        /// The object's name.
        name: String,
        /// The file to write (must not exist).
        #[arg(short, long)]
        out: PathBuf,
    },
}

/// Buffered stdout that notices a reader gone away (`| head`).
struct Out {
    w: io::BufWriter<io::StdoutLock<'static>>,
    closed: bool,
}

impl Out {
    fn new() -> Self {
        Out {
            w: io::BufWriter::with_capacity(1 << 16, io::stdout().lock()),
            closed: false,
        }
    }
    fn write(&mut self, b: &[u8]) -> ControlFlow<()> {
        if self.closed {
            return ControlFlow::Break(());
        }
        if let Err(e) = self.w.write_all(b) {
            self.gone(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
    /// Write with `f` straight to the output (a message streamed in pieces).
    fn stream(&mut self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> ControlFlow<()> {
        if self.closed {
            return ControlFlow::Break(());
        }
        if let Err(e) = f(&mut self.w) {
            self.gone(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
    fn line(&mut self, s: &str) -> ControlFlow<()> {
        self.write(s.as_bytes())?;
        self.write(b"\n")
    }
    fn gone(&mut self, e: io::Error) {
        self.closed = true;
        if e.kind() != io::ErrorKind::BrokenPipe {
            err(&format!("jetdir: cannot write the output: {e}"));
        }
    }
    fn finish(mut self) {
        if !self.closed {
            if let Err(e) = self.w.flush() {
                self.gone(e);
            }
        }
    }
}

fn err(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// The command, `--at` and `--server-version` of this run, for the JSON envelope (set once in
/// `run_*`).
type RunOpts = (&'static str, Option<String>, Option<String>);
static RUN: std::sync::OnceLock<RunOpts> = std::sync::OnceLock::new();

/// `body` in the common JSON envelope (`schema_version`, `command`, `options`, `exit_code`),
/// the body's fields after it.
fn envelope(body: serde_json::Value, exit_code: i32) -> serde_json::Value {
    let (command, at, version) = RUN.get().cloned().unwrap_or(("dump", None, None));
    let mut m = serde_json::Map::new();
    m.insert(
        "schema_version".into(),
        jetdir::base::report::SCHEMA_VERSION.into(),
    );
    m.insert("command".into(), command.into());
    m.insert(
        "options".into(),
        serde_json::json!({"quick": false, "at": at, "server_version": version}),
    );
    m.insert("exit_code".into(), exit_code.into());
    if let serde_json::Value::Object(b) = body {
        m.extend(b);
    }
    serde_json::Value::Object(m)
}

fn fail(json: bool, msg: &str) -> ExitCode {
    if json {
        let mut o = Out::new();
        let doc = envelope(
            serde_json::json!({"ok": false, "error": msg, "problems": []}),
            2,
        );
        let _ = o.line(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        o.finish();
    }
    err(&format!("jetdir: {msg}"));
    ExitCode::from(2)
}

/// A message as `nats stream view` shows it, with where it lies.
fn text_message(m: &forensics::Msg, mode: PayloadMode, headers_only: bool, o: &mut Vec<u8>) {
    if let Some(enc) = text_head(m, mode, headers_only, o) {
        text_piece(enc, m.payload, o);
        o.extend_from_slice(b"\n\n");
    }
}

/// [`text_message`] written to `w` in pieces: the payload straight from the block (encoded
/// piece by piece), never copied whole. The same bytes.
fn stream_text_message(
    m: &forensics::Msg,
    mode: PayloadMode,
    headers_only: bool,
    w: &mut dyn Write,
) -> io::Result<()> {
    const PIECE: usize = 3 << 16; // a multiple of 3: base64 pieces join without padding
    let mut buf = Vec::with_capacity(PIECE * 2 + 4096);
    let Some(enc) = text_head(m, mode, headers_only, &mut buf) else {
        return w.write_all(&buf);
    };
    w.write_all(&buf)?;
    if enc == TextEnc::Raw {
        w.write_all(m.payload)?;
    } else {
        for piece in m.payload.chunks(PIECE) {
            buf.clear();
            text_piece(enc, piece, &mut buf);
            w.write_all(&buf)?;
        }
    }
    w.write_all(b"\n\n")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TextEnc {
    Raw,
    Hex,
    Base64,
}

fn text_piece(enc: TextEnc, p: &[u8], o: &mut Vec<u8>) {
    match enc {
        TextEnc::Raw => o.extend_from_slice(p),
        TextEnc::Hex => forensics::hex_into(p, o),
        TextEnc::Base64 => forensics::base64_into(p, false, o),
    }
}

/// The message's lines up to its payload, and how the payload is written (`None`: not).
/// Built without formatting machinery or allocation per message (dump's hot path).
fn text_head(
    m: &forensics::Msg,
    mode: PayloadMode,
    headers_only: bool,
    o: &mut Vec<u8>,
) -> Option<TextEnc> {
    o.push(b'[');
    dump::push_uint(o, m.seq);
    o.extend_from_slice(b"] Subject: ");
    o.extend_from_slice(dump::lossy(m.subject).as_bytes());
    o.extend_from_slice(b" Received: ");
    dump::time_into(m.ts, o);
    if let Some(g) = m.gone {
        o.extend_from_slice(b" DELETED (");
        o.extend_from_slice(g.as_str().as_bytes());
        o.push(b')');
    }
    o.extend_from_slice(b"  (");
    o.extend_from_slice(m.file.as_bytes());
    o.extend_from_slice(b" @");
    dump::push_uint(o, m.offset);
    o.extend_from_slice(b")\n");
    if !m.headers.is_empty() {
        let text = dump::lossy(m.headers);
        if let Some(st) = dump::header_status(&text) {
            o.extend_from_slice(b"  Status: ");
            o.extend_from_slice(st.as_bytes());
            o.push(b'\n');
        }
        dump::header_groups(&text, |k, vs| {
            for v in vs {
                o.extend_from_slice(b"  ");
                o.extend_from_slice(k.as_bytes());
                o.extend_from_slice(b": ");
                o.extend_from_slice(v.as_bytes());
                o.push(b'\n');
            }
        });
    }
    o.push(b'\n');
    if headers_only || mode == PayloadMode::None {
        return None;
    }
    Some(match mode {
        PayloadMode::Text => match std::str::from_utf8(m.payload) {
            Ok(_) => TextEnc::Raw,
            Err(_) => {
                o.extend_from_slice(b"(not UTF-8, base64) ");
                TextEnc::Base64
            }
        },
        PayloadMode::Hex => TextEnc::Hex,
        _ => TextEnc::Base64,
    })
}

/// `jetdir dump`: exit 0 without error findings, 1 with, 2 when it could not run.
pub fn run_dump(a: &DumpArgs, json: bool) -> ExitCode {
    let _ = RUN.set(("dump", a.common.at.clone(), a.common.server_version.clone()));
    let target = match a.common.target() {
        Ok(t) => t,
        Err(e) => return fail(json, &e),
    };
    let at = target.at_ns;
    let keys = match a.common.keys.ring_for(a.common.account.as_deref()) {
        Ok(k) => k,
        Err(e) => return fail(json, &e),
    };
    let mut filter = Filter {
        subject: a.subject.as_ref().map(|s| s.as_bytes().to_vec()),
        last: a.last,
        include_deleted: a.include_deleted,
        ..Default::default()
    };
    if let Some(s) = &a.seq {
        match forensics::parse_seq_range(s) {
            Some(r) => filter.seq = r,
            None => {
                return fail(
                    json,
                    &format!("--seq {s:?}: not a range like 10..20, 10.., ..20 or 15"),
                )
            }
        }
    }
    for (arg, v, slot) in [
        ("--since", &a.since, &mut filter.since),
        ("--until", &a.until, &mut filter.until),
    ] {
        if let Some(t) = v {
            match forensics::parse_time_arg(t, at) {
                Some(ns) => *slot = Some(ns),
                None => {
                    return fail(
                        json,
                        &format!(
                            "{arg} {t:?}: not an RFC 3339 time or a duration like 2h, 30m, 1d"
                        ),
                    )
                }
            }
        }
    }
    let list = match forensics::streams_with_keys(&a.path, &keys).and_then(|all| {
        forensics::select(
            all,
            &a.path,
            a.stream.as_deref(),
            a.common.account.as_deref(),
        )
    }) {
        Ok(l) => l,
        Err(e) => return fail(json, &format!("{e:#}")),
    };
    let mode: PayloadMode = a.payload.into();
    let mut o = Out::new();
    let mut errors = 0u64;
    let many = list.len() > 1;
    let mut could_not = false;
    for s in &list {
        let w = match forensics::open_with_keys(s, &target, &keys) {
            Ok(w) => w,
            Err(e) if many => {
                // one stream that cannot be read (e.g. encrypted) does not stop the others
                err(&format!("jetdir: {} > {}: {e:#}", s.account, s.name));
                could_not = true;
                continue;
            }
            Err(e) => {
                o.finish();
                return fail(json, &format!("{e:#}"));
            }
        };
        if many
            && !json
            && o.line(&format!("=== {} > {} ===", s.account, s.name))
                .is_break()
        {
            break;
        }
        let headers_only = a.headers_only;
        let render_json = move |m: &forensics::Msg, out: &mut Vec<u8>| {
            dump::write_message_json(m, mode, headers_only, out);
            out.push(b'\n');
        };
        let render_text = move |m: &forensics::Msg, out: &mut Vec<u8>| {
            text_message(m, mode, headers_only, out);
        };
        let render: forensics::Render = if json { &render_json } else { &render_text };
        let r = w.walk_rendered(&filter, render, &mut |ev| match ev {
            Event::Rendered(_, bytes) => o.write(bytes),
            // too big to render whole: written straight from the block, in pieces
            Event::Msg(m) => o.stream(|w| {
                if json {
                    dump::stream_message_json(&m, mode, headers_only, w)?;
                    w.write_all(b"\n")
                } else {
                    stream_text_message(&m, mode, headers_only, w)
                }
            }),
            Event::Finding(p) => {
                if json {
                    o.line(&dump::finding_json(p).to_string())
                } else {
                    o.line(&super::render::problem_line(p))
                }
            }
        });
        match r {
            Ok(sum) => {
                errors += sum.errors;
                if sum.stopped {
                    break;
                }
            }
            Err(e) => {
                o.finish();
                return fail(json, &format!("{e:#}"));
            }
        }
    }
    o.finish();
    if could_not {
        return ExitCode::from(2);
    }
    ExitCode::from(u8::from(errors > 0))
}

fn findings_to_stderr(problems: &[Problem]) {
    for p in problems {
        err(&super::render::problem_line(p));
    }
}

fn value_json(v: &[u8]) -> (serde_json::Value, &'static str) {
    match std::str::from_utf8(v) {
        Ok(s) => (serde_json::json!(s), "text"),
        Err(_) => (serde_json::json!(forensics::base64(v, false)), "base64"),
    }
}

fn entry_json(bucket: &str, e: &KvEntry, with_value: bool) -> serde_json::Value {
    let mut o = serde_json::json!({
        "bucket": bucket,
        "key": e.key,
        "revision": e.revision,
        "operation": e.op.as_str(),
        "created": jetdir::base::time::rfc3339_full(e.created_ns),
        "created_ts": e.created_ns,
        "file": e.file,
        "offset": e.offset,
    });
    if with_value {
        let (v, enc) = value_json(&e.value);
        o["value"] = v;
        o["value_encoding"] = serde_json::json!(enc);
        o["length"] = serde_json::json!(e.value.len());
    }
    o
}

fn print_doc(v: &serde_json::Value) {
    let mut o = Out::new();
    let exit = if v["ok"] == serde_json::Value::Bool(true) {
        0
    } else {
        1
    };
    let doc = envelope(v.clone(), exit);
    let _ = o.line(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    o.finish();
}

fn code(bad: bool) -> ExitCode {
    ExitCode::from(u8::from(bad))
}

/// `jetdir kv`: exit 0 found / clean, 1 key not found or the bucket's stream has damage, 2
/// could not run.
pub fn run_kv(a: &KvArgs, json: bool) -> ExitCode {
    let _ = RUN.set(("kv", a.common.at.clone(), a.common.server_version.clone()));
    let target = match a.common.target() {
        Ok(t) => t,
        Err(e) => return fail(json, &e),
    };
    let keys = match a.common.keys.ring_for(a.common.account.as_deref()) {
        Ok(k) => k,
        Err(e) => return fail(json, &e),
    };
    let b = match kv::open_with_keys(
        &a.path,
        &a.bucket,
        a.common.account.as_deref(),
        &target,
        &keys,
    ) {
        Ok(b) => b,
        Err(e) => return fail(json, &format!("{e:#}")),
    };
    match a.op.as_ref().unwrap_or(&KvOpArg::Keys) {
        KvOpArg::Get { key, raw } => {
            let (e, f) = match b.get(key) {
                Ok(x) => x,
                Err(e) => return fail(json, &format!("{e:#}")),
            };
            let found = e.as_ref().filter(|e| e.op == KvOp::Put);
            let bad = found.is_none() || f.has_errors();
            if json {
                let mut doc = match &e {
                    Some(e) => entry_json(&a.bucket, e, e.op == KvOp::Put),
                    None => serde_json::json!({"bucket": a.bucket, "key": key}),
                };
                doc["ok"] = serde_json::json!(!bad);
                doc["found"] = serde_json::json!(found.is_some());
                doc["problems"] = serde_json::json!(f.problems);
                print_doc(&doc);
            } else {
                findings_to_stderr(&f.problems);
                match (&e, found) {
                    (_, Some(e)) => {
                        let mut o = Out::new();
                        if *raw {
                            let _ = o.write(&e.value);
                        } else {
                            let _ = o.line(&format!(
                                "{} > {} revision: {} created @ {}",
                                a.bucket,
                                e.key,
                                e.revision,
                                jetdir::base::time::rfc3339_full(e.created_ns)
                            ));
                            let _ = o.line("");
                            let _ = o.write(&e.value);
                            let _ = o.line("");
                        }
                        o.finish();
                    }
                    (Some(e), None) => err(&format!(
                        "jetdir: {} > {}: key not found (revision {} is a {} @ {})",
                        a.bucket,
                        key,
                        e.revision,
                        e.op.as_str(),
                        jetdir::base::time::rfc3339_full(e.created_ns)
                    )),
                    (None, None) => err(&format!("jetdir: {} > {key}: key not found", a.bucket)),
                }
            }
            code(bad)
        }
        KvOpArg::Keys => {
            let (keys, f) = match b.keys() {
                Ok(x) => x,
                Err(e) => return fail(json, &format!("{e:#}")),
            };
            if json {
                let doc = serde_json::json!({
                    "ok": !f.has_errors(),
                    "bucket": a.bucket,
                    "keys": keys.iter().map(|e| entry_json(&a.bucket, e, false)).collect::<Vec<_>>(),
                    "problems": f.problems,
                });
                print_doc(&doc);
            } else {
                findings_to_stderr(&f.problems);
                let mut o = Out::new();
                for k in &keys {
                    if o.line(&k.key).is_break() {
                        break;
                    }
                }
                o.finish();
            }
            code(f.has_errors())
        }
        KvOpArg::History { key } => {
            let (h, f) = match b.history(key) {
                Ok(x) => x,
                Err(e) => return fail(json, &format!("{e:#}")),
            };
            if json {
                let doc = serde_json::json!({
                    "ok": !f.has_errors() && !h.is_empty(),
                    "bucket": a.bucket,
                    "key": key,
                    "history": h.iter().map(|e| entry_json(&a.bucket, e, e.op == KvOp::Put)).collect::<Vec<_>>(),
                    "problems": f.problems,
                });
                print_doc(&doc);
            } else {
                findings_to_stderr(&f.problems);
                if h.is_empty() {
                    err(&format!("jetdir: {} > {key}: key not found", a.bucket));
                }
                let mut o = Out::new();
                for e in &h {
                    let v = match std::str::from_utf8(&e.value) {
                        Ok(s) => s.to_string(),
                        Err(_) => format!("(base64) {}", forensics::base64(&e.value, false)),
                    };
                    let line = format!(
                        "{:<8} {:<6} {}  {}",
                        e.revision,
                        e.op.as_str(),
                        jetdir::base::time::rfc3339_full(e.created_ns),
                        v
                    );
                    if o.line(&line).is_break() {
                        break;
                    }
                }
                o.finish();
            }
            code(f.has_errors() || h.is_empty())
        }
    }
}

fn info_json(i: &forensics::object::ObjectInfo) -> serde_json::Value {
    serde_json::json!({
        "name": i.name,
        "size": i.size,
        "chunks": i.chunks,
        "digest": i.digest,
        "nuid": i.nuid,
        "deleted": i.deleted,
        "description": i.description,
        "link": i.link,
        "modified": jetdir::base::time::rfc3339_full(i.mtime_ns),
        "modified_ts": i.mtime_ns,
        "meta_seq": i.meta_seq,
    })
}

/// `jetdir object`: exit 0 listed / written, 1 not found, digest/size mismatch (nothing
/// written) or damage in the listing's stream, 2 could not run.
pub fn run_object(a: &ObjectArgs, json: bool) -> ExitCode {
    let _ = RUN.set((
        "object",
        a.common.at.clone(),
        a.common.server_version.clone(),
    ));
    let target = match a.common.target() {
        Ok(t) => t,
        Err(e) => return fail(json, &e),
    };
    let keys = match a.common.keys.ring_for(a.common.account.as_deref()) {
        Ok(k) => k,
        Err(e) => return fail(json, &e),
    };
    let b = match forensics::object::open_with_keys(
        &a.path,
        &a.bucket,
        a.common.account.as_deref(),
        &target,
        &keys,
    ) {
        Ok(b) => b,
        Err(e) => return fail(json, &format!("{e:#}")),
    };
    match a.op.as_ref().unwrap_or(&ObjOpArg::Ls) {
        ObjOpArg::Ls => {
            let (list, probs) = match b.list() {
                Ok(x) => x,
                Err(e) => return fail(json, &format!("{e:#}")),
            };
            let bad = forensics::object::has_errors(&probs);
            if json {
                let doc = serde_json::json!({
                    "ok": !bad,
                    "bucket": a.bucket,
                    "objects": list.iter().map(info_json).collect::<Vec<_>>(),
                    "problems": probs,
                });
                print_doc(&doc);
            } else {
                findings_to_stderr(&probs);
                let mut o = Out::new();
                for i in list.iter().filter(|i| !i.deleted) {
                    let line = format!(
                        "{}  {} bytes  {} chunks  {}  {}",
                        i.name,
                        i.size,
                        i.chunks,
                        jetdir::base::time::rfc3339_full(i.mtime_ns),
                        i.digest
                    );
                    if o.line(&line).is_break() {
                        break;
                    }
                }
                o.finish();
            }
            code(bad)
        }
        ObjOpArg::Get { name, out } => {
            let (res, info, probs) = match b.get(name, out) {
                Ok(x) => x,
                Err(e) => return fail(json, &format!("{e:#}")),
            };
            if !json {
                findings_to_stderr(&probs);
            }
            let Some(r) = res else {
                let why = if info.is_some() {
                    "deleted"
                } else {
                    "not found"
                };
                if json {
                    print_doc(&serde_json::json!({
                        "ok": false, "bucket": a.bucket, "name": name, "found": false,
                        "deleted": info.is_some(), "problems": probs,
                    }));
                } else {
                    err(&format!("jetdir: {} > {name}: object {why}", a.bucket));
                }
                return code(true);
            };
            if json {
                print_doc(&serde_json::json!({
                    "ok": r.ok,
                    "bucket": a.bucket,
                    "name": name,
                    "found": true,
                    "out": r.out.as_ref().map(|p| p.display().to_string()),
                    "bytes": r.bytes,
                    "chunks": r.chunks,
                    "digest": r.digest,
                    "info": info_json(&r.info),
                    "mismatch": r.mismatch,
                    "problems": probs,
                }));
            } else if r.ok {
                let mut o = Out::new();
                let _ = o.line(&format!(
                    "wrote {} > {name} to {}: {} bytes in {} chunks, {} (matches the metadata)",
                    a.bucket,
                    out.display(),
                    r.bytes,
                    r.chunks,
                    r.digest
                ));
                o.finish();
            } else {
                for m in &r.mismatch {
                    err(&format!("jetdir: {} > {name}: {m}", a.bucket));
                }
                err(&format!(
                    "jetdir: {} > {name}: not written ({} untouched)",
                    a.bucket,
                    out.display()
                ));
            }
            code(!r.ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of a message as it was built before the fast path (format machinery and a
    /// parsed [`forensics::Headers`]): the reference the fast and streamed writers must equal.
    fn reference(m: &forensics::Msg, mode: PayloadMode, headers_only: bool) -> Vec<u8> {
        let mut o = Vec::new();
        let _ = write!(
            o,
            "[{}] Subject: {} Received: {}",
            m.seq,
            String::from_utf8_lossy(m.subject),
            jetdir::base::time::rfc3339_full(m.ts)
        );
        if let Some(g) = m.gone {
            let _ = write!(o, " DELETED ({})", g.as_str());
        }
        let _ = writeln!(o, "  ({} @{})", m.file, m.offset);
        let h = forensics::Headers::parse(m.headers);
        if let Some(s) = &h.status {
            let _ = writeln!(o, "  Status: {s}");
        }
        for (k, vs) in &h.values {
            for v in vs {
                let _ = writeln!(o, "  {k}: {v}");
            }
        }
        o.push(b'\n');
        if headers_only || mode == PayloadMode::None {
            return o;
        }
        match mode {
            PayloadMode::Text => match std::str::from_utf8(m.payload) {
                Ok(_) => o.extend_from_slice(m.payload),
                Err(_) => {
                    o.extend_from_slice(b"(not UTF-8, base64) ");
                    o.extend_from_slice(forensics::base64(m.payload, false).as_bytes());
                }
            },
            PayloadMode::Hex => o.extend_from_slice(forensics::hex(m.payload).as_bytes()),
            _ => o.extend_from_slice(forensics::base64(m.payload, false).as_bytes()),
        }
        o.extend_from_slice(b"\n\n");
        o
    }

    #[test]
    fn text_messages_equal_the_reference() {
        let big: Vec<u8> = (0..(3 << 17) + 5).map(|i| (i * 13 % 256) as u8).collect();
        for (payload, headers) in [
            (&b"\xff\x00"[..], &b"NATS/1.0\r\nX: 1\r\nX: 2\r\n\r\n"[..]),
            (
                b"text \"quoted\"\n",
                b"NATS/1.0 503 No Responders\r\nA: 1\r\nB:2\r\nA:  3 \r\n\r\n",
            ),
            (b"", b""),
            (b"x", b"NATS/1.0\r\nbad line\r\nK: \xff\r\n\r\n"),
            (&big[..], b""),
            (b"plain text", b"NATS/1.0\r\n\r\n"),
        ] {
            for gone in [None, Some(forensics::Gone::Lost)] {
                let m = forensics::Msg {
                    account: "$G",
                    stream: "S",
                    seq: 42,
                    ts: 1_796_044_118_165_655_204,
                    subject: b"a.\xffb",
                    headers,
                    payload,
                    file: "msgs/1.blk",
                    offset: 7,
                    size: 99,
                    gone,
                };
                for mode in [
                    PayloadMode::Text,
                    PayloadMode::Base64,
                    PayloadMode::Hex,
                    PayloadMode::None,
                ] {
                    for ho in [false, true] {
                        let want = reference(&m, mode, ho);
                        let mut fast = Vec::new();
                        text_message(&m, mode, ho, &mut fast);
                        assert_eq!(fast, want);
                        let mut streamed = Vec::new();
                        stream_text_message(&m, mode, ho, &mut streamed).unwrap();
                        assert_eq!(streamed, want);
                    }
                }
            }
        }
    }
}
