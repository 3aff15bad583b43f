//! geoline: serve a web service that lives outside mainland China to users inside it.
//!
//! Three parts share one configuration and one client classification:
//!
//! * [`dns`]: an authoritative GeoDNS server answering per-line views of its zones;
//! * [`redirect`]: the redirector, sending mainland clients of `example.com` to `example.cn`;
//! * the rewriting reverse proxy (`proxy`), the nginx `proxy_pass` + `sub_filter` role.
//!
//! Classification is [`lines`]: a client address, through the GeoIP databases ([`geoip`]) and
//! CIDR lists, becomes a line (`china`, `default`, ...) and the widest prefix around the
//! address that falls in the same line (the EDNS Client Subnet scope).

pub mod admin;
pub mod config;
pub mod dns;
pub mod geoip;
pub mod lines;
pub mod lookup;
pub mod metrics;
pub mod proxy;
pub mod redirect;
pub mod reload;
pub mod server;
pub mod watch;
pub mod zone;
