//! Admission latency at the webhook with 1,000 IPAddressPools and 1,000 BGPPeers in its view:
//! an AdmissionReview in, the answer out (decode, snapshot of the cache, the whole config built
//! twice, before and after, encode), as `metallb webhook` serves it.
//!
//! Run with `cargo bench --bench webhook_admission` (release profile, plain `main`, no harness).
//! The machine is shared: p50 is the figure to compare, p99 includes the neighbours.

use std::{hint::black_box, time::Instant};

use metallb::{config::Resources, manifest, webhook::Handler};
use serde_json::{Value, json};

const POOLS: usize = 1000;
const PEERS: usize = 1000;
const RUNS: usize = 300;

fn cache() -> Resources {
    let mut text = String::new();
    for i in 0..POOLS {
        text.push_str(&format!(
            "---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: pool-{i:04}, namespace: metallb-system, resourceVersion: \"{i}\"}}\nspec: {{addresses: [10.{}.{}.0/24]}}\n",
            i / 256,
            i % 256
        ));
    }
    for i in 0..PEERS {
        text.push_str(&format!(
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: peer-{i:04}, namespace: metallb-system, resourceVersion: \"{i}\"}}\nspec: {{myASN: 64500, peerASN: 64501, peerAddress: 172.16.{}.{}}}\n",
            i / 256,
            i % 256 + 1
        ));
    }
    text.push_str("---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: all, namespace: metallb-system}\n");
    let docs = manifest::parse("bench.yaml", &text).expect("bench manifests parse");
    let (resources, errors) = Resources::from_documents(&docs);
    assert!(errors.is_empty(), "{errors:?}");
    resources
}

fn review(operation: &str, object: Value) -> Vec<u8> {
    let kind = object["kind"].clone();
    let version = object["apiVersion"]
        .as_str()
        .and_then(|v| v.split('/').nth(1))
        .unwrap_or_default()
        .to_string();
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "7a4b6f2e-0000-0000-0000-000000000000",
            "kind": {"group": "metallb.io", "version": version, "kind": kind},
            "resource": {"group": "metallb.io", "version": version, "resource": "x"},
            "name": object["metadata"]["name"],
            "namespace": "metallb-system",
            "operation": operation,
            "userInfo": {"username": "bench"},
            "object": object,
            "dryRun": false,
        },
    }))
    .expect("review serializes")
}

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn main() {
    let handler = Handler::new(Box::new(cache()), "metallb-system");
    let cases = [
        (
            "create a pool (admitted)",
            review(
                "CREATE",
                json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                       "metadata": {"name": "new", "namespace": "metallb-system"},
                       "spec": {"addresses": ["192.168.0.0/24"]}}),
            ),
            true,
        ),
        (
            "create an overlapping pool (denied)",
            review(
                "CREATE",
                json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                       "metadata": {"name": "overlap", "namespace": "metallb-system"},
                       "spec": {"addresses": ["10.0.5.0/25"]}}),
            ),
            false,
        ),
        (
            "update a peer (admitted)",
            review(
                "UPDATE",
                json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
                       "metadata": {"name": "peer-0500", "namespace": "metallb-system", "resourceVersion": "500"},
                       "spec": {"myASN": 64500, "peerASN": 64502, "peerAddress": "172.16.1.245"}}),
            ),
            true,
        ),
    ];
    println!(
        "webhook admission latency, {POOLS} pools + {PEERS} peers in the cache, {RUNS} runs each"
    );
    for (name, body, allowed) in cases {
        // Not dry runs, as the apiserver sends them: an admitted write also joins the handler's
        // view of recent writes, which the next run pays for, as in a cluster.
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let answer = handler.admission(black_box(&body)).expect("a review");
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            let answer: Value = serde_json::from_slice(&answer).expect("JSON answer");
            assert_eq!(answer["response"]["allowed"], allowed, "{name}: {answer}");
        }
        let (p50, p99) = percentiles(samples);
        println!("  {name:<40} p50 {p50:6.2} ms   p99 {p99:6.2} ms");
    }
}
