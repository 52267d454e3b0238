//! Where the speaker's objects come from: reflector stores of the cluster ([`ApiSource`]) or
//! manifests polled in a directory ([`ManifestSource`]), each with a change signal.

use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace, Node, Secret, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client,
    runtime::reflector::{self, Store},
};
use tokio::sync::mpsc;

use crate::{
    config::{ConfigError, Resources},
    core::service::ServiceKey,
    k8s::{
        stores::{ConfigStores, Stores},
        watch::{self, Input, Kind, Watches},
    },
    manifest::{self, ManifestError},
};

/// Reflectors for one speaker.
pub struct ApiSource {
    stores: Stores,
    endpoint_slices: Store<EndpointSlice>,
    /// Secrets in MetalLB's namespace (BGP passwords; RBAC: deploy/rbac/speaker.yaml).
    secrets: Store<Secret>,
    /// ConfigMaps in MetalLB's namespace (`bgpextras`; RBAC: deploy/rbac/speaker.yaml).
    config_maps: Store<ConfigMap>,
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
        let mut config_watches = Watches::new(tx.clone());
        let config = ConfigStores::watch(c, namespace, &mut config_watches);
        for task in config_watches.into_tasks() {
            tasks.push(task);
        }
        let stores = Stores {
            services: watch_kind!(Api::<Service>::all(c.clone()), Kind::Service),
            namespaces: watch_kind!(Api::<Namespace>::all(c.clone()), Kind::Namespace),
            nodes: watch_kind!(Api::<Node>::all(c.clone()), Kind::Node),
            config,
        };
        let endpoint_slices =
            watch_kind!(Api::<EndpointSlice>::all(c.clone()), Kind::EndpointSlice);
        let secrets = watch_kind!(
            Api::<Secret>::namespaced(c.clone(), namespace),
            Kind::Config("Secret")
        );
        let config_maps = watch_kind!(
            Api::<ConfigMap>::namespaced(c.clone(), namespace),
            Kind::Config("ConfigMap")
        );
        let kinds = tasks.len();
        ApiSource {
            stores,
            endpoint_slices,
            secrets,
            config_maps,
            rx,
            kinds,
            synced: BTreeSet::new(),
            tasks,
        }
    }

    /// Waits for the next change, once every store has its first full list; several changes
    /// that arrive together count as one. Drives the watches.
    ///
    /// Cancel safe (the speaker's loop drops it whenever another branch wins): what it learns
    /// (`synced`) goes into `self` before the next await, `recv` loses nothing when dropped, and
    /// the watch futures stay in `tasks`.
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
            .filter(|svc| !crate::config::service::ingress_ips(svc).is_empty())
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
        resources.config_maps = crate::k8s::stores::sorted(&self.config_maps);
        resources
    }

    /// One Service from the store.
    pub fn service(&self, key: &ServiceKey) -> Option<std::sync::Arc<Service>> {
        self.stores.service(key)
    }
}

/// Manifests in a directory (or one file), polled: the input without a cluster.
pub struct ManifestSource {
    path: PathBuf,
    last: Option<Vec<(String, String)>>,
    failing: bool,
    poll: tokio::time::Interval,
    /// A changed input read once, and when to read it again to see that it settled. Kept here,
    /// not in the future of [`ManifestSource::changed`], because that future is dropped
    /// whenever another branch of the speaker's `select!` wins.
    settling: Option<(Vec<(String, String)>, tokio::time::Instant)>,
}

/// How long an input must stay the same before it is taken.
const SETTLE: Duration = Duration::from_millis(10);

impl ManifestSource {
    /// Polls `path` every `poll`.
    pub fn new(path: PathBuf, poll: Duration) -> ManifestSource {
        let mut poll = tokio::time::interval(poll.max(Duration::from_millis(10)));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ManifestSource {
            path,
            last: None,
            failing: false,
            poll,
            settling: None,
        }
    }

    /// Forgets what was read, so the next poll reports the input again (SIGHUP).
    pub fn force(&mut self) {
        self.last = None;
        self.failing = false;
    }

    /// The raw input, read whole: comparing contents (not mtimes) never misses a change within
    /// one timestamp tick, and the files are small.
    fn snapshot(&self) -> Result<Vec<(String, String)>, ManifestError> {
        manifest::read_paths(std::slice::from_ref(&self.path))
    }

    /// Waits for the next changed input: the files' contents (for `--frr-conf-file`), or an
    /// error the first time reading fails.
    ///
    /// Cancel safe: dropped before it returns, it loses nothing, and the next call resumes
    /// where it stood. The speaker races it against a tick of the same period; had the settle
    /// wait lived in the future, a tick falling inside it every time would keep the input out
    /// for good.
    pub async fn changed(&mut self) -> Result<Vec<(String, String)>, ManifestError> {
        loop {
            if let Some(due) = self.settling.as_ref().map(|(_, due)| *due) {
                tokio::time::sleep_until(due).await;
                if let Some((input, _)) = self.settling.take()
                    && self.snapshot().ok().as_ref() == Some(&input)
                {
                    self.last = Some(input.clone());
                    return Ok(input);
                }
                // Still being written: look again at the next poll.
            }
            self.poll.tick().await;
            let input = match self.snapshot() {
                Ok(input) => input,
                Err(e) if !self.failing => {
                    self.failing = true;
                    self.last = None;
                    return Err(e);
                }
                Err(_) => continue,
            };
            self.failing = false;
            if self.last.as_ref() == Some(&input) {
                continue;
            }
            // A file caught half-written can still parse (a truncated list of Services), and
            // taking it would withdraw routes for a moment. Take a change only once it reads
            // the same twice, SETTLE apart; writers that rename into place never hit this.
            self.settling = Some((input, tokio::time::Instant::now() + SETTLE));
        }
    }
}

/// Decodes manifests into objects (decode problems are configuration errors).
pub fn decode(input: &[(String, String)]) -> Result<(Resources, Vec<ConfigError>), ManifestError> {
    let mut docs = Vec::new();
    for (file, text) in input {
        docs.extend(manifest::parse(file, text)?);
    }
    Ok(Resources::from_documents(&docs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The speaker's loop races `changed` against its 100 ms tick and drops the loser. With the
    /// poll at the same period and the tick a few milliseconds behind, the tick used to fire
    /// during every settle wait: the first input was never taken and the speaker never started.
    #[tokio::test(start_paused = true)]
    async fn a_change_is_taken_although_another_timer_keeps_interrupting_the_settle_wait() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "kind: Namespace\n").unwrap();
        let mut source = ManifestSource::new(dir.path().to_path_buf(), Duration::from_millis(100));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let start = tokio::time::Instant::now();
        for _ in 0..50 {
            tokio::select! {
                // The speaker's select! picks at random; this is the order that loses the
                // first poll to the tick.
                biased;
                input = source.changed() => {
                    let input = input.unwrap();
                    assert_eq!(input.len(), 1, "{input:?}");
                    assert!(start.elapsed() < Duration::from_millis(250), "{:?}", start.elapsed());
                    return;
                }
                _ = tick.tick() => {}
            }
        }
        panic!("the input was never taken");
    }
}
