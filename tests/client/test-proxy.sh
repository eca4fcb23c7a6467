#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `vdisk serve nbd://upstream`: the NBD attachment behind the NBD server,
# a proxy.  Checks that data, zeroing and block status pass through
# (nbdcopy and qemu-img as downstream clients, nbdkit upstream), and that
# the proxy rides out an upstream that is killed with SIGKILL and
# restarted KILLS times under load: the downstream client sees no error,
# keeps its one connection, and the upstream image ends byte-identical
# to what was written.
#   test-proxy.sh [KILLS]
. "$top_srcdir/tests/functions.sh"
: "${NBD_IO:?}"
requires nbdkit --version
requires nbdcopy --version
requires qemu-img --version

kills=${1:-10}
size=$((32 * 1024 * 1024))
img=$tmpdir/upstream.img
up=$tmpdir/up.sock
px=$tmpdir/proxy.sock
truncate -s "$size" "$img"

upstream_pid=
start_upstream ()
{
    rm -f "$up"
    nbdkit -f -U "$up" file "$img" &
    upstream_pid=$!
}
kill_upstream () { kill -9 "$upstream_pid" 2>/dev/null || true; wait "$upstream_pid" 2>/dev/null || true; }
cleanup_fn 'kill_upstream'
start_upstream
wait_for_socket "$up"

start_bg proxy "$VDISK" serve --timeout 30 -s "$px" "nbd+unix:///?socket=$up"
wait_for_socket "$px"
down="nbd+unix:///?socket=$px"

# Data through the proxy, with nbdcopy downstream.
head -c $((20 * 1024 * 1024 + 4321)) /dev/urandom > "$tmpdir/src"
nbdcopy "$tmpdir/src" "$down"
nbdcopy "$down" "$tmpdir/back"
cmp -n $(stat -c %s "$tmpdir/src") "$tmpdir/src" "$tmpdir/back" ||
    fail "data through the proxy differs"
cmp -n $(stat -c %s "$tmpdir/src") "$tmpdir/src" "$img" ||
    fail "the upstream image does not hold what went through the proxy"
# Zeroing and block status pass through.
"$NBD_IO" zero "$down" 1048576 2097152 trim
norm () {
    python3 -c '
import json, sys
ext = []
for e in json.load(sys.stdin):
    k = (e["data"], e["zero"])
    if ext and ext[-1][2] == k:
        ext[-1][1] += e["length"]
    else:
        ext.append([e["start"], e["length"], k])
print(ext)'
}
qemu-img map --output=json "$down" | norm > "$tmpdir/map.down"
qemu-img map --output=json "nbd+unix:///?socket=$up" | norm > "$tmpdir/map.up"
diff -u "$tmpdir/map.up" "$tmpdir/map.down" || fail "block status differs through the proxy"

# Kill the upstream under load; the downstream client must not notice.
"$NBD_IO" -t 20 -j 4 -r 131072 --until "$tmpdir/stop" --min-rounds 2 \
    --events "$tmpdir/events" torture "$down" > "$tmpdir/out" 2> "$tmpdir/err" &
client=$!
cleanup_fn "kill $client"
# RANDOM is drawn outside the command substitutions, whose draws would
# not advance this shell's sequence (VD_SEED would not reproduce a run).
RANDOM=${VD_SEED:-$$}
for (( i = 1; i <= kills; i++ )); do
    gap=$(( RANDOM % 400 + 100 )) down=$(( RANDOM % 200 ))
    sleep "0.$(printf '%03d' "$gap")"
    kill -0 "$client" 2>/dev/null || break
    kill_upstream
    sleep "0.$(printf '%03d' "$down")"
    start_upstream
done
touch "$tmpdir/stop"
set +e
wait "$client"
rc=$?
set -e
cat "$tmpdir/out"
[ $rc = 0 ] || { cat "$tmpdir/err" >&2; fail "the downstream client failed"; }
[ "$(grep -c ' connected$' "$tmpdir/events")" = 1 ] ||
    fail "the downstream client had to reconnect: $(cat "$tmpdir/events")"
rounds=$(sed -n 's/^rounds: //p' "$tmpdir/out")
"$NBD_IO" pattern "$rounds" "$size" "$tmpdir/expected"
kill_bg "$proxy"
kill_upstream
cmp "$tmpdir/expected" "$img" || fail "the upstream image is not the last round's data"
echo "proxy: $kills upstream kills, $rounds rounds, OK"
