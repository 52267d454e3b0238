//! The `metallb.status.v1.Controller` service: translates the controller's published
//! [`ControllerStatus`] to proto. Read-only; it never touches the API server.

use std::{future::Future, pin::Pin};

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status, server::NamedService, service::RoutesBuilder};

use super::{
    proto::{
        self, AllocationState,
        controller_server::{Controller, ControllerServer},
    },
    server::{Listener, ServeError},
};
use crate::core::{
    allocator::{FamilyStats, PoolStats},
    service::ServiceKey,
    status::{Allocation, ControllerStatus},
};

/// The Controller service over the controller's snapshot channel.
#[derive(Clone, Debug)]
pub struct ControllerService {
    snapshot: watch::Receiver<ControllerStatus>,
}

impl ControllerService {
    /// Serves what the controller publishes on `snapshot`.
    pub fn new(snapshot: watch::Receiver<ControllerStatus>) -> Self {
        ControllerService { snapshot }
    }

    /// Serves the service, reflection and health on `listener` until `shutdown`.
    pub async fn serve(
        self,
        listener: Listener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let mut routes = RoutesBuilder::default();
        routes.add_service(ControllerServer::new(self));
        listener
            .serve(
                <ControllerServer<ControllerService> as NamedService>::NAME,
                routes,
                shutdown,
            )
            .await
    }

    /// The current snapshot, once the controller has made its first pass.
    fn ready(&self) -> Result<ControllerStatus, Status> {
        let status = self.snapshot.borrow().clone();
        if status.ready {
            Ok(status)
        } else {
            Err(Status::unavailable(
                "the controller has no valid configuration yet, or has not finished its first pass",
            ))
        }
    }
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn get_service(
        &self,
        request: Request<proto::GetServiceRequest>,
    ) -> Result<Response<proto::ServiceAllocation>, Status> {
        let request = request.into_inner();
        let key = ServiceKey {
            namespace: request.namespace,
            name: request.name,
        };
        let status = self.ready()?;
        match status.services.get(&key) {
            Some(allocation) => Ok(Response::new(service_to_proto(&key, allocation))),
            None => Err(Status::not_found(format!(
                "Service {key}: no allocation: not a LoadBalancer Service this controller handles \
                 (type, loadBalancerClass), or it does not exist"
            ))),
        }
    }

    async fn list_services(
        &self,
        request: Request<proto::ListServicesRequest>,
    ) -> Result<Response<proto::ListServicesResponse>, Status> {
        let namespace = request.into_inner().namespace;
        let status = self.ready()?;
        let services = status
            .services
            .iter()
            .filter(|(key, _)| namespace.is_empty() || key.namespace == namespace)
            .map(|(key, allocation)| service_to_proto(key, allocation))
            .collect();
        Ok(Response::new(proto::ListServicesResponse { services }))
    }

    async fn list_pools(
        &self,
        _request: Request<proto::ListPoolsRequest>,
    ) -> Result<Response<proto::ListPoolsResponse>, Status> {
        let status = self.ready()?;
        let pools = status
            .pools
            .iter()
            .map(|(name, stats)| pool_to_proto(name, stats))
            .collect();
        Ok(Response::new(proto::ListPoolsResponse { pools }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<proto::ControllerSnapshot, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        _request: Request<proto::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // The first item is the current snapshot; then one per change, skipping those that
        // were overwritten before the client read them (the latest always arrives).
        let stream = WatchStream::new(self.snapshot.clone())
            .enumerate()
            .map(|(generation, status)| Ok(snapshot_to_proto(&status, generation as u64)));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// One Service's allocation in proto.
pub fn service_to_proto(key: &ServiceKey, allocation: &Allocation) -> proto::ServiceAllocation {
    let mut out = proto::ServiceAllocation {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        ..Default::default()
    };
    match allocation {
        Allocation::Allocated { pool, ips } => {
            out.set_state(AllocationState::Allocated);
            out.addresses = ips.iter().map(ToString::to_string).collect();
            out.pool = pool.clone();
        }
        Allocation::Pending { reason } => {
            out.set_state(AllocationState::Pending);
            out.reason = reason.clone();
        }
    }
    out
}

/// One pool's usage in proto.
pub fn pool_to_proto(name: &str, stats: &PoolStats) -> proto::PoolUsage {
    proto::PoolUsage {
        name: name.to_string(),
        ipv4: Some(family_to_proto(&stats.ipv4)),
        ipv6: Some(family_to_proto(&stats.ipv6)),
        services: stats.services as u64,
    }
}

fn family_to_proto(stats: &FamilyStats) -> proto::FamilyUsage {
    let cap = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
    proto::FamilyUsage {
        total: cap(stats.total),
        assigned: cap(stats.assigned),
        available: cap(stats.available),
    }
}

/// The whole snapshot in proto; `generation` counts the snapshots this stream sent before.
pub fn snapshot_to_proto(status: &ControllerStatus, generation: u64) -> proto::ControllerSnapshot {
    proto::ControllerSnapshot {
        services: status
            .services
            .iter()
            .map(|(key, allocation)| service_to_proto(key, allocation))
            .collect(),
        pools: status
            .pools
            .iter()
            .map(|(name, stats)| pool_to_proto(name, stats))
            .collect(),
        configuration: Some(proto::ConfigurationState {
            valid: status.config_error.is_none(),
            error: status.config_error.clone().unwrap_or_default(),
        }),
        generation,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::core::allocator::Assignment;

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn snapshot(reason: &str) -> ControllerStatus {
        let web = key("web");
        let assignment = Assignment {
            pool: "web".into(),
            ips: vec!["203.0.113.5".parse().unwrap()],
        };
        let failed = BTreeMap::from([(key("db"), reason.to_string())]);
        let stats = PoolStats {
            ipv4: FamilyStats {
                total: 2,
                assigned: 2,
                available: 0,
            },
            ..Default::default()
        };
        ControllerStatus::build(
            [(&web, &assignment)],
            &failed,
            BTreeMap::from([("web".to_string(), stats)]),
            None,
        )
    }

    /// A real server on a loopback port and a client to it.
    async fn start(
        rx: watch::Receiver<ControllerStatus>,
    ) -> proto::controller_client::ControllerClient<tonic::transport::Channel> {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr();
        tokio::spawn(ControllerService::new(rx).serve(listener, std::future::pending()));
        proto::controller_client::ControllerClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn answers_allocated_pending_unknown_and_pools_over_grpc() {
        let (_tx, rx) = watch::channel(snapshot("no available IPs in pool web"));
        let mut client = start(rx).await;

        let web = client
            .get_service(proto::GetServiceRequest {
                namespace: "default".into(),
                name: "web".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(web.state(), AllocationState::Allocated);
        assert_eq!(web.addresses, ["203.0.113.5"]);
        assert_eq!(web.pool, "web");

        let db = client
            .get_service(proto::GetServiceRequest {
                namespace: "default".into(),
                name: "db".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(db.state(), AllocationState::Pending);
        assert_eq!(db.reason, "no available IPs in pool web");
        assert!(db.addresses.is_empty());

        let missing = client
            .get_service(proto::GetServiceRequest {
                namespace: "other".into(),
                name: "web".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);

        let listed = client
            .list_services(proto::ListServicesRequest {
                namespace: "default".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = listed.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);

        let pools = client
            .list_pools(proto::ListPoolsRequest {})
            .await
            .unwrap()
            .into_inner()
            .pools;
        assert_eq!(pools.len(), 1);
        let v4 = pools[0].ipv4.unwrap();
        assert_eq!((v4.assigned, v4.total, v4.available), (2, 2, 0));
    }

    #[tokio::test]
    async fn not_ready_is_unavailable() {
        let (_tx, rx) = watch::channel(ControllerStatus::default());
        let mut client = start(rx).await;
        let error = client
            .list_pools(proto::ListPoolsRequest {})
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unavailable);
    }

    #[tokio::test]
    async fn watch_streams_the_current_state_then_each_change() {
        let (tx, rx) = watch::channel(snapshot("first"));
        let mut client = start(rx).await;
        let mut stream = client
            .watch(proto::WatchRequest {})
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.generation, 0);
        let reason = |s: &proto::ControllerSnapshot| {
            s.services
                .iter()
                .find(|s| s.name == "db")
                .map(|s| s.reason.clone())
        };
        assert_eq!(reason(&first).as_deref(), Some("first"));
        tx.send_replace(snapshot("second"));
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(second.generation, 1);
        assert_eq!(reason(&second).as_deref(), Some("second"));
    }
}
