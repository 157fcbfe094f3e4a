//! The team lead's page (`/console/dashboard`): requests per day by team over the last 30
//! batch days, the share handled by the promised time per team, open and overdue now, and the
//! most requested services — as SVG drawn on the server (no script, no CDN), sized by its
//! `viewBox` so it fits a phone.
//!
//! `Dashboard::build` is pure (requests and the clock in, numbers out); the handler reads the
//! ledger through the desk; the rest is drawing.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Days, Utc};
use maud::{Markup, html};

use super::display::TEAMS;
use super::failure::{OnPage, PageFailure};
use super::html::{html_response, layout};
use super::listing::{BatchView, Listing, visible_batch};
use super::session::ConsoleSession;
use super::state::ConsoleState;
use crate::catalog::Team;
use crate::requests::{BatchDay, BatchSchedule, Request};

/// Batch days the per-day chart and the shares cover.
pub(crate) const DAYS: usize = 30;
/// Services in the top list.
const TOP_SERVICES: usize = 8;
/// One colour per team, in `TEAMS` order; readable on white and told apart by the legend.
const TEAM_COLOURS: [&str; 4] = ["#1f4e8c", "#1a7f37", "#b35900", "#8250df"];

/// One team's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TeamRow {
    pub team: Team,
    /// Filed in the window.
    pub filed: usize,
    /// Of those with a promised time, handled (done or rejected) by now.
    pub handled: usize,
    /// Of the handled ones, by their promised time.
    pub on_time: usize,
    /// Open now (any day).
    pub open: usize,
    /// Open past the promised time now.
    pub overdue: usize,
}

impl TeamRow {
    /// Percent handled on time, `None` when nothing with a promised time was handled.
    pub fn on_time_percent(&self) -> Option<usize> {
        (self.handled > 0).then(|| self.on_time * 100 / self.handled)
    }
}

/// What the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dashboard {
    /// The window's batch days, oldest first, each with its count per team (`TEAMS` order).
    pub per_day: Vec<(BatchDay, [usize; 4])>,
    /// The teams the handler sees.
    pub teams: Vec<TeamRow>,
    /// The most requested services in the window: "#7 电子发票" and its count.
    pub top_services: Vec<(String, usize)>,
}

fn team_index(team: Team) -> usize {
    TEAMS.iter().position(|t| *t == team).unwrap_or(0)
}

impl Dashboard {
    /// The numbers from the window's requests (`recent`, any status) and the open queue.
    pub fn build(
        schedule: &BatchSchedule,
        now: DateTime<Utc>,
        teams: &[Team],
        recent: &[Request],
        open: &[Request],
    ) -> Self {
        let last = BatchDay(schedule.local_date(now));
        let per_day: Vec<(BatchDay, [usize; 4])> = (0..DAYS)
            .rev()
            .filter_map(|back| last.0.checked_sub_days(Days::new(back as u64)))
            .map(|date| {
                let day = BatchDay(date);
                let mut counts = [0; 4];
                for r in recent.iter().filter(|r| r.batch == day) {
                    counts[team_index(r.form.team)] += 1;
                }
                (day, counts)
            })
            .collect();
        let rows = teams
            .iter()
            .map(|&team| {
                let mine = || recent.iter().filter(move |r| r.form.team == team);
                let handled: Vec<bool> =
                    mine().filter_map(|r| r.handled_on_time(schedule)).collect();
                let open_now = || open.iter().filter(move |r| r.form.team == team);
                TeamRow {
                    team,
                    filed: mine().count(),
                    handled: handled.len(),
                    on_time: handled.iter().filter(|on_time| **on_time).count(),
                    open: open_now().count(),
                    overdue: open_now().filter(|r| r.is_overdue(schedule, now)).count(),
                }
            })
            .collect();
        let mut services: BTreeMap<String, usize> = BTreeMap::new();
        for r in recent {
            *services
                .entry(format!("#{} {}", r.form.service, r.form.service_name))
                .or_default() += 1;
        }
        let mut top_services: Vec<(String, usize)> = services.into_iter().collect();
        top_services.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top_services.truncate(TOP_SERVICES);
        Self {
            per_day,
            teams: rows,
            top_services,
        }
    }
}

pub(crate) async fn page(
    State(state): State<ConsoleState>,
    session: ConsoleSession,
) -> Result<Response, PageFailure> {
    let now = Utc::now();
    let schedule = &state.schedule;
    let teams: Vec<Team> = TEAMS
        .into_iter()
        .filter(|t| session.handler.scope.covers(*t))
        .collect();
    let last = schedule.local_date(now);
    // The window's batch days, one listing each, scoped to the handler's teams.
    let mut recent = Vec::new();
    for back in 0..DAYS {
        let Some(date) = last.checked_sub_days(Days::new(back as u64)) else {
            continue;
        };
        let view = BatchView {
            listing: Listing::Day(BatchDay(date)),
            status: None,
            team: None,
            search: None,
        };
        recent.extend(
            visible_batch(&state, &session.handler, &view, now)
                .await
                .on(&session)?,
        );
    }
    let queue = BatchView {
        listing: Listing::Open {
            overdue_only: false,
        },
        status: None,
        team: None,
        search: None,
    };
    let open = visible_batch(&state, &session.handler, &queue, now)
        .await
        .on(&session)?;
    let dashboard = Dashboard::build(schedule, now, &teams, &recent, &open);
    let body = html! {
        h1 { "看板" }
        p class="muted" { "最近 " (DAYS) " 天（按批次日期），截至 " (super::display::local_time(schedule, now, "%m-%d %H:%M")) }
        h2 { "现在待处理" }
        (now_table(&dashboard))
        h2 { "每天申请数（按处理组）" }
        (legend(&teams))
        (per_day_chart(&dashboard, &teams))
        h2 { "按时处理率" }
        p class="muted" { "已完成或已驳回的申请中，在承诺时间（批次 " (schedule.done_by.format("%H:%M")) "）前处理的比例；OA、邮件类没有承诺时间，不计入。" }
        (on_time_chart(&dashboard))
        h2 { "申请最多的服务" }
        (services_chart(&dashboard))
    };
    Ok(html_response(
        StatusCode::OK,
        layout("看板", Some(&session), None, body),
    ))
}

/// Open and overdue now, one row per team, each number a link to that list.
fn now_table(d: &Dashboard) -> Markup {
    html! {
        div class="card" { table {
            tr { th { "处理组" } th { "待处理" } th { "逾期" } }
            @for row in &d.teams {
                tr {
                    td { (row.team.label()) }
                    td { a href={ "/console?team=" (row.team.key()) } { (row.open) } }
                    td {
                        @if row.overdue > 0 {
                            a href={ "/console?overdue=1&team=" (row.team.key()) } {
                                span class="badge s-rejected" { (row.overdue) }
                            }
                        } @else { "0" }
                    }
                }
            }
        } }
    }
}

fn legend(teams: &[Team]) -> Markup {
    html! {
        div class="counts" {
            @for team in teams {
                span class="badge" style={ "background:" (TEAM_COLOURS[team_index(*team)]) ";color:#fff" } {
                    (team.label())
                }
            }
        }
    }
}

/// One drawn rectangle of the per-day chart.
struct Segment {
    x: usize,
    y: usize,
    height: usize,
    colour: &'static str,
    title: String,
}

/// Stacked columns, one per batch day; the day's total above each non-empty column.
fn per_day_chart(d: &Dashboard, teams: &[Team]) -> Markup {
    // A phone-sized drawing: its text is legible at a phone's width, and `max-width` keeps it
    // from growing into a poster on a desktop.
    const W: usize = 360;
    const H: usize = 180;
    const TOP: usize = 14;
    const BOTTOM: usize = 20;
    let max = d
        .per_day
        .iter()
        .map(|(_, c)| c.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = H - TOP - BOTTOM;
    let slot = W / d.per_day.len().max(1);
    let bar = slot.saturating_sub(4).max(2);
    let mut segments = Vec::new();
    // (centre x, top y, total) of each non-empty column, and the dates under the axis.
    let mut totals = Vec::new();
    let mut dates = Vec::new();
    for (i, (day, counts)) in d.per_day.iter().enumerate() {
        let x = i * slot + 2;
        let mut y = H - BOTTOM;
        for team in teams {
            let n = counts[team_index(*team)];
            if n == 0 {
                continue;
            }
            let height = (n * plot).div_ceil(max);
            y -= height;
            segments.push(Segment {
                x,
                y,
                height,
                colour: TEAM_COLOURS[team_index(*team)],
                title: format!("{day} {} {n}", team.label()),
            });
        }
        let total: usize = teams.iter().map(|t| counts[team_index(*t)]).sum();
        if total > 0 {
            totals.push((x + bar / 2, y.saturating_sub(4), total));
        }
        // Every 7th day's date, counted back from today so today is always named; the ends
        // anchored inward so no date is cut off at the edge.
        let from_end = d.per_day.len() - 1 - i;
        if from_end.is_multiple_of(7) {
            let anchor = if i == 0 {
                ("start", x)
            } else if from_end == 0 {
                ("end", x + bar)
            } else {
                ("middle", x + bar / 2)
            };
            dates.push((anchor.1, anchor.0, day.0.format("%m-%d").to_string()));
        }
    }
    html! {
        div class="card" {
            svg class="chart" viewBox={ "0 0 " (W) " " (H) } width="100%" role="img"
                style="max-width:720px;display:block" aria-label="每天申请数（按处理组）" {
                line x1="0" y1=(H - BOTTOM) x2=(W) y2=(H - BOTTOM) stroke="#c5cbd3" {}
                @for s in &segments {
                    rect x=(s.x) y=(s.y) width=(bar) height=(s.height) fill=(s.colour) {
                        title { (s.title) }
                    }
                }
                @for (x, y, total) in &totals {
                    text x=(x) y=(y) font-size="9" text-anchor="middle" fill="#1f2328" { (total) }
                }
                @for (x, anchor, date) in &dates {
                    text x=(x) y=(H - 5) font-size="11" text-anchor=(anchor) fill="#656d76" { (date) }
                }
            }
        }
    }
}

/// One horizontal bar per row: the label on its own line (names are long), the bar under it
/// and the value written after the bar.
fn bars(rows: &[(String, usize, String)], max: usize, label: &str) -> Markup {
    const W: usize = 360;
    const ROW: usize = 42;
    const VALUE: usize = 96;
    let h = (rows.len() * ROW).max(ROW);
    let max = max.max(1);
    let span = W - VALUE;
    html! {
        div class="card" {
            @if rows.is_empty() {
                p class="muted" { "暂无数据" }
            } @else {
                svg class="chart" viewBox={ "0 0 " (W) " " (h) } width="100%" role="img"
                    style="max-width:540px;display:block" aria-label=(label) {
                    @for (i, (name, n, shown)) in rows.iter().enumerate() {
                        @let y = i * ROW;
                        @let width = ((n * span) / max).max(usize::from(*n > 0) * 2);
                        text x="0" y=(y + 14) font-size="13" fill="#1f2328" { (name) }
                        rect x="0" y=(y + 20) width=(width) height="14" rx="3" fill="#1f4e8c" {}
                        text x=(width + 6) y=(y + 32) font-size="13" fill="#1f2328" { (shown) }
                    }
                }
            }
        }
    }
}

fn on_time_chart(d: &Dashboard) -> Markup {
    let rows: Vec<(String, usize, String)> = d
        .teams
        .iter()
        .map(|row| match row.on_time_percent() {
            Some(p) => (
                row.team.label().to_owned(),
                p,
                format!("{p}% · {}/{}", row.on_time, row.handled),
            ),
            None => (row.team.label().to_owned(), 0, "—".to_owned()),
        })
        .collect();
    bars(&rows, 100, "按时处理率")
}

fn services_chart(d: &Dashboard) -> Markup {
    let max = d.top_services.first().map_or(0, |(_, n)| *n);
    let rows: Vec<(String, usize, String)> = d
        .top_services
        .iter()
        .map(|(name, n)| {
            // The name has a line of its own, wide enough for any service's name.
            (name.clone(), *n, n.to_string())
        })
        .collect();
    bars(&rows, max, "申请最多的服务")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::catalog::{Answers, FilingRoute, Window};
    use crate::domain::{ChannelKind, Conversation, RequestId, ServiceId, UserId};
    use crate::requests::{FiledForm, Requester, Status, StatusChange};
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 11, d, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn request(
        n: u32,
        team: Team,
        service: u16,
        filed: DateTime<Utc>,
        handled: Option<(Status, DateTime<Utc>)>,
    ) -> Request {
        let schedule = BatchSchedule::default();
        let mut history = vec![StatusChange {
            status: Status::Submitted,
            at: filed,
            by: "u".into(),
            note: None,
        }];
        if let Some((status, when)) = handled {
            history.push(StatusChange {
                status,
                at: when,
                by: "h".into(),
                note: None,
            });
        }
        let form = FiledForm {
            form_id: format!("f{n}"),
            service: ServiceId(service),
            service_name: format!("服务{service}"),
            team,
            routing: FilingRoute::ResourcePlatform,
            window: Window::DailyBatch,
            answers: Answers::new(),
            summary: Vec::new(),
            requester: Requester {
                user: UserId::parse("u").unwrap(),
                channel: ChannelKind::App,
                conversation: Conversation::Direct,
            },
            resubmit_of: None,
        };
        // As stored: fields a later version adds take their defaults.
        serde_json::from_value(serde_json::json!({
            "id": RequestId::parse(&format!("KT-20261101-{n:04}")).unwrap(),
            "form": form,
            "submitted_at": filed,
            "batch": schedule.batch_for(filed),
            "history": history,
        }))
        .unwrap()
    }

    #[test]
    fn the_numbers_count_per_day_by_team_on_time_shares_open_overdue_and_top_services() {
        let schedule = BatchSchedule::default();
        let now = at(28, 12);
        let recent = vec![
            // Filed the 27th, done at 17:00: on time.
            request(
                1,
                Team::Rnd,
                7,
                at(27, 10),
                Some((Status::Done, at(27, 17))),
            ),
            // Filed the 27th, rejected the 28th: late.
            request(
                2,
                Team::Rnd,
                7,
                at(27, 11),
                Some((Status::Rejected, at(28, 9))),
            ),
            // Filed the 27th, still open: overdue.
            request(3, Team::Ops, 9, at(27, 12), None),
            // Filed today, open: not yet due.
            request(4, Team::Ops, 7, at(28, 10), None),
        ];
        let open: Vec<Request> = recent.iter().filter(|r| r.is_open()).cloned().collect();
        let teams = [Team::Rnd, Team::Ops];
        let d = Dashboard::build(&schedule, now, &teams, &recent, &open);
        assert_eq!(d.per_day.len(), DAYS);
        let (last_day, today) = d.per_day[DAYS - 1];
        assert_eq!(last_day.to_string(), "2026-11-28");
        assert_eq!(today, [0, 1, 0, 0], "TEAMS order: rnd, ops, …");
        assert_eq!(d.per_day[DAYS - 2].1, [2, 1, 0, 0]);
        assert_eq!(
            d.teams[0],
            TeamRow {
                team: Team::Rnd,
                filed: 2,
                handled: 2,
                on_time: 1,
                open: 0,
                overdue: 0
            }
        );
        assert_eq!(d.teams[0].on_time_percent(), Some(50));
        assert_eq!(
            d.teams[1],
            TeamRow {
                team: Team::Ops,
                filed: 2,
                handled: 0,
                on_time: 0,
                open: 2,
                overdue: 1
            }
        );
        assert_eq!(d.teams[1].on_time_percent(), None);
        assert_eq!(
            d.top_services,
            vec![("#7 服务7".to_owned(), 3), ("#9 服务9".to_owned(), 1)]
        );
    }

    #[test]
    fn the_charts_are_svg_sized_by_their_view_box_with_every_value_written() {
        let schedule = BatchSchedule::default();
        let now = at(28, 12);
        let recent = vec![request(
            1,
            Team::Rnd,
            7,
            at(27, 10),
            Some((Status::Done, at(27, 17))),
        )];
        let d = Dashboard::build(&schedule, now, &[Team::Rnd], &recent, &[]);
        let chart = per_day_chart(&d, &[Team::Rnd]).into_string();
        assert!(chart.contains("viewBox=\"0 0 360 180\"") && chart.contains("width=\"100%\""));
        assert!(chart.contains("2026-11-27 产研 1"), "{chart}");
        let shares = on_time_chart(&d).into_string();
        assert!(shares.contains("100% · 1/1"), "{shares}");
    }
}
