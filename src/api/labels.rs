//! Every label, annotation, field manager and API version string MetalLB writes or reads, in
//! one place.

/// `apiVersion` of the metallb.io kinds written as status objects.
pub const METALLB_V1BETA1: &str = "metallb.io/v1beta1";

/// Label naming the node a status object is about (ServiceBGPStatus, ServiceL2Status).
pub const NODE: &str = "metallb.io/node";
/// Label naming the Service a status object is about.
pub const SERVICE_NAME: &str = "metallb.io/service-name";
/// Label naming the Service's namespace.
pub const SERVICE_NAMESPACE: &str = "metallb.io/service-namespace";
/// Label of a ConfigurationState naming the component.
pub const COMPONENT_TYPE: &str = "metallb.io/component-type";

/// The label EndpointSlices carry to name their Service.
pub const ENDPOINT_SLICE_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Field manager of the speaker's writes.
pub const SPEAKER_FIELD_MANAGER: &str = "metallb-speaker";
/// Field manager of the controller's writes.
pub const CONTROLLER_FIELD_MANAGER: &str = "metallb-controller";
/// Field manager of `metallb apply`.
pub const APPLY_FIELD_MANAGER: &str = "metallb-apply";
/// Field manager of `metallb operator`.
pub const OPERATOR_FIELD_MANAGER: &str = "metallb-operator";
