//! `metallb_layer2_*`: upstream's per-address counters (read from the announcer at scrape
//! time) and our own figures on ownership and membership.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use prometheus_client::{
    collector::Collector,
    encoding::DescriptorEncoder,
    metrics::{MetricType, counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::encode_family;
use crate::l2::announcer::Counters;

/// Reads the announcer's counters.
pub type CountersReader = Arc<dyn Fn() -> BTreeMap<IpAddr, Counters> + Send + Sync>;

/// Handles the layer 2 speaker loop records into. `Default` gives handles registered nowhere.
#[derive(Clone, Debug, Default)]
pub struct L2Metrics {
    changes: Family<[(&'static str, &'static str); 1], Counter>,
    live_speakers: Gauge,
    fenced: Gauge,
    announced: Gauge,
}

impl L2Metrics {
    /// Registers `metallb_layer2_*` in `registry`, the counters read through `counters`.
    pub fn register(registry: &mut Registry, counters: CountersReader) -> Self {
        let m = L2Metrics::default();
        let l2 = registry.sub_registry_with_prefix("layer2");
        l2.register_collector(Box::new(CountersCollector(counters)));
        l2.register(
            "ownership_changes",
            "Services this node started (assigned) or stopped (withdrawn) announcing: failovers \
             seen from this node",
            m.changes.clone(),
        );
        l2.register(
            "live_speakers",
            "Speakers this node's membership sees alive (itself included)",
            m.live_speakers.clone(),
        );
        l2.register(
            "fenced_bool",
            "1 while this node withdraws everything because it reaches neither peers nor witness",
            m.fenced.clone(),
        );
        l2.register(
            "announced_services",
            "Services this node announces",
            m.announced.clone(),
        );
        m
    }

    /// This node started announcing `count` Services (took them over).
    pub fn assigned(&self, count: usize) {
        self.count_change("assigned", count);
    }

    /// This node stopped announcing `count` Services.
    pub fn withdrawn(&self, count: usize) {
        self.count_change("withdrawn", count);
    }

    fn count_change(&self, kind: &'static str, count: usize) {
        if count > 0 {
            self.changes
                .get_or_create(&[("change", kind)])
                .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
        }
    }

    /// The state after a reconcile.
    pub fn state(&self, live: Option<usize>, fenced: bool, announced: usize) {
        if let Some(live) = live {
            self.live_speakers
                .set(i64::try_from(live).unwrap_or(i64::MAX));
        }
        self.fenced.set(i64::from(fenced));
        self.announced
            .set(i64::try_from(announced).unwrap_or(i64::MAX));
    }
}

struct CountersCollector(CountersReader);

impl std::fmt::Debug for CountersCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountersCollector")
    }
}

type Field = (&'static str, &'static str, fn(&Counters) -> u64);

const COUNTERS: [Field; 3] = [
    (
        "requests_received",
        "Number of layer2 requests received for owned IPs",
        |c| c.requests_received,
    ),
    (
        "responses_sent",
        "Number of layer2 responses sent for owned IPs",
        |c| c.responses_sent,
    ),
    (
        "gratuitous_sent",
        "Number of gratuitous layer2 packets sent for owned IPs",
        |c| c.gratuitous_sent,
    ),
];

impl Collector for CountersCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let counters = (self.0)();
        let ips: Vec<(String, &Counters)> =
            counters.iter().map(|(ip, c)| (ip.to_string(), c)).collect();
        for (name, help, get) in COUNTERS {
            encode_family(
                &mut encoder,
                name,
                help,
                MetricType::Unknown,
                ips.iter()
                    .map(|(ip, c)| ([("ip", ip.as_str())], get(c) as f64)),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Format, encode, registry};

    #[test]
    fn counters_keep_upstreams_names() {
        let mut r = registry();
        let counters: CountersReader = Arc::new(|| {
            BTreeMap::from([(
                "10.0.0.1".parse().unwrap(),
                Counters {
                    requests_received: 3,
                    responses_sent: 2,
                    gratuitous_sent: 10,
                },
            )])
        });
        let m = L2Metrics::register(&mut r, counters);
        m.assigned(1);
        m.withdrawn(0);
        m.state(Some(2), false, 1);
        let text = encode(&r, Format::Prometheus).unwrap();
        for line in [
            "metallb_layer2_requests_received{ip=\"10.0.0.1\"} 3\n",
            "metallb_layer2_responses_sent{ip=\"10.0.0.1\"} 2\n",
            "metallb_layer2_gratuitous_sent{ip=\"10.0.0.1\"} 10\n",
            "metallb_layer2_ownership_changes_total{change=\"assigned\"} 1\n",
            "metallb_layer2_live_speakers 2\n",
            "metallb_layer2_announced_services 1\n",
        ] {
            assert!(text.contains(line), "missing {line}in\n{text}");
        }
        assert!(!text.contains("change=\"withdrawn\""), "{text}");
    }
}
