#!/usr/bin/env bash
# tests/lab/lab.sh: network-namespace BGP lab for metallb-rs (FRR 8.4.4, Debian 12).
#
#   tests/lab/lab.sh up|down|status|selftest   (as root; run hack/setup.sh first)
#   source tests/lab/lab.sh                    (library: lab_* functions, nothing runs)
#
# Timings on the 2-vCPU Debian 12 VM: up 0.5-1.05 s; down 1.4-1.7 s (0.3-0.66 s with
# MLB_LAB_FAST_DOWN=1, see below); selftest (node1 peers and announces, the router sees both
# routes) 5-6 s, almost all of it BGP session setup.
# Zombie note: on hosts whose PID 1 reaps orphans lazily (this firecracker VM), stopped
# daemons linger as "[watchfrr] <defunct>" for ~2 s; `down` waits for that (up to 5 s) so
# `pgrep -a -f frr` is clean afterwards. MLB_LAB_FAST_DOWN=1 skips the wait (down ~0.3-0.6 s).
#
# Topology (every name carries $MLB_LAB_PREFIX, default "mlb-"; nothing in the root netns
# unless MLB_LAB_HOST=1):
#
#   netns ${P}sw: bridge br0, ports p-router p-node1 p-node2 p-client (veth)
#        |             |              |             |
#   ${P}router     ${P}node1      ${P}node2     ${P}client      (each: eth0, lo)
#   10.77.0.1      10.77.0.11     10.77.0.12    10.77.0.100     /24
#   fd00:77::1     fd00:77::11    fd00:77::12   fd00:77::100    /64
#   FRR AS 64501   FRR            FRR           no FRR
#
# With MLB_LAB_HOST=1 the root netns gets a port too: veth ${P}host (root end, 10.77.0.254/24,
# fd00:77::254/64) <-> p-host on br0, so processes inside the node namespaces can reach a
# service on the host (the kube-apiserver of the k8s lab test and hack/lab-demo). Only the
# lab's own /24 and /64 become routable from the host; nothing is forwarded or NATed. One such
# lab at a time: up refuses when 10.77.0.0/24 or fd00:77::/64 is already routed in the root netns.
#
# Each FRR instance is a pathspace named after its netns (-N ${P}router ...): config in
# /etc/frr/<ns>/, sockets and pidfiles in /var/run/frr/<ns>/, started by
# `frrinit.sh start <ns>` with watchfrr --netns (zebra, bgpd, staticd, bfdd).
# Query with: vtysh -N ${P}router -c 'show bgp summary'
#
# Environment:
#   MLB_LAB_PREFIX        namespace/pathspace prefix (default "mlb-")
#   MLB_LAB_NODE_CONF     frr.conf for both nodes (default: lab_node_conf_minimal)
#   MLB_LAB_NODE1_CONF    frr.conf for node1 only (overrides MLB_LAB_NODE_CONF)
#   MLB_LAB_NODE2_CONF    frr.conf for node2 only
#                         In these files @HOSTNAME@ @NS@ @IPV4@ @IPV6@ @ROUTER_IPV4@
#                         @ROUTER_IPV6@ are replaced. @HOSTNAME@ is `uname -n`, not the
#                         netns name: FRR 8.4 ignores `hostname` and always prints the
#                         nodename (frr/CANONICAL.md), so anything else is a permanent
#                         diff. lab_node_conf_bgp renders an initial `router bgp 64500`
#                         peering to the router (v4 + v6, bfd, no prefixes).
#   MLB_LAB_CLIENT=0      do not create the client namespace
#   MLB_LAB_HOST=1        also connect the root netns to br0 as 10.77.0.254 (see above)
#   MLB_LAB_HOST_PEER=1   the router also peers with 10.77.0.254 (AS 64500): the host is a
#                         BGP node (the speaker pod on hack/node.sh's real node)
#   MLB_LAB_QUIET=1       less output
#
# Library functions (after `source`): lab_up, lab_down, lab_status, lab_ns ROLE,
# lab_vtysh ROLE ARGS..., lab_exec ROLE CMD..., lab_ipv4 ROLE, lab_ipv6 ROLE,
# lab_node_conf_minimal, lab_node_conf_bgp (print templates), lab_subst ROLE (fills the
# placeholders from stdin), lab_node_conf_for ROLE, lab_reload ROLE FILE,
# lab_apply ROLE FILE, lab_wait_established ROLE PEER [TIMEOUT],
# lab_wait_route ROLE PREFIX [NEXTHOP] [TIMEOUT], lab_bgp_counter ROLE PEER FIELD,
# lab_leftovers, lab_selftest, lab_host_up, lab_host_down, lab_host_link.
# Roles: sw router node1 node2 client.

: "${MLB_LAB_PREFIX:=mlb-}"
: "${MLB_LAB_CLIENT:=1}"
: "${MLB_LAB_HOST:=0}"
: "${MLB_LAB_HOST_PEER:=0}"
: "${MLB_LAB_QUIET:=0}"

LAB_ROLES_ALL="router node1 node2 client"
LAB_ROLES_FRR="router node1 node2"
LAB_ROUTER_ASN=64501
LAB_NODE_ASN=64500
LAB_FRR_DAEMONS="zebra bgpd staticd bfdd"
LAB_FRRINIT=/usr/lib/frr/frrinit.sh
LAB_RELOAD=/usr/lib/frr/frr-reload.py

lab_log() { [[ "$MLB_LAB_QUIET" == 1 ]] || printf 'lab: %s\n' "$*" >&2; }
lab_die() { printf 'lab: ERROR: %s\n' "$*" >&2; return 1; }

lab_ns() { printf '%s%s' "$MLB_LAB_PREFIX" "$1"; }

lab_octet() {
    case "$1" in
        router) echo 1 ;; node1) echo 11 ;; node2) echo 12 ;; node3) echo 13 ;; client) echo 100 ;;
        *) lab_die "unknown role '$1'" ;;
    esac
}
lab_ipv4() { echo "10.77.0.$(lab_octet "$1")"; }
# The root netns end of the host port (MLB_LAB_HOST=1).
LAB_HOST_IPV4=10.77.0.254
LAB_HOST_IPV6=fd00:77::254
lab_ipv6() { echo "fd00:77::$(lab_octet "$1")"; }
# Deterministic MACs (02:77:00:00:00:<octet in hex>) so layer-2 tests can predict them.
lab_mac() { printf '02:77:00:00:00:%02x' "$(lab_octet "$1")"; }

lab_exec() { local r=$1; shift; ip netns exec "$(lab_ns "$r")" "$@"; }
lab_vtysh() { local r=$1; shift; vtysh -N "$(lab_ns "$r")" "$@"; }

lab_ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# ---------------------------------------------------------------------------------------
# FRR configuration
# ---------------------------------------------------------------------------------------

lab_router_conf() {
    local r4 r6 n
    cat <<EOF
frr version 8.4.4
frr defaults traditional
hostname $(uname -n)
log file /var/run/frr/$(lab_ns router)/frr.log informational
log timestamp precision 3
service integrated-vtysh-config
!
router bgp ${LAB_ROUTER_ASN}
 bgp router-id $(lab_ipv4 router)
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 bgp bestpath as-path multipath-relax
EOF
    for n in node1 node2; do
        r4=$(lab_ipv4 $n); r6=$(lab_ipv6 $n)
        cat <<EOF
 neighbor ${r4} remote-as ${LAB_NODE_ASN}
 neighbor ${r4} bfd
 neighbor ${r4} timers connect 5
 neighbor ${r6} remote-as ${LAB_NODE_ASN}
 neighbor ${r6} bfd
 neighbor ${r6} timers connect 5
EOF
    done
    # The host as a BGP node too (MLB_LAB_HOST_PEER=1): the speaker pod of hack/node.sh's real
    # node runs on the host network, so its FRR peers from the host port's address.
    if [[ $MLB_LAB_HOST_PEER == 1 ]]; then
        cat <<EOF
 neighbor ${LAB_HOST_IPV4} remote-as ${LAB_NODE_ASN}
 neighbor ${LAB_HOST_IPV4} timers connect 5
EOF
    fi
    cat <<EOF
 !
 address-family ipv4 unicast
  maximum-paths 8
  neighbor $(lab_ipv4 node1) activate
  neighbor $(lab_ipv4 node2) activate$([[ $MLB_LAB_HOST_PEER == 1 ]] && printf '\n  neighbor %s activate' "$LAB_HOST_IPV4")
 exit-address-family
 !
 address-family ipv6 unicast
  maximum-paths 8
  neighbor $(lab_ipv6 node1) activate
  neighbor $(lab_ipv6 node2) activate
 exit-address-family
exit
!
EOF
}

# Header only: what a node looks like before the speaker has rendered anything.
lab_node_conf_minimal() {
    cat <<'EOF'
frr version 8.4.4
frr defaults traditional
hostname @HOSTNAME@
log file /var/run/frr/@NS@/frr.log informational
log timestamp precision 3
service integrated-vtysh-config
!
EOF
}

# An initial eBGP peering to the router over v4 and v6 (no prefixes announced).
lab_node_conf_bgp() {
    lab_node_conf_minimal
    cat <<EOF
router bgp ${LAB_NODE_ASN}
 bgp router-id @IPV4@
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor @ROUTER_IPV4@ remote-as ${LAB_ROUTER_ASN}
 neighbor @ROUTER_IPV4@ bfd
 neighbor @ROUTER_IPV6@ remote-as ${LAB_ROUTER_ASN}
 neighbor @ROUTER_IPV6@ bfd
 !
 address-family ipv4 unicast
  neighbor @ROUTER_IPV4@ activate
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor @ROUTER_IPV6@ activate
 exit-address-family
exit
!
EOF
}

# Replace the @...@ placeholders for ROLE on stdin.
lab_subst() {
    local r=$1
    sed -e "s|@HOSTNAME@|$(uname -n)|g" -e "s|@NS@|$(lab_ns "$r")|g" \
        -e "s|@IPV4@|$(lab_ipv4 "$r")|g" -e "s|@IPV6@|$(lab_ipv6 "$r")|g" \
        -e "s|@ROUTER_IPV4@|$(lab_ipv4 router)|g" -e "s|@ROUTER_IPV6@|$(lab_ipv6 router)|g"
}

lab_node_conf_for() {
    local r=$1 f var
    var="MLB_LAB_${r^^}_CONF"
    f="${!var:-${MLB_LAB_NODE_CONF:-}}"
    if [[ -n "$f" ]]; then
        [[ -r "$f" ]] || { lab_die "$var/MLB_LAB_NODE_CONF: cannot read '$f'"; return 1; }
        lab_subst "$r" < "$f"
    else
        lab_node_conf_minimal | lab_subst "$r"
    fi
}

lab_write_frr_files() {
    local r=$1 ns dir
    ns=$(lab_ns "$r"); dir=/etc/frr/$ns
    install -d -o frr -g frr -m 0750 "$dir"
    cat > "$dir/daemons" <<'EOF'
# written by tests/lab/lab.sh
bgpd=yes
bfdd=yes
staticd=yes
vtysh_enable=yes
frr_profile="traditional"
zebra_options="  -A 127.0.0.1 -s 90000000"
bgpd_options="   -A 127.0.0.1"
staticd_options="-A 127.0.0.1"
bfdd_options="   -A 127.0.0.1"
watchfrr_options="--netns"
EOF
    echo 'service integrated-vtysh-config' > "$dir/vtysh.conf"
    if [[ $r == router ]]; then
        lab_router_conf > "$dir/frr.conf"
    else
        lab_node_conf_for "$r" > "$dir/frr.conf" || return 1
    fi
    chown frr:frr "$dir"/daemons "$dir"/vtysh.conf "$dir"/frr.conf
    chmod 0640 "$dir"/daemons "$dir"/vtysh.conf "$dir"/frr.conf
}

# ---------------------------------------------------------------------------------------
# FRR process control
# ---------------------------------------------------------------------------------------

# PIDs of FRR processes belonging to pathspace NS (exact -N match).
lab_frr_pids() {
    local ns=$1
    # pgrep -f never matches zombies (their cmdline is empty).
    pgrep -f -- "/usr/lib/frr/[a-z]+ -N ${ns}( |$)" 2>/dev/null || true
}

lab_frr_start() {
    local r=$1 ns
    ns=$(lab_ns "$r")
    "$LAB_FRRINIT" start "$ns" >/dev/null 2>&1 || { lab_die "frrinit.sh start $ns failed"; return 1; }
}

# Wait until watchfrr reports every daemon Up. Each daemon reads the integrated
# /etc/frr/<ns>/frr.conf itself as its first event after start (frr_config_fork), before it
# answers on its vty, so "Up" in `show watchfrr` means the file has been applied.
lab_frr_wait_ready() {
    local r=$1 timeout=${2:-30} ns d i out ok
    ns=$(lab_ns "$r")
    for ((i = 0; i < timeout * 10; i++)); do
        out=$(vtysh -N "$ns" -c 'show watchfrr' 2>/dev/null || true)
        ok=1
        grep -q 'global phase: Idle' <<<"$out" || ok=0
        for d in $LAB_FRR_DAEMONS; do
            grep -Eq "^ +${d} +Up" <<<"$out" || { ok=0; break; }
        done
        if [[ $ok == 1 ]] && vtysh -N "$ns" -c 'show running-config' >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    lab_die "FRR in $ns not ready after ${timeout}s"
}

# True if PID exists and is not a zombie. (On hosts whose PID 1 reaps orphans lazily, such
# as this firecracker VM, a stopped daemon stays a zombie for ~2 s; frrinit.sh's own stop
# waits for that, which made `down` take ~6 s.)
lab_pid_alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

# SIGINT the daemon named by pidfile and wait up to 10 s for it to exit.
lab_pidfile_stop() {
    local pf=$1 pid i
    [[ -r $pf ]] || return 0
    pid=$(cat "$pf" 2>/dev/null || true)
    [[ -n $pid ]] || return 0
    lab_pid_alive "$pid" || { rm -f "$pf"; return 0; }
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        lab_pid_alive "$pid" || { rm -f "$pf"; return 0; }
        sleep 0.05
    done
    return 1
}

# Stop one instance: watchfrr first (so it does not restart anything), then bgpd, staticd and
# bfdd together, zebra last; the order frrinit.sh uses. Then verify with pgrep.
lab_frr_stop() {
    local r=$1 ns dir pid d i pids=()
    ns=$(lab_ns "$r"); dir=/var/run/frr/$ns
    lab_pidfile_stop "$dir/watchfrr.pid" || lab_log "watchfrr of $ns did not stop on SIGINT"
    for d in $LAB_FRR_DAEMONS; do
        [[ $d == zebra ]] && continue
        lab_pidfile_stop "$dir/$d.pid" & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    lab_pidfile_stop "$dir/zebra.pid" || true
    # Anything left (unknown pidfile, stuck daemon): exact "-N <ns>" match, SIGKILL.
    for pid in $(lab_frr_pids "$ns"); do
        lab_log "killing leftover FRR pid $pid ($ns): $(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null)"
        kill -KILL "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < 40; i++)); do
        [[ -z "$(lab_frr_pids "$ns")" ]] && return 0
        sleep 0.05
    done
    lab_die "FRR processes of $ns still running: $(lab_frr_pids "$ns" | tr '\n' ' ')"
}

# ---------------------------------------------------------------------------------------
# Topology
# ---------------------------------------------------------------------------------------

lab_roles() {
    local r
    for r in $LAB_ROLES_ALL; do
        [[ $r == client && "$MLB_LAB_CLIENT" != 1 ]] && continue
        echo "$r"
    done
}

lab_netns_prepare() {
    local ns=$1
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # No DAD (addresses usable at once), no RA/autoconf noise.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 >/dev/null
}

lab_topology_up() {
    local sw r ns
    sw=$(lab_ns sw)
    lab_netns_prepare "$sw"
    ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    ip -n "$sw" link set br0 up
    for r in $(lab_roles); do
        ns=$(lab_ns "$r")
        lab_netns_prepare "$ns"
        # Create the veth pair inside the switch netns with the peer directly in the member
        # netns: the root namespace never sees it, so parallel labs cannot collide.
        ip -n "$sw" link add "p-$r" type veth peer name eth0 netns "$ns"
        ip -n "$sw" link set "p-$r" master br0 up
        ip -n "$ns" link set eth0 address "$(lab_mac "$r")"
        ip -n "$ns" addr add "$(lab_ipv4 "$r")/24" dev eth0
        ip -n "$ns" addr add "$(lab_ipv6 "$r")/64" dev eth0 nodad
        ip -n "$ns" link set eth0 up
    done
}

# The root netns end of the host port: named after the prefix so parallel labs (which never
# enable it together, see lab_host_up) and the other labs' interfaces cannot collide.
lab_host_link() { printf '%shost' "$MLB_LAB_PREFIX"; }

# Refuses when the host link name is too long for the kernel (15 bytes) or when the root netns
# already routes the lab subnet (another lab's host port, or a real network): a lab must never
# shadow anything of the host.
lab_host_check() {
    local link
    link=$(lab_host_link)
    [[ ${#link} -le 15 ]] || { lab_die "host link name '$link' longer than 15 bytes (shorten MLB_LAB_PREFIX)"; return 1; }
    local taken
    taken="$(ip -4 route show exact 10.77.0.0/24)$(ip -6 route show exact fd00:77::/64)$(ip -4 addr show to "$LAB_HOST_IPV4/32")"
    if [[ -n "$taken" ]]; then
        lab_die "the lab subnet is already routed in the root netns (another lab with MLB_LAB_HOST=1?): $taken"
        return 1
    fi
}

# Connect the root netns to br0 as 10.77.0.254/24 and fd00:77::254/64.
lab_host_up() {
    local link sw
    link=$(lab_host_link); sw=$(lab_ns sw)
    lab_host_check || return 1
    ip link add "$link" type veth peer name p-host netns "$sw" || return 1
    ip -n "$sw" link set p-host master br0 up
    # Same as inside the namespaces: no DAD, no router advertisements taken from the lab.
    # (Written to /proc: sysctl would read a '.' in the prefix as a key separator.)
    local k
    for k in accept_dad accept_ra autoconf; do
        echo 0 > "/proc/sys/net/ipv6/conf/$link/$k"
    done
    ip addr add "$LAB_HOST_IPV4/24" dev "$link"
    ip addr add "$LAB_HOST_IPV6/64" dev "$link" nodad
    ip link set "$link" up
}

# Remove the host port (idempotent). Deleting one end of a veth pair deletes both, so this
# also covers a lab whose switch namespace is already gone.
lab_host_down() {
    local link
    link=$(lab_host_link)
    if ip link show "$link" >/dev/null 2>&1; then
        ip link del "$link"
    fi
}

lab_up() {
    local r ns pids=() rc=0 p
    command -v vtysh >/dev/null || { lab_die "FRR missing: run hack/setup.sh"; return 1; }
    for r in sw $LAB_ROLES_ALL; do
        ns=$(lab_ns "$r")
        if lab_ns_exists "$ns" || [[ -d /etc/frr/$ns ]]; then
            lab_die "$ns already exists (run: lab.sh down)"; return 1
        fi
    done
    if ip link show "$(lab_host_link)" >/dev/null 2>&1; then
        lab_die "$(lab_host_link) already exists (run: lab.sh down)"; return 1
    fi
    # Checked before anything is created, so a refusal leaves nothing to clean up.
    if [[ "$MLB_LAB_HOST" == 1 ]]; then
        lab_host_check || return 1
    fi
    lab_log "creating namespaces (prefix '$MLB_LAB_PREFIX')"
    lab_topology_up || { lab_die "topology failed"; return 1; }
    if [[ "$MLB_LAB_HOST" == 1 ]]; then
        lab_host_up || { lab_die "host port failed"; return 1; }
    fi
    for r in $LAB_ROLES_FRR; do
        lab_write_frr_files "$r" || return 1
    done
    lab_log "starting FRR: $LAB_ROLES_FRR"
    for r in $LAB_ROLES_FRR; do
        lab_frr_start "$r" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    [[ $rc == 0 ]] || return 1
    pids=()
    for r in $LAB_ROLES_FRR; do
        lab_frr_wait_ready "$r" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    [[ $rc == 0 ]] || return 1
    lab_exec node1 ping -c1 -W2 -q "$(lab_ipv4 router)" >/dev/null || { lab_die "node1 cannot ping router (v4)"; return 1; }
    lab_exec node1 ping -6 -c1 -W2 -q "$(lab_ipv6 router)" >/dev/null || { lab_die "node1 cannot ping router (v6)"; return 1; }
    if [[ "$MLB_LAB_HOST" == 1 ]]; then
        lab_exec node1 ping -c1 -W2 -q "$LAB_HOST_IPV4" >/dev/null || { lab_die "node1 cannot ping the host port ($LAB_HOST_IPV4)"; return 1; }
    fi
    lab_log "up"
}

lab_down() {
    local r ns pids=() p rc=0 pid
    for r in $LAB_ROLES_FRR; do
        lab_frr_stop "$r" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    # Whether or not MLB_LAB_HOST is set now: an earlier `up` may have had it.
    lab_host_down || rc=1
    for r in $LAB_ROLES_ALL sw; do
        ns=$(lab_ns "$r")
        if lab_ns_exists "$ns"; then
            # Processes started inside the lab namespaces (tests, speakers) die with the lab.
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                lab_log "killing pid $pid still inside $ns: $(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null)"
                kill -TERM "$pid" 2>/dev/null || true
            done
            ip netns del "$ns" || rc=1
        fi
        rm -rf "/etc/frr/$ns" "/var/run/frr/$ns"
    done
    # Stopped daemons stay zombies until PID 1 reaps them (~2 s on this VM); wait for that so
    # `pgrep -a -f frr` is clean right after down. MLB_LAB_FAST_DOWN=1 skips the wait.
    if [[ "${MLB_LAB_FAST_DOWN:-0}" != 1 ]]; then
        local i
        for ((i = 0; i < 100; i++)); do
            ps -eo stat=,comm= | grep -Eq '^Z[^ ]* +(watchfrr|zebra|bgpd|staticd|bfdd)$' || break
            sleep 0.05
        done
    fi
    local left
    left=$(lab_leftovers)
    if [[ -n "$left" ]]; then
        printf '%s\n' "$left" >&2
        lab_die "down left things behind"
        return 1
    fi
    lab_log "down"
    return $rc
}

# Prints anything of this lab that still exists (empty output = clean).
lab_leftovers() {
    local r ns
    for r in sw $LAB_ROLES_ALL; do
        ns=$(lab_ns "$r")
        lab_ns_exists "$ns" && echo "netns $ns"
        [[ -e /etc/frr/$ns ]] && echo "dir /etc/frr/$ns"
        [[ -e /var/run/frr/$ns ]] && echo "dir /var/run/frr/$ns"
        local p
        for p in $(lab_frr_pids "$ns"); do echo "process $p $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)"; done
    done
    ip link show "$(lab_host_link)" >/dev/null 2>&1 && echo "link $(lab_host_link) (root netns)"
    return 0
}

lab_status() {
    local r ns n
    for r in sw $LAB_ROLES_ALL; do
        ns=$(lab_ns "$r")
        if lab_ns_exists "$ns"; then
            printf '%-14s netns up' "$ns"
            [[ $r != sw ]] && printf '  %s %s' "$(lab_ipv4 "$r" 2>/dev/null)" "$(lab_ipv6 "$r" 2>/dev/null)"
            n=$(lab_frr_pids "$ns" | wc -l)
            [[ $n -gt 0 ]] && printf '  FRR processes: %s' "$n"
            echo
        else
            printf '%-14s absent\n' "$ns"
        fi
    done
    if ip link show "$(lab_host_link)" >/dev/null 2>&1; then
        printf '%-14s root netns link  %s %s\n' "$(lab_host_link)" "$LAB_HOST_IPV4" "$LAB_HOST_IPV6"
    fi
    if lab_ns_exists "$(lab_ns router)" && [[ -n "$(lab_frr_pids "$(lab_ns router)")" ]]; then
        echo "--- $(lab_ns router): show bgp summary"
        lab_vtysh router -c 'show bgp summary' 2>&1 | sed 's/^/  /'
        echo "--- $(lab_ns router): show bfd peers brief"
        lab_vtysh router -c 'show bfd peers brief' 2>&1 | sed 's/^/  /'
    fi
}

# ---------------------------------------------------------------------------------------
# Helpers for tests
# ---------------------------------------------------------------------------------------

# frr-reload.py --reload FILE into ROLE's instance (placeholders substituted).
lab_reload() {
    local r=$1 f=$2 ns tmp rc=0
    ns=$(lab_ns "$r")
    tmp=$(mktemp "/tmp/lab-$ns-XXXXXX.conf")
    lab_subst "$r" < "$f" > "$tmp"
    python3 "$LAB_RELOAD" -N "$ns" --reload --stdout "$tmp" || rc=$?
    rm -f "$tmp"
    return $rc
}

# vtysh -f FILE (additive apply, placeholders substituted).
lab_apply() {
    local r=$1 f=$2 ns tmp rc=0
    ns=$(lab_ns "$r")
    tmp=$(mktemp "/tmp/lab-$ns-XXXXXX.conf")
    lab_subst "$r" < "$f" > "$tmp"
    vtysh -N "$ns" -f "$tmp" || rc=$?
    rm -f "$tmp"
    return $rc
}

# A field of `show bgp neighbors PEER json` (e.g. bgpState, connectionsEstablished).
lab_bgp_counter() {
    local r=$1 peer=$2 field=$3
    lab_vtysh "$r" -c "show bgp neighbors $peer json" 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); p=d.get(sys.argv[1],{}); print(p.get(sys.argv[2],""))' "$peer" "$field"
}

lab_wait_established() {
    local r=$1 peer=$2 timeout=${3:-60} i
    for ((i = 0; i < timeout * 5; i++)); do
        [[ "$(lab_bgp_counter "$r" "$peer" bgpState)" == Established ]] && return 0
        sleep 0.2
    done
    lab_die "$(lab_ns "$r"): session to $peer not Established after ${timeout}s"
}

# Wait until ROLE has a best path for PREFIX (optionally with next hop NEXTHOP).
lab_wait_route() {
    local r=$1 prefix=$2 nh=${3:-} timeout=${4:-60} i afi=ipv4
    [[ $prefix == *:* ]] && afi=ipv6
    for ((i = 0; i < timeout * 5; i++)); do
        if lab_vtysh "$r" -c "show bgp $afi unicast json" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
paths = d.get("routes", {}).get(sys.argv[1], [])
nh = sys.argv[2]
for p in paths:
    if not p.get("bestpath"):
        continue
    hops = [h.get("ip") for h in p.get("nexthops", [])]
    if not nh or nh in hops:
        sys.exit(0)
sys.exit(1)' "$prefix" "$nh"; then
            return 0
        fi
        sleep 0.2
    done
    lab_die "$(lab_ns "$r"): no best path for $prefix ${nh:+via $nh }after ${timeout}s"
}

# Smoke test of a running lab: node1 peers with the router and announces one v4 and one v6
# prefix; the router must get them with node1 as next hop. Restores node1's start config.
lab_selftest() {
    local f t0 t1 rc=0
    f=$(mktemp /tmp/lab-selftest-XXXXXX.conf)
    lab_node_conf_bgp | sed -e 's|^ address-family ipv4 unicast$|&\n  network 198.51.100.10/32|' \
        -e 's|^ address-family ipv6 unicast$|&\n  network 2001:db8:77::10/128|' > "$f"
    t0=$(date +%s.%N)
    lab_reload node1 "$f" >/dev/null 2>&1 || { lab_die "frr-reload.py into $(lab_ns node1) failed"; rc=1; }
    if [[ $rc == 0 ]]; then
        lab_wait_established router "$(lab_ipv4 node1)" 60 &&
            lab_wait_route router 198.51.100.10/32 "$(lab_ipv4 node1)" 30 &&
            lab_wait_established router "$(lab_ipv6 node1)" 60 &&
            lab_wait_route router 2001:db8:77::10/128 "$(lab_ipv6 node1)" 30 || rc=1
    fi
    t1=$(date +%s.%N)
    [[ $rc == 0 ]] && lab_log "selftest ok: router has 198.51.100.10/32 via $(lab_ipv4 node1) and 2001:db8:77::10/128 via $(lab_ipv6 node1) ($(python3 -c "print(round($t1-$t0,2))") s after reload)"
    lab_node_conf_for node1 > "$f" && lab_reload node1 "$f" >/dev/null 2>&1 || true
    rm -f "$f"
    return $rc
}

lab_main() {
    set -euo pipefail
    [[ $(id -u) -eq 0 ]] || { echo "lab.sh: must run as root" >&2; exit 1; }
    case "${1:-}" in
        up) lab_up ;;
        down) lab_down ;;
        status) lab_status ;;
        selftest) lab_selftest ;;
        *) echo "usage: $0 up|down|status|selftest   (env MLB_LAB_PREFIX=${MLB_LAB_PREFIX})" >&2; exit 2 ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    lab_main "$@"
fi
