//! Helpers for controller tests: running replicas in-process, reading Services and events.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::{core::v1::Service, events::v1::Event};
use kube::{
    Api, Client,
    api::ListParams,
    runtime::{WatchStreamExt, watcher},
};
use metallb::{
    controller::{self, ControllerConfig},
    k8s::status::WriterStats,
};

use super::METALLB_NAMESPACE;

/// A controller config for tests: short Lease timings.
pub fn config(identity: &str) -> ControllerConfig {
    let mut config = ControllerConfig::new(METALLB_NAMESPACE, identity);
    if let Some(lease) = &mut config.lease {
        lease.lease_duration = Duration::from_secs(4);
        lease.renew_deadline = Duration::from_secs(3);
        lease.retry_period = Duration::from_millis(250);
    }
    config
}

/// When a watch first saw each Service (by name) with an address in status.
pub type FirstSeen = Arc<Mutex<HashMap<String, Instant>>>;

/// Watches `services` and records when each first has an address in status; abort the task
/// when done.
pub fn watch_first_address(services: &Api<Service>) -> (FirstSeen, tokio::task::JoinHandle<()>) {
    let seen: FirstSeen = Arc::default();
    let task = {
        let seen = seen.clone();
        let services = services.clone();
        tokio::spawn(async move {
            let mut stream =
                std::pin::pin!(watcher(services, watcher::Config::default()).applied_objects());
            while let Some(Ok(svc)) = stream.next().await {
                if !service_ips(&svc).is_empty() {
                    seen.lock()
                        .unwrap()
                        .entry(svc.metadata.name.clone().unwrap_or_default())
                        .or_insert_with(Instant::now);
                }
            }
        })
    };
    (seen, task)
}

/// Runs a replica (with leader election as configured) in a task; abort it to simulate a crash.
pub fn spawn(client: &Client, config: ControllerConfig) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(e) = controller::run(client, config, std::future::pending()).await {
            eprintln!("controller stopped: {e}");
        }
    })
}

/// Runs a replica without leader election and returns its writer counters.
pub async fn spawn_counted(
    client: &Client,
    config: ControllerConfig,
) -> (tokio::task::JoinHandle<()>, Arc<WriterStats>) {
    let client = client.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let (_leader_tx, leader) = tokio::sync::watch::channel(true);
        let result = controller::serve(client, config, leader, Some(tx)).await;
        eprintln!("controller stopped: {result:?}");
    });
    (handle, rx.await.expect("writer stats"))
}

/// `status.loadBalancer.ingress[].ip` of a Service (empty when it has none or is gone).
pub async fn ips(api: &Api<Service>, name: &str) -> Vec<String> {
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .map(|svc| service_ips(&svc))
        .unwrap_or_default()
}

/// Ingress addresses of a Service object.
pub fn service_ips(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

/// `(reason, note)` of every event about `kind/name` in `namespace`.
pub async fn events(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .map(|list| {
            list.items
                .into_iter()
                .filter(|e| {
                    e.regarding.as_ref().is_some_and(|r| {
                        r.name.as_deref() == Some(name) && r.kind.as_deref() == Some(kind)
                    })
                })
                .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// A LoadBalancer Service manifest with one TCP port.
pub fn lb_service(
    name: &str,
    annotations: serde_json::Value,
    extra_spec: serde_json::Value,
) -> Service {
    let mut spec =
        serde_json::json!({"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "annotations": annotations},
        "spec": spec,
    }))
    .expect("service")
}
