//! The UDP listener: one task per socket, receive, decide, send.
//!
//! geoline answers UDP itself rather than through hickory-server's UDP stream, for two
//! reasons that are about correctness before speed: hickory sizes a UDP response by the OPT
//! record of the *response* (not the requester's payload size), and when a response
//! overflows it drops the OPT record, and with it the Client Subnet option that resolvers
//! like Google Public DNS require on every answer ([`super::response`] keeps it). Deciding
//! is CPU-only and fast, so there is no task per datagram: the socket's task answers in
//! order, and more sockets (or `SO_REUSEPORT`) add parallelism.

use std::io;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::DnsState;
use super::respond::Transport;

/// Answers queries on `socket` until `shutdown` is cancelled.
pub async fn serve(socket: UdpSocket, state: Arc<DnsState>, shutdown: CancellationToken) {
    let mut query = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    loop {
        let (len, peer) = tokio::select! {
            r = socket.recv_from(&mut query) => match r {
                Ok(r) => r,
                Err(e) if transient(&e) => {
                    debug!(error = %e, "udp receive");
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "udp receive failed; listener stops");
                    return;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        if peer.port() == 0 {
            // Nobody can receive a reply on port 0: answering would only reflect.
            continue;
        }
        let Some(decision) = state.decide(&query[..len], peer.ip(), Transport::Udp) else {
            continue;
        };
        let encoded = decision.response.encode(decision.size_limit, &mut out);
        state
            .metrics
            .record(&decision, Transport::Udp, encoded.truncated);
        if let Err(e) = socket.send_to(&out, peer).await {
            debug!(error = %e, %peer, "udp send");
        }
    }
}

/// Errors a UDP socket reports for one datagram (often an ICMP error from an earlier send)
/// rather than for the socket.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error() == Some(ENOBUFS)
}

/// Linux's "no buffer space available": the kernel dropped a datagram, the socket is fine.
const ENOBUFS: i32 = 105;
