//! Layer 2 failover time: from SIGKILL of the owning speaker to the client's neighbor entry
//! pointing at the other node, over 20 runs (`L2_BENCH_RUNS` to change), IPv4 and IPv6.
//!
//!     METALLB_LAB=1 cargo bench --bench l2_failover
//!
//! Needs root (network namespaces); without `METALLB_LAB=1` it prints a note and measures
//! nothing (`cargo bench` runs every bench). The
//! speaker binary is the bench build of `metallb`, or `METALLB_BIN` if set. Upstream's
//! default (memberlist LAN config) takes 5–8 s for the same thing.

#[path = "../tests/support/l2lab.rs"]
mod l2lab;

use std::{
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use l2lab::{Lab, VIP4, VIP6, mac};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn summary(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} min={:.0} ms p50={:.0} ms p90={:.0} ms max={:.0} ms",
        xs.len(),
        ms(xs[0]),
        ms(percentile(&xs, 0.5)),
        ms(percentile(&xs, 0.9)),
        ms(xs[xs.len() - 1]),
    );
}

fn main() {
    if std::env::var("METALLB_LAB").as_deref() != Ok("1") {
        eprintln!("l2_failover: a lab benchmark; run it as root with METALLB_LAB=1");
        return;
    }
    let runs: usize = std::env::var("L2_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let bin = std::env::var_os("METALLB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_metallb")));
    let mut lab = Lab::up("l2b-", &bin);
    lab.start_speakers(Duration::from_secs(10));

    let (mut v4s, mut v6s) = (Vec::new(), Vec::new());
    println!("run  kill→IPv4 entry  kill→IPv6 entry");
    for run in 1..=runs {
        // Steady state: node2 owns both addresses and the client knows it.
        for ip in [VIP4, VIP6] {
            assert!(lab.ping(ip), "run {run}: ping {ip}");
            assert!(
                lab.wait_neigh(ip, mac("node2"), Instant::now(), Duration::from_secs(10))
                    .is_some(),
                "run {run}: client entry for {ip} is not node2's"
            );
        }
        let killed = lab.kill_speaker("node2");
        let v4 = lab.wait_neigh(VIP4, mac("node1"), killed, Duration::from_secs(15));
        let v6 = lab.wait_neigh(VIP6, mac("node1"), killed, Duration::from_secs(15));
        let (Some(v4), Some(v6)) = (v4, v6) else {
            panic!(
                "run {run}: no failover (v4 {v4:?}, v6 {v6:?}):\n{}",
                lab.log("node1")
            );
        };
        println!(
            "{run:>3}  {:>10.0} ms  {:>12.0} ms",
            v4.as_secs_f64() * 1e3,
            v6.as_secs_f64() * 1e3
        );
        v4s.push(v4);
        v6s.push(v6);
        // Bring the owner back; it takes the addresses back with its gratuitous burst.
        lab.start_speaker("node2");
        let back = Instant::now();
        for ip in [VIP4, VIP6] {
            assert!(
                lab.wait_neigh(ip, mac("node2"), back, Duration::from_secs(15))
                    .is_some(),
                "run {run}: node2 did not take {ip} back:\n{}",
                lab.log("node2")
            );
        }
        // Let node1 withdraw and membership settle before the next kill.
        thread::sleep(Duration::from_millis(500));
    }
    summary("IPv4 kill → client neighbor entry at new owner", v4s);
    summary("IPv6 kill → client neighbor entry at new owner", v6s);
}
