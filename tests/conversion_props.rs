//! BGPPeer conversion is lossless both ways: a peer written as v1beta1 reads back identical as
//! v1beta1 after being stored as v1beta2, and a v1beta2 peer survives being read and written as
//! v1beta1. Checked on the JSON the conversion webhook exchanges, over generated peers.

use std::collections::BTreeMap;

use metallb::{
    api::{
        LabelSelector,
        bgp_peer::{v1beta1, v1beta2},
    },
    webhook::convert_object,
};
use proptest::prelude::*;
use serde_json::Value;

const V1BETA1: &str = "metallb.io/v1beta1";
const V1BETA2: &str = "metallb.io/v1beta2";

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0s".to_string()),
        (1u32..600).prop_map(|s| format!("{s}s")),
        Just("1m30s".to_string())
    ]
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
    ]
}

fn selectors() -> impl Strategy<Value = Vec<LabelSelector>> {
    prop::collection::vec(
        prop::collection::btree_map(word(), word(), 0..3).prop_map(|labels| LabelSelector {
            match_labels: (!labels.is_empty()).then_some(labels),
            match_expressions: None,
        }),
        0..3,
    )
}

/// Annotations a user may have written: none, or some (never the conversion's own key).
fn annotations() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    prop::option::of(prop::collection::btree_map(
        "example.com/[a-z]{1,6}",
        word(),
        1..3,
    ))
}

fn v1beta1_peer() -> impl Strategy<Value = v1beta1::BGPPeer> {
    (
        (
            any::<u32>(),
            any::<u32>(),
            ip(),
            prop::option::of(ip()),
            prop::option::of(any::<u16>()),
        ),
        (
            prop::option::of(duration()),
            prop::option::of(duration()),
            prop::option::of(ip()),
        ),
        (
            prop::option::of(word()),
            prop::option::of(word()),
            selectors(),
            prop::option::of(any::<bool>()),
        ),
        (word(), annotations()),
    )
        .prop_map(
            |(
                (my_asn, peer_asn, peer_address, source_address, peer_port),
                (hold_time, keepalive_time, router_id),
                (password, bfd_profile, node_selectors, ebgp_multi_hop),
                (name, annotations),
            )| {
                let mut peer = v1beta1::BGPPeer::new(
                    &name,
                    v1beta1::BGPPeerSpec {
                        my_asn,
                        peer_asn,
                        peer_address,
                        source_address,
                        peer_port,
                        hold_time,
                        keepalive_time,
                        router_id,
                        password,
                        bfd_profile,
                        node_selectors,
                        ebgp_multi_hop,
                    },
                );
                peer.metadata.namespace = Some("metallb-system".into());
                peer.metadata.annotations = annotations;
                peer
            },
        )
}

fn v1beta2_peer() -> impl Strategy<Value = v1beta2::BGPPeer> {
    let asn = prop_oneof![
        any::<u32>().prop_map(|n| (Some(n), None)),
        Just((None, Some(v1beta2::DynamicAsn::Internal))),
        Just((None, Some(v1beta2::DynamicAsn::External))),
    ];
    let address = prop_oneof![
        ip().prop_map(|a| (Some(a), None)),
        word().prop_map(|i| (None, Some(i))),
    ];
    let secret = prop::option::of(
        (prop::option::of(word()), prop::option::of(word()))
            .prop_map(|(name, namespace)| v1beta2::SecretReference { name, namespace }),
    );
    (
        (
            any::<u32>(),
            asn,
            prop::option::of(any::<u32>()),
            address,
            prop::option::of(ip()),
        ),
        (
            prop::option::of(any::<u16>()),
            prop::option::of(duration()),
            prop::option::of(duration()),
            prop::option::of(duration()),
        ),
        (
            prop::option::of(ip()),
            prop::option::of(word()),
            secret,
            prop::option::of(word()),
        ),
        (
            prop::option::of(any::<bool>()),
            selectors(),
            prop::option::of(any::<bool>()),
            prop::option::of(word()),
        ),
        (
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            word(),
            annotations(),
        ),
    )
        .prop_map(
            |(
                (
                    my_asn,
                    (peer_asn, dynamic_asn),
                    local_asn,
                    (peer_address, interface),
                    source_address,
                ),
                (peer_port, hold_time, keepalive_time, connect_time),
                (router_id, password, password_secret, bfd_profile),
                (enable_graceful_restart, node_selectors, ebgp_multi_hop, vrf),
                (disable_mp, dual_stack_address_family, name, annotations),
            )| {
                let mut peer = v1beta2::BGPPeer::new(
                    &name,
                    v1beta2::BGPPeerSpec {
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
                        password,
                        password_secret,
                        bfd_profile,
                        enable_graceful_restart,
                        node_selectors,
                        ebgp_multi_hop,
                        vrf,
                        disable_mp,
                        dual_stack_address_family,
                    },
                );
                peer.metadata.namespace = Some("metallb-system".into());
                peer.metadata.annotations = annotations;
                peer
            },
        )
}

fn convert(object: &Value, to: &str) -> Value {
    let converted = convert_object(object, to).unwrap();
    assert_eq!(converted["apiVersion"], to);
    converted
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn v1beta1_written_reads_back_identical_as_v1beta1(peer in v1beta1_peer()) {
        let written = serde_json::to_value(&peer).unwrap();
        let stored = convert(&written, V1BETA2);
        // Stored as v1beta2: every v1beta1 field with the same value.
        let as_v1beta2: v1beta2::BGPPeer = serde_json::from_value(stored.clone()).unwrap();
        prop_assert_eq!(as_v1beta2.spec.peer_asn, Some(peer.spec.peer_asn));
        prop_assert_eq!(as_v1beta2.spec.peer_address.as_ref(), Some(&peer.spec.peer_address));
        prop_assert_eq!(&as_v1beta2.metadata, &peer.metadata);
        let read = convert(&stored, V1BETA1);
        prop_assert_eq!(read, written);
    }

    #[test]
    fn v1beta2_survives_a_v1beta1_round_trip(peer in v1beta2_peer()) {
        let stored = serde_json::to_value(&peer).unwrap();
        let as_v1beta1 = convert(&stored, V1BETA1);
        // What a v1beta1 client reads is a valid v1beta1 object.
        let _: v1beta1::BGPPeer = serde_json::from_value(as_v1beta1.clone()).unwrap();
        let back = convert(&as_v1beta1, V1BETA2);
        prop_assert_eq!(back, stored);
    }
}
