//! Commands that write: extract a backup into a store, pack a stream into a backup.
pub mod extract;
pub mod pack;
pub(crate) mod staging;
