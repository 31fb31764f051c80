//! Commands that write: extract a backup into a store, pack a stream into a backup; `monitor`
//! turns a verify into Nagios / Prometheus output and writes the textfile.
//!
//! Only what the binary and the tests use is `pub` (each with a doc line: `missing_docs`);
//! everything else is `pub(crate)`.
#![warn(missing_docs, unreachable_pub)]
pub mod extract;
pub mod monitor;
pub mod pack;
pub mod rehome;
pub mod rename;
pub mod salvage;
pub(crate) mod staging;
pub(crate) mod target_dir;
