//! Fetching what people attach (disclaimers, screenshots): app media by `media/get`, AI-bot
//! media from its encrypted URL (valid five minutes), decrypted with the bot's key; and the
//! blank templates sent as files. The adapters behind `domain::AttachmentFetcher` and
//! `domain::BlankTemplates`.

use crate::wecom::AesKey;
use crate::wecom::api::WecomApi;

use crate::domain::{
    AttachmentFetcher, BlankTemplates, FetchedMedia, MediaSource, PortError, UserId,
};
use crate::store::keys;

/// Why an attachment could not be downloaded.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("media/get failed: {0}")]
    Api(#[from] crate::wecom::api::ApiError),
    /// The AI bot's encrypted URL could not be read; the URL is dropped from the error (it
    /// carries a signature and may reach a log).
    #[error("download failed: {0}")]
    Download(#[source] reqwest::Error),
    #[error("download failed: HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("download failed: over {cap} bytes")]
    TooLarge { cap: usize },
    #[error("decryption failed: {0}")]
    Decrypt(#[from] crate::wecom::CryptoError),
}

/// The real fetcher: WeCom's API for app media, HTTPS + AES for AI-bot media.
pub struct WecomMediaFetcher {
    api: std::sync::Arc<WecomApi>,
    aibot_key: AesKey,
    http: reqwest::Client,
    /// AI-bot files are capped like app media (20 MiB).
    max_bytes: usize,
}

impl WecomMediaFetcher {
    #[must_use]
    pub fn new(api: std::sync::Arc<WecomApi>, aibot_key: AesKey) -> Self {
        Self {
            api,
            aibot_key,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            max_bytes: 20 * 1024 * 1024,
        }
    }
}

#[async_trait::async_trait]
impl AttachmentFetcher for WecomMediaFetcher {
    async fn fetch(&self, source: &MediaSource) -> Result<FetchedMedia, PortError> {
        self.download(source)
            .await
            .map_err(|e| PortError::new("attachment download", e))
    }
}

impl WecomMediaFetcher {
    /// The attachment's bytes: `media/get` for app media, the AI bot's encrypted URL else.
    pub async fn download(&self, source: &MediaSource) -> Result<FetchedMedia, FetchError> {
        match source {
            MediaSource::MediaId(id) => {
                let media = self.api.media_get(id).await?;
                Ok(FetchedMedia {
                    file_name: media.file_name,
                    bytes: media.bytes,
                })
            }
            MediaSource::EncryptedUrl(url) => {
                let response = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| FetchError::Download(e.without_url()))?;
                if !response.status().is_success() {
                    return Err(FetchError::Status(response.status()));
                }
                let file_name = response
                    .headers()
                    .get(reqwest::header::CONTENT_DISPOSITION)
                    .and_then(|v| {
                        crate::wecom::api::parse_content_disposition_filename(v.as_bytes())
                    });
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| FetchError::Download(e.without_url()))?;
                if bytes.len() > self.max_bytes {
                    return Err(FetchError::TooLarge {
                        cap: self.max_bytes,
                    });
                }
                Ok(FetchedMedia {
                    file_name,
                    bytes: self.aibot_key.decrypt_padded(&bytes)?,
                })
            }
        }
    }
}

/// Why a blank template could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no template file {name}")]
    Missing { name: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Api(#[from] crate::wecom::api::ApiError),
}

/// How long a cached `media_id` is used: WeCom keeps uploads 3 days; an hour's margin so a send
/// never names one that expires on the way.
const TEMPLATE_MEDIA_TTL: std::time::Duration =
    std::time::Duration::from_secs(3 * 24 * 3600 - 3600);

/// WeCom's limits for a `file` upload (media/upload, doc 90253): more than 5 bytes (40006
/// below), at most 20 MB.
pub const TEMPLATE_MIN_BYTES: u64 = 6;
pub const TEMPLATE_MAX_BYTES: u64 = 20 * 1024 * 1024;

/// A template file that passed the checks at load, held in memory (at most 20 MB each).
struct Template {
    bytes: std::sync::Arc<Vec<u8>>,
    /// Its media_id cache key, by content.
    key: String,
}

/// Why a file in the templates folder is not offered.
fn template_problem(name: &str, meta: &std::fs::Metadata, head: &[u8]) -> Option<String> {
    if !meta.is_file() {
        return Some("not a regular file".to_owned());
    }
    if meta.len() < TEMPLATE_MIN_BYTES {
        return Some(format!(
            "{} bytes: WeCom refuses files of 5 bytes or fewer",
            meta.len()
        ));
    }
    if meta.len() > TEMPLATE_MAX_BYTES {
        return Some(format!(
            "{} bytes: over WeCom's 20 MB file limit",
            meta.len()
        ));
    }
    let extension = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let magic: &[u8] = match extension.as_str() {
        "docx" | "xlsx" | "pptx" | "zip" => b"PK\x03\x04",
        "pdf" => b"%PDF",
        "doc" | "xls" | "ppt" => b"\xD0\xCF\x11\xE0",
        _ => b"",
    };
    (!head.starts_with(magic)).then(|| format!("its content is not a .{extension} file"))
}

/// Reads and checks every file of the templates folder once, at start-up: a file too small,
/// too large for WeCom or not of the type its name says is logged ("template refused") and
/// never offered; the question's text hint then stands alone.
fn load_templates(dir: &std::path::Path) -> std::collections::HashMap<String, Template> {
    use sha2::Digest;
    let mut templates = std::collections::HashMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "templates folder not readable; no template files are sent");
            return templates;
        }
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        // Only what passes the size check is read, and only once.
        let bytes = if template_problem(&name, &meta, b"").is_some_and(|p| !p.contains("content")) {
            Vec::new()
        } else {
            std::fs::read(&path).unwrap_or_default()
        };
        if let Some(reason) = template_problem(&name, &meta, &bytes) {
            tracing::warn!(template = %name, reason = %reason, "template refused");
            continue;
        }
        let key = keys::template_media(&sha2::Sha256::digest(&bytes));
        templates.insert(
            name,
            Template {
                bytes: std::sync::Arc::new(bytes),
                key,
            },
        );
    }
    templates
}

/// Templates in a folder, checked and read once at start-up, uploaded once with `media/upload`
/// (one upload at a time, so people asked at once share it) and sent with `message/send`.
/// The `media_id` is kept in the store (shared by instances) under the file's SHA-256, so a
/// replaced file is uploaded again and an unchanged one is not.
pub struct WecomTemplateFiles {
    api: std::sync::Arc<WecomApi>,
    store: std::sync::Arc<dyn crate::store::Store>,
    templates: std::collections::HashMap<String, Template>,
    uploading: tokio::sync::Mutex<()>,
}

impl WecomTemplateFiles {
    #[must_use]
    pub fn new(
        api: std::sync::Arc<WecomApi>,
        store: std::sync::Arc<dyn crate::store::Store>,
        dir: std::path::PathBuf,
    ) -> Self {
        Self {
            api,
            store,
            templates: load_templates(&dir),
            uploading: tokio::sync::Mutex::new(()),
        }
    }

    /// The cached media_id, or a fresh upload (`fresh`: ignore the cache, after a 40007).
    async fn media_id(
        &self,
        name: &str,
        template: &Template,
        fresh: bool,
    ) -> Result<String, TemplateError> {
        let _one_at_a_time = self.uploading.lock().await;
        if !fresh
            && let Some(id) = self
                .store
                .get(&template.key)
                .await?
                .and_then(|v| String::from_utf8(v).ok())
        {
            return Ok(id);
        }
        self.upload(&template.key, name, &template.bytes).await
    }

    async fn upload(&self, key: &str, name: &str, bytes: &[u8]) -> Result<String, TemplateError> {
        let media_id = self
            .api
            .media_upload(crate::wecom::api::MediaKind::File, name, bytes)
            .await?;
        self.store
            .put(key, media_id.as_bytes(), Some(TEMPLATE_MEDIA_TTL))
            .await?;
        tracing::info!(template = name, "template uploaded");
        Ok(media_id)
    }

    async fn send_media(&self, user: &UserId, media_id: &str) -> Result<(), TemplateError> {
        use crate::wecom::api::{MediaRef, MessageBody, OutboundMessage};
        let message = OutboundMessage::new(
            &[user.as_str()],
            MessageBody::File {
                file: MediaRef {
                    media_id: media_id.to_owned(),
                },
            },
        );
        self.api.send(&message).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl BlankTemplates for WecomTemplateFiles {
    async fn content(&self, name: &str) -> Option<Vec<u8>> {
        self.templates.get(name).map(|t| t.bytes.to_vec())
    }

    fn available(&self, name: &str) -> bool {
        self.templates.contains_key(name)
    }

    async fn send(&self, user: &UserId, name: &str) -> Result<(), PortError> {
        self.send_template(user, name)
            .await
            .map_err(|e| PortError::new("template send", e))
    }
}

impl WecomTemplateFiles {
    /// Sends the template `name` to `user`, uploading it first when no cached upload stands.
    pub async fn send_template(&self, user: &UserId, name: &str) -> Result<(), TemplateError> {
        let template = self
            .templates
            .get(name)
            .ok_or_else(|| TemplateError::Missing {
                name: name.to_owned(),
            })?;
        let media_id = self.media_id(name, template, false).await?;
        match self.send_media(user, &media_id).await {
            // WeCom forgot the upload early (40007): upload again, once.
            Err(TemplateError::Api(e))
                if e.errcode() == Some(crate::wecom::api::errcode::INVALID_MEDIA_ID) =>
            {
                let media_id = self.media_id(name, template, true).await?;
                self.send_media(user, &media_id).await
            }
            other => other,
        }
    }
}
