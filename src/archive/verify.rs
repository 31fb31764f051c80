//! `jetdir verify ARCHIVE`: verify a backup without extracting it, with the same report as
//! for stores. Entry point for both: [`verify_path`].
use crate::verify::{self, Options, Progress, Report};
use std::path::Path;

/// Verify whatever `path` is: a store / account / stream dir, or any backup form.
pub fn verify_path(path: &Path, opts: &Options, progress: &dyn Progress) -> anyhow::Result<Report> {
    Ok(verify::verify_store(path, opts, progress)?)
}

/// Verify a backup (never a store dir). Errors mean "could not run" (exit 2).
pub fn verify_archive(
    path: &Path,
    opts: &Options,
    progress: &dyn Progress,
) -> anyhow::Result<Report> {
    let _ = (path, opts, progress);
    anyhow::bail!("archive verification is being implemented")
}
