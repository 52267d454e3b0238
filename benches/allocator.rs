//! Allocator benchmark: time per operation while one pool fills, to show it stays flat.
//!
//! Run with `cargo bench --bench allocator` (release profile, plain `main`, no harness).
//!
//! The build machine is shared, so every figure is the best (lowest) of several runs: a run
//! that waited for a core measures the neighbours, not the allocator. Look at the shape (flat
//! across deciles) more than at the last digit.

use std::{
    collections::HashSet,
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    time::Instant,
};

use metallb::core::{
    address::{Family, IpRange},
    allocator::Allocator,
    config::Pool,
    service::{IpFamilyPolicy, LbService, Port, Protocol, ServiceKey},
};

const RUNS: usize = 7;
const POOL_V4: &str = "10.96.0.0/16";
const POOL_V6: &str = "fd00:96::/64";

fn pool(name: &str, range: &str) -> Pool {
    Pool {
        name: name.to_string(),
        ranges: vec![IpRange::parse(range).expect("valid range")],
        auto_assign: true,
        ..Default::default()
    }
}

fn service(i: usize) -> LbService {
    LbService {
        key: ServiceKey::new("bench", format!("svc-{i:05}")),
        ports: vec![Port {
            protocol: Protocol::Tcp,
            port: 80,
        }],
        families: vec![Family::V4],
        ..Default::default()
    }
}

fn services(n: usize) -> Vec<LbService> {
    (0..n).map(service).collect()
}

/// xorshift64*: a fixed, dependency-free shuffle.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let r = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        items.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

/// A wall-clock start, to report ns per operation.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now() -> Clock {
        Clock(Instant::now())
    }

    /// ns per operation since `self`.
    fn per(self, ops: usize) -> f64 {
        self.0.elapsed().as_nanos() as f64 / ops as f64
    }
}

fn best(xs: Vec<f64>) -> f64 {
    xs.into_iter().fold(f64::INFINITY, f64::min)
}

/// Allocates every service into a fresh allocator; ns per allocation for each tenth.
fn fill(pools: &[Pool], svcs: &[LbService]) -> (Allocator, Vec<f64>) {
    let mut allocator = Allocator::new(pools);
    let tenth = svcs.len() / 10;
    let mut deciles = Vec::with_capacity(10);
    for chunk in svcs.chunks(tenth) {
        let start = Clock::now();
        for s in chunk {
            black_box(
                allocator
                    .allocate(black_box(s))
                    .expect("pool is large enough"),
            );
        }
        deciles.push(start.per(chunk.len()));
    }
    (allocator, deciles)
}

/// Best over runs of `fill`, per decile, and overall.
fn fill_best(pools: &[Pool], svcs: &[LbService]) -> (Allocator, Vec<f64>, f64) {
    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let (allocator, deciles) = fill(pools, svcs);
        runs.push(deciles);
        last = Some(allocator);
    }
    let deciles: Vec<f64> = (0..10)
        .map(|d| best(runs.iter().map(|r| r[d]).collect()))
        .collect();
    let overall = best(runs.iter().map(|r| r.iter().sum::<f64>() / 10.0).collect());
    (last.expect("at least one run"), deciles, overall)
}

/// Times `op` over `n` iterations, best of runs, in ns per iteration.
fn time(n: usize, mut setup: impl FnMut() -> Box<dyn FnMut(usize)>) -> f64 {
    best(
        (0..RUNS)
            .map(|_| {
                let mut op = setup();
                let start = Clock::now();
                for i in 0..n {
                    op(i);
                }
                start.per(n)
            })
            .collect(),
    )
}

/// Upstream's algorithm shape, for reference: walk the pool from its first address and take the
/// first one not in the in-use set.
fn linear_first_fit(n: usize) -> Vec<f64> {
    let base = u32::from(Ipv4Addr::new(10, 96, 0, 0));
    let mut used: HashSet<IpAddr> = HashSet::new();
    let tenth = n / 10;
    let mut deciles = Vec::new();
    for _ in 0..10 {
        let start = Clock::now();
        for _ in 0..tenth {
            let ip = (0..65_536u32)
                .map(|o| IpAddr::V4(Ipv4Addr::from(base + o)))
                .find(|ip| !used.contains(ip))
                .expect("pool is large enough");
            used.insert(black_box(ip));
        }
        deciles.push(start.per(tenth));
    }
    deciles
}

/// Resident memory of the process in bytes (Linux), for a rough per-Service footprint.
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn main() {
    let v4 = [pool("bench", POOL_V4)];
    let svcs_10k = services(10_000);
    let svcs_50k = services(50_000);

    // Memory first, before other runs leave freed memory around.
    let before = rss();
    let huge = Allocator::new(&[pool("huge", POOL_V6), pool("all", "::/0")]);
    let after_pools = rss();
    let (held, _) = fill(&v4, &svcs_50k);
    let after_fill = rss();
    let memory = match (before, after_pools, after_fill) {
        (Some(b), Some(p), Some(f)) => format!(
            "memory: empty {POOL_V6} + ::/0 pools {} KiB; 50,000 assignments {} B each (RSS)",
            p.saturating_sub(b) / 1024,
            f.saturating_sub(p) / 50_000
        ),
        _ => "memory: not measured (no /proc)".to_string(),
    };
    drop((huge, held));

    println!("metallb-rs allocator benchmark: ns per operation, best of {RUNS} runs");
    println!("{memory}");
    println!();
    println!(
        "1. fill one /16 IPv4 pool ({POOL_V4}, 65,536 addresses), distinct services, no sharing"
    );
    let (_, d10, o10) = fill_best(&v4, &svcs_10k);
    let (full, d50, o50) = fill_best(&v4, &svcs_50k);
    let naive = linear_first_fit(10_000);
    println!();
    println!(
        "   {:<24} {:>16} {:>16} {:>22}",
        "", "10,000 services", "50,000 services", "linear first-fit, 10k"
    );
    println!(
        "   {:<24} {:>16} {:>16} {:>22}",
        "", "(ns/alloc)", "(ns/alloc)", "(reference, 1 run)"
    );
    println!(
        "   {:<24} {:>16.0} {:>16.0} {:>22.0}",
        "overall (best full run)",
        o10,
        o50,
        naive.iter().sum::<f64>() / 10.0
    );
    for d in 0..10 {
        let label = format!("decile {:>2} ({:>3}-{:>3}%)", d + 1, d * 10, d * 10 + 10);
        println!(
            "   {label:<24} {:>16.0} {:>16.0} {:>22.0}",
            d10[d], d50[d], naive[d]
        );
    }
    let stats = full.pool_stats("bench").expect("pool exists").ipv4;
    println!(
        "   (after 50,000: assigned {}, available {})",
        stats.assigned, stats.available
    );

    println!();
    println!("2. other operations on the /16 pool holding 50,000 services");
    println!();
    let mut rows: Vec<(String, f64)> = Vec::new();

    // Steady-state reconcile: allocate() on a service that already holds its address.
    let base = full.clone();
    rows.push((
        "allocate, already held (idempotent)".into(),
        time(50_000, || {
            let mut a = base.clone();
            let svcs = svcs_50k.clone();
            Box::new(move |i| {
                black_box(a.allocate(&svcs[i]).expect("held"));
            })
        }),
    ));

    // Churn: release a pseudo-random service, then allocate a new one (takes the freed address).
    let mut order: Vec<usize> = (0..50_000).collect();
    shuffle(&mut order, 7);
    rows.push((
        "release + re-allocate (pair)".into(),
        time(50_000, || {
            let mut a = base.clone();
            let victims: Vec<ServiceKey> = order.iter().map(|&v| service(v).key).collect();
            let newcomers: Vec<LbService> = (50_000..100_000).map(service).collect();
            Box::new(move |i| {
                a.release(&victims[i]);
                black_box(a.allocate(&newcomers[i]).expect("a free address"));
            })
        }),
    ));

    // Restart: restore 50,000 assignments from status into a fresh allocator.
    let status: Vec<(LbService, Vec<IpAddr>)> = svcs_50k
        .iter()
        .map(|s| {
            (
                s.clone(),
                full.assignment(&s.key).expect("held").ips.clone(),
            )
        })
        .collect();
    let mut shuffled = status.clone();
    shuffle(&mut shuffled, 42);
    for (label, input) in [
        ("in address order", &status),
        ("in random order", &shuffled),
    ] {
        rows.push((
            format!("restore 50,000, {label}"),
            time(input.len(), || {
                let mut a = Allocator::new(&v4);
                let input = input.clone();
                Box::new(move |i| {
                    let (s, ips) = &input[i];
                    black_box(a.restore(s, ips).expect("restorable"));
                })
            }),
        ));
    }

    // Requested addresses (loadBalancerIP), random order, into an empty pool.
    let mut requested: Vec<LbService> = status
        .iter()
        .map(|(s, ips)| LbService {
            requested_ips: ips.clone(),
            ..s.clone()
        })
        .collect();
    shuffle(&mut requested, 9);
    rows.push((
        "requested IP, 50,000 in random order".into(),
        time(requested.len(), || {
            let mut a = Allocator::new(&v4);
            let requested = requested.clone();
            Box::new(move |i| {
                black_box(a.allocate(&requested[i]).expect("requestable"));
            })
        }),
    ));

    // Sharing: pairs of services (TCP 53 + UDP 53) under one key each, colocated.
    let sharing: Vec<LbService> = (0..50_000)
        .map(|i| LbService {
            sharing_key: Some(format!("dns-{}", i / 2)),
            ports: vec![Port {
                protocol: if i % 2 == 0 {
                    Protocol::Tcp
                } else {
                    Protocol::Udp
                },
                port: 53,
            }],
            ..service(i)
        })
        .collect();
    rows.push((
        "shared key, 25,000 TCP+UDP pairs".into(),
        time(sharing.len(), || {
            let mut a = Allocator::new(&v4);
            let sharing = sharing.clone();
            Box::new(move |i| {
                black_box(a.allocate(&sharing[i]).expect("a free address"));
            })
        }),
    ));

    // A /64 IPv6 pool: 2^64 addresses, never materialised.
    let v6 = [pool("bench6", POOL_V6)];
    let v6_svcs: Vec<LbService> = (0..50_000)
        .map(|i| LbService {
            families: vec![Family::V6],
            family_policy: IpFamilyPolicy::SingleStack,
            ..service(i)
        })
        .collect();
    rows.push((
        format!("fill {POOL_V6} with 50,000"),
        time(v6_svcs.len(), || {
            let mut a = Allocator::new(&v6);
            let v6_svcs = v6_svcs.clone();
            Box::new(move |i| {
                black_box(a.allocate(&v6_svcs[i]).expect("a free address"));
            })
        }),
    ));

    // Dual-stack RequireDualStack pairs from one pool.
    let dual_pool = [Pool {
        ranges: vec![
            IpRange::parse(POOL_V4).expect("valid"),
            IpRange::parse(POOL_V6).expect("valid"),
        ],
        ..pool("dual", POOL_V4)
    }];
    let dual_svcs: Vec<LbService> = (0..50_000)
        .map(|i| LbService {
            families: vec![Family::V4, Family::V6],
            family_policy: IpFamilyPolicy::RequireDualStack,
            ..service(i)
        })
        .collect();
    rows.push((
        "RequireDualStack, 50,000 v4+v6 pairs".into(),
        time(dual_svcs.len(), || {
            let mut a = Allocator::new(&dual_pool);
            let dual_svcs = dual_svcs.clone();
            Box::new(move |i| {
                black_box(a.allocate(&dual_svcs[i]).expect("a free pair"));
            })
        }),
    ));

    println!("   {:<40} {:>10}", "operation", "ns/op");
    for (label, ns) in rows {
        println!("   {label:<40} {ns:>10.0}");
    }
}
