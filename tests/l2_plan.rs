//! `metallb plan -o json` shows, per node, the addresses it answers ARP/NDP for.

use std::{path::Path, process::Command};

use serde_json::{Value, json};

fn plan_json(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let out = Command::new(env!("CARGO_BIN_EXE_metallb"))
        .args(["plan", "-f", path.to_str().unwrap(), "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("plan prints JSON")
}

#[test]
fn every_node_has_an_l2_list_with_ip_service_and_interfaces() {
    let plan = plan_json("tests/fixtures/l2/plan/l2.yaml");
    let nodes = plan["nodes"].as_array().expect("nodes[]");
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["node1", "node2", "node3"]);
    for n in nodes {
        for entry in n["l2"].as_array().expect("nodes[].l2[]") {
            assert!(entry["ip"].is_string() && entry["service"].is_string());
            assert!(entry["interfaces"].is_array());
        }
    }
    // The allocator keeps the status addresses; the owners are those of l2::cluster's unit
    // test (sha256 ordering, ETP Local, exclusions). BGP and L2 sit side by side per node.
    assert_eq!(nodes[0]["bgp"], json!([]));
    assert_eq!(
        nodes[0]["l2"],
        json!([{"ip": "10.77.0.201", "service": "default/local", "interfaces": ["eth0"]}])
    );
    assert_eq!(
        nodes[1]["l2"],
        json!([
            {"ip": "10.77.0.200", "service": "default/web", "interfaces": ["eth0"]},
            {"ip": "fd00:77::200", "service": "default/web", "interfaces": ["eth0"]}
        ])
    );
    assert_eq!(nodes[2]["l2"], json!([]));
}

#[test]
fn text_plan_has_an_l2_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/l2/plan/l2.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_metallb"))
        .args(["plan", "-f", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("NODE   L2 ADDRESS"))
        .collect();
    assert_eq!(
        table,
        [
            "NODE   L2 ADDRESS    SERVICE        INTERFACES",
            "node1  10.77.0.201   default/local  eth0",
            "node2  10.77.0.200   default/web    eth0",
            "node2  fd00:77::200  default/web    eth0",
        ],
        "{text}"
    );
}
