#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The vdisk CLI: image create/info, diskutil syntax, exit codes (0 ok,
# 1 operational error, 2 usage error), messages "vdisk: ..." naming the
# file and the problem.
. "$top_srcdir/tests/functions.sh"
requires jq --version

cd "$tmpdir"

expect_exit ()
{
    local want=$1 pattern=$2; shift 2
    local out status=0
    out=$(vdisk "$@" 2>&1) || status=$?
    if [ "$status" != "$want" ]; then
        fail "vdisk $*: exit $status, expected $want; output: $out"
    fi
    if [ -n "$pattern" ] && ! grep -qE -- "$pattern" <<<"$out"; then
        fail "vdisk $*: output does not match /$pattern/: $out"
    fi
}

# Create: diskutil syntax, decimal GB.
vdisk image create blank --fs none --format RAW --size 10GB a.img
[ "$(stat -c %s a.img)" = 10000000000 ] || fail "10GB is not 10^10 bytes"
[ "$(stat -c %b a.img)" = 0 ] || fail "a.img is not sparse"
vdisk image create blank --format raw --size 1GiB b.img
[ "$(stat -c %s b.img)" = 1073741824 ] || fail "1GiB"
# Options after the path (GNU argument order) and default format.
vdisk image create blank c.img --size 3m
[ "$(stat -c %s c.img)" = 3000000 ] || fail "3m"

# Errors.
expect_exit 1 "a.img: file exists" image create blank --fs none --format RAW --size 1GB a.img
[ "$(stat -c %s a.img)" = 10000000000 ] || fail "an existing file was modified"
expect_exit 2 "not supported" image create blank --fs APFS --format RAW --size 1GB d.img
expect_exit 2 "unknown format" image create blank --format qcow2 --size 1GB d.img
expect_exit 2 "missing --size" image create blank --format RAW d.img
expect_exit 2 "unknown unit" image create blank --size 10XB d.img
expect_exit 2 "greater than zero" image create blank --size 0 d.img
expect_exit 2 "missing PATH" image create blank --size 1GB
expect_exit 2 "expected 'blank'" image create --size 1GB d.img
expect_exit 2 "image convert" image create from a.img d.img
expect_exit 2 "needs a file system" image create blank --volumeName X --size 1G d.img
expect_exit 2 "invalid option" image create blank --frobnicate --size 1G d.img
expect_exit 2 "unknown command" frobnicate
expect_exit 2 "needs a subcommand" image
expect_exit 1 "nonexistent-dir/d.img" image create blank --size 1G nonexistent-dir/d.img
[ ! -e d.img ] || fail "a failed create left d.img behind"

# Info: text and JSON agree with the file.
vdisk image info a.img | grep -q '^format: raw$' || fail "info text"
vdisk image info --json a.img > info.json
jq -e '.format == "raw" and ."virtual-size" == 10000000000 and ."allocated-size" == 0 and ."block-size" == 512 and ."read-only" == true' info.json >/dev/null \
    || fail "info --json: $(cat info.json)"
expect_exit 1 "nosuch.img: No such file" image info nosuch.img
expect_exit 2 "missing PATH" image info
expect_exit 2 "unknown caching mode" image info --caching writeback a.img

# Info on an image in use by a writer fails clearly; -U overrides.
python3 - a.img <<'PY' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
# An exclusive OFD lock on the whole file, as a vdisk writer takes.
F_OFD_SETLK = 37
fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
open(sys.argv[1] + ".locked", "w").close()
time.sleep(30)
PY
holder=$!
cleanup_fn "kill $holder"
wait_for "[ -e a.img.locked ]"
expect_exit 1 "in use by process $holder" image info a.img
vdisk image info -U a.img >/dev/null || fail "info -U on a locked image"
kill $holder; wait $holder 2>/dev/null || true

# Help and version.
vdisk --help | grep -q "image create" || fail "--help lists commands"
vdisk image create --help | grep -q -- "--size" || fail "command --help"
vdisk help image info | grep -q -- "--json" || fail "help COMMAND"
vdisk --version | grep -qE '^vdisk [0-9]+\.[0-9]+\.[0-9]+' || fail "--version"
echo "test-cli: OK"
