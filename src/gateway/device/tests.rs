use super::*;

fn mem() -> MemoryStore {
    MemoryStore::default()
}

#[test]
fn user_codes_are_eight_consonants_and_typing_is_forgiving() {
    for _ in 0..100 {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(code.bytes().filter(|b| *b != b'-').all(|b| USER_CODE_ALPHABET.contains(&b)), "{code}");
        assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
    }
    assert_eq!(normalize_user_code("bcdf ghjk").as_deref(), Some("BCDF-GHJK"));
    assert_eq!(normalize_user_code("BCDFGHJ"), None, "too short");
    assert_eq!(normalize_user_code("BCDFGHJKL"), None, "too long");
    assert_eq!(normalize_user_code("BCDF-GHJA"), None, "a vowel");
}

#[tokio::test]
async fn an_approved_grant_is_redeemed_once() {
    let m = mem();
    let s = Store::Memory(&m);
    let codes = authorize(&s, "cli", "10.0.0.1", "curl", 600, 1000).await.unwrap();
    assert_eq!(poll(&s, &codes.device_code, "cli", 5, 1000).await.unwrap(), Poll::Pending);
    assert_eq!(poll(&s, &codes.device_code, "cli", 5, 1001).await.unwrap(), Poll::SlowDown);
    assert_eq!(poll(&s, &codes.device_code, "other", 5, 1001).await.unwrap(), Poll::Invalid);
    let (hash, grant) = find(&s, &codes.user_code, 1002).await.unwrap().expect("pending");
    assert_eq!(grant.ip, "10.0.0.1");
    let approval = Approval {
        subject: "alice".into(),
        user: "alice".into(),
        email: None,
        groups: vec![],
        provider: "corp".into(),
    };
    decide(&s, &hash, grant, State::Approved(approval.clone()), 1003).await.unwrap();
    assert!(find(&s, &codes.user_code, 1003).await.unwrap().is_none(), "a decided code is not found again");
    assert_eq!(poll(&s, &codes.device_code, "cli", 5, 1010).await.unwrap(), Poll::Issued(approval));
    assert_eq!(poll(&s, &codes.device_code, "cli", 5, 1020).await.unwrap(), Poll::Invalid);
}

#[tokio::test]
async fn expired_and_denied_grants() {
    let m = mem();
    let s = Store::Memory(&m);
    let codes = authorize(&s, "cli", "ip", "ua", 60, 0).await.unwrap();
    assert!(find(&s, &codes.user_code, 60).await.unwrap().is_none(), "no approval after expiry");
    assert_eq!(poll(&s, &codes.device_code, "cli", 5, 61).await.unwrap(), Poll::Expired);
    let codes = authorize(&s, "cli", "ip", "ua", 60, 0).await.unwrap();
    let (hash, grant) = find(&s, &codes.user_code, 1).await.unwrap().unwrap();
    decide(&s, &hash, grant, State::Denied, 2).await.unwrap();
    assert_eq!(poll(&s, &codes.device_code, "cli", 5, 3).await.unwrap(), Poll::Denied);
    assert_eq!(poll(&s, &codes.device_code, "cli", 5, 9).await.unwrap(), Poll::Invalid);
}

#[tokio::test]
async fn wrong_guesses_are_limited_per_ip() {
    let m = mem();
    let s = Store::Memory(&m);
    for _ in 0..GUESSES_PER_IP {
        assert!(may_guess(&s, "1.2.3.4", 0).await.unwrap());
        wrong_guess(&s, "1.2.3.4", 0).await.unwrap();
    }
    assert!(!may_guess(&s, "1.2.3.4", 1).await.unwrap());
    assert!(may_guess(&s, "5.6.7.8", 1).await.unwrap(), "another IP still may");
    assert!(may_guess(&s, "1.2.3.4", GUESS_WINDOW).await.unwrap(), "after the window");
}
