//! Layer 2 election: which node answers ARP/NDP for a Service's addresses.
//!
//! The election has no state and no coordination; every speaker runs it on the same inputs and
//! gets the same answer. It follows upstream MetalLB (`speaker/layer2_controller.go`) step by
//! step so that a cluster mixing Go and Rust speakers agrees on the owner:
//!
//! 1. no endpoint that can serve anywhere → nobody announces;
//! 2. the pool's L2Advertisements whose `serviceSelectors` match the Service; a Service sharing
//!    its address (`allow-shared-ip`) is not announced if any of them has service selectors;
//! 3. candidates: live speakers (every node when membership is off), minus nodes with the
//!    `NetworkUnavailable` condition or the `exclude-from-external-load-balancers` label,
//!    restricted to nodes selected by one of those advertisements;
//! 4. with `externalTrafficPolicy: Local`, only candidates hosting an endpoint that can serve;
//! 5. sorted by the summed weight of the matching `preferredNodeSelectors` (descending), then by
//!    `sha256(node + "#" + first ingress IP)` (ascending bytes). The first one announces.
//!
//! Using the *first* ingress IP as the hash key puts both families of a dual-stack Service on the
//! same node. Adding a node moves only the addresses for which it sorts first; removing a
//! non-owner moves nothing.

use std::{cmp::Reverse, collections::BTreeSet, fmt, net::IpAddr, time::Duration};

use sha2::{Digest, Sha256};

use super::{
    config::L2Advertisement,
    node::{Endpoint, Node},
    selector::any_matches,
    service::LbService,
};

/// Everything the election looks at for one Service.
#[derive(Clone, Copy, Debug)]
pub struct ElectionInput<'a> {
    /// The Service (labels, sharing key, traffic policy).
    pub service: &'a LbService,
    /// Its ingress addresses, as in `status.loadBalancer.ingress`; the first is the hash key.
    pub ips: &'a [IpAddr],
    /// The L2Advertisements of the pool the addresses come from.
    pub advertisements: &'a [L2Advertisement],
    /// The Service's endpoints.
    pub endpoints: &'a [Endpoint],
    /// Every node.
    pub nodes: &'a [Node],
    /// Nodes whose speaker the membership layer sees alive; `None` when membership is off, in
    /// which case every node is assumed to run a speaker (as upstream does).
    pub live_speakers: Option<&'a BTreeSet<String>>,
    /// `--ignore-exclude-lb`: keep nodes labelled exclude-from-external-load-balancers.
    pub ignore_exclude_lb: bool,
}

/// The outcome of an election for one Service.
#[derive(Clone, Debug, PartialEq)]
pub struct Election {
    /// Candidates, best first; the first is the owner.
    pub ranking: Vec<String>,
    /// The advertisements that apply (their service selectors match).
    pub advertisements: Vec<L2Advertisement>,
}

impl Election {
    /// The node that announces.
    pub fn owner(&self) -> &str {
        &self.ranking[0]
    }

    /// The interfaces `node` answers on for this Service.
    pub fn interfaces_for(&self, node: &Node) -> Interfaces {
        interfaces_for(node, &self.advertisements)
    }
}

/// Why nobody announces a Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoOwner {
    /// The Service has no address.
    #[error("noIPs")]
    NoIps,
    /// No endpoint anywhere can serve.
    #[error("noEndpoints")]
    NoEndpoints,
    /// No L2Advertisement of the pool matches the Service.
    #[error("noMatchingAdvertisement")]
    NoMatchingAdvertisement,
    /// The address is shared and an advertisement selects services: upstream refuses, since the
    /// services sharing it could select different nodes.
    #[error("sharedIPWithServiceSelector")]
    SharedIpWithServiceSelector,
    /// With `externalTrafficPolicy: Local`, no candidate hosts a serving endpoint.
    #[error("noLocalEndpoints")]
    NoLocalEndpoints,
    /// No live, eligible, selected node.
    #[error("noAvailableNodes")]
    NoAvailableNodes,
}

/// Which interfaces a node answers on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interfaces {
    /// Every eligible interface.
    All,
    /// Only these (the union of the `interfaces` of the advertisements selecting the node).
    Only(BTreeSet<String>),
}

impl Interfaces {
    /// Whether an interface is allowed.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Interfaces::All => true,
            Interfaces::Only(set) => set.contains(name),
        }
    }
}

impl fmt::Display for Interfaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interfaces::All => f.write_str("*"),
            Interfaces::Only(set) => {
                f.write_str(&set.iter().cloned().collect::<Vec<_>>().join(","))
            }
        }
    }
}

/// Runs the election for one Service. `Ok` holds the ranking (owner first); `Err` says why
/// nobody announces.
pub fn elect(input: &ElectionInput<'_>) -> Result<Election, NoOwner> {
    let Some(first_ip) = input.ips.first() else {
        return Err(NoOwner::NoIps);
    };
    if !input.endpoints.iter().any(Endpoint::can_serve) {
        return Err(NoOwner::NoEndpoints);
    }
    let ads: Vec<L2Advertisement> = input
        .advertisements
        .iter()
        .filter(|ad| any_matches(&ad.service_selectors, &input.service.labels))
        .cloned()
        .collect();
    if ads.is_empty() {
        return Err(NoOwner::NoMatchingAdvertisement);
    }
    if input.service.sharing_key.is_some() && ads.iter().any(|ad| !ad.service_selectors.is_empty())
    {
        return Err(NoOwner::SharedIpWithServiceSelector);
    }

    let mut candidates: Vec<&Node> = input
        .nodes
        .iter()
        .filter(|n| {
            input
                .live_speakers
                .is_none_or(|live| live.contains(&n.name))
        })
        .filter(|n| !n.network_unavailable)
        .filter(|n| input.ignore_exclude_lb || !n.excluded())
        .filter(|n| {
            ads.iter()
                .any(|ad| any_matches(&ad.node_selectors, &n.labels))
        })
        .collect();
    if candidates.is_empty() {
        return Err(NoOwner::NoAvailableNodes);
    }
    if input.service.traffic_policy_local {
        let local: BTreeSet<&str> = input
            .endpoints
            .iter()
            .filter(|e| e.can_serve())
            .filter_map(|e| e.node.as_deref())
            .collect();
        candidates.retain(|n| local.contains(n.name.as_str()));
        if candidates.is_empty() {
            return Err(NoOwner::NoLocalEndpoints);
        }
    }

    let key = first_ip.to_string();
    candidates.sort_by_cached_key(|n| (Reverse(preference(n, &ads)), node_hash(&n.name, &key)));
    Ok(Election {
        ranking: candidates.into_iter().map(|n| n.name.clone()).collect(),
        advertisements: ads,
    })
}

/// The summed weight of the `preferredNodeSelectors` terms, over the given advertisements,
/// that select the node.
pub fn preference(node: &Node, ads: &[L2Advertisement]) -> u64 {
    ads.iter()
        .filter(|ad| any_matches(&ad.node_selectors, &node.labels))
        .flat_map(|ad| &ad.preferred_nodes)
        .filter(|(_, sel)| sel.matches(&node.labels))
        .map(|(w, _)| u64::from(*w))
        .sum()
}

/// `sha256(node + "#" + ip)`, the tie-breaker upstream sorts by (byte-wise ascending).
pub fn node_hash(node: &str, ip: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update(b"#");
    h.update(ip.as_bytes());
    h.finalize().into()
}

/// The interfaces a node answers on, given the advertisements that apply to the Service: every
/// interface if one advertisement selecting the node lists none, otherwise the union of the
/// lists. `Only(∅)` means no advertisement selects the node.
pub fn interfaces_for(node: &Node, ads: &[L2Advertisement]) -> Interfaces {
    let mut set = BTreeSet::new();
    for ad in ads
        .iter()
        .filter(|ad| any_matches(&ad.node_selectors, &node.labels))
    {
        if ad.interfaces.is_empty() {
            return Interfaces::All;
        }
        set.extend(ad.interfaces.iter().cloned());
    }
    Interfaces::Only(set)
}

// === partition fence ===

/// The rule that keeps a partitioned owner from answering forever.
///
/// Membership alone cannot tell "the others died" from "I am cut off": both look like every
/// peer going silent. So a speaker also watches a *witness* outside the speaker set (in a
/// cluster, the API server; in the lab, a host on the client side) and fences itself, i.e.
/// withdraws every announcement, only when it has lost **both**:
///
/// - every peer (membership shows no live speaker but itself, while peers are configured), and
/// - the witness (no successful check for [`FenceRule::deadline`]).
///
/// Requiring both keeps the two common failures harmless: a dead witness alone fences nobody
/// (the speakers still see each other), and dead peers alone fence nobody (the survivor still
/// sees the witness, so it takes over at membership speed).
///
/// **Bound.** If a node's links are cut at `t0`, its last successful witness check is before
/// `t0` and its peers are declared dead by `t0 + detection`, so it withdraws by
/// `t0 + max(deadline, detection) + tick`, where `tick` is how often the speaker re-evaluates.
/// The other side takes over at `t0 + detection`; two nodes may answer only in between, and at
/// most one after the bound. A partition that leaves *both* sides seeing the witness is not
/// fenced (both announce until it heals, as upstream does, #740); a Lease per address held
/// through the API server would close that case at the price of failover tied to lease expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FenceRule {
    /// How long without a successful witness check counts as having lost the witness.
    pub deadline: Duration,
}

impl FenceRule {
    /// Whether the speaker must withdraw everything. `since_witness_ok` is the time since the
    /// last successful witness check (`None`: never succeeded); `live_peers` the live speakers
    /// other than itself; `configured_peers` how many peers it was told to join.
    pub fn fenced(
        &self,
        since_witness_ok: Option<Duration>,
        live_peers: usize,
        configured_peers: usize,
    ) -> bool {
        configured_peers > 0
            && live_peers == 0
            && since_witness_ok.is_none_or(|d| d >= self.deadline)
    }

    /// The worst-case time from a cut to the cut-off owner withdrawing (see the type's docs).
    pub fn bound(&self, detection: Duration, tick: Duration) -> Duration {
        self.deadline.max(detection) + tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{node::EXCLUDE_LB_LABEL, selector::LabelSelector};

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn ep(node: &str) -> Endpoint {
        Endpoint {
            node: Some(node.into()),
            ready: Some(true),
            serving: Some(true),
        }
    }

    fn ad() -> L2Advertisement {
        L2Advertisement {
            source: "L2Advertisement/l2".into(),
            ..Default::default()
        }
    }

    struct Case {
        svc: LbService,
        ips: Vec<IpAddr>,
        ads: Vec<L2Advertisement>,
        eps: Vec<Endpoint>,
        nodes: Vec<Node>,
        live: Option<BTreeSet<String>>,
    }

    impl Case {
        fn new(nodes: &[&str]) -> Case {
            Case {
                svc: LbService::default(),
                ips: vec!["192.168.10.1".parse().unwrap()],
                ads: vec![ad()],
                eps: vec![ep(nodes[0])],
                nodes: nodes.iter().map(|n| node(n, &[])).collect(),
                live: None,
            }
        }

        fn run(&self) -> Result<Election, NoOwner> {
            elect(&ElectionInput {
                service: &self.svc,
                ips: &self.ips,
                advertisements: &self.ads,
                endpoints: &self.eps,
                nodes: &self.nodes,
                live_speakers: self.live.as_ref(),
                ignore_exclude_lb: false,
            })
        }

        fn owner(&self) -> String {
            self.run().unwrap().owner().to_string()
        }
    }

    /// The digest upstream's Go code computes (`sha256.Sum256([]byte(node + "#" + ip))`),
    /// checked against `printf 'node1#10.77.0.200' | sha256sum`.
    #[test]
    fn hash_matches_sha256sum_of_node_hash_ip() {
        let hex: String = node_hash("node1", "10.77.0.200")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "f95064be87af478b6514bc62578706d621b41323bdcd970bf9926b2acbca328a"
        );
    }

    /// Rankings computed outside this code (Python `hashlib`, sorting digests as bytes like Go's
    /// `bytes.Compare`), so a Go speaker and ours agree on these owners.
    #[test]
    fn rankings_match_an_independent_computation() {
        let table = [
            ("10.77.0.200", ["node4", "node5", "node3", "node2", "node1"]),
            (
                "fd00:77::200",
                ["node3", "node4", "node2", "node1", "node5"],
            ),
            (
                "192.168.10.1",
                ["node5", "node4", "node3", "node1", "node2"],
            ),
            ("fc00::10", ["node1", "node4", "node5", "node2", "node3"]),
        ];
        for (ip, expected) in table {
            let mut case = Case::new(&["node1", "node2", "node3", "node4", "node5"]);
            case.ips = vec![ip.parse().unwrap()];
            assert_eq!(case.run().unwrap().ranking, expected, "{ip}");
        }
    }

    #[test]
    fn ranking_is_by_hash_ascending() {
        let case = Case::new(&["node1", "node2", "node3", "node4"]);
        let election = case.run().unwrap();
        let mut expected: Vec<String> = case.nodes.iter().map(|n| n.name.clone()).collect();
        expected.sort_by_key(|n| node_hash(n, "192.168.10.1"));
        assert_eq!(election.ranking, expected);
        // Independent of input order.
        let mut reversed = Case::new(&["node4", "node3", "node2", "node1"]);
        reversed.eps = case.eps.clone();
        assert_eq!(reversed.run().unwrap().ranking, expected);
    }

    #[test]
    fn dual_stack_hashes_the_first_ip_only() {
        let mut case = Case::new(&["a", "b", "c", "d", "e"]);
        case.ips = vec!["192.168.10.7".parse().unwrap(), "fc00::7".parse().unwrap()];
        let both = case.owner();
        case.ips.truncate(1);
        assert_eq!(case.owner(), both);
    }

    #[test]
    fn ipv6_key_is_the_canonical_text_form() {
        let mut case = Case::new(&["a", "b", "c", "d", "e", "f"]);
        case.ips = vec!["fc00:0:0::0:10".parse().unwrap()];
        let mut names: Vec<&str> = vec!["a", "b", "c", "d", "e", "f"];
        names.sort_by_key(|n| node_hash(n, "fc00::10"));
        assert_eq!(case.owner(), names[0]);
    }

    #[test]
    fn preference_weight_beats_hash() {
        let mut case = Case::new(&["n1", "n2", "n3"]);
        let natural = case.run().unwrap().ranking;
        // Prefer the natural last one.
        let last = natural[2].clone();
        case.nodes = case
            .nodes
            .iter()
            .map(|n| {
                if n.name == last {
                    node(&n.name, &[("tier", "gold")])
                } else {
                    node(&n.name, &[])
                }
            })
            .collect();
        case.ads[0].preferred_nodes = vec![(10, sel(&[("tier", "gold")]))];
        let ranking = case.run().unwrap().ranking;
        assert_eq!(ranking, vec![last, natural[0].clone(), natural[1].clone()]);
    }

    #[test]
    fn preference_weights_are_summed_across_terms_and_ads() {
        let mut case = Case::new(&["x", "y"]);
        case.nodes = vec![
            node("x", &[("a", "1")]),
            node("y", &[("b", "1"), ("c", "1")]),
        ];
        case.ads = vec![
            L2Advertisement {
                preferred_nodes: vec![(50, sel(&[("a", "1")])), (30, sel(&[("b", "1")]))],
                ..ad()
            },
            L2Advertisement {
                preferred_nodes: vec![(30, sel(&[("c", "1")]))],
                ..ad()
            },
        ];
        // y: 30 + 30 = 60 > x: 50.
        assert_eq!(case.run().unwrap().ranking, vec!["y", "x"]);
        assert_eq!(preference(&case.nodes[0], &case.ads), 50);
        assert_eq!(preference(&case.nodes[1], &case.ads), 60);
    }

    #[test]
    fn equal_weights_fall_back_to_hash() {
        let mut case = Case::new(&["n1", "n2", "n3", "n4"]);
        let natural = case.run().unwrap().ranking;
        for n in &mut case.nodes {
            n.labels.insert("all".into(), "yes".into());
        }
        case.ads[0].preferred_nodes = vec![(7, sel(&[("all", "yes")]))];
        assert_eq!(case.run().unwrap().ranking, natural);
    }

    #[test]
    fn no_serving_endpoint_means_nobody() {
        let mut case = Case::new(&["n1", "n2"]);
        case.eps = vec![];
        assert_eq!(case.run(), Err(NoOwner::NoEndpoints));
        case.eps = vec![Endpoint {
            node: Some("n1".into()),
            ready: Some(false),
            serving: Some(false),
        }];
        assert_eq!(case.run(), Err(NoOwner::NoEndpoints));
    }

    #[test]
    fn ready_unset_counts_as_ready_and_serving_counts_when_not_ready() {
        assert!(
            Endpoint {
                node: None,
                ready: None,
                serving: None
            }
            .can_serve()
        );
        assert!(
            Endpoint {
                node: None,
                ready: Some(false),
                serving: Some(true)
            }
            .can_serve()
        );
        assert!(
            !Endpoint {
                node: None,
                ready: Some(false),
                serving: None
            }
            .can_serve()
        );
    }

    #[test]
    fn traffic_policy_local_keeps_only_nodes_with_endpoints() {
        let names = ["n1", "n2", "n3", "n4", "n5"];
        let mut case = Case::new(&names);
        case.svc.traffic_policy_local = true;
        for only in names {
            case.eps = vec![ep(only)];
            assert_eq!(case.run().unwrap().ranking, vec![only.to_string()]);
        }
        // A terminating-but-serving endpoint keeps its node; a not-ready one does not.
        case.eps = vec![
            Endpoint {
                node: Some("n2".into()),
                ready: Some(false),
                serving: Some(true),
            },
            Endpoint {
                node: Some("n3".into()),
                ready: Some(false),
                serving: Some(false),
            },
        ];
        assert_eq!(case.run().unwrap().ranking, vec!["n2"]);
        // Endpoints only on a node that is not a candidate (no speaker there).
        case.live = Some(["n1".to_string()].into());
        assert_eq!(case.run(), Err(NoOwner::NoLocalEndpoints));
    }

    #[test]
    fn traffic_policy_cluster_ignores_where_endpoints_are() {
        let mut case = Case::new(&["n1", "n2", "n3"]);
        let owner = case.owner();
        case.eps = vec![Endpoint {
            node: None,
            ready: None,
            serving: None,
        }];
        assert_eq!(case.owner(), owner);
    }

    #[test]
    fn node_selectors_restrict_candidates() {
        let mut case = Case::new(&["n1", "n2", "n3"]);
        case.nodes = vec![
            node("n1", &[("l2", "yes")]),
            node("n2", &[]),
            node("n3", &[("l2", "yes")]),
        ];
        case.ads[0].node_selectors = vec![sel(&[("l2", "yes")])];
        let mut ranking = case.run().unwrap().ranking;
        ranking.sort();
        assert_eq!(ranking, vec!["n1", "n3"]);
        // A second advertisement selecting n2 widens it (union over ads).
        case.ads.push(L2Advertisement {
            node_selectors: vec![sel(&[])],
            ..ad()
        });
        assert_eq!(case.run().unwrap().ranking.len(), 3);
    }

    #[test]
    fn service_selectors_pick_the_advertisements() {
        let mut case = Case::new(&["n1", "n2"]);
        case.ads[0].service_selectors = vec![sel(&[("app", "web")])];
        assert_eq!(case.run(), Err(NoOwner::NoMatchingAdvertisement));
        case.svc.labels.insert("app".into(), "web".into());
        assert!(case.run().is_ok());
        // Sharing an address with a service-selecting ad: refused, like upstream.
        case.svc.sharing_key = Some("k".into());
        assert_eq!(case.run(), Err(NoOwner::SharedIpWithServiceSelector));
    }

    #[test]
    fn network_unavailable_and_exclude_lb_nodes_are_dropped() {
        let mut case = Case::new(&["n1", "n2", "n3"]);
        case.nodes[0].network_unavailable = true;
        case.nodes[1]
            .labels
            .insert(EXCLUDE_LB_LABEL.into(), String::new());
        assert_eq!(case.run().unwrap().ranking, vec!["n3"]);
        case.nodes[2].network_unavailable = true;
        assert_eq!(case.run(), Err(NoOwner::NoAvailableNodes));
        let input = ElectionInput {
            service: &case.svc,
            ips: &case.ips,
            advertisements: &case.ads,
            endpoints: &case.eps,
            nodes: &case.nodes,
            live_speakers: None,
            ignore_exclude_lb: true,
        };
        assert_eq!(elect(&input).unwrap().ranking, vec!["n2"]);
    }

    #[test]
    fn only_live_speakers_are_candidates() {
        let mut case = Case::new(&["n1", "n2", "n3", "n4"]);
        let natural = case.run().unwrap().ranking;
        // Losing the owner hands the address to the runner-up; losing a non-owner moves nothing.
        case.live = Some(natural[1..].iter().cloned().collect());
        assert_eq!(case.owner(), natural[1]);
        case.live = Some(
            natural
                .iter()
                .filter(|n| **n != natural[2])
                .cloned()
                .collect(),
        );
        assert_eq!(case.owner(), natural[0]);
        case.live = Some(BTreeSet::new());
        assert_eq!(case.run(), Err(NoOwner::NoAvailableNodes));
    }

    #[test]
    fn adding_a_node_moves_only_addresses_it_wins() {
        let base = ["n1", "n2", "n3"];
        let mut grown = base.to_vec();
        grown.push("n4");
        for i in 0..64u8 {
            let ip: IpAddr = format!("10.0.0.{i}").parse().unwrap();
            let mut a = Case::new(&base);
            a.ips = vec![ip];
            let mut b = Case::new(&grown);
            b.ips = vec![ip];
            let (before, after) = (a.owner(), b.owner());
            assert!(
                after == before || after == "n4",
                "{ip}: {before} -> {after}"
            );
        }
    }

    #[test]
    fn fence_needs_both_peers_and_witness_lost() {
        let rule = FenceRule {
            deadline: Duration::from_secs(1),
        };
        let late = Some(Duration::from_millis(1500));
        let fresh = Some(Duration::from_millis(200));
        // Cut off: no peers, witness silent for longer than the deadline (or never seen).
        assert!(rule.fenced(late, 0, 1));
        assert!(rule.fenced(None, 0, 2));
        // Peers died but the witness answers: this node is the survivor, it keeps announcing.
        assert!(!rule.fenced(fresh, 0, 1));
        // Witness down but peers visible: nobody is fenced.
        assert!(!rule.fenced(late, 1, 1));
        // A single-speaker setup (no peers configured) never fences itself.
        assert!(!rule.fenced(None, 0, 0));
        // Exactly at the deadline counts as lost.
        assert!(rule.fenced(Some(Duration::from_secs(1)), 0, 1));
        assert_eq!(
            rule.bound(Duration::from_millis(400), Duration::from_millis(100)),
            Duration::from_millis(1100)
        );
    }

    #[test]
    fn interfaces_are_the_union_unless_one_ad_allows_all() {
        let n = node("n1", &[("zone", "a")]);
        let with = |ifs: &[&str], nodes: Vec<LabelSelector>| L2Advertisement {
            interfaces: ifs.iter().map(|s| s.to_string()).collect(),
            node_selectors: nodes,
            ..ad()
        };
        let ads = vec![with(&["eth0"], vec![]), with(&["eth1"], vec![])];
        assert_eq!(
            interfaces_for(&n, &ads),
            Interfaces::Only(["eth0".to_string(), "eth1".to_string()].into())
        );
        // An ad not selecting this node does not contribute.
        let ads = vec![
            with(&["eth0"], vec![]),
            with(&[], vec![sel(&[("zone", "b")])]),
        ];
        assert_eq!(
            interfaces_for(&n, &ads),
            Interfaces::Only(["eth0".to_string()].into())
        );
        let ads = vec![with(&["eth0"], vec![]), with(&[], vec![])];
        assert_eq!(interfaces_for(&n, &ads), Interfaces::All);
        assert!(Interfaces::All.allows("anything"));
    }
}
