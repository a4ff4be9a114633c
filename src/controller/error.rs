//! Errors of the controller layer.

use thiserror::Error;

/// Anything that can go wrong while reconciling. Problems with the user's
/// resources are not errors: they become status conditions. These are the
/// failures worth a retry with backoff.
#[derive(Debug, Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// A resource lacked a field the apiserver always sets.
    #[error("resource is missing {0}")]
    MissingField(&'static str),
    /// Serializing a child object failed.
    #[error("could not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// A watch cache a reconcile depends on has not listed its objects yet.
    #[error("the {0} cache has not synced yet")]
    NotSynced(&'static str),
    /// Rendering gateway.yaml failed.
    #[error("could not render gateway.yaml: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

impl Error {
    /// Low-cardinality label for the errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(kube::Error::Api(_)) => "api",
            Self::Kube(_) => "transport",
            Self::MissingField(_) => "missing_field",
            Self::NotSynced(_) => "not_synced",
            Self::Serialize(_) | Self::Yaml(_) => "serialize",
        }
    }
}

/// Result of the controller layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
