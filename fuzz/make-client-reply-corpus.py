#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Copyright (C) 2026 the vdisk authors
#
# Writes the seed corpus of fuzz/fuzz-client-reply.c: complete server
# sides of conversations with the vdisk client (handshake, then replies
# to the six commands the target submits), one file per negotiation path
# and reply style, plus a few broken ones.  Byte 0 of each file is the
# target's control byte (handshake choices | piece size << 4).
#   fuzz/make-client-reply-corpus.py fuzz/corpus/client-reply
import os
import struct
import sys

NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454F5054
REPMAGIC = 0x0003e889045565a9
OLDVERSION = 0x0000420281861253
SIMPLE, STRUCT, EXT = 0x67446698, 0x668e33ef, 0x6e8a278c

OPT_EXPORT_NAME, OPT_GO, OPT_SR, OPT_META, OPT_EH = 1, 7, 8, 10, 11
REP_ACK, REP_INFO, REP_META = 1, 3, 4
ERR_UNSUP, ERR_UNKNOWN, ERR_SHUTDOWN, ERR_TLS = (0x80000001, 0x80000006,
                                                 0x80000007, 0x80000005)
NO_EH, NO_SR, NO_META, NO_GO = 1, 2, 4, 8
DONE = 1
T_NONE, T_DATA, T_HOLE, T_BS, T_BSX = 0, 1, 2, 5, 6
T_ERR, T_ERR_OFF = 0x8001, 0x8002
FLAGS = 0x1 | 0x4 | 0x8 | 0x20 | 0x40 | 0x400  # HAS, FLUSH, FUA, TRIM, ZEROES, CACHE

# The commands the target submits, in order: (type, offset, count).
CMDS = [(0, 0, 4096), (1, 4096, 512), (7, 0, 65536), (3, 0, 0),
        (0, 8192, 20000), (4, 0, 4096)]


def cookie(i):
    return ((i + 1) << 32) | i


def greeting(gflags=3):
    return struct.pack(">QQH", NBDMAGIC, IHAVEOPT, gflags)


def rep(opt, typ, data=b""):
    return struct.pack(">QIII", REPMAGIC, opt, typ, len(data)) + data


def info_export(size=1 << 20, flags=FLAGS):
    return rep(OPT_GO, REP_INFO, struct.pack(">HQH", 0, size, flags))


def info_block(mn=1, pref=4096, mx=1 << 25):
    return rep(OPT_GO, REP_INFO, struct.pack(">HIII", 3, mn, pref, mx))


def meta(cid=1):
    name = b"base:allocation"
    return rep(OPT_META, REP_META, struct.pack(">I", cid) + name)


def simple(i, err=0, data=b""):
    return struct.pack(">IIQ", SIMPLE, err, cookie(i)) + data


def chunk(i, typ, payload, flags=DONE, ext=False):
    if ext:
        return struct.pack(">IHHQQQ", EXT, flags, typ, cookie(i),
                           CMDS[i][1], len(payload)) + payload
    return struct.pack(">IHHQI", STRUCT, flags, typ, cookie(i),
                       len(payload)) + payload


def data_chunk(i, off, data, flags=DONE, ext=False):
    return chunk(i, T_DATA, struct.pack(">Q", off) + data, flags, ext)


def hole_chunk(i, off, n, flags=0, ext=False):
    return chunk(i, T_HOLE, struct.pack(">QI", off, n), flags, ext)


def status_chunk(i, extents, cid=1, ext=False):
    if ext:
        p = struct.pack(">II", cid, len(extents))
        p += b"".join(struct.pack(">QQ", l, f) for l, f in extents)
        return chunk(i, T_BSX, p, DONE, ext)
    p = struct.pack(">I", cid)
    p += b"".join(struct.pack(">II", l, f) for l, f in extents)
    return chunk(i, T_BS, p, DONE, ext)


def error_chunk(i, err, msg, off=None, ext=False):
    m = msg.encode()
    if off is None:
        return chunk(i, T_ERR, struct.pack(">IH", err, len(m)) + m, DONE, ext)
    return chunk(i, T_ERR_OFF, struct.pack(">IH", err, len(m)) + m +
                 struct.pack(">Q", off), DONE, ext)


def structured_replies(ext=False):
    r = b""
    # Out of order: the flush first, then the second read in pieces.
    r += chunk(3, T_NONE, b"", DONE, ext)
    r += hole_chunk(4, 8192 + 10000, 10000, 0, ext)
    r += data_chunk(4, 8192, bytes(range(256)) * 39 + bytes(16), 0, ext)
    r += chunk(4, T_NONE, b"", DONE, ext)
    r += data_chunk(0, 0, b"\xab" * 4096, DONE, ext)
    r += chunk(1, T_NONE, b"", DONE, ext)
    r += status_chunk(2, [(4096, 0), (61440, 3)], 1, ext)
    r += error_chunk(5, 5, "trim failed", None, ext)
    return r


def handshake_eh():
    return (greeting() + rep(OPT_EH, REP_ACK) + meta() + rep(OPT_META, REP_ACK)
            + info_export() + info_block() + rep(OPT_GO, REP_ACK))


def handshake_sr():
    return (greeting() + rep(OPT_EH, ERR_UNSUP) + rep(OPT_SR, REP_ACK) + meta()
            + rep(OPT_META, REP_ACK) + info_export() + info_block(512, 4096, 65536)
            + rep(OPT_GO, REP_ACK))


def seeds():
    s = {}
    s["eh"] = bytes([0x00]) + handshake_eh() + structured_replies(True)
    s["eh-pieces"] = bytes([0x10]) + handshake_eh() + structured_replies(True)
    s["sr"] = bytes([0x00]) + handshake_sr() + structured_replies()
    s["sr-pieces5"] = bytes([0x20]) + handshake_sr() + structured_replies()
    s["sr-pieces64"] = bytes([0x30]) + handshake_sr() + structured_replies()
    # Simple replies: no EH, no SR (GO only).
    simple_side = (greeting() + info_export() + rep(OPT_GO, REP_ACK) +
                   simple(0, 0, b"\x01" * 4096) + simple(1) +
                   simple(2, 22) + simple(3) +
                   simple(4, 0, b"\x02" * 20000) + simple(5, 5))
    s["simple"] = bytes([NO_EH | NO_SR]) + simple_side
    # GO unsupported: EXPORT_NAME fallback, with and without NO_ZEROES.
    s["export-name"] = (bytes([NO_EH | NO_SR]) + greeting(1) +
                        rep(OPT_GO, ERR_UNSUP) +
                        struct.pack(">QH", 1 << 20, FLAGS) + bytes(124) +
                        simple(0, 0, bytes(4096)) + simple(1) + simple(2, 22)
                        + simple(3) + simple(4, 0, bytes(20000)) + simple(5))
    s["non-fixed"] = (bytes([0]) + greeting(2) + struct.pack(">QH", 1 << 20, FLAGS)
                      + simple(0, 0, bytes(4096)) + simple(1))
    # Errors during the handshake.
    s["oldstyle"] = bytes([0]) + struct.pack(">QQQI", NBDMAGIC, OLDVERSION,
                                             1 << 20, 3) + bytes(124)
    s["go-unknown"] = (bytes([NO_EH | NO_SR]) + greeting() +
                       rep(OPT_GO, ERR_UNKNOWN, b"no such export"))
    s["go-tls"] = bytes([NO_EH | NO_SR]) + greeting() + rep(OPT_GO, ERR_TLS)
    s["shutdown"] = bytes([0]) + greeting() + rep(OPT_EH, ERR_SHUTDOWN)
    s["meta-error"] = (bytes([NO_EH]) + greeting() + rep(OPT_SR, REP_ACK) +
                       rep(OPT_META, ERR_UNSUP) + info_export() +
                       rep(OPT_GO, REP_ACK) + structured_replies())
    # Broken replies after a good handshake.
    s["bad-magic"] = bytes([0x00]) + handshake_sr() + b"\xde\xad\xbe\xef" * 8
    s["bad-cookie"] = (bytes([0x00]) + handshake_sr() +
                       struct.pack(">IHHQI", STRUCT, DONE, 0, 0x1234, 0))
    s["error-offset"] = (bytes([0x00]) + handshake_sr() +
                         error_chunk(0, 5, "bad sector", 100) +
                         error_chunk(1, 28, "full"))
    s["eshutdown"] = (bytes([0x00]) + handshake_sr() +
                      error_chunk(0, 108, "going away") + chunk(1, T_NONE, b""))
    s["huge-size"] = (bytes([NO_EH]) + greeting() + rep(OPT_SR, REP_ACK) +
                      meta() + rep(OPT_META, REP_ACK) +
                      info_export(size=2**64 - 1) + rep(OPT_GO, REP_ACK))
    s["overlap"] = (bytes([0x00]) + handshake_sr() +
                    data_chunk(0, 0, bytes(3000), 0) +
                    data_chunk(0, 2000, bytes(2096), DONE))
    return s


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, blob in seeds().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
