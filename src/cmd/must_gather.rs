//! `metallb must-gather`: the node-local FRR collection; every failed step is reported and the
//! others still run (exit 1 if any failed).

use std::process::ExitCode;

use anyhow::Context as _;

use crate::{cli::MustGatherArgs, frr::vtysh::Vtysh, must_gather::FrrGather};

pub(crate) fn run(args: &MustGatherArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    if args.cluster {
        return runtime.block_on(cluster(args));
    }
    let gather = FrrGather {
        vtysh: Vtysh::new(args.frr_pathspace.clone()).with_binary(&args.vtysh),
        frr_dir: args.frr_dir.clone(),
        dest: args.dest_dir.clone(),
        step_timeout: args.step_timeout,
    };
    let failures = runtime
        .block_on(gather.run())
        .with_context(|| format!("cannot create {}", args.dest_dir.display()))?;
    Ok(report(&failures))
}

/// Prints every failed step; exit 1 if any.
fn report(failures: &[impl std::fmt::Display]) -> ExitCode {
    for failure in failures {
        eprintln!("must-gather: {failure}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn cluster(args: &MustGatherArgs) -> anyhow::Result<ExitCode> {
    let client = super::kube_client(&args.kube).await?;
    let gather = crate::must_gather::cluster::ClusterGather {
        client,
        namespace: args.namespace.clone(),
        dest: args.dest_dir.clone(),
        step_timeout: args.step_timeout,
        speaker_pods: args.speaker_pods.clone(),
    };
    let failures = gather
        .run()
        .await
        .with_context(|| format!("cannot create {}", args.dest_dir.display()))?;
    Ok(report(&failures))
}
