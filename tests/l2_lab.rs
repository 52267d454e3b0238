//! The layer 2 speaker on real interfaces: two node namespaces and a client on one bridge
//! (`tests/lab/l2.sh`), `metallb speaker-l2` in each node. Needs root: ignored unless
//! run with `--include-ignored` (hack/test), and then fails without root.
//!
//! What they prove:
//! - the client resolves the IPv4 and IPv6 service addresses to the owner's MAC, and a TCP
//!   connection reaches the listener on the owner;
//! - the non-owner never answers (nothing from its MAC on the client's wire, zero counters);
//! - killing the owner's speaker moves the client's neighbor entries to the other node.

#[path = "support/l2lab.rs"]
mod l2lab;

use std::{
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use l2lab::{Lab, VIP4, VIP6, mac};

/// One lab at a time: timings are measured and the machine is small.
static SERIAL: Mutex<()> = Mutex::new(());

fn lab(prefix: &str) -> Lab {
    let mut lab = Lab::up(prefix, Path::new(env!("CARGO_BIN_EXE_metallb")));
    lab.start_speakers(Duration::from_secs(10));
    lab
}

#[test]
#[ignore = "needs METALLB_LAB (root, network namespaces)"]
fn client_resolves_to_the_owner_and_reaches_its_listener_and_the_other_node_stays_silent() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("l2t1-");
    // Let the initial gratuitous burst (5 s) pass so that what we capture is answers.
    std::thread::sleep(Duration::from_millis(5500));
    let seen = lab.watch_answers(3.0, || {
        for ip in [VIP4, VIP6] {
            lab.flush(ip);
            assert!(lab.ping(ip), "ping {ip}");
        }
    });
    assert_eq!(lab.neigh(VIP4).as_deref(), Some(mac("node2")));
    assert_eq!(lab.neigh(VIP6).as_deref(), Some(mac("node2")));
    assert!(
        seen.iter().any(|a| a.kind == "arp-reply" && a.ip == VIP4),
        "no ARP reply captured: {seen:?}"
    );
    assert!(
        seen.iter().any(|a| a.kind == "na" && a.ip == VIP6),
        "no NA captured: {seen:?}"
    );
    assert!(
        seen.iter().all(|a| a.mac == mac("node2")),
        "someone else answered: {seen:?}"
    );
    assert_eq!(lab.connect(VIP4), "node2");
    assert_eq!(lab.connect(VIP6), "node2");

    // Counters: the owner answered, the other node never did.
    std::thread::sleep(Duration::from_millis(400));
    let owner = lab.status("node2");
    for ip in [VIP4, VIP6] {
        let c = &owner["counters"][ip];
        assert!(c["requestsReceived"].as_u64() >= Some(1), "{owner}");
        assert!(c["responsesSent"].as_u64() >= Some(1), "{owner}");
    }
    // The burst on becoming owner: 5 rounds (0, 1.1, 2.2, 3.3, 4.4 s), two ARP forms per round
    // for IPv4, one unsolicited NA per round for IPv6.
    assert_eq!(owner["counters"][VIP4]["gratuitousSent"], 10, "{owner}");
    assert_eq!(owner["counters"][VIP6]["gratuitousSent"], 5, "{owner}");
    let other = lab.status("node1");
    assert_eq!(other["services"], serde_json::json!({}), "{other}");
    assert_eq!(other["counters"], serde_json::json!({}), "{other}");
    // The owner joined the solicited-node group of fd00:77::200 on eth0; the other did not.
    let groups = |node: &str| {
        let out = lab.exec(node, &["ip", "maddr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(
        groups("node2").contains("ff02::1:ff00:200"),
        "{}",
        groups("node2")
    );
    assert!(
        !groups("node1").contains("ff02::1:ff00:200"),
        "{}",
        groups("node1")
    );
    // nodeAssigned exactly once on the owner, never on the other node.
    assert_eq!(lab.log("node2").matches("event=nodeAssigned").count(), 1);
    assert_eq!(lab.log("node1").matches("event=nodeAssigned").count(), 0);
}

#[test]
#[ignore = "needs METALLB_LAB (root, network namespaces)"]
fn killing_the_owner_moves_the_clients_neighbor_entries() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = lab("l2t2-");
    for ip in [VIP4, VIP6] {
        assert!(lab.ping(ip), "ping {ip}");
        assert_eq!(lab.neigh(ip).as_deref(), Some(mac("node2")));
    }
    let watch = lab.watch(6.5);
    let killed = lab.kill_speaker("node2");
    let v4 = lab.wait_neigh(VIP4, mac("node1"), killed, Duration::from_secs(6));
    let v6 = lab.wait_neigh(VIP6, mac("node1"), killed, Duration::from_secs(6));
    let seen = watch.collect();
    eprintln!("failover: kill → client entry at node1: IPv4 {v4:?}, IPv6 {v6:?}");
    // The new owner's burst as the client saw it: both gratuitous ARP forms and an unsolicited
    // NA (override flag) per round, rounds 1.1 s apart.
    let rounds = |kind: &str, ip: &str| -> Vec<f64> {
        seen.iter()
            .filter(|a| a.kind == kind && a.ip == ip && a.mac == mac("node1"))
            .map(|a| a.at)
            .collect()
    };
    let garp = rounds("arp-gratuitous", VIP4);
    let na = rounds("na-unsolicited", VIP6);
    assert!(
        garp.len() >= 8 && garp.len() % 2 == 0,
        "gratuitous ARP: {seen:?}"
    );
    assert!(na.len() >= 4, "unsolicited NA: {seen:?}");
    for w in na.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            (0.9..1.4).contains(&gap),
            "NA rounds {gap:.3} s apart: {na:?}"
        );
    }
    assert!(
        seen.iter().all(|a| a.mac == mac("node1")),
        "the dead owner answered: {seen:?}"
    );
    assert!(
        v4.is_some() && v6.is_some(),
        "no failover:\n{}",
        lab.log("node1")
    );
    assert!(
        v4.unwrap() < Duration::from_secs(2),
        "IPv4 failover took {v4:?}"
    );
    assert_eq!(lab.connect(VIP4), "node1");
    assert_eq!(lab.connect(VIP6), "node1");

    // The owner comes back: it wins the election again and takes the address back at once.
    let restarted = Instant::now();
    lab.start_speaker("node2");
    assert!(
        lab.wait_neigh(VIP4, mac("node2"), restarted, Duration::from_secs(10))
            .is_some(),
        "node2 did not take the address back:\n{}",
        lab.log("node2")
    );
    assert_eq!(lab.connect(VIP4), "node2");
}

/// The partition fence (`core::l2::FenceRule`): with the owner's links cut, the other node
/// takes over at membership speed and the cut-off owner withdraws by
/// `max(deadline, detection) + tick` = max(1000, 400) + 100 ms; after that at most one node
/// announces. When the links come back, exactly one owner remains (the hash winner) and the
/// client follows it.
#[test]
#[ignore = "needs METALLB_LAB (root, network namespaces)"]
fn partition_leaves_at_most_one_announcer_after_the_bound() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = Lab::up("l2t3-", Path::new(env!("CARGO_BIN_EXE_metallb")));
    lab.speaker_args = lab.start_witness(1000);
    lab.start_speakers(Duration::from_secs(10));
    assert!(lab.ping(VIP4));
    assert_eq!(lab.neigh(VIP4).as_deref(), Some(mac("node2")));

    let bound = Duration::from_millis(1100);
    // Status files are rewritten every 100 ms; allow that plus scheduling noise.
    let slack = Duration::from_millis(500);
    let cut = Instant::now();
    lab.cut("node2");
    let (mut takeover, mut fenced) = (None, None);
    while cut.elapsed() < bound + slack + Duration::from_secs(1) {
        if takeover.is_none() && lab.announcing("node1") {
            takeover = Some(cut.elapsed());
        }
        if fenced.is_none() && !lab.announcing("node2") {
            fenced = Some(cut.elapsed());
        }
        if let (Some(_), Some(f)) = (takeover, fenced)
            && cut.elapsed() > f + Duration::from_millis(300)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "partition: node1 took over after {takeover:?}, cut-off node2 withdrew after {fenced:?} (bound {bound:?})"
    );
    let (takeover, fenced) = (
        takeover.unwrap_or_else(|| panic!("node1 never took over:\n{}", lab.log("node1"))),
        fenced.unwrap_or_else(|| panic!("node2 never fenced:\n{}", lab.log("node2"))),
    );
    assert!(takeover < Duration::from_secs(2), "takeover {takeover:?}");
    assert!(fenced <= bound + slack, "node2 withdrew after {fenced:?}");
    assert!(lab.log("node2").contains("event=fenced"));
    // After the bound: one announcer, and it is what the client resolves to and reaches.
    assert!(lab.announcing("node1") && !lab.announcing("node2"));
    lab.flush(VIP4);
    assert!(lab.ping(VIP4));
    assert_eq!(lab.neigh(VIP4).as_deref(), Some(mac("node1")));
    assert_eq!(lab.connect(VIP4), "node1");

    // Heal: node2 sees the witness again and announces at once (with a fresh gratuitous burst,
    // unlike upstream #584); node1 keeps announcing until the membership merges, then withdraws
    // because node2 wins the election. Measure that double-announcer window.
    let healed = Instant::now();
    lab.heal("node2");
    let (mut both_since, mut settled) = (None, None);
    while healed.elapsed() < Duration::from_secs(6) {
        let (one, two) = (lab.announcing("node1"), lab.announcing("node2"));
        if one && two && both_since.is_none() {
            both_since = Some(healed.elapsed());
        }
        if two && !one {
            settled = Some(healed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let settled = settled.unwrap_or_else(|| {
        panic!(
            "after healing: node1 {} node2 {}\n--- node1\n{}\n--- node2\n{}",
            lab.status("node1"),
            lab.status("node2"),
            lab.log("node1"),
            lab.log("node2")
        )
    });
    eprintln!(
        "partition healed: both announcing from {both_since:?}, node2 sole owner after {settled:?}"
    );
    // Membership merges within a few probe periods of the links coming back.
    assert!(settled < Duration::from_secs(3), "{settled:?}");
    // node2's burst outlasts node1's, so the client ends at node2.
    assert!(
        lab.wait_neigh(VIP4, mac("node2"), healed, Duration::from_secs(7))
            .is_some(),
        "after healing the client should follow node2:\n{}",
        lab.log("node2")
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(lab.announcing("node2") && !lab.announcing("node1"));
}

/// A stopping speaker (SIGTERM, as in a rolling update) leaves the membership, so the other
/// node takes over without waiting for the failure detector.
#[test]
#[ignore = "needs METALLB_LAB (root, network namespaces)"]
fn a_stopping_owner_hands_over_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = lab("l2t4-");
    assert!(lab.ping(VIP4));
    assert_eq!(lab.neigh(VIP4).as_deref(), Some(mac("node2")));
    let stopped = lab.terminate_speaker("node2");
    let took = lab.wait_neigh(VIP4, mac("node1"), stopped, Duration::from_secs(5));
    eprintln!("graceful stop → client entry at node1: {took:?}");
    let took = took.unwrap_or_else(|| panic!("no handover:\n{}", lab.log("node1")));
    assert!(
        took < Duration::from_millis(500),
        "graceful handover took {took:?}"
    );
    assert!(lab.log("node2").contains("leaving the membership"));
}

/// An L2Advertisement restricted to an interface the nodes lack: the elected node warns
/// (`announceFailed`) and nobody answers, rather than answering on the wrong segment.
#[test]
#[ignore = "needs METALLB_LAB (root, network namespaces)"]
fn advertisement_interfaces_restrict_where_addresses_are_answered() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = Lab::up("l2t5-", Path::new(env!("CARGO_BIN_EXE_metallb")));
    lab.manifests =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l2/lab-other-interface");
    lab.start_speaker("node1");
    lab.start_speaker("node2");
    let start = Instant::now();
    while !lab.log("node2").contains("event=announceFailed") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            lab.log("node2")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = lab.watch_answers(2.5, || {
        assert!(!lab.ping(VIP4), "someone answered for {VIP4}");
        assert!(!lab.ping(VIP6), "someone answered for {VIP6}");
    });
    assert_eq!(seen, vec![], "answers seen");
    for node in ["node1", "node2"] {
        assert_eq!(lab.status(node)["services"], serde_json::json!({}));
    }
}
