//! What the server would compute from a stream's files: data only, no severity policy.
pub mod messages;
pub mod prelude;
pub mod scan;
pub mod stream;
