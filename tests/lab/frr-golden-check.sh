#!/usr/bin/env bash
# tests/lab/frr-golden-check.sh: is our rendered frr.conf canonical on a live FRR 8.4.4?
#
#   tests/lab/frr-golden-check.sh [FILE.conf ...]     (as root; default: tests/golden/frr/*.conf)
#
# For each file, on the lab's node1 (tests/lab/lab.sh; started here and stopped afterwards
# unless it is already up, in which case it is left running):
#   1. reload a baseline (header, nht lines, empty bfd block) so the file's objects are
#      created in file order (FRR prints creation order, frr/CANONICAL.md §2);
#   2. frr-reload.py --reload the file (hostname replaced by `uname -n`: FRR 8.4 ignores
#      any other, CANONICAL.md fact 5); its rc is not trusted (graceful-restart, fact 7);
#   3. frr-reload.py --test the file: stdout must be empty (no diff = canonical);
#   4. compare `show running-config` (without its preamble and `end`) with the file: reported
#      as IDENTICAL, identical up to creation order (frr-reload's apply order decides where new
#      route-maps print), or as a diff (informational; step 3 is the contract).
# Exit status: 0 when every file passed step 3.
# Env: MLB_LAB_PREFIX (default mlb-; the ignored cargo test uses mlbgold-).

set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
source "$here/lab.sh"

[[ $(id -u) -eq 0 ]] || { echo "frr-golden-check: must run as root" >&2; exit 1; }
command -v vtysh >/dev/null || { echo "frr-golden-check: FRR missing (hack/setup.sh)" >&2; exit 1; }

started=0
if ! lab_ns_exists "$(lab_ns node1)"; then
    MLB_LAB_CLIENT=0 MLB_LAB_QUIET=1 lab_up || exit 1
    started=1
fi
cleanup() { [[ $started == 1 ]] && MLB_LAB_QUIET=1 lab_down; }
trap cleanup EXIT

ns=$(lab_ns node1)
work=$(mktemp -d /tmp/frr-golden-check-XXXXXX)
baseline=$work/baseline.conf
cat > "$baseline" <<BASE
frr version 8.4.4
frr defaults traditional
hostname $(uname -n)
log stdout informational
log timestamp precision 3
service integrated-vtysh-config
!
ip nht resolve-via-default
!
ipv6 nht resolve-via-default
!
bfd
exit
!
BASE

if [[ $# -eq 0 ]]; then
    set -- "$repo"/tests/golden/frr/*.conf
fi
failed=0
for f in "$@"; do
    name=$(basename "$f")
    conf=$work/$name
    sed "s/^hostname .*/hostname $(uname -n)/" "$f" > "$conf"
    python3 "$LAB_RELOAD" -N "$ns" --reload --stdout "$baseline" >/dev/null 2>&1
    python3 "$LAB_RELOAD" -N "$ns" --reload --stdout "$conf" > "$work/$name.reload" 2>&1
    diff_out=$(python3 "$LAB_RELOAD" -N "$ns" --test --stdout "$conf" 2>"$work/$name.test.err")
    rc=$?
    vtysh -N "$ns" -c 'show running-config' | tail -n +5 | head -n -1 > "$work/$name.running"
    if [[ $rc -ne 0 || -n "$diff_out" ]]; then
        echo "FAIL $name: frr-reload --test rc=$rc"
        printf '%s\n' "$diff_out" | sed 's/^/    /'
        sed 's/^/    /' "$work/$name.test.err" | tail -5
        failed=1
    elif diff -q "$conf" "$work/$name.running" >/dev/null; then
        echo "ok   $name: --test empty, running-config IDENTICAL"
    elif diff -q <(sort "$conf") <(sort "$work/$name.running") >/dev/null; then
        # frr-reload.py applies new contexts in its own (unstable) order and FRR prints
        # route-maps and prefix-lists in creation order (CANONICAL.md §2); after a restart
        # FRR reads the file top to bottom and prints file order.
        echo "ok   $name: --test empty, running-config identical up to creation order"
    else
        echo "ok   $name: --test empty; running-config text differs:"
        diff "$conf" "$work/$name.running" | sed 's/^/    /' | head -20
    fi
done
python3 "$LAB_RELOAD" -N "$ns" --reload --stdout "$baseline" >/dev/null 2>&1
rm -rf "$work"
exit $failed
