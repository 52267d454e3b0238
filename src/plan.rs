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
};

/// The whole plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Every LoadBalancer Service MetalLB handles, by namespace and name.
    pub services: Vec<ServicePlan>,
    /// Every pool, by name, with its usage after allocation.
    pub pools: Vec<PoolPlan>,
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
    Plan { services, pools }
}

fn ips(ips: &[std::net::IpAddr]) -> Vec<String> {
    ips.iter().map(ToString::to_string).collect()
}
