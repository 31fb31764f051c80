//! Numbers, times and durations for people, as natscli writes them: sizes in IBytes
//! ("11.5 MiB"), times as "2026-11-30 10:00:00 UTC" with an age ("3h ago"), limits as
//! "unlimited", durations as "1h30m"; and colour, only on a terminal and never with NO_COLOR.
use std::io::IsTerminal;
use std::sync::OnceLock;

/// Bytes in binary units: "582 B", "1.2 KiB", "11.5 MiB".
pub fn ibytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// `2026-11-30 10:00:00 UTC`, or "-" for none.
pub fn time(ns: Option<i64>) -> String {
    match ns {
        None | Some(0) => "-".into(),
        Some(n) => {
            let full = jetdir::base::time::rfc3339_full(n);
            // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
            format!("{} {} UTC", &full[..10], &full[11..19])
        }
    }
}

/// A time with its age against `now`: `2026-11-30 10:00:00 UTC (3h ago)`.
pub fn time_ago(ns: Option<i64>, now: i64) -> String {
    match ns {
        None | Some(0) => "-".into(),
        Some(n) => format!("{} ({})", time(Some(n)), ago(n, now)),
    }
}

/// "3h ago", "2d4h ago", "in 5m" (a time after `now`), "now".
pub fn ago(ns: i64, now: i64) -> String {
    let d = now.saturating_sub(ns);
    if d.unsigned_abs() < 1_000_000_000 {
        return "now".into();
    }
    if d < 0 {
        format!("in {}", duration_short(d.unsigned_abs()))
    } else {
        format!("{} ago", duration_short(d as u64))
    }
}

/// The two largest units of a duration: "2d4h", "3h5m", "12m30s", "45s".
pub fn duration_short(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let parts = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")];
    let first = parts.iter().position(|p| p.0 > 0).unwrap_or(3);
    let mut out = format!("{}{}", parts[first].0, parts[first].1);
    if let Some(next) = parts.get(first + 1) {
        if next.0 > 0 {
            out.push_str(&format!("{}{}", next.0, next.1));
        }
    }
    out
}

/// A duration in full, as Go prints it without zero units: "1h30m", "90d", "1.5s", "250ms".
pub fn duration(ns: i64) -> String {
    if ns <= 0 {
        return "0s".into();
    }
    let ns = ns as u64;
    if ns < 1_000_000 {
        return format!("{}µs", ns / 1000);
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", ns / 1_000_000);
    }
    let total = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (d, h, m, s) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    let mut out = String::new();
    for (v, u) in [(d, "d"), (h, "h"), (m, "m")] {
        if v > 0 {
            out.push_str(&format!("{v}{u}"));
        }
    }
    if s > 0 || frac > 0 {
        if frac > 0 {
            let f = format!("{frac:09}");
            out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

/// A stream limit from its config value: -1 or 0 is "unlimited"; `kind` says how to print
/// the rest (`bytes`, `duration` in ns, or a plain count).
pub fn limit(v: &serde_json::Value, kind: Limit) -> String {
    let Some(n) = v.as_i64() else {
        return plain(v);
    };
    if n <= 0 {
        return "unlimited".into();
    }
    match kind {
        Limit::Count => n.to_string(),
        Limit::Bytes => ibytes(n as u64),
        Limit::Duration => duration(n),
    }
}

/// How a limit is printed.
#[derive(Clone, Copy)]
pub enum Limit {
    Count,
    Bytes,
    Duration,
}

/// A config value without JSON quoting: strings bare, lists joined with ", ".
pub fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(", "),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The colours used.
#[derive(Clone, Copy)]
pub enum Colour {
    Red,
    Yellow,
    Green,
    Dim,
    Bold,
}

/// Colour is used when stdout is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
pub fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn colour_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        colour_wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        )
    })
}

/// `text` in colour `c` when colour is on (see [`colour_wanted`]).
pub fn paint(text: &str, c: Colour) -> String {
    paint_if(colour_on(), text, c)
}

/// `text` in colour `c` if `on`.
pub fn paint_if(on: bool, text: &str, c: Colour) -> String {
    if !on || text.is_empty() {
        return text.to_string();
    }
    let code = match c {
        Colour::Red => "31",
        Colour::Yellow => "33",
        Colour::Green => "32",
        Colour::Dim => "2",
        Colour::Bold => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Display width of a string (escape sequences not counted, every char one column).
pub fn width(s: &str) -> usize {
    let mut n = 0;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            if c == 'm' {
                esc = false;
            }
        } else if c == '\x1b' {
            esc = true;
        } else {
            n += 1;
        }
    }
    n
}

/// A table: a header row and rows, columns separated by two spaces; columns listed in
/// `right` are right-aligned (numbers).
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let cols = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            w[i] = w[i].max(width(c));
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i].saturating_sub(width(c));
            if i > 0 {
                out.push_str("  ");
            }
            if right.contains(&i) {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out.trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(
        header.iter().map(|h| paint(h, Colour::Bold)).collect(),
    ));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_ibytes() {
        assert_eq!(ibytes(0), "0 B");
        assert_eq!(ibytes(582), "582 B");
        assert_eq!(ibytes(1024), "1.0 KiB");
        assert_eq!(ibytes(12_105_000), "11.5 MiB");
        assert_eq!(ibytes(1 << 30), "1.0 GiB");
    }

    #[test]
    fn times_and_ages() {
        let t = jetdir::base::time::parse_rfc3339("2026-11-30T10:00:00.5Z").unwrap();
        assert_eq!(time(Some(t)), "2026-11-30 10:00:00 UTC");
        let now = t + 3 * 3600 * 1_000_000_000 + 120 * 1_000_000_000;
        assert_eq!(time_ago(Some(t), now), "2026-11-30 10:00:00 UTC (3h2m ago)");
        assert_eq!(ago(now, t), "in 3h2m");
        assert_eq!(ago(t, t), "now");
        assert_eq!(time(None), "-");
        assert_eq!(duration_short(6 * 86_400 * 1_000_000_000), "6d");
    }

    #[test]
    fn durations_and_limits() {
        let h = 3_600_000_000_000i64;
        assert_eq!(duration(h + h / 2), "1h30m");
        assert_eq!(duration(90 * 24 * h), "90d");
        assert_eq!(duration(1_500_000_000), "1.5s");
        assert_eq!(duration(120_000_000_000), "2m");
        assert_eq!(duration(250_000_000), "250ms");
        use serde_json::json;
        assert_eq!(limit(&json!(-1), Limit::Count), "unlimited");
        assert_eq!(limit(&json!(0), Limit::Duration), "unlimited");
        assert_eq!(limit(&json!(1048576), Limit::Bytes), "1.0 MiB");
        assert_eq!(limit(&json!(3), Limit::Count), "3");
        assert_eq!(plain(&json!(["a.>", "b"])), "a.>, b");
        assert_eq!(plain(&json!("limits")), "limits");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None));
        assert_eq!(paint_if(false, "x", Colour::Red), "x");
        assert_eq!(paint_if(true, "x", Colour::Red), "\x1b[31mx\x1b[0m");
        assert_eq!(width(&paint_if(true, "abc", Colour::Green)), 3);
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["Name", "Messages"],
            &[
                vec!["A".into(), "8".into()],
                vec!["LONGER".into(), "1000".into()],
            ],
            &[1],
        );
        // the header is bold on a terminal: compare without escapes
        let plain: String = {
            let mut out = String::new();
            let mut esc = false;
            for c in t.chars() {
                match (esc, c) {
                    (false, '\x1b') => esc = true,
                    (true, 'm') => esc = false,
                    (false, c) => out.push(c),
                    _ => {}
                }
            }
            out
        };
        assert_eq!(
            plain,
            "Name    Messages\nA              8\nLONGER      1000\n"
        );
    }
}
