//! `metallb webhook`: the admission and conversion webhooks.
//!
//! ```text
//!  apiserver ──TLS──► server (rustls, cert swapped in place) ──► Handler
//!                                                                 ├─ /validate: admission::judge(cache snapshot, object)
//!                                                                 └─ /convert:  api::conversion (BGPPeer v1beta1 <-> v1beta2)
//!  cache:    reflectors on the metallb.io kinds, Nodes, Services' metadata
//!  rotation: CA + serving cert in a Secret, caBundle into the webhook configuration and the
//!            BGPPeer CRD's conversion, renewal before expiry (or OpenShift's service CA)
//! ```
//!
//! Admission judges against the same config loader the controller and the speakers use, so
//! the three can never disagree; denials read `Kind/name: field: message`. A create or update
//! is judged against the objects of its kind's [`Scope`] only: the other scopes' checks cannot
//! see it, and skipping them is most of the webhook's speed.

pub mod admission;
pub mod cache;
pub mod certs;
pub mod configuration;
pub mod rotation;
pub mod server;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use kube::{
    Client,
    core::{
        DynamicObject, Status,
        admission::{self as kube_admission, AdmissionRequest, AdmissionResponse, AdmissionReview},
        conversion::{ConversionRequest, ConversionResponse, ConversionReview},
    },
};
use serde_json::Value;

use crate::{
    api::{bgp_peer, conversion},
    config::{self, Resources, scope::Scope},
};
use admission::{Operation, Question};

/// Where the webhook gets the live configuration from (the cache, or fixed objects in
/// benchmarks and tests).
pub trait Snapshot: Send + Sync {
    /// The configuration objects and Nodes; with `services`, also Services' metadata.
    fn resources(&self, services: bool) -> Resources;
}

impl Snapshot for cache::Cache {
    fn resources(&self, services: bool) -> Resources {
        cache::Cache::resources(self, services)
    }
}

impl Snapshot for Resources {
    fn resources(&self, _services: bool) -> Resources {
        self.clone()
    }
}

/// How long an admitted write is added to the cache's view if the cache has not seen it yet.
const RECENT_TTL: Duration = Duration::from_secs(5);

/// Answers AdmissionReviews and ConversionReviews (JSON in, JSON out).
pub struct Handler {
    snapshot: Box<dyn Snapshot>,
    namespace: String,
    /// Writes admitted in the last [`RECENT_TTL`]: `kubectl apply` of two conflicting objects
    /// sends the second before the watch has delivered the first, so the cache alone would
    /// admit both.
    recent: Mutex<Vec<Admitted>>,
    /// The problems of the last view judged against in each scope, by its
    /// [`admission::fingerprint`]: while the cache does not change, each admission builds the
    /// configuration once, not twice.
    before: Mutex<HashMap<Option<Scope>, Remembered>>,
}

/// The problems of a view, and its [`admission::fingerprint`].
type Remembered = (u64, Vec<config::ConfigError>);

/// A create or update the webhook admitted.
struct Admitted {
    at: Instant,
    kind: String,
    name: String,
    /// The object as admitted (its resourceVersion is the one it replaces, if any).
    object: Value,
}

impl Handler {
    /// A handler judging against `snapshot`, for MetalLB in `namespace`.
    pub fn new(snapshot: Box<dyn Snapshot>, namespace: impl Into<String>) -> Handler {
        Handler {
            snapshot,
            namespace: namespace.into(),
            recent: Mutex::new(Vec::new()),
            before: Mutex::new(HashMap::new()),
        }
    }

    /// An AdmissionReview answered. Only a body that is not a review is an error.
    pub fn admission(&self, body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
        let request: Result<AdmissionRequest<DynamicObject>, _> = review.try_into();
        let response = match request {
            Ok(request) => self.admit(&request),
            Err(error) => AdmissionResponse::invalid(error),
        };
        serde_json::to_vec(&response.into_review())
    }

    fn admit(&self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let operation = match request.operation {
            kube_admission::Operation::Create => Operation::Create,
            kube_admission::Operation::Update => Operation::Update,
            kube_admission::Operation::Delete => Operation::Delete,
            kube_admission::Operation::Connect => return AdmissionResponse::from(request),
        };
        let object = match request
            .object
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
        {
            Ok(object) => object,
            Err(error) => return AdmissionResponse::invalid(error),
        };
        let question = Question {
            operation,
            kind: &request.kind.kind,
            name: &request.name,
            object: object.as_ref(),
        };
        let (current, overlaid) =
            self.with_recent(self.snapshot.resources(operation == Operation::Delete));
        // A write is judged against its kind's scope only: the checks of the other scopes
        // cannot see it (config::scope), and building them is most of an admission's time.
        let scope = Scope::of_kind(question.kind).filter(|_| operation != Operation::Delete);
        let current = match scope {
            Some(scope) => scope.take(current),
            None => current,
        };
        let verdict = admission::judge_with(current, &self.namespace, &question, |current| {
            // Overlaid writes keep the resourceVersion they replace: not in the fingerprint.
            if overlaid {
                admission::load_problems(current, &self.namespace).1
            } else {
                self.problems_of(scope, current)
            }
        });
        if verdict.allowed() && !request.dry_run {
            self.remember(operation, &request.kind.kind, &request.name, object);
        }
        let mut response = AdmissionResponse::from(request);
        if !verdict.allowed() {
            let message = verdict.message();
            tracing::info!(
                kind = %request.kind.kind,
                name = %request.name,
                operation = ?operation,
                %message,
                "denied"
            );
            response.allowed = false;
            response.result = Status::failure(&message, "Forbidden").with_code(403);
        }
        if !verdict.warnings.is_empty() {
            response.warnings = Some(verdict.warnings);
        }
        response
    }

    /// The problems of `current` (the objects of `scope`), remembered by fingerprint.
    fn problems_of(&self, scope: Option<Scope>, current: &Resources) -> Vec<config::ConfigError> {
        let key = admission::fingerprint(current);
        if let Ok(memo) = self.before.lock()
            && let Some((fingerprint, problems)) = memo.get(&scope)
            && *fingerprint == key
        {
            return problems.clone();
        }
        let problems = admission::load_problems(current, &self.namespace).1;
        if let Ok(mut memo) = self.before.lock() {
            memo.insert(scope, (key, problems.clone()));
        }
        problems
    }

    /// Records an admitted write (or forgets the object on an admitted delete).
    fn remember(&self, operation: Operation, kind: &str, name: &str, object: Option<Value>) {
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        recent.retain(|a| !(a.kind == kind && a.name == name));
        if let (Operation::Create | Operation::Update, Some(object)) = (operation, object) {
            recent.push(Admitted {
                at: Instant::now(),
                kind: kind.to_string(),
                name: name.to_string(),
                object,
            });
        }
    }

    /// `current` plus the recently admitted writes it does not show yet: a created object it
    /// lacks, an updated one it still has in the version the update replaced.
    /// Also says whether any write was added.
    fn with_recent(&self, mut current: Resources) -> (Resources, bool) {
        let Ok(mut recent) = self.recent.lock() else {
            return (current, false);
        };
        // Once the cache shows the write, or after the TTL, the entry is dropped.
        recent.retain(|admitted| {
            let replaced = admitted
                .object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str);
            let cached = admission::resource_version(&current, &admitted.kind, &admitted.name);
            let unseen = match cached {
                None => replaced.is_none(),
                Some(version) => replaced.is_some() && version.as_deref() == replaced,
            };
            unseen && admitted.at.elapsed() < RECENT_TTL
        });
        for admitted in recent.iter() {
            let _ = admission::splice(
                &mut current,
                &admitted.kind,
                &admitted.name,
                &admitted.object,
            );
        }
        let overlaid = !recent.is_empty();
        (current, overlaid)
    }

    /// A ConversionReview answered. Only a body that is not a review is an error.
    pub fn conversion(&self, body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
        let review: ConversionReview = serde_json::from_slice(body)?;
        let response = match ConversionRequest::from_review(review) {
            Ok(request) => {
                let converted: Result<Vec<Value>, String> = request
                    .objects
                    .iter()
                    .map(|object| convert_object(object, &request.desired_api_version))
                    .collect();
                match converted {
                    Ok(objects) => ConversionResponse::for_request(request).success(objects),
                    Err(message) => ConversionResponse::for_request(request)
                        .failure(Status::failure(&message, "ConversionFailed")),
                }
            }
            Err(error) => {
                ConversionResponse::invalid(Status::failure(&error.to_string(), "InvalidRequest"))
            }
        };
        serde_json::to_vec(&response.into_review())
    }
}

/// One object in `desired` (`metallb.io/v1beta1` or `/v1beta2`); only BGPPeer has two
/// versions that differ.
pub fn convert_object(object: &Value, desired: &str) -> Result<Value, String> {
    let from = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if from == desired {
        return Ok(object.clone());
    }
    let fail = |e: &dyn std::fmt::Display| format!("{kind} {from} -> {desired}: {e}");
    match (kind, from, desired) {
        ("BGPPeer", "metallb.io/v1beta1", "metallb.io/v1beta2") => {
            let old: bgp_peer::v1beta1::BGPPeer =
                serde_json::from_value(object.clone()).map_err(|e| fail(&e))?;
            let new = conversion::to_v1beta2(old).map_err(|e| fail(&e))?;
            serde_json::to_value(new).map_err(|e| fail(&e))
        }
        ("BGPPeer", "metallb.io/v1beta2", "metallb.io/v1beta1") => {
            let new: bgp_peer::v1beta2::BGPPeer =
                serde_json::from_value(object.clone()).map_err(|e| fail(&e))?;
            serde_json::to_value(conversion::to_v1beta1(new)).map_err(|e| fail(&e))
        }
        // AddressPool v1alpha1 and v1beta1 have one shape.
        ("AddressPool", _, _) => {
            let mut converted = object.clone();
            converted["apiVersion"] = desired.into();
            Ok(converted)
        }
        _ => Err(fail(&"no conversion between these versions")),
    }
}

/// What `metallb webhook` runs with.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// MetalLB's namespace (its config objects and the webhook's Secret).
    pub namespace: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Certificates and how the apiserver reaches the webhook.
    pub rotation: rotation::Rotation,
}

/// Why the webhook stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The listening socket could not be opened or accepting failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A task that runs forever ended.
    #[error("{0} ended")]
    TaskEnded(&'static str),
}

/// Runs the webhook until a task fails: caches first (no answer before they are complete),
/// then certificates, then the server.
pub async fn run(client: Client, config: WebhookConfig) -> Result<(), WebhookError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| WebhookError::Listen {
            addr: config.listen,
            source,
        })?;
    let (cache, watches) = cache::Cache::new(&client, &config.namespace);
    let mut tasks: FuturesUnordered<futures::future::BoxFuture<'static, &'static str>> = watches
        .into_iter()
        .map(|w| w.map(|()| "watch").boxed())
        .collect();
    // Cancel safe: `tasks.next()` leaves unfinished watches in the set (they are polled again
    // below), and `cache.ready()` is dropped only when we return.
    tokio::select! {
        () = cache.ready() => {}
        Some(task) = tasks.next() => return Err(WebhookError::TaskEnded(task)),
    }
    tracing::info!("caches synced");
    let resolver = Arc::new(server::Resolver::default());
    // The first round runs before serving so that the first handshake has a certificate.
    if let Err(error) = config.rotation.round(&client, &resolver).await {
        tracing::warn!(%error, "first certificate round failed, retrying");
    }
    tasks.push(
        config
            .rotation
            .clone()
            .run(client.clone(), resolver.clone())
            .map(|()| "certificate rotation")
            .boxed(),
    );
    let handler = Arc::new(Handler::new(Box::new(cache), config.namespace.clone()));
    let addr = config.listen;
    tasks.push(
        async move {
            if let Err(error) = server::serve(listener, resolver, handler).await {
                tracing::error!(%addr, %error, "webhook server stopped");
            }
        }
        .map(|()| "server")
        .boxed(),
    );
    tracing::info!(%addr, "webhook serving");
    match tasks.next().await {
        Some(task) => Err(WebhookError::TaskEnded(task)),
        None => Ok(()),
    }
}
