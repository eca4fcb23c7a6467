#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install the Debian 12 packages vdisk needs to build, test and benchmark.
# Idempotent and fast when everything is present: apt-get runs only for
# packages that are missing.  Usage: scripts/install-deps.sh [build|test]
#   build: compiler, meson, libraries (enough for `make`)
#   test:  build + the real peers the tests drive (default)
set -euo pipefail

build_pkgs=(
    gcc meson ninja-build pkg-config perl
    libgnutls28-dev liburing-dev
)
test_pkgs=(
    qemu-utils qemu-system-x86 nbdkit libnbd-bin python3-libnbd nbd-server
    fio jq python3 util-linux procps gnutls-bin busybox-static cpio xz-utils
    clang libclang-rt-14-dev valgrind
)

what=${1:-test}
case "$what" in
    build) pkgs=("${build_pkgs[@]}") ;;
    test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "$0: run as root (missing: ${missing[*]})" >&2; exit 1; }
    SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
