//! Where the gateway's settings come from: `gateway.yaml` (as the
//! controller writes it) and/or command-line flags, each of which can also
//! be set with an `AUTHGATE_*` environment variable. Flags and variables
//! override the file, so the gateway also runs outside Kubernetes with no
//! file at all.
//!
//! A provider can be given entirely through `AUTHGATE_PROVIDER_*`: its
//! endpoints are then resolved exactly as the controller would (type
//! defaults, overrides, and OpenID Connect discovery when only an issuer is
//! given). Setting `AUTHGATE_PROVIDER_TYPE` replaces the file's providers;
//! setting only other provider variables patches the file's single
//! provider (e.g. just its client secret).
//!
//! The keys of an `auth-credentials` Secret in the Foxglove format
//! (`OAUTH_*`, `COOKIE_ENCRYPTION_KEY`, `DISABLE_AUTH`; see [`seed`]) are
//! read too, below flags and `AUTHGATE_*` and above the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::config::{
    Authentication, ForwardSettings, GatewayConfig, ProviderConfig, ProviderType, Redacted, SessionConfig,
};
use super::error::Error;
use crate::api::AllowList;
use crate::api::IdentityProviderSpec;
use crate::idp::{self, discovery};

/// Default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "_authgate";
/// Default session lifetime (the AuthPolicy default), when no file gives one.
pub const DEFAULT_SESSION_TTL: &str = crate::api::auth_policy::DEFAULT_SESSION_TTL;

/// `authgate gateway` arguments (boxed: they are large, and the CLI's
/// other subcommands should not pay for them).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GatewayArgs {
    /// Every gateway flag, boxed.
    #[command(flatten)]
    pub settings: Box<GatewaySettings>,
}

/// Every gateway setting that can come from a flag or variable.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GatewaySettings {
    /// Path of gateway.yaml, as the controller writes it.
    #[arg(long, env = "AUTHGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 0.0.0.0:4180).
    #[arg(long, env = "AUTHGATE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address of /healthz, /readyz and /metrics (default 0.0.0.0:4181).
    #[arg(long, env = "AUTHGATE_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,
    /// Proxies whose X-Forwarded-For is believed (CIDR, comma-separated).
    #[arg(long, env = "AUTHGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// How long the upstream may take to send response headers, e.g. `60s`.
    #[arg(long, env = "AUTHGATE_UPSTREAM_TIMEOUT", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Option<Duration>,
    /// How long a client may take to send a request's headers, e.g. `10s`.
    #[arg(long, env = "AUTHGATE_HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Option<Duration>,
    /// Public URL of the protected service.
    #[arg(long, env = "AUTHGATE_EXTERNAL_URL")]
    pub external_url: Option<Url>,
    /// Where authenticated requests go.
    #[arg(long, env = "AUTHGATE_UPSTREAM")]
    pub upstream: Option<Url>,
    /// `Enabled` or `Disabled` (pass-through without sign-in).
    #[arg(long, env = "AUTHGATE_AUTHENTICATION", value_parser = parse_authentication)]
    pub authentication: Option<Authentication>,
    /// Session cookie name.
    #[arg(long, env = "AUTHGATE_COOKIE_NAME")]
    pub cookie_name: Option<String>,
    /// Session cookie Domain attribute.
    #[arg(long, env = "AUTHGATE_COOKIE_DOMAIN")]
    pub cookie_domain: Option<String>,
    /// Cookie encryption keys, comma-separated base64 (64 random bytes
    /// each); the first encrypts, all decrypt.
    #[arg(long, env = "AUTHGATE_COOKIE_KEYS", value_delimiter = ',', value_parser = parse_secret, hide_env_values = true)]
    pub cookie_keys: Vec<Redacted>,
    /// Session lifetime, e.g. `12h`.
    #[arg(long, env = "AUTHGATE_SESSION_TTL", value_parser = humantime::parse_duration)]
    pub session_ttl: Option<Duration>,
    /// Let in anyone the provider signs in (required for public providers
    /// without any other restriction).
    #[arg(long, env = "AUTHGATE_ALLOW_ALL_USERS")]
    pub allow_all_users: Option<bool>,
    /// The policy's allow-list, as YAML or JSON in the shape of an
    /// AuthPolicy's `access` lists, e.g.
    /// `{allowedDomains: [example.com], allowedGroups: [sre]}`.
    #[arg(long, env = "AUTHGATE_ACCESS", value_parser = parse_allow_list)]
    pub access: Option<AllowList>,
    /// Send `Authorization: Bearer <access token>` upstream.
    #[arg(long, env = "AUTHGATE_FORWARD_ACCESS_TOKEN")]
    pub forward_access_token: Option<bool>,
    /// Send `X-Auth-Request-User/-Email/-Groups` upstream.
    #[arg(long, env = "AUTHGATE_FORWARD_IDENTITY_HEADERS")]
    pub forward_identity_headers: Option<bool>,
    /// Serving threads (default: one per CPU).
    #[arg(long, env = "AUTHGATE_WORKERS")]
    pub workers: Option<usize>,
    /// A single provider.
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// One provider from flags or `AUTHGATE_PROVIDER_*`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProviderArgs {
    /// `oidc`, `github`, `gitlab` or `google`.
    #[arg(long = "provider-type", env = "AUTHGATE_PROVIDER_TYPE", value_parser = parse_provider_type)]
    pub provider_type: Option<ProviderType>,
    /// Name shown on the sign-in page (default: the type).
    #[arg(long = "provider-name", env = "AUTHGATE_PROVIDER_NAME")]
    pub name: Option<String>,
    /// OAuth2 client ID.
    #[arg(long = "provider-client-id", env = "AUTHGATE_PROVIDER_CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth2 client secret.
    #[arg(long = "provider-client-secret", env = "AUTHGATE_PROVIDER_CLIENT_SECRET", value_parser = parse_secret, hide_env_values = true)]
    pub client_secret: Option<Redacted>,
    /// Issuer (OIDC discovery runs at start).
    #[arg(long = "provider-issuer-url", env = "AUTHGATE_PROVIDER_ISSUER_URL")]
    pub issuer_url: Option<String>,
    /// Scopes, comma-separated (default per type).
    #[arg(long = "provider-scopes", env = "AUTHGATE_PROVIDER_SCOPES", value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Authorization endpoint override.
    #[arg(long = "provider-authorize-url", env = "AUTHGATE_PROVIDER_AUTHORIZE_URL")]
    pub authorize_url: Option<String>,
    /// Token endpoint override.
    #[arg(long = "provider-token-url", env = "AUTHGATE_PROVIDER_TOKEN_URL")]
    pub token_url: Option<String>,
    /// Userinfo endpoint override.
    #[arg(long = "provider-userinfo-url", env = "AUTHGATE_PROVIDER_USERINFO_URL")]
    pub userinfo_url: Option<String>,
    /// API base override (GitHub Enterprise: `https://HOST/api/v3`).
    #[arg(long = "provider-api-url", env = "AUTHGATE_PROVIDER_API_URL")]
    pub api_url: Option<String>,
}

fn parse_allow_list(text: &str) -> Result<AllowList, String> {
    crate::yaml_error::from_yaml_str(text).map_err(|e| format!("not an allow-list: {e}"))
}

fn parse_secret(s: &str) -> Result<Redacted, String> {
    Ok(Redacted::new(s.trim()))
}

fn parse_authentication(s: &str) -> Result<Authentication, String> {
    match s.to_ascii_lowercase().as_str() {
        "enabled" | "true" => Ok(Authentication::Enabled),
        "disabled" | "false" => Ok(Authentication::Disabled),
        _ => Err(format!("{s:?} is neither Enabled nor Disabled")),
    }
}

fn parse_provider_type(s: &str) -> Result<ProviderType, String> {
    match s.to_ascii_lowercase().as_str() {
        "oidc" => Ok(ProviderType::Oidc),
        "github" => Ok(ProviderType::Github),
        "gitlab" => Ok(ProviderType::Gitlab),
        "google" => Ok(ProviderType::Google),
        _ => Err(format!("{s:?} is not one of oidc, github, gitlab, google")),
    }
}

impl ProviderArgs {
    fn any_set(&self) -> bool {
        self.provider_type.is_some()
            || self.name.is_some()
            || self.client_id.is_some()
            || self.client_secret.is_some()
            || self.issuer_url.is_some()
            || !self.scopes.is_empty()
            || self.authorize_url.is_some()
            || self.token_url.is_some()
            || self.userinfo_url.is_some()
            || self.api_url.is_some()
    }
}

/// Reads the file (if any) and applies the overrides.
pub async fn load(args: &GatewaySettings) -> Result<GatewayConfig, Error> {
    refuse_retired_variables(std::env::vars_os().map(|(k, _)| k))?;
    let mut args = args.clone();
    seed::overlay(&mut args, |key| std::env::var(key).ok())?;
    let args = &args;
    let file = match &args.config {
        Some(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|source| Error::ReadConfig { path: path.clone(), source })?;
            Some(GatewayConfig::from_yaml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?)
        }
        None => None,
    };
    let provider = match (&args.provider.provider_type, args.provider.any_set()) {
        (Some(kind), _) => Some(resolve_provider(*kind, &args.provider).await?),
        _ => None,
    };
    merge(file, args, provider)
}

/// Variables of earlier versions, one per list, that `AUTHGATE_ACCESS`
/// replaced. Ignoring one would silently drop a restriction someone set,
/// so the gateway refuses to start while any is set.
const RETIRED_VARIABLES: [&str; 5] = [
    "AUTHGATE_ALLOWED_DOMAINS",
    "AUTHGATE_ALLOWED_EMAILS",
    "AUTHGATE_ALLOWED_GROUPS",
    "AUTHGATE_ALLOWED_ORGS",
    "AUTHGATE_ALLOWED_TEAMS",
];

fn refuse_retired_variables(names: impl IntoIterator<Item = std::ffi::OsString>) -> Result<(), Error> {
    let set: Vec<String> = names
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| RETIRED_VARIABLES.contains(&n.as_str()))
        .collect();
    if set.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{} no longer exist; put the lists in AUTHGATE_ACCESS instead, e.g. AUTHGATE_ACCESS='{{allowedGroups: [sre]}}'",
        set.join(", ")
    )))
}

/// Applies the overrides to the file's config (or builds one from scratch).
pub fn merge(
    file: Option<GatewayConfig>,
    args: &GatewaySettings,
    provider: Option<ProviderConfig>,
) -> Result<GatewayConfig, Error> {
    let missing =
        |what: &str, var: &str| Error::Config(format!("{what} is required: set it in the config file or {var}"));
    let mut config = match file {
        Some(c) => c,
        None => GatewayConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], super::config::DEFAULT_PORT)),
            external_url: args
                .external_url
                .clone()
                .ok_or_else(|| missing("the external URL", "AUTHGATE_EXTERNAL_URL"))?,
            upstream: Some(args.upstream.clone().ok_or_else(|| missing("the upstream", "AUTHGATE_UPSTREAM"))?),
            authentication: Authentication::Enabled,
            providers: Vec::new(),
            access: AllowList::default(),
            allow_all_users: false,
            session: SessionConfig {
                cookie_name: DEFAULT_COOKIE_NAME.into(),
                cookie_domain: None,
                ttl_seconds: crate::contract::rules::parse_duration_secs(DEFAULT_SESSION_TTL)
                    .expect("the default lifetime parses"),
                ..SessionConfig::default()
            },
            forward: ForwardSettings::default(),
            ops_listen: SocketAddr::from(([0, 0, 0, 0], super::config::DEFAULT_OPS_PORT)),
            timeouts: Default::default(),
            forward_auth: None,
            upstream_tls: None,
            routes: Vec::new(),
            public_paths: Vec::new(),
            cors: None,
            machine: crate::contract::machine::MachineConfig::default(),
            access_log: false,
            service_name: None,
            branding: None,
        },
    };
    if let Some(v) = args.ops_listen {
        config.ops_listen = v;
    }
    let list: Vec<String> =
        args.trusted_proxies.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    if !list.is_empty() {
        config.forward.trusted_proxies = list;
    }
    if let Some(v) = args.upstream_timeout {
        config.timeouts.upstream_seconds = v.as_secs().max(1);
    }
    if let Some(v) = args.header_read_timeout {
        config.timeouts.header_read_seconds = v.as_secs().max(1);
    }
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = &args.external_url {
        config.external_url = v.clone();
    }
    if let Some(v) = &args.upstream {
        config.upstream = Some(v.clone());
    }
    if let Some(v) = args.authentication {
        config.authentication = v;
    }
    if let Some(v) = &args.cookie_name {
        config.session.cookie_name = v.clone();
    }
    if let Some(v) = &args.cookie_domain {
        config.session.cookie_domain = Some(v.clone()).filter(|d| !d.is_empty());
    }
    if !args.cookie_keys.is_empty() {
        config.session.keys = args.cookie_keys.iter().filter(|k| !k.expose().is_empty()).cloned().collect();
    }
    if let Some(v) = args.session_ttl {
        config.session.ttl_seconds = v.as_secs().max(1);
    }
    if let Some(v) = args.allow_all_users {
        config.allow_all_users = v;
    }
    if let Some(v) = &args.access {
        config.access = v.clone();
    }
    if let Some(v) = args.forward_access_token {
        config.forward.access_token = v;
    }
    if let Some(v) = args.forward_identity_headers {
        config.forward.identity_headers = v;
    }
    match provider {
        Some(p) => config.providers = vec![p],
        None if args.provider.any_set() => patch_provider(&mut config, &args.provider)?,
        None => {}
    }
    let problems = config.access.problems();
    if !problems.is_empty() {
        return Err(Error::Config(problems.join("; ")));
    }
    Ok(config)
}

/// Overrides fields of the file's only provider (or the one named).
fn patch_provider(config: &mut GatewayConfig, args: &ProviderArgs) -> Result<(), Error> {
    let index = match &args.name {
        Some(name) if config.providers.iter().any(|p| &p.name == name) => {
            config.providers.iter().position(|p| &p.name == name)
        }
        _ if config.providers.len() == 1 => Some(0),
        _ => None,
    };
    let Some(index) = index else {
        return Err(Error::Config(
            "AUTHGATE_PROVIDER_* overrides need AUTHGATE_PROVIDER_TYPE, or a config file with exactly one provider (or the named one)".into(),
        ));
    };
    let p = &mut config.providers[index];
    let url = |field: &str, v: &String| Url::parse(v).map_err(|_| Error::Config(format!("{field} {v:?} is not a URL")));
    if let Some(v) = &args.client_id {
        p.client_id = v.clone();
    }
    if let Some(v) = &args.client_secret {
        p.client_secret = v.clone();
    }
    if let Some(v) = &args.issuer_url {
        p.issuer_url = Some(url("issuer URL", v)?);
    }
    if !args.scopes.is_empty() {
        p.scopes = args.scopes.clone();
    }
    if let Some(v) = &args.authorize_url {
        p.authorize_url = url("authorize URL", v)?;
    }
    if let Some(v) = &args.token_url {
        p.token_url = url("token URL", v)?;
    }
    if let Some(v) = &args.userinfo_url {
        p.userinfo_url = Some(url("userinfo URL", v)?);
    }
    if let Some(v) = &args.api_url {
        p.api_url = Some(url("API URL", v)?);
    }
    Ok(())
}

/// Resolves a provider given only through flags/variables, the way the
/// controller resolves an IdentityProvider.
async fn resolve_provider(kind: ProviderType, args: &ProviderArgs) -> Result<ProviderConfig, Error> {
    let name = args.name.clone().unwrap_or_else(|| kind.as_str().to_owned());
    let client_id =
        args.client_id.clone().ok_or_else(|| Error::Config("AUTHGATE_PROVIDER_CLIENT_ID is required".into()))?;
    let client_secret = args
        .client_secret
        .clone()
        .ok_or_else(|| Error::Config("AUTHGATE_PROVIDER_CLIENT_SECRET is required".into()))?;
    let spec: IdentityProviderSpec = serde_json::from_value(serde_json::json!({
        "type": kind.as_str(),
        "clientId": client_id,
        "clientSecretRef": {"name": "environment"},
        "issuerUrl": args.issuer_url,
        "endpoints": {
            "authorizeUrl": args.authorize_url,
            "tokenUrl": args.token_url,
            "userinfoUrl": args.userinfo_url,
            "apiUrl": args.api_url,
        },
        "scopes": args.scopes,
    }))
    .map_err(|e| Error::Config(format!("provider settings: {e}")))?;
    let http = idp::client(Duration::from_secs(15)).map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
    let endpoints = discovery::resolve(&http, &spec).await.map_err(|e| Error::Config(e.to_string()))?;
    let url = |field: &str, v: &str| Url::parse(v).map_err(|_| Error::Config(format!("{field} {v:?} is not a URL")));
    let opt = |field: &str, v: &Option<String>| v.as_deref().map(|v| url(field, v)).transpose();
    Ok(ProviderConfig {
        name,
        provider_type: kind,
        display_name: None,
        client_id,
        client_secret,
        issuer_url: opt("issuer", &endpoints.issuer)?,
        authorize_url: url("authorize URL", &endpoints.authorize_url)?,
        token_url: url("token URL", &endpoints.token_url)?,
        userinfo_url: opt("userinfo URL", &endpoints.userinfo_url)?,
        jwks_url: opt("JWKS URL", &endpoints.jwks_url)?,
        api_url: opt("API URL", &endpoints.api_url)?,
        revocation_url: opt("revocation URL", &endpoints.revocation_url)?,
        end_session_url: opt("end-session URL", &endpoints.end_session_url)?,
        scopes: spec.effective_scopes(),
        claims: Default::default(),
        filters: AllowList::default(),
        ca_pem: None,
        email_verified: Default::default(),
    })
}

pub mod seed;

#[cfg(test)]
mod tests;
