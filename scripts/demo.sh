#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job: make a RAW disk, convert it to ASIF, serve the ASIF image
# over NBD on loopback with vdisk serve, write and read it with real NBD
# clients (nbdcopy, qemu-io, qemu-img, nbdinfo), print the URI, copy the
# export back to RAW (the round trip RAW -> ASIF -> NBD -> RAW), stop the
# server cleanly and show what landed in the image.  Everything lives in a temporary
# directory that is removed at the end; the server is stopped by PID.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
vdisk="$top/$build/cli/vdisk"
work=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-demo.XXXXXX")
server=
cleanup () {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

step () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
for t in nbdinfo nbdcopy qemu-img qemu-io; do
    command -v $t >/dev/null || { echo "demo: $t is missing (make deps)" >&2; exit 1; }
done

step "vdisk image create blank --fs none --format RAW --size 10GiB disk.img, with some data"
"$vdisk" image create blank --fs none --format RAW --size 10GiB disk.img
qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x22 3G 8M' disk.img
"$vdisk" image map disk.img

step "vdisk image convert -O asif disk.img disk.asif   (RAW -> ASIF, sparse)"
"$vdisk" image convert -O asif disk.img disk.asif
"$vdisk" image compare disk.img disk.asif
ls -ls disk.img disk.asif

step "vdisk serve --port 0 --print-uri disk.asif   (NBD on 127.0.0.1, a free port)"
"$vdisk" serve --port 0 --print-uri --pid-file serve.pid disk.asif >uri.txt 2>serve.log &
server=$!
for _ in $(seq 100); do [ -s serve.pid ] && break; sleep 0.05; done
[ -s serve.pid ] || { cat serve.log >&2; echo "demo: the server did not start" >&2; exit 1; }
uri=$(head -1 uri.txt)
printf '\n    URI: \033[1m%s\033[0m\n' "$uri"

step "nbdinfo $uri"
nbdinfo "$uri"

step "qemu-img info $uri"
qemu-img info "$uri"

step "write through NBD: nbdcopy a message to offset 0, qemu-io a 4 MiB pattern at 1 GiB"
printf 'hello from the vdisk demo, written over NBD\n' > hello.txt
truncate -s 4096 hello.txt
nbdcopy hello.txt "$uri"
qemu-io -f raw -c 'write -P 0x5a 1G 4M' "$uri"

step "read it back through NBD"
qemu-img dd -f raw -O raw if="$uri" of=first.bin bs=4096 count=1
tr -d '\0' < first.bin
qemu-io -f raw -c 'read -P 0x5a 1G 4M' "$uri"

step "nbdinfo --map $uri   (ASIF allocates 1 MiB chunks; the rest are holes)"
nbdinfo --map "$uri"

step "qemu-img convert the export to qcow2, then compare"
qemu-img convert -p -f raw -O qcow2 "$uri" copy.qcow2
qemu-img compare -f raw -F qcow2 "$uri" copy.qcow2

step "vdisk image convert $uri roundtrip.img   (NBD -> RAW)"
"$vdisk" image convert -p "$uri" roundtrip.img
qemu-img compare -f raw -F raw "$uri" roundtrip.img

step "stop the server (SIGTERM: finish requests, flush, close)"
kill -TERM "$server"
wait "$server"
server=
cat serve.log

step "vdisk image info disk.asif   (what landed in the image)"
"$vdisk" image info disk.asif
ls -ls disk.asif

echo
echo "demo: OK (the image was served at $uri)"
