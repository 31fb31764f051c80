//! An encrypted stream directory seen through its keys: a [`StreamSource`] that gives every
//! reader the plaintext the server decrypts (meta.inf, index.db, blocks, 2.9 `.idx`, consumer
//! meta.inf and o.dat), and says for every encrypted asset whether it opened with the key, only
//! with the previous key or the other cipher, or not at all.
//!
//! The plaintext view is the stream as an unencrypted server would have written it: the key
//! files are not listed, `meta.sum` is the sum of the plaintext meta.inf when the stored one
//! matches the ciphertext (else the stored one, so the mismatch is still reported), and
//! index.db carries a trailer over its plaintext on the same terms. `pack` of this view is a
//! plaintext backup, as the server's snapshots are.
use crate::base::problem::{Kind, Location, Problem};
use crate::base::report::{EncryptedAsset, EncryptionReport};
use crate::filestore::index_db;
use crate::filestore::keys::{self, AssetKey, Cipher, KeyRing, WhichKey};
use crate::filestore::layout::{self, StreamFile};
use crate::filestore::meta;
use crate::filestore::source::{DirSource, FileRead, StreamSource};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

/// What opening one encrypted asset gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Opened with the key (and the configured cipher, when one was given).
    Key,
    /// Opened only with the previous key: the server re-encrypts it with the key at start.
    PreviousKey,
    /// Opened only with the other cipher: the server converts it at start.
    OtherCipher,
    /// The key opens the rest of the stream but not this asset: damaged.
    Corrupt,
    /// No key opens anything of the stream: the wrong key (or another account's store).
    WrongKey,
    /// Its key file did not open, so it could not be tried.
    KeyFileFailed,
}

impl Outcome {
    /// The JSON name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Key => "key",
            Outcome::PreviousKey => "previous_key",
            Outcome::OtherCipher => "other_cipher",
            Outcome::Corrupt => "corrupt",
            Outcome::WrongKey => "wrong_key",
            Outcome::KeyFileFailed => "key_file_failed",
        }
    }
}

/// One encrypted file and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Path relative to the stream dir.
    pub file: String,
    /// What opening it gave.
    pub outcome: Outcome,
    /// The cipher that opened it (when it opened).
    pub cipher: Option<&'static str>,
}

/// True for the files an encrypted stream holds encrypted (or sealed): key files, meta.inf,
/// blocks, index.db, 2.9 `.idx`, consumer meta.inf and o.dat. meta.sum, 2.9 `.fss`,
/// thw.db, sched.db and sources.db are plaintext.
pub fn is_encrypted_file(rel: &str) -> bool {
    matches!(
        layout::classify_path(rel),
        Some(
            StreamFile::MetaKey
                | StreamFile::BlockKey(_)
                | StreamFile::ConsumerKey(_)
                | StreamFile::MetaInf
                | StreamFile::Block(_)
                | StreamFile::IndexDb
                | StreamFile::BlockIdx(_)
                | StreamFile::ConsumerMetaInf(_)
                | StreamFile::ConsumerState(_)
        )
    )
}

/// The size of every file of the stream dir `dir` in `files`.
pub fn dir_sizes(dir: &Path, files: &[String]) -> BTreeMap<String, u64> {
    use rayon::prelude::*;
    files
        .par_iter()
        .map(|f| {
            let n = std::fs::metadata(dir.join(f)).map_or(0, |m| m.len());
            (f.clone(), n)
        })
        .collect()
}

/// What can be told of an encrypted stream without its key: every encrypted file with its
/// size, and the cipher when the key files' sizes tell it.
pub fn report_without_key(dir: &Path, files: &[String]) -> EncryptionReport {
    report_without_key_sized(&dir_sizes(dir, files))
}

/// [`report_without_key`] from the files' sizes (an archive's members: path → size).
pub fn report_without_key_sized(sizes: &BTreeMap<String, u64>) -> EncryptionReport {
    let size = |f: &str| sizes.get(f).copied().unwrap_or(0);
    EncryptionReport {
        cipher: cipher_from_sizes(sizes).map(|c| c.name().to_string()),
        key: "none".into(),
        assets: sizes
            .keys()
            .filter(|f| is_encrypted_file(f))
            .filter(|f| !(f.ends_with("/o.dat") && size(f) == 0))
            .map(|f| EncryptedAsset {
                file: f.clone(),
                bytes: size(f),
                outcome: "key_needed".into(),
                cipher: None,
            })
            .collect(),
    }
}

/// True when the stream dir (its file list, relative paths) holds key files.
pub fn has_key_files(files: &[String]) -> bool {
    files
        .iter()
        .any(|n| layout::classify_path(n).is_some_and(|f| f.is_key()))
}

/// The cipher a store's key files were written with, told from their size alone (72 bytes:
/// chacha, 64: aes), when every key file agrees; `None` otherwise.
pub fn cipher_from_key_sizes(dir: &Path, files: &[String]) -> Option<Cipher> {
    cipher_from_sizes(&dir_sizes(dir, files))
}

/// [`cipher_from_key_sizes`] from the files' sizes (path → size).
pub fn cipher_from_sizes(sizes: &BTreeMap<String, u64>) -> Option<Cipher> {
    let mut found = None;
    for (n, &len) in sizes {
        if !matches!(
            layout::classify_path(n),
            Some(StreamFile::MetaKey | StreamFile::BlockKey(_) | StreamFile::ConsumerKey(_))
        ) {
            continue;
        }
        let c = match len {
            72 => Cipher::ChaCha,
            64 => Cipher::Aes,
            _ => return None,
        };
        if found.is_some_and(|f| f != c) {
            return None;
        }
        found = Some(c);
    }
    found
}

/// The members of an archive of a stream dir: small files' bytes, every member's name.
#[derive(Default)]
struct Members {
    files: BTreeMap<String, Vec<u8>>,
    names: Vec<String>,
}

impl StreamSource for Members {
    fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.get(rel).cloned())
    }
    fn files(&self) -> Vec<String> {
        self.names.clone()
    }
    fn can_refetch(&self, rel: &str) -> bool {
        self.files.contains_key(rel)
    }
}

/// The key files of an archive's stream to try an account with: meta.key, then the first
/// blocks' key files (a damaged meta.key must not make the account unknown), as
/// (HMAC context, bytes).
fn key_files_to_try<'a>(
    files: &'a BTreeMap<String, Vec<u8>>,
    dir_name: &'a str,
) -> impl Iterator<Item = (String, &'a [u8])> + 'a {
    let meta = files
        .get("meta.key")
        .map(|b| (keys::stream_context(dir_name), b.as_slice()));
    let blocks = files
        .iter()
        .filter_map(move |(n, b)| match layout::classify_path(n) {
            Some(StreamFile::BlockKey(i)) => u32::try_from(i)
                .ok()
                .map(|i| (keys::block_context(dir_name, i), b.as_slice())),
            _ => None,
        })
        .take(3);
    meta.into_iter().chain(blocks)
}

/// A plaintext file, or why it did not open.
type Opened = Result<Vec<u8>, String>;

/// An encrypted stream opened with a key ring: a stream dir on disk, or the members of an
/// archive of one (a `.tgz` / `.tar` of the dir, whose small files are held in memory and
/// whose blocks the caller decrypts with [`EncryptedDir::block_key`] as they stream by).
pub struct EncryptedDir {
    inner: Box<dyn StreamSource + Send>,
    /// Size of every file of the stream (key files included).
    sizes: BTreeMap<String, u64>,
    /// Every encrypted asset and what opening it gave, in file order.
    pub assets: Vec<Asset>,
    /// Findings from opening the keys and sealed files.
    pub problems: Vec<Problem>,
    /// True when nothing of the stream opened: the wrong key.
    pub wrong_key: bool,
    /// The cipher the stream key file opened with.
    pub cipher: Option<Cipher>,
    /// The config name (from the decrypted meta.inf; the dir name otherwise).
    pub cfg_name: String,
    /// The stream dir name it was opened with (the stream key file's HMAC context).
    pub dir_name: String,
    /// The account it was opened with (the other part of every key file's HMAC context).
    pub account: String,
    block_keys: BTreeMap<u32, Result<AssetKey, String>>,
    /// Decrypted small files (meta.inf, meta.sum, index.db, .idx, consumer files).
    plain: BTreeMap<String, Opened>,
    files: Vec<String>,
    /// What does not open although the key fits the stream (the load model's input).
    pub unopened: Unopened,
    /// Blocks that hold plaintext records (see [`PlainBlock`]), by block index.
    pub plaintext: BTreeMap<u32, PlainBlock>,
}

/// A block of an encrypted stream whose bytes are plaintext records: they frame, and their
/// checksums (keyed by the stream's name and the block's index, not by the encryption key)
/// verify as they lie, where ciphertext passes one time in 2^64. nats-server 2.10.0-2.11.5
/// write such blocks (fixed in 2.11.6 and 2.12.0: nats-io/nats-server 06b3e2aa6): they load
/// a block's keys only when they first read it, and a last block shorter than 8 bytes at
/// start was never read, so what they then wrote to it went to disk unencrypted. Read
/// through its key file, such a block is garbage to every release (whose log says
/// "indexCacheBuf corrupt record state"), and its messages are lost; with no key file the
/// server takes it for a plaintext block to convert and encrypts it with a new key, losing
/// nothing (both checked against 2.10.26-2.15.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlainBlock {
    /// Message records in it whose checksum verifies (deleted ones included).
    pub messages: u64,
    /// Their bytes (record lengths).
    pub bytes: u64,
    /// Their first and last sequence.
    pub seqs: Option<(u64, u64)>,
    /// Written compressed (`cmp`).
    pub compressed: bool,
    /// It has no key file: the server converts it (reads it as it is, and encrypts it).
    pub no_key: bool,
}

/// `rel` (a block of `size` bytes) as a [`PlainBlock`], when its bytes are plaintext records
/// under the record key `key`. Reads the first record's head, and the block only when that
/// head could start a record (or a `cmp` block) of this file, which ciphertext does a few
/// times in a thousand.
fn plaintext_block(
    src: &dyn StreamSource,
    rel: &str,
    size: u64,
    key: &highway::Key,
) -> Option<PlainBlock> {
    use crate::filestore::block::{self, EMPTY_RECORD_LEN, HBIT, HDR_LEN, MAX_RECORD_LEN};
    let head = src.head(rel, HDR_LEN).ok()??;
    let cmp = block::is_cmp_block(&head);
    let rl = head
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & !HBIT)?;
    let could_start =
        rl as usize >= EMPTY_RECORD_LEN && rl <= MAX_RECORD_LEN && u64::from(rl) <= size;
    if !(cmp || could_start) {
        return None;
    }
    // a big block (or record) is held by one thread at a time, as every block reader does
    let _big = block::big_block_guard(size.min(block::MAX_BLOCK_FILE));
    if !cmp {
        // the first record alone first: a block is read whole only when it verifies
        let first = src.head(rel, rl as usize).ok()??;
        if !block::parse_record(&first, 0).is_ok_and(|r| r.checksum_ok(key)) {
            return None;
        }
    }
    let raw = src.read(rel).ok()??;
    let (plain, compressed) = block::plain_block(&raw).ok()?;
    let mut pb = PlainBlock {
        compressed,
        ..PlainBlock::default()
    };
    for r in block::Records::new(&plain) {
        let Ok(r) = r else { break };
        if !r.checksum_ok(key) {
            break;
        }
        if r.kind() == block::RecordKind::Message {
            pb.messages += 1;
            pb.bytes += u64::from(r.len);
            pb.seqs = Some(
                pb.seqs
                    .map_or((r.seq, r.seq), |(a, b)| (a.min(r.seq), b.max(r.seq))),
            );
        }
    }
    // a cmp block whose first record does not verify is not one
    (pb.messages > 0 || block::parse_record(&plain, 0).is_ok_and(|r| r.checksum_ok(key)))
        .then_some(pb)
}

/// The parts of an encrypted stream that do not open with the key that opens the rest:
/// what the server, with the same key, fails on at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unopened {
    /// meta.key or meta.inf: the server skips the stream ("Error decrypting our stream
    /// metafile").
    pub stream: bool,
    /// Blocks whose key file is missing (the server makes a new key for such a block when it
    /// first reads it, and writes it to `msgs/N.key`).
    pub block_key_missing: std::collections::BTreeSet<u32>,
    /// Blocks whose key file is there but does not open.
    pub block_key_corrupt: std::collections::BTreeSet<u32>,
    /// Consumers whose meta.key or meta.inf does not open (the server does not load them).
    pub consumer_config: std::collections::BTreeSet<String>,
    /// Consumers whose o.dat does not open (meta.key and meta.inf do).
    pub consumer_state: std::collections::BTreeSet<String>,
}

impl Unopened {
    /// True when a block of the stream cannot be decrypted by the server.
    pub fn block(&self, i: u32) -> bool {
        self.block_key_missing.contains(&i) || self.block_key_corrupt.contains(&i)
    }

    /// True when some block's key file does not open.
    pub fn any_block(&self) -> bool {
        !(self.block_key_missing.is_empty() && self.block_key_corrupt.is_empty())
    }

    /// Sort (file, why) failures of opening into what they mean for the load.
    fn of(failed: &[(String, String)]) -> Unopened {
        let mut u = Unopened::default();
        for (file, why) in failed {
            match layout::classify_path(file) {
                Some(StreamFile::MetaKey | StreamFile::MetaInf) => u.stream = true,
                Some(StreamFile::BlockKey(i)) => {
                    let Ok(i) = u32::try_from(i) else { continue };
                    if why == MISSING {
                        u.block_key_missing.insert(i);
                    } else {
                        u.block_key_corrupt.insert(i);
                    }
                }
                Some(StreamFile::ConsumerKey(c) | StreamFile::ConsumerMetaInf(c)) => {
                    u.consumer_config.insert(c);
                }
                Some(StreamFile::ConsumerState(c)) => {
                    u.consumer_state.insert(c);
                }
                _ => {}
            }
        }
        u
    }
}

/// The reason [`Tally`] records for a key file that is not there.
const MISSING: &str = "missing";

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn outcome_of(k: &AssetKey, ring: &KeyRing) -> Outcome {
    match (k.which, ring.cipher) {
        (WhichKey::Previous, _) => Outcome::PreviousKey,
        (WhichKey::Current, Some(c)) if c != k.cipher => Outcome::OtherCipher,
        (WhichKey::Current, _) => Outcome::Key,
    }
}

/// Opening state: which key files and sealed files did not open.
struct Tally<'r> {
    ring: &'r KeyRing,
    src: &'r dyn StreamSource,
    account: String,
    /// (file, why) of key or sealed files that did not open.
    failed: Vec<(String, String)>,
}

impl Tally<'_> {
    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        self.src.read(rel).ok().flatten()
    }
    /// Open the key file `rel` for `ctx`; `None` when it cannot be read.
    fn key(&mut self, e: &mut EncryptedDir, rel: &str, ctx: &str) -> Option<AssetKey> {
        let opened = self
            .read(rel)
            .map(|b| self.ring.open_key_file(&self.account, ctx, &b));
        self.key_opened(e, rel, opened)
    }
    /// [`Tally::key`] of a key file already read (`None`: there is none) and opened.
    fn key_opened(
        &mut self,
        e: &mut EncryptedDir,
        rel: &str,
        opened: Option<Result<AssetKey, keys::KeyFileError>>,
    ) -> Option<AssetKey> {
        let Some(opened) = opened else {
            self.failed.push((rel.to_string(), MISSING.into()));
            return None;
        };
        match opened {
            Ok(k) => {
                self.opened(e, rel, &k);
                Some(k)
            }
            Err(err) => {
                self.corrupt(e, rel, err.to_string());
                None
            }
        }
    }
    fn opened(&mut self, e: &mut EncryptedDir, rel: &str, k: &AssetKey) {
        e.assets.push(Asset {
            file: rel.to_string(),
            outcome: outcome_of(k, self.ring),
            cipher: Some(k.cipher.name()),
        });
    }
    fn corrupt(&mut self, e: &mut EncryptedDir, rel: &str, why: String) {
        e.assets.push(Asset {
            file: rel.to_string(),
            outcome: Outcome::Corrupt,
            cipher: None,
        });
        self.failed.push((rel.to_string(), why));
    }
    /// A sealed file whose key did not open: not tried.
    fn untried(&mut self, e: &mut EncryptedDir, rel: &str, key_file: &str) -> Opened {
        e.assets.push(Asset {
            file: rel.to_string(),
            outcome: Outcome::KeyFileFailed,
            cipher: None,
        });
        Err(format!("its key file ({key_file}) did not open"))
    }
    /// Decrypt the `nonce ‖ AEAD` file `rel` (if present) into the plaintext view.
    fn sealed(&mut self, e: &mut EncryptedDir, rel: &str, key: Option<&AssetKey>, key_file: &str) {
        let Some(raw) = self.read(rel) else { return };
        let r = match key {
            None => self.untried(e, rel, key_file),
            Some(k) => match k.open_sealed(&raw) {
                Ok(p) => {
                    self.opened(e, rel, k);
                    Ok(p)
                }
                Err(a) => {
                    self.corrupt(e, rel, a.to_string());
                    Err(a.to_string())
                }
            },
        };
        e.plain.insert(rel.to_string(), r);
    }
}

impl EncryptedDir {
    /// Open the key files of the stream in `dir` (account `account`, dir name `dir_name`)
    /// with `ring` and decrypt its small sealed files.
    pub fn open(dir: &Path, account: &str, dir_name: &str, ring: &KeyRing) -> EncryptedDir {
        let inner = DirSource::new(dir.to_path_buf());
        let sizes = dir_sizes(dir, &inner.files());
        Self::open_source(Box::new(inner), sizes, account, dir_name, ring)
    }

    /// [`EncryptedDir::open`] over the members of an archive: `files` holds the bytes of
    /// every small member (key files, meta.inf, index.db, consumer files…), `sizes` the size
    /// of every member (blocks included, whose bytes are not held).
    pub fn open_members(
        files: BTreeMap<String, Vec<u8>>,
        sizes: BTreeMap<String, u64>,
        account: &str,
        dir_name: &str,
        ring: &KeyRing,
    ) -> EncryptedDir {
        let inner = Members {
            files,
            names: sizes.keys().cloned().collect(),
        };
        Self::open_source(Box::new(inner), sizes, account, dir_name, ring)
    }

    /// [`EncryptedDir::open_members`] for an archive whose account is not known for sure:
    /// `accounts` are tried in order, and the first under which a key file of the stream
    /// opens is taken (exact: a key file authenticates under one account only). When none
    /// fits, the stream is opened under the first and reads as `wrong_key`, its finding naming
    /// the accounts tried and `--source-account` (`given`: the user named the account).
    pub fn open_members_in(
        files: BTreeMap<String, Vec<u8>>,
        sizes: BTreeMap<String, u64>,
        accounts: &[String],
        given: bool,
        dir_name: &str,
        ring: &KeyRing,
    ) -> EncryptedDir {
        let fits = |acc: &str| {
            key_files_to_try(&files, dir_name)
                .any(|(ctx, b)| ring.open_key_file(acc, &ctx, b).is_ok())
        };
        let first = accounts.first().map_or("$G", String::as_str);
        let account = accounts
            .iter()
            .find(|a| ring.has_key() && fits(a))
            .map_or(first, String::as_str)
            .to_string();
        let mut e = Self::open_members(files, sizes, &account, dir_name, ring);
        if e.wrong_key {
            let tried = accounts.join(", ");
            let hint = if given {
                format!("the wrong key, or not a stream of account {tried} (--source-account): give the account it was written in")
            } else {
                format!("the wrong key, or another account's stream (tried account(s) {tried}; the tarball does not name its account): give the account it was written in with --source-account ACC")
            };
            for p in &mut e.problems {
                if p.kind == Kind::EncryptedWrongKey {
                    p.message = format!(
                        "no key file of this stream opens with the key given (nor the previous key, with either cipher), its key context being account ‖ stream dir name {dir_name:?}: {hint}; the server skips such a stream ('unable to recover keys')"
                    );
                }
            }
        }
        e
    }

    fn open_source(
        inner: Box<dyn StreamSource + Send>,
        sizes: BTreeMap<String, u64>,
        account: &str,
        dir_name: &str,
        ring: &KeyRing,
    ) -> EncryptedDir {
        let all = inner.files();
        let is_key = |n: &String| {
            matches!(
                layout::classify_path(n),
                Some(StreamFile::MetaKey | StreamFile::BlockKey(_) | StreamFile::ConsumerKey(_))
            )
        };
        let mut e = EncryptedDir {
            inner: Box::new(Members::default()), // the real one once opened (`t` reads it)
            sizes,
            assets: Vec::new(),
            problems: Vec::new(),
            wrong_key: false,
            cipher: None,
            cfg_name: dir_name.to_string(),
            dir_name: dir_name.to_string(),
            account: account.to_string(),
            block_keys: BTreeMap::new(),
            plain: BTreeMap::new(),
            files: all.iter().filter(|n| !is_key(n)).cloned().collect(),
            unopened: Unopened::default(),
            plaintext: BTreeMap::new(),
        };
        let mut t = Tally {
            ring,
            src: inner.as_ref(),
            account: account.to_string(),
            failed: Vec::new(),
        };
        // stream key, meta.inf, index.db
        let stream_key = t.key(&mut e, "meta.key", &keys::stream_context(dir_name));
        e.cipher = stream_key.as_ref().map(|k| k.cipher);
        t.sealed(&mut e, "meta.inf", stream_key.as_ref(), "meta.key");
        if let Some(Ok(m)) = e.plain.get("meta.inf") {
            if let Some(n) = serde_json::from_slice::<serde_json::Value>(m)
                .ok()
                .and_then(|j| j.get("name").and_then(|n| n.as_str()).map(String::from))
            {
                e.cfg_name = n;
            }
        }
        // index.db: `nonce ‖ AEAD`, then a trailer over that ciphertext
        if let Some(raw) = t.read("msgs/index.db") {
            let r = match (&stream_key, index_db::split_trailer(&raw)) {
                (None, _) => t.untried(&mut e, "msgs/index.db", "meta.key"),
                (Some(_), Err(err)) => {
                    t.corrupt(&mut e, "msgs/index.db", err.to_string());
                    Err(err.to_string())
                }
                (Some(k), Ok((body, trailer))) => match k.open_sealed(body) {
                    // the converted stream has a new key: the server cannot read this one
                    Ok(_) if outcome_of(k, ring) != Outcome::Key => {
                        t.opened(&mut e, "msgs/index.db", k);
                        Err("sealed with the key the server replaces at start".to_string())
                    }
                    Ok(mut p) => {
                        t.opened(&mut e, "msgs/index.db", k);
                        if index_db::trailer_ok(&raw, &e.cfg_name) {
                            let h = index_db::body_hash(&p, &e.cfg_name);
                            p.extend_from_slice(&h);
                        } else {
                            p.extend_from_slice(&trailer);
                        }
                        Ok(p)
                    }
                    Err(a) => {
                        t.corrupt(&mut e, "msgs/index.db", a.to_string());
                        Err(a.to_string())
                    }
                },
            };
            e.plain.insert("msgs/index.db".into(), r);
        }
        // block keys (every block of an encrypted stream has one), 2.9 .idx
        let blocks: Vec<u32> = all
            .iter()
            .filter_map(|n| match layout::classify_path(n) {
                Some(f @ (StreamFile::Block(_) | StreamFile::BlockKey(_))) => f.block(),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<u32>>()
            .into_iter()
            .collect();
        // Each block's key file read and opened, and its .idx read, on all cores (one after the
        // other, before any block was read, this grew with the block count: 2-4 ms of a 1 GiB
        // stream's 513 blocks were saved on 2 cores); what they tell is then tallied in block
        // order, as before.
        // a 2.9 .idx only where the listing has one (not an open that fails per block)
        let listed: std::collections::HashSet<&str> = all.iter().map(String::as_str).collect();
        let read_open = |&i: &u32| {
            let key = t
                .read(&format!("msgs/{i}.key"))
                .map(|b| ring.open_key_file(account, &keys::block_context(&e.cfg_name, i), &b));
            let idx = format!("msgs/{i}.idx");
            let blk = format!("msgs/{i}.blk");
            let size = e.sizes.get(&blk).copied().unwrap_or(0);
            let plain = (size > 0)
                .then(|| {
                    let k = crate::filestore::block::block_key(&e.cfg_name, i);
                    plaintext_block(t.src, &blk, size, &k)
                })
                .flatten();
            (
                i,
                key,
                listed
                    .contains(idx.as_str())
                    .then(|| t.read(&idx))
                    .flatten(),
                plain,
            )
        };
        let opened: Vec<_> = {
            use rayon::prelude::*;
            blocks.par_iter().map(read_open).collect()
        };
        for (i, key, idx_raw, plain) in opened {
            if let Some(pb) = plain {
                e.plaintext.insert(i, pb);
            }
            let kf = format!("msgs/{i}.key");
            let k = t.key_opened(&mut e, &kf, key);
            let idx = format!("msgs/{i}.idx");
            if let Some(raw) = idx_raw {
                let r = match &k {
                    Some(k) => match k.open_with_key_nonce(&raw) {
                        Ok(p) => {
                            t.opened(&mut e, &idx, k);
                            Ok(p)
                        }
                        Err(a) => {
                            t.corrupt(&mut e, &idx, a.to_string());
                            Err(a.to_string())
                        }
                    },
                    None => t.untried(&mut e, &idx, &kf),
                };
                e.plain.insert(idx, r);
            }
            e.block_keys
                .insert(i, k.ok_or_else(|| format!("{kf} did not open")));
        }
        // consumers
        let consumers: Vec<String> = all
            .iter()
            .filter_map(|n| match layout::classify_path(n) {
                Some(StreamFile::ConsumerMetaInf(c)) => Some(c),
                _ => None,
            })
            .collect();
        for c in consumers {
            let kf = format!("obs/{c}/meta.key");
            let cfg = e.cfg_name.clone();
            let k = t.key(&mut e, &kf, &keys::consumer_context(&cfg, &c));
            t.sealed(&mut e, &format!("obs/{c}/meta.inf"), k.as_ref(), &kf);
            let od = format!("obs/{c}/o.dat");
            if t.read(&od).is_some_and(|b| b.is_empty()) {
                e.plain.insert(od, Ok(Vec::new())); // empty = no state, never sealed
            } else {
                t.sealed(&mut e, &od, k.as_ref(), &kf);
            }
        }
        // meta.sum of the plaintext view
        // (meta.inf, meta.sum, the sum's key: the dir name, "<stream>/<consumer>")
        let mut sums = vec![(
            "meta.inf".to_string(),
            "meta.sum".to_string(),
            dir_name.to_string(),
        )];
        for k in e.plain.keys() {
            if let Some(c) = k
                .strip_prefix("obs/")
                .and_then(|r| r.strip_suffix("/meta.inf"))
            {
                let key = format!("{}/{c}", e.cfg_name);
                sums.push((k.clone(), format!("obs/{c}/meta.sum"), key));
            }
        }
        for (inf, sum, name) in sums {
            let (Some(cipher_inf), Some(stored)) = (t.read(&inf), t.read(&sum)) else {
                continue;
            };
            let Some(Ok(plain)) = e.plain.get(&inf) else {
                // it did not open; the server checks the sum over the ciphertext first
                let want = meta::expected_sum(&name, &cipher_inf);
                if inf == "meta.inf" && stored != want.as_bytes() {
                    e.problems.push(Problem::new(
                        Kind::MetaSumMismatch,
                        Location::stream(account, dir_name).file("meta.sum").at(0),
                        format!("meta.sum does not match the encrypted meta.inf (computed {want} with key SHA-256({dir_name:?})): the server skips this stream at start"),
                    ));
                }
                continue;
            };
            let view = if stored == meta::expected_sum(&name, &cipher_inf).as_bytes() {
                meta::expected_sum(&name, plain).into_bytes()
            } else {
                stored
            };
            e.plain.insert(sum, Ok(view));
        }
        // a plaintext block with no key file is converted by the server, not lost
        for (i, pb) in &mut e.plaintext {
            let kf = format!("msgs/{i}.key");
            let before = t.failed.len();
            t.failed.retain(|(f, why)| !(why == MISSING && *f == kf));
            pb.no_key = t.failed.len() < before;
        }
        let unopened = Unopened::of(&t.failed);
        e.findings(account, dir_name, ring, t.failed);
        if !e.wrong_key {
            e.plaintext_findings(account, dir_name);
        }
        if !e.wrong_key {
            e.unopened = unopened;
        }
        e.inner = inner;
        e
    }

    /// Turn the outcomes into findings.
    fn findings(
        &mut self,
        account: &str,
        dir_name: &str,
        ring: &KeyRing,
        failed: Vec<(String, String)>,
    ) {
        let loc = |f: &str| Location::stream(account, dir_name).file(f);
        let opened_any = self.assets.iter().any(|a| {
            matches!(
                a.outcome,
                Outcome::Key | Outcome::PreviousKey | Outcome::OtherCipher
            )
        });
        if !opened_any && ring.has_key() {
            self.wrong_key = true;
            for a in &mut self.assets {
                a.outcome = Outcome::WrongKey;
            }
            self.problems.push(Problem::new(
                Kind::EncryptedWrongKey,
                loc("meta.key"),
                "no key file of this stream opens with the key given (nor the previous key, with either cipher): the wrong key, or another account's stream; the server skips this stream ('unable to recover keys')",
            ));
            return;
        }
        for (file, why) in failed {
            let (kind, what) = match layout::classify_path(&file) {
                Some(StreamFile::IndexDb) => (
                    Kind::IndexDbCorrupt,
                    format!("index.db does not decrypt ({why}) although the key opens the stream: damaged; the server deletes it and rebuilds the state from the blocks"),
                ),
                Some(StreamFile::BlockIdx(_)) => (
                    Kind::IdxCorrupt,
                    format!("legacy index does not decrypt ({why}) although the key opens its block: damaged; the server rebuilds it from the block (deletes recorded only there are forgotten and those messages come back)"),
                ),
                Some(StreamFile::MetaKey | StreamFile::MetaInf) => (
                    Kind::EncryptedCorrupt,
                    format!("{file} does not open ({why}) although the key opens the rest of the stream: damaged; the server skips this stream ('unable to recover keys')"),
                ),
                Some(StreamFile::BlockKey(_)) => (
                    Kind::EncryptedCorrupt,
                    format!("{file} does not open ({why}) although the key opens the rest of the stream: the server cannot decrypt this block and loses its messages"),
                ),
                _ => (
                    Kind::EncryptedCorrupt,
                    format!("{file} does not open ({why}) although the key opens the rest of the stream: damaged; the server cannot load this consumer"),
                ),
            };
            self.problems.push(Problem::new(kind, loc(&file), what));
        }
        // Keys to convert: one finding per stream, and per consumer under the previous key
        // (nats-server 2.10-2.15 convert a consumer's cipher with the current key only:
        // `consumerFileStore.convertCipher` never tries prev_key).
        let stream_files = |o: &Outcome| -> Vec<&str> {
            self.assets
                .iter()
                .filter(|a| a.outcome == *o && !a.file.starts_with("obs/"))
                .map(|a| a.file.as_str())
                .collect()
        };
        for (o, kind, what) in [
            (
                Outcome::PreviousKey,
                Kind::EncryptedPreviousKey,
                "open only with the previous key: a server with it as prev_key re-encrypts them with the key at start",
            ),
            (
                Outcome::OtherCipher,
                Kind::EncryptedOtherCipher,
                "open only with the other cipher: the server converts them to the configured cipher at start",
            ),
        ] {
            let files = stream_files(&o);
            if files.is_empty() {
                continue;
            }
            let db = if files.contains(&"msgs/index.db") {
                "; index.db is sealed with the stream's old key, which the converted stream no longer has: the server rebuilds the state from the blocks"
            } else {
                ""
            };
            self.problems.push(Problem::new(
                kind,
                loc(files[0]),
                format!("{} file(s) of the stream ({}) {what}{db}", files.len(), files.join(", ")),
            ));
        }
        for a in &self.assets {
            let Some(c) = a
                .file
                .strip_prefix("obs/")
                .and_then(|r| r.strip_suffix("/meta.key"))
            else {
                continue;
            };
            let (kind, what) = match a.outcome {
                Outcome::PreviousKey => (
                    Kind::EncryptedConsumerPreviousKey,
                    format!("consumer {c} opens only with the previous key, and nats-server does not convert consumers on a key rotation: the server does not load it (\"error creating store for consumer: cipher: message authentication failed\"), its files stay as they are; recreate it, or start the server once with this key as key"),
                ),
                Outcome::OtherCipher => (
                    Kind::EncryptedOtherCipher,
                    format!("consumer {c} opens only with the other cipher: the server converts it at start"),
                ),
                _ => continue,
            };
            self.problems.push(Problem::new(kind, loc(&a.file), what));
        }
    }

    /// The report's encryption section: the cipher, the key's fit, every encrypted file (in
    /// file order) with its outcome; blocks as their key files'.
    pub fn report(&self) -> EncryptionReport {
        let mut assets: Vec<EncryptedAsset> = self
            .assets
            .iter()
            .map(|a| EncryptedAsset {
                file: a.file.clone(),
                bytes: self.size(&a.file),
                outcome: a.outcome.as_str().into(),
                cipher: a.cipher.map(String::from),
            })
            .collect();
        // A block's outcome is its key file's: looked up by name, not by a search per block.
        let by_file: HashMap<&str, &Asset> =
            self.assets.iter().map(|a| (a.file.as_str(), a)).collect();
        for f in &self.files {
            if let Some(StreamFile::Block(i)) = layout::classify_path(f) {
                let k = u32::try_from(i).ok().and_then(|i| self.block_key(i).ok());
                let key_asset = by_file.get(format!("msgs/{i}.key").as_str());
                assets.push(EncryptedAsset {
                    file: f.clone(),
                    bytes: self.size(f),
                    outcome: key_asset
                        .map_or(Outcome::KeyFileFailed, |a| a.outcome.clone())
                        .as_str()
                        .into(),
                    cipher: k.map(|k| k.cipher.name().to_string()),
                });
            }
        }
        assets.sort_by(|a, b| a.file.cmp(&b.file));
        EncryptionReport {
            cipher: self.cipher.map(|c| c.name().to_string()),
            key: if self.wrong_key { "wrong" } else { "given" }.into(),
            assets,
        }
    }

    /// A finding per block that holds plaintext records ([`PlainBlock`]).
    fn plaintext_findings(&mut self, account: &str, dir_name: &str) {
        const WHY: &str = "nats-server 2.10.0-2.11.5 write such blocks (fixed in 2.11.6 and 2.12.0): what they wrote to a last block that was empty when they started went to disk unencrypted; a conversion of a plaintext store to encryption that stopped between writing a block's key file and the block leaves one too";
        for (i, pb) in &self.plaintext {
            let blk = format!("msgs/{i}.blk");
            let seqs = match pb.seqs {
                Some((a, b)) if a == b => format!(", seq {a}"),
                Some((a, b)) => format!(", seqs {a}..{b}"),
                None => String::new(),
            };
            let cmp = if pb.compressed { ", compressed" } else { "" };
            let what = format!(
                "{} message record(s){seqs}, {} bytes{cmp}",
                pb.messages, pb.bytes
            );
            let (kind, msg) = if pb.no_key {
                (
                    Kind::BlockPlaintextConverted,
                    format!("{blk} holds {what} in plaintext and has no key file: the server takes it for a plaintext block, encrypts it with a new key (msgs/{i}.key) when it first reads it, and loses nothing ({WHY})"),
                )
            } else {
                let through = match self.block_keys.get(i) {
                    Some(Ok(_)) => format!("decrypted with msgs/{i}.key it is garbage to every release, which loses these messages (and rewrites or removes the block once it reads it)"),
                    _ => format!("its key file msgs/{i}.key does not open either, so the server cannot read it and loses these messages"),
                };
                (
                    Kind::BlockPlaintext,
                    format!("{blk} is not encrypted: it holds {what} in plaintext ({WHY}); {through}. Before starting the server, move msgs/{i}.key out of the stream dir (keep it): with no key file the server encrypts the block with a new key and loses nothing; or `jetdir salvage` writes the messages out"),
                )
            };
            self.problems.push(Problem::new(
                kind,
                Location::stream(account, dir_name).file(&blk),
                msg,
            ));
        }
    }

    /// Blocks whose records can be read as written although the server cannot read them:
    /// plaintext blocks ([`PlainBlock`]) that have a key file.
    pub fn rescued_blocks(&self) -> Vec<u32> {
        self.plaintext
            .iter()
            .filter(|(_, p)| !p.no_key)
            .map(|(i, _)| *i)
            .collect()
    }

    /// A file of the stream as the server reads it: decrypted (a block in its plaintext
    /// view; `Ok(None)` when there is no such file).
    pub fn read_file(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        StreamSource::read(self, rel)
    }

    /// How the server reads block `i`: through its key (`Ok(Some)`), as it is (`Ok(None)`:
    /// a plaintext block without a key file, which the server converts), or not at all.
    pub fn block_view(&self, i: u32) -> Result<Option<&AssetKey>, &str> {
        if self.plaintext.get(&i).is_some_and(|p| p.no_key) {
            return Ok(None);
        }
        self.block_key(i).map(Some)
    }

    /// The key of block `i`, or why there is none.
    pub fn block_key(&self, i: u32) -> Result<&AssetKey, &str> {
        match self.block_keys.get(&i) {
            Some(Ok(k)) => Ok(k),
            Some(Err(e)) => Err(e),
            None => Err("the block has no key file"),
        }
    }

    /// The size of every file of the stream (key files included).
    pub fn sizes(&self) -> &BTreeMap<String, u64> {
        &self.sizes
    }

    /// The size of a file of the stream (0 when there is none).
    pub fn size(&self, rel: &str) -> u64 {
        self.sizes.get(rel).copied().unwrap_or(0)
    }
}

impl StreamSource for EncryptedDir {
    fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        if let Some(r) = self.plain.get(rel) {
            return r
                .clone()
                .map(Some)
                .map_err(|e| invalid(format!("does not decrypt: {e}")));
        }
        match layout::classify_path(rel) {
            Some(StreamFile::MetaKey | StreamFile::BlockKey(_) | StreamFile::ConsumerKey(_)) => {
                Ok(None)
            }
            Some(StreamFile::Block(i)) => {
                let Some(mut b) = self.inner.read(rel)? else {
                    return Ok(None);
                };
                let i = u32::try_from(i).map_err(|_| invalid("block number".into()))?;
                // (none: a plaintext block the server converts, read as it is)
                if let Some(k) = self.block_view(i).map_err(|e| invalid(e.to_string()))? {
                    k.xor_block(0, &mut b);
                }
                Ok(Some(b))
            }
            _ => self.inner.read(rel),
        }
    }
    fn files(&self) -> Vec<String> {
        self.files.clone()
    }
    fn can_refetch(&self, rel: &str) -> bool {
        // told without reading (the default reads, and a block would be decrypted whole)
        match layout::classify_path(rel) {
            Some(StreamFile::Block(i)) => {
                u32::try_from(i).is_ok_and(|i| self.block_view(i).is_ok())
                    && self.inner.can_refetch(rel)
            }
            _ => matches!(self.read(rel), Ok(Some(_))),
        }
    }
    fn stored_tail(&self, rel: &str, n: usize) -> io::Result<Option<Vec<u8>>> {
        self.inner.tail(rel, n)
    }
    fn tail(&self, rel: &str, n: usize) -> io::Result<Option<Vec<u8>>> {
        let Some(Ok(i)) = layout::classify_path(rel)
            .and_then(|f| f.block())
            .map(Ok::<u32, ()>)
        else {
            return Ok(self
                .read(rel)?
                .map(|b| b[b.len().saturating_sub(n)..].to_vec()));
        };
        let Some(mut t) = self.inner.tail(rel, n)? else {
            return Ok(None);
        };
        let len = self.size(rel);
        if let Some(k) = self.block_view(i).map_err(|e| invalid(e.to_string()))? {
            k.xor_block(len.saturating_sub(t.len() as u64), &mut t);
        }
        Ok(Some(t))
    }
    fn fetch(&self, rel: &str, loc: Location, problems: &mut Vec<Problem>) -> FileRead {
        match self.plain.get(rel) {
            // reported once, by `open`
            Some(Err(_)) => FileRead::Unreadable,
            _ => match self.read(rel) {
                Ok(Some(b)) => FileRead::Bytes(b),
                Ok(None) => FileRead::Absent,
                Err(e) => {
                    problems.push(Problem::new(
                        Kind::IoError,
                        loc,
                        format!("{rel} exists but cannot be read: {e}"),
                    ));
                    FileRead::Unreadable
                }
            },
        }
    }
    fn cmp_reader(&self) -> crate::filestore::block::CmpReader {
        self.inner.cmp_reader()
    }
    fn set_cmp_reader(&self, rd: crate::filestore::block::CmpReader) {
        self.inner.set_cmp_reader(rd);
    }
    fn unopened(&self) -> Option<&Unopened> {
        Some(&self.unopened)
    }
    fn open_findings(&self) -> &[Problem] {
        &self.problems
    }
    fn rescued_blocks(&self) -> Vec<u32> {
        EncryptedDir::rescued_blocks(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filestore::keys::ServerKey;
    use crate::testdata;

    fn ring() -> KeyRing {
        KeyRing {
            key: Some(ServerKey::new("jetdir-sample-key-0123456789abcdef")),
            ..Default::default()
        }
    }

    /// Read every file of the plaintext view (and the blocks' tails).
    fn read_all(e: &EncryptedDir) {
        let mut problems = Vec::new();
        for f in e.files() {
            let _ = e.read(&f);
            let _ = e.tail(&f, 8);
            let _ = e.fetch(&f, Location::default(), &mut problems);
            let _ = e.fetch_block(&f, Location::default(), &mut problems);
        }
        let _ = e.report();
    }

    #[test]
    fn the_plaintext_view_is_a_plain_stream() {
        for (sample, stream) in [
            ("v2.15.1-enc-chacha", "SECRET"),
            ("v2.15.1-enc-aes", "ENCCMP"),
            ("v2.9.10-enc-chacha", "SECRET"),
        ] {
            let t = testdata::sample(sample);
            let d = testdata::stream_dir(&t, sample, stream);
            let e = EncryptedDir::open(&d, "$G", stream, &ring());
            assert!(e.problems.is_empty(), "{sample}: {:?}", e.problems);
            assert!(!e.files().iter().any(|f| f.ends_with(".key")));
            let inf = e.read("meta.inf").unwrap().unwrap();
            let sum = e.read("meta.sum").unwrap().unwrap();
            assert_eq!(sum, meta::expected_sum(stream, &inf).into_bytes());
            if let Some(db) = e.read("msgs/index.db").unwrap() {
                assert!(index_db::trailer_ok(&db, stream));
                let (body, _) = index_db::split_trailer(&db).unwrap();
                index_db::parse(body).unwrap();
            }
            let blk = e.read("msgs/1.blk").unwrap().unwrap();
            let tail = e.tail("msgs/1.blk", 8).unwrap().unwrap();
            assert_eq!(&blk[blk.len() - 8..], &tail[..]);
            let (plain, _) = crate::filestore::block::plain_block(&blk).unwrap();
            assert!(crate::filestore::block::Records::new(&plain).all(|r| r.is_ok()));
        }
    }

    /// A block written in plaintext into an encrypted stream ([`PlainBlock`], what
    /// nats-server 2.10.0-2.11.5 leave on disk) is told apart from ciphertext, compressed or
    /// not: with its key file the server's view of it is garbage, and forensics reads it as
    /// written; without one the server converts it, so it reads as it is and nothing is lost.
    #[test]
    fn a_block_written_in_plaintext_is_found() {
        for (sample, stream) in [
            ("v2.15.1-enc-chacha", "SECRET"),
            ("v2.15.1-enc-aes", "ENCCMP"),
        ] {
            let t = testdata::sample(sample);
            let d = testdata::stream_dir(&t, sample, stream);
            let e = EncryptedDir::open(&d, "$G", stream, &ring());
            assert!(
                e.plaintext.is_empty() && e.rescued_blocks().is_empty(),
                "{sample}"
            );
            let plain = e.read("msgs/1.blk").unwrap().unwrap();
            let cmp = crate::filestore::block::is_cmp_block(&plain);
            std::fs::write(d.join("msgs/1.blk"), &plain).unwrap();
            let e = EncryptedDir::open(&d, "$G", stream, &ring());
            let pb = e
                .plaintext
                .get(&1)
                .unwrap_or_else(|| panic!("{sample}: not found"));
            assert!(pb.messages > 0 && !pb.no_key, "{sample}: {pb:?}");
            assert_eq!(pb.compressed, cmp, "{sample}");
            assert_eq!(e.rescued_blocks(), vec![1]);
            let kinds: Vec<Kind> = e.problems.iter().map(|p| p.kind).collect();
            assert_eq!(kinds, vec![Kind::BlockPlaintext], "{sample}");
            assert_ne!(e.read("msgs/1.blk").unwrap().unwrap(), plain, "{sample}");
            assert!(matches!(e.block_view(1), Ok(Some(_))));

            std::fs::remove_file(d.join("msgs/1.key")).unwrap();
            let e = EncryptedDir::open(&d, "$G", stream, &ring());
            assert!(e.plaintext[&1].no_key, "{sample}");
            assert!(e.rescued_blocks().is_empty());
            assert!(!e.unopened.any_block(), "{sample}: {:?}", e.unopened);
            let kinds: Vec<Kind> = e.problems.iter().map(|p| p.kind).collect();
            assert_eq!(kinds, vec![Kind::BlockPlaintextConverted], "{sample}");
            assert_eq!(e.read("msgs/1.blk").unwrap().unwrap(), plain, "{sample}");
            assert!(matches!(e.block_view(1), Ok(None)));
            assert!(e.can_refetch("msgs/1.blk"));
        }
    }

    /// Truncated, emptied and flipped files of an encrypted stream never panic.
    #[test]
    fn damaged_files_never_panic() {
        for sample in ["v2.15.1-enc-aes", "v2.9.10-enc-chacha"] {
            let t = testdata::sample(sample);
            let d = testdata::stream_dir(&t, sample, "SECRET");
            let files = DirSource::new(d.clone()).files();
            for f in &files {
                let p = d.join(f);
                let orig = std::fs::read(&p).unwrap();
                let mut variants: Vec<Vec<u8>> = [0, 1, 15, 16, 24, 40, 63, 64, 71, 72]
                    .iter()
                    .filter(|&&n| n < orig.len())
                    .map(|&n| orig[..n].to_vec())
                    .collect();
                for i in [0, orig.len() / 2, orig.len().saturating_sub(1)] {
                    let mut v = orig.clone();
                    if let Some(b) = v.get_mut(i) {
                        *b ^= 0xff;
                    }
                    variants.push(v);
                }
                for v in variants {
                    std::fs::write(&p, &v).unwrap();
                    read_all(&EncryptedDir::open(&d, "$G", "SECRET", &ring()));
                }
                std::fs::write(&p, &orig).unwrap();
            }
        }
    }
}
