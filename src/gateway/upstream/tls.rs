//! TLS towards upstreams: which roots verify the upstream's certificate,
//! which client certificate is presented, and (loudly) no verification.
//!
//! - Roots: the PEM `caPem` when given, *replacing* the system's roots (a
//!   private CA trusts only itself); else the system's roots.
//! - Client certificate: `clientCertPem` and `clientKeyPem` together, or
//!   neither. The key must belong to the chain's first certificate.
//! - `insecureSkipVerify`: any server certificate is accepted, but the
//!   handshake's signatures are still checked (the server must hold the
//!   key of the certificate it sent). See [`warn_if_insecure`].
//! - SNI and the name checked are the upstream URL's host: hyper-rustls
//!   takes them from the request URI. An IP address is checked against the
//!   certificate's IP SANs and sends no SNI.
//! - ALPN: none is offered. hyper-rustls fills it in from the HTTP
//!   versions enabled (only HTTP/1.1 here, which offers no ALPN), and
//!   panics if the config already has some. A server that sees no ALPN
//!   speaks HTTP/1.1: HTTP/2 over TLS needs ALPN (RFC 9113 §3.2).
//!
//! Error messages name what is wrong, never PEM contents.

use std::sync::{Arc, LazyLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use url::Url;

use crate::contract::routes::TlsConfig;

/// Why an upstream's TLS settings are unusable. Messages never contain
/// PEM contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The system's roots could not be loaded.
    #[error("cannot load the system's TLS roots: {0}")]
    NativeRoots(String),
    /// The CA bundle is not PEM, or a certificate in it is malformed.
    #[error("the CA bundle is unusable: {0}")]
    CaBundle(String),
    /// The CA bundle parsed, but holds no certificate.
    #[error("the CA bundle holds no PEM certificate")]
    EmptyCaBundle,
    /// Only one of the client certificate and its key is set.
    #[error("a client certificate needs both the certificate and its private key; only the {0} is set")]
    HalfClientIdentity(&'static str),
    /// The client certificate chain is not usable.
    #[error("the client certificate is unusable: {0}")]
    ClientCert(String),
    /// The client private key is not usable.
    #[error("the client private key is unusable: {0}")]
    ClientKey(String),
    /// `insecureSkipVerify` together with a CA bundle: one of them is a
    /// mistake.
    #[error("insecureSkipVerify and a CA bundle exclude each other")]
    InsecureWithCa,
    /// rustls refused the settings (protocol versions, key types).
    #[error("TLS settings refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls client config for an upstream with `tls` settings (`None`:
/// the system's roots, no client certificate). Its ALPN list is empty, as
/// hyper-rustls requires (see the module docs).
pub fn client_config(tls: Option<&TlsConfig>) -> Result<ClientConfig, TlsError> {
    crate::telemetry::install_crypto_provider();
    let provider = CryptoProvider::get_default().cloned().expect("a rustls crypto provider was just installed");
    let tls = tls.cloned().unwrap_or_default();
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if tls.insecure_skip_verify {
        if tls.ca_pem.is_some() {
            return Err(TlsError::InsecureWithCa);
        }
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let roots = match &tls.ca_pem {
            Some(pem) => root_store(pem)?,
            None => native_roots()?,
        };
        builder.with_root_certificates(roots)
    };
    let key = tls.client_key_pem.as_ref().map(|k| k.expose());
    Ok(match (tls.client_cert_pem.as_deref(), key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(TlsError::HalfClientIdentity("certificate")),
        (None, Some(_)) => return Err(TlsError::HalfClientIdentity("private key")),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert).map_err(TlsError::ClientCert)?;
            if chain.is_empty() {
                return Err(TlsError::ClientCert("no PEM certificate found".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| TlsError::ClientKey(pem_error(&e)))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => {
                    TlsError::ClientKey("it does not belong to the client certificate".into())
                }
                e => TlsError::ClientCert(e.to_string()),
            })?
        }
    })
}

/// The roots of a PEM CA bundle, alone. Also used for identity providers'
/// bundles, so both report a bad bundle the same way.
pub fn root_store(ca_pem: &str) -> Result<RootCertStore, TlsError> {
    let certs = certificates(ca_pem).map_err(TlsError::CaBundle)?;
    if certs.is_empty() {
        return Err(TlsError::EmptyCaBundle);
    }
    let mut roots = RootCertStore::empty();
    for (n, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::CaBundle(format!("certificate #{}: {e}", n + 1)))?;
    }
    Ok(roots)
}

/// Logs, loudly, that `upstream`'s certificate is not verified when
/// `tls` says so. Called once per route at startup (the proxies are built
/// once per serving thread, so [`client_config`] cannot be the one).
pub fn warn_if_insecure(prefix: &str, upstream: &Url, tls: Option<&TlsConfig>) {
    if tls.is_some_and(|t| t.insecure_skip_verify) && upstream.scheme() == "https" {
        let route = if prefix.is_empty() { "/" } else { prefix };
        tracing::warn!(
            route,
            upstream_host = upstream.host_str().unwrap_or_default(),
            "insecureSkipVerify: the upstream's TLS certificate is NOT verified; anyone on the network path can \
             read and change this traffic, injected credentials included"
        );
    }
}

/// The system's roots, read and parsed once per process: every serving
/// thread builds a client per route, and reading the system's store each
/// time would delay the listeners' start.
fn native_roots() -> Result<RootCertStore, TlsError> {
    static NATIVE: LazyLock<Result<RootCertStore, String>> = LazyLock::new(|| {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if roots.is_empty() {
            return Err(format!("none found, {} errors", native.errors.len()));
        }
        Ok(roots)
    });
    NATIVE.clone().map_err(TlsError::NativeRoots)
}

/// Every `CERTIFICATE` section of `pem` (other sections are skipped).
fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().map_err(|e| pem_error(&e))
}

/// What is wrong with a PEM text, without quoting it (its `Display`
/// quotes lines, which for a key would be secret).
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        Error::Base64Decode(_) => "a PEM section is not valid base64",
        Error::NoItemsFound => "no PEM section of the expected kind found",
        Error::SectionTooLarge => "a PEM section is too large",
        _ => "not valid PEM",
    }
    .into()
}

/// `insecureSkipVerify`: trusts whatever certificate the server sends, but
/// still makes it prove it holds that certificate's key, with the crypto
/// provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
