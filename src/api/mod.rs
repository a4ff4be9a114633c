//! Custom resource types of the `authgate.dev/v1alpha1` API, their status
//! condition helpers and defaults. Nothing in here performs I/O.

pub mod allow_list;
pub mod api_token;
pub mod auth_policy;
pub mod branding;
pub mod conditions;
pub mod identity_provider;
pub mod machine;
pub mod routes;
mod rules;
pub mod session;
pub mod session_revocation;
pub mod sign_out;
pub mod upstream;

pub use allow_list::AllowList;
pub use api_token::{ApiToken, ApiTokenSpec, ApiTokenStatus};
pub use auth_policy::{
    AccessRules, AuthPolicy, AuthPolicySpec, AuthPolicyStatus, Authentication, Expose, ForwardAuth, ForwardSettings,
    GatewaySettings, HttpRouteExpose, IdentityHeaderNames, IngressExpose, ParentRef, SessionSettings,
};
pub use branding::Branding;
pub use identity_provider::{
    ClaimMapping, EmailVerification, EndpointOverrides, IdentityProvider, IdentityProviderSpec, IdentityProviderStatus,
    ProviderType, ResolvedEndpoints, SecretKeyRef,
};
pub use machine::{BearerAlgorithm, BearerClaims, BearerIssuer, BearerSettings, DeviceFlow, KubernetesIssuer, Scope};
pub use routes::{Cors, InjectedHeader, Route, TokenAuth, ValueFrom};
pub use session::{RedisSentinel, RedisSettings, RedisTls, SessionStoreKind};
pub use session_revocation::{SessionRevocation, SessionRevocationSpec, SessionRevocationStatus};
pub use upstream::{CaBundle, KeyRef, ServiceUpstream, Upstream, UpstreamTls};

/// API group of every authgate resource.
pub const GROUP: &str = "authgate.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// Field manager used for every server-side apply and status patch.
pub const FIELD_MANAGER: &str = "authgate";
