//! The checked-in CRDs are exactly what `metallb crd` prints, and each is a well-formed
//! apiextensions.k8s.io/v1 CustomResourceDefinition.

use std::{fs, path::Path};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};

const CHECKED_IN: &str = "deploy/crds/metallb.io.yaml";

#[test]
fn checked_in_crds_match_generated() {
    let generated = metallb::api::crd::to_yaml().expect("CRDs generate");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHECKED_IN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &generated).unwrap();
    }
    let on_disk = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{CHECKED_IN} is stale: run `cargo run -- crd > {CHECKED_IN}` (or UPDATE_GOLDEN=1 cargo test --test crds)"
    );
}

/// Every object-typed schema node either lists its properties or preserves unknown fields,
/// and every node has a type: the "structural schema" rule the apiserver enforces.
fn assert_structural(schema: &JSONSchemaProps, path: &str) {
    let preserves = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    let int_or_string = schema.x_kubernetes_int_or_string == Some(true);
    assert!(
        schema.type_.is_some() || preserves || int_or_string,
        "{path}: no type"
    );
    for (name, child) in schema.properties.iter().flatten() {
        assert_structural(child, &format!("{path}.{name}"));
    }
    if let Some(items) = &schema.items {
        match items {
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => {
                assert_structural(s, &format!("{path}[]"))
            }
            other => panic!("{path}: tuple items are not structural: {other:?}"),
        }
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(s)) =
        &schema.additional_properties
    {
        assert_structural(s, &format!("{path}{{}}"));
    }
    assert!(
        schema.any_of.is_none() && schema.one_of.is_none() || schema.type_.is_some(),
        "{path}: anyOf/oneOf without type"
    );
}

#[test]
fn every_crd_is_a_valid_v1_custom_resource_definition() {
    let yaml = metallb::api::crd::to_yaml().unwrap();
    let mut kinds = Vec::new();
    for doc in yaml.split("---\n").filter(|d| !d.trim().is_empty()) {
        let crd: CustomResourceDefinition = serde_yaml_ng::from_str(doc).expect("parses as a CRD");
        let value: serde_json::Value = serde_yaml_ng::from_str(doc).unwrap();
        assert_eq!(value["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(value["kind"], "CustomResourceDefinition");
        let spec = &crd.spec;
        assert_eq!(spec.group, "metallb.io");
        assert_eq!(spec.scope, "Namespaced");
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(format!("{}.metallb.io", spec.names.plural).as_str())
        );
        assert_eq!(
            spec.versions.iter().filter(|v| v.storage).count(),
            1,
            "{}: one storage version",
            spec.names.kind
        );
        for version in &spec.versions {
            assert!(version.served);
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .unwrap_or_else(|| panic!("{} {} has a schema", spec.names.kind, version.name));
            assert_structural(schema, &format!("{}/{}", spec.names.kind, version.name));
            assert!(
                version
                    .additional_printer_columns
                    .as_ref()
                    .is_some_and(|c| !c.is_empty())
                    || spec.names.kind == "Community",
                "{} {} has printer columns",
                spec.names.kind,
                version.name
            );
        }
        kinds.push(spec.names.kind.clone());
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "AddressPool",
            "BFDProfile",
            "BGPAdvertisement",
            "BGPPeer",
            "Community",
            "ConfigurationState",
            "IPAddressPool",
            "L2Advertisement",
            "MetalLB",
            "ServiceBGPStatus",
            "ServiceL2Status"
        ]
    );
}

#[test]
fn multi_version_kinds_serve_both_versions() {
    let crds = metallb::api::crd::all().unwrap();
    let versions = |kind: &str| -> Vec<(String, bool)> {
        crds.iter()
            .find(|c| c.spec.names.kind == kind)
            .unwrap()
            .spec
            .versions
            .iter()
            .map(|v| (v.name.clone(), v.storage))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_eq!(
        versions("AddressPool"),
        [("v1alpha1".into(), false), ("v1beta1".into(), true)]
    );
    assert_eq!(
        versions("BGPPeer"),
        [("v1beta1".into(), false), ("v1beta2".into(), true)]
    );
}

#[test]
fn simple_rules_live_in_the_schema() {
    let yaml = metallb::api::crd::to_yaml().unwrap();
    // Ranges of the seed's BFDProfile table, the BGP port bound, and CEL rules that need no
    // other object: the cluster enforces them even when no webhook answers.
    for needle in [
        "maximum: 60000",
        "minimum: 10",
        "maximum: 16384",
        "maximum: 254",
        "keepaliveTime requires holdTime",
        "bgpAdvertisements are only valid when protocol is bgp",
        "exactly one of peerASN and dynamicASN must be set",
        "must be an IPv4 or IPv6 address",
        "self.matches(",
    ] {
        assert!(yaml.contains(needle), "schema lacks {needle:?}");
    }
}

/// The oldest supported Kubernetes is 1.25 (README): no CEL function newer than that may appear
/// in a rule (`isIP`/`ip()` are 1.31, `isCIDR`/`cidr()` 1.31, `isURL` 1.27, `isQuantity` 1.29,
/// `optionalOldSelf` 1.29), and no rule field newer than that (`fieldPath`, `reason` 1.28,
/// `messageExpression` 1.27: `kubectl create`'s strict validation refuses unknown fields).
#[test]
fn crds_use_only_cel_that_kubernetes_1_25_knows() {
    let yaml = metallb::api::crd::to_yaml().unwrap();
    for newer in [
        "isIP(",
        "ip(self",
        "isCIDR(",
        "cidr(",
        "isURL(",
        "url(",
        "isQuantity(",
        "quantity(",
        "optionalOldSelf",
        "format.",
        "isSemver(",
        "fieldPath:",
        "messageExpression:",
    ] {
        assert!(
            !yaml.contains(newer),
            "a CEL rule uses {newer:?}, unknown before Kubernetes 1.25"
        );
    }
}
