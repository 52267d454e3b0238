//! The cluster part of must-gather: MetalLB's namespace objects (pods, deployments, daemonsets,
//! services, events, configmaps — never Secrets), every metallb.io object and CRD, every pod's
//! logs (current and previous), laid out as `oc adm inspect` does, and each speaker pod's FRR
//! files and vtysh output ([`super::speaker_frr`], through `pods/exec`). Each API call has its
//! own timeout; a failed step is reported and the others still run. Every `password` field is
//! replaced, and every string is passed through [`super::redact_text`] (ConfigMaps and logs may
//! carry an frr.conf, kubectl's last-applied-configuration annotation the object as JSON).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::{ConfigMap, Event, Pod, Service},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Resource,
    api::{DynamicObject, ListParams, LogParams},
    core::{ApiResource, GroupVersionKind},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{
    redact_text, redact_value,
    speaker_frr::{self, FRR_CONTAINER, KubeExec, SPEAKER_SELECTOR, container_logs_dir},
};

/// MetalLB's API group.
const GROUP: &str = "metallb.io";

/// What to collect and where.
#[derive(Clone)]
pub struct ClusterGather {
    /// The cluster.
    pub client: Client,
    /// MetalLB's namespace.
    pub namespace: String,
    /// Where to write (created).
    pub dest: PathBuf,
    /// The limit of each API call and of each exec.
    pub step_timeout: Duration,
    /// The speaker pods to collect FRR data from (upstream's gather_metallb arguments); empty:
    /// every pod labelled `component=speaker` that has an frr container.
    pub speaker_pods: Vec<String>,
}

impl ClusterGather {
    /// Runs every step; returns the failures, one line each.
    pub async fn run(&self) -> Result<Vec<String>, std::io::Error> {
        std::fs::create_dir_all(&self.dest)?;
        let mut failures = Vec::new();
        let ns = &self.namespace;
        let core = self.dest.join("namespaces").join(ns).join("core");
        let apps = self.dest.join("namespaces").join(ns).join("apps");
        let c = &self.client;
        self.list(
            Api::<Pod>::namespaced(c.clone(), ns),
            &core.join("pods.yaml"),
            &mut failures,
        )
        .await;
        self.list(
            Api::<Service>::namespaced(c.clone(), ns),
            &core.join("services.yaml"),
            &mut failures,
        )
        .await;
        self.list(
            Api::<ConfigMap>::namespaced(c.clone(), ns),
            &core.join("configmaps.yaml"),
            &mut failures,
        )
        .await;
        self.list(
            Api::<Event>::namespaced(c.clone(), ns),
            &core.join("events.yaml"),
            &mut failures,
        )
        .await;
        self.list(
            Api::<Deployment>::namespaced(c.clone(), ns),
            &apps.join("deployments.yaml"),
            &mut failures,
        )
        .await;
        self.list(
            Api::<DaemonSet>::namespaced(c.clone(), ns),
            &apps.join("daemonsets.yaml"),
            &mut failures,
        )
        .await;
        self.metallb_objects(&mut failures).await;
        self.logs(&mut failures).await;
        self.speaker_frr(&mut failures).await;
        Ok(failures)
    }

    /// Lists `api` into `file` (YAML, redacted).
    async fn list<K>(&self, api: Api<K>, file: &Path, failures: &mut Vec<String>) -> Option<Vec<K>>
    where
        K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
    {
        let items = self.fetch(api, file, failures).await?;
        let mut value = serde_json::to_value(&items).unwrap_or(Value::Null);
        redact_value(&mut value);
        write(file, &to_yaml(&value), failures);
        Some(items)
    }

    /// Lists `api` under the step timeout; a failure is reported under `file`'s name.
    async fn fetch<K>(&self, api: Api<K>, file: &Path, failures: &mut Vec<String>) -> Option<Vec<K>>
    where
        K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
    {
        match tokio::time::timeout(self.step_timeout, api.list(&ListParams::default())).await {
            Ok(Ok(list)) => Some(list.items),
            Ok(Err(e)) => {
                failures.push(format!("{}: {e}", file.display()));
                None
            }
            Err(_) => {
                failures.push(format!(
                    "{}: timed out after {:?}",
                    file.display(),
                    self.step_timeout
                ));
                None
            }
        }
    }

    /// The metallb.io CRDs, then every object of each.
    async fn metallb_objects(&self, failures: &mut Vec<String>) {
        let crd_file = self
            .dest
            .join("cluster-scoped-resources/apiextensions.k8s.io/customresourcedefinitions")
            .join(format!("{GROUP}.yaml"));
        let Some(mut crds) = self
            .fetch(
                Api::<CustomResourceDefinition>::all(self.client.clone()),
                &crd_file,
                failures,
            )
            .await
        else {
            return;
        };
        // Only MetalLB's, and as they are: schemas hold no secrets, and the password rule would
        // blank the BGPPeer schema's password properties.
        crds.retain(|c| c.spec.group == GROUP);
        let value = serde_json::to_value(&crds).unwrap_or(Value::Null);
        write(&crd_file, &to_yaml(&value), failures);
        for crd in &crds {
            let Some(version) = crd
                .spec
                .versions
                .iter()
                .find(|v| v.storage)
                .or(crd.spec.versions.first())
            else {
                continue;
            };
            let gvk = GroupVersionKind::gvk(GROUP, &version.name, &crd.spec.names.kind);
            let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
            let api: Api<DynamicObject> = if crd.spec.scope == "Namespaced" {
                Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
            } else {
                Api::all_with(self.client.clone(), &resource)
            };
            let file = self
                .dest
                .join("namespaces")
                .join(&self.namespace)
                .join(GROUP)
                .join(format!("{}.yaml", crd.spec.names.plural));
            self.list(api, &file, failures).await;
        }
    }

    /// Every container's current and previous log.
    async fn logs(&self, failures: &mut Vec<String>) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let Ok(Ok(list)) =
            tokio::time::timeout(self.step_timeout, pods.list(&ListParams::default())).await
        else {
            failures.push("pod logs: cannot list pods".into());
            return;
        };
        for pod in &list.items {
            let Some(name) = pod.metadata.name.as_deref() else {
                continue;
            };
            let containers = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| c.name.clone()));
            for container in containers {
                let dir = container_logs_dir(&self.dest, &self.namespace, name, &container);
                for (previous, file) in [(false, "current.log"), (true, "previous.log")] {
                    let params = LogParams {
                        container: Some(container.clone()),
                        previous,
                        ..LogParams::default()
                    };
                    match tokio::time::timeout(self.step_timeout, pods.logs(name, &params)).await {
                        Ok(Ok(text)) => write(&dir.join(file), &redact_text(&text), failures),
                        // No previous container is the common case, not a failure.
                        Ok(Err(_)) if previous => {}
                        Ok(Err(e)) => failures.push(format!("{name}/{container} {file}: {e}")),
                        Err(_) => failures.push(format!("{name}/{container} {file}: timed out")),
                    }
                }
            }
        }
    }
}

impl ClusterGather {
    /// Each speaker pod's FRR files and `dump_frr`, the pods in parallel.
    async fn speaker_frr(&self, failures: &mut Vec<String>) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let names = if self.speaker_pods.is_empty() {
            let params = ListParams::default().labels(SPEAKER_SELECTOR);
            match tokio::time::timeout(self.step_timeout, pods.list(&params)).await {
                Ok(Ok(list)) => list.items.iter().filter_map(frr_pod_name).collect(),
                Ok(Err(e)) => {
                    failures.push(format!("speaker pods ({SPEAKER_SELECTOR}): {e}"));
                    return;
                }
                Err(_) => {
                    failures.push(format!("speaker pods ({SPEAKER_SELECTOR}): timed out"));
                    return;
                }
            }
        } else {
            self.speaker_pods.clone()
        };
        let exec = KubeExec { pods };
        failures.extend(
            speaker_frr::gather(
                &exec,
                &self.dest,
                &self.namespace,
                &names,
                self.step_timeout,
            )
            .await,
        );
    }
}

/// The pod's name when it has an frr container (a speaker without FRR has nothing to exec).
fn frr_pod_name(pod: &Pod) -> Option<String> {
    let has_frr = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .any(|c| c.name == FRR_CONTAINER);
    has_frr.then(|| pod.metadata.name.clone()).flatten()
}

fn to_yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).unwrap_or_else(|e| format!("# cannot encode: {e}\n"))
}

fn write(file: &Path, text: &str, failures: &mut Vec<String>) {
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(file, text));
    if let Err(e) = written {
        failures.push(format!("{}: {e}", file.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_fields_and_password_lines_are_redacted_everywhere() {
        let mut value = serde_json::json!([
            {"kind": "BGPPeer", "spec": {"password": "s3cr3t-MD5", "peerASN": 64501}},
            {"kind": "ConfigMap", "data": {"frr.conf": "router bgp 64500\n neighbor 10.77.0.1 password s3cr3t-MD5\n"}},
            {"kind": "BGPPeer", "spec": {"passwordSecret": {"name": "md5"}}},
        ]);
        redact_value(&mut value);
        let text = value.to_string();
        assert!(!text.contains("s3cr3t-MD5"), "{text}");
        assert_eq!(value[0]["spec"]["peerASN"], 64501);
        assert_eq!(value[0]["spec"]["password"], "<redacted>");
        assert!(text.contains("password <redacted>"), "{text}");
    }
}
