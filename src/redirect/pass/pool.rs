//! The own pass-through's connections to a plain-HTTP origin: dialing and the idle pool.
//!
//! This module owns how a connection to the origin is had: taken from the idle pool (the
//! most recently used, the least likely to have been closed by the origin), or dialed (the
//! connect-to address, else the origin host's addresses, within the connect timeout). A
//! connection goes back to the pool only when its exchange ended cleanly, and the pool
//! keeps at most [`KEEPALIVE`] idle connections per origin host, as nginx's `keepalive`
//! directive in an `upstream` block does; the ones beyond are closed. Idle connections
//! have no task and no timer: one the origin closed meanwhile is noticed from its
//! readiness (no system call) when it is taken, and one idle for longer than
//! [`IDLE_TIMEOUT`] is closed then too. It does not read or write HTTP ([`super`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

use crate::proxy::upstream::dial;

/// Idle connections kept per origin host: as `keepalive 64` in the nginx configuration of
/// `benches/redirect` (which the pass-through is measured against), and above the
/// benchmarks' 50 concurrent clients.
pub(crate) const KEEPALIVE: usize = 64;

/// An idle connection older than this is closed rather than used (the hyper pass-through's
/// pool timeout).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The most origin host names with a pool of their own (without connect-to, any name
/// under a pass-through domain is dialed by its name); past it, hosts without idle
/// connections are forgotten, and if all have some, a new host's are not kept.
const MAX_HOSTS: usize = 1024;

/// What each connection reads the origin's responses into: a response head and the start
/// of its body, or a piece of a long body.
pub(crate) const READ_BUFFER: usize = 32 * 1024;

/// A connection to the origin, with the buffer its responses are read into (kept with it,
/// so that a pooled connection costs no allocation per request).
pub(crate) struct OriginConnection {
    pub tcp: TcpStream,
    pub buf: BytesMut,
}

/// How to reach the origin, and its idle connections.
pub(crate) struct Pool {
    /// Dialed instead of the host's own addresses; then every host shares one pool.
    connect_to: Option<SocketAddr>,
    /// Dialed with the host name when there is no connect-to.
    port: u16,
    connect_timeout: Duration,
    idle: Mutex<Idle>,
}

/// Idle connections by pool key (the origin host, or "" for all with connect-to), each
/// with the time it came back, oldest first.
type Idle = HashMap<Box<str>, Vec<(OriginConnection, Instant)>>;

impl Pool {
    pub(crate) fn new(
        connect_to: Option<SocketAddr>,
        port: u16,
        connect_timeout: Duration,
    ) -> Pool {
        Pool {
            connect_to,
            port,
            connect_timeout,
            idle: Mutex::new(HashMap::new()),
        }
    }

    fn key<'a>(&self, host: &'a str) -> &'a str {
        if self.connect_to.is_some() { "" } else { host }
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection to `host` that looks open, if there is one.
    pub(crate) fn take(&self, host: &str) -> Option<OriginConnection> {
        let mut idle = self.idle();
        let list = idle.get_mut(self.key(host))?;
        while let Some((conn, since)) = list.pop() {
            if since.elapsed() > IDLE_TIMEOUT {
                // The rest are older still.
                list.clear();
                return None;
            }
            // Readable while idle means closed by the origin (or sending what nobody asked
            // for): either way not usable. Not readable costs no system call.
            let mut probe = [0u8; 1];
            if let Err(e) = conn.tcp.try_read(&mut probe)
                && e.kind() == io::ErrorKind::WouldBlock
            {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn`, whose last exchange with `host` ended cleanly, for a later request.
    pub(crate) fn put(&self, host: &str, mut conn: OriginConnection) {
        conn.buf.clear();
        let key = self.key(host);
        let mut idle = self.idle();
        if !idle.contains_key(key) {
            if idle.len() >= MAX_HOSTS {
                idle.retain(|_, list| !list.is_empty());
                if idle.len() >= MAX_HOSTS {
                    return;
                }
            }
            idle.insert(key.into(), Vec::new());
        }
        if let Some(list) = idle.get_mut(key)
            && list.len() < KEEPALIVE
        {
            list.push((conn, Instant::now()));
        }
    }

    /// A new connection to `host`, within the connect timeout.
    pub(crate) async fn connect(&self, host: &str) -> io::Result<OriginConnection> {
        let tcp = dial(self.connect_to, host, self.port, self.connect_timeout).await?;
        Ok(OriginConnection {
            tcp,
            buf: BytesMut::with_capacity(READ_BUFFER),
        })
    }

    #[cfg(test)]
    pub(crate) fn idle_count(&self, host: &str) -> usize {
        self.idle().get(self.key(host)).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn the_pool_is_bounded_and_skips_closed_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pool = Pool::new(Some(addr), 80, Duration::from_secs(5));
        let accept = tokio::spawn(async move {
            let mut accepted = Vec::new();
            for _ in 0..KEEPALIVE + 2 {
                accepted.push(listener.accept().await.expect("accept").0);
            }
            accepted
        });
        let mut conns = Vec::new();
        for _ in 0..KEEPALIVE + 2 {
            conns.push(pool.connect("a.example").await.expect("connect"));
        }
        let mut accepted = accept.await.expect("acceptor");
        for c in conns {
            pool.put("a.example", c);
        }
        // One pool for every host with connect-to, at most KEEPALIVE in it.
        assert_eq!(pool.idle_count("b.example"), KEEPALIVE);
        // The origin closes the most recent one: it is skipped once its close is seen.
        let last = accepted.remove(KEEPALIVE - 1);
        let mut last = last;
        last.shutdown().await.expect("shutdown");
        drop(last);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(pool.take("a.example").is_some());
        assert_eq!(pool.idle_count("a.example"), KEEPALIVE - 2);
    }
}
