//! Vantage points: the check results other geolines publish (`GET /health/results` on
//! their admin listener, a probe on a mainland host for instance), read over HTTP(S).
//!
//! This module owns the published document's shape, reading it from a source, and the
//! tasks that read each source every interval. A source that cannot be read, or answers
//! something else, counts as unknown for every address, never as down; how the views add
//! up to a state (the quorum) is [`super`]'s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use super::check::{CheckSetupError, connector};
use super::config::SourceConfig;
use super::http1::{self, Flow};
use crate::live::Live;

/// The largest results document read: some 10,000 addresses.
const DOCUMENT_LIMIT: usize = 2 * 1024 * 1024;

/// What one source says of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Vote {
    /// Its checks pass.
    Up,
    /// Its checks fail.
    Down,
    /// Not checked yet, not published, or the source could not be read.
    Unknown,
}

impl Vote {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Vote::Up => "up",
            Vote::Down => "down",
            Vote::Unknown => "unknown",
        }
    }
}

/// `GET /health/results`: what this geoline's own checks say, per address.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Published {
    pub(crate) results: Vec<PublishedAddress>,
}

/// One address in [`Published`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PublishedAddress {
    pub(crate) address: IpAddr,
    pub(crate) state: Vote,
    /// Why it is in that state (the last state change's reason, or the last failure).
    #[serde(default)]
    pub(crate) why: Option<String>,
}

/// A source ready to be read.
pub(crate) struct Reader {
    config: SourceConfig,
    tls: Option<TlsConnector>,
}

impl Reader {
    pub(crate) fn new(config: &SourceConfig) -> Result<Reader, CheckSetupError> {
        let tls = config.tls.as_ref().map(connector).transpose()?;
        Ok(Reader {
            config: config.clone(),
            tls,
        })
    }

    /// The source's views, by address; the reason when it cannot be read.
    pub(crate) async fn read(&self) -> Result<HashMap<IpAddr, (Vote, Option<String>)>, String> {
        let document = tokio::time::timeout(self.config.timeout, self.fetch())
            .await
            .map_err(|_| format!("no answer within {} ms", self.config.timeout.as_millis()))??;
        let published: Published = serde_json::from_slice(&document)
            .map_err(|e| format!("not a results document: {e}"))?;
        Ok(published
            .results
            .into_iter()
            .map(|a| (a.address, (a.state, a.why)))
            .collect())
    }

    async fn fetch(&self) -> Result<Vec<u8>, String> {
        let c = &self.config;
        let target = tokio::net::lookup_host((c.host.as_str(), c.port))
            .await
            .map_err(|e| format!("resolving {}: {e}", c.host))?
            .next()
            .ok_or_else(|| format!("{} has no address", c.host))?;
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| format!("connect to {target}: {e}"))?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => self.get(stream).await,
            Some(tls) => {
                let name = ServerName::try_from(c.host.clone())
                    .map_err(|e| format!("server name `{}`: {e}", c.host))?;
                let stream = tls
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS with {target}: {e}"))?;
                self.get(stream).await
            }
        }
    }

    async fn get<S>(&self, stream: S) -> Result<Vec<u8>, String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let c = &self.config;
        let authorization = c.token.as_ref().map(|token| format!("Bearer {token}"));
        let request = http1::request(&c.path, &c.authority, authorization.as_deref());
        let response = http1::get(stream, &request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.head.status;
        if status != 200 {
            return Err(format!("status {status}, expected 200"));
        }
        let mut document = Vec::new();
        let mut over = false;
        response
            .read_body(|data| {
                over = document.len() + data.len() > DOCUMENT_LIMIT;
                if over {
                    return Flow::Stop;
                }
                document.extend_from_slice(data);
                Flow::More
            })
            .await
            .map_err(|e| format!("reading the results: {e}"))?;
        if over {
            return Err(format!("reading the results: over {DOCUMENT_LIMIT} bytes"));
        }
        Ok(document)
    }
}

/// Reads source `index` of the configuration of `epoch` every interval into
/// `live.health`, until `stop`.
pub(crate) fn spawn(
    index: usize,
    epoch: u64,
    reader: Arc<Reader>,
    live: &Arc<Live>,
    stop: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let (live, stop) = (live.clone(), stop.clone());
    let interval = reader.config.interval;
    tasks.spawn(async move {
        loop {
            let started = tokio::time::Instant::now();
            let views = tokio::select! {
                () = stop.cancelled() => return,
                views = reader.read() => views,
            };
            live.health.apply_source(index, epoch, views);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(started + interval) => {}
            }
        }
    });
}
