//! Per-process assembly: the registry, health checks and listeners of the controller and the
//! speakers, so each entry point adds a few lines.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use kube::Client;
use prometheus_client::{metrics::gauge::Gauge, registry::Registry};

use super::{
    Health,
    allocator::AllocatorMetrics,
    apply::ApplyMetrics,
    auth::Authorizer,
    frr::{FrrCollector, FrrStatus, PollConfig},
    k8s_client::K8sClientMetrics,
    server::{Secure, ServeConfig, ServeError, serve, tls_config},
};
use crate::{cli::MetricsArgs, frr::vtysh::Vtysh};

impl MetricsArgs {
    /// The listeners these flags ask for; the secure one needs `client` (the apiserver decides
    /// who may scrape) and is left out without it.
    pub fn serve_config(&self, client: Option<&Client>) -> Result<ServeConfig, ServeError> {
        let secure = match (self.metrics_secure_addr.0, client) {
            (Some(addr), Some(client)) => {
                let files = self
                    .metrics_tls_cert
                    .as_deref()
                    .zip(self.metrics_tls_key.as_deref());
                let names = vec!["localhost".to_string(), addr.ip().to_string()];
                Some(Secure {
                    addr,
                    tls: tls_config(files, names)?,
                    authorizer: Arc::new(Authorizer::new(client.clone())),
                })
            }
            _ => None,
        };
        Ok(ServeConfig {
            plain: self.metrics_plain_addr.0,
            health: self.health_addr.0,
            secure,
        })
    }
}

/// Starts the listeners. A listener that cannot bind is logged and the process goes on: the
/// metrics server never takes an announcement down (the probes then fail, which is visible).
async fn start(config: ServeConfig, registry: Registry, health: Health) {
    let registry = Arc::new(registry);
    for (what, config) in [
        (
            "plain",
            ServeConfig {
                plain: config.plain,
                ..ServeConfig::default()
            },
        ),
        (
            "health",
            ServeConfig {
                health: config.health,
                ..ServeConfig::default()
            },
        ),
        (
            "secure",
            ServeConfig {
                secure: config.secure,
                ..ServeConfig::default()
            },
        ),
    ] {
        if let Err(error) = serve(config, registry.clone(), health.clone()).await {
            tracing::error!(listener = what, error = %error, "metrics: listener not started");
        }
    }
}

// === controller ===

/// The controller's metrics.
#[derive(Clone, Debug, Default)]
pub struct ControllerMetrics {
    /// Pool usage and allocation latency.
    pub allocator: AllocatorMetrics,
    /// Config updates and validity.
    pub k8s: K8sClientMetrics,
    /// 1 while this replica leads.
    pub leader: Gauge,
}

impl ControllerMetrics {
    /// Registers the controller's metrics; readiness: a standby replica is ready, the leader
    /// once a valid configuration is loaded.
    pub fn register(registry: &mut Registry, health: &Health) -> Self {
        let m = ControllerMetrics {
            allocator: AllocatorMetrics::register(registry),
            k8s: K8sClientMetrics::register(registry),
            leader: Gauge::default(),
        };
        registry.sub_registry_with_prefix("controller").register(
            "leader_bool",
            "1 while this controller replica holds the leader Lease",
            m.leader.clone(),
        );
        let (k8s, leader) = (m.k8s.clone(), m.leader.clone());
        health.add_check("config", move || {
            if leader.get() == 0 {
                Ok(())
            } else {
                k8s.loaded()
            }
        });
        m
    }
}

/// Builds the controller's registry and starts its listeners.
pub async fn start_controller(
    args: &MetricsArgs,
    client: &Client,
) -> Result<ControllerMetrics, ServeError> {
    let mut registry = super::registry();
    let health = Health::default();
    let metrics = ControllerMetrics::register(&mut registry, &health);
    start(args.serve_config(Some(client))?, registry, health).await;
    Ok(metrics)
}

// === BGP speaker ===

/// The speaker's metrics, before its listeners start.
#[derive(Debug)]
pub struct SpeakerTelemetry {
    /// Handles of the apply loop.
    pub apply: ApplyMetrics,
    /// Config updates and validity.
    pub k8s: K8sClientMetrics,
    registry: Registry,
    health: Health,
    /// FRR's figures and how often they are read; `None` with BGP off.
    frr: Option<(FrrStatus, PollConfig)>,
}

impl SpeakerTelemetry {
    /// Registers the speaker's metrics: the config's, and with `frr_interval` (BGP on) FRR's
    /// BGP and BFD figures (polled that often) and the apply loop's. Readiness: config loaded,
    /// and FRR reachable when BGP is on.
    pub fn new(frr_interval: Option<Duration>) -> Self {
        let mut registry = super::registry();
        let health = Health::default();
        let apply = ApplyMetrics::register(&mut registry);
        let k8s = K8sClientMetrics::register(&mut registry);
        let loaded = k8s.clone();
        health.add_check("config", move || loaded.loaded());
        let frr = frr_interval.map(|interval| {
            let poll = PollConfig::every(interval);
            let frr = FrrStatus::default();
            registry.register_collector(Box::new(FrrCollector::new(frr.clone(), poll.max_age)));
            let reachable = frr.clone();
            health.add_check("frr", move || reachable.reachable(poll.max_age));
            (frr, poll)
        });
        SpeakerTelemetry {
            apply,
            k8s,
            registry,
            health,
            frr,
        }
    }

    /// Registers the layer 2 side's metrics, its counters read through `counters`.
    pub fn layer2(&mut self, counters: super::layer2::CountersReader) -> super::layer2::L2Metrics {
        super::layer2::L2Metrics::register(&mut self.registry, counters)
    }

    /// Starts the FRR poller (on `vtysh`'s instance, BGP on) and the listeners.
    pub async fn start(
        self,
        args: &MetricsArgs,
        vtysh: Vtysh,
        client: Option<&Client>,
    ) -> Result<(), ServeError> {
        if let Some((frr, poll)) = self.frr {
            tokio::spawn(super::frr::poll(vtysh, poll, frr));
        }
        start(args.serve_config(client)?, self.registry, self.health).await;
        Ok(())
    }
}

/// A listen address flag: `HOST:PORT`, or `off` (or empty) for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl std::str::FromStr for Listen {
    type Err = std::net::AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "off" => Ok(Listen(None)),
            addr => addr.parse().map(|a| Listen(Some(a))),
        }
    }
}
