//! The BGP side of the speaker: the node's frr.conf from the input, handed to the apply loop
//! when it changes, and which Services it announces to which peers (for `nodeAssigned` and
//! ServiceBGPStatus).
//!
//! Raw FRR extras (upstream's ConfigMap `bgpextras`, key `extras`) are appended to every render.
//! Unlike upstream, a new extras text is first checked by FRR (`vtysh -C`) together with the
//! render, in a task whose verdict comes back as [`ExtrasVerdict`]: until it is accepted the
//! renders carry the last accepted extras, and a refused text is a configuration error
//! (ConfigurationState `speaker-<node>`, log) while the last good configuration keeps running.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::api::core::v1::ConfigMap;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::input::Input;
use crate::{
    config::Resources,
    core::{
        bgp::NodeAnnouncement,
        frr::NodeFacts,
        service::{Addresses, ServiceKey},
    },
    frr::{
        apply::{self, Applier, ApplierConfig, write_atomic},
        apply_loop::{self, ApplyHandle, ApplyStatus, LoopConfig},
        render,
        vtysh::Vtysh,
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

/// FRR's verdict on one `bgpextras` text (checked together with a render).
#[derive(Debug)]
pub struct ExtrasVerdict {
    /// The extras text checked.
    pub extras: String,
    /// `Err`: what FRR said.
    pub result: Result<(), String>,
}

/// What a verdict did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtrasOutcome {
    /// The text is now appended to every render.
    Accepted,
    /// The text is refused ([`BgpSide::extras_problem`] says why).
    Refused,
    /// The verdict was on a text no longer wanted: nothing changed.
    Stale,
}

/// The `bgpextras` text as FRR judged it.
#[derive(Debug, Default)]
struct Extras {
    /// Accepted by FRR: appended to every render.
    good: Option<String>,
    /// Being checked.
    checking: Option<String>,
    /// Refused, with what FRR said: left out until it changes.
    refused: Option<(String, String)>,
}

/// The running BGP side.
pub struct BgpSide {
    handle: ApplyHandle,
    status_task: tokio::task::JoinHandle<()>,
    status_path: PathBuf,
    facts: NodeFacts,
    last: Option<String>,
    extras: Extras,
    /// Checks the extras (`vtysh -C`, in the state directory).
    checker: Vtysh,
    state_dir: PathBuf,
    verdicts: mpsc::UnboundedSender<ExtrasVerdict>,
}

impl BgpSide {
    /// Starts the apply loop on the current runtime; FRR's verdicts on `bgpextras` texts go to
    /// `verdicts` (hand them back with [`BgpSide::extras_checked`]).
    pub fn start(
        options: &BgpOptions,
        metrics: crate::metrics::apply::ApplyMetrics,
        verdicts: mpsc::UnboundedSender<ExtrasVerdict>,
    ) -> BgpSide {
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
            extras: Extras::default(),
            checker: Vtysh::new(options.pathspace.clone()),
            state_dir: options.state_dir.clone(),
            verdicts,
        }
    }

    /// Hands an already rendered frr.conf to the apply loop (`--frr-conf-file`).
    pub fn set_text(&mut self, text: String) {
        if self.last.as_deref() != Some(text.as_str()) {
            self.handle.set(Arc::<str>::from(text.as_str()));
            self.last = Some(text);
        }
    }

    /// Forgets the text last handed to the apply loop, so that the next one is handed over even
    /// when unchanged (SIGHUP: the apply loop checks FRR against it again).
    pub fn forget_last(&mut self) {
        self.last = None;
    }

    /// Renders the node's frr.conf from `input`, appends the accepted extras and applies it if
    /// it changed; `extras` (the `bgpextras` text) not yet judged by FRR is sent to be checked.
    /// A template error keeps FRR's configuration.
    pub fn reconcile(
        &mut self,
        node: &str,
        input: &Input,
        extras: Option<&str>,
    ) -> Result<BgpAnnounced, render::RenderError> {
        let facts = NodeFacts {
            passwords: input.passwords.clone(),
            ..self.facts.clone()
        };
        let (text, announcement) = render_node(input, node, &facts)?;
        match extras {
            None => self.extras = Extras::default(),
            Some(wanted) if self.extras.good.as_deref() == Some(wanted) => {
                self.extras.checking = None;
                self.extras.refused = None;
            }
            Some(wanted) => self.check_extras(&text, wanted),
        }
        let text = match &self.extras.good {
            Some(good) => render::with_extras(text, good),
            None => text,
        };
        self.set_text(text);
        Ok(BgpAnnounced {
            peers: service_peers(&announcement, &input.addresses),
        })
    }

    /// Starts FRR's check of `extras` appended to `rendered`, unless it is being checked or was
    /// refused already.
    fn check_extras(&mut self, rendered: &str, extras: &str) {
        let refused = self.extras.refused.as_ref().map(|(text, _)| text.as_str());
        if self.extras.checking.as_deref() == Some(extras) || refused == Some(extras) {
            return;
        }
        self.extras.checking = Some(extras.to_string());
        self.extras.refused = None;
        let text = render::with_extras(rendered.to_string(), extras);
        let (checker, dir, verdicts) = (
            self.checker.clone(),
            self.state_dir.clone(),
            self.verdicts.clone(),
        );
        let extras = extras.to_string();
        tokio::spawn(async move {
            let result = apply::check_text(&checker, &dir, &text)
                .await
                .map_err(|e| match e {
                    apply::ApplyError::Validate { output } => output.trim().to_string(),
                    other => other.to_string(),
                });
            let _ = verdicts.send(ExtrasVerdict { extras, result });
        });
    }

    /// Takes FRR's verdict on an extras text. On [`ExtrasOutcome::Accepted`] the caller renders
    /// again to apply it; a verdict on a text no longer wanted is [`ExtrasOutcome::Stale`].
    pub fn extras_checked(&mut self, verdict: ExtrasVerdict) -> ExtrasOutcome {
        if self.extras.checking.as_deref() != Some(verdict.extras.as_str()) {
            return ExtrasOutcome::Stale;
        }
        self.extras.checking = None;
        match verdict.result {
            Ok(()) => {
                info!("speaker: FRR accepts the bgpextras configuration; appending it");
                self.extras.good = Some(verdict.extras);
                ExtrasOutcome::Accepted
            }
            Err(output) => {
                self.extras.refused = Some((verdict.extras, output));
                ExtrasOutcome::Refused
            }
        }
    }

    /// The configuration error of refused extras (`Kind/name: field: message`), if any.
    pub fn extras_problem(&self) -> Option<String> {
        self.extras.refused.as_ref().map(|(_, output)| {
            format!(
                "ConfigMap/{}: data.{}: FRR refuses it ({}); {}",
                render::EXTRAS_CONFIG_MAP,
                render::EXTRAS_KEY,
                output.lines().collect::<Vec<_>>().join(" | "),
                if self.extras.good.is_some() {
                    "the last accepted extras stay in use"
                } else {
                    "no extras are applied"
                }
            )
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

/// The raw FRR extras: key `extras` of ConfigMap `bgpextras` in `namespace` (a ConfigMap
/// without a namespace counts: manifests read without a cluster).
pub fn extras_from(resources: &Resources, namespace: &str) -> Option<String> {
    resources
        .config_maps
        .iter()
        .find(|cm: &&ConfigMap| {
            cm.metadata.name.as_deref() == Some(render::EXTRAS_CONFIG_MAP)
                && cm
                    .metadata
                    .namespace
                    .as_deref()
                    .is_none_or(|ns| ns == namespace)
        })?
        .data
        .as_ref()?
        .get(render::EXTRAS_KEY)
        .filter(|text| !text.trim().is_empty())
        .cloned()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(yaml: &str) -> Resources {
        let docs = crate::manifest::parse("test.yaml", yaml).unwrap();
        let (resources, errors) = Resources::from_documents(&docs);
        assert!(errors.is_empty(), "{errors:?}");
        resources
    }

    #[test]
    fn extras_come_from_key_extras_of_bgpextras_in_metallbs_namespace() {
        let r = resources(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bgpextras, namespace: elsewhere}\n\
             data: {extras: wrong namespace}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: metallb-system}\n\
             data: {extras: wrong name}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bgpextras, namespace: metallb-system}\n\
             data: {extras: \"ip prefix-list x seq 5 permit 10.0.0.0/8\\n\"}\n",
        );
        assert_eq!(
            extras_from(&r, "metallb-system").as_deref(),
            Some("ip prefix-list x seq 5 permit 10.0.0.0/8\n")
        );
        assert_eq!(extras_from(&r, "other-ns"), None);
        let blank = resources(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bgpextras}\ndata: {extras: \"  \\n\"}\n",
        );
        assert_eq!(extras_from(&blank, "metallb-system"), None);
    }
}
