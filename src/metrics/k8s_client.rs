//! `metallb_k8s_client_*`: how the configuration from the cluster is taken in (upstream's
//! names and meaning), plus when the last valid one was loaded.

use std::{
    sync::atomic::AtomicU64,
    time::{Duration, SystemTime},
};

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::{Registry, Unit},
};

/// Handles a component's config loop records into.
#[derive(Clone, Debug, Default)]
pub struct K8sClientMetrics {
    updates: Counter,
    update_errors: Counter,
    config_loaded: Gauge,
    config_stale: Gauge,
    last_good: Gauge<f64, AtomicU64>,
}

impl K8sClientMetrics {
    /// Registers `metallb_k8s_client_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = K8sClientMetrics::default();
        let k8s = registry.sub_registry_with_prefix("k8s_client");
        k8s.register(
            "updates",
            "Number of k8s object updates that have been processed",
            m.updates.clone(),
        );
        k8s.register(
            "update_errors",
            "Number of k8s object updates that failed for some reason",
            m.update_errors.clone(),
        );
        k8s.register(
            "config_loaded_bool",
            "1 if the MetalLB configuration was successfully loaded at least once",
            m.config_loaded.clone(),
        );
        k8s.register(
            "config_stale_bool",
            "1 if running on a stale configuration, because the latest config failed to load",
            m.config_stale.clone(),
        );
        k8s.register_with_unit(
            "config_last_good_timestamp",
            "Unix time the last valid configuration was loaded (time() minus this: time since \
             the last good config)",
            Unit::Seconds,
            m.last_good.clone(),
        );
        m
    }

    /// `n` object updates were taken in.
    pub fn updates(&self, n: u64) {
        self.updates.inc_by(n);
    }

    /// The configuration built from them is valid and in force.
    pub fn config_ok(&self) {
        self.config_loaded.set(1);
        self.config_stale.set(0);
        self.last_good.set(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64(),
        );
    }

    /// The configuration built from them is invalid; the last good one (if any) stays.
    pub fn config_failed(&self) {
        self.update_errors.inc();
        self.config_stale.set(1);
    }

    /// Whether a valid configuration was loaded at least once (readiness).
    pub fn loaded(&self) -> Result<(), String> {
        if self.config_loaded.get() == 1 {
            Ok(())
        } else {
            Err("no valid configuration loaded yet".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Format, encode, registry};

    #[test]
    fn stale_after_a_bad_config_and_fresh_after_a_good_one() {
        let mut r = registry();
        let m = K8sClientMetrics::register(&mut r);
        assert!(m.loaded().is_err());
        m.updates(3);
        m.config_failed();
        let text = encode(&r, Format::Prometheus).unwrap();
        for line in [
            "metallb_k8s_client_updates_total 3\n",
            "metallb_k8s_client_update_errors_total 1\n",
            "metallb_k8s_client_config_loaded_bool 0\n",
            "metallb_k8s_client_config_stale_bool 1\n",
        ] {
            assert!(text.contains(line), "missing {line}in\n{text}");
        }
        m.config_ok();
        assert_eq!(m.loaded(), Ok(()));
        let text = encode(&r, Format::Prometheus).unwrap();
        assert!(text.contains("metallb_k8s_client_config_loaded_bool 1\n"));
        assert!(text.contains("metallb_k8s_client_config_stale_bool 0\n"));
    }
}
