//! The `metallb` binary as a user runs it: `validate`, `plan` and `crd` on real files.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::{
    fs,
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};

use serde_json::Value;

fn metallb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metallb"))
        .args(args)
        .output()
        .expect("metallb runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_seed_example_validates_on_its_own() {
    let files = fixtures::yaml_files("seed");
    assert!(
        files.len() >= 20,
        "expected every seed example, found {}",
        files.len()
    );
    for file in files {
        let out = metallb(&["validate", "-f", file.to_str().unwrap()]);
        // The BFD peer names the profile of another example: on its own that is an error the
        // admission webhook would still admit, since the profile may be created next.
        if file.ends_with("26.4.3.2-bgppeer-bfd.yaml") {
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "BGPPeer/doc-example-peer-bfd: spec.bfdProfile: BFD profile \"doc-example-bfd-profile-full\" \
                 does not exist: there is no BFDProfile (admission admits this: the missing object \
                 may still be created)\n"
            );
            let with_profile = metallb(&[
                "validate",
                "-f",
                file.to_str().unwrap(),
                "-f",
                file.with_file_name("26.5.2-bfdprofile.yaml")
                    .to_str()
                    .unwrap(),
            ]);
            assert_eq!(
                with_profile.status.code(),
                Some(0),
                "{}",
                text(&with_profile)
            );
            continue;
        }
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}:\n{}",
            file.display(),
            text(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("valid:"),
            "{}",
            text(&out)
        );
    }
}

const PEER_WITH_SECRET: &str = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: guarded}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, passwordSecret: {name: auth}}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n";

#[test]
fn a_peer_without_its_secret_is_an_error_that_admission_admits_and_plan_does_not_render() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    fs::write(&file, PEER_WITH_SECRET).unwrap();
    let path = file.to_str().unwrap();

    let out = metallb(&["validate", "-f", path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "BGPPeer/guarded: spec.passwordSecret: Secret auth not found (admission admits this: the \
         missing object may still be created)\n"
    );
    assert!(text(&out).contains("1 of them admitted by the webhook"));

    // No frr.conf with the session but without its password.
    let out = metallb(&["plan", "-f", path, "-o", "frr", "--node", "n1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("router bgp"), "{}", text(&out));
    assert!(
        text(&out).contains("Secret auth not found"),
        "{}",
        text(&out)
    );

    // With the Secret, the password is on the neighbor line.
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: auth}\ntype: kubernetes.io/basic-auth\nstringData: {password: s3cret}\n";
    fs::write(&file, format!("{PEER_WITH_SECRET}{secret}")).unwrap();
    let out = metallb(&["plan", "-f", path, "-o", "frr", "--node", "n1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("neighbor 10.0.0.1 password s3cret"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_directory_is_read_recursively_and_objects_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
    fs::copy(
        seed.join("26.4.2-bgppeer.yaml"),
        dir.path().join("peer.yaml"),
    )
    .unwrap();
    fs::copy(
        seed.join("26.3.2-addresspool-doc-example.yaml"),
        dir.path().join("sub/pool.yml"),
    )
    .unwrap();
    fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
    let out = metallb(&["validate", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 metallb.io object(s) (1 AddressPool, 1 BGPPeer) in 2 file(s)"),
        "{stdout}"
    );
}

#[test]
fn stdin_is_read_with_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metallb"))
        .args(["validate", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: b}\nspec: {detectMultiplier: 1}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("BFDProfile/b: spec.detectMultiplier"),
        "{}",
        text(&out)
    );
}

#[test]
fn every_invalid_fixture_is_rejected_naming_its_field() {
    let files = fixtures::yaml_files("invalid");
    assert!(
        files.len() >= 30,
        "expected at least 30 invalid fixtures, found {}",
        files.len()
    );
    for file in files {
        let body = fs::read_to_string(&file).unwrap();
        let expect = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: ...`", file.display()))
            .trim();
        let out = metallb(&["validate", "-f", file.to_str().unwrap()]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{}:\n{all}", file.display());
        assert!(
            all.contains(expect),
            "{}: output lacks {expect:?}:\n{all}",
            file.display()
        );
        assert!(
            !all.contains("panicked"),
            "{}: panicked:\n{all}",
            file.display()
        );
        // One line per problem, each `Kind/name: ...`.
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            assert!(
                line.split_once(": ")
                    .is_some_and(|(obj, _)| obj.contains('/')),
                "{}: {line}",
                file.display()
            );
        }
    }
}

#[test]
fn unparseable_files_exit_2_with_file_and_line() {
    for (file, line) in [
        ("unclosed-flow.yaml", 7),
        ("bad-indent.yaml", 5),
        ("second-document.yaml", 7),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/malformed")
            .join(file);
        let out = metallb(&["validate", "-f", path.to_str().unwrap()]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{file}:\n{all}");
        let located = format!("{file}:{line}:");
        assert!(
            all.contains(&located),
            "{file}: expected {located:?} in:\n{all}"
        );
    }
    let out = metallb(&["validate", "-f", "/nonexistent/metallb.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("/nonexistent/metallb.yaml: cannot read"),
        "{}",
        text(&out)
    );
}

fn plan_json(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/samples")
        .join(file);
    let out = metallb(&["plan", "-f", path.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("plan prints JSON")
}

fn service<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("service {name} missing from plan"))
}

fn ips(plan: &Value, name: &str) -> Vec<String> {
    service(plan, name)["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn plan_reproduces_the_seed_allocation_behaviours() {
    let plan = plan_json("seed-behaviours.yaml");
    // Any address: the first auto-assign pool by name, its lowest address.
    assert_eq!(ips(&plan, "a-any"), ["203.0.113.1"]);
    assert_eq!(service(&plan, "a-any")["pool"], "doc-example");
    // Requested address.
    assert_eq!(ips(&plan, "b-requested"), ["203.0.113.5"]);
    // Requested address outside the pools: the seed's event text, word for word.
    assert_eq!(
        service(&plan, "invalid-request")["error"],
        "Failed to allocate IP for \"default/invalid-request\": \"4.3.2.1\" is not allowed in config"
    );
    assert!(ips(&plan, "invalid-request").is_empty());
    // Reserved pool, only on request.
    assert_eq!(ips(&plan, "c-reserved"), ["10.0.100.0"]);
    assert_eq!(service(&plan, "c-reserved")["pool"], "doc-example-reserved");
    // Missing pool: falls back to an auto-assign pool.
    assert_eq!(ips(&plan, "d-missing-pool"), ["203.0.113.2"]);
    // Sharing: same key, different ports (and TCP/UDP on one port).
    assert_eq!(ips(&plan, "service-http"), ["172.31.249.7"]);
    assert_eq!(ips(&plan, "service-https"), ["172.31.249.7"]);
    assert_eq!(ips(&plan, "dns-tcp"), ["172.31.249.53"]);
    assert_eq!(ips(&plan, "dns-udp"), ["172.31.249.53"]);
    let clash = service(&plan, "dns-tcp-clash")["error"].as_str().unwrap();
    assert!(
        clash.starts_with("Failed to allocate IP for \"default/dns-tcp-clash\": "),
        "{clash}"
    );
    // Dual stack: both families from the one pool that has them.
    assert_eq!(ips(&plan, "e-dual"), ["10.0.101.0", "2002:2:2::1"]);
    assert_eq!(service(&plan, "e-dual")["pool"], "doc-example-combined");
    // Exhaustion.
    assert_eq!(ips(&plan, "tiny-1"), ["192.168.50.1"]);
    assert_eq!(ips(&plan, "tiny-2"), ["192.168.50.2"]);
    let full = service(&plan, "tiny-3")["error"].as_str().unwrap();
    assert!(full.contains("no available IPs in pool \"tiny\""), "{full}");
    // Only LoadBalancer services appear.
    assert!(
        plan["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "plain")
    );
    // Pool usage.
    let pool = |name: &str| {
        plan["pools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let doc = pool("doc-example");
    assert_eq!(
        doc["addresses"],
        serde_json::json!(["203.0.113.1-203.0.113.10", "203.0.113.65-203.0.113.75"])
    );
    assert_eq!(
        (doc["assignedIPv4"].as_u64(), doc["availableIPv4"].as_u64()),
        (Some(3), Some(18))
    );
    let combined = pool("doc-example-combined");
    assert_eq!(
        (
            combined["assignedIPv6"].as_u64(),
            combined["availableIPv6"].as_u64()
        ),
        (Some(1), Some(255))
    );
    assert_eq!(pool("tiny")["availableIPv4"].as_u64(), Some(0));
}

#[test]
fn plan_is_byte_identical_across_runs_and_has_a_text_form() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/samples/seed-behaviours.yaml");
    let path = path.to_str().unwrap();
    for format in ["json", "text"] {
        let first = metallb(&["plan", "-f", path, "-o", format]);
        let second = metallb(&["plan", "-f", path, "-o", format]);
        assert_eq!(first.status.code(), Some(0));
        assert_eq!(
            first.stdout, second.stdout,
            "{format} output differs between runs"
        );
    }
    let out = metallb(&["plan", "-f", path]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().next().unwrap().starts_with("SERVICE"),
        "{table}"
    );
    assert!(
        table.contains("default/a-any") && table.contains("203.0.113.1"),
        "{table}"
    );
}

#[test]
fn plan_keeps_addresses_already_in_status() {
    // A service that already holds .9 keeps it, and a new service does not get it even though
    // it sorts first: existing assignments are restored before anything is allocated.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    fs::write(
        &file,
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [10.9.0.8-10.9.0.9]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: z-old, namespace: default}\nspec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 10.9.0.8}]}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a-new, namespace: default}\nspec: {type: LoadBalancer}\n",
    )
    .unwrap();
    let out = metallb(&["plan", "-f", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ips(&plan, "z-old"), ["10.9.0.8"]);
    assert_eq!(ips(&plan, "a-new"), ["10.9.0.9"]);
}

/// Upstream's convergeBalancer: an assignment in status follows the Service's request.
#[test]
fn plan_moves_an_assignment_whose_request_changed() {
    let pools = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a, namespace: metallb-system}\nspec: {addresses: [10.9.0.0/29, 'fd00::/126']}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b, namespace: metallb-system}\nspec: {addresses: [10.8.0.0/30]}\n";
    let manifest = |name: &str, annotations: &str, spec: &str, ingress: &str| {
        format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default, annotations: {{{annotations}}}}}\nspec: {{type: LoadBalancer{spec}}}\nstatus: {{loadBalancer: {{ingress: [{ingress}]}}}}\n"
        )
    };
    let manifests = [
        pools.to_string(),
        // Still fits: stays.
        manifest("kept", "", "", "{ip: 10.9.0.2}"),
        // loadBalancerIP now names another address of the pool.
        manifest("edited", "", ", loadBalancerIP: 10.9.0.3", "{ip: 10.9.0.1}"),
        // metallb.io/loadBalancerIPs names an address outside every pool: fails, releases .0.
        manifest(
            "outside",
            "'metallb.io/loadBalancerIPs': 4.3.2.1",
            "",
            "{ip: 10.9.0.0}",
        ),
        // The pool annotation now names pool b.
        manifest("repooled", "'metallb.io/address-pool': b", "", "{ip: 10.9.0.5}"),
        // RequireDualStack with an IPv4-only ingress gets its IPv6 address from the same pool.
        manifest(
            "dual",
            "",
            ", ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6], clusterIPs: [10.96.0.1, 'fd01::1']",
            "{ip: 10.9.0.4}",
        ),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    fs::write(&file, manifests).unwrap();
    let out = metallb(&["plan", "-f", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ips(&plan, "kept"), ["10.9.0.2"]);
    assert_eq!(ips(&plan, "edited"), ["10.9.0.3"]);
    assert!(ips(&plan, "outside").is_empty());
    assert_eq!(
        service(&plan, "outside")["error"],
        "Failed to allocate IP for \"default/outside\": \"4.3.2.1\" is not allowed in config"
    );
    assert_eq!(service(&plan, "repooled")["pool"], "b");
    assert_eq!(ips(&plan, "repooled"), ["10.8.0.0"]);
    let dual = ips(&plan, "dual");
    assert_eq!(dual.len(), 2, "{dual:?}");
    assert!(dual[1].starts_with("fd00::"), "{dual:?}");
    assert_eq!(dual[0], "10.9.0.4");
    // .0, .1 and .5 (released by "outside", "edited" and "repooled") are free again.
    let pool_a = plan["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "a")
        .unwrap();
    assert_eq!(pool_a["assignedIPv4"], 3, "{pool_a}");
}

#[test]
fn plan_refuses_an_invalid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    fs::write(
        &file,
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [10.0.0.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b}\nspec: {addresses: [10.0.0.128/25]}\n",
    )
    .unwrap();
    let out = metallb(&["plan", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("IPAddressPool/"), "{}", text(&out));
}

#[test]
fn crd_command_prints_the_checked_in_crds() {
    let out = metallb(&["crd"]);
    assert_eq!(out.status.code(), Some(0));
    let checked_in =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds/metallb.io.yaml"))
            .unwrap();
    assert_eq!(out.stdout, checked_in);
}
