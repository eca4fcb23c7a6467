#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vdisk image convert / compare / map on RAW images, checked with qemu-img:
# byte-identical round trips, sparse targets, -n, refusal to overwrite,
# progress output, a too-small block device refused before any write.
. "$top_srcdir/tests/functions.sh"
requires qemu-img --version
requires jq --version
cd "$tmpdir"

# A source with holes, zero runs (allocated), full and partial MiBs.
vdisk image create blank --size 64MiB src.img
dd if=/dev/urandom of=src.img bs=1M count=3 seek=5 conv=notrunc status=none
dd if=/dev/urandom of=src.img bs=4k count=3 seek=4000 conv=notrunc status=none
dd if=/dev/zero of=src.img bs=1M count=4 seek=20 conv=notrunc status=none
printf 'last' | dd of=src.img bs=1 seek=$((64*1024*1024-4)) conv=notrunc status=none

vdisk image convert src.img dst.img
qemu-img compare -f raw -F raw src.img dst.img >/dev/null || fail "convert changed the data"
vdisk image compare src.img dst.img >/dev/null || fail "vdisk image compare disagrees with qemu-img"
alloc=$(stat -c %b dst.img)
[ $((alloc * 512)) -le $(( (3*1024 + 3*4 + 4 + 16) * 1024 )) ] || fail "target not sparse: $((alloc*512)) bytes"

# The map of the target has no data in the zero run at 20 MiB.
vdisk image map --json dst.img | jq -e 'map(select(.data and .start <= 20971520 and .start + .length > 20971520)) | length == 0' >/dev/null \
    || fail "zero run was written as data"
# Our map equals qemu-img's on the same file.
diff <(vdisk image map --json dst.img | jq -c '.[] | [.start, .length, .zero, .data]') \
     <(qemu-img map --output=json -f raw dst.img | jq -c '.[] | [.start, .length, .zero, .data]') \
    || fail "vdisk image map differs from qemu-img map"

# compare: exit codes and the first differing offset, like qemu-img.
cp --sparse=always dst.img other.img
printf 'X' | dd of=other.img bs=1 seek=5242890 conv=notrunc status=none
out=$(vdisk image compare src.img other.img) && fail "compare: no difference found"
[ $? = 1 ] || true
grep -q "Content mismatch at offset 5242890!" <<<"$out" || fail "compare output: $out"
set +e; vdisk image compare -q src.img other.img; rc=$?; set -e
[ $rc = 1 ] || fail "compare exit $rc, want 1"
set +e; vdisk image compare src.img nosuch.img 2>/dev/null; rc=$?; set -e
[ $rc = 2 ] || fail "compare of a missing image: exit $rc, want 2"
truncate -s 80M longer.img; cp --sparse=always src.img longer.img; truncate -s 80M longer.img
vdisk image compare src.img longer.img >/dev/null || fail "zero tail should compare equal"
set +e; vdisk image compare -s src.img longer.img >/dev/null; rc=$?; set -e
[ $rc = 1 ] || fail "strict compare of different sizes: exit $rc"

# An existing target is refused without -n, and left alone.
before=$(md5sum other.img)
set +e; out=$(vdisk image convert src.img other.img 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q "use -n" <<<"$out" || fail "existing target: exit $rc: $out"
[ "$(md5sum other.img)" = "$before" ] || fail "existing target modified"
vdisk image convert -n src.img other.img
vdisk image compare src.img other.img >/dev/null || fail "-n did not rewrite the target"

# --no-sparse allocates everything.
vdisk image convert --no-sparse src.img full.img
[ $(( $(stat -c %b full.img) * 512 )) -ge $((64*1024*1024)) ] || fail "--no-sparse target is sparse"
qemu-img compare -f raw -F raw src.img full.img >/dev/null || fail "--no-sparse data"

# Progress: JSON lines end at 100%; not a terminal: one summary line.
vdisk image convert --progress=json src.img p.img | tail -1 | jq -e '.percent == 100 and .done == .total' >/dev/null \
    || fail "json progress"
rm -f p.img
vdisk image convert -p src.img p.img 2>err.txt
[ "$(wc -l < err.txt)" = 1 ] && grep -q "copied 64 MiB" err.txt || fail "progress line: $(cat err.txt)"

# Usage errors.
set +e
vdisk image convert -O qcow2 src.img q.img 2>/dev/null; [ $? = 2 ] || fail "-O qcow2"
vdisk image convert src.img 2>/dev/null; [ $? = 2 ] || fail "missing DST"
vdisk image convert -n src.img nosuch-target.img 2>/dev/null; [ $? = 1 ] || fail "-n without target"
set -e
[ ! -e q.img ] && [ ! -e nosuch-target.img ] || fail "failed converts left files"

# A block device smaller than the source is refused before any write.
if [ "$(id -u)" = 0 ] && losetup --version >/dev/null 2>&1; then
    truncate -s 32M small.img
    printf 'keep' | dd of=small.img bs=1 seek=0 conv=notrunc status=none
    dev=$(losetup -f --show small.img 2>/dev/null) || dev=
    if [ -n "$dev" ]; then
        cleanup_fn "losetup -d $dev"
        set +e; out=$(vdisk image convert src.img "$dev" 2>&1); rc=$?; set -e
        [ $rc = 1 ] && grep -q "smaller than the source" <<<"$out" || fail "small device: $rc: $out"
        [ "$(head -c 4 small.img)" = keep ] || fail "the small device was written"
        # A big enough device works, through the blockdev backend.
        truncate -s 64M big.img
        dev2=$(losetup -f --show big.img)
        cleanup_fn "losetup -d $dev2"
        vdisk image convert src.img "$dev2"
        cmp src.img "$dev2" || fail "copy to a block device"
    fi
fi
# RAW -> ASIF -> RAW: byte-identical; the ASIF target holds at most one
# chunk more per data run than the data itself (4 runs in src.img: the
# 3 MiB at 5 MiB, the 12 KiB at ~15.6 MiB, the zero run is not data, the
# last 4 bytes).
vdisk image convert -O asif src.img rt.asif
vdisk image check rt.asif >/dev/null || fail "the converted ASIF image does not pass check"
vdisk image compare src.img rt.asif >/dev/null || fail "RAW -> ASIF changed the data"
data=$(vdisk image info --json rt.asif | jq '.asif."data-size"')
runs=3
[ "$data" -le $(( (3*1024*1024 + 12*1024 + 4) + runs * 1024*1024 )) ] || fail "ASIF target too big: $data bytes of data"
[ "$(vdisk image info --json rt.asif | jq '.asif."partial-chunks"')" = 0 ] || fail "partial chunks written"
vdisk image convert rt.asif rt.img
qemu-img compare -f raw -F raw src.img rt.img >/dev/null || fail "ASIF -> RAW changed the data"
[ $(( $(stat -c %b rt.img) * 512 )) -le $(( (3*1024 + 12 + 4 + 16) * 1024 )) ] || fail "RAW from ASIF is not sparse"
# The .asif suffix picks the format; the map of an ASIF image is exact.
vdisk image convert src.img auto.asif
[ "$(vdisk image info --json auto.asif | jq -r .format)" = asif ] || fail ".asif suffix"
vdisk image map --json auto.asif | jq -e '[.[] | select(.data)] | map(.length) | add == 5242880' >/dev/null \
    || fail "ASIF map: $(vdisk image map --json auto.asif)"
# An ASIF target needs a size in whole 512-byte blocks.
truncate -s 1000 odd.img
set +e; out=$(vdisk image convert -O asif odd.img odd.asif 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -q "512-byte" <<<"$out" && [ ! -e odd.asif ] || fail "odd size to ASIF: $rc $out"
echo "test-convert-cli: OK"
