#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The block-device backend on a real loop device: the same conformance
# test as RAW files (test-io), uncached (the default) and cached, through
# the device path and through an inherited fd; sync mode fsync refused.
. "$top_srcdir/tests/functions.sh"
requires_root
requires losetup --version

img="$tmpdir/backing.img"
truncate -s 64M "$img"
dev=$(losetup -f --show "$img" 2>/dev/null) || skip "cannot create a loop device here"
cleanup_fn "losetup -d $dev"
[ -b "$dev" ] || fail "$dev is not a block device"

"$TEST_IO" "$dev" >/dev/null || fail "test-io on $dev (uncached)"
"$TEST_IO" "$dev" --caching cached >/dev/null || fail "test-io on $dev (cached)"

# Info: format blockdev, size from BLKGETSIZE64.
info=$(vdisk image info --json "$dev")
jq -e '.format == "blockdev" and ."virtual-size" == 67108864 and ."caching-mode" == "uncached"' <<<"$info" >/dev/null \
    || fail "image info on $dev: $info"

# An inherited file descriptor (Apple's attachment takes a file handle).
info=$(vdisk image info --json fd:3 3<"$dev")
jq -e '.format == "blockdev" and .filename == "fd:3"' <<<"$info" >/dev/null || fail "fd:3: $info"

# Sync modes: full and none only.
out=$(vdisk image info --sync fsync "$dev" 2>&1) && fail "sync fsync accepted on a block device"
grep -q "full and none" <<<"$out" || fail "unclear error: $out"
vdisk image info --sync none "$dev" >/dev/null || fail "sync none"

# Data written through the device is in the backing file.
printf 'through the loop device' > "$tmpdir/msg"
"$HELLO" "$dev" 8192 "through the loop device" >/dev/null
sync
dd if="$img" bs=512 skip=16 count=1 2>/dev/null | head -c 23 | cmp - "$tmpdir/msg" || fail "data not in the backing file"
echo "test-blockdev: OK"
