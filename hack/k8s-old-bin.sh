#!/usr/bin/env bash
# Build the OLDEST kube-apiserver we support (pinned by hack/k8s-old/go.mod: v1.25.16) from Go
# modules, for tests/k8s_old_crds.rs: the CRDs must install and work there. etcd is the one
# hack/k8s-bin.sh builds.
#
# Output:  target/k8s-old-bin/{kube-apiserver,stamp}; fast path when the stamp matches (no Go).
# Why 1.25.16: CEL validation rules are on by default from 1.25; v1.23.17's module lacks the
# generated OpenAPI definitions (pkg/generated/openapi is generated at build time there), so it
# does not build from modules; v1.25.x publishes them. -checklinkname=0: Go >= 1.23 refuses the
# go:linkname pulls of that era's dependencies at link time.
#
# Environment: K8S_OLD_BIN_DIR (default <repo>/target/k8s-old-bin), K8S_BIN_NICE (19),
# K8S_BIN_JOBS (2), K8S_BIN_FORCE=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOD="$ROOT/hack/k8s-old"
OUT=${K8S_OLD_BIN_DIR:-$ROOT/target/k8s-old-bin}
NICE=${K8S_BIN_NICE:-19}
JOBS=${K8S_BIN_JOBS:-2}

log() { printf 'k8s-old-bin: %s\n' "$*" >&2; }

VERSION=$(awk '($1 == "require" && $2 == "k8s.io/kubernetes") { print $3; exit } ($1 == "k8s.io/kubernetes" && $2 ~ /^v/) { print $2; exit }' "$MOD/go.mod")
[[ -n $VERSION ]] || { log "cannot read the pinned version"; exit 1; }
STAMP="kubernetes=$VERSION inputs=$(cat "$MOD/go.mod" "$MOD/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"

up_to_date() {
  [[ ${K8S_BIN_FORCE:-0} != 1 && -x $OUT/kube-apiserver && -f $OUT/stamp ]] &&
    [[ $(<"$OUT/stamp") == "$STAMP" ]]
}
if up_to_date; then
  log "up to date in $OUT (kube-apiserver $VERSION)"
  exit 0
fi
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if up_to_date; then
  log "up to date in $OUT (built by a concurrent run)"
  exit 0
fi
command -v go >/dev/null || { log "go not found on PATH"; exit 1; }
log "building kube-apiserver $VERSION into $OUT ($(go version))"
export GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 GOMAXPROCS=$JOBS
minor=${VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w -checklinkname=0"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
start=$(date +%s)
rm -f "$OUT/stamp"
(cd "$MOD" && nice -n "$NICE" go build -p "$JOBS" -trimpath -ldflags="$ldflags" \
  -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
mv -f "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
printf '%s\n' "$STAMP" >"$OUT/stamp"
log "$("$OUT/kube-apiserver" --version) in $(($(date +%s) - start)) s"
