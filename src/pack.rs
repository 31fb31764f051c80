//! `jetdir pack`: turn a stream on disk into a backup. (Being implemented.)
use crate::verify::Progress;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackFormat {
    V1,
    V2,
    Tgz,
}

#[derive(Debug, Clone)]
pub struct PackOptions {
    pub out: PathBuf,
    pub stream: Option<String>,
    pub account: Option<String>,
    pub format: PackFormat,
    pub all: bool,
    pub allow_damaged: bool,
    pub no_consumers: bool,
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PackReport {
    pub ok: bool,
}

impl PackReport {
    pub fn exit_code(&self) -> i32 {
        2
    }
    pub fn render(&self) -> String {
        String::new()
    }
}

pub fn pack(
    _path: &Path,
    _opts: &PackOptions,
    _progress: &dyn Progress,
) -> anyhow::Result<PackReport> {
    anyhow::bail!("pack is not implemented yet")
}
