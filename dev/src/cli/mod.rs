//! The developer's commands, one module each; the binary `kaitong-dev` dispatches to them.

pub mod catalog;
pub mod chat;
pub mod conversations;
pub mod distill;
pub mod eval;
pub mod load;
pub mod train;
pub mod understand;

use kaitong::catalog::Catalog;
use kaitong::config::Settings;
use kaitong::dialog::understand::Tuning;

/// The catalog in `dialogs.dir`, its error said in one line.
fn load_catalog(settings: &Settings) -> anyhow::Result<Catalog> {
    Catalog::load(&settings.dialogs.dir).map_err(|e| anyhow::anyhow!("catalog: {e}"))
}

/// The understanding tuning (`dialogs/understanding.toml`).
fn load_tuning(settings: &Settings) -> anyhow::Result<Tuning> {
    Ok(Tuning::load(&settings.dialogs.dir)?)
}
