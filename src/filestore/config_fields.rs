//! Which stream / consumer config fields each nats-server release knows, and what a release does
//! with a config it does not fully understand (an unknown key, a required API level above its
//! own).
//!
//! # Facts, with where they were read (github.com/nats-io/nats-server)
//!
//! * The server loads a stream's `meta.inf` as `FileStreamInfo` (`server/filestore.go`: a
//!   `Created time.Time` field without JSON tag, then `StreamConfig` embedded) and a consumer's as
//!   `FileConsumerInfo` (`Created`, `Name`, then `ConsumerConfig` embedded). `StreamConfig` and
//!   its nested types (`Placement`, `StreamSource`, `ExternalStream`, `SubjectTransformConfig`,
//!   `RePublish`, `StreamConsumerLimits`, `StreamConsumerSource`) are in `server/stream.go`,
//!   `ConsumerConfig` in `server/consumer.go`. Go's `encoding/json` matches keys to fields
//!   without regard to case, so `"created"` and `"Subjects"` are known keys; `metadata` is a
//!   `map[string]string` (any key), `time.Time`/`time.Duration`/the policy enums are leaves.
//! * v2.9.10, v2.10.26, v2.11.6 (`server/jetstream.go`, stream and consumer recovery): meta.inf
//!   is decoded with plain `json.Unmarshal`: an unknown key is dropped without a word, and the
//!   server writes the config back without it on the next update.
//! * Since v2.11.9 (commit daf774f39 "Offline assets support"; present in v2.11.11, v2.12.0,
//!   v2.12.8, v2.14.5, main at 2.15.0-dev) `server/jetstream.go` decodes meta.inf with
//!   `decoder.DisallowUnknownFields()`. On an error it decodes again leniently and, when
//!   `supportsRequiredApiLevel(cfg.Metadata)` is false or the strict decode failed, logs
//!   `Detected unsupported stream '<acc> > <name>': unsupported - ...` or
//!   `Error unmarshalling stream metafile "<path>": json: unknown field "<key>"`, and in
//!   single-server mode registers the stream closed with that `offlineReason` (its consumers
//!   are recovered onto the closed stream, none runs); clustered, it does not load it. A
//!   consumer meta.inf failing the same way is registered offline and, single-server, its
//!   stream is stopped (`Stopping unsupported stream`, reason `stopped - unsupported consumer`).
//!   Every v2.11.x tag from v2.11.9 on and every v2.12.x / v2.14.x tag does this; no v2.10.x tag
//!   does (checked up to v2.10.29).
//! * API level (`server/jetstream_versioning.go`, from v2.11.0): `JSApiLevel` is 1 in every
//!   v2.11.x, 2 in v2.12.0–v2.12.4, 3 from v2.12.5 (v2.12.8), 4 in v2.14.x, 5 on main (2.15).
//!   `getRequiredApiLevel` reads `metadata["_nats.req.level"]` (absent or "" = no
//!   requirement); `supportsRequiredApiLevel` is `strconv.Atoi(level)` succeeding and being
//!   `<= JSApiLevel`, so a level that is not a decimal integer is unsupported. `_nats.ver` and
//!   `_nats.level` are dynamic metadata: stripped before meta.inf is written
//!   (`setStaticStreamMetadata`), present in API responses, hence in a backup's backup.json.
//! * Field sets: extracted from the struct tags at every v2.9.x–v2.14.x tag and main. A field
//!   appears or disappears only at a minor line, except `discard_new_per_subject` (from
//!   v2.9.1); `template_owner` is gone from v2.14.0. The mirror holds no v2.14.6 / v2.15.1 tag:
//!   v2.14.5 and main (2.15.0-dev) were used, and every JSON tag of those tables was found in
//!   the v2.14.6 and v2.15.1 binaries (`strings`); 2.15.1's binary has no stream/consumer tag
//!   beyond them that the tests found.
//! * The restore API request (`$JS.API.STREAM.RESTORE`, the config from backup.json) is
//!   decoded by `unmarshalRequest` (`server/jetstream_api.go`): strict by default from v2.12.0
//!   (`NoJetStreamStrict`), opt-in `JetStreamStrict` in v2.11.x, lenient before. The restored
//!   stream's meta.inf carries the backup's config, so its load follows the rules above.
use crate::base::problem::{Kind, Location, Problem};
use crate::base::release::Release;
use serde_json::{Map, Value};

type V = (u32, u32, u32);
const ALWAYS: V = (0, 0, 0);

/// What a key's value holds, for descending into it.
#[derive(Clone, Copy)]
enum Shape {
    /// Anything: scalars, enums, durations, times, and `metadata` (a map with any key).
    Leaf,
    /// An object with these fields (a Go struct or pointer to one).
    Obj(&'static [Field]),
    /// An array of such objects.
    List(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    /// First release that knows the field.
    since: V,
    /// First release that no longer knows it.
    until: Option<V>,
    shape: Shape,
}

const fn f(name: &'static str, since: V) -> Field {
    Field {
        name,
        since,
        until: None,
        shape: Shape::Leaf,
    }
}
const fn obj(name: &'static str, since: V, fields: &'static [Field]) -> Field {
    Field {
        name,
        since,
        until: None,
        shape: Shape::Obj(fields),
    }
}
const fn list(name: &'static str, since: V, fields: &'static [Field]) -> Field {
    Field {
        name,
        since,
        until: None,
        shape: Shape::List(fields),
    }
}

const V2_9_1: V = (2, 9, 1);
const V2_10: V = (2, 10, 0);
const V2_11: V = (2, 11, 0);
const V2_12: V = (2, 12, 0);
const V2_14: V = (2, 14, 0);

const PLACEMENT: &[Field] = &[
    f("cluster", ALWAYS),
    f("tags", ALWAYS),
    f("preferred", V2_11),
];
const TRANSFORM: &[Field] = &[f("src", ALWAYS), f("dest", ALWAYS)];
const EXTERNAL: &[Field] = &[f("api", ALWAYS), f("deliver", ALWAYS)];
const SOURCE_CONSUMER: &[Field] = &[f("name", V2_14), f("deliver_subject", V2_14)];
const SOURCE: &[Field] = &[
    f("name", ALWAYS),
    f("opt_start_seq", ALWAYS),
    f("opt_start_time", ALWAYS),
    f("filter_subject", ALWAYS),
    list("subject_transforms", V2_10, TRANSFORM),
    obj("external", ALWAYS, EXTERNAL),
    obj("consumer", V2_14, SOURCE_CONSUMER),
];
const REPUBLISH: &[Field] = &[
    f("src", ALWAYS),
    f("dest", ALWAYS),
    f("headers_only", ALWAYS),
];
const CONSUMER_LIMITS: &[Field] = &[f("inactive_threshold", V2_10), f("max_ack_pending", V2_10)];

/// `StreamConfig` (the API's and backup.json's config).
const STREAM_CONFIG: &[Field] = &[
    f("name", ALWAYS),
    f("description", ALWAYS),
    f("subjects", ALWAYS),
    f("retention", ALWAYS),
    f("max_consumers", ALWAYS),
    f("max_msgs", ALWAYS),
    f("max_bytes", ALWAYS),
    f("max_age", ALWAYS),
    f("max_msgs_per_subject", ALWAYS),
    f("max_msg_size", ALWAYS),
    f("discard", ALWAYS),
    f("storage", ALWAYS),
    f("num_replicas", ALWAYS),
    f("no_ack", ALWAYS),
    Field {
        name: "template_owner",
        since: ALWAYS,
        until: Some(V2_14),
        shape: Shape::Leaf,
    },
    f("duplicate_window", ALWAYS),
    obj("placement", ALWAYS, PLACEMENT),
    obj("mirror", ALWAYS, SOURCE),
    list("sources", ALWAYS, SOURCE),
    f("compression", V2_10),
    f("first_seq", V2_10),
    obj("subject_transform", V2_10, TRANSFORM),
    obj("republish", ALWAYS, REPUBLISH),
    f("allow_direct", ALWAYS),
    f("mirror_direct", ALWAYS),
    f("discard_new_per_subject", V2_9_1),
    f("sealed", ALWAYS),
    f("deny_delete", ALWAYS),
    f("deny_purge", ALWAYS),
    f("allow_rollup_hdrs", ALWAYS),
    obj("consumer_limits", V2_10, CONSUMER_LIMITS),
    f("allow_msg_ttl", V2_11),
    f("subject_delete_marker_ttl", V2_11),
    f("allow_msg_counter", V2_12),
    f("allow_atomic", V2_12),
    f("allow_msg_schedules", V2_12),
    f("persist_mode", V2_12),
    f("allow_batched", V2_14),
    f("metadata", V2_10),
];

/// `ConsumerConfig`.
const CONSUMER_CONFIG: &[Field] = &[
    f("durable_name", ALWAYS),
    f("name", ALWAYS),
    f("description", ALWAYS),
    f("deliver_policy", ALWAYS),
    f("opt_start_seq", ALWAYS),
    f("opt_start_time", ALWAYS),
    f("ack_policy", ALWAYS),
    f("ack_wait", ALWAYS),
    f("max_deliver", ALWAYS),
    f("backoff", ALWAYS),
    f("filter_subject", ALWAYS),
    f("filter_subjects", V2_10),
    f("replay_policy", ALWAYS),
    f("rate_limit_bps", ALWAYS),
    f("sample_freq", ALWAYS),
    f("max_waiting", ALWAYS),
    f("max_ack_pending", ALWAYS),
    f("idle_heartbeat", ALWAYS),
    f("flow_control", ALWAYS),
    f("headers_only", ALWAYS),
    f("max_batch", ALWAYS),
    f("max_expires", ALWAYS),
    f("max_bytes", ALWAYS),
    f("deliver_subject", ALWAYS),
    f("deliver_group", ALWAYS),
    f("inactive_threshold", ALWAYS),
    f("num_replicas", ALWAYS),
    f("mem_storage", ALWAYS),
    f("direct", ALWAYS),
    f("sourcing", V2_14),
    f("metadata", V2_10),
    f("pause_until", V2_11),
    f("priority_groups", V2_11),
    f("priority_policy", V2_11),
    f("priority_timeout", V2_11),
];

/// The fields of the `FileStreamInfo` / `FileConsumerInfo` wrappers around the embedded config.
const FILE_STREAM_EXTRA: &[Field] = &[f("Created", ALWAYS)];
const FILE_CONSUMER_EXTRA: &[Field] = &[f("Created", ALWAYS), f("Name", ALWAYS)];

/// Which document a config JSON is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigDoc {
    /// A stream dir's meta.inf (`FileStreamInfo`).
    StreamMeta,
    /// The `config` of a backup.json (`StreamConfig`, as the restore request carries it).
    StreamConfig,
    /// A consumer dir's meta.inf (`FileConsumerInfo`).
    ConsumerMeta,
}

impl ConfigDoc {
    fn tables(self) -> [&'static [Field]; 2] {
        match self {
            ConfigDoc::StreamMeta => [FILE_STREAM_EXTRA, STREAM_CONFIG],
            ConfigDoc::StreamConfig => [&[], STREAM_CONFIG],
            ConfigDoc::ConsumerMeta => [FILE_CONSUMER_EXTRA, CONSUMER_CONFIG],
        }
    }
    fn asset(self) -> &'static str {
        match self {
            ConfigDoc::StreamMeta | ConfigDoc::StreamConfig => "stream",
            ConfigDoc::ConsumerMeta => "consumer",
        }
    }
}

/// The newest release whose field table jetdir has; also the release assumed when neither the
/// caller nor the config names one.
pub fn newest_known() -> Release {
    Release::new(2, 15, 1)
}

/// What a release does at load with a config it does not fully understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadRules {
    /// Unknown keys and an unsupported required API level make the asset offline (strict
    /// decode, from 2.11.9); otherwise unknown keys are dropped and the level is not checked.
    pub offline_on_unknown: bool,
    /// The release's `JSApiLevel` (0 before 2.11).
    pub api_level: u32,
}

/// The load rules of `r` (pre-releases count as their release).
pub fn load_rules(r: &Release) -> LoadRules {
    let v = (r.major, r.minor, r.patch);
    let api_level = match v {
        v if v < (2, 11, 0) => 0,
        v if v < (2, 12, 0) => 1,
        v if v < (2, 12, 5) => 2,
        v if v < (2, 13, 0) => 3,
        v if v < (2, 15, 0) => 4,
        _ => 5,
    };
    LoadRules {
        offline_on_unknown: v >= (2, 11, 9),
        api_level,
    }
}

/// Where the release a config is checked against came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseFrom {
    /// The caller named it (`--server-version`).
    Given,
    /// The config's `metadata._nats.ver` (API responses carry it; meta.inf normally does not).
    Metadata,
    /// Nothing named one: [`newest_known`].
    Assumed,
}

/// The release to check `json` against: `given`, else the config's `metadata._nats.ver`,
/// else [`newest_known`].
pub fn target_release(
    given: Option<&Release>,
    json: &Map<String, Value>,
) -> (Release, ReleaseFrom) {
    if let Some(r) = given {
        return (r.clone(), ReleaseFrom::Given);
    }
    let recorded = json
        .get("metadata")
        .and_then(Value::as_object)
        .and_then(|m| m.get("_nats.ver"))
        .and_then(Value::as_str)
        .and_then(|s| Release::parse(s).ok());
    match recorded {
        Some(r) => (r, ReleaseFrom::Metadata),
        None => (newest_known(), ReleaseFrom::Assumed),
    }
}

/// A key the release does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// The key as written.
    pub key: String,
    /// Its JSON path from the config's root: `rubjects`, `sources[0].externl`.
    pub path: String,
    /// Its value is null, false, 0, "", [] or {}: dropping it changes nothing.
    pub zero: bool,
}

/// `metadata._nats.req.level` against the release's API level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLevelCheck {
    /// The required level as written.
    pub required: String,
    /// The release's `JSApiLevel`.
    pub server_level: u32,
    /// The release supports it (the server's rule: a decimal integer `<=` its level).
    pub supported: bool,
}

/// The verdict on one config JSON for one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigCheck {
    /// Which document was checked.
    pub doc: ConfigDoc,
    /// The release it was checked against.
    pub release: Release,
    /// Where that release came from.
    pub release_from: ReleaseFrom,
    /// What that release does at load.
    pub rules: LoadRules,
    /// Unknown keys, in document order (the server's error names the first).
    pub unknown: Vec<UnknownField>,
    /// Present when the config sets a non-empty `_nats.req.level`.
    pub api_level: Option<ApiLevelCheck>,
}

impl ConfigCheck {
    /// The release marks the asset offline (or does not load it) because of this config.
    pub fn offline(&self) -> bool {
        self.rules.offline_on_unknown
            && (!self.unknown.is_empty() || self.api_level.as_ref().is_some_and(|a| !a.supported))
    }
}

/// Check a config already parsed as a JSON object against `release` (`None`: see
/// [`target_release`]).
pub fn check_config(
    json: &Map<String, Value>,
    doc: ConfigDoc,
    release: Option<&Release>,
) -> ConfigCheck {
    let (release, release_from) = target_release(release, json);
    let rules = load_rules(&release);
    let v = (release.major, release.minor, release.patch);
    let mut unknown = Vec::new();
    walk(json, &doc.tables(), v, "", &mut unknown);
    let api_level = required_level(json).map(|required| ApiLevelCheck {
        supported: go_atoi(&required).is_some_and(|l| l <= i64::from(rules.api_level)),
        required,
        server_level: rules.api_level,
    });
    ConfigCheck {
        doc,
        release,
        release_from,
        rules,
        unknown,
        api_level,
    }
}

/// A value of a known field that `release` cannot decode, so that decoding the whole config
/// fails (`None`: every value decodes; before the release knows the field, it is an unknown
/// field instead, dropped or refused by [`check_config`]). A consumer's `priority_policy`:
/// 2.11 knows `none`, `overflow` and `pinned_client`, 2.12 adds `prioritized`; 2.11.1, 2.11.6
/// and 2.11.11 do not load a consumer whose meta.inf says `prioritized` ("Error unmarshalling
/// consumer metafile ...: unknown priority policy"), and load its stream without it.
pub fn undecodable_value(
    json: &Map<String, Value>,
    doc: ConfigDoc,
    release: Option<&Release>,
) -> Option<String> {
    if doc != ConfigDoc::ConsumerMeta {
        return None;
    }
    let (release, _) = target_release(release, json);
    let v = (release.major, release.minor, release.patch);
    // (past the newest release jetdir knows, a value it has not seen may be a new one)
    if v < V2_11 || release.base() > newest_known() {
        return None;
    }
    let (key, value) = json
        .iter()
        .find(|(k, _)| go_fold_eq("priority_policy", k))?;
    let known: &[&str] = if v < V2_12 {
        &["none", "overflow", "pinned_client"]
    } else {
        &["none", "overflow", "pinned_client", "prioritized"]
    };
    // (only a string is judged: what a newer release writes; other JSON types are left alone)
    match value {
        Value::String(s) if !known.contains(&s.as_str()) => Some(format!(
            "nats-server {release} cannot decode \"{key}\": {value} (unknown priority policy), so the whole file does not decode"
        )),
        _ => None,
    }
}

/// Why config bytes could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigBytesError {
    /// The bytes are not JSON (the parser's message).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("JSON is not an object")]
    NotObject,
}

/// Check config bytes (a meta.inf, or a backup.json's config).
pub fn check_bytes(
    raw: &[u8],
    doc: ConfigDoc,
    release: Option<&Release>,
) -> Result<ConfigCheck, ConfigBytesError> {
    let v: Value =
        serde_json::from_slice(raw).map_err(|e| ConfigBytesError::NotJson(e.to_string()))?;
    match v {
        Value::Object(m) => Ok(check_config(&m, doc, release)),
        _ => Err(ConfigBytesError::NotObject),
    }
}

fn known(tables: &[&'static [Field]], key: &str, v: V) -> Option<Field> {
    tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|fd| fd.since <= v && fd.until.is_none_or(|u| v < u) && go_fold_eq(fd.name, key))
        .copied()
}

fn walk(
    json: &Map<String, Value>,
    tables: &[&'static [Field]],
    v: V,
    path: &str,
    out: &mut Vec<UnknownField>,
) {
    for (k, val) in json {
        let here = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        let Some(fd) = known(tables, k, v) else {
            out.push(UnknownField {
                key: k.clone(),
                path: here,
                zero: is_zero(val),
            });
            continue;
        };
        match (fd.shape, val) {
            (Shape::Obj(sub), Value::Object(m)) => walk(m, &[sub], v, &here, out),
            (Shape::List(sub), Value::Array(items)) => {
                for (i, it) in items.iter().enumerate() {
                    if let Value::Object(m) = it {
                        walk(m, &[sub], v, &format!("{here}[{i}]"), out);
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Go's `encoding/json` key match: Unicode simple case folding. Field names are ASCII, and the
/// only non-ASCII characters folding onto ASCII letters are U+017F (ſ → s) and U+212A (K → k).
fn go_fold_eq(field: &str, key: &str) -> bool {
    let fold = |c: char| match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    };
    field.chars().map(fold).eq(key.chars().map(fold))
}

/// `metadata["_nats.req.level"]` when it is a non-empty string.
fn required_level(json: &Map<String, Value>) -> Option<String> {
    json.get("metadata")
        .and_then(Value::as_object)
        .and_then(|m| m.get("_nats.req.level"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Go's `strconv.Atoi` on a 64-bit platform: optional sign, decimal digits, no overflow.
fn go_atoi(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

/// The findings for one check: one per unknown key (an error when the release marks the asset
/// offline, a warning when it silently drops a non-zero value) and one for an unsupported
/// required API level. `file` names the document in messages (`meta.inf`, `backup.json`);
/// `loc` is where the findings point.
pub fn problems(c: &ConfigCheck, file: &str, loc: &Location) -> Vec<Problem> {
    let asset = c.doc.asset();
    let rel = &c.release;
    let assumed = match c.release_from {
        ReleaseFrom::Assumed => {
            " (no release recorded: the newest jetdir knows is assumed; choose one with --server-version)"
        }
        _ => "",
    };
    let beyond = if rel.base() > newest_known() {
        format!(
            " (jetdir's field table ends at {}: newer fields show as unknown)",
            newest_known()
        )
    } else {
        String::new()
    };
    // (singular for "nats-server X …", plural for "2.11.9 and later …")
    let (offline, offline_pl) = match c.doc {
        ConfigDoc::ConsumerMeta => (
            "marks this consumer offline and, on a single server, stops its stream",
            "mark this consumer offline and, on a single server, stop its stream",
        ),
        _ => ("marks this stream offline", "mark this stream offline"),
    };
    let level = |s: &str| {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.to_string()
        } else {
            format!("{s:?}")
        }
    };
    let mut out = Vec::new();
    for u in &c.unknown {
        let at = if u.path == u.key {
            String::new()
        } else {
            format!(" (at {})", u.path)
        };
        if c.rules.offline_on_unknown {
            out.push(Problem::new(
                Kind::ConfigUnknownField,
                loc.clone(),
                format!(
                    "nats-server {rel} {offline}: unknown field \"{}\" in {file}{at}{assumed}{beyond}",
                    u.key
                ),
            ));
        } else if !u.zero {
            out.push(Problem::new(
                Kind::ConfigUnknownFieldIgnored,
                loc.clone(),
                format!(
                    "nats-server {rel} ignores unknown field \"{}\" in {file}{at}: the {asset} loads without it and the server drops it when it next writes the config; 2.11.9 and later {offline_pl}{assumed}",
                    u.key
                ),
            ));
        }
    }
    if let Some(a) = c.api_level.as_ref().filter(|a| !a.supported) {
        if c.rules.offline_on_unknown {
            out.push(Problem::new(
                Kind::ConfigApiLevel,
                loc.clone(),
                format!(
                    "nats-server {rel} {offline}: {file} requires JetStream API level {} (metadata \"_nats.req.level\"), the server supports {}{assumed}",
                    level(&a.required), a.server_level
                ),
            ));
        } else {
            out.push(Problem::new(
                Kind::ConfigApiLevelIgnored,
                loc.clone(),
                format!(
                    "nats-server {rel} does not check the JetStream API level {} that {file} requires (metadata \"_nats.req.level\"; it supports {}): the {asset} loads, without the features of that level; 2.11.9 and later {offline_pl}{assumed}",
                    level(&a.required), a.server_level
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn rel(s: &str) -> Release {
        Release::parse(s).unwrap()
    }
    fn streams(fixture: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(fixture)
            .join("store/jetstream/$G/streams")
    }
    /// Every (meta.inf bytes, doc) of a fixture store written by a real server.
    fn metas(fixture: &str) -> Vec<(PathBuf, Vec<u8>, ConfigDoc)> {
        let mut out = Vec::new();
        for s in std::fs::read_dir(streams(fixture)).unwrap() {
            let d = s.unwrap().path();
            if d.join("meta.key").exists() {
                continue; // encrypted
            }
            out.push((
                d.join("meta.inf"),
                std::fs::read(d.join("meta.inf")).unwrap(),
                ConfigDoc::StreamMeta,
            ));
            if let Ok(obs) = std::fs::read_dir(d.join("obs")) {
                for c in obs {
                    let p = c.unwrap().path().join("meta.inf");
                    out.push((
                        p.clone(),
                        std::fs::read(&p).unwrap(),
                        ConfigDoc::ConsumerMeta,
                    ));
                }
            }
        }
        assert!(!out.is_empty(), "{fixture}: no meta.inf");
        out
    }
    fn orders_29() -> Vec<u8> {
        std::fs::read(streams("v2.9.10-legacy").join("ORDERS/meta.inf")).unwrap()
    }
    fn orders_215() -> Vec<u8> {
        std::fs::read(streams("v2.15.1-plain").join("ORDERS/meta.inf")).unwrap()
    }
    fn edit(raw: &[u8], f: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
        let mut m: Map<String, Value> = serde_json::from_slice(raw).unwrap();
        f(&mut m);
        serde_json::to_vec(&m).unwrap()
    }
    fn rename(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
        edit(raw, |m| {
            let mut out = Map::new();
            for (k, v) in std::mem::take(m) {
                out.insert(if k == from { to.to_string() } else { k }, v);
            }
            *m = out;
        })
    }
    fn kinds(c: &ConfigCheck) -> Vec<Kind> {
        problems(c, "meta.inf", &Location::default())
            .iter()
            .map(|p| p.kind)
            .collect()
    }

    #[test]
    fn real_configs_are_known_to_the_release_that_wrote_them() {
        for (fixture, r) in [
            ("v2.15.1-plain", "2.15.1"),
            ("v2.15.1-s2", "2.15.1"),
            ("v2.9.10-legacy", "2.9.10"),
        ] {
            for (p, raw, doc) in metas(fixture) {
                let c = check_bytes(&raw, doc, Some(&rel(r))).unwrap();
                assert_eq!(c.unknown, Vec::<UnknownField>::new(), "{}", p.display());
                assert!(!c.offline(), "{}", p.display());
                assert!(kinds(&c).is_empty(), "{}", p.display());
            }
        }
        // With no release given and none recorded, the newest known is assumed.
        let c = check_bytes(&orders_215(), ConfigDoc::StreamMeta, None).unwrap();
        assert_eq!(
            (c.release, c.release_from),
            (newest_known(), ReleaseFrom::Assumed)
        );
    }

    /// A priority policy of 2.12 in a consumer's meta.inf: 2.11 cannot decode the file (the
    /// real 2.11.1, 2.11.6 and 2.11.11 do not load the consumer: matrix `cmeta_new_value`);
    /// 2.10 does not know the field (dropped), 2.12+ know the value.
    #[test]
    fn a_priority_policy_of_2_12_does_not_decode_on_2_11() {
        let cfg = |v: &str| -> Map<String, Value> {
            serde_json::from_str(&format!(
                r#"{{"durable_name":"C","ack_policy":"explicit","priority_policy":"{v}","priority_groups":["g"],"Name":"C"}}"#
            ))
            .unwrap()
        };
        for (r, v, bad) in [
            ("2.10.26", "prioritized", false),
            ("2.11.0", "prioritized", true),
            ("2.11.1", "prioritized", true),
            ("2.11.11", "prioritized", true),
            ("2.11.11", "pinned_client", false),
            ("2.11.11", "overflow", false),
            ("2.11.11", "none", false),
            ("2.12.0", "prioritized", false),
            ("2.15.1", "prioritized", false),
            ("2.15.1", "someday", true),
            ("2.16.0", "someday", false),
        ] {
            let got = undecodable_value(&cfg(v), ConfigDoc::ConsumerMeta, Some(&rel(r)));
            assert_eq!(got.is_some(), bad, "{r} {v}: {got:?}");
            if let Some(why) = got {
                assert!(
                    why.contains(&format!(
                        "nats-server {r} cannot decode \"priority_policy\""
                    )),
                    "{why}"
                );
            }
        }
        // a stream's meta.inf has no such field; a consumer without it decodes
        let none: Map<String, Value> = serde_json::from_str(r#"{"durable_name":"C"}"#).unwrap();
        assert_eq!(
            undecodable_value(&none, ConfigDoc::ConsumerMeta, Some(&rel("2.11.1"))),
            None
        );
        assert_eq!(
            undecodable_value(
                &cfg("prioritized"),
                ConfigDoc::StreamMeta,
                Some(&rel("2.11.1"))
            ),
            None
        );
    }

    #[test]
    fn a_renamed_key_is_an_error_from_2_11_9_and_ignored_before() {
        let raw = rename(&orders_215(), "subjects", "rubjects");
        let c = check_bytes(&raw, ConfigDoc::StreamMeta, Some(&rel("2.15.1"))).unwrap();
        assert_eq!(
            c.unknown,
            vec![UnknownField {
                key: "rubjects".into(),
                path: "rubjects".into(),
                zero: false
            }]
        );
        assert!(c.offline());
        let p = problems(&c, "meta.inf", &Location::default());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, Kind::ConfigUnknownField);
        assert!(
            p[0].message.starts_with(
                "nats-server 2.15.1 marks this stream offline: unknown field \"rubjects\" in meta.inf"
            ),
            "{}",
            p[0].message
        );
        // (the 2.9.10 server's meta.inf: every key it has is known to every release since)
        let raw = rename(&orders_29(), "subjects", "rubjects");
        for (r, want) in [
            ("2.9.10", Kind::ConfigUnknownFieldIgnored),
            ("2.10.26", Kind::ConfigUnknownFieldIgnored),
            ("2.11.6", Kind::ConfigUnknownFieldIgnored),
            ("2.11.8", Kind::ConfigUnknownFieldIgnored),
            ("2.11.9", Kind::ConfigUnknownField),
            ("2.11.11", Kind::ConfigUnknownField),
            ("2.12.8", Kind::ConfigUnknownField),
            ("2.14.6", Kind::ConfigUnknownField),
        ] {
            let c = check_bytes(&raw, ConfigDoc::StreamMeta, Some(&rel(r))).unwrap();
            assert_eq!(kinds(&c), vec![want], "{r}");
            assert_eq!(c.offline(), want == Kind::ConfigUnknownField, "{r}");
        }
        // A zero value dropped by a lenient release changes nothing: no finding; a strict one
        // still goes offline.
        let z = edit(&orders_29(), |m| {
            m.insert("bogus".into(), Value::Bool(false));
        });
        assert!(
            kinds(&check_bytes(&z, ConfigDoc::StreamMeta, Some(&rel("2.10.26"))).unwrap())
                .is_empty()
        );
        assert_eq!(
            kinds(&check_bytes(&z, ConfigDoc::StreamMeta, Some(&rel("2.12.8"))).unwrap()),
            vec![Kind::ConfigUnknownField]
        );
    }

    #[test]
    fn nested_unknown_keys_carry_their_path_and_keys_match_like_go() {
        let raw = edit(&orders_215(), |m| {
            m.insert(
                "sources".into(),
                serde_json::json!([{"name": "A"}, {"name": "B", "externl": {"api": "x"},
                    "external": {"api": "$JS.x.API", "delivr": "d"}}]),
            );
            m.insert(
                "placement".into(),
                serde_json::json!({"cluster": "c", "preferred": "n1"}),
            );
            m.insert("Subjects".into(), serde_json::json!(["a"])); // Go matches without case
            m.insert("\u{17F}ealed".into(), Value::Bool(false)); // ſ folds to s
            m.insert("metadata".into(), serde_json::json!({"anything": "goes"}));
        });
        let c = check_bytes(&raw, ConfigDoc::StreamMeta, Some(&rel("2.15.1"))).unwrap();
        let paths: Vec<&str> = c.unknown.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["sources[1].externl", "sources[1].external.delivr"]);
        let p = problems(&c, "meta.inf", &Location::default());
        assert!(
            p[0].message
                .contains("unknown field \"externl\" in meta.inf (at sources[1].externl)"),
            "{}",
            p[0].message
        );
        // placement.preferred arrived in 2.11; 2.10.26 drops it (with a warning: not zero).
        let c = check_bytes(&raw, ConfigDoc::StreamMeta, Some(&rel("2.10.26"))).unwrap();
        let paths: Vec<&str> = c.unknown.iter().map(|u| u.path.as_str()).collect();
        assert!(paths.contains(&"placement.preferred"), "{paths:?}");
    }

    #[test]
    fn fields_come_and_go_with_releases() {
        // The 2.15.1 KV stream sets allow_msg_ttl (2.11+): unknown to 2.10.26, known to 2.11.6.
        let kv = std::fs::read(streams("v2.15.1-plain").join("KV_config/meta.inf")).unwrap();
        let c = check_bytes(&kv, ConfigDoc::StreamMeta, Some(&rel("2.10.26"))).unwrap();
        assert!(
            c.unknown
                .iter()
                .any(|u| u.key == "allow_msg_ttl" && !u.zero),
            "{:?}",
            c.unknown
        );
        let c = check_bytes(&kv, ConfigDoc::StreamMeta, Some(&rel("2.11.6"))).unwrap();
        assert_eq!(c.unknown, Vec::<UnknownField>::new());
        // template_owner: known through 2.12, gone in 2.14.
        let t = edit(&orders_215(), |m| {
            m.insert("template_owner".into(), Value::String("T".into()));
        });
        assert_eq!(
            check_bytes(&t, ConfigDoc::StreamMeta, Some(&rel("2.12.8")))
                .unwrap()
                .unknown,
            vec![]
        );
        assert_eq!(
            check_bytes(&t, ConfigDoc::StreamMeta, Some(&rel("2.14.6")))
                .unwrap()
                .unknown
                .len(),
            1
        );
        // discard_new_per_subject: 2.9.1 on.
        let d = edit(&orders_29(), |m| {
            m.insert("discard_new_per_subject".into(), Value::Bool(true));
        });
        assert_eq!(
            check_bytes(&d, ConfigDoc::StreamMeta, Some(&rel("2.9.0")))
                .unwrap()
                .unknown
                .len(),
            1
        );
        assert_eq!(
            check_bytes(&d, ConfigDoc::StreamMeta, Some(&rel("2.9.1")))
                .unwrap()
                .unknown,
            vec![]
        );
        // Consumer meta.inf: "Name"/"Created" are the wrapper's; "sourcing" is 2.14+.
        let c1 = std::fs::read(streams("v2.15.1-plain").join("ORDERS/obs/C1/meta.inf")).unwrap();
        let s = edit(&c1, |m| {
            m.insert("sourcing".into(), Value::Bool(true));
        });
        assert_eq!(
            check_bytes(&s, ConfigDoc::ConsumerMeta, Some(&rel("2.14.6")))
                .unwrap()
                .unknown,
            vec![]
        );
        let c = check_bytes(&s, ConfigDoc::ConsumerMeta, Some(&rel("2.12.8"))).unwrap();
        assert_eq!(c.unknown.len(), 1);
        let p = problems(&c, "obs/C1/meta.inf", &Location::default());
        assert!(
            p[0].message.contains("marks this consumer offline"),
            "{}",
            p[0].message
        );
        // backup.json's config is a StreamConfig: "Created" is not one of its fields.
        let m: Map<String, Value> = serde_json::from_slice(&orders_215()).unwrap();
        let c = check_config(&m, ConfigDoc::StreamConfig, Some(&rel("2.15.1")));
        assert_eq!(
            c.unknown.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(),
            ["Created"]
        );
    }

    #[test]
    fn required_api_level_as_the_server_checks_it() {
        let with = |lvl: &str| {
            edit(&orders_29(), |m| {
                m.insert(
                    "metadata".into(),
                    serde_json::json!({"_nats.req.level": lvl}),
                );
            })
        };
        let k = |lvl: &str, r: &str| {
            kinds(&check_bytes(&with(lvl), ConfigDoc::StreamMeta, Some(&rel(r))).unwrap())
        };
        assert_eq!(k("5", "2.15.1"), Vec::<Kind>::new());
        assert_eq!(k("6", "2.15.1"), vec![Kind::ConfigApiLevel]);
        assert_eq!(k("4", "2.14.6"), Vec::<Kind>::new());
        assert_eq!(k("5", "2.14.6"), vec![Kind::ConfigApiLevel]);
        assert_eq!(k("3", "2.12.8"), Vec::<Kind>::new());
        assert_eq!(k("3", "2.12.4"), vec![Kind::ConfigApiLevel]);
        assert_eq!(k("2", "2.11.11"), vec![Kind::ConfigApiLevel]);
        assert_eq!(k("2", "2.11.6"), vec![Kind::ConfigApiLevelIgnored]);
        assert_eq!(k("1", "2.10.26"), vec![Kind::ConfigApiLevelIgnored]);
        // 2.9.10 knows no "metadata" at all: it drops the whole map.
        assert_eq!(k("0", "2.9.10"), vec![Kind::ConfigUnknownFieldIgnored]);
        assert_eq!(k("", "2.11.11"), Vec::<Kind>::new()); // empty: no requirement
                                                          // strconv.Atoi: sign allowed, anything else (or overflow) is unsupported.
        assert_eq!(k("+1", "2.11.11"), Vec::<Kind>::new());
        assert_eq!(k("-1", "2.11.11"), Vec::<Kind>::new());
        assert_eq!(k(" 1", "2.11.11"), vec![Kind::ConfigApiLevel]);
        assert_eq!(k("1.0", "2.11.11"), vec![Kind::ConfigApiLevel]);
        assert_eq!(
            k("99999999999999999999", "2.15.1"),
            vec![Kind::ConfigApiLevel]
        );
        let c = check_bytes(&with("6"), ConfigDoc::StreamMeta, Some(&rel("2.15.1"))).unwrap();
        assert!(c.offline());
        let p = problems(&c, "meta.inf", &Location::default());
        assert!(
            p[0].message.starts_with("nats-server 2.15.1 marks this stream offline: meta.inf requires JetStream API level 6"),
            "{}",
            p[0].message
        );
    }

    #[test]
    fn release_comes_from_the_caller_then_the_config() {
        let raw = edit(&orders_215(), |m| {
            m.insert(
                "metadata".into(),
                serde_json::json!({"_nats.ver": "2.10.26", "_nats.level": "0"}),
            );
            m.insert("rubjects".into(), serde_json::json!(["x"]));
        });
        let c = check_bytes(&raw, ConfigDoc::StreamMeta, None).unwrap();
        assert_eq!(
            (c.release.clone(), c.release_from),
            (rel("2.10.26"), ReleaseFrom::Metadata)
        );
        assert_eq!(kinds(&c), vec![Kind::ConfigUnknownFieldIgnored]);
        let c = check_bytes(&raw, ConfigDoc::StreamMeta, Some(&rel("2.12.8"))).unwrap();
        assert_eq!(c.release_from, ReleaseFrom::Given);
        assert_eq!(kinds(&c), vec![Kind::ConfigUnknownField]);
        // Rules at the boundaries.
        assert!(!load_rules(&rel("2.11.8")).offline_on_unknown);
        assert!(load_rules(&rel("2.11.9-RC.1")).offline_on_unknown);
        assert_eq!(load_rules(&rel("2.10.29")).api_level, 0);
        assert_eq!(load_rules(&rel("2.12.5")).api_level, 3);
        // Bad input never panics.
        assert!(check_bytes(b"", ConfigDoc::StreamMeta, None).is_err());
        assert!(check_bytes(b"[1]", ConfigDoc::StreamMeta, None).is_err());
        let odd = br#"{"sources":[1,null,{"name":"x"}],"mirror":"nope","metadata":{"_nats.req.level":7}}"#;
        let c = check_bytes(odd, ConfigDoc::StreamMeta, Some(&rel("2.15.1"))).unwrap();
        assert_eq!(c.unknown, Vec::<UnknownField>::new());
        assert_eq!(c.api_level, None);
    }
}
