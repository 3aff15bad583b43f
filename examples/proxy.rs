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

use geoline::proxy::{ProxyConfig, serve_proxy};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    proxy: ProxyConfig,
}

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

async fn run(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut file: File = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dir) = path.parent() {
        file.proxy.resolve_paths(dir);
    }
    let proxy = file.proxy.build()?;
    let listener = tokio::net::TcpListener::bind(file.proxy.listen).await?;
    tracing::info!(listen = %file.proxy.listen, origin = %file.proxy.origin, "proxy serving");
    serve_proxy(proxy, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
