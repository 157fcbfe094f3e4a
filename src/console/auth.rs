//! Who is calling: console sessions (cookie → store record), CSRF tokens, the same-origin check
//! on posts, the login and logout pages, and bearer tokens for the API.
//!
//! Only hashes reach the store: the session record is keyed by the SHA-256 of the session id,
//! and neither the handler's token nor the session id is ever stored or logged.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequestParts, Request as HttpRequest, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};

use super::html;
use super::peer::{Peer, log_refusal};
use super::session::ConsoleSession;
use super::state::ConsoleState;
use super::throttle::retry_after_secs;
use crate::catalog::Team;
use crate::requests::{Handler, TeamScope, token_hash};
use crate::store::keys;

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "kt_console";

/// A console session lasts a working day and a half; then the handler logs in again.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What the store keeps for a session (under the hash of its id).
#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    name: String,
    /// "all" or a team key.
    scope: String,
    csrf: String,
}

fn session_key(id: &str) -> String {
    keys::console_session(&token_hash(id))
}

/// 256 random bits as hex: session ids and CSRF tokens.
fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn scope_key(scope: TeamScope) -> String {
    match scope {
        TeamScope::All => "all".to_owned(),
        TeamScope::Team(team) => team.key().to_owned(),
    }
}

fn parse_scope(raw: &str) -> Option<TeamScope> {
    if raw == "all" {
        Some(TeamScope::All)
    } else {
        Team::parse(raw).map(TeamScope::Team)
    }
}

/// The session id the `Cookie` header(s) carry, if any.
fn session_id(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The session cookie as `Set-Cookie` sends it: `HttpOnly; SameSite=Strict; Path=/console`
/// and the given `Max-Age` (0 clears it).
fn session_cookie(id: String, max_age: Duration) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, id))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/console")
        .max_age(time::Duration::try_from(max_age).unwrap_or(time::Duration::MAX))
        .build()
}

impl ConsoleSession {
    /// Checks the form's CSRF token against the session's (constant time): the 403 page to
    /// answer with when it is missing or wrong, `None` when it matches.
    pub fn csrf_refusal(
        &self,
        form: &HashMap<String, String>,
        path: &str,
        peer: &Peer,
    ) -> Option<Response> {
        let given = form.get("csrf").map(String::as_str).unwrap_or_default();
        let ok = crate::secret::constant_time_eq(given.as_bytes(), self.csrf.as_bytes());
        if ok {
            return None;
        }
        log_refusal(403, "missing or wrong CSRF token", path, peer);
        Some(html::message_page(
            StatusCode::FORBIDDEN,
            Some(self),
            "请求已失效",
            "页面已过期或来源不明，请返回刷新后重试。",
        ))
    }
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

impl FromRequestParts<ConsoleState> for ConsoleSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path().to_owned();
        let peer = Peer::of(&parts.extensions);
        let Some(id) = session_id(&parts.headers) else {
            tracing::info!(path, peer = %peer.0, "console: no session, sent to login");
            return Err(to_login());
        };
        let key = session_key(&id);
        let record = match state.store.get(&key).await {
            Ok(Some(bytes)) => serde_json::from_slice::<SessionRecord>(&bytes).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "console: session lookup failed");
                return Err(html::unavailable());
            }
        };
        let Some((record, scope)) =
            record.and_then(|r| parse_scope(&r.scope).map(|scope| (r, scope)))
        else {
            log_refusal(303, "unknown or expired session", &path, &peer);
            return Err(to_login());
        };
        Ok(Self {
            handler: Handler {
                name: record.name,
                scope,
            },
            csrf: record.csrf,
            key,
        })
    }
}

/// The host part of an `Origin` value ("https://kaitong.example:8443" → "kaitong.example:8443").
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    Some(rest.split('/').next().unwrap_or(rest)).filter(|h| !h.is_empty())
}

/// Refuses console posts from another site: when a browser says where a form came from
/// (`Origin`), it must be this host (or the host a proxy says it forwarded for).
pub(crate) async fn same_origin_posts(request: HttpRequest, next: Next) -> Response {
    if request.method() == Method::POST
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let headers = request.headers();
        let ours = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase)
        };
        let hosts = [ours("host"), ours("x-forwarded-host")];
        let same = origin
            .to_str()
            .ok()
            .and_then(origin_host)
            .map(str::to_ascii_lowercase)
            .is_some_and(|o| hosts.iter().flatten().any(|h| *h == o));
        if !same {
            let peer = Peer::of(request.extensions());
            log_refusal(403, "cross-origin post", request.uri().path(), &peer);
            return html::message_page(
                StatusCode::FORBIDDEN,
                None,
                "来源不符",
                "该请求不是从本站页面发出的，已拒绝。",
            );
        }
    }
    next.run(request).await
}

pub(crate) async fn login_form() -> Response {
    html::login_page(StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
}

/// Only behind TLS (as a proxy reports it) may the cookie be marked `Secure`: a plain-HTTP
/// deployment on an intranet would otherwise never get its cookie back.
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub(crate) async fn login(
    State(state): State<ConsoleState>,
    peer: Peer,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let token = form.map(|Form(f)| f.token).unwrap_or_default();
    let throttled = |wait: Duration| {
        let secs = retry_after_secs(wait);
        let mut page = html::login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!("登录失败次数过多，请 {secs} 秒后再试")),
        );
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        page
    };
    if let Err(wait) = state.login_throttle.check_peer(peer.ip()) {
        log_refusal(429, "too many failed logins", "/console/login", &peer);
        return throttled(wait);
    }
    let Some(handler) = state.directory.by_token(token.trim()) else {
        // The prefix bucket refuses only wrong tokens: whoever knows a prefix cannot lock
        // its owner out.
        if let Err(wait) = state.login_throttle.check_prefix(&token) {
            state.login_throttle.failed(peer.ip(), &token);
            log_refusal(
                429,
                "too many failed tokens with this prefix",
                "/console/login",
                &peer,
            );
            return throttled(wait);
        }
        state.login_throttle.failed(peer.ip(), &token);
        log_refusal(401, "invalid console token", "/console/login", &peer);
        return html::login_page(StatusCode::UNAUTHORIZED, Some("令牌无效"));
    };
    let id = random_token();
    let record = SessionRecord {
        name: handler.name.clone(),
        scope: scope_key(handler.scope),
        csrf: random_token(),
    };
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    if let Err(e) = state
        .store
        .put(&session_key(&id), &bytes, Some(SESSION_TTL))
        .await
    {
        tracing::error!(error = %e, "console: session could not be saved");
        return html::unavailable();
    }
    tracing::info!(handler = %handler.name, peer = %peer.0, "console login");
    let mut cookie = session_cookie(id, SESSION_TTL);
    cookie.set_secure(behind_tls(&headers));
    (CookieJar::new().add(cookie), Redirect::to("/console")).into_response()
}

pub(crate) async fn logout(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    peer: Peer,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Some(refused) = session.csrf_refusal(&form, "/console/logout", &peer) {
        return refused;
    }
    if let Err(e) = state.store.delete(&session.key).await {
        tracing::error!(error = %e, "console: session could not be deleted");
        return html::unavailable();
    }
    tracing::info!(handler = %session.handler.name, "console logout");
    let cleared = session_cookie(String::new(), Duration::ZERO);
    (
        CookieJar::new().add(cleared),
        Redirect::to("/console/login"),
    )
        .into_response()
}

/// A handler (or the admin, with `admin.token`) calling the API with
/// `Authorization: Bearer <token>`; 401 otherwise.
pub(crate) struct ApiHandler(pub Handler);

impl FromRequestParts<ConsoleState> for ApiHandler {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        let peer = Peer::of(&parts.extensions);
        let throttled = |wait: Duration| {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(serde_json::json!({ "error": "too many failed attempts" })),
            )
                .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(wait)),
            );
            response
        };
        if let Err(wait) = state.login_throttle.check_peer(peer.ip()) {
            log_refusal(429, "too many failed tokens", parts.uri.path(), &peer);
            return Err(throttled(wait));
        }
        let reason = match token {
            Some(token) => match state.directory.by_token(token) {
                Some(handler) => return Ok(Self(handler)),
                None => "unknown bearer token",
            },
            None => "missing bearer token",
        };
        if let Some(token) = token {
            // The prefix bucket refuses only wrong tokens (see `console::throttle`).
            if let Err(wait) = state.login_throttle.check_prefix(token) {
                state.login_throttle.failed(peer.ip(), token);
                log_refusal(
                    429,
                    "too many failed tokens with this prefix",
                    parts.uri.path(),
                    &peer,
                );
                return Err(throttled(wait));
            }
            state.login_throttle.failed(peer.ip(), token);
        }
        log_refusal(401, reason, parts.uri.path(), &peer);
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": "unauthorized" })),
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"kaitong\""),
        );
        Err(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_id_is_found_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; kt_console=abc ; b=2"),
        );
        assert_eq!(session_id(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; kt_console="));
        assert_eq!(session_id(&headers), None);
    }

    #[test]
    fn the_session_cookie_keeps_its_attributes() {
        assert_eq!(
            session_cookie("abc".to_owned(), SESSION_TTL).to_string(),
            "kt_console=abc; HttpOnly; SameSite=Strict; Path=/console; Max-Age=43200"
        );
        assert_eq!(
            session_cookie(String::new(), Duration::ZERO).to_string(),
            "kt_console=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0"
        );
        let mut secure = session_cookie("abc".to_owned(), SESSION_TTL);
        secure.set_secure(true);
        assert_eq!(
            secure.to_string(),
            "kt_console=abc; HttpOnly; SameSite=Strict; Secure; Path=/console; Max-Age=43200"
        );
    }

    #[test]
    fn origin_hosts_drop_the_scheme() {
        assert_eq!(origin_host("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(
            origin_host("https://kaitong.example"),
            Some("kaitong.example")
        );
        assert_eq!(origin_host("null"), None);
    }
}
