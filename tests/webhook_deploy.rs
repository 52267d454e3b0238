//! deploy/webhook-configuration.yaml is what `metallb webhook --print-configuration` prints, and
//! deploy/webhook.yaml's RBAC covers every kind the configuration routes to the webhook.

use std::path::Path;

use metallb::webhook::configuration::{self, VALIDATED_RESOURCES};

fn deploy(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(file),
    )
    .unwrap()
}

#[test]
fn the_deployed_configuration_is_the_generated_one() {
    assert_eq!(
        deploy("webhook-configuration.yaml"),
        configuration::deploy_yaml("metallb-system", "metallb-webhook-service"),
        "regenerate: cargo run -q -- webhook --print-configuration > deploy/webhook-configuration.yaml"
    );
}

#[test]
fn the_webhook_may_read_every_kind_it_judges() {
    let rbac = deploy("webhook.yaml");
    let line = rbac
        .lines()
        .find(|l| l.contains("resources: [addresspools"))
        .expect("a rule for the metallb.io kinds");
    for resource in VALIDATED_RESOURCES {
        assert!(
            line.contains(resource),
            "deploy/webhook.yaml misses {resource}"
        );
    }
    for name in [
        configuration::CONFIGURATION_NAME,
        configuration::BGPPEER_CRD,
        "metallb-webhook-service",
        "metallb-webhook-cert",
    ] {
        assert!(rbac.contains(name), "deploy/webhook.yaml misses {name}");
    }
}
