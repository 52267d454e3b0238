//! The one place the speaker says what it announces: `nodeAssigned` when this node starts
//! announcing a Service with a protocol (logged, and a Kubernetes event with `--from-api`),
//! `serviceWithdrawn` when it stops. Only changes count: a Service announced at the last
//! reconcile gets no second event (upstream emits one per reconcile, #3135).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::{info, warn};

use crate::core::service::ServiceKey;

/// Event reason when a node starts announcing a Service.
pub const REASON_NODE_ASSIGNED: &str = "nodeAssigned";

/// How a Service is announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// BGP through FRR.
    Bgp,
    /// ARP/NDP.
    Layer2,
}

impl Protocol {
    /// The name MetalLB's events use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Bgp => "bgp",
            Protocol::Layer2 => "layer2",
        }
    }
}

/// The Services announced per protocol, and where events go.
pub struct Events {
    node: String,
    recorder: Option<Recorder>,
    announced: BTreeMap<Protocol, BTreeSet<ServiceKey>>,
}

impl Events {
    /// Events of `node`; without a recorder they are only logged.
    pub fn new(node: &str, recorder: Option<Recorder>) -> Events {
        Events {
            node: node.to_string(),
            recorder,
            announced: BTreeMap::new(),
        }
    }

    /// Records that `protocol` now announces exactly `now`; logs (and publishes) the changes.
    /// `reference` finds a Service's object for its event.
    pub fn announced(
        &mut self,
        protocol: Protocol,
        now: BTreeSet<ServiceKey>,
        reference: impl Fn(&ServiceKey) -> Option<ObjectReference>,
    ) {
        let before = self.announced.entry(protocol).or_default();
        let (assigned, withdrawn) = changes(before, &now);
        *before = now;
        let node = &self.node;
        let protocol = protocol.as_str();
        for key in withdrawn {
            info!(event = "serviceWithdrawn", service = %key, protocol, "withdrawing service announcement");
        }
        for key in assigned {
            let note = format!("announcing from node \"{node}\" with protocol \"{protocol}\"");
            info!(event = REASON_NODE_ASSIGNED, service = %key, node = %node, protocol, "{note}");
            let (Some(recorder), Some(reference)) = (&self.recorder, reference(&key)) else {
                continue;
            };
            let recorder = recorder.clone();
            // Publishing waits for the API server; the loop does not.
            tokio::spawn(async move {
                let event = Event {
                    type_: EventType::Normal,
                    reason: REASON_NODE_ASSIGNED.into(),
                    note: Some(note),
                    action: "Announce".into(),
                    secondary: None,
                };
                if let Err(error) = recorder.publish(&event, &reference).await {
                    warn!(%error, service = %key, "nodeAssigned event not published");
                }
            });
        }
    }
}

/// (newly announced, no longer announced) from `before` to `now`.
pub fn changes(
    before: &BTreeSet<ServiceKey>,
    now: &BTreeSet<ServiceKey>,
) -> (Vec<ServiceKey>, Vec<ServiceKey>) {
    (
        now.difference(before).cloned().collect(),
        before.difference(now).cloned().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> BTreeSet<ServiceKey> {
        names
            .iter()
            .map(|n| ServiceKey::new("default", *n))
            .collect()
    }

    #[test]
    fn node_assigned_only_for_services_new_to_this_node() {
        let (assigned, withdrawn) = changes(&keys(&[]), &keys(&["web"]));
        assert_eq!(assigned, vec![ServiceKey::new("default", "web")]);
        assert!(withdrawn.is_empty());
        // The same set again: nothing, so no repeated nodeAssigned events.
        assert_eq!(changes(&keys(&["web"]), &keys(&["web"])), (vec![], vec![]));
        let (assigned, withdrawn) = changes(&keys(&["web"]), &keys(&["db"]));
        assert_eq!(assigned, vec![ServiceKey::new("default", "db")]);
        assert_eq!(withdrawn, vec![ServiceKey::new("default", "web")]);
    }
}
