#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# qemu-io against vdisk serve for every image format: writes (plain and
# FUA), reads with pattern checks, discards, write_zeroes (allocated and
# unmapping), aio requests in flight together, flush; then the bytes are
# checked again through a fresh server and, for RAW, in the file itself.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires qemu-io --version
cd "$tmpdir"

qio () {
    local out
    out=$(qemu-io -f raw "$@" 2>&1) || { echo "$out" >&2; fail "qemu-io $*"; }
    if grep -Eiq 'fail|error|mismatch' <<<"$out"; then
        echo "$out" >&2
        fail "qemu-io reported a problem: $*"
    fi
}

for fmt in $(formats); do
    echo "== $fmt"
    make_image "$fmt" "disk.$fmt" 32MiB
    serve pid --socket "$tmpdir/s.sock" "disk.$fmt"
    uri=$serve_uri
    qio -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 -f 1M 64k' \
        -c 'write -P 0x11 3000 700' -c 'write -z 2M 1M' -c 'write -z -u 3M 1M' \
        -c 'write -P 0x77 4M 2M' -c 'discard 5M 1M' \
        -c 'aio_write -P 0x21 8M 64k' -c 'aio_write -P 0x22 9M 64k' \
        -c 'aio_write -P 0x23 10M 64k' -c 'aio_flush' -c 'flush' "$uri"
    qio -c 'read -P 0x5a 0 3000' -c 'read -P 0x11 3000 700' \
        -c 'read -P 0x5a 3700 1044876' -c 'read -P 0xa5 1M 64k' \
        -c 'read -P 0 2M 2M' -c 'read -P 0x77 4M 1M' -c 'read -P 0 5M 1M' \
        -c 'aio_read -P 0x21 8M 64k' -c 'aio_read -P 0x22 9M 64k' \
        -c 'aio_read -P 0x23 10M 64k' -c 'aio_flush' \
        -c 'read -P 0 12M 20M' "$uri"
    # Past the end: refused, and the connection goes on.
    out=$(qemu-io -f raw -c 'read 32M 512' -c 'read -P 0x5a 0 512' "$uri" 2>&1 || true)
    grep -q 'read failed\|Input/output\|Invalid argument' <<<"$out" || { echo "$out"; fail "read past end not refused"; }
    grep -q 'read 512/512 bytes at offset 0' <<<"$out" || { echo "$out"; fail "connection lost after refusal"; }
    stop_serve "$pid"

    # A new server sees the same bytes (the first one flushed and closed).
    serve pid --read-only --socket "$tmpdir/s.sock" "disk.$fmt"
    qio -r -c 'read -P 0x5a 0 3000' -c 'read -P 0x77 4M 1M' -c 'read -P 0x23 10M 64k' "$serve_uri"
    # qemu sees READ_ONLY and refuses to open for writing.
    out=$(qemu-io -f raw -c 'write -P 1 0 512' "$serve_uri" 2>&1 || true)
    grep -q 'Permission denied' <<<"$out" || { echo "$out"; fail "write to a read-only export"; }
    stop_serve "$pid"
    if [ "$fmt" = raw ]; then
        qio -c 'read -P 0x5a 0 3000' -c 'read -P 0x11 3000 700' \
            -c 'read -P 0 2M 2M' -c 'read -P 0x23 10M 64k' disk.raw
    fi
done
echo "test-serve-qemu-io: OK"
