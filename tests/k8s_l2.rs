//! Layer 2 end to end through a real kube-apiserver (ignored unless run with
//! `--include-ignored`; needs root): the controller gives a Service its addresses, `metallb speaker-l2
//! --from-api` in each node namespace (reaching the apiserver over the lab's host port,
//! 10.77.0.254) elects the owner, the client resolves the address to the owner's MAC and
//! reaches its listener, and `nodeAssigned` is a Kubernetes event, once per node that takes
//! the Service over, never repeated.

mod support;

#[path = "support/l2lab.rs"]
mod l2lab;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use l2lab::{Lab, VIP4, VIP6, lab, mac};
use support::{Cluster, ClusterOptions, controller as ctl, eventually};

const LONG: Duration = Duration::from_secs(30);

/// The L2 lab's cluster without the Service's status (the controller writes that).
const OBJECTS: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec:
  addresses: [10.77.0.200-10.77.0.210, "fd00:77::200-fd00:77::210"]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab, namespace: metallb-system}
spec:
  ipAddressPools: [lab]
  interfaces: [eth0]
---
apiVersion: v1
kind: Node
metadata: {name: node1}
---
apiVersion: v1
kind: Node
metadata: {name: node2}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{port: 8080}]
---
# As upstream, a layer 2 Service without any ready endpoint is not announced.
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
  - addresses: [10.244.0.5]
    conditions: {ready: true}
"#;

/// The `nodeAssigned` notes of Service default/web.
async fn node_assigned(client: &kube::Client) -> Vec<String> {
    ctl::events(client, "default", "Service", "web")
        .await
        .into_iter()
        .filter(|(reason, _)| reason == "nodeAssigned")
        .map(|(_, note)| note)
        .collect()
}

/// Waits for a `nodeAssigned` event of default/web from `node`; returns its note.
async fn wait_node_assigned(client: &kube::Client, node: &str) -> String {
    let note = format!("announcing from node \"{node}\" with protocol \"layer2\"");
    eventually(&format!("nodeAssigned event for {node}"), LONG, || {
        let client = client.clone();
        let want = note.clone();
        async move { node_assigned(&client).await.contains(&want).then_some(()) }
    })
    .await;
    note
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S and METALLB_LAB (kube-apiserver, root)"]
async fn l2_speakers_from_the_api_announce_fail_over_and_report_node_assigned() {
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = support::metallb_bin(bin_dir.path());
    // The lab first: the apiserver listens on its host port only.
    let mut lab = tokio::task::block_in_place(|| Lab::up_with_host("mll2-", &bin));
    let cluster = Cluster::start_with(ClusterOptions {
        bind: Some(lab::HOST_IPV4.into()),
        extra_ips: vec![lab::HOST_IPV4.into()],
        ..Default::default()
    })
    .await;
    let client = cluster.client.clone();
    let rbac = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac/speaker.yaml"),
    )
    .unwrap();
    support::create_yaml(&client, &rbac, None).await.unwrap();
    support::create_yaml(&client, OBJECTS, None).await.unwrap();
    let controller = ctl::spawn(&client, ctl::config("l2-controller"));
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    eventually("web gets both addresses", LONG, || {
        let services = services.clone();
        async move {
            let ips = ctl::ips(&services, "web").await;
            (ips == [VIP4, VIP6]).then_some(())
        }
    })
    .await;

    lab.kubeconfig = Some(cluster.kubeconfig_as_via("speaker", lab::HOST_IPV4));
    tokio::task::block_in_place(|| {
        lab.start_speakers(LONG);
        assert!(lab.ping(VIP4), "client cannot reach {VIP4}");
        assert_eq!(lab.neigh(VIP4).as_deref(), Some(mac("node2")));
        assert_eq!(lab.connect(VIP4), "node2");
        assert!(!lab.announcing("node1"), "{}", lab.log("node1"));
    });
    let node2_note = wait_node_assigned(&client, "node2").await;

    // The owner's speaker dies: node1 takes over, and says so once.
    tokio::task::block_in_place(|| {
        let killed = lab.kill_speaker("node2");
        let took = lab.wait_neigh(VIP4, mac("node1"), killed, LONG);
        assert!(took.is_some(), "no failover:\n{}", lab.log("node1"));
        assert_eq!(lab.connect(VIP4), "node1");
    });
    let node1_note = wait_node_assigned(&client, "node1").await;
    // Reconciles went on every 100 ms meanwhile: still one event per node, no series.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let notes = node_assigned(&client).await;
    assert_eq!(
        notes.iter().filter(|n| **n == node2_note).count(),
        1,
        "{notes:?}"
    );
    assert_eq!(
        notes.iter().filter(|n| **n == node1_note).count(),
        1,
        "{notes:?} ({:?})",
        started.elapsed()
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    let assigned: Vec<_> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("nodeAssigned"))
        .collect();
    assert!(
        assigned.iter().all(|e| e.series.is_none()),
        "repeated nodeAssigned: {assigned:?}"
    );
    controller.abort();
    tokio::task::block_in_place(|| drop(lab));
}
