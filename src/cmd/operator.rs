//! `metallb operator` and `metallb operator render`.

use std::process::ExitCode;

use anyhow::Context as _;
use kube::ResourceExt;

use crate::{
    api::metallb::MetalLB,
    cli::{OperatorArgs, OperatorCommand, OperatorImages, OperatorRenderArgs},
    config::METALLB_RESOURCE_NAME,
    manifest,
    operator::{
        build::{BuildOptions, Images, build},
        reconcile,
        validate::spec_problems,
    },
};

/// Runs the operator, or one of its tools.
pub(crate) fn run(args: &OperatorArgs) -> anyhow::Result<ExitCode> {
    if let Some(OperatorCommand::Render(render_args)) = &args.command {
        return render(render_args);
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let client = super::kube_client(&args.kube).await?;
        reconcile::run(client, args.namespace.clone(), options(&args.images)).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn options(images: &OperatorImages) -> BuildOptions {
    BuildOptions {
        images: Images {
            controller: images.controller_image.clone(),
            speaker: images.speaker_image.clone(),
            frr: images.frr_image.clone(),
        },
        webhook: images.deploy_webhook,
    }
}

/// Prints the objects for the MetalLB in the file as multi-document YAML; exit 1 when the
/// operator would not deploy it (another name, an invalid spec).
fn render(args: &OperatorRenderArgs) -> anyhow::Result<ExitCode> {
    let sources = manifest::read_paths(std::slice::from_ref(&args.path))?;
    let mut metallbs = Vec::new();
    for (file, text) in &sources {
        for doc in manifest::parse(file, text)? {
            if doc.kind() == "MetalLB" {
                // The CRD defaults a missing spec to {}, as the apiserver would.
                let mut value = doc.value.clone();
                if let Some(object) = value.as_object_mut() {
                    object
                        .entry("spec")
                        .or_insert_with(|| serde_json::json!({}));
                }
                let metallb: MetalLB = serde_json::from_value(value)
                    .with_context(|| format!("{file}:{}: MetalLB/{}", doc.line, doc.name()))?;
                metallbs.push(metallb);
            }
        }
    }
    let [metallb] = metallbs.as_slice() else {
        anyhow::bail!(
            "{}: want exactly one MetalLB, found {}",
            args.path.display(),
            metallbs.len()
        );
    };
    let name = metallb.name_any();
    let mut refused = Vec::new();
    if name != METALLB_RESOURCE_NAME {
        refused.push(format!(
            "MetalLB/{name}: metadata.name: Incorrect MetalLB resource name: the operator only \
             deploys the MetalLB named {METALLB_RESOURCE_NAME:?}"
        ));
    }
    refused.extend(
        spec_problems(&metallb.spec)
            .into_iter()
            .map(|p| format!("MetalLB/{name}: {}: {}", p.field, p.message)),
    );
    if !refused.is_empty() {
        for line in &refused {
            eprintln!("{line}");
        }
        return Ok(ExitCode::from(super::EXIT_INVALID));
    }
    let objects = build(metallb, &options(&args.images))?;
    let mut out = String::new();
    for object in &objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(object)?);
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
