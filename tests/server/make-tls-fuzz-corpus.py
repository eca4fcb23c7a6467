#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes the TLS seeds of fuzz/fuzz-server.c: a mode byte ('T' for
# --tls=on, 'R' for --tls=require), then a client that sends STARTTLS
# and a truncated, whole or garbled ClientHello (made by Python's ssl,
# against the harness's PSK server it cannot finish).  Run from the top
# of the tree; the output is committed.
import hashlib, os, ssl, struct

IHAVEOPT = 0x49484156454F5054
FLAGS = struct.pack(">I", 3)

def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data

def info_req(name=b""):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", 0)

def client_hello():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()

hello = client_hello()
STARTTLS = opt(5)
seeds = [
    b"T" + FLAGS + STARTTLS + hello[:60],
    b"R" + FLAGS + STARTTLS + hello,
    b"R" + FLAGS + opt(7, info_req()) + opt(3) + STARTTLS +
        b"\x16\x03\x01\xff\xff" + b"\x01" * 40,
    b"T" + FLAGS + opt(3) + opt(6, info_req(b"ro")) + opt(5, b"x") +
        STARTTLS + hello[:5] + bytes(range(256)),
    b"R" + FLAGS + opt(1, b""),
    b"T" + FLAGS + opt(8) + STARTTLS + b"\x15\x03\x03\x00\x02\x02\x28",
]
d = "fuzz/corpus/server"
for s in seeds:
    with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
        f.write(s)
print("%d seeds, %d bytes" % (len(seeds), sum(map(len, seeds))))
