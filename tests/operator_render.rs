//! `metallb operator render` as a user runs it before an upgrade: the objects the operator
//! would apply, the same bytes for the same input, and a refusal for what it would not deploy.

use std::process::{Command, Output};

/// A seed example (tests/fixtures/seed/): 26.2.3.1 (node selector and toleration), 26.7.1
/// (debug log level).
fn seed(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn render(yaml: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metallb.yaml");
    std::fs::write(&file, yaml).unwrap();
    Command::new(env!("CARGO_BIN_EXE_metallb"))
        .args(["operator", "render", "-f"])
        .arg(&file)
        .args(extra)
        .env_remove("SPEAKER_IMAGE")
        .env_remove("CONTROLLER_IMAGE")
        .env_remove("FRR_IMAGE")
        .env_remove("DEPLOY_WEBHOOK")
        .output()
        .expect("metallb runs")
}

fn documents(stdout: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    text.split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect()
}

#[test]
fn render_prints_the_workloads_byte_identical_per_input() {
    let selector = seed("26.2.3.1-metallb-worker-nodes.yaml");
    let first = render(&selector, &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = render(&selector, &[]);
    assert_eq!(first.stdout, second.stdout, "two renders differ");

    let docs = documents(&first.stdout);
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Deployment/controller",
            "DaemonSet/speaker",
            "Service/controller-monitor-service",
            "Service/speaker-monitor-service"
        ]
    );
    let speaker = &docs[1]["spec"]["template"]["spec"];
    assert_eq!(
        speaker["nodeSelector"],
        serde_json::json!({"node-role.kubernetes.io/worker": ""})
    );
    assert_eq!(
        speaker["tolerations"],
        serde_json::json!([{"key": "Example", "operator": "Exists", "effect": "NoExecute"}])
    );
    let containers = speaker["containers"].as_array().unwrap();
    let args = containers.iter().find(|c| c["name"] == "speaker").unwrap()["args"].clone();
    assert!(
        args.as_array()
            .unwrap()
            .contains(&"--frr-log-level=info".into()),
        "{args}"
    );
    assert_eq!(
        containers.iter().find(|c| c["name"] == "frr").unwrap()["image"],
        "localhost/metallb/frr:dev"
    );

    // Other images: only the images change.
    let other = render(&selector, &["--speaker-image", "reg.example/speaker:v2"]);
    assert!(other.status.success());
    let text = String::from_utf8(other.stdout).unwrap();
    assert!(text.contains("image: reg.example/speaker:v2"), "{text}");
    assert_eq!(
        text.replace("reg.example/speaker:v2", "localhost/metallb/speaker:dev"),
        String::from_utf8(first.stdout).unwrap()
    );

    // 26.7.1: debug for the speaker, FRR and the controller.
    let debug = render(&seed("26.7.1-metallb-debug.yaml"), &[]);
    assert!(debug.status.success());
    let text = String::from_utf8(debug.stdout).unwrap();
    for arg in ["--log-level=debug", "--frr-log-level=debug"] {
        assert!(text.contains(arg), "{arg}: {text}");
    }
    assert!(!text.contains("--log-level=info"), "{text}");
}

#[test]
fn render_refuses_what_the_operator_would_not_deploy() {
    let selector = seed("26.2.3.1-metallb-worker-nodes.yaml");
    let renamed = render(&selector.replace("name: metallb\n", "name: other\n"), &[]);
    assert_eq!(renamed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&renamed.stderr);
    assert!(
        stderr.contains("MetalLB/other: metadata.name: Incorrect MetalLB resource name"),
        "{stderr}"
    );
    assert!(renamed.stdout.is_empty());

    let bad = render(
        &selector.replace(
            "effect: \"NoExecute\"",
            "effect: NoSchedule\n    tolerationSeconds: 5",
        ),
        &[],
    );
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("MetalLB/metallb: spec.speakerTolerations[0].effect: must be NoExecute"),
        "{stderr}"
    );
}
