#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Allocating writes from several requests in flight: writes into images
# never written before, through an NBD server on a unix socket, in one
# run:
#   vdisk     vdisk serve, a fresh ASIF image
#   base      the same from another build (BASE=BUILDDIR; optional: the
#             before/after of a change)
#   qemu-nbd  qemu-nbd, a fresh qcow2 image (default 64 KiB clusters)
# Rows:
#   rand-write-qd16-first  fio's nbd engine, 4 KiB random writes at queue
#                          depth 16 over a fresh 64 GiB disk for SECS
#                          seconds: nearly every write allocates a chunk
#                          (ASIF: a partial one) or a cluster
#   seq-write-4-first      nbdcopy --connections=4 of 1 GiB of random data
#                          into a fresh 1 GiB disk, until nbdcopy exits
#                          (it flushes): whole-chunk allocations
# Every run starts after sync and, as root, a dropped page cache.  Each
# cell is the median of ROUNDS runs; the servers alternate within a round.
#
# usage: bench/bench-alloc.sh [BUILDDIR]
#   env: BASE (a second build directory), ROUNDS (3), SECS (5),
#        CACHING (cached: the page cache; uncached: O_DIRECT, qemu-nbd
#        --cache=none), DIR (where the images go: BUILDDIR)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/bench-functions.sh"
build=$(cd "${1:-build}" && pwd)
rounds=${ROUNDS:-3}
secs=${SECS:-5}
caching=${CACHING:-cached}
case $caching in
    cached) qcache=writeback ;;
    uncached) qcache=none ;;
    *) echo "CACHING must be cached or uncached" >&2; exit 2 ;;
esac
for t in qemu-nbd qemu-img nbdcopy nbdinfo fio python3; do
    command -v $t >/dev/null || { echo "bench-alloc: $t is missing (scripts/install-deps.sh test)" >&2; exit 1; }
done
servers=(vdisk)
declare -A bin=([vdisk]=$build/cli/vdisk)
if [ -n "${BASE:-}" ]; then
    bin[base]=$(cd "$BASE" && pwd)/cli/vdisk
    servers+=(base)
fi
servers+=(qemu-nbd)
work=$(mktemp -d "${DIR:-$build}/bench-alloc.XXXXXX")
pid=
trap 'stop; rm -rf "$work"' EXIT
cd "$work"
sock=$work/s.sock
uri="nbd+unix:///?socket=$sock"
bytes=$((1024 * 1048576))
size=64g
dd if=/dev/urandom of=src.raw bs=1M count=1024 status=none

start () {  # SERVER DISK-SIZE: a fresh image, served at $uri
    rm -f img "$sock"
    if [ "$1" = qemu-nbd ]; then
        qemu-img create -q -f qcow2 img "$2"
        qemu-nbd -t -f qcow2 --cache=$qcache -k "$sock" img &
    else
        "${bin[$1]}" image create blank --format ASIF --size "$2" img
        "${bin[$1]}" serve --caching "$caching" --socket "$sock" img 2>>serve.log &
    fi
    pid=$!
    wait_nbd "$1" "$uri"
}

settle () {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then
        echo 3 > /proc/sys/vm/drop_caches
        sleep 1
    fi
}

declare -A res
echo "# bench-alloc: $(date -u +%F\ %T) UTC, $(nproc) CPUs, $(uname -r), caching $caching, $(df -T "$work" | awk 'NR == 2 {print $2}') in $work" >&2
for ((r = 0; r < rounds; r++)); do
    # Rotate the order from round to round.
    n=${#servers[@]}
    for ((k = 0; k < n; k++)); do
        s=${servers[$(((k + r) % n))]}
        settle
        start "$s" 68719476736
        res[rand-write-qd16-first,$s]+="$(fio_iops "$uri" randwrite 16) "
        stop
        settle
        start "$s" 1073741824
        res[seq-write-4-first,$s]+="$(copy_rate nbdcopy --connections=4 --request-size=1048576 src.raw "$uri") "
        stop
    done
done

printf '%-24s' row
for s in "${servers[@]}"; do printf ' %10s' "$s"; done
for s in "${servers[@]}"; do [ "$s" = vdisk ] || printf ' %14s' "vdisk/$s"; done
echo
for row in rand-write-qd16-first seq-write-4-first; do
    printf '%-24s' "$row ($(unit "$row"))"
    declare -A med=()
    for s in "${servers[@]}"; do
        med[$s]=$(printf '%s\n' ${res[$row,$s]} | median)
        printf ' %10.0f' "${med[$s]}"
    done
    for s in "${servers[@]}"; do
        [ "$s" = vdisk ] || printf ' %14s' "$(ratio "${med[vdisk]}" "${med[$s]}")"
    done
    echo
done
echo "(median of $rounds; per run:$(for s in "${servers[@]}"; do printf ' %s: %s/ %s;' "$s" "${res[rand-write-qd16-first,$s]}" "${res[seq-write-4-first,$s]}"; done) load $(cut -d' ' -f1-3 /proc/loadavg))"
