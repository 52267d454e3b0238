//! The objects the operator applies for one `MetalLB`: pure, deterministic (the same MetalLB
//! and images give the same objects, byte for byte once serialized), so `metallb operator
//! render` shows exactly what the operator applies.
//!
//! deploy/*.yaml are the source of truth: the controller Deployment, the speaker DaemonSet,
//! the metrics Services and (optionally) the webhook Deployment and Service are parsed from
//! them and then patched from the spec:
//!
//! ```text
//!  deploy/controller.yaml ─► namespace, owner, image, --log-level, --lb-class,
//!                            controllerNodeSelector, controllerTolerations, controllerConfig
//!  deploy/speaker.yaml ────► namespace, owner, images, --log-level, --frr-log-level,
//!                            --lb-class, nodeSelector, speakerTolerations, speakerConfig
//!  deploy/metrics.yaml ────► the two monitor Services (namespace, owner)
//!  deploy/webhook.yaml ────► webhook Service + Deployment (namespace, owner, image, level)
//! ```
//!
//! A changed argument changes the pod template, so the workloads roll their pods, as the seed
//! says of `logLevel` ("Speaker and controller pods are recreated").

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::{Container, PodTemplateSpec, Service},
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::api::metallb::{ComponentConfig, MetalLB};

const CONTROLLER_YAML: &str = include_str!("../../deploy/controller.yaml");
const SPEAKER_YAML: &str = include_str!("../../deploy/speaker.yaml");
const METRICS_YAML: &str = include_str!("../../deploy/metrics.yaml");
const WEBHOOK_YAML: &str = include_str!("../../deploy/webhook.yaml");

/// Namespace of a MetalLB that names none (read from a file by `render`).
pub const DEFAULT_NAMESPACE: &str = "metallb-system";

/// The images the workloads run (upstream's operator takes them from its environment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// `metallb controller` and `metallb webhook`.
    pub controller: String,
    /// The speaker container.
    pub speaker: String,
    /// The FRR container of the speaker pod.
    pub frr: String,
}

/// What the operator deploys besides the controller and the speakers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    /// The workloads' images.
    pub images: Images,
    /// Also deploy the admission webhook (Deployment and Service; its RBAC comes from
    /// deploy/webhook.yaml and it applies its own ValidatingWebhookConfiguration).
    pub webhook: bool,
}

/// One object to apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// The controller or the webhook.
    Deployment(Box<Deployment>),
    /// The speakers.
    DaemonSet(Box<DaemonSet>),
    /// Metrics and webhook Services.
    Service(Box<Service>),
}

impl Object {
    /// `Kind/name`, for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            Object::Deployment(o) => format!("Deployment/{}", o.name_any()),
            Object::DaemonSet(o) => format!("DaemonSet/{}", o.name_any()),
            Object::Service(o) => format!("Service/{}", o.name_any()),
        }
    }
}

/// A manifest under deploy/ that does not parse into what the operator expects: a bug of this
/// build, caught by the unit tests.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The embedded YAML does not parse.
    #[error("embedded manifest deploy/{file}: {source}")]
    Template {
        /// Which file.
        file: &'static str,
        /// Cause.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A document of the embedded YAML is not the kind it claims.
    #[error("embedded manifest deploy/{file}: {source}")]
    Shape {
        /// Which file.
        file: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// A container the operator patches is missing from an embedded manifest.
    #[error("embedded manifest deploy/{file}: no container {container:?}")]
    MissingContainer {
        /// Which file.
        file: &'static str,
        /// The container.
        container: &'static str,
    },
}

/// The objects for `metallb` (already validated), in apply order.
pub fn build(metallb: &MetalLB, options: &BuildOptions) -> Result<Vec<Object>, BuildError> {
    let namespace = metallb
        .namespace()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let owner = owner_reference(metallb);
    let adopt = |meta: &mut ObjectMeta| {
        meta.namespace = Some(namespace.clone());
        meta.owner_references = owner.clone().map(|o| vec![o]);
    };
    let mut objects = Vec::new();

    let mut controller = controller(metallb, &options.images)?;
    adopt(&mut controller.metadata);
    objects.push(Object::Deployment(Box::new(controller)));

    let mut speaker = speaker(metallb, &options.images)?;
    adopt(&mut speaker.metadata);
    objects.push(Object::DaemonSet(Box::new(speaker)));

    for mut service in documents::<Service>("metrics.yaml", METRICS_YAML, "Service")? {
        adopt(&mut service.metadata);
        objects.push(Object::Service(Box::new(service)));
    }

    if options.webhook {
        for mut service in documents::<Service>("webhook.yaml", WEBHOOK_YAML, "Service")? {
            adopt(&mut service.metadata);
            objects.push(Object::Service(Box::new(service)));
        }
        for mut webhook in documents::<Deployment>("webhook.yaml", WEBHOOK_YAML, "Deployment")? {
            adopt(&mut webhook.metadata);
            let pod = pod_template(&mut webhook.spec);
            let container = find_container(pod, "webhook.yaml", "webhook")?;
            container.image = Some(options.images.controller.clone());
            set_args(container, &log_level(metallb), None, None);
            objects.push(Object::Deployment(Box::new(webhook)));
        }
    }
    Ok(objects)
}

/// The spec's level as `--log-level` takes it (`info` when unset).
fn log_level(metallb: &MetalLB) -> String {
    crate::core::frr::LogLevel::from(metallb.spec.log_level.unwrap_or_default()).to_string()
}

/// deploy/controller.yaml with the spec's controller fields.
fn controller(metallb: &MetalLB, images: &Images) -> Result<Deployment, BuildError> {
    let spec = &metallb.spec;
    let mut controller: Deployment = parse("controller.yaml", CONTROLLER_YAML)?;
    let pod = pod_template(&mut controller.spec);
    let container = find_container(pod, "controller.yaml", "controller")?;
    container.image = Some(images.controller.clone());
    set_args(
        container,
        &log_level(metallb),
        None,
        spec.load_balancer_class.as_deref(),
    );
    if let Some(selector) = &spec.controller_node_selector {
        pod_spec(pod).node_selector = Some(selector.clone());
    }
    if let Some(tolerations) = &spec.controller_tolerations {
        pod_spec(pod).tolerations = Some(tolerations.clone());
    }
    apply_config(pod, "controller", spec.controller_config.as_ref());
    Ok(controller)
}

/// deploy/speaker.yaml with the spec's speaker fields; FRR logs at the speakers' level.
fn speaker(metallb: &MetalLB, images: &Images) -> Result<DaemonSet, BuildError> {
    let spec = &metallb.spec;
    let mut speaker: DaemonSet = parse("speaker.yaml", SPEAKER_YAML)?;
    let pod = &mut speaker.spec.get_or_insert_with(Default::default).template;
    find_container(pod, "speaker.yaml", "frr")?.image = Some(images.frr.clone());
    let container = find_container(pod, "speaker.yaml", "speaker")?;
    container.image = Some(images.speaker.clone());
    let level = log_level(metallb);
    set_args(
        container,
        &level,
        Some(&level),
        spec.load_balancer_class.as_deref(),
    );
    if let Some(selector) = &spec.node_selector {
        pod_spec(pod).node_selector = Some(selector.clone());
    }
    if let Some(tolerations) = &spec.speaker_tolerations {
        pod_spec(pod).tolerations = Some(tolerations.clone());
    }
    apply_config(pod, "speaker", spec.speaker_config.as_ref());
    Ok(speaker)
}

/// The owner reference that lets kube-controller-manager's garbage collector remove the
/// workloads with the MetalLB; none for a MetalLB without a uid (read from a file).
fn owner_reference(metallb: &MetalLB) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: crate::api::labels::METALLB_V1BETA1.into(),
        kind: "MetalLB".into(),
        name: metallb.name_any(),
        uid: metallb.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

fn parse<T: serde::de::DeserializeOwned>(file: &'static str, text: &str) -> Result<T, BuildError> {
    serde_yaml_ng::from_str(text).map_err(|source| BuildError::Template { file, source })
}

/// The documents of `kind` in a multi-document manifest.
fn documents<T: serde::de::DeserializeOwned>(
    file: &'static str,
    text: &str,
    kind: &str,
) -> Result<Vec<T>, BuildError> {
    let mut out = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(document)
            .map_err(|source| BuildError::Template { file, source })?;
        if value.get("kind").and_then(|k| k.as_str()) == Some(kind) {
            let object = serde_json::from_value(value)
                .map_err(|source| BuildError::Shape { file, source })?;
            out.push(object);
        }
    }
    Ok(out)
}

fn pod_template(
    spec: &mut Option<k8s_openapi::api::apps::v1::DeploymentSpec>,
) -> &mut PodTemplateSpec {
    &mut spec.get_or_insert_with(Default::default).template
}

fn pod_spec(pod: &mut PodTemplateSpec) -> &mut k8s_openapi::api::core::v1::PodSpec {
    pod.spec.get_or_insert_with(Default::default)
}

fn find_container<'a>(
    pod: &'a mut PodTemplateSpec,
    file: &'static str,
    name: &'static str,
) -> Result<&'a mut Container, BuildError> {
    pod_spec(pod)
        .containers
        .iter_mut()
        .find(|c| c.name == name)
        .ok_or(BuildError::MissingContainer {
            file,
            container: name,
        })
}

/// Replaces the manifest's `--log-level` (and `--frr-log-level`, `--lb-class`) with the spec's.
fn set_args(
    container: &mut Container,
    level: &str,
    frr_level: Option<&str>,
    lb_class: Option<&str>,
) {
    let mut args: Vec<String> = container
        .args
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| {
            !a.starts_with("--log-level")
                && !a.starts_with("--frr-log-level")
                && !a.starts_with("--lb-class")
        })
        .collect();
    args.push(format!("--log-level={level}"));
    if let Some(frr_level) = frr_level {
        args.push(format!("--frr-log-level={frr_level}"));
    }
    if let Some(class) = lb_class {
        args.push(format!("--lb-class={class}"));
    }
    container.args = Some(args);
}

/// `speakerConfig` / `controllerConfig`: pod annotations, priority and runtime class, affinity,
/// and the resources of the component's own container.
fn apply_config(pod: &mut PodTemplateSpec, container_name: &str, config: Option<&ComponentConfig>) {
    let Some(config) = config else {
        return;
    };
    if let Some(annotations) = &config.annotations {
        let meta = pod.metadata.get_or_insert_with(Default::default);
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let spec = pod_spec(pod);
    if let Some(class) = &config.priority_class_name {
        spec.priority_class_name = Some(class.clone());
    }
    if let Some(class) = &config.runtime_class_name {
        spec.runtime_class_name = Some(class.clone());
    }
    if let Some(affinity) = &config.affinity {
        spec.affinity = Some(affinity.clone());
    }
    if let Some(resources) = &config.resources
        && let Some(container) = spec
            .containers
            .iter_mut()
            .find(|c| c.name == container_name)
    {
        container.resources = Some(resources.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> BuildOptions {
        BuildOptions {
            images: Images {
                controller: "reg/metallb:1".into(),
                speaker: "reg/speaker:1".into(),
                frr: "reg/frr:1".into(),
            },
            webhook: false,
        }
    }

    fn metallb(spec: serde_json::Value) -> MetalLB {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "MetalLB",
            "metadata": {"name": "metallb", "namespace": "mlb", "uid": "u-1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn workloads(objects: &[Object]) -> (&Deployment, &DaemonSet) {
        let controller = objects
            .iter()
            .find_map(|o| match o {
                Object::Deployment(d) if d.name_any() == "controller" => Some(d.as_ref()),
                _ => None,
            })
            .unwrap();
        let speaker = objects
            .iter()
            .find_map(|o| match o {
                Object::DaemonSet(d) => Some(d.as_ref()),
                _ => None,
            })
            .unwrap();
        (controller, speaker)
    }

    fn pod(template: &PodTemplateSpec) -> &k8s_openapi::api::core::v1::PodSpec {
        template.spec.as_ref().unwrap()
    }

    fn args<'a>(template: &'a PodTemplateSpec, name: &str) -> &'a [String] {
        pod(template)
            .containers
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .args
            .as_deref()
            .unwrap()
    }

    #[test]
    fn defaults_keep_the_manifests_and_set_namespace_owner_and_images() {
        let objects = build(&metallb(serde_json::json!({})), &options()).unwrap();
        let names: Vec<String> = objects.iter().map(Object::describe).collect();
        assert_eq!(
            names,
            [
                "Deployment/controller",
                "DaemonSet/speaker",
                "Service/controller-monitor-service",
                "Service/speaker-monitor-service"
            ]
        );
        let (controller, speaker) = workloads(&objects);
        for meta in [&controller.metadata, &speaker.metadata] {
            assert_eq!(meta.namespace.as_deref(), Some("mlb"));
            let owner = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.uid.as_str()),
                ("MetalLB", "u-1")
            );
            assert_eq!(owner.controller, Some(true));
        }
        let template = &speaker.spec.as_ref().unwrap().template;
        let images: Vec<&str> = pod(template)
            .containers
            .iter()
            .map(|c| c.image.as_deref().unwrap())
            .collect();
        assert_eq!(images, ["reg/frr:1", "reg/speaker:1"]);
        assert!(args(template, "speaker").contains(&"--log-level=info".to_string()));
        assert!(args(template, "speaker").contains(&"--frr-log-level=info".to_string()));
        assert_eq!(
            pod(template).node_selector.as_ref().unwrap()["kubernetes.io/os"],
            "linux"
        );
        assert_eq!(pod(template).tolerations.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn spec_fields_reach_the_workloads() {
        let spec = serde_json::json!({
            "logLevel": "debug",
            "nodeSelector": {"node-role.kubernetes.io/worker": ""},
            "speakerTolerations": [{"key": "node-role.kubernetes.io/infra", "operator": "Exists", "effect": "NoExecute"}],
            "controllerNodeSelector": {"kubernetes.io/hostname": "n1"},
            "controllerTolerations": [{"key": "x", "operator": "Exists"}],
            "speakerConfig": {"priorityClassName": "high", "annotations": {"a": "b"},
                              "resources": {"limits": {"cpu": "1"}}},
            "controllerConfig": {"runtimeClassName": "kata"},
            "loadBalancerClass": "metallb.io/metallb"
        });
        let objects = build(&metallb(spec), &options()).unwrap();
        let (controller, speaker) = workloads(&objects);
        let speaker_pod = &speaker.spec.as_ref().unwrap().template;
        let controller_pod = &controller.spec.as_ref().unwrap().template;
        let speaker_args = args(speaker_pod, "speaker");
        for arg in [
            "--log-level=debug",
            "--frr-log-level=debug",
            "--lb-class=metallb.io/metallb",
        ] {
            assert_eq!(
                speaker_args.iter().filter(|a| *a == arg).count(),
                1,
                "{arg}: {speaker_args:?}"
            );
        }
        assert!(!speaker_args.contains(&"--log-level=info".to_string()));
        let controller_args = args(controller_pod, "controller");
        assert!(controller_args.contains(&"--log-level=debug".to_string()));
        assert!(controller_args.contains(&"--lb-class=metallb.io/metallb".to_string()));
        assert_eq!(
            pod(speaker_pod).node_selector,
            Some(BTreeMap::from([(
                "node-role.kubernetes.io/worker".into(),
                String::new()
            )]))
        );
        let tolerations = pod(speaker_pod).tolerations.as_ref().unwrap();
        assert_eq!(tolerations.len(), 1);
        assert_eq!(
            tolerations[0].key.as_deref(),
            Some("node-role.kubernetes.io/infra")
        );
        assert_eq!(
            pod(controller_pod).node_selector.as_ref().unwrap()["kubernetes.io/hostname"],
            "n1"
        );
        assert_eq!(pod(controller_pod).tolerations.as_ref().unwrap().len(), 1);
        assert_eq!(
            pod(speaker_pod).priority_class_name.as_deref(),
            Some("high")
        );
        assert_eq!(
            pod(controller_pod).runtime_class_name.as_deref(),
            Some("kata")
        );
        assert_eq!(
            speaker_pod
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()["a"],
            "b"
        );
        let resources = |template: &PodTemplateSpec, name: &str| {
            pod(template)
                .containers
                .iter()
                .find(|c| c.name == name)
                .unwrap()
                .resources
                .clone()
        };
        assert!(resources(speaker_pod, "speaker").unwrap().limits.is_some());
        // The FRR container keeps the manifest's requests.
        assert!(resources(speaker_pod, "frr").unwrap().limits.is_none());
    }

    #[test]
    fn same_input_same_bytes_and_the_webhook_on_request() {
        let m =
            metallb(serde_json::json!({"logLevel": "warn", "nodeSelector": {"b": "1", "a": "2"}}));
        let text = |options: &BuildOptions| {
            serde_yaml_ng::to_string(&build(&m, options).unwrap()).unwrap()
        };
        assert_eq!(text(&options()), text(&options()));
        let with_webhook = BuildOptions {
            webhook: true,
            ..options()
        };
        let objects = build(&m, &with_webhook).unwrap();
        let names: Vec<String> = objects.iter().map(Object::describe).collect();
        assert!(
            names.contains(&"Deployment/webhook".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"Service/metallb-webhook-service".to_string()),
            "{names:?}"
        );
        assert!(text(&with_webhook).contains("image: reg/metallb:1"));
        assert!(!text(&with_webhook).contains("metallb-rs:latest"));
    }

    #[test]
    fn a_metallb_without_uid_gets_no_owner_reference() {
        let mut m = metallb(serde_json::json!({}));
        m.metadata.uid = None;
        m.metadata.namespace = None;
        let objects = build(&m, &options()).unwrap();
        let (controller, _) = workloads(&objects);
        assert_eq!(controller.metadata.owner_references, None);
        assert_eq!(
            controller.metadata.namespace.as_deref(),
            Some(DEFAULT_NAMESPACE)
        );
    }
}
