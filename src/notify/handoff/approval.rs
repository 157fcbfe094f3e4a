//! OA tickets as WeCom approvals (审批): an OA-channel request is filed with `oa/applyevent` on
//! the configured template (its own approvers decide), the approval's number kept against the
//! request (`keys::approval`), and the approval's end acted on when WeCom calls back
//! (`sys_approval_change`, verified and de-duplicated by the app channel): approved completes
//! the request, rejected rejects it with the approver's comment as the reason the requester is
//! told. The approval is filed as the requester (`creator_userid`), so it is theirs in WeCom.

use std::sync::Arc;

use chrono::Utc;

use super::error::HandoffError;
use crate::config::HandoffSection;
use crate::domain::{ApprovalChange, ApprovalSink, ApprovalStatus, PortError, RequestId};
use crate::notify::delivery::{Delivery, DeliveryKind, RequestView};
use crate::notify::outbox::{DeliveryError, OutboxItem, Transport};
use crate::requests::{ExternalTicket, Ledger, LedgerError, Status};
use crate::store::{Store, keys};
use crate::wecom::api::{ApplyText, WecomApi};

/// Who set the ticket number, as the request's trail names it.
const APPROVAL_ACTOR: &str = "企业微信审批";

/// What the approver reads when the request was rejected without a comment.
const NO_COMMENT: &str = "审批未通过";

/// Files OA items as approvals.
pub struct ApprovalTransport {
    api: Arc<WecomApi>,
    store: Arc<dyn Store>,
    template_id: String,
    control_id: String,
    /// Where the approval's number is recorded as the request's ticket number.
    ledger: Option<Arc<dyn Ledger>>,
}

impl ApprovalTransport {
    /// Records each approval's number as its request's ticket number in `ledger`.
    #[must_use]
    pub fn with_ledger(mut self, ledger: Option<Arc<dyn Ledger>>) -> Self {
        self.ledger = ledger;
        self
    }

    pub fn new(
        section: &HandoffSection,
        api: Arc<WecomApi>,
        store: Arc<dyn Store>,
    ) -> Result<Self, HandoffError> {
        let template_id = section.oa_approval_template_id.trim().to_owned();
        let control_id = section.oa_approval_control_id.trim().to_owned();
        if control_id.is_empty() {
            return Err(HandoffError::Approval(
                "handoff.oa_approval_control_id is empty: the approval would carry no content"
                    .to_owned(),
            ));
        }
        if !section.oa_webhook_url.trim().is_empty() {
            return Err(HandoffError::Approval(
                "handoff.oa_webhook_url and handoff.oa_approval_template_id are both set: OA tickets go one way, choose one".to_owned(),
            ));
        }
        Ok(Self {
            api,
            store,
            template_id,
            control_id,
            ledger: None,
        })
    }

    /// Files the request as an approval of its requester; the approval's number.
    async fn file_approval(&self, request: &RequestView) -> Result<String, DeliveryError> {
        let mut text = format!(
            "开通申请 {}\n服务: #{} {}\n申请人: {}\n",
            request.id, request.service.id, request.service.name, request.requester.userid
        );
        for field in &request.fields {
            text.push_str(&format!("{}: {}\n", field.label, field.value));
        }
        let texts = [ApplyText {
            control: "Textarea".to_owned(),
            id: self.control_id.clone(),
            text,
        }];
        let summary = [
            format!(
                "{} #{} {}",
                request.id, request.service.id, request.service.name
            ),
            request
                .fields
                .first()
                .map(|f| format!("{}: {}", f.label, f.value))
                .unwrap_or_default(),
        ];
        let summary: Vec<String> = summary.into_iter().filter(|s| !s.is_empty()).collect();
        self.api
            .oa_applyevent(
                &request.requester.userid,
                &self.template_id,
                &texts,
                &summary,
            )
            .await
            .map_err(|e| DeliveryError {
                message: e.to_string(),
                retryable: e.is_retryable(),
                retry_after: e.retry_after(),
                cause: e.cause(),
            })
    }

    /// Stores the approval's number both ways: the callback finds the request by it, and a
    /// resend finds it under the request (`key`).
    async fn remember(&self, id: &RequestId, key: &str, sp_no: &str) -> Result<(), DeliveryError> {
        let stored = async {
            self.store
                .put(&keys::approval(sp_no), id.as_str().as_bytes(), None)
                .await?;
            self.store.put(key, sp_no.as_bytes(), None).await
        };
        if let Err(e) = stored.await {
            // Filed in WeCom but not remembered: its callback would find no request. Loud.
            tracing::error!(request = %id, sp_no = %sp_no, error = %e, "approval filed but its number not stored");
            return Err(DeliveryError::retry(format!(
                "approval {sp_no} not stored: {e}"
            )));
        }
        Ok(())
    }

    /// Records the approval's number as the request's ticket number, when there is a ledger.
    async fn record_ticket_number(&self, id: &RequestId, sp_no: &str) {
        if let Some(ledger) = &self.ledger {
            let ticket = ExternalTicket {
                number: sp_no.to_owned(),
                by: APPROVAL_ACTOR.to_owned(),
                at: Utc::now(),
            };
            // Filed either way; the number is also on the approval's WeCom page.
            if let Err(e) = ledger.set_external_ticket(id, ticket).await {
                tracing::warn!(request = %id, sp_no = %sp_no, error = %e, "approval number not recorded as the ticket number");
            }
        }
    }
}

#[async_trait::async_trait]
impl Transport for ApprovalTransport {
    fn kind(&self) -> DeliveryKind {
        DeliveryKind::Oa
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let Delivery::Oa(event) = &item.delivery else {
            return Err(item.unexpected(DeliveryKind::Oa));
        };
        let request = &event.request;
        let Some(id) = RequestId::parse(&request.id) else {
            return Err(DeliveryError::permanent(format!(
                "OA item names no request: {:?}",
                request.id
            )));
        };
        let key = keys::approval_of_request(&id);
        // Filed before (a crash between filing and marking sent): not twice.
        if let Ok(Some(sp_no)) = self.store.get(&key).await {
            tracing::info!(request = %id, sp_no = %String::from_utf8_lossy(&sp_no), "approval filed before; not again");
            return Ok(());
        }
        let sp_no = self.file_approval(request).await?;
        self.remember(&id, &key, &sp_no).await?;
        tracing::info!(request = %id, sp_no = %sp_no, "OA ticket filed as a WeCom approval");
        self.record_ticket_number(&id, &sp_no).await;
        Ok(())
    }
}

/// Acts on approval changes: the end of an approval moves its request.
pub struct ApprovalDesk {
    store: Arc<dyn Store>,
    /// The ledger everyone uses: the requester hears of the change like any other.
    ledger: Arc<dyn Ledger>,
}

impl ApprovalDesk {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, ledger: Arc<dyn Ledger>) -> Self {
        Self { store, ledger }
    }
}

#[async_trait::async_trait]
impl ApprovalSink for ApprovalDesk {
    async fn approval_changed(&self, change: ApprovalChange) -> Result<(), PortError> {
        let (to, note) = match change.status {
            ApprovalStatus::Approved => (Status::Done, change.comment.clone()),
            ApprovalStatus::Rejected => (
                Status::Rejected,
                Some(
                    change
                        .comment
                        .clone()
                        .unwrap_or_else(|| NO_COMMENT.to_owned()),
                ),
            ),
            other => {
                tracing::info!(sp_no = %change.sp_no, status = ?other, "approval change needs no action");
                return Ok(());
            }
        };
        let id = match self.store.get(&keys::approval(&change.sp_no)).await {
            Ok(Some(bytes)) => RequestId::parse(&String::from_utf8_lossy(&bytes)),
            Ok(None) => None,
            Err(e) => return Err(PortError::new("approval's request lookup", e)),
        };
        let Some(id) = id else {
            tracing::warn!(sp_no = %change.sp_no, "approval change for no request of ours ignored");
            return Ok(());
        };
        let by = change
            .approver
            .as_ref()
            .map_or_else(|| "审批".to_owned(), |a| format!("审批:{a}"));
        match self.ledger.transition(&id, to, &by, note, Utc::now()).await {
            Ok(_) => {
                tracing::info!(request = %id, sp_no = %change.sp_no, status = to.as_str(), by = %by, "request moved by its approval");
                Ok(())
            }
            Err(LedgerError::InvalidTransition { from, .. }) => {
                // Handled in the console meanwhile, or cancelled: the ledger stands.
                tracing::warn!(request = %id, sp_no = %change.sp_no, from = from.as_str(), to = to.as_str(), "approval ended but the request had moved on; left as it is");
                Ok(())
            }
            Err(LedgerError::NotFound(_)) => {
                tracing::warn!(request = %id, sp_no = %change.sp_no, "approval's request is gone");
                Ok(())
            }
            Err(e) => Err(PortError::new("request transition by approval", e)),
        }
    }
}
