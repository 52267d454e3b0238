//! `MetalLB` (v1beta1): the operator's singleton that deploys the controller and the speakers.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Affinity, ResourceRequirements, Toleration},
    apimachinery::pkg::apis::meta::v1::Condition,
};
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

/// The same six levels as the components' `--log-level` takes them.
impl From<LogLevel> for crate::core::frr::LogLevel {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::All => Self::All,
            LogLevel::Debug => Self::Debug,
            LogLevel::Info => Self::Info,
            LogLevel::Warn => Self::Warn,
            LogLevel::Error => Self::Error,
            LogLevel::None => Self::None,
        }
    }
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
    category = "metallb-all",
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status"
    ),
    printcolumn(
        name = "Progressing",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Progressing\")].status"
    ),
    printcolumn(
        name = "Degraded",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Degraded\")].status"
    ),
    printcolumn(name = "Log Level", type_ = "string", json_path = ".spec.logLevel"),
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
    /// Node labels that select the nodes the controller may run on. Replaces the default
    /// `kubernetes.io/os: linux` selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of the controller pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_tolerations: Option<Vec<Toleration>>,
    /// Scheduling and resources of the speaker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_config: Option<ComponentConfig>,
    /// Scheduling and resources of the controller pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_config: Option<ComponentConfig>,
    /// Only Services with this `spec.loadBalancerClass` are handled (none: Services without a
    /// class). A label-style name, e.g. `metallb.io/metallb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
}

/// Pod settings of one component (`speakerConfig`, `controllerConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentConfig {
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// RuntimeClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    /// Affinity of the pods; replaces the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Annotations added to the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Resources of the component's main container (`controller` or `speaker`); replaces the
    /// default requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Observed state of the MetalLB deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetalLBStatus {
    /// Available, Progressing, Degraded and Upgradeable conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` these conditions were computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The MetalLB CRD with an optional `spec` that defaults to `{}`: the seed creates the
/// resource with metadata only (26.2.3), and the default means every MetalLB read back has a
/// spec.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON;
    use kube::CustomResourceExt;
    let mut crd = MetalLB::crd();
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        if let Some(required) = &mut schema.required {
            required.retain(|field| field != "spec");
            if required.is_empty() {
                schema.required = None;
            }
        }
        if let Some(spec) = schema.properties.as_mut().and_then(|p| p.get_mut("spec")) {
            spec.default = Some(JSON(serde_json::json!({})));
        }
    }
    crd
}
