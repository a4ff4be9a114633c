//! State shared by every reconcile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;

use super::cache::Caches;
use super::metrics::Metrics;
use crate::api::{ApiToken, AuthPolicy, IdentityProvider, SessionRevocation};

/// Settings of the controller, from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Image of gateway pods unless a policy sets its own.
    pub gateway_image: String,
    /// Pull policy of the gateway image.
    pub gateway_image_pull_policy: Option<String>,
    /// Other images a policy may choose (exact references); empty: none.
    pub gateway_allowed_images: Vec<String>,
    /// Replicas of a gateway Deployment unless a policy sets them.
    pub gateway_replicas: i32,
    /// What the platform decides about every gateway pod.
    pub gateway_pod: super::children::pod_defaults::PodDefaults,
    /// How often an unchanged resource is looked at again.
    pub resync: Duration,
    /// Timeout of OIDC discovery requests.
    pub discovery_timeout: Duration,
    /// Watch only this namespace (a namespace-scoped install); all when `None`.
    pub watch_namespace: Option<String>,
}

/// Everything a reconcile needs.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Client for OIDC discovery: no redirects, short timeout.
    pub http: reqwest::Client,
    /// Cache of every IdentityProvider.
    pub providers: Store<IdentityProvider>,
    /// Cache of every AuthPolicy.
    pub policies: Store<AuthPolicy>,
    /// Caches of the policies' children and of Secrets.
    pub caches: Caches,
    /// Cache of every SessionRevocation, fed by the AuthPolicy controller's
    /// watch of them (see [`Context::with_revocations`]); empty and ready
    /// until then.
    pub revocations: Store<SessionRevocation>,
    /// Cache of every ApiToken, fed by the AuthPolicy controller's watch of
    /// them (see [`Context::with_api_tokens`]); empty and ready until then.
    pub api_tokens: Store<ApiToken>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Controller settings.
    pub settings: Settings,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Per-object retry delays after failed reconciles.
    pub backoff: super::backoff::ErrorBackoff,
    /// Discovery clients that trust a provider's `caBundle`, by its PEM.
    with_ca: Mutex<HashMap<String, reqwest::Client>>,
}

/// At most this many CA-specific discovery clients are kept; more distinct
/// bundles than that start the cache over.
const MAX_CA_CLIENTS: usize = 64;

impl Context {
    /// Builds the context; `providers` and `policies` come from the controllers' reflectors.
    pub fn new(
        client: Client,
        providers: Store<IdentityProvider>,
        policies: Store<AuthPolicy>,
        caches: Caches,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let http = crate::idp::client(settings.discovery_timeout).expect("the HTTP client configuration is static");
        let reporter = Reporter { controller: "authgate".into(), instance: std::env::var("POD_NAME").ok() };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            http,
            providers,
            policies,
            caches,
            revocations: ready_empty_store(),
            api_tokens: ready_empty_store(),
            recorder,
            settings,
            metrics,
            backoff: Default::default(),
            with_ca: Mutex::default(),
        }
    }

    /// Uses `store` as the SessionRevocation cache.
    pub fn with_revocations(mut self, store: Store<SessionRevocation>) -> Self {
        self.revocations = store;
        self
    }

    /// Uses `store` as the ApiToken cache.
    pub fn with_api_tokens(mut self, store: Store<ApiToken>) -> Self {
        self.api_tokens = store;
        self
    }

    /// The discovery client for a provider: [`Context::http`], or with
    /// `ca_pem` one that trusts only those certificates
    /// ([`crate::idp::client_with_ca`]). Built once per bundle.
    pub fn discovery_client(&self, ca_pem: Option<&str>) -> reqwest::Result<reqwest::Client> {
        let Some(pem) = ca_pem else { return Ok(self.http.clone()) };
        let mut clients = self.with_ca.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(pem) {
            return Ok(c.clone());
        }
        let client = crate::idp::client_with_ca(self.settings.discovery_timeout, Some(pem))?;
        if clients.len() >= MAX_CA_CLIENTS {
            clients.clear();
        }
        clients.insert(pem.to_owned(), client.clone());
        Ok(client)
    }
}

/// A store that holds nothing and says it is synced.
fn ready_empty_store<K>() -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    store
}
