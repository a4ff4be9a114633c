//! Redirect validation: whatever `safe_redirect` accepts, a browser
//! resolving it against the external URL stays on that origin.
use authgate::access::safe_redirect;
use url::Url;

fn main() {
    let externals =
        [Url::parse("https://app.example.com/").unwrap(), Url::parse("https://app.example.com/base/").unwrap()];
    afl::fuzz!(|data: &[u8]| {
        let Ok(rd) = std::str::from_utf8(data) else { return };
        for external in &externals {
            if let Some(out) = safe_redirect(rd, external) {
                let resolved = external.join(&out).expect("accepted target does not resolve");
                assert_eq!(resolved.origin(), external.origin(), "open redirect: {rd:?} -> {resolved}");
            }
        }
    });
}
