//! `MetalLB` (v1beta1): the operator's singleton that deploys the controller and the speakers.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Toleration, apimachinery::pkg::apis::meta::v1::Condition};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// Log verbosity of every MetalLB component, FRR included.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including FRR debug logs.
    All,
    /// Diagnostic detail for troubleshooting.
    Debug,
    /// Normal operation (the default).
    #[default]
    Info,
    /// Anything that may lead to inconsistent behaviour.
    Warn,
    /// Errors that need an administrator.
    Error,
    /// No logging.
    None,
}

/// Deploys MetalLB: a controller Deployment and a speaker DaemonSet in this namespace.
/// Only one instance, named `metallb`, is honoured.
#[derive(
    CustomResource, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
)]
#[kube(
    group = "metallb.io",
    derive = "PartialEq",
    version = "v1beta1",
    kind = "MetalLB",
    plural = "metallbs",
    namespaced,
    status = "MetalLBStatus",
    category = "metallb",
    printcolumn(name = "Log Level", type_ = "string", json_path = ".spec.logLevel"),
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBSpec {
    /// Node labels that select the nodes that run a speaker. Replaces the default
    /// `kubernetes.io/os: linux` selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of the speaker pods; they replace the default toleration of control-plane nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_tolerations: Option<Vec<Toleration>>,
    /// Log verbosity of the controller, the speakers and FRR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,
}

/// Observed state of the MetalLB deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBStatus {
    /// Available, Progressing, Degraded and Upgradeable conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
