#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# kill -9 of the server loses no write acknowledged before a completed
# FLUSH.  Two connections (multi-conn) write 64 KiB blocks, each block
# once, in random order; after each round every write is acknowledged
# and a FLUSH on the first connection covers both.  The server is killed
# with SIGKILL in the middle; then every block flushed before the last
# completed FLUSH must be in the image.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/server/serve-functions.sh"
requires_nbdsh
requires nbdcopy --version
cd "$tmpdir"

for fmt in $(formats); do
    echo "== $fmt"
    make_image "$fmt" "disk.$fmt" 128MiB
    serve pid --socket "$tmpdir/s.sock" "disk.$fmt"
    rm -f progress progress.tmp flushed.txt
    nbdsh -n -c '
import os, random, struct, sys
uri = "'"$serve_uri"'"
hs = [nbd.NBD(), nbd.NBD()]
for h in hs:
    h.connect_uri(uri)
    assert h.can_multi_conn()
B = 65536
blocks = list(range(hs[0].get_size() // B))
random.shuffle(blocks)
def pattern(b):
    return bytearray(struct.pack(">Q", b + 1) * (B // 8))
flushed, acked, rounds = [], [], 0
try:
    while blocks:
        batch, blocks = blocks[:8], blocks[8:]
        cs = []
        for k, b in enumerate(batch):
            h = hs[k % 2]
            cs.append((h, h.aio_pwrite(pattern(b), b * B)))
        for h, c in cs:
            while not h.aio_command_completed(c):
                h.poll(-1)
        acked += batch
        rounds += 1
        if rounds % 2 == 0:
            hs[0].flush()
            flushed += acked
            acked = []
            # Atomically: the shell reads it while this runs, and a
            # file truncated by open() reads as no progress at all.
            with open("progress.tmp", "w") as f:
                f.write("%d\n" % len(flushed))
            os.replace("progress.tmp", "progress")
except nbd.Error as e:
    pass
with open("flushed.txt", "w") as f:
    f.write("".join("%d\n" % b for b in flushed))
' &
    client=$!
    cleanup_fn "kill -9 $client 2>/dev/null"
    # Let a few hundred blocks be flushed, then kill the server mid-write.
    # The first flushes of an ASIF image under ASan on a loaded two-CPU
    # machine can take many seconds: wait up to a minute, but stop at
    # once if the client died.
    for (( i=0; i < 1200; i++ )); do
        [ -s progress ] && [ "$(cat progress)" -ge 200 ] && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.05
    done
    if ! [ -s progress ]; then
        kill -0 "$client" 2>/dev/null || fail "the client exited before its first flush"
        cat "$serve_log" >&2
        fail "the client made no progress in 60 s"
    fi
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    wait "$client" || fail "client failed"
    n=$(wc -l < flushed.txt)
    [ "$n" -ge 200 ] || fail "only $n blocks flushed"
    if [ "$fmt" = raw ]; then
        cp disk.raw image.raw
    else
        serve pid --read-only --socket "$tmpdir/s2.sock" "disk.$fmt"
        nbdcopy "$serve_uri" image.raw
        stop_serve "$pid"
    fi
    nbdpy - image.raw flushed.txt <<'PY'
import struct, sys
B = 65536
img = open(sys.argv[1], "rb")
bad = 0
for line in open(sys.argv[2]):
    b = int(line)
    img.seek(b * B)
    if img.read(B) != struct.pack(">Q", b + 1) * (B // 8):
        bad += 1
print("kill -9: %d flushed blocks checked, %d lost" % (sum(1 for _ in open(sys.argv[2])), bad))
sys.exit(1 if bad else 0)
PY
    rm -f image.raw
done
echo "test-serve-kill9: OK"
