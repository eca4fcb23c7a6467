#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Ways to reach vdisk serve and its limits: --stdio (libnbd
# connect_command), systemd socket activation (libnbd
# connect_systemd_socket_activation), TCP with --port 0 and --print-uri,
# a unix socket; --max-connections, --handshake-timeout; SIGTERM with
# requests in flight (finished and answered, image flushed, socket and
# pid file removed); command-line errors; the image lock.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires_nbdsh
requires qemu-io --version
cd "$tmpdir"

make_image raw disk.raw 16MiB

# --stdio: one connection on stdin/stdout, then exit.
nbdsh -n -c '
h = nbd.NBD()
h.connect_command(["'"$VDISK"'", "serve", "--stdio", "disk.raw"])
assert h.get_size() == 16 << 20
h.pwrite(b"stdio" * 100, 4096)
assert h.pread(500, 4096) == b"stdio" * 100
h.shutdown()
'
# Socket activation: fd 3, LISTEN_PID/LISTEN_FDS.
nbdsh -n -c '
h = nbd.NBD()
h.connect_systemd_socket_activation(["'"$VDISK"'", "serve", "disk.raw"])
assert h.pread(500, 4096) == b"stdio" * 100
h.pwrite(b"activated", 0)
h.shutdown()
'
qemu-io -f raw -c 'read -P 0x61 0 1' disk.raw | grep -q 'read 1/1' || fail "activation write missing"

# TCP on a free port, URI printed; unix socket.
serve pid --port 0 disk.raw
[[ "$serve_uri" =~ ^nbd://127\.0\.0\.1:[0-9]+/$ ]] || fail "URI: $serve_uri"
grep -q ' port 0' "$serve_log" && fail "log names port 0"
qemu-io -f raw -c 'read -P 0x61 0 1' "$serve_uri" >/dev/null || fail "TCP"
# A second server on the same image: the image is locked.
if "$VDISK" serve --port 0 disk.raw 2>err.txt; then fail "second server started"; fi
grep -qi 'lock\|busy\|in use' err.txt || { cat err.txt; fail "lock message"; }
stop_serve "$pid"

# --max-connections 2: the third client is turned away, others unharmed.
serve pid --socket "$tmpdir/s.sock" --max-connections 2 --handshake-timeout 2 disk.raw
nbdpy - "$tmpdir/s.sock" <<'PY'
import socket, sys, time
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1]); return s
a, b = conn(), conn()
assert len(a.recv(18)) == 18 and len(b.recv(18)) == 18
c = conn()
assert c.recv(18) == b"", "third connection served"
a.close()
time.sleep(0.3)
d = conn()
assert len(d.recv(18)) == 18, "slot not freed"
# Silent clients are dropped after the handshake time limit.
t0 = time.time()
assert b.recv(1) == b"" and d.recv(1) == b""
assert time.time() - t0 < 6, "handshake limit not enforced"
print("limits: OK")
PY
grep -q 'refused: already 2 connections' "$serve_log" || fail "refusal not logged"
grep -q 'handshake not finished within 2 seconds' "$serve_log" || fail "timeout not logged"
stop_serve "$pid"

# SIGTERM while requests are in flight: they are answered, the image is
# flushed and closed, the socket and the pid file go away.
serve pid --socket "$tmpdir/s.sock" disk.raw
nbdsh -u "nbd+unix:///?socket=$tmpdir/s.sock" -c '
import os, signal, time
N = 48
bufs = [nbd.Buffer.from_bytearray(bytearray([i + 1]) * (256 << 10)) for i in range(N)]
cookies = [h.aio_pwrite(bufs[i], i * (256 << 10)) for i in range(N)]
acked, pending = [], set(range(N))
killed = False
t0 = time.time()
while pending and time.time() - t0 < 30:
    if acked and not killed:
        # The server is busy with our writes: stop it now.
        os.kill('"$pid"', signal.SIGTERM)
        killed = True
    for i in list(pending):
        try:
            if h.aio_command_completed(cookies[i]):
                acked.append(i)
                pending.discard(i)
        except nbd.Error:
            pending.discard(i)          # failed: the server went away
    if not pending or h.aio_is_dead() or h.aio_is_closed():
        break
    try:
        h.poll(1000)
    except nbd.Error:
        pass
assert killed
with open("acked.txt", "w") as f:
    f.write("".join("%d\n" % i for i in sorted(acked)))
'
wait "$pid" || fail "server did not exit cleanly after SIGTERM"
[ -e "$tmpdir/s.sock" ] && fail "socket left behind"
[ -e "$tmpdir/serve-$_serve_n.pid" ] && fail "pid file left behind"
[ -s acked.txt ] || fail "no write was answered during the shutdown"
while read -r i; do
    qemu-io -f raw -c "read -P $((i + 1)) $((i * 256))k 256k" disk.raw | grep -q 'read 262144/262144' \
        || fail "acknowledged write $i missing"
done < acked.txt
echo "acknowledged during shutdown: $(wc -l < acked.txt) of 48"

# Per-export modes: global defaults, overridden per export.
make_image raw b.raw 1MiB
serve pid -v --port 0 --sync none --export "a=disk.raw,caching=uncached" \
    --export "b=b.raw,sync=full,read-only,caching=cached"
grep -q "export 'a' (default): disk.raw (raw, 16777216 bytes, read-write, caching uncached, sync none)" "$serve_log" \
    || { cat "$serve_log"; fail "export a modes"; }
grep -q "export 'b': b.raw (raw, 1048576 bytes, read-only, caching cached, sync full)" "$serve_log" \
    || { cat "$serve_log"; fail "export b modes"; }
qemu-io -f raw -c 'write -P 0x66 1000 3000' -c 'read -P 0x66 1000 3000' "$serve_uri" | grep -q 'read 3000/3000' || fail "uncached export"
stop_serve "$pid"

# Command-line errors.
set +e
"$VDISK" serve >/dev/null 2>err.txt; [ $? = 2 ] || fail "no image: exit $?"
"$VDISK" serve --stdio --port 1 disk.raw >/dev/null 2>err.txt; [ $? = 2 ] || fail "--stdio --port"
"$VDISK" serve --export 'a=disk.raw,bogus' >/dev/null 2>err.txt; [ $? = 2 ] || fail "bad export option"
grep -q "unknown export option 'bogus'" err.txt || fail "export option message"
"$VDISK" serve --export noequals >/dev/null 2>err.txt; [ $? = 2 ] || fail "export without ="
"$VDISK" serve --port 70000 disk.raw >/dev/null 2>err.txt; [ $? = 2 ] || fail "bad port"
"$VDISK" serve --max-request 100 disk.raw >/dev/null 2>err.txt; [ $? = 2 ] || fail "bad max-request"
"$VDISK" serve --busy-poll -1 disk.raw >/dev/null 2>err.txt; [ $? = 2 ] || fail "bad busy-poll"
grep -q -- "--busy-poll" err.txt || fail "busy-poll error: $(cat err.txt)"
"$VDISK" serve --port 0 nonexistent.img >/dev/null 2>err.txt; [ $? = 1 ] || fail "missing image: exit $?"
grep -q 'nonexistent.img' err.txt || fail "missing image message"
"$VDISK" serve --port 0 --export a=disk.raw --export a=disk.raw >/dev/null 2>err.txt; [ $? = 1 ] || fail "duplicate export"
set -e
echo "test-serve-listen: OK"
