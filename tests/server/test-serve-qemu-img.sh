#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# qemu-img against vdisk serve, over TCP (nbd://) and a unix socket
# (nbd+unix://), for every image format: info, convert into and out of
# the export, compare, and map (which must equal the image's allocation
# as libvdisk reports it, and for RAW the file's own holes).
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires qemu-img --version
requires jq --version
cd "$tmpdir"

# A source with data at 1-9 MiB and 40 MiB, holes elsewhere.
truncate -s 64M src.raw
head -c 8M /dev/urandom | dd of=src.raw bs=1M seek=1 conv=notrunc status=none
head -c 64K /dev/urandom | dd of=src.raw bs=64K seek=640 conv=notrunc status=none

for fmt in $(formats); do
    make_image "$fmt" "disk.$fmt" 64MiB
    serve pid --socket "$tmpdir/s.sock" --port 0 "disk.$fmt"
    [ "$(echo "$serve_uris" | wc -l)" = 2 ] || fail "expected two URIs: $serve_uris"
    unix_uri=$(grep '^nbd+unix://' <<<"$serve_uris")
    tcp_uri=$(grep '^nbd://127.0.0.1:' <<<"$serve_uris")
    for uri in "$tcp_uri" "$unix_uri"; do
        echo "== $fmt $uri"
        info=$(qemu-img info --output=json "$uri")
        [ "$(jq '."virtual-size"' <<<"$info")" = 67108864 ] || fail "size: $info"
        qemu-img convert -n -f raw -O raw src.raw "$uri"
        qemu-img compare -f raw -F raw src.raw "$uri" >/dev/null || fail "compare after convert in"
        rm -f out.qcow2
        qemu-img convert -f raw -O qcow2 "$uri" out.qcow2
        qemu-img compare -f raw -F qcow2 src.raw out.qcow2 >/dev/null || fail "compare after convert out"
        # compare must also see a difference.
        qemu-io -f raw -c 'write -P 0x33 100M 4k' src.raw >/dev/null 2>&1 || true
        qemu-io -f raw -c 'write -P 0x33 20M 4k' "$uri" >/dev/null
        if qemu-img compare -f raw -F raw src.raw "$uri" >/dev/null 2>&1; then
            fail "qemu-img compare did not see a difference"
        fi
        qemu-io -f raw -c 'write -z 20M 4k' "$uri" >/dev/null
        # Map over NBD == the image's allocation seen by libvdisk.
        qemu-img map --output=json -f raw "$uri" \
            | jq -c '.[] | {start, length, zero, data}' | norm_map > nbdmap.txt
        stop_serve "$pid"
        "$MAPTOOL" "disk.$fmt" | norm_map > libmap.txt
        diff -u libmap.txt nbdmap.txt || fail "$fmt: qemu-img map over NBD differs from the image"
        grep -q '^1048576 8388608 false true$' nbdmap.txt || {
            [ "$fmt" = asif ] || fail "$fmt: data range not reported as data"; }
        if [ "$fmt" = raw ]; then
            qemu-img map --output=json -f raw disk.raw \
                | jq -c '.[] | {start, length, zero, data}' | norm_map > filemap.txt
            diff -u filemap.txt nbdmap.txt || fail "raw: map differs from the file's"
        fi
        serve pid --socket "$tmpdir/s.sock" --port 0 "disk.$fmt"
        unix_uri=$(grep '^nbd+unix://' <<<"$serve_uris")
        tcp_uri=$(grep '^nbd://127.0.0.1:' <<<"$serve_uris")
    done
    stop_serve "$pid"
    qemu-img compare -f raw -F raw src.raw "$tcp_uri" >/dev/null 2>&1 && fail "server still answering"
    if [ "$fmt" = raw ]; then
        cmp src.raw disk.raw || fail "the image file differs from the source"
    fi
done
echo "test-serve-qemu-img: OK"
