#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real peer agrees with vdisk on RAW images: qemu-img info (size,
# allocation), qemu-img map vs our block_status, qemu-img compare after
# writing through libvdisk.
. "$top_srcdir/tests/functions.sh"
requires qemu-img --version
requires jq --version

cd "$tmpdir"
vdisk image create blank --format RAW --size 64MiB disk.img

# Write a pattern through libvdisk (hello-attachment) and with qemu-io
# into a copy; then compare.
"$HELLO" disk.img 1048576 "pattern one" >/dev/null
"$HELLO" disk.img 40000000 "pattern two" >/dev/null
cp --sparse=always disk.img ref.img
qemu-img compare -f raw -F raw disk.img ref.img >/dev/null || fail "compare of identical images"
qemu-io -f raw -c 'write -P 0x55 4096 512' ref.img >/dev/null
if qemu-img compare -f raw -F raw disk.img ref.img >/dev/null; then
    fail "qemu-img compare did not see a difference"
fi

# Size and allocation: qemu-img info vs vdisk image info.
q=$(qemu-img info --output=json -f raw disk.img)
v=$(vdisk image info --json disk.img)
[ "$(jq '."virtual-size"' <<<"$q")" = "$(jq '."virtual-size"' <<<"$v")" ] || fail "virtual size differs"
[ "$(jq '."actual-size"' <<<"$q")" = "$(jq '."allocated-size"' <<<"$v")" ] || fail "allocation differs: $q / $v"

# Allocation map: qemu-img map (data vs zero) equals our block_status.
qemu-img map --output=json -f raw disk.img \
  | jq -c '.[] | {start, length, zero: .zero}' > qmap.json
"$MAPTOOL" disk.img | jq -c '.' > vmap.json
# Normalise both to "start length zero" lines with runs merged.
norm () { jq -r '"\(.start) \(.length) \(.zero)"' "$1" | awk '
  { if (n && z == $3 && s + l == $1) { l += $2 } else { if (n) print s, l, z; s=$1; l=$2; z=$3; n=1 } }
  END { if (n) print s, l, z }'; }
diff -u <(norm qmap.json) <(norm vmap.json) || fail "allocation maps differ"
echo "test-qemu-img: OK"
