//! Who may enter, and where they may be sent back to.
//!
//! Pure functions shared by the controller (to validate resources) and the
//! gateway (to enforce them). Every check here fails closed: missing or
//! unverifiable data denies whenever a filter would need it.

mod canonical;
mod domain;
mod email;
mod filters;
mod path;
mod redirect;

pub use canonical::is_canonical;
pub use domain::{domain_matches, is_valid_domain_pattern};
pub use email::{Email, EmailError};
pub use filters::{Denial, Filters, Identity, Membership, authorize};
pub use path::has_dot_segment;
pub use redirect::safe_redirect;
