# SPDX-License-Identifier: LGPL-2.1-or-later
# Scenario "bench-paths" (sourced by /init; needs the fio initramfs,
# build-guest.sh --fio): the fio jobs of "bench" on several disks of one
# guest, so that every path is measured in the same boot.  Under TCG one
# boot can run at a very different speed from the next, which swamps the
# differences between paths measured in separate boots.
#   vdt.disks=NAME:MIB,NAME:MIB,...  each disk is found by its size
#   vdt.rounds=N (1)                 every job runs N times on every disk
#   vdt.first=N (0)                  rounds run in earlier boots
# The order of the disks rotates from job to job and round to round.
# Every job runs for vdt.runtime seconds (the sequential ones wrap around
# their vdt.size MiB), so each path gets the same time on the guest.
# Prints, per run:  VDT <name>_<job>_bw_kib=N <name>_<job>_iops=N
#                   <name>_<job>_ios=N <name>_<job>_irqs=N (requests, interrupts)
SIZE=${VDT_size:-256}
RT=${VDT_runtime:-10}
ROUNDS=${VDT_rounds:-1}
command -v fio >/dev/null || vdt_fail "fio is not in this initramfs"
[ -n "$VDT_disks" ] || vdt_fail "vdt.disks is not set"

# Every disk: wait for a block device of its size (in 512-byte sectors).
names=
for nd in $(echo "$VDT_disks" | tr ',' ' '); do
    name=${nd%%:*} mib=${nd#*:}
    want=$((mib * 2048)) dev= i=0
    while [ -z "$dev" ] && [ $i -lt 300 ]; do
        for b in /sys/block/vd*; do
            [ -f "$b/size" ] && [ "$(cat "$b/size")" = "$want" ] && dev=${b##*/}
        done
        [ -n "$dev" ] || { sleep 0.1; i=$((i + 1)); }
    done
    [ -n "$dev" ] || vdt_fail "no disk of $mib MiB for $name"
    eval "dev_$name=$dev"
    names="$names $name"
done
ndisks=$(echo $names | wc -w)

# Interrupts taken so far by the virtio device behind block device $1
# (all its vectors): how many completions each interrupt covers depends
# on the backend, and under TCG every interrupt costs the guest dearly.
irqs () {
    v=$(readlink "/sys/block/$1/device")
    v=${v##*/}
    awk -v v="$v-" 'index($NF, v) == 1 { for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) n += $i; else break }
                    END { print n + 0 }' /proc/interrupts
}

run_fio () {  # DISK NAME RW BS DEPTH [fio options]
    d=$1 name=$2 rw=$3 bs=$4 depth=$5
    shift 5
    i0=$(irqs "$d")
    out=$(fio --name="$name" --filename=/dev/$d --direct=1 --ioengine=libaio \
              --rw="$rw" --bs="$bs" --iodepth="$depth" --minimal "$@" 2>/dev/console) ||
        vdt_fail "fio $name on $d"
    i1=$(irqs "$d")
    # Terse fields: read io_kbytes/bw/iops 6-8, write 47-49; bs in KiB
    # gives the number of requests.
    case "$rw" in
        *write) f=47 ;;
        *)      f=6 ;;
    esac
    echo "$out" | awk -F';' -v n="$name" -v f=$f -v bs="$bs" -v irq=$((i1 - i0)) '{
        k = bs + 0; if (bs ~ /[mM]$/) k *= 1024
        printf "VDT %s_bw_kib=%s %s_iops=%s %s_ios=%d %s_irqs=%d\n", n, $(f + 1), n, $(f + 2), n, $f / k, n, irq }' > /dev/console
}

# job ROTATION NAME RW BS DEPTH [fio options]: the job on every disk,
# starting with disk number ROTATION mod ndisks.
job () {
    rot=$1 jname=$2
    shift 2
    k=0
    while [ $k -lt "$ndisks" ]; do
        disk=$(echo $names | cut -d' ' -f$(( (rot + k) % ndisks + 1 )))
        eval "d=\$dev_$disk"
        run_fio "$d" "${disk}_$jname" "$@"
        k=$((k + 1))
    done
}

# Which disk goes first: one further on per job and per round, counting
# the rounds of earlier boots (vdt.first), so that over as many rounds
# as there are disks every disk has had every place in every job's
# order.  (A fixed order showed up as a steady ~10% between two disks of
# the same server.)
FIRST=${VDT_first:-0}
r=0
while [ $r -lt "$ROUNDS" ]; do
    job $((FIRST + r + 0)) seqwrite write 1M 4 --size=${SIZE}M --time_based --runtime=$RT
    job $((FIRST + r + 1)) seqread read 1M 4 --size=${SIZE}M --time_based --runtime=$RT
    job $((FIRST + r + 2)) randread randread 4k 16 --size=${SIZE}M --time_based --runtime=$RT
    job $((FIRST + r + 3)) randwrite randwrite 4k 16 --size=${SIZE}M --time_based --runtime=$RT
    r=$((r + 1))
done
vdt_finish OK
