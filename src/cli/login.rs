//! `authgate login URL`: the device flow (RFC 8628) against a gateway.
//!
//! The endpoints come from the gateway's RFC 8414 metadata and must be on
//! the gateway's own origin, so a tampered metadata document cannot send
//! the device code elsewhere. The code is printed (and, when there is a
//! display, the approval page opened); polls honour `interval` and add
//! five seconds on each `slow_down` (§3.5).

use std::time::Duration;

use serde::Deserialize;

use super::store::{self, Stored, TokenFile};
use super::{CliError, LoginArgs};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Deserialize)]
struct Metadata {
    device_authorization_endpoint: String,
    token_endpoint: String,
}

#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
}

fn http_error(e: reqwest::Error) -> CliError {
    CliError::Http(format!("request to the gateway failed: {e}"))
}

/// The endpoint `url` if it is on `origin`.
fn same_origin(url: &str, origin: &str, gateway: &str) -> Result<String, CliError> {
    match store::origin(url) {
        Ok(o) if o == origin => Ok(url.to_owned()),
        _ => Err(CliError::NoDeviceFlow(gateway.to_owned())),
    }
}

/// Plain http is only for a gateway on this machine.
fn refuse_cleartext(url: &str) -> Result<(), CliError> {
    let parsed = url::Url::parse(url).map_err(|_| CliError::BadUrl(url.to_owned()))?;
    if parsed.scheme() == "http" && !crate::idp::is_loopback(&parsed) {
        return Err(CliError::Cleartext(url.to_owned()));
    }
    Ok(())
}

/// Whether a browser can be opened here.
fn can_open_browser() -> bool {
    cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Runs the flow and stores the token; progress goes to stderr.
pub async fn login(args: &LoginArgs) -> Result<Stored, CliError> {
    let origin = store::origin(&args.url)?;
    refuse_cleartext(&args.url)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("authgate-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(http_error)?;
    let base = args.url.trim_end_matches('/');
    let meta = http.get(format!("{base}/.well-known/oauth-authorization-server")).send().await.map_err(http_error)?;
    if !meta.status().is_success() {
        return Err(CliError::NoDeviceFlow(args.url.clone()));
    }
    let meta: Metadata = meta.json().await.map_err(|_| CliError::NoDeviceFlow(args.url.clone()))?;
    let device_endpoint = same_origin(&meta.device_authorization_endpoint, &origin, &args.url)?;
    let token_endpoint = same_origin(&meta.token_endpoint, &origin, &args.url)?;
    let answer =
        http.post(&device_endpoint).form(&[("client_id", args.client_id.as_str())]).send().await.map_err(http_error)?;
    if !answer.status().is_success() {
        return Err(CliError::Refused(format!("device authorization answered {}", answer.status())));
    }
    let auth: DeviceAuthorization = answer.json().await.map_err(http_error)?;
    eprintln!("To sign in, open {} and enter the code:\n\n    {}\n", auth.verification_uri, auth.user_code);
    let complete = auth.verification_uri_complete.as_deref().unwrap_or(&auth.verification_uri);
    if !args.no_browser && can_open_browser() {
        eprintln!("Opening {complete} in your browser…");
        open_browser(complete);
    } else {
        eprintln!("(or open {complete})");
    }
    let mut interval = auth.interval.unwrap_or(5).max(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(auth.expires_in);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if std::time::Instant::now() >= deadline {
            return Err(CliError::Expired);
        }
        let r = http
            .post(&token_endpoint)
            .form(&[
                ("grant_type", GRANT_TYPE),
                ("device_code", auth.device_code.as_str()),
                ("client_id", args.client_id.as_str()),
            ])
            .send()
            .await
            .map_err(http_error)?;
        let status = r.status();
        let answer: TokenAnswer = r.json().await.map_err(http_error)?;
        match (status.is_success(), answer.access_token, answer.error.as_deref()) {
            (true, Some(token), _) => {
                let stored =
                    Stored { access_token: token, expires_at: store::now() + answer.expires_in.unwrap_or(3600) };
                let path = store::path()?;
                let mut file = TokenFile::load(&path)?;
                file.put(&origin, stored.clone());
                file.save(&path)?;
                eprintln!("Logged in to {origin}.");
                return Ok(stored);
            }
            (_, _, Some("authorization_pending")) => {}
            (_, _, Some("slow_down")) => interval += 5,
            (_, _, Some("access_denied")) => return Err(CliError::Denied),
            (_, _, Some("expired_token")) => return Err(CliError::Expired),
            (_, _, other) => return Err(CliError::Refused(other.unwrap_or("no error code").to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_on_the_gateways_origin_and_http_only_on_loopback() {
        let o = "https://app.example.com";
        assert!(same_origin("https://app.example.com/oauth2/token", o, o).is_ok());
        assert!(same_origin("https://evil.example.net/oauth2/token", o, o).is_err());
        assert!(same_origin("http://app.example.com/oauth2/token", o, o).is_err(), "a downgrade is another origin");
        assert!(refuse_cleartext("http://127.0.0.1:8080").is_ok());
        assert!(refuse_cleartext("http://localhost").is_ok());
        assert!(matches!(refuse_cleartext("http://app.example.com"), Err(CliError::Cleartext(_))));
        assert!(refuse_cleartext("https://app.example.com").is_ok());
    }
}
