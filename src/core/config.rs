//! The resolved MetalLB configuration: what every kind of `metallb.io` resource, in either the
//! OpenShift 4.10 style (AddressPool with inline protocol) or the current style (IPAddressPool
//! plus advertisements), means once it has been validated.
//!
//! It is built from API objects by [`crate::config`]; everything here is plain data with
//! names resolved (community aliases replaced by values, pool selectors replaced by the pools they
//! select), so the allocator and the speaker never look at API objects.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use super::{address::IpRange, community::Community, selector::LabelSelector};

/// The whole configuration, keyed by object name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Address pools, from IPAddressPools and legacy AddressPools.
    pub pools: BTreeMap<String, Pool>,
    /// BGP peers.
    pub peers: BTreeMap<String, Peer>,
    /// BFD profiles.
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
}

/// A pool of addresses and how its addresses are announced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pool {
    /// Object name; services ask for it with the `address-pool` annotation.
    pub name: String,
    /// The address ranges, in the order written.
    pub ranges: Vec<IpRange>,
    /// Whether services get addresses from it without asking.
    pub auto_assign: bool,
    /// Skip IPv4 addresses ending in `.0` and `.255`.
    pub avoid_buggy_ips: bool,
    /// Restriction to some namespaces or services, if any.
    pub allocation: Option<ServiceAllocation>,
    /// Layer 2 advertisements that announce this pool.
    pub l2_advertisements: Vec<L2Advertisement>,
    /// BGP advertisements that announce this pool.
    pub bgp_advertisements: Vec<BgpAdvertisement>,
}

impl Pool {
    /// Whether an address belongs to the pool.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }
}

/// Which services a pool serves, and its rank among such pools.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceAllocation {
    /// Lower is tried first; 0 means unset and sorts after every positive priority.
    pub priority: u32,
    /// Namespaces allowed by name.
    pub namespaces: BTreeSet<String>,
    /// Namespaces allowed by label.
    pub namespace_selectors: Vec<LabelSelector>,
    /// Services allowed by label.
    pub service_selectors: Vec<LabelSelector>,
}

/// A layer 2 announcement rule for a pool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct L2Advertisement {
    /// Where it came from, e.g. `L2Advertisement/l2` or `AddressPool/doc-example`.
    pub source: String,
    /// Nodes that may answer; empty means every node.
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to answer on; empty means every eligible interface.
    pub interfaces: Vec<String>,
    /// Services announced; empty means every service.
    pub service_selectors: Vec<LabelSelector>,
    /// Weighted preferences for the announcing node.
    pub preferred_nodes: Vec<(u32, LabelSelector)>,
}

/// A BGP announcement rule for a pool.
#[derive(Clone, Debug, PartialEq)]
pub struct BgpAdvertisement {
    /// Where it came from, e.g. `BGPAdvertisement/ads` or `AddressPool/doc-example-bgp-adv[1]`.
    pub source: String,
    /// Prefix length for IPv4 addresses (32 = no aggregation).
    pub aggregation_length_v4: u8,
    /// Prefix length for IPv6 addresses (128 = no aggregation).
    pub aggregation_length_v6: u8,
    /// LOCAL_PREF, if set.
    pub local_pref: Option<u32>,
    /// Communities, aliases resolved.
    pub communities: BTreeSet<Community>,
    /// Nodes that announce; empty means every node.
    pub node_selectors: Vec<LabelSelector>,
    /// Peer names to announce to; empty means every peer.
    pub peers: Vec<String>,
    /// Services announced; empty means every service.
    pub service_selectors: Vec<LabelSelector>,
}

impl Default for BgpAdvertisement {
    fn default() -> Self {
        BgpAdvertisement {
            source: String::new(),
            aggregation_length_v4: 32,
            aggregation_length_v6: 128,
            local_pref: None,
            communities: BTreeSet::new(),
            node_selectors: Vec::new(),
            peers: Vec::new(),
            service_selectors: Vec::new(),
        }
    }
}

/// The peer's AS number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAsn {
    /// A fixed number.
    Number(u32),
    /// Same as ours (iBGP), whatever it is.
    Internal,
    /// Anything but ours (eBGP).
    External,
}

/// Where the peer is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerAddress {
    /// A numbered session.
    Ip(IpAddr),
    /// An unnumbered session on an interface.
    Interface(String),
}

/// The session password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Password {
    /// Given in the BGPPeer.
    Plain(String),
    /// In a basic-auth Secret, key `password`.
    Secret {
        /// Secret name.
        name: String,
        /// Secret namespace (MetalLB's own when unset).
        namespace: Option<String>,
    },
}

/// A BGP peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    /// Object name.
    pub name: String,
    /// Our AS number.
    pub my_asn: u32,
    /// The peer's AS number.
    pub asn: PeerAsn,
    /// AS number presented instead of `my_asn`.
    pub local_asn: Option<u32>,
    /// Where to connect.
    pub address: PeerAddress,
    /// Source address of the session.
    pub source_address: Option<IpAddr>,
    /// Peer TCP port, if not 179.
    pub port: Option<u16>,
    /// Hold time; `None` keeps FRR's default.
    pub hold_time: Option<Duration>,
    /// Keepalive interval; `None` keeps FRR's default.
    pub keepalive_time: Option<Duration>,
    /// Connect retry time.
    pub connect_time: Option<Duration>,
    /// Router ID.
    pub router_id: Option<Ipv4Addr>,
    /// TCP MD5 password.
    pub password: Option<Password>,
    /// BFD profile name.
    pub bfd_profile: Option<String>,
    /// Graceful restart.
    pub graceful_restart: bool,
    /// Nodes that open the session; empty means every node.
    pub node_selectors: Vec<LabelSelector>,
    /// eBGP multi-hop.
    pub ebgp_multihop: bool,
    /// VRF; `None` is the default VRF.
    pub vrf: Option<String>,
    /// Announce both families over this session.
    pub dual_stack_address_family: bool,
}

#[cfg(test)]
impl Peer {
    /// An eBGP peer from AS 64500 to AS 64501 at `address` with every option unset (tests).
    pub(crate) fn ebgp_for_test(name: &str, address: std::net::IpAddr) -> Peer {
        Peer {
            name: name.into(),
            my_asn: 64500,
            asn: PeerAsn::Number(64501),
            local_asn: None,
            address: PeerAddress::Ip(address),
            source_address: None,
            port: None,
            hold_time: None,
            keepalive_time: None,
            connect_time: None,
            router_id: None,
            password: None,
            bfd_profile: None,
            graceful_restart: false,
            node_selectors: Vec::new(),
            ebgp_multihop: false,
            vrf: None,
            dual_stack_address_family: false,
        }
    }
}

/// A BFD profile; `None` fields keep FRR's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BfdProfile {
    /// Object name.
    pub name: String,
    /// Receive interval in ms.
    pub receive_interval: Option<u32>,
    /// Transmit interval in ms.
    pub transmit_interval: Option<u32>,
    /// Detection multiplier.
    pub detect_multiplier: Option<u32>,
    /// Echo interval in ms.
    pub echo_interval: Option<u32>,
    /// Echo mode.
    pub echo_mode: bool,
    /// Passive mode.
    pub passive_mode: bool,
    /// Minimum incoming TTL (multi-hop).
    pub minimum_ttl: Option<u32>,
}
