#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# A small NBD server for the TLS error paths of the client, on a Unix
# socket.  It does no TLS itself: it logs what the client sends in
# plaintext (so a test can check that an nbds client sends nothing but
# its flags, NBD_OPT_STARTTLS and NBD_OPT_ABORT) and misbehaves on
# purpose after STARTTLS.
#   tls-fake-server.py SOCKET MODE LOG
# MODE:
#   refuse   NBD_REP_ERR_POLICY to STARTTLS
#   unsup    NBD_REP_ERR_UNSUP to STARTTLS
#   nofixed  no fixed newstyle in the greeting; log every byte received
#   garbage  ACK STARTTLS, then (later) 64 bytes that are not TLS
#   inject   ACK STARTTLS with 16 more bytes in the same write
#   hang     ACK STARTTLS, then silence
#   mitm     a man in the middle (arguments UPSTREAM CUT): the first
#            connection is relayed to the unix socket UPSTREAM, byte for
#            byte, and cut once the client has sent CUT bytes; every later
#            one is answered as in "refuse", as an attacker who cut the
#            line would answer a client's reconnection to get plaintext
# LOG gets one line per event: "accept", "flags N", "option N",
# "received N" (nofixed), "relay", "cut", "eof".  Connections are served
# one at a time (but for the relayed one), for ever; the test kills the
# server.
import os
import socket
import struct
import sys
import threading
import time

IHAVEOPT = b"IHAVEOPT"
REPLY_MAGIC = 0x3E889045565A9
OPT_ABORT, OPT_STARTTLS = 2, 5
REP_ACK = 1
REP_ERR_UNSUP = 2**31 + 1
REP_ERR_POLICY = 2**31 + 2

path, mode, logpath = sys.argv[1:4]
if mode == "mitm":
    upstream, cut = sys.argv[4], int(sys.argv[5])
log = open(logpath, "a", buffering=1)


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def reply(c, opt, typ, data=b""):
    return struct.pack(">QIII", REPLY_MAGIC, opt, typ, len(data)) + data


def relay(c):
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(upstream)

    def pump(src, dst, limit):
        n = 0
        try:
            while limit is None or n < limit:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
                n += len(d)
        except OSError:
            pass
        if limit is not None and n >= limit:
            log.write("cut\n")
        for x in (c, u):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    t = threading.Thread(target=pump, args=(u, c, None), daemon=True)
    t.start()
    pump(c, u, cut)
    t.join()
    u.close()
    c.close()


def serve(c, mode):
    flags = 0 if mode == "nofixed" else 3  # FIXED_NEWSTYLE | NO_ZEROES
    c.sendall(b"NBDMAGIC" + IHAVEOPT + struct.pack(">H", flags))
    if mode == "nofixed":
        n = 0
        c.settimeout(5)
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    break
                n += len(d)
        except OSError:
            pass
        log.write("received %d\n" % n)
        return
    (cflags,) = struct.unpack(">I", recv_exact(c, 4))
    log.write("flags %d\n" % cflags)
    while True:
        magic, opt, length = struct.unpack(">8sII", recv_exact(c, 16))
        if magic != IHAVEOPT:
            log.write("bad magic\n")
            return
        recv_exact(c, length)
        log.write("option %d\n" % opt)
        if opt == OPT_ABORT:
            c.sendall(reply(c, opt, REP_ACK))
            return
        if opt != OPT_STARTTLS:
            c.sendall(reply(c, opt, REP_ERR_UNSUP))
            continue
        if mode == "refuse":
            c.sendall(reply(c, opt, REP_ERR_POLICY, b"no TLS here"))
        elif mode == "unsup":
            c.sendall(reply(c, opt, REP_ERR_UNSUP))
        elif mode == "garbage":
            c.sendall(reply(c, opt, REP_ACK))
            time.sleep(0.2)
            c.sendall(b"\x00garbage, not a TLS record\xff" * 2 + b"\x01" * 8)
            time.sleep(1)
            return
        elif mode == "inject":
            c.sendall(reply(c, opt, REP_ACK) + b"injected bytes!!")
            time.sleep(1)
            return
        elif mode == "hang":
            c.sendall(reply(c, opt, REP_ACK))
            time.sleep(30)
            return


try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
accepted = 0
while True:
    c, _ = s.accept()
    accepted += 1
    log.write("accept\n")
    if mode == "mitm" and accepted == 1:
        log.write("relay\n")
        threading.Thread(target=relay, args=(c,), daemon=True).start()
        continue
    try:
        serve(c, "refuse" if mode == "mitm" else mode)
    except (EOFError, OSError):
        pass
    log.write("eof\n")
    c.close()
