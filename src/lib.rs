//! jetdir: offline reader and verifier for NATS JetStream file stores and backups.
pub mod bytes;
pub mod hash;
pub mod problem;
#[cfg(test)]
mod testdata;
