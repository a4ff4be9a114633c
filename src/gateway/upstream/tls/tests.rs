//! The settings' error cases, and in-memory handshakes against a rustls
//! server for what each setting lets through.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConnection, ServerConfig, ServerConnection};

use super::*;
use crate::gateway::config::Redacted;

/// A CA and the PEM of its certificate.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { issuer: Issuer::new(params, key), pem }
}

/// A leaf for `names` signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    (params.signed_by(&key, &ca.issuer).unwrap().pem(), key.serialize_pem())
}

fn tls(ca_pem: Option<&str>, cert: Option<&str>, key: Option<&str>) -> TlsConfig {
    TlsConfig {
        ca_pem: ca_pem.map(str::to_owned),
        client_cert_pem: cert.map(str::to_owned),
        client_key_pem: key.map(Redacted::new),
        insecure_skip_verify: false,
    }
}

fn err(config: &TlsConfig) -> TlsError {
    client_config(Some(config)).expect_err("settings refused")
}

/// A server presenting `cert` and signing with `key` (which need not
/// match: rustls' own builder would refuse that).
fn server(cert: &str, key: &str) -> ServerConfig {
    let provider = CryptoProvider::get_default().unwrap();
    let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let signer =
        provider.key_provider.load_private_key(PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap()).unwrap();
    let resolver = SingleCertAndKey::from(CertifiedKey::new(chain, signer));
    ServerConfig::builder().with_no_client_auth().with_cert_resolver(Arc::new(resolver))
}

/// Runs a handshake in memory; the client's error if it gave up.
fn handshake(client: ClientConfig, server: ServerConfig, name: &str) -> Result<(), rustls::Error> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut c = ClientConnection::new(Arc::new(client), name).unwrap();
    let mut s = ServerConnection::new(Arc::new(server)).unwrap();
    for _ in 0..16 {
        let mut wire = Vec::new();
        c.write_tls(&mut wire).unwrap();
        s.read_tls(&mut wire.as_slice()).unwrap();
        let server_failed = s.process_new_packets().is_err();
        wire.clear();
        s.write_tls(&mut wire).unwrap();
        c.read_tls(&mut wire.as_slice()).unwrap();
        c.process_new_packets()?;
        assert!(!server_failed, "the server gave up first");
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    panic!("the handshake did not finish");
}

#[test]
fn an_empty_bundle_or_one_without_certificates_is_refused() {
    crate::telemetry::install_crypto_provider();
    let (_, key) = leaf(&ca("a"), &["x"]);
    for bundle in ["", "   \n", "not PEM at all, just words", key.as_str()] {
        let e = err(&tls(Some(bundle), None, None));
        assert!(matches!(e, TlsError::EmptyCaBundle), "{bundle:?}: {e}");
        assert_eq!(e.to_string(), "the CA bundle holds no PEM certificate");
    }
}

#[test]
fn a_garbled_bundle_is_refused_without_quoting_it() {
    let garbage = "-----BEGIN CERTIFICATE-----\nnot*base64*SECRETISH\n-----END CERTIFICATE-----\n";
    let e = err(&tls(Some(garbage), None, None));
    assert!(matches!(e, TlsError::CaBundle(_)), "{e}");
    assert!(!e.to_string().contains("SECRETISH"), "{e}");
    // Valid base64, but no certificate inside.
    let not_a_cert = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    let e = err(&tls(Some(not_a_cert), None, None));
    assert!(e.to_string().starts_with("the CA bundle is unusable: certificate #1:"), "{e}");
    let unterminated = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n";
    assert!(matches!(err(&tls(Some(unterminated), None, None)), TlsError::CaBundle(_)));
}

#[test]
fn a_client_certificate_needs_its_key_and_the_key_its_certificate() {
    let ca = ca("a");
    let (cert, key) = leaf(&ca, &["client"]);
    let e = err(&tls(Some(&ca.pem), Some(&cert), None));
    assert_eq!(
        e.to_string(),
        "a client certificate needs both the certificate and its private key; only the certificate is set"
    );
    let e = err(&tls(Some(&ca.pem), None, Some(&key)));
    assert!(matches!(e, TlsError::HalfClientIdentity("private key")), "{e}");
}

#[test]
fn a_key_of_another_certificate_or_no_key_at_all_is_refused_without_quoting_it() {
    let ca = ca("a");
    let (cert, _) = leaf(&ca, &["client"]);
    let (_, other_key) = leaf(&ca, &["other"]);
    let e = err(&tls(Some(&ca.pem), Some(&cert), Some(&other_key)));
    assert_eq!(e.to_string(), "the client private key is unusable: it does not belong to the client certificate");
    let secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRET*\n-----END PRIVATE KEY-----\n";
    let e = err(&tls(Some(&ca.pem), Some(&cert), Some(secret)));
    assert!(matches!(e, TlsError::ClientKey(_)), "{e}");
    assert!(!e.to_string().contains("TOPSECRET") && !format!("{e:?}").contains("TOPSECRET"), "{e:?}");
    let e = err(&tls(Some(&ca.pem), Some(&ca.pem[..0]), Some(&other_key)));
    assert!(matches!(e, TlsError::ClientCert(_)), "{e}");
}

#[test]
fn insecure_skip_verify_and_a_bundle_exclude_each_other() {
    let ca = ca("a");
    let mut t = tls(Some(&ca.pem), None, None);
    t.insecure_skip_verify = true;
    assert!(matches!(err(&t), TlsError::InsecureWithCa));
}

#[test]
fn the_bundle_replaces_the_system_roots_and_names_are_checked() {
    let ca = ca("private");
    let (cert, key) = leaf(&ca, &["localhost"]);
    let config = client_config(Some(&tls(Some(&ca.pem), None, None))).unwrap();
    // hyper-rustls panics on a config that already has ALPN protocols.
    assert!(config.alpn_protocols.is_empty());
    assert!(config.enable_sni);
    handshake(config.clone(), server(&cert, &key), "localhost").expect("signed by the bundle's CA");
    let e = handshake(config.clone(), server(&cert, &key), "127.0.0.1").unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");

    // The system's roots do not know the private CA, and another CA's
    // bundle does not either.
    let native = client_config(None).unwrap();
    let e = handshake(native, server(&cert, &key), "localhost").unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    let other = client_config(Some(&tls(Some(&self::ca("other").pem), None, None))).unwrap();
    assert!(handshake(other, server(&cert, &key), "localhost").is_err());
}

#[test]
fn insecure_skip_verify_accepts_any_certificate_but_still_checks_the_handshake_signature() {
    let ca = ca("nobody-trusts-me");
    let (cert, key) = leaf(&ca, &["somewhere-else"]);
    let config = client_config(Some(&TlsConfig { insecure_skip_verify: true, ..Default::default() })).unwrap();
    assert!(config.alpn_protocols.is_empty());
    handshake(config.clone(), server(&cert, &key), "localhost").expect("an unknown CA and another name pass");
    // A server sending a certificate whose key it does not hold fails.
    let (_, stolen_from) = leaf(&ca, &["x"]);
    let e = handshake(config, server(&cert, &stolen_from), "localhost").unwrap_err();
    assert!(matches!(e, rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)), "{e:?}");
}

#[test]
fn a_client_certificate_is_offered() {
    let ca = ca("a");
    let (cert, key) = leaf(&ca, &["client"]);
    let with = client_config(Some(&tls(Some(&ca.pem), Some(&cert), Some(&key)))).unwrap();
    assert!(with.client_auth_cert_resolver.has_certs());
    let without = client_config(Some(&tls(Some(&ca.pem), None, None))).unwrap();
    assert!(!without.client_auth_cert_resolver.has_certs());
}
