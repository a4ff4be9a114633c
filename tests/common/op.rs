//! The real OpenID Provider of `tests/e2e/op.mjs` (oidc-provider on node).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use super::{free_port, require};

/// Settings of one OP process.
#[derive(Clone, Debug)]
pub struct OpSettings {
    /// Access token lifetime in seconds.
    pub access_token_ttl: u64,
    /// ID token lifetime in seconds.
    pub id_token_ttl: u64,
    /// Lifetime of `client_credentials` tokens in seconds; `None`: the
    /// access token lifetime.
    pub client_credentials_ttl: Option<u64>,
    /// Listen on this port instead of a free one: to restart an OP where
    /// its clients expect it.
    pub port: Option<u16>,
    /// oidc-provider client metadata (see [`client`]).
    pub clients: Vec<Value>,
    /// Login name → claims (see [`users`]).
    pub users: Value,
    /// Serve the test-only admin endpoints ([`Op::set_user`],
    /// [`Op::outage`]).
    pub admin: bool,
}

impl Default for OpSettings {
    fn default() -> Self {
        Self {
            access_token_ttl: 3600,
            id_token_ttl: 3600,
            client_credentials_ttl: None,
            port: None,
            clients: Vec::new(),
            users: users(),
            admin: false,
        }
    }
}

/// A confidential client using `client_secret_basic` with these redirect URIs.
pub fn client(id: &str, secret: &str, redirect_uris: &[&str]) -> Value {
    json!({
        "client_id": id,
        "client_secret": secret,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
    })
}

/// `client` with the logout settings of OpenID Connect RP-Initiated
/// Logout (`post_logout_redirect_uris`) and, when given, Back-Channel
/// Logout (`backchannel_logout_uri`, with `sid` required in logout and ID
/// tokens).
pub fn with_logout(mut client: Value, post_logout_redirect_uri: &str, backchannel_logout_uri: Option<&str>) -> Value {
    client["post_logout_redirect_uris"] = json!([post_logout_redirect_uri]);
    if let Some(uri) = backchannel_logout_uri {
        client["backchannel_logout_uri"] = json!(uri);
        client["backchannel_logout_session_required"] = json!(true);
    }
    client
}

/// A machine client for the `client_credentials` grant only, using
/// `client_secret_basic`. Its tokens are JWTs for the OP's resource
/// (`urn:authgate:upstream`) with `sub` = `client_id` = `id`.
pub fn machine_client(id: &str, secret: &str) -> Value {
    json!({"client_id": id, "client_secret": secret, "grant_types": ["client_credentials"]})
}

/// The users every test can sign in as.
///
/// | login | email | verified | groups |
/// |---|---|---|---|
/// | alice | alice@example.com | yes | sre, dev |
/// | bob | bob@example.com | yes | dev |
/// | eve | eve@evil.org | yes | sre |
/// | carol | carol@example.com | **no** | sre |
/// | many | many@example.com | yes | sre + 300 long group names |
/// | mallory | none; `preferred_username: alice@example.com` | – | sre |
/// | commas | commas@example.com | yes | sre, `dev,admin`, `50%` |
/// | crlf | crlf@example.com | yes | sre, a group with CR/LF in it |
/// | padded | ` bob@example.com` (leading space) | yes | sre |
/// | strbool | sam@example.com | the string `"true"` | sre |
pub fn users() -> Value {
    let mut many: Vec<String> = vec!["sre".into()];
    many.extend((0..300).map(|i| format!("team-with-a-rather-long-group-name-{i:03}")));
    json!({
        "alice": {"email": "alice@example.com", "email_verified": true, "groups": ["sre", "dev"], "name": "Alice"},
        "bob": {"email": "bob@example.com", "email_verified": true, "groups": ["dev"], "name": "Bob"},
        "eve": {"email": "eve@evil.org", "email_verified": true, "groups": ["sre"], "name": "Eve"},
        "carol": {"email": "carol@example.com", "email_verified": false, "groups": ["sre"], "name": "Carol"},
        "many": {"email": "many@example.com", "email_verified": true, "groups": many, "name": "Many Groups"},
        "mallory": {"preferred_username": "alice@example.com", "groups": ["sre"], "name": "Mallory"},
        "commas": {"email": "commas@example.com", "email_verified": true, "groups": ["sre", "dev,admin", "50%"]},
        "crlf": {"email": "crlf@example.com", "email_verified": true, "groups": ["sre", "x\r\nX-Auth-Request-User: ceo"]},
        "padded": {"email": " bob@example.com", "email_verified": true, "groups": ["sre"]},
        "strbool": {"email": "sam@example.com", "email_verified": "true", "groups": ["sre"]},
    })
}

/// A running OP; killed on drop.
pub struct Op {
    child: Child,
    /// Issuer, e.g. `http://127.0.0.1:39123` (as a URL it gains a `/`).
    pub issuer: Url,
    /// The issuer exactly as the OP prints it (no trailing slash).
    pub issuer_str: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the OP's dependencies (`npm ci`) once if they are missing.
fn ensure_node_modules() -> bool {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = e2e_dir();
    if dir.join("node_modules/oidc-provider/package.json").exists() {
        return true;
    }
    eprintln!("tests/e2e/node_modules is missing; running npm ci");
    let ok = Command::new("npm")
        .arg("ci")
        .arg("--no-audit")
        .arg("--no-fund")
        .current_dir(&dir)
        .status()
        .is_ok_and(|s| s.success());
    ok && dir.join("node_modules/oidc-provider/package.json").exists()
}

impl Op {
    /// An OP with two clients, `corp-client`/`corp-secret` and
    /// `partner-client`/`partner-secret`, both registered for the
    /// callback of a gateway on `port` (a provider chooser's setup).
    pub async fn with_two_clients(port: u16) -> Option<Self> {
        let callback = format!("http://127.0.0.1:{port}/oauth2/callback");
        Self::start(OpSettings {
            clients: vec![
                client("corp-client", "corp-secret", &[&callback]),
                client("partner-client", "partner-secret", &[&callback]),
            ],
            ..OpSettings::default()
        })
        .await
    }

    /// Starts the OP on a free port and waits for its READY line. `None`
    /// (test skipped) when node or the OP's modules are unavailable.
    pub async fn start(settings: OpSettings) -> Option<Self> {
        if !require("node (for the OpenID Provider in tests/e2e)", node_available()) {
            return None;
        }
        if !require(
            "tests/e2e/node_modules (npm ci)",
            tokio::task::spawn_blocking(ensure_node_modules).await.unwrap_or(false),
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = settings.port.unwrap_or_else(free_port);
        let issuer = format!("http://127.0.0.1:{port}");
        let config = json!({
            "issuer": issuer,
            "port": port,
            "accessTokenTtl": settings.access_token_ttl,
            "idTokenTtl": settings.id_token_ttl,
            "clientCredentialsTtl": settings.client_credentials_ttl,
            "clients": settings.clients,
            "users": settings.users,
            "admin": settings.admin,
        });
        let config_path = dir.path().join("op.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).expect("write OP config");
        let log = dir.path().join("op.log");
        let mut child = Command::new("node")
            .arg(e2e_dir().join("op.mjs"))
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("OP log"))
            .spawn()
            .expect("spawn node op.mjs");
        let stdout = child.stdout.take().expect("stdout");
        let ready = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await;
        let line = match ready {
            Ok(Ok(Ok(line))) => line,
            _ => String::new(),
        };
        let op = Self { child, issuer: Url::parse(&issuer).unwrap(), issuer_str: issuer.clone(), log, _dir: dir };
        assert_eq!(line.trim_end(), format!("OP READY {issuer}"), "OP did not start; its log:\n{}", op.logs());
        Some(op)
    }

    /// An endpoint of the OP (`auth`, `token`, `jwks`, `me`).
    pub fn endpoint(&self, path: &str) -> Url {
        self.issuer.join(path).expect("OP endpoint")
    }

    /// The OP's end-session endpoint (RP-Initiated Logout).
    pub fn end_session_url(&self) -> Url {
        self.endpoint("session/end")
    }

    /// The OP's revocation endpoint (RFC 7009).
    pub fn revocation_url(&self) -> Url {
        self.endpoint("token/revocation")
    }

    /// The OP's signing keys.
    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        reqwest::get(self.endpoint("jwks")).await.expect("JWKS").json().await.expect("JWKS JSON")
    }

    /// Verifies an access token the upstream received: RS256, signed by the
    /// OP, issued by it, for `urn:authgate:upstream`, unexpired. Returns its
    /// claims.
    pub async fn verify_access_token(&self, token: &str) -> Value {
        let header = jsonwebtoken::decode_header(token).expect("JWT header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        let kid = header.kid.expect("kid");
        let jwks = self.jwks().await;
        let jwk = jwks.find(&kid).expect("signing key in the OP's JWKS");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["urn:authgate:upstream"]);
        validation.set_issuer(&[self.issuer_str.as_str()]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .expect("access token verifies against the OP's JWKS")
            .claims
    }

    /// How many tokens the OP issued to `client_id` with `grant_type`
    /// (from the `grant.success` lines of its log).
    pub fn grants(&self, grant_type: &str, client_id: &str) -> usize {
        let line = format!("op.mjs grant.success {grant_type} {client_id}");
        self.logs().lines().filter(|l| *l == line).count()
    }

    /// Replaces login `sub`'s claims at the running OP (an OP started
    /// with `admin`): later sign-ins, refreshes and userinfo answers see
    /// them.
    pub async fn set_user(&self, sub: &str, claims: Value) {
        self.admin(&format!("__admin/users/{sub}"), claims).await;
    }

    /// Makes the running OP (started with `admin`) answer every request
    /// with `status`, as an IdP in an outage; `None` ends it.
    pub async fn outage(&self, status: Option<u16>) {
        self.admin("__admin/outage", json!({ "status": status })).await;
    }

    async fn admin(&self, path: &str, body: Value) {
        let response = reqwest::Client::new().post(self.endpoint(path)).json(&body).send().await.expect("OP admin");
        assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT, "OP admin {path}; log:\n{}", self.logs());
    }

    /// Stops the OP (as an IdP that went away); dropping it later is fine.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// How many userinfo requests the OP received.
    pub fn userinfo_requests(&self) -> usize {
        self.logs().lines().filter(|l| *l == "op.mjs userinfo").count()
    }

    /// What the OP wrote to stderr.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
