#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# NBD over TLS: vdisk serve and nbdkit (file plugin), each with and without
# TLS, on the same RAW file over TCP, with the same clients, in one run:
#   - sequential 1 MiB reads and writes of the whole file with nbdcopy
#     (1 connection)
#   - 4 KiB random reads and writes at queue depth 16 with fio's nbd
#     engine (libnbd)
# Prints a Markdown table: each server's throughput with and without TLS,
# what TLS costs each, and the ratio vdisk-TLS / nbdkit-TLS (goal >= 1.0).
#
#   bench/bench-tls.sh [BUILDDIR]
# Environment: BENCH_TLS (x509 or psk, default x509), BENCH_SECONDS (fio
# run time, default 4), BENCH_SIZE (default 1G), BENCH_REPEAT (rounds,
# best run kept, default 3), BENCH_DIR (work directory, not tmpfs;
# default BUILDDIR/bench-tls).
#
# fio's nbd engine connects with libnbd's nbd_connect_uri, which does not
# take tls-certificates / tls-psk-file from a URI; with X.509 libnbd
# then reads $HOME/.pki/libnbd/, so the script points HOME at a directory
# of its own holding the certificates.  With PSK the fio rows cannot be
# run (libnbd has no default PSK file) and are left out.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/bench-functions.sh"
vdisk="$top/$build/cli/vdisk"
mode=${BENCH_TLS:-x509}
secs=${BENCH_SECONDS:-4}
size=${BENCH_SIZE:-1G}
repeat=${BENCH_REPEAT:-3}
dir=${BENCH_DIR:-$top/$build/bench-tls}
case "$mode" in x509|psk) ;; *) echo "bench-tls: BENCH_TLS is x509 or psk" >&2; exit 2 ;; esac
for t in nbdkit nbdcopy fio nbdinfo python3; do
    command -v $t >/dev/null || { echo "bench-tls: $t is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x "$vdisk" ] || { echo "bench-tls: build first ($vdisk)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"

pid=
cleanup () { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

bytes=$(python3 -c "import sys; u={'K':1<<10,'M':1<<20,'G':1<<30}; s=sys.argv[1]; print(int(s[:-1])*u[s[-1]] if s[-1] in u else int(s))" "$size")
echo "# bench-tls ($mode): $(date -u +%F\ %T) UTC, $(nproc) CPUs, $(uname -r), size $size, fio ${secs}s, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ ! -f src.raw ] || [ "$(stat -c %s src.raw)" != "$bytes" ]; then
    head -c "$bytes" /dev/urandom > src.raw
fi
cp --sparse=never src.raw disk.raw
rm -rf certs home
"$vdisk" tls gen-certs certs >/dev/null
mkdir -p home/.pki
ln -s "$dir/certs" home/.pki/libnbd
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
uri= fio_uri=

# start SERVER: vdisk, vdisk-tls, nbdkit or nbdkit-tls; sets pid, uri
# (for nbdcopy and nbdinfo) and fio_uri (the same without the query).
start () {
    local server=$1 tlsargs=()
    case "$server:$mode" in
        *-tls:x509)
            fio_uri="nbds://127.0.0.1:$port/"
            uri="$fio_uri?tls-certificates=$dir/certs" ;;
        *-tls:psk)
            fio_uri="nbds://vdisk@127.0.0.1:$port/"
            uri="$fio_uri?tls-psk-file=$dir/certs/keys.psk" ;;
        *) uri="nbd://127.0.0.1:$port/" fio_uri=$uri ;;
    esac
    case "$server" in
        vdisk) "$vdisk" serve --port "$port" disk.raw 2>>serve.log & ;;
        vdisk-tls)
            if [ "$mode" = x509 ]; then tlsargs=(--tls-certificates "$dir/certs")
            else tlsargs=(--tls-psk "$dir/certs/keys.psk"); fi
            "$vdisk" serve --tls=require "${tlsargs[@]}" --port "$port" disk.raw 2>>serve.log & ;;
        nbdkit) nbdkit -f -i 127.0.0.1 -p "$port" file disk.raw & ;;
        nbdkit-tls)
            if [ "$mode" = x509 ]; then tlsargs=(--tls-certificates="$dir/certs")
            else tlsargs=(--tls-psk="$dir/certs/keys.psk"); fi
            nbdkit -f --tls=require "${tlsargs[@]}" -i 127.0.0.1 -p "$port" file disk.raw & ;;
    esac
    pid=$!
    wait_nbd "$server" "$uri"
}

tests="seq-read seq-write"
[ "$mode" = x509 ] && tests="$tests rand-read-qd16 rand-write-qd16"
servers=(vdisk vdisk-tls nbdkit nbdkit-tls)
declare -A R
rotate=0
for t in $tests; do
    for (( rep = 0; rep < repeat; rep++ )); do
        for (( i = 0; i < ${#servers[@]}; i++ )); do
            s=${servers[$(( (i + rotate) % ${#servers[@]} ))]}
            start "$s"
            case "$t" in seq-write|rand-write-*) sync -f disk.raw 2>/dev/null || sync ;; esac
            case "$t" in
                seq-read) r=$(copy_rate nbdcopy --connections=1 --request-size=1048576 "$uri" null:) ;;
                seq-write) r=$(copy_rate nbdcopy --connections=1 --request-size=1048576 src.raw "$uri") ;;
                rand-read-qd16) r=$(HOME=$dir/home fio_iops "$fio_uri" randread 16) ;;
                rand-write-qd16) r=$(HOME=$dir/home fio_iops "$fio_uri" randwrite 16) ;;
            esac
            stop
            echo "   $s/$t: $r" >&2
            [ "$r" -gt "${R[$s/$t]:-0}" ] && R[$s/$t]=$r
        done
        rotate=$(( rotate + 1 ))
    done
done

echo
echo "| TLS ($mode), TCP | unit | vdisk | vdisk TLS | nbdkit | nbdkit TLS | vdisk TLS / plain | nbdkit TLS / plain | **vdisk TLS / nbdkit TLS** |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for t in $tests; do
    echo "| $t | $(unit $t) | ${R[vdisk/$t]} | ${R[vdisk-tls/$t]} | ${R[nbdkit/$t]} | ${R[nbdkit-tls/$t]} | $(ratio "${R[vdisk-tls/$t]}" "${R[vdisk/$t]}") | $(ratio "${R[nbdkit-tls/$t]}" "${R[nbdkit/$t]}") | $(ratio "${R[vdisk-tls/$t]}" "${R[nbdkit-tls/$t]}") |"
done
