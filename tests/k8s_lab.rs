//! End to end in network namespaces: a real kube-apiserver, `metallb controller`, and one
//! `metallb speaker --from-api` per lab node driving that node's FRR; the router's BGP table
//! shows each Service's address while it exists. Needs a kube-apiserver (hack/k8s-bin.sh)
//! and the lab (root, FRR from hack/setup.sh): ignored unless run with `--include-ignored`.
//!
//! Each speaker runs inside its node's network namespace (`ip netns exec <prefix>node1 metallb
//! speaker ...`), as it would on a real node: it reaches the apiserver over the lab bridge at
//! 10.77.0.254 (the lab's host port, `MLB_LAB_HOST=1`; the apiserver listens on 0.0.0.0 with
//! that address in its certificate) and drives its node's FRR through the pathspace's sockets
//! under /var/run/frr/<ns>/ (`vtysh -N`), which are files and so reachable from any namespace.
//! The test itself talks to the apiserver on 127.0.0.1.

mod support;

#[path = "support/lab.rs"]
mod lab;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Service;
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use lab::Lab;
use metallb::{
    api::{service_bgp_status::ServiceBGPStatus, service_l2_status::ServiceL2Status},
    frr::{vty::VtySession, vtysh::parse_bgp_prefix},
};
use serde_json::json;
use support::{Cluster, ClusterOptions, Guard, controller as ctl, eventually};

const LONG: Duration = Duration::from_secs(60);
const BENCH_SERVICES: usize = 100;

/// Nodes, one pool advertised over BGP, and the router as peer (AS 64500 → 64501).
const LAB_OBJECTS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: node1}
---
apiVersion: v1
kind: Node
metadata: {name: node2}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec:
  addresses: [198.51.100.0/24]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: lab, namespace: metallb-system}
spec:
  ipAddressPools: [lab]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.77.0.1
"#;

/// `metallb speaker --from-api` inside `node`'s network namespace. `ip netns exec` execs the
/// program (no fork), so the child's pid is the speaker's.
fn spawn_speaker(bin: &Path, cluster: &Cluster, lab: &Lab, node: &str) -> Guard {
    spawn_speaker_with(bin, cluster, lab, node, &[])
}

/// [`spawn_speaker`] with more flags.
fn spawn_speaker_with(
    bin: &Path,
    cluster: &Cluster,
    lab: &Lab,
    node: &str,
    extra: &[&str],
) -> Guard {
    let log = cluster.dir.join(format!("speaker-{node}.log"));
    Guard(
        Command::new("ip")
            .args(["netns", "exec", &lab.ns(node)])
            .arg(bin)
            .args([
                "--log-level",
                "info",
                "speaker",
                "--from-api",
                "--node-name",
                node,
            ])
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_as_via("speaker", lab::HOST_IPV4))
            .args(["--frr-pathspace", &lab.ns(node)])
            .args(["--debounce-ms", "20"])
            .arg("--state-dir")
            .arg(lab.state_dir(node))
            .args(extra)
            .stdout(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The lab (with its host port) and an apiserver listening on that port only.
async fn lab_and_cluster(prefix: &str) -> (Lab, Cluster) {
    let lab = Lab::up_with_host(prefix);
    let cluster = Cluster::start_with(ClusterOptions::listening_on(lab::HOST_IPV4)).await;
    (lab, cluster)
}

/// (device, inode) of a network namespace file (`/proc/<pid>/ns/net`, `/run/netns/<name>`):
/// two processes share a namespace exactly when these are equal.
fn netns_id(path: &str) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {path}: {e}"));
    (m.dev(), m.ino())
}

/// The speaker's established TCP connections to the apiserver's bridge address, as `ss` in the
/// node's namespace lists them (`local peer` pairs).
fn speaker_connections(lab: &Lab, node: &str, pid: u32, api: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns(node)])
        .args(["ss", "-Htnp", "state", "established", "dst", api])
        .output()
        .expect("ss runs");
    let owner = format!("pid={pid},");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&owner))
        .map(|l| {
            l.split_whitespace()
                .skip(2)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// (the router has a path for `prefix`, and has selected a best one). Asked over the router's
/// bgpd vty socket (~0.3 ms a query) so the benchmark's figures have ~5 ms resolution, not a
/// vtysh process's 25-40 ms.
async fn has_route(router: &mut VtySession, prefix: &str) -> (bool, bool) {
    let reply = router
        .command(&format!("show bgp vrf default ipv4 unicast {prefix} json"))
        .await
        .expect("router bgpd vty");
    match parse_bgp_prefix(&reply.output) {
        Ok(Some(p)) => (!p.paths.is_empty(), p.best().is_some()),
        _ => (false, false),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S and METALLB_LAB (kube-apiserver, root, FRR)"]
async fn service_through_the_api_reaches_the_router_and_is_withdrawn() {
    // The apiserver listens on the lab's host port only (10.77.0.254, on a veth this test
    // creates into its own bridge), never on the machine's other interfaces: the test and the
    // speakers inside the node namespaces all come in there. So the lab goes up first.
    let (lab, cluster) = lab_and_cluster("mlk-").await;
    let client = cluster.client.clone();
    support::create_yaml(&client, LAB_OBJECTS, None)
        .await
        .unwrap();
    let rbac = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac/speaker.yaml"),
    )
    .unwrap();
    support::create_yaml(&client, &rbac, None).await.unwrap();
    let controller = ctl::spawn(&client, ctl::config("lab-controller"));
    let bin = support::metallb_bin(&cluster.dir);
    let _logs = [
        support::LogOnPanic(cluster.dir.join("speaker-node1.log")),
        support::LogOnPanic(cluster.dir.join("speaker-node2.log")),
    ];
    let speakers = [
        spawn_speaker(&bin, &cluster, &lab, "node1"),
        spawn_speaker(&bin, &cluster, &lab, "node2"),
    ];
    let router = lab.vtysh("router");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");

    // First Service: sessions come up, the prefix appears via both nodes.
    let started = Instant::now();
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("web", json!({}), json!({})),
        )
        .await
        .unwrap();
    let ip = eventually("web gets an address", LONG, || {
        let s = services.clone();
        async move { ctl::ips(&s, "web").await.into_iter().next() }
    })
    .await;
    let prefix = format!("{ip}/32");
    let path = lab::wait_route(&router, &prefix, None, LONG, Duration::from_millis(50))
        .await
        .unwrap();
    eprintln!(
        "{prefix} at the router {:.1}s after the first Service was created (BGP sessions included), next hops {:?}",
        started.elapsed().as_secs_f64(),
        path.nexthop_ips().collect::<Vec<_>>()
    );

    // Each node says once that it announces the Service.
    for node in ["node1", "node2"] {
        let note = format!("announcing from node \"{node}\" with protocol \"bgp\"");
        eventually(&format!("nodeAssigned event from {node}"), LONG, || {
            let client = client.clone();
            let note = note.clone();
            async move {
                ctl::events(&client, "default", "Service", "web")
                    .await
                    .into_iter()
                    .find(|(r, n)| r == "nodeAssigned" && *n == note)
            }
        })
        .await;
    }

    // ServiceBGPStatus: per node, the peers it advertises the Service to.
    let statuses: Api<ServiceBGPStatus> =
        Api::namespaced(client.clone(), support::METALLB_NAMESPACE);
    for node in ["node1", "node2"] {
        eventually(
            &format!("ServiceBGPStatus of default/web on {node}"),
            LONG,
            || {
                let statuses = statuses.clone();
                async move {
                    let s = statuses
                        .get_opt(&format!("{node}-default-web"))
                        .await
                        .ok()??
                        .status?;
                    (s.node == node
                        && s.service_name == "web"
                        && s.service_namespace == "default"
                        && s.peers == ["router"])
                    .then_some(())
                }
            },
        )
        .await;
    }

    let states: Api<metallb::api::configuration_state::ConfigurationState> =
        Api::namespaced(client.clone(), support::METALLB_NAMESPACE);
    for node in ["node1", "node2"] {
        eventually(
            &format!("ConfigurationState speaker-{node} is Valid"),
            LONG,
            || {
                let states = states.clone();
                async move {
                    let s = states
                        .get_opt(&format!("speaker-{node}"))
                        .await
                        .ok()??
                        .status?;
                    (s.result.as_deref() == Some("Valid")).then_some(())
                }
            },
        )
        .await;
    }

    // The speakers live in their node namespaces and talk to the apiserver over the bridge:
    // each one's network namespace is the node's, and its API connections go from the node's
    // address to 10.77.0.254:<port> (inside the namespace 127.0.0.1 is its own loopback, and
    // the bridge is the only way out).
    let port = cluster.server.rsplit(':').next().unwrap();
    for (speaker, node, ip) in [
        (&speakers[0], "node1", "10.77.0.11"),
        (&speakers[1], "node2", "10.77.0.12"),
    ] {
        let pid = speaker.0.id();
        assert_eq!(
            netns_id(&format!("/proc/{pid}/ns/net")),
            netns_id(&format!("/run/netns/{}", lab.ns(node))),
            "speaker {node} (pid {pid}) is not in netns {}",
            lab.ns(node)
        );
        let conns = speaker_connections(&lab, node, pid, lab::HOST_IPV4);
        let want = format!("{ip}:");
        let to = format!(" {}:{port}", lab::HOST_IPV4);
        assert!(
            !conns.is_empty()
                && conns
                    .iter()
                    .all(|c| c.starts_with(&want) && c.ends_with(&to)),
            "speaker {node}: connections to the apiserver {conns:?}, want {ip}:* -> {}:{port}",
            lab::HOST_IPV4
        );
        eprintln!(
            "speaker {node} (pid {pid}) runs in netns {}: {} connections {ip} -> {}:{port}",
            lab.ns(node),
            conns.len(),
            lab::HOST_IPV4
        );
    }

    // Both nodes' paths are in before the delete (both sessions fully up).
    lab::wait_paths(&router, &prefix, &["10.77.0.11", "10.77.0.12"], LONG).await;

    // Deleted → withdrawn.
    let deleted = Instant::now();
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    if let Err(e) = lab::wait_no_route(&router, &prefix, LONG).await {
        let mut dump = String::new();
        for role in ["node1", "node2"] {
            let out = Command::new("vtysh")
                .args([
                    "-N",
                    &lab.ns(role),
                    "-c",
                    "show running-config",
                    "-c",
                    "show bgp ipv4 unicast",
                ])
                .output()
                .unwrap();
            dump.push_str(&format!(
                "--- {role}\n{}\n",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        panic!("{e}\n{dump}");
    }
    eventually("ServiceBGPStatus objects of web are deleted", LONG, || {
        let statuses = statuses.clone();
        async move {
            let left = statuses.list(&Default::default()).await.ok()?;
            (!left.items.iter().any(|o| {
                o.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.ends_with("-default-web"))
            }))
            .then_some(())
        }
    })
    .await;
    eprintln!(
        "{prefix} withdrawn {:.0} ms after the delete",
        deleted.elapsed().as_secs_f64() * 1000.0
    );

    // Benchmark: Service created → its prefix in the router's table, one at a time.
    let mut router_vty = lab.bgpd_vty("router").await;
    // When a watch first sees each bench Service with an address in status.
    let (status_seen, status_watch) = ctl::watch_first_address(&services);
    let mut latencies = Vec::with_capacity(BENCH_SERVICES);
    let mut to_status = Vec::with_capacity(BENCH_SERVICES);
    let mut to_received = Vec::with_capacity(BENCH_SERVICES);
    for i in 0..BENCH_SERVICES {
        let ip = format!("198.51.100.{}", 100 + i);
        let prefix = format!("{ip}/32");
        let start = Instant::now();
        services
            .create(
                &PostParams::default(),
                &ctl::lb_service(
                    &format!("bench-{i:03}"),
                    json!({"metallb.io/loadBalancerIPs": ip}),
                    json!({}),
                ),
            )
            .await
            .unwrap();
        let mut received = None;
        loop {
            let (has, best) = has_route(&mut router_vty, &prefix).await;
            if has && received.is_none() {
                received = Some(start.elapsed());
            }
            if best {
                break;
            }
            assert!(start.elapsed() < LONG, "{prefix} never reached the router");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(start.elapsed());
        to_received.push(received.unwrap_or(start.elapsed()));
        let name = format!("bench-{i:03}");
        if let Some(at) = status_seen.lock().unwrap().get(&name) {
            to_status.push(at.saturating_duration_since(start));
        }
    }
    status_watch.abort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        ms(v[(v.len() * p / 100).min(v.len() - 1)])
    };
    eprintln!(
        "Service created → prefix in the router's BGP table (best path), {BENCH_SERVICES} Services: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        pct(&mut latencies, 50),
        pct(&mut latencies, 95),
        pct(&mut latencies, 100)
    );
    eprintln!(
        "  of which: created → address in status p50 {:.0} ms (n={}); created → path received at the router p50 {:.0} ms, p95 {:.0} ms",
        pct(&mut to_status, 50),
        to_status.len(),
        pct(&mut to_received, 50),
        pct(&mut to_received, 95),
    );
    // nodeAssigned only when the announcing set changes: 100 more Services later, the first
    // bench Service still has one event per node, never repeated (no series).
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    let assigned: Vec<_> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("nodeAssigned")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("bench-000")
        })
        .collect();
    assert_eq!(assigned.len(), 2, "one nodeAssigned per node: {assigned:?}");
    assert!(
        assigned.iter().all(|e| e.series.is_none()),
        "repeated nodeAssigned: {assigned:?}"
    );
    controller.abort();
}

/// Pools and advertisements of the status test besides [`LAB_OBJECTS`]: `tiny` (one address,
/// BGP) fills up; `nowhere` is advertised only to nodes labelled `nowhere=yes` (none are).
const STATUS_OBJECTS: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: tiny, namespace: metallb-system}
spec:
  addresses: [198.51.101.1/32]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: tiny, namespace: metallb-system}
spec:
  ipAddressPools: [tiny]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: nowhere, namespace: metallb-system}
spec:
  addresses: [198.51.102.0/28]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: nowhere, namespace: metallb-system}
spec:
  ipAddressPools: [nowhere]
  nodeSelectors: [{matchLabels: {nowhere: "yes"}}]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: l2, namespace: metallb-system}
spec:
  addresses: [10.77.0.220/32]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec:
  ipAddressPools: [l2]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: status-reader-controller-sa}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "metallb-system:status-reader"}
subjects: [{kind: ServiceAccount, name: controller, namespace: metallb-system}]
"#;

/// The speakers' status APIs on the nodes' addresses (off loopback: every call authorized by
/// the apiserver), the controller's on loopback, and `metallb status service` answering from
/// FRR: advertised by both nodes; one node's session shut at the router (Watch streams it
/// within 1 s, and the answer changes); pending because the pool is full; allocated but no
/// eligible node; allocated from a layer 2 pool and owned by the node whose speaker wrote its
/// ServiceL2Status. grpcurl lists the Speaker service by reflection and calls each method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S and METALLB_LAB (kube-apiserver, root, FRR)"]
async fn status_api_answers_from_frr_in_the_lab() {
    use metallb::status::{
        Listener,
        controller::ControllerService,
        proto::{self, speaker_client::SpeakerClient},
    };

    let grpcurl = support::grpcurl();
    let (lab, cluster) = lab_and_cluster("mls-").await;
    let client = cluster.client.clone();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for yaml in [
        LAB_OBJECTS.to_string(),
        std::fs::read_to_string(root.join("deploy/rbac/speaker.yaml")).unwrap(),
        std::fs::read_to_string(root.join("deploy/rbac/status-reader.yaml")).unwrap(),
        STATUS_OBJECTS.to_string(),
    ] {
        support::create_yaml(&client, &yaml, None).await.unwrap();
    }
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let controller_addr = listener.local_addr().to_string();
    let (tx, rx) = tokio::sync::watch::channel(Default::default());
    tokio::spawn(ControllerService::new(rx).serve(listener, std::future::pending()));
    let mut config = ctl::config("status-lab");
    config.lease = None;
    config.status_snapshot = Some(tx);
    let _controller = ctl::spawn(&client, config);

    let bin = support::metallb_bin(&cluster.dir);
    let _logs = [
        support::LogOnPanic(cluster.dir.join("speaker-node1.log")),
        support::LogOnPanic(cluster.dir.join("speaker-node2.log")),
    ];
    let nodes = [("node1", "10.77.0.11"), ("node2", "10.77.0.12")];
    let _speakers: Vec<Guard> = nodes
        .iter()
        .map(|(node, ip)| {
            let addr = format!("{ip}:7475");
            spawn_speaker_with(
                &bin,
                &cluster,
                &lab,
                node,
                &["--status-addr", &addr, "--status-poll-ms", "200"],
            )
        })
        .collect();
    // A reader's token (the controller ServiceAccount, bound to the status-reader role) and a
    // token without the role (the speaker's).
    let reader = cluster.kubeconfig_as("controller");
    let token = |kubeconfig: &Path| -> String {
        let text = std::fs::read_to_string(kubeconfig).unwrap();
        let yaml: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        yaml["users"][0]["user"]["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let reader_token = token(&reader);
    let other_token = token(&cluster.kubeconfig_as("speaker"));

    let status = |service: &str| -> String {
        let mut cmd = Command::new(&bin);
        cmd.args(["status", "service", service])
            .args(["--controller-addr", &controller_addr])
            .arg("--kubeconfig")
            .arg(&reader);
        for (node, ip) in nodes {
            cmd.args(["--speaker-addr", &format!("{node}={ip}:7475")]);
        }
        let out = cmd.output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // 1. Allocated and advertised by both nodes (from each node's Adj-RIB-Out).
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service("web", json!({}), json!({})),
        )
        .await
        .unwrap();
    let answer = eventually("web advertised by both nodes", LONG, || {
        let answer = status("default/web");
        async move {
            (answer.contains("from pool lab; BGP: advertised by node1 to 10.77.0.1 (Established")
                && answer.contains("and by node2 to 10.77.0.1 (Established"))
            .then_some(answer)
        }
    })
    .await;
    eprintln!("both nodes: {}", answer.trim());

    // grpcurl: reflection lists the Speaker service; each method answers with the reader's
    // token; no token is refused (unauthenticated), a token without the role forbidden.
    let node1 = "10.77.0.11:7475";
    let bearer = format!("authorization: Bearer {reader_token}");
    let grpc = |args: &[&str]| -> (bool, String) {
        let out = Command::new(&grpcurl).args(args).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, list) = grpc(&["-plaintext", "-H", &bearer, node1, "list"]);
    assert!(ok, "grpcurl list: {list}");
    assert!(
        list.lines().any(|l| l == "metallb.status.v1.Speaker"),
        "{list}"
    );
    for (method, body) in [
        ("GetNode", "{}"),
        ("ListSessions", "{}"),
        ("ListAdvertisements", r#"{"address":""}"#),
    ] {
        let full = format!("metallb.status.v1.Speaker/{method}");
        let (ok, out) = grpc(&["-plaintext", "-H", &bearer, "-d", body, node1, &full]);
        assert!(ok, "{method}: {out}");
        assert!(out.contains("10.77.0.1"), "{method}: {out}");
    }
    let watch = "metallb.status.v1.Speaker/Watch";
    let (ok, out) = grpc(&["-plaintext", "-H", &bearer, "-max-time", "2", node1, watch]);
    assert!(!ok && out.contains("\"node\": \"node1\""), "Watch: {out}");
    let (ok, out) = grpc(&["-plaintext", node1, "metallb.status.v1.Speaker/GetNode"]);
    assert!(!ok && out.contains("Unauthenticated"), "no token: {out}");
    let other = format!("authorization: Bearer {other_token}");
    let (ok, out) = grpc(&[
        "-plaintext",
        "-H",
        &other,
        node1,
        "metallb.status.v1.Speaker/GetNode",
    ]);
    assert!(!ok && out.contains("PermissionDenied"), "no role: {out}");

    // 2. The router shuts node1's session: Watch streams it within 1 s, and the answer (from
    // FRR, not from intent) no longer has node1 advertising.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{node1}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut speaker = SpeakerClient::new(channel);
    let mut request = tonic::Request::new(proto::WatchRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {reader_token}").parse().unwrap(),
    );
    let mut stream = speaker.watch(request).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(
        first
            .bgp
            .iter()
            .any(|s| s.peer == "10.77.0.1" && s.state() == proto::BgpState::Established),
        "{first:?}"
    );
    let shut = |on: bool| {
        let lab = &lab;
        async move {
            let neighbor = format!(
                "{}neighbor 10.77.0.11 shutdown",
                if on { "" } else { "no " }
            );
            let out = lab::router_bgp_line(lab, &neighbor).await;
            assert!(out.success(), "router: {neighbor}: {}", out.text());
        }
    };
    shut(true).await;
    let shut_at = Instant::now();
    let down = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let update = stream.message().await.unwrap().unwrap();
            if update
                .bgp
                .iter()
                .any(|s| s.peer == "10.77.0.1" && s.state() != proto::BgpState::Established)
            {
                return update;
            }
        }
    })
    .await
    .expect("Watch streams the session going down within 1 s");
    eprintln!(
        "Watch: node1's session {} {:.0} ms after the router shut it",
        down.bgp[0].state_text,
        shut_at.elapsed().as_secs_f64() * 1e3
    );
    let answer = eventually("web no longer advertised by node1", LONG, || {
        let answer = status("default/web");
        async move {
            (answer.contains("BGP: advertised by node2 to 10.77.0.1")
                && !answer.contains("by node1 to")
                && answer.contains("sessions down: node1 to 10.77.0.1"))
            .then_some(answer)
        }
    })
    .await;
    eprintln!("node1 shut: {}", answer.trim());
    shut(false).await;

    // 3. Pending because the pool is full.
    for name in ["first", "second"] {
        services
            .create(
                &PostParams::default(),
                &ctl::lb_service(
                    name,
                    json!({"metallb.universe.tf/address-pool": "tiny"}),
                    json!({}),
                ),
            )
            .await
            .unwrap();
        if name == "first" {
            eventually("first takes tiny's address", LONG, || {
                let s = services.clone();
                async move { (!ctl::ips(&s, "first").await.is_empty()).then_some(()) }
            })
            .await;
        }
    }
    let answer = eventually("second pending, tiny full", LONG, || {
        let answer = status("default/second");
        async move {
            (answer.contains("pending:") && answer.contains("tiny (1/1 used)")).then_some(answer)
        }
    })
    .await;
    eprintln!("pool full: {}", answer.trim());

    // 4. Allocated, but no node is eligible (the advertisement selects no node).
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service(
                "lonely",
                json!({"metallb.universe.tf/address-pool": "nowhere"}),
                json!({}),
            ),
        )
        .await
        .unwrap();
    let answer = eventually("lonely allocated, announced by nobody", LONG, || {
        let answer = status("default/lonely");
        async move {
            (answer.contains("from pool nowhere, but no node announces it (asked node1, node2)"))
                .then_some(answer)
        }
    })
    .await;
    eprintln!("no eligible node: {}", answer.trim());

    // 5. Allocated from a layer 2 pool: owned by the node the election picked, the one whose
    //    speaker wrote the Service's ServiceL2Status (two independent outputs must agree).
    services
        .create(
            &PostParams::default(),
            &ctl::lb_service(
                "l2web",
                json!({"metallb.universe.tf/address-pool": "l2"}),
                json!({}),
            ),
        )
        .await
        .unwrap();
    // As upstream, a layer 2 Service without a ready endpoint is not announced.
    support::create_yaml(
        &client,
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {name: l2web-1, namespace: default, labels: {kubernetes.io/service-name: l2web}}\n\
         addressType: IPv4\nendpoints: [{addresses: [10.244.0.5], conditions: {ready: true}}]\n",
        None,
    )
    .await
    .unwrap();
    let l2_statuses: Api<ServiceL2Status> = Api::namespaced(client.clone(), "metallb-system");
    let owner = eventually("l2web's ServiceL2Status", LONG, || {
        let api = l2_statuses.clone();
        async move {
            let owners: Vec<String> = api
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter_map(|o| o.status)
                .filter(|s| s.service_name == "l2web" && s.service_namespace == "default")
                .map(|s| s.node)
                .collect();
            (owners.len() == 1).then(|| owners[0].clone())
        }
    })
    .await;
    let answer = eventually("l2web owned by one node", LONG, || {
        let answer = status("default/l2web");
        let want = format!("layer 2: owned: 10.77.0.220 on eth0 by node {owner}");
        async move { answer.contains(&want).then_some(answer) }
    })
    .await;
    eprintln!("layer 2 owner: {}", answer.trim());
    assert!(
        answer.contains("10.77.0.220 from pool l2; BGP: none;"),
        "{answer}"
    );
}
