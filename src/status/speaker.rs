//! The `metallb.status.v1.Speaker` service: what FRR really does on this node, read through
//! vtysh (`show bgp vrf V neighbors json`, `show bfd vrf V peers json`, and per established
//! peer its Adj-RIB-Out, `show bgp vrf V ipv4|ipv6 unicast neighbors P advertised-routes json`:
//! one call per peer, not per Service, so 1,000 Services cost no more than one).
//!
//! [`collect`] asks FRR and reduces the answers to a [`NodeSnapshot`] that only changes when
//! something real changes (times are kept as "since", not "for"); [`poll`] publishes it on a
//! watch channel; [`SpeakerService`] translates it to proto. Layer 2 ownership and the FRR
//! apply status are filled by whoever runs the speaker (see [`NodeSnapshot`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::{Notify, watch};
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status, server::NamedService, service::RoutesBuilder};

use super::{
    proto::{
        self, BgpState,
        speaker_server::{Speaker, SpeakerServer},
    },
    server::{Listener, ServeError},
};
use crate::frr::vtysh::{Afi, BfdPeer, BgpNeighbor, Vtysh, VtyshError};

/// One BGP session as FRR reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BgpSessionState {
    /// VRF (`default` for the default one).
    pub vrf: String,
    /// Neighbor address or interface.
    pub peer: String,
    /// Our AS.
    pub local_asn: u32,
    /// The peer's AS.
    pub remote_asn: u32,
    /// FRR's state word (`Established`, `Active`, `Idle (Admin)`, ...).
    pub state: String,
    /// Unix time the session was established (0 when it is not).
    pub established_since: u64,
    /// Why the last session ended.
    pub last_error: String,
    /// Sessions established so far.
    pub established_count: u64,
    /// Sessions dropped so far.
    pub dropped_count: u64,
    /// Prefixes sent, over every address family.
    pub prefixes_sent: u64,
    /// Prefixes accepted, over every address family.
    pub prefixes_received: u64,
    /// BFD status as bgpd sees it, empty without BFD.
    pub bfd_status: String,
}

impl BgpSessionState {
    /// Reduces FRR's neighbor JSON.
    pub fn from_frr(vrf: &str, peer: &str, neighbor: &BgpNeighbor) -> Self {
        let established = neighbor.is_established();
        BgpSessionState {
            vrf: vrf.to_string(),
            peer: peer.to_string(),
            local_asn: neighbor.local_as,
            remote_asn: neighbor.remote_as,
            state: neighbor.bgp_state.clone(),
            established_since: if established {
                neighbor.bgp_timer_up_established_epoch
            } else {
                0
            },
            last_error: neighbor.last_reset_due_to.clone(),
            established_count: neighbor.connections_established,
            dropped_count: neighbor.connections_dropped,
            prefixes_sent: neighbor
                .address_family_info
                .values()
                .map(|af| af.sent_prefix_counter)
                .sum(),
            prefixes_received: neighbor
                .address_family_info
                .values()
                .map(|af| af.accepted_prefix_counter)
                .sum(),
            bfd_status: neighbor
                .peer_bfd_info
                .as_ref()
                .map(|bfd| bfd.status.clone())
                .unwrap_or_default(),
        }
    }
}

/// One BFD session as bfdd reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BfdSessionState {
    /// The session as bfdd reports it; `uptime`/`downtime` are cleared (see `since`).
    pub peer: BfdPeer,
    /// Unix time of the last up/down change, from `now - uptime|downtime` when collected.
    pub since: u64,
}

/// Everything the Speaker service answers from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSnapshot {
    /// The node's name.
    pub node: String,
    /// BGP sessions, in VRF then peer order.
    pub bgp: Vec<BgpSessionState>,
    /// BFD sessions.
    pub bfd: Vec<BfdSessionState>,
    /// Per (VRF, prefix): the peers FRR advertised it to.
    pub advertised: BTreeMap<(String, String), BTreeSet<String>>,
    /// Why FRR could not be (fully) asked; the lists above hold what could be read.
    pub frr_error: Option<String>,
    /// The addresses this node answers ARP/NDP for, in address then interface order (filled
    /// by the speaker, not by [`collect`]).
    pub layer2: Vec<Layer2Owned>,
    /// The FRR apply loop's state (filled by the speaker; `None` without BGP).
    pub frr_apply: Option<FrrApply>,
    /// Whether the speaker's last configuration was valid (`None`: none read yet).
    pub configuration: Option<Result<(), String>>,
}

impl NodeSnapshot {
    /// Takes the FRR-derived part of `fresh` (what [`collect`] fills); returns whether it
    /// changed. The speaker-filled part is kept.
    pub fn take_frr(&mut self, fresh: NodeSnapshot) -> bool {
        let changed = self.bgp != fresh.bgp
            || self.bfd != fresh.bfd
            || self.advertised != fresh.advertised
            || self.frr_error != fresh.frr_error;
        if changed {
            self.bgp = fresh.bgp;
            self.bfd = fresh.bfd;
            self.advertised = fresh.advertised;
            self.frr_error = fresh.frr_error;
        }
        changed
    }
}

/// One address this node owns with layer 2, on one interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Layer2Owned {
    /// The address.
    pub address: std::net::IpAddr,
    /// The interface answered on.
    pub interface: String,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// Unix time this node took the address.
    pub since: u64,
    /// Unix time of the last gratuitous ARP / unsolicited NA: the announcer sends them when it
    /// takes an address, so this is `since` until the announcer reports repeats.
    pub last_announcement: u64,
}

/// The FRR apply loop's state, reduced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrrApply {
    /// Unix time of the last successful apply (0: none yet).
    pub last_applied: u64,
    /// The path the last apply took (`vty`, `reload`, ...).
    pub path: String,
    /// A newer configuration waits to be applied.
    pub pending: bool,
    /// Why the last attempt failed; empty when it succeeded.
    pub last_error: String,
}

/// Parses `... neighbors P advertised-routes json`: the prefixes of the peer's Adj-RIB-Out.
pub fn parse_advertised_routes(text: &str) -> Result<Vec<String>, VtyshError> {
    #[derive(Deserialize)]
    struct AdvertisedRoutes {
        #[serde(default, rename = "advertisedRoutes")]
        advertised_routes: BTreeMap<String, serde::de::IgnoredAny>,
        warning: Option<String>,
    }
    let command = "show bgp neighbors advertised-routes json";
    let parsed: AdvertisedRoutes =
        serde_json::from_str(text).map_err(|source| VtyshError::Json {
            command: command.into(),
            source,
        })?;
    if let Some(warning) = parsed.warning {
        return Err(VtyshError::Warning {
            command: command.into(),
            warning,
        });
    }
    Ok(parsed.advertised_routes.into_keys().collect())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Asks FRR for every VRF's BGP and BFD sessions and every established peer's Adj-RIB-Out.
/// Failures are collected in `frr_error`; what could be read is kept.
pub async fn collect(vtysh: &Vtysh, node: &str) -> NodeSnapshot {
    let mut snapshot = NodeSnapshot {
        node: node.to_string(),
        ..Default::default()
    };
    let mut errors = Vec::new();
    let vrfs = match vtysh.bgp_vrfs().await {
        Ok(vrfs) => vrfs,
        Err(e) => {
            errors.push(e.to_string());
            Vec::new()
        }
    };
    let now = unix_now();
    for vrf in &vrfs {
        match vtysh.bgp_neighbors(vrf).await {
            Ok(neighbors) => {
                for (peer, neighbor) in &neighbors {
                    snapshot
                        .bgp
                        .push(BgpSessionState::from_frr(vrf, peer, neighbor));
                    if neighbor.is_established() {
                        advertised_to(vtysh, vrf, peer, &mut snapshot.advertised, &mut errors)
                            .await;
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
        match vtysh.bfd_peers(vrf).await {
            Ok(peers) => snapshot
                .bfd
                .extend(peers.into_iter().map(|p| bfd_state(p, now))),
            // bfdd may not run at all (BFD unused): not an error worth reporting per poll.
            Err(e) => tracing::debug!(error = %e, vrf, "no BFD sessions"),
        }
    }
    if !errors.is_empty() {
        snapshot.frr_error = Some(errors.join("; "));
    }
    snapshot
}

async fn advertised_to(
    vtysh: &Vtysh,
    vrf: &str,
    peer: &str,
    advertised: &mut BTreeMap<(String, String), BTreeSet<String>>,
    errors: &mut Vec<String>,
) {
    for afi in [Afi::Ipv4, Afi::Ipv6] {
        let cmd = format!(
            "show bgp vrf {vrf} {} unicast neighbors {peer} advertised-routes json",
            afi.as_str()
        );
        let prefixes = match vtysh.command(&cmd).await {
            Ok(text) => parse_advertised_routes(&text),
            Err(e) => Err(e),
        };
        match prefixes {
            Ok(prefixes) => {
                for prefix in prefixes {
                    advertised
                        .entry((vrf.to_string(), prefix))
                        .or_default()
                        .insert(peer.to_string());
                }
            }
            // A peer without this address family answers with a warning.
            Err(VtyshError::Warning { .. }) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
}

fn bfd_state(mut peer: BfdPeer, now: u64) -> BfdSessionState {
    let ago = peer.uptime.or(peer.downtime).unwrap_or(0);
    peer.uptime = None;
    peer.downtime = None;
    BfdSessionState {
        peer,
        since: now.saturating_sub(ago),
    }
}

/// How long after the last call the poller keeps asking FRR (Watch streams count as calls for
/// as long as they are open): an unwatched node costs no vtysh process.
const IDLE_AFTER: Duration = Duration::from_secs(60);

/// How long a call after an idle spell waits for a fresh FRR answer.
const FRESH_WAIT: Duration = Duration::from_secs(5);

/// Who wants fresh FRR answers: the calls and open Watch streams of the service, read by
/// [`poll`].
#[derive(Clone, Debug)]
pub struct Demand {
    inner: Arc<DemandInner>,
}

#[derive(Debug)]
struct DemandInner {
    /// Unix milliseconds of the last call (0: none yet).
    last_call_ms: AtomicU64,
    /// Open Watch streams.
    watching: AtomicUsize,
    /// Whether a poller runs (without one, e.g. BGP off, there is no fresh answer to wait for).
    polled: AtomicBool,
    /// Wakes an idle poller.
    wake: Notify,
    /// Counts finished polls.
    rounds: watch::Sender<u64>,
}

impl Default for Demand {
    fn default() -> Self {
        Demand {
            inner: Arc::new(DemandInner {
                last_call_ms: AtomicU64::new(0),
                watching: AtomicUsize::new(0),
                polled: AtomicBool::new(false),
                wake: Notify::new(),
                rounds: watch::channel(0).0,
            }),
        }
    }
}

/// Holds a Watch stream's demand while it is open.
struct Watching(Demand);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.inner.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Demand {
    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn idle(&self) -> bool {
        let last = self.inner.last_call_ms.load(Ordering::Relaxed);
        self.inner.watching.load(Ordering::Relaxed) == 0
            && Self::now_ms().saturating_sub(last) > IDLE_AFTER.as_millis() as u64
    }

    /// Records a call; after an idle spell, wakes the poller and waits (up to [`FRESH_WAIT`])
    /// for its next round so the answer is not an old one.
    async fn call(&self) {
        let was_idle = self.idle();
        self.inner
            .last_call_ms
            .store(Self::now_ms(), Ordering::Relaxed);
        if was_idle && self.inner.polled.load(Ordering::Relaxed) {
            let mut rounds = self.inner.rounds.subscribe();
            rounds.borrow_and_update();
            self.inner.wake.notify_one();
            let _ = tokio::time::timeout(FRESH_WAIT, rounds.changed()).await;
        }
    }

    fn watch(&self) -> Watching {
        self.inner.watching.fetch_add(1, Ordering::Relaxed);
        Watching(self.clone())
    }
}

/// Collects every `interval` while there is [`Demand`] and publishes when something changed,
/// until the receivers are gone.
pub async fn poll(
    vtysh: Vtysh,
    node: String,
    interval: Duration,
    tx: Arc<watch::Sender<NodeSnapshot>>,
    demand: Demand,
) {
    demand.inner.polled.store(true, Ordering::Relaxed);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !tx.is_closed() {
        if demand.idle() {
            // Woken by a call, or every interval to notice closed receivers.
            let _ = tokio::time::timeout(interval, demand.inner.wake.notified()).await;
            if demand.idle() {
                continue;
            }
        } else {
            ticker.tick().await;
        }
        let snapshot = collect(&vtysh, &node).await;
        tx.send_if_modified(|old| old.take_frr(snapshot));
        demand.inner.rounds.send_modify(|n| *n += 1);
    }
}

// === translation to proto ===

fn bgp_state(state: &str) -> BgpState {
    match state {
        "Idle" => BgpState::Idle,
        "Connect" => BgpState::Connect,
        "Active" => BgpState::Active,
        "OpenSent" => BgpState::OpenSent,
        "OpenConfirm" => BgpState::OpenConfirm,
        "Established" => BgpState::Established,
        _ => BgpState::Other,
    }
}

/// One BGP session in proto; `now` turns "since" into an uptime.
pub fn bgp_session_to_proto(s: &BgpSessionState, now: u64) -> proto::BgpSession {
    let mut out = proto::BgpSession {
        peer: s.peer.clone(),
        vrf: s.vrf.clone(),
        local_asn: s.local_asn,
        remote_asn: s.remote_asn,
        state_text: s.state.clone(),
        uptime_seconds: if s.established_since > 0 {
            now.saturating_sub(s.established_since)
        } else {
            0
        },
        last_error: s.last_error.clone(),
        established_count: s.established_count,
        dropped_count: s.dropped_count,
        prefixes_sent: s.prefixes_sent,
        prefixes_received: s.prefixes_received,
        bfd_status: s.bfd_status.clone(),
        ..Default::default()
    };
    out.set_state(bgp_state(&s.state));
    out
}

/// One BFD session in proto.
pub fn bfd_session_to_proto(s: &BfdSessionState, now: u64) -> proto::BfdSession {
    let ago = now.saturating_sub(s.since);
    let up = s.peer.is_up();
    proto::BfdSession {
        peer: s.peer.peer.clone(),
        local: s.peer.local.clone(),
        vrf: s.peer.vrf.clone(),
        interface: s.peer.interface.clone(),
        multihop: s.peer.multihop,
        status: s.peer.status.clone(),
        uptime_seconds: if up { ago } else { 0 },
        downtime_seconds: if up { 0 } else { ago },
        diagnostic: s.peer.diagnostic.clone(),
        receive_interval_ms: s.peer.receive_interval,
        transmit_interval_ms: s.peer.transmit_interval,
        detect_multiplier: s.peer.detect_multiplier,
    }
}

/// The advertisements in proto; `address` keeps only prefixes containing it (empty: all).
pub fn advertisements_to_proto(
    snapshot: &NodeSnapshot,
    address: Option<std::net::IpAddr>,
) -> Vec<proto::BgpAdvertisement> {
    snapshot
        .advertised
        .iter()
        .filter(|((_, prefix), _)| match address {
            None => true,
            Some(ip) => prefix
                .parse::<ipnet::IpNet>()
                .is_ok_and(|net| net.contains(&ip)),
        })
        .map(|((vrf, prefix), peers)| proto::BgpAdvertisement {
            prefix: prefix.clone(),
            vrf: vrf.clone(),
            advertised_to: peers.iter().cloned().collect(),
            best_path: true,
        })
        .collect()
}

/// The whole node in proto.
pub fn node_to_proto(snapshot: &NodeSnapshot, now: u64, generation: u64) -> proto::NodeStatus {
    proto::NodeStatus {
        node: snapshot.node.clone(),
        bgp: snapshot
            .bgp
            .iter()
            .map(|s| bgp_session_to_proto(s, now))
            .collect(),
        bfd: snapshot
            .bfd
            .iter()
            .map(|s| bfd_session_to_proto(s, now))
            .collect(),
        advertisements: advertisements_to_proto(snapshot, None),
        layer2: snapshot.layer2.iter().map(layer2_to_proto).collect(),
        frr: snapshot.frr_apply.as_ref().map(|a| proto::FrrApplyStatus {
            last_applied_unix: a.last_applied,
            path: a.path.clone(),
            pending: a.pending,
            last_error: a.last_error.clone(),
        }),
        configuration: snapshot
            .configuration
            .as_ref()
            .map(|c| proto::ConfigurationState {
                valid: c.is_ok(),
                error: c.as_ref().err().cloned().unwrap_or_default(),
            }),
        frr_error: snapshot.frr_error.clone().unwrap_or_default(),
        generation,
    }
}

fn layer2_to_proto(owned: &Layer2Owned) -> proto::Layer2Ownership {
    proto::Layer2Ownership {
        address: owned.address.to_string(),
        interface: owned.interface.clone(),
        namespace: owned.namespace.clone(),
        name: owned.name.clone(),
        since_unix: owned.since,
        last_announcement_unix: owned.last_announcement,
    }
}

/// The Speaker service over a node's snapshot channel.
#[derive(Clone, Debug)]
pub struct SpeakerService {
    snapshot: watch::Receiver<NodeSnapshot>,
    demand: Demand,
}

impl SpeakerService {
    /// Serves what [`poll`] (or a test) publishes on `snapshot`; calls are recorded in
    /// `demand`, which the poller reads.
    pub fn new(snapshot: watch::Receiver<NodeSnapshot>, demand: Demand) -> Self {
        SpeakerService { snapshot, demand }
    }

    /// Serves the service, reflection and health on `listener` until `shutdown`.
    pub async fn serve(
        self,
        listener: Listener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let mut routes = RoutesBuilder::default();
        routes.add_service(SpeakerServer::new(self));
        listener
            .serve(
                <SpeakerServer<SpeakerService> as NamedService>::NAME,
                routes,
                shutdown,
            )
            .await
    }
}

#[tonic::async_trait]
impl Speaker for SpeakerService {
    async fn get_node(
        &self,
        _request: Request<proto::GetNodeRequest>,
    ) -> Result<Response<proto::NodeStatus>, Status> {
        self.demand.call().await;
        let snapshot = self.snapshot.borrow().clone();
        Ok(Response::new(node_to_proto(&snapshot, unix_now(), 0)))
    }

    async fn list_sessions(
        &self,
        request: Request<proto::ListSessionsRequest>,
    ) -> Result<Response<proto::ListSessionsResponse>, Status> {
        let vrf = request.into_inner().vrf;
        self.demand.call().await;
        let snapshot = self.snapshot.borrow().clone();
        let now = unix_now();
        Ok(Response::new(proto::ListSessionsResponse {
            bgp: snapshot
                .bgp
                .iter()
                .filter(|s| vrf.is_empty() || s.vrf == vrf)
                .map(|s| bgp_session_to_proto(s, now))
                .collect(),
            bfd: snapshot
                .bfd
                .iter()
                .filter(|s| vrf.is_empty() || s.peer.vrf == vrf)
                .map(|s| bfd_session_to_proto(s, now))
                .collect(),
        }))
    }

    async fn list_advertisements(
        &self,
        request: Request<proto::ListAdvertisementsRequest>,
    ) -> Result<Response<proto::ListAdvertisementsResponse>, Status> {
        let address = request.into_inner().address;
        let address = if address.is_empty() {
            None
        } else {
            Some(
                address
                    .parse()
                    .map_err(|e| Status::invalid_argument(format!("address: {address:?}: {e}")))?,
            )
        };
        self.demand.call().await;
        let snapshot = self.snapshot.borrow().clone();
        Ok(Response::new(proto::ListAdvertisementsResponse {
            advertisements: advertisements_to_proto(&snapshot, address),
        }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<proto::NodeStatus, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        _request: Request<proto::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.demand.call().await;
        let watching = self.demand.watch();
        let stream =
            WatchStream::new(self.snapshot.clone())
                .enumerate()
                .map(move |(generation, s)| {
                    // The stream owns `watching`: the poller keeps polling until it is dropped.
                    let _ = &watching;
                    Ok(node_to_proto(&s, unix_now(), generation as u64))
                });
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frr::vtysh::{parse_bfd_peers, parse_bgp_neighbors};

    const NEIGHBORS: &str = include_str!("../../tests/fixtures/frr/node1-bgp-neighbors.json");
    const BFD: &str = include_str!("../../tests/fixtures/frr/node1-bfd-peers.json");
    // Hand-written in the shape frr-reference §4 documents for FRR 8.4 and 10
    // (`advertisedRoutes{prefix: {...}}`, `totalPrefixCounter`); not captured from a live FRR.
    const ADVERTISED: &str =
        include_str!("../../tests/fixtures/frr/node1-advertised-routes-ipv4.json");

    fn node1(now: u64) -> NodeSnapshot {
        let neighbors = parse_bgp_neighbors(NEIGHBORS).unwrap();
        let mut advertised = BTreeMap::new();
        for prefix in parse_advertised_routes(ADVERTISED).unwrap() {
            advertised
                .entry(("default".to_string(), prefix))
                .or_insert_with(BTreeSet::new)
                .insert("10.77.0.1".to_string());
        }
        NodeSnapshot {
            node: "node1".into(),
            bgp: neighbors
                .iter()
                .map(|(peer, n)| BgpSessionState::from_frr("default", peer, n))
                .collect(),
            bfd: parse_bfd_peers(BFD)
                .unwrap()
                .into_iter()
                .map(|p| bfd_state(p, now))
                .collect(),
            advertised,
            ..Default::default()
        }
    }

    #[test]
    fn bgp_sessions_translate_from_frr_neighbors() {
        let established = 1_795_679_687;
        let status = node_to_proto(&node1(established + 60), established + 3_600, 7);
        assert_eq!(status.node, "node1");
        assert_eq!(status.generation, 7);
        let v4 = status.bgp.iter().find(|s| s.peer == "10.77.0.1").unwrap();
        assert_eq!(v4.state(), BgpState::Established);
        assert_eq!(v4.state_text, "Established");
        assert_eq!((v4.local_asn, v4.remote_asn), (64500, 64501));
        assert_eq!(v4.uptime_seconds, 3_600, "now minus the established epoch");
        assert_eq!(v4.last_error, "BGP Notification send");
        assert_eq!((v4.established_count, v4.dropped_count), (2, 1));
        assert_eq!((v4.prefixes_sent, v4.prefixes_received), (2, 0));
        assert_eq!(v4.bfd_status, "Up");
        let v6 = status.bgp.iter().find(|s| s.peer == "fd00:77::1").unwrap();
        assert_eq!(v6.prefixes_sent, 1);
    }

    #[test]
    fn a_session_that_is_not_established_has_no_uptime() {
        let mut neighbors = parse_bgp_neighbors(NEIGHBORS).unwrap();
        let neighbor = neighbors.get_mut("10.77.0.1").unwrap();
        neighbor.bgp_state = "Idle (Admin)".into();
        let state = BgpSessionState::from_frr("red", "10.77.0.1", neighbor);
        let proto = bgp_session_to_proto(&state, 1_795_679_687 + 100);
        assert_eq!(proto.state(), BgpState::Other);
        assert_eq!(proto.state_text, "Idle (Admin)");
        assert_eq!(proto.uptime_seconds, 0);
        assert_eq!(proto.vrf, "red");
    }

    #[test]
    fn bfd_sessions_keep_their_since_across_polls() {
        let first = node1(1_000);
        // A second later bfdd reports uptime 2 instead of 1: the same session, the same since.
        let mut later = parse_bfd_peers(BFD).unwrap();
        for p in &mut later {
            p.uptime = Some(2);
        }
        let later: Vec<BfdSessionState> = later.into_iter().map(|p| bfd_state(p, 1_001)).collect();
        assert_eq!(first.bfd, later);
        let proto = bfd_session_to_proto(&first.bfd[1], 1_010);
        assert_eq!(proto.peer, "10.77.0.1");
        assert_eq!(proto.status, "up");
        assert_eq!(proto.uptime_seconds, 11);
        assert_eq!(proto.downtime_seconds, 0);
        assert_eq!(proto.receive_interval_ms, 300);
        assert_eq!(proto.detect_multiplier, 3);
    }

    #[test]
    fn advertisements_are_the_peers_adj_rib_out_filtered_by_address() {
        let snapshot = node1(0);
        let all = advertisements_to_proto(&snapshot, None);
        let prefixes: Vec<&str> = all.iter().map(|a| a.prefix.as_str()).collect();
        assert_eq!(prefixes, ["198.51.100.10/32", "198.51.100.11/32"]);
        let one = advertisements_to_proto(&snapshot, Some("198.51.100.11".parse().unwrap()));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].advertised_to, ["10.77.0.1"]);
        assert!(
            advertisements_to_proto(&snapshot, Some("203.0.113.1".parse().unwrap())).is_empty()
        );
    }

    #[test]
    fn advertised_routes_warning_and_garbage_are_errors() {
        assert!(matches!(
            parse_advertised_routes(r#"{"warning":"No such neighbor or address family"}"#),
            Err(VtyshError::Warning { .. })
        ));
        assert!(matches!(
            parse_advertised_routes("% Unknown command"),
            Err(VtyshError::Json { .. })
        ));
        assert_eq!(parse_advertised_routes("{}").unwrap(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn collect_reports_a_failing_vtysh_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("vtysh");
        std::fs::write(&fake, "#!/bin/sh\necho 'vtysh: daemons down' >&2\nexit 1\n").unwrap();
        let mut perms = std::fs::metadata(&fake).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&fake, perms).unwrap();
        let vtysh = Vtysh::new(None).with_binary(&fake);
        let snapshot = collect(&vtysh, "node1").await;
        assert!(snapshot.bgp.is_empty());
        let error = snapshot.frr_error.expect("the failure is reported");
        assert!(error.contains("daemons down"), "{error}");
    }

    #[tokio::test]
    async fn frr_is_polled_only_while_someone_asks() {
        let dir = tempfile::tempdir().unwrap();
        let calls = dir.path().join("calls");
        let fake = dir.path().join("vtysh");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho x >> {}\necho '{{}}'\n", calls.display()),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&fake).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&fake, perms).unwrap();
        let count = || {
            std::fs::read_to_string(&calls)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let (tx, rx) = watch::channel(NodeSnapshot::default());
        let demand = Demand::default();
        let service = SpeakerService::new(rx, demand.clone());
        tokio::spawn(poll(
            Vtysh::new(None).with_binary(&fake),
            "node1".into(),
            Duration::from_millis(20),
            Arc::new(tx),
            demand,
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(count(), 0, "nobody asked: vtysh never ran");
        service
            .get_node(Request::new(proto::GetNodeRequest {}))
            .await
            .unwrap();
        assert!(count() > 0, "the call waited for a fresh poll");
    }

    #[tokio::test]
    async fn watch_streams_a_session_going_down() {
        let (tx, rx) = watch::channel(node1(0));
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr();
        tokio::spawn(
            SpeakerService::new(rx, Demand::default()).serve(listener, std::future::pending()),
        );
        let mut client = proto::speaker_client::SpeakerClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let mut stream = client
            .watch(proto::WatchRequest {})
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert!(first.bgp.iter().all(|s| s.state() == BgpState::Established));
        tx.send_modify(|s| {
            s.bgp[0].state = "Active".into();
            s.bgp[0].established_since = 0;
        });
        let next = tokio::time::timeout(Duration::from_secs(1), stream.message())
            .await
            .expect("the change arrives within 1 s")
            .unwrap()
            .unwrap();
        assert_eq!(next.bgp[0].state(), BgpState::Active);
        let sessions = client
            .list_sessions(proto::ListSessionsRequest {
                vrf: "default".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(sessions.bgp.len(), 2);
        assert_eq!(sessions.bfd.len(), 2);
        let bad = client
            .list_advertisements(proto::ListAdvertisementsRequest {
                address: "not-an-ip".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    }
}
