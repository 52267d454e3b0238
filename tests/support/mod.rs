//! A real control plane for integration tests: etcd and kube-apiserver (built by
//! `hack/k8s-bin.sh`) on free loopback ports, with generated certificates, a service-account key
//! pair and a bearer token with cluster-admin rights; our CRDs installed; a [`kube::Client`].
//!
//! ```text
//!  Cluster::start()
//!   ├── openssl: CA, serving cert (SAN 127.0.0.1 + extra IPs), SA key pair, random token
//!   ├── etcd            127.0.0.1:<client>/<peer>   wait GET /health
//!   ├── kube-apiserver  <bind>:<port>               wait GET /readyz (curl, our CA + token)
//!   ├── kubeconfig      <dir>/kubeconfig            for subprocesses and kubectl
//!   └── CRDs            deploy/crds/metallb.io.yaml wait for Established
//!  Drop: SIGTERM apiserver, then etcd (SIGKILL after 10 s), remove the directory
//! ```
//!
//! Tests that start a cluster are `#[ignore = "needs METALLB_K8S (kube-apiserver)"]`, so a plain
//! `cargo test` lists them as ignored; `cargo test -- --include-ignored` (hack/test) runs them,
//! and then missing binaries are a failure, never a skip. Binaries are looked up in
//! `$K8S_BIN_DIR`, `$KUBEBUILDER_ASSETS`, `$CARGO_TARGET_DIR/k8s-bin`, then `target/k8s-bin`.
//!
//! Every child runs under a `sh` guard that kills it when the test process's pipe closes, so
//! even a test binary killed with SIGKILL leaves no etcd or apiserver behind.

#![allow(dead_code)]

pub mod controller;
pub mod kubectl;
pub mod node;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config,
    api::PostParams,
    config::{KubeConfigOptions, Kubeconfig},
};

/// The namespace MetalLB's config lives in, created by [`Cluster::start`].
pub const METALLB_NAMESPACE: &str = "metallb-system";

/// A running etcd + kube-apiserver pair.
pub struct Cluster {
    /// Temp directory with certs, data and logs.
    pub dir: PathBuf,
    /// `https://<ip>:<port>` of the apiserver, as clients on the host reach it.
    pub server: String,
    /// Kubeconfig file for this cluster (bearer token, our CA).
    pub kubeconfig: PathBuf,
    /// An admin client.
    pub client: Client,
    etcd: Option<Child>,
    apiserver: Option<Child>,
    keep: bool,
    /// One cluster at a time per test binary: two cores do not start several quickly.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// ServiceAccounts of `metallb-system` that get a token (see [`Cluster::kubeconfig_as`]).
pub const SERVICE_ACCOUNTS: [&str; 3] = ["controller", "speaker", "metallb-operator"];

/// Options of [`Cluster::start_with`].
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Address the apiserver binds to and clients use; `None` is 127.0.0.1. Give an address
    /// reachable from network namespaces (the lab's host port) for components inside them.
    pub bind: Option<String>,
    /// Extra IP SANs for the serving certificate (addresses clients in namespaces use).
    pub extra_ips: Vec<String>,
    /// Another kube-apiserver binary (an older version, `hack/k8s-old-bin.sh`); etcd stays.
    pub apiserver: Option<PathBuf>,
    /// Serve pods of a real node (`support::node`): the ServiceAccount admission plugin gives
    /// every pod its token volume, and the serving certificate names the `kubernetes`
    /// Service's ClusterIP ([`KUBERNETES_SERVICE_IP`]), which in-cluster clients dial.
    pub pods: bool,
}

/// ClusterIP of the `kubernetes` Service (the first address of `--service-cluster-ip-range`).
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

impl ClusterOptions {
    /// An apiserver that listens on `addr` only, with `addr` in its certificate: for components
    /// inside network namespaces (the lab's host port).
    pub fn listening_on(addr: &str) -> ClusterOptions {
        ClusterOptions {
            bind: Some(addr.into()),
            extra_ips: vec![addr.into()],
            ..ClusterOptions::default()
        }
    }
}

impl Cluster {
    /// Starts a cluster on loopback; panics when it cannot.
    pub async fn start() -> Cluster {
        Cluster::start_with(ClusterOptions::default()).await
    }

    /// Starts a cluster; panics when it cannot (three attempts, new ports each time).
    pub async fn start_with(options: ClusterOptions) -> Cluster {
        let bin = bin_dir();
        for name in ["etcd", "kube-apiserver"] {
            assert!(
                bin.join(name).is_file(),
                "this cluster test needs {}: run hack/k8s-bin.sh (or set K8S_BIN_DIR)",
                bin.join(name).display()
            );
        }
        let mut last = String::new();
        let mut serial = Some(SERIAL.lock().await);
        for _ in 0..3 {
            match Cluster::try_start(&bin, &options, &mut serial).await {
                Ok(c) => return c,
                Err(e) => {
                    if serial.is_none() {
                        serial = Some(SERIAL.lock().await);
                    }
                    eprintln!("cluster start failed, retrying: {e}");
                    last = e;
                }
            }
        }
        panic!("could not start etcd + kube-apiserver: {last}");
    }

    async fn try_start(
        bin: &Path,
        options: &ClusterOptions,
        serial: &mut Option<tokio::sync::MutexGuard<'static, ()>>,
    ) -> Result<Cluster, String> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("metallb-k8s-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        let token = random_hex(16);
        let mut sans = vec!["IP:127.0.0.1".to_string()];
        for ip in &options.extra_ips {
            sans.push(format!("IP:{ip}"));
        }
        if options.pods {
            sans.push(format!("IP:{KUBERNETES_SERVICE_IP}"));
        }
        certs(&dir, &sans)?;
        // The admin first; then one token per MetalLB ServiceAccount, so a component can run
        // with exactly the rights deploy/rbac/ gives it.
        let mut tokens = format!("{token},admin,admin-uid,\"system:masters\"\n");
        for sa in SERVICE_ACCOUNTS {
            tokens.push_str(&format!(
                "{},system:serviceaccount:{METALLB_NAMESPACE}:{sa},{sa}-uid,\"system:serviceaccounts,system:serviceaccounts:{METALLB_NAMESPACE},system:authenticated\"\n",
                random_hex(16)
            ));
        }
        std::fs::write(dir.join("tokens.csv"), tokens).map_err(|e| e.to_string())?;

        let [etcd_client, etcd_peer, api_port] = free_ports::<3>();
        // Where clients reach the apiserver: its bind address, or loopback when it binds all.
        let host = match options.bind.as_deref() {
            None | Some("0.0.0.0") => "127.0.0.1".to_string(),
            Some(ip) => ip.to_string(),
        };
        let mut cluster = Cluster {
            dir: dir.clone(),
            server: format!("https://{host}:{api_port}"),
            kubeconfig: dir.join("kubeconfig"),
            client: Client::try_from(Config::new("https://127.0.0.1:1".parse().unwrap()))
                .map_err(|e| e.to_string())?,
            etcd: None,
            apiserver: None,
            keep: std::env::var("METALLB_K8S_KEEP").as_deref() == Ok("1"),
            _serial: serial.take().expect("invariant: guard present"),
        };

        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        cluster.etcd = Some(guarded(
            &bin.join("etcd"),
            &[
                "--name=test".into(),
                format!("--data-dir={}", dir.join("etcd-data").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=test={peer_url}"),
                "--unsafe-no-fsync".into(),
                "--log-level=warn".into(),
            ],
            &dir.join("etcd.log"),
        )?);
        wait_for("etcd /health", Duration::from_secs(20), || {
            http_get(etcd_client, "/health").is_some_and(|b| b.contains("\"health\":\"true\""))
        })
        .map_err(|e| format!("{e}\n{}", tail(&dir.join("etcd.log"))))?;

        let bind = options.bind.clone().unwrap_or_else(|| "127.0.0.1".into());
        let advertise = if bind == "0.0.0.0" {
            options
                .extra_ips
                .first()
                .cloned()
                .unwrap_or_else(|| "127.0.0.1".into())
        } else {
            bind.clone()
        };
        let d = |f: &str| dir.join(f).display().to_string();
        let apiserver = options
            .apiserver
            .clone()
            .unwrap_or_else(|| bin.join("kube-apiserver"));
        cluster.apiserver = Some(guarded(
            &apiserver,
            &[
                format!("--bind-address={bind}"),
                format!("--advertise-address={advertise}"),
                format!("--secure-port={api_port}"),
                format!("--tls-cert-file={}", d("apiserver.crt")),
                format!("--tls-private-key-file={}", d("apiserver.key")),
                format!("--etcd-servers={etcd_url}"),
                // Big enough for the 1,000-Service restart test; dual-stack for the seed's
                // RequireDualStack Service.
                "--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/108".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", d("sa.pub")),
                format!("--service-account-signing-key-file={}", d("sa.key")),
                format!("--token-auth-file={}", d("tokens.csv")),
                "--authorization-mode=RBAC".into(),
                // Without a kube-controller-manager no ServiceAccount exists, and the plugin
                // would reject every pod; with a node (`pods`) it mounts their tokens.
                if options.pods {
                    "--enable-admission-plugins=ServiceAccount".into()
                } else {
                    "--disable-admission-plugins=ServiceAccount".into()
                },
                // The node registers a name no DNS knows: exec and logs go to its address.
                "--kubelet-preferred-address-types=InternalIP".into(),
                "--endpoint-reconciler-type=none".into(),
                // Tests create thousands of objects quickly; the defaults throttle that.
                "--max-requests-inflight=1000".into(),
                "--max-mutating-requests-inflight=1000".into(),
                "--enable-priority-and-fairness=false".into(),
            ],
            &dir.join("apiserver.log"),
        )?);
        let ca = d("ca.crt");
        let auth = format!("Authorization: Bearer {token}");
        let readyz = format!("https://{host}:{api_port}/readyz");
        wait_for("kube-apiserver /readyz", Duration::from_secs(60), || {
            Command::new("curl")
                .args([
                    "-sf",
                    "--max-time",
                    "2",
                    "--cacert",
                    &ca,
                    "-H",
                    &auth,
                    &readyz,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map_err(|e| format!("{e}\n{}", tail(&dir.join("apiserver.log"))))?;

        std::fs::write(
            &cluster.kubeconfig,
            kubeconfig_yaml(&cluster.server, &dir.join("ca.crt"), &token),
        )
        .map_err(|e| e.to_string())?;
        cluster.client = client_for(&cluster.kubeconfig).await;
        install_crds(&cluster.client).await?;
        cluster.create_namespace(METALLB_NAMESPACE).await;
        eprintln!(
            "cluster up in {:.1}s: {} (kubeconfig {})",
            started.elapsed().as_secs_f64(),
            cluster.server,
            cluster.kubeconfig.display()
        );
        Ok(cluster)
    }

    /// Creates a namespace (labels optional); panics on failure.
    pub async fn create_namespace(&self, name: &str) {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
        }))
        .unwrap();
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    }

    /// A kubeconfig file whose server is `https://<ip>:<port>` (for clients in a network
    /// namespace), written next to the default one.
    pub fn kubeconfig_for(&self, ip: &str) -> PathBuf {
        let port = self.server.rsplit(':').next().unwrap();
        let path = self.dir.join(format!("kubeconfig-{ip}"));
        let token = std::fs::read_to_string(self.dir.join("tokens.csv")).unwrap();
        let token = token.split(',').next().unwrap();
        std::fs::write(
            &path,
            kubeconfig_yaml(
                &format!("https://{ip}:{port}"),
                &self.dir.join("ca.crt"),
                token,
            ),
        )
        .unwrap();
        path
    }

    /// A kubeconfig authenticating as ServiceAccount `metallb-system/<sa>` (one of
    /// [`SERVICE_ACCOUNTS`]): only the RBAC rules bound to it apply.
    pub fn kubeconfig_as(&self, sa: &str) -> PathBuf {
        self.write_sa_kubeconfig(sa, &self.server, &format!("kubeconfig-{sa}"))
    }

    /// [`Cluster::kubeconfig_as`] with server `https://<ip>:<port>`: for a component inside a
    /// network namespace, where 127.0.0.1 is the namespace's own loopback. The apiserver must
    /// listen on `ip` and have it as a SAN ([`ClusterOptions`]).
    pub fn kubeconfig_as_via(&self, sa: &str, ip: &str) -> PathBuf {
        let port = self.server.rsplit(':').next().unwrap();
        self.write_sa_kubeconfig(
            sa,
            &format!("https://{ip}:{port}"),
            &format!("kubeconfig-{sa}-{ip}"),
        )
    }

    fn write_sa_kubeconfig(&self, sa: &str, server: &str, file: &str) -> PathBuf {
        let tokens = std::fs::read_to_string(self.dir.join("tokens.csv")).unwrap();
        let user = format!("system:serviceaccount:{METALLB_NAMESPACE}:{sa}");
        let token = tokens
            .lines()
            .find(|l| l.split(',').nth(1) == Some(user.as_str()))
            .and_then(|l| l.split(',').next())
            .unwrap_or_else(|| panic!("no token for {user}"));
        let path = self.dir.join(file);
        std::fs::write(
            &path,
            kubeconfig_yaml(server, &self.dir.join("ca.crt"), token),
        )
        .unwrap();
        path
    }

    /// The end of the apiserver log, for failure messages.
    pub fn apiserver_log_tail(&self) -> String {
        tail(&self.dir.join("apiserver.log"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in [self.apiserver.take(), self.etcd.take()]
            .into_iter()
            .flatten()
        {
            stop(child);
        }
        if self.keep {
            eprintln!("METALLB_K8S_KEEP=1: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// Where `etcd` and `kube-apiserver` are.
pub fn bin_dir() -> PathBuf {
    for var in ["K8S_BIN_DIR", "KUBEBUILDER_ASSETS"] {
        if let Ok(dir) = std::env::var(var)
            && !dir.is_empty()
        {
            return dir.into();
        }
    }
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return Path::new(&dir).join("k8s-bin");
    }
    if let Some(dir) = option_env!("CARGO_TARGET_DIR") {
        return Path::new(dir).join("k8s-bin");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/k8s-bin")
}

// === processes ===

/// Starts `program` under a `sh` guard: the guard kills it when our end of its stdin closes,
/// which happens when this process exits for any reason.
fn guarded(program: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
    // Background lists get /dev/null as stdin unless redirected explicitly, hence fd 3.
    let script = r#"exec 3<&0; prog="$1"; shift
"$prog" "$@" </dev/null 3<&- & pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; exit' TERM
( read _ <&3; kill -TERM $pid 2>/dev/null || exit; sleep 10; kill -KILL $pid 2>/dev/null ) &
wait $pid"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("guard")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", program.display()))
}

/// SIGTERM through the guard, SIGKILL after 10 s.
fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Closing stdin makes the guard's watcher SIGKILL the program.
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("timed out after {timeout:?} waiting for {what}"))
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(30);
    format!("--- {} ---\n{}", path.display(), lines[from..].join("\n"))
}

// === ports ===

/// `N` distinct free ports below the kernel's ephemeral range (hack/k8s/README.md: a port in
/// that range can be the local end of an outgoing connection, and then `bind` fails even though
/// nothing listens), each checked by binding it on 127.0.0.1 and 0.0.0.0.
pub fn free_ports<const N: usize>() -> [u16; N] {
    static TAKEN: OnceLock<Mutex<std::collections::BTreeSet<u16>>> = OnceLock::new();
    let taken = TAKEN.get_or_init(Default::default);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut out = [0u16; N];
    let mut i = 0;
    let mut seed = u64::from_str_radix(&random_hex(8), 16).unwrap();
    while i < N {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = 10000 + (seed >> 33) as u16 % (low - 10000);
        let mut t = taken.lock().unwrap();
        if t.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("0.0.0.0", port)).is_ok()
        {
            t.insert(port);
            out[i] = port;
            i += 1;
        }
    }
    out
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

// === certificates and kubeconfig ===

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// CA, serving cert with `sans` (plus the in-cluster DNS names), service-account key pair.
fn certs(dir: &Path, sans: &[String]) -> Result<(), String> {
    let mut all = sans.to_vec();
    for dns in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ] {
        all.push(format!("DNS:{dns}"));
    }
    std::fs::write(
        dir.join("san.ext"),
        format!("subjectAltName={}\n", all.join(",")),
    )
    .map_err(|e| e.to_string())?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=metallb-test-ca",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "apiserver.key",
            "-out",
            "apiserver.csr",
            "-subj",
            "/CN=kube-apiserver",
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "apiserver.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    )?;
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "sa.key",
        ],
    )?;
    openssl(dir, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"])
}

fn kubeconfig_yaml(server: &str, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: test
    user: admin
current-context: test
",
        ca = ca.display()
    )
}

/// Creates every CRD of `deploy/crds/metallb.io.yaml` and waits until each is Established.
async fn install_crds(client: &Client) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds/metallb.io.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let mut names = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        if value.is_null() {
            continue;
        }
        let crd: CustomResourceDefinition =
            serde_json::from_value(value).map_err(|e| e.to_string())?;
        names.push(crd.metadata.name.clone().unwrap_or_default());
        api.create(&PostParams::default(), &crd)
            .await
            .map_err(|e| format!("create CRD: {e}"))?;
    }
    for name in names {
        let cond = kube::runtime::conditions::is_crd_established();
        tokio::time::timeout(
            Duration::from_secs(30),
            kube::runtime::wait::await_condition(api.clone(), &name, cond),
        )
        .await
        .map_err(|_| format!("CRD {name} not Established after 30s"))?
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

// === helpers for tests ===

/// Creates every object of a multi-document YAML text through the API (kinds resolved by
/// discovery); `namespace` overrides `metadata.namespace` of namespaced kinds. Kinds the cluster
/// does not serve are skipped and returned by name.
pub async fn create_yaml(
    client: &Client,
    text: &str,
    namespace: Option<&str>,
) -> Result<Vec<String>, String> {
    use kube::{
        api::DynamicObject,
        discovery::{Discovery, Scope},
    };
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|e| e.to_string())?;
    let mut skipped = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        if value.is_null() {
            continue;
        }
        let mut obj: DynamicObject = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let types = obj.types.clone().ok_or("object without apiVersion/kind")?;
        let gvk = kube::api::GroupVersionKind::try_from(&types).map_err(|e| e.to_string())?;
        let Some((ar, caps)) = discovery.resolve_gvk(&gvk) else {
            skipped.push(format!(
                "{}/{}",
                types.kind,
                obj.metadata.name.clone().unwrap_or_default()
            ));
            continue;
        };
        let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
            if let Some(ns) = namespace {
                obj.metadata.namespace = Some(ns.to_string());
            }
            let ns = obj
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into());
            Api::namespaced_with(client.clone(), &ns, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        api.create(&PostParams::default(), &obj)
            .await
            .map_err(|e| {
                format!(
                    "create {} {}: {e}",
                    types.kind,
                    obj.metadata.name.clone().unwrap_or_default()
                )
            })?;
    }
    Ok(skipped)
}

/// A private copy of the `metallb` binary (or `$METALLB_BIN`) in `dir`. Another build in a
/// shared target directory may replace `target/debug/metallb` with a different branch's binary
/// at any time; a copy made now, and checked to have the `controller` subcommand, cannot change
/// under the test.
pub fn metallb_bin(dir: &Path) -> PathBuf {
    let source =
        std::env::var("METALLB_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_metallb").to_string());
    let copy = dir.join("metallb");
    std::fs::copy(&source, &copy).unwrap_or_else(|e| panic!("copy {source}: {e}"));
    let ok = Command::new(&copy)
        .args(["controller", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{source} has no `controller` subcommand: a concurrent build in a shared target dir \
         replaced it; re-run, or set METALLB_BIN"
    );
    copy
}

/// Prints a log file when dropped during a panic (a failing test shows what the component said).
pub struct LogOnPanic(pub PathBuf);

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", tail(&self.0));
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process stopped when dropped: SIGTERM, up to 10 s to exit, then SIGKILL.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// target/tools/grpcurl, built from its Go module by hack/grpcurl.sh (cached).
pub fn grpcurl() -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/grpcurl.sh");
    let out = std::process::Command::new(&script)
        .output()
        .expect("run hack/grpcurl.sh");
    assert!(
        out.status.success(),
        "hack/grpcurl.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `grep -r -l needle dir` finds nothing (a must-gather tree holds no password); panics naming
/// the files that hold it.
pub fn assert_in_no_file(dir: &Path, needle: &str) {
    let grep = Command::new("grep")
        .args(["-r", "-l", "-F", "--", needle])
        .arg(dir)
        .output()
        .expect("run grep");
    assert_eq!(
        grep.status.code(),
        Some(1),
        "{needle:?} is in: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}
