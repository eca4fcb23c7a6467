#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fault test: a long copy through the NBD attachment while the server is
# killed with SIGKILL and restarted at random moments.
#   test-fault-kill.sh PEER TRANSPORT KILLS [SIZE_MIB]
#   PEER: nbdkit-file qemu-nbd-raw nbdkit-tls
#   (nbdkit-tls: nbdkit --tls=require with X.509 certificates and an
#   nbds URI, so every connection and reconnection runs STARTTLS and a
#   TLS handshake; nbdkit's debug log must show one completed handshake
#   per connection the client reports.)
# The client runs "torture" rounds: every block of the export is
# overwritten with the round's pattern by 4 threads (some writes FUA),
# then flushed, then read back and checked.  It keeps going until the
# killer has done KILLS kills.  Passing means:
#   - no request ever failed (the caller never saw an error),
#   - every read-back matched (no lost write, no write reordered across
#     a flush: a replayed stale write would leave an older round's
#     pattern behind),
#   - the image on disk, read directly, is byte-identical to the last
#     round's pattern,
#   - VD_EVENT_CONNECTED fired at least once per kill that hit a live
#     connection, VD_EVENT_FAILED never.
. "$top_srcdir/tests/functions.sh"

peer=${1:?peer}
transport=${2:?transport}
kills=${3:?kills}
mib=${4:-16}
: "${NBD_IO:?}"

size=$((mib * 1024 * 1024))
img=$tmpdir/disk.img
sock=$tmpdir/nbd.sock
truncate -s "$size" "$img"
port=
scheme=nbd tlsq=
case "$peer" in
nbdkit-file) requires nbdkit --version ;;
qemu-nbd-raw) requires qemu-nbd --version ;;
nbdkit-tls)
    requires nbdkit --version
    vdisk tls gen-certs "$tmpdir/certs" > /dev/null
    scheme=nbds tlsq="tls-certificates=$tmpdir/certs"
    ;;
*) fail "unknown peer $peer" ;;
esac
if [ "$transport" = tcp ]; then
    port=$(pick_port)
    uri="$scheme://localhost:$port/${tlsq:+?$tlsq}"
else
    uri="$scheme+unix:///?socket=$sock${tlsq:+&$tlsq}"
fi

server_pid=
start_server ()
{
    rm -f "$sock"
    case "$peer:$transport" in
    nbdkit-file:unix) nbdkit -f -U "$sock" file "$img" & ;;
    nbdkit-file:tcp) nbdkit -f -i 127.0.0.1 -p "$port" file "$img" & ;;
    nbdkit-tls:unix) nbdkit -f -v --tls=require --tls-certificates="$tmpdir/certs" \
        -U "$sock" file "$img" 2>> "$tmpdir/nbdkit.log" & ;;
    nbdkit-tls:tcp) nbdkit -f -v --tls=require --tls-certificates="$tmpdir/certs" \
        -i 127.0.0.1 -p "$port" file "$img" 2>> "$tmpdir/nbdkit.log" & ;;
    qemu-nbd-raw:unix) qemu-nbd -t -f raw -k "$sock" "$img" & ;;
    qemu-nbd-raw:tcp) qemu-nbd -t -f raw -b 127.0.0.1 -p "$port" "$img" & ;;
    esac
    server_pid=$!
}
kill_server ()
{
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}
cleanup_fn 'kill_server'

start_server
if [ "$transport" = tcp ]; then wait_for_port "$port"; else wait_for_socket "$sock"; fi

# The client: a 30 s window is far longer than any restart here.
"$NBD_IO" -t 30 -j 4 -r 131072 --until "$tmpdir/stop" --min-rounds 2 \
    --events "$tmpdir/events" torture "$uri" > "$tmpdir/out" 2> "$tmpdir/err" &
client=$!
cleanup_fn "kill $client"

# The killer: random moments (10-500 ms apart), random downtime
# (0-300 ms), so kills land in the handshake, mid-request, mid-flush and
# while idle.  Three kills in four (by position, so that every seed has
# them) first wait until the client is connected to the new server (so
# on a loaded machine, where a restart can take longer than the gap,
# kills still hit live connections); the fourth may hit a server still
# starting.  RANDOM is read outside command substitutions only: a
# subshell's draws do not advance the script's sequence, so VD_SEED
# would not reproduce a run (and a draw that decided whether to wait
# once left only 4 waiting kills of 10, below the check at the end).
RANDOM=${VD_SEED:-$$}
echo "seed ${VD_SEED:-$$}"
nconn () { local n; n=$(grep -c ' connected$' "$tmpdir/events" 2>/dev/null) || true; echo "${n:-0}"; }
hits=0
base=0          # connections made before this server instance started
for (( i = 1; i <= kills; i++ )); do
    gap=$(( RANDOM % 490 + 10 )) down=$(( RANDOM % 300 ))
    if (( i % 4 != 0 )); then
        for (( w = 0; w < 400 && $(nconn) <= base; w++ )); do
            kill -0 "$client" 2>/dev/null || break
            sleep 0.025
        done
        [ "$(nconn)" -gt "$base" ] && hits=$(( hits + 1 ))
    fi
    sleep "0.$(printf '%03d' "$gap")"
    kill -0 "$client" 2>/dev/null || break
    kill_server
    base=$(nconn)
    sleep "0.$(printf '%03d' "$down")"
    start_server
done
touch "$tmpdir/stop"
set +e
wait "$client"
rc=$?
set -e
cat "$tmpdir/out"
[ $rc = 0 ] || { cat "$tmpdir/err" >&2; fail "the client failed (exit $rc) after $i kills"; }
[ $i -gt "$kills" ] || fail "only $((i - 1)) kills happened"

rounds=$(sed -n 's/^rounds: //p' "$tmpdir/out")
connected=$(grep -c ' connected$' "$tmpdir/events" || true)
failed=$(grep -c ' failed ' "$tmpdir/events" || true)
echo "kills: $kills ($hits of live connections), rounds: $rounds, connections: $connected"
[ "$failed" = 0 ] || fail "VD_EVENT_FAILED fired: $(grep failed "$tmpdir/events")"
# Every kill that found the client connected to that server instance
# broke a busy connection and cost a reconnection (plus the last one).
[ "$connected" -ge $(( hits + 1 )) ] ||
    fail "only $connected connections for $hits kills of live connections"
[ "$hits" -ge $(( kills / 2 )) ] || fail "only $hits kills hit a connection"

# The image, read without NBD, is the last round's pattern.
if [ "$peer" = nbdkit-tls ]; then
    handshakes=$(grep -c 'debug: TLS handshake completed' "$tmpdir/nbdkit.log" || true)
    echo "TLS handshakes completed: $handshakes"
    [ "$handshakes" -ge "$connected" ] ||
        fail "$connected connections but only $handshakes TLS handshakes"
fi

"$NBD_IO" pattern "$rounds" "$size" "$tmpdir/expected"
kill_server
cmp "$tmpdir/expected" "$img" || fail "the image is not the last round's data"
echo "fault-kill $peer $transport: $kills kills, OK"
