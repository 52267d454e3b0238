//! Wall time of `metallb status service NS/NAME` (the binary, process start included) against
//! a controller status API holding 1,000 Services and two speaker status APIs, each with 10 BGP
//! peers and 1,000 advertised prefixes (every prefix advertised to all 10 peers) plus 1,000
//! layer 2 entries. The servers run in this process on loopback and answer from their
//! published snapshots, as the real ones do (a speaker's FRR poll runs beside the calls, not
//! in them). Goal: < 300 ms.
//!
//! No root needed. Run: `cargo bench --bench status_service`.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
    time::{Duration, Instant},
};

use metallb::{
    core::{
        allocator::{Assignment, FamilyStats, PoolStats},
        service::ServiceKey,
        status::ControllerStatus,
    },
    status::{
        Listener,
        controller::ControllerService,
        speaker::{BgpSessionState, Demand, Layer2Owned, NodeSnapshot, SpeakerService},
    },
};
use tokio::sync::watch;

const SERVICES: usize = 1000;
const PEERS: usize = 10;
const RUNS: usize = 30;

fn key(i: usize) -> ServiceKey {
    ServiceKey {
        namespace: "bench".into(),
        name: format!("svc-{i:04}"),
    }
}

fn ip(i: usize) -> std::net::IpAddr {
    format!("198.51.{}.{}", 100 + i / 250, i % 250 + 1)
        .parse()
        .unwrap()
}

fn controller_status() -> ControllerStatus {
    let keys: Vec<ServiceKey> = (0..SERVICES).map(key).collect();
    let assignments: Vec<Assignment> = (0..SERVICES)
        .map(|i| Assignment {
            pool: "bench".into(),
            ips: vec![ip(i)],
        })
        .collect();
    let stats = PoolStats {
        ipv4: FamilyStats {
            total: 1024,
            assigned: SERVICES as u128,
            available: 1024 - SERVICES as u128,
        },
        services: SERVICES,
        ..Default::default()
    };
    ControllerStatus::build(
        keys.iter().zip(assignments.iter()),
        &BTreeMap::new(),
        BTreeMap::from([("bench".to_string(), stats)]),
        None,
    )
}

fn node_snapshot(node: &str) -> NodeSnapshot {
    let peers: Vec<String> = (0..PEERS).map(|p| format!("10.77.1.{}", p + 1)).collect();
    let bgp = peers
        .iter()
        .map(|peer| BgpSessionState {
            vrf: "default".into(),
            peer: peer.clone(),
            local_asn: 64500,
            remote_asn: 64501,
            state: "Established".into(),
            established_since: 1_700_000_000,
            prefixes_sent: SERVICES as u64,
            ..Default::default()
        })
        .collect();
    let advertised = (0..SERVICES)
        .map(|i| {
            (
                ("default".to_string(), format!("{}/32", ip(i))),
                peers.iter().cloned().collect::<BTreeSet<String>>(),
            )
        })
        .collect();
    let layer2 = (0..SERVICES)
        .map(|i| Layer2Owned {
            address: ip(i),
            interface: "eth0".into(),
            namespace: "bench".into(),
            name: format!("l2-{i:04}"),
            since: 1_700_000_000,
            last_announcement: 1_700_000_000,
        })
        .collect();
    NodeSnapshot {
        node: node.into(),
        bgp,
        advertised,
        layer2,
        ..Default::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (controller_addr, speaker_addrs, _keep) = runtime.block_on(async {
        let (ctx, crx) = watch::channel(controller_status());
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let controller_addr = listener.local_addr();
        tokio::spawn(ControllerService::new(crx).serve(listener, std::future::pending()));
        let mut speakers = Vec::new();
        let mut senders = Vec::new();
        for node in ["node1", "node2"] {
            let (tx, rx) = watch::channel(node_snapshot(node));
            let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            speakers.push(format!("{node}={}", listener.local_addr()));
            tokio::spawn(
                SpeakerService::new(rx, Demand::default()).serve(listener, std::future::pending()),
            );
            senders.push(tx);
        }
        (controller_addr, speakers, (ctx, senders))
    });
    let home = tempfile::tempdir().unwrap();
    let run = |service: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_metallb"));
        cmd.args(["status", "service", service])
            .arg("--controller-addr")
            .arg(controller_addr.to_string())
            // No cluster: nothing to discover, only the addresses given.
            .env_remove("KUBECONFIG")
            .env("HOME", home.path());
        for s in &speaker_addrs {
            cmd.args(["--speaker-addr", s]);
        }
        let start = Instant::now();
        let out = cmd.output().unwrap();
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (took, String::from_utf8(out.stdout).unwrap())
    };
    let (_, answer) = run("bench/svc-0500");
    println!("answer: {}", answer.trim());
    assert!(
        answer.contains("advertised by node1 to 10.77.1.1"),
        "{answer}"
    );
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|i| run(&format!("bench/svc-{:04}", i * 33)).0)
        .collect();
    times.sort();
    println!(
        "status_service: {SERVICES} Services, 2 nodes, {PEERS} peers: `metallb status service` \
         wall time over {RUNS} runs: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (goal < 300 ms)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
}
