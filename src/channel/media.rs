//! Fetching what people attach (disclaimers, screenshots): app media by `media/get`, AI-bot
//! media from its encrypted URL (valid five minutes), decrypted with the bot's key.

use crate::wecom::AesKey;
use crate::wecom::api::WecomApi;

use super::MediaSource;

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
