#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A program built with only the public headers and pkg-config against the
# shared libvdisk works (examples/hello-attachment.c).
. "$top_srcdir/tests/functions.sh"
requires pkg-config --version
requires cc --version
export PKG_CONFIG_PATH="$top_builddir/meson-uninstalled"
flags=$(pkg-config --cflags --libs libvdisk-uninstalled) || fail "pkg-config libvdisk-uninstalled"
# A sanitizer build of the library needs the program built the same way.
san=
if ldd "$top_builddir/lib/libvdisk.so" | grep -q libasan; then
    san="-fsanitize=address,undefined"
fi
cc -std=c17 -Wall -Werror $san -o "$tmpdir/hello" "$top_srcdir/examples/hello-attachment.c" $flags \
    || fail "building against the public API"
truncate -s 16M "$tmpdir/disk.img"
LD_LIBRARY_PATH="$top_builddir/lib" "$tmpdir/hello" "$tmpdir/disk.img" 4096 "via pkg-config" \
    | grep -q 'read back at 4096: "via pkg-config"' || fail "hello-attachment"
echo "test-pkgconfig: OK"
