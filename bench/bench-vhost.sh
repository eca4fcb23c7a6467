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
# vdisk/nbd ratios, the vdisk/qsd ratio of runs paired in time and per
# boot, the guest's interrupts per request on each disk, and vdisk's own
# kicks and interrupts per request.
#
# The disks' PCI slots, the image copy each path gets and the order of
# the disks in each job rotate: ROUNDS a multiple of the number of disks
# (3, or 4 with an A/B disk) balances them.
#
# Usage: bench/bench-vhost.sh [BUILDDIR]
# Env: ROUNDS (3 boots), GUEST_ROUNDS (1: runs of each job per boot),
#      SIZE_MIB (256: region of the sequential jobs), RUNTIME (10:
#      seconds per job), IMG_MIB (1024), VM_MEM (512), BOOT_TIMEOUT
#      (the jobs' time + 180 s).
# ACCEL (tcg; kvm where it works: the guest then no longer sets the pace
#      of the small requests).
# PIN (1 when there are 2 CPUs or more): the guest's vCPU thread gets
#      CPU 1 to itself, QEMU's other threads and every server share CPU 0,
#      so that no server's thread preempts the guest.
# A/B in the same boots: B_VDISK (another build's cli/vdisk) and/or
#      B_ENV ("VAR=VALUE ...") add a fourth disk, "vdiskb", served by
#      that binary (default: this build's) with that environment.
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
ACCEL=${ACCEL:-tcg}
B_VDISK=${B_VDISK:-}
B_ENV=${B_ENV:-}
ab=0; [ -n "$B_VDISK$B_ENV" ] && ab=1
PIN=${PIN:-$([ "$(nproc)" -ge 2 ] && echo 1 || echo 0)}
pin=()
[ "$PIN" = 1 ] && pin=(taskset -c 0)
# A guest gets its jobs' time and three minutes more: a hung one (see
# docs/benchmarks.md) must not hold the run for long.
njobs=12; [ $ab = 1 ] && njobs=16   # 4 jobs per disk
BOOT_TIMEOUT=${BOOT_TIMEOUT:-$((njobs * RUNTIME * GUEST_ROUNDS + 180))}

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
# One copy per path (each server locks its file).  Which copy a path
# gets rotates from boot to boot (linked to the path's name below), as
# the disks' slots do; the sizes differ by 1 MiB per path so the guest
# can tell the disks apart.
paths=(vdisk qsd nbd)
[ $ab = 1 ] && paths+=(vdiskb)
ndev=${#paths[@]}
disks=
for (( i = 0; i < ndev; i++ )); do
    cp "$img" "$work/copy$i"
    disks="$disks${disks:+,}${paths[i]}:$((IMG_MIB + i))"
done
rm -f "$img"
sync

start () {  # SOCKET CMD... ; waits for SOCKET
    local sock=$1
    shift
    "${pin[@]}" "$@" >> "$work/server.log" 2>&1 &
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
    for (( i = 0; i < ndev; i++ )); do
        f=$work/${paths[i]}.img
        ln -f "$work/copy$(( (i + r - 1) % ndev ))" "$f"
        truncate -s $((IMG_MIB + i))M "$f"
    done
    start "$work/vdisk.sock" "$VDISK" serve -v --vhost-user-blk "$work/vdisk.sock" \
        --caching uncached "$work/vdisk.img"
    start "$work/qsd.sock" qemu-storage-daemon \
        --blockdev "driver=file,node-name=file0,filename=$work/qsd.img,cache.direct=on" \
        --export "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=$work/qsd.sock,writable=on,num-queues=1"
    start "$work/nbd.sock" "$VDISK" serve --socket "$work/nbd.sock" \
        --caching uncached "$work/nbd.img"
    if [ $ab = 1 ]; then
        # shellcheck disable=SC2086 # B_ENV is a list of assignments
        start "$work/vdiskb.sock" env $B_ENV "${B_VDISK:-$VDISK}" serve --vhost-user-blk "$work/vdiskb.sock" \
            --caching uncached "$work/vdiskb.img"
    fi
    # The disks' PCI slots rotate from boot to boot, as the image copies
    # and the guest's order do: an A/A run (the same vdisk on two disks)
    # showed a fixed arrangement moving a row by ~10%, steadily.
    slots=()
    for (( i = 0; i < ndev; i++ )); do
        case $(( (i + r - 1) % ndev )) in
            0) slots+=(-chardev "socket,id=vub0,path=$work/vdisk.sock" -device vhost-user-blk-pci,chardev=vub0,num-queues=1) ;;
            1) slots+=(-chardev "socket,id=vub1,path=$work/qsd.sock" -device vhost-user-blk-pci,chardev=vub1,num-queues=1) ;;
            2) slots+=(-drive "file=nbd+unix:///?socket=$work/nbd.sock,format=raw,if=virtio,cache=none") ;;
            3) slots+=(-chardev "socket,id=vub2,path=$work/vdiskb.sock" -device vhost-user-blk-pci,chardev=vub2,num-queues=1) ;;
        esac
    done
    console=$work/console.$r
    "${pin[@]}" timeout "$BOOT_TIMEOUT" qemu-system-x86_64 -accel "$ACCEL" -M pc -m "$VM_MEM" -smp 1 \
        -name bench,debug-threads=on -nodefaults -no-user-config -display none -monitor none \
        -serial "file:$console" -no-reboot \
        -kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 vdt.script=bench-paths vdt.disks=$disks vdt.rounds=$GUEST_ROUNDS vdt.first=$(( (r - 1) * GUEST_ROUNDS )) vdt.size=$SIZE_MIB vdt.runtime=$RUNTIME" \
        -object "memory-backend-memfd,id=mem,size=${VM_MEM}M,share=on" -numa node,memdev=mem \
        "${slots[@]}" \
        2> "$work/qemu.log" &
    qpid=$!
    if [ "$PIN" = 1 ]; then
        # The vCPU thread ("CPU 0/TCG", "CPU 0/KVM") to CPU 1, once QEMU
        # has made it.
        for (( i = 0; i < 100; i++ )); do
            tid=$(grep -l '^CPU 0/' /proc/"$(pgrep -P $qpid qemu-system)"/task/*/comm 2>/dev/null | head -n 1 | cut -d/ -f5) || true
            [ -n "$tid" ] && { taskset -pc 1 "$tid" >/dev/null; break; }
            sleep 0.05
        done
        [ -n "$tid" ] || echo "bench-vhost: could not find the guest's vCPU thread to pin it" >&2
    fi
    wait $qpid || true
    stop_all
    # The export's own count of kicks and interrupts (vdisk serve -v).
    grep -a "vdisk.sock: queue 0 stopped" "$work/server.log" | tail -n 1 |
        sed -n 's/.*(\([0-9]*\) requests, \([0-9]*\) kicks, \([0-9]*\) interrupts.*/\1 \2 \3/p' |
        awk -v r=$r '{ printf "bench-vhost: round %d: vdisk took %d requests, %.3f kicks and %.3f interrupts per request\n", r, $1, $2 / $1, $3 / $1 }' >&2
    : > "$work/server.log"
    if ! grep -aq '^VDT status=OK' "$console"; then
        # Counted and reported, not fatal: the jobs that finished count.
        echo "bench-vhost: the guest of round $r failed or hung:" >&2
        tail -n 20 "$console" "$work/qemu.log" >&2
        failures=$((failures + 1))
    fi
    grep -a '^VDT ' "$console" | tr -d '\r' | tr ' ' '\n' |
        sed -n 's/^\(vdisk\|vdiskb\|qsd\|nbd\)_\([a-z]*\)_\(bw_kib\|iops\|ios\|irqs\)=/\1 \2_\3 /p' |
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
    # In the order run: the k-th value of a boot is its k-th guest round.
    per_round.setdefault((rnd, cfg, key), []).append(float(val))
med = {k: statistics.median(v) for k, v in res.items()}
jobs = [("seqwrite", "bw_kib", "1 MiB seq write (MiB/s)", 1 / 1024),
        ("seqread", "bw_kib", "1 MiB seq read (MiB/s)", 1 / 1024),
        ("randread", "iops", "4 KiB rand read (IOPS)", 1),
        ("randwrite", "iops", "4 KiB rand write (IOPS)", 1)]
nan = float("nan")
rounds = sorted({k[0] for k in per_round}, key=int)
M = statistics.median

def ratios(x, y, k):
    """x/y for key k: ratio of the medians, median of the ratios of runs
    paired by boot and guest round (runs of one pair are close in time,
    so the guest's drift within a boot cancels), and per boot."""
    a, b = med.get((x, k), nan), med.get((y, k), nan)
    paired, boot = [], []
    for r in rounds:
        u = per_round.get((r, x, k), []); v = per_round.get((r, y, k), [])
        paired += [p / q for p, q in zip(u, v)]
        boot.append(f"{M(u) / M(v):.2f}" if u and v else "-")
    return a / b, (M(paired) if paired else nan), " ".join(boot)

print("| job | vdisk vhost-user-blk | qemu-storage-daemon | QEMU NBD client on vdisk serve "
      "| vdisk/qsd | vdisk/qsd paired | vdisk/nbd | vdisk/qsd per boot |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for job, key, label, scale in jobs:
    k = f"{job}_{key}"
    v = [med.get((c, k), nan) for c in ("vdisk", "qsd", "nbd")]
    q, qp, qb = ratios("vdisk", "qsd", k)
    n, _, _ = ratios("vdisk", "nbd", k)
    print(f"| {label} | {v[0]*scale:.0f} | {v[1]*scale:.0f} | {v[2]*scale:.0f} "
          f"| {q:.2f} | {qp:.2f} | {n:.2f} | {qb} |")
n = len(res.get(("vdisk", "seqread_bw_kib"), []))
print(f"\nmedians of {n} runs per path ({len(rounds)} boots, all paths in each boot)")
cfgs = [c for c in ("vdisk", "qsd", "nbd", "vdiskb") if any(k[0] == c for k in res)]
# Interrupts per request (all runs summed): under TCG each interrupt
# costs the guest's only vCPU far more than the request's I/O, so how
# far completions share an interrupt matters to every row.
if any(k[1].endswith("_irqs") for k in res):
    print("\n| guest interrupts per request | " + " | ".join(cfgs) + " |")
    print("|---|" + "---:|" * len(cfgs))
    for job, key, label, scale in jobs:
        cells = []
        for c in cfgs:
            ios = sum(res.get((c, f"{job}_ios"), []))
            irq = sum(res.get((c, f"{job}_irqs"), []))
            cells.append(f"{irq / ios:.3f}" if ios else "-")
        print(f"| {label.split(' (')[0]} | {' | '.join(cells)} |")
if "vdiskb" in cfgs:
    print("\n| job (A/B) | vdisk | vdiskb | vdiskb/vdisk | vdiskb/vdisk paired | vdiskb/qsd | vdiskb/vdisk per boot |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for job, key, label, scale in jobs:
        k = f"{job}_{key}"
        a, b = med.get(("vdisk", k), nan), med.get(("vdiskb", k), nan)
        x, xp, xb = ratios("vdiskb", "vdisk", k)
        y, _, _ = ratios("vdiskb", "qsd", k)
        print(f"| {label} | {a*scale:.0f} | {b*scale:.0f} | {x:.2f} | {xp:.2f} | {y:.2f} | {xb} |")
fails = int(open(sys.argv[2]).read().strip() or 0)
if fails:
    print(f"{fails} guest(s) failed or hung (the jobs done before count)")
PY
