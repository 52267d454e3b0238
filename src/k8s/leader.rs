//! Lease-based leader election (`coordination.k8s.io/v1` Lease), so a second controller replica
//! can stand by and take over when the leader dies.
//!
//! It follows client-go's `leaderelection` package:
//! - a candidate takes the Lease when it has no holder, when it already holds it, or when the
//!   record has not changed for `lease_duration` *as observed by this candidate's own clock*
//!   (so clock skew between machines does not matter);
//! - every write is a `replace` guarded by the Lease's `resourceVersion`, so two candidates
//!   racing for an expired Lease cannot both win;
//! - the leader renews every `retry_period`, and gives up leadership when it has not managed to
//!   renew for `renew_deadline` (shorter than `lease_duration`, so it stops before anyone else
//!   may start);
//! - on a clean shutdown the leader releases the Lease (empty holder), so a standby takes over
//!   at once instead of after `lease_duration`.
//!
//! ```text
//!  acquire() ── loop: try_acquire_or_renew ── held ──► Leadership
//!                      │ not ours, still fresh: sleep retry_period
//!  Leadership::hold() ── every retry_period: renew ── fails for renew_deadline ──► Err(Lost)
//!  Leadership::release() ── holderIdentity = "" (best effort)
//! ```

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{Api, Client, api::PostParams};
use tokio::sync::watch;

/// Timing and identity of one candidate.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before giving up.
    pub renew_deadline: Duration,
    /// Pause between attempts (acquire and renew).
    pub retry_period: Duration,
}

/// Why leadership ended.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// Renewal failed for longer than the renew deadline, or someone else holds the Lease.
    #[error("lost the lease {name}: {reason}")]
    Lost {
        /// Lease name.
        name: String,
        /// What happened.
        reason: String,
    },
}

/// A candidate for the Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// Last record seen and when this candidate saw it change (client-go's `observedTime`).
    observed: Option<(Option<LeaseSpec>, Instant)>,
    leader: watch::Sender<bool>,
}

impl LeaderElector {
    /// A candidate; nothing is written until [`LeaderElector::acquire`].
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            leader: watch::channel(false).0,
        }
    }

    /// `true` while this candidate leads; writers gate on it.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// Waits until this candidate holds the Lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    self.leader.send_replace(true);
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(lease = %self.config.name, error = %e, "lease acquire attempt failed")
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews the Lease until renewal fails for longer than the renew deadline (returns
    /// [`LeaderError::Lost`]). Cancel-safe: dropping it simply stops renewing.
    pub async fn hold(&mut self) -> Result<(), LeaderError> {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renew = Instant::now(),
                Ok(false) => {
                    self.leader.send_replace(false);
                    return Err(self.lost("another candidate holds it"));
                }
                Err(e) => {
                    tracing::warn!(lease = %self.config.name, error = %e, "lease renewal failed");
                    if last_renew.elapsed() >= self.config.renew_deadline {
                        self.leader.send_replace(false);
                        return Err(self.lost(&format!(
                            "no renewal for {:?}: {e}",
                            self.config.renew_deadline
                        )));
                    }
                }
            }
        }
    }

    /// Gives the Lease up (empty holder) so a standby takes over at once; best effort.
    pub async fn release(&mut self) {
        self.leader.send_replace(false);
        let identity = self.config.identity.clone();
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await?;
            Ok::<_, kube::Error>(())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(lease = %self.config.name, "released lease"),
            Err(e) => tracing::warn!(lease = %self.config.name, error = %e, "lease release failed"),
        }
    }

    fn lost(&self, reason: &str) -> LeaderError {
        LeaderError::Lost {
            name: self.config.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// One attempt; `Ok(true)` when this candidate holds the Lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let me = self.config.identity.clone();
        let duration_secs = self.config.lease_duration.as_secs().max(1) as i32;
        match self.api.get_opt(&self.config.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(me),
                        lease_duration_seconds: Some(duration_secs),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Some(mut lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                // Observe: a changed record restarts this candidate's expiry clock.
                let changed = self
                    .observed
                    .as_ref()
                    .is_none_or(|(s, _)| s.as_ref() != Some(&spec));
                if changed {
                    self.observed = Some((Some(spec.clone()), Instant::now()));
                }
                let observed_at = self
                    .observed
                    .as_ref()
                    .map(|(_, t)| *t)
                    .unwrap_or_else(Instant::now);
                let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
                let held_by_me = holder.as_deref() == Some(me.as_str());
                let their_duration = Duration::from_secs(
                    spec.lease_duration_seconds.unwrap_or(duration_secs).max(0) as u64,
                );
                let expired = observed_at.elapsed() >= their_duration;
                if holder.is_some() && !held_by_me && !expired {
                    return Ok(false);
                }
                let mut new = spec.clone();
                if !held_by_me {
                    new.acquire_time = Some(MicroTime(now));
                    new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                new.holder_identity = Some(me);
                new.lease_duration_seconds = Some(duration_secs);
                new.renew_time = Some(MicroTime(now));
                lease.spec = Some(new.clone());
                // resourceVersion in the body makes this a compare-and-swap.
                match self
                    .api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => {
                        self.observed = Some((Some(new), Instant::now()));
                        Ok(true)
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }
}
