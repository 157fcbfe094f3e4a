//! The signed JSON webhook used for the request platform (`webhook`) and OA tickets (`oa`).
//!
//! # Request
//!
//! `POST <url>` with the body a [`WebhookEvent`](crate::notify::delivery::WebhookEvent) in JSON and the headers
//!
//! | header | value |
//! | --- | --- |
//! | `Content-Type` | `application/json` |
//! | `X-Kaitong-Idempotency-Key` | e.g. `handoff:webhook:KT-20261128-0007`; equal to the body's `idempotency_key` |
//! | `X-Kaitong-Timestamp` | unix seconds when this attempt was signed |
//! | `X-Kaitong-Signature` | `sha256=` + lowercase hex of HMAC-SHA256(secret, timestamp + "." + body) |
//!
//! # Verifying (receiver side)
//!
//! 1. Take the raw body bytes exactly as received (before any JSON parsing).
//! 2. Compute HMAC-SHA256 with the shared secret as key over the bytes of
//!    `X-Kaitong-Timestamp`, then `.`, then the body.
//! 3. Compare `sha256=<hex>` with `X-Kaitong-Signature` in constant time
//!    ([`verify_signature`] does 2 and 3).
//! 4. Reject timestamps more than 5 minutes from your clock (replays).
//! 5. Treat a repeated idempotency key as done: answer 2xx without doing it twice.
//!
//! Example: secret `s3cret`, timestamp `1700000000`, body `{"a":1}` →
//! `X-Kaitong-Signature: sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940`
//! (HMAC over the bytes `1700000000.{"a":1}`).
//!
//! # Answers
//!
//! 2xx = delivered. 408, 429, 5xx, timeouts and connection errors are retried with backoff
//! (a `Retry-After` in seconds or as an HTTP date is honoured). Any other status (other 4xx,
//! 3xx: redirects are not followed, so the signed body never goes to another host) is
//! permanent: the item is listed as failed for a handler to look at.
//!
//! Logs name the URL's host only; the secret and the URL's path and query are never logged.

use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use sha2::Sha256;

use super::error::HandoffError;
use crate::notify::delivery::{Delivery, DeliveryKind};
use crate::notify::outbox::{DeliveryError, OutboxItem, Transport};
use crate::notify::people::Requesters;
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer asking for more than this is capped: the outbox's own backoff takes over after.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);
/// How much of an error answer goes into the item's `last_error`.
const ERROR_BODY_CHARS: usize = 200;

pub const HEADER_IDEMPOTENCY_KEY: &str = "X-Kaitong-Idempotency-Key";
pub const HEADER_TIMESTAMP: &str = "X-Kaitong-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Kaitong-Signature";

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // Only fixed-size-key MACs reject a key length; HMAC takes any (an empty secret is refused
    // when the transport is built).
    #[allow(clippy::expect_used)]
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Kaitong-Signature` value: `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
#[must_use]
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Whether `header` (an `X-Kaitong-Signature` value) signs `timestamp` and `body` with
/// `secret`. Constant-time in the signature; does not check the timestamp's age.
#[must_use]
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&given).is_ok()
}

/// Sends outbox items of one kind to one webhook.
#[derive(Debug)]
pub struct WebhookTransport {
    kind: DeliveryKind,
    url: reqwest::Url,
    /// For logs and error messages: never the path or query (they may carry tokens).
    host: String,
    secret: Secret,
    client: reqwest::Client,
    /// Names the requester in the payload (WeCom's contacts); `None`: the userid only.
    requesters: Option<Requesters>,
}

impl WebhookTransport {
    /// `kind` is the outbox kind this instance sends ([`DeliveryKind::Webhook`] or
    /// [`DeliveryKind::Oa`]).
    pub fn new(kind: DeliveryKind, url: &str, secret: &str) -> Result<Self, HandoffError> {
        let what = kind.as_str();
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| HandoffError::InvalidUrl {
            what,
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HandoffError::InvalidUrl {
                what,
                reason: format!("scheme {:?}: expected http or https", parsed.scheme()),
            });
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        if host.is_empty() {
            return Err(HandoffError::InvalidUrl {
                what,
                reason: "no host".into(),
            });
        }
        if secret.is_empty() {
            return Err(HandoffError::MissingSecret { what });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kaitong/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HandoffError::Client {
                what,
                reason: e.to_string(),
            })?;
        Ok(Self {
            kind,
            url: parsed,
            host,
            secret: Secret::from(secret),
            client,
            requesters: None,
        })
    }

    /// Names the requester in each payload from WeCom's contacts.
    #[must_use]
    pub fn naming(mut self, requesters: Option<Requesters>) -> Self {
        self.requesters = requesters;
        self
    }

    /// The host this transport posts to (for logs and start-up messages).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }
}

#[async_trait::async_trait]
impl Transport for WebhookTransport {
    fn kind(&self) -> DeliveryKind {
        self.kind
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let event = match (&item.delivery, self.kind) {
            (Delivery::Webhook(event), DeliveryKind::Webhook)
            | (Delivery::Oa(event), DeliveryKind::Oa) => event,
            _ => return Err(item.unexpected(self.kind)),
        };
        // Named at sending, not queuing: the lookup runs after filing, off the reply path.
        let mut event = event.clone();
        if event.request.requester.name.is_none()
            && let Some(requesters) = &self.requesters
            && let Some(user) = crate::domain::UserId::parse(&event.request.requester.userid)
            && let Some(contact) = requesters.contact(&user).await
        {
            event.request.requester.name_from(&contact);
        }
        // Through a JSON value, as the body has always been built (keys in sorted order).
        let body = serde_json::to_value(&event)
            .and_then(|payload| serde_json::to_vec(&payload))
            .map_err(|e| DeliveryError::permanent(format!("payload not serialisable: {e}")))?;
        let timestamp = Utc::now().timestamp().to_string();
        let signature = sign(self.secret.expose(), &timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_IDEMPOTENCY_KEY, &item.id)
            .header(HEADER_TIMESTAMP, &timestamp)
            .header(HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                // `without_url`: the error text must not carry the URL's path or query.
                let retryable = !e.is_builder();
                let e = e.without_url();
                let cause = crate::wecom::api::transport_cause(&e);
                let message = format!(
                    "{} {}: {cause}: {}",
                    self.kind.as_str(),
                    self.host,
                    crate::wecom::api::source_chain(&e)
                );
                return Err(if retryable {
                    DeliveryError::retry(message)
                } else {
                    DeliveryError::permanent(message)
                }
                .with_cause(cause));
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        if (200..300).contains(&status) {
            tracing::info!(kind = self.kind.as_str(), host = %self.host, id = %item.id, status, "hand-off delivered");
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let excerpt: String = text.chars().take(ERROR_BODY_CHARS).collect();
        let message = format!(
            "{} {} answered {status}: {}",
            self.kind.as_str(),
            self.host,
            excerpt.trim()
        );
        Err(classify(status, retry_after, message))
    }
}

/// Decides what an HTTP answer other than 2xx means for the outbox.
#[must_use]
pub fn classify(status: u16, retry_after: Option<Duration>, message: String) -> DeliveryError {
    let retryable = status == 408 || status == 429 || (500..600).contains(&status);
    if retryable {
        let mut e = DeliveryError::retry(message);
        e.retry_after = retry_after;
        e
    } else {
        DeliveryError::permanent(message)
    }
    .with_cause(format!("HTTP {status}"))
}

/// `Retry-After` as seconds or an HTTP date, capped at an hour.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if let Ok(secs) = raw.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
        (at.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or_default()
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signature_round_trips_and_rejects_tampering() {
        let sig = sign("s3cret", "1700000000", br#"{"a":1}"#);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify_signature(
            "s3cret",
            "1700000000",
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify_signature(
            "other",
            "1700000000",
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000001",
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            br#"{"a":2}"#,
            &sig
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            br#"{"a":1}"#,
            &sig[7..]
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            br#"{"a":1}"#,
            "sha256=zz"
        ));
    }

    #[test]
    fn signature_matches_a_fixed_vector() {
        // Python: hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            sign("s3cret", "1700000000", br#"{"a":1}"#),
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[test]
    fn statuses_are_classified() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(classify(s, None, String::new()).retryable, "{s}");
        }
        for s in [301, 400, 401, 403, 404, 409, 422] {
            assert!(!classify(s, None, String::new()).retryable, "{s}");
        }
        let e = classify(503, Some(Duration::from_secs(7)), String::new());
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        h.insert(RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn construction_refuses_bad_urls_and_empty_secrets() {
        assert!(WebhookTransport::new(DeliveryKind::Webhook, "not a url", "s").is_err());
        assert!(WebhookTransport::new(DeliveryKind::Webhook, "ftp://h/x", "s").is_err());
        assert!(matches!(
            WebhookTransport::new(DeliveryKind::Webhook, "https://h/x", ""),
            Err(HandoffError::MissingSecret { .. })
        ));
        let t = WebhookTransport::new(DeliveryKind::Oa, "https://oa.example.com/hook?token=t", "s")
            .unwrap();
        assert_eq!(t.host(), "oa.example.com");
        assert!(!format!("{t:?}").contains("\"s\""));
    }
}
