/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD URIs on the library side: parse with proto/nbd-uri.c and raise a
 * libvdisk error naming the URI.  vd_nbd_uri_validate is the public face
 * (Apple's +validateURL:error:): form only, no network, no file system.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk/nbd.h"
#include "backend.h"
#include "nbd-internal.h"

/* The URI as shown in messages: control bytes replaced, very long URIs
 * shortened so the problem after them still fits the error buffer.
 */
void
vd_nbd_uri_for_message (const char *uri, char *buf, size_t len)
{
  size_t n = 0, max = len - 1;
  size_t ulen = uri ? strlen (uri) : 0;

  if (uri == NULL) {
    snprintf (buf, len, "(null)");
    return;
  }
  if (ulen > 160 && max > 164)
    max = 160;
  for (size_t i = 0; uri[i] && n < max; ++i) {
    unsigned char c = uri[i];
    buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
  }
  buf[n] = '\0';
  if (ulen > n && len > n + 4)
    memcpy (buf + n, "...", 4);
}

int
vd_nbd_parse_uri (const char *uri, struct vd_nbd_uri *u)
{
  char err[512], shown[200];

  if (vd_nbd_uri_parse (uri, u, err, sizeof err) == 0)
    return 0;
  for (char *p = err; *p; ++p)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      *p = '?';
  vd_nbd_uri_for_message (uri, shown, sizeof shown);
  if (strcmp (err, "out of memory") == 0)
    vd_error_msg (ENOMEM, "%s: out of memory", shown);
  else
    vd_error_msg (EINVAL, "%s: %s", shown, err);
  return -1;
}

VD_API int
vd_nbd_uri_validate (const char *uri)
{
  struct vd_nbd_uri u;

  if (vd_nbd_parse_uri (uri, &u) == -1)
    return -1;
  vd_nbd_uri_free (&u);
  return 0;
}

VD_API int
vd_nbd_uri_get_properties (const char *uri, vd_property_fn fn, void *ud)
{
  struct vd_nbd_uri u;
  char *canon = NULL;
  int r = -1;

  if (vd_nbd_parse_uri (uri, &u) == -1)
    return -1;
  canon = vd_nbd_uri_format (&u);
  if (canon == NULL) {
    vd_error (ENOMEM, "%s", "vd_nbd_uri_format");
    goto out;
  }
  vd_error_clear ();

#define S(k, v) do { if (fn (ud, (k), VD_PROP_STRING, (v), 0) == -1) goto cb; } while (0)
#define U(k, v) do { if (fn (ud, (k), VD_PROP_UINT, NULL, (v)) == -1) goto cb; } while (0)
#define B(k, v) do { if (fn (ud, (k), VD_PROP_BOOL, NULL, (v))== -1) goto cb; } while (0)
  S ("scheme", vd_nbd_uri_scheme (u.transport, u.tls));
  S ("transport", u.transport == VD_NBD_TRANSPORT_TCP ? "tcp" :
     u.transport == VD_NBD_TRANSPORT_UNIX ? "unix" : "vsock");
  B ("tls", u.tls);
  if (u.user)
    S ("user", u.user);
  if (u.host)
    S ("host", u.host);
  if (u.zone)
    S ("ipv6-zone", u.zone);
  if (u.transport != VD_NBD_TRANSPORT_UNIX)
    U ("port", u.port);
  if (u.transport == VD_NBD_TRANSPORT_VSOCK)
    U ("vsock-cid", u.cid);
  if (u.socket) {
    bool abstract = u.socket[0] == '\0';
    S ("socket", abstract ? u.socket + 1 : u.socket);
    B ("socket-abstract", abstract);
  }
  S ("export", u.export_name);
  if (u.tls_type != VD_NBD_TLS_TYPE_DEFAULT)
    S ("tls-type", vd_nbd_tls_type_name (u.tls_type));
  if (u.tls_hostname)
    S ("tls-hostname", u.tls_hostname);
  if (u.tls_verify_peer >= 0)
    B ("tls-verify-peer", u.tls_verify_peer);
  if (u.tls_certificates)
    S ("tls-certificates", u.tls_certificates);
  if (u.tls_psk_file)
    S ("tls-psk-file", u.tls_psk_file);
  if (u.nr_ignored)
    U ("ignored-parameters", u.nr_ignored);
  S ("canonical-uri", canon);
#undef S
#undef U
#undef B
  r = 0;
  goto out;
 cb:
  if (vd_get_error () == NULL)
    vd_error_msg (ECANCELED, "%s: stopped by the caller", canon);
 out:
  free (canon);
  vd_nbd_uri_free (&u);
  return r;
}
