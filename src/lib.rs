//! jetdir: offline reader and verifier for NATS JetStream file stores and backups.
pub mod backup;
pub mod base;
pub mod check;
pub mod filestore;
pub mod ops;
pub mod s2;
pub mod state;
#[cfg(test)]
mod testdata;
