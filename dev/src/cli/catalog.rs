//! `kaitong-dev catalog audit`: every service against its seed row.

use std::path::PathBuf;

use clap::Subcommand;

use kaitong::config::Settings;

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Compare every service with its seed row (channel, handler, notes, assumptions); exits
    /// non-zero when the catalog holds a value the seed does not state and the data does not
    /// mark as assumed.
    Audit {
        /// The seed file (the 90-row table).
        #[arg(long, default_value = "tests/fixtures/seed.txt")]
        seed: PathBuf,
    },
}

pub fn run(settings: &Settings, command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Audit { seed } => {
            let catalog = super::load_catalog(settings)?;
            let text = std::fs::read_to_string(&seed)
                .map_err(|e| anyhow::anyhow!("seed {}: {e}", seed.display()))?;
            let audit = kaitong::catalog::audit::audit(&catalog, &text);
            print!("{}", kaitong::catalog::audit::render_audit(&audit));
            if !audit.is_clean() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
