#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# RAW pread/pwrite through libvdisk vs fio on the same file with the same
# engine settings (psync: one synchronous pread/pwrite at a time, one job),
# in one run, cached and uncached (O_DIRECT), 4 KiB-aligned buffers for
# both (fio aligns none by default, which halves its cached 1 MiB rate).
# Prints a table with the
# ratio vdisk/fio (goal >= 0.95).  Each cell is the median of REPEAT runs,
# alternating the two tools, and which one goes first, so drift hits both.
#
# usage: bench/bench-raw.sh [BUILDDIR]   env: SIZE (1G) RUNTIME (5) REPEAT (3) DIR
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/bench-functions.sh"
bench="$top/$build/bench/bench-io"
size=${SIZE:-1G}
runtime=${RUNTIME:-5}
repeat=${REPEAT:-3}
dir=${DIR:-$top/$build/bench}
command -v fio >/dev/null || { echo "fio is required" >&2; exit 1; }
img="$dir/bench-raw.img"
trap 'rm -f "$img"' EXIT

# A fully allocated file: both tools overwrite existing blocks.
rm -f "$img"
fio --name=fill --filename="$img" --size="$size" --rw=write --bs=1M \
    --ioengine=psync --direct=1 --end_fsync=1 >/dev/null


run_fio ()  # rw bs direct -> MiB/s
{
    fio --name=job --filename="$img" --size="$size" --rw="$1" --bs="$2" \
        --ioengine=psync --iodepth=1 --numjobs=1 --direct="$3" \
        --runtime="$runtime" --time_based --randrepeat=0 --norandommap \
        --invalidate=0 --iomem_align=4096 --scramble_buffers=0 --output-format=json \
      | jq '.jobs[0] | ((.read.bw_bytes + .write.bw_bytes) / 1048576)'
}

run_vdisk ()
{
    "$bench" --rw "$1" --bs "$2" --direct "$3" --runtime "$runtime" "$img" | jq '.MiBps'
}

printf '%-10s %-6s %-8s %10s %10s %7s\n' workload bs cache "fio MiB/s" "vdisk" ratio
for direct in 1 0; do
    cache=$([ $direct = 1 ] && echo uncached || echo cached)
    for spec in "write 1048576" "read 1048576" "randwrite 4096" "randread 4096"; do
        set -- $spec
        f=(); v=()
        for ((i = 0; i < repeat; i++)); do
            # Who goes first alternates: the virtual disk of the test
            # machine serves whoever follows an idle spell faster.
            if ((i % 2 == 0)); then
                f+=("$(run_fio "$1" "$2" "$direct")")
                v+=("$(run_vdisk "$1" "$2" "$direct")")
            else
                v+=("$(run_vdisk "$1" "$2" "$direct")")
                f+=("$(run_fio "$1" "$2" "$direct")")
            fi
        done
        fm=$(printf '%s\n' "${f[@]}" | median)
        vm=$(printf '%s\n' "${v[@]}" | median)
        printf '%-10s %-6s %-8s %10.1f %10.1f %7.2f\n' "$1" "$2" "$cache" "$fm" "$vm" \
            "$(awk -v a="$vm" -v b="$fm" 'BEGIN {print a / b}')"
    done
done
