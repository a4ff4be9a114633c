//! Dot segments in URL paths, raw or hidden by percent-encoding.

use percent_encoding::percent_decode_str;

/// Whether any segment of `path` is, or decodes to something containing, a
/// `.` or `..` segment.
pub fn has_dot_segment(path: &str) -> bool {
    if !path.bytes().any(|b| b == b'.' || b == b'%' || b == b'\\') {
        return false;
    }
    path.split('/').any(|segment| {
        if is_dot(segment) {
            return true;
        }
        if !segment.contains('%') && !segment.contains('\\') {
            return false;
        }
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        decoded.split(['/', '\\']).any(is_dot)
    })
}

fn is_dot(segment: &str) -> bool {
    matches!(segment, "." | "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_in_every_encoding_are_refused() {
        for bad in [
            "/..",
            "/../admin",
            "/a/../../admin",
            "/./x",
            "/%2e%2e/admin",
            "/%2E%2E/admin",
            "/.%2e/admin",
            "/%2e./admin",
            "/..%2fadmin",
            "/..%2Fadmin",
            "/x/..%5cadmin",
            "/x/..\\admin",
            "/a%2f..%2fadmin",
            "/%2e",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for good in
            ["/", "/a/b", "/a.b/c", "/...", "/.well-known/x", "/api/v4/projects/group%2Fproject", "/a%20b", "/x..y"]
        {
            assert!(!has_dot_segment(good), "{good}");
        }
    }
}
