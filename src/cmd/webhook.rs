//! `metallb webhook`: build the runtime and the client, serve until SIGTERM/SIGINT.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::{
    cli::WebhookArgs,
    webhook::{
        self, WebhookConfig,
        certs::CertSpec,
        configuration::{self, Endpoint},
        rotation::{CertSource, Rotation},
    },
};

/// Runs the webhook until a signal (exit 0) or a failed task (exit 1).
pub fn run(args: &WebhookArgs) -> anyhow::Result<ExitCode> {
    if args.print_configuration {
        print!(
            "{}",
            configuration::deploy_yaml(&args.namespace, &args.service_name)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let config = WebhookConfig {
        namespace: args.namespace.clone(),
        listen: args.listen,
        rotation: rotation(args)?,
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let client = super::kube_client(&args.kube).await?;
        // Runs once, at exit: the loser is dropped with the process, nothing to resume.
        tokio::select! {
            result = webhook::run(client, config) => match result {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    tracing::error!(error = %e, "webhook stopped");
                    eprintln!("error: {:#}", anyhow::Error::from(e));
                    Ok(ExitCode::from(1))
                }
            },
            () = super::controller::shutdown_signal() => Ok(ExitCode::SUCCESS),
        }
    })
}

/// Certificates and endpoint from the flags: the certificate names the Service's DNS names,
/// or the host of `--url`.
fn rotation(args: &WebhookArgs) -> anyhow::Result<Rotation> {
    let (endpoint, sans) = match &args.url {
        Some(url) => {
            let host = url
                .strip_prefix("https://")
                .and_then(|rest| rest.split(['/', ':']).next())
                .filter(|host| !host.is_empty())
                .with_context(|| format!("--url {url:?}: expected https://HOST[:PORT]"))?;
            (Endpoint::Url(url.clone()), vec![host.to_string()])
        }
        None => {
            let service = format!("{}.{}.svc", args.service_name, args.namespace);
            (
                Endpoint::Service {
                    namespace: args.namespace.clone(),
                    name: args.service_name.clone(),
                    port: args.service_port,
                },
                vec![service.clone(), format!("{service}.cluster.local")],
            )
        }
    };
    let source = match &args.cert_dir {
        Some(dir) => CertSource::Directory(dir.clone()),
        None => CertSource::OwnSecret {
            name: args.secret_name.clone(),
            spec: CertSpec {
                sans,
                ca_validity: args.ca_validity,
                cert_validity: args.cert_validity,
            },
        },
    };
    Ok(Rotation {
        namespace: args.namespace.clone(),
        source,
        endpoint,
    })
}
