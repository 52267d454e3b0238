//! `ServiceBGPStatus` (v1beta1): status only. One object per Service and announcing node,
//! written by that node's speaker: the BGP peers the node is configured to advertise the
//! Service to (not session state), as upstream MetalLB 0.15 does.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// Which peers one node advertises one Service to. Written by MetalLB, not by users.
#[derive(
    CustomResource, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
)]
#[kube(
    group = "metallb.io",
    derive = "PartialEq",
    version = "v1beta1",
    kind = "ServiceBGPStatus",
    plural = "servicebgpstatuses",
    namespaced,
    status = "MetalLBServiceBGPStatus",
    category = "metallb-all",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Service Name",
        type_ = "string",
        json_path = ".status.serviceName"
    ),
    printcolumn(
        name = "Service Namespace",
        type_ = "string",
        json_path = ".status.serviceNamespace"
    ),
    printcolumn(name = "Peers", type_ = "string", json_path = ".status.peers")
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBGPStatusSpec {}

/// The announcing node, the Service and its peers.
#[derive(schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBServiceBGPStatus {
    /// The node announcing the Service.
    #[serde(default)]
    pub node: String,
    /// The Service's name.
    #[serde(default)]
    pub service_name: String,
    /// The Service's namespace.
    #[serde(default)]
    pub service_namespace: String,
    /// BGPPeer names the node advertises the Service's addresses to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}
