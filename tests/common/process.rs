//! `geoline serve` as an operator runs it: the real binary in a child process, its
//! standard error collected as it is written (a pipe, as under systemd or `2>file`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `geoline serve` with DNS and admin listeners, and the addresses its start log gives
/// them (configured with port 0 or not).
pub struct Started {
    pub serve: Serve,
    pub dns: std::net::SocketAddr,
    pub admin: std::net::SocketAddr,
}

impl Started {
    /// Starts `geoline serve --config config` and waits (up to `limit`) until it listens.
    pub fn start(config: &Path, limit: Duration) -> Started {
        let serve = Serve::start(config, &[]);
        let log = serve.wait_for("admin listening", limit);
        Started {
            dns: listening(&log, "dns"),
            admin: listening(&log, "admin"),
            serve,
        }
    }
}

/// A running `geoline serve`, stopped (SIGKILL) when dropped.
pub struct Serve {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    /// Starts `geoline serve --config config` with `env` added to its environment.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_geoline"));
        command
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start geoline serve");
        let pipe = child.stderr.take().expect("stderr piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().expect("stderr lock").push_str(&line);
                line.clear();
            }
        });
        Serve { child, stderr }
    }

    /// Everything written to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Waits until standard error holds `text` (within `limit`); returns all of it.
    pub fn wait_for(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.stderr();
            if seen.contains(text) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "no `{text}` on stderr after {limit:?}:\n{seen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself (within `limit`); returns whether it
    /// succeeded and its whole standard error.
    pub fn wait_exit(&mut self, limit: Duration) -> (bool, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader thread take the last bytes.
                std::thread::sleep(Duration::from_millis(50));
                return (status.success(), self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "still running:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGHUP and returns the log line that says what the configuration reload did
    /// (`configuration reloaded`, `not reloaded` or `unchanged`), waiting up to `limit`.
    pub fn sighup(&self, limit: Duration) -> String {
        let outcomes = |log: &str| -> Vec<String> {
            log.lines()
                .filter(|l| {
                    l.contains("configuration reloaded")
                        || l.contains("configuration not reloaded")
                        || l.contains("configuration unchanged")
                })
                .map(str::to_string)
                .collect()
        };
        let before = outcomes(&self.stderr()).len();
        self.signal("HUP");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = outcomes(&self.stderr()).get(before) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no reload outcome after {limit:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The child's process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`HUP`, `TERM`) to the child.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `geoline args...` to completion: whether it succeeded, its stdout and its stderr.
pub fn geoline<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_geoline"))
        .args(args)
        .output()
        .expect("run geoline");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The address after `what listening ... addr=` in the start log.
pub fn listening(log: &str, what: &str) -> std::net::SocketAddr {
    let line = log
        .lines()
        .find(|l| l.contains(&format!("{what} listening")))
        .unwrap_or_else(|| panic!("no {what} listening line:\n{log}"));
    let addr = line.rsplit("addr=").next().expect("addr=");
    addr.split_whitespace()
        .next()
        .expect("an address")
        .parse()
        .expect("a socket address")
}
