//! The layer 2 side of the speaker: elect, answer ARP/NDP for what this node wins, re-elect
//! whenever the input or the set of live speakers changes.
//!
//! ```text
//!  input (Nodes' InternalIPs, memberlist Secret) ──► membership (SWIM, seeds, secret)
//!                                                        │ live speakers
//!  input (Services, EndpointSlices, config) ──► reconcile ◄┘ ──elect_all──► owned
//!                                                  │ diff with what is announced
//!                                                  ▼
//!                          announcer.set_balancer / delete_balancer; status file
//! ```
//!
//! **Finding the peers.** With `--from-api` the peers are the Nodes' InternalIPs on the
//! membership port (7946, as memberlist), not the speaker pods found by label as upstream does:
//! a speaker runs with host networking, so its pod IP is the node's InternalIP anyway, and the
//! Nodes are already watched (the election needs them) while pods would be one more watch and
//! RBAC rule. It also works where the speakers are processes in the nodes' network namespaces
//! and not pods (the lab and the demo). A node without a speaker is a seed nobody answers at;
//! membership, not the seed list, says who is alive. Added and removed Nodes change the seeds
//! of the running agent; a restarted speaker joins with a new incarnation; none of that
//! restarts the others.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Node;
use regex::Regex;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::input::Input;
use crate::{
    config::Resources,
    core::{
        config::Config,
        l2::{FenceRule, Interfaces},
        service::{Addresses, ServiceKey},
    },
    l2::{
        announcer::{Announcer, AnnouncerError, Counters},
        cluster,
        fence::{Fence, Witness},
        membership::{Membership, MembershipError, Settings, Timing},
    },
};

/// What this node announces for one Service.
pub type Owned = BTreeMap<ServiceKey, Vec<(IpAddr, Interfaces)>>;

/// How often the speaker re-evaluates without a change (fence, status file).
pub const TICK: Duration = Duration::from_millis(100);

/// How often interfaces are re-scanned (upstream: 10 s).
const INTERFACE_SCAN: Duration = Duration::from_secs(10);

/// How long a starting speaker waits for its first peer before electing alone: a restarting
/// speaker would otherwise grab (and gratuitously announce) every address for the few hundred
/// milliseconds its join takes.
const JOIN_WAIT: Duration = Duration::from_millis(1500);

/// The key of the membership secret in its Secret, as upstream.
pub const SECRET_KEY: &str = "secretkey";

/// How the membership finds its peers and its secret.
#[derive(Clone, Debug)]
pub enum Discovery {
    /// Static flags (manifests mode); `None`: membership off.
    Static(Option<StaticMembers>),
    /// From the input: the Nodes' InternalIPs and the Secret `secret_name` (unless `secret` is
    /// given).
    Cluster {
        /// `--member-bind` (default `0.0.0.0:port`).
        bind: Option<SocketAddr>,
        /// The membership port on every node.
        port: u16,
        /// `--member-secret`, overriding the Secret.
        secret: Option<String>,
        /// The Secret's name in MetalLB's namespace.
        secret_name: String,
    },
}

/// Membership from flags.
#[derive(Clone, Debug)]
pub struct StaticMembers {
    /// Bind (and advertised) address.
    pub bind: SocketAddr,
    /// Seeds.
    pub members: Vec<SocketAddr>,
    /// Shared secret.
    pub secret: String,
}

/// Settings of the layer 2 side.
#[derive(Clone, Debug)]
pub struct L2Options {
    /// Interfaces never answered on.
    pub exclude: Vec<Regex>,
    /// `--ignore-exclude-lb`.
    pub ignore_exclude_lb: bool,
    /// Where to write the status JSON, if anywhere.
    pub status_file: Option<PathBuf>,
    /// Membership discovery.
    pub discovery: Discovery,
    /// Failure detector timing.
    pub timing: Timing,
    /// Partition fence: witness and deadline.
    pub fence: Option<(SocketAddr, Duration)>,
}

/// Why the layer 2 side could not start.
#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    /// The responders could not start (needs CAP_NET_RAW).
    #[error("starting the ARP/NDP responders")]
    Announcer(#[from] AnnouncerError),
    /// The membership socket could not be bound.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

/// What the membership agent runs with; a change of secret or address restarts it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    bind: SocketAddr,
    advertise: SocketAddr,
    secret: String,
}

/// The running layer 2 side.
pub struct L2Side {
    node: String,
    options: L2Options,
    announcer: Announcer,
    membership: Option<(Identity, Membership, Instant)>,
    live_tx: mpsc::UnboundedSender<BTreeSet<String>>,
    /// Live speakers (`None`: membership off, every node assumed live).
    live: Option<BTreeSet<String>>,
    seeds: Vec<SocketAddr>,
    fence: Option<Fence>,
    fenced: bool,
    metrics: crate::metrics::layer2::L2Metrics,
    owned: Owned,
    last_scan: Instant,
    last_status: Instant,
    warned_no_secret: bool,
    /// Whether this membership agent has seen a peer: from then on a smaller live set is a
    /// failure to act on at once, not a join still in progress.
    seen_peer: bool,
}

impl L2Side {
    /// Starts the responders; membership starts with the first input that has what it needs.
    /// The receiver gets the live speaker sets.
    pub fn start(
        node: &str,
        options: L2Options,
    ) -> Result<(L2Side, mpsc::UnboundedReceiver<BTreeSet<String>>), L2Error> {
        let announcer = Announcer::start(options.exclude.clone())?;
        let (live_tx, live_rx) = mpsc::unbounded_channel();
        let fence = options.fence.map(|(addr, deadline)| Fence {
            rule: FenceRule { deadline },
            // Four checks per deadline: one lost SYN does not fence.
            witness: Witness::start(addr, deadline / 4),
            configured_peers: 0,
        });
        let side = L2Side {
            node: node.to_string(),
            options,
            announcer,
            membership: None,
            live_tx,
            live: None,
            seeds: Vec::new(),
            fence,
            fenced: false,
            metrics: Default::default(),
            owned: Owned::new(),
            last_scan: Instant::now(),
            last_status: Instant::now() - Duration::from_secs(10),
            warned_no_secret: false,
            seen_peer: false,
        };
        Ok((side, live_rx))
    }

    /// Records into `metrics` from now on (registered by the caller, with
    /// [`L2Side::counters_reader`]).
    pub fn set_metrics(&mut self, metrics: crate::metrics::layer2::L2Metrics) {
        self.metrics = metrics;
    }

    /// Reads the responders' per-address counters.
    pub fn counters_reader(&self) -> crate::metrics::layer2::CountersReader {
        self.announcer.counters_reader()
    }

    /// The Services this node announces now.
    pub fn owned(&self) -> &Owned {
        &self.owned
    }

    /// The interfaces answered on for an entry of [`L2Side::owned`].
    pub fn interface_names(&self, interfaces: &Interfaces) -> Vec<String> {
        let mut names: Vec<String> = self
            .announcer
            .interfaces()
            .into_iter()
            .filter(|name| interfaces.allows(name))
            .collect();
        names.sort();
        names
    }

    /// A new live speaker set from the membership.
    pub fn set_live(&mut self, live: BTreeSet<String>) {
        info!(live = ?live, "event=membershipChanged forcing sync");
        self.seen_peer |= live.len() > 1;
        self.live = Some(live);
    }

    /// Starts, restarts or re-seeds the membership for `input`.
    pub fn update_membership(&mut self, input: &Input) -> Result<(), L2Error> {
        let (identity, seeds) = match &self.options.discovery {
            Discovery::Static(None) => return Ok(()),
            Discovery::Static(Some(s)) => (
                Identity {
                    bind: s.bind,
                    advertise: s.bind,
                    secret: s.secret.clone(),
                },
                s.members.clone(),
            ),
            Discovery::Cluster {
                bind,
                port,
                secret,
                secret_name,
            } => {
                let addresses = node_addresses(&input.resources, *port);
                let secret = secret
                    .clone()
                    .or_else(|| secret_from(&input.resources, secret_name));
                let advertise = match bind {
                    Some(b) if !b.ip().is_unspecified() => Some(*b),
                    _ => addresses.get(&self.node).copied(),
                };
                let (Some(secret), Some(advertise)) = (secret, advertise) else {
                    if !self.warned_no_secret {
                        warn!(node = %self.node, secret = %secret_name, "layer 2 membership waits for its Secret (key secretkey) and this Node's InternalIP; until then every node counts as live");
                        self.warned_no_secret = true;
                    }
                    return Ok(());
                };
                let bind = bind.unwrap_or_else(|| {
                    SocketAddr::new(
                        if advertise.is_ipv4() {
                            IpAddr::from([0, 0, 0, 0])
                        } else {
                            IpAddr::from([0u16; 8])
                        },
                        *port,
                    )
                });
                let seeds = addresses
                    .iter()
                    .filter(|(name, _)| **name != self.node)
                    .map(|(_, addr)| *addr)
                    .collect();
                (
                    Identity {
                        bind,
                        advertise,
                        secret,
                    },
                    seeds,
                )
            }
        };
        let others = seeds.iter().filter(|s| **s != identity.advertise).count();
        if let Some(fence) = &mut self.fence {
            fence.configured_peers = others;
        }
        match &self.membership {
            Some((running, membership, _)) if *running == identity => {
                if seeds != self.seeds {
                    info!(seeds = ?seeds, "membership seeds changed");
                    membership.set_seeds(seeds.clone());
                }
            }
            _ => {
                if let Some((_, old, _)) = self.membership.take() {
                    info!("membership settings changed: rejoining");
                    drop(old);
                }
                let settings = Settings {
                    node: self.node.clone(),
                    bind: identity.bind,
                    advertise: identity.advertise,
                    seeds: seeds.clone(),
                    secret: identity.secret.clone().into_bytes(),
                    timing: self.options.timing,
                };
                info!(bind = %identity.bind, advertise = %identity.advertise, seeds = ?seeds, "membership starting");
                let membership = Membership::start(settings, self.live_tx.clone())?;
                self.live = Some(membership.live());
                self.seen_peer = false;
                self.membership = Some((identity, membership, Instant::now()));
            }
        }
        self.seeds = seeds;
        Ok(())
    }

    /// Whether the election may run: membership off, joined, or alone for long enough.
    fn joined(&self) -> bool {
        match (&self.membership, &self.live) {
            (None, _) => true,
            (Some((identity, _, started)), _) => {
                self.seen_peer
                    || started.elapsed() >= JOIN_WAIT
                    || !self.seeds.iter().any(|s| *s != identity.advertise)
            }
        }
    }

    /// Elects and announces what this node wins; returns whether what it announces changed.
    pub fn reconcile(&mut self, input: Option<&Input>) -> bool {
        let now_fenced = match (&self.fence, &self.live) {
            (Some(f), Some(live)) => f.fenced(live.len()),
            _ => false,
        };
        if now_fenced != self.fenced {
            if now_fenced {
                warn!(node = %self.node, "event=fenced no peer and no witness reachable: withdrawing every announcement");
            } else {
                info!(node = %self.node, "event=unfenced peers or witness reachable again");
            }
            self.fenced = now_fenced;
        }
        let next = match input {
            Some(input) if !self.fenced && self.joined() => reconcile(
                &self.node,
                &input.resources,
                &input.config,
                &input.addresses,
                self.live.as_ref(),
                self.options.ignore_exclude_lb,
                &self.announcer.interfaces(),
            ),
            _ => Owned::new(),
        };
        let changed = next != self.owned;
        for (key, ips) in &next {
            if self.owned.get(key) != Some(ips) {
                self.announcer.set_balancer(&key.to_string(), ips.clone());
            }
        }
        let mut withdrawn = 0;
        for key in self.owned.keys().filter(|k| !next.contains_key(*k)) {
            self.announcer.delete_balancer(&key.to_string());
            withdrawn += 1;
        }
        let assigned = next.keys().filter(|k| !self.owned.contains_key(*k)).count();
        self.metrics.assigned(assigned);
        self.metrics.withdrawn(withdrawn);
        self.metrics.state(
            self.live.as_ref().map(BTreeSet::len),
            self.fenced,
            next.len(),
        );
        self.owned = next;
        changed
    }

    /// Periodic work: interface rescans and the status file.
    pub fn tick(&mut self) {
        if self.last_scan.elapsed() >= INTERFACE_SCAN {
            self.last_scan = Instant::now();
            if let Err(e) = self.announcer.refresh_interfaces() {
                warn!(error = %e, "interface rescan failed");
            }
        }
        if let Some(path) = &self.options.status_file
            && self.last_status.elapsed() >= TICK
        {
            self.last_status = Instant::now();
            self.write_status(path);
        }
    }

    fn write_status(&self, path: &Path) {
        let status = Status {
            node: &self.node,
            live_speakers: self.live.as_ref(),
            fenced: self.fenced,
            services: self
                .owned
                .iter()
                .map(|(k, ips)| {
                    (
                        k.to_string(),
                        ips.iter().map(|(ip, _)| ip.to_string()).collect(),
                    )
                })
                .collect(),
            counters: self.announcer.counters(),
        };
        let tmp = path.with_extension("tmp");
        let written = serde_json::to_string_pretty(&status)
            .map_err(std::io::Error::other)
            .and_then(|text| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(error) = written {
            warn!(path = %path.display(), %error, "writing the status file failed");
        }
    }

    /// Leaves the membership (the others fail over at once instead of after the failure
    /// detector's timeout) and stops answering.
    pub fn shutdown(mut self) {
        if let Some((_, membership, _)) = self.membership.take() {
            info!(node = %self.node, "shutting down: leaving the membership");
            drop(membership);
        }
    }
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

/// What this node should announce given the live speakers (`None`: membership off, every node
/// assumed to run a speaker). Services whose advertisement names only interfaces this node does
/// not have are left out with an `announceFailed` warning.
pub fn reconcile(
    node: &str,
    resources: &Resources,
    config: &Config,
    addresses: &Addresses,
    live: Option<&BTreeSet<String>>,
    ignore_exclude_lb: bool,
    local_interfaces: &[String],
) -> Owned {
    let nodes = cluster::nodes(resources);
    let Some(me) = nodes.iter().find(|n| n.name == node) else {
        return Owned::new();
    };
    let mut owned = Owned::new();
    for e in cluster::elect_all(resources, config, addresses, live, ignore_exclude_lb) {
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

/// Each Node's membership address: its first InternalIP on `port`.
pub fn node_addresses(resources: &Resources, port: u16) -> BTreeMap<String, SocketAddr> {
    resources
        .nodes
        .iter()
        .filter_map(|n| Some((n.metadata.name.clone()?, internal_ip(n)?)))
        .map(|(name, ip)| (name, SocketAddr::new(ip, port)))
        .collect()
}

fn internal_ip(node: &Node) -> Option<IpAddr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
}

/// The membership secret from Secret `name` (key `secretkey`), if present.
pub fn secret_from(resources: &Resources, name: &str) -> Option<String> {
    let secret = resources
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))?;
    if let Some(value) = secret.data.as_ref().and_then(|d| d.get(SECRET_KEY)) {
        return Some(String::from_utf8_lossy(&value.0).into_owned());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(SECRET_KEY))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::load::test_support::resources;

    #[test]
    fn peers_are_the_nodes_internal_ips_on_the_membership_port() {
        let r = resources(
            r#"
apiVersion: v1
kind: Node
metadata: {name: node1}
status:
  addresses: [{type: Hostname, address: node1}, {type: InternalIP, address: 10.77.0.11}]
---
apiVersion: v1
kind: Node
metadata: {name: node2}
status:
  addresses: [{type: ExternalIP, address: 192.0.2.1}, {type: InternalIP, address: "fd00:77::12"}]
---
apiVersion: v1
kind: Node
metadata: {name: node3}
"#,
        );
        let addrs = node_addresses(&r, 7946);
        assert_eq!(
            addrs,
            BTreeMap::from([
                ("node1".to_string(), "10.77.0.11:7946".parse().unwrap()),
                ("node2".to_string(), "[fd00:77::12]:7946".parse().unwrap()),
            ])
        );
    }

    #[test]
    fn the_secret_is_read_from_secretkey_of_the_named_secret() {
        let r = resources(
            r#"
apiVersion: v1
kind: Secret
metadata: {name: other, namespace: metallb-system}
data: {secretkey: b3RoZXI=}
---
apiVersion: v1
kind: Secret
metadata: {name: metallb-memberlist, namespace: metallb-system}
data: {secretkey: czNjcmV0}
"#,
        );
        assert_eq!(
            secret_from(&r, "metallb-memberlist").as_deref(),
            Some("s3cret")
        );
        assert_eq!(secret_from(&r, "missing"), None);
    }
}
