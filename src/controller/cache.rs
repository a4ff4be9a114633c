//! What the AuthPolicy reconciler reads from watch caches instead of the
//! apiserver.
//!
//! A no-op reconcile (the steady state, and every resync) makes no API call
//! at all: the policy's children come from label-selected reflector stores,
//! and the values of referenced Secret and ConfigMap keys (provider client
//! secrets and CA bundles, route headers, token credentials, upstream TLS)
//! come from a small value cache validated against metadata-only stores of
//! every Secret and ConfigMap. The stores are fed by the
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
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use super::children::httproute::HttpRoute;
use super::error::Result;
use super::refs::{Object, RefError, Reference, Source, Unresolved, Values};
use crate::api::SecretKeyRef;

/// A Secret's metadata, as a metadata-only watch sees it.
pub type SecretMeta = PartialObjectMeta<Secret>;

/// A ConfigMap's metadata, as a metadata-only watch sees it.
pub type ConfigMapMeta = PartialObjectMeta<ConfigMap>;

/// (kind, namespace, name, key).
type ValueKey = (Source, String, String, String);

/// Referenced values: the resourceVersion read at, and the value.
type CachedValues = HashMap<ValueKey, (String, String)>;

/// Label selector of every object the controller creates.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=authgate";

/// Reflector stores of the AuthPolicy children and of Secret metadata.
pub struct Caches {
    /// Gateway Deployments (label-selected by [`MANAGED_BY`]).
    pub deployments: Store<Deployment>,
    /// Gateway Services (label-selected by [`MANAGED_BY`]).
    pub services: Store<Service>,
    /// Gateway PodDisruptionBudgets (label-selected by [`MANAGED_BY`]).
    pub budgets: Store<PodDisruptionBudget>,
    /// `auth-credentials` Secrets (label-selected by [`MANAGED_BY`]).
    pub secrets: Store<Secret>,
    /// Generated Ingresses (label-selected by [`MANAGED_BY`]).
    pub ingresses: Store<Ingress>,
    /// Generated HTTPRoutes (label-selected by [`MANAGED_BY`]); empty while
    /// the Gateway API is not installed.
    pub http_routes: Store<HttpRoute>,
    /// Metadata of every Secret in scope: the resourceVersions that
    /// validate [`Caches::resolve`].
    pub secret_versions: Store<SecretMeta>,
    /// Metadata of every ConfigMap in scope, likewise.
    pub config_map_versions: Store<ConfigMapMeta>,
    /// Referenced values by object and key, with the resourceVersion they were read at.
    values: Mutex<CachedValues>,
}

/// The metadata stores that validate the value cache, as [`Caches::new`] takes them.
pub struct Versions {
    /// See [`Caches::secret_versions`].
    pub secrets: Store<SecretMeta>,
    /// See [`Caches::config_map_versions`].
    pub config_maps: Store<ConfigMapMeta>,
}

/// The stores of the policies' children, as [`Caches::new`] takes them.
pub struct Children {
    /// See [`Caches::deployments`].
    pub deployments: Store<Deployment>,
    /// See [`Caches::services`].
    pub services: Store<Service>,
    /// See [`Caches::budgets`].
    pub budgets: Store<PodDisruptionBudget>,
    /// See [`Caches::secrets`].
    pub secrets: Store<Secret>,
    /// See [`Caches::ingresses`].
    pub ingresses: Store<Ingress>,
    /// See [`Caches::http_routes`].
    pub http_routes: Store<HttpRoute>,
}

impl Caches {
    /// Wraps the stores the controller's watch streams fill.
    pub fn new(children: Children, versions: Versions) -> Self {
        let Children { deployments, services, budgets, secrets, ingresses, http_routes } = children;
        Self {
            deployments,
            services,
            budgets,
            secrets,
            ingresses,
            http_routes,
            secret_versions: versions.secrets,
            config_map_versions: versions.config_maps,
            values: Mutex::default(),
        }
    }

    /// A cached child by namespace and name.
    pub fn get<K>(store: &Store<K>, ns: &str, name: &str) -> Option<Arc<K>>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        store.get(&ObjectRef::new(name).within(ns))
    }

    /// The resourceVersion of a Secret or ConfigMap in the metadata stores.
    fn version(&self, source: Source, ns: &str, name: &str) -> Option<String> {
        match source {
            Source::Secret => {
                self.secret_versions.get(&ObjectRef::new(name).within(ns))?.metadata.resource_version.clone()
            }
            Source::ConfigMap => {
                self.config_map_versions.get(&ObjectRef::new(name).within(ns))?.metadata.resource_version.clone()
            }
        }
    }

    /// The values of `refs`, in namespace `ns`. Each is served from memory
    /// while its object's resourceVersion in the metadata store matches the
    /// one the value was read at; otherwise the object is read from the
    /// apiserver, once however many of its keys are wanted. The first
    /// reference that does not resolve is returned with why.
    pub async fn resolve(&self, client: &Client, ns: &str, refs: &[Reference]) -> Result<Result<Values, Unresolved>> {
        let mut values = Values::default();
        let mut read: HashMap<(Source, String), Result<Object, RefError>> = HashMap::new();
        for r in refs {
            let key: ValueKey = (r.source, ns.to_owned(), r.name.clone(), r.key.clone());
            if let Some(rv) = self.version(r.source, ns, &r.name)
                && let Some((at, value)) = self.lock().get(&key)
                && *at == rv
            {
                values.insert(r, value.clone());
                continue;
            }
            let object = match read.entry((r.source, r.name.clone())) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(super::refs::fetch(client, ns, r).await?),
            };
            let object = match object {
                Ok(o) => o,
                Err(e) => {
                    // Gone: forget what was read of it.
                    self.lock().retain(|(s, n, name, _), _| (*s, n.as_str(), name.as_str()) != (r.source, ns, &r.name));
                    return Ok(Err(e.of(r)));
                }
            };
            match object.value(r) {
                Ok(value) => {
                    if let Some(rv) = &object.resource_version {
                        self.lock().insert(key, (rv.clone(), value.clone()));
                    }
                    values.insert(r, value);
                }
                Err(e) => return Ok(Err(e.of(r))),
            }
        }
        Ok(Ok(values))
    }

    /// The value of a provider's client-secret reference (see [`Caches::resolve`]).
    pub async fn client_secret(
        &self,
        client: &Client,
        ns: &str,
        r: &SecretKeyRef,
    ) -> Result<Result<String, Unresolved>> {
        let r = Reference::client_secret(r);
        Ok(match self.resolve(client, ns, std::slice::from_ref(&r)).await? {
            Ok(values) => values.get(r.source, &r.name, &r.key).map(str::to_owned).ok_or_else(|| r.missing().of(&r)),
            Err(e) => Err(e),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CachedValues> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
