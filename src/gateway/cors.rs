//! CORS, as the policy (or a route) declares it: the gateway answers
//! preflight `OPTIONS` itself, before authentication (browsers never send
//! cookies on a preflight), and adds the CORS response headers to what an
//! allowed origin gets back. An origin that is not allowed gets no CORS
//! header at all, and its preflight is handled like any other request.
//!
//! The upstream's own `Access-Control-*` headers are replaced on a route
//! with CORS settings, so the two never disagree.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::api::Cors;

/// Methods allowed when a policy names none.
const DEFAULT_METHODS: [Method; 3] = [Method::GET, Method::HEAD, Method::POST];

/// A policy's CORS settings, parsed once.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    /// Allowed origins, exact; `None`: any origin (`*`).
    origins: Option<Vec<HeaderValue>>,
    methods: Vec<Method>,
    methods_value: HeaderValue,
    /// Allowed request headers, lower case.
    headers: Vec<String>,
    headers_value: Option<HeaderValue>,
    expose_value: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

impl CorsPolicy {
    /// Parses `cors`; errors name the field.
    pub fn new(cors: &Cors) -> Result<Self, String> {
        let value = |field: &str, v: String| {
            HeaderValue::try_from(v).map_err(|_| format!("cors.{field} does not fit in a header"))
        };
        let origins = if cors.allowed_origins.iter().any(|o| o == "*") {
            if cors.allow_credentials {
                return Err("cors: allowCredentials cannot be combined with the '*' origin".into());
            }
            None
        } else {
            Some(
                cors.allowed_origins
                    .iter()
                    .map(|o| value("allowedOrigins", o.trim_end_matches('/').to_owned()))
                    .collect::<Result<_, _>>()?,
            )
        };
        let methods: Vec<Method> = if cors.allowed_methods.is_empty() {
            DEFAULT_METHODS.to_vec()
        } else {
            cors.allowed_methods
                .iter()
                .map(|m| {
                    Method::from_bytes(m.as_bytes()).map_err(|_| format!("cors.allowedMethods: {m:?} is not a method"))
                })
                .collect::<Result<_, _>>()?
        };
        let join = |items: &mut dyn Iterator<Item = &str>| items.collect::<Vec<_>>().join(", ");
        let methods_value = value("allowedMethods", join(&mut methods.iter().map(Method::as_str)))?;
        let headers: Vec<String> = cors.allowed_headers.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        let list = |field: &str, items: &[String]| {
            (!items.is_empty()).then(|| value(field, join(&mut items.iter().map(String::as_str)))).transpose()
        };
        Ok(Self {
            origins,
            methods_value,
            methods,
            headers_value: list("allowedHeaders", &cors.allowed_headers)?,
            headers,
            expose_value: list("exposeHeaders", &cors.expose_headers)?,
            credentials: cors.allow_credentials,
            max_age: cors.max_age_seconds.map(HeaderValue::from),
        })
    }

    /// The request's `Origin` when this policy allows it.
    pub fn allowed_origin<'h>(&self, request: &'h HeaderMap) -> Option<&'h HeaderValue> {
        let origin = request.get(ORIGIN)?;
        match &self.origins {
            None => Some(origin),
            Some(list) => list.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes())).then_some(origin),
        }
    }

    /// The answer to a CORS preflight from an allowed origin asking for an
    /// allowed method and headers; `None` when the request is not such a
    /// preflight (it then goes on like any other request).
    pub fn preflight(&self, method: &Method, request: &HeaderMap) -> Option<(StatusCode, HeaderMap)> {
        if method != Method::OPTIONS {
            return None;
        }
        let asked = request.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        let origin = self.allowed_origin(request)?;
        let asked = Method::from_bytes(asked.as_bytes()).ok()?;
        if !self.methods.contains(&asked) {
            return None;
        }
        let headers_ok = request
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .all(|h| self.headers.iter().any(|a| a.eq_ignore_ascii_case(h)));
        if !headers_ok {
            return None;
        }
        let mut out = HeaderMap::new();
        self.decorate(origin.clone(), &mut out);
        out.insert(ACCESS_CONTROL_ALLOW_METHODS, self.methods_value.clone());
        if let Some(h) = &self.headers_value {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
        }
        if let Some(age) = &self.max_age {
            out.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        Some((StatusCode::NO_CONTENT, out))
    }

    /// Sets the CORS headers of a response to `origin` (already allowed),
    /// replacing any the upstream sent.
    pub fn decorate(&self, origin: HeaderValue, response: &mut HeaderMap) {
        for name in [
            &ACCESS_CONTROL_ALLOW_ORIGIN,
            &ACCESS_CONTROL_ALLOW_CREDENTIALS,
            &ACCESS_CONTROL_EXPOSE_HEADERS,
            &ACCESS_CONTROL_ALLOW_METHODS,
            &ACCESS_CONTROL_ALLOW_HEADERS,
            &ACCESS_CONTROL_MAX_AGE,
        ] {
            response.remove(name);
        }
        match &self.origins {
            None => {
                response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            }
            Some(_) => {
                response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                response.append(VARY, HeaderValue::from_static("Origin"));
            }
        }
        if self.credentials {
            response.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if let Some(e) = &self.expose_value {
            response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}

#[cfg(test)]
mod tests;
