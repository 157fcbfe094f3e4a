//! Sends queued notices through the self-built app's `message/send`, within WeCom's rules:
//! at most 30 messages a minute per member (more are silently dropped by WeCom, so we wait),
//! long texts split on character boundaries, and WeCom's own duplicate check as a second guard
//! against a notice resent after a crash.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::delivery::{Delivery, DeliveryKind, Notice};
use super::outbox::{DeliveryError, OutboxItem, Transport};
use crate::wecom::api::{
    ApiError, DuplicateCheck, MessageBody, OutboundMessage, SendOutcome, WecomApi,
};

const PER_MEMBER_PER_MINUTE: usize = 30;

pub struct WecomTransport {
    api: Arc<WecomApi>,
    /// Send times per member in the last minute.
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl WecomTransport {
    #[must_use]
    pub fn new(api: Arc<WecomApi>) -> Self {
        Self {
            api,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves `n` slots for `user`, or says how long until they free up.
    fn reserve(&self, user: &str, n: usize) -> Result<(), Duration> {
        let now = Instant::now();
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let times = recent.entry(user.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            times.pop_front();
        }
        if times.len() + n > PER_MEMBER_PER_MINUTE {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(Duration::from_secs(60).saturating_sub(now.duration_since(oldest)));
        }
        times.extend(std::iter::repeat_n(now, n));
        Ok(())
    }

    /// Gives back the `n` slots just reserved for a send that surely reached nobody (refused,
    /// no DNS, WeCom's own refusal), so an outage's attempts do not use up a member's minute.
    fn release(&self, user: &str, n: usize) {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(times) = recent.get_mut(user) {
            for _ in 0..n {
                times.pop_back();
            }
        }
    }

    /// Sends the notice: its text, or its card after the text the card cannot show whole.
    async fn send_notice(&self, notice: &Notice) -> Result<SendOutcome, ApiError> {
        let Some(card) = &notice.card else {
            return self
                .api
                .send_text(
                    &[notice.touser.as_str()],
                    &notice.text,
                    Some(DuplicateCheck::default()),
                )
                .await;
        };
        // What the card cannot show whole comes first; a resend after a failed card
        // repeats it, and WeCom's duplicate check drops the repeat.
        if let Some(before) = notice.before_card.as_deref().filter(|t| !t.is_empty()) {
            self.api
                .send_text(
                    &[notice.touser.as_str()],
                    before,
                    Some(DuplicateCheck::default()),
                )
                .await?;
        }
        let message = OutboundMessage::new(
            &[notice.touser.as_str()],
            MessageBody::TemplateCard {
                template_card: card.clone(),
            },
        )
        .with_duplicate_check(Some(DuplicateCheck::default()));
        self.api.send(&message).await
    }

    /// The outbox's view of a failed send to `user` of `messages` messages, giving their
    /// slots back when the send surely reached nobody.
    fn failure(&self, user: &str, messages: usize, e: &ApiError) -> DeliveryError {
        // A timeout or a reset may have delivered: those keep their slots.
        if !matches!(e.cause().as_str(), "timeout" | "reset") {
            self.release(user, messages);
        }
        if let Some(fix) = e.config_problem() {
            // A configuration problem: say what to fix, and keep trying slowly so the
            // notice goes out once it is fixed.
            tracing::error!(error = %e, fix, "WeCom refused the notice: configuration problem");
            return DeliveryError {
                message: format!("{e} — {fix}"),
                retryable: true,
                retry_after: Some(Duration::from_secs(300)),
                cause: e.cause(),
            };
        }
        // No hint of our own for a transport error or a busy WeCom: the outbox's
        // backoff decides, so an outage costs minutes of waiting, not the notice.
        DeliveryError {
            message: e.to_string(),
            retryable: e.is_retryable(),
            retry_after: e.retry_after(),
            cause: e.cause(),
        }
    }
}

#[async_trait::async_trait]
impl Transport for WecomTransport {
    fn kind(&self) -> DeliveryKind {
        DeliveryKind::Wecom
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let Delivery::Wecom(notice) = &item.delivery else {
            return Err(item.unexpected(DeliveryKind::Wecom));
        };
        // A card with a text before it is two messages.
        let messages = 1 + usize::from(notice.card.is_some() && notice.before_card.is_some());
        if let Err(wait) = self.reserve(&notice.touser, messages) {
            return Err(DeliveryError {
                message: "30 messages a minute to this member already".into(),
                retryable: true,
                retry_after: Some(wait.max(Duration::from_secs(1))),
                cause: "member minute limit".into(),
            });
        }
        let sent = self.send_notice(notice).await;
        match sent {
            Ok(outcome) if outcome.invaliduser.contains(&notice.touser) => Err(
                DeliveryError::permanent(format!("{} is not a member WeCom knows", notice.touser))
                    .with_cause("invalid user"),
            ),
            Ok(_) => Ok(()),
            Err(e) => Err(self.failure(&notice.touser, messages, &e)),
        }
    }
}
