//! `jetdir dump`: a stream's messages in sequence order as NDJSON objects (one per message,
//! findings in between) or as text; the walking is [`super::StreamWalker`]'s.
use super::{base64, hex, Headers, Msg};
use serde_json::{json, Map, Value};

/// How payloads are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadMode {
    /// As text (UTF-8); a payload that is not valid UTF-8 is written in base64 and says so.
    #[default]
    Text,
    /// Standard base64.
    Base64,
    /// Lower-case hex.
    Hex,
    /// Left out.
    None,
}

impl PayloadMode {
    /// `text`, `base64`, `hex` or `none`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => Self::Text,
            "base64" => Self::Base64,
            "hex" => Self::Hex,
            "none" => Self::None,
            _ => return None,
        })
    }
}

/// A payload in `mode`: the text and the encoding actually used (`text`, `base64`, `hex`),
/// `None` for [`PayloadMode::None`].
pub fn encode_payload(p: &[u8], mode: PayloadMode) -> Option<(String, &'static str)> {
    match mode {
        PayloadMode::Text => Some(match std::str::from_utf8(p) {
            Ok(s) => (s.to_string(), "text"),
            Err(_) => (base64(p, false), "base64"),
        }),
        PayloadMode::Base64 => Some((base64(p, false), "base64")),
        PayloadMode::Hex => Some((hex(p), "hex")),
        PayloadMode::None => None,
    }
}

/// The headers as a JSON object of arrays (every value of a repeated header, in order), with
/// the status line (e.g. `"100 Idle Heartbeat"`) under `"status"` when there is one.
pub fn headers_json(raw: &[u8]) -> (Value, Option<String>) {
    let h = Headers::parse(raw);
    let mut m = Map::new();
    for (k, vs) in h.values {
        m.insert(k, Value::from(vs));
    }
    (Value::Object(m), h.status)
}

/// One NDJSON object for a message: `stream`, `account`, `seq`, `subject`, `time` (RFC 3339,
/// UTC, nanoseconds), `ts` (ns), `headers` (object of arrays; `{}` without headers), `size`
/// (stored bytes, as the server counts them), `payload` and `payload_encoding` (unless
/// headers only or `none`), `payload_size`, `file`, `offset`, and `deleted` (why the server
/// does not serve it) only for records shown by `--include-deleted`.
pub fn message_json(m: &Msg, mode: PayloadMode, headers_only: bool) -> Value {
    let (headers, status) = headers_json(m.headers);
    let mut o = Map::new();
    o.insert("account".into(), json!(m.account));
    o.insert("stream".into(), json!(m.stream));
    o.insert("seq".into(), json!(m.seq));
    o.insert("subject".into(), json!(String::from_utf8_lossy(m.subject)));
    o.insert("time".into(), json!(crate::base::time::rfc3339_full(m.ts)));
    o.insert("ts".into(), json!(m.ts));
    o.insert("headers".into(), headers);
    if let Some(s) = status {
        o.insert("status".into(), json!(s));
    }
    o.insert("size".into(), json!(m.size));
    o.insert("payload_size".into(), json!(m.payload.len()));
    if !headers_only {
        if let Some((p, enc)) = encode_payload(m.payload, mode) {
            o.insert("payload".into(), json!(p));
            o.insert("payload_encoding".into(), json!(enc));
        }
    }
    o.insert("file".into(), json!(m.file));
    o.insert("offset".into(), json!(m.offset));
    if let Some(g) = m.gone {
        o.insert("deleted".into(), json!(g.as_str()));
    }
    Value::Object(o)
}

/// [`message_json`] written straight into `out` (no newline): the same object, built
/// without intermediate values (dump's hot path).
pub fn write_message_json(m: &Msg, mode: PayloadMode, headers_only: bool, out: &mut Vec<u8>) {
    let enc = json_head(m, mode, headers_only, out);
    if let Some(enc) = enc {
        payload_piece(enc, m.payload, out);
    }
    json_tail(m, enc, out);
}

/// Payload bytes encoded per piece when a message is streamed: a multiple of 3, so base64
/// pieces join without padding.
const PIECE: usize = 3 << 16;

/// [`write_message_json`] written to `w` in pieces of at most a few hundred KiB: the payload
/// is encoded piece by piece straight from the block, never as a whole (what a walk hands
/// out unrendered, [`super::render_streamed`]). The same bytes as [`write_message_json`].
pub fn stream_message_json(
    m: &Msg,
    mode: PayloadMode,
    headers_only: bool,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(PIECE * 2 + 4096);
    let enc = json_head(m, mode, headers_only, &mut buf);
    if let Some(enc) = enc {
        for piece in m.payload.chunks(PIECE) {
            payload_piece(enc, piece, &mut buf);
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    json_tail(m, enc, &mut buf);
    w.write_all(&buf)
}

/// How the payload is written: `text` (JSON-escaped UTF-8), `hex` or `base64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    Text,
    Hex,
    Base64,
}

impl Enc {
    fn name(self) -> &'static str {
        match self {
            Enc::Text => "text",
            Enc::Hex => "hex",
            Enc::Base64 => "base64",
        }
    }
}

/// One piece of the payload in `enc` (pieces of base64 are multiples of 3 bytes but the last).
fn payload_piece(enc: Enc, p: &[u8], out: &mut Vec<u8>) {
    match enc {
        Enc::Text => json_escape_into(p, out),
        Enc::Hex => super::hex_into(p, out),
        Enc::Base64 => super::base64_into(p, false, out),
    }
}

/// The bytes of a JSON string's contents (no quotes) escaped exactly as `serde_json` escapes
/// them: `\"`, `\\`, `\b \t \n \f \r`, other control bytes as `\u00xx`; the rest as it
/// is. Bytes of a valid UTF-8 text may be cut anywhere: only ASCII bytes are escaped.
pub fn json_escape_into(p: &[u8], out: &mut Vec<u8>) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // some byte of `w` is below 0x20, a quote or a backslash (exact: no false positives)
    let special = |w: u64| {
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let below = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        below | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) != 0
    };
    let mut from = 0;
    let mut words = p.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        if special(u64::from_le_bytes(w.try_into().unwrap_or_default())) {
            for (k, &b) in w.iter().enumerate() {
                if b < 0x20 || b == b'"' || b == b'\\' {
                    out.extend_from_slice(&p[from..at + k]);
                    from = at + k + 1;
                    escape(b, out);
                }
            }
        }
        at += 8;
    }
    for (k, &b) in words.remainder().iter().enumerate() {
        if b < 0x20 || b == b'"' || b == b'\\' {
            out.extend_from_slice(&p[from..at + k]);
            from = at + k + 1;
            escape(b, out);
        }
    }
    out.extend_from_slice(&p[from..]);
}

/// A byte that JSON strings escape, escaped as `serde_json` does.
fn escape(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x09 => out.extend_from_slice(b"\\t"),
        0x0a => out.extend_from_slice(b"\\n"),
        0x0c => out.extend_from_slice(b"\\f"),
        0x0d => out.extend_from_slice(b"\\r"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]),
    }
}

/// The object up to the payload's text (up to and including `"payload":"`), and the
/// payload's encoding (`None`: no payload in the object).
fn json_head(m: &Msg, mode: PayloadMode, headers_only: bool, out: &mut Vec<u8>) -> Option<Enc> {
    fn s(out: &mut Vec<u8>, v: &str) {
        out.push(b'"');
        json_escape_into(v.as_bytes(), out);
        out.push(b'"');
    }
    // `{"account":…,"stream":…,"seq":`, escaped once per stream (per thread)
    JSON_PREFIX.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != m.account || c.1 != m.stream {
            let mut p = b"{\"account\":".to_vec();
            s(&mut p, m.account);
            p.extend_from_slice(b",\"stream\":");
            s(&mut p, m.stream);
            p.extend_from_slice(b",\"seq\":");
            *c = (m.account.to_string(), m.stream.to_string(), p);
        }
        out.extend_from_slice(&c.2);
    });
    uint(out, m.seq);
    out.extend_from_slice(b",\"subject\":");
    s(out, &lossy(m.subject));
    out.extend_from_slice(b",\"time\":\"");
    time_into(m.ts, out);
    out.extend_from_slice(b"\",\"ts\":");
    int(out, m.ts);
    out.extend_from_slice(b",\"headers\":{");
    if !m.headers.is_empty() {
        let text = lossy(m.headers);
        let mut first = true;
        let status = header_groups(&text, |k, vs| {
            if !first {
                out.push(b',');
            }
            first = false;
            s(out, k);
            out.extend_from_slice(b":[");
            for (j, v) in vs.enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                s(out, v);
            }
            out.push(b']');
        });
        out.push(b'}');
        if let Some(st) = status {
            out.extend_from_slice(b",\"status\":");
            s(out, st);
        }
    } else {
        out.push(b'}');
    }
    out.extend_from_slice(b",\"size\":");
    uint(out, m.size);
    out.extend_from_slice(b",\"payload_size\":");
    uint(out, m.payload.len() as u64);
    if headers_only || mode == PayloadMode::None {
        return None;
    }
    out.extend_from_slice(b",\"payload\":\"");
    Some(match mode {
        PayloadMode::Text if std::str::from_utf8(m.payload).is_ok() => Enc::Text,
        PayloadMode::Hex => Enc::Hex,
        _ => Enc::Base64,
    })
}

/// The object after the payload's text: its closing quote and encoding (when there is a
/// payload), `file`, `offset`, `deleted`, and the closing brace.
fn json_tail(m: &Msg, enc: Option<Enc>, out: &mut Vec<u8>) {
    if let Some(enc) = enc {
        out.extend_from_slice(b"\",\"payload_encoding\":\"");
        out.extend_from_slice(enc.name().as_bytes());
        out.push(b'"');
    }
    // `,"file":"…","offset":`, escaped once per block (per thread)
    JSON_FILE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != m.file {
            let mut p = b",\"file\":\"".to_vec();
            json_escape_into(m.file.as_bytes(), &mut p);
            p.extend_from_slice(b"\",\"offset\":");
            *c = (m.file.to_string(), p);
        }
        out.extend_from_slice(&c.1);
    });
    uint(out, m.offset);
    if let Some(g) = m.gone {
        out.extend_from_slice(b",\"deleted\":\"");
        json_escape_into(g.as_str().as_bytes(), out);
        out.push(b'"');
    }
    out.push(b'}');
}

/// A header block (as text, invalid UTF-8 replaced) parsed as [`Headers::parse`] does, without
/// building it: `f` gets each header name in order of first appearance with every value of
/// it; returns the status (`503 No Responders`) when the first line has one.
pub fn header_groups<'t>(
    text: &'t str,
    mut f: impl FnMut(&'t str, &mut dyn Iterator<Item = &'t str>),
) -> Option<&'t str> {
    let (first, mut rest) = split_line(text);
    let status = status_of(first);
    // each line parsed once (a few headers is the rule; a long block takes the slow way)
    let mut small: [(&str, &str); 16] = [("", ""); 16];
    let mut n = 0usize;
    let mut big: Vec<(&'t str, &'t str)> = Vec::new();
    while let Some(r) = rest {
        let (l, next) = split_line(r);
        rest = next;
        if let Some(p) = header_pair(l) {
            if n < small.len() {
                small[n] = p;
                n += 1;
            } else {
                if big.is_empty() {
                    big.extend_from_slice(&small);
                }
                big.push(p);
            }
        }
    }
    let pairs: &[(&'t str, &'t str)] = if big.is_empty() { &small[..n] } else { &big };
    for (i, &(k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|&(k2, _)| k2 == k) {
            continue; // given with its first occurrence
        }
        let mut vs = pairs[i..]
            .iter()
            .filter(|&&(k2, _)| k2 == k)
            .map(|&(_, v)| v);
        f(k, &mut vs);
    }
    status
}

/// The text up to the first `\n` and what follows it (`None` without one): `str::split('\n')`
/// one line at a time.
#[inline]
fn split_line(text: &str) -> (&str, Option<&str>) {
    match find_byte(text.as_bytes(), b'\n') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    }
}

/// A header line's name and value (both trimmed), `None` without a `:`.
#[inline]
fn header_pair(l: &str) -> Option<(&str, &str)> {
    let b = l.as_bytes();
    let mut n = b.len();
    while n > 0 && b[n - 1] == b'\r' {
        n -= 1;
    }
    let l = &l[..n]; // (`trim_end_matches('\r')`: ASCII, so a char boundary)
    let i = find_byte(l.as_bytes(), b':')?;
    Some((trim(&l[..i]), trim(&l[i + 1..])))
}

/// Where the first `x` is in `b`, looked for eight bytes at a time (header lines are split
/// on every message dumped).
#[inline]
fn find_byte(b: &[u8], x: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pat = ONES * u64::from(x);
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().unwrap_or_default()) ^ pat;
        // the lowest flagged byte is the first zero byte of `v` (a borrow only flags
        // bytes above a zero one)
        let z = v.wrapping_sub(ONES) & !v & HIGH;
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == x)
        .map(|i| at + i)
}

/// `str::trim`, quicker on ASCII ends (the rule in headers).
#[inline]
fn trim(s: &str) -> &str {
    // char::is_whitespace on ASCII: space and \t \n \x0b \x0c \r
    let ws = |b: &u8| *b == b' ' || (0x09..=0x0d).contains(b);
    let b = s.as_bytes();
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    let t = &s[start..end];
    match t.as_bytes() {
        [f, .., l] if *f >= 0x80 || *l >= 0x80 => t.trim(),
        [f] if *f >= 0x80 => t.trim(),
        _ => t,
    }
}

/// The status of a header block's first line (after `NATS/1.0`), when it has one.
#[inline]
fn status_of(first: &str) -> Option<&str> {
    let l = first.trim_end_matches('\r');
    Some(trim(l.strip_prefix("NATS/1.0").unwrap_or(""))).filter(|st| !st.is_empty())
}

/// The status of a header block (the first line after `NATS/1.0`), when it has one.
pub fn header_status(text: &str) -> Option<&str> {
    status_of(split_line(text).0)
}

/// Bytes as text, invalid UTF-8 replaced (`String::from_utf8_lossy`, quicker on valid text).
#[inline]
pub fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// Decimal digits of `n` appended to `out`.
#[inline]
pub fn push_uint(out: &mut Vec<u8>, n: u64) {
    uint(out, n)
}

/// Decimal digits of a signed `n`.
fn int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    uint(out, n.unsigned_abs());
}

/// Both decimal digits of 0..=99.
static DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Decimal digits of `n` (two at a time; appended as a fixed 20 bytes, then cut: no call
/// to memcpy for a handful of bytes).
#[inline]
fn uint(out: &mut Vec<u8>, mut n: u64) {
    let mut b = [0u8; 40];
    let mut i = 20;
    while n >= 100 {
        i -= 2;
        b[i..i + 2].copy_from_slice(&DIGIT_PAIRS[(n % 100) as usize]);
        n /= 100;
    }
    if n >= 10 {
        i -= 2;
        b[i..i + 2].copy_from_slice(&DIGIT_PAIRS[n as usize]);
    } else {
        i -= 1;
        b[i] = b'0' + n as u8;
    }
    let len = out.len();
    let digits: &[u8; 20] = b[i..i + 20].try_into().unwrap_or(&[0; 20]);
    out.extend_from_slice(digits);
    out.truncate(len + 20 - i);
}

thread_local! {
    /// The escaped start of a JSON message object of the last stream rendered: account,
    /// stream, its bytes.
    static JSON_PREFIX: std::cell::RefCell<(String, String, Vec<u8>)> =
        const { std::cell::RefCell::new((String::new(), String::new(), Vec::new())) };
    /// The escaped `file` member of the last block rendered: file, its bytes.
    static JSON_FILE: std::cell::RefCell<(String, Vec<u8>)> =
        const { std::cell::RefCell::new((String::new(), Vec::new())) };
    /// The last second formatted and its `YYYY-MM-DDTHH:MM:SS.` (messages come in time order,
    /// many within a second).
    static SECOND: std::cell::RefCell<(i64, Vec<u8>)> = const { std::cell::RefCell::new((i64::MIN, Vec::new())) };
}

/// [`crate::base::time::rfc3339_full`] appended to `out`.
pub fn time_into(ns: i64, out: &mut Vec<u8>) {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u64;
    SECOND.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let full = crate::base::time::rfc3339_full(secs * 1_000_000_000);
            c.1.clear();
            c.1.extend_from_slice(&full.as_bytes()[..full.len() - 10]); // up to the '.'
            c.0 = secs;
        }
        out.extend_from_slice(&c.1);
    });
    let mut b = [b'Z'; 10];
    let mut n = nanos;
    for k in (0..4).rev() {
        b[1 + 2 * k..3 + 2 * k].copy_from_slice(&DIGIT_PAIRS[(n % 100) as usize]);
        n /= 100;
    }
    b[0] = b'0' + (n % 10) as u8;
    out.extend_from_slice(&b);
}

/// Frames the records of a plain block and renders each message as `dump --json` does
/// (text payloads, base64 when not UTF-8) into `out`, back to back, checking nothing and
/// classifying nothing: the floor of dump's walk over one block, for the benchmark
/// (`bench/dumpfloor.rs`). Returns the messages rendered; stops at the first record that does
/// not frame.
pub fn render_block_json(stream: &str, file: &str, plain: &[u8], out: &mut Vec<u8>) -> u64 {
    let mut n = 0u64;
    for r in crate::filestore::block::Records::new(plain) {
        let Ok(r) = r else { break };
        if r.kind() != crate::filestore::block::RecordKind::Message {
            continue;
        }
        let m = Msg::of_record(&r, "$G", stream, file, None);
        write_message_json(&m, PayloadMode::Text, false, out);
        out.push(b'\n');
        n += 1;
    }
    n
}

/// One NDJSON line for a finding: `{"finding": {severity, kind, account, stream, file,
/// offset, seq, message}}` (the problem object of `verify --json`).
pub fn finding_json(p: &crate::base::problem::Problem) -> Value {
    json!({ "finding": p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_display() {
        let mut v = vec![1u64, 9, 10, 99, 100, 101, 999, 1000, 123_456_789, u64::MAX];
        v.extend((0..64).map(|k| 1u64 << k));
        v.extend((0..64).map(|k| (1u64 << k) - 1));
        v.extend((0..20).map(|k| 10u64.pow(k)));
        for n in v.into_iter().chain(0..1000) {
            let mut out = b"x".to_vec();
            uint(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn find_byte_is_position() {
        let hay: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        for n in 0..hay.len() {
            for x in [0u8, 1, b'\n', b':', 0x80, 0xff, hay[n / 2]] {
                assert_eq!(
                    find_byte(&hay[..n], x),
                    hay[..n].iter().position(|&c| c == x),
                    "{n} {x}"
                );
            }
        }
        assert_eq!(
            find_byte(b"\x01\x00:\x01\x01\x01\x01\x01\x01:", b':'),
            Some(2)
        );
    }

    #[test]
    fn escaping_is_serde_jsons() {
        let all: Vec<u8> = (0u8..0x80).collect();
        let text = format!("{}é€😀 \\\"", String::from_utf8(all).unwrap());
        let mut out = vec![b'"'];
        json_escape_into(text.as_bytes(), &mut out);
        out.push(b'"');
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&text).unwrap()
        );
        // a big payload streamed in pieces (base64 across piece boundaries, escapes, hex)
        let big: Vec<u8> = (0..PIECE * 2 + 7).map(|i| (i * 7 % 251) as u8).collect();
        let txt: Vec<u8> = (0..PIECE * 2 + 5).map(|i| b"a\"\n\x01"[i % 4]).collect();
        for p in [&big[..], &txt[..]] {
            for mode in [PayloadMode::Text, PayloadMode::Base64, PayloadMode::Hex] {
                let m = Msg {
                    account: "$G",
                    stream: "S",
                    seq: 1,
                    ts: -5,
                    subject: b"a",
                    headers: b"",
                    payload: p,
                    file: "f",
                    offset: 0,
                    size: 1,
                    gone: None,
                };
                let mut out = Vec::new();
                stream_message_json(&m, mode, false, &mut out).unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    message_json(&m, mode, false).to_string()
                );
            }
        }
    }

    #[test]
    fn message_objects() {
        let m = Msg {
            account: "$G",
            stream: "S",
            seq: 7,
            ts: 1_000_000_001,
            subject: b"a.b",
            headers: b"NATS/1.0\r\nX: 1\r\nX: 2\r\n\r\n",
            payload: b"\xff\x00",
            file: "msgs/1.blk",
            offset: 12,
            size: 60,
            gone: None,
        };
        let v = message_json(&m, PayloadMode::Text, false);
        assert_eq!(v["seq"], 7);
        assert_eq!(v["time"], "1970-01-01T00:00:01.000000001Z");
        assert_eq!(v["headers"]["X"], json!(["1", "2"]));
        assert_eq!(v["payload"], "/wA=");
        assert_eq!(v["payload_encoding"], "base64");
        assert!(v.get("deleted").is_none());
        let v = message_json(&m, PayloadMode::Hex, false);
        assert_eq!(v["payload"], "ff00");
        let v = message_json(&m, PayloadMode::Text, true);
        assert!(v.get("payload").is_none());
        assert_eq!(v["payload_size"], 2);
        for ns in [
            0i64,
            1,
            999_999_999,
            1_764_496_800_123_456_789,
            1_796_044_118_165_655_204,
            -1,
            -1_000_000_001,
        ] {
            let mut o = Vec::new();
            time_into(ns, &mut o);
            assert_eq!(
                String::from_utf8(o).unwrap(),
                crate::base::time::rfc3339_full(ns)
            );
        }
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut o = Vec::new();
            uint(&mut o, n);
            assert_eq!(String::from_utf8(o).unwrap(), n.to_string());
        }
        // the fast writer gives the same objects (also past 16 header lines)
        let mut many = b"NATS/1.0\r\n".to_vec();
        for i in 0..20 {
            many.extend_from_slice(format!("H{}: v{i}\r\n", i % 7).as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        for (mode, ho) in [
            (PayloadMode::Text, false),
            (PayloadMode::Base64, false),
            (PayloadMode::Hex, false),
            (PayloadMode::None, false),
            (PayloadMode::Text, true),
        ] {
            for (payload, headers) in [
                (&b"\xff\x00"[..], m.headers),
                (
                    b"text \"quoted\"\n",
                    &b"NATS/1.0 503 No Responders\r\nA: 1\r\nB:2\r\nA:  3 \r\n\r\n"[..],
                ),
                (b"", b""),
                (b"x", b"NATS/1.0\r\nbad line\r\nK: \xff\r\n\r\n"),
                (b"y", &many[..]),
                (
                    b"z",
                    "NATS/1.0 \u{a0}404 x\u{2003}\r\n\u{a0}K\u{a0}: \u{b}v é\u{85}\r\r\nL:\u{3000}\r\n:\r\nK:w\r\n\r\n"
                        .as_bytes(),
                ),
                ("t\x0b\x1f\\x\"y\u{7f}\u{e9}".as_bytes(), b"NATS/1.0\n\nno\ncolon"),
            ] {
                for gone in [None, Some(super::super::Gone::Lost)] {
                    let m = Msg {
                        payload,
                        headers,
                        gone,
                        ..m
                    };
                    let mut out = Vec::new();
                    write_message_json(&m, mode, ho, &mut out);
                    let mut streamed = Vec::new();
                    stream_message_json(&m, mode, ho, &mut streamed).unwrap();
                    assert_eq!(streamed, out, "streamed in pieces: the same bytes");
                    let fast: Value = serde_json::from_slice(&out).unwrap();
                    assert_eq!(fast, message_json(&m, mode, ho));
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        message_json(&m, mode, ho).to_string(),
                        "same key order"
                    );
                }
            }
        }
    }
}
