#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build (or reuse) the vdisk test guest: a Debian kernel and a busybox
# initramfs whose /init (guest/init.sh) runs one of the scenarios in
# guest/ and powers off.  Shared by every guest test (tests/vhost,
# tests/server, ...) and by the benchmarks.
#
# Usage: tests/vm/build-guest.sh [--fio]
#   --fio   also put fio (and its libraries) in the initramfs (benchmarks)
# Output, in $VD_VM_DIR (default /var/tmp/vdisk-vm), printed as shell
# assignments on stdout:
#   VM_KERNEL=...   vmlinux (PVH entry, boots ~2x faster under TCG) or vmlinuz
#   VM_INITRD=...   initramfs.cpio.gz or initramfs-fio.cpio.gz
#   VM_PATTERN=...  the 4 MiB of random bytes the guest writes
# The kernel package (~70 MB, `apt-get download`, never installed) is
# fetched once; the initramfs is rebuilt when the guest scripts or the
# tools change.  Concurrent callers serialise on a lock in $VD_VM_DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${VD_VM_DIR:-/var/tmp/vdisk-vm}
with_fio=0
[ "${1:-}" = --fio ] && with_fio=1

log () { echo "build-guest: $*" >&2; }
die () { echo "build-guest: error: $*" >&2; exit 1; }

for t in busybox cpio gzip xz dpkg-deb apt-get; do
    command -v "$t" >/dev/null || die "$t is missing (scripts/install-deps.sh test)"
done
[ -x /bin/busybox ] && file_is_static=$(ldd /bin/busybox 2>&1 || true)
case "${file_is_static:-}" in
    *"not a dynamic"*|*"statically linked"*) ;;
    *) die "/bin/busybox is not static (install busybox-static)" ;;
esac

mkdir -p "$dir"
exec 9> "$dir/.lock"
flock 9

# ---- kernel
if [ ! -s "$dir/kernel/vmlinuz" ] || [ ! -d "$dir/kernel/modules" ]; then
    kpkg=${VD_VM_KPKG:-}
    if [ -z "$kpkg" ]; then
        kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
               awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    fi
    [ -n "$kpkg" ] || die "cannot find the kernel package behind linux-image-amd64 (apt-get update?)"
    log "downloading $kpkg"
    rm -rf "$dir/kernel" "$dir/kernel.tmp"
    mkdir -p "$dir/kernel.tmp/deb" "$dir/kernel.tmp/modules"
    chmod 777 "$dir/kernel.tmp/deb"   # apt's _apt user downloads there
    (cd "$dir/kernel.tmp/deb" && apt-get download -qq "$kpkg" >/dev/null 2>&1) ||
        die "apt-get download $kpkg failed"
    dpkg-deb -x "$dir"/kernel.tmp/deb/*.deb "$dir/kernel.tmp/root"
    kver=$(basename "$dir"/kernel.tmp/root/lib/modules/*)
    cp "$dir/kernel.tmp/root/boot/vmlinuz-$kver" "$dir/kernel.tmp/vmlinuz"
    cp "$dir/kernel.tmp/root/boot/config-$kver" "$dir/kernel.tmp/config"
    for m in drivers/virtio/virtio_ring drivers/virtio/virtio \
             drivers/virtio/virtio_pci_modern_dev \
             drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci \
             drivers/block/virtio_blk; do
        f=$dir/kernel.tmp/root/lib/modules/$kver/kernel/$m.ko
        out=$dir/kernel.tmp/modules/$(basename "$m").ko
        if [ -f "$f" ]; then cp "$f" "$out"
        elif [ -f "$f.xz" ]; then xz -dc "$f.xz" > "$out"
        elif grep -q "kernel/$m.ko" "$dir/kernel.tmp/root/lib/modules/$kver/modules.builtin"; then :
        else die "$m.ko is not in $kpkg"; fi
    done
    # The uncompressed ELF inside the bzImage boots through the PVH
    # entry point: no real-mode setup, no decompression under TCG.
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$dir/kernel.tmp/vmlinuz" | head -n1 | cut -d: -f1 || true)
    if [ -n "$off" ] && grep -q '^CONFIG_PVH=y' "$dir/kernel.tmp/config"; then
        tail -c +$((off + 1)) "$dir/kernel.tmp/vmlinuz" |
            xz -dc --single-stream > "$dir/kernel.tmp/vmlinux" 2>/dev/null || true
        [ "$(head -c4 "$dir/kernel.tmp/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
            rm -f "$dir/kernel.tmp/vmlinux"
    fi
    echo "$kpkg $kver" > "$dir/kernel.tmp/version"
    rm -rf "$dir/kernel.tmp/deb" "$dir/kernel.tmp/root"
    mv "$dir/kernel.tmp" "$dir/kernel"
fi
kernel=$dir/kernel/vmlinuz
[ -s "$dir/kernel/vmlinux" ] && [ -z "${VD_VM_BZIMAGE:-}" ] && kernel=$dir/kernel/vmlinux

# ---- the pattern the guest writes (random, made once)
[ -s "$dir/pattern.bin" ] || head -c $((4 << 20)) /dev/urandom > "$dir/pattern.bin"

# ---- initramfs
tools=(/usr/sbin/blkdiscard /usr/bin/fallocate)
name=initramfs
if [ $with_fio = 1 ]; then
    command -v fio >/dev/null || die "fio is missing"
    tools+=("$(command -v fio)")
    name=initramfs-fio
fi
stamp=$( { cat "$here"/guest/*.sh "$0" "$dir/kernel/version";
           for t in "${tools[@]}"; do ls -lL "$t"; ldd "$t"; done; } | sha256sum | cut -c1-16)
if [ ! -s "$dir/$name.cpio.gz" ] || [ "$(cat "$dir/$name.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "building $dir/$name.cpio.gz"
    stage=$(mktemp -d "$dir/stage.XXXXXX")
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage"/{bin,lib/modules,opt/bin,opt/lib,scenarios,proc,sys,dev,tmp,lib64}
    cp /bin/busybox "$stage/bin/busybox"
    cp "$here/guest/init.sh" "$stage/init"
    chmod 755 "$stage/init"
    for s in "$here"/guest/*.sh; do
        [ "$(basename "$s")" = init.sh ] || cp "$s" "$stage/scenarios/"
    done
    cp "$dir"/kernel/modules/*.ko "$stage/lib/modules/"
    cp "$dir/pattern.bin" "$stage/pattern.bin"
    for t in "${tools[@]}"; do
        cp -L "$t" "$stage/opt/bin/"
        # Its libraries, and the dynamic loader where the binary expects it.
        ldd "$t" | awk '/=> \// { print $3 } /^\t\/lib64\// { print $1 }' |
            while read -r lib; do
                cp -L "$lib" "$stage/opt/lib/"
            done
    done
    cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
    (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$dir/$name.cpio.gz.tmp"
    mv "$dir/$name.cpio.gz.tmp" "$dir/$name.cpio.gz"
    echo "$stamp" > "$dir/$name.stamp"
    rm -rf "$stage"
    trap - EXIT
fi

echo "VM_KERNEL=$kernel"
echo "VM_INITRD=$dir/$name.cpio.gz"
echo "VM_PATTERN=$dir/pattern.bin"
