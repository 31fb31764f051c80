//! HighwayHash-64 keyed by SHA-256 of a string, as nats-server uses it everywhere.
use highway::{HighwayHash, HighwayHasher, Key};
use sha2::{Digest, Sha256};

/// 32-byte key = SHA-256(`s`), split into four little-endian u64 words (minio layout).
pub fn key_for(s: &str) -> Key {
    let d = Sha256::digest(s.as_bytes());
    let mut w = [0u64; 4];
    for (i, c) in d.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        w[i] = u64::from_le_bytes(b);
    }
    Key(w)
}

/// HH64 over the concatenation of `parts`.
pub fn hh64(key: &Key, parts: &[&[u8]]) -> u64 {
    let mut h = HighwayHasher::new(*key);
    for p in parts {
        h.append(p);
    }
    h.finalize64()
}
