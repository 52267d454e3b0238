//! `metallb status`: one joined answer from the controller's and the speakers' status APIs,
//! found through the API server unless given.

use std::process::ExitCode;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;

use crate::{
    cli::{StatusArgs, StatusCommand, StatusOutput},
    status::{
        client::{Clients, PeerAnswer, PoolAnswer, SpeakerAddr},
        discover,
    },
};

/// Asks, prints, and exits 0 (1 when the status API could not answer).
pub(crate) fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let targets = Targets::find(args).await?;
        let clients = Clients::connect(
            targets.controller.as_deref(),
            &targets.speakers,
            targets.token.as_deref(),
        )
        .await?;
        print(args, &clients).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Whom to ask, and with which token.
struct Targets {
    controller: Option<String>,
    speakers: Vec<SpeakerAddr>,
    token: Option<String>,
}

impl Targets {
    /// The flags, completed through the API server when it can be reached; without cluster
    /// access the controller defaults to the local one.
    async fn find(args: &StatusArgs) -> anyhow::Result<Targets> {
        let wants_controller = matches!(
            args.what,
            StatusCommand::Service { .. } | StatusCommand::Pools
        );
        let wants_speakers = !matches!(args.what, StatusCommand::Pools);
        let config = crate::k8s::config(args.kubeconfig.as_deref(), args.context.as_deref())
            .await
            .map_err(|e| tracing::debug!(error = %e, "no cluster access: nothing discovered"))
            .ok();
        let token = config.as_ref().and_then(|c| {
            c.auth_info
                .token
                .as_ref()
                .map(|t| t.expose_secret().to_string())
                .or_else(|| {
                    let file = c.auth_info.token_file.as_ref()?;
                    std::fs::read_to_string(file)
                        .ok()
                        .map(|t| t.trim().to_string())
                })
        });
        let client = match config {
            Some(config) => Some(kube::Client::try_from(config).context("building a client")?),
            None => None,
        };
        let controller = match (&args.controller_addr, &client) {
            (_, _) if !wants_controller => None,
            (Some(addr), _) => Some(addr.clone()),
            (None, Some(client)) => Some(
                discover::controller(
                    client,
                    &args.namespace,
                    &args.lease_name,
                    args.controller_port,
                )
                .await?,
            ),
            (None, None) => Some(crate::status::DEFAULT_CONTROLLER_ADDR.to_string()),
        };
        let mut speakers = match (&client, wants_speakers && args.speakers.is_empty()) {
            (Some(client), true) => {
                discover::speakers(client, &args.namespace, args.speaker_port).await?
            }
            _ => args.speakers.clone(),
        };
        if let StatusCommand::Node { name } = &args.what {
            speakers.retain(|s| &s.node == name);
            if speakers.is_empty() {
                anyhow::bail!(
                    "node {name}: no speaker found (give --speaker-addr {name}=HOST:PORT)"
                );
            }
        }
        if matches!(args.what, StatusCommand::Peers) && speakers.is_empty() {
            anyhow::bail!("no speaker found (give --speaker-addr NODE=HOST:PORT or --kubeconfig)");
        }
        Ok(Targets {
            controller,
            speakers,
            token,
        })
    }
}

async fn print(args: &StatusArgs, clients: &Clients) -> anyhow::Result<()> {
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
                    println!("{}", peer_line(p));
                }
            }
        }
    }
    Ok(())
}

fn peer_line(p: &PeerAnswer) -> String {
    format!(
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
    )
}
