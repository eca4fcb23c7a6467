#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Edge cases with nbdsh (libnbd, client-side checks off so the server
# sees what a broken client would send): read past the end, oversize
# requests, writes to a read-only export, block status with REQ_ONE,
# fast zero, cache, opt mode (LIST, INFO, LIST_META_CONTEXT, unknown
# export); and with a raw-socket client: unknown options and extended
# headers (libnbd 1.14 has neither).  After every refusal the connection
# must go on working.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires_nbdsh
cd "$tmpdir"

for fmt in $(formats); do
    echo "== $fmt"
    make_image "$fmt" "disk.$fmt" 64MiB
    make_image "$fmt" "ro.$fmt" 1MiB
    make_image "$fmt" "big.$fmt" 7GiB
    serve pid --socket "$tmpdir/s.sock" --max-request 1MiB \
        --export "disk=disk.$fmt" --export "ro=ro.$fmt,read-only" \
        --export "big=big.$fmt"
    sock=$tmpdir/s.sock

    nbdsh --base-allocation -u "nbd+unix:///disk?socket=$sock" -c '
import errno
h.set_strict_mode(0)
size = h.get_size()
assert size == 64 << 20
def expect(err, f, *args):
    try:
        f(*args)
    except nbd.Error as e:
        assert e.errnum == err, "expected %d, got %s" % (err, e)
        return
    raise AssertionError("no error")
# Read past the end, at the end, offset beyond the end.
expect(errno.EINVAL, h.pread, 512, size - 256)
expect(errno.EINVAL, h.pread, 1, size)
assert h.pread(256, size - 256) == bytearray(256)
# Oversize: reads (structured) get EOVERFLOW, writes EINVAL; the
# connection goes on.
expect(errno.EOVERFLOW, h.pread, (1 << 20) + 1, 0)
expect(errno.EINVAL, h.pwrite, bytearray((2 << 20)), 0)
expect(errno.ENOSPC, h.pwrite, b"x" * 512, size - 1)
expect(errno.ENOSPC, h.zero, 4096, size - 1)
expect(errno.EINVAL, h.trim, 4096, size - 1)
h.pwrite(b"a" * 4096, 8192)
assert h.pread(4096, 8192) == b"a" * 4096
# Block status with REQ_ONE: exactly one extent, not longer than asked.
ext = []
h.block_status(1 << 20, 0, lambda ctx, off, e, err: ext.extend(e), nbd.CMD_FLAG_REQ_ONE)
assert len(ext) == 2 and ext[0] == 8192 and ext[1] == 3, ext
ext = []
h.block_status(100, 8192, lambda ctx, off, e, err: ext.extend(e), nbd.CMD_FLAG_REQ_ONE)
assert len(ext) == 2 and ext[0] == 100 and ext[1] == 0, ext
ext = []
h.block_status(1 << 20, 0, lambda ctx, off, e, err: ext.extend(e))
assert ext[0:6] == [8192, 3, 4096, 0, (1 << 20) - 12288, 3], ext
expect(errno.EINVAL, h.block_status, 2, size - 1, lambda *a: 0)
# Fast zero, zero keeping allocation, cache, flush, FUA.
h.zero(1 << 20, 4 << 20, nbd.CMD_FLAG_FAST_ZERO)
h.zero(4096, 8192, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)
assert h.pread(4096, 8192) == bytearray(4096)
h.cache(1 << 20, 0)
h.flush()
h.pwrite(b"b" * 512, 0, nbd.CMD_FLAG_FUA)
assert h.can_multi_conn() and h.can_fast_zero() and h.can_df()
print("disk edge cases: OK")
'
    nbdsh -u "nbd+unix:///ro?socket=$sock" -c '
import errno
h.set_strict_mode(0)
assert h.is_read_only()
for f, args in ((h.pwrite, (b"x" * 512, 0)), (h.trim, (512, 0)), (h.zero, (512, 0))):
    try:
        f(*args)
        raise AssertionError("write to a read-only export succeeded")
    except nbd.Error as e:
        assert e.errnum == errno.EPERM, e
assert h.pread(512, 0) == bytearray(512)
print("read-only export: OK")
'
    nbdsh -n -c '
h = nbd.NBD()
h.set_opt_mode(True)
h.connect_uri("nbd+unix:///?socket='"$sock"'")
names = []
h.opt_list(lambda name, desc: names.append(name))
assert names == ["disk", "ro", "big"], names
ctx = []
h.opt_list_meta_context(lambda name: ctx.append(name))
assert ctx == ["base:allocation"], ctx
h.set_export_name("nope")
try:
    h.opt_info()
    raise AssertionError("info on an unknown export succeeded")
except nbd.Error:
    pass
h.set_export_name("ro")
h.opt_info()
assert h.get_size() == 1 << 20 and h.is_read_only()
h.set_export_name("big")
h.opt_go()
assert h.get_size() == 7 << 30
h.shutdown()
print("opt mode: OK")
'
    nbdpy "$top_srcdir/tests/server/nbd-raw-client.py" "$sock" big
    stop_serve "$pid"
    # Every refusal was logged with client, command, offset and length.
    grep -q 'client #[0-9]* unix pid [0-9]*: NBD_CMD_READ offset 67108608 length 512 flags 0 rejected: request beyond the end' "$serve_log" \
        || { cat "$serve_log"; fail "rejected request not logged"; }
    grep -q 'NBD_CMD_WRITE offset 0 length 512 flags 0 rejected: write to a read-only export (NBD_EPERM)' "$serve_log" \
        || fail "read-only refusal not logged"
done
echo "test-serve-nbdsh: OK"
