//! The CRDs install and work on the oldest Kubernetes we support (1.25, README "Admission
//! webhooks"): a kube-apiserver v1.25 built from Go modules by `hack/k8s-old-bin.sh`, with the
//! etcd of `hack/k8s-bin.sh`. `kubectl create` with its default strict validation, so a field
//! the old server does not know would fail the install.

mod support;

use std::path::{Path, PathBuf};

use support::{Cluster, ClusterOptions, METALLB_NAMESPACE};

/// `target/k8s-old-bin/kube-apiserver`, or `$K8S_OLD_BIN_DIR/kube-apiserver`.
fn old_apiserver() -> PathBuf {
    let dir = std::env::var("K8S_OLD_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/k8s-old-bin"));
    let bin = dir.join("kube-apiserver");
    assert!(
        bin.is_file(),
        "{} is missing: run hack/k8s-old-bin.sh (or set K8S_OLD_BIN_DIR)",
        bin.display()
    );
    bin
}

fn kubectl(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let out = support::kubectl::run(cluster, args, stdin);
    (out.ok, format!("{}{}", out.stdout, out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S (kube-apiserver)"]
async fn crds_install_and_validate_on_kubernetes_1_25() {
    let cluster = Cluster::start_with(ClusterOptions {
        apiserver: Some(old_apiserver()),
        ..Default::default()
    })
    .await;
    let version = std::process::Command::new(old_apiserver())
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.starts_with("Kubernetes v1.25."), "{version}");

    // The harness installed the CRDs through the API; a user runs kubectl, whose strict field
    // validation refuses what the server does not know.
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds/metallb.io.yaml");
    let crds = crds.display().to_string();
    let (ok, said) = kubectl(
        &cluster,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--validate=strict",
            "-f",
            &crds,
        ],
        None,
    );
    assert!(ok, "kubectl apply of deploy/crds on 1.25: {said}");

    // The seed's examples apply (v1beta1 BGPPeers as stored v1beta2 without conversion
    // webhook: the fields are the same).
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
    for file in [
        "26.3.3.1-addresspool-cidr.yaml",
        "26.4.2-bgppeer.yaml",
        "26.5.2-bfdprofile.yaml",
    ] {
        let (ok, said) = kubectl(
            &cluster,
            &["create", "-n", METALLB_NAMESPACE, "-f", "-"],
            Some(&std::fs::read_to_string(seed.join(file)).unwrap()),
        );
        assert!(ok, "{file} on 1.25: {said}");
    }
    // The CEL rules work there: a bad address and a keepalive without hold time are refused.
    let (ok, said) = kubectl(
        &cluster,
        &["create", "-n", METALLB_NAMESPACE, "-f", "-"],
        Some(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.300}\n",
        ),
    );
    assert!(
        !ok && said.contains("must be an IPv4 or IPv6 address"),
        "{said}"
    );
    let (ok, said) = kubectl(
        &cluster,
        &["create", "-n", METALLB_NAMESPACE, "-f", "-"],
        Some(
            "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.3, keepaliveTime: 10s}\n",
        ),
    );
    assert!(
        !ok && said.contains("keepaliveTime requires holdTime"),
        "{said}"
    );
}
