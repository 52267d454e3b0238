//! How pools are announced: the inline protocol and `bgpAdvertisements` of legacy AddressPools,
//! and L2Advertisement / BGPAdvertisement objects, attached to the pools they select.
//!
//! BGP advertisements of either origin go through the same checks: aggregation length bounds and
//! against the pool's prefixes, communities (literal or alias, no duplicates), and, once every
//! advertisement is attached, conflicting LOCAL_PREF for the same pool.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    community::{self, Aliases},
    peer::check_interface_name,
    pool::{AdvertisementOrigin, PoolDraft},
    problems::{ObjectRef, Problems, unique_by_name},
    selector::{NodeUniverse, convert_list, convert_one},
};
use crate::{
    api::{
        LabelSelector as ApiLabelSelector, address_pool::Protocol,
        bgp_advertisement::BGPAdvertisement,
        l2_advertisement::L2Advertisement as L2AdvertisementObject,
    },
    core::{
        address::Family,
        community::Community,
        config::{BgpAdvertisement, L2Advertisement},
        selector::LabelSelector,
    },
};

/// Weight range of an L2Advertisement's `preferredNodeSelectors`.
const PREFERENCE_WEIGHT: (i32, i32) = (1, 100);

type Drafts<'a> = BTreeMap<String, PoolDraft<'a>>;

// === legacy AddressPool ===

/// Reads the protocol and inline advertisements of every legacy AddressPool: `layer2` is one
/// L2 advertisement from every node on every interface; `bgp` is its `bgpAdvertisements`, or
/// one default advertisement (one /32 or /128 route per address, no LOCAL_PREF, no
/// communities) when there are none.
pub(crate) fn attach_legacy(drafts: &mut Drafts<'_>, aliases: &Aliases, problems: &mut Problems) {
    for draft in drafts.values_mut() {
        let Some(object) = draft.legacy else { continue };
        let origin = draft.origin.clone();
        let spec = &object.spec;
        match spec.protocol {
            Protocol::Layer2 => {
                if !spec.bgp_advertisements.is_empty() {
                    problems.add(
                        &origin,
                        "spec.bgpAdvertisements",
                        "bgpadvertisement config not valid for protocol layer2: set protocol: bgp or remove bgpAdvertisements",
                    );
                }
                draft.pool.l2_advertisements.push(L2Advertisement {
                    source: origin.to_string(),
                    ..Default::default()
                });
            }
            Protocol::Bgp if spec.bgp_advertisements.is_empty() => {
                draft.pool.bgp_advertisements.push(BgpAdvertisement {
                    source: origin.to_string(),
                    ..Default::default()
                });
                draft.bgp_origins.push(AdvertisementOrigin {
                    object: origin,
                    field: "spec".into(),
                });
            }
            Protocol::Bgp => {
                let mut seen: Vec<(usize, BgpAdvertisement)> = Vec::new();
                for (index, inline) in spec.bgp_advertisements.iter().enumerate() {
                    let field = format!("spec.bgpAdvertisements[{index}]");
                    let before = problems.len();
                    let (v4, v6) = aggregation_lengths(
                        &origin,
                        &field,
                        inline.aggregation_length,
                        inline.aggregation_length_v6,
                        problems,
                    );
                    check_aggregation_against_pool(&origin, &field, v4, v6, draft, problems);
                    let communities =
                        communities(&origin, &field, &inline.communities, aliases, problems);
                    let advertisement = BgpAdvertisement {
                        source: format!("{origin}[{index}]"),
                        aggregation_length_v4: v4.unwrap_or(32),
                        aggregation_length_v6: v6.unwrap_or(128),
                        local_pref: inline.local_pref,
                        communities,
                        ..Default::default()
                    };
                    if problems.len() == before {
                        let same = seen.iter().find(|(_, earlier)| {
                            same_legacy_advertisement(earlier, &advertisement)
                        });
                        if let Some((earlier_index, _)) = same {
                            problems.add(
                                &origin,
                                field.clone(),
                                format!(
                                    "duplicate definition of bgpadvertisement: identical to spec.bgpAdvertisements[{earlier_index}]"
                                ),
                            );
                        }
                        seen.push((index, advertisement.clone()));
                        // Only a sound advertisement is attached, so one that awaits a
                        // community alias announces nothing until the alias exists.
                        draft.pool.bgp_advertisements.push(advertisement);
                        draft.bgp_origins.push(AdvertisementOrigin {
                            object: origin.clone(),
                            field,
                        });
                    }
                }
            }
        }
    }
}

/// Inline advertisements are equal when everything but their source is (an unset LOCAL_PREF
/// counts as 0, as in MetalLB).
fn same_legacy_advertisement(a: &BgpAdvertisement, b: &BgpAdvertisement) -> bool {
    a.aggregation_length_v4 == b.aggregation_length_v4
        && a.aggregation_length_v6 == b.aggregation_length_v6
        && a.local_pref.unwrap_or(0) == b.local_pref.unwrap_or(0)
        && a.communities == b.communities
}

// === L2Advertisement ===

/// Checks every L2Advertisement and attaches it to the pools it selects, in name order.
pub(crate) fn attach_l2(
    objects: &[L2AdvertisementObject],
    drafts: &mut Drafts<'_>,
    problems: &mut Problems,
) {
    let named = objects.iter().map(|o| ("L2Advertisement", &o.metadata, o));
    let mut unique = unique_by_name(named, "L2Advertisement", problems);
    unique.sort_by(|a, b| a.0.cmp(&b.0));
    for (origin, object) in unique {
        let spec = &object.spec;
        let mut interfaces: Vec<String> = Vec::new();
        for (index, interface) in spec.interfaces.iter().enumerate() {
            let field = format!("spec.interfaces[{index}]");
            if let Err(reason) = check_interface_name(interface) {
                problems.add(&origin, field, reason);
            } else if let Some(first) = interfaces.iter().position(|i| i == interface) {
                problems.add(&origin, field, format!("duplicate definition of interfaces {interface:?}: same as interfaces[{first}]"));
            } else {
                interfaces.push(interface.clone());
            }
        }
        let mut preferred_nodes = Vec::new();
        for (index, preferred) in spec.preferred_node_selectors.iter().enumerate() {
            let field = format!("spec.preferredNodeSelectors[{index}]");
            let (min, max) = PREFERENCE_WEIGHT;
            let weight = u32::try_from(preferred.weight)
                .ok()
                .filter(|_| (min..=max).contains(&preferred.weight));
            if weight.is_none() {
                problems.add(
                    &origin,
                    format!("{field}.weight"),
                    format!(
                        "invalid weight {}: must be between {min} and {max}",
                        preferred.weight
                    ),
                );
            }
            let selector = convert_one(
                &origin,
                &format!("{field}.preference"),
                &preferred.preference,
                problems,
            );
            if let (Some(weight), Some(selector)) = (weight, selector) {
                preferred_nodes.push((weight, selector));
            }
        }
        let advertisement = L2Advertisement {
            source: origin.to_string(),
            node_selectors: convert_list(
                &origin,
                "spec.nodeSelectors",
                &spec.node_selectors,
                problems,
            ),
            interfaces,
            service_selectors: convert_list(
                &origin,
                "spec.serviceSelectors",
                &spec.service_selectors,
                problems,
            ),
            preferred_nodes,
        };
        let selection = selected_pools(
            &origin,
            &spec.ip_address_pools,
            &spec.ip_address_pool_selectors,
            drafts,
            problems,
        );
        for draft in drafts.values_mut().filter(|d| selection.selects(d)) {
            draft.pool.l2_advertisements.push(advertisement.clone());
        }
    }
}

// === BGPAdvertisement ===

/// What makes two BGPAdvertisements identical: their whole meaning, with defaults applied and
/// lists compared as sets.
#[derive(PartialEq)]
struct BgpAdvertisementKey {
    aggregation: (u8, u8),
    local_pref: u32,
    communities: BTreeSet<Community>,
    pools: BTreeSet<String>,
    pool_selectors: BTreeSet<LabelSelector>,
    node_selectors: BTreeSet<LabelSelector>,
    peers: BTreeSet<String>,
    service_selectors: BTreeSet<LabelSelector>,
}

/// Checks every BGPAdvertisement and attaches it to the pools it selects, in name order.
pub(crate) fn attach_bgp(
    objects: &[BGPAdvertisement],
    drafts: &mut Drafts<'_>,
    aliases: &Aliases,
    problems: &mut Problems,
) {
    let named = objects.iter().map(|o| ("BGPAdvertisement", &o.metadata, o));
    let mut unique = unique_by_name(named, "BGPAdvertisement", problems);
    unique.sort_by(|a, b| a.0.cmp(&b.0));
    let mut keys: Vec<(ObjectRef, BgpAdvertisementKey)> = Vec::new();
    for (origin, object) in unique {
        let spec = &object.spec;
        let before = problems.len();
        let (v4, v6) = aggregation_lengths(
            &origin,
            "spec",
            spec.aggregation_length,
            spec.aggregation_length_v6,
            problems,
        );
        // With service selectors only some services' addresses are announced, so an
        // aggregated route would also cover the addresses of services it does not select.
        if !spec.service_selectors.is_empty() {
            for (length, default, field) in [
                (v4, 32, "aggregationLength"),
                (v6, 128, "aggregationLengthV6"),
            ] {
                if length.is_some_and(|l| l != default) {
                    problems.add(
                        &origin,
                        "spec.serviceSelectors",
                        format!("serviceSelectors and {field} are mutually exclusive, both cannot be set"),
                    );
                }
            }
        }
        let communities = communities(&origin, "spec", &spec.communities, aliases, problems);
        let node_selectors = convert_list(
            &origin,
            "spec.nodeSelectors",
            &spec.node_selectors,
            problems,
        );
        let service_selectors = convert_list(
            &origin,
            "spec.serviceSelectors",
            &spec.service_selectors,
            problems,
        );
        let mut peer_names: Vec<String> = Vec::new();
        for (index, peer) in spec.peers.iter().enumerate() {
            let field = format!("spec.peers[{index}]");
            if let Some(first) = peer_names.iter().position(|p| p == peer) {
                problems.add(
                    &origin,
                    field,
                    format!("duplicate definition of peers {peer:?}: same as peers[{first}]"),
                );
                continue;
            }
            // A filter, not a reference (upstream's rule): a peer that does not exist (yet)
            // is simply not announced to.
            peer_names.push(peer.clone());
        }
        let selection = selected_pools(
            &origin,
            &spec.ip_address_pools,
            &spec.ip_address_pool_selectors,
            drafts,
            problems,
        );

        let advertisement = BgpAdvertisement {
            source: origin.to_string(),
            aggregation_length_v4: v4.unwrap_or(32),
            aggregation_length_v6: v6.unwrap_or(128),
            local_pref: spec.local_pref,
            communities,
            node_selectors,
            peers: peer_names,
            service_selectors,
        };

        if problems.len() == before {
            let key = BgpAdvertisementKey {
                aggregation: (
                    advertisement.aggregation_length_v4,
                    advertisement.aggregation_length_v6,
                ),
                local_pref: advertisement.local_pref.unwrap_or(0),
                communities: advertisement.communities.clone(),
                pools: spec.ip_address_pools.iter().cloned().collect(),
                pool_selectors: selection.selectors.iter().cloned().collect(),
                node_selectors: advertisement.node_selectors.iter().cloned().collect(),
                peers: advertisement.peers.iter().cloned().collect(),
                service_selectors: advertisement.service_selectors.iter().cloned().collect(),
            };
            if let Some((earlier, _)) = keys.iter().find(|(_, k)| *k == key) {
                problems.add(
                    &origin,
                    "spec",
                    format!("duplicate definition of bgpadvertisements: identical to {earlier}"),
                );
            }
            keys.push((origin.clone(), key));
        }

        // Only a sound advertisement is attached, so one that awaits a community alias
        // announces nothing until the alias exists.
        let sound = problems.len() == before;
        for draft in drafts.values_mut().filter(|d| selection.selects(d)) {
            check_aggregation_against_pool(&origin, "spec", v4, v6, draft, problems);
            if !sound {
                continue;
            }
            draft.pool.bgp_advertisements.push(advertisement.clone());
            draft.bgp_origins.push(AdvertisementOrigin {
                object: origin.clone(),
                field: "spec".into(),
            });
        }
    }
}

// === shared by both advertisement kinds ===

/// The pools an advertisement selects (see [`selected_pools`]).
struct PoolSelection {
    /// IPAddressPools listed in `ipAddressPools` that exist.
    named: BTreeSet<String>,
    /// Neither names nor selectors were written: every IPAddressPool.
    every: bool,
    /// The valid `ipAddressPoolSelectors`.
    selectors: Vec<LabelSelector>,
}

impl PoolSelection {
    /// Whether the advertisement attaches to `draft` (never a legacy AddressPool).
    fn selects(&self, draft: &PoolDraft<'_>) -> bool {
        draft.legacy.is_none()
            && (self.every
                || self.named.contains(&draft.origin.name)
                || self.selectors.iter().any(|s| s.matches(&draft.labels)))
    }
}

/// The pools an advertisement selects: by name, by label (its valid `ipAddressPoolSelectors`,
/// converted here), or every IPAddressPool when it writes neither (an invalid selector still
/// counts as written, so a bad selector never widens the choice to every pool). Names are checked (no duplicates, the pool
/// exists and is an IPAddressPool); legacy AddressPools are never selected, since they carry
/// their own advertisements. Returns the selection; its valid selectors are kept because BGP
/// compares them to find identical advertisements.
fn selected_pools(
    origin: &ObjectRef,
    names: &[String],
    written_selectors: &[ApiLabelSelector],
    drafts: &Drafts<'_>,
    problems: &mut Problems,
) -> PoolSelection {
    let selectors_written = !written_selectors.is_empty();
    let selectors = convert_list(
        origin,
        "spec.ipAddressPoolSelectors",
        written_selectors,
        problems,
    );
    let mut named = BTreeSet::new();
    let mut listed: Vec<&String> = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let field = format!("spec.ipAddressPools[{index}]");
        if let Some(first) = listed.iter().position(|n| *n == name) {
            problems.add(origin, field, format!("duplicate definition of ipAddressPools {name:?}: same as ipAddressPools[{first}]"));
            continue;
        }
        listed.push(name);
        match drafts.get(name) {
            // A filter, not a reference (upstream's rule): a pool that does not exist (yet)
            // selects nothing.
            None => {}
            Some(draft) if draft.legacy.is_some() => problems.add(
                origin,
                field,
                format!(
                    "pool {name:?} is a legacy AddressPool, which is announced by its own protocol \
                     and bgpAdvertisements; make it an IPAddressPool to announce it with {}",
                    if origin.kind.starts_with('L') {
                        "an L2Advertisement"
                    } else {
                        "a BGPAdvertisement"
                    }
                ),
            ),
            Some(_) => {
                named.insert(name.clone());
            }
        }
    }
    PoolSelection {
        named,
        every: names.is_empty() && !selectors_written,
        selectors,
    }
}

/// Aggregation lengths, checked against their family's width (1..=32, 1..=128). `None` when
/// unset or invalid.
fn aggregation_lengths(
    origin: &ObjectRef,
    field: &str,
    v4: Option<i32>,
    v6: Option<i32>,
    problems: &mut Problems,
) -> (Option<u8>, Option<u8>) {
    let mut check = |length: Option<i32>, family: Family, name: &str| {
        let length = length?;
        match u8::try_from(length) {
            Ok(valid) if (1..=family.bits()).contains(&valid) => Some(valid),
            _ => {
                problems.add(
                    origin,
                    format!("{field}.{name}"),
                    format!("invalid aggregation length {length} for {family}: must be between 1 and {}", family.bits()),
                );
                None
            }
        }
    };
    (
        check(v4, Family::V4, "aggregationLength"),
        check(v6, Family::V6, "aggregationLengthV6"),
    )
}

/// An aggregated route must not be wider than the pool's own prefixes, or it would attract
/// traffic for addresses outside the pool. Reported once per family, naming the first entry.
fn check_aggregation_against_pool(
    origin: &ObjectRef,
    field: &str,
    v4: Option<u8>,
    v6: Option<u8>,
    draft: &PoolDraft<'_>,
    problems: &mut Problems,
) {
    // An inline advertisement is about its own pool; a BGPAdvertisement names which pool.
    let pool_note = if *origin == draft.origin {
        String::new()
    } else {
        format!(" (pool {:?})", draft.origin.name)
    };
    for (length, family, name) in [
        (v4, Family::V4, "aggregationLength"),
        (v6, Family::V6, "aggregationLengthV6"),
    ] {
        let Some(length) = length else { continue };
        let too_specific = draft
            .entries
            .iter()
            .filter(|e| e.range.family() == family)
            .map(|e| (e, e.widest_prefix()))
            .find(|(_, prefix)| length < *prefix);
        if let Some((entry, prefix)) = too_specific {
            problems.add(
                origin,
                format!("{field}.{name}"),
                format!(
                    "invalid aggregation length {length}: prefix {prefix} in this pool is more specific \
                     than the aggregation length for addresses {}{pool_note}",
                    entry.text
                ),
            );
        }
    }
}

/// Resolves a `communities` list: each entry an alias or a literal, no value twice.
fn communities(
    origin: &ObjectRef,
    field: &str,
    entries: &[String],
    aliases: &Aliases,
    problems: &mut Problems,
) -> BTreeSet<Community> {
    let mut values: Vec<(usize, Community)> = Vec::new();
    for (index, text) in entries.iter().enumerate() {
        let item_field = format!("{field}.communities[{index}]");
        match community::resolve(text, aliases) {
            // An alias may be defined after the advertisement that uses it (the webhook admits
            // it, as MetalLB's does); a malformed literal is wrong whatever comes later.
            Err(message) if Community::looks_literal(text) => {
                problems.add(origin, item_field, message)
            }
            Err(message) => problems.add_awaiting(origin, item_field, message),
            Ok(None) => {}
            Ok(Some(value)) => {
                if let Some((first, _)) = values.iter().find(|(_, v)| *v == value) {
                    problems.add(
                        origin,
                        item_field,
                        format!(
                            "duplicate definition of communities: {text:?} is the same community ({value}) as communities[{first}]"
                        ),
                    );
                } else {
                    values.push((index, value));
                }
            }
        }
    }
    values.into_iter().map(|(_, v)| v).collect()
}

// === LOCAL_PREF conflicts ===

/// Two advertisements of one pool that can produce the same BGP update (same prefix, same peer,
/// same node) must agree on LOCAL_PREF. They cannot when their aggregation lengths differ for
/// the pool's families, their peer lists are both set and disjoint, or their node selections
/// cannot share a node (see [`NodeUniverse`]). Advertisements with service selectors are
/// skipped, as in MetalLB: which services they pick is unknown until services exist.
///
/// Reported on the later advertisement of each conflicting pair, once per pair.
pub(crate) fn check_local_prefs(
    drafts: &Drafts<'_>,
    nodes: &NodeUniverse,
    problems: &mut Problems,
) {
    let mut reported: BTreeSet<(AdvertisementOrigin, AdvertisementOrigin)> = BTreeSet::new();
    for draft in drafts.values() {
        let families = (draft.has_family(Family::V4), draft.has_family(Family::V6));
        let advertisements: Vec<(&BgpAdvertisement, &AdvertisementOrigin)> = draft
            .pool
            .bgp_advertisements
            .iter()
            .zip(&draft.bgp_origins)
            .collect();
        for (index, (later, later_origin)) in advertisements.iter().enumerate() {
            for (earlier, earlier_origin) in &advertisements[..index] {
                if compatible_local_prefs(earlier, later, families, nodes)
                    || !reported.insert(((*later_origin).clone(), (*earlier_origin).clone()))
                {
                    continue;
                }
                let earlier_name = if earlier_origin.object == later_origin.object {
                    earlier_origin.field.clone()
                } else {
                    earlier.source.clone()
                };
                problems.add(
                    &later_origin.object,
                    format!("{}.localPref", later_origin.field),
                    format!(
                        "invalid local preference {}: local preference {} was already set for the \
                         same type of BGP update by {earlier_name} for pool {:?}; advertisements of \
                         one pool with different localPref need different aggregation lengths, \
                         disjoint peers or disjoint nodes",
                        later.local_pref.unwrap_or(0),
                        earlier.local_pref.unwrap_or(0),
                        draft.pool.name
                    ),
                );
            }
        }
    }
}

/// MetalLB's `BGPAdvertisementsHaveCompatibleLocalPref`, with node overlap judged by
/// [`NodeUniverse`].
fn compatible_local_prefs(
    a: &BgpAdvertisement,
    b: &BgpAdvertisement,
    (has_v4, has_v6): (bool, bool),
    nodes: &NodeUniverse,
) -> bool {
    if !a.service_selectors.is_empty() || !b.service_selectors.is_empty() {
        return true;
    }
    if a.local_pref.unwrap_or(0) == b.local_pref.unwrap_or(0) {
        return true;
    }
    let v4_differs = a.aggregation_length_v4 != b.aggregation_length_v4;
    let v6_differs = a.aggregation_length_v6 != b.aggregation_length_v6;
    // Every family the pool has must produce a different prefix.
    let aggregation_differs = match (has_v4, has_v6) {
        (false, false) => true,
        (true, false) => v4_differs,
        (false, true) => v6_differs,
        (true, true) => v4_differs && v6_differs,
    };
    if aggregation_differs {
        return true;
    }
    if !a.peers.is_empty() && !b.peers.is_empty() && a.peers.iter().all(|p| !b.peers.contains(p)) {
        return true;
    }
    !nodes.may_share_node(&a.node_selectors, &b.node_selectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, load::test_support::*};

    fn object(kind: &str, name: &str, spec: &str) -> String {
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: {kind}\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec: {spec}\n---\n"
        )
    }

    fn legacy(name: &str, spec: &str) -> String {
        object("AddressPool", name, spec)
    }

    fn ip_pool(name: &str, spec: &str) -> String {
        object("IPAddressPool", name, spec)
    }

    fn bgp(name: &str, spec: &str) -> String {
        object("BGPAdvertisement", name, spec)
    }

    fn l2(name: &str, spec: &str) -> String {
        object("L2Advertisement", name, spec)
    }

    fn peer(name: &str, address: &str) -> String {
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}}}\nspec: {{myASN: 64500, peerASN: 64501, peerAddress: {address}}}\n---\n"
        )
    }

    const SEED_BGP_ADV: &str = "{protocol: bgp, addresses: [203.0.113.200/30, 'fc00:f853:ccd:e799::/124'], bgpAdvertisements: [{communities: ['65535:65282'], aggregationLength: 32, localPref: 100}, {communities: ['8000:800'], aggregationLength: 30, aggregationLengthV6: 124}]}";

    #[test]
    fn legacy_layer2_pool_gets_one_l2_advertisement() {
        let config = build_yaml(&legacy(
            "doc-example",
            "{protocol: layer2, addresses: [203.0.113.1-203.0.113.10, 203.0.113.65-203.0.113.75]}",
        ))
        .unwrap();
        let pool = &config.pools["doc-example"];
        assert_eq!(
            pool.l2_advertisements,
            [L2Advertisement {
                source: "AddressPool/doc-example".into(),
                ..Default::default()
            }]
        );
        assert!(pool.bgp_advertisements.is_empty());
    }

    #[test]
    fn legacy_bgp_pool_without_advertisements_gets_the_default_one() {
        let config = build_yaml(&legacy(
            "doc-example-bgp",
            "{protocol: bgp, addresses: [203.0.113.200/30, 'fc00:f853:ccd:e799::/124']}",
        ))
        .unwrap();
        let pool = &config.pools["doc-example-bgp"];
        assert!(pool.l2_advertisements.is_empty());
        assert_eq!(
            pool.bgp_advertisements,
            [BgpAdvertisement {
                source: "AddressPool/doc-example-bgp".into(),
                ..Default::default()
            }]
        );
        assert_eq!(pool.bgp_advertisements[0].aggregation_length_v4, 32);
        assert_eq!(pool.bgp_advertisements[0].local_pref, None);
    }

    #[test]
    fn legacy_seed_custom_advertisements_resolve() {
        let config = build_yaml(&legacy("doc-example-bgp-adv", SEED_BGP_ADV)).unwrap();
        let ads = &config.pools["doc-example-bgp-adv"].bgp_advertisements;
        assert_eq!(ads.len(), 2);
        assert_eq!(ads[0].source, "AddressPool/doc-example-bgp-adv[0]");
        assert_eq!(ads[0].local_pref, Some(100));
        assert_eq!(
            ads[0].communities.iter().collect::<Vec<_>>(),
            [&Community::Standard(65535, 65282)]
        );
        assert_eq!(ads[1].source, "AddressPool/doc-example-bgp-adv[1]");
        assert_eq!(
            (ads[1].aggregation_length_v4, ads[1].aggregation_length_v6),
            (30, 124)
        );
        assert_eq!(
            ads[1].communities.iter().collect::<Vec<_>>(),
            [&Community::Standard(8000, 800)]
        );
    }

    #[test]
    fn legacy_seed_no_advertise_and_well_known_names_parse() {
        let config = build_yaml(&legacy("doc-example-no-advertise", "{protocol: bgp, addresses: [192.168.1.100-192.168.1.255], bgpAdvertisements: [{communities: ['65535:65282', NO_EXPORT, 'large:1:2:3']}]}")).unwrap();
        assert_eq!(
            config.pools["doc-example-no-advertise"].bgp_advertisements[0]
                .communities
                .len(),
            3
        );
    }

    #[test]
    fn legacy_bgp_advertisements_need_protocol_bgp() {
        assert_problem(
            &legacy(
                "p",
                "{protocol: layer2, addresses: [10.0.0.0/24], bgpAdvertisements: [{localPref: 100}]}",
            ),
            "AddressPool/p: spec.bgpAdvertisements: bgpadvertisement config not valid for protocol layer2",
        );
    }

    #[test]
    fn legacy_aggregation_bounds() {
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: [10.0.0.0/24], bgpAdvertisements: [{aggregationLength: 33}]}",
            ),
            "AddressPool/p: spec.bgpAdvertisements[0].aggregationLength: invalid aggregation length 33 for IPv4: must be between 1 and 32",
        );
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: [10.0.0.0/24], bgpAdvertisements: [{aggregationLengthV6: 129}]}",
            ),
            "spec.bgpAdvertisements[0].aggregationLengthV6: invalid aggregation length 129 for IPv6",
        );
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: [10.0.0.0/24], bgpAdvertisements: [{aggregationLength: 0}]}",
            ),
            "spec.bgpAdvertisements[0].aggregationLength: invalid aggregation length 0",
        );
    }

    #[test]
    fn legacy_aggregation_not_wider_than_pool_prefix() {
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: [1.2.3.0/28], bgpAdvertisements: [{aggregationLength: 26}]}",
            ),
            "AddressPool/p: spec.bgpAdvertisements[0].aggregationLength: invalid aggregation length 26: prefix 28 in this pool is more specific than the aggregation length for addresses 1.2.3.0/28",
        );
        // A range is judged by its widest CIDR, as MetalLB does.
        assert!(problems(&legacy("p", "{protocol: bgp, addresses: [192.168.255.1-192.168.255.5], bgpAdvertisements: [{aggregationLength: 31}]}")).is_empty());
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: ['fc00::/124'], bgpAdvertisements: [{aggregationLengthV6: 120}]}",
            ),
            "spec.bgpAdvertisements[0].aggregationLengthV6: invalid aggregation length 120: prefix 124",
        );
    }

    #[test]
    fn legacy_communities_parse_and_are_unique() {
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: [10.0.0.0/24], bgpAdvertisements: [{communities: ['1:1', '1:99999']}]}",
            ),
            "AddressPool/p: spec.bgpAdvertisements[0].communities[1]: invalid community \"1:99999\"",
        );
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: [10.0.0.0/24], bgpAdvertisements: [{communities: ['65535:65282', NO_ADVERTISE]}]}",
            ),
            "AddressPool/p: spec.bgpAdvertisements[0].communities[1]: duplicate definition of communities: \"NO_ADVERTISE\" is the same community (65535:65282) as communities[0]",
        );
    }

    #[test]
    fn legacy_identical_advertisements_are_rejected() {
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: [10.0.0.0/24], bgpAdvertisements: [{localPref: 100}, {localPref: 100, aggregationLength: 32}]}",
            ),
            "AddressPool/p: spec.bgpAdvertisements[1]: duplicate definition of bgpadvertisement: identical to spec.bgpAdvertisements[0]",
        );
    }

    #[test]
    fn legacy_conflicting_local_pref() {
        assert_problem(
            &legacy(
                "p",
                "{protocol: bgp, addresses: [10.0.0.0/24], bgpAdvertisements: [{localPref: 100}, {localPref: 200, communities: ['1:1']}]}",
            ),
            "AddressPool/p: spec.bgpAdvertisements[1].localPref: invalid local preference 200: local preference 100 was already set for the same type of BGP update by spec.bgpAdvertisements[0]",
        );
    }

    #[test]
    fn advertisements_select_pools_by_name_label_or_all() {
        let text = ip_pool("gold", "{addresses: [10.0.0.0/24]}")
            + &object("IPAddressPool", "silver", "{addresses: [10.0.1.0/24]}")
                .replace("name: silver,", "name: silver, labels: {tier: silver},")
            + &legacy("old", "{protocol: layer2, addresses: [10.0.2.0/24]}")
            + &l2("all", "{}")
            + &l2(
                "by-label",
                "{ipAddressPoolSelectors: [{matchLabels: {tier: silver}}]}",
            )
            + &bgp("by-name", "{ipAddressPools: [gold]}");
        let config = build_yaml(&text).unwrap();
        let sources = |pool: &str| {
            config.pools[pool]
                .l2_advertisements
                .iter()
                .map(|a| a.source.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(sources("gold"), ["L2Advertisement/all"]);
        assert_eq!(
            sources("silver"),
            ["L2Advertisement/all", "L2Advertisement/by-label"]
        );
        assert_eq!(sources("old"), ["AddressPool/old"]);
        assert_eq!(
            config.pools["gold"].bgp_advertisements[0].source,
            "BGPAdvertisement/by-name"
        );
        assert!(config.pools["silver"].bgp_advertisements.is_empty());
    }

    #[test]
    fn invalid_pool_selectors_do_not_select_every_pool() {
        let text = ip_pool("p", "{addresses: [1.2.3.0/28]}")
            + &bgp(
                "a",
                "{aggregationLength: 24, ipAddressPoolSelectors: [{matchExpressions: [{key: tier, operator: Bogus}]}]}",
            );
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("spec.ipAddressPoolSelectors[0].matchExpressions[0].operator"));
    }

    #[test]
    fn named_pools_are_filters_listed_once_and_ip_address_pools() {
        // Upstream's rule (this test used to expect "does not exist"): a pool that is not
        // there selects nothing, and the advertisement is attached once it is.
        let config = build_yaml(
            &(ip_pool("p", "{addresses: [10.0.0.0/24]}")
                + &bgp("a", "{ipAddressPools: [nope]}")
                + &l2("b", "{ipAddressPools: [nope]}")),
        )
        .unwrap();
        assert!(config.pools["p"].bgp_advertisements.is_empty());
        assert!(config.pools["p"].l2_advertisements.is_empty());
        let config = build_yaml(
            &(ip_pool("nope", "{addresses: [10.0.0.0/24]}")
                + &bgp("a", "{ipAddressPools: [nope]}")),
        )
        .unwrap();
        assert_eq!(config.pools["nope"].bgp_advertisements.len(), 1);
        assert_problem(
            &(ip_pool("p", "{addresses: [10.0.0.0/24]}") + &l2("a", "{ipAddressPools: [p, p]}")),
            "L2Advertisement/a: spec.ipAddressPools[1]: duplicate definition of ipAddressPools \"p\"",
        );
        assert_problem(
            &(legacy("old", "{protocol: bgp, addresses: [10.0.0.0/24]}")
                + &bgp("a", "{ipAddressPools: [old]}")),
            "BGPAdvertisement/a: spec.ipAddressPools[0]: pool \"old\" is a legacy AddressPool",
        );
    }

    #[test]
    fn bgp_aggregation_checked_per_selected_pool() {
        let text = ip_pool("p", "{addresses: [1.2.3.0/28]}") + &bgp("a", "{aggregationLength: 26}");
        assert_problem(
            &text,
            "BGPAdvertisement/a: spec.aggregationLength: invalid aggregation length 26: prefix 28 in this pool is more specific than the aggregation length for addresses 1.2.3.0/28 (pool \"p\")",
        );
        assert_problem(
            &bgp("a", "{aggregationLengthV6: 130}"),
            "BGPAdvertisement/a: spec.aggregationLengthV6: invalid aggregation length 130 for IPv6",
        );
    }

    #[test]
    fn bgp_service_selectors_exclude_aggregation() {
        assert_problem(
            &bgp(
                "a",
                "{aggregationLength: 24, serviceSelectors: [{matchLabels: {app: web}}]}",
            ),
            "BGPAdvertisement/a: spec.serviceSelectors: serviceSelectors and aggregationLength are mutually exclusive",
        );
        assert!(
            problems(&bgp(
                "a",
                "{aggregationLength: 32, serviceSelectors: [{matchLabels: {app: web}}]}"
            ))
            .is_empty()
        );
    }

    #[test]
    fn bgp_communities_resolve_aliases() {
        let text = object(
            "Community",
            "c",
            "{communities: [{name: gold, value: 'large:64500:1:1'}]}",
        ) + &ip_pool("p", "{addresses: [10.0.0.0/24]}")
            + &bgp("a", "{communities: [gold, NO_EXPORT]}");
        let config = build_yaml(&text).unwrap();
        let communities: Vec<_> = config.pools["p"].bgp_advertisements[0]
            .communities
            .iter()
            .copied()
            .collect();
        assert_eq!(
            communities,
            [
                Community::Standard(65535, 65281),
                Community::Large(64500, 1, 1)
            ]
        );
        assert_problem(
            &bgp("a", "{communities: [silver]}"),
            "BGPAdvertisement/a: spec.communities[0]: unknown community alias \"silver\"",
        );
        // The alias may still come: the rest runs, without this advertisement.
        let loaded = load_yaml_with(
            &(ip_pool("p", "{addresses: [10.0.0.0/24]}") + &bgp("a", "{communities: [silver]}")),
            &Default::default(),
        );
        assert!(loaded.problems.iter().all(ConfigError::awaits_object));
        assert!(
            loaded.config.unwrap().pools["p"]
                .bgp_advertisements
                .is_empty()
        );
        // A malformed literal is wrong whatever comes later.
        let loaded = load_yaml_with(&bgp("a", "{communities: ['70000:1']}"), &Default::default());
        assert_eq!(loaded.blocking().count(), 1, "{:?}", loaded.problems);
        assert_problem(
            &bgp("a", "{communities: ['1:1', '1:1']}"),
            "BGPAdvertisement/a: spec.communities[1]: duplicate definition of communities",
        );
    }

    #[test]
    fn bgp_peers_are_filters_listed_once() {
        // Upstream's rule (this test used to expect "does not exist"): an advertisement applied
        // before its peer is valid and announces to nobody until the peer exists.
        let config = build_yaml(
            &(ip_pool("p", "{addresses: [10.0.0.0/24]}")
                + &peer("r1", "10.0.0.1")
                + &bgp("a", "{peers: [nope]}")),
        )
        .unwrap();
        assert_eq!(config.pools["p"].bgp_advertisements[0].peers, ["nope"]);
        assert_problem(
            &(peer("r1", "10.0.0.1") + &bgp("a", "{peers: [r1, r1]}")),
            "BGPAdvertisement/a: spec.peers[1]: duplicate definition of peers \"r1\"",
        );
    }

    #[test]
    fn bgp_identical_advertisements_are_rejected() {
        let text = bgp("b", "{localPref: 50, peers: []}")
            + &bgp("a", "{localPref: 50, aggregationLength: 32}");
        assert_problem(
            &text,
            "BGPAdvertisement/b: spec: duplicate definition of bgpadvertisements: identical to BGPAdvertisement/a",
        );
    }

    #[test]
    fn bgp_conflicting_local_pref_and_its_exceptions() {
        let pool = ip_pool("p", "{addresses: [10.0.0.0/24]}");
        let conflict = pool.clone() + &bgp("a", "{localPref: 100}") + &bgp("b", "{localPref: 200}");
        assert_problem(
            &conflict,
            "BGPAdvertisement/b: spec.localPref: invalid local preference 200: local preference 100 was already set for the same type of BGP update by BGPAdvertisement/a for pool \"p\"",
        );
        let aggregated = pool.clone()
            + &bgp("a", "{localPref: 100}")
            + &bgp("b", "{localPref: 200, aggregationLength: 24}");
        assert!(problems(&aggregated).is_empty());
        let peers = pool.clone()
            + &peer("r1", "10.9.0.1")
            + &peer("r2", "10.9.0.2")
            + &bgp("a", "{localPref: 100, peers: [r1]}")
            + &bgp("b", "{localPref: 200, peers: [r2]}");
        assert!(problems(&peers).is_empty());
        let nodes = pool.clone()
            + &bgp(
                "a",
                "{localPref: 100, nodeSelectors: [{matchLabels: {zone: a}}]}",
            )
            + &bgp(
                "b",
                "{localPref: 200, nodeSelectors: [{matchLabels: {zone: b}}]}",
            );
        assert!(problems(&nodes).is_empty());
        let maybe = pool.clone()
            + &bgp(
                "a",
                "{localPref: 100, nodeSelectors: [{matchLabels: {zone: a}}]}",
            )
            + &bgp(
                "b",
                "{localPref: 200, nodeSelectors: [{matchLabels: {rack: '1'}}]}",
            );
        assert!(!problems(&maybe).is_empty());
        let known = "apiVersion: v1\nkind: Node\nmetadata: {name: n, labels: {zone: a}}\n---\n"
            .to_string()
            + &maybe;
        assert!(problems(&known).is_empty());
        let dual = ip_pool("p", "{addresses: [10.0.0.0/24, 'fc00::/120']}")
            + &bgp("a", "{localPref: 100}")
            + &bgp("b", "{localPref: 200, aggregationLength: 24}");
        assert!(
            !problems(&dual).is_empty(),
            "IPv6 routes of both are the same /128"
        );
    }

    #[test]
    fn l2_interfaces_and_weights_are_checked() {
        assert_problem(
            &l2("a", "{interfaces: ['']}"),
            "L2Advertisement/a: spec.interfaces[0]: interface name must not be empty",
        );
        assert_problem(
            &l2("a", "{interfaces: [eth0, eth0]}"),
            "L2Advertisement/a: spec.interfaces[1]: duplicate definition of interfaces",
        );
        assert_problem(
            &l2(
                "a",
                "{preferredNodeSelectors: [{weight: 0, preference: {matchLabels: {a: b}}}]}",
            ),
            "L2Advertisement/a: spec.preferredNodeSelectors[0].weight: invalid weight 0: must be between 1 and 100",
        );
        assert_problem(
            &l2(
                "a",
                "{preferredNodeSelectors: [{weight: 10, preference: {matchExpressions: [{key: a, operator: Maybe}]}}]}",
            ),
            "spec.preferredNodeSelectors[0].preference.matchExpressions[0].operator: unknown operator \"Maybe\"",
        );
    }

    #[test]
    fn l2_advertisement_resolves() {
        let text = ip_pool("p", "{addresses: [10.0.0.0/24]}")
            + &l2(
                "a",
                "{interfaces: [eth0], nodeSelectors: [{matchLabels: {zone: a}}], preferredNodeSelectors: [{weight: 50, preference: {matchLabels: {rack: '1'}}}]}",
            );
        let config = build_yaml(&text).unwrap();
        let advertisement = &config.pools["p"].l2_advertisements[0];
        assert_eq!(advertisement.interfaces, ["eth0"]);
        assert_eq!(advertisement.node_selectors[0].match_labels["zone"], "a");
        assert_eq!(advertisement.preferred_nodes[0].0, 50);
    }
}
