//! Email and domain parsing: `Email::parse` never panics, its output
//! re-parses to itself, and `domain_matches` with a `.suffix` pattern only
//! matches a real subdomain.
use authgate::access::{Email, domain_matches, is_valid_domain_pattern};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        if let Ok(email) = Email::parse(text) {
            let again = Email::parse(email.as_str()).expect("canonical email does not re-parse");
            assert_eq!(again.as_str(), email.as_str());
            assert!(email.eq_address(text));
        }
        // `domain|pattern`
        if let Some((domain, pattern)) = text.split_once('|') {
            let _ = is_valid_domain_pattern(pattern);
            if domain_matches(domain, pattern) {
                match pattern.strip_prefix('.') {
                    Some(parent) => {
                        let d = domain.to_ascii_lowercase();
                        let p = parent.to_ascii_lowercase();
                        assert!(d.ends_with(&format!(".{p}")) && d.len() > p.len() + 1, "{domain} ~ {pattern}");
                    }
                    None => assert!(domain.eq_ignore_ascii_case(pattern)),
                }
            }
        }
    });
}
