//! `metallb controller`: assigns LoadBalancer addresses through the Kubernetes API.
//!
//! ```text
//!              ┌── Stores::watch ×10 (Services, Namespaces, Nodes, 7 metallb.io kinds) ┐
//!              │        reflector stores (Stores)          Input::{Changed, Synced}    │
//!              ▼                                                     │                │
//!  Reconciler (one task, owns the Allocator) ◄───────── mpsc ────────┘                │
//!    dereference (stores) → validate + build (config::build, last good kept)          │
//!    → allocate::restore_all, then allocate::converge in namespace/name order         │
//!    → apply: ServiceWrite ──► k8s::status writer (SSA, rate-limited, leader-gated)   │
//!             Event        ──► events task (kube-runtime Recorder)                     │
//!  LeaderElector: nothing above starts before this replica holds the Lease; losing it ends run
//! ```
//!
//! Allocation is a global, order-dependent computation (who gets which free address), so it is
//! not a per-object `kube_runtime::Controller`: one actor drains every pending input, then
//! reconciles the dirty Services in namespace/name order. Until every store has its first full
//! list nothing is allocated; the first pass restores every address found in Service status
//! before allocating anything (no address moves on restart or failover), as `metallb plan` does.
//!
//! Writes happen only when the desired status or annotation differs from the observed one, so a
//! restart with nothing to change writes nothing.

mod allocate;
mod validate;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::Future,
    sync::Arc,
    time::Duration,
};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use kube::{
    Client, Resource,
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use tokio::sync::{mpsc, watch as tokio_watch};

use self::allocate::Converged;
pub use self::allocate::{Desired, observed};
use crate::k8s::{
    stores::Stores,
    watch::{Input, Kind, Watches},
};
use crate::{
    api::ip_address_pool::IPAddressPoolStatus,
    config::ConfigError,
    core::{allocator::Allocator, config::Config, service::ServiceKey, status::ControllerStatus},
    k8s::{
        config_state,
        leader::{LeaderElector, LeaseConfig},
        memberlist_secret, pool_status,
        status::{self, ServiceWrite, StatusHandle, WriterConfig},
    },
};

/// Field manager of every server-side apply the controller makes.
pub const FIELD_MANAGER: &str = "metallb-controller";
/// `reportingController` of the controller's events.
pub const CONTROLLER_NAME: &str = "metallb-controller";

/// Settings of one controller replica.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Namespace holding the metallb.io config objects (and the Lease).
    pub namespace: String,
    /// Only handle Services with this `spec.loadBalancerClass` (none: Services without one).
    pub lb_class: Option<String>,
    /// This replica's identity (pod name), for the Lease and events.
    pub identity: String,
    /// Leader election; `None` runs without it (a single replica).
    pub lease: Option<LeaseConfig>,
    /// Status writer limits.
    pub writer: WriterConfig,
    /// Metric handles (registered nowhere by default).
    pub metrics: crate::metrics::process::ControllerMetrics,
    /// Where to publish the allocation state after each pass, for the status API (`None`: not
    /// served).
    pub status_snapshot: Option<tokio_watch::Sender<ControllerStatus>>,
    /// The layer 2 membership Secret the leader creates in `namespace` when missing (`None`:
    /// left to the admin).
    pub memberlist_secret: Option<String>,
}

impl ControllerConfig {
    /// Defaults for `namespace` and `identity`: leader election on, Lease `metallb-controller`
    /// (15 s / 10 s / 2 s, as client-go), 200 writes/s with bursts of 400, 16 in flight.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        let namespace = namespace.into();
        let identity = identity.into();
        ControllerConfig {
            lease: Some(LeaseConfig {
                namespace: namespace.clone(),
                name: "metallb-controller".into(),
                identity: identity.clone(),
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            }),
            namespace,
            lb_class: None,
            identity,
            writer: WriterConfig {
                field_manager: FIELD_MANAGER.into(),
                qps: 200.0,
                burst: 400,
                concurrency: 16,
            },
            metrics: Default::default(),
            status_snapshot: None,
            memberlist_secret: Some(crate::k8s::memberlist_secret::DEFAULT_NAME.into()),
        }
    }
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Leadership was lost; the process should exit and be restarted as a standby.
    #[error("leader election")]
    Leader(#[from] crate::k8s::leader::LeaderError),
    /// A task ended that should run forever.
    #[error("{0} stopped")]
    Stopped(&'static str),
}

/// Everything the reconciler reads and writes through.
pub struct Context {
    /// Replica settings.
    pub config: ControllerConfig,
    /// Reflector stores of every watched kind.
    pub stores: Stores,
    /// The status writer.
    pub status: StatusHandle,
    /// Events to publish.
    pub events: mpsc::UnboundedSender<(ObjectReference, Event)>,
    /// The ConfigurationState `controller` to publish.
    pub config_state: tokio_watch::Sender<Option<config_state::State>>,
    /// IPAddressPool usage to publish, by pool name.
    pub pool_status: tokio_watch::Sender<BTreeMap<String, IPAddressPoolStatus>>,
}

/// Runs one replica until `shutdown` completes (then releases the Lease) or leadership is lost.
/// With leader election the replica stands by until it holds the Lease.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    // The select!s below run once each and the losers are not resumed: dropping `serve` or
    // `hold` ends the replica (release() reads the Lease afresh), dropping `acquire` gives up
    // before leading. `shutdown` is pinned here so that the second and third wait on the same
    // future.
    let mut shutdown = std::pin::pin!(shutdown);
    let Some(lease) = config.lease.clone() else {
        let (_tx, leader) = tokio_watch::channel(true);
        return tokio::select! {
            r = serve(client, config, leader, None) => r,
            () = &mut shutdown => Ok(()),
        };
    };
    let mut elector = LeaderElector::new(client.clone(), lease);
    tracing::info!(identity = %config.identity, "waiting for leadership");
    tokio::select! {
        () = elector.acquire() => {}
        () = &mut shutdown => return Ok(()),
    }
    let leader = elector.subscribe();
    let result = tokio::select! {
        r = serve(client, config, leader, None) => r,
        r = elector.hold() => r.map_err(Error::from),
        () = &mut shutdown => Ok(()),
    };
    if result.is_ok() {
        elector.release().await;
    }
    result
}

/// Watches, reconciles and writes while `leader` is true. `stats` receives the writer's counters
/// once it exists (tests read them).
pub async fn serve(
    client: Client,
    config: ControllerConfig,
    leader: tokio_watch::Receiver<bool>,
    stats: Option<tokio::sync::oneshot::Sender<Arc<status::WriterStats>>>,
) -> Result<(), Error> {
    config.metrics.leader.set(1);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks: FuturesUnordered<BoxFuture<'static, &'static str>> = FuturesUnordered::new();
    let ns = config.namespace.clone();

    let mut watches = Watches::new(tx.clone());
    let stores = Stores::watch(&client, &ns, &mut watches);
    for task in watches.into_tasks() {
        tasks.push(task.map(|()| "watch").boxed());
    }
    let kinds = tasks.len();

    let (acks_tx, mut acks_rx) = mpsc::unbounded_channel();
    let (writer, handle) =
        status::writer(client.clone(), config.writer.clone(), leader, Some(acks_tx));
    tasks.push(
        async move {
            while let Some(written) = acks_rx.recv().await {
                if tx.send(Input::Written(written)).is_err() {
                    break;
                }
            }
        }
        .map(|()| "acks")
        .boxed(),
    );
    if let Some(stats) = stats {
        let _ = stats.send(handle.stats.clone());
    }
    tasks.push(writer.run().map(|()| "status writer").boxed());

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: Some(config.identity.clone()),
        },
    );
    tasks.push(
        publish_events(recorder, events_rx)
            .map(|()| "events")
            .boxed(),
    );

    let (state_tx, state_rx) = tokio_watch::channel(None);
    tasks.push(
        config_state::publish(
            client.clone(),
            config.namespace.clone(),
            "controller".into(),
            "controller",
            FIELD_MANAGER.into(),
            state_rx,
        )
        .map(|()| "configuration state")
        .boxed(),
    );
    let (pools_tx, pools_rx) = tokio_watch::channel(BTreeMap::new());
    tasks.push(
        pool_status::publish(
            client.clone(),
            config.namespace.clone(),
            FIELD_MANAGER.into(),
            pools_rx,
        )
        .map(|()| "pool status")
        .boxed(),
    );
    if let Some(name) = &config.memberlist_secret {
        tasks.push(
            memberlist_secret::ensure_then_idle(
                client.clone(),
                config.namespace.clone(),
                name.clone(),
            )
            .map(|()| "memberlist secret")
            .boxed(),
        );
    }
    let ctx = Arc::new(Context {
        config,
        stores,
        status: handle,
        events: events_tx,
        config_state: state_tx,
        pool_status: pools_tx,
    });
    let reconciler = Reconciler::new(ctx, kinds);
    tasks.push(reconciler.run(rx).map(|()| "reconciler").boxed());

    // Every task runs forever; the first to end ends the controller.
    let stopped = tasks.next().await.unwrap_or("controller");
    Err(Error::Stopped(stopped))
}

/// Publishes events, four at a time.
async fn publish_events(recorder: Recorder, rx: mpsc::UnboundedReceiver<(ObjectReference, Event)>) {
    tokio_stream_for_each(rx, |(reference, event)| {
        let recorder = recorder.clone();
        async move {
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::warn!(%error, reason = %event.reason, "event not published");
            }
        }
    })
    .await;
    // Keep running after the senders are gone, like every other task, until cancelled.
    std::future::pending::<()>().await;
}

async fn tokio_stream_for_each<T, F, Fut>(mut rx: mpsc::UnboundedReceiver<T>, f: F)
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = ()>,
{
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    stream.for_each_concurrent(4, f).await;
}

/// A write sent to the status writer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    desired: Desired,
    seq: u64,
    /// `None` while in flight; then the resourceVersion the write produced.
    written: Option<u64>,
}

impl Sent {
    /// Whether the store's copy (at `observed_version`) may not show this write yet.
    fn pending(&self, observed_version: Option<&str>) -> bool {
        match (
            self.written,
            observed_version.and_then(|v| v.parse::<u64>().ok()),
        ) {
            (None, _) => true,
            // etcd resourceVersions grow; an older copy predates our write.
            (Some(written), Some(observed)) => observed < written,
            (Some(_), None) => false,
        }
    }
}

// === impl Reconciler ===

/// The single owner of the allocator.
struct Reconciler {
    ctx: Arc<Context>,
    /// Kinds to wait for before the first pass.
    kinds: usize,
    synced: BTreeSet<Kind>,
    allocator: Option<Allocator>,
    /// The last valid configuration.
    config: Option<Config>,
    /// Problems of the last invalid configuration reported, so they are reported once.
    reported: Option<Vec<ConfigError>>,
    /// Services whose allocation failed, with the message last reported.
    failed: BTreeMap<ServiceKey, String>,
    /// What was last sent per Service: until the store shows the result of that write (or
    /// something newer), sending the same again would be a wasted request.
    sent: HashMap<ServiceKey, Sent>,
    seq: u64,
    first_pass_done: bool,
}

impl Reconciler {
    fn new(ctx: Arc<Context>, kinds: usize) -> Self {
        Reconciler {
            ctx,
            kinds,
            synced: BTreeSet::new(),
            allocator: None,
            config: None,
            reported: None,
            failed: BTreeMap::new(),
            sent: HashMap::new(),
            seq: 0,
            first_pass_done: false,
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        while let Some(first) = rx.recv().await {
            let mut config_dirty = false;
            let mut full = false;
            let mut dirty = BTreeSet::new();
            let mut input = Some(first);
            while let Some(i) = input.take().or_else(|| rx.try_recv().ok()) {
                if matches!(i, Input::Changed(..)) {
                    self.ctx.config.metrics.k8s.updates(1);
                }
                match i {
                    Input::Changed(kind, _) if kind.is_config() => config_dirty = true,
                    Input::Changed(Kind::Service, key) => {
                        dirty.insert(key);
                    }
                    Input::Changed(_, _) => full = true,
                    Input::Written(w) => {
                        if let Some(sent) = self.sent.get_mut(&w.key)
                            && sent.seq == w.seq
                        {
                            match w.resource_version.and_then(|v| v.parse().ok()) {
                                Some(v) => sent.written = Some(v),
                                None => {
                                    self.sent.remove(&w.key);
                                }
                            }
                        }
                    }
                    Input::Synced(kind) => {
                        if !self.synced.insert(kind) {
                            // A re-list: anything of this kind may have changed.
                            if kind.is_config() {
                                config_dirty = true;
                            } else {
                                full = true;
                            }
                        }
                    }
                }
            }
            if self.synced.len() < self.kinds {
                continue;
            }
            if !self.first_pass_done {
                config_dirty = true;
                full = true;
            }
            if config_dirty && self.reload_config() {
                full = true;
            }
            if self.allocator.is_none() {
                continue;
            }
            self.pass(full, dirty);
            self.publish_status();
        }
    }

    /// One pass (every Service, or just the dirty ones), then the pools' usage.
    fn pass(&mut self, full: bool, dirty: BTreeSet<ServiceKey>) {
        if full {
            self.full_pass();
            if !self.first_pass_done {
                tracing::info!(
                    services = self
                        .allocator
                        .as_ref()
                        .map_or(0, |a| a.assignments().count()),
                    "initial pass done"
                );
            }
            self.first_pass_done = true;
        } else {
            self.process(dirty);
        }
        let Some(allocator) = self.allocator.as_ref() else {
            return;
        };
        if let Some(config) = &self.config {
            self.ctx.config.metrics.allocator.set_pools(
                config
                    .pools
                    .keys()
                    .filter_map(|name| Some((name.clone(), allocator.pool_stats(name)?)))
                    .collect(),
            );
        }
        let stats: BTreeMap<String, IPAddressPoolStatus> = self
            .ctx
            .stores
            .config
            .ip_address_pools
            .state()
            .iter()
            .filter_map(|pool| {
                let name = pool.metadata.name.clone()?;
                let s = allocator.pool_stats(&name)?;
                Some((
                    name,
                    IPAddressPoolStatus {
                        assigned_ipv4: s.ipv4.assigned_i64(),
                        assigned_ipv6: s.ipv6.assigned_i64(),
                        available_ipv4: s.ipv4.available_i64(),
                        available_ipv6: s.ipv6.available_i64(),
                    },
                ))
            })
            .collect();
        self.ctx.pool_status.send_if_modified(|old| {
            if *old == stats {
                false
            } else {
                *old = stats;
                true
            }
        });
    }

    /// Publishes the allocation state for the status API, if it is served and changed.
    fn publish_status(&self) {
        let (Some(tx), Some(allocator), Some(config)) = (
            self.ctx.config.status_snapshot.as_ref(),
            self.allocator.as_ref(),
            self.config.as_ref(),
        ) else {
            return;
        };
        let pools = config
            .pools
            .keys()
            .filter_map(|name| Some((name.clone(), allocator.pool_stats(name)?)))
            .collect();
        let config_error = self.reported.as_ref().map(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            lines.join("\n")
        });
        let status =
            ControllerStatus::build(allocator.assignments(), &self.failed, pools, config_error);
        tx.send_if_modified(|old| {
            if *old == status {
                false
            } else {
                *old = status;
                true
            }
        });
    }

    /// Validates and builds the config from the stores. Returns whether a new config was
    /// applied. Problems are reported; one that only awaits an object leaves that object out
    /// and the rest runs, any other keeps the last good config in force.
    fn reload_config(&mut self) -> bool {
        let resources = self.ctx.stores.config_resources();
        let loaded = validate::load(&resources, &self.ctx.config.namespace);
        self.report_problems(loaded.problems, loaded.config.is_some());
        match loaded.config {
            Some(config) => {
                self.ctx.config.metrics.k8s.config_ok();
                if self.config.as_ref() == Some(&config) {
                    return false;
                }
                match &mut self.allocator {
                    Some(allocator) => {
                        let lost = allocator.set_pools(config.pools.values());
                        tracing::info!(
                            event = "configReloaded",
                            pools = config.pools.len(),
                            lost = lost.len(),
                            "config reloaded"
                        );
                    }
                    None => {
                        self.allocator = Some(Allocator::new(config.pools.values()));
                        tracing::info!(
                            event = "configLoaded",
                            pools = config.pools.len(),
                            "config loaded"
                        );
                    }
                }
                self.config = Some(config);
                true
            }
            None => {
                self.ctx.config.metrics.k8s.config_failed();
                false
            }
        }
    }

    /// Publishes ConfigurationState and, once per distinct set of problems, logs them and sends
    /// Warning events on the objects at fault. `runs` says whether the config with these
    /// problems is the one in force (problems that await an object) or was refused.
    fn report_problems(&mut self, problems: Vec<ConfigError>, runs: bool) {
        if problems.is_empty() {
            self.reported = None;
            self.ctx
                .config_state
                .send_replace(Some(config_state::State::Valid));
            return;
        }
        if self.reported.as_ref() == Some(&problems) {
            return;
        }
        let summary: Vec<String> = problems.iter().map(ToString::to_string).collect();
        self.ctx
            .config_state
            .send_replace(Some(config_state::State::Invalid(summary.join("\n"))));
        let outcome = if runs {
            validate::Outcome::RestRuns
        } else if self.config.is_some() {
            validate::Outcome::LastGoodKept
        } else {
            validate::Outcome::NothingYet
        };
        for (reference, event) in validate::report(&problems, &self.ctx.config.namespace, outcome) {
            let _ = self.ctx.events.send((reference, event));
        }
        self.reported = Some(problems);
    }

    /// Every Service: restore status addresses first, then converge in namespace/name order.
    fn full_pass(&mut self) {
        let services = self.ctx.stores.all_services();
        let namespaces = self.ctx.stores.namespace_labels();
        let lb_class = self.ctx.config.lb_class.clone();
        let allocator = self
            .allocator
            .as_mut()
            .expect("invariant: full_pass needs a config");
        let gone: Vec<ServiceKey> = allocator
            .assignments()
            .map(|(k, _)| k.clone())
            .filter(|k| !services.contains_key(k))
            .collect();
        for key in &gone {
            allocator.release(key);
        }
        allocate::restore_all(allocator, &services, &namespaces, lb_class.as_deref());
        self.failed.retain(|k, _| services.contains_key(k));
        self.sent.retain(|k, _| services.contains_key(k));
        for (key, svc) in &services {
            self.converge(key, Some(svc), &namespaces);
        }
    }

    /// Just the changed Services; if any address was freed, retry those that failed.
    fn process(&mut self, dirty: BTreeSet<ServiceKey>) {
        let namespaces = self.ctx.stores.namespace_labels();
        let mut freed = false;
        for key in &dirty {
            let before = self
                .allocator
                .as_ref()
                .and_then(|a| a.assignment(key).cloned());
            let svc = self.ctx.stores.service(key);
            self.converge(key, svc.as_deref(), &namespaces);
            let after = self
                .allocator
                .as_ref()
                .and_then(|a| a.assignment(key).cloned());
            if before.is_some() && before != after {
                freed = true;
            }
        }
        if freed && !self.failed.is_empty() {
            let retry: Vec<ServiceKey> = self.failed.keys().cloned().collect();
            for key in retry {
                let svc = self.ctx.stores.service(&key);
                self.converge(&key, svc.as_deref(), &namespaces);
            }
        }
    }

    fn converge(
        &mut self,
        key: &ServiceKey,
        svc: Option<&Service>,
        namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    ) {
        let allocator = self
            .allocator
            .as_mut()
            .expect("invariant: converge needs a config");
        let started = std::time::Instant::now();
        let result = allocate::converge(
            allocator,
            key,
            svc,
            namespaces,
            self.ctx.config.lb_class.as_deref(),
        );
        self.ctx
            .config
            .metrics
            .allocator
            .allocated(started.elapsed());
        match (result, svc) {
            (Converged::Ignore, _) | (_, None) => {
                self.failed.remove(key);
                self.sent.remove(key);
            }
            (Converged::Assigned(desired), Some(svc)) => {
                self.failed.remove(key);
                self.publish(key, svc, desired);
            }
            (Converged::Failed(message), Some(svc)) => {
                if self.failed.get(key) != Some(&message) {
                    tracing::warn!(op = "allocateIPs", service = %key, error = %message, "IP allocation failed");
                    self.event(
                        svc,
                        EventType::Warning,
                        "AllocationFailed",
                        "Allocate",
                        message.clone(),
                    );
                    self.failed.insert(key.clone(), message);
                }
                self.publish(key, svc, Desired::default());
            }
        }
    }

    /// Queues the write that makes `svc` look like `desired`, if anything differs.
    fn publish(&mut self, key: &ServiceKey, svc: &Service, desired: Desired) {
        let observed = allocate::observed(svc);
        if observed == desired {
            self.sent.remove(key);
            return;
        }
        if let Some(sent) = self.sent.get(key)
            && sent.desired == desired
            && sent.pending(svc.metadata.resource_version.as_deref())
        {
            return;
        }
        let ingress = (observed.ips != desired.ips).then(|| desired.ips.clone());
        let pool = (observed.pool != desired.pool).then(|| desired.pool.clone());
        if ingress.is_some() && !desired.ips.is_empty() {
            let ips: Vec<String> = desired.ips.iter().map(ToString::to_string).collect();
            tracing::info!(
                event = "ipAllocated",
                ip = %ips.join(","),
                service = %key,
                pool = desired.pool.as_deref().unwrap_or(""),
                msg = "IP address assigned by controller"
            );
            let quoted: Vec<String> = ips.iter().map(|ip| format!("{ip:?}")).collect();
            self.event(
                svc,
                EventType::Normal,
                "IPAllocated",
                "Allocate",
                format!("Assigned IP [{}]", quoted.join(" ")),
            );
        }
        self.seq += 1;
        self.ctx.status.send(ServiceWrite {
            key: key.clone(),
            uid: svc.metadata.uid.clone(),
            seq: self.seq,
            ingress,
            pool,
        });
        self.sent.insert(
            key.clone(),
            Sent {
                desired,
                seq: self.seq,
                written: None,
            },
        );
    }

    fn event(&self, svc: &Service, type_: EventType, reason: &str, action: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let _ = self.ctx.events.send((svc.object_ref(&()), event));
    }
}
