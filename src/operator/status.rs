//! The `MetalLB` status from what the cluster reports: the controller Deployment's and the
//! speaker DaemonSet's own status decide Available / Progressing; a problem of the resource
//! itself (wrong name, invalid spec, failed apply) makes it Degraded.
//!
//! All four conditions are written every time, in a fixed order (Available, Upgradeable,
//! Progressing, Degraded), as upstream's operator does, but with CamelCase reasons that pass
//! the API's pattern and with `lastTransitionTime` kept while a condition's status stays.

use k8s_openapi::{
    api::apps::v1::{DaemonSet, Deployment},
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};

/// What the operator concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every workload is rolled out and ready.
    Available {
        /// Readiness figures.
        message: String,
    },
    /// Workloads are being created or rolled.
    Progressing {
        /// CamelCase reason.
        reason: &'static str,
        /// What is not ready yet.
        message: String,
    },
    /// The operator cannot (or will not) deploy this resource.
    Degraded {
        /// CamelCase reason.
        reason: &'static str,
        /// Why.
        message: String,
    },
}

/// Reason of a MetalLB not named `metallb` (upstream's).
pub const REASON_INCORRECT_NAME: &str = "IncorrectMetalLBResourceName";
/// Reason of a spec the operator refuses.
pub const REASON_INVALID_SPEC: &str = "InvalidMetalLBSpec";
/// Reason of a failed apply.
pub const REASON_SYNC_FAILED: &str = "FailedToSyncMetalLBResources";
/// Reason while the controller Deployment is not rolled out.
pub const REASON_CONTROLLER_NOT_READY: &str = "ControllerNotReady";
/// Reason while the speaker DaemonSet is not rolled out.
pub const REASON_SPEAKER_NOT_READY: &str = "SpeakerNotReady";

/// Available when the Deployment and the DaemonSet have seen their latest spec and every
/// replica / scheduled pod is updated and ready.
pub fn readiness(controller: &Deployment, speaker: &DaemonSet) -> Outcome {
    let generation = |g: Option<i64>| g.unwrap_or(0);
    let (want, ready, updated, seen) = {
        let status = controller.status.clone().unwrap_or_default();
        let want = controller
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        (
            want,
            status.ready_replicas.unwrap_or(0),
            status.updated_replicas.unwrap_or(0),
            generation(status.observed_generation) >= generation(controller.metadata.generation),
        )
    };
    // A rolling Deployment briefly has more pods than wanted: ready counts all of them.
    let total = controller
        .status
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(0);
    let controller_text = format!("controller {ready}/{want} ready");
    if !seen || updated != want || ready != want || total != want {
        return Outcome::Progressing {
            reason: REASON_CONTROLLER_NOT_READY,
            message: format!("{controller_text}, {updated} updated"),
        };
    }
    let status = speaker.status.clone().unwrap_or_default();
    let desired = status.desired_number_scheduled;
    let speaker_text = format!("speaker {}/{desired} ready", status.number_ready);
    let seen = generation(status.observed_generation) >= generation(speaker.metadata.generation);
    if !seen
        || status.current_number_scheduled != desired
        || status.number_ready != desired
        || status.updated_number_scheduled.unwrap_or(0) != desired
    {
        return Outcome::Progressing {
            reason: REASON_SPEAKER_NOT_READY,
            message: format!(
                "{speaker_text}, {} updated",
                status.updated_number_scheduled.unwrap_or(0)
            ),
        };
    }
    Outcome::Available {
        message: format!("{controller_text}, {speaker_text}"),
    }
}

/// The four conditions for `outcome`, keeping each previous `lastTransitionTime` whose status
/// did not change.
pub fn conditions(
    outcome: &Outcome,
    generation: Option<i64>,
    previous: &[Condition],
    now: &Time,
) -> Vec<Condition> {
    let (available, progressing, degraded) = match outcome {
        Outcome::Available { .. } => (true, false, false),
        Outcome::Progressing { .. } => (false, true, false),
        Outcome::Degraded { .. } => (false, false, true),
    };
    let (reason, message) = match outcome {
        Outcome::Available { message } => ("AllComponentsReady", message.as_str()),
        Outcome::Progressing { reason, message } | Outcome::Degraded { reason, message } => {
            (*reason, message.as_str())
        }
    };
    let condition = |kind: &str, status: bool| {
        let status = if status { "True" } else { "False" };
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time,
        }
    };
    vec![
        condition("Available", available),
        condition("Upgradeable", available),
        condition("Progressing", progressing),
        condition("Degraded", degraded),
    ]
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::apps::v1::{DaemonSetStatus, DeploymentSpec, DeploymentStatus},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
        jiff::Timestamp,
    };

    use super::*;

    fn deployment(ready: i32, updated: i32, generation: i64, observed: i64) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                replicas: Some(1),
                ready_replicas: Some(ready),
                updated_replicas: Some(updated),
                observed_generation: Some(observed),
                ..Default::default()
            }),
        }
    }

    fn daemonset(desired: i32, ready: i32, updated: i32) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                generation: Some(2),
                ..Default::default()
            },
            status: Some(DaemonSetStatus {
                desired_number_scheduled: desired,
                current_number_scheduled: desired,
                number_ready: ready,
                updated_number_scheduled: Some(updated),
                observed_generation: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn available_only_when_both_are_rolled_out() {
        let ok = readiness(&deployment(1, 1, 3, 3), &daemonset(2, 2, 2));
        assert_eq!(
            ok,
            Outcome::Available {
                message: "controller 1/1 ready, speaker 2/2 ready".into()
            }
        );
        for (controller, speaker, reason) in [
            (
                deployment(0, 1, 3, 3),
                daemonset(2, 2, 2),
                REASON_CONTROLLER_NOT_READY,
            ),
            (
                deployment(1, 1, 4, 3),
                daemonset(2, 2, 2),
                REASON_CONTROLLER_NOT_READY,
            ),
            (
                deployment(1, 0, 3, 3),
                daemonset(2, 2, 2),
                REASON_CONTROLLER_NOT_READY,
            ),
            (
                deployment(1, 1, 3, 3),
                daemonset(2, 1, 2),
                REASON_SPEAKER_NOT_READY,
            ),
            (
                deployment(1, 1, 3, 3),
                daemonset(2, 2, 1),
                REASON_SPEAKER_NOT_READY,
            ),
        ] {
            match readiness(&controller, &speaker) {
                Outcome::Progressing { reason: r, .. } => assert_eq!(r, reason),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn conditions_keep_transition_times_and_use_valid_reasons() {
        let t0 = Time(Timestamp::from_second(1_000).unwrap());
        let t1 = Time(Timestamp::from_second(2_000).unwrap());
        let progressing = Outcome::Progressing {
            reason: REASON_SPEAKER_NOT_READY,
            message: "speaker 0/1 ready".into(),
        };
        let first = conditions(&progressing, Some(1), &[], &t0);
        let types: Vec<(&str, &str)> = first
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("Available", "False"),
                ("Upgradeable", "False"),
                ("Progressing", "True"),
                ("Degraded", "False")
            ]
        );
        let available = Outcome::Available {
            message: "ok".into(),
        };
        let second = conditions(&available, Some(1), &first, &t1);
        // Degraded stayed False: its time is kept; Available flipped: now.
        assert_eq!(second[3].last_transition_time, t0);
        assert_eq!(second[0].last_transition_time, t1);
        let pattern = regex::Regex::new("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$").unwrap();
        for reason in [
            REASON_INCORRECT_NAME,
            REASON_INVALID_SPEC,
            REASON_SYNC_FAILED,
            REASON_CONTROLLER_NOT_READY,
            REASON_SPEAKER_NOT_READY,
            &second[0].reason,
        ] {
            assert!(pattern.is_match(reason), "{reason}");
        }
    }
}
