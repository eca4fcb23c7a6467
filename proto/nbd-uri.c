/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * NBD URI parser and formatter (see nbd-uri.h).
 *
 * Method:
 *   The URI is checked in the order a reader would: the scheme first
 *   (so "/tmp/s.sock" or "localhost:10809" get a hint, not a character
 *   complaint), then "//", then every byte against RFC 3986's character
 *   set, then the fragment, then authority / path / query.  Each part is
 *   percent-decoded separately (so "%2F" in the path stays a byte of the
 *   export name and "%26" in a query value does not split parameters),
 *   and each decoded value is checked against NBD's rules: no NUL except
 *   the first byte of an abstract socket name, names at most 4096 bytes,
 *   export names valid UTF-8.  Numbers are parsed digit by digit with an
 *   explicit bound, never with strtol.
 *
 *   Errors are written into the caller's buffer as one sentence naming
 *   the problem; the library adds the URI in front.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nbd-protocol.h"
#include "nbd-uri.h"

struct parser {
  const char *uri;
  char *err;
  size_t errlen;
};

static int __attribute__ ((format (printf, 2, 3)))
fail (struct parser *p, const char *fmt, ...)
{
  va_list args;

  if (p->errlen > 0) {
    va_start (args, fmt);
    vsnprintf (p->err, p->errlen, fmt, args);
    va_end (args);
  }
  return -1;
}

static int
oom (struct parser *p)
{
  return fail (p, "out of memory");
}

static bool
is_alpha (int c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit (int c)
{
  return c >= '0' && c <= '9';
}

static bool
is_unreserved (int c)
{
  return is_alpha (c) || is_digit (c) || c == '-' || c == '.' || c == '_' ||
    c == '~';
}

static bool
is_sub_delim (int c)
{
  return c != '\0' && strchr ("!$&'()*+,;=", c) != NULL;
}

static bool
is_gen_delim (int c)
{
  return c != '\0' && strchr (":/?#[]@", c) != NULL;
}

static int
hex_value (int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Printable form of one byte for messages. */
static const char *
show_byte (unsigned char c, char *buf, size_t len)
{
  if (c == ' ')
    snprintf (buf, len, "space");
  else if (c < 0x20 || c >= 0x7f)
    snprintf (buf, len, "byte 0x%02x", c);
  else
    snprintf (buf, len, "'%c'", c);
  return buf;
}

/* Percent-decode [s, s + n) into a new NUL-terminated string; *outlen
 * gets the decoded length (which may contain NUL bytes; callers check).
 * what names the part for messages.
 */
static int
decode (struct parser *p, const char *s, size_t n, const char *what,
        char **out, size_t *outlen)
{
  char *d = malloc (n + 1);
  size_t j = 0;

  if (d == NULL)
    return oom (p);
  for (size_t i = 0; i < n; ++i) {
    if (s[i] == '%') {
      int hi = i + 1 < n ? hex_value ((unsigned char) s[i + 1]) : -1;
      int lo = i + 2 < n ? hex_value ((unsigned char) s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        free (d);
        return fail (p, "invalid percent-encoding in the %s at byte %zu "
                     "('%%' must be followed by two hex digits; write a "
                     "literal '%%' as %%25)", what,
                     (size_t) (s + i - p->uri) + 1);
      }
      d[j++] = (char) (hi * 16 + lo);
      i += 2;
    }
    else
      d[j++] = s[i];
  }
  d[j] = '\0';
  *out = d;
  *outlen = j;
  return 0;
}

static bool
valid_utf8 (const unsigned char *s, size_t n)
{
  size_t i = 0;

  while (i < n) {
    unsigned char c = s[i];
    size_t len;
    uint32_t cp, min;

    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      len = 2; cp = c & 0x1f; min = 0x80;
    }
    else if ((c & 0xf0) == 0xe0) {
      len = 3; cp = c & 0x0f; min = 0x800;
    }
    else if ((c & 0xf8) == 0xf0) {
      len = 4; cp = c & 0x07; min = 0x10000;
    }
    else
      return false;
    if (n - i < len)
      return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

/* A decimal number in [s, s + n) within [min, max]. */
static int
parse_number (const char *s, size_t n, uint64_t min, uint64_t max,
              uint64_t *out)
{
  uint64_t v = 0;

  if (n == 0)
    return -1;
  for (size_t i = 0; i < n; ++i) {
    if (!is_digit ((unsigned char) s[i]))
      return -1;
    v = v * 10 + (uint64_t) (s[i] - '0');
    if (v > max)
      return -2;
  }
  if (v < min)
    return -2;
  *out = v;
  return 0;
}

/* Host names: letters, digits, '-', '.', '_' (underscores appear in
 * real names even though DNS forbids them); not starting with '-' (an
 * option to any helper program) or '.'.
 */
static int
check_host_name (struct parser *p, const char *h, size_t n, const char *what)
{
  char b[16];

  if (n > VD_NBD_URI_MAX_HOST)
    return fail (p, "the %s is %zu bytes long (the limit is %d)", what, n,
                 VD_NBD_URI_MAX_HOST);
  if (h[0] == '-' || h[0] == '.')
    return fail (p, "the %s '%s' may not start with '%c'", what, h, h[0]);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = h[i];
    if (!(is_alpha (c) || is_digit (c) || c == '-' || c == '.' || c == '_'))
      return fail (p, "the %s contains %s, which is not allowed in a host "
                   "name", what, show_byte (c, b, sizeof b));
  }
  return 0;
}

/* Scheme table. */
static const struct {
  const char *name;
  int transport;
  bool tls;
} schemes[] = {
  { "nbd", VD_NBD_TRANSPORT_TCP, false },
  { "nbds", VD_NBD_TRANSPORT_TCP, true },
  { "nbd+unix", VD_NBD_TRANSPORT_UNIX, false },
  { "nbds+unix", VD_NBD_TRANSPORT_UNIX, true },
  { "nbd+vsock", VD_NBD_TRANSPORT_VSOCK, false },
  { "nbds+vsock", VD_NBD_TRANSPORT_VSOCK, true },
};

#define SCHEME_LIST "nbd://, nbds://, nbd+unix://, nbds+unix:// or " \
  "nbd+vsock://"

const char *
vd_nbd_uri_scheme (int transport, bool tls)
{
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; ++i)
    if (schemes[i].transport == transport && schemes[i].tls == tls)
      return schemes[i].name;
  return "nbd";
}

const char *
vd_nbd_tls_type_name (int t)
{
  switch (t) {
  case VD_NBD_TLS_TYPE_ANON: return "anon";
  case VD_NBD_TLS_TYPE_X509: return "x509";
  case VD_NBD_TLS_TYPE_PSK: return "psk";
  default: return "default";
  }
}

/* Before any scheme: explain what the string looks like instead. */
static int
no_scheme (struct parser *p, const char *uri)
{
  if (uri[0] == '\0')
    return fail (p, "empty NBD URI (expected nbd://HOST[:PORT]/EXPORT or "
                 "nbd+unix:///EXPORT?socket=PATH)");
  if (uri[0] == '/' || uri[0] == '.' || uri[0] == '~')
    return fail (p, "not a URI but a path; for a Unix socket write "
                 "nbd+unix:///?socket=%s (the export name goes after the "
                 "third slash)", uri);
  {
    /* "192.0.2.7:10809": a host and port without a scheme. */
    const char *colon = strrchr (uri, ':');
    if (colon && colon[1] && strspn (colon + 1, "0123456789") ==
        strlen (colon + 1) && strcspn (uri, "/?#") > (size_t) (colon - uri))
      return fail (p, "not an NBD URI: no scheme; for a TCP server write "
                   "nbd://%s/", uri);
  }
  return fail (p, "not an NBD URI: no scheme (expected nbd://HOST[:PORT]/"
               "EXPORT or nbd+unix:///EXPORT?socket=PATH)");
}

static int
parse_scheme (struct parser *p, const char *uri, struct vd_nbd_uri *u,
              const char **rest)
{
  size_t n = 0;
  const char *colon;

  if (!is_alpha ((unsigned char) uri[0]))
    return no_scheme (p, uri);
  while (is_alpha ((unsigned char) uri[n]) || is_digit ((unsigned char) uri[n]) ||
         uri[n] == '+' || uri[n] == '-' || uri[n] == '.')
    n++;
  if (uri[n] != ':')
    return no_scheme (p, uri);
  colon = uri + n;

  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; ++i) {
    if (strlen (schemes[i].name) == n &&
        strncasecmp (uri, schemes[i].name, n) == 0) {
      u->transport = schemes[i].transport;
      u->tls = schemes[i].tls;
      if (strncmp (colon, "://", 3) != 0) {
        const char *r = colon + 1;
        while (*r == '/')
          r++;
        if (schemes[i].transport == VD_NBD_TRANSPORT_UNIX)
          return fail (p, "expected '//' after '%.*s:' (write %s:///%s)",
                       (int) n, uri, schemes[i].name, r);
        return fail (p, "expected '//' after '%.*s:' (write %s://%s%s)",
                     (int) n, uri, schemes[i].name,
                     colon[1] == '/' ? "HOST/" : "", r);
      }
      *rest = colon + 3;
      return 0;
    }
  }

  /* Unknown scheme: say what the string probably meant. */
  if (strncasecmp (uri, "nbd+tcp", n) == 0 && n == 7)
    return fail (p, "unknown scheme 'nbd+tcp' (QEMU's spelling); the NBD URI "
                 "standard writes TCP as nbd://%s",
                 strncmp (colon, "://", 3) == 0 ? colon + 3 : colon + 1);
  if (n >= 4 && strncasecmp (uri, "nbd+", 4) == 0)
    return fail (p, "the %.*s transport is not supported (use " SCHEME_LIST
                 ")", (int) (n - 4), uri + 4);
  if (n >= 5 && strncasecmp (uri, "nbds+", 5) == 0)
    return fail (p, "the %.*s transport is not supported (use " SCHEME_LIST
                 ")", (int) (n - 5), uri + 5);
  {
    /* "localhost:10809" or "example.com:10809/disk" */
    size_t d = 0;
    while (is_digit ((unsigned char) colon[1 + d]))
      d++;
    if (d > 0 && (colon[1 + d] == '\0' || colon[1 + d] == '/'))
      return fail (p, "unknown scheme '%.*s'; for a TCP server write "
                   "nbd://%s%s", (int) n, uri, uri,
                   colon[1 + d] == '\0' ? "/" : "");
  }
  return fail (p, "unknown URI scheme '%.*s' (NBD URIs start with "
               SCHEME_LIST ")", (int) n, uri);
}

/* RFC 3986 characters.  The query may also hold '/' and '?'. */
static int
check_chars (struct parser *p, const char *s)
{
  char b[16];

  for (const char *q = s; *q; ++q) {
    unsigned char c = *q;
    if (is_unreserved (c) || is_sub_delim (c) || is_gen_delim (c) || c == '%')
      continue;
    return fail (p, "%s at byte %zu is not allowed in a URI (percent-encode "
                 "it as %%%02X)", show_byte (c, b, sizeof b),
                 (size_t) (q - p->uri) + 1, c);
  }
  return 0;
}

/* Characters allowed in a decoded path/query segment's raw form. */
static int
check_part_chars (struct parser *p, const char *s, size_t n, const char *what,
                  bool query)
{
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = s[i];
    if (is_unreserved (c) || is_sub_delim (c) || c == ':' || c == '@' ||
        c == '/' || c == '%' || (query && c == '?'))
      continue;
    return fail (p, "'%c' at byte %zu must be percent-encoded in the %s "
                 "(as %%%02X)", c, (size_t) (s + i - p->uri) + 1, what, c);
  }
  return 0;
}

static int
parse_authority (struct parser *p, const char *a, size_t n,
                 struct vd_nbd_uri *u, bool *have_port, const char **portp,
                 size_t *portn)
{
  const char *at = memchr (a, '@', n);
  const char *h, *end = a + n;
  size_t len;

  *have_port = false;
  if (at) {
    size_t ulen = at - a;
    if (memchr (at + 1, '@', end - at - 1))
      return fail (p, "more than one '@' in the authority (percent-encode "
                   "'@' in a user name as %%40)");
    if (ulen == 0)
      return fail (p, "empty user name before '@'");
    if (memchr (a, ':', ulen))
      return fail (p, "passwords in NBD URIs are not supported (remove "
                   "':...' after the user name; use tls-psk-file= for "
                   "pre-shared keys)");
    if (check_part_chars (p, a, ulen, "user name", false) == -1 ||
        decode (p, a, ulen, "user name", &u->user, &len) == -1)
      return -1;
    if (strlen (u->user) != len)
      return fail (p, "the user name contains a NUL byte (%%00)");
    if (len > NBD_MAX_STRING)
      return fail (p, "the user name is %zu bytes long (the limit is %d)",
                   len, NBD_MAX_STRING);
    h = at + 1;
  }
  else
    h = a;

  if (h < end && *h == '[') {
    const char *close = memchr (h, ']', end - h);
    const char *zone;
    char addr[64];
    size_t alen;
    unsigned char bin[16];

    if (close == NULL)
      return fail (p, "unterminated IPv6 address: missing ']' (write "
                   "nbd://[::1]/)");
    if (close > h + 1 && (h[1] == 'v' || h[1] == 'V'))
      return fail (p, "IPvFuture addresses ('[v...]') are not supported");
    zone = NULL;
    for (const char *q = h + 1; q + 2 < close; ++q)
      if (q[0] == '%' && q[1] == '2' && q[2] == '5') {
        zone = q;
        break;
      }
    alen = (zone ? zone : close) - (h + 1);
    if (alen == 0 || alen >= sizeof addr)
      return fail (p, "invalid IPv6 address '%.*s'", (int) (close - h - 1),
                   h + 1);
    memcpy (addr, h + 1, alen);
    addr[alen] = '\0';
    if (strchr (addr, '%'))
      return fail (p, "write the IPv6 zone as %%25ZONE (RFC 6874), for "
                   "example nbd://[fe80::1%%25eth0]/");
    if (inet_pton (AF_INET6, addr, bin) != 1)
      return fail (p, "invalid IPv6 address '%s'", addr);
    if (zone) {
      size_t zlen = close - (zone + 3);
      if (zlen == 0)
        return fail (p, "empty IPv6 zone after '%%25'");
      for (size_t i = 0; i < zlen; ++i)
        if (!is_unreserved ((unsigned char) zone[3 + i]) && zone[3 + i] != '%')
          return fail (p, "invalid character '%c' in the IPv6 zone",
                       zone[3 + i]);
      if (decode (p, zone + 3, zlen, "IPv6 zone", &u->zone, &zlen) == -1)
        return -1;
      if (check_host_name (p, u->zone, zlen, "IPv6 zone") == -1)
        return -1;
      if (strlen (u->zone) != zlen || zlen > 64)
        return fail (p, "invalid IPv6 zone");
    }
    u->host = strdup (addr);
    if (u->host == NULL)
      return oom (p);
    u->host_is_ipv6 = true;
    h = close + 1;
    if (h < end) {
      if (*h != ':')
        return fail (p, "unexpected '%c' after the IPv6 address (expected "
                     "':PORT' or '/')", *h);
      *have_port = true;
      *portp = h + 1;
      *portn = end - (h + 1);
    }
    return 0;
  }

  /* reg-name or IPv4, then an optional port. */
  {
    const char *colon = memchr (h, ':', end - h);
    size_t hlen = (colon ? colon : end) - h;
    char *host;
    unsigned char bin[4];

    if (colon && memchr (colon + 1, ':', end - colon - 1))
      return fail (p, "IPv6 addresses must be in brackets (write "
                   "nbd://[%.*s]/)", (int) (end - h), h);
    if (colon) {
      *have_port = true;
      *portp = colon + 1;
      *portn = end - (colon + 1);
    }
    if (hlen == 0)
      return 0;
    if (memchr (h, '[', hlen) || memchr (h, ']', hlen))
      return fail (p, "misplaced '[' or ']' in the host name");
    if (decode (p, h, hlen, "host name", &host, &len) == -1)
      return -1;
    u->host = host;
    if (strlen (host) != len)
      return fail (p, "the host name contains a NUL byte (%%00)");
    if (check_host_name (p, host, len, "host name") == -1)
      return -1;
    /* All digits and dots: must be a real dotted-quad IPv4 address
     * (getaddrinfo would take "1.2.3" or "123" as legacy forms).
     */
    if (u->transport != VD_NBD_TRANSPORT_VSOCK &&
        strspn (host, "0123456789.") == len) {
      if (inet_pton (AF_INET, host, bin) != 1)
        return fail (p, "invalid IPv4 address '%s'", host);
      u->host_is_ipv4 = true;
    }
  }
  return 0;
}

static int
set_string_param (struct parser *p, char **field, const char *key,
                  char *value, size_t len, size_t max)
{
  if (*field)
    return fail (p, "query parameter '%s' is given twice", key);
  *field = value;
  if (len == 0)
    return fail (p, "query parameter '%s' is empty", key);
  if (strlen (value) != len)
    return fail (p, "query parameter '%s' contains a NUL byte (%%00)", key);
  if (len > max)
    return fail (p, "query parameter '%s' is %zu bytes long (the limit is "
                 "%zu)", key, len, max);
  return 0;
}

static int
parse_param (struct parser *p, const char *s, size_t n, struct vd_nbd_uri *u)
{
  const char *eq = memchr (s, '=', n);
  char *key = NULL, *value = NULL;
  size_t klen, vlen;
  int r = -1;

  if (eq == NULL) {
    if (decode (p, s, n, "query", &key, &klen) == -1)
      return -1;
    fail (p, "query parameter '%s' has no value (write %s=VALUE)", key, key);
    free (key);
    return -1;
  }
  if (decode (p, s, eq - s, "query", &key, &klen) == -1)
    return -1;
  if (decode (p, eq + 1, n - (eq + 1 - s), "query", &value, &vlen) == -1)
    goto out;
  if (klen == 0) {
    fail (p, "query parameter with an empty name ('=%s')", value);
    goto out;
  }
  if (strlen (key) != klen) {
    fail (p, "a query parameter name contains a NUL byte (%%00)");
    goto out;
  }

  if (strcmp (key, "socket") == 0) {
    if (u->transport != VD_NBD_TRANSPORT_UNIX) {
      fail (p, "socket= is only for Unix sockets (write nbd+unix:///"
            "EXPORT?socket=PATH)");
      goto out;
    }
    if (u->socket) {
      fail (p, "query parameter 'socket' is given twice");
      goto out;
    }
    if (vlen == 0) {
      fail (p, "empty socket path (write socket=PATH)");
      goto out;
    }
    /* A leading NUL selects the Linux abstract namespace; any other NUL
     * would silently cut the path.
     */
    if (vlen == 1 && value[0] == '\0') {
      fail (p, "empty abstract socket name after %%00");
      goto out;
    }
    if (memchr (value + 1, '\0', vlen - 1)) {
      fail (p, "the socket path contains a NUL byte (%%00) after its "
            "first byte");
      goto out;
    }
    if (vlen > VD_NBD_URI_MAX_SOCKET) {
      fail (p, "the socket path is %zu bytes long; Unix sockets allow at "
            "most %d", vlen, VD_NBD_URI_MAX_SOCKET);
      goto out;
    }
    u->socket = value;
    u->socket_len = vlen;
    value = NULL;
  }
  else if (strcmp (key, "tls-type") == 0) {
    if (u->tls_type != VD_NBD_TLS_TYPE_DEFAULT) {
      fail (p, "query parameter 'tls-type' is given twice");
      goto out;
    }
    if (strcasecmp (value, "anon") == 0)
      u->tls_type = VD_NBD_TLS_TYPE_ANON;
    else if (strcasecmp (value, "x509") == 0)
      u->tls_type = VD_NBD_TLS_TYPE_X509;
    else if (strcasecmp (value, "psk") == 0)
      u->tls_type = VD_NBD_TLS_TYPE_PSK;
    else {
      fail (p, "invalid tls-type '%s' (expected anon, x509 or psk)", value);
      goto out;
    }
  }
  else if (strcmp (key, "tls-verify-peer") == 0) {
    if (u->tls_verify_peer != -1) {
      fail (p, "query parameter 'tls-verify-peer' is given twice");
      goto out;
    }
    if (strcmp (value, "0") == 0)
      u->tls_verify_peer = 0;
    else if (strcmp (value, "1") == 0)
      u->tls_verify_peer = 1;
    else {
      fail (p, "invalid tls-verify-peer '%s' (expected 0 or 1)", value);
      goto out;
    }
  }
  else if (strcmp (key, "tls-hostname") == 0) {
    r = set_string_param (p, &u->tls_hostname, key, value, vlen,
                          VD_NBD_URI_MAX_HOST);
    if (u->tls_hostname == value)
      value = NULL;
    if (r == -1 ||
        check_host_name (p, u->tls_hostname, vlen, "tls-hostname") == -1) {
      r = -1;
      goto out;
    }
    r = -1;
  }
  else if (strcmp (key, "tls-certificates") == 0) {
    r = set_string_param (p, &u->tls_certificates, key, value, vlen,
                          VD_NBD_URI_MAX_PATH);
    if (u->tls_certificates == value)
      value = NULL;
    if (r == -1)
      goto out;
    r = -1;
  }
  else if (strcmp (key, "tls-psk-file") == 0) {
    r = set_string_param (p, &u->tls_psk_file, key, value, vlen,
                          VD_NBD_URI_MAX_PATH);
    if (u->tls_psk_file == value)
      value = NULL;
    if (r == -1)
      goto out;
    r = -1;
  }
  else if (strncmp (key, "x-", 2) == 0) {
    u->nr_ignored++;
    if (u->first_ignored == NULL) {
      u->first_ignored = key;
      key = NULL;
    }
  }
  else {
    fail (p, "unknown query parameter '%s' (NBD URIs take socket, tls-type, "
          "tls-hostname, tls-verify-peer, tls-certificates and tls-psk-file; "
          "experimental parameters start with 'x-')", key);
    goto out;
  }
  r = 0;
 out:
  free (key);
  free (value);
  return r;
}

static int
parse_query (struct parser *p, const char *q, size_t n, struct vd_nbd_uri *u)
{
  const char *end = q + n;

  if (check_part_chars (p, q, n, "query", true) == -1)
    return -1;
  while (q < end) {
    const char *sep = q;
    while (sep < end && *sep != '&' && *sep != ';')
      sep++;
    if (sep > q && parse_param (p, q, sep - q, u) == -1)
      return -1;
    q = sep < end ? sep + 1 : end;
  }
  return 0;
}

static int
parse (struct parser *p, const char *uri, struct vd_nbd_uri *u)
{
  const char *rest = NULL, *auth_end, *path, *path_end, *query, *hash;
  bool have_port = false;
  const char *portp = NULL;
  size_t portn = 0, len;
  uint64_t v;

  u->tls_verify_peer = -1;

  if (uri == NULL)
    return fail (p, "no NBD URI given");
  len = strnlen (uri, VD_NBD_URI_MAX_LEN + 1);
  if (len > VD_NBD_URI_MAX_LEN)
    return fail (p, "the URI is longer than %d bytes", VD_NBD_URI_MAX_LEN);

  if (parse_scheme (p, uri, u, &rest) == -1)
    return -1;
  hash = strchr (rest, '#');
  if (hash)
    return fail (p, "fragments ('#%.32s') have no meaning in NBD URIs "
                 "(percent-encode '#' in an export name as %%23)", hash + 1);
  if (check_chars (p, rest) == -1)
    return -1;

  auth_end = rest + strcspn (rest, "/?");
  path = auth_end;
  path_end = path + strcspn (path, "?");
  query = *path_end == '?' ? path_end + 1 : NULL;

  if (parse_authority (p, rest, auth_end - rest, u, &have_port, &portp,
                       &portn) == -1)
    return -1;

  /* Transport-specific authority rules. */
  switch (u->transport) {
  case VD_NBD_TRANSPORT_TCP:
    if (u->host == NULL)
      return fail (p, "missing host name (write %s://localhost/EXPORT for "
                   "this machine, or nbd+unix:///EXPORT?socket=PATH for a "
                   "Unix socket)", vd_nbd_uri_scheme (u->transport, u->tls));
    u->port = NBD_DEFAULT_PORT;
    if (have_port && portn > 0) {
      int r = parse_number (portp, portn, 1, 65535, &v);
      if (r == -1)
        return fail (p, "invalid port '%.*s' (expected a number from 1 to "
                     "65535)", (int) portn, portp);
      if (r == -2)
        return fail (p, "port %.*s is out of range (expected 1 to 65535)",
                     (int) portn, portp);
      u->port = (uint32_t) v;
    }
    break;

  case VD_NBD_TRANSPORT_UNIX:
    if (u->host || have_port)
      return fail (p, "a Unix socket URI takes no host or port (write "
                   "%s:///EXPORT?socket=PATH)",
                   vd_nbd_uri_scheme (u->transport, u->tls));
    break;

  case VD_NBD_TRANSPORT_VSOCK:
    if (u->host_is_ipv6)
      return fail (p, "a vsock URI takes a numeric CID, not an IPv6 address");
    u->cid = VD_NBD_VSOCK_DEFAULT_CID;
    if (u->host) {
      int r = parse_number (u->host, strlen (u->host), 0, UINT32_MAX - 1, &v);
      if (r == -1)
        return fail (p, "the vsock CID '%s' must be a number (2 is the host)",
                     u->host);
      if (r == -2)
        return fail (p, "the vsock CID '%s' is out of range", u->host);
      u->cid = (uint32_t) v;
      free (u->host);
      u->host = NULL;
      u->host_is_ipv4 = false;
    }
    u->port = NBD_DEFAULT_PORT;
    if (have_port && portn > 0) {
      int r = parse_number (portp, portn, 1, UINT32_MAX - 1, &v);
      if (r == -1)
        return fail (p, "invalid vsock port '%.*s' (expected a number)",
                     (int) portn, portp);
      if (r == -2)
        return fail (p, "vsock port %.*s is out of range", (int) portn, portp);
      u->port = (uint32_t) v;
    }
    break;
  }

  /* Export name: the path minus one '/', percent-decoded. */
  {
    const char *e = path;
    size_t elen;
    if (check_part_chars (p, path, path_end - path, "path", false) == -1)
      return -1;
    if (e < path_end && *e == '/')
      e++;
    if (decode (p, e, path_end - e, "export name", &u->export_name,
                &elen) == -1)
      return -1;
    if (strlen (u->export_name) != elen)
      return fail (p, "the export name contains a NUL byte (%%00), which NBD "
                   "forbids");
    if (elen > NBD_MAX_STRING)
      return fail (p, "the export name is %zu bytes long (NBD limits names "
                   "to %d bytes)", elen, NBD_MAX_STRING);
    if (!valid_utf8 ((const unsigned char *) u->export_name, elen))
      return fail (p, "the export name is not valid UTF-8 (NBD strings are "
                   "UTF-8)");
  }

  if (query && parse_query (p, query, strlen (query), u) == -1)
    return -1;

  if (u->transport == VD_NBD_TRANSPORT_UNIX && u->socket == NULL)
    return fail (p, "missing socket= (a Unix socket URI needs the path: "
                 "%s:///%s?socket=PATH)",
                 vd_nbd_uri_scheme (u->transport, u->tls),
                 strlen (u->export_name) < 64 ? u->export_name : "EXPORT");
  if (u->tls_psk_file && u->tls_type != VD_NBD_TLS_TYPE_DEFAULT &&
      u->tls_type != VD_NBD_TLS_TYPE_PSK)
    return fail (p, "tls-psk-file= needs tls-type=psk (not %s)",
                 vd_nbd_tls_type_name (u->tls_type));
  if (u->tls_certificates && u->tls_type != VD_NBD_TLS_TYPE_DEFAULT &&
      u->tls_type != VD_NBD_TLS_TYPE_X509)
    return fail (p, "tls-certificates= needs tls-type=x509 (not %s)",
                 vd_nbd_tls_type_name (u->tls_type));
  if (u->tls_certificates && u->tls_psk_file)
    return fail (p, "tls-certificates= and tls-psk-file= exclude each other");
  return 0;
}

int
vd_nbd_uri_parse (const char *uri, struct vd_nbd_uri *u, char *err,
                  size_t errlen)
{
  struct parser p = { .uri = uri, .err = err, .errlen = errlen };

  memset (u, 0, sizeof *u);
  if (errlen > 0)
    err[0] = '\0';
  if (parse (&p, uri, u) == -1) {
    vd_nbd_uri_free (u);
    return -1;
  }
  return 0;
}

void
vd_nbd_uri_free (struct vd_nbd_uri *u)
{
  free (u->user);
  free (u->host);
  free (u->zone);
  free (u->export_name);
  free (u->socket);
  free (u->tls_hostname);
  free (u->tls_certificates);
  free (u->tls_psk_file);
  free (u->first_ignored);
  memset (u, 0, sizeof *u);
  u->tls_verify_peer = -1;
}

/* Formatting. */

struct sbuf {
  char *s;
  size_t len, cap;
  bool failed;
};

static void
put (struct sbuf *b, const char *s, size_t n)
{
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc (b->s, cap);
    if (p == NULL) {
      b->failed = true;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy (b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static void
puts_ (struct sbuf *b, const char *s)
{
  put (b, s, strlen (s));
}

/* keep: extra characters left as they are besides unreserved. */
static void
put_encoded (struct sbuf *b, const char *s, size_t n, const char *keep)
{
  static const char hex[] = "0123456789ABCDEF";

  for (size_t i = 0; i < n; ++i) {
    unsigned char c = s[i];
    if (is_unreserved (c) || (c != '\0' && strchr (keep, c)))
      put (b, (const char *) &s[i], 1);
    else {
      char e[3] = { '%', hex[c >> 4], hex[c & 15] };
      put (b, e, 3);
    }
  }
}

static void
put_param (struct sbuf *b, bool *first, const char *key, const char *v,
           size_t n)
{
  puts_ (b, *first ? "?" : "&");
  *first = false;
  puts_ (b, key);
  puts_ (b, "=");
  put_encoded (b, v, n, "/:@");
}

char *
vd_nbd_uri_format (const struct vd_nbd_uri *u)
{
  struct sbuf b = { 0 };
  char num[32];
  bool first = true;

  puts_ (&b, vd_nbd_uri_scheme (u->transport, u->tls));
  puts_ (&b, "://");
  if (u->user) {
    put_encoded (&b, u->user, strlen (u->user), "!$&'()*+,;=");
    puts_ (&b, "@");
  }
  switch (u->transport) {
  case VD_NBD_TRANSPORT_TCP:
    if (u->host_is_ipv6) {
      puts_ (&b, "[");
      puts_ (&b, u->host);
      if (u->zone) {
        puts_ (&b, "%25");
        put_encoded (&b, u->zone, strlen (u->zone), "");
      }
      puts_ (&b, "]");
    }
    else if (u->host)
      put_encoded (&b, u->host, strlen (u->host), "");
    if (u->port != NBD_DEFAULT_PORT) {
      snprintf (num, sizeof num, ":%u", (unsigned) u->port);
      puts_ (&b, num);
    }
    break;
  case VD_NBD_TRANSPORT_VSOCK:
    snprintf (num, sizeof num, "%u", (unsigned) u->cid);
    puts_ (&b, num);
    if (u->port != NBD_DEFAULT_PORT) {
      snprintf (num, sizeof num, ":%u", (unsigned) u->port);
      puts_ (&b, num);
    }
    break;
  default:
    break;
  }
  puts_ (&b, "/");
  if (u->export_name)
    put_encoded (&b, u->export_name, strlen (u->export_name),
                 "!$'()*+,=:@/");
  if (u->socket)
    put_param (&b, &first, "socket", u->socket, u->socket_len);
  if (u->tls_type != VD_NBD_TLS_TYPE_DEFAULT) {
    const char *t = vd_nbd_tls_type_name (u->tls_type);
    put_param (&b, &first, "tls-type", t, strlen (t));
  }
  if (u->tls_hostname)
    put_param (&b, &first, "tls-hostname", u->tls_hostname,
               strlen (u->tls_hostname));
  if (u->tls_verify_peer >= 0)
    put_param (&b, &first, "tls-verify-peer",
               u->tls_verify_peer ? "1" : "0", 1);
  if (u->tls_certificates)
    put_param (&b, &first, "tls-certificates", u->tls_certificates,
               strlen (u->tls_certificates));
  if (u->tls_psk_file)
    put_param (&b, &first, "tls-psk-file", u->tls_psk_file,
               strlen (u->tls_psk_file));
  if (b.failed || b.s == NULL) {
    free (b.s);
    errno = ENOMEM;
    return NULL;
  }
  return b.s;
}

void
vd_nbd_uri_describe_endpoint (const struct vd_nbd_uri *u, char *buf,
                              size_t len)
{
  switch (u->transport) {
  case VD_NBD_TRANSPORT_TCP:
    if (u->host_is_ipv6)
      snprintf (buf, len, "[%s%s%s]:%u", u->host, u->zone ? "%" : "",
                u->zone ? u->zone : "", (unsigned) u->port);
    else
      snprintf (buf, len, "%s:%u", u->host ? u->host : "?",
                (unsigned) u->port);
    break;
  case VD_NBD_TRANSPORT_UNIX:
    if (u->socket && u->socket_len > 0 && u->socket[0] == '\0')
      snprintf (buf, len, "unix socket @%.*s", (int) (u->socket_len - 1),
                u->socket + 1);
    else
      snprintf (buf, len, "unix socket %s", u->socket ? u->socket : "?");
    break;
  case VD_NBD_TRANSPORT_VSOCK:
    snprintf (buf, len, "vsock %u:%u", (unsigned) u->cid, (unsigned) u->port);
    break;
  default:
    snprintf (buf, len, "?");
  }
}
