//! Shared helpers for the fuzz targets in `src/bin/`.

use authgate::gateway::session::cookies::CookieSettings;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The cookie settings every target uses: the default name, a base path.
pub fn cookie_settings() -> CookieSettings {
    CookieSettings::new("_authgate", None, true, "/", 3600)
}

/// Builds a header map from `name: value` lines; lines that are not a
/// valid header are skipped (the HTTP parser would refuse them first).
pub fn headers_from(data: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    map
}
