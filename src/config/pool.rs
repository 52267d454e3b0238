//! Address pools of both API styles (legacy `AddressPool`, `IPAddressPool`): one name space and
//! one address space.
//!
//! Each pool becomes a [`PoolDraft`]: the core [`Pool`] being built plus what later steps need
//! to check advertisements against it (its labels, its address entries as written, where each
//! attached BGP advertisement came from). Advertisements are attached by
//! [`super::advertisement`].

use std::collections::BTreeMap;

use super::{
    problems::{ObjectRef, Problems, unique_by_name},
    selector::convert_list,
};
use crate::{
    api::{
        address_pool::v1beta1::AddressPool,
        ip_address_pool::{IPAddressPool, ServiceAllocation as ApiServiceAllocation},
    },
    core::{
        address::{Family, IpRange},
        config::{Pool, ServiceAllocation},
        selector::Labels,
    },
};

/// One valid entry of `spec.addresses`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AddressEntry {
    /// Index in `spec.addresses`.
    pub index: usize,
    /// The entry as written (trimmed), for messages.
    pub text: String,
    /// The parsed range.
    pub range: IpRange,
}

impl AddressEntry {
    /// The widest prefix among the CIDRs that make up the entry: aggregating to a shorter
    /// prefix would announce addresses outside the pool (MetalLB's `lowestMask`).
    pub(crate) fn widest_prefix(&self) -> u8 {
        self.range
            .cidrs()
            .iter()
            .map(|net| net.prefix_len())
            .min()
            .unwrap_or(self.range.family().bits())
    }
}

/// Where an attached BGP advertisement was defined, for messages about it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AdvertisementOrigin {
    /// The object that defined it: a BGPAdvertisement, or the legacy AddressPool itself.
    pub object: ObjectRef,
    /// Its field path prefix: `spec`, or `spec.bgpAdvertisements[1]` for an inline one.
    pub field: String,
}

/// A pool while advertisements are attached to it.
#[derive(Clone, Debug)]
pub(crate) struct PoolDraft<'a> {
    /// The object it came from.
    pub origin: ObjectRef,
    /// Its labels, which advertisements' `ipAddressPoolSelectors` match.
    pub labels: Labels,
    /// The legacy AddressPool, whose protocol and inline advertisements still need reading.
    pub legacy: Option<&'a AddressPool>,
    /// The address entries that parsed.
    pub entries: Vec<AddressEntry>,
    /// The pool being built.
    pub pool: Pool,
    /// Parallel to `pool.bgp_advertisements`: where each came from.
    pub bgp_origins: Vec<AdvertisementOrigin>,
}

impl PoolDraft<'_> {
    /// Whether the pool has addresses of `family`.
    pub(crate) fn has_family(&self, family: Family) -> bool {
        self.entries.iter().any(|e| e.range.family() == family)
    }

    /// The finished pool.
    pub(crate) fn into_pool(self) -> Pool {
        self.pool
    }
}

/// Either kind of pool object.
#[derive(Clone, Copy)]
enum PoolObject<'a> {
    Legacy(&'a AddressPool),
    Current(&'a IPAddressPool),
}

/// Checks every pool of both kinds (names, addresses, service allocation, overlaps) and returns
/// the drafts by name.
pub(crate) fn pools<'a>(
    resources: &'a super::Resources,
    problems: &mut Problems,
) -> BTreeMap<String, PoolDraft<'a>> {
    let legacy = resources
        .address_pools
        .iter()
        .map(|p| ("AddressPool", &p.metadata, PoolObject::Legacy(p)));
    let current = resources
        .ip_address_pools
        .iter()
        .map(|p| ("IPAddressPool", &p.metadata, PoolObject::Current(p)));
    let unique = unique_by_name(legacy.chain(current), "pool", problems);
    // Collected, then made a map in one pass (sorting what is mostly sorted already).
    let mut drafts = Vec::with_capacity(unique.len());
    for (origin, object) in unique {
        let (addresses, auto_assign, avoid_buggy_ips) = match object {
            PoolObject::Legacy(p) => (
                &p.spec.addresses,
                p.spec.auto_assign,
                p.spec.avoid_buggy_ips,
            ),
            PoolObject::Current(p) => (
                &p.spec.addresses,
                p.spec.auto_assign,
                p.spec.avoid_buggy_ips,
            ),
        };
        let entries = parse_addresses(&origin, addresses, problems);
        let allocation = match object {
            PoolObject::Current(p) => p
                .spec
                .service_allocation
                .as_ref()
                .map(|a| service_allocation(&origin, a, problems)),
            PoolObject::Legacy(_) => None,
        };
        let labels = match object {
            PoolObject::Current(p) => p.metadata.labels.clone().unwrap_or_default(),
            PoolObject::Legacy(_) => Labels::new(),
        };
        let pool = Pool {
            name: origin.name.clone(),
            ranges: entries.iter().map(|e| e.range).collect(),
            auto_assign,
            avoid_buggy_ips,
            allocation,
            l2_advertisements: Vec::new(),
            bgp_advertisements: Vec::new(),
        };
        let legacy = match object {
            PoolObject::Legacy(p) => Some(p),
            PoolObject::Current(_) => None,
        };
        let draft = PoolDraft {
            origin,
            labels,
            legacy,
            entries,
            pool,
            bgp_origins: Vec::new(),
        };
        drafts.push((draft.origin.name.clone(), draft));
    }
    let drafts: BTreeMap<String, PoolDraft<'a>> = drafts.into_iter().collect();
    check_overlaps(&drafts, problems);
    drafts
}

fn parse_addresses(
    origin: &ObjectRef,
    addresses: &[String],
    problems: &mut Problems,
) -> Vec<AddressEntry> {
    if addresses.is_empty() {
        problems.add(
            origin,
            "spec.addresses",
            "pool has no prefixes defined: list at least one CIDR (10.0.0.0/24) or range (10.0.0.1-10.0.0.9)",
        );
    }
    let mut entries = Vec::new();
    for (index, text) in addresses.iter().enumerate() {
        match IpRange::parse(text) {
            Ok(range) => entries.push(AddressEntry {
                index,
                text: text.trim().to_string(),
                range,
            }),
            Err(e) => problems.add(origin, format!("spec.addresses[{index}]"), e.to_string()),
        }
    }
    entries
}

fn service_allocation(
    origin: &ObjectRef,
    api: &ApiServiceAllocation,
    problems: &mut Problems,
) -> ServiceAllocation {
    let priority = match api.priority {
        None => 0,
        Some(priority) => u32::try_from(priority).unwrap_or_else(|_| {
            problems.add(
                origin,
                "spec.serviceAllocation.priority",
                format!("invalid priority {priority}: must be 0 (none) or positive; lower numbers are tried first"),
            );
            0
        }),
    };
    let mut namespaces = std::collections::BTreeSet::new();
    for (index, namespace) in api.namespaces.iter().enumerate() {
        let field = format!("spec.serviceAllocation.namespaces[{index}]");
        if namespace.is_empty() {
            problems.add(origin, field, "namespace name must not be empty");
        } else if !namespaces.insert(namespace.clone()) {
            problems.add(
                origin,
                field,
                format!("duplicate definition in namespaces field: {namespace:?} is listed twice"),
            );
        }
    }
    ServiceAllocation {
        priority,
        namespaces,
        namespace_selectors: convert_list(
            origin,
            "spec.serviceAllocation.namespaceSelectors",
            &api.namespace_selectors,
            problems,
        ),
        service_selectors: convert_list(
            origin,
            "spec.serviceAllocation.serviceSelectors",
            &api.service_selectors,
            problems,
        ),
    }
}

/// No address may belong to two pools, or twice to one pool: each overlapping pair of entries
/// is reported once, on the entry of the pool later in name order (or the later entry of the
/// same pool).
fn check_overlaps(drafts: &BTreeMap<String, PoolDraft<'_>>, problems: &mut Problems) {
    let all: Vec<(&PoolDraft<'_>, &AddressEntry)> = drafts
        .values()
        .flat_map(|d| d.entries.iter().map(move |e| (d, e)))
        .collect();
    let ranges: Vec<IpRange> = all.iter().map(|(_, e)| e.range).collect();
    for (later, earlier) in overlapping_pairs(&ranges) {
        let ((pool, entry), (earlier_pool, earlier)) = (all[later], all[earlier]);
        problems.add(
            &pool.origin,
            format!("spec.addresses[{}]", entry.index),
            format!(
                "{} {:?} in pool {:?} overlaps with already defined {} {:?} in pool {:?}",
                entry_word(entry),
                entry.text,
                pool.origin.name,
                entry_word(earlier),
                earlier.text,
                earlier_pool.origin.name
            ),
        );
    }
}

/// Every overlapping pair of `ranges` as (later index, earlier index), sorted. A sweep by start
/// address (every range still open when another starts overlaps it) rather than a test of every
/// pair: the webhook runs this on every pool change, and 1,000 entries would be 500,000 tests.
fn overlapping_pairs(ranges: &[IpRange]) -> Vec<(usize, usize)> {
    let mut by_start: Vec<usize> = (0..ranges.len()).collect();
    by_start.sort_by_key(|&i| ranges[i].start());
    let mut open: Vec<usize> = Vec::new();
    let mut pairs = Vec::new();
    for i in by_start {
        // IpAddr orders every IPv4 address before every IPv6 one, so an IPv4 range is closed
        // before the first IPv6 range starts.
        open.retain(|&o| ranges[o].end() >= ranges[i].start());
        pairs.extend(open.iter().map(|&o| (o.max(i), o.min(i))));
        open.push(i);
    }
    pairs.sort_unstable();
    pairs
}

/// "CIDR" for `a/n` entries, "range" for `a-b` ones.
fn entry_word(entry: &AddressEntry) -> &'static str {
    if entry.text.contains('-') {
        "range"
    } else {
        "CIDR"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::test_support::*;

    fn ip_pool(name: &str, spec: &str) -> String {
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec: {spec}\n---\n"
        )
    }

    fn legacy_pool(name: &str, spec: &str) -> String {
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: AddressPool\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec: {spec}\n---\n"
        )
    }

    #[test]
    fn seed_pools_resolve() {
        let text = legacy_pool(
            "doc-example-cidr",
            "{protocol: layer2, addresses: [192.168.100.0/24, 192.168.200.0/24, 192.168.255.1-192.168.255.5]}",
        ) + &legacy_pool(
            "doc-example-reserved",
            "{protocol: layer2, addresses: [10.0.100.0/28], autoAssign: false}",
        ) + &legacy_pool(
            "doc-example-combined",
            "{protocol: layer2, addresses: [10.0.100.16/28, '2002:2:2::1-2002:2:2::100']}",
        );
        let config = build_yaml(&text).unwrap();
        let cidr = &config.pools["doc-example-cidr"];
        assert_eq!(cidr.ranges.len(), 3);
        assert_eq!(cidr.ranges[2].to_string(), "192.168.255.1-192.168.255.5");
        assert!(cidr.auto_assign);
        assert!(!config.pools["doc-example-reserved"].auto_assign);
        assert_eq!(
            config.pools["doc-example-combined"].ranges[1].family(),
            Family::V6
        );
    }

    #[test]
    fn addresses_must_parse_with_the_entry_named() {
        assert_problem(
            &ip_pool("p", "{addresses: [10.0.0.0/24, 10.0.1.0/33]}"),
            "IPAddressPool/p: spec.addresses[1]: invalid CIDR \"10.0.1.0/33\"",
        );
        assert_problem(
            &ip_pool("p", "{addresses: [10.0.0.9-10.0.0.1]}"),
            "spec.addresses[0]: invalid IP range \"10.0.0.9-10.0.0.1\": start IP 10.0.0.9 is after the end IP 10.0.0.1",
        );
        assert_problem(
            &ip_pool("p", "{addresses: [10.0.0.1]}"),
            "spec.addresses[0]: invalid address \"10.0.0.1\": write a single address as a range",
        );
        assert_problem(
            &legacy_pool("p", "{protocol: layer2, addresses: ['10.0.0.1-::1']}"),
            "AddressPool/p: spec.addresses[0]: invalid IP range",
        );
    }

    #[test]
    fn pool_needs_addresses() {
        assert_problem(
            &ip_pool("p", "{addresses: []}"),
            "IPAddressPool/p: spec.addresses: pool has no prefixes defined",
        );
    }

    #[test]
    fn names_are_unique_across_both_kinds() {
        let text = legacy_pool("x", "{protocol: layer2, addresses: [10.0.0.0/24]}")
            + &ip_pool("x", "{addresses: [10.0.1.0/24]}");
        assert_problem(
            &text,
            "IPAddressPool/x: metadata.name: duplicate definition of pool \"x\" (already used by an AddressPool)",
        );
    }

    #[test]
    fn the_sweep_finds_exactly_the_pairs_that_overlap() {
        // A small linear congruential generator: the same ranges on every run.
        let mut seed: u64 = 0x5eed;
        let mut next = move |bound: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % bound
        };
        for _ in 0..50 {
            let ranges: Vec<IpRange> = (0..40)
                .map(|_| {
                    let (a, b) = (next(300), next(300));
                    let (lo, hi) = (a.min(b), a.max(b));
                    let text = if next(2) == 0 {
                        format!(
                            "10.0.{}.{}-10.0.{}.{}",
                            lo / 256,
                            lo % 256,
                            hi / 256,
                            hi % 256
                        )
                    } else {
                        format!("fd00::{lo:x}-fd00::{hi:x}")
                    };
                    IpRange::parse(&text).expect("valid range")
                })
                .collect();
            let mut expected = Vec::new();
            for later in 0..ranges.len() {
                for earlier in 0..later {
                    if ranges[later].overlaps(&ranges[earlier]) {
                        expected.push((later, earlier));
                    }
                }
            }
            assert_eq!(overlapping_pairs(&ranges), expected, "{ranges:?}");
        }
    }

    #[test]
    fn overlaps_are_reported_once_on_the_later_pool() {
        let text = ip_pool("b", "{addresses: [10.0.0.0/24]}")
            + &ip_pool("a", "{addresses: [10.0.0.0/16]}");
        let found = problems(&text);
        assert_eq!(
            found,
            [
                "IPAddressPool/b: spec.addresses[0]: CIDR \"10.0.0.0/24\" in pool \"b\" overlaps with already defined CIDR \"10.0.0.0/16\" in pool \"a\""
            ]
        );
    }

    #[test]
    fn overlaps_across_kinds_and_within_a_pool() {
        let text = legacy_pool("a", "{protocol: layer2, addresses: [10.0.0.0/24]}")
            + &ip_pool("b", "{addresses: [10.0.0.200-10.0.1.5]}");
        assert_problem(
            &text,
            "IPAddressPool/b: spec.addresses[0]: range \"10.0.0.200-10.0.1.5\" in pool \"b\" overlaps with already defined CIDR \"10.0.0.0/24\" in pool \"a\"",
        );
        assert_problem(
            &ip_pool("c", "{addresses: [10.2.0.0/24, 10.2.0.128/25]}"),
            "IPAddressPool/c: spec.addresses[1]: CIDR \"10.2.0.128/25\" in pool \"c\" overlaps with already defined CIDR \"10.2.0.0/24\" in pool \"c\"",
        );
        assert!(
            problems(
                &(ip_pool("v4", "{addresses: [10.0.0.0/24]}")
                    + &ip_pool("v6", "{addresses: ['::/0']}"))
            )
            .is_empty()
        );
    }

    #[test]
    fn service_allocation_priority_must_not_be_negative() {
        assert_problem(
            &ip_pool(
                "p",
                "{addresses: [10.0.0.0/24], serviceAllocation: {priority: -1}}",
            ),
            "IPAddressPool/p: spec.serviceAllocation.priority: invalid priority -1",
        );
    }

    #[test]
    fn service_allocation_namespaces_are_unique() {
        assert_problem(
            &ip_pool(
                "p",
                "{addresses: [10.0.0.0/24], serviceAllocation: {namespaces: [a, b, a]}}",
            ),
            "IPAddressPool/p: spec.serviceAllocation.namespaces[2]: duplicate definition in namespaces field",
        );
    }

    #[test]
    fn service_allocation_selectors_are_checked() {
        assert_problem(
            &ip_pool(
                "p",
                "{addresses: [10.0.0.0/24], serviceAllocation: {serviceSelectors: [{matchExpressions: [{key: app, operator: In}]}]}}",
            ),
            "IPAddressPool/p: spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].values: operator In needs at least one value",
        );
        assert_problem(
            &ip_pool(
                "p",
                "{addresses: [10.0.0.0/24], serviceAllocation: {namespaceSelectors: [{matchLabels: {a: b}}, {matchLabels: {a: b}}]}}",
            ),
            "spec.serviceAllocation.namespaceSelectors[1]: duplicate definition of namespaceSelectors",
        );
    }

    #[test]
    fn service_allocation_resolves() {
        let text = ip_pool(
            "p",
            "{addresses: [10.0.0.0/24], autoAssign: false, avoidBuggyIPs: true, serviceAllocation: {priority: 5, namespaces: [a, b], serviceSelectors: [{matchLabels: {app: web}}]}}",
        );
        let pool = build_yaml(&text).unwrap().pools.remove("p").unwrap();
        let allocation = pool.allocation.unwrap();
        assert_eq!(allocation.priority, 5);
        assert_eq!(allocation.namespaces.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(allocation.service_selectors[0].match_labels["app"], "web");
        assert!(!pool.auto_assign);
        assert!(pool.avoid_buggy_ips);
    }

    #[test]
    fn widest_prefix_of_a_range_is_its_largest_cidr() {
        let entry = |text: &str| AddressEntry {
            index: 0,
            text: text.into(),
            range: IpRange::parse(text).unwrap(),
        };
        assert_eq!(entry("1.2.3.0/28").widest_prefix(), 28);
        assert_eq!(entry("192.168.255.1-192.168.255.5").widest_prefix(), 31);
        assert_eq!(entry("fc00:f853:ccd:e799::/124").widest_prefix(), 124);
    }
}
