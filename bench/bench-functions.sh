# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers shared by the bench/*.sh scripts (sourced, not run).  The
# scripts that start servers keep the server's PID in $pid.

now () { date +%s.%N; }

# median: of the numbers on stdin, one per line.
median () { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# ratio A B: A/B with two decimals, n/a if B is 0.
ratio () { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b) if b else 'n/a')" "$1" "$2"; }

# unit TEST: seq-* rows are MiB/s, the others IOPS.
unit () { case $1 in seq-*) echo "MiB/s" ;; *) echo "IOPS" ;; esac; }

# wait_nbd NAME URI: wait up to 10 s for an NBD server to answer at URI,
# or exit the script.
wait_nbd () {
    for _ in $(seq 100); do
        nbdinfo --size "$2" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): $1 did not start ($2)" >&2
    exit 1
}

# evict_cache FILE: drop FILE's clean pages from the page cache
# (POSIX_FADV_DONTNEED; sync first).  A buffered 4 KiB write into a
# cached page costs the kernel (ext4_block_write_begin walks every block
# of the folio) in proportion to the size of the folio it lands in, and
# that size is whatever the previous row's reads and writes left: large
# for aligned 1 MiB I/O, small for a qcow2 file whose clusters are not
# aligned to their size.  Starting each such run from an uncached file
# gives every server the same state instead of its predecessor's.
evict_cache () {
    python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}

# warm_memory: touch WARM_MIB MiB of anonymous memory (default 3072, at
# most half of what is available; 0 = do nothing) and free it again.  On
# a VM whose balloon reports free memory to the host, the first touch of
# a page the host has taken back faults it in on the host, and filling
# the page cache with a timed write then measures those faults: 1 GiB of
# `dd bs=1M` into a new file took 0.5-2.0 s after `drop_caches` and 2 s,
# 0.19-0.24 s right after this.  The faults also cost more for large
# folios (aligned writes) than for small ones, so they favoured whichever
# format's data sits misaligned in its file.  Call it last before the
# timed command: the host takes the memory back again a few seconds after
# it is freed.
warm_memory () {
    local mib=${WARM_MIB:-3072} avail
    avail=$(awk '/^MemAvailable:/ {print int($2 / 2048)}' /proc/meminfo)
    [ "$mib" -gt "$avail" ] && mib=$avail
    [ "$mib" -gt 0 ] || return 0
    dd if=/dev/zero of=/dev/null bs="${mib}M" count=1 iflag=fullblock status=none
}

# stop: kill the server in $pid and reap it.
stop () { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=; }

# copy_rate CMD...: run CMD, print $bytes / its wall time in MiB/s.
copy_rate () {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    python3 -c "print('%.0f' % ($bytes / 1048576 / ($t1 - $t0)))"
}

# fio_iops URI RW QD: 4 KiB random I/O with fio's nbd engine for $secs
# seconds over $size; prints the IOPS.
fio_iops () {
    fio --name=bench --ioengine=nbd --uri="$1" --rw="$2" --bs=4k \
        --iodepth="$3" --runtime="$secs" --time_based --size="$size" \
        --randrepeat=0 --output-format=json 2>/dev/null \
      | python3 -c 'import json,sys; t=sys.stdin.read(); j=json.loads(t[t.index("{"):])["jobs"][0]; print("%.0f" % (j["read"]["iops"] + j["write"]["iops"]))'
}
