//! `metallb speaker` on the Kubernetes API: the same render pipeline as the manifest-driven
//! speaker (`cmd::speaker`), with its objects read from reflectors instead of files.
//!
//! ```text
//!  watch::run ×11 (Services, EndpointSlices, Nodes, Namespaces, 7 metallb.io kinds)
//!        │ stores                       │ Input::Changed / Synced
//!        ▼                              ▼
//!  ApiSource::resources() ◄── changed() (after every store's first list)
//!        │ Services with addresses in status only: the controller assigns, the speaker announces
//!        ▼
//!  cmd::speaker::render_resources → frr.conf → apply loop → FRR
//! ```

pub mod bgp_status;
pub mod source;

use std::collections::{BTreeMap, BTreeSet};

use crate::{controller::Desired, core::bgp::NodeAnnouncement};

/// Event reason when a node starts announcing a Service.
pub const REASON_NODE_ASSIGNED: &str = "nodeAssigned";

/// The Services (namespace, name) this node announces: those with an address inside one of
/// the prefixes it sends to any peer.
pub fn announced_services(
    announcement: &NodeAnnouncement,
    assigned: &BTreeMap<(String, String), Desired>,
) -> BTreeSet<(String, String)> {
    assigned
        .iter()
        .filter(|(_, d)| {
            d.ips.iter().any(|ip| {
                announcement
                    .bgp
                    .iter()
                    .flat_map(|p| &p.prefixes)
                    .any(|r| r.prefix.contains(ip))
            })
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// For each Service this node announces, the BGPPeer names it is advertised to.
pub fn service_peers(
    announcement: &NodeAnnouncement,
    assigned: &BTreeMap<(String, String), Desired>,
) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for peer in &announcement.bgp {
        for (key, d) in assigned {
            if d.ips
                .iter()
                .any(|ip| peer.prefixes.iter().any(|r| r.prefix.contains(ip)))
            {
                let peers = out.entry(key.clone()).or_default();
                if !peers.contains(&peer.peer) {
                    peers.push(peer.peer.clone());
                }
            }
        }
    }
    for peers in out.values_mut() {
        peers.sort();
    }
    out
}

/// Updates `announced` to `now` and returns the Services that were not announced before: the
/// ones that get a `nodeAssigned` event (only when this node joins a Service's announcing set,
/// not on every reconcile as upstream does).
pub fn newly_announced(
    announced: &mut BTreeSet<(String, String)>,
    now: BTreeSet<(String, String)>,
) -> Vec<(String, String)> {
    let new = now.difference(announced).cloned().collect();
    *announced = now;
    new
}
