//! The console's pages as HTML strings: one small layout, phone-first CSS, no JavaScript.
//!
//! Every value that comes from a request, a note or a handler goes through [`esc`]: requests
//! carry user text. Pure rendering; it must not read the store or decide anything.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::ConsoleSession;
use super::{BatchView, STATUSES, TEAMS, local_time};
use crate::catalog::FieldValue;
use crate::notify::OutboxItem;
use crate::requests::{BatchDay, BatchSchedule, Request, Status};

/// Escapes text for HTML element content and quoted attribute values.
#[must_use]
pub fn esc(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

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
fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
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

/// The page frame: header with who is logged in, navigation, logout, the notice, the body.
fn layout(
    title: &str,
    session: Option<&ConsoleSession>,
    notice: Option<&Notice>,
    body: &str,
) -> String {
    let mut out = String::with_capacity(body.len() + CSS.len() + 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · 开通处理台</title><style>{CSS}</style></head><body><header><div>\
         <strong>开通处理台</strong>",
        esc(title)
    );
    if let Some(session) = session {
        let _ = write!(
            out,
            "<a href=\"/console\">批次</a><a href=\"/console/deliveries\">投递</a>\
             <span>{}</span>\
             <form class=\"inline\" method=\"post\" action=\"/console/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button class=\"plain\" type=\"submit\">退出</button></form>",
            esc(&session.handler.name),
            esc(&session.csrf)
        );
    }
    out.push_str("</div></header><main>");
    match notice {
        Some(Notice::Ok(text)) => {
            let _ = write!(
                out,
                "<p class=\"notice ok\" role=\"status\">{}</p>",
                esc(text)
            );
        }
        Some(Notice::Err(text)) => {
            let _ = write!(
                out,
                "<p class=\"notice err\" role=\"alert\">{}</p>",
                esc(text)
            );
        }
        None => {}
    }
    out.push_str(body);
    out.push_str("</main></body></html>");
    out
}

/// A page with just a title and a sentence (errors, refusals).
pub(crate) fn message_page(
    status: StatusCode,
    session: Option<&ConsoleSession>,
    title: &str,
    text: &str,
) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/console\">返回批次</a></p>",
        esc(title),
        esc(text)
    );
    html_response(status, layout(title, session, None, &body))
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
    let body = "<h1>登录</h1><form class=\"card\" method=\"post\" action=\"/console/login\">\
        <label for=\"token\">处理人令牌</label>\
        <p><input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
        required style=\"width:100%\"></p>\
        <button type=\"submit\">登录</button></form>";
    html_response(status, layout("登录", None, notice.as_ref(), body))
}

fn badge(status: Status) -> String {
    format!(
        "<span class=\"badge s-{}\">{}</span>",
        status.as_str(),
        status.label()
    )
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

/// The batch page: filters, counts by status, requests grouped by team.
pub(crate) fn batch_page(
    session: &ConsoleSession,
    schedule: &BatchSchedule,
    view: BatchView,
    all_of_day: &[Request],
    shown: &[Request],
    is_open_batch: bool,
) -> Response {
    let mut body = String::new();
    let team_key = view.team.map(|t| t.key());
    let _ = write!(
        body,
        "<h1>{} 批次{}</h1>",
        view.day,
        if is_open_batch { "（当前）" } else { "" }
    );
    let prev = view.day.0.pred_opt().map(BatchDay);
    let next = view.day.0.succ_opt().map(BatchDay);
    body.push_str("<p>");
    if let Some(prev) = prev {
        let _ = write!(
            body,
            "<a href=\"{}\">← 前一天</a> · ",
            esc(&batch_link(prev, None, team_key))
        );
    }
    body.push_str("<a href=\"/console\">当前批次</a>");
    if let Some(next) = next {
        let _ = write!(
            body,
            " · <a href=\"{}\">后一天 →</a>",
            esc(&batch_link(next, None, team_key))
        );
    }
    body.push_str("</p>");

    // Filters: a plain GET form, so it works without scripts.
    let _ = write!(
        body,
        "<form class=\"filters card\" method=\"get\" action=\"/console\">\
         <div><label for=\"day\">日期</label><input id=\"day\" type=\"date\" name=\"day\" value=\"{}\"></div>\
         <div><label for=\"status\">状态</label><select id=\"status\" name=\"status\"><option value=\"\">全部</option>",
        view.day
    );
    for status in STATUSES {
        let selected = if view.status == Some(status) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{}\"{selected}>{}</option>",
            status.as_str(),
            status.label()
        );
    }
    body.push_str("</select></div><div><label for=\"team\">处理组</label><select id=\"team\" name=\"team\"><option value=\"\">全部</option>");
    for team in TEAMS.iter().filter(|t| session.handler.scope.covers(**t)) {
        let selected = if view.team == Some(*team) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{}\"{selected}>{}</option>",
            team.key(),
            team.label()
        );
    }
    body.push_str("</select></div><div><button type=\"submit\">筛选</button></div></form>");

    // Counts over the whole day (within the team filter), each a link to that status.
    body.push_str("<div class=\"counts\">");
    let _ = write!(
        body,
        "<a href=\"{}\"><span class=\"badge s-cancelled\">全部 {}</span></a>",
        esc(&batch_link(view.day, None, team_key)),
        all_of_day.len()
    );
    for status in STATUSES {
        let n = all_of_day.iter().filter(|r| r.status() == status).count();
        if n == 0 {
            continue;
        }
        let _ = write!(
            body,
            "<a href=\"{}\"><span class=\"badge s-{}\">{} {n}</span></a>",
            esc(&batch_link(view.day, Some(status), team_key)),
            status.as_str(),
            status.label()
        );
    }
    let mut export = format!("/console/export.csv?day={}", view.day);
    if let Some(team) = team_key {
        let _ = write!(export, "&team={team}");
    }
    let _ = write!(
        body,
        "</div><p><a href=\"{}\">导出 CSV</a></p>",
        esc(&export)
    );

    if shown.is_empty() {
        body.push_str("<p class=\"card muted\">这一批次没有符合条件的申请。</p>");
    }
    for team in TEAMS {
        let rows: Vec<&Request> = shown.iter().filter(|r| r.form.team == team).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(body, "<section><h2>{}（{}）</h2>", team.label(), rows.len());
        for r in rows {
            let _ = write!(
                body,
                "<a class=\"card\" href=\"/console/requests/{id}\">\
                 <div class=\"row1\"><span>{id}</span>{badge}</div>\
                 <div>#{sid} {service}</div>\
                 <div class=\"muted\">{requester} · {time}</div></a>",
                id = esc(r.id.as_str()),
                badge = badge(r.status()),
                sid = r.form.service,
                service = esc(&r.form.service_name),
                requester = esc(r.form.requester.user.as_str()),
                time = local_time(schedule, r.submitted_at, "%m-%d %H:%M"),
            );
        }
        body.push_str("</section>");
    }
    let title = format!("{} 批次", view.day);
    html_response(StatusCode::OK, layout(&title, Some(session), None, &body))
}

fn hidden_csrf(session: &ConsoleSession) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&session.csrf)
    )
}

/// One request: its fields, attachments, history, notes and the action forms.
pub(crate) fn detail_page(
    status_code: StatusCode,
    session: &ConsoleSession,
    schedule: &BatchSchedule,
    request: &Request,
    notice: Option<&Notice>,
) -> Response {
    let id = esc(request.id.as_str());
    let status = request.status();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p><a href=\"{back}\">← {day} 批次</a></p><h1>{id} {badge}</h1>\
         <div class=\"card\"><dl>\
         <dt>服务</dt><dd>#{sid} {service}</dd>\
         <dt>处理组</dt><dd>{team}</dd>\
         <dt>办理渠道</dt><dd>{routing}</dd>\
         <dt>申请人</dt><dd>{requester}（{channel}）</dd>\
         <dt>提交时间</dt><dd>{time}</dd></dl></div>",
        back = esc(&batch_link(request.batch, None, None)),
        day = request.batch,
        badge = badge(status),
        sid = request.form.service,
        service = esc(&request.form.service_name),
        team = request.form.team.label(),
        routing = esc(&request.form.routing.label()),
        requester = esc(request.form.requester.user.as_str()),
        channel = request.form.requester.channel.as_str(),
        time = local_time(schedule, request.submitted_at, "%Y-%m-%d %H:%M:%S"),
    );

    body.push_str("<h2>申请内容</h2><div class=\"card\"><dl>");
    for (label, value) in &request.form.summary {
        let _ = write!(body, "<dt>{}</dt><dd>{}</dd>", esc(label), esc(value));
    }
    if request.form.summary.is_empty() {
        body.push_str("<dd class=\"muted\">（无）</dd>");
    }
    body.push_str("</dl></div>");

    let attachments: Vec<(&str, &str)> = request
        .form
        .answers
        .iter()
        .filter_map(|(key, value)| match value {
            FieldValue::Attachment { file_name, .. } => Some((key.as_str(), file_name.as_str())),
            _ => None,
        })
        .collect();
    if !attachments.is_empty() {
        body.push_str("<h2>附件</h2><div class=\"card\">");
        for (field, file_name) in attachments {
            let _ = write!(
                body,
                "<p><a href=\"/console/requests/{id}/attachments/{}\" download>{}</a></p>",
                q(field),
                esc(file_name)
            );
        }
        body.push_str("</div>");
    }

    if !status.is_final() {
        body.push_str("<h2>处理</h2><div class=\"actions\">");
        let csrf = hidden_csrf(session);
        if status == Status::Submitted {
            let _ = write!(
                body,
                "<form class=\"card\" method=\"post\" action=\"/console/requests/{id}/start\">{csrf}\
                 <button type=\"submit\">开始处理</button></form>"
            );
        }
        let _ = write!(
            body,
            "<form class=\"card\" method=\"post\" action=\"/console/requests/{id}/complete\">{csrf}\
             <label for=\"done-note\">完成说明（可选）</label>\
             <textarea id=\"done-note\" name=\"note\" maxlength=\"2000\"></textarea>\
             <p><button class=\"done\" type=\"submit\">完成</button></p></form>\
             <form class=\"card\" method=\"post\" action=\"/console/requests/{id}/reject\">{csrf}\
             <label for=\"reason\">驳回原因（必填）</label>\
             <textarea id=\"reason\" name=\"reason\" maxlength=\"2000\"></textarea>\
             <p><button class=\"danger\" type=\"submit\">驳回</button></p></form></div>"
        );
    }

    body.push_str("<h2>状态记录</h2><div class=\"card\"><table><tr><th>时间</th><th>状态</th><th>操作人</th><th>说明</th></tr>");
    for change in &request.history {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            local_time(schedule, change.at, "%m-%d %H:%M"),
            change.status.label(),
            esc(&change.by),
            esc(change.note.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</table></div>");

    body.push_str("<h2>备注</h2>");
    for note in &request.notes {
        let _ = write!(
            body,
            "<div class=\"card\"><div class=\"muted\">{} · {}</div><div>{}</div></div>",
            esc(&note.by),
            local_time(schedule, note.at, "%m-%d %H:%M"),
            esc(&note.text)
        );
    }
    let _ = write!(
        body,
        "<form class=\"card\" method=\"post\" action=\"/console/requests/{id}/note\">{}\
         <label for=\"note-text\">添加备注</label>\
         <textarea id=\"note-text\" name=\"text\" maxlength=\"2000\"></textarea>\
         <p><button type=\"submit\">备注</button></p></form>",
        hidden_csrf(session)
    );
    html_response(
        status_code,
        layout(request.id.as_str(), Some(session), notice, &body),
    )
}

fn delivery_rows(
    out: &mut String,
    schedule: &BatchSchedule,
    items: &[OutboxItem],
    retry: Option<&str>,
) {
    for item in items {
        let _ = write!(
            out,
            "<div class=\"card\"><div class=\"row1\"><span>{kind}</span><span class=\"muted\">尝试 {attempts} 次</span></div>\
             <div style=\"word-break:break-all\">{id}</div>\
             <div class=\"muted\">下次：{due} · 创建：{created}</div>\
             <div class=\"muted\">错误：{error}</div>",
            kind = esc(&item.kind),
            attempts = item.attempts,
            id = esc(&item.id),
            due = local_time(schedule, item.due, "%m-%d %H:%M:%S"),
            created = local_time(schedule, item.created, "%m-%d %H:%M"),
            error = esc(item.last_error.as_deref().unwrap_or("—")),
        );
        if let Some(csrf) = retry {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"/console/deliveries/retry\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <input type=\"hidden\" name=\"kind\" value=\"{}\">\
                 <input type=\"hidden\" name=\"id\" value=\"{}\">\
                 <p><button type=\"submit\">重试</button></p></form>",
                esc(csrf),
                esc(&item.kind),
                esc(&item.id)
            );
        }
        out.push_str("</div>");
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
    let mut body = String::from("<h1>投递</h1>");
    let _ = write!(body, "<h2>失败（{}）</h2>", failed.len());
    if failed.is_empty() {
        body.push_str("<p class=\"card muted\">没有失败的投递。</p>");
    }
    delivery_rows(&mut body, schedule, failed, Some(&session.csrf));
    let _ = write!(body, "<h2>待发送（{}）</h2>", pending.len());
    if pending.is_empty() {
        body.push_str("<p class=\"card muted\">没有待发送的投递。</p>");
    }
    delivery_rows(&mut body, schedule, pending, None);
    html_response(StatusCode::OK, layout("投递", Some(session), notice, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
