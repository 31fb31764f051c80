//! Every judgement: turns the state model into findings with severities.
pub mod archive;
pub mod store;
