//! Header sanitizing: after `sanitize`, no hop-by-hop, spoofable identity
//! or gateway cookie reaches the upstream, and it never panics.
use authgate::gateway::upstream::headers::sanitize;
use http::HeaderName;
use http::header::{COOKIE, HOST};

fn main() {
    let settings = authgate_fuzz::cookie_settings();
    let also = [HeaderName::from_static("x-auth-request-user"), HeaderName::from_static("x-auth-request-groups")];
    afl::fuzz!(|data: &[u8]| {
        let upgrade = data.first().is_some_and(|b| b & 1 == 1);
        let mut headers = authgate_fuzz::headers_from(data);
        sanitize(&mut headers, &settings, &also, upgrade);
        assert!(!headers.contains_key(HOST));
        for name in &also {
            assert!(!headers.contains_key(name), "{name} survived");
        }
        assert!(headers.get_all(COOKIE).iter().count() <= 1, "several Cookie fields forwarded");
        for v in headers.get_all(COOKIE) {
            assert!(!settings.has_ours(v.as_bytes()), "gateway cookie forwarded");
        }
    });
}
