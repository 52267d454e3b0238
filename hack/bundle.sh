#!/usr/bin/env bash
# Refresh the CRDs of the OLM bundle (bundle/manifests/metallb.io_<plural>.yaml, one object per
# file as registry+v1 wants) from deploy/crds/metallb.io.yaml, which `metallb crd` generates.
# The ClusterServiceVersion (bundle/manifests/metallb-operator.clusterserviceversion.yaml) is
# kept by hand; tests/operator_bundle.rs checks it against deploy/ (CRDs, RBAC, Deployment).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bundle/manifests
rm -f "$out"/metallb.io_*.yaml
awk -v out="$out" '
  /^---$/ { if (file) close(file); file = ""; buf = ""; next }
  {
    buf = buf $0 "\n"
    if (!file && $0 ~ /^  name: [a-z0-9]+\.metallb\.io$/) {
      split($2, parts, ".")
      file = out "/metallb.io_" parts[1] ".yaml"
      printf "%s", buf > file
      buf = ""
      next
    }
    if (file) printf "%s", $0 "\n" > file
  }
' deploy/crds/metallb.io.yaml
printf 'bundle: %s CRDs in %s\n' "$(ls "$out"/metallb.io_*.yaml | wc -l)" "$out" >&2
