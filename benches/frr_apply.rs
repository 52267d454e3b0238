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
//! to run it. Polling the router costs one vtysh process (~25-40 ms), so the figures have that
//! resolution; the poll asks for the one prefix, not the whole table.

#[path = "../tests/support/lab.rs"]
mod lab;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use metallb::frr::{
    apply::{Applier, ApplierConfig, ApplyPath, write_atomic},
    vtysh::{BgpPrefix, Vtysh, run_process},
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

/// Polls the router for `prefix` via node1 every ~10 ms; returns when seen (or absent, when
/// `present` is false).
async fn poll(router: &Vtysh, prefix: &str, present: bool, start: Instant) -> Duration {
    loop {
        let seen = router
            .bgp_prefix("default", prefix)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.best().map(|b| b.peer.peer_id == NODE1_V4))
            .unwrap_or(false);
        if seen == present {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "{prefix} never {}",
            if present { "arrived" } else { "left" }
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    ours_route: Vec<Duration>,
    ours_done: Vec<Duration>,
    ours_withdraw: Vec<Duration>,
    reload_route: Vec<Duration>,
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
    let dir = lab.state_dir("node1");
    let mut applier = Applier::new(ApplierConfig::new(Some(ns.clone()), &dir));
    println!("frr_apply: FRR 8.4.4 netns lab, node1 → router (eBGP), {REPS} repetitions each");
    let mut table = Vec::new();
    for n in [1000usize, 5000] {
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
        poll(&router, base_prefixes.last().unwrap(), true, Instant::now()).await;
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
            let (report, seen) =
                tokio::join!(applier.apply(&text), poll(&router, &extra, true, start));
            let report = report.unwrap();
            assert_eq!(report.path, ApplyPath::Incremental, "{report:?}");
            f.ours_route.push(seen);
            f.ours_done.push(report.duration);
            f.ours_batch.push(
                report
                    .steps
                    .iter()
                    .filter(|(s, _)| matches!(*s, "write" | "validate" | "batch"))
                    .map(|(_, d)| *d)
                    .sum(),
            );
            let start = Instant::now();
            let (report, gone) =
                tokio::join!(applier.apply(&base), poll(&router, &extra, false, start));
            assert_eq!(report.unwrap().path, ApplyPath::Incremental);
            f.ours_withdraw.push(gone);

            // (b) plain frr-reload.py --reload of the full file.
            let extra = format!("198.19.201.{}/32", 1 + rep);
            let mut with_extra = base_prefixes.clone();
            with_extra.push(extra.clone());
            let file = dir.join("bench-reload.conf");
            write_atomic(&file, &lab::conf_with_services(&with_extra, false)).unwrap();
            let start = Instant::now();
            let (done, seen) =
                tokio::join!(plain_reload(&ns, &file), poll(&router, &extra, true, start));
            f.reload_route.push(seen);
            f.reload_done.push(done);
            write_atomic(&file, &base).unwrap();
            let start = Instant::now();
            let (_, gone) = tokio::join!(
                plain_reload(&ns, &file),
                poll(&router, &extra, false, start)
            );
            f.reload_withdraw.push(gone);
            println!(
                "n={n} rep {rep}: ours add→router {} (apply incl. verify {}), withdraw {}; frr-reload add→router {}, withdraw {}",
                ms(*f.ours_route.last().unwrap()),
                ms(*f.ours_done.last().unwrap()),
                ms(*f.ours_withdraw.last().unwrap()),
                ms(*f.reload_route.last().unwrap()),
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
        "{:>6}  {:>16}  {:>16}  {:>16}  {:>20}  {:>20}  {:>8}",
        "n",
        "ours add→router",
        "ours apply done",
        "ours withdraw",
        "frr-reload add→router",
        "frr-reload withdraw",
        "ratio"
    );
    // (frr-reload "done" = the frr-reload.py process finished: pass 2 and `write` included.)
    for (n, f) in &table {
        let ours = median(f.ours_route.clone());
        let theirs = median(f.reload_route.clone());
        println!(
            "{:>6}  {:>16}  {:>16}  {:>16}  {:>20}  {:>20}  {:>7.1}x",
            n,
            ms(ours),
            ms(median(f.ours_done.clone())),
            ms(median(f.ours_withdraw.clone())),
            ms(theirs),
            ms(median(f.reload_withdraw.clone())),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
    println!("(medians of {REPS}; ratio = frr-reload add→router / ours add→router)");
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
        "n", "ours batch sent (w+C+f)", "churn 100/100 ours", "churn 100/100 frr-reload", "ratio"
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
    println!(" medians of 2; \"batch sent\" = write + vtysh -C of the batch + vtysh -f)");
    drop(lab);
}
