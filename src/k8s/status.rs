//! The one path by which the controller writes Services: a leader-gated, rate-limited writer
//! of `status.loadBalancer.ingress` and the `metallb.io/ip-allocated-from-pool` annotation,
//! with server-side apply under one field manager.
//!
//! ```text
//!  reconcile ──ServiceWrite{key, seq, ingress?, pool?}──► mpsc ──► pending: key → latest write
//!                                                                   │ one in flight per key,
//!                                                                   │ ≤ concurrency in total,
//!                                                                   │ token bucket (qps, burst),
//!                                                                   │ only while leader
//!                                                                   ▼
//!                                  SSA patch_status (ingress) / SSA patch (annotation)
//! ```
//!
//! Writes for one Service are coalesced (the newest wins, by `seq`) and never run concurrently,
//! so a slow old write cannot land after a newer one. A failed write is retried after a second
//! unless a newer one for the same Service has arrived; NotFound (the Service is gone) and
//! Conflict (its UID changed: deleted and re-created) drop it.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{StreamExt, stream::FuturesUnordered};
use k8s_openapi::api::core::v1::Service;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use crate::{config::service::annotation::IP_ALLOCATED_FROM_POOL, core::service::ServiceKey};

/// One desired change to a Service. `None` parts are left alone.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceWrite {
    /// Which Service.
    pub key: ServiceKey,
    /// Its UID when the change was computed; the annotation write is refused by the apiserver
    /// for a Service re-created under the same name.
    pub uid: Option<String>,
    /// Monotonic sequence number: a newer write for the same key replaces an older one.
    pub seq: u64,
    /// New `status.loadBalancer.ingress` addresses (empty clears them).
    pub ingress: Option<Vec<IpAddr>>,
    /// New pool annotation (`Some(None)` removes it).
    pub pool: Option<Option<String>>,
}

/// A finished write: the key, its `seq`, and the Service's resourceVersion after it (`None`
/// when the write was dropped, e.g. the Service is gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// Which Service.
    pub key: ServiceKey,
    /// The write's sequence number.
    pub seq: u64,
    /// resourceVersion returned by the last request of the write.
    pub resource_version: Option<String>,
}

/// Writer settings.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Field manager for server-side apply.
    pub field_manager: String,
    /// Sustained writes per second.
    pub qps: f64,
    /// Writes allowed in a burst.
    pub burst: u32,
    /// Writes in flight at once.
    pub concurrency: usize,
}

/// Counters a test or a metrics endpoint can read.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Successful API requests (a status and an annotation change count as two).
    pub requests: AtomicU64,
    /// Failed API requests.
    pub failures: AtomicU64,
}

/// The sending side, handed to the reconciler.
#[derive(Clone, Debug)]
pub struct StatusHandle {
    tx: mpsc::UnboundedSender<ServiceWrite>,
    /// Counters.
    pub stats: Arc<WriterStats>,
}

impl StatusHandle {
    /// Queues a write. Returns false when the writer has stopped.
    pub fn send(&self, write: ServiceWrite) -> bool {
        self.tx.send(write).is_ok()
    }
}

/// The writer task's state.
pub struct StatusWriter {
    api_client: Client,
    config: WriterConfig,
    rx: mpsc::UnboundedReceiver<ServiceWrite>,
    leader: watch::Receiver<bool>,
    stats: Arc<WriterStats>,
    acks: Option<mpsc::UnboundedSender<Written>>,
}

/// A writer and its handle; run [`StatusWriter::run`] in the component's task set. Finished
/// writes are reported on `acks`.
pub fn writer(
    client: Client,
    config: WriterConfig,
    leader: watch::Receiver<bool>,
    acks: Option<mpsc::UnboundedSender<Written>>,
) -> (StatusWriter, StatusHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stats = Arc::new(WriterStats::default());
    (
        StatusWriter {
            api_client: client,
            config,
            rx,
            leader,
            stats: stats.clone(),
            acks,
        },
        StatusHandle { tx, stats },
    )
}

/// Outcome of one write.
enum Outcome {
    Done(u64, Option<String>),
    Retry(ServiceWrite),
}

impl StatusWriter {
    /// Runs until every handle is dropped and the queue is empty.
    pub async fn run(mut self) {
        let mut pending: BTreeMap<ServiceKey, ServiceWrite> = BTreeMap::new();
        let mut in_flight: BTreeSet<ServiceKey> = BTreeSet::new();
        let mut running = FuturesUnordered::new();
        let mut bucket = TokenBucket::new(self.config.qps, self.config.burst);
        let mut open = true;
        let mut retries = FuturesUnordered::new();
        loop {
            // Start what may start now.
            let leader = *self.leader.borrow();
            let mut wake_at = None;
            if leader {
                let ready: Vec<ServiceKey> = pending
                    .keys()
                    .filter(|k| !in_flight.contains(*k))
                    .take(self.config.concurrency.saturating_sub(in_flight.len()))
                    .cloned()
                    .collect();
                for key in ready {
                    match bucket.take() {
                        Ok(()) => {
                            let write = pending.remove(&key).expect("invariant: key is pending");
                            in_flight.insert(key.clone());
                            let client = self.api_client.clone();
                            let fm = self.config.field_manager.clone();
                            let stats = self.stats.clone();
                            running.push(async move {
                                let outcome = apply(client, &fm, &stats, write).await;
                                (key, outcome)
                            });
                        }
                        Err(at) => {
                            wake_at = Some(at);
                            break;
                        }
                    }
                }
            }
            if !open && pending.is_empty() && running.is_empty() && retries.is_empty() {
                return;
            }
            // Every branch is cancel safe: `recv` and `changed` lose nothing when dropped, the
            // writes and retries live in their FuturesUnordered (`next` only polls them), and the
            // bucket's wake-up time is recomputed each round.
            tokio::select! {
                msg = self.rx.recv(), if open => match msg {
                    Some(write) => queue(&mut pending, write),
                    None => open = false,
                },
                Some((key, outcome)) = running.next(), if !running.is_empty() => {
                    in_flight.remove(&key);
                    match outcome {
                        Outcome::Retry(write) => retries.push(async move {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            write
                        }),
                        Outcome::Done(seq, resource_version) => {
                            if let Some(acks) = &self.acks {
                                let _ = acks.send(Written { key, seq, resource_version });
                            }
                        }
                    }
                }
                Some(write) = retries.next(), if !retries.is_empty() => queue(&mut pending, write),
                _ = sleep_until(wake_at), if wake_at.is_some() => {}
                changed = self.leader.changed() => {
                    if changed.is_err() {
                        // The elector is gone: nobody can be leader any more.
                        return;
                    }
                }
            }
        }
    }
}

fn queue(pending: &mut BTreeMap<ServiceKey, ServiceWrite>, write: ServiceWrite) {
    match pending.get(&write.key) {
        Some(old) if old.seq > write.seq => {}
        _ => {
            pending.insert(write.key.clone(), write);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Applies one write: status first (what restarts restore from), then the annotation.
async fn apply(
    client: Client,
    field_manager: &str,
    stats: &WriterStats,
    mut write: ServiceWrite,
) -> Outcome {
    let api: Api<Service> = Api::namespaced(client, &write.key.namespace);
    let params = PatchParams::apply(field_manager).force();
    let name = write.key.name.clone();
    let mut version = None;
    if let Some(ips) = &write.ingress {
        let ingress: Vec<_> = ips
            .iter()
            .map(|ip| json!({"ip": ip.to_string(), "ipMode": "VIP"}))
            .collect();
        let load_balancer = if ingress.is_empty() {
            json!({})
        } else {
            json!({ "ingress": ingress })
        };
        let body = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": write.key.namespace},
            "status": {"loadBalancer": load_balancer},
        });
        match api.patch_status(&name, &params, &Patch::Apply(body)).await {
            Ok(svc) => {
                stats.requests.fetch_add(1, Ordering::Relaxed);
                version = svc.metadata.resource_version;
                write.ingress = None;
            }
            Err(e) => return failed(stats, write, e),
        }
    }
    if let Some(pool) = &write.pool {
        let mut metadata = json!({"name": name, "namespace": write.key.namespace});
        if let Some(uid) = &write.uid {
            metadata["uid"] = json!(uid);
        }
        if let Some(pool) = pool {
            metadata["annotations"] = json!({ IP_ALLOCATED_FROM_POOL: pool });
        }
        let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata});
        match api.patch(&name, &params, &Patch::Apply(body)).await {
            Ok(svc) => {
                stats.requests.fetch_add(1, Ordering::Relaxed);
                version = svc.metadata.resource_version;
            }
            Err(e) => return failed(stats, write, e),
        }
    }
    Outcome::Done(write.seq, version)
}

fn failed(stats: &WriterStats, write: ServiceWrite, error: kube::Error) -> Outcome {
    stats.failures.fetch_add(1, Ordering::Relaxed);
    match &error {
        kube::Error::Api(e) if e.code == 404 || e.code == 409 || e.code == 422 => {
            tracing::debug!(service = %write.key, error = %error, "status write dropped");
            Outcome::Done(write.seq, None)
        }
        _ => {
            tracing::warn!(service = %write.key, error = %error, "status write failed, retrying");
            Outcome::Retry(write)
        }
    }
}

// === impl TokenBucket ===

/// Client-side rate limit: `burst` tokens, refilled at `qps`.
struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps: qps.max(0.1),
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes a token, or says when the next one will be there.
    fn take(&mut self) -> Result<(), Instant> {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.qps).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}
