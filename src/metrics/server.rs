//! The one small HTTP server of a process.
//!
//! | listener | serves | who may call |
//! |---|---|---|
//! | plain (`--metrics-plain-addr`, loopback by default) | `/metrics` `/healthz` `/readyz` | anyone who reaches it (labs, a node-local agent) |
//! | health (`--health-addr`) | `/healthz` `/readyz` | anyone (kubelet probes); never metrics |
//! | secure (`--metrics-secure-addr`, HTTPS) | `/metrics` `/healthz` `/readyz` | bearer tokens the apiserver authenticates and authorizes (`get` on the path) |
//!
//! `/healthz` answers 200 while the process serves; `/readyz` runs the [`Health`] checks
//! (200, or 503 with the failing ones).

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_rustls::{TlsAcceptor, rustls};
use tracing::{debug, info, warn};

use super::{Format, Health, auth::Authorizer, auth::Decision, encode};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not bind.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The certificate or key could not be read.
    #[error("cannot read {path}")]
    ReadTls {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A self-signed certificate could not be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key.
    #[error("invalid certificate or key: {0}")]
    Tls(#[from] rustls::Error),
}

/// The HTTPS listener's settings.
#[derive(Clone, Debug)]
pub struct Secure {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Certificate and key.
    pub tls: Arc<rustls::ServerConfig>,
    /// Who may call.
    pub authorizer: Arc<Authorizer>,
}

/// Which listeners to open.
#[derive(Clone, Debug, Default)]
pub struct ServeConfig {
    /// Plain HTTP with everything, unauthenticated.
    pub plain: Option<SocketAddr>,
    /// Plain HTTP with the probes only.
    pub health: Option<SocketAddr>,
    /// HTTPS, authenticated and authorized.
    pub secure: Option<Secure>,
}

/// The TLS settings for the secure listener: the PEM certificate chain and key at
/// `cert`/`key` (e.g. an OpenShift service serving certificate), or a self-signed certificate
/// for `names` made at start.
pub fn tls_config(
    files: Option<(&Path, &Path)>,
    names: Vec<String>,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let (certs, key) = match files {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|source| ServeError::ReadTls {
                    path: cert.to_path_buf(),
                    source,
                })?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|source| ServeError::ReadTls {
                path: key.to_path_buf(),
                source,
            })?;
            (certs, key)
        }
        None => {
            let generated = rcgen::generate_simple_self_signed(names)?;
            let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
                .map_err(|e| ServeError::Tls(rustls::Error::General(e.into())))?;
            (vec![generated.cert.der().clone()], key)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// What a listener exposes.
#[derive(Clone)]
enum Exposure {
    Plain,
    Probes,
    Secure(Arc<Authorizer>),
}

struct Shared {
    registry: Arc<Registry>,
    health: Health,
}

/// Binds every configured listener (an error names the address), then serves them on the
/// current runtime until the returned tasks are aborted.
pub async fn serve(
    config: ServeConfig,
    registry: Arc<Registry>,
    health: Health,
) -> Result<Vec<JoinHandle<()>>, ServeError> {
    let shared = Arc::new(Shared { registry, health });
    let mut listeners = Vec::new();
    if let Some(addr) = config.plain {
        listeners.push((bind(addr).await?, Exposure::Plain, None));
    }
    if let Some(addr) = config.health {
        listeners.push((bind(addr).await?, Exposure::Probes, None));
    }
    if let Some(secure) = config.secure {
        let acceptor = TlsAcceptor::from(secure.tls);
        listeners.push((
            bind(secure.addr).await?,
            Exposure::Secure(secure.authorizer),
            Some(acceptor),
        ));
    }
    Ok(listeners
        .into_iter()
        .map(|(listener, exposure, tls)| {
            if let Ok(addr) = listener.local_addr() {
                info!(%addr, tls = tls.is_some(), "metrics: listening");
            }
            tokio::spawn(accept_loop(listener, exposure, tls, shared.clone()))
        })
        .collect())
}

/// [`serve`] on a thread of its own with a one-thread runtime, for processes without one
/// (the layer 2 speaker). Returns once the listeners are bound.
pub fn serve_on_thread(
    config: ServeConfig,
    registry: Arc<Registry>,
    health: Health,
) -> Result<(), ServeError> {
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = bound_tx.send(Err(ServeError::Bind {
                        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                        source: e,
                    }));
                    return;
                }
            };
            runtime.block_on(async move {
                match serve(config, registry, health).await {
                    Ok(tasks) => {
                        let _ = bound_tx.send(Ok(()));
                        futures::future::join_all(tasks).await;
                    }
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                    }
                }
            });
        });
    if let Err(source) = spawned {
        return Err(ServeError::Bind {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        });
    }
    bound_rx.recv().unwrap_or(Ok(()))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

async fn accept_loop(
    listener: TcpListener,
    exposure: Exposure,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let exposure = exposure.clone();
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let exposure = exposure.clone();
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(req, &exposure, &shared).await) }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let served = match tls {
                None => http.serve_connection(TokioIo::new(stream), service).await,
                Some(tls) => {
                    match tokio::time::timeout(Duration::from_secs(10), tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            http.serve_connection(TokioIo::new(stream), service).await
                        }
                        Ok(Err(error)) => {
                            debug!(%peer, %error, "metrics: TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            if let Err(error) = served {
                debug!(%peer, %error, "metrics: connection ended with an error");
            }
        });
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn handle(
    req: Request<Incoming>,
    exposure: &Exposure,
    shared: &Shared,
) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    let path = req.uri().path();
    if let Exposure::Secure(authorizer) = exposure {
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match authorizer.check(authorization, path).await {
            Decision::Allowed => {}
            Decision::Unauthenticated => {
                return text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            }
            Decision::Forbidden { user } => {
                return text(
                    StatusCode::FORBIDDEN,
                    format!("Forbidden (user={user}, verb=get, nonResourceURL={path})\n"),
                );
            }
        }
    }
    match path {
        "/healthz" | "/livez" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match shared.health.ready() {
            Ok(report) => text(StatusCode::OK, format!("{report}ok\n")),
            Err(report) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{report}not ready\n"),
            ),
        },
        "/metrics" if !matches!(exposure, Exposure::Probes) => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            match encode(&shared.registry, format) {
                Ok(body) => {
                    let mut response = text(StatusCode::OK, body);
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static(format.content_type()),
                    );
                    response
                }
                Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;
    use crate::metrics::registry;

    fn get(addr: SocketAddr, path: &str, accept: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nAccept: {accept}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn free_addr() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_serves_metrics_and_probes_health_only_serves_probes() {
        let mut r = registry();
        let k8s = crate::metrics::k8s_client::K8sClientMetrics::register(&mut r);
        let health = Health::default();
        let loaded = k8s.clone();
        health.add_check("config", move || loaded.loaded());
        let (plain, probes) = (free_addr(), free_addr());
        let tasks = serve(
            ServeConfig {
                plain: Some(plain),
                health: Some(probes),
                secure: None,
            },
            Arc::new(r),
            health,
        )
        .await
        .unwrap();
        let blocking = |addr, path: &'static str, accept: &'static str| {
            tokio::task::spawn_blocking(move || get(addr, path, accept))
        };
        let om = blocking(
            plain,
            "/metrics",
            "application/openmetrics-text;version=1.0.0",
        )
        .await
        .unwrap();
        assert!(om.starts_with("HTTP/1.0 200"), "{om}");
        assert!(
            om.contains("content-type: application/openmetrics-text"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"), "{om}");
        let text = blocking(plain, "/metrics", "text/plain").await.unwrap();
        assert!(text.contains("text/plain; version=0.0.4"), "{text}");
        assert!(
            text.contains("metallb_k8s_client_config_loaded_bool 0\n"),
            "{text}"
        );
        let not_ready = blocking(probes, "/readyz", "*/*").await.unwrap();
        assert!(not_ready.starts_with("HTTP/1.0 503"), "{not_ready}");
        assert!(not_ready.contains("[-]config failed"), "{not_ready}");
        k8s.config_ok();
        let ready = blocking(probes, "/readyz", "*/*").await.unwrap();
        assert!(ready.starts_with("HTTP/1.0 200"), "{ready}");
        assert!(
            blocking(probes, "/healthz", "*/*")
                .await
                .unwrap()
                .starts_with("HTTP/1.0 200")
        );
        let hidden = blocking(probes, "/metrics", "*/*").await.unwrap();
        assert!(hidden.starts_with("HTTP/1.0 404"), "{hidden}");
        for t in tasks {
            t.abort();
        }
    }

    #[test]
    fn self_signed_certificate_when_no_files() {
        let config = tls_config(None, vec!["localhost".into()]).unwrap();
        assert!(config.alpn_protocols.is_empty());
        let missing = tls_config(
            Some((Path::new("/nonexistent.crt"), Path::new("/nonexistent.key"))),
            vec![],
        );
        assert!(matches!(missing, Err(ServeError::ReadTls { .. })));
    }
}
