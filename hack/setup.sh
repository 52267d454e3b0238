#!/usr/bin/env bash
# hack/setup.sh: prepare a fresh Debian 12 host (as root) for the metallb-rs FRR lab.
#
# Idempotent: a second run installs nothing and changes nothing.
#
# Packages (kept minimal; --no-install-recommends):
#   frr              zebra/bgpd/bfdd/staticd, watchfrr, vtysh, frrinit.sh (FRR 8.4.4 on bookworm)
#   frr-pythontools  /usr/lib/frr/frr-reload.py (the reload pipeline) and python3 (which
#                    tests/lab/lab.sh also uses to read vtysh JSON, so no jq is needed)
#   iproute2         ip netns / ip link / veth / bridge for the lab topology
#   iputils-ping     reachability checks inside the lab namespaces
#   procps           pgrep/pkill/ps, used to verify that no FRR daemon is left behind
#   prometheus       the real Prometheus the metrics lab test starts itself on loopback (its
#                    own service is never left running, like FRR's)
# The real node (hack/node.sh) and the images (hack/images.sh):
#   containerd, runc, containernetworking-plugins   the kubelet's container runtime and CNI
#   iptables         the node's one DNAT rule for the `kubernetes` Service (no kube-proxy)
#   buildah          assembles the OCI images from Containerfiles (deploy/images/), no daemon
#   mmdebstrap       the frr image's Debian root filesystem, from Debian's archive
#   catatonit        static init: the pause image and PID 1 of the frr container
# containerd's stock service is kept from running like FRR's: hack/node.sh starts its own
# containerd with its own socket and state, only while a node is up.
#
# The stock (default-pathspace) FRR service is never left running: the lab runs one FRR
# instance per network namespace (`-N <netns>`), and a root-namespace bgpd would be noise.
# During the install a temporary policy-rc.d (exit 101) stops the postinst from starting it
# (unless the host already has one); afterwards the service is stopped and disabled under
# systemd if systemd is PID 1, otherwise via the sysv init script / frrinit.sh.
set -euo pipefail

PKGS=(frr frr-pythontools iproute2 iputils-ping procps prometheus
      containerd runc containernetworking-plugins iptables buildah mmdebstrap catatonit)

log() { printf 'setup.sh: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: must run as root" >&2
    exit 1
fi

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for p in "${PKGS[@]}"; do
    is_installed "$p" || missing+=("$p")
done

created_policy=0
cleanup() {
    if [[ $created_policy -eq 1 ]]; then
        rm -f /usr/sbin/policy-rc.d
    fi
}
trap cleanup EXIT

if [[ ${#missing[@]} -gt 0 ]]; then
    log "missing packages: ${missing[*]}"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # Keep invoke-rc.d / deb-systemd-invoke from starting frr in the postinst.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the lists when a package is missing, and only if apt cannot find it.
    need_update=0
    for p in "${missing[@]}"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then need_update=1; fi
    done
    # Candidates can also be stale (404 on download): update when lists are older than a day.
    if [[ $need_update -eq 0 ]] && \
       [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mtime -1 -print -quit 2>/dev/null)" ]]; then
        need_update=1
    fi
    if [[ $need_update -eq 1 ]]; then
        log "apt-get update"
        apt-get update -q
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    log "installed: ${missing[*]}"
else
    log "all packages already installed: ${PKGS[*]}"
fi

# --- make sure the stock frr service is not running and will not start at boot ---------
if command -v systemctl >/dev/null 2>&1 && [[ -e /lib/systemd/system/frr.service ]]; then
    # `systemctl disable` also works offline (no systemd PID 1): it just removes the
    # multi-user.target.wants symlink the postinst created.
    if [[ "$(systemctl is-enabled frr 2>/dev/null || true)" == enabled ]]; then
        log "disabling frr.service"
        systemctl disable frr >/dev/null 2>&1 || true
    fi
    if [[ -d /run/systemd/system ]] && systemctl is-active --quiet frr 2>/dev/null; then
        log "stopping frr.service"
        systemctl stop frr || true
    fi
fi
if [[ -x /etc/init.d/frr ]] && ls /etc/rc[2345].d/S*frr >/dev/null 2>&1; then
    # sysv start links (hosts without systemd).
    log "disabling sysv frr links"
    update-rc.d frr disable >/dev/null 2>&1 || true
fi

# --- the stock prometheus service: tests start their own on loopback -------------------
if command -v systemctl >/dev/null 2>&1 && [[ -e /lib/systemd/system/prometheus.service ]]; then
    if [[ "$(systemctl is-enabled prometheus 2>/dev/null || true)" == enabled ]]; then
        log "disabling prometheus.service"
        systemctl disable prometheus >/dev/null 2>&1 || true
    fi
    if [[ -d /run/systemd/system ]] && systemctl is-active --quiet prometheus 2>/dev/null; then
        log "stopping prometheus.service"
        systemctl stop prometheus || true
    fi
fi
if [[ -x /etc/init.d/prometheus ]] && ls /etc/rc[2345].d/S*prometheus >/dev/null 2>&1; then
    update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
if [[ -f /run/prometheus.pid ]] && kill -0 "$(cat /run/prometheus.pid)" 2>/dev/null; then
    log "stopping the stock prometheus"
    kill "$(cat /run/prometheus.pid)" 2>/dev/null || true
fi

# A default-pathspace watchfrr (no "-N <name>") means the stock service is up. Lab instances
# always carry -N and are left alone.
default_watchfrr() { pgrep -a watchfrr 2>/dev/null | grep -v -- ' -N ' || true; }
if [[ -n "$(default_watchfrr)" ]]; then
    log "stock FRR instance running, stopping it:"
    default_watchfrr | sed 's/^/    /'
    /usr/lib/frr/frrinit.sh stop || true
    for _ in $(seq 1 50); do
        [[ -z "$(default_watchfrr)" ]] && break
        sleep 0.1
    done
fi
# Daemons of the default instance write pidfiles directly under /var/run/frr.
for pf in /var/run/frr/*.pid; do
    [[ -e $pf ]] || continue
    pid=$(cat "$pf" 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        log "stopping leftover default-instance daemon $(basename "$pf" .pid) (pid $pid)"
        kill -INT "$pid" 2>/dev/null || true
    fi
done
if [[ -n "$(default_watchfrr)" ]]; then
    echo "setup.sh: the stock FRR instance is still running" >&2
    exit 1
fi

# The stock containerd service (the package enables it) must not run beside hack/node.sh's.
if command -v systemctl >/dev/null 2>&1 && [[ -e /lib/systemd/system/containerd.service ]]; then
    if [[ "$(systemctl is-enabled containerd 2>/dev/null || true)" == enabled ]]; then
        log "disabling containerd.service"
        systemctl disable containerd >/dev/null 2>&1 || true
    fi
    if [[ -d /run/systemd/system ]] && systemctl is-active --quiet containerd 2>/dev/null; then
        log "stopping containerd.service"
        systemctl stop containerd || true
    fi
fi

# vtysh 8.4 has no --version; `vtysh -h` prints "Integrated shell for FRR (version X)".
log "FRR: $(vtysh -h 2>&1 | sed -n 's/.*(version \(.*\)).*/\1/p' | head -n1)"
log "versions: $(dpkg-query -W -f='${Package}=${Version} ' "${PKGS[@]}")"
log "done"
