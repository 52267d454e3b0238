//! The reflector stores of the watched kinds, read into the plain inputs the pure steps take
//! (the controller's dereference step, the speaker's source, the webhook's cache).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use kube::{
    Api, Client,
    runtime::reflector::{ObjectRef, Store},
};

use crate::{
    api::{
        address_pool::v1beta1::AddressPool, bfd_profile::BFDProfile,
        bgp_advertisement::BGPAdvertisement, bgp_peer::v1beta2::BGPPeer, community::Community,
        ip_address_pool::IPAddressPool, l2_advertisement::L2Advertisement,
    },
    config::{Resources, resources::PeerObject},
    core::service::ServiceKey,
    k8s::watch::{Kind, Watches},
};

/// Every store the controller and the speaker read.
#[derive(Clone)]
pub struct Stores {
    /// Services, all namespaces.
    pub services: Store<Service>,
    /// Namespaces.
    pub namespaces: Store<Namespace>,
    /// Nodes.
    pub nodes: Store<Node>,
    /// The metallb.io config kinds in MetalLB's namespace.
    pub config: ConfigStores,
}

/// The metallb.io config kinds in MetalLB's namespace: what the controller, the speaker and
/// the webhook all build the configuration from.
#[derive(Clone)]
pub struct ConfigStores {
    /// IPAddressPools.
    pub ip_address_pools: Store<IPAddressPool>,
    /// Legacy AddressPools.
    pub address_pools: Store<AddressPool>,
    /// L2Advertisements.
    pub l2_advertisements: Store<L2Advertisement>,
    /// BGPAdvertisements.
    pub bgp_advertisements: Store<BGPAdvertisement>,
    /// BGPPeers (stored version v1beta2).
    pub bgp_peers: Store<BGPPeer>,
    /// BFDProfiles.
    pub bfd_profiles: Store<BFDProfile>,
    /// Communities.
    pub communities: Store<Community>,
}

impl ConfigStores {
    /// Watches every config kind in `namespace`.
    pub fn watch(client: &Client, namespace: &str, watches: &mut Watches) -> ConfigStores {
        ConfigStores {
            ip_address_pools: watches.store(
                Api::namespaced(client.clone(), namespace),
                Kind::Config("IPAddressPool"),
            ),
            address_pools: watches.store(
                Api::namespaced(client.clone(), namespace),
                Kind::Config("AddressPool"),
            ),
            l2_advertisements: watches.store(
                Api::namespaced(client.clone(), namespace),
                Kind::Config("L2Advertisement"),
            ),
            bgp_advertisements: watches.store(
                Api::namespaced(client.clone(), namespace),
                Kind::Config("BGPAdvertisement"),
            ),
            bgp_peers: watches.store(
                Api::namespaced(client.clone(), namespace),
                Kind::Config("BGPPeer"),
            ),
            bfd_profiles: watches.store(
                Api::namespaced(client.clone(), namespace),
                Kind::Config("BFDProfile"),
            ),
            communities: watches.store(
                Api::namespaced(client.clone(), namespace),
                Kind::Config("Community"),
            ),
        }
    }

    /// Waits until every store has its first complete list.
    pub async fn wait_until_ready(&self) {
        // `wait_until_ready` only fails when the writer is dropped, i.e. the watch task ended,
        // which the caller sees as a task ending.
        let _ = futures::join!(
            self.ip_address_pools.wait_until_ready(),
            self.address_pools.wait_until_ready(),
            self.l2_advertisements.wait_until_ready(),
            self.bgp_advertisements.wait_until_ready(),
            self.bgp_peers.wait_until_ready(),
            self.bfd_profiles.wait_until_ready(),
            self.communities.wait_until_ready(),
        );
    }

    /// The config objects, sorted by name, as `config::load` takes them (no Nodes, Services,
    /// ...: the caller adds what it watches).
    pub fn resources(&self) -> Resources {
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
            ..Resources::default()
        }
    }
}

/// Objects sorted by name, so the config build sees the same order whatever the watch order.
pub(crate) fn sorted<K: kube::Resource + Clone>(store: &Store<K>) -> Vec<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let mut objects: Vec<K> = store.state().iter().map(|o| (**o).clone()).collect();
    objects.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    objects
}

impl Stores {
    /// Watches Services, Namespaces, Nodes (all namespaces) and the config kinds in
    /// `namespace`.
    pub fn watch(client: &Client, namespace: &str, watches: &mut Watches) -> Stores {
        Stores {
            services: watches.store(Api::all(client.clone()), Kind::Service),
            namespaces: watches.store(Api::all(client.clone()), Kind::Namespace),
            nodes: watches.store(Api::all(client.clone()), Kind::Node),
            config: ConfigStores::watch(client, namespace, watches),
        }
    }

    /// The config objects and Nodes, as `config::build` takes them.
    pub fn config_resources(&self) -> Resources {
        Resources {
            nodes: sorted(&self.nodes),
            ..self.config.resources()
        }
    }

    /// Labels of every namespace.
    pub fn namespace_labels(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.namespaces
            .state()
            .iter()
            .filter_map(|ns| {
                Some((
                    ns.metadata.name.clone()?,
                    ns.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// One Service.
    pub fn service(&self, key: &ServiceKey) -> Option<std::sync::Arc<Service>> {
        self.services
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
    }

    /// Every Service, by namespace and name.
    pub fn all_services(&self) -> BTreeMap<ServiceKey, std::sync::Arc<Service>> {
        self.services
            .state()
            .into_iter()
            .map(|svc| {
                (
                    ServiceKey::new(
                        svc.metadata.namespace.clone().unwrap_or_default(),
                        svc.metadata.name.clone().unwrap_or_default(),
                    ),
                    svc,
                )
            })
            .collect()
    }
}
