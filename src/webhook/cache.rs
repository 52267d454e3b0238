//! The live configuration the webhook judges against: the metallb.io config kinds (in
//! MetalLB's namespace) and MetalLB CRs, Nodes, and Services' metadata (who holds addresses from
//! which pool), watched through the same plumbing as the controller and the speakers
//! ([`k8s::stores`](crate::k8s::stores), [`k8s::watch`](crate::k8s::watch)).

use futures::{FutureExt, future::BoxFuture};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::{Api, Client, core::PartialObjectMeta, runtime::reflector::Store};
use tokio::sync::mpsc;

use crate::{
    api::metallb::MetalLB,
    config::Resources,
    k8s::{
        stores::{ConfigStores, sorted},
        watch::{Kind, Watches},
    },
};

/// Every store the webhook reads.
#[derive(Clone)]
pub struct Cache {
    config: ConfigStores,
    metallbs: Store<MetalLB>,
    nodes: Store<Node>,
    services: Store<PartialObjectMeta<Service>>,
}

/// The reflector tasks that fill a [`Cache`]; they run until dropped.
pub type WatchTasks = Vec<BoxFuture<'static, ()>>;

impl Cache {
    /// A cache of MetalLB's objects in `namespace`, and the tasks that keep it current.
    pub fn new(client: &Client, namespace: &str) -> (Cache, WatchTasks) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut watches = Watches::new(tx);
        let cache = Cache {
            config: ConfigStores::watch(client, namespace, &mut watches),
            metallbs: watches.store(
                Api::namespaced(client.clone(), namespace),
                Kind::Config("MetalLB"),
            ),
            nodes: watches.store(Api::all(client.clone()), Kind::Node),
            services: watches.store(
                Api::<PartialObjectMeta<Service>>::all(client.clone()),
                Kind::Service,
            ),
        };
        let mut tasks = watches.into_tasks();
        // Admission reads the stores when asked; nothing waits for the change reports, but the
        // watches stop when nobody receives them.
        tasks.push(async move { while rx.recv().await.is_some() {} }.boxed());
        (cache, tasks)
    }

    /// Waits until every store has its first complete list.
    pub async fn ready(&self) {
        // `wait_until_ready` only fails when the writer is dropped, i.e. the watch task ended,
        // which ends the webhook anyway.
        let _ = futures::join!(
            self.config.wait_until_ready(),
            self.metallbs.wait_until_ready(),
            self.nodes.wait_until_ready(),
            self.services.wait_until_ready(),
        );
    }

    /// The configuration objects and Nodes, as the config loader takes them; with
    /// `services`, also every Service (metadata only).
    pub fn resources(&self, services: bool) -> Resources {
        Resources {
            metallbs: sorted(&self.metallbs),
            nodes: sorted(&self.nodes),
            services: if services {
                self.services
                    .state()
                    .iter()
                    .map(|meta| Service {
                        metadata: meta.metadata.clone(),
                        ..Service::default()
                    })
                    .collect()
            } else {
                Vec::new()
            },
            ..self.config.resources()
        }
    }
}
