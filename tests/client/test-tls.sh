#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# TLS interop: the vdisk NBD client against a real server that requires
# TLS, with X.509 certificates and with a PSK, over TCP and a Unix socket.
#   test-tls.sh PEER          PEER: nbdkit qemu-nbd
# For each of x509/psk x tcp/unix: write 8 MiB (flushed), read it back
# and compare, check block status (written data, then zeros), check that
# the attachment reports TLS (nbd.tls property), and for the image files
# that the bytes reached the disk.
. "$top_srcdir/tests/functions.sh"

peer=${1:?peer}
: "${NBD_IO:?}"

requires python3 --version
case "$peer" in
nbdkit) requires nbdkit --version ;;
qemu-nbd) requires qemu-nbd --version ;;
*) fail "unknown peer $peer" ;;
esac

certs=$tmpdir/certs
vdisk tls gen-certs "$certs" > /dev/null
size=$((64 * 1024 * 1024))
head -c $((8 * 1024 * 1024)) /dev/urandom > "$tmpdir/data"

server_pid=
start_server () # MODE TRANSPORT
{
    local mode=$1 tr=$2 where creds
    rm -f "$tmpdir/nbd.sock" "$tmpdir/disk.img"
    case "$peer" in
    nbdkit)
        if [ "$tr" = tcp ]; then where=(-i 127.0.0.1 -p "$port")
        else where=(-U "$tmpdir/nbd.sock"); fi
        if [ "$mode" = x509 ]; then creds=(--tls-certificates="$certs")
        else creds=(--tls-psk="$certs/keys.psk"); fi
        start_bg server_pid nbdkit -f --tls=require "${creds[@]}" \
            "${where[@]}" memory "$size"
        ;;
    qemu-nbd)
        truncate -s "$size" "$tmpdir/disk.img"
        if [ "$tr" = tcp ]; then where=(-b 127.0.0.1 -p "$port")
        else where=(-k "$tmpdir/nbd.sock"); fi
        # qemu-nbd verifies client certificates by default: the client
        # sends client-cert.pem from the same directory.
        start_bg server_pid qemu-nbd -t -f raw "${where[@]}" \
            --object "tls-creds-$mode,id=tls0,dir=$certs,endpoint=server" \
            --tls-creds tls0 "$tmpdir/disk.img"
        ;;
    esac
    if [ "$tr" = tcp ]; then wait_for_port "$port"
    else wait_for_socket "$tmpdir/nbd.sock"; fi
}

for mode in x509 psk; do
    for tr in tcp unix; do
        port=$(pick_port)
        start_server "$mode" "$tr"
        if [ "$mode" = x509 ]; then q="tls-certificates=$certs"
        else q="tls-psk-file=$certs/keys.psk"; fi
        if [ "$tr" = tcp ]; then
            # The certificate is for localhost, 127.0.0.1 and ::1.
            uri="nbds://vdisk@localhost:$port/?$q"
        else
            uri="nbds+unix://vdisk@/?socket=$tmpdir/nbd.sock&$q"
        fi
        echo "== $peer $mode $tr: $uri"
        "$NBD_IO" -t 20 -j 4 write "$uri" "$tmpdir/data"
        "$NBD_IO" -t 20 -j 4 verify "$uri" "$tmpdir/data"
        "$NBD_IO" -t 20 map "$uri" > "$tmpdir/map"
        cat "$tmpdir/map"
        grep -q '"start": 0, "length": 8388608, "data": true' "$tmpdir/map" ||
            fail "block status does not show the 8 MiB written"
        grep -q '"data": false, "zero": true' "$tmpdir/map" ||
            fail "block status shows no zero extent after the data"
        "$NBD_IO" -t 20 info "$uri" > "$tmpdir/info"
        want="PSK"; [ "$mode" = x509 ] && want="X.509, server verified"
        grep -E "^nbd.tls: TLS1\.[23], $want\$" "$tmpdir/info" ||
            fail "nbd.tls does not say TLS with $want: $(grep nbd.tls "$tmpdir/info")"
        kill_bg "$server_pid"
        if [ "$peer" = qemu-nbd ]; then
            cmp -n $((8 * 1024 * 1024)) "$tmpdir/disk.img" "$tmpdir/data" ||
                fail "the image does not hold what was written"
        fi
    done
done
echo "PASS"
