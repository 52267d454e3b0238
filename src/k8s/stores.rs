//! The reflector stores of the watched kinds, read into the plain inputs the pure steps take
//! (the controller's dereference step, the speaker's source).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::{
    api::{
        address_pool::v1beta1::AddressPool, bfd_profile::BFDProfile,
        bgp_advertisement::BGPAdvertisement, bgp_peer::v1beta2::BGPPeer, community::Community,
        ip_address_pool::IPAddressPool, l2_advertisement::L2Advertisement,
    },
    config::{Resources, resources::PeerObject},
    core::service::ServiceKey,
};

/// Every store the controller reads.
#[derive(Clone)]
pub struct Stores {
    /// Services, all namespaces.
    pub services: Store<Service>,
    /// Namespaces.
    pub namespaces: Store<Namespace>,
    /// Nodes.
    pub nodes: Store<Node>,
    /// IPAddressPools in MetalLB's namespace.
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
    /// The config objects and Nodes, as `config::build` takes them.
    pub fn config_resources(&self) -> Resources {
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
            nodes: sorted(&self.nodes),
            ..Resources::default()
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
