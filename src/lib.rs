//! jetdir: offline reader and verifier for NATS JetStream file stores and backups.
pub mod avl;
pub mod block;
pub mod bytes;
pub mod hash;
pub mod index_db;
pub mod meta;
pub mod problem;
#[cfg(test)]
mod testdata;
