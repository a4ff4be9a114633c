//! Email domain matching: exact, or `.suffix` for subdomains. Never substring.

/// Whether `domain` (already lower-case) is allowed by `pattern`.
///
/// `example.com` allows exactly `example.com`. `.example.com` allows any
/// subdomain such as `eu.example.com`, but neither `example.com` itself nor
/// `badexample.com`.
pub fn domain_matches(domain: &str, pattern: &str) -> bool {
    match pattern.strip_prefix('.') {
        Some(parent) => domain
            .len()
            .checked_sub(parent.len() + 1)
            .filter(|&dot| dot > 0)
            .is_some_and(|dot| domain.as_bytes()[dot] == b'.' && domain[dot + 1..].eq_ignore_ascii_case(parent)),
        None => domain.eq_ignore_ascii_case(pattern),
    }
}

/// Whether `pattern` is a bare hostname, optionally with a leading dot.
/// Mirrors the CRD's CEL rule for use where the apiserver did not check.
pub fn is_valid_domain_pattern(pattern: &str) -> bool {
    let host = pattern.strip_prefix('.').unwrap_or(pattern);
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && host.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_only() {
        assert!(domain_matches("example.com", "example.com"));
        assert!(domain_matches("example.com", "Example.COM"));
        assert!(!domain_matches("sub.example.com", "example.com"));
        assert!(!domain_matches("badexample.com", "example.com"));
        assert!(!domain_matches("example.com.evil.io", "example.com"));
        assert!(!domain_matches("example.co", "example.com"));
    }

    #[test]
    fn dot_suffix_matches_subdomains_only() {
        assert!(domain_matches("eu.example.com", ".example.com"));
        assert!(domain_matches("a.b.example.com", ".example.com"));
        assert!(!domain_matches("example.com", ".example.com"));
        assert!(!domain_matches("badexample.com", ".example.com"));
        assert!(!domain_matches(".example.com", ".example.com"));
        assert!(!domain_matches("xexample.com", ".example.com"));
        assert!(!domain_matches("com", ".example.com"));
    }

    #[test]
    fn pattern_validation() {
        for ok in ["example.com", ".example.com", "a-b.example.co", "x.io"] {
            assert!(is_valid_domain_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "com",
            "*.example.com",
            "user@example.com",
            "https://example.com",
            "example.com/x",
            "-a.com",
            "a..com",
            "example.com:443",
            "..com",
        ] {
            assert!(!is_valid_domain_pattern(bad), "{bad}");
        }
    }
}
