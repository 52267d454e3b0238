//! The BGP side of the speaker: the node's frr.conf from the input, handed to the apply loop
//! when it changes, and which Services it announces to which peers (for `nodeAssigned` and
//! ServiceBGPStatus).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tracing::warn;

use super::input::Input;
use crate::{
    core::{
        bgp::NodeAnnouncement,
        frr::NodeFacts,
        service::{Addresses, ServiceKey},
    },
    frr::{
        apply::{Applier, ApplierConfig, write_atomic},
        apply_loop::{self, ApplyHandle, ApplyStatus, LoopConfig},
        render,
    },
    plan,
};

/// Settings of the BGP side.
#[derive(Clone, Debug)]
pub struct BgpOptions {
    /// FRR pathspace (`vtysh -N`).
    pub pathspace: Option<String>,
    /// Where the rendered frr.conf and `status.json` go.
    pub state_dir: PathBuf,
    /// The apply loop's debounce.
    pub debounce: Duration,
    /// Drift check period while idle.
    pub resync: Option<Duration>,
    /// Hostname, log level, router ID (passwords are filled from the input).
    pub facts: NodeFacts,
}

/// What the node announces with BGP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BgpAnnounced {
    /// For each announced Service, the BGPPeer names it is advertised to (sorted).
    pub peers: BTreeMap<ServiceKey, Vec<String>>,
}

impl BgpAnnounced {
    /// The announced Services.
    pub fn services(&self) -> BTreeSet<ServiceKey> {
        self.peers.keys().cloned().collect()
    }
}

/// The running BGP side.
pub struct BgpSide {
    handle: ApplyHandle,
    status_task: tokio::task::JoinHandle<()>,
    status_path: PathBuf,
    facts: NodeFacts,
    last: Option<String>,
}

impl BgpSide {
    /// Starts the apply loop on the current runtime.
    pub fn start(options: &BgpOptions, metrics: crate::metrics::apply::ApplyMetrics) -> BgpSide {
        let applier = Applier::new(ApplierConfig::new(
            options.pathspace.clone(),
            options.state_dir.clone(),
        ));
        let handle = apply_loop::spawn_with_metrics(
            applier,
            LoopConfig {
                debounce: options.debounce,
                resync: options.resync,
                ..LoopConfig::default()
            },
            metrics,
        );
        let status_path = options.state_dir.join("status.json");
        let status_task = tokio::spawn(publish_status(handle.status(), status_path.clone()));
        BgpSide {
            handle,
            status_task,
            status_path,
            facts: options.facts.clone(),
            last: None,
        }
    }

    /// Hands an already rendered frr.conf to the apply loop (`--frr-conf-file`).
    pub fn set_text(&mut self, text: String) {
        if self.last.as_deref() != Some(text.as_str()) {
            self.handle.set(Arc::<str>::from(text.as_str()));
            self.last = Some(text);
        }
    }

    /// Renders the node's frr.conf from `input` and applies it if it changed. A template error
    /// keeps FRR's configuration.
    pub fn reconcile(
        &mut self,
        node: &str,
        input: &Input,
    ) -> Result<BgpAnnounced, render::RenderError> {
        let facts = NodeFacts {
            passwords: input.passwords.clone(),
            ..self.facts.clone()
        };
        let (text, announcement) = render_node(input, node, &facts)?;
        self.set_text(text);
        Ok(BgpAnnounced {
            peers: service_peers(&announcement, &input.addresses),
        })
    }

    /// The apply loop's status, for the status API.
    pub fn apply_status(&self) -> tokio::sync::watch::Receiver<ApplyStatus> {
        self.handle.status()
    }

    /// Finishes the apply in flight and writes the final status.
    pub async fn shutdown(self) {
        let status = self.handle.status();
        if let Err(error) = self.handle.shutdown().await {
            warn!(%error, "speaker: the apply loop ended abnormally");
        }
        write_status(&status.borrow(), &self.status_path);
        self.status_task.abort();
    }
}

/// The node's frr.conf and BGP announcement for `input`: the same builder as `metallb plan -o
/// frr --node NODE`, over the addresses the input carries (no allocation here).
pub fn render_node(
    input: &Input,
    node: &str,
    facts: &NodeFacts,
) -> Result<(String, NodeAnnouncement), render::RenderError> {
    let services = plan::announced_services(&input.resources, &input.addresses);
    let me = plan::node(&input.resources, node);
    let announcement = crate::core::bgp::announce(&input.config, &me, &services);
    let frr = crate::core::frr::build(&input.config, &me, &announcement, facts);
    Ok((render::render(&frr)?, announcement))
}

/// For each Service this node announces, the BGPPeer names it is advertised to: those whose
/// prefixes cover one of its addresses.
pub fn service_peers(
    announcement: &NodeAnnouncement,
    addresses: &Addresses,
) -> BTreeMap<ServiceKey, Vec<String>> {
    let mut out: BTreeMap<ServiceKey, Vec<String>> = BTreeMap::new();
    for peer in &announcement.bgp {
        for (key, (_, ips)) in addresses {
            if ips
                .iter()
                .any(|ip| peer.prefixes.iter().any(|r| r.prefix.contains(ip)))
            {
                let peers = out.entry(key.clone()).or_default();
                if !peers.contains(&peer.peer) {
                    peers.push(peer.peer.clone());
                }
            }
        }
    }
    for peers in out.values_mut() {
        peers.sort();
    }
    out
}

/// Writes every apply status change to `path` (JSON), for operators and tests.
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
