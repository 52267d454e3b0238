//! Finding the status APIs through the API server, for `metallb status` without addresses.
//!
//! - **Speakers**: the speaker pods (`component=speaker` in MetalLB's namespace) give node and
//!   address: they run with host networking, so the pod IP is the node's address and the
//!   speaker's `--status-addr 0.0.0.0:7475` is reachable there. Without speaker pods (speakers
//!   run as processes, as in the lab) the Nodes' InternalIPs are used, as the layer 2
//!   membership does.
//! - **Controller**: the running `component=controller` pods' IPs, the Lease holder first (only the leader has allocations to tell).
//!
//! Not the apiserver's pod proxy: it speaks HTTP/1.1 to the pod, and gRPC needs HTTP/2 with
//! trailers. Not a port-forward either: it would need `pods/portforward` (as strong as exec)
//! for a read-only question, a tunnel per speaker, and pods (no use for processes). Direct
//! connections keep the apiserver out of the data path; the servers have it authorize each
//! call (TokenReview + SubjectAccessReview) instead. The cost: the client must reach the node
//! and pod networks (run it on a node, or in a pod).

use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Node, Pod},
};
use kube::{Api, Client, api::ListParams};

use super::client::SpeakerAddr;

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// A list call failed.
    #[error("listing {what}: {source}")]
    List {
        /// What was listed.
        what: String,
        /// Why.
        source: kube::Error,
    },
    /// No running controller pod.
    #[error(
        "no running controller pod (label component=controller) in namespace {namespace}; give \
         --controller-addr"
    )]
    NoController {
        /// MetalLB's namespace.
        namespace: String,
    },
}

fn list_error(what: &str) -> impl FnOnce(kube::Error) -> DiscoverError + '_ {
    move |source| DiscoverError::List {
        what: what.to_string(),
        source,
    }
}

/// Running pods with an IP, as (name, node, IP).
fn running(pods: &[Pod]) -> Vec<(String, String, String)> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let status = p.status.as_ref()?;
            if status.phase.as_deref() != Some("Running") {
                return None;
            }
            Some((
                p.metadata.name.clone()?,
                p.spec.as_ref()?.node_name.clone().unwrap_or_default(),
                status.pod_ip.clone()?,
            ))
        })
        .collect()
}

/// `host:port`, bracketing IPv6.
fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The speakers: from the speaker pods, else from the Nodes' InternalIPs.
pub async fn speakers(
    client: &Client,
    namespace: &str,
    port: u16,
) -> Result<Vec<SpeakerAddr>, DiscoverError> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels("component=speaker"))
        .await
        .map_err(list_error("speaker pods"))?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(list_error("nodes"))?;
    Ok(speakers_from(&pods.items, &nodes.items, port))
}

/// [`speakers`] over listed objects.
pub fn speakers_from(pods: &[Pod], nodes: &[Node], port: u16) -> Vec<SpeakerAddr> {
    let from_pods: Vec<SpeakerAddr> = running(pods)
        .into_iter()
        .filter(|(_, node, _)| !node.is_empty())
        .map(|(_, node, ip)| SpeakerAddr {
            node,
            addr: host_port(&ip, port),
        })
        .collect();
    let mut out = if from_pods.is_empty() {
        nodes
            .iter()
            .filter_map(|n| {
                let ip = n
                    .status
                    .as_ref()?
                    .addresses
                    .as_ref()?
                    .iter()
                    .find(|a| a.type_ == "InternalIP")?;
                Some(SpeakerAddr {
                    node: n.metadata.name.clone()?,
                    addr: host_port(&ip.address, port),
                })
            })
            .collect()
    } else {
        from_pods
    };
    out.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

/// The controller: a running controller pod's IP, the Lease `lease`'s holder first.
pub async fn controller(
    client: &Client,
    namespace: &str,
    lease: &str,
    port: u16,
) -> Result<String, DiscoverError> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels("component=controller"))
        .await
        .map_err(list_error("controller pods"))?;
    let holder = Api::<Lease>::namespaced(client.clone(), namespace)
        .get_opt(lease)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity);
    controller_from(&pods.items, holder.as_deref(), port).ok_or_else(|| {
        DiscoverError::NoController {
            namespace: namespace.to_string(),
        }
    })
}

/// [`controller`] over listed objects.
pub fn controller_from(pods: &[Pod], holder: Option<&str>, port: u16) -> Option<String> {
    let mut pods = running(pods);
    // The holder identity is the pod name (the controller's default identity), maybe with a
    // suffix: prefer the pod it starts with.
    pods.sort_by_key(|(name, _, _)| !holder.is_some_and(|h| h.starts_with(name.as_str())));
    pods.first().map(|(_, _, ip)| host_port(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, ip: &str, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase, "podIP": ip},
        }))
        .unwrap()
    }

    fn node(name: &str, ip: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"addresses": [
                {"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": ip},
            ]},
        }))
        .unwrap()
    }

    #[test]
    fn speakers_come_from_running_speaker_pods_else_from_node_internal_ips() {
        let nodes = [node("node2", "fd00::2"), node("node1", "10.0.0.1")];
        let by_nodes = speakers_from(&[], &nodes, 7475);
        let text: Vec<String> = by_nodes
            .iter()
            .map(|s| format!("{}={}", s.node, s.addr))
            .collect();
        assert_eq!(text, ["node1=10.0.0.1:7475", "node2=[fd00::2]:7475"]);
        let pods = [
            pod("speaker-b", "node2", "10.0.0.2", "Running"),
            pod("speaker-a", "node1", "10.0.0.1", "Pending"),
        ];
        let by_pods = speakers_from(&pods, &nodes, 7475);
        assert_eq!(by_pods.len(), 1);
        assert_eq!(
            (by_pods[0].node.as_str(), by_pods[0].addr.as_str()),
            ("node2", "10.0.0.2:7475")
        );
    }

    #[test]
    fn the_lease_holder_is_the_controller_asked() {
        let pods = [
            pod("controller-a", "node1", "10.244.0.5", "Running"),
            pod("controller-b", "node2", "10.244.1.7", "Running"),
        ];
        assert_eq!(
            controller_from(&pods, Some("controller-b"), 7474).as_deref(),
            Some("10.244.1.7:7474")
        );
        assert_eq!(
            controller_from(&pods, None, 7474).as_deref(),
            Some("10.244.0.5:7474")
        );
        assert_eq!(controller_from(&[], None, 7474), None);
    }
}
