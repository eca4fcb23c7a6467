#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real guest's disk I/O through three paths to the same RAW file, in one
# run, alternating, medians of ROUNDS boots each:
#   vdisk   vdisk serve --vhost-user-blk (this project's export)
#   qsd     qemu-storage-daemon's vhost-user-blk export
#   nbd     QEMU's own NBD client on vdisk serve (NBD over a unix socket)
# Inside the guest (tests/vm, qemu -accel tcg, 1 vCPU) fio runs O_DIRECT
# libaio jobs on /dev/vda: 1 MiB sequential write and read (iodepth 4),
# 4 KiB random read and write (iodepth 16).  All servers use O_DIRECT on
# the host (vdisk --caching uncached, QEMU cache.direct=on / cache=none).
# Prints a table and the vdisk/qsd and vdisk/nbd ratios.  TCG slows the
# guest: compare only within one run (docs/benchmarks.md).
#
# Usage: bench/bench-vhost.sh [BUILDDIR]
# Env: ROUNDS (3), SIZE_MIB (256: sequential job size), RUNTIME (10:
#      seconds per random job), IMG_MIB (1024), VM_MEM (512),
#      BOOT_TIMEOUT (300: seconds before a guest counts as hung)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
VDISK=$build/cli/vdisk
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-256}
RUNTIME=${RUNTIME:-10}
IMG_MIB=${IMG_MIB:-1024}
VM_MEM=${VM_MEM:-512}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}

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
echo "bench-vhost: writing a ${IMG_MIB} MiB image" >&2
dd if=/dev/urandom of="$img" bs=1M count="$IMG_MIB" conv=fsync status=none

# The vdisk vhost-user-blk server: `vdisk serve --vhost-user-blk`.
vdisk_vhost_cmd () {
    echo "$VDISK serve --vhost-user-blk $1 --caching uncached $img"
}

start () {  # start CMD... ; waits for the socket named by $sock
    "$@" > "$work/server.log" 2>&1 &
    pids+=($!)
    for (( i = 0; i < 100; i++ )); do [ -S "$sock" ] && return 0; sleep 0.1; done
    echo "bench-vhost: the server did not create $sock:" >&2
    cat "$work/server.log" >&2
    exit 1
}
stop () {
    local p=${pids[-1]}
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset 'pids[-1]'
    rm -f "$sock"
}

boot () {  # CONFIG DISK-ARGS...
    local name=$1 console=$work/$1.console
    shift
    # shellcheck disable=SC2068
    timeout "$BOOT_TIMEOUT" qemu-system-x86_64 -accel tcg -M pc -m "$VM_MEM" -smp 1 \
        -nodefaults -no-user-config -display none -monitor none \
        -serial "file:$console" -no-reboot \
        -kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 vdt.script=bench vdt.size=$SIZE_MIB vdt.runtime=$RUNTIME" \
        $@ 2> "$work/qemu.log" || true
    if ! grep -aq '^VDT status=OK' "$console"; then
        # Counted and reported, not fatal: a guest that hangs on one path
        # (qemu-storage-daemon 7.2 lost an interrupt of a TCG guest here
        # once) must not cost the other paths their numbers.  The jobs
        # that finished before the hang still count.
        echo "bench-vhost: $name: the guest failed (round $r):" >&2
        tail -n 20 "$console" "$work/qemu.log" >&2
        echo "$name" >> "$work/failures"
    fi
    grep -a '^VDT ' "$console" | tr -d '\r' | tr ' ' '\n' |
        sed -n 's/^\(seq[a-z]*\|rand[a-z]*\)_\(bw_kib\|iops\)=/\1_\2 /p' |
        sed "s/^/$name /" >> "$work/results"
}

vhost_disk="-object memory-backend-memfd,id=mem,size=${VM_MEM}M,share=on -numa node,memdev=mem -device vhost-user-blk-pci,chardev=vub0,num-queues=1"

echo "bench-vhost: load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: > "$work/results"
: > "$work/failures"
for (( r = 1; r <= ROUNDS; r++ )); do
    echo "bench-vhost: round $r/$ROUNDS" >&2
    sock=$work/vdisk.sock
    # shellcheck disable=SC2046
    start $(vdisk_vhost_cmd "$sock")
    # shellcheck disable=SC2086
    boot vdisk -chardev socket,id=vub0,path=$sock $vhost_disk
    stop

    sock=$work/qsd.sock
    start qemu-storage-daemon \
        --blockdev "driver=file,node-name=file0,filename=$img,cache.direct=on" \
        --export "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=$sock,writable=on,num-queues=1"
    # shellcheck disable=SC2086
    boot qsd -chardev socket,id=vub0,path=$sock $vhost_disk
    stop

    sock=$work/nbd.sock
    start "$VDISK" serve --socket "$sock" --caching uncached "$img"
    boot nbd -drive "file=nbd+unix:///?socket=$sock,format=raw,if=virtio,cache=none"
    stop
done
echo "bench-vhost: load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$work/results" "$work/failures" <<'PY'
import statistics, sys
res = {}
for line in open(sys.argv[1]):
    cfg, key, val = line.split()
    res.setdefault((cfg, key), []).append(float(val))
med = {k: statistics.median(v) for k, v in res.items()}
jobs = [("seqwrite", "bw_kib", "1 MiB seq write (MiB/s)", 1 / 1024),
        ("seqread", "bw_kib", "1 MiB seq read (MiB/s)", 1 / 1024),
        ("randread", "iops", "4 KiB rand read (IOPS)", 1),
        ("randwrite", "iops", "4 KiB rand write (IOPS)", 1)]
print("| job | vdisk vhost-user-blk | qemu-storage-daemon | QEMU NBD client on vdisk serve | vdisk/qsd | vdisk/nbd |")
print("|---|---|---|---|---|---|")
for job, key, label, scale in jobs:
    v = [med.get((c, f"{job}_{key}"), float("nan")) for c in ("vdisk", "qsd", "nbd")]
    print(f"| {label} | {v[0]*scale:.0f} | {v[1]*scale:.0f} | {v[2]*scale:.0f} "
          f"| {v[0]/v[1]:.2f} | {v[0]/v[2]:.2f} |")
n = len(res.get(("vdisk", "seqread_bw_kib"), []))
print(f"\nmedians of {n} boots per path")
fails = [l.strip() for l in open(sys.argv[2]) if l.strip()]
for c in ("vdisk", "qsd", "nbd"):
    if fails.count(c):
        print(f"{c}: {fails.count(c)} guest(s) failed or hung (jobs done before count)")
PY
