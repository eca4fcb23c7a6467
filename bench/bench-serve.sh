#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk serve against nbdkit (file plugin) and qemu-nbd, side by side, in
# one run, on the same files, with the same clients:
#   - sequential 1 MiB reads and writes with nbdcopy, 1 and 4 connections
#   - 4 KiB random reads and writes with fio's nbd engine (libnbd), queue
#     depth 1 and 16
# over TCP and a unix socket, on a RAW file (vdisk, nbdkit, qemu-nbd), and
# vdisk-ASIF against qemu-nbd on qcow2 (when this build has ASIF); then
# the peak RSS of each server with 32 clients.  Prints a Markdown table
# with the ratio of vdisk to the faster peer on each row.
#
#   bench/bench-serve.sh [BUILDDIR]
# Environment: BENCH_SECONDS (fio run time, default 4), BENCH_SIZE
# (default 1G), BENCH_DIR (work directory, default BUILDDIR/bench-serve;
# must not be tmpfs), BENCH_REPEAT (runs per row, best kept, default 5),
# BENCH_ONLY (e.g. "tcp" or "unix" to run one transport), BENCH_TESTS
# (rows to run, e.g. "seq-write-1 seq-write-4"; default all), BENCH_ASIF
# (0: skip the ASIF-vs-qcow2 pass).
#
# Each row is run BENCH_REPEAT times for every server, the servers taking
# turns (in a rotating order), each run with a fresh server; the best run
# counts; writes start from a synced file, and the 4 KiB random writes
# from a file with nothing in the page cache (see evict_cache).  Next to
# the throughput the table gives the server's own CPU time per MiB or
# per request (from /proc/PID/stat), which a shared, busy machine
# disturbs much less than throughput.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/bench-functions.sh"
vdisk="$top/$build/cli/vdisk"
secs=${BENCH_SECONDS:-4}
size=${BENCH_SIZE:-1G}
repeat=${BENCH_REPEAT:-5}
dir=${BENCH_DIR:-$top/$build/bench-serve}
only=${BENCH_ONLY:-}
mkdir -p "$dir"
cd "$dir"
for t in nbdkit qemu-nbd qemu-img nbdcopy fio nbdinfo python3; do
    command -v $t >/dev/null || { echo "bench-serve: $t is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x "$vdisk" ] || { echo "bench-serve: build first ($vdisk)" >&2; exit 1; }
fio --enghelp=nbd >/dev/null 2>&1 || { echo "bench-serve: fio has no nbd engine" >&2; exit 1; }

pid=
cleanup () { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -f "$dir"/*.sock; }
trap cleanup EXIT

bytes=$(python3 -c "import sys; u={'K':1<<10,'M':1<<20,'G':1<<30}; s=sys.argv[1]; print(int(s[:-1])*u[s[-1]] if s[-1] in u else int(s))" "$size")
echo "# bench-serve: $(date -u +%F\ %T) UTC, $(nproc) CPUs, $(uname -r), size $size, fio ${secs}s" >&2
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" >&2

# Source data (random, so nothing is skipped as zero) and the targets.
if [ ! -f src.raw ] || [ "$(stat -c %s src.raw)" != "$bytes" ]; then
    head -c "$bytes" /dev/urandom > src.raw
fi
has_asif=0
if [ "${BENCH_ASIF:-1}" = 1 ] && "$vdisk" image create blank --fs none --format ASIF --size "$bytes" probe.asif >/dev/null 2>&1; then
    has_asif=1
    rm -f probe.asif
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
uri=

# start SERVER TRANSPORT: sets pid and uri.
start () {
    local server=$1 transport=$2 sock=$dir/s.sock addr
    rm -f "$sock"
    if [ "$transport" = unix ]; then
        uri="nbd+unix:///?socket=$sock"
    else
        uri="nbd://127.0.0.1:$port/"
    fi
    case "$server" in
        vdisk|vdisk-asif)
            local img=disk.raw
            [ "$server" = vdisk-asif ] && img=disk.asif
            if [ "$transport" = unix ]; then
                "$vdisk" serve --socket "$sock" "$img" 2>>serve.log &
            else
                "$vdisk" serve --port "$port" "$img" 2>>serve.log &
            fi ;;
        nbdkit)
            if [ "$transport" = unix ]; then
                nbdkit -f -U "$sock" file disk.raw &
            else
                nbdkit -f -i 127.0.0.1 -p "$port" file disk.raw &
            fi ;;
        qemu-nbd|qemu-nbd-qcow2)
            local fmt=raw img=disk.raw
            [ "$server" = qemu-nbd-qcow2 ] && { fmt=qcow2; img=disk.qcow2; }
            if [ "$transport" = unix ]; then
                qemu-nbd -t -f "$fmt" -e 64 -k "$sock" "$img" &
            else
                qemu-nbd -t -f "$fmt" -e 64 -b 127.0.0.1 -p "$port" "$img" &
            fi ;;
    esac
    pid=$!
    wait_nbd "$server" "$uri"
}

# image_of SERVER: the file SERVER exports.
image_of () {
    case "$1" in
        vdisk-asif) echo disk.asif ;;
        qemu-nbd-qcow2) echo disk.qcow2 ;;
        *) echo disk.raw ;;
    esac
}

declare -A R C A
tests=${BENCH_TESTS:-seq-read-1 seq-read-4 seq-write-1 seq-write-4 rand-read-qd1 rand-read-qd16 rand-write-qd1 rand-write-qd16}

cpu_ticks () { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_test SERVER TRANSPORT TEST: one run of one test; keeps the best
# throughput (and the server's CPU time per MiB or per request in that
# run) in R and C.
run_test () {
    local server=$1 transport=$2 t=$3 c0 c1 r n key=$1/$2/$3
    start "$server" "$transport"
    case "$t" in
        seq-write-*) sync -f disk.raw 2>/dev/null || sync ;;
        rand-write-*) sync -f disk.raw 2>/dev/null || sync; evict_cache "$(image_of "$server")" ;;
    esac
    c0=$(cpu_ticks "$pid")
    case "$t" in
        seq-read-*) r=$(copy_rate nbdcopy --connections=${t##*-} --request-size=1048576 "$uri" null:) ;;
        seq-write-*) r=$(copy_rate nbdcopy --connections=${t##*-} --request-size=1048576 src.raw "$uri") ;;
        rand-read-qd*) r=$(fio_iops "$uri" randread "${t##*qd}") ;;
        rand-write-qd*) r=$(fio_iops "$uri" randwrite "${t##*qd}") ;;
    esac
    c1=$(cpu_ticks "$pid")
    stop
    case "$t" in
        seq-*) n=$(( bytes / 1048576 )) ;;
        *) n=$(( r * secs )) ;;
    esac
    echo "   $key: $r" >&2
    A[$key]="${A[$key]:-} $r"
    if [ "$r" -gt "${R[$key]:-0}" ]; then
        R[$key]=$r
        # ms of server CPU per MiB, or us per request
        C[$key]=$(python3 -c "import sys; t=(float(sys.argv[1])-float(sys.argv[2]))/100; n=max(float(sys.argv[3]), 1); print('%.2f' % (t*1e3/n if sys.argv[4].startswith('seq') else t*1e6/n))" "$c1" "$c0" "$n" "$t")
    fi
}

# med SERVER/TRANSPORT/TEST: the median of that row's runs.
med () { echo ${A[$1]} | tr ' ' '\n' | median; }

# Each test: BENCH_REPEAT rounds; in each round every server runs once,
# in an order that rotates, so that a busy moment of a shared machine
# does not land on one server only.  The best run of each server counts;
# the table gives the ratio of the medians too (a peer's one lucky round
# decides the best-of ratio on this shared machine, not the median).
rotate=0
measure_all () {
    local transport=$1; shift
    local servers=("$@") t i k rep
    for t in $tests; do
        for (( rep = 0; rep < repeat; rep++ )); do
            for (( i = 0; i < ${#servers[@]}; i++ )); do
                k=$(( (i + rotate) % ${#servers[@]} ))
                run_test "${servers[$k]}" "$transport" "$t"
            done
            rotate=$(( rotate + 1 ))
        done
    done
}

rss_32 () {
    local server=$1 hwm
    start "$server" unix
    fio --name=rss --ioengine=nbd --uri="$uri" --rw=randrw --bs=4k --iodepth=4 \
        --numjobs=32 --runtime=5 --time_based --size="$size" --group_reporting \
        >/dev/null 2>&1
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    stop
    echo $(( hwm / 1024 ))
}

# Each transport's pass starts from freshly written files, so that the
# second pass does not inherit the page cache the first one left (its
# random-write rows drop it).
transports="tcp unix"
[ -n "$only" ] && transports=$only
for transport in $transports; do
    echo "## RAW, $transport" >&2
    cp --sparse=never src.raw disk.raw
    measure_all "$transport" vdisk nbdkit qemu-nbd
done
if [ $has_asif = 1 ]; then
    for transport in $transports; do
        rm -f disk.asif disk.qcow2
        "$vdisk" image create blank --fs none --format ASIF --size "$bytes" disk.asif >/dev/null
        qemu-img create -q -f qcow2 disk.qcow2 "$bytes"
        for server in vdisk-asif qemu-nbd-qcow2; do
            start "$server" unix
            nbdcopy --connections=1 src.raw "$uri"   # allocate everything
            stop
        done
        echo "## ASIF vs qcow2, $transport" >&2
        measure_all "$transport" vdisk-asif qemu-nbd-qcow2
    done
fi
declare -A RSS
for server in vdisk nbdkit qemu-nbd; do
    RSS[$server]=$(rss_32 "$server")
done


echo
echo "| transport | test | unit | vdisk | nbdkit | qemu-nbd | vdisk / best peer | medians: vdisk / best peer | server CPU (ms/MiB for seq, us/req for rand): vdisk / nbdkit / qemu-nbd |"
echo "|---|---|---|---:|---:|---:|---:|---:|---|"
for transport in $transports; do
    for t in $tests; do
        v=${R[vdisk/$transport/$t]} k=${R[nbdkit/$transport/$t]} q=${R[qemu-nbd/$transport/$t]}
        best=$(( k > q ? k : q ))
        mk=$(med nbdkit/$transport/$t) mq=$(med qemu-nbd/$transport/$t)
        mbest=$(python3 -c "print(max($mk, $mq))")
        echo "| $transport | $t | $(unit $t) | $v | $k | $q | $(ratio "$v" "$best") | $(ratio "$(med vdisk/$transport/$t)" "$mbest") | ${C[vdisk/$transport/$t]} / ${C[nbdkit/$transport/$t]} / ${C[qemu-nbd/$transport/$t]} |"
    done
done
if [ $has_asif = 1 ]; then
    echo
    echo "| transport | test | unit | vdisk ASIF | qemu-nbd qcow2 | ratio | medians | server CPU: vdisk / qemu-nbd |"
    echo "|---|---|---|---:|---:|---:|---:|---|"
    for transport in $transports; do
        for t in $tests; do
            v=${R[vdisk-asif/$transport/$t]} q=${R[qemu-nbd-qcow2/$transport/$t]}
            echo "| $transport | $t | $(unit $t) | $v | $q | $(ratio "$v" "$q") | $(ratio "$(med vdisk-asif/$transport/$t)" "$(med qemu-nbd-qcow2/$transport/$t)") | ${C[vdisk-asif/$transport/$t]} / ${C[qemu-nbd-qcow2/$transport/$t]} |"
        done
    done
else
    echo
    echo "(no ASIF pass: BENCH_ASIF=0, or this build has no ASIF)"
fi
echo
echo "| peak RSS, 32 clients (fio randrw 4k QD4 x 32 jobs) | vdisk | nbdkit | qemu-nbd |"
echo "|---|---:|---:|---:|"
echo "| MiB | ${RSS[vdisk]} | ${RSS[nbdkit]} | ${RSS[qemu-nbd]} |"
