#!/usr/bin/env bash
# hack/node.sh up|down|status: a real Kubernetes node on this host (as root), for an apiserver
# that is already running (tests/support/node.rs and hack/lab-demo start one).
#
#   up    kube-controller-manager and kube-scheduler (hack/k8s-bin.sh builds them from the
#         pinned k8s.io/kubernetes module), containerd + runc + the CNI plugins from Debian,
#         our images imported (target/images/*.tar from hack/images.sh), and a kubelet that
#         registers this host as node $NODE_NAME with address $NODE_IP. Returns when the node
#         is Ready.
#   down  removes the node's pods through the API (so that the CRI tears their sandboxes down),
#         stops everything and removes what up created: no process, mount, cgroup, network
#         namespace, interface or iptables rule is left. Safe to run twice.
#
# Environment (up):
#   NODE_KUBECONFIG  admin kubeconfig of the apiserver (required)
#   NODE_API         https://IP:PORT of the apiserver as the node reaches it (required)
#   NODE_CA          the apiserver's CA certificate (required; kube-root-ca.crt in every pod)
#   NODE_SA_KEY      service-account signing key (optional: legacy token Secrets)
# The apiserver must admit pods' tokens (ServiceAccount admission plugin on), have the
# `kubernetes` Service's ClusterIP 10.96.0.1 in its certificate, and reach the kubelet by
# address: --kubelet-preferred-address-types=InternalIP.
#   NODE_NAME        node name (default lab-host)
#   NODE_IP          the node's address (default 10.77.0.254, the lab's host port)
#   NODE_DIR         state directory (default /tmp/metallb-node)
#   K8S_BIN_DIR      kubelet & co. (default target/k8s-bin); IMAGES_DIR (default target/images)
#
# Facts of this machine kind that the configuration answers (issue 14): the cgroup v1 hierarchy
# ("hybrid", empty unified mount) needs kubelet's failCgroupV1: false and the cgroupfs driver;
# writing a negative oom_score_adj is denied even to root, so containerd's CRI needs
# restrict_oom_score_adj; rlimits stay within the host's hard limits (containerd's defaults do).
#
# The node has no kube-proxy: it would program the shared host's iptables for every Service
# (LoadBalancer addresses included), under other tests' feet. Pods reach the API through the
# `kubernetes` Service's ClusterIP as in any cluster; one DNAT rule (chain MLB-NODE-SVC) does for
# that single Service what kube-proxy would. Pod network: the CNI bridge plugin on bridge
# mlbcni0, 10.78.0.0/24, no masquerading (pods only talk to the host).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${NODE_DIR:-/tmp/metallb-node}
BIN=${K8S_BIN_DIR:-$ROOT/target/k8s-bin}
IMAGES=${IMAGES_DIR:-$ROOT/target/images}
NODE_NAME=${NODE_NAME:-lab-host}
NODE_IP=${NODE_IP:-10.77.0.254}
POD_CIDR=10.78.0.0/24
POD_BRIDGE=mlbcni0
SERVICE_IP=10.96.0.1
CHAIN=MLB-NODE-SVC
SOCK=$DIR/run/containerd.sock
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)

log() { printf 'node: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root"
ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }
kubectl_() { "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }

start() { # name command...: start in the background, own session, log and pid in $DIR
  local name=$1
  shift
  setsid "$@" </dev/null >"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

stop() { # name: SIGTERM, then SIGKILL after 10 s
  local pidfile=$DIR/$1.pid pid
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

wait_for() { # seconds what command...
  local secs=$1 what=$2
  shift 2
  for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out after ${secs}s waiting for $what"
}

# The DNAT of the kubernetes Service (see the header); both chains: a host-network pod's
# packets pass OUTPUT, a pod-network pod's PREROUTING.
service_rules() { # -A|-D host port
  local op=$1
  if [[ $op == -A ]]; then
    iptables -w -t nat -N "$CHAIN" 2>/dev/null || true
    iptables -w -t nat -A "$CHAIN" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$2:$3"
    iptables -w -t nat -I OUTPUT -j "$CHAIN"
    iptables -w -t nat -I PREROUTING -j "$CHAIN"
  else
    while iptables -w -t nat -D OUTPUT -j "$CHAIN" 2>/dev/null; do :; done
    while iptables -w -t nat -D PREROUTING -j "$CHAIN" 2>/dev/null; do :; done
    iptables -w -t nat -F "$CHAIN" 2>/dev/null || true
    iptables -w -t nat -X "$CHAIN" 2>/dev/null || true
  fi
}

# Every cgroup the node's pods had: kubelet's kubepods tree in each v1 hierarchy (cgroupfs
# driver), removed leaves first.
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ -d $d ]] && log "cgroup $d is still in use"
  done
  return 0
}

down() {
  local t0
  t0=$(date +%s.%N)
  if [[ -f $DIR/kubelet.pid && -f $DIR/kubeconfig ]]; then
    # No controller may recreate what goes away now; then the API deletes every pod of this
    # node, and the kubelet stops them through the CRI (sandbox, CNI DEL, netns, mounts).
    stop kube-controller-manager
    stop kube-scheduler
    kubectl_ delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --grace-period=1 \
      --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 150); do
      [[ -z $(ctr_ tasks ls -q 2>/dev/null) && -z $(kubectl_ get pods -A --no-headers \
        --field-selector "spec.nodeName=$NODE_NAME" 2>/dev/null) ]] && break
      sleep 0.2
    done
  fi
  stop kubelet
  stop kube-controller-manager
  stop kube-scheduler
  # Anything the kubelet did not get to (a crashed kubelet): kill the tasks through containerd.
  if [[ -S $SOCK ]]; then
    for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$task" >/dev/null 2>&1 || true; done
    for _ in $(seq 25); do [[ -z $(ctr_ tasks ls -q 2>/dev/null | head -1) ]] && break; sleep 0.2; done
  fi
  stop containerd
  # runc shims outlive containerd by design; ours carry our socket's path.
  pkill -KILL -f -- "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null || true
  # Mounts under the state directory (overlay rootfs, projected volumes, sandbox shm), deepest
  # first; network namespaces the CRI created for pods that were not torn down.
  if [[ -d $DIR ]]; then
    awk -v d="$DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  if [[ -f $DIR/netns.before ]]; then
    for ns in $(ip netns list | awk '{print $1}' | grep '^cni-' || true); do
      grep -qx "$ns" "$DIR/netns.before" || ip netns del "$ns" 2>/dev/null || true
    done
  fi
  ip link del "$POD_BRIDGE" 2>/dev/null || true
  service_rules -D
  remove_cgroups
  if [[ -f $DIR/sysctl.saved ]]; then
    while read -r key value; do sysctl -qw "$key=$value" || true; done <"$DIR/sysctl.saved"
  fi
  rm -rf "$DIR" /var/lib/cni/networks/mlb-pods
  log "down in $(python3 -c "import time; print(round(time.time() - $t0, 1))") s"
}

status() {
  local name
  for name in containerd kubelet kube-controller-manager kube-scheduler; do
    if [[ -f $DIR/$name.pid ]] && kill -0 "$(<"$DIR/$name.pid")" 2>/dev/null; then
      echo "$name: running (pid $(<"$DIR/$name.pid"))"
    else
      echo "$name: stopped"
    fi
  done
}

up() {
  : "${NODE_KUBECONFIG:?admin kubeconfig}" "${NODE_API:?https://IP:PORT}" "${NODE_CA:?CA file}"
  for b in kubelet kube-controller-manager kube-scheduler kubectl; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing: run hack/k8s-bin.sh"
  done
  for b in containerd runc ctr iptables /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback; do
    command -v "$b" >/dev/null || die "$b missing: run hack/setup.sh"
  done
  for i in pause metallb frr speaker must-gather; do
    [[ -f $IMAGES/$i.tar ]] || die "$IMAGES/$i.tar missing: run hack/images.sh"
  done
  [[ -e $DIR ]] && die "$DIR exists: a node is up (hack/node.sh down first)"
  local started api_host api_port
  started=$(date +%s.%N)
  api_host=${NODE_API#https://}
  api_port=${api_host##*:}
  api_host=${api_host%:*}

  mkdir -p "$DIR"/{logs,run,cni,containerd,kubelet,pod-logs}
  cp "$NODE_KUBECONFIG" "$DIR/kubeconfig"
  cp "$NODE_CA" "$DIR/ca.crt"
  printf 'NODE_NAME=%s\nNODE_IP=%s\nNODE_DIR=%s\n' "$NODE_NAME" "$NODE_IP" "$DIR" >"$DIR/env"
  for key in "${SYSCTLS[@]}"; do echo "$key $(sysctl -n "$key")"; done >"$DIR/sysctl.saved"
  ip netns list | awk '{print $1}' >"$DIR/netns.before"
  # Whatever fails from here on (a die, a failing command under set -e), nothing stays up.
  trap 'log "up failed; the logs, then cleaning up"; tail -n 15 "$DIR"/logs/*.log >&2; down' EXIT

  # --- containerd ------------------------------------------------------------------------
  cat >"$DIR/containerd.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/metallb/pause:dev"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni"
EOF
  cat >"$DIR/cni/10-mlb-pods.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "mlb-pods",
  "plugins": [
    {"type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}
EOF
  start containerd containerd --config "$DIR/containerd.toml"
  wait_for 20 containerd ctr --address "$SOCK" version
  log "containerd $(containerd --version | awk '{print $3}') up"
  # Unpacked into the overlayfs snapshotter now, so the pods start at once; in parallel, but
  # speaker after frr and must-gather after speaker, whose layers each shares.
  local pids=()
  for i in pause metallb "frr speaker must-gather"; do
    (for image in $i; do ctr_ images import "$IMAGES/$image.tar" >/dev/null || exit 1; done) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "ctr images import failed"; done
  log "images imported: $(ctr_ images ls -q | grep -c '^localhost/metallb/')"

  # --- the kubernetes Service without kube-proxy ---------------------------------------------
  service_rules -A "$api_host" "$api_port"

  # --- control-plane controllers ---------------------------------------------------------------
  local kcm_port sched_port
  kcm_port=$(free_port)
  sched_port=$(free_port "$kcm_port")
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$DIR/kubeconfig" \
    --authentication-kubeconfig="$DIR/kubeconfig" --authorization-kubeconfig="$DIR/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" --leader-elect=false \
    --root-ca-file="$DIR/ca.crt" ${NODE_SA_KEY:+--service-account-private-key-file="$NODE_SA_KEY"} \
    --use-service-account-credentials=false
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$DIR/kubeconfig" \
    --authentication-kubeconfig="$DIR/kubeconfig" --authorization-kubeconfig="$DIR/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$sched_port" --leader-elect=false

  # --- kubelet ---------------------------------------------------------------------------------
  cat >"$DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$SOCK
podLogsDir: $DIR/pod-logs
staticPodPath: ""
# The apiserver reaches the kubelet here for "kubectl exec" and "kubectl logs". It presents no
# client certificate (the test apiservers have none), so the kubelet lets anonymous requests
# in: only on the lab's host port, which nothing outside this machine's lab can reach.
address: $NODE_IP
port: $(free_port "$kcm_port" "$sched_port")
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
cgroupsPerQOS: true
enforceNodeAllocatable: []
localStorageCapacityIsolation: false
registerNode: true
syncFrequency: 10s
nodeStatusUpdateFrequency: 2s
EOF
  start kubelet "$BIN/kubelet" --config="$DIR/kubelet.yaml" --kubeconfig="$DIR/kubeconfig" \
    --root-dir="$DIR/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  wait_for 60 "node $NODE_NAME Ready" node_ready
  trap - EXIT
  log "node $NODE_NAME Ready in $(python3 -c "import time; print(round(time.time() - $started, 1))") s" \
    "(kubelet $("$BIN/kubelet" --version | awk '{print $2}'), state in $DIR)"
}

node_ready() {
  [[ $(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

free_port() { # exclude...: a free TCP port below the ephemeral range
  local low p
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  while :; do
    p=$((10000 + RANDOM % (low - 10000)))
    [[ " $* " == *" $p "* ]] && continue
    [[ -z $(ss -Htan "( sport = :$p )") ]] && { echo "$p"; return; }
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: hack/node.sh up|down|status" >&2; exit 2 ;;
esac
