//! `Community` (v1beta1): named aliases for BGP community values.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// Aliases for BGP communities that BGPAdvertisements can use by name.
#[derive(
    CustomResource, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
)]
#[kube(
    group = "metallb.io",
    derive = "PartialEq",
    version = "v1beta1",
    kind = "Community",
    plural = "communities",
    namespaced,
    category = "metallb-all"
)]
#[serde(rename_all = "camelCase")]
pub struct CommunitySpec {
    /// The aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<CommunityAlias>,
}

/// One community alias.
#[derive(schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunityAlias {
    /// The alias used in BGPAdvertisement `communities`.
    pub name: String,
    /// The community: `a:b` with 16-bit halves, or `large:a:b:c` with 32-bit parts.
    #[schemars(regex(pattern = r"^([0-9]+:[0-9]+|large:[0-9]+:[0-9]+:[0-9]+)$"))]
    pub value: String,
}
