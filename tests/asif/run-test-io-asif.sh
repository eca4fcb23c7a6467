#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The attachment conformance test (tests/core/test-io.c: every call, its
# error paths, concurrent threads) on a fresh ASIF image, then a check of
# the image it leaves behind.
set -e
vdisk=$1 test_io=$2 img=$3; shift 3
rm -f "$img"
"$vdisk" image create blank --format ASIF --size 40MiB "$img"
trap 'rm -f "$img"' EXIT
"$test_io" "$img" "$@"
rc=0
"$vdisk" image check -q "$img" || rc=$?
# Discarded chunks leak until compaction (exit 3); corruption (2) fails.
[ $rc = 0 ] || [ $rc = 3 ] || { echo "check: exit $rc" >&2; exit 1; }
