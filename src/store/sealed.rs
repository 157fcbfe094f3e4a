//! Values at rest are sealed: every value written through [`Sealed`] is encrypted with
//! ChaCha20-Poly1305 under `store.secret_key`, with the record's key as associated data (so a
//! sealed value cannot be moved to another key). A sensitive answer (an API secret typed into a
//! form) sits in sessions, filed requests, hand-off payloads and cached replies; sealing whole
//! values covers every one of those places without the dialog layer knowing.
//!
//! Record layout: `KTS1` ‖ key id (4 bytes: SHA-256 of the key, truncated) ‖ nonce (12) ‖
//! ciphertext+tag. Values without the `KTS1` prefix are returned as they are: records written
//! before sealing was turned on, and counters, which `increment` keeps as plain decimal text
//! (Redis `INCR` needs them so; a number is no secret).
//!
//! Rotation: put the new key in `store.secret_key` and the old one in
//! `store.previous_secret_keys`; records are read with whichever key sealed them and re-sealed
//! with the new key when next written.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use sha2::Digest;

use super::backend::{Durability, Store, Versioned};
use super::error::StoreError;
use crate::config::StoreSection;
use crate::secret::Secret;

const MAGIC: &[u8; 4] = b"KTS1";
const ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + ID_LEN + NONCE_LEN;

/// How often a compare-and-swap re-reads when the sealed bytes changed under it.
const CAS_ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum SealKeyError {
    #[error("not base64")]
    Base64,
    #[error("must be 32 bytes (44 base64 characters), got {0} bytes")]
    Length(usize),
}

/// A configured seal key that is not one; names the setting, never the value.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {key}: {reason} (generate one with `openssl rand -base64 32`)")]
pub struct SealKeySettingError {
    pub key: &'static str,
    pub reason: SealKeyError,
}

/// One 256-bit key and its short id.
#[derive(Clone)]
pub struct SealKey {
    id: [u8; ID_LEN],
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({})", hex::encode(self.id))
    }
}

impl SealKey {
    /// A key from its base64 text (standard alphabet, 32 bytes).
    pub fn parse(text: &str) -> Result<Self, SealKeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SealKeyError::Base64)?;
        if bytes.len() != 32 {
            return Err(SealKeyError::Length(bytes.len()));
        }
        let digest = sha2::Sha256::digest(&bytes);
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        let cipher = ChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| SealKeyError::Length(bytes.len()))?;
        Ok(Self { id, cipher })
    }

    /// The key's id as hex, for logs and errors (never the key).
    #[must_use]
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }
}

/// The current key and the previous ones: seals with the current, opens with whichever sealed.
#[derive(Debug, Clone)]
pub struct Sealer {
    current: SealKey,
    previous: Vec<SealKey>,
}

impl Sealer {
    #[must_use]
    pub fn new(current: SealKey, previous: Vec<SealKey>) -> Self {
        Self { current, previous }
    }

    /// The keys from `[store]`; `None` when `store.secret_key` is empty (not sealed).
    pub fn from_settings(section: &StoreSection) -> Result<Option<Self>, SealKeySettingError> {
        let parse = |key: &'static str, value: &Secret| {
            SealKey::parse(value.expose()).map_err(|reason| SealKeySettingError { key, reason })
        };
        if section.secret_key.expose().trim().is_empty() {
            return Ok(None);
        }
        let current = parse("store.secret_key", &section.secret_key)?;
        let previous = section
            .previous_secret_keys
            .iter()
            .map(|k| parse("store.previous_secret_keys", k))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self::new(current, previous)))
    }

    /// Encrypts `value` for the record `key` under the current key.
    pub fn seal(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Backend(format!("sealing {key} failed").into()))?;
        let mut record = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        record.extend_from_slice(MAGIC);
        record.extend_from_slice(&self.current.id);
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&ciphertext);
        Ok(record)
    }

    /// The plaintext of a record read from `key`; unsealed records are returned as they are.
    pub fn open(&self, key: &str, record: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(rest) = record.strip_prefix(MAGIC.as_slice()) else {
            return Ok(record.to_vec());
        };
        let (id, rest) = rest.split_at_checked(ID_LEN).ok_or_else(|| {
            StoreError::Backend(format!("sealed record {key} is truncated").into())
        })?;
        let (nonce, ciphertext) = rest.split_at_checked(NONCE_LEN).ok_or_else(|| {
            StoreError::Backend(format!("sealed record {key} is truncated").into())
        })?;
        let sealer = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "record {key} is sealed with key {} which is neither store.secret_key nor in \
                     store.previous_secret_keys",
                    hex::encode(id)
                ).into())
            })?;
        sealer
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Backend(format!("sealed record {key} failed authentication").into())
            })
    }
}

/// How many records `ping` opens to prove the keys fit the store.
pub const KEY_SAMPLE: usize = 32;

/// How long a key check's verdict stands before `ping` samples again.
const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// What a sample of stored records says about the configured keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySample {
    /// Sealed records in the sample.
    pub sealed: usize,
    /// Of those, the ones the configured keys opened.
    pub opened: usize,
}

impl KeySample {
    /// The keys fit unless there are sealed records and not one of them opens: a damaged
    /// record or two is not a wrong key.
    #[must_use]
    pub fn keys_fit(&self) -> bool {
        self.sealed == 0 || self.opened > 0
    }

    /// `Ok` when the keys fit, else the error naming the setting.
    pub fn verdict(&self) -> Result<(), StoreError> {
        if self.keys_fit() {
            Ok(())
        } else {
            Err(StoreError::WrongKey {
                sealed: self.sealed,
            })
        }
    }
}

impl Sealer {
    /// Opens the first `limit` records of `inner` (the raw, sealed store) with these keys.
    pub async fn sample(&self, inner: &dyn Store, limit: usize) -> Result<KeySample, StoreError> {
        let mut sample = KeySample::default();
        for (key, record) in inner.list_prefix("", limit).await? {
            if record.starts_with(MAGIC) {
                sample.sealed += 1;
                if self.open(&key, &record).is_ok() {
                    sample.opened += 1;
                }
            }
        }
        Ok(sample)
    }
}

/// A store whose values are sealed at rest; see the module documentation.
pub struct Sealed {
    inner: Arc<dyn Store>,
    sealer: Sealer,
    /// The last key check: when, and whether the keys fit.
    key_check: std::sync::Mutex<Option<(std::time::Instant, KeySample)>>,
}

impl Sealed {
    #[must_use]
    pub fn wrap(inner: Arc<dyn Store>, sealer: Sealer) -> Arc<dyn Store> {
        Arc::new(Self {
            inner,
            sealer,
            key_check: std::sync::Mutex::new(None),
        })
    }

    /// Whether the configured keys open the stored records, sampled at most every
    /// `KEY_CHECK_INTERVAL` (a wrong `store.secret_key` makes every read fail while the
    /// store itself answers).
    async fn check_keys(&self) -> Result<(), StoreError> {
        let cached = self
            .key_check
            .lock()
            .ok()
            .and_then(|last| *last)
            .filter(|(at, _)| at.elapsed() < KEY_CHECK_INTERVAL);
        let sample = match cached {
            Some((_, sample)) => sample,
            None => {
                let sample = self.sealer.sample(self.inner.as_ref(), KEY_SAMPLE).await?;
                if let Ok(mut last) = self.key_check.lock() {
                    *last = Some((std::time::Instant::now(), sample));
                }
                sample
            }
        };
        sample.verdict()
    }

    fn seal(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.sealer.seal(key, value)
    }

    fn open(&self, key: &str, record: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.sealer.open(key, record)
    }
}

#[async_trait]
impl Store for Sealed {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner
            .get(key)
            .await?
            .map(|record| self.open(key, &record))
            .transpose()
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.inner.put(key, &self.seal(key, value)?, ttl).await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.inner
            .put_if_absent(key, &self.seal(key, value)?, ttl)
            .await
    }

    /// Compares plaintexts: sealing is randomised, so the caller's expected value is checked
    /// against the opened current value, and the swap is made on the exact sealed bytes read
    /// (so a concurrent writer still makes it fail, as on the bare store).
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let sealed = self.seal(key, value)?;
        for _ in 0..CAS_ATTEMPTS {
            let raw = self.inner.get(key).await?;
            let current = raw
                .as_deref()
                .map(|record| self.open(key, record))
                .transpose()?;
            if current.as_deref() != expected {
                return Ok(false);
            }
            if self
                .inner
                .compare_and_swap(key, raw.as_deref(), &sealed, ttl)
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn increment(&self, key: &str) -> Result<u64, StoreError> {
        self.inner.increment(key).await
    }

    async fn put_if_absent_with(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        self.inner
            .put_if_absent_with(key, &self.seal(key, value)?, ttl, durability)
            .await
    }

    /// The opened value, versioned by the sealed bytes as stored.
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.inner
            .get_versioned(key)
            .await?
            .map(|record| {
                Ok(Versioned {
                    value: self.open(key, &record.value)?,
                    version: record.version,
                })
            })
            .transpose()
    }

    /// Swaps on the exact sealed bytes read (no second read, unlike `compare_and_swap`): any
    /// write since, even of an equal plaintext, makes it fail, and the caller reads again.
    async fn compare_and_swap_version(
        &self,
        key: &str,
        version: Option<&[u8]>,
        value: &[u8],
        ttl: Option<Duration>,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        self.inner
            .compare_and_swap_version(key, version, &self.seal(key, value)?, ttl, durability)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }

    async fn list_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner
            .list_prefix(prefix, limit)
            .await?
            .into_iter()
            .map(|(key, record)| {
                let value = self.open(&key, &record)?;
                Ok((key, value))
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await?;
        self.check_keys().await
    }

    fn single_process(&self) -> bool {
        self.inner.single_process()
    }

    fn describe(&self) -> String {
        format!(
            "{} (sealed, key {})",
            self.inner.describe(),
            self.sealer.current.id()
        )
    }

    async fn purge_expired(&self) -> Result<usize, StoreError> {
        self.inner.purge_expired().await
    }

    /// The backup holds the sealed bytes; restoring it needs the same keys.
    async fn backup_to(&self, dest: &Path) -> Result<usize, StoreError> {
        self.inner.backup_to(dest).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn settings(env: &[(&str, &str)]) -> crate::config::Settings {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        crate::config::Settings::load_with_env(None, env).unwrap()
    }

    #[test]
    fn a_bad_store_secret_key_names_the_key_and_an_empty_one_turns_sealing_off() {
        let bad = settings(&[("KAITONG_STORE__SECRET_KEY", "c2hvcnQ=")]);
        let err = Sealer::from_settings(&bad.store).unwrap_err();
        assert!(err.to_string().contains("store.secret_key"), "{err}");
        assert!(!err.to_string().contains("c2hvcnQ="), "{err}");
        let plain = settings(&[("KAITONG_STORE__SECRET_KEY", "")]);
        assert!(Sealer::from_settings(&plain.store).unwrap().is_none());
        let sealed = settings(&[]);
        assert!(Sealer::from_settings(&sealed.store).unwrap().is_some());
    }

    fn sealed(current: &str, previous: &[&str]) -> Sealer {
        Sealer::new(
            SealKey::parse(current).unwrap(),
            previous
                .iter()
                .map(|k| SealKey::parse(k).unwrap())
                .collect(),
        )
    }

    #[test]
    fn a_sealed_value_opens_under_its_key_only_and_hides_the_plaintext() {
        let store = sealed(KEY_A, &[]);
        let record = store.seal("k1", b"sk_live_secret").unwrap();
        assert!(!record.windows(14).any(|w| w == b"sk_live_secret"));
        assert_eq!(store.open("k1", &record).unwrap(), b"sk_live_secret");
        assert!(store.open("k2", &record).is_err(), "bound to its key");
        assert_ne!(
            record,
            store.seal("k1", b"sk_live_secret").unwrap(),
            "fresh nonce"
        );
        let mut tampered = record.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(store.open("k1", &tampered).is_err());
        // Plain records (written before sealing, or counters) pass through.
        assert_eq!(store.open("n", b"42").unwrap(), b"42");
    }

    #[test]
    fn rotation_reads_old_records_with_the_previous_key() {
        let old = sealed(KEY_A, &[]);
        let record = old.seal("k", b"v").unwrap();
        let rotated = sealed(KEY_B, &[KEY_A]);
        assert_eq!(rotated.open("k", &record).unwrap(), b"v");
        let forgotten = sealed(KEY_B, &[]);
        let err = forgotten.open("k", &record).unwrap_err().to_string();
        assert!(err.contains("previous_secret_keys"), "{err}");
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(matches!(
            SealKey::parse("short"),
            Err(SealKeyError::Base64 | SealKeyError::Length(_))
        ));
        assert!(matches!(
            SealKey::parse("AAAA"),
            Err(SealKeyError::Length(3))
        ));
        assert!(SealKey::parse(KEY_A).is_ok());
    }
}
