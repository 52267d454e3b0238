//! Metrics and health endpoints, one HTTP server per process.
//!
//! ```text
//!  component code ──► metric handles (counters, histograms)  ─┐
//!  state (watch channels, snapshots) ◄── Collectors at scrape ─┤ Registry "metallb_*"
//!  FRR ── vtysh json ──► frr::Poller (every --frr-metrics-interval, off the scrape path)
//!                            └─► last snapshot + age ─► frr::FrrCollector ┘
//!                                                            │ encode (Accept: OpenMetrics
//!                                                            ▼  or Prometheus text 0.0.4)
//!  server::serve: plain listener (/metrics /healthz /readyz), health listener (probes),
//!                 HTTPS listener (TokenReview + SubjectAccessReview, as kube-rbac-proxy)
//! ```
//!
//! Names, labels and meaning follow upstream MetalLB (`metallb_bgp_*`, `metallb_bfd_*`,
//! `metallb_allocator_*`, `metallb_k8s_client_*`, `metallb_layer2_*`); see `docs/metrics.md`.
//! Upstream counters whose names do not end in `_total` (`metallb_bgp_opens_sent`,
//! `metallb_layer2_requests_received`, ...) keep their exact names: OpenMetrics would append
//! `_total` to a counter, so they are exposed untyped (`unknown` in OpenMetrics) instead, and a
//! dashboard's query stays the same.

pub mod allocator;
pub mod apply;
pub mod auth;
pub mod frr;
pub mod k8s_client;
pub mod layer2;
pub mod process;
pub mod server;

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex},
};

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder},
    metrics::MetricType,
    registry::Registry,
};

pub use self::server::{ServeConfig, serve};

/// Prefix of every metric.
pub const PREFIX: &str = "metallb";

/// A registry for one process: every metric it registers is named `metallb_*`.
pub fn registry() -> Registry {
    Registry::with_prefix(PREFIX)
}

/// The two text formats a scraper may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4 (`text/plain`), what upstream serves.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header lists it (Prometheus asks for it first), else the
    /// Prometheus text format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The registry's metrics in `format`.
pub fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry)?,
    }
    Ok(out)
}

// === Collector helpers ===

/// A value whose series keeps the family's exact name: a gauge, or an upstream counter without
/// the `_total` suffix (exposed untyped, see the module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    value: f64,
    kind: MetricType,
}

impl Sample {
    /// A gauge.
    pub(crate) fn gauge(value: f64) -> Self {
        Sample {
            value,
            kind: MetricType::Gauge,
        }
    }
}

impl EncodeMetric for Sample {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // Whole numbers print as integers ("3", not "3.0"), as upstream's do.
        const EXACT: f64 = (1u64 << 53) as f64;
        if self.value.fract() == 0.0 && self.value.abs() < EXACT {
            encoder.encode_gauge(&(self.value as i64))
        } else {
            encoder.encode_gauge(&self.value)
        }
    }

    fn metric_type(&self) -> MetricType {
        self.kind
    }
}

/// Writes one family: its descriptor, then one series per `(labels, sample)`. Nothing is
/// written for an empty family, as a registered `Family` with no series does.
pub(crate) fn encode_family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl IntoIterator<Item = (L, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let sample = Sample { value, kind };
        sample.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one unlabelled gauge.
pub(crate) fn encode_gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let sample = Sample::gauge(value);
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    sample.encode(metric)
}

// === Health ===

/// A readiness check: `Ok` when ready, else why not.
type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The process's health: `/healthz` answers while the process serves; `/readyz` runs every
/// registered check (config loaded, FRR reachable, ...).
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<Vec<(&'static str, Check)>>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").finish_non_exhaustive()
    }
}

impl Health {
    /// Adds a readiness check named `name`.
    pub fn add_check(
        &self,
        name: &'static str,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.checks
            .lock()
            .expect("invariant: lock not poisoned")
            .push((name, Box::new(check)));
    }

    /// `Ok(report)` when every check passes, else `Err(report)`; the report has one line per
    /// check (`[+]config ok`, `[-]frr failed: ...`), as kube-apiserver's `/readyz?verbose`.
    pub fn ready(&self) -> Result<String, String> {
        let checks = self.checks.lock().expect("invariant: lock not poisoned");
        let mut report = String::new();
        let mut ok = true;
        for (name, check) in checks.iter() {
            match check() {
                Ok(()) => {
                    let _ = writeln!(report, "[+]{name} ok");
                }
                Err(why) => {
                    ok = false;
                    let _ = writeln!(report, "[-]{name} failed: {why}");
                }
            }
        }
        if ok { Ok(report) } else { Err(report) }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl prometheus_client::collector::Collector for Fixed {
        fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
            encode_family(
                &mut encoder,
                "bgp_opens_sent",
                "Number of BGP open messages sent",
                MetricType::Unknown,
                [(vec![("peer", "10.0.0.1"), ("vrf", "default")], 3.0)],
            )?;
            encode_family::<Vec<(&str, &str)>>(&mut encoder, "empty", "none", MetricType::Gauge, [])
        }
    }

    #[test]
    fn upstream_names_survive_both_formats() {
        let mut registry = registry();
        let updates = Counter::<u64>::default();
        updates.inc_by(2);
        registry.sub_registry_with_prefix("k8s_client").register(
            "updates",
            "Number of k8s object updates",
            updates,
        );
        registry.register_collector(Box::new(Fixed));
        let text = encode(&registry, Format::Prometheus).unwrap();
        assert!(
            text.contains("# TYPE metallb_k8s_client_updates_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("metallb_k8s_client_updates_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("metallb_bgp_opens_sent{peer=\"10.0.0.1\",vrf=\"default\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE metallb_bgp_opens_sent untyped"),
            "{text}"
        );
        assert!(!text.contains("empty"), "{text}");
        assert!(!text.contains("# EOF"));
        let om = encode(&registry, Format::OpenMetrics).unwrap();
        assert!(om.contains("metallb_k8s_client_updates_total 2\n"), "{om}");
        assert!(om.contains("# TYPE metallb_bgp_opens_sent unknown"), "{om}");
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn accept_header_picks_the_format() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
    }

    #[test]
    fn readiness_lists_each_check() {
        let health = Health::default();
        assert_eq!(health.ready(), Ok(String::new()));
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = flag.clone();
        health.add_check("config", move || {
            if f.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(())
            } else {
                Err("not loaded yet".into())
            }
        });
        assert_eq!(
            health.ready(),
            Err("[-]config failed: not loaded yet\n".to_string())
        );
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(health.ready(), Ok("[+]config ok\n".to_string()));
    }
}
