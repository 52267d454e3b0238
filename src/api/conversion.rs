//! BGPPeer v1beta1 ↔ v1beta2, lossless both ways (the conversion webhook's logic; pure).
//!
//! Every v1beta1 field exists in v1beta2 with the same meaning, so v1beta1 → v1beta2 only
//! copies. v1beta2 has fields v1beta1 lacks (`dynamicASN`, `interface`, `vrf`, ...), and makes
//! `peerASN` and `peerAddress` optional where v1beta1 requires them. Going down, those are kept
//! in the annotation [`V1BETA2_FIELDS_ANNOTATION`] (JSON), as Kubernetes' own API conversions
//! do, and the required v1beta1 fields get a placeholder (`0`, `""`); going up, the annotation
//! is read back and removed. So a peer written in either version reads back identical in both.
//!
//! A v1beta1 client that edits the object keeps its edits: a real `peerASN` (not the `0`
//! placeholder) replaces a remembered `dynamicASN`, a real `peerAddress` a remembered
//! `interface`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bgp_peer::{v1beta1, v1beta2};

/// Annotation that carries the v1beta2-only fields of a BGPPeer read as v1beta1.
pub const V1BETA2_FIELDS_ANNOTATION: &str = "metallb.io/v1beta2-fields";

/// The part of a v1beta2 spec that v1beta1 cannot hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct V1beta2Only {
    #[serde(
        rename = "dynamicASN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    dynamic_asn: Option<v1beta2::DynamicAsn>,
    #[serde(rename = "localASN", default, skip_serializing_if = "Option::is_none")]
    local_asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connect_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_secret: Option<v1beta2::SecretReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enable_graceful_restart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vrf: Option<String>,
    #[serde(rename = "disableMP", default, skip_serializing_if = "Option::is_none")]
    disable_mp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dual_stack_address_family: Option<bool>,
    /// v1beta2 had no `peerASN`; v1beta1 shows the placeholder `0`.
    #[serde(rename = "peerASNUnset", default, skip_serializing_if = "is_false")]
    peer_asn_unset: bool,
    /// v1beta2 had no `peerAddress`; v1beta1 shows the placeholder `""`.
    #[serde(default, skip_serializing_if = "is_false")]
    peer_address_unset: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// Why a conversion failed: only a malformed annotation can make it fail.
#[derive(Debug, thiserror::Error)]
#[error("BGPPeer/{name}: metadata.annotations[{V1BETA2_FIELDS_ANNOTATION}]: {source}")]
pub struct ConversionError {
    /// The peer's name.
    pub name: String,
    /// What was wrong with the annotation's JSON.
    #[source]
    pub source: serde_json::Error,
}

/// v1beta1 → v1beta2, restoring what [`to_v1beta1`] kept in the annotation.
pub fn to_v1beta2(old: v1beta1::BGPPeer) -> Result<v1beta2::BGPPeer, ConversionError> {
    let mut metadata = old.metadata;
    let kept = take_annotation(&mut metadata.annotations)
        .map(|text| serde_json::from_str::<V1beta2Only>(&text))
        .transpose()
        .map_err(|source| ConversionError {
            name: metadata.name.clone().unwrap_or_default(),
            source,
        })?
        .unwrap_or_default();
    let s = old.spec;
    // A placeholder stands for "unset" only if it is still the placeholder: a v1beta1 client
    // that wrote a real value meant it, and the alternative it replaces is dropped.
    let peer_asn_unset = kept.peer_asn_unset && s.peer_asn == 0;
    let peer_address_unset = kept.peer_address_unset && s.peer_address.is_empty();
    let spec = v1beta2::BGPPeerSpec {
        my_asn: s.my_asn,
        peer_asn: (!peer_asn_unset).then_some(s.peer_asn),
        dynamic_asn: kept.dynamic_asn.filter(|_| peer_asn_unset),
        local_asn: kept.local_asn,
        peer_address: (!peer_address_unset).then_some(s.peer_address),
        interface: kept.interface.filter(|_| peer_address_unset),
        source_address: s.source_address,
        peer_port: s.peer_port,
        hold_time: s.hold_time,
        keepalive_time: s.keepalive_time,
        connect_time: kept.connect_time,
        router_id: s.router_id,
        password: s.password,
        password_secret: kept.password_secret,
        bfd_profile: s.bfd_profile,
        enable_graceful_restart: kept.enable_graceful_restart,
        node_selectors: s.node_selectors,
        ebgp_multi_hop: s.ebgp_multi_hop,
        vrf: kept.vrf,
        disable_mp: kept.disable_mp,
        dual_stack_address_family: kept.dual_stack_address_family,
    };
    Ok(v1beta2::BGPPeer { metadata, spec })
}

/// v1beta2 → v1beta1, keeping what v1beta1 cannot hold in the annotation.
pub fn to_v1beta1(new: v1beta2::BGPPeer) -> v1beta1::BGPPeer {
    let mut metadata = new.metadata;
    let s = new.spec;
    let kept = V1beta2Only {
        dynamic_asn: s.dynamic_asn,
        local_asn: s.local_asn,
        interface: s.interface,
        connect_time: s.connect_time,
        password_secret: s.password_secret,
        enable_graceful_restart: s.enable_graceful_restart,
        vrf: s.vrf,
        disable_mp: s.disable_mp,
        dual_stack_address_family: s.dual_stack_address_family,
        peer_asn_unset: s.peer_asn.is_none(),
        peer_address_unset: s.peer_address.is_none(),
    };
    // A stale copy from an earlier round trip never survives: the spec is the truth.
    take_annotation(&mut metadata.annotations);
    if kept != V1beta2Only::default() {
        let text = serde_json::to_string(&kept)
            .expect("invariant: a struct of strings, numbers and booleans serializes");
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(V1BETA2_FIELDS_ANNOTATION.to_string(), text);
    }
    let spec = v1beta1::BGPPeerSpec {
        my_asn: s.my_asn,
        peer_asn: s.peer_asn.unwrap_or(0),
        peer_address: s.peer_address.unwrap_or_default(),
        source_address: s.source_address,
        peer_port: s.peer_port,
        hold_time: s.hold_time,
        keepalive_time: s.keepalive_time,
        router_id: s.router_id,
        password: s.password,
        bfd_profile: s.bfd_profile,
        node_selectors: s.node_selectors,
        ebgp_multi_hop: s.ebgp_multi_hop,
    };
    v1beta1::BGPPeer { metadata, spec }
}

/// Removes the annotation, dropping the map when it was the only entry (so an object that had
/// no annotations has none again).
fn take_annotation(annotations: &mut Option<BTreeMap<String, String>>) -> Option<String> {
    let map = annotations.as_mut()?;
    let text = map.remove(V1BETA2_FIELDS_ANNOTATION);
    if text.is_some() && map.is_empty() {
        *annotations = None;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1beta2_peer(spec: v1beta2::BGPPeerSpec) -> v1beta2::BGPPeer {
        v1beta2::BGPPeer::new("p", spec)
    }

    #[test]
    fn unnumbered_dynamic_peer_survives_a_v1beta1_round_trip() {
        let peer = v1beta2_peer(v1beta2::BGPPeerSpec {
            my_asn: 64500,
            dynamic_asn: Some(v1beta2::DynamicAsn::External),
            interface: Some("eth1".into()),
            vrf: Some("red".into()),
            ..Default::default()
        });
        let down = to_v1beta1(peer.clone());
        assert_eq!(down.spec.peer_asn, 0);
        assert_eq!(down.spec.peer_address, "");
        let kept = &down.metadata.annotations.as_ref().unwrap()[V1BETA2_FIELDS_ANNOTATION];
        assert!(kept.contains("\"dynamicASN\":\"external\""), "{kept}");
        assert_eq!(to_v1beta2(down).unwrap(), peer);
    }

    #[test]
    fn a_real_v1beta1_value_replaces_the_remembered_alternative() {
        let peer = v1beta2_peer(v1beta2::BGPPeerSpec {
            my_asn: 64500,
            dynamic_asn: Some(v1beta2::DynamicAsn::Internal),
            peer_address: Some("10.0.0.1".into()),
            ..Default::default()
        });
        let mut down = to_v1beta1(peer);
        down.spec.peer_asn = 64501;
        let up = to_v1beta2(down).unwrap();
        assert_eq!(up.spec.peer_asn, Some(64501));
        assert_eq!(up.spec.dynamic_asn, None);
        assert_eq!(up.metadata.annotations, None);
    }

    #[test]
    fn a_malformed_annotation_names_the_peer_and_field() {
        let mut old = v1beta1::BGPPeer::new("p", v1beta1::BGPPeerSpec::default());
        old.metadata.annotations = Some(BTreeMap::from([(
            V1BETA2_FIELDS_ANNOTATION.to_string(),
            "{not json".to_string(),
        )]));
        let error = to_v1beta2(old).unwrap_err().to_string();
        assert!(
            error.starts_with("BGPPeer/p: metadata.annotations[metallb.io/v1beta2-fields]: "),
            "{error}"
        );
    }
}
