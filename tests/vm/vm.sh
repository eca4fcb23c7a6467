# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for tests that boot a real Linux guest under qemu (TCG: KVM on
# our CI machines is PVM-based and cannot run a stock kernel, see
# ../shared/docs/vm-e2e.md).  Source after tests/functions.sh:
#
#   vm_setup [--fio]        require qemu and the guest tools (a failure in
#                           CI), build or reuse the guest (build-guest.sh)
#   vm_vhost_disk SOCK [N]  qemu arguments for a vhost-user-blk disk with
#                           N queues (sets up shared guest memory)
#   vm_boot NAME CMDLINE TIMEOUT QEMU-DISK-ARGS...
#                           boot; the console goes to $tmpdir/NAME.console;
#                           returns non-zero if qemu failed or timed out
#   vm_get NAME KEY         value of the guest's last "VDT KEY=..." line
#   vm_expect NAME KEY VALUE  fail unless vm_get gives VALUE
#
# Guest scenarios are tests/vm/guest/*.sh (kernel argument
# vdt.script=NAME); their output lines start with "VDT ".
: "${tmpdir:?source tests/functions.sh first}"

VM_MEM=${VM_MEM:-256}
VM_SMP=${VM_SMP:-1}

vm_setup ()
{
    requires qemu-system-x86_64 --version
    requires test -x /bin/busybox
    requires cpio --version
    local out
    out=$("$top_srcdir/tests/vm/build-guest.sh" "$@") ||
        fail "building the test guest failed"
    eval "$out"
    export VM_KERNEL VM_INITRD VM_PATTERN
}

# Shared guest RAM (vhost-user needs the VMM to hand its memory over)
# plus the vhost-user-blk-pci device.
vm_vhost_disk ()
{
    local sock=$1 nq=${2:-1}
    echo "-object memory-backend-memfd,id=mem,size=${VM_MEM}M,share=on" \
         "-numa node,memdev=mem" \
         "-chardev socket,id=vub0,path=$sock" \
         "-device vhost-user-blk-pci,chardev=vub0,num-queues=$nq"
}

vm_boot ()
{
    local name=$1 cmdline=$2 timeout=$3
    shift 3
    local console=$tmpdir/$name.console pid i rc=0
    : > "$console"
    # shellcheck disable=SC2068
    qemu-system-x86_64 -accel tcg -M pc -m "$VM_MEM" -smp "$VM_SMP" \
        -nodefaults -no-user-config -display none -monitor none \
        -serial "file:$console" -no-reboot \
        -kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 $cmdline" \
        $@ 2> "$tmpdir/$name.qemu.log" &
    pid=$!
    cleanup_fn "kill -9 $pid 2>/dev/null"
    for (( i = 0; i < timeout * 10; i++ )); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "vm_boot: $name: timed out after ${timeout}s" >&2
        kill -9 "$pid" 2>/dev/null
        rc=1
    fi
    wait "$pid" || rc=$?
    if [ -s "$tmpdir/$name.qemu.log" ]; then
        sed "s/^/[$name qemu] /" "$tmpdir/$name.qemu.log" >&2
    fi
    grep -a '^VDT ' "$console" | tr -d '\r' | sed "s/^/[$name guest] /" >&2 || true
    if [ "$(vm_get "$name" status)" != OK ]; then
        echo "vm_boot: $name: the guest did not finish OK; console tail:" >&2
        tail -n 40 "$console" | sed "s/^/[$name console] /" >&2
        rc=1
    fi
    return $rc
}

vm_get ()
{
    grep -a '^VDT ' "$tmpdir/$1.console" | tr -d '\r' | tr ' ' '\n' |
        sed -n "s/^$2=//p" | tail -n1
}

vm_expect ()
{
    local got
    got=$(vm_get "$1" "$2")
    [ "$got" = "$3" ] || fail "$1: guest reported $2='$got', expected '$3'"
}
