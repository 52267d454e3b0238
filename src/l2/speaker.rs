//! The layer 2 speaker of one node: elect, announce what this node wins, re-elect whenever the
//! set of live speakers changes.
//!
//! ```text
//!   membership ──live set──► reconcile ──elect_all──► owned (service → IPs, interfaces)
//!                                │                        │ diff with what is announced
//!                                │                        ▼
//!                                │         announcer.set_balancer / delete_balancer
//!                                └──► status file (owned services, counters)
//! ```
//!
//! The input (Services with their status addresses, EndpointSlices, Nodes, metallb.io objects)
//! arrives on a watch channel: once from manifests, or whenever the cluster changes with
//! `--from-api`. Every [`Change`] is also handed to a callback (Kubernetes events).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::PathBuf,
    sync::mpsc,
    time::{Duration, Instant},
};

use serde::Serialize;
use tracing::{info, warn};

use super::{
    announcer::{Announcer, Counters},
    cluster,
    fence::Fence,
};
use crate::{
    config::Resources,
    core::{config::Config, l2::Interfaces, service::ServiceKey},
};

/// What this node announces for one Service.
pub type Owned = BTreeMap<ServiceKey, Vec<(IpAddr, Interfaces)>>;

/// How often the speaker re-evaluates without a membership change (fence, status file).
pub const TICK: Duration = Duration::from_millis(100);

/// How often interfaces are re-scanned (upstream: 10 s).
const INTERFACE_SCAN: Duration = Duration::from_secs(10);

/// A change of what this node announces, logged as upstream's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// This node now announces the Service (`nodeAssigned`).
    Assigned(ServiceKey),
    /// The addresses or interfaces changed while staying on this node (no event).
    Updated(ServiceKey),
    /// This node stopped announcing the Service (`serviceWithdrawn`).
    Withdrawn(ServiceKey),
}

/// The changes from `before` to `after`. `nodeAssigned` is emitted only for a Service that was
/// not announced here before, not on every reconcile (upstream #3135).
pub fn changes(before: &Owned, after: &Owned) -> Vec<Change> {
    let mut out = Vec::new();
    for (key, ips) in after {
        match before.get(key) {
            None => out.push(Change::Assigned(key.clone())),
            Some(old) if old != ips => out.push(Change::Updated(key.clone())),
            Some(_) => {}
        }
    }
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        out.push(Change::Withdrawn(key.clone()));
    }
    out
}

/// What this node should announce given the live speakers (`None`: membership off, every node
/// assumed to run a speaker). Services whose advertisement names only interfaces this node does
/// not have are left out with an `announceFailed` warning.
pub fn reconcile(
    node: &str,
    resources: &Resources,
    config: &Config,
    assigned: &BTreeMap<ServiceKey, (String, Vec<IpAddr>)>,
    live: Option<&BTreeSet<String>>,
    ignore_exclude_lb: bool,
    local_interfaces: &[String],
) -> Owned {
    let nodes = cluster::nodes(resources);
    let Some(me) = nodes.iter().find(|n| n.name == node) else {
        return Owned::new();
    };
    let mut owned = Owned::new();
    for e in cluster::elect_all(resources, config, assigned, live, ignore_exclude_lb) {
        let Ok(election) = &e.result else { continue };
        if election.owner() != node {
            continue;
        }
        let ifs = election.interfaces_for(me);
        if let Interfaces::Only(set) = &ifs
            && !set.iter().any(|i| local_interfaces.contains(i))
        {
            warn!(service = %e.key, interfaces = %ifs, node, "event=announceFailed the interfaces specified to announce the service do not exist on this node");
            continue;
        }
        owned.insert(
            e.key.clone(),
            e.ips.iter().map(|ip| (*ip, ifs.clone())).collect(),
        );
    }
    owned
}

/// One consistent view of the input: the objects and the configuration built from them.
#[derive(Debug)]
pub struct Input {
    /// The objects.
    pub resources: Resources,
    /// The configuration built from them (the last valid one).
    pub config: Config,
}

/// Speaker settings.
#[derive(Debug)]
pub struct Options {
    /// This node's name.
    pub node: String,
    /// `--ignore-exclude-lb`.
    pub ignore_exclude_lb: bool,
    /// `--lb-class`.
    pub lb_class: Option<String>,
    /// Where to write the status JSON (owned services and counters), if anywhere.
    pub status_file: Option<PathBuf>,
    /// Metric handles (registered nowhere by default).
    pub metrics: crate::metrics::layer2::L2Metrics,
}

/// The speaker's status file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    node: &'a str,
    live_speakers: Option<&'a BTreeSet<String>>,
    fenced: bool,
    services: BTreeMap<String, Vec<String>>,
    counters: BTreeMap<IpAddr, Counters>,
}

/// Runs until `stop` is set (SIGTERM) or the membership channel closes: elect, announce,
/// re-elect on every change. `live_changes` carries the live speaker sets; `initial_live` is
/// `None` without membership.
#[allow(clippy::too_many_arguments)]
pub fn run(
    options: &Options,
    input: &mut tokio::sync::watch::Receiver<std::sync::Arc<Input>>,
    on_change: &dyn Fn(&Change),
    announcer: &Announcer,
    initial_live: Option<BTreeSet<String>>,
    live_changes: &mpsc::Receiver<BTreeSet<String>>,
    fence: Option<&Fence>,
    stop: &std::sync::atomic::AtomicBool,
) {
    let mut current = input.borrow_and_update().clone();
    let mut assigned = cluster::assigned_from_status(
        &current.resources,
        &current.config,
        options.lb_class.as_deref(),
    );
    let mut live = initial_live;
    let mut owned = Owned::new();
    let mut last_scan = Instant::now();
    let mut last_status = Instant::now() - Duration::from_secs(10);
    let mut fenced = false;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if input.has_changed().unwrap_or(false) {
            current = input.borrow_and_update().clone();
            assigned = cluster::assigned_from_status(
                &current.resources,
                &current.config,
                options.lb_class.as_deref(),
            );
        }
        let now_fenced = match (fence, &live) {
            (Some(f), Some(live)) => f.fenced(live.len()),
            _ => false,
        };
        if now_fenced != fenced {
            if now_fenced {
                warn!(node = %options.node, "event=fenced no peer and no witness reachable: withdrawing every announcement");
            } else {
                info!(node = %options.node, "event=unfenced peers or witness reachable again");
            }
            fenced = now_fenced;
        }
        let next = if fenced {
            Owned::new()
        } else {
            reconcile(
                &options.node,
                &current.resources,
                &current.config,
                &assigned,
                live.as_ref(),
                options.ignore_exclude_lb,
                &announcer.interfaces(),
            )
        };
        for change in changes(&owned, &next) {
            on_change(&change);
            options.metrics.change(&change);
            match change {
                Change::Assigned(key) => {
                    info!(service = %key, node = %options.node, protocol = "layer2", "event=nodeAssigned announcing from node {} with protocol layer2", options.node);
                    announcer.set_balancer(&key.to_string(), next[&key].clone());
                }
                Change::Updated(key) => {
                    announcer.set_balancer(&key.to_string(), next[&key].clone());
                }
                Change::Withdrawn(key) => {
                    info!(service = %key, reason = "notOwner", "event=serviceWithdrawn");
                    announcer.delete_balancer(&key.to_string());
                }
            }
        }
        owned = next;
        options
            .metrics
            .state(live.as_ref().map(BTreeSet::len), fenced, owned.len());
        if let Some(path) = &options.status_file
            && last_status.elapsed() >= Duration::from_millis(100)
        {
            last_status = Instant::now();
            write_status(path, options, live.as_ref(), fenced, &owned, announcer);
        }
        // Wait for a membership change, or time out to rescan interfaces and refresh status.
        match live_changes.recv_timeout(TICK) {
            Ok(set) => {
                info!(live = ?set, "event=membershipChanged forcing sync");
                live = Some(set);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) if live.is_some() => return,
            // Without membership the sender is dropped at once; keep serving.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(TICK);
            }
        }
        if last_scan.elapsed() >= INTERFACE_SCAN {
            last_scan = Instant::now();
            if let Err(e) = announcer.refresh_interfaces() {
                warn!(error = %e, "interface rescan failed");
            }
        }
    }
}

fn write_status(
    path: &PathBuf,
    options: &Options,
    live: Option<&BTreeSet<String>>,
    fenced: bool,
    owned: &Owned,
    announcer: &Announcer,
) {
    let status = Status {
        node: &options.node,
        live_speakers: live,
        fenced,
        services: owned
            .iter()
            .map(|(k, ips)| {
                (
                    k.to_string(),
                    ips.iter().map(|(ip, _)| ip.to_string()).collect(),
                )
            })
            .collect(),
        counters: announcer.counters(),
    };
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(&status).expect("invariant: status serializes");
    if std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        warn!(path = %path.display(), "writing the status file failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(entries: &[(&str, &str)]) -> Owned {
        entries
            .iter()
            .map(|(name, ip)| {
                (
                    ServiceKey::new("default", *name),
                    vec![(ip.parse().unwrap(), Interfaces::All)],
                )
            })
            .collect()
    }

    #[test]
    fn node_assigned_only_on_change() {
        let a = owned(&[("web", "10.0.0.1")]);
        assert_eq!(
            changes(&Owned::new(), &a),
            vec![Change::Assigned(ServiceKey::new("default", "web"))]
        );
        // Same again: nothing, so no repeated nodeAssigned events.
        assert_eq!(changes(&a, &a), vec![]);
        let b = owned(&[("web", "10.0.0.2")]);
        assert_eq!(
            changes(&a, &b),
            vec![Change::Updated(ServiceKey::new("default", "web"))]
        );
        assert_eq!(
            changes(&a, &Owned::new()),
            vec![Change::Withdrawn(ServiceKey::new("default", "web"))]
        );
    }
}
