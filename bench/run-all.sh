#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run every benchmark script in bench/ (bench-*.sh), one after the other,
# against the build in BUILDDIR.  Benchmarks are never part of the tests.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
for b in "$here"/bench-*.sh; do
    echo "=== $(basename "$b")"
    "$b" "$build"
    echo
done
