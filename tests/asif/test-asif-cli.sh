#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The ASIF commands end to end: image create/info/check (every exit code
# of qemu-img check: 0, 2, 3, and repair), resize and compact.
. "$top_srcdir/tests/functions.sh"

img=$tmpdir/disk.asif
raw=$tmpdir/disk.raw

vdisk image create blank --fs none --format ASIF --size 10GB "$img"
[ "$(stat -c %s "$img")" = 4194304 ] || fail "blank ASIF is not 4 MiB"
vdisk image info "$img" | grep -q "format: asif" || fail "info: format"
vdisk image info --json "$img" > "$tmpdir/info.json"
for k in header-uuid stable-uuid chunk-size block-size max-size \
         allocated-chunks bitmap-chunks discarded-entries file-size data-size; do
    grep -q "\"$k\"" "$tmpdir/info.json" || fail "info --json lacks asif.$k"
done
vdisk image check "$img" | grep -q "No errors" || fail "blank not clean"
vdisk image check --json "$img" > "$tmpdir/check.json"
grep -q '"corruptions": 0' "$tmpdir/check.json" || fail "check --json"
# Existing files are never overwritten.
if vdisk image create blank --format ASIF --size 1GB "$img" 2>/dev/null; then
    fail "create overwrote an image"
fi

# Write with the helper tool, discard a chunk: the old chunk leaks.
"$TEST_ASIF_TOOL" write "$img" 0 3145728 17
"$TEST_ASIF_TOOL" discard "$img" 1048576 1048576
set +e
vdisk image check "$img" > "$tmpdir/out"; rc=$?
set -e
[ $rc = 3 ] || fail "check after discard: exit $rc, expected 3 (leaks)"
grep -q "leaked" "$tmpdir/out" || fail "no leak reported"
vdisk image info --json "$img" | grep -q '"discarded-entries": 1' ||
    fail "discarded entry not counted"

# Compact reclaims it; the data is unchanged.
size_before=$(stat -c %s "$img")
vdisk image compact "$img" | grep -q reclaimed
size_after=$(stat -c %s "$img")
[ "$size_after" -lt "$size_before" ] || fail "compact did not shrink the file"
vdisk image check "$img"
"$TEST_ASIF_TOOL" verify "$img" 0 1048576 17
"$TEST_ASIF_TOOL" verify-zero "$img" 1048576 1048576
"$TEST_ASIF_TOOL" verify "$img" 2097152 1048576 17 2097152

# --repair=leaks: a leaked chunk at the end is cut off.
truncate -s +1M "$img"
set +e
vdisk image check -q "$img"; rc=$?
set -e
[ $rc = 3 ] || fail "appended chunk: exit $rc, expected 3"
vdisk image check --repair=leaks "$img" | grep -q "repaired" || fail "no repair"
vdisk image check "$img"

# Corruption: an entry pointing past the end of the file -> exit 2;
# --repair makes it read as zeros.
table=$(( 4 * 1048576 ))       # table 0 is the first chunk appended
printf '\x40\x00\x00\x00\x00\x00\x03\xe7' |
    dd of="$img" bs=1 seek=$table conv=notrunc status=none
set +e
vdisk image check "$img" > "$tmpdir/out"; rc=$?
set -e
[ $rc = 2 ] || fail "corrupt image: exit $rc, expected 2"
grep -q "corruption:" "$tmpdir/out" || fail "no corruption reported"
vdisk image check --repair "$img" > "$tmpdir/out"
grep -q "repaired" "$tmpdir/out" || fail "corruption not repaired"
vdisk image check "$img"
"$TEST_ASIF_TOOL" verify-zero "$img" 0 1048576

# Not an image at all / missing file: exit 1.
set +e
vdisk image check "$tmpdir/nope" 2>/dev/null; rc=$?
set -e
[ $rc = 1 ] || fail "missing file: exit $rc, expected 1"

# Resize: grow, shrink (data past the end is dropped), RAW too.
vdisk image resize --size 20GB "$img"
vdisk image info --json "$img" | grep -q '"virtual-size": 20000000000'
"$TEST_ASIF_TOOL" write "$img" 15000000000 1048576 5
vdisk image resize --size 12GB "$img"
vdisk image check "$img" || [ $? = 3 ]
vdisk image resize --size 20GB "$img"
"$TEST_ASIF_TOOL" verify-zero "$img" 15000000000 1048576
if vdisk image resize --size 1000 "$img" 2>/dev/null; then
    fail "resize to a size that is not a multiple of 512"
fi
# An image in use: check refuses it (the lock names the writer), -U
# checks it anyway, and -U never repairs.
inuse=$tmpdir/inuse.asif
sock=$tmpdir/inuse.sock
vdisk image create blank --fs none --format ASIF --size 1GB "$inuse"
"$TEST_ASIF_TOOL" write "$inuse" 0 3145728 5
start_bg srv "$VDISK" serve --socket "$sock" "$inuse"
wait_for_socket "$sock"
set +e
vdisk image check "$inuse" > /dev/null 2> "$tmpdir/err"; rc=$?
[ $rc = 1 ] || fail "check of an image in use: exit $rc, expected 1"
grep -q "in use by process $srv" "$tmpdir/err" || fail "lock error: $(cat "$tmpdir/err")"
vdisk image check -U "$inuse" > "$tmpdir/out"; rc=$?
[ $rc = 0 ] || fail "check -U of an image in use: exit $rc: $(cat "$tmpdir/out")"
grep -q "3 data chunks allocated" "$tmpdir/out" || fail "check -U: $(cat "$tmpdir/out")"
vdisk image check -U --repair "$inuse" 2> "$tmpdir/err"; rc=$?
[ $rc = 2 ] || fail "check -U --repair: exit $rc, expected 2 (usage)"
grep -q "cannot be combined" "$tmpdir/err" || fail "check -U --repair: $(cat "$tmpdir/err")"
set -e
kill_bg "$srv"
vdisk image check "$inuse" | grep -q "No errors" || fail "check after the server"

vdisk image create blank --format RAW --size 1MB "$raw"
vdisk image resize --size 3MB "$raw"
[ "$(stat -c %s "$raw")" = 3000000 ] || fail "RAW resize"
vdisk image check "$raw" | grep -q "No errors"
if vdisk image compact "$raw" 2>/dev/null; then
    fail "compact accepted a RAW image"
fi
echo "ASIF CLI: ok"
