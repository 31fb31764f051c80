//! The on-disk file store: one parser (and encoder) per artefact of a stream directory.
pub(crate) mod aux_state;
pub(crate) mod block;
pub mod config_fields;
pub(crate) mod consumer_group;
pub(crate) mod consumer_state;
pub(crate) mod discover;
pub mod encrypted;
pub(crate) mod index_db;
pub mod keys;
pub(crate) mod layout;
pub(crate) mod legacy;
pub(crate) mod meta;
pub(crate) mod meta_assign;
pub(crate) mod raft;
pub(crate) mod running;
pub(crate) mod seqset;
pub(crate) mod source;
pub(crate) mod stream_group;

/// The newest index.db version jetdir reads (`jetdir --version` names it).
pub use index_db::MAX_VERSION as INDEX_DB_MAX_VERSION;
/// `meta.sum` for a stream or consumer's `meta.inf` (see [`meta`]).
pub use meta::expected_sum;
