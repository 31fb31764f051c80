//! Progress reporting on stderr: a bar by bytes on a terminal, short log lines otherwise
//! (or with `--no-progress`), nothing with `--quiet`.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jetdir::base::progress::Progress;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub enum Mode {
    Bar,
    Log,
    Quiet,
}

impl Mode {
    pub fn choose(no_progress: bool, quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if no_progress || !std::io::stderr().is_terminal() {
            Mode::Log
        } else {
            Mode::Bar
        }
    }
}

pub struct Reporter {
    mode: Mode,
    verb: String,
    phase: Mutex<String>,
    bar: Mutex<Option<ProgressBar>>,
    total: AtomicU64,
    done: AtomicU64,
    last_logged_pct: AtomicU64,
    started: Mutex<Option<Instant>>,
}

impl Reporter {
    pub fn new(mode: Mode, verb: &str) -> Self {
        Reporter {
            mode,
            verb: verb.to_string(),
            phase: Mutex::new(String::new()),
            bar: Mutex::new(None),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            last_logged_pct: AtomicU64::new(0),
            started: Mutex::new(None),
        }
    }
}

fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

impl Reporter {
    /// "pack", or "pack (verify)" in a phase.
    fn label(&self) -> String {
        match self.phase.lock().ok().filter(|p| !p.is_empty()) {
            Some(p) => format!("{} ({})", self.verb, *p),
            None => self.verb.clone(),
        }
    }
}

impl Progress for Reporter {
    fn phase(&self, name: &str) {
        if let Ok(mut p) = self.phase.lock() {
            *p = name.to_string();
        }
    }
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        // A second phase (extract: verify, then write) counts from zero again.
        self.done.store(0, Ordering::Relaxed);
        self.last_logged_pct.store(0, Ordering::Relaxed);
        if let Ok(mut s) = self.started.lock() {
            *s = Some(Instant::now());
        }
        match self.mode {
            Mode::Bar => {
                let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                if let Ok(st) = ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                ) {
                    b.set_style(st.progress_chars("=> "));
                }
                b.set_message(self.label());
                if let Ok(mut g) = self.bar.lock() {
                    if let Some(old) = g.replace(b) {
                        old.finish_and_clear();
                    }
                }
            }
            Mode::Log => crate::err(&format!("{}: {} to read", self.label(), human(total))),
            Mode::Quiet => {}
        }
    }
    fn advance(&self, bytes: u64, what: &str) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match self.mode {
            Mode::Bar => {
                if let Ok(g) = self.bar.lock() {
                    if let Some(b) = g.as_ref() {
                        b.set_position(done);
                        if !what.is_empty() {
                            b.set_message(format!("{} {what}", self.label()));
                        }
                    }
                }
            }
            Mode::Log => {
                let total = self.total.load(Ordering::Relaxed).max(1);
                let pct = done * 100 / total;
                let last = self.last_logged_pct.load(Ordering::Relaxed);
                // a line every 10 %, like natscli's non-interactive output
                if pct / 10 > last / 10 || (last == 0 && pct == 100) {
                    self.last_logged_pct.store(pct, Ordering::Relaxed);
                    crate::err(&format!(
                        "{}: {} of {} ({}%) {}",
                        self.label(),
                        human(done),
                        human(total),
                        pct.min(100),
                        what
                    ));
                }
            }
            Mode::Quiet => {}
        }
    }
    fn finish(&self) {
        let secs = self
            .started
            .lock()
            .ok()
            .and_then(|s| s.map(|t| t.elapsed().as_secs_f64()))
            .unwrap_or(0.0);
        match self.mode {
            Mode::Bar => {
                if let Ok(mut g) = self.bar.lock() {
                    if let Some(b) = g.take() {
                        b.finish_and_clear();
                    }
                }
            }
            Mode::Log => crate::err(&format!(
                "{}: done, {} in {:.2}s",
                self.label(),
                human(self.done.load(Ordering::Relaxed)),
                secs
            )),
            Mode::Quiet => {}
        }
    }
}
