//! Serving the proxy on a listener, for `geoline serve` and the examples.
//!
//! This module owns the accept loop: HTTP/1.1 (with upgrades) and cleartext HTTP/2 on
//! each connection, the [`ClientInfo`] of each request, and a graceful drain on shutdown.
//! It does not terminate TLS; a caller that does can mount [`Proxy`] itself.

use std::future::Future;
use std::io;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::service::{ClientInfo, Proxy};

/// How long open connections get to finish their requests after `shutdown` resolves.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `proxy` on `listener` until `shutdown` resolves, then stops accepting and lets
/// open requests finish (at most [`DRAIN_TIMEOUT`]).
pub async fn serve_proxy(
    proxy: Proxy,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: the listener itself is fine, so
                    // back off instead of spinning or giving up.
                    tracing::warn!(error = %e, "proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        let info = ClientInfo { peer, tls: false };
        let service = service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(info);
            let proxy = proxy.clone();
            async move { Ok::<_, std::convert::Infallible>(proxy.handle(req).await) }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "proxy: connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("proxy: connections still open after the drain timeout");
    }
    Ok(())
}
