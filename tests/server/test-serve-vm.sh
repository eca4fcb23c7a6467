#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real Linux guest (qemu-system-x86_64 -accel tcg, a virtio disk on
# qemu's NBD client) on vdisk serve: RAW over TCP and ASIF over a unix
# socket by default; VM_ALL=1 (the slow suite) boots all four
# combinations.  The guest reads what the host seeded, writes a pattern
# with fsync, drops its caches and reads it back with O_DIRECT, then
# discards, zeroes and punches 4 MiB ranges and powers off.  The host
# then finds all of it in the image: directly in the RAW file, and in
# the ASIF image through a fresh read-only server.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vm/vm.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires nbdcopy --version
requires qemu-io --version
vm_setup
cd "$tmpdir"
MiB=1048576

combos="raw:tcp asif:unix"
[ "${VM_ALL:-0}" = 1 ] && combos="raw:tcp raw:unix asif:tcp asif:unix"
for combo in $combos; do
    fmt=${combo%:*} transport=${combo#*:}
    name=$fmt-$transport
    echo "== $name"
    make_image "$fmt" "disk.$fmt" 64MiB
    serve pid --socket "$tmpdir/s.sock" --port 0 "disk.$fmt"
    if [ "$transport" = tcp ]; then
        uri=$(grep '^nbd://' <<<"$serve_uris")
    else
        uri=$(grep '^nbd+unix://' <<<"$serve_uris")
    fi
    # Seed: 1 MiB of random bytes at 0 for the guest to read, and data
    # where it will discard, zero and punch (so a request that never
    # arrives stays visible).
    head -c $MiB /dev/urandom > seed
    truncate -s 64M src.raw
    dd if=seed of=src.raw conv=notrunc status=none
    head -c $((24 * MiB)) /dev/urandom | dd of=src.raw bs=1M seek=16 conv=notrunc status=none
    nbdcopy src.raw "$uri"

    vm_boot "$name" "vdt.script=disk-check vdt.woff=8 vdt.discard=16 vdt.zero=24 vdt.punch=32" \
        "${VM_TIMEOUT:-300}" -drive "file=$uri,format=raw,if=virtio,cache=none,discard=unmap" ||
        { tail -20 "$serve_log" >&2; fail "$name: the guest run failed"; }
    stop_serve "$pid"

    # What the guest saw.
    vm_expect "$name" read_sha256 "$(sha256sum < seed | cut -d' ' -f1)"
    vm_expect "$name" readback_sha256 "$(sha256sum < "$VM_PATTERN" | cut -d' ' -f1)"
    vm_expect "$name" size $((64 * MiB))
    vm_expect "$name" ro 0
    vm_expect "$name" discard zeros
    vm_expect "$name" zero zeros
    vm_expect "$name" punch zeros

    # What reached the image.
    if [ "$fmt" = raw ]; then
        cp disk.raw back.raw
    else
        serve pid --read-only --socket "$tmpdir/s2.sock" "disk.$fmt"
        nbdcopy "$serve_uri" back.raw
        stop_serve "$pid"
    fi
    cmp -n $MiB seed back.raw || fail "$name: the seed changed"
    cmp -n $((4 * MiB)) "$VM_PATTERN" <(dd if=back.raw bs=1M skip=8 count=4 status=none) ||
        fail "$name: the guest's pattern is not in the image at 8 MiB"
    for off in 16 24 32; do
        cmp -n $((4 * MiB)) /dev/zero <(dd if=back.raw bs=1M skip=$off count=4 status=none) ||
            fail "$name: the image is not zero at $off MiB"
    done
    for off in 20 28; do
        cmp -n $((4 * MiB)) <(dd if=src.raw bs=1M skip=$off count=4 status=none) \
            <(dd if=back.raw bs=1M skip=$off count=4 status=none) ||
            fail "$name: the data at $off MiB changed"
    done
    echo "$name: guest uptime $(vm_get "$name" uptime) s; pattern, seed and zeroed ranges found in the image"
    rm -f back.raw src.raw
done
echo "test-serve-vm: OK"
