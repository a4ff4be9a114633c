//! Identity values in canonical form only. A name or address that a
//! provider sends with surrounding whitespace, control or invisible
//! formatting characters, or in a Unicode form other than NFC is refused,
//! never trimmed or normalized: rewriting it could turn one account's value
//! into another's (`" alice@example.com"` into `"alice@example.com"`,
//! a decomposed `é` into a composed one).

use unicode_normalization::is_nfc;

/// Whether `value` is usable as identity exactly as it is.
pub fn is_canonical(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with(char::is_whitespace)
        && !value.ends_with(char::is_whitespace)
        && !value.chars().any(|c| c.is_control() || is_invisible(c))
        && is_nfc(value)
}

/// Zero-width and bidirectional formatting characters (Unicode `Cf`
/// characters that render as nothing or reorder text), which let two
/// different values look the same.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_values_in_canonical_form() {
        for good in ["alice", "alice@example.com", "Zoë", "248289761001", "Domain Admins"] {
            assert!(is_canonical(good), "{good:?}");
        }
        for bad in [
            "",
            " alice",
            "alice ",
            "alice\n",
            "ali\u{0}ce",
            "al\u{200B}ice",
            "\u{202E}ecila",
            "Zoe\u{0308}", // decomposed ë
            "\u{FEFF}alice",
            "alice\u{00A0}",
        ] {
            assert!(!is_canonical(bad), "{bad:?}");
        }
    }
}
