//! `media/get` and `media/upload`: downloaded media, the upload form WeCom reads, and the file
//! name from a `Content-Disposition` header.

use std::fmt;

use axum::body::Bytes;
use serde::Deserialize;

use super::client::WecomApi;
use super::errors::ApiError;
use super::wire::{Expect, Reply, RequestBody};

#[derive(Deserialize)]
struct UploadReply {
    media_id: String,
}

/// A downloaded temporary media file.
#[derive(Clone, PartialEq, Eq)]
pub struct Media {
    pub file_name: Option<String>,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Media {
    // Bytes can be megabytes; print only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Media")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The `type` of `media/upload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Voice,
    Video,
    File,
}

impl MediaKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Voice => "voice",
            Self::Video => "video",
            Self::File => "file",
        }
    }
}

impl WecomApi {
    /// Downloads a temporary media file. Errors arrive as a JSON body with HTTP 200, recognised
    /// by Content-Type, not by status.
    pub async fn media_get(&self, media_id: &str) -> Result<Media, ApiError> {
        const PATH: &str = "media/get";
        let query = [("media_id", media_id)];
        match self
            .call(
                reqwest::Method::GET,
                PATH,
                &query,
                RequestBody::Empty,
                Expect::Media,
            )
            .await?
        {
            Reply::Binary {
                content_type,
                content_disposition,
                bytes,
            } => Ok(Media {
                file_name: content_disposition
                    .as_deref()
                    .and_then(parse_content_disposition_filename),
                content_type,
                bytes,
            }),
            Reply::Json(_) => Err(ApiError::InvalidResponse {
                path: PATH,
                reason: "JSON with errcode 0 instead of media bytes".to_owned(),
            }),
        }
    }

    /// Uploads a temporary media file (valid 3 days) and returns its `media_id`. WeCom rejects
    /// files of 5 bytes or fewer (40006).
    pub async fn media_upload(
        &self,
        kind: MediaKind,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<String, ApiError> {
        const PATH: &str = "media/upload";
        let reply: UploadReply = self
            .call_json(
                reqwest::Method::POST,
                PATH,
                &[("type", kind.as_str())],
                RequestBody::Media {
                    file_name: header_safe_file_name(file_name),
                    bytes: Bytes::copy_from_slice(bytes),
                },
            )
            .await?;
        Ok(reply.media_id)
    }
}

/// A file name that needs no escaping inside the part's quoted `filename="…"`: WeCom takes
/// UTF-8 names raw, and a quote, backslash or line break would need escapes it may not read.
fn header_safe_file_name(file_name: &str) -> String {
    file_name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// The upload form: one part named `media` with the file name unencoded (as WeCom expects)
/// and a known length, so reqwest sends a `Content-Length` rather than chunks.
pub(super) fn media_form(
    file_name: &str,
    bytes: &Bytes,
) -> Result<reqwest::multipart::Form, ApiError> {
    let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let part = reqwest::multipart::Part::stream_with_length(bytes.clone(), length)
        .file_name(file_name.to_owned())
        .mime_str("application/octet-stream")
        .map_err(|error| ApiError::InvalidRequest {
            path: "media/upload",
            reason: error.to_string(),
        })?;
    Ok(reqwest::multipart::Form::new()
        .percent_encode_noop()
        .part("media", part))
}

/// The file name from a `Content-Disposition` header value: `filename*=UTF-8''…` (RFC 5987)
/// wins over `filename="…"`; the plain form may carry raw UTF-8 (as WeCom sends Chinese names)
/// or percent-escapes.
#[must_use]
pub fn parse_content_disposition_filename(header: &[u8]) -> Option<String> {
    let header = String::from_utf8_lossy(header);
    let mut plain = None;
    let mut extended = None;
    for param in split_params(&header) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name == "filename*" {
            // charset'language'percent-encoded
            let mut pieces = value.splitn(3, '\'');
            let (charset, _language, encoded) = (pieces.next(), pieces.next(), pieces.next());
            if let (Some(charset), Some(encoded)) = (charset, encoded)
                && charset.eq_ignore_ascii_case("utf-8")
            {
                extended = percent_encoding::percent_decode_str(encoded)
                    .decode_utf8()
                    .ok()
                    .map(|name| name.into_owned());
            }
        } else if name == "filename" {
            let unquoted = value
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or(value)
                .replace("\\\"", "\"");
            let decoded = percent_encoding::percent_decode_str(&unquoted)
                .decode_utf8()
                .map(|name| name.into_owned())
                .unwrap_or(unquoted);
            plain = Some(decoded);
        }
    }
    extended.or(plain).filter(|name| !name.is_empty())
}

/// Splits header parameters on `;` outside quotes.
fn split_params(header: &str) -> Vec<&str> {
    let mut params = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in header.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                params.push(&header[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    params.push(&header[start..]);
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_forms() {
        let parse = |h: &str| parse_content_disposition_filename(h.as_bytes());
        assert_eq!(
            parse("attachment; filename=\"report.pdf\"").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            parse("attachment; filename=\"报价单.xlsx\"").as_deref(),
            Some("报价单.xlsx")
        );
        assert_eq!(
            parse("attachment; filename=\"%E6%8A%A5%E4%BB%B7.txt\"").as_deref(),
            Some("报价.txt")
        );
        assert_eq!(
            parse("attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E6%8A%A5%E4%BB%B7.txt")
                .as_deref(),
            Some("报价.txt")
        );
        assert_eq!(
            parse("attachment; filename=\"a;b.txt\"").as_deref(),
            Some("a;b.txt")
        );
        assert_eq!(parse("attachment"), None);
    }

    #[test]
    fn upload_names_lose_only_what_would_break_the_part_header() {
        assert_eq!(
            header_safe_file_name("报告\"a\\b\r\n.txt"),
            "报告_a_b__.txt"
        );
        assert_eq!(
            header_safe_file_name("营业执照 2026.pdf"),
            "营业执照 2026.pdf"
        );
        assert!(media_form("报告.txt", &Bytes::from_static(b"hello world")).is_ok());
    }
}
