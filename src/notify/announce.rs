//! New OA tickets announced to their handlers in WeCom: an OA-channel request is handled in
//! the OA system (or its WeCom approval), where nobody on the ops team is told a new one came
//! in. When one is filed, every handler with a WeCom userid whose team covers it gets a short
//! message (number, service, requester, answers, console link) through the outbox, once per
//! request and handler (`keys::handoff_announce`).

use chrono::{DateTime, Utc};

use super::delivery::{Delivery, Notice};
use super::outbox::Outbox;
use crate::catalog::{CatalogHandle, FilingRoute, MessageKey};
use crate::domain::UserId;
use crate::requests::{Handler, HandlerDirectory, Request, Watcher};
use crate::store::{StoreError, keys};

pub struct OaAnnouncer {
    outbox: Outbox,
    catalog: CatalogHandle,
    handlers: Vec<(Handler, UserId)>,
    console_url: String,
}

impl OaAnnouncer {
    #[must_use]
    pub fn new(
        outbox: Outbox,
        catalog: CatalogHandle,
        handlers: &HandlerDirectory,
        console_url: &str,
    ) -> Self {
        Self {
            outbox,
            catalog,
            handlers: handlers.in_wecom(),
            console_url: console_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The announcement of `request` for its handlers.
    #[must_use]
    pub fn text(&self, request: &Request) -> String {
        let catalog = self.catalog.current();
        let messages = catalog.messages();
        let fields: String = request
            .form
            .summary
            .iter()
            .map(|(label, value)| format!("{label}: {value}\n"))
            .collect();
        let console = if self.console_url.is_empty() {
            String::new()
        } else {
            format!("{}/console/requests/{}", self.console_url, request.id)
        };
        messages
            .render(
                MessageKey::HandlerOaNew,
                &[
                    ("id", request.id.as_str()),
                    ("service_id", &request.form.service.to_string()),
                    ("service", &request.form.service_name),
                    ("requester", &request.requester_label()),
                    ("fields", &fields),
                    ("console", &console),
                ],
            )
            .trim_end()
            .to_owned()
    }
}

#[async_trait::async_trait]
impl Watcher for OaAnnouncer {
    async fn changed(&self, request: &Request, now: DateTime<Utc>) -> Result<(), StoreError> {
        // Newly filed OA tickets only.
        if request.history.len() > 1 || request.form.routing != FilingRoute::OaTicket {
            return Ok(());
        }
        let mut outcome = Ok(());
        for (handler, user) in &self.handlers {
            if !handler.scope.covers(request.form.team) {
                continue;
            }
            let notice = Notice {
                touser: user.to_string(),
                text: self.text(request),
                card: None,
                before_card: None,
            };
            let key = keys::handoff_announce(&request.id, user);
            match self
                .outbox
                .enqueue(&key, Delivery::Wecom(notice), now, now)
                .await
            {
                Ok(true) => {
                    tracing::info!(request = %request.id, handler = %handler.name, "new OA ticket announced");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(request = %request.id, handler = %handler.name, error = %e, "OA ticket announcement could not be queued");
                    if outcome.is_ok() {
                        outcome = Err(e);
                    }
                }
            }
        }
        outcome
    }
}
