#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `vdisk serve --vhost-user-blk`: the command line (usage errors, the
# serial check), a vhost-user-blk disk alone (no NBD socket is opened,
# the pid file is written, SIGTERM stops it cleanly and removes the
# socket), and a vhost-user-blk disk together with an NBD export in one
# process.  A few lines of Python play the VMM's first messages.
. "$top_srcdir/tests/functions.sh"
requires python3 --version
requires nbdinfo --version

img=$tmpdir/disk.img
img2=$tmpdir/data.img
vsock=$tmpdir/vhost.sock
nsock=$tmpdir/nbd.sock
truncate -s 16M "$img"
truncate -s 8M "$img2"

usage () {  # expect exit status 2 and MESSAGE on stderr
    local msg=$1 rc=0
    shift
    "$VDISK" serve "$@" > /dev/null 2> "$tmpdir/err" || rc=$?
    [ $rc = 2 ] || fail "vdisk serve $*: exit status $rc, expected 2"
    grep -q -- "$msg" "$tmpdir/err" || { cat "$tmpdir/err"; fail "vdisk serve $*: no '$msg'"; }
}
usage "apply to --vhost-user-blk" --num-queues 2 "$img"
usage "apply to --vhost-user-blk" --serial abc "$img"
usage "at most 20 bytes" --vhost-user-blk "$vsock" --serial 123456789012345678901 "$img"
usage "non-ASCII" --vhost-user-blk "$vsock" --serial "caf$(printf '\303\251')" "$img"
usage "number from 1 to 32" --vhost-user-blk "$vsock" --num-queues 0 "$img"
usage "number from 1 to 32" --vhost-user-blk "$vsock" --num-queues 33 "$img"
usage "give exactly one" --vhost-user-blk "$vsock"
usage "give exactly one" --vhost-user-blk "$vsock" --export a="$img2"
usage "cannot be combined with --stdio" --vhost-user-blk "$vsock" --stdio "$img"
usage "cannot be combined with --description" --vhost-user-blk "$vsock" -D x "$img"
[ ! -e "$vsock" ] || fail "a usage error left $vsock behind"

# GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM over the socket.
probe () {
    python3 - "$1" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def get(req):
    s.sendall(struct.pack("=III", req, 1, 0))
    hdr = s.recv(12, socket.MSG_WAITALL)
    r, flags, size = struct.unpack("=III", hdr)
    assert r == req and flags == 5 and size == 8, (r, flags, size)
    return struct.unpack("=Q", s.recv(8, socket.MSG_WAITALL))[0]
f = get(1)
get(15)
print(f"features=0x{f:x} ro={f >> 5 & 1} mq={f >> 12 & 1} queues={get(17)}")
PY
}

# Alone: read-only, 4 queues; no NBD socket is opened.
start_bg spid "$VDISK" serve --vhost-user-blk "$vsock" --read-only --num-queues 4 \
    --pid-file "$tmpdir/pid" "$img"
wait_for_socket "$vsock" 30
wait_for "[ -s '$tmpdir/pid' ]" 10
[ "$(cat "$tmpdir/pid")" = "$spid" ] || fail "the pid file does not hold $spid"
out=$(probe "$vsock")
echo "$out"
case "$out" in *"ro=1 mq=1 queues=4"*) ;; *) fail "unexpected features: $out" ;; esac
python3 - "$spid" <<'PY' || fail "vdisk serve --vhost-user-blk alone listens on TCP"
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    t = os.readlink(f"/proc/{pid}/fd/{fd}")
    if t.startswith("socket:["):
        inodes.add(t[8:-1])
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(f).readlines()[1:]:
        if line.split()[9] in inodes:
            print("TCP socket:", line.strip())
            sys.exit(1)
PY
kill -TERM "$spid"
wait "$spid" || fail "vdisk serve did not exit 0 on SIGTERM"
[ ! -e "$vsock" ] || fail "the socket was left behind"
[ ! -e "$tmpdir/pid" ] || fail "the pid file was left behind"

# Together with an NBD export.
start_bg spid "$VDISK" serve --vhost-user-blk "$vsock" --serial cli-test "$img" \
    --socket "$nsock" --export data="$img2"
wait_for_socket "$vsock" 30
wait_for_socket "$nsock" 30
out=$(probe "$vsock")
case "$out" in *"ro=0 mq=1 queues=1"*) ;; *) fail "unexpected features: $out" ;; esac
nbdinfo --size "nbd+unix:///data?socket=$nsock" | grep -qx 8388608 ||
    fail "the NBD export is not served next to the vhost-user-blk disk"
kill -TERM "$spid"
wait "$spid" || fail "vdisk serve did not exit 0 on SIGTERM"
[ ! -e "$vsock" ] || fail "the socket was left behind"
echo "test-vhost-serve-cli: OK"
