//! From Kubernetes objects to layer 2 elections: Nodes and EndpointSlices become the pure
//! [`core::l2`](crate::core::l2) inputs (through [`config::cluster`](crate::config::cluster),
//! as for BGP), and every Service with addresses gets an election.
//! Used by `metallb plan` (every node's view) and by the speaker (its own view).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use serde::Serialize;

use crate::{
    config::{Resources, cluster, service},
    core::{
        config::Config,
        l2::{self, ElectionInput, Interfaces, NoOwner},
        service::{Addresses, LbService, ServiceKey},
    },
};

/// Nodes as both protocols see them (the speaker's layer 2 side reads them from here).
pub use crate::config::cluster::nodes;

/// One Service's layer 2 election.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceElection {
    /// The Service.
    pub key: ServiceKey,
    /// Its addresses.
    pub ips: Vec<IpAddr>,
    /// The election: the ranking and applicable advertisements, or why nobody announces.
    pub result: Result<l2::Election, NoOwner>,
}

/// Runs the layer 2 election for every Service that has addresses (`assigned`: key →
/// (pool, addresses), as the allocator decided) from a pool with L2Advertisements.
pub fn elect_all(
    resources: &Resources,
    config: &Config,
    assigned: &Addresses,
    live_speakers: Option<&BTreeSet<String>>,
    ignore_exclude_lb: bool,
) -> Vec<ServiceElection> {
    let nodes = nodes(resources);
    let mut out = Vec::new();
    for (key, (pool, ips)) in assigned {
        let Some(pool) = config.pools.get(pool) else {
            continue;
        };
        if pool.l2_advertisements.is_empty() || ips.is_empty() {
            continue;
        }
        let Some(svc) = lb_service(resources, key) else {
            continue;
        };
        let eps = cluster::endpoints(resources, key).unwrap_or_default();
        let result = l2::elect(&ElectionInput {
            service: &svc,
            ips,
            advertisements: &pool.l2_advertisements,
            endpoints: &eps,
            nodes: &nodes,
            live_speakers,
            ignore_exclude_lb,
        });
        out.push(ServiceElection {
            key: key.clone(),
            ips: ips.clone(),
            result,
        });
    }
    out
}

fn lb_service(resources: &Resources, key: &ServiceKey) -> Option<LbService> {
    let svc = resources.services.iter().find(|s| {
        s.metadata.name.as_deref() == Some(&key.name)
            && s.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
    })?;
    let ns_labels = resources
        .namespaces
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(&key.namespace))
        .and_then(|n| n.metadata.labels.clone())
        .unwrap_or_default();
    service::lb_service(svc, &ns_labels).ok()
}

/// What one node announces with layer 2, as `metallb plan` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct L2Announcement {
    /// The address.
    pub ip: String,
    /// `namespace/name` of the Service.
    pub service: String,
    /// Interfaces answered on; empty means every eligible interface.
    pub interfaces: Vec<String>,
}

/// The addresses each node announces, by node name (every node of `resources` is present).
pub fn announcements_by_node(
    resources: &Resources,
    elections: &[ServiceElection],
) -> BTreeMap<String, Vec<L2Announcement>> {
    let nodes = nodes(resources);
    let mut out: BTreeMap<String, Vec<L2Announcement>> =
        nodes.iter().map(|n| (n.name.clone(), Vec::new())).collect();
    for e in elections {
        let Ok(election) = &e.result else { continue };
        let Some(owner) = nodes.iter().find(|n| n.name == election.owner()) else {
            continue;
        };
        let interfaces = match election.interfaces_for(owner) {
            Interfaces::All => Vec::new(),
            Interfaces::Only(set) => set.into_iter().collect(),
        };
        let list = out.entry(owner.name.clone()).or_default();
        for ip in &e.ips {
            list.push(L2Announcement {
                ip: ip.to_string(),
                service: e.key.to_string(),
                interfaces: interfaces.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config, manifest};

    fn load(path: &str) -> (Resources, Config) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = manifest::parse(&path.display().to_string(), &text).unwrap();
        let (resources, loaded) = config::load_documents(&docs, &Default::default());
        let config = loaded.valid().unwrap();
        (resources, config)
    }

    #[test]
    fn plan_fixture_elects_as_upstream_would() {
        let (resources, config) = load("tests/fixtures/l2/plan/l2.yaml");
        let assigned = crate::speaker::input::addresses_from_status(&resources, &config, None);
        assert_eq!(assigned.len(), 3);
        let elections = elect_all(&resources, &config, &assigned, None, false);
        let by_node = announcements_by_node(&resources, &elections);
        // web: dual-stack, hashed on its first address 10.77.0.200: node2 sorts before node1
        // (sha256 "node2#10.77.0.200" < "node1#10.77.0.200"); node3 is excluded.
        // local: ETP Local, only node1's terminating-but-serving endpoint counts.
        // idle: no endpoints, nobody.
        let eth0 = vec!["eth0".to_string()];
        assert_eq!(
            by_node["node1"],
            vec![L2Announcement {
                ip: "10.77.0.201".into(),
                service: "default/local".into(),
                interfaces: eth0.clone(),
            }]
        );
        assert_eq!(
            by_node["node2"],
            vec![
                L2Announcement {
                    ip: "10.77.0.200".into(),
                    service: "default/web".into(),
                    interfaces: eth0.clone(),
                },
                L2Announcement {
                    ip: "fd00:77::200".into(),
                    service: "default/web".into(),
                    interfaces: eth0,
                },
            ]
        );
        assert_eq!(by_node["node3"], vec![]);
        let idle = elections.iter().find(|e| e.key.name == "idle").unwrap();
        assert_eq!(idle.result, Err(NoOwner::NoEndpoints));
    }

    #[test]
    fn a_dead_speaker_hands_over_to_the_next() {
        let (resources, config) = load("tests/fixtures/l2/plan/l2.yaml");
        let assigned = crate::speaker::input::addresses_from_status(&resources, &config, None);
        let live: BTreeSet<String> = ["node1".to_string()].into();
        let elections = elect_all(&resources, &config, &assigned, Some(&live), false);
        let web = elections.iter().find(|e| e.key.name == "web").unwrap();
        assert_eq!(web.result.as_ref().unwrap().owner(), "node1");
    }
}
