#!/bin/busybox sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# PID 1 of the vdisk test guest (tests/vm/build-guest.sh puts it in the
# initramfs as /init).  It loads the virtio modules, waits for the disk,
# runs the scenario named on the kernel command line (vdt.script=NAME:
# /scenarios/NAME.sh) and powers off.  Every line meant for the host
# starts with "VDT " (grep the serial console); the last one is
# "VDT status=OK" or "VDT status=FAIL <why>".
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# util-linux and fio from the host live in /opt (with their libraries).
export PATH=/opt/bin:/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/opt/lib

vdt_say () { echo "VDT $*" > /dev/console; }
vdt_finish () {
    vdt_say "uptime=$(cut -d' ' -f1 /proc/uptime)"
    vdt_say "status=$*"
    sync
    poweroff -f
    sleep 5
    echo o > /proc/sysrq-trigger
}
vdt_fail () { vdt_finish "FAIL $*"; }

# Kernel command line: vdt.script=NAME and vdt.KEY=VALUE pairs, exported
# to the scenario as VDT_KEY.
SCRIPT=
for kv in $(cat /proc/cmdline); do
    case "$kv" in
        vdt.script=*) SCRIPT=${kv#vdt.script=} ;;
        vdt.*=*) k=${kv#vdt.}; k=${k%%=*}; export "VDT_$k=${kv#*=}" ;;
    esac
done

# Debian builds virtio as modules; load them in dependency order.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev \
         virtio_pci virtio_blk; do
    [ -f "/lib/modules/$m.ko" ] && insmod "/lib/modules/$m.ko" 2>/dev/null
done

DEV=${VDT_dev:-vda}
i=0
while [ ! -b "/dev/$DEV" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -b "/dev/$DEV" ] || vdt_fail "no /dev/$DEV"

[ -f "/scenarios/$SCRIPT.sh" ] || vdt_fail "unknown scenario '$SCRIPT'"
. "/scenarios/$SCRIPT.sh"
vdt_fail "scenario $SCRIPT returned"
