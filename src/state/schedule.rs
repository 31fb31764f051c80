//! When a message schedule (`Nats-Schedule`, streams with `allow_msg_schedules`, 2.12+) fires
//! next, as the server computes it when it stores the message or rebuilds `msgs/sched.db` from
//! the messages (`parseMsgSchedule` in server/scheduler.go, `parseCron` in server/cron.go,
//! tags v2.12.8 to v2.14.5):
//! - `@at <RFC 3339>`: that time (fires once); with `Nats-Schedule-Time-Zone` it is invalid.
//! - `@every <Go duration>` (at least 1 s): the message time rounded to the second plus the
//!   interval; when that has passed, the clock (rounded) plus the interval ("skip ahead and
//!   only fire once"). With a time zone it is invalid.
//! - cron, 6 fields `sec min hour day-of-month month day-of-week` (numbers, `*`, `?`, ranges
//!   `a-b`, steps `/n`, lists, month and weekday names; `@yearly`, `@annually`, `@monthly`,
//!   `@weekly`, `@daily`, `@midnight`, `@hourly`): the first matching second after the message
//!   time; when that has passed, the first after the clock. Day-of-month and day-of-week
//!   match both when either is `*`/`?`, else either. A time zone other than UTC is not
//!   modelled here ([`Fire::NeedsZone`]): its rules live in the server's tz database.

/// When a schedule fires next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fire {
    /// At this time, ns since the epoch.
    At(i64),
    /// Not a valid schedule: the server keeps no schedule for the message.
    Invalid,
    /// A cron schedule in a named time zone: not computed here.
    NeedsZone,
}

use crate::base::time::{civil_from_days, days_from_civil};

const NS: i64 = 1_000_000_000;

/// The next fire of `pattern` for a message stored at `ts` (ns), its `Nats-Schedule-Time-Zone`
/// header value `zone` (`None` when absent), with the clock at `now` (ns).
pub fn next_fire(pattern: &str, zone: Option<&str>, ts: i64, now: i64) -> Fire {
    if zone == Some("") {
        return Fire::Invalid;
    }
    let utc = zone.is_none_or(|z| z == "UTC");
    if let Some(at) = pattern.strip_prefix("@at ") {
        if zone.is_some() {
            return Fire::Invalid;
        }
        return crate::base::time::parse_rfc3339(at).map_or(Fire::Invalid, Fire::At);
    }
    if let Some(d) = pattern.strip_prefix("@every ") {
        if zone.is_some() {
            return Fire::Invalid;
        }
        let Some(dur) = crate::base::time::parse_go_duration(d).filter(|&d| d >= NS) else {
            return Fire::Invalid;
        };
        let next = round_sec(ts).saturating_add(dur);
        return Fire::At(if next < now {
            round_sec(now).saturating_add(dur)
        } else {
            next
        });
    }
    let pattern = match pattern {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        p => p,
    };
    let Some(spec) = Cron::parse(pattern) else {
        return Fire::Invalid;
    };
    if !utc {
        return Fire::NeedsZone;
    }
    match spec.next_after(ts) {
        Some(next) if next < now => spec
            .next_after(round_sec(now))
            .map_or(Fire::Invalid, Fire::At),
        Some(next) => Fire::At(next),
        None => Fire::Invalid,
    }
}

/// Go's `Time.Round(time.Second)` (halves away from zero).
fn round_sec(ns: i64) -> i64 {
    let r = ns.rem_euclid(NS);
    // saturating: a stored time at the ends of i64 (hostile input) must not wrap
    let down = ns.saturating_sub(r);
    if r >= NS / 2 {
        down.saturating_add(NS)
    } else {
        down
    }
}

/// A parsed 6-field cron pattern: one bit per allowed value, bit 63 when the field was `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cron {
    second: u64,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
}

const STAR: u64 = 1 << 63;
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    fn parse(p: &str) -> Option<Cron> {
        let f: Vec<&str> = p.split_whitespace().collect();
        if f.len() != 6 {
            return None;
        }
        Some(Cron {
            second: field(f[0], 0, 59, &[])?,
            minute: field(f[1], 0, 59, &[])?,
            hour: field(f[2], 0, 23, &[])?,
            dom: field(f[3], 1, 31, &[])?,
            month: field(f[4], 1, 12, &MONTHS)?,
            dow: field(f[5], 0, 6, &DAYS)?,
        })
    }

    fn day_matches(&self, c: &Civil) -> bool {
        let d = self.dom & (1 << c.day) != 0;
        let w = self.dow & (1 << c.weekday) != 0;
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            d && w
        } else {
            d || w
        }
    }

    /// The first matching second after `ts` (ns), within five years; ns.
    fn next_after(&self, ts: i64) -> Option<i64> {
        // the upcoming second
        let mut t = ts.div_euclid(NS) + 1;
        let mut truncated = false;
        let limit = Civil::of(t).year + 5;
        'wrap: loop {
            let c = Civil::of(t);
            if c.year > limit {
                return None;
            }
            let mut c = c;
            while self.month & (1 << c.month) == 0 {
                if !truncated {
                    truncated = true;
                    t = date(c.year, c.month, 1, 0, 0, 0);
                }
                let n = Civil::of(t);
                t = date(n.year, n.month + 1, n.day, n.hour, n.minute, n.second);
                c = Civil::of(t);
                if c.month == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&c) {
                if !truncated {
                    truncated = true;
                    t = date(c.year, c.month, c.day, 0, 0, 0);
                }
                t += 86_400;
                c = Civil::of(t);
                if c.day == 1 {
                    continue 'wrap;
                }
            }
            while self.hour & (1 << c.hour) == 0 {
                if !truncated {
                    truncated = true;
                    t = date(c.year, c.month, c.day, c.hour, 0, 0);
                }
                t += 3600;
                c = Civil::of(t);
                if c.hour == 0 {
                    continue 'wrap;
                }
            }
            while self.minute & (1 << c.minute) == 0 {
                if !truncated {
                    truncated = true;
                    t -= t.rem_euclid(60);
                }
                t += 60;
                c = Civil::of(t);
                if c.minute == 0 {
                    continue 'wrap;
                }
            }
            while self.second & (1 << c.second) == 0 {
                t += 1;
                c = Civil::of(t);
                if c.second == 0 {
                    continue 'wrap;
                }
            }
            return t.checked_mul(NS);
        }
    }
}

/// One cron field: a comma-separated list of `*`/`?`, `a`, `a-b`, each with an optional `/n`
/// (`a/n` means `a-max/n`); names allowed where `names` has them (index + `min`).
fn field(f: &str, min: u32, max: u32, names: &[&str]) -> Option<u64> {
    let mut bits = 0u64;
    for expr in f.split(',').filter(|e| !e.is_empty()) {
        let (range, step) = match expr.split_once('/') {
            Some((r, s)) if !s.contains('/') => (r, Some(s.parse::<u32>().ok()?)),
            Some(_) => return None,
            None => (expr, None),
        };
        let value = |s: &str| -> Option<u32> {
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(s))
                .map(|i| i as u32 + min)
                .or_else(|| s.parse::<u32>().ok())
        };
        let (mut lo, mut hi, mut extra) = (min, max, 0u64);
        if range == "*" || range == "?" {
            extra = STAR;
        } else {
            let mut parts = range.split('-');
            lo = value(parts.next()?)?;
            hi = match parts.next() {
                Some(h) => value(h)?,
                None if step.is_some() => max,
                None => lo,
            };
            if parts.next().is_some() {
                return None;
            }
        }
        let step = step.unwrap_or(1);
        if step > 1 {
            extra = 0;
        }
        if lo < min || hi > max || lo > hi || step == 0 {
            return None;
        }
        let mut i = lo;
        while i <= hi {
            bits |= 1 << i;
            i += step;
        }
        bits |= extra;
    }
    Some(bits)
}

/// A UTC civil time of a second since the epoch.
#[derive(Debug, Clone, Copy)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: u32,
}

impl Civil {
    fn of(t: i64) -> Civil {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }
}

/// Seconds since the epoch of a UTC date, normalised as Go's `time.Date` does (month 13 is
/// January of the next year, day 31 of a 30-day month the 1st of the next).
fn date(year: i64, month: u32, day: u32, h: u32, mi: u32, s: u32) -> i64 {
    let m0 = i64::from(month) - 1;
    let (y, m) = (year + m0.div_euclid(12), m0.rem_euclid(12) as u32 + 1);
    let days = days_from_civil(y, m, 1) + i64::from(day) - 1;
    days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz regression (`schedule`, found by CI's short run): a message time 8 ns above the
    /// lowest i64 made the rounding to the second overflow (a panic in a debug build).
    #[test]
    fn times_at_the_ends_of_i64_do_not_wrap() {
        let now = 0x18da_6210_8cc0_0d15_i64;
        let f = next_fire("@every 940m30m9h490m30m", None, i64::MIN + 8, now);
        assert!(matches!(f, Fire::At(t) if t > now), "{f:?}");
        assert_eq!(round_sec(i64::MAX), i64::MAX);
        assert_eq!(round_sec(i64::MIN + 8), i64::MIN);
    }

    fn t(s: &str) -> i64 {
        crate::base::time::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 59, 60, 365, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // 2026-11-30 is a Monday
        let c = Civil::of(t("2026-11-30T18:27:08Z") / NS);
        assert_eq!((c.year, c.month, c.day, c.weekday), (2026, 11, 30, 1));
        // Go's normalisation: January 31 plus one month is March 3 (2026 is not leap)
        assert_eq!(date(2026, 2, 31, 0, 0, 0), t("2026-03-03T00:00:00Z") / NS);
        assert_eq!(date(2026, 13, 1, 0, 0, 0), t("2027-01-01T00:00:00Z") / NS);
    }

    #[test]
    fn every_and_at() {
        let ts = t("2026-11-30T10:00:00.6Z");
        let now = t("2026-11-30T10:00:30Z");
        assert_eq!(
            next_fire("@every 1m", None, ts, now),
            Fire::At(t("2026-11-30T10:01:01Z"))
        );
        // passed: from the clock
        assert_eq!(
            next_fire("@every 10s", None, ts, now),
            Fire::At(t("2026-11-30T10:00:40Z"))
        );
        assert_eq!(next_fire("@every 500ms", None, ts, now), Fire::Invalid);
        assert_eq!(next_fire("@every 1m", Some("UTC"), ts, now), Fire::Invalid);
        assert_eq!(
            next_fire("@at 2030-01-01T00:00:00Z", None, ts, now),
            Fire::At(t("2030-01-01T00:00:00Z"))
        );
        assert_eq!(next_fire("@at soon", None, ts, now), Fire::Invalid);
    }

    #[test]
    fn cron_patterns() {
        let ts = t("2026-11-30T18:27:08.9Z"); // a Monday
        let now = ts;
        let at = |p: &str| next_fire(p, None, ts, now);
        assert_eq!(at("0 0 * * * *"), Fire::At(t("2026-11-30T19:00:00Z")));
        assert_eq!(at("@hourly"), Fire::At(t("2026-11-30T19:00:00Z")));
        assert_eq!(at("* * * * * *"), Fire::At(t("2026-11-30T18:27:09Z")));
        assert_eq!(at("*/15 * * * * *"), Fire::At(t("2026-11-30T18:27:15Z")));
        assert_eq!(at("30 5/10 * * * *"), Fire::At(t("2026-11-30T18:35:30Z")));
        assert_eq!(at("@daily"), Fire::At(t("2026-12-01T00:00:00Z")));
        assert_eq!(at("@weekly"), Fire::At(t("2026-12-06T00:00:00Z")));
        assert_eq!(at("@monthly"), Fire::At(t("2026-12-01T00:00:00Z")));
        assert_eq!(at("@yearly"), Fire::At(t("2027-01-01T00:00:00Z")));
        assert_eq!(at("0 0 9 * * MON-FRI"), Fire::At(t("2026-12-01T09:00:00Z")));
        assert_eq!(at("0 0 0 29 FEB ?"), Fire::At(t("2028-02-29T00:00:00Z")));
        // both day fields restricted: either matches (the 1st, or a Saturday)
        assert_eq!(at("0 0 0 1 * sat"), Fire::At(t("2026-12-01T00:00:00Z")));
        assert_eq!(at("0 0 0 31 2 *"), Fire::Invalid); // never within five years
        for bad in [
            "",
            "* * * * *",
            "60 * * * * *",
            "* * * 0 * *",
            "5-1 * * * * *",
            "*/0 * * * * *",
            "x * * * * *",
        ] {
            assert_eq!(at(bad), Fire::Invalid, "{bad:?}");
        }
        assert_eq!(
            next_fire("0 0 9 * * *", Some("Europe/Amsterdam"), ts, now),
            Fire::NeedsZone
        );
        assert_eq!(
            next_fire("0 0 9 * * *", Some("UTC"), ts, now),
            Fire::At(t("2026-12-01T09:00:00Z"))
        );
        // passed: the first after the clock
        assert_eq!(
            next_fire("0 0 * * * *", None, ts, t("2026-11-30T21:10:00Z")),
            Fire::At(t("2026-11-30T22:00:00Z"))
        );
    }
}
