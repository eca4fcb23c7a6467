# SPDX-License-Identifier: LGPL-2.1-or-later
# A raw-socket NBD client for what libnbd 1.14 cannot do: unknown
# options (the server must answer NBD_REP_ERR_UNSUP and stay in step)
# and extended headers (64-bit requests, extended reply chunks,
# NBD_REPLY_TYPE_BLOCK_STATUS_EXT).
#   python3 nbd-raw-client.py SOCKET EXPORT
# The export must be writable, at least 6 GiB, and empty.
import socket, struct, sys

MAGIC, IHAVEOPT, REPMAGIC = 0x4e42444d41474943, 0x49484156454F5054, 0x3e889045565a9
OPT_GO, OPT_EXT, OPT_SET_META, OPT_ABORT = 7, 11, 10, 2
REP_ACK, REP_INFO, REP_META = 1, 3, 4
ERR_UNSUP = 0x80000001
EXT_REQ, EXT_REP = 0x21e41c71, 0x6e8a278c
CMD_READ, CMD_WRITE, CMD_DISC, CMD_BS = 0, 1, 2, 7
F_REQ_ONE, F_PAYLOAD = 1 << 3, 1 << 5
T_NONE, T_DATA, T_HOLE, T_BS_EXT, T_ERROR = 0, 1, 2, 6, 0x8001

sock_path, export = sys.argv[1], sys.argv[2].encode()
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sock_path)

def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("FAIL: server closed the connection")
        b += c
    return b

def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)

magic, opt, hflags = struct.unpack(">QQH", recv(18))
check(magic == MAGIC and opt == IHAVEOPT and hflags & 1, "greeting")
s.sendall(struct.pack(">I", 3))

def option(o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)
    replies = []
    while True:
        m, ro, t, ln = struct.unpack(">QIII", recv(20))
        check(m == REPMAGIC and ro == o, "option reply header")
        replies.append((t, recv(ln)))
        if t == REP_ACK or t & 0x80000000:
            return replies

# Unknown options, with and without data: ERR_UNSUP, stream in step.
r = option(0xdead, b"x" * 100)
check(r[-1][0] == ERR_UNSUP, "unknown option with data: %r" % (r,))
r = option(4242)
check(r[-1][0] == ERR_UNSUP, "unknown option without data")
print("unknown options: NBD_REP_ERR_UNSUP, in step")

check(option(OPT_EXT)[-1][0] == REP_ACK, "NBD_OPT_EXTENDED_HEADERS")
q = b"base:allocation"
r = option(OPT_SET_META, struct.pack(">I", len(export)) + export +
           struct.pack(">II", 1, len(q)) + q)
check(r[-1][0] == REP_ACK and r[0][0] == REP_META, "SET_META_CONTEXT")
ctx = struct.unpack(">I", r[0][1][:4])[0]
r = option(OPT_GO, struct.pack(">I", len(export)) + export + struct.pack(">H", 0))
check(r[-1][0] == REP_ACK, "GO: %r" % (r,))
info = [x for x in r if x[0] == REP_INFO and x[1][:2] == b"\0\0"][0][1]
size, tflags = struct.unpack(">QH", info[2:])
check(size >= 6 << 30, "export too small for this test")

def request(cmd, flags, cookie, off, length, payload=b""):
    s.sendall(struct.pack(">IHHQQQ", EXT_REQ, flags, cmd, cookie, off, length) + payload)

def chunk():
    m, fl, t, cookie, off, ln = struct.unpack(">IHHQQQ", recv(32))
    check(m == EXT_REP, "extended reply magic")
    return fl, t, cookie, off, recv(ln)

# A 64-bit write far out, read back.
data = bytes(range(256)) * 16
off = (5 << 30) + 12345
request(CMD_WRITE, F_PAYLOAD, 1, off, len(data), data)
fl, t, cookie, roff, p = chunk()
check(cookie == 1 and t == T_NONE and fl & 1 and roff == off, "write reply")
request(CMD_READ, 0, 2, off, len(data))
fl, t, cookie, roff, p = chunk()
check(cookie == 2 and t == T_DATA and fl & 1 and roff == off, "read reply")
check(struct.unpack(">Q", p[:8])[0] == off and p[8:] == data, "read data")
# A hole comes back as OFFSET_HOLE.
request(CMD_READ, 0, 3, 1 << 30, 65536)
fl, t, cookie, roff, p = chunk()
check(t == T_HOLE and struct.unpack(">QI", p) == (1 << 30, 65536), "hole")
print("extended write/read: OK")

# Block status over more than 4 GiB in one request: 64-bit extents.
request(CMD_BS, 0, 4, 0, size)
fl, t, cookie, roff, p = chunk()
check(t == T_BS_EXT and fl & 1 and cookie == 4, "BLOCK_STATUS_EXT chunk")
cid, n = struct.unpack(">II", p[:8])
check(cid == ctx and n == (len(p) - 8) // 16 and n >= 1, "status header")
ext = [struct.unpack(">QQ", p[8 + 16 * i:24 + 16 * i]) for i in range(n)]
check(ext[0][0] >= 1 << 32 and ext[0][1] == 3, "first extent is a hole of 4 GiB or more: %r" % ext[:3])
check(sum(l for l, st in ext) <= size, "extents past the request")
print("64-bit block status: %d extents, first %d bytes" % (n, ext[0][0]))
# Where we wrote: data.
request(CMD_BS, F_REQ_ONE, 9, off, 4096)
fl, t, cookie, roff, p = chunk()
cid, n = struct.unpack(">II", p[:8])
check(n == 1 and roff == off, "REQ_ONE at the data")
ln, st = struct.unpack(">QQ", p[8:24])
check(st == 0 and 0 < ln <= 4096, "written range reported as data: %r" % ((ln, st),))
request(CMD_BS, F_REQ_ONE, 5, 0, size)
fl, t, cookie, roff, p = chunk()
cid, n = struct.unpack(">II", p[:8])
ln, st = struct.unpack(">QQ", p[8:24])
check(n == 1 and 0 < ln <= ext[0][0] and st == 3, "REQ_ONE: %r" % ((n, ln, st),))
# A compact request after extended headers: hard disconnect (once the
# server has the 32 bytes of an extended header).
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, CMD_READ, 6, 0, 512) + b"\0" * 4)
try:
    check(s.recv(1) == b"", "compact request accepted after extended headers")
except ConnectionResetError:
    pass
print("nbd-raw-client: OK")
