#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The RAW guest test (test-vhost-guest-raw.sh) on an ASIF image: the
# guest reads the seed, writes the pattern with fsync, reads it back with
# O_DIRECT, discards, zeroes and punches 4 MiB ranges.  The host checks
# the image through vdisk itself: `vdisk image convert` to RAW for the
# bytes, `vdisk image map` for the chunks the discard and the punch gave
# back, `vdisk image check` for the image's consistency.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vm/vm.sh"
requires python3 --version
vm_setup

raw=$tmpdir/seed.raw
img=$tmpdir/disk.asif
sock=$tmpdir/vhost.sock
MiB=1048576

truncate -s 64M "$raw"
head -c $MiB /dev/urandom > "$tmpdir/seed"
dd if="$tmpdir/seed" of="$raw" conv=notrunc status=none
head -c $((24 * MiB)) /dev/urandom | dd of="$raw" bs=1M seek=16 conv=notrunc status=none
vdisk image convert -O asif "$raw" "$img" || fail "making the ASIF image failed"
vdisk image info "$img" | grep -q '^format: asif' || fail "$img is not ASIF"

start_bg spid "$VDISK" serve --vhost-user-blk "$sock" --serial vdisk-guest-asif "$img"
wait_for_socket "$sock" 30

# shellcheck disable=SC2046
vm_boot asif "vdt.script=disk-check vdt.woff=8 vdt.discard=16 vdt.zero=24 vdt.punch=32" \
    "${VM_TIMEOUT:-300}" $(vm_vhost_disk "$sock") ||
    fail "the guest run failed"

kill -TERM "$spid"
wait "$spid" || fail "the vhost-user-blk server did not stop cleanly"

vm_expect asif read_sha256 "$(sha256sum < "$tmpdir/seed" | cut -d' ' -f1)"
vm_expect asif readback_sha256 "$(sha256sum < "$VM_PATTERN" | cut -d' ' -f1)"
vm_expect asif size $((64 * MiB))
vm_expect asif serial vdisk-guest-asif
vm_expect asif discard zeros
vm_expect asif zero zeros
vm_expect asif punch zeros
# The ASIF chunk (1 MiB) is the optimal I/O size the guest sees.
vm_expect asif pbs 4096

# Consistent; the chunks the discard and the punch gave back are leaks
# until `vdisk image compact` (exit status 3), which is expected.
rc=0
vdisk image check --json "$img" > "$tmpdir/check.json" || rc=$?
[ $rc = 0 ] || [ $rc = 3 ] || fail "vdisk image check: exit status $rc"
python3 - "$tmpdir/check.json" <<'PY' || fail "vdisk image check finds the image damaged"
import json, sys
c = json.load(open(sys.argv[1]))
print(f"check: {c.get('corruptions')} corruptions, {c.get('leaks')} leaked chunks")
sys.exit(0 if c.get("corruptions") == 0 and c.get("check-errors", 0) == 0 else 1)
PY
vdisk image convert "$img" "$tmpdir/out.raw" || fail "converting back to RAW failed"
out=$tmpdir/out.raw
cmp -n $((4 * MiB)) "$VM_PATTERN" <(dd if="$out" bs=1M skip=8 count=4 status=none) ||
    fail "the pattern is not in the image at 8 MiB"
cmp -n $MiB "$tmpdir/seed" "$out" || fail "the seed changed"
for off in 16 24 32; do
    cmp -n $((4 * MiB)) /dev/zero <(dd if="$out" bs=1M skip=$off count=4 status=none) ||
        fail "the image is not zero at $off MiB"
done
for off in 20 28 36; do
    cmp -n $((4 * MiB)) <(dd if="$raw" bs=1M skip=$off count=4 status=none) \
        <(dd if="$out" bs=1M skip=$off count=4 status=none) ||
        fail "the data at $off MiB changed"
done
# Discard and punch gave their chunks back.
vdisk image map --json "$img" > "$tmpdir/map.json"
python3 - "$tmpdir/map.json" <<'PY' || fail "the discarded or punched range still holds data chunks"
import json, sys
ext = json.load(open(sys.argv[1]))
for mib in (16, 32):
    lo, hi = mib << 20, (mib + 4) << 20
    for e in ext:
        s, l = e["start"], e["length"]
        if s < hi and s + l > lo and e["data"]:
            print(f"range at {mib} MiB: data extent {e}")
            sys.exit(1)
PY
echo "test-vhost-guest-asif: OK"
