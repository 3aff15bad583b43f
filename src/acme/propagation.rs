//! Waiting until every authoritative server of a zone serves a challenge record.
//!
//! A CA validates from several places at once and asks whichever authoritative server its
//! resolver picks, so telling it too early fails the order. This module owns finding the
//! zone's servers (its NS set, each name server's addresses from `[acme.nameservers]`,
//! then the zone's own glue, then the system resolver) and asking each of them directly
//! (UDP, recursion not desired) until all serve every expected value, or the timeout
//! says which did not. It does not write records ([`super::dns01`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

use super::dns01::Publisher;

/// Why the servers could not be found, or did not all serve the record in time.
#[derive(Debug, thiserror::Error)]
pub enum PropagationError {
    /// The zone has no NS records to ask.
    #[error("{0}: no NS records")]
    NoNameservers(String),
    /// A name server's addresses could not be found.
    #[error("name server {0}: no address (give it in [acme.nameservers])")]
    NoAddress(String),
    /// The NS set could not be read from the zone's primary.
    #[error("{server}: cannot read the NS records of {zone}: {reason}")]
    Query {
        /// The primary asked.
        server: SocketAddr,
        /// The zone.
        zone: String,
        /// What went wrong.
        reason: String,
    },
    /// Some servers did not serve every value before the timeout.
    #[error("after {secs} s, {name} TXT is not served yet by {lagging}")]
    Timeout {
        /// The challenge name.
        name: String,
        /// How long was waited.
        secs: u64,
        /// The servers that lag, `host (address)`.
        lagging: String,
    },
}

/// One authoritative server: its NS name and one address of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The name server's name (from the NS record).
    pub host: Name,
    /// One of its addresses.
    pub addr: SocketAddr,
}

/// Every address of every name server of `publisher`'s zone.
pub async fn authorities(
    publisher: &Publisher,
    overrides: &BTreeMap<Name, Vec<SocketAddr>>,
) -> Result<Vec<Authority>, PropagationError> {
    let zone = publisher.zone().clone();
    let (hosts, glue) = match publisher {
        Publisher::Local { live, .. } => {
            let zones = live.zones.load();
            let Some(z) = zones.find(&zone) else {
                return Err(PropagationError::NoNameservers(zone.to_string()));
            };
            let base = live.classifier.load().lines().default_line();
            let answer = z.lookup(base, &zone, RecordType::NS);
            let hosts = ns_hosts(answer.answers.iter().map(|r| &r.data));
            let glue = addresses(answer.additional.iter().map(|r| (&r.name, &r.data)));
            (hosts, glue)
        }
        Publisher::Rfc2136 { server, .. } => {
            let response = query(*server, &zone, RecordType::NS, Duration::from_secs(5))
                .await
                .map_err(|reason| PropagationError::Query {
                    server: *server,
                    zone: zone.to_string(),
                    reason,
                })?;
            let hosts = ns_hosts(response.answers.iter().map(|r| &r.data));
            let glue = addresses(response.additionals.iter().map(|r| (&r.name, &r.data)));
            (hosts, glue)
        }
    };
    if hosts.is_empty() {
        return Err(PropagationError::NoNameservers(zone.to_string()));
    }
    let mut out = Vec::new();
    for host in hosts {
        let key = host.to_lowercase();
        let addrs: Vec<SocketAddr> = if let Some(list) = overrides.get(&key) {
            list.clone()
        } else if let Some(ips) = glue.get(&key) {
            ips.iter().map(|ip| SocketAddr::new(*ip, 53)).collect()
        } else {
            let text = key.to_string();
            let text = text.trim_end_matches('.');
            tokio::net::lookup_host((text, 53))
                .await
                .map(|it| it.collect())
                .unwrap_or_default()
        };
        if addrs.is_empty() {
            return Err(PropagationError::NoAddress(key.to_string()));
        }
        out.extend(addrs.into_iter().map(|addr| Authority {
            host: key.clone(),
            addr,
        }));
    }
    Ok(out)
}

fn ns_hosts<'a>(data: impl Iterator<Item = &'a RData>) -> Vec<Name> {
    data.filter_map(|d| match d {
        RData::NS(ns) => Some(ns.0.to_lowercase()),
        _ => None,
    })
    .collect()
}

fn addresses<'a>(
    records: impl Iterator<Item = (&'a Name, &'a RData)>,
) -> BTreeMap<Name, Vec<IpAddr>> {
    let mut out: BTreeMap<Name, Vec<IpAddr>> = BTreeMap::new();
    for (name, data) in records {
        let ip = match data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        out.entry(name.to_lowercase()).or_default().push(ip);
    }
    out
}

/// One query to `server` over UDP, recursion not desired; the response, or why none.
pub(crate) async fn query(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let id = {
        let mut b = [0u8; 2];
        let _ = getrandom::fill(&mut b);
        u16::from_be_bytes(b)
    };
    let mut request = Message::new(id, MessageType::Query, OpCode::Query);
    request.add_query(Query::query(name.clone(), rtype));
    let bytes = request.to_vec().map_err(|e| e.to_string())?;
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(&bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| format!("no answer in {} ms", timeout.as_millis()))?
            .map_err(|e| e.to_string())?;
        let Ok(response) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if response.metadata.id == id && response.metadata.message_type == MessageType::Response {
            return Ok(response);
        }
    }
}

/// Whether `server` answers TXT `name` authoritatively with every one of `values`.
async fn serves(server: SocketAddr, name: &Name, values: &[String], timeout: Duration) -> bool {
    let Ok(response) = query(server, name, RecordType::TXT, timeout).await else {
        return false;
    };
    if response.metadata.response_code != ResponseCode::NoError || !response.metadata.authoritative
    {
        return false;
    }
    let served: Vec<Vec<u8>> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    values
        .iter()
        .all(|v| served.iter().any(|s| s.as_slice() == v.as_bytes()))
}

/// Asks every one of `servers`, every `interval`, whether it serves all of `values` at
/// `name`, until all do (returns how long that took) or `timeout` has passed.
pub async fn wait_until_served(
    servers: &[Authority],
    name: &Name,
    values: &[String],
    interval: Duration,
    timeout: Duration,
) -> Result<Duration, PropagationError> {
    let started = Instant::now();
    let mut pending: Vec<&Authority> = servers.iter().collect();
    loop {
        let ask = interval
            .min(Duration::from_secs(2))
            .max(Duration::from_millis(50));
        let checks = pending.iter().map(|a| serves(a.addr, name, values, ask));
        let results = futures_util::future::join_all(checks).await;
        pending = pending
            .into_iter()
            .zip(results)
            .filter(|(_, ok)| !ok)
            .map(|(a, _)| a)
            .collect();
        if pending.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() + interval > timeout {
            let lagging: Vec<String> = pending
                .iter()
                .map(|a| format!("{} ({})", a.host, a.addr))
                .collect();
            return Err(PropagationError::Timeout {
                name: name.to_string(),
                secs: started.elapsed().as_secs(),
                lagging: lagging.join(", "),
            });
        }
        tokio::time::sleep(interval).await;
    }
}
