//! `kaitong serve`: the bot's HTTP server until SIGINT or SIGTERM.

use anyhow::Context;

use kaitong::config::Settings;
use kaitong::startup::{Application, shutdown_signal};

/// Builds the application from the settings and serves until a stop signal.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    kaitong::telemetry::init(settings.log.format, &settings.log.filter);
    if settings.uses_demo_credentials() {
        tracing::warn!(
            "running with the DEMO WeCom credentials from config/default.toml; replace them before connecting a real tenant"
        );
    }
    let app = Application::build(&settings)
        .await
        .context("could not start")?;
    app.run_until_stopped(shutdown_signal())
        .await
        .context("server failed")
}
