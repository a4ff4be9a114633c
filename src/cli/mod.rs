//! `authgate login|token|logout URL`: a command-line client of a gateway's
//! device flow. `login` runs RFC 8628 against the gateway at URL (its
//! RFC 8414 metadata tells where), shows the code to approve in a browser,
//! and stores the device token in the user's config directory; `token`
//! prints it for scripts (`curl -H "Authorization: Bearer $(authgate token URL)"`);
//! `logout` forgets it.

pub mod login;
pub mod store;

use std::path::PathBuf;

/// What the client subcommands can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The URL is not an http(s) URL.
    #[error("{0} is not an http:// or https:// URL")]
    BadUrl(String),
    /// Plain http to another machine: the token would travel in clear.
    #[error("{0} is plain http on a non-loopback host; the token would travel unencrypted (use https://)")]
    Cleartext(String),
    /// A request to the gateway failed.
    #[error("{0}")]
    Http(String),
    /// The gateway answered something the flow does not allow.
    #[error("the gateway at {0} does not serve the device flow (no usable /.well-known/oauth-authorization-server)")]
    NoDeviceFlow(String),
    /// The request was denied in the browser.
    #[error("the request was denied in the browser")]
    Denied,
    /// The code expired before it was approved.
    #[error("the code expired before it was approved; run login again")]
    Expired,
    /// The gateway refused the poll.
    #[error("the gateway refused the login: {0}")]
    Refused(String),
    /// No stored token (or an expired one).
    #[error("no valid token for {0}; run `authgate login {0}`")]
    NoToken(String),
    /// The token file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// No config directory could be found.
    #[error("neither XDG_CONFIG_HOME nor HOME is set")]
    NoConfigDir,
}

/// Arguments of `authgate login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The gateway's external URL.
    pub url: String,
    /// Do not try to open a browser; only print the URL and code.
    #[arg(long)]
    pub no_browser: bool,
    /// The client id to announce (shown on the approval page).
    #[arg(long, default_value = "authgate-cli")]
    pub client_id: String,
}

/// Arguments of `authgate token` and `authgate logout`.
#[derive(clap::Args, Debug)]
pub struct UrlArgs {
    /// The gateway's external URL.
    pub url: String,
}

/// `authgate token URL`: the stored, still valid token.
pub fn token(args: &UrlArgs) -> Result<String, CliError> {
    let origin = store::origin(&args.url)?;
    let tokens = store::TokenFile::load(&store::path()?)?;
    tokens.valid(&origin, store::now()).map(str::to_owned).ok_or(CliError::NoToken(origin))
}

/// `authgate logout URL`: forgets the stored token; whether there was one.
pub fn logout(args: &UrlArgs) -> Result<bool, CliError> {
    let origin = store::origin(&args.url)?;
    let path = store::path()?;
    let mut tokens = store::TokenFile::load(&path)?;
    let had = tokens.remove(&origin);
    tokens.save(&path)?;
    Ok(had)
}
