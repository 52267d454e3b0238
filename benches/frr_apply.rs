//! Time from "one more prefix desired" to "prefix in the router's BGP table", with 1,000 and
//! 5,000 prefixes already announced by node1, for our incremental path (one `vtysh -f` batch)
//! and for a plain `frr-reload.py --reload` of the full file; plus the time to withdraw one.
//!
//! Needs root and FRR 8.4.4 (hack/setup.sh); brings up its own netns lab (prefix
//! `mlb-bench-`) and tears it down. Run:
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/main/target cargo bench --bench frr_apply
//! ```
//!
//! `cargo test --all-targets` builds it and runs it without `--bench`; it then only prints how
//! to run it. The router is polled over its bgpd vty socket (~0.3 ms a query, every ~1 ms),
//! for the one prefix; the churn figures still poll with vtysh processes (~25-40 ms).

#[path = "../tests/support/lab.rs"]
mod lab;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use metallb::frr::{
    apply::{Applier, ApplierConfig, ApplyPath, write_atomic},
    vty::VtySession,
    vtysh::{BgpPrefix, Vtysh, parse_bgp_prefix, run_process},
};

const REPS: usize = 5;
const NODE1_V4: &str = "10.77.0.11";

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "frr_apply: a lab benchmark; run it as root with `cargo bench --bench frr_apply`"
        );
        return;
    }
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0"
        || !Path::new("/usr/lib/frr/frr-reload.py").exists()
    {
        eprintln!("frr_apply: needs root and FRR (hack/setup.sh); skipped");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn prefixes(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("198.18.{}.{}/32", i / 250, 1 + i % 250))
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// When the router had a prefix: `received` = a path from node1 is in its BGP table (the
/// UPDATE is in); `best` = that path is also selected (bgpd's own 50 ms process-queue hold
/// later, on the router, the same for both apply paths).
#[derive(Clone, Copy, Debug)]
struct Seen {
    received: Duration,
    best: Duration,
}

/// Polls the router's bgpd over its vty socket (a query costs ~0.3 ms, so the figures have
/// ~1-2 ms resolution) until a path from node1 for `prefix` is in the table and then best.
async fn poll_add(router: &mut VtySession, prefix: &str, start: Instant) -> Seen {
    let mut received = None;
    loop {
        let (has, best) = node1_path(router, prefix).await;
        if has && received.is_none() {
            received = Some(start.elapsed());
        }
        if best {
            let best = start.elapsed();
            return Seen {
                received: received.unwrap_or(best),
                best,
            };
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "{prefix} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls until the router has no path from node1 for `prefix`.
async fn poll_gone(router: &mut VtySession, prefix: &str, start: Instant) -> Duration {
    loop {
        if !node1_path(router, prefix).await.0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "{prefix} never left"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// (a path from node1 exists, and it is the best path).
async fn node1_path(router: &mut VtySession, prefix: &str) -> (bool, bool) {
    let reply = router
        .command(&format!("show bgp vrf default ipv4 unicast {prefix} json"))
        .await
        .expect("router bgpd vty");
    let Ok(Some(p)) = parse_bgp_prefix(&reply.output) else {
        return (false, false);
    };
    let from_node1: Vec<_> = p
        .paths
        .iter()
        .filter(|path| path.peer.peer_id == NODE1_V4)
        .collect();
    (
        !from_node1.is_empty(),
        from_node1.iter().any(|path| path.bestpath.overall),
    )
}

/// Polls until the router has `present` (via node1) and not `absent`: one vtysh process with
/// two commands per poll.
async fn poll_pair(router: &Vtysh, present: &str, absent: &str, start: Instant) -> Duration {
    let cmds = [
        format!("show bgp vrf default ipv4 unicast {present} json"),
        format!("show bgp vrf default ipv4 unicast {absent} json"),
    ];
    loop {
        let out = router
            .raw(&["-c", &cmds[0], "-c", &cmds[1]])
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        let docs: Vec<BgpPrefix> = serde_json::Deserializer::from_str(&out)
            .into_iter::<BgpPrefix>()
            .filter_map(Result::ok)
            .collect();
        let has = |d: Option<&BgpPrefix>| {
            d.and_then(|p| p.best())
                .is_some_and(|b| b.peer.peer_id == NODE1_V4)
        };
        if docs.len() == 2 && has(docs.first()) && !has(docs.get(1)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "churn never converged"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn plain_reload(ns: &str, file: &Path) -> Duration {
    let start = Instant::now();
    let out = run_process(
        Path::new("/usr/lib/frr/frr-reload.py"),
        &["-N", ns, "--reload", "--stdout", &file.to_string_lossy()],
        Duration::from_secs(900),
    )
    .await
    .unwrap();
    assert!(out.success(), "frr-reload.py failed: {}", out.text());
    start.elapsed()
}

struct Figures {
    ours_route: Vec<Seen>,
    ours_done: Vec<Duration>,
    ours_withdraw: Vec<Duration>,
    reload_route: Vec<Seen>,
    reload_withdraw: Vec<Duration>,
    ours_batch: Vec<Duration>,
    ours_churn: Vec<Duration>,
    reload_churn: Vec<Duration>,
    reload_done: Vec<Duration>,
}

async fn run() {
    let lab = lab::Lab::up("mlb-bench-");
    let ns = lab.ns("node1");
    let router = lab.vtysh("router");
    let mut router_vty = lab.bgpd_vty("router").await;
    let dir = lab.state_dir("node1");
    let mut applier = Applier::new(ApplierConfig::new(Some(ns.clone()), &dir));
    println!("frr_apply: FRR 8.4.4 netns lab, node1 → router (eBGP), {REPS} repetitions each");
    let mut table = Vec::new();
    // FRR_BENCH_SIZES=1000 for a quicker run.
    let sizes: Vec<usize> = std::env::var("FRR_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 5000]);
    for n in sizes {
        let base_prefixes = prefixes(n);
        let base = lab::conf_with_services(&base_prefixes, false);
        let t = Instant::now();
        let r = applier.apply(&base).await.unwrap();
        println!(
            "n={n}: baseline applied via {:?} in {} ({})",
            r.path,
            ms(t.elapsed()),
            r.fallback_reason.unwrap_or_default()
        );
        lab::wait_established(&router, NODE1_V4, Duration::from_secs(120))
            .await
            .unwrap();
        poll_add(
            &mut router_vty,
            base_prefixes.last().unwrap(),
            Instant::now(),
        )
        .await;
        println!("n={n}: router has all {n} prefixes");

        let mut f = Figures {
            ours_route: vec![],
            ours_done: vec![],
            ours_withdraw: vec![],
            reload_route: vec![],
            reload_withdraw: vec![],
            ours_batch: vec![],
            ours_churn: vec![],
            reload_churn: vec![],
            reload_done: vec![],
        };
        for rep in 0..REPS {
            // (a) ours: incremental apply of "one more prefix".
            let extra = format!("198.19.200.{}/32", 1 + rep);
            let mut with_extra = base_prefixes.clone();
            with_extra.push(extra.clone());
            let text = lab::conf_with_services(&with_extra, false);
            let start = Instant::now();
            let (report, seen) = tokio::join!(
                applier.apply(&text),
                poll_add(&mut router_vty, &extra, start)
            );
            let report = report.unwrap();
            assert_eq!(report.path, ApplyPath::Incremental, "{report:?}");
            f.ours_route.push(seen);
            f.ours_done.push(report.duration);
            f.ours_batch.push(
                report
                    .steps
                    .iter()
                    .filter(|(s, _)| matches!(*s, "write" | "validate" | "batch" | "batch-vty"))
                    .map(|(_, d)| *d)
                    .sum(),
            );
            let start = Instant::now();
            let (report, gone) = tokio::join!(
                applier.apply(&base),
                poll_gone(&mut router_vty, &extra, start)
            );
            assert_eq!(report.unwrap().path, ApplyPath::Incremental);
            f.ours_withdraw.push(gone);

            // (b) plain frr-reload.py --reload of the full file.
            let extra = format!("198.19.201.{}/32", 1 + rep);
            let mut with_extra = base_prefixes.clone();
            with_extra.push(extra.clone());
            let file = dir.join("bench-reload.conf");
            write_atomic(&file, &lab::conf_with_services(&with_extra, false)).unwrap();
            let start = Instant::now();
            let (done, seen) = tokio::join!(
                plain_reload(&ns, &file),
                poll_add(&mut router_vty, &extra, start)
            );
            f.reload_route.push(seen);
            f.reload_done.push(done);
            write_atomic(&file, &base).unwrap();
            let start = Instant::now();
            let (_, gone) = tokio::join!(
                plain_reload(&ns, &file),
                poll_gone(&mut router_vty, &extra, start)
            );
            f.reload_withdraw.push(gone);
            let (o, r) = (f.ours_route.last().unwrap(), f.reload_route.last().unwrap());
            println!(
                "n={n} rep {rep}: ours add→router received {} best {} (apply incl. verify {}), withdraw {}; frr-reload add→router received {} best {}, withdraw {}",
                ms(o.received),
                ms(o.best),
                ms(*f.ours_done.last().unwrap()),
                ms(*f.ours_withdraw.last().unwrap()),
                ms(r.received),
                ms(r.best),
                ms(*f.reload_withdraw.last().unwrap()),
            );
        }
        // Churn: 100 services replaced by 100 others in one change (the first 100 of the base
        // go, 100 new ones come), twice per path.
        for rep in 0..2 {
            let mut churned: Vec<String> = base_prefixes[100..].to_vec();
            let fresh: Vec<String> = (0..100)
                .map(|i| format!("198.19.{}.{}/32", 210 + rep, 1 + i))
                .collect();
            churned.extend(fresh.iter().cloned());
            let text = lab::conf_with_services(&churned, false);
            let start = Instant::now();
            let (report, seen) = tokio::join!(
                applier.apply(&text),
                poll_pair(&router, fresh.last().unwrap(), &base_prefixes[99], start)
            );
            let report = report.unwrap();
            assert_eq!(report.path, ApplyPath::Incremental);
            assert_eq!(report.stats.networks_removed, 100);
            f.ours_churn.push(seen);
            let start = Instant::now();
            let (report, _) = tokio::join!(
                applier.apply(&base),
                poll_pair(&router, &base_prefixes[99], fresh.last().unwrap(), start)
            );
            assert_eq!(report.unwrap().path, ApplyPath::Incremental);

            let file = dir.join("bench-reload.conf");
            write_atomic(&file, &text).unwrap();
            let start = Instant::now();
            let (_, seen) = tokio::join!(
                plain_reload(&ns, &file),
                poll_pair(&router, fresh.last().unwrap(), &base_prefixes[99], start)
            );
            f.reload_churn.push(seen);
            // Back to the base through our applier's view: it still holds the base text, so
            // restore FRR to it with the incremental inverse (frr-reload would take long).
            write_atomic(&file, &base).unwrap();
            let mut restore =
                Applier::new(ApplierConfig::new(Some(ns.clone()), dir.join("restore")));
            let _ = restore.apply(&text).await; // learns `text` as current (a reload no-op)
            restore.apply(&base).await.unwrap();
            poll_pair(
                &router,
                &base_prefixes[99],
                fresh.last().unwrap(),
                Instant::now(),
            )
            .await;
            println!(
                "n={n} churn {rep}: ours {}, frr-reload {}",
                ms(*f.ours_churn.last().unwrap()),
                ms(*f.reload_churn.last().unwrap())
            );
        }
        table.push((n, f));
    }
    println!();
    println!(
        "{:>6}  {:>14}  {:>14}  {:>14}  {:>14}  {:>13}  {:>13}  {:>14}  {:>12}",
        "n",
        "ours received",
        "ours best",
        "ours done",
        "ours withdraw",
        "reload recvd",
        "reload best",
        "reload withdraw",
        "ratio r / b"
    );
    // (frr-reload "done" = the frr-reload.py process finished: pass 2 and `write` included.)
    for (n, f) in &table {
        let ours_r = median(f.ours_route.iter().map(|s| s.received).collect());
        let ours_b = median(f.ours_route.iter().map(|s| s.best).collect());
        let theirs_r = median(f.reload_route.iter().map(|s| s.received).collect());
        let theirs_b = median(f.reload_route.iter().map(|s| s.best).collect());
        println!(
            "{:>6}  {:>14}  {:>14}  {:>14}  {:>14}  {:>13}  {:>13}  {:>14}  {:>5.1}x / {:.1}x",
            n,
            ms(ours_r),
            ms(ours_b),
            ms(median(f.ours_done.clone())),
            ms(median(f.ours_withdraw.clone())),
            ms(theirs_r),
            ms(theirs_b),
            ms(median(f.reload_withdraw.clone())),
            theirs_r.as_secs_f64() / ours_r.as_secs_f64(),
            theirs_b.as_secs_f64() / ours_b.as_secs_f64(),
        );
    }
    println!("(medians of {REPS}; received = a path from node1 is in the router's BGP table;");
    println!(
        " best = the router has also selected it, after its own 50 ms bgp process-queue hold;"
    );
    println!(" ratio = frr-reload / ours, for received and for best)");
    for (n, f) in &table {
        println!(
            "n={n}: frr-reload.py run for one added prefix took {} (median); ours, verify and write included, {}",
            ms(median(f.reload_done.clone())),
            ms(median(f.ours_done.clone()))
        );
    }
    println!();
    println!(
        "{:>6}  {:>22}  {:>24}  {:>26}  {:>8}",
        "n", "ours batch sent", "churn 100/100 ours", "churn 100/100 frr-reload", "ratio"
    );
    for (n, f) in &table {
        let ours = median(f.ours_churn.clone());
        let theirs = median(f.reload_churn.clone());
        println!(
            "{:>6}  {:>22}  {:>24}  {:>26}  {:>7.1}x",
            n,
            ms(median(f.ours_batch.clone())),
            ms(ours),
            ms(theirs),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
    println!("(churn: time until the router has the last new prefix and not the last removed one;");
    println!(
        " medians of 2; \"batch sent\" = write + the batch: bgpd vty session for network-only"
    );
    println!(" changes, else vtysh -C of the batch + vtysh -f)");
    drop(lab);
}
