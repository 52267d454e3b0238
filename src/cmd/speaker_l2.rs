//! `metallb speaker-l2`: the layer 2 speaker of one node, fed from manifests.

use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool, mpsc},
    time::Duration,
};

use anyhow::Context as _;

use super::{EXIT_INVALID, load};
use crate::{
    cli::SpeakerL2Args,
    config,
    core::l2::FenceRule,
    l2::{
        announcer::Announcer,
        fence::{Fence, Witness},
        interface::{self, DEFAULT_EXCLUDED},
        membership::{Membership, Settings, Timing},
        speaker::{self, Options},
    },
};

/// How long a starting speaker waits for its first peer before electing alone.
const JOIN_WAIT: Duration = Duration::from_millis(1500);

pub(super) fn run(args: &SpeakerL2Args) -> anyhow::Result<ExitCode> {
    let (resources, mut errors, _) = match load(&args.paths) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let config = match config::build(&resources, &config::BuildOptions::default()) {
        Ok(config) if errors.is_empty() => config,
        Ok(_) => return Ok(invalid(&mut errors)),
        Err(mut build_errors) => {
            errors.append(&mut build_errors);
            return Ok(invalid(&mut errors));
        }
    };
    if args.probe_rtt_ms >= args.probe_period_ms {
        anyhow::bail!("--probe-rtt-ms must be less than --probe-period-ms");
    }
    if !resources
        .nodes
        .iter()
        .any(|n| n.metadata.name.as_deref() == Some(args.node_name.as_str()))
    {
        tracing::warn!(node = %args.node_name, "no Node object of this name in the manifests: this speaker will never be elected");
    }
    let patterns = args
        .exclude_interfaces
        .clone()
        .unwrap_or_else(|| DEFAULT_EXCLUDED.iter().map(|s| s.to_string()).collect());
    let exclude = interface::compile_exclusions(&patterns)?;
    // SIGTERM/SIGINT end the loop so that membership says goodbye (the others fail over at
    // once instead of after the failure detector's timeout).
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let announcer = Announcer::start(exclude).context("starting the ARP/NDP responders")?;

    let (tx, rx) = mpsc::channel();
    let (_membership, initial_live) = match args.member_bind {
        Some(bind) => {
            let secret = args
                .member_secret
                .clone()
                .context("--member-bind needs --member-secret (or METALLB_ML_SECRET_KEY)")?;
            let settings = Settings {
                node: args.node_name.clone(),
                bind,
                seeds: args.members.clone(),
                secret: secret.into_bytes(),
                timing: Timing {
                    probe_period: Duration::from_millis(args.probe_period_ms),
                    probe_rtt: Duration::from_millis(args.probe_rtt_ms),
                    suspect_to_down: Duration::from_millis(args.suspect_to_down_ms),
                },
            };
            let peers = settings.seeds.iter().filter(|s| **s != bind).count();
            let membership = Membership::start(settings, tx).context("starting membership")?;
            // Do not elect alone before the others had a chance to answer: a restarting
            // speaker would otherwise grab (and gratuitously announce) every address for the
            // few hundred milliseconds its join takes.
            let mut live = membership.live();
            let deadline = std::time::Instant::now() + JOIN_WAIT;
            while peers > 0 && live.len() < 2 {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(set) => live = set,
                    Err(_) => break,
                }
            }
            (Some(membership), Some(live))
        }
        None => {
            drop(tx);
            (None, None)
        }
    };
    let peers = args
        .members
        .iter()
        .filter(|m| Some(**m) != args.member_bind)
        .count();
    let fence = args.fence_witness.map(|addr| {
        let deadline = Duration::from_millis(args.fence_deadline_ms);
        Fence {
            rule: FenceRule { deadline },
            // Four checks per deadline: one lost SYN does not fence.
            witness: Witness::start(addr, deadline / 4),
            configured_peers: peers,
        }
    });
    speaker::run(
        &Options {
            node: args.node_name.clone(),
            ignore_exclude_lb: args.ignore_exclude_lb,
            lb_class: args.lb_class.clone(),
            status_file: args.status_file.clone(),
        },
        &resources,
        &config,
        &announcer,
        initial_live,
        &rx,
        fence.as_ref(),
        &stop,
    );
    tracing::info!(node = %args.node_name, "shutting down: leaving the membership");
    Ok(ExitCode::SUCCESS)
}

fn invalid(errors: &mut Vec<config::ConfigError>) -> ExitCode {
    super::dedup(errors);
    for error in errors.iter() {
        eprintln!("{error}");
    }
    eprintln!("invalid configuration: {} problem(s)", errors.len());
    ExitCode::from(EXIT_INVALID)
}
