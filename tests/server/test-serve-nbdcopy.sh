#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# nbdcopy with 4 connections (multi-conn) in both directions, and between
# two exports of the same server, for every image format; every copy is
# compared with the source.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires nbdcopy --version
requires qemu-img --version
cd "$tmpdir"

truncate -s 48M src.raw
head -c 12M /dev/urandom | dd of=src.raw bs=1M seek=2 conv=notrunc status=none
head -c 3M /dev/urandom | dd of=src.raw bs=1M seek=30 conv=notrunc status=none
head -c 4097 /dev/urandom | dd of=src.raw bs=1 seek=$((47*1024*1024)) conv=notrunc status=none

for fmt in $(formats); do
    echo "== $fmt"
    make_image "$fmt" "a.$fmt" 48MiB
    make_image "$fmt" "b.$fmt" 48MiB
    serve pid --socket "$tmpdir/s.sock" --port 0 --export "a=a.$fmt" --export "b=b.$fmt"
    ua=$(grep '^nbd+unix' <<<"$serve_uris")
    ta=$(grep '^nbd://' <<<"$serve_uris")
    nbdcopy --connections=4 src.raw "$ua"
    nbdcopy --connections=4 "$ta" out1.raw
    cmp src.raw out1.raw || fail "$fmt: copy in and out over unix + TCP"
    nbdcopy --connections=4 "$ta" "${ua/\/a?/\/b?}"
    nbdcopy --connections=4 "${ta%a}b" out2.raw
    cmp src.raw out2.raw || fail "$fmt: export-to-export copy"
    # Overwrite with a different pattern: the copy must zero what is gone.
    truncate -s 48M other.raw
    head -c 1M /dev/urandom | dd of=other.raw bs=1M seek=5 conv=notrunc status=none
    nbdcopy --connections=4 other.raw "$ua"
    qemu-img compare -f raw -F raw other.raw "$ta" >/dev/null || fail "$fmt: overwrite"
    rm -f other.raw
    stop_serve "$pid"
done
echo "test-serve-nbdcopy: OK"
