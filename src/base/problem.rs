//! One finding type shared by every checker: human output, JSON and exit codes all come from here.
use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The server repairs it without losing acknowledged data.
    Warning,
    /// The server loses or refuses data, or the input is inconsistent.
    Error,
}

/// Declares [`Kind`]: each variant with its stable identifier and its severity, in one table.
macro_rules! kinds {
    ($($v:ident = $s:literal, $sev:ident;)*) => {
        /// What a finding is about: the stable identifier of the JSON contract
        /// (`problems[].kind`, the snake_case name in each variant's doc). The kind decides the
        /// finding's severity ([`Kind::severity`]) and whether it means "could not run"
        /// ([`Kind::is_fatal`], exit code 2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $(#[doc = concat!("`", $s, "`")] $v,)*
        }
        impl Kind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$v,)*];
            /// The stable identifier (`record_checksum`, …).
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$v => $s,)* }
            }
            /// The kind of a stable identifier.
            pub fn from_id(id: &str) -> Option<Kind> {
                match id { $($s => Some(Kind::$v),)* _ => None }
            }
            /// The severity every finding of this kind has.
            pub fn severity(self) -> Severity {
                match self { $(Kind::$v => Severity::$sev,)* }
            }
        }
    };
}

kinds! {
    // Stream metadata (meta.inf, meta.sum)
    MetaCorrupt = "meta_corrupt", Error;
    MetaMissing = "meta_missing", Error;
    MetaNameMismatch = "meta_name_mismatch", Error;
    MetaSumMismatch = "meta_sum_mismatch", Error;
    MetaSumMissing = "meta_sum_missing", Error;
    // Stream and consumer configs against the server release that loads them
    ConfigApiLevel = "config_api_level", Error;
    ConfigApiLevelIgnored = "config_api_level_ignored", Warning;
    ConfigUnknownField = "config_unknown_field", Error;
    ConfigUnknownFieldIgnored = "config_unknown_field_ignored", Warning;
    // Message blocks and records
    BlockDecompress = "block_decompress", Error;
    BlockShort = "block_short", Error;
    SubjectOutsideStream = "subject_outside_stream", Warning;
    BlockTooLarge = "block_too_large", Error;
    RecordChecksum = "record_checksum", Error;
    RecordContent = "record_content", Error;
    RecordFraming = "record_framing", Error;
    RecordTimestamp = "record_timestamp", Error;
    TornTail = "torn_tail", Warning;
    ZeroedTail = "zeroed_tail", Error;
    SeqOrder = "seq_order", Error;
    SeqOrderAcrossBlocks = "seq_order_across_blocks", Error;
    SubjectNotUtf8 = "subject_not_utf8", Warning;
    // What the load does (the load model)
    LimitsAtLoad = "limits_at_load", Warning;
    SubjectsOverlap = "subjects_overlap", Error;
    TimestampBackwards = "timestamp_backwards", Warning;
    // index.db
    IndexDbChecksum = "index_db_checksum", Warning;
    IndexDbCorrupt = "index_db_corrupt", Warning;
    IndexDbMismatch = "index_db_mismatch", Error;
    FormatTooNew = "format_too_new", Error;
    IndexDbMissingBlock = "index_db_missing_block", Error;
    IndexDbStale = "index_db_stale", Warning;
    // Legacy .idx/.fss (2.9)
    FssChecksum = "fss_checksum", Error;
    FssCorrupt = "fss_corrupt", Error;
    FssMismatch = "fss_mismatch", Warning;
    FssStale = "fss_stale", Warning;
    IdxCorrupt = "idx_corrupt", Warning;
    IdxInconsistent = "idx_inconsistent", Warning;
    IdxMismatch = "idx_mismatch", Error;
    IdxMissing = "idx_missing", Warning;
    IdxStale = "idx_stale", Warning;
    // Consumers
    ConsumerAckFloor = "consumer_ack_floor", Error;
    ConsumerMetaCorrupt = "consumer_meta_corrupt", Error;
    ConsumerMetaMissing = "consumer_meta_missing", Error;
    ConsumerMetaSumMismatch = "consumer_meta_sum_mismatch", Warning;
    ConsumerMetaSumMissing = "consumer_meta_sum_missing", Error;
    ConsumerPastStream = "consumer_past_stream", Error;
    ConsumerFloorMoved = "consumer_floor_moved", Warning;
    ConsumerPendingRange = "consumer_pending_range", Error;
    ConsumerStateCorrupt = "consumer_state_corrupt", Error;
    // Auxiliary state (thw.db, sched.db, sources.db)
    AuxFileAhead = "aux_file_ahead", Warning;
    AuxFileCorrupt = "aux_file_corrupt", Warning;
    AuxFileStopsServer = "aux_file_stops_server", Error;
    // Files of a stream dir
    LeftoverBatch = "leftover_batch", Warning;
    LeftoverProbe = "leftover_probe", Warning;
    LeftoverPurge = "leftover_purge", Warning;
    LeftoverTmp = "leftover_tmp", Warning;
    UnknownFile = "unknown_file", Warning;
    // Backups: detection, tar and S2
    ArchiveCorrupt = "archive_corrupt", Error;
    ArchiveHostileMember = "archive_hostile_member", Error;
    ArchiveMissing = "archive_missing", Error;
    ArchiveMissingMember = "archive_missing_member", Error;
    ArchiveTrailingData = "archive_trailing_data", Warning;
    ArchiveTruncated = "archive_truncated", Error;
    ArchiveUnrecognised = "archive_unrecognised", Error;
    S2Corrupt = "s2_corrupt", Error;
    S2Truncated = "s2_truncated", Error;
    // backup.json and errors.txt
    BackupErrorsTxt = "backup_errors_txt", Error;
    BackupJsonConfigDiffers = "backup_json_config_differs", Warning;
    BackupJsonEmpty = "backup_json_empty", Error;
    BackupJsonInvalid = "backup_json_invalid", Error;
    BackupJsonMismatch = "backup_json_mismatch", Error;
    BackupJsonMissing = "backup_json_missing", Error;
    BackupJsonStateGrew = "backup_json_state_grew", Warning;
    BackupJsonTooLarge = "backup_json_too_large", Error;
    BackupJsonTruncated = "backup_json_truncated", Error;
    BackupJsonUnreadable = "backup_json_unreadable", Error;
    // V2 (NATSARC1) archives
    V2BadHeader = "v2_bad_header", Error;
    V2BadMagic = "v2_bad_magic", Error;
    V2BadSentinel = "v2_bad_sentinel", Error;
    V2BadSubject = "v2_bad_subject", Error;
    V2Bytes = "v2_bytes", Error;
    V2ConsumerCount = "v2_consumer_count", Error;
    V2ConsumerDuplicate = "v2_consumer_duplicate", Error;
    V2ConsumerJson = "v2_consumer_json", Error;
    V2ConsumerState = "v2_consumer_state", Error;
    V2Corrupt = "v2_corrupt", Error;
    V2EntryTooLarge = "v2_entry_too_large", Error;
    V2FirstSeq = "v2_first_seq", Error;
    V2MessageCount = "v2_message_count", Error;
    V2MissingSentinel = "v2_missing_sentinel", Error;
    V2MsgTooLarge = "v2_msg_too_large", Error;
    V2Order = "v2_order", Error;
    V2SeqMissing = "v2_seq_missing", Error;
    V2SeqNotAscending = "v2_seq_not_ascending", Error;
    V2SeqOutOfRange = "v2_seq_out_of_range", Error;
    V2StateJson = "v2_state_json", Error;
    V2TrailingData = "v2_trailing_data", Warning;
    V2Truncated = "v2_truncated", Error;
    // Pack manifest
    ManifestBadPath = "manifest_bad_path", Error;
    ManifestChecksum = "manifest_checksum", Error;
    ManifestExtraFile = "manifest_extra_file", Warning;
    ManifestFileMismatch = "manifest_file_mismatch", Error;
    ManifestFileMissing = "manifest_file_missing", Error;
    ManifestUnreadable = "manifest_unreadable", Error;
    // Extract
    ExtractConsumerSkipped = "extract_consumer_skipped", Error;
    ExtractErrorsTxt = "extract_errors_txt", Warning;
    ExtractLimit = "extract_limit", Error;
    // Running, keys, I/O
    EncryptedKeyNeeded = "encrypted_key_needed", Error;
    EncryptedWrongKey = "encrypted_wrong_key", Error;
    EncryptedCorrupt = "encrypted_corrupt", Error;
    BlockPlaintext = "block_plaintext", Error;
    BlockPlaintextConverted = "block_plaintext_converted", Warning;
    EncryptedPreviousKey = "encrypted_previous_key", Warning;
    EncryptedOtherCipher = "encrypted_other_cipher", Warning;
    EncryptedConsumerPreviousKey = "encrypted_consumer_previous_key", Error;
    IoError = "io_error", Error;
    StoreInUse = "store_in_use", Warning;
    // Clustered nodes: raft groups under $SYS/_js_ and the meta assignments
    ClusterOrphanConsumer = "cluster_orphan_consumer", Error;
    ClusterOrphanStream = "cluster_orphan_stream", Error;
    ClusterConsumerLogAhead = "cluster_consumer_log_ahead", Warning;
    ClusterStreamLogAhead = "cluster_stream_log_ahead", Warning;
    RaftChecksum = "raft_checksum", Error;
    RaftFileCorrupt = "raft_file_corrupt", Error;
    RaftMetaUndecodable = "raft_meta_undecodable", Error;
    RaftWalDamaged = "raft_wal_damaged", Error;
}

impl Kind {
    /// Kinds that mean "could not run" (exit code 2) rather than "damaged input".
    pub fn is_fatal(self) -> bool {
        matches!(self, Kind::EncryptedKeyNeeded | Kind::EncryptedWrongKey)
    }
    /// Findings about `msgs/index.db`.
    pub fn is_index_db(self) -> bool {
        matches!(
            self,
            Kind::IndexDbChecksum
                | Kind::IndexDbCorrupt
                | Kind::IndexDbMismatch
                | Kind::IndexDbMissingBlock
                | Kind::IndexDbStale
        )
    }
    /// The kind with this identifier.
    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Where a problem is. Every field is optional; absent ones print as JSON null.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Account directory.
    pub account: Option<String>,
    /// Stream directory.
    pub stream: Option<String>,
    /// Consumer name, for consumer findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Path relative to the stream dir (e.g. `msgs/12.blk`), or `archive:member` inside archives.
    pub file: Option<String>,
    /// Byte offset in the file (in the decoded archive for archive members).
    pub offset: Option<u64>,
    /// First (or only) sequence concerned.
    pub seq: Option<u64>,
    /// Last sequence of a range, when the problem covers one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_end: Option<u64>,
}

/// One finding: what it is, where, and what the server does about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error (data lost, refused or wrong) or warning (the server repairs it).
    pub severity: Severity,
    /// Stable machine-readable kind, e.g. `record_checksum`, `meta_sum_mismatch`.
    pub kind: Kind,
    /// Where it is.
    #[serde(flatten)]
    pub loc: Location,
    /// For people: what is wrong and what the server does about it.
    pub message: String,
}

impl Problem {
    /// A finding of `kind` at `loc`; its severity is the kind's.
    pub fn new(kind: Kind, loc: Location, message: impl Into<String>) -> Self {
        Problem {
            severity: kind.severity(),
            kind,
            loc,
            message: message.into(),
        }
    }
}

impl Location {
    /// In `stream` of `account`.
    pub fn stream(account: &str, stream: &str) -> Self {
        Location {
            account: Some(account.into()),
            stream: Some(stream.into()),
            ..Default::default()
        }
    }
    /// In this file (relative to the stream dir).
    pub fn file(mut self, f: impl Into<String>) -> Self {
        self.file = Some(f.into());
        self
    }
    /// At this byte offset.
    pub fn at(mut self, off: u64) -> Self {
        self.offset = Some(off);
        self
    }
    /// About this sequence.
    pub fn seq(mut self, s: u64) -> Self {
        self.seq = Some(s);
        self
    }
    /// About the sequences `first..=last`.
    pub fn seqs(mut self, first: u64, last: u64) -> Self {
        self.seq = Some(first);
        if last != first {
            self.seq_end = Some(last);
        }
        self
    }
    /// About this consumer.
    pub fn consumer(mut self, c: impl Into<String>) -> Self {
        self.consumer = Some(c.into());
        self
    }
}

/// Findings kept per kind in a report: the rest are counted ([`cap_per_kind`]). A damaged
/// archive or store can produce one finding per message; a report of millions of lines helps
/// nobody and would cost memory in proportion.
pub const MAX_PER_KIND: u64 = 100;

/// Keeps the first [`MAX_PER_KIND`] findings of each kind (in the current order) and adds the
/// number of the others to `suppressed` (per kind identifier).
pub fn cap_per_kind(
    problems: &mut Vec<Problem>,
    suppressed: &mut std::collections::BTreeMap<String, u64>,
) {
    let mut seen: std::collections::HashMap<Kind, u64> = std::collections::HashMap::new();
    problems.retain(|p| {
        let n = seen.entry(p.kind).or_insert(0);
        *n += 1;
        if *n > MAX_PER_KIND {
            *suppressed.entry(p.kind.as_str().to_string()).or_insert(0) += 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn a_million_findings_keep_100_per_kind_and_count_the_rest() {
        let mut v: Vec<Problem> = (0..1_000_000u64)
            .map(|i| {
                let k = if i % 2 == 0 {
                    Kind::V2SeqOutOfRange
                } else {
                    Kind::TornTail
                };
                Problem::new(k, Location::default(), format!("#{i}"))
            })
            .collect();
        v.push(Problem::new(Kind::IoError, Location::default(), "one"));
        let mut sup = std::collections::BTreeMap::new();
        cap_per_kind(&mut v, &mut sup);
        assert_eq!(v.len(), 201);
        assert_eq!(sup.get("v2_seq_out_of_range"), Some(&499_900));
        assert_eq!(sup.get("torn_tail"), Some(&499_900));
        assert_eq!(sup.get("io_error"), None);
        assert_eq!(v[0].message, "#0"); // the first ones are kept, in order
    }
}
