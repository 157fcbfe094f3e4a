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

use super::Delivery;
use super::notices::{DayJob, Notice};
use super::outbox::Outbox;
use crate::catalog::MessageKey;
use crate::catalog::{CatalogHandle, Messages, Window};
use crate::domain::UserId;
use crate::requests::{
    BatchDay, BatchSchedule, DeskAction, Handler, HandlerDirectory, Ledger, Request, RequestFilter,
    Status,
};
use crate::store::keys;
use crate::wecom::cards::{Button, ButtonInteraction, HorizontalContent, MainTitle, TemplateCard};

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
}

/// A task id for the card of `request` sent to `user` (`[0-9A-Za-z_-@]`, ≤ 128 bytes, unique
/// per app: one card per request and handler).
fn task_id(request: &Request, user: &UserId) -> String {
    let user: String = user
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@'))
        .take(64)
        .collect();
    format!("kth_{}_{user}", request.id)
}

impl HandlerCards {
    #[must_use]
    pub fn new(
        outbox: Outbox,
        catalog: CatalogHandle,
        ledger: Arc<dyn Ledger>,
        handlers: &HandlerDirectory,
        console_url: &str,
    ) -> Self {
        Self {
            outbox,
            catalog,
            ledger,
            handlers: handlers.in_wecom(),
            console_url: console_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The button card for one request.
    #[must_use]
    pub fn card(
        &self,
        messages: &Messages,
        request: &Request,
        user: &UserId,
        position: (usize, usize),
    ) -> TemplateCard {
        let fields = request
            .form
            .summary
            .iter()
            .take(5)
            .map(|(label, value)| HorizontalContent::new(label, value))
            .collect();
        let source = messages.render(
            MessageKey::HandlerCardSource,
            &[
                ("n", &position.0.to_string()),
                ("total", &position.1.to_string()),
            ],
        );
        let title = MainTitle::new(
            &format!("#{} {}", request.form.service, request.form.service_name),
            request.id.as_str(),
        );
        let buttons = vec![
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
        ];
        let mut card = ButtonInteraction::new(&source, title, &task_id(request, user), buttons)
            .with_fields(fields);
        if !self.console_url.is_empty() {
            card = card.with_link(
                &self.console_url,
                messages.get(MessageKey::HandlerCardConsole),
            );
        }
        TemplateCard::ButtonInteraction(card)
    }

    fn overview(&self, messages: &Messages, day: BatchDay, open: &[&Request]) -> String {
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
        messages
            .render(
                MessageKey::HandlerBatchOverview,
                &[
                    ("day", &day.to_string()),
                    ("n", &open.len().to_string()),
                    ("lines", &lines),
                    ("more", &more),
                    ("console", &console),
                ],
            )
            .trim_end()
            .to_owned()
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

    async fn run(&self, day: BatchDay, now: DateTime<Utc>) -> Result<usize, String> {
        if self.handlers.is_empty() {
            return Ok(0);
        }
        let filter = RequestFilter {
            day: Some(day),
            ..RequestFilter::default()
        };
        let batch = self.ledger.list(&filter).await.map_err(|e| e.to_string())?;
        let catalog = self.catalog.current();
        let messages = catalog.messages();
        let mut queued = 0;
        // The outbox sends a pass's items side by side; the cards wait a moment so the
        // overview is the first thing the handler reads.
        let cards_due = now + chrono::Duration::seconds(CARDS_AFTER_SECS);
        for (handler, user) in &self.handlers {
            // The 16:00 batch only: OA tickets and e-mails are handled on their own channel.
            let open: Vec<&Request> = batch
                .iter()
                .filter(|r| {
                    matches!(r.form.window, Window::DailyBatch)
                        && matches!(r.status(), Status::Submitted | Status::Processing)
                        && handler.scope.covers(r.form.team)
                })
                .collect();
            if open.is_empty() {
                continue;
            }
            let overview = Notice {
                touser: user.to_string(),
                text: self.overview(messages, day, &open),
                card: None,
            };
            let day_label = day.to_string();
            if self
                .queue(
                    keys::handler_card_overview(&day_label, user),
                    overview,
                    now,
                    now,
                )
                .await
                .map_err(|e| e.to_string())?
            {
                queued += 1;
            }
            for (i, request) in open.iter().take(MAX_REQUEST_CARDS).enumerate() {
                let notice = Notice {
                    touser: user.to_string(),
                    text: format!("{} #{}", request.id, request.form.service),
                    card: Some(self.card(messages, request, user, (i + 1, open.len()))),
                };
                if self
                    .queue(
                        keys::handler_card(&day_label, user, &request.id),
                        notice,
                        now,
                        cards_due,
                    )
                    .await
                    .map_err(|e| e.to_string())?
                {
                    queued += 1;
                }
            }
        }
        tracing::info!(batch = %day, queued, "cut-off cards queued");
        Ok(queued)
    }
}
