//! The HTTP client used to talk to identity providers: reqwest 0.13 behind
//! the `oauth2`/`openidconnect` client trait, redirects off, bounded bodies.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Largest provider response the gateway reads.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// How long one provider request may take, body included.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A transport failure talking to a provider. Messages never include URLs'
/// query strings or bodies (they can carry codes or tokens).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, TLS, timeouts.
    #[error("{0}")]
    Transport(String),
    /// The response exceeded [`MAX_BODY`].
    #[error("response body larger than {MAX_BODY} bytes")]
    TooLarge,
}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(e.without_url().to_string())
    }
}

/// Client for provider endpoints.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    promote_error_bodies: bool,
}

impl HttpClient {
    /// A client with timeouts, no redirects and authgate's user agent,
    /// trusting the system's roots.
    pub fn new() -> Result<Self, reqwest::Error> {
        let inner = crate::idp::client(TIMEOUT)?;
        Ok(Self { inner, promote_error_bodies: false })
    }

    /// The client for a provider with `ca_pem` (its `caBundle`): this one
    /// when `None`, else one that trusts only those PEM roots, for token,
    /// userinfo, JWKS and API calls alike. A bundle without a usable
    /// certificate is refused here, with the same messages as an
    /// upstream's, rather than failing every call later.
    pub fn trusting(&self, ca_pem: Option<&str>) -> Result<Self, String> {
        let Some(pem) = ca_pem else {
            return Ok(self.clone());
        };
        crate::gateway::upstream::tls::root_store(pem).map_err(|e| e.to_string())?;
        let inner = crate::idp::client_with_ca(TIMEOUT, Some(pem)).map_err(|e| e.without_url().to_string())?;
        Ok(Self { inner, promote_error_bodies: self.promote_error_bodies })
    }

    /// The same client, but treating an HTTP 200 whose JSON body carries an
    /// `error` member as the error it is. GitHub's token endpoint answers
    /// failures (`bad_verification_code`, …) that way.
    pub fn promoting_error_bodies(&self) -> Self {
        Self { inner: self.inner.clone(), promote_error_bodies: true }
    }

    /// The underlying reqwest client, for plain API calls.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let response = self.inner.execute(request).await?;
        let mut status = response.status();
        let headers = response.headers().clone();
        let body = read_limited(response).await?;
        if self.promote_error_bodies && status == http::StatusCode::OK && has_error_member(&body) {
            status = http::StatusCode::BAD_REQUEST;
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

/// Reads a body up to [`MAX_BODY`].
pub async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, HttpError> {
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(HttpError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn has_error_member(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        error: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|p| p.error.is_some_and(|e| e.is_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_member_probe() {
        assert!(has_error_member(br#"{"error":"bad_verification_code","error_description":"x"}"#));
        assert!(!has_error_member(br#"{"access_token":"x","token_type":"bearer"}"#));
        assert!(!has_error_member(br#"{"error":null}"#));
        assert!(!has_error_member(b"access_token=x"));
    }

    #[test]
    fn a_providers_bundle_is_checked_when_its_client_is_made() {
        crate::telemetry::install_crypto_provider();
        let http = HttpClient::new().unwrap();
        assert_eq!(http.trusting(Some("")).unwrap_err(), "the CA bundle holds no PEM certificate");
        assert_eq!(http.trusting(Some("garbage")).unwrap_err(), "the CA bundle holds no PEM certificate");
        let garbled = "-----BEGIN CERTIFICATE-----\n*\n-----END CERTIFICATE-----\n";
        assert!(http.trusting(Some(garbled)).unwrap_err().starts_with("the CA bundle is unusable"));
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).unwrap().cert.pem();
        let private = http.promoting_error_bodies().trusting(Some(&ca)).unwrap();
        assert!(private.promote_error_bodies, "the token client keeps its error handling");
        assert!(http.trusting(None).is_ok());
    }
}
