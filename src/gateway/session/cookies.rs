//! The gateway's cookies: where they are read from, how a large session is
//! split into chunks, and the attributes they are written with.
//!
//! The session cookie is `NAME` when its sealed value fits one cookie, or
//! `NAME_0`, `NAME_1`, … otherwise; the chunks are concatenated before
//! decryption, so the whole value is authenticated at once. A login attempt
//! uses its own cookie, `NAME_flow_<tag>`, scoped to the `/oauth2/` paths.
//!
//! `Cookie` headers are read pair by pair with the `cookie` crate's parser:
//! a malformed pair (non-ASCII bytes set by a sibling subdomain, say) is
//! skipped on its own and never hides the rest of the header.

use std::borrow::Cow;

use cookie::{Cookie, SameSite};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// Most chunks a session may be split into.
pub const MAX_CHUNKS: usize = 16;
/// Bytes of sealed value per chunk. Browsers keep cookies up to 4096 bytes
/// of name, value and attributes; this leaves room for the rest.
pub const CHUNK_LEN: usize = 3800;
/// The most a browser stores of one cookie: name, value and attributes.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// Which of our session cookies a request carried, so that a rewrite can
/// expire the ones that are no longer needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Present {
    single: bool,
    chunks: u32,
}

/// The session was too large to store even in [`MAX_CHUNKS`] chunks.
#[derive(Debug, thiserror::Error)]
#[error("session of {0} bytes is too large for {MAX_CHUNKS} cookies")]
pub struct TooLarge(pub usize);

/// Cookie names and attributes, computed once at startup.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    name: String,
    chunk_names: Vec<String>,
    flow_prefix: String,
    domain: Option<String>,
    secure: bool,
    session_path: String,
    flow_path: String,
    max_age: u64,
}

impl CookieSettings {
    /// `base_path` is the external URL's path (`/`, `/prefix` or
    /// `/prefix/`); `secure` should be false only for loopback `http://`
    /// external URLs.
    ///
    /// The session cookie's `Path` is the base path without a trailing
    /// slash (`/prefix`), which browsers send to `/prefix` itself as well as
    /// to everything under `/prefix/`, and not to `/prefixes`. A `__Host-`
    /// name needs `Path=/` and no `Domain` (browsers refuse it otherwise),
    /// so such cookies are scoped to the whole host.
    pub fn new(name: &str, domain: Option<&str>, secure: bool, base_path: &str, max_age: u64) -> Self {
        let host_only = name.starts_with("__Host-");
        let base = if host_only { "" } else { base_path.trim_end_matches('/') };
        Self {
            name: name.to_owned(),
            chunk_names: (0..MAX_CHUNKS).map(|i| format!("{name}_{i}")).collect(),
            flow_prefix: format!("{name}_flow_"),
            domain: domain.filter(|d| !d.is_empty() && !host_only).map(str::to_owned),
            secure,
            session_path: if base.is_empty() { "/".to_owned() } else { base.to_owned() },
            flow_path: if host_only { "/".to_owned() } else { format!("{base}/oauth2/") },
            max_age,
        }
    }

    /// Whether `name` is one of this gateway's login-flow cookies.
    pub fn is_flow(&self, name: &str) -> bool {
        name.starts_with(self.flow_prefix.as_str())
    }

    /// The flow cookies a request carried, as `(name, sealed value)`.
    pub fn flows<'s, 'h: 's>(&'s self, headers: &'h HeaderMap) -> impl Iterator<Item = (&'h str, &'h str)> + 's {
        pairs(headers).filter(move |(n, _)| self.is_flow(n))
    }

    /// The session cookie's name (also its associated data).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the flow cookie for a login whose `state` is given.
    pub fn flow_name(&self, state: &str) -> String {
        let tag: String = state.chars().filter(char::is_ascii_alphanumeric).take(16).collect();
        format!("{}{tag}", self.flow_prefix)
    }

    fn chunk_index(&self, cookie: &str) -> Option<usize> {
        let rest = cookie.strip_prefix(self.name.as_str())?.strip_prefix('_')?;
        if rest.is_empty()
            || rest.len() > 2
            || !rest.bytes().all(|b| b.is_ascii_digit())
            || (rest.len() > 1 && rest.starts_with('0'))
        {
            return None;
        }
        rest.parse().ok().filter(|&i| i < MAX_CHUNKS)
    }

    /// Whether a cookie of this name belongs to the gateway (and so must
    /// never reach the upstream).
    pub fn is_ours(&self, cookie: &str) -> bool {
        cookie == self.name || cookie.starts_with(self.flow_prefix.as_str()) || self.chunk_index(cookie).is_some()
    }

    /// The sealed session value, reassembled from chunks if need be, and
    /// which session cookies were present.
    pub fn read_session<'h>(&self, headers: &'h HeaderMap) -> (Option<Cow<'h, str>>, Present) {
        let mut present = Present::default();
        let mut single = None;
        let mut chunks: [Option<&'h str>; MAX_CHUNKS] = [None; MAX_CHUNKS];
        for (name, value) in pairs(headers) {
            if name == self.name {
                present.single = true;
                single = Some(value);
            } else if let Some(i) = self.chunk_index(name) {
                present.chunks |= 1 << i;
                chunks[i] = Some(value);
            }
        }
        if let Some(value) = single {
            return (Some(Cow::Borrowed(value)), present);
        }
        let n = chunks.iter().take_while(|c| c.is_some()).count();
        if n == 0 {
            return (None, present);
        }
        let mut joined = String::with_capacity(n * CHUNK_LEN);
        for chunk in chunks.iter().take(n).flatten() {
            joined.push_str(chunk);
        }
        (Some(Cow::Owned(joined)), present)
    }

    /// Appends the `Set-Cookie` headers that store `sealed` as the session,
    /// expiring whichever previous session cookies it no longer uses.
    pub fn write_session(&self, sealed: &str, present: Present, out: &mut HeaderMap) -> Result<(), TooLarge> {
        if sealed.len() <= CHUNK_LEN {
            out.append(SET_COOKIE, self.cookie(&self.name, sealed, &self.session_path, Some(self.max_age)));
            self.expire_chunks(present, 0, out);
            return Ok(());
        }
        let n = sealed.len().div_ceil(CHUNK_LEN);
        if n > MAX_CHUNKS {
            return Err(TooLarge(sealed.len()));
        }
        for (i, chunk) in sealed.as_bytes().chunks(CHUNK_LEN).enumerate() {
            let chunk = std::str::from_utf8(chunk).expect("sealed values are ASCII");
            out.append(SET_COOKIE, self.cookie(&self.chunk_names[i], chunk, &self.session_path, Some(self.max_age)));
        }
        if present.single {
            out.append(SET_COOKIE, self.cookie(&self.name, "", &self.session_path, None));
        }
        self.expire_chunks(present, n, out);
        Ok(())
    }

    /// Appends the `Set-Cookie` headers that delete the session: the plain
    /// cookie and every chunk the request carried.
    pub fn clear_session(&self, present: Present, out: &mut HeaderMap) {
        out.append(SET_COOKIE, self.cookie(&self.name, "", &self.session_path, None));
        self.expire_chunks(present, 0, out);
    }

    fn expire_chunks(&self, present: Present, from: usize, out: &mut HeaderMap) {
        for i in from..MAX_CHUNKS {
            if present.chunks & (1 << i) != 0 {
                out.append(SET_COOKIE, self.cookie(&self.chunk_names[i], "", &self.session_path, None));
            }
        }
    }

    /// Sets a flow cookie for `max_age` seconds, unless the cookie would be
    /// larger than a browser keeps ([`MAX_COOKIE_BYTES`]).
    pub fn write_flow(&self, name: &str, sealed: &str, max_age: u64, out: &mut HeaderMap) -> Result<(), TooLarge> {
        let cookie = self.cookie(name, sealed, &self.flow_path, Some(max_age));
        if cookie.len() > MAX_COOKIE_BYTES {
            return Err(TooLarge(cookie.len()));
        }
        out.append(SET_COOKIE, cookie);
        Ok(())
    }

    /// Deletes a flow cookie.
    pub fn clear_flow(&self, name: &str, out: &mut HeaderMap) {
        out.append(SET_COOKIE, self.cookie(name, "", &self.flow_path, None));
    }

    /// The value of the first cookie called `name`.
    pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
        pairs(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Whether a `Cookie` header value holds any of the gateway's cookies.
    pub fn has_ours(&self, value: &[u8]) -> bool {
        value.split(|b| *b == b';').any(|raw| raw_name(raw).is_some_and(|n| self.is_ours(n)))
    }

    /// Appends every pair of `value` that is not the gateway's to `out`,
    /// `; `-separated. Pairs are copied as they came, malformed or not: they
    /// are the upstream's business.
    pub fn append_foreign(&self, value: &[u8], out: &mut bytes::BytesMut) {
        for raw in value.split(|b| *b == b';') {
            let raw = raw.trim_ascii();
            if raw.is_empty() || raw_name(raw).is_some_and(|n| self.is_ours(n)) {
                continue;
            }
            if !out.is_empty() {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(raw);
        }
    }

    /// One `Set-Cookie` value; `max_age: None` deletes the cookie.
    fn cookie(&self, name: &str, value: &str, path: &str, max_age: Option<u64>) -> HeaderValue {
        let mut builder =
            Cookie::build((name, value)).path(path).http_only(true).secure(self.secure).same_site(SameSite::Lax);
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.as_str());
        }
        builder = match max_age {
            Some(secs) => builder.max_age(cookie::time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))),
            None => builder.removal(),
        };
        HeaderValue::try_from(builder.build().to_string()).expect("cookie names and values are header-safe")
    }
}

/// The name of one raw `name=value` pair, if it is text.
fn raw_name(raw: &[u8]) -> Option<&str> {
    let name = raw.split(|b| *b == b'=').next()?;
    std::str::from_utf8(name.trim_ascii()).ok()
}

/// Every well-formed `name=value` pair of every `Cookie` header; a
/// malformed pair is skipped on its own.
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers.get_all(COOKIE).iter().flat_map(|v| v.as_bytes().split(|b| *b == b';')).filter_map(|raw| {
        let text = std::str::from_utf8(raw).ok()?.trim();
        let cookie = Cookie::parse(text).ok()?;
        Some((cookie.name_raw()?, cookie.value_raw()?))
    })
}

#[cfg(test)]
mod tests {
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
}
