# SPDX-License-Identifier: LGPL-2.1-or-later
# Scenario "disk-check" (sourced by /init): what a guest does to a disk,
# reported for the host to verify in the image.  (util-linux's
# blkdiscard and fallocate are called by path: busybox's shell prefers
# its own applets, which lack -z and -p.)
#  1. report the device: size, read-only flag, serial, queues, discard
#     and write-zeroes limits;
#  2. read vdt.rlen MiB at offset 0 with O_DIRECT and print the sha256
#     (the host seeded it with random bytes);
#  3. write /pattern.bin at vdt.woff MiB with fsync, drop caches, read it
#     back with O_DIRECT, print the sha256;
#  4. if vdt.discard=OFF, vdt.zero=OFF, vdt.punch=OFF (MiB offsets, 4 MiB
#     each) are given: blkdiscard, blkdiscard -z (WRITE_ZEROES without
#     unmap), fallocate --punch-hole (WRITE_ZEROES with unmap), and check
#     in the guest that each range reads back as zeros.
D=/dev/$DEV
B=/sys/block/$DEV
vdt_say "size=$(blockdev --getsize64 $D) ro=$(blockdev --getro $D) ss=$(blockdev --getss $D) pbs=$(cat $B/queue/physical_block_size)"
vdt_say "serial=$(cat $B/serial 2>/dev/null)"
vdt_say "queues=$(ls $B/mq 2>/dev/null | wc -l) discard_max=$(cat $B/queue/discard_max_bytes) zeroes_max=$(cat $B/queue/write_zeroes_max_bytes) max_segments=$(cat $B/queue/max_segments) cache=$(cat $B/queue/write_cache)"

RLEN=${VDT_rlen:-1}
WOFF=${VDT_woff:-8}
R=$(dd if=$D bs=1M count=$RLEN iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
vdt_say "read_sha256=$R"

PLEN=$(($(stat -c %s /pattern.bin) / 1048576))
dd if=/pattern.bin of=$D bs=1M seek=$WOFF conv=fsync 2>/dev/null || vdt_fail "write"
blockdev --flushbufs $D
echo 3 > /proc/sys/vm/drop_caches
W=$(dd if=$D bs=1M skip=$WOFF count=$PLEN iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
vdt_say "readback_sha256=$W"

ZERO4=$(dd if=/dev/zero bs=1M count=4 2>/dev/null | sha256sum | cut -d' ' -f1)
zero_check () {  # NAME OFFSET_MIB
    z=$(dd if=$D bs=1M skip=$2 count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$z" = "$ZERO4" ]; then vdt_say "$1=zeros"; else vdt_say "$1=NOT-zeros"; fi
}
if [ -n "${VDT_discard:-}" ]; then
    /opt/bin/blkdiscard -o $((VDT_discard * 1048576)) -l 4194304 $D || vdt_fail "blkdiscard"
    zero_check discard $VDT_discard
fi
if [ -n "${VDT_zero:-}" ]; then
    /opt/bin/blkdiscard -z -o $((VDT_zero * 1048576)) -l 4194304 $D || vdt_fail "blkdiscard -z"
    zero_check zero $VDT_zero
fi
if [ -n "${VDT_punch:-}" ]; then
    /opt/bin/fallocate -p -o $((VDT_punch * 1048576)) -l 4194304 $D || vdt_fail "fallocate -p"
    zero_check punch $VDT_punch
fi
sync
blockdev --flushbufs $D
vdt_finish OK
