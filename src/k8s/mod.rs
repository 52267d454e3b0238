//! Kubernetes plumbing shared by the components: building a client, Lease leader election,
//! watches and their stores, the leader-gated, rate-limited Service status writer and the one
//! status publisher.

pub mod config_state;
pub mod leader;
pub mod memberlist_secret;
pub mod pool_status;
pub mod publish;
pub mod status;
pub mod stores;
pub mod watch;

use std::path::Path;

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file could not be read.
    #[error("failed to read kubeconfig {path}")]
    ReadKubeconfig {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No usable configuration (in-cluster, `$KUBECONFIG`, `~/.kube/config`).
    #[error("failed to find a kubeconfig")]
    Infer(#[source] kube::config::InferConfigError),
    /// The kubeconfig is unusable.
    #[error("failed to load kubeconfig")]
    Load(#[source] kube::config::KubeconfigError),
    /// The client could not be set up (TLS).
    #[error("failed to create the client")]
    Client(#[source] kube::Error),
}

/// A client from `kubeconfig` when given, else inferred (in-cluster service account,
/// `$KUBECONFIG`, `~/.kube/config`), optionally with a named context.
pub async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Client, ClientError> {
    Client::try_from(config(kubeconfig, context).await?).map_err(ClientError::Client)
}

/// The configuration [`client`] builds its client from (`auth_info` holds the bearer token, if
/// the user has one).
pub async fn config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Config, ClientError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|source| ClientError::ReadKubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(ClientError::Load)?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(ClientError::Load)?,
        None => Config::infer().await.map_err(ClientError::Infer)?,
    };
    Ok(config)
}

/// This process's identity for Leases and events: `$POD_NAME`, else `<hostname>-<pid>`.
pub fn default_identity() -> String {
    if let Ok(name) = std::env::var("POD_NAME")
        && !name.is_empty()
    {
        return name;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "metallb".into());
    format!("{host}-{}", std::process::id())
}
