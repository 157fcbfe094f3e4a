//! Who sent a handler request (`Peer`, its address), and the one log line for a refused
//! request.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Extensions;
use axum::http::request::Parts;

/// Where a request came from, for refusal logs.
#[derive(Debug, Clone)]
pub(crate) struct Peer(pub String);

impl Peer {
    /// The address without the port, for per-address limits.
    pub(crate) fn ip(&self) -> Option<std::net::IpAddr> {
        self.0.parse::<SocketAddr>().ok().map(|addr| addr.ip())
    }

    pub(super) fn of(extensions: &Extensions) -> Self {
        Self(
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

/// One line per refused request: why, where, from whom. Never the token or session id.
pub(crate) fn log_refusal(status: u16, reason: &str, path: &str, peer: &Peer) {
    tracing::warn!(status, reason, path, peer = %peer.0, "handler request refused");
}
