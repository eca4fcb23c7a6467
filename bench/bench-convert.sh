#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk image convert vs qemu-img convert and nbdcopy, in one run, on the
# same source: a 4 GiB RAW image half filled with random data in
# scattered runs.
#   RAW -> ASIF   vs  qemu-img convert -O qcow2        (goal >= 1.5x)
#   ASIF -> RAW   vs  qemu-img convert qcow2 -> raw    (goal >= 1.5x)
#   NBD -> file   vs  nbdcopy (same nbdkit file export) (goal >= 1.0x)
# Each timing includes a final sync (both tools then have their data on
# disk) and starts with cold caches (drop_caches, when root).  Prints the
# times, the output sizes and the ratios (peer time / vdisk time).
#
# usage: bench/bench-convert.sh [BUILDDIR]   env: SIZE_GIB (4) DIR REPEAT (1)
#        WARM_MIB (1.5 x the source: memory warmed before each copy; 0 = off)
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/bench-functions.sh"
vdisk="$top/$build/cli/vdisk"
gib=${SIZE_GIB:-4}
repeat=${REPEAT:-1}
dir=$(mktemp -d "${DIR:-$top/$build/bench}/convert.XXXXXX")
trap 'kill $npid 2>/dev/null; rm -rf "$dir"' EXIT
npid=
for t in qemu-img nbdkit nbdcopy; do
    command -v $t >/dev/null || { echo "$t is required" >&2; exit 1; }
done
cd "$dir"

# Source: half of the disk in 4 MiB runs of random data at random places
# (deterministic layout; data from /dev/urandom).
truncate -s ${gib}G src.raw
nruns=$(( gib * 1024 / 2 / 4 ))
python3 - "$nruns" $(( gib * 1024 / 4 )) > runs.txt <<'PY'
import random, sys
n, slots = int(sys.argv[1]), int(sys.argv[2])
random.seed(42)
for s in sorted(random.sample(range(slots), n)):
    print(s)
PY
while read -r slot; do
    dd if=/dev/urandom of=src.raw bs=4M count=1 seek="$slot" conv=notrunc status=none
done < runs.txt
sync

# Cold caches, then warm memory (warm_memory in bench-functions.sh: the
# page cache the copy fills must not cost host page faults on this kind
# of VM).  A copy fills the page cache with the source's data and the
# target's, twice what the data is: 6 GiB by default covers the 4 GiB
# default source; 3 GiB left RAW -> ASIF at 5.5 s in one run of three.
warm_mib=${WARM_MIB:-$(( gib * 1536 ))}
cold () { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi; WARM_MIB=$warm_mib warm_memory; }
# timeit CMD...: seconds, cold start, sync included.
timeit ()
{
    cold
    local s e
    s=$(date +%s.%N)
    "$@" >/dev/null
    sync
    e=$(date +%s.%N)
    awk -v a="$s" -v b="$e" 'BEGIN {printf "%.2f", b - a}'
}
best () { sort -n | head -1; }
size_of () { du -k "$1" | awk '{printf "%.0f\n", $1 * 1024}'; }

row ()  # name vdisk-cmd -- peer-cmd
{
    local name=$1; shift
    local v=() p=() vcmd=() pcmd=()
    while [ "$1" != -- ]; do vcmd+=("$1"); shift; done; shift
    pcmd=("$@")
    for ((i = 0; i < repeat; i++)); do
        rm -f out.*
        v+=("$(timeit "${vcmd[@]}")")
        rm -f peer.*
        p+=("$(timeit "${pcmd[@]}")")
    done
    vt=$(printf '%s\n' "${v[@]}" | best)
    pt=$(printf '%s\n' "${p[@]}" | best)
    printf '%-14s %9s %9s %7.2f\n' "$name" "$vt" "$pt" \
        "$(awk -v a="$pt" -v b="$vt" 'BEGIN {print a / b}')"
}

echo "source: ${gib} GiB RAW, $(( $(size_of src.raw) / 1048576 )) MiB of random data in ${nruns} runs of 4 MiB"
printf '%-14s %9s %9s %7s\n' conversion "vdisk s" "peer s" ratio
row "RAW->ASIF" "$vdisk" image convert -O asif src.raw out.asif -- \
    qemu-img convert -O qcow2 src.raw peer.qcow2
cp --sparse=always out.asif src.asif; cp --sparse=always peer.qcow2 src.qcow2
sz_asif=$(size_of src.asif); sz_qcow2=$(size_of src.qcow2)
row "ASIF->RAW" "$vdisk" image convert src.asif out.raw -- \
    qemu-img convert -f qcow2 -O raw src.qcow2 peer.raw
nbdkit -f -U "$dir/nbd.sock" file src.raw & npid=$!
for i in $(seq 100); do [ -S "$dir/nbd.sock" ] && break; sleep 0.1; done
uri="nbd+unix:///?socket=$dir/nbd.sock"
row "NBD->file" "$vdisk" image convert "$uri" out.raw -- nbdcopy "$uri" peer.raw
echo
echo "output sizes (bytes on disk): ASIF $sz_asif, qcow2 $sz_qcow2 (ASIF/qcow2 $(awk -v a=$sz_asif -v b=$sz_qcow2 'BEGIN {printf "%.3f", a/b}'))"
# Correctness of what was timed.
"$vdisk" image compare src.raw src.asif >/dev/null && echo "check: ASIF output identical to the source"
