#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The vdisk NBD client vs nbdcopy, side by side in one run, on the same
# export: read the whole export (to nowhere) and write a file over it,
# with one and four connections, from nbdkit's memory plugin and from
# `vdisk serve` (when this build has it).  Each cell is the median of
# REPEAT runs, the two tools alternating so drift hits both.  Prints
# MiB/s and the ratio vdisk/nbdcopy (goal >= 1.0).
#
#   vdisk:   bench-nbd-client -C N read URI
#            bench-nbd-client -C N write URI SRC      (flush at the end)
#   nbdcopy: nbdcopy -C N --no-extents URI null:
#            nbdcopy -C N --flush SRC URI
# Each tool runs with its own defaults: vdisk 4 threads for one
# connection, 2 per connection for more, each with one 1 MiB request in
# flight; nbdcopy 64 requests of 256 KiB per connection.  --no-extents makes
# nbdcopy read every byte as vdisk does (the export is full of data
# anyway); the source file is non-zero data so nbdcopy's zero detection
# has nothing to skip.
#
# usage: bench/bench-nbd-client.sh [BUILDDIR]
#   env: SIZE (4096, MiB), REPEAT (3), TRANSPORT (unix|tcp), DIR
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/bench-functions.sh"
bench="$top/$build/bench/bench-nbd-client"
vdisk="$top/$build/cli/vdisk"
mib=${SIZE:-4096}
repeat=${REPEAT:-3}
transport=${TRANSPORT:-unix}
dir=${DIR:-$top/$build/bench}
for p in nbdkit nbdcopy; do
    command -v $p >/dev/null || { echo "$p is required" >&2; exit 1; }
done
[ -x "$bench" ] || { echo "build $bench first" >&2; exit 1; }
mkdir -p "$dir"
src="$dir/nbd-bench-src.img"
img="$dir/nbd-bench-export.img"
sock="$dir/nbd-bench.sock"
pid=
cleanup () { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f "$src" "$img" "$sock"; }
trap cleanup EXIT

# Non-zero source data: 64 MiB of random bytes repeated.
head -c $((64 * 1024 * 1024)) /dev/urandom > "$src.chunk"
: > "$src"
for (( i = 0; i < mib / 64; i++ )); do cat "$src.chunk" >> "$src"; done
rm -f "$src.chunk"

mibs () { awk -v s="$1" -v e="$2" -v m="$mib" 'BEGIN { printf "%.0f\n", m / (e - s) }'; }

start_server ()   # name
{
    rm -f "$sock"
    local where
    if [ "$transport" = tcp ]; then
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
        uri="nbd://127.0.0.1:$port/"
    else
        uri="nbd+unix:///?socket=$sock"
    fi
    case "$1" in
    nbdkit)
        if [ "$transport" = tcp ]; then where=(-i 127.0.0.1 -p "$port"); else where=(-U "$sock"); fi
        nbdkit -f "${where[@]}" memory "${mib}M" &
        ;;
    vdisk-serve)
        truncate -s "${mib}M" "$img"
        if [ "$transport" = tcp ]; then where=(-b 127.0.0.1 -p "$port"); else where=(-s "$sock"); fi
        "$vdisk" serve "${where[@]}" "$img" &
        ;;
    esac
    pid=$!
    for (( i = 0; i < 100; i++ )); do
        if [ "$transport" = tcp ]; then
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        else
            [ -S "$sock" ] && break
        fi
        sleep 0.05
    done
}
stop_server () { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; rm -f "$img"; }

run ()   # tool op conns -> MiB/s
{
    local s e
    s=$(now)
    if [ "$1" = vdisk ]; then
        if [ "$2" = read ]; then "$bench" -C "$3" read "$uri" >/dev/null
        else "$bench" -C "$3" write "$uri" "$src" >/dev/null; fi
    else
        if [ "$2" = read ]; then nbdcopy -C "$3" --no-extents "$uri" null:
        else nbdcopy -C "$3" --flush "$src" "$uri"; fi
    fi
    e=$(now)
    mibs "$s" "$e"
}

servers=(nbdkit)
if "$vdisk" serve --help >/dev/null 2>&1; then
    servers+=(vdisk-serve)
else
    echo "note: this build has no 'vdisk serve'; only nbdkit is measured" >&2
fi

printf "%-12s %-5s %5s %12s %12s %7s\n" server op conns "vdisk MiB/s" "nbdcopy MiB/s" ratio
for server in "${servers[@]}"; do
    start_server "$server"
    # Fill the export once so reads move real data.
    "$bench" -C 4 write "$uri" "$src" >/dev/null
    for op in write read; do
        for conns in 1 4; do
            v=(); n=()
            for (( r = 0; r < repeat; r++ )); do
                v+=("$(run vdisk "$op" "$conns")")
                n+=("$(run nbdcopy "$op" "$conns")")
            done
            vm=$(printf '%s\n' "${v[@]}" | median)
            nm=$(printf '%s\n' "${n[@]}" | median)
            printf "%-12s %-5s %5s %12s %12s %7.2f\n" "$server" "$op" "$conns" \
                "$vm" "$nm" "$(awk -v a="$vm" -v b="$nm" 'BEGIN{print a/b}')"
        done
    done
    stop_server
done
echo "($mib MiB export over $transport, median of $repeat runs; $(nproc) CPUs," \
     "load $(cut -d' ' -f1-3 /proc/loadavg))"
