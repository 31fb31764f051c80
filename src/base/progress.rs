//! Progress reporting from long work to whoever shows it (the CLI's bar, or nothing).

/// Progress callbacks: `start(total_bytes)`, then `advance(bytes, what)`.
pub trait Progress: Sync {
    /// The next [`start`](Progress::start) begins this phase of a command (`verify`,
    /// `write`): shown beside the command's name.
    fn phase(&self, _name: &str) {}
    /// Work of `total` bytes begins.
    fn start(&self, _total: u64) {}
    /// `bytes` more are done; `what` names the stream and file (`$G > ORDERS msgs/1.blk`).
    fn advance(&self, _bytes: u64, _what: &str) {}
    /// The work is done.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
