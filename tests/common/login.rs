//! The sign-in flow hop by hop, for providers that sign the user in without
//! a form (the fakes): `/oauth2/start` → the provider's authorize endpoint →
//! `/oauth2/callback`, each hop kept for the assertions; and the assertions
//! on how such a login ended.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::agent::{Accept, Agent, Reply};
use super::gateway::Gateway;

/// Every hop of one login attempt.
#[derive(Debug)]
pub struct Login {
    pub start: Reply,
    pub authorize: Option<Reply>,
    pub callback: Option<Reply>,
}

impl Login {
    /// The last response of the flow.
    pub fn last(&self) -> &Reply {
        self.callback.as_ref().or(self.authorize.as_ref()).unwrap_or(&self.start)
    }

    pub fn describe(&self) -> String {
        let mut s = format!("--- start\n{}\n", self.start.describe());
        if let Some(a) = &self.authorize {
            s.push_str(&format!("--- authorize\n{}\n", a.describe()));
        }
        if let Some(c) = &self.callback {
            s.push_str(&format!("--- callback\n{}\n", c.describe()));
        }
        s
    }
}

impl Agent {
    /// `/oauth2/start` → provider's authorize endpoint → `/oauth2/callback`.
    /// Stops at the first hop that is not a redirect.
    pub async fn login(&mut self, gw: &Gateway, provider: &str, rd: &str) -> Login {
        let mut start_url = Url::parse(&gw.url("/oauth2/start")).expect("start url");
        start_url.query_pairs_mut().append_pair("provider", provider).append_pair("rd", rd);
        let start = self.get(start_url.as_str(), Accept::Html).await;
        let Some(authorize_url) = start.location().filter(|_| start.status.is_redirection()) else {
            return Login { start, authorize: None, callback: None };
        };
        let authorize = self.get(authorize_url.as_str(), Accept::Html).await;
        let Some(callback_url) = authorize.location().filter(|_| authorize.status.is_redirection()) else {
            return Login { start, authorize: Some(authorize), callback: None };
        };
        let callback = self.get(callback_url.as_str(), Accept::Html).await;
        Login { start, authorize: Some(authorize), callback: Some(callback) }
    }
}

/// Query parameters of a URL as a map (last value wins).
pub fn query_map(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Asserts that a login ended without a session: an error status on the
/// callback, no session cookie, and the protected URL still guarded.
pub async fn assert_no_session(gw: &Gateway, browser: &mut Agent, login: &Login, protected: &str) {
    let last = login.last();
    assert!(
        last.status.is_client_error() || last.status.is_server_error(),
        "login must end in an error status, got {}\n{}\nGATEWAY LOGS:\n{}",
        last.status,
        login.describe(),
        gw.logs()
    );
    for hop in [Some(&login.start), login.authorize.as_ref(), login.callback.as_ref()].into_iter().flatten() {
        assert!(
            hop.session_cookies_set().is_empty(),
            "a session cookie was set: {:?}\n{}",
            hop.session_cookies_set(),
            login.describe()
        );
    }
    assert!(!browser.has_session_cookie(), "browser holds a session cookie: {:?}", browser.cookies());
    assert_guarded(gw, browser, protected).await;
}

/// The protected URL answers 401 to an API client and redirects a browser
/// to sign in: the upstream is never reached.
pub async fn assert_guarded(gw: &Gateway, browser: &mut Agent, protected: &str) {
    let api = browser.get(&gw.url(protected), Accept::Json).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "API client without session:\n{}", api.describe());
    let page = browser.get(&gw.url(protected), Accept::Html).await;
    assert!(page.status.is_redirection(), "browser without session must be redirected:\n{}", page.describe());
    let to = page.location().expect("redirect target");
    assert!(to.path().starts_with("/oauth2/"), "browser without session must be sent to sign in, went to {to}");
}

/// Asserts a login succeeded: the callback redirects to `rd` and sets a
/// session cookie; then fetches `rd` through the gateway and returns the
/// upstream's echo.
pub async fn assert_logged_in(gw: &Gateway, browser: &mut Agent, login: &Login, rd: &str) -> Value {
    let callback = login
        .callback
        .as_ref()
        .unwrap_or_else(|| panic!("login stopped early\n{}\nGATEWAY LOGS:\n{}", login.describe(), gw.logs()));
    assert!(
        callback.status.is_redirection(),
        "callback must redirect to rd\n{}\nGATEWAY LOGS:\n{}",
        login.describe(),
        gw.logs()
    );
    let to = callback.location().expect("callback redirect");
    assert_eq!(to.as_str(), gw.url(rd), "callback must land on rd\n{}\nGATEWAY LOGS:\n{}", login.describe(), gw.logs());
    assert!(
        browser.has_session_cookie(),
        "no session cookie after login: {:?}\n{}",
        browser.cookies(),
        login.describe()
    );
    let page = browser.get(&gw.url(rd), Accept::Html).await;
    assert_eq!(page.status, StatusCode::OK, "upstream via session:\n{}\nGATEWAY LOGS:\n{}", page.describe(), gw.logs());
    let echo = super::echo::report(&page.body);
    assert_eq!(echo["path"], Url::parse(&gw.url(rd)).unwrap().path(), "upstream saw another path");
    echo
}
