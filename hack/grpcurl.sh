#!/usr/bin/env bash
# Build grpcurl (the gRPC command-line client the status API tests use) from its Go module,
# fetched through the Go module proxy, into target/tools/grpcurl. Pinned by GRPCURL_VERSION;
# its go.sum is verified by the Go toolchain as for any `go install pkg@version`.
#
# Idempotent: if target/tools/grpcurl exists and its stamp matches, it prints the path and
# exits at once, without needing Go. Concurrent callers are serialised with flock.
#
# Environment:
#   GRPCURL_DIR   output directory (default: <repo>/target/tools)
#   GRPCURL_NICE  nice level for go build (default: 19)
set -euo pipefail

GRPCURL_VERSION=v1.9.3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${GRPCURL_DIR:-$ROOT/target/tools}
NICE=${GRPCURL_NICE:-19}
STAMP="grpcurl=$GRPCURL_VERSION"

log() { printf 'grpcurl: %s\n' "$*" >&2; }
up_to_date() { [[ -x $OUT/grpcurl && -f $OUT/grpcurl.stamp && $(<"$OUT/grpcurl.stamp") == "$STAMP" ]]; }

if up_to_date; then
  echo "$OUT/grpcurl"
  exit 0
fi
mkdir -p "$OUT"
exec 9>"$OUT/.grpcurl.lock"
flock 9
if ! up_to_date; then
  command -v go >/dev/null || { log "go not found on PATH"; exit 1; }
  log "building grpcurl $GRPCURL_VERSION with $(go version)"
  start=$(date +%s)
  rm -f "$OUT/grpcurl.stamp"
  GOBIN="$OUT" CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOMAXPROCS=1 \
    nice -n "$NICE" go install -p 1 -ldflags="-s -w" \
    "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
  printf '%s\n' "$STAMP" >"$OUT/grpcurl.stamp"
  log "done in $(($(date +%s) - start)) s"
fi
echo "$OUT/grpcurl"
