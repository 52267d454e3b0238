//! Golden tests of the rendered frr.conf: every `tests/golden/frr/<case>.yaml` (manifests:
//! metallb.io resources, Services, Nodes, EndpointSlices) is planned and rendered for one node,
//! and the text must equal `<case>.conf`. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test --test golden_frr`.
//!
//! Each case names what it renders in leading comment lines:
//! - `# node: NAME` (required): the node whose speaker is rendered; also the `hostname`;
//! - `# log-level: LEVEL` (optional, default `info`): MetalLB's log level;
//! - `# router-id: A.B.C.D` (optional): the node's default router ID.
//!
//! FRR itself is the syntax oracle (as upstream's docker_test.go): every golden file must pass
//! `vtysh -C -f FILE` (ignored without `--include-ignored`: it needs FRR installed).
//! `tests/lab/frr-golden-check.sh` goes further on a live FRR (see the ignored test below).
//! `cargo test -- --include-ignored` (hack/test) runs both.

#[path = "support/lab.rs"]
mod lab;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use metallb::{
    config,
    core::frr::{LogLevel, NodeFacts},
    frr::render,
    manifest,
    plan::{self, PlanOptions},
};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/frr")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(golden_dir())
        .expect("tests/golden/frr exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    cases
}

/// `# key: value` from the leading comment block.
fn header(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .next()
}

/// Plans and renders one case.
fn render_case(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let name = path.display().to_string();
    let node = header(&text, "node").unwrap_or_else(|| panic!("{name}: no `# node: NAME` line"));
    let log_level: LogLevel = header(&text, "log-level")
        .map(|l| l.parse().unwrap())
        .unwrap_or_default();
    let router_id = header(&text, "router-id").map(|r| r.parse().unwrap());

    let docs = manifest::parse(&name, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (resources, loaded) = config::load_documents(&docs, &config::LoadOptions::default());
    let passwords = loaded.passwords.clone();
    let config = loaded
        .valid()
        .unwrap_or_else(|e| panic!("{name}: invalid configuration: {e:?}"));
    let options = PlanOptions {
        lb_class: None,
        nodes: vec![node.clone()],
    };
    let plan = plan::plan(&resources, &config, &options);
    let facts = NodeFacts {
        hostname: node.clone(),
        log_level: log_level.into(),
        log_file: None,
        router_id,
        passwords,
    };
    let frr = plan::frr_config(&resources, &config, &plan, &node, &facts);
    render::render(&frr).unwrap()
}

#[test]
fn rendered_frr_conf_matches_golden_files() {
    let cases = cases();
    assert!(
        cases.len() >= 20,
        "expected at least 20 cases, found {}",
        cases.len()
    );
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let rendered = render_case(case);
        let golden = case.with_extension("conf");
        if update {
            fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&golden).unwrap_or_default();
        if rendered != expected {
            failures.push(format!(
                "{}: rendered text differs from {}\n{}",
                case.display(),
                golden.display(),
                diff(&expected, &rendered)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(regenerate with UPDATE_GOLDEN=1 cargo test --test golden_frr)",
        failures.join("\n")
    );
}

/// Every golden file parses in FRR (`vtysh -C -f`: dry run, syntax only, CANONICAL.md §9).
#[test]
#[ignore = "needs FRR (vtysh, hack/setup.sh)"]
fn golden_files_parse_in_frr() {
    assert!(
        Command::new("vtysh").arg("-h").output().is_ok(),
        "this test needs vtysh: run hack/setup.sh"
    );
    let mut failures = Vec::new();
    for case in cases() {
        let golden = case.with_extension("conf");
        let out = Command::new("vtysh")
            .arg("-C")
            .arg("-f")
            .arg(&golden)
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{}: vtysh -C exited {:?}\n{}{}",
                golden.display(),
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The speaker's extras check (`frr::apply::check_text`, `vtysh -C` on the render with the
/// `bgpextras` text appended): a golden render with a good extra passes, with a line FRR does
/// not know it is refused and FRR's words name the line.
#[tokio::test]
#[ignore = "needs FRR (vtysh, hack/setup.sh)"]
async fn frr_checks_the_render_with_its_extras() {
    use metallb::frr::{apply, vtysh::Vtysh};
    assert!(
        Command::new("vtysh").arg("-h").output().is_ok(),
        "this test needs vtysh: run hack/setup.sh"
    );
    let case = cases().into_iter().next().expect("a golden case");
    let rendered = fs::read_to_string(case.with_extension("conf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vtysh = Vtysh::new(None);
    let good = render::with_extras(
        rendered.clone(),
        "ip prefix-list extra-list seq 5 permit 192.0.2.0/24\nroute-map extra permit 10\nexit",
    );
    apply::check_text(&vtysh, dir.path(), &good)
        .await
        .unwrap_or_else(|e| panic!("a good extra refused: {e}\n{good}"));
    let bad = render::with_extras(
        rendered,
        "ip prefix-list extra-list seq 5 permit\nnot frr at all",
    );
    let refused = apply::check_text(&vtysh, dir.path(), &bad)
        .await
        .expect_err("a bad extra passed");
    assert!(
        matches!(&refused, apply::ApplyError::Validate { output } if output.contains("not frr at all")),
        "{refused}"
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the check left its file behind"
    );
}

/// On a live FRR: applies golden files to the lab's node1 with frr-reload.py and checks that
/// `--test` then reports no difference (the rendering is canonical). Needs root and FRR; starts
/// and stops its own lab (prefix `mlbgold-`), holding the machine's lab lock. Run with
/// `cargo test --test golden_frr -- --ignored`.
#[test]
#[ignore = "needs METALLB_LAB (root, FRR)"]
fn golden_files_are_canonical_in_live_frr() {
    lab::require();
    let _lock = lab::lab_lock::acquire();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/frr-golden-check.sh");
    let status = Command::new("bash")
        .arg(script)
        .env("MLB_LAB_PREFIX", "mlbgold-")
        .status()
        .unwrap();
    assert!(status.success(), "frr-golden-check.sh failed");
}

fn metallb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_metallb"))
        .args(args)
        .output()
        .expect("metallb runs")
}

/// `metallb plan -f <case> -o frr --node NODE [extra...]` with `FRR_LOGGING_LEVEL` set to
/// `frr_logging_level` (or unset).
fn plan_frr(
    case: &str,
    node: &str,
    extra: &[&str],
    frr_logging_level: Option<&str>,
) -> std::process::Output {
    let case = golden_dir().join(case);
    let mut command = Command::new(env!("CARGO_BIN_EXE_metallb"));
    command
        .args([
            "plan",
            "-f",
            case.to_str().unwrap(),
            "--node",
            node,
            "-o",
            "frr",
        ])
        .args(extra);
    match frr_logging_level {
        Some(value) => command.env("FRR_LOGGING_LEVEL", value),
        None => command.env_remove("FRR_LOGGING_LEVEL"),
    };
    command.output().expect("metallb runs")
}

/// `metallb plan -o frr --node` prints exactly what the golden file holds.
#[test]
fn plan_prints_the_nodes_frr_conf() {
    let case = golden_dir().join("21-service-selectors.yaml");
    let out = plan_frr("21-service-selectors.yaml", "node1", &[], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let expected = fs::read_to_string(case.with_extension("conf")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    let out = metallb(&["plan", "-f", case.to_str().unwrap(), "-o", "frr"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--node"));
}

/// The seed's §26.7.2 running config (two iBGP peers with the full BFD profile, echo mode on
/// IPv4 sessions that also carry the /124): `metallb plan -o frr` prints each of its lines
/// (the few deliberate differences are listed in the case's header).
#[test]
fn plan_reproduces_the_seed_running_config_lines() {
    let out = plan_frr(
        "23-seed-show-running-config.yaml",
        "some-hostname",
        &["--router-id", "10.0.1.2"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rendered = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = rendered.lines().map(str::trim).collect();
    for seed_line in [
        "router bgp 64500",
        "bgp router-id 10.0.1.2",
        "no bgp ebgp-requires-policy",
        "no bgp default ipv4-unicast",
        "no bgp network import-check",
        "neighbor 10.0.2.3 remote-as 64500",
        "neighbor 10.0.2.3 bfd profile doc-example-bfd-profile-full",
        "neighbor 10.0.2.3 timers 5 15",
        "neighbor 10.0.2.4 remote-as 64500",
        "neighbor 10.0.2.4 bfd profile doc-example-bfd-profile-full",
        "neighbor 10.0.2.4 timers 5 15",
        "address-family ipv4 unicast",
        "network 203.0.113.200/30",
        "address-family ipv6 unicast",
        "network fc00:f853:ccd:e799::/124",
        "neighbor 10.0.2.3 activate",
        "neighbor 10.0.2.3 route-map 10.0.2.3-in in",
        "neighbor 10.0.2.4 activate",
        "neighbor 10.0.2.4 route-map 10.0.2.4-in in",
        "route-map 10.0.2.3-in deny 20",
        "route-map 10.0.2.4-in deny 20",
        "ip nht resolve-via-default",
        "ipv6 nht resolve-via-default",
        "profile doc-example-bfd-profile-full",
        "transmit-interval 35",
        "receive-interval 35",
        "passive-mode",
        "echo-mode",
        "minimum-ttl 10",
    ] {
        assert!(
            lines.contains(&seed_line),
            "{seed_line:?} missing:\n{rendered}"
        );
    }
    // In the seed's order within the BFD profile.
    let position = |line: &str| lines.iter().position(|l| *l == line).unwrap();
    assert!(position("passive-mode") < position("echo-mode"));
    assert!(position("echo-mode") < position("minimum-ttl 10"));
}

/// FRR logging as upstream's template: `FRR_LOGGING_LEVEL` overrides MetalLB's level with any
/// FRR level, and the debug switches come with `debugging` however it is reached.
#[test]
fn frr_logging_level_overrides_the_log_level() {
    let plan = |env: Option<&str>, level: &str| {
        let out = plan_frr(
            "21-service-selectors.yaml",
            "node1",
            &["--frr-log-level", level],
            env,
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let alerts = plan(Some("alerts"), "debug");
    assert!(alerts.contains("\nlog stdout alerts\n"), "{alerts}");
    assert!(!alerts.contains("debug bgp"), "{alerts}");
    let debugging = plan(Some("debugging"), "info");
    assert!(debugging.contains("\nlog stdout\n"), "{debugging}");
    assert!(
        debugging.contains("\ndebug bgp neighbor-events\n"),
        "{debugging}"
    );
    assert!(debugging.contains("\ndebug bfd peer\n"), "{debugging}");
    let none = plan(None, "none");
    assert!(none.contains("\nlog stdout emergencies\n"), "{none}");
}

/// `-o json` lists every node of the manifests plus `--node`, with per-peer prefixes, next
/// to the unchanged `services` and `pools`.
#[test]
fn plan_json_lists_node_announcements() {
    let case = golden_dir().join("22-advertisement-peers.yaml");
    let out = metallb(&[
        "plan",
        "-f",
        case.to_str().unwrap(),
        "--node",
        "node9",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["services"].is_array() && plan["pools"].is_array());
    let nodes = plan["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["name"], "node9");
    let peers: Vec<&str> = nodes[0]["bgp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["peer"].as_str().unwrap())
        .collect();
    assert_eq!(peers, ["lonely", "upstream-a", "upstream-b"]);
    assert_eq!(nodes[0]["bgp"][0]["prefixes"], serde_json::json!([]));
    assert_eq!(
        nodes[0]["bgp"][1]["prefixes"][1],
        serde_json::json!({"prefix": "203.0.113.10/32", "localPref": null, "communities": ["64500:10"]})
    );

    // Nodes of the manifests are listed without asking, in name order.
    let case = golden_dir().join("14-peer-node-selector.yaml");
    let out = metallb(&["plan", "-f", case.to_str().unwrap(), "-o", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node1", "node2"]);
    assert_eq!(plan["nodes"][1]["bgp"].as_array().unwrap().len(), 2);
}

/// A small line diff: lines only in one side, with their line numbers.
fn diff(expected: &str, rendered: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let r: Vec<&str> = rendered.lines().collect();
    let mut out = String::new();
    for i in 0..e.len().max(r.len()) {
        let (a, b) = (e.get(i), r.get(i));
        if a != b {
            out.push_str(&format!(
                "  line {}: expected {:?}\n  line {}: rendered {:?}\n",
                i + 1,
                a.unwrap_or(&"<none>"),
                i + 1,
                b.unwrap_or(&"<none>")
            ));
            break;
        }
    }
    out
}
