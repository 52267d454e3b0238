//! Publishing a component's `ConfigurationState` (`controller`, `speaker-<node>`): whether the
//! configuration it last read is valid, as the object's status, with server-side apply.
//!
//! The reconciler sets the latest state on a `watch` channel; this task writes it when it
//! changes (a burst of changes collapses into the last one) and retries failures every second.

use std::time::Duration;

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio::sync::watch;

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

/// Writes `rx`'s state to ConfigurationState `namespace/name` whenever it changes.
pub async fn publish(
    client: Client,
    namespace: String,
    name: String,
    component: &'static str,
    field_manager: String,
    mut rx: watch::Receiver<Option<State>>,
) {
    let api: Api<ConfigurationState> = Api::namespaced(client, &namespace);
    let params = PatchParams::apply(&field_manager).force();
    let mut written: Option<State> = None;
    loop {
        let state = rx.borrow_and_update().clone();
        if let Some(state) = state
            && written.as_ref() != Some(&state)
        {
            match write(&api, &params, &name, component, &state).await {
                Ok(()) => written = Some(state),
                Err(error) => {
                    tracing::warn!(%error, "ConfigurationState not written, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn write(
    api: &Api<ConfigurationState>,
    params: &PatchParams,
    name: &str,
    component: &str,
    state: &State,
) -> Result<(), kube::Error> {
    let object = json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "ConfigurationState",
        "metadata": {"name": name, "labels": {"metallb.io/component-type": component}},
        "spec": {},
    });
    api.patch(name, params, &Patch::Apply(object)).await?;
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
    let body = json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "ConfigurationState",
        "metadata": {"name": name},
        "status": status,
    });
    api.patch_status(name, params, &Patch::Apply(body)).await?;
    Ok(())
}
