/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The NBD URI grammar: the 50 cases of ../shared/docs/nbd-notes.md §2.1
 * (numbered as there), then extra cases for every error path of
 * proto/nbd-uri.c.  Each accepted URI is checked field by field and
 * round-tripped through vd_nbd_uri_format; each rejected one must fail
 * through the public vd_nbd_uri_validate with EINVAL and a message
 * containing the expected words.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdisk/nbd.h"
#include "nbd-uri.h"
#include "test.h"

#define TCP VD_NBD_TRANSPORT_TCP
#define UNIX VD_NBD_TRANSPORT_UNIX
#define VSOCK VD_NBD_TRANSPORT_VSOCK

struct ok_case {
  int n;                        /* case number in nbd-notes §2.1, 0 = extra */
  const char *uri;
  int transport;
  bool tls;
  const char *host;             /* NULL: none */
  unsigned port;
  const char *export_name;
  const char *socket;           /* NULL: none; "\0..." abstract */
  size_t socket_len;
  const char *user;
};

static const struct ok_case ok_cases[] = {
  { 1, "nbd://example.com", TCP, 0, "example.com", 10809, "" },
  { 2, "nbd://example.com/", TCP, 0, "example.com", 10809, "" },
  { 3, "nbd://example.com/disk", TCP, 0, "example.com", 10809, "disk" },
  { 4, "nbd://example.com//disk", TCP, 0, "example.com", 10809, "/disk" },
  { 5, "nbd://example.com/hello%20world", TCP, 0, "example.com", 10809,
    "hello world" },
  { 6, "nbd://example.com/%2Fdisk", TCP, 0, "example.com", 10809, "/disk" },
  { 7, "nbd://example.com/a/b/c", TCP, 0, "example.com", 10809, "a/b/c" },
  { 8, "nbd://example.com/disk%3Fx%23y", TCP, 0, "example.com", 10809,
    "disk?x#y" },
  { 9, "nbd://example.com:10810/disk", TCP, 0, "example.com", 10810, "disk" },
  { 10, "nbd://192.0.2.7/", TCP, 0, "192.0.2.7", 10809, "" },
  { 11, "nbd://[::1]/", TCP, 0, "::1", 10809, "" },
  { 12, "nbd://[2001:db8::1]:10900/x", TCP, 0, "2001:db8::1", 10900, "x" },
  { 13, "nbd://[fe80::1%25en0]/", TCP, 0, "fe80::1", 10809, "" },
  { 18, "nbds://example.com/disk", TCP, 1, "example.com", 10809, "disk" },
  { 19, "nbds://alice@example.com/?tls-psk-file=keys.psk", TCP, 1,
    "example.com", 10809, "", NULL, 0, "alice" },
  { 20, "nbds://localhost:10809/?tls-certificates=pki", TCP, 1, "localhost",
    10809, "" },
  { 21, "nbd://alice@example.com/", TCP, 0, "example.com", 10809, "", NULL, 0,
    "alice" },
  { 22, "nbd+unix:///disk?socket=/tmp/nbd.sock", UNIX, 0, NULL, 0, "disk",
    "/tmp/nbd.sock", 13 },
  { 23, "nbd+unix:///?socket=nbd.sock", UNIX, 0, NULL, 0, "", "nbd.sock", 8 },
  { 24, "nbd+unix:///?socket=%00/abstract", UNIX, 0, NULL, 0, "",
    "\0/abstract", 10 },
  { 25, "nbd+unix:///?socket=my%20sock", UNIX, 0, NULL, 0, "", "my sock", 7 },
  { 26, "nbds+unix://alice@/?socket=/tmp/s&tls-certificates=certs", UNIX, 1,
    NULL, 0, "", "/tmp/s", 6, "alice" },
  { 32, "nbd+vsock:///", VSOCK, 0, NULL, 10809, "" },
  { 33, "nbd+vsock://3:10900/x", VSOCK, 0, NULL, 10900, "x" },
  { 36, "nbd://example.com/?tls-hostname=srv.example&tls-verify-peer=0", TCP,
    0, "example.com", 10809, "" },
  { 38, "nbd://example.com/?x-cache=1", TCP, 0, "example.com", 10809, "" },
  { 48, "NBD://Example.COM/Disk", TCP, 0, "Example.COM", 10809, "Disk" },
  { 49, "nbd://exa%6Dple.com/", TCP, 0, "example.com", 10809, "" },
  /* Extras. */
  { 0, "nbd://example.com:/", TCP, 0, "example.com", 10809, "" },
  { 0, "nbd://example.com?", TCP, 0, "example.com", 10809, "" },
  { 0, "nbd://h/%C3%A9t%C3%A9", TCP, 0, "h", 10809, "\xc3\xa9t\xc3\xa9" },
  { 0, "nbd://h/a;b=c&d", TCP, 0, "h", 10809, "a;b=c&d" },
  { 0, "nbd+unix:///e?socket=%2Ftmp%2Fa%26b&x-a=1;x-b=2", UNIX, 0, NULL, 0,
    "e", "/tmp/a&b", 8 },
  { 0, "nbd+unix:///?&socket=s&", UNIX, 0, NULL, 0, "", "s", 1 },
  { 0, "nbds+vsock://4294967294:4294967294/", VSOCK, 1, NULL, 4294967294u,
    "" },
  { 0, "nbd://h:010/", TCP, 0, "h", 10, "" },
  { 0, "nbd://my_host-1.example/", TCP, 0, "my_host-1.example", 10809, "" },
  { 0, "nbd://h/?tls-type=PSK&tls-psk-file=k", TCP, 0, "h", 10809, "" },
  { 0, "nbd://a%40b@h/", TCP, 0, "h", 10809, "", NULL, 0, "a@b" },
};

struct err_case {
  int n;
  const char *uri;
  const char *substr;           /* expected in the message */
};

static const struct err_case err_cases[] = {
  { 14, "nbd://[::1/", "missing ']'" },
  { 15, "nbd://example.com:0/", "port 0 is out of range" },
  { 16, "nbd://example.com:65536/", "port 65536 is out of range" },
  { 17, "nbd://example.com:abc/", "invalid port 'abc'" },
  { 27, "nbd+unix:///disk", "missing socket= " },
  { 28, "nbd+unix:///?socket=", "empty socket path" },
  { 29, "nbd+unix:///?socket=/a&socket=/b", "'socket' is given twice" },
  { 30, "nbd+unix://example.com/?socket=/tmp/s", "takes no host or port" },
  { 31, "nbd://example.com/?socket=/tmp/s", "only for Unix sockets" },
  { 34, "nbd+vsock://host/", "CID 'host' must be a number" },
  { 35, "nbd+tcp://example.com/disk", "writes TCP as nbd://example.com/disk" },
  { 37, "nbd://example.com/?tls-type=bogus", "invalid tls-type 'bogus'" },
  { 39, "nbd://example.com/?frobnicate=1",
    "unknown query parameter 'frobnicate'" },
  { 40, "nbd://example.com/disk#frag", "fragments" },
  { 41, "nbd://example.com/a%00b", "export name contains a NUL byte" },
  /* 42 (4097-byte name) is built at run time. */
  { 43, "nbd://", "missing host name" },
  { 44, "nbd:example.com", "write nbd://example.com" },
  { 44, "nbd:/disk", "write nbd://HOST/disk" },
  { 45, "/tmp/nbd.sock", "nbd+unix:///?socket=/tmp/nbd.sock" },
  { 46, "localhost:10809", "write nbd://localhost:10809/" },
  { 47, "http://example.com/disk", "unknown URI scheme 'http'" },
  { 50, "nbd+ssh://user@host/disk", "ssh transport is not supported" },
  { 50, "nbd://-oProxyCommand=x/", "may not start with '-'" },
  /* Extras: every other error path. */
  { 0, "", "empty NBD URI" },
  { 0, "example.com", "no scheme" },
  { 0, "192.0.2.7:10809", "write nbd://192.0.2.7:10809/" },
  { 0, "1nbd://x/", "no scheme" },
  { 0, "nbd+unix:/e?socket=s", "write nbd+unix:///e?socket=s" },
  { 0, "nbd://example.com/a b", "space at byte 20 is not allowed" },
  { 0, "nbd://example.com/\x01", "byte 0x01 at byte 19" },
  { 0, "nbd://example.com/\xc3\xa9", "byte 0xc3" },
  { 0, "nbd://example.com/a[b]", "'[' at byte 20 must be percent-encoded" },
  { 0, "nbd://example.com/%4", "invalid percent-encoding in the export name" },
  { 0, "nbd://example.com/%zz", "two hex digits" },
  { 0, "nbd://example.com/%ff", "not valid UTF-8" },
  { 0, "nbd://example.com/%ED%A0%80", "not valid UTF-8" },
  { 0, "nbd://example.com/%C0%80", "not valid UTF-8" },
  { 0, "nbd://::1/", "IPv6 addresses must be in brackets" },
  { 0, "nbd://[::1]x/", "unexpected 'x' after the IPv6 address" },
  { 0, "nbd://[]/", "invalid IPv6 address" },
  { 0, "nbd://[1::2::3]/", "invalid IPv6 address '1::2::3'" },
  { 0, "nbd://[fe80::1%en0]/", "%25ZONE" },
  { 0, "nbd://[fe80::1%25]/", "empty IPv6 zone" },
  { 0, "nbd://[v1.x]/", "IPvFuture" },
  { 0, "nbd://[::1]:99999/", "out of range" },
  { 0, "nbd://256.1.1.1/", "invalid IPv4 address '256.1.1.1'" },
  { 0, "nbd://1.2.3/", "invalid IPv4 address" },
  { 0, "nbd://ex%20ample/", "space, which is not allowed in a host name" },
  { 0, "nbd://ex%00ample/", "host name contains a NUL byte" },
  { 0, "nbd://.example/", "may not start with '.'" },
  { 0, "nbd://a@b@h/", "more than one '@'" },
  { 0, "nbd://@h/", "empty user name" },
  { 0, "nbd://alice:secret@h/", "passwords in NBD URIs are not supported" },
  { 0, "nbd://a%00@h/", "user name contains a NUL byte" },
  { 0, "nbd://h/?socket", "'socket' has no value" },
  { 0, "nbd://h/?=1", "empty name" },
  { 0, "nbd://h/?tls-type=psk&tls-type=psk", "'tls-type' is given twice" },
  { 0, "nbd://h/?tls-verify-peer=yes", "invalid tls-verify-peer 'yes'" },
  { 0, "nbd://h/?tls-verify-peer=1&tls-verify-peer=1", "given twice" },
  { 0, "nbd://h/?tls-hostname=", "'tls-hostname' is empty" },
  { 0, "nbd://h/?tls-hostname=a%20b", "tls-hostname contains space" },
  { 0, "nbd://h/?tls-hostname=a&tls-hostname=b", "given twice" },
  { 0, "nbd://h/?tls-certificates=a%00b", "contains a NUL byte" },
  { 0, "nbd://h/?tls-psk-file=a&tls-psk-file=b", "given twice" },
  { 0, "nbd://h/?tls-type=x509&tls-psk-file=k", "needs tls-type=psk" },
  { 0, "nbd://h/?tls-type=psk&tls-certificates=c", "needs tls-type=x509" },
  { 0, "nbd://h/?tls-certificates=c&tls-psk-file=k", "exclude each other" },
  { 0, "nbd+unix:///?socket=%00", "empty abstract socket name" },
  { 0, "nbd+unix:///?socket=a%00b", "after its first byte" },
  { 0, "nbd+unix://:1/?socket=s", "takes no host or port" },
  { 0, "nbd+vsock://[::1]/", "numeric CID" },
  { 0, "nbd+vsock://4294967295/", "out of range" },
  { 0, "nbd+vsock://3:abc/", "invalid vsock port" },
  { 0, "nbd+vsock://3:4294967295/", "vsock port 4294967295 is out of range" },
  { 0, "nbd+foo://x/", "foo transport is not supported" },
  { 0, "nbds+foo://x/", "foo transport is not supported" },
  { 0, "nbd://h/?%zz=1", "invalid percent-encoding in the query" },
  { 0, "nbd://h/?a%00=1", "name contains a NUL byte" },
  { 0, "nbd://h/?x=a#b", "fragments" },
  { 0, "nbd://[::1%25a%20b]/", "IPv6 zone contains space" },
};

static void
check_str (int line, const char *uri, const char *what, const char *got,
           const char *want)
{
  if ((got == NULL) != (want == NULL) ||
      (got && strcmp (got, want) != 0)) {
    fprintf (stderr, "case at line %d: %s: %s is '%s', expected '%s'\n", line,
             uri, what, got ? got : "(null)", want ? want : "(null)");
    exit (1);
  }
}

static bool
uri_equal (const struct vd_nbd_uri *a, const struct vd_nbd_uri *b)
{
#define SEQ(f) ((a->f == NULL) == (b->f == NULL) && \
                (a->f == NULL || strcmp (a->f, b->f) == 0))
  return a->transport == b->transport && a->tls == b->tls && SEQ (user) &&
    SEQ (host) && SEQ (zone) && a->host_is_ipv6 == b->host_is_ipv6 &&
    a->port == b->port && a->cid == b->cid && SEQ (export_name) &&
    a->socket_len == b->socket_len &&
    (a->socket == NULL) == (b->socket == NULL) &&
    (a->socket == NULL || memcmp (a->socket, b->socket, a->socket_len) == 0) &&
    a->tls_type == b->tls_type && SEQ (tls_hostname) &&
    a->tls_verify_peer == b->tls_verify_peer && SEQ (tls_certificates) &&
    SEQ (tls_psk_file);
#undef SEQ
}

static void
round_trip (const char *uri, const struct vd_nbd_uri *u)
{
  char err[512];
  struct vd_nbd_uri u2;
  char *s = vd_nbd_uri_format (u);

  CHECK (s != NULL);
  if (vd_nbd_uri_parse (s, &u2, err, sizeof err) == -1) {
    fprintf (stderr, "%s: formatted as %s, which does not parse: %s\n", uri,
             s, err);
    exit (1);
  }
  if (!uri_equal (u, &u2)) {
    fprintf (stderr, "%s: formatted as %s, which parses differently\n", uri,
             s);
    exit (1);
  }
  vd_nbd_uri_free (&u2);
  free (s);
}

int
main (void)
{
  char err[512];
  int numbered_ok = 0, numbered_err = 0;

  for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; ++i) {
    const struct ok_case *c = &ok_cases[i];
    struct vd_nbd_uri u;

    if (vd_nbd_uri_parse (c->uri, &u, err, sizeof err) == -1) {
      fprintf (stderr, "case %d: %s: rejected: %s\n", c->n, c->uri, err);
      exit (1);
    }
    CHECK (vd_nbd_uri_validate (c->uri) == 0);
    if (u.transport != c->transport || u.tls != c->tls) {
      fprintf (stderr, "case %d: %s: transport %d tls %d\n", c->n, c->uri,
               u.transport, u.tls);
      exit (1);
    }
    check_str (c->n, c->uri, "host", u.host, c->host);
    check_str (c->n, c->uri, "export", u.export_name, c->export_name);
    check_str (c->n, c->uri, "user", u.user, c->user);
    if (c->transport != UNIX && u.port != c->port) {
      fprintf (stderr, "case %d: %s: port %u\n", c->n, c->uri, u.port);
      exit (1);
    }
    if (c->socket) {
      CHECK (u.socket != NULL && u.socket_len == c->socket_len &&
             memcmp (u.socket, c->socket, c->socket_len) == 0);
    }
    else
      CHECK (u.socket == NULL);
    round_trip (c->uri, &u);
    if (c->n)
      numbered_ok++;
    vd_nbd_uri_free (&u);
  }

  /* Details the table does not hold. */
  {
    struct vd_nbd_uri u;
    char ep[128];

    CHECK (vd_nbd_uri_parse ("nbd://[fe80::1%25en0]:7/", &u, err,
                             sizeof err) == 0);
    check_str (13, "zone", "zone", u.zone, "en0");
    CHECK (u.host_is_ipv6);
    vd_nbd_uri_describe_endpoint (&u, ep, sizeof ep);
    check_str (13, "zone", "endpoint", ep, "[fe80::1%en0]:7");
    vd_nbd_uri_free (&u);

    CHECK (vd_nbd_uri_parse ("nbd+vsock://3:10900/x", &u, err,
                             sizeof err) == 0);
    CHECK (u.cid == 3 && u.host == NULL);
    vd_nbd_uri_describe_endpoint (&u, ep, sizeof ep);
    check_str (33, "vsock", "endpoint", ep, "vsock 3:10900");
    vd_nbd_uri_free (&u);

    CHECK (vd_nbd_uri_parse ("nbd+vsock:///", &u, err, sizeof err) == 0);
    CHECK (u.cid == 2 && u.port == 10809);
    vd_nbd_uri_free (&u);

    CHECK (vd_nbd_uri_parse ("nbd+unix:///?socket=%00/abstract", &u, err,
                             sizeof err) == 0);
    vd_nbd_uri_describe_endpoint (&u, ep, sizeof ep);
    check_str (24, "abstract", "endpoint", ep, "unix socket @/abstract");
    vd_nbd_uri_free (&u);

    CHECK (vd_nbd_uri_parse ("nbd://example.com/?tls-hostname=srv.example&"
                             "tls-verify-peer=0", &u, err, sizeof err) == 0);
    check_str (36, "tls", "tls-hostname", u.tls_hostname, "srv.example");
    CHECK (u.tls_verify_peer == 0 && u.tls_type == VD_NBD_TLS_TYPE_DEFAULT);
    vd_nbd_uri_free (&u);

    CHECK (vd_nbd_uri_parse ("nbds://alice@example.com/?tls-psk-file=keys.psk",
                             &u, err, sizeof err) == 0);
    check_str (19, "psk", "tls-psk-file", u.tls_psk_file, "keys.psk");
    vd_nbd_uri_free (&u);

    CHECK (vd_nbd_uri_parse ("nbds+unix://alice@/?socket=/tmp/s&"
                             "tls-certificates=certs", &u, err,
                             sizeof err) == 0);
    check_str (26, "certs", "tls-certificates", u.tls_certificates, "certs");
    vd_nbd_uri_free (&u);

    CHECK (vd_nbd_uri_parse ("nbd://example.com/?x-cache=1&x-b=2", &u, err,
                             sizeof err) == 0);
    CHECK (u.nr_ignored == 2);
    check_str (38, "x-", "first ignored", u.first_ignored, "x-cache");
    vd_nbd_uri_free (&u);

    CHECK (vd_nbd_uri_parse ("nbd://h/?tls-type=PSK", &u, err,
                             sizeof err) == 0);
    CHECK (u.tls_type == VD_NBD_TLS_TYPE_PSK);
    vd_nbd_uri_free (&u);

    /* Canonical form. */
    CHECK (vd_nbd_uri_parse ("NBD://Example.COM:10809/a%20b?x-y=1", &u, err,
                             sizeof err) == 0);
    {
      char *s = vd_nbd_uri_format (&u);
      check_str (0, "format", "canonical", s, "nbd://Example.COM/a%20b");
      free (s);
    }
    vd_nbd_uri_free (&u);
  }

  for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; ++i) {
    const struct err_case *c = &err_cases[i];
    struct vd_nbd_uri u;

    if (vd_nbd_uri_parse (c->uri, &u, err, sizeof err) == 0) {
      fprintf (stderr, "case %d: %s: accepted, expected an error with '%s'\n",
               c->n, c->uri, c->substr);
      exit (1);
    }
    if (strstr (err, c->substr) == NULL) {
      fprintf (stderr, "case %d: %s: message '%s' lacks '%s'\n", c->n, c->uri,
               err, c->substr);
      exit (1);
    }
    /* The struct is left empty. */
    CHECK (u.host == NULL && u.export_name == NULL && u.socket == NULL);
    /* The public entry point: EINVAL, the URI named, the same problem. */
    CHECK_FAILS (vd_nbd_uri_validate (c->uri), EINVAL, c->substr);
    if (c->n)
      numbered_err++;
  }

  /* Case 42: a 4097-byte export name (and 4096 is fine). */
  {
    size_t n = 4097;
    char *uri = malloc (n + 32);
    CHECK (uri != NULL);
    memcpy (uri, "nbd://example.com/", 18);
    memset (uri + 18, 'a', n);
    uri[18 + n] = '\0';
    CHECK_FAILS (vd_nbd_uri_validate (uri), EINVAL,
                 "export name is 4097 bytes long");
    uri[18 + 4096] = '\0';
    CHECK (vd_nbd_uri_validate (uri) == 0);
    free (uri);
    numbered_err++;
  }
  /* The whole URI is bounded, and long URIs are shortened in messages
   * so the problem still shows.
   */
  {
    size_t n = VD_NBD_URI_MAX_LEN + 10;
    char *uri = malloc (n + 1);
    CHECK (uri != NULL);
    memset (uri, 'a', n);
    memcpy (uri, "nbd://h/", 8);
    uri[n] = '\0';
    CHECK_FAILS (vd_nbd_uri_validate (uri), EINVAL, "longer than 16384");
    CHECK (strlen (vd_get_error ()) < 400);
    free (uri);
  }
  /* Control characters never reach the message. */
  CHECK_FAILS (vd_nbd_uri_validate ("nbd://h/\x1b[31m"), EINVAL,
               "nbd://h/?[31m: byte 0x1b");
  CHECK_FAILS (vd_nbd_uri_validate (NULL), EINVAL, "no NBD URI given");

  /* All 50 numbered cases are covered (some numbers twice). */
  printf ("%d accepted and %d rejected numbered cases, %zu + %zu in all\n",
          numbered_ok, numbered_err,
          sizeof ok_cases / sizeof ok_cases[0],
          sizeof err_cases / sizeof err_cases[0] + 1);
  {
    bool seen[51] = { false };
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; ++i)
      seen[ok_cases[i].n] = true;
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; ++i)
      seen[err_cases[i].n] = true;
    seen[42] = true;
    for (int i = 1; i <= 50; ++i)
      if (!seen[i]) {
        fprintf (stderr, "case %d of nbd-notes §2.1 has no test\n", i);
        exit (1);
      }
  }
  return 0;
}
