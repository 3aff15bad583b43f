//! geoline: serve a web service that lives outside mainland China to users inside it.
//!
//! Three parts share one configuration and one client classification:
//!
//! * `dns`: an authoritative GeoDNS server answering per-line views of its zones;
//! * `redirect`: the redirector, sending mainland clients of `example.com` to `example.cn`;
//! * the rewriting reverse proxy (`proxy`), the nginx `proxy_pass` + `sub_filter` role.
//!
//! Classification is `lines`: a client address, through the GeoIP databases (`geoip`) and
//! CIDR lists, becomes a line (`china`, `default`, ...) and the widest prefix around the
//! address that falls in the same line (the EDNS Client Subnet scope).

#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod proxy;
pub mod server;

mod acme;
mod admin;
mod certs;
mod diag;
mod dns;
mod exposition;
mod geoip;
mod health;
mod http;
mod lines;
mod live;
mod redirect;
mod reload;
mod update;
mod util;
mod xfr;
mod zone;

/// Parts of the crate that the binary, the benches, the fuzz targets and the integration
/// tests reach into. Not a stable interface: anything here may change in any release.
#[doc(hidden)]
pub mod internal {
    /// ACME's DNS-01 parts, for the integration tests (tests/acme.rs).
    pub mod acme {
        pub use crate::acme::dns01::{Dns01Error, Publisher, challenge_name, publisher_for};
        pub use crate::acme::propagation::{
            Authority, PropagationError, authorities, wait_until_served,
        };
    }
    pub use crate::dns::Responder;
    pub use crate::dns::cache::AnswerCache;
    pub use crate::dns::outcome::{ResponseKind, Transport};
    pub use crate::dns::rrl::{Rrl, Subject};
    pub use crate::dns::sys::now_secs;
    pub use crate::dns::tsig;
    pub use crate::dns::wire::ecs::scope_of_address as ecs_scope_of_address;
    pub use crate::dns::wire::query::{Query, QuickQuery};
    pub use crate::geoip::{Contents, Field, GeoDb, GeoIpError, MmdbError};
    pub use crate::http::{access_log, proxy_protocol};
    pub use crate::lines::{Classifier, Coverage, Decision, Explanation, LineId, LineSet};
    pub use crate::live::Live;
    pub use crate::redirect::check as check_redirect;
    pub use crate::reload::{Target, Trigger};
    pub use crate::update::measure::{apply_update_granted, live_with_updates};
    pub use crate::update::store::ReloadZoneError;
    pub use crate::update::{JournalError, ReplayError, Updates};
    pub use crate::util::time::format_date;
    pub use crate::xfr::measure::axfr_messages;
    pub use crate::zone::{AnswerCode, Zone, ZoneError};
}
