//! Decoding manifest documents into typed objects, grouped by kind.
//!
//! Decoding is where wrong types and misspelt fields are caught: errors carry the JSON path of the
//! field, and for `metallb.io` kinds unknown fields are errors too (a typo such as `autoAsign`
//! would otherwise silently keep the default).

use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace, Node, Secret, Service},
    discovery::v1::EndpointSlice,
};
use serde::de::DeserializeOwned;

use super::ConfigError;
use crate::{
    api::{
        address_pool, bfd_profile::BFDProfile, bgp_advertisement::BGPAdvertisement, bgp_peer,
        community::Community, conversion, ip_address_pool::IPAddressPool,
        l2_advertisement::L2Advertisement, metallb::MetalLB,
    },
    manifest::Document,
};

/// A BGPPeer with the API version it was written in: v1beta1 objects are converted to the
/// stored v1beta2 shape, but some rules (keepaliveTime needs holdTime) depend on the version.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerObject {
    /// `v1beta1` or `v1beta2`.
    pub version: &'static str,
    /// The peer in v1beta2 form.
    pub peer: bgp_peer::v1beta2::BGPPeer,
}

/// Every object of interest, by kind, in the order read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    /// Legacy AddressPools (v1alpha1 converted to v1beta1; the shapes are equal).
    pub address_pools: Vec<address_pool::v1beta1::AddressPool>,
    /// IPAddressPools.
    pub ip_address_pools: Vec<IPAddressPool>,
    /// L2Advertisements.
    pub l2_advertisements: Vec<L2Advertisement>,
    /// BGPAdvertisements.
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    /// BGPPeers of either version.
    pub bgp_peers: Vec<PeerObject>,
    /// BFDProfiles.
    pub bfd_profiles: Vec<BFDProfile>,
    /// Community alias sets.
    pub communities: Vec<Community>,
    /// MetalLB operator resources.
    pub metallbs: Vec<MetalLB>,
    /// Services (any type; only LoadBalancer ones matter).
    pub services: Vec<Service>,
    /// Namespaces (for namespace selectors).
    pub namespaces: Vec<Namespace>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Secrets (BGP passwords, `BGPPeer.spec.passwordSecret`).
    pub secrets: Vec<Secret>,
    /// ConfigMaps (the speaker's raw FRR extras, `bgpextras`).
    pub config_maps: Vec<ConfigMap>,
}

impl Resources {
    /// Decodes one document and files it under its kind. Documents of other kinds are ignored
    /// (they may be Deployments or anything else in the same manifest). Returns every problem
    /// found in the document.
    pub fn add(&mut self, doc: &Document) -> Result<(), Vec<ConfigError>> {
        let api_version = doc
            .value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let kind = doc.value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
        match (api_version, kind) {
            ("metallb.io/v1alpha1", "AddressPool") => {
                let pool: address_pool::v1alpha1::AddressPool = decode(doc, kind, true)?;
                let converted = serde_json::to_value(&pool)
                    .and_then(|mut v| {
                        v["apiVersion"] = "metallb.io/v1beta1".into();
                        serde_json::from_value(v)
                    })
                    .expect("invariant: AddressPool v1alpha1 and v1beta1 have one shape");
                self.address_pools.push(converted);
            }
            ("metallb.io/v1beta1", "AddressPool") => {
                self.address_pools.push(decode(doc, kind, true)?)
            }
            ("metallb.io/v1beta1", "IPAddressPool") => {
                self.ip_address_pools.push(decode(doc, kind, true)?)
            }
            ("metallb.io/v1beta1", "L2Advertisement") => {
                self.l2_advertisements.push(decode(doc, kind, true)?)
            }
            ("metallb.io/v1beta1", "BGPAdvertisement") => {
                self.bgp_advertisements.push(decode(doc, kind, true)?)
            }
            ("metallb.io/v1beta1", "BGPPeer") => {
                let old: bgp_peer::v1beta1::BGPPeer = decode(doc, kind, true)?;
                let peer = conversion::to_v1beta2(old).map_err(|e| {
                    vec![ConfigError::new(
                        kind,
                        e.name,
                        format!(
                            "metadata.annotations[{}]",
                            conversion::V1BETA2_FIELDS_ANNOTATION
                        ),
                        e.source.to_string(),
                    )]
                })?;
                self.bgp_peers.push(PeerObject {
                    version: "v1beta1",
                    peer,
                });
            }
            ("metallb.io/v1beta2", "BGPPeer") => self.bgp_peers.push(PeerObject {
                version: "v1beta2",
                peer: decode(doc, kind, true)?,
            }),
            ("metallb.io/v1beta1", "BFDProfile") => {
                self.bfd_profiles.push(decode(doc, kind, true)?)
            }
            ("metallb.io/v1beta1", "Community") => self.communities.push(decode(doc, kind, true)?),
            ("metallb.io/v1beta1", "MetalLB") => self.metallbs.push(decode(doc, kind, true)?),
            ("v1", "Service") => self.services.push(decode(doc, kind, false)?),
            ("v1", "Namespace") => self.namespaces.push(decode(doc, kind, false)?),
            ("v1", "Node") => self.nodes.push(decode(doc, kind, false)?),
            ("v1", "Secret") => self.secrets.push(decode(doc, kind, false)?),
            ("v1", "ConfigMap") => self.config_maps.push(decode(doc, kind, false)?),
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                self.endpoint_slices.push(decode(doc, kind, false)?)
            }
            (group_version, _) if group_version.starts_with("metallb.io/") => {
                return Err(vec![ConfigError::new(
                    if kind.is_empty() { "<no kind>" } else { kind },
                    object_name(doc),
                    "apiVersion",
                    format!("{group_version} {kind} is not a metallb.io kind this version serves"),
                )]);
            }
            _ => {}
        }
        Ok(())
    }

    /// Decodes every document, collecting every problem.
    pub fn from_documents<'a>(
        docs: impl IntoIterator<Item = &'a Document>,
    ) -> (Resources, Vec<ConfigError>) {
        let mut resources = Resources::default();
        let mut errors = Vec::new();
        for doc in docs {
            if let Err(mut e) = resources.add(doc) {
                errors.append(&mut e);
            }
        }
        (resources, errors)
    }
}

fn object_name(doc: &Document) -> String {
    doc.value
        .pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("<unnamed at {}:{}>", doc.file, doc.line))
}

/// Decodes with field paths; with `strict`, fields the type does not know are errors.
fn decode<T: DeserializeOwned>(
    doc: &Document,
    kind: &str,
    strict: bool,
) -> Result<T, Vec<ConfigError>> {
    let name = object_name(doc);
    let mut value = doc.value.clone();
    // A custom resource may omit an all-optional spec, as the seed's first MetalLB does.
    if strict && let Some(map) = value.as_object_mut() {
        map.entry("spec").or_insert_with(|| serde_json::json!({}));
    }
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(field_path(&path));
    let deserializer = serde_ignored::Deserializer::new(&value, &mut record);
    let decoded: Result<T, _> = serde_path_to_error::deserialize(deserializer);
    match decoded {
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            Err(vec![ConfigError::new(
                kind,
                name,
                field,
                e.into_inner().to_string(),
            )])
        }
        Ok(_) if strict && unknown.iter().any(|p| !is_envelope(p)) => Err(unknown
            .into_iter()
            .filter(|p| !is_envelope(p))
            .map(|p| ConfigError::new(kind, &name, p, "unknown field"))
            .collect()),
        Ok(v) => Ok(v),
    }
}

/// An ignored field's path in the same form as every other field path (`spec.list[0].key`):
/// serde_ignored's own Display writes `spec.list.0.key` and a `?` for each `Option`.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            prefix if prefix.is_empty() => key.clone(),
            prefix => format!("{prefix}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Top-level keys the generated root types read through their own envelope handling, or that a
/// `kubectl get -o yaml` dump carries for kinds without status.
fn is_envelope(path: &str) -> bool {
    matches!(path, "apiVersion" | "kind" | "status")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    fn load(text: &str) -> (Resources, Vec<ConfigError>) {
        let docs = manifest::parse("t.yaml", text).unwrap();
        Resources::from_documents(&docs)
    }

    #[test]
    fn wrong_type_names_the_field() {
        let (_, errors) = load(
            "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, peerPort: abc}\n",
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "spec.peerPort");
        assert_eq!(errors[0].kind, "BGPPeer");
    }

    #[test]
    fn unknown_field_is_an_error_for_metallb_kinds_only() {
        let (_, errors) = load(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/24], autoAsign: false}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {bogus: 1}\n",
        );
        assert_eq!(
            errors,
            vec![ConfigError::new(
                "IPAddressPool",
                "p",
                "spec.autoAsign",
                "unknown field"
            )]
        );
    }

    #[test]
    fn nested_unknown_field_paths_use_brackets() {
        let (_, errors) = load(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/24], serviceAllocation: {serviceSelectors: [{matchExpressions: [{key: a, operator: In, valuez: [b]}]}]}}\n",
        );
        assert_eq!(
            errors[0].field,
            "spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].valuez"
        );
    }

    #[test]
    fn v1alpha1_pools_and_v1beta1_peers_are_converted() {
        let (r, errors) = load(
            "apiVersion: metallb.io/v1alpha1\nkind: AddressPool\nmetadata: {name: a}\nspec: {protocol: layer2, addresses: [10.0.0.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}\n---\napiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb}\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(r.address_pools[0].spec.auto_assign);
        assert_eq!(r.bgp_peers[0].version, "v1beta1");
        assert_eq!(r.bgp_peers[0].peer.spec.peer_asn, Some(64501));
        assert_eq!(r.metallbs.len(), 1);
    }
}
