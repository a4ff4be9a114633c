//! Tickets, record sealing and key names; the Redis round trips (TTL,
//! sign-out, `end_user`) run against a real server in
//! `tests/gateway_redis.rs`.

use super::*;
use crate::contract::redacted::Redacted;
use crate::gateway::session::crypto::generate_key;

fn keyring() -> Keyring {
    Keyring::new(&[Redacted::new(generate_key())]).unwrap()
}

fn redis(prefix: Option<&str>) -> RedisConfig {
    RedisConfig {
        addresses: vec!["127.0.0.1:1".into()],
        sentinel_master: None,
        username: None,
        password: None,
        database: 0,
        tls: None,
        key_prefix: prefix.map(str::to_owned),
    }
}

#[test]
fn a_ticket_is_an_id_and_32_random_bytes_and_opens_only_under_its_cookie_name() {
    let ring = keyring();
    let a = Ticket::new([3; SESSION_ID_BYTES]);
    let b = Ticket::new([3; SESSION_ID_BYTES]);
    assert_ne!(a.secret, b.secret, "fresh randomness every time");
    assert_eq!(a.to_bytes().len(), SESSION_ID_BYTES + TICKET_SECRET_BYTES);
    let sealed = ring.seal(b"_authgate", &a.to_bytes());
    let opened = ring.open(b"_authgate", &sealed).and_then(|raw| Ticket::from_bytes(&raw));
    assert_eq!(opened, Some(a.clone()));
    assert_eq!(ring.open(b"_other_policy", &sealed), None, "another cookie name");
    assert_eq!(keyring().open(b"_authgate", &sealed), None, "another keyring");
    let mut tampered = sealed.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(ring.open(b"_authgate", std::str::from_utf8(&tampered).unwrap()), None, "tampered");
    // A cookie-store record (any other length) is no ticket.
    assert_eq!(Ticket::from_bytes(&[0; 47]), None);
    assert_eq!(Ticket::from_bytes(&[0; 49]), None);
}

#[test]
fn the_secret_is_kept_only_hashed_and_never_printed() {
    let t = Ticket::new([1; SESSION_ID_BYTES]);
    assert_ne!(&t.secret_hash()[..], &t.secret[..]);
    assert_eq!(t.secret_hash(), Ticket { id: [9; SESSION_ID_BYTES], secret: t.secret }.secret_hash());
    assert_eq!(format!("{t:?}"), "Ticket { .. }");
}

#[test]
fn a_record_opens_only_under_its_own_key_name() {
    let session = SessionConfig::default();
    let sessions = RedisSessions::new(&session, &redis(None)).unwrap();
    let ring = keyring();
    let key = sessions.record_key(&[1; SESSION_ID_BYTES]);
    let sealed = ring.seal(key.as_bytes(), b"record");
    assert_eq!(ring.open(key.as_bytes(), &sealed).as_deref(), Some(&b"record"[..]));
    let other = sessions.record_key(&[2; SESSION_ID_BYTES]);
    assert_eq!(ring.open(other.as_bytes(), &sealed), None, "copied to another session's key");
}

#[test]
fn keys_are_prefixed_by_the_cookie_name_unless_told_otherwise() {
    let session = SessionConfig { cookie_name: "_authgate_abc".into(), ..SessionConfig::default() };
    let by_cookie = RedisSessions::new(&session, &redis(None)).unwrap();
    assert_eq!(by_cookie.record_key(&[0xab; 2]), "_authgate_abc:s:abab");
    assert_eq!(by_cookie.tombstone_key(&[0xab; 2]), "_authgate_abc:e:abab");
    let shared = RedisSessions::new(&session, &redis(Some("team-a/"))).unwrap();
    assert_eq!(shared.record_key(&[1]), "team-a/s:01");
    // Users appear only hashed, per provider.
    let user = by_cookie.user_key("corp", "alice@example.com");
    assert!(user.starts_with("_authgate_abc:u:") && !user.contains("alice"), "{user}");
    assert_ne!(user, by_cookie.user_key("other", "alice@example.com"));
    let sid = by_cookie.sid_key("corp", "alice@example.com");
    assert!(sid.starts_with("_authgate_abc:sid:") && sid != user, "{sid}");
    assert_eq!(by_cookie.max_ttl, session.ttl_seconds);
}

#[test]
fn a_bad_address_is_a_config_error_not_io() {
    let mut bad = redis(None);
    bad.addresses = vec!["no-port".into()];
    assert!(matches!(RedisSessions::new(&SessionConfig::default(), &bad), Err(StoreError::Config(_))));
    bad.addresses = vec!["a:1".into(), "b:2".into()];
    assert!(RedisSessions::new(&SessionConfig::default(), &bad).is_err(), "standalone needs exactly one");
    bad.sentinel_master = Some("mymaster".into());
    assert!(RedisSessions::new(&SessionConfig::default(), &bad).is_ok(), "sentinels may be several");
}
