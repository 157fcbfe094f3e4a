//! The per-app access token: cached until shortly before WeCom says it expires, refreshed by
//! one gettoken call that concurrent callers share, dropped when WeCom rejects it.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::client::{CachedToken, WecomApi};
use super::errors::ApiError;
use super::wire::{Expect, Reply, decode, not_json};

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: u64,
}

impl WecomApi {
    /// A valid access token, from the cache or one shared gettoken call.
    pub(super) async fn access_token(&self) -> Result<String, ApiError> {
        // Holding the lock across gettoken is the single flight: callers queued behind it find
        // the fresh token when they get the lock.
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Drops `rejected` from the cache unless another caller already replaced it.
    pub(super) async fn invalidate_if_current(&self, rejected: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|token| token.value == rejected) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, ApiError> {
        const PATH: &str = "gettoken";
        let request = self.http.get(self.url(PATH)).query(&[
            ("corpid", self.corp_id.as_str()),
            ("corpsecret", self.secret.expose()),
        ]);
        let reply: TokenReply = match self.execute(PATH, request, Expect::Json).await? {
            Reply::Json(bytes) => decode(PATH, &bytes)?,
            Reply::Binary { .. } => return Err(not_json(PATH)),
        };
        tracing::debug!(
            path = PATH,
            expires_in = reply.expires_in,
            "fetched WeCom access token"
        );
        let lifetime = Duration::from_secs(reply.expires_in);
        // Very short lifetimes (never seen from WeCom) still get half their life cached.
        let margin = self.settings.token_refresh_margin.min(lifetime / 2);
        Ok(CachedToken {
            value: reply.access_token,
            refresh_at: Instant::now() + (lifetime - margin),
        })
    }
}
