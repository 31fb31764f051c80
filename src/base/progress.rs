//! Progress reporting from long work to whoever shows it (the CLI's bar, or nothing).

/// Progress callbacks: `start(total_bytes)`, then `advance(bytes, what)`.
pub trait Progress: Sync {
    fn start(&self, _total: u64) {}
    fn advance(&self, _bytes: u64, _what: &str) {}
    fn finish(&self) {}
}

pub struct NoProgress;

impl Progress for NoProgress {}
