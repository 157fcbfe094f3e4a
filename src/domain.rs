//! The ids and messages every layer speaks: who (`UserId`), where (`ChannelKind`,
//! `Conversation`), which service (`ServiceId`) and request (`RequestId`), the one inbound
//! message both channels produce (`Inbound`, `Content`), the bot's `Reply`, and the `Bot` trait.
//!
//! Also the ports: what the bot and the channels ask of the outside by domain meaning —
//! fetching an attachment (`AttachmentFetcher`), sending and recognising blank templates
//! (`BlankTemplates`), relabelling a handled card (`CardRelabeler`), acting on an approval
//! (`ApprovalSink`) — with the one error they fail with (`PortError`). The adapters (`channel`,
//! `notify`) implement them and `startup` injects them, so `dialog` names no adapter.
//!
//! Owns these shapes and their parsing. It imports nothing from the crate, so any module may
//! import it; it must not know wire formats, store keys or what the bot decides.

use serde::{Deserialize, Serialize};

/// The seed's 序号: stable forever, used in tickets and commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceId(pub u16);

impl ServiceId {
    pub fn get(self) -> u16 {
        self.0
    }
}

/// Text that is not a service id; holds the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a service id: {0:?}")]
pub struct NotAServiceId(pub String);

impl std::str::FromStr for ServiceId {
    type Err = NotAServiceId;

    /// Accepts "33", "#33", "＃33", "33号" (what users type for an id).
    fn from_str(s: &str) -> Result<Self, NotAServiceId> {
        let t = s
            .trim()
            .trim_start_matches(['#', '＃'])
            .trim_end_matches('号')
            .trim();
        match t.parse::<u16>() {
            Ok(n) if n > 0 => Ok(Self(n)),
            _ => Err(NotAServiceId(s.to_owned())),
        }
    }
}

impl std::fmt::Display for ServiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A readable request id: `KT-YYYYMMDD-NNNN` (date of submission, Asia/Shanghai).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(String);

impl RequestId {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the `seq`th request filed on `local_date` (`YYYYMMDD`, Asia/Shanghai).
    #[must_use]
    pub fn numbered(local_date: &str, seq: u64) -> Self {
        Self(format!("KT-{local_date}-{seq:04}"))
    }

    /// Accepts what users type: "KT-20261128-0007", "kt-20261128-7".
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let upper = raw.trim().to_ascii_uppercase();
        let rest = upper.strip_prefix("KT-")?;
        let (date, seq) = rest.split_once('-')?;
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq: u32 = seq.parse().ok()?;
        Some(Self(format!("KT-{date}-{seq:04}")))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which inbound channel a message came through; sessions are kept apart per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Self-built app (自建应用): 1:1 conversations only.
    App,
    /// AI bot (智能机器人): 1:1 and group chats (when @-mentioned).
    AiBot,
}

impl ChannelKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::AiBot => "aibot",
        }
    }
}

/// A WeCom member's UserID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId(String);

impl UserId {
    /// UserIDs are non-empty and printable; anything else is not a real sender.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        (!trimmed.is_empty() && trimmed.len() <= 128 && !trimmed.chars().any(char::is_control))
            .then(|| Self(trimmed.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the message was said: a 1:1 chat with the bot, or a group chat by its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Conversation {
    Direct,
    Group(String),
}

impl Conversation {
    #[must_use]
    pub fn is_group(&self) -> bool {
        matches!(self, Self::Group(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    Image,
    Voice,
    Video,
    File,
}

/// How to fetch an attachment: an app `media_id` (media/get) or an AI-bot encrypted URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    MediaId(String),
    EncryptedUrl(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: AttachmentKind,
    pub source: MediaSource,
    pub file_name: Option<String>,
}

/// A click on a template card button or a submitted selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardAction {
    pub task_id: String,
    pub key: String,
    /// (question key, chosen option ids)
    pub selections: Vec<(String, Vec<String>)>,
    /// The app channel's single-use code (72 h) for updating the clicked card afterwards.
    #[serde(default)]
    pub response_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Content {
    Text(String),
    Attachment(Attachment),
    CardAction(CardAction),
    Location {
        label: String,
        latitude: f64,
        longitude: f64,
    },
    Link {
        title: String,
        url: String,
    },
    /// The user opened the app or the bot chat.
    Entered,
    MenuClick(String),
    /// A kind the bot does not understand; carries the wire type name for the log.
    Unsupported(String),
}

/// One thing a person said to the bot, whichever channel carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub channel: ChannelKind,
    pub sender: UserId,
    pub conversation: Conversation,
    pub content: Content,
}

/// A numbered option the user can pick by number, by name, or by a card button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceOption {
    pub key: String,
    pub label: String,
}

/// What the bot answers; each channel renders it in its own wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Nothing to say: the channel answers with an empty 200.
    Nothing,
    Text(String),
    /// A question with options: numbered text where cards are not available.
    Choices {
        text: String,
        options: Vec<ChoiceOption>,
    },
}

impl Reply {
    /// The text form of any reply, options numbered 1..n.
    #[must_use]
    pub fn as_text(&self) -> Option<String> {
        match self {
            Self::Nothing => None,
            Self::Text(text) => Some(text.clone()),
            Self::Choices { text, options } if options.is_empty() => Some(text.clone()),
            Self::Choices { text, options } => {
                Some(format!("{text}\n{}", numbered_options(options)))
            }
        }
    }
}

/// Options numbered 1..n, one a line: "1. 淘宝\n2. 京东".
#[must_use]
pub fn numbered_options(options: &[ChoiceOption]) -> String {
    options
        .iter()
        .enumerate()
        .map(|(i, option)| format!("{}. {}", i + 1, option.label))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The conversation logic the channels hand messages to.
#[async_trait::async_trait]
pub trait Bot: Send + Sync + 'static {
    async fn respond(&self, message: Inbound) -> Reply;

    /// As [`Bot::respond`], for a caller that writes durably to the same store after the
    /// turn and before anyone hears the reply (the callback path stores the reply record for
    /// WeCom's retries): the turn's own writes may leave their fsync to that write
    /// (`store::Durability::WithNextImmediate`).
    async fn respond_then_persist(&self, message: Inbound) -> Reply {
        self.respond(message).await
    }
}

/// A WeCom approval (审批) changed state (`sys_approval_change`), as the channel read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalChange {
    /// WeCom's approval number (`SpNo`).
    pub sp_no: String,
    pub status: ApprovalStatus,
    /// Who decided, when someone did.
    pub approver: Option<UserId>,
    /// The deciding approver's comment (`Speech`), if any.
    pub comment: Option<String>,
}

/// `SpStatus` of an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    /// 1 审批中
    Pending,
    /// 2 已通过
    Approved,
    /// 3 已驳回
    Rejected,
    /// 4 已撤销, 6 通过后撤销, 7 已删除, 10 已支付, or a code WeCom adds later.
    Other(u32),
}

impl ApprovalStatus {
    #[must_use]
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => Self::Pending,
            2 => Self::Approved,
            3 => Self::Rejected,
            other => Self::Other(other),
        }
    }
}

/// Where approval changes go (the OA hand-off through WeCom approvals). An error means the
/// change could not be acted on now and WeCom's retry should try again.
#[async_trait::async_trait]
pub trait ApprovalSink: Send + Sync + 'static {
    async fn approval_changed(&self, change: ApprovalChange) -> Result<(), PortError>;
}

/// Why a port's adapter failed. The adapter's own error is kept whole as the source, so a log
/// line can still walk to the cause (an errcode, a timeout, a refused connection) while the
/// domain names none of the adapter's types. The message repeats the source's: the bot logs
/// `%error` and cannot reach `telemetry::one_line` (which says a repeated cause once).
#[derive(Debug, thiserror::Error)]
#[error("{what} failed: {source}")]
pub struct PortError {
    /// What was attempted, for the log ("attachment download", "template send").
    what: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl PortError {
    pub fn new(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            what,
            source: source.into(),
        }
    }
}

/// A downloaded attachment.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedMedia {
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for FetchedMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes are a person's file: their length says enough in a log.
        f.debug_struct("FetchedMedia")
            .field("file_name", &self.file_name)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Downloads an attachment named in an inbound message (WeCom's copies expire, so the bot
/// keeps the bytes with the request).
#[async_trait::async_trait]
pub trait AttachmentFetcher: Send + Sync + 'static {
    async fn fetch(&self, source: &MediaSource) -> Result<FetchedMedia, PortError>;
}

/// The blank templates fields name (免责声明填写样板.docx), sent to the person as files and
/// recognised when sent back unchanged.
#[async_trait::async_trait]
pub trait BlankTemplates: Send + Sync + 'static {
    /// The template's bytes, when a usable file of that name is configured.
    async fn content(&self, name: &str) -> Option<Vec<u8>>;
    /// Whether a usable file of that name is configured (without copying it).
    fn available(&self, name: &str) -> bool;
    /// Sends the template to `user` as a file message.
    async fn send(&self, user: &UserId, name: &str) -> Result<(), PortError>;
}

/// What a handled card's buttons say instead: who handled it (`full`) or, when that does not
/// read whole on the channel's button, the status alone (`short`). The channel knows what
/// fits, so it chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandledLabel {
    pub full: String,
    pub short: String,
}

/// Relabels a card someone clicked, so everyone who got it sees it was handled and by whom.
#[async_trait::async_trait]
pub trait CardRelabeler: Send + Sync + 'static {
    /// Replaces the buttons of the card behind `response_code` (single use, 72 h).
    async fn relabel(
        &self,
        user: &UserId,
        response_code: &str,
        label: &HandledLabel,
    ) -> Result<(), PortError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_ids_parse_loosely_and_print_canonically() {
        assert_eq!(
            RequestId::parse("kt-20261128-7").unwrap().as_str(),
            "KT-20261128-0007"
        );
        assert!(RequestId::parse("KT-2026-1").is_none());
        assert!(RequestId::parse("hello").is_none());
    }

    #[test]
    fn a_port_error_keeps_its_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer");
        let error = PortError::new("attachment download", cause);
        assert_eq!(error.to_string(), "attachment download failed: no answer");
        let source = std::error::Error::source(&error).unwrap();
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn service_ids_parse_as_users_type_them() {
        assert_eq!("#33".parse::<ServiceId>(), Ok(ServiceId(33)));
        assert_eq!("33号".parse::<ServiceId>(), Ok(ServiceId(33)));
        assert!("0".parse::<ServiceId>().is_err());
        assert!("abc".parse::<ServiceId>().is_err());
    }
}
