#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A real guest on a vhost-user-blk disk whose attachment is an NBD client
# (nbd+unix) to nbdkit, and nbdkit is killed (SIGKILL) and restarted
# twice while the guest writes 16 copies of a 4 MiB pattern, each with
# fsync.  The NBD attachment reconnects underneath the export: the guest
# must see no I/O error, read every copy back intact, and the image file
# must hold every copy.  The guest pauses 0.25 s between copies, so the
# host has time to act; a check on the guest's timestamps proves each
# outage stalled a write.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vm/vm.sh"
requires nbdkit --version
vm_setup

img=$tmpdir/disk.img
nbd_sock=$tmpdir/nbd.sock
sock=$tmpdir/vhost.sock
copies=16
MiB=1048576
truncate -s 80M "$img"

nbd_pid=
start_nbdkit ()
{
    rm -f "$nbd_sock"
    nbdkit -f -U "$nbd_sock" file "$img" &
    nbd_pid=$!
    wait_for_socket "$nbd_sock" 30
}
kill_nbdkit ()
{
    kill -9 "$nbd_pid" 2>/dev/null || true
    wait "$nbd_pid" 2>/dev/null || true
}
cleanup_fn kill_nbdkit
start_nbdkit

start_bg spid "$VDISK" serve --vhost-user-blk "$sock" "nbd+unix:///?socket=$nbd_sock"
wait_for_socket "$sock" 30

# The guest runs in the background; the host watches its progress and
# kills the NBD server after copies 3 and 9, leaving it down for 2 s
# (the guest's writes wait meanwhile).
console=$tmpdir/nbd.console
: > "$console"
(
    vm_boot nbd "vdt.script=writer vdt.copies=$copies vdt.woff=8 vdt.pause_us=250000" \
        "${VM_TIMEOUT:-600}" $(vm_vhost_disk "$sock")
) &
vm=$!
cleanup_fn "kill $vm 2>/dev/null"
kills=0
for at in 3 9; do
    for (( i = 0; i < 6000; i++ )); do
        grep -aq "^VDT progress=$at" "$console" && break
        kill -0 "$vm" 2>/dev/null || break
        sleep 0.05
    done
    grep -aq "^VDT progress=$at" "$console" || fail "the guest never reached copy $at"
    if grep -aq "^VDT progress=$copies" "$console"; then
        fail "the guest finished writing before nbdkit could be killed"
    fi
    kill_nbdkit
    kills=$((kills + 1))
    echo "killed nbdkit after copy $at" >&2
    sleep 2
    start_nbdkit
done
wait "$vm" || fail "the guest run failed"

kill -TERM "$spid"
wait "$spid" || fail "the vhost-user-blk server did not stop cleanly"
[ $kills = 2 ] || fail "nbdkit was killed $kills times, expected 2"

want=$(sha256sum < "$VM_PATTERN" | cut -d' ' -f1)
for (( i = 0; i < copies; i++ )); do
    vm_expect nbd "copy$i" "$want"
    cmp -n $((4 * MiB)) "$VM_PATTERN" \
        <(dd if="$img" bs=1M skip=$((8 + 4 * i)) count=4 status=none) ||
        fail "copy $i is not in the image"
done
vm_expect nbd ioerrors 0
# The outages hit writes in flight: one of the two copies after each kill
# took (at least most of) the 2 s nbdkit was down.
for at in 3 9; do
    gap=$(awk -v a="$(vm_get nbd t$at)" -v b="$(vm_get nbd t$((at + 2)))" 'BEGIN { print b - a }')
    awk -v g="$gap" 'BEGIN { exit !(g >= 1.5) }' ||
        fail "copies $((at + 1))-$((at + 2)) took ${gap}s: the outage did not stall the guest's writes"
    echo "copies $((at + 1))-$((at + 2)) took ${gap}s (nbdkit down for 2 s)" >&2
done
echo "test-vhost-guest-nbd-reconnect: OK"
