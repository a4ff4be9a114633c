//! Property tests for [`Email::parse`] and [`domain_matches`].

use super::{Email, domain_matches};
use proptest::prelude::*;

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?"
}

fn domain() -> impl Strategy<Value = String> {
    proptest::collection::vec(label(), 1..4).prop_map(|l| l.join("."))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn canonical_emails_reparse_to_themselves(raw in any::<String>()) {
        if let Ok(email) = Email::parse(&raw) {
            let again = Email::parse(email.as_str()).expect("canonical output re-parses");
            prop_assert_eq!(again.as_str(), email.as_str());
            prop_assert_eq!(again.domain(), email.domain());
            prop_assert!(email.eq_address(&raw));
        }
    }

    #[test]
    fn built_emails_reparse_to_themselves(local in "[a-zA-Z0-9.+_-]{1,12}", domain in domain(), tld in "[a-zA-Z]{2,4}") {
        if let Ok(email) = Email::parse(&format!("{local}@{domain}.{tld}")) {
            prop_assert_eq!(email.domain(), format!("{domain}.{tld}").to_ascii_lowercase());
            let again = Email::parse(email.as_str()).expect("canonical output re-parses");
            prop_assert_eq!(again.as_str(), email.as_str());
        }
    }

    #[test]
    fn dot_suffix_matches_only_real_subdomains(d in "[a-zA-Z0-9.-]{0,24}", parent in domain()) {
        let pattern = format!(".{parent}");
        let real = d.to_ascii_lowercase().ends_with(&format!(".{}", parent.to_ascii_lowercase()))
            && d.len() > parent.len() + 1;
        prop_assert_eq!(domain_matches(&d, &pattern), real, "{} ~ {}", d, pattern);
    }

    #[test]
    fn dot_suffix_matches_subdomains_built_on_it(sub in label(), parent in domain()) {
        let d = format!("{sub}.{parent}");
        let pattern = format!(".{parent}");
        let glued = format!("{sub}{parent}");
        prop_assert!(domain_matches(&d, &pattern));
        prop_assert!(!domain_matches(&parent, &pattern));
        prop_assert!(!domain_matches(&glued, &pattern));
    }

    #[test]
    fn exact_pattern_matches_only_itself(a in domain(), b in domain()) {
        prop_assert_eq!(domain_matches(&a, &b), a.eq_ignore_ascii_case(&b));
    }
}
