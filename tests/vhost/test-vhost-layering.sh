#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vhost/ layering (docs/internals/vhost-user.md): the parts the fuzz
# targets drive make no system calls, only vhost/vhost-user-protocol.h
# defines the wire constants, and nothing outside vhost/ (but the tests,
# fuzz targets and benchmarks) reaches past vhost/vhost.h.
. "$top_srcdir/tests/functions.sh"
cd "$top_srcdir"
bad=0
syscalls='\b(open|read|write|pread|pwrite|send|recv|sendmsg|recvmsg|socket|connect|accept4?|mmap|munmap|poll|close|ioctl|eventfd|pthread_create|fstat)[[:space:]]*\('
hits=$(grep -nE "$syscalls" vhost/mem.c vhost/virtq.c vhost/msg.c vhost/blk.c || true)
if [ -n "$hits" ]; then
    echo "$hits"
    echo "^^ vhost/{mem,virtq,msg,blk}.c must stay free of system calls" >&2
    bad=1
fi
hits=$(grep -rnE '^#define (VHOST_USER_|VHOST_VRING_|VHOST_SET_CONFIG|VHOST_MEMORY|VHOST_F_|VIRTIO_|VIRTQ_)' \
       --include='*.[ch]' common proto lib server vhost cli tests fuzz bench 2>/dev/null |
       grep -v '^vhost/vhost-user-protocol.h:' || true)
if [ -n "$hits" ]; then
    echo "$hits"
    echo "^^ vhost-user and virtio constants belong in vhost/vhost-user-protocol.h" >&2
    bad=1
fi
hits=$(grep -rnE '#include "(device|virtq|mem|msg|blk|le|vhost-user-protocol)\.h"' cli server lib 2>/dev/null || true)
if [ -n "$hits" ]; then
    echo "$hits"
    echo "^^ outside vhost/, use vhost/vhost.h only" >&2
    bad=1
fi
[ $bad = 0 ] || fail "vhost layering rules broken"
echo "test-vhost-layering: OK"
