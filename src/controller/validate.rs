//! Validate + build: the metallb.io objects from the stores → one core [`Config`], with the same
//! rules as `metallb validate` and the webhooks ([`crate::config::build`]); problems become log
//! lines and Warning events on the objects at fault, and the last good config stays in force.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use crate::{
    api::GROUP,
    config::{self, ConfigError, LoadOptions, Loaded, Resources},
};

/// Event reason for an invalid configuration.
pub(crate) const REASON_INVALID: &str = "InvalidConfig";

/// Validates and builds the config of MetalLB's `namespace`.
pub(crate) fn load(resources: &Resources, namespace: &str) -> Loaded {
    config::load(
        resources,
        &LoadOptions {
            namespace: Some(namespace.to_string()),
        },
    )
}

/// What the controller does with a configuration that has problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every problem awaits an object: the objects at fault are left out, the rest is in use.
    RestRuns,
    /// Refused; the last valid configuration stays in use.
    LastGoodKept,
    /// Refused, and there is no valid configuration yet.
    NothingYet,
}

/// Logs every problem and returns one Warning event per problem, on the object at fault.
pub(crate) fn report(
    errors: &[ConfigError],
    namespace: &str,
    outcome: Outcome,
) -> Vec<(ObjectReference, Event)> {
    let kept = match outcome {
        Outcome::RestRuns => "left out until it is fixed; the rest of the configuration is in use",
        Outcome::LastGoodKept => "keeping the last valid configuration",
        Outcome::NothingYet => "no valid configuration yet: nothing is allocated",
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
