//! The command line: one binary, one subcommand per role or tool.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, builder::TypedValueParser};

use crate::{core::frr::LogLevel, telemetry::LogStream};

/// MetalLB for bare-metal Kubernetes: LoadBalancer addresses announced with BGP (through FRR) or
/// ARP/NDP.
#[derive(Debug, Parser)]
#[command(name = "metallb", version, about)]
pub struct Cli {
    /// Flags every subcommand understands.
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every subcommand.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Log level, with MetalLB's meaning: `all` (everything, other crates' debug and trace
    /// too), `debug`, `info`, `warn`, `error` or `none` (no log lines).
    #[arg(
        long,
        env = "METALLB_LOG_LEVEL",
        default_value = "info",
        value_parser = log_level_parser(),
        global = true
    )]
    pub log_level: LogLevel,
    /// For developers: a tracing `EnvFilter` directive string (`metallb=trace,kube=debug`)
    /// that replaces `--log-level`.
    #[arg(long, env = "METALLB_LOG_FILTER", value_parser = parse_log_filter, global = true)]
    pub log_filter: Option<String>,
    /// Log format: `auto` is one JSON object per line (MetalLB's keys `ts`, `level`, `msg`,
    /// `caller`) when logs do not go to a terminal, readable text when they do.
    #[arg(long, env = "METALLB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto, global = true)]
    pub log_format: LogFormat,
}

/// MetalLB's six level names, listed in `--help`.
fn log_level_parser() -> impl TypedValueParser<Value = LogLevel> {
    clap::builder::PossibleValuesParser::new(["all", "debug", "info", "warn", "error", "none"])
        .try_map(|name| name.parse::<LogLevel>())
}

fn parse_log_filter(directives: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(directives)
        .map(|_| directives.to_string())
        .map_err(|e| e.to_string())
}

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON lines unless the logs go to a terminal.
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every metallb.io CustomResourceDefinition as multi-document YAML.
    Crd,
    /// Check metallb.io resources in manifests, one at a time and all together.
    Validate(ValidateArgs),
    /// Show what the controller would allocate for the Services in manifests (a dry run).
    Plan(PlanArgs),
    /// Run the controller: assign LoadBalancer addresses through the Kubernetes API.
    Controller(ControllerArgs),
    /// Server-side apply manifests to a cluster (what the lab demo uses instead of kubectl).
    Apply(ApplyArgs),
    /// Run the speaker of one node: announce the Services' addresses with BGP (keeping FRR in
    /// sync with the node's frr.conf) and with layer 2 (answering ARP/NDP for the addresses
    /// this node wins, failing over through SWIM membership with the other speakers), fed from
    /// the Kubernetes API or from manifests.
    Speaker(Box<SpeakerArgs>),
    /// Run the admission and BGPPeer conversion webhooks (HTTPS), managing their own
    /// certificates.
    Webhook(WebhookArgs),
    /// Ask the running controller and speakers through the status API: why a Service has its
    /// address or none, pool usage, BGP sessions, one node's state.
    Status(StatusArgs),
    /// Collect what troubleshooting needs into a directory. So far the node-local FRR part:
    /// the seed's five vtysh commands and /etc/frr's files, passwords redacted.
    #[command(name = "must-gather")]
    MustGather(MustGatherArgs),
    /// Run the MetalLB Operator: deploy the controller and the speakers from the `MetalLB`
    /// resource named `metallb` in its namespace; `render` prints what it would apply.
    Operator(OperatorArgs),
}

impl Command {
    /// Where this subcommand logs: the long-running components to stdout like upstream, the
    /// tools to stderr because their stdout is their result.
    pub fn log_stream(&self) -> LogStream {
        match self {
            Command::Controller(_) | Command::Speaker(_) | Command::Webhook(_) => LogStream::Stdout,
            Command::Operator(args) if args.command.is_none() => LogStream::Stdout,
            Command::Operator(_) => LogStream::Stderr,
            Command::Crd
            | Command::Validate(_)
            | Command::Plan(_)
            | Command::Apply(_)
            | Command::Status(_)
            | Command::MustGather(_) => LogStream::Stderr,
        }
    }
}

/// How to reach the cluster.
#[derive(Debug, Args)]
pub struct KubeArgs {
    /// Kubeconfig file (default: in-cluster service account, `$KUBECONFIG`, `~/.kube/config`).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "METALLB_KUBE_CONTEXT")]
    pub context: Option<String>,
}

/// The metrics and health endpoints (`metrics::server`).
#[derive(Clone, Debug, Args)]
pub struct MetricsArgs {
    /// Plain HTTP listener with `/metrics`, `/healthz` and `/readyz`, unauthenticated: keep it
    /// on loopback (`off` disables it).
    #[arg(
        long,
        env = "METALLB_METRICS_PLAIN_ADDR",
        default_value = "127.0.0.1:7472"
    )]
    pub metrics_plain_addr: crate::metrics::process::Listen,
    /// Plain HTTP listener with only `/healthz` and `/readyz`, for kubelet probes (`off`
    /// disables it).
    #[arg(long, env = "METALLB_HEALTH_ADDR", default_value = "0.0.0.0:7473")]
    pub health_addr: crate::metrics::process::Listen,
    /// HTTPS listener with `/metrics`, `/healthz` and `/readyz` for bearer tokens the apiserver
    /// authenticates (TokenReview) and authorizes for `get` on the path (SubjectAccessReview);
    /// only with a cluster (`off` disables it).
    #[arg(
        long,
        env = "METALLB_METRICS_SECURE_ADDR",
        default_value = "0.0.0.0:9120"
    )]
    pub metrics_secure_addr: crate::metrics::process::Listen,
    /// PEM certificate (chain) of the HTTPS listener; without it a self-signed one is made at
    /// start.
    #[arg(long, env = "METALLB_METRICS_TLS_CERT", requires = "metrics_tls_key")]
    pub metrics_tls_cert: Option<PathBuf>,
    /// PEM private key of the HTTPS listener.
    #[arg(long, env = "METALLB_METRICS_TLS_KEY", requires = "metrics_tls_cert")]
    pub metrics_tls_key: Option<PathBuf>,
}

/// `metallb apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Cluster access.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Files or directories of YAML manifests; `-` reads stdin.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Namespace for namespaced objects that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

/// `metallb controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Cluster access.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Namespace of the metallb.io configuration objects and of the leader Lease.
    #[arg(long, env = "METALLB_NAMESPACE", default_value = "metallb-system")]
    pub namespace: String,
    /// Only handle Services with this `spec.loadBalancerClass` (none: Services without a class).
    #[arg(long, env = "METALLB_LB_CLASS")]
    pub lb_class: Option<String>,
    /// Identity in the Lease and in events (default: `$POD_NAME`, else `<hostname>-<pid>`).
    #[arg(long, env = "METALLB_IDENTITY")]
    pub identity: Option<String>,
    /// Elect a leader through a Lease, so more replicas can stand by.
    #[arg(long, env = "METALLB_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, env = "METALLB_LEASE_NAME", default_value = "metallb-controller")]
    pub lease_name: String,
    /// How long a Lease is valid without renewal (Go duration: `15s`, `500ms`).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: std::time::Duration,
    /// How long the leader tries to renew before it gives up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: std::time::Duration,
    /// Pause between acquire and renew attempts.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub retry_period: std::time::Duration,
    /// Metrics and health endpoints.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Sustained Service writes per second.
    #[arg(long, env = "METALLB_STATUS_QPS", default_value_t = 200.0)]
    pub status_qps: f64,
    /// Service writes allowed in a burst.
    #[arg(long, env = "METALLB_STATUS_BURST", default_value_t = 400)]
    pub status_burst: u32,
    /// Where the gRPC status API (`metallb.status.v1.Controller`) listens; `off` disables it.
    /// Loopback by default; off loopback every call is authorized by the apiserver
    /// (TokenReview + SubjectAccessReview).
    #[arg(long, env = "METALLB_STATUS_ADDR", default_value = crate::status::DEFAULT_CONTROLLER_ADDR)]
    pub status_addr: ListenAddr,
    /// The layer 2 membership Secret (key `secretkey`) the leader creates in the namespace when
    /// it is missing, as upstream's controller; empty: never created.
    #[arg(long, env = "METALLB_ML_SECRET_NAME", default_value = crate::k8s::memberlist_secret::DEFAULT_NAME)]
    pub ml_secret_name: String,
}

/// `metallb operator`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct OperatorArgs {
    /// A tool instead of running the operator.
    #[command(subcommand)]
    pub command: Option<OperatorCommand>,
    /// Cluster access.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The namespace watched for MetalLB resources, where the workloads go (OLM sets
    /// `WATCH_NAMESPACE` from the operator group's target namespace).
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "metallb-system")]
    pub namespace: String,
    /// The workloads' images.
    #[command(flatten)]
    pub images: OperatorImages,
}

/// `metallb operator` tools.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Print the objects the operator would apply for a MetalLB (a dry run, byte-identical for
    /// the same input).
    Render(OperatorRenderArgs),
}

/// `metallb operator render`.
#[derive(Debug, Args)]
pub struct OperatorRenderArgs {
    /// A file (or `-`) with the MetalLB resource.
    #[arg(short = 'f', long = "filename", required = true)]
    pub path: PathBuf,
    /// The workloads' images.
    #[command(flatten)]
    pub images: OperatorImages,
}

/// The images the operator deploys, from its environment as upstream's.
#[derive(Clone, Debug, Args)]
pub struct OperatorImages {
    /// Image of the controller (and the webhook).
    #[arg(
        long,
        env = "CONTROLLER_IMAGE",
        default_value = "localhost/metallb/metallb:dev"
    )]
    pub controller_image: String,
    /// Image of the speaker container.
    #[arg(
        long,
        env = "SPEAKER_IMAGE",
        default_value = "localhost/metallb/speaker:dev"
    )]
    pub speaker_image: String,
    /// Image of the speaker pod's FRR container.
    #[arg(long, env = "FRR_IMAGE", default_value = "localhost/metallb/frr:dev")]
    pub frr_image: String,
    /// Also deploy the admission webhook (Deployment and Service; its RBAC comes from
    /// deploy/webhook.yaml, and it applies its ValidatingWebhookConfiguration itself).
    #[arg(long, env = "DEPLOY_WEBHOOK", default_value_t = false, action = clap::ArgAction::Set)]
    pub deploy_webhook: bool,
}

/// `metallb must-gather`.
#[derive(Debug, Args)]
pub struct MustGatherArgs {
    /// Where to write (created).
    #[arg(long)]
    pub dest_dir: PathBuf,
    /// FRR's configuration directory.
    #[arg(long, default_value = "/etc/frr")]
    pub frr_dir: PathBuf,
    /// The vtysh binary.
    #[arg(long, default_value = crate::frr::vtysh::DEFAULT_VTYSH)]
    pub vtysh: PathBuf,
    /// FRR pathspace (`vtysh -N`).
    #[arg(long)]
    pub frr_pathspace: Option<String>,
    /// The limit of each step (Go duration).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub step_timeout: std::time::Duration,
    /// Collect the cluster part instead (MetalLB's namespace objects, metallb.io objects and
    /// CRDs, pod logs, each speaker pod's FRR files and vtysh output through `pods/exec`), as
    /// the must-gather image's `/usr/bin/gather` does.
    #[arg(long)]
    pub cluster: bool,
    /// With `--cluster`: the speaker pods to collect FRR data from, as upstream's
    /// gather_metallb takes them (default: every pod labelled `component=speaker`).
    #[arg(requires = "cluster")]
    pub speaker_pods: Vec<String>,
    /// MetalLB's namespace (with `--cluster`).
    #[arg(long, env = "METALLB_NAMESPACE", default_value = "metallb-system")]
    pub namespace: String,
    /// Cluster access (with `--cluster`).
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// `metallb status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// What to show.
    #[command(subcommand)]
    pub what: StatusCommand,
    /// The controller's status API (`host:port` or a URL). Default: found through the API
    /// server (the controller pods), else 127.0.0.1:7474.
    #[arg(long, global = true, env = "METALLB_CONTROLLER_ADDR")]
    pub controller_addr: Option<String>,
    /// A speaker's status API, as `NODE=HOST:PORT`; repeat for each node to ask. Default: found
    /// through the API server (the speaker pods, else the Nodes' InternalIPs).
    #[arg(long = "speaker-addr", global = true, value_parser = parse_speaker_addr)]
    pub speakers: Vec<crate::status::client::SpeakerAddr>,
    /// Kubeconfig file for discovery and the bearer token sent with every call (default:
    /// in-cluster service account, `$KUBECONFIG`, `~/.kube/config`).
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, global = true, env = "METALLB_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// MetalLB's namespace (where the controller and speaker pods and the Lease are).
    #[arg(
        long,
        global = true,
        env = "METALLB_NAMESPACE",
        default_value = "metallb-system"
    )]
    pub namespace: String,
    /// The controller's leader election Lease (its holder is asked first).
    #[arg(long, global = true, default_value = "metallb-controller")]
    pub lease_name: String,
    /// The port of discovered controllers' status API.
    #[arg(long, global = true, default_value_t = 7474)]
    pub controller_port: u16,
    /// The port of discovered speakers' status API.
    #[arg(long, global = true, default_value_t = 7475)]
    pub speaker_port: u16,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = StatusOutput::Text)]
    pub output: StatusOutput,
}

/// `metallb status` subcommands.
#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// One Service: its addresses and pool and who advertises them, or why it has none.
    Service {
        /// `NAMESPACE/NAME`, or `NAME` in `default`.
        service: String,
    },
    /// Every pool's usage.
    Pools,
    /// Every BGP session of the speakers asked.
    Peers,
    /// One node's speaker: sessions, advertisements, FRR state.
    Node {
        /// The node.
        name: String,
    },
}

/// Output of `metallb status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusOutput {
    /// One answer for people.
    Text,
    /// JSON.
    Json,
}

fn parse_speaker_addr(text: &str) -> Result<crate::status::client::SpeakerAddr, String> {
    match text.split_once('=') {
        Some((node, addr)) if !node.is_empty() && !addr.is_empty() => {
            Ok(crate::status::client::SpeakerAddr {
                node: node.to_string(),
                addr: addr.to_string(),
            })
        }
        _ => Err(format!("{text:?}: want NODE=HOST:PORT")),
    }
}

/// A socket address to listen on, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr(pub Option<std::net::SocketAddr>);

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "off" {
            return Ok(ListenAddr(None));
        }
        text.parse()
            .map(|addr| ListenAddr(Some(addr)))
            .map_err(|e| format!("{text:?}: {e} (want host:port, e.g. 127.0.0.1:7474, or off)"))
    }
}

/// `metallb webhook`.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Cluster access.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Namespace of the metallb.io configuration objects and of the certificate Secret.
    #[arg(long, env = "METALLB_NAMESPACE", default_value = "metallb-system")]
    pub namespace: String,
    /// Address and port to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0:9443")]
    pub listen: std::net::SocketAddr,
    /// Service the apiserver reaches the webhook through (in MetalLB's namespace).
    #[arg(long, default_value = "metallb-webhook-service")]
    pub service_name: String,
    /// Port of that Service.
    #[arg(long, default_value_t = 443)]
    pub service_port: i32,
    /// Base URL the apiserver calls instead of the Service (`https://127.0.0.1:9443`; tests and
    /// out-of-cluster runs). Its host goes into the certificate.
    #[arg(long)]
    pub url: Option<String>,
    /// Secret that holds the webhook's CA and serving certificate.
    #[arg(long, default_value = "metallb-webhook-cert")]
    pub secret_name: String,
    /// Serve `tls.crt`/`tls.key` from this directory instead of managing certificates
    /// (OpenShift's service CA: it mounts them and injects the caBundle).
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// Lifetime of a serving certificate; it is replaced when a third is left.
    #[arg(long, default_value = "2160h", value_parser = parse_duration)]
    pub cert_validity: std::time::Duration,
    /// Lifetime of the CA.
    #[arg(long, default_value = "87600h", value_parser = parse_duration)]
    pub ca_validity: std::time::Duration,
    /// Print the ValidatingWebhookConfiguration of deploy/ (without caBundle) and exit.
    #[arg(long)]
    pub print_configuration: bool,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::config::peer::parse_go_duration(text).map_err(|e| e.to_string())
}

/// `metallb speaker`.
#[derive(Debug, Args)]
pub struct SpeakerArgs {
    /// The node this speaker runs for.
    #[arg(long, env = "METALLB_NODE_NAME")]
    pub node_name: String,
    /// Directory (or file) of YAML manifests (metallb.io resources, Services, EndpointSlices,
    /// Nodes); re-read when a file in it changes and on SIGHUP.
    #[arg(
        short = 'f',
        long,
        visible_alias = "filename",
        env = "METALLB_MANIFESTS",
        required_unless_present_any = ["frr_conf_file", "from_api"]
    )]
    pub manifests: Option<PathBuf>,
    /// Read Services, EndpointSlices, Nodes, Namespaces, Secrets and the metallb.io kinds from
    /// the Kubernetes API (watches) instead of manifests. Only Services with addresses in their
    /// status (given by `metallb controller`) are announced.
    #[arg(long, env = "METALLB_FROM_API", conflicts_with_all = ["manifests", "frr_conf_file"])]
    pub from_api: bool,
    /// Cluster access (with `--from-api`).
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Namespace of the metallb.io configuration objects, Secrets and status objects (with
    /// `--from-api`).
    #[arg(long, env = "METALLB_NAMESPACE", default_value = "metallb-system")]
    pub namespace: String,
    /// Only handle Services with this `spec.loadBalancerClass` (none: Services without a class).
    #[arg(long, env = "METALLB_LB_CLASS")]
    pub lb_class: Option<String>,
    /// Announce with BGP through FRR.
    #[arg(long, env = "METALLB_BGP", default_value_t = true, action = clap::ArgAction::Set)]
    pub bgp: bool,
    /// Announce with layer 2 (answer ARP/NDP).
    #[arg(long, env = "METALLB_LAYER2", default_value_t = true, action = clap::ArgAction::Set)]
    pub layer2: bool,
    /// The BGP side (FRR).
    #[command(flatten)]
    pub frr: FrrArgs,
    /// The layer 2 side.
    #[command(flatten)]
    pub l2: Layer2Args,
    /// Metrics and health endpoints.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Where the gRPC status API (`metallb.status.v1.Speaker`) listens; `off` disables it. Off
    /// loopback (e.g. `0.0.0.0:7475`, which `metallb status` finds through the Nodes) every
    /// call is authorized by the apiserver (TokenReview + SubjectAccessReview; needs
    /// `--from-api`).
    #[arg(long, env = "METALLB_STATUS_ADDR", default_value = crate::status::DEFAULT_SPEAKER_ADDR)]
    pub status_addr: ListenAddr,
    /// How often FRR is asked for the status API while someone watches (or asked within the
    /// last minute); idle, FRR is not asked at all.
    #[arg(long, env = "METALLB_STATUS_POLL_MS", default_value_t = 500)]
    pub status_poll_ms: u64,
}

/// The BGP side of `metallb speaker`.
#[derive(Debug, Args)]
pub struct FrrArgs {
    /// Apply this already rendered frr.conf instead of rendering manifests (testing and
    /// debugging the apply path; layer 2 is off); re-read when it changes and on SIGHUP.
    #[arg(long, conflicts_with = "manifests")]
    pub frr_conf_file: Option<PathBuf>,
    /// FRR pathspace (`vtysh -N`); none for the default instance.
    #[arg(long, env = "METALLB_FRR_PATHSPACE")]
    pub frr_pathspace: Option<String>,
    /// Milliseconds to collect changes before applying the latest configuration.
    #[arg(long, env = "METALLB_BGP_DEBOUNCE_MS", default_value_t = 100)]
    pub debounce_ms: u64,
    /// Seconds between checks, while idle, that FRR still runs the applied configuration
    /// (`frr-reload.py --test`); a drift is reloaded. 0 turns the check off.
    #[arg(long, env = "METALLB_FRR_RESYNC_SECS", default_value_t = 60)]
    pub frr_resync_secs: u64,
    /// Milliseconds between checks of the manifests for changes.
    #[arg(long, env = "METALLB_POLL_MS", default_value_t = 100)]
    pub poll_ms: u64,
    /// MetalLB log level the FRR configuration is rendered for: all, debug, info, warn, error
    /// or none (all and debug also turn on FRR's debug switches). The `FRR_LOGGING_LEVEL`
    /// environment variable overrides it with any FRR level, e.g. `alerts`.
    #[arg(long, env = "METALLB_FRR_LOG_LEVEL", default_value = "info")]
    pub frr_log_level: LogLevel,
    /// FRR's log file (`log file PATH <level>`) instead of `log stdout`: in the speaker pod FRR
    /// logs to `/etc/frr/frr.log`, which the frr container shows and must-gather collects.
    #[arg(long, env = "METALLB_FRR_LOG_FILE")]
    pub frr_log_file: Option<String>,
    /// Router ID for routers whose peers set none.
    #[arg(long, env = "METALLB_ROUTER_ID")]
    pub router_id: Option<std::net::Ipv4Addr>,
    /// The `hostname` to render: the OS nodename FRR runs under (FRR 8.4 prints that whatever
    /// the config says). Default: this host's nodename.
    #[arg(long, env = "METALLB_FRR_HOSTNAME")]
    pub frr_hostname: Option<String>,
    /// Directory for the rendered frr.conf and `status.json` (default:
    /// /run/metallb/<pathspace or "default">).
    #[arg(long, env = "METALLB_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Milliseconds between two reads of FRR's BGP and BFD status for the metrics (off the
    /// scrape path; figures older than three periods are not served).
    #[arg(long, env = "METALLB_FRR_METRICS_INTERVAL_MS", default_value_t = 5000)]
    pub frr_metrics_interval_ms: u64,
}

/// The layer 2 side of `metallb speaker`.
#[derive(Debug, Args)]
pub struct Layer2Args {
    /// UDP address the membership protocol binds. Default with `--from-api`: 0.0.0.0 and
    /// `--member-port`, reached at the Node's InternalIP; without `--from-api` membership is off
    /// unless this is given (then every node is assumed to run a live speaker).
    #[arg(long, env = "METALLB_ML_BIND_ADDR")]
    pub member_bind: Option<std::net::SocketAddr>,
    /// Membership port on every node (with `--from-api`: the peers are the Nodes' InternalIPs
    /// on this port).
    #[arg(long, env = "METALLB_ML_BIND_PORT", default_value_t = 7946)]
    pub member_port: u16,
    /// Other speakers' membership addresses to join through (comma-separated; manifests mode
    /// only: with `--from-api` they come from the Nodes).
    #[arg(
        long,
        env = "METALLB_ML_MEMBERS",
        value_delimiter = ',',
        conflicts_with = "from_api"
    )]
    pub members: Vec<std::net::SocketAddr>,
    /// The shared membership secret. With `--from-api` the default is the `secretkey` of Secret
    /// `--member-secret-name` in `--namespace`.
    #[arg(long, env = "METALLB_ML_SECRET_KEY", hide_env_values = true)]
    pub member_secret: Option<String>,
    /// The Secret holding the membership secret (key `secretkey`), as upstream.
    #[arg(
        long,
        env = "METALLB_ML_SECRET_NAME",
        default_value = "metallb-memberlist"
    )]
    pub member_secret_name: String,
    /// Membership probe period in milliseconds.
    #[arg(long, env = "METALLB_ML_PROBE_PERIOD_MS", default_value_t = 100)]
    pub probe_period_ms: u64,
    /// Membership direct-probe timeout in milliseconds (less than the probe period).
    #[arg(long, env = "METALLB_ML_PROBE_RTT_MS", default_value_t = 50)]
    pub probe_rtt_ms: u64,
    /// How long a suspected speaker has to refute before it is declared dead, in milliseconds.
    #[arg(long, env = "METALLB_ML_SUSPECT_TO_DOWN_MS", default_value_t = 200)]
    pub suspect_to_down_ms: u64,
    /// Interface name patterns (regular expressions) never answered on; the default is
    /// upstream's metallb-excludel2 list.
    #[arg(long, value_delimiter = ',')]
    pub exclude_interfaces: Option<Vec<String>>,
    /// Keep nodes labelled node.kubernetes.io/exclude-from-external-load-balancers.
    #[arg(long, env = "METALLB_IGNORE_EXCLUDE_LB")]
    pub ignore_exclude_lb: bool,
    /// Partition fence witness (host:port reachable over TCP, e.g. the API server): a speaker
    /// that can reach neither its peers nor the witness withdraws every layer 2 announcement.
    #[arg(long, env = "METALLB_L2_FENCE_WITNESS")]
    pub fence_witness: Option<std::net::SocketAddr>,
    /// How long the witness may be unreachable before it counts as lost, in milliseconds.
    #[arg(long, env = "METALLB_L2_FENCE_DEADLINE_MS", default_value_t = 1000)]
    pub fence_deadline_ms: u64,
    /// Write the layer 2 announcements, live speakers and per-address counters here as JSON,
    /// about every 100 ms.
    #[arg(long)]
    pub status_file: Option<PathBuf>,
}

/// `metallb validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files or directories of YAML manifests; `-` reads stdin.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Require every metallb.io object to be in this namespace, as the webhooks do.
    #[arg(long, env = "METALLB_NAMESPACE")]
    pub namespace: Option<String>,
}

/// `metallb plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Files or directories of YAML manifests (metallb.io resources, Services, Namespaces);
    /// `-` reads stdin.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// Only handle Services with this `spec.loadBalancerClass` (none: Services without a class).
    #[arg(long, env = "METALLB_LB_CLASS")]
    pub lb_class: Option<String>,
    /// Also plan BGP announcements for this node (a node without a Node object in the
    /// manifests has no labels); `-o frr` prints its FRR configuration.
    #[arg(long)]
    pub node: Option<String>,
    /// MetalLB log level the FRR configuration is rendered for (`-o frr`): all, debug, info,
    /// warn, error or none. `FRR_LOGGING_LEVEL` overrides it with any FRR level.
    #[arg(long, default_value = "info")]
    pub frr_log_level: LogLevel,
    /// Router ID for routers whose peers set none (`-o frr`).
    #[arg(long)]
    pub router_id: Option<std::net::Ipv4Addr>,
}

/// Output of `metallb plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Readable tables.
    Text,
    /// One JSON object.
    Json,
    /// The frr.conf the speaker on `--node` would apply.
    Frr,
}
