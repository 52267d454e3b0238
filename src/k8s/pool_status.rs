//! Publishing IPAddressPool usage (`status.assignedIPv4`, `availableIPv4`, ...) with
//! server-side apply, as upstream's pool status reconciler does.
//!
//! The reconciler sets the latest counters of every pool on a `watch` channel; the generic
//! publisher ([`super::publish`]) writes the pools whose counters changed since it last wrote
//! them (a burst collapses into one write per pool) and retries failures after a second.

use std::collections::BTreeMap;

use kube::{Api, Client};
use tokio::sync::watch;

use super::publish::{self, Desired, Ownership};
use crate::api::ip_address_pool::{IPAddressPool, IPAddressPoolStatus};

/// Writes the counters of `rx` to the IPAddressPools of `namespace` whenever they change.
pub async fn publish(
    client: Client,
    namespace: String,
    field_manager: String,
    mut rx: watch::Receiver<BTreeMap<String, IPAddressPoolStatus>>,
) {
    let api: Api<IPAddressPool> = Api::namespaced(client, &namespace);
    let (tx, desired) = watch::channel(BTreeMap::new());
    let translate = async move {
        loop {
            let pools = rx.borrow_and_update().clone();
            tx.send_replace(
                pools
                    .into_iter()
                    .map(|(name, status)| {
                        let status = serde_json::to_value(status).unwrap_or_default();
                        (
                            name,
                            Desired {
                                metadata: None,
                                status,
                            },
                        )
                    })
                    .collect(),
            );
            if rx.changed().await.is_err() {
                // The publisher keeps the last counters written; keep its channel open.
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::join!(
        translate,
        publish::publish(api, &field_manager, Ownership::StatusOnly, desired)
    );
}
