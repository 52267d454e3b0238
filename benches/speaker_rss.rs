//! Resident memory of one `metallb speaker` announcing 1,000 Services, half over BGP and half
//! with layer 2, from manifests (`--from-api` holds the same objects in reflector stores).
//!
//!     METALLB_LAB=1 cargo bench --bench speaker_rss
//!
//! Needs root: the speaker runs inside a node namespace of the layer 2 lab (its responders
//! must not answer on this host's interfaces). The lab has no FRR, so the BGP side renders
//! the 500-Service frr.conf and its apply loop retries; that is the memory that matters. The
//! figure is VmRSS once the layer 2 side has announced what node1 wins and the speaker has
//! trimmed its heap, and VmHWM, the peak while it decoded and rendered.
//!
//! `METALLB_BIN=path/to/metallb` measures another build of the binary (the image's, say).

#[path = "../tests/support/l2lab.rs"]
mod l2lab;

use std::{
    fmt::Write as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use l2lab::Lab;

const SERVICES: usize = 1000;

fn manifests() -> String {
    let mut out = String::from(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp, namespace: metallb-system}
spec: {addresses: [198.51.0.0/16]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: l2, namespace: metallb-system}
spec: {addresses: [10.77.4.0/22]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.77.0.1}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: metallb-system}
spec: {ipAddressPools: [bgp]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec: {ipAddressPools: [l2]}
---
apiVersion: v1
kind: Node
metadata: {name: node1}
---
apiVersion: v1
kind: Node
metadata: {name: node2}
"#,
    );
    for i in 0..SERVICES {
        let pool = if i % 2 == 0 { "bgp" } else { "l2" };
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: default, \
             annotations: {{metallb.io/address-pool: {pool}}}}}\n\
             spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n\
             ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: svc-{i}-1, namespace: default, labels: {{kubernetes.io/service-name: svc-{i}}}}}\n\
             addressType: IPv4\nendpoints: [{{addresses: [10.244.0.5], nodeName: node1, conditions: {{ready: true}}}}]\n"
        );
    }
    out
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} missing in /proc/{pid}/status"))
}

fn main() {
    l2lab::require();
    let bin = std::env::var_os("METALLB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_metallb")));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), manifests()).unwrap();
    let mut lab = Lab::up("rss-", &bin);
    lab.manifests = dir.path().to_path_buf();
    lab.bgp = true;
    let state = tempfile::tempdir().unwrap();
    // A pathspace with no FRR: never the host's own FRR.
    lab.speaker_args = vec![
        "--state-dir".into(),
        state.path().display().to_string(),
        "--frr-pathspace".into(),
        "rss-no-frr".into(),
    ];
    lab.start_speaker("node1");
    let pid = lab.speaker_pid("node1");
    // Settled: node1 announces its share of the 500 layer 2 Services and the frr.conf is
    // rendered (status.json written by the apply loop).
    let start = Instant::now();
    let announced = loop {
        let n = lab.status("node1")["services"]
            .as_object()
            .map_or(0, |m| m.len());
        if n > 0 && state.path().join("status.json").exists() {
            // The speaker trims its heap 2 s after an input (src/heap.rs): the figure is the
            // steady state after that; VmHWM keeps the peak before it.
            std::thread::sleep(Duration::from_secs(4));
            break lab.status("node1")["services"]
                .as_object()
                .map_or(0, |m| m.len());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the speaker never announced:\n{}",
            lab.log("node1")
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let conf = std::fs::read_to_string(state.path().join("frr.conf")).unwrap_or_default();
    let networks = conf.matches(" network ").count();
    println!(
        "speaker RSS with {SERVICES} Services ({} BGP networks in frr.conf, {announced} layer 2 \
         Services owned by node1): VmRSS {} KiB, VmHWM {} KiB (RssAnon {} KiB: heap and \
         stacks; RssFile {} KiB: the binary's pages in use)",
        networks,
        status_kib(pid, "VmRSS:"),
        status_kib(pid, "VmHWM:"),
        status_kib(pid, "RssAnon:"),
        status_kib(pid, "RssFile:"),
    );
}
