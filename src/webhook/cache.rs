//! The live configuration the webhook judges against: one reflector per metallb.io kind (in
//! MetalLB's namespace), Nodes, and Services' metadata (who holds addresses from which pool).

use std::{fmt::Debug, hash::Hash};

use futures::{FutureExt, StreamExt, future::BoxFuture};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::{
    Api, Client, Resource,
    core::PartialObjectMeta,
    runtime::{
        WatchStreamExt,
        reflector::{self, Store, store::Writer},
        watcher,
    },
};
use serde::de::DeserializeOwned;

use crate::{
    api::{
        address_pool::v1beta1::AddressPool, bfd_profile::BFDProfile,
        bgp_advertisement::BGPAdvertisement, bgp_peer::v1beta2::BGPPeer, community::Community,
        ip_address_pool::IPAddressPool, l2_advertisement::L2Advertisement, metallb::MetalLB,
    },
    config::{Resources, resources::PeerObject},
    k8s::stores::sorted,
};

/// Every store the webhook reads.
#[derive(Clone)]
pub struct Cache {
    ip_address_pools: Store<IPAddressPool>,
    address_pools: Store<AddressPool>,
    l2_advertisements: Store<L2Advertisement>,
    bgp_advertisements: Store<BGPAdvertisement>,
    bgp_peers: Store<BGPPeer>,
    bfd_profiles: Store<BFDProfile>,
    communities: Store<Community>,
    metallbs: Store<MetalLB>,
    nodes: Store<Node>,
    services: Store<PartialObjectMeta<Service>>,
}

/// The reflector tasks that fill a [`Cache`]; they run until dropped.
pub type Watches = Vec<BoxFuture<'static, ()>>;

impl Cache {
    /// A cache of MetalLB's objects in `namespace`, and the tasks that keep it current.
    pub fn new(client: &Client, namespace: &str) -> (Cache, Watches) {
        let mut watches: Watches = Vec::new();
        let cache = Cache {
            ip_address_pools: watch(Api::namespaced(client.clone(), namespace), &mut watches),
            address_pools: watch(Api::namespaced(client.clone(), namespace), &mut watches),
            l2_advertisements: watch(Api::namespaced(client.clone(), namespace), &mut watches),
            bgp_advertisements: watch(Api::namespaced(client.clone(), namespace), &mut watches),
            bgp_peers: watch(Api::namespaced(client.clone(), namespace), &mut watches),
            bfd_profiles: watch(Api::namespaced(client.clone(), namespace), &mut watches),
            communities: watch(Api::namespaced(client.clone(), namespace), &mut watches),
            metallbs: watch(Api::namespaced(client.clone(), namespace), &mut watches),
            nodes: watch(Api::all(client.clone()), &mut watches),
            services: {
                let (store, writer) = reflector::store();
                let stream = reflector::reflector(
                    writer,
                    watcher(
                        Api::<PartialObjectMeta<Service>>::all(client.clone()),
                        watcher::Config::default(),
                    )
                    .default_backoff(),
                );
                watches.push(drain(stream, "Service"));
                store
            },
        };
        (cache, watches)
    }

    /// Waits until every store has its first complete list.
    pub async fn ready(&self) {
        // `wait_until_ready` only fails when the writer is dropped, i.e. the watch task ended,
        // which ends the webhook anyway.
        let _ = futures::join!(
            self.ip_address_pools.wait_until_ready(),
            self.address_pools.wait_until_ready(),
            self.l2_advertisements.wait_until_ready(),
            self.bgp_advertisements.wait_until_ready(),
            self.bgp_peers.wait_until_ready(),
            self.bfd_profiles.wait_until_ready(),
            self.communities.wait_until_ready(),
            self.metallbs.wait_until_ready(),
            self.nodes.wait_until_ready(),
            self.services.wait_until_ready(),
        );
    }

    /// The configuration objects and Nodes, as the config loader takes them; with
    /// `services`, also every Service (metadata only).
    pub fn resources(&self, services: bool) -> Resources {
        Resources {
            address_pools: sorted(&self.address_pools),
            ip_address_pools: sorted(&self.ip_address_pools),
            l2_advertisements: sorted(&self.l2_advertisements),
            bgp_advertisements: sorted(&self.bgp_advertisements),
            bgp_peers: sorted(&self.bgp_peers)
                .into_iter()
                .map(|peer| PeerObject {
                    version: "v1beta2",
                    peer,
                })
                .collect(),
            bfd_profiles: sorted(&self.bfd_profiles),
            communities: sorted(&self.communities),
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
            ..Resources::default()
        }
    }
}

fn watch<K>(api: Api<K>, watches: &mut Watches) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (store, writer): (Store<K>, Writer<K>) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    watches.push(drain(stream, std::any::type_name::<K>()));
    store
}

/// Polls a reflector stream forever, logging watch errors (the watcher retries with backoff).
fn drain<S, T>(stream: S, kind: &'static str) -> BoxFuture<'static, ()>
where
    S: futures::Stream<Item = Result<T, watcher::Error>> + Send + 'static,
    T: Send + 'static,
{
    async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Err(error) = event {
                tracing::warn!(kind, %error, "watch failed, retrying");
            }
        }
    }
    .boxed()
}
