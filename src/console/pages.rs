//! The console's handlers: read the session, call the desk or the outbox, render a page or
//! redirect back with a notice (post/redirect/get, so a reload never repeats an action).

use std::collections::HashMap;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;

use super::failure::{OnPage, PageError, PageFailure};
use super::html::{self, Notice};
use super::listing::{BatchQuery, visible_batch};
use super::peer::{Peer, log_refusal};
use super::session::ConsoleSession;
use super::state::ConsoleState;
use crate::catalog::{FieldKey, FieldValue};
use crate::domain::RequestId;
use crate::notify::handoff::{HandoffState, handoff_state};
use crate::requests::attachments::{self, BlobRef};
use crate::requests::{DeskError, Request, TeamScope};
use crate::store::keys;

/// Longest note or reason accepted; the forms say so too.
const MAX_TEXT_CHARS: usize = 2000;

pub(crate) async fn batch(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    peer: Peer,
    query: Result<Query<BatchQuery>, QueryRejection>,
) -> Result<Response, PageFailure> {
    let now = Utc::now();
    let checked = match query {
        Ok(Query(q)) => q.check(&state.schedule, now, true),
        Err(_) => Err(super::listing::FilterError::Day),
    };
    let view = match checked {
        Ok(view) => view,
        Err(e) => {
            log_refusal(400, &e.to_string(), "/console", &peer);
            return Ok(html::message_page(
                StatusCode::BAD_REQUEST,
                Some(&session),
                "筛选条件有误",
                e.chinese(),
            ));
        }
    };
    let all = visible_batch(&state, &session.handler, &view.any_status(), now)
        .await
        .on(&session)?;
    let shown: Vec<Request> = all
        .iter()
        .filter(|r| view.status.is_none_or(|s| r.status() == s))
        .cloned()
        .collect();
    Ok(html::batch_page(
        &session,
        &state.schedule,
        &view,
        &all,
        &shown,
        now,
    ))
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct DetailQuery {
    #[serde(default)]
    ok: Option<String>,
}

/// What a redirect's `?ok=` code says (fixed texts: nothing user-typed is reflected).
fn ok_notice(code: &str) -> Option<Notice> {
    let text = match code {
        "start" => "已开始处理",
        "complete" => "已标记为已完成",
        "reject" => "已驳回",
        "note" => "备注已添加",
        "ticket" => "工单号已保存",
        "reopen" => "已重新打开，申请回到处理中",
        "retry" => "已重新排队发送",
        "retry_all" => "失败的投递已全部重新排队",
        _ => return None,
    };
    Some(Notice::Ok(text.to_owned()))
}

pub(crate) async fn detail(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    Path(id): Path<String>,
    query: Result<Query<DetailQuery>, QueryRejection>,
) -> Result<Response, PageFailure> {
    let id = RequestId::parse(&id).ok_or_else(|| PageError::NotFound.on(&session))?;
    let notice = query
        .ok()
        .and_then(|Query(q)| q.ok)
        .and_then(|code| ok_notice(&code));
    let request = state
        .desk
        .visible(&session.handler, &id)
        .await
        .on(&session)?;
    Ok(html::detail_page(
        StatusCode::OK,
        &session,
        &state.schedule,
        &request,
        handoff_of(&state, &request).await.as_ref(),
        notice.as_ref(),
    ))
}

/// `filename*` (RFC 5987/6266) carries the real name; the plain `filename` is an ASCII
/// stand-in for old clients, with anything risky in a header replaced.
fn content_disposition(file_name: &str) -> String {
    const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != ';' && c != '%' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(file_name, ATTR)
    )
}

pub(crate) async fn attachment(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    peer: Peer,
    Path((id, field)): Path<(String, String)>,
) -> Result<Response, PageFailure> {
    let id = RequestId::parse(&id).ok_or_else(|| PageError::NotFound.on(&session))?;
    let request = state
        .desk
        .visible(&session.handler, &id)
        .await
        .on(&session)?;
    let file_name =
        FieldKey::parse(&field)
            .ok()
            .and_then(|key| match request.form.answers.get(&key) {
                Some(FieldValue::Attachment { file_name, .. }) => Some(file_name.clone()),
                _ => None,
            });
    let Some(file_name) = file_name else {
        log_refusal(
            404,
            "no such attachment field",
            "/console/requests/…/attachments",
            &peer,
        );
        return Ok(html::message_page(
            StatusCode::NOT_FOUND,
            Some(&session),
            "找不到附件",
            "该申请没有这个附件。",
        ));
    };
    let blob = BlobRef::of(&request.form.form_id, &field);
    let Some(bytes) = attachments::load_blob(state.store.as_ref(), &blob)
        .await
        .on(&session)?
    else {
        return Ok(html::message_page(
            StatusCode::NOT_FOUND,
            Some(&session),
            "附件未保存",
            "提交时附件未能下载保存，请联系申请人重新发送。",
        ));
    };
    tracing::info!(request = %id, field, handler = %session.handler.name, "attachment downloaded");
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    // Always a download, never rendered: the bytes come from a chat user.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn form_text<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", |s| s.trim())
}

/// What is wrong with an action's text fields, if anything (checked before any action runs).
fn text_problem(action: &str, form: &HashMap<String, String>) -> Option<&'static str> {
    let too_long = |name: &str| form_text(form, name).chars().count() > MAX_TEXT_CHARS;
    match action {
        "complete" if too_long("note") => Some("说明过长（最多 2000 字）"),
        "reject" if too_long("reason") => Some("原因过长（最多 2000 字）"),
        "reject" if form_text(form, "reason").is_empty() => Some("驳回需要填写原因"),
        "reopen" if too_long("note") => Some("说明过长（最多 2000 字）"),
        "note" if form_text(form, "text").is_empty() => Some("备注不能为空"),
        "note" if too_long("text") => Some("备注过长（最多 2000 字）"),
        "ticket" => crate::requests::ticket_problem(form_text(form, "ticket")),
        _ => None,
    }
}

/// 开始处理 / 完成 / 驳回 / 备注 from the detail page.
pub(crate) async fn act(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    peer: Peer,
    Path((id, action)): Path<(String, String)>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageFailure> {
    let path = format!("/console/requests/{id}/{action}");
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Some(refused) = session.csrf_refusal(&form, &path, &peer) {
        return Ok(refused);
    }
    let id = RequestId::parse(&id).ok_or_else(|| PageError::NotFound.on(&session))?;
    let handler = &session.handler;
    let now = Utc::now();
    if let Some(problem) = text_problem(&action, &form) {
        return refuse_action(
            &state,
            &session,
            &id,
            &peer,
            &path,
            StatusCode::UNPROCESSABLE_ENTITY,
            problem,
        )
        .await;
    }
    // 完成 and 驳回 tell the requester and cannot be taken back after today: the first post
    // shows what will happen, the second (with `confirmed`) does it.
    if matches!(action.as_str(), "complete" | "reject") && form_text(&form, "confirmed") != "1" {
        let request = state.desk.visible(handler, &id).await.on(&session)?;
        // Already handled: the action below answers why it cannot be done now.
        if request.is_open() {
            return Ok(html::confirm_page(
                &session,
                &request,
                &action,
                form_text(
                    &form,
                    if action == "complete" {
                        "note"
                    } else {
                        "reason"
                    },
                ),
            ));
        }
    }
    let (verb, result) = match action.as_str() {
        "start" => ("开始处理", state.desk.start(handler, &id, now).await),
        "reopen" => {
            let note = Some(form_text(&form, "note").to_owned());
            ("重新打开", state.desk.reopen(handler, &id, note, now).await)
        }
        "complete" => {
            let note = Some(form_text(&form, "note").to_owned());
            ("完成", state.desk.complete(handler, &id, note, now).await)
        }
        "reject" => {
            let reason = form_text(&form, "reason");
            ("驳回", state.desk.reject(handler, &id, reason, now).await)
        }
        "note" => {
            let text = form_text(&form, "text");
            ("备注", state.desk.note(handler, &id, text, now).await)
        }
        "ticket" => {
            let number = form_text(&form, "ticket");
            (
                "设置工单号",
                state.desk.set_ticket(handler, &id, number, now).await,
            )
        }
        _ => return Err(PageError::NotFound.on(&session)),
    };
    // Every refusal shows the detail page again with its own status and words.
    let (status, text) = match result {
        Ok(_) => {
            return Ok(Redirect::to(&format!("/console/requests/{id}?ok={action}")).into_response());
        }
        Err(DeskError::NotFound) => {
            log_refusal(404, "request not visible", &path, &peer);
            return Err(PageError::NotFound.on(&session));
        }
        Err(DeskError::ReasonRequired) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "驳回需要填写原因".to_owned(),
        ),
        Err(DeskError::TooLate) => (
            StatusCode::CONFLICT,
            "只能重新打开今天完成或驳回的申请".to_owned(),
        ),
        Err(DeskError::NotNow { from, .. }) => (
            StatusCode::CONFLICT,
            format!("当前状态（{from}）不能{verb}"),
        ),
        Err(e) => return Err(PageError::from(e).on(&session)),
    };
    refuse_action(&state, &session, &id, &peer, &path, status, &text).await
}

/// Where the request's hand-off stands; `None` (the section says so) when the store cannot say.
async fn handoff_of(state: &ConsoleState, request: &Request) -> Option<HandoffState> {
    match handoff_state(&state.outbox, request).await {
        Ok(found) => Some(found),
        Err(e) => {
            tracing::warn!(request = %request.id, error = %e, "hand-off state unavailable");
            None
        }
    }
}

/// The detail page again, with the refusal on top and the matching status code.
async fn refuse_action(
    state: &ConsoleState,
    session: &ConsoleSession,
    id: &RequestId,
    peer: &Peer,
    path: &str,
    status: StatusCode,
    text: &str,
) -> Result<Response, PageFailure> {
    log_refusal(status.as_u16(), text, path, peer);
    let request = state.desk.visible(&session.handler, id).await.on(session)?;
    Ok(html::detail_page(
        status,
        session,
        &state.schedule,
        &request,
        handoff_of(state, &request).await.as_ref(),
        Some(&Notice::Err(text.to_owned())),
    ))
}

pub(crate) async fn deliveries(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    query: Result<Query<DetailQuery>, QueryRejection>,
) -> Result<Response, PageFailure> {
    let notice = query
        .ok()
        .and_then(|Query(q)| q.ok)
        .and_then(|code| ok_notice(&code));
    let failed = state.outbox.failed().await.on(&session)?;
    let pending = state.outbox.all_pending().await.on(&session)?;
    let failed = own_items(&state, &session, failed).await.on(&session)?;
    let pending = own_items(&state, &session, pending).await.on(&session)?;
    Ok(html::deliveries_page(
        &session,
        &state.schedule,
        &failed,
        &pending,
        notice.as_ref(),
    ))
}

pub(crate) async fn retry(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    peer: Peer,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageFailure> {
    let path = "/console/deliveries/retry";
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Some(refused) = session.csrf_refusal(&form, path, &peer) {
        return Ok(refused);
    }
    let kind = form_text(&form, "kind");
    let id = form_text(&form, "id");
    if !item_visible(&state, &session, id).await.on(&session)? {
        log_refusal(404, "delivery outside the handler's team", path, &peer);
        return Err(PageError::NoSuchDelivery.on(&session));
    }
    if state
        .outbox
        .requeue_failed(kind, id, Utc::now())
        .await
        .on(&session)?
    {
        tracing::info!(kind, id, handler = %session.handler.name, "failed delivery requeued");
        Ok(Redirect::to("/console/deliveries?ok=retry").into_response())
    } else {
        log_refusal(404, "no such failed delivery", path, &peer);
        Err(PageError::NoSuchDelivery.on(&session))
    }
}

/// "全部重试": every failed item the handler may see goes back in the queue.
pub(crate) async fn retry_all(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    peer: Peer,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageFailure> {
    let path = "/console/deliveries/retry-all";
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Some(refused) = session.csrf_refusal(&form, path, &peer) {
        return Ok(refused);
    }
    let failed = state.outbox.failed().await.on(&session)?;
    let own = own_items(&state, &session, failed).await.on(&session)?;
    let now = Utc::now();
    let mut requeued = 0;
    for item in &own {
        // False: requeued by someone else meanwhile.
        if state
            .outbox
            .requeue_failed(item.delivery.kind(), &item.id, now)
            .await
            .on(&session)?
        {
            requeued += 1;
        }
    }
    tracing::info!(requeued, handler = %session.handler.name, "failed deliveries requeued");
    Ok(Redirect::to("/console/deliveries?ok=retry_all").into_response())
}

/// Whether the handler may see (and retry) the outbox item `id`: a handler of every team sees
/// every item; a team's handler only items about a request of that team (named in the item's
/// id), never items about no single request (another handler's overview).
async fn item_visible(
    state: &ConsoleState,
    session: &ConsoleSession,
    id: &str,
) -> Result<bool, DeskError> {
    if session.handler.scope == TeamScope::All {
        return Ok(true);
    }
    let Some(request) = keys::request_of_item(id) else {
        return Ok(false);
    };
    match state.desk.visible(&session.handler, &request).await {
        Ok(_) => Ok(true),
        Err(DeskError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The items of `items` the handler may see.
async fn own_items(
    state: &ConsoleState,
    session: &ConsoleSession,
    items: Vec<crate::notify::OutboxItem>,
) -> Result<Vec<crate::notify::OutboxItem>, DeskError> {
    let mut own = Vec::with_capacity(items.len());
    for item in items {
        if item_visible(state, session, &item.id).await? {
            own.push(item);
        }
    }
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_keep_unicode_in_filename_star_and_stay_header_safe() {
        let value = content_disposition("报价 \"单\".xlsx");
        assert_eq!(
            value,
            "attachment; filename=\"______.xlsx\"; filename*=UTF-8''%E6%8A%A5%E4%BB%B7%20%22%E5%8D%95%22.xlsx"
        );
    }
}
