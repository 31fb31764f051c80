//! Binary-only layer: human rendering, the progress bar, help texts, `jetdir check` output.
pub mod about;
pub mod human;
pub mod progress_bar;
pub mod render;
