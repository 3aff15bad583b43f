//! The system calls std does not offer, and nearly all the crate's `unsafe` code: batched UDP
//! receive and send (`recvmmsg(2)`, `sendmmsg(2)`), the monotonic clock, and the reactor
//! registration of a listening socket whose connections are accepted outside tokio
//! ([`polled_listener`], for the HTTP listeners).
//!
//! Under load a DNS server's time goes mostly to the socket layer, one system call per
//! datagram each way. [`Batch`] moves up to [`BATCH`] datagrams per system call; it owns the
//! buffers the kernel reads and writes, and reads the source address the kernel wrote.
//! [`now_secs`] is rate limiting's notion of "this second", read once per UDP response
//! without a system call; [`monotonic_micros`] is the same clock, fine-grained, for the
//! service manager's `MONOTONIC_USEC`. Every `unsafe` block here says why it is sound (`SAFETY:`);
//! `unsafe_code` is denied everywhere else in the crate (Cargo.toml `[lints]`) but for the
//! one prefetch instruction of `util::prefetch`.
//!
//! It knows nothing of DNS.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

/// Datagrams per system call: enough to amortise the call, small enough for the cache.
pub(crate) const BATCH: usize = 32;
/// The largest datagram received whole. A longer one arrives cut short and marked
/// [`Slot::truncated`] (a cut query could parse), and is dropped: a DNS query, even with
/// EDNS options, is a few hundred bytes, and no requester may send a UDP message larger
/// than the 4096-byte payload size geoline's own configuration can advertise.
pub(crate) const DATAGRAM: usize = 4096;
/// The distance between two receive slots: a page and a cache line. Slots a whole number
/// of pages apart would start at the same cache set, so the 32 headers the workers read
/// after each receive would compete for the same few ways of the L1 cache.
const SLOT_STRIDE: usize = DATAGRAM + 64;

/// Whether [`Batch::recv`] waits for a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    ForOne,
    No,
}

/// Receive buffers, source addresses and replies for one batch.
pub(crate) struct Batch {
    data: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: [libc::socklen_t; BATCH],
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    received: usize,
    replies: Vec<Vec<u8>>,
    reply_ready: [bool; BATCH],
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

/// One received datagram and the buffer for its reply.
pub(crate) struct Slot<'a> {
    pub bytes: &'a [u8],
    /// `None` when the kernel gave an address of another family (never, for UDP/IP).
    pub peer: Option<SocketAddr>,
    /// Longer than any DNS message: dropped.
    pub truncated: bool,
    pub reply: &'a mut Vec<u8>,
    ready: &'a mut bool,
}

impl Slot<'_> {
    /// Sends `reply` back to `peer` with the batch.
    pub(crate) fn send_reply(&mut self) {
        *self.ready = true;
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            data: vec![0; BATCH * SLOT_STRIDE],
            addrs: (0..BATCH).map(|_| zeroed_storage()).collect(),
            addr_lens: [0; BATCH],
            lens: [0; BATCH],
            truncated: [false; BATCH],
            received: 0,
            replies: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            reply_ready: [false; BATCH],
            iovecs: (0..BATCH)
                .map(|_| libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            headers: (0..BATCH).map(|_| zeroed_header()).collect(),
        }
    }

    /// Takes every datagram already queued, up to [`BATCH`]. With [`Wait::ForOne`] it first
    /// blocks until one arrives (or the socket's read timeout passes); with [`Wait::No`] an
    /// empty queue is an error of kind [`io::ErrorKind::WouldBlock`].
    pub(crate) fn recv(&mut self, socket: BorrowedFd<'_>, wait: Wait) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.data[i * SLOT_STRIDE..].as_mut_ptr().cast(),
                iov_len: DATAGRAM,
            };
            point(
                &mut self.headers[i],
                &raw mut self.addrs[i],
                mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                &raw mut self.iovecs[i],
            );
        }
        self.reply_ready = [false; BATCH];
        self.received = 0;
        // SAFETY: every header points at buffers owned by `self` that outlive the call:
        // `iovecs[i]` at a DATAGRAM-byte slice of `data`, `msg_name` at `addrs[i]` with its
        // size; the kernel writes at most those lengths (SLOT_STRIDE >= DATAGRAM, and the
        // last slot's DATAGRAM bytes end inside `data`). `headers` has BATCH entries.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                match wait {
                    Wait::ForOne => libc::MSG_WAITFORONE,
                    Wait::No => libc::MSG_DONTWAIT,
                },
                ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            let h = &self.headers[i];
            self.lens[i] = (h.msg_len as usize).min(DATAGRAM);
            self.addr_lens[i] = h.msg_hdr.msg_namelen;
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        self.received = n;
        Ok(n)
    }

    /// Datagram `i` of the last [`Batch::recv`].
    pub(crate) fn slot(&mut self, i: usize) -> Option<Slot<'_>> {
        if i >= self.received {
            return None;
        }
        let start = i * SLOT_STRIDE;
        Some(Slot {
            bytes: &self.data[start..start + self.lens[i]],
            peer: socket_addr(&self.addrs[i], self.addr_lens[i]),
            truncated: self.truncated[i],
            reply: &mut self.replies[i],
            ready: &mut self.reply_ready[i],
        })
    }

    /// Sends every reply marked with [`Slot::send_reply`], each to its datagram's source.
    /// A reply the kernel refuses (say, an unreachable destination) is skipped.
    pub(crate) fn send(&mut self, socket: BorrowedFd<'_>) -> Vec<io::Error> {
        let mut count = 0;
        for i in 0..self.received {
            if !self.reply_ready[i] {
                continue;
            }
            self.iovecs[count] = libc::iovec {
                iov_base: self.replies[i].as_mut_ptr().cast(),
                iov_len: self.replies[i].len(),
            };
            point(
                &mut self.headers[count],
                &raw mut self.addrs[i],
                self.addr_lens[i],
                &raw mut self.iovecs[count],
            );
            count += 1;
        }
        let mut errors = Vec::new();
        let mut start = 0;
        while start < count {
            // SAFETY: headers[start..count] point at `replies` (their lengths) and `addrs`
            // (the lengths the kernel gave on receive), all owned by `self`; the kernel
            // only reads them.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers[start..].as_mut_ptr(),
                    (count - start) as libc::c_uint,
                    0,
                )
            };
            if sent <= 0 {
                // The first of the remaining messages failed: skip it, keep the rest.
                errors.push(io::Error::last_os_error());
                start += 1;
            } else {
                start += sent as usize;
            }
        }
        self.received = 0;
        errors
    }
}

/// Points `h` at one buffer (`iov`) and one address (`name`, of `namelen` bytes), with no
/// control data and no flags: one datagram for the next call.
#[inline]
fn point(
    h: &mut libc::mmsghdr,
    name: *mut libc::sockaddr_storage,
    namelen: libc::socklen_t,
    iov: *mut libc::iovec,
) {
    h.msg_hdr.msg_name = name.cast();
    h.msg_hdr.msg_namelen = namelen;
    h.msg_hdr.msg_iov = iov;
    h.msg_hdr.msg_iovlen = 1;
    h.msg_hdr.msg_control = ptr::null_mut();
    h.msg_hdr.msg_controllen = 0;
    h.msg_hdr.msg_flags = 0;
    h.msg_len = 0;
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
    unsafe { mem::zeroed() }
}

fn zeroed_header() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain data (integers and raw pointers); all zeroes is valid, and
    // the pointers are set before every call.
    unsafe { mem::zeroed() }
}

/// The address the kernel wrote into `storage`.
fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, and `len` that all of
            // it is there; sockaddr_storage is large and aligned enough for any sockaddr.
            let a: &libc::sockaddr_in = unsafe { &*ptr::from_ref(storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*ptr::from_ref(storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Seconds on the coarse monotonic clock, the rate limiter's notion of "this second".
/// Public so that tests can start a burst at the beginning of a second.
pub fn now_secs() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call. The return
    // value is not looked at because the call cannot fail with these arguments: it fails
    // only for an unknown clock (CLOCK_MONOTONIC_COARSE exists on every Linux since 2.6.32)
    // or an unwritable `ts`. It is read from the vDSO without a system call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    // Wraps after 136 years of uptime; the limiter treats any change as a new second.
    ts.tv_sec as u32
}

/// Microseconds on `CLOCK_MONOTONIC`, the clock systemd compares a reload notification's
/// `MONOTONIC_USEC` with.
pub(crate) fn monotonic_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as in `now_secs`: `ts` is a valid, writable timespec for the duration of the
    // call, and CLOCK_MONOTONIC exists on every Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// `listener`, registered with the current tokio reactor for readability only: the HTTP
/// listeners accept with mio, which leaves accepted connections unregistered (tokio's
/// `TcpListener::accept` registers each).
pub(crate) fn polled_listener(
    listener: mio::net::TcpListener,
) -> io::Result<tokio::io::unix::AsyncFd<mio::net::TcpListener>> {
    // SAFETY: the file descriptor is the listener's own, open until the listener is dropped
    // with the `AsyncFd`, and `mio::net::TcpListener::as_raw_fd` always returns it.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(listener, tokio::io::Interest::READABLE)
    }
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::Duration;

    #[test]
    fn batch_receives_and_replies_to_each_source() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let addr = server.local_addr().expect("addr");
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        for c in &clients {
            c.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
        }
        for (i, c) in clients.iter().enumerate() {
            c.send_to(&[i as u8; 3], addr).expect("send");
        }
        let mut batch = Batch::new();
        let mut seen = 0;
        while seen < clients.len() {
            let n = batch.recv(server.as_fd(), Wait::ForOne).expect("recv");
            for i in 0..n {
                let mut slot = batch.slot(i).expect("slot");
                let peer = slot.peer.expect("peer");
                assert!(!slot.truncated);
                assert_eq!(slot.bytes.len(), 3);
                let from = usize::from(slot.bytes[0]);
                assert_eq!(peer, clients[from].local_addr().expect("addr"));
                let reply = vec![slot.bytes[0] + 100];
                *slot.reply = reply;
                slot.send_reply();
            }
            seen += n;
            assert!(batch.send(server.as_fd()).is_empty());
        }
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 16];
            let (n, from) = c.recv_from(&mut buf).expect("reply");
            assert_eq!((n, buf[0], from), (1, i as u8 + 100, addr));
        }
    }

    #[test]
    fn ipv6_sources_are_read() {
        let Ok(server) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback here
        };
        let client = UdpSocket::bind("[::1]:0").expect("bind");
        client
            .send_to(b"x", server.local_addr().expect("addr"))
            .expect("send");
        let mut batch = Batch::new();
        assert_eq!(batch.recv(server.as_fd(), Wait::ForOne).expect("recv"), 1);
        let slot = batch.slot(0).expect("slot");
        assert_eq!(slot.peer, Some(client.local_addr().expect("addr")));
        assert!(batch.slot(1).is_none());
    }

    #[test]
    fn full_slots_stay_apart_and_longer_datagrams_are_marked_truncated() {
        // Room for a whole batch of full datagrams (the default holds fewer).
        let server = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
            .expect("socket");
        server.set_recv_buffer_size(1 << 20).expect("buffer");
        server
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind");
        let server = UdpSocket::from(server);
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let addr = server.local_addr().expect("addr");
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut batch = Batch::new();
        // Nothing queued: not waiting means an error, not a block.
        let empty = batch.recv(server.as_fd(), Wait::No).expect_err("empty");
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);

        for i in 0..BATCH - 1 {
            client.send_to(&[i as u8; DATAGRAM], addr).expect("send");
        }
        client.send_to(&[0xee; DATAGRAM + 1], addr).expect("send");
        let mut seen = 0;
        while seen < BATCH {
            let n = batch.recv(server.as_fd(), Wait::ForOne).expect("recv");
            for i in seen..seen + n {
                let slot = batch.slot(i - seen).expect("slot");
                if i < BATCH - 1 {
                    assert!(!slot.truncated, "datagram {i}");
                    assert_eq!(slot.bytes.len(), DATAGRAM);
                    assert!(slot.bytes.iter().all(|&b| b == i as u8), "datagram {i}");
                } else {
                    assert!(slot.truncated);
                    assert_eq!(slot.bytes.len(), DATAGRAM);
                }
            }
            seen += n;
        }
    }
}
