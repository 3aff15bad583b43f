//! Publishing DNS-01 challenge records: TXT `_acme-challenge.<name>` added before the CA
//! is told, removed after.
//!
//! This module owns the UPDATE message that adds or removes one challenge value (RFC 2136:
//! an add in class IN, a removal of that one record in class NONE, so that other
//! challenges in flight at the same name stay) and where it goes: to this process's own
//! update path when it serves the zone ([`crate::update::Updates::apply_own`]: the same
//! processing, journal and swap as a signed request, in the base data every line sees),
//! or over TCP, TSIG-signed, to the zone's primary named in `[[acme.rfc2136]]`, whose
//! response must be signed by the same key over the update
//! ([`crate::dns::tsig::response`]). It does not wait for the record to be served
//! everywhere ([`super::propagation`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::config::AcmeConfig;
use crate::dns::tsig::Key;
use crate::live::Live;
use crate::update::policy::{Grant, NamePattern, Types};

/// The identity geoline's own challenge updates are made and counted under.
pub(crate) const IDENTITY: &str = "geoline-acme.";

/// Why a challenge record could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum Dns01Error {
    /// No zone served here, and no `[[acme.rfc2136]]`, holds the name.
    #[error("{0}: no zone served here holds it and no [[acme.rfc2136]] names its zone")]
    NoZone(String),
    /// The update was refused.
    #[error("{zone}: the update of {name} was answered {rcode}")]
    Refused {
        /// The zone.
        zone: String,
        /// The challenge name.
        name: String,
        /// The response code.
        rcode: String,
    },
    /// The zone's primary could not be reached or answered nonsense.
    #[error("{server}: {reason}")]
    Transport {
        /// The primary.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The primary's response is not signed by the update's key over the update (or says
    /// the update's signature was refused): nothing is taken from it.
    #[error("{server}: response {rcode} not taken: {source}")]
    Tsig {
        /// The primary.
        server: SocketAddr,
        /// The response's rcode, as it claimed.
        rcode: String,
        /// What is wrong with its TSIG.
        #[source]
        source: crate::dns::tsig::AnswerTsigError,
    },
    /// The message could not be built (a name too long).
    #[error("cannot build the update for {0}")]
    Build(String),
}

/// Where the challenge records of one zone are written.
#[derive(Clone)]
pub enum Publisher {
    /// A zone this process serves: through its own update path.
    Local {
        /// The live data whose zones and updates are written.
        live: Arc<Live>,
        /// The zone.
        zone: Name,
    },
    /// A zone served elsewhere: RFC 2136 with TSIG to its primary.
    Rfc2136 {
        /// The zone.
        zone: Name,
        /// Its primary.
        server: SocketAddr,
        /// The key updates are signed with.
        key: Arc<Key>,
    },
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Publisher::Local { zone, .. } => write!(f, "Local({zone})"),
            Publisher::Rfc2136 { zone, server, .. } => write!(f, "Rfc2136({zone} at {server})"),
        }
    }
}

/// `_acme-challenge.` + the identifier (a wildcard's without its `*.`, RFC 8555 8.4).
pub fn challenge_name(identifier: &str) -> Result<Name, Dns01Error> {
    let base = identifier.strip_prefix("*.").unwrap_or(identifier);
    let mut name = Name::from_ascii(format!("_acme-challenge.{base}"))
        .map_err(|_| Dns01Error::Build(identifier.to_string()))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// The publisher for `name`: the longest zone served here that holds it, else the
/// longest `[[acme.rfc2136]]` zone that does.
pub fn publisher_for(
    name: &Name,
    live: &Arc<Live>,
    config: &AcmeConfig,
) -> Result<Publisher, Dns01Error> {
    if let Some(zone) = live.zones.load().find(name) {
        return Ok(Publisher::Local {
            live: live.clone(),
            zone: zone.origin().to_lowercase(),
        });
    }
    let remote = config
        .rfc2136
        .iter()
        .filter(|r| r.zone.zone_of(name))
        .max_by_key(|r| r.zone.num_labels());
    match remote {
        Some(r) => {
            let key = live
                .keys
                .load()
                .get(&r.key)
                .cloned()
                .ok_or_else(|| Dns01Error::NoZone(name.to_string()))?;
            Ok(Publisher::Rfc2136 {
                zone: r.zone.clone(),
                server: r.server,
                key,
            })
        }
        None => Err(Dns01Error::NoZone(name.to_string())),
    }
}

/// An UPDATE of `zone` adding (`add`) or removing the TXT record `value` at `name`.
pub(crate) fn update_message(
    id: u16,
    zone: &Name,
    name: &Name,
    ttl: u32,
    value: &str,
    add: bool,
) -> Result<Vec<u8>, Dns01Error> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Update);
    message.add_query(Query::query(zone.clone(), RecordType::SOA));
    let mut record = Record::from_rdata(
        name.clone(),
        if add { ttl } else { 0 },
        RData::TXT(TXT::new(vec![value.to_string()])),
    );
    if !add {
        record.dns_class = DNSClass::NONE;
    }
    message.add_authority(record);
    message
        .to_vec()
        .map_err(|_| Dns01Error::Build(name.to_string()))
}

impl Publisher {
    /// The zone written.
    pub fn zone(&self) -> &Name {
        match self {
            Publisher::Local { zone, .. } | Publisher::Rfc2136 { zone, .. } => zone,
        }
    }

    /// Adds `value` at `name` (`add`) or removes it.
    pub async fn write(
        &self,
        name: &Name,
        value: &str,
        ttl: u32,
        add: bool,
    ) -> Result<(), Dns01Error> {
        let message = update_message(rand_id(), self.zone(), name, ttl, value, add)?;
        let rcode = match self {
            Publisher::Local { live, zone } => {
                let live = live.clone();
                let grant = own_grant(zone);
                // The journal is synced to disk before the swap: not on the runtime.
                tokio::task::spawn_blocking(move || {
                    let identity = Name::from_ascii(IDENTITY).unwrap_or_else(|_| Name::root());
                    live.updates
                        .apply_own(&live.zones, &message, &identity, &[grant])
                })
                .await
                .unwrap_or(ResponseCode::ServFail)
            }
            Publisher::Rfc2136 { server, key, .. } => send_signed(*server, key, message).await?,
        };
        if rcode == ResponseCode::NoError {
            Ok(())
        } else {
            Err(Dns01Error::Refused {
                zone: self.zone().to_string(),
                name: name.to_string(),
                rcode: rcode.to_string(),
            })
        }
    }
}

/// What geoline's own updates may write in `zone`: TXT records at challenge names, in the
/// base data (every line sees them: the CA's validators may be on any line).
fn own_grant(zone: &Name) -> Grant {
    Grant {
        key: Name::from_ascii(IDENTITY).unwrap_or_else(|_| Name::root()),
        zones: vec![zone.clone()],
        names: NamePattern::parse("_acme-challenge.*")
            .map(|p| vec![p])
            .unwrap_or_default(),
        types: Types::Only(vec![RecordType::TXT]),
        max_records: None,
        line: None,
    }
}

fn rand_id() -> u16 {
    let mut bytes = [0u8; 2];
    // An ID only matches a response to its request on the connection; a failure of the
    // random source leaves 0, which is as good.
    let _ = getrandom::fill(&mut bytes);
    u16::from_be_bytes(bytes)
}

/// Sends `message` signed with `key` to `server` over TCP; returns the response's rcode,
/// once the response's own TSIG verified over the request's MAC (an unsigned or forged
/// NOERROR is not a record written: `nsupdate` refuses it too).
async fn send_signed(
    server: SocketAddr,
    key: &Arc<Key>,
    mut message: Vec<u8>,
) -> Result<ResponseCode, Dns01Error> {
    let transport = |reason: String| Dns01Error::Transport { server, reason };
    let request_mac = crate::dns::tsig::sign_request(key, &mut message, crate::dns::tsig::now());
    let len = u16::try_from(message.len()).map_err(|_| transport("update too long".into()))?;
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&message);
        stream.write_all(&framed).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut response = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| transport("no response in 10 s".into()))?
        .map_err(|e| transport(e.to_string()))?;
    let id = message.get(..2);
    if response.get(..2) != id || response.len() < 12 {
        return Err(transport("a response to another message".into()));
    }
    let rcode = ResponseCode::from(0, response[3] & 0x0f);
    crate::dns::tsig::response::AnswerVerifier::new(key.clone(), request_mac)
        .next(&response, crate::dns::tsig::now())
        .map_err(|source| Dns01Error::Tsig {
            server,
            rcode: rcode.to_string(),
            source,
        })?;
    Ok(rcode)
}
