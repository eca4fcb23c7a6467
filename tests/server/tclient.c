/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The blocking test client (see tclient.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tclient.h"
#include "byte-order.h"

_Thread_local unsigned tc_last_data_chunks, tc_last_hole_chunks;
static _Atomic uint64_t next_cookie = 1000;

static int
fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static int
fail (const char *fmt, ...)
{
  va_list args;

  fprintf (stderr, "tclient: ");
  va_start (args, fmt);
  vfprintf (stderr, fmt, args);
  va_end (args);
  fputc ('\n', stderr);
  return -1;
}

void
tc_init_fd (struct tclient *c, int fd)
{
  memset (c, 0, sizeof *c);
  c->fd = fd;
  c->timeout_ms = 10000;
}

int
tc_connect (struct tclient *c, const char *where)
{
  int fd;

  if (strchr (where, '/') || strchr (where, ':') == NULL) {
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen (where) >= sizeof sun.sun_path)
      return fail ("%s: path too long", where);
    memcpy (sun.sun_path, where, strlen (where) + 1);
    fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || connect (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
      int e = errno;
      if (fd >= 0)
        close (fd);
      return fail ("connect %s: %s", where, strerror (e));
    }
  }
  else {
    char host[256];
    const char *colon = strrchr (where, ':');
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
    snprintf (host, sizeof host, "%.*s", (int) (colon - where), where);
    if (getaddrinfo (host, colon + 1, &hints, &res) != 0)
      return fail ("%s: cannot resolve", where);
    fd = socket (res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || connect (fd, res->ai_addr, res->ai_addrlen) == -1) {
      int e = errno;
      if (fd >= 0)
        close (fd);
      freeaddrinfo (res);
      return fail ("connect %s: %s", where, strerror (e));
    }
    freeaddrinfo (res);
  }
  tc_init_fd (c, fd);
  return 0;
}

void
tc_close (struct tclient *c)
{
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
}

int
tc_write (struct tclient *c, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t r = send (c->fd, p, len, MSG_NOSIGNAL);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return fail ("send: %s", strerror (errno));
    }
    p += r;
    len -= r;
  }
  return 0;
}

int
tc_read (struct tclient *c, void *buf, size_t len)
{
  char *p = buf;

  while (len > 0) {
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    int r = poll (&pfd, 1, c->timeout_ms);
    ssize_t n;
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      return fail ("read: %s", r == 0 ? "timed out" : strerror (errno));
    n = recv (c->fd, p, len, 0);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0)
      return fail ("read: %s", n == 0 ? "server closed the connection"
                   : strerror (errno));
    p += n;
    len -= n;
  }
  return 0;
}

int
tc_wait_eof (struct tclient *c, int timeout_ms)
{
  char b[4096];
  struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

  for (;;) {
    int r = poll (&pfd, 1, timeout_ms);
    ssize_t n;
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      return r == 0 ? 0 : -1;
    n = recv (c->fd, b, sizeof b, 0);
    if (n == 0 || (n == -1 && errno == ECONNRESET))
      return 1;
    if (n < 0)
      return -1;
    return 0;
  }
}

int
tc_handshake_start (struct tclient *c, uint32_t flags)
{
  unsigned char buf[VD_NBD_GREETING_SIZE];
  const char *why;

  if (tc_read (c, buf, sizeof buf) == -1)
    return -1;
  if (vd_nbd_decode_greeting (buf, sizeof buf, &c->hflags, &why) == -1)
    return fail ("greeting: %s", why);
  if (flags == UINT32_MAX)
    flags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;
  vd_nbd_encode_client_flags (buf, flags);
  return tc_write (c, buf, VD_NBD_CLIENT_FLAGS_SIZE);
}

int
tc_send_option (struct tclient *c, uint32_t option, const void *data,
                uint32_t len)
{
  unsigned char h[NBD_OPTION_HEADER_SIZE];

  vd_nbd_encode_option_header (h, option, len);
  if (tc_write (c, h, sizeof h) == -1)
    return -1;
  return len ? tc_write (c, data, len) : 0;
}

int
tc_read_option_reply (struct tclient *c, struct vd_nbd_option_reply *r,
                      void *buf, size_t cap)
{
  unsigned char h[NBD_OPTION_REPLY_HEADER_SIZE];
  const char *why;
  uint32_t left;

  if (tc_read (c, h, sizeof h) == -1)
    return -1;
  if (vd_nbd_decode_option_reply_header (h, sizeof h, r, &why) == -1)
    return fail ("option reply: %s", why);
  left = r->length;
  if (left <= cap)
    return left ? tc_read (c, buf, left) : 0;
  if (tc_read (c, buf, cap) == -1)
    return -1;
  left -= cap;
  while (left) {
    char tmp[4096];
    size_t n = left < sizeof tmp ? left : sizeof tmp;
    if (tc_read (c, tmp, n) == -1)
      return -1;
    left -= n;
  }
  return 0;
}

int64_t
tc_option (struct tclient *c, uint32_t option, const void *data,
           uint32_t len, tc_reply_fn fn, void *ud)
{
  /* Not static: the stress test negotiates from many threads. */
  const size_t cap = 65536;
  unsigned char *buf = malloc (cap);
  struct vd_nbd_option_reply r;
  int64_t ret = -1;

  if (buf == NULL)
    return fail ("out of memory");
  if (tc_send_option (c, option, data, len) == -1)
    goto out;
  for (;;) {
    if (tc_read_option_reply (c, &r, buf, cap - 1) == -1)
      goto out;
    if (r.option != option) {
      fail ("reply for option %" PRIu32 ", expected %" PRIu32, r.option,
            option);
      goto out;
    }
    if (r.type == NBD_REP_ACK || NBD_REP_IS_ERR (r.type)) {
      ret = r.type;
      goto out;
    }
    if (fn)
      fn (ud, &r, buf);
  }
 out:
  free (buf);
  return ret;
}

struct go_state {
  struct tclient *c;
  bool got_export;
};

static void
go_reply (void *ud, const struct vd_nbd_option_reply *r,
          const unsigned char *data)
{
  struct go_state *g = ud;
  struct vd_nbd_info info;
  const char *why;

  if (r->type == NBD_REP_META_CONTEXT) {
    uint32_t id, nl;
    const char *name;
    if (vd_nbd_decode_rep_meta_context (data, r->length, &id, &name, &nl,
                                        &why) == 0 &&
        nl == 15 && memcmp (name, "base:allocation", 15) == 0)
      g->c->meta_id = id;
    return;
  }
  if (r->type != NBD_REP_INFO ||
      vd_nbd_decode_info (data, r->length, &info, &why) == -1)
    return;
  if (info.type == NBD_INFO_EXPORT) {
    g->c->size = info.size;
    g->c->tflags = info.transmission_flags;
    g->got_export = true;
  }
  else if (info.type == NBD_INFO_BLOCK_SIZE) {
    g->c->min_block = info.minimum;
    g->c->pref_block = info.preferred;
    g->c->max_payload = info.maximum;
  }
}

int
tc_negotiate (struct tclient *c, const char *export, unsigned what)
{
  unsigned char buf[8192];
  const uint16_t reqs[] = { NBD_INFO_NAME, NBD_INFO_DESCRIPTION,
                            NBD_INFO_BLOCK_SIZE };
  const char *q[] = { "base:allocation" };
  struct go_state g = { .c = c };
  int64_t t;
  ssize_t n;

  if (tc_handshake_start (c, UINT32_MAX) == -1)
    return -1;
  if (what & TC_EXT) {
    if ((t = tc_option (c, NBD_OPT_EXTENDED_HEADERS, NULL, 0, NULL, NULL))
        != NBD_REP_ACK)
      return fail ("NBD_OPT_EXTENDED_HEADERS: %s",
                   t < 0 ? "failed" : vd_nbd_rep_name (t));
    c->extended = true;
  }
  else if (what & TC_SR) {
    if ((t = tc_option (c, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NULL, NULL))
        != NBD_REP_ACK)
      return fail ("NBD_OPT_STRUCTURED_REPLY: %s",
                   t < 0 ? "failed" : vd_nbd_rep_name (t));
    c->structured = true;
  }
  if (what & TC_META) {
    n = vd_nbd_encode_meta_request (buf, sizeof buf, export, strlen (export),
                                    q, 1, NULL);
    if ((t = tc_option (c, NBD_OPT_SET_META_CONTEXT, buf, n, go_reply, &g))
        != NBD_REP_ACK)
      return fail ("NBD_OPT_SET_META_CONTEXT: %s",
                   t < 0 ? "failed" : vd_nbd_rep_name (t));
  }
  n = vd_nbd_encode_info_request (buf, sizeof buf, export, strlen (export),
                                  reqs, 3, NULL);
  if ((t = tc_option (c, NBD_OPT_GO, buf, n, go_reply, &g)) != NBD_REP_ACK)
    return fail ("NBD_OPT_GO: %s", t < 0 ? "failed" : vd_nbd_rep_name (t));
  if (!g.got_export)
    return fail ("NBD_OPT_GO succeeded without NBD_INFO_EXPORT");
  return 0;
}

int
tc_send_request (struct tclient *c, uint16_t type, uint16_t flags,
                 uint64_t cookie, uint64_t offset, uint64_t length,
                 const void *payload, size_t payload_len)
{
  unsigned char h[NBD_EXTENDED_REQUEST_SIZE];
  struct vd_nbd_request r = { .flags = flags, .type = type,
                              .cookie = cookie, .offset = offset,
                              .length = length };
  size_t n = vd_nbd_encode_request (h, c->extended, &r);

  if (n == 0)
    return fail ("request length does not fit a compact header");
  if (tc_write (c, h, n) == -1)
    return -1;
  return payload_len ? tc_write (c, payload, payload_len) : 0;
}

int
tc_read_reply (struct tclient *c, struct tc_reply *rep, void *data,
               size_t cap, size_t read_len)
{
  unsigned char h[NBD_EXTENDED_REPLY_SIZE];
  const char *why;
  size_t hs;

  if (tc_read (c, h, 4) == -1)
    return -1;
  hs = vd_nbd_reply_header_size (h, 4);
  if (hs == 0)
    return fail ("bad reply magic 0x%08" PRIx32, load_be32 (h));
  if (tc_read (c, h + 4, hs - 4) == -1)
    return -1;
  if (vd_nbd_decode_reply (h, hs, c->structured, c->extended, &rep->h,
                           &why) == -1)
    return fail ("reply: %s", why);
  if (rep->h.kind == VD_NBD_REPLY_SIMPLE) {
    rep->payload_len = (rep->h.error == 0) ? read_len : 0;
    return rep->payload_len ? tc_read (c, data, rep->payload_len) : 0;
  }
  if (rep->h.length > cap)
    return fail ("chunk payload of %" PRIu64 " bytes, more than expected",
                 rep->h.length);
  rep->payload_len = rep->h.length;
  return rep->payload_len ? tc_read (c, data, rep->payload_len) : 0;
}

/* Read the chunks of one reply until DONE; handles errors; for READ
 * places data into buf.
 */
static int
read_chunks (struct tclient *c, uint64_t cookie, uint16_t cmd, void *buf,
             uint64_t req_off, uint64_t req_len, char *err_msg,
             uint64_t *lengths, uint64_t *status, size_t cap, size_t *nr)
{
  const size_t pcap = (cmd == NBD_CMD_READ ? req_len : 0) + 65536 +
    (cap * 16);
  unsigned char *p = malloc (pcap);
  struct tc_reply rep;
  int err = 0, ret = -1;
  bool done = false;

  if (p == NULL)
    return fail ("out of memory");
  if (nr)
    *nr = 0;
  tc_last_data_chunks = tc_last_hole_chunks = 0;
  while (!done) {
    const char *why;
    if (tc_read_reply (c, &rep, p, pcap,
                       cmd == NBD_CMD_READ ? req_len : 0) == -1)
      goto out;
    if (rep.h.cookie != cookie) {
      fail ("reply cookie %" PRIu64 ", expected %" PRIu64, rep.h.cookie,
            cookie);
      goto out;
    }
    if (rep.h.kind == VD_NBD_REPLY_SIMPLE) {
      if (c->extended) {
        fail ("simple reply with extended headers");
        goto out;
      }
      if (cmd == NBD_CMD_READ && c->structured) {
        fail ("simple reply to a structured READ");
        goto out;
      }
      if (cmd == NBD_CMD_READ && rep.h.error == 0 && req_len)
        memcpy (buf, p, req_len);
      err = rep.h.error;
      break;
    }
    if (c->extended && rep.h.offset != req_off) {
      fail ("extended reply offset %" PRIu64 " does not echo %" PRIu64,
            rep.h.offset, req_off);
      goto out;
    }
    done = rep.h.flags & NBD_REPLY_FLAG_DONE;
    switch (rep.h.type) {
    case NBD_REPLY_TYPE_NONE:
      break;
    case NBD_REPLY_TYPE_OFFSET_DATA: {
      struct vd_nbd_offset_data d;
      if (cmd != NBD_CMD_READ ||
          vd_nbd_decode_offset_data (p, rep.payload_len, req_off, req_len, &d,
                                     &why) == -1) {
        fail ("bad OFFSET_DATA chunk");
        goto out;
      }
      memcpy ((char *) buf + (d.offset - req_off), d.data, d.data_len);
      tc_last_data_chunks++;
      break;
    }
    case NBD_REPLY_TYPE_OFFSET_HOLE: {
      uint64_t o;
      uint32_t l;
      if (cmd != NBD_CMD_READ ||
          vd_nbd_decode_offset_hole (p, rep.payload_len, req_off, req_len,
                                     &o, &l, &why) == -1) {
        fail ("bad OFFSET_HOLE chunk");
        goto out;
      }
      memset ((char *) buf + (o - req_off), 0, l);
      tc_last_hole_chunks++;
      break;
    }
    case NBD_REPLY_TYPE_BLOCK_STATUS:
    case NBD_REPLY_TYPE_BLOCK_STATUS_EXT: {
      struct vd_nbd_block_status bs;
      if (cmd != NBD_CMD_BLOCK_STATUS ||
          (rep.h.type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT) != c->extended ||
          vd_nbd_decode_block_status (p, rep.payload_len, rep.h.type, &bs,
                                      &why) == -1) {
        fail ("bad block status chunk");
        goto out;
      }
      if (bs.context_id != c->meta_id) {
        fail ("block status for context %" PRIu32, bs.context_id);
        goto out;
      }
      for (uint32_t i = 0; i < bs.nr_descriptors && *nr < cap; ++i) {
        vd_nbd_block_status_get (&bs, i, &lengths[*nr], &status[*nr]);
        (*nr)++;
      }
      break;
    }
    default:
      if (NBD_REPLY_TYPE_IS_ERR (rep.h.type)) {
        struct vd_nbd_error_chunk ec;
        if (vd_nbd_decode_error_chunk (p, rep.payload_len, rep.h.type, &ec,
                                       &why) == -1) {
          fail ("bad error chunk: %s", why);
          goto out;
        }
        err = ec.error;
        if (err_msg)
          snprintf (err_msg, 256, "%.*s", (int) ec.msg_len, ec.msg);
        break;
      }
      fail ("unexpected chunk type %u", rep.h.type);
      goto out;
    }
  }
  ret = err;
 out:
  free (p);
  return ret;
}

int
tc_pread (struct tclient *c, void *buf, uint64_t len, uint64_t off,
          uint16_t flags, char *err_msg)
{
  uint64_t cookie = next_cookie++;

  if (tc_send_request (c, NBD_CMD_READ, flags, cookie, off, len, NULL, 0)
      == -1)
    return -1;
  return read_chunks (c, cookie, NBD_CMD_READ, buf, off, len, err_msg, NULL,
                      NULL, 0, NULL);
}

int
tc_pwrite (struct tclient *c, const void *buf, uint64_t len, uint64_t off,
           uint16_t flags, char *err_msg)
{
  uint64_t cookie = next_cookie++;

  if (c->extended)
    flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
  if (tc_send_request (c, NBD_CMD_WRITE, flags, cookie, off, len, buf, len)
      == -1)
    return -1;
  return read_chunks (c, cookie, NBD_CMD_WRITE, NULL, off, len, err_msg,
                      NULL, NULL, 0, NULL);
}

int
tc_cmd (struct tclient *c, uint16_t type, uint16_t flags, uint64_t off,
        uint64_t len, char *err_msg)
{
  uint64_t cookie = next_cookie++;

  if (tc_send_request (c, type, flags, cookie, off, len, NULL, 0) == -1)
    return -1;
  return read_chunks (c, cookie, type, NULL, off, len, err_msg, NULL, NULL,
                      0, NULL);
}

int
tc_block_status (struct tclient *c, uint64_t len, uint64_t off,
                 uint16_t flags, uint64_t *lengths, uint64_t *status,
                 size_t cap, size_t *nr, char *err_msg)
{
  uint64_t cookie = next_cookie++;

  if (tc_send_request (c, NBD_CMD_BLOCK_STATUS, flags, cookie, off, len,
                       NULL, 0) == -1)
    return -1;
  return read_chunks (c, cookie, NBD_CMD_BLOCK_STATUS, NULL, off, len,
                      err_msg, lengths, status, cap, nr);
}

int
tc_disconnect (struct tclient *c)
{
  int r = tc_send_request (c, NBD_CMD_DISC, 0, next_cookie++, 0, 0, NULL, 0);
  tc_close (c);
  return r;
}
