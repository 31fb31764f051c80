//! jetdir: offline reader and verifier for NATS JetStream file stores and backups.
pub mod archive;
pub mod aux_files;
pub mod avl;
pub mod block;
pub mod bytes;
pub mod consumer_state;
pub mod hash;
pub mod index_db;
pub mod legacy;
pub mod meta;
pub mod problem;
pub mod s2;
#[cfg(test)]
mod testdata;
