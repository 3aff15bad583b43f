//! Telling the service manager how `serve` is doing: systemd's `sd_notify` protocol
//! (`Type=notify` in the unit), READY=1 once every listener is bound and every zone and
//! database loaded, RELOADING=1 … READY=1 around a SIGHUP reload, STOPPING=1 when the
//! drain begins.
//!
//! The protocol is one datagram of `KEY=VALUE` lines to the Unix socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace), so it is written here
//! over std's `UnixDatagram` rather than linking libsystemd (a C library and a
//! dependency of the package for a dozen lines). Without `NOTIFY_SOCKET` (a terminal, a
//! container, another supervisor) every call does nothing.
//!
//! This module owns the wording of the messages and the socket; *when* each is sent is
//! [`super::Running::run_until_terminated`]'s business. A message that cannot be sent
//! is logged and otherwise ignored: the service manager's timeout, not a dead server, is
//! the right outcome of a broken notification socket.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets for `Type=notify` services.
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Where the service manager listens, when one does.
pub(crate) struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

/// Why `NOTIFY_SOCKET` could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    /// Neither an absolute path nor `@` and an abstract name.
    #[error("NOTIFY_SOCKET={0:?} is neither an absolute path nor @name")]
    BadAddress(String),
    /// The address is well formed but the system refused it or the socket.
    #[error("NOTIFY_SOCKET={address:?}: {source}")]
    Socket {
        /// The variable's value.
        address: String,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for; a silent one when it is unset or unusable
    /// (the reason is logged).
    pub(crate) fn from_env() -> Notifier {
        match std::env::var_os(NOTIFY_SOCKET) {
            None => Notifier { target: None },
            Some(value) => Notifier::to(&value).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "not notifying the service manager");
                Notifier { target: None }
            }),
        }
    }

    /// A notifier sending to `address`, spelled as in `NOTIFY_SOCKET`.
    pub(crate) fn to(address: &OsStr) -> Result<Notifier, NotifyError> {
        let text = || address.to_string_lossy().into_owned();
        let bytes = address.as_bytes();
        let socket_error = |source| NotifyError::Socket {
            address: text(),
            source,
        };
        let addr = match bytes.split_first() {
            Some((b'@', name)) if !name.is_empty() => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name).map_err(socket_error)?
            }
            Some((b'/', _)) => SocketAddr::from_pathname(address).map_err(socket_error)?,
            _ => return Err(NotifyError::BadAddress(text())),
        };
        let socket = UnixDatagram::unbound().map_err(socket_error)?;
        Ok(Notifier {
            target: Some((socket, addr)),
        })
    }

    /// Every listener answers and every zone and database is loaded; `status` is the
    /// line `systemctl status` shows.
    pub(crate) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A reload begins (systemd shows the unit as `reloading` until the next READY=1).
    /// MONOTONIC_USEC ties it to the reload request under `Type=notify-reload`.
    pub(crate) fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            crate::dns::sys::monotonic_micros()
        ));
    }

    /// The drain begins: no new work is taken, the process exits once it is done.
    pub(crate) fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining");
    }

    fn send(&self, message: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
            tracing::warn!(error = %e, message, "cannot notify the service manager");
        }
    }
}

/// `text` on one line: a newline would start a field of the protocol.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use std::os::linux::net::SocketAddrExt;
    use std::time::Duration;

    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8")
    }

    #[test]
    fn messages_reach_a_socket_named_by_path() {
        let dir = std::env::temp_dir().join(format!("geoline-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let manager = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier::to(path.as_os_str()).expect("notifier");

        notifier.ready("serving 2 zones\nand more");
        assert_eq!(
            receive(&manager),
            "READY=1\nSTATUS=serving 2 zones and more"
        );
        notifier.reloading();
        let reloading = receive(&manager);
        let usec = reloading
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .expect("RELOADING then MONOTONIC_USEC");
        assert!(usec.parse::<u64>().expect("decimal microseconds") > 0);
        notifier.stopping();
        assert_eq!(receive(&manager), "STOPPING=1\nSTATUS=draining");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("geoline-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract");
        let manager = UnixDatagram::bind_addr(&addr).expect("bind");
        let notifier = Notifier::to(OsStr::new(&format!("@{name}"))).expect("notifier");
        notifier.stopping();
        assert_eq!(receive(&manager), "STOPPING=1\nSTATUS=draining");
    }

    #[test]
    fn relative_and_empty_addresses_are_refused() {
        for bad in ["", "@", "notify.sock", "run/notify"] {
            assert!(
                matches!(
                    Notifier::to(OsStr::new(bad)),
                    Err(NotifyError::BadAddress(_))
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn a_missing_listener_is_not_fatal() {
        let notifier = Notifier::to(OsStr::new("/nonexistent/geoline/notify.sock"))
            .expect("the address is well formed");
        // Logged, not panicking, not returning an error the server would act on.
        notifier.ready("serving");
    }
}
