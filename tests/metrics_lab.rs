//! Metrics end to end: a real Prometheus (Debian's `prometheus`, started here on loopback with
//! a generated config and a temporary storage dir) scrapes `metallb controller` (root netns,
//! 127.0.0.1) and `metallb speaker --from-api` inside node1's network namespace (its plain
//! listener on node1's lab address 10.77.0.11, reached over the lab's host port). PromQL sees
//! the BGP session go down and up with the router's neighbor, the announced prefixes follow
//! the Services, BFD counters move, the allocator gauges match the Services with addresses;
//! every documented name is present with its labels; the HTTPS listener refuses callers the
//! apiserver does not vouch for; `/readyz` follows FRR. Needs a kube-apiserver
//! (hack/k8s-bin.sh) and the lab (root, FRR and prometheus from hack/setup.sh): ignored unless
//! run with `--include-ignored`.

mod support;

#[path = "support/lab.rs"]
mod lab;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Service;
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use lab::Lab;
use serde_json::json;
use support::{Cluster, ClusterOptions, Guard, controller as ctl, eventually};

const LONG: Duration = Duration::from_secs(60);
/// Prometheus' scrape interval in this test.
const SCRAPE: Duration = Duration::from_secs(1);
const SPEAKER_METRICS: &str = "10.77.0.11:7472";
const SPEAKER_SECURE: &str = "10.77.0.11:9120";

const LAB_OBJECTS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: node1}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec:
  addresses: [198.51.100.0/24]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: lab, namespace: metallb-system}
spec:
  ipAddressPools: [lab]
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec:
  receiveInterval: 300
  transmitInterval: 300
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.77.0.1
  bfdProfile: fast
"#;

/// Every documented metric of each process, with the labels its series carry.
const CONTROLLER_NAMES: &[(&str, &[&str])] = &[
    ("metallb_allocator_addresses_in_use_total", &["pool"]),
    ("metallb_allocator_addresses_total", &["pool"]),
    ("metallb_allocator_ipv4_addresses_in_use_total", &["pool"]),
    ("metallb_allocator_ipv4_addresses_total", &["pool"]),
    ("metallb_allocator_ipv6_addresses_in_use_total", &["pool"]),
    ("metallb_allocator_ipv6_addresses_total", &["pool"]),
    ("metallb_allocator_services_allocated_total", &["pool"]),
    ("metallb_allocator_allocation_duration_seconds_count", &[]),
    ("metallb_k8s_client_updates_total", &[]),
    ("metallb_k8s_client_update_errors_total", &[]),
    ("metallb_k8s_client_config_loaded_bool", &[]),
    ("metallb_k8s_client_config_stale_bool", &[]),
    ("metallb_k8s_client_config_last_good_timestamp_seconds", &[]),
    ("metallb_controller_leader_bool", &[]),
];

const SPEAKER_NAMES: &[(&str, &[&str])] = &[
    ("metallb_bgp_session_up", &["peer", "vrf"]),
    ("metallb_bgp_announced_prefixes_total", &["peer", "vrf"]),
    ("metallb_bgp_updates_total", &["peer", "vrf"]),
    ("metallb_bgp_updates_total_received", &["peer", "vrf"]),
    ("metallb_bgp_opens_sent", &["peer", "vrf"]),
    ("metallb_bgp_opens_received", &["peer", "vrf"]),
    ("metallb_bgp_notifications_sent", &["peer", "vrf"]),
    ("metallb_bgp_notifications_received", &["peer", "vrf"]),
    ("metallb_bgp_keepalives_sent", &["peer", "vrf"]),
    ("metallb_bgp_keepalives_received", &["peer", "vrf"]),
    ("metallb_bgp_route_refresh_sent", &["peer", "vrf"]),
    ("metallb_bgp_route_refresh_received", &["peer", "vrf"]),
    ("metallb_bgp_total_sent", &["peer", "vrf"]),
    ("metallb_bgp_total_received", &["peer", "vrf"]),
    ("metallb_bfd_session_up", &["peer", "vrf"]),
    ("metallb_bfd_control_packet_input", &["peer", "vrf"]),
    ("metallb_bfd_control_packet_output", &["peer", "vrf"]),
    ("metallb_bfd_echo_packet_input", &["peer", "vrf"]),
    ("metallb_bfd_echo_packet_output", &["peer", "vrf"]),
    ("metallb_bfd_session_up_events", &["peer", "vrf"]),
    ("metallb_bfd_session_down_events", &["peer", "vrf"]),
    ("metallb_bfd_zebra_notifications", &["peer", "vrf"]),
    ("metallb_frr_status_up", &[]),
    ("metallb_frr_status_age_seconds", &[]),
    ("metallb_frr_apply_duration_seconds_count", &["path"]),
    ("metallb_frr_last_good_apply_timestamp_seconds", &[]),
    ("metallb_k8s_client_updates_total", &[]),
    ("metallb_k8s_client_update_errors_total", &[]),
    ("metallb_k8s_client_config_loaded_bool", &[]),
    ("metallb_k8s_client_config_stale_bool", &[]),
];

/// A plain HTTP/1.0 GET: (status, body).
fn http_get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end in {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// HTTPS GET with curl (`-k`: the listener's certificate is self-signed): the status code.
fn https_status(addr: &str, path: &str, token: Option<&str>) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-ks",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = cmd.arg(format!("https://{addr}{path}")).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Metric name -> the label names its series carry, from the Prometheus text format.
fn names_and_labels(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        let labels = out.entry(name.to_string()).or_default();
        if let Some(inner) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
            for pair in inner.0.split(',').filter(|p| !p.is_empty()) {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.to_string());
                }
            }
        }
    }
    out
}

fn assert_documented(process: &str, text: &str, names: &[(&str, &[&str])]) {
    let found = names_and_labels(text);
    for (name, labels) in names {
        let Some(have) = found.get(*name) else {
            panic!("{process}: {name} missing from\n{text}");
        };
        let want: BTreeSet<String> = labels.iter().map(|l| l.to_string()).collect();
        // Histogram buckets add `le`; everything else carries exactly the documented labels.
        let have: BTreeSet<String> = have.iter().filter(|l| *l != "le").cloned().collect();
        assert_eq!(have, want, "{process}: labels of {name}");
    }
}

/// A Prometheus on 127.0.0.1 scraping `targets` (job -> address) every [`SCRAPE`].
struct Prometheus {
    _child: Guard,
    addr: String,
}

impl Prometheus {
    fn start(dir: &Path, targets: &[(&str, &str)]) -> Prometheus {
        let bin = which("prometheus").expect(
            "prometheus is not installed (hack/setup.sh installs Debian's `prometheus` package)",
        );
        let [port] = support::free_ports::<1>();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "global:\n  scrape_interval: {s}s\n  scrape_timeout: {s}s\n  evaluation_interval: {s}s\nscrape_configs:\n",
            s = SCRAPE.as_secs()
        );
        for (job, target) in targets {
            config.push_str(&format!(
                "- job_name: {job}\n  static_configs:\n  - targets: ['{target}']\n"
            ));
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let storage = dir.join("prometheus-data");
        std::fs::create_dir_all(&storage).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap();
        let prom = Prometheus {
            _child: Guard(child),
            addr,
        };
        let deadline = Instant::now() + LONG;
        while http_get(&prom.addr, "/-/ready").map(|(s, _)| s) != Ok(200) {
            assert!(Instant::now() < deadline, "prometheus did not get ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        prom
    }

    /// The value of an instant PromQL query that returns one series, if it does.
    fn query(&self, promql: &str) -> Option<f64> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) =
            http_get(&self.addr, &format!("/api/v1/query?query={encoded}")).ok()?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `promql` returns `want`; returns how long that took.
    async fn wait_value(&self, promql: &str, want: f64) -> Duration {
        let started = Instant::now();
        eventually(&format!("{promql} == {want}"), LONG, || {
            let got = self.query(promql);
            async move { (got == Some(want)).then_some(()) }
        })
        .await;
        started.elapsed()
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

fn vtysh(lab: &Lab, role: &str, lines: &[&str]) {
    let mut cmd = Command::new("vtysh");
    cmd.args(["-N", &lab.ns(role), "-c", "configure terminal"]);
    for l in lines {
        cmd.args(["-c", l]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "vtysh {lines:?}: {out:?}");
}

fn frrinit(lab: &Lab, role: &str, action: &str) {
    let out = Command::new("/usr/lib/frr/frrinit.sh")
        .args([action, &lab.ns(role)])
        .output()
        .unwrap();
    assert!(out.status.success(), "frrinit.sh {action}: {out:?}");
}

fn token_of(cluster: &Cluster, user: &str) -> String {
    std::fs::read_to_string(cluster.dir.join("tokens.csv"))
        .unwrap()
        .lines()
        .find(|l| l.split(',').nth(1) == Some(user))
        .and_then(|l| l.split(',').next())
        .unwrap_or_else(|| panic!("no token for {user}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs METALLB_K8S and METALLB_LAB (kube-apiserver, root, FRR, prometheus)"]
async fn prometheus_scrapes_speaker_and_controller_in_the_lab() {
    let lab = Lab::up_with_host("mlm-");
    let cluster = Cluster::start_with(ClusterOptions::listening_on(lab::HOST_IPV4)).await;
    let client = cluster.client.clone();
    support::create_yaml(&client, LAB_OBJECTS, None)
        .await
        .unwrap();
    for rbac in ["deploy/rbac/speaker.yaml", "deploy/rbac/controller.yaml"] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rbac)).unwrap();
        support::create_yaml(&client, &text, None).await.unwrap();
    }
    let bin = support::metallb_bin(&cluster.dir);
    let [controller_port, controller_secure] = support::free_ports::<2>();
    let controller_metrics = format!("127.0.0.1:{controller_port}");
    let controller_secure = format!("127.0.0.1:{controller_secure}");
    let _logs = [
        support::LogOnPanic(cluster.dir.join("controller.log")),
        support::LogOnPanic(cluster.dir.join("speaker-node1.log")),
    ];
    let _controller = Guard(
        Command::new(&bin)
            .args([
                "--log-level",
                "info",
                "controller",
                "--leader-elect",
                "false",
            ])
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_as_via("controller", lab::HOST_IPV4))
            .args(["--metrics-plain-addr", &controller_metrics])
            .args(["--metrics-secure-addr", &controller_secure])
            .args(["--health-addr", "off"])
            .stdout(std::fs::File::create(cluster.dir.join("controller.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let _speaker = Guard(
        Command::new("ip")
            .args(["netns", "exec", &lab.ns("node1")])
            .arg(&bin)
            .args(["--log-level", "info", "speaker", "--from-api"])
            .args(["--node-name", "node1"])
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_as_via("speaker", lab::HOST_IPV4))
            .args(["--frr-pathspace", &lab.ns("node1")])
            .args(["--debounce-ms", "20"])
            .arg("--state-dir")
            .arg(lab.state_dir("node1"))
            .args(["--metrics-plain-addr", SPEAKER_METRICS])
            .args(["--metrics-secure-addr", SPEAKER_SECURE])
            .args(["--health-addr", "off"])
            .args(["--frr-metrics-interval-ms", "500"])
            .stdout(std::fs::File::create(cluster.dir.join("speaker-node1.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let prom = Prometheus::start(
        &cluster.dir,
        &[
            ("controller", &controller_metrics),
            ("speaker", SPEAKER_METRICS),
        ],
    );
    let peer = r#"peer="10.77.0.1",vrf="default""#;

    // The session comes up; no Service yet.
    prom.wait_value(&format!("metallb_bgp_session_up{{{peer}}}"), 1.0)
        .await;
    prom.wait_value(
        &format!("metallb_bgp_announced_prefixes_total{{{peer}}}"),
        0.0,
    )
    .await;

    // Prefixes and pool usage follow the Services.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    for svc in ["a", "b", "c"] {
        services
            .create(
                &PostParams::default(),
                &ctl::lb_service(svc, json!({}), json!({})),
            )
            .await
            .unwrap();
    }
    prom.wait_value(
        &format!("metallb_bgp_announced_prefixes_total{{{peer}}}"),
        3.0,
    )
    .await;
    prom.wait_value(
        r#"metallb_allocator_addresses_in_use_total{pool="lab"}"#,
        3.0,
    )
    .await;
    prom.wait_value(r#"metallb_allocator_addresses_total{pool="lab"}"#, 256.0)
        .await;
    services
        .delete("b", &DeleteParams::default())
        .await
        .unwrap();
    prom.wait_value(
        &format!("metallb_bgp_announced_prefixes_total{{{peer}}}"),
        2.0,
    )
    .await;
    prom.wait_value(
        r#"metallb_allocator_addresses_in_use_total{pool="lab"}"#,
        2.0,
    )
    .await;
    let with_address = services
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|s| !ctl::service_ips(s).is_empty())
        .count();
    assert_eq!(with_address, 2, "Services holding addresses");

    // Every documented name, with its labels, from both processes.
    let (status, text) = http_get(SPEAKER_METRICS, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert_documented("speaker", &text, SPEAKER_NAMES);
    let (status, text) = http_get(&controller_metrics, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert_documented("controller", &text, CONTROLLER_NAMES);

    // BFD: the router drops BFD for node1, then takes it back.
    prom.wait_value(&format!("metallb_bfd_session_up{{{peer}}}"), 1.0)
        .await;
    let downs_before = prom
        .query(&format!("metallb_bfd_session_down_events{{{peer}}}"))
        .unwrap_or(0.0);
    let ups_before = prom
        .query(&format!("metallb_bfd_session_up_events{{{peer}}}"))
        .unwrap();
    vtysh(
        &lab,
        "router",
        &["router bgp 64501", "no neighbor 10.77.0.11 bfd"],
    );
    let took = prom
        .wait_value(&format!("metallb_bfd_session_up{{{peer}}}"), 0.0)
        .await;
    eprintln!(
        "metallb_bfd_session_up 0 {:.1}s after the router dropped BFD",
        took.as_secs_f64()
    );
    prom.wait_value(
        &format!("metallb_bfd_session_down_events{{{peer}}}"),
        downs_before + 1.0,
    )
    .await;
    vtysh(
        &lab,
        "router",
        &["router bgp 64501", "neighbor 10.77.0.11 bfd"],
    );
    prom.wait_value(&format!("metallb_bfd_session_up{{{peer}}}"), 1.0)
        .await;
    let ups_after = prom
        .query(&format!("metallb_bfd_session_up_events{{{peer}}}"))
        .unwrap();
    assert!(
        ups_after > ups_before,
        "session_up_events {ups_before} -> {ups_after}"
    );
    prom.wait_value(&format!("metallb_bgp_session_up{{{peer}}}"), 1.0)
        .await;

    // The router shuts the neighbor down: session_up is 0 within a few scrapes, then back.
    vtysh(
        &lab,
        "router",
        &["router bgp 64501", "neighbor 10.77.0.11 shutdown"],
    );
    let took = prom
        .wait_value(&format!("metallb_bgp_session_up{{{peer}}}"), 0.0)
        .await;
    eprintln!(
        "metallb_bgp_session_up 0 {:.1}s after the router's neighbor shutdown (scrape interval {}s, FRR poll 0.5s)",
        took.as_secs_f64(),
        SCRAPE.as_secs()
    );
    vtysh(
        &lab,
        "router",
        &["router bgp 64501", "no neighbor 10.77.0.11 shutdown"],
    );
    prom.wait_value(&format!("metallb_bgp_session_up{{{peer}}}"), 1.0)
        .await;

    // The secure listeners: no token 401, a token without the permission 403, admin 200.
    let admin = token_of(&cluster, "admin");
    let speaker_sa = token_of(&cluster, "system:serviceaccount:metallb-system:speaker");
    for addr in [controller_secure.as_str(), SPEAKER_SECURE] {
        assert_eq!(
            https_status(addr, "/metrics", None),
            401,
            "{addr} without a token"
        );
        assert_eq!(
            https_status(addr, "/metrics", Some("not-a-token")),
            401,
            "{addr} with an unknown token"
        );
        assert_eq!(
            https_status(addr, "/metrics", Some(&speaker_sa)),
            403,
            "{addr} as a ServiceAccount without get /metrics"
        );
        assert_eq!(
            https_status(addr, "/metrics", Some(&admin)),
            200,
            "{addr} as admin"
        );
    }

    // /readyz follows FRR: stopped -> 503, started again -> 200.
    assert_eq!(http_get(SPEAKER_METRICS, "/readyz").unwrap().0, 200);
    assert_eq!(http_get(&controller_metrics, "/readyz").unwrap().0, 200);
    frrinit(&lab, "node1", "stop");
    eventually("speaker /readyz 503 with FRR stopped", LONG, || async {
        let (status, body) = http_get(SPEAKER_METRICS, "/readyz").ok()?;
        (status == 503 && body.contains("[-]frr")).then_some(())
    })
    .await;
    frrinit(&lab, "node1", "start");
    eventually("speaker /readyz 200 with FRR back", LONG, || async {
        (http_get(SPEAKER_METRICS, "/readyz").ok()?.0 == 200).then_some(())
    })
    .await;
    prom.wait_value(&format!("metallb_bgp_session_up{{{peer}}}"), 1.0)
        .await;
}
