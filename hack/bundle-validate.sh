#!/usr/bin/env bash
# Build hack/bundle-validate (the OLM bundle validator: operator-framework/api's
# pkg/validation, what `operator-sdk bundle validate` runs) into target/tools/bundle-validate,
# with modules from the Go module proxy verified against hack/bundle-validate/go.sum.
#
#   hack/bundle-validate.sh            build (cached) and print the binary's path
#   hack/bundle-validate.sh BUNDLE_DIR build (cached) and validate BUNDLE_DIR (e.g. bundle/)
#
# The binary is rebuilt only when main.go, go.mod or go.sum change (a stamp of their hash);
# concurrent callers are serialised with flock.
#
# Environment:
#   BUNDLE_VALIDATE_DIR   output directory (default: <repo>/target/tools)
#   BUNDLE_VALIDATE_NICE  nice level for go build (default: 19)
#   BUNDLE_VALIDATE_JOBS  parallel compile jobs (default: 2, as hack/k8s-bin.sh; hack/test runs
#                         its steps one after the other, so a cold CI build may use both cores)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/hack/bundle-validate
OUT=${BUNDLE_VALIDATE_DIR:-$ROOT/target/tools}
NICE=${BUNDLE_VALIDATE_NICE:-19}
JOBS=${BUNDLE_VALIDATE_JOBS:-2}
STAMP="bundle-validate=$(cat "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" | sha256sum | cut -c1-16)"
BIN=$OUT/bundle-validate

log() { printf 'bundle-validate: %s\n' "$*" >&2; }
up_to_date() { [[ -x $BIN && -f $BIN.stamp && $(<"$BIN.stamp") == "$STAMP" ]]; }

if ! up_to_date; then
  mkdir -p "$OUT"
  exec 9>"$OUT/.bundle-validate.lock"
  flock 9
  if ! up_to_date; then
    command -v go >/dev/null || { log "go not found on PATH"; exit 1; }
    log "building with $(go version)"
    start=$(date +%s)
    rm -f "$BIN.stamp"
    (cd "$SRC" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath -mod=readonly" GOMAXPROCS=$JOBS \
      nice -n "$NICE" go build -p "$JOBS" -ldflags="-s -w" -o "$BIN" .)
    printf '%s\n' "$STAMP" >"$BIN.stamp"
    log "done in $(($(date +%s) - start)) s"
  fi
  exec 9>&-
fi
if [[ $# -eq 0 ]]; then
  echo "$BIN"
else
  exec "$BIN" "$@"
fi
