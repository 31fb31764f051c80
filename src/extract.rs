//! `jetdir extract`: write a backup into a stopped server's store dir. (Being implemented.)
use crate::verify::Progress;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub store_dir: PathBuf,
    pub account: String,
    pub dry_run: bool,
    pub allow_damaged: bool,
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ExtractReport {
    pub ok: bool,
}

impl ExtractReport {
    pub fn exit_code(&self) -> i32 {
        2
    }
    pub fn render(&self) -> String {
        String::new()
    }
}

pub fn extract(
    _archive: &Path,
    _opts: &ExtractOptions,
    _progress: &dyn Progress,
) -> anyhow::Result<ExtractReport> {
    anyhow::bail!("extract is not implemented yet")
}
