//! The FRR configuration of one speaker, as data: what `frr.conf` says, already in the order and
//! the spelling FRR 8.4.4 prints back in `show running-config` (frr/CANONICAL.md). The askama
//! templates in `templates/` only lay these values out; every decision is made here, in
//! [`build`], so it can be tested without rendering.
//!
//! # Outbound policy (why service churn only touches `network` lines)
//!
//! Upstream MetalLB writes one prefix-list entry per announced prefix per peer (plus one per
//! prefix per LOCAL_PREF / community value). Every Service added or removed then rewrites those
//! lists, and FRR 8.4 reads prefix-lists in quadratic time (frr-reference §0.2: 1,000 entries
//! took 12.9 s). Here the policy depends on the configuration only:
//!
//! - every (pool, advertisement, family) gets one shared prefix-list `<pool>_<adv>_<ipv4|ipv6>`
//!   built from the pool's CIDRs with `ge L le L`, L the advertisement's aggregation length, so it
//!   matches exactly the prefixes that advertisement can produce (pools do not overlap and
//!   L ≥ every CIDR length, so no other pool's prefix can match);
//! - each peer's `<id>-out` route-map has, for each advertisement that selects this node and this
//!   peer, attribute entries (`set local-preference` / `set community … additive` /
//!   `set large-community … additive`, each with `on-match next`) and one permit entry, all
//!   matching that advertisement's list; a final `deny 65535` makes "nothing" explicit;
//! - which prefixes exist is carried by the router-level `network` lines alone: BGP announces
//!   only what is in its table, and `no bgp network import-check` puts every `network` there.
//!
//! Adding or removing a Service therefore changes `network` lines and nothing else, and a
//! changed `network` line does not reset sessions (CANONICAL.md §11). The one exception is an
//! advertisement with `serviceSelectors`: not every address of the pool may be announced under
//! it, so its list holds the selected services' prefixes, with each entry's seq derived from the
//! address's position in the pool so that one service more or less adds or removes exactly one
//! entry and never renumbers the others.
//!
//! Route-map entry numbers come from fixed per-purpose ranges ([`SEQ_LOCAL_PREF`],
//! [`SEQ_COMMUNITY`], [`SEQ_LARGE_COMMUNITY`], [`SEQ_PERMIT`]) plus the advertisement's ordinal
//! in the configuration, so adding an attribute to one advertisement adds one entry and renumbers
//! nothing (CANONICAL.md §10, last paragraph).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::{IpAddr, Ipv4Addr},
    str::FromStr,
};

use ipnet::IpNet;

use super::{
    address::{Family, ip_to_u128},
    bgp::{
        AdvertisementRef, NodeAnnouncement, advertisement_applies, advertisements, node_peers,
        peer_families,
    },
    community::Community,
    config::{BgpAdvertisement, Config, Password, Peer, PeerAddress, PeerAsn, Pool},
    node::Node,
};

/// First route-map seq of the `set local-preference` entries.
pub const SEQ_LOCAL_PREF: u32 = 10000;
/// First route-map seq of the `set community` entries.
pub const SEQ_COMMUNITY: u32 = 20000;
/// First route-map seq of the `set large-community` entries.
pub const SEQ_LARGE_COMMUNITY: u32 = 30000;
/// First route-map seq of the permit entries.
///
/// Each range holds 10,000 seqs, two per (pool, advertisement) pair (IPv4, IPv6), so the
/// numbering is collision-free up to 5,000 such pairs in one configuration.
pub const SEQ_PERMIT: u32 = 40000;
/// Seq of the final deny entry of every outbound route-map.
pub const SEQ_DENY: u32 = 65535;
/// Seq of the inbound route-map's only entry (upstream's number).
pub const SEQ_IN_DENY: u32 = 20;

/// MetalLB's log levels (`--log-level` of the speaker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    All,
    /// Debug.
    Debug,
    /// Info (the default).
    #[default]
    Info,
    /// Warnings.
    Warn,
    /// Errors.
    Error,
    /// Nothing.
    None,
}

/// FRR's own log levels (`log stdout LEVEL`), most severe first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum FrrLogLevel {
    /// `emergencies`.
    Emergencies,
    /// `alerts`.
    Alerts,
    /// `critical`.
    Critical,
    /// `errors`.
    Errors,
    /// `warnings`.
    Warnings,
    /// `notifications`.
    Notifications,
    /// `informational` (MetalLB's default, info).
    #[default]
    Informational,
    /// `debugging`.
    Debugging,
}

impl FrrLogLevel {
    const NAMES: [(&'static str, FrrLogLevel); 8] = [
        ("emergencies", FrrLogLevel::Emergencies),
        ("alerts", FrrLogLevel::Alerts),
        ("critical", FrrLogLevel::Critical),
        ("errors", FrrLogLevel::Errors),
        ("warnings", FrrLogLevel::Warnings),
        ("notifications", FrrLogLevel::Notifications),
        ("informational", FrrLogLevel::Informational),
        ("debugging", FrrLogLevel::Debugging),
    ];

    /// FRR's name of the level.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, level)| *level == self)
            .map_or("informational", |(name, _)| name)
    }

    /// The `log` line, to `file` or else stdout. FRR hides its default level (debugging), so
    /// that one has no level (CANONICAL.md §3, fact 6).
    pub fn log_line(self, file: Option<&str>) -> String {
        let target = match file {
            Some(file) => format!("log file {file}"),
            None => "log stdout".to_string(),
        };
        match self {
            FrrLogLevel::Debugging => target,
            level => format!("{target} {}", level.name()),
        }
    }

    /// The debug switches upstream's template turns on at `debugging` (frr.tmpl), in the order
    /// FRR prints them.
    pub fn debug_switches(self) -> &'static [&'static str] {
        if self == FrrLogLevel::Debugging {
            &DEBUG_SWITCHES
        } else {
            &[]
        }
    }
}

/// Upstream's debug switches for zebra, bgpd and bfdd.
/// `debug bgp updates` prints as its two directions.
const DEBUG_SWITCHES: [&str; 14] = [
    "debug zebra events",
    "debug zebra nht",
    "debug zebra kernel",
    "debug zebra rib",
    "debug zebra nexthop",
    "debug bgp neighbor-events",
    "debug bgp updates in",
    "debug bgp updates out",
    "debug bgp keepalives",
    "debug bgp nht",
    "debug bgp zebra",
    "debug bfd network",
    "debug bfd peer",
    "debug bfd zebra",
];

/// An unknown FRR log level name (`FRR_LOGGING_LEVEL`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown FRR log level {0:?}: expected emergencies, alerts, critical, errors, warnings, \
     notifications, informational or debugging"
)]
pub struct FrrLogLevelError(String);

impl FromStr for FrrLogLevel {
    type Err = FrrLogLevelError;

    fn from_str(s: &str) -> Result<FrrLogLevel, FrrLogLevelError> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, level)| *level)
            .ok_or_else(|| FrrLogLevelError(s.to_string()))
    }
}

impl From<LogLevel> for FrrLogLevel {
    /// Upstream's mapping of MetalLB's level to FRR's (none still logs emergencies).
    fn from(level: LogLevel) -> FrrLogLevel {
        match level {
            LogLevel::All | LogLevel::Debug => FrrLogLevel::Debugging,
            LogLevel::Info => FrrLogLevel::Informational,
            LogLevel::Warn => FrrLogLevel::Warnings,
            LogLevel::Error => FrrLogLevel::Errors,
            LogLevel::None => FrrLogLevel::Emergencies,
        }
    }
}

/// An unknown log level name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {0:?}: expected all, debug, info, warn, error or none")]
pub struct LogLevelError(String);

impl FromStr for LogLevel {
    type Err = LogLevelError;

    fn from_str(s: &str) -> Result<LogLevel, LogLevelError> {
        Ok(match s {
            "all" => LogLevel::All,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "none" => LogLevel::None,
            other => return Err(LogLevelError(other.into())),
        })
    }
}

/// Facts about the speaker's host that the configuration does not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// The OS nodename (`uname -n`) as FRR sees it; FRR 8.4 ignores any other `hostname`
    /// (CANONICAL.md fact 5).
    pub hostname: String,
    /// FRR's log level: MetalLB's level mapped as upstream does, or `FRR_LOGGING_LEVEL`.
    pub log_level: FrrLogLevel,
    /// FRR's log file (`log file PATH`); `None` logs to stdout. In the speaker pod FRR's
    /// daemons run detached under watchfrr, so their stdout goes nowhere: the seed's
    /// `/etc/frr/frr.log` is where `kubectl logs -c frr` and must-gather read it.
    pub log_file: Option<String>,
    /// Router ID when no peer of a router sets one.
    pub router_id: Option<Ipv4Addr>,
    /// Passwords of peers whose password is in a Secret, by peer name (`config::load` leaves a
    /// peer whose Secret is missing or malformed out of the config).
    pub passwords: BTreeMap<String, String>,
}

/// A whole `frr.conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrrConfig {
    /// `hostname` value.
    pub hostname: String,
    /// The `log stdout …` or `log file …` line, if any.
    pub log_line: Option<String>,
    /// `debug …` lines.
    pub debug_switches: Vec<&'static str>,
    /// `router bgp` blocks: the default VRF first, then VRFs by name.
    pub routers: Vec<Router>,
    /// `ip prefix-list`s, by name.
    pub prefix_lists_v4: Vec<PrefixList>,
    /// `ipv6 prefix-list`s, by name.
    pub prefix_lists_v6: Vec<PrefixList>,
    /// Route-maps, per router and neighbor, `-in` before `-out`.
    pub route_maps: Vec<RouteMap>,
    /// BFD profiles, by name.
    pub bfd_profiles: Vec<BfdProfile>,
}

/// One `router bgp <asn> [vrf <vrf>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Router {
    /// Our AS number.
    pub asn: u32,
    /// VRF name; `None` for the default VRF.
    pub vrf: Option<String>,
    /// `bgp router-id`.
    pub router_id: Option<Ipv4Addr>,
    /// Neighbors in FRR's order (interfaces, then IPv4 numerically, then IPv6).
    pub neighbors: Vec<Neighbor>,
    /// Non-empty address families, IPv4 first.
    pub address_families: Vec<AddressFamily>,
}

/// One neighbor's session lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// The address, or the interface name for unnumbered sessions.
    pub name: String,
    /// Unnumbered (`neighbor <iface> interface remote-as …`).
    pub interface: bool,
    /// `remote-as` value: a number, `internal` or `external`.
    pub remote_as: String,
    /// `local-as X no-prepend replace-as`.
    pub local_as: Option<u32>,
    /// BFD profile: renders `bfd` and `bfd profile P` (CANONICAL.md fact 1).
    pub bfd_profile: Option<String>,
    /// `password`, in clear text as FRR prints it.
    pub password: Option<String>,
    /// `port`, only when not 179.
    pub port: Option<u16>,
    /// `ebgp-multihop 255` (never bare: CANONICAL.md fact 2).
    pub ebgp_multihop: bool,
    /// `disable-connected-check`.
    pub disable_connected_check: bool,
    /// `update-source`.
    pub update_source: Option<IpAddr>,
    /// `timers <keepalive> <hold>` in seconds.
    pub timers: Option<(u64, u64)>,
    /// `timers connect N`.
    pub connect_time: Option<u64>,
    /// `graceful-restart`.
    pub graceful_restart: bool,
}

/// One `address-family ipv4|ipv6 unicast` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressFamily {
    /// `ipv4` or `ipv6`.
    pub name: &'static str,
    /// `network` lines, masked, sorted by (address, length) as FRR prints them.
    pub networks: Vec<IpNet>,
    /// Per-neighbor lines, in neighbor order.
    pub neighbors: Vec<AfNeighbor>,
}

/// `activate` and the two route-maps of one neighbor in one address family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfNeighbor {
    /// Neighbor address or interface.
    pub name: String,
    /// Inbound route-map name.
    pub route_map_in: String,
    /// Outbound route-map name.
    pub route_map_out: String,
}

/// A prefix-list with explicit seq numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixList {
    /// Name.
    pub name: String,
    /// Entries by seq.
    pub entries: Vec<PrefixListEntry>,
}

/// One prefix-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixListEntry {
    /// Seq number.
    pub seq: u32,
    /// What follows the seq: `permit 10.0.0.0/24 ge 32`, `deny any`.
    pub rule: String,
}

/// A route-map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMap {
    /// Name.
    pub name: String,
    /// Entries by seq.
    pub entries: Vec<RouteMapEntry>,
}

/// One route-map entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMapEntry {
    /// `permit` or `deny`.
    pub action: &'static str,
    /// Seq number.
    pub seq: u32,
    /// `match …` lines.
    pub matches: Vec<String>,
    /// `on-match next` (printed before the `set` lines: CANONICAL.md fact 4).
    pub on_match_next: bool,
    /// `set …` lines.
    pub sets: Vec<String>,
}

/// A BFD profile with its non-default lines in FRR's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdProfile {
    /// Name.
    pub name: String,
    /// Lines without indentation.
    pub lines: Vec<String>,
}

// === impl build ===

/// The FRR configuration of a node: one `router bgp` per (VRF, ASN) of the node's peers, the
/// `network` lines of what it announces (`announcement`, from [`super::bgp::announce`] for the
/// same node), the config-derived outbound policy described in the module docs, and every BFD
/// profile.
pub fn build(
    config: &Config,
    node: &Node,
    announcement: &NodeAnnouncement,
    facts: &NodeFacts,
) -> FrrConfig {
    let routes_of: BTreeMap<&str, &[super::bgp::Route]> = announcement
        .bgp
        .iter()
        .map(|p| (p.peer.as_str(), p.prefixes.as_slice()))
        .collect();
    let ads = advertisements(config);

    // The prefixes each advertisement produced on this node; only the per-prefix lists of
    // advertisements with serviceSelectors read it.
    let mut selected: BTreeMap<&AdvertisementRef, BTreeSet<IpNet>> = BTreeMap::new();
    for route in announcement.bgp.iter().flat_map(|p| &p.prefixes) {
        for r in &route.advertisements {
            selected.entry(r).or_default().insert(route.prefix);
        }
    }

    let mut groups: BTreeMap<(Option<String>, u32), Vec<&Peer>> = BTreeMap::new();
    for peer in node_peers(config, node) {
        groups
            .entry((peer.vrf.clone(), peer.my_asn))
            .or_default()
            .push(peer);
    }

    let mut lists: BTreeMap<(Family, String), Vec<PrefixListEntry>> = BTreeMap::new();
    let mut route_maps = Vec::new();
    let mut routers = Vec::new();
    for ((vrf, asn), mut peers) in groups {
        peers.sort_by_key(|p| neighbor_order(p));
        let mut networks: [BTreeSet<(u128, u8, IpNet)>; 2] = Default::default();
        let mut af_neighbors: [Vec<AfNeighbor>; 2] = Default::default();
        let mut neighbors = Vec::new();
        for peer in &peers {
            let id = neighbor_id(peer);
            for route in routes_of
                .get(peer.name.as_str())
                .copied()
                .unwrap_or_default()
            {
                let net = route.prefix;
                networks[family_index(Family::of(&net.addr()))].insert((
                    ip_to_u128(net.network()),
                    net.prefix_len(),
                    net,
                ));
            }
            let families = peer_families(peer);
            for family in &families {
                af_neighbors[family_index(*family)].push(AfNeighbor {
                    name: neighbor_name(peer),
                    route_map_in: format!("{id}-in"),
                    route_map_out: format!("{id}-out"),
                });
            }
            route_maps.push(RouteMap {
                name: format!("{id}-in"),
                entries: vec![RouteMapEntry {
                    action: "deny",
                    seq: SEQ_IN_DENY,
                    matches: Vec::new(),
                    on_match_next: false,
                    sets: Vec::new(),
                }],
            });
            let mut out = Vec::new();
            for (ordinal, adv_ref, pool, adv) in &ads {
                if !advertisement_applies(adv, node, peer) {
                    continue;
                }
                for family in &families {
                    let Some(entries) = list_entries(pool, adv, *family, selected.get(adv_ref))
                    else {
                        continue;
                    };
                    let name = list_name(pool, adv, *family);
                    lists.insert((*family, name.clone()), entries);
                    let offset = (*ordinal as u32) * 2 + family_index(*family) as u32;
                    out.extend(policy_entries(adv, *family, &name, offset));
                }
            }
            out.push(RouteMapEntry {
                action: "deny",
                seq: SEQ_DENY,
                matches: Vec::new(),
                on_match_next: false,
                sets: Vec::new(),
            });
            out.sort_by_key(|e| e.seq);
            route_maps.push(RouteMap {
                name: format!("{id}-out"),
                entries: out,
            });
            neighbors.push(neighbor(peer, facts));
        }
        let address_families = [Family::V4, Family::V6]
            .into_iter()
            .zip(networks.into_iter().zip(af_neighbors))
            .filter(|(_, (nets, nbrs))| !nets.is_empty() || !nbrs.is_empty())
            .map(|(family, (nets, nbrs))| AddressFamily {
                name: match family {
                    Family::V4 => "ipv4",
                    Family::V6 => "ipv6",
                },
                networks: nets.into_iter().map(|(_, _, n)| n).collect(),
                neighbors: nbrs,
            })
            .collect();
        routers.push(Router {
            asn,
            vrf,
            router_id: peers.iter().find_map(|p| p.router_id).or(facts.router_id),
            neighbors,
            address_families,
        });
    }

    let (mut prefix_lists_v4, mut prefix_lists_v6) = (Vec::new(), Vec::new());
    for ((family, name), entries) in lists {
        let list = PrefixList { name, entries };
        match family {
            Family::V4 => prefix_lists_v4.push(list),
            Family::V6 => prefix_lists_v6.push(list),
        }
    }

    FrrConfig {
        hostname: facts.hostname.clone(),
        log_line: Some(facts.log_level.log_line(facts.log_file.as_deref())),
        debug_switches: facts.log_level.debug_switches().to_vec(),
        routers,
        prefix_lists_v4,
        prefix_lists_v6,
        route_maps,
        bfd_profiles: config.bfd_profiles.values().map(bfd_profile).collect(),
    }
}

fn family_index(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// FRR's neighbor order: IPv4 numerically, then IPv6 numerically (CANONICAL.md fact 8).
/// Unnumbered (interface) neighbors print before both (measured on 8.4.4 with one interface
/// neighbor next to an IPv4 one, golden case 28); several of them are assumed to sort by name.
fn neighbor_order(peer: &Peer) -> (u8, u128, String) {
    match &peer.address {
        PeerAddress::Interface(name) => (0, 0, name.clone()),
        PeerAddress::Ip(ip @ IpAddr::V4(_)) => (1, ip_to_u128(*ip), String::new()),
        PeerAddress::Ip(ip) => (2, ip_to_u128(*ip), String::new()),
    }
}

fn neighbor_name(peer: &Peer) -> String {
    match &peer.address {
        PeerAddress::Ip(ip) => ip.to_string(),
        PeerAddress::Interface(name) => name.clone(),
    }
}

/// Upstream's neighbor id for filter names: the address (or interface), `-<vrf>` appended for
/// VRF peers, so two VRFs may peer with one address (metallb-reference §1.7).
fn neighbor_id(peer: &Peer) -> String {
    match &peer.vrf {
        Some(vrf) => format!("{}-{vrf}", neighbor_name(peer)),
        None => neighbor_name(peer),
    }
}

fn neighbor(peer: &Peer, facts: &NodeFacts) -> Neighbor {
    let local = peer.local_asn.unwrap_or(peer.my_asn);
    let ebgp = match peer.asn {
        PeerAsn::Number(n) => n != local,
        PeerAsn::External => true,
        PeerAsn::Internal => false,
    };
    let ipv6 = matches!(peer.address, PeerAddress::Ip(IpAddr::V6(_)));
    // The config layer derives the missing one of hold/keepalive; derive again here so a
    // hand-built Config renders the same (keepalive = hold / 3, hold = keepalive × 3).
    let timers = match (peer.keepalive_time, peer.hold_time) {
        (Some(k), Some(h)) => Some((k.as_secs(), h.as_secs())),
        (None, Some(h)) => Some((h.as_secs() / 3, h.as_secs())),
        (Some(k), None) => Some((k.as_secs(), k.as_secs() * 3)),
        (None, None) => None,
    };
    Neighbor {
        name: neighbor_name(peer),
        interface: matches!(peer.address, PeerAddress::Interface(_)),
        remote_as: match peer.asn {
            PeerAsn::Number(n) => n.to_string(),
            PeerAsn::Internal => "internal".into(),
            PeerAsn::External => "external".into(),
        },
        local_as: peer.local_asn,
        bfd_profile: peer.bfd_profile.clone(),
        password: match &peer.password {
            Some(Password::Plain(p)) => Some(p.clone()),
            Some(Password::Secret { .. }) => facts.passwords.get(&peer.name).cloned(),
            None => None,
        },
        port: peer.port.filter(|p| *p != 179),
        ebgp_multihop: peer.ebgp_multihop,
        // As upstream: only a single-hop, single-family IPv6 eBGP session, whose link-local
        // next hop would otherwise fail FRR's connected check.
        disable_connected_check: ipv6
            && ebgp
            && !peer.ebgp_multihop
            && !peer.dual_stack_address_family,
        update_source: peer.source_address,
        timers,
        connect_time: peer.connect_time.map(|d| d.as_secs()),
        graceful_restart: peer.graceful_restart,
    }
}

/// A name that cannot collide: Kubernetes names never contain `_`, so `<pool>_<adv>_<family>`
/// is unique. A BGPAdvertisement is named by its name (it may select several pools, hence the
/// pool part); a legacy AddressPool's inline advertisement `[i]` is `_i`, its implicit default
/// advertisement `_`.
fn list_name(pool: &Pool, adv: &BgpAdvertisement, family: Family) -> String {
    let tag = match adv.source.split_once('/') {
        Some(("BGPAdvertisement", name)) => name.to_string(),
        Some((_, rest)) => match rest.rsplit_once('[') {
            Some((_, index)) => format!("_{}", index.trim_end_matches(']')),
            None => "_".to_string(),
        },
        None => adv.source.replace(|c: char| c.is_whitespace(), "-"),
    };
    let family = match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    };
    format!("{}_{tag}_{family}", pool.name)
}

/// The entries of an advertisement's list for one family, or `None` when the pool has no
/// addresses of that family (nothing to match, so no list and no route-map entries).
fn list_entries(
    pool: &Pool,
    adv: &BgpAdvertisement,
    family: Family,
    selected: Option<&BTreeSet<IpNet>>,
) -> Option<Vec<PrefixListEntry>> {
    let cidrs: Vec<IpNet> = pool
        .ranges
        .iter()
        .filter(|r| r.family() == family)
        .flat_map(|r| r.cidrs())
        .collect();
    if cidrs.is_empty() {
        return None;
    }
    if !adv.service_selectors.is_empty() {
        return Some(selected_entries(pool, family, selected));
    }
    let len = match family {
        Family::V4 => adv.aggregation_length_v4,
        Family::V6 => adv.aggregation_length_v6,
    };
    let mut rules: Vec<String> = Vec::new();
    for cidr in cidrs {
        let rule = if len > cidr.prefix_len() {
            // `ge L le L`: exactly length L. FRR prints it as given, also for L = 32/128
            // (measured on 8.4.4); `ge` alone would also admit longer prefixes below 32/128.
            format!("permit {cidr} ge {len} le {len}")
        } else {
            // L equal to the CIDR length: exact match. Shorter than the CIDR cannot pass
            // validation, but would mean the CIDR's supernet: match that exactly.
            let net = IpNet::new(cidr.addr(), len)
                .expect("invariant: aggregation length within the family width")
                .trunc();
            format!("permit {net}")
        };
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    Some(
        rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| PrefixListEntry {
                seq: (i as u32 + 1) * 5,
                rule,
            })
            .collect(),
    )
}

/// The per-prefix entries of an advertisement with serviceSelectors. Each seq is 1 + the
/// prefix's position in the pool, so a service more or less adds or removes one entry and
/// renumbers nothing; if a position does not fit a seq (huge IPv6 pools), entries are numbered
/// in order instead. No prefix: `deny any`, so the list exists and matches nothing.
fn selected_entries(
    pool: &Pool,
    family: Family,
    selected: Option<&BTreeSet<IpNet>>,
) -> Vec<PrefixListEntry> {
    let mut nets: Vec<IpNet> = selected
        .into_iter()
        .flatten()
        .filter(|n| Family::of(&n.addr()) == family)
        .copied()
        .collect();
    if nets.is_empty() {
        return vec![PrefixListEntry {
            seq: 1,
            rule: "deny any".into(),
        }];
    }
    nets.sort_by_key(|n| (ip_to_u128(n.network()), n.prefix_len()));
    let position = |net: &IpNet| -> Option<u32> {
        let ip = net.network();
        let mut before: u128 = 0;
        for range in pool.ranges.iter().filter(|r| r.family() == family) {
            if range.contains(&ip) {
                let offset = ip_to_u128(ip) - ip_to_u128(range.start());
                return u32::try_from(before.checked_add(offset)?.checked_add(1)?).ok();
            }
            before = before.checked_add(range.size())?;
        }
        None
    };
    let seqs: Option<Vec<u32>> = nets.iter().map(position).collect();
    let seqs = seqs.unwrap_or_else(|| (1..=nets.len() as u32).collect());
    nets.iter()
        .zip(seqs)
        .map(|(net, seq)| PrefixListEntry {
            seq,
            rule: format!("permit {net}"),
        })
        .collect()
}

/// The outbound route-map entries of one advertisement in one family: attribute entries with
/// `on-match next` (so later entries still see the route and communities add up), then the
/// permit.
fn policy_entries(
    adv: &BgpAdvertisement,
    family: Family,
    list: &str,
    offset: u32,
) -> Vec<RouteMapEntry> {
    let matches = vec![format!(
        "match {} address prefix-list {list}",
        match family {
            Family::V4 => "ip",
            Family::V6 => "ipv6",
        }
    )];
    let attribute = |seq: u32, set: String| RouteMapEntry {
        action: "permit",
        seq: seq + offset,
        matches: matches.clone(),
        on_match_next: true,
        sets: vec![set],
    };
    let mut entries = Vec::new();
    if let Some(pref) = adv.local_pref {
        entries.push(attribute(
            SEQ_LOCAL_PREF,
            format!("set local-preference {pref}"),
        ));
    }
    if let Some(text) = standard_communities(&adv.communities) {
        entries.push(attribute(
            SEQ_COMMUNITY,
            format!("set community {text} additive"),
        ));
    }
    if let Some(text) = large_communities(&adv.communities) {
        entries.push(attribute(
            SEQ_LARGE_COMMUNITY,
            format!("set large-community {text} additive"),
        ));
    }
    entries.push(RouteMapEntry {
        action: "permit",
        seq: SEQ_PERMIT + offset,
        matches,
        on_match_next: false,
        sets: Vec::new(),
    });
    entries
}

/// Standard communities as FRR prints them: sorted numerically, without duplicates, well-known
/// values by name (CANONICAL.md fact 3 and the §7 table). `None` when there are none.
pub fn standard_communities(communities: &BTreeSet<Community>) -> Option<String> {
    // `Community::Standard(a, b)` orders as the 32-bit value a·65536 + b: numeric order.
    let words: Vec<String> = communities
        .iter()
        .filter_map(|c| match c {
            Community::Standard(a, b) => Some(well_known_name(*a, *b)),
            Community::Large(..) => None,
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Large communities as `a:b:c`. FRR prints them as given, unsorted (CANONICAL.md §7), so
/// render them in one stable order: numerically sorted, as the set holds them.
pub fn large_communities(communities: &BTreeSet<Community>) -> Option<String> {
    let words: Vec<String> = communities
        .iter()
        .filter_map(|c| match c {
            Community::Large(a, b, c) => Some(format!("{a}:{b}:{c}")),
            Community::Standard(..) => None,
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn well_known_name(a: u16, b: u16) -> String {
    let name = match (a, b) {
        (0, 0) => "internet",
        (65535, 0) => "graceful-shutdown",
        (65535, 1) => "accept-own",
        (65535, 2) => "route-filter-translated-v4",
        (65535, 3) => "route-filter-v4",
        (65535, 4) => "route-filter-translated-v6",
        (65535, 5) => "route-filter-v6",
        (65535, 6) => "llgr-stale",
        (65535, 7) => "no-llgr",
        (65535, 8) => "accept-own-nexthop",
        (65535, 666) => "blackhole",
        (65535, 65281) => "no-export",
        (65535, 65282) => "no-advertise",
        (65535, 65283) => "local-AS",
        (65535, 65284) => "no-peer",
        _ => return format!("{a}:{b}"),
    };
    name.to_string()
}

/// FRR's defaults for BFD profile values; equal values are not printed, so they are not
/// rendered either (CANONICAL.md fact 6 and §8).
const BFD_DEFAULT_MULTIPLIER: u32 = 3;
const BFD_DEFAULT_INTERVAL: u32 = 300;
const BFD_DEFAULT_ECHO_INTERVAL: u32 = 50;
const BFD_DEFAULT_MINIMUM_TTL: u32 = 254;

fn bfd_profile(profile: &super::config::BfdProfile) -> BfdProfile {
    let mut lines = Vec::new();
    let non_default = |v: Option<u32>, default: u32| v.filter(|v| *v != default);
    if let Some(v) = non_default(profile.detect_multiplier, BFD_DEFAULT_MULTIPLIER) {
        lines.push(format!("detect-multiplier {v}"));
    }
    if let Some(v) = non_default(profile.transmit_interval, BFD_DEFAULT_INTERVAL) {
        lines.push(format!("transmit-interval {v}"));
    }
    if let Some(v) = non_default(profile.receive_interval, BFD_DEFAULT_INTERVAL) {
        lines.push(format!("receive-interval {v}"));
    }
    if profile.passive_mode {
        lines.push("passive-mode".into());
    }
    if profile.echo_mode {
        lines.push("echo-mode".into());
    }
    // FRR prints the old `echo-interval N` as these two lines (CANONICAL.md §8).
    if let Some(v) = non_default(profile.echo_interval, BFD_DEFAULT_ECHO_INTERVAL) {
        lines.push(format!("echo transmit-interval {v}"));
        lines.push(format!("echo receive-interval {v}"));
    }
    if let Some(v) = non_default(profile.minimum_ttl, BFD_DEFAULT_MINIMUM_TTL) {
        lines.push(format!("minimum-ttl {v}"));
    }
    BfdProfile {
        name: profile.name.clone(),
        lines,
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::All => "all",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::None => "none",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::core::{
        address::IpRange,
        bgp::{AnnouncedService, announce},
        service::ServiceKey,
    };

    fn config(ads: Vec<BgpAdvertisement>) -> Config {
        let pool = Pool {
            name: "gold".into(),
            ranges: vec![IpRange::parse("203.0.113.0/24").unwrap()],
            auto_assign: true,
            bgp_advertisements: ads,
            ..Default::default()
        };
        let peer = Peer::ebgp_for_test("r", "10.77.0.1".parse().unwrap());
        Config {
            pools: [("gold".to_string(), pool)].into(),
            peers: [("r".to_string(), peer)].into(),
            bfd_profiles: BTreeMap::new(),
        }
    }

    fn services(ips: &[&str]) -> Vec<AnnouncedService> {
        ips.iter()
            .map(|ip| AnnouncedService {
                key: ServiceKey::new("default", *ip),
                pool: "gold".into(),
                ips: vec![ip.parse::<IpAddr>().unwrap()],
                ..Default::default()
            })
            .collect()
    }

    fn frr(config: &Config, ips: &[&str]) -> FrrConfig {
        let node = Node::named("n1");
        let announcement = announce(config, &node, &services(ips));
        build(config, &node, &announcement, &NodeFacts::default())
    }

    /// The design claim of the module docs: a Service more or less changes `network` lines and
    /// nothing else.
    #[test]
    fn service_churn_only_changes_network_lines() {
        let cfg = config(vec![BgpAdvertisement {
            local_pref: Some(100),
            communities: [Community::Standard(64500, 1), Community::Large(1, 2, 3)].into(),
            ..Default::default()
        }]);
        let one = frr(&cfg, &["203.0.113.10"]);
        let mut three = frr(&cfg, &["203.0.113.10", "203.0.113.11", "203.0.113.12"]);
        assert_eq!(three.routers[0].address_families[0].networks.len(), 3);
        three.routers[0].address_families[0].networks =
            one.routers[0].address_families[0].networks.clone();
        assert_eq!(one, three);
        let none = frr(&cfg, &[]);
        assert_eq!(none.route_maps, one.route_maps);
        assert_eq!(none.prefix_lists_v4, one.prefix_lists_v4);
    }

    /// Fixed per-purpose seq ranges: giving an advertisement a community adds one entry and
    /// leaves every other entry's number alone.
    #[test]
    fn adding_an_attribute_renumbers_nothing() {
        let plain = frr(
            &config(vec![BgpAdvertisement::default()]),
            &["203.0.113.10"],
        );
        let with_community = frr(
            &config(vec![BgpAdvertisement {
                communities: [Community::Standard(64500, 1)].into(),
                ..Default::default()
            }]),
            &["203.0.113.10"],
        );
        let seqs =
            |c: &FrrConfig| -> Vec<u32> { c.route_maps[1].entries.iter().map(|e| e.seq).collect() };
        assert_eq!(seqs(&plain), [SEQ_PERMIT, SEQ_DENY]);
        assert_eq!(seqs(&with_community), [SEQ_COMMUNITY, SEQ_PERMIT, SEQ_DENY]);
    }

    /// A serviceSelectors list numbers entries by pool position: one more service adds one
    /// entry and keeps the others' seq.
    #[test]
    fn selected_prefixes_keep_their_seq() {
        let cfg = config(vec![BgpAdvertisement {
            source: "BGPAdvertisement/web".into(),
            service_selectors: vec![crate::core::selector::LabelSelector::default()],
            ..Default::default()
        }]);
        let entries = |ips: &[&str]| frr(&cfg, ips).prefix_lists_v4[0].entries.clone();
        assert_eq!(
            entries(&[]),
            [PrefixListEntry {
                seq: 1,
                rule: "deny any".into()
            }]
        );
        let two = entries(&["203.0.113.10", "203.0.113.200"]);
        assert_eq!(two.iter().map(|e| e.seq).collect::<Vec<_>>(), [11, 201]);
        let three = entries(&["203.0.113.10", "203.0.113.20", "203.0.113.200"]);
        assert_eq!(
            three.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [11, 21, 201]
        );
        assert_eq!(frr(&cfg, &[]).prefix_lists_v4[0].name, "gold_web_ipv4");
    }

    #[test]
    fn communities_print_as_frr_does() {
        let set: BTreeSet<Community> = [
            Community::Standard(65535, 65281),
            Community::Standard(65535, 65283),
            Community::Standard(65535, 0),
            Community::Standard(65000, 100),
            Community::Standard(65535, 100),
            Community::Large(10, 1, 1),
            Community::Large(2, 1, 1),
        ]
        .into();
        assert_eq!(
            standard_communities(&set).unwrap(),
            "65000:100 graceful-shutdown 65535:100 no-export local-AS"
        );
        assert_eq!(large_communities(&set).unwrap(), "2:1:1 10:1:1");
        assert_eq!(standard_communities(&BTreeSet::new()), None);
    }

    #[test]
    fn bfd_defaults_are_not_rendered() {
        let p = super::super::config::BfdProfile {
            name: "p".into(),
            receive_interval: Some(300),
            transmit_interval: Some(250),
            detect_multiplier: Some(3),
            echo_interval: Some(80),
            echo_mode: true,
            passive_mode: false,
            minimum_ttl: Some(254),
        };
        assert_eq!(
            bfd_profile(&p).lines,
            [
                "transmit-interval 250",
                "echo-mode",
                "echo transmit-interval 80",
                "echo receive-interval 80"
            ]
        );
    }

    #[test]
    fn log_levels_map_to_frr() {
        let frr = |level: &str| FrrLogLevel::from(level.parse::<LogLevel>().unwrap());
        assert_eq!(frr("debug").log_line(None), "log stdout");
        assert_eq!(frr("all"), FrrLogLevel::Debugging);
        assert_eq!(frr("info").log_line(None), "log stdout informational");
        assert_eq!(frr("warn").log_line(None), "log stdout warnings");
        assert_eq!(frr("error").log_line(None), "log stdout errors");
        // As upstream: none still logs emergencies.
        assert_eq!(frr("none").log_line(None), "log stdout emergencies");
        assert_eq!(
            FrrLogLevel::Informational.log_line(Some("/etc/frr/frr.log")),
            "log file /etc/frr/frr.log informational"
        );
        assert!("verbose".parse::<LogLevel>().is_err());
        // Debug switches at debugging only, whichever way it was reached.
        assert_eq!(frr("debug").debug_switches().len(), 14);
        assert!(frr("info").debug_switches().is_empty());
        // FRR_LOGGING_LEVEL takes any FRR level.
        assert_eq!("alerts".parse::<FrrLogLevel>(), Ok(FrrLogLevel::Alerts));
        assert_eq!(FrrLogLevel::Alerts.log_line(None), "log stdout alerts");
        assert!("debug".parse::<FrrLogLevel>().is_err());
    }
}
