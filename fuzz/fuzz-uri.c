/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * Fuzz target: the NBD URI parser (proto/nbd-uri.c), which reads argv
 * and API input.  Checks that it never crashes or leaks, that a refused
 * URI always comes with a message and leaves the struct empty, and that
 * an accepted URI formats to a canonical URI which parses back to the
 * same fields and formats to the same string again (a fixed point).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-uri.h"
#include "vdisk/nbd.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static bool
same (const char *a, const char *b)
{
  return (a == NULL) == (b == NULL) && (a == NULL || strcmp (a, b) == 0);
}

static bool
equal (const struct vd_nbd_uri *a, const struct vd_nbd_uri *b)
{
  return a->transport == b->transport && a->tls == b->tls &&
    same (a->user, b->user) && same (a->host, b->host) &&
    same (a->zone, b->zone) && a->host_is_ipv6 == b->host_is_ipv6 &&
    a->port == b->port && a->cid == b->cid &&
    same (a->export_name, b->export_name) &&
    a->socket_len == b->socket_len &&
    (a->socket == NULL) == (b->socket == NULL) &&
    (a->socket == NULL || memcmp (a->socket, b->socket, a->socket_len) == 0) &&
    a->tls_type == b->tls_type && same (a->tls_hostname, b->tls_hostname) &&
    a->tls_verify_peer == b->tls_verify_peer &&
    same (a->tls_certificates, b->tls_certificates) &&
    same (a->tls_psk_file, b->tls_psk_file);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = malloc (size + 1);
  char err[256];
  struct vd_nbd_uri u, u2;

  if (s == NULL)
    return 0;
  memcpy (s, data, size);
  s[size] = '\0';

  if (vd_nbd_uri_parse (s, &u, err, sizeof err) == -1) {
    if (err[0] == '\0' || u.host || u.export_name || u.socket || u.user)
      abort ();
    if (vd_nbd_uri_validate (s) != -1)
      abort ();
  }
  else {
    char *f = vd_nbd_uri_format (&u);
    if (f == NULL)
      abort ();
    if (vd_nbd_uri_validate (s) != 0)
      abort ();
    if (vd_nbd_uri_parse (f, &u2, err, sizeof err) == -1) {
      fprintf (stderr, "fuzz-uri: %s formats as %s: %s\n", s, f, err);
      abort ();
    }
    if (!equal (&u, &u2)) {
      fprintf (stderr, "fuzz-uri: %s formats as %s, which differs\n", s, f);
      abort ();
    }
    char *f2 = vd_nbd_uri_format (&u2);
    if (f2 == NULL || strcmp (f, f2) != 0)
      abort ();
    free (f2);
    free (f);
    vd_nbd_uri_free (&u2);
    vd_nbd_uri_free (&u);
  }
  free (s);
  return 0;
}
