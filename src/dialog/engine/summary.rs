//! The summary before 确认 (answers, preconditions, warnings, when to expect it) and the
//! receipt after filing.

use chrono::{DateTime, Utc};

use super::{Engine, Say};
use crate::catalog::MessageKey;
use crate::catalog::{Service, Window};
use crate::dialog::session::{Form, Queued};

impl Engine<'_> {
    pub(super) fn window_text(&self, service: &Service, now: DateTime<Utc>) -> String {
        match &service.window {
            Window::DailyBatch => self.schedule.expectation(self.schedule.batch_for(now), now),
            Window::Custom(text) => text.clone(),
        }
    }

    pub(super) fn summary(
        &self,
        service: &Service,
        form: &Form,
        say: &mut Say,
        now: DateTime<Utc>,
    ) {
        let m = self.m();
        let mut text = m.render(
            MessageKey::SummaryHeader,
            &[("id", &service.id.to_string()), ("name", &service.name)],
        );
        for (label, value) in service.summary_lines(&form.answers) {
            text.push('\n');
            text.push_str(&m.render(
                MessageKey::SummaryLine,
                &[("label", &label), ("value", &value)],
            ));
        }
        if !service.preconditions.is_empty() {
            text.push_str("\n\n");
            text.push_str(m.get(MessageKey::SummaryPreconditionsHeader));
            for p in &service.preconditions {
                text.push_str("\n· ");
                text.push_str(p);
            }
        }
        if !service.warnings.is_empty() {
            text.push_str("\n\n");
            text.push_str(m.get(MessageKey::SummaryWarningsHeader));
            for w in &service.warnings {
                text.push_str("\n· ");
                text.push_str(w);
            }
        }
        text.push_str("\n\n");
        text.push_str(&m.render(
            MessageKey::SummaryWindow,
            &[("window", &self.window_text(service, now))],
        ));
        say.push(text);
        say.push(m.get(MessageKey::ConfirmPrompt));
    }

    /// The receipt after the ledger filed a form.
    #[must_use]
    pub fn receipt(
        &self,
        form: &Form,
        request_id: &str,
        batch_text: &str,
        queue: &[Queued],
    ) -> String {
        let Some(service) = self.service(form) else {
            return String::new();
        };
        let window = match &service.window {
            Window::DailyBatch => batch_text.to_owned(),
            Window::Custom(text) => text.clone(),
        };
        let mut text = self.m().render(
            MessageKey::FiledReceipt,
            &[
                ("id", &service.id.to_string()),
                ("name", &service.name),
                ("ticket", request_id),
                ("channel", &receipt_channel(service, self.m())),
                ("team", &service.handler_label(self.m())),
                ("window", &window),
            ],
        );
        if let Some(rejected) = &form.resubmit_of {
            text.push('\n');
            text.push_str(
                &self
                    .m()
                    .render(MessageKey::ReceiptResubmitOf, &[("id", rejected)]),
            );
        }
        if let Some(queued) = queue.first()
            && let Some(next) = self.catalog.service(queued.service)
        {
            let account = queued
                .account
                .as_ref()
                .map(|a| {
                    self.m()
                        .render(MessageKey::QueuedAccount, &[("account", a)])
                })
                .unwrap_or_default();
            text.push_str("\n\n");
            text.push_str(&self.m().render(
                MessageKey::QueuedNext,
                &[
                    ("id", &next.id.to_string()),
                    ("name", &next.name),
                    ("account", &account),
                ],
            ));
        }
        text
    }
}

/// Where the receipt says the request goes; an e-mail channel without a seed address names none.
fn receipt_channel(service: &Service, m: &crate::catalog::Messages) -> String {
    match &service.route {
        crate::catalog::FilingRoute::Email { address: None } => {
            m.get(MessageKey::ReceiptChannelEmailUnaddressed).to_owned()
        }
        channel => channel.label(),
    }
}
