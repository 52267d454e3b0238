//! Keeping the serving certificate valid without cert-manager: the CA and serving certificate
//! live in a Secret, the CA is injected as `caBundle` into the ValidatingWebhookConfiguration
//! and the BGPPeer CRD's conversion, and both are renewed before they expire.
//!
//! ```text
//!  every round (a tenth of the serving lifetime, at most a minute):
//!   Secret ──missing──► new CA + serving cert ─┐
//!     │ CA due ───────► new CA, bundle = new + old (serving cert unchanged)
//!     │ serving due, or not from the current CA (once that CA is old enough to be trusted
//!     │   everywhere) ► new serving cert ───────┤
//!     ▼                                         ▼ create / replace (resourceVersion: replicas race safely)
//!   apply configuration + CRD conversion with the bundle (server-side apply, no-op if equal)
//!   serve the Secret's serving cert (swapped in place; open connections keep theirs)
//! ```
//!
//! Every replica runs the same rounds; a replica that loses a write race reads the winner's
//! certificate in the next round. A certificate is replaced a third of its lifetime before it
//! expires, and the trusted bundle always holds the CA of every certificate still served, so an
//! admission never fails on a certificate.
//!
//! With OpenShift's service CA (`--cert-dir`), the certificate is the mounted one (re-read every
//! round) and the CA is injected by OpenShift, so no Secret is written.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{admissionregistration::v1::ValidatingWebhookConfiguration, core::v1::Secret},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use time::OffsetDateTime;

use super::{
    certs::{self, CertError, CertSpec, Pair},
    configuration::{self, CaSource, Endpoint},
    server::Resolver,
};

/// Field manager of the webhook's writes.
pub const FIELD_MANAGER: &str = "metallb-webhook";

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum CertSource {
    /// The webhook's own CA, kept in the Secret `name` of the webhook's namespace.
    OwnSecret {
        /// Secret name.
        name: String,
        /// Lifetimes and names.
        spec: CertSpec,
    },
    /// `tls.crt` and `tls.key` in a directory (OpenShift's service CA mounts them).
    Directory(PathBuf),
}

/// What the rotation rounds need.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The webhook's namespace (its Secret lives there).
    pub namespace: String,
    /// Where certificates come from.
    pub source: CertSource,
    /// How the apiserver reaches the webhook.
    pub endpoint: Endpoint,
}

/// Why a round failed (the next round retries).
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// Talking to the apiserver failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Certificates could not be made or read.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The mounted certificate could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The Secret's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Material {
    /// Current CA and its key.
    ca: Pair,
    /// PEM of every trusted CA, current first.
    bundle: String,
    /// The serving certificate.
    serving: Pair,
}

const CA_BUNDLE_KEY: &str = "ca.crt";
const CA_KEY_KEY: &str = "ca.key";
const CERT_KEY: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";

impl Rotation {
    /// Time between rounds.
    pub fn interval(&self) -> Duration {
        match &self.source {
            CertSource::OwnSecret { spec, .. } => {
                (spec.cert_validity / 10).clamp(Duration::from_millis(500), Duration::from_secs(60))
            }
            CertSource::Directory(_) => Duration::from_secs(30),
        }
    }

    /// Runs rounds forever, serving each round's certificate through `resolver`.
    pub async fn run(self, client: Client, resolver: Arc<Resolver>) {
        loop {
            let wait = match self.round(&client, &resolver).await {
                Ok(()) => self.interval(),
                Err(error) => {
                    tracing::warn!(%error, "certificate round failed, retrying");
                    Duration::from_secs(1).min(self.interval())
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One round: make sure the certificates are valid and not due, published and served.
    pub async fn round(&self, client: &Client, resolver: &Resolver) -> Result<(), RotationError> {
        match &self.source {
            CertSource::OwnSecret { name, spec } => {
                let material = self.ensure_secret(client, name, spec).await?;
                self.publish(client, CaSource::Own(&material.bundle))
                    .await?;
                resolver.set(certs::certified_key(&material.serving)?, &material.serving);
            }
            CertSource::Directory(dir) => {
                let read = |file: &str| {
                    let path = dir.join(file);
                    std::fs::read_to_string(&path)
                        .map_err(|source| RotationError::Read { path, source })
                };
                let serving = Pair {
                    cert_pem: read(CERT_KEY)?,
                    key_pem: read(KEY_KEY)?,
                };
                self.publish(client, CaSource::OpenShiftServiceCa).await?;
                resolver.set(certs::certified_key(&serving)?, &serving);
            }
        }
        Ok(())
    }

    /// Reads the Secret and renews what is due; writes it back when anything changed.
    async fn ensure_secret(
        &self,
        client: &Client,
        name: &str,
        spec: &CertSpec,
    ) -> Result<Material, RotationError> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let existing = api.get_opt(name).await?;
        let stored = existing.as_ref().and_then(material_of);
        let now = OffsetDateTime::now_utc();
        let (material, changed) = next_material(stored.clone(), spec, now)?;
        if !changed {
            return Ok(material);
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                resource_version: existing
                    .as_ref()
                    .and_then(|s| s.metadata.resource_version.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/component".to_string(),
                    "webhook".to_string(),
                )])),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(secret_data(&material)),
            ..Default::default()
        };
        let written = match existing {
            None => api.create(&PostParams::default(), &secret).await,
            Some(_) => api.replace(name, &PostParams::default(), &secret).await,
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = name, "webhook certificates written");
                Ok(material)
            }
            // Another replica wrote first: serve what is stored (if any) and adopt theirs next
            // round.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tracing::debug!(secret = name, "another replica renewed the certificates");
                match api.get_opt(name).await?.as_ref().and_then(material_of) {
                    Some(theirs) => Ok(theirs),
                    None => Err(kube::Error::Api(e).into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies the ValidatingWebhookConfiguration and the BGPPeer CRD's conversion section.
    async fn publish(&self, client: &Client, ca: CaSource<'_>) -> Result<(), kube::Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let configuration = configuration::validating_configuration(&self.endpoint, ca);
        configurations
            .patch(
                configuration::CONFIGURATION_NAME,
                &params,
                &Patch::Apply(&configuration),
            )
            .await?;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.patch(
            configuration::BGPPEER_CRD,
            &params,
            &Patch::Apply(configuration::bgppeer_conversion(&self.endpoint, ca)),
        )
        .await?;
        Ok(())
    }
}

/// What the Secret should hold at `now`, and whether that differs from `stored`.
fn next_material(
    stored: Option<Material>,
    spec: &CertSpec,
    now: OffsetDateTime,
) -> Result<(Material, bool), CertError> {
    let Some(mut material) = stored else {
        let ca = certs::new_ca(spec.ca_validity)?;
        let serving = certs::new_serving(&ca, spec)?;
        return Ok((
            Material {
                bundle: ca.cert_pem.clone(),
                ca,
                serving,
            },
            true,
        ));
    };
    let ca_validity = certs::validity(&material.ca.cert_pem)?;
    if ca_validity.due(now) {
        // The new CA is trusted next to the old one before any certificate it signs is served.
        let ca = certs::new_ca(spec.ca_validity)?;
        material.bundle = format!("{}{}", ca.cert_pem, material.ca.cert_pem);
        material.ca = ca;
        return Ok((material, true));
    }
    // A certificate from an older CA is replaced in the round after the new CA was
    // published (a round later: the apiserver reads the configuration from its own watch).
    let serving_due = certs::validity(&material.serving.cert_pem)
        .map(|v| v.due(now))
        .unwrap_or(true);
    let foreign = !certs::issued_by(&material.serving.cert_pem, &material.ca.cert_pem);
    let mut changed = false;
    if serving_due || foreign {
        material.serving = certs::new_serving(&material.ca, spec)?;
        changed = true;
    }
    // CAs that have expired are dropped from the bundle.
    let bundle = trusted_bundle(&material.bundle, now);
    if bundle != material.bundle {
        material.bundle = bundle;
        changed = true;
    }
    Ok((material, changed))
}

/// The certificates of `bundle` that are still valid at `now`, in order.
fn trusted_bundle(bundle: &str, now: OffsetDateTime) -> String {
    pem_blocks(bundle)
        .filter(|pem| certs::validity(pem).is_ok_and(|v| v.not_after > now))
        .collect()
}

/// Each `-----BEGIN CERTIFICATE-----` block of `bundle`, with its trailing newline.
fn pem_blocks(bundle: &str) -> impl Iterator<Item = String> + '_ {
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter(|block| block.contains("-----BEGIN CERTIFICATE-----"))
        .map(|block| format!("{}\n", block.trim_start()))
}

fn material_of(secret: &Secret) -> Option<Material> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| String::from_utf8(data.get(key)?.0.clone()).ok();
    let bundle = text(CA_BUNDLE_KEY)?;
    // The current CA is the first certificate of the bundle.
    let first = pem_blocks(&bundle).next()?;
    Some(Material {
        ca: Pair {
            cert_pem: first,
            key_pem: text(CA_KEY_KEY)?,
        },
        serving: Pair {
            cert_pem: text(CERT_KEY)?,
            key_pem: text(KEY_KEY)?,
        },
        bundle,
    })
}

fn secret_data(material: &Material) -> BTreeMap<String, ByteString> {
    [
        (CA_BUNDLE_KEY, &material.bundle),
        (CA_KEY_KEY, &material.ca.key_pem),
        (CERT_KEY, &material.serving.cert_pem),
        (KEY_KEY, &material.serving.key_pem),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cert_secs: u64, ca_secs: u64) -> CertSpec {
        CertSpec {
            sans: vec!["127.0.0.1".into()],
            ca_validity: Duration::from_secs(ca_secs),
            cert_validity: Duration::from_secs(cert_secs),
        }
    }

    fn round_trip(material: &Material) -> Material {
        let secret = Secret {
            data: Some(secret_data(material)),
            ..Default::default()
        };
        material_of(&secret).unwrap()
    }

    #[test]
    fn the_secret_holds_what_was_made_and_nothing_is_due_at_once() {
        let spec = spec(600, 3600);
        let now = OffsetDateTime::now_utc();
        let (made, changed) = next_material(None, &spec, now).unwrap();
        assert!(changed);
        let stored = round_trip(&made);
        assert_eq!(stored, made);
        let (again, changed) = next_material(Some(stored), &spec, now).unwrap();
        assert!(!changed);
        assert_eq!(again, made);
    }

    #[test]
    fn a_due_serving_certificate_is_replaced_by_one_from_the_same_ca() {
        let spec = spec(600, 3600);
        let now = OffsetDateTime::now_utc();
        let (made, _) = next_material(None, &spec, now).unwrap();
        let later = now + time::Duration::seconds(500);
        let (renewed, changed) = next_material(Some(made.clone()), &spec, later).unwrap();
        assert!(changed);
        assert_eq!(renewed.ca, made.ca);
        assert_ne!(renewed.serving, made.serving);
        assert!(certs::issued_by(
            &renewed.serving.cert_pem,
            &made.ca.cert_pem
        ));
    }

    #[test]
    fn a_new_ca_is_trusted_next_to_the_old_one_before_it_signs_anything() {
        let spec = spec(60, 90);
        let now = OffsetDateTime::now_utc();
        let (made, _) = next_material(None, &spec, now).unwrap();
        // 70 s in, the CA (90 s) is due; the serving certificate stays until the new CA has
        // been published for a while.
        let (step1, changed) =
            next_material(Some(made.clone()), &spec, now + time::Duration::seconds(70)).unwrap();
        assert!(changed);
        assert_ne!(step1.ca, made.ca);
        assert_eq!(step1.serving, made.serving);
        assert!(
            step1.bundle.contains(&made.ca.cert_pem)
                && step1.bundle.starts_with(&step1.ca.cert_pem)
        );
        let step1 = round_trip(&step1);
        assert_eq!(
            Some(step1.ca.cert_pem.clone()),
            pem_blocks(&step1.bundle).next()
        );
        // The next round serves from the new CA.
        let (step2, changed) =
            next_material(Some(step1.clone()), &spec, OffsetDateTime::now_utc()).unwrap();
        assert!(changed);
        assert!(certs::issued_by(
            &step2.serving.cert_pem,
            &step1.ca.cert_pem
        ));
        assert_eq!(step2.bundle, step1.bundle);
    }

    #[test]
    fn expired_cas_leave_the_bundle() {
        let short = certs::new_ca(Duration::from_secs(10)).unwrap();
        let long = certs::new_ca(Duration::from_secs(3600)).unwrap();
        let bundle = format!("{}{}", long.cert_pem, short.cert_pem);
        let now = OffsetDateTime::now_utc();
        assert_eq!(trusted_bundle(&bundle, now), bundle);
        assert_eq!(
            trusted_bundle(&bundle, now + time::Duration::seconds(20)),
            long.cert_pem
        );
    }
}
