//! Restart safety and high availability against a real kube-apiserver (ignored
//! unless run with `--include-ignored`): 1,000 allocated Services survive a controller restart with zero changes
//! and zero writes; a standby replica takes over when the leader dies.

mod support;

use std::{
    collections::BTreeMap,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{coordination::v1::Lease, core::v1::Service};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use metallb::api::ip_address_pool::IPAddressPool;
use serde_json::json;
use support::{Cluster, METALLB_NAMESPACE, controller as ctl, eventually};

const SERVICES: usize = 1000;

async fn create_pool(client: &kube::Client, name: &str, cidr: &str) {
    let pool: IPAddressPool = serde_json::from_value(json!({
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": METALLB_NAMESPACE},
        "spec": {"addresses": [cidr]},
    }))
    .unwrap();
    Api::<IPAddressPool>::namespaced(client.clone(), METALLB_NAMESPACE)
        .create(&PostParams::default(), &pool)
        .await
        .unwrap();
}

/// name → (ips, resourceVersion) of every Service in `default` with an address and the pool
/// annotation.
async fn snapshot(api: &Api<Service>) -> BTreeMap<String, (Vec<String>, String)> {
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|svc| {
            let ips = ctl::service_ips(&svc);
            let annotated = svc
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("metallb.io/ip-allocated-from-pool"));
            // Both writes landed (status first, then the annotation).
            (!ips.is_empty() && annotated).then(|| {
                (
                    svc.metadata.name.clone().unwrap(),
                    (ips, svc.metadata.resource_version.clone().unwrap()),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn restart_with_1000_services_changes_zero_ips() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    create_pool(&client, "big", "10.100.0.0/20").await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");

    let (first, _) = ctl::spawn_counted(&client, ctl::config("first")).await;
    let started = Instant::now();
    // Created in a scrambled order, so allocation order (by name) differs from creation order.
    stream::iter((0..SERVICES).map(|i| (i * 7919) % SERVICES))
        .map(|i| {
            let services = services.clone();
            async move {
                let svc = ctl::lb_service(
                    &format!("svc-{i:04}"),
                    json!({}),
                    json!({"allocateLoadBalancerNodePorts": false}),
                );
                services.create(&PostParams::default(), &svc).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    let created = started.elapsed();
    let before = eventually("1000 Services allocated", Duration::from_secs(180), || {
        let services = services.clone();
        async move {
            let s = snapshot(&services).await;
            (s.len() == SERVICES).then_some(s)
        }
    })
    .await;
    eprintln!(
        "created {SERVICES} Services in {:.1}s; all allocated after {:.1}s",
        created.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let distinct: std::collections::BTreeSet<_> =
        before.values().map(|(ips, _)| ips.clone()).collect();
    assert_eq!(
        distinct.len(),
        SERVICES,
        "every Service has its own address"
    );

    // Crash (no clean shutdown), then a fresh replica with an empty allocator.
    first.abort();
    let _ = first.await;
    let restarted = Instant::now();
    let (second, stats) = ctl::spawn_counted(&client, ctl::config("second")).await;
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("zz-after-restart", json!({}), json!({})),
        )
        .await
        .unwrap();
    let new_ip = eventually(
        "a new Service is allocated after the restart",
        Duration::from_secs(60),
        || {
            let services = services.clone();
            async move {
                let ips = ctl::ips(&services, "zz-after-restart").await;
                (!ips.is_empty()).then_some(ips)
            }
        },
    )
    .await;
    eprintln!(
        "restart → first new allocation in {:.2}s",
        restarted.elapsed().as_secs_f64()
    );
    // Let anything that would have been written land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = snapshot(&services).await;
    let changed: Vec<_> = before
        .iter()
        .filter(|(name, v)| after.get(*name) != Some(v))
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        changed.is_empty(),
        "{} Services changed (address or resourceVersion) on restart: {:?}",
        changed.len(),
        &changed[..changed.len().min(10)]
    );
    assert!(
        !before.values().any(|(ips, _)| *ips == new_ip),
        "the new Service got a free address"
    );
    // Status + annotation of the one new Service, nothing else.
    assert_eq!(
        stats.requests.load(Ordering::Relaxed),
        2,
        "writes after restart"
    );
    second.abort();
}

async fn holder(client: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), METALLB_NAMESPACE)
        .get_opt("metallb-controller")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn standby_takes_over_when_the_leader_dies() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    create_pool(&client, "p", "10.50.0.0/29").await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");

    let leader = ctl::spawn(&client, ctl::config("replica-a"));
    eventually("replica-a leads", Duration::from_secs(20), || {
        let client = client.clone();
        async move { (holder(&client).await.as_deref() == Some("replica-a")).then_some(()) }
    })
    .await;
    let standby = ctl::spawn(&client, ctl::config("replica-b"));
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("one", json!({}), json!({})),
        )
        .await
        .unwrap();
    eventually("one gets 10.50.0.0", Duration::from_secs(20), || {
        let s = services.clone();
        async move { (ctl::ips(&s, "one").await == ["10.50.0.0"]).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        holder(&client).await.as_deref(),
        Some("replica-a"),
        "the standby does not steal a live lease"
    );

    // Kill the leader: no release, the standby must wait for the Lease to expire.
    leader.abort();
    let killed = Instant::now();
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("two", json!({}), json!({})),
        )
        .await
        .unwrap();
    eventually(
        "two gets 10.50.0.1 from the new leader",
        Duration::from_secs(30),
        || {
            let s = services.clone();
            async move { (ctl::ips(&s, "two").await == ["10.50.0.1"]).then_some(()) }
        },
    )
    .await;
    eprintln!(
        "standby took over and allocated {:.2}s after the leader died (lease 4s)",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(holder(&client).await.as_deref(), Some("replica-b"));
    assert_eq!(
        ctl::ips(&services, "one").await,
        ["10.50.0.0"],
        "takeover moves nothing"
    );
    standby.abort();
}
