#!/bin/bash
# Create a fresh 32 MiB RAW image and run the conformance test on it.
set -e
test_io=$1 img=$2; shift 2
rm -f "$img"
truncate -s 32M "$img"
trap 'rm -f "$img"' EXIT
"$test_io" "$img" "$@"
