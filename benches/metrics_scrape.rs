//! Scrape latency and cost of a speaker's `/metrics` with 10 BGP peers each announcing 1,000
//! prefixes (1,000 Services), 10 BFD sessions, the apply loop's histograms filled, while the
//! FRR poller is busy: the fake vtysh answers `show bgp ... neighbors json` only after 400 ms,
//! so a poll is in flight about half of the time, as with an FRR busy applying a config.
//! Scrapes never wait for it (they read the last snapshot).
//!
//! No root needed. Run: `cargo bench --bench metrics_scrape`.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    os::unix::fs::PermissionsExt as _,
    sync::Arc,
    time::{Duration, Instant},
};

use metallb::{
    frr::vtysh::Vtysh,
    metrics::{
        Format, Health, ServeConfig,
        apply::ApplyMetrics,
        encode,
        frr::{FrrCollector, FrrStatus, PollConfig, poll},
        k8s_client::K8sClientMetrics,
        registry, serve,
    },
};

const PEERS: usize = 10;
const PREFIXES: u64 = 1000;
const SCRAPES: usize = 2000;

/// A fake vtysh printing FRR 8.4-shaped JSON for `PEERS` neighbors and BFD sessions.
fn fake_vtysh(dir: &std::path::Path) -> std::path::PathBuf {
    let mut neighbors = serde_json::Map::new();
    let mut bfd = Vec::new();
    let mut counters = Vec::new();
    for i in 0..PEERS {
        let peer = format!("10.77.1.{}", i + 1);
        neighbors.insert(
            peer.clone(),
            serde_json::json!({
                "bgpState": "Established",
                "messageStats": {"opensSent": 1, "opensRecv": 1, "updatesSent": 1000,
                    "updatesRecv": 3, "keepalivesSent": 50, "keepalivesRecv": 50,
                    "totalSent": 1051, "totalRecv": 54},
                "addressFamilyInfo": {"ipv4Unicast": {"sentPrefixCounter": PREFIXES,
                    "acceptedPrefixCounter": 0}},
            }),
        );
        bfd.push(serde_json::json!({"peer": peer, "vrf": "default", "status": "up"}));
        counters.push(serde_json::json!({"peer": peer, "vrf": "default",
            "control-packet-input": 1000, "control-packet-output": 1000,
            "session-up": 1, "session-down": 0, "zebra-notifications": 2}));
    }
    let write = |name: &str, value: &serde_json::Value| {
        std::fs::write(dir.join(name), value.to_string()).unwrap();
    };
    write("vrfs.json", &serde_json::json!({"default": {}}));
    write("neighbors.json", &serde_json::Value::Object(neighbors));
    write("bfd.json", &serde_json::Value::Array(bfd));
    write("counters.json", &serde_json::Value::Array(counters));
    let script = format!(
        "#!/bin/sh\nd={d}\ncase \"$*\" in\n*'vrf all json'*) cat $d/vrfs.json;;\n\
         *neighbors*) sleep 0.4; cat $d/neighbors.json;;\n*counters*) cat $d/counters.json;;\n\
         *bfd*) cat $d/bfd.json;;\nesac\n",
        d = dir.display()
    );
    let path = dir.join("vtysh");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// utime + stime of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the comm.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn scrape(addr: &str) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    assert!(body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200"));
    body.len()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("metrics_scrape: run it with `cargo bench --bench metrics_scrape`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let vtysh = Vtysh::new(None).with_binary(fake_vtysh(dir.path()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut reg = registry();
    let status = FrrStatus::default();
    let config = PollConfig::every(Duration::from_millis(500));
    reg.register_collector(Box::new(FrrCollector::new(status.clone(), config.max_age)));
    let apply = ApplyMetrics::register(&mut reg);
    let k8s = K8sClientMetrics::register(&mut reg);
    k8s.updates(1000);
    k8s.config_ok();
    let _ = apply;
    let reg = Arc::new(reg);
    let addr = runtime.block_on(async {
        tokio::spawn(poll(vtysh, config, status.clone()));
        let [port] = [free_port()];
        let addr = format!("127.0.0.1:{port}");
        serve(
            ServeConfig {
                plain: Some(addr.parse().unwrap()),
                ..ServeConfig::default()
            },
            reg.clone(),
            Health::default(),
        )
        .await
        .unwrap();
        addr
    });
    // Wait for the first snapshot.
    let deadline = Instant::now() + Duration::from_secs(10);
    while status.fresh(config.max_age).is_none() {
        assert!(Instant::now() < deadline, "no FRR snapshot");
        std::thread::sleep(Duration::from_millis(20));
    }
    let bytes = scrape(&addr);
    let text = encode(&reg, Format::Prometheus).unwrap();
    assert!(text.contains(
        "metallb_bgp_announced_prefixes_total{peer=\"10.77.1.10\",vrf=\"default\"} 1000"
    ));

    let mut latencies = Vec::with_capacity(SCRAPES);
    let cpu_before = cpu_time();
    let started = Instant::now();
    for _ in 0..SCRAPES {
        let t = Instant::now();
        scrape(&addr);
        latencies.push(t.elapsed());
    }
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    latencies.sort();
    let polls_in_flight = status.snapshot().map(|s| s.took).unwrap_or_default();

    // Encoding alone, in this thread.
    let t = Instant::now();
    for _ in 0..SCRAPES {
        std::hint::black_box(encode(&reg, Format::OpenMetrics).unwrap());
    }
    let encode_each = t.elapsed() / SCRAPES as u32;

    println!(
        "metrics_scrape: {PEERS} peers x {PREFIXES} prefixes, {SCRAPES} scrapes over HTTP ({bytes} bytes each), \
         FRR poll {:.0} ms (in flight ~{:.0}% of the time)",
        polls_in_flight.as_secs_f64() * 1000.0,
        polls_in_flight.as_secs_f64() / config.interval.as_secs_f64() * 100.0
    );
    println!(
        "  latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {:.0} scrapes/s",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
        SCRAPES as f64 / wall.as_secs_f64()
    );
    println!(
        "  CPU per scrape (server + client, whole process incl. the poller): {:.3} ms; encoding alone {:.3} ms",
        cpu.as_secs_f64() * 1000.0 / SCRAPES as f64,
        encode_each.as_secs_f64() * 1000.0
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
