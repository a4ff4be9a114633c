//! The real `authgate gateway` against the GitHub fake: org and team
//! filters, verified-email selection, pagination, failing API calls and
//! GitHub's HTTP-200 token errors. The `fake_*` tests check the fake itself
//! against GitHub's documented behaviour, without the gateway.

mod common;
mod fakes;

use std::collections::BTreeMap;

use authgate::api::AllowList;
use authgate::gateway::config::ProviderType;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::echo::header_values;
use common::gateway::provider;
use common::login::{assert_guarded, assert_logged_in, assert_no_session, query_map};
use common::{Accept, Agent, Echo, Gateway, free_port, gateway, init};
use fakes::github::{Endpoint, FakeGithub, User, parse_link_header};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

const CLIENT_ID: &str = "Iv1.8a61f9b3a7aba766";
const CLIENT_SECRET: &str = "1234567890abcdef1234567890abcdef12345678";
const PROVIDER: &str = "github";
const RD: &str = "/app/dashboard?tab=1";

// ---------------------------------------------------------------------------
// The fake itself.
// ---------------------------------------------------------------------------

fn client() -> reqwest::Client {
    init();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Runs the authorize step against the fake and returns the code.
async fn fake_code(fake: &FakeGithub, challenge: Option<&str>, state: &str) -> String {
    let mut url = fake.authorize_url();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", "http://127.0.0.1:1/oauth2/callback")
        .append_pair("scope", "read:org user:email")
        .append_pair("state", state);
    if let Some(c) = challenge {
        url.query_pairs_mut().append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
    }
    let resp = client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(loc.path(), "/oauth2/callback");
    let q = query_map(&loc);
    assert_eq!(q.get("state").map(String::as_str), Some(state), "state is echoed");
    q["code"].clone()
}

async fn fake_token(fake: &FakeGithub, form: &[(&str, &str)], json: bool) -> (StatusCode, String) {
    let mut req = client().post(fake.token_url()).form(form);
    if json {
        req = req.header("accept", "application/json");
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn fake_api(fake: &FakeGithub, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client().get(format!("{}{path}", fake.api_url())).header("user-agent", "authgate-tests");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.send().await.unwrap()
}

async fn fake_user_token(fake: &FakeGithub, login: &str) -> String {
    fake.login_as(login);
    let code = fake_code(fake, None, "s").await;
    let (_, body) =
        fake_token(fake, &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("code", &code)], true).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_token_exchange_checks_pkce_secret_and_code() {
    let fake = FakeGithub::start(CLIENT_ID, CLIENT_SECRET).await;
    fake.add_user(User::new("octocat"));
    fake.login_as("octocat");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "RFC 7636 appendix B");

    // Wrong verifier: HTTP 200 with GitHub's error body; the code is spent.
    let code = fake_code(&fake, Some(&challenge), "st1").await;
    let base = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("code", code.as_str())];
    let (status, body) = fake_token(&fake, &[&base[..], &[("code_verifier", "wrong-verifier")]].concat(), true).await;
    assert_eq!(status, StatusCode::OK);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"], "bad_verification_code");
    assert!(err["error_description"].is_string() && err["error_uri"].is_string());
    let (_, body) = fake_token(&fake, &[&base[..], &[("code_verifier", verifier)]].concat(), true).await;
    assert!(body.contains("bad_verification_code"), "a code is single-use: {body}");

    // Missing verifier when a challenge was sent.
    let code = fake_code(&fake, Some(&challenge), "st2").await;
    let (_, body) =
        fake_token(&fake, &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("code", &code)], true).await;
    assert!(body.contains("bad_verification_code"), "{body}");

    // Wrong secret.
    let code = fake_code(&fake, Some(&challenge), "st3").await;
    let (status, body) = fake_token(
        &fake,
        &[("client_id", CLIENT_ID), ("client_secret", "nope"), ("code", &code), ("code_verifier", verifier)],
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"], "incorrect_client_credentials");

    // Right everything, JSON.
    let code = fake_code(&fake, Some(&challenge), "st4").await;
    let (_, body) = fake_token(
        &fake,
        &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("code", &code), ("code_verifier", verifier)],
        true,
    )
    .await;
    let ok: Value = serde_json::from_str(&body).unwrap();
    assert!(ok["access_token"].as_str().unwrap().starts_with("gho_"));
    assert_eq!(ok["token_type"], "bearer");
    assert_eq!(ok["scope"], "read:org,user:email");

    // Without Accept: application/json the answer is form-encoded.
    let code = fake_code(&fake, Some(&challenge), "st5").await;
    let (_, body) = fake_token(
        &fake,
        &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("code", &code), ("code_verifier", verifier)],
        false,
    )
    .await;
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert!(form["access_token"].starts_with("gho_"), "{body}");
    assert_eq!(form["token_type"], "bearer");

    // HTTP Basic client authentication is accepted too.
    let code = fake_code(&fake, Some(&challenge), "st6").await;
    let resp = client()
        .post(fake.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("accept", "application/json")
        .form(&[("code", code.as_str()), ("code_verifier", verifier)])
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("access_token"));

    // Forced error.
    fake.force_token_error(Some("bad_verification_code"));
    let code = fake_code(&fake, None, "st7").await;
    let (status, body) =
        fake_token(&fake, &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("code", &code)], true).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("bad_verification_code"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_authorize_rejects_plain_pkce_and_foreign_redirect() {
    let fake = FakeGithub::start(CLIENT_ID, CLIENT_SECRET).await;
    fake.add_user(User::new("octocat"));
    fake.login_as("octocat");
    fake.register_callback("http://127.0.0.1:1/oauth2/callback");
    let mut url = fake.authorize_url();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", "http://evil.example/cb")
        .append_pair("state", "x");
    let resp = client().get(url).send().await.unwrap();
    let loc = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(loc.host_str(), Some("127.0.0.1"), "errors go to the registered callback");
    assert_eq!(query_map(&loc)["error"], "redirect_uri_mismatch");

    let mut url = fake.authorize_url();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("code_challenge", "abc")
        .append_pair("code_challenge_method", "plain");
    let resp = client().get(url).send().await.unwrap();
    let loc = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(query_map(&loc)["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_paginates_like_github() {
    let fake = FakeGithub::start(CLIENT_ID, CLIENT_SECRET).await;
    fake.add_user(User::new("octocat").orgs((0..250).map(|i| format!("org-{i:03}"))));
    let token = fake_user_token(&fake, "octocat").await;

    // Default page size 30; Link has next and last, not prev/first.
    let resp = fake_api(&fake, "/user/orgs", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let links = parse_link_header(resp.headers()["link"].to_str().unwrap());
    assert_eq!(links.keys().cloned().collect::<Vec<_>>(), ["last", "next"]);
    assert_eq!(links["next"], format!("{}/user/orgs?page=2", fake.api_url()));
    assert_eq!(links["last"], format!("{}/user/orgs?page=9", fake.api_url()));
    let orgs: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(orgs.len(), 30);
    assert_eq!(orgs[0]["login"], "org-000");
    assert!(orgs[0]["id"].is_u64() && orgs[0]["url"].is_string() && orgs[0]["description"].is_string());

    // per_page is capped at 100; following `next` walks every page.
    let mut next = Some(format!("{}/user/orgs?per_page=1000", fake.api_url()));
    let mut seen = vec![];
    let mut pages = 0;
    while let Some(url) = next.take() {
        let resp = client()
            .get(&url)
            .header("user-agent", "t")
            .header("authorization", format!("token {token}"))
            .send()
            .await
            .unwrap();
        let links = resp.headers().get("link").map(|v| parse_link_header(v.to_str().unwrap())).unwrap_or_default();
        let page: Vec<Value> = resp.json().await.unwrap();
        assert!(page.len() <= 100);
        pages += 1;
        if pages == 1 {
            assert_eq!(links["last"], format!("{}/user/orgs?per_page=1000&page=3", fake.api_url()));
        }
        if pages == 3 {
            assert_eq!(page.len(), 50);
            assert!(!links.contains_key("next") && !links.contains_key("last"));
            assert_eq!(links["prev"], format!("{}/user/orgs?per_page=1000&page=2", fake.api_url()));
            assert_eq!(links["first"], format!("{}/user/orgs?per_page=1000&page=1", fake.api_url()));
        }
        seen.extend(page.into_iter().map(|o| o["login"].as_str().unwrap().to_owned()));
        next = links.get("next").cloned();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.last().unwrap(), "org-249");

    // Everything on one page: no Link header at all.
    fake.add_user(User::new("small").org("a").org("b"));
    let token = fake_user_token(&fake, "small").await;
    let resp = fake_api(&fake, "/user/orgs", Some(&token)).await;
    assert!(resp.headers().get("link").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_api_shapes_auth_and_failures() {
    let fake = FakeGithub::start(CLIENT_ID, CLIENT_SECRET).await;
    fake.add_user(
        User::new("octocat")
            .email("octo@unverified.example", true, false)
            .email("octo@verified.example", false, true)
            .org("acme")
            .team("acme", "platform-team")
            .fail(Endpoint::Teams, 500),
    );
    let token = fake_user_token(&fake, "octocat").await;

    let resp = fake_api(&fake, "/user", None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap()["message"], "Requires authentication");
    let resp = fake_api(&fake, "/user", Some("gho_forged")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
    assert!(body["documentation_url"].is_string());
    let resp = client().get(format!("{}/user", fake.api_url())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "User-Agent is required");

    let resp = fake_api(&fake, "/user", Some(&token)).await;
    assert_eq!(resp.headers()["x-oauth-scopes"], "read:org, user:email");
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["login"], "octocat");
    assert!(user["id"].is_u64());
    assert!(user["email"].is_null(), "no public email unless the test sets one");

    let emails: Vec<Value> = fake_api(&fake, "/user/emails", Some(&token)).await.json().await.unwrap();
    assert_eq!(emails.len(), 2);
    assert_eq!(emails[0]["primary"], true);
    assert_eq!(emails[0]["verified"], false);
    assert_eq!(emails[1]["email"], "octo@verified.example");
    assert_eq!(emails[1]["verified"], true);
    assert!(emails[1]["visibility"].is_string());

    let resp = fake_api(&fake, "/user/teams", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(resp.json::<Value>().await.unwrap()["message"].is_string());

    fake.add_user(User::new("teamy").team("acme", "platform-team"));
    let token = fake_user_token(&fake, "teamy").await;
    let teams: Vec<Value> = fake_api(&fake, "/user/teams", Some(&token)).await.json().await.unwrap();
    assert_eq!(teams[0]["slug"], "platform-team");
    assert_ne!(teams[0]["name"], teams[0]["slug"], "display name differs from slug");
    assert_eq!(teams[0]["organization"]["login"], "acme");
}

// ---------------------------------------------------------------------------
// The gateway against the fake.
// ---------------------------------------------------------------------------

struct Setup {
    fake: FakeGithub,
    gw: Gateway,
    _upstream: Echo,
}

/// A fake with `user` signed in, and a gateway with one GitHub provider
/// carrying `filters` (and the policy's `access` filters).
async fn setup(user: User, filters: AllowList, access: AllowList) -> Setup {
    setup_with_secret(user, filters, access, CLIENT_SECRET).await
}

async fn setup_with_secret(user: User, filters: AllowList, access: AllowList, secret: &str) -> Setup {
    let fake = FakeGithub::start(CLIENT_ID, CLIENT_SECRET).await;
    let login = user.login.clone();
    fake.add_user(user);
    fake.login_as(&login);
    let upstream = Echo::start().await;
    let port = free_port();
    let mut p = provider(
        PROVIDER,
        ProviderType::Github,
        CLIENT_ID,
        secret,
        fake.authorize_url(),
        fake.token_url(),
        &["read:org", "user:email"],
        filters,
    );
    p.api_url = Some(fake.api_url());
    let mut cfg = gateway::config(port, &upstream.url(), vec![p]);
    cfg.access = access;
    let gw = Gateway::start_with(cfg, &[("RUST_LOG", &fakes::gateway_log())]).await;
    fake.register_callback(&gw.callback_url());
    Setup { fake, gw, _upstream: upstream }
}

fn orgs(list: &[&str]) -> AllowList {
    AllowList { allowed_orgs: list.iter().map(|s| (*s).to_owned()).collect(), ..AllowList::default() }
}

fn teams(list: &[&str]) -> AllowList {
    AllowList { allowed_teams: list.iter().map(|s| (*s).to_owned()).collect(), ..AllowList::default() }
}

fn domains(list: &[&str]) -> AllowList {
    AllowList { allowed_domains: list.iter().map(|s| (*s).to_owned()).collect(), ..AllowList::default() }
}

/// A login that must end in the 403 page, with no session.
async fn assert_denied(s: &Setup, must_mention: &[&str], must_not_leak: &[&str]) {
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    let last = login.last();
    assert_eq!(
        last.status,
        StatusCode::FORBIDDEN,
        "expected the 403 page\n{}\nGATEWAY LOGS:\n{}",
        login.describe(),
        s.gw.logs()
    );
    assert!(login.callback.is_some(), "denial must come from the callback\n{}", login.describe());
    let ct = last.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ct.starts_with("text/html"), "403 page is HTML, got {ct:?}");
    let body = last.body.to_lowercase();
    for word in must_mention {
        assert!(body.contains(&word.to_lowercase()), "403 page should name the reason ({word:?}):\n{}", last.body);
    }
    for secret in must_not_leak {
        assert!(!last.body.contains(secret), "403 page leaks the rule list ({secret:?}):\n{}", last.body);
    }
    assert_no_session(&s.gw, &mut browser, &login, RD).await;
}

fn only_token(fake: &FakeGithub) -> String {
    let tokens = fake.issued_tokens();
    assert_eq!(tokens.len(), 1, "exactly one token exchange");
    tokens[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_filter_allows_member_and_forwards_bearer() {
    let user = User::new("octocat").email("octocat@example.com", true, true).org("some-other-org").org("Acme-Allowed");
    let s = setup(user, orgs(&["acme-allowed"]), AllowList::default()).await;
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;

    // The authorize request: state and PKCE S256, the configured scopes.
    let auth = s.fake.authorize_requests();
    let params = &auth.last().expect("authorize request").params;
    assert!(params.get("state").is_some_and(|v| v.len() >= 16), "state: {params:?}");
    assert_eq!(params.get("code_challenge_method").map(String::as_str), Some("S256"), "{params:?}");
    assert!(params.get("code_challenge").is_some_and(|v| v.len() >= 43), "{params:?}");
    assert_eq!(params.get("redirect_uri"), Some(&s.gw.callback_url()));
    let scopes: Vec<&str> = params["scope"].split([' ', ',']).collect();
    assert!(scopes.contains(&"read:org") && scopes.contains(&"user:email"), "{params:?}");

    let echo = assert_logged_in(&s.gw, &mut browser, &login, RD).await;
    let token = only_token(&s.fake);
    assert_eq!(header_values(&echo, "authorization"), vec![format!("Bearer {token}")], "{echo:#}");
    assert_eq!(header_values(&echo, "x-auth-request-email"), vec!["octocat@example.com".to_owned()], "{echo:#}");
    let user = header_values(&echo, "x-auth-request-user");
    assert_eq!(user.len(), 1, "{echo:#}");
    assert!(user[0] == "octocat" || user[0] == "octocat@example.com", "user header: {user:?}");
    assert_eq!(echo["query"], "tab=1");

    // The token request carried the PKCE verifier that matches the challenge.
    let form = s.fake.token_requests().pop().expect("token request");
    let verifier = form.get("code_verifier").expect("code_verifier sent");
    assert_eq!(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())), params["code_challenge"]);

    // /oauth2/userinfo knows who this is.
    let info = browser.get(&s.gw.url("/oauth2/userinfo"), Accept::Json).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.describe());
    assert!(info.body.contains("octocat@example.com"), "{}", info.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_filter_denies_non_member() {
    let user = User::new("octocat").email("octocat@example.com", true, true).org("some-other-org");
    let s = setup(user, orgs(&["secret-allowed-org-7f3a"]), AllowList::default()).await;
    assert_denied(&s, &["organization"], &["secret-allowed-org-7f3a"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_org_filter_applies_on_top_of_provider() {
    // The provider allows the user's org; the policy requires another.
    let user = User::new("octocat").email("octocat@example.com", true, true).org("acme");
    let s = setup(user, orgs(&["acme"]), orgs(&["secret-policy-org-91c2"])).await;
    assert_denied(&s, &["organization"], &["secret-policy-org-91c2"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_filter_allows_member() {
    let user = User::new("octocat")
        .email("octocat@example.com", true, true)
        .org("acme")
        .team("acme", "readers")
        .team("acme", "platform-team");
    let s = setup(user, teams(&["acme/platform-team"]), AllowList::default()).await;
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    let echo = assert_logged_in(&s.gw, &mut browser, &login, RD).await;
    assert_eq!(header_values(&echo, "authorization"), vec![format!("Bearer {}", only_token(&s.fake))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_filter_denies_non_member() {
    // Same slug in another org, and another slug in the right org: neither
    // is `acme/platform-team`; nor is the team's display name a slug.
    let user = User::new("octocat")
        .email("octocat@example.com", true, true)
        .org("acme")
        .org("evil")
        .team("evil", "platform-team")
        .team("acme", "readers");
    let s = setup(user, teams(&["acme/platform-team"]), AllowList::default()).await;
    assert_denied(&s, &["team"], &["platform-team"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_secondary_email_is_used_over_unverified_primary() {
    let user = User::new("octocat")
        .email("octocat@unverified.example", true, false)
        .email("octocat@verified.example", false, true)
        .org("acme");
    let s = setup(user, domains(&["verified.example"]), AllowList::default()).await;
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    let echo = assert_logged_in(&s.gw, &mut browser, &login, RD).await;
    assert_eq!(header_values(&echo, "x-auth-request-email"), vec!["octocat@verified.example".to_owned()], "{echo:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_primary_email_never_matches_domain_filter() {
    let user = User::new("octocat")
        .email("octocat@unverified.example", true, false)
        .email("octocat@verified.example", false, true)
        .public_email("octocat@unverified.example");
    let s = setup(user, domains(&["unverified.example"]), AllowList::default()).await;
    assert_denied(&s, &[], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_unverified_emails_are_denied_by_domain_filter() {
    let user = User::new("octocat")
        .email("octocat@example.com", true, false)
        .email("octo@example.com", false, false)
        .public_email("octocat@example.com");
    let s = setup(user, domains(&["example.com"]), AllowList::default()).await;
    assert_denied(&s, &["verified"], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_orgs_are_paginated() {
    let user = User::new("octocat")
        .email("octocat@example.com", true, true)
        .orgs((0..250).map(|i| format!("filler-org-{i:03}")))
        .org("acme-on-the-last-page");
    let s = setup(user, orgs(&["acme-on-the-last-page"]), AllowList::default()).await;
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert_logged_in(&s.gw, &mut browser, &login, RD).await;
    let org_pages: Vec<u32> = s
        .fake
        .api_requests()
        .iter()
        .filter(|r| r.endpoint == Some(Endpoint::Orgs) && r.status == 200)
        .map(|r| r.page)
        .collect();
    assert!(org_pages.len() >= 3, "251 orgs need at least 3 pages at 100 per page: {org_pages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_teams_call_denies() {
    let user = User::new("octocat")
        .email("octocat@example.com", true, true)
        .org("acme")
        .team("acme", "platform-team")
        .fail(Endpoint::Teams, 500);
    let s = setup(user, teams(&["acme/platform-team"]), AllowList::default()).await;
    assert_denied(&s, &["team"], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_teams_call_denies() {
    let user = User::new("octocat")
        .email("octocat@example.com", true, true)
        .org("acme")
        .team("acme", "platform-team")
        .fail(Endpoint::Teams, 403);
    let s = setup(user, teams(&["acme/platform-team"]), AllowList::default()).await;
    assert_denied(&s, &["team"], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_second_page_of_orgs_denies() {
    // The allowed org is on page 2, which fails: it must not be assumed.
    let user = User::new("octocat")
        .email("octocat@example.com", true, true)
        .orgs((0..150).map(|i| format!("filler-org-{i:03}")))
        .fail_page(Endpoint::Orgs, 502, 2);
    let user = User { orgs: [user.orgs.clone(), vec!["acme".to_owned()]].concat(), ..user };
    let s = setup(user, orgs(&["acme"]), AllowList::default()).await;
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert_no_session(&s.gw, &mut browser, &login, RD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_emails_call_denies_domain_filter() {
    let user = User::new("octocat")
        .email("octocat@example.com", true, true)
        .public_email("octocat@example.com")
        .fail(Endpoint::Emails, 500);
    let s = setup(user, domains(&["example.com"]), AllowList::default()).await;
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert_no_session(&s.gw, &mut browser, &login, RD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_error_with_http_200_fails_cleanly() {
    let user = User::new("octocat").email("octocat@example.com", true, true).org("acme");
    let s = setup(user, orgs(&["acme"]), AllowList::default()).await;
    s.fake.force_token_error(Some("bad_verification_code"));
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert_no_session(&s.gw, &mut browser, &login, RD).await;
    assert!(s.fake.api_requests().is_empty(), "no API call without a token: {:?}", s.fake.api_requests());
    let body = &login.last().body;
    assert!(!body.contains(CLIENT_SECRET), "the error page must not show secrets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_fails_cleanly() {
    let user = User::new("octocat").email("octocat@example.com", true, true).org("acme");
    let s = setup_with_secret(user, orgs(&["acme"]), AllowList::default(), "not-the-secret").await;
    let mut browser = Agent::new();
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert_no_session(&s.gw, &mut browser, &login, RD).await;
    assert!(s.fake.issued_tokens().is_empty());
    assert!(!s.gw.logs().contains("not-the-secret"), "the client secret must never be logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_is_guarded_and_secrets_stay_out_of_logs() {
    let user = User::new("octocat").email("octocat@example.com", true, true).org("acme");
    let s = setup(user, orgs(&["acme"]), AllowList::default()).await;
    let mut browser = Agent::new();
    assert_guarded(&s.gw, &mut browser, RD).await;
    let login = browser.login(&s.gw, PROVIDER, RD).await;
    assert_logged_in(&s.gw, &mut browser, &login, RD).await;
    let token = only_token(&s.fake);
    let logs = s.gw.logs();
    assert!(!logs.contains(&token), "access token logged");
    assert!(!logs.contains(CLIENT_SECRET), "client secret logged");
    for value in browser.cookies().values() {
        assert!(value.len() < 8 || !logs.contains(value.as_str()), "cookie value logged");
    }
}
