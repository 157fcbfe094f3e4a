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
//! `answer`, `raw`, `loaded` (the [`Catalog`] itself) → `audit`, `load` → `handle`, `cli`;
//! this file only declares and re-exports.

mod answer;
pub mod audit;
pub mod cli;
pub mod condition;
mod handle;
mod load;
mod loaded;
pub mod messages;
pub mod model;
mod raw;
pub mod value;

pub use cli::{render_list, render_show};
pub use condition::Condition;
pub use handle::{CatalogHandle, reload_on_sighup};
pub use load::CatalogError;
pub use loaded::Catalog;
pub use messages::{MessageKey, Messages};
pub use model::{
    ApplicantRule, AssumedValue, Assumption, AssumptionError, Category, FieldKind, FieldSpec,
    FilingRoute, Guidance, Refusal, Service, ServiceField, Team, Window,
};
pub use value::{AnswerError, Answers, FieldKey, FieldValue, InvalidFieldKey};
