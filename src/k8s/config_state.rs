//! Publishing a component's `ConfigurationState` (`controller`, `speaker-<node>`): whether the
//! configuration it last read is valid, as the object's status, with server-side apply.
//!
//! The reconciler sets the latest state on a `watch` channel; this task hands it to the one
//! status publisher when it changes (a burst of changes collapses into the last one), which
//! applies the object and its status and retries failures every second.

use std::collections::BTreeMap;

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::watch;

use super::publish::{self, Desired, Ownership};
use crate::api::configuration_state::{ConfigurationState, ConfigurationStateStatus};

/// Condition type the component sets.
pub const CONDITION: &str = "configReconcilerValid";

/// What to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// The configuration is valid and in use.
    Valid,
    /// Invalid: the problems, one per line. The last valid configuration stays in use.
    Invalid(String),
}

/// Writes `rx`'s state to ConfigurationState `namespace/name` whenever it changes, through the
/// one status publisher ([`publish::publish`]).
pub async fn publish(
    client: Client,
    namespace: String,
    name: String,
    component: &'static str,
    field_manager: String,
    mut rx: watch::Receiver<Option<State>>,
) {
    let api: Api<ConfigurationState> = Api::namespaced(client, &namespace);
    let (desired_tx, desired_rx) = watch::channel(BTreeMap::new());
    let follow_state = async {
        let mut last: Option<State> = None;
        loop {
            let state = rx.borrow_and_update().clone();
            if let Some(state) = state
                && last.as_ref() != Some(&state)
            {
                desired_tx
                    .send_replace(BTreeMap::from([(name.clone(), desired(component, &state))]));
                last = Some(state);
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let write = publish::publish(api, &field_manager, Ownership::StatusOnly, desired_rx);
    tokio::join!(follow_state, write);
}

/// The object (labelled with its component) and the status that say `state`.
fn desired(component: &str, state: &State) -> Desired {
    let (result, summary, status, reason) = match state {
        State::Valid => ("Valid", None, "True", "Reconciled"),
        State::Invalid(summary) => (
            "Invalid",
            Some(summary.clone()),
            "False",
            "ConfigurationError",
        ),
    };
    let status = ConfigurationStateStatus {
        result: Some(result.into()),
        error_summary: summary.clone(),
        conditions: vec![Condition {
            type_: CONDITION.into(),
            status: status.into(),
            reason: reason.into(),
            message: summary.unwrap_or_default(),
            last_transition_time: Time(Timestamp::now()),
            observed_generation: None,
        }],
    };
    Desired {
        metadata: Some(json!({"labels": {"metallb.io/component-type": component}})),
        status: serde_json::to_value(status).unwrap_or_default(),
    }
}
