//! The one status publisher: the component sets the desired status objects on a `watch`
//! channel; this task makes the cluster match (server-side apply of what changed, delete of
//! what is gone when it owns the objects), retrying failures every second. A burst of changes
//! collapses into the last one; nothing unchanged is written.
//!
//! ```text
//!  reconcile ─► watch<BTreeMap<name, Desired>> ─► publish ─► apply metadata + apply status
//!                                                        └─► delete (Ownership::Owned only)
//! ```

use std::{collections::BTreeMap, fmt::Debug, time::Duration};

use kube::{
    Api, Resource,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::sync::watch;

/// One object as it should be.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Metadata to apply with the object (labels, owner references), for objects the publisher
    /// creates; `None` for objects that exist already.
    pub metadata: Option<Value>,
    /// The status.
    pub status: Value,
}

/// Whose objects these are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Others create and delete them; only the status is written (IPAddressPool counters).
    StatusOnly,
    /// The publisher creates them and deletes those no longer desired; the existing ones are
    /// found with this label selector (e.g. `metallb.io/node=node1`).
    Owned {
        /// Label selector of this publisher's objects.
        selector: String,
    },
}

/// Keeps the objects of `api` equal to `rx`'s map (object name → desired state).
pub async fn publish<K>(
    api: Api<K>,
    field_manager: &str,
    ownership: Ownership,
    mut rx: watch::Receiver<BTreeMap<String, Desired>>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let kind = K::kind(&()).to_string();
    let params = PatchParams::apply(field_manager).force();
    // What the cluster holds, by name: its status as last written or read.
    let mut written: Option<BTreeMap<String, Value>> = match ownership {
        Ownership::StatusOnly => Some(BTreeMap::new()),
        Ownership::Owned { .. } => None,
    };
    loop {
        if written.is_none()
            && let Ownership::Owned { selector } = &ownership
        {
            match api.list(&ListParams::default().labels(selector)).await {
                Ok(list) => {
                    written = Some(
                        list.items
                            .into_iter()
                            .filter_map(|o| {
                                let name = o.meta().name.clone()?;
                                let status = serde_json::to_value(&o)
                                    .ok()
                                    .and_then(|v| v.get("status").cloned())
                                    .unwrap_or(Value::Null);
                                Some((name, status))
                            })
                            .collect(),
                    )
                }
                Err(error) => {
                    tracing::warn!(%error, kind, "status objects not listed, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let have = written.get_or_insert_with(BTreeMap::new);
        let wanted = rx.borrow_and_update().clone();
        let mut failed = false;
        for (name, desired) in &wanted {
            if have.get(name) == Some(&desired.status) {
                continue;
            }
            match write(&api, &params, name, desired).await {
                Ok(()) => {
                    have.insert(name.clone(), desired.status.clone());
                }
                // Deleted meanwhile (StatusOnly): the next map will not name it.
                Err(kube::Error::Api(e)) if e.code == 404 && desired.metadata.is_none() => {}
                Err(error) => {
                    tracing::warn!(%error, kind, object = %name, "status not written, retrying");
                    failed = true;
                }
            }
        }
        match ownership {
            Ownership::StatusOnly => have.retain(|name, _| wanted.contains_key(name)),
            Ownership::Owned { .. } => {
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
                            tracing::warn!(%error, kind, object = %name, "status object not deleted, retrying");
                            failed = true;
                        }
                    }
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

/// Applies the object (when the publisher owns it), then its status.
async fn write<K>(
    api: &Api<K>,
    params: &PatchParams,
    name: &str,
    desired: &Desired,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let (api_version, kind) = (K::api_version(&()), K::kind(&()));
    if let Some(metadata) = &desired.metadata {
        let mut metadata = metadata.clone();
        metadata["name"] = json!(name);
        let object = json!({
            "apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": {},
        });
        api.patch(name, params, &Patch::Apply(object)).await?;
    }
    let status = json!({
        "apiVersion": api_version, "kind": kind, "metadata": {"name": name},
        "status": desired.status,
    });
    api.patch_status(name, params, &Patch::Apply(status))
        .await?;
    Ok(())
}
