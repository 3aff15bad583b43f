//! DNS over TCP (RFC 7766): geoline's own accept loop, with the limits a public server
//! needs against clients that hold connections open.
//!
//! This module owns the connections: accepting them within the limits (in total and per
//! client, an IPv4 address or an IPv6 /64; over a limit a connection is accepted and
//! closed at once), the 2-byte length framing, several queries per connection answered in
//! order (pipelined queries are read from the buffer as they come), and closing a
//! connection that is idle too long, takes too long to send a started message or to take
//! a response (slowloris), or has asked its share of queries. Each message is answered
//! by [`Responder::answer`], the door UDP goes through too, with no cache and no rate
//! limiting; only the size limit differs, and a zone transfer's answer may be many
//! messages, each written under the write timeout. A message
//! that does not parse gets FORMERR when it has a header to answer, else the connection
//! is closed.
//!
//! It does not decide answers or rate-limit them: a TCP client has proven its address.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Responder;
use super::config::TcpLimits;
use super::metrics::{TcpClose, TcpMetrics, TcpRefusal};

/// A connection's send buffer (the kernel doubles it for its bookkeeping): room for the
/// largest DNS message, so a client that stops reading ties up this much kernel memory,
/// not megabytes, until the write timeout closes it. Set on the listener, whose accepted
/// connections inherit it.
const SEND_BUFFER: usize = 64 * 1024;

/// Starts an accept loop on each listener in `tasks`. They stop accepting when `shutdown`
/// is cancelled, and finish once every connection has (a connection stops when it is
/// idle, after answering the message it is reading).
pub(crate) fn spawn(
    listeners: Vec<TcpListener>,
    responder: Arc<Responder>,
    limits: TcpLimits,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    let shared = Arc::new(Shared {
        responder,
        limits,
        open: Mutex::new(Open::default()),
    });
    for listener in listeners {
        // Best effort: without it the kernel may grow a connection's send buffer to
        // net.ipv4.tcp_wmem's maximum (4 MB by default) for a client that does not read.
        let _ = socket2::SockRef::from(&listener).set_send_buffer_size(SEND_BUFFER);
        tasks.spawn(accept_loop(listener, shared.clone(), shutdown.clone()));
    }
}

/// What every connection of every listener shares.
struct Shared {
    responder: Arc<Responder>,
    limits: TcpLimits,
    open: Mutex<Open>,
}

/// The connections open: in total and by client ([`client_of`]). Touched on accept and
/// close only, never per query.
#[derive(Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

impl Shared {
    fn metrics(&self) -> &TcpMetrics {
        &self.responder.metrics().tcp
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        // Nothing can panic while the lock is held; a poisoned lock still holds valid counts.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a connection from `client` in, or says which limit it is over.
    fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Admitted, TcpRefusal> {
        let mut open = self.open();
        if open.total >= self.limits.max_connections {
            return Err(TcpRefusal::Total);
        }
        let n = open.by_client.entry(client).or_insert(0);
        if *n >= self.limits.max_connections_per_client {
            return Err(TcpRefusal::PerClient);
        }
        *n += 1;
        open.total += 1;
        self.metrics().opened();
        Ok(Admitted {
            shared: self.clone(),
            client,
        })
    }
}

/// A connection counted in [`Open`]; dropping it counts it out.
struct Admitted {
    shared: Arc<Shared>,
    client: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.shared.open();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
        self.shared.metrics().closed();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match shared.admit(client_of(peer.ip())) {
                    Ok(admitted) => {
                        connections.spawn(connection(stream, peer, admitted, shutdown.clone()));
                    }
                    // Dropping the stream closes it at once.
                    Err(reason) => shared.metrics().refused(reason),
                },
                // Out of descriptors or the like: pause rather than spin.
                Err(e) => {
                    debug!(error = %e, "tcp accept");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Whom a connection from `addr` is counted against: an IPv4 address, or the /64 of an
/// IPv6 one, since a single host is routinely given a whole /64 and could otherwise open
/// `max_connections_per_client` connections from each of its 2^64 addresses. An
/// IPv4-mapped IPv6 address counts as the IPv4 address.
fn client_of(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        v4 => v4,
    }
}

/// Serves one connection until it closes, and counts why it closed.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    shutdown: CancellationToken,
) {
    let shared = &admitted.shared;
    // Nagle would hold back a response while the previous one is unacknowledged.
    let _ = stream.set_nodelay(true);
    let why = serve(BufReader::new(stream), peer, shared, &shutdown).await;
    if let Some(why) = why {
        shared.metrics().close_reason(why);
    }
}

/// Answers queries in order; returns why it stopped (`None`: the client closed, an I/O
/// error, an unreadable message, or shutdown).
async fn serve(
    mut stream: BufReader<TcpStream>,
    peer: SocketAddr,
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Option<TcpClose> {
    let limits = &shared.limits;
    let mut message = Vec::with_capacity(512);
    let mut body = Vec::with_capacity(512);
    let mut frame = Vec::with_capacity(514);
    for _ in 0..limits.max_queries_per_connection {
        // Wait for the next message to start.
        let started = tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = tokio::time::timeout(limits.idle_timeout, stream.fill_buf()) => r,
        };
        match started {
            Err(_) => return Some(TcpClose::IdleTimeout),
            Ok(Ok(buf)) if !buf.is_empty() => {}
            Ok(_) => return None,
        }
        // It must arrive whole in time: a client sending a byte now and then is cut off.
        match tokio::time::timeout(limits.read_timeout, read_message(&mut stream, &mut message))
            .await
        {
            Err(_) => return Some(TcpClose::ReadTimeout),
            Ok(Err(e)) => {
                debug!(error = %e, %peer, "tcp read");
                return None;
            }
            Ok(Ok(())) => {}
        }
        // Not even a header to answer: nothing to say on this connection.
        let mut rest = None;
        shared
            .responder
            .answer_tcp(&message, peer.ip(), &mut body, &mut rest)?;
        // A zone transfer's later messages follow, each under the same write timeout: a
        // secondary that stops reading holds this one connection until it expires.
        loop {
            let len = u16::try_from(body.len()).ok()?;
            frame.clear();
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&body);
            match tokio::time::timeout(limits.read_timeout, stream.get_mut().write_all(&frame))
                .await
            {
                Err(_) => return Some(TcpClose::WriteTimeout),
                Ok(Err(e)) => {
                    debug!(error = %e, %peer, "tcp write");
                    return None;
                }
                Ok(Ok(())) => {}
            }
            if !rest
                .as_mut()
                .is_some_and(|transfer| transfer.next(&mut body))
            {
                break;
            }
        }
    }
    Some(TcpClose::QueryLimit)
}

/// Reads one length-prefixed message into `message`.
async fn read_message(stream: &mut BufReader<TcpStream>, message: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    message.resize(usize::from(u16::from_be_bytes(len)), 0);
    stream.read_exact(message).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_slash_64s() {
        let client = |s: &str| client_of(s.parse().expect("address")).to_string();
        assert_eq!(client("192.0.2.1"), "192.0.2.1");
        assert_eq!(client("192.0.2.2"), "192.0.2.2");
        assert_eq!(client("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(client("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(client("2001:db8:1:2::1"), "2001:db8:1:2::");
        assert_eq!(client("2001:db8:1:3::1"), "2001:db8:1:3::");
        assert_eq!(client("::1"), "::");
    }
}
