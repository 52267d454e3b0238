//! BGP and BFD figures from FRR itself, read off the scrape path.
//!
//! A [`poll`] task asks FRR (`vtysh ... json`) every `interval` and stores the result as the
//! latest [`Snapshot`]; a scrape only reads that snapshot ([`FrrCollector`]), so a slow or
//! stuck FRR, or an frr-reload in flight, never delays it. Figures older than `max_age` are
//! not served (no series rather than stale ones), and `metallb_frr_status_age_seconds` says how
//! old the served ones are. The same snapshot answers the speaker's "FRR reachable" readiness.
//!
//! Names, labels and meaning are upstream's frr-metrics sidecar's (`show bgp vrf V neighbors
//! json`, `show bfd peers [counters] json`), except that `peer` is the neighbor's address
//! without the port (as frr-k8s), so `metallb_bgp_session_up{peer="10.77.0.1"}` selects a
//! peer whatever its session's source port.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter},
};
use tracing::{debug, warn};

use super::{encode_family, encode_gauge};
use crate::frr::vtysh::{BfdPeerCounters, MessageStats, Vtysh, VtyshError};

/// Poll timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollConfig {
    /// Time between two polls.
    pub interval: Duration,
    /// Figures older than this are not served, and FRR counts as unreachable.
    pub max_age: Duration,
}

impl PollConfig {
    /// Polls every `interval`; figures stay valid for three intervals (at least 2 s), so one
    /// slow poll does not blank a dashboard.
    pub fn every(interval: Duration) -> Self {
        PollConfig {
            interval,
            max_age: (interval * 3).max(Duration::from_secs(2)),
        }
    }
}

/// One BGP session.
#[derive(Clone, Debug, PartialEq)]
pub struct BgpSession {
    /// VRF name (`default` for the default VRF).
    pub vrf: String,
    /// The neighbor's address (or interface, for unnumbered peers).
    pub peer: String,
    /// Established.
    pub up: bool,
    /// Prefixes sent to the peer, over every address family.
    pub announced_prefixes: u64,
    /// Messages by type.
    pub messages: MessageStats,
}

/// One BFD session.
#[derive(Clone, Debug, PartialEq)]
pub struct BfdSession {
    /// VRF name.
    pub vrf: String,
    /// Peer address.
    pub peer: String,
    /// Up.
    pub up: bool,
    /// Packet and event counters (`None` when FRR did not list the session there).
    pub counters: Option<BfdPeerCounters>,
}

/// What one successful poll found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// BGP sessions, by VRF then peer.
    pub bgp: Vec<BgpSession>,
    /// BFD sessions, by VRF then peer.
    pub bfd: Vec<BfdSession>,
}

/// The latest poll and the latest good figures.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// When the latest poll finished.
    pub polled_at: Instant,
    /// Its error, if it failed.
    pub error: Option<String>,
    /// How long it took.
    pub took: Duration,
    /// The figures of the latest successful poll, and when it finished.
    pub good: Option<(Instant, Arc<Figures>)>,
}

/// The shared latest snapshot: written by [`poll`], read by scrapes and readiness.
#[derive(Clone, Debug, Default)]
pub struct FrrStatus {
    latest: Arc<RwLock<Option<Snapshot>>>,
}

impl FrrStatus {
    /// The latest snapshot.
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.latest
            .read()
            .expect("invariant: lock not poisoned")
            .clone()
    }

    fn record(&self, took: Duration, result: Result<Figures, String>) {
        let now = Instant::now();
        let mut latest = self.latest.write().expect("invariant: lock not poisoned");
        let previous_good = latest.as_ref().and_then(|s| s.good.clone());
        *latest = Some(match result {
            Ok(figures) => Snapshot {
                polled_at: now,
                error: None,
                took,
                good: Some((now, Arc::new(figures))),
            },
            Err(error) => Snapshot {
                polled_at: now,
                error: Some(error),
                took,
                good: previous_good,
            },
        });
    }

    /// Readiness: the latest poll reached FRR and is at most `max_age` old.
    pub fn reachable(&self, max_age: Duration) -> Result<(), String> {
        match self.snapshot() {
            None => Err("FRR not polled yet".into()),
            Some(s) if s.polled_at.elapsed() > max_age => Err(format!(
                "last FRR poll {:.1}s ago",
                s.polled_at.elapsed().as_secs_f64()
            )),
            Some(Snapshot {
                error: Some(error), ..
            }) => Err(error),
            Some(_) => Ok(()),
        }
    }

    /// The good figures if they are at most `max_age` old, with their age.
    pub fn fresh(&self, max_age: Duration) -> Option<(Duration, Arc<Figures>)> {
        let (at, figures) = self.snapshot()?.good?;
        let age = at.elapsed();
        (age <= max_age).then_some((age, figures))
    }
}

/// Polls FRR every `config.interval` forever, storing each result in `status`.
pub async fn poll(vtysh: Vtysh, config: PollConfig, status: FrrStatus) {
    // A poll never outlives the figures' validity: a hung vtysh is killed and counts as a
    // failure, and the next poll starts on time.
    let vtysh = vtysh.with_timeout(config.max_age.min(Duration::from_secs(10)));
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let started = Instant::now();
        let result = read_figures(&vtysh).await.map_err(|e| e.to_string());
        match (&result, failing) {
            (Err(error), false) => warn!(%error, "metrics: cannot read FRR's status"),
            (Ok(_), true) => debug!("metrics: FRR's status readable again"),
            _ => {}
        }
        failing = result.is_err();
        status.record(started.elapsed(), result);
    }
}

/// One poll: every VRF's BGP neighbors, then the BFD sessions (a BFD failure, e.g. bfdd not
/// running, leaves BFD empty rather than failing the poll).
pub async fn read_figures(vtysh: &Vtysh) -> Result<Figures, VtyshError> {
    let mut figures = Figures::default();
    for vrf in vtysh.bgp_vrfs().await? {
        for (peer, n) in vtysh.bgp_neighbors(&vrf).await? {
            figures.bgp.push(BgpSession {
                up: n.is_established(),
                announced_prefixes: n
                    .address_family_info
                    .values()
                    .map(|af| af.sent_prefix_counter)
                    .sum(),
                messages: n.message_stats,
                vrf: vrf.clone(),
                peer,
            });
        }
    }
    match (vtysh.bfd_peers_all().await, vtysh.bfd_counters().await) {
        (Ok(peers), counters) => {
            let counters = counters.unwrap_or_default();
            for p in peers {
                let vrf = if p.vrf.is_empty() {
                    "default".to_string()
                } else {
                    p.vrf.clone()
                };
                let c = counters
                    .iter()
                    .find(|c| c.peer == p.peer && (c.vrf == p.vrf || c.vrf.is_empty()))
                    .cloned();
                figures.bfd.push(BfdSession {
                    up: p.is_up(),
                    counters: c,
                    peer: p.peer,
                    vrf,
                });
            }
        }
        (Err(error), _) => debug!(%error, "metrics: no BFD status"),
    }
    Ok(figures)
}

/// Serves the latest snapshot at each scrape.
#[derive(Debug)]
pub struct FrrCollector {
    status: FrrStatus,
    max_age: Duration,
}

impl FrrCollector {
    /// A collector over `status`, serving figures at most `max_age` old.
    pub fn new(status: FrrStatus, max_age: Duration) -> Self {
        FrrCollector { status, max_age }
    }
}

type BgpField = (&'static str, &'static str, fn(&MessageStats) -> u64);

/// Upstream's BGP message counters that keep their exact (un-suffixed) names.
const BGP_MESSAGES: [BgpField; 11] = [
    (
        "bgp_updates_total_received",
        "Number of BGP UPDATE messages received",
        |m| m.updates_recv,
    ),
    ("bgp_opens_sent", "Number of BGP open messages sent", |m| {
        m.opens_sent
    }),
    (
        "bgp_opens_received",
        "Number of BGP open messages received",
        |m| m.opens_recv,
    ),
    (
        "bgp_notifications_sent",
        "Number of BGP notification messages sent",
        |m| m.notifications_sent,
    ),
    (
        "bgp_notifications_received",
        "Number of BGP notification messages received",
        |m| m.notifications_recv,
    ),
    (
        "bgp_keepalives_sent",
        "Number of BGP keepalive messages sent",
        |m| m.keepalives_sent,
    ),
    (
        "bgp_keepalives_received",
        "Number of BGP keepalive messages received",
        |m| m.keepalives_recv,
    ),
    (
        "bgp_route_refresh_sent",
        "Number of BGP route refresh messages sent",
        |m| m.route_refresh_sent,
    ),
    (
        "bgp_route_refresh_received",
        "Number of BGP route refresh messages received",
        |m| m.route_refresh_recv,
    ),
    ("bgp_total_sent", "Number of total BGP messages sent", |m| {
        m.total_sent
    }),
    (
        "bgp_total_received",
        "Number of total BGP messages received",
        |m| m.total_recv,
    ),
];

type BfdField = (&'static str, &'static str, fn(&BfdPeerCounters) -> u64);

/// The seed's seven BFD counters (26.7.4), besides `metallb_bfd_session_up`.
const BFD_COUNTERS: [BfdField; 7] = [
    (
        "bfd_control_packet_input",
        "Number of received BFD control packets",
        |c| c.control_packet_input,
    ),
    (
        "bfd_control_packet_output",
        "Number of sent BFD control packets",
        |c| c.control_packet_output,
    ),
    (
        "bfd_echo_packet_input",
        "Number of received BFD echo packets",
        |c| c.echo_packet_input,
    ),
    (
        "bfd_echo_packet_output",
        "Number of sent BFD echo packets",
        |c| c.echo_packet_output,
    ),
    (
        "bfd_session_up_events",
        "Number of BFD session up events",
        |c| c.session_up_events,
    ),
    (
        "bfd_session_down_events",
        "Number of BFD session down events",
        |c| c.session_down_events,
    ),
    (
        "bfd_zebra_notifications",
        "Number of BFD zebra notifications",
        |c| c.zebra_notifications,
    ),
];

fn bgp_labels(s: &BgpSession) -> [(&'static str, String); 2] {
    [("peer", s.peer.clone()), ("vrf", s.vrf.clone())]
}

fn bfd_labels(s: &BfdSession) -> [(&'static str, String); 2] {
    [("peer", s.peer.clone()), ("vrf", s.vrf.clone())]
}

impl Collector for FrrCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snapshot = self.status.snapshot();
        let up = snapshot.as_ref().is_some_and(|s| s.error.is_none());
        encode_gauge(
            &mut encoder,
            "frr_status_up",
            "1 if the latest poll of FRR's status succeeded",
            f64::from(u8::from(up)),
        )?;
        if let Some(s) = &snapshot {
            encode_gauge(
                &mut encoder,
                "frr_status_poll_seconds",
                "How long the latest poll of FRR's status took",
                s.took.as_secs_f64(),
            )?;
        }
        let Some((age, figures)) = self.status.fresh(self.max_age) else {
            return Ok(());
        };
        encode_gauge(
            &mut encoder,
            "frr_status_age_seconds",
            "Age of the FRR figures served (BGP and BFD metrics)",
            age.as_secs_f64(),
        )?;
        let bgp = &figures.bgp;
        encode_family(
            &mut encoder,
            "bgp_session_up",
            "BGP session state (1 is up, 0 is down)",
            MetricType::Gauge,
            bgp.iter()
                .map(|s| (bgp_labels(s), f64::from(u8::from(s.up)))),
        )?;
        encode_family(
            &mut encoder,
            "bgp_announced_prefixes_total",
            "Number of prefixes currently being advertised on the BGP session",
            MetricType::Gauge,
            bgp.iter()
                .map(|s| (bgp_labels(s), s.announced_prefixes as f64)),
        )?;
        if !bgp.is_empty() {
            let mut family = encoder.encode_descriptor(
                "bgp_updates",
                "Number of BGP UPDATE messages sent",
                None,
                MetricType::Counter,
            )?;
            for s in bgp {
                let labels = bgp_labels(s);
                ConstCounter::new(s.messages.updates_sent)
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, get) in BGP_MESSAGES {
            encode_family(
                &mut encoder,
                name,
                help,
                MetricType::Unknown,
                bgp.iter().map(|s| (bgp_labels(s), get(&s.messages) as f64)),
            )?;
        }
        let bfd = &figures.bfd;
        encode_family(
            &mut encoder,
            "bfd_session_up",
            "BFD session state (1 is up, 0 is down)",
            MetricType::Gauge,
            bfd.iter()
                .map(|s| (bfd_labels(s), f64::from(u8::from(s.up)))),
        )?;
        for (name, help, get) in BFD_COUNTERS {
            encode_family(
                &mut encoder,
                name,
                help,
                MetricType::Unknown,
                bfd.iter()
                    .filter_map(|s| Some((bfd_labels(s), get(s.counters.as_ref()?) as f64))),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Format, encode, registry};

    fn figures() -> Figures {
        Figures {
            bgp: vec![BgpSession {
                vrf: "default".into(),
                peer: "10.77.0.1".into(),
                up: true,
                announced_prefixes: 2,
                messages: MessageStats {
                    opens_sent: 1,
                    updates_sent: 5,
                    updates_recv: 4,
                    ..MessageStats::default()
                },
            }],
            bfd: vec![BfdSession {
                vrf: "default".into(),
                peer: "10.77.0.1".into(),
                up: false,
                counters: Some(BfdPeerCounters {
                    session_down_events: 1,
                    ..BfdPeerCounters::default()
                }),
            }],
        }
    }

    fn scrape(status: &FrrStatus, max_age: Duration) -> String {
        let mut r = registry();
        r.register_collector(Box::new(FrrCollector::new(status.clone(), max_age)));
        encode(&r, Format::Prometheus).unwrap()
    }

    #[test]
    fn serves_the_latest_good_figures_under_upstream_names() {
        let status = FrrStatus::default();
        assert!(status.reachable(Duration::from_secs(5)).is_err());
        assert!(scrape(&status, Duration::from_secs(5)).contains("metallb_frr_status_up 0\n"));
        status.record(Duration::from_millis(3), Ok(figures()));
        let text = scrape(&status, Duration::from_secs(5));
        for line in [
            "metallb_bgp_session_up{peer=\"10.77.0.1\",vrf=\"default\"} 1\n",
            "metallb_bgp_announced_prefixes_total{peer=\"10.77.0.1\",vrf=\"default\"} 2\n",
            "metallb_bgp_updates_total{peer=\"10.77.0.1\",vrf=\"default\"} 5\n",
            "metallb_bgp_updates_total_received{peer=\"10.77.0.1\",vrf=\"default\"} 4\n",
            "metallb_bgp_opens_sent{peer=\"10.77.0.1\",vrf=\"default\"} 1\n",
            "metallb_bfd_session_up{peer=\"10.77.0.1\",vrf=\"default\"} 0\n",
            "metallb_bfd_session_down_events{peer=\"10.77.0.1\",vrf=\"default\"} 1\n",
            "metallb_frr_status_up 1\n",
        ] {
            assert!(text.contains(line), "missing {line}in\n{text}");
        }
        assert_eq!(status.reachable(Duration::from_secs(5)), Ok(()));

        // A failed poll keeps serving the last good figures while they are fresh, but FRR is
        // not reachable.
        status.record(Duration::from_millis(3), Err("bgpd is not running".into()));
        let text = scrape(&status, Duration::from_secs(5));
        assert!(text.contains("metallb_frr_status_up 0\n"));
        assert!(text.contains("metallb_bgp_session_up{"));
        assert_eq!(
            status.reachable(Duration::from_secs(5)),
            Err("bgpd is not running".into())
        );
        // Older than max_age: no BGP series at all.
        std::thread::sleep(Duration::from_millis(20));
        let text = scrape(&status, Duration::from_millis(10));
        assert!(!text.contains("metallb_bgp_session_up"), "{text}");
        assert!(!text.contains("metallb_frr_status_age_seconds"), "{text}");
    }
}
