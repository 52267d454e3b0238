//! `AddressPool` (v1alpha1 and v1beta1): the OpenShift 4.10 pool kind, which carries its
//! protocol and BGP advertisements inline. Resolved into a pool plus L2 or BGP advertisements.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// How the addresses of a legacy pool are announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// ARP (IPv4) and NDP (IPv6) answers from one node per address.
    Layer2,
    /// BGP announcements from every eligible node to its peers.
    Bgp,
}

/// An inline BGP advertisement of a legacy `AddressPool`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyBgpAdvertisement {
    /// Prefix length that IPv4 service addresses are aggregated to before they are announced
    /// (default 32: one route per address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32))]
    pub aggregation_length: Option<i32>,
    /// Prefix length that IPv6 service addresses are aggregated to (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 128))]
    pub aggregation_length_v6: Option<i32>,
    /// BGP communities attached to the announcement, as `a:b` with 16-bit halves
    /// (for example `65535:65282` for NO_ADVERTISE).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    /// BGP LOCAL_PREF attribute of the announcement (iBGP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
}

macro_rules! address_pool_version {
    ($version:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[kube(
            group = "metallb.io",
            derive = "PartialEq",
            version = $version,
            kind = "AddressPool",
            plural = "addresspools",
            namespaced,
            category = "metallb-all",
            printcolumn(name = "Protocol", type_ = "string", json_path = ".spec.protocol"),
            printcolumn(name = "Auto Assign", type_ = "boolean", json_path = ".spec.autoAssign"),
            printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses")
        )]
        #[x_kube(validation = Rule::new("!has(self.bgpAdvertisements) || size(self.bgpAdvertisements) == 0 || self.protocol == 'bgp'").message("bgpAdvertisements are only valid when protocol is bgp"))]
        #[serde(rename_all = "camelCase")]
        pub struct AddressPoolSpec {
            /// How the addresses are announced: `layer2` or `bgp`.
            pub protocol: super::Protocol,
            /// Addresses to hand out: CIDRs (`192.168.10.0/24`), ranges
            /// (`192.168.9.1-192.168.9.5`) or single addresses as a range (`1.1.1.1-1.1.1.1`).
            #[schemars(length(min = 1))]
            pub addresses: Vec<String>,
            /// Whether services get addresses from this pool without asking for it by name
            /// (default true).
            #[serde(default = "super::default_true")]
            pub auto_assign: bool,
            /// Skip the `.0` and `.255` addresses, which some buggy clients cannot reach.
            #[serde(default, rename = "avoidBuggyIPs", skip_serializing_if = "std::ops::Not::not")]
            pub avoid_buggy_ips: bool,
            /// Custom BGP advertisements; only valid with `protocol: bgp`.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub bgp_advertisements: Vec<super::LegacyBgpAdvertisement>,
        }
    };
}

pub(crate) fn default_true() -> bool {
    true
}

/// `metallb.io/v1alpha1` AddressPool, as first shipped with the operator.
pub mod v1alpha1 {
    use super::*;
    address_pool_version!(
        "v1alpha1",
        "A pool of addresses for LoadBalancer services (v1alpha1)."
    );
}

/// `metallb.io/v1beta1` AddressPool, the stored version.
pub mod v1beta1 {
    use super::*;
    address_pool_version!(
        "v1beta1",
        "A pool of addresses for LoadBalancer services, with the protocol that announces them."
    );
}
