#!/usr/bin/env bash
# Throwaway smoke test for the binaries built by hack/k8s-bin.sh:
#   etcd on 127.0.0.1 (random free ports, data dir in a temp dir)
#   -> openssl-generated CA, serving cert and service-account key pair
#   -> kube-apiserver on 127.0.0.1 with a static admin token and RBAC
#   -> wait for /readyz, write a kubeconfig
#   -> create a Namespace and a LoadBalancer Service with curl, set its
#      status.loadBalancer like MetalLB would, read both back
#   -> clean shutdown of both processes.
#
# Needs: bash, curl, openssl, coreutils. Runs hack/k8s-bin.sh first.
# K8S_SMOKE_KEEP=1 keeps the temp dir (certs, kubeconfig, logs).
# K8S_SMOKE_BIND=<ip> binds the apiserver to <ip> instead of 127.0.0.1
# (that ip is also put in the serving cert and used as the advertise address).
# K8S_SMOKE_NETNS=<netns> also reads the Service back from inside that
# network namespace (ip netns exec), to check the apiserver is reachable there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/hack/k8s-bin.sh"
BIN=${K8S_BIN_DIR:-$ROOT/target/k8s-bin}
BIND=${K8S_SMOKE_BIND:-127.0.0.1}

T=$(mktemp -d /tmp/k8s-smoke.XXXXXX)
ETCD_PID= APISERVER_PID=

log() { printf 'k8s-smoke: %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }

# stop <pid> <name>: SIGTERM, wait up to 20 s, then SIGKILL.
stop() {
  local pid=$1 name=$2 i rc
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not exit on SIGTERM, killing"
    kill -KILL "$pid"
  fi
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  log "$name stopped (exit status $rc)"
}

cleanup() {
  local rc=$?
  stop "$APISERVER_PID" kube-apiserver
  APISERVER_PID=
  stop "$ETCD_PID" etcd
  ETCD_PID=
  if ((rc != 0)); then
    for f in "$T"/*.log; do
      [[ -f $f ]] || continue
      log "---- last lines of $f ----"
      tail -n 30 "$f" >&2
    done
  fi
  if [[ ${K8S_SMOKE_KEEP:-0} == 1 ]]; then log "kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port no socket in this network namespace uses. It is picked below the
# kernel's ephemeral range: a port that is merely the local end of some
# outgoing connection is not "listening", yet bind() on it fails with
# EADDRINUSE (etcd failed so once when ports were picked from 20000-60000).
# Still racy against other processes, which is fine for this script.
EPHEMERAL_LO=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port_in_use() {
  if command -v ss >/dev/null; then
    [[ -n $(ss -Htan "( sport = :$1 )") ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % (EPHEMERAL_LO - 10000)))
    port_in_use "$p" || { echo "$p"; return; }
  done
}

ETCD_CLIENT_PORT=$(free_port)
ETCD_PEER_PORT=$(free_port)
while [[ $ETCD_PEER_PORT == "$ETCD_CLIENT_PORT" ]]; do ETCD_PEER_PORT=$(free_port); done
API_PORT=$(free_port)
while [[ $API_PORT == "$ETCD_CLIENT_PORT" || $API_PORT == "$ETCD_PEER_PORT" ]]; do API_PORT=$(free_port); done

# --- certificates and keys ----------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=k8s-smoke-ca \
  -keyout "$T/ca.key" -out "$T/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver \
  -keyout "$T/apiserver.key" -out "$T/apiserver.csr" 2>/dev/null
SAN="IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
[[ $BIND != 127.0.0.1 ]] && SAN+=",IP:$BIND"
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
  "$SAN" >"$T/apiserver.ext"
openssl x509 -req -in "$T/apiserver.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
  -days 1 -extfile "$T/apiserver.ext" -out "$T/apiserver.crt" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/sa.key" 2>/dev/null
openssl pkey -in "$T/sa.key" -pubout -out "$T/sa.pub"
TOKEN=$(openssl rand -hex 32)
# token,user,uid,"group1,group2"  -- system:masters is cluster-admin under RBAC.
printf '%s,admin,admin-uid,"system:masters"\n' "$TOKEN" >"$T/tokens.csv"

# --- etcd -----------------------------------------------------------------------
t0=$(now_ms)
"$BIN/etcd" \
  --name=smoke \
  --data-dir="$T/etcd-data" \
  --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="smoke=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync \
  --log-level=warn \
  >"$T/etcd.log" 2>&1 &
ETCD_PID=$!
until curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" 2>/dev/null | grep -q '"health":"true"'; do
  kill -0 "$ETCD_PID" 2>/dev/null || { log "etcd exited"; exit 1; }
  (($(now_ms) - t0 < 30000)) || { log "etcd not healthy after 30 s"; exit 1; }
  sleep 0.1
done
log "etcd healthy on 127.0.0.1:$ETCD_CLIENT_PORT after $(($(now_ms) - t0)) ms"

# --- kube-apiserver ---------------------------------------------------------------
APISERVER_FLAGS=(
  --bind-address="$BIND"
  --advertise-address="$BIND"
  --secure-port="$API_PORT"
  --tls-cert-file="$T/apiserver.crt"
  --tls-private-key-file="$T/apiserver.key"
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT"
  --service-cluster-ip-range=10.0.0.0/24
  --service-account-issuer=https://kubernetes.default.svc.cluster.local
  --service-account-key-file="$T/sa.pub"
  --service-account-signing-key-file="$T/sa.key"
  --token-auth-file="$T/tokens.csv"
  --authorization-mode=RBAC
  --disable-admission-plugins=ServiceAccount
  --endpoint-reconciler-type=none
)
t0=$(now_ms)
"$BIN/kube-apiserver" "${APISERVER_FLAGS[@]}" >"$T/kube-apiserver.log" 2>&1 &
APISERVER_PID=$!
SERVER="https://$BIND:$API_PORT"
CURL=(curl -fsS --cacert "$T/ca.crt" -H "Authorization: Bearer $TOKEN")
until [[ $("${CURL[@]}" "$SERVER/readyz" 2>/dev/null) == ok ]]; do
  kill -0 "$APISERVER_PID" 2>/dev/null || { log "kube-apiserver exited"; exit 1; }
  (($(now_ms) - t0 < 120000)) || { log "kube-apiserver not ready after 120 s"; exit 1; }
  sleep 0.1
done
log "kube-apiserver ready on $SERVER after $(($(now_ms) - t0)) ms (process start -> /readyz ok)"

cat >"$T/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smoke
  cluster:
    server: $SERVER
    certificate-authority: $T/ca.crt
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: smoke
  context:
    cluster: smoke
    user: admin
current-context: smoke
EOF
log "kubeconfig: $T/kubeconfig"

# --- requests ---------------------------------------------------------------------
J=(-H 'Content-Type: application/json' -H 'Accept: application/json')
log "version: $("${CURL[@]}" "$SERVER/version" | tr -d ' \n')"

"${CURL[@]}" "${J[@]}" -X POST "$SERVER/api/v1/namespaces" \
  -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"smoke"}}' >/dev/null
log "created namespace smoke"

"${CURL[@]}" "${J[@]}" -X POST "$SERVER/api/v1/namespaces/smoke/services" -d '{
  "apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "lb"},
  "spec": {"type": "LoadBalancer", "selector": {"app": "x"},
           "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
}' >/dev/null
log "created service smoke/lb"

# What MetalLB's controller does: write the assigned address into the status subresource.
"${CURL[@]}" -H 'Content-Type: application/merge-patch+json' -X PATCH \
  "$SERVER/api/v1/namespaces/smoke/services/lb/status" \
  -d '{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.10","ipMode":"VIP"}]}}}' >/dev/null
log "patched service smoke/lb status"

svc=$("${CURL[@]}" "${J[@]}" "$SERVER/api/v1/namespaces/smoke/services/lb")
compact=$(tr -d ' \n' <<<"$svc")
grep -q '"type":"LoadBalancer"' <<<"$compact" || { log "unexpected service: $svc"; exit 1; }
grep -q '"ingress":\[{"ip":"203.0.113.10"' <<<"$compact" || { log "status not stored: $svc"; exit 1; }
clusterip=$(grep -o '"clusterIP":"[^"]*"' <<<"$compact")
nodeport=$(grep -o '"nodePort":[0-9]*' <<<"$compact")
log "read back smoke/lb: type LoadBalancer, $clusterip, $nodeport, ingress 203.0.113.10"

phase=$("${CURL[@]}" "${J[@]}" "$SERVER/api/v1/namespaces/smoke" | tr -d ' \n' | grep -o '"phase":"[^"]*"')
log "read back namespace smoke: $phase"

if [[ -n ${K8S_SMOKE_NETNS:-} ]]; then
  ip netns exec "$K8S_SMOKE_NETNS" "${CURL[@]}" "${J[@]}" "$SERVER/api/v1/namespaces/smoke/services/lb" |
    tr -d ' \n' | grep -q '"ingress":\[{"ip":"203.0.113.10"' || { log "read from netns $K8S_SMOKE_NETNS failed"; exit 1; }
  log "read back smoke/lb from inside netns $K8S_SMOKE_NETNS via $SERVER"
fi

# RBAC is enforced: an unknown token is rejected, anonymous gets 403 on resources.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.crt" -H 'Authorization: Bearer nope' \
  "$SERVER/api/v1/namespaces")
[[ $code == 401 ]] || { log "bad token gave HTTP $code, want 401"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.crt" "$SERVER/api/v1/namespaces")
[[ $code == 403 ]] || { log "anonymous gave HTTP $code, want 403"; exit 1; }
log "bad token -> 401, anonymous -> 403"

log "OK"
