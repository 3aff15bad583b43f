//! DNS over TCP (RFC 7766) through hickory-server.
//!
//! hickory-server owns the connections: accepting, length-prefixed framing, several queries
//! per connection, and closing a connection idle for the configured timeout. This module is
//! the adapter from its [`RequestHandler`] to [`super::respond`], so TCP answers are decided
//! exactly as UDP ones are; only the size limit differs. A message hickory cannot decode at
//! all gets hickory's own FORMERR.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet as HickorySubnet, EdnsOption};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::TcpListener;
use tracing::debug;

use super::DnsState;
use super::respond::Transport;
use super::response::{EdnsReply, Encoded};

/// hickory-server's handler for geoline's TCP listeners.
pub struct TcpHandler {
    state: Arc<DnsState>,
}

/// Starts hickory-server on `listeners`; the caller keeps the server to shut it down.
pub fn server(
    listeners: Vec<TcpListener>,
    state: Arc<DnsState>,
    idle_timeout: Duration,
) -> Server<TcpHandler> {
    let mut server = Server::new(TcpHandler { state });
    for listener in listeners {
        server.register_listener(listener, idle_timeout, 64);
    }
    server
}

#[async_trait::async_trait]
impl RequestHandler for TcpHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let src = request.src();
        let Some(decision) = self
            .state
            .decide(request.as_slice(), src.ip(), Transport::Tcp)
        else {
            return no_response(request);
        };
        // A TCP response is at most 65535 bytes and hickory writes it whole: never truncated.
        let outcome = decision.outcome(Encoded { truncated: false });
        self.state.metrics.record(&outcome, Transport::Tcp);
        let r = &decision.response;
        let edns = r.edns.as_ref().map(hickory_edns);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = r.authoritative;
        metadata.response_code = r.rcode;
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let message = builder.build(
            metadata,
            r.answers.iter(),
            r.authority.iter(),
            std::iter::empty(),
            r.additional.iter(),
        );
        match response_handle.send_response(message).await {
            Ok(info) => info,
            Err(e) => {
                debug!(error = %e, %src, "tcp send");
                no_response(request)
            }
        }
    }
}

fn hickory_edns(reply: &EdnsReply) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(reply.udp_payload);
    edns.set_version(0);
    edns.set_dnssec_ok(reply.dnssec_ok);
    if let Some((subnet, scope)) = reply.client_subnet {
        edns.options_mut()
            .insert(EdnsOption::Subnet(HickorySubnet::new(
                subnet.address,
                subnet.source_prefix,
                scope,
            )));
    }
    edns
}

fn no_response(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}
