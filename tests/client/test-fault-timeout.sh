#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Timeout and error paths of the NBD attachment, driven by nbdkit's
# delay and error filters and by killing the server for good:
#   1. a server that never answers: ETIMEDOUT within two timeouts
#      (one to notice, one reconnection window), a clear message, and
#      VD_EVENT_FAILED exactly once;
#   2. a server that dies and never comes back: the caller gets a clear
#      error within the timeout of the loss, FAILED exactly once;
#   3. no server at start: start fails within the timeout, FAILED once;
#      a server that appears within the timeout is used;
#   4. EIO from the server reaches the caller as EIO with the server's
#      words, without reconnecting;
#   5. ESHUTDOWN from the server is recoverable: the client reconnects
#      and replays until the server behaves, with no error seen; if it
#      never does, the attachment fails once the window is over.
. "$top_srcdir/tests/functions.sh"
: "${NBD_IO:?}"
requires nbdkit --version
requires nbdkit memory --filter=delay --filter=error --dump-plugin

sock=$tmpdir/nbd.sock
uri="nbd+unix:///?socket=$sock"
ev=$tmpdir/events

now_ms () { date +%s%3N; }
count () { grep -c "$1" "$ev" 2>/dev/null || true; }

# 1. A server that accepts and then never answers reads.
start_bg srv nbdkit -f -U "$sock" --filter=delay memory 16M rdelay=30
wait_for_socket "$sock"
head -c 4096 /dev/zero > "$tmpdir/zero4k"
: > "$ev"
t0=$(now_ms)
"$NBD_IO" -t 1 --events "$ev" --expect-fail 110 -j 1 -r 4096 \
    verify "$uri" "$tmpdir/zero4k" > "$tmpdir/out"
t1=$(now_ms)
cat "$tmpdir/out"
grep -q "did not answer for 1 s" "$tmpdir/out" ||
    fail "1: unclear message: $(cat "$tmpdir/out")"
[ $(( t1 - t0 )) -lt 4500 ] || fail "1: took $(( t1 - t0 )) ms for a 1 s timeout"
[ $(( t1 - t0 )) -ge 1900 ] || fail "1: gave up after $(( t1 - t0 )) ms"
[ "$(count ' failed ')" = 1 ] || fail "1: FAILED fired $(count ' failed ') times"
[ "$(count ' connected$')" -ge 2 ] || fail "1: no reconnection was tried"
kill_bg "$srv"

# 2. The server dies for good while the client works.
rm -f "$sock"
start_bg srv nbdkit -f -U "$sock" memory 64M
wait_for_socket "$sock"
: > "$ev"
"$NBD_IO" -t 2 --events "$ev" --expect-fail 110 -j 2 -r 65536 \
    --rounds 1000 torture "$uri" > "$tmpdir/out" 2>&1 &
client=$!
cleanup_fn "kill $client"
sleep 1
kill -9 "$srv"
t0=$(now_ms)
wait "$client" || fail "2: $(cat "$tmpdir/out")"
t1=$(now_ms)
cat "$tmpdir/out"
grep -q "could not reconnect to the NBD server within 2 s" "$tmpdir/out" ||
    fail "2: unclear message"
grep -q "Connection refused\|No such file" "$tmpdir/out" ||
    fail "2: the last error is not named"
[ $(( t1 - t0 )) -lt 3500 ] || fail "2: took $(( t1 - t0 )) ms for a 2 s timeout"
[ "$(count ' failed ')" = 1 ] || fail "2: FAILED fired $(count ' failed ') times"
[ "$(count ' connected$')" = 1 ] || fail "2: connected $(count ' connected$') times"

# 3. No server at start; then a server that comes up late.
rm -f "$sock"
: > "$ev"
t0=$(now_ms)
"$NBD_IO" -t 1 --events "$ev" --expect-fail 110 info "$uri" > "$tmpdir/out"
t1=$(now_ms)
grep -q "could not connect to the NBD server within 1 s" "$tmpdir/out" ||
    fail "3: unclear message: $(cat "$tmpdir/out")"
[ $(( t1 - t0 )) -lt 2500 ] || fail "3: took $(( t1 - t0 )) ms"
[ "$(count ' failed ')" = 1 ] || fail "3: FAILED fired $(count ' failed ') times"
: > "$ev"
( sleep 1; exec nbdkit -f -U "$sock" memory 16M ) &
late=$!
cleanup_fn "kill $late"
"$NBD_IO" -t 10 --events "$ev" info "$uri" > "$tmpdir/out"
grep -qx "virtual-size: 16777216" "$tmpdir/out" || fail "3: late server not used"
[ "$(count ' connected$')" = 1 ] && [ "$(count ' failed ')" = 0 ] ||
    fail "3: events $(cat "$ev")"
kill_bg "$late"

# 4. EIO from the server: passed through, no reconnection.
rm -f "$sock"
start_bg srv nbdkit -f -U "$sock" --filter=error memory 16M \
    error=EIO error-pread-rate=100%
wait_for_socket "$sock"
: > "$ev"
"$NBD_IO" -t 5 --events "$ev" --expect-fail 5 -j 1 verify "$uri" \
    "$tmpdir/zero4k" > "$tmpdir/out"
grep -q "NBD_CMD_READ" "$tmpdir/out" && grep -q "EIO" "$tmpdir/out" ||
    fail "4: unclear message: $(cat "$tmpdir/out")"
[ "$(count ' connected$')" = 1 ] || fail "4: reconnected on EIO"
kill_bg "$srv"

# 5. ESHUTDOWN while a trigger file exists: reconnect and replay until
#    it is gone; the caller sees nothing.
rm -f "$sock"
trigger=$tmpdir/shutdown
touch "$trigger"
start_bg srv nbdkit -f -U "$sock" --filter=error memory 16M \
    error=ESHUTDOWN error-rate=100% error-file="$trigger"
wait_for_socket "$sock"
: > "$ev"
( sleep 1.5; rm -f "$trigger" ) &
"$NBD_IO" -t 10 --events "$ev" -j 2 -r 65536 --rounds 2 torture "$uri" \
    > "$tmpdir/out"
cat "$tmpdir/out"
[ "$(count ' connected$')" -ge 3 ] || fail "5: only $(count ' connected$') connections"
[ "$(count ' failed ')" = 0 ] || fail "5: failed: $(cat "$ev")"
#    ... and when the server never stops saying ESHUTDOWN, the window
#    ends it: a clear error, FAILED once.
touch "$trigger"
: > "$ev"
t0=$(now_ms)
"$NBD_IO" -t 1 --events "$ev" --expect-fail 110 -j 1 -r 4096 verify "$uri" \
    "$tmpdir/zero4k" > "$tmpdir/out"
t1=$(now_ms)
cat "$tmpdir/out"
grep -q "shutting down" "$tmpdir/out" || fail "5: the cause is not named"
[ $(( t1 - t0 )) -lt 3500 ] || fail "5: took $(( t1 - t0 )) ms"
[ "$(count ' failed ')" = 1 ] || fail "5: FAILED fired $(count ' failed ') times"
echo "fault-timeout: OK"
