//! The `[admin]` section: where the admin listener listens, and its token.
//!
//! This module owns the section's format and checks; [`super`] serves the endpoints.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{ConfigError, Source};

/// Where the admin listener listens when `[admin]` gives no address: loopback only.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9300));

/// The admin listener: metrics, status, reload.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where it listens; [`DEFAULT_ADMIN_LISTEN`] when `[admin]` gives none.
    pub listen: SocketAddr,
    /// When set, every endpoint but `/healthz` wants `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// `[admin]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    listen: Option<SocketAddr>,
    token: Option<Spanned<String>>,
}

impl AdminConfig {
    /// Checks `[admin]`.
    pub(crate) fn check(a: RawAdmin, src: &Source<'_>) -> Result<AdminConfig, ConfigError> {
        let token = match a.token {
            Some(t) => {
                let text = t.get_ref();
                if text.len() < 16 || !text.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(src.invalid(
                        t.span(),
                        "admin.token must be at least 16 printable ASCII characters, no spaces"
                            .into(),
                    ));
                }
                Some(text.clone())
            }
            None => None,
        };
        Ok(AdminConfig {
            listen: a.listen.unwrap_or(DEFAULT_ADMIN_LISTEN),
            token,
        })
    }
}
