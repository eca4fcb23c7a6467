#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The NBD attachment wherever the CLI takes an attachment: image info
# (text and JSON), image convert both ways (into an existing export, and
# from an export into a new ASIF image), image compare, image map
# against qemu-img map, and the errors a user meets first (no server,
# nbds, a bad URI).
. "$top_srcdir/tests/functions.sh"
requires nbdkit --version
requires qemu-img --version
requires python3 --version

sock=$tmpdir/nbd.sock
uri="nbd+unix:///?socket=$sock"
start_bg srv nbdkit -f -U "$sock" memory 64M
wait_for_socket "$sock"

head -c $((40 * 1024 * 1024)) /dev/urandom > "$tmpdir/src.raw"
truncate -s 64M "$tmpdir/src.raw"

vdisk image info "$uri" > "$tmpdir/info"
grep -qx "format: nbd" "$tmpdir/info" || fail "info: $(cat "$tmpdir/info")"
grep -q "virtual-size: 64 MiB (67108864 bytes)" "$tmpdir/info" || fail "info size"
grep -q "^nbd details:" "$tmpdir/info" || fail "no nbd details"
grep -q "    replies: structured" "$tmpdir/info" || fail "replies"
vdisk image info --json "$uri" > "$tmpdir/info.json"
python3 - "$tmpdir/info.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "nbd" and j["virtual-size"] == 64 << 20, j
assert j["nbd"]["transport"] == "unix" and j["nbd"]["block-status"], j
assert j["nbd"]["connections"] == 1, j
PY

# Into the export, back out into a new ASIF image.
vdisk image convert -n "$tmpdir/src.raw" "$uri"
vdisk image compare "$tmpdir/src.raw" "$uri"
vdisk image convert "$uri" "$tmpdir/out.asif"
vdisk image compare "$tmpdir/out.asif" "$tmpdir/src.raw"
vdisk image info "$tmpdir/out.asif" | grep -qx "format: asif" || fail "not asif"

# The map equals QEMU's view of the same export.
norm () {
    python3 -c '
import json, sys
print([(e["start"], e["length"], e["data"], e["zero"]) for e in json.load(sys.stdin)])'
}
vdisk image map --json "$uri" | norm > "$tmpdir/map.vdisk"
qemu-img map --output=json "$uri" | norm > "$tmpdir/map.qemu"
diff -u "$tmpdir/map.qemu" "$tmpdir/map.vdisk" || fail "map differs from qemu-img"

# IPv6: a bracketed literal (when this machine has an IPv6 loopback).
if port6=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null); then
    start_bg srv6 nbdkit -f -i ::1 -p "$port6" memory 1M
    wait_for "python3 -c 'import socket; socket.create_connection((\"::1\", $port6)).close()'"
    vdisk image info "nbd://[::1]:$port6/" | grep -q "virtual-size: 1 MiB" ||
        fail "IPv6 literal"
    kill_bg "$srv6"
else
    echo "no IPv6 loopback here: the IPv6 case is not run"
fi

# Errors a user meets first.
set +e
vdisk image info --timeout 1 "nbd+unix:///?socket=$tmpdir/none.sock" \
    > /dev/null 2> "$tmpdir/err"; rc1=$?
vdisk image info 'nbds://localhost/?tls-type=anon' > /dev/null 2> "$tmpdir/err2"; rc2=$?
vdisk image info 'nbd://localhost:99999/' > /dev/null 2> "$tmpdir/err3"; rc3=$?
set -e
[ $rc1 = 1 ] && [ $rc2 = 1 ] && [ $rc3 = 1 ] || fail "exit codes $rc1 $rc2 $rc3"
grep -q "could not connect to the NBD server within 1 s" "$tmpdir/err" ||
    fail "no server: $(cat "$tmpdir/err")"
grep -q "tls-type=anon is not supported" "$tmpdir/err2" || fail "nbds: $(cat "$tmpdir/err2")"
grep -q "port 99999 is out of range" "$tmpdir/err3" || fail "bad uri: $(cat "$tmpdir/err3")"
echo "nbd cli: OK"
