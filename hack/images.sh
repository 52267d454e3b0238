#!/usr/bin/env bash
# hack/images.sh: build metallb-rs's OCI images offline, from Debian packages (as root).
#
#   metallb   scratch + the dist-profile binary + the glibc files it links: controller and every
#             role that needs no FRR (deploy/images/metallb/Containerfile)
#   frr       Debian's FRR 8.4 + frr-pythontools (frr-reload.py, python3) + catatonit as PID 1,
#             a root filesystem made by mmdebstrap from Debian's archive, our daemons/vtysh.conf
#             and the start script that runs watchfrr as upstream's frr container does
#   speaker   the frr image + the metallb binary: the speaker applies FRR configuration itself
#             (vtysh, the bgpd vty socket, frr-reload.py), so it needs FRR's tools beside it
#   pause     scratch + Debian's static catatonit (-P): the pod sandbox image
#   must-gather  speaker + must-gather/{gather,gather_metallb}: `oc adm must-gather --image=`
#   bundle    the operator's OLM bundle (bundle/): manifests/, metadata/ and the registry+v1
#             labels, what `opm` / a CatalogSource index takes
#
# Output: target/images/<name>.tar, OCI archives named localhost/metallb/<name>:dev, which
# `ctr -n k8s.io images import` takes (hack/node.sh does). Containerfiles: deploy/images/.
#
# No base image is pulled: the frr root filesystem comes from mmdebstrap (Debian's faster
# debootstrap: it writes a tarball, installs only Essential packages plus what we name, and
# leaves apt and the docs out) and is cached under target/images/cache/ by a hash of its
# recipe; IMAGES_REFRESH=1 rebuilds it (e.g. after a Debian security update of FRR). Each
# image is rebuilt only when its inputs (Containerfile, context files, binary) change, so a
# rerun with nothing changed takes about a second.
#
# Environment: METALLB_BIN (default: target/dist/metallb, built here with cargo --profile dist),
#              IMAGES_DIR (default target/images), IMAGES_REFRESH=1, IMAGES_TAG (default dev).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${IMAGES_DIR:-$ROOT/target/images}
TAG=${IMAGES_TAG:-dev}
SUITE=bookworm
MIRRORS=(
  "deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main"
)
FRR_PACKAGES=frr,frr-pythontools,catatonit

log() { printf 'images: %s\n' "$*" >&2; }
[[ $(id -u) == 0 ]] || { log "needs root (buildah storage, mmdebstrap)"; exit 1; }
for tool in buildah mmdebstrap catatonit; do
  command -v "$tool" >/dev/null || { log "$tool missing: run hack/setup.sh"; exit 1; }
done
mkdir -p "$OUT/cache" "$OUT/ctx"
exec 9>"$OUT/.lock"
flock 9
start=$(date +%s.%N)

# buildah's own storage, inside target/: nothing of the host's container storage is touched.
BUILDAH=(buildah --root "$OUT/storage" --runroot "$OUT/run" --storage-driver overlay)

hash_of() { # files or directories -> one sha256 over names and contents
  find "$@" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

# build NAME CONTEXT [buildah build args...]: build and export when the context changed.
build() {
  local name=$1 ctx=$2
  shift 2
  local ref="localhost/metallb/$name:$TAG" stamp hash
  cp "deploy/images/$name/Containerfile" "$ctx/Containerfile"
  hash="$(hash_of "$ctx") $*"
  stamp="$OUT/$name.stamp"
  if [[ -f $OUT/$name.tar && -f $stamp && $(<"$stamp") == "$hash" ]] &&
    "${BUILDAH[@]}" inspect --type image "$ref" >/dev/null 2>&1; then
    log "$name: up to date ($(du -h "$OUT/$name.tar" | cut -f1))"
    return
  fi
  log "$name: building $ref"
  "${BUILDAH[@]}" build --quiet --layers=false --pull=never -f "$ctx/Containerfile" -t "$ref" "$@" "$ctx" >/dev/null
  rm -f "$OUT/$name.tar" "$stamp"
  "${BUILDAH[@]}" push --quiet "$ref" "oci-archive:$OUT/$name.tar:$ref"
  printf '%s\n' "$hash" >"$stamp"
  log "$name: $OUT/$name.tar ($(du -h "$OUT/$name.tar" | cut -f1))"
}

# --- pause: catatonit is statically linked ------------------------------------------------
ctx=$OUT/ctx/pause
rm -rf "$ctx" && mkdir -p "$ctx/rootfs/usr/bin"
cp "$(command -v catatonit)" "$ctx/rootfs/usr/bin/catatonit"
build pause "$ctx"

# --- bundle: the OLM bundle (bundle/manifests, bundle/metadata) as a registry+v1 image --------
ctx=$OUT/ctx/bundle
rm -rf "$ctx" && mkdir -p "$ctx"
cp -r bundle/manifests bundle/metadata "$ctx/"
build bundle "$ctx"

# --- frr: a Debian root filesystem, cached by its recipe ------------------------------------
recipe="$SUITE $FRR_PACKAGES ${MIRRORS[*]} v1"
rootfs=$OUT/cache/frr-rootfs-$(printf '%s' "$recipe" | sha256sum | cut -c1-16).tar
if [[ ${IMAGES_REFRESH:-0} == 1 || ! -s $rootfs ]]; then
  log "frr: mmdebstrap $SUITE + $FRR_PACKAGES (about a minute)"
  rm -rf "$OUT"/cache/frr-rootfs-*
  # essential: only Essential:yes packages and what FRR needs (no apt); docs, man pages and
  # locales are not unpacked (copyright files stay). The apt lists are dropped afterwards.
  nice -n 10 mmdebstrap --quiet --variant=essential --include="$FRR_PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
    "$SUITE" "${rootfs%.tar}.partial.tar" "${MIRRORS[@]}"
  mv "${rootfs%.tar}.partial.tar" "$rootfs"
fi
ctx=$OUT/ctx/frr
rm -rf "$ctx" && mkdir -p "$ctx"
cp "$rootfs" "$ctx/rootfs.tar"
# What FRR, vtysh and frr-reload.py never use at run time: perl's full library (pulled in by
# libsnmp, which only FRR's snmp module links; perl-base stays), iconv's charset modules, and
# dpkg's records of what is installed (the image is never upgraded in place).
tar --delete --wildcards -f "$ctx/rootfs.tar" \
  './usr/share/perl/*' './usr/lib/x86_64-linux-gnu/perl/*' './usr/lib/x86_64-linux-gnu/gconv/*' \
  './var/lib/dpkg/info/*' './var/cache/debconf/*'
cp deploy/images/frr/{daemons,vtysh.conf,frr.conf,frr-start} "$ctx/"
build frr "$ctx"

# --- the metallb binary -------------------------------------------------------------------
if [[ -n ${METALLB_BIN:-} ]]; then
  bin=$METALLB_BIN
else
  # The dist profile (Cargo.toml): whole-program LTO, the smallest binary and speaker RSS.
  nice -n 10 cargo build --profile dist --locked --quiet
  bin=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/dist/metallb
fi
[[ -x $bin ]] || { log "no metallb binary at $bin"; exit 1; }

# --- metallb: the binary and the shared objects it links (from this Debian 12 host, which
# built it) ---------------------------------------------------------------------------------
ctx=$OUT/ctx/metallb
rm -rf "$ctx" && mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp"
strip -o "$ctx/rootfs/usr/bin/metallb" "$bin"
for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
# The dynamic loader's canonical path, which the binary names in its ELF interpreter.
interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
mkdir -p "$ctx/rootfs$(dirname "$interp")"
cp -L "$interp" "$ctx/rootfs$interp"
build metallb "$ctx"

# --- speaker: frr + the binary --------------------------------------------------------------
ctx=$OUT/ctx/speaker
rm -rf "$ctx" && mkdir -p "$ctx"
cp "$OUT/ctx/metallb/rootfs/usr/bin/metallb" "$ctx/metallb"
# The frr image's digest is an input: a new frr image means a new speaker image.
"${BUILDAH[@]}" inspect --type image --format '{{.FromImageDigest}}' "localhost/metallb/frr:$TAG" >"$ctx/frr.digest"
build speaker "$ctx" --build-arg "FRR_IMAGE=localhost/metallb/frr:$TAG"

# --- must-gather: speaker + /usr/bin/gather (oc adm must-gather's contract) ------------------
ctx=$OUT/ctx/must-gather
rm -rf "$ctx" && mkdir -p "$ctx"
cp must-gather/gather must-gather/gather_metallb "$ctx/"
"${BUILDAH[@]}" inspect --type image --format '{{.FromImageDigest}}' "localhost/metallb/speaker:$TAG" >"$ctx/speaker.digest"
build must-gather "$ctx" --build-arg "SPEAKER_IMAGE=localhost/metallb/speaker:$TAG"

log "done in $(python3 -c "import time; print(round(time.time() - $start, 1))") s:" \
  "$(cd "$OUT" && du -h metallb.tar frr.tar speaker.tar pause.tar must-gather.tar bundle.tar | awk '{printf "%s %s  ", $2, $1}')"
