//! A small JSON Schema (draft 2020-12) validator for the subset `schema/jetdir.schema.json`
//! uses: `type`, `enum`, `const`, `properties`, `required`, `additionalProperties`, `items`,
//! `minItems`, `maxItems`, `minimum`, `$ref` (to `#/$defs/...`), `allOf`, `anyOf`, `oneOf`,
//! `if`/`then`/`else`, and `format: date-time` (RFC 3339). Annotations (`description`,
//! `title`, `$schema`, `$id`, `$defs`) are skipped. [`check_keywords`] refuses a schema that
//! uses any other keyword, so nothing in it is silently ignored.
#![allow(dead_code)]
use serde_json::Value;

const KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "$ref",
    "allOf",
    "anyOf",
    "oneOf",
    "if",
    "then",
    "else",
    "format",
    "description",
    "title",
    "$schema",
    "$id",
    "$defs",
];

/// Every keyword of `schema` (recursively) is one this validator implements or an annotation.
pub fn check_keywords(schema: &Value, at: &str, bad: &mut Vec<String>) {
    let Some(o) = schema.as_object() else {
        if !schema.is_boolean() {
            bad.push(format!("{at}: a schema must be an object or a boolean"));
        }
        return;
    };
    for (k, v) in o {
        if !KEYWORDS.contains(&k.as_str()) {
            bad.push(format!("{at}: unsupported keyword {k}"));
            continue;
        }
        let here = format!("{at}/{k}");
        match k.as_str() {
            "properties" | "$defs" => {
                for (n, s) in v.as_object().into_iter().flatten() {
                    check_keywords(s, &format!("{here}/{n}"), bad);
                }
            }
            "allOf" | "anyOf" | "oneOf" => {
                for (i, s) in v.as_array().into_iter().flatten().enumerate() {
                    check_keywords(s, &format!("{here}/{i}"), bad);
                }
            }
            "items" | "additionalProperties" | "if" | "then" | "else" => {
                check_keywords(v, &here, bad)
            }
            "format" if v != "date-time" => bad.push(format!("{here}: unsupported format {v}")),
            _ => {}
        }
    }
}

/// The errors of `doc` against `schema` (empty: valid). `root` resolves `$ref`s.
pub fn validate(root: &Value, schema: &Value, doc: &Value, at: &str, errs: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errs.push(format!("{at}: not allowed"));
        }
        return;
    };
    if let Some(r) = s.get("$ref").and_then(|r| r.as_str()) {
        let name = r.strip_prefix("#/$defs/").expect("only #/$defs/ refs");
        let target = root["$defs"]
            .get(name)
            .unwrap_or_else(|| panic!("no $defs/{name}"));
        validate(root, target, doc, at, errs);
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| is_type(doc, t)) {
            errs.push(format!("{at}: {doc} is not of type {t}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(|e| e.as_array()) {
        if !e.contains(doc) {
            errs.push(format!(
                "{at}: {doc} is not one of {}",
                Value::Array(e.clone())
            ));
        }
    }
    if let Some(c) = s.get("const") {
        if c != doc {
            errs.push(format!("{at}: {doc} is not {c}"));
        }
    }
    if let (Some(f), Some(x)) = (s.get("format"), doc.as_str()) {
        if f == "date-time" && !is_rfc3339(x) {
            errs.push(format!("{at}: {x:?} is not an RFC 3339 date-time"));
        }
    }
    if let (Some(m), Some(x)) = (s.get("minimum").and_then(|m| m.as_f64()), doc.as_f64()) {
        if x < m {
            errs.push(format!("{at}: {x} is below {m}"));
        }
    }
    if let Some(o) = doc.as_object() {
        for r in s
            .get("required")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap_or_default();
            if !o.contains_key(r) {
                errs.push(format!("{at}: required field {r:?} is missing"));
            }
        }
        let props = s.get("properties").and_then(|p| p.as_object());
        for (k, v) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(root, ps, v, &format!("{at}/{k}"), errs),
                None => {
                    if let Some(ap) = s.get("additionalProperties") {
                        validate(root, ap, v, &format!("{at}/{k}"), errs);
                    }
                }
            }
        }
    }
    if let Some(a) = doc.as_array() {
        if let Some(n) = s.get("minItems").and_then(|n| n.as_u64()) {
            if (a.len() as u64) < n {
                errs.push(format!("{at}: fewer than {n} items"));
            }
        }
        if let Some(n) = s.get("maxItems").and_then(|n| n.as_u64()) {
            if (a.len() as u64) > n {
                errs.push(format!("{at}: more than {n} items"));
            }
        }
        if let Some(items) = s.get("items") {
            for (i, v) in a.iter().enumerate() {
                validate(root, items, v, &format!("{at}/{i}"), errs);
            }
        }
    }
    for sub in s
        .get("allOf")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
    {
        validate(root, sub, doc, at, errs);
    }
    if let Some(any) = s.get("anyOf").and_then(|a| a.as_array()) {
        if !any.iter().any(|sub| valid(root, sub, doc)) {
            errs.push(format!("{at}: matches none of anyOf"));
        }
    }
    if let Some(one) = s.get("oneOf").and_then(|a| a.as_array()) {
        let n = one.iter().filter(|sub| valid(root, sub, doc)).count();
        if n != 1 {
            errs.push(format!("{at}: matches {n} of oneOf, not exactly 1"));
        }
    }
    if let Some(cond) = s.get("if") {
        let branch = if valid(root, cond, doc) {
            s.get("then")
        } else {
            s.get("else")
        };
        if let Some(b) = branch {
            validate(root, b, doc, at, errs);
        }
    }
}

fn valid(root: &Value, schema: &Value, doc: &Value) -> bool {
    let mut e = Vec::new();
    validate(root, schema, doc, "", &mut e);
    e.is_empty()
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => false,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z'] | [b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}
