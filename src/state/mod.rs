//! What the server would compute from a stream's files: data only, no severity policy.
pub mod consumers;
pub mod load;
pub(crate) mod messages;
pub mod pending;
pub(crate) mod prelude;
pub(crate) mod scan;
pub mod schedule;
pub(crate) mod stream;
