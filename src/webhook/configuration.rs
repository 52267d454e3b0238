//! What the apiserver is told about the webhook: the ValidatingWebhookConfiguration and the
//! BGPPeer CRD's conversion section, generated here so that `deploy/` and the running webhook
//! (which applies both with the current `caBundle`) never differ.
//!
//! Failure policy (README "Admission webhooks"): creating and updating metallb.io config fails
//! closed, so nothing the webhook would refuse is ever stored; deleting fails open, so a
//! namespace or an uninstall can never hang on a webhook that is already gone. Only metallb.io
//! kinds are matched (not their status subresources), so a down webhook never stops Services,
//! Nodes or the components' own status writes.

use k8s_openapi::{
    ByteString,
    api::admissionregistration::v1::{
        RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
        WebhookClientConfig,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde_json::{Value, json};

/// Name of the ValidatingWebhookConfiguration.
pub const CONFIGURATION_NAME: &str = "metallb-webhook-configuration";
/// The CRD whose versions the conversion webhook converts.
pub const BGPPEER_CRD: &str = "bgppeers.metallb.io";
/// Path of the validating webhook.
pub const VALIDATE_PATH: &str = "/validate";
/// Path of the conversion webhook.
pub const CONVERT_PATH: &str = "/convert";
/// OpenShift's service CA fills `caBundle` in objects with this annotation.
pub const OPENSHIFT_INJECT_CABUNDLE: &str = "service.beta.openshift.io/inject-cabundle";

/// Plural resource names of the kinds validated on create and update, and told about
/// deletions (a deleted object leaves the webhook's view of admitted writes at once).
pub const VALIDATED_RESOURCES: [&str; 8] = [
    "addresspools",
    "bfdprofiles",
    "bgpadvertisements",
    "bgppeers",
    "communities",
    "ipaddresspools",
    "l2advertisements",
    "metallbs",
];

/// How the apiserver reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Service in the cluster (deploy/).
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port.
        port: i32,
    },
    /// A base URL such as `https://127.0.0.1:9443` (tests, out-of-cluster runs).
    Url(String),
}

impl Endpoint {
    fn client_config(&self, path: &str, ca_bundle: Option<&str>) -> WebhookClientConfig {
        let mut config = match self {
            Endpoint::Service {
                namespace,
                name,
                port,
            } => WebhookClientConfig {
                service: Some(ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some(path.to_string()),
                    port: Some(*port),
                }),
                ..Default::default()
            },
            Endpoint::Url(base) => WebhookClientConfig {
                url: Some(format!("{}{path}", base.trim_end_matches('/'))),
                ..Default::default()
            },
        };
        config.ca_bundle = ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec()));
        config
    }
}

/// Where the CA comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaSource<'a> {
    /// The webhook's own CA (PEM bundle).
    Own(&'a str),
    /// OpenShift's service CA injects it (annotation, no `caBundle` from us).
    OpenShiftServiceCa,
    /// Not known yet (the generated manifest in deploy/).
    Absent,
}

impl<'a> CaSource<'a> {
    fn bundle(self) -> Option<&'a str> {
        match self {
            CaSource::Own(pem) => Some(pem),
            _ => None,
        }
    }

    fn annotations(self) -> Option<std::collections::BTreeMap<String, String>> {
        (self == CaSource::OpenShiftServiceCa).then(|| {
            std::collections::BTreeMap::from([(
                OPENSHIFT_INJECT_CABUNDLE.to_string(),
                "true".to_string(),
            )])
        })
    }
}

/// The ValidatingWebhookConfiguration: one webhook for create/update (fails closed), one for
/// delete (fails open).
pub fn validating_configuration(
    endpoint: &Endpoint,
    ca: CaSource<'_>,
) -> ValidatingWebhookConfiguration {
    let webhook =
        |name: &str, operations: &[&str], resources: &[&str], policy: &str| ValidatingWebhook {
            name: name.to_string(),
            admission_review_versions: vec!["v1".into()],
            client_config: endpoint.client_config(VALIDATE_PATH, ca.bundle()),
            failure_policy: Some(policy.into()),
            match_policy: Some("Equivalent".into()),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec![crate::api::GROUP.into()]),
                api_versions: Some(vec!["*".into()]),
                operations: Some(operations.iter().map(|o| o.to_string()).collect()),
                resources: Some(resources.iter().map(|r| r.to_string()).collect()),
                scope: Some("Namespaced".into()),
            }]),
            side_effects: "None".into(),
            timeout_seconds: Some(5),
            ..Default::default()
        };
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(CONFIGURATION_NAME.into()),
            annotations: ca.annotations(),
            ..Default::default()
        },
        webhooks: Some(vec![
            webhook(
                "config.metallb.io",
                &["CREATE", "UPDATE"],
                &VALIDATED_RESOURCES,
                "Fail",
            ),
            webhook(
                "delete.metallb.io",
                &["DELETE"],
                &VALIDATED_RESOURCES,
                "Ignore",
            ),
        ]),
    }
}

/// The part of the BGPPeer CRD the webhook owns (server-side apply): conversion through it.
pub fn bgppeer_conversion(endpoint: &Endpoint, ca: CaSource<'_>) -> Value {
    let client_config = serde_json::to_value(endpoint.client_config(CONVERT_PATH, ca.bundle()))
        .expect("invariant: a WebhookClientConfig serializes");
    let mut metadata = json!({ "name": BGPPEER_CRD });
    if let Some(annotations) = ca.annotations() {
        metadata["annotations"] = json!(annotations);
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "conversion": {
                "strategy": "Webhook",
                "webhook": {
                    "conversionReviewVersions": ["v1"],
                    "clientConfig": client_config,
                },
            },
        },
    })
}

/// `deploy/webhook-configuration.yaml`: the configuration for the in-cluster Service, without
/// a `caBundle` (the webhook injects it).
pub fn deploy_yaml(namespace: &str, service: &str) -> String {
    let endpoint = Endpoint::Service {
        namespace: namespace.into(),
        name: service.into(),
        port: 443,
    };
    let mut configuration =
        serde_json::to_value(validating_configuration(&endpoint, CaSource::Absent))
            .expect("invariant: a ValidatingWebhookConfiguration serializes");
    configuration["apiVersion"] = "admissionregistration.k8s.io/v1".into();
    configuration["kind"] = "ValidatingWebhookConfiguration".into();
    let mut out = String::from(
        "# Generated by `metallb webhook --print-configuration`; the webhook applies it itself with\n\
         # the current caBundle, and points bgppeers.metallb.io's conversion at itself.\n",
    );
    out.push_str("---\n");
    out.push_str(
        &serde_yaml_ng::to_string(&configuration)
            .expect("invariant: a JSON value serializes to YAML"),
    );
    out
}
