/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The NBD URI grammar (NetworkBlockDevice/nbd doc/uri.md, RFC 3986):
 * a pure parser from a string to a struct, and the reverse.  Used by the
 * NBD client (lib/nbd), by vd_nbd_uri_validate / `vdisk nbd validate`,
 * and by the server to print the URI of what it serves.  No I/O, no
 * name resolution, no global state; safe to call from any thread.
 *
 * Accepted schemes (case-insensitive): nbd, nbds (TLS required),
 * nbd+unix, nbds+unix (socket= required), nbd+vsock, nbds+vsock.
 * The decisions where the spec leaves room, and where libnbd and QEMU
 * disagree, are in docs/internals/nbd-uri.md; the test cases are in
 * tests/client/test-nbd-uri.c.
 */
#ifndef VD_NBD_URI_H
#define VD_NBD_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (bytes, after percent-decoding). */
#define VD_NBD_URI_MAX_LEN      16384 /* the whole URI */
#define VD_NBD_URI_MAX_HOST     255   /* DNS names are at most 255 bytes */
#define VD_NBD_URI_MAX_SOCKET   107   /* sun_path minus the final NUL */
#define VD_NBD_URI_MAX_PATH     4096  /* tls-certificates, tls-psk-file */
/* Export names, user names, TLS host names: NBD_MAX_STRING (4096). */

enum vd_nbd_uri_transport {
  VD_NBD_TRANSPORT_TCP = 0,
  VD_NBD_TRANSPORT_UNIX = 1,
  VD_NBD_TRANSPORT_VSOCK = 2,
};

enum vd_nbd_tls_type {
  VD_NBD_TLS_TYPE_DEFAULT = 0,  /* not given: the client picks */
  VD_NBD_TLS_TYPE_ANON = 1,
  VD_NBD_TLS_TYPE_X509 = 2,
  VD_NBD_TLS_TYPE_PSK = 3,
};

#define VD_NBD_VSOCK_DEFAULT_CID 2u /* VMADDR_CID_HOST */

struct vd_nbd_uri {
  int transport;                /* enum vd_nbd_uri_transport */
  bool tls;                     /* nbds*: TLS is required */
  char *user;                   /* userinfo (TLS user name), or NULL */
  /* TCP: host name or address without brackets; the IPv6 zone (RFC
   * 6874 "%25en0") is split off into zone.  NULL for unix and vsock.
   */
  char *host;
  char *zone;                   /* IPv6 zone identifier, or NULL */
  bool host_is_ipv6;            /* host was a bracketed IPv6 literal */
  bool host_is_ipv4;            /* host is a dotted IPv4 address */
  uint32_t port;                /* TCP: 1-65535; vsock: 32-bit port */
  uint32_t cid;                 /* vsock only */
  char *export_name;            /* decoded, never NULL (may be "") */
  /* Unix: the socket path; may start with a NUL byte (Linux abstract
   * socket), so the length is given too.  NUL-terminated for
   * convenience.  NULL for TCP and vsock.
   */
  char *socket;
  size_t socket_len;
  int tls_type;                 /* enum vd_nbd_tls_type */
  char *tls_hostname;           /* or NULL */
  int tls_verify_peer;          /* -1 not given, 0, 1 */
  char *tls_certificates;       /* directory (libnbd extension), or NULL */
  char *tls_psk_file;           /* file (libnbd extension), or NULL */
  /* Experimental x-* parameters are accepted and ignored; they are
   * counted here, and the first one's name is kept for a note.
   */
  unsigned nr_ignored;
  char *first_ignored;
};

/* Parse uri into *u (which the caller provides; it is overwritten).
 * Returns 0, or -1 with a message in err (always NUL-terminated; it
 * names the problem and, where it helps, the right form) and *u left
 * empty (safe to pass to vd_nbd_uri_free).  Also -1 with "out of
 * memory" if an allocation fails.
 */
int vd_nbd_uri_parse (const char *uri, struct vd_nbd_uri *u,
                      char *err, size_t errlen);

/* Free the strings in *u (not u itself) and zero it. */
void vd_nbd_uri_free (struct vd_nbd_uri *u);

/* Format *u as a canonical URI (lower-case scheme, default port
 * omitted, reserved characters percent-encoded, parameters in a fixed
 * order).  Parsing the result gives back an equal struct.  Returns a
 * malloc'd string, or NULL (errno ENOMEM).
 */
char *vd_nbd_uri_format (const struct vd_nbd_uri *u);

/* The scheme name for transport + tls ("nbd+unix", ...). */
const char *vd_nbd_uri_scheme (int transport, bool tls);

/* "anon", "x509", "psk" or "default". */
const char *vd_nbd_tls_type_name (int tls_type);

/* Describe where the URI connects, for messages: "example.com:10809",
 * "[::1]:10900", "unix socket /tmp/s", "unix socket @abstract",
 * "vsock 3:10809".  Writes at most len bytes (NUL-terminated).
 */
void vd_nbd_uri_describe_endpoint (const struct vd_nbd_uri *u, char *buf,
                                   size_t len);

#endif
