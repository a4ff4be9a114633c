//! Validation of post-login redirect targets (`rd`): no open redirects.

use percent_encoding::percent_decode_str;
use url::Url;

/// Returns the target to send the user to after login, or `None` when `rd`
/// could lead off-site.
///
/// Accepted: a local path (`/dashboard?x=1`), or an absolute `http(s)://`
/// URL on exactly the external URL's origin. Refused, among others:
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
        return Some(rd.to_owned());
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
    same_origin.then(|| target.to_string())
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
