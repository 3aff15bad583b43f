//! The UDP listener: worker threads, each with its own `SO_REUSEPORT` socket on the same
//! address, receiving and sending in batches ([`super::sys`]) and answering in order.
//!
//! geoline answers UDP (and TCP, [`super::tcp`]) itself rather than through hickory-server,
//! for two reasons that are about correctness before speed: hickory-server sizes a UDP
//! response by the OPT record of the *response* (not the requester's payload size), and
//! when a response overflows it drops the OPT record, and with it the Client Subnet option
//! that resolvers like Google Public DNS require on every answer ([`super::wire::response`]
//! keeps it).
//!
//! Deciding is CPU-only and fast, so a worker is a plain thread that blocks in the kernel
//! and answers everything it received before receiving again: no task per datagram, no
//! wake-ups between. The kernel spreads clients over the workers' sockets by address and
//! port. Each worker keeps its own [`super::cache::AnswerCache`], so workers share nothing but the
//! snapshots.
//!
//! Under steady load a worker would otherwise wake for every few datagrams: the kernel
//! wakes it as soon as one arrives. With `[dns] udp_coalesce_us` a worker that has just
//! answered a batch of two or more and finds its socket empty sleeps that long before it
//! receives again, so datagrams gather into bigger batches: fewer system calls and wake-ups
//! per query, for at most that much added latency. After a single datagram it never
//! sleeps, so a quiet server answers as fast as without.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Responder;
use super::outcome::Transport;
use super::sys::{Batch, Wait};

/// How often an idle worker looks at the shutdown token.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// The receive buffer asked for: a burst of a few thousand queries waits in the kernel
/// while a worker is descheduled, instead of being dropped at the default ~200 KB. The
/// kernel caps it at `net.core.rmem_max`.
const RECEIVE_BUFFER: usize = 4 << 20;

/// A UDP socket on `addr` that other sockets of this process may share (`SO_REUSEPORT`).
pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // Best effort: a smaller buffer only means drops under bursts, as before.
    if let Err(e) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
        debug!(error = %e, "udp receive buffer");
    }
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    Ok(socket.into())
}

/// The number of workers when the configuration does not say: one per CPU this process
/// may run on (so `taskset -c 0 geoline serve` gets one).
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Starts a worker thread answering on `socket` until `shutdown` is cancelled. `coalesce`
/// is how long it lets datagrams gather after a batch (zero: never).
pub(crate) fn spawn(
    socket: UdpSocket,
    responder: Arc<Responder>,
    shutdown: CancellationToken,
    name: String,
    coalesce: Duration,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || serve(&socket, &responder, &shutdown, coalesce))
}

fn serve(
    socket: &UdpSocket,
    responder: &Responder,
    shutdown: &CancellationToken,
    coalesce: Duration,
) {
    let mut batch = Batch::new();
    let mut cache = responder.answer_cache();
    let mut wait = Wait::ForOne;
    while !shutdown.is_cancelled() {
        let received = match batch.recv(socket.as_fd(), wait) {
            Ok(n) => n,
            Err(e) if wait == Wait::No && e.kind() == io::ErrorKind::WouldBlock => {
                // The batch before was not a lone datagram, and the socket is empty now:
                // let the next ones gather.
                std::thread::sleep(coalesce);
                wait = Wait::ForOne;
                continue;
            }
            Err(e) if transient(&e) => continue,
            Err(e) => {
                warn!(error = %e, "udp receive failed; worker stops");
                return;
            }
        };
        for i in 0..received {
            let Some(mut slot) = batch.slot(i) else {
                break;
            };
            let Some(peer) = slot.peer else {
                continue;
            };
            // Nobody can receive a reply on port 0: answering would only reflect.
            if peer.port() == 0 || slot.truncated {
                continue;
            }
            let answered = responder.answer(
                slot.bytes,
                peer.ip(),
                Transport::Udp,
                Some(&mut cache),
                slot.reply,
            );
            if answered.is_some() {
                slot.send_reply();
            }
        }
        for e in batch.send(socket.as_fd()) {
            debug!(error = %e, "udp send");
        }
        // After a lone datagram (a quiet server) wait for the next as usual; after more,
        // look without waiting, and sleep if nothing is there.
        wait = if coalesce.is_zero() || received < 2 {
            Wait::ForOne
        } else {
            Wait::No
        };
    }
}

/// Errors a UDP socket reports for one datagram (often an ICMP error from an earlier send)
/// or for a read timeout, rather than for the socket.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    ) || e.raw_os_error() == Some(libc::ENOBUFS)
}
