//! Property tests for [`safe_redirect`]: whatever it accepts, a browser
//! resolving it against the external URL lands on that same origin.

use super::safe_redirect;
use proptest::prelude::*;
use url::Url;

/// Pieces an attacker strings together to leave the origin.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("/\\".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("%2F".to_owned()),
        Just("%2f".to_owned()),
        Just("%5C".to_owned()),
        Just("%09".to_owned()),
        Just("%252F".to_owned()),
        Just("..".to_owned()),
        Just("@".to_owned()),
        Just(":".to_owned()),
        Just("user:pw@".to_owned()),
        Just("evil.com".to_owned()),
        Just("app.example.com".to_owned()),
        Just("https:".to_owned()),
        Just("http://".to_owned()),
        Just("https://app.example.com".to_owned()),
        Just("https://app.example.com@evil.com".to_owned()),
        Just("javascript:".to_owned()),
        Just("base".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just(" ".to_owned()),
        Just("\u{3000}".to_owned()),
        "[a-zA-Z0-9._~-]{0,6}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 1..8).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn accepted_targets_stay_on_the_origin(rd in target(), base in prop_oneof![Just("/"), Just("/base/")]) {
        let external = Url::parse(&format!("https://app.example.com{base}")).unwrap();
        if let Some(out) = safe_redirect(&rd, &external) {
            let resolved = external.join(&out).expect("accepted target resolves");
            prop_assert_eq!(resolved.origin(), external.origin(), "{:?} -> {}", rd, resolved);
            prop_assert!(resolved.path().starts_with(base.trim_end_matches('/')), "{:?} left {}", rd, base);
            prop_assert!(!out.contains('\\') && !out.chars().any(char::is_control));
        }
    }

    #[test]
    fn arbitrary_strings_never_leave_the_origin(rd in any::<String>()) {
        let external = Url::parse("https://app.example.com/").unwrap();
        if let Some(out) = safe_redirect(&rd, &external) {
            let resolved = external.join(&out).expect("accepted target resolves");
            prop_assert_eq!(resolved.origin(), external.origin());
        }
    }

    #[test]
    fn plain_local_paths_are_kept(path in "(/[a-z0-9]{1,8}){1,4}(\\?[a-z]=[0-9])?") {
        let external = Url::parse("https://app.example.com/").unwrap();
        prop_assert_eq!(safe_redirect(&path, &external), Some(path.clone()));
    }
}
