//! ServiceBGPStatus objects of one node: which peers it advertises each Service to. The
//! speaker sets the desired map on a `watch` channel; this task makes the cluster match it
//! (server-side apply of changed objects, delete of gone ones), writing only what changed.
//! Objects are named `<node>-<namespace>-<service>` (hashed when longer than a name allows) and
//! labelled like upstream's (`metallb.io/node`, `metallb.io/service-name`,
//! `metallb.io/service-namespace`).

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hash, Hasher},
    time::Duration,
};

use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::json;
use tokio::sync::watch;

use crate::api::service_bgp_status::ServiceBGPStatus;

/// Field manager of the speaker's writes.
pub const FIELD_MANAGER: &str = "metallb-speaker";
/// Label naming the node.
pub const LABEL_NODE: &str = "metallb.io/node";

/// (namespace, name) of a Service → BGPPeer names it is advertised to.
pub type Desired = BTreeMap<(String, String), Vec<String>>;

/// The object name for one Service on one node.
pub fn object_name(node: &str, namespace: &str, name: &str) -> String {
    let full = format!("{node}-{namespace}-{name}").to_lowercase();
    if full.len() <= 63 {
        return full;
    }
    let mut h = DefaultHasher::new();
    full.hash(&mut h);
    format!("bgp-{:016x}", h.finish())
}

/// Keeps the node's ServiceBGPStatus objects equal to `rx`'s map.
pub async fn publish(
    client: Client,
    namespace: String,
    node: String,
    mut rx: watch::Receiver<Desired>,
) {
    let api: Api<ServiceBGPStatus> = Api::namespaced(client, &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    // What the cluster holds for this node, by object name (read once, then kept).
    let mut written: Option<BTreeMap<String, Vec<String>>> = None;
    loop {
        if written.is_none() {
            let selector = format!("{LABEL_NODE}={node}");
            match api.list(&ListParams::default().labels(&selector)).await {
                Ok(list) => {
                    written = Some(
                        list.items
                            .into_iter()
                            .filter_map(|o| {
                                Some((
                                    o.metadata.name?,
                                    o.status.map(|s| s.peers).unwrap_or_default(),
                                ))
                            })
                            .collect(),
                    )
                }
                Err(error) => {
                    tracing::warn!(%error, "ServiceBGPStatus list failed, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let have = written.as_mut().expect("invariant: listed above");
        let desired = rx.borrow_and_update().clone();
        let wanted: BTreeMap<String, (&(String, String), &Vec<String>)> = desired
            .iter()
            .map(|(key, peers)| (object_name(&node, &key.0, &key.1), (key, peers)))
            .collect();
        let mut failed = false;
        for (name, ((ns, svc), peers)) in &wanted {
            if have.get(name) == Some(*peers) {
                continue;
            }
            let object = json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "ServiceBGPStatus",
                "metadata": {"name": name, "labels": {
                    LABEL_NODE: node,
                    "metallb.io/service-name": svc,
                    "metallb.io/service-namespace": ns,
                }},
                "spec": {},
            });
            let status = json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "ServiceBGPStatus",
                "metadata": {"name": name},
                "status": {"node": node, "serviceName": svc, "serviceNamespace": ns, "peers": peers},
            });
            let result = async {
                api.patch(name, &params, &Patch::Apply(object)).await?;
                api.patch_status(name, &params, &Patch::Apply(status)).await
            }
            .await;
            match result {
                Ok(_) => {
                    have.insert(name.clone(), (*peers).clone());
                }
                Err(error) => {
                    tracing::warn!(%error, object = %name, "ServiceBGPStatus not written, retrying");
                    failed = true;
                }
            }
        }
        let gone: Vec<String> = have
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    have.remove(&name);
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    have.remove(&name);
                }
                Err(error) => {
                    tracing::warn!(%error, object = %name, "ServiceBGPStatus not deleted, retrying");
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
