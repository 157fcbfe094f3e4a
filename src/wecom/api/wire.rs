//! The shapes of one call on the wire: the request body, what kind of answer an endpoint gives,
//! what a successful call returned, WeCom's errcode object, and encoding and decoding JSON
//! bodies into [`ApiError`]s.

// `bytes::Bytes` via axum's re-export (no direct `bytes` dependency): request bodies are
// cloned cheaply when a call is retried with a fresh token.
use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::errors::ApiError;

/// `{"errcode":…,"errmsg":…}`, present on every JSON answer.
#[derive(Deserialize)]
pub(super) struct Status {
    #[serde(default)]
    pub(super) errcode: i64,
    #[serde(default)]
    pub(super) errmsg: String,
}

pub(super) enum RequestBody {
    Empty,
    Json(Bytes),
    /// A `multipart/form-data` upload with the single part WeCom reads, `media`; rebuilt for
    /// each attempt (a reqwest form is consumed by sending it).
    Media {
        file_name: String,
        bytes: Bytes,
    },
}

/// What kind of successful answer an endpoint gives; decides the body cap and whether
/// non-JSON bodies are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Json,
    /// Raw bytes on success (media/get), JSON only on error.
    Media,
}

/// What a successful call returned: a JSON object (errcode 0) or raw bytes (media/get).
pub(super) enum Reply {
    Json(Bytes),
    Binary {
        content_type: String,
        content_disposition: Option<Vec<u8>>,
        bytes: Vec<u8>,
    },
}

pub(super) fn json_body<T: Serialize>(
    path: &'static str,
    value: &T,
) -> Result<RequestBody, ApiError> {
    serde_json::to_vec(value)
        .map(|bytes| RequestBody::Json(Bytes::from(bytes)))
        .map_err(|error| ApiError::InvalidRequest {
            path,
            reason: error.to_string(),
        })
}

pub(super) fn decode<T: DeserializeOwned>(path: &'static str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| ApiError::InvalidResponse {
        path,
        reason: error.to_string(),
    })
}

pub(super) fn not_json(path: &'static str) -> ApiError {
    ApiError::InvalidResponse {
        path,
        reason: "expected a JSON body".to_owned(),
    }
}
