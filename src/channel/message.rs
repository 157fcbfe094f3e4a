//! The one domain message both channels produce, and the reply the bot gives back.
//! Nothing here knows whether it came as XML or JSON.

use serde::{Deserialize, Serialize};

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

    /// A stable key part: "direct" or "group:<id>".
    #[must_use]
    pub fn key(&self) -> String {
        match self {
            Self::Direct => "direct".into(),
            Self::Group(id) => format!("group:{id}"),
        }
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
            Self::Choices { text, options } => {
                let mut out = text.clone();
                for (i, option) in options.iter().enumerate() {
                    out.push_str(&format!("\n{}. {}", i + 1, option.label));
                }
                Some(out)
            }
        }
    }
}

/// The conversation logic the channels hand messages to.
#[async_trait::async_trait]
pub trait Bot: Send + Sync + 'static {
    async fn respond(&self, message: Inbound) -> Reply;

    /// As [`Bot::respond`], for a caller that writes durably to the same store after the
    /// turn and before anyone hears the reply (the callback path stores the reply record for
    /// WeCom's retries): the turn's own writes may leave their fsync to that write
    /// ([`crate::store::Durability::WithNextImmediate`]).
    async fn respond_then_persist(&self, message: Inbound) -> Reply {
        self.respond(message).await
    }
}
