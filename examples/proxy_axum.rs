//! Mounting the proxy in an axum app: its own routes first, everything else proxied.
//!
//! ```text
//! cargo run --example proxy_axum
//! curl http://127.0.0.1:8082/healthz
//! curl -H 'Host: example.cn' http://127.0.0.1:8082/
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use geoline::proxy::{ClientInfo, Proxy};

/// Hands the client address to the proxy, for `X-Forwarded-For`.
async fn client_info(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    req.extensions_mut().insert(ClientInfo {
        peer,
        tls: false,
        keep_forwarded: true,
    });
    next.run(req).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proxy = Proxy::builder("https://example.com")
        .pair("example.cn", "example.com")
        .pair("www.example.cn", "www.example.com")
        .build()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback_service(proxy)
        .layer(middleware::from_fn(client_info));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8082").await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
