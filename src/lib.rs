//! jetdir: offline reader, verifier and backup tool for NATS JetStream file stores.
//!
//! The library is arranged in layers, each a folder whose module doc states its charter;
//! a layer imports only the layers below it (`tests/layers.rs` checks this):
//!
//! | layer | what it holds |
//! |---|---|
//! | [`ops`] | commands that write: extract a backup into a store, pack a stream into a backup |
//! | [`forensics`] | reading messages as the server would serve them: dump, KV and object-store buckets |
//! | [`check`] | every judgement: findings with severities; entry point [`check::verify_path`] |
//! | `state` | what the server computes from a stream's files (prelude, block scans, totals) |
//! | [`backup`] | backup formats: detection, tar walking, NATSARC1, backup.json, manifest |
//! | [`filestore`] | one module per on-disk artefact of a stream directory |
//! | [`s2`] | the S2 codec (knows nothing of NATS) |
//! | [`base`] | bytes, hashing, time, the finding type and the report types |
//!
//! The command-line binary (argument parsing, human rendering, the progress bar) lives in
//! `src/main.rs` and `src/cli/` and is not part of the library.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backup;
pub mod base;
pub mod check;
pub mod filestore;
pub mod forensics;
/// Entry points of the fuzz targets (`fuzz/`); not part of the API.
#[doc(hidden)]
pub mod fuzzing;
pub mod ops;
pub mod s2;
pub(crate) mod state;
#[cfg(test)]
mod testdata;
