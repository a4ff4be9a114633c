//! Who may enter, and where they may be sent back to.
//!
//! Pure functions shared by the controller (to validate resources) and the
//! gateway (to enforce them). Every check here fails closed: missing or
//! unverifiable data denies whenever a filter would need it.

mod allow_list;
mod canonical;
mod domain;
mod email;
#[cfg(test)]
mod email_props;
mod identity;
mod path;
mod principal;
mod redirect;
#[cfg(test)]
mod redirect_props;
pub mod scope;

use crate::api::AllowList;
pub use canonical::is_canonical;
pub use domain::{domain_matches, is_valid_domain_pattern};
pub use email::{Email, EmailError};
pub use identity::{Denial, DomainProof, Identity, Membership};
pub use path::{has_dot_segment, merge_slashes, prefix_serves};
pub use principal::{Principal, Proof, authorize};
pub use redirect::safe_redirect;
pub use scope::{Grant, permits};

#[cfg(test)]
mod test_identity {
    use super::{DomainProof, Identity, Membership};

    /// A sound, verified identity for the unit tests.
    pub fn alice() -> Identity {
        Identity {
            subject: "1".into(),
            user: "alice".into(),
            email: Some("alice@Example.com".into()),
            email_verified: true,
            domain_proof: DomainProof::Email,
            groups: Membership::Known(vec!["sre".into()]),
            orgs: Membership::Known(vec!["Acme".into()]),
            teams: Membership::Known(vec!["acme/platform".into()]),
        }
    }
}
