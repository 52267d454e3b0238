//! Property tests of the IP allocator: random pools, random Services (sharing keys, ports,
//! backends, families, requests) and random sequences of allocate / release / restore /
//! set_pools, checked after every step against brute-force recounts.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use metallb::core::{
    address::{Family, IpRange, ip_to_u128, is_buggy_ip},
    allocator::{Allocator, Assignment, FamilyStats, PoolStats},
    config::{Pool, ServiceAllocation},
    selector::LabelSelector,
    service::{IpFamilyPolicy, LbService, Port, Protocol, ServiceKey},
};
use proptest::prelude::*;

const SERVICES: usize = 6;
const POOLS: u8 = 3;

// === Strategies ===

/// A small IPv4 range inside `10.<pool>.<block>.0/23`, often across a .255/.0 boundary.
fn v4_range(pool: u8, block: u8) -> impl Strategy<Value = IpRange> {
    (prop_oneof![0u16..4, 250u16..258], 1u16..8).prop_map(move |(start, len)| {
        let base = u32::from(Ipv4Addr::new(10, pool, block, 0));
        let s = base + u32::from(start);
        IpRange::new(
            IpAddr::V4(s.into()),
            IpAddr::V4((s + u32::from(len) - 1).into()),
        )
        .unwrap()
    })
}

fn v6_range(pool: u8) -> impl Strategy<Value = IpRange> {
    (0u128..4, 1u128..6).prop_map(move |(start, len)| {
        let base = u128::from(Ipv6Addr::new(0x2002, u16::from(pool), 0, 0, 0, 0, 0, 0)) + start;
        IpRange::new(IpAddr::V6(base.into()), IpAddr::V6((base + len - 1).into())).unwrap()
    })
}

fn allocation() -> impl Strategy<Value = Option<ServiceAllocation>> {
    let restricted = (0u32..3, any::<bool>(), any::<bool>()).prop_map(|(priority, ns1, app)| {
        ServiceAllocation {
            priority,
            namespaces: if ns1 {
                ["ns1".to_string()].into()
            } else {
                BTreeSet::new()
            },
            service_selectors: if app { vec![app_selector()] } else { vec![] },
            ..Default::default()
        }
    });
    prop_oneof![3 => Just(None), 2 => restricted.prop_map(Some)]
}

fn app_selector() -> LabelSelector {
    LabelSelector {
        match_labels: [("app".to_string(), "a".to_string())].into(),
        ..Default::default()
    }
}

/// Pool `i`: addresses only under 10.i.0.0/16 and 2002:i::/32, so pools never overlap.
fn pool(i: u8) -> impl Strategy<Value = Pool> {
    (
        v4_range(i, 0),
        prop::option::of(v4_range(i, 4)),
        any::<bool>(),
        prop::option::of(v6_range(i)),
        prop::bool::weighted(0.8),
        any::<bool>(),
        allocation(),
    )
        .prop_map(
            move |(a, b, b_first, v6, auto_assign, avoid_buggy_ips, allocation)| {
                let mut ranges = vec![a];
                if let Some(b) = b {
                    ranges.insert(usize::from(b_first), b);
                }
                ranges.extend(v6);
                Pool {
                    name: format!("p{i}"),
                    ranges,
                    auto_assign,
                    avoid_buggy_ips,
                    allocation,
                    ..Default::default()
                }
            },
        )
}

fn pools() -> impl Strategy<Value = Vec<Pool>> {
    (pool(0), pool(1), pool(2), 1usize..=3).prop_map(|(a, b, c, n)| {
        let mut all = vec![a, b, c];
        all.truncate(n);
        all
    })
}

/// An address in or near the pools, from a small set so that Services often collide.
fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        6 => (0u8..2, prop_oneof![Just(0u8), Just(1u8), Just(2u8), Just(255u8)])
            .prop_map(|(p, last)| IpAddr::V4(Ipv4Addr::new(10, p, 0, last))),
        1 => (0u8..2, 0u8..2).prop_map(|(p, last)| IpAddr::V4(Ipv4Addr::new(10, p, 1, last))),
        1 => (0u8..POOLS).prop_map(|p| IpAddr::V4(Ipv4Addr::new(10, p, 4, 1))),
        2 => (0u8..2, 0u16..3)
            .prop_map(|(p, last)| IpAddr::V6(Ipv6Addr::new(0x2002, p.into(), 0, 0, 0, 0, 0, last))),
        1 => Just(IpAddr::V4(Ipv4Addr::new(4, 3, 2, 1))),
    ]
}

fn families() -> impl Strategy<Value = (IpFamilyPolicy, Vec<Family>)> {
    use Family::{V4, V6};
    use IpFamilyPolicy::*;
    prop_oneof![
        4 => Just((SingleStack, vec![V4])),
        1 => Just((SingleStack, vec![V6])),
        2 => Just((RequireDualStack, vec![V4, V6])),
        1 => Just((RequireDualStack, vec![V6, V4])),
        2 => Just((PreferDualStack, vec![V4, V6])),
    ]
}

fn ports() -> impl Strategy<Value = Vec<Port>> {
    let all = [
        Port {
            protocol: Protocol::Tcp,
            port: 53,
        },
        Port {
            protocol: Protocol::Udp,
            port: 53,
        },
        Port {
            protocol: Protocol::Tcp,
            port: 80,
        },
    ];
    prop::sample::subsequence(all.to_vec(), 0..=3)
}

/// One version of Service `i`.
fn service(i: usize) -> impl Strategy<Value = LbService> {
    (
        prop_oneof![Just("ns1"), Just("ns2")],
        any::<bool>(),
        prop_oneof![
            3 => Just(None),
            3 => Just(Some("a")),
            2 => Just(Some("b")),
            1 => Just(Some(""))
        ],
        prop_oneof![3 => Just(""), 1 => Just("x")],
        ports(),
        families(),
        prop_oneof![4 => Just(vec![]), 2 => prop::collection::vec(address(), 1..=2)],
        prop_oneof![
            4 => Just(None),
            1 => Just(Some("p0")),
            1 => Just(Some("p1")),
            1 => Just(Some("missing"))
        ],
    )
        .prop_map(
            move |(ns, app, key, backend, ports, (policy, fams), requested, pool)| LbService {
                key: ServiceKey::new(ns, format!("s{i}")),
                labels: if app {
                    [("app".into(), "a".into())].into()
                } else {
                    BTreeMap::new()
                },
                requested_ips: requested,
                requested_pool: pool.map(str::to_string),
                sharing_key: key.map(str::to_string),
                backend_key: backend.to_string(),
                traffic_policy_local: !backend.is_empty(),
                ports,
                families: fams,
                family_policy: policy,
                ..Default::default()
            },
        )
}

/// Two versions of every Service, so requests change between calls. Namespaces are fixed per
/// Service so that both versions have one key.
fn services() -> impl Strategy<Value = Vec<[LbService; 2]>> {
    (0..SERVICES)
        .map(|i| {
            (service(i), service(i)).prop_map(|(a, mut b)| {
                b.key = a.key.clone();
                [a, b]
            })
        })
        .collect::<Vec<_>>()
}

#[derive(Clone, Debug)]
enum Op {
    Allocate(usize, usize),
    Release(usize),
    Restore(usize, usize, Vec<IpAddr>),
    /// Allocate a Service the allocator has not seen, with addresses in its status.
    FromStatus(usize, usize, Vec<IpAddr>),
    SetPools(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let svc = 0..SERVICES;
    prop_oneof![
        8 => (svc.clone(), 0..2usize).prop_map(|(i, v)| Op::Allocate(i, v)),
        3 => svc.clone().prop_map(Op::Release),
        2 => (svc.clone(), 0..2usize, prop::collection::vec(address(), 0..=2))
            .prop_map(|(i, v, ips)| Op::Restore(i, v, ips)),
        1 => (svc, 0..2usize, prop::collection::vec(address(), 1..=2))
            .prop_map(|(i, v, ips)| Op::FromStatus(i, v, ips)),
        1 => (0..2usize).prop_map(Op::SetPools),
    ]
}

// === Brute force ===

/// Every usable address of a pool family, in allocation order (ranges as written, no repeats).
fn enumerate(pool: &Pool, family: Family) -> Vec<IpAddr> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for range in pool.ranges.iter().filter(|r| r.family() == family) {
        for v in ip_to_u128(range.start())..=ip_to_u128(range.end()) {
            let ip = match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
                Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
            };
            if !(pool.avoid_buggy_ips && is_buggy_ip(&ip)) && seen.insert(ip) {
                out.push(ip);
            }
        }
    }
    out
}

fn selects(pool: &Pool, svc: &LbService) -> bool {
    let Some(a) = &pool.allocation else {
        return true;
    };
    let namespace = (a.namespaces.is_empty() && a.namespace_selectors.is_empty())
        || a.namespaces.contains(&svc.key.namespace)
        || a.namespace_selectors
            .iter()
            .any(|s| s.matches(&svc.namespace_labels));
    let service = a.service_selectors.is_empty()
        || a.service_selectors.iter().any(|s| s.matches(&svc.labels));
    namespace && service
}

/// The pools a Service without requests may get automatically (or through a pool annotation
/// naming a missing pool), in the order they are tried.
fn automatic_order<'a>(config: &'a [Pool], svc: &LbService) -> Vec<&'a Pool> {
    if let Some(pool) = config
        .iter()
        .find(|p| Some(&p.name) == svc.requested_pool.as_ref())
    {
        return vec![pool];
    }
    let mut pinned: Vec<&Pool> = config
        .iter()
        .filter(|p| p.auto_assign && p.allocation.is_some() && selects(p, svc))
        .collect();
    pinned.sort_by_key(|p| {
        let priority = p.allocation.as_ref().unwrap().priority;
        (priority == 0, priority, p.name.clone())
    });
    let mut open: Vec<&Pool> = config
        .iter()
        .filter(|p| p.auto_assign && p.allocation.is_none())
        .collect();
    open.sort_by_key(|p| p.name.clone());
    pinned.into_iter().chain(open).collect()
}

fn may_share(a: &LbService, b: &LbService) -> bool {
    let key = |s: &LbService| s.sharing_key.clone().filter(|k| !k.is_empty());
    key(a).is_some()
        && key(a) == key(b)
        && a.backend_key == b.backend_key
        && a.ports.iter().all(|p| !b.ports.contains(p))
}

/// Holders of every address, from the assignments.
fn holders(alloc: &Allocator) -> BTreeMap<IpAddr, Vec<ServiceKey>> {
    let mut map: BTreeMap<IpAddr, Vec<ServiceKey>> = BTreeMap::new();
    for (key, a) in alloc.assignments() {
        for ip in &a.ips {
            map.entry(*ip).or_default().push(key.clone());
        }
    }
    map
}

fn snapshot(alloc: &Allocator) -> Vec<(ServiceKey, Assignment)> {
    alloc
        .assignments()
        .map(|(k, a)| (k.clone(), a.clone()))
        .collect()
}

/// Every invariant, given the Service versions the allocator last accepted.
fn check(alloc: &Allocator, config: &[Pool], accepted: &HashMap<ServiceKey, LbService>) {
    if let Err(e) = alloc.check_consistency() {
        panic!("inconsistent allocator: {e}");
    }
    let by_name: BTreeMap<&str, &Pool> = config.iter().map(|p| (p.name.as_str(), p)).collect();
    let held: BTreeSet<&ServiceKey> = alloc.assignments().map(|(k, _)| k).collect();
    assert_eq!(
        held,
        accepted.keys().collect(),
        "held services are the accepted ones"
    );
    for (key, a) in alloc.assignments() {
        let svc = &accepted[key];
        let pool = by_name
            .get(a.pool.as_str())
            .unwrap_or_else(|| panic!("{key}: no pool {}", a.pool));
        let (wanted, _) = svc.wanted_families();
        assert!(!a.ips.is_empty() && a.ips.len() <= 2, "{key}: {a:?}");
        let fams: Vec<Family> = a.ips.iter().map(Family::of).collect();
        let order: Vec<Family> = wanted
            .iter()
            .copied()
            .filter(|f| fams.contains(f))
            .collect();
        assert_eq!(
            fams, order,
            "{key}: distinct wanted families, primary first: {a:?}"
        );
        for ip in &a.ips {
            assert!(pool.contains(ip), "{key}: {ip} outside pool {}", pool.name);
            assert!(
                !(pool.avoid_buggy_ips && is_buggy_ip(ip)),
                "{key}: buggy {ip}"
            );
        }
        assert!(
            selects(pool, svc),
            "{key}: pool {} does not select it",
            pool.name
        );
    }
    for (ip, keys) in holders(alloc) {
        let reported: Vec<ServiceKey> = alloc.holders(&ip).cloned().collect();
        assert_eq!(reported, keys, "holders of {ip}");
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert!(
                    may_share(&accepted[a], &accepted[b]),
                    "{ip} held by {a} and {b}, which may not share: {:?} / {:?}",
                    accepted[a],
                    accepted[b]
                );
            }
        }
    }
    for pool in config {
        let family_stats = |family| {
            let total = enumerate(pool, family).len() as u128;
            let assigned = alloc
                .assignments()
                .filter(|(_, a)| a.pool == pool.name)
                .flat_map(|(_, a)| a.ips.iter().copied())
                .filter(|ip| Family::of(ip) == family)
                .collect::<BTreeSet<_>>()
                .len() as u128;
            FamilyStats {
                total,
                assigned,
                available: total - assigned,
            }
        };
        let services = alloc
            .assignments()
            .filter(|(_, a)| a.pool == pool.name)
            .count();
        let expected = PoolStats {
            ipv4: family_stats(Family::V4),
            ipv6: family_stats(Family::V6),
            services,
        };
        assert_eq!(
            alloc.pool_stats(&pool.name),
            Some(expected),
            "stats of {}",
            pool.name
        );
    }
}

// === The property ===

/// Runs the operations, checking after each; returns every result for the determinism check.
fn run(
    configs: &[Vec<Pool>; 2],
    versions: &[[LbService; 2]],
    ops: &[Op],
) -> (
    Allocator,
    usize,
    HashMap<ServiceKey, LbService>,
    Vec<String>,
) {
    let mut config = 0;
    let mut alloc = Allocator::new(&configs[0]);
    let mut accepted: HashMap<ServiceKey, LbService> = HashMap::new();
    let mut log = Vec::new();
    for op in ops {
        let before = holders(&alloc);
        match op {
            Op::Allocate(i, v) | Op::FromStatus(i, v, _) => {
                let mut svc = versions[*i][*v].clone();
                if let Op::FromStatus(_, _, ips) = op {
                    alloc.release(&svc.key);
                    accepted.remove(&svc.key);
                    svc.current_ips = ips.clone();
                }
                let was_held = alloc.assignment(&svc.key).is_some();
                let result = alloc.allocate(&svc);
                log.push(format!("{op:?} -> {result:?}"));
                match result {
                    Ok(a) => {
                        if !svc.requested_ips.is_empty() {
                            let want: BTreeSet<_> = svc.requested_ips.iter().collect();
                            assert_eq!(a.ips.iter().collect::<BTreeSet<_>>(), want, "{op:?}");
                        }
                        // A new, unshared, unrequested address is the lowest free one.
                        let plain = svc.requested_ips.is_empty()
                            && svc.current_ips.is_empty()
                            && !was_held
                            && svc.sharing_key.as_deref().is_none_or(str::is_empty);
                        if plain && svc.family_policy == IpFamilyPolicy::SingleStack {
                            let family = svc.families[0];
                            let expected = automatic_order(&configs[config], &svc)
                                .into_iter()
                                .find(|p| {
                                    enumerate(p, family).iter().any(|c| !before.contains_key(c))
                                })
                                .map(|p| p.name.clone());
                            assert_eq!(Some(a.pool.clone()), expected, "{op:?}: pool order");
                        }
                        if plain {
                            let pool = configs[config].iter().find(|p| p.name == a.pool).unwrap();
                            for ip in &a.ips {
                                let lowest = enumerate(pool, Family::of(ip))
                                    .into_iter()
                                    .find(|c| !before.contains_key(c));
                                assert_eq!(Some(*ip), lowest, "{op:?}: not the lowest free");
                            }
                        }
                        accepted.insert(svc.key.clone(), svc.clone());
                        let state = snapshot(&alloc);
                        assert_eq!(alloc.allocate(&svc), Ok(a), "allocate is idempotent");
                        assert_eq!(snapshot(&alloc), state, "allocate is idempotent");
                    }
                    Err(_) => {
                        assert_eq!(alloc.assignment(&svc.key), None, "failure holds nothing");
                        accepted.remove(&svc.key);
                    }
                }
            }
            Op::Release(i) => {
                let key = versions[*i][0].key.clone();
                log.push(format!("{op:?} -> {:?}", alloc.release(&key)));
                accepted.remove(&key);
            }
            Op::Restore(i, v, ips) => {
                let svc = &versions[*i][*v];
                let result = alloc.restore(svc, ips);
                log.push(format!("{op:?} -> {result:?}"));
                match result {
                    Ok(a) => {
                        let mut got = a.ips.clone();
                        let mut want = ips.clone();
                        got.sort();
                        want.sort();
                        assert_eq!(got, want, "restore takes exactly the addresses");
                        assert_eq!(alloc.restore(svc, ips), Ok(a), "restore is idempotent");
                        accepted.insert(svc.key.clone(), svc.clone());
                    }
                    Err(_) => {
                        assert_eq!(alloc.assignment(&svc.key), None, "failure holds nothing");
                        accepted.remove(&svc.key);
                    }
                }
            }
            Op::SetPools(c) => {
                config = *c;
                let previous = snapshot(&alloc);
                let lost = alloc.set_pools(&configs[config]);
                log.push(format!("{op:?} -> {lost:?}"));
                for key in &lost {
                    accepted.remove(key);
                }
                for (key, a) in previous {
                    match alloc.assignment(&key) {
                        Some(now) => assert_eq!(now.ips, a.ips, "{key} kept its addresses"),
                        None => assert!(lost.contains(&key), "{key} dropped but not reported"),
                    }
                }
            }
        }
        check(&alloc, &configs[config], &accepted);
    }
    (alloc, config, accepted, log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn allocator_invariants_hold(
        configs in (pools(), pools()).prop_map(|(a, b)| [a, b]),
        versions in services(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let (alloc, config, accepted, log) = run(&configs, &versions, &ops);

        // Deterministic: the same calls give the same results.
        let (again, _, _, log_again) = run(&configs, &versions, &ops);
        prop_assert_eq!(&log, &log_again);
        prop_assert_eq!(snapshot(&alloc), snapshot(&again));

        // Restart-safe: a new allocator restoring every assignment, in any order, ends equal.
        let mut restarted = Allocator::new(&configs[config]);
        let mut held: Vec<(ServiceKey, Assignment)> = snapshot(&alloc);
        held.reverse();
        for (key, a) in &held {
            let restored = restarted.restore(&accepted[key], &a.ips);
            prop_assert!(restored.is_ok(), "{key}: {restored:?}");
        }
        prop_assert_eq!(snapshot(&restarted), snapshot(&alloc));
        for pool in &configs[config] {
            prop_assert_eq!(restarted.pool_stats(&pool.name), alloc.pool_stats(&pool.name));
        }
    }
}
