//! Runs the rewriting proxy from the `[proxy]` section of a TOML file, the way
//! `geoline serve` will.
//!
//! ```text
//! cargo run --release --example proxy -- examples/proxy.toml
//! curl -H 'Host: example.cn' http://127.0.0.1:8081/
//! ```
//!
//! Worker threads follow `TOKIO_WORKER_THREADS` (the benchmark runs with 1).

use std::path::Path;
use std::process::ExitCode;

use geoline::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "geoline=info".into()),
        )
        .init();
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: proxy CONFIG.toml   (a file with a [proxy] section)");
        return ExitCode::from(2);
    };
    match run(Path::new(&path)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the file as `geoline serve` does and serves what it configures (here, the
/// `[proxy]` section) until Ctrl-C.
async fn run(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(path)?;
    let Some(proxy) = &config.proxy else {
        return Err(format!("{}: no [proxy] section", path.display()).into());
    };
    tracing::info!(origin = %proxy.origin, "proxy serving");
    let running = geoline::server::start(&config).await?;
    let _ = tokio::signal::ctrl_c().await;
    running.shutdown().await;
    Ok(())
}
