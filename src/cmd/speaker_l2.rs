//! `metallb speaker-l2`: the layer 2 speaker of one node, fed from manifests or, with
//! `--from-api`, from the Kubernetes API (then `nodeAssigned` is a Kubernetes event too).
//!
//! The announcer and membership are threads; the API side runs on its own thread with a
//! tokio runtime and hands the speaker loop a new [`Input`] whenever the cluster changes
//! (an invalid configuration keeps the last valid one).

use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool, mpsc},
    time::Duration,
};

use anyhow::Context as _;

use super::{EXIT_INVALID, load};
use crate::{
    cli::SpeakerL2Args,
    config,
    core::l2::FenceRule,
    l2::{
        announcer::Announcer,
        fence::{Fence, Witness},
        interface::{self, DEFAULT_EXCLUDED},
        membership::{Membership, Settings, Timing},
        speaker::{self, Change, Input, Options},
    },
};

/// How long a starting speaker waits for its first peer before electing alone.
const JOIN_WAIT: Duration = Duration::from_millis(1500);

pub(super) fn run(args: &SpeakerL2Args) -> anyhow::Result<ExitCode> {
    if args.probe_rtt_ms >= args.probe_period_ms {
        anyhow::bail!("--probe-rtt-ms must be less than --probe-period-ms");
    }
    let (mut input, events) = if args.from_api {
        let (input, events) = api::start(args)?;
        (input, Some(events))
    } else {
        let (resources, mut errors, _) = match load(&args.paths) {
            Ok(loaded) => loaded,
            Err(code) => return Ok(code),
        };
        let config = match config::build(&resources, &config::BuildOptions::default()) {
            Ok(config) if errors.is_empty() => config,
            Ok(_) => return Ok(invalid(&mut errors)),
            Err(mut build_errors) => {
                errors.append(&mut build_errors);
                return Ok(invalid(&mut errors));
            }
        };
        // Manifests are read once; the speaker loop treats the closed channel as "no change".
        let (_, rx) = tokio::sync::watch::channel(Arc::new(Input { resources, config }));
        (rx, None)
    };
    if !input
        .borrow()
        .resources
        .nodes
        .iter()
        .any(|n| n.metadata.name.as_deref() == Some(args.node_name.as_str()))
    {
        tracing::warn!(node = %args.node_name, "no Node object of this name: this speaker is not elected until one exists");
    }
    let patterns = args
        .exclude_interfaces
        .clone()
        .unwrap_or_else(|| DEFAULT_EXCLUDED.iter().map(|s| s.to_string()).collect());
    let exclude = interface::compile_exclusions(&patterns)?;
    // SIGTERM/SIGINT end the loop so that membership says goodbye (the others fail over at
    // once instead of after the failure detector's timeout).
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let announcer = Announcer::start(exclude).context("starting the ARP/NDP responders")?;
    let mut registry = crate::metrics::registry();
    let l2_metrics =
        crate::metrics::layer2::L2Metrics::register(&mut registry, announcer.counters_reader());
    // The first valid configuration is in (manifests read, or the API's first one): ready.
    // The layer 2 speaker has no client on this thread, so no HTTPS listener.
    // As in the other components, a listener that cannot bind is logged, never fatal.
    if let Err(error) = crate::metrics::server::serve_on_thread(
        args.metrics.serve_config(None)?,
        Arc::new(registry),
        crate::metrics::Health::default(),
    ) {
        tracing::error!(%error, "metrics: listeners not started");
    }

    let (tx, rx) = mpsc::channel();
    let (_membership, initial_live) = match args.member_bind {
        Some(bind) => {
            let secret = args
                .member_secret
                .clone()
                .context("--member-bind needs --member-secret (or METALLB_ML_SECRET_KEY)")?;
            let settings = Settings {
                node: args.node_name.clone(),
                bind,
                seeds: args.members.clone(),
                secret: secret.into_bytes(),
                timing: Timing {
                    probe_period: Duration::from_millis(args.probe_period_ms),
                    probe_rtt: Duration::from_millis(args.probe_rtt_ms),
                    suspect_to_down: Duration::from_millis(args.suspect_to_down_ms),
                },
            };
            let peers = settings.seeds.iter().filter(|s| **s != bind).count();
            let membership = Membership::start(settings, tx).context("starting membership")?;
            // Do not elect alone before the others had a chance to answer: a restarting
            // speaker would otherwise grab (and gratuitously announce) every address for the
            // few hundred milliseconds its join takes.
            let mut live = membership.live();
            let deadline = std::time::Instant::now() + JOIN_WAIT;
            while peers > 0 && live.len() < 2 {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(set) => live = set,
                    Err(_) => break,
                }
            }
            (Some(membership), Some(live))
        }
        None => {
            drop(tx);
            (None, None)
        }
    };
    let peers = args
        .members
        .iter()
        .filter(|m| Some(**m) != args.member_bind)
        .count();
    let fence = args.fence_witness.map(|addr| {
        let deadline = Duration::from_millis(args.fence_deadline_ms);
        Fence {
            rule: FenceRule { deadline },
            // Four checks per deadline: one lost SYN does not fence.
            witness: Witness::start(addr, deadline / 4),
            configured_peers: peers,
        }
    });
    let on_change = |change: &Change| {
        if let Some(events) = &events {
            // The API thread publishes it; a full or closed channel only loses the event.
            let _ = events.send(change.clone());
        }
    };
    speaker::run(
        &Options {
            node: args.node_name.clone(),
            ignore_exclude_lb: args.ignore_exclude_lb,
            lb_class: args.lb_class.clone(),
            status_file: args.status_file.clone(),
            metrics: l2_metrics,
        },
        &mut input,
        &on_change,
        &announcer,
        initial_live,
        &rx,
        fence.as_ref(),
        &stop,
    );
    tracing::info!(node = %args.node_name, "shutting down: leaving the membership");
    Ok(ExitCode::SUCCESS)
}

fn invalid(errors: &mut Vec<config::ConfigError>) -> ExitCode {
    super::dedup(errors);
    for error in errors.iter() {
        eprintln!("{error}");
    }
    eprintln!("invalid configuration: {} problem(s)", errors.len());
    ExitCode::from(EXIT_INVALID)
}

/// The Kubernetes side of `--from-api`.
mod api {
    use std::sync::Arc;

    use anyhow::Context as _;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    use tokio::sync::{mpsc, watch};
    use tracing::{info, warn};

    use crate::{
        cli::SpeakerL2Args,
        config,
        l2::speaker::{Change, Input},
        speaker::{REASON_NODE_ASSIGNED, source::ApiSource},
    };

    /// Starts the API thread; returns once the first valid configuration is in, with the
    /// input channel and the sender for events.
    pub(super) fn start(
        args: &SpeakerL2Args,
    ) -> anyhow::Result<(watch::Receiver<Arc<Input>>, mpsc::UnboundedSender<Change>)> {
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let kubeconfig = args.kube.kubeconfig.clone();
        let context = args.kube.context.clone();
        let namespace = args.namespace.clone();
        let node = args.node_name.clone();
        std::thread::Builder::new()
            .name("l2-api".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = first_tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                runtime.block_on(serve(
                    kubeconfig, context, namespace, node, first_tx, event_rx,
                ));
            })
            .context("starting the API thread")?;
        let input = first_rx
            .recv()
            .context("the API thread stopped before the first configuration")??;
        Ok((input, event_tx))
    }

    async fn serve(
        kubeconfig: Option<std::path::PathBuf>,
        context: Option<String>,
        namespace: String,
        node: String,
        first: std::sync::mpsc::Sender<anyhow::Result<watch::Receiver<Arc<Input>>>>,
        mut events: mpsc::UnboundedReceiver<Change>,
    ) {
        let client = match crate::k8s::client(kubeconfig.as_deref(), context.as_deref()).await {
            Ok(c) => c,
            Err(e) => {
                let _ = first.send(Err(e.into()));
                return;
            }
        };
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "metallb-speaker".into(),
                instance: Some(node.clone()),
            },
        );
        info!(node = %node, namespace = %namespace, "speaker-l2: reading the cluster");
        let mut source = ApiSource::new(client, &namespace);
        let mut input: Option<watch::Sender<Arc<Input>>> = None;
        let mut first = Some(first);
        loop {
            tokio::select! {
                () = source.changed() => {
                    let resources = source.resources();
                    match config::build(&resources, &config::BuildOptions::default()) {
                        Ok(config) => {
                            let next = Arc::new(Input { resources, config });
                            match &input {
                                Some(tx) => {
                                    tx.send_replace(next);
                                }
                                None => {
                                    let (tx, rx) = watch::channel(next);
                                    input = Some(tx);
                                    if let Some(first) = first.take() {
                                        let _ = first.send(Ok(rx));
                                    }
                                }
                            }
                        }
                        Err(errors) => {
                            let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
                            warn!(errors = %summary.join("; "), "speaker-l2: invalid configuration; the last valid one stays in force");
                        }
                    }
                }
                Some(change) = events.recv() => {
                    let Change::Assigned(key) = change else { continue };
                    let Some(svc) = source.service(&key.namespace, &key.name) else { continue };
                    info!(service = %key, node = %node, "speaker-l2: nodeAssigned event");
                    let reference = kube::Resource::object_ref(&*svc, &());
                    let event = Event {
                        type_: EventType::Normal,
                        reason: REASON_NODE_ASSIGNED.into(),
                        note: Some(format!("announcing from node \"{node}\" with protocol \"layer2\"")),
                        action: "Announce".into(),
                        secondary: None,
                    };
                    if let Err(error) = recorder.publish(&event, &reference).await {
                        warn!(%error, "speaker-l2: nodeAssigned event not published");
                    }
                }
            }
        }
    }
}
