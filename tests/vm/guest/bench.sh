# SPDX-License-Identifier: LGPL-2.1-or-later
# Scenario "bench" (sourced by /init; needs the fio initramfs, build-guest.sh
# --fio): fio on the whole disk, O_DIRECT, libaio.  Each job prints
#   VDT <job>_bw_kib=N <job>_iops=N
#   seqwrite  1 MiB sequential writes, iodepth 4, vdt.size MiB
#   seqread   1 MiB sequential reads, iodepth 4, vdt.size MiB
#   randread  4 KiB random reads, iodepth 16, vdt.runtime seconds
#   randwrite 4 KiB random writes, iodepth 16, vdt.runtime seconds
D=/dev/$DEV
SIZE=${VDT_size:-256}
RT=${VDT_runtime:-10}
command -v fio >/dev/null || vdt_fail "fio is not in this initramfs"
run_fio () {  # NAME RW BS DEPTH [fio options]
    name=$1 rw=$2 bs=$3 depth=$4
    shift 4
    out=$(fio --name="$name" --filename=$D --direct=1 --ioengine=libaio \
              --rw="$rw" --bs="$bs" --iodepth="$depth" --minimal "$@" 2>/dev/console) ||
        vdt_fail "fio $name"
    case "$rw" in
        *write) echo "$out" | awk -F';' -v n="$name" '{ print "VDT " n "_bw_kib=" $48 " " n "_iops=" $49 }' ;;
        *)      echo "$out" | awk -F';' -v n="$name" '{ print "VDT " n "_bw_kib=" $7 " " n "_iops=" $8 }' ;;
    esac > /dev/console
}
run_fio seqwrite write 1M 4 --size=${SIZE}M
run_fio seqread read 1M 4 --size=${SIZE}M
run_fio randread randread 4k 16 --size=${SIZE}M --time_based --runtime=$RT
run_fio randwrite randwrite 4k 16 --size=${SIZE}M --time_based --runtime=$RT
vdt_finish OK
