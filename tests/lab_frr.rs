//! The apply loop against real FRR 8.4.4 in the netns lab (router + node1 + node2).
//!
//! Run with `METALLB_LAB=1` as root after `hack/setup.sh` (hack/test does both). Without it
//! every test prints a skip note and passes; with it, missing FRR or root is a failure. Each
//! test brings up its own lab under its own prefix and tears it down on drop, panics included;
//! a process-wide lock runs them one at a time (two cores, BGP timers).

#[path = "support/lab.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::Lab;
use metallb::frr::{
    apply::{Applier, ApplierConfig, ApplyPath, Step, config_hash},
    apply_loop::{self, ApplyHandle, ApplyStatus, LoopConfig},
};

static LAB_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const NODE1_V4: &str = "10.77.0.11";
const NODE1_V6: &str = "fd00:77::11";
const LONG: Duration = Duration::from_secs(60);

fn start_loop(lab: &Lab, cfg: LoopConfig) -> ApplyHandle {
    let applier = Applier::new(ApplierConfig::new(
        Some(lab.ns("node1")),
        lab.state_dir("node1"),
    ));
    apply_loop::spawn(applier, cfg)
}

fn fast_loop() -> LoopConfig {
    LoopConfig {
        debounce: Duration::from_millis(20),
        retry_initial: Duration::from_millis(300),
        retry_max: Duration::from_secs(5),
        resync: None,
    }
}

/// Sets `text` and waits until it is the applied config; returns the status.
async fn apply(h: &ApplyHandle, text: &str) -> ApplyStatus {
    let hash = config_hash(text);
    h.set(text.to_string());
    h.wait_for(LONG, |s| {
        s.applied_hash.as_deref() == Some(&hash) && s.last.as_ref().is_some_and(|a| a.hash == hash)
    })
    .await
    .unwrap_or_else(|s| panic!("{hash} not applied: {s:#?}"))
}

/// Applies the base config and waits for both sessions and both base routes on the router.
async fn bring_up_base(lab: &Lab, h: &ApplyHandle) {
    let s = apply(h, &lab::base_conf()).await;
    assert_eq!(s.last.unwrap().path, Some(ApplyPath::Reload), "first apply");
    let router = lab.vtysh("router");
    lab::wait_established(&router, NODE1_V4, LONG)
        .await
        .unwrap();
    lab::wait_established(&router, NODE1_V6, LONG)
        .await
        .unwrap();
    let every = Duration::from_millis(50);
    lab::wait_route(&router, "198.51.100.10/32", Some(NODE1_V4), LONG, every)
        .await
        .unwrap();
    lab::wait_route(&router, "2001:db8::10/128", Some(NODE1_V6), LONG, every)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_reaches_router_with_next_hop_and_community_then_is_withdrawn() {
    if !lab::enabled("prefix_reaches_router_with_next_hop_and_community_then_is_withdrawn") {
        return;
    }
    let _serial = LAB_LOCK.lock().await;
    let lab = Lab::up("mlt-route-");
    let h = start_loop(&lab, fast_loop());
    bring_up_base(&lab, &h).await;
    let router = lab.vtysh("router");

    // A new service with a community: network line, allow-list entry and a community
    // route-map entry (frr/canonical/14d), all through the incremental path.
    let with_community = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/frr/canonical/14d-add-community.conf"
    ))
    .unwrap()
    .replace("hostname vm\n", &format!("hostname {}\n", lab::nodename()));
    let s = apply(&h, &with_community).await;
    let last = s.last.unwrap();
    assert_eq!(last.path, Some(ApplyPath::Incremental), "{last:?}");
    assert_eq!(last.stats.networks_added, 1);
    let path = lab::wait_route(
        &router,
        "198.51.100.11/32",
        Some(NODE1_V4),
        LONG,
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    assert_eq!(path.path, "64500");
    // Communities are only in the per-prefix view. Route-map changes reach the peer after
    // bgpd's route-map timer, so poll.
    let start = Instant::now();
    loop {
        let detail = router
            .bgp_prefix("default", "198.51.100.11/32")
            .await
            .unwrap();
        let community = detail
            .as_ref()
            .and_then(|d| d.best())
            .and_then(|p| p.community.clone())
            .map(|c| c.string);
        if community.as_deref() == Some("64500:100") {
            break;
        }
        assert!(
            start.elapsed() < LONG,
            "community never arrived: {community:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Local preference is not carried over eBGP (node1 and the router are eBGP peers); the
    // locPrf parsing is covered by the fixture tests.

    // Back to the base: the service is withdrawn, again incrementally.
    let s = apply(&h, &lab::base_conf()).await;
    let last = s.last.unwrap();
    assert_eq!(last.path, Some(ApplyPath::Incremental), "{last:?}");
    assert_eq!(last.stats.networks_removed, 1);
    lab::wait_no_route(&router, "198.51.100.11/32", LONG)
        .await
        .unwrap();
    lab::wait_route(
        &router,
        "198.51.100.10/32",
        Some(NODE1_V4),
        LONG,
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_service_changes_reset_no_session() {
    if !lab::enabled("two_hundred_service_changes_reset_no_session") {
        return;
    }
    let _serial = LAB_LOCK.lock().await;
    let lab = Lab::up("mlt-reset-");
    let h = start_loop(&lab, fast_loop());
    bring_up_base(&lab, &h).await;
    let router = lab.vtysh("router");
    // Let BFD settle so its uptime is comparable.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_v4 = lab::neighbor(&router, NODE1_V4).await;
    let before_v6 = lab::neighbor(&router, NODE1_V6).await;
    let bfd_before = router.bfd_peers("default").await.unwrap();
    assert!(
        bfd_before
            .iter()
            .filter(|p| p.peer == NODE1_V4 || p.peer == NODE1_V6)
            .all(|p| p.is_up())
    );

    // 200 changes: a sliding window of five services, each change adds one and (after the
    // first four) removes one: network line plus allow-list entry, as a renderer emits them.
    let start = Instant::now();
    let mut text = String::new();
    let mut window = Vec::new();
    for i in 0..200u32 {
        let window_start = i.saturating_sub(4);
        window = (window_start..=i)
            .map(|j| format!("198.51.{}.{}/32", 101 + j / 250, 1 + j % 250))
            .collect();
        text = lab::conf_with_services(&window, true);
        let s = apply(&h, &text).await;
        let last = s.last.unwrap();
        assert_eq!(
            last.path,
            Some(ApplyPath::Incremental),
            "change {i}: {last:?}"
        );
    }
    let elapsed = start.elapsed();
    eprintln!(
        "200 service changes applied in {elapsed:?} ({:?} per change, debounce included)",
        elapsed / 200
    );
    for p in &window {
        lab::wait_route(&router, p, Some(NODE1_V4), LONG, Duration::from_millis(50))
            .await
            .unwrap();
    }
    lab::wait_no_route(&router, "198.51.101.1/32", LONG)
        .await
        .unwrap();

    let after_v4 = lab::neighbor(&router, NODE1_V4).await;
    let after_v6 = lab::neighbor(&router, NODE1_V6).await;
    for (before, after, peer) in [
        (&before_v4, &after_v4, NODE1_V4),
        (&before_v6, &after_v6, NODE1_V6),
    ] {
        assert!(after.is_established(), "{peer}: {}", after.bgp_state);
        assert_eq!(
            after.connections_established, before.connections_established,
            "{peer}: session was reset"
        );
        assert_eq!(
            after.connections_dropped, before.connections_dropped,
            "{peer}"
        );
        assert_eq!(
            after.bgp_timer_up_established_epoch, before.bgp_timer_up_established_epoch,
            "{peer}: established time moved"
        );
        assert!(
            after.bgp_timer_up_msec > before.bgp_timer_up_msec,
            "{peer}: uptime did not grow"
        );
    }
    // BFD stayed up the whole time: its uptime covers the run.
    let bfd_after = router.bfd_peers("default").await.unwrap();
    for p in bfd_after
        .iter()
        .filter(|p| p.peer == NODE1_V4 || p.peer == NODE1_V6)
    {
        assert!(p.is_up(), "{p:?}");
        assert!(
            p.uptime.unwrap_or(0) >= elapsed.as_secs(),
            "BFD flapped: {p:?}"
        );
    }

    // The same text again runs nothing.
    let s = h.status().borrow().clone();
    h.set(text.clone());
    let again = h
        .wait_for(LONG, |n| n.unchanged == s.unchanged + 1)
        .await
        .unwrap();
    assert_eq!(again.applies, s.applies);
    assert_eq!(again.last.unwrap().path, Some(ApplyPath::Unchanged));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_configs_leave_the_previous_one_running() {
    if !lab::enabled("rejected_configs_leave_the_previous_one_running") {
        return;
    }
    let _serial = LAB_LOCK.lock().await;
    let lab = Lab::up("mlt-reject-");
    let h = start_loop(&lab, fast_loop());
    bring_up_base(&lab, &h).await;
    let node1 = lab.vtysh("node1");
    let router = lab.vtysh("router");
    let base = lab::base_conf();
    let base_hash = config_hash(&base);

    // 1. An invalid render: an unknown command. FRR's parser rejects it; nothing is applied.
    let unknown = base.replace(
        " neighbor 10.77.0.1 bfd\n",
        " neighbor 10.77.0.1 bfd\n neighbor 10.77.0.1 bfdx\n",
    );
    let bad_hash = config_hash(&unknown);
    h.set(unknown);
    let s = h
        .wait_for(LONG, |s| {
            s.last
                .as_ref()
                .is_some_and(|a| a.hash == bad_hash && !a.ok())
        })
        .await
        .unwrap();
    let last = s.last.clone().unwrap();
    assert_eq!(last.failed_step, Some(Step::Validate), "{last:?}");
    assert!(
        last.error.as_deref().unwrap().contains("Unknown command"),
        "{last:?}"
    );
    assert_eq!(s.applied_hash.as_deref(), Some(base_hash.as_str()));
    let running = node1.running_config().await.unwrap();
    assert!(!running.contains("bfdx"));
    assert!(running.contains("network 198.51.100.10/32"));
    // It is retried with backoff while it stays the desired config.
    let s = h
        .wait_for(LONG, |s| s.last.as_ref().is_some_and(|a| a.retry >= 2))
        .await
        .unwrap();
    assert_eq!(s.last.unwrap().hash, bad_hash);

    // 2. A config FRR accepts line by line but rejects when applied: a route-map on a
    //    neighbor that does not exist, next to a new service. frr-reload.py applies the good
    //    lines and fails the bad one; the applier rolls everything back.
    let semantic = lab::conf_with_services(&["198.51.100.99/32".to_string()], true).replace(
        "  neighbor 10.77.0.1 route-map 10.77.0.1-out out\n",
        "  neighbor 10.77.0.1 route-map 10.77.0.1-out out\n  neighbor 10.9.9.9 route-map FOO in\n",
    );
    let semantic_hash = config_hash(&semantic);
    h.set(semantic);
    let s = h
        .wait_for(LONG, |s| {
            s.last
                .as_ref()
                .is_some_and(|a| a.hash == semantic_hash && !a.ok())
        })
        .await
        .unwrap();
    let last = s.last.clone().unwrap();
    assert_eq!(last.failed_step, Some(Step::Reload), "{last:?}");
    let error = last.error.unwrap();
    assert!(error.contains("10.9.9.9"), "{error}");
    assert!(
        error.contains("previous configuration was restored"),
        "{error}"
    );
    assert_eq!(s.applied_hash.as_deref(), Some(base_hash.as_str()));
    let running = node1.running_config().await.unwrap();
    assert!(!running.contains("10.9.9.9"), "{running}");
    assert!(!running.contains("198.51.100.99"), "{running}");
    lab::wait_no_route(&router, "198.51.100.99/32", LONG)
        .await
        .unwrap();

    // 3. The good config again: nothing to do, the retries stop.
    h.set(base.clone());
    let s = h
        .wait_for(LONG, |s| {
            s.last
                .as_ref()
                .is_some_and(|a| a.hash == base_hash && a.ok())
        })
        .await
        .unwrap();
    assert_eq!(s.last.unwrap().path, Some(ApplyPath::Unchanged));
    let failures = s.failures;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.status().borrow().failures, failures, "retries went on");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_configs_in_one_debounce_window_make_one_apply() {
    if !lab::enabled("fifty_configs_in_one_debounce_window_make_one_apply") {
        return;
    }
    let _serial = LAB_LOCK.lock().await;
    let lab = Lab::up("mlt-burst-");
    let h = start_loop(
        &lab,
        LoopConfig {
            debounce: Duration::from_millis(300),
            ..fast_loop()
        },
    );
    bring_up_base(&lab, &h).await;
    let before = h.status().borrow().clone();
    assert_eq!(before.applies, 1);

    let texts: Vec<String> = (0..50)
        .map(|i| lab::conf_with_services(&[format!("198.51.100.{}/32", 100 + i)], true))
        .collect();
    let started = Instant::now();
    for t in &texts {
        h.set(t.clone());
    }
    let pushed = started.elapsed();
    assert!(
        pushed < Duration::from_millis(300),
        "pushing took {pushed:?}"
    );
    let s = apply(&h, texts.last().unwrap()).await;
    assert_eq!(s.applies, 2, "{s:#?}");
    assert_eq!(s.failures, 0);
    let last = s.last.unwrap();
    assert_eq!(last.path, Some(ApplyPath::Incremental));
    assert_eq!(last.stats.networks_added, 1);
    let router = lab.vtysh("router");
    lab::wait_route(
        &router,
        "198.51.100.149/32",
        Some(NODE1_V4),
        LONG,
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    let running = lab.vtysh("node1").running_config().await.unwrap();
    assert!(!running.contains("198.51.100.100/32"));
    // Nothing else was applied afterwards.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.status().borrow().applies, 2);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_change_on_frr_is_detected_and_undone() {
    if !lab::enabled("manual_change_on_frr_is_detected_and_undone") {
        return;
    }
    let _serial = LAB_LOCK.lock().await;
    let lab = Lab::up("mlt-drift-");
    let h = start_loop(
        &lab,
        LoopConfig {
            resync: Some(Duration::from_millis(500)),
            ..fast_loop()
        },
    );
    bring_up_base(&lab, &h).await;
    let router = lab.vtysh("router");
    // Someone removes the service by hand on node1.
    lab.vtysh("node1")
        .raw(&[
            "-c",
            "configure",
            "-c",
            "router bgp 64500",
            "-c",
            "address-family ipv4 unicast",
            "-c",
            "no network 198.51.100.10/32",
        ])
        .await
        .unwrap();
    lab::wait_no_route(&router, "198.51.100.10/32", LONG)
        .await
        .unwrap();
    // The next drift check reloads the applied config: the route is back.
    let s = h.wait_for(LONG, |s| s.resyncs >= 1).await.unwrap();
    let last = s.last.unwrap();
    assert!(last.ok(), "{last:?}");
    assert!(
        last.fallback_reason
            .unwrap()
            .contains("network 198.51.100.10/32"),
        "the drift names the missing line"
    );
    lab::wait_route(
        &router,
        "198.51.100.10/32",
        Some(NODE1_V4),
        LONG,
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    h.shutdown().await.unwrap();
}

/// Reads the speaker's status.json (None while it does not exist or is being replaced).
fn read_status(path: &std::path::Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

async fn wait_status(
    path: &std::path::Path,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(s) = read_status(path)
            && pred(&s)
        {
            return s;
        }
        assert!(
            start.elapsed() < LONG,
            "{what}: status is {:#?}",
            read_status(path)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills the speaker if the test fails half-way.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_binary_follows_its_input_and_stops_on_sigterm() {
    if !lab::enabled("speaker_binary_follows_its_input_and_stops_on_sigterm") {
        return;
    }
    let _serial = LAB_LOCK.lock().await;
    let lab = Lab::up("mlt-speaker-");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("frr.conf");
    let state = lab.state_dir("node1");
    let status = state.join("status.json");
    std::fs::write(&conf, lab::base_conf()).unwrap();
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_metallb"))
            .args(["--log-level", "info", "speaker", "--node-name", "node1"])
            .arg("--frr-conf-file")
            .arg(&conf)
            .args(["--frr-pathspace", &lab.ns("node1")])
            .args(["--debounce-ms", "50", "--poll-ms", "50"])
            .arg("--state-dir")
            .arg(&state)
            .spawn()
            .unwrap(),
    );
    let router = lab.vtysh("router");
    let every = Duration::from_millis(50);
    lab::wait_route(&router, "198.51.100.10/32", Some(NODE1_V4), LONG, every)
        .await
        .unwrap();
    wait_status(&status, "first apply", |s| s["applies"] == 1).await;

    // A new service in the file: announced through the incremental path.
    std::fs::write(
        &conf,
        lab::conf_with_services(&["198.51.100.77/32".to_string()], true),
    )
    .unwrap();
    lab::wait_route(&router, "198.51.100.77/32", Some(NODE1_V4), LONG, every)
        .await
        .unwrap();
    let s = wait_status(&status, "second apply", |s| s["applies"] == 2).await;
    assert_eq!(s["last"]["path"], "incremental", "{s:#?}");

    // A broken file: reported, FRR keeps the service.
    std::fs::write(&conf, "router bgp 64500\n neighbor 10.77.0.1 bfdx\nexit\n").unwrap();
    let s = wait_status(&status, "failure", |s| s["failures"].as_u64() >= Some(1)).await;
    assert_eq!(s["last"]["failedStep"], "validate", "{s:#?}");
    let running = lab.vtysh("node1").running_config().await.unwrap();
    assert!(running.contains("network 198.51.100.77/32"));

    // Back to the service file, then SIGHUP: the same text again runs nothing.
    std::fs::write(
        &conf,
        lab::conf_with_services(&["198.51.100.77/32".to_string()], true),
    )
    .unwrap();
    let s = wait_status(&status, "good again", |s| s["last"]["error"].is_null()).await;
    let unchanged = s["unchanged"].as_u64().unwrap();
    assert_eq!(s["applies"], 2, "{s:#?}");
    signal(&child, "HUP");
    wait_status(&status, "SIGHUP", |s| {
        s["unchanged"].as_u64() == Some(unchanged + 1)
    })
    .await;

    // SIGTERM: a clean exit.
    signal(&child, "TERM");
    let start = Instant::now();
    let code = loop {
        if let Some(code) = child.0.try_wait().unwrap() {
            break code;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "speaker did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(code.success(), "{code:?}");
}
