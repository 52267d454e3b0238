//! Watching: one kube-runtime reflector per kind, each feeding a [`Store`] and telling the
//! reconciler what changed.
//!
//! ```text
//!  watcher(Api<K>) ─► reflector(Store<K>) ─► Input::Changed(kind, key) / Input::Synced(kind) ─► mpsc
//! ```
//!
//! `Synced` comes after every complete list: the first one marks the kind ready, later ones
//! (after a watch had to re-list) mean "anything of this kind may have changed".

use std::{fmt::Debug, hash::Hash};

use futures::{FutureExt, StreamExt, future::BoxFuture};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        WatchStreamExt,
        reflector::{self, Store, store::Writer},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::core::service::ServiceKey;

/// What a watch reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// An object of `kind` was created, changed or deleted.
    Changed(Kind, ServiceKey),
    /// A full list of `kind` has been read into its store.
    Synced(Kind),
    /// The status writer finished a write.
    Written(crate::k8s::status::Written),
}

/// The kinds the controller watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Services, all namespaces.
    Service,
    /// Namespaces (labels for `serviceAllocation.namespaceSelectors`).
    Namespace,
    /// Nodes (node selectors in the config checks).
    Node,
    /// EndpointSlices (the speaker: which nodes have endpoints).
    EndpointSlice,
    /// Any `metallb.io` config kind in MetalLB's namespace.
    Config(&'static str),
}

impl Kind {
    /// Whether a change of this kind means rebuilding the config.
    pub fn is_config(self) -> bool {
        matches!(self, Kind::Config(_) | Kind::Node)
    }
}

/// Runs one reflector until the receiver is gone. Errors are logged; the watcher retries with
/// backoff.
pub async fn run<K>(api: Api<K>, writer: Writer<K>, kind: Kind, tx: mpsc::UnboundedSender<Input>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        let input = match event {
            Ok(watcher::Event::Apply(obj) | watcher::Event::Delete(obj)) => Input::Changed(
                kind,
                ServiceKey::new(obj.namespace().unwrap_or_default(), obj.name_any()),
            ),
            Ok(watcher::Event::InitDone) => Input::Synced(kind),
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
            Err(error) => {
                tracing::warn!(?kind, %error, "watch failed, retrying");
                continue;
            }
        };
        if tx.send(input).is_err() {
            return;
        }
    }
}

/// Opens watches: for each kind a store for the readers and a reflector task, all reporting to
/// one channel. The caller drives the tasks ([`Watches::into_tasks`]).
pub struct Watches {
    tx: mpsc::UnboundedSender<Input>,
    tasks: Vec<BoxFuture<'static, ()>>,
}

impl Watches {
    /// Watches that report their changes to `tx`.
    pub fn new(tx: mpsc::UnboundedSender<Input>) -> Self {
        Watches {
            tx,
            tasks: Vec::new(),
        }
    }

    /// Watches `api`, reporting its changes as `kind`; the store fills once the task runs.
    pub fn store<K>(&mut self, api: Api<K>, kind: Kind) -> Store<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone,
    {
        let (store, writer) = reflector::store();
        self.tasks
            .push(run(api, writer, kind, self.tx.clone()).boxed());
        store
    }

    /// The reflector tasks opened so far: each runs until the channel's receiver is gone.
    pub fn into_tasks(self) -> Vec<BoxFuture<'static, ()>> {
        self.tasks
    }
}
