#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job: create an image with vdisk, write and read it through
# libvdisk, and show what vdisk reports about it.  (The NBD server and
# ASIF extend this demo as they land.)
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
vdisk="$top/$build/cli/vdisk"
work=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

step () { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "vdisk image create blank --fs none --format RAW --size 1GiB disk.img"
"$vdisk" image create blank --fs none --format RAW --size 1GiB "$work/disk.img"

step "write and read through libvdisk (examples/hello-attachment.c)"
"$top/$build/examples/hello-attachment" "$work/disk.img" 1048576 "hello from the vdisk demo"

step "vdisk image info --json disk.img"
"$vdisk" image info --json "$work/disk.img"

step "qemu-img info (a real peer) agrees on the size"
if command -v qemu-img >/dev/null; then
    qemu-img info -f raw "$work/disk.img" | sed -n '1,4p'
fi
echo
echo "demo: OK"
