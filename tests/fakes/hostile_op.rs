//! A hostile OpenID Provider: a correct authorization-code + PKCE OP (OpenID
//! Connect Core 1.0 §3.1, Discovery 1.0, RFC 7636) whose ID tokens are
//! crafted per test so that each is wrong in exactly one way.
//!
//! - `GET {issuer}/.well-known/openid-configuration`: discovery; its
//!   `issuer` can be made to differ from the real one.
//! - `GET {issuer}/jwks`: the published RSA keys.
//! - `GET {issuer}/authorize`: no sign-in page; redirects back with `code`
//!   and the echoed `state`, remembering `nonce` and the PKCE challenge.
//! - `POST {issuer}/token`: checks client authentication
//!   (`client_secret_basic` or `client_secret_post`), code, `redirect_uri`
//!   and `code_verifier` (S256), then returns an ID token shaped by the
//!   current [`Mode`].
//! - `GET {issuer}/userinfo`: the same user's claims, for a Bearer token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::random_token;
use crate::common::serve::{TaskGuard, bind, spawn_server};

/// Path of the issuer on the fake's origin. A path (not the bare origin)
/// keeps `Url` from adding a trailing slash to the issuer identifier.
pub const ISSUER_PATH: &str = "/op";

/// The user every token is about.
pub const SUBJECT: &str = "248289761001";
pub const EMAIL: &str = "alice@example.com";

/// How the next ID token is crafted. Every mode except [`Mode::Valid`] and
/// [`Mode::RotatedKey`] must be refused by a relying party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A correct ID token signed with the published key.
    Valid,
    /// Signed by a key the OP never published, under the published `kid`.
    BadSignature,
    /// A valid token whose payload was altered after signing.
    TamperedPayload,
    /// `alg: none` with an empty signature.
    AlgNone,
    /// `iss` is not the configured issuer.
    IssuerMismatch,
    /// `aud` does not contain the client.
    WrongAudience,
    /// `aud` has the client and another party, and there is no `azp`.
    MultiAudienceNoAzp,
    /// `aud` has the client and another party, and `azp` is the other party.
    MultiAudienceWrongAzp,
    /// `exp` an hour ago.
    Expired,
    /// No `iat`.
    MissingIat,
    /// No `sub`.
    MissingSub,
    /// No `aud`.
    MissingAud,
    /// `nonce` differs from the one in the authorization request.
    NonceMismatch,
    /// No `nonce` although one was sent.
    MissingNonce,
    /// HS256 with the OP's RSA public key (PEM) as the HMAC secret.
    HmacKeyConfusion,
    /// Signed with a new key whose `kid` the JWKS publishes only from the
    /// moment this token is issued: the RP must refetch and accept.
    RotatedKey,
    /// Signed with a key under a `kid` the JWKS never publishes.
    UnknownKid,
    /// A correct token without `email_verified`, in the ID token and in
    /// userinfo alike, as Microsoft Entra ID issues them.
    NoEmailVerified,
}

/// Every mode a relying party must refuse.
pub const HOSTILE_MODES: &[Mode] = &[
    Mode::BadSignature,
    Mode::TamperedPayload,
    Mode::AlgNone,
    Mode::IssuerMismatch,
    Mode::WrongAudience,
    Mode::MultiAudienceNoAzp,
    Mode::MultiAudienceWrongAzp,
    Mode::Expired,
    Mode::MissingIat,
    Mode::MissingSub,
    Mode::MissingAud,
    Mode::NonceMismatch,
    Mode::MissingNonce,
    Mode::HmacKeyConfusion,
    Mode::UnknownKid,
];

/// An RSA key pair in the forms the OP needs.
pub struct RsaKey {
    pub kid: String,
    pub private: rsa::RsaPrivateKey,
    pub encoding: EncodingKey,
    /// SubjectPublicKeyInfo PEM, the usual "public key" an attacker copies.
    pub public_pem: String,
    pub n: String,
    pub e: String,
}

impl RsaKey {
    fn generate(kid: &str) -> Self {
        let private = rsa::RsaPrivateKey::new(&mut CompatRng, 2048).expect("generate RSA key");
        let der = private.to_pkcs1_der().expect("pkcs1 der");
        let public = private.to_public_key();
        let public_pem = public.to_public_key_pem(LineEnding::LF).expect("public pem");
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            private,
            public_pem,
        }
    }

    /// This key as a JWK (RFC 7517 §4, RFC 7518 §6.3.1).
    pub fn jwk(&self) -> Value {
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e})
    }
}

/// rand 0.9's thread RNG behind the rand_core 0.6 traits that `rsa` 0.9 wants.
struct CompatRng;

impl rsa::rand_core::RngCore for CompatRng {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(&mut rand::rng())
    }
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut rand::rng())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rng(), dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        rand::RngCore::fill_bytes(&mut rand::rng(), dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for CompatRng {}

/// The keys of every OP in this process: generated once (RSA generation is
/// slow), shared by all tests.
pub struct Keys {
    /// Published from the start.
    pub primary: RsaKey,
    /// Published only once a [`Mode::RotatedKey`] token is issued.
    pub rotated: RsaKey,
    /// Never published.
    pub attacker: RsaKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (primary, (rotated, attacker)) = std::thread::scope(|s| {
            let a = s.spawn(|| RsaKey::generate("attacker-key"));
            let p = RsaKey::generate("key-2024-01");
            let r = RsaKey::generate("key-2024-07");
            (p, (r, a.join().expect("keygen")))
        });
        Keys { primary, rotated, attacker }
    })
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// What the authorize endpoint received.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest {
    pub params: BTreeMap<String, String>,
}

struct Grant {
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: String,
    scope: String,
}

struct Inner {
    mode: Mode,
    client_id: String,
    client_secret: String,
    registered_redirect: Option<String>,
    discovery_issuer: Option<String>,
    rotated_published: bool,
    grants: BTreeMap<String, Grant>,
    access_tokens: BTreeMap<String, String>,
    authorize_requests: Vec<AuthorizeRequest>,
    token_requests: Vec<BTreeMap<String, String>>,
    issued_id_tokens: Vec<String>,
    issued_access_tokens: Vec<String>,
    jwks_fetches: usize,
    discovery_fetches: usize,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    issuer: String,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The hostile OP, serving until dropped.
pub struct HostileOp {
    shared: Shared,
    pub addr: SocketAddr,
    _task: TaskGuard,
}

impl HostileOp {
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let _ = keys();
        let (listener, addr) = bind().await;
        let issuer = format!("http://{addr}{ISSUER_PATH}");
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                mode: Mode::Valid,
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                registered_redirect: None,
                discovery_issuer: None,
                rotated_published: false,
                grants: BTreeMap::new(),
                access_tokens: BTreeMap::new(),
                authorize_requests: vec![],
                token_requests: vec![],
                issued_id_tokens: vec![],
                issued_access_tokens: vec![],
                jwks_fetches: 0,
                discovery_fetches: 0,
            })),
            issuer,
        };
        let task = spawn_server(listener, router(shared.clone()));
        Self { shared, addr, _task: task }
    }

    /// The real issuer identifier, `http://127.0.0.1:PORT/op`.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    fn endpoint(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.shared.issuer)).expect("url")
    }

    pub fn issuer_url(&self) -> Url {
        self.endpoint("")
    }
    pub fn discovery_url(&self) -> Url {
        self.endpoint("/.well-known/openid-configuration")
    }
    pub fn authorize_url(&self) -> Url {
        self.endpoint("/authorize")
    }
    pub fn token_url(&self) -> Url {
        self.endpoint("/token")
    }
    pub fn jwks_url(&self) -> Url {
        self.endpoint("/jwks")
    }
    pub fn userinfo_url(&self) -> Url {
        self.endpoint("/userinfo")
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().mode = mode;
    }

    /// Makes discovery claim another `issuer` than the one it is served at.
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        self.shared.lock().discovery_issuer = issuer.map(str::to_owned);
    }

    /// The client's registered redirect URI; others are refused.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.shared.lock().registered_redirect = Some(uri.to_owned());
    }

    pub fn jwks_fetches(&self) -> usize {
        self.shared.lock().jwks_fetches
    }

    pub fn discovery_fetches(&self) -> usize {
        self.shared.lock().discovery_fetches
    }

    pub fn authorize_requests(&self) -> Vec<AuthorizeRequest> {
        self.shared.lock().authorize_requests.clone()
    }

    pub fn token_requests(&self) -> Vec<BTreeMap<String, String>> {
        self.shared.lock().token_requests.clone()
    }

    pub fn issued_id_tokens(&self) -> Vec<String> {
        self.shared.lock().issued_id_tokens.clone()
    }

    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.shared.lock().issued_access_tokens.clone()
    }

    /// The JWKS as currently served.
    pub fn jwks(&self) -> Value {
        jwks_json(self.shared.lock().rotated_published)
    }

    /// Crafts an ID token for `mode` directly (for self-tests).
    pub fn craft(&self, mode: Mode, nonce: Option<&str>) -> String {
        let client_id = self.shared.lock().client_id.clone();
        if mode == Mode::RotatedKey {
            self.shared.lock().rotated_published = true;
        }
        craft_id_token(&self.shared.issuer, &client_id, mode, nonce.map(str::to_owned))
    }
}

fn jwks_json(rotated_published: bool) -> Value {
    let k = keys();
    let mut list = vec![k.primary.jwk()];
    if rotated_published {
        list.push(k.rotated.jwk());
    }
    json!({ "keys": list })
}

/// The claims of a correct ID token.
pub fn valid_claims(issuer: &str, client_id: &str, nonce: Option<String>) -> Value {
    let t = now();
    let mut c = json!({
        "iss": issuer,
        "sub": SUBJECT,
        "aud": client_id,
        "exp": t + 600,
        "iat": t,
        "auth_time": t - 5,
        "email": EMAIL,
        "email_verified": true,
        "name": "Alice Example",
        "preferred_username": "alice",
        "groups": ["staff", "engineering"]
    });
    if let Some(n) = nonce {
        c["nonce"] = Value::String(n);
    }
    c
}

fn rs256(kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// An ID token crafted for `mode`.
pub fn craft_id_token(issuer: &str, client_id: &str, mode: Mode, nonce: Option<String>) -> String {
    let k = keys();
    let mut claims = valid_claims(issuer, client_id, nonce);
    let obj = claims.as_object_mut().expect("object");
    let t = now();
    match mode {
        Mode::Valid | Mode::BadSignature | Mode::TamperedPayload | Mode::AlgNone | Mode::HmacKeyConfusion => {}
        Mode::RotatedKey | Mode::UnknownKid => {}
        Mode::IssuerMismatch => {
            obj.insert("iss".into(), json!(format!("{issuer}-evil")));
        }
        Mode::WrongAudience => {
            obj.insert("aud".into(), json!("another-client"));
        }
        Mode::MultiAudienceNoAzp => {
            obj.insert("aud".into(), json!([client_id, "another-client"]));
        }
        Mode::MultiAudienceWrongAzp => {
            obj.insert("aud".into(), json!([client_id, "another-client"]));
            obj.insert("azp".into(), json!("another-client"));
        }
        Mode::Expired => {
            obj.insert("exp".into(), json!(t - 3600));
            obj.insert("iat".into(), json!(t - 7200));
            obj.insert("auth_time".into(), json!(t - 7200));
        }
        Mode::MissingIat => {
            obj.remove("iat");
        }
        Mode::MissingSub => {
            obj.remove("sub");
        }
        Mode::MissingAud => {
            obj.remove("aud");
        }
        Mode::NonceMismatch => {
            obj.insert("nonce".into(), json!(format!("attacker-{}", random_token(16))));
        }
        Mode::MissingNonce => {
            obj.remove("nonce");
        }
        Mode::NoEmailVerified => {
            obj.remove("email_verified");
        }
    }
    match mode {
        Mode::BadSignature => rs256(&k.primary.kid, &k.attacker.encoding, &claims),
        Mode::TamperedPayload => {
            let signed = rs256(&k.primary.kid, &k.primary.encoding, &claims);
            let mut parts: Vec<&str> = signed.split('.').collect();
            let mut altered = claims.clone();
            altered["email"] = json!("mallory@example.com");
            altered["groups"] = json!(["admins"]);
            let payload = b64json(&altered);
            parts[1] = &payload;
            parts.join(".")
        }
        Mode::AlgNone => {
            let header = json!({"alg": "none", "typ": "JWT"});
            format!("{}.{}.", b64json(&header), b64json(&claims))
        }
        Mode::HmacKeyConfusion => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(k.primary.kid.clone());
            let key = EncodingKey::from_secret(k.primary.public_pem.as_bytes());
            jsonwebtoken::encode(&header, &claims, &key).expect("sign HS256")
        }
        Mode::RotatedKey => rs256(&k.rotated.kid, &k.rotated.encoding, &claims),
        Mode::UnknownKid => rs256(&k.attacker.kid, &k.attacker.encoding, &claims),
        _ => rs256(&k.primary.kid, &k.primary.encoding, &claims),
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route(&format!("{ISSUER_PATH}/.well-known/openid-configuration"), get(discovery))
        .route(&format!("{ISSUER_PATH}/jwks"), get(jwks))
        .route(&format!("{ISSUER_PATH}/authorize"), get(authorize))
        .route(&format!("{ISSUER_PATH}/token"), post(token))
        .route(&format!("{ISSUER_PATH}/userinfo"), get(userinfo))
        .with_state(shared)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn discovery(State(s): State<Shared>) -> Response {
    let mut inner = s.lock();
    inner.discovery_fetches += 1;
    let issuer = inner.discovery_issuer.clone().unwrap_or_else(|| s.issuer.clone());
    let base = &s.issuer;
    json_response(
        StatusCode::OK,
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "jwks_uri": format!("{base}/jwks"),
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified", "name", "preferred_username", "groups"]
        }),
    )
}

async fn jwks(State(s): State<Shared>) -> Response {
    let mut inner = s.lock();
    inner.jwks_fetches += 1;
    let mut resp = json_response(StatusCode::OK, jwks_json(inner.rotated_published));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    resp
}

fn redirect(location: &Url) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    resp.headers_mut().insert(header::LOCATION, HeaderValue::from_str(location.as_str()).expect("location"));
    resp
}

async fn authorize(State(s): State<Shared>, Query(params): Query<BTreeMap<String, String>>) -> Response {
    let mut inner = s.lock();
    inner.authorize_requests.push(AuthorizeRequest { params: params.clone() });
    // Errors before the redirect URI is trusted are shown, never redirected.
    if params.get("client_id") != Some(&inner.client_id) {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let Some(redirect_uri) = params.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    if inner.registered_redirect.as_ref().is_some_and(|r| *r != redirect_uri) {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not registered").into_response();
    }
    let Ok(mut back) = Url::parse(&redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    let state = params.get("state").cloned();
    let fail = |mut back: Url, error: &str, description: &str| {
        back.query_pairs_mut().append_pair("error", error).append_pair("error_description", description);
        if let Some(st) = &state {
            back.query_pairs_mut().append_pair("state", st);
        }
        redirect(&back)
    };
    if params.get("response_type").map(String::as_str) != Some("code") {
        return fail(back, "unsupported_response_type", "only response_type=code");
    }
    let scope = params.get("scope").cloned().unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return fail(back, "invalid_scope", "the openid scope is required");
    }
    let Some(challenge) = params.get("code_challenge").cloned() else {
        return fail(back, "invalid_request", "PKCE is required");
    };
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return fail(back, "invalid_request", "code_challenge_method must be S256");
    }
    let code = random_token(24);
    inner.grants.insert(
        code.clone(),
        Grant { redirect_uri, nonce: params.get("nonce").cloned(), code_challenge: challenge, scope },
    );
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(st) = &state {
        back.query_pairs_mut().append_pair("state", st);
    }
    redirect(&back)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = json_response(status, json!({"error": error, "error_description": description}));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"op\""));
    }
    resp
}

fn form_unescape(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn client_auth(headers: &HeaderMap, form: &BTreeMap<String, String>) -> Option<(String, String)> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, rest)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("basic")
    {
        let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((form_unescape(id), form_unescape(secret)));
    }
    Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone()))
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> =
        url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut inner = s.lock();
    inner.token_requests.push(form.clone());
    match client_auth(&headers, &form) {
        Some((id, secret)) if id == inner.client_id && secret == inner.client_secret => {}
        _ => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
        }
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "only authorization_code");
    }
    let Some(grant) = form.get("code").and_then(|c| inner.grants.remove(c)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    let verified = form
        .get("code_verifier")
        .is_some_and(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == grant.code_challenge);
    if !verified {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verification failed");
    }
    let mode = inner.mode;
    if mode == Mode::RotatedKey {
        inner.rotated_published = true;
    }
    let id_token = craft_id_token(&s.issuer, &inner.client_id, mode, grant.nonce);
    let access_token = format!("at-{}", random_token(24));
    inner.access_tokens.insert(access_token.clone(), grant.scope.clone());
    inner.issued_id_tokens.push(id_token.clone());
    inner.issued_access_tokens.push(access_token.clone());
    json_response(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": grant.scope,
            "id_token": id_token
        }),
    )
}

async fn userinfo(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let inner = s.lock();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    if !token.is_some_and(|t| inner.access_tokens.contains_key(&t)) {
        let mut resp = StatusCode::UNAUTHORIZED.into_response();
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
        return resp;
    }
    let mut profile = json!({"sub": SUBJECT, "email": EMAIL, "email_verified": true, "name": "Alice Example", "groups": ["staff", "engineering"]});
    if inner.mode == Mode::NoEmailVerified {
        profile.as_object_mut().expect("object").remove("email_verified");
    }
    json_response(StatusCode::OK, profile)
}
