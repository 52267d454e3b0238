//! The controller's gRPC status API against a real kube-apiserver (ignored unless run with
//! `--include-ignored`, see `tests/support`): grpcurl lists the services by reflection and calls
//! every Controller method; `metallb status` answers "allocated from pool" and "pending: pool
//! full" from the running controller.

mod support;

use std::{process::Command, time::Duration};

use metallb::status::{Listener, controller::ControllerService};
use serde_json::Value;
use support::{Cluster, METALLB_NAMESPACE, controller as ctl, eventually, grpcurl};

const WAIT: Duration = Duration::from_secs(30);

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn grpcurl_and_metallb_status_against_a_running_controller() {
    let grpcurl = grpcurl();
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let objects = format!(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: tiny, namespace: {METALLB_NAMESPACE}}}
spec: {{addresses: [203.0.113.5/32]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}
"#
    );
    support::create_yaml(&client, &objects, None).await.unwrap();

    let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().to_string();
    let (tx, rx) = tokio::sync::watch::channel(Default::default());
    tokio::spawn(ControllerService::new(rx).serve(listener, std::future::pending()));
    let mut config = ctl::config("status-test");
    config.lease = None;
    config.status_snapshot = Some(tx);
    let _controller = ctl::spawn(&client, config);

    // web takes the pool's only address; db, created after, finds the pool full.
    let services =
        kube::Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), "default");
    eventually("web gets 203.0.113.5", WAIT, || {
        let services = services.clone();
        async move { (ctl::ips(&services, "web").await == ["203.0.113.5"]).then_some(()) }
    })
    .await;
    support::create_yaml(
        &client,
        "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: default}\n\
         spec: {type: LoadBalancer, ports: [{port: 5432}]}\n",
        None,
    )
    .await
    .unwrap();

    // Reflection lists the status service, health and reflection itself.
    let (ok, list) = run(&grpcurl, &["-plaintext", &addr, "list"]);
    assert!(ok, "grpcurl list: {list}");
    for service in [
        "metallb.status.v1.Controller",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(list.lines().any(|l| l == service), "{service} in:\n{list}");
    }
    let (ok, methods) = run(
        &grpcurl,
        &["-plaintext", &addr, "list", "metallb.status.v1.Controller"],
    );
    assert!(ok, "{methods}");
    let methods: Vec<&str> = methods.lines().collect();
    assert_eq!(
        methods,
        [
            "metallb.status.v1.Controller.GetService",
            "metallb.status.v1.Controller.ListPools",
            "metallb.status.v1.Controller.ListServices",
            "metallb.status.v1.Controller.Watch",
        ]
    );

    let call = |method: &str, body: &str, extra: &[&str]| -> (bool, String) {
        let mut args = vec!["-plaintext", "-d", body];
        args.extend_from_slice(extra);
        args.push(&addr);
        let full = format!("metallb.status.v1.Controller/{method}");
        args.push(&full);
        run(&grpcurl, &args)
    };
    let db_pending = eventually("db pending through GetService", WAIT, || {
        let (ok, out) = call("GetService", r#"{"namespace":"default","name":"db"}"#, &[]);
        async move {
            let v: Value = serde_json::from_str(&out).ok()?;
            (ok && v["state"] == "ALLOCATION_STATE_PENDING").then_some(v)
        }
    })
    .await;
    assert!(
        db_pending["reason"] == "Failed to allocate IP for \"default/db\": no available IPs",
        "{db_pending}"
    );

    let (ok, web) = call("GetService", r#"{"namespace":"default","name":"web"}"#, &[]);
    assert!(ok, "{web}");
    let web: Value = serde_json::from_str(&web).unwrap();
    assert_eq!(web["state"], "ALLOCATION_STATE_ALLOCATED");
    assert_eq!(web["addresses"][0], "203.0.113.5");
    assert_eq!(web["pool"], "tiny");

    let (ok, missing) = call("GetService", r#"{"namespace":"x","name":"y"}"#, &[]);
    assert!(!ok && missing.contains("NotFound"), "{missing}");

    let (ok, listed) = call("ListServices", r#"{"namespace":"default"}"#, &[]);
    assert!(ok, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let names: Vec<&str> = listed["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "web"]);

    let (ok, pools) = call("ListPools", "{}", &[]);
    assert!(ok, "{pools}");
    let pools: Value = serde_json::from_str(&pools).unwrap();
    assert_eq!(pools["pools"][0]["name"], "tiny");
    assert_eq!(
        pools["pools"][0]["ipv4"]["assigned"], "1",
        "uint64 is a JSON string"
    );
    assert_eq!(pools["pools"][0]["ipv4"]["total"], "1");

    // Watch streams forever: the first snapshot arrives, then grpcurl's deadline ends it.
    let (_, watched) = call("Watch", "{}", &["-max-time", "2"]);
    assert!(
        watched.contains("\"name\": \"web\"") && watched.contains("DeadlineExceeded"),
        "{watched}"
    );

    let (ok, health) = run(
        &grpcurl,
        &["-plaintext", &addr, "grpc.health.v1.Health/Check"],
    );
    assert!(ok && health.contains("SERVING"), "{health}");

    // `metallb status` joins the answers.
    let bin = env!("CARGO_BIN_EXE_metallb");
    let (ok, out) = run(
        bin,
        &[
            "status",
            "service",
            "default/db",
            "--controller-addr",
            &addr,
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "default/db: pending: no available IPs; pools: tiny (1/1 used)"
    );
    let (ok, out) = run(
        bin,
        &["status", "service", "web", "--controller-addr", &addr],
    );
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "default/web: 203.0.113.5 from pool tiny; announcements: not asked (no speaker found or given)"
    );
    let (ok, out) = run(
        bin,
        &["status", "pools", "-o", "json", "--controller-addr", &addr],
    );
    assert!(ok, "{out}");
    let pools: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pools[0]["used"], 1);
    let (ok, out) = run(
        bin,
        &[
            "status",
            "service",
            "default/nope",
            "--controller-addr",
            &addr,
        ],
    );
    assert!(!ok && out.contains("Service default/nope"), "{out}");
}

/// `metallb must-gather --cluster` (what the must-gather image's gather_metallb runs) against a
/// real apiserver: the namespace objects, the metallb.io objects and CRDs are there, Secrets
/// are not, and the BGP MD5 password (in a BGPPeer and its last-applied annotation, a Secret
/// and a ConfigMap's frr.conf) appears in no file of the tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn cluster_must_gather_collects_objects_and_never_the_password() {
    const PASSWORD: &str = "lab-md5-Zq81";
    let cluster = Cluster::start().await;
    let objects = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: md5, namespace: {METALLB_NAMESPACE}}}
stringData: {{password: {PASSWORD}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: frr-conf, namespace: {METALLB_NAMESPACE}}}
data:
  frr.conf: "router bgp 64500\n neighbor 10.77.0.1 password {PASSWORD}\n"
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: router
  namespace: {METALLB_NAMESPACE}
  # What `kubectl apply` leaves: the object once more, as JSON in a string.
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{{"kind":"BGPPeer","spec":{{"password":"{PASSWORD}","peerASN":64501}}}}'
spec: {{myASN: 64500, peerASN: 64501, peerAddress: 10.77.0.1, password: {PASSWORD}}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: lab, namespace: {METALLB_NAMESPACE}}}
spec: {{addresses: [198.51.100.0/24]}}
"#
    );
    support::create_yaml(&cluster.client, &objects, None)
        .await
        .unwrap();
    let dest = cluster.dir.join("must-gather");
    let kubeconfig = cluster.dir.join("kubeconfig");
    let out = Command::new(env!("CARGO_BIN_EXE_metallb"))
        .args(["must-gather", "--cluster", "--step-timeout", "10s"])
        .arg("--dest-dir")
        .arg(&dest)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "must-gather: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ns = dest.join("namespaces").join(METALLB_NAMESPACE);
    for file in [
        "core/pods.yaml",
        "core/services.yaml",
        "core/configmaps.yaml",
        "core/events.yaml",
        "apps/deployments.yaml",
        "apps/daemonsets.yaml",
        "metallb.io/bgppeers.yaml",
        "metallb.io/ipaddresspools.yaml",
    ] {
        assert!(ns.join(file).is_file(), "{file} missing");
    }
    let crds = std::fs::read_to_string(dest.join(
        "cluster-scoped-resources/apiextensions.k8s.io/customresourcedefinitions/metallb.io.yaml",
    ))
    .unwrap();
    assert!(crds.contains("bgppeers.metallb.io"), "{crds}");
    // MetalLB's CRDs only, schemas intact (the BGPPeer's password property is described).
    assert!(
        !crds.contains("customresourcedefinitions.apiextensions"),
        "{crds}"
    );
    assert!(!crds.contains("<redacted>"), "{crds}");
    let peers = std::fs::read_to_string(ns.join("metallb.io/bgppeers.yaml")).unwrap();
    assert!(peers.contains("peerAddress: 10.77.0.1"), "{peers}");
    assert!(peers.contains("password: <redacted>"), "{peers}");
    support::assert_in_no_file(&dest, PASSWORD);
    let files = Command::new("find")
        .arg(&dest)
        .args(["-type", "f"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&files.stdout).contains("secret"),
        "no Secret file: {}",
        String::from_utf8_lossy(&files.stdout)
    );
}
