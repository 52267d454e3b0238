//! `metallb speaker`: flags → [`speaker::Options`] → [`speaker::run`]. The runtime lives in
//! [`crate::speaker`].

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;

use crate::{
    cli::SpeakerArgs,
    core::frr::NodeFacts,
    l2::{
        interface::{self, DEFAULT_EXCLUDED},
        membership::Timing,
    },
    speaker::{
        self, MetricsOptions, Options, SourceOptions,
        bgp::BgpOptions,
        layer2::{Discovery, L2Options, StaticMembers},
    },
};

pub(super) fn run(args: &SpeakerArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &SpeakerArgs) -> anyhow::Result<ExitCode> {
    let poll = Duration::from_millis(args.frr.poll_ms);
    let source = match (&args.manifests, &args.frr.frr_conf_file) {
        (_, Some(file)) => SourceOptions::FrrConf {
            path: file.clone(),
            poll,
        },
        (Some(dir), None) => SourceOptions::Manifests {
            path: dir.clone(),
            poll,
        },
        (None, None) if args.from_api => {
            let client = super::kube_client(&args.kube).await?;
            SourceOptions::Api { client }
        }
        (None, None) => anyhow::bail!("--manifests, --frr-conf-file or --from-api is required"),
    };
    // An already rendered frr.conf is BGP only.
    let layer2 = args.layer2 && args.frr.frr_conf_file.is_none();
    let options = Options {
        node: args.node_name.clone(),
        namespace: args.namespace.clone(),
        lb_class: args.lb_class.clone(),
        bgp: args.bgp.then(|| bgp_options(args)),
        layer2: if layer2 {
            Some(l2_options(args)?)
        } else {
            None
        },
        metrics: MetricsOptions {
            listen: args.metrics.clone(),
            frr_interval: Duration::from_millis(args.frr.frr_metrics_interval_ms.max(100)),
        },
        status: speaker::status_api::StatusOptions {
            listen: args.status_addr.0,
            poll: Duration::from_millis(args.status_poll_ms.max(50)),
        },
    };
    speaker::run(options, source).await?;
    Ok(ExitCode::SUCCESS)
}

fn bgp_options(args: &SpeakerArgs) -> BgpOptions {
    let frr = &args.frr;
    BgpOptions {
        pathspace: frr.frr_pathspace.clone(),
        state_dir: frr.state_dir.clone().unwrap_or_else(|| {
            PathBuf::from("/run/metallb").join(frr.frr_pathspace.as_deref().unwrap_or("default"))
        }),
        debounce: Duration::from_millis(frr.debounce_ms),
        resync: (frr.frr_resync_secs > 0).then(|| Duration::from_secs(frr.frr_resync_secs)),
        facts: NodeFacts {
            hostname: frr.frr_hostname.clone().unwrap_or_else(nodename),
            log_level: super::frr_log_level(frr.frr_log_level),
            log_file: frr.frr_log_file.clone(),
            router_id: frr.router_id,
            // Filled per render from the Secrets in the input (`config::secrets`).
            passwords: Default::default(),
        },
    }
}

fn l2_options(args: &SpeakerArgs) -> anyhow::Result<L2Options> {
    let l2 = &args.l2;
    if l2.probe_rtt_ms >= l2.probe_period_ms {
        anyhow::bail!("--probe-rtt-ms must be less than --probe-period-ms");
    }
    let patterns = l2
        .exclude_interfaces
        .clone()
        .unwrap_or_else(|| DEFAULT_EXCLUDED.iter().map(|s| s.to_string()).collect());
    let discovery = if args.from_api {
        Discovery::Cluster {
            bind: l2.member_bind,
            port: l2.member_port,
            secret: l2.member_secret.clone(),
            secret_name: l2.member_secret_name.clone(),
        }
    } else {
        match l2.member_bind {
            Some(bind) => Discovery::Static(Some(StaticMembers {
                bind,
                members: l2.members.clone(),
                secret: l2
                    .member_secret
                    .clone()
                    .context("--member-bind needs --member-secret (or METALLB_ML_SECRET_KEY)")?,
            })),
            None => Discovery::Static(None),
        }
    };
    Ok(L2Options {
        exclude: interface::compile_exclusions(&patterns)?,
        ignore_exclude_lb: l2.ignore_exclude_lb,
        status_file: l2.status_file.clone(),
        discovery,
        timing: Timing {
            probe_period: Duration::from_millis(l2.probe_period_ms),
            probe_rtt: Duration::from_millis(l2.probe_rtt_ms),
            suspect_to_down: Duration::from_millis(l2.suspect_to_down_ms),
        },
        fence: l2
            .fence_witness
            .map(|w| (w, Duration::from_millis(l2.fence_deadline_ms))),
    })
}

/// The OS nodename (`uname -n`), which FRR prints as its hostname.
fn nodename() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
