//! Ports for servers a test must name before they start (a configuration written with
//! its port, a primary and a secondary that point at each other, a port a reload moves a
//! listener to).
//!
//! Binding port 0 and dropping the socket is racy: the kernel hands the same ephemeral
//! port to the next socket that binds port 0 — a client socket or a server of a test
//! running in parallel — and the server started on it then fails with "Address already in
//! use". Ports here come from a counter over a range below the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), which no port-0 bind ever gets; the
//! counter starts at an offset taken from the process id so that test binaries running
//! at the same time (several `cargo test` of one machine) walk different parts of the
//! range; and a port is handed out only once both its UDP and its TCP side bind on
//! 127.0.0.1 (DNS listens on both), so one a server of another process holds is skipped.
//!
//! A test that does not need to know the port before the server starts should rather
//! listen on port 0 and read the address the server logs (`process::listening`) or
//! reports (`TestServer`).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out: above the well-known and the usual fixed service ports.
const FLOOR: u16 = 10_000;

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// The range ports are handed out from: below the ephemeral range, or above it when the
/// ephemeral range starts too low to leave room.
fn range() -> (u16, u16) {
    let start = ephemeral_start();
    if start > FLOOR + 1_000 {
        (FLOOR, start)
    } else {
        (61_000, 65_000)
    }
}

/// A port of 127.0.0.1 free for both UDP and TCP, never handed out twice by this process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = range();
    let span = u32::from(high - low);
    let offset = (std::process::id().wrapping_mul(7_919)) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + u16::try_from((offset + n) % span).expect("within the range");
        let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        // Both sides at once: held together, then released together.
        let free =
            UdpSocket::bind(localhost).is_ok_and(|_udp| TcpListener::bind(localhost).is_ok());
        if free {
            return port;
        }
    }
    panic!("no free port in {low}..{high}");
}

/// [`free_port`] on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}
