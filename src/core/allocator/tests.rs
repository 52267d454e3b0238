//! Unit tests of the allocator.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    space::{Space, good_rank, good_span, good_unrank},
    *,
};
use crate::core::{
    address::IpRange,
    config::ServiceAllocation,
    selector::LabelSelector,
    service::{Port, Protocol},
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(name: &str, ranges: &[&str]) -> Pool {
    Pool {
        name: name.to_string(),
        ranges: ranges.iter().map(|r| IpRange::parse(r).unwrap()).collect(),
        auto_assign: true,
        ..Default::default()
    }
}

fn reserved(name: &str, ranges: &[&str]) -> Pool {
    Pool {
        auto_assign: false,
        ..pool(name, ranges)
    }
}

fn pinned(name: &str, ranges: &[&str], priority: u32, namespaces: &[&str]) -> Pool {
    Pool {
        allocation: Some(ServiceAllocation {
            priority,
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }),
        ..pool(name, ranges)
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        ..Default::default()
    }
}

/// `namespace/name`, or `name` in `default`.
fn svc(key: &str) -> LbService {
    let (namespace, name) = key.split_once('/').unwrap_or(("default", key));
    LbService {
        key: ServiceKey::new(namespace, name),
        ..Default::default()
    }
}

fn key(k: &str) -> ServiceKey {
    svc(k).key
}

/// Builder methods for test services.
trait Build: Sized {
    fn with(self, f: impl FnOnce(&mut LbService)) -> Self;
    fn ip(self, ip_text: &str) -> Self {
        self.with(|s| s.requested_ips.push(ip(ip_text)))
    }
    fn pool(self, name: &str) -> Self {
        self.with(|s| s.requested_pool = Some(name.to_string()))
    }
    fn share(self, sharing_key: &str) -> Self {
        self.with(|s| s.sharing_key = Some(sharing_key.to_string()))
    }
    fn local(self, backend: &str) -> Self {
        self.with(|s| {
            s.traffic_policy_local = true;
            s.backend_key = backend.to_string();
        })
    }
    fn port(self, protocol: Protocol, port: u16) -> Self {
        self.with(|s| s.ports.push(Port { protocol, port }))
    }
    fn tcp(self, port: u16) -> Self {
        self.port(Protocol::Tcp, port)
    }
    fn udp(self, port: u16) -> Self {
        self.port(Protocol::Udp, port)
    }
    fn families(self, policy: IpFamilyPolicy, families: &[Family]) -> Self {
        self.with(|s| {
            s.family_policy = policy;
            s.families = families.to_vec();
        })
    }
    fn v6(self) -> Self {
        self.families(IpFamilyPolicy::SingleStack, &[Family::V6])
    }
    fn require_dual(self) -> Self {
        self.families(IpFamilyPolicy::RequireDualStack, &[Family::V4, Family::V6])
    }
    fn prefer_dual(self) -> Self {
        self.families(IpFamilyPolicy::PreferDualStack, &[Family::V4, Family::V6])
    }
    fn label(self, k: &str, v: &str) -> Self {
        self.with(|s| {
            s.labels.insert(k.to_string(), v.to_string());
        })
    }
    fn ns_label(self, k: &str, v: &str) -> Self {
        self.with(|s| {
            s.namespace_labels.insert(k.to_string(), v.to_string());
        })
    }
    fn status(self, ips: &[&str]) -> Self {
        self.with(|s| s.current_ips = ips.iter().map(|i| ip(i)).collect())
    }
}

impl Build for LbService {
    fn with(mut self, f: impl FnOnce(&mut LbService)) -> Self {
        f(&mut self);
        self
    }
}

/// The addresses allocated, as text; panics with the error otherwise.
fn got(a: &mut Allocator, s: &LbService) -> Vec<String> {
    let result = a.allocate(s);
    a.check_consistency().unwrap();
    match result {
        Ok(assignment) => assignment.ips.iter().map(|i| i.to_string()).collect(),
        Err(e) => panic!("allocating {}: {e}", s.key),
    }
}

fn err(a: &mut Allocator, s: &LbService) -> String {
    let result = a.allocate(s);
    a.check_consistency().unwrap();
    match result {
        Ok(assignment) => panic!("{} unexpectedly got {assignment:?}", s.key),
        Err(e) => {
            assert_eq!(a.assignment(&s.key), None, "a failed service holds nothing");
            e.to_string()
        }
    }
}

/// OCP 4.10 §26.3.3: a plain pool and a reserved one.
fn seed() -> Allocator {
    Allocator::new(&[
        pool("doc-example", &["203.0.113.1-203.0.113.10"]),
        reserved("doc-example-reserved", &["10.0.100.0/28"]),
    ])
}

/// OCP 4.10 §26.3.3.3: a dual-stack pool.
fn dual() -> Allocator {
    Allocator::new(&[pool(
        "doc-example-combined",
        &["10.0.100.0/28", "2002:2:2::1-2002:2:2::100"],
    )])
}

// --- address spaces ---

#[test]
fn good_ranks_skip_dot_zero_and_dot_255() {
    for v in [1u128, 2, 254, 257, 510, 0x0a00_0001, u32::MAX as u128 - 1] {
        assert_eq!(good_unrank(good_rank(v)), v);
    }
    assert_eq!(
        good_rank(257),
        good_rank(254) + 1,
        "x.254 is followed by (x+1).1"
    );
    assert_eq!(good_span(0, 255), Some((0, 253)));
    assert_eq!(
        good_span(255, 256),
        None,
        "x.255-(x+1).0 has no usable address"
    );
    assert_eq!(good_span(0, 0), None);
}

#[test]
fn space_numbers_ranges_in_written_order_without_overlaps() {
    let ranges: Vec<IpRange> = ["10.0.1.0/30", "10.0.0.0/30", "10.0.1.2-10.0.1.5"]
        .iter()
        .map(|r| IpRange::parse(r).unwrap())
        .collect();
    let space = Space::new(Family::V4, &ranges, false);
    assert_eq!(space.total, 10);
    let order: Vec<String> = (0..10).map(|o| space.address(o).to_string()).collect();
    assert_eq!(
        order,
        [
            "10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.0.0", "10.0.0.1", "10.0.0.2",
            "10.0.0.3", "10.0.1.4", "10.0.1.5"
        ]
    );
    for o in 0..10 {
        assert_eq!(space.ordinal(space.address(o)), Some(o));
    }
    assert_eq!(space.ordinal(ip("10.0.1.6")), None);
    assert_eq!(space.ordinal(ip("::1")), None);
}

#[test]
fn free_runs_split_and_merge() {
    let ranges = [IpRange::parse("10.0.0.0/28").unwrap()];
    let mut space = Space::new(Family::V4, &ranges, false);
    assert!(space.take(0) && space.take(5) && space.take(15));
    assert!(!space.take(5), "taking twice fails");
    assert_eq!(
        space.free.iter().map(|(s, e)| (*s, *e)).collect::<Vec<_>>(),
        [(1, 4), (6, 14)]
    );
    assert!(space.give(5) && space.give(0) && space.give(15));
    assert!(!space.give(5), "giving twice fails");
    assert_eq!(
        space.free.iter().map(|(s, e)| (*s, *e)).collect::<Vec<_>>(),
        [(0, 15)]
    );
}

// --- requests ---

#[test]
fn requested_ip_outside_pools_uses_upstream_wording() {
    let mut a = seed();
    let message = err(&mut a, &svc("invalid-request").ip("4.3.2.1"));
    assert_eq!(message, "\"4.3.2.1\" is not allowed in config");
    assert_eq!(
        format!("Failed to allocate IP for \"default/invalid-request\": {message}"),
        "Failed to allocate IP for \"default/invalid-request\": \"4.3.2.1\" is not allowed in config"
    );
}

#[test]
fn requested_ip_is_granted_even_from_a_reserved_pool() {
    let mut a = seed();
    assert_eq!(got(&mut a, &svc("a").ip("10.0.100.7")), ["10.0.100.7"]);
    assert_eq!(
        a.assignment(&key("a")).unwrap().pool,
        "doc-example-reserved"
    );
    assert_eq!(got(&mut a, &svc("b").ip("203.0.113.5")), ["203.0.113.5"]);
}

#[test]
fn requested_ip_must_be_in_the_annotated_pool() {
    let mut a = seed();
    let message = err(
        &mut a,
        &svc("a").ip("203.0.113.5").pool("doc-example-reserved"),
    );
    assert_eq!(
        message,
        "requested address \"203.0.113.5\" is in pool \"doc-example\", not in the requested \
         pool \"doc-example-reserved\""
    );
    // A missing annotated pool is ignored, as for allocation without an address.
    assert_eq!(
        got(&mut a, &svc("b").ip("203.0.113.5").pool("nope")),
        ["203.0.113.5"]
    );
}

#[test]
fn two_requested_ips_one_per_family_from_one_pool() {
    let mut a = Allocator::new(&[
        pool("v4", &["10.0.0.0/28"]),
        pool("v6", &["2002::/120"]),
        pool("both", &["10.0.1.0/28", "2002:1::/120"]),
    ]);
    let s = svc("a").require_dual().ip("2002:1::5").ip("10.0.1.5");
    assert_eq!(
        got(&mut a, &s),
        ["10.0.1.5", "2002:1::5"],
        "primary family first"
    );
    assert_eq!(
        err(
            &mut a,
            &svc("b").require_dual().ip("10.0.0.1").ip("2002::1")
        ),
        "requested addresses \"10.0.0.1\" (pool \"v4\") and \"2002::1\" (pool \"v6\") must \
         come from the same pool"
    );
    assert_eq!(
        err(&mut a, &svc("c").ip("10.0.0.1").ip("10.0.0.2")),
        "requested addresses \"10.0.0.1\" and \"10.0.0.2\" are both IPv4, but at most one per \
         family is allowed"
    );
    assert_eq!(
        err(
            &mut a,
            &svc("d").ip("10.0.0.1").ip("2002::1").ip("10.0.0.3")
        ),
        "3 addresses requested, but at most 2 (one per family) are allowed"
    );
}

#[test]
fn requested_families_must_fit_the_service() {
    let mut a = dual();
    assert_eq!(
        err(&mut a, &svc("a").ip("2002:2:2::1")),
        "requested address \"2002:2:2::1\" is IPv6, but the service is SingleStack IPv4"
    );
    assert_eq!(
        err(&mut a, &svc("b").require_dual().ip("10.0.100.1")),
        "requested addresses do not match the service's IP family: the service is \
         RequireDualStack and needs one requested address per family, but no IPv6 address \
         was requested"
    );
    // RequireDualStack with the cluster IPs of one family only is refused, requested
    // address or not (upstream's reason: it can not match the service's IP family).
    let single = svc("e").families(IpFamilyPolicy::RequireDualStack, &[Family::V4]);
    assert_eq!(
        err(&mut a, &single),
        "the service is RequireDualStack but its cluster IPs are IPv4 only: it can not get \
         an address of each family"
    );
    assert!(err(&mut a, &single.ip("10.0.100.5")).contains("IPv4 only"));
    assert_eq!(
        got(&mut a, &svc("c").v6().ip("2002:2:2::1")),
        ["2002:2:2::1"]
    );
    // PreferDualStack: a requested address of either family is enough.
    assert_eq!(
        got(&mut a, &svc("d").prefer_dual().ip("10.0.100.1")),
        ["10.0.100.1"]
    );
}

#[test]
fn service_allocation_rejects_requests_from_other_namespaces_and_labels() {
    let mut by_label = pinned("team", &["10.0.0.0/28"], 1, &[]);
    by_label.allocation.as_mut().unwrap().namespace_selectors = vec![selector(&[("team", "a")])];
    by_label.allocation.as_mut().unwrap().service_selectors = vec![selector(&[("tier", "web")])];
    let mut a = Allocator::new(&[pinned("ns1-only", &["10.0.1.0/28"], 1, &["ns1"]), by_label]);
    assert_eq!(
        err(&mut a, &svc("ns2/a").ip("10.0.1.1")),
        "pool \"ns1-only\" does not serve service \"ns2/a\": its serviceAllocation does not \
         select namespace \"ns2\""
    );
    assert_eq!(got(&mut a, &svc("ns1/a").ip("10.0.1.1")), ["10.0.1.1"]);
    assert_eq!(
        err(&mut a, &svc("x/b").ns_label("team", "a").ip("10.0.0.1")),
        "pool \"team\" does not serve service \"x/b\": its serviceAllocation service selectors \
         do not match the service labels"
    );
    assert!(err(&mut a, &svc("x/c").label("tier", "web").ip("10.0.0.1")).contains("namespace"));
    let ok = svc("x/d").ns_label("team", "a").label("tier", "web");
    assert_eq!(got(&mut a, &ok.clone().ip("10.0.0.1")), ["10.0.0.1"]);
    // The pool annotation obeys the same rule.
    assert!(err(&mut a, &svc("ns2/e").pool("ns1-only")).contains("does not serve service"));
}

#[test]
fn avoid_buggy_ips_rejects_requests_and_skips_them_automatically() {
    let mut p = pool("p", &["10.0.0.254-10.0.1.1", "10.0.2.255-10.0.3.0"]);
    p.avoid_buggy_ips = true;
    let mut a = Allocator::new(&[p.clone()]);
    assert_eq!(
        err(&mut a, &svc("a").ip("10.0.1.0")),
        "requested address \"10.0.1.0\" ends in .0 or .255, which pool \"p\" avoids \
         (avoidBuggyIPs)"
    );
    assert_eq!(got(&mut a, &svc("b")), ["10.0.0.254"]);
    assert_eq!(got(&mut a, &svc("c")), ["10.0.1.1"]);
    assert_eq!(err(&mut a, &svc("d")), "no available IPs");
    let stats = a.pool_stats("p").unwrap().ipv4;
    assert_eq!((stats.total, stats.assigned, stats.available), (2, 2, 0));
    // Without the flag the same ranges have 6 addresses, .0 and .255 included.
    p.avoid_buggy_ips = false;
    let mut a = Allocator::new(&[p]);
    assert_eq!(a.pool_stats("p").unwrap().ipv4.total, 6);
    assert_eq!(got(&mut a, &svc("a").ip("10.0.1.0")), ["10.0.1.0"]);
}

#[test]
fn requested_ip_change_reallocates() {
    let mut a = seed();
    assert_eq!(got(&mut a, &svc("a").ip("203.0.113.5")), ["203.0.113.5"]);
    assert_eq!(got(&mut a, &svc("a").ip("203.0.113.6")), ["203.0.113.6"]);
    assert_eq!(
        got(&mut a, &svc("b").ip("203.0.113.5")),
        ["203.0.113.5"],
        "old one is free"
    );
    // Dropping the request keeps the address.
    assert_eq!(got(&mut a, &svc("a")), ["203.0.113.6"]);
}

// --- pools ---

#[test]
fn missing_annotated_pool_falls_back_to_automatic_pools() {
    let mut a = seed();
    assert_eq!(
        got(&mut a, &svc("a").pool("does-not-exist")),
        ["203.0.113.1"]
    );
    assert_eq!(a.assignment(&key("a")).unwrap().pool, "doc-example");
}

#[test]
fn reserved_pool_is_used_only_on_request() {
    let mut a = Allocator::new(&[reserved("doc-example-reserved", &["10.0.100.0/28"])]);
    assert_eq!(err(&mut a, &svc("a")), "no available IPs");
    assert_eq!(
        got(&mut a, &svc("b").pool("doc-example-reserved")),
        ["10.0.100.0"]
    );
}

#[test]
fn exhaustion_errors_name_the_pool_when_one_was_asked_for() {
    let mut a = Allocator::new(&[pool("small", &["203.0.113.1-203.0.113.2"])]);
    assert_eq!(got(&mut a, &svc("a")), ["203.0.113.1"]);
    assert_eq!(got(&mut a, &svc("b").pool("small")), ["203.0.113.2"]);
    assert_eq!(err(&mut a, &svc("c")), "no available IPs");
    assert_eq!(
        err(&mut a, &svc("d").pool("small")),
        "no available IPs in pool \"small\""
    );
}

#[test]
fn lowest_free_address_is_reused_after_release() {
    let mut a = seed();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(got(&mut a, &svc(name)), [format!("203.0.113.{}", i + 1)]);
    }
    assert_eq!(a.release(&key("b")).unwrap().ips, [ip("203.0.113.2")]);
    assert_eq!(a.release(&key("b")), None, "releasing twice is harmless");
    assert_eq!(got(&mut a, &svc("d")), ["203.0.113.2"]);
    assert_eq!(got(&mut a, &svc("e")), ["203.0.113.4"]);
}

#[test]
fn ranges_are_used_in_the_order_written() {
    let mut a = Allocator::new(&[pool("p", &["10.0.0.8/31", "10.0.0.0/31"])]);
    let all: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .flat_map(|n| got(&mut a, &svc(n)))
        .collect();
    assert_eq!(all, ["10.0.0.8", "10.0.0.9", "10.0.0.0", "10.0.0.1"]);
}

#[test]
fn automatic_order_is_priority_then_name_then_open_pools() {
    let mut a = Allocator::new(&[
        pool("a-open", &["10.0.9.0/32"]),
        pinned("b-unset", &["10.0.0.0/32"], 0, &["ns"]),
        pinned("c-prio-20", &["10.0.2.0/32"], 20, &["ns"]),
        pinned("d-prio-10", &["10.0.3.0/32"], 10, &["ns"]),
        pinned("e-prio-10", &["10.0.4.0/32"], 10, &["ns"]),
        pinned("f-other-ns", &["10.0.5.0/32"], 1, &["other"]),
        Pool {
            auto_assign: false,
            ..pinned("g-reserved", &["10.0.6.0/32"], 1, &["ns"])
        },
        pool("h-open", &["10.0.8.0/32"]),
    ]);
    let order: Vec<String> = (0..6)
        .flat_map(|i| got(&mut a, &svc(&format!("ns/s{i}"))))
        .collect();
    assert_eq!(
        order,
        [
            "10.0.3.0", "10.0.4.0", "10.0.2.0", "10.0.0.0", "10.0.9.0", "10.0.8.0"
        ],
        "priority 10 (by name), 20, unset, then open pools by name"
    );
    assert_eq!(err(&mut a, &svc("ns/s6")), "no available IPs");
    // Another namespace never sees the pinned pools.
    let mut a = Allocator::new(&[
        pinned("pinned", &["10.0.0.0/32"], 1, &["ns"]),
        pool("open", &["10.0.1.0/32"]),
    ]);
    assert_eq!(got(&mut a, &svc("elsewhere/x")), ["10.0.1.0"]);
    assert_eq!(got(&mut a, &svc("ns/y")), ["10.0.0.0"]);
}

#[test]
fn namespace_and_service_selectors_pick_pinned_pools() {
    let mut by_ns = pinned("by-ns-label", &["10.0.0.0/32"], 5, &[]);
    by_ns.allocation.as_mut().unwrap().namespace_selectors = vec![selector(&[("env", "prod")])];
    let mut by_svc = pinned("by-svc-label", &["10.0.1.0/32"], 1, &[]);
    by_svc.allocation.as_mut().unwrap().service_selectors = vec![selector(&[("app", "db")])];
    let mut a = Allocator::new(&[by_ns, by_svc, pool("open", &["10.0.2.0/30"])]);
    assert_eq!(got(&mut a, &svc("x/plain")), ["10.0.2.0"]);
    assert_eq!(
        got(&mut a, &svc("x/prod").ns_label("env", "prod")),
        ["10.0.0.0"]
    );
    assert_eq!(
        got(
            &mut a,
            &svc("x/db").ns_label("env", "prod").label("app", "db")
        ),
        ["10.0.1.0"]
    );
}

// --- sharing ---

#[test]
fn tcp_and_udp_on_the_same_port_share_an_address() {
    let mut a = seed();
    let tcp = svc("dns-tcp").share("dns").tcp(53).ip("203.0.113.7");
    let udp = svc("dns-udp").share("dns").udp(53).ip("203.0.113.7");
    assert_eq!(got(&mut a, &tcp), ["203.0.113.7"]);
    assert_eq!(got(&mut a, &udp), ["203.0.113.7"]);
    let holders: Vec<String> = a
        .holders(&ip("203.0.113.7"))
        .map(|k| k.to_string())
        .collect();
    assert_eq!(holders, ["default/dns-tcp", "default/dns-udp"]);
    assert_eq!(
        a.pool_stats("doc-example").unwrap().ipv4.assigned,
        1,
        "counted once"
    );
    assert_eq!(a.pool_stats("doc-example").unwrap().services, 2);
}

#[test]
fn sharing_conflicts_name_the_other_service_and_the_reason() {
    let mut a = seed();
    got(
        &mut a,
        &svc("dns-tcp").share("dns").tcp(53).ip("203.0.113.7"),
    );
    got(&mut a, &svc("plain").tcp(80).ip("203.0.113.8"));
    got(
        &mut a,
        &svc("local")
            .share("web")
            .local("app=web")
            .tcp(80)
            .ip("203.0.113.9"),
    );
    let cases = [
        (
            svc("dns-tcp-2")
                .share("dns")
                .tcp(53)
                .udp(54)
                .ip("203.0.113.7"),
            "address \"203.0.113.7\" is already used by service \"default/dns-tcp\": ports \
             overlap on 53/TCP",
        ),
        (
            svc("other-key").share("web").udp(53).ip("203.0.113.7"),
            "address \"203.0.113.7\" is already used by service \"default/dns-tcp\": \
             different sharing key (\"web\" here, \"dns\" there)",
        ),
        (
            svc("no-key").udp(53).ip("203.0.113.7"),
            "address \"203.0.113.7\" is already used by service \"default/dns-tcp\": this \
             service has no allow-shared-ip key",
        ),
        (
            svc("keyed").share("dns").tcp(443).ip("203.0.113.8"),
            "address \"203.0.113.8\" is already used by service \"default/plain\": it does \
             not allow sharing (no allow-shared-ip key)",
        ),
        (
            svc("local-2")
                .share("web")
                .local("app=other")
                .tcp(443)
                .ip("203.0.113.9"),
            "address \"203.0.113.9\" is already used by service \"default/local\": different \
             backends: with externalTrafficPolicy Local both services must select the same \
             pods",
        ),
        (
            svc("cluster").share("web").tcp(443).ip("203.0.113.9"),
            "address \"203.0.113.9\" is already used by service \"default/local\": different \
             backends: with externalTrafficPolicy Local both services must select the same \
             pods",
        ),
    ];
    for (s, message) in cases {
        assert_eq!(err(&mut a, &s), message, "{}", s.key);
    }
    assert_eq!(
        got(
            &mut a,
            &svc("local-3")
                .share("web")
                .local("app=web")
                .tcp(443)
                .ip("203.0.113.9")
        ),
        ["203.0.113.9"],
        "same backends share"
    );
}

#[test]
fn sharing_services_colocate_on_a_compatible_address() {
    let mut a = seed();
    assert_eq!(got(&mut a, &svc("first").tcp(80)), ["203.0.113.1"]);
    assert_eq!(
        got(&mut a, &svc("http").share("web").tcp(80)),
        ["203.0.113.2"]
    );
    assert_eq!(got(&mut a, &svc("other").tcp(80)), ["203.0.113.3"]);
    a.release(&key("first"));
    // 203.0.113.1 is free and lower, but the key's address wins.
    assert_eq!(
        got(&mut a, &svc("https").share("web").tcp(443)),
        ["203.0.113.2"]
    );
    // Overlapping ports: a new address, the lowest free one.
    assert_eq!(
        got(&mut a, &svc("http-2").share("web").tcp(80)),
        ["203.0.113.1"]
    );
    // Now both web addresses use 80; 8080 can go to the lowest of them.
    assert_eq!(
        got(&mut a, &svc("alt").share("web").tcp(8080)),
        ["203.0.113.1"]
    );
    // Another key, or another backend, does not colocate.
    assert_eq!(
        got(&mut a, &svc("mail").share("mail").tcp(25)),
        ["203.0.113.4"]
    );
    assert_eq!(
        got(&mut a, &svc("web-local").share("web").local("x").tcp(9)),
        ["203.0.113.5"]
    );
}

#[test]
fn colocation_skips_sharers_whose_ports_overlap() {
    let mut a = seed();
    got(&mut a, &svc("http").share("web").tcp(80).ip("203.0.113.1"));
    got(
        &mut a,
        &svc("https").share("web").tcp(443).ip("203.0.113.2"),
    );
    assert_eq!(
        got(&mut a, &svc("http-2").share("web").tcp(80)),
        ["203.0.113.2"]
    );
    assert_eq!(
        got(&mut a, &svc("https-2").share("web").tcp(443)),
        ["203.0.113.1"]
    );
    assert_eq!(
        got(&mut a, &svc("both").share("web").tcp(80).tcp(443)),
        ["203.0.113.3"]
    );
    a.check_consistency().unwrap();
}

#[test]
fn a_shared_address_stays_in_use_until_its_last_sharer_leaves() {
    let mut a = seed();
    got(&mut a, &svc("tcp").share("k").tcp(53));
    got(&mut a, &svc("udp").share("k").udp(53));
    a.release(&key("tcp"));
    assert_eq!(got(&mut a, &svc("plain")), ["203.0.113.2"]);
    assert_eq!(got(&mut a, &svc("tcp").share("k").tcp(53)), ["203.0.113.1"]);
    a.release(&key("tcp"));
    a.release(&key("udp"));
    assert_eq!(got(&mut a, &svc("plain-2")), ["203.0.113.1"]);
    assert_eq!(a.pool_stats("doc-example").unwrap().ipv4.assigned, 2);
}

#[test]
fn a_sole_holder_may_change_its_key_but_not_break_sharing() {
    let mut a = seed();
    got(&mut a, &svc("a").share("one").tcp(80));
    assert_eq!(
        got(&mut a, &svc("a").share("two").tcp(80)),
        ["203.0.113.1"],
        "kept"
    );
    got(&mut a, &svc("b").share("two").tcp(443));
    assert_eq!(a.holders(&ip("203.0.113.1")).count(), 2);
    // b now also wants port 80, which a uses there: b moves, a stays.
    assert_eq!(got(&mut a, &svc("b").share("two").tcp(80)), ["203.0.113.2"]);
    assert_eq!(a.assignment(&key("a")).unwrap().ips, [ip("203.0.113.1")]);
}

// --- dual-stack ---

#[test]
fn require_dual_stack_takes_both_families_from_one_pool() {
    let mut a = Allocator::new(&[
        pool("a-v4", &["10.0.0.0/30"]),
        pool("b-dual", &["10.0.100.0/28", "2002:2:2::1-2002:2:2::100"]),
    ]);
    assert_eq!(
        got(&mut a, &svc("a").require_dual()),
        ["10.0.100.0", "2002:2:2::1"]
    );
    assert_eq!(a.assignment(&key("a")).unwrap().pool, "b-dual");
    let v6_first = svc("b").families(IpFamilyPolicy::RequireDualStack, &[Family::V6, Family::V4]);
    assert_eq!(got(&mut a, &v6_first), ["2002:2:2::2", "10.0.100.1"]);
    assert_eq!(
        got(&mut a, &svc("c")),
        ["10.0.0.0"],
        "single stack still goes to a-v4"
    );
}

#[test]
fn dual_stack_failures_say_what_is_missing() {
    let mut a = Allocator::new(&[pool("v4", &["10.0.0.0/30"]), pool("v6", &["2002::/126"])]);
    assert_eq!(
        err(&mut a, &svc("a").require_dual()),
        "no available IPs: no pool this service may use automatically has both IPv4 and IPv6 \
         addresses (RequireDualStack takes both from one pool)"
    );
    assert_eq!(
        err(&mut a, &svc("b").require_dual().pool("v4")),
        "no available IPs in pool \"v4\": it has no IPv6 addresses, which the \
         RequireDualStack service needs"
    );
    let mut a = Allocator::new(&[pool("v4", &["10.0.0.0/30"])]);
    assert_eq!(
        err(&mut a, &svc("c").v6()),
        "no available IPs: no pool this service may use automatically has IPv6 addresses"
    );
    let mut a = Allocator::new(&[pool("dual", &["10.0.0.0/32", "2002::/126"])]);
    got(&mut a, &svc("d"));
    assert_eq!(
        err(&mut a, &svc("e").require_dual().pool("dual")),
        "no available IPs in pool \"dual\": no free IPv4 address"
    );
    assert_eq!(err(&mut a, &svc("f").require_dual()), "no available IPs");
}

#[test]
fn prefer_dual_stack_takes_what_the_pool_has() {
    let mut a = Allocator::new(&[pool("v4", &["10.0.0.0/30"])]);
    assert_eq!(got(&mut a, &svc("a").prefer_dual()), ["10.0.0.0"]);
    let mut a = dual();
    assert_eq!(
        got(&mut a, &svc("b").prefer_dual()),
        ["10.0.100.0", "2002:2:2::1"]
    );
    // Only the secondary family: it gets that family, as upstream (this test used to expect
    // a refusal, asymmetric with a pool of the primary family only).
    let mut a = Allocator::new(&[pool("v6", &["2002::/126"])]);
    assert_eq!(got(&mut a, &svc("c").prefer_dual()), ["2002::"]);
}

#[test]
fn prefer_dual_stack_prefers_a_pool_with_both_families() {
    // "a-v4" sorts first, but "b-dual" gives both families (upstream findBestPoolForService).
    let mut a = Allocator::new(&[
        pool("a-v4", &["10.0.0.0/30"]),
        pool("b-dual", &["10.1.0.0/30", "2002::/126"]),
    ]);
    assert_eq!(got(&mut a, &svc("d").prefer_dual()), ["10.1.0.0", "2002::"]);
    // A single-family Service still takes the first pool.
    assert_eq!(got(&mut a, &svc("s")), ["10.0.0.0"]);
}

#[test]
fn prefer_dual_stack_gains_its_missing_family_in_place() {
    let v4_only = pool("p", &["10.0.100.0/28"]);
    let mut a = Allocator::new(&[pool("p", &["10.0.100.0/28"])]);
    got(&mut a, &svc("first"));
    assert_eq!(got(&mut a, &svc("a").prefer_dual()), ["10.0.100.1"]);
    let with_v6 = pool("p", &["10.0.100.0/28", "2002:2:2::1-2002:2:2::100"]);
    assert!(a.set_pools([&with_v6]).is_empty());
    a.release(&key("first"));
    assert_eq!(
        got(&mut a, &svc("a").prefer_dual()),
        ["10.0.100.1", "2002:2:2::1"]
    );
    // Back to IPv4 only: the IPv6 address is no longer allowed, the service loses both.
    assert_eq!(a.set_pools([&v4_only]), [key("a")]);
    assert_eq!(got(&mut a, &svc("a").prefer_dual()), ["10.0.100.0"]);
}

#[test]
fn family_policy_change_keeps_the_primary_address() {
    let mut a = dual();
    assert_eq!(
        got(&mut a, &svc("a").require_dual()),
        ["10.0.100.0", "2002:2:2::1"]
    );
    assert_eq!(
        got(&mut a, &svc("a")),
        ["10.0.100.0"],
        "SingleStack keeps IPv4"
    );
    assert_eq!(
        a.pool_stats("doc-example-combined").unwrap().ipv6.assigned,
        0
    );
    assert_eq!(
        got(&mut a, &svc("a").require_dual()),
        ["10.0.100.0", "2002:2:2::1"]
    );
    assert_eq!(got(&mut a, &svc("a").v6()), ["2002:2:2::1"]);
}

// --- stability ---

#[test]
fn allocate_is_idempotent() {
    let mut a = dual();
    let s = svc("a").require_dual().share("k").tcp(80);
    let first = a.allocate(&s).unwrap();
    got(&mut a, &svc("b"));
    let stats = a.pool_stats("doc-example-combined");
    assert_eq!(a.allocate(&s).unwrap(), first);
    assert_eq!(a.allocate(&s).unwrap(), first);
    assert_eq!(a.pool_stats("doc-example-combined"), stats);
}

#[test]
fn annotated_pool_change_reallocates() {
    let mut a = seed();
    assert_eq!(got(&mut a, &svc("a")), ["203.0.113.1"]);
    assert_eq!(
        got(&mut a, &svc("a").pool("doc-example-reserved")),
        ["10.0.100.0"]
    );
    assert_eq!(
        got(&mut a, &svc("a").pool("doc-example-reserved")),
        ["10.0.100.0"]
    );
    // Removing the annotation keeps the address (upstream only reacts to a named pool).
    assert_eq!(got(&mut a, &svc("a")), ["10.0.100.0"]);
}

#[test]
fn restore_is_idempotent_and_checked_like_a_request() {
    let mut a = seed();
    let s = svc("a").share("k").tcp(80);
    let restored = a.restore(&s, &[ip("203.0.113.5")]).unwrap();
    assert_eq!(a.restore(&s, &[ip("203.0.113.5")]).unwrap(), restored);
    assert_eq!(a.pool_stats("doc-example").unwrap().ipv4.assigned, 1);
    assert_eq!(
        a.restore(&svc("b").tcp(80), &[ip("203.0.113.5")])
            .unwrap_err()
            .to_string(),
        "address \"203.0.113.5\" is already used by service \"default/a\": this service has \
         no allow-shared-ip key"
    );
    assert_eq!(
        a.restore(&svc("c"), &[ip("4.3.2.1")])
            .unwrap_err()
            .to_string(),
        "\"4.3.2.1\" is not allowed in config"
    );
    assert_eq!(a.restore(&svc("d"), &[]), Err(AllocError::NothingToRestore));
    // Restoring elsewhere replaces what the service held.
    a.restore(&s, &[ip("203.0.113.6")]).unwrap();
    assert_eq!(a.holders(&ip("203.0.113.5")).count(), 0);
    assert_eq!(got(&mut a, &s), ["203.0.113.6"]);
}

#[test]
fn restart_restores_every_address_before_allocating_new_ones() {
    let pools = [
        pool("doc-example", &["203.0.113.1-203.0.113.10"]),
        pool("dual", &["10.0.200.0/28", "2002:2:2::1-2002:2:2::100"]),
    ];
    let mut before = Allocator::new(&pools);
    let services = [
        svc("a"),
        svc("b").share("dns").tcp(53),
        svc("c").share("dns").udp(53),
        svc("d").require_dual(),
        svc("e"),
        svc("f").ip("203.0.113.9"),
    ];
    for s in &services {
        before.allocate(s).unwrap();
    }
    before.release(&key("a"));
    let status: Vec<(LbService, Vec<IpAddr>)> = services[1..]
        .iter()
        .map(|s| (s.clone(), before.assignment(&s.key).unwrap().ips.clone()))
        .collect();
    // A new controller, which sees the services in another order.
    let mut after = Allocator::new(&pools);
    for (s, ips) in status.iter().rev() {
        after.restore(s, ips).unwrap();
    }
    assert_eq!(
        got(&mut after, &svc("new")),
        ["203.0.113.1"],
        "the one free address"
    );
    for (s, ips) in &status {
        assert_eq!(
            &after.allocate(s).unwrap().ips,
            ips,
            "{} kept its address",
            s.key
        );
    }
    assert_eq!(after.pool_stats("dual"), before.pool_stats("dual"));
}

#[test]
fn a_service_never_seen_keeps_the_address_in_its_status() {
    let mut a = seed();
    assert_eq!(
        got(&mut a, &svc("a").status(&["203.0.113.4"])),
        ["203.0.113.4"]
    );
    assert_eq!(
        got(&mut a, &svc("b").status(&["203.0.113.4"])),
        ["203.0.113.1"],
        "taken"
    );
    assert_eq!(
        got(&mut a, &svc("c").status(&["4.3.2.1"])),
        ["203.0.113.2"],
        "not allowed"
    );
}

#[test]
fn set_pools_keeps_valid_assignments_and_returns_the_others() {
    let mut a = Allocator::new(&[
        pool("doc-example", &["203.0.113.5-203.0.113.10"]),
        pinned("pinned", &["10.0.0.0/28"], 1, &["ns"]),
    ]);
    got(&mut a, &svc("keep"));
    got(&mut a, &svc("gone"));
    got(&mut a, &svc("ns/buggy").ip("10.0.0.0"));
    got(&mut a, &svc("ns/pinned"));
    assert_eq!(
        a.assignment(&key("ns/buggy")).unwrap().ips,
        [ip("10.0.0.0")]
    );
    let mut narrowed = pinned("pinned", &["10.0.0.0/28"], 1, &["other"]);
    narrowed.avoid_buggy_ips = true;
    let lost = a.set_pools(&[
        // Grows downwards: lower addresses appear, nobody moves.
        pool("doc-example", &["203.0.113.1-203.0.113.5"]),
        narrowed,
    ]);
    assert_eq!(
        lost,
        [key("default/gone"), key("ns/buggy"), key("ns/pinned")]
    );
    assert_eq!(a.assignment(&key("keep")).unwrap().ips, [ip("203.0.113.5")]);
    assert_eq!(a.assignment(&key("gone")), None);
    assert_eq!(got(&mut a, &svc("gone")), ["203.0.113.1"]);
    let stats = a.pool_stats("doc-example").unwrap();
    assert_eq!(
        (stats.ipv4.total, stats.ipv4.assigned, stats.services),
        (5, 2, 2)
    );
    assert_eq!(a.pool_stats("pinned").unwrap().ipv4.assigned, 0);
}

#[test]
fn set_pools_follows_a_renamed_pool_and_the_annotation() {
    let mut a = seed();
    got(&mut a, &svc("a"));
    got(&mut a, &svc("b").pool("later"));
    let renamed = pool("renamed", &["203.0.113.1-203.0.113.10"]);
    assert!(a.set_pools(std::slice::from_ref(&renamed)).is_empty());
    assert_eq!(a.assignment(&key("a")).unwrap().pool, "renamed");
    assert_eq!(a.assignment(&key("b")).unwrap().ips, [ip("203.0.113.2")]);
    // The annotated pool now exists: b must move there.
    assert_eq!(
        a.set_pools(&[renamed, pool("later", &["10.1.0.0/30"])]),
        [key("b")]
    );
    assert_eq!(got(&mut a, &svc("b").pool("later")), ["10.1.0.0"]);
    assert!(a.pool_stats("doc-example").is_none());
}

// --- size ---

#[test]
fn huge_ipv6_pools_are_never_materialised() {
    let mut a = Allocator::new(&[
        pool("slash64", &["2001:db8::/64"]),
        reserved("everything", &["::/0"]),
    ]);
    let s = svc("a").v6();
    assert_eq!(got(&mut a, &s), ["2001:db8::"]);
    assert_eq!(got(&mut a, &svc("b").v6()), ["2001:db8::1"]);
    let stats = a.pool_stats("slash64").unwrap().ipv6;
    assert_eq!((stats.total, stats.assigned), (1 << 64, 2));
    assert_eq!(stats.total_i64(), i64::MAX);
    assert_eq!(stats.assigned_i64(), 2);
    let everything = a.pool_stats("everything").unwrap().ipv6;
    assert_eq!(everything.total, u128::MAX);
    assert_eq!(everything.available_i64(), i64::MAX);
    assert_eq!(
        got(
            &mut a,
            &svc("c").v6().ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        )
        .len(),
        1
    );
}

#[test]
fn overlapping_pools_never_hand_out_an_address_twice() {
    let mut a = Allocator::new(&[
        pool("a", &["10.0.0.0/30"]),
        pool("b", &["10.0.0.2/31", "10.0.0.8/32"]),
    ]);
    assert!(a.overlapping);
    let mut seen = BTreeSet::new();
    for i in 0..5 {
        let name = format!("s{i}");
        let s = if i % 2 == 0 {
            svc(&name).pool("b")
        } else {
            svc(&name)
        };
        for addr in a.allocate(&s).unwrap().ips {
            assert!(seen.insert(addr), "{addr} handed out twice");
        }
    }
    assert_eq!(err(&mut a, &svc("s5")), "no available IPs");
    a.release(&key("s0"));
    assert_eq!(got(&mut a, &svc("s6").pool("a")), ["10.0.0.2"]);
}
