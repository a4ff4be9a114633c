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
mod tests;
