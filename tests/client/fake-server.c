/* SPDX-License-Identifier: LGPL-2.1-or-later
 * Copyright (C) 2026 the vdisk authors
 *
 * The scriptable NBD server of fake-server.h.  One thread accepts and
 * serves connections one after the other (the client under test never
 * holds two at once: it closes a connection before reconnecting), with
 * blocking I/O and a poll timeout so fake_stop is prompt.
 *
 * What it checks (a violation is counted and the request refused with
 * EINVAL): request magic for the negotiated header size, offsets and
 * lengths multiple of the minimum block size (unless the request ends at
 * the end of the export), payloads within the maximum, ranges within the
 * export, FUA only when offered, commands only when offered, flags only
 * where valid, PAYLOAD_LEN on writes with extended headers, and no
 * EXPORT_NAME after extended headers.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "byte-order.h"
#include "nbd-proto.h"
#include "fake-server.h"

#define BLK 4096

struct conn {
  struct fake_server *s;
  int fd;
  bool sr, eh;
  bool meta;                    /* base:allocation selected */
  uint16_t eflags;
  uint64_t size;
  int nreq;
  bool shutdown;                /* ESHUTDOWN sent: drain then close */
};

void
fake_config_default (struct fake_config *cfg, uint64_t size)
{
  memset (cfg, 0, sizeof *cfg);
  cfg->size = size;
  cfg->no_zeroes = true;
  cfg->go = cfg->sr = cfg->eh = cfg->meta = true;
  cfg->block_size = true;
  cfg->min_block = 1;
  cfg->pref_block = 4096;
  cfg->max_payload = 32 * 1024 * 1024;
  cfg->eflags = NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
    NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO |
    NBD_FLAG_SEND_CACHE | NBD_FLAG_CAN_MULTI_CONN;
  cfg->export_name = "";
}

static void
violation (struct fake_server *s, const char *fmt, ...)
{
  va_list args;

  atomic_fetch_add (&s->st.violations, 1);
  pthread_mutex_lock (&s->lock);
  va_start (args, fmt);
  vsnprintf (s->last_violation, sizeof s->last_violation, fmt, args);
  va_end (args);
  pthread_mutex_unlock (&s->lock);
  fprintf (stderr, "fake-server: client violation: %s\n", s->last_violation);
}

/* Blocking I/O that gives up when the server stops. */
static int
read_full (struct conn *c, void *buf, size_t n)
{
  size_t done = 0;

  while (done < n) {
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    ssize_t r;
    if (atomic_load (&c->s->quit))
      return -1;
    if (poll (&p, 1, 100) <= 0)
      continue;
    r = read (c->fd, (char *) buf + done, n - done);
    if (r <= 0)
      return -1;
    done += r;
  }
  return 0;
}

static int
write_full (struct conn *c, const void *buf, size_t n)
{
  size_t done = 0;

  while (done < n) {
    ssize_t r = send (c->fd, (const char *) buf + done, n - done,
                      MSG_NOSIGNAL);
    if (r <= 0)
      return -1;
    done += r;
  }
  return 0;
}

static int
opt_reply (struct conn *c, uint32_t opt, uint32_t type, const void *data,
           uint32_t len)
{
  unsigned char h[NBD_OPTION_REPLY_HEADER_SIZE];

  vd_nbd_encode_option_reply_header (h, opt, type, len);
  if (write_full (c, h, sizeof h) == -1)
    return -1;
  return len ? write_full (c, data, len) : 0;
}

/* Returns 1 when transmission starts, 0 to keep going, -1 to close. */
static int
handle_option (struct conn *c, uint32_t opt, unsigned char *data,
               uint32_t len)
{
  struct fake_server *s = c->s;
  const struct fake_config *cfg = &s->cfg;
  unsigned char buf[64];

  switch (opt) {
  case NBD_OPT_EXTENDED_HEADERS:
    if (!cfg->eh)
      return opt_reply (c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
    c->eh = true;
    return opt_reply (c, opt, NBD_REP_ACK, NULL, 0);
  case NBD_OPT_STRUCTURED_REPLY:
    if (!cfg->sr)
      return opt_reply (c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
    c->sr = true;
    return opt_reply (c, opt, NBD_REP_ACK, NULL, 0);
  case NBD_OPT_SET_META_CONTEXT: {
    struct vd_nbd_meta_request mr;
    const char *why;
    if (!cfg->meta || !(c->sr || c->eh))
      return opt_reply (c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
    if (vd_nbd_decode_meta_request (data, len, &mr, &why) == -1) {
      violation (s, "SET_META_CONTEXT: %s", why);
      return opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    }
    if (mr.name_len != strlen (cfg->export_name) ||
        memcmp (mr.name, cfg->export_name, mr.name_len) != 0)
      /* No such export: no context (GO will say why). */
      return opt_reply (c, opt, NBD_REP_ACK, NULL, 0);
    {
      size_t pos = 0;
      const char *q;
      uint32_t ql;
      while (vd_nbd_meta_request_next (&mr, &pos, &q, &ql) == 1)
        if (ql == 15 && memcmp (q, "base:allocation", 15) == 0) {
          ssize_t n = vd_nbd_encode_rep_meta_context (buf, sizeof buf, 7,
                                                      q, ql, &why);
          c->meta = true;
          if (opt_reply (c, opt, NBD_REP_META_CONTEXT, buf, n) == -1)
            return -1;
        }
    }
    return opt_reply (c, opt, NBD_REP_ACK, NULL, 0);
  }
  case NBD_OPT_GO:
  case NBD_OPT_INFO: {
    struct vd_nbd_info_request ir;
    const char *why;
    if (!cfg->go)
      return opt_reply (c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
    if (vd_nbd_decode_info_request (data, len, &ir, &why) == -1) {
      violation (s, "GO: %s", why);
      return opt_reply (c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    }
    if (ir.name_len != strlen (cfg->export_name) ||
        memcmp (ir.name, cfg->export_name, ir.name_len) != 0) {
      static const char msg[] = "no such export";
      return opt_reply (c, opt, NBD_REP_ERR_UNKNOWN, msg, sizeof msg - 1);
    }
    if (!vd_nbd_info_request_has (&ir, NBD_INFO_BLOCK_SIZE))
      violation (s, "GO without NBD_INFO_BLOCK_SIZE");
    if (cfg->misbehave != FAKE_NO_INFO_EXPORT) {
      vd_nbd_encode_info_export (buf, cfg->misbehave == FAKE_HUGE_SIZE
                                 ? UINT64_MAX : c->size, c->eflags);
      if (opt_reply (c, opt, NBD_REP_INFO, buf, VD_NBD_INFO_EXPORT_SIZE) == -1)
        return -1;
    }
    if (cfg->block_size) {
      vd_nbd_encode_info_block_size (buf, cfg->misbehave == FAKE_BAD_BLOCK_SIZE
                                     ? 3 : cfg->min_block, cfg->pref_block,
                                     cfg->max_payload);
      if (opt_reply (c, opt, NBD_REP_INFO, buf,
                     VD_NBD_INFO_BLOCK_SIZE_SIZE) == -1)
        return -1;
    }
    if (cfg->misbehave == FAKE_REP_TOO_BIG) {
      unsigned char *big = calloc (1, 1 << 20);
      int r = big ? opt_reply (c, opt, NBD_REP_INFO, big, 1 << 20) : -1;
      free (big);
      return r == -1 ? -1 : 0;
    }
    if (opt_reply (c, opt, NBD_REP_ACK, NULL, 0) == -1)
      return -1;
    return opt == NBD_OPT_GO ? 1 : 0;
  }
  case NBD_OPT_EXPORT_NAME: {
    size_t n;
    if (c->eh)
      violation (s, "EXPORT_NAME after EXTENDED_HEADERS");
    if (len != strlen (cfg->export_name) ||
        memcmp (data, cfg->export_name, len) != 0)
      return -1;                /* the protocol's answer: close */
    {
      unsigned char reply[NBD_EXPORT_NAME_REPLY_SIZE +
                          NBD_EXPORT_NAME_PADDING];
      n = vd_nbd_encode_export_name_reply (reply, c->size, c->eflags,
                                           cfg->no_zeroes);
      return write_full (c, reply, n) == -1 ? -1 : 1;
    }
  }
  case NBD_OPT_ABORT:
    opt_reply (c, opt, NBD_REP_ACK, NULL, 0);
    return -1;
  default:
    return opt_reply (c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
  }
}

static int
handshake (struct conn *c)
{
  const struct fake_config *cfg = &c->s->cfg;
  unsigned char buf[VD_NBD_GREETING_SIZE];
  uint16_t gflags = 0;
  uint32_t cflags;

  if (!cfg->no_fixed_newstyle)
    gflags |= NBD_FLAG_FIXED_NEWSTYLE;
  if (cfg->no_zeroes)
    gflags |= NBD_FLAG_NO_ZEROES;
  vd_nbd_encode_greeting (buf, gflags);
  if (write_full (c, buf, VD_NBD_GREETING_SIZE) == -1 ||
      read_full (c, buf, 4) == -1)
    return -1;
  if (vd_nbd_decode_client_flags (buf, 4, gflags, &cflags, NULL) == -1) {
    violation (c->s, "bad client flags");
    return -1;
  }
  for (;;) {
    struct vd_nbd_option o;
    unsigned char *data;
    int r;

    if (read_full (c, buf, NBD_OPTION_HEADER_SIZE) == -1)
      return -1;
    if (vd_nbd_decode_option_header (buf, NBD_OPTION_HEADER_SIZE, &o,
                                     NULL) == -1 || o.length > 65536) {
      violation (c->s, "bad option header");
      return -1;
    }
    if (cfg->no_fixed_newstyle && o.option != NBD_OPT_EXPORT_NAME) {
      violation (c->s, "option %u to a non-fixed newstyle server", o.option);
      return -1;
    }
    data = malloc (o.length + 1);
    if (data == NULL || read_full (c, data, o.length) == -1) {
      free (data);
      return -1;
    }
    r = handle_option (c, o.option, data, o.length);
    free (data);
    if (r != 0)
      return r == 1 ? 0 : -1;
  }
}

/* ---- Transmission ---------------------------------------------------- */

struct req {
  struct vd_nbd_request r;
  int err;                      /* NBD_E* to reply, 0 = ok */
  unsigned char *data;          /* READ result */
};

static int
chunk (struct conn *c, const struct req *q, uint16_t flags, uint16_t type,
       const void *payload, uint64_t len, const void *tail, uint64_t tlen)
{
  unsigned char h[NBD_EXTENDED_REPLY_SIZE];
  size_t n = vd_nbd_encode_chunk_header (h, c->eh, flags, type, q->r.cookie,
                                         c->s->cfg.misbehave ==
                                         FAKE_WRONG_OFFSET ? q->r.offset + 1
                                         : q->r.offset, len + tlen);
  if (write_full (c, h, n) == -1 || (len && write_full (c, payload, len) == -1))
    return -1;
  return tlen ? write_full (c, tail, tlen) : 0;
}

static int
simple (struct conn *c, const struct req *q, uint32_t err, const void *data,
        uint64_t len)
{
  unsigned char h[NBD_SIMPLE_REPLY_SIZE];

  vd_nbd_encode_simple_reply (h, q->r.cookie, err);
  if (write_full (c, h, sizeof h) == -1)
    return -1;
  return len ? write_full (c, data, len) : 0;
}

static int
error_reply (struct conn *c, const struct req *q, uint32_t err,
             const char *msg, bool with_offset, uint64_t off)
{
  unsigned char buf[512];
  ssize_t n;

  if (!c->sr && !c->eh)
    return simple (c, q, err, NULL, 0);
  n = vd_nbd_encode_error_chunk (buf, sizeof buf, err, msg, strlen (msg),
                                 with_offset, off);
  return chunk (c, q, NBD_REPLY_FLAG_DONE, with_offset
                ? NBD_REPLY_TYPE_ERROR_OFFSET : NBD_REPLY_TYPE_ERROR,
                buf, n, NULL, 0);
}

static bool
all_zero (const unsigned char *p, uint64_t n)
{
  for (uint64_t i = 0; i < n; ++i)
    if (p[i])
      return false;
  return true;
}

static int
reply_read (struct conn *c, const struct req *q, bool first)
{
  const struct fake_config *cfg = &c->s->cfg;
  uint64_t off = q->r.offset, len = q->r.length;
  unsigned char pre[8];

  if (!c->sr && !c->eh)
    return simple (c, q, 0, q->data, len);
  if (first) {
    switch (cfg->misbehave) {
    case FAKE_SIMPLE_READ_SR:
      return simple (c, q, 0, q->data, len);
    case FAKE_OVERLAP:
      if (len >= 2) {
        store_be64 (pre, off);
        if (chunk (c, q, 0, NBD_REPLY_TYPE_OFFSET_DATA, pre, 8, q->data,
                   len / 2 + 1) == -1)
          return -1;
        store_be64 (pre, off + len / 2);
        return chunk (c, q, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
                      pre, 8, q->data + len / 2, len - len / 2);
      }
      break;
    case FAKE_OUTSIDE:
      store_be64 (pre, off + 1);
      return chunk (c, q, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
                    pre, 8, q->data, len);
    case FAKE_SHORT_READ:
      if (len >= 2) {
        store_be64 (pre, off);
        return chunk (c, q, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
                      pre, 8, q->data, len - 1);
      }
      break;
    case FAKE_UNKNOWN_CHUNK:
      return chunk (c, q, NBD_REPLY_FLAG_DONE, 99, NULL, 0, NULL, 0);
    case FAKE_ERROR_CHUNK:
      return error_reply (c, q, NBD_EIO, "disk on fire", true, off + len - 1);
    default:
      break;
    }
  }
  if (!cfg->fragment_reads || len < 3) {
    store_be64 (pre, off);
    return chunk (c, q, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, pre,
                  8, q->data, len);
  }
  /* Three pieces, last first; all-zero pieces as holes; then NONE. */
  {
    uint64_t cut[4] = { 0, len / 3, 2 * len / 3, len };
    for (int i = 2; i >= 0; --i) {
      uint64_t a = cut[i], n = cut[i + 1] - cut[i];
      if (n == 0)
        continue;
      if (all_zero (q->data + a, n) && n <= UINT32_MAX) {
        unsigned char hole[12];
        vd_nbd_encode_offset_hole (hole, off + a, (uint32_t) n);
        if (chunk (c, q, 0, NBD_REPLY_TYPE_OFFSET_HOLE, hole, 12, NULL,
                   0) == -1)
          return -1;
      }
      else {
        store_be64 (pre, off + a);
        if (chunk (c, q, 0, NBD_REPLY_TYPE_OFFSET_DATA, pre, 8, q->data + a,
                   n) == -1)
          return -1;
      }
    }
    return chunk (c, q, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, NULL, 0,
                  NULL, 0);
  }
}

static int
reply_status (struct conn *c, const struct req *q)
{
  struct fake_server *s = c->s;
  uint64_t off = q->r.offset, end = off + q->r.length;
  unsigned char *buf;
  size_t hs = vd_nbd_block_status_header_size (c->eh);
  size_t ds = vd_nbd_block_descriptor_size (c->eh);
  uint32_t n = 0;
  int r;

  if (end > c->size)
    end = c->size;
  buf = malloc (hs + ds * (c->size / BLK + 2));
  if (buf == NULL)
    return -1;
  /* Extents from 4 KiB granularity: written (data) or hole+zero. */
  pthread_mutex_lock (&s->lock);
  {
    uint64_t pos = off - off % BLK;
    uint64_t cur = pos;
    int state = -1;
    while (pos < end) {
      int st = s->written[pos / BLK] ? 0 : 3;
      if (state != -1 && st != state) {
        vd_nbd_encode_block_descriptor (buf + hs + ds * n++, c->eh,
                                        pos - cur, state);
        cur = pos;
        if (q->r.flags & NBD_CMD_FLAG_REQ_ONE)
          break;
      }
      state = st;
      pos += BLK;
    }
    if (n == 0 || !(q->r.flags & NBD_CMD_FLAG_REQ_ONE))
      vd_nbd_encode_block_descriptor (buf + hs + ds * n++, c->eh,
                                      (pos < end ? pos : end) - cur, state);
  }
  pthread_mutex_unlock (&s->lock);
  /* The first extent starts at the aligned-down offset; trim it to the
   * request (descriptors describe from the request offset).
   */
  {
    uint64_t l, st;
    struct vd_nbd_block_status bs = { .extended = c->eh,
                                      .descriptors = buf + hs,
                                      .nr_descriptors = n };
    vd_nbd_block_status_get (&bs, 0, &l, &st);
    vd_nbd_encode_block_descriptor (buf + hs, c->eh, l - off % BLK, st);
  }
  vd_nbd_encode_block_status_header (buf, c->eh,
                                     s->cfg.misbehave == FAKE_STATUS_WRONG_ID
                                     ? 8 : 7, n);
  if (s->cfg.misbehave == FAKE_HUGE_STATUS) {
    unsigned char h[NBD_EXTENDED_REPLY_SIZE];
    size_t hn = vd_nbd_encode_chunk_header (h, c->eh, NBD_REPLY_FLAG_DONE,
                                            c->eh
                                            ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT
                                            : NBD_REPLY_TYPE_BLOCK_STATUS,
                                            q->r.cookie, q->r.offset,
                                            100u << 20);
    free (buf);
    return write_full (c, h, hn);
  }
  r = chunk (c, q, NBD_REPLY_FLAG_DONE, c->eh ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT
             : NBD_REPLY_TYPE_BLOCK_STATUS, buf, hs + ds * n, NULL, 0);
  free (buf);
  return r;
}

static int
reply (struct conn *c, struct req *q, bool first)
{
  const struct fake_config *cfg = &c->s->cfg;

  if (first && cfg->misbehave == FAKE_BAD_MAGIC)
    return write_full (c, "\xde\xad\xbe\xef\0\0\0\0\0\0\0\0\0\0\0\0", 16);
  if (first && cfg->misbehave == FAKE_UNKNOWN_COOKIE) {
    struct req bogus = *q;
    bogus.r.cookie ^= UINT64_C (0x5555555500000000);
    return error_reply (c, &bogus, NBD_EIO, "x", false, 0);
  }
  if (q->err)
    return error_reply (c, q, q->err, q->err == NBD_ESHUTDOWN
                        ? "going down" : "refused", false, 0);
  switch (q->r.type) {
  case NBD_CMD_READ:
    return reply_read (c, q, first);
  case NBD_CMD_BLOCK_STATUS:
    return reply_status (c, q);
  default:
    if (c->eh || (c->sr && !(cfg->alternate_simple && c->nreq % 2)))
      return chunk (c, q, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, NULL, 0,
                    NULL, 0);
    return simple (c, q, 0, NULL, 0);
  }
}

/* Read and check one request, run it.  1 = got one, 0 = DISC, -1 = EOF. */
static int
get_request (struct conn *c, struct req *q)
{
  struct fake_server *s = c->s;
  const struct fake_config *cfg = &s->cfg;
  unsigned char h[NBD_EXTENDED_REQUEST_SIZE];
  size_t hs = vd_nbd_request_size (c->eh);
  uint64_t plen, end, mb = cfg->block_size ? cfg->min_block : 1;
  const char *why;
  unsigned char *payload = NULL;

  memset (q, 0, sizeof *q);
  if (read_full (c, h, hs) == -1)
    return -1;
  if (vd_nbd_decode_request (h, hs, c->eh, &q->r, &why) == -1) {
    violation (s, "%s", why);
    return -1;
  }
  plen = vd_nbd_request_payload_length (&q->r, c->eh);
  if (c->eh && q->r.type == NBD_CMD_WRITE &&
      !(q->r.flags & NBD_CMD_FLAG_PAYLOAD_LEN))
    violation (s, "extended WRITE without PAYLOAD_LEN");
  if (plen > cfg->max_payload) {
    violation (s, "payload of %" PRIu64 " bytes", plen);
    return -1;
  }
  if (plen) {
    payload = malloc (plen);
    if (payload == NULL || read_full (c, payload, plen) == -1) {
      free (payload);
      return -1;
    }
  }
  if (q->r.type == NBD_CMD_DISC) {
    atomic_fetch_add (&s->st.disc, 1);
    free (payload);
    return 0;
  }
  if (q->r.length > atomic_load (&s->st.max_len))
    atomic_store (&s->st.max_len, q->r.length);
  if (q->r.flags & NBD_CMD_FLAG_FUA) {
    atomic_fetch_add (&s->st.fua, 1);
    if (!(c->eflags & NBD_FLAG_SEND_FUA))
      violation (s, "FUA not offered");
  }
  if (q->r.flags & ~(NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE |
                     NBD_CMD_FLAG_REQ_ONE | NBD_CMD_FLAG_FAST_ZERO |
                     NBD_CMD_FLAG_PAYLOAD_LEN))
    violation (s, "unknown flags 0x%x", q->r.flags);
  if (q->r.type != NBD_CMD_FLUSH) {
    if (__builtin_add_overflow (q->r.offset, q->r.length, &end) ||
        end > c->size) {
      violation (s, "request past the end");
      q->err = NBD_EINVAL;
    }
    else if ((q->r.offset % mb || (q->r.length % mb && end != c->size))) {
      violation (s, "unaligned %s at %" PRIu64 "+%" PRIu64,
                 vd_nbd_cmd_name (q->r.type), q->r.offset, q->r.length);
      q->err = NBD_EINVAL;
    }
    else if ((q->r.type == NBD_CMD_READ || q->r.type == NBD_CMD_WRITE) &&
             q->r.length > cfg->max_payload) {
      violation (s, "%s of %" PRIu64 " bytes", vd_nbd_cmd_name (q->r.type),
                 q->r.length);
      q->err = NBD_EINVAL;
    }
  }
  if (c->shutdown)
    q->err = NBD_ESHUTDOWN;
  if (cfg->misbehave == FAKE_ESHUTDOWN_ONCE &&
      atomic_load (&s->st.connections) == 1 && c->nreq == 0) {
    q->err = NBD_ESHUTDOWN;
    c->shutdown = true;
  }
  c->nreq++;

  switch (q->r.type) {
  case NBD_CMD_READ:
    atomic_fetch_add (&s->st.reads, 1);
    if (q->err)
      break;
    q->data = malloc (q->r.length ? q->r.length : 1);
    if (q->data == NULL)
      return -1;
    pthread_mutex_lock (&s->lock);
    memcpy (q->data, s->data + q->r.offset, q->r.length);
    pthread_mutex_unlock (&s->lock);
    break;
  case NBD_CMD_WRITE:
  case NBD_CMD_WRITE_ZEROES:
  case NBD_CMD_TRIM:
    if (q->r.type == NBD_CMD_WRITE)
      atomic_fetch_add (&s->st.writes, 1);
    else if (q->r.type == NBD_CMD_TRIM)
      atomic_fetch_add (&s->st.trims, 1);
    else
      atomic_fetch_add (&s->st.zeroes, 1);
    if (c->eflags & NBD_FLAG_READ_ONLY) {
      violation (s, "write to a read-only export");
      q->err = NBD_EPERM;
    }
    if (q->r.type == NBD_CMD_TRIM && !(c->eflags & NBD_FLAG_SEND_TRIM))
      violation (s, "TRIM not offered");
    if (q->r.type == NBD_CMD_WRITE_ZEROES &&
        !(c->eflags & NBD_FLAG_SEND_WRITE_ZEROES))
      violation (s, "WRITE_ZEROES not offered");
    if (q->err)
      break;
    pthread_mutex_lock (&s->lock);
    if (q->r.type == NBD_CMD_WRITE)
      memcpy (s->data + q->r.offset, payload, q->r.length);
    else if (q->r.type == NBD_CMD_WRITE_ZEROES)
      memset (s->data + q->r.offset, 0, q->r.length);
    /* TRIM: contents unchanged (allowed: they become unspecified). */
    for (uint64_t b = q->r.offset / BLK;
         b * BLK < q->r.offset + q->r.length; ++b)
      s->written[b] = !all_zero (s->data + b * BLK,
                                 c->size - b * BLK < BLK ? c->size - b * BLK
                                 : BLK);
    pthread_mutex_unlock (&s->lock);
    break;
  case NBD_CMD_FLUSH:
    atomic_fetch_add (&s->st.flushes, 1);
    if (!(c->eflags & NBD_FLAG_SEND_FLUSH))
      violation (s, "FLUSH not offered");
    if (q->r.offset || q->r.length)
      violation (s, "FLUSH with offset or length");
    break;
  case NBD_CMD_BLOCK_STATUS:
    atomic_fetch_add (&s->st.status, 1);
    if (!c->meta)
      violation (s, "BLOCK_STATUS without a context");
    break;
  case NBD_CMD_CACHE:
    atomic_fetch_add (&s->st.caches, 1);
    break;
  default:
    violation (s, "unknown command %u", q->r.type);
    q->err = NBD_EINVAL;
  }
  free (payload);
  return 1;
}

static bool
more_input (int fd)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };
  return poll (&p, 1, 0) > 0;
}

static void
serve (struct conn *c)
{
  struct fake_server *s = c->s;
  bool first = true;

  if (handshake (c) == -1)
    return;
  for (;;) {
    struct req batch[16];
    int n = 0, r;

    /* One request, or with reorder as many as are ready (max 16). */
    do {
      r = get_request (c, &batch[n]);
      if (r <= 0)
        break;
      n++;
    } while (s->cfg.reorder && n < 16 && more_input (c->fd));
    for (int i = s->cfg.reorder ? n - 1 : 0;
         s->cfg.reorder ? i >= 0 : i < n; s->cfg.reorder ? --i : ++i) {
      if (!(s->cfg.misbehave == FAKE_HANG && batch[i].r.type == NBD_CMD_READ)
          && reply (c, &batch[i], first) == -1)
        r = -1;
      if (batch[i].r.type == NBD_CMD_READ || s->cfg.misbehave ==
          FAKE_UNKNOWN_COOKIE || s->cfg.misbehave == FAKE_BAD_MAGIC)
        first = false;
      free (batch[i].data);
    }
    if (r <= 0)
      return;
    if (c->shutdown && !more_input (c->fd))
      return;                   /* drained: the server goes away */
    if (s->cfg.drop_after && c->nreq >= s->cfg.drop_after)
      return;
  }
}

static void *
server_thread (void *arg)
{
  struct fake_server *s = arg;

  while (!atomic_load (&s->quit)) {
    struct pollfd p = { .fd = s->lfd, .events = POLLIN };
    struct conn c = { .s = s };
    if (poll (&p, 1, 100) <= 0)
      continue;
    c.fd = accept (s->lfd, NULL, NULL);
    if (c.fd == -1)
      continue;
    atomic_fetch_add (&s->st.connections, 1);
    c.size = s->cfg.size_second && atomic_load (&s->st.connections) > 1
      ? s->cfg.size_second : s->cfg.size;
    c.eflags = s->cfg.eflags | NBD_FLAG_HAS_FLAGS;
    serve (&c);
    close (c.fd);
  }
  return NULL;
}

int
fake_start (struct fake_server *s, const struct fake_config *cfg,
            const char *dir)
{
  static atomic_int n;
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  uint64_t size = cfg->size_second > cfg->size ? cfg->size_second : cfg->size;

  memset (s, 0, sizeof *s);
  s->cfg = *cfg;
  if (s->cfg.export_name == NULL)
    s->cfg.export_name = "";
  s->data = calloc (1, size ? size : 1);
  s->written = calloc (1, size / BLK + 2);
  if (!s->data || !s->written)
    return -1;
  pthread_mutex_init (&s->lock, NULL);
  snprintf (s->path, sizeof s->path, "%s/fake-%d-%d.sock", dir,
            (int) getpid (), atomic_fetch_add (&n, 1));
  if (strlen (s->path) >= sizeof sun.sun_path)
    return -1;
  memcpy (sun.sun_path, s->path, strlen (s->path) + 1);
  unlink (s->path);
  s->lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->lfd == -1 || bind (s->lfd, (struct sockaddr *) &sun, sizeof sun) ||
      listen (s->lfd, 8))
    return -1;
  atomic_init (&s->quit, false);
  return pthread_create (&s->thread, NULL, server_thread, s) ? -1 : 0;
}

const char *
fake_uri (struct fake_server *s, char *buf, size_t len)
{
  snprintf (buf, len, "nbd+unix:///%s?socket=%s", s->cfg.export_name,
            s->path);
  return buf;
}

void
fake_stop (struct fake_server *s)
{
  atomic_store (&s->quit, true);
  pthread_join (s->thread, NULL);
  close (s->lfd);
  unlink (s->path);
  pthread_mutex_destroy (&s->lock);
  free (s->data);
  free (s->written);
}
