//! What the allocator and the speaker need to know about a Service, without Kubernetes types.

use std::{collections::BTreeMap, fmt, net::IpAddr};

use serde::Serialize;

use super::address::Family;

/// `namespace/name` of a Service.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ServiceKey {
    /// A key from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Transport protocol of a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Protocol {
    /// TCP (the Kubernetes default).
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP.
    #[serde(rename = "SCTP")]
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// One service port: only the protocol and number matter for sharing an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Port {
    /// Protocol.
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// `spec.ipFamilyPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum IpFamilyPolicy {
    /// One address, of the primary family.
    #[default]
    SingleStack,
    /// Both families when the pool has both, otherwise the primary.
    PreferDualStack,
    /// Both families from one pool, or nothing.
    RequireDualStack,
}

/// A LoadBalancer Service as the allocator sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LbService {
    /// `namespace/name`.
    pub key: ServiceKey,
    /// Service labels (for `serviceSelectors`).
    pub labels: BTreeMap<String, String>,
    /// Labels of the service's namespace (for `namespaceSelectors`), when known.
    pub namespace_labels: BTreeMap<String, String>,
    /// Addresses asked for with `spec.loadBalancerIP` or the `loadBalancerIPs` annotation.
    pub requested_ips: Vec<IpAddr>,
    /// Pool asked for with the `address-pool` annotation.
    pub requested_pool: Option<String>,
    /// The `allow-shared-ip` sharing key.
    pub sharing_key: Option<String>,
    /// What services sharing an address must agree on besides the key: with
    /// `externalTrafficPolicy: Local`, the pod selector (they must reach the same pods); empty with
    /// `Cluster`.
    pub backend_key: String,
    /// Ports; services sharing an address must not overlap on (protocol, port).
    pub ports: Vec<Port>,
    /// Address families, primary first (from `spec.ipFamilies` / `spec.clusterIPs`).
    pub families: Vec<Family>,
    /// `spec.ipFamilyPolicy`.
    pub family_policy: IpFamilyPolicy,
    /// `spec.externalTrafficPolicy: Local`.
    pub traffic_policy_local: bool,
    /// Addresses in `status.loadBalancer.ingress` now.
    pub current_ips: Vec<IpAddr>,
}

impl LbService {
    /// The families to allocate, primary first, and whether every one of them is required.
    pub fn wanted_families(&self) -> (Vec<Family>, bool) {
        let primary = self.families.first().copied().unwrap_or(Family::V4);
        match self.family_policy {
            IpFamilyPolicy::SingleStack => (vec![primary], true),
            IpFamilyPolicy::RequireDualStack => (vec![primary, primary.other()], true),
            // Since upstream 0.15 the LB families follow the ClusterIP families: a
            // PreferDualStack service with one cluster IP gets one LB address.
            IpFamilyPolicy::PreferDualStack if self.families.len() >= 2 => {
                (vec![primary, primary.other()], false)
            }
            IpFamilyPolicy::PreferDualStack => (vec![primary], true),
        }
    }
}

/// Each Service's addresses and the pool holding all of them: what the controller assigned
/// (from Service status) or what a plan would assign. The one input both announcers read.
pub type Addresses = std::collections::BTreeMap<ServiceKey, (String, Vec<IpAddr>)>;
