# SPDX-License-Identifier: LGPL-2.1-or-later
# Scenario "writer" (sourced by /init): write /pattern.bin vdt.copies
# times, back to back from vdt.woff MiB, each with fsync, announcing
# "VDT progress=N tN=UPTIME" after copy N (the host may break the storage
# path in the meantime; vdt.pause_us spaces the copies out so it has time
# to); then drop the caches, read every copy back with O_DIRECT
# and print its sha256 (copyN=), and the number of I/O errors the kernel
# logged (ioerrors=).
D=/dev/$DEV
N=${VDT_copies:-16}
WOFF=${VDT_woff:-8}
PLEN=$(($(stat -c %s /pattern.bin) / 1048576))
i=0
while [ $i -lt "$N" ]; do
    dd if=/pattern.bin of=$D bs=1M seek=$((WOFF + PLEN * i)) conv=fsync 2>/dev/null ||
        vdt_fail "write $i"
    i=$((i + 1))
    vdt_say "progress=$i t$i=$(cut -d' ' -f1 /proc/uptime)"
    [ -n "${VDT_pause_us:-}" ] && usleep "$VDT_pause_us"
done
blockdev --flushbufs $D
echo 3 > /proc/sys/vm/drop_caches
i=0
while [ $i -lt "$N" ]; do
    s=$(dd if=$D bs=1M skip=$((WOFF + PLEN * i)) count=$PLEN iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
    vdt_say "copy$i=$s"
    i=$((i + 1))
done
vdt_say "ioerrors=$(dmesg | grep -c 'I/O error')"
vdt_finish OK
