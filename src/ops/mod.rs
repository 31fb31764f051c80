//! Commands that write: extract a backup into a store, pack a stream into a backup.
//!
//! Only what the binary and the tests use is `pub` (each with a doc line: `missing_docs`);
//! everything else is `pub(crate)`.
#![warn(missing_docs, unreachable_pub)]
pub mod extract;
pub mod pack;
pub(crate) mod staging;
pub(crate) mod target_dir;
