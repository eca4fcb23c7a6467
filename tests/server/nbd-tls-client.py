# SPDX-License-Identifier: LGPL-2.1-or-later
# A raw NBD client for the TLS rules libnbd does not let a test break or
# observe: option replies byte for byte before and after STARTTLS, the
# state reset, a second STARTTLS, and clients that stall inside the TLS
# handshake.  Python's ssl module does the TLS (X.509 only).
#   python3 nbd-tls-client.py CHECK PORT [ARGS...]
#     off PORT                      STARTTLS -> ERR_POLICY, stays in step
#     require PORT                  every option but STARTTLS/ABORT ->
#                                   ERR_TLS_REQD; EXPORT_NAME -> closed
#     reset PORT PKI                state from before STARTTLS is gone
#     selective PORT PKI SECRET PUB tls-only export hidden and refused
#                                   before TLS, there after
#     stall PORT nothing|partial    STARTTLS, then stall in the TLS
#                                   handshake; prints seconds until the
#                                   server hangs up
import socket, ssl, struct, sys, time

MAGIC, IHAVEOPT, REPMAGIC = 0x4e42444d41474943, 0x49484156454F5054, 0x3e889045565a9
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO = 1, 2, 3, 5, 6, 7
OPT_SR, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 8, 9, 10
OPT_EXTENDED_HEADERS = 11
REP_ACK, REP_SERVER, REP_INFO, REP_META = 1, 2, 3, 4
ERR = 0x80000000
ERR_UNSUP, ERR_POLICY, ERR_INVALID, ERR_TLS_REQD = ERR + 1, ERR + 2, ERR + 3, ERR + 5
SIMPLE_REPLY, REQ_MAGIC = 0x67446698, 0x25609513
CMD_READ, CMD_DISC = 0, 2

def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        magic, opt, hflags = struct.unpack(">QQH", self.recv(18))
        check(magic == MAGIC and opt == IHAVEOPT and hflags & 1, "greeting")
        self.s.sendall(struct.pack(">I", 3))   # FIXED_NEWSTYLE | NO_ZEROES

    def recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise SystemExit("FAIL: server closed the connection")
            b += c
        return b

    def send_option(self, o, data=b""):
        self.s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)

    def option(self, o, data=b""):
        self.send_option(o, data)
        replies = []
        while True:
            m, ro, t, ln = struct.unpack(">QIII", self.recv(20))
            check(m == REPMAGIC and ro == o, "option reply header")
            replies.append((t, self.recv(ln)))
            if t == REP_ACK or t & ERR:
                return replies

    def closed(self):
        """True if the server hangs up without sending anything."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def starttls(self, pki):
        r = self.option(OPT_STARTTLS)
        check(r[-1][0] == REP_ACK, "STARTTLS: %r" % (r,))
        ctx = ssl.create_default_context(cafile=pki + "/ca-cert.pem")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.s = ctx.wrap_socket(self.s, server_hostname="localhost")


def name_data(name, infos=()):
    n = name.encode()
    return struct.pack(">I", len(n)) + n + struct.pack(">H", len(infos)) + \
        b"".join(struct.pack(">H", i) for i in infos)


def meta_data(name, queries):
    n = name.encode()
    d = struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries))
    for q in queries:
        d += struct.pack(">I", len(q)) + q.encode()
    return d


def listed(replies):
    names = []
    for t, d in replies:
        if t == REP_SERVER:
            ln = struct.unpack(">I", d[:4])[0]
            names.append(d[4:4 + ln].decode())
    return names


def last(replies):
    return replies[-1][0]


cmd, port = sys.argv[1], int(sys.argv[2])

if cmd == "off":
    c = Conn(port)
    check(last(c.option(OPT_STARTTLS)) == ERR_POLICY, "STARTTLS with TLS off")
    check(last(c.option(OPT_INFO, name_data(""))) == REP_ACK, "INFO after")
    check(last(c.option(OPT_ABORT)) == REP_ACK, "ABORT")
    print("off: STARTTLS -> NBD_REP_ERR_POLICY, in step")

elif cmd == "require":
    c = Conn(port)
    for o, d in [(OPT_SR, b""), (OPT_EXTENDED_HEADERS, b""),
                 (OPT_LIST, b""), (OPT_INFO, name_data("")),
                 (OPT_LIST_META_CONTEXT, meta_data("", ["base:"])),
                 (0xdead, b"junk"), (OPT_GO, name_data(""))]:
        r = c.option(o, d)
        check(len(r) == 1 and r[0][0] == ERR_TLS_REQD,
              "option %d before STARTTLS: %r" % (o, r))
    # STARTTLS with data is malformed, not a TLS matter.
    check(last(c.option(OPT_STARTTLS, b"x")) == ERR_INVALID,
          "STARTTLS with data")
    check(last(c.option(OPT_ABORT)) == REP_ACK, "ABORT")
    c = Conn(port)
    c.send_option(OPT_EXPORT_NAME, b"")
    check(c.closed(), "EXPORT_NAME before STARTTLS was answered")
    print("require: NBD_REP_ERR_TLS_REQD for every option, GO fails, "
          "EXPORT_NAME disconnects")

elif cmd == "reset":
    pki = sys.argv[3]
    c = Conn(port)
    check(last(c.option(OPT_SR)) == REP_ACK, "STRUCTURED_REPLY")
    check(last(c.option(OPT_EXTENDED_HEADERS)) == REP_ACK, "EXTENDED_HEADERS")
    r = c.option(OPT_SET_META_CONTEXT, meta_data("", ["base:allocation"]))
    check(r[0][0] == REP_META and last(r) == REP_ACK, "SET_META_CONTEXT")
    c.starttls(pki)
    check(last(c.option(OPT_STARTTLS)) == ERR_INVALID, "second STARTTLS")
    # Structured replies are forgotten: metadata contexts need them.
    r = c.option(OPT_SET_META_CONTEXT, meta_data("", ["base:allocation"]))
    check(last(r) == ERR_INVALID, "SET_META_CONTEXT after TLS without "
          "structured replies: %r" % (r,))
    r = c.option(OPT_GO, name_data(""))
    check(last(r) == REP_ACK, "GO over TLS: %r" % (r,))
    info = [d for t, d in r if t == REP_INFO and d[:2] == b"\0\0"][0]
    size, tflags = struct.unpack(">QH", info[2:])
    check(not tflags & (1 << 7), "SEND_DF advertised without structured "
          "replies (state kept across STARTTLS)")
    # Compact request, simple reply: extended headers are forgotten too.
    c.s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_READ, 7, 0, 4096))
    magic, err, cookie = struct.unpack(">IIQ", c.recv(16))
    check(magic == SIMPLE_REPLY and err == 0 and cookie == 7,
          "simple reply to a compact READ over TLS: %x %d" % (magic, err))
    data = c.recv(4096)
    print("reset: read %d bytes, first %r" % (len(data), data[:8]))
    c.s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_DISC, 8, 0, 0))
    print("reset: negotiated state forgotten after STARTTLS; "
          "second STARTTLS -> NBD_REP_ERR_INVALID")

elif cmd == "selective":
    pki, secret, pub = sys.argv[3], sys.argv[4], sys.argv[5]
    c = Conn(port)
    names = listed(c.option(OPT_LIST))
    check(pub in names and secret not in names, "LIST before TLS: %r" % names)
    check(last(c.option(OPT_INFO, name_data(pub))) == REP_ACK, "INFO public")
    for o in (OPT_INFO, OPT_GO):
        r = c.option(o, name_data(secret))
        check(last(r) == ERR_TLS_REQD, "%d on tls-only before TLS: %r" % (o, r))
    check(last(c.option(OPT_SR)) == REP_ACK, "STRUCTURED_REPLY")
    r = c.option(OPT_LIST_META_CONTEXT, meta_data(secret, []))
    check(last(r) == ERR_TLS_REQD, "LIST_META_CONTEXT on tls-only: %r" % (r,))
    c.starttls(pki)
    names = listed(c.option(OPT_LIST))
    check(pub in names and secret in names, "LIST after TLS: %r" % names)
    check(last(c.option(OPT_GO, name_data(secret))) == REP_ACK, "GO over TLS")
    c.s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_DISC, 1, 0, 0))
    c = Conn(port)
    c.send_option(OPT_EXPORT_NAME, secret.encode())
    check(c.closed(), "EXPORT_NAME of a tls-only export without TLS answered")
    print("selective: tls-only export hidden and refused before TLS, "
          "served after")

elif cmd == "stall":
    how = sys.argv[3]
    c = Conn(port)
    check(last(c.option(OPT_STARTTLS)) == REP_ACK, "STARTTLS")
    if how == "partial":
        # The first bytes of a real ClientHello, then nothing.
        ctx = ssl.create_default_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        check(len(hello) > 40, "ClientHello")
        c.s.sendall(hello[:len(hello) // 2])
    t0 = time.monotonic()
    c.s.settimeout(60)
    check(c.closed(), "the server sent something to a stalled client")
    print("%.2f" % (time.monotonic() - t0))

else:
    raise SystemExit("unknown check " + cmd)
