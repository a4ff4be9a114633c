//! What the AuthPolicy reconciler reads from watch caches instead of the
//! apiserver.
//!
//! A no-op reconcile (the steady state, and every resync) makes no API call
//! at all: the policy's children come from label-selected reflector stores,
//! and provider client secrets come from a small value cache validated
//! against a metadata-only store of every Secret. The stores are fed by the
//! same watch streams that trigger reconciles, and a reflector updates its
//! store before it passes an event on, so a reconcile always sees at least
//! the change that woke it.
//!
//! The caches can lag behind this controller's own writes. Anything that is
//! about to be written is therefore checked against the live object first
//! (see [`super::children::apply::ensure`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::children::httproute::HttpRoute;
use super::error::Result;
use super::secrets::{SecretRefError, fetch_secret, secret_value};
use crate::api::SecretKeyRef;

/// A Secret's metadata, as a metadata-only watch sees it.
pub type SecretMeta = PartialObjectMeta<Secret>;

/// Client-secret values by (Secret, key): the resourceVersion read at, and the value.
type ClientSecrets = HashMap<(ObjectRef<SecretMeta>, String), (String, String)>;

/// Label selector of every object the controller creates.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=authgate";

/// Reflector stores of the AuthPolicy children and of Secret metadata.
pub struct Caches {
    /// Gateway Deployments (label-selected by [`MANAGED_BY`]).
    pub deployments: Store<Deployment>,
    /// Gateway Services (label-selected by [`MANAGED_BY`]).
    pub services: Store<Service>,
    /// `auth-credentials` Secrets (label-selected by [`MANAGED_BY`]).
    pub secrets: Store<Secret>,
    /// Generated Ingresses (label-selected by [`MANAGED_BY`]).
    pub ingresses: Store<Ingress>,
    /// Generated HTTPRoutes (label-selected by [`MANAGED_BY`]); empty while
    /// the Gateway API is not installed.
    pub http_routes: Store<HttpRoute>,
    /// Metadata of every Secret in scope: the resourceVersions that
    /// validate [`Caches::client_secret`].
    pub secret_versions: Store<SecretMeta>,
    /// Client-secret values by Secret and key, with the resourceVersion they were read at.
    client_secrets: Mutex<ClientSecrets>,
}

/// The stores of the policies' children, as [`Caches::new`] takes them.
pub struct Children {
    /// See [`Caches::deployments`].
    pub deployments: Store<Deployment>,
    /// See [`Caches::services`].
    pub services: Store<Service>,
    /// See [`Caches::secrets`].
    pub secrets: Store<Secret>,
    /// See [`Caches::ingresses`].
    pub ingresses: Store<Ingress>,
    /// See [`Caches::http_routes`].
    pub http_routes: Store<HttpRoute>,
}

impl Caches {
    /// Wraps the stores the controller's watch streams fill.
    pub fn new(children: Children, secret_versions: Store<SecretMeta>) -> Self {
        let Children { deployments, services, secrets, ingresses, http_routes } = children;
        Self {
            deployments,
            services,
            secrets,
            ingresses,
            http_routes,
            secret_versions,
            client_secrets: Mutex::default(),
        }
    }

    /// A cached child by namespace and name.
    pub fn get<K>(store: &Store<K>, ns: &str, name: &str) -> Option<Arc<K>>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        store.get(&ObjectRef::new(name).within(ns))
    }

    /// The value of a provider's client-secret reference. Served from memory
    /// while the Secret's resourceVersion in the metadata store matches the
    /// one the value was read at; otherwise read from the apiserver.
    pub async fn client_secret(
        &self,
        client: &Client,
        ns: &str,
        r: &SecretKeyRef,
    ) -> Result<Result<String, SecretRefError>> {
        let key = (ObjectRef::<SecretMeta>::new(&r.name).within(ns), r.key.clone());
        let current = self.secret_versions.get(&key.0).and_then(|m| m.resource_version());
        if let Some(rv) = &current
            && let Some((at, value)) = self.lock().get(&key)
            && at == rv
        {
            return Ok(Ok(value.clone()));
        }
        let secret = match fetch_secret(client, ns, r).await? {
            Ok(secret) => secret,
            Err(e) => return Ok(Err(e)),
        };
        let value = secret_value(&secret, r);
        if let (Ok(v), Some(rv)) = (&value, secret.resource_version()) {
            self.lock().insert(key, (rv, v.clone()));
        }
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientSecrets> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.client_secrets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
