//! The service catalog: the 90 value-added services of the seed, encoded
//! as data in `dialogs/` and loaded into typed, validated structures.
//!
//! This module owns what a form holds ([`value`]: field keys, typed values, the text readers),
//! wording ([`messages`]), conditions ([`condition`]), the data model ([`model`]), reading a
//! field's answer (`answer`), the loader (`load`), hot reload ([`CatalogHandle`]), the pure
//! renderers the CLI prints ([`cli`]), and the audit against the seed ([`audit`]). The dialog
//! engine only reads it; ranking free text is `dialog::understand`.
//!
//! Inside, modules only depend downwards: `value`, `messages` → `condition` → `model` →
//! `answer`, `raw`, `audit` → `load` → this file's [`Catalog`] (`handle`, `cli` read it).

mod answer;
pub mod audit;
pub mod cli;
pub mod condition;
mod handle;
mod load;
pub mod messages;
pub mod model;
mod raw;
pub mod value;

use crate::domain::ServiceId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cli::{render_list, render_show};
pub use condition::Condition;
pub use handle::{CatalogHandle, reload_on_sighup};
pub use load::CatalogError;
pub use messages::{MessageKey, Messages};
pub use model::{
    ApplicantRule, AssumedValue, Assumption, Category, FieldKind, FieldSpec, FilingRoute, Guidance,
    Refusal, Service, ServiceField, Team, Window,
};
pub use value::{AnswerError, Answers, FieldKey, FieldValue};

/// A loaded, consistent catalog. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Catalog {
    services: BTreeMap<ServiceId, Service>,
    fields: BTreeMap<FieldKey, FieldSpec>,
    categories: Vec<Category>,
    messages: Arc<Messages>,
    dir: PathBuf,
}

impl Catalog {
    /// Loads and validates `dir` (containing `messages.toml`,
    /// `categories.toml`, `fields.toml` and `services/*.toml`).
    pub fn load(dir: &Path) -> Result<Catalog, CatalogError> {
        load::load(dir)
    }

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
