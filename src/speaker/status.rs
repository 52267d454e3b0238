//! The speaker's status objects: ServiceBGPStatus (which peers this node advertises each
//! Service to) and ServiceL2Status (which interfaces it answers on for each Service it owns),
//! one object per Service and node, written by the generic publisher ([`crate::k8s::publish`])
//! only when they change and deleted on withdrawal. Both carry upstream's labels
//! (`metallb.io/node`, `metallb.io/service-name`, `metallb.io/service-namespace`).
//!
//! Names: ServiceBGPStatus `<node>-<namespace>-<service>` (hashed when longer than a name
//! allows); ServiceL2Status `l2-<hash of node, namespace, service>`. Upstream names the latter
//! `l2-<random>`; a name derived from its key lets server-side apply (which needs a name) write
//! it without a lookup, and a restarted speaker finds its own objects again.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    api::labels,
    core::service::ServiceKey,
    k8s::publish::{Desired, Ownership},
};

/// The label selector of one node's status objects.
pub fn ownership(node: &str) -> Ownership {
    Ownership::Owned {
        selector: format!("{}={node}", labels::NODE),
    }
}

fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The ServiceBGPStatus name for one Service on one node.
pub fn bgp_object_name(node: &str, key: &ServiceKey) -> String {
    let full = format!("{node}-{}-{}", key.namespace, key.name).to_lowercase();
    if full.len() <= 63 {
        return full;
    }
    format!("bgp-{}", short_hash(&full))
}

/// The ServiceL2Status name for one Service on one node.
pub fn l2_object_name(node: &str, key: &ServiceKey) -> String {
    format!(
        "l2-{}",
        short_hash(&format!("{node}/{}/{}", key.namespace, key.name))
    )
}

fn metadata(node: &str, key: &ServiceKey, owner: Option<OwnerReference>) -> serde_json::Value {
    let mut metadata = json!({"labels": {
        labels::NODE: node,
        labels::SERVICE_NAME: key.name,
        labels::SERVICE_NAMESPACE: key.namespace,
    }});
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    metadata
}

/// ServiceBGPStatus objects: Service → BGPPeer names.
pub fn bgp_objects(
    node: &str,
    peers: &BTreeMap<ServiceKey, Vec<String>>,
) -> BTreeMap<String, Desired> {
    peers
        .iter()
        .map(|(key, peers)| {
            let status = json!({
                "node": node, "serviceName": key.name, "serviceNamespace": key.namespace,
                "peers": peers,
            });
            (
                bgp_object_name(node, key),
                Desired {
                    metadata: Some(metadata(node, key, None)),
                    status,
                },
            )
        })
        .collect()
}

/// ServiceL2Status objects: Service → interfaces, each owned by its Service (`owner`), so that
/// deleting the Service deletes them too.
pub fn l2_objects(
    node: &str,
    interfaces: &BTreeMap<ServiceKey, Vec<String>>,
    owner: impl Fn(&ServiceKey) -> Option<OwnerReference>,
) -> BTreeMap<String, Desired> {
    interfaces
        .iter()
        .map(|(key, names)| {
            let interfaces: Vec<_> = names.iter().map(|n| json!({"name": n})).collect();
            let mut status = json!({
                "node": node, "serviceName": key.name, "serviceNamespace": key.namespace,
            });
            if !interfaces.is_empty() {
                status["interfaces"] = json!(interfaces);
            }
            (
                l2_object_name(node, key),
                Desired {
                    metadata: Some(metadata(node, key, owner(key))),
                    status,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_valid_and_distinct_per_node() {
        let key = ServiceKey::new("default", "web");
        assert_eq!(bgp_object_name("node1", &key), "node1-default-web");
        let long = ServiceKey::new("default", "x".repeat(70));
        let name = bgp_object_name("node1", &long);
        assert!(name.starts_with("bgp-") && name.len() <= 63, "{name}");
        let l2 = l2_object_name("node1", &key);
        assert_eq!(l2, l2_object_name("node1", &key));
        assert_ne!(l2, l2_object_name("node2", &key));
        assert!(l2.starts_with("l2-") && l2.len() == 19, "{l2}");
    }

    #[test]
    fn l2_status_names_node_service_and_interfaces() {
        let key = ServiceKey::new("default", "web");
        let objects = l2_objects(
            "node1",
            &BTreeMap::from([(key.clone(), vec!["eth0".to_string()])]),
            |_| None,
        );
        let object = &objects[&l2_object_name("node1", &key)];
        assert_eq!(
            object.status,
            json!({"node": "node1", "serviceName": "web", "serviceNamespace": "default",
                   "interfaces": [{"name": "eth0"}]})
        );
        assert_eq!(
            object.metadata.as_ref().unwrap()["labels"][labels::NODE],
            "node1"
        );
    }
}
