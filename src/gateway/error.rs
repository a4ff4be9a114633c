//! The gateway's errors: at startup (config, keys, providers) and while
//! signing a user in. Display texts are safe to log and, for sign-in
//! errors, to show: they never carry tokens, codes, secrets or cookies.

use std::path::PathBuf;

use http::StatusCode;

use super::providers::ProviderError;
use super::session::cookies::TooLarge;
use super::session::crypto::KeyError;
use crate::access::Denial;

/// Everything that can go wrong in the gateway layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadConfig {
        /// The config file's path.
        path: PathBuf,
        /// The I/O error that prevented reading it.
        source: std::io::Error,
    },
    /// The config is invalid or incomplete.
    #[error("invalid gateway configuration: {0}")]
    Config(String),
    /// The cookie keys are unusable.
    #[error("invalid cookie encryption keys: {0}")]
    Keys(#[from] KeyError),
    /// A provider could not be set up.
    #[error("provider {name}: {source}")]
    ProviderSetup {
        /// Provider name.
        name: String,
        /// Why the provider could not be set up.
        source: ProviderError,
    },
    /// Binding the listener or building the upstream client failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),

    /// `/oauth2/start?provider=` names no configured provider.
    #[error("there is no sign-in provider of that name")]
    UnknownProvider,
    /// No (usable) flow cookie for the returned `state`.
    #[error("this sign-in attempt is unknown to this browser; it may have expired or been started elsewhere")]
    FlowMissing,
    /// The flow is older than its time limit.
    #[error("this sign-in attempt took too long")]
    FlowExpired,
    /// `state` does not match the flow cookie.
    #[error("the sign-in response does not belong to this browser's sign-in attempt")]
    StateMismatch,
    /// The callback has neither `code` nor `error`.
    #[error("the sign-in response is incomplete")]
    MissingCode,
    /// The callback's `iss` names another issuer (mix-up attack).
    #[error("the sign-in response came from an unexpected issuer")]
    IssuerMismatch,
    /// The provider redirected back with an OAuth2 `error`.
    #[error("the identity provider reported: {0}")]
    ProviderReturned(String),
    /// Code exchange, ID token or API failure.
    #[error("the sign-in could not be completed with the identity provider")]
    SignIn(#[from] ProviderError),
    /// The user may not enter.
    #[error("{0}")]
    Denied(#[from] Denial),
    /// The user signed in but may not enter; who they are is known.
    #[error("{}", .0.denial)]
    DeniedAs(Box<DeniedAs>),
    /// The session does not fit in cookies.
    #[error("the session is too large to store")]
    SessionTooLarge(#[from] TooLarge),
    /// The session store (Redis) could not be reached.
    #[error("sessions cannot be checked right now; try again in a moment")]
    StoreUnavailable,
}

/// A refusal after sign-in, with who was refused.
#[derive(Debug)]
pub struct DeniedAs {
    /// Why.
    pub denial: Denial,
    /// The user name the provider gave.
    pub user: String,
    /// The provider's name.
    pub provider: String,
}

impl Error {
    /// HTTP status for request-time errors.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Denied(_) | Self::DeniedAs(_) => StatusCode::FORBIDDEN,
            Self::ProviderReturned(code) if code == "access_denied" => StatusCode::FORBIDDEN,
            Self::SignIn(_) => StatusCode::BAD_GATEWAY,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UnknownProvider
            | Self::FlowMissing
            | Self::FlowExpired
            | Self::StateMismatch
            | Self::MissingCode
            | Self::IssuerMismatch
            | Self::ProviderReturned(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Low-cardinality label for the login metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownProvider => "unknown_provider",
            Self::FlowMissing => "flow_missing",
            Self::FlowExpired => "flow_expired",
            Self::StateMismatch => "state_mismatch",
            Self::MissingCode => "missing_code",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::ProviderReturned(_) => "provider_error",
            Self::SignIn(e) => e.reason(),
            Self::Denied(d) => d.reason(),
            Self::DeniedAs(d) => d.denial.reason(),
            Self::SessionTooLarge(_) => "session_too_large",
            Self::StoreUnavailable => "store_unavailable",
            _ => "internal",
        }
    }

    /// The sentence shown to the user.
    pub fn user_message(&self) -> String {
        self.to_string()
    }
}
