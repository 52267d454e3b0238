//! `metallb apply`: server-side apply of manifests to a cluster, for the lab demo and for
//! clusters without kubectl. Kinds are resolved through discovery; objects of kinds the cluster
//! does not serve are reported and skipped.

use std::process::ExitCode;

use anyhow::Context as _;
use kube::{
    Api,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::{Discovery, Scope},
};

use crate::{cli::ApplyArgs, manifest};

/// Field manager of `metallb apply`.
pub(crate) const FIELD_MANAGER: &str = "metallb-apply";

/// Applies every document of the given files; exit 1 when any object was refused.
pub(crate) fn run(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(apply(args))
}

async fn apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let sources = manifest::read_paths(&args.paths)?;
    let client = super::kube_client(&args.kube).await?;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("discovery failed")?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut failed = 0;
    for (file, text) in &sources {
        for doc in manifest::parse(file, text)? {
            let mut obj: DynamicObject = match serde_json::from_value(doc.value.clone()) {
                Ok(obj) => obj,
                Err(e) => {
                    eprintln!("{file}:{}: not a Kubernetes object: {e}", doc.line);
                    failed += 1;
                    continue;
                }
            };
            let Some(types) = obj.types.clone() else {
                eprintln!("{file}:{}: no apiVersion/kind", doc.line);
                failed += 1;
                continue;
            };
            let name = obj.metadata.name.clone().unwrap_or_default();
            let what = format!("{}/{name}", types.kind);
            let resolved = GroupVersionKind::try_from(&types)
                .ok()
                .and_then(|gvk| discovery.resolve_gvk(&gvk));
            let Some((resource, caps)) = resolved else {
                eprintln!(
                    "{what}: skipped, {} is not served by this cluster",
                    types.api_version
                );
                continue;
            };
            let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
                let ns = obj
                    .metadata
                    .namespace
                    .get_or_insert_with(|| args.namespace.clone())
                    .clone();
                Api::namespaced_with(client.clone(), &ns, &resource)
            } else {
                Api::all_with(client.clone(), &resource)
            };
            match api.patch(&name, &params, &Patch::Apply(&obj)).await {
                Ok(_) => println!("{} applied", what.to_lowercase()),
                Err(e) => {
                    eprintln!("{what}: {e}");
                    failed += 1;
                }
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_INVALID)
    })
}
