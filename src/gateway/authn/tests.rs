use std::sync::Mutex;

use http::{HeaderMap, HeaderValue, header};

use super::*;
use crate::contract::config::Redacted;
use crate::contract::keys::generate_cookie_key;
use crate::gateway::session::{CookieSettings, CookieStore, Keyring, Session, SessionStore};

/// An authenticator that answers from a script and records that it ran.
struct Scripted<'l> {
    name: &'static str,
    answer: fn() -> Verdict,
    log: &'l Mutex<Vec<&'static str>>,
}

impl Authenticator for Scripted<'_> {
    fn authenticate(&self, _: &HeaderMap, _: u64) -> impl Future<Output = Verdict> + Send {
        self.log.lock().unwrap().push(self.name);
        std::future::ready((self.answer)())
    }
}

fn not_mine() -> Verdict {
    Verdict::NotMine
}
fn reject() -> Verdict {
    Verdict::Reject(Rejection::SessionEnded(Present::default()))
}
fn accept() -> Verdict {
    Verdict::Caller(Caller::Session(SessionCaller::for_tests()))
}

/// One scripted step: a name for the log and the answer it gives.
type Step = (&'static str, fn() -> Verdict);

async fn run(script: &[Step]) -> (Authn, Vec<&'static str>) {
    let log = Mutex::new(Vec::new());
    let chain: Vec<Scripted<'_>> = script.iter().map(|&(name, answer)| Scripted { name, answer, log: &log }).collect();
    let outcome = authenticate(&chain, &HeaderMap::new(), 0).await;
    drop(chain);
    (outcome, log.into_inner().unwrap())
}

#[tokio::test]
async fn authenticators_are_asked_in_order_until_one_is_sure() {
    let (outcome, asked) = run(&[("a", not_mine), ("b", accept), ("c", accept)]).await;
    assert!(matches!(outcome, Authn::Caller(_)), "{outcome:?}");
    assert_eq!(asked, ["a", "b"], "the first caller wins and later ones are not asked");
}

#[tokio::test]
async fn a_rejection_stops_the_chain_even_before_an_accepting_authenticator() {
    let (outcome, asked) = run(&[("a", not_mine), ("b", reject), ("c", accept)]).await;
    assert!(matches!(outcome, Authn::Rejected(Rejection::SessionEnded(_))), "{outcome:?}");
    assert_eq!(asked, ["a", "b"]);
}

#[tokio::test]
async fn nobody_claiming_the_request_makes_it_anonymous() {
    let (outcome, asked) = run(&[("a", not_mine), ("b", not_mine)]).await;
    assert!(matches!(outcome, Authn::Anonymous), "{outcome:?}");
    assert_eq!(asked, ["a", "b"]);
    assert!(matches!(run(&[]).await.0, Authn::Anonymous));
}

fn session(expires_at: u64) -> Session {
    Session {
        id: [1; crate::gateway::session::SESSION_ID_BYTES],
        issued_at: 0,
        validated_at: 0,
        idp_sid: None,
        provider: "oidc".into(),
        subject: "1".into(),
        user: "alice".into(),
        email: None,
        groups: vec![],
        access_token: "at".into(),
        refresh_token: None,
        access_issued_at: 0,
        access_expires_at: 0,
        expires_at,
        id_token: None,
    }
}

/// The `Cookie` header a browser would send back for `set`.
fn returned(set: &HeaderMap) -> HeaderMap {
    let pairs: Vec<String> = set
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, HeaderValue::from_str(&pairs.join("; ")).unwrap());
    h
}

#[tokio::test]
async fn the_session_authenticator_tells_ours_from_foreign_and_live_from_ended() {
    let keys = Keyring::new(&[Redacted::new(generate_cookie_key())]).unwrap();
    let other_keys = Keyring::new(&[Redacted::new(generate_cookie_key())]).unwrap();
    let cookies = CookieSettings::new("_s", None, false, "/", 3600);
    let store = CookieStore::new(&keys, &cookies);
    let ours = SessionAuthenticator::new(CookieStore::new(&keys, &cookies));
    let foreign = SessionAuthenticator::new(CookieStore::new(&other_keys, &cookies));

    assert!(matches!(ours.authenticate(&HeaderMap::new(), 10).await, Verdict::NotMine));

    let mut set = HeaderMap::new();
    store.save(&session(100), Present::default(), &mut set).await.unwrap();
    let sent = returned(&set);
    match ours.authenticate(&sent, 10).await {
        Verdict::Caller(Caller::Session(caller)) => assert_eq!(caller.view().user, "alice"),
        other => panic!("a live session: {other:?}"),
    }
    assert!(matches!(foreign.authenticate(&sent, 10).await, Verdict::NotMine), "another gateway's cookie");
    match ours.authenticate(&sent, 100).await {
        Verdict::Reject(Rejection::SessionEnded(present)) => assert_ne!(present, Present::default()),
        other => panic!("an ended session: {other:?}"),
    }
}
