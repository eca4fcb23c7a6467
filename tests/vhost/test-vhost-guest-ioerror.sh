#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# I/O errors reach a real guest as errors: the image is wrapped in the
# fault injector so that every write from the 4th on fails with EIO (the
# export answers VIRTIO_BLK_S_IOERR); the guest must read the seed, then
# see its pattern write fail (dd reports the error instead of the data
# silently going nowhere).  The export itself stays up and stops cleanly.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vm/vm.sh"
vm_setup

img=$tmpdir/disk.img
sock=$tmpdir/vhost.sock
MiB=1048576
truncate -s 64M "$img"
head -c $MiB /dev/urandom > "$tmpdir/seed"
dd if="$tmpdir/seed" of="$img" conv=notrunc status=none

# shellcheck disable=SC2086
start_bg spid $VHOST_SERVE --fail-writes-after 4 "$sock" "$img"
wait_for_socket "$sock" 30

# shellcheck disable=SC2046
vm_boot ioerr "vdt.script=disk-check vdt.woff=8" "${VM_TIMEOUT:-300}" \
    $(vm_vhost_disk "$sock") 2>/dev/null && fail "the guest did not notice the write errors"
kill -TERM "$spid"
wait "$spid" || fail "the vhost-user-blk server did not stop cleanly"

vm_expect ioerr read_sha256 "$(sha256sum < "$tmpdir/seed" | cut -d' ' -f1)"
grep -aq '^VDT status=FAIL write' "$tmpdir/ioerr.console" ||
    fail "the guest did not fail its write: $(grep -a '^VDT status' "$tmpdir/ioerr.console")"
echo "test-vhost-guest-ioerror: OK"
