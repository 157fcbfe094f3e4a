//! `kaitong store …`: check, back up and restore the embedded store file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use kaitong::config::Settings;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Check the store file page by page; needs `serve` stopped.
    Check,
    /// Write a consistent copy of the store to FILE; works while `serve` runs (through it).
    Backup {
        /// The backup file to create (never overwritten).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// The running bot's admin listener, when the store is in use; default
        /// http://<server.admin_listen>.
        #[arg(long)]
        url: Option<String>,
    },
    /// Replace the store with a checked backup; needs `serve` stopped. The current file is kept
    /// beside it as PATH.before-restore-UNIXTIME.
    Restore {
        /// The backup file.
        backup: PathBuf,
    },
}

/// The embedded store's file, from `store.url`.
fn embedded_path(settings: &Settings) -> anyhow::Result<PathBuf> {
    settings
        .store
        .url
        .strip_prefix("embedded://")
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "store.url is not embedded://…; back up Redis with its own tools (BGSAVE / the RDB file)"
            )
        })
}

pub async fn run(settings: &Settings, command: StoreCommand) -> anyhow::Result<()> {
    use kaitong::store::{EmbeddedStore, Store, StoreError, check_file, restore_file};
    let path = embedded_path(settings)?;
    match command {
        StoreCommand::Check => {
            if !path.exists() {
                anyhow::bail!("{} does not exist", path.display());
            }
            let report = check_file(&path)?;
            // Readable pages are not enough: the configured keys must open the records.
            let keys = match kaitong::store::Sealer::from_settings(&settings.store)? {
                Some(sealer) => {
                    let local = EmbeddedStore::open(&path)?;
                    let sample = sealer.sample(&local, 1000).await?;
                    sample.verdict()?;
                    format!(
                        "; store.secret_key opens {}/{} sampled sealed records",
                        sample.opened, sample.sealed
                    )
                }
                None => String::new(),
            };
            println!(
                "ok: {} ({} records{}{keys})",
                path.display(),
                report.records,
                if report.repaired {
                    "; allocator state to be repaired after an unclean stop (the file itself is not changed)"
                } else {
                    ""
                }
            );
            Ok(())
        }
        StoreCommand::Backup { to, url } => {
            if to.exists() {
                anyhow::bail!(
                    "{} already exists; a backup never overwrites a file",
                    to.display()
                );
            }
            if !path.exists() {
                anyhow::bail!("{} does not exist", path.display());
            }
            let how = match EmbeddedStore::open(&path) {
                Ok(local) => {
                    local.backup_to(&to).await?;
                    "directly"
                }
                Err(StoreError::InUse(_)) => {
                    let url = match url {
                        Some(url) => url,
                        None => format!(
                            "http://{}",
                            settings
                                .admin_listen_addr()?
                                .context("server.admin_listen is empty: pass --url")?
                                .to_string()
                                .replace("0.0.0.0", "127.0.0.1")
                        ),
                    };
                    backup_through_server(settings, &url, &to).await?;
                    "through the running server"
                }
                Err(e) => return Err(e.into()),
            };
            let report = check_file(&to)?;
            println!(
                "backup written: {} ({} records, {how})",
                to.display(),
                report.records
            );
            Ok(())
        }
        StoreCommand::Restore { backup } => {
            let kept = restore_file(&backup, &path)?;
            let report = check_file(&path)?;
            println!(
                "restored {} from {} ({} records); the previous file, if any, is {}",
                path.display(),
                backup.display(),
                report.records,
                kept.display()
            );
            Ok(())
        }
    }
}

/// Asks a running server for a snapshot (`POST /admin/store/backup`) and writes it to `to`.
async fn backup_through_server(
    settings: &Settings,
    url: &str,
    to: &std::path::Path,
) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .post(format!("{}/admin/store/backup", url.trim_end_matches('/')))
        .bearer_auth(settings.admin.token.expose())
        .send()
        .await
        .with_context(|| format!("the store is in use and the server at {url} did not answer"))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("the server at {url} refused the backup: {status}");
    }
    let bytes = response.bytes().await?;
    // Written beside the target first, so a failed download never leaves a partial backup.
    let staged = to.with_extension("partial");
    std::fs::write(&staged, &bytes)?;
    std::fs::File::open(&staged)?.sync_all()?;
    std::fs::rename(&staged, to)?;
    Ok(())
}
