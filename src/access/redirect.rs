//! Validation of post-login redirect targets (`rd`): no open redirects.

use percent_encoding::percent_decode_str;
use url::Url;

/// Returns the target to send the user to after login, or `None` when `rd`
/// could lead off-site.
///
/// Accepted: a local path (`/dashboard?x=1`), or an absolute `http(s)://`
/// URL on exactly the external URL's origin; either way under the external
/// URL's base path (`/app` and `/app/...` for `https://host/app/`), with no
/// dot segment that could climb out of it. Refused, among others:
/// `//host`, `/\host`, `\/host`, any backslash, percent-encoded slashes or
/// backslashes that decode to those, tabs and newlines raw or encoded,
/// `https:host`, `javascript:` and `data:` URLs, and other origins.
pub fn safe_redirect(rd: &str, external: &Url) -> Option<String> {
    if rd.is_empty() || rd.len() > 4096 {
        return None;
    }
    // Browsers strip tabs and newlines and treat `\` like `/`; decoding once
    // exposes encoded forms of both. Anything suspicious in either form is out.
    let decoded = percent_decode_str(rd).decode_utf8().ok()?;
    if rd.chars().any(char::is_whitespace) {
        return None;
    }
    for form in [rd, decoded.as_ref()] {
        if form.chars().any(|c| c.is_control() || c == '\\') {
            return None;
        }
        if form.starts_with("//") {
            return None;
        }
    }
    if rd.starts_with('/') {
        // Encoded slashes right after the leading one are ambiguous to some
        // proxies; refuse rather than guess.
        if decoded.starts_with("//") {
            return None;
        }
        return under_base(rd, external).then(|| rd.to_owned());
    }
    // Absolute URL: only literal `http://` or `https://` (so `https:host` is out).
    let lower = rd.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return None;
    }
    let target = Url::parse(rd).ok()?;
    let same_origin = target.scheme() == external.scheme()
        && target.host_str() == external.host_str()
        && target.port_or_known_default() == external.port_or_known_default()
        && target.username().is_empty()
        && target.password().is_none();
    // The path as sent, not as `Url` normalized it (which resolves `..`).
    let after_scheme = &rd[rd.find("://").map_or(0, |i| i + 3)..];
    let raw_path = after_scheme.find(['/', '?', '#']).map_or("", |i| &after_scheme[i..]);
    (same_origin && under_base(raw_path, external)).then(|| target.to_string())
}

/// Whether the path of `local` (a path with optional query and fragment)
/// stays under the external URL's base path, with no dot segments.
fn under_base(local: &str, external: &Url) -> bool {
    let path = local.split(['?', '#']).next().unwrap_or_default();
    if super::has_dot_segment(path) {
        return false;
    }
    let base = external.path().trim_end_matches('/');
    base.is_empty() || path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext() -> Url {
        Url::parse("https://app.example.com").unwrap()
    }

    #[test]
    fn local_paths_pass() {
        assert_eq!(safe_redirect("/", &ext()).as_deref(), Some("/"));
        assert_eq!(safe_redirect("/a/b?c=d#e", &ext()).as_deref(), Some("/a/b?c=d#e"));
        assert_eq!(safe_redirect("/a%20b", &ext()).as_deref(), Some("/a%20b"));
        assert_eq!(
            safe_redirect("https://app.example.com/x?y=1", &ext()).as_deref(),
            Some("https://app.example.com/x?y=1")
        );
        assert_eq!(
            safe_redirect("HTTPS://app.example.com:443/x", &ext()).as_deref(),
            Some("https://app.example.com/x")
        );
    }

    #[test]
    fn targets_stay_under_the_base_path() {
        let app = Url::parse("https://app.example.com/app/").unwrap();
        for good in ["/app", "/app/", "/app/x?y=1", "/app?x", "https://app.example.com/app/x"] {
            assert!(safe_redirect(good, &app).is_some(), "{good}");
        }
        for bad in [
            "/",
            "/other",
            "/application",
            "/app/../admin",
            "/app/%2e%2e/admin",
            "/app/..%2fadmin",
            "https://app.example.com/other",
            "https://app.example.com/app/../x",
        ] {
            assert_eq!(safe_redirect(bad, &app), None, "{bad}");
        }
        let bare = Url::parse("https://app.example.com/app").unwrap();
        assert!(safe_redirect("/app/x", &bare).is_some());
        assert_eq!(safe_redirect("/x", &bare), None);
    }

    #[test]
    fn open_redirect_forms_refused() {
        for bad in [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\/evil.com",
            "\\\\evil.com",
            "/%2f%2fevil.com",
            "%2f%2fevil.com",
            "%2F%2Fevil.com",
            "/%5cevil.com",
            "%5c%5cevil.com",
            "/%09/evil.com",
            "%09//evil.com",
            "/\t/evil.com",
            "/%0a/evil.com",
            "/%0d%0a/evil.com",
            "https:evil.com",
            "https:/evil.com",
            "http:\\\\evil.com",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https://evil.com/",
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https://user@app.example.com/",
            "http://app.example.com/",
            "https://app.example.com:8443/",
            "evil.com",
            "",
            " /x",
        ] {
            assert_eq!(safe_redirect(bad, &ext()), None, "{bad:?} must be refused");
        }
    }
}
