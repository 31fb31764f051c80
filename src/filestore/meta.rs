//! `meta.inf` (stream or consumer config JSON) and `meta.sum` (hex HH64 of meta.inf as stored).
use crate::base::hash;
use serde_json::{Map, Value};

/// A parsed meta.inf. The original bytes are kept so rewriting never loses unknown fields.
#[derive(Debug, Clone)]
pub struct MetaInf {
    pub raw: Vec<u8>,
    pub json: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("empty file")]
    Empty,
    #[error("not JSON (encrypted, or damaged): {0}")]
    NotJson(String),
    #[error("JSON is not an object")]
    NotObject,
}

impl MetaInf {
    pub fn parse(raw: &[u8]) -> Result<MetaInf, MetaError> {
        if raw.is_empty() {
            return Err(MetaError::Empty);
        }
        let v: Value =
            serde_json::from_slice(raw).map_err(|e| MetaError::NotJson(e.to_string()))?;
        match v {
            Value::Object(json) => Ok(MetaInf {
                raw: raw.to_vec(),
                json,
            }),
            _ => Err(MetaError::NotObject),
        }
    }
    pub fn str_field(&self, k: &str) -> Option<&str> {
        self.json.get(k).and_then(Value::as_str)
    }
    pub fn i64_field(&self, k: &str) -> Option<i64> {
        self.json.get(k).and_then(Value::as_i64)
    }
    pub fn name(&self) -> Option<&str> {
        self.str_field("name")
    }
}

/// Stored meta.sum content: lowercase hex of the little-endian HH64 bytes, 16 chars, no newline.
/// Stream: key string = stream (directory) name. Consumer: `"<stream>/<consumer>"`.
pub fn expected_sum(key_string: &str, meta_inf: &[u8]) -> String {
    let h = hash::hh64(&hash::key_for(key_string), &[meta_inf]).to_le_bytes();
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn meta_sum_of_real_samples() {
        let t = crate::testdata::sample("v2.15.1-plain");
        let d = t
            .path()
            .join("v2.15.1-plain/store/jetstream/$G/streams/ORDERS");
        let inf = std::fs::read(d.join("meta.inf")).unwrap();
        let sum = std::fs::read_to_string(d.join("meta.sum")).unwrap();
        assert_eq!(expected_sum("ORDERS", &inf), sum);
        assert_ne!(expected_sum("ORDERS2", &inf), sum);
        let m = MetaInf::parse(&inf).unwrap();
        assert_eq!(m.name(), Some("ORDERS"));
        let c = d.join("obs/C1");
        let inf = std::fs::read(c.join("meta.inf")).unwrap();
        let sum = std::fs::read_to_string(c.join("meta.sum")).unwrap();
        assert_eq!(expected_sum("ORDERS/C1", &inf), sum);
        assert_eq!(MetaInf::parse(b"").unwrap_err(), MetaError::Empty);
        assert!(matches!(
            MetaInf::parse(b"\x01\x02garbage"),
            Err(MetaError::NotJson(_))
        ));
        assert_eq!(MetaInf::parse(b"[1]").unwrap_err(), MetaError::NotObject);
    }
}
