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
    use std::io::Write;
    fn s(out: &mut Vec<u8>, v: &str) {
        let _ = serde_json::to_writer(&mut *out, v);
    }
    out.extend_from_slice(b"{\"account\":");
    s(out, m.account);
    out.extend_from_slice(b",\"stream\":");
    s(out, m.stream);
    let _ = write!(out, ",\"seq\":{},\"subject\":", m.seq);
    s(out, &String::from_utf8_lossy(m.subject));
    let _ = write!(
        out,
        ",\"time\":\"{}\",\"ts\":{},\"headers\":{{",
        crate::base::time::rfc3339_full(m.ts),
        m.ts
    );
    let h = if m.headers.is_empty() {
        Headers::default()
    } else {
        Headers::parse(m.headers)
    };
    for (i, (k, vs)) in h.values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        s(out, k);
        out.extend_from_slice(b":[");
        for (j, v) in vs.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            s(out, v);
        }
        out.push(b']');
    }
    out.push(b'}');
    if let Some(st) = &h.status {
        out.extend_from_slice(b",\"status\":");
        s(out, st);
    }
    let _ = write!(
        out,
        ",\"size\":{},\"payload_size\":{}",
        m.size,
        m.payload.len()
    );
    if !headers_only && mode != PayloadMode::None {
        out.extend_from_slice(b",\"payload\":");
        let enc = match (mode, std::str::from_utf8(m.payload)) {
            (PayloadMode::Text, Ok(t)) => {
                s(out, t);
                "text"
            }
            (PayloadMode::Hex, _) => {
                out.push(b'"');
                super::hex_into(m.payload, out);
                out.push(b'"');
                "hex"
            }
            _ => {
                out.push(b'"');
                super::base64_into(m.payload, false, out);
                out.push(b'"');
                "base64"
            }
        };
        let _ = write!(out, ",\"payload_encoding\":\"{enc}\"");
    }
    out.extend_from_slice(b",\"file\":");
    s(out, m.file);
    let _ = write!(out, ",\"offset\":{}", m.offset);
    if let Some(g) = m.gone {
        let _ = write!(out, ",\"deleted\":\"{}\"", g.as_str());
    }
    out.push(b'}');
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
        // the fast writer gives the same objects
        for (mode, ho) in [
            (PayloadMode::Text, false),
            (PayloadMode::Base64, false),
            (PayloadMode::Hex, false),
            (PayloadMode::None, false),
            (PayloadMode::Text, true),
        ] {
            for payload in [&b"\xff\x00"[..], b"text \"quoted\"\n", b""] {
                for gone in [None, Some(super::super::Gone::Lost)] {
                    let m = Msg { payload, gone, ..m };
                    let mut out = Vec::new();
                    write_message_json(&m, mode, ho, &mut out);
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
