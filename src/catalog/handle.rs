//! Shared, hot-reloadable access to the catalog. Readers take a cheap
//! `Arc<Catalog>` snapshot; a reload swaps the pointer only when the new
//! catalog is valid, so a bad edit never takes the bot down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::load::CatalogError;
use super::loaded::Catalog;

/// Cloneable handle to the current catalog.
#[derive(Debug, Clone)]
pub struct CatalogHandle {
    dir: PathBuf,
    current: Arc<RwLock<Arc<Catalog>>>,
}

impl CatalogHandle {
    /// Loads `dir`; fails if the initial catalog is invalid.
    pub fn load(dir: &Path) -> Result<Self, CatalogError> {
        let catalog = Catalog::load(dir)?;
        Ok(Self::new(dir, catalog))
    }

    pub fn new(dir: &Path, catalog: Catalog) -> Self {
        Self {
            dir: dir.to_path_buf(),
            current: Arc::new(RwLock::new(Arc::new(catalog))),
        }
    }

    /// A snapshot; a form in progress keeps using the one it started with.
    pub fn current(&self) -> Arc<Catalog> {
        // A poisoned lock only means a writer panicked between two pointer
        // stores; the pointer itself is always valid.
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&guard)
    }

    /// Reloads from disk. On error the old catalog stays in place and the
    /// reason is logged and returned.
    pub fn reload(&self) -> Result<(), CatalogError> {
        match Catalog::load(&self.dir) {
            Ok(catalog) => {
                let summary = catalog.summary_line();
                let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
                *guard = Arc::new(catalog);
                drop(guard);
                tracing::info!(dir = %self.dir.display(), "catalog reloaded: {summary}");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "catalog reload failed; keeping the previous catalog");
                Err(e)
            }
        }
    }
}

/// Reloads the catalog on every SIGHUP, forever. The binary spawns this.
pub async fn reload_on_sighup(handle: CatalogHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; catalog hot reload disabled");
            return;
        }
    };
    while hup.recv().await.is_some() {
        // Errors are already logged by `reload`.
        let _ = handle.reload();
    }
}
