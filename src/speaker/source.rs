//! The speaker's view of the cluster: reflector stores of everything rendering needs, and a
//! change signal.

use std::collections::BTreeSet;

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use k8s_openapi::api::{
    core::v1::{Namespace, Node, Secret, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client,
    runtime::reflector::{self, Store},
};
use tokio::sync::mpsc;

use crate::{
    config::Resources,
    controller::{
        Desired,
        dereference::Stores,
        watch::{self, Input, Kind},
    },
};

/// Reflectors for one speaker.
pub struct ApiSource {
    stores: Stores,
    endpoint_slices: Store<EndpointSlice>,
    /// Secrets in MetalLB's namespace (BGP passwords; RBAC: deploy/rbac/speaker.yaml).
    secrets: Store<Secret>,
    rx: mpsc::UnboundedReceiver<Input>,
    kinds: usize,
    synced: BTreeSet<Kind>,
    tasks: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl ApiSource {
    /// Starts watching (the watches run while [`ApiSource::changed`] is polled). Config kinds
    /// are read from `namespace`.
    pub fn new(client: Client, namespace: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let tasks: FuturesUnordered<BoxFuture<'static, ()>> = FuturesUnordered::new();
        macro_rules! watch_kind {
            ($api:expr, $kind:expr) => {{
                let (store, writer) = reflector::store();
                tasks.push(watch::run($api, writer, $kind, tx.clone()).boxed());
                store
            }};
        }
        let c = &client;
        let stores = Stores {
            services: watch_kind!(Api::<Service>::all(c.clone()), Kind::Service),
            namespaces: watch_kind!(Api::<Namespace>::all(c.clone()), Kind::Namespace),
            nodes: watch_kind!(Api::<Node>::all(c.clone()), Kind::Node),
            ip_address_pools: watch_kind!(
                Api::namespaced(c.clone(), namespace),
                Kind::Config("IPAddressPool")
            ),
            address_pools: watch_kind!(
                Api::namespaced(c.clone(), namespace),
                Kind::Config("AddressPool")
            ),
            l2_advertisements: watch_kind!(
                Api::namespaced(c.clone(), namespace),
                Kind::Config("L2Advertisement")
            ),
            bgp_advertisements: watch_kind!(
                Api::namespaced(c.clone(), namespace),
                Kind::Config("BGPAdvertisement")
            ),
            bgp_peers: watch_kind!(
                Api::namespaced(c.clone(), namespace),
                Kind::Config("BGPPeer")
            ),
            bfd_profiles: watch_kind!(
                Api::namespaced(c.clone(), namespace),
                Kind::Config("BFDProfile")
            ),
            communities: watch_kind!(
                Api::namespaced(c.clone(), namespace),
                Kind::Config("Community")
            ),
        };
        let endpoint_slices =
            watch_kind!(Api::<EndpointSlice>::all(c.clone()), Kind::EndpointSlice);
        let secrets = watch_kind!(
            Api::<Secret>::namespaced(c.clone(), namespace),
            Kind::Config("Secret")
        );
        let kinds = tasks.len();
        ApiSource {
            stores,
            endpoint_slices,
            secrets,
            rx,
            kinds,
            synced: BTreeSet::new(),
            tasks,
        }
    }

    /// Waits for the next change, once every store has its first full list; several changes
    /// that arrive together count as one. Drives the watches.
    pub async fn changed(&mut self) {
        loop {
            tokio::select! {
                input = self.rx.recv() => {
                    let Some(first) = input else {
                        return std::future::pending().await;
                    };
                    let mut next = Some(first);
                    while let Some(input) = next.take().or_else(|| self.rx.try_recv().ok()) {
                        if let Input::Synced(kind) = input {
                            self.synced.insert(kind);
                        }
                    }
                    if self.synced.len() == self.kinds {
                        return;
                    }
                }
                Some(()) = self.tasks.next(), if !self.tasks.is_empty() => {}
            }
        }
    }

    /// Everything rendering needs. Only Services with addresses in status are included: the
    /// controller assigns addresses, the speaker only announces them.
    pub fn resources(&self) -> Resources {
        let mut resources = self.stores.config_resources();
        resources.namespaces = self
            .stores
            .namespaces
            .state()
            .iter()
            .map(|o| (**o).clone())
            .collect();
        resources.services = self
            .stores
            .all_services()
            .into_values()
            .filter(|svc| !crate::controller::observed(svc).ips.is_empty())
            .map(|svc| (*svc).clone())
            .collect();
        let mut slices: Vec<EndpointSlice> = self
            .endpoint_slices
            .state()
            .iter()
            .map(|o| (**o).clone())
            .collect();
        slices.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        resources.endpoint_slices = slices;
        resources.secrets = self.secrets.state().iter().map(|o| (**o).clone()).collect();
        resources
    }

    /// One Service from the store.
    pub fn service(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<Service>> {
        self.stores
            .service(&crate::core::service::ServiceKey::new(namespace, name))
    }

    /// The addresses the controller gave each Service, to drop any the plan would compute
    /// differently (a Service whose address the current config no longer allows).
    pub fn assigned(&self) -> std::collections::BTreeMap<(String, String), Desired> {
        self.stores
            .all_services()
            .into_iter()
            .map(|(k, svc)| ((k.namespace, k.name), crate::controller::observed(&svc)))
            .collect()
    }
}
