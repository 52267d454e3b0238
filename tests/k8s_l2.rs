//! Layer 2 end to end through a real kube-apiserver (ignored unless run with
//! `--include-ignored`; needs root): the controller gives a Service its addresses, `metallb speaker
//! --from-api` in each node namespace (reaching the apiserver over the lab's host port,
//! 10.77.0.254) finds its peers from the Nodes' InternalIPs and the membership secret from
//! Secret `metallb-memberlist` (no `--members` anywhere), elects the owner, the client resolves
//! the address to the owner's MAC and reaches its listener; the owner's speaker is killed and
//! the other takes over; a third speaker started later joins and takes the address the
//! election gives it. `nodeAssigned` is a Kubernetes event, once per node that takes the Service
//! over, never repeated, and the owner writes a ServiceL2Status.

mod support;

#[path = "support/l2lab.rs"]
mod l2lab;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use l2lab::{Lab, VIP4, VIP6, lab, mac};
use metallb::api::service_l2_status::ServiceL2Status;
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
kind: Node
metadata: {name: node3}
---
apiVersion: v1
kind: Secret
metadata: {name: metallb-memberlist, namespace: metallb-system}
stringData: {secretkey: lab-secret-from-the-cluster}
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

/// Gives each Node the InternalIP a kubelet would report: the membership finds the speakers
/// there.
async fn set_internal_ips(client: &kube::Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    for (node, ip) in [
        ("node1", "10.77.0.11"),
        ("node2", "10.77.0.12"),
        ("node3", "10.77.0.13"),
    ] {
        let patch = serde_json::json!({"status": {"addresses": [
            {"type": "InternalIP", "address": ip},
            {"type": "Hostname", "address": node},
        ]}});
        nodes
            .patch_status(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
}

/// The nodes of the ServiceL2Status objects of default/web, with their interfaces.
async fn l2_statuses(client: &kube::Client) -> Vec<(String, Vec<String>)> {
    let api: Api<ServiceL2Status> = Api::namespaced(client.clone(), "metallb-system");
    let mut out: Vec<(String, Vec<String>)> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.status)
        .filter(|s| s.service_name == "web" && s.service_namespace == "default")
        .map(|s| (s.node, s.interfaces.into_iter().map(|i| i.name).collect()))
        .collect();
    out.sort();
    out
}

/// Waits until `node` has a ServiceL2Status for default/web on eth0.
async fn wait_l2_status(client: &kube::Client, node: &str) {
    eventually(&format!("ServiceL2Status of {node}"), LONG, || {
        let client = client.clone();
        async move {
            l2_statuses(&client)
                .await
                .contains(&(node.to_string(), vec!["eth0".to_string()]))
                .then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S and METALLB_LAB (kube-apiserver, root)"]
async fn speakers_discover_each_other_fail_over_admit_a_newcomer_and_report() {
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = support::metallb_bin(bin_dir.path());
    // The lab first: the apiserver listens on its host port only.
    let mut lab = tokio::task::block_in_place(|| Lab::up_with_host_three_nodes("mll2-", &bin));
    let cluster = Cluster::start_with(ClusterOptions::listening_on(lab::HOST_IPV4)).await;
    let client = cluster.client.clone();
    let rbac = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac/speaker.yaml"),
    )
    .unwrap();
    support::create_yaml(&client, &rbac, None).await.unwrap();
    support::create_yaml(&client, OBJECTS, None).await.unwrap();
    set_internal_ips(&client).await;
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

    // Two speakers, no membership flags: node2 wins 10.77.0.200 while node1 and node2 live
    // (node3's Node exists, but no speaker answers there, so it is not a candidate).
    lab.kubeconfig = Some(cluster.kubeconfig_as_via("speaker", lab::HOST_IPV4));
    tokio::task::block_in_place(|| {
        lab.start_speakers(LONG);
        assert!(lab.ping(VIP4), "client cannot reach {VIP4}");
        assert_eq!(lab.neigh(VIP4).as_deref(), Some(mac("node2")));
        assert_eq!(lab.connect(VIP4), "node2");
        assert!(!lab.announcing("node1"), "{}", lab.log("node1"));
        // Discovered, not configured: node1 sees node2 alive in its membership.
        let want = serde_json::json!(["node1", "node2"]);
        let start = Instant::now();
        while lab.status("node1")["liveSpeakers"] != want {
            assert!(start.elapsed() < LONG, "{}", lab.log("node1"));
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let node2_note = wait_node_assigned(&client, "node2").await;
    wait_l2_status(&client, "node2").await;

    // The owner's speaker dies: node1 takes over, and says so once.
    tokio::task::block_in_place(|| {
        let killed = lab.kill_speaker("node2");
        let took = lab.wait_neigh(VIP4, mac("node1"), killed, LONG);
        assert!(took.is_some(), "no failover:\n{}", lab.log("node1"));
        assert_eq!(lab.connect(VIP4), "node1");
    });
    let node1_note = wait_node_assigned(&client, "node1").await;
    wait_l2_status(&client, "node1").await;

    // A third speaker joins later: sha256("node3#10.77.0.200") sorts before node1's, so the
    // election gives it the address; node1 hands over without a restart.
    tokio::task::block_in_place(|| {
        let started = Instant::now();
        lab.start_speaker("node3");
        let took = lab.wait_neigh(VIP4, mac("node3"), started, LONG);
        assert!(
            took.is_some(),
            "node3 did not take over:\n{}\n{}",
            lab.log("node3"),
            lab.log("node1")
        );
        assert_eq!(lab.connect(VIP4), "node3");
        assert!(lab.wait_announcing("node3", LONG));
    });
    let node3_note = wait_node_assigned(&client, "node3").await;
    wait_l2_status(&client, "node3").await;
    // node1 withdrew: its ServiceL2Status is gone (node2's stays: it was killed, not stopped).
    eventually("node1's ServiceL2Status deleted", LONG, || {
        let client = client.clone();
        async move { (!l2_statuses(&client).await.iter().any(|(n, _)| n == "node1")).then_some(()) }
    })
    .await;

    // Reconciles went on every 100 ms meanwhile: still one event per takeover, no series.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let notes = node_assigned(&client).await;
    for note in [&node2_note, &node1_note, &node3_note] {
        assert_eq!(notes.iter().filter(|n| *n == note).count(), 1, "{notes:?}");
    }
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
