//! The operator: reconcilers for IdentityProvider and AuthPolicy, their
//! shared context, metrics and the health/metrics server.

pub mod api_token;
pub mod auth_policy;
pub mod backoff;
pub mod cache;
pub mod children;
pub mod context;
pub mod counts;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod health;
pub mod identity_provider;
pub mod index;
pub mod leader;
pub mod mappers;
pub mod metrics;
pub mod refs;
pub mod session_revocation;
pub mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector;
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::{info, warn};

pub use context::{Context, Settings};
pub use error::{Error, Result};

use crate::api::{ApiToken, AuthPolicy, IdentityProvider, SessionRevocation};
use children::httproute::HttpRoute;
use index::RefIndex;

/// Backoff of the controllers' watch triggers. kube-runtime backs off the
/// whole trigger stream on any watcher error; after an apiserver restart
/// every watcher reports one `410 Gone` before relisting, and the default
/// (800 ms doubling to 30 s) would stall reconciles for minutes. This one
/// stays short and resets after 30 quiet seconds.
fn trigger_backoff() -> ResetTimerBackoff<ShortBackoff> {
    ResetTimerBackoff::new(ShortBackoff::default(), Duration::from_secs(30))
}

/// Doubling from 100 ms, capped at 3 s.
#[derive(Default)]
struct ShortBackoff {
    next: Option<Duration>,
}

impl Iterator for ShortBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let current = self.next.unwrap_or(Duration::from_millis(100));
        self.next = Some((current * 2).min(Duration::from_secs(3)));
        Some(current)
    }
}

impl Backoff for ShortBackoff {
    fn reset(&mut self) {
        self.next = None;
    }
}

/// At most this many reconciles run at once per kind. Unbounded, 1000
/// policies created together opened over 1000 apiserver connections and
/// pushed memory past 100 MiB (docs/benchmarks.md).
fn limits() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(32)
}

/// `resync`, give or take 10%, so objects created together do not come back
/// together on every period.
pub fn jittered(resync: Duration) -> Duration {
    resync.mul_f64(rand::random_range(0.9..1.1))
}

/// Cached objects need no field-manager bookkeeping.
fn drop_managed_fields<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
}

fn error_policy<K>(kind: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action
where
    K: ResourceExt,
{
    move |obj, err, ctx| {
        let key = backoff::ErrorBackoff::key(kind, obj.namespace().as_deref(), &obj.name_any());
        let delay = ctx.backoff.failed(&key);
        warn!(kind, name = %obj.name_any(), namespace = ?obj.namespace(), error = %err, retry_in = ?delay, "reconcile failed; retrying");
        Action::requeue(delay)
    }
}

/// Wraps a reconcile with a tracing span (kind, namespace, name), timing
/// and metrics, and clears the object's error backoff when it succeeds.
async fn timed<K, F, Fut>(kind: &'static str, obj: Arc<K>, ctx: Arc<Context>, f: F) -> Result<Action>
where
    K: ResourceExt,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action>>,
{
    use tracing::Instrument;
    let start = Instant::now();
    let (name, namespace) = (obj.name_any(), obj.namespace());
    let span =
        tracing::info_span!("reconcile", kind, namespace = namespace.as_deref().unwrap_or_default(), name = %name);
    let ctx2 = ctx.clone();
    let result = f(obj, ctx).instrument(span).await;
    ctx2.metrics.observe(kind, start.elapsed(), result.as_ref().err().map(Error::metric_label));
    if result.is_ok() {
        ctx2.backoff.succeeded(&backoff::ErrorBackoff::key(kind, namespace.as_deref(), &name));
    }
    result
}

/// A controller of `api`'s objects whose watch events also go to `record`
/// (the reference index) before they reach the store.
fn indexed_controller<K>(
    api: Api<K>,
    wc: watcher::Config,
    record: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> Controller<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let events = watcher(api, wc)
        .map_ok(move |event| {
            record(&event);
            event
        })
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(events, store).with_config(limits()).trigger_backoff(trigger_backoff())
}

/// Runs the controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<metrics::Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let wc = watcher::Config::default().any_semantic();
    let scope = settings.watch_namespace.clone();
    let idps: Api<IdentityProvider> = scoped(&client, scope.as_deref());
    let policies: Api<AuthPolicy> = scoped(&client, scope.as_deref());
    let secrets: Api<Secret> = scoped(&client, scope.as_deref());

    // The two main watches feed the reference index as well as the stores,
    // so a changed Secret or provider maps to its users by lookup.
    let ref_index = Arc::new(RefIndex::default());
    let indexed = ref_index.clone();
    let idp_controller = indexed_controller(idps.clone(), wc.clone(), move |e| indexed.provider_event(e));
    let idp_store = idp_controller.store();
    let indexed = ref_index.clone();
    let ap_controller = indexed_controller(policies, wc.clone(), move |e| indexed.policy_event(e));
    let ap_store = ap_controller.store();

    // The AuthPolicy controller's watches feed reflector stores that its
    // reconciles read (`cache`), so a no-op reconcile makes no API call.
    let children = wc.clone().labels(cache::MANAGED_BY);
    let (dep_store, dep_writer) = reflector::store();
    let deployments = watcher(scoped::<Deployment>(&client, scope.as_deref()), children.clone())
        .modify(drop_managed_fields)
        .reflect(dep_writer)
        .touched_objects();
    let (svc_store, svc_writer) = reflector::store();
    let services = watcher(scoped::<Service>(&client, scope.as_deref()), children.clone())
        .modify(drop_managed_fields)
        .reflect(svc_writer)
        .touched_objects();
    let (pdb_store, pdb_writer) = reflector::store();
    let budgets = watcher(scoped::<PodDisruptionBudget>(&client, scope.as_deref()), children.clone())
        .modify(drop_managed_fields)
        .reflect(pdb_writer)
        .touched_objects();
    let (ing_store, ing_writer) = reflector::store();
    let ingresses = watcher(scoped::<Ingress>(&client, scope.as_deref()), children.clone())
        .modify(drop_managed_fields)
        .reflect(ing_writer)
        .touched_objects();
    let (route_store, route_writer) = reflector::store();
    let http_routes = optional_watch(scoped::<HttpRoute>(&client, scope.as_deref()), children.clone(), route_writer);
    let (own_secret_store, own_secret_writer) = reflector::store();
    let own_secrets =
        watcher(secrets.clone(), children).modify(drop_managed_fields).reflect(own_secret_writer).touched_objects();
    let (version_store, version_writer) = reflector::store();
    let secret_versions = watcher(scoped::<cache::SecretMeta>(&client, scope.as_deref()), wc.clone())
        .modify(drop_managed_fields)
        .reflect(version_writer)
        .touched_objects();
    let (cm_version_store, cm_version_writer) = reflector::store();
    let config_map_versions = watcher(scoped::<cache::ConfigMapMeta>(&client, scope.as_deref()), wc.clone())
        .modify(drop_managed_fields)
        .reflect(cm_version_writer)
        .touched_objects();
    let stores = cache::Children {
        deployments: dep_store,
        services: svc_store,
        budgets: pdb_store,
        secrets: own_secret_store,
        ingresses: ing_store,
        http_routes: route_store,
    };
    let versions = cache::Versions { secrets: version_store, config_maps: cm_version_store };
    let caches = cache::Caches::new(stores, versions);
    // SessionRevocations: the AuthPolicy controller's watch of them fills
    // the cache its reconciles read them from. Its errors (a cluster whose
    // CRDs were not upgraded) stay out of the triggers, as
    // [`optional_watch`]'s do; policies then fail to reconcile (never render
    // without the revocations) until the CRD is installed.
    let (revocation_store, revocation_writer) = reflector::store();
    let revocation_events = watcher(scoped::<SessionRevocation>(&client, scope.as_deref()), wc.clone())
        .default_backoff()
        .modify(drop_managed_fields)
        .reflect(revocation_writer)
        .map_ok(session_revocation::mark_deleted)
        .touched_objects()
        .filter(|event| futures::future::ready(event.is_ok()));
    // ApiTokens: likewise; a change wakes the policy it names and the one
    // it named before.
    let (api_token_store, api_token_writer) = reflector::store();
    let api_token_events = watcher(scoped::<ApiToken>(&client, scope.as_deref()), wc.clone())
        .default_backoff()
        .modify(drop_managed_fields)
        .reflect(api_token_writer)
        .map_ok(session_revocation::mark_deleted)
        .touched_objects()
        .filter(|event| futures::future::ready(event.is_ok()));
    let ctx = Arc::new(
        Context::new(client.clone(), idp_store.clone(), ap_store.clone(), caches, settings, metrics)
            .with_revocations(revocation_store)
            .with_api_tokens(api_token_store.clone()),
    );

    // IdentityProvider: react to its Secrets, its CA bundle's ConfigMap and
    // to same-type siblings.
    let by_secret = ref_index.clone();
    let by_config_map = ref_index.clone();
    let by_sibling = idp_store.clone();
    let (shutdown_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut idp_stop = shutdown_tx.subscribe();
    let mut ap_stop = shutdown_tx.subscribe();
    let idp_run = idp_controller
        .watches_stream(
            watcher(scoped::<cache::SecretMeta>(&client, scope.as_deref()), wc.clone()).touched_objects(),
            move |secret: cache::SecretMeta| {
                by_secret.providers_using_secret(&secret.namespace().unwrap_or_default(), &secret.name_any())
            },
        )
        .watches_stream(
            watcher(scoped::<cache::ConfigMapMeta>(&client, scope.as_deref()), wc.clone()).touched_objects(),
            move |cm: cache::ConfigMapMeta| {
                by_config_map.providers_using(
                    refs::Source::ConfigMap,
                    &cm.namespace().unwrap_or_default(),
                    &cm.name_any(),
                )
            },
        )
        .watches(idps, wc.clone(), move |changed: IdentityProvider| mappers::siblings_of(&by_sibling.state(), &changed))
        .graceful_shutdown_on(async move {
            let _ = idp_stop.recv().await;
        })
        .run(
            |o, c| timed("IdentityProvider", o, c, identity_provider::reconcile),
            error_policy::<IdentityProvider>("IdentityProvider"),
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    // AuthPolicy: react to children, to providers it names, and to the
    // Secrets and ConfigMaps it or its providers refer to.
    let for_idp = ref_index.clone();
    let for_secret = ref_index.clone();
    let for_config_map = ref_index;
    let for_revocation = (ap_store.clone(), session_revocation::Targets::default());
    let for_api_token = api_token::targets::Targets::default();
    let ap_run = ap_controller
        .owns_stream(deployments)
        .owns_stream(services)
        .owns_stream(budgets)
        .owns_stream(own_secrets)
        .owns_stream(ingresses)
        .owns_stream(http_routes)
        .watches(scoped::<IdentityProvider>(&client, scope.as_deref()), wc.clone(), move |idp: IdentityProvider| {
            for_idp.policies_naming(&idp.namespace().unwrap_or_default(), [idp.name_any().as_str()])
        })
        .watches_stream(secret_versions, move |secret: cache::SecretMeta| {
            for_secret.policies_using_secret(&secret.namespace().unwrap_or_default(), &secret.name_any())
        })
        .watches_stream(config_map_versions, move |cm: cache::ConfigMapMeta| {
            for_config_map.policies_using(refs::Source::ConfigMap, &cm.namespace().unwrap_or_default(), &cm.name_any())
        })
        .watches_stream(revocation_events, move |r: SessionRevocation| {
            for_revocation.1.policies_for(&for_revocation.0.state(), &r)
        })
        .watches_stream(api_token_events, move |t: ApiToken| for_api_token.policies_for(&t))
        .graceful_shutdown_on(async move {
            let _ = ap_stop.recv().await;
        })
        .run(
            |o, c| timed("AuthPolicy", o, c, auth_policy::reconcile),
            error_policy::<AuthPolicy>("AuthPolicy"),
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    // SessionRevocation: status and pruning; woken by the policies it
    // applies to, through a policy cache of its own (see its reconcile).
    let mut srev_stop = shutdown_tx.subscribe();
    let srev_controller = Controller::new(scoped::<SessionRevocation>(&client, scope.as_deref()), wc.clone())
        .with_config(limits())
        .trigger_backoff(trigger_backoff());
    let srev_store = srev_controller.store();
    let (policy_store, policy_writer) = reflector::store();
    let policy_events = watcher(scoped::<AuthPolicy>(&client, scope.as_deref()), wc.clone())
        .modify(drop_managed_fields)
        .reflect(policy_writer)
        .touched_objects();
    let srev_run = srev_controller
        .watches_stream(policy_events, move |p: AuthPolicy| {
            session_revocation::revocations_naming(&srev_store.state(), &p)
        })
        .graceful_shutdown_on(async move {
            let _ = srev_stop.recv().await;
        })
        .run(
            move |o, c| {
                let policies = policy_store.clone();
                timed("SessionRevocation", o, c, move |o, c| session_revocation::reconcile(o, c, policies))
            },
            error_policy::<SessionRevocation>("SessionRevocation"),
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    // ApiToken: its Secret and status; woken by the Secret it owns and by
    // the policy it names.
    let mut at_stop = shutdown_tx.subscribe();
    let at_run = Controller::new(scoped::<ApiToken>(&client, scope.as_deref()), wc.clone())
        .with_config(limits())
        .trigger_backoff(trigger_backoff())
        .owns(scoped::<Secret>(&client, scope.as_deref()), wc.clone().labels(cache::MANAGED_BY))
        // Its status says whether its policy exists and defines its scopes.
        .watches(scoped::<AuthPolicy>(&client, scope.as_deref()), wc.clone(), move |p: AuthPolicy| {
            api_token::targets::tokens_naming(&api_token_store.state(), &p)
        })
        .graceful_shutdown_on(async move {
            let _ = at_stop.recv().await;
        })
        .run(|o, c| timed("ApiToken", o, c, api_token::reconcile), error_policy::<ApiToken>("ApiToken"), ctx.clone())
        .for_each(|_| futures::future::ready(()));

    tokio::spawn(counts::run(ctx.clone()));
    info!("controllers started");
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(());
    });
    futures::join!(idp_run, ap_run, srev_run, at_run);
    info!("controllers stopped");
}

/// A label-selected reflector watch of a kind whose API may not be served
/// (the Gateway API's HTTPRoute: its CRDs are optional).
///
/// Its errors never reach the controller: kube-runtime backs off every
/// trigger on any watch error ([`trigger_backoff`]), and a missing CRD
/// fails every list. Instead this watch retries on its own backoff (up to
/// 30 s apart) and stays empty until the API appears, then fills like any
/// other; reconciles that want an HTTPRoute meanwhile report
/// `GatewayAPIMissing` (see `auth_policy::expose`).
fn optional_watch<K>(
    api: Api<K>,
    wc: watcher::Config,
    writer: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watcher(api, wc)
        .default_backoff()
        .modify(drop_managed_fields)
        .reflect(writer)
        .touched_objects()
        .filter(|event| futures::future::ready(event.is_ok()))
}

/// An Api over every namespace, or over one when the controller is scoped.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
