//! Everything about one stream known before its blocks are scanned: meta.inf, index.db or the
//! legacy .idx/.fss, the delete map, and the list of blocks.
use crate::base::problem::{Kind, Location, Problem};
use crate::base::release::Release;
use crate::filestore::config_fields::{self, ConfigDoc};
use crate::filestore::index_db::{self, IndexDb};
use crate::filestore::layout::{self, StreamFile};
use crate::filestore::legacy::{self, LegacyFss, LegacyIdx};
use crate::filestore::meta::{self, MetaInf};
use crate::filestore::source::{FileRead, StreamSource};
use crate::state::scan::DeadSet;
use std::collections::BTreeMap;

/// Everything about one stream that is known before blocks are scanned.
pub struct Prelude {
    pub account: String,
    pub dir_name: String,
    /// Name used for record/index keys (cfg.Name; the dir name when meta.inf is unreadable).
    pub cfg_name: String,
    pub meta: Option<MetaInf>,
    pub index_db: Option<IndexDb>,
    pub idx: BTreeMap<u32, LegacyIdx>,
    pub fss: BTreeMap<u32, LegacyFss>,
    pub dead: DeadSet,
    pub encrypted: bool,
    pub problems: Vec<Problem>,
    pub files: Vec<String>,
    pub blocks: Vec<u32>,
    /// The release configs are checked against, when the caller named one.
    pub release: Option<Release>,
    /// What of an encrypted stream does not open with the key that opens the rest.
    pub unopened: crate::filestore::encrypted::Unopened,
    /// The release marks the stream offline for its config (an unknown field, or an API level
    /// above its own: 2.11.9+, [`config_fields::ConfigCheck::offline`]): listed, not loaded,
    /// its files left as they are.
    pub offline: bool,
}

impl Prelude {
    pub(crate) fn loc(&self) -> Location {
        Location::stream(&self.account, &self.dir_name)
    }
}

/// Read meta, index.db / .idx / .fss, and list the blocks.
pub fn prelude(src: &dyn StreamSource, account: &str, dir_name: &str, prefix: &str) -> Prelude {
    prelude_for(src, account, dir_name, prefix, None)
}

/// [`prelude`], checking meta.inf's config against `release` (`None`: the one it records,
/// else the newest known; see [`config_fields::target_release`]).
pub fn prelude_for(
    src: &dyn StreamSource,
    account: &str,
    dir_name: &str,
    prefix: &str,
    release: Option<&Release>,
) -> Prelude {
    let files = src.files();
    let mut p = Prelude {
        account: account.to_string(),
        dir_name: dir_name.to_string(),
        cfg_name: dir_name.to_string(),
        meta: None,
        index_db: None,
        idx: BTreeMap::new(),
        fss: BTreeMap::new(),
        dead: DeadSet::default(),
        encrypted: false,
        problems: Vec::new(),
        files: files.clone(),
        blocks: Vec::new(),
        release: release.cloned(),
        unopened: src.unopened().cloned().unwrap_or_default(),
        offline: false,
    };
    p.problems.extend(src.open_findings().iter().cloned());
    let f = |n: &str| format!("{prefix}{n}");
    p.encrypted = files
        .iter()
        .any(|n| n == "meta.key" || (n.starts_with("msgs/") && n.ends_with(".key")));
    // meta.inf / meta.sum
    match src.fetch("meta.inf", p.loc().file(f("meta.inf")), &mut p.problems) {
        FileRead::Unreadable => {}
        FileRead::Absent => p.problems.push(Problem::new(
            Kind::MetaMissing,
            p.loc().file(f("meta.inf")),
            "meta.inf is missing: the server skips this stream ('Missing stream metafile')",
        )),
        FileRead::Bytes(raw) => {
            match src.fetch("meta.sum", p.loc().file(f("meta.sum")), &mut p.problems) {
                FileRead::Unreadable => {}
                FileRead::Absent => p.problems.push(Problem::new(
                    Kind::MetaSumMissing,
                    p.loc().file(f("meta.sum")),
                    "meta.sum is missing: the server skips this stream ('Missing stream checksum file')",
                )),
                FileRead::Bytes(sum) => {
                    let want = meta::expected_sum(dir_name, &raw);
                    if sum != want.as_bytes() {
                        p.problems.push(Problem::new(
                            Kind::MetaSumMismatch,
                            p.loc().file(f("meta.sum")).at(0),
                            format!(
                                "meta.sum {:?} does not match meta.inf (computed {want} with key SHA-256({dir_name:?})): the server skips this stream at start",
                                String::from_utf8_lossy(&sum)
                            ),
                        ));
                    }
                }
            }
            if p.encrypted {
                p.problems.push(Problem::new(
                    Kind::EncryptedKeyNeeded,
                    p.loc().file(f("meta.key")),
                    "stream is encrypted at rest: key needed (--key-file FILE or JETDIR_KEY with the server's JetStream key)",
                ));
                return p;
            }
            match MetaInf::parse(&raw) {
                Ok(m) => {
                    match m.name() {
                        Some(n) if n != dir_name => p.problems.push(Problem::new(
                            Kind::MetaNameMismatch,
                            p.loc().file(f("meta.inf")),
                            format!("meta.inf names the stream {n:?} but its directory is {dir_name:?}: record checksums are keyed by the config name"),
                        )),
                        None => p.problems.push(Problem::new(Kind::MetaCorrupt, p.loc().file(f("meta.inf")), "meta.inf has no \"name\"")),
                        _ => {}
                    }
                    if let Some(n) = m.name() {
                        p.cfg_name = n.to_string();
                    }
                    let c = config_fields::check_config(&m.json, ConfigDoc::StreamMeta, release);
                    p.offline = c.offline();
                    let loc = p.loc().file(f("meta.inf"));
                    p.problems
                        .extend(config_fields::problems(&c, "meta.inf", &loc));
                    p.meta = Some(m);
                }
                Err(e) => p.problems.push(Problem::new(
                    Kind::MetaCorrupt,
                    p.loc().file(f("meta.inf")),
                    format!("meta.inf: {e}"),
                )),
            }
        }
    }
    // blocks
    p.blocks = files
        .iter()
        .filter_map(|n| match layout::classify_path(n) {
            Some(f @ StreamFile::Block(_)) => f.block(),
            _ => None,
        })
        .collect();
    p.blocks.sort_unstable();
    // index.db
    let loc = p.loc().file(f("msgs/index.db"));
    if let FileRead::Bytes(raw) = src.fetch("msgs/index.db", loc, &mut p.problems) {
        read_index_db(&mut p, &raw, &f("msgs/index.db"));
    }
    // legacy .idx / .fss
    for n in &files {
        let file = layout::classify_path(n);
        let i = file.as_ref().and_then(StreamFile::block);
        if let (Some(StreamFile::BlockIdx(_)), Some(i)) = (&file, i) {
            let loc = p.loc().file(f(n));
            let parsed = match src.fetch(n, loc, &mut p.problems) {
                FileRead::Bytes(b) => Some(legacy::parse_idx(&b)),
                FileRead::Absent | FileRead::Unreadable => None,
            };
            match parsed {
                Some(Ok(x)) => {
                    p.idx.insert(i, x);
                }
                Some(Err(e)) => p.problems.push(Problem::new(
                    Kind::IdxCorrupt,
                    p.loc().file(f(n)).at(e.offset() as u64),
                    format!("legacy index: {e}; the server rebuilds it from the block (deletes recorded only there are forgotten and those messages come back)"),
                )),
                None => {}
            }
        } else if let (Some(StreamFile::BlockFss(_)), Some(i)) = (&file, i) {
            let loc = p.loc().file(f(n));
            let parsed = match src.fetch(n, loc, &mut p.problems) {
                FileRead::Bytes(b) => Some(legacy::parse_fss(&b, &p.cfg_name, i)),
                FileRead::Absent | FileRead::Unreadable => None,
            };
            match parsed {
                Some(Ok(x)) => {
                    if !x.hash_ok {
                        p.problems.push(Problem::new(
                            Kind::FssChecksum,
                            p.loc().file(f(n)),
                            "per-subject state checksum mismatch; the server regenerates it from the block",
                        ));
                    }
                    p.fss.insert(i, x);
                }
                Some(Err(e)) => p.problems.push(Problem::new(
                    Kind::FssCorrupt,
                    p.loc().file(f(n)).at(e.offset() as u64),
                    format!("legacy per-subject state: {e}"),
                )),
                None => {}
            }
        }
    }
    // dead set from index files
    if let Some(db) = &p.index_db {
        p.dead.stream_floor = db.first_seq;
        for b in &db.blocks {
            p.dead.block_floor.insert(b.index, b.first_seq);
            p.dead.seqs.extend(b.deleted.iter().copied());
        }
    }
    // an .idx whose counts do not add up is not read at all: 2.9 rebuilds the block from its
    // records and forgets the deletes it listed (fidelity F7: 9 messages, not 8)
    for (i, x) in p.idx.iter().filter(|(_, x)| x.consistent()) {
        p.dead.block_floor.entry(*i).or_insert(x.first_seq);
        p.dead.seqs.extend(x.deleted.iter().copied());
    }
    p
}

fn read_index_db(p: &mut Prelude, raw: &[u8], file: &str) {
    let (body, _) = match index_db::split_trailer(raw) {
        Ok(x) => x,
        Err(e) => {
            p.problems.push(Problem::new(
                Kind::IndexDbCorrupt,
                p.loc().file(file).at(e.offset() as u64),
                format!("index.db: {e}; the server deletes it and rebuilds from the blocks"),
            ));
            return;
        }
    };
    if !index_db::trailer_ok(raw, &p.cfg_name) {
        p.problems.push(Problem::new(
            Kind::IndexDbChecksum,
            p.loc().file(file).at(body.len() as u64),
            "index.db checksum mismatch; the server deletes it and rebuilds the state from every block",
        ));
        return;
    }
    match index_db::parse(body) {
        Ok(db) => p.index_db = Some(db),
        Err(e) => p.problems.push(Problem::new(
            Kind::IndexDbCorrupt,
            p.loc().file(file).at(e.offset() as u64),
            format!("index.db: {e}; the server deletes it and rebuilds from the blocks"),
        )),
    }
}
