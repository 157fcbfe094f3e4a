//! The bytes of attachment answers, kept in the store beside the form that holds them.
//!
//! Owns the blob records: the dialog stores a downloaded file here, a resubmission carries it
//! to the new form, the console and the email hand-off load it. No other module touches blob
//! keys; they hold a [`BlobRef`] or a form id and field.

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, keys};

/// Where one attachment's bytes are kept. Opaque outside this module; serialised as the key
/// it names, so outbox items queued by earlier versions still find their bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlobRef(String);

impl BlobRef {
    /// The bytes of the answer to `field` in the form `form_id`.
    #[must_use]
    pub fn of(form_id: &str, field: &str) -> Self {
        Self(keys::attachment_blob(form_id, field))
    }
}

/// Keeps the bytes of the answer to `field` in the form `form_id` (no expiry: the request
/// needs them until it is handled).
pub async fn store_blob(
    store: &dyn Store,
    form_id: &str,
    field: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    store
        .put(&keys::attachment_blob(form_id, field), bytes, None)
        .await
}

/// The kept bytes, `None` when they were never kept (the download failed) or are gone.
pub async fn load_blob(store: &dyn Store, blob: &BlobRef) -> Result<Option<Vec<u8>>, StoreError> {
    store.get(&blob.0).await
}

/// Copies the bytes of `field` from one form to another (a resubmission keeps its files);
/// nothing to copy is not an error.
pub async fn carry_blob(
    store: &dyn Store,
    from_form: &str,
    to_form: &str,
    field: &str,
) -> Result<(), StoreError> {
    match load_blob(store, &BlobRef::of(from_form, field)).await? {
        Some(bytes) => store_blob(store, to_form, field, &bytes).await,
        None => Ok(()),
    }
}
