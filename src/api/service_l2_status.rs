//! `ServiceL2Status` (v1beta1): status only. One object per Service announced with layer 2,
//! written by the speaker of the node that answers for it: the node and the interfaces it
//! answers on, as upstream MetalLB 0.14+ does.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// Which node announces one Service with layer 2. Written by MetalLB, not by users.
#[derive(
    CustomResource, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
)]
#[kube(
    group = "metallb.io",
    derive = "PartialEq",
    version = "v1beta1",
    kind = "ServiceL2Status",
    plural = "servicel2statuses",
    namespaced,
    status = "MetalLBServiceL2Status",
    category = "metallb-all",
    printcolumn(name = "Allocated Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Service Name",
        type_ = "string",
        json_path = ".status.serviceName"
    ),
    printcolumn(
        name = "Service Namespace",
        type_ = "string",
        json_path = ".status.serviceNamespace"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceL2StatusSpec {}

/// The announcing node, the Service and the interfaces it is announced on.
#[derive(schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBServiceL2Status {
    /// The node announcing the Service.
    #[serde(default)]
    pub node: String,
    /// The Service's name.
    #[serde(default)]
    pub service_name: String,
    /// The Service's namespace.
    #[serde(default)]
    pub service_namespace: String,
    /// The interfaces the node answers ARP/NDP on for the Service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceInfo>,
}

/// One interface.
#[derive(schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceInfo {
    /// Its name.
    pub name: String,
}
