//! MetalLB installed on a real node, as a user installs it: a kube-apiserver, a real kubelet
//! with containerd on this host (`hack/node.sh`, `support::node`), our images (hack/images.sh)
//! and `kubectl apply -k deploy/`. The host is on the lab bridge as 10.77.0.254 and the lab's
//! router peers with it, so the speaker pod (host network) peers with the router.
//!
//! Checks the seed's verification (26.2.3) and BGP troubleshooting steps (26.7.2) literally,
//! with kubectl in place of oc, a Service's address at the router, the speaker's JSON logs, layer
//! 2 from the speaker pod (the controller's memberlist Secret, the lab's client resolving a
//! Service's address to the host port's MAC), and a deleted speaker pod coming back with the
//! same FRR configuration and routes, and must-gather run as `oc adm must-gather` runs it.
//!
//! Needs root, the lab (FRR), the node's packages (hack/setup.sh), hack/k8s-bin.sh's binaries
//! and hack/images.sh's images; run by hack/test (`--include-ignored`). Missing prerequisites
//! fail the test.

mod support;

#[path = "support/lab.rs"]
mod lab;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use lab::Lab;
use support::{
    Cluster, ClusterOptions,
    node::{Node, column, eventually_sync},
};

const NODE: &str = "lab-host";
const NS: &str = "metallb-system";
const ROUTER: &str = "10.77.0.1";
const WAIT: Duration = Duration::from_secs(120);

/// The BGP MD5 password of [`BGP_CONFIG`]'s second peer: in FRR's configuration, never in a
/// must-gather.
const PEER_PASSWORD: &str = "lab-md5-Kp42x";

/// The seed's BGP example, aimed at the lab router (AS 64501) from the node (AS 64500), and a
/// Service with one ready backend (the speaker announces a Service only while it has ready
/// endpoints, which kube-controller-manager's EndpointSlice controller publishes; the pause
/// image stands in for a web server). A second peer with an MD5 password, at an address
/// nothing in the lab answers on, puts the password into FRR's configuration for must-gather
/// to leave out.
const BGP_CONFIG: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: doc-example, namespace: metallb-system}
spec:
  addresses: [203.0.113.200/30]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: doc-example, namespace: metallb-system}
spec:
  ipAddressPools: [doc-example]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: lab-router, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.77.0.1
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: md5-peer, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64502
  peerAddress: 10.77.0.99
  password: "@PEER_PASSWORD@"
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "localhost/metallb/pause:dev", imagePullPolicy: IfNotPresent}
"#;

/// The layer 2 address on the lab's /24, announced only by lab-host and only on the host port
/// (`@HOST_LINK@`): no gratuitous ARP ever leaves on the machine's real interfaces.
const L2_VIP: &str = "10.77.0.210";

/// A layer 2 pool that no other Service takes (`autoAssign: false`), its L2Advertisement
/// restricted to the host port and to lab-host, and a Service asking for the pool (same ready
/// backend as `web`).
const L2_CONFIG: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-l2, namespace: metallb-system}
spec:
  addresses: [10.77.0.210/32]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab-l2, namespace: metallb-system}
spec:
  ipAddressPools: [lab-l2]
  interfaces: ["@HOST_LINK@"]
  nodeSelectors:
  - matchLabels: {kubernetes.io/hostname: lab-host}
---
apiVersion: v1
kind: Service
metadata:
  name: web-l2
  namespace: default
  annotations: {metallb.universe.tf/address-pool: lab-l2}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_NODE (root, lab, kubelet + containerd: hack/setup.sh, hack/k8s-bin.sh, hack/images.sh)"]
async fn speaker_daemonset_on_a_real_node() {
    let started = Instant::now();
    let lab = tokio::task::block_in_place(|| Lab::up_with_host_peer_and_client("mkn-"));
    let cluster = Cluster::start_with(ClusterOptions {
        pods: true,
        ..ClusterOptions::listening_on(lab::HOST_IPV4)
    })
    .await;
    let mut node = tokio::task::block_in_place(|| Node::up(&cluster, NODE));

    // Install as a user would.
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    node.kubectl(&["apply", "-k", &deploy.display().to_string()]);
    for workload in ["deployment/controller", "daemonset/speaker"] {
        node.kubectl(&[
            "rollout",
            "status",
            "-n",
            NS,
            workload,
            &format!("--timeout={}s", WAIT.as_secs()),
        ]);
    }
    eprintln!(
        "installed and ready {:.1}s after the test started",
        started.elapsed().as_secs_f64()
    );

    // 26.2.3: the controller Deployment is 1/1, the speaker DaemonSet has one ready pod per node.
    let deployment = node.kubectl(&["get", "deployment", "-n", NS, "controller"]);
    eprintln!("{deployment}");
    assert_eq!(column(&deployment, "READY"), "1/1", "{deployment}");
    let daemonset = node.kubectl(&["get", "daemonset", "-n", NS, "speaker"]);
    eprintln!("{daemonset}");
    let nodes = node
        .kubectl(&["get", "nodes", "--no-headers"])
        .lines()
        .count();
    assert_eq!(nodes, 1, "one real node");
    for col in ["DESIRED", "CURRENT", "READY", "AVAILABLE"] {
        assert_eq!(
            column(&daemonset, col),
            nodes.to_string(),
            "{col}: {daemonset}"
        );
    }

    // A LoadBalancer Service through the API: an address from the pool, announced at the router.
    let config = cluster.dir.join("bgp.yaml");
    std::fs::write(
        &config,
        BGP_CONFIG.replace("@PEER_PASSWORD@", PEER_PASSWORD),
    )
    .unwrap();
    node.kubectl(&["apply", "-f", &config.display().to_string()]);
    let ip = eventually_sync("web gets an address", WAIT, || {
        let ip = node.kubectl(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ]);
        (!ip.is_empty()).then_some(ip)
    });
    let prefix = format!("{ip}/32");
    let router = lab.vtysh("router");
    let t = Instant::now();
    let pod = speaker_pod(&node);
    let diagnose = Diagnose {
        node: &node,
        pod: &pod,
        router_ns: lab.ns("router"),
    };
    lab::wait_paths(&router, &prefix, &[lab::HOST_IPV4], WAIT).await;
    eprintln!(
        "{prefix} at the router via {} {:.1}s after the address",
        lab::HOST_IPV4,
        t.elapsed().as_secs_f64()
    );

    // 26.7.2, literally: the speaker pods by label, then vtysh in their frr container.
    let running = vtysh(&node, &pod, "show running-config");
    for line in [
        "router bgp 64500".to_string(),
        format!("neighbor {ROUTER} remote-as 64501"),
        format!("network {prefix}"),
        "log file /etc/frr/frr.log informational".to_string(),
    ] {
        assert!(running.contains(&line), "no {line:?} in:\n{running}");
    }
    let summary = vtysh(&node, &pod, "show bgp summary");
    let peer = summary
        .lines()
        .find(|l| l.starts_with(ROUTER))
        .unwrap_or_else(|| panic!("no {ROUTER} in:\n{summary}"));
    // An established session shows its prefix counts where a down one shows its state.
    assert!(
        !["Idle", "Active", "Connect", "OpenSent", "never"]
            .iter()
            .any(|s| peer.contains(s)),
        "session not established: {peer}"
    );
    let entry = vtysh(&node, &pod, &format!("show bgp ipv4 unicast {prefix}"));
    let advertised = entry
        .split("Advertised to")
        .nth(1)
        .unwrap_or_else(|| panic!("no \"Advertised to\" in:\n{entry}"));
    assert!(advertised.contains(ROUTER), "{entry}");

    // `kubectl logs -c speaker` is JSON lines; `-c frr` shows FRR's log file.
    let logs = node.kubectl(&["logs", "-n", NS, &pod, "-c", "speaker"]);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the speaker logged nothing");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("speaker log line is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
    }
    let frr_logs = node.kubectl(&["logs", "-n", NS, &pod, "-c", "frr"]);
    assert!(
        frr_logs.contains("BGP"),
        "FRR's log is not in the frr container's output:\n{frr_logs}"
    );

    layer2_from_the_speaker_pod(&node, &lab, &pod);

    // Delete the speaker pod: the DaemonSet starts a new one, FRR comes back with the same
    // configuration and the route returns at the router.
    let deleted = Instant::now();
    node.kubectl(&["delete", "pod", "-n", NS, &pod, "--wait=false"]);
    let gone = lab::wait_no_route(&router, &prefix, WAIT).await;
    let withdrawn = deleted.elapsed();
    let new_pod = eventually_sync("a new speaker pod", WAIT, || {
        speaker_pods(&node).into_iter().find(|p| *p != pod)
    });
    lab::wait_paths(&router, &prefix, &[lab::HOST_IPV4], WAIT).await;
    let back = deleted.elapsed();
    node.kubectl(&[
        "rollout",
        "status",
        "-n",
        NS,
        "daemonset/speaker",
        &format!("--timeout={}s", WAIT.as_secs()),
    ]);
    let running_again = vtysh(&node, &new_pod, "show running-config");
    assert_eq!(
        config_body(&running_again),
        config_body(&running),
        "FRR's configuration changed across the restart"
    );
    eprintln!(
        "speaker pod {pod} deleted: route withdrawn after {:.1}s ({}), {new_pod} announced it \
         again {:.1}s after the delete",
        withdrawn.as_secs_f64(),
        if gone.is_ok() { "seen" } else { "not seen" },
        back.as_secs_f64()
    );

    bgp_extras_from_the_configmap(&node, &new_pod);

    must_gather_as_oc_runs_it(&node, &cluster.dir);

    drop(diagnose);
    let left = tokio::task::block_in_place(|| node.down());
    assert!(left.is_empty(), "the node left: {left:#?}");
}

/// Layer 2 from the speaker pod: the controller made the membership Secret, the speaker's
/// membership started with it, and the lab's client namespace resolves the Service's address to
/// the host port's MAC (the speaker answers ARP there, on a raw socket: NET_RAW).
fn layer2_from_the_speaker_pod(node: &Node, lab: &Lab, pod: &str) {
    let secret = node.kubectl(&[
        "get",
        "secret",
        "-n",
        NS,
        "metallb-memberlist",
        "-o",
        "jsonpath={.data.secretkey}",
    ]);
    assert!(
        !secret.is_empty(),
        "the controller made no memberlist Secret"
    );
    eventually_sync("the speaker's membership starts", WAIT, || {
        let logs = node.kubectl(&["logs", "-n", NS, pod, "-c", "speaker"]);
        logs.contains("membership starting").then_some(())
    });

    let host_link = lab.host_link();
    let config = std::env::temp_dir().join(format!("k8s-node-l2-{}.yaml", std::process::id()));
    std::fs::write(&config, L2_CONFIG.replace("@HOST_LINK@", &host_link)).unwrap();
    node.kubectl(&["apply", "-f", &config.display().to_string()]);
    let _ = std::fs::remove_file(&config);
    let ip = eventually_sync("web-l2 gets its address", WAIT, || {
        let ip = node.kubectl(&[
            "get",
            "svc",
            "web-l2",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ]);
        (!ip.is_empty()).then_some(ip)
    });
    assert_eq!(ip, L2_VIP);

    let host_mac = std::fs::read_to_string(format!("/sys/class/net/{host_link}/address"))
        .unwrap()
        .trim()
        .to_string();
    let client = lab.ns("client");
    let t = Instant::now();
    let mac = eventually_sync("the client resolves the layer 2 address", WAIT, || {
        let ip_cmd = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(["-n", &client])
                .args(args)
                .output()
                .expect("run ip")
        };
        let _ = ip_cmd(&["neigh", "flush", "to", L2_VIP]);
        // The ping is unanswered (the host does not own the address); it only makes the
        // client's kernel ask for the MAC.
        let _ = std::process::Command::new("ip")
            .args(["netns", "exec", &client, "ping", "-c1", "-W1", L2_VIP])
            .output();
        let neigh =
            String::from_utf8_lossy(&ip_cmd(&["neigh", "show", L2_VIP]).stdout).into_owned();
        let mut words = neigh.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_string)
    });
    eprintln!(
        "client: {L2_VIP} is at {mac} (host port {host_link} {host_mac}) {:.1}s after the address",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(mac, host_mac, "{L2_VIP} resolved to another MAC");
}

/// Upstream's `bgpextras` ConfigMap through the API (the speaker's ConfigMap reflector and
/// RBAC): a text FRR refuses is reported in ConfigurationState `speaker-lab-host` and never
/// reaches FRR; a good one is appended to the running configuration and the state is valid.
fn bgp_extras_from_the_configmap(node: &Node, pod: &str) {
    let apply_extras = |extras: &str| {
        let manifest = node.kubectl(&[
            "create",
            "configmap",
            "bgpextras",
            "-n",
            NS,
            &format!("--from-literal=extras={extras}"),
            "--dry-run=client",
            "-o",
            "yaml",
        ]);
        let file =
            std::env::temp_dir().join(format!("k8s-node-extras-{}.yaml", std::process::id()));
        std::fs::write(&file, manifest).unwrap();
        node.kubectl(&["apply", "-f", &file.display().to_string()]);
        let _ = std::fs::remove_file(&file);
    };
    let state = |path: &str| {
        node.try_kubectl(&[
            "get",
            "configurationstate",
            "-n",
            NS,
            &format!("speaker-{NODE}"),
            "-o",
            &format!("jsonpath={{.status.{path}}}"),
        ])
        .1
    };
    apply_extras("ip prefix-list extra-bad seq 5 permit 192.0.2.0/24\nthis is not frr");
    let summary = eventually_sync("the refused extras in ConfigurationState", WAIT, || {
        let summary = state("errorSummary");
        summary.contains("ConfigMap/bgpextras").then_some(summary)
    });
    assert!(summary.contains("this is not frr"), "{summary}");
    assert_eq!(state("result"), "Invalid");
    let running = vtysh(node, pod, "show running-config");
    assert!(
        !running.contains("extra-bad"),
        "refused extras on FRR:\n{running}"
    );

    let good = "ip prefix-list extra-good seq 5 permit 192.0.2.0/24";
    apply_extras(good);
    eventually_sync("the good extras on FRR", WAIT, || {
        vtysh(node, pod, "show running-config")
            .contains(good)
            .then_some(())
    });
    eventually_sync("ConfigurationState valid again", WAIT, || {
        (state("result") == "Valid").then_some(())
    });
}

/// The must-gather image: what `oc adm must-gather --image=` would be given.
const MUST_GATHER_IMAGE: &str = "localhost/metallb/must-gather:dev";

/// What `oc adm must-gather` creates first: a temporary namespace whose `default`
/// ServiceAccount (kube-controller-manager makes it) is bound to cluster-admin.
const MUST_GATHER_NAMESPACE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: openshift-must-gather-lab
  annotations: {oc.openshift.io/command: "oc adm must-gather"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: must-gather-lab}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: default, namespace: openshift-must-gather-lab}
"#;

/// Then oc's `newPod`: on the node, the image's `/usr/bin/gather` in container `gather` and a
/// `copy` container that only sleeps, so that `/must-gather` (an emptyDir both mount) can still
/// be copied out after gather ended. oc's system-cluster-critical priority class is left out:
/// nothing to preempt on this node.
const MUST_GATHER_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: must-gather
  namespace: openshift-must-gather-lab
  labels: {app: must-gather}
spec:
  nodeName: "@NODE@"
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{operator: Exists}]
  volumes: [{name: must-gather-output, emptyDir: {}}]
  containers:
  - name: gather
    image: "@IMAGE@"
    imagePullPolicy: IfNotPresent
    command: [/usr/bin/gather]
    volumeMounts: [{name: must-gather-output, mountPath: /must-gather}]
  - name: copy
    image: "@IMAGE@"
    imagePullPolicy: IfNotPresent
    command: [/bin/bash, -c, "trap : TERM INT; sleep infinity & wait"]
    volumeMounts: [{name: must-gather-output, mountPath: /must-gather}]
"#;

/// must-gather as `oc adm must-gather --image=localhost/metallb/must-gather:dev` runs it: the
/// pod above, wait for the gather container to end, copy `/must-gather` out of the copy
/// container, then check the tree: upstream's FRR files and `dump_frr` (all five vtysh
/// commands) beside every speaker pod's frr container logs, the speaker's logs, the metallb.io
/// objects, and the peer's MD5 password nowhere, though FRR's running configuration has it.
fn must_gather_as_oc_runs_it(node: &Node, cluster_dir: &Path) {
    let pod = speaker_pod(node);
    let with_password = format!("neighbor 10.77.0.99 password {PEER_PASSWORD}");
    eventually_sync("the peer's password in FRR's configuration", WAIT, || {
        vtysh(node, &pod, "show running-config")
            .contains(&with_password)
            .then_some(())
    });
    eventually_sync("the peer's password in FRR's frr.conf", WAIT, || {
        let conf = node.kubectl(&[
            "exec",
            "-n",
            NS,
            &pod,
            "-c",
            "frr",
            "--",
            "cat",
            "/etc/frr/frr.conf",
        ]);
        conf.contains(&with_password).then_some(())
    });

    let mg_ns = "openshift-must-gather-lab";
    let namespace = cluster_dir.join("must-gather-namespace.yaml");
    std::fs::write(&namespace, MUST_GATHER_NAMESPACE).unwrap();
    node.kubectl(&["apply", "-f", &namespace.display().to_string()]);
    // The ServiceAccount admission plugin refuses a pod whose ServiceAccount is not there yet.
    eventually_sync("the namespace's default ServiceAccount", WAIT, || {
        let (found, _, _) = node.try_kubectl(&["get", "serviceaccount", "-n", mg_ns, "default"]);
        found.then_some(())
    });
    let manifest = cluster_dir.join("must-gather.yaml");
    std::fs::write(
        &manifest,
        MUST_GATHER_POD
            .replace("@NODE@", NODE)
            .replace("@IMAGE@", MUST_GATHER_IMAGE),
    )
    .unwrap();
    let started = Instant::now();
    node.kubectl(&["apply", "-f", &manifest.display().to_string()]);
    let gather_state = |path: &str| {
        node.kubectl(&[
            "get",
            "pod",
            "-n",
            mg_ns,
            "must-gather",
            "-o",
            &format!(r#"jsonpath={{.status.containerStatuses[?(@.name=="gather")].state.{path}}}"#),
        ])
    };
    let exit_code = eventually_sync(
        "the gather container ends",
        Duration::from_secs(600),
        || {
            // A missing image would only be retried until the wait ends: fail at once.
            let waiting = gather_state("waiting.reason");
            assert!(
                !waiting.contains("Image") && !waiting.contains("Pull"),
                "the gather container waits: {waiting} (hack/node.sh imports {MUST_GATHER_IMAGE})"
            );
            let code = gather_state("terminated.exitCode");
            (!code.is_empty()).then_some(code)
        },
    );
    let out = cluster_dir.join("must-gather.local");
    node.kubectl(&[
        "cp",
        "-n",
        mg_ns,
        "-c",
        "copy",
        "must-gather:/must-gather",
        &out.display().to_string(),
    ]);
    let wall = started.elapsed();
    eprintln!(
        "must-gather: pod created -> tree copied in {:.1}s (gather exit code {exit_code})",
        wall.as_secs_f64()
    );
    assert_eq!(exit_code, "0");

    let root = out.join("metallb");
    let errors = std::fs::read_to_string(root.join("gather-errors.txt")).unwrap_or_default();
    eprintln!("--- must-gather gather-errors.txt\n{errors}");
    assert!(!errors.contains("/frr "), "an FRR step failed:\n{errors}");
    let ns = root.join("namespaces").join(NS);
    for speaker in speaker_pods(node) {
        let pod_dir = ns.join("pods").join(&speaker);
        let frr = pod_dir.join("frr/frr/logs");
        for file in ["frr.conf", "frr.log", "daemons", "vtysh.conf", "dump_frr"] {
            let text = std::fs::read_to_string(frr.join(file))
                .unwrap_or_else(|e| panic!("{speaker}: frr/frr/logs/{file}: {e}"));
            assert!(!text.trim().is_empty(), "{speaker}: {file} is empty");
        }
        let dump = std::fs::read_to_string(frr.join("dump_frr")).unwrap();
        for command in [
            "show running-config",
            "show bgp ipv4",
            "show bgp ipv6",
            "show bgp neighbor",
            "show bfd peer",
        ] {
            assert!(
                dump.lines().any(|l| l == format!("###### {command}")),
                "{speaker}: no ###### {command} in dump_frr:\n{dump}"
            );
        }
        assert!(
            dump.contains("neighbor 10.77.0.99 password <redacted>"),
            "{speaker}: the running configuration in dump_frr:\n{dump}"
        );
        let conf = std::fs::read_to_string(frr.join("frr.conf")).unwrap();
        assert!(
            conf.contains("neighbor 10.77.0.99 password <redacted>"),
            "{speaker}: frr.conf:\n{conf}"
        );
        let speaker_log = pod_dir.join("speaker/speaker/logs/current.log");
        let log = std::fs::read_to_string(&speaker_log)
            .unwrap_or_else(|e| panic!("{}: {e}", speaker_log.display()));
        assert!(!log.is_empty(), "{speaker}: empty speaker log");
    }
    let peers = std::fs::read_to_string(ns.join("metallb.io/bgppeers.yaml")).unwrap();
    for peer in ["lab-router", "md5-peer"] {
        assert!(peers.contains(peer), "no BGPPeer {peer}:\n{peers}");
    }
    for kind in ["ipaddresspools", "bgpadvertisements", "l2advertisements"] {
        assert!(
            ns.join(format!("metallb.io/{kind}.yaml")).is_file(),
            "{kind}"
        );
    }
    support::assert_in_no_file(&out, PEER_PASSWORD);
    node.kubectl(&["delete", "namespace", mg_ns, "--wait=false"]);
    node.kubectl(&["delete", "clusterrolebinding", "must-gather-lab"]);
}

/// On a failure: what the speaker pod says, FRR's view from inside it, and the router's.
struct Diagnose<'a> {
    node: &'a Node,
    pod: &'a str,
    router_ns: String,
}

impl Drop for Diagnose<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for args in [
            vec!["get", "pods", "-A", "-o", "wide"],
            vec!["logs", "-n", NS, self.pod, "-c", "speaker", "--tail=40"],
            vec!["logs", "-n", NS, self.pod, "-c", "frr", "--tail=40"],
        ] {
            let (_, out, err) = self.node.try_kubectl(&args);
            eprintln!("--- kubectl {}\n{out}{err}", args.join(" "));
        }
        for command in ["show running-config", "show bgp summary"] {
            let args = [
                "exec", "-n", NS, self.pod, "-c", "frr", "--", "vtysh", "-c", command,
            ];
            let (_, out, err) = self.node.try_kubectl(&args);
            eprintln!("--- vtysh -c {command:?}\n{out}{err}");
        }
        let router = std::process::Command::new("vtysh")
            .args(["-N", &self.router_ns, "-c", "show bgp summary"])
            .output();
        if let Ok(out) = router {
            eprintln!(
                "--- router: show bgp summary\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

/// The name of the (only) speaker pod, found as the seed does (26.7.2 step 1).
fn speaker_pod(node: &Node) -> String {
    let names = speaker_pods(node);
    assert_eq!(names.len(), 1, "speaker pods: {names:?}");
    names[0].clone()
}

/// The speaker pods' names (a deleted one is listed until it has terminated).
fn speaker_pods(node: &Node) -> Vec<String> {
    node.kubectl(&[
        "get",
        "-n",
        NS,
        "pods",
        "-l",
        "app.kubernetes.io/component=speaker",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

/// `kubectl exec -n metallb-system <pod> -c frr -- vtysh -c "<command>"`.
fn vtysh(node: &Node, pod: &str, command: &str) -> String {
    node.kubectl(&[
        "exec", "-n", NS, pod, "-c", "frr", "--", "vtysh", "-c", command,
    ])
}

/// The running configuration without vtysh's banner.
fn config_body(running: &str) -> String {
    running
        .lines()
        .skip_while(|l| !l.starts_with("frr version"))
        .collect::<Vec<_>>()
        .join("\n")
}
