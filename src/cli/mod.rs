//! Binary-only layer: human rendering and the progress bar.
pub mod dump;
pub mod progress_bar;
pub mod render;
