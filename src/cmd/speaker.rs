//! `metallb speaker`: the BGP side of the speaker without Kubernetes. It renders one node's
//! frr.conf from manifests in a directory and keeps a running FRR in sync through the apply
//! loop.
//!
//! ```text
//!  DIR (poll every --poll-ms, SIGHUP) ─► changed? ─► render_node() ─► ApplyHandle::set
//!                                                                        │
//!  SIGTERM / SIGINT ─► stop polling, finish the apply in flight, exit 0   ▼
//!                                             apply loop ─► FRR; status ─► STATE_DIR/status.json
//! ```
//!
//! A render error keeps the previous configuration on FRR; it is logged and retried at the next
//! change. Rendering is the same pipeline as `metallb plan -o frr --node NAME`.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use crate::{
    cli::SpeakerArgs,
    config,
    core::frr::NodeFacts,
    frr::{
        apply::{Applier, ApplierConfig, write_atomic},
        apply_loop::{self, ApplyStatus, LoopConfig},
        render,
    },
    manifest,
    plan::{self, PlanOptions},
    speaker::source::ApiSource,
};

/// How long an input must stay the same before it is rendered.
const SETTLE: Duration = Duration::from_millis(10);

/// Why the node's frr.conf could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// The input could not be read or parsed.
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    /// The configuration in the manifests is invalid.
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<config::ConfigError>),
    /// The template failed.
    #[error(transparent)]
    Render(#[from] render::RenderError),
}

/// Where the desired frr.conf comes from.
enum Source {
    Manifests(PathBuf),
    File(PathBuf),
}

impl Source {
    /// The current input, read whole: comparing contents (not mtimes) never misses a change
    /// within one timestamp tick, and the files are small.
    fn snapshot(&self) -> Result<Vec<(String, String)>, manifest::ManifestError> {
        match self {
            Source::Manifests(dir) => manifest::read_paths(std::slice::from_ref(dir)),
            Source::File(file) => manifest::read_paths(std::slice::from_ref(file)),
        }
    }
}

pub(super) fn run(args: &SpeakerArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &SpeakerArgs) -> anyhow::Result<ExitCode> {
    let source = match (&args.manifests, &args.frr_conf_file) {
        (_, Some(file)) => Source::File(file.clone()),
        (Some(dir), None) => Source::Manifests(dir.clone()),
        (None, None) if args.from_api => Source::Manifests(PathBuf::new()),
        (None, None) => anyhow::bail!("--manifests, --frr-conf-file or --from-api is required"),
    };
    let state_dir = args.state_dir.clone().unwrap_or_else(|| {
        PathBuf::from("/run/metallb").join(args.frr_pathspace.as_deref().unwrap_or("default"))
    });
    let applier = Applier::new(ApplierConfig::new(
        args.frr_pathspace.clone(),
        state_dir.clone(),
    ));
    let handle = apply_loop::spawn(
        applier,
        LoopConfig {
            debounce: Duration::from_millis(args.debounce_ms),
            resync: (args.frr_resync_secs > 0).then(|| Duration::from_secs(args.frr_resync_secs)),
            ..LoopConfig::default()
        },
    );
    let status_task = tokio::spawn(publish_status(
        handle.status(),
        state_dir.join("status.json"),
    ));

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_millis(args.poll_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let node = args.node_name.clone();
    let facts = NodeFacts {
        hostname: args.frr_hostname.clone().unwrap_or_else(nodename),
        log_level: args.frr_log_level,
        log_file: args.frr_log_file.clone(),
        router_id: args.router_id,
        // Filled per render from the Secrets in the input (`config::secrets`).
        passwords: Default::default(),
    };
    info!(node = %node, hostname = %facts.hostname, state_dir = %state_dir.display(), "speaker: started");
    let mut last_input: Option<Vec<(String, String)>> = None;
    if args.from_api {
        let client = crate::k8s::client(
            args.kube.kubeconfig.as_deref(),
            args.kube.context.as_deref(),
        )
        .await?;
        let recorder = kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: "metallb-speaker".into(),
                instance: Some(node.clone()),
            },
        );
        let (bgp_status_tx, bgp_status_rx) = tokio::sync::watch::channel(Default::default());
        let bgp_status = tokio::spawn(crate::speaker::bgp_status::publish(
            client.clone(),
            args.namespace.clone(),
            node.clone(),
            bgp_status_rx,
        ));
        let (state_tx, state_rx) = tokio::sync::watch::channel(None);
        let config_state = tokio::spawn(crate::k8s::config_state::publish(
            client.clone(),
            args.namespace.clone(),
            format!("speaker-{node}"),
            "speaker",
            crate::speaker::bgp_status::FIELD_MANAGER.into(),
            state_rx,
        ));
        let mut source = ApiSource::new(client, &args.namespace);
        let mut last: Option<String> = None;
        let mut announced = std::collections::BTreeSet::new();
        loop {
            tokio::select! {
                () = source.changed() => {}
                _ = term.recv() => { info!("speaker: SIGTERM, stopping"); break }
                _ = int.recv() => { info!("speaker: SIGINT, stopping"); break }
            }
            let resources = source.resources();
            let assigned = source.assigned();
            match render_resources(
                &resources,
                Vec::new(),
                &node,
                &facts,
                args.lb_class.as_deref(),
                Some(&assigned),
            ) {
                Ok((text, announcement)) => {
                    state_tx.send_if_modified(|old| {
                        let valid = Some(crate::k8s::config_state::State::Valid);
                        let changed = *old != valid;
                        *old = valid;
                        changed
                    });
                    if last.as_deref() != Some(text.as_str()) {
                        handle.set(Arc::<str>::from(text.as_str()));
                        last = Some(text);
                    }
                    let peers = crate::speaker::service_peers(&announcement, &assigned);
                    bgp_status_tx.send_if_modified(|old| {
                        let changed = *old != peers;
                        if changed {
                            *old = peers;
                        }
                        changed
                    });
                    let now = crate::speaker::announced_services(&announcement, &assigned);
                    for (ns, name) in crate::speaker::newly_announced(&mut announced, now) {
                        let Some(svc) = source.service(&ns, &name) else {
                            continue;
                        };
                        info!(event = "serviceAnnounced", service = %format!("{ns}/{name}"), protocol = "bgp", "service has IP, announcing");
                        let reference = kube::Resource::object_ref(&*svc, &());
                        let recorder = recorder.clone();
                        let note = format!("announcing from node \"{node}\" with protocol \"bgp\"");
                        tokio::spawn(async move {
                            let event = kube::runtime::events::Event {
                                type_: kube::runtime::events::EventType::Normal,
                                reason: crate::speaker::REASON_NODE_ASSIGNED.into(),
                                note: Some(note),
                                action: "Announce".into(),
                                secondary: None,
                            };
                            if let Err(error) = recorder.publish(&event, &reference).await {
                                warn!(%error, "speaker: nodeAssigned event not published");
                            }
                        });
                    }
                }
                Err(e) => {
                    error!(error = %e, "speaker: cannot render frr.conf; FRR keeps its configuration");
                    let summary = match &e {
                        SpeakerError::Invalid(errors) => errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("\n"),
                        other => other.to_string(),
                    };
                    state_tx.send_replace(Some(crate::k8s::config_state::State::Invalid(summary)));
                }
            }
        }
        bgp_status.abort();
        config_state.abort();
    }
    if !args.from_api {
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                _ = hup.recv() => { info!("speaker: SIGHUP, re-reading"); true }
                _ = term.recv() => { info!("speaker: SIGTERM, stopping"); break }
                _ = int.recv() => { info!("speaker: SIGINT, stopping"); break }
            };
            let input = match source.snapshot() {
                Ok(input) => input,
                Err(e) => {
                    if forced || last_input.is_some() {
                        warn!(error = %e, "speaker: cannot read the input; FRR keeps its configuration");
                    }
                    last_input = None;
                    continue;
                }
            };
            if !forced && last_input.as_ref() == Some(&input) {
                continue;
            }
            // A file caught half-written can still parse (a truncated list of Services), and
            // rendering it would withdraw routes for a moment. Take a change only once it reads
            // the same twice, SETTLE apart; writers that rename into place never hit this.
            tokio::time::sleep(SETTLE).await;
            if source.snapshot().ok().as_ref() != Some(&input) {
                continue;
            }
            match render(&source, &input, &node, &facts, args.lb_class.as_deref()) {
                Ok(text) => handle.set(Arc::<str>::from(text)),
                Err(e) => {
                    error!(error = %e, "speaker: cannot render frr.conf; FRR keeps its configuration")
                }
            }
            last_input = Some(input);
        }
    }
    let status = handle.status();
    handle.shutdown().await?;
    write_status(&status.borrow(), &state_dir.join("status.json"));
    status_task.abort();
    Ok(ExitCode::SUCCESS)
}

/// The node's frr.conf from the input.
fn render(
    source: &Source,
    input: &[(String, String)],
    node: &str,
    facts: &NodeFacts,
    lb_class: Option<&str>,
) -> Result<String, SpeakerError> {
    match source {
        Source::File(_) => Ok(input.first().map(|(_, t)| t.clone()).unwrap_or_default()),
        Source::Manifests(_) => render_node(input, node, facts, lb_class),
    }
}

/// Manifests → validated config → allocation plan → this node's frr.conf (the same pipeline as
/// `metallb plan -o frr --node NODE`).
pub fn render_node(
    input: &[(String, String)],
    node: &str,
    facts: &NodeFacts,
    lb_class: Option<&str>,
) -> Result<String, SpeakerError> {
    let mut docs = Vec::new();
    for (file, text) in input {
        docs.extend(manifest::parse(file, text)?);
    }
    let (resources, errors) = config::Resources::from_documents(&docs);
    render_resources(&resources, errors, node, facts, lb_class, None).map(|(text, _)| text)
}

/// Objects → validated config → allocation plan → this node's frr.conf. With `assigned` (the
/// addresses in each Service's status, from the API), a Service whose planned addresses differ
/// from what the controller assigned is not announced.
pub fn render_resources(
    resources: &config::Resources,
    mut errors: Vec<config::ConfigError>,
    node: &str,
    facts: &NodeFacts,
    lb_class: Option<&str>,
    assigned: Option<&std::collections::BTreeMap<(String, String), crate::controller::Desired>>,
) -> Result<(String, crate::core::bgp::NodeAnnouncement), SpeakerError> {
    let resources = resources.clone();
    let built = config::build(&resources, &config::BuildOptions::default());
    let config = match built {
        Ok(config) if errors.is_empty() => config,
        Ok(_) => return Err(SpeakerError::Invalid(errors)),
        Err(mut more) => {
            errors.append(&mut more);
            return Err(SpeakerError::Invalid(errors));
        }
    };
    let options = PlanOptions {
        lb_class: lb_class.map(String::from),
        nodes: vec![node.to_string()],
    };
    let mut plan = plan::plan(&resources, &config, &options);
    if let Some(assigned) = assigned {
        plan.services.retain(|svc| {
            assigned
                .get(&(svc.namespace.clone(), svc.name.clone()))
                .is_some_and(|d| {
                    d.ips
                        .iter()
                        .map(ToString::to_string)
                        .eq(svc.ips.iter().cloned())
                })
        });
        // Announcements are recomputed from the filtered services by frr_config.
        plan.nodes.clear();
    }
    let (passwords, errors) = config::secrets::peer_passwords(&resources, &config);
    if !errors.is_empty() {
        return Err(SpeakerError::Invalid(errors));
    }
    let facts = NodeFacts {
        passwords,
        ..facts.clone()
    };
    let announcement = plan::announcement(&resources, &config, &plan, node);
    let frr = crate::core::frr::build(
        &config,
        &plan::node(&resources, node),
        &announcement,
        &facts,
    );
    Ok((render::render(&frr)?, announcement))
}

/// The OS nodename (`uname -n`), which FRR prints as its hostname.
fn nodename() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Writes every status change to `path` (JSON), for operators and tests.
async fn publish_status(mut rx: tokio::sync::watch::Receiver<ApplyStatus>, path: PathBuf) {
    while rx.changed().await.is_ok() {
        let status = rx.borrow_and_update().clone();
        write_status(&status, &path);
    }
}

fn write_status(status: &ApplyStatus, path: &Path) {
    match serde_json::to_string_pretty(status) {
        Ok(json) => {
            if let Err(e) = write_atomic(path, &json) {
                warn!(error = %e, "speaker: cannot write status");
            }
        }
        Err(e) => warn!(error = %e, "speaker: cannot encode status"),
    }
}
