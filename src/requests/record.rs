//! A filed request as the ledger keeps it (`Request`): the confirmed form and who filed it, its
//! status and history, notes, the messages delivered about it, the requester's contact and the
//! handling side's ticket number.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::batch::{BatchDay, BatchSchedule};
use crate::catalog::{Answers, FilingRoute, Team, Window};
use crate::domain::{ChannelKind, Conversation, RequestId, ServiceId, UserId};

/// Who asked, and where to answer them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub user: UserId,
    pub channel: ChannelKind,
    pub conversation: Conversation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Submitted,
    Processing,
    Done,
    Rejected,
    Cancelled,
}

/// One change of status, and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: Status,
    pub at: DateTime<Utc>,
    pub by: String,
    pub note: Option<String>,
}

/// A confirmed form, as the dialog hands it over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiledForm {
    /// The form's own id: filing the same form twice files once.
    pub form_id: String,
    pub service: ServiceId,
    pub service_name: String,
    /// Who handles it and where it is filed, from the catalog at the time of filing.
    pub team: Team,
    pub routing: FilingRoute,
    pub window: Window,
    pub answers: Answers,
    /// Label and display text of each answer, secrets masked.
    pub summary: Vec<(String, String)>,
    pub requester: Requester,
    /// The rejected request this one corrects ("修改后重新提交"); shown on the receipt and
    /// `/status` so the handler sees the history.
    #[serde(default)]
    pub resubmit_of: Option<RequestId>,
}

/// A note a handler or requester added, part of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub by: String,
    pub text: String,
}

/// A message about the request that reached its recipient (a notice to the requester, a card
/// to a handler, a hand-off), so "did they hear, and when?" has an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub at: DateTime<Utc>,
    /// A WeCom userid, an e-mail address, or the receiving system (`webhook`, `oa`).
    pub to: String,
    /// The transport: `wecom`, `webhook`, `oa`, `email`.
    pub channel: String,
    /// The outbox item's id: one record per item, however often it was sent.
    pub item: String,
    /// What was sent, shortened.
    pub message: String,
}

/// Who the requester is in WeCom's contacts (`user/get`, department names from
/// `department/list`), looked up after filing: what handlers, hand-offs and e-mails show
/// instead of a bare userid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    /// Department names, the main one first.
    #[serde(default)]
    pub departments: Vec<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl Contact {
    /// `张三 · 广州研发中心`, or the name alone.
    #[must_use]
    pub fn label(&self) -> String {
        match self.departments.first() {
            Some(department) => format!("{} · {}", self.name, department),
            None => self.name.clone(),
        }
    }
}

/// The handling side's own number for a request (an OA ticket, an approval), set by a handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalTicket {
    pub number: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Why a ticket number is refused (Chinese, for the console and the API); `None`: fine.
#[must_use]
pub fn ticket_problem(number: &str) -> Option<&'static str> {
    let number = number.trim();
    if number.is_empty() {
        Some("工单号不能为空")
    } else if number.chars().count() > 64 {
        Some("工单号过长（最多 64 个字符）")
    } else if number.chars().any(char::is_control) {
        Some("工单号不能含控制字符")
    } else {
        None
    }
}

/// A filed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub form: FiledForm,
    pub submitted_at: DateTime<Utc>,
    pub batch: BatchDay,
    pub history: Vec<StatusChange>,
    #[serde(default)]
    pub notes: Vec<Note>,
    /// Messages about it that were delivered, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliveryRecord>,
    /// The requester in WeCom's contacts, once looked up; `None` (shown as the userid) until
    /// then, or when WeCom does not say (no privilege, unknown member, unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// The handling side's number for it, once a handler set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ticket: Option<ExternalTicket>,
}

impl Request {
    #[must_use]
    pub fn status(&self) -> Status {
        self.history.last().map_or(Status::Submitted, |c| c.status)
    }

    /// The requester as people read it: `张三 · 广州研发中心 (zhangsan)` when the contact is
    /// known, else the userid.
    #[must_use]
    pub fn requester_label(&self) -> String {
        let user = self.form.requester.user.as_str();
        match &self.contact {
            Some(contact) => format!("{} ({user})", contact.label()),
            None => user.to_owned(),
        }
    }

    /// When the request reached its current status.
    #[must_use]
    pub fn status_since(&self) -> DateTime<Utc> {
        self.history.last().map_or(self.submitted_at, |c| c.at)
    }

    /// The seller account the request is about: the `seller_account` answer, else a summary
    /// row labelled 卖家账号 (forms filed before the key was kept).
    #[must_use]
    pub fn seller_account(&self) -> Option<&str> {
        let key = crate::catalog::FieldKey::parse("seller_account").ok()?;
        match self.form.answers.get(&key) {
            Some(crate::catalog::FieldValue::Text(account)) => Some(account.as_str()),
            _ => self
                .form
                .summary
                .iter()
                .find(|(label, _)| label == "卖家账号")
                .map(|(_, value)| value.as_str()),
        }
    }

    /// Still waiting for a handler: submitted or being processed.
    #[must_use]
    pub fn is_open(&self) -> bool {
        !self.status().is_final()
    }

    /// The promised time: the batch's done-by time for the daily batch. Services handled on
    /// their own window (OA ticket, e-mail: "1~3 个工作日") promise no instant, so they are
    /// never overdue here.
    #[must_use]
    pub fn due_at(&self, schedule: &BatchSchedule) -> Option<DateTime<Utc>> {
        match self.form.window {
            Window::DailyBatch => schedule.done_at(self.batch),
            Window::Custom(_) => None,
        }
    }

    /// Open after its done-by time (逾期).
    #[must_use]
    pub fn is_overdue(&self, schedule: &BatchSchedule, now: DateTime<Utc>) -> bool {
        self.is_open() && self.due_at(schedule).is_some_and(|due| now >= due)
    }

    /// Whether it reached done or rejected by its done-by time (for "share done on time");
    /// `None` while open, cancelled, or without a promised time.
    #[must_use]
    pub fn handled_on_time(&self, schedule: &BatchSchedule) -> Option<bool> {
        let due = self.due_at(schedule)?;
        match self.status() {
            Status::Done | Status::Rejected => Some(self.status_since() <= due),
            _ => None,
        }
    }

    /// How many times a final request was reopened (each reopening starts a new round of
    /// notices: what the requester was told before no longer holds).
    #[must_use]
    pub fn reopenings(&self) -> usize {
        self.history
            .windows(2)
            .filter(|w| w[0].status.is_final() && !w[1].status.is_final())
            .count()
    }

    /// Whether a 完成 or 驳回 can still be taken back: it was made on the local day of `now`.
    #[must_use]
    pub fn reopenable(&self, schedule: &BatchSchedule, now: DateTime<Utc>) -> bool {
        matches!(self.status(), Status::Done | Status::Rejected)
            && schedule.local_date(self.status_since()) == schedule.local_date(now)
    }

    /// The last done or rejected change, by whom and when (for reports).
    #[must_use]
    pub fn handled(&self) -> Option<&StatusChange> {
        self.history
            .last()
            .filter(|c| matches!(c.status, Status::Done | Status::Rejected))
    }
}

impl Status {
    /// Done, rejected and cancelled requests never change again.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Rejected | Self::Cancelled)
    }

    /// The allowed moves: submitted → processing → done | rejected; cancelled only before
    /// processing starts.
    #[must_use]
    pub fn can_become(self, next: Status) -> bool {
        matches!(
            (self, next),
            (
                Self::Submitted,
                Self::Processing | Self::Done | Self::Rejected | Self::Cancelled
            ) | (Self::Processing, Self::Done | Self::Rejected)
        )
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Submitted => "已提交",
            Self::Processing => "处理中",
            Self::Done => "已完成",
            Self::Rejected => "已驳回",
            Self::Cancelled => "已撤回",
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "submitted" => Some(Self::Submitted),
            "processing" => Some(Self::Processing),
            "done" => Some(Self::Done),
            "rejected" => Some(Self::Rejected),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}
