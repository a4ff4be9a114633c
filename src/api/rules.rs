//! CEL expressions shared by several admission rules.
//!
//! They are plain `&str` constants so that the same rule text appears in both
//! CRDs and in the offline `authgate check`.

/// `self` is an absolute https URL, or an http URL whose host is loopback.
pub const SECURE_URL: &str = "isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))";
/// Message for [`SECURE_URL`].
pub const SECURE_URL_MESSAGE: &str =
    "must be an absolute https:// URL (http:// is accepted only for localhost, 127.0.0.1 and ::1)";

/// Every entry of a domain list is a bare DNS name, optionally with a leading
/// dot meaning "any subdomain of".
pub const DOMAINS: &str =
    "self.all(d, d.matches('^\\\\.?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\\\.)+[A-Za-z]{2,63}$'))";
/// Message for [`DOMAINS`].
pub const DOMAINS_MESSAGE: &str = "allowedDomains entries must be bare hostnames such as example.com (or .example.com for any subdomain): no scheme, port, path, '@' or '*'";

/// Every entry of a team list is `org/team-slug`.
pub const TEAMS: &str = "self.all(t, t.matches('^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9][A-Za-z0-9_.-]*$'))";
/// Message for [`TEAMS`].
pub const TEAMS_MESSAGE: &str = "allowedTeams entries must be shaped org/team-slug, for example acme/platform";

/// Every entry of an email list has exactly one `@` and no whitespace.
pub const EMAILS: &str = "self.all(e, e.matches('^[^@\\\\s]+@[^@\\\\s]+$'))";
/// Message for [`EMAILS`].
pub const EMAILS_MESSAGE: &str = "allowedEmails entries must be email addresses with exactly one '@'";
