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
        (None, None) => anyhow::bail!("--manifests or --frr-conf-file is required"),
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
        router_id: args.router_id,
        // Without Kubernetes there are no Secrets to read: peers with a Secret password get no
        // password line (as in `metallb plan -o frr`).
        passwords: Default::default(),
    };
    info!(node = %node, hostname = %facts.hostname, state_dir = %state_dir.display(), "speaker: started");
    let mut last_input: Option<Vec<(String, String)>> = None;
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
    let (resources, mut errors) = config::Resources::from_documents(&docs);
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
    let plan = plan::plan(&resources, &config, &options);
    let frr = plan::frr_config(&resources, &config, &plan, node, facts);
    Ok(render::render(&frr)?)
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
