//! `metallb speaker`: one process per node that announces the Services' addresses with BGP
//! (through FRR) and with layer 2 (ARP/NDP), fed from the Kubernetes API or from manifests.
//!
//! One actor loop over one message enum ([`Msg`], holo's `InstanceMsg` pattern): every input
//! (objects changed, live speakers changed, a tick, a signal) becomes a message, and one
//! handler turns the current state into announcements, events and status.
//!
//! ```text
//!  ApiSource (reflectors) / ManifestSource (poll) ─► Msg::Input ─┐
//!  membership (SWIM thread) ──────────────────────► Msg::Live  ─┤
//!  100 ms tick ───────────────────────────────────► Msg::Tick  ─┼─► Speaker::handle
//!  SIGHUP / SIGTERM / SIGINT ─────────────────────► Msg::Reload / Msg::Stop
//!  vtysh -C on new bgpextras (task) ──────────────► Msg::ExtrasChecked
//!                                                                │
//!   input::accept (config + each Service's addresses; invalid: keep the last valid input)
//!        ├─► bgp::BgpSide ─► frr.conf ─► apply loop ─► FRR
//!        ├─► layer2::L2Side ─► elect ─► announcer (ARP/NDP)
//!        ├─► events (nodeAssigned per protocol, on change only)
//!        └─► status: ConfigurationState speaker-<node>, ServiceBGPStatus, ServiceL2Status
//! ```

pub mod bgp;
pub mod events;
pub mod input;
pub mod layer2;
pub mod source;
pub mod status;
pub mod status_api;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{ObjectReference, Service},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{Api, Client, Resource};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};
use tracing::{error, info, warn};

use crate::{
    api::{labels, service_bgp_status::ServiceBGPStatus, service_l2_status::ServiceL2Status},
    config::{ConfigError, Resources},
    core::service::ServiceKey,
    frr::vtysh::Vtysh,
    k8s::{config_state, publish},
    metrics::process::SpeakerTelemetry,
};
use bgp::{BgpOptions, BgpSide};
use events::{Events, Protocol};
use input::{AddressSource, Input};
use layer2::{L2Options, L2Side};
use source::{ApiSource, ManifestSource};

/// Where the objects come from.
pub enum SourceOptions {
    /// The Kubernetes API.
    Api {
        /// A client.
        client: Client,
    },
    /// Manifests in a directory or file, polled.
    Manifests {
        /// The path.
        path: PathBuf,
        /// Poll period.
        poll: Duration,
    },
    /// An already rendered frr.conf, polled (BGP only).
    FrrConf {
        /// The file.
        path: PathBuf,
        /// Poll period.
        poll: Duration,
    },
}

/// Speaker settings.
pub struct Options {
    /// This node's name.
    pub node: String,
    /// MetalLB's namespace (config, Secrets, status objects).
    pub namespace: String,
    /// `--lb-class`.
    pub lb_class: Option<String>,
    /// The BGP side, if on.
    pub bgp: Option<BgpOptions>,
    /// The layer 2 side, if on.
    pub layer2: Option<L2Options>,
    /// The metrics and health listeners.
    pub metrics: MetricsOptions,
    /// The gRPC status API.
    pub status: status_api::StatusOptions,
}

/// The metrics and health listeners.
pub struct MetricsOptions {
    /// Where they listen.
    pub listen: crate::cli::MetricsArgs,
    /// How often FRR's BGP and BFD figures are read (BGP on).
    pub frr_interval: Duration,
}

/// Why the speaker could not run.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// The layer 2 side could not start.
    #[error(transparent)]
    Layer2(#[from] layer2::L2Error),
    /// Signal handlers could not be installed.
    #[error("installing signal handlers")]
    Signals(#[source] std::io::Error),
}

/// One input to the actor loop.
#[derive(Debug)]
pub enum Msg {
    /// The objects changed (decoded, with decode problems), or could not be read.
    Input(Result<Box<(Resources, Vec<ConfigError>)>, String>),
    /// A new already rendered frr.conf (`--frr-conf-file`).
    FrrConf(String),
    /// The live layer 2 speakers changed.
    Live(BTreeSet<String>),
    /// FRR judged a `bgpextras` text.
    ExtrasChecked(bgp::ExtrasVerdict),
    /// Periodic work (fence, interface rescans, status file).
    Tick,
    /// SIGHUP: read the input again.
    Reload,
    /// SIGTERM / SIGINT.
    Stop(&'static str),
}

enum Source {
    Api(Box<ApiSource>),
    Manifests(ManifestSource),
    FrrConf(ManifestSource),
}

impl Source {
    /// The next input. Cancel safe (the loop's `select!` drops it when another branch wins):
    /// the sources keep their progress in themselves.
    async fn next(&mut self) -> Msg {
        match self {
            Source::Api(api) => {
                api.changed().await;
                Msg::Input(Ok(Box::new((api.resources(), Vec::new()))))
            }
            Source::Manifests(m) => match m.changed().await {
                Ok(files) => Msg::Input(
                    source::decode(&files)
                        .map(Box::new)
                        .map_err(|e| e.to_string()),
                ),
                Err(e) => Msg::Input(Err(e.to_string())),
            },
            Source::FrrConf(m) => match m.changed().await {
                Ok(files) => {
                    Msg::FrrConf(files.into_iter().next().map(|(_, t)| t).unwrap_or_default())
                }
                Err(e) => Msg::Input(Err(e.to_string())),
            },
        }
    }

    fn force(&mut self) {
        match self {
            Source::Api(_) => {}
            Source::Manifests(m) | Source::FrrConf(m) => m.force(),
        }
    }
}

/// The cluster side: events recorder and status channels (`--from-api` only).
struct Cluster {
    client: Client,
    config_state: watch::Sender<Option<config_state::State>>,
    bgp_status: watch::Sender<BTreeMap<String, publish::Desired>>,
    l2_status: watch::Sender<BTreeMap<String, publish::Desired>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    fn start(client: Client, namespace: &str, node: &str) -> Cluster {
        let (config_state, state_rx) = watch::channel(None);
        let (bgp_status, bgp_rx) = watch::channel(BTreeMap::new());
        let (l2_status, l2_rx) = watch::channel(BTreeMap::new());
        let tasks = vec![
            tokio::spawn(config_state::publish(
                client.clone(),
                namespace.to_string(),
                format!("speaker-{node}"),
                "speaker",
                labels::SPEAKER_FIELD_MANAGER.into(),
                state_rx,
            )),
            tokio::spawn(publish::publish(
                Api::<ServiceBGPStatus>::namespaced(client.clone(), namespace),
                labels::SPEAKER_FIELD_MANAGER,
                status::ownership(node),
                bgp_rx,
            )),
            tokio::spawn(publish::publish(
                Api::<ServiceL2Status>::namespaced(client.clone(), namespace),
                labels::SPEAKER_FIELD_MANAGER,
                status::ownership(node),
                l2_rx,
            )),
        ];
        Cluster {
            client,
            config_state,
            bgp_status,
            l2_status,
            tasks,
        }
    }
}

/// The actor's state.
struct Speaker {
    options: Options,
    /// The last valid input.
    input: Option<Input>,
    bgp: Option<BgpSide>,
    l2: Option<L2Side>,
    events: Events,
    cluster: Option<Cluster>,
    address_source: AddressSource,
    config_metrics: crate::metrics::k8s_client::K8sClientMetrics,
    /// The last input's verdict (`None` before the first input); published together with the
    /// extras' problem as ConfigurationState.
    input_state: Option<config_state::State>,
    status_api: Option<status_api::StatusApi>,
    /// When to hand the memory freed by the last inputs back to the kernel ([`crate::heap`]).
    heap_trim_at: Option<Instant>,
}

/// How long after an input the freed heap is trimmed: time for both sides to apply it (the
/// BGP side renders frr.conf on its own task), so the trim comes after the peak, not during it.
const HEAP_TRIM_DELAY: Duration = Duration::from_secs(2);

/// Runs the speaker until SIGTERM or SIGINT.
pub async fn run(options: Options, source: SourceOptions) -> Result<(), SpeakerError> {
    let node = options.node.clone();
    let (mut source, cluster, address_source) = match source {
        SourceOptions::Api { client } => (
            Source::Api(Box::new(ApiSource::new(client.clone(), &options.namespace))),
            Some(Cluster::start(client, &options.namespace, &node)),
            AddressSource::Status,
        ),
        SourceOptions::Manifests { path, poll } => (
            Source::Manifests(ManifestSource::new(path, poll)),
            None,
            AddressSource::Plan,
        ),
        SourceOptions::FrrConf { path, poll } => (
            Source::FrrConf(ManifestSource::new(path, poll)),
            None,
            AddressSource::Plan,
        ),
    };
    let recorder = cluster.as_ref().map(|c| {
        kube::runtime::events::Recorder::new(
            c.client.clone(),
            kube::runtime::events::Reporter {
                controller: labels::SPEAKER_FIELD_MANAGER.into(),
                instance: Some(node.clone()),
            },
        )
    });
    let mut telemetry = SpeakerTelemetry::new(
        options
            .bgp
            .is_some()
            .then_some(options.metrics.frr_interval),
    );
    let (l2, mut live_rx) = match options.layer2.clone() {
        Some(l2) => {
            let (mut side, rx) = L2Side::start(&node, l2)?;
            side.set_metrics(telemetry.layer2(side.counters_reader()));
            (Some(side), rx)
        }
        None => (None, mpsc::unbounded_channel().1),
    };
    let (verdicts_tx, mut verdicts_rx) = mpsc::unbounded_channel();
    let bgp = options
        .bgp
        .as_ref()
        .map(|b| BgpSide::start(b, telemetry.apply.clone(), verdicts_tx));
    let config_metrics = telemetry.k8s.clone();
    let vtysh = Vtysh::new(options.bgp.as_ref().and_then(|b| b.pathspace.clone()));
    // Like the metrics listeners, a status API that cannot start is logged, never fatal.
    let status_api = options.status.listen.and_then(|addr| {
        status_api::StatusApi::start(
            addr,
            &options.status,
            &node,
            bgp.is_some().then(|| vtysh.clone()),
            bgp.as_ref().map(BgpSide::apply_status),
            cluster.as_ref().map(|c| &c.client),
        )
        .map_err(|error| error!(%error, "status API not started"))
        .ok()
    });
    info!(node = %node, bgp = bgp.is_some(), layer2 = l2.is_some(), "speaker: started");
    // As in the other components, a listener that cannot start is logged, never fatal.
    if let Err(error) = telemetry
        .start(
            &options.metrics.listen,
            vtysh,
            cluster.as_ref().map(|c| &c.client),
        )
        .await
    {
        error!(%error, "metrics: listeners not started");
    }
    let mut speaker = Speaker {
        events: Events::new(&node, recorder),
        options,
        input: None,
        bgp,
        l2,
        cluster,
        address_source,
        config_metrics,
        input_state: None,
        status_api,
        heap_trim_at: None,
    };
    let mut hup = signal(SignalKind::hangup()).map_err(SpeakerError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(SpeakerError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(SpeakerError::Signals)?;
    let mut tick = tokio::time::interval(layer2::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The branches that lose are dropped, so each must be cancel safe: the tick wins the
        // race every 100 ms, and a source that kept progress in its future would never finish.
        let msg = tokio::select! {
            msg = source.next() => msg,
            Some(live) = live_rx.recv() => Msg::Live(live),
            Some(verdict) = verdicts_rx.recv() => Msg::ExtrasChecked(verdict),
            _ = tick.tick() => Msg::Tick,
            _ = hup.recv() => Msg::Reload,
            _ = term.recv() => Msg::Stop("SIGTERM"),
            _ = int.recv() => Msg::Stop("SIGINT"),
        };
        match msg {
            Msg::Stop(signal) => {
                info!(signal, "speaker: stopping");
                break;
            }
            Msg::Reload => {
                info!("speaker: SIGHUP, re-reading");
                source.force();
                if let Some(bgp) = &mut speaker.bgp {
                    bgp.forget_last();
                }
            }
            msg => speaker.handle(msg),
        }
    }
    speaker.shutdown().await;
    Ok(())
}

impl Speaker {
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Input(Ok(objects)) => {
                let (resources, errors) = *objects;
                self.input_changed(resources, errors);
                // At most one trim per delay, however often the cluster changes.
                self.heap_trim_at
                    .get_or_insert_with(|| Instant::now() + HEAP_TRIM_DELAY);
            }
            Msg::Input(Err(error)) => {
                warn!(%error, "speaker: cannot read the input; the last valid one stays in force");
            }
            Msg::FrrConf(text) => {
                self.config_metrics.updates(1);
                self.config_metrics.config_ok();
                if let Some(bgp) = &mut self.bgp {
                    bgp.set_text(text);
                }
            }
            Msg::Live(live) => {
                if let Some(l2) = &mut self.l2 {
                    l2.set_live(live);
                }
                self.reconcile_l2();
            }
            Msg::ExtrasChecked(verdict) => self.extras_checked(verdict),
            Msg::Tick => {
                self.reconcile_l2();
                if let Some(l2) = &mut self.l2 {
                    l2.tick();
                }
                if self.heap_trim_at.is_some_and(|at| at <= Instant::now()) {
                    self.heap_trim_at = None;
                    let released = crate::heap::release_free_memory();
                    tracing::debug!(released, "speaker: freed heap returned to the kernel");
                }
            }
            Msg::Reload | Msg::Stop(_) => {}
        }
    }

    fn input_changed(&mut self, resources: Resources, errors: Vec<ConfigError>) {
        self.config_metrics.updates(1);
        let accepted = input::accept(
            resources,
            errors,
            self.options.lb_class.as_deref(),
            self.address_source,
        );
        let accepted = accepted.and_then(|input| {
            let last = self.input.as_ref().map(|last| &last.config);
            if last.is_some_and(|last| input::stops_running(last, &input).is_some()) {
                Err(input.problems)
            } else {
                Ok(input)
            }
        });
        let input = match accepted {
            Ok(input) => input,
            Err(mut errors) => {
                let mut seen = BTreeSet::new();
                errors.retain(|e| seen.insert(e.clone()));
                let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
                error!(errors = %summary.join("; "), "speaker: invalid configuration; the last valid one stays in force");
                self.config_metrics.config_failed();
                self.input_state = Some(config_state::State::Invalid(summary.join("\n")));
                self.publish_state();
                return;
            }
        };
        self.config_metrics.config_ok();
        if self.input.is_none() {
            // Nothing is elected or announced before this line.
            info!(
                services = input.resources.services.len(),
                "speaker: first valid input read"
            );
        }
        if input.problems.is_empty() {
            self.input_state = Some(config_state::State::Valid);
        } else {
            let summary: Vec<String> = input.problems.iter().map(ToString::to_string).collect();
            error!(errors = %summary.join("; "), "speaker: objects left out until they are fixed");
            self.input_state = Some(config_state::State::Invalid(summary.join("\n")));
        }
        if let Some(l2) = &mut self.l2
            && let Err(error) = l2.update_membership(&input)
        {
            error!(%error, "speaker: layer 2 membership not started");
        }
        self.input = Some(input);
        self.reconcile_bgp();
        // After the render: it may have cleared or started an extras check.
        self.publish_state();
        self.reconcile_l2();
    }

    /// ConfigurationState `speaker-<node>` and the status API's configuration: the input's
    /// problems and the refused extras'.
    fn publish_state(&self) {
        let Some(input_state) = &self.input_state else {
            return;
        };
        let extras = self.bgp.as_ref().and_then(BgpSide::extras_problem);
        let state = match (input_state, extras) {
            (state, None) => state.clone(),
            (config_state::State::Valid, Some(extras)) => config_state::State::Invalid(extras),
            (config_state::State::Invalid(problems), Some(extras)) => {
                config_state::State::Invalid(format!("{problems}\n{extras}"))
            }
        };
        if let Some(api) = &self.status_api {
            api.set_configuration(match &state {
                config_state::State::Valid => Ok(()),
                config_state::State::Invalid(problems) => Err(problems.clone()),
            });
        }
        if let Some(cluster) = &self.cluster {
            cluster.config_state.send_if_modified(|old| {
                let changed = old.as_ref() != Some(&state);
                *old = Some(state);
                changed
            });
        }
    }

    /// FRR's verdict on new extras: accepted ones are applied, refused ones reported.
    fn extras_checked(&mut self, verdict: bgp::ExtrasVerdict) {
        let Some(bgp) = &mut self.bgp else { return };
        match bgp.extras_checked(verdict) {
            bgp::ExtrasOutcome::Accepted => self.reconcile_bgp(),
            bgp::ExtrasOutcome::Refused => {
                if let Some(problem) = bgp.extras_problem() {
                    error!(error = %problem, "speaker: bgpextras refused; FRR keeps the last good configuration");
                }
            }
            bgp::ExtrasOutcome::Stale => return,
        }
        self.publish_state();
    }

    fn reconcile_bgp(&mut self) {
        let (Some(bgp), Some(input)) = (&mut self.bgp, &self.input) else {
            return;
        };
        let extras = bgp::extras_from(&input.resources, &self.options.namespace);
        let announced = match bgp.reconcile(&self.options.node, input, extras.as_deref()) {
            Ok(announced) => announced,
            Err(error) => {
                error!(%error, "speaker: cannot render frr.conf; FRR keeps its configuration");
                return;
            }
        };
        self.events
            .announced(Protocol::Bgp, announced.services(), |key| {
                reference(input, key)
            });
        if let Some(cluster) = &self.cluster {
            let objects = status::bgp_objects(&self.options.node, &announced.peers);
            send_if_changed(&cluster.bgp_status, objects);
        }
    }

    fn reconcile_l2(&mut self) {
        let Some(l2) = &mut self.l2 else { return };
        if !l2.reconcile(self.input.as_ref()) {
            return;
        }
        if let Some(api) = &mut self.status_api {
            api.set_layer2(l2);
        }
        let owned: BTreeMap<ServiceKey, Vec<String>> = l2
            .owned()
            .iter()
            .map(|(key, ips)| {
                let mut names: BTreeSet<String> = BTreeSet::new();
                for (_, interfaces) in ips {
                    names.extend(l2.interface_names(interfaces));
                }
                (key.clone(), names.into_iter().collect())
            })
            .collect();
        let input = self.input.as_ref();
        self.events
            .announced(Protocol::Layer2, owned.keys().cloned().collect(), |key| {
                input.and_then(|i| reference(i, key))
            });
        if let Some(cluster) = &self.cluster {
            let objects = status::l2_objects(&self.options.node, &owned, |key| {
                input.and_then(|i| owner(i, key))
            });
            send_if_changed(&cluster.l2_status, objects);
        }
    }

    async fn shutdown(self) {
        if let Some(api) = self.status_api {
            api.shutdown();
        }
        if let Some(l2) = self.l2 {
            l2.shutdown();
        }
        if let Some(bgp) = self.bgp {
            bgp.shutdown().await;
        }
        if let Some(cluster) = self.cluster {
            for task in cluster.tasks {
                task.abort();
            }
        }
    }
}

fn send_if_changed<T: PartialEq>(tx: &watch::Sender<T>, value: T) {
    tx.send_if_modified(|old| {
        let changed = *old != value;
        if changed {
            *old = value;
        }
        changed
    });
}

fn service<'a>(input: &'a Input, key: &ServiceKey) -> Option<&'a Service> {
    input.resources.services.iter().find(|s| {
        s.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
            && s.metadata.name.as_deref() == Some(key.name.as_str())
    })
}

/// The Service's object reference, for its events.
fn reference(input: &Input, key: &ServiceKey) -> Option<ObjectReference> {
    service(input, key).map(|s| s.object_ref(&()))
}

/// The Service as the owner of its status objects.
fn owner(input: &Input, key: &ServiceKey) -> Option<OwnerReference> {
    service(input, key)
        .and_then(|s| s.controller_owner_ref(&()))
        .map(|o| OwnerReference {
            controller: None,
            block_owner_deletion: None,
            ..o
        })
}
