//! The on-disk file store: one parser (and encoder) per artefact of a stream directory.
pub mod aux_files;
pub mod block;
pub mod consumer_state;
pub mod discover;
pub mod index_db;
pub mod legacy;
pub mod meta;
pub mod running;
pub mod seqset;
pub mod source;
