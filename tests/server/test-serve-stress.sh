#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 32 concurrent clients with mixed I/O (writes, reads, trims, zeroes,
# block status, cache, flush; simple, structured and extended headers)
# against one export, every byte verified by the clients and, after a
# clean shutdown, in the image itself; meanwhile slow clients (requests
# but never reads the replies) and dead ones (connect, say nothing) must
# not hold anyone up.  Once with inline I/O, once with the pool only.
# Longer runs: STRESS_SECONDS (the slow suite sets it).
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires nbdcopy --version
cd "$tmpdir"
secs=${STRESS_SECONDS:-3}
clients=32 modes="inline pool"
if [ "${VD_VALGRIND:-0}" = 1 ]; then
    # Under valgrind the server is ~50x slower: fewer clients, one mode.
    secs=2 clients=8 modes=inline
fi

for fmt in $(formats); do
    for mode in $modes; do
        echo "== $fmt, $mode"
        make_image "$fmt" "disk.$fmt" 256MiB
        extra=()
        [ $mode = pool ] && extra=(--no-inline-io)
        serve pid --socket "$tmpdir/s.sock" --port 0 --threads 8 "${extra[@]}" "disk.$fmt"
        "$STRESS" "$tmpdir/s.sock" --clients "$clients" --seconds "$secs" --depth 8 \
            --slow 2 --dead 2 --max-latency 20 --expect expect.img --seed $RANDOM \
            || { tail -20 "$serve_log"; fail "stress clients failed"; }
        echo "peak RSS of the server: $(grep VmHWM /proc/$pid/status)"
        stop_serve "$pid"
        if [ "$fmt" = raw ]; then
            cmp disk.raw expect.img || fail "image differs from what the clients wrote"
        else
            serve pid --read-only --socket "$tmpdir/s.sock" "disk.$fmt"
            nbdcopy "$serve_uri" back.raw
            stop_serve "$pid"
            cmp back.raw expect.img || fail "image differs from what the clients wrote"
            rm -f back.raw
        fi
        rm -f expect.img
    done
    # TCP, a few clients, deeper queues, on a fresh image: once as
    # configured by default (on TCP the connection holds replies back for
    # the client's next requests, see hold_replies), once without
    # busy-polling, which turns holding off too.
    for poll in 50 0; do
        make_image "$fmt" "disk.$fmt" 64MiB
        serve pid --port 0 --busy-poll $poll "disk.$fmt"
        hostport=${serve_uri#nbd://}; hostport=${hostport%/}
        "$STRESS" "$hostport" --clients 4 --seconds 1 --depth 16 \
            --expect expect.img --seed $RANDOM || fail "TCP stress (busy-poll $poll)"
        stop_serve "$pid"
        if [ "$fmt" = raw ]; then
            cmp disk.raw expect.img || fail "TCP: image differs from what the clients wrote"
        fi
        rm -f expect.img
    done
done
echo "test-serve-stress: OK"
