use super::*;

fn settings() -> CookieSettings {
    CookieSettings::new("_ag", None, true, "/", 3600)
}

fn request_with(set_cookies: &HeaderMap) -> HeaderMap {
    // Simulate the browser: keep cookies that were set, drop removed ones.
    let mut jar: Vec<(String, String)> = Vec::new();
    for v in set_cookies.get_all(SET_COOKIE) {
        let c = Cookie::parse(v.to_str().unwrap().to_owned()).unwrap();
        jar.retain(|(n, _)| n != c.name());
        if c.max_age() != Some(cookie::time::Duration::ZERO) {
            jar.push((c.name().to_owned(), c.value().to_owned()));
        }
    }
    let mut h = HeaderMap::new();
    let line = jar.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
    h.insert(COOKIE, HeaderValue::from_str(&line).unwrap());
    h
}

#[test]
fn small_session_is_one_cookie_with_safe_attributes() {
    let s = settings();
    let mut out = HeaderMap::new();
    s.write_session("abc", Present::default(), &mut out).unwrap();
    let all: Vec<_> = out.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(all.len(), 1);
    let c = &all[0];
    assert!(c.starts_with("_ag=abc;"), "{c}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
        assert!(c.contains(attr), "{attr} in {c}");
    }
    let req = request_with(&out);
    let (value, present) = s.read_session(&req);
    assert_eq!(value.as_deref(), Some("abc"));
    assert!(present.single);
}

#[test]
fn insecure_only_when_asked_and_domain_when_set() {
    let s = CookieSettings::new("_ag", Some("example.com"), false, "/base/", 60);
    let mut out = HeaderMap::new();
    s.write_session("v", Present::default(), &mut out).unwrap();
    let c = out.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(!c.contains("Secure"));
    assert!(c.contains("Domain=example.com"));
    assert!(c.contains("Path=/base;") || c.ends_with("Path=/base"), "{c}");
}

#[test]
fn large_session_is_chunked_and_reassembled() {
    let s = settings();
    let sealed: String = (0..CHUNK_LEN * 2 + 17).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let mut out = HeaderMap::new();
    s.write_session(&sealed, Present::default(), &mut out).unwrap();
    let names: Vec<_> = out
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap().name().to_owned())
        .collect();
    assert_eq!(names, ["_ag_0", "_ag_1", "_ag_2"]);
    for v in out.get_all(SET_COOKIE) {
        assert!(v.len() < 4096);
    }
    let req = request_with(&out);
    let (value, present) = s.read_session(&req);
    assert_eq!(value.as_deref(), Some(sealed.as_str()));

    // Shrinking back to one cookie expires every chunk.
    let mut out2 = HeaderMap::new();
    s.write_session("small", present, &mut out2).unwrap();
    let removed: Vec<_> = out2
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
        .filter(|c| c.max_age() == Some(cookie::time::Duration::ZERO))
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(removed, ["_ag_0", "_ag_1", "_ag_2"]);

    // Sign-out clears them all too.
    let mut out3 = HeaderMap::new();
    s.clear_session(present, &mut out3);
    assert_eq!(out3.get_all(SET_COOKIE).iter().count(), 4);
}

#[test]
fn chunks_must_start_at_zero_and_be_contiguous() {
    let s = settings();
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_static("_ag_1=b; other=x"));
    assert_eq!(s.read_session(&h).0, None);
    h.insert(COOKIE, HeaderValue::from_static("_ag_1=b; _ag_0=a; _ag_3=d"));
    assert_eq!(s.read_session(&h).0.as_deref(), Some("ab"));
}

#[test]
fn too_large_is_an_error() {
    let s = settings();
    let sealed = "x".repeat(CHUNK_LEN * MAX_CHUNKS + 1);
    assert!(s.write_session(&sealed, Present::default(), &mut HeaderMap::new()).is_err());
}

#[test]
fn our_cookies_are_recognized_exactly() {
    let s = settings();
    for ours in ["_ag", "_ag_0", "_ag_15", "_ag_flow_abc"] {
        assert!(s.is_ours(ours), "{ours}");
    }
    for theirs in ["_ag_16", "_ag_01", "_ag_x", "_agx", "_a", "session", "_ag_"] {
        assert!(!s.is_ours(theirs), "{theirs}");
    }
}

#[test]
fn upstream_never_sees_our_cookies() {
    let s = settings();
    let mut out = bytes::BytesMut::new();
    s.append_foreign(b"a=1; _ag=secret; b=2; _ag_0=x; _ag_flow_q=y", &mut out);
    assert_eq!(&out[..], b"a=1; b=2");
    assert!(s.has_ours(b"x=1;_ag=secret"));
    assert!(!s.has_ours(b"a=1; b=2"));
}

#[test]
fn one_malformed_pair_does_not_hide_the_others() {
    let s = settings();
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_bytes(b"junk=\xff\xfe; _ag=sealed; other=\xc3\xbc").unwrap());
    assert_eq!(s.read_session(&h).0.as_deref(), Some("sealed"));
    h.insert(COOKIE, HeaderValue::from_bytes(b"=novalue; ;; _ag=v2").unwrap());
    assert_eq!(s.read_session(&h).0.as_deref(), Some("v2"));
}

#[test]
fn a_base_path_without_slash_still_gets_the_cookie() {
    let s = CookieSettings::new("_ag", None, true, "/app", 60);
    let mut out = HeaderMap::new();
    s.write_session("v", Present::default(), &mut out).unwrap();
    let c = out.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(c.contains("Path=/app;") || c.ends_with("Path=/app"), "{c}");
    let root = CookieSettings::new("_ag", None, true, "/", 60);
    let mut out = HeaderMap::new();
    root.write_session("v", Present::default(), &mut out).unwrap();
    assert!(out.get(SET_COOKIE).unwrap().to_str().unwrap().contains("Path=/"));
}

#[test]
fn host_prefixed_cookies_are_host_only_and_root_scoped() {
    let s = CookieSettings::new("__Host-ag", None, true, "/app/", 60);
    let mut out = HeaderMap::new();
    s.write_session("v", Present::default(), &mut out).unwrap();
    s.write_flow(&s.flow_name("abc"), "f", 60, &mut out).unwrap();
    for c in out.get_all(SET_COOKIE) {
        let c = Cookie::parse(c.to_str().unwrap().to_owned()).unwrap();
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.domain(), None);
        assert_eq!(c.secure(), Some(true));
    }
}

#[test]
fn an_oversized_flow_cookie_is_not_written() {
    let s = settings();
    let mut out = HeaderMap::new();
    assert!(s.write_flow("_ag_flow_x", &"v".repeat(4100), 60, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn flow_cookie_name_derives_from_state() {
    let s = settings();
    assert_eq!(s.flow_name("AbC-_123456789012345678"), "_ag_flow_AbC1234567890123");
    assert!(s.is_ours(&s.flow_name("xyz")));
}
