//! `kaitong-dev chat`: a terminal stand-in for WeCom. Each typed line is encrypted and signed
//! exactly as WeCom would, posted to the bot, and the encrypted reply is opened and printed.

use std::io::{BufRead, Write};
use std::sync::Arc;

use rand::Rng;

use crate::peer::{self, WecomPeer};
use crate::simulator::{SentMessage, SimulatorHandle};
use kaitong::config::Settings;
use kaitong::domain::ChannelKind;
use kaitong::wecom::MsgCrypt;
use kaitong::wecom::app_xml::InnerMessage;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("cannot reach the bot at {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("the bot answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("URL verification failed: expected {expected:?}, got {got:?}")]
    Verification { expected: String, got: String },
    #[error("reply could not be opened: {0}")]
    Reply(#[from] peer::PeerError),
    #[error(transparent)]
    AesKey(#[from] kaitong::wecom::AesKeySettingError),
    #[error(transparent)]
    Crypto(#[from] kaitong::wecom::CryptoError),
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
}

/// Who is talking, and through which channel.
#[derive(Debug, Clone)]
pub struct ChatIdentity {
    pub channel: ChannelKind,
    pub user: String,
    /// AI-bot group chat id; `None` for a 1:1 chat.
    pub group: Option<String>,
}

/// Renders a message the bot pushed through the API (cards, notices) for the terminal.
#[must_use]
pub fn render_pushed(message: &SentMessage) -> String {
    match message.msgtype.as_str() {
        "template_card" => render_card(&message.body["template_card"]),
        _ => message.content.clone(),
    }
}

/// What a person reads in an AI-bot reply: the stream's (or text's) content, then the card.
#[must_use]
pub fn render_aibot_reply(json: &serde_json::Value) -> String {
    let text = json
        .pointer("/stream/content")
        .or_else(|| json.pointer("/text/content"))
        .and_then(serde_json::Value::as_str);
    let card = json.get("template_card").map(render_card);
    match (text, card) {
        (Some(text), Some(card)) => format!("{text}\n{card}"),
        (Some(text), None) => text.to_owned(),
        (None, Some(card)) => card,
        (None, None) => json.to_string(),
    }
}

/// A card's texts, one a line as WeCom stacks them (title, its grey line, the text below),
/// then its buttons.
#[must_use]
pub fn render_card(card: &serde_json::Value) -> String {
    let texts: Vec<&str> = [
        &card["main_title"]["title"],
        &card["main_title"]["desc"],
        &card["sub_title_text"],
    ]
    .into_iter()
    .filter_map(serde_json::Value::as_str)
    .filter(|t| !t.is_empty())
    .collect();
    let mut out = texts.join("\n");
    if let Some(buttons) = card["button_list"].as_array() {
        // Numbered as a person would answer by typing; a button that shows a number already
        // is just that number.
        let labels: Vec<String> = buttons
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let text = b["text"].as_str().unwrap_or_default();
                let n = (i + 1).to_string();
                if text == n {
                    format!("[{n}]")
                } else {
                    format!("[{n}] {text}")
                }
            })
            .collect();
        out.push('\n');
        out.push_str(&labels.join("  "));
    }
    out
}

/// A WeCom tenant talking to one running bot.
pub struct ChatClient {
    http: reqwest::Client,
    base_url: String,
    identity: ChatIdentity,
    app: WecomPeer,
    aibot: WecomPeer,
    corp_id: String,
    agent_id: String,
    /// The in-process WeCom API simulator, whose deliveries are shown as bot messages.
    simulator: Option<Arc<SimulatorHandle>>,
}

impl ChatClient {
    pub fn new(
        settings: &Settings,
        base_url: &str,
        identity: ChatIdentity,
    ) -> Result<Self, ChatError> {
        Ok(Self {
            http: reqwest::Client::new(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            identity,
            app: WecomPeer::new(MsgCrypt::for_app(&settings.wecom)?),
            aibot: WecomPeer::new(MsgCrypt::for_aibot(&settings.aibot)?),
            corp_id: settings.wecom.corp_id.clone(),
            agent_id: settings.wecom.agent_id.to_string(),
            simulator: None,
        })
    }

    /// Shows what the bot pushes through the (simulated) WeCom API.
    #[must_use]
    pub fn with_simulator(mut self, simulator: Arc<SimulatorHandle>) -> Self {
        self.simulator = Some(simulator);
        self
    }

    /// Messages the bot pushed to this user since `from` (index into the simulator's log).
    #[must_use]
    pub fn pushed_since(&self, from: usize) -> (Vec<String>, usize) {
        let Some(simulator) = &self.simulator else {
            return (Vec::new(), from);
        };
        let sent = simulator.sent_messages();
        let texts = sent
            .iter()
            .skip(from)
            .filter(|m| m.touser.contains(&self.identity.user))
            .map(render_pushed)
            .collect();
        (texts, sent.len())
    }

    fn path(&self) -> &'static str {
        match self.identity.channel {
            ChannelKind::App => "/wecom/app",
            ChannelKind::AiBot => "/wecom/aibot",
        }
    }

    fn peer(&self) -> &WecomPeer {
        match self.identity.channel {
            ChannelKind::App => &self.app,
            ChannelKind::AiBot => &self.aibot,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, ChatError> {
        let url = format!("{}{}", self.base_url, self.path());
        let response = request.send().await.map_err(|source| ChatError::Http {
            url: url.clone(),
            source,
        })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|source| ChatError::Http { url, source })?;
        if !status.is_success() {
            return Err(ChatError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(body)
    }

    /// Does what the admin console does when you save the callback URL.
    pub async fn verify_url(&self) -> Result<(), ChatError> {
        let echo: u64 = rand::thread_rng().r#gen();
        let echo = echo.to_string();
        let query = self.peer().verify_url_query(&echo)?;
        let url = format!("{}{}?{query}", self.base_url, self.path());
        let got = self.send(self.http.get(url)).await?;
        if got == echo {
            Ok(())
        } else {
            Err(ChatError::Verification {
                expected: echo,
                got,
            })
        }
    }

    /// Sends one text message and returns the bot's answer as text (`None` = no reply).
    pub async fn say(&self, text: &str) -> Result<Option<String>, ChatError> {
        let id: u64 = rand::thread_rng().gen_range(1..i64::MAX as u64);
        let callback = match self.identity.channel {
            ChannelKind::App => self.app.app_callback(
                &peer::app_text_xml(&self.corp_id, &self.identity.user, &self.agent_id, id, text),
                &self.agent_id,
            )?,
            ChannelKind::AiBot => {
                let content = match &self.identity.group {
                    Some(_) => format!("@开通助手 {text}"),
                    None => text.to_owned(),
                };
                self.aibot.aibot_callback(&peer::aibot_text_json(
                    &format!("chat{id:x}"),
                    &self.identity.user,
                    self.identity.group.as_deref(),
                    &content,
                ))?
            }
        };
        let url = format!("{}{}?{}", self.base_url, self.path(), callback.query);
        let body = self.send(self.http.post(url).body(callback.body)).await?;
        match self.identity.channel {
            ChannelKind::App => Ok(self.app.open_app_reply(&body)?.map(|xml| {
                InnerMessage::parse(&xml)
                    .ok()
                    .and_then(|m| m.content)
                    .unwrap_or(xml)
            })),
            ChannelKind::AiBot => Ok(self
                .aibot
                .open_aibot_reply(&body)?
                .map(|json| render_aibot_reply(&json))),
        }
    }
}

/// Reads lines from `input` until EOF or `/quit`, printing each reply to `output`.
pub async fn converse(
    client: &ChatClient,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<(), ChatError> {
    client.verify_url().await?;
    writeln!(
        output,
        "✓ URL 验证通过 ({}). 输入消息回车发送, /quit 退出。",
        client.identity.channel.as_str()
    )?;
    let mut seen = client.pushed_since(0).1;
    for line in input.lines() {
        let line = line?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/quit" || text == "/exit" {
            break;
        }
        writeln!(output, "我: {text}")?;
        let reply = client.say(text).await?;
        let (pushed, next) = client.pushed_since(seen);
        seen = next;
        match reply {
            Some(reply) => writeln!(output, "开通助手: {reply}")?,
            None if pushed.is_empty() => writeln!(output, "开通助手: (无回复)")?,
            None => {}
        }
        for message in pushed {
            writeln!(output, "开通助手: {message}")?;
        }
        output.flush()?;
    }
    Ok(())
}
