//! One ACME order: an account at the CA, DNS-01 challenges published and checked, a
//! certificate issued for a new key.
//!
//! This module owns the sequence of RFC 8555 as instant-acme exposes it: the account
//! (loaded from the state directory, or created and stored there), the order for the
//! certificate's names, every challenge record published before any is reported ready
//! (the apex and the wildcard of one name share one TXT RRset), the wait for every
//! authoritative server, the CSR for a fresh key, the chain, and the records removed
//! whatever happened. It also asks the CA's renewal information (RFC 9773). It does not
//! schedule anything or write certificates ([`super`] does).

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::Der;

use super::config::{AcmeConfig, KeyType, OrderSettings};
use super::dns01::{self, Dns01Error, Publisher};
use super::propagation::{self, PropagationError};
use super::renew::Window;
use super::store::{self, StoreError};
use crate::live::Live;

/// Why an order failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrderError {
    /// The CA answered with an error, or could not be reached.
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    /// The state directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A challenge record could not be written.
    #[error(transparent)]
    Dns01(#[from] Dns01Error),
    /// The authoritative servers did not all serve the challenge records.
    #[error(transparent)]
    Propagation(#[from] PropagationError),
    /// The CA offers no DNS-01 challenge, or the order went invalid.
    #[error("{0}")]
    Protocol(String),
    /// The certificate's key or request could not be made.
    #[error("the key or the certificate request: {0}")]
    Csr(#[from] rcgen::Error),
}

/// A certificate as issued: the PEM chain (leaf first) and its PEM key.
pub(crate) struct Issued {
    pub(crate) chain_pem: String,
    pub(crate) key_pem: String,
}

/// The account at `settings.directory`: the stored one, or a new one (stored at once).
pub(crate) async fn account(
    config: &AcmeConfig,
    settings: &OrderSettings,
) -> Result<Account, OrderError> {
    let builder = || match &settings.ca_root {
        Some(root) => Account::builder_with_root(root),
        None => Account::builder(),
    };
    let path = config.account_file(&settings.directory, &settings.contact);
    if let Some(credentials) = store::load_account(&path)? {
        return Ok(builder()?.from_credentials(credentials).await?);
    }
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await?;
    store::save_account(&path, &credentials)?;
    tracing::info!(directory = %settings.directory, account = %account.id(), "ACME account created");
    Ok(account)
}

/// The stored account at `settings.directory`, if there is one (never creates one: a
/// look at the renewal information must not register an account).
pub(crate) async fn stored_account(
    config: &AcmeConfig,
    settings: &OrderSettings,
) -> Option<Account> {
    let credentials =
        store::load_account(&config.account_file(&settings.directory, &settings.contact))
            .ok()??;
    let builder = match &settings.ca_root {
        Some(root) => Account::builder_with_root(root),
        None => Account::builder(),
    };
    builder.ok()?.from_credentials(credentials).await.ok()
}

/// The ARI CertID of `leaf` (DER, RFC 9773 4.1): its issuer's key identifier and its
/// serial number, each base64url without padding, joined by a dot. What the CA's renewal
/// information is asked by and what a renewal order `replaces`; `None` when the
/// certificate does not name its issuer's key.
pub(crate) fn certificate_id(
    leaf: &rustls::pki_types::CertificateDer<'_>,
) -> Option<CertificateIdentifier<'static>> {
    let (serial, aki) = crate::certs::serial_and_authority_key_id(leaf)?;
    Some(CertificateIdentifier::new(
        Der::from_slice(aki),
        Der::from_slice(serial),
    ))
}

/// The CA's suggested renewal window for `leaf` (DER), when the CA gives renewal
/// information and the certificate names its issuer's key.
pub(crate) async fn renewal_window(
    account: &Account,
    leaf: &rustls::pki_types::CertificateDer<'_>,
) -> Option<Window> {
    let id = certificate_id(leaf)?;
    match account.renewal_info(&id).await {
        Ok((info, _)) => Some(Window {
            start: info.suggested_window.start.unix_timestamp(),
            end: info.suggested_window.end.unix_timestamp(),
        }),
        Err(e) => {
            tracing::debug!(error = %e, "no ACME renewal information");
            None
        }
    }
}

/// A challenge record published, to be removed.
struct Published {
    publisher: Publisher,
    name: hickory_proto::rr::Name,
    value: String,
}

/// The problem type of a CA refusing `replaces` because another order replaced that
/// certificate already (RFC 9773 5).
const ALREADY_REPLACED: &str = "urn:ietf:params:acme:error:alreadyReplaced";

/// Orders a certificate for `names` and returns it with its new key. A renewal names the
/// certificate it `replaces` (its ARI CertID, RFC 9773 5) so that the CA may let it past
/// rate limits and know it can be revoked; a CA without renewal information, or one that
/// says it was replaced already, gets the order without it.
pub(crate) async fn obtain(
    live: &Arc<Live>,
    config: &AcmeConfig,
    account: &Account,
    names: &[String],
    key_type: KeyType,
    replaces: Option<CertificateIdentifier<'static>>,
) -> Result<Issued, OrderError> {
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let plain = NewOrder::new(&identifiers);
    let mut order = match replaces {
        Some(replaced) => {
            let id = replaced.to_string();
            match account.new_order(&plain.replaces(replaced)).await {
                Err(instant_acme::Error::Unsupported(_)) => {
                    account.new_order(&NewOrder::new(&identifiers)).await?
                }
                Err(instant_acme::Error::Api(problem))
                    if problem.r#type.as_deref() == Some(ALREADY_REPLACED) =>
                {
                    tracing::info!(replaces = %id, "the CA says the certificate was replaced already: ordering without `replaces`");
                    account.new_order(&NewOrder::new(&identifiers)).await?
                }
                Err(e) => return Err(e.into()),
                Ok(order) => {
                    tracing::info!(replaces = %id, "ACME renewal order names the certificate it replaces");
                    order
                }
            }
        }
        None => account.new_order(&plain).await?,
    };
    let mut published: Vec<Published> = Vec::new();
    let result =
        solve_and_finalize(live, config, &mut order, &mut published, names, key_type).await;
    // Removed whatever happened: a record left behind is a stale challenge served forever.
    for p in published {
        if let Err(e) = p
            .publisher
            .write(&p.name, &p.value, config.challenge_ttl, false)
            .await
        {
            tracing::warn!(name = %p.name, error = %e, "ACME challenge record not removed");
        }
    }
    result
}

async fn solve_and_finalize(
    live: &Arc<Live>,
    config: &AcmeConfig,
    order: &mut instant_acme::Order,
    published: &mut Vec<Published>,
    names: &[String],
    key_type: KeyType,
) -> Result<Issued, OrderError> {
    // Every record first: the apex's and the wildcard's values share one name.
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(OrderError::Protocol(format!(
                    "an authorization is {other:?}"
                )));
            }
        }
        let challenge = authz
            .challenge(ChallengeType::Dns01)
            .ok_or_else(|| OrderError::Protocol("the CA offers no dns-01 challenge".into()))?;
        let identifier = challenge.identifier().to_string();
        let value = challenge.key_authorization().dns_value();
        let name = dns01::challenge_name(&identifier)?;
        let publisher = dns01::publisher_for(&name, live, config)?;
        publisher
            .write(&name, &value, config.challenge_ttl, true)
            .await?;
        tracing::info!(%name, zone = %publisher.zone(), "ACME challenge record published");
        published.push(Published {
            publisher,
            name,
            value,
        });
    }
    // Then every authoritative server of each zone must serve every value at each name.
    let mut names_checked: Vec<&hickory_proto::rr::Name> = Vec::new();
    for p in published.iter() {
        if names_checked.contains(&&p.name) {
            continue;
        }
        names_checked.push(&p.name);
        let values: Vec<String> = published
            .iter()
            .filter(|q| q.name == p.name)
            .map(|q| q.value.clone())
            .collect();
        let servers = propagation::authorities(&p.publisher, &config.nameservers).await?;
        let took = propagation::wait_until_served(
            &servers,
            &p.name,
            &values,
            config.propagation_interval,
            config.propagation_timeout,
        )
        .await?;
        tracing::info!(name = %p.name, servers = servers.len(), ms = took.as_millis() as u64, "ACME challenge served by every authoritative server");
    }
    // Now the CA may look.
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        if let Some(mut challenge) = authz.challenge(ChallengeType::Dns01) {
            challenge.set_ready().await?;
        }
    }
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(500))
        .timeout(Duration::from_secs(120));
    let status = order.poll_ready(&retries).await?;
    if status != OrderStatus::Ready {
        return Err(OrderError::Protocol(format!(
            "the order is {status:?}, not ready, after its challenges"
        )));
    }
    let key = rcgen::KeyPair::generate_for(match key_type {
        KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    })?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key)?;
    order.finalize_csr(csr.der()).await?;
    let chain_pem = order.poll_certificate(&retries).await?;
    Ok(Issued {
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate with `serial` issued by a CA whose key identifier is `key_id`.
    fn issued(key_id: &[u8], serial: &[u8]) -> rustls::pki_types::CertificateDer<'static> {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(key_id.to_vec());
        let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().expect("key"))
            .expect("ca");
        let mut leaf = rcgen::CertificateParams::new(vec!["example.com".into()]).expect("params");
        leaf.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        leaf.use_authority_key_identifier_extension = true;
        let key = rcgen::KeyPair::generate().expect("key");
        leaf.signed_by(&key, &ca).expect("leaf").der().clone()
    }

    #[test]
    fn the_cert_id_is_rfc_9773_s_example() {
        // RFC 9773 4.1: keyIdentifier 69:88:5B:...:C8:D4 and serial 00:87:65:43:21 (the
        // DER content octets, the leading zero kept).
        let key_id = [
            0x69, 0x88, 0x5b, 0x6b, 0x87, 0x46, 0x40, 0x41, 0xe1, 0xb3, 0x7b, 0x84, 0x7b, 0xa0,
            0xae, 0x2c, 0xde, 0x01, 0xc8, 0xd4,
        ];
        let leaf = issued(&key_id, &[0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(
            certificate_id(&leaf).map(|id| id.to_string()).as_deref(),
            Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
        );
        // A serial without its high bit set has no leading zero.
        let leaf = issued(&[7; 20], &[0x01, 0x02, 0x03]);
        assert_eq!(
            certificate_id(&leaf).map(|id| id.to_string()).as_deref(),
            Some("BwcHBwcHBwcHBwcHBwcHBwcHBwc.AQID")
        );
    }

    #[test]
    fn a_certificate_without_its_issuer_s_key_id_has_no_cert_id() {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["example.com".into()]).expect("params");
        let plain = params.self_signed(&key).expect("self-signed").der().clone();
        assert!(certificate_id(&plain).is_none());
    }
}
