//! The operator loop: one kube-runtime `Controller` over the MetalLBs of the operator's
//! namespace, re-run when a workload it owns changes (so the status follows the rollout and a
//! hand-edited workload is put back).
//!
//! Per MetalLB: dereference (the object) → validate (name, spec) → build (pure, [`build`]) →
//! apply (server-side, field manager `metallb-operator`, forced) → status (from the applied
//! objects' own status, written only when it changed).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::Service,
    },
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{Controller, controller::Action, watcher::Config as WatcherConfig},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use super::{
    FIELD_MANAGER, OperatorError,
    build::{BuildOptions, Object, build},
    status::{self, Outcome},
    validate::spec_problems,
};
use crate::{
    api::{labels::METALLB_V1BETA1, metallb::MetalLB},
    config::METALLB_RESOURCE_NAME,
};

/// Everything a reconcile needs.
struct Context {
    client: Client,
    namespace: String,
    options: BuildOptions,
}

/// How often an Available MetalLB is looked at again without any event.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a rolling MetalLB is looked at again (owned workloads' events usually come first).
const ROLLING: Duration = Duration::from_secs(5);
/// Retry after a failed apply or status write.
const RETRY: Duration = Duration::from_secs(10);

/// Runs the operator for the MetalLBs of `namespace` until the process is stopped.
pub async fn run(client: Client, namespace: String, options: BuildOptions) {
    let metallbs: Api<MetalLB> = Api::namespaced(client.clone(), &namespace);
    // Only the workloads this operator labels (deploy/*.yaml's app=metallb).
    let owned = WatcherConfig::default().labels("app=metallb");
    let context = Arc::new(Context {
        client: client.clone(),
        namespace: namespace.clone(),
        options,
    });
    tracing::info!(namespace, "operator started");
    Controller::new(metallbs, WatcherConfig::default())
        .owns(
            Api::<Deployment>::namespaced(client.clone(), &namespace),
            owned.clone(),
        )
        .owns(
            Api::<DaemonSet>::namespaced(client.clone(), &namespace),
            owned.clone(),
        )
        .owns(Api::<Service>::namespaced(client, &namespace), owned)
        .shutdown_on_signal()
        .run(reconcile, on_error, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile not run");
            }
        })
        .await;
}

fn on_error(_metallb: Arc<MetalLB>, error: &OperatorError, _context: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed, retrying");
    Action::requeue(RETRY)
}

#[tracing::instrument(skip_all, fields(metallb = %metallb.name_any()))]
async fn reconcile(metallb: Arc<MetalLB>, context: Arc<Context>) -> Result<Action, OperatorError> {
    let name = metallb.name_any();
    if metallb.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes the workloads (owner references).
        return Ok(Action::await_change());
    }
    if name != METALLB_RESOURCE_NAME {
        let outcome = Outcome::Degraded {
            reason: status::REASON_INCORRECT_NAME,
            message: format!(
                "Incorrect MetalLB resource name: {name}: only the MetalLB named \
                 {METALLB_RESOURCE_NAME:?} is deployed; this one changes nothing"
            ),
        };
        write_status(&context, &metallb, &outcome).await?;
        return Ok(Action::await_change());
    }
    let problems = spec_problems(&metallb.spec);
    if !problems.is_empty() {
        let message = problems
            .iter()
            .map(|p| format!("MetalLB/{name}: {}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ");
        tracing::warn!(%message, "invalid spec, workloads left as they are");
        let outcome = Outcome::Degraded {
            reason: status::REASON_INVALID_SPEC,
            message,
        };
        write_status(&context, &metallb, &outcome).await?;
        return Ok(Action::await_change());
    }
    let objects = build(&metallb, &context.options)?;
    let outcome = match apply_all(&context, &objects).await {
        Ok((controller, speaker)) => status::readiness(&controller, &speaker),
        Err(error) => {
            tracing::warn!(%error, "apply failed");
            Outcome::Degraded {
                reason: status::REASON_SYNC_FAILED,
                message: error.to_string(),
            }
        }
    };
    write_status(&context, &metallb, &outcome).await?;
    Ok(match outcome {
        Outcome::Available { .. } => Action::requeue(RESYNC),
        Outcome::Progressing { .. } => Action::requeue(ROLLING),
        Outcome::Degraded { .. } => Action::requeue(RETRY),
    })
}

/// Applies every object; returns the controller Deployment and the speaker DaemonSet as the
/// apiserver answered (with their current status).
async fn apply_all(
    context: &Context,
    objects: &[Object],
) -> Result<(Deployment, DaemonSet), OperatorError> {
    let mut controller = None;
    let mut speaker = None;
    for object in objects {
        match object {
            Object::Deployment(d) => {
                let applied = apply(context, d.as_ref()).await?;
                if applied.name_any() == "controller" {
                    controller = Some(applied);
                }
            }
            Object::DaemonSet(d) => speaker = Some(apply(context, d.as_ref()).await?),
            Object::Service(s) => {
                apply(context, s.as_ref()).await?;
            }
        }
        tracing::debug!(object = %object.describe(), "applied");
    }
    match (controller, speaker) {
        (Some(controller), Some(speaker)) => Ok((controller, speaker)),
        _ => Err(OperatorError::MissingWorkload),
    }
}

async fn apply<K>(context: &Context, object: &K) -> Result<K, OperatorError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(context.client.clone(), &context.namespace);
    let name = object.name_any();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|source| OperatorError::Apply {
        object: format!("{}/{name}", K::kind(&())),
        source,
    })
}

/// Writes the conditions for `outcome` unless the MetalLB already carries them.
async fn write_status(
    context: &Context,
    metallb: &MetalLB,
    outcome: &Outcome,
) -> Result<(), OperatorError> {
    let previous: &[Condition] = metallb
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = metallb.metadata.generation;
    let conditions = status::conditions(outcome, generation, previous, &Time(Timestamp::now()));
    let observed = metallb.status.as_ref().and_then(|s| s.observed_generation);
    if conditions == previous && observed == generation {
        return Ok(());
    }
    tracing::info!(?outcome, "status");
    let name = metallb.name_any();
    let patch = json!({
        "apiVersion": METALLB_V1BETA1,
        "kind": "MetalLB",
        "metadata": {"name": name},
        "status": {"conditions": conditions, "observedGeneration": generation},
    });
    let api: Api<MetalLB> = Api::namespaced(context.client.clone(), &context.namespace);
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map_err(|source| OperatorError::Status { name, source })?;
    Ok(())
}
