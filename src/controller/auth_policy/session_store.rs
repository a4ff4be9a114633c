//! `spec.session.store`/`redis` into the gateway's `session.store`, the
//! password and CA bundle taken from the values the reconcile resolved
//! (see [`crate::controller::refs::of_policy`]).

use super::render_error::RenderError;
use crate::api::{SessionStoreKind, session::SessionSettings};
use crate::contract::config::Redacted;
use crate::contract::session::{RedisConfig, RedisTlsConfig, StoreConfig};
use crate::controller::refs::{Reference, Values};

/// The store a policy's session settings select.
pub(super) fn store(session: &SessionSettings, values: &Values) -> Result<StoreConfig, RenderError> {
    let (Some(SessionStoreKind::Redis), Some(redis)) = (session.store, &session.redis) else {
        return Ok(StoreConfig::Cookie);
    };
    let (addresses, sentinel_master) = match (&redis.address, &redis.sentinel) {
        (Some(address), _) => (vec![address.clone()], None),
        (None, Some(s)) => (s.addresses.clone(), Some(s.master_name.clone())),
        // The schema forbids it; the gateway's validation reports it too.
        (None, None) => (Vec::new(), None),
    };
    let password = redis
        .password_secret_ref
        .as_ref()
        .map(|r| {
            values
                .secret(r)
                .map(Redacted::new)
                .ok_or_else(|| RenderError::Unresolved("session.redis.passwordSecretRef".into()))
        })
        .transpose()?;
    let tls = redis
        .tls
        .as_ref()
        .map(|tls| {
            let ca_pem = tls
                .ca_bundle
                .as_ref()
                .and_then(|b| Reference::ca_bundle(b, "session.redis.tls.caBundle".into()))
                .map(|r| {
                    values
                        .get(r.source, &r.name, &r.key)
                        .map(str::to_owned)
                        .ok_or_else(|| RenderError::Unresolved(r.field.clone()))
                })
                .transpose()?;
            Ok::<_, RenderError>(RedisTlsConfig { ca_pem })
        })
        .transpose()?;
    Ok(StoreConfig::Redis(RedisConfig {
        addresses,
        sentinel_master,
        username: redis.username.clone(),
        password,
        database: redis.database.unwrap_or(0),
        tls,
        key_prefix: None,
    }))
}

#[cfg(test)]
#[path = "tests_session_store.rs"]
mod tests;
