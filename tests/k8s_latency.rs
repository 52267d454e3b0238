//! Controller latency against a real kube-apiserver (ignored unless run with `--include-ignored`): time from
//! creating a LoadBalancer Service to its address in status, as a watch sees it, over 100
//! Services created one after another. Prints p50/p95/max (a benchmark: it asserts what was
//! allocated, never how fast).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::{Api, api::PostParams};
use metallb::api::ip_address_pool::IPAddressPool;
use serde_json::json;
use support::{Cluster, METALLB_NAMESPACE, controller as ctl};

const SERVICES: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn service_to_status_ip_latency_over_100_services() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let pool: IPAddressPool = serde_json::from_value(json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "bench", "namespace": METALLB_NAMESPACE},
        "spec": {"addresses": ["10.200.0.0/24"]},
    }))
    .unwrap();
    Api::<IPAddressPool>::namespaced(client.clone(), METALLB_NAMESPACE)
        .create(&PostParams::default(), &pool)
        .await
        .unwrap();
    let controller = ctl::spawn(&client, ctl::config("bench"));
    let services: Api<Service> = Api::namespaced(client.clone(), "default");

    // When a watch first sees each Service with an address.
    let (seen, watch) = ctl::watch_first_address(&services);
    // Warm-up: the controller has taken the Lease and done its first pass.
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("warmup", json!({}), json!({})),
        )
        .await
        .unwrap();
    support::eventually("warm-up Service allocated", Duration::from_secs(30), || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().contains_key("warmup").then_some(()) }
    })
    .await;

    let mut latencies = Vec::with_capacity(SERVICES);
    for i in 0..SERVICES {
        let name = format!("lat-{i:03}");
        let start = Instant::now();
        services
            .create(
                &PostParams::default(),
                &ctl::lb_service(&name, json!({}), json!({})),
            )
            .await
            .unwrap();
        let at = support::eventually(
            &format!("{name} allocated"),
            Duration::from_secs(30),
            || {
                let seen = seen.clone();
                let name = name.clone();
                async move { seen.lock().unwrap().get(&name).copied() }
            },
        )
        .await;
        latencies.push(at.duration_since(start));
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = latencies[SERVICES / 2];
    let p95 = latencies[SERVICES * 95 / 100];
    eprintln!(
        "Service created → address in status (watch), {SERVICES} Services: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(p50),
        ms(p95),
        ms(*latencies.last().unwrap())
    );
    // A benchmark, not a timed test: what must hold is that every Service got its own address.
    let mut ips = std::collections::BTreeSet::new();
    for i in 0..SERVICES {
        let got = ctl::ips(&services, &format!("lat-{i:03}")).await;
        assert_eq!(got.len(), 1, "lat-{i:03}: {got:?}");
        assert!(ips.insert(got[0].clone()), "{} given twice", got[0]);
    }
    watch.abort();
    controller.abort();
}
