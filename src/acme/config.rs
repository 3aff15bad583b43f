//! The `[acme]` section and the `acme` key of a `[[redirect.certificate]]` or
//! `[[proxy.certificate]]`: which certificates geoline obtains by itself, from which CA,
//! where it keeps them, and how it publishes and checks the DNS-01 challenge records.
//!
//! This module owns their format, defaults and checks, and where an ACME certificate's
//! files go under the state directory (so the certificate set reads them like any other
//! certificate's). It does not talk to a CA or a DNS server ([`super::order`],
//! [`super::dns01`], [`super::propagation`] do).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;
use serde::Deserialize;
use toml::Spanned;

use crate::certs::CertificateConfig;
use crate::diag::{ConfigError, Source};
use crate::dns::tsig::KeyRing;

/// Let's Encrypt's production directory, the default CA.
pub(crate) const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`directory = "letsencrypt-staging"`).
pub(crate) const LETS_ENCRYPT_STAGING: &str =
    "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The key of an obtained certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256: the default, what every client and CA takes.
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
}

impl KeyType {
    /// The name written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
        }
    }

    fn parse(text: &str) -> Option<KeyType> {
        match text.to_ascii_lowercase().as_str() {
            "ecdsa-p256" | "p256" | "ec256" => Some(KeyType::EcdsaP256),
            "ecdsa-p384" | "p384" | "ec384" => Some(KeyType::EcdsaP384),
            _ => None,
        }
    }
}

/// What a certificate entry's `acme` key changes from the `[acme]` section's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcmeOverrides {
    /// The CA's directory URL.
    pub directory: Option<String>,
    /// The account's contact URLs (`mailto:`).
    pub contact: Option<Vec<String>>,
    /// A PEM root trusted for the CA's own TLS (pebble, step-ca).
    pub ca_root: Option<PathBuf>,
    /// The certificate's key.
    pub key_type: Option<KeyType>,
}

/// How one certificate is ordered: its entry's overrides over the `[acme]` defaults.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderSettings {
    /// The CA's directory URL.
    pub directory: String,
    /// The account's contact URLs.
    pub contact: Vec<String>,
    /// A PEM root trusted for the CA's TLS besides the webpki roots.
    pub ca_root: Option<PathBuf>,
    /// The certificate's key.
    pub key_type: KeyType,
}

/// One `[[acme.rfc2136]]`: the primary server of a zone geoline does not serve, which
/// takes the challenge records by RFC 2136 UPDATE signed with a `[[key]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc2136Server {
    /// The zone's origin, lower case, fully qualified.
    pub zone: Name,
    /// Where its primary takes updates (TCP).
    pub server: SocketAddr,
    /// The TSIG key the updates are signed with.
    pub key: Name,
}

/// `[acme]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// Where accounts and certificates are kept (created 0700 when missing).
    pub state_dir: PathBuf,
    /// The defaults of every ACME certificate.
    pub defaults: OrderSettings,
    /// How long to wait for every authoritative server to serve a challenge record.
    pub propagation_timeout: Duration,
    /// How often the authoritative servers are asked while waiting.
    pub propagation_interval: Duration,
    /// The TTL of the challenge records.
    pub challenge_ttl: u32,
    /// Addresses to ask instead of resolving a name server's name (tests, split
    /// horizons, servers reachable on another address or port).
    pub nameservers: BTreeMap<Name, Vec<SocketAddr>>,
    /// Zones served elsewhere, updated by RFC 2136.
    pub rfc2136: Vec<Rfc2136Server>,
    /// The first wait after a failed attempt; it doubles up to [`AcmeConfig::retry_max`].
    pub retry_min: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
}

impl AcmeConfig {
    /// The defaults: Let's Encrypt, ECDSA P-256, state in `state_dir`.
    pub fn with_state_dir(state_dir: PathBuf) -> AcmeConfig {
        AcmeConfig {
            state_dir,
            defaults: OrderSettings {
                directory: LETS_ENCRYPT.into(),
                contact: Vec::new(),
                ca_root: None,
                key_type: KeyType::EcdsaP256,
            },
            propagation_timeout: Duration::from_secs(120),
            propagation_interval: Duration::from_secs(2),
            challenge_ttl: 60,
            nameservers: BTreeMap::new(),
            rfc2136: Vec::new(),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(6 * 3600),
        }
    }

    /// How the certificate with `overrides` is ordered.
    pub fn settings(&self, overrides: &AcmeOverrides) -> OrderSettings {
        OrderSettings {
            directory: overrides
                .directory
                .clone()
                .unwrap_or_else(|| self.defaults.directory.clone()),
            contact: overrides
                .contact
                .clone()
                .unwrap_or_else(|| self.defaults.contact.clone()),
            ca_root: overrides
                .ca_root
                .clone()
                .or_else(|| self.defaults.ca_root.clone()),
            key_type: overrides.key_type.unwrap_or(self.defaults.key_type),
        }
    }

    /// The directory of the certificate for `names` ordered with `settings`: named after
    /// its first name, with a checksum of everything that makes it another certificate
    /// (another CA's, another key type's), so that moving from staging to production
    /// never serves a staging certificate.
    pub fn certificate_dir(&self, names: &[String], settings: &OrderSettings) -> PathBuf {
        let first = names.first().map_or("certificate", String::as_str);
        let label: String = first
            .replace("*.", "_wildcard.")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut hasher = crc32fast::Hasher::new();
        for n in names {
            hasher.update(n.as_bytes());
            hasher.update(b"\0");
        }
        hasher.update(settings.directory.as_bytes());
        hasher.update(settings.key_type.name().as_bytes());
        self.state_dir
            .join("certificates")
            .join(format!("{label}-{:08x}", hasher.finalize()))
    }

    /// The file the account at the CA at `directory` with `contact` is kept in: one
    /// account per CA and contact, as Caddy keeps them, so that a new contact registers a
    /// new account with it (the certificates stay; an account only signs orders). Without
    /// a contact, the name depends on the CA alone.
    pub fn account_file(&self, directory: &str, contact: &[String]) -> PathBuf {
        let ca = crc32fast::hash(directory.as_bytes());
        let name = if contact.is_empty() {
            format!("{ca:08x}.json")
        } else {
            format!(
                "{ca:08x}-{:08x}.json",
                crc32fast::hash(contact.join("\n").as_bytes())
            )
        };
        self.state_dir.join("accounts").join(name)
    }

    /// Gives every ACME certificate of `certificates` its files under the state directory.
    pub(crate) fn place(&self, certificates: &mut [CertificateConfig]) {
        for c in certificates {
            if let Some(overrides) = &c.acme {
                let dir = self.certificate_dir(&c.names, &self.settings(overrides));
                c.cert = dir.join("cert.pem");
                c.key = dir.join("key.pem");
            }
        }
    }
}

/// `[acme]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAcme {
    state_dir: Option<PathBuf>,
    directory: Option<Spanned<String>>,
    contact: Option<Vec<Spanned<String>>>,
    ca_root: Option<PathBuf>,
    key_type: Option<Spanned<String>>,
    propagation_timeout_secs: Option<Spanned<u64>>,
    propagation_interval_ms: Option<Spanned<u64>>,
    challenge_ttl: Option<Spanned<u32>>,
    #[serde(default)]
    nameservers: BTreeMap<String, Spanned<NameserverAddrs>>,
    #[serde(default)]
    rfc2136: Vec<Spanned<RawRfc2136>>,
    retry_min_secs: Option<Spanned<u64>>,
    retry_max_secs: Option<Spanned<u64>>,
}

/// One address or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum NameserverAddrs {
    One(SocketAddr),
    Many(Vec<SocketAddr>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRfc2136 {
    zone: Spanned<String>,
    server: SocketAddr,
    key: Spanned<String>,
}

/// The keys a certificate's `acme` table and `[acme]` share.
struct RawOverrides {
    directory: Option<Spanned<String>>,
    contact: Option<Vec<Spanned<String>>>,
    ca_root: Option<PathBuf>,
    key_type: Option<Spanned<String>>,
}

/// A certificate's `acme` key as written: `true`, or a table of overrides.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawCertAcme {
    Switch(bool),
    Table(RawOverridesStrict),
}

/// A certificate's `acme` table as written (no spans inside: serde reads an untagged
/// enum's variants from a copy that has none; errors point at the `acme` key).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverridesStrict {
    directory: Option<String>,
    contact: Option<Vec<String>>,
    ca_root: Option<PathBuf>,
    key_type: Option<String>,
}

/// A certificate entry's `acme` key, checked: `None` for `acme = false`.
pub(crate) fn check_entry(
    section: &str,
    raw: &RawCertAcme,
    span: std::ops::Range<usize>,
    src: &Source<'_>,
) -> Result<Option<AcmeOverrides>, ConfigError> {
    match raw {
        RawCertAcme::Switch(false) => Ok(None),
        RawCertAcme::Switch(true) => Ok(Some(AcmeOverrides::default())),
        RawCertAcme::Table(t) => overrides(
            &format!("{section}.certificate.acme"),
            RawOverrides {
                directory: t.directory.clone().map(|d| Spanned::new(span.clone(), d)),
                contact: t.contact.as_ref().map(|list| {
                    list.iter()
                        .map(|c| Spanned::new(span.clone(), c.clone()))
                        .collect()
                }),
                ca_root: t.ca_root.clone(),
                key_type: t.key_type.clone().map(|k| Spanned::new(span.clone(), k)),
            },
            src,
        )
        .map(Some),
    }
}

fn overrides(
    section: &str,
    raw: RawOverrides,
    src: &Source<'_>,
) -> Result<AcmeOverrides, ConfigError> {
    let directory = raw
        .directory
        .map(|d| match d.get_ref().as_str() {
            "letsencrypt" => Ok(LETS_ENCRYPT.to_string()),
            "letsencrypt-staging" => Ok(LETS_ENCRYPT_STAGING.to_string()),
            url if url.starts_with("https://") && url.len() > "https://".len() => {
                Ok(url.to_string())
            }
            other => Err(src.invalid(
                d.span(),
                format!(
                    "{section}: directory `{other}` is not an https:// URL, \"letsencrypt\" or \"letsencrypt-staging\""
                ),
            )),
        })
        .transpose()?;
    let contact = raw
        .contact
        .map(|list| {
            list.into_iter()
                .map(|c| {
                    let text = c.get_ref();
                    if text.starts_with("mailto:") && text.len() > "mailto:".len() {
                        Ok(text.clone())
                    } else if text.contains('@') && !text.contains(':') {
                        Ok(format!("mailto:{text}"))
                    } else {
                        Err(src.invalid(
                            c.span(),
                            format!("{section}: contact `{text}` is not an e-mail address or a mailto: URL"),
                        ))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let key_type = raw
        .key_type
        .map(|k| {
            KeyType::parse(k.get_ref()).ok_or_else(|| {
                src.invalid(
                    k.span(),
                    format!(
                        "{section}: key_type `{}` is not \"ecdsa-p256\" or \"ecdsa-p384\"",
                        k.get_ref()
                    ),
                )
            })
        })
        .transpose()?;
    Ok(AcmeOverrides {
        directory,
        contact,
        ca_root: raw.ca_root.map(|p| src.resolve(&p)),
        key_type,
    })
}

fn zone_name(text: &Spanned<String>, src: &Source<'_>, what: &str) -> Result<Name, ConfigError> {
    let mut name = Name::from_ascii(text.get_ref()).map_err(|e| {
        src.invalid(
            text.span(),
            format!(
                "acme: {what} `{}` is not a domain name: {e}",
                text.get_ref()
            ),
        )
    })?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// Checks `[acme]`; `keys` are the declared `[[key]]`s an `[[acme.rfc2136]]` may name.
/// Without the section, the state directory is `acme` beside the configuration file.
pub(crate) fn check(
    raw: Option<RawAcme>,
    src: &Source<'_>,
    keys: &KeyRing,
) -> Result<AcmeConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(AcmeConfig::with_state_dir(src.resolve(Path::new("acme"))));
    };
    let mut config = AcmeConfig::with_state_dir(
        src.resolve(raw.state_dir.as_deref().unwrap_or(Path::new("acme"))),
    );
    let defaults = RawOverrides {
        directory: raw.directory,
        contact: raw.contact,
        ca_root: raw.ca_root,
        key_type: raw.key_type,
    };
    config.defaults = config.settings(&overrides("acme", defaults, src)?);
    config.propagation_timeout = Duration::from_secs(src.in_range(
        raw.propagation_timeout_secs,
        120,
        1..=3600,
        "acme.propagation_timeout_secs",
    )?);
    config.propagation_interval = Duration::from_millis(src.in_range(
        raw.propagation_interval_ms,
        2000,
        50..=60_000,
        "acme.propagation_interval_ms",
    )?);
    config.challenge_ttl = src.in_range(raw.challenge_ttl, 60, 0..=86_400, "acme.challenge_ttl")?;
    config.retry_min = Duration::from_secs(src.in_range(
        raw.retry_min_secs,
        60,
        1..=86_400,
        "acme.retry_min_secs",
    )?);
    config.retry_max = Duration::from_secs(src.in_range(
        raw.retry_max_secs,
        6 * 3600,
        1..=7 * 86_400,
        "acme.retry_max_secs",
    )?);
    if config.retry_max < config.retry_min {
        config.retry_max = config.retry_min;
    }
    for (host, addrs) in raw.nameservers {
        let name = zone_name(&Spanned::new(addrs.span(), host), src, "name server")?;
        let list = match addrs.into_inner() {
            NameserverAddrs::One(a) => vec![a],
            NameserverAddrs::Many(list) => list,
        };
        config.nameservers.insert(name, list);
    }
    for r in raw.rfc2136 {
        let r = r.into_inner();
        let key = zone_name(&r.key, src, "key")?;
        if keys.get(&key).is_none() {
            return Err(src.invalid(
                r.key.span(),
                format!(
                    "acme.rfc2136: key `{}` is not declared by a [[key]]",
                    r.key.get_ref()
                ),
            ));
        }
        config.rfc2136.push(Rfc2136Server {
            zone: zone_name(&r.zone, src, "zone")?,
            server: r.server,
            key,
        });
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AcmeConfig, ConfigError> {
        #[derive(Deserialize)]
        struct File {
            acme: Option<RawAcme>,
        }
        let src = Source::new(Path::new("/etc/geoline/geoline.toml"), text);
        let file: File = toml::from_str(text).map_err(|e| src.invalid_file(e.to_string()))?;
        check(file.acme, &src, &KeyRing::default())
    }

    #[test]
    fn defaults_are_lets_encrypt_p256_and_a_state_dir_beside_the_file() {
        let c = parse("").expect("valid");
        assert_eq!(c.state_dir, PathBuf::from("/etc/geoline/acme"));
        assert_eq!(c.defaults.directory, LETS_ENCRYPT);
        assert_eq!(c.defaults.key_type, KeyType::EcdsaP256);
        assert_eq!(c.propagation_timeout, Duration::from_secs(120));
    }

    #[test]
    fn the_section_sets_defaults_and_overrides() {
        let c = parse(
            r#"
[acme]
state_dir = "/var/lib/geoline/acme"
directory = "letsencrypt-staging"
contact = ["ops@example.com"]
ca_root = "pebble.crt"
key_type = "ecdsa-p384"
propagation_timeout_secs = 30
[acme.nameservers]
"ns1.example.com" = "127.0.0.1:5300"
"ns2.example.com." = ["127.0.0.1:5301", "[::1]:5301"]
"#,
        )
        .expect("valid");
        assert_eq!(c.defaults.directory, LETS_ENCRYPT_STAGING);
        assert_eq!(c.defaults.contact, ["mailto:ops@example.com"]);
        assert_eq!(
            c.defaults.ca_root,
            Some(PathBuf::from("/etc/geoline/pebble.crt"))
        );
        assert_eq!(c.defaults.key_type, KeyType::EcdsaP384);
        let ns2 = Name::from_ascii("ns2.example.com.").expect("name");
        assert_eq!(c.nameservers[&ns2].len(), 2);
        let settings = c.settings(&AcmeOverrides {
            key_type: Some(KeyType::EcdsaP256),
            ..AcmeOverrides::default()
        });
        assert_eq!(settings.key_type, KeyType::EcdsaP256);
        assert_eq!(settings.directory, LETS_ENCRYPT_STAGING);
    }

    #[test]
    fn bad_values_name_their_line() {
        let e = parse("[acme]\ndirectory = \"http://ca.example\"\n").expect_err("http");
        assert_eq!(
            e.to_string(),
            "/etc/geoline/geoline.toml:2: acme: directory `http://ca.example` is not an https:// URL, \"letsencrypt\" or \"letsencrypt-staging\""
        );
        let e = parse("[acme]\nkey_type = \"rsa-1024\"\n").expect_err("rsa");
        assert!(
            e.to_string().contains(":2: acme: key_type `rsa-1024`"),
            "{e}"
        );
        let e = parse("[acme]\n[[acme.rfc2136]]\nzone = \"example.org\"\nserver = \"127.0.0.1:53\"\nkey = \"nokey\"\n")
            .expect_err("undeclared key");
        assert!(
            e.to_string().contains(":5: acme.rfc2136: key `nokey`"),
            "{e}"
        );
    }

    #[test]
    fn certificate_dirs_differ_by_ca_and_key_type() {
        let c = AcmeConfig::with_state_dir(PathBuf::from("/state"));
        let names = vec!["*.example.com".to_string(), "example.com".to_string()];
        let prod = c.certificate_dir(&names, &c.defaults);
        let mut staging = c.defaults.clone();
        staging.directory = LETS_ENCRYPT_STAGING.into();
        let other = c.certificate_dir(&names, &staging);
        assert_ne!(prod, other);
        let dir = prod.file_name().and_then(|n| n.to_str()).expect("utf-8");
        assert!(dir.starts_with("_wildcard.example.com-"), "{dir}");
        assert!(prod.starts_with("/state/certificates"));
    }
}
