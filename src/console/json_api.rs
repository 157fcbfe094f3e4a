//! The JSON API for handlers' own tools: list the open queue (`/api/v1/requests/open`) or a
//! batch day, read a request, complete, reject or (the same day) reopen it.
//! Authenticated by `Authorization: Bearer <token>`: a handler's token or `admin.token` (see
//! [`ApiHandler`]).
//!
//! Errors are `{"error": code, "message": …}` with 400 (malformed), 401 (no or bad token),
//! 404 (unknown or another team's request: the same answer), 409 (impossible transition, or a
//! reopen after the day of the 完成/驳回) and 422 (a reject without reason).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::ApiHandler;
use super::listing::{BatchQuery, FilterError, Listing, visible_batch};
use super::peer::{Peer, log_refusal};
use super::state::ConsoleState;
use crate::domain::RequestId;
use crate::notify::handoff::{HandoffState, handoff_state};
use crate::requests::{BatchSchedule, DeskError, LedgerError, Request};
use crate::telemetry::one_line;

/// Why an API call is answered with an error. Each variant's status, `error` code and
/// `message` are spelled in [`ApiError::answer`], the one place; the cause is kept as source and
/// logged by [`Refused`]'s response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("malformed JSON body: {0}")]
    MalformedBody(#[source] serde_json::Error),
    #[error("{}", .0.body_text())]
    BadQuery(#[source] QueryRejection),
    #[error(transparent)]
    BadFilter(#[from] FilterError),
    /// What `requests::ticket_problem` found wrong with a ticket number.
    #[error("{problem}")]
    InvalidTicket { problem: &'static str },
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error("listing failed")]
    Listing(#[source] LedgerError),
}

impl ApiError {
    /// The status, `error` code and `message` the caller reads.
    fn answer(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::MalformedBody(_) | Self::BadQuery(_) | Self::BadFilter(_) => {
                (StatusCode::BAD_REQUEST, "bad_request", self.to_string())
            }
            Self::InvalidTicket { problem } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_ticket",
                (*problem).to_owned(),
            ),
            Self::Desk(DeskError::NotFound) => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such request".to_owned(),
            ),
            Self::Desk(DeskError::ReasonRequired) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "reason_required",
                "a reason is required to reject".to_owned(),
            ),
            Self::Desk(e @ DeskError::NotNow { .. }) => {
                (StatusCode::CONFLICT, "invalid_transition", e.to_string())
            }
            Self::Desk(DeskError::TooLate) => (
                StatusCode::CONFLICT,
                "reopen_too_late",
                "only a request handled today can be reopened".to_owned(),
            ),
            // The cause stays in the log: the caller learns only to retry.
            Self::Desk(DeskError::Ledger(_)) | Self::Listing(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage unavailable, retry later".to_owned(),
            ),
        }
    }

    /// This error, refused at `path` for `peer`.
    fn at(self, path: &str, peer: &Peer) -> Refused {
        Refused {
            error: self,
            path: path.to_owned(),
            peer: peer.clone(),
        }
    }
}

/// An [`ApiError`] with where it happened and from whom: the response every API handler fails
/// with. Turning it into a response is the one place an API error is logged — a refusal once
/// (why, where, whom; never the token), a failure of our side with its whole cause chain.
#[derive(Debug)]
pub(crate) struct Refused {
    error: ApiError,
    path: String,
    peer: Peer,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, code, message) = self.error.answer();
        if status.is_server_error() {
            tracing::error!(error = %one_line(&self.error), path = %self.path, "api: ledger or store failed");
        } else {
            log_refusal(status.as_u16(), &message, &self.path, &self.peer);
        }
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    }
}

/// A handler action's answer: the request as it now stands.
fn acted(request: &Request, state: &ConsoleState) -> Json<Value> {
    Json(request_json(request, &state.schedule, Utc::now()))
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The requester: userid and channel, and (additive) `name`, `departments` and `email` once
/// WeCom's contacts said (absent before, or when WeCom does not say).
fn requester_json(request: &Request) -> Value {
    let mut requester = json!({
        "userid": request.form.requester.user.as_str(),
        "channel": request.form.requester.channel.as_str(),
    });
    if let (Some(contact), Some(object)) = (&request.contact, requester.as_object_mut()) {
        object.insert("name".to_owned(), json!(contact.name));
        object.insert("departments".to_owned(), json!(contact.departments));
        if let Some(email) = &contact.email {
            object.insert("email".to_owned(), json!(email));
        }
    }
    requester
}

/// The API's shape of a request. Field values are the summary's (secrets already masked).
/// `due_at` is the promised done-by time (none outside the daily batch), `overdue` whether it
/// is open past it, `age_seconds` how long since it was filed.
#[must_use]
pub(crate) fn request_json(
    request: &Request,
    schedule: &BatchSchedule,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "seller_account": request.seller_account(),
        "due_at": request.due_at(schedule).map(rfc3339),
        "overdue": request.is_overdue(schedule, now),
        "age_seconds": (now - request.submitted_at).num_seconds().max(0),
        "id": request.id.as_str(),
        "service": { "id": request.form.service.get(), "name": request.form.service_name },
        "team": request.form.team.key(),
        "status": request.status().as_str(),
        "batch_day": request.batch.to_string(),
        "submitted_at": rfc3339(request.submitted_at),
        "requester": requester_json(request),
        "fields": request.form.summary.iter()
            .map(|(label, value)| json!({ "label": label, "value": value }))
            .collect::<Vec<_>>(),
        "history": request.history.iter()
            .map(|c| json!({ "status": c.status.as_str(), "at": rfc3339(c.at), "by": c.by, "note": c.note }))
            .collect::<Vec<_>>(),
        "notes": request.notes.iter()
            .map(|n| json!({ "at": rfc3339(n.at), "by": n.by, "text": n.text }))
            .collect::<Vec<_>>(),
        "external_ticket": request.external_ticket.as_ref()
            .map(|t| json!({ "number": t.number, "by": t.by, "at": rfc3339(t.at) })),
        "deliveries": request.deliveries.iter()
            .map(|d| json!({ "at": rfc3339(d.at), "to": d.to, "channel": d.channel, "item": d.item, "message": d.message }))
            .collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/requests`: a batch day (`day`, default today's local date), or the open
/// queue with `open=1` / `overdue=1`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    handler: ApiHandler,
    peer: Peer,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<BatchQuery>, QueryRejection>,
) -> Result<Json<Value>, Refused> {
    listing(state, handler, peer, uri.path(), query, false).await
}

/// `GET /api/v1/requests/open`: the open queue of the handler's teams, any day, oldest first.
pub(crate) async fn open(
    State(state): State<ConsoleState>,
    handler: ApiHandler,
    peer: Peer,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<BatchQuery>, QueryRejection>,
) -> Result<Json<Value>, Refused> {
    let query = query.map(|Query(mut q)| {
        q.open = Some("1".to_owned());
        Query(q)
    });
    listing(state, handler, peer, uri.path(), query, true).await
}

async fn listing(
    state: ConsoleState,
    ApiHandler(handler): ApiHandler,
    peer: Peer,
    path: &str,
    query: Result<Query<BatchQuery>, QueryRejection>,
    open_by_default: bool,
) -> Result<Json<Value>, Refused> {
    let now = Utc::now();
    let refused = |e: ApiError| e.at(path, &peer);
    let Query(query) = query.map_err(|e| refused(ApiError::BadQuery(e)))?;
    let view = query
        .check(&state.schedule, now, open_by_default)
        .map_err(|e| refused(e.into()))?;
    let requests = visible_batch(&state, &handler, &view, now)
        .await
        .map_err(|e| refused(ApiError::Listing(e)))?;
    let overdue = requests
        .iter()
        .filter(|r| r.is_overdue(&state.schedule, now))
        .count();
    Ok(Json(json!({
        "view": match view.listing { Listing::Open { .. } => "open", Listing::Day(_) => "day" },
        "day": view.day().map(|d| d.to_string()),
        "count": requests.len(),
        "overdue": overdue,
        "requests": requests.iter().map(|r| request_json(r, &state.schedule, now)).collect::<Vec<_>>(),
    })))
}

pub(crate) async fn get_one(
    State(state): State<ConsoleState>,
    ApiHandler(handler): ApiHandler,
    peer: Peer,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Json<Value>, Refused> {
    let refused = |e: DeskError| ApiError::from(e).at(uri.path(), &peer);
    let id = RequestId::parse(&id).ok_or_else(|| refused(DeskError::NotFound))?;
    let request = state.desk.visible(&handler, &id).await.map_err(refused)?;
    let mut body = request_json(&request, &state.schedule, Utc::now());
    let handoff = match handoff_state(&state.outbox, &request).await {
        Ok(found) => handoff_json(&found),
        Err(e) => {
            tracing::warn!(request = %request.id, error = %e, "hand-off state unavailable");
            json!({ "state": "unavailable" })
        }
    };
    if let Some(object) = body.as_object_mut() {
        object.insert("handoff".to_owned(), handoff);
    }
    Ok(Json(body))
}

/// `{"state": "delivered", "at": …}`, `{"state": "waiting", "attempts": n, "error": …}`,
/// `{"state": "failed", "error": …}`, or `{"state": "not_configured" | "not_needed" | "unknown"}`.
fn handoff_json(handoff: &HandoffState) -> Value {
    let mut out = json!({ "state": handoff.as_str() });
    if let Some(object) = out.as_object_mut() {
        match handoff {
            HandoffState::Delivered { at } => {
                object.insert("at".to_owned(), json!(rfc3339(*at)));
            }
            HandoffState::Waiting { attempts, error } => {
                object.insert("attempts".to_owned(), json!(attempts));
                object.insert("error".to_owned(), json!(error));
            }
            HandoffState::Failed { error } => {
                object.insert("error".to_owned(), json!(error));
            }
            HandoffState::NotConfigured | HandoffState::NotNeeded | HandoffState::Unknown => {}
        }
    }
    out
}

#[derive(Debug, Default, Deserialize)]
struct TicketBody {
    #[serde(default)]
    ticket: Option<String>,
}

/// `POST /api/v1/requests/{id}/ticket {"ticket": "OA-123"}`: the handling side's number.
pub(crate) async fn ticket(
    State(state): State<ConsoleState>,
    ApiHandler(handler): ApiHandler,
    peer: Peer,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Refused> {
    let refused = |e: ApiError| e.at(uri.path(), &peer);
    let (body, id): (TicketBody, RequestId) = action_input(&body, &id).map_err(refused)?;
    let number = body.ticket.unwrap_or_default();
    if let Some(problem) = crate::requests::ticket_problem(&number) {
        return Err(refused(ApiError::InvalidTicket { problem }));
    }
    let request = state
        .desk
        .set_ticket(&handler, &id, &number, Utc::now())
        .await
        .map_err(|e| refused(e.into()))?;
    Ok(acted(&request, &state))
}

#[derive(Debug, Default, Deserialize)]
struct CompleteBody {
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RejectBody {
    #[serde(default)]
    reason: Option<String>,
}

/// The body and the request id of an action.
fn action_input<T: Default + for<'de> Deserialize<'de>>(
    body: &[u8],
    id: &str,
) -> Result<(T, RequestId), ApiError> {
    let body = parse_body(body)?;
    let id = RequestId::parse(id).ok_or(DeskError::NotFound)?;
    Ok((body, id))
}

/// An empty body means "no fields"; anything else must be a JSON object of the right shape.
fn parse_body<T: Default + for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(ApiError::MalformedBody)
}

pub(crate) async fn complete(
    State(state): State<ConsoleState>,
    ApiHandler(handler): ApiHandler,
    peer: Peer,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Refused> {
    let refused = |e: ApiError| e.at(uri.path(), &peer);
    let (body, id): (CompleteBody, RequestId) = action_input(&body, &id).map_err(refused)?;
    let request = state
        .desk
        .complete(&handler, &id, body.note, Utc::now())
        .await
        .map_err(|e| refused(e.into()))?;
    Ok(acted(&request, &state))
}

/// `POST …/reopen {"note"}`: takes back today's 完成 or 驳回.
pub(crate) async fn reopen(
    State(state): State<ConsoleState>,
    ApiHandler(handler): ApiHandler,
    peer: Peer,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Refused> {
    let refused = |e: ApiError| e.at(uri.path(), &peer);
    let (body, id): (CompleteBody, RequestId) = action_input(&body, &id).map_err(refused)?;
    let request = state
        .desk
        .reopen(&handler, &id, body.note, Utc::now())
        .await
        .map_err(|e| refused(e.into()))?;
    Ok(acted(&request, &state))
}

pub(crate) async fn reject(
    State(state): State<ConsoleState>,
    ApiHandler(handler): ApiHandler,
    peer: Peer,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Refused> {
    let refused = |e: ApiError| e.at(uri.path(), &peer);
    let (body, id): (RejectBody, RequestId) = action_input(&body, &id).map_err(refused)?;
    let reason = body.reason.unwrap_or_default();
    let request = state
        .desk
        .reject(&handler, &id, &reason, Utc::now())
        .await
        .map_err(|e| refused(e.into()))?;
    Ok(acted(&request, &state))
}
