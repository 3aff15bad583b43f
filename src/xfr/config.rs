//! The `transfer` table of a `[[zone]]`: who may pull the zone by AXFR/IXFR, which line's
//! view each of them gets, and which secondaries are sent a NOTIFY when its serial moves.
//!
//! ```toml
//! [[zone]]
//! file = "zones/example.com.zone"
//! overlays = { china = "zones/example.com.china.zone" }
//! transfer.keys = { "china-xfr" = "china", "default-xfr" = "default" }
//! transfer.networks = ["192.0.2.0/24"]   # unsigned transfers from here...
//! transfer.unsigned_line = "default"     # ...get this line (the default)
//! transfer.notify = [{ address = "192.0.2.2:53", key = "china-xfr" }]
//! ```
//!
//! This module owns the table's format and checks (keys that `[[key]]` declares, lines
//! that are declared, networks and addresses that parse), and the access decision
//! ([`TransferConfig::line_for`]). It does not answer transfers ([`super::out`]) nor send
//! NOTIFYs ([`super::notify`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{ConfigError, Source};
use crate::lines::{LineId, LineSet};

/// A zone's `transfer` table, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Which line's view a transfer signed with each key receives (BIND's one key per
    /// view). Key names lower case, fully qualified.
    pub(crate) keys: Vec<(Name, LineId)>,
    /// Where unsigned transfers are allowed from; empty: nowhere.
    pub(crate) networks: Vec<IpNet>,
    /// The line unsigned transfers from `networks` receive.
    pub(crate) unsigned_line: LineId,
    /// The secondaries told of every new serial.
    pub(crate) notify: Vec<NotifyTarget>,
}

/// One secondary to NOTIFY, with the key that signs the NOTIFY (and so selects the view
/// on a BIND secondary whose views match keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotifyTarget {
    /// The secondary's DNS address.
    pub(crate) address: SocketAddr,
    /// The key that signs the NOTIFY; `None`: unsigned.
    pub(crate) key: Option<Name>,
}

/// The `transfer` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransfer {
    #[serde(default)]
    keys: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    networks: Vec<Spanned<String>>,
    unsigned_line: Option<Spanned<String>>,
    #[serde(default)]
    notify: Vec<Spanned<RawNotify>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    address: Spanned<String>,
    key: Option<Spanned<String>>,
}

/// Why a transfer request is refused, with the rcode Knot and BIND answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Signed with a key this zone does not give a line to, or unsigned from outside
    /// `networks`: REFUSED.
    NotAllowed,
}

fn key_name(text: &Spanned<String>, src: &Source<'_>) -> Result<Name, ConfigError> {
    let mut name = Name::from_ascii(text.get_ref()).map_err(|e| {
        src.invalid(
            text.span(),
            format!("key `{}` is not a domain name: {e}", text.get_ref()),
        )
    })?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

fn line(text: &Spanned<String>, src: &Source<'_>, lines: &LineSet) -> Result<LineId, ConfigError> {
    lines.id(text.get_ref()).ok_or_else(|| {
        src.invalid(
            text.span(),
            format!(
                "transfer to line `{}`, which is not declared (lines: {})",
                text.get_ref(),
                lines.names().join(", ")
            ),
        )
    })
}

impl TransferConfig {
    /// Checks a zone's `transfer` table: `lines` are the lines a key may receive,
    /// `declared` says whether a `[[key]]` of that name is.
    pub(crate) fn check(
        raw: RawTransfer,
        src: &Source<'_>,
        lines: &LineSet,
        declared: impl Fn(&Name) -> bool,
    ) -> Result<TransferConfig, ConfigError> {
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (key, to) in &raw.keys {
            let name = key_name(key, src)?;
            if !declared(&name) {
                return Err(src.invalid(
                    key.span(),
                    format!(
                        "transfer key `{}`, which no [[key]] declares",
                        key.get_ref()
                    ),
                ));
            }
            keys.push((name, line(to, src, lines)?));
        }
        let networks = raw
            .networks
            .iter()
            .map(|n| {
                let text = n.get_ref();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        src.invalid(
                            n.span(),
                            format!("transfer network `{text}` is not an address or a prefix"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let unsigned_line = match &raw.unsigned_line {
            Some(text) if networks.is_empty() => {
                return Err(src.invalid(
                    text.span(),
                    "`unsigned_line` without `networks`: unsigned transfers are allowed from none"
                        .into(),
                ));
            }
            Some(text) => line(text, src, lines)?,
            None => lines.default_line(),
        };
        let mut notify = Vec::with_capacity(raw.notify.len());
        for target in &raw.notify {
            let target = target.get_ref();
            let text = target.address.get_ref();
            let address = text
                .parse::<SocketAddr>()
                .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    src.invalid(
                        target.address.span(),
                        format!(
                            "notify address `{text}` is not an address (`192.0.2.2`, `192.0.2.2:5300`, `[2001:db8::2]:53`)"
                        ),
                    )
                })?;
            let key = match &target.key {
                None => None,
                Some(key) => {
                    let name = key_name(key, src)?;
                    if !declared(&name) {
                        return Err(src.invalid(
                            key.span(),
                            format!("notify key `{}`, which no [[key]] declares", key.get_ref()),
                        ));
                    }
                    Some(name)
                }
            };
            notify.push(NotifyTarget { address, key });
        }
        Ok(TransferConfig {
            keys,
            networks,
            unsigned_line,
            notify,
        })
    }

    /// The line whose view a transfer request receives: signed (`key`, already verified)
    /// with a key given a line, or unsigned from an allowed network; else refused.
    pub(crate) fn line_for(&self, key: Option<&Name>, from: IpAddr) -> Result<LineId, Refusal> {
        match key {
            Some(key) => self
                .keys
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, line)| *line)
                .ok_or(Refusal::NotAllowed),
            None => {
                let from = from.to_canonical();
                if self.networks.iter().any(|net| net.contains(&from)) {
                    Ok(self.unsigned_line)
                } else {
                    Err(Refusal::NotAllowed)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn check(table: &str) -> Result<TransferConfig, ConfigError> {
        #[derive(Deserialize)]
        struct Wrap {
            transfer: RawTransfer,
        }
        let text = format!("[transfer]\n{table}");
        let raw: Wrap = toml::from_str(&text).expect("toml");
        let src = Source::new(Path::new("/etc/geoline.toml"), &text);
        let lines = LineSet::new(["china"]).expect("lines");
        let declared = |n: &Name| {
            ["china-xfr.", "default-xfr.", "upd."]
                .iter()
                .any(|k| n.to_ascii() == *k)
        };
        TransferConfig::check(raw.transfer, &src, &lines, declared)
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    #[test]
    fn keys_select_lines_and_networks_allow_unsigned() {
        let c = check(concat!(
            "keys = { \"China-Xfr\" = \"china\", \"default-xfr.\" = \"default\" }\n",
            "networks = [\"192.0.2.0/24\", \"2001:db8::1\"]\n",
            "notify = [{ address = \"127.0.0.1:5301\", key = \"china-xfr\" }, { address = \"::1\" }]\n",
        ))
        .expect("valid");
        let china = LineId::new(0).expect("id");
        let default = LineId::new(1).expect("id");
        let here: IpAddr = "192.0.2.7".parse().expect("ip");
        let far: IpAddr = "198.51.100.1".parse().expect("ip");
        assert_eq!(c.line_for(Some(&name("china-xfr.")), far), Ok(china));
        assert_eq!(c.line_for(Some(&name("default-xfr.")), far), Ok(default));
        assert_eq!(
            c.line_for(Some(&name("upd.")), here),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(c.line_for(None, here), Ok(default));
        assert_eq!(
            c.line_for(None, "::ffff:192.0.2.9".parse().expect("ip")),
            Ok(default)
        );
        assert_eq!(c.line_for(None, far), Err(Refusal::NotAllowed));
        assert_eq!(
            c.line_for(None, "2001:db8::2".parse().expect("ip")),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(c.notify.len(), 2);
        assert_eq!(c.notify[1].address, "[::1]:53".parse().expect("addr"));
        assert_eq!(c.notify[0].key, Some(name("china-xfr.")));
    }

    #[test]
    fn errors_name_the_line_of_the_file() {
        let e = |t: &str| check(t).expect_err("invalid").to_string();
        assert_eq!(
            e("keys = { \"nokey\" = \"china\" }\n"),
            "/etc/geoline.toml:2: transfer key `nokey`, which no [[key]] declares"
        );
        assert_eq!(
            e("keys = { \"upd\" = \"mars\" }\n"),
            "/etc/geoline.toml:2: transfer to line `mars`, which is not declared (lines: china, default)"
        );
        assert_eq!(
            e("networks = [\"300.0.0.0/8\"]\n"),
            "/etc/geoline.toml:2: transfer network `300.0.0.0/8` is not an address or a prefix"
        );
        assert!(e("unsigned_line = \"china\"\n").contains("without `networks`"));
        assert!(e("notify = [{ address = \"nowhere\" }]\n").contains("notify address `nowhere`"));
    }
}
