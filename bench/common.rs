//! What the in-process floor benchmarks (`floors.rs`, `dumpfloor.rs`) share; each includes it
//! with `#[path = "common.rs"] mod common;` (every example is a binary of its own).
use std::io;

/// CPU seconds (user + system, every thread) of this process so far, from `/proc/self/stat`.
pub fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // after the command: state is field 3, utime 14, stime 15 (clock ticks, 100 per second)
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Joins the worker threads of one run and sums their (count, count) results; the first error
/// (or a panicked thread) is the run's.
pub fn join_sum(
    hs: Vec<std::thread::ScopedJoinHandle<'_, io::Result<(u64, u64)>>>,
) -> io::Result<(u64, u64)> {
    let (mut a, mut b) = (0, 0);
    for h in hs {
        let (x, y) = h
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("thread panicked")))?;
        a += x;
        b += y;
    }
    Ok((a, b))
}

/// Seconds of every run as a JSON array (microsecond precision).
pub fn secs(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|s| format!("{s:.6}")).collect();
    format!("[{}]", parts.join(", "))
}
