//! The console's pages: one small layout, phone-first CSS, no JavaScript.
//!
//! Built with `maud`'s `html!` macro, which escapes every `(value)` it splices in: requests,
//! notes and handler names carry user text, and escaping is the default rather than a habit.
//! Only the constant stylesheet goes in as `PreEscaped`. Pure rendering; it must not read the
//! store or decide anything.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::ConsoleSession;
use chrono::{DateTime, Utc};

use super::display::{STATUSES, TEAMS, age, local_time};
use super::listing::{BatchView, Listing};
use crate::catalog::FieldValue;
use crate::notify::OutboxItem;
use crate::notify::handoff::HandoffState;
use crate::requests::{BatchDay, BatchSchedule, Request, Status};
use crate::store::keys;

/// Percent-encodes a query value (links that carry filters).
fn q(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A one-line message above the page: success (green) or a refusal (red).
pub(crate) enum Notice {
    Ok(String),
    Err(String),
}

const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 -apple-system,'PingFang SC','Noto Sans CJK SC','Microsoft YaHei',sans-serif;color:#1f2328;background:#f4f5f7}\
main{max-width:960px;margin:0 auto;padding:0 12px 32px}\
header{background:#1f4e8c;color:#fff}\
header div{max-width:960px;margin:0 auto;padding:10px 12px;display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center}\
header a,header button{color:#fff}\
header strong{margin-right:auto}\
h1{font-size:1.25rem;margin:16px 0 8px}h2{font-size:1.05rem;margin:20px 0 8px}\
a{color:#1f4e8c}\
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 12px;margin:8px 0}\
a.card{display:block;text-decoration:none;color:inherit}\
.row1{display:flex;justify-content:space-between;gap:8px;font-weight:600}\
.muted{color:#656d76;font-size:.9rem}\
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:.85rem;font-weight:600;white-space:nowrap}\
.s-submitted{background:#fff4d6;color:#7a5300}.s-processing{background:#dcebff;color:#0b4a99}\
.s-done{background:#dcf5e3;color:#11632e}.s-rejected{background:#ffe1e1;color:#a11a1a}\
.s-cancelled{background:#eceef1;color:#555}\
.counts{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}\
.counts a{text-decoration:none}\
.notice{padding:10px 12px;border-radius:8px;margin:12px 0}\
.ok{background:#dcf5e3;color:#11632e}.err{background:#ffe1e1;color:#a11a1a}\
dl{margin:0}dt{color:#656d76;font-size:.9rem}dd{margin:0 0 8px;word-break:break-word;white-space:pre-wrap}\
form.inline{display:inline}\
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end}\
label{display:block;font-size:.9rem;color:#656d76}\
input,select,textarea,button{font:inherit;padding:8px;border:1px solid #c5cbd3;border-radius:6px;max-width:100%}\
textarea{width:100%;min-height:64px}\
button{background:#1f4e8c;color:#fff;border-color:#1f4e8c;min-height:44px;padding:8px 16px;cursor:pointer}\
button.danger{background:#b42318;border-color:#b42318}\
button.plain{background:transparent;border-color:#fff;min-height:0;padding:2px 10px}\
button.done{background:#1a7f37;border-color:#1a7f37}\
.actions{display:grid;gap:12px}\
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:6px;border-bottom:1px solid #eee;vertical-align:top;word-break:break-word}\
";

/// Headers every console page gets: no caching of request data, no framing, no scripts.
pub(crate) fn html_response(status: StatusCode, page: Markup) -> Response {
    let mut response = (status, page.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The hidden CSRF field every post form carries.
fn hidden_csrf(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The page frame: header with who is logged in, navigation, logout, the notice, the body.
pub(crate) fn layout(
    title: &str,
    session: Option<&ConsoleSession>,
    notice: Option<&Notice>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · 开通处理台" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header { div {
                    strong { "开通处理台" }
                    @if let Some(session) = session {
                        a href="/console" { "待处理" }
                        a href="/console/dashboard" { "看板" }
                        a href="/console/deliveries" { "投递" }
                        span { (session.handler.name) }
                        form class="inline" method="post" action="/console/logout" {
                            (hidden_csrf(&session.csrf))
                            button class="plain" type="submit" { "退出" }
                        }
                    }
                } }
                main {
                    @match notice {
                        Some(Notice::Ok(text)) => { p class="notice ok" role="status" { (text) } }
                        Some(Notice::Err(text)) => { p class="notice err" role="alert" { (text) } }
                        None => {},
                    }
                    (body)
                }
            }
        }
    }
}

/// A page with just a title and a sentence (errors, refusals).
pub(crate) fn message_page(
    status: StatusCode,
    session: Option<&ConsoleSession>,
    title: &str,
    text: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        p { (text) }
        p { a href="/console" { "返回批次" } }
    };
    html_response(status, layout(title, session, None, body))
}

/// The store or ledger failed: nothing the handler can fix but trying again later.
pub(crate) fn unavailable() -> Response {
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "暂时无法访问",
        "存储暂时不可用，请稍后重试。",
    )
}

pub(crate) fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let notice = error.map(|e| Notice::Err(e.to_owned()));
    let body = html! {
        h1 { "登录" }
        form class="card" method="post" action="/console/login" {
            label for="token" { "处理人令牌" }
            p {
                input id="token" name="token" type="password" autocomplete="current-password"
                    required style="width:100%";
            }
            button type="submit" { "登录" }
        }
    };
    html_response(status, layout("登录", None, notice.as_ref(), body))
}

fn badge(status: Status) -> Markup {
    html! { span class={ "badge s-" (status.as_str()) } { (status.label()) } }
}

fn batch_link(day: BatchDay, status: Option<Status>, team: Option<&str>) -> String {
    let mut link = format!("/console?day={day}");
    if let Some(status) = status {
        let _ = write!(link, "&status={}", status.as_str());
    }
    if let Some(team) = team {
        let _ = write!(link, "&team={}", q(team));
    }
    link
}

/// A link to the open queue with these filters.
fn open_link(status: Option<Status>, team: Option<&str>, overdue_only: bool) -> String {
    let mut link = "/console?open=1".to_owned();
    if let Some(status) = status {
        let _ = write!(link, "&status={}", status.as_str());
    }
    if let Some(team) = team {
        let _ = write!(link, "&team={}", q(team));
    }
    if overdue_only {
        link.push_str("&overdue=1");
    }
    link
}

fn overdue_badge() -> Markup {
    html! { span class="badge s-rejected" { "逾期" } }
}

/// One request in a list: number, status, service, seller account, requester, age.
fn request_row(schedule: &BatchSchedule, r: &Request, now: DateTime<Utc>) -> Markup {
    let overdue = r.is_overdue(schedule, now);
    html! {
        a class="card" href={ "/console/requests/" (r.id.as_str()) } {
            div class="row1" {
                span { (r.id.as_str()) }
                span { @if overdue { (overdue_badge()) " " } (badge(r.status())) }
            }
            div { "#" (r.form.service) " " (r.form.service_name) }
            @if let Some(account) = r.seller_account() {
                div { "账号 " (account) }
            }
            div class="muted" {
                (r.requester_label()) " · "
                (local_time(schedule, r.submitted_at, "%m-%d %H:%M"))
                @if r.is_open() { " · 已等 " (age(r.submitted_at, now)) }
            }
        }
    }
}

/// The listing page: the open queue (default) or a batch day; filters and search, counts,
/// requests grouped by team.
pub(crate) fn batch_page(
    session: &ConsoleSession,
    schedule: &BatchSchedule,
    view: &BatchView,
    all: &[Request],
    shown: &[Request],
    now: DateTime<Utc>,
) -> Response {
    let team_key = view.team.map(|t| t.key());
    let today = BatchDay(schedule.local_date(now));
    let overdue_n = all.iter().filter(|r| r.is_overdue(schedule, now)).count();
    let (title, export) = match view.listing {
        Listing::Open { overdue_only } => {
            let title = if overdue_only {
                "逾期申请".to_owned()
            } else {
                "待处理".to_owned()
            };
            (
                title,
                format!(
                    "/console/export.csv?open=1{}",
                    team_key.map_or(String::new(), |t| format!("&team={t}"))
                ),
            )
        }
        Listing::Day(day) => (
            format!("{day} 批次"),
            format!(
                "/console/export.csv?from={day}&to={day}{}",
                team_key.map_or(String::new(), |t| format!("&team={t}"))
            ),
        ),
    };
    let search = view.search.as_deref().unwrap_or("");
    let body = html! {
        h1 {
            (title)
            @if let Listing::Day(day) = view.listing {
                @if day == schedule.batch_for(now) { "（收单中）" }
            }
        }
        p {
            a href="/console" { "待处理" }
            " · "
            a href=(open_link(None, team_key, true)) { "逾期" }
            " · "
            a href=(batch_link(today, None, team_key)) { "今天批次" }
            @if let Listing::Day(day) = view.listing {
                @if let Some(prev) = day.0.pred_opt().map(BatchDay) {
                    " · " a href=(batch_link(prev, None, team_key)) { "← 前一天" }
                }
                @if let Some(next) = day.0.succ_opt().map(BatchDay) {
                    " · " a href=(batch_link(next, None, team_key)) { "后一天 →" }
                }
            }
            " · " a href="/console/dashboard" { "看板" }
        }
        // Filters and search: a plain GET form, so it works without scripts. An empty day
        // is the open queue.
        form class="filters card" method="get" action="/console" {
            div {
                label for="q" { "搜索" }
                input id="q" type="search" name="q" value=(search) maxlength="64"
                    placeholder="单号 / 卖家账号 / 申请人";
            }
            div {
                label for="day" { "批次日期" }
                input id="day" type="date" name="day" value=(view.day().map(|d| d.to_string()).unwrap_or_default());
            }
            div {
                label for="status" { "状态" }
                select id="status" name="status" {
                    option value="" { "全部" }
                    @for status in STATUSES {
                        option value=(status.as_str()) selected[view.status == Some(status)] {
                            (status.label())
                        }
                    }
                }
            }
            div {
                label for="team" { "处理组" }
                select id="team" name="team" {
                    option value="" { "全部" }
                    @for team in TEAMS.iter().filter(|t| session.handler.scope.covers(**t)) {
                        option value=(team.key()) selected[view.team == Some(*team)] {
                            (team.label())
                        }
                    }
                }
            }
            div { button type="submit" { "筛选" } }
        }
        // Counts over the whole listing (within the team filter), each a link to that status.
        div class="counts" {
            @let all_link = match view.listing {
                Listing::Open { overdue_only } => open_link(None, team_key, overdue_only),
                Listing::Day(day) => batch_link(day, None, team_key),
            };
            a href=(all_link) {
                span class="badge s-cancelled" { "全部 " (all.len()) }
            }
            @for status in STATUSES {
                @let n = all.iter().filter(|r| r.status() == status).count();
                @if n > 0 {
                    @let link = match view.listing {
                        Listing::Open { overdue_only } => open_link(Some(status), team_key, overdue_only),
                        Listing::Day(day) => batch_link(day, Some(status), team_key),
                    };
                    a href=(link) {
                        span class={ "badge s-" (status.as_str()) } { (status.label()) " " (n) }
                    }
                }
            }
            @if overdue_n > 0 {
                a href=(open_link(None, team_key, true)) {
                    span class="badge s-rejected" { "逾期 " (overdue_n) }
                }
            }
        }
        p { a href=(export) { "导出 CSV" } }
        @if shown.is_empty() {
            p class="card muted" { "没有符合条件的申请。" }
        }
        @for team in TEAMS {
            @let rows: Vec<&Request> = shown.iter().filter(|r| r.form.team == team).collect();
            @if !rows.is_empty() {
                section {
                    h2 { (team.label()) "（" (rows.len()) "）" }
                    @for r in rows {
                        (request_row(schedule, r, now))
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, layout(&title, Some(session), None, body))
}

/// One request: its fields, attachments, history, notes and the action forms.
pub(crate) fn detail_page(
    status_code: StatusCode,
    session: &ConsoleSession,
    schedule: &BatchSchedule,
    request: &Request,
    handoff: Option<&HandoffState>,
    notice: Option<&Notice>,
) -> Response {
    let id = request.id.as_str();
    let status = request.status();
    let form = &request.form;
    let attachments: Vec<(&str, &str)> = form
        .answers
        .iter()
        .filter_map(|(key, value)| match value {
            FieldValue::Attachment { file_name, .. } => Some((key.as_str(), file_name.as_str())),
            _ => None,
        })
        .collect();
    let csrf = hidden_csrf(&session.csrf);
    let body = html! {
        p { a href=(batch_link(request.batch, None, None)) { "← " (request.batch) " 批次" } }
        h1 { (id) " " (badge(status)) }
        div class="card" { dl {
            dt { "服务" } dd { "#" (form.service) " " (form.service_name) }
            dt { "处理组" } dd { (form.team.label()) }
            dt { "办理渠道" } dd { (form.routing.label()) }
            dt { "申请人" } dd { (request.requester_label()) "（" (form.requester.channel.as_str()) "）" }
            @if let Some(email) = request.contact.as_ref().and_then(|c| c.email.as_deref()) {
                dt { "邮箱" } dd { a href={ "mailto:" (email) } { (email) } }
            }
            dt { "提交时间" } dd { (local_time(schedule, request.submitted_at, "%Y-%m-%d %H:%M:%S")) }
        } }

        h2 { "申请内容" }
        div class="card" { dl {
            @for (label, value) in &form.summary {
                dt { (label) } dd { (value) }
            }
            @if form.summary.is_empty() {
                dd class="muted" { "（无）" }
            }
        } }

        @if !attachments.is_empty() {
            h2 { "附件" }
            div class="card" {
                @for (field, file_name) in &attachments {
                    p {
                        a href={ "/console/requests/" (id) "/attachments/" (q(field)) } download {
                            (file_name)
                        }
                    }
                }
            }
        }

        @if request.reopenable(schedule, Utc::now()) {
            h2 { "撤销" }
            form class="card" method="post" action={ "/console/requests/" (id) "/reopen" } {
                (csrf)
                p class="muted" { "今天内可以撤销" (status.label()) "，申请回到处理中，记录在状态记录里。" }
                label for="reopen-note" { "撤销说明（可选）" }
                textarea id="reopen-note" name="note" maxlength="2000" {}
                p { button type="submit" { "重新打开" } }
            }
        }

        @if !status.is_final() {
            h2 { "处理" }
            div class="actions" {
                @if status == Status::Submitted {
                    form class="card" method="post" action={ "/console/requests/" (id) "/start" } {
                        (csrf)
                        button type="submit" { "开始处理" }
                    }
                }
                form class="card" method="post" action={ "/console/requests/" (id) "/complete" } {
                    (csrf)
                    label for="done-note" { "完成说明（可选）" }
                    textarea id="done-note" name="note" maxlength="2000" {}
                    p { button class="done" type="submit" { "完成" } }
                }
                form class="card" method="post" action={ "/console/requests/" (id) "/reject" } {
                    (csrf)
                    label for="reason" { "驳回原因（必填）" }
                    textarea id="reason" name="reason" maxlength="2000" {}
                    p { button class="danger" type="submit" { "驳回" } }
                }
            }
        }

        h2 { "状态记录" }
        div class="card" { table {
            tr { th { "时间" } th { "状态" } th { "操作人" } th { "说明" } }
            @for change in &request.history {
                tr {
                    td { (local_time(schedule, change.at, "%m-%d %H:%M")) }
                    td { (change.status.label()) }
                    td { (change.by) }
                    td { (change.note.as_deref().unwrap_or("")) }
                }
            }
        } }

        h2 { "交接" }
        div class="card" {
            dl {
                dt { "交接状态" } dd { (handoff_label(schedule, handoff)) }
                dt { "工单号" }
                dd {
                    @match &request.external_ticket {
                        Some(ticket) => {
                            (ticket.number) span class="muted" {
                                " · " (ticket.by) " · " (local_time(schedule, ticket.at, "%m-%d %H:%M"))
                            }
                        }
                        None => span class="muted" { "未填写" },
                    }
                }
            }
            form method="post" action={ "/console/requests/" (id) "/ticket" } {
                (csrf)
                label for="ticket" { "处理方工单号" }
                input id="ticket" name="ticket" maxlength="64" value=(request.external_ticket.as_ref().map_or("", |t| t.number.as_str()));
                p { button type="submit" { "保存工单号" } }
            }
        }

        h2 { "送达记录" }
        @if request.deliveries.is_empty() {
            p class="card muted" { "还没有送达的通知。" }
        } @else {
            div class="card" { table {
                tr { th { "时间" } th { "发给" } th { "方式" } th { "内容" } }
                @for delivery in &request.deliveries {
                    tr {
                        td { (local_time(schedule, delivery.at, "%m-%d %H:%M")) }
                        td { (delivery.to) }
                        td { (delivery.channel) }
                        td { (delivery.message) }
                    }
                }
            } }
        }

        h2 { "备注" }
        @for note in &request.notes {
            div class="card" {
                div class="muted" { (note.by) " · " (local_time(schedule, note.at, "%m-%d %H:%M")) }
                div { (note.text) }
            }
        }
        form class="card" method="post" action={ "/console/requests/" (id) "/note" } {
            (csrf)
            label for="note-text" { "添加备注" }
            textarea id="note-text" name="text" maxlength="2000" {}
            p { button type="submit" { "备注" } }
        }
    };
    html_response(status_code, layout(id, Some(session), notice, body))
}

/// The hand-off state in a few words.
fn handoff_label(schedule: &BatchSchedule, handoff: Option<&HandoffState>) -> String {
    match handoff {
        Some(HandoffState::Delivered { at }) => {
            format!("已送达 {}", local_time(schedule, *at, "%m-%d %H:%M"))
        }
        Some(HandoffState::Waiting { attempts: 0, .. }) => "排队中".to_owned(),
        Some(HandoffState::Waiting { attempts, error }) => format!(
            "排队重试中（已失败 {attempts} 次：{}）",
            error.as_deref().unwrap_or("—")
        ),
        Some(HandoffState::Failed { error }) => format!("失败：{error}（可在「投递」页重试）"),
        Some(HandoffState::NotConfigured) => {
            "未配置：本服务的交接方式没有配置，请人工转交".to_owned()
        }
        Some(HandoffState::NotNeeded) => "无需交接".to_owned(),
        Some(HandoffState::Unknown) => "无记录".to_owned(),
        None => "暂时无法读取".to_owned(),
    }
}

/// The step before 完成 / 驳回: what will happen, the text as typed, 确认 or back.
pub(crate) fn confirm_page(
    session: &ConsoleSession,
    request: &Request,
    action: &str,
    text: &str,
) -> Response {
    let id = request.id.as_str();
    let (title, field, label, button_class) = if action == "complete" {
        ("确认完成", "note", "完成说明", "done")
    } else {
        ("确认驳回", "reason", "驳回原因", "danger")
    };
    let body = html! {
        p { a href={ "/console/requests/" (id) } { "← 返回 " (id) } }
        h1 { (title) " " (id) }
        div class="card" {
            div { "#" (request.form.service) " " (request.form.service_name) }
            @if let Some(account) = request.seller_account() { div { "账号 " (account) } }
            div class="muted" { "申请人 " (request.requester_label()) }
        }
        @if action == "complete" {
            p { "标记为已完成后，申请人会在通知时间收到结果。今天内可以撤销。" }
        } @else {
            p { "驳回后申请人会立即收到原因。今天内可以撤销。" }
        }
        @if !text.is_empty() {
            div class="card" { dl { dt { (label) } dd { (text) } } }
        }
        form class="card" method="post" action={ "/console/requests/" (id) "/" (action) } {
            (hidden_csrf(&session.csrf))
            input type="hidden" name=(field) value=(text);
            input type="hidden" name="confirmed" value="1";
            button class=(button_class) type="submit" { (title) }
        }
    };
    html_response(StatusCode::OK, layout(title, Some(session), None, body))
}

/// Outbox items as cards; `retry` carries the CSRF token when each gets a retry button.
fn delivery_rows(schedule: &BatchSchedule, items: &[OutboxItem], retry: Option<&str>) -> Markup {
    html! {
        @for item in items {
            div class="card" {
                div class="row1" {
                    span { (item.delivery.kind()) }
                    span class="muted" { "尝试 " (item.attempts) " 次" }
                }
                div { "发给：" (item.delivery.recipient()) }
                div style="word-break:break-all" {
                    @if let Some(request) = keys::request_of_item(&item.id) {
                        a href={ "/console/requests/" (request) } { (request) }
                        " · "
                    }
                    (item.id)
                }
                div { (item.delivery.summary()) }
                div class="muted" {
                    "下次：" (local_time(schedule, item.due, "%m-%d %H:%M:%S"))
                    " · 创建：" (local_time(schedule, item.created, "%m-%d %H:%M"))
                }
                div class="muted" { "错误：" (item.last_error.as_deref().unwrap_or("—")) }
                @if let Some(csrf) = retry {
                    form method="post" action="/console/deliveries/retry" {
                        (hidden_csrf(csrf))
                        input type="hidden" name="kind" value=(item.delivery.kind());
                        input type="hidden" name="id" value=(item.id);
                        p { button type="submit" { "重试" } }
                    }
                }
            }
        }
    }
}

/// The outbox as handlers need it: what was given up (with a retry button) and what waits.
pub(crate) fn deliveries_page(
    session: &ConsoleSession,
    schedule: &BatchSchedule,
    failed: &[OutboxItem],
    pending: &[OutboxItem],
    notice: Option<&Notice>,
) -> Response {
    let body = html! {
        h1 { "投递" }
        h2 { "失败（" (failed.len()) "）" }
        @if failed.is_empty() {
            p class="card muted" { "没有失败的投递。" }
        } @else {
            form method="post" action="/console/deliveries/retry-all" {
                (hidden_csrf(&session.csrf))
                p { button type="submit" { "全部重试" } }
            }
        }
        (delivery_rows(schedule, failed, Some(&session.csrf)))
        h2 { "待发送（" (pending.len()) "）" }
        @if pending.is_empty() {
            p class="card muted" { "没有待发送的投递。" }
        }
        (delivery_rows(schedule, pending, None))
    };
    html_response(StatusCode::OK, layout("投递", Some(session), notice, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_text_is_escaped_and_only_the_stylesheet_is_raw() {
        let page = layout(
            "<script>alert('x')</script>",
            None,
            Some(&Notice::Err("a&b \"q\"".to_owned())),
            html! { p { ("<b>标签</b>") } },
        )
        .into_string();
        assert!(!page.contains("<script>") && !page.contains("<b>"));
        assert!(page.contains("&lt;script&gt;alert('x')&lt;/script&gt; · 开通处理台"));
        assert!(page.contains("a&amp;b &quot;q&quot;") && page.contains("&lt;b&gt;标签&lt;/b&gt;"));
        assert!(page.contains(CSS), "the stylesheet is spliced verbatim");
    }
}
