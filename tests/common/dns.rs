//! A small DNS client for the integration tests: queries built byte by byte (so tests can
//! also build broken ones), sent over real UDP and TCP sockets, responses decoded with
//! hickory-proto and the OPT record read raw.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub const A: u16 = 1;
pub const NS: u16 = 2;
pub const CNAME: u16 = 5;
pub const SOA: u16 = 6;
pub const MX: u16 = 15;
pub const TXT: u16 = 16;
pub const AAAA: u16 = 28;
pub const DS: u16 = 43;
pub const ANY: u16 = 255;

#[derive(Clone, Debug)]
pub struct Edns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Default for Edns {
    fn default() -> Self {
        Edns {
            payload: 1232,
            version: 0,
            dnssec_ok: false,
            options: Vec::new(),
        }
    }
}

/// The Client Subnet option data for `prefix` ("1.2.4.0/24"), truncated as RFC 7871 asks.
pub fn ecs(prefix: &str) -> (u16, Vec<u8>) {
    let (addr, len) = prefix.split_once('/').expect("prefix");
    let len: u8 = len.parse().expect("prefix length");
    let addr: std::net::IpAddr = addr.parse().expect("address");
    let (family, octets): (u16, Vec<u8>) = match addr {
        std::net::IpAddr::V4(a) => (1, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (2, a.octets().to_vec()),
    };
    let mut data = family.to_be_bytes().to_vec();
    data.push(len);
    data.push(0);
    data.extend_from_slice(&octets[..usize::from(len).div_ceil(8)]);
    (8, data)
}

#[derive(Clone, Debug)]
pub struct Query {
    pub id: u16,
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    pub edns: Option<Edns>,
}

impl Query {
    pub fn new(name: &str, qtype: u16) -> Query {
        Query {
            id: 0x4242,
            name: name.to_string(),
            qtype,
            qclass: 1,
            opcode: 0,
            recursion_desired: false,
            edns: None,
        }
    }

    pub fn edns(mut self) -> Query {
        self.edns = Some(Edns::default());
        self
    }

    pub fn subnet(mut self, prefix: &str) -> Query {
        let mut e = self.edns.take().unwrap_or_default();
        e.options.push(ecs(prefix));
        self.edns = Some(e);
        self
    }

    pub fn payload(mut self, payload: u16) -> Query {
        let mut e = self.edns.take().unwrap_or_default();
        e.payload = payload;
        self.edns = Some(e);
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.id.to_be_bytes());
        let mut flags: u16 = u16::from(self.opcode) << 11;
        if self.recursion_desired {
            flags |= 0x0100;
        }
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
        b.extend_from_slice(&u16::from(self.edns.is_some()).to_be_bytes());
        for label in self
            .name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
        {
            b.push(label.len() as u8);
            b.extend_from_slice(label.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&self.qtype.to_be_bytes());
        b.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some(e) = &self.edns {
            let mut rdata = Vec::new();
            for (code, data) in &e.options {
                rdata.extend_from_slice(&code.to_be_bytes());
                rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
                rdata.extend_from_slice(data);
            }
            b.push(0);
            b.extend_from_slice(&41u16.to_be_bytes());
            b.extend_from_slice(&e.payload.to_be_bytes());
            let ttl = (u32::from(e.version) << 16) | if e.dnssec_ok { 0x8000 } else { 0 };
            b.extend_from_slice(&ttl.to_be_bytes());
            b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            b.extend_from_slice(&rdata);
        }
        b
    }
}

/// A decoded response with its raw bytes.
#[derive(Debug)]
pub struct Reply {
    pub raw: Vec<u8>,
    pub message: Message,
}

/// The Client Subnet option a response carried: (family, source, scope, address bytes).
pub type Subnet = (u16, u8, u8, Vec<u8>);

impl Reply {
    pub fn parse(raw: Vec<u8>) -> Reply {
        let message = Message::from_vec(&raw).expect("response decodes");
        Reply { raw, message }
    }

    pub fn rcode(&self) -> u16 {
        let low = u16::from(self.raw[3] & 0x0f);
        let high = self.opt().map(|o| u16::from(o.extended_rcode)).unwrap_or(0);
        (high << 4) | low
    }

    pub fn aa(&self) -> bool {
        self.raw[2] & 0x04 != 0
    }

    pub fn tc(&self) -> bool {
        self.raw[2] & 0x02 != 0
    }

    pub fn rd(&self) -> bool {
        self.raw[2] & 0x01 != 0
    }

    pub fn ra(&self) -> bool {
        self.raw[3] & 0x80 != 0
    }

    pub fn qr(&self) -> bool {
        self.raw[2] & 0x80 != 0
    }

    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.raw[0], self.raw[1]])
    }

    /// The answers' data alone (`192.0.2.10`, a TXT's text), in order.
    pub fn answer_data(&self) -> Vec<String> {
        self.message
            .answers
            .iter()
            .map(|r| r.data.to_string())
            .collect()
    }

    /// Answer records as "owner ttl TYPE rdata" lines, in order.
    pub fn answers(&self) -> Vec<String> {
        self.message.answers.iter().map(|r| r.to_string()).collect()
    }

    pub fn authority(&self) -> Vec<String> {
        self.message
            .authorities
            .iter()
            .map(|r| r.to_string())
            .collect()
    }

    pub fn additional(&self) -> Vec<String> {
        self.message
            .additionals
            .iter()
            .map(|r| r.to_string())
            .collect()
    }

    /// The question's owner name exactly as written on the wire (letter case kept).
    pub fn question_name(&self) -> String {
        let mut i = 12;
        let mut labels = Vec::new();
        while self.raw[i] != 0 {
            let len = usize::from(self.raw[i]);
            labels.push(String::from_utf8_lossy(&self.raw[i + 1..i + 1 + len]).into_owned());
            i += 1 + len;
        }
        labels.join(".") + "."
    }

    /// The OPT record, read from the end of the additional section.
    pub fn opt(&self) -> Option<Opt> {
        find_opt(&self.raw)
    }

    pub fn subnet(&self) -> Option<Subnet> {
        let opt = self.opt()?;
        let (_, data) = opt.options.iter().find(|(code, _)| *code == 8)?;
        Some((
            u16::from_be_bytes([data[0], data[1]]),
            data[2],
            data[3],
            data[4..].to_vec(),
        ))
    }
}

#[derive(Debug, Clone)]
pub struct Opt {
    pub payload: u16,
    pub extended_rcode: u8,
    pub version: u8,
    pub dnssec_ok: bool,
    pub options: Vec<(u16, Vec<u8>)>,
}

/// The answer section's records of a raw response as (type, RDATA bytes): for tests of
/// the exact data served, and of data hickory's decoder does not take (empty RDATA).
pub fn answer_rdata(raw: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let count = |i: usize| usize::from(u16::from_be_bytes([raw[i], raw[i + 1]]));
    let mut i = 12;
    for _ in 0..count(4) {
        i = skip_name(raw, i).expect("question name") + 4;
    }
    (0..count(6))
        .map(|_| {
            i = skip_name(raw, i).expect("owner name");
            let rtype = u16::from_be_bytes([raw[i], raw[i + 1]]);
            let rdlen = usize::from(u16::from_be_bytes([raw[i + 8], raw[i + 9]]));
            let rdata = raw[i + 10..i + 10 + rdlen].to_vec();
            i += 10 + rdlen;
            (rtype, rdata)
        })
        .collect()
}

/// Walks the message's records and returns the OPT, read raw: hickory folds the extended
/// rcode into its own types, and the tests are about the exact bytes.
fn find_opt(raw: &[u8]) -> Option<Opt> {
    let count = |i: usize| usize::from(u16::from_be_bytes([raw[i], raw[i + 1]]));
    let (qd, records) = (count(4), count(6) + count(8) + count(10));
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(raw, i)? + 4;
    }
    for _ in 0..records {
        let owner = i;
        i = skip_name(raw, i)?;
        let rtype = u16::from_be_bytes([*raw.get(i)?, *raw.get(i + 1)?]);
        let rdlen = usize::from(u16::from_be_bytes([*raw.get(i + 8)?, *raw.get(i + 9)?]));
        let rdata = raw.get(i + 10..i + 10 + rdlen)?;
        if rtype == 41 {
            assert_eq!(raw[owner], 0, "OPT owner is the root");
            let mut options = Vec::new();
            let mut rest = rdata;
            while rest.len() >= 4 {
                let code = u16::from_be_bytes([rest[0], rest[1]]);
                let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                options.push((code, rest.get(4..4 + len)?.to_vec()));
                rest = &rest[4 + len..];
            }
            return Some(Opt {
                payload: u16::from_be_bytes([raw[i + 2], raw[i + 3]]),
                extended_rcode: raw[i + 4],
                version: raw[i + 5],
                dnssec_ok: raw[i + 6] & 0x80 != 0,
                options,
            });
        }
        i += 10 + rdlen;
    }
    None
}

fn skip_name(raw: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *raw.get(i)?;
        if len == 0 {
            return Some(i + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(i + 2);
        }
        i += 1 + usize::from(len);
    }
}

const WAIT: Duration = Duration::from_secs(5);

/// How long one UDP try waits, and how many tries: as dig (`+tries=3`) and every stub
/// resolver, the query is sent again when no reply came, since UDP may lose a datagram
/// (a full socket buffer while the whole test suite runs on two cores). A server that
/// never answers still fails the test; [`udp_expect_silence`] pins the packets that must
/// get no reply.
const UDP_TRY: Duration = Duration::from_secs(2);
const UDP_TRIES: usize = 3;

/// Sends `bytes` over UDP from `from` (an address on this host) and waits for the reply.
pub async fn udp_raw_from(from: &str, server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(from).await.expect("bind client");
    let mut buf = vec![0u8; 65535];
    for _ in 0..UDP_TRIES {
        socket.send_to(bytes, server).await.expect("send");
        if let Ok(Ok((n, _))) = tokio::time::timeout(UDP_TRY, socket.recv_from(&mut buf)).await {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

/// Like [`udp_raw_from`] but waiting only briefly: for packets that must get no reply.
pub async fn udp_expect_silence(server: SocketAddr, bytes: &[u8]) -> bool {
    let local = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socket = UdpSocket::bind(local).await.expect("bind client");
    socket.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf))
        .await
        .is_err()
}

pub async fn udp(server: SocketAddr, query: &Query) -> Reply {
    let local = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    udp_from(local, server, query).await
}

pub async fn udp_from(from: &str, server: SocketAddr, query: &Query) -> Reply {
    let raw = udp_raw_from(from, server, &query.bytes())
        .await
        .expect("a UDP reply");
    let reply = Reply::parse(raw);
    assert_eq!(reply.id(), query.id, "reply id");
    assert!(reply.qr(), "QR set");
    reply
}

/// One TCP connection, several queries.
pub struct Tcp {
    stream: TcpStream,
}

impl Tcp {
    pub async fn connect(server: SocketAddr) -> Tcp {
        Tcp {
            stream: TcpStream::connect(server).await.expect("tcp connect"),
        }
    }

    /// Connects from `from` (an address on this host, such as 127.0.0.5: every 127/8
    /// address is local on Linux), so that a test can be several clients.
    pub async fn connect_from(from: &str, server: SocketAddr) -> Tcp {
        let from: SocketAddr = from.parse().expect("client address");
        let socket = if from.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .expect("tcp socket");
        socket.bind(from).expect("bind client");
        Tcp {
            stream: socket.connect(server).await.expect("tcp connect"),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(&(bytes.len() as u16).to_be_bytes())
            .await
            .expect("write length");
        self.stream.write_all(bytes).await.expect("write query");
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one length-prefixed message; None when the server closed the connection.
    pub async fn recv_raw(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let mut len = [0u8; 2];
        match tokio::time::timeout(wait, self.stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return None,
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tokio::time::timeout(wait, self.stream.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf)
    }

    pub async fn ask(&mut self, query: &Query) -> Reply {
        self.send_raw(&query.bytes()).await;
        let raw = self.recv_raw(WAIT).await.expect("a TCP reply");
        let reply = Reply::parse(raw);
        assert_eq!(reply.id(), query.id, "reply id");
        reply
    }

    /// True when the server has closed the connection (EOF) within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(wait, self.stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

pub async fn tcp(server: SocketAddr, query: &Query) -> Reply {
    Tcp::connect(server).await.ask(query).await
}
