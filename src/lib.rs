//! jetdir: offline reader and verifier for NATS JetStream file stores and backups.
//!
//! One module per on-disk artefact (`block`, `index_db`, `legacy`, `consumer_state`, `meta`,
//! `aux_files`, `s2`), the verifier that combines them (`scan`, `verify`), and the thin
//! output layer the CLI uses (`output`, `progress`).
pub mod archive;
pub mod aux_files;
pub mod avl;
pub mod block;
pub mod bytes;
pub mod consumer_state;
pub mod extract;
pub mod hash;
pub mod index_db;
pub mod layout;
pub mod legacy;
pub mod manifest;
pub mod messages;
pub mod meta;
pub mod output;
pub mod pack;
pub mod problem;
pub mod progress;
pub mod running;
pub mod s2;
pub mod s2enc;
pub mod s2par;
pub mod scan;
#[cfg(test)]
mod testdata;
pub mod verify;
