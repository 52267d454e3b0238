//! Access control of a status API listening off loopback: every call's bearer token is
//! authenticated and the user authorized for `get` on the call's gRPC path as a non-resource URL
//! (`/metallb.status.v1.Speaker/GetNode`), by the apiserver (TokenReview + SubjectAccessReview,
//! the [`Authorizer`] of the secure metrics endpoint). A ClusterRole with
//! `nonResourceURLs: ["/metallb.status.v1.*", "/grpc.*"]`, `verbs: [get]` grants reading.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tower_layer::Layer;
use tower_service::Service;

use crate::metrics::auth::{Authorizer, Decision};

/// Puts [`Authorizer`] in front of every call.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    authorizer: Arc<Authorizer>,
}

impl AuthLayer {
    /// Checks calls with `authorizer`.
    pub fn new(authorizer: Arc<Authorizer>) -> Self {
        AuthLayer { authorizer }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authorizer: self.authorizer.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the routes.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    authorizer: Arc<Authorizer>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone may not be ready: call the one that was polled (tower's documented swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authorizer = self.authorizer.clone();
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match authorizer.check(authorization.as_deref(), &path).await {
                Decision::Allowed => inner.call(request).await,
                Decision::Unauthenticated => Ok(tonic::Status::unauthenticated(
                    "status API: a bearer token the apiserver accepts is required",
                )
                .into_http()),
                Decision::Forbidden { user } => Ok(tonic::Status::permission_denied(format!(
                    "status API: {user} may not get {path} (non-resource URL)"
                ))
                .into_http()),
            }
        })
    }
}
