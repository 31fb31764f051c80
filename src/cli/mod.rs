//! Binary-only layer: human rendering, the progress bar, help texts, `jetdir check` output,
//! the forensics commands' arguments and rendering.
pub mod about;
pub mod cluster;
pub mod dump;
pub mod forensics2;
pub mod human;
pub mod progress_bar;
pub mod render;
