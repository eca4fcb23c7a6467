/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD client attachments.  An NBD attachment is opened with
 * vd_attachment_open ("nbd://...", opts); see <vdisk/attachment.h> for
 * the timeout, sync mode (VD_SYNC_FULL or VD_SYNC_NONE), forced read-only
 * (VD_OPEN_READ_ONLY) and connection events.
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
