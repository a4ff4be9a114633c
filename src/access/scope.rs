//! What a token may do: the policy's named scopes, and the grant a machine
//! caller holds. Pure; the path is the normalized one the gateway routes
//! on, matched on whole segments like routes and public paths.

use crate::api::Scope;

use super::path::prefix_serves;

/// The scopes a machine caller holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Everything a signed-in user may do: bearer JWTs without an API-key
    /// claim, device tokens, and ApiTokens of a policy without scopes.
    Full,
    /// Only requests inside at least one of these scopes (names of the
    /// policy's `scopes`). A name the policy no longer defines allows
    /// nothing.
    Scopes(Vec<String>),
}

/// Whether `grant` allows `method` on `path`, under the policy's `scopes`.
///
/// A policy with no scopes at all gives every grant full access, like a
/// user (the ApiToken design: scopes limit a token only once a policy
/// defines them).
pub fn permits(scopes: &[Scope], grant: &Grant, method: &str, path: &str) -> bool {
    let Grant::Scopes(names) = grant else { return true };
    if scopes.is_empty() {
        return true;
    }
    names.iter().filter_map(|name| scopes.iter().find(|s| &s.name == name)).any(|s| scope_allows(s, method, path))
}

/// Whether one scope allows `method` on `path`: the method is listed (or
/// none are), and a prefix serves the path on whole segments (or none are
/// listed).
pub fn scope_allows(scope: &Scope, method: &str, path: &str) -> bool {
    (scope.methods.is_empty() || scope.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
        && (scope.path_prefixes.is_empty() || scope.path_prefixes.iter().any(|p| prefix_serves(p, path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(name: &str, methods: &[&str], prefixes: &[&str]) -> Scope {
        Scope {
            name: name.into(),
            methods: methods.iter().map(|m| (*m).into()).collect(),
            path_prefixes: prefixes.iter().map(|p| (*p).into()).collect(),
        }
    }

    fn scopes() -> Vec<Scope> {
        vec![scope("read", &["GET", "HEAD"], &["/api/"]), scope("admin", &[], &["/admin"])]
    }

    fn grant(names: &[&str]) -> Grant {
        Grant::Scopes(names.iter().map(|n| (*n).into()).collect())
    }

    #[test]
    fn a_scope_allows_its_methods_under_its_prefixes_on_segment_boundaries() {
        let s = scopes();
        assert!(permits(&s, &grant(&["read"]), "GET", "/api/dashboards"));
        assert!(permits(&s, &grant(&["read"]), "GET", "/api"));
        assert!(!permits(&s, &grant(&["read"]), "GET", "/apix"));
        assert!(!permits(&s, &grant(&["read"]), "POST", "/api/dashboards"));
        assert!(!permits(&s, &grant(&["read"]), "GET", "/admin/users"));
        assert!(permits(&s, &grant(&["read", "admin"]), "DELETE", "/admin/users"));
        assert!(!permits(&s, &grant(&["admin"]), "GET", "/administrator"));
    }

    #[test]
    fn unknown_or_no_scope_names_allow_nothing_while_the_policy_defines_scopes() {
        let s = scopes();
        assert!(!permits(&s, &grant(&["write"]), "GET", "/api/x"));
        assert!(!permits(&s, &grant(&[]), "GET", "/api/x"));
    }

    #[test]
    fn a_policy_without_scopes_and_a_full_grant_allow_everything() {
        assert!(permits(&[], &grant(&["read"]), "POST", "/anything"));
        assert!(permits(&[], &grant(&[]), "POST", "/anything"));
        assert!(permits(&scopes(), &Grant::Full, "POST", "/anything"));
    }
}
