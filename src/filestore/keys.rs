//! Encryption at rest: the server key (`jetstream { key, prev_key, cipher }`), the key files
//! (`meta.key`, `msgs/<N>.key`, `obs/<c>/meta.key`) and the ciphers that seal the other files.
//!
//! As nats-server does it (`jsKeyGen`, `genEncryptionKey`, `genBlockEncryptionKey`,
//! `decryptMeta`, 2.9 through 2.15):
//!
//! - key-encryption key (KEK) = HMAC-SHA256(key = the server key's bytes, msg = account ‖ context);
//!   context `"<stream>"` (meta.key), `"<stream>:<N>"` (block N), `"<stream>.<consumer>"`;
//! - key file = `nonce ‖ AEAD_KEK.Seal(nonce, seed)`: a 32-byte seed; 72 bytes with chacha
//!   (XChaCha20-Poly1305, 24-byte nonce), 64 with aes (AES-256-GCM with a 16-byte nonce);
//! - the asset key (AEK) is the same AEAD keyed by the seed: `meta.inf`, `index.db`'s body and
//!   `o.dat` are `nonce ‖ AEK.Seal(nonce, plaintext)`; a 2.9 `<N>.idx` is sealed with the block
//!   key file's nonce and has no nonce prefix;
//! - a block file is XORed with a keystream from offset 0: XChaCha20 (counter 0) or AES-256-CTR
//!   (128-bit big-endian counter), keyed by the block's seed, IV = the block key file's nonce.
//!   Blocks are not authenticated: their integrity is the record checksums.
//!
//! The server tries (key, configured cipher), (key, other cipher), (previous key, configured),
//! (previous key, other) and converts a file opened by any but the first in place at start.
use aes_gcm::aead::{generic_array::GenericArray, Aead, KeyInit};
use sha2::{Digest, Sha256};
use std::fmt;

/// Minimum size of a key file the server accepts (`minMetaKeySize`, `minBlkKeySize`).
pub const MIN_KEY_FILE: usize = 64;
/// Size of the seed a key file seals.
const SEED: usize = 32;

/// The store cipher (`jetstream { cipher }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// XChaCha20-Poly1305 for sealed files, XChaCha20 for blocks (the server's default).
    ChaCha,
    /// AES-256-GCM (16-byte nonce) for sealed files, AES-256-CTR for blocks.
    Aes,
}

impl Cipher {
    /// Nonce size of the cipher's AEAD (= the key file's nonce prefix).
    pub fn nonce_size(self) -> usize {
        match self {
            Cipher::ChaCha => 24,
            Cipher::Aes => 16,
        }
    }
    /// The other cipher.
    pub fn other(self) -> Cipher {
        match self {
            Cipher::ChaCha => Cipher::Aes,
            Cipher::Aes => Cipher::ChaCha,
        }
    }
    /// The configuration's name (`chacha`, `aes`).
    pub fn name(self) -> &'static str {
        match self {
            Cipher::ChaCha => "chacha",
            Cipher::Aes => "aes",
        }
    }
    /// Parse the configuration's name (`chacha`, `aes`; case-insensitive, as the server).
    pub fn parse(s: &str) -> Option<Cipher> {
        match s.to_ascii_lowercase().as_str() {
            "chacha" | "chachapoly" => Some(Cipher::ChaCha),
            "aes" => Some(Cipher::Aes),
            _ => None,
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A server key. Never printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey(Vec<u8>);

impl ServerKey {
    /// The key as the server's config holds it (a string).
    pub fn new(key: impl Into<Vec<u8>>) -> ServerKey {
        ServerKey(key.into())
    }
    /// A key file's content: the key, with one trailing line break removed.
    pub fn from_file_content(b: &[u8]) -> ServerKey {
        let b = b.strip_suffix(b"\n").unwrap_or(b);
        let b = b.strip_suffix(b"\r").unwrap_or(b);
        ServerKey(b.to_vec())
    }
    /// True when the key is empty (the server then does not encrypt).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(<hidden>)")
    }
}

impl Drop for ServerKey {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// Which of the ring's keys opened a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichKey {
    /// The current key (`--key-file`, `JETDIR_KEY`).
    Current,
    /// The previous key (`--prev-key-file`): the server re-encrypts with the current one at start.
    Previous,
}

/// The keys and cipher jetdir reads an encrypted store with.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    /// The server's current `key`.
    pub key: Option<ServerKey>,
    /// The server's `prev_key` (key rotation).
    pub prev: Option<ServerKey>,
    /// The configured cipher; `None`: try chacha, then aes.
    pub cipher: Option<Cipher>,
    /// The account an archive's stream was written in (`--source-account`): part of every
    /// key file's context (HMAC-SHA256(key, account ‖ context)). A store dir names its account
    /// in its path; a tarball of a stream dir often does not. `None`: the account in the
    /// archive's member paths (`…/<ACC>/streams/<STREAM>/`), else `$G`, else
    /// [`KeyRing::try_accounts`] and the names of the archive's parent dirs.
    pub account: Option<String>,
    /// More accounts to try for an archive without [`KeyRing::account`] (e.g. extract's target
    /// account and the accounts of its store dir). Trying is exact: a key file opens under one
    /// account only (AEAD authentication), so a wrong guess is never taken.
    pub try_accounts: Vec<String>,
}

/// A key file that did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Shorter than any key file.
    #[error("key file is {0} bytes, shorter than the {MIN_KEY_FILE} bytes of any key file")]
    TooShort(usize),
    /// The ring holds no key.
    #[error("no key given")]
    NoKey,
    /// No (key, cipher) of the ring opens it.
    #[error("no key and cipher of the ring opens it (authentication failed)")]
    Unopened,
}

/// A sealed file (meta.inf, index.db, o.dat, .idx) that failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub &'static str);

/// An opened key file: the asset's seed and nonce, the cipher and which key opened it.
#[derive(Clone)]
pub struct AssetKey {
    seed: [u8; SEED],
    nonce: Vec<u8>,
    /// The cipher that opened it.
    pub cipher: Cipher,
    /// The key that opened it.
    pub which: WhichKey,
}

impl fmt::Debug for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssetKey")
            .field("cipher", &self.cipher)
            .field("which", &self.which)
            .finish_non_exhaustive()
    }
}

impl Drop for AssetKey {
    fn drop(&mut self) {
        self.seed = [0; SEED];
    }
}

/// HMAC-SHA256 (RFC 2104) over `parts` (sha2 is already a dependency; this is its 12 lines).
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let ih = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(ih);
    outer.finalize().into()
}

/// The key-encryption key of an asset: HMAC-SHA256(server key, account ‖ context).
pub fn kek(key: &ServerKey, account: &str, context: &str) -> [u8; 32] {
    hmac_sha256(&key.0, &[account.as_bytes(), context.as_bytes()])
}

/// Context of a stream's `meta.key` (the stream dir name).
pub fn stream_context(stream: &str) -> String {
    stream.to_string()
}

/// Context of block `n`'s key file (`"<stream>:<N>"`, the config name).
pub fn block_context(stream: &str, n: u32) -> String {
    format!("{stream}:{n}")
}

/// Context of a consumer's `meta.key` (`"<stream>.<consumer>"`).
pub fn consumer_context(stream: &str, consumer: &str) -> String {
    format!("{stream}.{consumer}")
}

/// AEAD open of `ct` (ciphertext ‖ tag) with `key` and `nonce` under `cipher`.
fn aead_open(cipher: Cipher, key: &[u8; 32], nonce: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    if nonce.len() != cipher.nonce_size() {
        return None;
    }
    match cipher {
        Cipher::ChaCha => {
            let a = chacha20poly1305::XChaCha20Poly1305::new(GenericArray::from_slice(key));
            a.decrypt(GenericArray::from_slice(nonce), ct).ok()
        }
        Cipher::Aes => {
            type Gcm16 = aes_gcm::AesGcm<aes::Aes256, aes_gcm::aead::consts::U16>;
            let a = Gcm16::new(GenericArray::from_slice(key));
            a.decrypt(GenericArray::from_slice(nonce), ct).ok()
        }
    }
}

impl KeyRing {
    /// True when the ring holds a key.
    pub fn has_key(&self) -> bool {
        self.key.is_some() || self.prev.is_some()
    }

    /// The (key, cipher) pairs in the server's order.
    fn attempts(&self) -> Vec<(&ServerKey, WhichKey, Cipher)> {
        let first = self.cipher.unwrap_or(Cipher::ChaCha);
        let mut v = Vec::new();
        for (k, w) in [
            (&self.key, WhichKey::Current),
            (&self.prev, WhichKey::Previous),
        ] {
            if let Some(k) = k {
                v.push((k, w, first));
                v.push((k, w, first.other()));
            }
        }
        v
    }

    /// Open a key file (`file`) of `account` for `context`.
    pub fn open_key_file(
        &self,
        account: &str,
        context: &str,
        file: &[u8],
    ) -> Result<AssetKey, KeyFileError> {
        if file.len() < MIN_KEY_FILE {
            return Err(KeyFileError::TooShort(file.len()));
        }
        let attempts = self.attempts();
        if attempts.is_empty() {
            return Err(KeyFileError::NoKey);
        }
        for (k, which, cipher) in attempts {
            let kek = kek(k, account, context);
            let ns = cipher.nonce_size();
            let Some(seed) = aead_open(cipher, &kek, &file[..ns], &file[ns..]) else {
                continue;
            };
            let Ok(seed) = <[u8; SEED]>::try_from(seed.as_slice()) else {
                continue;
            };
            return Ok(AssetKey {
                seed,
                nonce: file[..ns].to_vec(),
                cipher,
                which,
            });
        }
        Err(KeyFileError::Unopened)
    }
}

impl AssetKey {
    /// Open a `nonce ‖ AEAD` file (meta.inf, index.db body, o.dat).
    pub fn open_sealed(&self, buf: &[u8]) -> Result<Vec<u8>, AuthError> {
        let ns = self.cipher.nonce_size();
        if buf.len() < ns + 16 {
            return Err(AuthError("shorter than a nonce and a tag"));
        }
        aead_open(self.cipher, &self.seed, &buf[..ns], &buf[ns..])
            .ok_or(AuthError("authentication failed"))
    }

    /// Open a file sealed with this key file's own nonce and no nonce prefix (2.9 `<N>.idx`).
    pub fn open_with_key_nonce(&self, buf: &[u8]) -> Result<Vec<u8>, AuthError> {
        aead_open(self.cipher, &self.seed, &self.nonce, buf)
            .ok_or(AuthError("authentication failed"))
    }

    /// XOR `buf`, the bytes of a block file from `offset` on, with the block's keystream:
    /// encrypts and decrypts alike.
    pub fn xor_block(&self, offset: u64, buf: &mut [u8]) {
        match self.cipher {
            Cipher::ChaCha => {
                use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
                let Ok(nonce) = <[u8; 24]>::try_from(self.nonce.as_slice()) else {
                    return; // a key file always has the cipher's nonce size
                };
                let mut c = chacha20::XChaCha20::new(&self.seed.into(), &nonce.into());
                c.seek(offset);
                c.apply_keystream(buf);
            }
            Cipher::Aes => {
                use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
                let mut c = ctr::Ctr128BE::<aes::Aes256>::new(
                    GenericArray::from_slice(&self.seed),
                    GenericArray::from_slice(&self.nonce),
                );
                c.seek(offset);
                c.apply_keystream(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use std::fs;

    const KEY: &str = "jetdir-sample-key-0123456789abcdef";

    fn ring(cipher: Option<Cipher>) -> KeyRing {
        KeyRing {
            key: Some(ServerKey::new(KEY)),
            prev: None,
            cipher,
            ..Default::default()
        }
    }

    #[test]
    fn hmac_matches_rfc4231() {
        // RFC 4231 test case 2 and 6 (a key longer than the block)
        let h = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&h),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let h = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&h),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Every sealed file and block of the real servers' samples opens, and the blocks then
    /// decode with valid record checksums (checked by the block parser).
    #[test]
    fn real_samples_open_with_both_ciphers() {
        for (sample, cipher, stream) in [
            ("v2.15.1-enc-chacha", Cipher::ChaCha, "SECRET"),
            ("v2.9.10-enc-chacha", Cipher::ChaCha, "SECRET"),
            ("v2.15.1-enc-aes", Cipher::Aes, "SECRET"),
            ("v2.15.1-enc-aes", Cipher::Aes, "ENCCMP"),
        ] {
            let t = testdata::sample(sample);
            let d = t
                .path()
                .join(sample)
                .join("store/jetstream/$G/streams")
                .join(stream);
            for r in [ring(None), ring(Some(cipher)), ring(Some(cipher.other()))] {
                let mk = fs::read(d.join("meta.key")).unwrap();
                let k = r.open_key_file("$G", stream, &mk).unwrap();
                assert_eq!(k.cipher, cipher, "{sample}");
                assert_eq!(k.which, WhichKey::Current);
                let meta = k
                    .open_sealed(&fs::read(d.join("meta.inf")).unwrap())
                    .unwrap();
                let j: serde_json::Value = serde_json::from_slice(&meta).unwrap();
                assert_eq!(j["name"], stream);
                let bk = r
                    .open_key_file(
                        "$G",
                        &block_context(stream, 1),
                        &fs::read(d.join("msgs/1.key")).unwrap(),
                    )
                    .unwrap();
                let mut blk = fs::read(d.join("msgs/1.blk")).unwrap();
                let tail_plain = {
                    let mut t = blk[blk.len() - 8..].to_vec();
                    bk.xor_block((blk.len() - 8) as u64, &mut t);
                    t
                };
                bk.xor_block(0, &mut blk);
                assert_eq!(&blk[blk.len() - 8..], &tail_plain[..], "seek");
                let (plain, cmp) = crate::filestore::block::plain_block(&blk).unwrap();
                assert_eq!(cmp, stream == "ENCCMP", "{sample} {stream}");
                let recs: Vec<_> = crate::filestore::block::Records::new(&plain).collect();
                assert!(!recs.is_empty(), "{sample} {stream}");
                let key = crate::filestore::block::block_key(stream, 1);
                for rec in recs {
                    let rec = rec.unwrap();
                    assert!(rec.checksum_ok(&key), "{sample} {stream} seq {}", rec.seq);
                }
            }
        }
    }

    #[test]
    fn wrong_key_and_previous_key() {
        let t = testdata::sample("v2.15.1-enc-chacha");
        let d = t
            .path()
            .join("v2.15.1-enc-chacha/store/jetstream/$G/streams/SECRET");
        let mk = fs::read(d.join("meta.key")).unwrap();
        let wrong = KeyRing {
            key: Some(ServerKey::new("not-the-key")),
            ..Default::default()
        };
        assert_eq!(
            wrong.open_key_file("$G", "SECRET", &mk).unwrap_err(),
            KeyFileError::Unopened
        );
        let rotated = KeyRing {
            key: Some(ServerKey::new("not-the-key")),
            prev: Some(ServerKey::new(KEY)),
            ..Default::default()
        };
        let k = rotated.open_key_file("$G", "SECRET", &mk).unwrap();
        assert_eq!(k.which, WhichKey::Previous);
        // another account's derivation does not open it
        assert!(ring(None).open_key_file("ACC", "SECRET", &mk).is_err());
        assert_eq!(
            ring(None)
                .open_key_file("$G", "SECRET", &mk[..40])
                .unwrap_err(),
            KeyFileError::TooShort(40)
        );
        assert_eq!(
            KeyRing::default()
                .open_key_file("$G", "SECRET", &mk)
                .unwrap_err(),
            KeyFileError::NoKey
        );
        assert!(!format!("{:?}", ring(None)).contains(KEY));
    }

    #[test]
    fn legacy_idx_opens_with_the_block_nonce() {
        let t = testdata::sample("v2.9.10-enc-chacha");
        let d = t
            .path()
            .join("v2.9.10-enc-chacha/store/jetstream/$G/streams/SECRET");
        let bk = ring(None)
            .open_key_file("$G", "SECRET:1", &fs::read(d.join("msgs/1.key")).unwrap())
            .unwrap();
        let idx = bk
            .open_with_key_nonce(&fs::read(d.join("msgs/1.idx")).unwrap())
            .unwrap();
        let x = crate::filestore::legacy::parse_idx(&idx).unwrap();
        assert_eq!((x.first_seq, x.last_seq), (1, 10));
    }

    #[test]
    fn key_file_content_drops_one_line_break() {
        assert_eq!(
            ServerKey::from_file_content(b"abc\n"),
            ServerKey::new("abc")
        );
        assert_eq!(
            ServerKey::from_file_content(b"abc\r\n"),
            ServerKey::new("abc")
        );
        assert_eq!(
            ServerKey::from_file_content(b"abc "),
            ServerKey::new("abc ")
        );
    }
}
