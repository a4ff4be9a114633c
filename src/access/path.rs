//! URL paths as the gateway compares them: dot segments (raw or hidden by
//! percent-encoding) are refused, repeated slashes merged, and prefixes
//! matched on whole segments. Routes and public paths use the same rules,
//! on the same normalized path, and never look at the query or fragment.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Whether `prefix` serves `path`, on whole segments: `/api` (or `/api/`)
/// serves `/api` and `/api/x`, never `/apix`; `/` and the empty prefix
/// serve everything. `path` is a normalized path, without a query.
pub fn prefix_serves(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `path` with runs of `/` merged into one, as nginx's `merge_slashes`
/// does: `//admin` is `/admin`. Borrows when there is nothing to merge.
pub fn merge_slashes(path: &str) -> Cow<'_, str> {
    if !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut last_slash = false;
    for c in path.chars() {
        if c == '/' && last_slash {
            continue;
        }
        last_slash = c == '/';
        out.push(c);
    }
    Cow::Owned(out)
}

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
    fn prefixes_serve_whole_segments() {
        assert!(prefix_serves("/api", "/api"));
        assert!(prefix_serves("/api/", "/api/v1"));
        assert!(!prefix_serves("/api", "/apix"));
        assert!(!prefix_serves("/api", "/"));
        assert!(prefix_serves("/", "/anything"));
        assert!(!prefix_serves("/healthz", "/healthzx"));
    }

    #[test]
    fn repeated_slashes_merge() {
        assert_eq!(merge_slashes("//admin"), "/admin");
        assert_eq!(merge_slashes("/a///b//"), "/a/b/");
        assert!(matches!(merge_slashes("/a/b"), Cow::Borrowed(_)));
    }

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
