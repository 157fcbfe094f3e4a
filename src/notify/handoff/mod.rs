//! Hand-offs: every filed request is handed to the side that handles it, through the durable
//! outbox, so nothing is lost when the other side is down and every failure stays visible.
//!
//! - [`HandoffWatcher`] hears about filings and status changes (it is a
//!   [`Watcher`](crate::requests::Watcher) on the `WatchedLedger`) and only *enqueues*: one
//!   outbox item per destination, each with a stable idempotency key
//!   (`handoff:{kind}:{request id}`, and `handoff:webhook:{request id}:{status}` for status
//!   updates).
//! - [`WebhookTransport`] (kinds `webhook` and `oa`) POSTs a signed JSON event; see
//!   [`webhook`] for the body and the signature scheme the receiving side verifies.
//! - [`EmailTransport`] (kind `email`) mails the request, attachments included, to the
//!   address the catalog routes the service to.
//!
//! What goes where:
//!
//! | destination | when | outbox kind |
//! | --- | --- | --- |
//! | request platform webhook | every request (system of record), and each later status change | `webhook` |
//! | OA webhook | services routed to `OaTicket` | `oa` |
//! | email | services routed to `Email { address }` | `email` |
//!
//! An empty URL in `[handoff]` switches that destination off.
//!
//! Each item carries a snapshot of the request taken when it was enqueued (labels and masked
//! display values from the form's summary, never the raw answers), so a retry days later sends
//! what was filed. Attachments are the exception: their bytes stay with the request
//! ([`crate::requests::attachments`]) and the email transport loads them when it sends.
//!
//! This module owns the wire formats of the hand-offs and their delivery. It must not change
//! requests, decide routing (the catalog did, at filing time) or schedule retries (the outbox
//! does).

pub mod approval;
pub mod email;
pub mod error;
pub mod state;
pub mod webhook;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, FilingRoute};
use crate::config::HandoffSection;
use crate::notify::delivery::{Delivery, DeliveryKind};
use crate::notify::outbox::{Outbox, Transport};
use crate::notify::people::Requesters;
use crate::requests::{Request, Watcher};
use crate::store::{Store, StoreError, keys};
use crate::wecom::api::WecomApi;

// The webhook event is the platform team's contract; its shape lives with the other
// deliveries, below the outbox that stores it.
pub use crate::notify::delivery::{
    EVENT_FILED, EVENT_STATUS, FieldView, HistoryView, RequestView, RequesterView, RoutingView,
    ServiceView, WebhookEvent,
};
pub use email::EmailTransport;
pub use error::HandoffError;
pub use state::{HandoffState, handoff_state};
pub use webhook::{WebhookTransport, sign, verify_signature};

/// Which destinations are switched on (a non-empty URL in `[handoff]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandoffTargets {
    pub platform: bool,
    pub oa: bool,
    pub email: bool,
}

impl HandoffTargets {
    #[must_use]
    pub fn from_settings(section: &HandoffSection) -> Self {
        Self {
            platform: !section.platform_webhook_url.trim().is_empty(),
            oa: !section.oa_webhook_url.trim().is_empty()
                || !section.oa_approval_template_id.trim().is_empty(),
            email: !section.smtp_url.expose().trim().is_empty(),
        }
    }
}

/// What the catalog routes to a hand-off `[handoff]` leaves unconfigured, one line per
/// transport naming its services and the key to set: such requests are filed and handled in
/// the console, but nothing reaches the handling side by itself. Logged at start-up and shown
/// on the admin listener's `/readyz`.
#[must_use]
pub fn unconfigured(catalog: &Catalog, section: &HandoffSection) -> Vec<String> {
    let targets = HandoffTargets::from_settings(section);
    let mut oa = Vec::new();
    let mut email = Vec::new();
    for service in catalog.services() {
        match &service.route {
            FilingRoute::OaTicket if !targets.oa => oa.push(format!("#{}", service.id)),
            // No address: nothing is mailed by design (the seed names none).
            FilingRoute::Email { address: Some(_) } if !targets.email => {
                email.push(format!("#{}", service.id));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if !oa.is_empty() {
        out.push(format!(
            "{} OA-ticket services ({}) hand off to the OA webhook, but handoff.oa_webhook_url is empty: their requests reach OA only by hand",
            oa.len(),
            oa.join(" ")
        ));
    }
    if !email.is_empty() {
        out.push(format!(
            "{} e-mail services ({}) hand off by mail, but handoff.smtp_url is empty: their requests are mailed to nobody",
            email.len(),
            email.join(" ")
        ));
    }
    out
}

/// Builds the transports of every destination switched on in `[handoff]`, ready to be put in
/// the outbox worker's map by their `kind()`. Fails on a malformed URL, an empty secret next
/// to a URL, or an unusable `mail_from`: better to stop at start-up than to queue hand-offs
/// nobody can send.
pub fn transports(
    section: &HandoffSection,
    store: Arc<dyn Store>,
) -> Result<Vec<Arc<dyn Transport>>, HandoffError> {
    transports_naming(section, store, None, None, None)
}

/// [`transports`] whose webhooks and e-mails name the requester from WeCom's contacts, and
/// whose OA tickets are WeCom approvals when `handoff.oa_approval_template_id` is set (through
/// `api`; the approval's number becomes the request's ticket number in `ledger`).
pub fn transports_naming(
    section: &HandoffSection,
    store: Arc<dyn Store>,
    requesters: Option<Requesters>,
    api: Option<Arc<WecomApi>>,
    ledger: Option<Arc<dyn crate::requests::Ledger>>,
) -> Result<Vec<Arc<dyn Transport>>, HandoffError> {
    let targets = HandoffTargets::from_settings(section);
    let approvals = !section.oa_approval_template_id.trim().is_empty();
    if approvals {
        let api = api.ok_or_else(|| {
            HandoffError::Approval("no WeCom API client to file approvals with".to_owned())
        })?;
        let transport =
            approval::ApprovalTransport::new(section, api, Arc::clone(&store))?.with_ledger(ledger);
        let mut out = transports_naming(
            &HandoffSection {
                oa_webhook_url: String::new(),
                oa_approval_template_id: String::new(),
                ..section.clone()
            },
            store,
            requesters,
            None,
            None,
        )?;
        out.push(Arc::new(transport));
        return Ok(out);
    }
    let mut out: Vec<Arc<dyn Transport>> = Vec::new();
    if targets.platform {
        out.push(Arc::new(
            WebhookTransport::new(
                DeliveryKind::Webhook,
                &section.platform_webhook_url,
                section.platform_webhook_secret.expose(),
            )?
            .naming(requesters.clone()),
        ));
    }
    if targets.oa {
        out.push(Arc::new(
            WebhookTransport::new(
                DeliveryKind::Oa,
                &section.oa_webhook_url,
                section.oa_webhook_secret.expose(),
            )?
            .naming(requesters.clone()),
        ));
    }
    if targets.email {
        out.push(Arc::new(
            EmailTransport::new(&section.smtp_url, &section.mail_from, store)?.naming(requesters),
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The watcher.

/// One outbox item the watcher wants queued.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedHandoff {
    /// The outbox id, i.e. the idempotency key.
    pub key: String,
    pub delivery: Delivery,
}

/// Queues hand-offs for new requests and platform updates for status changes.
#[derive(Clone)]
pub struct HandoffWatcher {
    outbox: Outbox,
    targets: HandoffTargets,
}

impl HandoffWatcher {
    #[must_use]
    pub fn new(outbox: Outbox, section: &HandoffSection) -> Self {
        Self::with_targets(outbox, HandoffTargets::from_settings(section))
    }

    #[must_use]
    pub fn with_targets(outbox: Outbox, targets: HandoffTargets) -> Self {
        Self { outbox, targets }
    }

    /// What a change of `request` should send (pure; no I/O).
    #[must_use]
    pub fn plan(&self, request: &Request) -> Vec<PlannedHandoff> {
        let mut out = Vec::new();
        let id = &request.id;
        if request.history.len() <= 1 {
            // Newly filed: the first (and only) entry of the history is the submission.
            if self.targets.platform {
                let key = keys::handoff_filed(DeliveryKind::Webhook.as_str(), id);
                out.push(PlannedHandoff {
                    delivery: Delivery::Webhook(webhook_event(EVENT_FILED, &key, request)),
                    key,
                });
            }
            match &request.form.routing {
                FilingRoute::OaTicket if self.targets.oa => {
                    let key = keys::handoff_filed(DeliveryKind::Oa.as_str(), id);
                    out.push(PlannedHandoff {
                        delivery: Delivery::Oa(webhook_event(EVENT_FILED, &key, request)),
                        key,
                    });
                }
                // Without an address there is nobody to mail; the platform webhook still carries it.
                FilingRoute::Email {
                    address: Some(address),
                } if self.targets.email => {
                    let key = keys::handoff_filed(DeliveryKind::Email.as_str(), id);
                    let job = email::EmailJob::of(request, address, &key);
                    out.push(PlannedHandoff {
                        delivery: Delivery::Email(job),
                        key,
                    });
                }
                _ => {}
            }
        } else if self.targets.platform {
            // A status change: keep the system of record in sync. Statuses move forward, so
            // each (request, status) pair happens once per round; a same-day reopen starts a
            // new round (`done-r1`, …), whose changes are new events, not repeats.
            let status = match request.reopenings() {
                0 => request.status().as_str().to_owned(),
                n => format!("{}-r{n}", request.status().as_str()),
            };
            let key = keys::handoff_status(DeliveryKind::Webhook.as_str(), id, &status);
            out.push(PlannedHandoff {
                delivery: Delivery::Webhook(webhook_event(EVENT_STATUS, &key, request)),
                key,
            });
        }
        out
    }
}

fn webhook_event(event: &str, key: &str, request: &Request) -> WebhookEvent {
    WebhookEvent {
        event: event.to_owned(),
        idempotency_key: key.to_owned(),
        request: RequestView::of(request),
    }
}

#[async_trait::async_trait]
impl Watcher for HandoffWatcher {
    async fn changed(&self, request: &Request, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut outcome = Ok(());
        for item in self.plan(request) {
            let kind = item.delivery.kind().to_owned();
            match self
                .outbox
                .enqueue(&item.key, item.delivery, now, now)
                .await
            {
                Ok(true) => {
                    tracing::info!(request = %request.id, kind, key = %item.key, "hand-off queued");
                }
                Ok(false) => {
                    tracing::debug!(request = %request.id, kind, key = %item.key, "hand-off was queued before");
                }
                // Loud, and reported: a filing answers "failed" so the person's next 确认
                // queues it; a status change stands and this hand-off waits for a re-queue.
                Err(e) => {
                    tracing::error!(request = %request.id, kind, key = %item.key, error = %e, "hand-off could not be queued");
                    if outcome.is_ok() {
                        outcome = Err(e);
                    }
                }
            }
        }
        outcome
    }
}
