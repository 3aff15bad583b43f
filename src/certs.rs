//! TLS certificates: read from PEM files, chosen by SNI, replaced one at a time.
//!
//! This module owns the certificate set the front-ends' TLS listeners serve (the
//! redirector's and the proxy's, one after the other, each choosing among its own): reading each
//! configured chain and key (checked to belong together), choosing one per handshake by
//! the client's SNI (exact name, then `*.` wildcard, then the first certificate, as
//! nginx's default server does), and building the set with one certificate read again.
//! A set is immutable: [`crate::live::Live`] holds the one in use, a handshake takes a
//! snapshot, and a reload ([`crate::reload`]) swaps in a new set only when the certificate's
//! files read and matched, so established connections keep the certificate they were made
//! with. A configuration reload that changes the list builds a new set whole, with its
//! parts ([`crate::server::fronts`]); a certificate's index may then change, so whoever
//! keeps one across reloads finds it again by its files ([`Certificates::index_of`]). A certificate obtained by ACME ([`crate::acme`]) is read from its files under the
//! state directory like any other; until it has been obtained once it is *pending*: the
//! set holds its place, handshakes skip it, and the reload that follows its first issue
//! fills it in. It does not watch files, obtain certificates or accept connections.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: cannot read: {source}", path = path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}", path = path.display())]
    Pem { path: PathBuf, reason: String },
    #[error("{path}: the private key is not usable: {source}", path = path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{key}: this private key does not belong to the certificate in {cert}", key = key.display(), cert = cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// One `[[redirect.certificate]]`: a chain and its key, and the names they serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    /// Lower-case SNI names this certificate answers, `*.example.com` for one label.
    pub names: Vec<String>,
    /// PEM: the leaf certificate first, then its chain.
    pub cert: PathBuf,
    /// PEM: PKCS#8, PKCS#1 or SEC1 private key.
    pub key: PathBuf,
    /// Obtained by ACME (`acme = true` or a table): `cert` and `key` are then under the
    /// state directory and written by geoline.
    pub acme: Option<crate::acme::config::AcmeOverrides>,
}

/// One loaded certificate, with the configuration it was read from.
struct Certificate {
    /// Its names (lower case; `*.example.com` matches one label) and files.
    config: CertificateConfig,
    /// `None`: an ACME certificate not obtained yet.
    key: Option<Arc<CertifiedKey>>,
}

/// The certificates in use, in configuration order, in parts (one per front-end, each
/// TLS listener choosing among its own part's); a part's first is its fallback for unknown
/// or missing SNI. Empty when no listener serves TLS.
pub(crate) struct Certificates {
    provider: Arc<CryptoProvider>,
    loaded: Vec<Certificate>,
    /// Where each part's certificates are in `loaded`: a set replaced whole by a
    /// configuration reload carries its own, so a handshake never pairs one set with
    /// another's ranges.
    parts: Vec<std::ops::Range<usize>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.loaded.iter().map(|c| &c.config))
            .finish()
    }
}

impl Default for Certificates {
    fn default() -> Certificates {
        Certificates {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            loaded: Vec::new(),
            parts: Vec::new(),
        }
    }
}

impl Certificates {
    /// Reads every configured certificate; any failure is an error naming its file.
    pub(crate) fn load(configs: &[CertificateConfig]) -> Result<Certificates, CertError> {
        Certificates::load_parts(&[configs]).map_err(|(_, e)| e)
    }

    /// Reads the certificates of several parts (front-ends) into one set, in order; a
    /// failure says which part's certificate it was.
    pub(crate) fn load_parts(
        parts: &[&[CertificateConfig]],
    ) -> Result<Certificates, (usize, CertError)> {
        let mut set = Certificates::default();
        for (part, configs) in parts.iter().enumerate() {
            let start = set.loaded.len();
            set.parts.push(start..start + configs.len());
            for config in *configs {
                let key = match read_certified_key(&config.cert, &config.key, &set.provider) {
                    Ok(key) => Some(Arc::new(key)),
                    // Obtained later, by the ACME task; the listeners start meanwhile.
                    Err(e) if config.acme.is_some() => {
                        tracing::info!(names = ?config.names, reason = %e, "ACME certificate not obtained yet");
                        None
                    }
                    Err(e) => return Err((part, e)),
                };
                set.loaded.push(Certificate {
                    config: config.clone(),
                    key,
                });
            }
        }
        Ok(set)
    }

    /// The same set with certificate `i` read again from its files; `None` when there is
    /// no certificate `i`.
    pub(crate) fn with_reloaded(&self, i: usize) -> Option<Result<Certificates, CertError>> {
        let config = &self.loaded.get(i)?.config;
        let key = match read_certified_key(&config.cert, &config.key, &self.provider) {
            Ok(key) => Arc::new(key),
            Err(e) => return Some(Err(e)),
        };
        let loaded = self
            .loaded
            .iter()
            .enumerate()
            .map(|(j, c)| Certificate {
                config: c.config.clone(),
                key: if j == i {
                    Some(key.clone())
                } else {
                    c.key.clone()
                },
            })
            .collect();
        Some(Ok(Certificates {
            provider: self.provider.clone(),
            loaded,
            parts: self.parts.clone(),
        }))
    }

    /// Where each certificate was read from, in configuration order.
    pub(crate) fn configs(&self) -> impl Iterator<Item = &CertificateConfig> {
        self.loaded.iter().map(|c| &c.config)
    }

    /// Where part `part`'s certificates are in the set (empty for a part it does not have).
    pub(crate) fn part(&self, part: usize) -> std::ops::Range<usize> {
        self.parts.get(part).cloned().unwrap_or(0..0)
    }

    /// The configurations of part `part`'s certificates, in order.
    pub(crate) fn part_configs(&self, part: usize) -> impl Iterator<Item = &CertificateConfig> {
        let part = self.loaded.get(self.part(part)).unwrap_or_default();
        part.iter().map(|c| &c.config)
    }

    /// The index of the certificate read from chain file `cert`: what a reload of its files
    /// names ([`crate::reload::Target::Certificate`]), found again after a configuration
    /// reload that added or removed certificates before it.
    pub(crate) fn index_of(&self, cert: &Path) -> Option<usize> {
        self.loaded.iter().position(|c| c.config.cert == cert)
    }

    /// What TLS handshakes are made with.
    pub(crate) fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The certificate for a handshake naming `sni`, among part `part`'s (one front-end's,
    /// in a set that holds every front-end's): exact name, then wildcard, then the part's
    /// first.
    pub(crate) fn select_in(&self, part: usize, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let loaded: Vec<(&CertificateConfig, &Arc<CertifiedKey>)> = self
            .loaded
            .get(self.part(part))?
            .iter()
            .filter_map(|c| Some((&c.config, c.key.as_ref()?)))
            .collect();
        if let Some(sni) = sni {
            let sni = sni.strip_suffix('.').unwrap_or(sni);
            let exact = loaded
                .iter()
                .find(|(c, _)| c.names.iter().any(|n| n.eq_ignore_ascii_case(sni)));
            let wildcard = || {
                let (_, parent) = sni.split_once('.')?;
                loaded.iter().find(|(c, _)| {
                    c.names.iter().any(|n| {
                        n.strip_prefix("*.")
                            .is_some_and(|d| d.eq_ignore_ascii_case(parent))
                    })
                })
            };
            if let Some((_, key)) = exact.or_else(wildcard) {
                return Some((*key).clone());
            }
        }
        loaded.first().map(|(_, key)| (*key).clone())
    }

    /// Each certificate's names and the end of its leaf's validity (`notAfter`, in seconds
    /// since the epoch; `None` if the leaf cannot be read), in configuration order.
    pub(crate) fn expiries(&self) -> impl Iterator<Item = (&CertificateConfig, Option<i64>)> {
        self.loaded.iter().map(|c| {
            let leaf = c.key.as_ref().and_then(|k| k.end_entity_cert().ok());
            (&c.config, leaf.and_then(not_after))
        })
    }

    /// Certificate `i`'s leaf as served now; `None` while it is pending.
    pub(crate) fn leaf(&self, i: usize) -> Option<CertificateDer<'static>> {
        let key = self.loaded.get(i)?.key.as_ref()?;
        key.end_entity_cert().ok().map(|c| c.clone().into_owned())
    }

    /// The issuer of certificate `i`'s leaf (`CN=..., O=...`), for `/status`.
    pub(crate) fn issuer(&self, i: usize) -> Option<String> {
        let key = self.loaded.get(i)?.key.as_ref()?;
        key.end_entity_cert().ok().and_then(issuer)
    }
}

/// What a certificate set fails to cover, for `geoline check` and the start log: names a
/// certificate is listed for but not valid for (a TLS client refuses it there), and hosts
/// of the redirect rules (`from`, and `*.from` for its subdomains) no certificate is valid
/// for. Validity is the certificate's own subject alternative names, as a client checks.
pub(crate) fn uncovered(certificates: &Certificates, rule_hosts: &[String]) -> Vec<String> {
    let mut warnings = Vec::new();
    for c in &certificates.loaded {
        let Some(key) = &c.key else {
            continue;
        };
        let missing: Vec<&str> = c
            .config
            .names
            .iter()
            .filter(|n| !covers(key, n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "certificate {}: listed for {} but not valid for it (TLS clients will refuse it there)",
                c.config.cert.display(),
                missing.join(", ")
            ));
        }
    }
    if certificates.loaded.is_empty() {
        return warnings;
    }
    let missing: Vec<String> = rule_hosts
        .iter()
        .flat_map(|from| [from.clone(), format!("*.{from}")])
        .filter(|host| {
            !certificates.loaded.iter().any(|c| {
                // A pending ACME certificate is ordered for its names.
                c.key.as_ref().map_or_else(
                    || c.config.names.iter().any(|n| name_covers(n, host)),
                    |k| covers(k, host),
                )
            })
        })
        .collect();
    if !missing.is_empty() {
        warnings.push(format!(
            "no certificate is valid for {}, which the redirect rules serve",
            missing.join(", ")
        ));
    }
    warnings
}

/// Whether certificate name `name` (`*.example.com` for one label) covers `host`.
fn name_covers(name: &str, host: &str) -> bool {
    if name.eq_ignore_ascii_case(host) {
        return true;
    }
    match (name.strip_prefix("*."), host.split_once('.')) {
        (Some(parent), Some((label, rest))) => label != "*" && parent.eq_ignore_ascii_case(rest),
        _ => false,
    }
}

/// Whether the leaf of `key` is valid for `host` (`*.example.com`: for any one label
/// under example.com).
fn covers(key: &CertifiedKey, host: &str) -> bool {
    let Some(leaf) = key.cert.first() else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    let probe = match host.strip_prefix("*.") {
        Some(parent) => format!("label-probe.{parent}"),
        None => host.to_string(),
    };
    rustls::pki_types::ServerName::try_from(probe)
        .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A chain and its key from PEM files, checked to belong together.
fn read_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertError> {
    let pem_err = |path: &Path, reason: String| CertError::Pem {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(pem_err(cert, "no CERTIFICATE section".into()));
    }
    let der = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| pem_err(key, format!("no PEM private key: {e}")))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|source| CertError::Key {
            path: key.to_path_buf(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(CertError::Mismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            })
        }
        // The key type cannot say its public key; rustls itself lets that pass.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(e) => Err(pem_err(cert, format!("not a usable certificate: {e}"))),
    }
}

/// The `notAfter` of an X.509 certificate (DER), in seconds since the epoch.
fn not_after(der: &CertificateDer<'_>) -> Option<i64> {
    validity(der).map(|(_, end)| end)
}

/// `notBefore` and `notAfter` of an X.509 certificate (DER), in seconds since the epoch:
/// the fourth field of the TBSCertificate, UTCTime or GeneralizedTime.
pub(crate) fn validity(der: &CertificateDer<'_>) -> Option<(i64, i64)> {
    let (_, validity, _) = der_tlv(tbs_field(der, 3)?)?;
    let (tag, start, after) = der_tlv(validity)?;
    let (end_tag, end, _) = der_tlv(after)?;
    Some((time_of(tag, start)?, time_of(end_tag, end)?))
}

/// The serial number's content octets and the Authority Key Identifier's keyIdentifier
/// of an X.509 certificate (DER): what names it to its CA's renewal information
/// (RFC 9773 4.1). `None` when it has no such extension.
pub(crate) fn serial_and_authority_key_id<'a>(
    der: &'a CertificateDer<'_>,
) -> Option<(&'a [u8], &'a [u8])> {
    let (_, serial, _) = der_tlv(tbs_field(der, 0)?)?;
    // After serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo:
    // issuerUniqueID [1], subjectUniqueID [2], extensions [3].
    let mut rest = tbs_field(der, 6)?;
    while !rest.is_empty() {
        let (tag, body, after) = der_tlv(rest)?;
        rest = after;
        if tag != 0xa3 {
            continue;
        }
        let (_, mut extensions, _) = der_tlv(body)?;
        while !extensions.is_empty() {
            let (_, extension, next) = der_tlv(extensions)?;
            extensions = next;
            let (_, oid, mut value) = der_tlv(extension)?;
            // 2.5.29.35: authorityKeyIdentifier.
            if oid != [0x55, 0x1d, 0x23] {
                continue;
            }
            let (tag, _, after) = der_tlv(value)?;
            if tag == 0x01 {
                value = after; // critical BOOLEAN
            }
            let (_, octets, _) = der_tlv(value)?;
            let (_, aki, _) = der_tlv(octets)?;
            let (tag, key_id, _) = der_tlv(aki)?;
            return (tag == 0x80).then_some((serial, key_id));
        }
    }
    None
}

/// A UTCTime (tag 0x17) or GeneralizedTime (0x18) in seconds since the epoch.
fn time_of(tag: u8, time: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(time).ok()?;
    let (year, rest) = match tag {
        // UTCTime: YYMMDDHHMMSSZ, years 1950 to 2049.
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        // GeneralizedTime: YYYYMMDDHHMMSSZ.
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if rest.get(10..) != Some("Z") {
        return None;
    }
    let days = crate::util::time::days_from_civil(year, month, day)?;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The TBSCertificate of an X.509 certificate (DER) from its field `n` on, counting from
/// 0 after the optional version: serialNumber, signature, issuer, validity, subject...
fn tbs_field<'a>(der: &'a CertificateDer<'_>, n: usize) -> Option<&'a [u8]> {
    let (_, cert, _) = der_tlv(der)?;
    let (_, tbs, _) = der_tlv(cert)?;
    let mut rest = tbs;
    // version [0] EXPLICIT is optional.
    let (tag, _, after) = der_tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..n {
        rest = der_tlv(rest)?.2;
    }
    Some(rest)
}

/// The issuer of an X.509 certificate (DER) as RFC 4514 writes a name (`CN=R11, O=Let's
/// Encrypt, C=US`), with the attributes people read (CN, OU, O, L, ST, C); `None` if the
/// certificate cannot be read.
pub(crate) fn issuer(der: &CertificateDer<'_>) -> Option<String> {
    let (_, mut rdns, _) = der_tlv(tbs_field(der, 2)?)?;
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (_, mut set, next) = der_tlv(rdns)?;
        rdns = next;
        while !set.is_empty() {
            let (_, attribute, next) = der_tlv(set)?;
            set = next;
            let (_, oid, value) = der_tlv(attribute)?;
            let (_, value, _) = der_tlv(value)?;
            let name = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            parts.push(format!("{name}={}", String::from_utf8_lossy(value)));
        }
    }
    parts.reverse();
    Some(parts.join(", "))
}

/// One DER element: its tag, its contents and what follows it.
fn der_tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed_until(year: i32, month: u8, day: u8) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["example.cn".to_string()]).expect("params");
        params.not_after = rcgen::date_time_ymd(year, month, day);
        params.self_signed(&key).expect("certificate").der().clone()
    }

    #[test]
    fn issuer_as_rfc4514_writes_it() {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".into()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "US");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example CA");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "R11");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        assert_eq!(
            issuer(cert.der()).as_deref(),
            Some("CN=R11, O=Example CA, C=US")
        );
        assert_eq!(issuer(&CertificateDer::from(vec![0x30, 0x03, 0x02])), None);
    }

    #[test]
    fn validity_issuer_serial_and_authority_key_of_an_issued_certificate() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Pebble Intermediate CA 1a2b");
        ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![7; 20]);
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut leaf = rcgen::CertificateParams::new(vec!["example.com".into()]).expect("params");
        leaf.not_before = rcgen::date_time_ymd(2026, 12, 1);
        leaf.not_after = rcgen::date_time_ymd(2027, 3, 1);
        leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x02, 0x03]));
        leaf.use_authority_key_identifier_extension = true;
        let der = leaf.signed_by(&key, &ca).expect("leaf").der().clone();
        assert_eq!(validity(&der), Some((1_796_083_200, 1_803_859_200)));
        assert_eq!(
            issuer(&der).as_deref(),
            Some("CN=Pebble Intermediate CA 1a2b")
        );
        let (serial, aki) = serial_and_authority_key_id(&der).expect("AKI");
        assert_eq!(serial, [0x01, 0x02, 0x03]);
        assert_eq!(aki, [7; 20]);
        // A self-signed certificate without the extension has no renewal identifier.
        let plain = self_signed_until(2030, 1, 1);
        assert_eq!(serial_and_authority_key_id(&plain), None);
        assert_eq!(validity(&CertificateDer::from(vec![0x30, 0x00])), None);
    }

    #[test]
    fn not_after_in_both_time_forms() {
        // Before 2050 a UTCTime (two-digit year), from 2050 a GeneralizedTime (RFC 5280).
        let utc = self_signed_until(2030, 5, 6);
        assert_eq!(not_after(&utc), Some(1_904_256_000));
        let generalized = self_signed_until(2051, 1, 2);
        assert_eq!(not_after(&generalized), Some(2_556_230_400));
        assert_eq!(
            not_after(&CertificateDer::from(vec![0x30, 0x03, 0x02])),
            None
        );
        assert_eq!(not_after(&CertificateDer::from(Vec::new())), None);
    }
}
