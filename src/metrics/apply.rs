//! The speaker's own FRR figures: how applies go, by path.

use std::time::{Duration, SystemTime};

use prometheus_client::{
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

use crate::frr::apply::{ApplyPath, ApplyReport, Step};

type Labels = [(&'static str, &'static str); 1];

fn apply_histogram() -> Histogram {
    // 0.5 ms (a vty line) to about 2 minutes (frr-reload.py of a large config).
    Histogram::new(exponential_buckets(0.0005, 2.5, 14))
}

/// Handles the apply loop records into. `Default` gives handles registered nowhere (tests,
/// benches).
#[derive(Clone, Debug)]
pub struct ApplyMetrics {
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    failures: Family<Labels, Counter>,
    drift_reloads: Counter,
    last_good: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for ApplyMetrics {
    fn default() -> Self {
        ApplyMetrics {
            duration: Family::new_with_constructor(apply_histogram),
            failures: Family::default(),
            drift_reloads: Counter::default(),
            last_good: Gauge::default(),
        }
    }
}

impl ApplyMetrics {
    /// Registers `metallb_frr_apply_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ApplyMetrics::default();
        let frr = registry.sub_registry_with_prefix("frr");
        frr.register_with_unit(
            "apply_duration",
            "Time to apply a new configuration to FRR, by path: vty (bgpd vty session), \
             vtysh_batch (one vtysh -f), frr_reload (frr-reload.py --reload)",
            Unit::Seconds,
            m.duration.clone(),
        );
        frr.register(
            "apply_failures",
            "Applies FRR rejected or that failed, by step (the last good configuration stays)",
            m.failures.clone(),
        );
        frr.register(
            "drift_reloads",
            "Reloads after FRR was found running something else than the applied configuration",
            m.drift_reloads.clone(),
        );
        frr.register_with_unit(
            "last_good_apply_timestamp",
            "Unix time of the last successful apply (time() minus this: time since FRR last \
             took a configuration)",
            Unit::Seconds,
            m.last_good.clone(),
        );
        m
    }

    /// A successful apply (an unchanged text ran nothing and is not recorded).
    pub fn applied(&self, report: &ApplyReport) {
        let Some(path) = path_label(report) else {
            return;
        };
        self.duration
            .get_or_create(&[("path", path)])
            .observe(report.duration.as_secs_f64());
        self.last_good.set(unix_now());
    }

    /// A reload after drift (also recorded as an apply).
    pub fn drift_reloaded(&self, report: &ApplyReport) {
        self.drift_reloads.inc();
        self.applied(report);
    }

    /// A failed apply or check.
    pub fn failed(&self, step: Step) {
        self.failures
            .get_or_create(&[("step", step_label(step))])
            .inc();
    }
}

/// The `path` label of an apply: which mechanism changed FRR.
pub fn path_label(report: &ApplyReport) -> Option<&'static str> {
    match report.path {
        ApplyPath::Unchanged => None,
        ApplyPath::Reload => Some("frr_reload"),
        ApplyPath::Incremental if report.steps.iter().any(|(s, _)| *s == "batch-vty") => {
            Some("vty")
        }
        ApplyPath::Incremental => Some("vtysh_batch"),
    }
}

fn step_label(step: Step) -> &'static str {
    match step {
        Step::Write => "write",
        Step::Validate => "validate",
        Step::IncrementalApply => "incremental_apply",
        Step::Reload => "reload",
        Step::Verify => "verify",
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Format, encode, registry};

    fn report(path: ApplyPath, steps: Vec<(&'static str, Duration)>) -> ApplyReport {
        ApplyReport {
            path,
            hash: "h".into(),
            duration: Duration::from_millis(2),
            stats: Default::default(),
            fallback_reason: None,
            residual: None,
            steps,
        }
    }

    #[test]
    fn applies_are_counted_by_path_and_failures_by_step() {
        let mut r = registry();
        let m = ApplyMetrics::register(&mut r);
        m.applied(&report(
            ApplyPath::Incremental,
            vec![("batch-vty", Duration::ZERO)],
        ));
        m.applied(&report(
            ApplyPath::Incremental,
            vec![("batch", Duration::ZERO)],
        ));
        m.drift_reloaded(&report(ApplyPath::Reload, vec![]));
        m.applied(&report(ApplyPath::Unchanged, vec![]));
        m.failed(Step::Validate);
        let text = encode(&r, Format::Prometheus).unwrap();
        for line in [
            "metallb_frr_apply_duration_seconds_count{path=\"vty\"} 1\n",
            "metallb_frr_apply_duration_seconds_count{path=\"vtysh_batch\"} 1\n",
            "metallb_frr_apply_duration_seconds_count{path=\"frr_reload\"} 1\n",
            "metallb_frr_apply_failures_total{step=\"validate\"} 1\n",
            "metallb_frr_drift_reloads_total 1\n",
        ] {
            assert!(text.contains(line), "missing {line}in\n{text}");
        }
        assert!(!text.contains("path=\"unchanged\""));
        assert!(!text.contains("metallb_frr_last_good_apply_timestamp_seconds 0\n"));
    }
}
