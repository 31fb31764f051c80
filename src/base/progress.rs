//! Progress reporting from long work to whoever shows it (the CLI's bar, or nothing).

/// Progress callbacks: `start(total_bytes)`, then `advance(bytes, what)`.
pub trait Progress: Sync {
    /// Work of `total` bytes begins.
    fn start(&self, _total: u64) {}
    /// `bytes` more are done; `what` names the stream or file.
    fn advance(&self, _bytes: u64, _what: &str) {}
    /// The work is done.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
