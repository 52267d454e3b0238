//! `config::build` from the outside: every invalid fixture is rejected with the problem it
//! names, a rich valid manifest resolves to the expected model, and no input makes it panic.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::{
    collections::BTreeMap,
    fs,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::Node,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta},
};
use metallb::{
    api::{
        address_pool::{self, LegacyBgpAdvertisement, Protocol},
        bfd_profile::{BFDProfile, BFDProfileSpec},
        bgp_advertisement::{BGPAdvertisement, BGPAdvertisementSpec},
        bgp_peer::v1beta2::{self, DynamicAsn, SecretReference},
        community::{Community as CommunityObject, CommunityAlias, CommunitySpec},
        ip_address_pool::{IPAddressPool, IPAddressPoolSpec, ServiceAllocation},
        l2_advertisement::{L2Advertisement, L2AdvertisementSpec, PreferredNodeSelector},
    },
    config::{self, ConfigError, LoadOptions, Resources, resources::PeerObject},
    core::{
        community::Community,
        config::{Config, Password, PeerAddress, PeerAsn},
    },
    manifest,
};
use proptest::{collection::vec, option, prelude::*};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid")
}

/// Every problem of a manifest, decoding and building alike, as `Kind/name: field: message`.
fn problems_of(file: &str, text: &str) -> Result<Vec<String>, String> {
    let docs = manifest::parse(file, text).map_err(|e| format!("not valid YAML: {e}"))?;
    let (_, loaded) = config::load_documents(&docs, &LoadOptions::default());
    Ok(loaded.problems.iter().map(ToString::to_string).collect())
}

#[test]
fn every_invalid_fixture_is_rejected_with_its_expected_problem() {
    let files = fixtures::yaml_files("invalid");
    assert!(
        files.len() >= 30,
        "expected at least 30 fixtures, found {}",
        files.len()
    );

    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(path).unwrap();
        let Some(expected) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
        else {
            failures.push(format!(
                "{name}: first line must be `# expect: <substring>`"
            ));
            continue;
        };
        match problems_of(&name, &text) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(found) if found.iter().any(|p| p.contains(expected)) => {}
            Ok(found) => failures.push(format!("{name}: expected {expected:?} in {found:#?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn fixture_expectations_name_a_field() {
    for entry in fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let expected = text.lines().next().unwrap_or_default();
        // `# expect: Kind/name: field: ...`: the object and the field are both named.
        let parts: Vec<&str> = expected
            .trim_start_matches("# expect: ")
            .splitn(3, ": ")
            .collect();
        assert!(
            parts.len() >= 2 && parts[0].contains('/') && !parts[1].is_empty(),
            "{}: expectation should start with `Kind/name: field`",
            path.display()
        );
    }
}

#[test]
fn every_seed_example_builds_on_its_own() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
    let mut checked = 0;
    let mut awaiting = Vec::new();
    for entry in fs::read_dir(dir).expect("tests/fixtures/seed exists") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let docs = manifest::parse(&name, &fs::read_to_string(&path).unwrap()).unwrap();
        let (_, loaded) = config::load_documents(&docs, &LoadOptions::default());
        // On its own an example may name an object of another example (the BGPPeer's
        // bfdProfile): the webhook admits it, since that object may come next.
        let blocking: Vec<_> = loaded.blocking().collect();
        assert!(blocking.is_empty(), "{name}: {blocking:#?}");
        if !loaded.problems.is_empty() {
            awaiting.push(name);
        }
        checked += 1;
    }
    assert!(
        checked >= 20,
        "expected every seed example, found {checked}"
    );
    assert_eq!(awaiting, ["26.4.3.2-bgppeer-bfd.yaml"]);
}

#[test]
fn advertisements_naming_missing_objects_are_valid_and_select_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/filters");
    let mut checked = 0;
    for entry in fs::read_dir(dir).expect("tests/fixtures/filters exists") {
        let path = entry.unwrap().path();
        let name = path.display().to_string();
        let docs = manifest::parse(&name, &fs::read_to_string(&path).unwrap()).unwrap();
        let (_, loaded) = config::load_documents(&docs, &LoadOptions::default());
        let config = loaded.valid().unwrap_or_else(|e| panic!("{name}: {e:#?}"));
        for pool in config.pools.values() {
            assert!(pool.l2_advertisements.is_empty(), "{name}");
            for advertisement in &pool.bgp_advertisements {
                assert!(
                    !advertisement.peers.is_empty()
                        && advertisement
                            .peers
                            .iter()
                            .all(|p| !config.peers.contains_key(p)),
                    "{name}: {advertisement:?} reaches a peer"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// Both API styles, dual stack, community aliases, BFD, peers of both versions with node
/// selectors, and every advertisement kind.
const RICH: &str = r#"
apiVersion: metallb.io/v1beta1
kind: MetalLB
metadata: {name: metallb, namespace: metallb-system}
spec:
  logLevel: debug
  nodeSelector: {node-role.kubernetes.io/worker: ""}
---
apiVersion: metallb.io/v1alpha1
kind: AddressPool
metadata: {name: doc-example, namespace: metallb-system}
spec:
  protocol: layer2
  addresses:
  - 203.0.113.1-203.0.113.10
  - 203.0.113.65-203.0.113.75
---
apiVersion: metallb.io/v1beta1
kind: AddressPool
metadata: {name: doc-example-bgp-adv, namespace: metallb-system}
spec:
  protocol: bgp
  addresses:
  - 203.0.113.200/30
  - fc00:f853:ccd:e799::/124
  bgpAdvertisements:
  - communities: [65535:65282]
    aggregationLength: 32
    localPref: 100
  - communities: [8000:800]
    aggregationLength: 30
    aggregationLengthV6: 124
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: gold
  namespace: metallb-system
  labels: {tier: premium}
spec:
  addresses: [10.10.0.0/24, "2001:db8:10::/120"]
  serviceAllocation:
    priority: 10
    namespaces: [web]
    serviceSelectors:
    - matchLabels: {app: web}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: silver
  namespace: metallb-system
  labels: {tier: standard}
spec:
  addresses: [10.20.0.1-10.20.0.50, "2001:db8:20::1-2001:db8:20::ff"]
  autoAssign: false
  avoidBuggyIPs: true
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec:
  communities:
  - {name: no-advertise, value: "65535:65282"}
  - {name: premium, value: "large:64500:100:1"}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 5, passiveMode: true}
---
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: tor-a, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
  holdTime: 90s
  routerID: 10.10.10.10
  bfdProfile: fast
  nodeSelectors:
  - matchLabels: {rack: r1}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor-b, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64502
  peerAddress: 10.0.1.1
  keepaliveTime: 20s
  routerID: 10.10.10.10
  passwordSecret: {name: tor-b-password}
  nodeSelectors:
  - matchExpressions:
    - {key: rack, operator: In, values: [r2, r3]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor-v6, namespace: metallb-system}
spec:
  myASN: 64500
  dynamicASN: external
  peerAddress: "2001:db8::1"
  connectTime: 10s
  ebgpMultiHop: true
  vrf: ""
  # Every peer that can share a node sets the same routerID, or none (upstream's rule).
  routerID: 10.10.10.10
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: premium, namespace: metallb-system}
spec:
  ipAddressPoolSelectors:
  - matchLabels: {tier: premium}
  aggregationLength: 24
  aggregationLengthV6: 120
  communities: [premium, NO_EXPORT]
  localPref: 200
  peers: [tor-a, tor-b]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: local, namespace: metallb-system}
spec:
  ipAddressPools: [gold, silver]
  communities: [no-advertise]
  localPref: 100
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2-silver, namespace: metallb-system}
spec:
  ipAddressPools: [silver]
  interfaces: [eth1]
  nodeSelectors:
  - matchLabels: {zone: a}
  preferredNodeSelectors:
  - weight: 50
    preference: {matchLabels: {rack: r1}}
---
apiVersion: v1
kind: Secret
metadata: {name: tor-b-password, namespace: metallb-system}
type: kubernetes.io/basic-auth
stringData: {password: tor-b}
"#;

fn build_rich() -> Config {
    let docs = manifest::parse("rich.yaml", RICH).unwrap();
    let (resources, errors) = Resources::from_documents(&docs);
    assert!(errors.is_empty(), "{errors:#?}");
    let options = LoadOptions {
        namespace: Some("metallb-system".into()),
    };
    config::load(&resources, &options)
        .valid()
        .unwrap_or_else(|e| panic!("{e:#?}"))
}

fn range_texts(config: &Config, pool: &str) -> Vec<String> {
    config.pools[pool]
        .ranges
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn rich_manifest_resolves_pools_of_both_styles() {
    let config = build_rich();
    assert_eq!(
        config.pools.keys().collect::<Vec<_>>(),
        ["doc-example", "doc-example-bgp-adv", "gold", "silver"]
    );

    let legacy_l2 = &config.pools["doc-example"];
    assert_eq!(
        range_texts(&config, "doc-example"),
        ["203.0.113.1-203.0.113.10", "203.0.113.65-203.0.113.75"]
    );
    assert_eq!(legacy_l2.l2_advertisements.len(), 1);
    assert_eq!(
        legacy_l2.l2_advertisements[0].source,
        "AddressPool/doc-example"
    );
    assert!(legacy_l2.l2_advertisements[0].interfaces.is_empty());
    assert!(legacy_l2.bgp_advertisements.is_empty());

    let legacy_bgp = &config.pools["doc-example-bgp-adv"];
    assert_eq!(
        range_texts(&config, "doc-example-bgp-adv"),
        ["203.0.113.200/30", "fc00:f853:ccd:e799::/124"]
    );
    let [first, second] = legacy_bgp.bgp_advertisements.as_slice() else {
        panic!("two advertisements")
    };
    assert_eq!(first.source, "AddressPool/doc-example-bgp-adv[0]");
    assert_eq!(
        (
            first.aggregation_length_v4,
            first.aggregation_length_v6,
            first.local_pref
        ),
        (32, 128, Some(100))
    );
    assert_eq!(
        first.communities.iter().copied().collect::<Vec<_>>(),
        [Community::Standard(65535, 65282)]
    );
    assert_eq!(second.source, "AddressPool/doc-example-bgp-adv[1]");
    assert_eq!(
        (
            second.aggregation_length_v4,
            second.aggregation_length_v6,
            second.local_pref
        ),
        (30, 124, None)
    );
    assert_eq!(
        second.communities.iter().copied().collect::<Vec<_>>(),
        [Community::Standard(8000, 800)]
    );

    let gold = &config.pools["gold"];
    assert_eq!(
        range_texts(&config, "gold"),
        ["10.10.0.0/24", "2001:db8:10::/120"]
    );
    let allocation = gold.allocation.as_ref().unwrap();
    assert_eq!(allocation.priority, 10);
    assert_eq!(allocation.namespaces.iter().collect::<Vec<_>>(), ["web"]);
    assert_eq!(allocation.service_selectors[0].match_labels["app"], "web");
    let sources: Vec<&str> = gold
        .bgp_advertisements
        .iter()
        .map(|a| a.source.as_str())
        .collect();
    assert_eq!(
        sources,
        ["BGPAdvertisement/local", "BGPAdvertisement/premium"]
    );
    let premium = &gold.bgp_advertisements[1];
    assert_eq!(
        (premium.aggregation_length_v4, premium.aggregation_length_v6),
        (24, 120)
    );
    assert_eq!(premium.local_pref, Some(200));
    assert_eq!(
        premium.communities.iter().copied().collect::<Vec<_>>(),
        [
            Community::Standard(65535, 65281),
            Community::Large(64500, 100, 1)
        ]
    );
    assert_eq!(premium.peers, ["tor-a", "tor-b"]);
    let local = &gold.bgp_advertisements[0];
    assert_eq!(
        local.communities.iter().copied().collect::<Vec<_>>(),
        [Community::Standard(65535, 65282)]
    );
    assert!(gold.l2_advertisements.is_empty());

    let silver = &config.pools["silver"];
    assert_eq!(
        range_texts(&config, "silver"),
        ["10.20.0.1-10.20.0.50", "2001:db8:20::1-2001:db8:20::ff"]
    );
    assert!(!silver.auto_assign);
    assert!(silver.avoid_buggy_ips);
    assert_eq!(silver.allocation, None);
    assert_eq!(
        silver
            .bgp_advertisements
            .iter()
            .map(|a| a.source.as_str())
            .collect::<Vec<_>>(),
        ["BGPAdvertisement/local"]
    );
    let l2 = &silver.l2_advertisements[0];
    assert_eq!(l2.source, "L2Advertisement/l2-silver");
    assert_eq!(l2.interfaces, ["eth1"]);
    assert_eq!(l2.node_selectors[0].match_labels["zone"], "a");
    assert_eq!(l2.preferred_nodes[0].0, 50);
    assert_eq!(l2.preferred_nodes[0].1.match_labels["rack"], "r1");
}

#[test]
fn rich_manifest_resolves_peers_and_bfd() {
    let config = build_rich();
    assert_eq!(
        config.peers.keys().collect::<Vec<_>>(),
        ["tor-a", "tor-b", "tor-v6"]
    );

    let tor_a = &config.peers["tor-a"];
    assert_eq!(tor_a.my_asn, 64500);
    assert_eq!(tor_a.asn, PeerAsn::Number(64501));
    assert_eq!(
        tor_a.address,
        PeerAddress::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert_eq!(tor_a.hold_time, Some(Duration::from_secs(90)));
    assert_eq!(
        tor_a.keepalive_time,
        Some(Duration::from_secs(30)),
        "derived: hold / 3"
    );
    assert_eq!(tor_a.router_id, Some(Ipv4Addr::new(10, 10, 10, 10)));
    assert_eq!(tor_a.bfd_profile.as_deref(), Some("fast"));
    assert_eq!(tor_a.node_selectors[0].match_labels["rack"], "r1");

    let tor_b = &config.peers["tor-b"];
    assert_eq!(tor_b.keepalive_time, Some(Duration::from_secs(20)));
    assert_eq!(
        tor_b.hold_time,
        Some(Duration::from_secs(60)),
        "derived: keepalive × 3"
    );
    assert_eq!(
        tor_b.password,
        Some(Password::Secret {
            name: "tor-b-password".into(),
            namespace: None
        })
    );
    assert_eq!(tor_b.node_selectors[0].match_expressions[0].values.len(), 2);

    let tor_v6 = &config.peers["tor-v6"];
    assert_eq!(tor_v6.asn, PeerAsn::External);
    assert_eq!(
        tor_v6.address,
        PeerAddress::Ip("2001:db8::1".parse().unwrap())
    );
    assert_eq!(tor_v6.connect_time, Some(Duration::from_secs(10)));
    assert_eq!(
        (tor_v6.hold_time, tor_v6.keepalive_time),
        (None, None),
        "FRR defaults"
    );
    assert!(tor_v6.ebgp_multihop);
    assert_eq!(tor_v6.vrf, None, "an empty VRF is the default VRF");

    let fast = &config.bfd_profiles["fast"];
    assert_eq!(
        (
            fast.receive_interval,
            fast.transmit_interval,
            fast.detect_multiplier
        ),
        (Some(100), Some(100), Some(5))
    );
    assert!(fast.passive_mode);
    assert!(!fast.echo_mode);
}

#[test]
fn build_reports_every_problem_not_just_the_first() {
    let text = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [bad, 10.0.0.0/33], serviceAllocation: {priority: -2}}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: r}\nspec: {myASN: 0, peerAddress: nowhere, holdTime: 1s}\n";
    let found = problems_of("t.yaml", text).unwrap();
    for expected in [
        "BGPPeer/r: spec.holdTime",
        "BGPPeer/r: spec.myASN",
        "BGPPeer/r: spec.peerASN",
        "BGPPeer/r: spec.peerAddress",
        "IPAddressPool/p: spec.addresses[0]",
        "IPAddressPool/p: spec.addresses[1]",
        "IPAddressPool/p: spec.serviceAllocation.priority",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected:?} missing from {found:#?}"
        );
    }
    let mut sorted = found.clone();
    sorted.sort();
    assert_eq!(
        found, sorted,
        "problems come sorted by kind, name and field"
    );
}

// === never panics ===
//
// Random but structured resources: every generator mostly yields valid values (so a good share
// of configurations build and the `Ok` invariants are exercised) and sometimes garbage, empty
// names, duplicates, colliding addresses and dangling references.

fn meta(name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some("metallb-system".into()),
        labels: (!labels.is_empty()).then_some(labels),
        ..Default::default()
    }
}

/// `None` three times out of four, otherwise a value of `inner`.
fn rarely<T: std::fmt::Debug + Clone + 'static>(
    inner: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop_oneof![3 => Just(None), 1 => inner.prop_map(Some)]
}

fn name() -> impl Strategy<Value = String> {
    // Few names, so duplicates and references that resolve are common.
    prop_oneof![1 => Just(String::new()), 3 => "[a-c]", 6 => "[a-c][a-e]"]
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-c]", "[a-c]{0,2}", 0..2)
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (any::<u8>(), 24u8..=28).prop_map(|(a, len)| format!("10.{a}.0.0/{len}")),
        4 => (any::<u8>(), 1u8..100, 100u8..200)
            .prop_map(|(a, s, e)| format!("10.{a}.1.{s}-10.{a}.1.{e}")),
        4 => (any::<u16>(), 120u8..=128).prop_map(|(a, len)| format!("2001:db8:{a:x}::/{len}")),
        1 => (0u8..4, 0u8..4, 16u8..34).prop_map(|(a, b, len)| format!("10.{a}.{b}.0/{len}")),
        1 => (0u8..20, 0u8..20).prop_map(|(a, b)| format!("10.0.0.{a}-10.0.0.{b}")),
        1 => prop_oneof![Just("::/0"), Just("0.0.0.0/0"), Just("10.0.0.1-::1"), Just("1.2.3.4")]
            .prop_map(str::to_string),
        1 => "\\PC{0,16}",
    ]
}

fn community() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("{a}:{b}")),
        2 => (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c)| format!("large:{a}:{b}:{c}")),
        1 => Just("NO_EXPORT".to_string()),
        1 => "[a-c]{1,2}",
        1 => "[0-9]{1,6}:[0-9]{1,6}",
        1 => "\\PC{0,12}",
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (1u32..200).prop_map(|s| format!("{s}s")),
        1 => "[0-9]{1,6}(ns|us|ms|s|m|h)",
        1 => "[0-9]{1,3}(\\.[0-9]{1,2})?[smh][0-9]{0,2}(s|m)?",
        1 => "[-+]?[0-9.e]{0,4}[a-zµ]{0,3}[-0-9.]{0,3}[a-z]{0,2}",
        1 => "\\PC{0,12}",
    ]
}

fn ip_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any::<u8>().prop_map(|a| format!("192.0.2.{a}")),
        2 => (0u8..3).prop_map(|a| format!("10.0.0.{a}")),
        2 => any::<u16>().prop_map(|a| format!("2001:db8::{a:x}")),
        1 => "\\PC{0,8}",
    ]
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    let operator = prop_oneof![
        Just("In"),
        Just("NotIn"),
        Just("Exists"),
        Just("DoesNotExist"),
        Just("Bogus")
    ];
    let values = option::of(vec(prop_oneof![5 => "[a-c]", 1 => "[a-c ]{0,2}"], 0..3));
    let requirement = (
        prop_oneof![5 => "[a-c]", 1 => "[a-c/.-]{0,4}"],
        operator,
        values,
    )
        .prop_map(|(key, operator, values)| LabelSelectorRequirement {
            key,
            operator: operator.to_string(),
            values,
        });
    (option::of(labels()), option::of(vec(requirement, 0..3))).prop_map(
        |(match_labels, match_expressions)| LabelSelector {
            match_labels,
            match_expressions,
        },
    )
}

fn selectors() -> impl Strategy<Value = Vec<LabelSelector>> {
    prop_oneof![3 => Just(Vec::new()), 1 => vec(selector(), 1..3)]
}

fn aggregation() -> impl Strategy<Value = Option<i32>> {
    rarely(prop_oneof![-2i32..140, any::<i32>()])
}

fn local_pref() -> impl Strategy<Value = Option<u32>> {
    rarely(prop_oneof![Just(100u32), Just(200), any::<u32>()])
}

fn legacy_pool() -> impl Strategy<Value = address_pool::v1beta1::AddressPool> {
    let advertisement = (
        aggregation(),
        aggregation(),
        vec(community(), 0..3),
        local_pref(),
    )
        .prop_map(
            |(aggregation_length, aggregation_length_v6, communities, local_pref)| {
                LegacyBgpAdvertisement {
                    aggregation_length,
                    aggregation_length_v6,
                    communities,
                    local_pref,
                }
            },
        );
    (
        name(),
        any::<bool>(),
        vec(address(), 0..3),
        vec(advertisement, 0..2),
    )
        .prop_map(|(name, bgp, addresses, bgp_advertisements)| {
            address_pool::v1beta1::AddressPool {
                metadata: meta(name, BTreeMap::new()),
                spec: address_pool::v1beta1::AddressPoolSpec {
                    protocol: if bgp { Protocol::Bgp } else { Protocol::Layer2 },
                    addresses,
                    auto_assign: true,
                    avoid_buggy_ips: false,
                    bgp_advertisements,
                },
            }
        })
}

fn ip_pool() -> impl Strategy<Value = IPAddressPool> {
    let allocation = (
        option::of(-1i32..5),
        vec("[a-c]{0,1}", 0..3),
        selectors(),
        selectors(),
    )
        .prop_map(
            |(priority, namespaces, namespace_selectors, service_selectors)| ServiceAllocation {
                priority,
                namespaces,
                namespace_selectors,
                service_selectors,
            },
        );
    (name(), labels(), vec(address(), 1..3), rarely(allocation)).prop_map(
        |(name, labels, addresses, service_allocation)| IPAddressPool {
            metadata: meta(name, labels),
            spec: IPAddressPoolSpec {
                addresses,
                auto_assign: true,
                avoid_buggy_ips: true,
                service_allocation,
            },
            status: None,
        },
    )
}

fn peer() -> impl Strategy<Value = PeerObject> {
    let addressing = (
        ip_text(),
        proptest::bool::weighted(0.1),
        option::of("[a-z0-9]{0,17}"),
        proptest::bool::weighted(0.2),
        option::of(ip_text()),
        rarely(ip_text()),
    )
        .prop_map(|(ip, use_interface, interface, odd, source, router_id)| {
            // Mostly exactly one of address and interface; sometimes neither or both.
            let (address, interface) = match (use_interface, odd) {
                (false, false) => (Some(ip), None),
                (true, false) => (None, interface),
                (false, true) => (None, None),
                (true, true) => (Some(ip), interface),
            };
            (address, interface, source.filter(|_| odd), router_id)
        });
    let asns = (
        prop_oneof![6 => Just(64500u32), 1 => Just(0), 1 => Just(64501), 1 => any::<u32>()],
        prop_oneof![
            6 => Just(Some(64501u32)),
            1 => Just(Some(64500)),
            1 => Just(Some(0)),
            1 => Just(None)
        ],
        rarely(prop_oneof![
            Just(DynamicAsn::Internal),
            Just(DynamicAsn::External)
        ]),
        rarely(prop_oneof![Just(0u32), Just(65000)]),
    );
    let timers = (
        rarely(duration()),
        rarely(duration()),
        rarely(duration()),
        rarely(any::<u16>()),
    );
    let rest = (
        name(),
        any::<bool>(),
        rarely("[a-c]{0,2}"),
        option::of(any::<bool>()),
        rarely("[a-c]{0,1}"),
        rarely(option::of("[a-c]{0,1}")),
        selectors(),
    );
    (addressing, asns, timers, rest).prop_map(
        |(
            (peer_address, interface, source_address, router_id),
            (my_asn, peer_asn, dynamic_asn, local_asn),
            (hold_time, keepalive_time, connect_time, peer_port),
            (name, v1beta1, bfd_profile, ebgp_multi_hop, vrf, secret, node_selectors),
        )| PeerObject {
            version: if v1beta1 { "v1beta1" } else { "v1beta2" },
            peer: v1beta2::BGPPeer {
                metadata: meta(name, BTreeMap::new()),
                spec: v1beta2::BGPPeerSpec {
                    my_asn,
                    peer_asn,
                    dynamic_asn,
                    local_asn,
                    peer_address,
                    interface,
                    source_address,
                    peer_port,
                    hold_time,
                    keepalive_time,
                    connect_time,
                    router_id,
                    // A plain password next to an unnamed reference, else a reference alone.
                    password: secret
                        .as_ref()
                        .filter(|n| n.is_none())
                        .map(|_| "pw".to_string()),
                    password_secret: secret.map(|name| SecretReference {
                        name,
                        namespace: None,
                    }),
                    bfd_profile,
                    enable_graceful_restart: None,
                    node_selectors,
                    ebgp_multi_hop,
                    vrf,
                    disable_mp: None,
                    dual_stack_address_family: None,
                },
            },
        },
    )
}

fn bgp_advertisement() -> impl Strategy<Value = BGPAdvertisement> {
    let targets = (
        vec(name(), 0..2),
        selectors(),
        selectors(),
        vec(name(), 0..2),
    );
    // Service selectors exclude aggregation lengths, so they stay rare.
    let service_selectors = prop_oneof![4 => Just(Vec::new()), 1 => selectors()];
    let attributes = (
        aggregation(),
        aggregation(),
        local_pref(),
        vec(community(), 0..3),
        service_selectors,
    );
    (name(), attributes, targets).prop_map(|(name, attributes, targets)| {
        let (aggregation_length, aggregation_length_v6, local_pref, communities, service_selectors) =
            attributes;
        let (ip_address_pools, ip_address_pool_selectors, node_selectors, peers) = targets;
        BGPAdvertisement {
            metadata: meta(name, BTreeMap::new()),
            spec: BGPAdvertisementSpec {
                aggregation_length,
                aggregation_length_v6,
                local_pref,
                communities,
                ip_address_pools,
                ip_address_pool_selectors,
                node_selectors,
                peers,
                service_selectors,
            },
        }
    })
}

fn l2_advertisement() -> impl Strategy<Value = L2Advertisement> {
    let preferred = (prop_oneof![5 => 1i32..=100, 1 => any::<i32>()], selector())
        .prop_map(|(weight, preference)| PreferredNodeSelector { weight, preference });
    let interface = prop_oneof![5 => "eth[0-9]", 1 => "[a-z0-9 /]{0,17}"];
    let spec = (
        vec(name(), 0..2),
        selectors(),
        selectors(),
        vec(interface, 0..3),
        vec(preferred, 0..2),
    )
        .prop_map(
            |(
                ip_address_pools,
                ip_address_pool_selectors,
                node_selectors,
                interfaces,
                preferred_node_selectors,
            )| L2AdvertisementSpec {
                ip_address_pools,
                ip_address_pool_selectors,
                node_selectors,
                interfaces,
                service_selectors: Vec::new(),
                preferred_node_selectors,
            },
        );
    (name(), spec).prop_map(|(name, spec)| L2Advertisement {
        metadata: meta(name, BTreeMap::new()),
        spec,
    })
}

fn community_object() -> impl Strategy<Value = CommunityObject> {
    let alias_name =
        prop_oneof![8 => "[a-c]{1,2}", 1 => Just(String::new()), 1 => Just("1:1".into())];
    let alias = (alias_name, community()).prop_map(|(name, value)| CommunityAlias { name, value });
    (name(), vec(alias, 0..3)).prop_map(|(name, communities)| CommunityObject {
        metadata: meta(name, BTreeMap::new()),
        spec: CommunitySpec { communities },
    })
}

fn bfd_profile() -> impl Strategy<Value = BFDProfile> {
    let value = || prop_oneof![3 => Just(None), 3 => option::of(10u32..=254), 1 => option::of(any::<u32>())];
    (
        name(),
        value(),
        value(),
        value(),
        value(),
        option::of(any::<bool>()),
        value(),
    )
        .prop_map(
            |(
                name,
                receive_interval,
                transmit_interval,
                detect_multiplier,
                echo_interval,
                echo_mode,
                minimum_ttl,
            )| {
                BFDProfile {
                    metadata: meta(name, BTreeMap::new()),
                    spec: BFDProfileSpec {
                        receive_interval,
                        transmit_interval,
                        detect_multiplier,
                        echo_interval,
                        echo_mode,
                        passive_mode: None,
                        minimum_ttl,
                    },
                }
            },
        )
}

fn node() -> impl Strategy<Value = Node> {
    ("[a-c]", labels()).prop_map(|(name, labels)| Node {
        metadata: meta(name, labels),
        ..Default::default()
    })
}

fn resources() -> impl Strategy<Value = Resources> {
    let pools = (vec(legacy_pool(), 0..3), vec(ip_pool(), 0..3));
    let bgp = (
        vec(peer(), 0..3),
        vec(bgp_advertisement(), 0..3),
        vec(bfd_profile(), 0..2),
    );
    let rest = (
        vec(l2_advertisement(), 0..2),
        vec(community_object(), 0..2),
        vec(node(), 0..2),
    );
    (pools, bgp, rest).prop_map(
        |(
            (address_pools, ip_address_pools),
            (bgp_peers, bgp_advertisements, bfd_profiles),
            (l2_advertisements, communities, nodes),
        )| Resources {
            address_pools,
            ip_address_pools,
            bgp_peers,
            bgp_advertisements,
            l2_advertisements,
            communities,
            bfd_profiles,
            nodes,
            ..Default::default()
        },
    )
}

/// A configuration that is valid by construction: disjoint pools, distinct peers sharing one
/// ASN and router ID, advertisements that differ in aggregation length (so LOCAL_PREF never
/// conflicts) and only reference objects that exist. Returns it with the pools each
/// BGPAdvertisement names.
fn valid_resources() -> impl Strategy<Value = (Resources, Vec<Vec<String>>)> {
    let pool_count = 1usize..4;
    let peer_count = 0usize..4;
    let advertisement_count = 0usize..4;
    (
        pool_count,
        peer_count,
        advertisement_count,
        any::<bool>(),
        any::<bool>(),
        0usize..3,
    )
        .prop_flat_map(
            |(pools, peers, advertisements, legacy_bgp, with_router_id, hold_choice)| {
                let pool_picks = vec(
                    proptest::sample::subsequence((0..pools).collect::<Vec<_>>(), 0..=pools),
                    advertisements,
                );
                let peer_picks = vec(
                    proptest::sample::subsequence((0..peers).collect::<Vec<_>>(), 0..=peers),
                    advertisements,
                );
                let communities = vec(
                    proptest::collection::btree_set((any::<u16>(), any::<u16>()), 0..3),
                    advertisements,
                );
                let local_prefs = vec(option::of(any::<u32>()), advertisements);
                (pool_picks, peer_picks, communities, local_prefs).prop_map(
                    move |(pool_picks, peer_picks, communities, local_prefs)| {
                        let mut resources = Resources::default();
                        for i in 0..pools {
                            let mut labels = BTreeMap::new();
                            labels.insert(
                                "tier".to_string(),
                                if i % 2 == 0 { "even" } else { "odd" }.to_string(),
                            );
                            resources.ip_address_pools.push(IPAddressPool {
                                metadata: meta(format!("pool-{i}"), labels),
                                spec: IPAddressPoolSpec {
                                    addresses: vec![
                                        format!("10.{i}.0.0/24"),
                                        format!("10.{i}.1.1-10.{i}.1.9"),
                                        format!("2001:db8:{i}::/120"),
                                    ],
                                    auto_assign: true,
                                    avoid_buggy_ips: false,
                                    service_allocation: None,
                                },
                                status: None,
                            });
                        }
                        resources
                            .address_pools
                            .push(address_pool::v1beta1::AddressPool {
                                metadata: meta("legacy".into(), BTreeMap::new()),
                                spec: address_pool::v1beta1::AddressPoolSpec {
                                    protocol: if legacy_bgp {
                                        Protocol::Bgp
                                    } else {
                                        Protocol::Layer2
                                    },
                                    addresses: vec!["172.16.0.0/24".into()],
                                    auto_assign: true,
                                    avoid_buggy_ips: false,
                                    bgp_advertisements: Vec::new(),
                                },
                            });
                        resources.bfd_profiles.push(BFDProfile {
                            metadata: meta("bfd".into(), BTreeMap::new()),
                            spec: BFDProfileSpec {
                                receive_interval: Some(300),
                                ..Default::default()
                            },
                        });
                        let hold = ["90s", "3s", "0"][hold_choice];
                        for i in 0..peers {
                            resources.bgp_peers.push(PeerObject {
                                version: if i % 2 == 0 { "v1beta1" } else { "v1beta2" },
                                peer: v1beta2::BGPPeer {
                                    metadata: meta(format!("peer-{i}"), BTreeMap::new()),
                                    spec: v1beta2::BGPPeerSpec {
                                        my_asn: 64500,
                                        peer_asn: Some(64501 + i as u32),
                                        peer_address: Some(format!("192.0.2.{i}")),
                                        hold_time: Some(hold.to_string()),
                                        router_id: with_router_id
                                            .then(|| "10.10.10.10".to_string()),
                                        bfd_profile: (i == 0).then(|| "bfd".to_string()),
                                        ..Default::default()
                                    },
                                },
                            });
                        }
                        let mut named_pools = Vec::new();
                        for (i, (((pools, peers), communities), local_pref)) in pool_picks
                            .into_iter()
                            .zip(peer_picks)
                            .zip(communities)
                            .zip(local_prefs)
                            .enumerate()
                        {
                            let pool_names: Vec<String> =
                                pools.iter().map(|p| format!("pool-{p}")).collect();
                            named_pools.push(pool_names.clone());
                            resources.bgp_advertisements.push(BGPAdvertisement {
                                metadata: meta(format!("adv-{i}"), BTreeMap::new()),
                                spec: BGPAdvertisementSpec {
                                    aggregation_length: Some(32 - i as i32),
                                    aggregation_length_v6: Some(128 - i as i32),
                                    local_pref,
                                    communities: communities
                                        .iter()
                                        .map(|(a, b)| format!("{a}:{b}"))
                                        .collect(),
                                    ip_address_pools: pool_names,
                                    peers: peers.iter().map(|p| format!("peer-{p}")).collect(),
                                    ..Default::default()
                                },
                            });
                        }
                        resources.l2_advertisements.push(L2Advertisement {
                            metadata: meta("l2".into(), BTreeMap::new()),
                            spec: L2AdvertisementSpec {
                                ip_address_pool_selectors: vec![LabelSelector {
                                    match_labels: Some(
                                        [("tier".to_string(), "even".to_string())].into(),
                                    ),
                                    match_expressions: None,
                                }],
                                interfaces: vec!["eth0".into()],
                                ..Default::default()
                            },
                        });
                        (resources, named_pools)
                    },
                )
            },
        )
}

fn check_error(error: &ConfigError) -> Result<(), TestCaseError> {
    prop_assert!(!error.kind.is_empty(), "empty kind: {error:?}");
    prop_assert!(!error.name.is_empty(), "empty name: {error:?}");
    prop_assert!(!error.message.is_empty(), "empty message: {error:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn build_never_panics_and_every_error_is_complete(resources in resources()) {
        let options = LoadOptions { namespace: Some("metallb-system".into()) };
        match config::load(&resources, &options).valid() {
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for error in &errors {
                    check_error(error)?;
                }
            }
            Ok(config) => {
                // A valid configuration keeps the promises the allocator and speaker rely on.
                let ranges: Vec<_> = config.pools.values().flat_map(|p| p.ranges.iter()).collect();
                for (i, a) in ranges.iter().enumerate() {
                    for b in &ranges[i + 1..] {
                        prop_assert!(!a.overlaps(b), "{a} overlaps {b}");
                    }
                }
                for pool in config.pools.values() {
                    prop_assert!(!pool.ranges.is_empty());
                    for advertisement in &pool.bgp_advertisements {
                        prop_assert!((1..=32).contains(&advertisement.aggregation_length_v4));
                        prop_assert!((1..=128).contains(&advertisement.aggregation_length_v6));
                    }
                }
                for peer in config.peers.values() {
                    if let (Some(hold), Some(keepalive)) = (peer.hold_time, peer.keepalive_time) {
                        prop_assert!(keepalive <= hold);
                    }
                    prop_assert!(peer.my_asn != 0);
                }
            }
        }
    }

    #[test]
    fn valid_configurations_build_and_resolve((resources, named_pools) in valid_resources()) {
        let config = config::load(&resources, &LoadOptions::default()).valid();
        prop_assert!(config.is_ok(), "{:#?}", config.err());
        let config = config.unwrap();
        prop_assert_eq!(config.pools.len(), resources.ip_address_pools.len() + 1);
        prop_assert_eq!(config.peers.len(), resources.bgp_peers.len());
        for (i, pools) in named_pools.iter().enumerate() {
            let source = format!("BGPAdvertisement/adv-{i}");
            for (name, pool) in &config.pools {
                let attached = pool.bgp_advertisements.iter().filter(|a| a.source == source).count();
                let expected = usize::from(pools.contains(name) || (pools.is_empty() && name != "legacy"));
                prop_assert_eq!(attached, expected, "{} on {}", source, name);
            }
        }
        for (i, pool) in config.pools.values().filter(|p| p.name != "legacy").enumerate() {
            prop_assert_eq!(pool.l2_advertisements.len(), usize::from(i % 2 == 0));
        }
        for peer in config.peers.values() {
            let hold = peer.hold_time.unwrap();
            prop_assert_eq!(peer.keepalive_time, Some(Duration::from_secs(hold.as_secs() / 3)));
        }
    }

    #[test]
    fn go_duration_parsing_never_panics(text in duration()) {
        let _ = config::peer::parse_go_duration(&text);
    }
}
