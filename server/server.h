/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The NBD server (an internal static library; `vdisk serve`,
 * cli/cmd-serve.c, is its only user).  A server holds named exports
 * (attachments), listening sockets and a pool of worker threads; each
 * connection gets a thread for its handshake and its socket I/O.  The
 * design, and why it is so, is in docs/internals/server.md.
 *
 * Errors: -1 / NULL with the libvdisk thread-local error (vd_get_error).
 * Logs go to stderr, one line each, prefixed "vdisk serve: ".
 */
#ifndef VD_SERVER_H
#define VD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdisk/attachment.h"

struct vd_server;

/* TLS modes (the NBD spec's names in brackets). */
enum vd_server_tls {
  VD_SERVER_TLS_OFF = 0,        /* STARTTLS refused with ERR_POLICY
                                   [NOTLS] */
  VD_SERVER_TLS_ON,             /* STARTTLS offered; exports marked
                                   tls-only need it [SELECTIVETLS] */
  VD_SERVER_TLS_REQUIRE,        /* every option but STARTTLS and ABORT
                                   needs TLS first [FORCEDTLS] */
};

struct vd_server_config {
  unsigned threads;             /* worker threads; 0 = default (16) */
  unsigned max_connections;     /* 0 = default (128) */
  double handshake_timeout;     /* seconds a client may take to reach
                                   transmission; 0 = default (10), < 0 =
                                   no limit */
  uint32_t max_request;         /* largest READ/WRITE payload accepted and
                                   advertised; 0 = default (32 MiB, or
                                   less if an export can do less) */
  uint32_t conn_buffer_limit;   /* payload bytes one connection may have
                                   in flight (requests read but not yet
                                   answered); 0 = default (8 MiB); one
                                   request is always allowed */
  double drain_timeout;         /* seconds to wait on shutdown for a
                                   client to take its last replies;
                                   0 = default (10) */
  int verbose;                  /* -1: nothing (fuzzing);
                                   0: errors and rejected requests;
                                   1: + connections; 2: + options and
                                   every request */
  bool inline_io;               /* run short requests on the connection
                                   thread when they are fast (default
                                   true; docs/internals/server.md) */
  unsigned busy_poll_us;        /* a connection waiting for its client's
                                   next request polls for up to this long
                                   before it sleeps, adapting to the
                                   client's pace (default 50; 0 = never;
                                   docs/internals/server.md, "Waiting") */

  /* TLS (GnuTLS).  With tls != OFF exactly one of tls_certificates and
   * tls_psk_file is needed; both are read by vd_server_new, which fails
   * naming the file that is missing or bad.  The strings are copied.
   */
  enum vd_server_tls tls;
  const char *tls_certificates; /* X.509 directory: ca-cert.pem,
                                   server-cert.pem, server-key.pem,
                                   optional ca-crl.pem */
  const char *tls_psk_file;     /* psktool format: "user:hexkey" lines */
  bool tls_verify_peer;         /* X.509: require a client certificate
                                   signed by ca-cert.pem */
};

/* Fill cfg with the defaults. */
void vd_server_config_init (struct vd_server_config *cfg);

struct vd_server *vd_server_new (const struct vd_server_config *cfg);

/* Add an export.  name may be "" (the default export).  The first export
 * added is also what the empty name selects.  The attachment is started
 * (NBD upstreams connect here) and owned by the server from now on, also
 * when this fails.  description may be NULL.  0 or -1.
 */
int vd_server_add_export (struct vd_server *s, const char *name,
                          const char *description, struct vd_attachment *a);

/* Mark the export called name as TLS-only (SELECTIVETLS): before
 * STARTTLS, NBD_OPT_LIST leaves it out and NBD_OPT_INFO / GO on it get
 * NBD_REP_ERR_TLS_REQD.  Needs tls != OFF.  0 or -1.
 */
int vd_server_set_export_tls_only (struct vd_server *s, const char *name);

/* Whether this build can do TLS (GnuTLS). */
bool vd_server_tls_available (void);

/* Listening sockets.  Each returns 0 or -1, and records a URI for the
 * default export (vd_server_uri).
 *   tcp: host NULL = 127.0.0.1; port NULL = 10809; port "0" picks a free
 *        port.  A host name that resolves to several addresses listens
 *        on each.  An address outside loopback without TLS is logged
 *        as a warning (verbose >= 0).
 *   unix: path must not exist (or be a stale socket, which is removed).
 *   fd: an inherited listening socket (socket activation).
 */
int vd_server_listen_tcp (struct vd_server *s, const char *host,
                          const char *port);
int vd_server_listen_unix (struct vd_server *s, const char *path);
int vd_server_listen_fd (struct vd_server *s, int fd);
/* systemd socket activation: if LISTEN_PID is this process, adopt
 * LISTEN_FDS descriptors from fd 3 and unset the variables.  Returns the
 * number adopted (0 without activation) or -1.
 */
int vd_server_listen_systemd (struct vd_server *s);

size_t vd_server_nr_uris (const struct vd_server *s);
const char *vd_server_uri (const struct vd_server *s, size_t i);

/* Accept and serve connections until vd_server_stop.  Then: stop
 * accepting, let every connection finish the requests it has in flight
 * and send their replies (up to the drain timeout), close connections.
 * Returns 0, or -1 if the accept loop failed.
 */
int vd_server_run (struct vd_server *s);

/* Serve exactly one connection on in_fd/out_fd (--stdio; may be the same
 * socket), returning when it ends.  0, or -1 if the connection ended with
 * a protocol error (logged).
 */
int vd_server_serve_fds (struct vd_server *s, int in_fd, int out_fd);

/* Ask the server to stop (async-signal-safe; any thread). */
void vd_server_stop (struct vd_server *s);

/* Free the server: close the exports (each flushes).  Returns 0, or -1
 * if closing an export failed (logged and raised).
 */
int vd_server_free (struct vd_server *s);

#endif
