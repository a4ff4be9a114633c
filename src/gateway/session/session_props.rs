//! Property tests: session encode → decode roundtrip, and cookie chunk
//! split → reassemble roundtrip.

use super::cookies::{CHUNK_LEN, CookieSettings, MAX_CHUNKS, Present};
use super::{SESSION_ID_BYTES, Session, SessionView};
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use proptest::prelude::*;

fn session() -> impl Strategy<Value = Session> {
    (
        (any::<[u8; SESSION_ID_BYTES]>(), any::<u64>(), any::<u64>(), any::<Option<String>>()),
        (any::<String>(), any::<String>(), any::<String>(), any::<Option<String>>()),
        proptest::collection::vec(any::<String>(), 0..5),
        (
            any::<String>(),
            any::<Option<String>>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            // A session keeps an ID token only when the provider sent one
            // (never an empty one): the record tells "none" by its absence.
            proptest::option::of(".+"),
        ),
    )
        .prop_map(|((id, issued_at, validated_at, idp_sid), (provider, subject, user, email), groups, t)| {
            Session {
                id,
                issued_at,
                validated_at,
                idp_sid,
                provider,
                subject,
                user,
                email,
                groups,
                access_token: t.0,
                refresh_token: t.1,
                access_issued_at: t.2,
                access_expires_at: t.3,
                expires_at: t.4,
                id_token: t.5,
            }
        })
}

/// The `Cookie` header a browser sends back for these `Set-Cookie`s.
fn cookie_header(set: &HeaderMap) -> HeaderMap {
    let pairs: Vec<&str> = set
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap())
        .filter(|p| !p.ends_with('='))
        .collect();
    let mut headers = HeaderMap::new();
    if !pairs.is_empty() {
        headers.insert(COOKIE, pairs.join("; ").parse().unwrap());
    }
    headers
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn session_encode_decode_roundtrip(s in session()) {
        let bytes = s.encode();
        let view = SessionView::decode(&bytes).expect("an encoded session decodes");
        prop_assert!(view.to_session() == s, "roundtrip changed the session");
        prop_assert_eq!(view.groups().collect::<Vec<_>>(), s.groups.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn truncated_sessions_never_decode_to_a_different_one(s in session(), cut in any::<prop::sample::Index>()) {
        let bytes = s.encode();
        let cut = cut.index(bytes.len());
        if let Ok(view) = SessionView::decode(&bytes[..cut]) {
            // Only the optional trailing ID token may be dropped.
            let mut without = s.clone();
            without.id_token = None;
            prop_assert!(view.to_session() == without);
        }
    }

    #[test]
    fn cookie_chunks_reassemble(len in 1..(CHUNK_LEN * MAX_CHUNKS), fill in "[A-Za-z0-9_-]{1,64}") {
        let sealed: String = fill.chars().cycle().take(len).collect();
        let settings = CookieSettings::new("_authgate", None, true, "/", 3600);
        let mut out = HeaderMap::new();
        settings.write_session(&sealed, Present::default(), &mut out).expect("fits in the chunks");
        let headers = cookie_header(&out);
        let (back, _) = settings.read_session(&headers);
        prop_assert_eq!(back.as_deref(), Some(sealed.as_str()));
    }

    #[test]
    fn rewriting_a_smaller_session_expires_the_old_chunks(big in (CHUNK_LEN * 2)..(CHUNK_LEN * 4), small in 1..CHUNK_LEN) {
        let settings = CookieSettings::new("_authgate", None, true, "/", 3600);
        let mut first = HeaderMap::new();
        settings.write_session(&"a".repeat(big), Present::default(), &mut first).unwrap();
        let (_, present) = settings.read_session(&cookie_header(&first));
        let mut second = HeaderMap::new();
        settings.write_session(&"b".repeat(small), present, &mut second).unwrap();
        // The browser applies the second response on top of the first.
        let mut jar: Vec<(String, String)> = Vec::new();
        for set in first.get_all(SET_COOKIE).iter().chain(second.get_all(SET_COOKIE).iter()) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (n, v) = pair.split_once('=').unwrap();
            jar.retain(|(name, _)| name != n);
            if !v.is_empty() {
                jar.push((n.to_owned(), v.to_owned()));
            }
        }
        let mut headers = HeaderMap::new();
        let joined: Vec<String> = jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
        headers.insert(COOKIE, joined.join("; ").parse().unwrap());
        let (back, _) = settings.read_session(&headers);
        let expected = "b".repeat(small);
        prop_assert_eq!(back.as_deref(), Some(expected.as_str()));
    }
}
