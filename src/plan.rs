//! The dry run behind `metallb plan`: what the controller would do with these manifests.
//!
//! It runs the same allocator the controller runs, in the same order: every Service that already
//! has addresses in its status is restored first (so nothing moves), then the others are allocated
//! in namespace/name order. The result is deterministic: the same input always gives the same plan.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    config::{Resources, service},
    core::{
        allocator::Allocator,
        config::Config,
        service::{LbService, ServiceKey},
    },
    l2::cluster::{self as l2, L2Announcement},
};

/// The whole plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Every LoadBalancer Service MetalLB handles, by namespace and name.
    pub services: Vec<ServicePlan>,
    /// Every pool, by name, with its usage after allocation.
    pub pools: Vec<PoolPlan>,
    /// Every Node of the manifests, by name, with what it announces.
    pub nodes: Vec<NodePlan>,
}

/// What one node announces.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodePlan {
    /// Node name.
    pub name: String,
    /// Addresses it answers ARP/NDP for (every node is assumed to run a speaker).
    pub l2: Vec<L2Announcement>,
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

/// Usage of one pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolPlan {
    /// Pool name.
    pub name: String,
    /// Its ranges.
    pub addresses: Vec<String>,
    /// IPv4 addresses in use.
    #[serde(rename = "assignedIPv4")]
    pub assigned_ipv4: u128,
    /// IPv6 addresses in use.
    #[serde(rename = "assignedIPv6")]
    pub assigned_ipv6: u128,
    /// IPv4 addresses free.
    #[serde(rename = "availableIPv4")]
    pub available_ipv4: u128,
    /// IPv6 addresses free.
    #[serde(rename = "availableIPv6")]
    pub available_ipv6: u128,
}

/// Plans allocation for every LoadBalancer Service of `resources` under `config`.
/// `lb_class` is the controller's `--lb-class`.
pub fn plan(resources: &Resources, config: &Config, lb_class: Option<&str>) -> Plan {
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

    // Restore first: addresses already in status stay where they are.
    for (key, svc) in &wanted {
        if let Ok(svc) = svc
            && !svc.current_ips.is_empty()
            && let Ok(assignment) = allocator.restore(svc, &svc.current_ips)
        {
            results.insert(
                key.clone(),
                Ok((assignment.pool.clone(), ips(&assignment.ips))),
            );
        }
    }
    for (key, svc) in &wanted {
        if results.contains_key(key) {
            continue;
        }
        let outcome = match svc {
            Ok(svc) => allocator
                .allocate(svc)
                .map(|a| (a.pool.clone(), ips(&a.ips)))
                .map_err(|e| format!("Failed to allocate IP for \"{key}\": {e}")),
            Err(reason) => Err(format!("Failed to allocate IP for \"{key}\": {reason}")),
        };
        results.insert(key.clone(), outcome);
    }

    let services: Vec<ServicePlan> = results
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
                assigned_ipv4: stats.assigned_v4,
                assigned_ipv6: stats.assigned_v6,
                available_ipv4: stats.total_v4 - stats.assigned_v4,
                available_ipv6: stats.total_v6 - stats.assigned_v6,
            }
        })
        .collect();
    let nodes = node_plans(resources, config, &services);
    Plan {
        services,
        pools,
        nodes,
    }
}

/// The layer 2 owner of every allocated address, by node.
fn node_plans(resources: &Resources, config: &Config, services: &[ServicePlan]) -> Vec<NodePlan> {
    let assigned: BTreeMap<ServiceKey, (String, Vec<std::net::IpAddr>)> = services
        .iter()
        .filter_map(|s| {
            let ips = s.ips.iter().filter_map(|ip| ip.parse().ok()).collect();
            Some((
                ServiceKey::new(&s.namespace, &s.name),
                (s.pool.clone()?, ips),
            ))
        })
        .collect();
    let elections = l2::elect_all(resources, config, &assigned, None, false);
    l2::announcements_by_node(resources, &elections)
        .into_iter()
        .map(|(name, l2)| NodePlan { name, l2 })
        .collect()
}

fn ips(ips: &[std::net::IpAddr]) -> Vec<String> {
    ips.iter().map(ToString::to_string).collect()
}
