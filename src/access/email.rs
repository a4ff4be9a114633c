//! Email addresses as identity: exactly one `@`, and a domain to match on.

use thiserror::Error;

/// A syntactically acceptable email address, with its domain lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    address: String,
    at: usize,
}

/// Why an email address is not acceptable as identity.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EmailError {
    /// Zero or several `@`, or an empty side.
    #[error("the email address is malformed")]
    Malformed,
}

impl Email {
    /// Parses an address. It must already be in canonical form (see
    /// [`is_canonical`](super::is_canonical): no surrounding whitespace, no
    /// control or invisible characters, NFC) with an ASCII domain (IDNs in
    /// their `xn--` form); nothing is trimmed or normalized into another
    /// value. The domain part is lower-cased (domains are case-insensitive);
    /// the local part is kept, as mail systems may treat it case-sensitively.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        if !super::is_canonical(raw) {
            return Err(EmailError::Malformed);
        }
        let mut parts = raw.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::Malformed);
        };
        let bad = |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control());
        if bad(local) || bad(domain) || !domain.is_ascii() || domain.starts_with('.') || domain.ends_with('.') {
            return Err(EmailError::Malformed);
        }
        Ok(Self { address: format!("{local}@{}", domain.to_ascii_lowercase()), at: local.len() })
    }

    /// The whole address.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The domain, lower-case.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }

    /// Case-insensitive comparison with another address.
    pub fn eq_address(&self, other: &str) -> bool {
        self.address.eq_ignore_ascii_case(other.trim())
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_at() {
        assert_eq!(Email::parse("a@Example.com").unwrap().domain(), "example.com");
        assert_eq!(Email::parse("A.b@x.io").unwrap().as_str(), "A.b@x.io");
        for bad in [
            "",
            "a",
            "@x.io",
            "a@",
            "a@b@x.io",
            "a@x.io@evil.com",
            "a b@x.io",
            "a@x .io",
            "a@.x.io",
            "a@x.io.",
            " a@x.io",
            "a@x.io ",
            "a@x.io\n",
            "a\u{200B}@x.io",
            "a@bücher.de",
            "zoe\u{0308}@x.io",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Malformed), "{bad}");
        }
    }
}
