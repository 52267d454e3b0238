#!/usr/bin/env bash
# Build a real Kubernetes control plane and node for the integration tests, from
# Go modules fetched through the Go module proxy (no GitHub, no prebuilt
# binaries). Versions are pinned by hack/k8s/go.mod and hack/etcd/go.mod
# (plus their go.sum files).
#
# Output:  target/k8s-bin/{kube-apiserver,kube-controller-manager,kube-scheduler,
#                          kubelet,kubectl,etcd,stamp}
#
# Idempotent: if every binary exists and target/k8s-bin/stamp matches the
# current pins (and this script), it prints the directory and exits at once,
# without needing Go. Otherwise it rebuilds. Concurrent callers are
# serialised with flock, so only one of them builds.
#
# Needs: Go >= 1.25 on PATH (or a GOTOOLCHAIN setting that can fetch one),
# network access to GOPROXY on the first run, and roughly 2.5 GiB of free
# RAM. The Go module and build caches are the user's usual ones
# ($(go env GOMODCACHE), $(go env GOCACHE)).
#
# Environment:
#   K8S_BIN_DIR   output directory        (default: <repo>/target/k8s-bin)
#   K8S_BIN_NICE  nice level for go build (default: 19)
#   K8S_BIN_JOBS  go build -p             (default: 2)
#   K8S_BIN_FORCE=1  rebuild even if the stamp matches
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HACK="$ROOT/hack"
OUT=${K8S_BIN_DIR:-$ROOT/target/k8s-bin}
NICE=${K8S_BIN_NICE:-19}
JOBS=${K8S_BIN_JOBS:-2}

log() { printf 'k8s-bin: %s\n' "$*" >&2; }

# Version of a module required in a go.mod (parsed without Go, for the fast path).
modver() { # <go.mod> <module path>
  awk -v m="$2" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/       { print $2; exit }' "$1"
}

K8S_VERSION=$(modver "$HACK/k8s/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(modver "$HACK/etcd/go.mod" go.etcd.io/etcd/server/v3)
[[ -n $K8S_VERSION && -n $ETCD_VERSION ]] || { log "cannot read pinned versions"; exit 1; }

# Everything that determines the binaries' contents.
INPUTS_HASH=$(cat "$HACK/k8s/go.mod" "$HACK/k8s/go.sum" \
                  "$HACK/etcd/go.mod" "$HACK/etcd/go.sum" "$HACK/etcd/main.go" \
                  "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
STAMP="kubernetes=$K8S_VERSION etcd=$ETCD_VERSION inputs=$INPUTS_HASH"

# The k8s.io/kubernetes commands built from hack/k8s (each is a `tool` there, so go.sum pins
# everything they need). kubelet, kube-controller-manager and kube-scheduler make the real node
# of tests/k8s_node.rs (hack/node.sh); kubectl is what its tests run, as an admin would.
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

up_to_date() {
  [[ ${K8S_BIN_FORCE:-0} != 1 && -x $OUT/etcd && -f $OUT/stamp ]] || return 1
  local cmd
  for cmd in "${K8S_CMDS[@]}"; do [[ -x $OUT/$cmd ]] || return 1; done
  [[ $(<"$OUT/stamp") == "$STAMP" ]]
}

if up_to_date; then
  log "up to date in $OUT (kube-apiserver $K8S_VERSION, etcd $ETCD_VERSION)"
  exit 0
fi

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if up_to_date; then # another caller built it while we waited for the lock
  log "up to date in $OUT (built by a concurrent run)"
  exit 0
fi

command -v go >/dev/null || { log "go not found on PATH"; exit 1; }
log "$(go version)"
log "building ${K8S_CMDS[*]} $K8S_VERSION and etcd $ETCD_VERSION into $OUT"

# -mod=readonly: go.mod/go.sum are the pins; fail instead of silently changing them.
export GOFLAGS="-mod=readonly -buildvcs=false"
export CGO_ENABLED=0
export GOMAXPROCS=$JOBS

timed() { # <label> <command...>: run, and report wall time and peak RSS if /usr/bin/time exists
  local label=$1
  shift
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f "k8s-bin:   $label: %e s wall, max RSS %M KiB" "$@"
  else
    "$@"
  fi
}

start=$(date +%s)
rm -f "$OUT/stamp"

# etcd
(cd "$HACK/etcd" &&
  timed "go build etcd" nice -n "$NICE" go build -p "$JOBS" -trimpath -ldflags="-s -w" \
    -o "$OUT/etcd.tmp" .)
mv -f "$OUT/etcd.tmp" "$OUT/etcd"

# The Kubernetes commands, in one go build (they share most packages). The -X flags
# are what upstream's hack/lib/version.sh sets; without them the binary reports v0.0.0-master. buildDate is the release's
# module timestamp, so the build stays reproducible; the proxy does not give
# the release's commit hash, so gitCommit is left empty.
k8s_date=$(cd "$HACK/k8s" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
k8s_minor=${K8S_VERSION#v1.}
k8s_minor=${k8s_minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$k8s_date -X $pkg.gitCommit="
done
rm -rf "$OUT/tmp"
mkdir -p "$OUT/tmp"
(cd "$HACK/k8s" &&
  timed "go build ${K8S_CMDS[*]}" nice -n "$NICE" go build -p "$JOBS" -trimpath -ldflags="$ldflags" \
    -o "$OUT/tmp/" "${K8S_CMDS[@]/#/k8s.io/kubernetes/cmd/}")
for cmd in "${K8S_CMDS[@]}"; do mv -f "$OUT/tmp/$cmd" "$OUT/$cmd"; done
rmdir "$OUT/tmp"

printf '%s\n' "$STAMP" >"$OUT/stamp"
log "$("$OUT/kube-apiserver" --version), etcd $("$OUT/etcd" --version | awk '/etcd Version/ {print $3}')"
log "done in $(($(date +%s) - start)) s: $(cd "$OUT" && du -h "${K8S_CMDS[@]}" etcd | awk '{printf "%s %s  ", $2, $1}')"
