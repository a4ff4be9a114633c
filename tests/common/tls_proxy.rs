//! A TLS-terminating reverse proxy with a certificate of the test's own
//! CA ([`super::pki::TestCa`]), in front of a plain-http server such as the
//! OP: the way a private-CA service looks to authgate.
//!
//! The backend's origin is rewritten to the proxy's in response bodies and
//! `Location` headers, so the OP, which knows nothing of the proxy,
//! announces the https issuer and endpoints (discovery's issuer must match
//! the URL it is fetched from).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;

use super::pki::Pem;

/// A running proxy; stopped on drop.
pub struct TlsProxy {
    /// `https://<host>:<port>` (no trailing slash), the host being the one
    /// asked for (and on the certificate).
    pub origin: String,
    /// Requests it forwarded.
    pub hits: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Serves `https://{host}:<free port>` on 127.0.0.1 with `cert`,
    /// forwarding to `backend` (e.g. `http://127.0.0.1:39123`).
    pub async fn start(cert: &Pem, host: &str, backend: &Url) -> Self {
        super::init();
        let chain = CertificateDer::pem_slice_iter(cert.cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_slice(cert.key.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("https://{host}:{}", listener.local_addr().unwrap().port());
        let backend_origin = backend.origin().ascii_serialization();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let forward = Arc::new(Forward {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            backend: backend_origin,
            public: origin.clone(),
            hits: hits.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, forward) = (acceptor.clone(), forward.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |req| {
                        let forward = forward.clone();
                        async move { Ok::<_, Infallible>(forward.send(req).await) }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Self { origin, hits, task }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Forward {
    http: reqwest::Client,
    backend: String,
    public: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
}

impl Forward {
    async fn send(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let mut outgoing = self.http.request(parts.method, format!("{}{path}", self.backend)).body(body);
        for (name, value) in &parts.headers {
            if !matches!(name.as_str(), "host" | "content-length" | "connection" | "accept-encoding") {
                outgoing = outgoing.header(name, value);
            }
        }
        let upstream = match outgoing.send().await {
            Ok(r) => r,
            Err(_) => return Response::builder().status(502).body(Full::default()).unwrap(),
        };
        let mut response = Response::builder().status(upstream.status());
        for (name, value) in upstream.headers() {
            if matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
                continue;
            }
            let value = match (name.as_str(), value.to_str()) {
                ("location", Ok(v)) => v.replace(&self.backend, &self.public).parse().unwrap_or_else(|_| value.clone()),
                _ => value.clone(),
            };
            response = response.header(name, value);
        }
        let bytes = upstream.bytes().await.unwrap_or_default();
        let body = match std::str::from_utf8(&bytes) {
            Ok(text) => Bytes::from(text.replace(&self.backend, &self.public)),
            Err(_) => bytes,
        };
        response.body(Full::new(body)).unwrap()
    }
}
