#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Slow suite: the RAW guest test with two vCPUs and two virtqueues
# (vdisk serve --num-queues 2, -device vhost-user-blk-pci,num-queues=2):
# the guest must see both queues, and its writes (from whichever CPU)
# must land in the image.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vm/vm.sh"
VM_SMP=2
vm_setup

img=$tmpdir/disk.img
sock=$tmpdir/vhost.sock
MiB=1048576
truncate -s 64M "$img"
head -c $MiB /dev/urandom > "$tmpdir/seed"
dd if="$tmpdir/seed" of="$img" conv=notrunc status=none

start_bg spid "$VDISK" serve --vhost-user-blk "$sock" --num-queues 2 "$img"
wait_for_socket "$sock" 30
# shellcheck disable=SC2046
vm_boot mq "vdt.script=disk-check vdt.woff=8 vdt.discard=16" \
    "${VM_TIMEOUT:-600}" $(vm_vhost_disk "$sock" 2) ||
    fail "the guest run failed"
kill -TERM "$spid"
wait "$spid" || fail "the vhost-user-blk server did not stop cleanly"

vm_expect mq queues 2
vm_expect mq read_sha256 "$(sha256sum < "$tmpdir/seed" | cut -d' ' -f1)"
vm_expect mq readback_sha256 "$(sha256sum < "$VM_PATTERN" | cut -d' ' -f1)"
cmp -n $((4 * MiB)) "$VM_PATTERN" <(dd if="$img" bs=1M skip=8 count=4 status=none) ||
    fail "the pattern is not in the image at 8 MiB"
echo "test-vhost-guest-mq: OK"
