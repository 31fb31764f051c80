//! A nats-server release number (`2.15.1`, `v2.11.9`, `2.15.0-dev`): parsed from text, ordered
//! as releases are (a pre-release sorts before its release).
use std::cmp::Ordering;
use std::fmt;

/// One nats-server release: major.minor.patch and an optional pre-release suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Release {
    /// `2` in 2.15.1.
    pub major: u32,
    /// `15` in 2.15.1.
    pub minor: u32,
    /// `1` in 2.15.1.
    pub patch: u32,
    /// The text after `-` (`RC.1`, `dev`), when there is one. A build suffix (`+…`) is dropped.
    pub pre: Option<String>,
}

/// Why a release number did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a nats-server release number (want MAJOR.MINOR.PATCH, e.g. 2.15.1): {0:?}")]
pub struct ReleaseParseError(pub String);

impl Release {
    /// The release `major.minor.patch` (no pre-release suffix).
    pub const fn new(major: u32, minor: u32, patch: u32) -> Release {
        Release {
            major,
            minor,
            patch,
            pre: None,
        }
    }

    /// Parse `2.15.1`, `v2.15.1`, `2.15.0-dev`, `2.11.9-RC.1`, `2.10.26+build`. Surrounding
    /// whitespace is ignored; anything else that is not three decimal numbers is an error.
    pub fn parse(s: &str) -> Result<Release, ReleaseParseError> {
        let err = || ReleaseParseError(s.to_string());
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let t = t.split_once('+').map_or(t, |(a, _)| a);
        let (core, pre) = match t.split_once('-') {
            Some((c, p)) if !p.is_empty() => (c, Some(p.to_string())),
            Some(_) => return Err(err()),
            None => (t, None),
        };
        let mut it = core.split('.');
        let mut num = || -> Result<u32, ReleaseParseError> {
            let p = it.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let (major, minor, patch) = (num()?, num()?, num()?);
        if it.next().is_some() {
            return Err(err());
        }
        Ok(Release {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// The same release without its pre-release suffix.
    pub fn base(&self) -> Release {
        Release::new(self.major, self.minor, self.patch)
    }
}

impl std::str::FromStr for Release {
    type Err = ReleaseParseError;
    fn from_str(s: &str) -> Result<Release, ReleaseParseError> {
        Release::parse(s)
    }
}

impl Ord for Release {
    fn cmp(&self, o: &Release) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| match (&self.pre, &o.pre) {
                (None, None) => Ordering::Equal,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl PartialOrd for Release {
    fn partial_cmp(&self, o: &Release) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(p) = &self.pre {
            write!(f, "-{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_releases() {
        let r = |s: &str| Release::parse(s).unwrap();
        assert_eq!(r("2.15.1"), Release::new(2, 15, 1));
        assert_eq!(r(" v2.9.10 "), Release::new(2, 9, 10));
        assert_eq!(r("2.10.26+abc"), Release::new(2, 10, 26));
        assert_eq!(r("2.15.0-dev").pre.as_deref(), Some("dev"));
        assert_eq!(r("2.15.0-dev").to_string(), "2.15.0-dev");
        assert_eq!(r("v2.11.9").to_string(), "2.11.9");
        assert!(r("2.9.10") < r("2.10.0"));
        assert!(r("2.11.8") < r("2.11.9"));
        assert!(r("2.11.9-RC.1") < r("2.11.9"));
        assert!(r("2.11.9-RC.1") > r("2.11.8"));
        assert!(r("2.11.9-RC.1") < r("2.11.9-RC.2"));
        assert_eq!(r("2.11.9-RC.1").base(), r("2.11.9"));
        for bad in [
            "",
            "2",
            "2.15",
            "2.15.1.4",
            "x.1.2",
            "2.-1.0",
            "2.15.1-",
            "2..1",
            "2.1 5.1",
            "99999999999.0.0",
        ] {
            assert!(Release::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!("2.12.8".parse::<Release>().unwrap(), Release::new(2, 12, 8));
    }
}
