#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The three macOS-made blank ASIF images: vdisk reads them, writes them,
# checks them and creates the same bytes (test-asif-apple.c does the
# work on a scratch copy; the fixtures themselves are never modified).
# Skips (77) when ../shared is absent; fails in CI (VD_CI=1).
. "$top_srcdir/tests/functions.sh"

: "${TEST_ASIF_APPLE:?}"
requires gunzip --version

for spec in 10GB:10000000000 100GB:100000000000 10000GB:10000000000000; do
    name=${spec%%:*}
    size=${spec#*:}
    gz=$(fixture "BlankDisk-$name.asif.gz") ||
        { [ "${VD_CI:-0}" = 1 ] && fail "fixture missing in CI"; exit 77; }
    img=$tmpdir/BlankDisk-$name.asif
    gunzip -c "$gz" > "$img"
    # The CLI agrees: clean check (exit 0), the right size.
    vdisk image check "$img"
    vdisk image info --json "$img" > "$tmpdir/info.json"
    grep -q "\"virtual-size\": $size" "$tmpdir/info.json" ||
        fail "image info: wrong size for $name"
    grep -q '"format": "asif"' "$tmpdir/info.json" || fail "not asif"
    VD_TEST_TMPDIR=$tmpdir "$TEST_ASIF_APPLE" "$img" "$size"
    vdisk image check "$img"
done
echo "all three Apple fixtures pass"
