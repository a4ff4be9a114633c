//! Property tests for [`encode_groups`]: the header value carries no CR/LF
//! and an upstream splitting on `,` and percent-decoding gets the groups back.

use super::identity::encode_groups;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn groups_header_splits_back_to_the_groups(groups in proptest::collection::vec(any::<String>(), 0..6)) {
        match encode_groups(groups.iter().map(String::as_str)) {
            None => prop_assert!(groups.iter().all(String::is_empty), "no header for {:?}", groups),
            Some(value) => {
                let bytes = value.as_bytes();
                prop_assert!(!bytes.contains(&b'\r') && !bytes.contains(&b'\n') && !bytes.contains(&0));
                let text = value.to_str().expect("header value is ASCII");
                let back: Vec<String> =
                    text.split(',').map(|p| percent_decode_str(p).decode_utf8().unwrap().into_owned()).collect();
                prop_assert_eq!(back, groups);
            }
        }
    }
}
