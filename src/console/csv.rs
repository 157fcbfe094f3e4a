//! The batch as CSV for Excel: UTF-8 with a BOM (so Chinese opens correctly), CRLF rows and
//! RFC 4180 quoting by the `csv` crate. Cells that a spreadsheet would run as a formula are
//! defused first.

use std::borrow::Cow;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::display::local_time;
use super::html;
use super::listing::{BatchQuery, BatchView, FilterError, Listing, parse_day, visible_batch};
use super::peer::{Peer, log_refusal};
use super::session::ConsoleSession;
use super::state::ConsoleState;
use crate::requests::{BatchDay, BatchSchedule, LedgerError, Request};

/// The fixed columns; one column per field label follows.
const HEADER: [&str; 18] = [
    "单号",
    "服务编号",
    "服务",
    "处理组",
    "办理渠道",
    "申请渠道",
    "申请人",
    "申请人姓名",
    "部门",
    "卖家账号",
    "状态",
    "逾期",
    "批次",
    "提交时间",
    "处理人",
    "处理时间",
    "原因/说明",
    "备注",
];

/// The most batch days one export covers: a year of reporting.
const MAX_RANGE_DAYS: i64 = 366;

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

/// The whole file, BOM first: RFC 4180 quoting (only where needed) and CRLF rows. After the
/// fixed columns, one column per field label, in the order labels first appear.
#[must_use]
pub(crate) fn render(requests: &[Request], schedule: &BatchSchedule, now: DateTime<Utc>) -> String {
    let mut labels: Vec<&str> = Vec::new();
    for r in requests {
        for (label, _) in &r.form.summary {
            if !labels.contains(&label.as_str()) {
                labels.push(label);
            }
        }
    }
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::from("\u{feff}".as_bytes()));
    let mut row = |cells: Vec<String>| {
        // Writing into a Vec cannot fail, and every row has the header's width.
        let _ = writer.write_record(cells.iter().map(|c| defuse(c).into_owned()));
    };
    row(HEADER
        .iter()
        .copied()
        .chain(labels.iter().copied())
        .map(str::to_owned)
        .collect());
    for r in requests {
        let handled = r.handled();
        let notes = r
            .notes
            .iter()
            .map(|n| format!("{}: {}", n.by, n.text))
            .collect::<Vec<_>>()
            .join("; ");
        let mut cells = vec![
            r.id.to_string(),
            r.form.service.to_string(),
            r.form.service_name.clone(),
            r.form.team.label().to_owned(),
            r.form.routing.label().to_owned(),
            r.form.requester.channel.as_str().to_owned(),
            r.form.requester.user.to_string(),
            r.contact
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            r.contact
                .as_ref()
                .map(|c| c.departments.join("、"))
                .unwrap_or_default(),
            r.seller_account().unwrap_or_default().to_owned(),
            r.status().label().to_owned(),
            if r.is_overdue(schedule, now) {
                "逾期"
            } else {
                ""
            }
            .to_owned(),
            r.batch.to_string(),
            local_time(schedule, r.submitted_at, "%Y-%m-%d %H:%M:%S"),
            handled.map(|c| c.by.clone()).unwrap_or_default(),
            handled
                .map(|c| local_time(schedule, c.at, "%Y-%m-%d %H:%M:%S"))
                .unwrap_or_default(),
            r.history
                .last()
                .and_then(|c| c.note.clone())
                .unwrap_or_default(),
            notes,
        ];
        cells.extend(labels.iter().map(|label| {
            r.form
                .summary
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        }));
        row(cells);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    // Every cell went in as `&str`, so the file is UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

/// The batch days of `from`/`to` (either alone is one day), or `None` when neither is given.
fn range(query: &BatchQuery) -> Result<Option<(BatchDay, BatchDay)>, FilterError> {
    let day = |raw: &Option<String>| {
        raw.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_day)
            .transpose()
    };
    let (from, to) = (day(&query.from)?, day(&query.to)?);
    let (from, to) = match (from, to) {
        (None, None) => return Ok(None),
        (Some(d), None) | (None, Some(d)) => (d, d),
        (Some(from), Some(to)) => (from, to),
    };
    if to < from || (to.0 - from.0).num_days() >= MAX_RANGE_DAYS {
        return Err(FilterError::Range);
    }
    Ok(Some((from, to)))
}

/// The rows of the export: each day of the range, or the listing the page shows.
async fn rows(
    state: &ConsoleState,
    session: &ConsoleSession,
    query: &BatchQuery,
    now: DateTime<Utc>,
) -> Result<Result<(Vec<Request>, String), FilterError>, LedgerError> {
    let view = match query.check(&state.schedule, now, true) {
        Ok(view) => view,
        Err(e) => return Ok(Err(e)),
    };
    let range = match range(query) {
        Ok(range) => range,
        Err(e) => return Ok(Err(e)),
    };
    let Some((from, to)) = range else {
        let name = view
            .day()
            .map_or_else(|| "open".to_owned(), |d| d.to_string());
        return Ok(Ok((
            visible_batch(state, &session.handler, &view, now).await?,
            name,
        )));
    };
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        let one = BatchView {
            listing: Listing::Day(day),
            ..view.clone()
        };
        out.extend(visible_batch(state, &session.handler, &one, now).await?);
        match day.0.succ_opt() {
            Some(next) => day = BatchDay(next),
            None => break,
        }
    }
    let name = if from == to {
        from.to_string()
    } else {
        format!("{from}_{to}")
    };
    Ok(Ok((out, name)))
}

pub(crate) async fn export(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
    peer: Peer,
    query: Result<Query<BatchQuery>, QueryRejection>,
) -> Response {
    let now = Utc::now();
    let result = match query {
        Ok(Query(q)) => rows(&state, &session, &q, now).await,
        Err(_) => Ok(Err(FilterError::Day)),
    };
    let (requests, name) = match result {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            log_refusal(400, &e.to_string(), "/console/export.csv", &peer);
            return html::message_page(
                StatusCode::BAD_REQUEST,
                Some(&session),
                "筛选条件有误",
                e.chinese(),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "console: export failed");
            return html::unavailable();
        }
    };
    tracing::info!(listing = %name, rows = requests.len(), handler = %session.handler.name, "requests exported");
    let mut response = render(&requests, &state.schedule, now).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"kaitong-{name}.csv\""))
    {
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
        let text = render(&[], &schedule, chrono::Utc::now());
        assert_eq!(
            text,
            "\u{feff}单号,服务编号,服务,处理组,办理渠道,申请渠道,申请人,申请人姓名,部门,卖家账号,状态,逾期,批次,提交时间,处理人,处理时间,原因/说明,备注\r\n"
        );
    }
}
