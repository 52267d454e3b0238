//! The netns BGP lab (`tests/lab/lab.sh`) from Rust: gating, bring-up with a Drop guard that
//! always tears down, node configs, and polling helpers on the router.
//!
//! Shared by `tests/lab_frr.rs` and `benches/frr_apply.rs` through `#[path]`.

#![allow(dead_code)]

#[path = "lab_lock.rs"]
pub mod lab_lock;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use metallb::frr::{
    vty::{self, VtySession},
    vtysh::{BgpNeighbor, BgpPath, Vtysh},
};

/// The lab script.
pub fn lab_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

/// Fails, naming what is missing, unless this machine can run the lab: root and FRR
/// (`hack/setup.sh`). Lab tests are `#[ignore = "needs METALLB_LAB (root, FRR)"]` and run with
/// `cargo test -- --include-ignored` (hack/test); run so, they fail rather than skip.
pub fn require() {
    let uid = Command::new("id").arg("-u").output().expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this lab test needs root (network namespaces); it is #[ignore]d unless run with --include-ignored"
    );
    for f in [
        "/usr/bin/vtysh",
        "/usr/lib/frr/frr-reload.py",
        "/usr/lib/frr/frrinit.sh",
    ] {
        assert!(
            Path::new(f).exists(),
            "this lab test needs FRR but {f} is missing: run hack/setup.sh"
        );
    }
}

/// `uname -n`: the hostname FRR 8.4.4 prints whatever the config says (CANONICAL.md fact 5).
pub fn nodename() -> String {
    let out = Command::new("uname")
        .arg("-n")
        .output()
        .expect("uname runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The root netns end of the host port (`MLB_LAB_HOST=1`, [`Lab::up_with_host`]) on br0.
pub const HOST_IPV4: &str = "10.77.0.254";

/// A running lab; dropping it tears everything down (also when the test panics).
pub struct Lab {
    /// Namespace/pathspace prefix, e.g. `mlt-a-`.
    pub prefix: String,
    /// Whether the root netns is on br0 as [`HOST_IPV4`].
    host: bool,
    /// Whether the router also peers with [`HOST_IPV4`] (`MLB_LAB_HOST_PEER=1`).
    host_peer: bool,
    /// Whether the client namespace (10.77.0.100 on br0) exists (`MLB_LAB_CLIENT=1`).
    client: bool,
    /// With `host`: this process's only lab on the host port, released after the teardown.
    _host_port: Option<std::sync::MutexGuard<'static, ()>>,
    /// The machine's lab lock, released after the teardown in `drop`.
    _lock: lab_lock::LabLock,
}

/// The host port's addresses are fixed ([`HOST_IPV4`] in the root netns), so two labs with a
/// host port cannot be up at once. The machine's lab lock is shared by the tests of one
/// process (they run in parallel on different prefixes); this one is not.
static HOST_PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Lab {
    /// Brings up router, node1 and node2 (no client) under `prefix`. Leftovers of an earlier
    /// run with the same prefix are removed first.
    pub fn up(prefix: &str) -> Lab {
        Lab::start(prefix, false, false, false)
    }

    /// [`Lab::up`] plus a veth from the root netns into br0 (`<prefix>host`, [`HOST_IPV4`]/24),
    /// so processes inside the node namespaces reach a server on the host, such as the
    /// kube-apiserver. One such lab at a time on a machine (lab.sh refuses a second).
    pub fn up_with_host(prefix: &str) -> Lab {
        Lab::start(prefix, true, false, false)
    }

    /// [`Lab::up_with_host`] where the host is a BGP node as well: the router peers with
    /// [`HOST_IPV4`] (AS 64500), as with node1 and node2. For a speaker on the host network
    /// (the real node's speaker pod, `tests/k8s_node.rs`).
    pub fn up_with_host_peer(prefix: &str) -> Lab {
        Lab::start(prefix, true, true, false)
    }

    /// [`Lab::up_with_host_peer`] plus the client namespace (`<prefix>client`, 10.77.0.100 on
    /// br0), which resolves and reaches layer 2 addresses announced on the host port.
    pub fn up_with_host_peer_and_client(prefix: &str) -> Lab {
        Lab::start(prefix, true, true, true)
    }

    /// The root netns end of the host port (`<prefix>host`), with [`Lab::up_with_host`].
    pub fn host_link(&self) -> String {
        format!("{}host", self.prefix)
    }

    fn start(prefix: &str, host: bool, host_peer: bool, client: bool) -> Lab {
        require();
        let lab = Lab {
            prefix: prefix.to_string(),
            host,
            host_peer,
            client,
            _host_port: host.then(|| HOST_PORT.lock().unwrap_or_else(|e| e.into_inner())),
            _lock: lab_lock::acquire(),
        };
        let _ = lab.script("down");
        let status = lab.script("up");
        assert!(status, "lab.sh up failed for prefix {prefix}");
        lab
    }

    fn script(&self, action: &str) -> bool {
        Command::new("bash")
            .arg(lab_sh())
            .arg(action)
            .env("MLB_LAB_PREFIX", &self.prefix)
            .env("MLB_LAB_CLIENT", if self.client { "1" } else { "0" })
            .env("MLB_LAB_QUIET", "1")
            .env("MLB_LAB_HOST", if self.host { "1" } else { "0" })
            .env("MLB_LAB_HOST_PEER", if self.host_peer { "1" } else { "0" })
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// The namespace (and FRR pathspace) of a role.
    pub fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// A vtysh client for a role.
    pub fn vtysh(&self, role: &str) -> Vtysh {
        Vtysh::new(Some(self.ns(role))).with_timeout(Duration::from_secs(30))
    }

    /// A session on a role's bgpd vty socket: a query costs ~0.3 ms, so polling with it has
    /// millisecond resolution (a vtysh process costs 25-40 ms).
    pub async fn bgpd_vty(&self, role: &str) -> VtySession {
        let path = vty::socket_path(
            Path::new(vty::DEFAULT_RUN_DIR),
            Some(&self.ns(role)),
            "bgpd",
        );
        VtySession::connect(&path, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{role} bgpd vty: {e}"))
    }

    /// A scratch directory for the applier of a role (under /run, removed on drop).
    pub fn state_dir(&self, role: &str) -> PathBuf {
        PathBuf::from(format!("/run/metallb-lab/{}", self.ns(role)))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let ok = self.script("down");
        let _ = std::fs::remove_dir_all(format!("/run/metallb-lab/{}node1", self.prefix));
        let _ = std::fs::remove_dir_all(format!("/run/metallb-lab/{}node2", self.prefix));
        let _ = std::fs::remove_dir_all(format!("/run/metallb-lab/{}bin", self.prefix));
        if !ok && !std::thread::panicking() {
            panic!("lab.sh down failed for prefix {}", self.prefix);
        }
    }
}

/// node1's canonical base config (frr/canonical/13-session-base.conf, hostname fixed up): v4
/// and v6 sessions with BFD to the router, announcing 198.51.100.10/32 and 2001:db8::10/128.
pub fn base_conf() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("frr/canonical/13-session-base.conf");
    let text = std::fs::read_to_string(&path).expect("base config");
    text.replace("hostname vm\n", &format!("hostname {}\n", nodename()))
}

/// The base config plus IPv4 services: for each prefix a `network` line and (when `per_ip`)
/// a permit entry in node1's allowed prefix-list, the shape a renderer produces per service.
/// Without `per_ip` the allowed list gets one `198.18.0.0/15 le 32` entry instead (per-IP
/// entries are quadratic on FRR 8.4, frr-reference §0.2).
pub fn conf_with_services(prefixes: &[String], per_ip: bool) -> String {
    let base = base_conf();
    let mut sorted: Vec<std::net::Ipv4Addr> = prefixes
        .iter()
        .map(|p| p.trim_end_matches("/32").parse().expect("ipv4/32"))
        .collect();
    sorted.sort();
    let mut nets = String::new();
    for ip in &sorted {
        nets.push_str(&format!("  network {ip}/32\n"));
    }
    let mut text = base.replace(
        "  network 198.51.100.10/32\n",
        &format!("  network 198.51.100.10/32\n{nets}"),
    );
    let mut entries = String::new();
    if per_ip {
        for (i, ip) in sorted.iter().enumerate() {
            entries.push_str(&format!(
                "ip prefix-list 10.77.0.1-allowed-ipv4 seq {} permit {ip}/32\n",
                i + 2
            ));
        }
    } else if !sorted.is_empty() {
        entries
            .push_str("ip prefix-list 10.77.0.1-allowed-ipv4 seq 2 permit 198.18.0.0/15 le 32\n");
    }
    text = text.replace(
        "ip prefix-list 10.77.0.1-allowed-ipv4 seq 1 permit 198.51.100.10/32\n",
        &format!("ip prefix-list 10.77.0.1-allowed-ipv4 seq 1 permit 198.51.100.10/32\n{entries}"),
    );
    text
}

/// The address family of a prefix.
fn afi(prefix: &str) -> metallb::frr::vtysh::Afi {
    if prefix.contains(':') {
        metallb::frr::vtysh::Afi::Ipv6
    } else {
        metallb::frr::vtysh::Afi::Ipv4
    }
}

/// Polls `vtysh` every `every` until `prefix` has a best path via `nexthop` (if given).
pub async fn wait_route(
    v: &Vtysh,
    prefix: &str,
    nexthop: Option<&str>,
    timeout: Duration,
    every: Duration,
) -> Result<BgpPath, String> {
    let start = Instant::now();
    let mut last;
    loop {
        match v.bgp_routes("default", afi(prefix)).await {
            Ok(t) => {
                if let Some(p) = t.best(prefix)
                    && nexthop.is_none_or(|nh| p.nexthop_ips().any(|ip| ip == nh))
                {
                    return Ok(p.clone());
                }
                last = format!("{} routes", t.routes.len());
            }
            Err(e) => last = e.to_string(),
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "no best path for {prefix} after {timeout:?} ({last})"
            ));
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits until the valid paths of `prefix` on `v` come exactly from `nexthops` (their first
/// next hop each); panics with what it saw after `timeout`.
pub async fn wait_paths(v: &Vtysh, prefix: &str, nexthops: &[&str], timeout: Duration) {
    let want: std::collections::BTreeSet<&str> = nexthops.iter().copied().collect();
    let start = Instant::now();
    let mut got = std::collections::BTreeSet::new();
    while start.elapsed() < timeout {
        if let Ok(t) = v.bgp_routes("default", afi(prefix)).await {
            got = t
                .routes
                .get(prefix)
                .into_iter()
                .flatten()
                .filter(|p| p.valid)
                .filter_map(|p| p.nexthops.first().map(|n| n.ip.clone()))
                .collect();
            if got
                .iter()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>()
                == want
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{prefix}: paths via {got:?}, want {want:?}");
}

/// Polls until `prefix` is gone from the table.
pub async fn wait_no_route(v: &Vtysh, prefix: &str, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Ok(t) = v.bgp_routes("default", afi(prefix)).await
            && !t.routes.contains_key(prefix)
        {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!("{prefix} still present after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the session to `peer` is Established.
pub async fn wait_established(
    v: &Vtysh,
    peer: &str,
    timeout: Duration,
) -> Result<BgpNeighbor, String> {
    let start = Instant::now();
    loop {
        if let Ok(n) = v.bgp_neighbors("default").await
            && let Some(p) = n.get(peer)
            && p.is_established()
        {
            return Ok(p.clone());
        }
        if start.elapsed() > timeout {
            return Err(format!("{peer} not Established after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The neighbor entry of `peer`.
pub async fn neighbor(v: &Vtysh, peer: &str) -> BgpNeighbor {
    v.bgp_neighbors("default")
        .await
        .expect("neighbors json")
        .remove(peer)
        .unwrap_or_else(|| panic!("no neighbor {peer}"))
}

/// Runs `line` inside the router's `router bgp 64501` (changes to the lab's baseline router);
/// returns vtysh's output for callers that check it.
pub async fn router_bgp_line(lab: &Lab, line: &str) -> metallb::frr::vtysh::Output {
    lab.vtysh("router")
        .raw(&[
            "-c",
            "configure terminal",
            "-c",
            "router bgp 64501",
            "-c",
            line,
        ])
        .await
        .unwrap()
}
