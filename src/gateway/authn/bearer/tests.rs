use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;
use crate::access::Membership;
use crate::contract::machine::{BearerAlgorithm, BearerClaimPaths};

const ISS: &str = "https://ci.example";
const NOW: u64 = 1_800_000_000;

struct Key {
    kid: String,
    encoding: jsonwebtoken::EncodingKey,
    jwk: Value,
}

fn p256(kid: &str) -> Key {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let (x, y) = (&raw[1..33], &raw[33..65]);
    Key {
        kid: kid.into(),
        encoding: jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
        jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
    }
}

fn issuer(iss: &str, key: &Key) -> BearerIssuerConfig {
    BearerIssuerConfig {
        name: format!("{iss}-name"),
        issuer: iss.into(),
        audiences: vec!["app".into()],
        algorithms: vec![BearerAlgorithm::ES256],
        jwks_url: None,
        jwks: Some(json!({"keys": [key.jwk]}).to_string()),
        ca_pem: None,
        claims: BearerClaimPaths {
            groups: "realm_access.roles".into(),
            api_key: Some("api_key".into()),
            ..Default::default()
        },
        login_client_ids: vec!["login-client".into()],
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "svc-1", "aud": ["app", "other"], "exp": NOW + 600, "iat": NOW,
        "email": "ci@example.com", "email_verified": "true", "realm_access": {"roles": ["deploy", "read"]}})
}

fn sign(key: &Key, header: Value, claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{h}.{p}");
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, jsonwebtoken::Algorithm::ES256).unwrap();
    format!("{message}.{sig}")
}

fn es256(key: &Key, claims: &Value) -> String {
    sign(key, json!({"alg": "ES256", "kid": key.kid, "typ": "JWT"}), claims)
}

fn auth(issuers: &[BearerIssuerConfig]) -> BearerAuthenticator {
    BearerAuthenticator::new(issuers, &[]).unwrap()
}

#[tokio::test]
async fn a_good_token_maps_to_an_identity_with_nested_groups() {
    let key = p256("k1");
    let a = auth(&[issuer(ISS, &key)]);
    let caller = a.verify(&es256(&key, &claims()), NOW).await.unwrap();
    let id = &caller.principal.identity;
    assert_eq!((id.subject.as_str(), id.user.as_str()), ("svc-1", "svc-1"));
    assert_eq!(id.email.as_deref(), Some("ci@example.com"));
    assert!(id.email_verified, "\"true\" counts as verified");
    assert_eq!(id.groups, Membership::Known(vec!["deploy".into(), "read".into()]));
    assert_eq!(caller.principal.provider, "https://ci.example-name");
    assert_eq!(caller.principal.proof, Proof::Bearer);
    assert_eq!(caller.grant, Grant::Full);
    assert_eq!(caller.expires_at, NOW + 600 + claims::LEEWAY_SECONDS);
}

#[tokio::test]
async fn each_refused_case_has_its_reason() {
    let key = p256("k1");
    let other = p256("k2");
    let a = auth(&[issuer(ISS, &key), issuer("https://b.example", &other)]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        c
    };
    let h = |extra: Value| {
        let mut h = json!({"alg": "ES256", "kid": "k1"});
        h.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        h
    };
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let hs = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let cases: Vec<(String, BearerError)> = vec![
        ("a.b.c".into(), BearerError::Malformed),
        (none, BearerError::Algorithm),
        (hs, BearerError::Algorithm),
        (sign(&key, h(json!({"jku": "https://evil/jwks"})), &claims()), BearerError::KeyHeader),
        (sign(&key, h(json!({"jwk": key.jwk})), &claims()), BearerError::KeyHeader),
        (sign(&key, h(json!({"x5u": "https://evil/x"})), &claims()), BearerError::KeyHeader),
        (es256(&key, &with(&|c| c["iss"] = json!("https://evil"))), BearerError::UnknownIssuer),
        (es256(&key, &with(&|c| c["iss"] = json!("https://b.example"))), BearerError::UnknownKid),
        (
            sign(&key, json!({"alg": "ES256", "kid": "k2"}), &with(&|c| c["iss"] = json!("https://b.example"))),
            BearerError::Signature,
        ),
        (sign(&other, json!({"alg": "ES256", "kid": "k1"}), &claims()), BearerError::Signature),
        (sign(&key, json!({"alg": "ES256", "kid": "nope"}), &claims()), BearerError::UnknownKid),
        (sign(&key, json!({"alg": "RS256", "kid": "k1"}), &claims()), BearerError::Algorithm),
        (es256(&key, &with(&|c| c["aud"] = json!("else"))), BearerError::Audience),
        (es256(&key, &with(&|c| drop(c.as_object_mut().unwrap().remove("aud")))), BearerError::Audience),
        (es256(&key, &with(&|c| c["aud"] = json!(["app", "login-client"]))), BearerError::IdToken),
        (es256(&key, &with(&|c| c["nonce"] = json!("n"))), BearerError::IdToken),
        (es256(&key, &with(&|c| c["exp"] = json!(NOW - 61))), BearerError::Expired),
        (es256(&key, &with(&|c| drop(c.as_object_mut().unwrap().remove("exp")))), BearerError::Expired),
        (es256(&key, &with(&|c| c["nbf"] = json!(NOW + 61))), BearerError::NotYetValid),
        (es256(&key, &with(&|c| c["realm_access"]["roles"] = json!(["a\r\nX-Evil: 1"]))), BearerError::Claims),
        (es256(&key, &with(&|c| c["realm_access"]["roles"] = json!("a,b"))), BearerError::Claims),
        (es256(&key, &with(&|c| c["email"] = json!("a@b.c\n"))), BearerError::Claims),
        (es256(&key, &with(&|c| c["sub"] = json!("x\u{7}"))), BearerError::Claims),
        (es256(&key, &with(&|c| c["api_key"] = json!("missing"))), BearerError::ApiKey),
    ];
    for (i, (token, want)) in cases.iter().enumerate() {
        assert_eq!(a.verify(token, NOW).await.err(), Some(*want), "case {i}");
    }
}

#[tokio::test]
async fn leeway_typed_access_tokens_and_the_api_key_claim() {
    let key = p256("k1");
    let tokens = vec![
        ApiTokenEntry {
            name: "ci".into(),
            sha256: "0".repeat(64),
            user: "ci".into(),
            groups: vec![],
            scopes: vec!["read".into()],
            expires_at: NOW + 100,
        },
        ApiTokenEntry {
            name: "old".into(),
            sha256: "1".repeat(64),
            user: "o".into(),
            groups: vec![],
            scopes: vec![],
            expires_at: NOW,
        },
    ];
    let a = BearerAuthenticator::new(&[issuer(ISS, &key)], &tokens).unwrap();
    let mut c = claims();
    c["exp"] = json!(NOW - 30);
    c["nbf"] = json!(NOW + 30);
    assert!(a.verify(&es256(&key, &c), NOW).await.is_ok(), "60 s leeway both ways");
    let mut c = claims();
    c["aud"] = json!("login-client");
    c["aud"] = json!(["login-client", "app"]);
    let typed = sign(&key, json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}), &c);
    assert!(a.verify(&typed, NOW).await.is_ok(), "an RFC 9068 access token may name the login client");
    let mut c = claims();
    c["api_key"] = json!("ci");
    let caller = a.verify(&es256(&key, &c), NOW).await.unwrap();
    assert_eq!(caller.grant, Grant::Scopes(vec!["read".into()]));
    assert_eq!(caller.expires_at, NOW + 100, "never outlives the ApiToken");
    c["api_key"] = json!("old");
    assert_eq!(a.verify(&es256(&key, &c), NOW).await.err(), Some(BearerError::ApiKey), "expired ApiToken");
}

#[tokio::test]
async fn verified_tokens_are_cached_and_other_tokens_are_not_mine() {
    let key = p256("k1");
    let a = auth(&[issuer(ISS, &key)]);
    let mut headers = HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, format!("Bearer {}", es256(&key, &claims())).parse().unwrap());
    assert!(matches!(a.authenticate(&headers, NOW).await, Verdict::Caller(_)));
    assert_eq!(a.cache.len(), 1);
    assert!(matches!(a.authenticate(&headers, NOW + 1).await, Verdict::Caller(_)));
    assert_eq!(a.cache.len(), 1);
    let mut other = claims();
    other["sub"] = json!("svc-2");
    assert!(a.cache.get(&cache::key(&es256(&key, &other)), NOW).is_none(), "keyed by the token");
    assert!(
        a.cache
            .get(
                &cache::key(headers[http::header::AUTHORIZATION].to_str().unwrap().trim_start_matches("Bearer ")),
                NOW + cache::MAX_AGE_SECONDS
            )
            .is_none(),
        "entries live at most MAX_AGE_SECONDS"
    );
    headers.insert(http::header::AUTHORIZATION, "Bearer agt_abcdef".parse().unwrap());
    assert!(matches!(a.authenticate(&headers, NOW).await, Verdict::NotMine));
    headers.insert(http::header::AUTHORIZATION, "Bearer x.y.z".parse().unwrap());
    assert!(matches!(a.authenticate(&headers, NOW).await, Verdict::Reject(Rejection::InvalidToken("malformed"))));
    assert!(matches!(auth(&[]).authenticate(&headers, NOW).await, Verdict::NotMine));
}

#[test]
fn dotted_paths_and_config_checks() {
    let c = json!({"a": {"b": {"c": 1}}, "x.y": 2}).as_object().unwrap().clone();
    assert_eq!(claims::at(&c, "a.b.c"), Some(&json!(1)));
    assert_eq!(claims::at(&c, "x.y"), Some(&json!(2)));
    assert_eq!(claims::at(&c, "a.z"), None);
    let key = p256("k1");
    let mut bad = issuer(ISS, &key);
    bad.audiences.clear();
    assert!(BearerAuthenticator::new(&[bad], &[]).is_err());
    let mut bad = issuer(ISS, &key);
    bad.jwks = None;
    assert!(BearerAuthenticator::new(&[bad], &[]).is_err(), "no keys at all");
}
