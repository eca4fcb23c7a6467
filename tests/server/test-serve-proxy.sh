#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk serve with an NBD URI as its export: a proxy in front of another
# server (nbdkit's memory plugin here, and a second vdisk serve on an
# ASIF image), through libvdisk's NBD client attachment.  Data written
# through the proxy is in the upstream, the allocation map passes
# through, and read-only proxies refuse writes.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires nbdkit --version
requires nbdinfo --version
requires qemu-io --version
requires nbdcopy --version
cd "$tmpdir"

start_bg upid nbdkit -f -U "$tmpdir/up.sock" memory 64M
wait_for_socket "$tmpdir/up.sock"
serve pid --socket "$tmpdir/p.sock" "nbd+unix:///?socket=$tmpdir/up.sock"
qemu-io -f raw -c 'write -P 0x37 1M 1M' -c 'write -z 3M 1M' "$serve_uri" >/dev/null
qemu-io -f raw -c 'read -P 0x37 1M 1M' "nbd+unix:///?socket=$tmpdir/up.sock" | grep -q 'read 1048576/1048576' \
    || fail "data written through the proxy is not upstream"
nbdinfo --map "$serve_uri" | grep -q '^ *1048576 *1048576 *0 *data' || { nbdinfo --map "$serve_uri"; fail "map through the proxy"; }
stop_serve "$pid"

# A chain: vdisk serve (read-only) -> vdisk serve -> ASIF image.
make_image asif disk.asif 32MiB
serve pid1 --socket "$tmpdir/a.sock" disk.asif
qemu-io -f raw -c 'write -P 0x44 5M 64k' "$serve_uri" >/dev/null
serve pid2 --read-only --socket "$tmpdir/b.sock" "nbd+unix:///?socket=$tmpdir/a.sock"
nbdinfo --json "$serve_uri" | grep -q '"is_read_only": true' || fail "the read-only proxy is writable"
qemu-io -r -f raw -c 'read -P 0x44 5M 64k' "$serve_uri" | grep -q 'read 65536/65536' || fail "read through the chain"
out=$(qemu-io -f raw -c 'write 0 512' "$serve_uri" 2>&1 || true)
grep -q 'Permission denied' <<<"$out" || { echo "$out"; fail "write through a read-only proxy"; }
nbdcopy "$serve_uri" chain.raw
truncate -s 32M expect.raw
printf '\x44%.0s' $(seq 65536) | dd of=expect.raw bs=1M seek=5 conv=notrunc status=none
cmp chain.raw expect.raw || fail "the whole export through the chain"
stop_serve "$pid2"
stop_serve "$pid1"
echo "test-serve-proxy: OK"
