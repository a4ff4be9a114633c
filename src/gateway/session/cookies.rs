//! The gateway's cookies: where they are read from, how a large session is
//! split into chunks, and the attributes they are written with.
//!
//! The session cookie is `NAME` when its sealed value fits one cookie, or
//! `NAME_0`, `NAME_1`, … otherwise; the chunks are concatenated before
//! decryption, so the whole value is authenticated at once. A login attempt
//! uses its own cookie, `NAME_flow_<tag>`, scoped to the `/oauth2/` paths.

use std::borrow::Cow;

use cookie::{Cookie, SameSite};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// Most chunks a session may be split into.
pub const MAX_CHUNKS: usize = 16;
/// Bytes of sealed value per chunk. Browsers keep cookies up to 4096 bytes
/// of name, value and attributes; this leaves room for the rest.
pub const CHUNK_LEN: usize = 3800;

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
    /// `base_path` is the external URL's path (`/` or `/prefix/`);
    /// `secure` should be false only for loopback `http://` external URLs.
    pub fn new(name: &str, domain: Option<&str>, secure: bool, base_path: &str, max_age: u64) -> Self {
        let base = base_path.trim_end_matches('/');
        Self {
            name: name.to_owned(),
            chunk_names: (0..MAX_CHUNKS).map(|i| format!("{name}_{i}")).collect(),
            flow_prefix: format!("{name}_flow_"),
            domain: domain.filter(|d| !d.is_empty()).map(str::to_owned),
            secure,
            session_path: format!("{base}/"),
            flow_path: format!("{base}/oauth2/"),
            max_age,
        }
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

    /// Sets a flow cookie for ten minutes.
    pub fn write_flow(&self, name: &str, sealed: &str, max_age: u64, out: &mut HeaderMap) {
        out.append(SET_COOKIE, self.cookie(name, sealed, &self.flow_path, Some(max_age)));
    }

    /// Deletes a flow cookie.
    pub fn clear_flow(&self, name: &str, out: &mut HeaderMap) {
        out.append(SET_COOKIE, self.cookie(name, "", &self.flow_path, None));
    }

    /// The value of the first cookie called `name`.
    pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
        pairs(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A `Cookie` header value with the gateway's own cookies removed:
    /// `None` if it contained none of them (forward it unchanged),
    /// `Some(None)` if nothing is left, else the rewritten value.
    pub fn without_ours(&self, value: &HeaderValue) -> Option<Option<HeaderValue>> {
        let text = value.to_str().ok()?;
        if !text.split(';').any(|p| self.is_ours(cookie_name(p))) {
            return None;
        }
        let mut kept = String::with_capacity(text.len());
        for part in text.split(';') {
            let part = part.trim();
            if part.is_empty() || self.is_ours(cookie_name(part)) {
                continue;
            }
            if !kept.is_empty() {
                kept.push_str("; ");
            }
            kept.push_str(part);
        }
        if kept.is_empty() { Some(None) } else { Some(HeaderValue::from_str(&kept).ok()) }
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

fn cookie_name(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(n, _)| n).trim()
}

/// Every `name=value` pair of every `Cookie` header.
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .map(|(n, v)| (n.trim(), v.trim()))
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
        assert!(c.contains("Path=/base/"));
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
        let v = HeaderValue::from_static("a=1; _ag=secret; b=2; _ag_0=x; _ag_flow_q=y");
        assert_eq!(s.without_ours(&v), Some(Some(HeaderValue::from_static("a=1; b=2"))));
        assert_eq!(s.without_ours(&HeaderValue::from_static("_ag=secret")), Some(None));
        assert_eq!(s.without_ours(&HeaderValue::from_static("a=1; b=2")), None);
    }

    #[test]
    fn flow_cookie_name_derives_from_state() {
        let s = settings();
        assert_eq!(s.flow_name("AbC-_123456789012345678"), "_ag_flow_AbC1234567890123");
        assert!(s.is_ours(&s.flow_name("xyz")));
    }
}
