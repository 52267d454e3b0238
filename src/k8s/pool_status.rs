//! Publishing IPAddressPool usage (`status.assignedIPv4`, `availableIPv4`, ...) with
//! server-side apply, as upstream's pool status reconciler does.
//!
//! The reconciler sets the latest counters of every pool on a `watch` channel; this task writes
//! the pools whose counters changed since it last wrote them (a burst collapses into one write
//! per pool) and retries failures after a second.

use std::{collections::BTreeMap, time::Duration};

use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio::sync::watch;

use crate::api::ip_address_pool::{IPAddressPool, IPAddressPoolStatus};

/// Writes the counters of `rx` to the IPAddressPools of `namespace` whenever they change.
pub async fn publish(
    client: Client,
    namespace: String,
    field_manager: String,
    mut rx: watch::Receiver<BTreeMap<String, IPAddressPoolStatus>>,
) {
    let api: Api<IPAddressPool> = Api::namespaced(client, &namespace);
    let params = PatchParams::apply(&field_manager).force();
    let mut written: BTreeMap<String, IPAddressPoolStatus> = BTreeMap::new();
    loop {
        let wanted = rx.borrow_and_update().clone();
        written.retain(|name, _| wanted.contains_key(name));
        let mut failed = false;
        for (name, status) in &wanted {
            if written.get(name) == Some(status) {
                continue;
            }
            let body = json!({
                "apiVersion": "metallb.io/v1beta1",
                "kind": "IPAddressPool",
                "metadata": {"name": name},
                "status": status,
            });
            match api.patch_status(name, &params, &Patch::Apply(body)).await {
                Ok(_) => {
                    written.insert(name.clone(), status.clone());
                }
                // Deleted meanwhile: the next counters will not name it.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(error) => {
                    tracing::warn!(pool = %name, %error, "pool status not written, retrying");
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
