//! Cookie parsing and chunk reassembly: `read_session` over arbitrary
//! `Cookie` headers, then the reassembled value written back and read again
//! must come back the same.
use authgate::gateway::session::cookies::CookieSettings;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

fn main() {
    let settings = authgate_fuzz::cookie_settings();
    afl::fuzz!(|data: &[u8]| {
        let headers = authgate_fuzz::headers_from(data);
        let (value, present) = settings.read_session(&headers);
        for v in headers.get_all(COOKIE) {
            let _ = settings.has_ours(v.as_bytes());
            let mut out = bytes::BytesMut::new();
            settings.append_foreign(v.as_bytes(), &mut out);
            assert!(!settings.has_ours(&out), "a gateway cookie leaked to the upstream");
        }
        let _ = CookieSettings::read(&headers, "_authgate");
        if let Some(value) = value {
            // Sealed values are base64url; only those are ever written.
            if value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                let mut out = HeaderMap::new();
                if settings.write_session(&value, present, &mut out).is_ok() {
                    let mut back = HeaderMap::new();
                    for set in out.get_all(SET_COOKIE) {
                        let pair = set.to_str().unwrap().split(';').next().unwrap();
                        if !pair.ends_with('=') {
                            back.append(COOKIE, HeaderValue::from_str(pair).unwrap());
                        }
                    }
                    let (again, _) = settings.read_session(&back);
                    assert_eq!(again.as_deref(), Some(&*value), "chunks did not reassemble");
                }
            }
        }
    });
}
