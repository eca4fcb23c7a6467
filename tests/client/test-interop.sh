#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Interop: the vdisk NBD client against a real server.
#   test-interop.sh PEER TRANSPORT
#   PEER: nbdkit-memory nbdkit-file qemu-nbd-raw qemu-nbd-qcow2 nbd-server
#         vdisk-serve
#   TRANSPORT: tcp unix
# Checks, through the NBD attachment: data read equals data written
# (large parallel copies, random unaligned pieces), zeroing and trimming,
# block status equal to `qemu-img map` of the served image (or of the
# export through QEMU's own client when the image is not a file), the
# export's size and capabilities, and that the image itself holds what
# was written.
. "$top_srcdir/tests/functions.sh"

peer=${1:?peer}
transport=${2:?transport}
: "${NBD_IO:?}"

requires python3 --version
requires qemu-img --version
size=$((64 * 1024 * 1024))
img=$tmpdir/disk.img
sock=$tmpdir/nbd.sock
export_name=
port=

start_peer ()
{
    if [ "$transport" = tcp ]; then
        port=$(pick_port)
    fi
    case "$peer" in
    nbdkit-memory|nbdkit-file)
        requires nbdkit --version
        local where
        if [ "$transport" = tcp ]; then
            where=(-i 127.0.0.1 -p "$port")
        else
            where=(-U "$sock")
        fi
        if [ "$peer" = nbdkit-memory ]; then
            start_bg pid nbdkit -f "${where[@]}" memory "$size"
        else
            truncate -s "$size" "$img"
            start_bg pid nbdkit -f "${where[@]}" file "$img"
        fi
        ;;
    qemu-nbd-raw|qemu-nbd-qcow2)
        requires qemu-nbd --version
        local fmt=raw where
        if [ "$peer" = qemu-nbd-qcow2 ]; then
            fmt=qcow2
            qemu-img create -q -f qcow2 "$img" "$size"
        else
            truncate -s "$size" "$img"
        fi
        if [ "$transport" = tcp ]; then
            where=(-b 127.0.0.1 -p "$port")
        else
            where=(-k "$sock")
        fi
        export_name=vd-export
        start_bg pid qemu-nbd -t -f "$fmt" -x "$export_name" "${where[@]}" \
            "$img"
        ;;
    nbd-server)
        requires nbd-server -V
        truncate -s "$size" "$img"
        export_name=disk
        {
            echo "[generic]"
            # Unix mode still listens on TCP too: keep it on loopback
            # and off the default port.
            echo "listenaddr = 127.0.0.1"
            if [ "$transport" = tcp ]; then
                echo "port = $port"
            else
                echo "port = $(pick_port)"
                echo "unixsock = $sock"
            fi
            echo "[$export_name]"
            echo "exportname = $img"
            echo "trim = true"
        } > "$tmpdir/nbd-server.conf"
        # nbd-server daemonizes; its PID file tells us whom to kill.
        nbd-server -C "$tmpdir/nbd-server.conf" -p "$tmpdir/nbd-server.pid"
        wait_for "[ -s '$tmpdir/nbd-server.pid' ]"
        pid=$(cat "$tmpdir/nbd-server.pid")
        cleanup_fn "kill $pid"
        ;;
    vdisk-serve)
        truncate -s "$size" "$img"
        if [ "$transport" = tcp ]; then
            start_bg pid "$VDISK" serve -p "$port" -b 127.0.0.1 "$img"
        else
            start_bg pid "$VDISK" serve -s "$sock" "$img"
        fi
        ;;
    *)
        fail "unknown peer $peer"
        ;;
    esac
    if [ "$transport" = tcp ]; then
        wait_for_port "$port"
        uri="nbd://127.0.0.1:$port/$export_name"
    else
        wait_for_socket "$sock"
        uri="nbd+unix:///$export_name?socket=$sock"
    fi
}

start_peer
io () { "$NBD_IO" -t 20 "$@"; }

# Size and basic properties.
io info "$uri" > "$tmpdir/info"
# vdisk serve is the one peer with extended headers: they must be used.
if [ "$peer" = vdisk-serve ]; then
    grep -qx "nbd.replies: extended headers" "$tmpdir/info" ||
        fail "extended headers not negotiated: $(grep replies "$tmpdir/info")"
fi
grep -qx "virtual-size: $size" "$tmpdir/info" || fail "size: $(cat "$tmpdir/info")"
grep -qx "format: nbd" "$tmpdir/info" || fail "format"
grep -qx "nbd.connections: 1" "$tmpdir/info" || fail "connections"

# Data: a parallel copy in, read back two ways.
head -c $((24 * 1024 * 1024 + 12345)) /dev/urandom > "$tmpdir/src"
io -j 4 -r 1048576 write "$uri" "$tmpdir/src"
io -j 3 -r 65536 verify "$uri" "$tmpdir/src"
io -j 2 read "$uri" "$tmpdir/out"
cmp -n $(stat -c %s "$tmpdir/src") "$tmpdir/src" "$tmpdir/out" ||
    fail "read back differs"
[ "$(stat -c %s "$tmpdir/out")" = "$size" ] || fail "read size"

# Random unaligned pieces (read-modify-write when the server has a
# minimum block size; plain otherwise).
head -c $((3 * 1024 * 1024 + 777)) /dev/urandom > "$tmpdir/src2"
io unaligned "$uri" "$tmpdir/src2"

# Zeroing and trimming.
io zero "$uri" 4096 1048576
io zero "$uri" 3000000 100000 trim
io trim "$uri" $((40 * 1024 * 1024)) $((4 * 1024 * 1024))
io read "$uri" "$tmpdir/out2"
python3 - "$tmpdir/out2" "$tmpdir/src2" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
s = open(sys.argv[2], "rb").read()
assert d[4096:4096 + 1048576] == bytes(1048576), "zeroed range not zero"
assert d[3000000:3100000] == bytes(100000), "zeroed (may trim) range not zero"
exp = bytearray(s)
exp[4096:4096 + 1048576] = bytes(1048576)
exp[3000000:3100000] = bytes(100000)
assert d[:len(s)] == bytes(exp), "data around the zeroed ranges changed"
PY

# Block status against qemu-img map.
normalize () {
    python3 -c '
import json, sys
ext = []
for line in sys.stdin.read().replace("[", "").replace("]", "").split("\n"):
    line = line.strip().rstrip(",")
    if not line:
        continue
    e = json.loads(line)
    k = (bool(e["data"]), bool(e["zero"]))
    if ext and ext[-1][2] == k and ext[-1][0] + ext[-1][1] == e["start"]:
        ext[-1][1] += e["length"]
    else:
        ext.append([e["start"], e["length"], k])
for s, l, (d, z) in ext:
    print(s, l, "data" if d else "-", "zero" if z else "-")
'
}
io map "$uri" | normalize > "$tmpdir/map.vdisk"
case "$peer" in
qemu-nbd-raw|nbdkit-file)
    qemu-img map -U --output=json -f raw "$img" | normalize > "$tmpdir/map.ref" ;;
qemu-nbd-qcow2)
    qemu-img map -U --output=json -f qcow2 "$img" | normalize > "$tmpdir/map.ref" ;;
*)
    # The export is not a file, or its server locks the file against
    # qemu-img (vdisk serve): ask QEMU's own NBD client.
    qemu-img map --output=json "$uri" | normalize > "$tmpdir/map.ref" ;;
esac
if ! diff -u "$tmpdir/map.ref" "$tmpdir/map.vdisk"; then
    fail "block status differs from qemu-img map"
fi
[ -s "$tmpdir/map.vdisk" ] || fail "empty map"

# The image itself holds what was written.
case "$peer" in
nbdkit-file|qemu-nbd-raw|nbd-server|vdisk-serve)
    cmp -n $(stat -c %s "$tmpdir/out2") "$img" "$tmpdir/out2" ||
        fail "the image differs from what the client reads" ;;
qemu-nbd-qcow2)
    qemu-img convert -U -f qcow2 -O raw "$img" "$tmpdir/img.raw"
    cmp "$tmpdir/img.raw" "$tmpdir/out2" || fail "the qcow2 image differs" ;;
esac

# A read-only client refuses writes locally, with EROFS (30).
io --read-only --expect-fail 30 write "$uri" "$tmpdir/src2" > "$tmpdir/ro"
grep -q 'read-only' "$tmpdir/ro" || fail "read-only message: $(cat "$tmpdir/ro")"

# A missing export is a clear, immediate error (not a 20 s retry loop).
if [ "$peer" != nbdkit-memory ] && [ "$peer" != nbdkit-file ]; then
    case "$transport" in
    tcp) bad="nbd://127.0.0.1:$port/no-such-export" ;;
    unix) bad="nbd+unix:///no-such-export?socket=$sock" ;;
    esac
    start=$(date +%s)
    set +e
    "$NBD_IO" -t 20 info "$bad" > /dev/null 2> "$tmpdir/err"
    rc=$?
    set -e
    [ $rc != 0 ] || fail "a missing export was accepted"
    [ $(( $(date +%s) - start )) -lt 10 ] || fail "a missing export was retried"
    grep -Eq "no export named 'no-such-export'|NBD_OPT_EXPORT_NAME|refused" \
        "$tmpdir/err" || fail "unclear error: $(cat "$tmpdir/err")"
fi
echo "interop $peer $transport: OK"
