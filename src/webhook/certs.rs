//! The webhook's own certificates (pure: generation, renewal decisions, PEM parsing).
//!
//! A CA and a serving certificate signed by it, both ECDSA P-256 from `rcgen`. The CA's PEM is
//! the `caBundle` the apiserver trusts; while a CA is being replaced the bundle holds the new CA
//! and the old one, so a serving certificate from either is trusted during the switch.

use std::{sync::Arc, time::Duration};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use time::OffsetDateTime;

/// Why certificate material could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters or the key.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM block could not be read.
    #[error("reading PEM: {0}")]
    Pem(String),
    /// rustls refused the key.
    #[error("loading the serving key: {0}")]
    Key(#[from] rustls::Error),
}

/// One CA or serving certificate with its key, as PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// How long certificates live and what the serving certificate is valid for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSpec {
    /// DNS names and IP addresses of the serving certificate.
    pub sans: Vec<String>,
    /// Lifetime of the CA.
    pub ca_validity: Duration,
    /// Lifetime of a serving certificate.
    pub cert_validity: Duration,
}

/// A new self-signed CA, valid from now.
pub fn new_ca(validity: Duration) -> Result<Pair, CertError> {
    let key = KeyPair::generate()?;
    let params = ca_params(validity)?;
    let cert = params.self_signed(&key)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn ca_params(validity: Duration) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "metallb-webhook-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, validity);
    Ok(params)
}

/// A serving certificate for `spec.sans`, signed by `ca`, valid from now.
pub fn new_serving(ca: &Pair, spec: &CertSpec) -> Result<Pair, CertError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(spec.sans.clone())?;
    params.distinguished_name.push(
        DnType::CommonName,
        spec.sans
            .first()
            .map(String::as_str)
            .unwrap_or("metallb-webhook"),
    );
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params, spec.cert_validity);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    // Slack for clocks that differ between webhook and apiserver: a minute, or a tenth of a
    // short lifetime (tests use seconds).
    let slack = (validity / 10).min(Duration::from_secs(60));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - slack;
    params.not_after = now + validity;
}

/// Validity of the first certificate in `pem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Start.
    pub not_before: OffsetDateTime,
    /// End.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Whether less than a third of the lifetime is left at `now` (cert-manager renews at the
    /// same point), or it is not valid yet or any more.
    pub fn due(&self, now: OffsetDateTime) -> bool {
        let lifetime = self.not_after - self.not_before;
        now < self.not_before || self.not_after - now < lifetime / 3
    }
}

/// The validity of the first certificate in `pem`.
pub fn validity(pem: &str) -> Result<Validity, CertError> {
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| CertError::Pem("no certificate".into()))?
        .map_err(|e| CertError::Pem(e.to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertError::Pem(format!("not an X.509 certificate: {e}")))?;
    let v = cert.validity();
    Ok(Validity {
        not_before: v.not_before.to_datetime(),
        not_after: v.not_after.to_datetime(),
    })
}

/// Whether `cert_pem` was issued by the CA `ca_pem` (same issuer and subject names and a valid
/// signature).
pub fn issued_by(cert_pem: &str, ca_pem: &str) -> bool {
    let der = |pem: &str| {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .and_then(Result::ok)
    };
    let (Some(cert), Some(ca)) = (der(cert_pem), der(ca_pem)) else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(&cert),
        x509_parser::parse_x509_certificate(&ca),
    ) else {
        return false;
    };
    cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// The serving certificate and key as rustls serves them.
pub fn certified_key(pair: &Pair) -> Result<Arc<CertifiedKey>, CertError> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| CertError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(CertError::Pem("no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes())
        .map_err(|e| CertError::Pem(e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(validity: Duration) -> CertSpec {
        CertSpec {
            sans: vec![
                "metallb-webhook.metallb-system.svc".into(),
                "127.0.0.1".into(),
            ],
            ca_validity: Duration::from_secs(3600),
            cert_validity: validity,
        }
    }

    #[test]
    fn a_serving_certificate_is_issued_by_its_ca_and_loads_into_rustls() {
        let ca = new_ca(Duration::from_secs(3600)).unwrap();
        let other = new_ca(Duration::from_secs(3600)).unwrap();
        let serving = new_serving(&ca, &spec(Duration::from_secs(600))).unwrap();
        assert!(issued_by(&serving.cert_pem, &ca.cert_pem));
        assert!(!issued_by(&serving.cert_pem, &other.cert_pem));
        certified_key(&serving).unwrap();
    }

    #[test]
    fn renewal_is_due_in_the_last_third_of_the_lifetime() {
        let ca = new_ca(Duration::from_secs(3600)).unwrap();
        let serving = new_serving(&ca, &spec(Duration::from_secs(600))).unwrap();
        let v = validity(&serving.cert_pem).unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(!v.due(now));
        assert!(!v.due(now + time::Duration::seconds(350)));
        assert!(v.due(now + time::Duration::seconds(500)));
        assert!(v.due(now + time::Duration::seconds(700)));
    }
}
