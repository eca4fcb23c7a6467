/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD client attachments (Apple's VZNetworkBlockDeviceStorageDeviceAttachment).
 * An NBD attachment is opened with vd_attachment_open ("nbd://...", opts)
 * and used like any other attachment.  What is particular to it:
 *
 *  - URIs: nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH,
 *    nbd+vsock://CID[:PORT]/EXPORT (NetworkBlockDevice/nbd doc/uri.md).
 *  - TLS (GnuTLS, TLS 1.2 and 1.3), with STARTTLS on every connection
 *    and reconnection:
 *      nbds://..., nbds+unix://...  TLS or fail, never a downgrade: a
 *        server without fixed newstyle, or one that refuses
 *        NBD_OPT_STARTTLS, fails the connection (ENOTSUP), and the client
 *        will have sent nothing but its flags, NBD_OPT_STARTTLS and
 *        NBD_OPT_ABORT (no export name, no data).
 *      nbd://... with tls-certificates= or tls-psk-file=  opportunistic:
 *        STARTTLS, and plaintext if the server answers
 *        NBD_REP_ERR_POLICY or NBD_REP_ERR_UNSUP.  Once a connection
 *        was encrypted, every reconnection must be too (someone who can
 *        cut the connection cannot steer the next one to plaintext).
 *    Query parameters (doc/uri.md, plus libnbd's two extensions):
 *      tls-certificates=DIR  X.509: DIR/ca-cert.pem verifies the server
 *        (without it, or without the parameter, the system trust store);
 *        DIR/client-cert.pem + DIR/client-key.pem are sent when both
 *        exist; DIR/ca-crl.pem is used when it exists.
 *      tls-hostname=NAME  the name the certificate must carry; default
 *        the URI's host; over a Unix socket or vsock only the chain is
 *        checked unless tls-hostname is given (as libnbd).
 *      tls-verify-peer=0  no verification of the server (default 1).
 *      tls-psk-file=FILE  PSK instead of X.509: FILE has psktool's
 *        "USER:HEXKEY" lines; USER is the URI's user name
 *        (nbds://alice@host/), default the login name (getlogin_r, as
 *        libnbd; else the effective user's name).
 *      tls-type=x509|psk  optional (implied by the parameters above);
 *        anon is refused at open (it authenticates nothing).
 *    Errors: "the server's certificate is not trusted: signer not found
 *    ..." (EACCES), "... is not valid for the name 'N'" (EACCES), "...
 *    has expired" (EACCES), "TLS handshake failed: ... (wrong PSK ...?)"
 *    (EACCES), "the server ended the TLS session with the alert
 *    '...' (it does not accept our client certificate ...)" (EACCES: a
 *    server checking client certificates refuses in TLS 1.3 only after
 *    the handshake), "the server refuses TLS ..." (ENOTSUP), "the server
 *    requires TLS: use an nbds URI" (ENOTSUP), a missing key or file
 *    (EINVAL).  These are not retried: the attachment fails at once
 *    (VD_EVENT_FAILED).  A connection that breaks during the TLS
 *    handshake is retried like any other.  A vdisk built without GnuTLS
 *    refuses TLS URIs at open (ENOTSUP).
 *  - Lazy: open parses the URI and never touches the network; the
 *    connection is made by vd_attachment_start or the first call that
 *    needs the export.  A failed start is final (every later call fails).
 *    Close flushes (VD_SYNC_FULL) and disconnects (NBD_CMD_DISC).
 *  - opts->timeout (seconds, default VD_NBD_DEFAULT_TIMEOUT = 30) bounds:
 *    each connection attempt (TLS handshake included); a connection with requests outstanding
 *    that moves no byte for that long (it is then dropped and replaced);
 *    and the reconnection window.  After a connection is lost, a caller
 *    has its answer or an error within the timeout; a server that
 *    accepts connections but never answers costs at most two timeouts.
 *    At start, a server that refuses connections is retried for the
 *    timeout too (so a VM and its server may start together).
 *  - Reconnection: on a lost connection (reset, refused, EOF, timeout,
 *    garbage from the server, the server's ESHUTDOWN) the attachment
 *    reconnects with exponential backoff and replays every request that
 *    was in flight, in order: callers see no error and no write is lost.
 *    The export must keep its size, flags and block sizes, else the
 *    attachment fails (ESTALE).  Errors the server reports for a request
 *    (EIO, ENOSPC, EINVAL, EPERM) reach the caller with the server's
 *    message.
 *  - opts->events: VD_EVENT_CONNECTED after the first connection and
 *    every reconnection; VD_EVENT_FAILED exactly once when the
 *    attachment fails for good (the window ran out: ETIMEDOUT; the export
 *    changed: ESTALE; no such export: ENOENT; ...), after which every
 *    call fails with ESHUTDOWN.  Events are delivered in order by a
 *    thread of the attachment's own, never under a lock, so the callback
 *    may call any attachment function except vd_attachment_close; close
 *    delivers the pending ones before it returns.
 *  - opts->sync_mode: VD_SYNC_FULL forwards flushes and FUA to the
 *    server (FUA as a flush after the write when the server has only
 *    FLUSH); VD_SYNC_NONE drops them; VD_SYNC_FSYNC means FULL.
 *  - VD_OPEN_READ_ONLY (Apple's forcedReadOnly): writes fail with EROFS
 *    and nothing is sent, whatever the server allows.
 *  - Any offset and length work: with a server that has a minimum block
 *    size, unaligned writes are read-modify-written; requests larger than
 *    the server's maximum payload are split.
 *  - Thread safety: one connection carries the requests of any number of
 *    threads (an I/O thread drives it; replies complete in any order).
 *  - vd_attachment_get_properties adds "nbd.*" keys (transport, export,
 *    TLS ("nbd.tls": "none" or e.g. "TLS1.3, X.509, server verified"),
 *    negotiated features, block sizes, connections made).
 * docs/internals/client-state-machine.md has the details.
 */
#ifndef VDISK_NBD_H
#define VDISK_NBD_H

#include <vdisk/attachment.h>
#include <vdisk/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Check that uri is a well-formed NBD URI (NetworkBlockDevice/nbd
 * doc/uri.md): nbd, nbds, nbd+unix, nbds+unix or nbd+vsock.  Never
 * touches the network or the file system.  Returns 0, or -1 with EINVAL
 * and a message naming the problem (and, where it helps, the right form).
 */
VD_API int vd_nbd_uri_validate (const char *uri);

/* Parse uri as vd_nbd_uri_validate does and report its parts through fn
 * (the callback of vd_attachment_get_properties), in this order, each
 * only when it applies:
 *   "scheme"            STRING  nbd, nbds, nbd+unix, nbds+unix, nbd+vsock
 *   "transport"         STRING  tcp, unix or vsock
 *   "tls"               BOOL    TLS required (nbds*)
 *   "user"              STRING  user name (for TLS)
 *   "host"              STRING  TCP host, without brackets or zone
 *   "ipv6-zone"         STRING  zone of a link-local IPv6 address
 *   "port"              UINT    TCP or vsock port (default 10809)
 *   "vsock-cid"         UINT    vsock context id (default 2, the host)
 *   "socket"            STRING  Unix socket path (abstract: without the
 *                               leading NUL byte)
 *   "socket-abstract"   BOOL    the socket is in the abstract namespace
 *   "export"            STRING  export name ("" is the default export)
 *   "tls-type", "tls-hostname", "tls-certificates", "tls-psk-file"
 *                       STRING  TLS query parameters
 *   "tls-verify-peer"   BOOL
 *   "ignored-parameters" UINT   number of experimental x-* parameters
 *   "canonical-uri"     STRING  the URI in canonical form
 * Never touches the network or the file system.  Returns 0, -1 with
 * EINVAL (bad URI, message as vd_nbd_uri_validate), or -1 with the
 * callback's error when it returns -1.
 */
VD_API int vd_nbd_uri_get_properties (const char *uri, vd_property_fn fn,
                                      void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* VDISK_NBD_H */
