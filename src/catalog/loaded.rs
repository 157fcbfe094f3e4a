//! The loaded catalog (`Catalog`): the services, the field library, the categories and the
//! wording, as `load` validated them (`Catalog::load` is there), and the lookups over them.

use crate::domain::ServiceId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::messages::Messages;
use super::model::{Category, FieldSpec, Service};
use super::value::FieldKey;

/// A loaded, consistent catalog. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Catalog {
    pub(super) services: BTreeMap<ServiceId, Service>,
    pub(super) fields: BTreeMap<FieldKey, FieldSpec>,
    pub(super) categories: Vec<Category>,
    pub(super) messages: Arc<Messages>,
    pub(super) dir: PathBuf,
}

impl Catalog {
    /// Services in id order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(&id)
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// A field of the shared library (unmerged with any service override).
    pub fn field(&self, key: &FieldKey) -> Option<&FieldSpec> {
        self.fields.get(key)
    }

    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.values()
    }

    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    pub fn messages(&self) -> &Messages {
        &self.messages
    }

    /// Categories in file order.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    pub fn category(&self, key: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.key == key)
    }

    /// The directory the catalog was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The line `check` prints on success.
    pub fn summary_line(&self) -> String {
        format!(
            "catalog OK: {} services, {} fields",
            self.service_count(),
            self.field_count()
        )
    }
}
