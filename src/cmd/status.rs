//! `metallb status`: one joined answer from the controller's and the speakers' status APIs.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::{
    cli::{StatusArgs, StatusCommand, StatusOutput},
    status::client::{Clients, PoolAnswer},
};

/// Asks, prints, and exits 0 (1 when the status API could not answer).
pub(crate) fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let controller = match &args.what {
            StatusCommand::Peers | StatusCommand::Node { .. } => None,
            StatusCommand::Service { .. } | StatusCommand::Pools => {
                Some(args.controller_addr.as_str())
            }
        };
        let speakers: Vec<_> = match &args.what {
            StatusCommand::Node { name } => {
                let chosen: Vec<_> = args
                    .speakers
                    .iter()
                    .filter(|s| &s.node == name)
                    .cloned()
                    .collect();
                if chosen.is_empty() {
                    anyhow::bail!(
                        "node {name}: no --speaker-addr {name}=HOST:PORT given (finding speakers \
                         through the API server is not implemented yet)"
                    );
                }
                chosen
            }
            StatusCommand::Peers if args.speakers.is_empty() => anyhow::bail!(
                "no --speaker-addr NODE=HOST:PORT given (finding speakers through the API \
                 server is not implemented yet)"
            ),
            _ => args.speakers.clone(),
        };
        let clients = Clients::connect(controller, &speakers).await?;
        let json = args.output == StatusOutput::Json;
        match &args.what {
            StatusCommand::Service { service } => {
                let (namespace, name) = service.split_once('/').unwrap_or(("default", service));
                let answer = clients.service(namespace, name).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                } else {
                    println!("{namespace}/{name}: {}", answer.summary);
                }
            }
            StatusCommand::Pools => {
                let pools: Vec<PoolAnswer> = clients
                    .pools()
                    .await?
                    .iter()
                    .map(PoolAnswer::from_proto)
                    .collect();
                if json {
                    println!("{}", serde_json::to_string_pretty(&pools)?);
                } else {
                    for pool in &pools {
                        println!("{}, {} services", pool.text(), pool.services);
                    }
                }
            }
            StatusCommand::Peers | StatusCommand::Node { .. } => {
                let peers = clients.peers().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&peers)?);
                } else {
                    for p in &peers {
                        println!(
                            "{} -> {} (vrf {}): {} {}, sent {}, received {}{}{}",
                            p.node,
                            p.peer,
                            p.vrf,
                            p.state,
                            crate::status::client::human_duration(p.uptime_seconds),
                            p.prefixes_sent,
                            p.prefixes_received,
                            if p.bfd.is_empty() {
                                String::new()
                            } else {
                                format!(", BFD {}", p.bfd)
                            },
                            if p.last_error.is_empty() {
                                String::new()
                            } else {
                                format!(", last error: {}", p.last_error)
                            },
                        );
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
