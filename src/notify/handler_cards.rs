//! The handlers' batch in WeCom: at the 16:00 cut-off each handler with a WeCom account gets
//! the batch of their team — an overview (count, the first items, the console link) and one
//! button card per request with 完成 / 驳回.
//!
//! One card per request, not one card for the batch: WeCom relabels *all* buttons of a clicked
//! card (`update_template_card` / `update_button`), so a shared card would look handled after
//! the first click. A card holds at most 6 buttons anyway. Only the first
//! [`MAX_REQUEST_CARDS`] requests get a card (a member receives at most 30 messages a minute
//! per app and a long run of cards buries the chat); the overview says how many more are in
//! the console. Everything goes through the outbox under `handler_card:{day}:{user}:…` keys,
//! so the once-a-day run ([`super::DailyJob`]) and a resend after a crash queue nothing twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::daily::{DayJob, DayJobError};
use super::delivery::{Delivery, Notice};
use super::outbox::Outbox;
use crate::catalog::MessageKey;
use crate::catalog::{CatalogHandle, Messages, Window};
use crate::domain::UserId;
use crate::requests::{
    BatchDay, BatchSchedule, DeskAction, Handler, HandlerDirectory, Ledger, Request, RequestFilter,
};
use crate::store::keys;
use crate::wecom::cards::{
    Button, ButtonInteraction, HorizontalContent, KEYNAME_CHARS, MAX_FIELDS, MainTitle,
    SOURCE_DESC_CHARS, SUB_TITLE_CHARS, TITLE_CHARS, TITLE_DESC_CHARS, TemplateCard, VALUE_CHARS,
    fits,
};

/// Requests per handler that get their own button card at the cut-off.
pub const MAX_REQUEST_CARDS: usize = 6;
/// Seconds between the overview and the cards.
const CARDS_AFTER_SECS: i64 = 2;
/// Requests named in the overview.
const OVERVIEW_LINES: usize = 5;

/// Queues the cut-off cards of a batch day.
pub struct HandlerCards {
    outbox: Outbox,
    catalog: CatalogHandle,
    ledger: Arc<dyn Ledger>,
    handlers: Vec<(Handler, UserId)>,
    /// The console's public address; empty = no link on the cards.
    console_url: String,
    schedule: BatchSchedule,
}

/// A task id for the card of `request` sent to `user` (`[0-9A-Za-z_-@]`, ≤ 128 bytes, unique
/// per app: one card per request and handler). A random tail keeps it unique when a request
/// number comes round again after the store was restored from a backup (WeCom refuses a
/// task id it has seen); the card is queued once, so its retries carry the same id.
fn task_id(request: &Request, user: &UserId) -> String {
    let user: String = user
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@'))
        .take(64)
        .collect();
    format!("kth_{}_{user}_{:08x}", request.id, rand::random::<u32>())
}

/// The button card for one request (`position` in the handler's batch), and the text sent
/// before it when the request does not fit on the card whole: a field WeCom would shorten (a
/// label over 5 characters, a value over 26) goes under the title, and when that is too long
/// too, every field is in the text. Nothing the handler reads is cut.
#[must_use]
pub fn request_card(
    messages: &Messages,
    request: &Request,
    user: &UserId,
    position: (usize, usize),
    console_url: &str,
    overdue: bool,
) -> (TemplateCard, Option<String>) {
    let service = format!("#{} {}", request.form.service, request.form.service_name);
    // The title names the service; a name too long for it is the first line below.
    let (title, name_line) = if fits(&service, TITLE_CHARS) {
        (service.clone(), None)
    } else {
        (format!("#{}", request.form.service), Some(service.as_str()))
    };
    let layout = CardLayout::of(messages, request, &service, name_line);
    let source = card_source(messages, position, overdue);
    let mut card = ButtonInteraction::new(
        &source,
        MainTitle::new(&title, &title_desc(request)),
        &task_id(request, user),
        card_buttons(messages, request),
    );
    if !layout.fields.is_empty() {
        card = card.with_fields(layout.fields);
    }
    if !layout.sub_title.is_empty() {
        card = card.with_sub_title(&layout.sub_title);
    }
    // The card opens the request's own page, not the list the handler would search.
    if !console_url.is_empty() {
        let page = format!("{console_url}/console/requests/{}", request.id);
        card = card.with_link(&page, messages.get(MessageKey::HandlerCardConsole));
    }
    (TemplateCard::ButtonInteraction(card), layout.before)
}

/// Where a request's summary goes: rows on the card, lines under the title, or a text sent
/// before the card.
struct CardLayout {
    fields: Vec<HorizontalContent>,
    sub_title: String,
    before: Option<String>,
}

impl CardLayout {
    /// Rows for the fields WeCom shows whole (up to [`MAX_FIELDS`]); the rest, after
    /// `name_line`, under the title when they fit there, else every field in the text before.
    fn of(messages: &Messages, request: &Request, service: &str, name_line: Option<&str>) -> Self {
        let line = |label: &str, value: &str| summary_line(messages, label, value);
        let (rows, others): (Vec<_>, Vec<_>) = request
            .form
            .summary
            .iter()
            .partition(|(label, value)| fits(label, KEYNAME_CHARS) && fits(value, VALUE_CHARS));
        let (rows, overflow) = rows.split_at(rows.len().min(MAX_FIELDS));
        let below: Vec<String> = name_line
            .map(str::to_owned)
            .into_iter()
            .chain(
                others
                    .iter()
                    .chain(overflow)
                    .map(|(label, value)| line(label, value)),
            )
            .collect();
        let below = below.join("\n");
        let (sub_title, before) = if fits(&below, SUB_TITLE_CHARS) {
            (below, None)
        } else {
            let details: Vec<String> = std::iter::once(format!("{} {service}", request.id))
                .chain(
                    request
                        .form
                        .summary
                        .iter()
                        .map(|(label, value)| line(label, value)),
                )
                .collect();
            let name = name_line
                .filter(|name| fits(name, SUB_TITLE_CHARS))
                .unwrap_or_default();
            (name.to_owned(), Some(details.join("\n")))
        };
        let fields = rows
            .iter()
            .map(|(label, value)| HorizontalContent::new(label, value))
            .collect();
        Self {
            fields,
            sub_title,
            before,
        }
    }
}

/// "label: value" as the summary writes it.
fn summary_line(messages: &Messages, label: &str, value: &str) -> String {
    messages.render(
        MessageKey::SummaryLine,
        &[("label", label), ("value", value)],
    )
}

/// The card's source line: its place in the batch, and whether it is overdue; the bare
/// "n/total" when the wording is too long for the line.
fn card_source(messages: &Messages, position: (usize, usize), overdue: bool) -> String {
    let source = messages.render(
        if overdue {
            MessageKey::HandlerCardSourceOverdue
        } else {
            MessageKey::HandlerCardSource
        },
        &[
            ("n", &position.0.to_string()),
            ("total", &position.1.to_string()),
        ],
    );
    if fits(&source, SOURCE_DESC_CHARS) {
        source
    } else {
        format!("{}/{}", position.0, position.1)
    }
}

/// 完成 and 驳回, keyed by the desk action they take on the request.
fn card_buttons(messages: &Messages, request: &Request) -> Vec<Button> {
    vec![
        Button::new(
            messages.get(MessageKey::HandlerCardDone),
            1,
            DeskAction::Complete(request.id.clone()).key(),
        ),
        Button::new(
            messages.get(MessageKey::HandlerCardReject),
            2,
            DeskAction::Reject(request.id.clone()).key(),
        ),
    ]
}

/// The grey line under the title: the number, and who asked when WeCom's contacts said
/// and it fits (else the number alone; the name is on the console's page).
fn title_desc(request: &Request) -> String {
    request
        .contact
        .as_ref()
        .map(|contact| format!("{} · {}", request.id, contact.label()))
        .filter(|desc| fits(desc, TITLE_DESC_CHARS))
        .or_else(|| {
            request
                .contact
                .as_ref()
                .map(|contact| format!("{} · {}", request.id, contact.name))
                .filter(|desc| fits(desc, TITLE_DESC_CHARS))
        })
        .unwrap_or_else(|| request.id.to_string())
}

impl HandlerCards {
    #[must_use]
    pub fn new(
        outbox: Outbox,
        catalog: CatalogHandle,
        ledger: Arc<dyn Ledger>,
        handlers: &HandlerDirectory,
        console_url: &str,
        schedule: BatchSchedule,
    ) -> Self {
        Self {
            outbox,
            catalog,
            ledger,
            handlers: handlers.in_wecom(),
            console_url: console_url.trim_end_matches('/').to_owned(),
            schedule,
        }
    }

    fn overview(
        &self,
        messages: &Messages,
        day: BatchDay,
        open: &[&Request],
        overdue: usize,
    ) -> String {
        let lines: String = open
            .iter()
            .take(OVERVIEW_LINES)
            .map(|r| {
                messages.render(
                    MessageKey::CmdLine,
                    &[
                        ("id", r.id.as_str()),
                        ("service_id", &r.form.service.to_string()),
                        ("service", &r.form.service_name),
                        ("status", r.status().label()),
                    ],
                ) + "\n"
            })
            .collect();
        let more = open.len().saturating_sub(MAX_REQUEST_CARDS);
        let more = if more > 0 {
            messages.render(MessageKey::HandlerBatchMore, &[("n", &more.to_string())])
        } else {
            String::new()
        };
        let console = if self.console_url.is_empty() {
            String::new()
        } else {
            messages.render(
                MessageKey::HandlerBatchConsole,
                &[("url", &self.console_url)],
            )
        };
        let overdue = if overdue > 0 {
            messages.render(
                MessageKey::HandlerBatchOverdue,
                &[("n", &overdue.to_string())],
            )
        } else {
            String::new()
        };
        messages
            .render(
                MessageKey::HandlerBatchOverview,
                &[
                    ("day", &day.to_string()),
                    ("n", &open.len().to_string()),
                    ("overdue", &overdue),
                    ("lines", &lines),
                    ("more", &more),
                    ("console", &console),
                ],
            )
            .trim_end()
            .to_owned()
    }

    /// The day's batch and whatever earlier batches left open (overdue: carried forward
    /// until someone handles it), oldest first.
    async fn open_up_to(&self, day: BatchDay) -> Result<Vec<Request>, DayJobError> {
        Ok(self
            .ledger
            .list(&RequestFilter::open())
            .await?
            .into_iter()
            .filter(|r| r.batch <= day)
            .collect())
    }

    /// Queues one handler's overview and the cards of its first requests; how many of them
    /// were new to the outbox.
    async fn queue_batch(
        &self,
        messages: &Messages,
        day: BatchDay,
        now: DateTime<Utc>,
        user: &UserId,
        open: &[&Request],
    ) -> Result<usize, DayJobError> {
        let mut queued = 0;
        // The outbox sends a pass's items side by side; the cards wait a moment so the
        // overview is the first thing the handler reads.
        let cards_due = now + chrono::Duration::seconds(CARDS_AFTER_SECS);
        let overdue = open.iter().filter(|r| r.batch < day).count();
        let overview = Notice {
            touser: user.to_string(),
            text: self.overview(messages, day, open, overdue),
            card: None,
            before_card: None,
        };
        let day_label = day.to_string();
        let key = keys::handler_card_overview(&day_label, user);
        if self.queue(key, overview, now, now).await? {
            queued += 1;
        }
        for (i, request) in open.iter().take(MAX_REQUEST_CARDS).enumerate() {
            let (card, before_card) = request_card(
                messages,
                request,
                user,
                (i + 1, open.len()),
                &self.console_url,
                request.is_overdue(&self.schedule, now),
            );
            let notice = Notice {
                touser: user.to_string(),
                text: format!("{} #{}", request.id, request.form.service),
                card: Some(card),
                before_card,
            };
            let key = keys::handler_card(&day_label, user, &request.id);
            if self.queue(key, notice, now, cards_due).await? {
                queued += 1;
            }
        }
        Ok(queued)
    }

    async fn queue(
        &self,
        key: String,
        notice: Notice,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Result<bool, crate::store::StoreError> {
        self.outbox
            .enqueue(&key, Delivery::Wecom(notice), due, now)
            .await
    }
}

#[async_trait::async_trait]
impl DayJob for HandlerCards {
    fn name(&self) -> &'static str {
        "cutoff"
    }

    fn due(&self, schedule: &BatchSchedule, day: BatchDay) -> Option<DateTime<Utc>> {
        schedule.cutoff_at(day)
    }

    async fn run(&self, day: BatchDay, now: DateTime<Utc>) -> Result<usize, DayJobError> {
        if self.handlers.is_empty() {
            return Ok(0);
        }
        let batch = self.open_up_to(day).await?;
        let catalog = self.catalog.current();
        let messages = catalog.messages();
        let mut queued = 0;
        for (handler, user) in &self.handlers {
            // The 16:00 batch only: OA tickets and e-mails are handled on their own channel.
            let open: Vec<&Request> = batch
                .iter()
                .filter(|r| {
                    matches!(r.form.window, Window::DailyBatch) && handler.scope.covers(r.form.team)
                })
                .collect();
            if open.is_empty() {
                continue;
            }
            queued += self.queue_batch(messages, day, now, user, &open).await?;
        }
        tracing::info!(batch = %day, queued, "cut-off cards queued");
        Ok(queued)
    }
}

/// The done-by reminder (17:30): each handler with a WeCom account whose teams still have
/// requests open past their done-by time gets one message naming them, oldest first, with
/// how long each has waited and the console's overdue list. Queued under
/// `reminder:{day}:{user}`, so a day reminds each handler once across restarts and
/// instances.
pub struct HandlerReminders {
    cards: HandlerCards,
}

impl HandlerReminders {
    /// Shares the cut-off cards' outbox, catalog, ledger, handlers and console address.
    #[must_use]
    pub fn new(cards: HandlerCards) -> Self {
        Self { cards }
    }

    fn text(
        &self,
        messages: &Messages,
        day: BatchDay,
        open: &[&Request],
        now: DateTime<Utc>,
    ) -> String {
        let cards = &self.cards;
        let lines: String = open
            .iter()
            .take(OVERVIEW_LINES)
            .map(|r| {
                messages.render(
                    MessageKey::HandlerOpenLine,
                    &[
                        ("id", r.id.as_str()),
                        ("service_id", &r.form.service.to_string()),
                        ("service", &r.form.service_name),
                        ("status", r.status().label()),
                        ("age", &messages.age((now - r.submitted_at).num_minutes())),
                    ],
                ) + "\n"
            })
            .collect();
        let more = open.len().saturating_sub(OVERVIEW_LINES);
        let more = if more > 0 {
            messages.render(MessageKey::HandlerReminderMore, &[("n", &more.to_string())])
        } else {
            String::new()
        };
        let older = open.iter().filter(|r| r.batch < day).count();
        let older = if older > 0 {
            messages.render(
                MessageKey::HandlerReminderOlder,
                &[("n", &older.to_string())],
            )
        } else {
            String::new()
        };
        let console = if cards.console_url.is_empty() {
            String::new()
        } else {
            messages.render(
                MessageKey::HandlerBatchConsole,
                &[("url", &format!("{}/console?overdue=1", cards.console_url))],
            )
        };
        let time = cards.schedule.done_by.format("%H:%M").to_string();
        messages
            .render(
                MessageKey::HandlerReminder,
                &[
                    ("time", &time),
                    ("n", &open.len().to_string()),
                    ("older", &older),
                    ("lines", &lines),
                    ("more", &more),
                    ("console", &console),
                ],
            )
            .trim_end()
            .to_owned()
    }
}

#[async_trait::async_trait]
impl DayJob for HandlerReminders {
    fn name(&self) -> &'static str {
        "reminder"
    }

    fn due(&self, schedule: &BatchSchedule, day: BatchDay) -> Option<DateTime<Utc>> {
        schedule.done_at(day)
    }

    async fn run(&self, day: BatchDay, now: DateTime<Utc>) -> Result<usize, DayJobError> {
        let cards = &self.cards;
        if cards.handlers.is_empty() {
            return Ok(0);
        }
        let Some(due) = cards.schedule.done_at(day) else {
            return Ok(0);
        };
        // Open past this day's done-by time: this batch and any earlier one (a run caught up
        // later reminds of what was overdue then, not of later batches).
        let overdue: Vec<Request> = cards
            .ledger
            .list(&RequestFilter::open())
            .await?
            .into_iter()
            .filter(|r| r.batch <= day && r.is_overdue(&cards.schedule, due))
            .collect();
        let catalog = cards.catalog.current();
        let messages = catalog.messages();
        let mut queued = 0;
        for (handler, user) in &cards.handlers {
            let open: Vec<&Request> = overdue
                .iter()
                .filter(|r| handler.scope.covers(r.form.team))
                .collect();
            if open.is_empty() {
                continue;
            }
            let notice = Notice {
                touser: user.to_string(),
                text: self.text(messages, day, &open, now),
                card: None,
                before_card: None,
            };
            if cards
                .queue(
                    keys::handler_reminder(&day.to_string(), user),
                    notice,
                    now,
                    now,
                )
                .await?
            {
                queued += 1;
            }
        }
        tracing::info!(batch = %day, queued, "done-by reminders queued");
        Ok(queued)
    }
}
