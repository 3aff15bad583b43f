//! WebSocket upgrades pass through the proxy both ways.

mod common;

use std::sync::{Arc, Mutex};

use common::origin::*;
use common::proxy::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// A WebSocket echo origin; records the `Host` of each handshake.
async fn echo_origin() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let record = hosts.clone();
    let addr = listen(move |tcp| {
        let record = record.clone();
        async move {
            // The callback's shape, error type included, is tungstenite's.
            #[allow(clippy::result_large_err)]
            let callback = |req: &Request, resp: Response| {
                let host = req.headers().get("host").and_then(|h| h.to_str().ok());
                record
                    .lock()
                    .expect("lock")
                    .push(host.unwrap_or("-").to_string());
                Ok(resp)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() {
                    break;
                }
                if ws.send(msg).await.is_err() {
                    break;
                }
            }
        }
    })
    .await;
    (addr, hosts)
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let (up, hosts) = echo_origin().await;
    let proxy = start(builder(up).build().expect("proxy")).await;

    let tcp = TcpStream::connect(proxy).await.expect("connect proxy");
    let (mut ws, resp) = tokio_tungstenite::client_async("ws://example.cn/chat", tcp)
        .await
        .expect("handshake through the proxy");
    assert_eq!(resp.status(), 101);

    // Frames are opaque to the proxy: nothing inside them is rewritten.
    ws.send(Message::text("hello https://example.com/"))
        .await
        .expect("send");
    assert_eq!(
        ws.next().await.expect("echo").expect("frame"),
        Message::text("hello https://example.com/")
    );
    let blob: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    ws.send(Message::binary(blob.clone())).await.expect("send");
    assert_eq!(
        ws.next().await.expect("echo").expect("frame"),
        Message::binary(blob)
    );
    ws.close(None).await.expect("close");

    assert_eq!(*hosts.lock().expect("lock"), ["example.com".to_string()]);
}
