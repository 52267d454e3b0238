//! A node and a Service's endpoints as the announcement rules see them, for BGP
//! ([`super::bgp`]) and layer 2 ([`super::l2`]) alike. Read once from Nodes and EndpointSlices
//! (`config::cluster`), so both protocols judge the same facts with the same rules.

use std::collections::BTreeSet;

use super::selector::Labels;

/// The node label that keeps a node from announcing any load balancer (Kubernetes' own
/// convention, honoured by upstream unless `--ignore-exclude-lb`).
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The node facts that decide what it announces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// Node name (`metadata.name`), which is also the speaker's `--node-name`.
    pub name: String,
    /// Node labels, for `nodeSelectors` and `preferredNodeSelectors`.
    pub labels: Labels,
    /// The `NetworkUnavailable` condition is `True`.
    pub network_unavailable: bool,
}

impl Node {
    /// A node with a name and nothing else: no labels, network available.
    pub fn named(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Whether the node carries [`EXCLUDE_LB_LABEL`] (any value, as upstream).
    pub fn excluded(&self) -> bool {
        self.labels.contains_key(EXCLUDE_LB_LABEL)
    }
}

/// One endpoint of the Service, from its EndpointSlices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// `nodeName`, if set.
    pub node: Option<String>,
    /// `conditions.ready`; unset means ready, as the EndpointSlice API says.
    pub ready: Option<bool>,
    /// `conditions.serving`; a terminating endpoint can be serving while not ready.
    pub serving: Option<bool>,
}

impl Endpoint {
    /// Whether the endpoint can take traffic: ready (or ready unset), or serving. Serving counts
    /// so that a node whose pods are terminating stays eligible until they are gone.
    pub fn can_serve(&self) -> bool {
        self.ready.unwrap_or(true) || self.serving == Some(true)
    }
}

/// Where a service's endpoints are ready or serving.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Nodes with at least one ready or serving endpoint.
    pub nodes: BTreeSet<String>,
    /// Some ready or serving endpoint has no `nodeName`: it counts for "the service has an
    /// endpoint" (policy Cluster) but for no node (policy Local).
    pub without_node: bool,
}

impl Endpoints {
    /// Where the endpoints that can serve ([`Endpoint::can_serve`]) are.
    pub fn of<'a>(endpoints: impl IntoIterator<Item = &'a Endpoint>) -> Endpoints {
        let mut result = Endpoints::default();
        for endpoint in endpoints.into_iter().filter(|e| e.can_serve()) {
            match &endpoint.node {
                Some(node) => {
                    result.nodes.insert(node.clone());
                }
                None => result.without_node = true,
            }
        }
        result
    }

    /// Whether any endpoint is ready or serving.
    pub fn any(&self) -> bool {
        self.without_node || !self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(node: Option<&str>, ready: Option<bool>, serving: Option<bool>) -> Endpoint {
        Endpoint {
            node: node.map(str::to_string),
            ready,
            serving,
        }
    }

    #[test]
    fn endpoints_count_ready_or_serving_ones_by_node() {
        let all = [
            ep(Some("a"), None, None),
            ep(Some("b"), Some(false), Some(true)),
            ep(Some("c"), Some(false), None),
            ep(Some("d"), Some(false), Some(false)),
        ];
        let found = Endpoints::of(&all);
        assert_eq!(
            found.nodes.iter().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(!found.without_node);
        assert!(Endpoints::of(&[ep(None, Some(true), None)]).without_node);
        assert!(!Endpoints::of(&all[2..]).any());
    }
}
