//! Validate + build: the metallb.io objects from the stores → one core [`Config`], with the same
//! rules as `metallb validate` and the webhooks ([`crate::config::build`]); problems become log
//! lines and Warning events on the objects at fault, and the last good config stays in force.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use crate::{
    api::GROUP,
    config::{BuildOptions, ConfigError, Resources, build as build_config},
    core::config::Config,
};

/// Event reason for an invalid configuration.
pub(crate) const REASON_INVALID: &str = "InvalidConfig";

/// Validates and builds the config of MetalLB's `namespace`.
pub(crate) fn build(resources: &Resources, namespace: &str) -> Result<Config, Vec<ConfigError>> {
    build_config(
        resources,
        &BuildOptions {
            namespace: Some(namespace.to_string()),
        },
    )
}

/// Logs every problem and returns one Warning event per problem, on the object at fault.
pub(crate) fn report(
    errors: &[ConfigError],
    namespace: &str,
    have_last_good: bool,
) -> Vec<(ObjectReference, Event)> {
    let kept = if have_last_good {
        "keeping the last valid configuration"
    } else {
        "no valid configuration yet: nothing is allocated"
    };
    tracing::error!(
        event = "configInvalid",
        problems = errors.len(),
        error = %errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        "failed to parse the configuration, {kept}"
    );
    errors
        .iter()
        .filter_map(|e| {
            let version = match e.kind.as_str() {
                "BGPPeer" => "v1beta2",
                "IPAddressPool" | "AddressPool" | "L2Advertisement" | "BGPAdvertisement"
                | "BFDProfile" | "Community" => "v1beta1",
                _ => return None,
            };
            let reference = ObjectReference {
                api_version: Some(format!("{GROUP}/{version}")),
                kind: Some(e.kind.clone()),
                name: Some(e.name.clone()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            };
            let event = Event {
                type_: EventType::Warning,
                reason: REASON_INVALID.into(),
                note: Some(format!("{e} ({kept})")),
                action: "Validate".into(),
                secondary: None,
            };
            Some((reference, event))
        })
        .collect()
}
