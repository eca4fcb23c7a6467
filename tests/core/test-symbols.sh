#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# libvdisk.so exports exactly the VD_API functions of the public headers,
# all versioned, nothing internal.
. "$top_srcdir/tests/functions.sh"
requires nm --version
so="$top_builddir/lib/libvdisk.so"
[ -f "$so" ] || fail "$so not built"
nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort > "$tmpdir/exported"
grep -hoE '^VD_API [^(]*\(' "$top_srcdir"/include/vdisk/*.h "$top_builddir"/include/vdisk/version.h \
  | sed -E 's/.*[ *]([a-z_0-9]+) *\($/\1/' | sort -u > "$tmpdir/declared"
diff -u "$tmpdir/declared" "$tmpdir/exported" || fail "exported symbols differ from the public headers"
if nm -D --defined-only "$so" | awk '$2 == "T"' | grep -v '@@VDISK_'; then
    fail "unversioned exports"
fi
echo "test-symbols: $(wc -l < "$tmpdir/exported") symbols"
