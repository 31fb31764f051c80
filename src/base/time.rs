//! Time: nanoseconds since the Unix epoch to and from RFC 3339, as Go writes and reads it.

/// Now, in nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: UTC with all nine digits of the fraction.
pub fn rfc3339_full(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos
    )
}

/// Go's `time.Time` in JSON and `time.RFC3339Nano`: UTC, trailing zeros of the fraction trimmed;
/// 0 is Go's zero time (`0001-01-01T00:00:00Z`), as the server writes an unset time.
pub fn go_time(ns: i64) -> String {
    if ns == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    let full = rfc3339_full(ns);
    match full.strip_suffix('Z').and_then(|s| s.split_once('.')) {
        Some((base, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{base}Z")
            } else {
                format!("{base}.{frac}Z")
            }
        }
        None => full,
    }
}

/// Parse an RFC 3339 timestamp (as Go writes them) into ns since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        nanos = frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32);
    }
    let off: i64 = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-')) if i + 6 == b.len() => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let v = oh * 3600 + om * 60;
            if *c == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - off;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let ns = parse_rfc3339("2026-11-24T21:48:35.15276551Z").unwrap();
        assert_eq!(ns % 1_000_000_000, 152_765_510);
        assert_eq!(go_time(ns), "2026-11-24T21:48:35.15276551Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(go_time(1_000_000_000), "1970-01-01T00:00:01Z");
        // Go zero time is outside the i64 ns range.
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn go_zero_time() {
        assert_eq!(go_time(0), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339_full(0), "1970-01-01T00:00:00.000000000Z");
    }
}

/// A whole number of seconds as Go's `time.Duration.String` spells it (`5s`, `1m0s`,
/// `1h30m0s`): how the server writes a subject delete marker's `Nats-TTL`.
pub fn go_duration_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// Parse a Go duration (`time.ParseDuration`: `6s`, `1.5h`, `1h30m`, `300ms`, `-2m`) into ns.
/// `None` when it is not one or does not fit.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut t) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if t == "0" {
        return Some(0);
    }
    if t.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !t.is_empty() {
        let n = t
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let v: f64 = t[..n].parse().ok()?;
        t = &t[n..];
        let u = t
            .bytes()
            .take_while(|c| !c.is_ascii_digit() && *c != b'.')
            .count();
        let mult = match &t[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        t = &t[u..];
        total += v * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod duration_tests {
    use super::parse_go_duration as d;

    #[test]
    fn go_durations() {
        assert_eq!(d("6s"), Some(6_000_000_000));
        assert_eq!(d("1m0s"), Some(60_000_000_000));
        assert_eq!(d("1h30m"), Some(5_400_000_000_000));
        assert_eq!(d("1.5s"), Some(1_500_000_000));
        assert_eq!(d("300ms"), Some(300_000_000));
        assert_eq!(d("0"), Some(0));
        assert_eq!(d("-2m"), Some(-120_000_000_000));
        assert_eq!(d("6"), None);
        assert_eq!(d("s"), None);
        assert_eq!(d(""), None);
        assert_eq!(d("5x"), None);
    }

    #[test]
    fn go_duration_strings() {
        use super::go_duration_secs as g;
        assert_eq!(
            [g(5), g(60), g(90), g(3600), g(5400)],
            ["5s", "1m0s", "1m30s", "1h0m0s", "1h30m0s"]
        );
        assert_eq!(d(&g(5400)), Some(5_400_000_000_000));
    }
}
