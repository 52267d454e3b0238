//! Nodes and EndpointSlices → the [`core::node`](crate::core::node) facts both protocols
//! announce by: the one reading of `NetworkUnavailable`, node labels and endpoint conditions,
//! for `metallb plan` and the speaker, BGP and layer 2.

use k8s_openapi::api::{core::v1::Node as K8sNode, discovery::v1::EndpointSlice};

use crate::{
    config::Resources,
    core::{
        node::{Endpoint, Node},
        service::ServiceKey,
    },
};

/// The label EndpointSlices carry to name their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A node from its Kubernetes object.
pub fn node(object: &K8sNode) -> Node {
    let network_unavailable = object
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True");
    Node {
        name: object.metadata.name.clone().unwrap_or_default(),
        labels: object.metadata.labels.clone().unwrap_or_default(),
        network_unavailable,
    }
}

/// Every node of the resources.
pub fn nodes(resources: &Resources) -> Vec<Node> {
    resources.nodes.iter().map(node).collect()
}

/// The speaker's view of a node: the Node object of that name, or a bare node when the
/// manifests have none.
pub fn node_named(resources: &Resources, name: &str) -> Node {
    resources
        .nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(name))
        .map_or_else(|| Node::named(name), node)
}

/// The endpoints of a Service, from the EndpointSlices labelled with its name; `None` when no
/// slice names it (unknown, as in manifests without EndpointSlices).
pub fn endpoints(resources: &Resources, key: &ServiceKey) -> Option<Vec<Endpoint>> {
    let mut slices = resources
        .endpoint_slices
        .iter()
        .filter(|s| names_service(s, key))
        .peekable();
    slices.peek()?;
    Some(
        slices
            .flat_map(|s| &s.endpoints)
            .map(|e| {
                let c = e.conditions.clone().unwrap_or_default();
                Endpoint {
                    node: e.node_name.clone(),
                    ready: c.ready,
                    serving: c.serving,
                }
            })
            .collect(),
    )
}

fn names_service(slice: &EndpointSlice, key: &ServiceKey) -> bool {
    slice.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
        && slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            == Some(&key.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(yaml: &str) -> Resources {
        let docs = crate::manifest::parse("test.yaml", yaml).unwrap();
        let (resources, errors) = Resources::from_documents(&docs);
        assert!(errors.is_empty(), "{errors:?}");
        resources
    }

    const OBJECTS: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: {node.kubernetes.io/exclude-from-external-load-balancers: ""}
status:
  conditions: [{type: NetworkUnavailable, status: "True"}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  nodeName: n1
  conditions: {ready: false, serving: true}
- addresses: [10.0.0.2]
"#;

    #[test]
    fn nodes_and_endpoints_read_once_for_both_protocols() {
        let resources = resources(OBJECTS);
        let n1 = node_named(&resources, "n1");
        assert!(n1.network_unavailable && n1.excluded());
        assert_eq!(node_named(&resources, "n2"), Node::named("n2"));
        let web = endpoints(&resources, &ServiceKey::new("default", "web")).unwrap();
        assert_eq!(web.len(), 2);
        assert_eq!(web[0].node.as_deref(), Some("n1"));
        assert_eq!((web[0].ready, web[0].serving), (Some(false), Some(true)));
        assert_eq!(web[1].node, None);
        // No slice names the Service: unknown, not "no endpoints".
        assert_eq!(
            endpoints(&resources, &ServiceKey::new("default", "db")),
            None
        );
        assert_eq!(
            endpoints(&resources, &ServiceKey::new("other", "web")),
            None
        );
    }
}
