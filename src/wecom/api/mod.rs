//! Outbound WeCom server API client, one [`WecomApi`] per self-built app (corp id + secret +
//! agent id): `gettoken`, `message/send`, `media/get`, `media/upload`,
//! `message/update_template_card`, `user/get`, `department/list`, `oa/applyevent` (PROTOCOL.md §4, §7).
//!
//! Owns: the per-app access-token cache (refreshed early, single-flight, retried once on a
//! rejected token), request/response wire shapes, body size caps, and the classification of
//! WeCom errcodes into retryable / configuration problems. It must not know about dialogs,
//! channels or the store, and it does not retry busy/rate-limit errors itself: callers decide,
//! guided by [`ApiError::is_retryable`] and [`ApiError::retry_after`].
//!
//! Secrets: neither the app secret nor the access token is ever logged or put into an error.
//! Logs carry only the API path and the errcode. `reqwest` errors are stripped of their URL
//! because the URL carries the token (or, for gettoken, the secret).
//!
//! Layout: `client` holds the client, its settings and state; this file its one call path
//! (token, send, capped read, errcode check); `wire` the request and reply shapes of a call;
//! `errors` the error type and errcode classification; `token` the token cache;
//! `messages` the `message/send` and `update_template_card` shapes and calls; `media` the
//! media calls, upload form and Content-Disposition parsing; `response_url` the AI bot's one
//! extra message per callback (no token). Text is split by [`crate::wecom::text`].
//!
//! Limitations: `media_get` downloads in one request, so files above 20 MB (which WeCom only
//! serves in `Range` chunks, else errcode 830002) are not supported; a multi-part `send_text`
//! that fails midway has already delivered the earlier parts.

mod client;
mod contacts;
mod errors;
mod media;
mod messages;
mod response_url;
mod token;
mod wire;

use axum::body::Bytes;
use serde::de::DeserializeOwned;

pub use client::{ApiSettings, WecomApi};
pub use contacts::{ApplyText, Department, Member};
pub use errors::{ApiError, errcode, source_chain, transport_cause};
pub use media::{Media, MediaKind, parse_content_disposition_filename};
pub use messages::{
    Content, DEFAULT_DUPLICATE_CHECK_INTERVAL, DuplicateCheck, MediaRef, MessageBody,
    OutboundMessage, SendOutcome,
};
pub use response_url::ResponseUrls;

use media::media_form;
use wire::{Expect, Reply, RequestBody, Status, decode, not_json};

impl WecomApi {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.api_base)
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &'static str,
        query: &[(&str, &str)],
        body: RequestBody,
    ) -> Result<T, ApiError> {
        match self.call(method, path, query, body, Expect::Json).await? {
            Reply::Json(bytes) => decode(path, &bytes),
            Reply::Binary { .. } => Err(not_json(path)),
        }
    }

    /// One authenticated call; when WeCom rejects the token, fetches a fresh one and retries
    /// exactly once.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &'static str,
        query: &[(&str, &str)],
        body: RequestBody,
        expect: Expect,
    ) -> Result<Reply, ApiError> {
        let mut retried = false;
        loop {
            let token = self.access_token().await?;
            let mut request = self
                .http
                .request(method.clone(), self.url(path))
                .query(&[("access_token", token.as_str())])
                .query(query);
            request = match &body {
                RequestBody::Empty => request,
                RequestBody::Json(bytes) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone()),
                RequestBody::Media { file_name, bytes } => {
                    request.multipart(media_form(file_name, bytes)?)
                }
            };
            match self.execute(path, request, expect).await {
                Err(error) if error.is_token_rejection() && !retried => {
                    tracing::info!(
                        path,
                        errcode = error.errcode(),
                        "WeCom rejected the access token; refreshing and retrying once"
                    );
                    self.invalidate_if_current(&token).await;
                    retried = true;
                }
                other => return other,
            }
        }
    }

    /// Sends, reads the capped body, and turns a non-zero errcode into [`ApiError::WeCom`].
    async fn execute(
        &self,
        path: &'static str,
        request: reqwest::RequestBuilder,
        expect: Expect,
    ) -> Result<Reply, ApiError> {
        let result = self.execute_inner(path, request, expect).await;
        // errcode 0 for success; -2 marks a failure without a WeCom errcode (transport, HTTP).
        crate::metrics::wecom_api(
            path,
            result
                .as_ref()
                .map_or_else(|e| e.errcode().unwrap_or(-2), |_| 0),
        );
        if let Err(error) = &result
            && !error.is_token_rejection()
        {
            // Token rejections are logged by `call`, which retries them.
            // Path and errcode only: never the URL (token) or the secret.
            tracing::warn!(
                path = error.path(),
                errcode = error.errcode(),
                retryable = error.is_retryable(),
                error = %error,
                "WeCom API call failed"
            );
        }
        result
    }

    async fn execute_inner(
        &self,
        path: &'static str,
        request: reqwest::RequestBuilder,
        expect: Expect,
    ) -> Result<Reply, ApiError> {
        let transport = |source: reqwest::Error| ApiError::Transport {
            path,
            source: source.without_url(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let content_disposition = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .map(|value| value.as_bytes().to_vec());
        let declared_json = media_type(&content_type) == "application/json";
        // Only media/get may answer with large non-JSON bodies.
        let limit = if declared_json || expect == Expect::Json {
            self.settings.json_body_cap
        } else {
            self.settings.media_body_cap
        };
        let bytes = read_body(path, response, limit).await?;
        reply_of(
            path,
            status,
            expect,
            Received {
                content_type,
                content_disposition,
                bytes,
            },
        )
    }
}

/// A response's body as read, with the headers that say what it is.
struct Received {
    content_type: String,
    content_disposition: Option<Vec<u8>>,
    bytes: Vec<u8>,
}

/// The media type of a Content-Type, lowercase, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The body of `response`, refused as soon as it would pass `limit` bytes.
async fn read_body(
    path: &'static str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let transport = |source: reqwest::Error| ApiError::Transport {
        path,
        source: source.without_url(),
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(ApiError::BodyTooLarge { path, limit });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge { path, limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// What a response with HTTP `status` means: WeCom's errcode when its body carries one, a
/// JSON reply, a downloaded file, or the HTTP error.
fn reply_of(
    path: &'static str,
    status: reqwest::StatusCode,
    expect: Expect,
    received: Received,
) -> Result<Reply, ApiError> {
    let media_type = media_type(&received.content_type);
    let declared_json = media_type == "application/json";
    let bytes = received.bytes;
    // WeCom error bodies come as application/json, sometimes text/plain; a text/plain body
    // that is not an errcode object is a downloaded .txt file. JSON-only endpoints are read
    // as JSON whatever the label, as long as the body carries an errcode.
    let status_body = if declared_json || expect == Expect::Json || media_type == "text/plain" {
        serde_json::from_slice::<Status>(&bytes)
            .ok()
            .filter(|_| declared_json || looks_like_status(&bytes))
    } else {
        None
    };
    if let Some(reply_status) = status_body {
        if reply_status.errcode != 0 {
            return Err(ApiError::WeCom {
                path,
                errcode: reply_status.errcode,
                errmsg: reply_status.errmsg,
            });
        }
        if status.is_success() {
            return Ok(Reply::Json(Bytes::from(bytes)));
        }
    }
    if !status.is_success() {
        return Err(ApiError::Http {
            path,
            status: status.as_u16(),
        });
    }
    if declared_json || expect == Expect::Json {
        return Err(ApiError::InvalidResponse {
            path,
            reason: format!("body is not a WeCom JSON object (Content-Type {media_type:?})"),
        });
    }
    Ok(Reply::Binary {
        content_type: received.content_type,
        content_disposition: received.content_disposition,
        bytes,
    })
}

fn looks_like_status(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
        .is_ok_and(|object| object.contains_key("errcode"))
}
