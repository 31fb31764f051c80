//! Giving freed heap memory back to the system between the phases of a long command.
//!
//! The library has no `unsafe`; the binary, which owns the allocator's settings, registers the
//! allocator's release call here (glibc's `malloc_trim`). A command with phases that run on
//! different threads (salvage: the walk and the write, then pack) calls [`release`] between
//! them: glibc keeps each thread's freed pages in that thread's arena, where the next phase's
//! threads do not reuse them, so without it their peaks add up.
use std::sync::OnceLock;

static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Sets the allocator's release call (once; later calls are ignored).
pub fn set_release(f: fn()) {
    let _ = RELEASE.set(f);
}

/// Gives the freed heap memory of every thread back to the system, when the program has
/// registered how ([`set_release`]); otherwise does nothing.
pub fn release() {
    if let Some(f) = RELEASE.get() {
        f();
    }
}
