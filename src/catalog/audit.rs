//! `kaitong-dev catalog audit`: the catalog against the seed, row by row. The seed is the only
//! source of what the bot may promise; every channel, team, handler, window, address, choice
//! list and cap the catalog holds is either found in the seed's row or marked in the data as an
//! assumption (`[[assumed]]` in the service file) with a note saying why. Pure: the caller reads
//! the seed file and prints the report.

use crate::domain::ServiceId;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;

use super::loaded::Catalog;
use super::model::{AssumedValue, Assumption, FieldKind, FilingRoute, Service, Team, Window};

/// Where the seed says a request goes (its 申请渠道 column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedChannel {
    ResourcePlatform,
    OaTicket,
    Email,
}

impl SeedChannel {
    fn label(self) -> &'static str {
        match self {
            SeedChannel::ResourcePlatform => "资源管理系统",
            SeedChannel::OaTicket => "OA 工单",
            SeedChannel::Email => "邮件",
        }
    }

    fn of(channel: &FilingRoute) -> Self {
        match channel {
            FilingRoute::ResourcePlatform => SeedChannel::ResourcePlatform,
            FilingRoute::OaTicket => SeedChannel::OaTicket,
            FilingRoute::Email { .. } => SeedChannel::Email,
        }
    }
}

/// The channel column's words, in the seed's spelling. The earliest one in a row is its
/// channel ("提OA工单" comes before the notes' "走邮件申请流程" in row 1).
const CHANNEL_WORDS: &[(&str, SeedChannel)] = &[
    ("资源管理系统", SeedChannel::ResourcePlatform),
    ("提OA工单", SeedChannel::OaTicket),
    ("OA提交工单", SeedChannel::OaTicket),
    ("邮件申请", SeedChannel::Email),
];

/// The team words of the 处理人 column.
const TEAM_WORDS: &[(&str, Team)] = &[
    ("产研", Team::Rnd),
    ("职能组", Team::Functional),
    ("运维", Team::Ops),
];

/// Promises a text can make that must come from the seed: durations, e-mail addresses, links.
static PROMISE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\d+\s*[~～\-]\s*\d+\s*个?工作日|\d+\s*个?(?:工作日|小时)|[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}|https?://[^\s，,;；)）]+",
    )
    .unwrap_or_else(|_| unreachable!("the promise pattern is a valid regex"))
});

/// A number as the seed writes it: "300", "1w", "3万".
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\d+)\s*([wW万])?")
        .unwrap_or_else(|_| unreachable!("the number pattern is a valid regex"))
});

/// Layout differences (line breaks, full- and half-width punctuation) do not count: the
/// catalog's own width folding (NFKC), then no whitespace, lower case.
fn norm(s: &str) -> String {
    super::value::normalize_width(s)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// The seed's table rows by number: the text after "N ", continuation lines included. A row
/// starts with its number in sequence, so "202" ending row 83 or "2." inside notes never does.
#[must_use]
pub fn seed_rows(seed: &str) -> BTreeMap<u16, String> {
    let mut rows: BTreeMap<u16, String> = BTreeMap::new();
    let mut next: u16 = 1;
    let mut current: Option<u16> = None;
    let mut in_table = false;
    for line in seed.lines() {
        if line.starts_with("序号") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if let Some(rest) = line.strip_prefix(&format!("{next} ")) {
            rows.insert(next, rest.to_owned());
            current = Some(next);
            next += 1;
        } else if let Some(row) = current.and_then(|n| rows.get_mut(&n)) {
            row.push('\n');
            row.push_str(line);
        }
    }
    rows
}

/// The row's channel and the byte offset where its word starts.
fn channel_of(row: &str) -> Option<(SeedChannel, usize)> {
    CHANNEL_WORDS
        .iter()
        .filter_map(|(word, ch)| row.find(word).map(|at| (*ch, at)))
        .min_by_key(|(_, at)| *at)
}

/// The 处理人 column: the team word right after the channel's word, when there is one.
fn handler_column(row: &str) -> Option<Team> {
    let (_, at) = channel_of(row)?;
    let after_channel = &row[at..];
    let token_end = after_channel
        .find(char::is_whitespace)
        .unwrap_or(after_channel.len());
    let next = after_channel[token_end..].split_whitespace().next()?;
    TEAM_WORDS.iter().find(|(w, _)| *w == next).map(|(_, t)| *t)
}

/// Numbers the seed row states, with "1w" read as 10000.
fn seed_numbers(row: &str) -> Vec<i64> {
    NUMBER
        .captures_iter(row)
        .filter_map(|c| {
            let n: i64 = c.get(1)?.as_str().parse().ok()?;
            Some(if c.get(2).is_some() {
                n.saturating_mul(10_000)
            } else {
                n
            })
        })
        .collect()
}

/// One service against its row.
#[derive(Debug, Clone)]
pub struct RowAudit {
    pub id: ServiceId,
    pub name: String,
    pub seed_channel: String,
    pub catalog_channel: String,
    pub channel_agrees: bool,
    pub seed_handler: String,
    pub catalog_handler: String,
    pub handler_agrees: bool,
    /// `seed_notes` is the end of the row, verbatim.
    pub notes_agree: bool,
    pub assumptions: Vec<Assumption>,
    /// Values neither in the seed nor marked as assumed.
    pub unmarked: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    pub rows: Vec<RowAudit>,
    /// Seed rows no service file covers.
    pub uncovered: Vec<u16>,
}

impl Audit {
    /// Every unmarked value, as "#N: what".
    #[must_use]
    pub fn unmarked(&self) -> Vec<String> {
        let rows = self
            .rows
            .iter()
            .flat_map(|r| r.unmarked.iter().map(move |u| format!("#{}: {u}", r.id)));
        let uncovered = self
            .uncovered
            .iter()
            .map(|n| format!("#{n}: seed row has no service file"));
        rows.chain(uncovered).collect()
    }

    /// Nothing the catalog holds is absent from the seed without being marked.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.unmarked().is_empty()
    }
}

/// Audits every service of `catalog` against `seed` (the seed file's text).
#[must_use]
pub fn audit(catalog: &Catalog, seed: &str) -> Audit {
    let rows = seed_rows(seed);
    let mut out = Audit::default();
    for service in catalog.services() {
        out.rows
            .push(audit_service(service, rows.get(&service.id.get())));
    }
    out.uncovered = rows
        .keys()
        .filter(|n| catalog.service(ServiceId(**n)).is_none())
        .copied()
        .collect();
    out
}

fn audit_service(s: &Service, row: Option<&String>) -> RowAudit {
    let mut findings = Findings {
        service: s,
        unmarked: Vec::new(),
    };
    let catalog_channel = s.route.label();
    let mut catalog_handler = s.team.label().to_owned();
    if let Some(h) = &s.handler {
        let _ = write!(catalog_handler, " · {h}");
    }
    let Some(row) = row else {
        findings.flag(AssumedValue::Route, "the seed has no such row".into());
        return RowAudit {
            id: s.id,
            name: s.name.clone(),
            seed_channel: "—".into(),
            catalog_channel,
            channel_agrees: false,
            seed_handler: "—".into(),
            catalog_handler,
            handler_agrees: false,
            notes_agree: false,
            assumptions: s.assumed.clone(),
            unmarked: findings.unmarked,
        };
    };
    let text = norm(row);
    let seed_channel = channel_of(row).map(|(c, _)| c);
    let channel_agrees = findings.route(seed_channel, &text);
    let (seed_handler, handler_agrees) = findings.handler(row, &text);
    findings.window(&text);
    findings.wording(&text);
    findings.field_lists(row, &text);
    RowAudit {
        id: s.id,
        name: s.name.clone(),
        seed_channel: seed_channel.map_or("—", SeedChannel::label).to_owned(),
        catalog_channel,
        channel_agrees,
        seed_handler,
        catalog_handler,
        handler_agrees,
        notes_agree: text.ends_with(&norm(&s.seed_notes)),
        assumptions: s.assumed.clone(),
        unmarked: findings.unmarked,
    }
}

/// What one service says that its seed row does not, and is not marked as assumed. Each
/// method audits one part of the service against `text`, the row normalised by [`norm`].
struct Findings<'a> {
    service: &'a Service,
    unmarked: Vec<String>,
}

impl Findings<'_> {
    /// Notes `finding` about `what` unless the service marks `what` as assumed.
    fn flag(&mut self, what: AssumedValue, finding: String) {
        if !self.service.is_assumed(&what) {
            self.unmarked.push(format!("{what}: {finding}"));
        }
    }

    /// Filing route: whether the seed's channel is the catalog's.
    fn route(&mut self, seed_channel: Option<SeedChannel>, text: &str) -> bool {
        let s = self.service;
        let channel_agrees = seed_channel == Some(SeedChannel::of(&s.route));
        if !channel_agrees {
            let catalog_channel = s.route.label();
            self.flag(
                AssumedValue::Route,
                format!("{catalog_channel} is not the seed's channel"),
            );
        }
        if let FilingRoute::Email {
            address: Some(address),
        } = &s.route
            && !text.contains(&norm(address))
        {
            self.flag(
                AssumedValue::RouteAddress,
                format!("{address} is not in the seed's row"),
            );
        }
        channel_agrees
    }

    /// Team and handler: the seed's handler as shown, and whether the catalog agrees.
    fn handler(&mut self, row: &str, text: &str) -> (String, bool) {
        let s = self.service;
        let column = handler_column(row);
        let team_agrees = match (s.team, column) {
            (Team::Mailbox, _) => matches!(
                &s.route,
                FilingRoute::Email { address: Some(a) } if text.contains(&norm(a))
            ),
            (team, Some(col)) => team == col,
            (team, None) => text.contains(team.label()),
        };
        if !team_agrees {
            self.flag(
                AssumedValue::Team,
                format!("{} is not the seed's handler", s.team.label()),
            );
        }
        let person_agrees = s.handler.as_ref().is_none_or(|h| text.contains(&norm(h)));
        if let Some(h) = &s.handler
            && !person_agrees
        {
            self.flag(
                AssumedValue::Handler,
                format!("{h} is not in the seed's row"),
            );
        }
        (seed_handler(s, column, text), team_agrees && person_agrees)
    }

    /// Window: its promises, and any team it names, come from the seed.
    fn window(&mut self, text: &str) {
        let Window::Custom(window) = &self.service.window else {
            return;
        };
        for m in PROMISE.find_iter(window) {
            if !text.contains(&norm(m.as_str())) {
                self.flag(
                    AssumedValue::Window,
                    format!("\"{}\" is not in the seed's row", m.as_str()),
                );
            }
        }
        for (word, _) in TEAM_WORDS {
            if window.contains(word) && !text.contains(word) {
                self.flag(
                    AssumedValue::Window,
                    format!("names {word}, the seed's row does not"),
                );
            }
        }
    }

    /// Wording: what notes, preconditions, warnings and outcomes promise.
    fn wording(&mut self, text: &str) {
        let s = self.service;
        let wording = s
            .notes
            .iter()
            .chain(&s.preconditions)
            .chain(&s.warnings)
            .chain(s.refusals.iter().map(|r| &r.message))
            .chain(s.guidance.iter().map(|g| &g.message));
        for t in wording {
            for m in PROMISE.find_iter(t) {
                if !text.contains(&norm(m.as_str())) {
                    self.flag(
                        AssumedValue::Notes,
                        format!("\"{}\" is not in the seed's row", m.as_str()),
                    );
                }
            }
        }
    }

    /// Field choice lists and caps.
    fn field_lists(&mut self, row: &str, text: &str) {
        let numbers = seed_numbers(row);
        for f in &self.service.fields {
            match &f.spec.kind {
                FieldKind::SingleChoice { options } | FieldKind::MultiChoice { options } => {
                    let missing: Vec<&str> = options
                        .iter()
                        .filter(|o| !text.contains(&norm(o)))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        self.flag(
                            AssumedValue::Options(f.key().clone()),
                            format!("{} not in the seed's row", missing.join("、")),
                        );
                    }
                }
                FieldKind::Integer {
                    max,
                    default,
                    allowed,
                    ..
                } => {
                    let missing: Vec<String> = max
                        .iter()
                        .chain(default)
                        .chain(allowed)
                        .filter(|n| !numbers.contains(n))
                        .map(i64::to_string)
                        .collect();
                    if !missing.is_empty() {
                        self.flag(
                            AssumedValue::Cap(f.key().clone()),
                            format!("{} not in the seed's row", missing.join("/")),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// The seed's handler as the report shows it: its handler column (or the teams the row
/// mentions), then the catalog's person when the row names them; "—" when nothing.
fn seed_handler(s: &Service, column: Option<Team>, text: &str) -> String {
    let mentioned: Vec<&str> = TEAM_WORDS
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| text.contains(w))
        .collect();
    let mut seed_handler = match column {
        Some(t) => t.label().to_owned(),
        None if mentioned.is_empty() => String::new(),
        None => format!("({} 见于行内)", mentioned.join("、")),
    };
    if let Some(h) = s.handler.as_ref().filter(|h| text.contains(&norm(h))) {
        if !seed_handler.is_empty() {
            seed_handler.push_str(" · ");
        }
        seed_handler.push_str(h);
    }
    if seed_handler.is_empty() {
        seed_handler = "—".into();
    }
    seed_handler
}

/// The report `kaitong-dev catalog audit` prints: one line per row, then its assumptions and
/// anything unmarked, then a total.
#[must_use]
pub fn render_audit(audit: &Audit) -> String {
    let mut o = String::new();
    for r in &audit.rows {
        // ✓ the seed says so; ≠ 假设 the data marks the difference; ✗ nobody did.
        let mark = |agrees: bool, marked: &[AssumedValue]| {
            if agrees {
                "✓"
            } else if r.assumptions.iter().any(|a| marked.contains(&a.what)) {
                "≠ 假设"
            } else {
                "✗"
            }
        };
        let _ = writeln!(
            o,
            "#{} {} | 渠道 seed: {} · catalog: {} {} | 处理人 seed: {} · catalog: {} {} | 备注 {}",
            r.id,
            r.name,
            r.seed_channel,
            r.catalog_channel,
            mark(r.channel_agrees, &[AssumedValue::Route]),
            r.seed_handler,
            r.catalog_handler,
            mark(
                r.handler_agrees,
                &[AssumedValue::Team, AssumedValue::Handler]
            ),
            if r.notes_agree { "一致" } else { "不一致" },
        );
        for a in &r.assumptions {
            let _ = writeln!(o, "    假设 {}: {}", a.what, a.note);
        }
        for u in &r.unmarked {
            let _ = writeln!(o, "    ✗ 未标注 {u}");
        }
    }
    for n in &audit.uncovered {
        let _ = writeln!(o, "#{n} ✗ seed row has no service file");
    }
    let assumptions: usize = audit.rows.iter().map(|r| r.assumptions.len()).sum();
    let unmarked = audit.unmarked().len();
    let _ = writeln!(
        o,
        "audit: {} rows, {assumptions} assumptions, {unmarked} unmarked",
        audit.rows.len()
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_and_handler_columns_are_read_from_a_row() {
        let row = "电子发票 卖家账号\n申请原因\n资源管理系统 职能组 2021年4月16日起已转至资源管理系统进行申请";
        assert_eq!(
            channel_of(row).map(|(c, _)| c),
            Some(SeedChannel::ResourcePlatform)
        );
        assert_eq!(handler_column(row), Some(Team::Functional));
        let oa = "续费充值单量 卖家账号\n申请原因\n提OA工单 通过OA开库工单标明对应充值单量即可。\n如有特殊情况,走邮件申请流程。";
        assert_eq!(channel_of(oa).map(|(c, _)| c), Some(SeedChannel::OaTicket));
        assert_eq!(handler_column(oa), None);
        let after = "唯品会jit店铺配置 卖家账号\n授权之后资源管理系统申请 产研 注:…";
        assert_eq!(handler_column(after), Some(Team::Rnd));
    }

    #[test]
    fn seed_numbers_read_ten_thousands() {
        assert_eq!(
            seed_numbers("必须上传免责声明,说明调整数量(默认1w上限3w)"),
            vec![10_000, 30_000]
        );
    }
}
