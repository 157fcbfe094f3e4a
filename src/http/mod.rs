//! HTTP wiring: the axum routes, body limits, status codes and the rejection log line.
//!
//! Owns only transport concerns; protocol work is delegated to `channel`, state to `store`.

pub mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::channel::{AiBotChannel, AppChannel, CallbackResponse, Rejection};
use crate::store::Store;
use crate::telemetry::one_line;
use crate::wecom::CallbackQuery;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<AppChannel>,
    pub aibot: Arc<AiBotChannel>,
    pub store: Arc<dyn Store>,
    pub max_body_bytes: usize,
    /// How long a callback body may take to arrive (408 after).
    pub body_read_timeout: Duration,
    /// Bearer token of the admin endpoints.
    pub admin_token: crate::secret::Secret,
    /// Failed admin tokens per address and token prefix (`[console]`'s settings).
    pub admin_throttle: Arc<crate::console::LoginThrottle>,
    /// Configuration warnings found at start-up (services routed to a hand-off that is not
    /// configured), shown on the admin listener's `/readyz` below "ready".
    pub warnings: Arc<Vec<String>>,
}

/// Which inbound channel a route serves, for logs.
#[derive(Debug, Clone, Copy)]
enum Route {
    App,
    AiBot,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::AiBot => "aibot",
        }
    }
}

/// The public listener's routes: the WeCom callbacks and health, nothing else.
pub fn public_router(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route(
            "/wecom/app",
            get(app_verify)
                .post(app_callback)
                .fallback(method_not_allowed),
        )
        .route(
            "/wecom/aibot",
            get(aibot_verify)
                .post(aibot_callback)
                .fallback(method_not_allowed),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .with_state(state)
}

/// The admin listener's own routes (`server.admin_listen`, loopback by default): `/metrics`,
/// `/admin/*` and health; the console and the JSON API are merged in by `startup`.
pub fn admin_router(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz_detailed))
        .route("/metrics", get(metrics))
        .route("/admin/store/backup", axum::routing::post(store_backup))
        .fallback(not_found)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .with_state(state)
}

fn peer(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(
            || "unknown".to_owned(),
            |ConnectInfo(addr)| addr.to_string(),
        )
}

/// Why a callback is not answered with a reply. Each variant's status and body are in
/// [`CallbackFailure`]'s response, the one place; a rejection keeps the channel's reason as
/// source.
#[derive(Debug, thiserror::Error)]
enum CallbackError {
    #[error("callback refused")]
    Rejected(#[source] Rejection),
    /// Declared or actual size over `limit` bytes: 413.
    #[error("body over the size limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body did not finish arriving within `timeout`: 408.
    #[error("body not received within {timeout:?}")]
    TimedOut { timeout: Duration },
}

impl CallbackError {
    fn of_body(error: BodyError, limit: usize, timeout: Duration) -> Self {
        match error {
            BodyError::TooLarge => Self::TooLarge { limit },
            BodyError::TimedOut => Self::TimedOut { timeout },
        }
    }

    fn on(self, route: Route, peer: String) -> CallbackFailure {
        CallbackFailure {
            error: self,
            route,
            peer,
        }
    }
}

/// A [`CallbackError`] with the route and the peer it came from: turning it into a response
/// logs it once (never the token or the key), counts it, and answers its status.
struct CallbackFailure {
    error: CallbackError,
    route: Route,
    peer: String,
}

impl IntoResponse for CallbackFailure {
    fn into_response(self) -> Response {
        let (channel, peer) = (self.route.name(), self.peer.as_str());
        match &self.error {
            CallbackError::Rejected(rejection) => {
                let unauthenticated = rejection.is_unauthenticated();
                let (status, outcome, body) = if unauthenticated {
                    (StatusCode::UNAUTHORIZED, "rejected_401", "unauthorized")
                } else {
                    (StatusCode::BAD_REQUEST, "rejected_400", "bad request")
                };
                crate::metrics::callback(channel, outcome);
                tracing::warn!(
                    channel,
                    peer = %peer,
                    status = status.as_u16(),
                    reason = %one_line(rejection),
                    "callback rejected"
                );
                (status, body).into_response()
            }
            CallbackError::TooLarge { limit } => {
                tracing::warn!(
                    channel,
                    peer = %peer,
                    status = 413,
                    reason = "body over the size limit",
                    limit,
                    "callback rejected"
                );
                crate::metrics::callback(channel, "too_large");
                (StatusCode::PAYLOAD_TOO_LARGE, "payload too large").into_response()
            }
            CallbackError::TimedOut { timeout } => {
                tracing::warn!(
                    channel,
                    peer = %peer,
                    status = 408,
                    reason = "body not received in time",
                    timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                    "callback rejected"
                );
                crate::metrics::callback(channel, "body_timeout");
                (
                    StatusCode::REQUEST_TIMEOUT,
                    [(header::CONNECTION, "close")],
                    "request timeout",
                )
                    .into_response()
            }
        }
    }
}

fn respond(response: CallbackResponse) -> Response {
    let mut res = Response::new(Body::from(response.body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(response.content_type),
    );
    res
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Why a callback body could not be read.
enum BodyError {
    /// Declared or actual size over the limit: 413.
    TooLarge,
    /// The body did not finish arriving within the body timeout: 408.
    TimedOut,
}

/// Reads the body under the size limit and within the body timeout.
async fn read_body(request: Request, limit: usize, deadline: Duration) -> Result<Bytes, BodyError> {
    let (parts, body) = request.into_parts();
    read_limited(&parts.headers, body, limit, deadline).await
}

/// Reads `body` (announced by `headers`) under `limit` bytes and within `deadline`.
async fn read_limited(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge);
    }
    // A client that announces a body and then trickles or stops must not hold the request
    // until the overall request timeout (which answers 503, as if we were at fault).
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::TimedOut),
    }
}

/// Body cap of every route but the callbacks (console forms, API JSON, admin requests): a
/// login token, a note or a rejection reason fits many times over.
pub const SMALL_BODY_BYTES: usize = 16 * 1024;

/// How every route's body is bounded (the callbacks read theirs under `server.max_body_bytes`).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// The callbacks' `server.body_read_timeout_ms`, applied to every route.
    pub deadline: Duration,
    /// The cap of every route but `/wecom/*`.
    pub small_bytes: usize,
}

/// Wraps the whole router (callbacks, console, API, admin): every request's body is read
/// within the body deadline and, outside the callbacks (which bound theirs themselves, under
/// their own larger cap), under [`BodyLimits::small_bytes`] — before any handler or extractor
/// sees it — and every request gets the overall request timeout.
pub fn bounded(router: Router, limits: BodyLimits, request_timeout: Duration) -> Router {
    router
        .layer(axum::middleware::from_fn(
            move |request: Request, next: axum::middleware::Next| bound_body(limits, request, next),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
}

async fn bound_body(
    limits: BodyLimits,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path().starts_with("/wecom/") {
        return next.run(request).await;
    }
    let peer = peer(&request);
    let (parts, body) = request.into_parts();
    match read_limited(&parts.headers, body, limits.small_bytes, limits.deadline).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(BodyError::TooLarge) => {
            tracing::warn!(
                peer = %peer,
                path = parts.uri.path(),
                status = 413,
                reason = "body over the size limit",
                limit = limits.small_bytes,
                "request rejected"
            );
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONNECTION, "close")],
                "payload too large",
            )
                .into_response()
        }
        Err(BodyError::TimedOut) => {
            tracing::warn!(
                peer = %peer,
                path = parts.uri.path(),
                status = 408,
                reason = "body not received in time",
                timeout_ms = u64::try_from(limits.deadline.as_millis()).unwrap_or(u64::MAX),
                "request rejected"
            );
            (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                "request timeout",
            )
                .into_response()
        }
    }
}

async fn verify(
    state: &AppState,
    route: Route,
    request: Request,
) -> Result<Response, CallbackFailure> {
    let peer = peer(&request);
    let query = CallbackQuery::parse(request.uri().query().unwrap_or(""));
    let result = match route {
        Route::App => state.app.verify_url(&query, now()),
        Route::AiBot => state.aibot.verify_url(&query, now()),
    };
    let echo = result.map_err(|e| CallbackError::Rejected(e).on(route, peer.clone()))?;
    tracing::info!(channel = route.name(), peer = %peer, "URL verified");
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response())
}

async fn callback(
    state: &AppState,
    route: Route,
    request: Request,
) -> Result<Response, CallbackFailure> {
    let started = Instant::now();
    let peer = peer(&request);
    let query = CallbackQuery::parse(request.uri().query().unwrap_or(""));
    let (limit, timeout) = (state.max_body_bytes, state.body_read_timeout);
    let body = read_body(request, limit, timeout)
        .await
        .map_err(|e| CallbackError::of_body(e, limit, timeout).on(route, peer.clone()))?;
    let result = match route {
        Route::App => state.app.receive(&query, &body, now()).await,
        Route::AiBot => state.aibot.receive(&query, &body, now()).await,
    };
    let response = result.map_err(|e| CallbackError::Rejected(e).on(route, peer.clone()))?;
    crate::metrics::callback(
        route.name(),
        if response.body.is_empty() {
            "empty"
        } else {
            "replied"
        },
    );
    // Debug, not info: one line per callback is the bulk of an info log under load
    // (formatting and writing it cost more than a store read); the counts and
    // latencies are in `/metrics` (kaitong_callbacks_total, kaitong_turn_seconds).
    tracing::debug!(
        channel = route.name(),
        peer = %peer,
        replied = !response.body.is_empty(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "callback handled"
    );
    Ok(respond(response))
}

async fn app_verify(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, CallbackFailure> {
    verify(&state, Route::App, request).await
}

async fn app_callback(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, CallbackFailure> {
    callback(&state, Route::App, request).await
}

async fn aibot_verify(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, CallbackFailure> {
    verify(&state, Route::AiBot, request).await
}

async fn aibot_callback(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, CallbackFailure> {
    callback(&state, Route::AiBot, request).await
}

async fn method_not_allowed(request: Request) -> Response {
    let peer = peer(&request);
    tracing::warn!(
        peer = %peer,
        method = %request.method(),
        path = request.uri().path(),
        status = 405,
        reason = "method not allowed",
        "callback rejected"
    );
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "GET, POST")],
        "method not allowed",
    )
        .into_response()
}

async fn not_found(request: Request) -> Response {
    tracing::info!(
        peer = peer(&request),
        path = request.uri().path(),
        "no such route"
    );
    (StatusCode::NOT_FOUND, "not found").into_response()
}

async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(store = %state.store.describe(), error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// `/readyz` on the admin listener: the same answer, and under "ready" each start-up warning
/// as `warning: …` (not on the public listener: the internet need not learn what is missing).
async fn readyz_detailed(State(state): State<AppState>) -> Response {
    let warnings = Arc::clone(&state.warnings);
    let answer = readyz(State(state)).await;
    if answer.status() != StatusCode::OK || warnings.is_empty() {
        return answer;
    }
    let mut body = String::from("ready\n");
    for warning in warnings.iter() {
        body.push_str("warning: ");
        body.push_str(warning);
        body.push('\n');
    }
    (StatusCode::OK, body).into_response()
}

/// Why an admin request is refused or failed. Each variant's status and body are in
/// [`AdminFailure`]'s response, the one place, which also logs it once.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("{reason}")]
    Throttled {
        wait: Duration,
        reason: &'static str,
    },
    #[error("bad admin token")]
    BadToken,
    #[error("backup failed: {0}")]
    Backup(#[source] crate::store::StoreError),
    #[error("backup failed: {0}")]
    ReadBackup(#[source] std::io::Error),
}

/// An [`AdminError`] with the peer it answers.
struct AdminFailure {
    error: AdminError,
    peer: String,
}

impl IntoResponse for AdminFailure {
    fn into_response(self) -> Response {
        let peer = self.peer.as_str();
        match &self.error {
            AdminError::Throttled { wait, reason } => {
                tracing::warn!(peer = %peer, status = 429, reason, "admin request refused");
                let secs = crate::console::retry_after_secs(*wait);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, secs.to_string())],
                    "too many failed attempts",
                )
                    .into_response()
            }
            AdminError::BadToken => {
                tracing::warn!(peer = %peer, status = 401, reason = "bad admin token", "admin request refused");
                (StatusCode::UNAUTHORIZED, "unauthorized").into_response()
            }
            AdminError::Backup(_) | AdminError::ReadBackup(_) => {
                tracing::error!(error = %one_line(&self.error), "store backup failed");
                // The operator asked for it: the cause is theirs to read.
                (StatusCode::INTERNAL_SERVER_ERROR, self.error.to_string()).into_response()
            }
        }
    }
}

/// `POST /admin/store/backup` (bearer `admin.token`): a consistent copy of the embedded store
/// as a redb file, taken while the server keeps running (the file itself is locked by redb, so
/// `kaitong store backup` comes here when the server is up).
async fn store_backup(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AdminFailure> {
    let peer = peer(&request);
    let refused = |error: AdminError| AdminFailure {
        error,
        peer: peer.clone(),
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
        .as_bytes();
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Err(wait) = state.admin_throttle.check_peer(ip) {
        return Err(refused(AdminError::Throttled {
            wait,
            reason: "too many failed admin tokens",
        }));
    }
    if !crate::secret::constant_time_eq(given, state.admin_token.expose().as_bytes()) {
        let tried = String::from_utf8_lossy(given);
        // Like the console: an empty prefix bucket refuses wrong tokens only.
        let throttled = state.admin_throttle.check_prefix(&tried);
        state.admin_throttle.failed(ip, &tried);
        return Err(refused(match throttled {
            Err(wait) => AdminError::Throttled {
                wait,
                reason: "too many failed admin tokens with this prefix",
            },
            Ok(()) => AdminError::BadToken,
        }));
    }
    let dest = std::env::temp_dir().join(format!(
        "kaitong-backup-{}.db",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let bytes = match state.store.backup_to(&dest).await {
        Ok(records) => match tokio::fs::read(&dest).await {
            Ok(bytes) => {
                tracing::info!(peer = %peer, records, bytes = bytes.len(), "store backup taken");
                Ok(bytes)
            }
            Err(e) => Err(AdminError::ReadBackup(e)),
        },
        Err(e) => Err(AdminError::Backup(e)),
    };
    // Removed whatever happened: a half-written copy holds records too.
    let _ = tokio::fs::remove_file(&dest).await;
    let bytes = bytes.map_err(refused)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
