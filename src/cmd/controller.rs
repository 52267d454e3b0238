//! `metallb controller`: build the runtime and the client, run until SIGTERM/SIGINT.

use std::process::ExitCode;

use crate::{
    cli::ControllerArgs,
    controller::{self, ControllerConfig},
    k8s, status,
};

/// Runs the controller until a signal (exit 0, Lease released) or lost leadership (exit 1).
pub(crate) fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let client = super::kube_client(&args.kube).await?;
        let identity = args.identity.clone().unwrap_or_else(k8s::default_identity);
        let mut config = ControllerConfig::new(&args.namespace, identity);
        config.lb_class = args.lb_class.clone();
        config.writer.qps = args.status_qps;
        config.writer.burst = args.status_burst;
        config.memberlist_secret =
            (!args.ml_secret_name.is_empty()).then(|| args.ml_secret_name.clone());
        config.metrics = crate::metrics::process::start_controller(&args.metrics, &client).await?;
        match &mut config.lease {
            Some(lease) if args.leader_elect => {
                lease.name = args.lease_name.clone();
                lease.lease_duration = args.lease_duration;
                lease.renew_deadline = args.renew_deadline;
                lease.retry_period = args.retry_period;
            }
            _ => config.lease = None,
        }
        let status_server = match args.status_addr.0 {
            Some(addr) => {
                // Off loopback every call is authorized by the apiserver.
                let authorizer = (!addr.ip().is_loopback()).then(|| {
                    std::sync::Arc::new(crate::metrics::auth::Authorizer::new(client.clone()))
                });
                let listener = status::Listener::bind(addr)?.with_authorizer(authorizer);
                let (tx, rx) = tokio::sync::watch::channel(Default::default());
                config.status_snapshot = Some(tx);
                let service = status::controller::ControllerService::new(rx);
                Some(tokio::spawn(async move {
                    if let Err(error) = service.serve(listener, std::future::pending()).await {
                        tracing::error!(%error, "status API stopped");
                    }
                }))
            }
            None => None,
        };
        let result = controller::run(client, config, shutdown_signal()).await;
        if let Some(server) = status_server {
            server.abort();
        }
        match result {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                tracing::error!(error = %e, "controller stopped");
                eprintln!("error: {:#}", anyhow::Error::from(e));
                Ok(ExitCode::from(1))
            }
        }
    })
}

/// SIGTERM or SIGINT.
pub(super) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    // Signal::recv is cancel safe: a signal that arrives while the other branch wins stays
    // pending in its stream.
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
