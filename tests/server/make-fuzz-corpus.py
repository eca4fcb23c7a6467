#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes the seed corpora of fuzz/fuzz-server.c (whole client
# conversations, plaintext and STARTTLS) and fuzz/fuzz-server-proto.c (one
# message per decoder).
# Run from the top of the tree; the output is committed.
import hashlib, os, ssl, struct

IHAVEOPT = 0x49484156454F5054
REQ, EXT_REQ = 0x25609513, 0x21e41c71

def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data

def info_req(name=b"", reqs=()):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", len(reqs)) + \
        b"".join(struct.pack(">H", r) for r in reqs)

def meta_req(name=b"", queries=()):
    return struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries)) + \
        b"".join(struct.pack(">I", len(q)) + q for q in queries)

def req(cmd, off=0, ln=0, flags=0, cookie=1, payload=b""):
    return struct.pack(">IHHQQI", REQ, flags, cmd, cookie, off, ln) + payload

def ereq(cmd, off=0, ln=0, flags=0, cookie=1, payload=b""):
    return struct.pack(">IHHQQQ", EXT_REQ, flags, cmd, cookie, off, ln) + payload

FLAGS = struct.pack(">I", 3)
cmds = (req(1, 0, 512, 1, 1, b"w" * 512) + req(0, 0, 512, 0, 2) +
        req(0, 4096, 70000, 0, 3) + req(3, cookie=4) + req(4, 8192, 4096, 0, 5) +
        req(6, 0, 4096, 2, 6) + req(6, 0, 4096, 16, 7) + req(5, 0, 65536, 0, 8) +
        req(7, 0, 1 << 20, 8, 9) + req(7, 0, 1 << 20, 0, 10) + req(0, 0, 4096, 4, 11))
seeds = {
    "go-structured": FLAGS + opt(8) + opt(10, meta_req(b"", [b"base:allocation"])) +
        opt(7, info_req(b"", [0, 1, 2, 3])) + cmds + req(2),
    "go-simple": FLAGS + opt(7, info_req()) + cmds + req(2),
    "export-name": struct.pack(">I", 1) + opt(1, b"") + req(1, 100, 3, 0, 1, b"abc") +
        req(0, 100, 3) + req(2),
    "export-name-ro": FLAGS + opt(1, b"ro") + req(1, 0, 1, 0, 1, b"x") + req(4, 0, 1) +
        req(0, 0, 1) + req(2),
    "extended": FLAGS + opt(11) + opt(10, meta_req(b"", [b"base:allocation"])) +
        opt(7, info_req(b"", [3])) +
        ereq(1, 0, 512, 32, 1, b"e" * 512) + ereq(0, 0, 512, 0, 2) +
        ereq(7, 0, 1 << 20, 0, 3) + ereq(7, 0, 1 << 20, 8, 4) +
        ereq(0, 0, 8, 32, 5, b"12345678") + ereq(4, 0, 1 << 20, 0, 6) +
        ereq(1, 0, 8, 0, 7) + ereq(2),
    "list-info-abort": FLAGS + opt(3) + opt(6, info_req(b"ro", [1, 2, 3, 99])) +
        opt(6, info_req(b"nope")) + opt(9, meta_req(b"", [])) +
        opt(9, meta_req(b"ro", [b"base:", b"qemu:x"])) + opt(2),
    "unknown-options": FLAGS + opt(99, b"x" * 40) + opt(4) + opt(5) + opt(5, b"x") +
        opt(8, b"bad") + opt(11, b"bad") + opt(6, b"\xff\xff\xff\xff\0\0") +
        opt(10, meta_req(b"", [b"nocolon"])) + opt(7, info_req(b"", [1, 1])) + opt(2),
    "oversize-write": FLAGS + opt(7, info_req()) + req(1, 0, 70000, 0, 1, b"z" * 70000) +
        req(0, 0, 100, 0, 2) + req(2),
    "bad-magic": FLAGS + opt(7, info_req()) + b"\x11" * 28,
    "bad-flags": struct.pack(">I", 0x80),
    "truncated": FLAGS + opt(7, info_req()) + req(1, 0, 4096, 0, 1, b"t" * 100),
    "meta-before-sr": FLAGS + opt(10, meta_req(b"", [b"base:allocation"])) +
        opt(1, b"") + req(7, 0, 512),
    "ext-oversize-payload": FLAGS + opt(11) + opt(7, info_req()) +
        ereq(1, 0, 1 << 40, 32, 1),
    "past-end": FLAGS + opt(8) + opt(7, info_req()) + req(0, (1 << 20) - 1, 2) +
        req(1, (1 << 20), 1, 0, 2, b"p") + req(99, 0, 0, 0, 3) + req(0, 0, 1, 1 << 9, 4) +
        req(3, 1, 0, 0, 5) + req(2, 5, 5),
}
os.makedirs("fuzz/corpus/server", exist_ok=True)
for name, data in seeds.items():
    open("fuzz/corpus/server/" + name, "wb").write(data)

# TLS seeds of fuzz-server: a mode byte ('T' for --tls=on, 'R' for
# --tls=require), then a client that sends STARTTLS and a truncated, whole
# or garbled ClientHello (made by Python's ssl; against the harness's PSK
# server it cannot finish).  The ClientHello is random, so these are named
# by their hash.
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
tls_seeds = [
    b"T" + FLAGS + STARTTLS + hello[:60],
    b"R" + FLAGS + STARTTLS + hello,
    b"R" + FLAGS + opt(7, info_req()) + opt(3) + STARTTLS +
        b"\x16\x03\x01\xff\xff" + b"\x01" * 40,
    b"T" + FLAGS + opt(3) + opt(6, info_req(b"ro")) + opt(5, b"x") +
        STARTTLS + hello[:5] + bytes(range(256)),
    b"R" + FLAGS + opt(1, b""),
    b"T" + FLAGS + opt(8) + STARTTLS + b"\x15\x03\x03\x00\x02\x02\x28",
]
for data in tls_seeds:
    open("fuzz/corpus/server/" + hashlib.sha1(data).hexdigest(), "wb").write(data)

# server-proto: first byte selects the decoder (see fuzz-server-proto.c).
proto = {
    "greeting": b"\0" + struct.pack(">QQH", 0x4e42444d41474943, IHAVEOPT, 3),
    "option": b"\1" + opt(7, info_req(b"a", [1])),
    "info-request": b"\2" + info_req(b"disk", [0, 1, 2, 3]),
    "meta-request": b"\3" + meta_req(b"d", [b"base:allocation", b"x:"]),
    "rep-server": b"\4" + struct.pack(">I", 4) + b"namedescription",
    "info-block": b"\5" + struct.pack(">HIII", 3, 1, 4096, 1 << 25),
    "request": b"\6" + req(1, 4096, 512, 1, 7),
    "ext-request": b"\7" + ereq(7, 0, 1 << 33, 8, 9),
    "reply": b"\x08" + struct.pack(">IHHQI", 0x668e33ef, 1, 0, 5, 0),
    "ext-reply": b"\x28" + struct.pack(">IHHQQQ", 0x6e8a278c, 1, 1, 5, 0, 12),
    "offset-data": b"\x09" + struct.pack(">Q", 10) + b"datadata",
    "error": b"\x0a" + struct.pack(">IH", 5, 3) + b"bad" + struct.pack(">Q", 9),
    "block-status": b"\x0b" + struct.pack(">III", 1, 4096, 3) + struct.pack(">II", 512, 0),
    "block-status-ext": b"\x0c" + struct.pack(">IIQQ", 1, 1, 1 << 40, 3),
    "names": b"\x0d" + struct.pack(">I", 0x80000005),
}
os.makedirs("fuzz/corpus/server-proto", exist_ok=True)
for name, data in proto.items():
    open("fuzz/corpus/server-proto/" + name, "wb").write(data)
print("wrote %d + %d + %d seeds" % (len(seeds), len(tls_seeds), len(proto)))
