//! What one node announces over BGP: which peers it talks to, and per peer which prefixes with
//! which attributes.
//!
//! This is the speaker's `ShouldAnnounce` + advertisement building (metallb-reference §1.5,
//! §1.6, §2.6, §2.7) as a pure function of the configuration, the node and the services with
//! their allocated addresses. The FRR model ([`super::frr`]) and `metallb plan -o json` are both
//! built from its result, so what the plan shows is what FRR is told.
//!
//! ```text
//!   Config ─┐
//!   Node ───┼─> announce() ─> NodeAnnouncement { peer -> [Route{prefix, localPref, communities}] }
//!   [AnnouncedService] ┘                          │
//!                                                 └─> frr::build() ─> FrrConfig ─> frr.conf
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;
use serde::Serialize;

use super::{
    address::Family,
    community::Community,
    config::{BgpAdvertisement, Config, Peer, PeerAddress, Pool},
    node::{Endpoints, Node},
    selector::{Labels, any_matches},
    service::ServiceKey,
};

/// A service with addresses, as the speaker sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnouncedService {
    /// `namespace/name`.
    pub key: ServiceKey,
    /// Service labels, for advertisement `serviceSelectors`.
    pub labels: Labels,
    /// The pool its addresses come from.
    pub pool: String,
    /// Its allocated addresses.
    pub ips: Vec<IpAddr>,
    /// `externalTrafficPolicy: Local`.
    pub traffic_policy_local: bool,
    /// Ready or serving endpoints; `None` when unknown (no EndpointSlice seen, e.g. a plan of
    /// manifests without them). Unknown counts as "serving on every node", so a plan without
    /// EndpointSlices shows what the nodes announce once the pods are up, rather than nothing.
    pub endpoints: Option<Endpoints>,
}

/// Why a node does not announce a service (upstream's `ShouldAnnounce` reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Silence {
    /// The node's `NetworkUnavailable` condition is true.
    NodeNetworkUnavailable,
    /// The node carries [`EXCLUDE_LB_LABEL`](super::node::EXCLUDE_LB_LABEL).
    NodeLabeledExcludeBalancers,
    /// Policy Cluster and no endpoint is ready or serving anywhere.
    NoEndpoints,
    /// Policy Local and no endpoint is ready or serving on this node.
    NoLocalEndpoints,
}

/// Which of a pool's BGP advertisements: the pool name and the index in
/// [`Pool::bgp_advertisements`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdvertisementRef {
    /// Pool name.
    pub pool: String,
    /// Index in the pool's `bgp_advertisements`.
    pub index: usize,
}

/// One route announced to one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The prefix: the service address masked to the advertisement's aggregation length.
    #[serde(serialize_with = "display")]
    pub prefix: IpNet,
    /// LOCAL_PREF, when an advertisement sets one.
    pub local_pref: Option<u32>,
    /// Communities of every advertisement that gives this prefix to this peer.
    #[serde(serialize_with = "communities")]
    pub communities: BTreeSet<Community>,
    /// The advertisements that produce it (for the FRR policy; not part of the JSON).
    #[serde(skip)]
    pub advertisements: BTreeSet<AdvertisementRef>,
}

/// The routes for one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerRoutes {
    /// BGPPeer name.
    pub peer: String,
    /// Routes, by prefix (IPv4 first, then by address and length).
    pub prefixes: Vec<Route>,
}

/// Everything one node announces over BGP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeAnnouncement {
    /// Node name.
    pub name: String,
    /// One entry per peer the node has a session with, by peer name; a peer that gets nothing
    /// is listed with no prefixes.
    pub bgp: Vec<PeerRoutes>,
}

/// The peers a node opens sessions to: those whose `nodeSelectors` select it (none = all), by
/// peer name. Excluded or network-unavailable nodes keep their sessions (upstream stops
/// announcing, it does not tear sessions down).
pub fn node_peers<'a>(config: &'a Config, node: &Node) -> Vec<&'a Peer> {
    config
        .peers
        .values()
        .filter(|peer| any_matches(&peer.node_selectors, &node.labels))
        .collect()
}

/// The address families whose routes a peer gets: its own address family, both when
/// `dualStackAddressFamily` is set or the session is unnumbered (upstream activates both AFs
/// for interface peers).
pub fn peer_families(peer: &Peer) -> Vec<Family> {
    match &peer.address {
        PeerAddress::Interface(_) => vec![Family::V4, Family::V6],
        _ if peer.dual_stack_address_family => vec![Family::V4, Family::V6],
        PeerAddress::Ip(ip) => vec![Family::of(ip)],
    }
}

/// Whether an advertisement lets this node announce to this peer: its `nodeSelectors` select
/// the node and its `peers` list names the peer (both empty = all).
pub fn advertisement_applies(adv: &BgpAdvertisement, node: &Node, peer: &Peer) -> bool {
    any_matches(&adv.node_selectors, &node.labels)
        && (adv.peers.is_empty() || adv.peers.contains(&peer.name))
}

/// Whether the node announces the service at all, and if not, why.
pub fn should_announce(node: &Node, service: &AnnouncedService) -> Result<(), Silence> {
    if node.network_unavailable {
        return Err(Silence::NodeNetworkUnavailable);
    }
    if node.excluded() {
        return Err(Silence::NodeLabeledExcludeBalancers);
    }
    let Some(endpoints) = &service.endpoints else {
        return Ok(());
    };
    if service.traffic_policy_local {
        if endpoints.nodes.contains(&node.name) {
            Ok(())
        } else {
            Err(Silence::NoLocalEndpoints)
        }
    } else if endpoints.any() {
        Ok(())
    } else {
        Err(Silence::NoEndpoints)
    }
}

/// The prefix an address is announced as under an advertisement.
pub fn aggregated(ip: IpAddr, adv: &BgpAdvertisement) -> IpNet {
    let len = match ip {
        IpAddr::V4(_) => adv.aggregation_length_v4,
        IpAddr::V6(_) => adv.aggregation_length_v6,
    };
    IpNet::new(ip, len.min(Family::of(&ip).bits()))
        .expect("invariant: length capped at the family width")
        .trunc()
}

/// Every advertisement of the configuration in a fixed order (pool name, then the pool's own
/// order), with its ordinal. The FRR policy numbers route-map entries by this ordinal and FRR
/// applies them in that order, so "the last LOCAL_PREF wins" means the same thing here and there.
pub fn advertisements(config: &Config) -> Vec<(usize, AdvertisementRef, &Pool, &BgpAdvertisement)> {
    config
        .pools
        .values()
        .flat_map(|pool| {
            pool.bgp_advertisements
                .iter()
                .enumerate()
                .map(move |(index, adv)| {
                    (
                        AdvertisementRef {
                            pool: pool.name.clone(),
                            index,
                        },
                        pool,
                        adv,
                    )
                })
        })
        .enumerate()
        .map(|(ordinal, (r, pool, adv))| (ordinal, r, pool, adv))
        .collect()
}

/// What a node announces: for every peer of the node, for every announced address of every
/// service, for every advertisement of the service's pool that selects this node, this peer and
/// this service, one route per distinct prefix. Routes two advertisements give the same prefix
/// merge their communities; LOCAL_PREF is the one of the last such advertisement in
/// [`advertisements`] order (what FRR does with the route-map this becomes).
pub fn announce(config: &Config, node: &Node, services: &[AnnouncedService]) -> NodeAnnouncement {
    let ads = advertisements(config);
    let announced: Vec<&AnnouncedService> = services
        .iter()
        .filter(|s| should_announce(node, s).is_ok())
        .collect();
    let bgp = node_peers(config, node)
        .into_iter()
        .map(|peer| {
            let families = peer_families(peer);
            let mut routes: BTreeMap<(Family, u128, u8), Route> = BTreeMap::new();
            for (_, adv_ref, pool, adv) in &ads {
                if !advertisement_applies(adv, node, peer) {
                    continue;
                }
                for svc in announced.iter().filter(|s| s.pool == pool.name) {
                    if !any_matches(&adv.service_selectors, &svc.labels) {
                        continue;
                    }
                    for ip in svc.ips.iter().filter(|ip| pool.contains(ip)) {
                        if !families.contains(&Family::of(ip)) {
                            continue;
                        }
                        let prefix = aggregated(*ip, adv);
                        let key = (
                            Family::of(ip),
                            super::address::ip_to_u128(prefix.network()),
                            prefix.prefix_len(),
                        );
                        let route = routes.entry(key).or_insert_with(|| Route {
                            prefix,
                            local_pref: None,
                            communities: BTreeSet::new(),
                            advertisements: BTreeSet::new(),
                        });
                        if adv.local_pref.is_some() {
                            route.local_pref = adv.local_pref;
                        }
                        route.communities.extend(adv.communities.iter().copied());
                        route.advertisements.insert(adv_ref.clone());
                    }
                }
            }
            PeerRoutes {
                peer: peer.name.clone(),
                prefixes: routes.into_values().collect(),
            }
        })
        .collect();
    NodeAnnouncement {
        name: node.name.clone(),
        bgp,
    }
}

fn display<S: serde::Serializer>(value: &IpNet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn communities<S: serde::Serializer>(value: &BTreeSet<Community>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(value.iter().map(ToString::to_string))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::{address::IpRange, node::EXCLUDE_LB_LABEL, selector::LabelSelector};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn peer(name: &str, addr: &str) -> Peer {
        Peer {
            connect_time: Some(Duration::from_secs(10)),
            ..Peer::ebgp_for_test(name, ip(addr))
        }
    }

    fn pool(name: &str, ranges: &[&str], ads: Vec<BgpAdvertisement>) -> Pool {
        Pool {
            name: name.into(),
            ranges: ranges.iter().map(|r| IpRange::parse(r).unwrap()).collect(),
            auto_assign: true,
            bgp_advertisements: ads,
            ..Default::default()
        }
    }

    fn config(pools: Vec<Pool>, peers: Vec<Peer>) -> Config {
        Config {
            pools: pools.into_iter().map(|p| (p.name.clone(), p)).collect(),
            peers: peers.into_iter().map(|p| (p.name.clone(), p)).collect(),
            bfd_profiles: BTreeMap::new(),
        }
    }

    fn svc(name: &str, pool: &str, ips: &[&str]) -> AnnouncedService {
        AnnouncedService {
            key: ServiceKey::new("default", name),
            pool: pool.into(),
            ips: ips.iter().map(|s| ip(s)).collect(),
            ..Default::default()
        }
    }

    fn prefixes(a: &NodeAnnouncement, peer: &str) -> Vec<String> {
        a.bgp
            .iter()
            .find(|p| p.peer == peer)
            .unwrap()
            .prefixes
            .iter()
            .map(|r| r.prefix.to_string())
            .collect()
    }

    /// The seed's §26.3.3.5 example: a /32 with NO_ADVERTISE and LOCAL_PREF 100, plus one
    /// deduplicated /30 aggregate with 8000:800 however many services there are.
    #[test]
    fn seed_aggregation_example() {
        let ads = vec![
            BgpAdvertisement {
                aggregation_length_v4: 32,
                local_pref: Some(100),
                communities: [Community::Standard(65535, 65282)].into(),
                ..Default::default()
            },
            BgpAdvertisement {
                aggregation_length_v4: 30,
                aggregation_length_v6: 124,
                communities: [Community::Standard(8000, 800)].into(),
                ..Default::default()
            },
        ];
        let mut p = peer("p", "10.0.0.1");
        p.dual_stack_address_family = true;
        let cfg = config(
            vec![pool(
                "adv",
                &["203.0.113.200/30", "fc00:f853:ccd:e799::/124"],
                ads,
            )],
            vec![p],
        );
        let services = [
            svc("a", "adv", &["203.0.113.200", "fc00:f853:ccd:e799::1"]),
            svc("b", "adv", &["203.0.113.201"]),
        ];
        let a = announce(&cfg, &Node::named("n"), &services);
        assert_eq!(
            prefixes(&a, "p"),
            [
                "203.0.113.200/30",
                "203.0.113.200/32",
                "203.0.113.201/32",
                "fc00:f853:ccd:e799::/124",
                "fc00:f853:ccd:e799::1/128"
            ]
        );
        let routes = &a.bgp[0].prefixes;
        assert_eq!(routes[0].local_pref, None);
        assert_eq!(
            routes[0].communities,
            [Community::Standard(8000, 800)].into()
        );
        assert_eq!(routes[1].local_pref, Some(100));
    }

    #[test]
    fn same_prefix_from_two_advertisements_merges_communities() {
        let ads = vec![
            BgpAdvertisement {
                communities: [Community::Standard(1, 1)].into(),
                local_pref: Some(50),
                ..Default::default()
            },
            BgpAdvertisement {
                communities: [Community::Large(1, 2, 3)].into(),
                local_pref: Some(70),
                ..Default::default()
            },
        ];
        let cfg = config(
            vec![pool("p", &["10.1.0.0/24"], ads)],
            vec![peer("r", "10.0.0.1")],
        );
        let a = announce(&cfg, &Node::named("n"), &[svc("s", "p", &["10.1.0.5"])]);
        let route = &a.bgp[0].prefixes[0];
        assert_eq!(
            route.communities,
            [Community::Standard(1, 1), Community::Large(1, 2, 3)].into()
        );
        assert_eq!(route.local_pref, Some(70));
        assert_eq!(route.advertisements.len(), 2);
    }

    #[test]
    fn traffic_policy_and_node_state_decide_announcement() {
        let n1 = Node::named("n1");
        let mut local = svc("s", "p", &["10.1.0.5"]);
        local.traffic_policy_local = true;
        assert_eq!(should_announce(&n1, &local), Ok(()));
        local.endpoints = Some(Endpoints {
            nodes: ["n2".to_string()].into(),
            without_node: false,
        });
        assert_eq!(should_announce(&n1, &local), Err(Silence::NoLocalEndpoints));
        assert_eq!(should_announce(&Node::named("n2"), &local), Ok(()));

        let mut cluster = svc("c", "p", &["10.1.0.6"]);
        cluster.endpoints = Some(Endpoints::default());
        assert_eq!(should_announce(&n1, &cluster), Err(Silence::NoEndpoints));
        cluster.endpoints = Some(Endpoints {
            nodes: BTreeSet::new(),
            without_node: true,
        });
        assert_eq!(should_announce(&n1, &cluster), Ok(()));

        let excluded = Node {
            labels: labels(&[(EXCLUDE_LB_LABEL, "")]),
            ..Node::named("x")
        };
        assert_eq!(
            should_announce(&excluded, &cluster),
            Err(Silence::NodeLabeledExcludeBalancers)
        );
        let down = Node {
            network_unavailable: true,
            ..Node::named("d")
        };
        assert_eq!(
            should_announce(&down, &cluster),
            Err(Silence::NodeNetworkUnavailable)
        );
    }

    #[test]
    fn selectors_and_families_filter_routes() {
        let rack_a = LabelSelector {
            match_labels: labels(&[("rack", "a")]),
            ..Default::default()
        };
        let ads = vec![
            BgpAdvertisement {
                source: "only-r1".into(),
                peers: vec!["r1".into()],
                ..Default::default()
            },
            BgpAdvertisement {
                source: "rack-a".into(),
                node_selectors: vec![rack_a.clone()],
                communities: [Community::Standard(2, 2)].into(),
                ..Default::default()
            },
            BgpAdvertisement {
                source: "web".into(),
                service_selectors: vec![LabelSelector {
                    match_labels: labels(&[("app", "web")]),
                    ..Default::default()
                }],
                communities: [Community::Standard(3, 3)].into(),
                ..Default::default()
            },
        ];
        let mut r2 = peer("r2", "10.0.0.2");
        r2.node_selectors = vec![rack_a];
        let cfg = config(
            vec![pool("p", &["10.1.0.0/24", "2001:db8::/64"], ads)],
            vec![peer("r1", "10.0.0.1"), r2, peer("r6", "fd00::1")],
        );
        let mut web = svc("web", "p", &["10.1.0.1", "2001:db8::1"]);
        web.labels = labels(&[("app", "web")]);
        let services = [web, svc("db", "p", &["10.1.0.2"])];

        let plain = announce(&cfg, &Node::named("n"), &services);
        let names: Vec<&str> = plain.bgp.iter().map(|p| p.peer.as_str()).collect();
        assert_eq!(names, ["r1", "r6"], "r2 selects only rack a");
        assert_eq!(prefixes(&plain, "r1"), ["10.1.0.1/32", "10.1.0.2/32"]);
        assert_eq!(
            plain.bgp[0].prefixes[0].communities,
            [Community::Standard(3, 3)].into()
        );
        assert_eq!(prefixes(&plain, "r6"), ["2001:db8::1/128"]);

        let in_a = Node {
            labels: labels(&[("rack", "a")]),
            ..Node::named("a1")
        };
        let a = announce(&cfg, &in_a, &services);
        assert_eq!(prefixes(&a, "r2"), ["10.1.0.1/32", "10.1.0.2/32"]);
        assert_eq!(
            a.bgp[1].prefixes[0].communities,
            [Community::Standard(2, 2), Community::Standard(3, 3)].into()
        );
        assert!(a.bgp[1].prefixes[1].communities == [Community::Standard(2, 2)].into());
    }
}
