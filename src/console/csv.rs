//! The batch as CSV for Excel: UTF-8 with a BOM (so Chinese opens correctly), CRLF rows and
//! RFC 4180 quoting. Cells that a spreadsheet would run as a formula are defused.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::auth::ConsoleSession;
use super::{
    BatchQuery, ConsoleState, FilterError, Peer, html, local_time, log_refusal, visible_batch,
};
use crate::requests::{BatchSchedule, Request};

const HEADER: [&str; 8] = [
    "单号",
    "服务编号",
    "服务",
    "处理组",
    "申请人",
    "状态",
    "提交时间",
    "申请内容",
];

/// One CSV cell: quoted when it holds a comma, quote or line break (quotes doubled), and
/// prefixed with `'` when it starts like a formula (`=`, `+`, `-`, `@`, tab, CR), since
/// requests carry user text and Excel would evaluate it.
fn cell(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn row(out: &mut String, cells: &[&str]) {
    let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// The whole file, BOM first.
#[must_use]
pub(crate) fn render(requests: &[Request], schedule: &BatchSchedule) -> String {
    let mut out = String::from('\u{feff}');
    row(&mut out, &HEADER);
    for r in requests {
        let summary = r
            .form
            .summary
            .iter()
            .map(|(label, value)| format!("{label}: {value}"))
            .collect::<Vec<_>>()
            .join("; ");
        row(
            &mut out,
            &[
                r.id.as_str(),
                &r.form.service.to_string(),
                &r.form.service_name,
                r.form.team.label(),
                r.form.requester.user.as_str(),
                r.status().label(),
                &local_time(schedule, r.submitted_at, "%Y-%m-%d %H:%M:%S"),
                &summary,
            ],
        );
    }
    out
}

pub(crate) async fn export(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    peer: Peer,
    query: Result<Query<BatchQuery>, QueryRejection>,
) -> Response {
    let checked = match query {
        Ok(Query(q)) => q.check(&state.schedule, Utc::now()),
        Err(_) => Err(FilterError::Day),
    };
    let view = match checked {
        Ok(view) => view,
        Err(e) => {
            log_refusal(400, &e.to_string(), "/console/export.csv", &peer);
            return html::message_page(
                StatusCode::BAD_REQUEST,
                Some(&session),
                "筛选条件有误",
                e.chinese(),
            );
        }
    };
    let requests = match visible_batch(&state, &session.handler, view).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "console: export failed");
            return html::unavailable();
        }
    };
    tracing::info!(day = %view.day, rows = requests.len(), handler = %session.handler.name, "batch exported");
    let mut response = render(&requests, &state.schedule).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let team = view.team.map_or(String::new(), |t| format!("-{}", t.key()));
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"kaitong-{}{team}.csv\"",
        view.day
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_per_rfc_4180_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    }
}
