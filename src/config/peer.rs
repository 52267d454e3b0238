//! BGPPeer objects (v1beta1 and v1beta2) → [`Peer`]s: per-peer checks, timer derivation, and
//! the FRR-mode rules between peers that can run on the same node.
//!
//! FRR runs one `router bgp` per VRF on each node, so peers that can land on a common node must
//! agree on what that router is: the same `myASN` within a VRF, the same router ID when one is
//! given, and no two sessions to the same neighbor in one VRF.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use super::{
    problems::{ObjectRef, Problems, unique_by_name},
    resources::PeerObject,
    selector::{NodeUniverse, convert_list},
};
use crate::{
    api::bgp_peer::v1beta2::DynamicAsn,
    core::{
        config::{BfdProfile, Password, Peer, PeerAddress, PeerAsn},
        selector::LabelSelector,
    },
};

/// Shortest non-zero hold time (RFC 4271 §4.2).
const MIN_HOLD_TIME: Duration = Duration::from_secs(3);
/// Largest hold, keepalive and connect time FRR accepts, in seconds.
const MAX_TIMER_SECS: u64 = 65_535;
/// Highest TCP port the CRD allows for `peerPort`.
const MAX_PEER_PORT: u16 = 16_384;
/// Longest Linux interface name (`IFNAMSIZ` - 1).
pub(crate) const MAX_INTERFACE_NAME: usize = 15;
/// Go's longest duration, in seconds (`math.MaxInt64` nanoseconds).
const MAX_GO_DURATION_SECS: f64 = 9_223_372_036.0;

/// What the cross-peer rules compare; each is `None` when the peer's own field was invalid.
struct PeerFacts {
    reference: ObjectRef,
    my_asn: Option<u32>,
    vrf: Option<String>,
    router_id: RouterIdFact,
    endpoint: Option<PeerAddress>,
    node_selectors: Vec<LabelSelector>,
}

/// A peer's `routerID` as the cross-peer rule sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RouterIdFact {
    /// Not written: FRR picks one per node.
    Unset,
    /// Written and valid.
    Set(Ipv4Addr),
    /// Written but invalid (reported on its own): not compared.
    Invalid,
}

/// Checks and resolves every BGPPeer, then applies the FRR-mode rules between peers. Returns
/// the peers that passed every check, by name.
pub(crate) fn peers(
    objects: &[PeerObject],
    bfd_profiles: &BTreeMap<String, BfdProfile>,
    namespace: Option<&str>,
    nodes: &NodeUniverse,
    problems: &mut Problems,
) -> BTreeMap<String, Peer> {
    let named = objects.iter().map(|o| ("BGPPeer", &o.peer.metadata, o));
    let mut unique = unique_by_name(named, "BGPPeer", problems);
    unique.sort_by(|a, b| a.0.cmp(&b.0));

    // Sorted by name: the map is built in one pass, not by a thousand inserts.
    let mut resolved = Vec::with_capacity(unique.len());
    let mut facts = Vec::with_capacity(unique.len());
    for (reference, object) in unique {
        let before = problems.len();
        let (peer_facts, peer) = resolve(&reference, object, bfd_profiles, namespace, problems);
        if let Some(peer) = peer
            && problems.len() == before
        {
            resolved.push((reference.name.clone(), peer));
        }
        facts.push(peer_facts);
    }
    check_frr_rules(&facts, nodes, problems);
    resolved.into_iter().collect()
}

/// Checks one peer on its own and resolves it; the peer is `None` when a required part is
/// missing or invalid.
fn resolve(
    reference: &ObjectRef,
    object: &PeerObject,
    bfd_profiles: &BTreeMap<String, BfdProfile>,
    namespace: Option<&str>,
    problems: &mut Problems,
) -> (PeerFacts, Option<Peer>) {
    let spec = &object.peer.spec;
    let v1beta1 = object.version == "v1beta1";
    let mut report = |field: &str, message: String| problems.add(reference, field, message);

    let my_asn = (spec.my_asn != 0).then_some(spec.my_asn);
    if my_asn.is_none() {
        report(
            "spec.myASN",
            "missing local ASN: myASN must be a non-zero AS number".into(),
        );
    }

    let peer_asn = spec.peer_asn.filter(|&asn| asn != 0);
    let asn = match (peer_asn, spec.dynamic_asn) {
        (Some(asn), None) => Some(PeerAsn::Number(asn)),
        (None, Some(DynamicAsn::Internal)) => Some(PeerAsn::Internal),
        (None, Some(DynamicAsn::External)) => Some(PeerAsn::External),
        (None, None) if v1beta1 => {
            report(
                "spec.peerASN",
                "missing peer ASN: peerASN must be a non-zero AS number".into(),
            );
            None
        }
        (None, None) => {
            report(
                "spec.peerASN",
                "missing peer ASN and dynamicASN: set peerASN, or dynamicASN to internal or external"
                    .into(),
            );
            None
        }
        (Some(_), Some(_)) => {
            report(
                "spec.dynamicASN",
                "both peer ASN and dynamicASN specified: set only one".into(),
            );
            None
        }
    };
    // iBGP when the peer's AS is ours; LOCAL_PREF, multi-hop and local-as depend on it.
    let internal = match asn {
        Some(PeerAsn::Number(asn)) => Some(asn) == my_asn,
        Some(PeerAsn::Internal) => true,
        Some(PeerAsn::External) | None => false,
    };

    let address_text = spec.peer_address.as_deref().filter(|a| !a.is_empty());
    let interface = spec.interface.as_deref().filter(|i| !i.is_empty());
    let address = match (address_text, interface) {
        (None, None) => {
            let message = if v1beta1 {
                "missing peerAddress: the address of the BGP router to peer with"
            } else {
                "peer has no peerAddress or interface specified: set exactly one"
            };
            report("spec.peerAddress", message.into());
            None
        }
        (Some(_), Some(_)) => {
            report(
                "spec.interface",
                "peer has both peerAddress and interface specified: set only one".into(),
            );
            None
        }
        (Some(text), None) => match text.parse::<IpAddr>() {
            Ok(ip) => Some(PeerAddress::Ip(ip)),
            Err(_) => {
                report(
                    "spec.peerAddress",
                    format!("invalid BGPPeer address {text:?}: must be an IPv4 or IPv6 address"),
                );
                None
            }
        },
        (None, Some(name)) => match check_interface_name(name) {
            Ok(()) => Some(PeerAddress::Interface(name.to_string())),
            Err(reason) => {
                report("spec.interface", reason);
                None
            }
        },
    };

    let source_address = spec.source_address.as_deref().filter(|s| !s.is_empty()).and_then(|text| {
        match text.parse::<IpAddr>() {
            Err(_) => {
                report(
                    "spec.sourceAddress",
                    format!("invalid BGPPeer source address {text:?}: must be an IPv4 or IPv6 address"),
                );
                None
            }
            // The TCP session cannot bind a source of the other family.
            Ok(source) => match &address {
                Some(PeerAddress::Ip(peer)) if peer.is_ipv4() != source.is_ipv4() => {
                    report(
                        "spec.sourceAddress",
                        format!("source address {source} and peer address {peer} are of different IP families"),
                    );
                    None
                }
                _ => Some(source),
            },
        }
    });

    let port = spec.peer_port.filter(|&port| {
        let valid = (1..=MAX_PEER_PORT).contains(&port);
        if !valid {
            report(
                "spec.peerPort",
                format!("invalid port {port}: must be between 1 and {MAX_PEER_PORT}"),
            );
        }
        valid
    });

    let (hold_time, keepalive_time) = timers(
        spec.hold_time.as_deref(),
        spec.keepalive_time.as_deref(),
        v1beta1,
        &mut report,
    );
    let connect_time = spec.connect_time.as_deref().and_then(|text| {
        let parsed = parse_go_duration(text).map_err(|e| e.to_string()).and_then(|d| {
            if d.subsec_nanos() == 0 && (1..=MAX_TIMER_SECS).contains(&d.as_secs()) {
                Ok(d)
            } else {
                Err(format!(
                    "invalid connectTime {text:?}: must be a whole number of seconds from 1s to {MAX_TIMER_SECS}s"
                ))
            }
        });
        parsed.map_err(|message| report("spec.connectTime", message)).ok()
    });

    let router_id = spec
        .router_id
        .as_deref()
        .filter(|r| !r.is_empty())
        .and_then(|text| {
            let parsed = text.parse::<Ipv4Addr>();
            if parsed.is_err() {
                let why = if text.parse::<IpAddr>().is_ok() {
                    "must be an IPv4 address"
                } else {
                    "not an IP address"
                };
                report(
                    "spec.routerID",
                    format!("invalid router ID {text:?}: {why}"),
                );
            }
            parsed.ok()
        });

    let password = password(spec, namespace, &mut report);

    let bfd_profile = spec.bfd_profile.clone().filter(|p| !p.is_empty());

    let ebgp_multihop = spec.ebgp_multi_hop.unwrap_or(false);
    if ebgp_multihop && internal {
        report(
            "spec.ebgpMultiHop",
            "invalid ebgp-multihop parameter set for an ibgp peer: ebgpMultiHop is only for eBGP peers, whose AS differs from myASN".into(),
        );
    }

    let local_asn = spec.local_asn.filter(|&asn| asn != 0);
    if local_asn.is_some() && internal {
        report(
            "spec.localASN",
            "localASN is only valid for an eBGP peer, whose AS differs from myASN".into(),
        );
    }

    let vrf = spec.vrf.clone().filter(|v| !v.is_empty());
    if vrf.as_deref().is_some_and(has_line_break) {
        report("spec.vrf", "VRF name must not contain line breaks".into());
    }

    let node_selectors = convert_list(
        reference,
        "spec.nodeSelectors",
        &spec.node_selectors,
        problems,
    );

    // The profile may be created after the peer (the webhook admits the peer, as MetalLB's
    // does), but the session is not brought up with FRR's default BFD instead.
    if let Some(name) = &bfd_profile
        && !bfd_profiles.contains_key(name)
    {
        let known = if bfd_profiles.is_empty() {
            "there is no BFDProfile".to_string()
        } else {
            let names: Vec<String> = bfd_profiles.keys().map(|k| format!("{k:?}")).collect();
            format!("the BFDProfiles defined are {}", names.join(", "))
        };
        problems.add_awaiting(
            reference,
            "spec.bfdProfile",
            format!("BFD profile {name:?} does not exist: {known}"),
        );
    }

    let facts = PeerFacts {
        reference: reference.clone(),
        my_asn,
        vrf: vrf.clone(),
        router_id: match (
            router_id,
            spec.router_id.as_deref().is_some_and(|r| !r.is_empty()),
        ) {
            (Some(id), _) => RouterIdFact::Set(id),
            (None, true) => RouterIdFact::Invalid,
            (None, false) => RouterIdFact::Unset,
        },
        endpoint: address.clone(),
        node_selectors: node_selectors.clone(),
    };
    let peer = match (my_asn, asn, address) {
        (Some(my_asn), Some(asn), Some(address)) => Some(Peer {
            name: reference.name.clone(),
            my_asn,
            asn,
            local_asn,
            address,
            source_address,
            port,
            hold_time,
            keepalive_time,
            connect_time,
            router_id,
            password,
            bfd_profile,
            graceful_restart: spec.enable_graceful_restart.unwrap_or(false),
            node_selectors,
            ebgp_multihop,
            vrf,
            dual_stack_address_family: spec.dual_stack_address_family.unwrap_or(false),
        }),
        _ => None,
    };
    (facts, peer)
}

/// Hold and keepalive times: parsed, checked, and the missing one derived as MetalLB does
/// (keepalive = hold / 3, hold = keepalive × 3). Both `None` keeps FRR's defaults.
fn timers(
    hold_text: Option<&str>,
    keepalive_text: Option<&str>,
    v1beta1: bool,
    report: &mut impl FnMut(&str, String),
) -> (Option<Duration>, Option<Duration>) {
    let mut parse = |field: &str, text: &str| match parse_go_duration(text) {
        // FRR's `timers` command takes whole seconds; a fraction would be cut off silently,
        // and a keepalive of "500ms" would become 0, which turns keepalives off.
        Ok(d) if d.subsec_nanos() != 0 => {
            report(
                field,
                format!("invalid duration {text:?}: BGP timers are whole seconds"),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            report(field, e.to_string());
            None
        }
    };
    let hold = hold_text.and_then(|t| parse("spec.holdTime", t));
    let keepalive = keepalive_text.and_then(|t| parse("spec.keepaliveTime", t));
    let hold_valid = match (hold, hold_text) {
        (Some(hold), Some(text)) => check_hold(hold, &format!("{text:?}"), "spec.holdTime", report),
        _ => true,
    };

    if v1beta1 && keepalive_text.is_some() && hold_text.is_none() {
        report(
            "spec.holdTime",
            format!(
                "missing holdTime: a v1beta1 BGPPeer that sets keepaliveTime ({}) must set holdTime too",
                keepalive_text.unwrap_or_default()
            ),
        );
        return (None, None);
    }
    let unparsed = (hold_text.is_some() && hold.is_none())
        || (keepalive_text.is_some() && keepalive.is_none());
    if unparsed || !hold_valid {
        return (None, None);
    }

    match (hold, keepalive) {
        (Some(hold), Some(keepalive)) if keepalive > hold => {
            report(
                "spec.keepaliveTime",
                format!(
                    "invalid keepaliveTime {:?}, must be lower than holdTime {:?}",
                    keepalive_text.unwrap_or_default(),
                    hold_text.unwrap_or_default()
                ),
            );
            (None, None)
        }
        (Some(hold), Some(keepalive)) => (Some(hold), Some(keepalive)),
        // FRR takes whole seconds, so the derived keepalive is rounded down to one.
        (Some(hold), None) => (Some(hold), Some(Duration::from_secs(hold.as_secs() / 3))),
        (None, Some(keepalive)) => {
            let derived = keepalive.checked_mul(3).unwrap_or(Duration::MAX);
            let shown = format!(
                "{} (three times keepaliveTime {:?})",
                format_secs(derived),
                keepalive_text.unwrap_or_default()
            );
            if check_hold(derived, &shown, "spec.keepaliveTime", report) {
                (Some(derived), Some(keepalive))
            } else {
                (None, None)
            }
        }
        (None, None) => (None, None),
    }
}

/// Hold time 0 (keepalives off) or 3s to 65535s. `shown` is how the value is named in the
/// message.
fn check_hold(
    hold: Duration,
    shown: &str,
    field: &str,
    report: &mut impl FnMut(&str, String),
) -> bool {
    if !hold.is_zero() && hold < MIN_HOLD_TIME {
        report(
            field,
            format!("invalid hold time {shown}: must be 0 or >=3s"),
        );
        false
    } else if hold.as_secs() > MAX_TIMER_SECS {
        report(
            field,
            format!(
                "invalid hold time {shown}: must be at most {MAX_TIMER_SECS}s, the most FRR accepts"
            ),
        );
        false
    } else {
        true
    }
}

fn format_secs(duration: Duration) -> String {
    if duration == Duration::MAX {
        "an overlong duration".into()
    } else {
        format!("{}s", duration.as_secs())
    }
}

/// The session password: plain, or a Secret reference (in `metallb_namespace` when that is
/// known); not both.
fn password(
    spec: &crate::api::bgp_peer::v1beta2::BGPPeerSpec,
    metallb_namespace: Option<&str>,
    report: &mut impl FnMut(&str, String),
) -> Option<Password> {
    let plain = spec.password.clone().filter(|p| !p.is_empty());
    if plain.as_deref().is_some_and(has_line_break) {
        report(
            "spec.password",
            "password must not contain line breaks".into(),
        );
    }
    let secret = spec.password_secret.as_ref().map(|secret| {
        let name = secret.name.clone().filter(|n| !n.is_empty());
        if name.is_none() {
            report("spec.passwordSecret.name", "missing name of the password Secret".into());
        }
        let namespace = secret.namespace.clone().filter(|n| !n.is_empty());
        if let (Some(expected), Some(namespace)) = (metallb_namespace, namespace.as_deref())
            && expected != namespace
        {
            report(
                "spec.passwordSecret.namespace",
                format!("the password Secret must be in MetalLB's namespace {expected}, not {namespace:?}"),
            );
        }
        (name, namespace)
    });
    match (plain, secret) {
        (Some(_), Some(_)) => {
            report(
                "spec.passwordSecret",
                "can not have both password and secret ref set: use one of them".into(),
            );
            None
        }
        (Some(plain), None) => Some(Password::Plain(plain)),
        (None, Some((Some(name), namespace))) => Some(Password::Secret { name, namespace }),
        _ => None,
    }
}

/// A Linux interface name: 1 to 15 characters, no `/`, whitespace or line breaks.
pub(crate) fn check_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("interface name must not be empty".into())
    } else if name.len() > MAX_INTERFACE_NAME {
        Err(format!(
            "invalid interface name {name:?}: Linux interface names are at most {MAX_INTERFACE_NAME} characters"
        ))
    } else if name.chars().any(|c| c == '/' || c.is_whitespace()) {
        Err(format!(
            "invalid interface name {name:?}: must not contain '/' or whitespace"
        ))
    } else {
        Ok(())
    }
}

fn has_line_break(text: &str) -> bool {
    text.contains(['\n', '\r'])
}

/// The FRR-mode rules between peers, for every pair that can share a node. Each rule reports
/// a peer at most once, against the first earlier peer (in name order) it conflicts with.
fn check_frr_rules(facts: &[PeerFacts], nodes: &NodeUniverse, problems: &mut Problems) {
    let vrf_text = |vrf: &Option<String>| match vrf {
        Some(vrf) => format!("VRF {vrf:?}"),
        None => "the default VRF".to_string(),
    };
    let mut everywhere = EverywherePeers::default();
    let mut restricted: Vec<usize> = Vec::new();
    for (index, later) in facts.iter().enumerate() {
        // Earlier peers that select every node share one with `later` exactly when `later` can
        // run anywhere; the others are judged pair by pair.
        let later_runs = nodes.may_share_node(&[], &later.node_selectors);
        let sharing: Vec<usize> = restricted
            .iter()
            .copied()
            .filter(|&e| nodes.may_share_node(&facts[e].node_selectors, &later.node_selectors))
            .collect();
        let first = |from_everywhere: Option<usize>, pair: &dyn Fn(&PeerFacts) -> bool| {
            let from_restricted = sharing.iter().copied().find(|&e| pair(&facts[e]));
            let from_everywhere = from_everywhere.filter(|_| later_runs);
            [from_restricted, from_everywhere]
                .into_iter()
                .flatten()
                .min()
                .map(|e| &facts[e])
        };

        let asn_conflict = first(everywhere.other_asn(later), &|e| {
            e.vrf == later.vrf
                && e.my_asn.is_some()
                && later.my_asn.is_some()
                && e.my_asn != later.my_asn
        });
        if let (Some(earlier), Some(mine)) = (asn_conflict, later.my_asn) {
            problems.add(
                &later.reference,
                "spec.myASN",
                format!(
                    "Multiple local ASN not supported in FRR mode, myASN {mine} existing myASN {} \
                     ({} in {}); peers that can run on the same node must use one myASN per VRF",
                    earlier.my_asn.unwrap_or_default(),
                    earlier.reference,
                    vrf_text(&later.vrf)
                ),
            );
        }

        // One `router bgp` per node has one router ID, so as upstream: all peers that can
        // share a node set the same routerID, or none does (one set and one unset would give
        // the unset one the other's ID silently).
        let shown = |id: RouterIdFact| match id {
            RouterIdFact::Set(id) => id.to_string(),
            _ => "unset".to_string(),
        };
        let router_id_conflict = first(everywhere.other_router_id(later), &|e| {
            e.router_id != RouterIdFact::Invalid
                && later.router_id != RouterIdFact::Invalid
                && e.router_id != later.router_id
        });
        if let Some(earlier) = router_id_conflict {
            problems.add(
                &later.reference,
                "spec.routerID",
                format!(
                    "BGPPeers with different RouterID not supported in FRR mode, RouterID {} \
                     existing routerID {} ({}); peers that can run on the same node must all \
                     set the same routerID, or none",
                    shown(later.router_id),
                    shown(earlier.router_id),
                    earlier.reference
                ),
            );
        }

        let duplicate = first(everywhere.same_endpoint(later), &|e| {
            e.vrf == later.vrf && e.endpoint.is_some() && e.endpoint == later.endpoint
        });
        if let (Some(earlier), Some(endpoint)) = (duplicate, &later.endpoint) {
            let (field, shown) = match endpoint {
                PeerAddress::Ip(ip) => ("spec.peerAddress", ip.to_string()),
                PeerAddress::Interface(name) => ("spec.interface", format!("on interface {name}")),
            };
            problems.add(
                &later.reference,
                field,
                format!(
                    "Duplicate BGPPeer {shown} in the same BGP instance not supported in FRR mode: \
                     {} already peers with it in {}",
                    earlier.reference,
                    vrf_text(&later.vrf)
                ),
            );
        }
        if later.node_selectors.is_empty() {
            everywhere.add(index, later);
        } else {
            restricted.push(index);
        }
    }
}

/// Earlier peers without node selectors (they run on every node), indexed for the three
/// cross-peer rules: a check costs a few lookups instead of a selector test against every
/// earlier peer (1,000 peers were 500,000 tests per configuration build, and the admission
/// webhook builds one per request).
#[derive(Default)]
struct EverywherePeers<'a> {
    /// Per VRF, each distinct myASN with the first peer that set it.
    asns: BTreeMap<Option<&'a str>, Vec<(u32, usize)>>,
    /// Each distinct comparable router ID (set or unset) with the first peer that has it.
    router_ids: Vec<(RouterIdFact, usize)>,
    /// The first peer per VRF and endpoint.
    endpoints: BTreeMap<(Option<&'a str>, &'a PeerAddress), usize>,
}

impl<'a> EverywherePeers<'a> {
    fn add(&mut self, index: usize, peer: &'a PeerFacts) {
        let vrf = peer.vrf.as_deref();
        if let Some(asn) = peer.my_asn {
            let seen = self.asns.entry(vrf).or_default();
            if !seen.iter().any(|(a, _)| *a == asn) {
                seen.push((asn, index));
            }
        }
        if peer.router_id != RouterIdFact::Invalid
            && !self.router_ids.iter().any(|(id, _)| *id == peer.router_id)
        {
            self.router_ids.push((peer.router_id, index));
        }
        if let Some(endpoint) = &peer.endpoint {
            self.endpoints.entry((vrf, endpoint)).or_insert(index);
        }
    }

    /// The first peer in `later`'s VRF with another myASN.
    fn other_asn(&self, later: &PeerFacts) -> Option<usize> {
        let mine = later.my_asn?;
        self.asns
            .get(&later.vrf.as_deref())?
            .iter()
            .filter(|(asn, _)| *asn != mine)
            .map(|(_, index)| *index)
            .min()
    }

    /// The first peer with another comparable router ID.
    fn other_router_id(&self, later: &PeerFacts) -> Option<usize> {
        if later.router_id == RouterIdFact::Invalid {
            return None;
        }
        self.router_ids
            .iter()
            .filter(|(id, _)| *id != later.router_id)
            .map(|(_, index)| *index)
            .min()
    }

    /// The first peer in `later`'s VRF with the same endpoint.
    fn same_endpoint(&self, later: &PeerFacts) -> Option<usize> {
        let endpoint = later.endpoint.as_ref()?;
        self.endpoints
            .get(&(later.vrf.as_deref(), endpoint))
            .copied()
    }
}

// === Go durations ===

/// Why a duration is not a Go duration MetalLB can use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not Go duration syntax.
    #[error(
        "invalid duration {0:?}: expected a number and a unit (ns, us, ms, s, m, h), such as 90s, 3m or 1m30s"
    )]
    Syntax(String),
    /// Below zero.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
    /// Longer than Go can represent (about 292 years).
    #[error("invalid duration {0:?}: too long")]
    TooLong(String),
}

/// Parses a Go duration (`time.ParseDuration`: `300ms`, `1.5h`, `2h45m`, a lone `0`) with
/// [`kube::core::Duration`]. The text is checked first, because that parser panics on inputs
/// such as `1s-2s` or an overflowing number.
pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let seconds =
        go_duration_seconds(body).ok_or_else(|| DurationError::Syntax(text.to_string()))?;
    if negative && seconds > 0.0 {
        return Err(DurationError::Negative(text.to_string()));
    }
    if seconds > MAX_GO_DURATION_SECS {
        return Err(DurationError::TooLong(text.to_string()));
    }
    let parsed: kube::core::Duration = body
        .parse()
        .map_err(|_| DurationError::Syntax(text.to_string()))?;
    Ok(parsed.into())
}

/// Checks Go duration syntax without a sign and returns the approximate length in seconds.
fn go_duration_seconds(text: &str) -> Option<f64> {
    const UNITS: [(&str, f64); 8] = [
        ("ns", 1e-9),
        ("us", 1e-6),
        ("\u{00b5}s", 1e-6),
        ("\u{03bc}s", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ];
    if text == "0" {
        return Some(0.0);
    }
    let mut rest = text;
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty()
            || number.matches('.').count() > 1
            || !number.contains(|c: char| c.is_ascii_digit())
        {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let (unit, scale) = UNITS.iter().find(|(unit, _)| rest.starts_with(unit))?;
        rest = &rest[unit.len()..];
        total += value * scale;
    }
    (!text.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::test_support::*;

    fn peer(version: &str, name: &str, spec: &str) -> String {
        format!(
            "apiVersion: metallb.io/{version}\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec: {spec}\n---\n"
        )
    }

    fn v2(name: &str, spec: &str) -> String {
        peer("v1beta2", name, spec)
    }

    const BASE: &str = "myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1";

    #[test]
    fn go_durations_parse_and_never_panic() {
        assert_eq!(parse_go_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("+3s"), Ok(Duration::from_secs(3)));
        for bad in [
            "", "3", "s", "3x", "1s-2s", ".s", "1..5s", "00", "3 s", "1e3s", "NaNs", "infs",
        ] {
            assert!(
                matches!(parse_go_duration(bad), Err(DurationError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_go_duration("-3s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_go_duration("99999999999999999999h"),
            Err(DurationError::TooLong(_))
        ));
    }

    #[test]
    fn seed_peers_pass() {
        let seed = [
            peer("v1beta1", "doc-example-peer", "{peerAddress: 10.0.0.1, peerASN: 64501, myASN: 64500, routerID: 10.10.10.10}"),
            peer("v1beta1", "doc-example-nodesel", "{peerAddress: 10.0.20.1, peerASN: 64501, myASN: 64500, nodeSelectors: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [compute-1.example.com, compute-2.example.com]}]}]}"),
            peer("v1beta1", "doc-example-dual-stack-ipv6", "{peerAddress: '2620:52:0:88::104', peerASN: 64500, myASN: 64500}"),
        ]
        .concat();
        // The seed shows these as separate examples: applied together, the one routerID next
        // to two unset ones is upstream's "all RouterID must be equal" (this test used to
        // build them as one config).
        assert_problem(
            &seed,
            "BGPPeer/doc-example-peer: spec.routerID: BGPPeers with different RouterID",
        );
        let seed = seed.replace(", routerID: 10.10.10.10", "");
        let config = build_yaml(&seed).unwrap();
        let nodesel = &config.peers["doc-example-nodesel"];
        assert_eq!(nodesel.asn, PeerAsn::Number(64501));
        assert_eq!(nodesel.node_selectors.len(), 1);
        assert_eq!(nodesel.hold_time, None);
        let alone = build_yaml(&peer(
            "v1beta1",
            "doc-example-peer",
            "{peerAddress: 10.0.0.1, peerASN: 64501, myASN: 64500, routerID: 10.10.10.10}",
        ))
        .unwrap();
        assert_eq!(
            alone.peers["doc-example-peer"].router_id,
            Some(Ipv4Addr::new(10, 10, 10, 10))
        );
        let bfd = format!(
            "{}apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: doc-example-bfd-profile-full}}\n",
            peer(
                "v1beta1",
                "doc-example-peer-bfd",
                "{peerAddress: 10.0.20.1, peerASN: 64501, myASN: 64500, holdTime: \"10s\", bfdProfile: doc-example-bfd-profile-full}"
            )
        );
        let config = build_yaml(&bfd).unwrap();
        let with_bfd = &config.peers["doc-example-peer-bfd"];
        assert_eq!(with_bfd.hold_time, Some(Duration::from_secs(10)));
        assert_eq!(with_bfd.keepalive_time, Some(Duration::from_secs(3)));
        assert_eq!(
            with_bfd.bfd_profile.as_deref(),
            Some("doc-example-bfd-profile-full")
        );
    }

    #[test]
    fn my_asn_is_required() {
        assert_problem(
            &v2("p", "{myASN: 0, peerASN: 1, peerAddress: 10.0.0.1}"),
            "BGPPeer/p: spec.myASN: missing local ASN",
        );
    }

    #[test]
    fn peer_asn_xor_dynamic_asn() {
        assert_problem(
            &v2("p", "{myASN: 1, peerAddress: 10.0.0.1}"),
            "BGPPeer/p: spec.peerASN: missing peer ASN and dynamicASN",
        );
        assert_problem(
            &peer(
                "v1beta1",
                "p",
                "{myASN: 1, peerASN: 0, peerAddress: 10.0.0.1}",
            ),
            "spec.peerASN: missing peer ASN",
        );
        assert_problem(
            &v2(
                "p",
                "{myASN: 1, peerASN: 2, dynamicASN: external, peerAddress: 10.0.0.1}",
            ),
            "BGPPeer/p: spec.dynamicASN: both peer ASN and dynamicASN specified",
        );
        let config = build_yaml(&v2(
            "p",
            "{myASN: 1, dynamicASN: internal, peerAddress: 10.0.0.1}",
        ))
        .unwrap();
        assert_eq!(config.peers["p"].asn, PeerAsn::Internal);
    }

    #[test]
    fn peer_address_xor_interface() {
        assert_problem(
            &v2("p", "{myASN: 1, peerASN: 2}"),
            "BGPPeer/p: spec.peerAddress: peer has no peerAddress or interface specified",
        );
        assert_problem(
            &v2(
                "p",
                "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, interface: eth0}",
            ),
            "BGPPeer/p: spec.interface: peer has both peerAddress and interface specified",
        );
        let config = build_yaml(&v2("p", "{myASN: 1, peerASN: 2, interface: eth0}")).unwrap();
        assert_eq!(
            config.peers["p"].address,
            PeerAddress::Interface("eth0".into())
        );
        assert_problem(
            &v2(
                "p",
                "{myASN: 1, peerASN: 2, interface: averyveryverylongname}",
            ),
            "spec.interface: invalid interface name",
        );
    }

    #[test]
    fn addresses_must_be_ips() {
        assert_problem(
            &v2(
                "p",
                "{myASN: 1, peerASN: 2, peerAddress: router.example.com}",
            ),
            "BGPPeer/p: spec.peerAddress: invalid BGPPeer address \"router.example.com\"",
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, sourceAddress: 10.0.0.300}}")),
            "BGPPeer/p: spec.sourceAddress: invalid BGPPeer source address",
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, sourceAddress: '2001:db8::1'}}")),
            "spec.sourceAddress: source address 2001:db8::1 and peer address 10.0.0.1 are of different IP families",
        );
    }

    #[test]
    fn router_id_must_be_ipv4() {
        assert_problem(
            &v2("p", &format!("{{{BASE}, routerID: '2001:db8::1'}}")),
            "BGPPeer/p: spec.routerID: invalid router ID \"2001:db8::1\": must be an IPv4 address",
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, routerID: abc}}")),
            "spec.routerID: invalid router ID \"abc\": not an IP address",
        );
    }

    #[test]
    fn port_must_be_in_crd_range() {
        assert_problem(
            &v2("p", &format!("{{{BASE}, peerPort: 20000}}")),
            "BGPPeer/p: spec.peerPort: invalid port 20000",
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, peerPort: 0}}")),
            "spec.peerPort: invalid port 0",
        );
        assert_eq!(
            build_yaml(&v2("p", &format!("{{{BASE}, peerPort: 180}}")))
                .unwrap()
                .peers["p"]
                .port,
            Some(180)
        );
    }

    #[test]
    fn durations_must_parse() {
        assert_problem(
            &v2("p", &format!("{{{BASE}, holdTime: 10x}}")),
            "BGPPeer/p: spec.holdTime: invalid duration \"10x\"",
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, keepaliveTime: 500ms}}")),
            "spec.keepaliveTime: invalid duration \"500ms\": BGP timers are whole seconds",
        );
    }

    #[test]
    fn hold_time_is_zero_or_at_least_three_seconds() {
        assert_problem(
            &v2("p", &format!("{{{BASE}, holdTime: 2s}}")),
            "BGPPeer/p: spec.holdTime: invalid hold time \"2s\": must be 0 or >=3s",
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, holdTime: 20h}}")),
            "spec.holdTime: invalid hold time \"20h\": must be at most 65535s",
        );
        let config = build_yaml(&v2("p", &format!("{{{BASE}, holdTime: '0'}}"))).unwrap();
        assert_eq!(config.peers["p"].hold_time, Some(Duration::ZERO));
        assert_eq!(config.peers["p"].keepalive_time, Some(Duration::ZERO));
    }

    #[test]
    fn keepalive_must_not_exceed_hold_time() {
        assert_problem(
            &v2(
                "p",
                &format!("{{{BASE}, holdTime: 9s, keepaliveTime: 10s}}"),
            ),
            "BGPPeer/p: spec.keepaliveTime: invalid keepaliveTime \"10s\", must be lower than holdTime \"9s\"",
        );
    }

    #[test]
    fn v1beta1_keepalive_needs_hold_time() {
        assert_problem(
            &peer("v1beta1", "p", &format!("{{{BASE}, keepaliveTime: 10s}}")),
            "BGPPeer/p: spec.holdTime: missing holdTime: a v1beta1 BGPPeer that sets keepaliveTime (10s) must set holdTime too",
        );
    }

    #[test]
    fn v1beta2_derives_the_missing_timer() {
        let config = build_yaml(&v2("p", &format!("{{{BASE}, keepaliveTime: 20s}}"))).unwrap();
        assert_eq!(config.peers["p"].hold_time, Some(Duration::from_secs(60)));
        assert_eq!(
            config.peers["p"].keepalive_time,
            Some(Duration::from_secs(20))
        );
        let config = build_yaml(&v2("p", &format!("{{{BASE}, holdTime: 90s}}"))).unwrap();
        assert_eq!(
            config.peers["p"].keepalive_time,
            Some(Duration::from_secs(30))
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, keepaliveTime: 30000s}}")),
            "spec.keepaliveTime: invalid hold time 90000s (three times keepaliveTime \"30000s\"): must be at most 65535s",
        );
    }

    #[test]
    fn connect_time_is_whole_seconds_up_to_65535() {
        assert_problem(
            &v2("p", &format!("{{{BASE}, connectTime: 1500ms}}")),
            "BGPPeer/p: spec.connectTime: invalid connectTime \"1500ms\"",
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, connectTime: 0s}}")),
            "spec.connectTime",
        );
        assert_problem(
            &v2("p", &format!("{{{BASE}, connectTime: 70000s}}")),
            "spec.connectTime",
        );
        let config = build_yaml(&v2("p", &format!("{{{BASE}, connectTime: 5s}}"))).unwrap();
        assert_eq!(config.peers["p"].connect_time, Some(Duration::from_secs(5)));
    }

    #[test]
    fn ebgp_multihop_is_for_ebgp_only() {
        assert_problem(
            &v2(
                "p",
                "{myASN: 1, peerASN: 1, peerAddress: 10.0.0.1, ebgpMultiHop: true}",
            ),
            "BGPPeer/p: spec.ebgpMultiHop: invalid ebgp-multihop parameter set for an ibgp peer",
        );
        assert_problem(
            &v2(
                "p",
                "{myASN: 1, dynamicASN: internal, peerAddress: 10.0.0.1, ebgpMultiHop: true}",
            ),
            "spec.ebgpMultiHop",
        );
        assert!(
            problems(&v2(
                "p",
                "{myASN: 1, dynamicASN: external, peerAddress: 10.0.0.1, ebgpMultiHop: true}"
            ))
            .is_empty()
        );
    }

    #[test]
    fn local_asn_is_for_ebgp_only() {
        assert_problem(
            &v2(
                "p",
                "{myASN: 1, peerASN: 1, peerAddress: 10.0.0.1, localASN: 5}",
            ),
            "BGPPeer/p: spec.localASN: localASN is only valid for an eBGP peer",
        );
        assert_eq!(
            build_yaml(&v2("p", &format!("{{{BASE}, localASN: 65000}}")))
                .unwrap()
                .peers["p"]
                .local_asn,
            Some(65000)
        );
    }

    #[test]
    fn password_and_secret_are_exclusive() {
        assert_problem(
            &v2(
                "p",
                &format!("{{{BASE}, password: s3cret, passwordSecret: {{name: bgp-pass}}}}"),
            ),
            "BGPPeer/p: spec.passwordSecret: can not have both password and secret ref set",
        );
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-pass, namespace: metallb-system}\ntype: kubernetes.io/basic-auth\nstringData: {password: pw}\n---\n";
        let config = build_yaml(&format!(
            "{secret}{}",
            v2(
                "p",
                &format!(
                    "{{{BASE}, passwordSecret: {{name: bgp-pass, namespace: metallb-system}}}}"
                ),
            )
        ))
        .unwrap();
        assert_eq!(
            config.peers["p"].password,
            Some(Password::Secret {
                name: "bgp-pass".into(),
                namespace: Some("metallb-system".into())
            })
        );
        assert_problem(
            &v2(
                "p",
                &format!("{{{BASE}, passwordSecret: {{namespace: x}}}}"),
            ),
            "spec.passwordSecret.name: missing name",
        );
    }

    #[test]
    fn password_secret_must_be_in_metallbs_namespace() {
        let options = crate::config::LoadOptions {
            namespace: Some("metallb-system".into()),
        };
        let errors = build_yaml_with(
            &v2(
                "p",
                &format!("{{{BASE}, passwordSecret: {{name: s, namespace: default}}}}"),
            ),
            &options,
        )
        .unwrap_err();
        assert!(errors[0].to_string().starts_with("BGPPeer/p: spec.passwordSecret.namespace: the password Secret must be in MetalLB's namespace"));
    }

    #[test]
    fn a_missing_bfd_profile_awaits_the_profile() {
        let slow =
            "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: slow}\n---\n";
        assert_problem(
            &(slow.to_string() + &v2("p", &format!("{{{BASE}, bfdProfile: fast}}"))),
            "BGPPeer/p: spec.bfdProfile: BFD profile \"fast\" does not exist: the BFDProfiles defined are \"slow\"",
        );
        // With no BFDProfile at all the profile is missing too (this test used to accept it as
        // one living in the cluster): the webhook admits the peer, the controller and the
        // speaker leave it out and run the rest.
        let alone = load_yaml_with(
            &v2("p", &format!("{{{BASE}, bfdProfile: fast}}")),
            &Default::default(),
        );
        assert!(alone.problems[0].awaits_object(), "{:?}", alone.problems);
        assert_eq!(
            alone.problems[0].to_string(),
            "BGPPeer/p: spec.bfdProfile: BFD profile \"fast\" does not exist: there is no BFDProfile"
        );
        assert!(alone.config.expect("the rest runs").peers.is_empty());
    }

    #[test]
    fn multiple_my_asn_rejected_per_vrf() {
        let text = v2("a", "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}")
            + &v2("b", "{myASN: 64510, peerASN: 64501, peerAddress: 10.0.0.2}");
        assert_problem(
            &text,
            "BGPPeer/b: spec.myASN: Multiple local ASN not supported in FRR mode, myASN 64510 existing myASN 64500 (BGPPeer/a in the default VRF)",
        );
        let vrf = v2("a", "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}")
            + &v2(
                "b",
                "{myASN: 64510, peerASN: 64501, peerAddress: 10.0.0.2, vrf: red}",
            );
        assert!(problems(&vrf).is_empty());
    }

    #[test]
    fn peers_on_disjoint_nodes_may_differ() {
        let text = v2(
            "a",
            "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, routerID: 10.0.0.10, nodeSelectors: [{matchLabels: {zone: a}}]}",
        ) + &v2(
            "b",
            "{myASN: 64510, peerASN: 64501, peerAddress: 10.0.0.1, routerID: 10.0.0.11, nodeSelectors: [{matchLabels: {zone: b}}]}",
        );
        assert!(problems(&text).is_empty());
        // With Nodes known, only real overlap counts.
        let nodes =
            "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {zone: a, rack: '1'}}\n---\n";
        let racks = v2(
            "a",
            "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, nodeSelectors: [{matchLabels: {zone: a}}]}",
        ) + &v2(
            "b",
            "{myASN: 64510, peerASN: 64501, peerAddress: 10.0.0.2, nodeSelectors: [{matchLabels: {rack: '2'}}]}",
        );
        assert!(!problems(&racks).is_empty());
        assert!(problems(&format!("{nodes}{racks}")).is_empty());
    }

    #[test]
    fn router_ids_must_all_match_or_all_be_unset() {
        let text = v2("a", &format!("{{{BASE}, routerID: 10.10.10.10}}"))
            + &v2(
                "b",
                "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2, routerID: 10.10.10.11}",
            )
            + &v2("c", "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.3}");
        let found = problems(&text);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].starts_with("BGPPeer/b: spec.routerID: BGPPeers with different RouterID not supported in FRR mode, RouterID 10.10.10.11 existing routerID 10.10.10.10 (BGPPeer/a)"));
        // As upstream (this test used to accept it): one set and one unset conflict too.
        assert!(found[1].starts_with("BGPPeer/c: spec.routerID: BGPPeers with different RouterID not supported in FRR mode, RouterID unset existing routerID 10.10.10.10 (BGPPeer/a)"), "{found:#?}");
        // All unset, or all the same, is fine; so are peers that never share a node.
        let same = v2("a", &format!("{{{BASE}, routerID: 10.10.10.10}}"))
            + &v2(
                "b",
                "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2, routerID: 10.10.10.10}",
            );
        assert!(problems(&same).is_empty());
        let apart = v2(
            "a",
            &format!(
                "{{{BASE}, routerID: 10.10.10.10, nodeSelectors: [{{matchLabels: {{rack: r1}}}}]}}"
            ),
        ) + &v2(
            "b",
            "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2, nodeSelectors: [{matchLabels: {rack: r1}}]}",
        );
        assert!(
            !problems(&apart).is_empty(),
            "same selector: may share a node"
        );
    }

    #[test]
    fn duplicate_peer_address_rejected_per_vrf() {
        let text =
            v2("a", BASE_SPEC) + &v2("b", "{myASN: 64500, peerASN: 64502, peerAddress: 10.0.0.1}");
        assert_problem(
            &text,
            "BGPPeer/b: spec.peerAddress: Duplicate BGPPeer 10.0.0.1 in the same BGP instance not supported in FRR mode: BGPPeer/a already peers with it in the default VRF",
        );
        let vrf = v2("a", BASE_SPEC)
            + &v2(
                "b",
                "{myASN: 64500, peerASN: 64502, peerAddress: 10.0.0.1, vrf: red}",
            );
        assert!(problems(&vrf).is_empty());
        let unnumbered = v2("a", "{myASN: 1, peerASN: 2, interface: eth1}")
            + &v2("b", "{myASN: 1, peerASN: 3, interface: eth1}");
        assert_problem(
            &unnumbered,
            "BGPPeer/b: spec.interface: Duplicate BGPPeer on interface eth1",
        );
    }

    const BASE_SPEC: &str = "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}";

    #[test]
    fn duplicate_names_are_rejected() {
        let text = v2("a", BASE_SPEC)
            + &peer(
                "v1beta1",
                "a",
                "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2}",
            );
        assert_problem(
            &text,
            "BGPPeer/a: metadata.name: duplicate definition of BGPPeer \"a\"",
        );
    }

    #[test]
    fn resolution_fills_every_field() {
        let text = v2(
            "p",
            "{myASN: 64500, peerASN: 64501, peerAddress: '2001:db8::1', sourceAddress: '2001:db8::2', peerPort: 1179, holdTime: 30s, keepaliveTime: 10s, connectTime: 5s, routerID: 10.0.0.1, password: pw, enableGracefulRestart: true, ebgpMultiHop: true, vrf: '', dualStackAddressFamily: true, localASN: 64999}",
        );
        let peer = build_yaml(&text).unwrap().peers.remove("p").unwrap();
        assert_eq!(
            peer,
            Peer {
                name: "p".into(),
                my_asn: 64500,
                asn: PeerAsn::Number(64501),
                local_asn: Some(64999),
                address: PeerAddress::Ip("2001:db8::1".parse().unwrap()),
                source_address: Some("2001:db8::2".parse().unwrap()),
                port: Some(1179),
                hold_time: Some(Duration::from_secs(30)),
                keepalive_time: Some(Duration::from_secs(10)),
                connect_time: Some(Duration::from_secs(5)),
                router_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
                password: Some(Password::Plain("pw".into())),
                bfd_profile: None,
                graceful_restart: true,
                node_selectors: vec![],
                ebgp_multihop: true,
                vrf: None,
                dual_stack_address_family: true,
            }
        );
    }
}
