//! `kaitong healthcheck`: the Docker HEALTHCHECK, one `GET /readyz` on the running bot.

use anyhow::Context;

use kaitong::config::Settings;

/// `GET /readyz` on the running bot within 3 s; an error (exit 1) unless it answers 200.
pub async fn run(settings: &Settings, url: Option<String>) -> anyhow::Result<()> {
    let base = match url {
        Some(url) => url,
        None => {
            let addr = settings.listen_addr()?;
            let host = match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
                ip if ip.is_unspecified() => "[::1]".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            format!("http://{host}:{}", addr.port())
        }
    };
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url} did not answer"))?;
    let status = response.status();
    if status.is_success() {
        println!("ready: {url}");
        Ok(())
    } else {
        anyhow::bail!("not ready: {url} answered {status}")
    }
}
