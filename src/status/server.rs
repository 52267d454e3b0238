//! The gRPC server shared by the controller and the speaker: their status service next to gRPC
//! reflection and the standard health service, so `grpcurl` works without the proto files.

use std::{future::Future, net::SocketAddr, sync::Arc};

use tonic::{
    service::RoutesBuilder,
    transport::{Server, server::TcpIncoming},
};

use super::{auth::AuthLayer, proto};
use crate::metrics::auth::Authorizer;

/// Loopback: the status API is not reachable from off the node unless configured otherwise
/// (then every call is authorized by the apiserver, see [`super::auth`]).
pub const DEFAULT_CONTROLLER_ADDR: &str = "127.0.0.1:7474";

/// The speaker's default: loopback, next to the controller's port (7472/7473 are metrics).
pub const DEFAULT_SPEAKER_ADDR: &str = "127.0.0.1:7475";

/// Why the status API could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("status API: cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptors.
    #[error("status API: reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server failed.
    #[error("status API: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Off loopback without an apiserver to authorize calls: refused rather than open.
    #[error(
        "status API: {addr} is not a loopback address and there is no apiserver to authorize \
         calls (needs cluster access, e.g. --from-api); listen on 127.0.0.1 or turn it off"
    )]
    Unprotected {
        /// The address asked for.
        addr: SocketAddr,
    },
}

/// A bound, not yet serving, listener: binding first lets a caller learn the port (`:0`).
pub struct Listener {
    incoming: TcpIncoming,
    addr: SocketAddr,
    authorizer: Option<Arc<Authorizer>>,
}

impl Listener {
    /// Binds `addr`.
    pub fn bind(addr: SocketAddr) -> Result<Self, ServeError> {
        let incoming =
            TcpIncoming::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
        let addr = incoming
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Listener {
            incoming,
            addr,
            authorizer: None,
        })
    }

    /// Authorizes every call through the apiserver (required off loopback).
    pub fn with_authorizer(mut self, authorizer: Option<Arc<Authorizer>>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `routes` (the status service named `service_name`) with reflection and health
    /// until `shutdown` completes.
    pub async fn serve(
        self,
        service_name: &'static str,
        mut routes: RoutesBuilder,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status(service_name, tonic_health::ServingStatus::Serving)
            .await;
        routes.add_service(health_service).add_service(reflection);
        let routes = routes.routes();
        match self.authorizer {
            Some(authorizer) => {
                tracing::info!(addr = %self.addr, service = service_name, "status API listening (calls authorized by the apiserver)");
                Server::builder()
                    .layer(AuthLayer::new(authorizer))
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(self.incoming, shutdown)
                    .await?;
            }
            None if !self.addr.ip().is_loopback() => {
                return Err(ServeError::Unprotected { addr: self.addr });
            }
            None => {
                tracing::info!(addr = %self.addr, service = service_name, "status API listening");
                Server::builder()
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(self.incoming, shutdown)
                    .await?;
            }
        }
        Ok(())
    }
}
