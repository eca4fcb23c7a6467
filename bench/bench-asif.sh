#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# ASIF vs RAW through libvdisk (bench-asif), and vs qcow2 through
# `qemu-img bench`, on the same file system, in one run, with the same
# request sequence (qemu-img bench's: offset i = i * step mod size, one
# request at a time, page cache).  Write rows start from freshly created
# images (the first write allocates) and are timed from process start to
# exit, so they include the final flush that makes them durable.  Each
# cell is the median of REPEAT runs; the formats alternate within a run
# so drift hits all of them.  Prints MiB/s and the ratios ASIF/RAW and
# ASIF/qcow2.
#
# usage: bench/bench-asif.sh [BUILDDIR]
#   env: SEQ_COUNT (1024 x 1 MiB) RND_COUNT (16384 4 KiB writes)
#        RR_COUNT (65536 4 KiB reads) REPEAT (5) DIR
#        CACHE (writeback: the page cache; none: O_DIRECT for all formats)
#        SETTLE (2: seconds to wait after dropping the page cache, as root,
#        before each timed write)
#        READ_PASSES (4: the read rows go over their region this many
#        times; one pass of 1 GiB from the page cache takes 60 ms, too
#        short to time)
#        WARM_MIB (3072: memory touched and freed right before each timed
#        write, see warm_memory in bench-functions.sh; 0 = off)
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/bench-functions.sh"
bench="$top/$build/bench/bench-asif"
vdisk="$top/$build/cli/vdisk"
seq_count=${SEQ_COUNT:-1024}
rnd_count=${RND_COUNT:-16384}
rr_count=${RR_COUNT:-65536}
repeat=${REPEAT:-5}
passes=${READ_PASSES:-4}
settle=${SETTLE:-2}
cache=${CACHE:-writeback}
case $cache in
    writeback) direct=0 ;;
    none) direct=1 ;;
    *) echo "CACHE must be writeback or none" >&2; exit 2 ;;
esac
dir=${DIR:-$top/$build/bench}
command -v qemu-img >/dev/null || { echo "qemu-img is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }
mkdir -p "$dir"
work=$(mktemp -d "$dir/bench-asif.XXXXXX")
trap 'rm -rf "$work"' EXIT

seq_size=$((seq_count * 1048576))          # the sequential region
rnd_size=$((64 * 1024 * 1048576))         # 64 GiB: random first touches
step=$((4096 * 7919))                     # odd multiple of 4 KiB: scattered


fresh ()  # fmt size -> path
{
    local f=$work/img.$1
    rm -f "$f"
    case $1 in
        raw) "$vdisk" image create blank --format RAW --size "$2" "$f" ;;
        asif) "$vdisk" image create blank --format ASIF --size "$2" "$f" ;;
        qcow2) qemu-img create -q -f qcow2 "$f" "$2" ;;
    esac
    echo "$f"
}

# run FMT RW BS COUNT STEP PATH -> MiB/s
# Reads: the tool's own timing (no open/close).  Writes: the wall time of
# the whole process, because it includes the final flush that makes the
# data durable (vdisk flushes at close; qemu-img bench's timer stops
# before its closing flush, so it is timed from outside for everyone).
run ()
{
    local fmt=$1 rw=$2 bs=$3 count=$4 st=$5 path=$6 out t0 t1
    # Start every write from the same state: no writeback of an earlier
    # run in flight, and (as root) an empty page cache with the freed
    # memory given time to settle.  On a VM whose balloon reports free
    # pages to the host, filling the page cache from memory the host has
    # taken back costs several times more than from memory freed a moment
    # ago, so without this a tool's write speed depended on what ran just
    # before it (docs/benchmarks.md).  Then memory is warmed, so that no
    # format pays for those host faults (warm_memory).
    if [ "$rw" = write ]; then
        sync
        if [ -w /proc/sys/vm/drop_caches ]; then
            echo 3 > /proc/sys/vm/drop_caches
            sleep "$settle"
        fi
        warm_memory
    fi
    t0=$(date +%s.%N)
    if [ "$fmt" = qcow2 ]; then
        local w=()
        [ "$rw" = write ] && w=(-w)
        out=$(qemu-img bench -f qcow2 -t "$cache" -d 1 -c "$count" \
                -s "$bs" -S "$st" "${w[@]}" "$path" |
              sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
    else
        out=$("$bench" --rw "$rw" --bs "$bs" --count "$count" --step "$st" \
                --direct "$direct" "$path" | jq '.seconds')
    fi
    t1=$(date +%s.%N)
    [ "$rw" = write ] && out=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
    awk -v c="$count" -v b="$bs" -v s="$out" 'BEGIN {print c*b/s/1048576}'
}

declare -A res
rows=(seqwrite-1M-first seqread-1M randread-4K randwrite-4K-first randwrite-4K-over)
# All six orders in turn, so no format always follows the same one (a
# rotation would keep every format's predecessor).
orders=("raw asif qcow2" "asif qcow2 raw" "qcow2 raw asif"
        "raw qcow2 asif" "qcow2 asif raw" "asif raw qcow2")
for ((i = 0; i < repeat; i++)); do
    for fmt in ${orders[$((i % 6))]}; do
        # Sequential region, written once from scratch, then read.
        p=$(fresh $fmt $seq_size)
        res[seqwrite-1M-first,$fmt]+="$(run $fmt write 1048576 $seq_count 1048576 "$p") "
        res[seqread-1M,$fmt]+="$(run $fmt read 1048576 $((seq_count * passes)) 1048576 "$p") "
        res[randread-4K,$fmt]+="$(run $fmt read 4096 $((rr_count * passes)) $step "$p") "
        res[randwrite-4K-over,$fmt]+="$(run $fmt write 4096 $rnd_count $step "$p") "
        rm -f "$p"
        # Scattered first touches over a large empty disk.
        p=$(fresh $fmt $rnd_size)
        res[randwrite-4K-first,$fmt]+="$(run $fmt write 4096 $rnd_count $step "$p") "
        rm -f "$p"
    done
done

printf '%-20s %10s %10s %10s %9s %10s\n' workload "RAW MiB/s" "ASIF" "qcow2" ASIF/RAW ASIF/qcow2
for r in "${rows[@]}"; do
    raw=$(printf '%s\n' ${res[$r,raw]} | median)
    asif=$(printf '%s\n' ${res[$r,asif]} | median)
    qcow=$(printf '%s\n' ${res[$r,qcow2]} | median)
    printf '%-20s %10.1f %10.1f %10.1f %9.2f %10.2f\n' "$r" "$raw" "$asif" "$qcow" \
        "$(awk -v a="$asif" -v b="$raw" 'BEGIN {print a / b}')" \
        "$(awk -v a="$asif" -v b="$qcow" 'BEGIN {print a / b}')"
done
echo "(seq: $seq_count x 1 MiB; random: $rnd_count 4 KiB writes, $rr_count 4 KiB" \
     "reads x $passes passes, step $step bytes; median of $repeat; cache $cache; writes include" \
     "open, close and the final flush; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
