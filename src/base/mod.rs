//! Bottom layer: byte-level primitives, hashing and the finding type; knows no format.
pub(crate) mod bytes;
pub mod hash;
pub mod heap;
pub mod par;
pub mod problem;
pub mod progress;
pub mod release;
pub mod report;
pub mod subject;
pub mod time;
