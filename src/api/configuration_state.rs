//! `ConfigurationState` (v1beta1): status only. Each component reports whether the
//! configuration it last read is valid: one object named `controller`, one `speaker-<node>` per
//! speaker, as upstream MetalLB 0.15.3 does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// How a component sees the configuration. Written by MetalLB, not by users.
#[derive(
    CustomResource, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
)]
#[kube(
    group = "metallb.io",
    derive = "PartialEq",
    version = "v1beta1",
    kind = "ConfigurationState",
    plural = "configurationstates",
    namespaced,
    status = "ConfigurationStateStatus",
    category = "metallb-all",
    printcolumn(name = "Result", type_ = "string", json_path = ".status.result"),
    printcolumn(
        name = "Error Summary",
        type_ = "string",
        json_path = ".status.errorSummary"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateSpec {}

/// The component's view of the configuration.
#[derive(schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateStatus {
    /// `Valid`, `Invalid` or `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The problems of an invalid configuration, one per line (`Kind/name: field: message`).
    /// While it is invalid the component keeps using the last valid configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_summary: Option<String>,
    /// `configReconcilerValid` (reasons `Reconciled`, `ConfigurationError`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
