#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Write the seed corpora of the vhost fuzz targets (fuzz/corpus/vhost-vq,
# fuzz/corpus/vhost-msg): valid and malformed requests, chains and
# message sequences, in the input formats described at the top of
# fuzz-vhost-vq.c and fuzz-vhost-msg.c.  Deterministic; rerun after
# changing an input format:  fuzz/make-vhost-corpus.py
# The other files in those folders (hash names) are inputs libFuzzer
# found in runs of the targets (-Dfuzzing=true, clang), merged with
#   fuzz-vhost-vq -set_cover_merge=1 -max_len=66000 NEW corpus/vhost-vq RUN
# An input format change makes them stale: delete them then.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# virtio constants (vhost/vhost-user-protocol.h)
NEXT, WRITE, INDIRECT = 1, 2, 4
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13

# ---- vhost-vq: guest memory images -------------------------------------
QSIZE = 16
AVAIL, USED = 0x400, 0x800


def gpa(off):
    """Guest physical address of a buffer offset (fuzz-vhost-vq.c layout)."""
    return 0x10000 + off if off < 0x8000 else 0x30000 + (off - 0x8000)


class Mem:
    def __init__(self):
        self.b = bytearray(0x10000)
        self.nav = 0

    def desc(self, i, off_or_addr, length, flags=0, nxt=0, raw=False):
        addr = off_or_addr if raw else gpa(off_or_addr)
        struct.pack_into('<QIHH', self.b, 16 * i, addr, length, flags, nxt)

    def publish(self, head):
        struct.pack_into('<H', self.b, AVAIL + 4 + 2 * (self.nav % QSIZE), head)
        self.nav += 1
        struct.pack_into('<H', self.b, AVAIL + 2, self.nav)

    def hdr(self, off, typ, sector):
        struct.pack_into('<IIQ', self.b, off, typ, 0, sector)

    def put(self, off, data):
        self.b[off:off + len(data)] = data

    def bytes(self, flags):
        end = len(self.b)
        while end > 0 and self.b[end - 1] == 0:
            end -= 1
        return bytes([flags]) + bytes(self.b[:end])


def simple(typ, sector, data_off, data_len, data_write, flags=0, fill=None):
    m = Mem()
    m.hdr(0x1000, typ, sector)
    m.desc(0, 0x1000, 16, NEXT, 1)
    if data_len:
        m.desc(1, data_off, data_len, NEXT | (WRITE if data_write else 0), 2)
        if fill is not None:
            m.put(data_off, fill)
        m.desc(2, 0x1100, 1, WRITE)
    else:
        m.desc(0, 0x1000, 16, NEXT, 2)
        m.desc(2, 0x1100, 1, WRITE)
    m.publish(0)
    return m.bytes(flags)


def vq_seeds():
    s = {}
    s['in-4k'] = simple(T_IN, 0, 0x8000, 4096, True)
    s['out-4k'] = simple(T_OUT, 8, 0x8000, 4096, False, fill=b'\xa5' * 4096)
    s['out-event-idx'] = simple(T_OUT, 16, 0x8000, 512, False, flags=1,
                                fill=b'\x11' * 512)
    s['out-writethrough'] = simple(T_OUT, 24, 0x8000, 512, False, flags=4,
                                   fill=b'\x22' * 512)
    s['flush'] = simple(T_FLUSH, 0, 0, 0, False)
    s['get-id'] = simple(T_GET_ID, 0, 0x1200, 20, True)
    s['in-past-end'] = simple(T_IN, 2048, 0x8000, 512, True)
    s['in-unaligned'] = simple(T_IN, 0, 0x8000, 100, True)
    s['unknown-type'] = simple(99, 0, 0x8000, 512, True)

    # Discard / write zeroes segments.
    for name, typ, segs in (
            ('discard', T_DISCARD, [(0, 8, 0)]),
            ('write-zeroes-unmap', T_WZ, [(8, 8, 1), (64, 16, 0)]),
            ('discard-unmap-flag', T_DISCARD, [(0, 8, 1)]),
            ('write-zeroes-past-end', T_WZ, [(2040, 16, 0)])):
        m = Mem()
        m.hdr(0x1000, typ, 0)
        seg = b''.join(struct.pack('<QII', *x) for x in segs)
        m.put(0x1300, seg)
        m.desc(0, 0x1000, 16, NEXT, 1)
        m.desc(1, 0x1300, len(seg), NEXT, 2)
        m.desc(2, 0x1100, 1, WRITE)
        m.publish(0)
        s[name] = m.bytes(0)

    # Indirect: one descriptor pointing at a table of hdr, data, status.
    m = Mem()
    m.hdr(0x1000, T_IN, 4)
    struct.pack_into('<QIHH', m.b, 0x2000, gpa(0x1000), 16, NEXT, 1)
    struct.pack_into('<QIHH', m.b, 0x2010, gpa(0x8000), 2048, NEXT | WRITE, 2)
    struct.pack_into('<QIHH', m.b, 0x2020, gpa(0x1100), 1, WRITE, 0)
    m.desc(3, 0x2000, 48, INDIRECT)
    m.publish(3)
    s['indirect-in'] = m.bytes(2)
    s['indirect-not-negotiated'] = m.bytes(0)

    # Header split over two descriptors, zero-length descriptor, data and
    # status in one descriptor.
    m = Mem()
    m.hdr(0x1000, T_IN, 1)
    m.desc(0, 0x1000, 8, NEXT, 1)
    m.desc(1, 0x1008, 8, NEXT, 2)
    m.desc(2, 0x1010, 0, NEXT, 3)
    m.desc(3, 0x8000, 513, WRITE)
    m.publish(0)
    s['any-layout'] = m.bytes(0)

    # Several requests at once.
    m = Mem()
    for k in range(3):
        base = 0x1000 + 0x40 * k
        m.hdr(base, T_OUT if k % 2 else T_IN, 8 * k)
        m.desc(3 * k, base, 16, NEXT, 3 * k + 1)
        m.desc(3 * k + 1, 0x8000 + 0x1000 * k, 1024, NEXT | (0 if k % 2 else WRITE), 3 * k + 2)
        m.desc(3 * k + 2, base + 0x20, 1, WRITE)
        m.publish(3 * k)
    s['three-requests'] = m.bytes(1)

    # Malicious chains.
    m = Mem()
    m.hdr(0x1000, T_IN, 0)
    m.desc(0, 0x1000, 16, NEXT, 1)
    m.desc(1, 0x8000, 512, NEXT | WRITE, 2)
    m.desc(2, 0x8200, 512, NEXT | WRITE, 1)
    m.publish(0)
    s['loop'] = m.bytes(0)

    m = Mem()
    m.hdr(0x1000, T_IN, 0)
    m.desc(0, 0x1000, 16, NEXT, 1)
    m.desc(1, 0x90000, 512, NEXT | WRITE, 2, raw=True)
    m.desc(2, 0x1100, 1, WRITE)
    m.publish(0)
    s['out-of-range'] = m.bytes(0)

    m = Mem()
    m.hdr(0x1000, T_IN, 0)
    m.desc(0, 0x1000, 16, NEXT, 1)
    m.desc(1, 0x7f00, 512, NEXT | WRITE, 2)     # runs off region 0
    m.desc(2, 0x1100, 1, WRITE)
    m.publish(0)
    s['region-end'] = m.bytes(0)

    m = Mem()
    m.hdr(0x1000, T_OUT, 0)
    m.desc(0, 0x1000, 16, NEXT, 1)
    m.desc(1, 0x1100, 1, NEXT | WRITE, 2)
    m.desc(2, 0x8000, 512, 0)                  # readable after writable
    m.publish(0)
    s['wrong-direction'] = m.bytes(0)

    m = Mem()
    m.desc(0, 0x2000, 48, INDIRECT | NEXT, 1)
    struct.pack_into('<QIHH', m.b, 0x2000, gpa(0x2000), 48, INDIRECT, 0)
    m.publish(0)
    s['nested-indirect'] = m.bytes(2)

    m = Mem()
    struct.pack_into('<H', m.b, AVAIL + 2, 40)  # avail idx beyond the ring
    s['avail-runaway'] = m.bytes(0)

    m = Mem()
    m.publish(200)                              # head out of range
    s['bad-head'] = m.bytes(1)

    m = Mem()
    m.hdr(0x1000, T_IN, 0)
    m.desc(0, 0x1000, 16, NEXT, 1)
    m.desc(1, 0x8000, 512, NEXT | WRITE, 2)
    m.desc(2, 0x1100, 1, WRITE)
    m.publish(0)
    m.publish(0)                                # same head twice
    s['duplicate-head'] = m.bytes(1)
    return s


# ---- vhost-msg: message sequences ----------------------------------------
def rec_msg(req, payload=b'', flags=1, nfds=0, size=None):
    size = len(payload) if size is None else size
    return bytes([0, nfds]) + struct.pack('=III', req, flags, size) + payload


def rec_poke(off, data):
    out = b''
    while data:
        chunk = data[:255]
        out += bytes([1]) + struct.pack('<HB', off, len(chunk)) + chunk
        data = data[255:]
        off += len(chunk)
    return out


KICK = bytes([2])
u64 = lambda v: struct.pack('=Q', v)
state = lambda i, n: struct.pack('=II', i, n)
UVA = 0x7f0000000000


def qemu_setup(features=(1 << 32) | (1 << 30) | (1 << 28) | (1 << 29) | 0x7e44):
    r = rec_msg(1)                                   # GET_FEATURES
    r += rec_msg(15)                                 # GET_PROTOCOL_FEATURES
    r += rec_msg(16, u64(0x2209))                    # SET_PROTOCOL_FEATURES
    r += rec_msg(17)                                 # GET_QUEUE_NUM
    r += rec_msg(3)                                  # SET_OWNER
    r += rec_msg(24, struct.pack('=III', 0, 60, 0) + bytes(60))  # GET_CONFIG
    r += rec_msg(2, u64(features))                   # SET_FEATURES
    mem = struct.pack('=II', 2, 0)
    mem += struct.pack('=QQQQ', 0x10000, 0x8000, UVA, 0)
    mem += struct.pack('=QQQQ', 0x30000, 0x8000, UVA + 0x100000, 0x8000)
    mem += bytes(6 * 32)
    r += rec_msg(5, mem, flags=1 | 8, nfds=2)        # SET_MEM_TABLE, need_reply
    r += rec_msg(8, state(0, 16))                    # SET_VRING_NUM
    r += rec_msg(10, state(0, 0))                    # SET_VRING_BASE
    r += rec_msg(9, struct.pack('=IIQQQQ', 0, 0, UVA, UVA + 0x800, UVA + 0x400, 0))
    r += rec_msg(13, u64(0), nfds=1)                 # SET_VRING_CALL
    r += rec_msg(14, u64(0), nfds=1)                 # SET_VRING_ERR
    r += rec_msg(12, u64(0), nfds=1)                 # SET_VRING_KICK
    r += rec_msg(18, state(0, 1))                    # SET_VRING_ENABLE
    return r


def msg_seeds():
    s = {}
    req = struct.pack('<IIQ', T_IN, 0, 0)
    ring = Mem()
    ring.put(0x1000, req)
    ring.desc(0, 0x1000, 16, NEXT, 1)
    ring.desc(1, 0x8000, 1024, NEXT | WRITE, 2)
    ring.desc(2, 0x1100, 1, WRITE)
    ring.publish(0)
    pokes = rec_poke(0, bytes(ring.b[:48])) + rec_poke(0x1000, req) + \
        rec_poke(AVAIL, bytes(ring.b[AVAIL:AVAIL + 6]))
    s['qemu-boot'] = qemu_setup() + pokes + KICK + rec_msg(11, state(0, 0)) + \
        rec_msg(34)
    s['qemu-restart'] = qemu_setup() + pokes + KICK + rec_msg(11, state(0, 0)) + \
        rec_msg(10, state(0, 1)) + rec_msg(12, u64(0), nfds=1) + KICK
    two = struct.pack('=II', 2, 0) + \
        struct.pack('=QQQQ', 0x10000, 0x8000, UVA, 0) + \
        struct.pack('=QQQQ', 0x30000, 0x8000, UVA + 0x100000, 0x8000)
    s['mem-table-while-running'] = qemu_setup() + pokes + \
        rec_msg(5, two, nfds=2) + KICK
    s['set-config-wce'] = qemu_setup() + \
        rec_msg(25, struct.pack('=III', 32, 1, 0) + b'\x00', flags=9) + \
        rec_msg(25, struct.pack('=III', 0, 8, 0) + bytes(8), flags=9)
    s['bad-sizes'] = rec_msg(2, b'\x01\x02\x03\x04') + rec_msg(8, bytes(12)) + \
        rec_msg(5, struct.pack('=II', 9, 0)) + rec_msg(24, struct.pack('=III', 250, 10, 0) + bytes(10))
    s['bad-index'] = qemu_setup() + rec_msg(8, state(7, 16), flags=9) + \
        rec_msg(12, u64(0x105)) + rec_msg(18, state(0, 5), flags=9)
    s['unsupported'] = rec_msg(16, u64(0x9)) + rec_msg(6, u64(0), flags=9) + \
        rec_msg(40) + rec_msg(1000) + rec_msg(22, bytes(24))
    s['region-overflow'] = rec_msg(5, struct.pack('=II', 1, 0) +
                                   struct.pack('=QQQQ', 0xfffffffffffff000, 0x2000, 0, 0), nfds=1) + \
        rec_msg(5, struct.pack('=II', 1, 0) + struct.pack('=QQQQ', 0, 0x20000, 0, 0x8000), nfds=1)
    s['rings-outside'] = qemu_setup() + \
        rec_msg(9, struct.pack('=IIQQQQ', 0, 0, UVA + 0x7ff0, UVA + 0x800, UVA + 0x401, 0)) + \
        rec_msg(12, u64(0), nfds=1) + KICK
    s['no-protocol-features'] = rec_msg(2, u64((1 << 32) | (1 << 28))) + \
        rec_msg(5, two, nfds=2) + \
        rec_msg(8, state(0, 16)) + \
        rec_msg(9, struct.pack('=IIQQQQ', 0, 0, UVA, UVA + 0x800, UVA + 0x400, 0)) + \
        rec_msg(12, u64(0), nfds=1) + pokes + KICK + rec_msg(4)
    return s


def write(target, seeds):
    # Only the named seeds are (re)written: the files with hash names next
    # to them were found by libFuzzer (merged with -set_cover_merge=1).
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), 'wb') as fp:
            fp.write(data)


write('vhost-vq', vq_seeds())
write('vhost-msg', msg_seeds())
