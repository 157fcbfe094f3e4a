//! The client for one app (`WecomApi`): its settings (`ApiSettings`), what it holds (the app's
//! ids and secret, the HTTP client, the cached access token) and building it. Its calls are in
//! `mod.rs` (the one call path) and the files of each endpoint.

use std::fmt;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::errors::ApiError;
use crate::secret::Secret;

/// Tunables for one client. `Default` is what production uses.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub connect_timeout: Duration,
    /// Whole-request timeout, headers and body.
    pub request_timeout: Duration,
    /// Cap on JSON response bodies.
    pub json_body_cap: usize,
    /// Cap on `media/get` bodies; WeCom serves at most 20 MB per request.
    pub media_body_cap: usize,
    /// Refresh the token this long before WeCom says it expires, so a token never dies in flight.
    pub token_refresh_margin: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            json_body_cap: 1024 * 1024,
            media_body_cap: 20 * 1024 * 1024,
            token_refresh_margin: Duration::from_secs(300),
        }
    }
}

impl ApiSettings {
    /// A `reqwest::Client` with these timeouts. Redirects are not followed: the WeCom API never
    /// redirects, and following one would carry the token to another host.
    pub(super) fn http_client(&self) -> Result<reqwest::Client, ApiError> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ApiError::Transport {
                path: "client",
                source: source.without_url(),
            })
    }
}

/// The access token `token` caches, and when to fetch a fresh one.
pub(super) struct CachedToken {
    pub(super) value: String,
    pub(super) refresh_at: Instant,
}

/// The WeCom API client for one app. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct WecomApi {
    pub(super) api_base: String,
    pub(super) corp_id: String,
    pub(super) secret: Secret,
    pub(super) agent_id: u32,
    pub(super) http: reqwest::Client,
    pub(super) settings: ApiSettings,
    /// Held across a gettoken call so concurrent callers share one refresh (single flight).
    pub(super) token: Mutex<Option<CachedToken>>,
}

impl fmt::Debug for WecomApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WecomApi")
            .field("api_base", &self.api_base)
            .field("corp_id", &self.corp_id)
            .field("secret", &self.secret)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

impl WecomApi {
    /// A client with the default settings (connect 3 s, total 10 s, 1 MiB JSON, 20 MiB media).
    pub fn new(
        api_base: impl Into<String>,
        corp_id: impl Into<String>,
        secret: String,
        agent_id: u32,
    ) -> Result<Self, ApiError> {
        Self::with_settings(api_base, corp_id, secret, agent_id, ApiSettings::default())
    }

    pub fn with_settings(
        api_base: impl Into<String>,
        corp_id: impl Into<String>,
        secret: String,
        agent_id: u32,
        settings: ApiSettings,
    ) -> Result<Self, ApiError> {
        let http = settings.http_client()?;
        Ok(Self {
            api_base: api_base.into().trim_end_matches('/').to_owned(),
            corp_id: corp_id.into(),
            secret: Secret::from(secret),
            agent_id,
            http,
            settings,
            token: Mutex::new(None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let api = WecomApi::new("http://127.0.0.1:1/cgi-bin", "corp", "s3cr3t".into(), 1)
            .expect("client");
        assert!(!format!("{api:?}").contains("s3cr3t"));
    }
}
