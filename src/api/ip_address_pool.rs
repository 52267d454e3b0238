//! `IPAddressPool` (v1beta1): the current pool kind; how addresses are announced is decided by
//! separate L2Advertisement and BGPAdvertisement resources.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::LabelSelector;

/// A pool of addresses that LoadBalancer services get their IPs from.
#[derive(
    CustomResource, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
)]
#[kube(
    group = "metallb.io",
    derive = "PartialEq",
    version = "v1beta1",
    kind = "IPAddressPool",
    plural = "ipaddresspools",
    namespaced,
    status = "IPAddressPoolStatus",
    category = "metallb-all",
    printcolumn(
        name = "Auto Assign",
        type_ = "boolean",
        json_path = ".spec.autoAssign"
    ),
    printcolumn(
        name = "Avoid Buggy IPs",
        type_ = "boolean",
        json_path = ".spec.avoidBuggyIPs"
    ),
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses"),
    printcolumn(
        name = "Assigned IPv4",
        type_ = "integer",
        json_path = ".status.assignedIPv4"
    ),
    printcolumn(
        name = "Available IPv4",
        type_ = "integer",
        json_path = ".status.availableIPv4"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolSpec {
    /// Addresses to hand out: CIDRs (`192.168.10.0/24`), ranges (`192.168.9.1-192.168.9.5`) or a
    /// single address as a range (`1.1.1.1-1.1.1.1`). IPv4 and IPv6 may be mixed across entries.
    #[schemars(length(min = 1))]
    pub addresses: Vec<String>,
    /// Whether services get addresses from this pool without asking for it by name (default true).
    #[serde(default = "super::address_pool::default_true")]
    pub auto_assign: bool,
    /// Skip the `.0` and `.255` addresses, which some buggy clients cannot reach.
    #[serde(
        default,
        rename = "avoidBuggyIPs",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub avoid_buggy_ips: bool,
    /// Restricts the pool to some namespaces or services, with a priority among such pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// Which services a pool serves, and how it ranks among the pools that could serve them.
#[derive(schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Lower numbers are tried first; 0 (unset) is tried after every positive priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub priority: Option<i32>,
    /// Namespaces whose services may use this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespace label selectors; a service in a matching namespace may use this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Service label selectors; a matching service may use this pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// Address usage of a pool, written by the controller.
#[derive(schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IPAddressPoolStatus {
    /// IPv4 addresses assigned to services.
    #[serde(rename = "assignedIPv4", default)]
    pub assigned_ipv4: i64,
    /// IPv6 addresses assigned to services.
    #[serde(rename = "assignedIPv6", default)]
    pub assigned_ipv6: i64,
    /// IPv4 addresses still free.
    #[serde(rename = "availableIPv4", default)]
    pub available_ipv4: i64,
    /// IPv6 addresses still free (capped at the largest signed 64-bit number).
    #[serde(rename = "availableIPv6", default)]
    pub available_ipv6: i64,
}
