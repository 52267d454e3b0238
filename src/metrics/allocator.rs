//! `metallb_allocator_*`: pool usage (upstream's names, per family) and how long an allocation
//! takes.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use prometheus_client::{
    collector::Collector,
    encoding::DescriptorEncoder,
    metrics::{
        MetricType,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

use super::encode_family;
use crate::core::allocator::{PoolStats, cap_i64};

/// The allocator's figures: usage per pool (read at scrape time from the last pass) and the
/// allocation latency.
#[derive(Clone, Debug)]
pub struct AllocatorMetrics {
    pools: Arc<RwLock<BTreeMap<String, PoolStats>>>,
    allocation: Histogram,
}

impl Default for AllocatorMetrics {
    fn default() -> Self {
        AllocatorMetrics {
            pools: Arc::default(),
            // 1 µs to about 0.5 s.
            allocation: Histogram::new(exponential_buckets(0.000_001, 3.0, 13)),
        }
    }
}

impl AllocatorMetrics {
    /// Registers `metallb_allocator_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = AllocatorMetrics::default();
        let sub = registry.sub_registry_with_prefix("allocator");
        sub.register_collector(Box::new(PoolCollector(m.pools.clone())));
        sub.register_with_unit(
            "allocation_duration",
            "Time to decide one Service's addresses (allocate, keep or release)",
            Unit::Seconds,
            m.allocation.clone(),
        );
        m
    }

    /// The usage of every configured pool after a pass (pools no longer configured vanish).
    pub fn set_pools(&self, pools: BTreeMap<String, PoolStats>) {
        *self.pools.write().expect("invariant: lock not poisoned") = pools;
    }

    /// One Service's allocation took `took`.
    pub fn allocated(&self, took: Duration) {
        self.allocation.observe(took.as_secs_f64());
    }
}

#[derive(Debug)]
struct PoolCollector(Arc<RwLock<BTreeMap<String, PoolStats>>>);

type PoolField = (&'static str, &'static str, fn(&PoolStats) -> i64);

const POOL_GAUGES: [PoolField; 7] = [
    (
        "addresses_in_use_total",
        "Number of IP addresses in use, per pool",
        |s| cap_i64(s.ipv4.assigned.saturating_add(s.ipv6.assigned)),
    ),
    (
        "addresses_total",
        "Number of usable IP addresses, per pool",
        |s| cap_i64(s.ipv4.total.saturating_add(s.ipv6.total)),
    ),
    (
        "ipv4_addresses_in_use_total",
        "Number of IPV4 addresses in use, per pool",
        |s| s.ipv4.assigned_i64(),
    ),
    (
        "ipv4_addresses_total",
        "Number of usable IPV4 addresses, per pool",
        |s| s.ipv4.total_i64(),
    ),
    (
        "ipv6_addresses_in_use_total",
        "Number of IPV6 addresses in use, per pool",
        |s| s.ipv6.assigned_i64(),
    ),
    (
        "ipv6_addresses_total",
        "Number of usable IPV6 addresses, per pool",
        |s| s.ipv6.total_i64(),
    ),
    (
        "services_allocated_total",
        "Number of services allocated, per pool",
        |s| i64::try_from(s.services).unwrap_or(i64::MAX),
    ),
];

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let pools = self.0.read().expect("invariant: lock not poisoned");
        for (name, help, get) in POOL_GAUGES {
            encode_family(
                &mut encoder,
                name,
                help,
                MetricType::Gauge,
                pools
                    .iter()
                    .map(|(pool, s)| ([("pool", pool.as_str())], get(s) as f64)),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core::allocator::FamilyStats,
        metrics::{Format, encode, registry},
    };

    #[test]
    fn pools_are_reported_per_family() {
        let mut r = registry();
        let m = AllocatorMetrics::register(&mut r);
        let fam = |total, assigned| FamilyStats {
            total,
            assigned,
            available: total - assigned,
        };
        m.set_pools(BTreeMap::from([(
            "lab".to_string(),
            PoolStats {
                ipv4: fam(256, 3),
                ipv6: fam(16, 1),
                services: 3,
            },
        )]));
        m.allocated(Duration::from_micros(20));
        let text = encode(&r, Format::Prometheus).unwrap();
        for line in [
            "metallb_allocator_addresses_in_use_total{pool=\"lab\"} 4\n",
            "metallb_allocator_ipv4_addresses_total{pool=\"lab\"} 256\n",
            "metallb_allocator_ipv4_addresses_in_use_total{pool=\"lab\"} 3\n",
            "metallb_allocator_ipv6_addresses_in_use_total{pool=\"lab\"} 1\n",
            "metallb_allocator_ipv6_addresses_total{pool=\"lab\"} 16\n",
            "metallb_allocator_services_allocated_total{pool=\"lab\"} 3\n",
            "metallb_allocator_allocation_duration_seconds_count 1\n",
        ] {
            assert!(text.contains(line), "missing {line}in\n{text}");
        }
        m.set_pools(BTreeMap::new());
        let text = encode(&r, Format::Prometheus).unwrap();
        assert!(!text.contains("pool=\"lab\""));
    }
}
