//! Rules the controller (at admission of a policy) and the gateway (at
//! start) must apply identically.

use crate::access::Filters;

/// Closed by default: whether a provider would let in anyone with an
/// account — it is open to the public (github, google, gitlab.com) and
/// neither its own filters nor the policy's restrict who may enter — without
/// the policy saying `allowAllUsers` deliberately. Such a policy is refused.
pub fn open_to_everyone(provider_is_public: bool, provider: &Filters, policy: &Filters, allow_all_users: bool) -> bool {
    provider_is_public && !allow_all_users && provider.is_empty() && policy.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_provider_needs_a_restriction_or_an_explicit_opt_out() {
        let none = Filters::default();
        let some = Filters { allowed_orgs: vec!["acme".into()], ..Filters::default() };
        assert!(open_to_everyone(true, &none, &none, false));
        assert!(!open_to_everyone(true, &some, &none, false), "the provider restricts");
        assert!(!open_to_everyone(true, &none, &some, false), "the policy restricts");
        assert!(!open_to_everyone(true, &none, &none, true), "allowAllUsers is deliberate");
        assert!(!open_to_everyone(false, &none, &none, false), "a private issuer");
    }
}
