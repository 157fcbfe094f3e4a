//! `kaitong catalog …`: list, show and validate the service catalog in `dialogs/`. (The audit
//! against the seed is a developer's check: `kaitong-dev catalog audit`.)

use clap::Subcommand;

use kaitong::catalog::Catalog;
use kaitong::config::Settings;

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// All services by category, with ids.
    List,
    /// Everything about one service.
    Show { id: u16 },
    /// Validate the catalog; exits non-zero with file:line: reason when broken.
    Check,
}

fn load_catalog(settings: &Settings) -> anyhow::Result<Catalog> {
    Catalog::load(&settings.dialogs.dir).map_err(|e| anyhow::anyhow!("catalog: {e}"))
}

pub fn run(settings: &Settings, command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::Check => match Catalog::load(&settings.dialogs.dir) {
            Ok(catalog) => {
                println!("{}", catalog.summary_line());
                Ok(())
            }
            Err(e) => {
                eprintln!("catalog invalid: {e}");
                std::process::exit(1);
            }
        },
        CatalogCommand::List => {
            print!(
                "{}",
                kaitong::catalog::render_list(&load_catalog(settings)?)
            );
            Ok(())
        }
        CatalogCommand::Show { id } => {
            let catalog = load_catalog(settings)?;
            match kaitong::catalog::render_show(&catalog, kaitong::domain::ServiceId(id)) {
                Some(text) => {
                    print!("{text}");
                    Ok(())
                }
                None => anyhow::bail!("no service #{id}"),
            }
        }
    }
}
