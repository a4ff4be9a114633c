//! The store a gateway's config selects: cookies, or Redis.

use axum::http::HeaderMap;

use super::Session;
use super::cookies::Present;
use super::redis_store::RedisStore;
use super::store::{CookieStore, Loaded, SessionStore};
use crate::gateway::error::Error;

/// The store a gateway's config selects.
pub enum Sessions<'g> {
    /// `store: Cookie`.
    Cookie(CookieStore<'g>),
    /// `store: Redis`.
    Redis(RedisStore<'g>),
}

impl SessionStore for Sessions<'_> {
    async fn load(&self, headers: &HeaderMap) -> Loaded {
        match self {
            Self::Cookie(s) => s.load(headers).await,
            Self::Redis(s) => s.load(headers).await,
        }
    }

    async fn save(&self, session: &Session, present: Present, out: &mut HeaderMap) -> Result<(), Error> {
        match self {
            Self::Cookie(s) => s.save(session, present, out).await,
            Self::Redis(s) => s.save(session, present, out).await,
        }
    }

    async fn end(&self, loaded: &Loaded, out: &mut HeaderMap) {
        match self {
            Self::Cookie(s) => s.end(loaded, out).await,
            Self::Redis(s) => s.end(loaded, out).await,
        }
    }

    async fn end_user(&self, provider: &str, subject: Option<&str>, sid: Option<&str>) -> Result<bool, Error> {
        match self {
            Self::Cookie(s) => s.end_user(provider, subject, sid).await,
            Self::Redis(s) => s.end_user(provider, subject, sid).await,
        }
    }
}
