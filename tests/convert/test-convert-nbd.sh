#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk image convert with NBD on either side: ASIF -> NBD (vdisk serve)
# -> ASIF byte-identical over 4 connections; RAW into an NBD export
# checked by qemu-img; Ctrl-C leaves no partial new target but never
# removes a target that existed.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires qemu-img --version
requires nbdkit --version
requires nbdkit random --version
requires nbdkit --filter=delay null --version
cd "$tmpdir"

# A source with holes, a zero run, full and partial chunks.
vdisk image create blank --size 64MiB src.img
dd if=/dev/urandom of=src.img bs=1M count=3 seek=5 conv=notrunc status=none
dd if=/dev/urandom of=src.img bs=4k count=3 seek=4000 conv=notrunc status=none
dd if=/dev/zero of=src.img bs=1M count=4 seek=20 conv=notrunc status=none
vdisk image convert -O asif src.img src.asif

# ASIF -> NBD -> ASIF.
serve pid --read-only --socket "$tmpdir/s.sock" src.asif
uri="nbd+unix:///?socket=$tmpdir/s.sock"
vdisk image convert --connections 4 -O asif "$uri" out.asif
vdisk image check out.asif >/dev/null || fail "ASIF from NBD fails check"
vdisk image compare src.asif out.asif >/dev/null || fail "ASIF -> NBD -> ASIF changed the data"
qemu-img compare -f raw "$uri" src.img >/dev/null || fail "qemu-img sees different data over NBD"
a=$(vdisk image info --json src.asif | jq '.asif."data-size"')
b=$(vdisk image info --json out.asif | jq '.asif."data-size"')
[ "$a" = "$b" ] || fail "round trip changed the allocation: $a -> $b bytes of data"
stop_serve $pid

# RAW into an existing NBD export (a writable vdisk serve of a blank
# image): the target exists by nature, no -n needed.
vdisk image create blank --size 64MiB target.img
serve pid2 --socket "$tmpdir/t.sock" target.img
vdisk image convert src.img "nbd+unix:///?socket=$tmpdir/t.sock"
qemu-img compare -f raw -F raw src.img "nbd+unix:///?socket=$tmpdir/t.sock" >/dev/null \
    || fail "RAW -> NBD export differs"
stop_serve $pid2
cmp src.img target.img || fail "data not in the served image"

# Ctrl-C: a slow source (nbdkit random behind a delay filter).
nbdkit -f -U "$tmpdir/slow.sock" --filter=delay random size=1G rdelay=20ms &
npid=$!
cleanup_fn "kill -9 $npid"
wait_for_socket "$tmpdir/slow.sock"
slow="nbd+unix:///?socket=$tmpdir/slow.sock"
# JSON progress lines mean the copy is running (and the handler is in).
# "$VDISK" directly, not the vdisk function: $! must be vdisk itself.
"$VDISK" image convert --progress=json -m 2 "$slow" new.img >prog.txt 2>err.txt &
cpid=$!
wait_for "[ -s prog.txt ]" 30
kill -INT $cpid
set +e; wait $cpid; rc=$?; set -e
[ $rc = 130 ] || fail "interrupted convert: exit $rc: $(cat err.txt)"
[ ! -e new.img ] || fail "a partial new target was left behind"
grep -q "removed the partial target new.img" err.txt || fail "no message: $(cat err.txt)"

# ... but a target that existed before is kept (partly written).
truncate -s 1G existing.img
rm -f prog.txt
"$VDISK" image convert --progress=json -n -m 2 "$slow" existing.img >prog.txt 2>err.txt &
cpid=$!
wait_for "[ -s prog.txt ]" 30
kill -TERM $cpid
set +e; wait $cpid; rc=$?; set -e
[ $rc = 143 ] || fail "terminated convert: exit $rc: $(cat err.txt)"
[ -e existing.img ] || fail "an existing target was removed"
! grep -q "removed" err.txt || fail "claims to have removed an existing target"
kill $npid; wait $npid 2>/dev/null || true
echo "test-convert-nbd: OK"
