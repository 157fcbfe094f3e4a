//! A minimal bot that greets, shows help and echoes, so the whole callback path can be
//! exercised end to end before the form engine is plugged in.

use crate::channel::{Bot, Content, Inbound, Reply};

/// The texts the echo bot says; they come from `dialogs/` wording.
#[derive(Debug, Clone)]
pub struct EchoWording {
    pub welcome: String,
    pub help: String,
    /// Prefix of the echo, e.g. "收到:".
    pub echo_prefix: String,
    pub attachment_received: String,
}

pub struct EchoBot {
    wording: EchoWording,
}

impl EchoBot {
    #[must_use]
    pub fn new(wording: EchoWording) -> Self {
        Self { wording }
    }
}

fn is_help(text: &str) -> bool {
    matches!(
        text.trim().trim_start_matches('/').to_lowercase().as_str(),
        "帮助" | "help" | "?" | "？" | ""
    )
}

#[async_trait::async_trait]
impl Bot for EchoBot {
    async fn respond(&self, message: Inbound) -> Reply {
        let w = &self.wording;
        match message.content {
            Content::Entered => Reply::Text(w.welcome.clone()),
            Content::Text(text) if is_help(&text) => Reply::Text(w.help.clone()),
            Content::Text(text) => Reply::Text(format!("{} {}", w.echo_prefix, text.trim())),
            Content::Attachment(attachment) => Reply::Text(
                format!(
                    "{} {}",
                    w.attachment_received,
                    attachment.file_name.unwrap_or_default()
                )
                .trim_end()
                .to_owned(),
            ),
            Content::CardAction(action) => Reply::Text(format!("{} {}", w.echo_prefix, action.key)),
            Content::Location { .. }
            | Content::Link { .. }
            | Content::MenuClick(_)
            | Content::Unsupported(_) => Reply::Text(w.help.clone()),
        }
    }
}
