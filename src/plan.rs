//! The dry run behind `metallb plan`: what the controller would do with these manifests.
//!
//! It runs the same allocator the controller runs, in the same order: every Service that already
//! has addresses in its status is restored first (so nothing that still fits moves), then every
//! Service converges in namespace/name order: kept when its addresses still fit its request,
//! allocated again when the request changed. The result is deterministic: the same input always gives the same plan.
//!
//! It then runs the speaker's BGP announcement model ([`crate::core::bgp`]) for every Node of the
//! manifests (and any node named on the command line): which peers each node talks to and which
//! prefixes it announces to each. [`frr_config`] turns that into the FRR configuration the
//! speaker on one node would apply.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The speaker's view of a node: its labels and `NetworkUnavailable` condition from the Node
/// object of that name, or a bare node when the manifests have none.
pub use crate::config::cluster::node_named as node;
use crate::{
    config::{Resources, cluster, service},
    core::{
        allocator::Allocator,
        bgp::{self, AnnouncedService, NodeAnnouncement},
        config::Config,
        frr::{self, FrrConfig, NodeFacts},
        node::Endpoints,
        service::{Addresses, LbService, ServiceKey},
    },
    l2::cluster::{self as l2, L2Announcement},
};

/// What to plan besides allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// The controller's `--lb-class`.
    pub lb_class: Option<String>,
    /// Nodes to plan announcements for besides the Node objects in the manifests; a name without
    /// a Node object is a node with no labels and no conditions.
    pub nodes: Vec<String>,
}

/// The whole plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Every LoadBalancer Service MetalLB handles, by namespace and name.
    pub services: Vec<ServicePlan>,
    /// Every pool, by name, with its usage after allocation.
    pub pools: Vec<PoolPlan>,
    /// What every node (the manifests' Nodes and the ones asked for) announces, by node name.
    pub nodes: Vec<NodePlan>,
}

/// What one node announces: over BGP (`name`, `bgp`, flattened) and with layer 2 (`l2`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodePlan {
    /// The BGP side.
    #[serde(flatten)]
    pub announcement: NodeAnnouncement,
    /// Addresses the node answers ARP/NDP for, assuming every node runs a speaker (as upstream
    /// does with memberlist off).
    pub l2: Vec<L2Announcement>,
}

impl std::ops::Deref for NodePlan {
    type Target = NodeAnnouncement;

    fn deref(&self) -> &NodeAnnouncement {
        &self.announcement
    }
}

/// What one Service gets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServicePlan {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Addresses, primary family first; empty when allocation failed.
    pub ips: Vec<String>,
    /// Pool the addresses come from.
    pub pool: Option<String>,
    /// Why there are no addresses, in the words of the `AllocationFailed` event.
    pub error: Option<String>,
}

/// Usage of one pool, in the units of the IPAddressPool status (counts above the largest
/// signed 64-bit number, as in a /64, are capped there, as upstream does).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolPlan {
    /// Pool name.
    pub name: String,
    /// Its ranges.
    pub addresses: Vec<String>,
    /// IPv4 addresses in use.
    #[serde(rename = "assignedIPv4")]
    pub assigned_ipv4: i64,
    /// IPv6 addresses in use.
    #[serde(rename = "assignedIPv6")]
    pub assigned_ipv6: i64,
    /// IPv4 addresses free.
    #[serde(rename = "availableIPv4")]
    pub available_ipv4: i64,
    /// IPv6 addresses free.
    #[serde(rename = "availableIPv6")]
    pub available_ipv6: i64,
}

/// Plans allocation for every LoadBalancer Service of `resources` under `config`, then the BGP
/// announcements of every node.
pub fn plan(resources: &Resources, config: &Config, options: &PlanOptions) -> Plan {
    let lb_class = options.lb_class.as_deref();
    let namespace_labels: BTreeMap<String, BTreeMap<String, String>> = resources
        .namespaces
        .iter()
        .filter_map(|ns| {
            Some((
                ns.metadata.name.clone()?,
                ns.metadata.labels.clone().unwrap_or_default(),
            ))
        })
        .collect();
    let no_labels = BTreeMap::new();

    // Services MetalLB handles, in namespace/name order; a Service whose MetalLB settings cannot
    // be read fails with that reason.
    let mut wanted: BTreeMap<ServiceKey, Result<LbService, String>> = BTreeMap::new();
    for svc in resources
        .services
        .iter()
        .filter(|s| service::is_ours(s, lb_class))
    {
        let namespace = svc.metadata.namespace.as_deref().unwrap_or("default");
        let labels = namespace_labels.get(namespace).unwrap_or(&no_labels);
        let key = ServiceKey::new(namespace, svc.metadata.name.clone().unwrap_or_default());
        wanted.insert(
            key,
            service::lb_service(svc, labels).map_err(|e| e.to_string()),
        );
    }

    let mut allocator = Allocator::new(config.pools.values());
    let mut results: BTreeMap<ServiceKey, Result<(String, Vec<String>), String>> = BTreeMap::new();

    // Restore first: addresses already in status are held before anything new is allocated,
    // so no other Service takes them.
    for svc in wanted.values().flatten() {
        if !svc.current_ips.is_empty() {
            let _ = allocator.restore(svc, &svc.current_ips);
        }
    }
    // Then every Service converges as the controller's does (upstream's convergeBalancer): a
    // restored assignment that still fits the request is kept as it is; one whose
    // loadBalancerIP(s), address-pool annotation or dual-stack policy now asks for something
    // else is released and allocated again, or fails and holds nothing.
    for (key, svc) in &wanted {
        let outcome = match svc {
            Ok(svc) => allocator
                .allocate(svc)
                .map(|a| (a.pool.clone(), ips(&a.ips)))
                .map_err(|e| format!("Failed to allocate IP for \"{key}\": {e}")),
            Err(reason) => Err(format!("Failed to allocate IP for \"{key}\": {reason}")),
        };
        results.insert(key.clone(), outcome);
    }

    let services = results
        .into_iter()
        .map(|(key, outcome)| match outcome {
            Ok((pool, ips)) => ServicePlan {
                namespace: key.namespace,
                name: key.name,
                ips,
                pool: Some(pool),
                error: None,
            },
            Err(error) => ServicePlan {
                namespace: key.namespace,
                name: key.name,
                ips: Vec::new(),
                pool: None,
                error: Some(error),
            },
        })
        .collect();
    let pools = config
        .pools
        .values()
        .map(|pool| {
            let stats = allocator.pool_stats(&pool.name).unwrap_or_default();
            PoolPlan {
                name: pool.name.clone(),
                addresses: pool.ranges.iter().map(ToString::to_string).collect(),
                assigned_ipv4: stats.ipv4.assigned_i64(),
                assigned_ipv6: stats.ipv6.assigned_i64(),
                available_ipv4: stats.ipv4.available_i64(),
                available_ipv6: stats.ipv6.available_i64(),
            }
        })
        .collect();
    let mut plan = Plan {
        services,
        pools,
        nodes: Vec::new(),
    };
    let addresses = addresses(&plan);
    let announced = announced_services(resources, &addresses);
    let mut names: BTreeSet<String> = resources
        .nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.extend(options.nodes.iter().cloned());
    let elections = l2::elect_all(resources, config, &addresses, None, false);
    let mut l2_by_node = l2::announcements_by_node(resources, &elections);
    plan.nodes = names
        .iter()
        .map(|name| NodePlan {
            announcement: bgp::announce(config, &node(resources, name), &announced),
            l2: l2_by_node.remove(name).unwrap_or_default(),
        })
        .collect();
    plan
}

/// The FRR configuration the speaker on `node_name` would apply after this plan. `facts.hostname`
/// is what FRR prints as `hostname`; for a plan, the node name.
pub fn frr_config(
    resources: &Resources,
    config: &Config,
    plan: &Plan,
    node_name: &str,
    facts: &NodeFacts,
) -> FrrConfig {
    let node = node(resources, node_name);
    let announcement = announcement(resources, config, plan, node_name);
    frr::build(config, &node, &announcement, facts)
}

/// What the speaker on `node_name` announces after this plan.
pub fn announcement(
    resources: &Resources,
    config: &Config,
    plan: &Plan,
    node_name: &str,
) -> NodeAnnouncement {
    match plan.nodes.iter().find(|n| n.name == node_name) {
        Some(a) => a.announcement.clone(),
        None => bgp::announce(
            config,
            &node(resources, node_name),
            &announced_services(resources, &addresses(plan)),
        ),
    }
}

/// The addresses the plan gave each Service, with their pool.
pub fn addresses(plan: &Plan) -> Addresses {
    plan.services
        .iter()
        .filter_map(|s| {
            let ips = s.ips.iter().filter_map(|ip| ip.parse().ok()).collect();
            Some((
                ServiceKey::new(&s.namespace, &s.name),
                (s.pool.clone()?, ips),
            ))
        })
        .collect()
}

/// Every Service with addresses, with what the BGP announcement needs: labels, traffic policy
/// and endpoints.
pub fn announced_services(resources: &Resources, addresses: &Addresses) -> Vec<AnnouncedService> {
    addresses
        .iter()
        .filter_map(|(key, (pool, ips))| {
            let object = resources.services.iter().find(|o| {
                o.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
                    && o.metadata.name.as_deref() == Some(&key.name)
            })?;
            let spec = object.spec.as_ref();
            Some(AnnouncedService {
                key: key.clone(),
                labels: object.metadata.labels.clone().unwrap_or_default(),
                pool: pool.clone(),
                ips: ips.clone(),
                traffic_policy_local: spec.and_then(|sp| sp.external_traffic_policy.as_deref())
                    == Some("Local"),
                endpoints: cluster::endpoints(resources, key).map(|e| Endpoints::of(&e)),
            })
        })
        .collect()
}

fn ips(ips: &[std::net::IpAddr]) -> Vec<String> {
    ips.iter().map(ToString::to_string).collect()
}
