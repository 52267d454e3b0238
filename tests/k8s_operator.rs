//! The MetalLB Operator on a real node (seed 26.2): a kube-apiserver, the real
//! kube-controller-manager, scheduler and kubelet with containerd (`hack/node.sh`), our images,
//! and `metallb operator` running as its own ServiceAccount with deploy/operator/rbac.yaml only
//! (so the test also shows those rules are enough).
//!
//! One test, in phases, each checked as the seed's user checks it with kubectl:
//! 1. the seed's MetalLB (26.2.3): controller 1/1, one ready speaker per node, Available=True;
//! 2. a plain Node object (no kubelet) that the default selector matches is counted, then the
//!    seed's node-selector example (26.2.3.1) leaves it out, with the toleration on the pods;
//! 3. `kubectl replace` with the seed's `logLevel: debug` (26.7.1): controller and speaker pods
//!    are recreated with `--log-level=debug` (the speaker also `--frr-log-level=debug`), FRR's
//!    running config has the debug lines;
//! 4. a MetalLB with another name, and one in another namespace, change nothing;
//! 5. the operator restarted: it converges without recreating any pod;
//! 6. deleting the MetalLB: kube-controller-manager's garbage collector removes the
//!    workloads, the metallb.io config objects stay.
//!
//! Needs root, the lab (for the node's host port), the node's packages (hack/setup.sh),
//! hack/k8s-bin.sh's binaries and hack/images.sh's images; run by hack/test
//! (`--include-ignored`). Missing prerequisites fail the test.

mod support;

#[path = "support/lab.rs"]
mod lab;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{
    Cluster, ClusterOptions, Guard, LogOnPanic, metallb_bin,
    node::{Node, column, eventually_sync},
};

const NODE: &str = "lab-host";
/// A Node object without a kubelet: the scheduler sees it, nothing ever runs there.
const PLAIN_NODE: &str = "plain-node";
const NS: &str = "metallb-system";
const WAIT: Duration = Duration::from_secs(180);

/// The seed's examples (tests/fixtures/seed/): 26.2.3, 26.2.3.1 and 26.7.1.
fn seed(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed")
        .join(file)
        .display()
        .to_string()
}

const PLAIN_NODE_YAML: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: plain-node
  labels: {kubernetes.io/os: linux, kubernetes.io/hostname: plain-node}
"#;

const OTHER_METALLBS: &str = r#"
apiVersion: metallb.io/v1beta1
kind: MetalLB
metadata: {name: other, namespace: metallb-system}
spec: {logLevel: error}
---
apiVersion: metallb.io/v1beta1
kind: MetalLB
metadata: {name: metallb, namespace: default}
"#;

/// A config object that must outlive the MetalLB.
const POOL: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: doc-example, namespace: metallb-system}
spec:
  addresses: [203.0.113.200/30]
"#;

struct Operator {
    bin: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    process: Option<Guard>,
}

impl Operator {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .args(["operator", "--log-format=json", "--log-level=debug"])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", NS])
            .env_remove("SPEAKER_IMAGE")
            .env_remove("CONTROLLER_IMAGE")
            .env_remove("FRR_IMAGE")
            .env_remove("DEPLOY_WEBHOOK")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start metallb operator");
        self.process = Some(Guard(child));
    }

    fn stop(&mut self) {
        self.process = None;
    }

    /// How many times the operator applied the speaker DaemonSet so far (its debug log).
    fn speaker_applies(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("applied") && l.contains("DaemonSet/speaker"))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_NODE (root, lab, kubelet + containerd: hack/setup.sh, hack/k8s-bin.sh, hack/images.sh)"]
async fn operator_deploys_and_follows_the_metallb_resource() {
    let started = Instant::now();
    let _lab = tokio::task::block_in_place(|| lab::Lab::up_with_host("mop-"));
    let cluster = Cluster::start_with(ClusterOptions {
        pods: true,
        ..ClusterOptions::listening_on(lab::HOST_IPV4)
    })
    .await;
    let mut node = tokio::task::block_in_place(|| Node::up(&cluster, NODE));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let write = |name: &str, text: &str| {
        let path = cluster.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };

    // What `kubectl apply -k deploy/operator/` installs besides the operator's own Deployment
    // (the operator runs here as a process, as its ServiceAccount).
    for file in [
        "deploy/namespace.yaml",
        "deploy/crds/metallb.io.yaml",
        "deploy/rbac/controller.yaml",
        "deploy/rbac/speaker.yaml",
        "deploy/operator/rbac.yaml",
    ] {
        node.kubectl(&[
            "apply",
            "--server-side",
            "-f",
            &root.join(file).display().to_string(),
        ]);
    }
    node.kubectl(&["apply", "-f", &write("pool.yaml", POOL)]);
    let log = cluster.dir.join("operator.log");
    let _log_on_panic = LogOnPanic(log.clone());
    let mut operator = Operator {
        bin: metallb_bin(&cluster.dir),
        kubeconfig: cluster.kubeconfig_as("metallb-operator"),
        log,
        process: None,
    };
    operator.start();

    // 1. Seed 26.2.3.
    node.kubectl(&["apply", "-f", &seed("26.2.3-metallb.yaml")]);
    wait_available(&node, "the seed's MetalLB");
    let deployment = node.kubectl(&["get", "deployment", "-n", NS, "controller"]);
    eprintln!("{deployment}");
    assert_eq!(column(&deployment, "READY"), "1/1", "{deployment}");
    let daemonset = node.kubectl(&["get", "daemonset", "-n", NS, "speaker"]);
    eprintln!("{daemonset}");
    for col in ["DESIRED", "CURRENT", "READY", "AVAILABLE"] {
        assert_eq!(column(&daemonset, col), "1", "{col}: {daemonset}");
    }
    let metallbs = node.kubectl(&["get", "metallb", "-n", NS]);
    eprintln!("{metallbs}");
    assert_eq!(column(&metallbs, "AVAILABLE"), "True", "{metallbs}");
    assert_eq!(column(&metallbs, "DEGRADED"), "False", "{metallbs}");
    let owner = node.kubectl(&[
        "get",
        "daemonset",
        "-n",
        NS,
        "speaker",
        "-o",
        "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.managedFields[*].manager}",
    ]);
    assert!(owner.starts_with("MetalLB/metallb "), "{owner}");
    assert!(owner.contains("metallb-operator"), "{owner}");
    eprintln!(
        "phase 1 (seed MetalLB available) done {:.1}s after the test started",
        started.elapsed().as_secs_f64()
    );

    // 2. A second node the default selector matches is counted; the seed's node-selector
    //    example leaves it out.
    node.kubectl(&["label", "node", NODE, "node-role.kubernetes.io/worker="]);
    node.kubectl(&["apply", "-f", &write("plain-node.yaml", PLAIN_NODE_YAML)]);
    eventually_sync("the plain node counted", WAIT, || {
        let ds = node.kubectl(&["get", "daemonset", "-n", NS, "speaker"]);
        (column(&ds, "DESIRED") == "2").then_some(())
    });
    eventually_sync("MetalLB not available with a speaker missing", WAIT, || {
        (condition(&node, "metallb", "Available") == "False").then_some(())
    });
    node.kubectl(&["apply", "-f", &seed("26.2.3.1-metallb-worker-nodes.yaml")]);
    wait_available(&node, "the node-selector example");
    let daemonset = node.kubectl(&["get", "daemonset", "-n", NS, "speaker", "-o", "wide"]);
    eprintln!("{daemonset}");
    assert_eq!(column(&daemonset, "DESIRED"), "1", "{daemonset}");
    assert_eq!(
        column(&daemonset, "NODE SELECTOR"),
        "node-role.kubernetes.io/worker=",
        "{daemonset}"
    );
    let tolerations = node.kubectl(&[
        "get",
        "daemonset",
        "-n",
        NS,
        "speaker",
        "-o",
        "jsonpath={.spec.template.spec.tolerations}",
    ]);
    let tolerations: serde_json::Value = serde_json::from_str(&tolerations).unwrap();
    assert_eq!(
        tolerations,
        serde_json::json!([{"key": "Example", "operator": "Exists", "effect": "NoExecute"}])
    );
    let matching = node.kubectl(&["get", "nodes", "-l", "node-role.kubernetes.io/worker="]);
    assert_eq!(matching.lines().count(), 2, "{matching}");
    // Pods bound to a node without a kubelet are removed with the Node.
    node.kubectl(&["delete", "node", PLAIN_NODE]);

    // 3. Seed 26.7.1: logLevel debug with kubectl replace.
    let before = pods(&node);
    node.kubectl(&["replace", "-f", &seed("26.7.1-metallb-debug.yaml")]);
    eventually_sync("controller and speaker pods recreated", WAIT, || {
        let now = pods(&node);
        let replaced = ["controller", "speaker"].iter().all(|c| {
            now.get(*c)
                .is_some_and(|p| p.len() == 1 && !before[*c].contains(&p[0]))
        });
        replaced.then_some(())
    });
    wait_available(&node, "debug logging");
    let speaker_pod = pods(&node)["speaker"][0].clone();
    let args = node.kubectl(&[
        "get",
        "pod",
        "-n",
        NS,
        &speaker_pod,
        "-o",
        "jsonpath={.spec.containers[?(@.name==\"speaker\")].args}",
    ]);
    assert!(args.contains("--log-level=debug"), "{args}");
    assert!(args.contains("--frr-log-level=debug"), "{args}");
    let running = eventually_sync("FRR's debug lines", WAIT, || {
        let (ok, out, _) = node.try_kubectl(&[
            "exec",
            "-n",
            NS,
            &speaker_pod,
            "-c",
            "frr",
            "--",
            "vtysh",
            "-c",
            "show running-config",
        ]);
        (ok && out.contains("debug bgp neighbor-events")).then_some(out)
    });
    eprintln!(
        "FRR debug switches on: {}",
        running.lines().filter(|l| l.starts_with("debug ")).count()
    );

    // 4. Another name, and another namespace: nothing changes.
    let before = (pods(&node), generations(&node));
    node.kubectl(&["apply", "-f", &write("others.yaml", OTHER_METALLBS)]);
    eventually_sync("the other MetalLB reported Degraded", WAIT, || {
        (condition(&node, "other", "Degraded") == "True").then_some(())
    });
    let reason = node.kubectl(&[
        "get",
        "metallb",
        "-n",
        NS,
        "other",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Degraded\")].reason}",
    ]);
    assert_eq!(reason, "IncorrectMetalLBResourceName");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        (pods(&node), generations(&node)),
        before,
        "workloads changed"
    );
    let elsewhere = node.kubectl(&[
        "get",
        "deployments,daemonsets",
        "-n",
        "default",
        "-o",
        "name",
    ]);
    assert!(elsewhere.trim().is_empty(), "{elsewhere}");
    assert_eq!(condition(&node, "metallb", "Available"), "True");

    // 5. Operator restart: it converges (applies again) without recreating any pod.
    let before = (pods(&node), generations(&node));
    let applies = operator.speaker_applies();
    operator.stop();
    operator.start();
    eventually_sync("the restarted operator applied the speaker", WAIT, || {
        (operator.speaker_applies() > applies).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        (pods(&node), generations(&node)),
        before,
        "the restart changed workloads"
    );

    // 6. Delete the MetalLB: garbage collection removes what it owned, config stays.
    node.kubectl(&["delete", "metallb", "-n", NS, "metallb"]);
    eventually_sync("controller, speaker and Services collected", WAIT, || {
        let left = node.kubectl(&[
            "get",
            "deployments,daemonsets,services",
            "-n",
            NS,
            "-l",
            "app=metallb",
            "-o",
            "name",
        ]);
        left.trim().is_empty().then_some(())
    });
    let pool = node.kubectl(&["get", "ipaddresspools", "-n", NS, "-o", "name"]);
    assert_eq!(pool.trim(), "ipaddresspool.metallb.io/doc-example");
    eventually_sync("the pods gone", WAIT, || {
        pods(&node).is_empty().then_some(())
    });
    eprintln!(
        "all phases done {:.1}s after the test started",
        started.elapsed().as_secs_f64()
    );

    operator.stop();
    let left = tokio::task::block_in_place(|| node.down());
    assert!(left.is_empty(), "the node left: {left:#?}");
}

/// Waits for Available=True on the MetalLB named metallb.
fn wait_available(node: &Node, what: &str) {
    eventually_sync(&format!("Available=True after {what}"), WAIT, || {
        (condition(node, "metallb", "Available") == "True").then_some(())
    });
}

/// The status of condition `kind` of MetalLB `name` ("" when none yet).
fn condition(node: &Node, name: &str, kind: &str) -> String {
    node.try_kubectl(&[
        "get",
        "metallb",
        "-n",
        NS,
        name,
        "-o",
        &format!("jsonpath={{.status.conditions[?(@.type==\"{kind}\")].status}}"),
    ])
    .1
}

/// The running (not terminating) pods of metallb-system by component: name list.
fn pods(node: &Node) -> BTreeMap<String, Vec<String>> {
    let out = node.kubectl(&[
        "get",
        "pods",
        "-n",
        NS,
        "-l",
        "app=metallb",
        "-o",
        "jsonpath={range .items[*]}{.metadata.labels.component} {.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    let mut by_component: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [component, name] = fields.as_slice() {
            by_component
                .entry(component.to_string())
                .or_default()
                .push(name.to_string());
        }
    }
    by_component
}

/// The workloads' generations.
fn generations(node: &Node) -> String {
    node.kubectl(&[
        "get",
        "deployment/controller",
        "daemonset/speaker",
        "-n",
        NS,
        "-o",
        "jsonpath={range .items[*]}{.kind}={.metadata.generation} {end}",
    ])
}
