#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real Linux guest (qemu -accel tcg, -device vhost-user-blk-pci) on a
# RAW image served by `vdisk serve --vhost-user-blk`.  The guest reads
# what the host seeded, writes a pattern with fsync, drops its caches,
# reads the pattern back with O_DIRECT, then discards (blkdiscard),
# zeroes (blkdiscard -z: WRITE_ZEROES) and punches (fallocate -p:
# WRITE_ZEROES with unmap) 4 MiB ranges, and powers off.  The host then
# finds all of it in the image file: the pattern (cmp), the three
# ranges zeroed, and the discarded and punched ones deallocated.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vm/vm.sh"
requires python3 --version
vm_setup

img=$tmpdir/disk.img
sock=$tmpdir/vhost.sock
serial=vdisk-guest-raw-01
MiB=1048576

truncate -s 64M "$img"
head -c $MiB /dev/urandom > "$tmpdir/seed"
dd if="$tmpdir/seed" of="$img" conv=notrunc status=none
# Data where the guest will discard, zero and punch, so that a request
# that never arrives leaves it visible.
head -c $((24 * MiB)) /dev/urandom | dd of="$img" bs=1M seek=16 conv=notrunc status=none

start_bg spid "$VDISK" serve --vhost-user-blk "$sock" --serial "$serial" "$img"
wait_for_socket "$sock" 30

# shellcheck disable=SC2046
vm_boot raw "vdt.script=disk-check vdt.woff=8 vdt.discard=16 vdt.zero=24 vdt.punch=32" \
    "${VM_TIMEOUT:-300}" $(vm_vhost_disk "$sock") ||
    fail "the guest run failed"

kill -TERM "$spid"
wait "$spid" || fail "the vhost-user-blk server did not stop cleanly"

# What the guest saw.
vm_expect raw read_sha256 "$(sha256sum < "$tmpdir/seed" | cut -d' ' -f1)"
vm_expect raw readback_sha256 "$(sha256sum < "$VM_PATTERN" | cut -d' ' -f1)"
vm_expect raw size $((64 * MiB))
vm_expect raw ro 0
vm_expect raw serial "$serial"
vm_expect raw queues 1
vm_expect raw discard zeros
vm_expect raw zero zeros
vm_expect raw punch zeros
[ "$(vm_get raw discard_max)" -gt 0 ] || fail "the guest sees no discard support"
[ "$(vm_get raw zeroes_max)" -gt 0 ] || fail "the guest sees no write-zeroes support"

# What reached the image.
cmp -n $((4 * MiB)) "$VM_PATTERN" <(dd if="$img" bs=1M skip=8 count=4 status=none) ||
    fail "the pattern is not in the image at 8 MiB"
for off in 16 24 32; do
    cmp -n $((4 * MiB)) /dev/zero <(dd if="$img" bs=1M skip=$off count=4 status=none) ||
        fail "the image is not zero at $off MiB"
done
# The data between the ranges is intact.
for off in 20 28; do
    cmp -s -n $((4 * MiB)) /dev/zero <(dd if="$img" bs=1M skip=$off count=4 status=none) &&
        fail "the data at $off MiB was zeroed too"
done
# Discard and punch (WRITE_ZEROES with unmap) deallocated their ranges.
python3 - "$img" <<'PY' || fail "the discarded or punched range is still allocated"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for mib in (16, 32):
    off = mib << 20
    hole = os.lseek(fd, off, os.SEEK_HOLE)
    data = os.lseek(fd, off, os.SEEK_DATA)
    if hole != off or data < off + (4 << 20):
        print(f"range at {mib} MiB: hole at {hole}, next data at {data}")
        sys.exit(1)
PY
echo "test-vhost-guest-raw: OK"
