//! Who may scrape the secure listener: the caller's bearer token is authenticated by the
//! apiserver (TokenReview) and the user authorized for `get` on the request path as a
//! non-resource URL (SubjectAccessReview), as kube-rbac-proxy does for upstream MetalLB and
//! OpenShift monitoring. Decisions are cached briefly per token (by its SHA-256, never the
//! token itself) so a scrape every few seconds costs no apiserver round trip.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, Client, api::PostParams};
use sha2::{Digest, Sha256};
use tracing::warn;

/// How long an allowed decision is reused.
const ALLOWED_TTL: Duration = Duration::from_secs(30);
/// How long a refusal is reused (short: a fresh RoleBinding should work soon).
const DENIED_TTL: Duration = Duration::from_secs(5);
/// Most tokens remembered; the cache is emptied when full.
const CACHE_MAX: usize = 1024;

/// A cache key: the token's SHA-256 and the path.
type CacheKey = ([u8; 32], String);

/// The verdict on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Authenticated and authorized.
    Allowed,
    /// No token, or the apiserver does not know it (401).
    Unauthenticated,
    /// Authenticated as `user`, but not allowed (403).
    Forbidden {
        /// The user name the token belongs to.
        user: String,
    },
}

/// Authenticates and authorizes scrapes through the apiserver.
pub struct Authorizer {
    client: Client,
    cache: Mutex<HashMap<CacheKey, (Decision, Instant)>>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").finish_non_exhaustive()
    }
}

impl Authorizer {
    /// An authorizer asking the apiserver behind `client` (which needs `create` on
    /// tokenreviews and subjectaccessreviews: ClusterRole `system:auth-delegator`).
    pub fn new(client: Client) -> Self {
        Authorizer {
            client,
            cache: Mutex::default(),
        }
    }

    /// May the bearer of `authorization` (the `Authorization` header) `get` `path`?
    pub async fn check(&self, authorization: Option<&str>, path: &str) -> Decision {
        let Some(token) = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Decision::Unauthenticated;
        };
        let key: CacheKey = (Sha256::digest(token.as_bytes()).into(), path.to_string());
        if let Some((decision, at)) = self.cache.lock().expect("invariant: lock").get(&key) {
            let ttl = if *decision == Decision::Allowed {
                ALLOWED_TTL
            } else {
                DENIED_TTL
            };
            if at.elapsed() < ttl {
                return decision.clone();
            }
        }
        let Some(decision) = self.ask(token, path).await else {
            // The apiserver could not be asked: refuse, and ask again next time.
            return Decision::Unauthenticated;
        };
        let mut cache = self.cache.lock().expect("invariant: lock");
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (decision.clone(), Instant::now()));
        decision
    }

    /// TokenReview then SubjectAccessReview; `None` when the apiserver did not answer.
    async fn ask(&self, token: &str, path: &str) -> Option<Decision> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| warn!(%error, "metrics: TokenReview failed"))
            .ok()?;
        let status = reviewed.status.unwrap_or_default();
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(user)) => user,
            _ => return Some(Decision::Unauthenticated),
        };
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                uid: user.uid.clone(),
                groups: user.groups.clone(),
                extra: user.extra.clone(),
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.to_string()),
                    verb: Some("get".into()),
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answered = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access)
            .await
            .map_err(|error| warn!(%error, "metrics: SubjectAccessReview failed"))
            .ok()?;
        Some(if answered.status.is_some_and(|s| s.allowed) {
            Decision::Allowed
        } else {
            Decision::Forbidden {
                user: user.username.unwrap_or_default(),
            }
        })
    }
}
