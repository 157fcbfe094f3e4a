//! Fetching what people attach (disclaimers, screenshots): app media by `media/get`, AI-bot
//! media from its encrypted URL (valid five minutes), decrypted with the bot's key.

use crate::wecom::AesKey;
use crate::wecom::api::WecomApi;

use crate::domain::{MediaSource, UserId};
use crate::store::keys;

/// A downloaded attachment.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedMedia {
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for FetchedMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchedMedia")
            .field("file_name", &self.file_name)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("media/get failed: {0}")]
    Api(#[from] crate::wecom::api::ApiError),
    #[error("download failed: {0}")]
    Download(String),
    #[error("decryption failed: {0}")]
    Decrypt(#[from] crate::wecom::CryptoError),
}

/// Downloads an attachment named in an inbound message.
#[async_trait::async_trait]
pub trait AttachmentFetcher: Send + Sync + 'static {
    async fn fetch(&self, source: &MediaSource) -> Result<FetchedMedia, FetchError>;
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
    async fn fetch(&self, source: &MediaSource) -> Result<FetchedMedia, FetchError> {
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
                    .map_err(|e| FetchError::Download(e.without_url().to_string()))?;
                if !response.status().is_success() {
                    return Err(FetchError::Download(format!("HTTP {}", response.status())));
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
                    .map_err(|e| FetchError::Download(e.without_url().to_string()))?;
                if bytes.len() > self.max_bytes {
                    return Err(FetchError::Download("file too large".into()));
                }
                Ok(FetchedMedia {
                    file_name,
                    bytes: self.aibot_key.decrypt_padded(&bytes)?,
                })
            }
        }
    }
}

/// The blank templates fields name (免责声明填写样板.docx), sent to the person as files.
#[async_trait::async_trait]
pub trait TemplateFiles: Send + Sync + 'static {
    /// The template's bytes, when a file of that name is configured.
    async fn content(&self, name: &str) -> Option<Vec<u8>>;
    /// Sends the template to `user` as a file message.
    async fn send(&self, user: &UserId, name: &str) -> Result<(), TemplateError>;
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no template file {0}")]
    Missing(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Api(#[from] crate::wecom::api::ApiError),
}

/// How long a cached `media_id` is used: WeCom keeps uploads 3 days; an hour's margin so a send
/// never names one that expires on the way.
const TEMPLATE_MEDIA_TTL: std::time::Duration =
    std::time::Duration::from_secs(3 * 24 * 3600 - 3600);

/// Templates in a folder, uploaded once with `media/upload` and sent with `message/send`.
/// The `media_id` is kept in the store (shared by instances) under the file's SHA-256, so a
/// replaced file is uploaded again and an unchanged one is not.
pub struct WecomTemplateFiles {
    api: std::sync::Arc<WecomApi>,
    store: std::sync::Arc<dyn crate::store::Store>,
    dir: std::path::PathBuf,
}

impl WecomTemplateFiles {
    #[must_use]
    pub fn new(
        api: std::sync::Arc<WecomApi>,
        store: std::sync::Arc<dyn crate::store::Store>,
        dir: std::path::PathBuf,
    ) -> Self {
        Self { api, store, dir }
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
impl TemplateFiles for WecomTemplateFiles {
    async fn content(&self, name: &str) -> Option<Vec<u8>> {
        // Only a plain file name is looked up: a catalog value never reaches outside the folder.
        let plain = !name.is_empty()
            && std::path::Path::new(name).file_name() == Some(std::ffi::OsStr::new(name));
        if !plain || self.dir.as_os_str().is_empty() {
            return None;
        }
        tokio::fs::read(self.dir.join(name)).await.ok()
    }

    async fn send(&self, user: &UserId, name: &str) -> Result<(), TemplateError> {
        use sha2::Digest;
        let bytes = self
            .content(name)
            .await
            .ok_or_else(|| TemplateError::Missing(name.to_owned()))?;
        let key = keys::template_media(&sha2::Sha256::digest(&bytes));
        let cached = self
            .store
            .get(&key)
            .await?
            .and_then(|v| String::from_utf8(v).ok());
        let media_id = match cached {
            Some(id) => id,
            None => self.upload(&key, name, &bytes).await?,
        };
        match self.send_media(user, &media_id).await {
            // WeCom forgot the upload early (40007): upload again, once.
            Err(TemplateError::Api(e)) if e.errcode() == Some(40007) => {
                let media_id = self.upload(&key, name, &bytes).await?;
                self.send_media(user, &media_id).await
            }
            other => other,
        }
    }
}
