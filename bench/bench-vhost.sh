#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real guest's disk I/O through three paths, in one run:
#   vdisk   vdisk serve --vhost-user-blk (this project's export)
#   qsd     qemu-storage-daemon's vhost-user-blk export
#   nbd     QEMU's own NBD client on vdisk serve (NBD over a unix socket)
# One guest per round has all three disks (tests/vm, qemu -accel tcg,
# 1 vCPU; each disk is a copy of the same RAW image, told apart in the
# guest by its size) and runs every fio job on each of them in turn, the
# order rotating from job to job (guest scenario bench-paths): O_DIRECT
# libaio, 1 MiB sequential write and read (iodepth 4), 4 KiB random read
# and write (iodepth 16).  Measuring the paths in the same boot matters:
# under TCG one boot can be much faster or slower than the next, which
# made separate boots per path disagree from run to run.  All servers use
# O_DIRECT on the host (vdisk --caching uncached, QEMU cache.direct=on /
# cache=none).  Prints medians over all runs and the vdisk/qsd and
# vdisk/nbd ratios, and the same ratios per round.
#
# Usage: bench/bench-vhost.sh [BUILDDIR]
# Env: ROUNDS (3 boots), GUEST_ROUNDS (1: runs of each job per boot),
#      SIZE_MIB (256: region of the sequential jobs), RUNTIME (10:
#      seconds per job), IMG_MIB (1024), VM_MEM (512), BOOT_TIMEOUT
#      (the jobs' time + 180 s)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
VDISK=$build/cli/vdisk
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-256}
RUNTIME=${RUNTIME:-10}
IMG_MIB=${IMG_MIB:-1024}
VM_MEM=${VM_MEM:-512}
GUEST_ROUNDS=${GUEST_ROUNDS:-1}
# A guest gets its jobs' time and three minutes more: a hung one (see
# docs/benchmarks.md) must not hold the run for long.
BOOT_TIMEOUT=${BOOT_TIMEOUT:-$((12 * RUNTIME * GUEST_ROUNDS + 180))}

for t in qemu-system-x86_64 qemu-storage-daemon fio python3; do
    command -v $t >/dev/null || { echo "bench-vhost: $t is missing (scripts/install-deps.sh test)" >&2; exit 1; }
done
eval "$("$top/tests/vm/build-guest.sh" --fio)"

work=$(mktemp -d "$build/bench-vhost.XXXXXX")
pids=()
cleanup () {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

img=$work/disk.img
echo "bench-vhost: writing a ${IMG_MIB} MiB image, one copy per path" >&2
dd if=/dev/urandom of="$img" bs=1M count="$IMG_MIB" conv=fsync status=none
# One copy per path (each server locks its file); the sizes differ by
# 1 MiB so the guest can tell the disks apart.
cp "$img" "$work/vdisk.raw"
cp "$img" "$work/qsd.img"; truncate -s $((IMG_MIB + 1))M "$work/qsd.img"
cp "$img" "$work/nbd.img"; truncate -s $((IMG_MIB + 2))M "$work/nbd.img"
rm -f "$img"
disks="vdisk:$IMG_MIB,qsd:$((IMG_MIB + 1)),nbd:$((IMG_MIB + 2))"
sync

start () {  # SOCKET CMD... ; waits for SOCKET
    local sock=$1
    shift
    "$@" >> "$work/server.log" 2>&1 &
    pids+=($!)
    for (( i = 0; i < 100; i++ )); do [ -S "$sock" ] && return 0; sleep 0.1; done
    echo "bench-vhost: the server did not create $sock:" >&2
    cat "$work/server.log" >&2
    exit 1
}
stop_all () {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pids=()
    rm -f "$work"/*.sock
}

echo "bench-vhost: load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: > "$work/results"
failures=0
for (( r = 1; r <= ROUNDS; r++ )); do
    echo "bench-vhost: round $r/$ROUNDS" >&2
    start "$work/vdisk.sock" "$VDISK" serve --vhost-user-blk "$work/vdisk.sock" \
        --caching uncached "$work/vdisk.raw"
    start "$work/qsd.sock" qemu-storage-daemon \
        --blockdev "driver=file,node-name=file0,filename=$work/qsd.img,cache.direct=on" \
        --export "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=$work/qsd.sock,writable=on,num-queues=1"
    start "$work/nbd.sock" "$VDISK" serve --socket "$work/nbd.sock" \
        --caching uncached "$work/nbd.img"
    console=$work/console.$r
    timeout "$BOOT_TIMEOUT" qemu-system-x86_64 -accel tcg -M pc -m "$VM_MEM" -smp 1 \
        -nodefaults -no-user-config -display none -monitor none \
        -serial "file:$console" -no-reboot \
        -kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 vdt.script=bench-paths vdt.disks=$disks vdt.rounds=$GUEST_ROUNDS vdt.size=$SIZE_MIB vdt.runtime=$RUNTIME" \
        -object "memory-backend-memfd,id=mem,size=${VM_MEM}M,share=on" -numa node,memdev=mem \
        -chardev "socket,id=vub0,path=$work/vdisk.sock" -device vhost-user-blk-pci,chardev=vub0,num-queues=1 \
        -chardev "socket,id=vub1,path=$work/qsd.sock" -device vhost-user-blk-pci,chardev=vub1,num-queues=1 \
        -drive "file=nbd+unix:///?socket=$work/nbd.sock,format=raw,if=virtio,cache=none" \
        2> "$work/qemu.log" || true
    stop_all
    if ! grep -aq '^VDT status=OK' "$console"; then
        # Counted and reported, not fatal: the jobs that finished count.
        echo "bench-vhost: the guest of round $r failed or hung:" >&2
        tail -n 20 "$console" "$work/qemu.log" >&2
        failures=$((failures + 1))
    fi
    grep -a '^VDT ' "$console" | tr -d '\r' | tr ' ' '\n' |
        sed -n 's/^\(vdisk\|qsd\|nbd\)_\([a-z]*\)_\(bw_kib\|iops\)=/\1 \2_\3 /p' |
        sed "s/^/$r /" >> "$work/results"
done
echo "bench-vhost: load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "$failures" > "$work/failures"

python3 - "$work/results" "$work/failures" <<'PY'
import statistics, sys
res, per_round = {}, {}
for line in open(sys.argv[1]):
    rnd, cfg, key, val = line.split()
    res.setdefault((cfg, key), []).append(float(val))
    per_round.setdefault((rnd, cfg, key), []).append(float(val))
med = {k: statistics.median(v) for k, v in res.items()}
jobs = [("seqwrite", "bw_kib", "1 MiB seq write (MiB/s)", 1 / 1024),
        ("seqread", "bw_kib", "1 MiB seq read (MiB/s)", 1 / 1024),
        ("randread", "iops", "4 KiB rand read (IOPS)", 1),
        ("randwrite", "iops", "4 KiB rand write (IOPS)", 1)]
nan = float("nan")
rounds = sorted({k[0] for k in per_round}, key=int)
print("| job | vdisk vhost-user-blk | qemu-storage-daemon | QEMU NBD client on vdisk serve | vdisk/qsd | vdisk/nbd | vdisk/qsd per boot |")
print("|---|---:|---:|---:|---:|---:|---|")
for job, key, label, scale in jobs:
    k = f"{job}_{key}"
    v = [med.get((c, k), nan) for c in ("vdisk", "qsd", "nbd")]
    pr = []
    for r in rounds:
        a = per_round.get((r, "vdisk", k)); b = per_round.get((r, "qsd", k))
        pr.append(f"{statistics.median(a) / statistics.median(b):.2f}" if a and b else "-")
    print(f"| {label} | {v[0]*scale:.0f} | {v[1]*scale:.0f} | {v[2]*scale:.0f} "
          f"| {v[0]/v[1]:.2f} | {v[0]/v[2]:.2f} | {' '.join(pr)} |")
n = len(res.get(("vdisk", "seqread_bw_kib"), []))
print(f"\nmedians of {n} runs per path ({len(rounds)} boots, all paths in each boot)")
fails = int(open(sys.argv[2]).read().strip() or 0)
if fails:
    print(f"{fails} guest(s) failed or hung (the jobs done before count)")
PY
