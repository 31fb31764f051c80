//! NATS subject filters: `*` matches one token, `>` (last token only) one or more.

/// Whether `subject` matches `filter`. An empty filter matches every subject (a consumer
/// without a filter). Tokens are separated by `.`; a filter with an empty token matches
/// nothing.
pub fn matches(filter: &[u8], subject: &[u8]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let mut f = filter.split(|&c| c == b'.');
    let mut s = subject.split(|&c| c == b'.');
    loop {
        match (f.next(), s.next()) {
            (None, None) => return true,
            (Some(b">"), Some(t)) => return !t.is_empty() && f.next().is_none(),
            (Some(ft), Some(st)) => {
                if ft.is_empty() || st.is_empty() || (ft != b"*" && ft != st) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether a subject filter has a wildcard token (`*` or `>`).
pub fn has_wildcard(filter: &[u8]) -> bool {
    filter.split(|&c| c == b'.').any(|t| t == b"*" || t == b">")
}

/// Whether two NATS subject filters can match a common subject (`*` one token, `>` the rest):
/// the server's `SubjectsCollide`, which refuses a stream whose subjects collide with another's
/// in the same account.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    let (mut x, mut y) = (a.split('.'), b.split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(p), Some(q)) => {
                if p != q && p != "*" && q != "*" {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches(b"orders.*", b"orders.new"));
        assert!(!matches(b"orders.*", b"orders.new.eu"));
        assert!(matches(b"orders.>", b"orders.new.eu"));
        assert!(!matches(b"orders.>", b"orders"));
        assert!(matches(b"*.new", b"orders.new"));
        assert!(matches(b"orders.new", b"orders.new"));
        assert!(!matches(b"orders.new", b"orders.old"));
        assert!(!matches(b"orders.new", b"orders"));
        assert!(matches(b">", b"a.b.c"));
        assert!(matches(b"", b"a.b.c"));
        assert!(!matches(b"a..b", b"a..b"));
        assert!(!matches(b"a.>.b", b"a.x.b"));
    }
}
