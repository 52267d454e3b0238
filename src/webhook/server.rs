//! The HTTPS server: rustls with a certificate that can be swapped while serving, hyper HTTP/1.1,
//! three routes.
//!
//! ```text
//!  POST /validate  AdmissionReview  -> admission::judge against the cache
//!  POST /convert   ConversionReview -> BGPPeer v1beta1 <-> v1beta2
//!  GET  /healthz   200 once a certificate is loaded (readiness)
//! ```

use std::{
    convert::Infallible,
    sync::{Arc, RwLock},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use rustls::{
    ServerConfig,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{
    Handler,
    certs::Pair,
    configuration::{CONVERT_PATH, VALIDATE_PATH},
};

/// Largest request body accepted (a ConversionReview of a long BGPPeer list stays far below).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The certificate rustls serves, replaced in place on rotation.
#[derive(Debug, Default)]
pub struct Resolver {
    current: RwLock<Option<(Arc<CertifiedKey>, String)>>,
}

impl Resolver {
    /// Serves `key` (made from `pair`) from now on; a no-op when it is already served.
    pub fn set(&self, key: Arc<CertifiedKey>, pair: &Pair) {
        let Ok(mut current) = self.current.write() else {
            return;
        };
        if current.as_ref().map(|(_, pem)| pem) != Some(&pair.cert_pem) {
            tracing::info!("serving a new certificate");
            *current = Some((key, pair.cert_pem.clone()));
        }
    }

    /// PEM of the certificate being served, if any.
    pub fn serving_pem(&self) -> Option<String> {
        self.current
            .read()
            .ok()?
            .as_ref()
            .map(|(_, pem)| pem.clone())
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .ok()?
            .as_ref()
            .map(|(key, _)| key.clone())
    }
}

/// Accepts TLS connections on `listener` forever.
pub async fn serve(
    listener: TcpListener,
    resolver: Arc<Resolver>,
    handler: Arc<Handler>,
) -> std::io::Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    // Connections belong to the server: when it is dropped (shutdown), so are they, and the
    // apiserver's keep-alive connections do not outlive it.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = listener.accept().await?;
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let resolver = resolver.clone();
        connections.spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(error) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
            };
            let service = service_fn(move |request| {
                let handler = handler.clone();
                let resolver = resolver.clone();
                async move { Ok::<_, Infallible>(route(&handler, &resolver, request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

async fn route(
    handler: &Handler,
    resolver: &Resolver,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/healthz") => {
            let ready = resolver.serving_pem().is_some();
            reply(
                if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                Bytes::from_static(b"ok"),
            )
        }
        (&Method::POST, VALIDATE_PATH | CONVERT_PATH) => {
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(body) => body.to_bytes(),
                Err(error) => {
                    return reply(StatusCode::BAD_REQUEST, Bytes::from(error.to_string()));
                }
            };
            let answer = if path == VALIDATE_PATH {
                handler.admission(&body)
            } else {
                handler.conversion(&body)
            };
            match answer {
                Ok(json) => {
                    let mut response = reply(StatusCode::OK, Bytes::from(json));
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    response
                }
                Err(error) => reply(StatusCode::BAD_REQUEST, Bytes::from(error.to_string())),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, Bytes::from_static(b"not found")),
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
