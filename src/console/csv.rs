//! The batch as CSV for Excel: UTF-8 with a BOM (so Chinese opens correctly), CRLF rows and
//! RFC 4180 quoting by the `csv` crate. Cells that a spreadsheet would run as a formula are
//! defused first.

use std::borrow::Cow;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::session::ConsoleSession;
use super::{
    BatchQuery, ConsoleState, FilterError, Peer, html, local_time, log_refusal, visible_batch,
};
use crate::requests::{BatchSchedule, Request};

const HEADER: [&str; 10] = [
    "单号",
    "服务编号",
    "服务",
    "处理组",
    "申请人",
    "申请人姓名",
    "部门",
    "状态",
    "提交时间",
    "申请内容",
];

/// A cell that a spreadsheet would run as a formula (starts with `=`, `+`, `-`, `@`, tab or
/// CR) gets a leading `'`, since requests carry user text and Excel would evaluate it.
/// Quoting is the `csv` writer's job.
fn defuse(raw: &str) -> Cow<'_, str> {
    if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{raw}"))
    } else {
        Cow::Borrowed(raw)
    }
}

/// The whole file, BOM first: RFC 4180 quoting (only where needed) and CRLF rows.
#[must_use]
pub(crate) fn render(requests: &[Request], schedule: &BatchSchedule) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::from("\u{feff}".as_bytes()));
    let mut row = |cells: &[&str]| {
        // Writing into a Vec cannot fail, and every row has the header's width.
        let _ = writer.write_record(cells.iter().map(|c| defuse(c).into_owned()));
    };
    row(&HEADER);
    for r in requests {
        let summary = r
            .form
            .summary
            .iter()
            .map(|(label, value)| format!("{label}: {value}"))
            .collect::<Vec<_>>()
            .join("; ");
        row(&[
            r.id.as_str(),
            &r.form.service.to_string(),
            &r.form.service_name,
            r.form.team.label(),
            r.form.requester.user.as_str(),
            r.contact.as_ref().map_or("", |c| c.name.as_str()),
            &r.contact
                .as_ref()
                .map(|c| c.departments.join("、"))
                .unwrap_or_default(),
            r.status().label(),
            &local_time(schedule, r.submitted_at, "%Y-%m-%d %H:%M:%S"),
            &summary,
        ]);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    // Every cell went in as `&str`, so the file is UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
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

    fn line(cells: &[&str]) -> String {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        writer
            .write_record(cells.iter().map(|c| defuse(c).into_owned()))
            .expect("write");
        String::from_utf8(writer.into_inner().expect("flush")).expect("utf-8")
    }

    #[test]
    fn cells_are_quoted_per_rfc_4180_and_formulas_defused() {
        assert_eq!(line(&["plain", "a,b"]), "plain,\"a,b\"\r\n");
        assert_eq!(line(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(line(&["two\nlines"]), "\"two\nlines\"\r\n");
        assert_eq!(line(&["=1+1", "-2", "@x", "+3"]), "'=1+1,'-2,'@x,'+3\r\n");
        assert_eq!(
            line(&["=HYPERLINK(\"x\")"]),
            "\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
        assert_eq!(line(&["\tx"]), "'\tx\r\n");
    }

    #[test]
    fn the_file_starts_with_a_bom_and_the_header() {
        let schedule = BatchSchedule::default();
        let text = render(&[], &schedule);
        assert!(text.starts_with(
            "\u{feff}单号,服务编号,服务,处理组,申请人,申请人姓名,部门,状态,提交时间,申请内容\r\n"
        ));
    }
}
