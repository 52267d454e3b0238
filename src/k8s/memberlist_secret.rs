//! The layer 2 membership's shared secret: the controller creates Secret `metallb-memberlist`
//! (key `secretkey`, random) in MetalLB's namespace when it is missing, as upstream's
//! controller does since 0.13 (`--ml-secret-name`), so a plain `kubectl apply -k deploy/`
//! gives the speakers a secret nobody had to make by hand. An existing Secret is never
//! touched: an admin's own key (or one rotated by hand) stays.

use std::{collections::BTreeMap, time::Duration};

use crate::speaker::layer2::SECRET_KEY;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tracing::Instrument as _;

/// The Secret's default name, as upstream.
pub const DEFAULT_NAME: &str = "metallb-memberlist";

/// Random bytes in a new key (hex-encoded into the Secret; speakers hash it with sha256).
const KEY_BYTES: usize = 64;

/// How long to wait between attempts while the API refuses.
const RETRY: Duration = Duration::from_secs(2);

/// What [`ensure`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// The Secret was there already (or another replica created it meanwhile).
    Existed,
    /// This call created it.
    Created,
}

/// Creates Secret `namespace/name` with a random `secretkey` unless it exists.
pub async fn ensure(client: Client, namespace: &str, name: &str) -> Result<Ensured, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    if api.get_opt(name).await?.is_some() {
        return Ok(Ensured::Existed);
    }
    match api.create(&PostParams::default(), &new_secret(name)).await {
        Ok(_) => Ok(Ensured::Created),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Ensured::Existed),
        Err(e) => Err(e),
    }
}

/// [`ensure`], retried until it succeeds, logging the outcome once; then waits forever, so it can
/// run beside the controller's other endless tasks.
pub async fn ensure_then_idle(client: Client, namespace: String, name: String) {
    let span = tracing::info_span!("memberlist_secret", secret = %format!("{namespace}/{name}"));
    ensure_retrying(client, &namespace, &name)
        .instrument(span)
        .await;
    std::future::pending::<()>().await
}

async fn ensure_retrying(client: Client, namespace: &str, name: &str) {
    let mut warned = false;
    loop {
        match ensure(client.clone(), namespace, name).await {
            Ok(Ensured::Created) => {
                tracing::info!("created the layer 2 membership Secret");
                return;
            }
            Ok(Ensured::Existed) => {
                tracing::debug!("layer 2 membership Secret present");
                return;
            }
            Err(error) => {
                if !warned {
                    tracing::warn!(%error, "layer 2 membership Secret not created, retrying");
                    warned = true;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// A Secret `name` with a fresh random key.
fn new_secret(name: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([("app".into(), "metallb".into())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            SECRET_KEY.to_string(),
            ByteString(random_key().into_bytes()),
        )])),
        ..Secret::default()
    }
}

/// [`KEY_BYTES`] random bytes, hex-encoded: printable, so the speaker reads it unchanged.
fn random_key() -> String {
    let mut bytes = [0u8; KEY_BYTES];
    rand::fill(&mut bytes[..]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_has_a_random_printable_key_under_secretkey() {
        let a = new_secret(DEFAULT_NAME);
        let b = new_secret(DEFAULT_NAME);
        assert_eq!(a.metadata.name.as_deref(), Some(DEFAULT_NAME));
        let key = |s: &Secret| s.data.as_ref().unwrap()[SECRET_KEY].0.clone();
        assert_eq!(key(&a).len(), KEY_BYTES * 2);
        assert!(key(&a).iter().all(u8::is_ascii_hexdigit));
        assert_ne!(key(&a), key(&b), "two keys are the same");
    }
}
